//! Host aggregates through the API.

use super::tests::Harness;
use serde_json::json;

#[tokio::test]
async fn aggregates_group_hosts_and_define_zones() {
    let h = Harness::open("aggregates").await;
    for host in ["h1", "h2"] {
        crate::db::nodes::testing::heartbeat(
            &h.compute.store,
            host,
            &uuid::Uuid::new_v4().to_string(),
            4,
            4096,
            40,
            &ferrostack_store::now_rfc3339(),
        )
        .await
        .unwrap();
    }
    let create = |name: &str, az: Option<&str>| {
        let mut a = json!({"name": name});
        if let Some(z) = az {
            a["availability_zone"] = json!(z);
        }
        h.call(
            "admin",
            "POST",
            "/v2.1/os-aggregates",
            "2.41",
            Some(json!({"aggregate": a})),
        )
    };
    let r = create("rack1", Some("az1")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["aggregate"]["id"].as_i64().unwrap();
    assert_eq!(r.body["aggregate"]["availability_zone"], "az1");
    assert!(
        r.body["aggregate"].get("hosts").is_none(),
        "create answers without hosts"
    );
    assert!(r.body["aggregate"]["uuid"].is_string());
    assert_eq!(create("rack1", None).await.status, 409);
    assert_eq!(
        h.call("alice", "GET", "/v2.1/os-aggregates", "2.1", None)
            .await
            .status,
        403
    );
    let act = |agg: i64, body: serde_json::Value| {
        let path = format!("/v2.1/os-aggregates/{agg}/action");
        let h = &h;
        async move { h.call("admin", "POST", &path, "2.1", Some(body)).await }
    };
    let r = act(id, json!({"add_host": {"host": "h1"}})).await;
    assert_eq!(r.body["aggregate"]["hosts"], json!(["h1"]));
    assert_eq!(
        act(id, json!({"add_host": {"host": "h1"}})).await.status,
        409
    );
    assert_eq!(
        act(id, json!({"add_host": {"host": "nope"}})).await.status,
        404
    );
    // A host cannot be in two zones.
    let other = create("rack2", Some("az2")).await.body["aggregate"]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        act(other, json!({"add_host": {"host": "h1"}})).await.status,
        400
    );
    assert_eq!(
        act(other, json!({"add_host": {"host": "h2"}})).await.status,
        200
    );
    let r = act(
        id,
        json!({"set_metadata": {"metadata": {"ssd": "true", "availability_zone": null}}}),
    )
    .await;
    assert_eq!(r.body["aggregate"]["metadata"], json!({"ssd": "true"}));
    assert_eq!(
        h.call(
            "admin",
            "DELETE",
            &format!("/v2.1/os-aggregates/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        400,
        "an aggregate with hosts cannot be deleted"
    );
    assert_eq!(
        act(id, json!({"remove_host": {"host": "h1"}})).await.status,
        200
    );
    assert_eq!(
        act(id, json!({"remove_host": {"host": "h1"}})).await.status,
        404
    );
    assert_eq!(
        h.call(
            "admin",
            "DELETE",
            &format!("/v2.1/os-aggregates/{id}"),
            "2.1",
            None
        )
        .await
        .status,
        200
    );
    let list = h
        .call("admin", "GET", "/v2.1/os-aggregates", "2.1", None)
        .await;
    assert_eq!(list.body["aggregates"].as_array().unwrap().len(), 1);
    assert!(
        list.body["aggregates"][0].get("uuid").is_none(),
        "uuid from 2.41"
    );
}
