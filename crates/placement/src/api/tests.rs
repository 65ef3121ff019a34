//! In-process API tests: a real placement service on a fresh store (SQLite, or PostgreSQL when
//! `FERROSTACK_TEST_DATABASE_URL` is set) behind its router and the root's request-id/policy
//! guard middleware, with callers given by fixed tokens.

use crate::Placement;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Harness {
    router: axum::Router,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn detail(&self) -> &str {
        self.body["errors"][0]["detail"].as_str().unwrap_or("")
    }
    fn code(&self) -> &Value {
        &self.body["errors"][0]["code"]
    }
}

const ADMIN: &str = "admin";

impl Harness {
    async fn open(name: &str) -> Harness {
        let store = ferrostack_store::test_store(&format!("placement-{name}"))
            .await
            .unwrap();
        let placement = Placement::open(store, "http://cloud.example:8080")
            .await
            .unwrap();
        let callers = ferrostack_api::testing::standard_callers().with(
            "nova",
            ferrostack_api::testing::caller("u-nova", "service", &["service"]),
        );
        let ctx = ferrostack_api::testing::context(callers, &crate::default_rules());
        let router = crate::api::router(placement.clone())
            .layer(axum::middleware::from_fn(
                ferrostack_api::request_id::request_id_middleware,
            ))
            .layer(axum::Extension(ctx));
        Harness { router }
    }

    async fn raw(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        version: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json");
        if !token.is_empty() {
            req = req.header("x-auth-token", token);
        }
        if let Some(v) = version {
            req = req.header("openstack-api-version", format!("placement {v}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    async fn call(&self, method: &str, path: &str, version: &str, body: Option<Value>) -> Reply {
        self.call_as(ADMIN, method, path, Some(version), body).await
    }

    async fn get(&self, path: &str, version: &str) -> Reply {
        self.call("GET", path, version, None).await
    }

    /// Creates a provider at 1.20 and returns its uuid.
    async fn provider(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = json!({"name": name});
        if let Some(parent) = parent {
            body["parent_provider_uuid"] = json!(parent);
        }
        let r = self
            .call("POST", "/resource_providers", "1.20", Some(body))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["uuid"].as_str().unwrap().to_string()
    }

    async fn generation(&self, rp: &str) -> i64 {
        self.get(&format!("/resource_providers/{rp}"), "1.14")
            .await
            .body["generation"]
            .as_i64()
            .unwrap()
    }

    /// Sets inventories at 1.26 from `(class, total)` pairs; returns the new generation.
    async fn inventory(&self, rp: &str, inv: &[(&str, i64)]) -> i64 {
        let generation = self.generation(rp).await;
        let inventories: serde_json::Map<String, Value> = inv
            .iter()
            .map(|(rc, total)| (rc.to_string(), json!({"total": total})))
            .collect();
        let r = self
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/inventories"),
                "1.26",
                Some(
                    json!({"resource_provider_generation": generation, "inventories": inventories}),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["resource_provider_generation"].as_i64().unwrap()
    }

    async fn claim(&self, consumer: &str, allocations: Value, generation: Value) -> Reply {
        self.call(
            "PUT",
            &format!("/allocations/{consumer}"),
            "1.28",
            Some(
                json!({"allocations": allocations, "project_id": "p1", "user_id": "u1",
                "consumer_generation": generation}),
            ),
        )
        .await
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn version_discovery_and_microversions() {
    let h = Harness::open("versions").await;
    let r = h.call_as("", "GET", "/", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0",
            "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]})
    );
    assert_eq!(r.header("openstack-api-version"), Some("placement 1.0"));
    assert!(
        r.header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    assert!(r.header("cache-control").is_none());
    // osc-placement's negotiation: GET / at 1.29.
    let r = h.call_as("", "GET", "/", Some("1.29"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("openstack-api-version"), Some("placement 1.29"));
    assert_eq!(r.header("vary"), Some("openstack-api-version"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.header("last-modified").is_some());
    let r = h.call_as("", "POST", "/", None, Some(json!({}))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert!(
        r.detail()
            .starts_with("The method POST is not allowed for this resource.")
    );

    let r = h.call_as("", "GET", "/", Some("1.40"), None).await;
    assert_eq!(r.status, 406);
    let e = &r.body["errors"][0];
    assert_eq!(e["max_version"], "1.39");
    assert_eq!(e["min_version"], "1.0");
    assert!(e.get("code").is_none());
    assert!(r.detail().contains("Unacceptable version header: 1.40"));
    for bad in ["pony.horse", "1.2.3", "2"] {
        let r = h.call_as("", "GET", "/", Some(bad), None).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.detail().contains("Invalid microversion"), "{r:?}");
    }
    let r = h.call_as("", "GET", "/", Some("1.01"), None).await;
    assert_eq!(r.header("openstack-api-version"), Some("placement 1.1"));
    let r = h.call_as("", "GET", "/", Some("latest"), None).await;
    assert_eq!(r.header("openstack-api-version"), Some("placement 1.39"));
    let req = Request::get("/")
        .header("openstack-api-version", "compute 2.1, placement 1.20")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        h.raw(req).await.header("openstack-api-version"),
        Some("placement 1.20")
    );

    // Authentication first, then the route's minimum version (404 below it).
    assert_eq!(
        h.call_as("", "GET", "/traits", None, None).await.status,
        401
    );
    let r = h.call_as(ADMIN, "GET", "/traits", None, None).await;
    assert_eq!(r.status, 404);
    assert!(
        r.body["errors"][0].get("code").is_none(),
        "no code below 1.23"
    );
    let r = h.get("/traits", "1.5").await;
    assert_eq!(r.status, 404);
    let r = h.get("/resource_providers/nope", "1.23").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "placement.undefined_code");
    assert_eq!(
        r.body["errors"][0]["request_id"],
        r.header("x-openstack-request-id").unwrap()
    );
    assert_eq!(r.body["errors"][0]["title"], "Not Found");
    assert_eq!(
        r.detail(),
        "The resource could not be found.\n\n No resource provider with uuid nope found  "
    );
    assert_eq!(h.get("/nowhere", "1.0").await.status, 404);
    // Method not allowed lists placement's methods; DELETE inventories is 405 below 1.5.
    let r = h.call("PATCH", "/resource_providers", "1.0", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let rp = h.provider("cn1", None).await;
    let r = h
        .call(
            "DELETE",
            &format!("/resource_providers/{rp}/inventories"),
            "1.4",
            None,
        )
        .await;
    assert_eq!(r.status, 405);
    // Generic request checks.
    let r = h
        .raw(
            Request::post("/resource_providers")
                .header("x-auth-token", ADMIN)
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 415);
    assert!(
        r.detail()
            .contains("The media type text/plain is not supported, use application/json")
    );
    let r = h
        .raw(
            Request::post("/resource_providers")
                .header("x-auth-token", ADMIN)
                .header("content-type", "application/json")
                .body(Body::from("{"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("Malformed JSON"));
    let r = h
        .raw(
            Request::get("/resource_providers")
                .header("x-auth-token", ADMIN)
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 406);
    assert!(r.detail().contains("Only application/json is provided"));
}

#[tokio::test]
async fn resource_providers_crud_trees_and_conflicts() {
    let h = Harness::open("providers").await;
    // < 1.20: 201, empty, absolute Location; osc then GETs it.
    let uuid = new_uuid();
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.0",
            Some(json!({"name": "cn1", "uuid": uuid.replace('-', "")})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body, Value::Null);
    assert_eq!(
        r.header("location").unwrap(),
        format!("http://cloud.example:8080/placement/resource_providers/{uuid}")
    );
    assert!(r.header("content-type").is_none());
    let r = h.get(&format!("/resource_providers/{uuid}"), "1.29").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["generation"], 0);
    assert_eq!(r.body["root_provider_uuid"], uuid.as_str());
    assert_eq!(r.body["parent_provider_uuid"], Value::Null);
    let rels: Vec<&str> = r.body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(
        rels,
        [
            "self",
            "inventories",
            "usages",
            "aggregates",
            "traits",
            "allocations"
        ]
    );
    assert_eq!(
        r.body["links"][0]["href"],
        format!("/placement/resource_providers/{uuid}")
    );
    let r = h.get(&format!("/resource_providers/{uuid}"), "1.0").await;
    assert!(r.body.get("root_provider_uuid").is_none());
    assert_eq!(r.body["links"].as_array().unwrap().len(), 3);

    // Nova's duplicate handling: a uuid conflict never mentions the name.
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.23",
            Some(json!({"name": "cn1", "uuid": uuid})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.duplicate_name");
    assert!(r.detail().contains(&format!(
        "Conflicting resource provider uuid: {uuid} already exists."
    )));
    assert!(!r.detail().contains("Conflicting resource provider name:"));
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.23",
            Some(json!({"name": "cn1"})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.detail()
            .contains("Conflicting resource provider name: cn1 already exists.")
    );
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.20",
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("Object action create failed because: name is required")
    );
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.13",
            Some(json!({"name": "x", "parent_provider_uuid": uuid})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("JSON does not validate"));
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.20",
            Some(json!({"name": "x", "parent_provider_uuid": new_uuid()})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("parent provider UUID does not exist."));
    let me = new_uuid();
    let r = h
        .call(
            "POST",
            "/resource_providers",
            "1.20",
            Some(json!({"name": "x", "uuid": me, "parent_provider_uuid": me})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("parent provider UUID cannot be same as UUID")
    );

    // A tree: cn1 → numa0 → pf0; cn2 separate.
    let numa = h.provider("numa0", Some(&uuid)).await;
    let pf = h.provider("pf0", Some(&numa)).await;
    let cn2 = h.provider("cn2", None).await;
    let r = h.get(&format!("/resource_providers/{pf}"), "1.14").await;
    assert_eq!(r.body["root_provider_uuid"], uuid.as_str());
    assert_eq!(r.body["parent_provider_uuid"], numa.as_str());
    let r = h
        .get(&format!("/resource_providers?in_tree={pf}"), "1.14")
        .await;
    let names: Vec<&str> = r.body["resource_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cn1", "numa0", "pf0"]);
    let r = h
        .get(
            &format!("/resource_providers?in_tree={}", new_uuid()),
            "1.14",
        )
        .await;
    assert_eq!(r.body, json!({"resource_providers": []}));
    let r = h.get("/resource_providers?name=cn2", "1.0").await;
    assert_eq!(r.body["resource_providers"][0]["uuid"], cn2.as_str());
    let r = h
        .get(&format!("/resource_providers?uuid={cn2}"), "1.0")
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
    let r = h.get("/resource_providers?uuid=notauuid", "1.0").await;
    assert_eq!(r.status, 400);
    let r = h.get("/resource_providers?in_tree=x", "1.13").await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("Additional properties are not allowed ('in_tree' was unexpected)")
    );

    // Update: rename keeps the generation; re-parenting only at 1.37; loops refused.
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{cn2}"),
            "1.14",
            Some(json!({"name": "cn2-renamed"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "cn2-renamed");
    assert_eq!(r.body["generation"], 0);
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{cn2}"),
            "1.23",
            Some(json!({"name": "cn1"})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.duplicate_name");
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{pf}"),
            "1.14",
            Some(json!({"name": "pf0", "parent_provider_uuid": cn2})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("re-parenting a provider is not currently allowed.")
    );
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{numa}"),
            "1.14",
            Some(json!({"name": "numa0", "parent_provider_uuid": null})),
        )
        .await;
    assert!(
        r.detail()
            .contains("un-parenting a provider is not currently allowed.")
    );
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{uuid}"),
            "1.37",
            Some(json!({"name": "cn1", "parent_provider_uuid": pf})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("creating loop in the provider tree is not allowed.")
    );
    // Move numa0 (and pf0 under it) to cn2 at 1.37: roots rewritten for the subtree.
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{numa}"),
            "1.37",
            Some(json!({"name": "numa0", "parent_provider_uuid": cn2})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["root_provider_uuid"], cn2.as_str());
    let r = h.get(&format!("/resource_providers/{pf}"), "1.14").await;
    assert_eq!(r.body["root_provider_uuid"], cn2.as_str());

    // Delete: parents refused, unknown 404, then leaf to root.
    let r = h
        .call(
            "DELETE",
            &format!("/resource_providers/{cn2}"),
            "1.23",
            None,
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.resource_provider.cannot_delete_parent");
    assert!(r.detail().contains("It has child resource providers."));
    for rp in [&pf, &numa, &cn2, &uuid] {
        let r = h
            .call("DELETE", &format!("/resource_providers/{rp}"), "1.0", None)
            .await;
        assert_eq!(r.status, 204, "{r:?}");
    }
    let r = h
        .call(
            "DELETE",
            &format!("/resource_providers/{uuid}"),
            "1.0",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(r.detail().contains("found for delete"));
    let r = h.get("/resource_providers", "1.0").await;
    assert_eq!(r.body, json!({"resource_providers": []}));
}

#[tokio::test]
async fn inventories_all_forms_and_generations() {
    let h = Harness::open("inventories").await;
    let rp = h.provider("cn1", None).await;
    let base = format!("/resource_providers/{rp}/inventories");
    let r = h.get(&base, "1.0").await;
    assert_eq!(
        r.body,
        json!({"resource_provider_generation": 0, "inventories": {}})
    );
    // Stale generation.
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 5, "inventories": {"VCPU": {"total": 8}}})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.concurrent_update");
    assert!(r.detail().contains("resource provider generation conflict"));
    // PUT all, defaults filled in, generation +1.
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 0, "inventories": {
                "VCPU": {"total": 8, "allocation_ratio": 16.0},
                "MEMORY_MB": {"total": 4096, "reserved": 512, "max_unit": 4096}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["resource_provider_generation"], 1);
    assert_eq!(
        r.body["inventories"]["VCPU"],
        json!({"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
            "step_size": 1, "allocation_ratio": 16.0})
    );
    let r = h.get(&format!("{base}/MEMORY_MB"), "1.0").await;
    assert_eq!(r.body["reserved"], 512);
    assert_eq!(r.body["resource_provider_generation"], 1);
    assert_eq!(r.body["allocation_ratio"], 1.0);
    let r = h.get(&format!("{base}/DISK_GB"), "1.0").await;
    assert_eq!(r.status, 404);
    // POST one class: 201 + Location, generation not compared but bumped.
    let r = h
        .call(
            "POST",
            &base,
            "1.0",
            Some(json!({"resource_class": "DISK_GB", "total": 100, "resource_provider_generation": 99})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["resource_provider_generation"], 2);
    assert_eq!(
        r.header("location").unwrap(),
        format!("http://cloud.example:8080/placement{base}/DISK_GB")
    );
    let r = h
        .call(
            "POST",
            &base,
            "1.23",
            Some(json!({"resource_class": "DISK_GB", "total": 1})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.concurrent_update");
    let r = h
        .call(
            "POST",
            &base,
            "1.0",
            Some(json!({"resource_class": "CUSTOM_NOPE", "total": 1})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("No such resource class CUSTOM_NOPE."));
    // PUT one class (osc `inventory class set`).
    let r = h
        .call(
            "PUT",
            &format!("{base}/DISK_GB"),
            "1.29",
            Some(json!({"total": 200, "resource_provider_generation": 2})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 200);
    assert_eq!(r.body["resource_provider_generation"], 3);
    let r = h
        .call(
            "PUT",
            &format!("{base}/PCI_DEVICE"),
            "1.29",
            Some(json!({"total": 2, "resource_provider_generation": 3})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("No inventory of class PCI_DEVICE found.")
    );
    let r = h
        .call(
            "PUT",
            &format!("{base}/CUSTOM_NOPE"),
            "1.29",
            Some(json!({"total": 2, "resource_provider_generation": 3})),
        )
        .await;
    assert_eq!(r.status, 404);
    // Validation: reserved vs total by version, bounds, unknown keys and classes.
    for (version, reserved, expected) in [
        ("1.25", 8, "greater than or equal to total."),
        ("1.26", 9, "The reserved value is greater than total."),
    ] {
        let r = h
            .call(
                "PUT",
                &base,
                version,
                Some(json!({"resource_provider_generation": 3,
                    "inventories": {"VCPU": {"total": 8, "reserved": reserved}}})),
            )
            .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(r.detail().contains(expected), "{r:?}");
    }
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 3,
                "inventories": {"VCPU": {"total": 8, "reserved": 8}}})),
        )
        .await;
    assert_eq!(r.status, 200, "reserved == total is fine at 1.26: {r:?}");
    assert_eq!(r.body["resource_provider_generation"], 4);
    for bad in [
        json!({"resource_provider_generation": 4, "inventories": {"VCPU": {"total": 0}}}),
        json!({"resource_provider_generation": 4, "inventories": {"VCPU": {"total": 1, "foo": 1}}}),
        json!({"resource_provider_generation": 4, "inventories": {"vcpu": {"total": 1}}}),
        json!({"inventories": {}}),
    ] {
        let r = h.call("PUT", &base, "1.26", Some(bad)).await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("JSON does not validate"), "{r:?}");
    }
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 4, "inventories": {"CUSTOM_NOPE": {"total": 1}}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("Unknown resource class in inventory"));

    // In-use inventories: codes differ by operation (spec §11).
    let g = h.inventory(&rp, &[("VCPU", 8), ("MEMORY_MB", 1024)]).await;
    assert_eq!(g, 5);
    let consumer = new_uuid();
    let r = h
        .claim(
            &consumer,
            json!({rp.clone(): {"resources": {"VCPU": 2}}}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 6, "inventories": {"MEMORY_MB": {"total": 1}}})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.inventory.inuse");
    assert!(r.detail().contains(&format!(
        "Inventory for 'VCPU' on resource provider '{rp}' in use."
    )));
    let r = h
        .call("DELETE", &format!("{base}/VCPU"), "1.23", None)
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.concurrent_update");
    let r = h.call("DELETE", &base, "1.23", None).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.inventory.inuse");
    // Shrinking below usage is accepted.
    let r = h
        .call(
            "PUT",
            &base,
            "1.26",
            Some(json!({"resource_provider_generation": 6, "inventories": {"VCPU": {"total": 1}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Usages list every inventory class (osc `inventory list`).
    let r = h
        .get(&format!("/resource_providers/{rp}/usages"), "1.0")
        .await;
    assert_eq!(
        r.body,
        json!({"resource_provider_generation": 7, "usages": {"VCPU": 2}})
    );
    assert_eq!(
        h.call("DELETE", &format!("/allocations/{consumer}"), "1.0", None)
            .await
            .status,
        204
    );
    let r = h.call("DELETE", &format!("{base}/VCPU"), "1.0", None).await;
    assert_eq!(r.status, 204);
    let r = h.call("DELETE", &format!("{base}/VCPU"), "1.0", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(h.generation(&rp).await, 8);
    h.inventory(&rp, &[("DISK_GB", 10)]).await;
    let r = h.call("DELETE", &base, "1.5", None).await;
    assert_eq!(r.status, 204);
    let r = h.get(&base, "1.0").await;
    assert_eq!(r.body["inventories"], json!({}));
    assert_eq!(r.body["resource_provider_generation"], 10);
}

#[tokio::test]
async fn resource_classes_traits_and_aggregates() {
    let h = Harness::open("classes").await;
    let r = h.get("/resource_classes", "1.2").await;
    let list = r.body["resource_classes"].as_array().unwrap();
    assert_eq!(list.len(), 21);
    assert_eq!(
        list[0],
        json!({"name": "VCPU", "links": [{"rel": "self", "href": "/placement/resource_classes/VCPU"}]})
    );
    assert_eq!(h.get("/resource_classes", "1.1").await.status, 404);
    let r = h
        .call(
            "POST",
            "/resource_classes",
            "1.2",
            Some(json!({"name": "CUSTOM_GOLD"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("/placement/resource_classes/CUSTOM_GOLD")
    );
    let r = h
        .call(
            "POST",
            "/resource_classes",
            "1.2",
            Some(json!({"name": "CUSTOM_GOLD"})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.detail()
            .contains("Conflicting resource class already exists: CUSTOM_GOLD")
    );
    let r = h
        .call(
            "POST",
            "/resource_classes",
            "1.2",
            Some(json!({"name": "VCPU"})),
        )
        .await;
    assert_eq!(r.status, 400);
    // Rename at 1.2–1.6; bodiless create-or-verify at ≥1.7 (Nova).
    let r = h
        .call(
            "PUT",
            "/resource_classes/CUSTOM_GOLD",
            "1.6",
            Some(json!({"name": "CUSTOM_SILVER"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "CUSTOM_SILVER");
    let r = h
        .call(
            "PUT",
            "/resource_classes/VCPU",
            "1.6",
            Some(json!({"name": "CUSTOM_X"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("Cannot update standard resource class VCPU")
    );
    let r = h
        .call("PUT", "/resource_classes/CUSTOM_BAREMETAL", "1.7", None)
        .await;
    assert_eq!(r.status, 201);
    assert!(r.header("location").is_some());
    let r = h
        .call("PUT", "/resource_classes/CUSTOM_BAREMETAL", "1.7", None)
        .await;
    assert_eq!(r.status, 204);
    let r = h.call("PUT", "/resource_classes/VCPU", "1.7", None).await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("JSON does not validate"));
    let r = h.get("/resource_classes/CUSTOM_BAREMETAL", "1.2").await;
    assert_eq!(r.body["name"], "CUSTOM_BAREMETAL");
    assert_eq!(
        h.get("/resource_classes/CUSTOM_NONE", "1.2").await.status,
        404
    );
    let r = h
        .call("DELETE", "/resource_classes/VCPU", "1.2", None)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("Cannot delete standard resource class VCPU.")
    );
    let rp = h.provider("cn1", None).await;
    h.inventory(&rp, &[("CUSTOM_BAREMETAL", 1)]).await;
    let r = h
        .call("DELETE", "/resource_classes/CUSTOM_BAREMETAL", "1.2", None)
        .await;
    assert_eq!(r.status, 409);
    assert!(r.detail().contains("Class is in use in inventory."));
    assert_eq!(
        h.call("DELETE", "/resource_classes/CUSTOM_SILVER", "1.2", None)
            .await
            .status,
        204
    );

    // Traits.
    let r = h.get("/traits", "1.6").await;
    assert_eq!(r.body["traits"].as_array().unwrap().len(), 377);
    let r = h
        .get(
            "/traits?name=in:OWNER_NOVA,COMPUTE_STATUS_DISABLED,CUSTOM_X",
            "1.6",
        )
        .await;
    assert_eq!(
        r.body["traits"],
        json!(["COMPUTE_STATUS_DISABLED", "OWNER_NOVA"])
    );
    let r = h.get("/traits?name=startswith:STORAGE_DISK", "1.6").await;
    assert_eq!(
        r.body["traits"],
        json!(["STORAGE_DISK_HDD", "STORAGE_DISK_SSD"])
    );
    let r = h.get("/traits?name=OWNER_NOVA", "1.6").await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("Badly formatted name parameter."));
    let r = h.get("/traits?associated=maybe", "1.6").await;
    assert_eq!(r.status, 400);
    let r = h.call("PUT", "/traits/CUSTOM_MAGIC", "1.6", None).await;
    assert_eq!(r.status, 201);
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("/placement/traits/CUSTOM_MAGIC")
    );
    assert_eq!(
        h.call("PUT", "/traits/CUSTOM_MAGIC", "1.6", None)
            .await
            .status,
        204
    );
    let r = h.call("PUT", "/traits/HW_CPU_X86_AVX", "1.6", None).await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("The trait is invalid."));
    let r = h.get("/traits/CUSTOM_MAGIC", "1.6").await;
    assert_eq!(r.status, 204);
    assert!(r.header("content-type").is_none());
    let r = h.get("/traits/CUSTOM_NONE", "1.6").await;
    assert_eq!(r.status, 404);
    assert!(r.detail().contains("No such trait(s): CUSTOM_NONE."));
    let r = h.call("DELETE", "/traits/OWNER_NOVA", "1.6", None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("Cannot delete standard trait OWNER_NOVA.")
    );

    // Provider traits: generation compared, bumped only on change.
    let traits = format!("/resource_providers/{rp}/traits");
    let g = h.generation(&rp).await;
    let r = h.get(&traits, "1.6").await;
    assert_eq!(
        r.body,
        json!({"traits": [], "resource_provider_generation": g})
    );
    let r = h
        .call(
            "PUT",
            &traits,
            "1.6",
            Some(json!({"traits": ["CUSTOM_NOPE"], "resource_provider_generation": g})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("No such trait CUSTOM_NOPE"));
    let r = h
        .call(
            "PUT",
            &traits,
            "1.23",
            Some(json!({"traits": ["CUSTOM_MAGIC"], "resource_provider_generation": g + 7})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.concurrent_update");
    assert!(
        r.detail()
            .contains("Resource provider's generation already changed.")
    );
    let body =
        json!({"traits": ["CUSTOM_MAGIC", "HW_CPU_X86_AVX2"], "resource_provider_generation": g});
    let r = h.call("PUT", &traits, "1.6", Some(body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["resource_provider_generation"], g + 1);
    let same = json!({"traits": ["HW_CPU_X86_AVX2", "CUSTOM_MAGIC"], "resource_provider_generation": g + 1});
    let r = h.call("PUT", &traits, "1.6", Some(same)).await;
    assert_eq!(
        r.body["resource_provider_generation"],
        g + 1,
        "unchanged set"
    );
    let r = h.get("/traits?associated=true", "1.6").await;
    assert_eq!(r.body["traits"], json!(["CUSTOM_MAGIC", "HW_CPU_X86_AVX2"]));
    let r = h.call("DELETE", "/traits/CUSTOM_MAGIC", "1.6", None).await;
    assert_eq!(r.status, 409);
    assert!(
        r.detail()
            .contains("The trait CUSTOM_MAGIC is in use by a resource provider.")
    );
    let r = h
        .get("/resource_providers?required=CUSTOM_MAGIC", "1.18")
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
    let r = h
        .get("/resource_providers?required=!CUSTOM_MAGIC", "1.22")
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 0);
    let r = h
        .get(
            "/resource_providers?required=in:CUSTOM_MAGIC,OWNER_NOVA",
            "1.38",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail()
            .contains("only supported since microversion 1.39")
    );
    let r = h
        .get(
            "/resource_providers?required=in:CUSTOM_MAGIC,OWNER_NOVA&required=HW_CPU_X86_AVX2",
            "1.39",
        )
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
    let r = h
        .get("/resource_providers?required=CUSTOM_UNKNOWN", "1.18")
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("No such trait(s): CUSTOM_UNKNOWN."));
    assert_eq!(h.call("DELETE", &traits, "1.6", None).await.status, 204);
    assert_eq!(h.generation(&rp).await, g + 2);
    assert_eq!(
        h.call("DELETE", "/traits/CUSTOM_MAGIC", "1.6", None)
            .await
            .status,
        204
    );

    // Aggregates: bare list below 1.19 (no bump), object with generation from 1.19 (always bump).
    let aggs = format!("/resource_providers/{rp}/aggregates");
    assert_eq!(h.get(&aggs, "1.0").await.status, 404);
    let a1 = new_uuid();
    let a2 = new_uuid();
    let r = h.call("PUT", &aggs, "1.1", Some(json!([a1]))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"aggregates": [a1]}));
    assert_eq!(h.generation(&rp).await, g + 2);
    let r = h
        .call(
            "PUT",
            &aggs,
            "1.19",
            Some(json!({"aggregates": [a2, a1], "resource_provider_generation": g + 2})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"aggregates": [a2, a1], "resource_provider_generation": g + 3})
    );
    let r = h
        .call(
            "PUT",
            &aggs,
            "1.19",
            Some(json!({"aggregates": [a2, a1], "resource_provider_generation": g + 3})),
        )
        .await;
    assert_eq!(
        r.body["resource_provider_generation"],
        g + 4,
        "bumped even if unchanged"
    );
    let r = h
        .call(
            "PUT",
            &aggs,
            "1.19",
            Some(json!({"aggregates": [], "resource_provider_generation": 0})),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = h.call("PUT", &aggs, "1.1", Some(json!([a1, a1]))).await;
    assert_eq!(r.status, 400);
    let r = h.get(&aggs, "1.19").await;
    assert_eq!(r.body["resource_provider_generation"], g + 4);
    // member_of on the provider list.
    let other = h.provider("cn2", None).await;
    let r = h
        .get(&format!("/resource_providers?member_of={a1}"), "1.3")
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
    let r = h
        .get(
            &format!("/resource_providers?member_of=in:{a1},{}", new_uuid()),
            "1.3",
        )
        .await;
    assert_eq!(r.body["resource_providers"][0]["uuid"], rp.as_str());
    let r = h
        .get(&format!("/resource_providers?member_of=!{a1}"), "1.32")
        .await;
    assert_eq!(r.body["resource_providers"][0]["uuid"], other.as_str());
    let r = h
        .get(&format!("/resource_providers?member_of=!{a1}"), "1.31")
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .get(
            &format!("/resource_providers?member_of={a1}&member_of={a2}"),
            "1.23",
        )
        .await;
    assert!(
        r.detail()
            .contains("Multiple member_of parameters are not supported")
    );
    let r = h
        .get(
            &format!("/resource_providers?member_of={a1}&member_of={a2}"),
            "1.24",
        )
        .await;
    assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
    let r = h
        .get(&format!("/resource_providers?member_of={a1},{a2}"), "1.24")
        .await;
    assert!(
        r.detail()
            .contains("must be prefixed with the 'in:' or '!in:' keyword")
    );
    let r = h.get("/resource_providers?member_of=bogus", "1.3").await;
    assert!(
        r.detail()
            .contains("Expected 'member_of' parameter to contain valid UUID(s).")
    );
}

#[tokio::test]
async fn allocations_consumers_and_usages() {
    let h = Harness::open("allocations").await;
    let cn = h.provider("cn1", None).await;
    let shared = h.provider("disk", None).await;
    h.inventory(&cn, &[("VCPU", 4), ("MEMORY_MB", 2048)]).await;
    h.inventory(&shared, &[("DISK_GB", 100)]).await;
    let g_cn = h.generation(&cn).await;
    let c1 = new_uuid();
    // Unknown consumer: 200 with exactly {"allocations": {}}.
    let r = h.get(&format!("/allocations/{c1}"), "1.28").await;
    assert_eq!(r.body, json!({"allocations": {}}));
    assert_eq!(
        h.get("/allocations/not-a-uuid", "1.28").await.body,
        json!({"allocations": {}})
    );
    // consumer_generation is a required key at 1.28.
    let r = h
        .call("PUT", &format!("/allocations/{c1}"), "1.28",
            Some(json!({"allocations": {cn.clone(): {"resources": {"VCPU": 1}}}, "project_id": "p1", "user_id": "u1"})))
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .claim(
            &c1,
            json!({cn.clone(): {"resources": {"VCPU": 1}}}),
            json!(3),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.detail()
            .contains("consumer generation conflict - expected null but got 3")
    );
    let r = h
        .claim(
            &c1,
            json!({cn.clone(): {"resources": {"VCPU": 2, "MEMORY_MB": 1024}},
            shared.clone(): {"resources": {"DISK_GB": 10}}}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.header("content-type").is_none());
    assert_eq!(h.generation(&cn).await, g_cn + 1);
    let r = h.get(&format!("/allocations/{c1}"), "1.38").await;
    assert_eq!(r.body["consumer_generation"], 1);
    assert_eq!(r.body["project_id"], "p1");
    assert_eq!(r.body["consumer_type"], "unknown");
    assert_eq!(
        r.body["allocations"][&cn]["resources"],
        json!({"VCPU": 2, "MEMORY_MB": 1024})
    );
    assert_eq!(r.body["allocations"][&cn]["generation"], g_cn + 1);
    let r12 = h.get(&format!("/allocations/{c1}"), "1.12").await;
    assert!(r12.body.get("consumer_generation").is_none());
    assert_eq!(r12.body["user_id"], "u1");
    // The 1.28 GET body can be PUT back (Nova); stale generation is a consumer conflict.
    let mut again = r.body.clone();
    let obj = again.as_object_mut().unwrap();
    obj.remove("consumer_type");
    let r = h
        .call(
            "PUT",
            &format!("/allocations/{c1}"),
            "1.28",
            Some(again.clone()),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = h
        .call("PUT", &format!("/allocations/{c1}"), "1.28", Some(again))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.concurrent_update");
    assert!(
        r.detail()
            .contains("consumer generation conflict - expected 2 but got 1")
    );
    // Capacity and constraints.
    let c2 = new_uuid();
    let r = h
        .claim(
            &c2,
            json!({cn.clone(): {"resources": {"VCPU": 3}}}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.undefined_code");
    assert!(r.detail().contains(&format!(
        "Unable to create allocation for 'VCPU' on resource provider '{cn}'. The requested amount would exceed the capacity."
    )));
    let r = h
        .claim(
            &c2,
            json!({cn.clone(): {"resources": {"DISK_GB": 1}}}),
            Value::Null,
        )
        .await;
    assert!(r.detail().contains(&format!(
        "Inventory for 'DISK_GB' on resource provider '{cn}' invalid."
    )));
    let r = h
        .claim(
            &c2,
            json!({new_uuid(): {"resources": {"VCPU": 1}}}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("that does not exist."));
    let r = h
        .claim(
            &c2,
            json!({cn.clone(): {"resources": {"CUSTOM_NOPE": 1}}}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("No such resource class CUSTOM_NOPE."));
    let r = h
        .call("PUT", "/allocations/bogus", "1.28", Some(json!({})))
        .await;
    assert!(r.detail().contains("Malformed consumer_uuid: bogus"));
    assert!(
        h.get(&format!("/allocations/{c2}"), "1.28").await.body == json!({"allocations": {}}),
        "failed claims leave no consumer behind"
    );
    // Usages per provider and per project (1.9 and grouped 1.38).
    let r = h
        .get(&format!("/resource_providers/{cn}/usages"), "1.0")
        .await;
    assert_eq!(r.body["usages"], json!({"VCPU": 2, "MEMORY_MB": 1024}));
    let r = h.get("/usages?project_id=p1", "1.9").await;
    assert_eq!(
        r.body,
        json!({"usages": {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}})
    );
    let r = h.get("/usages?project_id=p1&user_id=other", "1.9").await;
    assert_eq!(r.body, json!({"usages": {}}));
    assert_eq!(h.get("/usages?project_id=p1", "1.8").await.status, 404);
    assert_eq!(h.get("/usages", "1.9").await.status, 400);
    // A typed consumer at 1.38.
    let c3 = new_uuid();
    let r = h
        .call("PUT", &format!("/allocations/{c3}"), "1.38", Some(json!({
            "allocations": {cn.clone(): {"resources": {"VCPU": 1}}}, "project_id": "p1", "user_id": "u1",
            "consumer_generation": null, "consumer_type": "MIGRATION"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = h.get("/usages?project_id=p1", "1.38").await;
    assert_eq!(
        r.body["usages"]["MIGRATION"],
        json!({"VCPU": 1, "consumer_count": 1})
    );
    assert_eq!(r.body["usages"]["unknown"]["consumer_count"], 1);
    let r = h
        .get("/usages?project_id=p1&consumer_type=all", "1.38")
        .await;
    assert_eq!(
        r.body["usages"]["all"],
        json!({"VCPU": 3, "MEMORY_MB": 1024, "DISK_GB": 10, "consumer_count": 2})
    );
    // Provider allocations.
    let r = h
        .get(&format!("/resource_providers/{cn}/allocations"), "1.28")
        .await;
    assert_eq!(r.body["allocations"][&c1]["resources"]["VCPU"], 2);
    assert_eq!(r.body["allocations"][&c3]["consumer_generation"], 1);
    // Move c3's allocation onto c2 atomically (Nova's move_allocations) at 1.28.
    let r = h
        .call("POST", "/allocations", "1.28", Some(json!({
            c3.clone(): {"allocations": {}, "project_id": "p1", "user_id": "u1", "consumer_generation": 1},
            c2.clone(): {"allocations": {cn.clone(): {"resources": {"VCPU": 2}}}, "project_id": "p1",
                "user_id": "u1", "consumer_generation": null}})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        h.get(&format!("/allocations/{c3}"), "1.28").await.body,
        json!({"allocations": {}})
    );
    assert_eq!(
        h.get(&format!("/allocations/{c2}"), "1.28").await.body["consumer_generation"],
        1
    );
    assert_eq!(
        h.call("POST", "/allocations", "1.12", Some(json!({})))
            .await
            .status,
        404
    );
    // Provider delete refuses allocations; DELETE does not bump generations.
    let r = h
        .call("DELETE", &format!("/resource_providers/{cn}"), "1.23", None)
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "placement.resource_provider.inuse");
    let g = h.generation(&cn).await;
    assert_eq!(
        h.call("DELETE", &format!("/allocations/{c2}"), "1.0", None)
            .await
            .status,
        204
    );
    assert_eq!(h.generation(&cn).await, g);
    let r = h
        .call("DELETE", &format!("/allocations/{c2}"), "1.0", None)
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.detail()
            .contains(&format!("No allocations for consumer '{c2}'"))
    );
    // Deleting through PUT {} at 1.28 (Nova's instance delete); the consumer disappears.
    let r = h.claim(&c1, json!({}), json!(2)).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        h.get(&format!("/allocations/{c1}"), "1.28").await.body,
        json!({"allocations": {}})
    );
    // Old list form (1.0) with incomplete project/user.
    let c4 = new_uuid();
    let r = h
        .call(
            "PUT",
            &format!("/allocations/{c4}"),
            "1.0",
            Some(json!({"allocations": [
            {"resource_provider": {"uuid": cn}, "resources": {"VCPU": 1}}]})),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = h.get(&format!("/allocations/{c4}"), "1.12").await;
    assert_eq!(r.body["project_id"], INCOMPLETE);
    // The "no worse" rule: an over-committed provider accepts a write that does not grow usage.
    h.inventory(&cn, &[("VCPU", 4), ("MEMORY_MB", 2048)]).await;
    let c5 = new_uuid();
    assert_eq!(
        h.claim(
            &c5,
            json!({cn.clone(): {"resources": {"VCPU": 3}}}),
            Value::Null
        )
        .await
        .status,
        204
    );
    let g = h.generation(&cn).await;
    let r = h
        .call(
            "PUT",
            &format!("/resource_providers/{cn}/inventories"),
            "1.26",
            Some(json!({"resource_provider_generation": g, "inventories": {"VCPU": {"total": 2}}})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        h.claim(
            &c5,
            json!({cn.clone(): {"resources": {"VCPU": 2}}}),
            json!(1)
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.claim(
            &c5,
            json!({cn.clone(): {"resources": {"VCPU": 3}}}),
            json!(2)
        )
        .await
        .status,
        409
    );
}

const INCOMPLETE: &str = "00000000-0000-0000-0000-000000000000";

#[tokio::test]
async fn policies_are_enforced_on_every_route() {
    let h = Harness::open("policy").await;
    let rp = h.provider("cn1", None).await;
    let c = new_uuid();
    let routes: Vec<(&str, String, &str, Option<Value>)> = vec![
        (
            "GET",
            "/resource_providers".into(),
            "placement:resource_providers:list",
            None,
        ),
        (
            "POST",
            "/resource_providers".into(),
            "placement:resource_providers:create",
            Some(json!({"name": "x"})),
        ),
        (
            "GET",
            format!("/resource_providers/{rp}"),
            "placement:resource_providers:show",
            None,
        ),
        (
            "PUT",
            format!("/resource_providers/{rp}"),
            "placement:resource_providers:update",
            Some(json!({"name": "y"})),
        ),
        (
            "DELETE",
            format!("/resource_providers/{rp}"),
            "placement:resource_providers:delete",
            None,
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/inventories"),
            "placement:resource_providers:inventories:list",
            None,
        ),
        (
            "POST",
            format!("/resource_providers/{rp}/inventories"),
            "placement:resource_providers:inventories:create",
            Some(json!({})),
        ),
        (
            "PUT",
            format!("/resource_providers/{rp}/inventories"),
            "placement:resource_providers:inventories:update",
            Some(json!({})),
        ),
        (
            "DELETE",
            format!("/resource_providers/{rp}/inventories"),
            "placement:resource_providers:inventories:delete",
            None,
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/inventories/VCPU"),
            "placement:resource_providers:inventories:show",
            None,
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/usages"),
            "placement:resource_providers:usages",
            None,
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/allocations"),
            "placement:resource_providers:allocations:list",
            None,
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/aggregates"),
            "placement:resource_providers:aggregates:list",
            None,
        ),
        (
            "PUT",
            format!("/resource_providers/{rp}/aggregates"),
            "placement:resource_providers:aggregates:update",
            Some(json!({})),
        ),
        (
            "GET",
            format!("/resource_providers/{rp}/traits"),
            "placement:resource_providers:traits:list",
            None,
        ),
        (
            "PUT",
            format!("/resource_providers/{rp}/traits"),
            "placement:resource_providers:traits:update",
            Some(json!({})),
        ),
        (
            "DELETE",
            format!("/resource_providers/{rp}/traits"),
            "placement:resource_providers:traits:delete",
            None,
        ),
        (
            "GET",
            "/resource_classes".into(),
            "placement:resource_classes:list",
            None,
        ),
        (
            "POST",
            "/resource_classes".into(),
            "placement:resource_classes:create",
            Some(json!({})),
        ),
        (
            "GET",
            "/resource_classes/VCPU".into(),
            "placement:resource_classes:show",
            None,
        ),
        (
            "PUT",
            "/resource_classes/CUSTOM_A".into(),
            "placement:resource_classes:update",
            None,
        ),
        (
            "DELETE",
            "/resource_classes/CUSTOM_A".into(),
            "placement:resource_classes:delete",
            None,
        ),
        ("GET", "/traits".into(), "placement:traits:list", None),
        (
            "GET",
            "/traits/OWNER_NOVA".into(),
            "placement:traits:show",
            None,
        ),
        (
            "PUT",
            "/traits/CUSTOM_A".into(),
            "placement:traits:update",
            None,
        ),
        (
            "DELETE",
            "/traits/CUSTOM_A".into(),
            "placement:traits:delete",
            None,
        ),
        (
            "GET",
            format!("/allocations/{c}"),
            "placement:allocations:list",
            None,
        ),
        (
            "PUT",
            format!("/allocations/{c}"),
            "placement:allocations:update",
            Some(json!({})),
        ),
        (
            "DELETE",
            format!("/allocations/{c}"),
            "placement:allocations:delete",
            None,
        ),
        (
            "POST",
            "/allocations".into(),
            "placement:allocations:manage",
            Some(json!({})),
        ),
        (
            "GET",
            "/usages?project_id=p2".into(),
            "placement:usages",
            None,
        ),
        (
            "GET",
            "/allocation_candidates?resources=VCPU:1".into(),
            "placement:allocation_candidates:list",
            None,
        ),
        (
            "POST",
            "/reshaper".into(),
            "placement:reshaper:reshape",
            Some(json!({})),
        ),
    ];
    for (method, path, rule, body) in &routes {
        let r = h
            .call_as("alice", method, path, Some("1.39"), body.clone())
            .await;
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        assert!(
            r.detail()
                .contains(&format!("Policy does not allow {rule} to be performed.")),
            "{method} {path}: {r:?}"
        );
    }
    // The service role (Nova) may do everything but is still refused nothing it needs.
    let r = h
        .call_as("nova", "GET", "/resource_providers", Some("1.14"), None)
        .await;
    assert_eq!(r.status, 200);
    // A project reader may read its own project's usages only.
    let r = h
        .call_as("reader", "GET", "/usages?project_id=p1", Some("1.9"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .call_as("reader", "GET", "/usages?project_id=p2", Some("1.9"), None)
        .await;
    assert_eq!(r.status, 403);
    // Admin on reshaper: service only.
    let r = h.call("POST", "/reshaper", "1.30", Some(json!({}))).await;
    assert_eq!(r.status, 403);
    let r = h
        .call_as("nova", "POST", "/reshaper", Some("1.30"), Some(json!({})))
        .await;
    assert_eq!(r.status, 501);
}

/// Many concurrent claims against a small inventory never over-allocate (both backends).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_exceed_capacity() {
    let h = Arc::new(Harness::open("race").await);
    let a = h.provider("cn-a", None).await;
    let b = h.provider("cn-b", None).await;
    h.inventory(&a, &[("VCPU", 10)]).await;
    h.inventory(&b, &[("VCPU", 7)]).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let h = h.clone();
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let amount = 1 + (i % 3) as i64;
            let allocations = match i % 4 {
                0 => json!({a: {"resources": {"VCPU": amount}}, b: {"resources": {"VCPU": 1}}}),
                1 => json!({b: {"resources": {"VCPU": amount}}}),
                _ => json!({a: {"resources": {"VCPU": amount}}}),
            };
            let r = h.claim(&new_uuid(), allocations.clone(), Value::Null).await;
            assert!(r.status == 204 || r.status == 409, "{r:?}");
            (r.status == 204).then_some(allocations)
        }));
    }
    let mut granted: std::collections::HashMap<String, i64> = Default::default();
    for t in tasks {
        if let Some(allocs) = t.await.unwrap() {
            for (rp, entry) in allocs.as_object().unwrap() {
                *granted.entry(rp.clone()).or_default() +=
                    entry["resources"]["VCPU"].as_i64().unwrap();
            }
        }
    }
    for (rp, cap) in [(&a, 10), (&b, 7)] {
        let used = h
            .get(&format!("/resource_providers/{rp}/usages"), "1.0")
            .await
            .body["usages"]["VCPU"]
            .as_i64()
            .unwrap();
        assert!(used <= cap, "{rp}: {used} > {cap}");
        assert_eq!(used, granted.get(rp).copied().unwrap_or(0));
        assert!(
            used >= cap - 2,
            "the race should fill the provider: {used}/{cap}"
        );
    }
}

fn providers_of(request: &Value) -> Vec<String> {
    let mut out: Vec<String> = request["allocations"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn allocation_candidates_flat_and_filters() {
    let h = Harness::open("candidates").await;
    let cn1 = h.provider("cn1", None).await;
    let cn2 = h.provider("cn2", None).await;
    h.inventory(&cn1, &[("VCPU", 4), ("MEMORY_MB", 2048), ("DISK_GB", 100)])
        .await;
    h.inventory(&cn2, &[("VCPU", 8), ("MEMORY_MB", 4096), ("DISK_GB", 100)])
        .await;
    // Nova's boot query at 1.36.
    let r = h
        .get("/allocation_candidates?limit=1000&resources=DISK_GB:1,MEMORY_MB:512,VCPU:1&root_required=!COMPUTE_STATUS_DISABLED", "1.36")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0]["allocations"][&cn1]["resources"],
        json!({"DISK_GB": 1, "MEMORY_MB": 512, "VCPU": 1})
    );
    assert_eq!(reqs[0]["mappings"], json!({"": [cn1]}));
    let summary = &r.body["provider_summaries"][&cn2];
    assert_eq!(
        summary["resources"]["VCPU"],
        json!({"capacity": 8, "used": 0})
    );
    assert_eq!(summary["root_provider_uuid"], cn2.as_str());
    // The candidate body is PUT-able as is (Nova's claim).
    let claim = json!({"allocations": reqs[1]["allocations"], "mappings": reqs[1]["mappings"],
        "project_id": "p1", "user_id": "u1", "consumer_generation": null});
    let r = h
        .call(
            "PUT",
            &format!("/allocations/{}", new_uuid()),
            "1.36",
            Some(claim),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // Capacity: only cn2 has 6 VCPU free (cn2 now uses 1 of 8).
    let r = h
        .get("/allocation_candidates?resources=VCPU:6", "1.10")
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0]["allocations"],
        json!([{"resource_provider": {"uuid": cn2}, "resources": {"VCPU": 6}}])
    );
    assert_eq!(
        r.body["provider_summaries"][&cn2]["resources"],
        json!({"VCPU": {"capacity": 8, "used": 1}})
    );
    assert!(r.body["provider_summaries"][&cn2].get("traits").is_none());
    let r = h
        .get("/allocation_candidates?resources=VCPU:9", "1.12")
        .await;
    assert_eq!(
        r.body,
        json!({"allocation_requests": [], "provider_summaries": {}})
    );
    // limit, required and forbidden traits, member_of, in_tree.
    let r = h
        .get("/allocation_candidates?resources=VCPU:1&limit=1", "1.16")
        .await;
    assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["provider_summaries"].as_object().unwrap().len(), 1);
    let g = h.generation(&cn2).await;
    h.call(
        "PUT",
        &format!("/resource_providers/{cn2}/traits"),
        "1.6",
        Some(json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": g})),
    )
    .await;
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&required=HW_CPU_X86_AVX2",
            "1.17",
        )
        .await;
    assert_eq!(
        providers_of(&r.body["allocation_requests"][0]),
        std::slice::from_ref(&cn2)
    );
    assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.body["provider_summaries"][&cn2]["traits"],
        json!(["HW_CPU_X86_AVX2"])
    );
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&required=!HW_CPU_X86_AVX2",
            "1.22",
        )
        .await;
    assert_eq!(
        providers_of(&r.body["allocation_requests"][0]),
        std::slice::from_ref(&cn1)
    );
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&required=!HW_CPU_X86_AVX2",
            "1.21",
        )
        .await;
    assert_eq!(r.status, 400);
    let agg = new_uuid();
    h.call(
        "PUT",
        &format!("/resource_providers/{cn1}/aggregates"),
        "1.1",
        Some(json!([agg])),
    )
    .await;
    let r = h
        .get(
            &format!("/allocation_candidates?resources=VCPU:1&member_of={agg}"),
            "1.21",
        )
        .await;
    assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
    assert_eq!(
        providers_of(&r.body["allocation_requests"][0]),
        std::slice::from_ref(&cn1)
    );
    let r = h
        .get(
            &format!("/allocation_candidates?resources=VCPU:1&in_tree={cn2}"),
            "1.31",
        )
        .await;
    assert_eq!(
        providers_of(&r.body["allocation_requests"][0]),
        std::slice::from_ref(&cn2)
    );
    assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&root_required=HW_CPU_X86_AVX2",
            "1.35",
        )
        .await;
    assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
    // Validation.
    assert_eq!(
        h.get("/allocation_candidates?resources=VCPU:1", "1.9")
            .await
            .status,
        404
    );
    let r = h.get("/allocation_candidates", "1.10").await;
    assert_eq!(r.status, 400);
    let r = h.get("/allocation_candidates?resources=VCPU", "1.10").await;
    assert!(r.detail().contains("Badly formed resources parameter."));
    let r = h
        .get("/allocation_candidates?resources=VCPU:0", "1.10")
        .await;
    assert!(
        r.detail()
            .contains("Requested resource VCPU requires amount >= 1. Got: 0.")
    );
    let r = h
        .get("/allocation_candidates?resources=CUSTOM_X:1", "1.10")
        .await;
    assert!(r.detail().contains("No such resource class CUSTOM_X."));
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&required=CUSTOM_NOPE",
            "1.17",
        )
        .await;
    assert!(r.detail().contains("No such trait(s): CUSTOM_NOPE."));
    let r = h
        .get(
            "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1",
            "1.25",
        )
        .await;
    assert!(
        r.detail()
            .contains("The \"group_policy\" parameter is required")
    );
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1&required1=HW_CPU_X86_AVX2",
            "1.25",
        )
        .await;
    assert!(
        r.detail()
            .contains("Found the following orphaned traits keys: required1")
    );
    let r = h
        .get("/allocation_candidates?resources=VCPU:1&root_required=OWNER_NOVA&root_required=OWNER_NOVA", "1.35")
        .await;
    assert_eq!(r.code(), "placement.query.duplicate_key");
    let r = h
        .get("/allocation_candidates?resources=VCPU:1&foo=1", "1.35")
        .await;
    assert!(r.detail().contains("('foo' was unexpected)"));
}

#[tokio::test]
async fn allocation_candidates_nested_granular_and_sharing() {
    let h = Harness::open("candidates-nested").await;
    let cn = h.provider("cn", None).await;
    let numa0 = h.provider("numa0", Some(&cn)).await;
    let numa1 = h.provider("numa1", Some(&cn)).await;
    h.inventory(&cn, &[("DISK_GB", 100)]).await;
    h.inventory(&numa0, &[("VCPU", 4), ("MEMORY_MB", 1024)])
        .await;
    h.inventory(&numa1, &[("VCPU", 4), ("MEMORY_MB", 1024)])
        .await;
    // Unsuffixed resources come from several providers of one tree (≥1.29).
    let r = h
        .get("/allocation_candidates?resources=VCPU:1,DISK_GB:10", "1.29")
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2, "{r:?}");
    let mut expected = vec![cn.clone(), numa0.clone()];
    expected.sort();
    assert_eq!(providers_of(&reqs[0]), expected);
    assert_eq!(r.body["provider_summaries"].as_object().unwrap().len(), 3);
    assert_eq!(
        r.body["provider_summaries"][&numa0]["parent_provider_uuid"],
        cn.as_str()
    );
    assert_eq!(
        r.body["provider_summaries"][&cn]["resources"],
        json!({"DISK_GB": {"capacity": 100, "used": 0}})
    );
    // Before 1.29 nested combinations are not offered.
    let r = h
        .get("/allocation_candidates?resources=VCPU:1,DISK_GB:10", "1.28")
        .await;
    assert_eq!(r.body["allocation_requests"], json!([]));
    // ... and the summaries are those of the providers in the answer, not of their trees.
    let r = h
        .get("/allocation_candidates?resources=DISK_GB:10", "1.28")
        .await;
    assert_eq!(
        r.body["allocation_requests"].as_array().unwrap().len(),
        1,
        "{r:?}"
    );
    let summaries = r.body["provider_summaries"].as_object().unwrap();
    assert_eq!(summaries.keys().collect::<Vec<_>>(), vec![&cn]);
    // Granular groups: isolate puts them on different NUMA nodes; none allows the same one.
    let r = h
        .get(
            "/allocation_candidates?resources1=VCPU:2&resources2=VCPU:2&group_policy=isolate",
            "1.34",
        )
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2, "{r:?}");
    for req in reqs {
        assert_ne!(req["mappings"]["1"], req["mappings"]["2"]);
    }
    let r = h
        .get(
            "/allocation_candidates?resources1=VCPU:2&resources2=VCPU:2&group_policy=none",
            "1.34",
        )
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 4, "{r:?}");
    assert!(
        reqs.iter()
            .any(|q| q["allocations"][&numa0]["resources"]["VCPU"] == 4)
    );
    // Suffixes of any name at 1.33, same_subtree at 1.36.
    let r = h
        .get("/allocation_candidates?resources=DISK_GB:1&resources_A=VCPU:1&resources_B=MEMORY_MB:1&group_policy=none&same_subtree=_A,_B", "1.36")
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2, "{r:?}");
    for req in reqs {
        assert_eq!(req["mappings"]["_A"], req["mappings"]["_B"]);
        assert_eq!(req["mappings"][""], json!([cn]));
    }
    // Sharing provider: disk from shared storage in the compute node's aggregate.
    let cn2 = h.provider("cn2", None).await;
    let nfs = h.provider("nfs", None).await;
    h.inventory(&cn2, &[("VCPU", 2)]).await;
    h.inventory(&nfs, &[("DISK_GB", 1000)]).await;
    let agg = new_uuid();
    for rp in [&cn2, &nfs] {
        let g = h.generation(rp).await;
        h.call(
            "PUT",
            &format!("/resource_providers/{rp}/aggregates"),
            "1.19",
            Some(json!({"aggregates": [agg], "resource_provider_generation": g})),
        )
        .await;
    }
    let g = h.generation(&nfs).await;
    h.call(
        "PUT",
        &format!("/resource_providers/{nfs}/traits"),
        "1.6",
        Some(json!({"traits": ["MISC_SHARES_VIA_AGGREGATE"], "resource_provider_generation": g})),
    )
    .await;
    let r = h
        .get(
            "/allocation_candidates?resources=VCPU:1,DISK_GB:500",
            "1.29",
        )
        .await;
    let reqs = r.body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{r:?}");
    let mut expected = vec![cn2.clone(), nfs.clone()];
    expected.sort();
    assert_eq!(providers_of(&reqs[0]), expected);
    assert_eq!(
        reqs[0]["allocations"][&nfs]["resources"],
        json!({"DISK_GB": 500})
    );
}
