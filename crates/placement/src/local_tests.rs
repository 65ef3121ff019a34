//! Tests of the in-process API on a fresh store (SQLite, or PostgreSQL when
//! `FERROSTACK_TEST_DATABASE_URL` is set), checked against the HTTP API where they meet.

use super::*;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const PROJECT: &str = "6f70656e-7374-6163-6b20-70726f6a6563";
const USER: &str = "75736572-0000-0000-0000-000000000001";

async fn open(name: &str) -> Arc<Placement> {
    let store = ferrostack_store::test_store(&format!("placement-local-{name}"))
        .await
        .unwrap();
    Placement::open(store, "http://cloud.example:8080")
        .await
        .unwrap()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn res(pairs: &[(&str, i64)]) -> Resources {
    pairs.iter().map(|(rc, n)| (rc.to_string(), *n)).collect()
}

/// A compute node's inventory: VCPU (with its ratio), MEMORY_MB (512 reserved), DISK_GB.
fn node(
    vcpu: i64,
    cpu_ratio: f64,
    memory_mb: i64,
    disk_gb: i64,
) -> BTreeMap<String, InventorySpec> {
    BTreeMap::from([
        ("VCPU".to_string(), InventorySpec::new(vcpu, cpu_ratio)),
        (
            "MEMORY_MB".to_string(),
            InventorySpec {
                reserved: 512,
                ..InventorySpec::new(memory_mb, 1.5)
            },
        ),
        ("DISK_GB".to_string(), InventorySpec::new(disk_gb, 1.0)),
    ])
}

async fn generation(p: &Placement, uuid: &str) -> i64 {
    let mut c = p.store.pool().acquire().await.unwrap();
    db::provider(&mut c, uuid)
        .await
        .unwrap()
        .unwrap()
        .generation
}

async fn inventories(p: &Placement, uuid: &str) -> BTreeMap<String, Inventory> {
    let mut c = p.store.pool().acquire().await.unwrap();
    db::inventories(&mut c, uuid).await.unwrap()
}

/// The HTTP API over the same placement, called as the admin.
struct Http(axum::Router);

impl Http {
    fn new(p: &Arc<Placement>) -> Http {
        let ctx = ferrostack_api::testing::context(
            ferrostack_api::testing::standard_callers(),
            &crate::default_rules(),
        );
        Http(
            crate::api::router(p.clone())
                .layer(axum::middleware::from_fn(
                    ferrostack_api::request_id::request_id_middleware,
                ))
                .layer(axum::Extension(ctx)),
        )
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json")
            .header("x-auth-token", "admin")
            .header("openstack-api-version", "placement 1.39");
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .0
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Sets a provider's traits and aggregates.
    async fn tag(&self, rp: &str, traits: &[&str], aggregates: &[&str]) {
        let g = self.get(&format!("/resource_providers/{rp}")).await["generation"].clone();
        let (status, body) = self
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/traits"),
                Some(json!({"traits": traits, "resource_provider_generation": g})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/aggregates"),
                Some(json!({"aggregates": aggregates,
                    "resource_provider_generation": body["resource_provider_generation"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn ensure_compute_node_creates_updates_and_is_idempotent() {
    let p = open("ensure").await;
    let http = Http::new(&p);
    let rp = new_uuid();
    p.ensure_compute_node(&rp, "node-1", &node(4, 16.0, 2048, 20))
        .await
        .unwrap();
    let g1 = generation(&p, &rp).await;
    let invs = inventories(&p, &rp).await;
    assert_eq!(invs.len(), 3);
    assert_eq!(invs["VCPU"].allocation_ratio, 16.0);
    assert_eq!(invs["MEMORY_MB"].reserved, 512);
    let shown = http.get(&format!("/resource_providers/{rp}")).await;
    assert_eq!(shown["name"], "node-1");
    assert_eq!(shown["root_provider_uuid"], json!(rp));

    // Unchanged: nothing written.
    p.ensure_compute_node(&rp, "node-1", &node(4, 16.0, 2048, 20))
        .await
        .unwrap();
    assert_eq!(generation(&p, &rp).await, g1);

    // Updated: one generation bump, the new values.
    p.ensure_compute_node(&rp, "node-1", &node(8, 16.0, 2048, 20))
        .await
        .unwrap();
    assert_eq!(generation(&p, &rp).await, g1 + 1);
    assert_eq!(inventories(&p, &rp).await["VCPU"].total, 8);

    // A class left out goes, unless it has allocations.
    let mut no_disk = node(8, 16.0, 2048, 20);
    no_disk.remove("DISK_GB");
    p.ensure_compute_node(&rp, "node-1", &no_disk)
        .await
        .unwrap();
    assert!(!inventories(&p, &rp).await.contains_key("DISK_GB"));
    let server = new_uuid();
    assert!(
        p.claim(
            &server,
            PROJECT,
            USER,
            &rp,
            &res(&[("VCPU", 1), ("MEMORY_MB", 256)])
        )
        .await
        .unwrap()
    );
    let mut cpu_only = no_disk.clone();
    cpu_only.remove("MEMORY_MB");
    p.ensure_compute_node(&rp, "node-1", &cpu_only)
        .await
        .unwrap();
    let invs = inventories(&p, &rp).await;
    assert_eq!(
        invs.keys().collect::<Vec<_>>(),
        ["MEMORY_MB", "VCPU"],
        "MEMORY_MB kept: in use"
    );
    let g = generation(&p, &rp).await;
    p.ensure_compute_node(&rp, "node-1", &cpu_only)
        .await
        .unwrap();
    assert_eq!(generation(&p, &rp).await, g, "kept class: still idempotent");
    p.release(&server).await.unwrap();
    p.ensure_compute_node(&rp, "node-1", &cpu_only)
        .await
        .unwrap();
    assert_eq!(
        inventories(&p, &rp).await.keys().collect::<Vec<_>>(),
        ["VCPU"]
    );

    // Another uuid with the same name is refused; the same uuid with a new name is renamed.
    let other = new_uuid();
    match p.ensure_compute_node(&other, "node-1", &cpu_only).await {
        Err(PlacementError::NameConflict { name, uuid }) => {
            assert_eq!((name.as_str(), uuid.as_str()), ("node-1", rp.as_str()));
        }
        r => panic!("expected a name conflict, got {r:?}"),
    }
    p.ensure_compute_node(&rp, "node-1b", &cpu_only)
        .await
        .unwrap();
    assert_eq!(
        http.get(&format!("/resource_providers/{rp}")).await["name"],
        "node-1b"
    );
    // An empty inventory is allowed (a node with nothing to offer).
    p.ensure_compute_node(&other, "node-2", &BTreeMap::new())
        .await
        .unwrap();
    assert!(inventories(&p, &other).await.is_empty());

    // Invalid input.
    let mut bad = node(4, 1.0, 2048, 20);
    bad.get_mut("DISK_GB").unwrap().reserved = 21;
    for (uuid, name, invs) in [
        (rp.as_str(), "node-1b", bad),
        (
            rp.as_str(),
            "node-1b",
            BTreeMap::from([("NO_SUCH".into(), InventorySpec::new(1, 1.0))]),
        ),
        (
            rp.as_str(),
            "node-1b",
            BTreeMap::from([("VCPU".into(), InventorySpec::new(0, 1.0))]),
        ),
        (
            rp.as_str(),
            "node-1b",
            BTreeMap::from([("VCPU".into(), InventorySpec::new(4, 0.0))]),
        ),
        ("not-a-uuid", "node-x", BTreeMap::new()),
        (rp.as_str(), "", BTreeMap::new()),
    ] {
        let r = p.ensure_compute_node(uuid, name, &invs).await;
        assert!(matches!(r, Err(PlacementError::InvalidInput(_))), "{r:?}");
    }
}

#[tokio::test]
async fn host_candidates_filter_and_report_free_amounts() {
    let p = open("candidates").await;
    let http = Http::new(&p);
    let agg1 = new_uuid();
    let agg2 = new_uuid();
    let (a, b, c) = (new_uuid(), new_uuid(), new_uuid());
    p.ensure_compute_node(&a, "a", &node(4, 4.0, 2048, 100))
        .await
        .unwrap();
    p.ensure_compute_node(&b, "b", &node(2, 1.0, 1024, 10))
        .await
        .unwrap();
    p.ensure_compute_node(&c, "c", &node(8, 1.0, 4096, 100))
        .await
        .unwrap();
    http.tag(&a, &["HW_CPU_X86_AVX2"], &[&agg1]).await;
    http.tag(
        &c,
        &["HW_CPU_X86_AVX2", "COMPUTE_STATUS_DISABLED"],
        &[&agg2],
    )
    .await;
    // A nested provider never is a host candidate, even when it fits.
    let (status, child) = http
        .call(
            "POST",
            "/resource_providers",
            Some(json!({"name": "a-child", "parent_provider_uuid": a})),
        )
        .await;
    assert_eq!(status, 200, "{child}");
    let child = child["uuid"].as_str().unwrap().to_string();
    p.ensure_compute_node(&child, "a-child", &node(64, 1.0, 65536, 1000))
        .await
        .unwrap();

    let small = res(&[("VCPU", 1), ("MEMORY_MB", 256), ("DISK_GB", 1)]);
    assert!(
        p.claim(
            &new_uuid(),
            PROJECT,
            USER,
            &a,
            &res(&[("VCPU", 2), ("MEMORY_MB", 512)])
        )
        .await
        .unwrap()
    );
    let names =
        |cands: &[HostCandidate]| -> Vec<String> { cands.iter().map(|c| c.name.clone()).collect() };
    let all = p.host_candidates(&small, &[], &[], &[], 10).await.unwrap();
    assert_eq!(names(&all), ["a", "b", "c"]);
    let ha = &all[0];
    assert_eq!(ha.uuid, a);
    // VCPU 4 × 4.0; MEMORY_MB (2048 − 512) × 1.5.
    assert_eq!(
        ha.capacity,
        res(&[("VCPU", 16), ("MEMORY_MB", 2304), ("DISK_GB", 100)])
    );
    assert_eq!(
        ha.free,
        res(&[("VCPU", 14), ("MEMORY_MB", 1792), ("DISK_GB", 100)])
    );
    assert_eq!(ha.traits, ["HW_CPU_X86_AVX2"]);
    assert_eq!(ha.aggregates, std::slice::from_ref(&agg1));
    assert_eq!(
        all[1].free,
        res(&[("VCPU", 2), ("MEMORY_MB", 768), ("DISK_GB", 10)])
    );

    // Fit: b has 2 VCPU (ratio 1); a's max_unit (its total) caps one request at 4 VCPU.
    let three = res(&[("VCPU", 3), ("MEMORY_MB", 256)]);
    assert_eq!(
        names(&p.host_candidates(&three, &[], &[], &[], 10).await.unwrap()),
        ["a", "c"]
    );
    let five = res(&[("VCPU", 5)]);
    assert_eq!(
        names(&p.host_candidates(&five, &[], &[], &[], 10).await.unwrap()),
        ["c"]
    );
    // Memory beyond what b has after its reserve.
    let mem = res(&[("MEMORY_MB", 1000)]);
    assert_eq!(
        names(&p.host_candidates(&mem, &[], &[], &[], 10).await.unwrap()),
        ["a", "c"]
    );
    // Required and forbidden traits, aggregates, limit.
    let avx = ["HW_CPU_X86_AVX2".to_string()];
    let disabled = ["COMPUTE_STATUS_DISABLED".to_string()];
    assert_eq!(
        names(&p.host_candidates(&small, &avx, &[], &[], 10).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        names(
            &p.host_candidates(&small, &avx, &disabled, &[], 10)
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            &p.host_candidates(&small, &[], &disabled, &[], 10)
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    let missing = ["CUSTOM_NOBODY_HAS_IT".to_string()];
    assert!(
        p.host_candidates(&small, &missing, &[], &[], 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(
            &p.host_candidates(&small, &[], &[], std::slice::from_ref(&agg2), 10)
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            &p.host_candidates(&small, &[], &[], &[agg1.clone(), agg2.clone()], 10)
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(&p.host_candidates(&small, &[], &[], &[], 2).await.unwrap()),
        ["a", "b"]
    );
    // The same hosts as GET /allocation_candidates (where a's child can serve a's tree too).
    let ac = http
        .get("/allocation_candidates?resources=VCPU:1,MEMORY_MB:256,DISK_GB:1&required=HW_CPU_X86_AVX2")
        .await;
    let used: std::collections::BTreeSet<String> = ac["allocation_requests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["allocations"].as_object().unwrap().keys().cloned())
        .collect();
    assert!(
        used.contains(&a) && used.contains(&c) && !used.contains(&b),
        "{used:?}"
    );
    // Invalid input.
    for r in [
        p.host_candidates(&Resources::new(), &[], &[], &[], 10)
            .await,
        p.host_candidates(&res(&[("VCPU", 0)]), &[], &[], &[], 10)
            .await,
        p.host_candidates(&res(&[("NO_SUCH", 1)]), &[], &[], &[], 10)
            .await,
        p.host_candidates(&small, &[], &[], &["nope".into()], 10)
            .await,
    ] {
        assert!(matches!(r, Err(PlacementError::InvalidInput(_))), "{r:?}");
    }
}

#[tokio::test]
async fn claim_is_idempotent_moves_and_refuses_overcommit() {
    let p = open("claim").await;
    let http = Http::new(&p);
    let rp = new_uuid();
    p.ensure_compute_node(&rp, "node", &node(4, 1.0, 2560, 10))
        .await
        .unwrap();
    let server = new_uuid();
    let want = res(&[("VCPU", 2), ("MEMORY_MB", 512), ("DISK_GB", 1)]);
    let g0 = generation(&p, &rp).await;
    assert!(p.claim(&server, PROJECT, USER, &rp, &want).await.unwrap());
    assert_eq!(generation(&p, &rp).await, g0 + 1);

    // What the HTTP API shows.
    let shown = http.get(&format!("/allocations/{server}")).await;
    assert_eq!(shown["allocations"][&rp]["resources"], json!(want));
    assert_eq!(shown["project_id"], PROJECT);
    assert_eq!(shown["user_id"], USER);
    assert_eq!(shown["consumer_generation"], 1);
    assert_eq!(shown["consumer_type"], CONSUMER_TYPE);
    let usages = http.get(&format!("/resource_providers/{rp}/usages")).await;
    assert_eq!(
        usages["usages"],
        json!({"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 1})
    );
    let by_project = http.get(&format!("/usages?project_id={PROJECT}")).await;
    assert_eq!(by_project["usages"]["INSTANCE"]["VCPU"], 2);

    // Idempotent: no write at all.
    assert!(p.claim(&server, PROJECT, USER, &rp, &want).await.unwrap());
    assert_eq!(generation(&p, &rp).await, g0 + 1);
    assert_eq!(
        http.get(&format!("/allocations/{server}")).await["consumer_generation"],
        1
    );

    // Overcommit refused; so is a provider that does not exist or lacks the class.
    let other = new_uuid();
    let three = res(&[("VCPU", 3)]);
    assert!(!p.claim(&other, PROJECT, USER, &rp, &three).await.unwrap());
    assert!(
        !p.claim(&other, PROJECT, USER, &new_uuid(), &three)
            .await
            .unwrap()
    );
    let vgpu = res(&[("VGPU", 1)]);
    assert!(!p.claim(&other, PROJECT, USER, &rp, &vgpu).await.unwrap());
    let above_max_unit = res(&[("DISK_GB", 11)]);
    assert!(
        !p.claim(&other, PROJECT, USER, &rp, &above_max_unit)
            .await
            .unwrap()
    );
    assert_eq!(
        http.get(&format!("/allocations/{other}")).await,
        json!({"allocations": {}})
    );

    // Move semantics: the consumer's own allocations do not count against the new ones.
    let resize = res(&[("VCPU", 4), ("MEMORY_MB", 1024)]);
    assert!(p.claim(&server, PROJECT, USER, &rp, &resize).await.unwrap());
    assert_eq!(
        p.provider_usages(&rp).await.unwrap(),
        res(&[("VCPU", 4), ("MEMORY_MB", 1024), ("DISK_GB", 0)])
    );
    assert_eq!(
        http.get(&format!("/allocations/{server}")).await["consumer_generation"],
        2
    );
    // A move that does not fit leaves the old allocations in place.
    let too_big = res(&[("VCPU", 5)]);
    assert!(
        !p.claim(&server, PROJECT, USER, &rp, &too_big)
            .await
            .unwrap()
    );
    assert_eq!(
        p.consumers_on(&rp).await.unwrap(),
        BTreeMap::from([(server.clone(), resize.clone())])
    );
    // A move to another provider.
    let rp2 = new_uuid();
    p.ensure_compute_node(&rp2, "node-2", &node(4, 1.0, 2560, 10))
        .await
        .unwrap();
    assert!(
        p.claim(&server, PROJECT, USER, &rp2, &resize)
            .await
            .unwrap()
    );
    assert!(p.consumers_on(&rp).await.unwrap().is_empty());
    assert_eq!(p.provider_usages(&rp).await.unwrap()["VCPU"], 0);
    assert_eq!(p.consumers_on(&rp2).await.unwrap()[&server], resize);

    // Uuids are accepted in any case and without dashes.
    let upper = server.to_ascii_uppercase().replace('-', "");
    assert!(p.claim(&upper, PROJECT, USER, &rp2, &resize).await.unwrap());

    // Invalid input.
    for r in [
        p.claim("nope", PROJECT, USER, &rp, &want).await,
        p.claim(&other, PROJECT, USER, "nope", &want).await,
        p.claim(&other, "", USER, &rp, &want).await,
        p.claim(&other, PROJECT, USER, &rp, &Resources::new()).await,
        p.claim(&other, PROJECT, USER, &rp, &res(&[("VCPU", -1)]))
            .await,
        p.claim(&other, PROJECT, USER, &rp, &res(&[("NO_SUCH", 1)]))
            .await,
    ] {
        assert!(matches!(r, Err(PlacementError::InvalidInput(_))), "{r:?}");
    }
    assert!(matches!(
        p.provider_usages(&new_uuid()).await,
        Err(PlacementError::ProviderNotFound(_))
    ));
    assert!(matches!(
        p.consumers_on(&new_uuid()).await,
        Err(PlacementError::ProviderNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_overcommit() {
    let p = open("concurrent").await;
    let rp = new_uuid();
    // Room for exactly 5 servers of 1 VCPU (and plenty of everything else).
    p.ensure_compute_node(&rp, "node", &node(5, 1.0, 65536, 1000))
        .await
        .unwrap();
    let one = res(&[("VCPU", 1), ("MEMORY_MB", 128), ("DISK_GB", 1)]);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = p.clone();
            let rp = rp.clone();
            let one = one.clone();
            tokio::spawn(async move {
                let server = new_uuid();
                let ok = p.claim(&server, PROJECT, USER, &rp, &one).await.unwrap();
                (server, ok)
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let (server, ok) = t.await.unwrap();
        if ok {
            won.push(server);
        }
    }
    assert_eq!(won.len(), 5, "exactly 5 of 20 claims fit");
    assert_eq!(p.provider_usages(&rp).await.unwrap()["VCPU"], 5);
    let on = p.consumers_on(&rp).await.unwrap();
    won.sort();
    assert_eq!(on.keys().cloned().collect::<Vec<_>>(), won);

    // Releases and claims racing each other, plus inventory reports: still never above 5.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let p = p.clone();
            let rp = rp.clone();
            let one = one.clone();
            let victim = won[i % won.len()].clone();
            tokio::spawn(async move {
                match i % 4 {
                    0 => p.release(&victim).await.unwrap(),
                    1 => p
                        .ensure_compute_node(&rp, "node", &node(5, 1.0, 65536, 1000))
                        .await
                        .unwrap(),
                    _ => {
                        p.claim(&new_uuid(), PROJECT, USER, &rp, &one)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let used = p.provider_usages(&rp).await.unwrap()["VCPU"];
    assert!(used <= 5, "{used} VCPU claimed out of 5");
    let on = p.consumers_on(&rp).await.unwrap();
    assert_eq!(on.len() as i64, used);
}

#[tokio::test]
async fn release_frees_usage() {
    let p = open("release").await;
    let http = Http::new(&p);
    let rp = new_uuid();
    p.ensure_compute_node(&rp, "node", &node(2, 1.0, 2560, 10))
        .await
        .unwrap();
    let (s1, s2) = (new_uuid(), new_uuid());
    let two = res(&[("VCPU", 2), ("MEMORY_MB", 512)]);
    assert!(p.claim(&s1, PROJECT, USER, &rp, &two).await.unwrap());
    assert!(!p.claim(&s2, PROJECT, USER, &rp, &two).await.unwrap());
    let small = res(&[("VCPU", 1)]);
    assert!(
        p.host_candidates(&small, &[], &[], &[], 10)
            .await
            .unwrap()
            .is_empty()
    );

    p.release(&s1).await.unwrap();
    assert_eq!(
        p.provider_usages(&rp).await.unwrap(),
        res(&[("VCPU", 0), ("MEMORY_MB", 0), ("DISK_GB", 0)])
    );
    assert!(p.consumers_on(&rp).await.unwrap().is_empty());
    assert_eq!(
        http.get(&format!("/allocations/{s1}")).await,
        json!({"allocations": {}})
    );
    assert_eq!(
        p.host_candidates(&small, &[], &[], &[], 10).await.unwrap()[0].free["VCPU"],
        2
    );
    assert!(p.claim(&s2, PROJECT, USER, &rp, &two).await.unwrap());
    // Releasing what has nothing is fine; a malformed uuid is not.
    p.release(&s1).await.unwrap();
    p.release(&new_uuid()).await.unwrap();
    assert!(matches!(
        p.release("nope").await,
        Err(PlacementError::InvalidInput(_))
    ));
    // A consumer written over HTTP is released too.
    let s3 = new_uuid();
    let rp2 = new_uuid();
    p.ensure_compute_node(&rp2, "node-2", &node(2, 1.0, 2560, 10))
        .await
        .unwrap();
    let (status, body) = http
        .call(
            "PUT",
            &format!("/allocations/{s3}"),
            Some(json!({"allocations": {&rp2: {"resources": {"VCPU": 1}}},
                "project_id": PROJECT, "user_id": USER, "consumer_generation": null,
                "consumer_type": "INSTANCE"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(p.consumers_on(&rp2).await.unwrap()[&s3], small);
    p.release(&s3).await.unwrap();
    assert_eq!(p.provider_usages(&rp2).await.unwrap()["VCPU"], 0);
}

/// The provider snapshot is cached until the change counter moves: reused while nothing is
/// written, and every write (here, also one made through a second `Placement` on the same
/// database, as another process would) is seen by the next read, including new traits and
/// resource classes in the name checks.
#[tokio::test]
async fn snapshot_cache_follows_every_write() {
    let p = open("snapshot-cache").await;
    let other = Placement::open(p.store.clone(), "http://cloud.example:8080")
        .await
        .unwrap();
    let http = Http::new(&p);
    let other_http = Http::new(&other);
    let a = new_uuid();
    p.ensure_compute_node(&a, "a", &node(4, 1.0, 2048, 100))
        .await
        .unwrap();
    let first = p.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&first, &p.snapshot().await.unwrap()));
    let small = res(&[("VCPU", 1), ("MEMORY_MB", 256), ("DISK_GB", 1)]);
    assert_eq!(
        p.host_candidates(&small, &[], &[], &[], 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A provider created through the other instance.
    let b = new_uuid();
    other
        .ensure_compute_node(&b, "b", &node(4, 1.0, 2048, 100))
        .await
        .unwrap();
    let second = p.snapshot().await.unwrap();
    assert!(second.version > first.version);
    assert_eq!(
        p.host_candidates(&small, &[], &[], &[], 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let q = "/allocation_candidates?resources=VCPU:1,MEMORY_MB:256,DISK_GB:1";
    assert_eq!(
        http.get(q).await["allocation_requests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A claim through the other instance fills `a`.
    let s = new_uuid();
    let all = res(&[("VCPU", 4)]);
    assert!(other.claim(&s, PROJECT, USER, &a, &all).await.unwrap());
    let body = http.get(q).await;
    assert_eq!(body["allocation_requests"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["provider_summaries"][&b]["resources"]["VCPU"]["used"],
        0
    );

    // A custom trait and a custom class created elsewhere are known at once.
    let (status, _) = other_http.call("PUT", "/traits/CUSTOM_CACHED", None).await;
    assert_eq!(status, 201);
    other_http.tag(&b, &["CUSTOM_CACHED"], &[]).await;
    let body = http.get(&format!("{q}&required=CUSTOM_CACHED")).await;
    assert_eq!(body["allocation_requests"].as_array().unwrap().len(), 1);
    let (status, _) = other_http
        .call("PUT", "/resource_classes/CUSTOM_WIDGET", None)
        .await;
    assert_eq!(status, 201);
    let body = http
        .get("/allocation_candidates?resources=CUSTOM_WIDGET:1")
        .await;
    assert_eq!(body["allocation_requests"], json!([]));
    let listed = http.get("/resource_providers?required=CUSTOM_CACHED").await;
    assert_eq!(listed["resource_providers"][0]["uuid"], json!(b));

    // Releasing through the other instance frees `a` again for this one.
    other.release(&s).await.unwrap();
    assert_eq!(
        http.get(q).await["allocation_requests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let last = p.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&last, &p.snapshot().await.unwrap()));
}

/// With many providers, `limit` gives the first candidates of the unlimited answer, and the
/// summaries are those of the providers in the returned requests.
#[tokio::test]
async fn candidates_limit_is_a_prefix_over_many_providers() {
    let p = open("candidates-many").await;
    let http = Http::new(&p);
    let mut uuids = Vec::new();
    for i in 0..120 {
        let rp = new_uuid();
        p.ensure_compute_node(&rp, &format!("n{i:03}"), &node(4, 2.0, 4096, 100))
            .await
            .unwrap();
        if i % 3 == 0 {
            http.tag(&rp, &["HW_CPU_X86_AVX2"], &[]).await;
        }
        if i % 7 == 0 {
            // Capacity 8 at ratio 2, at most 4 a claim: two consumers fill it.
            for _ in 0..2 {
                let full = res(&[("VCPU", 4)]);
                assert!(
                    p.claim(&new_uuid(), PROJECT, USER, &rp, &full)
                        .await
                        .unwrap()
                );
            }
        }
        uuids.push(rp);
    }
    let q = "/allocation_candidates?resources=VCPU:1,MEMORY_MB:512&required=HW_CPU_X86_AVX2";
    let full = http.get(q).await;
    let all = full["allocation_requests"].as_array().unwrap();
    // 40 with the trait, of which those with i % 21 == 0 (6) are full.
    assert_eq!(all.len(), 34);
    assert_eq!(full["provider_summaries"].as_object().unwrap().len(), 34);
    let limited = http.get(&format!("{q}&limit=5")).await;
    assert_eq!(limited["allocation_requests"], json!(all[..5]));
    let summaries = limited["provider_summaries"].as_object().unwrap();
    assert_eq!(summaries.len(), 5);
    for r in limited["allocation_requests"].as_array().unwrap() {
        let rp = r["allocations"].as_object().unwrap().keys().next().unwrap();
        assert_eq!(summaries[rp], full["provider_summaries"][rp]);
    }
    assert!(uuids.iter().any(|u| summaries.contains_key(u)));
}

/// Every future of the API can be spawned (checked at compile time).
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: T) {}
    fn check(p: &Placement) {
        let r = Resources::new();
        send(p.ensure_compute_node("", "", &BTreeMap::new()));
        send(p.host_candidates(&r, &[], &[], &[], 1));
        send(p.claim("", "", "", "", &r));
        send(p.release(""));
        send(p.consumers_on(""));
        send(p.provider_usages(""));
    }
    let _ = check;
}
