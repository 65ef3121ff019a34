//! `/v2.0/quotas`: per-project limits (admins set them; a project's manager may read them),
//! the defaults, and usage (`/details`, quota_details).

use super::authz::enforce;
use super::{AppState, ok};
use crate::db::quotas::{self, RESOURCES};
use crate::errors;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn limits_view(project: &str, limits: &BTreeMap<String, i64>) -> Value {
    let mut map: Map<String, Value> = limits.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    map.insert("project_id".into(), json!(project));
    map.insert("tenant_id".into(), json!(project));
    Value::Object(map)
}

fn plain(limits: &BTreeMap<String, i64>) -> Value {
    Value::Object(limits.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn target(project: &str) -> Value {
    json!({"project_id": project, "tenant_id": project})
}

/// `GET /v2.0/quotas`: the projects whose limits differ from the defaults (admins).
pub async fn index(State(net): AppState, auth: Auth) -> Result<Response, ApiError> {
    enforce(&auth, "get_quota", &target(""))?;
    let mut conn = net.db.conn().await?;
    let projects = quotas::projects_with_overrides(&mut conn).await?;
    let mut out = Vec::new();
    for project in projects {
        let limits = quotas::limits(&mut conn, &net.settings, &project).await?;
        out.push(limits_view(&project, &limits));
    }
    Ok(ok("quotas", Value::Array(out)))
}

/// `GET /v2.0/quotas/tenant` (and `/quotas/project`): the caller's project.
pub async fn tenant(auth: Auth, uri: axum::http::Uri) -> Result<Response, ApiError> {
    enforce(&auth, "regular_user", &json!({}))?;
    let project = auth.project_id().unwrap_or_default().to_string();
    Ok(match uri.path().ends_with("/project") {
        true => ok("project", json!({"project_id": project})),
        false => ok("tenant", json!({"tenant_id": project})),
    })
}

/// `GET /v2.0/quotas/{project}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "get_quota", &target(&project))?;
    let limits = quotas::limits(&mut *net.db.conn().await?, &net.settings, &project).await?;
    Ok(ok("quota", plain(&limits)))
}

/// `GET /v2.0/quotas/{project}/default`
pub async fn defaults(
    State(net): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "get_quota", &target(&project))?;
    let limits: BTreeMap<String, i64> = net
        .settings
        .quota_defaults
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    Ok(ok("quota", plain(&limits)))
}

/// `GET /v2.0/quotas/{project}/details`: limit, used and reserved (always 0: usage is
/// counted at create time under the project's lock, nothing is reserved).
pub async fn details(
    State(net): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "get_quota", &target(&project))?;
    let mut conn = net.db.conn().await?;
    let limits = quotas::limits(&mut conn, &net.settings, &project).await?;
    let used = quotas::usage(&mut conn, &project).await?;
    let map: Map<String, Value> = limits
        .iter()
        .map(|(k, limit)| {
            (
                k.clone(),
                json!({"limit": limit, "used": used.get(k).copied().unwrap_or(0), "reserved": 0}),
            )
        })
        .collect();
    Ok(ok("quota", Value::Object(map)))
}

/// `PUT /v2.0/quotas/{project}`: `{"quota": {"network": 10, ...}}` (admins). A limit below what
/// the project already uses is refused unless `force` is true (`check_limit` is accepted and,
/// as upstream since 2025.1, implied).
pub async fn update(
    State(net): AppState,
    auth: Auth,
    Path(project): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    enforce(&auth, "update_quota", &target(&project))?;
    let mut map = super::body::resource_object(body, "quota")?;
    let force = super::body::boolean(&map, "force")?.unwrap_or(false);
    super::body::boolean(&map, "check_limit")?;
    map.remove("force");
    map.remove("check_limit");
    let mut changes = Vec::new();
    for (resource, value) in &map {
        if !RESOURCES.contains(&resource.as_str()) {
            return Err(errors::bad_request(format!(
                "Unrecognized attribute(s) '{resource}'"
            )));
        }
        let limit = super::body::int_value(value, resource)?;
        if limit < -1 {
            return Err(errors::bad_request(format!(
                "Invalid input for {resource}. Reason: '{limit}' is smaller than minimum allowed value '-1'."
            )));
        }
        changes.push((resource.clone(), limit));
    }
    if !force {
        let used = quotas::usage(&mut *net.db.conn().await?, &project).await?;
        for (resource, limit) in &changes {
            let in_use = used.get(resource).copied().unwrap_or(0);
            if *limit >= 0 && in_use > *limit {
                return Err(errors::bad_request(format!(
                    "Quota limit {limit} for {resource} must be greater than or equal to already used {in_use}"
                )));
            }
        }
    }
    crate::db::write_tx!(net.db, |tx| (async {
        for (resource, limit) in &changes {
            quotas::set(tx, &project, resource, *limit).await?;
        }
        Ok(())
    })
    .await)?;
    let limits = quotas::limits(&mut *net.db.conn().await?, &net.settings, &project).await?;
    Ok(ok("quota", plain(&limits)))
}

/// `DELETE /v2.0/quotas/{project}`: back to the defaults (admins).
pub async fn reset(
    State(net): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "delete_quota", &target(&project))?;
    let removed = crate::db::write_tx!(net.db, |tx| quotas::reset(tx, &project).await)?;
    if removed == 0 {
        return Err(errors::not_found(
            "TenantQuotaNotFound",
            format!("Quota for project {project} could not be found."),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
