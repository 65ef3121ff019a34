//! The placement tables and the queries on them (portable SQL, `$n` placeholders).
//!
//! `allocation_ratio` is stored as TEXT holding Rust's shortest round-trip `f64` repr
//! (`"16"`, `"1.5"`), so the store stays in the TEXT/BIGINT subset and reads back bit-exact;
//! all capacity arithmetic is done in Rust.

use ferrostack_store::{Backend, Migration, Store, StoreError, now_rfc3339};
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::{BTreeMap, HashMap};

/// The placement schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "placement",
    sql: "
CREATE TABLE placement_resource_classes (name TEXT PRIMARY KEY, standard BIGINT NOT NULL,
  seq BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT);
CREATE TABLE placement_traits (name TEXT PRIMARY KEY, standard BIGINT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE placement_providers (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  generation BIGINT NOT NULL, parent_uuid TEXT, root_uuid TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT);
CREATE INDEX placement_providers_root ON placement_providers (root_uuid);
CREATE INDEX placement_providers_parent ON placement_providers (parent_uuid);
CREATE TABLE placement_inventories (provider_uuid TEXT NOT NULL, resource_class TEXT NOT NULL,
  total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL,
  step_size BIGINT NOT NULL, allocation_ratio TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT,
  PRIMARY KEY (provider_uuid, resource_class));
CREATE INDEX placement_inventories_rc ON placement_inventories (resource_class);
CREATE TABLE placement_provider_traits (provider_uuid TEXT NOT NULL, trait TEXT NOT NULL,
  PRIMARY KEY (provider_uuid, trait));
CREATE INDEX placement_provider_traits_trait ON placement_provider_traits (trait);
CREATE TABLE placement_provider_aggregates (provider_uuid TEXT NOT NULL, aggregate_uuid TEXT NOT NULL,
  PRIMARY KEY (provider_uuid, aggregate_uuid));
CREATE INDEX placement_provider_aggregates_agg ON placement_provider_aggregates (aggregate_uuid);
CREATE TABLE placement_consumers (uuid TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
  consumer_type TEXT, generation BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT);
CREATE INDEX placement_consumers_project_user ON placement_consumers (project_id, user_id);
CREATE TABLE placement_allocations (consumer_uuid TEXT NOT NULL, provider_uuid TEXT NOT NULL,
  resource_class TEXT NOT NULL, used BIGINT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (consumer_uuid, provider_uuid, resource_class));
CREATE INDEX placement_allocations_rp_rc ON placement_allocations (provider_uuid, resource_class);
CREATE TABLE placement_change_counter (id TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO placement_change_counter (id, value) VALUES ('placement', 0);
",
}];

/// Inserts the standard resource classes and traits that are missing.
pub(crate) async fn sync_standards(store: &Store) -> Result<(), StoreError> {
    let now = now_rfc3339();
    let mut tx = begin_write(store).await?;
    let have: Vec<String> = sqlx::query_scalar("SELECT name FROM placement_resource_classes")
        .fetch_all(&mut *tx)
        .await?;
    for (i, rc) in crate::standard::STANDARD_RESOURCE_CLASSES
        .iter()
        .enumerate()
    {
        if !have.iter().any(|h| h == rc) {
            sqlx::query("INSERT INTO placement_resource_classes (name, standard, seq, created_at) VALUES ($1, 1, $2, $3)")
                .bind(*rc)
                .bind(i as i64)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
    }
    let have: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT name FROM placement_traits")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    for t in crate::standard::standard_traits() {
        if !have.contains(t) {
            sqlx::query(
                "INSERT INTO placement_traits (name, standard, created_at) VALUES ($1, 1, $2)",
            )
            .bind(t)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
    }
    commit_write(store, tx).await
}

/// Begins a write transaction. On SQLite the first statement takes the write lock (so the
/// transaction never has to upgrade a stale read snapshot and simply waits its turn); on
/// PostgreSQL the change counter is bumped last, in [`commit_write`], after any provider row
/// locks (always in that order, so no deadlock).
pub(crate) async fn begin_write(store: &Store) -> Result<Transaction<'static, Any>, StoreError> {
    let mut tx = store.begin().await?;
    if store.backend() == Backend::Sqlite {
        bump_counter(&mut tx).await?;
    }
    Ok(tx)
}

/// Commits a transaction opened by [`begin_write`].
pub(crate) async fn commit_write(
    store: &Store,
    mut tx: Transaction<'static, Any>,
) -> Result<(), StoreError> {
    if store.backend() == Backend::Postgres {
        bump_counter(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn bump_counter(tx: &mut Transaction<'static, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE placement_change_counter SET value = value + 1 WHERE id = 'placement'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One resource provider row.
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent: Option<String>,
    pub root: String,
}

const PROVIDER_COLS: &str = "uuid, name, generation, parent_uuid, root_uuid";

fn provider_row(row: &sqlx::any::AnyRow) -> Provider {
    Provider {
        uuid: row.get("uuid"),
        name: row.get("name"),
        generation: row.get("generation"),
        parent: row.get("parent_uuid"),
        root: row.get("root_uuid"),
    }
}

pub(crate) async fn provider(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<Option<Provider>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PROVIDER_COLS} FROM placement_providers WHERE uuid = $1"
    )))
    .bind(uuid)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(provider_row))
}

pub(crate) async fn provider_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<Provider>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PROVIDER_COLS} FROM placement_providers WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(provider_row))
}

/// Every provider, in creation order.
pub(crate) async fn providers(conn: &mut AnyConnection) -> Result<Vec<Provider>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PROVIDER_COLS} FROM placement_providers ORDER BY created_at, uuid"
    )))
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(provider_row).collect())
}

/// Bumps a provider's generation, comparing it with `expected` when given. Returns the new
/// generation, or `None` when the provider is missing or its generation differs.
pub(crate) async fn bump_generation(
    conn: &mut AnyConnection,
    uuid: &str,
    expected: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    let done = match expected {
        Some(g) => sqlx::query(
            "UPDATE placement_providers SET generation = generation + 1 WHERE uuid = $1 AND generation = $2",
        )
        .bind(uuid)
        .bind(g)
        .execute(&mut *conn)
        .await?,
        None => sqlx::query(
            "UPDATE placement_providers SET generation = generation + 1 WHERE uuid = $1",
        )
        .bind(uuid)
        .execute(&mut *conn)
        .await?,
    };
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let g: i64 = sqlx::query_scalar("SELECT generation FROM placement_providers WHERE uuid = $1")
        .bind(uuid)
        .fetch_one(conn)
        .await?;
    Ok(Some(g))
}

/// One inventory record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// `(total − reserved) × ratio`, not truncated.
    pub fn capacity_real(&self) -> f64 {
        (self.total - self.reserved) as f64 * self.allocation_ratio
    }
    /// `int((total − reserved) × ratio)`.
    pub fn capacity(&self) -> i64 {
        self.capacity_real() as i64
    }
    /// Whether `n` more fits on top of `used` (spec §4.3).
    pub fn fits(&self, used: i64, n: i64) -> bool {
        (used + n) as f64 <= self.capacity_real()
            && self.min_unit <= n
            && n <= self.max_unit
            && n % self.step_size.max(1) == 0
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.total,
            "reserved": self.reserved,
            "min_unit": self.min_unit,
            "max_unit": self.max_unit,
            "step_size": self.step_size,
            "allocation_ratio": self.allocation_ratio,
        })
    }
}

fn inventory_row(row: &sqlx::any::AnyRow) -> Inventory {
    let ratio: String = row.get("allocation_ratio");
    Inventory {
        total: row.get("total"),
        reserved: row.get("reserved"),
        min_unit: row.get("min_unit"),
        max_unit: row.get("max_unit"),
        step_size: row.get("step_size"),
        allocation_ratio: ratio.parse().unwrap_or(1.0),
    }
}

/// A provider's inventories by class.
pub(crate) async fn inventories(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<BTreeMap<String, Inventory>, StoreError> {
    let rows = sqlx::query(
        "SELECT resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio \
         FROM placement_inventories WHERE provider_uuid = $1",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<String, _>("resource_class"), inventory_row(r)))
        .collect())
}

/// Every inventory: provider → class → record.
pub(crate) async fn all_inventories(
    conn: &mut AnyConnection,
) -> Result<HashMap<String, BTreeMap<String, Inventory>>, StoreError> {
    let rows = sqlx::query(
        "SELECT provider_uuid, resource_class, total, reserved, min_unit, max_unit, step_size, \
         allocation_ratio FROM placement_inventories",
    )
    .fetch_all(conn)
    .await?;
    let mut out: HashMap<String, BTreeMap<String, Inventory>> = HashMap::new();
    for r in &rows {
        out.entry(r.get("provider_uuid"))
            .or_default()
            .insert(r.get("resource_class"), inventory_row(r));
    }
    Ok(out)
}

pub(crate) async fn put_inventory(
    conn: &mut AnyConnection,
    uuid: &str,
    rc: &str,
    inv: &Inventory,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(uuid)
    .bind(rc)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO placement_inventories (provider_uuid, resource_class, total, reserved, min_unit, \
         max_unit, step_size, allocation_ratio, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid)
    .bind(rc)
    .bind(inv.total)
    .bind(inv.reserved)
    .bind(inv.min_unit)
    .bind(inv.max_unit)
    .bind(inv.step_size)
    .bind(inv.allocation_ratio.to_string())
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(())
}

/// A provider's usage by class (only classes with allocations).
pub(crate) async fn usages(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT resource_class, CAST(SUM(used) AS BIGINT) AS used FROM placement_allocations \
         WHERE provider_uuid = $1 GROUP BY resource_class",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("resource_class"),
                r.get::<i64, _>("used"),
            )
        })
        .collect())
}

/// Every usage: (provider, class) → used.
pub(crate) async fn all_usages(
    conn: &mut AnyConnection,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT provider_uuid, resource_class, CAST(SUM(used) AS BIGINT) AS used \
         FROM placement_allocations GROUP BY provider_uuid, resource_class",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (
                    r.get::<String, _>("provider_uuid"),
                    r.get::<String, _>("resource_class"),
                ),
                r.get::<i64, _>("used"),
            )
        })
        .collect())
}

pub(crate) async fn provider_traits(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT trait FROM placement_provider_traits WHERE provider_uuid = $1 ORDER BY trait",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await
    .map_err(Into::into)
}

pub(crate) async fn provider_aggregates(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT aggregate_uuid FROM placement_provider_aggregates WHERE provider_uuid = $1 \
         ORDER BY aggregate_uuid",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await
    .map_err(Into::into)
}

/// provider → names, for every provider with any row in `table` (`trait` or `aggregate_uuid`).
pub(crate) async fn all_pairs(
    conn: &mut AnyConnection,
    aggregates: bool,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let sql = match aggregates {
        true => {
            "SELECT provider_uuid, aggregate_uuid AS v FROM placement_provider_aggregates ORDER BY v"
        }
        false => "SELECT provider_uuid, trait AS v FROM placement_provider_traits ORDER BY v",
    };
    let rows = sqlx::query(sql).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        out.entry(r.get("provider_uuid"))
            .or_default()
            .push(r.get("v"));
    }
    Ok(out)
}

pub(crate) async fn class_exists(conn: &mut AnyConnection, name: &str) -> Result<bool, StoreError> {
    let n: Option<String> =
        sqlx::query_scalar("SELECT name FROM placement_resource_classes WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(n.is_some())
}

/// The existing traits among `names`.
pub(crate) async fn existing_traits(
    conn: &mut AnyConnection,
    names: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for n in names {
        let found: Option<String> =
            sqlx::query_scalar("SELECT name FROM placement_traits WHERE name = $1")
                .bind(n)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(f) = found {
            out.push(f);
        }
    }
    Ok(out)
}

/// A consumer row.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub project_id: String,
    pub user_id: String,
    pub consumer_type: Option<String>,
    pub generation: i64,
}

pub(crate) async fn consumer(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<Option<Consumer>, StoreError> {
    let row = sqlx::query(
        "SELECT project_id, user_id, consumer_type, generation FROM placement_consumers WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Consumer {
        project_id: r.get("project_id"),
        user_id: r.get("user_id"),
        consumer_type: r.get("consumer_type"),
        generation: r.get("generation"),
    }))
}

/// A consumer's allocations: provider → class → used.
pub(crate) async fn consumer_allocations(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<BTreeMap<String, BTreeMap<String, i64>>, StoreError> {
    let rows = sqlx::query(
        "SELECT provider_uuid, resource_class, used FROM placement_allocations WHERE consumer_uuid = $1",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await?;
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in &rows {
        out.entry(r.get("provider_uuid"))
            .or_default()
            .insert(r.get("resource_class"), r.get("used"));
    }
    Ok(out)
}

pub(crate) async fn has_allocations(
    conn: &mut AnyConnection,
    provider: &str,
    class: Option<&str>,
) -> Result<bool, StoreError> {
    let found: Option<String> = match class {
        Some(rc) => sqlx::query_scalar(
            "SELECT consumer_uuid FROM placement_allocations WHERE provider_uuid = $1 AND resource_class = $2 LIMIT 1",
        )
        .bind(provider)
        .bind(rc)
        .fetch_optional(conn)
        .await?,
        None => sqlx::query_scalar(
            "SELECT consumer_uuid FROM placement_allocations WHERE provider_uuid = $1 LIMIT 1",
        )
        .bind(provider)
        .fetch_optional(conn)
        .await?,
    };
    Ok(found.is_some())
}
