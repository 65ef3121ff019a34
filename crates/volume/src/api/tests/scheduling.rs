//! Placement against the volume type's extra specs, the user messages a failed placement
//! leaves (3.3), retype (`os-retype`) and quota classes: the behaviours Tempest's
//! `admin.test_user_messages`, `admin.test_volume_types`, `admin.test_volume_retype` and
//! `admin.test_volume_quota_classes` check.

use super::Harness;
use serde_json::{Value, json};

/// Creates a volume type as admin; returns its id.
async fn create_type(h: &Harness, name: &str, extra_specs: Value) -> String {
    let reply = h
        .call(
            "admin",
            "POST",
            "/v3/types",
            Some(json!({"volume_type": {"name": name, "extra_specs": extra_specs}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a volume as `token` (202) and waits for `status`; returns it.
async fn volume_in(h: &Harness, token: &str, body: Value, status: &str) -> Value {
    let created = h.create_volume(token, body).await;
    assert_eq!(created.status, 202, "{:?}", created.body);
    let id = created.body["volume"]["id"].as_str().unwrap();
    h.wait_status(token, &format!("/v3/volumes/{id}"), "volume", status)
        .await
}

#[tokio::test]
async fn a_type_the_backend_does_not_satisfy_fails_with_a_user_message() {
    let h = Harness::open("scheduling-messages").await;
    let matching = create_type(
        &h,
        "matching",
        json!({"storage_protocol": "file", "vendor_name": "Ferrostack", "tier": "gold"}),
    )
    .await;
    volume_in(
        &h,
        "alice",
        json!({"size": 1, "volume_type": matching}),
        "available",
    )
    .await;
    let bogus = create_type(
        &h,
        "bogus",
        json!({"storage_protocol": "storage_protocol-1", "vendor_name": "vendor_name-1"}),
    )
    .await;
    let failed = volume_in(
        &h,
        "alice",
        json!({"size": 1, "volume_type": bogus}),
        "error",
    )
    .await;
    let volume_id = failed["id"].as_str().unwrap();

    // Messages exist from 3.3.
    assert_eq!(
        h.call_at("3.2", "alice", "GET", "/v3/messages", None)
            .await
            .status,
        404
    );
    let listed = h.call_at("3.3", "alice", "GET", "/v3/messages", None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let messages = listed.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["resource_uuid"], volume_id);
    assert_eq!(message["resource_type"], "VOLUME");
    assert_eq!(message["event_id"], "VOLUME_VOLUME_001_003");
    assert_eq!(message["message_level"], "ERROR");
    assert_eq!(
        message["user_message"],
        "schedule allocate volume: Could not find any available weighted backend."
    );
    assert!(message["request_id"].as_str().unwrap().starts_with("req-"));
    assert!(message["guaranteed_until"].is_string() && message["created_at"].is_string());
    let id = message["id"].as_str().unwrap();
    let path = format!("/v3/messages/{id}");

    // Filters (3.5).
    let filtered = h
        .call_at(
            "3.5",
            "alice",
            "GET",
            &format!("/v3/messages?resource_uuid={volume_id}"),
            None,
        )
        .await;
    assert_eq!(filtered.body["messages"].as_array().unwrap().len(), 1);
    let other = h
        .call_at(
            "3.5",
            "alice",
            "GET",
            "/v3/messages?event_id=VOLUME_VOLUME_002_003",
            None,
        )
        .await;
    assert_eq!(other.body["messages"], json!([]));

    // Tenant isolation and policy.
    let bobs = h.call_at("3.3", "bob", "GET", "/v3/messages", None).await;
    assert_eq!(bobs.body["messages"], json!([]));
    assert_eq!(
        h.call_at("3.3", "bob", "GET", &path, None).await.status,
        404
    );
    assert_eq!(
        h.call_at("3.3", "bob", "DELETE", &path, None).await.status,
        404
    );
    let shown = h.call_at("3.3", "reader", "GET", &path, None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["message"]["id"], id);
    assert_eq!(
        h.call_at("3.3", "reader", "DELETE", &path, None)
            .await
            .status,
        403
    );
    let all = h.call_at("3.3", "admin", "GET", "/v3/messages", None).await;
    assert_eq!(all.body["messages"].as_array().unwrap().len(), 1);

    assert_eq!(
        h.call_at("3.3", "alice", "DELETE", &path, None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call_at("3.3", "alice", "GET", &path, None).await.status,
        404
    );
}

#[tokio::test]
async fn pools_are_filtered_by_what_a_type_asks_of_them() {
    let h = Harness::open("scheduling-pools").await;
    create_type(&h, "served", json!({"volume_backend_name": "file"})).await;
    create_type(&h, "unserved", json!({"vendor_name": "Open Source"})).await;
    let served = h
        .get("admin", "/v3/scheduler-stats/get_pools?volume_type=served")
        .await;
    assert_eq!(served.body["pools"].as_array().unwrap().len(), 1);
    let unserved = h
        .get(
            "admin",
            "/v3/scheduler-stats/get_pools?volume_type=unserved",
        )
        .await;
    assert_eq!(unserved.body, json!({"pools": []}));
}

#[tokio::test]
async fn retype_moves_a_volume_to_a_type_its_backend_serves() {
    let h = &Harness::open("scheduling-retype").await;
    let one = create_type(h, "volume-type-1", json!({})).await;
    let two = create_type(h, "volume-type-2", json!({"storage_protocol": "file"})).await;
    let elsewhere = create_type(h, "elsewhere", json!({"vendor_name": "Open Source"})).await;
    let volume = volume_in(
        h,
        "alice",
        json!({"size": 1, "volume_type": "volume-type-1"}),
        "available",
    )
    .await;
    let id = volume["id"].as_str().unwrap();
    let path = format!("/v3/volumes/{id}");
    let action = format!("{path}/action");
    let retype = |token: &'static str, body: Value| {
        let action = action.clone();
        async move { h.call(token, "POST", &action, Some(body)).await }
    };

    assert_eq!(
        retype("bob", json!({"os-retype": {"new_type": two}}))
            .await
            .status,
        404
    );
    assert_eq!(
        retype("reader", json!({"os-retype": {"new_type": two}}))
            .await
            .status,
        403
    );
    let bad_policy = retype(
        "alice",
        json!({"os-retype": {"new_type": two, "migration_policy": "always"}}),
    )
    .await;
    assert_eq!(bad_policy.status, 400);
    let missing = retype("alice", json!({"os-retype": {"new_type": "nope"}})).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body["itemNotFound"]["message"],
        "Volume type with name nope could not be found."
    );
    let same = retype("alice", json!({"os-retype": {"new_type": one}})).await;
    assert_eq!(same.status, 400, "{:?}", same.body);

    // Per-type quota of the new type.
    let quota = h
        .call(
            "admin",
            "PUT",
            "/v3/os-quota-sets/p1",
            Some(json!({"quota_set": {"volumes_volume-type-2": 0}})),
        )
        .await;
    assert_eq!(quota.status, 200, "{:?}", quota.body);
    let over = retype("alice", json!({"os-retype": {"new_type": two}})).await;
    assert_eq!(over.status, 413, "{:?}", over.body);
    h.call(
        "admin",
        "PUT",
        "/v3/os-quota-sets/p1",
        Some(json!({"quota_set": {"volumes_volume-type-2": -1}})),
    )
    .await;

    let accepted = retype(
        "alice",
        json!({"os-retype": {"new_type": "volume-type-2", "migration_policy": "never"}}),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let mut shown = h.get("alice", &path).await.body["volume"].clone();
    for _ in 0..200 {
        if shown["status"] == "available" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        shown = h.get("alice", &path).await.body["volume"].clone();
    }
    assert_eq!(shown["status"], "available");
    assert_eq!(shown["volume_type"], "volume-type-2");
    let admin_view = h.get("admin", &path).await.body["volume"].clone();
    assert_eq!(admin_view["os-vol-host-attr:host"], "storage1@file#file");
    assert_eq!(admin_view["migration_status"], Value::Null);

    // A type this backend does not serve: the volume keeps its type (no backend to migrate to).
    let refused = retype(
        "alice",
        json!({"os-retype": {"new_type": elsewhere, "migration_policy": "on-demand"}}),
    )
    .await;
    assert_eq!(refused.status, 202);
    let mut kept = h.get("alice", &path).await.body["volume"].clone();
    for _ in 0..200 {
        if kept["status"] == "available" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        kept = h.get("alice", &path).await.body["volume"].clone();
    }
    assert_eq!(kept["status"], "available");
    assert_eq!(kept["volume_type"], "volume-type-2");
}

#[tokio::test]
async fn the_default_quota_class_sets_every_projects_defaults() {
    let h = &Harness::open("scheduling-quota-classes").await;
    let put = |token: &'static str, body: Value| async move {
        h.call(token, "PUT", "/v3/os-quota-class-sets/default", Some(body))
            .await
    };
    assert_eq!(
        put("alice", json!({"quota_class_set": {"volumes": 1}}))
            .await
            .status,
        403
    );
    let bad = put("admin", json!({"quota_class_set": {"bogus": 1}})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body["badRequest"]["message"],
        "Invalid input received: Bad key(s) in quota class set: bogus"
    );
    assert_eq!(
        put("admin", json!({"quota_class_set": {"volumes": -2}}))
            .await
            .status,
        400
    );
    let updated = put(
        "admin",
        json!({"quota_class_set": {"volumes": 1, "gigabytes___DEFAULT__": 7}}),
    )
    .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let set = &updated.body["quota_class_set"];
    assert_eq!(
        (&set["volumes"], &set["gigabytes___DEFAULT__"]),
        (&json!(1), &json!(7))
    );
    assert_eq!(set["snapshots"], 10);
    assert!(set.get("id").is_none());
    let shown = h.get("admin", "/v3/os-quota-class-sets/default").await;
    assert_eq!(shown.body["quota_class_set"]["id"], "default");
    assert_eq!(shown.body["quota_class_set"]["volumes"], 1);
    for project in ["p1", "a-new-project"] {
        let defaults = h
            .get("admin", &format!("/v3/os-quota-sets/{project}/defaults"))
            .await;
        assert_eq!(defaults.body["quota_set"]["volumes"], 1, "{project}");
        assert_eq!(defaults.body["quota_set"]["gigabytes___DEFAULT__"], 7);
    }
    // The quota checks use it.
    h.available_volume("alice", json!({"size": 1})).await;
    let refused = h.create_volume("alice", json!({"size": 1})).await;
    assert_eq!(refused.status, 413, "{:?}", refused.body);
    // Another class shows its own limits over the defaults.
    let gold = h
        .call(
            "admin",
            "PUT",
            "/v3/os-quota-class-sets/gold",
            Some(json!({"quota_class_set": {"snapshots": 3}})),
        )
        .await;
    assert_eq!(gold.body["quota_class_set"]["snapshots"], 3);
    assert_eq!(gold.body["quota_class_set"]["volumes"], 1);
    let defaults = h.get("admin", "/v3/os-quota-sets/p1/defaults").await;
    assert_eq!(defaults.body["quota_set"]["snapshots"], 10);
}
