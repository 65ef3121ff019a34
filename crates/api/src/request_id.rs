//! `x-openstack-request-id`: one id per request, on the response and in every log line.

use axum::response::IntoResponse;
use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use std::time::Instant;
use tracing::Instrument;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The id of the current request (`req-<uuid>`), stored in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh `req-<uuid4>`.
    pub fn generate() -> Self {
        RequestId(format!("req-{}", uuid::Uuid::new_v4()))
    }
}

/// Middleware: assigns the id, runs the request inside a span that carries it, logs the outcome,
/// records metrics and sets the response header.
pub async fn request_id_middleware(mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    request.extensions_mut().insert(id.clone());
    let check = crate::auth::PolicyCheck::default();
    request.extensions_mut().insert(check.clone());
    let span = tracing::info_span!("request", request_id = %id.0, %method, path = %path);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if (response.status().is_success() || response.status().is_redirection()) && !check.done() {
        span.in_scope(|| {
            tracing::error!("BUG: {method} {path} answered without a policy decision; refusing")
        });
        response = crate::ApiError::internal("route without a policy decision").into_response();
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "{method} {path}"
        )
    });
    crate::metrics::record_request(&route, method.as_str(), status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response.extensions_mut().insert(id);
    response
}
