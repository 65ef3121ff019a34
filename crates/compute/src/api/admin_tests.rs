//! In-process tests of the quota, limits, availability zone, services and hypervisors APIs:
//! compute hosts registered as their heartbeats would, servers written straight to the store
//! (with their Placement claims) so usage is known exactly.

use super::tests::Harness;
use crate::db::instances::{self as idb, FlavorCopy, Instance, InstanceData, NewAction};
use crate::db::{nodes, quotas};
use ferrostack_placement::InventorySpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn open(name: &str) -> Harness {
    let h = Harness::open(name).await;
    // Applied under the compute service's name, so it is skipped once it is in MIGRATIONS.
    h.compute
        .store
        .migrate("compute", &[quotas::QUOTAS_MIGRATION])
        .await
        .unwrap();
    h
}

/// Registers `host` as its first heartbeat does (row and Placement inventory); returns its
/// node uuid. `age_secs` backdates the heartbeat.
async fn register_host(h: &Harness, host: &str, age_secs: i64) -> String {
    let node_uuid = uuid::Uuid::new_v4().to_string();
    let at = (chrono::Utc::now() - chrono::Duration::seconds(age_secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    nodes::testing::heartbeat(&h.compute.store, host, &node_uuid, 4, 8192, 100, &at)
        .await
        .unwrap();
    let inventory = BTreeMap::from([
        ("VCPU".to_string(), InventorySpec::new(4, 4.0)),
        ("MEMORY_MB".to_string(), InventorySpec::new(8192, 1.0)),
        ("DISK_GB".to_string(), InventorySpec::new(100, 1.0)),
    ]);
    h.compute
        .placement
        .ensure_compute_node(&node_uuid, host, &inventory)
        .await
        .unwrap();
    node_uuid
}

/// Writes a live server of `project` on `host` (if any) with a flavor of `vcpus` / `ram`,
/// claimed in Placement on `node`. Returns its uuid.
async fn add_server(
    h: &Harness,
    project: &str,
    user: &str,
    placed: Option<(&str, &str)>,
    vcpus: i64,
    ram: i64,
) -> String {
    let now = ferrostack_store::now_rfc3339();
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut rows = [Instance {
        id: 0,
        uuid: uuid.clone(),
        project_id: project.into(),
        user_id: user.into(),
        host: placed.map(|(host, _)| host.to_string()),
        vm_state: "active".into(),
        task_state: None,
        power_state: 1,
        deleted: false,
        created_at: now.clone(),
        updated_at: now.clone(),
        launched_at: None,
        deleted_at: None,
        generation: 0,
        data: InstanceData {
            display_name: "vm".into(),
            flavor: FlavorCopy {
                flavorid: "1".into(),
                name: "f".into(),
                vcpus,
                memory_mb: ram,
                root_gb: 1,
                ..Default::default()
            },
            ..Default::default()
        },
    }];
    let unlimited = idb::ServerQuota {
        instances: -1,
        cores: -1,
        ram: -1,
    };
    let action = NewAction {
        action: "create",
        request_id: "req-test",
        user_id: user,
        project_id: project,
        now: &now,
    };
    idb::create_instances(&h.compute.store, &mut rows, unlimited, None, &action)
        .await
        .unwrap()
        .unwrap();
    if let Some((_, node)) = placed {
        let resources = BTreeMap::from([
            ("VCPU".to_string(), vcpus),
            ("MEMORY_MB".to_string(), ram),
            ("DISK_GB".to_string(), 1),
        ]);
        assert!(
            h.compute
                .placement
                .claim(&uuid, project, user, node, &resources)
                .await
                .unwrap()
        );
    }
    uuid
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn quota_sets_by_microversion_with_usage_and_user_limits() {
    let h = open("quota-sets").await;
    let get = |token: &'static str, path: String, mv: &'static str| {
        let h = &h;
        async move { h.call(token, "GET", &path, mv, None).await }
    };
    let r = get("alice", "/v2.1/os-quota-sets/p1".into(), "2.1").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let q = &r.body["quota_set"];
    assert_eq!(q["id"], "p1");
    assert_eq!(
        (
            &q["instances"],
            &q["cores"],
            &q["ram"],
            &q["metadata_items"]
        ),
        (&json!(10), &json!(20), &json!(51200), &json!(128))
    );
    assert_eq!(
        (
            &q["key_pairs"],
            &q["server_groups"],
            &q["server_group_members"]
        ),
        (&json!(100), &json!(10), &json!(10))
    );
    assert_eq!(
        (
            &q["injected_files"],
            &q["injected_file_content_bytes"],
            &q["injected_file_path_bytes"]
        ),
        (&json!(5), &json!(10240), &json!(255))
    );
    assert_eq!(
        (&q["fixed_ips"], &q["security_groups"]),
        (&json!(-1), &json!(-1))
    );
    assert_eq!(keys(q).len(), 15);
    let r = get("reader", "/v2.1/os-quota-sets/p1".into(), "2.36").await;
    assert_eq!(r.status, 200);
    assert!(r.body["quota_set"].get("fixed_ips").is_none());
    assert!(r.body["quota_set"].get("injected_files").is_some());
    let r = get("alice", "/v2.1/os-quota-sets/p1".into(), "2.57").await;
    assert_eq!(
        keys(&r.body["quota_set"]),
        [
            "cores",
            "id",
            "instances",
            "key_pairs",
            "metadata_items",
            "ram",
            "server_group_members",
            "server_groups"
        ]
    );
    // Other projects are not readable; the defaults are.
    assert_eq!(
        get("bob", "/v2.1/os-quota-sets/p1".into(), "2.1")
            .await
            .status,
        403
    );
    assert_eq!(
        get("bob", "/v2.1/os-quota-sets/p1/detail".into(), "2.1")
            .await
            .status,
        403
    );
    let r = get("bob", "/v2.1/os-quota-sets/p1/defaults".into(), "2.1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["quota_set"]["id"], "p1");
    assert_eq!(r.body["quota_set"]["instances"], 10);
    // Strict query parameters from 2.75.
    assert_eq!(
        get("alice", "/v2.1/os-quota-sets/p1?foo=1".into(), "2.74")
            .await
            .status,
        200
    );
    assert_eq!(
        get("alice", "/v2.1/os-quota-sets/p1?foo=1".into(), "2.75")
            .await
            .status,
        400
    );

    // Usage: two servers of alice, one server group.
    add_server(&h, "p1", "u-alice", None, 1, 512).await;
    add_server(&h, "p1", "u-alice", None, 2, 1024).await;
    add_server(&h, "p2", "u-bob", None, 8, 4096).await;
    let r = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-server-groups",
            "2.64",
            Some(json!({"server_group": {"name": "g", "policy": "affinity"}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = get("reader", "/v2.1/os-quota-sets/p1/detail".into(), "2.57").await;
    assert_eq!(r.status, 200);
    let d = &r.body["quota_set"];
    assert_eq!(d["id"], "p1");
    assert_eq!(
        d["instances"],
        json!({"in_use": 2, "limit": 10, "reserved": 0})
    );
    assert_eq!(d["cores"], json!({"in_use": 3, "limit": 20, "reserved": 0}));
    assert_eq!(
        d["ram"],
        json!({"in_use": 1536, "limit": 51200, "reserved": 0})
    );
    assert_eq!(d["server_groups"]["in_use"], 1);
    assert_eq!(d["key_pairs"]["in_use"], 0);
    assert!(d.get("injected_files").is_none());

    // Updates: admin only, validated, not below usage unless forced.
    let put = |token: &'static str, path: &'static str, mv: &'static str, body: Value| {
        let h = &h;
        async move { h.call(token, "PUT", path, mv, Some(body)).await }
    };
    let r = put(
        "alice",
        "/v2.1/os-quota-sets/p1",
        "2.1",
        json!({"quota_set": {"instances": 50}}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = put(
        "admin",
        "/v2.1/os-quota-sets/p1",
        "2.1",
        json!({"quota_set": {"instances": 5, "cores": "8", "fixed_ips": 3}}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let q = &r.body["quota_set"];
    assert!(q.get("id").is_none());
    assert_eq!(
        (&q["instances"], &q["cores"], &q["fixed_ips"], &q["ram"]),
        (&json!(5), &json!(8), &json!(3), &json!(51200))
    );
    let r = put(
        "admin",
        "/v2.1/os-quota-sets/p1",
        "2.57",
        json!({"quota_set": {"instances": 1}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        "Quota limit 1 for instances must be greater than or equal to already used and \
         reserved 2."
    );
    for bad in [
        json!({"quota_set": {"instances": -2}}),
        json!({"quota_set": {"instances": "ten"}}),
        json!({"quota_set": {"instances": null}}),
        json!({"quota_set": {"instances": 2147483648_i64}}),
        json!({"quota_set": {"networks": 1}}),
        json!({"quota_set": {"fixed_ips": 1}}),
        json!({"quota_set": {"injected_files": 1}}),
        json!({"quota_set": {"force": "maybe"}}),
        json!({"quota": {"instances": 1}}),
    ] {
        let r = put("admin", "/v2.1/os-quota-sets/p1", "2.57", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
    }
    let r = put(
        "admin",
        "/v2.1/os-quota-sets/p1",
        "2.57",
        json!({"quota_set": {"instances": 1, "ram": -1, "force": "True"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (
            &r.body["quota_set"]["instances"],
            &r.body["quota_set"]["ram"]
        ),
        (&json!(1), &json!(-1))
    );
    let c = &h.compute;
    let limits = quotas::limits(&c.store, "p1", &c.config).await.unwrap();
    assert_eq!((limits.instances, limits.cores, limits.ram), (1, 8, -1));
    assert_eq!(limits.server_quota().instances, 1);
    let usage = quotas::usage(&c.store, "p1").await.unwrap();
    assert_eq!((usage.instances, usage.cores, usage.ram), (2, 3, 1536));
    let r = get("alice", "/v2.1/limits".into(), "2.57").await;
    let a = &r.body["limits"]["absolute"];
    assert_eq!(
        (&a["maxTotalInstances"], &a["totalInstancesUsed"]),
        (&json!(1), &json!(2))
    );

    // Per-user limits: within what the project gives out, shown with ?user_id=.
    let r = put(
        "admin",
        "/v2.1/os-quota-sets/p1",
        "2.57",
        json!({"quota_set": {"ram": 60000}}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = h
        .call(
            "admin",
            "PUT",
            "/v2.1/os-quota-sets/p1?user_id=u-alice",
            "2.57",
            Some(json!({"quota_set": {"ram": 2048}})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["quota_set"]["ram"], 2048);
    let r = get(
        "alice",
        "/v2.1/os-quota-sets/p1?user_id=u-alice".into(),
        "2.57",
    )
    .await;
    assert_eq!(
        (&r.body["quota_set"]["ram"], &r.body["quota_set"]["cores"]),
        (&json!(2048), &json!(8))
    );
    let r = get("alice", "/v2.1/os-quota-sets/p1".into(), "2.57").await;
    assert_eq!(r.body["quota_set"]["ram"], 60000);
    let r = h
        .call(
            "admin",
            "PUT",
            "/v2.1/os-quota-sets/p1?user_id=u-other",
            "2.57",
            Some(json!({"quota_set": {"ram": 58000}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        "Quota limit 58000 for ram must be less than or equal to 57952."
    );
    let r = h
        .call(
            "admin",
            "PUT",
            "/v2.1/os-quota-sets/p1?user_id=u-alice",
            "2.57",
            Some(json!({"quota_set": {"cores": 2}})),
        )
        .await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Quota limit 2 for cores must be greater than or equal to already used and \
         reserved 3."
    );
    // The project cannot go below what its users were given.
    let r = put(
        "admin",
        "/v2.1/os-quota-sets/p1",
        "2.57",
        json!({"quota_set": {"ram": 2000}}),
    )
    .await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Quota limit 2000 for ram must be greater than or equal to already used and \
         reserved 2048."
    );
    let user = quotas::user_limits(&c.store, "p1", "u-alice", &c.config)
        .await
        .unwrap();
    assert_eq!((user.ram, user.cores), (2048, 8));

    // Delete: 202, admin only, back to the defaults (users' limits too).
    let r = h
        .call("alice", "DELETE", "/v2.1/os-quota-sets/p1", "2.1", None)
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .call("admin", "DELETE", "/v2.1/os-quota-sets/p1", "2.1", None)
        .await;
    assert_eq!(r.status, 202);
    let r = get(
        "alice",
        "/v2.1/os-quota-sets/p1?user_id=u-alice".into(),
        "2.1",
    )
    .await;
    assert_eq!(
        (
            &r.body["quota_set"]["instances"],
            &r.body["quota_set"]["ram"]
        ),
        (&json!(10), &json!(51200))
    );
    assert_eq!(
        quotas::limits(&c.store, "p1", &c.config).await.unwrap(),
        quotas::QuotaLimits::defaults(&c.config)
    );
}

#[tokio::test]
async fn limits_follow_microversions() {
    let h = open("limits").await;
    add_server(&h, "p1", "u-alice", None, 2, 2048).await;
    add_server(&h, "p2", "u-bob", None, 1, 512).await;
    let r = h.call("alice", "GET", "/v2.1/limits", "2.1", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["limits"]["rate"], json!([]));
    let a = &r.body["limits"]["absolute"];
    assert_eq!(
        *a,
        json!({
            "maxTotalRAMSize": 51200, "maxTotalInstances": 10, "maxTotalCores": 20,
            "maxTotalKeypairs": 100, "maxTotalFloatingIps": -1, "maxServerMeta": 128,
            "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
            "maxSecurityGroups": -1, "maxSecurityGroupRules": -1, "maxServerGroups": 10,
            "maxServerGroupMembers": 10, "totalRAMUsed": 2048, "totalCoresUsed": 2,
            "totalInstancesUsed": 1, "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
            "totalServerGroupsUsed": 0
        })
    );
    let a = h
        .call("alice", "GET", "/v2.1/limits", "2.36", None)
        .await
        .body["limits"]["absolute"]
        .clone();
    assert!(a.get("maxTotalFloatingIps").is_none() && a.get("totalSecurityGroupsUsed").is_none());
    assert_eq!(a["maxImageMeta"], 128);
    let a = h
        .call("alice", "GET", "/v2.1/limits", "2.39", None)
        .await
        .body["limits"]["absolute"]
        .clone();
    assert!(a.get("maxImageMeta").is_none());
    assert_eq!(a["maxPersonality"], 5);
    let a = h
        .call("alice", "GET", "/v2.1/limits", "2.57", None)
        .await
        .body["limits"]["absolute"]
        .clone();
    assert_eq!(
        keys(&a),
        [
            "maxServerGroupMembers",
            "maxServerGroups",
            "maxServerMeta",
            "maxTotalCores",
            "maxTotalInstances",
            "maxTotalKeypairs",
            "maxTotalRAMSize",
            "totalCoresUsed",
            "totalInstancesUsed",
            "totalRAMUsed",
            "totalServerGroupsUsed"
        ]
    );
    // Another project's limits: admins only.
    let r = h
        .call("alice", "GET", "/v2.1/limits?tenant_id=p2", "2.1", None)
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .call("admin", "GET", "/v2.1/limits?tenant_id=p2", "2.57", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["limits"]["absolute"]["totalRAMUsed"], 512);
    let r = h
        .call("reader", "GET", "/v2.1/limits?bogus=1", "2.75", None)
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn services_and_availability_zones_follow_the_hosts() {
    let h = open("services").await;
    // No compute host yet: no zone to offer; the detail shows the internal services.
    let r = h
        .call("alice", "GET", "/v2.1/os-availability-zone", "2.1", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"availabilityZoneInfo": []}));
    let r = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-availability-zone/detail",
            "2.1",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let zones = r.body["availabilityZoneInfo"].as_array().unwrap();
    assert_eq!(zones.len(), 1);
    assert_eq!(zones[0]["zoneName"], "internal");
    let internal_hosts = zones[0]["hosts"].as_object().unwrap();
    assert_eq!(internal_hosts.len(), 1);
    let services = internal_hosts.values().next().unwrap();
    assert_eq!(keys(services), ["nova-conductor", "nova-scheduler"]);
    assert_eq!(services["nova-conductor"]["available"], true);

    register_host(&h, "host-a", 0).await;
    register_host(&h, "host-b", 7200).await;
    let r = h
        .call("reader", "GET", "/v2.1/os-availability-zone", "2.1", None)
        .await;
    assert_eq!(
        r.body,
        json!({"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}
        ]})
    );
    assert_eq!(
        h.call(
            "alice",
            "GET",
            "/v2.1/os-availability-zone/detail",
            "2.1",
            None
        )
        .await
        .status,
        403
    );
    let r = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-availability-zone/detail",
            "2.1",
            None,
        )
        .await;
    let zones = r.body["availabilityZoneInfo"].as_array().unwrap();
    assert_eq!(zones.len(), 2);
    assert_eq!(zones[1]["zoneName"], "nova");
    let a = &zones[1]["hosts"]["host-a"]["nova-compute"];
    assert_eq!(
        (&a["available"], &a["active"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(a["updated_at"].as_str().unwrap().len(), 26);
    assert_eq!(
        zones[1]["hosts"]["host-b"]["nova-compute"]["available"],
        false
    );

    // The services list: admin only, ids by microversion.
    assert_eq!(
        h.call("alice", "GET", "/v2.1/os-services", "2.1", None)
            .await
            .status,
        403
    );
    let r = h
        .call("admin", "GET", "/v2.1/os-services", "2.1", None)
        .await;
    assert_eq!(r.status, 200);
    let list = r.body["services"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    let a = list.iter().find(|s| s["host"] == "host-a").unwrap();
    assert!(a["id"].is_i64());
    assert_eq!(
        keys(a),
        [
            "binary",
            "disabled_reason",
            "host",
            "id",
            "state",
            "status",
            "updated_at",
            "zone"
        ]
    );
    assert_eq!(
        (&a["binary"], &a["zone"], &a["status"], &a["state"]),
        (
            &json!("nova-compute"),
            &json!("nova"),
            &json!("enabled"),
            &json!("up")
        )
    );
    let b = list.iter().find(|s| s["host"] == "host-b").unwrap();
    assert_eq!(b["state"], "down");
    let conductor = list
        .iter()
        .find(|s| s["binary"] == "nova-conductor")
        .unwrap();
    assert_eq!(
        (&conductor["zone"], &conductor["state"]),
        (&json!("internal"), &json!("up"))
    );
    let r = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-services?binary=nova-compute",
            "2.11",
            None,
        )
        .await;
    let list = r.body["services"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["forced_down"], false);
    let r = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-services?host=host-a",
            "2.53",
            None,
        )
        .await;
    let list = r.body["services"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    let again = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-services?host=host-a",
            "2.53",
            None,
        )
        .await;
    assert_eq!(again.body["services"][0]["id"], json!(id));

    // Updates from 2.53, by uuid.
    let put = |path: String, mv: &'static str, body: Value| {
        let h = &h;
        async move { h.call("admin", "PUT", &path, mv, Some(body)).await }
    };
    let path = format!("/v2.1/os-services/{id}");
    let r = h
        .call(
            "alice",
            "PUT",
            &path,
            "2.53",
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = put(
        path.clone(),
        "2.53",
        json!({"status": "disabled", "disabled_reason": "maintenance"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = &r.body["service"];
    assert_eq!(
        (
            &s["id"],
            &s["status"],
            &s["disabled_reason"],
            &s["forced_down"]
        ),
        (
            &json!(id),
            &json!("disabled"),
            &json!("maintenance"),
            &json!(false)
        )
    );
    let node = nodes::nodes(&h.compute.store)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.host == "host-a")
        .unwrap();
    assert!(node.disabled);
    assert_eq!(node.disabled_reason.as_deref(), Some("maintenance"));
    for (body, status) in [
        (json!({"status": "enabled", "disabled_reason": "x"}), 400),
        (json!({}), 400),
        (json!({"disabled_reason": "x"}), 400),
        (json!({"status": "off"}), 400),
        (json!({"forced_down": "perhaps"}), 400),
        (json!({"host": "host-a"}), 400),
    ] {
        let r = put(path.clone(), "2.53", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    let r = put(
        path.clone(),
        "2.53",
        json!({"status": "enabled", "forced_down": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (
            &r.body["service"]["status"],
            &r.body["service"]["state"],
            &r.body["service"]["disabled_reason"]
        ),
        (&json!("enabled"), &json!("down"), &Value::Null)
    );
    let r = put(path.clone(), "2.53", json!({"forced_down": "false"})).await;
    assert_eq!(r.body["service"]["state"], "up");
    let conductor_id = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-services?binary=nova-conductor",
            "2.53",
            None,
        )
        .await
        .body["services"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = put(
        format!("/v2.1/os-services/{conductor_id}"),
        "2.53",
        json!({"status": "disabled"}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["badRequest"]["message"].as_str()),
        (
            400,
            Some(
                "Updating a nova-conductor service is not supported. Only nova-compute \
                 services can be updated."
            )
        )
    );
    let r = put(
        format!("/v2.1/os-services/{}", uuid::Uuid::new_v4()),
        "2.53",
        json!({"status": "disabled"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = put(
        "/v2.1/os-services/12".into(),
        "2.53",
        json!({"status": "disabled"}),
    )
    .await;
    assert_eq!(r.status, 400);

    // Before 2.53: actions on host and binary.
    let r = put(
        "/v2.1/os-services/disable-log-reason".into(),
        "2.1",
        json!({"host": "host-b", "binary": "nova-compute", "disabled_reason": "old"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"service": {"host": "host-b", "binary": "nova-compute", "status": "disabled",
                           "disabled_reason": "old"}})
    );
    let r = put(
        "/v2.1/os-services/disable-log-reason".into(),
        "2.1",
        json!({"host": "host-b", "binary": "nova-compute"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = put(
        "/v2.1/os-services/disable".into(),
        "2.1",
        json!({"host": "nowhere", "binary": "nova-compute"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = put(
        "/v2.1/os-services/disable".into(),
        "2.1",
        json!({"host": "host-a", "binary": "nova-scheduler"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let force = json!({"host": "host-b", "binary": "nova-compute", "forced_down": true});
    assert_eq!(
        put("/v2.1/os-services/force-down".into(), "2.10", force.clone())
            .await
            .status,
        400 // forced_down is not a property before 2.11
    );
    let r = put("/v2.1/os-services/force-down".into(), "2.11", force).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"service": {"host": "host-b", "binary": "nova-compute", "forced_down": true}})
    );
    assert_eq!(
        put(
            "/v2.1/os-services/reboot".into(),
            "2.11",
            json!({"host": "host-b", "binary": "nova-compute"})
        )
        .await
        .status,
        404
    );

    // Zones with every compute host disabled are unavailable.
    put(
        "/v2.1/os-services/disable".into(),
        "2.1",
        json!({"host": "host-a", "binary": "nova-compute"}),
    )
    .await;
    let r = h
        .call("alice", "GET", "/v2.1/os-availability-zone", "2.1", None)
        .await;
    assert_eq!(
        r.body,
        json!({"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": false}, "hosts": null}
        ]})
    );
    let r = put(
        "/v2.1/os-services/enable".into(),
        "2.1",
        json!({"host": "host-a", "binary": "nova-compute"}),
    )
    .await;
    assert_eq!(r.body["service"]["status"], "enabled");
}

#[tokio::test]
async fn hypervisors_report_hosts_with_placement_usage() {
    let h = open("hypervisors").await;
    let node_a = register_host(&h, "host-a", 0).await;
    let node_b = register_host(&h, "host-b", 7200).await;
    let server = add_server(&h, "p1", "u-alice", Some(("host-a", &node_a)), 1, 512).await;
    let get = |path: &str, mv: &'static str| {
        let h = &h;
        let path = path.to_string();
        async move { h.call("admin", "GET", &path, mv, None).await }
    };
    assert_eq!(
        h.call("alice", "GET", "/v2.1/os-hypervisors", "2.1", None)
            .await
            .status,
        403
    );
    let r = get("/v2.1/os-hypervisors", "2.1").await;
    assert_eq!(r.status, 200);
    let list = r.body["hypervisors"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        keys(&list[0]),
        ["hypervisor_hostname", "id", "state", "status"]
    );
    assert_eq!(
        (&list[0]["hypervisor_hostname"], &list[0]["state"]),
        (&json!("host-a"), &json!("up"))
    );
    assert_eq!(list[1]["state"], "down");
    let int_id = list[0]["id"].as_i64().unwrap();

    let r = get("/v2.1/os-hypervisors/detail", "2.1").await;
    let a = &r.body["hypervisors"][0];
    assert_eq!(
        (
            &a["vcpus"],
            &a["vcpus_used"],
            &a["memory_mb"],
            &a["memory_mb_used"]
        ),
        (&json!(4), &json!(1), &json!(8192), &json!(512))
    );
    assert_eq!(
        (
            &a["local_gb"],
            &a["local_gb_used"],
            &a["free_ram_mb"],
            &a["free_disk_gb"]
        ),
        (&json!(100), &json!(1), &json!(7680), &json!(99))
    );
    // What the host's heartbeat reported (`nodes::testing::qemu`); cpu_info as text before 2.28.
    let reported = nodes::testing::qemu();
    assert_eq!(
        (&a["running_vms"], &a["current_workload"], &a["cpu_info"]),
        (&json!(1), &json!(0), &json!(reported.cpu_info))
    );
    assert_eq!(
        (
            &a["hypervisor_type"],
            &a["host_ip"],
            &a["hypervisor_version"]
        ),
        (&json!("QEMU"), &Value::Null, &json!(7_002_022))
    );
    assert_eq!(a["service"]["host"], "host-a");
    assert!(a["service"]["id"].is_i64());
    assert_eq!(keys(a).len(), 20);

    // Show by integer id below 2.53, by uuid from then on.
    let r = get(&format!("/v2.1/os-hypervisors/{int_id}"), "2.28").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cpu_info = &r.body["hypervisor"]["cpu_info"];
    assert_eq!(
        (&cpu_info["arch"], &cpu_info["topology"]["cores"]),
        (&json!("x86_64"), &json!(2))
    );
    assert_eq!(r.body["hypervisor"]["hypervisor_hostname"], "host-a");
    assert_eq!(get("/v2.1/os-hypervisors/abc", "2.1").await.status, 404);
    assert_eq!(get("/v2.1/os-hypervisors/999", "2.1").await.status, 404);
    assert_eq!(get("/v2.1/os-hypervisors/abc", "2.53").await.status, 400);
    assert_eq!(
        get(
            &format!("/v2.1/os-hypervisors/{}", uuid::Uuid::new_v4()),
            "2.53"
        )
        .await
        .status,
        404
    );
    let r = get(
        &format!("/v2.1/os-hypervisors/{node_a}?with_servers=true"),
        "2.53",
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let shown = &r.body["hypervisor"];
    assert_eq!(shown["id"], json!(node_a));
    assert_eq!(
        shown["servers"],
        json!([{"name": "instance-00000001", "uuid": server}])
    );
    let service_id = shown["service"]["id"].as_str().unwrap();
    let services = get("/v2.1/os-services?host=host-a", "2.53").await;
    assert_eq!(services.body["services"][0]["id"], json!(service_id));
    assert_eq!(
        get(
            &format!("/v2.1/os-hypervisors/{node_a}?with_servers=x"),
            "2.53"
        )
        .await
        .status,
        400
    );
    // 2.75: an empty list when asked; 2.88: no resource fields, an uptime.
    let r = get("/v2.1/os-hypervisors?with_servers=1", "2.75").await;
    let list = r.body["hypervisors"].as_array().unwrap();
    assert_eq!(list[1]["id"], json!(node_b));
    assert_eq!(list[1]["servers"], json!([]));
    let r = get(&format!("/v2.1/os-hypervisors/{node_a}"), "2.88").await;
    let shown = &r.body["hypervisor"];
    assert!(shown.get("vcpus").is_none() && shown.get("cpu_info").is_none());
    assert!(shown.get("uptime").is_some());
    assert_eq!(
        (&shown["hypervisor_type"], &shown["hypervisor_version"]),
        (&json!("QEMU"), &json!(7_002_022))
    );
    // Host name pattern (2.53) and the old search and servers routes.
    let r = get(
        "/v2.1/os-hypervisors?hypervisor_hostname_pattern=st-b",
        "2.53",
    )
    .await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=zz",
            "2.53"
        )
        .await
        .status,
        404
    );
    assert_eq!(
        get(
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=host&limit=1",
            "2.53"
        )
        .await
        .status,
        400
    );
    let r = get("/v2.1/os-hypervisors/host/search", "2.1").await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 2);
    assert_eq!(
        get("/v2.1/os-hypervisors/zz/search", "2.1").await.status,
        404
    );
    assert_eq!(
        get("/v2.1/os-hypervisors/host/search", "2.53").await.status,
        404
    );
    let r = get("/v2.1/os-hypervisors/host-a/servers", "2.1").await;
    assert_eq!(
        r.body["hypervisors"][0]["servers"][0]["uuid"],
        json!(server)
    );
    assert!(r.body["hypervisors"].as_array().unwrap().len() == 1);

    // Paging from 2.33.
    let r = get("/v2.1/os-hypervisors?limit=1", "2.53").await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 1);
    let next = r.body["hypervisors_links"][0]["href"].as_str().unwrap();
    assert!(
        next.starts_with("http://cloud:8080/compute/v2.1/os-hypervisors?limit=1&marker="),
        "{next}"
    );
    assert!(next.ends_with(&node_a));
    let r = get(
        &format!("/v2.1/os-hypervisors?limit=1&marker={node_a}"),
        "2.53",
    )
    .await;
    assert_eq!(r.body["hypervisors"][0]["id"], json!(node_b));
    let r = get(&format!("/v2.1/os-hypervisors?marker={node_b}"), "2.53").await;
    assert_eq!(r.body["hypervisors"], json!([]));
    assert!(r.body.get("hypervisors_links").is_none());
    assert_eq!(
        get("/v2.1/os-hypervisors?marker=nope", "2.53").await.status,
        400
    );
    let r = get("/v2.1/os-hypervisors/detail?limit=1", "2.32").await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 2);

    // Statistics over the enabled hosts, before 2.88.
    let r = get("/v2.1/os-hypervisors/statistics", "2.1").await;
    assert_eq!(r.status, 200);
    let s = &r.body["hypervisor_statistics"];
    assert_eq!(
        (
            &s["count"],
            &s["vcpus"],
            &s["vcpus_used"],
            &s["running_vms"]
        ),
        (&json!(2), &json!(8), &json!(1), &json!(1))
    );
    assert_eq!(keys(s).len(), 12);
    assert_eq!(
        get("/v2.1/os-hypervisors/statistics", "2.88").await.status,
        404
    );

    // Uptime: 400 for a host that is down, 501 for a host that is not this one.
    assert_eq!(
        get(&format!("/v2.1/os-hypervisors/{int_id}/uptime"), "2.1")
            .await
            .status,
        501
    );
    let b_id = legacy(&h, "host-b").await;
    assert_eq!(
        get(&format!("/v2.1/os-hypervisors/{b_id}/uptime"), "2.1")
            .await
            .status,
        400
    );
    let local = super::services::local_host(&h.compute);
    let node_local = register_host(&h, &local, 0).await;
    let r = get(&format!("/v2.1/os-hypervisors/{node_local}/uptime"), "2.53").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["hypervisor"]["uptime"]
            .as_str()
            .unwrap()
            .contains(" up ")
    );
    assert_eq!(
        get(&format!("/v2.1/os-hypervisors/{node_local}/uptime"), "2.88")
            .await
            .status,
        404
    );
}

async fn legacy(h: &Harness, host: &str) -> i64 {
    let r = h
        .call("admin", "GET", "/v2.1/os-hypervisors", "2.1", None)
        .await;
    r.body["hypervisors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["hypervisor_hostname"] == host)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Heartbeats through the conductor: the capabilities they carry land on the compute node,
/// in the hypervisors API and in the scheduler's host view; a heartbeat without them (an
/// older agent) keeps what the node had, and new ones replace it.
#[tokio::test]
async fn heartbeats_carry_the_hypervisor_to_the_api_and_the_scheduler() {
    use crate::rpc::{
        self, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest, HostCapabilities, HostResources,
    };
    let h = open("hypervisor-capabilities").await;
    crate::conductor::start(h.compute.clone()).await.unwrap();
    let node = uuid::Uuid::new_v4().to_string();
    let beat = |capabilities: Option<HostCapabilities>| {
        let request = ConductorRequest::Heartbeat {
            host: "arm-1".into(),
            node_uuid: node.clone(),
            resources: HostResources {
                vcpus: 8,
                memory_mb: 16384,
                disk_gb: 200,
            },
            guests: vec![],
            capabilities,
        };
        let bus = h.compute.bus.clone();
        async move {
            let reply = bus
                .call(
                    CONDUCTOR_QUEUE,
                    rpc::encode(&request),
                    std::time::Duration::from_secs(10),
                )
                .await
                .unwrap();
            assert_eq!(
                rpc::decode::<ConductorReply>(&reply).unwrap(),
                ConductorReply::Ok
            );
        }
    };
    let detail = || async {
        let r = h
            .call(
                "admin",
                "GET",
                &format!("/v2.1/os-hypervisors/{node}"),
                "2.53",
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["hypervisor"].clone()
    };

    // An agent that reports nothing: nothing is made up.
    beat(None).await;
    let shown = detail().await;
    assert_eq!(
        (
            &shown["hypervisor_type"],
            &shown["hypervisor_version"],
            &shown["cpu_info"]
        ),
        (&Value::Null, &Value::Null, &json!({}))
    );

    let arm = HostCapabilities {
        hypervisor_type: "QEMU".into(),
        hypervisor_version: 8_002_000,
        libvirt_version: 10_000_000,
        hostname: "arm-1.example".into(),
        cpu_info: json!({"arch": "aarch64", "model": "host", "vendor": "ARM",
            "topology": {"cells": 1, "sockets": 1, "cores": 8, "threads": 1},
            "features": ["aes", "sve"]})
        .to_string(),
        supported_instances: vec![("aarch64".into(), "qemu".into(), "hvm".into())],
    };
    beat(Some(arm.clone())).await;
    beat(None).await;
    let shown = detail().await;
    assert_eq!(
        (&shown["hypervisor_type"], &shown["hypervisor_version"]),
        (&json!("QEMU"), &json!(8_002_000))
    );
    assert_eq!(shown["cpu_info"]["arch"], "aarch64");
    assert_eq!(shown["cpu_info"]["features"], json!(["aes", "sve"]));
    let node_row = nodes::node(&h.compute.store, "arm-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node_row.capabilities.as_ref(), Some(&arm));

    let mut view = crate::host_view::HostView::load(&h.compute).await.unwrap();
    let wanted = ferrostack_placement::Resources::from([("VCPU".to_string(), 1)]);
    let states = view.host_states(&h.compute, &wanted).await.unwrap();
    let hv = &states
        .iter()
        .find(|s| s.host == "arm-1")
        .unwrap()
        .hypervisor;
    assert_eq!(hv.hypervisor_type.as_deref(), Some("QEMU"));
    assert_eq!(hv.version, Some(8_002_000));
    assert_eq!(hv.cpu_info.as_deref(), Some(arm.cpu_info.as_str()));
    assert_eq!(hv.supported_instances, arm.supported_instances);

    // An upgraded hypervisor is reported after the agent's restart.
    beat(Some(HostCapabilities {
        hypervisor_version: 9_001_000,
        ..arm
    }))
    .await;
    assert_eq!(detail().await["hypervisor_version"], json!(9_001_000));
}
