//! HTTP plumbing shared by every Ferrostack API.
//!
//! One listener serves every service under its path prefix (`/identity`, `/compute/v2.1`, ...).
//! A service hands [`RootRouter::mount`] its `axum::Router`, already wrapped in its error format
//! ([`with_error_format`]) and, where it has them, its microversions ([`with_microversions`]).
//! The root adds what every request gets: a request id in the response header and the log
//! span, metrics, the JSON body size limit, the [`ApiContext`] used by the [`Auth`] extractor,
//! trailing-slash normalisation, `/metrics` and `/healthz`.

pub mod auth;
pub mod error;
pub mod metrics;
pub mod microversion;
pub mod pagination;
pub mod request_id;
pub mod validation;

pub use auth::{ApiContext, Auth, AuthContext, NamedRef, TokenValidator};
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
    mounted: Vec<&'static str>,
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
        }
    }

    /// Mounts a service at `prefix` (e.g. `/identity`). Panics on a duplicate prefix (a wiring bug).
    pub fn mount(mut self, prefix: &'static str, service: Router) -> Self {
        assert!(!self.mounted.contains(&prefix), "{prefix} mounted twice");
        self.mounted.push(prefix);
        self.router = self.router.nest(prefix, service);
        self
    }

    /// The prefixes mounted so far.
    pub fn prefixes(&self) -> &[&'static str] {
        &self.mounted
    }

    /// Adds the shared layers and the operational endpoints.
    pub fn finish(
        self,
        ctx: ApiContext,
        max_body_bytes: usize,
        readiness: Readiness,
    ) -> NormalizePath<Router> {
        let router = self
            .router
            .route("/metrics", get(metrics::metrics_handler))
            .route(
                "/healthz",
                get(move || {
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
        NormalizePathLayer::trim_trailing_slash().layer(router)
    }
}
