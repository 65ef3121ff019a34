//! The Keystone v3 HTTP API, one module per resource.

mod app_creds;
mod assignments;
mod auth;
mod catalog;
pub mod credentials;
pub mod domain_config;
mod domains;
pub mod endpoint_filter;
mod groups;
#[cfg(test)]
pub(crate) mod harness;
mod legacy_policies;
mod oauth1;
mod projects;
mod roles;
pub mod token_body;
pub(crate) mod users;

use crate::service::Identity;
use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use ferrostack_api::{ApiError, ErrorFormat, Public, with_error_format};
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared handler state.
pub type AppState = State<Arc<Identity>>;

/// Query pairs in their original order.
pub type Pairs = Query<Vec<(String, String)>>;

/// The identity router (mounted at `/identity`).
pub fn router(identity: Arc<Identity>) -> Router {
    let v3 = Router::new()
        .route("/", get(version))
        .merge(auth::routes())
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(app_creds::routes())
        .merge(credentials::routes())
        .merge(legacy_policies::routes())
        .merge(endpoint_filter::routes())
        .merge(domain_config::routes())
        .merge(oauth1::routes());
    let router = Router::new()
        .route("/", get(versions))
        .nest("/v3", v3)
        .with_state(identity);
    with_error_format(router, ErrorFormat::Keystone)
}

/// The one version this service offers.
fn version_body(identity: &Identity) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", identity.base_url())}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(_: Public, State(identity): AppState) -> impl IntoResponse {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [version_body(&identity)]}})),
    )
}

async fn version(_: Public, State(identity): AppState) -> impl IntoResponse {
    Json(json!({"version": version_body(&identity)}))
}

/// A fresh 32-hex id, as Keystone's.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `{"self": "<base>/v3/<path>"}`
pub fn links(identity: &Identity, path: &str) -> Value {
    json!({"self": format!("{}/v3/{path}", identity.base_url())})
}

/// `{"self": <collection url>, "previous": null, "next": null}` for list responses.
pub fn collection_links(identity: &Identity, path: &str) -> Value {
    json!({"self": format!("{}/v3/{path}", identity.base_url()), "previous": null, "next": null})
}

/// The value of query key `name`, if present.
pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parses a query boolean as Keystone does (`true`, `1`, `yes`, `on`; a bare key is true).
pub fn query_bool(pairs: &[(String, String)], name: &str) -> Option<bool> {
    query_value(pairs, name).map(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "" | "true" | "1" | "yes" | "on" | "y"
        )
    })
}

/// Keystone's 404 message: `Could not find <kind>: <id>.`
pub fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find {kind}: {id}."))
}

/// Keystone's JSON body of an entity with `extra` attributes merged at the top level.
pub fn with_extra(mut body: Value, extra: &serde_json::Map<String, Value>) -> Value {
    if let Value::Object(map) = &mut body {
        for (k, v) in extra {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    body
}

/// Applies Keystone's list filters shared by most collections: exact `name`, `enabled`, and the
/// `__contains`/`__startswith`/`__endswith` (+`i` case-insensitive) operators on `name`.
pub fn name_matches(pairs: &[(String, String)], name: &str) -> bool {
    for (key, want) in pairs {
        let ok = match key.as_str() {
            "name" => name == want,
            "name__contains" => name.contains(want.as_str()),
            "name__icontains" => name.to_lowercase().contains(&want.to_lowercase()),
            "name__startswith" => name.starts_with(want.as_str()),
            "name__istartswith" => name.to_lowercase().starts_with(&want.to_lowercase()),
            "name__endswith" => name.ends_with(want.as_str()),
            "name__iendswith" => name.to_lowercase().ends_with(&want.to_lowercase()),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether an `enabled` filter (if any) accepts `enabled`.
pub fn enabled_matches(pairs: &[(String, String)], enabled: bool) -> bool {
    query_bool(pairs, "enabled").is_none_or(|want| want == enabled)
}

/// Reads an optional string field that may be JSON null.
pub fn opt_str(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(|v| v.as_str()).map(String::from)
}

/// Moves the non-core attributes of a request body into `extra` (Keystone keeps unknown
/// attributes of most entities and returns them).
pub fn extra_from(body: &Value, core: &[&str]) -> serde_json::Map<String, Value> {
    body.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !core.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON object under `key` in a request body (400 when missing or not an object).
pub fn member<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    body.get(key).filter(|v| v.is_object()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for the request body: '{key}' is a required property"
        ))
    })
}

/// A list call's policy target from its filters: only the filters given become keys (a missing
/// key fails a `%(target.x)s` check, as in Keystone, where a JSON null would match `None`).
pub fn filter_target(filters: &[(&str, Option<&str>)]) -> Value {
    let present: serde_json::Map<String, Value> = filters
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v))))
        .collect();
    json!({ "target": present })
}
