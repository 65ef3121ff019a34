//! Two guests on one VXLAN network get their addresses from the agent's dnsmasq and ping each
//! other; a guest on another network with the same addresses cannot reach them.

use crate::common::*;
use ferrostack_network_agent::model::HostState;
use ferrostack_network_agent::names;

#[test]
fn guests_get_dhcp_leases_and_talk_only_within_their_network() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let script = lab.udhcpc_script();
    let group = default_group();
    let (net1, sub1) = dhcp_network(vni(), "10.61.0");
    let (net2, sub2) = dhcp_network(vni(), "10.61.0"); // the same addresses, another tenant
    let mut a = port(&sub1, "10.61.0.11", &[&group]);
    a.dns_name = Some("web-a".into());
    let b = port(&sub1, "10.61.0.12", &[&group]);
    let c = port(&sub2, "10.61.0.13", &[&group]);
    let state = HostState {
        networks: vec![net1.clone(), net2.clone()],
        subnets: vec![sub1.clone(), sub2.clone()],
        ports: vec![a.clone(), b.clone(), c.clone()],
        security_groups: vec![group],
        routers: vec![],
    };
    let guests = [Guest::new(&a), Guest::new(&b), Guest::new(&c)];

    let report = lab.converge(&state);
    assert_eq!(report.pending_ports.len(), 0, "{report:#?}");
    assert_eq!(report.active_ports.len(), 3, "{report:#?}");
    let bridge = names::bridge(&net1.id);
    assert!(
        link_exists(&bridge) && link_exists(&format!("vxlan-{}", net1.segmentation_id.unwrap()))
    );
    let details = sh(&format!(
        "ip -d link show dev vxlan-{}",
        net1.segmentation_id.unwrap()
    ));
    assert!(
        details.contains("dstport 4789") && details.contains("local 127.0.0.1"),
        "{details}"
    );
    assert!(
        sh(&format!("ip link show dev {}", a.device_name())).contains(&format!("master {bridge}"))
    );

    let leases: Vec<Lease> = guests
        .iter()
        .map(|g| g.dhcp(&script).expect("a DHCP lease"))
        .collect();
    assert_eq!(leases[0].ip, "10.61.0.11");
    assert_eq!(leases[1].ip, "10.61.0.12");
    assert_eq!(leases[2].ip, "10.61.0.13");
    assert_eq!(leases[0].mask, "24");
    assert_eq!(leases[0].mtu, "1450");
    assert_eq!(leases[0].router, "10.61.0.1");
    assert_eq!(leases[0].dns, "10.61.0.2");
    assert_eq!(leases[0].domain, "openstacklocal");
    // No metadata proxy configured: no classless static routes (tests/datapath/metadata.rs
    // checks the 169.254.169.254 route).
    assert_eq!(leases[0].staticroutes, "");

    assert!(guests[0].ping("10.61.0.12"), "a pings b");
    assert!(guests[1].ping("10.61.0.11"), "b pings a");
    // c has an address of the same subnet on another network: no path.
    assert!(!guests[2].ping_once("10.61.0.11"), "c must not reach a");
    assert!(!guests[2].ping_once("10.61.0.12"), "c must not reach b");
    // Its own network works (its DHCP server answers).
    assert!(guests[2].ping("10.61.0.2"), "c reaches its own DHCP port");

    // DNS names of the ports, served by the network's dnsmasq.
    let lookup = guests[1].run("busybox nslookup web-a.openstacklocal 10.61.0.2");
    let text = String::from_utf8_lossy(&lookup.stdout);
    assert!(text.contains("10.61.0.11"), "{text}");

    // Converging the same state again changes nothing.
    let again = lab.converge(&state);
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert_eq!(again.active_ports.len(), 3);
}

#[test]
fn a_changed_hosts_file_reaches_dnsmasq_without_a_restart() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let script = lab.udhcpc_script();
    let group = default_group();
    let (net, sub) = dhcp_network(vni(), "10.62.0");
    let a = port(&sub, "10.62.0.21", &[&group]);
    let mut state = HostState {
        networks: vec![net.clone()],
        subnets: vec![sub.clone()],
        ports: vec![a.clone()],
        security_groups: vec![group.clone()],
        routers: vec![],
    };
    let guest_a = Guest::new(&a);
    lab.converge(&state);
    let pid = dnsmasq_pid(&lab, &net.id).expect("dnsmasq runs");
    assert_eq!(guest_a.dhcp(&script).unwrap().ip, "10.62.0.21");

    // A new port: the hosts file changes, dnsmasq is told by SIGHUP and keeps running.
    let b = port(&sub, "10.62.0.22", &[&group]);
    state.ports.push(b.clone());
    let guest_b = Guest::new(&b);
    let report = lab.converge(&state);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("reloaded dnsmasq")),
        "{:#?}",
        report.changes
    );
    assert_eq!(
        dnsmasq_pid(&lab, &net.id),
        Some(pid),
        "dnsmasq was not restarted"
    );
    assert_eq!(guest_b.dhcp(&script).unwrap().ip, "10.62.0.22");
    let hosts = std::fs::read_to_string(lab.config.dhcp_dir(&net.id).join("host")).unwrap();
    assert!(hosts.contains(&format!(
        "{},host-10-62-0-22.openstacklocal,10.62.0.22",
        b.mac_address
    )));

    // An MTU change is on dnsmasq's command line: it restarts.
    state.networks[0].mtu = 1400;
    lab.converge(&state);
    let new_pid = dnsmasq_pid(&lab, &net.id).expect("dnsmasq runs");
    assert_ne!(new_pid, pid);
    assert_eq!(guest_b.dhcp(&script).unwrap().mtu, "1400");
}

#[test]
fn ports_wait_for_their_tap_device_or_get_one_when_configured() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let group = default_group();
    let network = vxlan_network(vni(), 1450);
    let sub = subnet(&network, "10.63.0.0/24", None);
    let a = port(&sub, "10.63.0.11", &[&group]);
    let state = HostState {
        networks: vec![network.clone()],
        subnets: vec![sub],
        ports: vec![a.clone()],
        security_groups: vec![group],
        routers: vec![],
    };
    // No tap yet (the guest is not started): the port waits.
    let report = lab.converge(&state);
    assert_eq!(report.pending_ports, vec![a.id.clone()]);
    assert!(report.active_ports.is_empty());
    // The hypervisor creates it: the next pass plugs it.
    let guest = Guest::new(&a);
    let report = lab.converge(&state);
    assert_eq!(report.active_ports, vec![a.id.clone()]);
    assert!(sh(&format!("ip link show dev {}", guest.tap)).contains(&names::bridge(&network.id)));
    drop(guest);

    // An agent told to create missing taps makes one (and removes it with the port).
    lab.config.create_missing_taps = true;
    lab.restart_agent();
    let report = lab.converge(&state);
    assert_eq!(report.active_ports, vec![a.id.clone()]);
    let details = sh(&format!("ip -d link show dev {}", a.device_name()));
    assert!(
        details.contains("tun type tap") && details.contains("mtu 1450"),
        "{details}"
    );
    lab.converge(&HostState::default());
    assert!(!link_exists(&a.device_name()));
}
