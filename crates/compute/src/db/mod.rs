//! Compute rows in the shared store: flavors (extra specs, access lists) and keypairs.

use ferrostack_store::{AnyRow, Migration, Row, Store, StoreError};
use std::collections::BTreeMap;

pub mod aggregates;
pub mod console_tokens;
pub mod instances;
pub mod nodes;
pub mod quotas;
pub mod services;

/// The compute service's schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "flavors and keypairs",
        sql: "CREATE TABLE flavors (
            flavorid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, memory_mb BIGINT NOT NULL,
            vcpus BIGINT NOT NULL, root_gb BIGINT NOT NULL, ephemeral_gb BIGINT NOT NULL,
            swap BIGINT NOT NULL, rxtx_factor TEXT NOT NULL, is_public BIGINT NOT NULL,
            disabled BIGINT NOT NULL, description TEXT, created_at TEXT NOT NULL,
            updated_at TEXT);
          CREATE TABLE flavor_extra_specs (
            flavorid TEXT NOT NULL, spec_key TEXT NOT NULL, spec_value TEXT NOT NULL,
            PRIMARY KEY (flavorid, spec_key));
          CREATE TABLE flavor_projects (
            flavorid TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (flavorid, project_id));
          CREATE TABLE keypairs (
            id BIGINT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL,
            key_type TEXT NOT NULL, public_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL, UNIQUE (user_id, name));",
    },
    Migration {
        version: 2,
        name: "server groups",
        sql: "CREATE TABLE server_groups (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL,
                max_server_per_host BIGINT, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
                created_at TEXT NOT NULL);
              CREATE INDEX server_groups_project ON server_groups (project_id);
              CREATE TABLE server_group_members (
                group_id TEXT NOT NULL, instance_uuid TEXT NOT NULL,
                PRIMARY KEY (group_id, instance_uuid));
              CREATE TABLE compute_project_locks (
                project_id TEXT PRIMARY KEY, touched BIGINT NOT NULL);",
    },
    Migration {
        version: 3,
        name: "instances, actions, faults, compute nodes",
        sql: "CREATE TABLE compute_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
              INSERT INTO compute_counters (name, value) VALUES ('instances', 0);
              CREATE TABLE instances (
                id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
                user_id TEXT NOT NULL, host TEXT, vm_state TEXT NOT NULL, task_state TEXT,
                power_state BIGINT NOT NULL, deleted BIGINT NOT NULL, created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL, launched_at TEXT, deleted_at TEXT,
                generation BIGINT NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL,
                data TEXT NOT NULL);
              CREATE INDEX instances_project ON instances (project_id, deleted);
              CREATE INDEX instances_host ON instances (host, deleted);
              CREATE INDEX instances_busy ON instances (deleted, task_state);
              CREATE TABLE instance_actions (
                instance_uuid TEXT NOT NULL, request_id TEXT NOT NULL, action TEXT NOT NULL,
                user_id TEXT NOT NULL, project_id TEXT NOT NULL, start_time TEXT NOT NULL,
                updated_at TEXT NOT NULL, message TEXT, seq BIGINT NOT NULL,
                PRIMARY KEY (instance_uuid, request_id));
              CREATE TABLE instance_action_events (
                instance_uuid TEXT NOT NULL, request_id TEXT NOT NULL, event TEXT NOT NULL,
                start_time TEXT NOT NULL, finish_time TEXT, result TEXT, traceback TEXT,
                host TEXT, details TEXT, seq BIGINT NOT NULL);
              CREATE INDEX instance_action_events_uuid ON instance_action_events (instance_uuid);
              CREATE TABLE instance_faults (
                instance_uuid TEXT NOT NULL, code BIGINT NOT NULL, message TEXT NOT NULL,
                details TEXT, host TEXT, created_at TEXT NOT NULL, seq BIGINT NOT NULL);
              CREATE INDEX instance_faults_uuid ON instance_faults (instance_uuid);
              CREATE TABLE compute_nodes (
                host TEXT PRIMARY KEY, node_uuid TEXT NOT NULL UNIQUE, vcpus BIGINT NOT NULL,
                memory_mb BIGINT NOT NULL, disk_gb BIGINT NOT NULL, heartbeat_at TEXT NOT NULL,
                disabled BIGINT NOT NULL, disabled_reason TEXT, forced_down BIGINT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);",
    },
    quotas::QUOTAS_MIGRATION,
    aggregates::AGGREGATES_MIGRATION,
    instances::INDEXES_MIGRATION,
    console_tokens::CONSOLE_TOKENS_MIGRATION,
    nodes::CAPABILITIES_MIGRATION,
    Migration {
        version: 9,
        name: "server group members by instance",
        sql: "CREATE INDEX server_group_members_instance ON server_group_members (instance_uuid);",
    },
];

/// A JSON column that does not decode (or a value that does not encode) is a store error.
pub(crate) fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

/// A flavor.
#[derive(Debug, Clone, PartialEq)]
pub struct Flavor {
    pub flavorid: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub created_at: String,
    pub extra_specs: BTreeMap<String, String>,
}

const FLAVOR_COLUMNS: &str = "flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, \
    rxtx_factor, is_public, disabled, description, created_at";

fn flavor_from_row(row: &AnyRow) -> Result<Flavor, sqlx::Error> {
    let rxtx: String = row.try_get("rxtx_factor")?;
    Ok(Flavor {
        flavorid: row.try_get("flavorid")?,
        name: row.try_get("name")?,
        memory_mb: row.try_get("memory_mb")?,
        vcpus: row.try_get("vcpus")?,
        root_gb: row.try_get("root_gb")?,
        ephemeral_gb: row.try_get("ephemeral_gb")?,
        swap: row.try_get("swap")?,
        rxtx_factor: rxtx.parse().unwrap_or(1.0),
        is_public: row.try_get::<i64, _>("is_public")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        extra_specs: BTreeMap::new(),
    })
}

/// Every flavor with its extra specs (flavors are few; filtering happens in the API).
pub async fn flavors(store: &Store) -> Result<Vec<Flavor>, StoreError> {
    let sql = format!("SELECT {FLAVOR_COLUMNS} FROM flavors");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    let mut flavors = rows
        .iter()
        .map(flavor_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let specs = sqlx::query("SELECT flavorid, spec_key, spec_value FROM flavor_extra_specs")
        .fetch_all(store.pool())
        .await?;
    for row in specs {
        let id: String = row.try_get("flavorid")?;
        if let Some(f) = flavors.iter_mut().find(|f| f.flavorid == id) {
            f.extra_specs
                .insert(row.try_get("spec_key")?, row.try_get("spec_value")?);
        }
    }
    Ok(flavors)
}

/// One flavor by its id, with its extra specs (two primary-key lookups).
pub async fn flavor(store: &Store, flavorid: &str) -> Result<Option<Flavor>, StoreError> {
    let sql = format!("SELECT {FLAVOR_COLUMNS} FROM flavors WHERE flavorid = $1");
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(flavorid)
        .fetch_optional(store.pool())
        .await?
    else {
        return Ok(None);
    };
    let mut flavor = flavor_from_row(&row)?;
    let specs =
        sqlx::query("SELECT spec_key, spec_value FROM flavor_extra_specs WHERE flavorid = $1")
            .bind(flavorid)
            .fetch_all(store.pool())
            .await?;
    for row in specs {
        flavor
            .extra_specs
            .insert(row.try_get("spec_key")?, row.try_get("spec_value")?);
    }
    Ok(Some(flavor))
}

/// Inserts a flavor; a taken id or name is a [`StoreError::Conflict`].
pub async fn insert_flavor(store: &Store, f: &Flavor) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flavors (flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, \
         rxtx_factor, is_public, disabled, description, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&f.flavorid)
    .bind(&f.name)
    .bind(f.memory_mb)
    .bind(f.vcpus)
    .bind(f.root_gb)
    .bind(f.ephemeral_gb)
    .bind(f.swap)
    .bind(f.rxtx_factor.to_string())
    .bind(f.is_public as i64)
    .bind(f.disabled as i64)
    .bind(&f.description)
    .bind(&f.created_at)
    .execute(store.pool())
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// Sets a flavor's description.
pub async fn set_flavor_description(
    store: &Store,
    flavorid: &str,
    description: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE flavors SET description = $2, updated_at = $3 WHERE flavorid = $1")
        .bind(flavorid)
        .bind(description)
        .bind(now)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Deletes a flavor with its extra specs and access list.
pub async fn delete_flavor(store: &Store, flavorid: &str) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for table in ["flavor_extra_specs", "flavor_projects", "flavors"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE flavorid = $1"
        )))
        .bind(flavorid)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets (inserts or replaces) extra specs of a flavor in one transaction.
pub async fn set_extra_specs(
    store: &Store,
    flavorid: &str,
    specs: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (key, value) in specs {
        sqlx::query("DELETE FROM flavor_extra_specs WHERE flavorid = $1 AND spec_key = $2")
            .bind(flavorid)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO flavor_extra_specs (flavorid, spec_key, spec_value) VALUES ($1, $2, $3)",
        )
        .bind(flavorid)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes one extra spec; false when it did not exist.
pub async fn delete_extra_spec(
    store: &Store,
    flavorid: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM flavor_extra_specs WHERE flavorid = $1 AND spec_key = $2")
        .bind(flavorid)
        .bind(key)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(done > 0)
}

/// The id of the flavor named `name` (names are unique).
pub async fn flavor_id_by_name(store: &Store, name: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT flavorid FROM flavors WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// Projects given access to a private flavor.
pub async fn flavor_projects(store: &Store, flavorid: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT project_id FROM flavor_projects WHERE flavorid = $1 ORDER BY project_id",
    )
    .bind(flavorid)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("project_id"))
        .collect::<Result<_, _>>()?)
}

/// Flavors a project was given access to.
pub async fn flavors_of_project(store: &Store, project: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT flavorid FROM flavor_projects WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("flavorid"))
        .collect::<Result<_, _>>()?)
}

/// Grants a project access; a duplicate is a [`StoreError::Conflict`].
pub async fn add_flavor_project(
    store: &Store,
    flavorid: &str,
    project: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO flavor_projects (flavorid, project_id) VALUES ($1, $2)")
        .bind(flavorid)
        .bind(project)
        .execute(store.pool())
        .await
        .map_err(StoreError::from_write)?;
    Ok(())
}

/// Revokes a project's access; false when it had none.
pub async fn remove_flavor_project(
    store: &Store,
    flavorid: &str,
    project: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM flavor_projects WHERE flavorid = $1 AND project_id = $2")
        .bind(flavorid)
        .bind(project)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(done > 0)
}

/// A keypair.
#[derive(Debug, Clone, PartialEq)]
pub struct Keypair {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: String,
}

fn keypair_from_row(row: &AnyRow) -> Result<Keypair, sqlx::Error> {
    Ok(Keypair {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        key_type: row.try_get("key_type")?,
        public_key: row.try_get("public_key")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: row.try_get("created_at")?,
    })
}

const KEYPAIR_COLUMNS: &str = "id, user_id, name, key_type, public_key, fingerprint, created_at";

/// A user's keypairs, by name.
pub async fn keypairs(store: &Store, user_id: &str) -> Result<Vec<Keypair>, StoreError> {
    let sql = format!("SELECT {KEYPAIR_COLUMNS} FROM keypairs WHERE user_id = $1 ORDER BY name");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .iter()
        .map(keypair_from_row)
        .collect::<Result<_, _>>()?)
}

/// Inserts a keypair with the next integer id; a taken name is a [`StoreError::Conflict`].
pub async fn insert_keypair(store: &Store, k: &Keypair) -> Result<i64, StoreError> {
    for _ in 0..5 {
        let result = sqlx::query_scalar::<_, i64>(
            "INSERT INTO keypairs (id, user_id, name, key_type, public_key, fingerprint, \
             created_at) SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM keypairs \
             RETURNING id",
        )
        .bind(&k.user_id)
        .bind(&k.name)
        .bind(&k.key_type)
        .bind(&k.public_key)
        .bind(&k.fingerprint)
        .bind(&k.created_at)
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::from_write);
        match result {
            // Two inserts raced for the same id: take the next one (a name clash is final).
            Err(StoreError::Conflict(msg)) if !msg.contains("name") && !msg.contains("user_id") => {
                continue;
            }
            other => return other,
        }
    }
    Err(StoreError::Conflict(
        "keypair id allocation kept colliding".into(),
    ))
}

/// Deletes a keypair; false when it did not exist.
pub async fn delete_keypair(store: &Store, user_id: &str, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM keypairs WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(done > 0)
}

/// A server group.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub policy: String,
    pub max_server_per_host: Option<i64>,
    pub project_id: String,
    pub user_id: String,
    pub created_at: String,
    pub members: Vec<String>,
}

/// Server groups, of one project or of all (`None`), oldest first, with their members.
pub async fn server_groups(
    store: &Store,
    project: Option<&str>,
) -> Result<Vec<ServerGroup>, StoreError> {
    let rows = match project {
        Some(p) => {
            sqlx::query(
                "SELECT id, name, policy, max_server_per_host, project_id, user_id, created_at \
                 FROM server_groups WHERE project_id = $1 ORDER BY created_at, id",
            )
            .bind(p)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query(
                "SELECT id, name, policy, max_server_per_host, project_id, user_id, created_at \
                 FROM server_groups ORDER BY created_at, id",
            )
            .fetch_all(store.pool())
            .await?
        }
    };
    let mut groups = rows
        .iter()
        .map(server_group_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let position: std::collections::HashMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.clone(), i))
        .collect();
    let members = match project {
        Some(p) => {
            sqlx::query(
                "SELECT m.group_id, m.instance_uuid FROM server_group_members m \
                 JOIN server_groups g ON g.id = m.group_id WHERE g.project_id = $1",
            )
            .bind(p)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query("SELECT group_id, instance_uuid FROM server_group_members")
                .fetch_all(store.pool())
                .await?
        }
    };
    for row in members {
        let group: String = row.try_get("group_id")?;
        if let Some(&i) = position.get(&group) {
            groups[i].members.push(row.try_get("instance_uuid")?);
        }
    }
    Ok(groups)
}

/// One server group by id with its members (primary-key lookups, as each build with a group
/// asks for its group).
pub async fn server_group(store: &Store, id: &str) -> Result<Option<ServerGroup>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, name, policy, max_server_per_host, project_id, user_id, created_at \
         FROM server_groups WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let mut group = server_group_from_row(&row)?;
    group.members = sqlx::query(
        "SELECT instance_uuid FROM server_group_members WHERE group_id = $1 ORDER BY instance_uuid",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| r.try_get("instance_uuid"))
    .collect::<Result<_, _>>()?;
    Ok(Some(group))
}

/// The ids of the server groups `instance_uuid` belongs to (by the members' instance index).
pub async fn server_groups_of_instance(
    store: &Store,
    instance_uuid: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query(
        "SELECT group_id FROM server_group_members WHERE instance_uuid = $1 ORDER BY group_id",
    )
    .bind(instance_uuid)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| r.try_get("group_id").map_err(StoreError::from))
    .collect()
}

fn server_group_from_row(row: &AnyRow) -> Result<ServerGroup, sqlx::Error> {
    Ok(ServerGroup {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        policy: row.try_get("policy")?,
        max_server_per_host: row.try_get("max_server_per_host")?,
        project_id: row.try_get("project_id")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        members: Vec::new(),
    })
}

/// Serialises quota-checked writes of one project until the transaction ends: the project's
/// lock row is updated first, so on PostgreSQL a concurrent transaction waits on the row lock
/// (SQLite serialises writers anyway).
pub async fn lock_project(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    project: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO compute_project_locks (project_id, touched) VALUES ($1, 0) \
         ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE compute_project_locks SET touched = touched + 1 WHERE project_id = $1")
        .bind(project)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts a server group if its project has fewer than `quota` (negative: unlimited), in one
/// transaction so concurrent creates cannot pass the quota together. False when over quota.
pub async fn insert_server_group(
    store: &Store,
    g: &ServerGroup,
    quota: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    lock_project(&mut tx, &g.project_id).await?;
    let inserted = sqlx::query(
        "INSERT INTO server_groups (id, name, policy, max_server_per_host, project_id, user_id, \
         created_at) SELECT $1, $2, $3, $4, $5, $6, $7 \
         WHERE $8 < 0 OR (SELECT COUNT(*) FROM server_groups WHERE project_id = $5) < $8",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.policy)
    .bind(g.max_server_per_host)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.created_at)
    .bind(quota)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from_write)?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted == 1)
}

/// Deletes a server group and its membership rows; false when it did not exist.
pub async fn delete_server_group(store: &Store, id: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    sqlx::query("DELETE FROM server_group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM server_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(done > 0)
}

/// This process's turn to write to the compute tables, on SQLite: held across one write
/// statement or one write transaction, never while waiting for anything else. SQLite has one
/// writer at a time, and a connection that finds the database locked sleeps in its busy
/// handler (1, 2, 5, 10 ms and longer) however soon the lock is free again; taking turns here
/// first hands the lock from one writer to the next at once, in arrival order. None (no
/// waiting) on PostgreSQL, whose row locks let writers run side by side.
pub(crate) async fn write_turn(store: &Store) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    match store.backend() {
        ferrostack_store::Backend::Sqlite => Some(WRITES.lock().await),
        ferrostack_store::Backend::Postgres => None,
    }
}
