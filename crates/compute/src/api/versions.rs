//! Version discovery (`GET /compute/`, `/compute/v2.1/`, `/compute/v2/`).

use super::{AppState, MICROVERSIONS};
use axum::{
    Json,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
};
use ferrostack_api::Public;
use serde_json::{Value, json};

fn v21_entry(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": MICROVERSIONS.max.to_string(),
        "min_version": MICROVERSIONS.min.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2.1/")}],
    })
}

fn v20_entry(base: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2025-07-04T12:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v2/")}],
    })
}

fn detailed(mut entry: Value, media_version: &str) -> Value {
    if let Some(links) = entry["links"].as_array_mut() {
        links.push(json!({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}));
    }
    entry["media-types"] = json!([{
        "base": "application/json",
        "type": format!("application/vnd.openstack.compute+json;version={media_version}"),
    }]);
    json!({"version": entry})
}

/// `GET /compute/`
pub async fn index(_: Public, state: AppState) -> Json<Value> {
    let base = state.0.base_url();
    Json(json!({"versions": [v20_entry(&base), v21_entry(&base)]}))
}

/// `GET /compute/v2.1/`
pub async fn v21(_: Public, state: AppState) -> Json<Value> {
    Json(detailed(v21_entry(&state.0.base_url()), "2.1"))
}

/// `GET /compute/v2/`
pub async fn v20(_: Public, state: AppState) -> Json<Value> {
    Json(detailed(v20_entry(&state.0.base_url()), "2"))
}

/// Any other unversioned path: 300 with the choices.
pub async fn choices(_: Public, state: AppState, uri: Uri) -> Response {
    let base = state.0.base_url();
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("v2.1/") || path.starts_with("v2/") {
        return ferrostack_api::ApiError::not_found("The resource could not be found.")
            .into_response();
    }
    let choice = json!({
        "id": "v2.0",
        "status": "DEPRECATED",
        "links": [{"rel": "self", "href": format!("{base}/v2/{path}")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}],
    });
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"choices": [choice]})),
    )
        .into_response()
}
