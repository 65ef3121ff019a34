//! Console authorizations (Nova's `console_auth_tokens`): one row per issued console URL,
//! keyed by the SHA-256 of its token (the token itself is never stored), bound to the
//! instance and to the VNC host and port it was issued for, valid until `expires` (Unix
//! seconds) while the instance is not deleted.

use ferrostack_store::{AnyRow, Migration, Row, Store, StoreError};

/// The table, with indexes for the instance and expiry sweeps.
pub const CONSOLE_TOKENS_MIGRATION: Migration = Migration {
    version: 7,
    name: "console auth tokens",
    sql: "CREATE TABLE console_auth_tokens (
            token_hash TEXT PRIMARY KEY, console_type TEXT NOT NULL, host TEXT NOT NULL,
            port BIGINT NOT NULL, internal_access_path TEXT, instance_uuid TEXT NOT NULL,
            access_url_base TEXT, expires BIGINT NOT NULL, created_at TEXT NOT NULL);
          CREATE INDEX console_auth_tokens_instance ON console_auth_tokens (instance_uuid);
          CREATE INDEX console_auth_tokens_expires ON console_auth_tokens (expires);",
};

/// One console authorization.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleToken {
    /// Lowercase hex SHA-256 of the token.
    pub token_hash: String,
    /// `novnc`.
    pub console_type: String,
    /// Where the proxy connects: the compute host's proxy-client address.
    pub host: String,
    pub port: i64,
    /// A path the proxy asks for with `CONNECT` before relaying (never set for libvirt VNC).
    pub internal_access_path: Option<String>,
    pub instance_uuid: String,
    /// The URL the token was appended to.
    pub access_url_base: Option<String>,
    /// Unix seconds after which the token is refused.
    pub expires: i64,
    pub created_at: String,
}

const COLUMNS: &str = "token_hash, console_type, host, port, internal_access_path, \
    instance_uuid, access_url_base, expires, created_at";

fn from_row(row: &AnyRow) -> Result<ConsoleToken, sqlx::Error> {
    Ok(ConsoleToken {
        token_hash: row.try_get("token_hash")?,
        console_type: row.try_get("console_type")?,
        host: row.try_get("host")?,
        port: row.try_get("port")?,
        internal_access_path: row.try_get("internal_access_path")?,
        instance_uuid: row.try_get("instance_uuid")?,
        access_url_base: row.try_get("access_url_base")?,
        expires: row.try_get("expires")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores an authorization; a hash that is already there is a [`StoreError::Conflict`].
pub async fn insert(store: &Store, token: &ConsoleToken) -> Result<(), StoreError> {
    let _turn = super::write_turn(store).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO console_auth_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(&token.token_hash)
    .bind(&token.console_type)
    .bind(&token.host)
    .bind(token.port)
    .bind(&token.internal_access_path)
    .bind(&token.instance_uuid)
    .bind(&token.access_url_base)
    .bind(token.expires)
    .bind(&token.created_at)
    .execute(store.pool())
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// The authorization with this hash if it has not expired at `now` (Unix seconds) and its
/// instance exists and is not deleted (Nova removes a deleted instance's tokens).
pub async fn find_valid(
    store: &Store,
    token_hash: &str,
    now: i64,
) -> Result<Option<ConsoleToken>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM console_auth_tokens t WHERE token_hash = $1 AND expires > $2 \
         AND EXISTS (SELECT 1 FROM instances i WHERE i.uuid = t.instance_uuid AND i.deleted = 0)"
    )))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Removes the authorizations that can no longer be used: expired at `now`, or of an instance
/// that is deleted or gone. Returns how many were removed.
pub async fn purge(store: &Store, now: i64) -> Result<u64, StoreError> {
    let _turn = super::write_turn(store).await;
    let done = sqlx::query(
        "DELETE FROM console_auth_tokens WHERE expires <= $1 OR NOT EXISTS \
         (SELECT 1 FROM instances i WHERE i.uuid = console_auth_tokens.instance_uuid \
          AND i.deleted = 0)",
    )
    .bind(now)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(done)
}
