//! Test support for service crates (feature `testing`): callers given by fixed tokens, so a
//! service's router can be exercised in process with real policy enforcement.

use crate::{ApiContext, ApiError, AuthContext, NamedRef, TokenValidator};
use ferrostack_policy::Enforcer;
use std::collections::HashMap;
use std::sync::Arc;

/// A project-scoped caller: `user` in `project` (both in the default domain) with `roles`.
pub fn caller(user: &str, project: &str, roles: &[&str]) -> Arc<AuthContext> {
    let named = |id: &str| NamedRef {
        id: id.into(),
        name: id.into(),
    };
    Arc::new(
        AuthContext {
            user: named(user),
            user_domain: named("default"),
            project: Some(named(project)),
            project_domain: Some(named("default")),
            roles: roles.iter().map(|r| named(r)).collect(),
            ..Default::default()
        }
        .with_creds(),
    )
}

/// Validates tokens against a fixed table; any other token is a 401.
pub struct FixedCallers(HashMap<String, Arc<AuthContext>>);

#[async_trait::async_trait]
impl TokenValidator for FixedCallers {
    async fn validate(&self, token: &str) -> Result<Arc<AuthContext>, ApiError> {
        self.0
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The usual cast: `admin` (admin of `p-admin`), `alice` (member of `p1`), `bob` (member of
/// `p2`) and `reader` (reader of `p1`), each token named after its caller.
pub fn standard_callers() -> FixedCallers {
    FixedCallers(HashMap::from([
        (
            "admin".to_string(),
            caller("u-admin", "p-admin", &["admin", "member", "reader"]),
        ),
        (
            "alice".to_string(),
            caller("u-alice", "p1", &["member", "reader"]),
        ),
        (
            "bob".to_string(),
            caller("u-bob", "p2", &["member", "reader"]),
        ),
        ("reader".to_string(), caller("u-reader", "p1", &["reader"])),
    ]))
}

impl FixedCallers {
    /// Adds (or replaces) the caller behind `token`.
    pub fn with(mut self, token: &str, ctx: Arc<AuthContext>) -> Self {
        self.0.insert(token.to_string(), ctx);
        self
    }
}

/// The request context of a service under test: `callers` and the service's `rules`.
pub fn context(callers: FixedCallers, rules: &[ferrostack_policy::RuleDefault]) -> ApiContext {
    let mut enforcer = Enforcer::new(true);
    enforcer
        .register(rules)
        .expect("the service's default rules register");
    ApiContext {
        validator: Arc::new(callers),
        enforcer: Arc::new(enforcer),
    }
}

/// `router` as the root serves it, for a service under test: behind the request-id middleware,
/// with [`standard_callers`] and the service's `rules` as its request context.
pub fn serve(router: axum::Router, rules: &[ferrostack_policy::RuleDefault]) -> axum::Router {
    router
        .layer(axum::middleware::from_fn(
            crate::request_id::request_id_middleware,
        ))
        .layer(axum::Extension(context(standard_callers(), rules)))
}

/// A request for `method` `path` as the caller of `token` (no token when it is empty).
pub fn request(method: &str, path: &str, token: &str) -> http::request::Builder {
    let req = http::Request::builder().method(method).uri(path);
    match token {
        "" => req,
        token => req.header("x-auth-token", token),
    }
}

/// Sends `req` to `router`, with `body` as its JSON body when given; the response's status and
/// its body parsed as JSON (`Null` when it is not JSON).
pub async fn send(
    router: &axum::Router,
    mut req: http::request::Builder,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(b.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(req.body(body).expect("a valid test request"))
        .await
        .expect("the router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the response body is read");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The ids of the items of a list body's `key` (an empty id for an item without one).
pub fn ids(body: &serde_json::Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect()
}
