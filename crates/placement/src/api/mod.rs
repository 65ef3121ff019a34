//! The Placement HTTP API (mounted at `/placement`), one module per resource.
//!
//! Layers, outermost first: [`placement_layer`] (placement's microversion parsing with its own
//! 400/406 bodies, the echo and cache headers, the generic request checks, and the webob-style
//! `detail` of every error; `code` only at ≥1.23), then the shared Placement error format, then
//! the routes. Each route checks its minimum microversion (404 below it, as placement) after
//! authentication and before policy.

mod aggregates;
mod allocations;
mod candidates;
mod classes;
mod inventories;
mod providers;
pub(crate) mod query;
mod root;
mod traits;

use crate::Placement;
use crate::changes::{self, WriteTx};
pub(crate) use axum::extract::State;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use ferrostack_api::{ApiError, Auth, ErrorFormat, RequestId, Version, with_error_format};
use serde_json::{Value, json};
use std::sync::Arc;

/// Handler state.
pub(crate) type Ctx = State<Arc<Placement>>;
/// Handler result.
pub(crate) type R<T = Response> = Result<T, ApiError>;

/// Oldest and newest supported microversions.
pub const MIN_VERSION: Version = Version::new(1, 0);
/// Newest supported microversion (`latest`).
pub const MAX_VERSION: Version = Version::new(1, 39);

/// The placement router, wrapped in placement's error format and microversion handling.
pub fn router(p: Arc<Placement>) -> Router {
    let routes = Router::new()
        .route("/", allow(get(root::versions), "GET"))
        .route(
            "/resource_providers",
            allow(get(providers::list).post(providers::create), "GET, POST"),
        )
        .route(
            "/resource_providers/{uuid}",
            allow(
                get(providers::show)
                    .delete(providers::delete)
                    .put(providers::update),
                "GET, DELETE, PUT",
            ),
        )
        .route(
            "/resource_providers/{uuid}/inventories",
            allow(
                get(inventories::list)
                    .post(inventories::create)
                    .put(inventories::replace)
                    .delete(inventories::delete_all),
                "GET, POST, PUT, DELETE",
            ),
        )
        .route(
            "/resource_providers/{uuid}/inventories/{rc}",
            allow(
                get(inventories::show)
                    .put(inventories::update)
                    .delete(inventories::delete),
                "GET, PUT, DELETE",
            ),
        )
        .route(
            "/resource_providers/{uuid}/usages",
            allow(get(allocations::provider_usages), "GET"),
        )
        .route(
            "/resource_providers/{uuid}/allocations",
            allow(get(allocations::provider_allocations), "GET"),
        )
        .route(
            "/resource_providers/{uuid}/aggregates",
            allow(get(aggregates::list).put(aggregates::update), "GET, PUT"),
        )
        .route(
            "/resource_providers/{uuid}/traits",
            allow(
                get(traits::provider_list)
                    .put(traits::provider_update)
                    .delete(traits::provider_delete),
                "GET, PUT, DELETE",
            ),
        )
        .route(
            "/resource_classes",
            allow(get(classes::list).post(classes::create), "GET, POST"),
        )
        .route(
            "/resource_classes/{name}",
            allow(
                get(classes::show)
                    .put(classes::update)
                    .delete(classes::delete),
                "GET, PUT, DELETE",
            ),
        )
        .route("/traits", allow(get(traits::list), "GET"))
        .route(
            "/traits/{name}",
            allow(
                get(traits::show).put(traits::update).delete(traits::delete),
                "GET, PUT, DELETE",
            ),
        )
        .route(
            "/allocations",
            allow(post(allocations::post_allocations), "POST"),
        )
        .route(
            "/allocations/{consumer}",
            allow(
                get(allocations::show)
                    .put(allocations::update)
                    .delete(allocations::delete),
                "GET, PUT, DELETE",
            ),
        )
        .route("/usages", allow(get(allocations::usages), "GET"))
        .route(
            "/allocation_candidates",
            allow(get(candidates::list), "GET"),
        )
        .route("/reshaper", allow(post(root::reshaper), "POST"))
        .with_state(p);
    with_error_format(routes, ErrorFormat::Placement)
        .layer(axum::middleware::from_fn(placement_layer))
}

/// 405 with placement's `Allow` list for the methods a route does not have.
fn allow(
    route: MethodRouter<Arc<Placement>>,
    methods: &'static str,
) -> MethodRouter<Arc<Placement>> {
    route.fallback(move || async move { method_not_allowed(methods) })
}

pub(crate) fn method_not_allowed(methods: &'static str) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(methods));
    response
}

/// The request's microversion (1.0 when the layer did not run).
pub(crate) struct Mv(pub Version);

impl<S: Send + Sync> FromRequestParts<S> for Mv {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Mv(parts
            .extensions
            .get::<Version>()
            .copied()
            .unwrap_or(MIN_VERSION)))
    }
}

impl Mv {
    /// Whether the request is at 1.`minor` or later.
    pub fn at(&self, minor: u16) -> bool {
        self.0 >= Version::new(1, minor)
    }
    /// 404 below 1.`minor` (placement's `version_handler`).
    pub fn need(&self, minor: u16) -> R<()> {
        match self.at(minor) {
            true => Ok(()),
            false => Err(ApiError::not_found("The resource could not be found.")),
        }
    }
}

/// Enforces a `placement:` rule with the default target (the caller's project and user).
pub(crate) fn enforce(auth: &Auth, rule: &str) -> R<()> {
    let target = json!({"project_id": auth.project_id(), "user_id": auth.user.id});
    enforce_on(auth, rule, &target)
}

/// Enforces a rule on `target`; 403 with placement's text.
pub(crate) fn enforce_on(auth: &Auth, rule: &str, target: &Value) -> R<()> {
    auth.enforce(rule, target).map_err(|e| match e.status {
        StatusCode::FORBIDDEN => {
            ApiError::forbidden(format!("Policy does not allow {rule} to be performed."))
        }
        _ => e,
    })
}

pub(crate) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message.into())
}
pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::not_found(message.into())
}
pub(crate) fn conflict(message: impl Into<String>, code: &'static str) -> ApiError {
    ApiError::conflict(message.into()).with_kind(code)
}
pub(crate) fn dberr(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

pub(crate) const CONCURRENT: &str = "placement.concurrent_update";
pub(crate) const UNDEFINED: &str = "placement.undefined_code";

/// A pooled connection.
pub(crate) async fn conn(p: &Placement) -> R<sqlx::pool::PoolConnection<sqlx::Any>> {
    p.store.pool().acquire().await.map_err(dberr)
}

/// Begins a write transaction (see [`changes::begin_write`]).
pub(crate) async fn begin(p: &Placement) -> R<WriteTx> {
    changes::begin_write(&p.store).await.map_err(dberr)
}

/// Logs what the write touched and commits it (see [`changes::commit_write`]).
pub(crate) async fn commit(_p: &Placement, tx: WriteTx) -> R<()> {
    changes::commit_write(tx).await.map_err(dberr)
}

/// A JSON request body: `application/json` (parameters ignored) else 415, then parsed.
pub(crate) fn json_body(headers: &HeaderMap, bytes: &Bytes) -> R<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if ct.as_deref() != Some("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "The media type {} is not supported, use application/json",
                ct.as_deref().unwrap_or("None")
            ),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("Malformed JSON: {e}")))
}

/// Validates a body against a JSON schema: 400 `JSON does not validate: …`.
pub(crate) fn validate(schema: &Value, value: &Value) -> R<()> {
    let validator = jsonschema::validator_for(schema).map_err(dberr)?;
    match validator.iter_errors(value).next() {
        None => Ok(()),
        Some(e) => Err(bad(format!("JSON does not validate: {e}"))),
    }
}

/// Parses and validates a JSON body in one step.
pub(crate) fn body(headers: &HeaderMap, bytes: &Bytes, schema: &Value) -> R<Value> {
    let value = json_body(headers, bytes)?;
    validate(schema, &value)?;
    Ok(value)
}

/// A JSON response.
pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// Adds an absolute `Location` for `path` (relative to the service root, starting with `/`).
pub(crate) fn with_location(p: &Placement, mut response: Response, path: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("{}{path}", p.base_url)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `uuid` in canonical dashed lower-case form, if it is one (dashed or not).
pub(crate) fn normalize_uuid(text: &str) -> Option<String> {
    if !(text.len() == 36 || text.len() == 32) {
        return None;
    }
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$";

// ---------------------------------------------------------------------------------------------
// The placement layer.

fn explanation(status: StatusCode, method: &Method, request: &HeaderMap) -> String {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect. ".into(),
        403 => "Access was denied to this resource.".into(),
        404 => "The resource could not be found.".into(),
        405 => format!("The method {method} is not allowed for this resource. "),
        406 => format!(
            "The resource could not be generated that was acceptable to your browser (content of type {}. ",
            request.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*")
        ),
        409 => "There was a conflict when trying to complete your request.".into(),
        415 => format!(
            "The request media type {} is not supported by this server. ",
            request.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("None")
        ),
        500 => "The server has either erred or is incapable of performing the requested operation. ".into(),
        _ => String::new(),
    }
}

/// webob's detail: `⟨explanation⟩\n\n ⟨message⟩  ` (newlines in the message become spaces).
fn webob_detail(explanation: &str, message: &str) -> String {
    format!("{explanation}\n\n {}  ", message.replace('\n', " "))
}

fn error_body(
    status: StatusCode,
    detail: String,
    code: Option<&str>,
    request_id: Option<&str>,
) -> Value {
    let mut e = json!({
        "status": status.as_u16(),
        "title": status.canonical_reason().unwrap_or("Error"),
        "detail": detail,
        "request_id": request_id,
    });
    if let Some(code) = code {
        e["code"] = json!(code);
    }
    json!({"errors": [e]})
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Placement's microversion header parsing (`microversion_parse`): entries scanned right to
/// left, the first `placement` one wins; `latest`; integers compared (`1.01` is 1.1).
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Version, (StatusCode, String)> {
    let joined: Vec<&str> = headers
        .get_all("openstack-api-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = joined.join(",");
    let mut requested = None;
    for entry in joined.split(',').rev() {
        let mut words = entry.split_whitespace();
        if let (Some(service), Some(version)) = (words.next(), words.next())
            && service.eq_ignore_ascii_case("placement")
        {
            requested = Some(version.to_string());
            break;
        }
    }
    let Some(text) = requested else {
        return Ok(MIN_VERSION);
    };
    if text.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let invalid = || {
        (
            StatusCode::BAD_REQUEST,
            format!("Invalid microversion: invalid version string: {text}"),
        )
    };
    let (major, minor) = text.split_once('.').ok_or_else(invalid)?;
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    let (Some(major), Some(minor)) = (num(major), num(minor)) else {
        return Err(invalid());
    };
    let version = Version::new(major, minor);
    if version < MIN_VERSION || version > MAX_VERSION {
        return Err((
            StatusCode::NOT_ACCEPTABLE,
            format!("Invalid microversion: Unacceptable version header: {text}"),
        ));
    }
    Ok(version)
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|item| {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            media.as_str(),
            "application/json" | "application/*" | "*/*" | ""
        )
    })
}

/// The outer placement middleware (see the module docs).
pub async fn placement_layer(mut request: Request, next: Next) -> Response {
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let method = request.method().clone();
    let req_headers = request.headers().clone();
    let version = match negotiate(&req_headers) {
        Ok(v) => v,
        Err((status, message)) => {
            let detail = webob_detail(&explanation(status, &method, &req_headers), &message);
            let mut body = error_body(status, detail, None, request_id.as_deref());
            if status == StatusCode::NOT_ACCEPTABLE {
                body["errors"][0]["max_version"] = json!(MAX_VERSION.to_string());
                body["errors"][0]["min_version"] = json!(MIN_VERSION.to_string());
            }
            return json_response(status, &body);
        }
    };
    request.extensions_mut().insert(version);
    let early = if let Some(len) = req_headers.get(header::CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()) {
            None => Some((
                StatusCode::BAD_REQUEST,
                "content-length header must be an integer",
            )),
            Some(n) if n > 0 && !req_headers.contains_key(header::CONTENT_TYPE) => Some((
                StatusCode::BAD_REQUEST,
                "content-type header required when content-length > 0",
            )),
            _ => None,
        }
    } else {
        None
    };
    let early = early.or_else(|| {
        (method == Method::GET && !accepts_json(&req_headers)).then_some((
            StatusCode::NOT_ACCEPTABLE,
            "Only application/json is provided",
        ))
    });
    let mut response = match early {
        Some((status, message)) => {
            let detail = webob_detail(&explanation(status, &method, &req_headers), message);
            let code = (version >= Version::new(1, 23)).then_some(UNDEFINED);
            json_response(
                status,
                &error_body(status, detail, code, request_id.as_deref()),
            )
        }
        None => {
            let response = next.run(request).await;
            finish_error(response, version, &method, &req_headers).await
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("placement {version}")) {
        headers.insert("openstack-api-version", v);
    }
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(
            header::VARY,
            HeaderValue::from_static("openstack-api-version"),
        );
        let has_body = headers.contains_key(header::CONTENT_TYPE);
        if version >= Version::new(1, 15) && (method == Method::GET || has_body) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let now = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            if let Ok(v) = HeaderValue::from_str(&now) {
                headers.insert(header::LAST_MODIFIED, v);
            }
        }
    }
    response
}

/// Rewrites an error body rendered by the shared Placement format: webob's `detail` shape and
/// `code` only at ≥1.23.
async fn finish_error(
    response: Response,
    version: Version,
    method: &Method,
    req_headers: &HeaderMap,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(error) = value
        .get_mut("errors")
        .and_then(|e| e.get_mut(0))
        .and_then(|e| e.as_object_mut())
    {
        if status != StatusCode::UNAUTHORIZED
            && let Some(Value::String(message)) = error.get("detail")
        {
            let detail = webob_detail(&explanation(status, method, req_headers), message);
            error.insert("detail".into(), json!(detail));
        }
        if version < Version::new(1, 23) {
            error.remove("code");
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string()))
}

#[cfg(test)]
mod tests;
