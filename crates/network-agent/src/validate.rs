//! Consistency checks of a [`HostState`]: references resolve, addresses sit in their subnets,
//! segments are complete, names do not collide. The agent refuses a state that fails them
//! (it is the API side's bug, and a half-understood state must not reach the kernel).

use crate::model::{
    EtherType, FixedIp, HostState, Network, NetworkType, Router, SecurityGroupRule, Subnet,
};
use crate::names;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The problems found in a desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidState(pub Vec<String>);

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid desired state: {}", self.0.join("; "))
    }
}

impl std::error::Error for InvalidState {}

/// The highest VXLAN network identifier.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The protocols whose rules may carry a port range (tcp, udp, sctp, udplite).
const PORT_PROTOCOLS: [u8; 4] = [6, 17, 132, 136];

struct Checker<'a> {
    networks: HashMap<&'a str, &'a Network>,
    subnets: HashMap<&'a str, &'a Subnet>,
    groups: HashSet<&'a str>,
    problems: Vec<String>,
}

impl HostState {
    /// Checks the state; every problem is listed, not only the first.
    pub fn validate(&self) -> Result<(), InvalidState> {
        let mut checker = Checker {
            networks: self.networks.iter().map(|n| (n.id.as_str(), n)).collect(),
            subnets: self.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
            groups: self.security_groups.iter().map(|g| g.id.as_str()).collect(),
            problems: Vec::new(),
        };
        if checker.networks.len() != self.networks.len() {
            checker.problem("duplicate network ids".into());
        }
        if checker.subnets.len() != self.subnets.len() {
            checker.problem("duplicate subnet ids".into());
        }
        checker.networks(self);
        checker.subnets(self);
        checker.ports(self);
        for group in &self.security_groups {
            for rule in &group.rules {
                if let Err(problem) = check_rule(rule, &checker.groups) {
                    checker.problem(format!(
                        "security group {} rule {:?}: {problem}",
                        group.id, rule.id
                    ));
                }
            }
        }
        let mut router_ids = HashSet::new();
        for router in &self.routers {
            if !router_ids.insert(router.id.as_str()) {
                checker.problem(format!("duplicate router id {}", router.id));
            }
            checker.router(router);
        }
        if checker.problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidState(checker.problems))
        }
    }
}

impl Checker<'_> {
    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    fn networks(&mut self, state: &HostState) {
        let mut bridges = HashSet::new();
        let mut vnis = HashSet::new();
        for net in &state.networks {
            let id = &net.id;
            if id.is_empty() {
                self.problem("a network has an empty id".into());
            }
            if !bridges.insert(names::bridge(id)) {
                self.problem(format!(
                    "network {id}: its bridge name collides with another"
                ));
            }
            if !(68..=65535).contains(&net.mtu) {
                self.problem(format!("network {id}: MTU {} out of range", net.mtu));
            }
            let segment = net.segmentation_id.unwrap_or(0);
            match net.network_type {
                NetworkType::Vxlan => {
                    if !(1..=MAX_VNI).contains(&segment) {
                        self.problem(format!("network {id}: vxlan needs a VNI in 1..={MAX_VNI}"));
                    } else if !vnis.insert(segment) {
                        self.problem(format!("network {id}: VNI {segment} used twice"));
                    }
                }
                NetworkType::Flat | NetworkType::Vlan if net.physical_network.is_none() => {
                    self.problem(format!("network {id}: needs a physical_network"));
                }
                NetworkType::Vlan if !(1..=4094).contains(&segment) => {
                    self.problem(format!("network {id}: vlan needs a VLAN id in 1..=4094"));
                }
                NetworkType::Flat | NetworkType::Vlan => {}
            }
            if let Some(port) = &net.dhcp_port {
                self.addresses(&format!("DHCP port {}", port.id), id, &port.fixed_ips);
            }
        }
    }

    fn subnets(&mut self, state: &HostState) {
        for subnet in &state.subnets {
            let id = &subnet.id;
            if !self.networks.contains_key(subnet.network_id.as_str()) {
                self.problem(format!(
                    "subnet {id}: unknown network {}",
                    subnet.network_id
                ));
            }
            if let Some(gateway) = subnet.gateway_ip
                && !subnet.cidr.contains(&gateway)
            {
                self.problem(format!(
                    "subnet {id}: gateway {gateway} outside {}",
                    subnet.cidr
                ));
            }
            let v4 = subnet.cidr.addr().is_ipv4();
            for route in &subnet.host_routes {
                if route.destination.addr().is_ipv4() != v4 || route.nexthop.is_ipv4() != v4 {
                    self.problem(format!("subnet {id}: host route of another family"));
                }
            }
        }
    }

    fn ports(&mut self, state: &HostState) {
        let mut devices = HashSet::new();
        for port in &state.ports {
            let owner = format!("port {}", port.id);
            if !self.networks.contains_key(port.network_id.as_str()) {
                self.problem(format!("{owner}: unknown network {}", port.network_id));
                continue;
            }
            self.addresses(&owner, &port.network_id, &port.fixed_ips);
            if !port.bound_here {
                continue;
            }
            if !devices.insert(port.device_name()) {
                self.problem(format!(
                    "{owner}: its device name collides with another port's"
                ));
            }
            if port.port_security_enabled {
                for group in &port.security_groups {
                    if !self.groups.contains(group.as_str()) {
                        self.problem(format!("{owner}: unknown security group {group}"));
                    }
                }
            }
        }
    }

    fn router(&mut self, router: &Router) {
        let owner = format!("router {}", router.id);
        let mut internal = Vec::new();
        for interface in &router.interfaces {
            if !self.networks.contains_key(interface.network_id.as_str()) {
                self.problem(format!("{owner}: unknown network {}", interface.network_id));
                continue;
            }
            self.addresses(&owner, &interface.network_id, &interface.port.fixed_ips);
            internal.extend(
                interface
                    .port
                    .fixed_ips
                    .iter()
                    .filter_map(|ip| self.subnets.get(ip.subnet_id.as_str()))
                    .map(|s| s.cidr),
            );
        }
        match &router.external_gateway {
            Some(gateway) if self.networks.contains_key(gateway.network_id.as_str()) => {
                self.addresses(&owner, &gateway.network_id, &gateway.port.fixed_ips);
                if !gateway
                    .port
                    .fixed_ips
                    .iter()
                    .any(|ip| ip.ip_address.is_ipv4())
                {
                    self.problem(format!("{owner}: the gateway port has no IPv4 address"));
                }
            }
            Some(gateway) => self.problem(format!(
                "{owner}: unknown external network {}",
                gateway.network_id
            )),
            None if !router.floating_ips.is_empty() => {
                self.problem(format!("{owner}: floating IPs need an external gateway"))
            }
            None => {}
        }
        for fip in &router.floating_ips {
            let fixed = std::net::IpAddr::V4(fip.fixed_ip_address);
            if !internal.iter().any(|cidr| cidr.contains(&fixed)) {
                self.problem(format!(
                    "{owner}: floating IP {} maps to {fixed}, which is on none of its interfaces",
                    fip.floating_ip_address
                ));
            }
        }
    }

    /// The addresses of a guest or service port sit in subnets of its network.
    fn addresses(&mut self, owner: &str, network_id: &str, fixed_ips: &[FixedIp]) {
        for ip in fixed_ips {
            let problem = match self.subnets.get(ip.subnet_id.as_str()) {
                None => Some(format!("{owner}: unknown subnet {}", ip.subnet_id)),
                Some(s) if s.network_id != network_id => Some(format!(
                    "{owner}: subnet {} is not on network {network_id}",
                    s.id
                )),
                Some(s) if !s.cidr.contains(&ip.ip_address) => {
                    Some(format!("{owner}: {} outside {}", ip.ip_address, s.cidr))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                self.problem(problem);
            }
        }
    }
}

fn check_rule(rule: &SecurityGroupRule, groups: &HashSet<&str>) -> Result<(), String> {
    let protocol = crate::firewall::protocol_number(rule.protocol.as_deref(), rule.ethertype)?;
    let (min, max) = (rule.port_range_min, rule.port_range_max);
    match protocol {
        Some(p) if PORT_PROTOCOLS.contains(&p) => match (min, max) {
            (Some(min), Some(max)) if min > max || min == 0 => {
                return Err(format!("bad port range {min}-{max}"));
            }
            (Some(_), None) | (None, Some(_)) => return Err("a port range needs both ends".into()),
            _ => {}
        },
        Some(1) | Some(58) => {
            if min.is_none() && max.is_some() {
                return Err("an ICMP code needs a type".into());
            }
            if min.is_some_and(|t| t > 255) || max.is_some_and(|c| c > 255) {
                return Err("ICMP type and code are 0..=255".into());
            }
        }
        _ if min.is_some() || max.is_some() => {
            return Err("port ranges need tcp, udp, sctp, udplite or icmp".into());
        }
        _ => {}
    }
    if let Some(prefix) = rule.remote_ip_prefix
        && prefix.addr().is_ipv4() != (rule.ethertype == EtherType::IPv4)
    {
        return Err(format!(
            "remote_ip_prefix {prefix} is not {:?}",
            rule.ethertype
        ));
    }
    if let Some(group) = &rule.remote_group_id {
        if rule.remote_ip_prefix.is_some() {
            return Err("remote_ip_prefix and remote_group_id are exclusive".into());
        }
        if !groups.contains(group.as_str()) {
            return Err(format!("unknown remote group {group}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::HostState;

    fn state(value: serde_json::Value) -> HostState {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_consistent_state_passes() {
        let s = state(serde_json::json!({
            "networks": [{"id": "n1", "network_type": "vxlan", "segmentation_id": 7, "mtu": 1450}],
            "subnets": [{"id": "s1", "network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"}],
            "ports": [{"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
                       "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}], "security_groups": ["g"]}],
            "security_groups": [{"id": "g", "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
                {"direction": "ingress", "remote_group_id": "g"}]}],
        }));
        s.validate().unwrap();
    }

    #[test]
    fn every_problem_is_reported() {
        let s = state(serde_json::json!({
            "networks": [
                {"id": "n1", "network_type": "vxlan", "mtu": 1450},
                {"id": "n2", "network_type": "vlan", "physical_network": "phys", "segmentation_id": 5000, "mtu": 1500},
                {"id": "n3", "network_type": "flat", "mtu": 1500}],
            "subnets": [{"id": "s1", "network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": "10.1.0.1"}],
            "ports": [{"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
                       "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.9.0.5"}], "security_groups": ["nope"]}],
            "security_groups": [{"id": "g", "rules": [
                {"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 22},
                {"direction": "egress", "protocol": "gre", "port_range_min": 1, "port_range_max": 2},
                {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}]}],
            "routers": [{"id": "r", "floating_ips": [{"floating_ip_address": "1.2.3.4", "fixed_ip_address": "10.0.0.5"}]}],
        }));
        let problems = s.validate().unwrap_err().0;
        let expected = [
            "n1: vxlan needs a VNI",
            "n2: vlan needs a VLAN id",
            "n3: needs a physical_network",
            "gateway 10.1.0.1 outside",
            "10.9.0.5 outside",
            "unknown security group nope",
            "bad port range 80-22",
            "port ranges need",
            "is not IPv6",
            "floating IPs need an external gateway",
            "on none of its interfaces",
        ];
        for text in expected {
            assert!(
                problems.iter().any(|p| p.contains(text)),
                "{text:?} missing in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }
}
