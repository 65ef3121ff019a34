//! Quota sets (show, usage, defaults, update, reset), quota class sets and limits.

use super::Harness;
use serde_json::json;

#[tokio::test]
async fn quota_sets_show_update_usage_and_reset() {
    let h = Harness::open("quota-sets").await;
    let own = h.get("alice", "/v3/os-quota-sets/p1").await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    let set = &own.body["quota_set"];
    assert_eq!(set["id"], "p1");
    assert_eq!(set["volumes"], 10);
    assert_eq!(set["per_volume_gigabytes"], -1);
    assert_eq!(set["groups"], 10);
    assert_eq!(set["volumes___DEFAULT__"], -1);
    assert_eq!(h.get("reader", "/v3/os-quota-sets/p1").await.status, 200);
    assert_eq!(h.get("bob", "/v3/os-quota-sets/p1").await.status, 403);
    assert_eq!(
        h.get("bob", "/v3/os-quota-sets/p1/defaults").await.status,
        403
    );
    assert_eq!(
        h.get("alice", "/v3/os-quota-sets/p1?usage=maybe")
            .await
            .status,
        400
    );

    let put = |body| {
        h.call(
            "admin",
            "PUT",
            "/v3/os-quota-sets/p1",
            Some(json!({ "quota_set": body })),
        )
    };
    let updated =
        put(json!({"volumes": 5, "gigabytes___DEFAULT__": "100", "tenant_id": "p1"})).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["quota_set"]["volumes"], 5);
    assert_eq!(updated.body["quota_set"]["gigabytes___DEFAULT__"], 100);
    assert!(updated.body["quota_set"].get("id").is_none());
    let bad_key = put(json!({"volumes": 5, "bogus": 1})).await;
    assert_eq!(bad_key.status, 400);
    assert_eq!(
        bad_key.body["badRequest"]["message"],
        "Invalid input received: Bad key(s) in quota set: bogus"
    );
    let too_low = put(json!({"volumes": -2})).await;
    assert_eq!(
        (
            too_low.status,
            too_low.body["badRequest"]["message"].as_str()
        ),
        (400, Some("volumes must be >= -1"))
    );
    assert_eq!(put(json!({"volumes": "many"})).await.status, 400);
    assert_eq!(put(json!({})).await.status, 400);
    let by_member = h
        .call(
            "alice",
            "PUT",
            "/v3/os-quota-sets/p1",
            Some(json!({"quota_set": {"volumes": 50}})),
        )
        .await;
    assert_eq!(by_member.status, 403);

    // Usage; a limit below it is refused for a resource the project has its own limit for.
    h.available_volume("alice", json!({"size": 2})).await;
    h.available_volume("alice", json!({"size": 1})).await;
    let usage = h.get("alice", "/v3/os-quota-sets/p1?usage=true").await;
    let set = &usage.body["quota_set"];
    assert_eq!(
        set["volumes"],
        json!({"limit": 5, "in_use": 2, "reserved": 0})
    );
    assert_eq!(set["gigabytes"]["in_use"], 3);
    assert_eq!(
        set["gigabytes___DEFAULT__"],
        json!({"limit": 100, "in_use": 3, "reserved": 0})
    );
    assert_eq!(set["backups"]["in_use"], 0);
    let below = put(json!({"volumes": 1})).await;
    assert_eq!(below.status, 400);
    assert_eq!(
        below.body["badRequest"]["message"],
        "Quota volumes limit must be equal or greater than existing resources. Current usage is 2 and the requested limit is 1."
    );
    assert_eq!(put(json!({"volumes": 2})).await.status, 200);
    let over = h.create_volume("alice", json!({"size": 1})).await;
    assert_eq!(over.status, 413);

    // Defaults and reset.
    let defaults = h.get("alice", "/v3/os-quota-sets/p1/defaults").await;
    assert_eq!(defaults.body["quota_set"]["volumes"], 10);
    assert_eq!(defaults.body["quota_set"]["id"], "p1");
    assert_eq!(
        h.call("alice", "DELETE", "/v3/os-quota-sets/p1", None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call("admin", "DELETE", "/v3/os-quota-sets/p1", None)
            .await
            .status,
        200
    );
    let reset = h.get("alice", "/v3/os-quota-sets/p1").await;
    assert_eq!(reset.body["quota_set"]["volumes"], 10);
    assert_eq!(reset.body["quota_set"]["gigabytes___DEFAULT__"], -1);
}

#[tokio::test]
async fn quota_classes_and_limits() {
    let h = Harness::open("quota-limits").await;
    let class = h.get("admin", "/v3/os-quota-class-sets/default").await;
    assert_eq!(class.status, 200);
    assert_eq!(class.body["quota_class_set"]["id"], "default");
    assert_eq!(class.body["quota_class_set"]["snapshots"], 10);
    assert_eq!(
        h.get("alice", "/v3/os-quota-class-sets/default")
            .await
            .status,
        403
    );

    h.available_volume("alice", json!({"size": 2})).await;
    h.call(
        "admin",
        "PUT",
        "/v3/os-quota-sets/p1",
        Some(json!({"quota_set": {"volumes": 7}})),
    )
    .await;
    let limits = h.get("alice", "/v3/limits").await;
    assert_eq!(limits.status, 200);
    let absolute = &limits.body["limits"]["absolute"];
    assert_eq!(limits.body["limits"]["rate"], json!([]));
    assert_eq!(absolute["maxTotalVolumes"], 7);
    assert_eq!(absolute["maxTotalSnapshots"], 10);
    assert_eq!(absolute["maxTotalVolumeGigabytes"], 1000);
    assert_eq!(absolute["maxTotalBackups"], 10);
    assert_eq!(absolute["maxTotalBackupGigabytes"], 1000);
    assert_eq!(absolute["totalVolumesUsed"], 1);
    assert_eq!(absolute["totalGigabytesUsed"], 2);
    assert_eq!(absolute["totalSnapshotsUsed"], 0);
    assert_eq!(absolute["totalBackupsUsed"], 0);
    assert_eq!(absolute["totalBackupGigabytesUsed"], 0);

    // Only an admin names another project, from 3.39.
    let other = h.get("admin", "/v3/limits?project_id=p1").await;
    assert_eq!(other.body["limits"]["absolute"]["maxTotalVolumes"], 7);
    let old = h
        .call_at("3.38", "admin", "GET", "/v3/limits?project_id=p1", None)
        .await;
    assert_eq!(old.body["limits"]["absolute"]["maxTotalVolumes"], 10);
    let member = h.get("bob", "/v3/limits?project_id=p1").await;
    assert_eq!(member.body["limits"]["absolute"]["totalVolumesUsed"], 0);
    assert_eq!(h.get("", "/v3/limits").await.status, 401);
}
