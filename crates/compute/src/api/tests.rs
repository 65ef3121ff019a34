//! In-process API tests: the compute router over a fresh store, with callers given by fixed
//! tokens (admin, two members of different projects, a reader).

use crate::service::Compute;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct Harness {
    pub(crate) router: axum::Router,
    pub(crate) compute: std::sync::Arc<Compute>,
}

/// A fixed image catalog: every image public and active unless named otherwise.
pub(crate) struct TestImages(pub Vec<crate::service::ImageInfo>);

#[async_trait::async_trait]
impl crate::service::ImageCatalog for TestImages {
    async fn image(
        &self,
        id: &str,
        _project: Option<&str>,
        _admin: bool,
    ) -> anyhow::Result<Option<crate::service::ImageInfo>> {
        Ok(self.0.iter().find(|i| i.id == id).cloned())
    }
}

/// The image every server test boots.
pub(crate) const IMAGE: &str = "6a6e0b6e-4a53-4a8f-9a77-0a1d7c3b5f00";

fn test_images() -> TestImages {
    TestImages(vec![crate::service::ImageInfo {
        id: IMAGE.into(),
        name: Some("guest".into()),
        status: "active".into(),
        disk_format: Some("qcow2".into()),
        container_format: Some("bare".into()),
        size: Some(10 << 20),
        virtual_size: Some(64 << 20),
        ..Default::default()
    }])
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
}

impl Harness {
    pub(crate) async fn open(name: &str) -> Harness {
        let store = ferrostack_store::test_store(&format!("compute-{name}"))
            .await
            .unwrap();
        let placement = ferrostack_placement::Placement::open(store.clone(), "http://cloud:8080")
            .await
            .unwrap();
        let compute = Compute::open(
            store,
            "http://cloud:8080",
            placement,
            ferrostack_bus::InProcessBus::new(),
            std::sync::Arc::new(test_images()),
            ferrostack_config::ComputeConfig::default(),
        )
        .await
        .unwrap();
        let ctx = ferrostack_api::testing::context(
            ferrostack_api::testing::standard_callers(),
            &crate::default_rules(),
        );
        let router = crate::api::router(compute.clone()).layer(axum::Extension(ctx));
        Harness { router, compute }
    }

    pub(crate) async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        mv: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {mv}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut request = req.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ferrostack_api::RequestId(format!(
                "req-{}",
                uuid::Uuid::new_v4()
            )));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

pub(crate) fn flavor(name: &str, extra: Value) -> Value {
    let mut f = json!({"name": name, "ram": 512, "vcpus": 1, "disk": 1, "id": null});
    for (k, v) in extra.as_object().unwrap() {
        f[k] = v.clone();
    }
    json!({"flavor": f})
}

#[tokio::test]
async fn version_discovery_follows_nova() {
    let h = Harness::open("versions").await;
    let reply = h.call("", "GET", "/", "2.1", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["versions"][0]["id"], "v2.0");
    assert_eq!(reply.body["versions"][1]["version"], "2.96");
    assert_eq!(
        reply.body["versions"][1]["links"][0]["href"],
        "http://cloud:8080/compute/v2.1/"
    );
    let reply = h.call("", "GET", "/v2.1", "2.1", None).await;
    assert_eq!(reply.body["version"]["min_version"], "2.1");
    assert_eq!(
        h.call("", "GET", "/v2", "2.1", None).await.body["version"]["id"],
        "v2.0"
    );
    assert_eq!(h.call("", "GET", "/foo", "2.1", None).await.status, 300);
    let reply = h.call("alice", "GET", "/v2.1/flavors", "2.200", None).await;
    assert_eq!(reply.status, 406);
    assert_eq!(reply.body["computeFault"]["code"], 406);
    let reply = h.call("alice", "GET", "/v2.1/flavors", "2.61", None).await;
    assert_eq!(reply.headers["openstack-api-version"], "compute 2.61");
    assert!(
        reply.headers["x-compute-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-")
    );
    assert_eq!(
        h.call("nobody", "GET", "/v2.1/flavors", "2.1", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn flavors_are_admin_managed_and_rendered_by_microversion() {
    let h = Harness::open("flavors").await;
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/flavors",
            "2.1",
            Some(flavor("x", json!({}))),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply.body["forbidden"]["message"].is_string());
    let reply = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors",
            "2.61",
            Some(flavor("m1.tiny", json!({"id": "1"}))),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["flavor"]["id"], "1");
    assert_eq!(reply.body["flavor"]["extra_specs"], json!({}));
    let reply = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors",
            "2.1",
            Some(flavor("m1.tiny", json!({}))),
        )
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(
        reply.body["conflictingRequest"]["message"],
        "Flavor with name m1.tiny already exists."
    );
    h.call(
        "admin",
        "POST",
        "/v2.1/flavors",
        "2.1",
        Some(flavor(
            "m1.big",
            json!({"id": "2", "ram": 4096, "swap": 512}),
        )),
    )
    .await;
    for (body, field) in [
        (flavor("bad", json!({"ram": 0})), "ram"),
        (flavor("bad", json!({"vcpus": "x"})), "vcpus"),
        (
            json!({"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 0}}),
            "name",
        ),
    ] {
        let reply = h
            .call("admin", "POST", "/v2.1/flavors", "2.1", Some(body))
            .await;
        assert_eq!(reply.status, 400, "{field}");
    }

    // Swap is "" below 2.75 and a number from it; description from 2.55.
    let old = h
        .call("alice", "GET", "/v2.1/flavors/1", "2.1", None)
        .await
        .body;
    assert_eq!(old["flavor"]["swap"], "");
    assert!(old["flavor"].get("description").is_none());
    assert!(old["flavor"].get("extra_specs").is_none());
    let new = h
        .call("alice", "GET", "/v2.1/flavors/1", "2.75", None)
        .await
        .body;
    assert_eq!(new["flavor"]["swap"], 0);
    assert_eq!(new["flavor"]["description"], Value::Null);
    assert_eq!(new["flavor"]["extra_specs"], json!({}));
    assert_eq!(
        new["flavor"]["links"][0]["href"],
        "http://cloud:8080/compute/v2.1/flavors/1"
    );

    // Listing: filters, sorting, pagination.
    let ids = |r: &Reply| -> Vec<String> {
        r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&h.call("alice", "GET", "/v2.1/flavors", "2.1", None).await),
        ["1", "2"]
    );
    assert_eq!(
        ids(&h
            .call(
                "alice",
                "GET",
                "/v2.1/flavors/detail?minRam=1024",
                "2.1",
                None
            )
            .await),
        ["2"]
    );
    assert_eq!(
        ids(&h
            .call(
                "alice",
                "GET",
                "/v2.1/flavors?sort_key=memory_mb&sort_dir=desc",
                "2.1",
                None
            )
            .await),
        ["2", "1"]
    );
    let page = h
        .call("alice", "GET", "/v2.1/flavors?limit=1", "2.1", None)
        .await;
    assert_eq!(ids(&page), ["1"]);
    assert!(
        page.body["flavors_links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("marker=1")
    );
    assert_eq!(
        ids(&h
            .call("alice", "GET", "/v2.1/flavors?marker=1", "2.1", None)
            .await),
        ["2"]
    );
    assert_eq!(
        h.call("alice", "GET", "/v2.1/flavors?minRam=x", "2.1", None)
            .await
            .status,
        400
    );
    assert_eq!(
        h.call("alice", "GET", "/v2.1/flavors?marker=nope", "2.1", None)
            .await
            .status,
        400
    );

    // Description updates need 2.55.
    let put = json!({"flavor": {"description": "small"}});
    assert_eq!(
        h.call("admin", "PUT", "/v2.1/flavors/1", "2.54", Some(put.clone()))
            .await
            .status,
        405
    );
    let reply = h
        .call("admin", "PUT", "/v2.1/flavors/1", "2.55", Some(put))
        .await;
    assert_eq!(reply.body["flavor"]["description"], "small");

    // Delete is 202, then 404.
    assert_eq!(
        h.call("admin", "DELETE", "/v2.1/flavors/2", "2.1", None)
            .await
            .status,
        202
    );
    let reply = h.call("alice", "GET", "/v2.1/flavors/2", "2.1", None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body["itemNotFound"]["message"],
        "Flavor 2 could not be found."
    );
}

#[tokio::test]
async fn private_flavors_and_extra_specs() {
    let h = Harness::open("access").await;
    let body = flavor(
        "private",
        json!({"id": "p", "os-flavor-access:is_public": false}),
    );
    assert_eq!(
        h.call("admin", "POST", "/v2.1/flavors", "2.1", Some(body))
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("alice", "GET", "/v2.1/flavors/p", "2.1", None)
            .await
            .status,
        404
    );
    let add = json!({"addTenantAccess": {"tenant": "p1"}});
    assert_eq!(
        h.call(
            "alice",
            "POST",
            "/v2.1/flavors/p/action",
            "2.1",
            Some(add.clone())
        )
        .await
        .status,
        403
    );
    let reply = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors/p/action",
            "2.1",
            Some(add.clone()),
        )
        .await;
    assert_eq!(
        reply.body["flavor_access"],
        json!([{"flavor_id": "p", "tenant_id": "p1"}])
    );
    assert_eq!(
        h.call("admin", "POST", "/v2.1/flavors/p/action", "2.1", Some(add))
            .await
            .status,
        409
    );
    assert_eq!(
        h.call("alice", "GET", "/v2.1/flavors/p", "2.1", None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("bob", "GET", "/v2.1/flavors/p", "2.1", None)
            .await
            .status,
        404
    );
    // Admin listing: is_public=None shows all, false only private ones.
    let ids = |r: Reply| r.body["flavors"].as_array().unwrap().len();
    assert_eq!(
        ids(h
            .call("admin", "GET", "/v2.1/flavors?is_public=None", "2.1", None)
            .await),
        1
    );
    assert_eq!(
        ids(h
            .call("admin", "GET", "/v2.1/flavors?is_public=true", "2.1", None)
            .await),
        0
    );
    assert_eq!(
        h.call("admin", "GET", "/v2.1/flavors?is_public=maybe", "2.1", None)
            .await
            .status,
        400
    );
    let remove = json!({"removeTenantAccess": {"tenant": "p1"}});
    assert_eq!(
        h.call(
            "admin",
            "POST",
            "/v2.1/flavors/p/action",
            "2.1",
            Some(remove.clone())
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.call(
            "admin",
            "POST",
            "/v2.1/flavors/p/action",
            "2.1",
            Some(remove)
        )
        .await
        .status,
        404
    );
    assert_eq!(
        h.call("alice", "GET", "/v2.1/flavors/p", "2.1", None)
            .await
            .status,
        404
    );

    // Extra specs on a public flavor.
    h.call(
        "admin",
        "POST",
        "/v2.1/flavors",
        "2.1",
        Some(flavor("pub", json!({"id": "q"}))),
    )
    .await;
    let specs = json!({"extra_specs": {"hw:cpu_policy": "shared", "foo:bar": 5}});
    assert_eq!(
        h.call(
            "alice",
            "POST",
            "/v2.1/flavors/q/os-extra_specs",
            "2.1",
            Some(specs.clone())
        )
        .await
        .status,
        403
    );
    let reply = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors/q/os-extra_specs",
            "2.1",
            Some(specs),
        )
        .await;
    assert_eq!(reply.body["extra_specs"]["foo:bar"], "5");
    let reply = h
        .call(
            "reader",
            "GET",
            "/v2.1/flavors/q/os-extra_specs/foo:bar",
            "2.1",
            None,
        )
        .await;
    assert_eq!(reply.body, json!({"foo:bar": "5"}));
    let put = json!({"other": "x"});
    assert_eq!(
        h.call(
            "admin",
            "PUT",
            "/v2.1/flavors/q/os-extra_specs/foo:bar",
            "2.1",
            Some(put)
        )
        .await
        .status,
        400
    );
    assert_eq!(
        h.call(
            "admin",
            "DELETE",
            "/v2.1/flavors/q/os-extra_specs/foo:bar",
            "2.1",
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.call(
            "admin",
            "DELETE",
            "/v2.1/flavors/q/os-extra_specs/foo:bar",
            "2.1",
            None
        )
        .await
        .status,
        404
    );
    let show = h
        .call("alice", "GET", "/v2.1/flavors/q", "2.61", None)
        .await;
    assert_eq!(
        show.body["flavor"]["extra_specs"],
        json!({"hw:cpu_policy": "shared"})
    );
}

#[tokio::test]
async fn keypairs_are_per_user_generated_or_imported() {
    let h = Harness::open("keypairs").await;
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.1",
            Some(json!({"keypair": {"name": "k1"}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let generated = reply.body["keypair"].clone();
    assert!(
        generated["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    assert!(generated.get("type").is_none());
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.2",
            Some(json!({"keypair": {"name": "k2", "public_key": generated["public_key"]}})),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.body["keypair"]["fingerprint"],
        generated["fingerprint"]
    );
    assert_eq!(reply.body["keypair"]["type"], "ssh");
    assert!(reply.body["keypair"].get("private_key").is_none());
    for (body, status) in [
        (json!({"keypair": {"name": "k1"}}), 409),
        (json!({"keypair": {"name": "bad/name"}}), 400),
        (json!({"keypair": {"name": "k3", "public_key": ""}}), 400),
        (
            json!({"keypair": {"name": "k3", "public_key": format!("ssh-rsa {} openstack@ubuntu", "A".repeat(2048))}}),
            400,
        ),
    ] {
        assert_eq!(
            h.call(
                "alice",
                "POST",
                "/v2.1/os-keypairs",
                "2.2",
                Some(body.clone())
            )
            .await
            .status,
            status,
            "{body}"
        );
    }
    // 2.92: no generation.
    assert_eq!(
        h.call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.92",
            Some(json!({"keypair": {"name": "k4"}}))
        )
        .await
        .status,
        400
    );

    let list = h
        .call("alice", "GET", "/v2.1/os-keypairs", "2.2", None)
        .await
        .body;
    assert_eq!(list["keypairs"].as_array().unwrap().len(), 2);
    assert_eq!(list["keypairs"][0]["keypair"]["name"], "k1");
    assert_eq!(
        h.call("bob", "GET", "/v2.1/os-keypairs", "2.2", None)
            .await
            .body["keypairs"],
        json!([])
    );
    assert_eq!(
        h.call("bob", "GET", "/v2.1/os-keypairs/k1", "2.2", None)
            .await
            .status,
        404
    );
    let show = h
        .call("alice", "GET", "/v2.1/os-keypairs/k1", "2.2", None)
        .await
        .body;
    assert_eq!(show["keypair"]["user_id"], "u-alice");
    assert_eq!(show["keypair"]["deleted"], false);
    assert!(show["keypair"]["id"].is_i64());
    // Another user's keypairs: admins only (2.10).
    assert_eq!(
        h.call(
            "bob",
            "GET",
            "/v2.1/os-keypairs?user_id=u-alice",
            "2.10",
            None
        )
        .await
        .status,
        403
    );
    let admin = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-keypairs?user_id=u-alice",
            "2.10",
            None,
        )
        .await;
    assert_eq!(admin.body["keypairs"].as_array().unwrap().len(), 2);
    let page = h
        .call("alice", "GET", "/v2.1/os-keypairs?limit=1", "2.35", None)
        .await
        .body;
    assert_eq!(page["keypairs"].as_array().unwrap().len(), 1);
    assert!(
        page["keypairs_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=k1")
    );

    assert_eq!(
        h.call("alice", "DELETE", "/v2.1/os-keypairs/k1", "2.1", None)
            .await
            .status,
        202
    );
    assert_eq!(
        h.call("alice", "DELETE", "/v2.1/os-keypairs/k2", "2.2", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "DELETE", "/v2.1/os-keypairs/k2", "2.2", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn server_groups_follow_policies_by_microversion_and_quota() {
    let h = Harness::open("server-groups").await;
    let old = json!({"server_group": {"name": "g1", "policies": ["anti-affinity"]}});
    let reply = h
        .call("alice", "POST", "/v2.1/os-server-groups", "2.1", Some(old))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let g1 = reply.body["server_group"].clone();
    assert_eq!(g1["policies"], json!(["anti-affinity"]));
    assert_eq!(g1["members"], json!([]));
    assert_eq!(g1["metadata"], json!({}));
    assert!(g1.get("project_id").is_none());
    let new = json!({"server_group": {"name": "g2", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}});
    let reply = h
        .call("alice", "POST", "/v2.1/os-server-groups", "2.64", Some(new))
        .await;
    assert_eq!(
        reply.body["server_group"]["rules"],
        json!({"max_server_per_host": 2})
    );
    assert_eq!(reply.body["server_group"]["project_id"], "p1");
    for (mv, body) in [
        (
            "2.64",
            json!({"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}}),
        ),
        (
            "2.14",
            json!({"server_group": {"name": "x", "policies": ["soft-affinity"]}}),
        ),
        (
            "2.1",
            json!({"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}}),
        ),
        (
            "2.64",
            json!({"server_group": {"name": "x", "policies": ["affinity"]}}),
        ),
    ] {
        let reply = h
            .call(
                "alice",
                "POST",
                "/v2.1/os-server-groups",
                mv,
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{mv} {body}");
    }
    let soft = json!({"server_group": {"name": "g3", "policies": ["soft-affinity"]}});
    assert_eq!(
        h.call(
            "alice",
            "POST",
            "/v2.1/os-server-groups",
            "2.15",
            Some(soft)
        )
        .await
        .status,
        200
    );
    let reader = json!({"server_group": {"name": "r", "policies": ["affinity"]}});
    assert_eq!(
        h.call(
            "reader",
            "POST",
            "/v2.1/os-server-groups",
            "2.1",
            Some(reader)
        )
        .await
        .status,
        403
    );

    // Project isolation; admins see all with all_projects.
    let id = g1["id"].as_str().unwrap();
    assert_eq!(
        h.call(
            "bob",
            "GET",
            &format!("/v2.1/os-server-groups/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        h.call("bob", "GET", "/v2.1/os-server-groups", "2.1", None)
            .await
            .body["server_groups"],
        json!([])
    );
    let count = |r: Reply| r.body["server_groups"].as_array().unwrap().len();
    assert_eq!(
        count(
            h.call("alice", "GET", "/v2.1/os-server-groups", "2.1", None)
                .await
        ),
        3
    );
    assert_eq!(
        count(
            h.call(
                "alice",
                "GET",
                "/v2.1/os-server-groups?limit=1&offset=1",
                "2.1",
                None
            )
            .await
        ),
        1
    );
    assert_eq!(
        count(
            h.call(
                "admin",
                "GET",
                "/v2.1/os-server-groups?all_projects=True",
                "2.1",
                None
            )
            .await
        ),
        3
    );
    assert_eq!(
        count(
            h.call(
                "bob",
                "GET",
                "/v2.1/os-server-groups?all_projects=True",
                "2.1",
                None
            )
            .await
        ),
        0
    );

    // The quota (10 per project) holds under concurrent creates.
    let creates = (0..12).map(|n| {
        let body = json!({"server_group": {"name": format!("q{n}"), "policies": ["affinity"]}});
        h.call("alice", "POST", "/v2.1/os-server-groups", "2.1", Some(body))
    });
    let statuses: Vec<u16> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 5);
    assert_eq!(
        count(
            h.call("alice", "GET", "/v2.1/os-server-groups", "2.1", None)
                .await
        ),
        10
    );

    assert_eq!(
        h.call(
            "bob",
            "DELETE",
            &format!("/v2.1/os-server-groups/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("/v2.1/os-server-groups/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.call(
            "alice",
            "GET",
            &format!("/v2.1/os-server-groups/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        404
    );
}

/// Tempest (FlavorsAdminTestJSON, FlavorsAccess*): `os-flavor-access:is_public` is Nova's
/// `parameter_types.boolean`, so "True" / "False" strings are accepted as well as booleans.
#[tokio::test]
async fn flavor_is_public_accepts_boolean_strings() {
    let h = Harness::open("flavor-is-public-strings").await;
    for (id, value, public) in [
        ("s1", "True", true),
        ("s2", "False", false),
        ("s3", "0", false),
    ] {
        let body = flavor(id, json!({"id": id, "os-flavor-access:is_public": value}));
        let reply = h
            .call("admin", "POST", "/v2.1/flavors", "2.1", Some(body))
            .await;
        assert_eq!(reply.status, 200, "{value}: {:?}", reply.body);
        assert_eq!(reply.body["flavor"]["os-flavor-access:is_public"], public);
    }
    let body = flavor(
        "s4",
        json!({"id": "s4", "os-flavor-access:is_public": "maybe"}),
    );
    assert_eq!(
        h.call("admin", "POST", "/v2.1/flavors", "2.1", Some(body))
            .await
            .status,
        400
    );
}

/// Tempest (KeyPairsV22TestJSON.test_keypairsv22_create_list_show_with_type): x509 keypairs
/// are generated (certificate as public key, PKCS#12 as private key) or imported.
#[tokio::test]
async fn x509_keypairs_are_generated_or_imported() {
    let h = Harness::open("keypairs-x509").await;
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.2",
            Some(json!({"keypair": {"name": "cert", "type": "x509"}})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let k = reply.body["keypair"].clone();
    assert_eq!(k["type"], "x509");
    assert!(
        k["public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(k["private_key"].is_string());
    assert_eq!(k["fingerprint"].as_str().unwrap().len(), 59);
    let show = h
        .call("alice", "GET", "/v2.1/os-keypairs/cert", "2.2", None)
        .await;
    assert_eq!(show.body["keypair"]["type"], "x509");
    // Import: the certificate's fingerprint; garbage is a 400.
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.2",
            Some(json!({"keypair": {"name": "cert2", "type": "x509", "public_key": k["public_key"]}})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["keypair"]["fingerprint"], k["fingerprint"]);
    assert!(reply.body["keypair"].get("private_key").is_none());
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.2",
            Some(
                json!({"keypair": {"name": "cert3", "type": "x509", "public_key": "ssh-rsa AAAA"}}),
            ),
        )
        .await;
    assert_eq!(reply.status, 400);
    // Below 2.2 there is no type.
    let reply = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-keypairs",
            "2.1",
            Some(json!({"keypair": {"name": "cert4", "type": "x509"}})),
        )
        .await;
    assert_eq!(reply.status, 400);
}
