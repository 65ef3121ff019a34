//! Version discovery (`GET /volume/` → 300, `GET /volume/v3/` → 200).

use super::{AppState, MICROVERSIONS};
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferrostack_api::Public;
use serde_json::{Value, json};

fn v3_entry(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": MICROVERSIONS.max.to_string(),
        "min_version": MICROVERSIONS.min.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.volume+json;version=3",
        }],
    })
}

/// `GET /volume/`: the versions, 300 Multiple Choices as Cinder answers.
pub async fn index(_: Public, state: AppState) -> Response {
    let base = state.0.base_url();
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": [v3_entry(&base)]})),
    )
        .into_response()
}

/// `GET /volume/v3/`
pub async fn v3(_: Public, state: AppState) -> Json<Value> {
    Json(json!({"versions": [v3_entry(&state.0.base_url())]}))
}

/// Anything else under `/volume`: 300 with the versions when it names no version, else 404.
pub async fn choices(_: Public, state: AppState, uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_end_matches('/');
    if path.is_empty() || path == "/volume" {
        return index(Public, state).await;
    }
    ferrostack_api::ApiError::not_found("The resource could not be found.").into_response()
}
