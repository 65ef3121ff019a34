//! Discovery, networks, subnets, subnet pools, policy and isolation, lists, tags, quotas.

use super::{Harness, ids};
use serde_json::json;

#[tokio::test]
async fn discovery_and_extensions() {
    let h = Harness::open("discovery").await;
    let root = h.get("", "/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["versions"][0]["id"], "v2.0");
    assert_eq!(
        root.body["versions"][0]["links"][0]["href"],
        "http://cloud:8080/networking/v2.0/"
    );
    assert_eq!(h.get("", "/v2.0/extensions").await.status, 401);
    let ext = h.get("alice", "/v2.0/extensions").await;
    assert_eq!(ext.status, 200);
    let aliases: Vec<&str> = ext.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    for wanted in [
        "security-group",
        "router",
        "external-net",
        "provider",
        "binding",
        "quotas",
    ] {
        assert!(
            aliases.contains(&wanted),
            "{wanted} missing from {aliases:?}"
        );
    }
    assert!(!aliases.contains(&"dns-integration"));
    assert_eq!(
        h.get("alice", "/v2.0/extensions/router").await.body["extension"]["alias"],
        "router"
    );
    let missing = h
        .get("alice", "/v2.0/extensions/external-gateway-multihoming")
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.body["NeutronError"]["message"].is_string());
    let resources = h.get("alice", "/v2.0").await;
    assert!(
        resources.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["collection"] == "networks")
    );
}

#[tokio::test]
async fn tenant_networks_get_vnis_and_members_do_not_see_provider_attributes() {
    let h = Harness::open("vni").await;
    let a = h
        .create("alice", "/v2.0/networks", "network", json!({"name": "a"}))
        .await;
    assert_eq!(a["status"], "ACTIVE");
    assert_eq!(a["project_id"], "p1");
    assert_eq!(a["tenant_id"], "p1");
    assert_eq!(a["mtu"], 1450);
    assert_eq!(a["revision_number"], 1);
    assert_eq!(a["subnets"], json!([]));
    for hidden in [
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
    ] {
        assert!(a.get(hidden).is_none(), "{hidden} shown to a member: {a}");
    }
    let id = a["id"].as_str().unwrap();
    let admin_view = h.get("admin", &format!("/v2.0/networks/{id}")).await.body["network"].clone();
    assert_eq!(admin_view["provider:network_type"], "vxlan");
    assert_eq!(admin_view["provider:segmentation_id"], 1);
    assert_eq!(admin_view["provider:physical_network"], json!(null));
    let b = h
        .create("bob", "/v2.0/networks", "network", json!({"name": "b"}))
        .await;
    let b_admin = h
        .get(
            "admin",
            &format!("/v2.0/networks/{}", b["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(b_admin.body["network"]["provider:segmentation_id"], 2);
    // A deleted network's VNI is reused.
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/networks/{id}"), None)
            .await
            .status,
        204
    );
    let c = h
        .create("alice", "/v2.0/networks", "network", json!({"name": "c"}))
        .await;
    let c_admin = h
        .get(
            "admin",
            &format!("/v2.0/networks/{}", c["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(c_admin.body["network"]["provider:segmentation_id"], 1);
}

#[tokio::test]
async fn provider_networks_are_validated_against_the_configuration() {
    let h = Harness::open("provider").await;
    let member = h
        .call("alice", "POST", "/v2.0/networks", Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public"}})))
        .await;
    assert_eq!(member.status, 403);
    assert_eq!(member.kind(), "PolicyNotAuthorized");
    let flat = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"name": "public", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": "public"}),
        )
        .await;
    assert_eq!(flat["mtu"], 1500);
    assert_eq!(flat["router:external"], true);
    let again = h
        .call("admin", "POST", "/v2.0/networks", Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public"}})))
        .await;
    assert_eq!((again.status, again.kind()), (409, "FlatNetworkInUse"));
    let unknown = h
        .call("admin", "POST", "/v2.0/networks", Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "physnet9"}})))
        .await;
    assert_eq!((unknown.status, unknown.kind()), (400, "InvalidInput"));
    let vxlan = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"provider:network_type": "vxlan", "provider:segmentation_id": 77}),
        )
        .await;
    assert_eq!(vxlan["provider:segmentation_id"], 77);
    let dup = h
        .call("admin", "POST", "/v2.0/networks", Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 77}})))
        .await;
    assert_eq!((dup.status, dup.kind()), (409, "TunnelIdInUse"));
    let vlan = h
        .call("admin", "POST", "/v2.0/networks", Some(json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "public", "provider:segmentation_id": 5000}})))
        .await;
    assert_eq!(vlan.status, 400);
    let too_big = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"mtu": 9000}})),
        )
        .await;
    assert_eq!(too_big.status, 400);
    let gre = h
        .call(
            "admin",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "gre"}})),
        )
        .await;
    assert_eq!(gre.status, 400);
}

#[tokio::test]
async fn projects_are_isolated_and_shared_networks_are_visible() {
    let h = Harness::open("isolation").await;
    let (net, subnet) = h
        .network_with_subnet("alice", "private", "10.0.0.0/24")
        .await;
    let id = net["id"].as_str().unwrap();
    assert_eq!(
        h.get("bob", &format!("/v2.0/networks/{id}")).await.status,
        404
    );
    assert_eq!(
        h.get("bob", &format!("/v2.0/networks/{id}")).await.kind(),
        "NetworkNotFound"
    );
    assert!(ids(&h.get("bob", "/v2.0/networks").await.body, "networks").is_empty());
    assert!(ids(&h.get("bob", "/v2.0/subnets").await.body, "subnets").is_empty());
    let put = h
        .call(
            "bob",
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(json!({"network": {"name": "x"}})),
        )
        .await;
    assert_eq!(put.status, 404);
    assert_eq!(
        h.call("bob", "DELETE", &format!("/v2.0/networks/{id}"), None)
            .await
            .status,
        404
    );
    // A port on another project's private network is hidden too.
    let port = h
        .call(
            "bob",
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": id}})),
        )
        .await;
    assert_eq!(port.status, 404);
    // Members may not share; admins may, and then others see it but may not change it.
    let share = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(json!({"network": {"shared": true}})),
        )
        .await;
    assert_eq!(share.status, 403);
    let shared = h
        .call(
            "admin",
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(json!({"network": {"shared": true}})),
        )
        .await;
    assert_eq!(shared.status, 200);
    assert_eq!(shared.body["network"]["revision_number"], 2);
    let seen = h.get("bob", &format!("/v2.0/networks/{id}")).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["network"]["subnets"], json!([subnet["id"]]));
    let rename = h
        .call(
            "bob",
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(json!({"network": {"name": "mine"}})),
        )
        .await;
    assert_eq!(rename.status, 403);
    assert_eq!(
        h.get(
            "bob",
            &format!("/v2.0/subnets/{}", subnet["id"].as_str().unwrap())
        )
        .await
        .status,
        200
    );
    // Bob may plug a port into the shared network.
    let port = h
        .create("bob", "/v2.0/ports", "port", json!({"network_id": id}))
        .await;
    assert_eq!(port["project_id"], "p2");
    // The reader of p1 sees but may not create.
    assert_eq!(
        h.get("reader", &format!("/v2.0/networks/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        h.call(
            "reader",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {}}))
        )
        .await
        .status,
        403
    );
    // Naming another project needs admin.
    let other = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"project_id": "p2"}})),
        )
        .await;
    assert_eq!(other.status, 400);
    let for_bob = h
        .create(
            "admin",
            "/v2.0/networks",
            "network",
            json!({"project_id": "p2"}),
        )
        .await;
    assert_eq!(for_bob["project_id"], "p2");
}

#[tokio::test]
async fn bodies_are_checked_like_neutron() {
    let h = Harness::open("bodies").await;
    let unknown = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"bogus": 1}})),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("Unrecognized attribute")
    );
    let ro = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"status": "DOWN"}})),
        )
        .await;
    assert_eq!(ro.status, 400);
    let boolean = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"admin_state_up": "maybe"}})),
        )
        .await;
    assert_eq!(boolean.status, 400);
    let missing = h
        .call("alice", "POST", "/v2.0/networks", Some(json!({"net": {}})))
        .await;
    assert_eq!(missing.status, 400);
    let net = h
        .create(
            "alice",
            "/v2.0/networks",
            "network",
            json!({"admin_state_up": "False"}),
        )
        .await;
    assert_eq!(net["admin_state_up"], false);
    let id = net["id"].as_str().unwrap();
    let status = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(json!({"network": {"status": "DOWN"}})),
        )
        .await;
    assert_eq!(status.status, 400);
    assert!(
        status.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    let not_found = h.get("alice", "/v2.0/networks/private").await;
    assert_eq!(
        (not_found.status, not_found.kind()),
        (404, "NetworkNotFound")
    );
    let bulk = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"networks": [{"name": "n1"}, {"name": "n2"}]})),
        )
        .await;
    assert_eq!(bulk.status, 201);
    assert_eq!(bulk.body["networks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn subnets_get_gateways_pools_and_checks() {
    let h = Harness::open("subnets").await;
    let net = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let nid = net["id"].as_str().unwrap();
    let s = h
        .create("alice", "/v2.0/subnets", "subnet", json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24",
            "dns_nameservers": ["8.8.8.8"], "host_routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.9"}]}))
        .await;
    assert_eq!(s["gateway_ip"], "10.0.0.1");
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(s["enable_dhcp"], true);
    assert_eq!(s["ipv6_ra_mode"], json!(null));
    assert_eq!(s["subnetpool_id"], json!(null));
    let overlap = h
        .call(
            "alice",
            "POST",
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.0.0.128/25"}})),
        )
        .await;
    assert_eq!((overlap.status, overlap.kind()), (400, "InvalidInput"));
    let no_gw = h
        .create(
            "alice",
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.1.0.0/28", "gateway_ip": null}),
        )
        .await;
    assert_eq!(no_gw["gateway_ip"], json!(null));
    assert_eq!(
        no_gw["allocation_pools"],
        json!([{"start": "10.1.0.1", "end": "10.1.0.14"}])
    );
    let bad_pool = h
        .call(
            "alice",
            "POST",
            "/v2.0/subnets",
            Some(
                json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24",
            "allocation_pools": [{"start": "10.2.0.10", "end": "10.3.0.10"}]}}),
            ),
        )
        .await;
    assert_eq!(
        (bad_pool.status, bad_pool.kind()),
        (400, "OutOfBoundsAllocationPool")
    );
    let gw_in_pool = h
        .call("alice", "POST", "/v2.0/subnets", Some(json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24",
            "gateway_ip": "10.2.0.5", "allocation_pools": [{"start": "10.2.0.2", "end": "10.2.0.20"}]}})))
        .await;
    assert_eq!(
        (gw_in_pool.status, gw_in_pool.kind()),
        (409, "GatewayConflictWithAllocationPools")
    );
    let mismatch = h
        .call(
            "alice",
            "POST",
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": nid, "ip_version": 6, "cidr": "10.5.0.0/24"}})),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    let v6 = h
        .create(
            "alice",
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": nid, "ip_version": 6, "cidr": "2001:db8::/64",
            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
    assert_eq!(v6["gateway_ip"], "2001:db8::1");
    let v4_modes = h
        .call("alice", "POST", "/v2.0/subnets", Some(json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.6.0.0/24", "ipv6_ra_mode": "slaac"}})))
        .await;
    assert_eq!(v4_modes.status, 400);
    // Updates: name, pools, gateway; the CIDR is read-only.
    let sid = s["id"].as_str().unwrap();
    let up = h
        .call("alice", "PUT", &format!("/v2.0/subnets/{sid}"), Some(json!({"subnet": {"name": "renamed",
            "allocation_pools": [{"start": "10.0.0.100", "end": "10.0.0.200"}], "gateway_ip": "10.0.0.254"}})))
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert_eq!(up.body["subnet"]["gateway_ip"], "10.0.0.254");
    assert_eq!(up.body["subnet"]["revision_number"], 2);
    let cidr = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/subnets/{sid}"),
            Some(json!({"subnet": {"cidr": "10.9.0.0/24"}})),
        )
        .await;
    assert_eq!(cidr.status, 400);
    let net_view = h.get("alice", &format!("/v2.0/networks/{nid}")).await;
    assert_eq!(
        net_view.body["network"]["subnets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Deleting the network takes its subnets.
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/networks/{nid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/subnets/{sid}")).await.status,
        404
    );
}

#[tokio::test]
async fn subnet_pools_hand_out_free_prefixes() {
    let h = Harness::open("pools").await;
    let pool = h
        .create(
            "alice",
            "/v2.0/subnetpools",
            "subnetpool",
            json!({"name": "p", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24}),
        )
        .await;
    assert_eq!(pool["ip_version"], 4);
    assert_eq!(pool["min_prefixlen"], 8);
    assert_eq!(pool["max_prefixlen"], 32);
    let net = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let mut cidrs = Vec::new();
    for _ in 0..2 {
        let s = h
            .create(
                "alice",
                "/v2.0/subnets",
                "subnet",
                json!({"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}),
            )
            .await;
        cidrs.push(s["cidr"].as_str().unwrap().to_string());
        assert_eq!(s["subnetpool_id"], pool["id"]);
    }
    assert_eq!(cidrs, ["10.10.0.0/24", "10.10.1.0/24"]);
    let net2 = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let s = h
        .create("alice", "/v2.0/subnets", "subnet", json!({"network_id": net2["id"], "ip_version": 4, "subnetpool_id": pool["id"], "prefixlen": 26}))
        .await;
    assert_eq!(s["cidr"], "10.10.2.0/26");
    let too_small = h
        .call("alice", "POST", "/v2.0/subnets", Some(json!({"subnet": {"network_id": net2["id"], "ip_version": 4, "subnetpool_id": pool["id"], "prefixlen": 4}})))
        .await;
    assert_eq!(too_small.status, 400);
    let in_use = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.0/subnetpools/{}", pool["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(in_use.status, 409);
    assert_eq!(
        h.get(
            "bob",
            &format!("/v2.0/subnetpools/{}", pool["id"].as_str().unwrap())
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn lists_filter_sort_page_and_trim() {
    let h = Harness::open("lists").await;
    for name in ["c", "a", "b", "d"] {
        h.create(
            "alice",
            "/v2.0/networks",
            "network",
            json!({"name": name, "admin_state_up": name != "d"}),
        )
        .await;
    }
    let sorted = h
        .get(
            "alice",
            "/v2.0/networks?sort_key=name&sort_dir=desc&fields=name",
        )
        .await;
    assert_eq!(
        sorted.body["networks"],
        json!([{"name": "d"}, {"name": "c"}, {"name": "b"}, {"name": "a"}])
    );
    let filtered = h.get("alice", "/v2.0/networks?admin_state_up=false").await;
    assert_eq!(filtered.body["networks"].as_array().unwrap().len(), 1);
    let two = h.get("alice", "/v2.0/networks?name=a&name=b").await;
    assert_eq!(two.body["networks"].as_array().unwrap().len(), 2);
    let page = h
        .get("alice", "/v2.0/networks?limit=3&sort_key=name&sort_dir=asc")
        .await;
    assert_eq!(page.body["networks"].as_array().unwrap().len(), 3);
    let next = page.body["networks_links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap()["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        next.starts_with("http://cloud:8080/networking/v2.0/networks?"),
        "{next}"
    );
    let rest = h
        .get("alice", &next.replace("http://cloud:8080/networking", ""))
        .await;
    assert_eq!(rest.body["networks"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["networks"][0]["name"], "d");
    let bad = h
        .get("alice", "/v2.0/networks?sort_key=bogus&sort_dir=asc")
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn tags_follow_the_resource() {
    let h = Harness::open("tags").await;
    let net = h
        .create(
            "alice",
            "/v2.0/networks",
            "network",
            json!({"tags": ["red"]}),
        )
        .await;
    let id = net["id"].as_str().unwrap();
    assert_eq!(net["tags"], json!(["red"]));
    assert_eq!(
        h.call(
            "alice",
            "PUT",
            &format!("/v2.0/networks/{id}/tags/blue"),
            None
        )
        .await
        .status,
        201
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/networks/{id}/tags/blue"))
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/networks/{id}/tags/green"))
            .await
            .status,
        404
    );
    let all = h.get("alice", &format!("/v2.0/networks/{id}/tags")).await;
    assert_eq!(all.body["tags"], json!(["red", "blue"]));
    let replaced = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/networks/{id}/tags"),
            Some(json!({"tags": ["x", "y"]})),
        )
        .await;
    assert_eq!(replaced.body["tags"], json!(["x", "y"]));
    let shown = h.get("alice", &format!("/v2.0/networks/{id}")).await.body["network"].clone();
    assert_eq!(shown["tags"], json!(["x", "y"]));
    assert!(shown["revision_number"].as_i64().unwrap() >= 3);
    assert_eq!(
        h.get("alice", "/v2.0/networks?tags=x,y").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.get("alice", "/v2.0/networks?tags=x,z").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        h.call(
            "bob",
            "PUT",
            &format!("/v2.0/networks/{id}/tags/mine"),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("/v2.0/networks/{id}/tags/x"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("/v2.0/networks/{id}/tags"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/networks/{id}/tags"))
            .await
            .body["tags"],
        json!([])
    );
}

#[tokio::test]
async fn quotas_are_enforced_and_reported() {
    let h = Harness::open("quotas").await;
    let set = h
        .call(
            "alice",
            "PUT",
            "/v2.0/quotas/p1",
            Some(json!({"quota": {"network": 2}})),
        )
        .await;
    assert_eq!(set.status, 403);
    let set = h
        .call(
            "admin",
            "PUT",
            "/v2.0/quotas/p1",
            Some(json!({"quota": {"network": 2}})),
        )
        .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.body["quota"]["network"], 2);
    assert_eq!(set.body["quota"]["port"], 500);
    for _ in 0..2 {
        h.create("alice", "/v2.0/networks", "network", json!({}))
            .await;
    }
    let over = h
        .call(
            "alice",
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {}})),
        )
        .await;
    assert_eq!((over.status, over.kind()), (409, "OverQuota"));
    let details = h.get("admin", "/v2.0/quotas/p1/details").await;
    assert_eq!(
        details.body["quota"]["network"],
        json!({"limit": 2, "used": 2, "reserved": 0})
    );
    assert_eq!(
        details.body["quota"]["security_group"]["used"], 1,
        "the default group counts"
    );
    let listed = h.get("admin", "/v2.0/quotas").await;
    assert_eq!(listed.body["quotas"][0]["project_id"], "p1");
    assert_eq!(h.get("alice", "/v2.0/quotas").await.status, 403);
    assert_eq!(
        h.get("admin", "/v2.0/quotas/p2/default").await.body["quota"]["network"],
        100
    );
    assert_eq!(
        h.call("admin", "DELETE", "/v2.0/quotas/p1", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("admin", "/v2.0/quotas/p1").await.body["quota"]["network"],
        100
    );
    let bad = h
        .call(
            "admin",
            "PUT",
            "/v2.0/quotas/p1",
            Some(json!({"quota": {"bogus": 1}})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let below = h
        .call(
            "admin",
            "PUT",
            "/v2.0/quotas/p1",
            Some(json!({"quota": {"network": 1, "check_limit": true}})),
        )
        .await;
    assert_eq!(below.status, 400, "2 networks are in use");
    let forced = h
        .call(
            "admin",
            "PUT",
            "/v2.0/quotas/p1",
            Some(json!({"quota": {"network": 1, "force": true}})),
        )
        .await;
    assert_eq!(forced.body["quota"]["network"], 1);
}

#[tokio::test]
async fn if_match_revisions_guard_updates() {
    let h = Harness::open("ifmatch").await;
    let net = h
        .create("alice", "/v2.0/networks", "network", json!({}))
        .await;
    let id = net["id"].as_str().unwrap();
    let req = |rev: &str| {
        axum::http::Request::builder()
            .method("PUT")
            .uri(format!("/v2.0/networks/{id}"))
            .header("x-auth-token", "alice")
            .header("content-type", "application/json")
            .header("if-match", format!("revision_number={rev}"))
            .body(axum::body::Body::from(
                json!({"network": {"name": "x"}}).to_string(),
            ))
            .unwrap()
    };
    use tower::ServiceExt;
    let stale = h.router.clone().oneshot(req("7")).await.unwrap();
    assert_eq!(stale.status(), 412);
    let fresh = h.router.clone().oneshot(req("1")).await.unwrap();
    assert_eq!(fresh.status(), 200);
}
