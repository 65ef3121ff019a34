//! In-process API tests: the network router over a fresh store (SQLite, or PostgreSQL when
//! `FERROSTACK_TEST_DATABASE_URL` is set) behind the root's request-id/policy guard, with
//! callers given by fixed tokens: `admin`, `alice` (member of p1), `bob` (member of p2),
//! `reader` (reader of p1).

use crate::service::Networking;
pub(crate) use ferrostack_api::testing::ids;
use serde_json::{Value, json};
use std::sync::Arc;

mod agents;
mod basics;
mod ipam;
mod l3;
mod security;

pub(crate) struct Harness {
    pub(crate) router: axum::Router,
    pub(crate) net: Arc<Networking>,
    pub(crate) bus: Arc<ferrostack_bus::InProcessBus>,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    /// The NeutronError type.
    pub(crate) fn kind(&self) -> &str {
        self.body["NeutronError"]["type"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub(crate) async fn open(name: &str) -> Harness {
        Self::with_config(name, ferrostack_config::NetworkConfig::default()).await
    }

    pub(crate) async fn with_config(
        name: &str,
        config: ferrostack_config::NetworkConfig,
    ) -> Harness {
        let store = ferrostack_store::test_store(&format!("network-{name}"))
            .await
            .unwrap();
        let bus = ferrostack_bus::InProcessBus::new();
        let net = Networking::open(store, "http://cloud:8080", bus.clone(), &config)
            .await
            .unwrap();
        let router = ferrostack_api::testing::serve(
            crate::api::router(net.clone()),
            &crate::default_rules(),
        );
        Harness { router, net, bus }
    }

    pub(crate) async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let req = ferrostack_api::testing::request(method, path, token);
        let (status, body) = ferrostack_api::testing::send(&self.router, req, body).await;
        Reply { status, body }
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Reply {
        self.call(token, "GET", path, None).await
    }

    /// Creates `{key: body}` at `path`; panics unless 201, returns the created object.
    pub(crate) async fn create(&self, token: &str, path: &str, key: &str, body: Value) -> Value {
        let reply = self
            .call(token, "POST", path, Some(json!({ key: body })))
            .await;
        assert_eq!(reply.status, 201, "POST {path}: {:?}", reply.body);
        reply.body[key].clone()
    }

    /// A network of `token`'s project with one IPv4 subnet `cidr`.
    pub(crate) async fn network_with_subnet(
        &self,
        token: &str,
        name: &str,
        cidr: &str,
    ) -> (Value, Value) {
        let network = self
            .create(token, "/v2.0/networks", "network", json!({"name": name}))
            .await;
        let subnet = self
            .create(
                token,
                "/v2.0/subnets",
                "subnet",
                json!({"network_id": network["id"], "ip_version": 4, "cidr": cidr, "name": format!("{name}-subnet")}),
            )
            .await;
        (network, subnet)
    }
}
