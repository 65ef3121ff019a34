//! Quota sets (`nova/api/openstack/compute/quota_sets.py`, `nova/quota.py`): a project's
//! limits (and one user's within it with `?user_id=`), the defaults, usage, and admin changes
//! that may not go below what is already used unless forced.
//!
//! Nova also answers 400 when `{project_id}` is not a Keystone project; the compute service
//! cannot ask the identity service yet, so any project id is accepted.

use super::services::{boolean, query_value, strict_query};
use super::{AppState, Mv, at_least};
use crate::db::quotas::{self, INJECTED_FILE_RESOURCES, NETWORK_RESOURCES, QuotaLimits, RESOURCES};
use crate::service::db_error;
use axum::{
    Json,
    extract::{Path, Query},
    http::StatusCode,
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Nova's `MAX_INT` (`nova/db/constants.py`): the largest limit accepted.
const MAX_LIMIT: i64 = 0x7FFF_FFFF;

/// Whether `resource` is part of quota sets at the request's microversion (2.36 drops the
/// network resources, 2.57 the injected files).
fn shown(mv: &Mv, resource: &str) -> bool {
    !(at_least(mv, 2, 36) && NETWORK_RESOURCES.contains(&resource)
        || at_least(mv, 2, 57) && INJECTED_FILE_RESOURCES.contains(&resource))
}

fn quota_set(id: Option<&str>, limits: &QuotaLimits, mv: &Mv) -> Value {
    let mut b = Map::new();
    if let Some(id) = id {
        b.insert("id".into(), json!(id));
    }
    for (resource, limit) in limits.iter().filter(|(r, _)| shown(mv, r)) {
        b.insert(resource.into(), json!(limit));
    }
    json!({"quota_set": b})
}

fn target(project: &str) -> Value {
    json!({"project_id": project})
}

/// The limits of the project, or of `user` in it.
async fn current(
    state: &AppState,
    project: &str,
    user: Option<&str>,
) -> Result<QuotaLimits, ApiError> {
    let c = &state.0;
    match user {
        Some(u) => quotas::user_limits(&c.store, project, u, &c.config).await,
        None => quotas::limits(&c.store, project, &c.config).await,
    }
    .map_err(db_error)
}

/// `GET /os-quota-sets/{project_id}[?user_id=]`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-quota-sets:show", &target(&id))?;
    strict_query(&mv, &query, &["user_id"])?;
    let user = query_value(&query, "user_id");
    let limits = current(&state, &id, user).await?;
    Ok(Json(quota_set(Some(&id), &limits, &mv)))
}

/// `GET /os-quota-sets/{project_id}/detail[?user_id=]`: each resource's `limit`, `in_use`
/// and `reserved` (always 0: usage is counted, never reserved).
pub async fn detail(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-quota-sets:detail", &target(&id))?;
    strict_query(&mv, &query, &["user_id"])?;
    let user = query_value(&query, "user_id");
    let limits = current(&state, &id, user).await?;
    let c = &state.0;
    let usage = match user {
        Some(u) => quotas::user_usage(&c.store, &id, u).await,
        None => quotas::usage(&c.store, &id).await,
    }
    .map_err(db_error)?;
    let mut b = Map::new();
    b.insert("id".into(), json!(id));
    for (resource, limit) in limits.iter().filter(|(r, _)| shown(&mv, r)) {
        b.insert(
            resource.into(),
            json!({"limit": limit, "in_use": usage.in_use(resource), "reserved": 0}),
        );
    }
    Ok(Json(json!({"quota_set": b})))
}

/// `GET /os-quota-sets/{project_id}/defaults`
pub async fn defaults(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-quota-sets:defaults", &target(&id))?;
    let limits = QuotaLimits::defaults(&state.0.config);
    Ok(Json(quota_set(Some(&id), &limits, &mv)))
}

/// A limit as the schema takes it: an integer, or a string of one, within -1..=MAX_INT.
fn limit_value(resource: &str, v: &Value) -> Result<i64, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if regex_like_integer(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (-1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) if n < -1 => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {resource}. Value: {v}. {v} is less than the \
             minimum of -1"
        ))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {resource}. Value: {v}. {v} is greater than the \
             maximum of {MAX_LIMIT}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {resource}. Value: {v}. {v} is not of type \
             'integer', 'string'"
        ))),
    }
}

/// `^-?[0-9]+$`
fn regex_like_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Requested limits, resource → limit, in the body's order.
type Wanted = Vec<(&'static str, i64)>;

/// The update body at the request's microversion: the requested limits and `force`.
fn parse_update(body: &Value, mv: &Mv) -> Result<(Wanted, bool), ApiError> {
    let Some(top) = body.as_object() else {
        return Err(ApiError::bad_request("'quota_set' is a required property"));
    };
    if let Some(extra) = top.keys().find(|k| *k != "quota_set") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let set = match top.get("quota_set") {
        Some(Value::Object(set)) => set,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute quota_set. Value: {v}. {v} is not of type \
                 'object'"
            )));
        }
        None => return Err(ApiError::bad_request("'quota_set' is a required property")),
    };
    let mut force = false;
    let mut wanted = Vec::new();
    for (key, v) in set {
        if key == "force" {
            force = boolean(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute force. Value: {v}. {v} is not of type \
                     'boolean', 'string'"
                ))
            })?;
            continue;
        }
        let Some(resource) = RESOURCES
            .iter()
            .copied()
            .find(|r| *r == key && shown(mv, r))
        else {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute quota_set. Additional properties are not \
                 allowed ('{key}' was unexpected)"
            )));
        };
        wanted.push((resource, limit_value(resource, v)?));
    }
    Ok((wanted, force))
}

/// Treats -1 (unlimited) as infinity for comparisons.
fn inf(v: i64) -> f64 {
    if v < 0 { f64::INFINITY } else { v as f64 }
}

/// The range each limit may be set within, as Nova's `get_settable_quotas`: not below what is
/// in use (nor, for a project, below what its users' limits add up to); for a user, not above
/// what the project has left to give out.
async fn settable(
    state: &AppState,
    project: &str,
    user: Option<&str>,
) -> Result<BTreeMap<&'static str, (i64, i64)>, ApiError> {
    let c = &state.0;
    let store = &c.store;
    let project_limits = quotas::limits(store, project, &c.config)
        .await
        .map_err(db_error)?;
    let mut range = BTreeMap::new();
    match user {
        Some(u) => {
            let usage = quotas::user_usage(store, project, u)
                .await
                .map_err(db_error)?;
            let others = quotas::user_limit_sums(store, project, Some(u))
                .await
                .map_err(db_error)?;
            for (resource, limit) in project_limits.iter() {
                let maximum = if limit < 0 {
                    -1
                } else {
                    limit - others.get(resource).copied().unwrap_or(0)
                };
                range.insert(resource, (usage.in_use(resource), maximum));
            }
        }
        None => {
            let usage = quotas::usage(store, project).await.map_err(db_error)?;
            let users = quotas::user_limit_sums(store, project, None)
                .await
                .map_err(db_error)?;
            for (resource, limit) in project_limits.iter() {
                let given = users.get(resource).copied().unwrap_or(0);
                let in_use = usage.in_use(resource);
                let minimum = if limit < 0 || limit < given {
                    in_use
                } else {
                    given.max(in_use)
                };
                range.insert(resource, (minimum, -1));
            }
        }
    }
    Ok(range)
}

/// `PUT /os-quota-sets/{project_id}[?user_id=]` (admin): 200 with the new limits, no `id`.
pub async fn update(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (wanted, force) = parse_update(&body_in, &mv)?;
    strict_query(&mv, &query, &["user_id"])?;
    auth.enforce("os_compute_api:os-quota-sets:update", &target(&id))?;
    let user = query_value(&query, "user_id");
    if !force {
        let range = settable(&state, &id, user).await?;
        for (resource, limit) in &wanted {
            let (minimum, maximum) = range.get(resource).copied().unwrap_or((0, -1));
            if inf(*limit) < inf(minimum) {
                return Err(ApiError::bad_request(format!(
                    "Quota limit {limit} for {resource} must be greater than or equal to \
                     already used and reserved {minimum}."
                )));
            }
            if inf(*limit) > inf(maximum) {
                return Err(ApiError::bad_request(format!(
                    "Quota limit {limit} for {resource} must be less than or equal to \
                     {maximum}."
                )));
            }
        }
    }
    let store = &state.0.store;
    match user {
        Some(u) => quotas::set_for_user(store, &id, u, &wanted).await,
        None => quotas::set(store, &id, &wanted).await,
    }
    .map_err(db_error)?;
    tracing::info!(project = %id, user = ?user, ?wanted, force, "quotas updated");
    let limits = current(&state, &id, user).await?;
    Ok(Json(quota_set(None, &limits, &mv)))
}

/// `DELETE /os-quota-sets/{project_id}[?user_id=]` (admin): 202, back to the defaults (the
/// project's limits for a user).
pub async fn delete(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    auth.enforce("os_compute_api:os-quota-sets:delete", &target(&id))?;
    strict_query(&mv, &query, &["user_id"])?;
    let store = &state.0.store;
    match query_value(&query, "user_id") {
        Some(u) => quotas::delete_for_user(store, &id, u).await,
        None => quotas::delete(store, &id).await,
    }
    .map_err(db_error)?;
    tracing::info!(project = %id, "quotas reset to defaults");
    Ok(StatusCode::ACCEPTED)
}
