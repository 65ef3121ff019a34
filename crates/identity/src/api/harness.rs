//! Test harness: a real identity service (a fresh store — SQLite, or PostgreSQL in CI — Fernet
//! keys, bootstrap data) served over HTTP on a loopback port, for the API modules' tests.

use crate::bootstrap::{BootstrapInput, bootstrap};
use crate::service::Identity;
use ferrostack_api::ApiContext;
use ferrostack_fernet::{Scope, TokenPayload, expires_at_from, random_audit_id};
use ferrostack_policy::Enforcer;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct Harness {
    pub identity: Arc<Identity>,
    addr: SocketAddr,
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
        };
        bootstrap(&identity, &input).await.unwrap();
        let mut enforcer = Enforcer::new(true);
        enforcer.register(&crate::default_rules()).unwrap();
        let ctx = ApiContext {
            validator: identity.clone(),
            enforcer: Arc::new(enforcer),
        };
        let router = crate::api::router(identity.clone()).layer(axum::Extension(ctx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Harness { identity, addr }
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

    /// One HTTP/1.1 request (`path` under `/v3`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request =
            format!("{method} /v3{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(t) = token {
            request.push_str(&format!("X-Auth-Token: {t}\r\n"));
        }
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        if !text.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                text.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&text);
        let addr = self.addr;
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut payload = rest.to_string();
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            payload = dechunk(rest);
        }
        let body = serde_json::from_str(&payload).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
