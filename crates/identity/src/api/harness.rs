//! Test harness: a real identity service (a fresh store — SQLite, or PostgreSQL in CI — Fernet
//! keys, bootstrap data) whose router the API modules' tests call in process.

use crate::bootstrap::{BootstrapInput, bootstrap};
use crate::service::Identity;
use ferrostack_api::ApiContext;
use ferrostack_fernet::{Scope, TokenPayload, expires_at_from, random_audit_id};
use ferrostack_policy::Enforcer;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct Harness {
    pub identity: Arc<Identity>,
    router: axum::Router,
    _state_dir: StateDir,
}

/// The harness's state directory (Fernet keys), removed with the harness.
struct StateDir(std::path::PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP response: status, lower-cased headers, JSON body (`Null` when empty).
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Harness {
    pub async fn open(name: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-identity-{}-{name}-{}",
            std::process::id(),
            crate::api::new_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("fernet-keys");
        ferrostack_fernet::KeyRepository::setup(&keys).unwrap();
        let mut config = ferrostack_config::Config {
            state_dir: dir.clone(),
            ..Default::default()
        };
        config.identity.fernet_key_repository = keys;
        config.identity.password_hash_rounds = 4;
        let store = ferrostack_store::test_store(&format!("identity-{name}"))
            .await
            .unwrap();
        let identity = Identity::open(config, store, ferrostack_bus::InProcessBus::new())
            .await
            .unwrap();
        let input = BootstrapInput {
            admin_password: "admin-pw".into(),
            demo_password: Some("demo-pw".into()),
            service_password: None,
        };
        bootstrap(&identity, &input).await.unwrap();
        let mut enforcer = Enforcer::new(true);
        enforcer.register(&crate::default_rules()).unwrap();
        let ctx = ApiContext {
            validator: identity.clone(),
            enforcer: Arc::new(enforcer),
        };
        let router = crate::api::router(identity.clone()).layer(axum::Extension(ctx));
        Harness {
            identity,
            router,
            _state_dir: StateDir(dir),
        }
    }

    pub fn user_id(&self, name: &str) -> String {
        self.identity
            .read()
            .user_by_name("default", name)
            .unwrap()
            .id
            .clone()
    }

    pub fn project_id(&self, name: &str) -> String {
        self.identity
            .read()
            .project_by_name("default", name)
            .unwrap()
            .id
            .clone()
    }

    pub fn role_id(&self, name: &str) -> String {
        self.identity.read().role_by_name(name).unwrap().id.clone()
    }

    /// A token for `user_id` with `scope`, as a password authentication would give.
    pub async fn token(&self, user_id: &str, scope: Scope) -> String {
        let project = match &scope {
            Scope::Project(p) => Some(p.as_str()),
            _ => None,
        };
        self.identity.wait_past_revocations(user_id, project).await;
        let payload = TokenPayload {
            user_id: user_id.to_string(),
            methods: vec!["password".into()],
            scope,
            expires_at: expires_at_from(SystemTime::now(), Duration::from_secs(3600)),
            audit_ids: vec![random_audit_id()],
        };
        self.identity.issue_token(payload).unwrap().0
    }

    /// The admin's project-scoped token (admin on the `admin` project).
    pub async fn admin(&self) -> String {
        self.token(
            &self.user_id("admin"),
            Scope::Project(self.project_id("admin")),
        )
        .await
    }

    /// The demo user's token (member on the `demo` project).
    pub async fn demo(&self) -> String {
        self.token(
            &self.user_id("demo"),
            Scope::Project(self.project_id("demo")),
        )
        .await
    }

    /// One request to the identity router (`path` under `/v3`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        use tower::ServiceExt;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(format!("/v3{path}"));
        if let Some(t) = token {
            request = request.header("x-auth-token", t);
        }
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                axum::body::Body::from(b.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers: HashMap<String, String> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}
