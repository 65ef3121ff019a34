//! The placement tables and the queries on them (portable SQL, `$n` placeholders).
//!
//! `allocation_ratio` is stored as TEXT holding Rust's shortest round-trip `f64` repr
//! (`"16"`, `"1.5"`), so the store stays in the TEXT/BIGINT subset and reads back bit-exact;
//! all capacity arithmetic is done in Rust.

use crate::changes::{WriteTx, begin_write, commit_write};
use ferrostack_store::{Migration, Store, StoreError, now_rfc3339};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The placement schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    // The providers each write touched, by change counter (`crate::changes`).
    Migration {
        version: 2,
        name: "placement_changes",
        sql: "
CREATE TABLE placement_changes (counter BIGINT NOT NULL, provider_uuid TEXT NOT NULL,
  PRIMARY KEY (counter, provider_uuid));
",
    },
];

/// Inserts the standard resource classes and traits that are missing.
pub(crate) async fn sync_standards(store: &Store) -> Result<(), StoreError> {
    let now = now_rfc3339();
    let mut tx = begin_write(store).await?;
    tx.touch_all();
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
    commit_write(tx).await
}

/// Every resource class name.
pub(crate) async fn class_names(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar("SELECT name FROM placement_resource_classes")
        .fetch_all(conn)
        .await
        .map_err(Into::into)
}

/// Every trait name.
pub(crate) async fn trait_names(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar("SELECT name FROM placement_traits")
        .fetch_all(conn)
        .await
        .map_err(Into::into)
}

/// One resource provider row.
#[derive(Debug, Clone, PartialEq)]
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
    providers_in(conn, None).await
}

/// The providers among `only` (every provider when `None`), in creation order.
pub(crate) async fn providers_in(
    conn: &mut AnyConnection,
    only: Option<&[String]>,
) -> Result<Vec<Provider>, StoreError> {
    let sql = format!(
        "SELECT {PROVIDER_COLS} FROM placement_providers{} ORDER BY created_at, uuid",
        within("uuid", only)
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), only)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(provider_row).collect())
}

/// ` WHERE column IN ($1, …)` for the uuids in `only`, nothing when `None`.
fn within(column: &str, only: Option<&[String]>) -> String {
    match only {
        None => String::new(),
        Some(uuids) => {
            let marks: Vec<String> = (1..=uuids.len()).map(|k| format!("${k}")).collect();
            format!(" WHERE {column} IN ({})", marks.join(", "))
        }
    }
}

/// Binds the uuids of [`within`].
fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    only: Option<&'q [String]>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for uuid in only.into_iter().flatten() {
        query = query.bind(uuid);
    }
    query
}

/// Bumps a provider's generation, comparing it with `expected` when given. Returns the new
/// generation, or `None` when the provider is missing or its generation differs.
pub(crate) async fn bump_generation(
    tx: &mut WriteTx,
    uuid: &str,
    expected: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    tx.touch(uuid);
    let conn: &mut AnyConnection = tx;
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

/// Every inventory (of the providers in `only` when given): provider → class → record.
pub(crate) async fn all_inventories(
    conn: &mut AnyConnection,
    only: Option<&[String]>,
) -> Result<HashMap<String, BTreeMap<String, Inventory>>, StoreError> {
    let sql = format!(
        "SELECT provider_uuid, resource_class, total, reserved, min_unit, max_unit, step_size, \
         allocation_ratio FROM placement_inventories{}",
        within("provider_uuid", only)
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), only)
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

/// Every usage (of the providers in `only` when given): (provider, class) → used.
pub(crate) async fn all_usages(
    conn: &mut AnyConnection,
    only: Option<&[String]>,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let sql = format!(
        "SELECT provider_uuid, resource_class, CAST(SUM(used) AS BIGINT) AS used \
         FROM placement_allocations{} GROUP BY provider_uuid, resource_class",
        within("provider_uuid", only)
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), only)
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
/// Only the providers in `only` when given.
pub(crate) async fn all_pairs(
    conn: &mut AnyConnection,
    aggregates: bool,
    only: Option<&[String]>,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let (column, table) = match aggregates {
        true => ("aggregate_uuid", "placement_provider_aggregates"),
        false => ("trait", "placement_provider_traits"),
    };
    let sql = format!(
        "SELECT provider_uuid, {column} AS v FROM {table}{} ORDER BY v",
        within("provider_uuid", only)
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), only)
        .fetch_all(conn)
        .await?;
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

/// Inserts a provider row at generation 0 (a unique violation comes back as
/// [`StoreError::Conflict`]).
pub(crate) async fn insert_provider(
    tx: &mut WriteTx,
    uuid: &str,
    name: &str,
    parent: Option<&str>,
    root: &str,
) -> Result<(), StoreError> {
    tx.touch_all();
    let conn: &mut AnyConnection = tx;
    sqlx::query(
        "INSERT INTO placement_providers (uuid, name, generation, parent_uuid, root_uuid, created_at) \
         VALUES ($1, $2, 0, $3, $4, $5)",
    )
    .bind(uuid)
    .bind(name)
    .bind(parent)
    .bind(root)
    .bind(now_rfc3339())
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// The classes of `current` missing from `wanted` that still have allocations on `uuid`.
pub(crate) async fn inventory_in_use(
    conn: &mut AnyConnection,
    uuid: &str,
    current: &BTreeMap<String, Inventory>,
    wanted: &BTreeMap<String, Inventory>,
) -> Result<Vec<String>, StoreError> {
    let mut in_use = Vec::new();
    for rc in current.keys().filter(|rc| !wanted.contains_key(*rc)) {
        if has_allocations(&mut *conn, uuid, Some(rc)).await? {
            in_use.push(rc.clone());
        }
    }
    Ok(in_use)
}

/// Turns a provider's inventories from `current` into `wanted`: deletes the classes not wanted
/// and rewrites the changed ones (the caller has bumped the generation and checked usage).
pub(crate) async fn apply_inventories(
    conn: &mut AnyConnection,
    uuid: &str,
    current: &BTreeMap<String, Inventory>,
    wanted: &BTreeMap<String, Inventory>,
) -> Result<(), StoreError> {
    for rc in current.keys().filter(|rc| !wanted.contains_key(*rc)) {
        sqlx::query(
            "DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2",
        )
        .bind(uuid)
        .bind(rc)
        .execute(&mut *conn)
        .await?;
    }
    for (rc, inv) in wanted {
        if current.get(rc) != Some(inv) {
            put_inventory(&mut *conn, uuid, rc, inv).await?;
        }
    }
    Ok(())
}

/// Every class with inventory on `uuid` and its usage (0 when unused), plus any class that has
/// allocations without inventory.
pub(crate) async fn usages_with_zeros(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut out: BTreeMap<String, i64> = inventories(&mut *conn, uuid)
        .await?
        .into_keys()
        .map(|rc| (rc, 0))
        .collect();
    out.extend(usages(conn, uuid).await?);
    Ok(out)
}

/// The allocations on one provider: (consumer, class, used, consumer generation).
pub(crate) async fn provider_allocations(
    conn: &mut AnyConnection,
    uuid: &str,
) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT a.consumer_uuid, a.resource_class, a.used, c.generation FROM placement_allocations a \
         JOIN placement_consumers c ON c.uuid = a.consumer_uuid WHERE a.provider_uuid = $1 \
         ORDER BY a.consumer_uuid, a.resource_class",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await
    .map_err(Into::into)
}

/// The providers a consumer has allocations on.
async fn consumer_providers(
    conn: &mut AnyConnection,
    consumer: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT DISTINCT provider_uuid FROM placement_allocations WHERE consumer_uuid = $1",
    )
    .bind(consumer)
    .fetch_all(conn)
    .await
    .map_err(Into::into)
}

/// Deletes a consumer's allocations and its record (no provider generation bump, as
/// `DELETE /allocations/{consumer}`); returns how many allocation rows went.
pub(crate) async fn delete_consumer(tx: &mut WriteTx, uuid: &str) -> Result<u64, StoreError> {
    let deleted = delete_allocations(tx, uuid).await?;
    sqlx::query("DELETE FROM placement_consumers WHERE uuid = $1")
        .bind(uuid)
        .execute(&mut **tx)
        .await?;
    Ok(deleted)
}

/// Deletes a consumer's allocations, logging the providers whose usage that changes (read
/// from the deleted rows themselves, so a concurrent write to the consumer cannot slip by);
/// returns how many rows went.
async fn delete_allocations(tx: &mut WriteTx, consumer: &str) -> Result<u64, StoreError> {
    let providers: Vec<String> = sqlx::query_scalar(
        "DELETE FROM placement_allocations WHERE consumer_uuid = $1 RETURNING provider_uuid",
    )
    .bind(consumer)
    .fetch_all(&mut **tx)
    .await?;
    for rp in &providers {
        tx.touch(rp);
    }
    Ok(providers.len() as u64)
}

// ---------------------------------------------------------------------------------------------
// Allocation writes, shared by `PUT`/`POST /allocations` and the in-process API.

/// One consumer's requested allocations.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerWrite {
    pub consumer: String,
    /// (provider, class, amount), in request order; empty deletes the consumer's allocations.
    pub allocs: Vec<(String, String, i64)>,
    pub project_id: String,
    pub user_id: String,
    /// Set at ≥1.38 (kept when `None` and the consumer exists).
    pub consumer_type: Option<String>,
    /// The expected consumer generation (`Some(None)` = a new consumer); `None` = not checked.
    pub generation: Option<Option<i64>>,
}

/// Why [`write_allocations`] wrote nothing.
#[derive(Debug)]
pub(crate) enum WriteError {
    Store(StoreError),
    /// A requested provider does not exist.
    NoProvider(String),
    /// (consumer, class): the class does not exist.
    NoClass(String, String),
    /// The consumer generation did not match, or the consumer changed concurrently.
    ConsumerGeneration(String),
    /// (provider, class): the provider has no inventory of the class.
    NoInventory(String, String),
    /// (provider, class): the amount violates min_unit, max_unit or step_size.
    Constraints(String, String),
    /// (provider, class): the amount would exceed the capacity.
    Capacity(String, String),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Store(e.into())
    }
}

async fn used(conn: &mut AnyConnection, provider: &str, rc: &str) -> Result<i64, StoreError> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(used) AS BIGINT) FROM placement_allocations WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(provider)
    .bind(rc)
    .fetch_one(conn)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Writes the allocations of one or more consumers in one transaction (spec §6.2, §10.2):
/// the providers involved are locked (generation +1) in sorted order first, so concurrent
/// claims on a provider are serialised and each sees the other's usage.
pub(crate) async fn write_allocations(
    store: &Store,
    writes: &[ConsumerWrite],
) -> Result<(), WriteError> {
    let mut tx = begin_write(store).await?;
    let requested: BTreeSet<&str> = writes
        .iter()
        .flat_map(|w| w.allocs.iter().map(|(rp, _, _)| rp.as_str()))
        .collect();
    let mut lock: BTreeSet<String> = requested.iter().map(|s| s.to_string()).collect();
    for w in writes.iter().filter(|w| w.allocs.is_empty()) {
        lock.extend(consumer_providers(&mut tx, &w.consumer).await?);
    }
    for rp in &lock {
        let bumped = bump_generation(&mut tx, rp, None).await?;
        if bumped.is_none() && requested.contains(rp.as_str()) {
            return Err(WriteError::NoProvider(rp.clone()));
        }
    }
    for w in writes {
        for (_, rc, _) in &w.allocs {
            if !class_exists(&mut tx, rc).await? {
                return Err(WriteError::NoClass(w.consumer.clone(), rc.clone()));
            }
        }
    }
    let mut existing = HashMap::new();
    for w in writes {
        let current = consumer(&mut tx, &w.consumer).await?;
        if let Some(expected) = w.generation {
            let show = |g: Option<i64>| g.map(|g| g.to_string()).unwrap_or_else(|| "None".into());
            match (&current, expected) {
                (Some(c), Some(g)) if c.generation == g => {}
                (Some(c), got) => {
                    return Err(WriteError::ConsumerGeneration(format!(
                        "consumer generation conflict - expected {} but got {}",
                        c.generation,
                        show(got)
                    )));
                }
                (None, Some(got)) => {
                    return Err(WriteError::ConsumerGeneration(format!(
                        "consumer generation conflict - expected null but got {got}"
                    )));
                }
                (None, None) => {}
            }
        }
        existing.insert(w.consumer.clone(), current);
    }
    // Usage before this request, then without the consumers' old allocations.
    let mut pairs: BTreeMap<(String, String), i64> = BTreeMap::new();
    for w in writes {
        for (rp, rc, n) in &w.allocs {
            *pairs.entry((rp.clone(), rc.clone())).or_default() += n;
        }
    }
    let mut before = HashMap::new();
    for (rp, rc) in pairs.keys() {
        before.insert((rp.clone(), rc.clone()), used(&mut tx, rp, rc).await?);
    }
    for w in writes {
        delete_allocations(&mut tx, &w.consumer).await?;
    }
    let mut invs: HashMap<String, BTreeMap<String, Inventory>> = HashMap::new();
    for rp in &requested {
        invs.insert(rp.to_string(), inventories(&mut tx, rp).await?);
    }
    for w in writes {
        for (rp, rc, n) in &w.allocs {
            let Some(inv) = invs.get(rp).and_then(|m| m.get(rc)) else {
                return Err(WriteError::NoInventory(rp.clone(), rc.clone()));
            };
            if *n < inv.min_unit || *n > inv.max_unit || n % inv.step_size.max(1) != 0 {
                return Err(WriteError::Constraints(rp.clone(), rc.clone()));
            }
            let key = (rp.clone(), rc.clone());
            let others = used(&mut tx, rp, rc).await?;
            let new_total = others + pairs[&key];
            if new_total as f64 > inv.capacity_real() && new_total > before[&key] {
                return Err(WriteError::Capacity(rp.clone(), rc.clone()));
            }
        }
    }
    let now = now_rfc3339();
    for w in writes {
        let current = existing.get(&w.consumer).cloned().flatten();
        if w.allocs.is_empty() {
            sqlx::query("DELETE FROM placement_consumers WHERE uuid = $1")
                .bind(&w.consumer)
                .execute(&mut *tx)
                .await?;
            continue;
        }
        match current {
            Some(c) => {
                let done = sqlx::query(
                    "UPDATE placement_consumers SET project_id = $1, user_id = $2, consumer_type = $3, \
                     generation = generation + 1, updated_at = $4 WHERE uuid = $5 AND generation = $6",
                )
                .bind(&w.project_id)
                .bind(&w.user_id)
                .bind(w.consumer_type.clone().or(c.consumer_type))
                .bind(&now)
                .bind(&w.consumer)
                .bind(c.generation)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(WriteError::ConsumerGeneration(format!(
                        "consumer generation conflict - expected {} but the consumer changed concurrently",
                        c.generation
                    )));
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO placement_consumers (uuid, project_id, user_id, consumer_type, generation, created_at) \
                     VALUES ($1, $2, $3, $4, 1, $5)",
                )
                .bind(&w.consumer)
                .bind(&w.project_id)
                .bind(&w.user_id)
                .bind(&w.consumer_type)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from_write(e) {
                    StoreError::Conflict(_) => WriteError::ConsumerGeneration(
                        "consumer generation conflict - expected null but the consumer was created concurrently".into(),
                    ),
                    other => WriteError::Store(other),
                })?;
            }
        }
        for (rp, rc, n) in &w.allocs {
            sqlx::query(
                "INSERT INTO placement_allocations (consumer_uuid, provider_uuid, resource_class, used, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&w.consumer)
            .bind(rp)
            .bind(rc)
            .bind(n)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
    }
    commit_write(tx).await?;
    Ok(())
}
