//! The agents' RPC server over the store: desired state with the network host's DHCP port,
//! reports turning ports ACTIVE (with an event and Nova's notification), and `/v2.0/agents`.

use super::Harness;
use crate::agents::rpc::AgentReport;
use crate::agents::server::{ServerOptions, VifNotifier, apply_report, state_for};
use ferrostack_bus::MessageBus;
use serde_json::json;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl VifNotifier for Recorder {
    async fn vifs_plugged(&self, plugged: &[(String, String)]) {
        self.0.lock().unwrap().extend(plugged.iter().cloned());
    }

    async fn network_changed(&self, _server_id: &str, _port_id: &str) {}
}

#[tokio::test]
async fn reports_set_port_status_notify_nova_and_list_agents() {
    let h = Harness::open("agents-rpc").await;
    let (network, _) = h.network_with_subnet("alice", "n", "10.5.0.0/24").await;
    let port = h
        .create(
            "admin",
            "/v2.0/ports",
            "port",
            json!({"network_id": network["id"], "binding:host_id": "h1",
                   "device_owner": "compute:nova", "device_id": "server-1",
                   "project_id": network["project_id"]}),
        )
        .await;
    let port_id = port["id"].as_str().unwrap().to_string();
    let recorder = Arc::new(Recorder::default());
    let options = ServerOptions {
        network_host: "h1".into(),
        notifier: Some(recorder.clone()),
    };

    let state = state_for(&h.net, &options, "h1").await.unwrap();
    state.validate().unwrap();
    assert_eq!(state.networks.len(), 1);
    let dhcp = state.networks[0]
        .dhcp_port
        .clone()
        .expect("the network host serves DHCP");
    assert_eq!(dhcp.fixed_ips.len(), 1);
    assert!(state.ports.iter().any(|p| p.id == port_id && p.bound_here));
    // A second request reuses the DHCP port.
    let again = state_for(&h.net, &options, "h1").await.unwrap();
    assert_eq!(again.networks[0].dhcp_port.as_ref().unwrap().id, dhcp.id);
    // A subnet added later gets an address of the DHCP port too.
    h.create(
        "alice",
        "/v2.0/subnets",
        "subnet",
        json!({"network_id": network["id"], "ip_version": 4, "cidr": "10.6.0.0/24"}),
    )
    .await;
    let extended = state_for(&h.net, &options, "h1").await.unwrap();
    let dhcp_now = extended.networks[0].dhcp_port.clone().unwrap();
    assert_eq!(dhcp_now.id, dhcp.id);
    assert_eq!(dhcp_now.fixed_ips.len(), 2, "{dhcp_now:?}");
    assert_eq!(
        dhcp_now.fixed_ips[0], dhcp.fixed_ips[0],
        "the first address is kept"
    );
    let elsewhere = state_for(&h.net, &options, "h2").await.unwrap();
    assert!(elsewhere.networks.is_empty());

    let mut events = h.bus.subscribe(crate::events::TOPIC).await.unwrap();
    let mut report = AgentReport {
        host: "h1".into(),
        pending_ports: vec![port_id.clone()],
        vtep_ip: Some("192.0.2.1".parse().unwrap()),
        heartbeat: chrono::Utc::now().to_rfc3339(),
        started_at: chrono::Utc::now().to_rfc3339(),
        ..Default::default()
    };
    apply_report(&h.net, &options, &report).await.unwrap();
    let shown = h.get("admin", &format!("/v2.0/ports/{port_id}")).await;
    assert_eq!(shown.body["port"]["status"], "DOWN");
    assert_eq!(shown.body["port"]["binding:vif_type"], "bridge");
    report.pending_ports.clear();
    report.active_ports = vec![port_id.clone()];
    apply_report(&h.net, &options, &report).await.unwrap();
    let shown = h.get("admin", &format!("/v2.0/ports/{port_id}")).await;
    assert_eq!(shown.body["port"]["status"], "ACTIVE");
    assert!(
        shown.body["port"]["revision_number"].as_i64().unwrap()
            > port["revision_number"].as_i64().unwrap()
    );
    let dhcp_shown = h.get("admin", &format!("/v2.0/ports/{}", dhcp.id)).await;
    assert_eq!(dhcp_shown.body["port"]["status"], "ACTIVE");
    let mut saw_update = false;
    while let Ok(Some(bytes)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), events.next()).await
    {
        let event: crate::events::Event = serde_json::from_slice(&bytes).unwrap();
        saw_update |= event.id == port_id && event.action == "updated";
    }
    assert!(saw_update, "a status change is published");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        *recorder.0.lock().unwrap(),
        vec![("server-1".to_string(), port_id.clone())]
    );

    // A second host's VTEP becomes the first's flood target on the shared network.
    let vteps_report = AgentReport {
        host: "h2".into(),
        vtep_ip: Some("192.0.2.2".parse().unwrap()),
        heartbeat: chrono::Utc::now().to_rfc3339(),
        ..Default::default()
    };
    apply_report(&h.net, &options, &vteps_report).await.unwrap();

    let agents = h.get("admin", "/v2.0/agents").await;
    assert_eq!(agents.status, 200);
    let list = agents.body["agents"].as_array().unwrap();
    let types: Vec<&str> = list
        .iter()
        .filter(|a| a["host"] == "h1")
        .map(|a| a["agent_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 4, "{types:?}");
    assert!(
        list.iter()
            .all(|a| a["alive"] == true && a["admin_state_up"] == true)
    );
    let filtered = h.get("admin", "/v2.0/agents?agent_type=L3%20agent").await;
    assert_eq!(filtered.body["agents"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("alice", "/v2.0/agents").await.status, 403);
    let id = list[0]["id"].as_str().unwrap();
    let updated = h
        .call(
            "admin",
            "PUT",
            &format!("/v2.0/agents/{id}"),
            Some(json!({"agent": {"admin_state_up": false}})),
        )
        .await;
    assert_eq!(updated.body["agent"]["admin_state_up"], false);
    let refused = h
        .call(
            "admin",
            "PUT",
            &format!("/v2.0/agents/{id}"),
            Some(json!({"agent": {"host": "x"}})),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        h.call("admin", "DELETE", &format!("/v2.0/agents/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("admin", &format!("/v2.0/agents/{id}")).await.status,
        404
    );
}

#[tokio::test]
async fn router_ports_are_bound_to_the_network_host_and_follow_its_reports() {
    let h = Harness::open("agents-router-ports").await;
    let (_, subnet) = h.network_with_subnet("alice", "n", "10.7.0.0/24").await;
    let router = h
        .create("alice", "/v2.0/routers", "router", json!({"name": "r"}))
        .await;
    let rid = router["id"].as_str().unwrap();
    let add = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(add.status, 200, "{:?}", add.body);
    let port_id = add.body["port_id"].as_str().unwrap().to_string();
    let options = ServerOptions {
        network_host: "h1".into(),
        notifier: None,
    };
    let port_status = |body: &serde_json::Value| body["port"]["status"].clone();

    let state = state_for(&h.net, &options, "h1").await.unwrap();
    assert_eq!(state.routers.len(), 1);
    let shown = h.get("admin", &format!("/v2.0/ports/{port_id}")).await;
    assert_eq!(shown.body["port"]["binding:host_id"], "h1");
    assert_eq!(port_status(&shown.body), "DOWN");
    assert!(
        !state.ports.iter().any(|p| p.id == port_id && p.bound_here),
        "the agent plugs a router port into its namespace, not as a guest tap"
    );

    let mut report = AgentReport {
        host: "h1".into(),
        active_ports: vec![port_id.clone()],
        heartbeat: chrono::Utc::now().to_rfc3339(),
        started_at: chrono::Utc::now().to_rfc3339(),
        ..Default::default()
    };
    apply_report(&h.net, &options, &report).await.unwrap();
    let shown = h.get("alice", &format!("/v2.0/ports/{port_id}")).await;
    assert_eq!(port_status(&shown.body), "ACTIVE");
    // A router the agent could not converge leaves its ports down.
    report.active_ports.clear();
    apply_report(&h.net, &options, &report).await.unwrap();
    let shown = h.get("alice", &format!("/v2.0/ports/{port_id}")).await;
    assert_eq!(port_status(&shown.body), "DOWN");
}

#[tokio::test]
async fn a_network_without_dhcp_subnets_gives_its_dhcp_port_back() {
    let h = Harness::open("agents-dhcp-port-release").await;
    let (network, subnet) = h.network_with_subnet("alice", "n", "10.8.0.0/24").await;
    let options = ServerOptions {
        network_host: "h1".into(),
        notifier: None,
    };
    let dhcp_ports = |body: &serde_json::Value| {
        body["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["device_owner"] == "network:dhcp")
            .count()
    };
    let list = format!("/v2.0/ports?network_id={}", network["id"].as_str().unwrap());
    state_for(&h.net, &options, "h1").await.unwrap();
    assert_eq!(dhcp_ports(&h.get("admin", &list).await.body), 1);
    let off = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/subnets/{}", subnet["id"].as_str().unwrap()),
            Some(json!({"subnet": {"enable_dhcp": false}})),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    let state = state_for(&h.net, &options, "h1").await.unwrap();
    assert!(state.networks.iter().all(|n| n.dhcp_port.is_none()));
    assert_eq!(dhcp_ports(&h.get("admin", &list).await.body), 0);
}
