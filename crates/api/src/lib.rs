//! HTTP plumbing shared by every Ferrostack API.
//!
//! One listener serves every service under its path prefix (`/identity`, `/compute/v2.1`, ...).
//! A service hands [`RootRouter::mount`] its `axum::Router`, already wrapped in its error format
//! ([`with_error_format`]) and, where it has them, its microversions ([`with_microversions`]).
//! The root adds what every request gets: a request id in the response header and the log
//! span, metrics, the JSON body size limit, the [`ApiContext`] used by the [`Auth`] extractor,
//! trailing-slash normalisation, `/metrics` and `/healthz`.

pub mod auth;
pub mod crashpoint;
pub mod error;
pub mod metrics;
pub mod microversion;
pub mod pagination;
pub mod request_id;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validation;

pub use auth::{ApiContext, Auth, AuthContext, NamedRef, PolicyCheck, Public, TokenValidator};
pub use error::{ApiError, ErrorFormat, with_error_format};
pub use microversion::{MicroversionSpec, Version, with_microversions};
pub use pagination::{PageRequest, next_link};
pub use request_id::{REQUEST_ID_HEADER, RequestId};
pub use validation::{JsonBody, Schema, ValidationError};

use axum::{Extension, Router, extract::DefaultBodyLimit, routing::get};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// Readiness flag behind `/healthz`; false until start-up finished and again while shutting down.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    /// Whether the process is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Builds the single router that serves every mounted service.
pub struct RootRouter {
    router: Router,
    mounted: Vec<(&'static str, ErrorFormat)>,
    keep_slash: Vec<&'static str>,
}

impl Default for RootRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl RootRouter {
    /// An empty root.
    pub fn new() -> Self {
        RootRouter {
            router: Router::new(),
            mounted: Vec::new(),
            keep_slash: Vec::new(),
        }
    }

    /// Mounts a service at `prefix` (e.g. `/identity`); `format` renders its 404s for unknown
    /// paths. Panics on a duplicate prefix (a wiring bug).
    pub fn mount(mut self, prefix: &'static str, format: ErrorFormat, service: Router) -> Self {
        assert!(
            !self.mounted.iter().any(|(p, _)| *p == prefix),
            "{prefix} mounted twice"
        );
        self.mounted.push((prefix, format));
        self.router = self.router.nest(prefix, service);
        self
    }

    /// The prefixes mounted so far.
    /// Paths under `prefix` keep their trailing slash (Glance answers `GET /v2/images/` with
    /// a 404, not the list).
    pub fn keep_trailing_slash(mut self, prefix: &'static str) -> Self {
        self.keep_slash.push(prefix);
        self
    }

    pub fn prefixes(&self) -> Vec<&'static str> {
        self.mounted.iter().map(|(p, _)| *p).collect()
    }

    /// Adds the shared layers and the operational endpoints.
    pub fn finish(
        self,
        ctx: ApiContext,
        max_body_bytes: usize,
        readiness: Readiness,
    ) -> TrimTrailingSlash {
        let keep = Arc::new(self.keep_slash.clone());
        let mounted = self.mounted.clone();
        let router = self
            .router
            .fallback(move |uri: axum::http::Uri| {
                let format = mounted
                    .iter()
                    .find(|(p, _)| uri.path().starts_with(p))
                    .map(|(_, f)| *f)
                    .unwrap_or(ErrorFormat::Keystone);
                async move {
                    error::render_standalone(
                        ApiError::not_found("The resource could not be found."),
                        format,
                    )
                }
            })
            .route("/metrics", get(|_: Public| metrics::metrics_handler()))
            .route(
                "/healthz",
                get(move |_: Public| {
                    let ready = readiness.get();
                    async move {
                        match ready {
                            true => (axum::http::StatusCode::OK, "ok"),
                            false => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting"),
                        }
                    }
                }),
            )
            .layer(Extension(ctx))
            .layer(DefaultBodyLimit::max(max_body_bytes))
            .layer(axum::middleware::from_fn(request_id::request_id_middleware));
        TrimTrailingSlash {
            inner: NormalizePathLayer::trim_trailing_slash().layer(router.clone()),
            exact: router,
            keep,
        }
    }
}

/// The root service: trailing slashes trimmed before routing, except under the prefixes that
/// asked to keep them.
#[derive(Clone)]
pub struct TrimTrailingSlash {
    inner: NormalizePath<Router>,
    exact: Router,
    keep: Arc<Vec<&'static str>>,
}

impl tower::Service<axum::extract::Request> for TrimTrailingSlash {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let path = request.uri().path();
        let exact = self
            .keep
            .iter()
            .any(|p| path.starts_with(p) && path.len() > p.len());
        if exact {
            let service = self.exact.clone();
            Box::pin(tower::ServiceExt::oneshot(service, request))
        } else {
            let service = self.inner.clone();
            Box::pin(tower::ServiceExt::oneshot(service, request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request, routing::post};
    use tower::ServiceExt;

    struct NoTokens;

    #[async_trait::async_trait]
    impl TokenValidator for NoTokens {
        async fn validate(&self, _token: &str) -> Result<Arc<AuthContext>, ApiError> {
            Err(ApiError::unauthorized())
        }
    }

    fn app() -> TrimTrailingSlash {
        let nova = with_error_format(
            Router::new()
                .route(
                    "/servers",
                    post(|_: Public, JsonBody(_): JsonBody| async { "ok" }),
                )
                .route(
                    "/open",
                    axum::routing::get(|| async { "forgot the policy" }),
                )
                .route(
                    "/secret",
                    axum::routing::get(|_auth: Auth| async { "never" }),
                ),
            ErrorFormat::Nova,
        );
        let ctx = ApiContext {
            validator: Arc::new(NoTokens),
            enforcer: Arc::new(ferrostack_policy::Enforcer::new(true)),
        };
        RootRouter::new()
            .mount("/compute", ErrorFormat::Nova, nova)
            .finish(ctx, 64, Readiness::default())
    }

    async fn call(req: Request<Body>) -> (u16, http::HeaderMap, serde_json::Value) {
        let response = app().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn errors_use_the_service_format_and_carry_request_ids() {
        let (status, headers, body) = call(
            Request::get("/compute/nowhere")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(body["itemNotFound"]["code"], 404);
        assert!(
            headers[REQUEST_ID_HEADER]
                .to_str()
                .unwrap()
                .starts_with("req-")
        );

        let (status, _, body) = call(
            Request::get("/compute/secret/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(
            status, 401,
            "trailing slash is normalised and the route needs a token"
        );
        assert_eq!(body["unauthorized"]["code"], 401);

        let big = Request::post("/compute/servers")
            .header("content-type", "application/json")
            .body(Body::from(format!("{{\"x\": \"{}\"}}", "a".repeat(100))))
            .unwrap();
        let (status, _, body) = call(big).await;
        assert_eq!(status, 413);
        assert_eq!(body["overLimit"]["code"], 413);

        let bad = Request::post("/compute/servers")
            .header("content-type", "application/json")
            .body(Body::from("{"))
            .unwrap();
        let (status, _, body) = call(bad).await;
        assert_eq!(status, 400);
        assert!(
            body["badRequest"]["message"]
                .as_str()
                .unwrap()
                .contains("Malformed JSON")
        );
    }

    #[tokio::test]
    async fn a_route_without_a_policy_decision_is_refused() {
        let (status, _, _) = call(Request::get("/compute/open").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 500);
    }

    #[tokio::test]
    async fn healthz_follows_readiness() {
        let (status, _, _) = call(Request::get("/healthz").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 503);
    }
}
