//! Limits (`nova/api/openstack/compute/limits.py`, `views/limits.py`): a project's quota
//! limits and usage under Nova's absolute-limit names; rate limits are gone (`rate: []`).

use super::services::{query_value, strict_query};
use super::{AppState, Mv, at_least};
use crate::db::quotas;
use crate::service::db_error;
use axum::{Json, extract::Query};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};

/// Absolute limit names per quota resource (`views/limits.py`).
const LIMIT_NAMES: &[(&str, &str)] = &[
    ("ram", "maxTotalRAMSize"),
    ("instances", "maxTotalInstances"),
    ("cores", "maxTotalCores"),
    ("key_pairs", "maxTotalKeypairs"),
    ("floating_ips", "maxTotalFloatingIps"),
    ("metadata_items", "maxServerMeta"),
    ("metadata_items", "maxImageMeta"),
    ("injected_files", "maxPersonality"),
    ("injected_file_content_bytes", "maxPersonalitySize"),
    ("security_groups", "maxSecurityGroups"),
    ("security_group_rules", "maxSecurityGroupRules"),
    ("server_groups", "maxServerGroups"),
    ("server_group_members", "maxServerGroupMembers"),
];

/// Usage names per quota resource.
const USED_NAMES: &[(&str, &str)] = &[
    ("ram", "totalRAMUsed"),
    ("cores", "totalCoresUsed"),
    ("instances", "totalInstancesUsed"),
    ("floating_ips", "totalFloatingIpsUsed"),
    ("security_groups", "totalSecurityGroupsUsed"),
    ("server_groups", "totalServerGroupsUsed"),
];

/// Resources left out at the request's microversion (`FILTERED_LIMITS_v236`, `_v257`).
fn filtered(mv: &Mv, resource: &str) -> bool {
    let network = ["floating_ips", "security_groups", "security_group_rules"];
    let files = ["injected_files", "injected_file_content_bytes"];
    (at_least(mv, 2, 36) && network.contains(&resource))
        || (at_least(mv, 2, 57) && files.contains(&resource))
}

/// The `absolute` object for `limits` and `usage` at the request's microversion.
pub(crate) fn absolute(mv: &Mv, limits: &quotas::QuotaLimits, usage: &quotas::QuotaUsage) -> Value {
    let mut absolute = Map::new();
    for (resource, name) in LIMIT_NAMES {
        if filtered(mv, resource) || (*name == "maxImageMeta" && at_least(mv, 2, 39)) {
            continue;
        }
        absolute.insert((*name).into(), json!(limits.get(resource).unwrap_or(-1)));
    }
    for (resource, name) in USED_NAMES {
        if !filtered(mv, resource) {
            absolute.insert((*name).into(), json!(usage.in_use(resource)));
        }
    }
    Value::Object(absolute)
}

/// `GET /limits[?tenant_id=]`: the caller's project, or another one for admins.
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:limits", &json!({}))?;
    strict_query(&mv, &query, &["tenant_id"])?;
    let mut project = auth.project_id().unwrap_or_default().to_string();
    if let Some(tenant) = query_value(&query, "tenant_id") {
        auth.enforce(
            "os_compute_api:limits:other_project",
            &json!({"project_id": project, "user_id": auth.user.id}),
        )?;
        project = tenant.to_string();
    }
    let c = &state.0;
    let limits = quotas::limits(&c.store, &project, &c.config)
        .await
        .map_err(db_error)?;
    let usage = quotas::usage(&c.store, &project).await.map_err(db_error)?;
    Ok(Json(
        json!({"limits": {"rate": [], "absolute": absolute(&mv, &limits, &usage)}}),
    ))
}
