//! Compute nodes: one row per agent host, refreshed by its heartbeats (Nova's `services` and
//! `compute_nodes` in one).

use ferrostack_store::{AnyRow, Row, Store, StoreError};

/// A compute host as its heartbeats describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub host: String,
    /// Its resource provider's uuid in Placement.
    pub node_uuid: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub heartbeat_at: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl Node {
    /// Whether the host's last heartbeat is older than `down_after` (Nova's
    /// `service_down_time`) or it is forced down.
    pub fn is_down(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        down_after: chrono::Duration,
    ) -> bool {
        if self.forced_down {
            return true;
        }
        match chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at) {
            Ok(t) => now.signed_duration_since(t.with_timezone(&chrono::Utc)) > down_after,
            Err(_) => true,
        }
    }
}

/// Records a heartbeat (creating the row on the first one). True when the row was created.
pub async fn heartbeat(
    store: &Store,
    host: &str,
    node_uuid: &str,
    vcpus: i64,
    memory_mb: i64,
    disk_gb: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let _turn = super::write_turn(store).await;
    let updated = sqlx::query(
        "UPDATE compute_nodes SET node_uuid = $2, vcpus = $3, memory_mb = $4, disk_gb = $5, \
         heartbeat_at = $6, updated_at = $6 WHERE host = $1",
    )
    .bind(host)
    .bind(node_uuid)
    .bind(vcpus)
    .bind(memory_mb)
    .bind(disk_gb)
    .bind(now)
    .execute(store.pool())
    .await?
    .rows_affected();
    if updated == 1 {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO compute_nodes (host, node_uuid, vcpus, memory_mb, disk_gb, heartbeat_at, \
         disabled, disabled_reason, forced_down, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, 0, $6, $6) ON CONFLICT (host) DO NOTHING",
    )
    .bind(host)
    .bind(node_uuid)
    .bind(vcpus)
    .bind(memory_mb)
    .bind(disk_gb)
    .bind(now)
    .execute(store.pool())
    .await
    .map_err(StoreError::from_write)?
    .rows_affected();
    Ok(inserted == 1)
}

const COLUMNS: &str = "host, node_uuid, vcpus, memory_mb, disk_gb, heartbeat_at, disabled, \
    disabled_reason, forced_down, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Node, StoreError> {
    Ok(Node {
        host: r.try_get("host")?,
        node_uuid: r.try_get("node_uuid")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        disk_gb: r.try_get("disk_gb")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        forced_down: r.try_get::<i64, _>("forced_down")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Every compute node.
pub async fn nodes(store: &Store) -> Result<Vec<Node>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM compute_nodes ORDER BY host");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The compute nodes of `hosts` (those that exist).
pub async fn nodes_of(store: &Store, hosts: &[&str]) -> Result<Vec<Node>, StoreError> {
    let mut out = Vec::new();
    for chunk in hosts.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM compute_nodes WHERE host IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for h in chunk {
            q = q.bind(*h);
        }
        for row in q.fetch_all(store.pool()).await? {
            out.push(from_row(&row)?);
        }
    }
    Ok(out)
}

/// The compute node of `host`.
pub async fn node(store: &Store, host: &str) -> Result<Option<Node>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM compute_nodes WHERE host = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(host)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}
