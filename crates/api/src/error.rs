//! API errors and their per-service body formats.
//!
//! Handlers return [`ApiError`]; it renders itself with the [`ErrorFormat`] that the service's
//! router installed with [`error_format_layer`], so one error type serves every service while
//! each keeps its upstream body shape (Keystone, Nova/Cinder, Neutron, Glance, Placement).

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;
use std::borrow::Cow;

/// The error-body dialect of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"code", "title", "message"}}`
    Keystone,
    /// `{"itemNotFound": {"code", "message"}}` and friends (also Cinder).
    Nova,
    /// `{"NeutronError": {"type", "message", "detail"}}`
    Neutron,
    /// Glance's webob-style `{"code": "404 Not Found", "title", "message"}` JSON.
    Glance,
    /// `{"errors": [{"status", "title", "detail", "code", "request_id"}]}`
    Placement,
}

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (never contains secrets).
    pub message: Cow<'static, str>,
    /// Machine-readable type where a service has one (Neutron's `type`, Placement's `code`).
    pub kind: Option<Cow<'static, str>>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: None,
        }
    }
    /// Adds a machine-readable type.
    pub fn with_kind(mut self, kind: impl Into<Cow<'static, str>>) -> Self {
        self.kind = Some(kind.into());
        self
    }
    /// 400
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401 with Keystone's standard message.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
    /// 401 with a specific message.
    pub fn unauthorized_msg(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    /// 404
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 500; the detail goes to the log, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error prevented the server from fulfilling your request.",
        )
    }

    /// The body of this error in a service's format.
    pub fn body(&self, format: ErrorFormat, request_id: Option<&str>) -> serde_json::Value {
        let code = self.status.as_u16();
        let title = self.status.canonical_reason().unwrap_or("Error");
        match format {
            ErrorFormat::Keystone => {
                json!({"error": {"code": code, "title": title, "message": self.message}})
            }
            ErrorFormat::Nova => {
                json!({ nova_fault_name(self.status): {"code": code, "message": self.message} })
            }
            ErrorFormat::Neutron => json!({"NeutronError": {
                "type": self.kind.clone().unwrap_or_else(|| neutron_type(self.status).into()),
                "message": self.message,
                "detail": "",
            }}),
            ErrorFormat::Glance => json!({
                "code": format!("{code} {title}"),
                "title": title,
                "message": self.message,
            }),
            ErrorFormat::Placement => json!({"errors": [{
                "status": code,
                "title": title,
                "detail": self.message,
                "code": self.kind.clone().unwrap_or(Cow::Borrowed("placement.undefined_code")),
                "request_id": request_id,
            }]}),
        }
    }
}

fn nova_fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

fn neutron_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "NotAuthorized",
        403 => "PolicyNotAuthorized",
        404 => "NotFound",
        409 => "Conflict",
        413 => "OverQuota",
        _ => "NeutronException",
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered in Keystone's shape unless a service's error_format_layer re-renders it.
        let body = self.body(ErrorFormat::Keystone, None).to_string();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl From<crate::validation::ValidationError> for ApiError {
    fn from(e: crate::validation::ValidationError) -> Self {
        ApiError::bad_request(e.0)
    }
}

impl From<ferrostack_policy::PolicyError> for ApiError {
    fn from(e: ferrostack_policy::PolicyError) -> Self {
        use ferrostack_policy::PolicyError as P;
        match e {
            P::Forbidden { action } | P::InvalidScope { action, .. } => ApiError::forbidden(
                format!("You are not authorized to perform the requested action: {action}."),
            ),
            other => ApiError::internal(other),
        }
    }
}

/// Middleware that renders every error response of a service in its format: errors returned by
/// handlers, and plain-status responses from the router and layers (404 no route, 405, 413, 415
/// and extractor rejections), which arrive as text.
pub async fn render_errors(format: ErrorFormat, request: Request, next: Next) -> Response {
    let request_id = request.extensions().get::<crate::RequestId>().cloned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let error = match parts.extensions.remove::<ApiError>() {
        Some(e) => e,
        None if is_json(&parts.headers) => return Response::from_parts(parts, body),
        None => {
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let message = match text.is_empty() {
                true => status.canonical_reason().unwrap_or("Error").to_string(),
                false => text,
            };
            ApiError::new(status, message)
        }
    };
    let body = error
        .body(format, request_id.as_ref().map(|r| r.0.as_str()))
        .to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.status = error.status;
    parts.extensions.insert(error);
    Response::from_parts(parts, Body::from(body))
}

/// Renders an error in `format` outside any service router (the root's fallback).
pub fn render_standalone(error: ApiError, format: ErrorFormat) -> Response {
    let body = error.body(format, None).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = error.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Wraps a service's router so that all its errors are rendered in `format`.
pub fn with_error_format<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    format: ErrorFormat,
) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| render_errors(format, req, next),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_each_service() {
        let e = ApiError::not_found("Could not find project: x.");
        assert_eq!(
            e.body(ErrorFormat::Keystone, None)["error"]["title"],
            "Not Found"
        );
        assert_eq!(e.body(ErrorFormat::Nova, None)["itemNotFound"]["code"], 404);
        assert_eq!(
            e.body(ErrorFormat::Neutron, None)["NeutronError"]["type"],
            "NotFound"
        );
        assert_eq!(e.body(ErrorFormat::Glance, None)["code"], "404 Not Found");
        let p = e.body(ErrorFormat::Placement, Some("req-1"));
        assert_eq!(p["errors"][0]["request_id"], "req-1");
        assert_eq!(p["errors"][0]["status"], 404);
    }
}
