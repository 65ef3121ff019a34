use super::*;
use crate::model::{FixedIp, Gateway, Segment};

fn network(id: &str, kind: &str, vni: i64) -> Network {
    Network {
        id: id.into(),
        project_id: "p".into(),
        name: id.into(),
        description: String::new(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        shared: false,
        external: false,
        mtu: 1450,
        port_security_enabled: true,
        segment: Segment {
            network_type: kind.into(),
            physical_network: (kind == "flat").then(|| "public".to_string()),
            segmentation_id: (kind == "vxlan").then_some(vni),
        },
        availability_zone_hints: Vec::new(),
        tags: Vec::new(),
        created_at: String::new(),
        updated_at: String::new(),
        revision_number: 1,
    }
}

fn subnet(id: &str, network_id: &str, cidr: &str, dhcp: bool) -> Subnet {
    Subnet {
        id: id.into(),
        project_id: "p".into(),
        network_id: network_id.into(),
        name: String::new(),
        description: String::new(),
        ip_version: 4,
        cidr: cidr.into(),
        gateway_ip: None,
        allocation_pools: Vec::new(),
        dns_nameservers: Vec::new(),
        host_routes: Vec::new(),
        enable_dhcp: dhcp,
        ipv6_ra_mode: None,
        ipv6_address_mode: None,
        subnetpool_id: None,
        tags: Vec::new(),
        created_at: String::new(),
        updated_at: String::new(),
        revision_number: 1,
    }
}

fn port(id: &str, network_id: &str, host: &str, owner: &str, ip: (&str, &str)) -> Port {
    let mut p = dhcp_port(&network(network_id, "vxlan", 1), "", host);
    p.id = id.into();
    p.device_owner = owner.into();
    p.device_id = format!("dev-{id}");
    p.mac_address = format!(
        "fa:16:3e:00:00:{:02x}",
        id.len() + id.as_bytes()[0] as usize % 200
    );
    p.fixed_ips = vec![FixedIp {
        subnet_id: ip.0.into(),
        ip_address: ip.1.into(),
    }];
    p.port_security_enabled = false;
    p
}

fn scope(host: &str, network_host: bool) -> Scope {
    Scope {
        host: host.into(),
        network_host,
    }
}

#[test]
fn a_compute_host_gets_the_networks_of_its_ports_with_every_port_and_remote_vteps() {
    let mut snap = Snapshot {
        networks: vec![network("n1", "vxlan", 7), network("n2", "vxlan", 8)],
        subnets: vec![
            subnet("s1", "n1", "10.0.0.0/24", true),
            subnet("s2", "n2", "10.1.0.0/24", true),
        ],
        ports: vec![
            port("a", "n1", "h1", "compute:nova", ("s1", "10.0.0.5")),
            port("b", "n1", "h2", "compute:nova", ("s1", "10.0.0.6")),
            port("c", "n2", "h2", "compute:nova", ("s2", "10.1.0.6")),
        ],
        ..Default::default()
    };
    snap.vteps.insert("h1".into(), "192.0.2.1".parse().unwrap());
    snap.vteps.insert("h2".into(), "192.0.2.2".parse().unwrap());
    let state = build(&snap, &scope("h1", false));
    assert_eq!(state.networks.len(), 1, "only n1 has a port on h1");
    let n1 = &state.networks[0];
    assert_eq!(n1.segmentation_id, Some(7));
    assert_eq!(
        n1.vxlan_remotes,
        vec!["192.0.2.2".parse::<IpAddr>().unwrap()]
    );
    assert!(n1.dhcp_port.is_none(), "not the network host");
    let bound: Vec<(&str, bool)> = state
        .ports
        .iter()
        .map(|p| (p.id.as_str(), p.bound_here))
        .collect();
    assert_eq!(bound, vec![("a", true), ("b", false)]);
    assert!(state.routers.is_empty());
    state.validate().unwrap();
}

#[test]
fn the_network_host_serves_dhcp_and_runs_routers() {
    let mut snap = Snapshot {
        networks: vec![
            network("priv", "vxlan", 7),
            network("pub", "flat", 0),
            network("nodhcp", "vxlan", 9),
        ],
        subnets: vec![
            subnet("s1", "priv", "10.0.0.0/24", true),
            subnet("s2", "pub", "172.24.4.0/24", false),
            subnet("s3", "nodhcp", "10.9.0.0/24", false),
        ],
        ..Default::default()
    };
    let mut dhcp = port("d", "priv", "net", OWNER_DHCP, ("s1", "10.0.0.2"));
    dhcp.device_id = dhcp_device_id("net", "priv");
    let mut rif = port("r1", "priv", "", OWNER_ROUTER_INTERFACE, ("s1", "10.0.0.1"));
    rif.device_id = "router".into();
    let mut gw = port("g", "pub", "", OWNER_ROUTER_GATEWAY, ("s2", "172.24.4.10"));
    gw.device_id = "router".into();
    snap.ports = vec![dhcp, rif, gw];
    let mut router: Router = serde_json::from_value(serde_json::json!({
        "id": "router", "project_id": "p", "name": "r", "description": "", "admin_state_up": true,
        "status": "ACTIVE", "gateway": null, "routes": [], "availability_zone_hints": [], "tags": [],
        "created_at": "", "updated_at": "", "revision_number": 1
    }))
    .unwrap();
    router.gateway = Some(Gateway {
        network_id: "pub".into(),
        enable_snat: true,
        port_id: "g".into(),
    });
    snap.routers = vec![router];
    let state = build(&snap, &scope("net", true));
    let ids: Vec<&str> = state.networks.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["priv", "pub"],
        "DHCP network and the router's gateway network"
    );
    let priv_net = &state.networks[0];
    assert_eq!(priv_net.dhcp_port.as_ref().unwrap().id, "d");
    assert!(
        state.ports.iter().all(|p| !p.bound_here),
        "service ports are not taps"
    );
    let r = &state.routers[0];
    assert_eq!(r.interfaces.len(), 1);
    assert_eq!(r.external_gateway.as_ref().unwrap().port.id, "g");
    state.validate().unwrap();
    let other = build(&snap, &scope("compute2", false));
    assert!(other.networks.is_empty() && other.routers.is_empty());
}

#[test]
fn security_groups_of_local_ports_carry_remote_group_members() {
    let mut snap = Snapshot {
        networks: vec![network("n1", "vxlan", 7)],
        subnets: vec![subnet("s1", "n1", "10.0.0.0/24", true)],
        ..Default::default()
    };
    let mut local = port("a", "n1", "h1", "compute:nova", ("s1", "10.0.0.5"));
    local.port_security_enabled = true;
    local.security_groups = vec!["web".into()];
    let mut remote = port("b", "n1", "h2", "compute:nova", ("s1", "10.0.0.6"));
    remote.security_groups = vec!["db".into()];
    snap.ports = vec![local, remote];
    let group = |id: &str| -> SecurityGroup {
        serde_json::from_value(serde_json::json!({
            "id": id, "project_id": "p", "name": id, "description": "", "stateful": true,
            "tags": [], "created_at": "", "updated_at": "", "revision_number": 1
        }))
        .unwrap()
    };
    snap.security_groups = vec![group("web"), group("db"), group("unused")];
    snap.rules = vec![
        serde_json::from_value(serde_json::json!({
            "id": "r", "project_id": "p", "security_group_id": "web", "direction": "ingress",
            "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
            "remote_ip_prefix": null, "remote_group_id": "db", "description": "",
            "created_at": "", "updated_at": "", "revision_number": 1
        }))
        .unwrap(),
    ];
    let state = build(&snap, &scope("h1", false));
    let ids: Vec<&str> = state
        .security_groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(ids, vec!["web", "db"]);
    assert_eq!(state.security_groups[0].rules[0].port_range_min, Some(22));
    assert_eq!(
        state.security_groups[1].member_ips,
        vec!["10.0.0.6".parse::<IpAddr>().unwrap()]
    );
    state.validate().unwrap();
}

#[test]
fn dhcp_device_ids_are_stable_per_host() {
    let a = dhcp_device_id("host-a", "net");
    assert_eq!(a, dhcp_device_id("host-a", "net"));
    assert_ne!(a, dhcp_device_id("host-b", "net"));
    assert!(a.starts_with("dhcp") && a.ends_with("-net") && a.len() == 4 + 36 + 4);
}
