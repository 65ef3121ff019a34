//! The volumes API, its metadata and its actions, over the real `file` backend and manager.

use super::{Harness, ids};
use crate::db::write_tx;
use crate::model::Snapshot;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const GIB: u64 = 1 << 30;

fn volume_path(h: &Harness, id: &str) -> std::path::PathBuf {
    h.dir.join("volumes").join(format!("volume-{id}"))
}

/// Creates a volume as `token` (202) without waiting; returns its view.
async fn create(h: &Harness, token: &str, body: Value) -> Value {
    let reply = h.create_volume(token, body).await;
    assert_eq!(reply.status, 202, "create: {:?}", reply.body);
    reply.body["volume"].clone()
}

async fn wait_available(h: &Harness, token: &str, id: &str) -> Value {
    h.wait_status(token, &format!("/v3/volumes/{id}"), "volume", "available")
        .await
}

async fn action(h: &Harness, token: &str, id: &str, body: Value) -> super::Reply {
    h.call(
        token,
        "POST",
        &format!("/v3/volumes/{id}/action"),
        Some(body),
    )
    .await
}

/// Inserts an available snapshot of `volume` directly.
async fn insert_snapshot(h: &Harness, volume: &Value, status: &str) -> String {
    let snapshot = Snapshot {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume["id"].as_str().unwrap().into(),
        project_id: "p1".into(),
        user_id: "u-alice".into(),
        name: None,
        description: None,
        size: volume["size"].as_i64().unwrap(),
        status: status.into(),
        progress: "100%".into(),
        metadata: BTreeMap::new(),
        consumes_quota: true,
        created_at: ferrostack_store::now_rfc3339(),
        updated_at: None,
    };
    write_tx!(h.volumes.db, |tx| {
        async { tx.insert(&snapshot).await }.await
    })
    .unwrap();
    snapshot.id
}

#[tokio::test]
async fn a_blank_volume_is_created_available_and_shown_as_cinder_does() {
    let h = Harness::open("vol-create").await;
    let created = create(
        &h,
        "alice",
        json!({"size": 1, "name": "  data ", "description": null,
        "metadata": {"purpose": "test"}, "volume_type": null, "availability_zone": null,
        "snapshot_id": null, "source_volid": null, "imageRef": null, "multiattach": false}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "creating");
    assert_eq!(created["name"], "data");
    assert_eq!(created["bootable"], "false");
    assert_eq!(created["volume_type"], "__DEFAULT__");
    assert_eq!(created["availability_zone"], "nova");
    assert_eq!(created["updated_at"], Value::Null);
    assert_eq!(
        created["links"][0]["href"],
        format!("http://cloud:8080/volume/v3/volumes/{id}")
    );
    assert_eq!(
        created["links"][1]["href"],
        format!("http://cloud:8080/volume/volumes/{id}")
    );
    assert!(
        created.get("os-vol-tenant-attr:tenant_id").is_none(),
        "create answers no extension attributes"
    );
    let shown = wait_available(&h, "alice", &id).await;
    assert_eq!(shown["size"], 1);
    assert_eq!(shown["metadata"], json!({"purpose": "test"}));
    assert_eq!(shown["os-vol-tenant-attr:tenant_id"], "p1");
    assert_eq!(shown["attachments"], json!([]));
    assert_eq!(shown["encrypted"], false);
    assert_eq!(shown["replication_status"], "disabled");
    assert!(shown.get("os-vol-host-attr:host").is_none(), "{shown}");
    assert!(shown.get("migration_status").is_none());
    let created_at = shown["created_at"].as_str().unwrap();
    assert!(
        !created_at.ends_with('Z') && created_at.len() == 26,
        "{created_at}"
    );
    let as_admin = h.get("admin", &format!("/v3/volumes/{id}")).await.body["volume"].clone();
    assert_eq!(as_admin["os-vol-host-attr:host"], "storage1@file#file");
    assert_eq!(as_admin["os-vol-mig-status-attr:migstat"], Value::Null);
    assert_eq!(as_admin["migration_status"], Value::Null);
    let file = std::fs::metadata(volume_path(&h, &id)).unwrap();
    assert_eq!(file.len(), GIB);
    // The project-id form of the URL answers the same, with the project in the links.
    let prefixed = h
        .get("alice", &format!("/v3/p1-project-0000000000/volumes/{id}"))
        .await;
    assert_eq!(prefixed.status, 200);
}

#[tokio::test]
async fn create_requests_are_checked_like_cinder() {
    let h = Harness::open("vol-create-bad").await;
    for size in [json!("#$%"), json!(""), json!("-1"), json!(0), json!("0")] {
        let reply = h.create_volume("alice", json!({"size": size})).await;
        assert_eq!(reply.status, 400, "size {size}: {:?}", reply.body);
    }
    let hr = &h;
    let bad = |body: Value| async move { hr.create_volume("alice", body).await };
    assert_eq!(bad(json!({})).await.status, 400);
    let reply = bad(json!({"size": 1, "availability_zone": "elsewhere"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body["badRequest"]["message"],
        "Availability zone 'elsewhere' is invalid."
    );
    assert_eq!(
        bad(json!({"size": 1, "volume_type": uuid::Uuid::new_v4().to_string()}))
            .await
            .status,
        404
    );
    assert_eq!(
        bad(json!({"size": 1, "snapshot_id": uuid::Uuid::new_v4().to_string()}))
            .await
            .status,
        404
    );
    assert_eq!(
        bad(json!({"size": 1, "source_volid": uuid::Uuid::new_v4().to_string()}))
            .await
            .status,
        404
    );
    assert_eq!(
        bad(json!({"size": 1, "backup_id": uuid::Uuid::new_v4().to_string()}))
            .await
            .status,
        404
    );
    assert_eq!(
        bad(json!({"size": 1, "multiattach": true})).await.status,
        400
    );
    assert_eq!(
        bad(json!({"size": 1, "metadata": {"k": 1}})).await.status,
        400
    );
    assert_eq!(
        bad(json!({"size": 1, "name": "n".repeat(256)}))
            .await
            .status,
        400
    );
    assert_eq!(
        bad(json!({"size": 1, "unknown": 1})).await.status,
        400,
        "closed from 3.53"
    );
    let old = h
        .call_at(
            "3.0",
            "alice",
            "POST",
            "/v3/volumes",
            Some(json!({"volume": {"size": 1, "unknown": 1}})),
        )
        .await;
    assert_eq!(old.status, 202, "open before 3.53: {:?}", old.body);
    let reader = h.create_volume("reader", json!({"size": 1})).await;
    assert_eq!(reader.status, 403);
}

#[tokio::test]
async fn microversions_add_fields() {
    let h = Harness::open("vol-mv").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let path = format!("/v3/volumes/{}", volume["id"].as_str().unwrap());
    let old = h.call_at("3.0", "alice", "GET", &path, None).await.body["volume"].clone();
    for key in [
        "group_id",
        "service_uuid",
        "shared_targets",
        "volume_type_id",
        "consumes_quota",
        "provider_id",
    ] {
        assert!(old.get(key).is_none(), "{key} at 3.0: {old}");
    }
    let new = h.get("alice", &path).await.body["volume"].clone();
    assert_eq!(new["group_id"], Value::Null);
    assert_eq!(new["shared_targets"], false);
    assert!(new["service_uuid"].is_string());
    assert_eq!(new["consumes_quota"], true);
    assert!(new["volume_type_id"].is_string());
    assert!(
        new.get("provider_id").is_none(),
        "provider_id is for admins"
    );
    let admin = h.get("admin", &path).await.body["volume"].clone();
    assert_eq!(admin["provider_id"], Value::Null);
    assert_eq!(admin["cluster_name"], Value::Null);
    let summary = h
        .call_at("3.11", "alice", "GET", "/v3/volumes/summary", None)
        .await;
    assert_eq!(summary.status, 404);
    let summary = h.get("alice", "/v3/volumes/summary").await;
    assert_eq!(summary.status, 200);
    assert_eq!(
        summary.body["volume-summary"],
        json!({"total_count": 1, "total_size": 1, "metadata": {}})
    );
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let h = Harness::open("vol-list").await;
    let mut made = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let v = create(
            &h,
            "alice",
            json!({"size": i + 1, "name": name, "metadata": {"n": i.to_string()}}),
        )
        .await;
        made.push(v["id"].as_str().unwrap().to_string());
    }
    let bobs = create(&h, "bob", json!({"size": 1, "name": "a"})).await;
    for id in &made {
        wait_available(&h, "alice", id).await;
    }
    let list = h.get("alice", "/v3/volumes").await;
    assert_eq!(
        ids(&list.body, "volumes"),
        [made[2].clone(), made[1].clone(), made[0].clone()],
        "newest first"
    );
    assert_eq!(
        list.body["volumes"][0].as_object().unwrap().len(),
        3,
        "summary: id, name, links"
    );
    let filtered = h.get("alice", "/v3/volumes/detail?name=b").await;
    assert_eq!(ids(&filtered.body, "volumes"), [made[1].clone()]);
    let by_meta = h
        .get(
            "alice",
            "/v3/volumes/detail?metadata=%7B%22n%22%3A%222%22%7D",
        )
        .await;
    assert_eq!(ids(&by_meta.body, "volumes"), [made[2].clone()]);
    let by_size = h.get("alice", "/v3/volumes?size=2&status=available").await;
    assert_eq!(ids(&by_size.body, "volumes"), [made[1].clone()]);
    assert_eq!(
        h.get("alice", "/v3/volumes?status=null").await.body["volumes"],
        json!([])
    );
    assert_eq!(
        h.get("alice", "/v3/volumes?project_id=p2").await.status,
        400,
        "not a user filter"
    );
    let sorted = h.get("alice", "/v3/volumes?sort=size:asc").await;
    assert_eq!(ids(&sorted.body, "volumes"), made);
    let legacy = h
        .get("alice", "/v3/volumes?sort_key=name&sort_dir=desc")
        .await;
    assert_eq!(
        ids(&legacy.body, "volumes"),
        [made[2].clone(), made[1].clone(), made[0].clone()]
    );
    assert_eq!(h.get("alice", "/v3/volumes?sort=bogus").await.status, 400);

    let page = h
        .get(
            "alice",
            "/v3/volumes/detail?sort=size:asc&limit=2&with_count=true",
        )
        .await;
    assert_eq!(ids(&page.body, "volumes"), made[..2]);
    assert_eq!(page.body["count"], 3);
    let next = page.body["volumes_links"][0]["href"].as_str().unwrap();
    assert!(
        next.starts_with("http://cloud:8080/volume/v3/volumes/detail?"),
        "{next}"
    );
    assert!(next.contains(&format!("marker={}", made[1])), "{next}");
    let rest = h
        .get(
            "alice",
            &format!(
                "/v3/volumes/detail?sort=size:asc&limit=2&marker={}",
                made[1]
            ),
        )
        .await;
    assert_eq!(ids(&rest.body, "volumes"), made[2..]);
    assert!(rest.body.get("volumes_links").is_none());
    let unknown = h
        .get(
            "alice",
            &format!("/v3/volumes?marker={}", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(
        unknown.status, 404,
        "Cinder looks the marker up as a volume"
    );
    let foreign = h
        .get(
            "alice",
            &format!("/v3/volumes?marker={}", bobs["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(foreign.status, 404);

    let everyone = h.get("admin", "/v3/volumes?all_tenants=1").await;
    assert_eq!(everyone.body["volumes"].as_array().unwrap().len(), 4);
    let p2 = h
        .get("admin", "/v3/volumes/detail?all_tenants=1&project_id=p2")
        .await;
    assert_eq!(
        ids(&p2.body, "volumes"),
        [bobs["id"].as_str().unwrap().to_string()]
    );
    let ignored = h.get("bob", "/v3/volumes?all_tenants=1").await;
    assert_eq!(
        ignored.body["volumes"].as_array().unwrap().len(),
        1,
        "all_tenants is ignored for others"
    );
    let own_only = h.get("admin", "/v3/volumes").await;
    assert_eq!(own_only.body["volumes"], json!([]));
    let summary = h.get("alice", "/v3/volumes/summary").await.body["volume-summary"].clone();
    assert_eq!(summary["total_count"], 3);
    assert_eq!(summary["total_size"], 6);
    assert_eq!(summary["metadata"]["n"], json!(["0", "1", "2"]));
}

#[tokio::test]
async fn other_projects_see_nothing_and_readers_change_nothing() {
    let h = Harness::open("vol-isolation").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    let path = format!("/v3/volumes/{id}");
    let shown = h.get("bob", &path).await;
    assert_eq!(shown.status, 404);
    assert_eq!(
        shown.body["itemNotFound"]["message"],
        format!("Volume {id} could not be found.")
    );
    assert_eq!(
        h.call("bob", "PUT", &path, Some(json!({"volume": {"name": "x"}})))
            .await
            .status,
        404
    );
    assert_eq!(h.call("bob", "DELETE", &path, None).await.status, 404);
    assert_eq!(h.get("bob", &format!("{path}/metadata")).await.status, 404);
    assert_eq!(
        action(&h, "bob", id, json!({"os-extend": {"new_size": 2}}))
            .await
            .status,
        404
    );
    assert_eq!(h.get("reader", &path).await.status, 200);
    assert_eq!(
        h.call(
            "reader",
            "PUT",
            &path,
            Some(json!({"volume": {"name": "x"}}))
        )
        .await
        .status,
        403
    );
    let denied = h.call("reader", "DELETE", &path, None).await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.body["forbidden"]["message"],
        "Policy doesn't allow volume:delete to be performed."
    );
    let meta = h
        .call(
            "reader",
            "POST",
            &format!("{path}/metadata"),
            Some(json!({"metadata": {"a": "b"}})),
        )
        .await;
    assert_eq!(meta.status, 403);
    assert_eq!(
        action(&h, "reader", id, json!({"os-extend": {"new_size": 2}}))
            .await
            .status,
        403
    );
    assert_eq!(h.get("admin", &path).await.status, 200);
}

#[tokio::test]
async fn update_and_metadata_follow_cinder() {
    let h = Harness::open("vol-update").await;
    let volume = h
        .available_volume("alice", json!({"size": 1, "metadata": {"a": "1"}}))
        .await;
    let path = format!("/v3/volumes/{}", volume["id"].as_str().unwrap());
    let updated = h
        .call("alice", "PUT", &path, Some(json!({"volume": {"name": "new", "display_description": "d", "metadata": {"b": "2"}}})))
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["volume"]["name"], "new");
    assert_eq!(updated.body["volume"]["description"], "d");
    assert_eq!(updated.body["volume"]["metadata"], json!({"b": "2"}));
    assert!(updated.body["volume"]["updated_at"].is_string());
    assert_eq!(h.call("alice", "PUT", &path, None).await.status, 400);
    assert_eq!(
        h.call("alice", "PUT", &path, Some(json!({"volume": {}})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.call_at("3.0", "alice", "PUT", &path, Some(json!({"volume": {}})))
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("alice", "PUT", &path, Some(json!({"volume": {"size": 3}})))
            .await
            .status,
        400
    );

    let meta = format!("{path}/metadata");
    let merged = h
        .call(
            "alice",
            "POST",
            &meta,
            Some(json!({"metadata": {"c": "3"}})),
        )
        .await;
    assert_eq!(merged.status, 200);
    assert_eq!(merged.body["metadata"], json!({"b": "2", "c": "3"}));
    let replaced = h
        .call("alice", "PUT", &meta, Some(json!({"metadata": {"d": "4"}})))
        .await;
    assert_eq!(replaced.body["metadata"], json!({"d": "4"}));
    assert_eq!(
        h.get("alice", &meta).await.body,
        json!({"metadata": {"d": "4"}})
    );
    let item = h
        .call(
            "alice",
            "PUT",
            &format!("{meta}/e"),
            Some(json!({"meta": {"e": "5"}})),
        )
        .await;
    assert_eq!(item.status, 200);
    assert_eq!(item.body, json!({"meta": {"e": "5"}}));
    let mismatch = h
        .call(
            "alice",
            "PUT",
            &format!("{meta}/e"),
            Some(json!({"meta": {"f": "5"}})),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(
        mismatch.body["badRequest"]["message"],
        "Request body and URI mismatch"
    );
    assert_eq!(
        h.get("alice", &format!("{meta}/e")).await.body,
        json!({"meta": {"e": "5"}})
    );
    assert_eq!(
        h.call("alice", "DELETE", &format!("{meta}/e"), None)
            .await
            .status,
        200
    );
    let missing = h.get("alice", &format!("{meta}/e")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        h.call("alice", "DELETE", &format!("{meta}/e"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.get("alice", &meta).await.body,
        json!({"metadata": {"d": "4"}})
    );
}

#[tokio::test]
async fn delete_removes_the_volume_and_its_file() {
    let h = Harness::open("vol-delete").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    assert!(volume_path(&h, id).exists());
    let reply = h
        .call("alice", "DELETE", &format!("/v3/volumes/{id}"), None)
        .await;
    assert_eq!(reply.status, 202);
    h.wait_gone("alice", &format!("/v3/volumes/{id}")).await;
    assert!(!volume_path(&h, id).exists());
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v3/volumes/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn delete_with_snapshots_needs_cascade() {
    let h = Harness::open("vol-delete-snaps").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    insert_snapshot(&h, &volume, "available").await;
    let refused = h
        .call("alice", "DELETE", &format!("/v3/volumes/{id}"), None)
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        "Invalid volume: Volume status must be available or error or error_restoring or \
         error_extending or error_managing and must not be migrating, attached, belong to a \
         group, have snapshots, awaiting a transfer, or be disassociated from snapshots after \
         volume transfer."
    );
    let forced = h
        .call_at(
            "3.23",
            "alice",
            "DELETE",
            &format!("/v3/volumes/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(forced.status, 403, "force is for admins");
    let cascade = h
        .call(
            "alice",
            "DELETE",
            &format!("/v3/volumes/{id}?cascade=true"),
            None,
        )
        .await;
    assert_eq!(cascade.status, 202, "{:?}", cascade.body);
    h.wait_gone("alice", &format!("/v3/volumes/{id}")).await;
    let left: Vec<Snapshot> = h.volumes.db.select("volume_id = $1", &[id]).await.unwrap();
    assert!(left.is_empty());
}

#[tokio::test]
async fn extend_grows_the_file() {
    let h = Harness::open("vol-extend").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    let same = action(&h, "alice", id, json!({"os-extend": {"new_size": 1}})).await;
    assert_eq!(same.status, 400);
    assert_eq!(
        same.body["badRequest"]["message"],
        "Invalid input received: New size for extend must be greater than current size. (current: 1, extended: 1)."
    );
    let reply = action(&h, "alice", id, json!({"os-extend": {"new_size": "2"}})).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let mut extended = Value::Null;
    for _ in 0..600 {
        extended = h.get("alice", &format!("/v3/volumes/{id}")).await.body["volume"].clone();
        if extended["status"] == "available" && extended["size"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(extended["size"], 2, "{extended}");
    assert_eq!(
        std::fs::metadata(volume_path(&h, id)).unwrap().len(),
        2 * GIB
    );
    assert_eq!(
        action(&h, "alice", id, json!({"os-extend": {}}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn quota_limits_answer_413() {
    let h = Harness::open("vol-quota").await;
    write_tx!(h.volumes.db, |tx| {
        async {
            tx.exec("INSERT INTO vol_quotas (project_id, resource, hard_limit) VALUES ($1, 'gigabytes', 2)", &["p1"])
                .await
        }
        .await
    })
    .unwrap();
    let reply = h.create_volume("alice", json!({"size": 3})).await;
    assert_eq!(reply.status, 413, "{:?}", reply.body);
    let volume = h.available_volume("alice", json!({"size": 2})).await;
    let more = h.create_volume("alice", json!({"size": 1})).await;
    assert_eq!(more.status, 413);
    let extend = action(
        &h,
        "alice",
        volume["id"].as_str().unwrap(),
        json!({"os-extend": {"new_size": 3}}),
    )
    .await;
    assert_eq!(extend.status, 413);
    assert_eq!(h.create_volume("bob", json!({"size": 3})).await.status, 202);
}

#[tokio::test]
async fn a_volume_from_an_image_is_bootable_with_image_metadata() {
    let h = Harness::open("vol-image").await;
    let data = h.dir.join("image.raw");
    std::fs::create_dir_all(&h.dir).unwrap();
    std::fs::write(&data, vec![7u8; 1 << 20]).unwrap();
    let image_id = uuid::Uuid::new_v4().to_string();
    h.images.add(&image_id, "raw", &data, 0);
    let created = create(&h, "alice", json!({"size": 1, "imageRef": image_id})).await;
    assert_eq!(created["bootable"], "true");
    let id = created["id"].as_str().unwrap();
    let shown = wait_available(&h, "alice", id).await;
    assert_eq!(shown["bootable"], "true");
    let meta = &shown["volume_image_metadata"];
    assert_eq!(meta["image_id"], image_id);
    assert_eq!(meta["os_distro"], "ferrostack");
    assert_eq!(meta["disk_format"], "raw");
    let head = std::fs::read(volume_path(&h, id)).unwrap();
    assert_eq!(&head[..16], &[7u8; 16]);
    let via_image_id = create(&h, "alice", json!({"size": 1, "image_id": image_id})).await;
    assert_eq!(via_image_id["bootable"], "true");

    let big_id = uuid::Uuid::new_v4().to_string();
    h.images.add(&big_id, "raw", &data, 5);
    let too_small = h
        .create_volume("alice", json!({"size": 1, "imageRef": big_id}))
        .await;
    assert_eq!(too_small.status, 400);
    assert_eq!(
        too_small.body["badRequest"]["message"],
        "Invalid input received: Volume size 1GB cannot be smaller than the image minDisk size 5GB."
    );
    let unknown = h
        .create_volume(
            "alice",
            json!({"size": 1, "imageRef": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    h.images
        .images
        .lock()
        .unwrap()
        .get_mut(&big_id)
        .unwrap()
        .0
        .status = "deactivated".into();
    let inactive = h
        .create_volume("alice", json!({"size": 5, "imageRef": big_id}))
        .await;
    assert_eq!(inactive.status, 400);
    let both = h
        .create_volume(
            "alice",
            json!({"size": 1, "imageRef": image_id, "source_volid": id}),
        )
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(
        both.body["badRequest"]["message"],
        "Invalid input received: May specify only one of backup, imageRef, snapshot, source volume"
    );
    // Image metadata actions.
    let set = action(
        &h,
        "alice",
        id,
        json!({"os-set_image_metadata": {"metadata": {"hw_disk_bus": "scsi"}}}),
    )
    .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.body["metadata"]["hw_disk_bus"], "scsi");
    let unset = action(
        &h,
        "alice",
        id,
        json!({"os-unset_image_metadata": {"key": "os_distro"}}),
    )
    .await;
    assert_eq!(unset.status, 200);
    let shown = action(&h, "alice", id, json!({"os-show_image_metadata": null})).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body["metadata"].get("os_distro").is_none());
    assert_eq!(shown.body["metadata"]["hw_disk_bus"], "scsi");
    let missing = action(
        &h,
        "alice",
        id,
        json!({"os-unset_image_metadata": {"key": "os_distro"}}),
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_clone_copies_the_source() {
    let h = Harness::open("vol-clone").await;
    let source = h.available_volume("alice", json!({"size": 2})).await;
    let source_id = source["id"].as_str().unwrap();
    let clone = create(&h, "alice", json!({"source_volid": source_id})).await;
    assert_eq!(clone["size"], 2, "the source's size by default");
    assert_eq!(clone["source_volid"], source_id);
    let clone = wait_available(&h, "alice", clone["id"].as_str().unwrap()).await;
    assert_eq!(
        std::fs::metadata(volume_path(&h, clone["id"].as_str().unwrap()))
            .unwrap()
            .len(),
        2 * GIB
    );
    let smaller = h
        .create_volume("alice", json!({"size": 1, "source_volid": source_id}))
        .await;
    assert_eq!(smaller.status, 400);
    let foreign = h
        .create_volume("bob", json!({"source_volid": source_id}))
        .await;
    assert_eq!(foreign.status, 404);
    // From a snapshot: the snapshot's size at least.
    let snapshot = insert_snapshot(&h, &source, "available").await;
    let small = h
        .create_volume("alice", json!({"size": 1, "snapshot_id": snapshot}))
        .await;
    assert_eq!(small.status, 400);
    assert_eq!(
        small.body["badRequest"]["message"],
        "Invalid input received: Volume size '1'GB cannot be smaller than the snapshot size 2GB. They must be >= original snapshot size."
    );
}

#[tokio::test]
async fn bootable_readonly_and_unknown_actions() {
    let h = Harness::open("vol-flags").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    let path = format!("/v3/volumes/{id}");
    assert_eq!(
        action(
            &h,
            "alice",
            id,
            json!({"os-set_bootable": {"bootable": "true"}})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.get("alice", &path).await.body["volume"]["bootable"],
        "true"
    );
    assert_eq!(
        action(
            &h,
            "alice",
            id,
            json!({"os-set_bootable": {"bootable": false}})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.get("alice", &path).await.body["volume"]["bootable"],
        "false"
    );
    assert_eq!(
        action(
            &h,
            "alice",
            id,
            json!({"os-set_bootable": {"bootable": "maybe"}})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        action(
            &h,
            "alice",
            id,
            json!({"os-update_readonly_flag": {"readonly": true}})
        )
        .await
        .status,
        202
    );
    assert_eq!(
        h.get("alice", &path).await.body["volume"]["metadata"]["readonly"],
        "True"
    );
    let unknown = action(&h, "alice", id, json!({"os-frobnicate": {}})).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["badRequest"]["message"],
        "There is no such action: os-frobnicate"
    );
}

#[tokio::test]
async fn reset_status_and_force_delete_are_for_admins() {
    let h = Harness::open("vol-admin").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    let path = format!("/v3/volumes/{id}");
    let reset = json!({"os-reset_status": {"status": "error"}});
    assert_eq!(action(&h, "alice", id, reset.clone()).await.status, 403);
    assert_eq!(action(&h, "bob", id, reset.clone()).await.status, 404);
    assert_eq!(action(&h, "admin", id, reset).await.status, 202);
    assert_eq!(
        h.get("alice", &path).await.body["volume"]["status"],
        "error"
    );
    let bogus = action(
        &h,
        "admin",
        id,
        json!({"os-reset_status": {"status": "bogus"}}),
    )
    .await;
    assert_eq!(bogus.status, 400);
    assert_eq!(
        action(&h, "admin", id, json!({"os-reset_status": {}}))
            .await
            .status,
        400
    );
    let in_use = action(
        &h,
        "admin",
        id,
        json!({"os-reset_status": {"status": "in-use"}}),
    )
    .await;
    assert_eq!(in_use.status, 400, "no attachments");
    assert_eq!(
        action(
            &h,
            "admin",
            id,
            json!({"os-reset_status": {"status": "deleting"}})
        )
        .await
        .status,
        400
    );
    // An extend is refused in error; os-force_delete removes it anyway.
    assert_eq!(
        action(&h, "alice", id, json!({"os-extend": {"new_size": 2}}))
            .await
            .status,
        400
    );
    assert_eq!(
        action(&h, "alice", id, json!({"os-force_delete": {}}))
            .await
            .status,
        403
    );
    assert_eq!(
        action(&h, "admin", id, json!({"os-force_delete": {}}))
            .await
            .status,
        202
    );
    h.wait_gone("alice", &path).await;
}

#[tokio::test]
async fn upload_to_image_creates_and_fills_an_image() {
    let h = Harness::open("vol-upload").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    let reply = action(
        &h,
        "alice",
        id,
        json!({"os-volume_upload_image": {"image_name": "from-volume"}}),
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let upload = &reply.body["os-volume_upload_image"];
    assert_eq!(upload["status"], "uploading");
    assert_eq!(upload["disk_format"], "raw");
    assert_eq!(upload["container_format"], "bare");
    assert_eq!(upload["image_name"], "from-volume");
    assert_eq!(upload["volume_type"]["name"], "__DEFAULT__");
    let image_id = upload["image_id"].as_str().unwrap().to_string();
    wait_available(&h, "alice", id).await;
    let image = h
        .images
        .images
        .lock()
        .unwrap()
        .get(&image_id)
        .cloned()
        .unwrap();
    assert_eq!(image.0.status, "active");
    assert_eq!(image.0.size, Some(GIB as i64));
    let public = action(
        &h,
        "alice",
        id,
        json!({"os-volume_upload_image": {"image_name": "p", "visibility": "public"}}),
    )
    .await;
    assert_eq!(public.status, 403);
    let bad = action(
        &h,
        "alice",
        id,
        json!({"os-volume_upload_image": {"image_name": "x", "disk_format": "iso"}}),
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn an_in_use_volume_is_extended_from_3_42() {
    let h = Harness::open("vol-extend-in-use").await;
    let volume = h.available_volume("alice", json!({"size": 1})).await;
    let id = volume["id"].as_str().unwrap();
    write_tx!(h.volumes.db, |tx| {
        async {
            let mut v = tx.lock::<crate::model::Volume>(id).await?.unwrap();
            v.status = "in-use".into();
            tx.save(&v).await
        }
        .await
    })
    .unwrap();
    let path = format!("/v3/volumes/{id}/action");
    let body = json!({"os-extend": {"new_size": 2}});
    let old = h
        .call_at("3.41", "alice", "POST", &path, Some(body.clone()))
        .await;
    assert_eq!(old.status, 400, "{:?}", old.body);
    assert!(
        old.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("must be '{'status': 'available'}'"),
        "{:?}",
        old.body
    );
    let new = h.call_at("3.42", "alice", "POST", &path, Some(body)).await;
    assert_eq!(new.status, 202, "{:?}", new.body);
    let shown = h
        .wait_status("alice", &format!("/v3/volumes/{id}"), "volume", "in-use")
        .await;
    assert_eq!(shown["size"], 2);
}
