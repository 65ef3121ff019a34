//! Version discovery and the reshaper placeholder.

use super::{R, enforce};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, Public};
use serde_json::json;

/// `GET /`: the version document (no token needed).
pub(crate) async fn versions(_: Public) -> Response {
    axum::Json(json!({"versions": [{
        "id": "v1.0",
        "max_version": super::MAX_VERSION.to_string(),
        "min_version": super::MIN_VERSION.to_string(),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]}))
    .into_response()
}

/// `POST /reshaper` (1.30, service only): not implemented yet (spec §12).
pub(crate) async fn reshaper(auth: Auth, v: super::Mv) -> R {
    v.need(30)?;
    enforce(&auth, "placement:reshaper:reshape")?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "The reshaper is not implemented by this placement service.",
    ))
}
