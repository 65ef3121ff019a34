//! The authenticated caller of a request and policy enforcement on it.
//!
//! Every service reads the caller through the [`Auth`] extractor: it takes `X-Auth-Token`,
//! validates it through the [`TokenValidator`] installed at the root (in-process identity in the
//! all-in-one; a remote one when services run apart) and carries the [`Enforcer`] so handlers
//! check policy with one call.

use crate::ApiError;
use axum::{extract::FromRequestParts, http::request::Parts};
use ferrostack_policy::Enforcer;
use serde_json::{Value, json};
use std::sync::Arc;

/// A project, domain or role reference inside a token.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NamedRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// What a validated token says about its bearer.
#[derive(Clone, Default)]
pub struct AuthContext {
    /// The token itself (never logged; `Debug` hides it).
    pub token: String,
    /// The user.
    pub user: NamedRef,
    /// The user's domain.
    pub user_domain: NamedRef,
    /// The project for project-scoped tokens.
    pub project: Option<NamedRef>,
    /// The project's domain.
    pub project_domain: Option<NamedRef>,
    /// The domain for domain-scoped tokens.
    pub domain: Option<NamedRef>,
    /// `Some("all")` for system-scoped tokens.
    pub system_scope: Option<String>,
    /// Effective roles (implied roles expanded).
    pub roles: Vec<NamedRef>,
    /// Authentication methods.
    pub methods: Vec<String>,
    /// Audit ids (own first, then the chain).
    pub audit_ids: Vec<String>,
    /// Expiry, ISO 8601 (`%Y-%m-%dT%H:%M:%S.000000Z`).
    pub expires_at: String,
    /// Issue time, ISO 8601.
    pub issued_at: String,
    /// Whether the project is the cloud's admin project.
    pub is_admin_project: bool,
    /// Expiry as Unix seconds.
    pub expires_at_unix: f64,
    /// When the user's password expires, if it does.
    pub password_expires_at: Option<String>,
    /// Application credential the token was made from: (id, name, restricted).
    pub application_credential: Option<(String, String, bool)>,
    /// Policy credentials, built once from the fields above.
    pub creds: Value,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("user", &self.user.id)
            .field("project", &self.project.as_ref().map(|p| &p.id))
            .field("domain", &self.domain.as_ref().map(|d| &d.id))
            .field("system_scope", &self.system_scope)
            .field(
                "roles",
                &self.roles.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// Builds the oslo.policy credentials (`user_id`, `project_id`, `roles`, `system_scope`,
    /// `token.domain.id`, ...) and stores them in `creds`. Call once after filling the fields.
    pub fn with_creds(mut self) -> Self {
        let roles: Vec<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
        self.creds = json!({
            "user_id": self.user.id,
            "user_domain_id": self.user_domain.id,
            "project_id": self.project.as_ref().map(|p| &p.id),
            "project_domain_id": self.project_domain.as_ref().map(|d| &d.id),
            "domain_id": self.domain.as_ref().map(|d| &d.id),
            "system_scope": self.system_scope,
            "roles": roles,
            "is_admin_project": self.is_admin_project,
            "token": {
                "domain": {"id": self.domain.as_ref().map(|d| &d.id)},
                "project": {"domain": {"id": self.project_domain.as_ref().map(|d| &d.id)}},
                "user": {"domain": {"id": self.user_domain.id}},
            },
        });
        self
    }

    /// Whether the bearer has `role` (case-insensitive, effective roles).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.name.eq_ignore_ascii_case(role))
    }

    /// The project id of a project-scoped token.
    pub fn project_id(&self) -> Option<&str> {
        self.project.as_ref().map(|p| p.id.as_str())
    }
}

/// Turns a token into an [`AuthContext`].
#[async_trait::async_trait]
pub trait TokenValidator: Send + Sync {
    /// Validates `token`; an invalid, expired or revoked token is a 401.
    async fn validate(&self, token: &str) -> Result<Arc<AuthContext>, ApiError>;
}

/// What the root router hands every service: the validator and the policy enforcer.
#[derive(Clone)]
pub struct ApiContext {
    /// Token validation.
    pub validator: Arc<dyn TokenValidator>,
    /// Policy rules of every service.
    pub enforcer: Arc<Enforcer>,
}

/// Whether the current request went through a policy decision (set by [`Auth::enforce`],
/// [`Auth::allows`] and [`Public`]). The root middleware refuses to answer a successful response
/// to a request that never got one, so no route is open by accident.
#[derive(Clone, Default)]
pub struct PolicyCheck(Arc<std::sync::atomic::AtomicBool>);

impl PolicyCheck {
    /// Records that a policy decision was made.
    pub fn mark(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Whether a policy decision was made.
    pub fn done(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Declares a route public on purpose (version discovery, token issue, ...): extracting it
/// counts as the route's policy decision.
pub struct Public;

impl<S: Send + Sync> FromRequestParts<S> for Public {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(check) = parts.extensions.get::<PolicyCheck>() {
            check.mark();
        }
        Ok(Public)
    }
}

/// The authenticated caller; extracting it answers 401 when the token is missing or invalid.
#[derive(Clone)]
pub struct Auth {
    /// The caller.
    pub ctx: Arc<AuthContext>,
    enforcer: Arc<Enforcer>,
    check: PolicyCheck,
}

impl Auth {
    /// Builds an `Auth` directly (tests, internal calls).
    pub fn new(ctx: Arc<AuthContext>, enforcer: Arc<Enforcer>) -> Self {
        Auth {
            ctx,
            enforcer,
            check: PolicyCheck::default(),
        }
    }

    /// Checks `action` against `target`; 403 when denied.
    pub fn enforce(&self, action: &str, target: &Value) -> Result<(), ApiError> {
        self.check.mark();
        self.enforcer
            .enforce(action, target, &self.ctx.creds)
            .map_err(|e| {
                tracing::info!(action, user = %self.ctx.user.id, "policy denied");
                ApiError::from(e)
            })
    }

    /// Whether `action` would be allowed on `target` (for filtering lists).
    pub fn allows(&self, action: &str, target: &Value) -> bool {
        self.check.mark();
        self.enforcer.authorize(action, target, &self.ctx.creds)
    }
}

impl std::ops::Deref for Auth {
    type Target = AuthContext;
    fn deref(&self) -> &AuthContext {
        &self.ctx
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.extensions.get::<Auth>() {
            return Ok(auth.clone());
        }
        let check = parts
            .extensions
            .get::<PolicyCheck>()
            .cloned()
            .unwrap_or_default();
        let api = parts
            .extensions
            .get::<ApiContext>()
            .cloned()
            .ok_or_else(|| ApiError::internal("ApiContext missing from request extensions"))?;
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let ctx = api.validator.validate(token).await?;
        let auth = Auth {
            ctx,
            enforcer: api.enforcer,
            check,
        };
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}
