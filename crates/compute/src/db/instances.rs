//! Instance rows. The columns the conductor compares-and-swaps or lists by (state, host,
//! project, times) are real columns; the rest of the record is one JSON document
//! ([`InstanceData`]) rewritten under a generation check, so no update is ever lost.

use super::json_error;
use super::lock_project;
use crate::states::{task, vm};
use ferrostack_store::{AnyRow, Row, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The flavor as it was when the server was created (Nova embeds a copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FlavorCopy {
    pub flavorid: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub extra_specs: BTreeMap<String, String>,
}

/// A keypair copied into the instance at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCopy {
    pub name: String,
    pub key_type: String,
    pub public_key: String,
}

/// What the scheduler needs, kept for retries and reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RequestSpec {
    /// Server group (`group` hint).
    pub group: Option<String>,
    pub different_host: Vec<String>,
    pub same_host: Vec<String>,
    /// Admin-forced host (`az:host`, `az:host:node`): the filters are skipped.
    pub force_host: Option<String>,
    /// Admin-forced node (`az::node`, `az:host:node`).
    #[serde(default)]
    pub force_node: Option<String>,
    /// Requested destination (2.74 `host`, `hypervisor_hostname`): the filters still run.
    #[serde(default)]
    pub requested_host: Option<String>,
    #[serde(default)]
    pub requested_node: Option<String>,
    /// Hosts already tried for this build.
    pub tried_hosts: Vec<String>,
    /// Image properties the filters look at.
    pub image_properties: BTreeMap<String, String>,
    pub image_disk_format: String,
    pub image_size: Option<i64>,
    /// The interfaces asked for, resolved by the API (`auto` already chosen); empty: none.
    #[serde(default)]
    pub requested_networks: Vec<crate::network::RequestedNic>,
    /// The security groups (ids) of the ports compute creates for the server.
    #[serde(default)]
    pub security_groups: Vec<String>,
}

/// The JSON part of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceData {
    pub display_name: String,
    pub display_description: Option<String>,
    pub hostname: String,
    pub reservation_id: String,
    pub launch_index: i64,
    pub image_ref: String,
    pub kernel_id: String,
    pub ramdisk_id: String,
    pub kernel_cmdline: Option<String>,
    pub flavor: FlavorCopy,
    pub key_name: Option<String>,
    pub keys: Vec<KeyCopy>,
    /// Base64 text as the client sent it.
    pub user_data: Option<String>,
    pub availability_zone: Option<String>,
    pub pinned_availability_zone: Option<String>,
    /// `"True"` or `""`.
    pub config_drive: String,
    pub access_ip_v4: String,
    pub access_ip_v6: String,
    pub auto_disk_config: bool,
    pub locked_by: Option<String>,
    pub locked_reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub spec: RequestSpec,
    pub node: Option<String>,
    pub terminated_at: Option<String>,
    pub admin_pass_set: bool,
    /// The server's interfaces (planned, then bound to its host), in order: Nova's network
    /// info cache.
    #[serde(default)]
    pub vifs: Vec<crate::network::Vif>,
    /// The volumes attached or being attached or detached (Nova's volume block device
    /// mappings), in the order they were attached.
    #[serde(default)]
    pub volumes: Vec<crate::volumes::VolumeRecord>,
    /// The (encrypted) password the guest posted to the metadata service, until an admin or
    /// the owner clears it (Nova keeps it in the instance's system metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// One instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Internal integer id (`instance-%08x`, EC2 ids).
    pub id: i64,
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub host: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
    pub launched_at: Option<String>,
    pub deleted_at: Option<String>,
    pub generation: i64,
    pub data: InstanceData,
}

impl Instance {
    /// The hypervisor's name of the guest from `template` (Nova's `instance_name_template`:
    /// `%08x`, `%x` or `%d` stand for the internal id).
    pub fn domain_name(&self, template: &str) -> String {
        template
            .replace("%08x", &format!("{:08x}", self.id))
            .replace("%x", &format!("{:x}", self.id))
            .replace("%d", &self.id.to_string())
    }
}

/// Indexes for the two reads that grow with the number of servers: the project index also
/// covers the columns the quota check sums, so that check reads the index alone instead of
/// every row of the project (it runs under the project's lock, on every create); and the server
/// list's default order (newest first) has an index per project and one over all projects, so a
/// page reads the page's rows, not the whole scope.
pub const INDEXES_MIGRATION: ferrostack_store::Migration = ferrostack_store::Migration {
    version: 6,
    name: "instances: indexes for the quota usage and the newest-first listing",
    sql: "DROP INDEX instances_project;
          CREATE INDEX instances_project ON instances (project_id, deleted, vcpus, memory_mb);
          CREATE INDEX instances_project_newest ON instances (project_id, deleted, created_at, id);
          CREATE INDEX instances_newest ON instances (deleted, created_at, id);",
};

const COLUMNS: &str = "id, uuid, project_id, user_id, host, vm_state, task_state, power_state, \
    deleted, created_at, updated_at, launched_at, deleted_at, generation, data";

fn from_row(row: &AnyRow) -> Result<Instance, StoreError> {
    let data: String = row.try_get("data")?;
    Ok(Instance {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        project_id: row.try_get("project_id")?,
        user_id: row.try_get("user_id")?,
        host: row.try_get("host")?,
        vm_state: row.try_get("vm_state")?,
        task_state: row.try_get("task_state")?,
        power_state: row.try_get("power_state")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        launched_at: row.try_get("launched_at")?,
        deleted_at: row.try_get("deleted_at")?,
        generation: row.try_get("generation")?,
        data: serde_json::from_str(&data).map_err(json_error)?,
    })
}

/// Per-project limits checked at create (`-1` = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct ServerQuota {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
}

/// Why a create was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateRefusal {
    /// `(resource, requested, used, allowed)` for each resource over quota.
    OverQuota(Vec<(&'static str, i64, i64, i64)>),
    /// The server group is full (`server_group_members`).
    GroupFull,
}

/// An action row to write with the instances.
pub struct NewAction<'a> {
    pub action: &'a str,
    pub request_id: &'a str,
    pub user_id: &'a str,
    pub project_id: &'a str,
    pub now: &'a str,
}

/// Inserts `instances` (one project) with their `create` actions and group membership in one
/// transaction under the project's lock row, after checking the quota on live instances, so
/// concurrent creates can never pass it together. Ids are assigned here.
pub async fn create_instances(
    store: &Store,
    instances: &mut [Instance],
    quota: ServerQuota,
    group: Option<(&str, i64)>,
    action: &NewAction<'_>,
) -> Result<Result<(), CreateRefusal>, StoreError> {
    let Some(first) = instances.first() else {
        return Ok(Ok(()));
    };
    let project = first.project_id.clone();
    let _turn = super::write_turn(store).await;
    let mut tx = store.begin().await?;
    lock_project(&mut tx, &project).await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS cores, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS ram FROM instances WHERE project_id = $1 AND deleted = 0",
    )
    .bind(&project)
    .fetch_one(&mut *tx)
    .await?;
    let (used_n, used_cores, used_ram): (i64, i64, i64) = (
        row.try_get("n")?,
        row.try_get("cores")?,
        row.try_get("ram")?,
    );
    let n = instances.len() as i64;
    let cores: i64 = instances.iter().map(|i| i.data.flavor.vcpus).sum();
    let ram: i64 = instances.iter().map(|i| i.data.flavor.memory_mb).sum();
    let mut over = Vec::new();
    for (name, want, used, limit) in [
        ("instances", n, used_n, quota.instances),
        ("cores", cores, used_cores, quota.cores),
        ("ram", ram, used_ram, quota.ram),
    ] {
        if limit >= 0 && used + want > limit {
            over.push((name, want, used, limit));
        }
    }
    if !over.is_empty() {
        return Ok(Err(CreateRefusal::OverQuota(over)));
    }
    if let Some((group_id, limit)) = group {
        let members: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM server_group_members WHERE group_id = $1")
                .bind(group_id)
                .fetch_one(&mut *tx)
                .await?;
        if limit >= 0 && members + n > limit {
            return Ok(Err(CreateRefusal::GroupFull));
        }
    }
    let last: i64 = sqlx::query_scalar(
        "UPDATE compute_counters SET value = value + $1 WHERE name = 'instances' RETURNING value",
    )
    .bind(n)
    .fetch_one(&mut *tx)
    .await?;
    for (k, inst) in instances.iter_mut().enumerate() {
        inst.id = last - n + 1 + k as i64;
        let data = serde_json::to_string(&inst.data).map_err(json_error)?;
        sqlx::query(
            "INSERT INTO instances (id, uuid, project_id, user_id, host, vm_state, task_state, \
             power_state, deleted, created_at, updated_at, launched_at, deleted_at, generation, \
             data, vcpus, memory_mb) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, NULL, NULL, 0, $11, $12, $13)",
        )
        .bind(inst.id)
        .bind(&inst.uuid)
        .bind(&inst.project_id)
        .bind(&inst.user_id)
        .bind(&inst.host)
        .bind(&inst.vm_state)
        .bind(&inst.task_state)
        .bind(inst.power_state)
        .bind(&inst.created_at)
        .bind(&inst.updated_at)
        .bind(data)
        .bind(inst.data.flavor.vcpus)
        .bind(inst.data.flavor.memory_mb)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        insert_action(&mut tx, &inst.uuid, action).await?;
        if let Some((group_id, _)) = group {
            sqlx::query(
                "INSERT INTO server_group_members (group_id, instance_uuid) VALUES ($1, $2)",
            )
            .bind(group_id)
            .bind(&inst.uuid)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}

async fn insert_action(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    uuid: &str,
    a: &NewAction<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instance_actions (instance_uuid, request_id, action, user_id, project_id, \
         start_time, updated_at, message, seq) SELECT $1, $2, $3, $4, $5, $6, $6, NULL, \
         COALESCE(MAX(seq), 0) + 1 FROM instance_actions WHERE instance_uuid = $1 \
         ON CONFLICT (instance_uuid, request_id) DO NOTHING",
    )
    .bind(uuid)
    .bind(a.request_id)
    .bind(a.action)
    .bind(a.user_id)
    .bind(a.project_id)
    .bind(a.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One instance by uuid, deleted or not.
pub async fn instance(store: &Store, uuid: &str) -> Result<Option<Instance>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE uuid = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid)
        .fetch_optional(store.pool())
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// Which instances a list reads before the API's in-memory filters.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None` = every project.
    pub project_id: Option<String>,
    /// Include deleted rows.
    pub deleted: bool,
    /// Only deleted rows.
    pub only_deleted: bool,
}

/// `scope` as SQL conditions to append to `WHERE 1 = 1`, with how many parameters they take
/// (`$1` is the project when there is one).
fn scope_sql(scope: &Scope) -> (String, usize) {
    let mut sql = String::new();
    if scope.project_id.is_some() {
        sql.push_str(" AND project_id = $1");
    }
    if scope.only_deleted {
        sql.push_str(" AND deleted = 1");
    } else if !scope.deleted {
        sql.push_str(" AND deleted = 0");
    }
    (sql, usize::from(scope.project_id.is_some()))
}

/// Conditions on the instance columns, narrowing a listing in SQL (the server list then
/// applies its exact filters in memory, so these only have to hold for every match).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnFilter {
    pub host: Option<String>,
    pub uuid: Option<String>,
    pub user_id: Option<String>,
    pub task_state: Option<String>,
    /// `vm_state IN (...)`; `None` = any.
    pub vm_states: Option<Vec<String>>,
    /// `updated_at >= since` (text order: stored times are UTC RFC 3339).
    pub updated_since: Option<String>,
    /// `updated_at < until`.
    pub updated_until: Option<String>,
}

/// The instances in `scope`.
pub async fn instances(store: &Store, scope: &Scope) -> Result<Vec<Instance>, StoreError> {
    instances_matching(store, scope, &ColumnFilter::default()).await
}

/// The instances in `scope` that meet `filter`.
pub async fn instances_matching(
    store: &Store,
    scope: &Scope,
    filter: &ColumnFilter,
) -> Result<Vec<Instance>, StoreError> {
    let (mut sql, mut n) = scope_sql(scope);
    let mut binds: Vec<&str> = Vec::new();
    for (column, op, value) in [
        ("host", "=", &filter.host),
        ("uuid", "=", &filter.uuid),
        ("user_id", "=", &filter.user_id),
        ("task_state", "=", &filter.task_state),
        ("updated_at", ">=", &filter.updated_since),
        ("updated_at", "<", &filter.updated_until),
    ] {
        if let Some(v) = value {
            n += 1;
            sql.push_str(&format!(" AND {column} {op} ${n}"));
            binds.push(v);
        }
    }
    if let Some(states) = &filter.vm_states {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = states
            .iter()
            .map(|s| {
                n += 1;
                binds.push(s);
                format!("${n}")
            })
            .collect();
        sql.push_str(&format!(" AND vm_state IN ({})", marks.join(", ")));
    }
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE 1 = 1{sql}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(p) = &scope.project_id {
        q = q.bind(p);
    }
    for value in binds {
        q = q.bind(value);
    }
    q.fetch_all(store.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Where instance `uuid` is in the newest-first order of [`newest_first`] — its
/// `(created_at, id)` — if it is in `scope`.
pub async fn newest_first_position(
    store: &Store,
    scope: &Scope,
    uuid: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    let (conditions, n) = scope_sql(scope);
    let sql = format!(
        "SELECT created_at, id FROM instances WHERE 1 = 1{conditions} AND uuid = ${}",
        n + 1
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(p) = &scope.project_id {
        q = q.bind(p);
    }
    match q.bind(uuid).fetch_optional(store.pool()).await? {
        Some(row) => Ok(Some((row.try_get("created_at")?, row.try_get("id")?))),
        None => Ok(None),
    }
}

/// Up to `limit` instances of `scope`, newest first (`created_at` descending, then `id`
/// descending: the server list's default order), only those after `after` (a position from
/// [`newest_first_position`]) when given. The database sorts and cuts, so a page costs the
/// page, not the whole scope.
pub async fn newest_first(
    store: &Store,
    scope: &Scope,
    after: Option<(&str, i64)>,
    limit: usize,
) -> Result<Vec<Instance>, StoreError> {
    let (conditions, n) = scope_sql(scope);
    let mut sql = format!("SELECT {COLUMNS} FROM instances WHERE 1 = 1{conditions}");
    if after.is_some() {
        sql.push_str(&format!(
            " AND (created_at, id) < (${a}, ${b})",
            a = n + 1,
            b = n + 2
        ));
    }
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(p) = &scope.project_id {
        q = q.bind(p);
    }
    if let Some((created_at, id)) = after {
        q = q.bind(created_at).bind(id);
    }
    q.fetch_all(store.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Live instances assigned to `host`.
pub async fn instances_on_host(store: &Store, host: &str) -> Result<Vec<Instance>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE host = $1 AND deleted = 0");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(host)
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// How many live instances a host has, and how many of them have a task in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCount {
    pub total: usize,
    pub busy: usize,
}

/// [`HostCount`] of every host with live instances, in one query (what the scheduler needs
/// of each candidate host).
pub async fn host_instance_counts(store: &Store) -> Result<HashMap<String, HostCount>, StoreError> {
    let rows = sqlx::query(
        "SELECT host, CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(SUM(CASE WHEN task_state IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS busy \
         FROM instances WHERE deleted = 0 AND host IS NOT NULL GROUP BY host",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let count = |col: &str| -> Result<usize, StoreError> {
                Ok(r.try_get::<i64, _>(col)?.max(0) as usize)
            };
            Ok((
                r.try_get("host")?,
                HostCount {
                    total: count("total")?,
                    busy: count("busy")?,
                },
            ))
        })
        .collect()
}

/// The hosts of those of `uuids` that are live and have one (one entry per instance), in one
/// query per 500.
pub async fn hosts_of(store: &Store, uuids: &[String]) -> Result<Vec<String>, StoreError> {
    let mut hosts = Vec::new();
    for chunk in uuids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT host FROM instances WHERE deleted = 0 AND host IS NOT NULL AND uuid IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in chunk {
            q = q.bind(u);
        }
        for row in q.fetch_all(store.pool()).await? {
            hosts.push(row.try_get("host")?);
        }
    }
    Ok(hosts)
}

/// Live instances with an operation in flight (for the conductor's start-up resume).
pub async fn busy_instances(store: &Store) -> Result<Vec<Instance>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM instances WHERE deleted = 0 AND (task_state IS NOT NULL OR \
         vm_state = 'building')"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Live instances that have volumes recorded (for the conductor's sweep of attaches and
/// detaches). The test is on the JSON text: a false match only costs a look.
pub async fn instances_with_volumes(store: &Store) -> Result<Vec<Instance>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM instances WHERE deleted = 0 AND data LIKE '%\"volumes\":[{{%'"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// A compare-and-swap state change.
#[derive(Debug, Clone, Default)]
pub struct StateChange {
    pub vm_state: Option<String>,
    /// `Some(None)` clears the task state.
    pub task_state: Option<Option<String>>,
    pub power_state: Option<i64>,
    /// `Some(None)` clears the host.
    pub host: Option<Option<String>>,
    pub launched_at: Option<String>,
    /// A fault recorded in the same transaction, so no reader sees the new state without it.
    pub fault: Option<NewFault>,
}

/// A fault to record with a state change.
#[derive(Debug, Clone)]
pub struct NewFault {
    pub code: i64,
    pub message: String,
}

/// Applies `change` to live instance `uuid` if its task state is one of `expected`
/// (`None` in the list = idle). False when it did not match (or the row is deleted).
pub async fn update_state(
    store: &Store,
    uuid: &str,
    expected: &[Option<&str>],
    change: &StateChange,
    now: &str,
) -> Result<bool, StoreError> {
    let mut sets = vec!["updated_at = $2".to_string()];
    let mut args: Vec<Option<String>> = vec![Some(uuid.into()), Some(now.into())];
    let mut arg = |sets: &mut Vec<String>, col: &str, v: Option<String>| {
        args.push(v);
        sets.push(format!("{col} = ${}", args.len()));
    };
    if let Some(v) = &change.vm_state {
        arg(&mut sets, "vm_state", Some(v.clone()));
    }
    if let Some(t) = &change.task_state {
        arg(&mut sets, "task_state", t.clone());
    }
    if let Some(h) = &change.host {
        arg(&mut sets, "host", h.clone());
    }
    if let Some(l) = &change.launched_at {
        arg(&mut sets, "launched_at", Some(l.clone()));
    }
    if let Some(p) = change.power_state {
        sets.push(format!("power_state = {p}"));
    }
    let mut conds = Vec::new();
    for e in expected {
        match e {
            None => conds.push("task_state IS NULL".to_string()),
            Some(t) => {
                args.push(Some(t.to_string()));
                conds.push(format!("task_state = ${}", args.len()));
            }
        }
    }
    let guard = if conds.is_empty() {
        String::new()
    } else {
        format!(" AND ({})", conds.join(" OR "))
    };
    let sql = format!(
        "UPDATE instances SET {}, generation = generation + 1 WHERE uuid = $1 AND deleted = 0{guard}",
        sets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        q = q.bind(a);
    }
    let _turn = super::write_turn(store).await;
    let Some(fault) = &change.fault else {
        return Ok(q.execute(store.pool()).await?.rows_affected() == 1);
    };
    let mut tx = store.begin().await?;
    if q.execute(&mut *tx).await?.rows_affected() != 1 {
        return Ok(false);
    }
    insert_fault(&mut tx, uuid, fault.code, &fault.message, None, None, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Rewrites the JSON part of a live instance if nobody changed the row since it was read
/// (generation check). False on a concurrent change: re-read and retry.
pub async fn save_data(store: &Store, inst: &Instance, now: &str) -> Result<bool, StoreError> {
    let data = serde_json::to_string(&inst.data).map_err(json_error)?;
    let _turn = super::write_turn(store).await;
    let done = sqlx::query(
        "UPDATE instances SET data = $1, updated_at = $2, generation = generation + 1 \
         WHERE uuid = $3 AND generation = $4 AND deleted = 0",
    )
    .bind(data)
    .bind(now)
    .bind(&inst.uuid)
    .bind(inst.generation)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Marks a live instance deleted (vm `deleted`, task cleared, host kept for the record) and
/// removes its group memberships. False if it was already deleted.
pub async fn mark_deleted(store: &Store, uuid: &str, now: &str) -> Result<bool, StoreError> {
    let _turn = super::write_turn(store).await;
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE instances SET deleted = 1, vm_state = $2, task_state = NULL, power_state = 0, \
         deleted_at = $3, updated_at = $3, generation = generation + 1 \
         WHERE uuid = $1 AND deleted = 0",
    )
    .bind(uuid)
    .bind(vm::DELETED)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM server_group_members WHERE instance_uuid = $1")
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Sets the task state `deleting` on a live instance whatever its state (delete is allowed in
/// any state); returns the row as it was, or `None` if it was already deleted.
pub async fn begin_delete(
    store: &Store,
    uuid: &str,
    now: &str,
) -> Result<Option<Instance>, StoreError> {
    loop {
        let Some(inst) = instance(store, uuid).await? else {
            return Ok(None);
        };
        if inst.deleted {
            return Ok(None);
        }
        let turn = super::write_turn(store).await;
        let done = sqlx::query(
            "UPDATE instances SET task_state = $2, updated_at = $3, generation = generation + 1 \
             WHERE uuid = $1 AND generation = $4 AND deleted = 0",
        )
        .bind(uuid)
        .bind(task::DELETING)
        .bind(now)
        .bind(inst.generation)
        .execute(store.pool())
        .await?
        .rows_affected();
        drop(turn);
        if done == 1 {
            return Ok(Some(inst));
        }
    }
}

/// Records an action (idempotent per instance and request id).
pub async fn add_action(store: &Store, uuid: &str, a: &NewAction<'_>) -> Result<(), StoreError> {
    let _turn = super::write_turn(store).await;
    let mut tx = store.begin().await?;
    insert_action(&mut tx, uuid, a).await?;
    tx.commit().await?;
    Ok(())
}

/// Records a fault (message cut to 255 characters).
pub async fn add_fault(
    store: &Store,
    uuid: &str,
    code: i64,
    message: &str,
    details: Option<&str>,
    host: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let _turn = super::write_turn(store).await;
    let mut tx = store.begin().await?;
    insert_fault(&mut tx, uuid, code, message, details, host, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_fault(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    uuid: &str,
    code: i64,
    message: &str,
    details: Option<&str>,
    host: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let message: String = message.chars().take(255).collect();
    sqlx::query(
        "INSERT INTO instance_faults (instance_uuid, code, message, details, host, created_at, \
         seq) SELECT $1, $2, $3, $4, $5, $6, COALESCE(MAX(seq), 0) + 1 FROM instance_faults \
         WHERE instance_uuid = $1",
    )
    .bind(uuid)
    .bind(code)
    .bind(message)
    .bind(details)
    .bind(host)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A recorded fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: Option<String>,
    pub created_at: String,
}

/// The newest fault of each of `uuids`.
pub async fn latest_faults(
    store: &Store,
    uuids: &[&str],
) -> Result<BTreeMap<String, Fault>, StoreError> {
    let mut out = BTreeMap::new();
    for chunk in uuids.chunks(500) {
        if chunk.is_empty() {
            continue;
        }
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT instance_uuid, code, message, details, created_at, seq FROM instance_faults \
             WHERE instance_uuid IN ({}) ORDER BY seq",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in chunk {
            q = q.bind(*u);
        }
        for row in q.fetch_all(store.pool()).await? {
            out.insert(
                row.try_get("instance_uuid")?,
                Fault {
                    code: row.try_get("code")?,
                    message: row.try_get("message")?,
                    details: row.try_get("details")?,
                    created_at: row.try_get("created_at")?,
                },
            );
        }
    }
    Ok(out)
}

/// An instance action with its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub action: String,
    pub instance_uuid: String,
    pub request_id: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time: String,
    pub updated_at: String,
    pub message: Option<String>,
    pub events: Vec<ActionEventRow>,
}

/// One step of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionEventRow {
    pub event: String,
    pub start_time: String,
    pub finish_time: Option<String>,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
}

/// The actions of an instance, newest first, with their events.
pub async fn actions(store: &Store, uuid: &str) -> Result<Vec<Action>, StoreError> {
    let rows = sqlx::query(
        "SELECT action, instance_uuid, request_id, user_id, project_id, start_time, updated_at, \
         message, seq FROM instance_actions WHERE instance_uuid = $1 ORDER BY seq DESC",
    )
    .bind(uuid)
    .fetch_all(store.pool())
    .await?;
    let mut actions = Vec::new();
    for r in rows {
        actions.push(Action {
            action: r.try_get("action")?,
            instance_uuid: r.try_get("instance_uuid")?,
            request_id: r.try_get("request_id")?,
            user_id: r.try_get("user_id")?,
            project_id: r.try_get("project_id")?,
            start_time: r.try_get("start_time")?,
            updated_at: r.try_get("updated_at")?,
            message: r.try_get("message")?,
            events: Vec::new(),
        });
    }
    let events = sqlx::query(
        "SELECT request_id, event, start_time, finish_time, result, traceback, host, details \
         FROM instance_action_events WHERE instance_uuid = $1 ORDER BY seq",
    )
    .bind(uuid)
    .fetch_all(store.pool())
    .await?;
    for e in events {
        let request_id: String = e.try_get("request_id")?;
        if let Some(a) = actions.iter_mut().find(|a| a.request_id == request_id) {
            a.events.push(ActionEventRow {
                event: e.try_get("event")?,
                start_time: e.try_get("start_time")?,
                finish_time: e.try_get("finish_time")?,
                result: e.try_get("result")?,
                traceback: e.try_get("traceback")?,
                host: e.try_get("host")?,
                details: e.try_get("details")?,
            });
        }
    }
    Ok(actions)
}

/// Records an action event and touches the action's `updated_at`.
pub async fn add_event(
    store: &Store,
    uuid: &str,
    request_id: &str,
    event: &ActionEventRow,
) -> Result<(), StoreError> {
    let _turn = super::write_turn(store).await;
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO instance_action_events (instance_uuid, request_id, event, start_time, \
         finish_time, result, traceback, host, details, seq) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE(MAX(seq), 0) + 1 \
         FROM instance_action_events WHERE instance_uuid = $1",
    )
    .bind(uuid)
    .bind(request_id)
    .bind(&event.event)
    .bind(&event.start_time)
    .bind(&event.finish_time)
    .bind(&event.result)
    .bind(&event.traceback)
    .bind(&event.host)
    .bind(&event.details)
    .execute(&mut *tx)
    .await?;
    if let Some(done) = event.finish_time.as_deref() {
        sqlx::query(
            "UPDATE instance_actions SET updated_at = $3 WHERE instance_uuid = $1 AND request_id = $2",
        )
        .bind(uuid)
        .bind(request_id)
        .bind(done)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The newest action's request id of an instance.
pub async fn latest_request_id(store: &Store, uuid: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM instance_actions WHERE instance_uuid = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(uuid)
    .fetch_optional(store.pool())
    .await?)
}
