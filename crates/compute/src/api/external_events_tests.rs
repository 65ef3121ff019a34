//! `POST /os-server-external-events` in process: servers written straight to the store (on a
//! host or not yet), the hosts' agent queues consumed from the bus to see what is cast.

use super::tests::{Harness, Reply};
use crate::db::instances::{self as idb, FlavorCopy, Instance, InstanceData, NewAction};
use crate::rpc::{self, AgentRequest, ExternalEvent, agent_queue};
use axum::body::{Body, to_bytes};
use axum::http::Request;
use ferrostack_api::testing::{caller, context, standard_callers};
use ferrostack_bus::QueueConsumer;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

const PATH: &str = "/v2.1/os-server-external-events";

/// Writes a live server of project `p1` on `host` (`None`: not placed yet); returns its uuid.
async fn add_server(h: &Harness, host: Option<&str>) -> String {
    let now = ferrostack_store::now_rfc3339();
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut rows = [Instance {
        id: 0,
        uuid: uuid.clone(),
        project_id: "p1".into(),
        user_id: "u-alice".into(),
        host: host.map(String::from),
        vm_state: if host.is_some() { "active" } else { "building" }.into(),
        task_state: if host.is_some() {
            None
        } else {
            Some("scheduling".into())
        },
        power_state: i64::from(host.is_some()),
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
                vcpus: 1,
                memory_mb: 512,
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
        user_id: "u-alice",
        project_id: "p1",
        now: &now,
    };
    idb::create_instances(&h.compute.store, &mut rows, unlimited, None, &action)
        .await
        .unwrap()
        .unwrap();
    uuid
}

/// Posts `body` as `token` at microversion `mv`. Besides the standard callers, `neutron` is
/// a service user (role `service` only), as Neutron's nova notifier authenticates.
async fn post(h: &Harness, token: &str, mv: &str, body: Value) -> Reply {
    let callers =
        standard_callers().with("neutron", caller("u-neutron", "p-service", &["service"]));
    let ctx = context(callers, &crate::default_rules());
    let router = crate::api::router(h.compute.clone()).layer(axum::Extension(ctx));
    let mut request = Request::builder()
        .method("POST")
        .uri(PATH)
        .header("x-auth-token", token)
        .header("openstack-api-version", format!("compute {mv}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ferrostack_api::RequestId("req-events".into()));
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn event(name: &str, server: &str, extra: Value) -> Value {
    let mut e = json!({"name": name, "server_uuid": server});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

/// Consumes `host`'s agent queue, as the host's agent does.
async fn agent(h: &Harness, host: &str) -> Box<dyn QueueConsumer> {
    h.compute.bus.consume(&agent_queue(host)).await.unwrap()
}

/// The next request cast to an agent: it must be external events.
async fn next_events(queue: &mut Box<dyn QueueConsumer>) -> Vec<ExternalEvent> {
    let delivery = tokio::time::timeout(Duration::from_secs(5), queue.next())
        .await
        .expect("a cast to the agent")
        .expect("an open bus");
    match rpc::decode::<AgentRequest>(&delivery.payload).unwrap() {
        AgentRequest::ExternalEvents { events } => events,
        other => panic!("unexpected agent request {other:?}"),
    }
}

/// Nothing more was cast to the agent.
async fn nothing_more(queue: &mut Box<dyn QueueConsumer>) {
    let more = tokio::time::timeout(Duration::from_millis(100), queue.next()).await;
    assert!(more.is_err(), "unexpected cast");
}

fn codes(reply: &Reply) -> Vec<i64> {
    reply.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn external_events_need_the_service_role_or_admin() {
    let h = Harness::open("external-events-policy").await;
    let server = add_server(&h, Some("host-a")).await;
    let mut queue = agent(&h, "host-a").await;
    let body = json!({"events": [event("network-changed", &server, json!({}))]});
    for who in ["alice", "bob", "reader"] {
        let reply = post(&h, who, "2.1", body.clone()).await;
        assert_eq!(reply.status, 403, "{who}: {:?}", reply.body);
        assert_eq!(reply.body["forbidden"]["code"], 403);
        assert!(reply.body["forbidden"]["message"].is_string());
    }
    nothing_more(&mut queue).await;
    // Nova validates the body before it checks the policy.
    let reply = post(&h, "alice", "2.1", json!({"events": []})).await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    for who in ["neutron", "admin"] {
        let reply = post(&h, who, "2.1", body.clone()).await;
        assert_eq!(reply.status, 200, "{who}: {:?}", reply.body);
        assert_eq!(next_events(&mut queue).await.len(), 1);
    }
    nothing_more(&mut queue).await;
}

#[tokio::test]
async fn external_events_bodies_follow_nova_schema_by_microversion() {
    let h = Harness::open("external-events-schema").await;
    let server = add_server(&h, Some("host-a")).await;
    let _queue = agent(&h, "host-a").await;
    let ok = |name: &str| event(name, &server, json!({"tag": "t"}));
    let bad = [
        ("2.1", json!({})),
        ("2.1", json!({"events": []})),
        ("2.1", json!({"events": {}})),
        (
            "2.1",
            json!({"events": [ok("network-changed")], "extra": 1}),
        ),
        ("2.1", json!({"events": [ok("no-such-event")]})),
        ("2.1", json!({"events": [{"name": "network-changed"}]})),
        ("2.1", json!({"events": [{"server_uuid": server}]})),
        (
            "2.1",
            json!({"events": [event("network-changed", &server, json!({"x": 1}))]}),
        ),
        (
            "2.1",
            json!({"events": [event("network-changed", &server, json!({"status": "done"}))]}),
        ),
        (
            "2.1",
            json!({"events": [event("network-changed", &server, json!({"tag": 1}))]}),
        ),
        (
            "2.1",
            json!({"events": [event("network-changed", &server, json!({"tag": "t".repeat(256)}))]}),
        ),
        (
            "2.1",
            json!({"events": [event("network-changed", "not-a-uuid", json!({}))]}),
        ),
        (
            "2.1",
            json!({"events": [{"name": "network-changed", "server_uuid": 7}]}),
        ),
        ("2.50", json!({"events": [ok("volume-extended")]})),
        ("2.75", json!({"events": [ok("power-update")]})),
        ("2.81", json!({"events": [ok("accelerator-request-bound")]})),
        ("2.92", json!({"events": [ok("volume-reimaged")]})),
    ];
    for (mv, body) in bad {
        let reply = post(&h, "admin", mv, body.clone()).await;
        assert_eq!(reply.status, 400, "{mv} {body}: {:?}", reply.body);
        assert_eq!(reply.body["badRequest"]["code"], 400, "{body}");
        assert!(reply.body["badRequest"]["message"].is_string(), "{body}");
    }
    let reply = post(&h, "admin", "2.1", json!({"events": [ok("bogus")]})).await;
    let message = reply.body["badRequest"]["message"].as_str().unwrap();
    assert!(message.contains("events/0/name"), "{message}");

    // Each name from its microversion on; the maximum served accepts them all.
    let good = [
        ("2.1", "network-vif-plugged"),
        ("2.1", "network-vif-unplugged"),
        ("2.1", "network-vif-deleted"),
        ("2.51", "volume-extended"),
        ("2.76", "power-update"),
        ("2.82", "accelerator-request-bound"),
        ("2.93", "volume-reimaged"),
        ("2.96", "volume-reimaged"),
        ("2.96", "network-changed"),
    ];
    for (mv, name) in good {
        let reply = post(&h, "admin", mv, json!({"events": [ok(name)]})).await;
        assert_eq!(reply.status, 200, "{mv} {name}: {:?}", reply.body);
    }
    // Nova's is_uuid_like: hyphenless and upper-case uuids are uuids too (if unknown here).
    let other = uuid::Uuid::new_v4();
    for spelling in [other.simple().to_string(), other.to_string().to_uppercase()] {
        let body = json!({"events": [event("network-changed", &spelling, json!({}))]});
        let reply = post(&h, "admin", "2.1", body).await;
        assert_eq!(reply.status, 207, "{spelling}: {:?}", reply.body);
        assert_eq!(codes(&reply), [404]);
    }
}

#[tokio::test]
async fn external_events_are_cast_to_the_server_host() {
    let h = Harness::open("external-events-cast").await;
    let a1 = add_server(&h, Some("host-a")).await;
    let a2 = add_server(&h, Some("host-a")).await;
    let b1 = add_server(&h, Some("host-b")).await;
    let mut queue_a = agent(&h, "host-a").await;
    let mut queue_b = agent(&h, "host-b").await;
    let port = uuid::Uuid::new_v4().to_string();
    let body = json!({"events": [
        event("network-vif-plugged", &a1, json!({"tag": port})),
        event("network-vif-plugged", &b1, json!({"tag": port, "status": "failed"})),
        event("network-changed", &a2, json!({})),
        event("network-vif-deleted", &a1, json!({"tag": port, "status": "in-progress"})),
    ]});
    let reply = post(&h, "neutron", "2.1", body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // The events as sent, in order, each with its code; an accepted event is `completed`
    // whatever status it carried (that status is what the host gets).
    assert_eq!(
        reply.body,
        json!({"events": [
            {"name": "network-vif-plugged", "server_uuid": a1, "tag": port,
             "status": "completed", "code": 200},
            {"name": "network-vif-plugged", "server_uuid": b1, "tag": port,
             "status": "completed", "code": 200},
            {"name": "network-changed", "server_uuid": a2, "status": "completed", "code": 200},
            {"name": "network-vif-deleted", "server_uuid": a1, "tag": port,
             "status": "completed", "code": 200},
        ]})
    );
    let ev = |name: &str, server: &str, tag: Option<&str>, status: &str| ExternalEvent {
        server_uuid: server.into(),
        name: name.into(),
        tag: tag.map(String::from),
        status: status.into(),
    };
    // One cast per host, with that host's events in order.
    assert_eq!(
        next_events(&mut queue_a).await,
        [
            ev("network-vif-plugged", &a1, Some(&port), "completed"),
            ev("network-changed", &a2, None, "completed"),
            ev("network-vif-deleted", &a1, Some(&port), "in-progress"),
        ]
    );
    assert_eq!(
        next_events(&mut queue_b).await,
        [ev("network-vif-plugged", &b1, Some(&port), "failed")]
    );
    nothing_more(&mut queue_a).await;
    nothing_more(&mut queue_b).await;
}

#[tokio::test]
async fn external_events_that_cannot_be_delivered_are_answered_per_event() {
    let h = Harness::open("external-events-dropped").await;
    let placed = add_server(&h, Some("host-a")).await;
    let unplaced = add_server(&h, None).await;
    let deleted = add_server(&h, Some("host-a")).await;
    assert!(
        idb::mark_deleted(&h.compute.store, &deleted, &ferrostack_store::now_rfc3339())
            .await
            .unwrap()
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let mut queue = agent(&h, "host-a").await;

    // Some accepted, some not: 207, each event with its code; only the accepted is cast.
    let body = json!({"events": [
        event("network-changed", &placed, json!({})),
        event("network-vif-plugged", &unplaced, json!({"tag": "p"})),
        event("network-changed", &unknown, json!({"status": "completed"})),
        event("network-changed", &deleted, json!({})),
        event("volume-extended", &placed, json!({})),
        event("volume-extended", &unplaced, json!({})),
    ]});
    let reply = post(&h, "neutron", "2.51", body).await;
    assert_eq!(reply.status, 207, "{:?}", reply.body);
    // The tag is checked before the host, as Nova does.
    assert_eq!(codes(&reply), [200, 422, 404, 404, 400, 400]);
    let statuses: Vec<&str> = reply.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "failed",
            "failed",
            "failed",
            "failed",
            "failed"
        ]
    );
    assert_eq!(reply.body["events"][1]["tag"], "p");
    assert!(reply.body["events"][0].get("tag").is_none());
    let cast = next_events(&mut queue).await;
    assert_eq!(cast.len(), 1);
    assert_eq!(cast[0].server_uuid, placed);
    nothing_more(&mut queue).await;

    // None accepted: still 207 with the codes (Nova has not answered 404 since bug 1855752).
    for (server, code) in [(&unknown, 404), (&deleted, 404), (&unplaced, 422)] {
        let body = json!({"events": [event("network-vif-plugged", server, json!({"tag": "p"}))]});
        let reply = post(&h, "neutron", "2.1", body).await;
        assert_eq!(reply.status, 207, "{:?}", reply.body);
        assert_eq!(codes(&reply), [code]);
        assert_eq!(reply.body["events"][0]["status"], "failed");
    }
    nothing_more(&mut queue).await;
}

#[tokio::test]
async fn external_events_for_an_unreachable_host_are_still_accepted() {
    let h = Harness::open("external-events-unreachable").await;
    // No agent consumes host-z's queue: the cast fails, which is logged only.
    let server = add_server(&h, Some("host-z")).await;
    let body = json!({"events": [event("network-changed", &server, json!({}))]});
    let reply = post(&h, "neutron", "2.1", body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(codes(&reply), [200]);
}
