//! Quota limits and usage (Nova's `nova/quota.py` with the database driver): the `[quota]`
//! defaults, overridden per project (`PUT /os-quota-sets/{project}`, Nova's `quotas` table) and
//! per user within a project (`?user_id=`, Nova's `project_user_quotas`); usage is counted from
//! the live rows, never reserved.

use ferrostack_config::ComputeConfig;
use ferrostack_store::{Migration, Row, Store, StoreError};
use std::collections::BTreeMap;

/// The quota override tables (compute migration 4).
pub const QUOTAS_MIGRATION: Migration = Migration {
    version: 4,
    name: "quota overrides",
    sql: "CREATE TABLE compute_quotas (
            project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL,
            PRIMARY KEY (project_id, resource));
          CREATE TABLE compute_user_quotas (
            project_id TEXT NOT NULL, user_id TEXT NOT NULL, resource TEXT NOT NULL,
            hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, user_id, resource));",
};

/// Every quota resource, sorted (Nova's `QUOTAS` resources).
pub const RESOURCES: &[&str] = &[
    "cores",
    "fixed_ips",
    "floating_ips",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "injected_files",
    "instances",
    "key_pairs",
    "metadata_items",
    "ram",
    "security_group_rules",
    "security_groups",
    "server_group_members",
    "server_groups",
];

/// The nova-network resources, dropped from the API at 2.36 (unlimited by default).
pub const NETWORK_RESOURCES: &[&str] = &[
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
];

/// The personality (injected file) resources, dropped from the API at 2.57.
pub const INJECTED_FILE_RESOURCES: &[&str] = &[
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "injected_files",
];

/// Resources whose limits are always per project, even when set with a `user_id` (Nova's
/// `PER_PROJECT_QUOTAS`).
pub const PER_PROJECT_RESOURCES: &[&str] = &["fixed_ips", "floating_ips"];

/// The limit of every quota resource (`-1` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub metadata_items: i64,
    pub key_pairs: i64,
    pub server_groups: i64,
    pub server_group_members: i64,
    pub injected_files: i64,
    pub injected_file_content_bytes: i64,
    /// Nova's `quota.injected_file_path_length` option.
    pub injected_file_path_bytes: i64,
    pub fixed_ips: i64,
    pub floating_ips: i64,
    pub security_groups: i64,
    pub security_group_rules: i64,
}

impl QuotaLimits {
    /// The configured defaults (Nova's `[quota]` options; the network resources unlimited).
    pub fn defaults(config: &ComputeConfig) -> QuotaLimits {
        QuotaLimits {
            instances: config.quota_instances,
            cores: config.quota_cores,
            ram: config.quota_ram,
            metadata_items: config.quota_metadata_items,
            key_pairs: crate::service::KEY_PAIRS_QUOTA,
            server_groups: crate::service::SERVER_GROUPS_QUOTA,
            server_group_members: crate::service::SERVER_GROUP_MEMBERS_QUOTA,
            injected_files: 5,
            injected_file_content_bytes: 10240,
            injected_file_path_bytes: 255,
            fixed_ips: -1,
            floating_ips: -1,
            security_groups: -1,
            security_group_rules: -1,
        }
    }

    fn slot(&mut self, resource: &str) -> Option<&mut i64> {
        Some(match resource {
            "instances" => &mut self.instances,
            "cores" => &mut self.cores,
            "ram" => &mut self.ram,
            "metadata_items" => &mut self.metadata_items,
            "key_pairs" => &mut self.key_pairs,
            "server_groups" => &mut self.server_groups,
            "server_group_members" => &mut self.server_group_members,
            "injected_files" => &mut self.injected_files,
            "injected_file_content_bytes" => &mut self.injected_file_content_bytes,
            "injected_file_path_bytes" => &mut self.injected_file_path_bytes,
            "fixed_ips" => &mut self.fixed_ips,
            "floating_ips" => &mut self.floating_ips,
            "security_groups" => &mut self.security_groups,
            "security_group_rules" => &mut self.security_group_rules,
            _ => return None,
        })
    }

    /// The limit of `resource` by its API name; `None` for an unknown resource.
    pub fn get(&self, resource: &str) -> Option<i64> {
        let mut copy = *self;
        copy.slot(resource).copied()
    }

    /// Sets the limit of `resource`; false for an unknown resource.
    pub fn set(&mut self, resource: &str, limit: i64) -> bool {
        match self.slot(resource) {
            Some(v) => {
                *v = limit;
                true
            }
            None => false,
        }
    }

    /// Every resource with its limit, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        RESOURCES.iter().map(|r| (*r, self.get(r).unwrap_or(-1)))
    }

    /// The limits the server create checks, as [`super::instances::create_instances`] takes
    /// them.
    pub fn server_quota(&self) -> super::instances::ServerQuota {
        super::instances::ServerQuota {
            instances: self.instances,
            cores: self.cores,
            ram: self.ram,
        }
    }
}

/// What a project (or one user of it) uses of the counted resources. `key_pairs` and
/// `server_group_members` are counted per user or per group where they are checked, and show
/// as 0 here, as in Nova.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Live (not deleted) instances, whatever their state (BUILD and ERROR included).
    pub instances: i64,
    /// Their flavors' vcpus.
    pub cores: i64,
    /// Their flavors' memory in MiB.
    pub ram: i64,
    pub server_groups: i64,
}

impl QuotaUsage {
    /// The usage of `resource` (0 for resources that are not counted).
    pub fn in_use(&self, resource: &str) -> i64 {
        match resource {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            "server_groups" => self.server_groups,
            _ => 0,
        }
    }
}

/// The project's overrides, resource → limit.
pub async fn overrides(store: &Store, project: &str) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM compute_quotas WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?)))
        .collect()
}

/// One user's overrides within a project, resource → limit.
pub async fn user_overrides(
    store: &Store,
    project: &str,
    user: &str,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT resource, hard_limit FROM compute_user_quotas \
         WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project)
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?)))
        .collect()
}

/// Per resource, the sum of the user limits set in `project`, leaving out `except_user`'s
/// (what Nova subtracts from a project's limit to know what is left to give out).
pub async fn user_limit_sums(
    store: &Store,
    project: &str,
    except_user: Option<&str>,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT resource, CAST(SUM(hard_limit) AS BIGINT) AS total FROM compute_user_quotas \
         WHERE project_id = $1 AND user_id <> $2 AND hard_limit >= 0 GROUP BY resource",
    )
    .bind(project)
    .bind(except_user.unwrap_or(""))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("total")?)))
        .collect()
}

/// The limits of `project`: its overrides over the configured defaults. Server create checks
/// `instances`, `cores` and `ram` of this against [`usage`].
pub async fn limits(
    store: &Store,
    project: &str,
    defaults: &ComputeConfig,
) -> Result<QuotaLimits, StoreError> {
    let mut limits = QuotaLimits::defaults(defaults);
    for (resource, limit) in overrides(store, project).await? {
        limits.set(&resource, limit);
    }
    Ok(limits)
}

/// The limits of `user` in `project`: the user's overrides over [`limits`] (Nova's
/// `get_user_quotas`).
pub async fn user_limits(
    store: &Store,
    project: &str,
    user: &str,
    defaults: &ComputeConfig,
) -> Result<QuotaLimits, StoreError> {
    let mut limits = limits(store, project, defaults).await?;
    for (resource, limit) in user_overrides(store, project, user).await? {
        limits.set(&resource, limit);
    }
    Ok(limits)
}

/// Sets (inserts or replaces) limits of `project` in one transaction.
pub async fn set(store: &Store, project: &str, entries: &[(&str, i64)]) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (resource, limit) in entries {
        sqlx::query(
            "INSERT INTO compute_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
        )
        .bind(project)
        .bind(*resource)
        .bind(*limit)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets limits of `user` in `project` in one transaction; the per-project resources
/// ([`PER_PROJECT_RESOURCES`]) go to the project's limits, as in Nova.
pub async fn set_for_user(
    store: &Store,
    project: &str,
    user: &str,
    entries: &[(&str, i64)],
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (resource, limit) in entries {
        if PER_PROJECT_RESOURCES.contains(resource) {
            sqlx::query(
                "INSERT INTO compute_quotas (project_id, resource, hard_limit) \
                 VALUES ($1, $2, $3) ON CONFLICT (project_id, resource) \
                 DO UPDATE SET hard_limit = excluded.hard_limit",
            )
            .bind(project)
            .bind(*resource)
            .bind(*limit)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO compute_user_quotas (project_id, user_id, resource, hard_limit) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, user_id, resource) \
                 DO UPDATE SET hard_limit = excluded.hard_limit",
            )
            .bind(project)
            .bind(user)
            .bind(*resource)
            .bind(*limit)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Reverts `project` to the defaults: its overrides and those of its users are removed.
pub async fn delete(store: &Store, project: &str) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for table in ["compute_quotas", "compute_user_quotas"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE project_id = $1"
        )))
        .bind(project)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the overrides of `user` in `project` (back to the project's limits).
pub async fn delete_for_user(store: &Store, project: &str, user: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM compute_user_quotas WHERE project_id = $1 AND user_id = $2")
        .bind(project)
        .bind(user)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// What `project` uses: live instances with their flavors' vcpus and memory, and its server
/// groups.
pub async fn usage(store: &Store, project: &str) -> Result<QuotaUsage, StoreError> {
    count(store, project, None).await
}

/// What `user` uses within `project` (instances and server groups the user created).
pub async fn user_usage(
    store: &Store,
    project: &str,
    user: &str,
) -> Result<QuotaUsage, StoreError> {
    count(store, project, Some(user)).await
}

async fn count(store: &Store, project: &str, user: Option<&str>) -> Result<QuotaUsage, StoreError> {
    let by_user = if user.is_some() {
        " AND user_id = $2"
    } else {
        ""
    };
    let instances = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS cores, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS ram FROM instances \
         WHERE project_id = $1 AND deleted = 0{by_user}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(instances)).bind(project);
    if let Some(u) = user {
        q = q.bind(u);
    }
    let row = q.fetch_one(store.pool()).await?;
    let groups = format!("SELECT COUNT(*) AS n FROM server_groups WHERE project_id = $1{by_user}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(groups)).bind(project);
    if let Some(u) = user {
        q = q.bind(u);
    }
    let server_groups: i64 = q.fetch_one(store.pool()).await?.try_get("n")?;
    Ok(QuotaUsage {
        instances: row.try_get("n")?,
        cores: row.try_get("cores")?,
        ram: row.try_get("ram")?,
        server_groups,
    })
}
