//! Security groups and anti-spoofing with real packets: default deny ingress, an ICMP rule
//! switched on and off, port ranges with a remote prefix, and guests that change their address
//! or MAC, or pretend to be a DHCP server.

use crate::common::*;
use ferrostack_network_agent::model::{
    AddressPair, Direction, HostState, Network, SecurityGroup, Subnet,
};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn static_network() -> (Network, Subnet, String) {
    let prefix = format!("10.{}.{}", 64 + random_u32() % 60, random_u32() % 250);
    let network = vxlan_network(vni(), 1450);
    let subnet = subnet(&network, &format!("{prefix}.0/24"), None);
    (network, subnet, prefix)
}

fn state(
    network: &Network,
    subnet: &Subnet,
    ports: Vec<ferrostack_network_agent::model::Port>,
    groups: Vec<SecurityGroup>,
) -> HostState {
    HostState {
        networks: vec![network.clone()],
        subnets: vec![subnet.clone()],
        ports,
        security_groups: groups,
        routers: vec![],
    }
}

/// A guest listening once on TCP `port`; its output is what it received.
fn listen_tcp(guest: &Guest, port: u16) -> Child {
    listen(
        guest,
        &[
            "timeout",
            "4",
            "busybox",
            "nc",
            "-l",
            "-p",
            &port.to_string(),
        ],
    )
}

/// A guest listening for one UDP datagram on `port`.
fn listen_udp(guest: &Guest, script: &str, port: u16) -> Child {
    listen(
        guest,
        &["python3", script, "listen", &port.to_string(), "3"],
    )
}

fn listen(guest: &Guest, command: &[&str]) -> Child {
    let child = Command::new("ip")
        .args(["netns", "exec", &guest.ns])
        .args(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the listener starts");
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn received(child: Child) -> String {
    let output = child.wait_with_output().expect("nc ends");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ingress_is_denied_by_default_and_an_icmp_rule_allows_ping() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let (net, sub, p) = static_network();
    let open = default_group();
    let mut closed = egress_only_group();
    let a = port(&sub, &format!("{p}.11"), &[&open]);
    let c = port(&sub, &format!("{p}.13"), &[&closed]);
    let (ga, gc) = (Guest::new(&a), Guest::new(&c));
    ga.set_address(&format!("{p}.11/24"), None);
    gc.set_address(&format!("{p}.13/24"), None);
    lab.converge(&state(
        &net,
        &sub,
        vec![a.clone(), c.clone()],
        vec![open.clone(), closed.clone()],
    ));

    assert!(
        !ga.ping(format!("{p}.13")),
        "c has no ingress rule: ping must fail"
    );
    assert!(
        !gc.ping(format!("{p}.11")),
        "a admits only members of its group"
    );

    closed.rules.push(icmp_in());
    lab.converge(&state(
        &net,
        &sub,
        vec![a.clone(), c.clone()],
        vec![open.clone(), closed.clone()],
    ));
    assert!(ga.ping(format!("{p}.13")), "the ICMP rule lets ping in");
    assert!(!gc.ping(format!("{p}.11")), "a still admits only its group");

    closed.rules.pop();
    lab.converge(&state(&net, &sub, vec![a, c], vec![open, closed]));
    assert!(
        !ga.ping(format!("{p}.13")),
        "without the rule ping fails again"
    );
}

#[test]
fn tcp_port_ranges_and_remote_prefixes_are_enforced() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let (net, sub, p) = static_network();
    let client_group = egress_only_group();
    let mut server_group = egress_only_group();
    let mut web = rule(Direction::Ingress, Some("tcp"));
    web.port_range_min = Some(8000);
    web.port_range_max = Some(8100);
    web.remote_ip_prefix = Some(format!("{p}.0/28").parse().unwrap());
    server_group.rules.push(web);
    let a = port(&sub, &format!("{p}.11"), &[&client_group]);
    let b = port(&sub, &format!("{p}.40"), &[&client_group]);
    let s = port(&sub, &format!("{p}.13"), &[&server_group]);
    let (ga, gb, gs) = (Guest::new(&a), Guest::new(&b), Guest::new(&s));
    ga.set_address(&format!("{p}.11/24"), None);
    gb.set_address(&format!("{p}.40/24"), None);
    gs.set_address(&format!("{p}.13/24"), None);
    lab.converge(&state(
        &net,
        &sub,
        vec![a, b, s],
        vec![client_group, server_group],
    ));

    let send = |guest: &Guest, port: u16| {
        guest.run(&format!("echo hello | busybox nc -w 2 {p}.13 {port}"));
    };
    let server = listen_tcp(&gs, 8080);
    send(&ga, 8080);
    assert_eq!(
        received(server).trim(),
        "hello",
        "8080 is in the range, a in the prefix"
    );
    let server = listen_tcp(&gs, 9000);
    send(&ga, 9000);
    assert_eq!(received(server).trim(), "", "9000 is outside the range");
    let server = listen_tcp(&gs, 8080);
    send(&gb, 8080);
    assert_eq!(
        received(server).trim(),
        "",
        ".40 is outside the remote prefix"
    );
}

#[test]
fn guests_cannot_send_as_another_address_or_mac() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let (net, sub, p) = static_network();
    let group = default_group();
    let mut a = port(&sub, &format!("{p}.11"), &[&group]);
    let b = port(&sub, &format!("{p}.12"), &[&group]);
    let (ga, gb) = (Guest::new(&a), Guest::new(&b));
    ga.set_address(&format!("{p}.11/24"), None);
    gb.set_address(&format!("{p}.12/24"), None);
    lab.converge(&state(
        &net,
        &sub,
        vec![a.clone(), b.clone()],
        vec![group.clone()],
    ));
    assert!(
        ga.ping(format!("{p}.12")),
        "a reaches b with its own address"
    );

    // Another IP: ARP and IP from it are dropped.
    ga.set_address(&format!("{p}.99/24"), None);
    assert!(
        !ga.ping(format!("{p}.12")),
        "a spoofing .99 must not reach b"
    );
    // Another MAC with its own IP.
    ga.set_address(&format!("{p}.11/24"), None);
    ga.set_mac("fa:16:3e:de:ad:01");
    assert!(
        !ga.ping(format!("{p}.12")),
        "a with a foreign MAC must not reach b"
    );
    ga.set_mac(&a.mac_address.to_string());
    assert!(ga.ping(format!("{p}.12")), "back to its own MAC and IP");

    // An allowed address pair makes .99 legitimate (and a member of the group for b).
    a.allowed_address_pairs.push(AddressPair {
        ip_address: format!("{p}.99/32").parse().unwrap(),
        mac_address: None,
    });
    lab.converge(&state(
        &net,
        &sub,
        vec![a.clone(), b.clone()],
        vec![group.clone()],
    ));
    ga.set_address(&format!("{p}.99/24"), None);
    assert!(
        ga.ping(format!("{p}.12")),
        "the allowed address pair passes"
    );

    // DHCP server replies (UDP 67 -> 68) from a guest are dropped; the same datagram from
    // another source port passes.
    ga.set_address(&format!("{p}.11/24"), None);
    let udp = lab.dir.path().join("udp.py");
    std::fs::write(&udp, include_str!("udp.py")).unwrap();
    let udp = udp.display().to_string();
    let client = listen_udp(&gb, &udp, 68);
    ga.run(&format!("python3 {udp} send 5000 {p}.12 68 other"));
    assert_eq!(
        received(client).trim(),
        "other",
        "ordinary UDP between members passes"
    );
    let client = listen_udp(&gb, &udp, 68);
    ga.run(&format!("python3 {udp} send 67 {p}.12 68 offer"));
    assert_eq!(
        received(client).trim(),
        "",
        "a rogue DHCP reply must be dropped"
    );
}
