//! Availability zones, services, pools, extensions, and the absent backups API.

use super::Harness;
use serde_json::json;

#[tokio::test]
async fn zones_services_pools_and_extensions() {
    let h = Harness::open("misc").await;
    let zones = h.get("alice", "/v3/os-availability-zone").await;
    assert_eq!(zones.status, 200);
    assert_eq!(
        zones.body,
        json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}}]})
    );
    assert_eq!(h.get("", "/v3/os-availability-zone").await.status, 401);

    let services = h.get("admin", "/v3/os-services").await;
    assert_eq!(services.status, 200, "{:?}", services.body);
    let rows = services.body["services"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["binary"], "cinder-scheduler");
    assert_eq!(rows[0]["host"], "storage1");
    assert_eq!(rows[0]["state"], "up");
    assert_eq!(rows[0]["zone"], "nova");
    assert_eq!(rows[1]["binary"], "cinder-volume");
    assert_eq!(rows[1]["host"], "storage1@file");
    assert_eq!(rows[1]["status"], "enabled");
    assert_eq!(rows[1]["backend_state"], "up");
    let volume_only = h.get("admin", "/v3/os-services?binary=cinder-volume").await;
    assert_eq!(volume_only.body["services"].as_array().unwrap().len(), 1);
    let by_host = h.get("admin", "/v3/os-services?host=storage1").await;
    assert_eq!(by_host.body["services"].as_array().unwrap().len(), 2);
    let other_host = h.get("admin", "/v3/os-services?host=elsewhere").await;
    assert_eq!(other_host.body["services"], json!([]));
    assert_eq!(h.get("alice", "/v3/os-services").await.status, 403);

    h.available_volume("alice", json!({"size": 3})).await;
    let pools = h.get("admin", "/v3/scheduler-stats/get_pools").await;
    assert_eq!(
        pools.body,
        json!({"pools": [{"name": "storage1@file#file"}]})
    );
    let detail = h
        .get("admin", "/v3/scheduler-stats/get_pools?detail=true")
        .await;
    let caps = &detail.body["pools"][0]["capabilities"];
    assert_eq!(caps["vendor_name"], "Ferrostack");
    assert_eq!(caps["volume_backend_name"], "file");
    assert_eq!(caps["pool_name"], "file");
    assert_eq!(caps["reserved_percentage"], 0);
    assert_eq!(caps["allocated_capacity_gb"], 3);
    assert!(caps["total_capacity_gb"].as_f64().unwrap() > 0.0);
    assert!(caps["free_capacity_gb"].is_number());
    assert!(caps["thin_provisioning_support"].is_boolean());
    let named = h
        .get("admin", "/v3/scheduler-stats/get_pools?name=other")
        .await;
    assert_eq!(named.body, json!({"pools": []}));
    let typed = h
        .get(
            "admin",
            "/v3/scheduler-stats/get_pools?volume_type=__DEFAULT__",
        )
        .await;
    assert_eq!(typed.body["pools"].as_array().unwrap().len(), 1);
    let missing_type = h
        .get("admin", "/v3/scheduler-stats/get_pools?volume_type=nope")
        .await;
    assert_eq!(missing_type.status, 404);
    let bad_filter = h.get("admin", "/v3/scheduler-stats/get_pools?size=1").await;
    assert_eq!(bad_filter.status, 400);
    assert_eq!(
        h.get("alice", "/v3/scheduler-stats/get_pools").await.status,
        403
    );

    let aliases = h.extension_aliases("bob").await;
    for alias in [
        "qos-specs",
        "os-quota-sets",
        "os-volume-type-access",
        "os-snapshot-actions",
    ] {
        assert!(aliases.iter().any(|a| a == alias), "{alias} missing");
    }
    assert!(!aliases.iter().any(|a| a == "backups"));

    assert_eq!(h.get("alice", "/v3/backups").await.status, 404);
    assert_eq!(h.get("alice", "/v3/backups/detail").await.status, 404);
}
