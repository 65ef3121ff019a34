//! Routers with real packets: a guest reaches an "external host" (a namespace on the external
//! network's flat interface, with no route back to tenant networks) only through SNAT; a
//! floating IP makes a guest reachable from that host and is its source address outbound.

use crate::common::*;
use ferrostack_network_agent::model::{
    ExternalGateway, FloatingIp, HostState, Route, Router, RouterInterface,
};
use ferrostack_network_agent::names;

/// An external host: namespace `ns` behind veth `uplink` (its host end, the flat network's
/// physical interface), at 203.0.113.1/24, counting packets by source address.
fn external_host(id: &str, cleanup: &mut Cleanup) -> (String, String) {
    let ns = format!("fsx-{id}");
    let uplink = format!("fse{id}");
    cleanup.namespaces.push(ns.clone());
    cleanup.links.push(uplink.clone());
    sh(&format!("ip netns add {ns}"));
    sh(&format!(
        "ip link add {uplink} type veth peer name eth0 netns {ns}"
    ));
    sh(&format!(
        "ip -n {ns} addr add 203.0.113.1/24 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up"
    ));
    sh(&format!(
        "ip netns exec {ns} nft -f - <<'EOF'\ntable ip seen {{\n chain input {{\n type filter hook input priority 0;\n \
         ip saddr 203.0.113.10 counter\n ip saddr 203.0.113.20 counter\n }}\n}}\nEOF"
    ));
    (ns, uplink)
}

/// Packets the external host received from `source`.
fn seen_from(ns: &str, source: &str) -> u64 {
    let listing = sh(&format!("ip netns exec {ns} nft list chain ip seen input"));
    listing
        .lines()
        .find(|l| l.contains(&format!("ip saddr {source} counter")))
        .and_then(|l| l.split("packets ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn ping_from(ns: &str, ip: &str) -> bool {
    run(&format!("ip netns exec {ns} busybox ping -c 2 -W 1 {ip}"))
        .status
        .success()
}

#[test]
fn snat_and_floating_ips_connect_guests_with_the_external_network() {
    crate::skip_unless_capable!();
    let id = format!("{:06x}", random_u32() & 0xff_ffff);
    let mut cleanup = Cleanup::default();
    let (ext_ns, uplink) = external_host(&id, &mut cleanup);
    let physnet = format!("ext{id}");
    let mut lab = Lab::new(|c| {
        c.physical_interface_mappings
            .insert(physnet.clone(), uplink.clone());
    });
    let script = lab.udhcpc_script();

    let ext = flat_network(&physnet);
    let mut ext_sub = subnet(&ext, "203.0.113.0/24", Some("203.0.113.1"));
    ext_sub.enable_dhcp = false;
    let (net, sub) = dhcp_network(vni(), "10.70.0");
    let mut group = default_group();
    group.rules.push(icmp_in());
    let g1_port = port(&sub, "10.70.0.5", &[&group]);
    let g2_port = port(&sub, "10.70.0.6", &[&group]);
    let mut router = Router {
        id: uuid(),
        project_id: "project-a".into(),
        interfaces: vec![RouterInterface {
            network_id: net.id.clone(),
            port: service_port(&sub, "10.70.0.1"),
        }],
        external_gateway: Some(ExternalGateway {
            network_id: ext.id.clone(),
            port: service_port(&ext_sub, "203.0.113.10"),
            enable_snat: true,
        }),
        floating_ips: vec![FloatingIp {
            id: uuid(),
            floating_ip_address: "203.0.113.20".parse().unwrap(),
            fixed_ip_address: "10.70.0.5".parse().unwrap(),
        }],
        routes: vec![Route {
            destination: "192.0.2.0/24".parse().unwrap(),
            nexthop: "203.0.113.1".parse().unwrap(),
        }],
    };
    let mut state = HostState {
        networks: vec![ext.clone(), net.clone()],
        subnets: vec![ext_sub.clone(), sub.clone()],
        ports: vec![g1_port.clone(), g2_port.clone()],
        security_groups: vec![group],
        routers: vec![router.clone()],
    };
    let (g1, g2) = (Guest::new(&g1_port), Guest::new(&g2_port));
    lab.converge(&state);

    let ns = names::router_namespace(&router.id);
    let qr = names::router_interface(&router.interfaces[0].port.id);
    let qg = names::router_gateway(&router.external_gateway.as_ref().unwrap().port.id);
    let addresses = sh(&format!("ip -n {ns} -br addr show"));
    assert!(
        addresses.contains(&qr) && addresses.contains("10.70.0.1/24"),
        "{addresses}"
    );
    assert!(
        addresses.contains(&qg)
            && addresses.contains("203.0.113.10/24")
            && addresses.contains("203.0.113.20/32"),
        "{addresses}"
    );
    let routes = sh(&format!("ip -n {ns} route show proto static"));
    assert!(
        routes.contains("default via 203.0.113.1")
            && routes.contains("192.0.2.0/24 via 203.0.113.1"),
        "{routes}"
    );
    assert!(
        sh(&format!("ip link show dev {uplink}"))
            .contains(&format!("master {}", names::bridge(&ext.id)))
    );

    assert_eq!(g1.dhcp(&script).unwrap().router, "10.70.0.1");
    assert_eq!(g2.dhcp(&script).unwrap().ip, "10.70.0.6");

    // Outbound without a floating IP: source-NATed to the gateway address (the external host
    // has no route back to 10.70.0.0/24, so a reply proves the SNAT).
    assert!(
        g2.ping("203.0.113.1"),
        "g2 reaches the external host through SNAT"
    );
    assert!(seen_from(&ext_ns, "203.0.113.10") > 0);
    // Inbound to the floating IP reaches g1; outbound from g1 leaves as the floating IP.
    assert!(
        ping_from(&ext_ns, "203.0.113.20"),
        "the floating IP reaches g1"
    );
    let before = seen_from(&ext_ns, "203.0.113.20");
    assert!(g1.ping("203.0.113.1"));
    assert!(
        seen_from(&ext_ns, "203.0.113.20") > before,
        "g1's traffic leaves as its floating IP"
    );
    // An address nobody holds on this isolated external network does not answer.
    assert!(!ping_from(&ext_ns, "203.0.113.21"));

    let again = lab.converge(&state);
    assert!(again.changes.is_empty(), "{:#?}", again.changes);

    // Disassociating the floating IP closes the way in; SNAT still takes g1 out.
    router.floating_ips.clear();
    state.routers = vec![router.clone()];
    lab.converge(&state);
    assert!(!sh(&format!("ip -n {ns} -br addr show")).contains("203.0.113.20"));
    assert!(
        !ping_from(&ext_ns, "203.0.113.20"),
        "no floating IP, no way in"
    );
    let before = seen_from(&ext_ns, "203.0.113.10");
    assert!(g1.ping("203.0.113.1"));
    assert!(seen_from(&ext_ns, "203.0.113.10") > before);

    // Without SNAT the tenant addresses leave unchanged and the reply has no way back.
    router.external_gateway.as_mut().unwrap().enable_snat = false;
    state.routers = vec![router];
    lab.converge(&state);
    assert!(
        !g2.ping("203.0.113.1"),
        "no SNAT: the external host cannot answer"
    );
}
