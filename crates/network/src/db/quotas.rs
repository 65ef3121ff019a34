//! Quotas: the `[network]` defaults, overridden per project (Neutron's `quotas` table); usage is
//! counted from the live rows under the project's quota lock, so concurrent creates cannot pass
//! a limit together.

use super::{Result, Tx};
use crate::service::Settings;
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// Every quota resource, sorted.
pub const RESOURCES: &[&str] = &[
    "floatingip",
    "network",
    "port",
    "router",
    "security_group",
    "security_group_rule",
    "subnet",
    "subnetpool",
];

fn count_sql(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "network" => "SELECT COUNT(*) FROM net_networks WHERE project_id = $1",
        "subnet" => "SELECT COUNT(*) FROM net_subnets WHERE project_id = $1",
        "port" => "SELECT COUNT(*) FROM net_ports WHERE project_id = $1",
        "router" => "SELECT COUNT(*) FROM net_routers WHERE project_id = $1",
        "floatingip" => "SELECT COUNT(*) FROM net_floatingips WHERE project_id = $1",
        "security_group" => "SELECT COUNT(*) FROM net_security_groups WHERE project_id = $1",
        "security_group_rule" => {
            "SELECT COUNT(*) FROM net_security_group_rules WHERE project_id = $1"
        }
        "subnetpool" => "SELECT COUNT(*) FROM net_subnetpools WHERE project_id = $1",
        _ => return None,
    })
}

/// The project's limits: its overrides over the defaults.
pub async fn limits(
    conn: &mut AnyConnection,
    settings: &Settings,
    project: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut limits: BTreeMap<String, i64> = settings
        .quota_defaults
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT resource, hard_limit FROM net_quotas WHERE project_id = $1")
            .bind(project)
            .fetch_all(conn)
            .await?;
    for (resource, limit) in rows {
        if limits.contains_key(&resource) {
            limits.insert(resource, limit);
        }
    }
    Ok(limits)
}

/// The projects that have overrides.
pub async fn projects_with_overrides(conn: &mut AnyConnection) -> Result<Vec<String>> {
    super::strings(
        conn,
        "SELECT DISTINCT project_id FROM net_quotas ORDER BY project_id",
        &[],
    )
    .await
}

/// What the project uses of every resource.
pub async fn usage(conn: &mut AnyConnection, project: &str) -> Result<BTreeMap<String, i64>> {
    let mut used = BTreeMap::new();
    for resource in RESOURCES {
        if let Some(sql) = count_sql(resource) {
            used.insert(
                resource.to_string(),
                super::count(conn, sql, &[project]).await?,
            );
        }
    }
    Ok(used)
}

/// Sets the project's limit of `resource`.
pub async fn set(tx: &mut Tx, project: &str, resource: &str, limit: i64) -> Result<()> {
    sqlx::query("DELETE FROM net_quotas WHERE project_id = $1 AND resource = $2")
        .bind(project)
        .bind(resource)
        .execute(tx.conn())
        .await?;
    sqlx::query("INSERT INTO net_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)")
        .bind(project)
        .bind(resource)
        .bind(limit)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Drops the project's overrides (back to the defaults).
pub async fn reset(tx: &mut Tx, project: &str) -> Result<u64> {
    tx.exec("DELETE FROM net_quotas WHERE project_id = $1", &[project])
        .await
}

/// Takes the project's quota lock and checks that `delta` more of `resource` fit its limit
/// (409 `OverQuota` otherwise). Call before inserting the rows.
pub async fn check(
    tx: &mut Tx,
    settings: &Settings,
    project: &str,
    resource: &str,
    delta: i64,
) -> Result<()> {
    if delta <= 0 || project.is_empty() {
        return Ok(());
    }
    tx.lock_name(&format!("quota:{project}")).await?;
    let limit = limits(tx.conn(), settings, project)
        .await?
        .get(resource)
        .copied()
        .unwrap_or(-1);
    if limit < 0 {
        return Ok(());
    }
    let sql = count_sql(resource).expect("a quota resource");
    let used = tx.count(sql, &[project]).await?;
    if used + delta > limit {
        return Err(crate::errors::over_quota(resource).into());
    }
    Ok(())
}
