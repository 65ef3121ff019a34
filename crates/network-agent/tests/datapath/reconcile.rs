//! Crash and restart: a new agent converging a changed state removes what is stale (bridges,
//! namespaces, dnsmasq, router interfaces), recreates what was lost, and never touches objects
//! that look like its own but carry no mark.

use crate::common::*;
use ferrostack_network_agent::model::{HostState, Router, RouterInterface};
use ferrostack_network_agent::names;

#[test]
fn a_restarted_agent_removes_stale_objects_and_recreates_missing_ones() {
    crate::skip_unless_capable!();
    let mut lab = Lab::new(|_| {});
    let script = lab.udhcpc_script();
    let group = default_group();
    let (net1, sub1) = dhcp_network(vni(), "10.90.1");
    let (net2, sub2) = dhcp_network(vni(), "10.90.2");
    let g1_port = port(&sub1, "10.90.1.5", &[&group]);
    let router = Router {
        id: uuid(),
        project_id: "project-a".into(),
        interfaces: vec![
            RouterInterface {
                network_id: net1.id.clone(),
                port: service_port(&sub1, "10.90.1.1"),
            },
            RouterInterface {
                network_id: net2.id.clone(),
                port: service_port(&sub2, "10.90.2.1"),
            },
        ],
        external_gateway: None,
        floating_ips: vec![],
        routes: vec![],
    };
    let full = HostState {
        networks: vec![net1.clone(), net2.clone()],
        subnets: vec![sub1.clone(), sub2.clone()],
        ports: vec![g1_port.clone()],
        security_groups: vec![group.clone()],
        routers: vec![router.clone()],
    };
    let g1 = Guest::new(&g1_port);
    lab.converge(&full);
    let (dhcp1, dhcp2) = (
        names::dhcp_namespace(&net1.id),
        names::dhcp_namespace(&net2.id),
    );
    let qrouter = names::router_namespace(&router.id);
    let qr2 = names::router_interface(&router.interfaces[1].port.id);
    let qr1_tap = names::tap(&router.interfaces[0].port.id);
    let old_pid1 = dnsmasq_pid(&lab, &net1.id).expect("dnsmasq of net1");
    let pid2 = dnsmasq_pid(&lab, &net2.id).expect("dnsmasq of net2");
    assert!(namespace_exists(&dhcp2) && namespace_exists(&qrouter));

    // Look-alikes without the agent's mark: a bridge and a DHCP namespace.
    let mut foreign = Cleanup::default();
    let foreign_bridge = format!("brq{:08x}", random_u32());
    let foreign_ns = names::dhcp_namespace(&uuid());
    sh(&format!("ip link add {foreign_bridge} type bridge"));
    foreign.links.push(foreign_bridge.clone());
    sh(&format!("ip netns add {foreign_ns}"));
    foreign.namespaces.push(foreign_ns.clone());

    // The crash: the agent dies; meanwhile net1's dnsmasq and namespace and a router port's
    // veth are lost, and net2 is removed from the desired state.
    lab.restart_agent();
    sh(&format!("kill {old_pid1}"));
    assert!(eventually(std::time::Duration::from_secs(3), || {
        dnsmasq_pid(&lab, &net1.id).is_none()
    }));
    sh(&format!("ip netns del {dhcp1}"));
    sh(&format!("ip link del dev {qr1_tap}"));
    let mut reduced = full.clone();
    reduced.networks.retain(|n| n.id != net2.id);
    reduced.subnets.retain(|s| s.network_id != net2.id);
    reduced.routers[0].interfaces.truncate(1);

    let report = lab.converge(&reduced);
    // Stale: net2's bridge, tunnel, DHCP namespace, dnsmasq and files; the router's qr- on net2.
    assert!(!link_exists(&names::bridge(&net2.id)));
    assert!(!link_exists(&names::vxlan(net2.segmentation_id.unwrap())));
    assert!(!namespace_exists(&dhcp2));
    let cmdline = std::fs::read(format!("/proc/{pid2}/cmdline")).unwrap_or_default();
    assert!(cmdline.is_empty(), "net2's dnsmasq {pid2} must be gone");
    assert!(!lab.config.dhcp_dir(&net2.id).exists());
    assert!(!sh(&format!("ip -n {qrouter} -br link")).contains(&qr2));
    // Missing: net1's namespace and dnsmasq (a new process), the router's port on net1.
    assert!(namespace_exists(&dhcp1));
    let new_pid1 = dnsmasq_pid(&lab, &net1.id).expect("dnsmasq of net1 again");
    assert_ne!(new_pid1, old_pid1);
    assert!(link_exists(&qr1_tap));
    assert_eq!(
        g1.dhcp(&script).unwrap().ip,
        "10.90.1.5",
        "DHCP serves again"
    );
    assert!(g1.ping("10.90.1.1"), "the router answers on net1 again");
    assert!(report.is_ok());

    // Idempotent from here on.
    let again = lab.converge(&reduced);
    assert!(again.changes.is_empty(), "{:#?}", again.changes);

    // Tearing everything down leaves the look-alikes alone.
    lab.agent().teardown().unwrap();
    assert!(
        !link_exists(&names::bridge(&net1.id))
            && !namespace_exists(&dhcp1)
            && !namespace_exists(&qrouter)
    );
    assert!(
        link_exists(&foreign_bridge),
        "a bridge without the mark is not the agent's"
    );
    assert!(
        namespace_exists(&foreign_ns),
        "a namespace without the mark is not the agent's"
    );
}
