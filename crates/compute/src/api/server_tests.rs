//! Server API tests in process: the real API, conductor, scheduler and Placement over a fresh
//! store, with a scripted agent on the bus standing in for a hypervisor host (it answers
//! like the real agent does, through the conductor's compare-and-swap updates). The real
//! agent with libvirt is tested in `ferrostack-compute-agent` and end to end.

use super::tests::{Harness, IMAGE, flavor};
use crate::conductor;
use crate::db::instances as idb;
use crate::rpc::{
    self, AgentReply, AgentRequest, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest,
    HostResources, StateUpdate, agent_queue,
};
use crate::service::Compute;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn conductor_call(c: &Compute, request: ConductorRequest) -> ConductorReply {
    let reply = c
        .bus
        .call(
            CONDUCTOR_QUEUE,
            rpc::encode(&request),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    rpc::decode(&reply).unwrap()
}

fn update(
    uuid: &str,
    expected: &[Option<&str>],
    vm: Option<&str>,
    task: Option<Option<&str>>,
    power: Option<i64>,
) -> ConductorRequest {
    ConductorRequest::Update(StateUpdate {
        uuid: uuid.into(),
        expected_task_state: expected.iter().map(|t| t.map(String::from)).collect(),
        vm_state: vm.map(String::from),
        task_state: task.map(|t| t.map(String::from)),
        power_state: power,
        launched: vm == Some("active")
            && task == Some(None)
            && expected.contains(&Some("spawning")),
    })
}

/// Registers `host` with the conductor and serves its queue like an agent whose guests always
/// start.
async fn scripted_agent(c: Arc<Compute>, host: &str) {
    let heartbeat = ConductorRequest::Heartbeat {
        host: host.into(),
        node_uuid: uuid::Uuid::new_v4().to_string(),
        resources: HostResources {
            vcpus: 4,
            memory_mb: 8192 + 512,
            disk_gb: 100,
        },
        guests: vec![],
        capabilities: Some(crate::db::nodes::testing::qemu()),
    };
    assert_eq!(conductor_call(&c, heartbeat).await, ConductorReply::Ok);
    let mut queue = c.bus.consume(&agent_queue(host)).await.unwrap();
    tokio::spawn(async move {
        while let Some(d) = queue.next().await {
            let request: AgentRequest = rpc::decode(&d.payload).unwrap();
            match request {
                AgentRequest::Build { build, .. } => {
                    let u = &build.uuid;
                    if conductor_call(&c, update(u, &[None], None, Some(Some("spawning")), None))
                        .await
                        == ConductorReply::Ok
                    {
                        conductor_call(
                            &c,
                            update(u, &[Some("spawning")], Some("active"), Some(None), Some(1)),
                        )
                        .await;
                    }
                }
                AgentRequest::Stop { uuid, .. } => {
                    conductor_call(
                        &c,
                        update(
                            &uuid,
                            &[Some("powering-off")],
                            Some("stopped"),
                            Some(None),
                            Some(4),
                        ),
                    )
                    .await;
                }
                AgentRequest::Start { build, .. } => {
                    conductor_call(
                        &c,
                        update(
                            &build.uuid,
                            &[Some("powering-on")],
                            Some("active"),
                            Some(None),
                            Some(1),
                        ),
                    )
                    .await;
                }
                AgentRequest::Reboot { build, hard, .. } => {
                    let t = if hard { "rebooting_hard" } else { "rebooting" };
                    conductor_call(
                        &c,
                        update(&build.uuid, &[Some(t)], Some("active"), Some(None), Some(1)),
                    )
                    .await;
                }
                AgentRequest::Delete { uuid, .. } => {
                    conductor_call(
                        &c,
                        ConductorRequest::Deleted {
                            uuid,
                            host: String::new(),
                        },
                    )
                    .await;
                }
                AgentRequest::ConsoleOutput { length, .. } => {
                    let all = "one\ntwo\nthree\nfour";
                    let lines: Vec<&str> = all.split('\n').collect();
                    let keep = length.map_or(lines.len(), |n| (n.max(0) as usize).min(lines.len()));
                    let output = lines[lines.len() - keep..].join("\n");
                    d.reply(rpc::encode(&AgentReply::ConsoleOutput { output }))
                        .await
                        .unwrap();
                }
                AgentRequest::Ping => {
                    d.reply(rpc::encode(&AgentReply::Pong)).await.unwrap();
                }
                AgentRequest::ExternalEvents { .. } => {}
                AgentRequest::AttachVolume { uuid, disk, .. } => {
                    let attached = ConductorRequest::VolumeAttached {
                        uuid,
                        volume_id: disk.volume_id,
                        error: None,
                    };
                    conductor_call(&c, attached).await;
                }
                AgentRequest::DetachVolume { uuid, disk, .. } => {
                    let detached = ConductorRequest::VolumeDetached {
                        uuid,
                        volume_id: disk.volume_id,
                        error: None,
                    };
                    conductor_call(&c, detached).await;
                }
                AgentRequest::VncConsole { .. } => {
                    let reason = "scripted hosts have no VNC servers".to_string();
                    let reply = AgentReply::ConsoleUnavailable { reason };
                    d.reply(rpc::encode(&reply)).await.unwrap();
                }
            }
        }
    });
}

async fn cloud(name: &str, hosts: &[&str]) -> Harness {
    let h = Harness::open(name).await;
    conductor::start(h.compute.clone()).await.unwrap();
    for host in hosts {
        scripted_agent(h.compute.clone(), host).await;
    }
    let r = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors",
            "2.1",
            Some(flavor("m1.tiny", json!({"id": "1", "ram": 256, "disk": 1}))),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    h
}

fn server(name: &str) -> Value {
    json!({"server": {"name": name, "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}})
}

/// Polls a server until its status is `status` and task state is idle.
async fn wait_for(h: &Harness, who: &str, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let r = h
            .call(who, "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
            .await;
        if r.body["server"]["status"] == status
            && r.body["server"]["OS-EXT-STS:task_state"].is_null()
        {
            return r.body["server"].clone();
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} never reached {status}: {last}");
}

async fn action(h: &Harness, id: &str, body: Value) -> u16 {
    h.call(
        "alice",
        "POST",
        &format!("/v2.1/servers/{id}/action"),
        "2.96",
        Some(body),
    )
    .await
    .status
}

#[tokio::test]
async fn server_lifecycle_through_conductor_and_agent() {
    let h = cloud("servers-lifecycle", &["host-a"]).await;
    let r = h
        .call(
            "alice",
            "POST",
            "/v2.1/servers",
            "2.96",
            Some(server("web 1")),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["server"]["adminPass"].as_str().unwrap().len(), 12);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/v2.1/servers/{id}"))
    );
    let keys: Vec<&String> = r.body["server"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "OS-DCF:diskConfig",
            "adminPass",
            "id",
            "links",
            "security_groups"
        ]
    );

    let s = wait_for(&h, "alice", &id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(s["OS-EXT-STS:vm_state"], "active");
    assert_eq!(s["OS-EXT-SRV-ATTR:hostname"], "web-1");
    assert_eq!(s["flavor"]["original_name"], "m1.tiny");
    assert!(s["OS-SRV-USG:launched_at"].is_string());
    assert!(
        s.get("OS-EXT-SRV-ATTR:host").is_none(),
        "members do not see the host"
    );
    assert_eq!(s["hostId"].as_str().unwrap().len(), 56);
    let admin_view = h
        .call("admin", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
        .await;
    assert_eq!(admin_view.body["server"]["OS-EXT-SRV-ATTR:host"], "host-a");
    assert_eq!(admin_view.body["server"]["host_status"], "UP");
    assert!(
        admin_view.body["server"]["OS-EXT-SRV-ATTR:instance_name"]
            .as_str()
            .unwrap()
            .starts_with("instance-")
    );
    // 2.1 bodies carry no later fields.
    let old = h
        .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.1", None)
        .await;
    assert!(old.body["server"].get("locked").is_none());
    assert_eq!(old.body["server"]["flavor"]["id"], "1");

    // Another project sees nothing.
    assert_eq!(
        h.call("bob", "GET", &format!("/v2.1/servers/{id}"), "2.1", None)
            .await
            .status,
        404
    );
    let bobs = h.call("bob", "GET", "/v2.1/servers", "2.1", None).await;
    assert_eq!(bobs.body["servers"], json!([]));
    assert_eq!(
        h.call("bob", "GET", "/v2.1/servers?all_tenants=1", "2.1", None)
            .await
            .status,
        403
    );
    let all = h
        .call(
            "admin",
            "GET",
            "/v2.1/servers/detail?all_tenants=1",
            "2.1",
            None,
        )
        .await;
    assert_eq!(all.body["servers"].as_array().unwrap().len(), 1);

    // Power actions move through the state machine; a wrong state is a 409.
    assert_eq!(action(&h, &id, json!({"os-start": null})).await, 409);
    assert_eq!(action(&h, &id, json!({"os-stop": null})).await, 202);
    wait_for(&h, "alice", &id, "SHUTOFF").await;
    assert_eq!(action(&h, &id, json!({"os-start": null})).await, 202);
    wait_for(&h, "alice", &id, "ACTIVE").await;
    assert_eq!(
        action(&h, &id, json!({"reboot": {"type": "HARD"}})).await,
        202
    );
    wait_for(&h, "alice", &id, "ACTIVE").await;
    assert_eq!(
        action(&h, &id, json!({"reboot": {"type": "sideways"}})).await,
        400
    );
    let out = h
        .call(
            "alice",
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            "2.1",
            Some(json!({"os-getConsoleOutput": {"length": 2}})),
        )
        .await;
    assert_eq!(out.body["output"], "three\nfour");

    // Update and lock.
    let r = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.1/servers/{id}"),
            "2.1",
            Some(json!({"server": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(r.body["server"]["name"], "renamed");
    assert!(
        r.body["server"].get("OS-EXT-STS:vm_state").is_none(),
        "PUT's short body below 2.75"
    );
    assert_eq!(action(&h, &id, json!({"lock": null})).await, 202);
    let locked = h
        .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.9", None)
        .await;
    assert_eq!(locked.body["server"]["locked"], true);
    assert_eq!(action(&h, &id, json!({"os-stop": null})).await, 409);
    assert_eq!(action(&h, &id, json!({"unlock": null})).await, 202);

    // Actions are recorded, newest first.
    let acts = h
        .call(
            "alice",
            "GET",
            &format!("/v2.1/servers/{id}/os-instance-actions"),
            "2.1",
            None,
        )
        .await;
    let names: Vec<&str> = acts.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["unlock", "lock", "reboot", "start", "stop", "create"]
    );

    // Placement holds the flavor while the server lives and nothing after.
    let node = crate::db::nodes::nodes(&h.compute.store).await.unwrap()[0]
        .node_uuid
        .clone();
    let used = h.compute.placement.provider_usages(&node).await.unwrap();
    assert_eq!(used.get("MEMORY_MB"), Some(&256));
    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{id}"),
            "2.1",
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    for _ in 0..200 {
        if h.call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.1", None)
            .await
            .status
            == 404
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.1", None)
            .await
            .status,
        404
    );
    let used = h.compute.placement.provider_usages(&node).await.unwrap();
    assert_eq!(used.get("MEMORY_MB").copied().unwrap_or(0), 0);
    let acts = h
        .call(
            "alice",
            "GET",
            &format!("/v2.1/servers/{id}/os-instance-actions"),
            "2.21",
            None,
        )
        .await;
    assert_eq!(acts.body["instanceActions"][0]["action"], "delete");
}

#[tokio::test]
async fn create_validates_and_enforces_quota() {
    let h = cloud("servers-validation", &["host-a"]).await;
    let post = |body: Value| h.call("alice", "POST", "/v2.1/servers", "2.96", Some(body));
    let mut bad_image = server("x");
    bad_image["server"]["imageRef"] = json!("6a6e0b6e-4a53-4a8f-9a77-0a1d7c3b5fff");
    let r = post(bad_image).await;
    assert_eq!(
        (r.status, r.body["badRequest"]["message"].as_str()),
        (400, Some("Can not find requested image"))
    );
    let mut bad_flavor = server("x");
    bad_flavor["server"]["flavorRef"] = json!("nope");
    assert_eq!(post(bad_flavor).await.status, 400);
    let mut no_networks = server("x");
    no_networks["server"]
        .as_object_mut()
        .unwrap()
        .remove("networks");
    assert_eq!(post(no_networks).await.status, 400);
    let mut extra = server("x");
    extra["server"]["bogus"] = json!(1);
    assert_eq!(post(extra).await.status, 400);
    let mut key = server("x");
    key["server"]["key_name"] = json!("missing");
    let r = post(key).await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Invalid key_name provided."
    );
    let mut ud = server("x");
    ud["server"]["user_data"] = json!("not base64!");
    assert_eq!(post(ud).await.status, 400);
    // Quota: 10 instances by default, checked atomically with the insert.
    let mut many = server("many");
    many["server"]["min_count"] = json!(11);
    let r = post(many).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body["forbidden"]["message"],
        "Quota exceeded for instances: Requested 11, but already used 0 of 10 instances"
    );
    // Concurrent creates cannot pass the quota together.
    let results =
        futures_util::future::join_all((0..14).map(|n| post(server(&format!("q{n}"))))).await;
    let accepted = results.iter().filter(|r| r.status == 202).count();
    assert_eq!(accepted, 10);
    assert!(
        results
            .iter()
            .filter(|r| r.status != 202)
            .all(|r| r.status == 403)
    );
}

#[tokio::test]
async fn anti_affinity_beyond_hosts_errors_with_a_fault() {
    let h = cloud("servers-anti-affinity", &["host-a", "host-b"]).await;
    let g = h
        .call(
            "alice",
            "POST",
            "/v2.1/os-server-groups",
            "2.64",
            Some(json!({"server_group": {"name": "g", "policy": "anti-affinity"}})),
        )
        .await;
    let group = g.body["server_group"]["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut body = server(&format!("aa{n}"));
        body["os:scheduler_hints"] = json!({"group": group});
        let r = h
            .call("alice", "POST", "/v2.1/servers", "2.96", Some(body))
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        // One at a time, so which one fails is deterministic.
        let mut last = Value::Null;
        for _ in 0..200 {
            last = h
                .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
                .await
                .body["server"]
                .clone();
            if last["status"] != "BUILD" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ids.push((id, last));
    }
    let hosts: Vec<&str> = ids[..2]
        .iter()
        .map(|(_, s)| s["hostId"].as_str().unwrap())
        .collect();
    assert_ne!(hosts[0], hosts[1]);
    assert_eq!(ids[2].1["status"], "ERROR");
    assert_eq!(ids[2].1["fault"]["code"], 500);
    assert_eq!(ids[2].1["fault"]["message"], conductor::NO_VALID_HOST);
}

#[tokio::test]
async fn metadata_and_tags_need_a_settled_server() {
    let h = cloud("servers-meta-tags", &["host-a"]).await;
    let mut body = server("meta");
    body["server"]["metadata"] = json!({"role": "web"});
    let r = h
        .call("alice", "POST", "/v2.1/servers", "2.96", Some(body))
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_for(&h, "alice", &id, "ACTIVE").await;
    let path = |p: &str| format!("/v2.1/servers/{id}{p}");
    let r = h
        .call(
            "alice",
            "POST",
            &path("/metadata"),
            "2.1",
            Some(json!({"metadata": {"tier": "1"}})),
        )
        .await;
    assert_eq!(r.body["metadata"], json!({"role": "web", "tier": "1"}));
    let r = h
        .call(
            "alice",
            "PUT",
            &path("/metadata/tier"),
            "2.1",
            Some(json!({"meta": {"other": "2"}})),
        )
        .await;
    assert_eq!(r.status, 400, "key must match the URI");
    let r = h
        .call(
            "alice",
            "PUT",
            &path("/metadata"),
            "2.1",
            Some(json!({"metadata": {"only": "x"}})),
        )
        .await;
    assert_eq!(r.body["metadata"], json!({"only": "x"}));
    assert_eq!(
        h.call("alice", "DELETE", &path("/metadata/only"), "2.1", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "GET", &path("/metadata/only"), "2.1", None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.call("bob", "GET", &path("/metadata"), "2.1", None)
            .await
            .status,
        404
    );
    // Tags from 2.26 only.
    assert_eq!(
        h.call("alice", "GET", &path("/tags"), "2.25", None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.call("alice", "PUT", &path("/tags/blue"), "2.26", None)
            .await
            .status,
        201
    );
    assert_eq!(
        h.call("alice", "PUT", &path("/tags/blue"), "2.26", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "GET", &path("/tags/blue"), "2.26", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "PUT", &path("/tags/a,b"), "2.26", None)
            .await
            .status,
        400
    );
    let r = h
        .call(
            "alice",
            "PUT",
            &path("/tags"),
            "2.26",
            Some(json!({"tags": ["x", "y"]})),
        )
        .await;
    assert_eq!(r.body["tags"], json!(["x", "y"]));
    let listed = h
        .call("alice", "GET", "/v2.1/servers?tags=x,y", "2.26", None)
        .await;
    assert_eq!(listed.body["servers"].as_array().unwrap().len(), 1);
    let listed = h
        .call("alice", "GET", "/v2.1/servers?not-tags-any=x", "2.26", None)
        .await;
    assert_eq!(listed.body["servers"].as_array().unwrap().len(), 0);
    // A server mid-operation refuses writes.
    assert_eq!(action(&h, &id, json!({"os-stop": null})).await, 202);
    wait_for(&h, "alice", &id, "SHUTOFF").await;
    crate::db::instances::update_state(
        &h.compute.store,
        &id,
        &[None],
        &crate::db::instances::StateChange {
            task_state: Some(Some("powering-on".into())),
            ..Default::default()
        },
        "2026-01-01T00:00:00Z",
    )
    .await
    .unwrap();
    let r = h
        .call(
            "alice",
            "POST",
            &path("/metadata"),
            "2.1",
            Some(json!({"metadata": {"a": "b"}})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("task_state powering-on")
    );
}

/// Tempest (ServersAdmin275Test, ServersListShow296Test): from 2.75 PUT answers with the
/// full server body, `server_groups` (≥2.71) included.
#[tokio::test]
async fn update_at_2_75_returns_the_full_body_with_server_groups() {
    let h = cloud("servers-update-275", &["host-a"]).await;
    let r = h
        .call(
            "alice",
            "POST",
            "/v2.1/servers",
            "2.96",
            Some(server("upd")),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_for(&h, "alice", &id, "ACTIVE").await;
    let path = format!("/v2.1/servers/{id}");
    let put = |mv: &'static str| {
        h.call(
            "alice",
            "PUT",
            &path,
            mv,
            Some(json!({"server": {"name": "renamed"}})),
        )
    };
    let shown = h
        .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
        .await
        .body["server"]
        .clone();
    let updated = put("2.96").await.body["server"].clone();
    assert_eq!(updated["server_groups"], json!([]));
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&updated), keys(&shown));
    let at_274 = put("2.74").await.body["server"].clone();
    assert!(at_274.get("server_groups").is_none());
    assert!(at_274.get("OS-EXT-STS:vm_state").is_none());
}

/// Tempest (ServersAdminNegativeTestJSON.test_restore_server_invalid_state): with no soft
/// delete, `restore` is always a 409 on a live server; `forceDelete` deletes it; both are a
/// 404 for an unknown server.
#[tokio::test]
async fn restore_conflicts_and_force_delete_deletes() {
    let h = cloud("servers-deferred-delete", &["host-a"]).await;
    let r = h
        .call("alice", "POST", "/v2.1/servers", "2.96", Some(server("dd")))
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_for(&h, "alice", &id, "ACTIVE").await;
    let r = h
        .call(
            "alice",
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            "2.1",
            Some(json!({"restore": null})),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(
        r.body["conflictingRequest"]["message"],
        format!("Cannot 'restore' instance {id} while it is in vm_state active")
    );
    let unknown = uuid::Uuid::new_v4();
    for act in ["restore", "forceDelete"] {
        assert_eq!(
            action(&h, &unknown.to_string(), json!({act: null})).await,
            404
        );
    }
    assert_eq!(action(&h, &id, json!({"forceDelete": null})).await, 202);
    for _ in 0..200 {
        if h.call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.1", None)
            .await
            .status
            == 404
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("forceDelete did not delete {id}");
}

/// Every id of a listing, following `servers_links` from page to page.
async fn all_pages(h: &Harness, who: &str, first: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = first.to_string();
    for _ in 0..50 {
        let r = h.call(who, "GET", &path, "2.96", None).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        for s in r.body["servers"].as_array().unwrap() {
            ids.push(s["id"].as_str().unwrap().to_string());
        }
        let Some(next) = r.body["servers_links"][0]["href"].as_str() else {
            return ids;
        };
        let query = next.split_once('?').unwrap().1;
        let (base, _) = first.split_once('?').unwrap_or((first, ""));
        path = format!("{base}?{query}");
    }
    panic!("paging of {first} never ended");
}

#[tokio::test]
async fn default_listings_page_in_the_database_like_the_filtered_ones() {
    let h = cloud("servers-paging", &["host-a", "host-b"]).await;
    let mut alices = Vec::new();
    for n in 0..7 {
        let r = h
            .call(
                "alice",
                "POST",
                "/v2.1/servers",
                "2.96",
                Some(server(&format!("a{n}"))),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        alices.push(r.body["server"]["id"].as_str().unwrap().to_string());
    }
    let r = h
        .call("bob", "POST", "/v2.1/servers", "2.96", Some(server("b0")))
        .await;
    let bobs = r.body["server"]["id"].as_str().unwrap().to_string();
    for id in alices.iter().chain([&bobs]) {
        wait_for(&h, "admin", id, "ACTIVE").await;
    }
    // A deleted server is in no default listing.
    let gone = alices.remove(3);
    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{gone}"),
            "2.96",
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    for _ in 0..200 {
        let r = h
            .call(
                "alice",
                "GET",
                &format!("/v2.1/servers/{gone}"),
                "2.96",
                None,
            )
            .await;
        if r.status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Newest first; the database's pages and the in-memory path (a name filter matching
    // every server) agree, page by page and whole.
    let newest_first: Vec<String> = alices.iter().rev().cloned().collect();
    for (who, base) in [
        ("alice", "/v2.1/servers"),
        ("alice", "/v2.1/servers/detail"),
        ("admin", "/v2.1/servers/detail?all_tenants=1"),
    ] {
        let join = if base.contains('?') { '&' } else { '?' };
        let whole = all_pages(&h, who, base).await;
        if who == "alice" {
            assert_eq!(whole, newest_first, "{base}");
        } else {
            assert_eq!(whole.len(), 7);
            assert_eq!(whole[0], bobs);
        }
        for limit in [1, 3, 6, 7, 8] {
            let paged = all_pages(&h, who, &format!("{base}{join}limit={limit}")).await;
            let filtered = all_pages(&h, who, &format!("{base}{join}limit={limit}&name=.")).await;
            assert_eq!(paged, whole, "{base} limit {limit}");
            assert_eq!(filtered, whole, "{base} limit {limit}, filtered");
        }
        let explicit = format!("{base}{join}sort_key=created_at&sort_dir=desc&limit=2");
        assert_eq!(all_pages(&h, who, &explicit).await, whole);
    }
    // The same answers for a marker that is not in the listing.
    for marker in [gone.as_str(), bobs.as_str(), "nope"] {
        for filter in ["", "&name=."] {
            let r = h
                .call(
                    "alice",
                    "GET",
                    &format!("/v2.1/servers?marker={marker}{filter}"),
                    "2.96",
                    None,
                )
                .await;
            assert_eq!(r.status, 400, "{marker}{filter}");
            assert_eq!(
                r.body["badRequest"]["message"],
                format!("marker [{marker}] not found")
            );
        }
    }
    // Host status in listings: the admin sees it for every server, a member never.
    let r = h
        .call(
            "admin",
            "GET",
            "/v2.1/servers/detail?all_tenants=1",
            "2.96",
            None,
        )
        .await;
    for s in r.body["servers"].as_array().unwrap() {
        assert_eq!(s["host_status"], "UP", "{s}");
    }
    let r = h
        .call("alice", "GET", "/v2.1/servers/detail", "2.96", None)
        .await;
    assert!(r.body["servers"][0].get("host_status").is_none());
    // The last page of an exact fit still links on (Nova does), to an empty page.
    let r = h
        .call("alice", "GET", "/v2.1/servers?limit=6", "2.96", None)
        .await;
    assert!(r.body["servers_links"].is_array());
    let r = h
        .call("alice", "GET", "/v2.1/servers?limit=0", "2.96", None)
        .await;
    assert_eq!(r.body["servers"], json!([]));
    assert!(r.body.get("servers_links").is_none());
}

#[tokio::test]
async fn server_password_is_shown_and_cleared() {
    let h = cloud("servers-password", &["host-a"]).await;
    let r = h
        .call("alice", "POST", "/v2.1/servers", "2.96", Some(server("pw")))
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_for(&h, "alice", &id, "ACTIVE").await;
    let path = format!("/v2.1/servers/{id}/os-server-password");
    let r = h.call("alice", "GET", &path, "2.1", None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"password": ""})));

    // As the metadata service stores what the guest posts.
    let mut inst = idb::instance(&h.compute.store, &id).await.unwrap().unwrap();
    inst.data.password = Some("c2VjcmV0".into());
    let now = ferrostack_store::now_rfc3339();
    assert!(idb::save_data(&h.compute.store, &inst, &now).await.unwrap());
    let r = h.call("alice", "GET", &path, "2.1", None).await;
    assert_eq!(r.body, json!({"password": "c2VjcmV0"}));
    // Another project's member sees no such server.
    let r = h.call("bob", "GET", &path, "2.1", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = h.call("bob", "DELETE", &path, "2.1", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    let r = h.call("alice", "DELETE", &path, "2.1", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = h.call("alice", "GET", &path, "2.1", None).await;
    assert_eq!(r.body, json!({"password": ""}));
    let inst = idb::instance(&h.compute.store, &id).await.unwrap().unwrap();
    assert_eq!(inst.data.password, None);
}
