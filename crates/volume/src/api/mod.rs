//! The Cinder v3 HTTP API (mounted at `/volume`), one module per resource; each module hands
//! its routes to [`router`].
//!
//! Every handler follows Cinder's controller: body checks (400) → the resource as the caller
//! may see it (404 otherwise) → policy (403) → the store operation in one transaction (status
//! transitions compare-and-swap on the row) → work for the volume manager cast after commit →
//! the view for the negotiated microversion.

mod attachments;
mod messages;
mod misc;
mod qos;
pub(crate) mod query;
mod quotas;
mod retype;
mod services;
mod snapshots;
#[cfg(test)]
mod tests;
mod types;
mod versions;
pub(crate) mod views;
mod volume_actions;
mod volumes;

use crate::service::Volumes;
use axum::{
    Json, Router,
    extract::{Request, State},
    http::{StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use ferrostack_api::{
    ApiError, Auth, ErrorFormat, MicroversionSpec, Schema, Version, with_error_format,
    with_microversions,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shared handler state.
pub type AppState = State<Arc<Volumes>>;

/// The volume API's microversions: 3.0 up to the documented maximum (docs/api.md).
pub const MICROVERSIONS: MicroversionSpec = MicroversionSpec {
    service_type: "volume",
    legacy_header: None,
    min: Version::new(3, 0),
    max: Version::new(3, 67),
};

/// The request's negotiated microversion.
pub(crate) type Mv = axum::Extension<Version>;

/// Whether the request's microversion is at least `3.minor`.
pub(crate) fn at_least(mv: &Mv, minor: u16) -> bool {
    mv.0 >= Version::new(3, minor)
}

/// 404 below `3.minor`, for an API that version added (Cinder's `VersionNotFoundForAPIMethod`).
pub(crate) fn require_version(mv: &Mv, minor: u16) -> Result<(), ApiError> {
    match at_least(mv, minor) {
        true => Ok(()),
        false => Err(ApiError::not_found("The resource could not be found.")),
    }
}

/// The absolute URL of a request (for pagination links), without any project id segment.
pub(crate) fn request_url(volumes: &Volumes, uri: &Uri) -> String {
    let path = uri.path();
    let path = path.strip_prefix("/volume").unwrap_or(path);
    format!("{}{path}", volumes.base_url())
}

/// `200 OK` with `{key: value}`.
pub(crate) fn ok(key: &str, value: Value) -> Response {
    Json(json!({ key: value })).into_response()
}

/// `202 Accepted` with `{key: value}`.
pub(crate) fn accepted(key: &str, value: Value) -> Response {
    (StatusCode::ACCEPTED, Json(json!({ key: value }))).into_response()
}

/// Whether the caller is an admin (Cinder's `context.is_admin`: the `context_is_admin` rule).
pub(crate) fn is_admin(auth: &Auth) -> bool {
    auth.allows("context_is_admin", &json!({}))
}

/// The caller as Cinder's default policy target (`{project_id, user_id}` of the token).
pub(crate) fn caller_target(auth: &Auth) -> Value {
    json!({"project_id": auth.project_id(), "user_id": auth.user.id})
}

/// The caller's project (empty for tokens without one).
pub(crate) fn caller_project(auth: &Auth) -> String {
    auth.project_id().unwrap_or_default().to_string()
}

/// The policy target of a resource of `project`.
pub(crate) fn project_target(project: &str) -> Value {
    json!({ "project_id": project })
}

/// Checks a rule against the caller (Cinder's `context.authorize(rule)` without a target).
pub(crate) fn authorize(auth: &Auth, rule: &str) -> Result<(), ApiError> {
    auth.enforce(rule, &caller_target(auth))
}

/// The query string as a map (the last value of a repeated key wins).
pub(crate) fn query_map(raw: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of `key` in a query string.
pub(crate) fn query_value(raw: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .last()
}

/// The action an action body names (its first key); 400 when the body is not an object.
pub(crate) fn action_name(body: &Value) -> Result<String, ApiError> {
    body.as_object()
        .and_then(|o| o.keys().next().cloned())
        .ok_or_else(|| crate::errors::bad_request("Malformed request body"))
}

/// The schema of a body `{"<key>": <value>}` with no other keys.
pub(crate) fn body_schema(key: &str, value: Value) -> Schema {
    Schema::new(json!({
        "type": "object",
        "properties": {key: value},
        "required": [key],
        "additionalProperties": false,
    }))
}

/// The schema of an object with `properties` (the `required` ones among them) and no others.
pub(crate) fn closed_object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Cinder's 400 for an action it does not know.
pub(crate) fn no_such_action(name: &str) -> ApiError {
    crate::errors::bad_request(format!("There is no such action: {name}"))
}

/// The collections served under `/v3/`: a path `/v3/<project id>/<one of these>...` is the
/// same request as `/v3/<collection>...` (Cinder before 3.67 put the project id in every URL,
/// and catalogs written for it still do).
const COLLECTIONS: &[&str] = &[
    "volumes",
    "snapshots",
    "types",
    "qos-specs",
    "attachments",
    "os-quota-sets",
    "os-quota-class-sets",
    "limits",
    "os-availability-zone",
    "os-services",
    "os-hosts",
    "capabilities",
    "scheduler-stats",
    "extensions",
    "default-types",
    "resource_filters",
    "backups",
    "messages",
    "os-volume-transfer",
    "volume-transfers",
    "groups",
    "group_types",
    "group_snapshots",
];

/// Removes a project id segment after `/v3` (see [`COLLECTIONS`]). The project named there is
/// not trusted: every handler scopes by the caller's token.
async fn strip_project_id(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if let Some(rest) = path.strip_prefix("/v3/") {
        let mut segments = rest.splitn(3, '/');
        let first = segments.next().unwrap_or("");
        let second = segments.next();
        let looks_like_project =
            !first.is_empty() && !COLLECTIONS.contains(&first) && first.len() >= 16;
        if let Some(second) = second
            && looks_like_project
            && COLLECTIONS.contains(&second)
        {
            let tail = segments.next().map(|t| format!("/{t}")).unwrap_or_default();
            let query = request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            if let Ok(uri) = format!("/v3/{second}{tail}{query}").parse::<Uri>() {
                *request.uri_mut() = uri;
            }
        }
    }
    next.run(request).await
}

/// The volume router (mounted at `/volume`).
pub fn router(volumes: Arc<Volumes>) -> Router {
    let v3 = Router::new()
        .route("/", get(versions::v3))
        .merge(volumes::routes())
        .merge(volume_actions::routes())
        .merge(snapshots::routes())
        .merge(types::routes())
        .merge(qos::routes())
        .merge(quotas::routes())
        .merge(misc::routes())
        .merge(services::routes())
        .merge(messages::routes())
        .merge(attachments::routes());
    let router = Router::new()
        .route("/", get(versions::index))
        .nest("/v3", with_microversions(v3, MICROVERSIONS))
        .fallback(versions::choices)
        .with_state(volumes);
    let router = with_error_format(router, ErrorFormat::Nova);
    // Before routing, so the rewritten path is the one matched.
    let rewritten = tower::Layer::layer(&axum::middleware::from_fn(strip_project_id), router);
    Router::new().fallback_service(rewritten)
}
