//! Services with their heartbeats (state, enable/disable), the hosts API and backend
//! capabilities: the behaviours Tempest's `admin.test_volume_services*`,
//! `admin.test_volume_hosts` and `admin.test_backends_capabilities` check.

use super::Harness;
use serde_json::{Value, json};

fn service<'a>(body: &'a Value, binary: &str) -> &'a Value {
    body["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["binary"] == binary)
        .unwrap_or_else(|| panic!("no {binary} in {body}"))
}

#[tokio::test]
async fn services_report_heartbeats_and_go_down_without_them() {
    let h = Harness::open("services-heartbeat").await;
    let listed = h.get("admin", "/v3/os-services").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    for binary in ["cinder-scheduler", "cinder-volume"] {
        let s = service(&listed.body, binary);
        assert_eq!(s["state"], "up", "{s}");
        assert_eq!(s["status"], "enabled");
        assert_eq!(s["disabled_reason"], Value::Null);
        let updated = s["updated_at"].as_str().unwrap();
        assert!(
            crate::api::query::parse_time(updated).is_some(),
            "{updated}"
        );
    }
    assert_eq!(
        service(&listed.body, "cinder-volume")["host"],
        "storage1@file"
    );
    // Tempest's schema at the base microversion: no `cluster`, no `backend_state`.
    let base = h
        .call_at("3.0", "admin", "GET", "/v3/os-services", None)
        .await;
    let volume = service(&base.body, "cinder-volume");
    assert!(volume.get("cluster").is_none() && volume.get("backend_state").is_none());

    // A report older than service_down_time (60 s) is a service down.
    sqlx::query("UPDATE vol_services SET updated_at = $1 WHERE binary_name = 'cinder-volume'")
        .bind("2000-01-01T00:00:00.000000Z")
        .execute(h.volumes.db().store().pool())
        .await
        .unwrap();
    let stale = h.get("admin", "/v3/os-services").await;
    let volume = service(&stale.body, "cinder-volume");
    assert_eq!(volume["state"], "down");
    assert_eq!(volume["updated_at"], "2000-01-01T00:00:00.000000");
    assert_eq!(service(&stale.body, "cinder-scheduler")["state"], "up");
    let hosts = h.get("admin", "/v3/os-hosts").await;
    let row = hosts.body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "cinder-volume")
        .unwrap()
        .clone();
    assert_eq!(row["service-status"], "unavailable");
}

#[tokio::test]
async fn a_disabled_volume_service_gets_no_new_volumes() {
    let h = &Harness::open("services-disable").await;
    let put = |path: &'static str, token: &'static str, body: Value| {
        let path = format!("/v3/os-services/{path}");
        async move { h.call(token, "PUT", &path, Some(body)).await }
    };
    let named = json!({"host": "storage1", "binary": "cinder-volume"});
    assert_eq!(put("disable", "alice", named.clone()).await.status, 403);
    let missing_host = put(
        "enable",
        "admin",
        json!({"host": "invalid_host", "binary": "cinder-volume"}),
    )
    .await;
    assert_eq!(missing_host.status, 404, "{:?}", missing_host.body);
    assert_eq!(
        missing_host.body["itemNotFound"]["message"],
        "Service cinder-volume could not be found on host invalid_host."
    );
    let bad_binary = put(
        "disable",
        "admin",
        json!({"host": "storage1", "binary": "invalid_binary"}),
    )
    .await;
    assert_eq!(bad_binary.status, 404);
    let no_reason = put(
        "disable-log-reason",
        "admin",
        json!({"host": "storage1", "binary": "cinder-volume", "disabled_reason": null}),
    )
    .await;
    assert_eq!(no_reason.status, 400);
    assert_eq!(
        put("disable", "admin", json!({"host": "storage1"}))
            .await
            .status,
        400
    );

    let disabled = put(
        "disable-log-reason",
        "admin",
        json!({"host": "storage1", "binary": "cinder-volume", "disabled_reason": "maintenance"}),
    )
    .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    assert_eq!(
        disabled.body,
        json!({"host": "storage1", "service": "", "binary": "cinder-volume",
               "status": "disabled", "disabled": true, "disabled_reason": "maintenance"})
    );
    let listed = h.get("admin", "/v3/os-services").await;
    let volume = service(&listed.body, "cinder-volume");
    assert_eq!(
        (&volume["status"], &volume["disabled_reason"]),
        (&json!("disabled"), &json!("maintenance"))
    );
    // The scheduler finds no backend: the volume goes to error.
    let created = h.create_volume("alice", json!({"size": 1})).await;
    assert_eq!(created.status, 202);
    let id = created.body["volume"]["id"].as_str().unwrap();
    h.wait_status("alice", &format!("/v3/volumes/{id}"), "volume", "error")
        .await;
    // A disabled service is no host of os-hosts.
    let hosts = h.get("admin", "/v3/os-hosts").await;
    assert!(
        hosts.body["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["service"] != "cinder-volume"),
        "{:?}",
        hosts.body
    );

    let enabled = put("enable", "admin", named).await;
    assert_eq!(enabled.status, 200);
    assert_eq!(
        enabled.body,
        json!({"host": "storage1", "service": "", "binary": "cinder-volume",
               "status": "enabled", "disabled": false, "disabled_reason": null})
    );
    let listed = h.get("admin", "/v3/os-services").await;
    assert_eq!(
        service(&listed.body, "cinder-volume")["disabled_reason"],
        Value::Null
    );
    h.available_volume("alice", json!({"size": 1})).await;
}

#[tokio::test]
async fn hosts_list_and_show_the_volume_usage_of_a_backend() {
    let h = Harness::open("services-hosts").await;
    assert_eq!(h.get("alice", "/v3/os-hosts").await.status, 403);
    let listed = h.get("admin", "/v3/os-hosts").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let hosts = listed.body["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    let volume_host = hosts
        .iter()
        .find(|r| r["service"] == "cinder-volume")
        .unwrap();
    assert_eq!(volume_host["host_name"], "storage1@file");
    assert_eq!(volume_host["zone"], "nova");
    assert_eq!(volume_host["service-status"], "available");
    assert_eq!(volume_host["service-state"], "enabled");
    assert!(volume_host["last-update"].is_string());
    let other_zone = h.get("admin", "/v3/os-hosts?zone=elsewhere").await;
    assert_eq!(other_zone.body["hosts"], json!([]));

    let volume = h.available_volume("alice", json!({"size": 2})).await;
    let snapshot = h
        .create_snapshot("alice", json!({"volume_id": volume["id"]}))
        .await;
    assert_eq!(snapshot.status, 202, "{:?}", snapshot.body);
    let snapshot_id = snapshot.body["snapshot"]["id"].as_str().unwrap();
    h.wait_status(
        "alice",
        &format!("/v3/snapshots/{snapshot_id}"),
        "snapshot",
        "available",
    )
    .await;
    h.available_volume("bob", json!({"size": 1})).await;
    let shown = h.get("admin", "/v3/os-hosts/storage1@file").await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    let resources: Vec<&Value> = shown.body["host"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["resource"])
        .collect();
    assert_eq!(
        resources[0],
        &json!({"host": "storage1@file", "project": "(total)", "volume_count": "2",
                "total_volume_gb": "3", "snapshot_count": "1", "total_snapshot_gb": "2"})
    );
    let p1 = resources.iter().find(|r| r["project"] == "p1").unwrap();
    assert_eq!(
        (&p1["volume_count"], &p1["snapshot_count"]),
        (&json!("1"), &json!("1"))
    );
    assert_eq!(resources.len(), 3);
    let missing = h.get("admin", "/v3/os-hosts/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        h.get("alice", "/v3/os-hosts/storage1@file").await.status,
        403
    );
}

#[tokio::test]
async fn capabilities_of_a_backend_match_its_pool() {
    let h = Harness::open("services-capabilities").await;
    let pools = h
        .get("admin", "/v3/scheduler-stats/get_pools?detail=true")
        .await;
    let pool = &pools.body["pools"][0];
    let name = pool["name"].as_str().unwrap();
    let caps = h.get("admin", &format!("/v3/capabilities/{name}")).await;
    assert_eq!(caps.status, 200, "{:?}", caps.body);
    assert_eq!(
        caps.body["namespace"],
        "OS::Storage::Capabilities::storage1@file"
    );
    for key in ["vendor_name", "volume_backend_name", "storage_protocol"] {
        assert_eq!(caps.body[key], pool["capabilities"][key], "{key}");
    }
    assert_eq!(caps.body["replication_targets"], json!([]));
    assert!(caps.body["properties"].is_object());
    let by_backend = h.get("admin", "/v3/capabilities/storage1@file").await;
    assert_eq!(by_backend.status, 200);
    let missing = h.get("admin", "/v3/capabilities/elsewhere@file").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body["itemNotFound"]["message"],
        "Can't find service: elsewhere@file"
    );
    assert_eq!(
        h.get("alice", &format!("/v3/capabilities/{name}"))
            .await
            .status,
        403
    );
    let aliases = h.extension_aliases("alice").await;
    assert!(aliases.iter().any(|a| a == "capabilities") && aliases.iter().any(|a| a == "os-hosts"));
}
