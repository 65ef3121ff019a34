//! Ports and IPAM: addresses, MACs, bindings, address changes, and no address handed out twice
//! under concurrent creates (on SQLite, and on PostgreSQL with `FERROSTACK_TEST_DATABASE_URL`).

use super::Harness;
use crate::events::{Event, TOPIC};
use serde_json::{Value, json};
use std::collections::HashSet;

fn ip_of(port: &Value) -> String {
    port["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn ports_get_addresses_macs_and_the_default_group() {
    let h = Harness::open("ports").await;
    let (net, subnet) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    let mut events = h.bus.subscribe_events().await;
    let port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"], "name": "p"}),
        )
        .await;
    assert_eq!(
        port["fixed_ips"],
        json!([{"subnet_id": subnet["id"], "ip_address": "10.0.0.2"}])
    );
    assert!(
        port["mac_address"]
            .as_str()
            .unwrap()
            .starts_with("fa:16:3e:")
    );
    assert_eq!(port["status"], "DOWN");
    assert_eq!(port["port_security_enabled"], true);
    assert!(
        port.get("binding:host_id").is_none(),
        "bindings are admin-only: {port}"
    );
    let groups = h.get("alice", "/v2.0/security-groups?name=default").await;
    assert_eq!(
        port["security_groups"],
        json!([groups.body["security_groups"][0]["id"]])
    );
    let event: Event =
        serde_json::from_slice(&events.next_within(2).await.expect("an event")).unwrap();
    assert_eq!(
        (event.resource.as_str(), event.action.as_str()),
        ("port", "created")
    );
    assert_eq!(event.network_id.as_deref(), net["id"].as_str());
    // A specific address; a taken one is a 409; one outside the subnet a 400.
    let fixed = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}),
        )
        .await;
    assert_eq!(ip_of(&fixed), "10.0.0.50");
    let taken = h
        .call("alice", "POST", "/v2.0/ports", Some(json!({"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}})))
        .await;
    assert_eq!(
        (taken.status, taken.kind()),
        (409, "IpAddressAlreadyAllocated")
    );
    let outside = h
        .call("alice", "POST", "/v2.0/ports", Some(json!({"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.9.0.5"}]}})))
        .await;
    assert_eq!(
        (outside.status, outside.kind()),
        (400, "InvalidIpForNetwork")
    );
    let mac_dup = h
        .call(
            "alice",
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": net["id"], "mac_address": port["mac_address"]}})),
        )
        .await;
    assert_eq!((mac_dup.status, mac_dup.kind()), (409, "MacAddressInUse"));
    // Deleting returns the address.
    let pid = port["id"].as_str().unwrap();
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/ports/{pid}"), None)
            .await
            .status,
        204
    );
    let again = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"]}),
        )
        .await;
    assert_eq!(ip_of(&again), "10.0.0.2");
    // Address changes through updates.
    let aid = again["id"].as_str().unwrap();
    let moved = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/ports/{aid}"),
            Some(json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.60"}]}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(ip_of(&moved.body["port"]), "10.0.0.60");
    let reuse = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
        )
        .await;
    assert_eq!(
        ip_of(&reuse),
        "10.0.0.2",
        "the old address went back to the pool"
    );
    // The network cannot go while ports use it.
    let busy = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.0/networks/{}", net["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((busy.status, busy.kind()), (409, "NetworkInUse"));
    let sid = subnet["id"].as_str().unwrap();
    let busy = h
        .call("alice", "DELETE", &format!("/v2.0/subnets/{sid}"), None)
        .await;
    assert_eq!((busy.status, busy.kind()), (409, "SubnetInUse"));
}

#[tokio::test]
async fn bindings_are_admin_only_and_reach_the_agents_queries() {
    let h = Harness::open("bindings").await;
    let (net, _) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    let port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"]}),
        )
        .await;
    let pid = port["id"].as_str().unwrap();
    let member = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"binding:host_id": "h1"}})),
        )
        .await;
    assert_eq!(member.status, 403);
    let admin = h
        .call(
            "admin",
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"binding:host_id": "h1",
            "device_id": "vm-1", "device_owner": "compute:nova"}})),
        )
        .await;
    assert_eq!(admin.status, 200, "{:?}", admin.body);
    assert_eq!(admin.body["port"]["binding:vif_type"], "bridge");
    assert_eq!(
        admin.body["port"]["binding:vif_details"]["port_filter"],
        true
    );
    let bound = crate::db::ports::on_host(h.net.db(), "h1").await.unwrap();
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].id, pid);
    assert_eq!(
        crate::db::ports::networks_on_host(h.net.db(), "h1")
            .await
            .unwrap()[0]
            .id,
        net["id"].as_str().unwrap()
    );
    assert_eq!(
        crate::db::ports::of_network(h.net.db(), net["id"].as_str().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // The agent reports the port wired.
    let active = crate::db::ports::set_status(h.net.db(), pid, "ACTIVE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.status, "ACTIVE");
    assert_eq!(
        h.get("alice", &format!("/v2.0/ports/{pid}")).await.body["port"]["status"],
        "ACTIVE"
    );
    // Members cannot delete a compute port (upstream's delete_port rule); admins can.
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/ports/{pid}"), None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call("admin", "DELETE", &format!("/v2.0/ports/{pid}"), None)
            .await
            .status,
        204
    );
    // Members may not claim network-owned device owners on networks they do not own.
    let shared = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"shared": true}),
        )
        .await;
    let dhcp = h
        .call(
            "bob",
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": shared["id"], "device_owner": "network:dhcp"}})),
        )
        .await;
    assert_eq!(dhcp.status, 403);
}

#[tokio::test]
async fn address_pairs_and_port_security() {
    let h = Harness::open("pairs").await;
    let (net, _) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    let port = h
        .create("alice", "/v2.0/ports", "port", json!({"network_id": net["id"], "allowed_address_pairs": [{"ip_address": "10.0.0.200"}]}))
        .await;
    assert_eq!(
        port["allowed_address_pairs"][0]["mac_address"],
        port["mac_address"]
    );
    let pid = port["id"].as_str().unwrap();
    let off = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"port_security_enabled": false}})),
        )
        .await;
    assert_eq!(off.status, 409);
    let off = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"port_security_enabled": false,
            "security_groups": [], "allowed_address_pairs": []}})),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    assert_eq!(off.body["port"]["security_groups"], json!([]));
    let missing_ip = h
        .call("alice", "POST", "/v2.0/ports", Some(json!({"port": {"network_id": net["id"], "allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:01"}]}})))
        .await;
    assert_eq!(missing_ip.status, 400);
}

#[tokio::test]
async fn ipv6_slaac_ports_get_eui64_addresses() {
    let h = Harness::open("slaac").await;
    let net = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let v6 = h
        .create(
            "alice",
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 6, "cidr": "2001:db8::/64",
            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
    let v4 = h
        .create(
            "alice",
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
    let port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"], "mac_address": "fa:16:3e:12:34:56"}),
        )
        .await;
    let ips: Vec<(String, String)> = port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["subnet_id"].as_str().unwrap().into(),
                f["ip_address"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        ips.contains(&(v4["id"].as_str().unwrap().into(), "10.0.0.2".into())),
        "{ips:?}"
    );
    assert!(
        ips.contains(&(
            v6["id"].as_str().unwrap().into(),
            "2001:db8::f816:3eff:fe12:3456".into()
        )),
        "{ips:?}"
    );
    // Deleting the SLAAC subnet takes the address off the port.
    let sid = v6["id"].as_str().unwrap();
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/subnets/{sid}"), None)
            .await
            .status,
        204
    );
    let after = h
        .get(
            "alice",
            &format!("/v2.0/ports/{}", port["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after.body["port"]["fixed_ips"].as_array().unwrap().len(), 1);
}

/// Many concurrent creates on a small subnet: every address at most once, the rest refused
/// with Neutron's 409, and every address back after the deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_port_creates_never_share_an_address() {
    let h = Harness::open("ipam-race").await;
    // A /27: 29 usable addresses once the gateway is out. Each port belongs to a project of
    // its own, so no project quota lock serialises the creates: only IPAM's subnet lock does.
    let net = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"shared": true}),
        )
        .await;
    h.create(
        "admin",
        "/v2.0/subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.7.0.0/27"}),
    )
    .await;
    let nid = net["id"].as_str().unwrap().to_string();
    let attempts = 40;
    let tasks: Vec<_> = (0..attempts)
        .map(|i| {
            let router = h.router.clone();
            let nid = nid.clone();
            tokio::spawn(async move {
                use tower::ServiceExt;
                let body = json!({"port": {"network_id": nid, "project_id": format!("race-{i}"), "security_groups": []}});
                let req = axum::http::Request::post("/v2.0/ports")
                    .header("x-auth-token", "admin")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap();
                let response = router.oneshot(req).await.unwrap();
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut addresses = Vec::new();
    let mut refused = 0;
    let mut port_ids = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        let (status, body) = task.unwrap();
        match status {
            201 => {
                addresses.push(ip_of(&body["port"]));
                port_ids.push(body["port"]["id"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(
                    body["NeutronError"]["type"], "IpAddressGenerationFailure",
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let unique: HashSet<&String> = addresses.iter().collect();
    assert_eq!(
        unique.len(),
        addresses.len(),
        "an address was handed out twice: {addresses:?}"
    );
    assert_eq!(
        addresses.len(),
        29,
        "every usable address is handed out once"
    );
    assert_eq!(refused, attempts - 29);
    // Parallel deletes give every address back.
    let deletes: Vec<_> = port_ids
        .iter()
        .map(|id| {
            let router = h.router.clone();
            let id = id.clone();
            tokio::spawn(async move {
                use tower::ServiceExt;
                let req = axum::http::Request::delete(format!("/v2.0/ports/{id}"))
                    .header("x-auth-token", "admin")
                    .body(axum::body::Body::empty())
                    .unwrap();
                router.oneshot(req).await.unwrap().status().as_u16()
            })
        })
        .collect();
    for d in futures_util::future::join_all(deletes).await {
        assert_eq!(d.unwrap(), 204);
    }
    let allocations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM net_ip_allocations")
        .fetch_one(h.net.db().store().pool())
        .await
        .unwrap();
    assert_eq!(allocations, 0);
    let port = h
        .create("bob", "/v2.0/ports", "port", json!({"network_id": nid}))
        .await;
    assert_eq!(ip_of(&port), "10.7.0.2");
}

/// Concurrent first uses of a project make exactly one default security group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_makes_one_default_group() {
    let h = Harness::open("default-sg-race").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = h.net.db().clone();
            tokio::spawn(async move {
                crate::db::security_groups::ensure_default(&db, "p9")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let ids: HashSet<String> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let groups: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM net_security_groups WHERE project_id = 'p9'")
            .fetch_one(h.net.db().store().pool())
            .await
            .unwrap();
    assert_eq!(groups, 1);
}

trait EventsWithin {
    async fn next_within(&mut self, secs: u64) -> Option<Vec<u8>>;
}

impl EventsWithin for Box<dyn ferrostack_bus::EventStream> {
    async fn next_within(&mut self, secs: u64) -> Option<Vec<u8>> {
        tokio::time::timeout(std::time::Duration::from_secs(secs), self.next())
            .await
            .ok()
            .flatten()
    }
}

trait Subscribe {
    async fn subscribe_events(&self) -> Box<dyn ferrostack_bus::EventStream>;
}

impl Subscribe for std::sync::Arc<ferrostack_bus::InProcessBus> {
    async fn subscribe_events(&self) -> Box<dyn ferrostack_bus::EventStream> {
        use ferrostack_bus::MessageBus;
        self.subscribe(TOPIC).await.unwrap()
    }
}
