//! Segments with real devices: a VXLAN tunnel to a "remote host" (a namespace with its own
//! VTEP, bridge and guest, reached over a veth underlay the test builds), flat networks on a
//! mapped interface (tests/datapath/router.rs), and VLANs, which this kernel cannot build.

use crate::common::*;
use ferrostack_network_agent::Error;
use ferrostack_network_agent::model::{HostState, NetworkType};
use ferrostack_network_agent::names;

#[test]
fn guests_on_two_hosts_talk_through_the_vxlan_tunnel() {
    crate::skip_unless_capable!();
    let id = format!("{:06x}", random_u32() & 0xff_ffff);
    let (a, b) = (random_u32() % 250, 4 * (random_u32() % 60));
    let local = format!("198.18.{a}.{}", b + 1);
    let remote = format!("198.18.{a}.{}", b + 2);
    let vni = vni();
    let (remote_host, remote_guest, underlay) = (
        format!("fsr-{id}"),
        format!("fsrg-{id}"),
        format!("fsu{id}"),
    );
    let _cleanup = Cleanup {
        namespaces: vec![remote_guest.clone(), remote_host.clone()],
        links: vec![underlay.clone()],
    };
    // The underlay: a veth from this host (VTEP `local`) to the remote host (VTEP `remote`).
    sh(&format!(
        "ip netns add {remote_host} && ip netns add {remote_guest}"
    ));
    sh(&format!(
        "ip link add {underlay} type veth peer name eth0 netns {remote_host}"
    ));
    sh(&format!(
        "ip addr add {local}/30 dev {underlay} && ip link set {underlay} up"
    ));
    // The remote host: its own VTEP flooding to ours, a bridge, a guest at 10.95.0.50.
    let r = |command: &str| sh(&format!("ip -n {remote_host} {command}"));
    r(&format!("addr add {remote}/30 dev eth0"));
    r("link set eth0 up");
    r(&format!(
        "link add vx0 type vxlan id {vni} local {remote} dstport 4789"
    ));
    r("link add br0 type bridge");
    r("link set vx0 master br0 mtu 1450 up");
    r("link set br0 up");
    sh(&format!(
        "bridge -n {remote_host} fdb append 00:00:00:00:00:00 dev vx0 dst {local}"
    ));
    r(&format!(
        "link add rg type veth peer name eth0 netns {remote_guest}"
    ));
    r("link set rg master br0 mtu 1450 up");
    sh(&format!(
        "ip -n {remote_guest} addr add 10.95.0.50/24 dev eth0 && ip -n {remote_guest} link set eth0 mtu 1450 up"
    ));

    let mut lab = Lab::new(|c| c.local_vtep_ip = Some(local.parse().unwrap()));
    let script = lab.udhcpc_script();
    let mut group = default_group();
    group.member_ips.push("10.95.0.50".parse().unwrap()); // the remote guest is a member
    let (mut net, sub) = dhcp_network(vni, "10.95.0");
    net.vxlan_remotes = vec![remote.parse().unwrap()];
    let p = port(&sub, "10.95.0.5", &[&group]);
    let mut state = HostState {
        networks: vec![net.clone()],
        subnets: vec![sub],
        ports: vec![p.clone()],
        security_groups: vec![group],
        routers: vec![],
    };
    let guest = Guest::new(&p);
    lab.converge(&state);
    let device = names::vxlan(vni);
    let fdb = sh(&format!("bridge fdb show dev {device}"));
    assert!(
        fdb.contains(&format!("00:00:00:00:00:00 dst {remote}")),
        "{fdb}"
    );

    assert_eq!(guest.dhcp(&script).unwrap().ip, "10.95.0.5");
    assert!(
        guest.ping("10.95.0.50"),
        "the local guest reaches the remote one"
    );
    let back = run(&format!(
        "ip netns exec {remote_guest} busybox ping -c 2 -W 1 10.95.0.5"
    ));
    assert!(
        back.status.success(),
        "the remote guest reaches the local one"
    );

    // The remote leaves the network: it leaves the flood list, and what was learned from it
    // is forgotten. (The remote host's tunnel goes first, as when its agent removes it: a
    // packet of its guest arriving after the flush would be learned again.)
    sh(&format!("ip -n {remote_host} link set vx0 down"));
    state.networks[0].vxlan_remotes.clear();
    lab.converge(&state);
    let fdb = sh(&format!("bridge fdb show dev {device}"));
    assert!(!fdb.contains(&format!("dst {remote}")), "{fdb}");
    assert!(
        !guest.ping("10.95.0.50"),
        "no tunnel to the remote host any more"
    );
}

#[test]
fn vlan_networks_report_a_clear_error_where_the_kernel_has_no_8021q() {
    crate::skip_unless_capable!();
    let id = format!("{:06x}", random_u32() & 0xff_ffff);
    let (phys, peer) = (format!("fsv{id}"), format!("fsw{id}"));
    let _cleanup = Cleanup {
        namespaces: vec![],
        links: vec![phys.clone()],
    };
    sh(&format!("ip link add {phys} type veth peer name {peer}"));
    let probe = run(&format!(
        "ip link add link {phys} name fst{id} type vlan id 5"
    ));
    let kernel_has_8021q = probe.status.success();
    if kernel_has_8021q {
        run(&format!("ip link del fst{id}"));
    } else {
        assert!(String::from_utf8_lossy(&probe.stderr).contains("Unknown device type"));
    }

    let physnet = format!("vlan{id}");
    let mut lab = Lab::new(|c| {
        c.physical_interface_mappings
            .insert(physnet.clone(), phys.clone());
    });
    let mut vlan = flat_network(&physnet);
    vlan.network_type = NetworkType::Vlan;
    vlan.segmentation_id = Some(100);
    let tenant = vxlan_network(vni(), 1450);
    let state = HostState {
        networks: vec![vlan.clone(), tenant.clone()],
        ..HostState::default()
    };
    let report = lab.agent().converge(&state).unwrap();
    let vlan_device = names::vlan(&phys, 100);
    if kernel_has_8021q {
        assert!(report.is_ok(), "{:#?}", report.errors);
        assert!(sh(&format!("ip link show dev {vlan_device}")).contains(&names::bridge(&vlan.id)));
    } else {
        assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
        let error = &report.errors[0];
        assert_eq!(error.resource, format!("network {}", vlan.id));
        assert!(
            error.message.contains("no 802.1Q VLAN support"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("Unknown device type"),
            "{}",
            error.message
        );
        assert!(!link_exists(&vlan_device));
        // The error type says the same to callers that match on it.
        let direct = ferrostack_network_agent::l2::classify_vlan_error(
            &vlan.id,
            Error::Command {
                command: "ip".into(),
                status: "exit status: 2".into(),
                stderr: String::from_utf8_lossy(&probe.stderr).into_owned(),
            },
        );
        assert!(matches!(direct, Error::VlanUnsupported { .. }));
    }
    // The other network is wired regardless.
    assert!(link_exists(&names::bridge(&tenant.id)));
}
