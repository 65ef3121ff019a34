//! The incremental refresh must equal a full read after every kind of write, whichever
//! `Placement` (process) made it: writes go through one instance, reads through another on the
//! same database (SQLite, or PostgreSQL when `FERROSTACK_TEST_DATABASE_URL` is set).

use super::*;
use crate::{InventorySpec, Placement};
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

const PROJECT: &str = "6f70656e-7374-6163-6b20-70726f6a6563";
const USER: &str = "75736572-0000-0000-0000-000000000001";

/// A writer and a reader `Placement` on one database, and the writer's HTTP API.
struct Pair {
    writer: Arc<Placement>,
    reader: Arc<Placement>,
    router: axum::Router,
    /// The reader's previous snapshot, to patch after each write.
    prev: Snapshot,
    patched: usize,
}

impl Pair {
    async fn open(name: &str) -> Pair {
        let store = ferrostack_store::test_store(&format!("placement-snap-{name}"))
            .await
            .unwrap();
        let writer = Placement::open(store.clone(), "http://a.example")
            .await
            .unwrap();
        let reader = Placement::open(store.clone(), "http://b.example")
            .await
            .unwrap();
        let callers = ferrostack_api::testing::standard_callers();
        let ctx = ferrostack_api::testing::context(callers, &crate::default_rules());
        let router = crate::api::router(writer.clone())
            .layer(axum::middleware::from_fn(
                ferrostack_api::request_id::request_id_middleware,
            ))
            .layer(axum::Extension(ctx));
        let prev = Snapshot::load(&store).await.unwrap();
        Pair {
            writer,
            reader,
            router,
            prev,
            patched: 0,
        }
    }

    fn store(&self) -> &Store {
        &self.writer.store
    }

    /// One request as admin; `"resource_provider_generation": null` in the body is filled in
    /// with the current generation of the provider the path names.
    async fn http(&self, method: &str, path: &str, version: &str, body: Option<Value>) -> Value {
        let mut body = body;
        if let Some(b) = body.as_mut()
            && b.get("resource_provider_generation") == Some(&Value::Null)
        {
            let rp = path.split('/').nth(2).unwrap();
            b["resource_provider_generation"] = json!(self.generation(rp).await);
        }
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json")
            .header("x-auth-token", "admin")
            .header("openstack-api-version", format!("placement {version}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    async fn generation(&self, rp: &str) -> i64 {
        let mut c = self.store().pool().acquire().await.unwrap();
        db::provider(&mut c, rp).await.unwrap().unwrap().generation
    }

    async fn provider(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = json!({"name": name});
        if let Some(parent) = parent {
            body["parent_provider_uuid"] = json!(parent);
        }
        let r = self
            .http("POST", "/resource_providers", "1.20", Some(body))
            .await;
        r["uuid"].as_str().unwrap().to_string()
    }

    /// After a write: patching the previous snapshot from the log equals a full read, and so
    /// does the reader's cached snapshot. `patch`: whether the log should allow patching.
    async fn check(&mut self, label: &str, patch: bool) {
        let want = Snapshot::load(self.store()).await.unwrap();
        let patched = self.prev.refresh(self.store()).await.unwrap();
        assert_eq!(patched.is_some(), patch, "after {label}: patched?");
        if let Some(got) = patched {
            assert!(
                got == want,
                "after {label}: patched snapshot differs from a full read"
            );
            self.patched += 1;
        }
        let cached = self.reader.snapshot().await.unwrap();
        assert!(
            *cached == want,
            "after {label}: the reader's snapshot is stale"
        );
        self.prev = want;
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn node_inventory() -> Value {
    json!({"resource_provider_generation": null, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 4.0},
        "MEMORY_MB": {"total": 4096, "reserved": 512},
        "DISK_GB": {"total": 100}}})
}

/// Every write of the HTTP and in-process APIs, in turn.
#[tokio::test]
async fn every_write_is_logged() {
    let mut t = Pair::open("every-write").await;
    let _ = t.reader.snapshot().await.unwrap();
    let r1 = t.provider("r1", None).await;
    t.check("provider create", false).await;
    let r2 = t.provider("r2", None).await;
    let child = t.provider("r1-child", Some(&r1)).await;
    t.check("nested provider create", false).await;
    let inv = |rp: &str| format!("/resource_providers/{rp}/inventories");
    t.http("PUT", &inv(&r1), "1.39", Some(node_inventory()))
        .await;
    t.check("inventories PUT", true).await;
    t.http("PUT", &inv(&r2), "1.39", Some(node_inventory()))
        .await;
    t.http(
        "POST",
        &inv(&child),
        "1.39",
        Some(json!({"resource_provider_generation": null, "resource_class": "SRIOV_NET_VF", "total": 4})),
    )
    .await;
    t.check("inventory POST", true).await;
    t.http(
        "PUT",
        &format!("{}/VCPU", inv(&r2)),
        "1.39",
        Some(json!({"resource_provider_generation": null, "total": 16})),
    )
    .await;
    t.check("inventory PUT one", true).await;
    t.http("DELETE", &format!("{}/DISK_GB", inv(&r2)), "1.39", None)
        .await;
    t.check("inventory DELETE one", true).await;
    let traits = |rp: &str| format!("/resource_providers/{rp}/traits");
    t.http(
        "PUT",
        &traits(&r1),
        "1.39",
        Some(json!({"resource_provider_generation": null, "traits": ["HW_CPU_X86_AVX2"]})),
    )
    .await;
    t.check("provider traits PUT", true).await;
    t.http(
        "PUT",
        &traits(&r1),
        "1.39",
        Some(json!({"resource_provider_generation": null, "traits": ["HW_CPU_X86_AVX2"]})),
    )
    .await;
    t.check("provider traits PUT, unchanged", true).await;
    let aggs = |rp: &str| format!("/resource_providers/{rp}/aggregates");
    let agg = uuid();
    t.http(
        "PUT",
        &aggs(&r2),
        "1.39",
        Some(json!({"resource_provider_generation": null, "aggregates": [agg]})),
    )
    .await;
    t.check("aggregates PUT", true).await;
    t.http("PUT", &aggs(&r1), "1.1", Some(json!([agg]))).await;
    t.check("aggregates PUT without generation", true).await;
    let (c1, c2) = (uuid(), uuid());
    let alloc = |rp: &str, n: i64| {
        json!({"allocations": {rp: {"resources": {"VCPU": n, "MEMORY_MB": 256}}},
               "project_id": PROJECT, "user_id": USER, "consumer_generation": null})
    };
    t.http(
        "PUT",
        &format!("/allocations/{c1}"),
        "1.36",
        Some(alloc(&r1, 2)),
    )
    .await;
    t.check("allocations PUT (claim)", true).await;
    let mut moved = alloc(&r2, 2);
    moved["consumer_generation"] = json!(1);
    t.http("PUT", &format!("/allocations/{c1}"), "1.36", Some(moved))
        .await;
    t.check("allocations PUT (move to another provider)", true)
        .await;
    t.http(
        "POST",
        "/allocations",
        "1.36",
        Some(json!({
            c1.clone(): {"allocations": {}, "project_id": PROJECT, "user_id": USER,
                         "consumer_generation": 2},
            c2.clone(): {"allocations": {r1.clone(): {"resources": {"VCPU": 1}}},
                         "project_id": PROJECT, "user_id": USER, "consumer_generation": null},
        })),
    )
    .await;
    t.check("allocations POST (one emptied, one new)", true)
        .await;
    t.http("DELETE", &format!("/allocations/{c2}"), "1.39", None)
        .await;
    t.check("allocations DELETE", true).await;
    t.http("DELETE", &traits(&r1), "1.39", None).await;
    t.check("provider traits DELETE", true).await;
    t.http("DELETE", &inv(&r2), "1.39", None).await;
    t.check("inventories DELETE", true).await;
    t.http("PUT", "/traits/CUSTOM_GOLD", "1.39", None).await;
    t.check("trait PUT", false).await;
    t.http("DELETE", "/traits/CUSTOM_GOLD", "1.39", None).await;
    t.check("trait DELETE", false).await;
    t.http(
        "POST",
        "/resource_classes",
        "1.39",
        Some(json!({"name": "CUSTOM_FPGA"})),
    )
    .await;
    t.check("resource class POST", false).await;
    t.http("PUT", "/resource_classes/CUSTOM_GPU", "1.39", None)
        .await;
    t.check("resource class PUT", false).await;
    t.http("DELETE", "/resource_classes/CUSTOM_FPGA", "1.39", None)
        .await;
    t.check("resource class DELETE", false).await;
    t.http(
        "PUT",
        &format!("/resource_providers/{r2}"),
        "1.39",
        Some(json!({"name": "r2-renamed"})),
    )
    .await;
    t.check("provider rename", false).await;
    t.http(
        "PUT",
        &format!("/resource_providers/{r2}"),
        "1.39",
        Some(json!({"name": "r2-renamed", "parent_provider_uuid": r1})),
    )
    .await;
    t.check("provider re-parent", false).await;
    t.http("DELETE", &format!("/resource_providers/{r2}"), "1.39", None)
        .await;
    t.check("provider DELETE", false).await;

    // The in-process API.
    let cn = uuid();
    let spec = BTreeMap::from([
        ("VCPU".to_string(), InventorySpec::new(4, 1.0)),
        ("MEMORY_MB".to_string(), InventorySpec::new(2048, 1.0)),
    ]);
    t.writer
        .ensure_compute_node(&cn, "cn", &spec)
        .await
        .unwrap();
    t.check("ensure_compute_node (create)", false).await;
    let bigger = BTreeMap::from([("VCPU".to_string(), InventorySpec::new(8, 1.0))]);
    t.writer
        .ensure_compute_node(&cn, "cn-renamed", &bigger)
        .await
        .unwrap();
    t.check("ensure_compute_node (rename, inventory)", true)
        .await;
    let c3 = uuid();
    let vcpu = BTreeMap::from([("VCPU".to_string(), 2)]);
    assert!(
        t.writer
            .claim(&c3, PROJECT, USER, &cn, &vcpu)
            .await
            .unwrap()
    );
    t.check("claim", true).await;
    t.writer.release(&c3).await.unwrap();
    t.check("release", true).await;
    assert_eq!(t.patched, 17, "writes patched from the log");
}

/// A seeded random stream of claims, moves, releases, inventory, trait and aggregate writes
/// through the writer, with the reader's snapshot checked against a full read after each.
#[tokio::test]
async fn random_writes_refresh_exactly() {
    let mut t = Pair::open("random").await;
    let mut rng: u64 = 0x5eed_1234_abcd_0001;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) as usize) % n
    };
    let mut rps = Vec::new();
    for k in 0..5 {
        let rp = t.provider(&format!("rand-{k}"), None).await;
        t.http(
            "PUT",
            &format!("/resource_providers/{rp}/inventories"),
            "1.39",
            Some(node_inventory()),
        )
        .await;
        rps.push(rp);
    }
    t.check("setup", false).await;
    let consumers: Vec<String> = (0..6).map(|_| uuid()).collect();
    let trait_sets = [
        vec![],
        vec!["HW_CPU_X86_AVX2"],
        vec!["MISC_SHARES_VIA_AGGREGATE"],
    ];
    let aggs = [uuid(), uuid()];
    // Releasing a consumer without allocations logs nothing specific, so readers re-read all.
    let mut holding = std::collections::HashSet::new();
    for step in 0..60 {
        let rp = rps[next(rps.len())].clone();
        let consumer = consumers[next(consumers.len())].clone();
        let mut patch = true;
        let label = match next(5) {
            0 | 1 => {
                let vcpu = BTreeMap::from([("VCPU".to_string(), 1 + next(3) as i64)]);
                // Replaces the consumer's allocations: a claim or a move.
                patch = holding.contains(&consumer);
                t.writer.release(&consumer).await.unwrap();
                assert!(
                    t.writer
                        .claim(&consumer, PROJECT, USER, &rp, &vcpu)
                        .await
                        .unwrap()
                );
                holding.insert(consumer);
                "claim"
            }
            2 => {
                patch = holding.remove(&consumer);
                t.writer.release(&consumer).await.unwrap();
                "release"
            }
            3 => {
                let traits = &trait_sets[next(trait_sets.len())];
                t.http(
                    "PUT",
                    &format!("/resource_providers/{rp}/traits"),
                    "1.39",
                    Some(json!({"resource_provider_generation": null, "traits": traits})),
                )
                .await;
                "traits"
            }
            _ => {
                let agg = &aggs[next(aggs.len())];
                t.http(
                    "PUT",
                    &format!("/resource_providers/{rp}/aggregates"),
                    "1.39",
                    Some(json!({"resource_provider_generation": null, "aggregates": [agg]})),
                )
                .await;
                "aggregates"
            }
        };
        t.check(&format!("step {step}: {label}"), patch).await;
    }
}

/// A reader further behind than the log's window reads everything again, and a log with a gap
/// (a write that logged nothing, as an older binary would) is never trusted.
#[tokio::test]
async fn refresh_falls_back_when_the_log_cannot_say() {
    let t = Pair::open("fallback").await;
    let rp = t.provider("far", None).await;
    let old = Snapshot::load(t.store()).await.unwrap();
    let mut c = t.store().pool().acquire().await.unwrap();
    sqlx::query("UPDATE placement_change_counter SET value = value + 1 WHERE id = 'placement'")
        .execute(&mut *c)
        .await
        .unwrap();
    assert!(old.refresh(t.store()).await.unwrap().is_none(), "gap");
    let old = Snapshot::load(t.store()).await.unwrap();
    sqlx::query("UPDATE placement_change_counter SET value = value + $1 WHERE id = 'placement'")
        .bind(changes::WINDOW)
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO placement_changes (counter, provider_uuid) VALUES ($1, $2)")
        .bind(old.version + changes::WINDOW)
        .bind(&rp)
        .execute(&mut *c)
        .await
        .unwrap();
    assert!(old.refresh(t.store()).await.unwrap().is_none(), "window");
    let fresh = t.reader.snapshot().await.unwrap();
    assert_eq!(fresh.version, old.version + changes::WINDOW);

    // The write whose counter is a multiple of 64 prunes what is older than the window.
    sqlx::query("UPDATE placement_change_counter SET value = 4095 WHERE id = 'placement'")
        .execute(&mut *c)
        .await
        .unwrap();
    drop(c);
    t.provider("pruner", None).await;
    let mut c = t.store().pool().acquire().await.unwrap();
    let oldest: i64 = sqlx::query_scalar("SELECT MIN(counter) FROM placement_changes")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    assert_eq!(oldest, 4096, "older rows pruned");
}
