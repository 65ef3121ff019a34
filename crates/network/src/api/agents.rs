//! `/v2.0/agents`: the agents the hosts' reports registered (Neutron's agent extension),
//! admin only.

use super::authz::enforce;
use super::body::{boolean, resource_object, string};
use super::{AppState, ok};
use crate::agents::store;
use crate::errors;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Value, json};

fn not_found(id: &str) -> ApiError {
    errors::not_found("AgentNotFound", format!("Agent {id} could not be found."))
}

async fn find(net: &crate::Networking, id: &str) -> Result<store::AgentRow, ApiError> {
    net.db
        .get::<store::AgentRow>(id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// `GET /v2.0/agents` (filters on `host`, `agent_type`, `binary`, `alive`, `admin_state_up`).
pub async fn index(
    State(net): AppState,
    auth: Auth,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    enforce(&auth, "get_agent", &json!({}))?;
    let now = chrono::Utc::now();
    let filters = super::query::pairs(uri.query());
    let agents: Vec<Value> = store::list(&net.db)
        .await?
        .iter()
        .map(|a| a.view(now))
        .filter(|view| {
            filters.iter().all(|(k, v)| match view.get(k.as_str()) {
                Some(Value::String(s)) => s == v,
                Some(Value::Bool(b)) => b.to_string() == v.to_lowercase(),
                _ => matches!(
                    k.as_str(),
                    "fields" | "limit" | "marker" | "sort_key" | "sort_dir"
                ),
            })
        })
        .collect();
    Ok(ok("agents", Value::Array(agents)))
}

/// `GET /v2.0/agents/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "get_agent", &json!({}))?;
    Ok(ok("agent", find(&net, &id).await?.view(chrono::Utc::now())))
}

/// `PUT /v2.0/agents/{id}`: `admin_state_up` and `description`.
pub async fn update(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    enforce(&auth, "update_agent", &json!({}))?;
    let map = resource_object(body, "agent")?;
    for key in map.keys() {
        if !matches!(key.as_str(), "admin_state_up" | "description") {
            return Err(errors::bad_request(format!(
                "Cannot update read-only attribute {key}"
            )));
        }
    }
    let up = boolean(&map, "admin_state_up")?;
    let description = string(&map, "description", 255)?;
    let row = store::update(&net.db, &id, up, description)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(ok("agent", row.view(chrono::Utc::now())))
}

/// `DELETE /v2.0/agents/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    enforce(&auth, "delete_agent", &json!({}))?;
    match store::delete(&net.db, &id).await? {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(not_found(&id)),
    }
}
