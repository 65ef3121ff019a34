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
