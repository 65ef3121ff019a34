//! Quotas: each project's limits (the `vol_quotas` rows over the configured defaults) and its
//! usage, counted from the rows themselves inside the write transaction that adds to it, under
//! the project's `quota:<project>` lock, so concurrent creates can never exceed a limit.
//! Cinder's resources: `volumes`, `snapshots`, `gigabytes` (volumes and snapshots together),
//! `per_volume_gigabytes`, `backups`, `backup_gigabytes`, `groups`, and per volume type
//! `volumes_<type>`, `snapshots_<type>`, `gigabytes_<type>` (unlimited unless set).

use crate::db::{Result, Tx};
use crate::errors;
use crate::service::Settings;
use ferrostack_store::doc;
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// What an operation adds to a project's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    /// The volume type the volumes or snapshots are of (for the per-type limits).
    pub volume_type: Option<(String, String)>,
}

/// The quota class whose limits are every project's defaults.
pub const DEFAULT_CLASS: &str = "default";

/// The limits set for quota class `class` (`vol_quota_classes`).
pub async fn class_limits(conn: &mut AnyConnection, class: &str) -> Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT resource, hard_limit FROM vol_quota_classes WHERE class_name = $1")
            .bind(class)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Every project's default limits: the configured defaults overridden by the `default` quota
/// class (Cinder's `use_default_quota_class`). Per-type resources appear only when the class
/// sets them (else they are unlimited).
pub async fn defaults(
    conn: &mut AnyConnection,
    settings: &Settings,
) -> Result<BTreeMap<String, i64>> {
    let mut limits: BTreeMap<String, i64> = settings
        .quota_defaults
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    limits.extend(class_limits(conn, DEFAULT_CLASS).await?);
    Ok(limits)
}

/// The project's limits: the defaults overridden by its own rows (`-1` = unlimited).
pub async fn limits(
    conn: &mut AnyConnection,
    settings: &Settings,
    project: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut limits = defaults(&mut *conn, settings).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT resource, hard_limit FROM vol_quotas WHERE project_id = $1")
            .bind(project)
            .fetch_all(conn)
            .await?;
    limits.extend(rows);
    Ok(limits)
}

/// The project's usage of `volumes`, `snapshots` and `gigabytes` (and, for `volume_type`
/// `(id, name)`, of the per-type resources).
pub async fn usage(
    conn: &mut AnyConnection,
    project: &str,
    volume_type: Option<(&str, &str)>,
) -> Result<BTreeMap<String, i64>> {
    let volumes = doc::count(
        &mut *conn,
        "SELECT COUNT(*) FROM vol_volumes WHERE project_id = $1 AND consumes_quota = 1",
        &[project],
    )
    .await?;
    let snapshots = doc::count(
        &mut *conn,
        "SELECT COUNT(*) FROM vol_snapshots WHERE project_id = $1 AND consumes_quota = 1",
        &[project],
    )
    .await?;
    let gigabytes = doc::count(
        &mut *conn,
        "SELECT CAST(COALESCE(SUM(size), 0) + (SELECT COALESCE(SUM(size), 0) \
         FROM vol_snapshots WHERE project_id = $1 AND consumes_quota = 1) AS BIGINT) \
         FROM vol_volumes WHERE project_id = $1 AND consumes_quota = 1",
        &[project],
    )
    .await?;
    let mut usage = BTreeMap::from([
        ("volumes".to_string(), volumes),
        ("snapshots".to_string(), snapshots),
        ("gigabytes".to_string(), gigabytes),
    ]);
    if let Some((type_id, type_name)) = volume_type {
        let binds = [project, type_id];
        let volumes = doc::count(
            &mut *conn,
            "SELECT COUNT(*) FROM vol_volumes WHERE project_id = $1 AND consumes_quota = 1 \
             AND (volume_type_id = $2 OR retype_to = $2)",
            &binds,
        )
        .await?;
        let snapshots = doc::count(
            &mut *conn,
            "SELECT COUNT(*) FROM vol_snapshots WHERE project_id = $1 AND consumes_quota = 1 \
             AND volume_id IN (SELECT id FROM vol_volumes WHERE volume_type_id = $2)",
            &binds,
        )
        .await?;
        let gigabytes = doc::count(
            &mut *conn,
            "SELECT CAST(COALESCE(SUM(size), 0) + (SELECT COALESCE(SUM(size), 0) \
             FROM vol_snapshots WHERE project_id = $1 AND consumes_quota = 1 AND volume_id IN \
             (SELECT id FROM vol_volumes WHERE volume_type_id = $2)) AS BIGINT) \
             FROM vol_volumes WHERE project_id = $1 AND consumes_quota = 1 \
             AND (volume_type_id = $2 OR retype_to = $2)",
            &binds,
        )
        .await?;
        usage.insert(format!("volumes_{type_name}"), volumes);
        usage.insert(format!("snapshots_{type_name}"), snapshots);
        usage.insert(format!("gigabytes_{type_name}"), gigabytes);
    }
    Ok(usage)
}

/// Refuses (413) moving the volumes and gigabytes of `delta` into its volume type's per-type
/// quotas only (a retype: the project's totals do not change). Takes the project's quota lock
/// first, as [`check`].
pub async fn check_type(
    tx: &mut Tx,
    settings: &Settings,
    project: &str,
    delta: &Delta,
) -> Result<()> {
    let Some((type_id, name)) = &delta.volume_type else {
        return Ok(());
    };
    tx.lock_name(&format!("quota:{project}")).await?;
    let limits = limits(tx.conn(), settings, project).await?;
    let usage = usage(tx.conn(), project, Some((type_id, name))).await?;
    let wanted = vec![
        (format!("gigabytes_{name}"), delta.gigabytes),
        (format!("volumes_{name}"), delta.volumes),
    ];
    over_limit(&limits, &usage, wanted)
}

/// The first resource of `wanted` (with what it adds) that would go over its limit, as
/// Cinder's 413.
fn over_limit(
    limits: &BTreeMap<String, i64>,
    usage: &BTreeMap<String, i64>,
    wanted: Vec<(String, i64)>,
) -> Result<()> {
    for (resource, add) in wanted {
        let limit = limits.get(&resource).copied().unwrap_or(-1);
        let used = usage.get(&resource).copied().unwrap_or(0);
        if add <= 0 || limit < 0 || used + add <= limit {
            continue;
        }
        let message = if resource.starts_with("gigabytes") {
            format!(
                "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
                 {resource} quota. Requested {add}G, quota is {limit}G and {used}G has been \
                 consumed."
            )
        } else if resource.starts_with("volumes") {
            format!(
                "VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for quota '{resource}'."
            )
        } else {
            format!(
                "SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded."
            )
        };
        return Err(errors::over_quota(message).into());
    }
    Ok(())
}

/// Refuses (413, with Cinder's messages) an operation whose `delta` would take `project` over
/// a limit. Takes the project's quota lock first: call it in the transaction that then writes
/// the rows that consume the quota.
pub async fn check(tx: &mut Tx, settings: &Settings, project: &str, delta: &Delta) -> Result<()> {
    tx.lock_name(&format!("quota:{project}")).await?;
    let limits = limits(tx.conn(), settings, project).await?;
    let per_volume = limits.get("per_volume_gigabytes").copied().unwrap_or(-1);
    if delta.volumes > 0 && per_volume >= 0 && delta.gigabytes > per_volume {
        return Err(errors::over_quota(format!(
            "Requested volume size {}G is larger than maximum allowed limit {per_volume}G.",
            delta.gigabytes
        ))
        .into());
    }
    let type_ref = delta
        .volume_type
        .as_ref()
        .map(|(id, name)| (id.as_str(), name.as_str()));
    let usage = usage(tx.conn(), project, type_ref).await?;
    let mut wanted = vec![
        ("gigabytes".to_string(), delta.gigabytes),
        ("volumes".to_string(), delta.volumes),
        ("snapshots".to_string(), delta.snapshots),
    ];
    if let Some((_, name)) = &delta.volume_type {
        wanted.push((format!("gigabytes_{name}"), delta.gigabytes));
        wanted.push((format!("volumes_{name}"), delta.volumes));
        wanted.push((format!("snapshots_{name}"), delta.snapshots));
    }
    over_limit(&limits, &usage, wanted)
}
