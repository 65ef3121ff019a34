//! Service state of compute hosts as admins set it through `os-services` (Nova's
//! `services.disabled`, `disabled_reason`, `forced_down`), kept on the compute node rows
//! (heartbeats never write these columns).

use ferrostack_store::{Store, StoreError};

/// What an `os-services` update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceChange {
    /// `Some((true, reason))` disables the host, `Some((false, _))` enables it and clears the
    /// reason.
    pub disabled: Option<(bool, Option<String>)>,
    pub forced_down: Option<bool>,
}

/// Applies `change` to `host` in one transaction. False when the host is unknown.
pub async fn update(
    store: &Store,
    host: &str,
    change: &ServiceChange,
    now: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let found = sqlx::query("UPDATE compute_nodes SET updated_at = $2 WHERE host = $1")
        .bind(host)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if found != 1 {
        return Ok(false);
    }
    if let Some((disabled, reason)) = &change.disabled {
        let reason = if *disabled { reason.as_deref() } else { None };
        sqlx::query("UPDATE compute_nodes SET disabled = $2, disabled_reason = $3 WHERE host = $1")
            .bind(host)
            .bind(*disabled as i64)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(forced_down) = change.forced_down {
        sqlx::query("UPDATE compute_nodes SET forced_down = $2 WHERE host = $1")
            .bind(host)
            .bind(forced_down as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}
