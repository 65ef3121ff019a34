//! Routers (gateway, interfaces, routes) and floating IPs.

use super::Harness;
use serde_json::{Value, json};

/// An external network `public` (admin) with subnet 172.24.4.0/24.
async fn public(h: &Harness) -> (Value, Value) {
    let net = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"name": "public", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": "public"}),
        )
        .await;
    let subnet = h
        .create(
            "admin",
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 4, "cidr": "172.24.4.0/24"}),
        )
        .await;
    (net, subnet)
}

/// Alice's `PUT /v2.0/floatingips/{fid}` with `change` as the floating IP's body.
async fn update_fip(h: &Harness, fid: &str, change: Value) -> super::Reply {
    h.call(
        "alice",
        "PUT",
        &format!("/v2.0/floatingips/{fid}"),
        Some(json!({ "floatingip": change })),
    )
    .await
}

/// Alice's router from `subnet` to the external network `public`; answers its id.
async fn router_between(h: &Harness, public: &Value, subnet: &Value) -> String {
    let router = h
        .create(
            "alice",
            "/v2.0/routers",
            "router",
            json!({"external_gateway_info": {"network_id": public["id"]}}),
        )
        .await;
    let rid = router["id"].as_str().unwrap().to_string();
    let added = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    rid
}

#[tokio::test]
async fn routers_connect_subnets_to_the_outside() {
    let h = Harness::open("routers").await;
    let (public, public_subnet) = public(&h).await;
    // Members see the external network (rule:external) but not its provider attributes.
    let seen = h
        .get(
            "alice",
            &format!("/v2.0/networks/{}", public["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(seen.status, 200);
    assert!(seen.body["network"].get("provider:network_type").is_none());
    let public_subnet_id = public_subnet["id"].as_str().unwrap();
    let ext_subnet = h
        .get("alice", &format!("/v2.0/subnets/{public_subnet_id}"))
        .await;
    assert_eq!(ext_subnet.body["subnet"]["router:external"], true);
    let (_private, subnet) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    assert_eq!(subnet["router:external"], false);
    let router = h
        .create("alice", "/v2.0/routers", "router", json!({"name": "r1"}))
        .await;
    assert_eq!(router["external_gateway_info"], json!(null));
    assert_eq!(router["status"], "ACTIVE");
    let rid = router["id"].as_str().unwrap();
    let gw = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}"),
            Some(json!({"router": {"external_gateway_info": {"network_id": public["id"]}}})),
        )
        .await;
    assert_eq!(gw.status, 200, "{:?}", gw.body);
    let info = &gw.body["router"]["external_gateway_info"];
    assert_eq!(info["network_id"], public["id"]);
    assert_eq!(info["enable_snat"], true);
    assert_eq!(
        info["external_fixed_ips"],
        json!([{"subnet_id": public_subnet["id"], "ip_address": "172.24.4.2"}])
    );
    let snat = h
        .call("alice", "PUT", &format!("/v2.0/routers/{rid}"), Some(json!({"router": {"external_gateway_info": {"network_id": public["id"], "enable_snat": false}}})))
        .await;
    assert_eq!(snat.status, 403, "enable_snat is admin-only");
    let internal = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let not_external = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}"),
            Some(json!({"router": {"external_gateway_info": {"network_id": internal["id"]}}})),
        )
        .await;
    assert_eq!(not_external.status, 400);
    // An interface by subnet holds the subnet's gateway address.
    let add = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(add.status, 200, "{:?}", add.body);
    assert_eq!(add.body["subnet_id"], subnet["id"]);
    let port_id = add.body["port_id"].as_str().unwrap().to_string();
    let port = h.get("alice", &format!("/v2.0/ports/{port_id}")).await.body["port"].clone();
    assert_eq!(port["device_owner"], "network:router_interface");
    assert_eq!(port["device_id"], rid);
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.0.0.1");
    let again = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/ports/{port_id}"), None)
            .await
            .status,
        409
    );
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/routers/{rid}"), None)
            .await
            .status,
        409
    );
    // Static routes must go through an interface subnet.
    let routes = h
        .call("alice", "PUT", &format!("/v2.0/routers/{rid}"), Some(json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.50"}]}})))
        .await;
    assert_eq!(routes.status, 200, "{:?}", routes.body);
    assert_eq!(
        routes.body["router"]["routes"],
        json!([{"destination": "192.168.0.0/24", "nexthop": "10.0.0.50"}])
    );
    let unreachable = h
        .call("alice", "PUT", &format!("/v2.0/routers/{rid}"), Some(json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.9.0.50"}]}})))
        .await;
    assert_eq!(
        (unreachable.status, unreachable.kind()),
        (400, "InvalidRoutes")
    );
    let blocked = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(
        (blocked.status, blocked.kind()),
        (409, "RouterInterfaceInUseByRoute")
    );
    let removed_routes = h
        .call("alice", "PUT", &format!("/v2.0/routers/{rid}/remove_extraroutes"), Some(json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.50"}]}})))
        .await;
    assert_eq!(removed_routes.body["router"]["routes"], json!([]));
    let removed = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.body["port_id"], port_id);
    assert_eq!(
        h.get("alice", &format!("/v2.0/ports/{port_id}"))
            .await
            .status,
        404
    );
    let missing = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(
        (missing.status, missing.kind()),
        (404, "RouterInterfaceNotFoundForSubnet")
    );
    assert_eq!(
        h.get("bob", &format!("/v2.0/routers/{rid}")).await.status,
        404
    );
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/routers/{rid}"), None)
            .await
            .status,
        204
    );
    // The gateway port went with the router: its address is free again.
    let allocated: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM net_ip_allocations WHERE ip_address = '172.24.4.2'",
    )
    .fetch_one(h.net.db().store().pool())
    .await
    .unwrap();
    assert_eq!(allocated, 0);
}

#[tokio::test]
async fn floating_ips_need_a_router_path() {
    let h = Harness::open("fips").await;
    let (public, _) = public(&h).await;
    let (private, subnet) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    let port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": private["id"]}),
        )
        .await;
    let fip = h
        .create(
            "alice",
            "/v2.0/floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    assert_eq!(fip["floating_ip_address"], "172.24.4.2");
    assert_eq!(fip["port_id"], json!(null));
    assert_eq!(fip["status"], "DOWN");
    let fid = fip["id"].as_str().unwrap();
    // No router between the port's subnet and the external network yet.
    let unreachable = update_fip(&h, fid, json!({"port_id": port["id"]})).await;
    assert_eq!(
        (unreachable.status, unreachable.kind()),
        (404, "ExternalGatewayForFloatingIPNotFound")
    );
    let rid = router_between(&h, &public, &subnet).await;
    let rid = rid.as_str();
    let associated = update_fip(&h, fid, json!({"port_id": port["id"]})).await;
    assert_eq!(associated.status, 200, "{:?}", associated.body);
    let f = &associated.body["floatingip"];
    assert_eq!(f["router_id"], rid);
    assert_eq!(f["fixed_ip_address"], port["fixed_ips"][0]["ip_address"]);
    assert_eq!(f["port_details"]["network_id"], private["id"]);
    // The port keeps its fixed address while a floating IP uses it; the external network stays.
    let pid = port["id"].as_str().unwrap();
    let moved = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.77"}]}})),
        )
        .await;
    assert_eq!(moved.status, 400, "{:?}", moved.body);
    let busy = h
        .call(
            "admin",
            "DELETE",
            &format!("/v2.0/networks/{}", public["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((busy.status, busy.kind()), (409, "NetworkInUse"));
    // A second floating IP on the same fixed address is refused.
    let second = h
        .call(
            "alice",
            "POST",
            "/v2.0/floatingips",
            Some(
                json!({"floatingip": {"floating_network_id": public["id"], "port_id": port["id"]}}),
            ),
        )
        .await;
    assert_eq!(
        (second.status, second.kind()),
        (409, "FloatingIPPortAlreadyAssociated")
    );
    // The interface cannot go while the floating IP needs it.
    let blocked = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            Some(json!({"subnet_id": subnet["id"]})),
        )
        .await;
    assert_eq!(
        (blocked.status, blocked.kind()),
        (409, "RouterInterfaceInUseByFloatingIP")
    );
    // Another project cannot take the port.
    let bob_fip = h
        .create(
            "bob",
            "/v2.0/floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    let steal = h
        .call(
            "bob",
            "PUT",
            &format!("/v2.0/floatingips/{}", bob_fip["id"].as_str().unwrap()),
            Some(json!({"floatingip": {"port_id": port["id"]}})),
        )
        .await;
    assert_eq!(steal.status, 404);
    assert_eq!(
        h.get("bob", &format!("/v2.0/floatingips/{fid}"))
            .await
            .status,
        404
    );
    // A member may not pick the address; an admin may.
    let pick = h
        .call("alice", "POST", "/v2.0/floatingips", Some(json!({"floatingip": {"floating_network_id": public["id"], "floating_ip_address": "172.24.4.99"}})))
        .await;
    assert_eq!(pick.status, 403);
    let picked = h
        .create(
            "admin",
            "/v2.0/floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"], "floating_ip_address": "172.24.4.99"}),
        )
        .await;
    assert_eq!(picked["floating_ip_address"], "172.24.4.99");
    // Deleting the port disassociates; disassociating by null works too.
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/ports/{pid}"), None)
            .await
            .status,
        204
    );
    let after = h.get("alice", &format!("/v2.0/floatingips/{fid}")).await;
    assert_eq!(after.body["floatingip"]["port_id"], json!(null));
    assert_eq!(after.body["floatingip"]["router_id"], json!(null));
    // The gateway cannot change while floating IPs use it... none do now.
    let cleared = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/routers/{rid}"),
            Some(json!({"router": {"external_gateway_info": {}}})),
        )
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.body["router"]["external_gateway_info"], json!(null));
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/floatingips/{fid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/floatingips/{fid}"))
            .await
            .status,
        404
    );
    // Deleting the external network takes the unassociated floating IPs with it.
    let public_id = public["id"].as_str().unwrap();
    let gone = h
        .call(
            "admin",
            "DELETE",
            &format!("/v2.0/networks/{public_id}"),
            None,
        )
        .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    let bob_fip_id = bob_fip["id"].as_str().unwrap();
    assert_eq!(
        h.get("bob", &format!("/v2.0/floatingips/{bob_fip_id}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn floating_ips_count_against_the_quota() {
    let h = Harness::open("fip-quota").await;
    let (public, _) = public(&h).await;
    h.call(
        "admin",
        "PUT",
        "/v2.0/quotas/p1",
        Some(json!({"quota": {"floatingip": 1}})),
    )
    .await;
    h.create(
        "alice",
        "/v2.0/floatingips",
        "floatingip",
        json!({"floating_network_id": public["id"]}),
    )
    .await;
    let over = h
        .call(
            "alice",
            "POST",
            "/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": public["id"]}})),
        )
        .await;
    assert_eq!((over.status, over.kind()), (409, "OverQuota"));
    let internal = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let not_external = h
        .call(
            "bob",
            "POST",
            "/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": internal["id"]}})),
        )
        .await;
    assert_eq!(not_external.status, 404);
}

/// Records the `network-changed` events sent to compute.
#[derive(Default)]
struct ChangeRecorder(std::sync::Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl crate::agents::VifNotifier for ChangeRecorder {
    async fn vifs_plugged(&self, _plugged: &[(String, String)]) {}

    async fn network_changed(&self, server_id: &str, port_id: &str) {
        self.0
            .lock()
            .unwrap()
            .push((server_id.into(), port_id.into()));
    }
}

impl ChangeRecorder {
    /// The events recorded once `n` arrived (they are sent in the background).
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..200 {
            let seen = self.0.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} events: {:?}", self.0.lock().unwrap());
    }
}

#[tokio::test]
async fn floating_ip_changes_tell_compute_about_its_servers() {
    let h = Harness::open("fip-notify").await;
    let recorder = std::sync::Arc::new(ChangeRecorder::default());
    h.net.set_compute_notifier(recorder.clone());
    let (public, _) = public(&h).await;
    let (private, subnet) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    router_between(&h, &public, &subnet).await;
    let server = "6d1c3a52-0b8e-4d55-9a4f-2c4b1e0f9a11";
    let server_port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": private["id"], "device_id": server, "device_owner": "compute:nova"}),
        )
        .await;
    let other_port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": private["id"]}),
        )
        .await;
    let sp = server_port["id"].as_str().unwrap().to_string();

    // Created associated with a server's port: one event for that server.
    let fip = h
        .create(
            "alice",
            "/v2.0/floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"], "port_id": sp}),
        )
        .await;
    let fid = fip["id"].as_str().unwrap();
    assert_eq!(
        recorder.wait_for(1).await,
        [(server.to_string(), sp.clone())]
    );
    // Moved to a port of no server: the server it left hears of it.
    let moved = update_fip(&h, fid, json!({"port_id": other_port["id"]})).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(recorder.wait_for(2).await.len(), 2);
    // A description change tells nobody.
    let described = update_fip(&h, fid, json!({"description": "d"})).await;
    assert_eq!(described.status, 200, "{:?}", described.body);
    // Back on the server's port, then deleted while associated.
    update_fip(&h, fid, json!({"port_id": sp})).await;
    let deleted = h
        .call("alice", "DELETE", &format!("/v2.0/floatingips/{fid}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let events = recorder.wait_for(4).await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| *e == (server.to_string(), sp.clone())),
        "{events:?}"
    );
}
