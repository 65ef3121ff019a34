//! QoS specs: CRUD (admins only), keys, and associations with volume types.

use super::{Harness, ids};
use serde_json::json;

#[tokio::test]
async fn qos_specs_crud_and_associations() {
    let h = Harness::open("qos").await;
    let body =
        json!({"qos_specs": {"name": " fast ", "consumer": "front-end", "total_iops_sec": "1000"}});
    let created = h
        .call("admin", "POST", "/v3/qos-specs", Some(body.clone()))
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let qos = &created.body["qos_specs"];
    assert_eq!(qos["name"], "fast");
    assert_eq!(qos["consumer"], "front-end");
    assert_eq!(qos["specs"], json!({"total_iops_sec": "1000"}));
    let id = qos["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["links"][0]["rel"], "self");
    assert!(
        created.body["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/qos-specs/{id}"))
    );
    let path = format!("/v3/qos-specs/{id}");

    assert_eq!(
        h.call("admin", "POST", "/v3/qos-specs", Some(body.clone()))
            .await
            .status,
        409
    );
    assert_eq!(
        h.call("alice", "POST", "/v3/qos-specs", Some(body))
            .await
            .status,
        403
    );
    let bad_consumer = json!({"qos_specs": {"name": "x", "consumer": "middle"}});
    assert_eq!(
        h.call("admin", "POST", "/v3/qos-specs", Some(bad_consumer))
            .await
            .status,
        400
    );
    let default_consumer = h
        .call(
            "admin",
            "POST",
            "/v3/qos-specs",
            Some(json!({"qos_specs": {"name": "slow"}})),
        )
        .await;
    assert_eq!(default_consumer.body["qos_specs"]["consumer"], "back-end");
    let slow = default_consumer.body["qos_specs"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(h.get("alice", "/v3/qos-specs").await.status, 403);
    assert_eq!(h.get("alice", &path).await.status, 403);
    let list = h.get("admin", "/v3/qos-specs?sort=name:asc").await;
    assert_eq!(ids(&list.body, "qos_specs"), vec![id.clone(), slow.clone()]);
    assert!(list.body.get("qos_specs_links").is_none());
    let filtered = h.get("admin", "/v3/qos-specs?name=slow").await;
    assert_eq!(ids(&filtered.body, "qos_specs"), vec![slow.clone()]);
    assert_eq!(
        h.get("admin", &format!("/v3/qos-specs/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        404
    );

    // Keys.
    let set = h
        .call(
            "admin",
            "PUT",
            &path,
            Some(json!({"qos_specs": {"read_iops_sec": "10", "consumer": "both"}})),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(
        set.body,
        json!({"qos_specs": {"read_iops_sec": "10", "consumer": "both"}})
    );
    let shown = h.get("admin", &path).await;
    assert_eq!(shown.body["qos_specs"]["consumer"], "both");
    assert_eq!(
        shown.body["qos_specs"]["specs"],
        json!({"total_iops_sec": "1000", "read_iops_sec": "10"})
    );
    let unset = h
        .call(
            "admin",
            "PUT",
            &format!("{path}/delete_keys"),
            Some(json!({"keys": ["read_iops_sec", "nope"]})),
        )
        .await;
    assert_eq!(unset.status, 404);
    assert_eq!(
        h.get("admin", &path).await.body["qos_specs"]["specs"],
        json!({"total_iops_sec": "1000"})
    );
    let unset = h
        .call(
            "admin",
            "PUT",
            &format!("{path}/delete_keys"),
            Some(json!({"keys": ["total_iops_sec"]})),
        )
        .await;
    assert_eq!(unset.status, 202);

    // Associations.
    let default = h.get("admin", "/v3/types/default").await;
    let type_id = default.body["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.get("admin", &format!("{path}/associate")).await.status,
        400
    );
    let unknown = h
        .get(
            "admin",
            &format!("{path}/associate?vol_type_id={}", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let associate = format!("{path}/associate?vol_type_id={type_id}");
    assert_eq!(h.get("alice", &associate).await.status, 403);
    assert_eq!(h.get("admin", &associate).await.status, 202);
    assert_eq!(
        h.get("admin", &format!("{path}/associations")).await.body,
        json!({"qos_associations": [{"association_type": "volume_type", "name": "__DEFAULT__", "id": type_id}]})
    );
    assert_eq!(
        h.get("admin", "/v3/types/default").await.body["volume_type"]["qos_specs_id"],
        id
    );
    let other = h
        .get(
            "admin",
            &format!("/v3/qos-specs/{slow}/associate?vol_type_id={type_id}"),
        )
        .await;
    assert_eq!(other.status, 400);

    let in_use = h.call("admin", "DELETE", &path, None).await;
    assert_eq!(in_use.status, 400);
    assert_eq!(
        in_use.body["badRequest"]["message"],
        "Qos specs still in use."
    );
    assert_eq!(
        h.get(
            "admin",
            &format!("{path}/disassociate?vol_type_id={type_id}")
        )
        .await
        .status,
        202
    );
    assert!(
        h.get("admin", "/v3/types/default").await.body["volume_type"]["qos_specs_id"].is_null()
    );
    assert_eq!(h.get("admin", &associate).await.status, 202);
    assert_eq!(
        h.get("admin", &format!("{path}/disassociate_all"))
            .await
            .status,
        202
    );
    assert_eq!(
        h.get("admin", &format!("{path}/associations")).await.body,
        json!({"qos_associations": []})
    );

    assert_eq!(h.get("admin", &associate).await.status, 202);
    assert_eq!(
        h.call("admin", "DELETE", &format!("{path}?force=true"), None)
            .await
            .status,
        202
    );
    assert_eq!(h.get("admin", &path).await.status, 404);
    assert!(
        h.get("admin", "/v3/types/default").await.body["volume_type"]["qos_specs_id"].is_null()
    );
    assert_eq!(
        h.call("admin", "DELETE", &format!("/v3/qos-specs/{slow}"), None)
            .await
            .status,
        202
    );
}
