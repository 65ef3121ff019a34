//! Snapshots: create (the manager copies the volume), list/detail/show with their views per
//! microversion, update, metadata, delete, the in-use/force rules, actions, quota, filters
//! and pagination, and tenant isolation.

use super::{Harness, ids};
use crate::db::write_tx;
use crate::model::Volume;
use serde_json::{Value, json};

/// Creates a snapshot of `volume_id` as `token` and waits until it is available.
async fn available_snapshot(h: &Harness, token: &str, volume_id: &str, name: &str) -> Value {
    let reply = h
        .create_snapshot(token, json!({"volume_id": volume_id, "name": name}))
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.body["snapshot"]["id"].as_str().unwrap().to_string();
    h.wait_status(
        token,
        &format!("/v3/snapshots/{id}"),
        "snapshot",
        "available",
    )
    .await
}

/// Sets a volume's status directly in the store (as an attachment would).
async fn set_volume_status(h: &Harness, id: &str, status: &str) {
    write_tx!(h.volumes.db, |tx| {
        async {
            let mut row: Volume = tx.lock(id).await?.unwrap();
            row.status = status.to_string();
            tx.save(&row).await
        }
        .await
    })
    .unwrap();
}

#[tokio::test]
async fn snapshot_lifecycle_views_metadata_and_isolation() {
    let h = Harness::open("snap-lifecycle").await;
    let volume = h
        .available_volume("alice", json!({"size": 1, "name": "v1"}))
        .await;
    let volume_id = volume["id"].as_str().unwrap();
    let created = h
        .call(
            "alice",
            "POST",
            "/v3/snapshots",
            Some(json!({"snapshot": {
                "volume_id": volume_id, "name": " s1 ", "description": "first",
                "metadata": {"k": "v"},
            }})),
        )
        .await;
    assert_eq!(created.status, 202, "{:?}", created.body);
    let snap = &created.body["snapshot"];
    assert_eq!(snap["status"], "creating");
    assert_eq!(snap["name"], "s1");
    assert_eq!(snap["size"], 1);
    assert_eq!(snap["volume_id"], volume_id);
    assert_eq!(snap["metadata"], json!({"k": "v"}));
    assert_eq!(snap["user_id"], "u-alice");
    assert_eq!(snap["consumes_quota"], true);
    assert!(snap["group_snapshot_id"].is_null());
    assert!(
        snap.get("os-extended-snapshot-attributes:progress")
            .is_none()
    );
    let id = snap["id"].as_str().unwrap().to_string();
    let path = format!("/v3/snapshots/{id}");

    let shown = h.wait_status("alice", &path, "snapshot", "available").await;
    assert_eq!(shown["os-extended-snapshot-attributes:progress"], "100%");
    assert_eq!(shown["os-extended-snapshot-attributes:project_id"], "p1");
    assert!(
        h.dir
            .join("volumes")
            .join(format!("snapshot-{id}"))
            .exists()
    );

    // Microversion 3.0: no user_id, consumes_quota or group_snapshot_id.
    let old = h.call_at("3.0", "alice", "GET", &path, None).await;
    assert_eq!(old.status, 200);
    for key in ["user_id", "consumes_quota", "group_snapshot_id"] {
        assert!(old.body["snapshot"].get(key).is_none(), "{key} at 3.0");
    }
    assert_eq!(
        old.body["snapshot"]["os-extended-snapshot-attributes:progress"],
        "100%"
    );

    // The summary list has the summary view only; detail adds the extended attributes.
    let list = h.get("alice", "/v3/snapshots").await;
    assert_eq!(ids(&list.body, "snapshots"), vec![id.clone()]);
    let item = &list.body["snapshots"][0];
    assert!(item.get("user_id").is_none());
    assert!(
        item.get("os-extended-snapshot-attributes:project_id")
            .is_none()
    );
    let detail = h.get("alice", "/v3/snapshots/detail").await;
    assert_eq!(
        detail.body["snapshots"][0]["os-extended-snapshot-attributes:project_id"],
        "p1"
    );
    assert_eq!(detail.body["snapshots"][0]["user_id"], "u-alice");

    // Update.
    let updated = h
        .call(
            "alice",
            "PUT",
            &path,
            Some(json!({"snapshot": {"name": "renamed", "display_description": "dd"}})),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["snapshot"]["name"], "renamed");
    assert_eq!(updated.body["snapshot"]["description"], "dd");
    assert!(updated.body["snapshot"]["updated_at"].is_string());
    let empty = h
        .call("alice", "PUT", &path, Some(json!({"snapshot": {}})))
        .await;
    assert_eq!(empty.status, 400);

    // Metadata.
    let meta = format!("{path}/metadata");
    assert_eq!(
        h.get("alice", &meta).await.body,
        json!({"metadata": {"k": "v"}})
    );
    let added = h
        .call(
            "alice",
            "POST",
            &meta,
            Some(json!({"metadata": {"a": "1"}})),
        )
        .await;
    assert_eq!(added.body, json!({"metadata": {"k": "v", "a": "1"}}));
    let replaced = h
        .call("alice", "PUT", &meta, Some(json!({"metadata": {"b": "2"}})))
        .await;
    assert_eq!(replaced.body, json!({"metadata": {"b": "2"}}));
    let key = format!("{meta}/b");
    assert_eq!(h.get("alice", &key).await.body, json!({"meta": {"b": "2"}}));
    let item = h
        .call("alice", "PUT", &key, Some(json!({"meta": {"b": "3"}})))
        .await;
    assert_eq!(
        (item.status, &item.body),
        (200, &json!({"meta": {"b": "3"}}))
    );
    let mismatch = h
        .call("alice", "PUT", &key, Some(json!({"meta": {"c": "3"}})))
        .await;
    assert_eq!(mismatch.status, 400);
    let bad_key = h
        .call(
            "alice",
            "POST",
            &meta,
            Some(json!({"metadata": {"a/b": "1"}})),
        )
        .await;
    assert_eq!(bad_key.status, 400);
    assert_eq!(h.call("alice", "DELETE", &key, None).await.status, 200);
    let gone = h.get("alice", &key).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body["itemNotFound"]["message"],
        format!("Snapshot {id} has no metadata with key b.")
    );

    // The reader reads but does not write; bob sees nothing of it.
    assert_eq!(h.get("reader", &path).await.status, 200);
    let body = Some(json!({"snapshot": {"name": "x"}}));
    assert_eq!(
        h.call("reader", "PUT", &path, body.clone()).await.status,
        403
    );
    let meta_body = Some(json!({"metadata": {"x": "y"}}));
    assert_eq!(
        h.call("reader", "POST", &meta, meta_body.clone())
            .await
            .status,
        403
    );
    assert_eq!(h.call("reader", "DELETE", &path, None).await.status, 403);
    assert_eq!(h.get("bob", &path).await.status, 404);
    assert_eq!(h.call("bob", "PUT", &path, body).await.status, 404);
    assert_eq!(h.call("bob", "POST", &meta, meta_body).await.status, 404);
    assert_eq!(h.call("bob", "DELETE", &path, None).await.status, 404);
    assert!(ids(&h.get("bob", "/v3/snapshots").await.body, "snapshots").is_empty());
    let all = h.get("admin", "/v3/snapshots?all_tenants=1").await;
    assert_eq!(ids(&all.body, "snapshots"), vec![id.clone()]);
    assert!(ids(&h.get("admin", "/v3/snapshots").await.body, "snapshots").is_empty());

    // Delete.
    assert_eq!(h.call("alice", "DELETE", &path, None).await.status, 202);
    h.wait_gone("alice", &path).await;
    assert!(
        !h.dir
            .join("volumes")
            .join(format!("snapshot-{id}"))
            .exists()
    );
}

#[tokio::test]
async fn snapshot_create_rules_force_in_use_and_actions() {
    let h = Harness::open("snap-rules").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let volume_id = volume["id"].as_str().unwrap().to_string();
    let create = |force: Option<Value>| {
        let mut s = json!({"volume_id": volume_id});
        if let Some(f) = force {
            s["force"] = f;
        }
        Some(json!({ "snapshot": s }))
    };

    // Who may snapshot what.
    let missing = json!({"snapshot": {"volume_id": uuid::Uuid::new_v4().to_string()}});
    assert_eq!(
        h.call("alice", "POST", "/v3/snapshots", Some(missing))
            .await
            .status,
        404
    );
    assert_eq!(
        h.call("bob", "POST", "/v3/snapshots", create(None))
            .await
            .status,
        404
    );
    assert_eq!(
        h.call("reader", "POST", "/v3/snapshots", create(None))
            .await
            .status,
        403
    );
    let not_uuid = json!({"snapshot": {"volume_id": "nope"}});
    assert_eq!(
        h.call("alice", "POST", "/v3/snapshots", Some(not_uuid))
            .await
            .status,
        400
    );
    let extra = json!({"snapshot": {"volume_id": volume_id, "size": 3}});
    assert_eq!(
        h.call("alice", "POST", "/v3/snapshots", Some(extra))
            .await
            .status,
        400
    );

    // An in-use volume: force before 3.66, allowed from 3.66 (where force=false is refused).
    set_volume_status(&h, &volume_id, "in-use").await;
    let refused = h
        .call_at("3.65", "alice", "POST", "/v3/snapshots", create(None))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        format!(
            "Invalid volume: Volume {volume_id} status must be available, but current status is: in-use."
        )
    );
    let forced = h
        .call_at(
            "3.65",
            "alice",
            "POST",
            "/v3/snapshots",
            create(Some(json!("true"))),
        )
        .await;
    assert_eq!(forced.status, 202, "{:?}", forced.body);
    let latest = h.call("alice", "POST", "/v3/snapshots", create(None)).await;
    assert_eq!(latest.status, 202, "{:?}", latest.body);
    let no_force = h
        .call("alice", "POST", "/v3/snapshots", create(Some(json!(false))))
        .await;
    assert_eq!(no_force.status, 400);
    assert!(
        no_force.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Since microversion 3.66 the 'force' flag is invalid")
    );
    set_volume_status(&h, &volume_id, "error").await;
    let error = h.call("alice", "POST", "/v3/snapshots", create(None)).await;
    assert_eq!(error.status, 400);
    set_volume_status(&h, &volume_id, "available").await;

    let id = forced.body["snapshot"]["id"].as_str().unwrap().to_string();
    let path = format!("/v3/snapshots/{id}");
    h.wait_status("alice", &path, "snapshot", "available").await;
    let other = latest.body["snapshot"]["id"].as_str().unwrap().to_string();
    h.wait_status(
        "alice",
        &format!("/v3/snapshots/{other}"),
        "snapshot",
        "available",
    )
    .await;

    // Actions.
    let action = format!("{path}/action");
    let reset = |status: &str| Some(json!({"os-reset_status": {"status": status}}));
    assert_eq!(
        h.call("alice", "POST", &action, reset("error_deleting"))
            .await
            .status,
        403
    );
    assert_eq!(
        h.call("bob", "POST", &action, reset("error_deleting"))
            .await
            .status,
        404
    );
    assert_eq!(
        h.call("admin", "POST", &action, reset("bogus"))
            .await
            .status,
        400
    );
    let wrong_status = h
        .call(
            "alice",
            "POST",
            &action,
            Some(json!({"os-update_snapshot_status": {"status": "error"}})),
        )
        .await;
    assert_eq!(wrong_status.status, 400);
    assert_eq!(
        wrong_status.body["badRequest"]["message"],
        "Snapshot status available not allowed for update_snapshot_status"
    );
    let unknown = h
        .call("alice", "POST", &action, Some(json!({"os-nope": {}})))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        h.call("admin", "POST", &action, reset("error_deleting"))
            .await
            .status,
        202
    );
    let shown = h.get("alice", &path).await;
    assert_eq!(shown.body["snapshot"]["status"], "error_deleting");
    let refused = h.call("alice", "DELETE", &path, None).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        "Invalid snapshot: Snapshot status must be available or error and must not be part of a group."
    );
    let force_delete = Some(json!({"os-force_delete": {}}));
    assert_eq!(
        h.call("alice", "POST", &action, force_delete.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        h.call("admin", "POST", &action, force_delete).await.status,
        202
    );
    h.wait_gone("alice", &path).await;
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v3/snapshots/{other}"), None)
            .await
            .status,
        202
    );
    h.wait_gone("alice", &format!("/v3/snapshots/{other}"))
        .await;
}

#[tokio::test]
async fn snapshot_quota_is_enforced() {
    let h = Harness::open("snap-quota").await;
    let volume = h.available_volume("alice", json!({"size": 2})).await;
    let volume_id = volume["id"].as_str().unwrap();
    let set = h
        .call(
            "admin",
            "PUT",
            "/v3/os-quota-sets/p1",
            Some(json!({"quota_set": {"snapshots": 1}})),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    available_snapshot(&h, "alice", volume_id, "one").await;
    let over = h
        .create_snapshot("alice", json!({"volume_id": volume_id}))
        .await;
    assert_eq!(over.status, 413, "{:?}", over.body);
    assert!(
        over.body["overLimit"]["message"]
            .as_str()
            .unwrap()
            .contains("snapshots")
    );
    let usage = h.get("alice", "/v3/os-quota-sets/p1?usage=true").await;
    assert_eq!(
        usage.body["quota_set"]["snapshots"],
        json!({"limit": 1, "in_use": 1, "reserved": 0})
    );
    assert_eq!(usage.body["quota_set"]["gigabytes"]["in_use"], 4);
    assert_eq!(
        usage.body["quota_set"]["snapshots___DEFAULT__"]["in_use"],
        1
    );

    // Gigabytes count the snapshot too.
    h.call(
        "admin",
        "PUT",
        "/v3/os-quota-sets/p1",
        Some(json!({"quota_set": {"snapshots": 10, "gigabytes": 5}})),
    )
    .await;
    let over = h
        .create_snapshot("alice", json!({"volume_id": volume_id}))
        .await;
    assert_eq!(over.status, 413, "{:?}", over.body);
}

#[tokio::test]
async fn snapshot_lists_filter_sort_and_page() {
    let h = Harness::open("snap-list").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let volume_id = volume["id"].as_str().unwrap();
    let mut by_name = Vec::new();
    for name in ["b", "a", "c"] {
        let s = available_snapshot(&h, "alice", volume_id, name).await;
        by_name.push((name, s["id"].as_str().unwrap().to_string()));
    }
    by_name.sort();
    let sorted: Vec<String> = by_name.iter().map(|(_, id)| id.clone()).collect();

    let list = h.get("alice", "/v3/snapshots?sort=name:asc").await;
    assert_eq!(ids(&list.body, "snapshots"), sorted);
    let page = h.get("alice", "/v3/snapshots?sort=name:asc&limit=2").await;
    assert_eq!(ids(&page.body, "snapshots"), sorted[..2].to_vec());
    let next = page.body["snapshots_links"][0]["href"].as_str().unwrap();
    assert!(
        next.starts_with("http://cloud:8080/volume/v3/snapshots?"),
        "{next}"
    );
    assert!(next.contains(&format!("marker={}", sorted[1])), "{next}");
    let rest = h
        .get(
            "alice",
            &format!("/v3/snapshots?sort=name:asc&limit=2&marker={}", sorted[1]),
        )
        .await;
    assert_eq!(ids(&rest.body, "snapshots"), sorted[2..].to_vec());
    assert!(rest.body.get("snapshots_links").is_none());
    let offset = h
        .get(
            "alice",
            "/v3/snapshots?sort_key=name&sort_dir=desc&offset=1",
        )
        .await;
    assert_eq!(
        ids(&offset.body, "snapshots"),
        vec![sorted[1].clone(), sorted[0].clone()]
    );
    let counted = h
        .get("alice", "/v3/snapshots/detail?with_count=true&limit=1")
        .await;
    assert_eq!(counted.body["count"], 3);
    assert!(
        counted.body["snapshots_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("/snapshots/detail?")
    );

    let named = h.get("alice", "/v3/snapshots?name=a").await;
    assert_eq!(ids(&named.body, "snapshots"), vec![by_name[0].1.clone()]);
    let meta = h
        .get("alice", "/v3/snapshots?metadata=%7B%27x%27%3A%27y%27%7D")
        .await;
    assert!(ids(&meta.body, "snapshots").is_empty());
    let by_volume = h
        .get(
            "alice",
            &format!("/v3/snapshots?volume_id={volume_id}&status=available"),
        )
        .await;
    assert_eq!(ids(&by_volume.body, "snapshots").len(), 3);
    let zone = h.get("alice", "/v3/snapshots?availability_zone=nova").await;
    assert_eq!(ids(&zone.body, "snapshots").len(), 3);

    // Filters a member may not use are refused from 3.31, dropped before.
    let refused = h.get("alice", "/v3/snapshots?project_id=p1").await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        "Invalid filters project_id are found in query options."
    );
    let old = h
        .call_at("3.30", "alice", "GET", "/v3/snapshots?project_id=p2", None)
        .await;
    assert_eq!(ids(&old.body, "snapshots").len(), 3);
    let tenants = h.get("alice", "/v3/snapshots?all_tenants=1").await;
    assert_eq!(ids(&tenants.body, "snapshots").len(), 3);
    let admin = h
        .get("admin", "/v3/snapshots?all_tenants=1&project_id=p1")
        .await;
    assert_eq!(ids(&admin.body, "snapshots").len(), 3);

    assert_eq!(h.get("alice", "/v3/snapshots?sort=size").await.status, 400);
    assert_eq!(
        h.get("alice", "/v3/snapshots?sort_dir=up").await.status,
        400
    );
    assert_eq!(h.get("alice", "/v3/snapshots?limit=-1").await.status, 400);
    let unknown_marker = format!("/v3/snapshots?marker={}", uuid::Uuid::new_v4());
    assert_eq!(h.get("alice", &unknown_marker).await.status, 404);
    let foreign_marker = format!("/v3/snapshots?marker={}", sorted[0]);
    assert_eq!(h.get("bob", &foreign_marker).await.status, 404);
}
