//! Version discovery, schemas and the `/v2/info` documents.

use super::AppState;
use crate::db;
use crate::schemas;
use crate::service::{CONTAINER_FORMATS, DISK_FORMATS, Images, db_error};
use axum::{
    Json,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, Public};
use serde_json::{Value, json};

/// Versions as Glance lists them with a single store and no image cache.
const VERSIONS: [(&str, &str); 10] = [
    ("v2.15", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
];

fn versions_body(images: &Images) -> Value {
    let href = format!("{}/v2/", images.base_url());
    let mut list: Vec<Value> = VERSIONS
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]}))
        .collect();
    list.push(
        json!({"id": "v2.0", "status": "SUPPORTED", "links": [{"rel": "self", "href": href}]}),
    );
    json!({"versions": list})
}

/// `GET /image` (and any path outside `/v2`): 300 with the versions, no token needed.
pub async fn versions(_: Public, state: AppState) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(versions_body(&state.0))).into_response()
}

/// `GET /image/versions`
pub async fn versions_ok(_: Public, state: AppState) -> Json<Value> {
    Json(versions_body(&state.0))
}

/// Unknown paths: inside `/v2` a 404, elsewhere the version list (Glance's version negotiation).
pub async fn fallback(uri: Uri, state: AppState) -> Response {
    let path = uri.path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first == "v2" || first.starts_with("v2.") {
        return ApiError::not_found("The resource could not be found.").into_response();
    }
    versions(Public, state).await
}

/// `GET /v2/schemas/image`
pub async fn image_schema(_: Auth, _: Public) -> Json<Value> {
    Json(schemas::image_schema(&DISK_FORMATS, &CONTAINER_FORMATS))
}

/// `GET /v2/schemas/images`
pub async fn images_schema(_: Auth, _: Public) -> Json<Value> {
    Json(schemas::images_schema(&DISK_FORMATS, &CONTAINER_FORMATS))
}

/// `GET /v2/schemas/member`
pub async fn member_schema(_: Auth, _: Public) -> Json<Value> {
    Json(schemas::member_schema())
}

/// `GET /v2/schemas/members`
pub async fn members_schema(_: Auth, _: Public) -> Json<Value> {
    Json(schemas::members_schema())
}

/// `GET /v2/info/import`
pub async fn info_import(_: Auth, _: Public, state: AppState) -> Json<Value> {
    Json(json!({"import-methods": {
        "description": "Import methods available.",
        "type": "array",
        "value": state.0.config.enabled_import_methods,
    }}))
}

/// `GET /v2/info/stores`: single-store mode, as Glance without `enabled_backends`.
pub async fn info_stores(_: Auth, _: Public) -> ApiError {
    ApiError::not_found("Multi backend is not supported at this site.")
}

/// `GET /v2/info/usage`: the caller's project's usage against the configured limits.
pub async fn info_usage(auth: Auth, _: Public, state: AppState) -> Result<Json<Value>, ApiError> {
    let images = &state.0;
    let Some(project) = auth.project_id() else {
        return Ok(Json(json!({"usage": {}})));
    };
    let (count, bytes) = db::usage(&images.store, project).await.map_err(db_error)?;
    let limit = |n: i64| if n < 0 { json!(-1) } else { json!(n) };
    Ok(Json(json!({"usage": {
        "image_count_total": {"usage": count, "limit": limit(images.config.image_count_total)},
        "image_size_total": {"usage": bytes, "limit": limit(images.config.image_size_total)},
    }})))
}
