//! Server groups (`nova/api/openstack/compute/server_groups.py`): affinity policies that the
//! scheduler honours for their members.

use super::{AppState, Mv, at_least};
use crate::db::{self, ServerGroup};
use crate::service::db_error;
use axum::{
    Json,
    extract::{Path, Query},
    http::StatusCode,
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};

fn body(g: &ServerGroup, mv: &Mv) -> Value {
    let mut b = Map::new();
    b.insert("id".into(), json!(g.id));
    b.insert("name".into(), json!(g.name));
    if at_least(mv, 2, 64) {
        b.insert("policy".into(), json!(g.policy));
        let rules = match g.max_server_per_host {
            Some(n) => json!({"max_server_per_host": n}),
            None => json!({}),
        };
        b.insert("rules".into(), rules);
    } else {
        b.insert("policies".into(), json!([g.policy]));
        b.insert("metadata".into(), json!({}));
    }
    b.insert("members".into(), json!(g.members));
    if at_least(mv, 2, 13) {
        b.insert("project_id".into(), json!(g.project_id));
        b.insert("user_id".into(), json!(g.user_id));
    }
    Value::Object(b)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Instance group {id} could not be found."))
}

fn allowed_policies(mv: &Mv) -> &'static [&'static str] {
    if at_least(mv, 2, 15) {
        &[
            "affinity",
            "anti-affinity",
            "soft-affinity",
            "soft-anti-affinity",
        ]
    } else {
        &["affinity", "anti-affinity"]
    }
}

/// Validates the create body at the request's microversion: (name, policy, max per host).
fn parse(body: &Value, mv: &Mv) -> Result<(String, String, Option<i64>), ApiError> {
    let Some(g) = body.get("server_group").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "'server_group' is a required property",
        ));
    };
    let name = match g.get("name") {
        Some(Value::String(n)) if !n.is_empty() && n.len() <= 255 && n.trim() == n => n.clone(),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute name. Value: {v}."
            )));
        }
        None => return Err(ApiError::bad_request("'name' is a required property")),
    };
    let allowed = allowed_policies(mv);
    let bad_policy = |v: &Value| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute policy. Value: {v}. {v} is not one of {allowed:?}"
        ))
    };
    if at_least(mv, 2, 64) {
        let policy = match g.get("policy") {
            Some(Value::String(p)) if allowed.contains(&p.as_str()) => p.clone(),
            Some(v) => return Err(bad_policy(v)),
            None => return Err(ApiError::bad_request("'policy' is a required property")),
        };
        let max = match g.get("rules") {
            None => None,
            Some(Value::Object(rules)) if rules.is_empty() => None,
            Some(Value::Object(rules)) => {
                if policy != "anti-affinity" {
                    return Err(ApiError::bad_request(
                        "Only anti-affinity policy supports rules.",
                    ));
                }
                if rules.keys().any(|k| k != "max_server_per_host") {
                    return Err(ApiError::bad_request(
                        "Additional properties are not allowed in rules",
                    ));
                }
                let n = rules["max_server_per_host"]
                    .as_i64()
                    .or_else(|| rules["max_server_per_host"].as_str()?.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Invalid input for field/attribute max_server_per_host: must be a positive integer.",
                        )
                    })?;
                Some(n)
            }
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute rules. Value: {v}."
                )));
            }
        };
        Ok((name, policy, max))
    } else {
        match g.get("policies") {
            Some(Value::Array(list)) if list.len() == 1 => match &list[0] {
                Value::String(p) if allowed.contains(&p.as_str()) => Ok((name, p.clone(), None)),
                other => Err(bad_policy(other)),
            },
            Some(v) => Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute policies. Value: {v}."
            ))),
            None => Err(ApiError::bad_request("'policies' is a required property")),
        }
    }
}

/// `POST /os-server-groups`: 200.
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    auth.enforce(
        "os_compute_api:os-server-groups:create",
        &json!({"project_id": project, "user_id": auth.user.id}),
    )?;
    let (name, policy, max_server_per_host) = parse(&body_in, &mv)?;
    let group = ServerGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        policy,
        max_server_per_host,
        project_id: project,
        user_id: auth.user.id.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        members: Vec::new(),
    };
    let quota = db::quotas::limits(&state.0.store, &group.project_id, &state.0.config)
        .await
        .map_err(db_error)?
        .server_groups;
    if !db::insert_server_group(&state.0.store, &group, quota)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::forbidden(
            "Quota exceeded, too many server groups.",
        ));
    }
    tracing::info!(group = %group.id, policy = %group.policy, "server group created");
    Ok(Json(json!({"server_group": body(&group, &mv)})))
}

/// `GET /os-server-groups`: the caller's project's (admins: `?all_projects=True`).
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    let target = json!({"project_id": project, "user_id": auth.user.id});
    auth.enforce("os_compute_api:os-server-groups:index", &target)?;
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let all = get("all_projects")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "t"))
        && auth.allows(
            "os_compute_api:os-server-groups:index:all_projects",
            &target,
        );
    let mut groups = db::server_groups(
        &state.0.store,
        if all { None } else { Some(project.as_str()) },
    )
    .await
    .map_err(db_error)?;
    let number = |k: &str| -> Result<Option<usize>, ApiError> {
        get(k)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid input for query parameters {k}. Value: {v}."
                    ))
                })
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    groups.drain(..offset.min(groups.len()));
    if let Some(limit) = number("limit")? {
        groups.truncate(limit);
    }
    let list: Vec<Value> = groups.iter().map(|g| body(g, &mv)).collect();
    Ok(Json(json!({"server_groups": list})))
}

async fn find(state: &AppState, auth: &Auth, id: &str) -> Result<ServerGroup, ApiError> {
    let admin = auth.allows("context_is_admin", &json!({}));
    db::server_group(&state.0.store, id)
        .await
        .map_err(db_error)?
        .filter(|g| admin || Some(g.project_id.as_str()) == auth.project_id())
        .ok_or_else(|| not_found(id))
}

/// `GET /os-server-groups/{id}`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let group = find(&state, &auth, &id).await?;
    auth.enforce(
        "os_compute_api:os-server-groups:show",
        &json!({"project_id": group.project_id, "user_id": group.user_id}),
    )?;
    Ok(Json(json!({"server_group": body(&group, &mv)})))
}

/// `DELETE /os-server-groups/{id}`: 204 (members keep running).
pub async fn delete(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let group = find(&state, &auth, &id).await?;
    auth.enforce(
        "os_compute_api:os-server-groups:delete",
        &json!({"project_id": group.project_id, "user_id": group.user_id}),
    )?;
    if !db::delete_server_group(&state.0.store, &id)
        .await
        .map_err(db_error)?
    {
        return Err(not_found(&id));
    }
    tracing::info!(group = %id, "server group deleted");
    Ok(StatusCode::NO_CONTENT)
}
