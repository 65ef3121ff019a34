//! The desired state of one host's data plane: what the Neutron API side hands the agent.
//!
//! Plain serde structs, close to Neutron's own resources (and to what its agents receive over
//! RPC): networks with their segment, subnets, ports, security groups and routers, each named by
//! its Neutron id. The agent derives every kernel object's name from these ids
//! ([`crate::names`]), so the state alone says what must exist on the host.
//!
//! Scope: the state lists the networks this host has ports on (or serves DHCP / routing for),
//! every port of those networks (the DHCP hosts file and the metadata proxy need all of them;
//! [`Port::bound_here`] marks the ones whose tap device lives on this host), the security groups
//! those local ports use (with the member addresses of groups named as remote groups), and the
//! routers this host runs. [`HostState::validate`] checks the references between them.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Everything one host must run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default)]
    pub routers: Vec<Router>,
}

/// A Neutron network and its one segment (`provider:*` attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub project_id: String,
    /// `provider:network_type`.
    pub network_type: NetworkType,
    /// `provider:physical_network`: the name the agent maps to a host interface or bridge
    /// (flat and vlan networks).
    #[serde(default)]
    pub physical_network: Option<String>,
    /// `provider:segmentation_id`: the VNI (vxlan) or the VLAN id (vlan).
    #[serde(default)]
    pub segmentation_id: Option<u32>,
    /// The network's MTU, set on its bridge, tunnel and ports and advertised by DHCP (option 26).
    pub mtu: u32,
    /// The VTEP addresses of the other hosts with ports on this (vxlan) network: broadcast and
    /// unknown-unicast frames are replicated to each (a unicast flood list, no multicast).
    #[serde(default)]
    pub vxlan_remotes: Vec<IpAddr>,
    /// The network's DHCP port (`device_owner` `network:dhcp`) when this host serves DHCP for
    /// it: its addresses go on the `ns-` interface of the `qdhcp-` namespace. Without it, or
    /// without a DHCP-enabled subnet, the host runs no DHCP server for the network.
    #[serde(default)]
    pub dhcp_port: Option<ServicePort>,
}

/// `provider:network_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    Vxlan,
    Flat,
    Vlan,
}

/// A subnet of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub network_id: String,
    pub cidr: IpNet,
    #[serde(default)]
    pub gateway_ip: Option<IpAddr>,
    #[serde(default = "yes")]
    pub enable_dhcp: bool,
    /// DNS servers handed out by DHCP; empty: the DHCP port's address (dnsmasq answers DNS).
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    /// Routes handed out by DHCP (option 121 / 249).
    #[serde(default)]
    pub host_routes: Vec<Route>,
    /// IPv6 only: how guests get addresses (`dhcpv6-stateful`, `dhcpv6-stateless`, `slaac`).
    #[serde(default)]
    pub ipv6_address_mode: Option<Ipv6AddressMode>,
}

/// `ipv6_address_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6AddressMode {
    Dhcpv6Stateful,
    Dhcpv6Stateless,
    Slaac,
}

/// A route: `destination` via `nexthop` (subnet host routes, router static routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

/// One address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// A port (a guest's virtual interface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    pub network_id: String,
    #[serde(default)]
    pub project_id: String,
    pub mac_address: MacAddress,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// The instance uuid (`device_id`): what the metadata proxy sends as `X-Instance-ID`.
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub device_owner: String,
    /// Security group ids; filtering applies only with `port_security_enabled`.
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPair>,
    /// Off: no anti-spoofing and no security groups for this port.
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// The port's `dns_name`: its host name in DHCP and DNS (else `host-<ip with dashes>`).
    #[serde(default)]
    pub dns_name: Option<String>,
    /// The port is bound to this host: the agent plugs its tap device ([`Port::device_name`])
    /// into the network's bridge and filters it. Ports bound elsewhere only feed DHCP, DNS and
    /// the metadata proxy.
    #[serde(default = "yes")]
    pub bound_here: bool,
}

impl Port {
    /// The tap device, as Nova and Neutron name it: `tap` + the first 11 characters of the id.
    pub fn device_name(&self) -> String {
        crate::names::tap(&self.id)
    }
}

/// An allowed address pair: traffic from `ip_address` (an address or a CIDR) with
/// `mac_address` (default: the port's own MAC) passes anti-spoofing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    #[serde(with = "address_or_cidr")]
    pub ip_address: IpNet,
    #[serde(default)]
    pub mac_address: Option<MacAddress>,
}

/// A port the agent itself plugs into a namespace (a DHCP port, a router interface or gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub id: String,
    pub mac_address: MacAddress,
    pub fixed_ips: Vec<FixedIp>,
}

/// A security group with its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default)]
    pub rules: Vec<SecurityGroupRule>,
    /// The addresses of the group's members on every host (the targets of rules that name this
    /// group as `remote_group_id`). The agent adds the fixed addresses and allowed address pairs
    /// of this state's ports in the group.
    #[serde(default)]
    pub member_ips: Vec<IpAddr>,
}

/// A security group rule (Neutron's attributes and meanings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    #[serde(default)]
    pub id: String,
    pub direction: Direction,
    #[serde(default)]
    pub ethertype: EtherType,
    /// A protocol name (`tcp`, `udp`, `icmp`, `icmpv6`, ... as Neutron accepts them) or number;
    /// `None` or `any`: every protocol.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Port range for TCP/UDP/SCTP; for ICMP the type (`min`) and code (`max`).
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    /// The peer's addresses (source for ingress, destination for egress).
    #[serde(default)]
    pub remote_ip_prefix: Option<IpNet>,
    /// The peer group: its [`SecurityGroup::member_ips`].
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

/// The direction of a rule, seen from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

/// The address family of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EtherType {
    #[default]
    IPv4,
    IPv6,
}

/// A router run in a `qrouter-` namespace on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Router {
    pub id: String,
    #[serde(default)]
    pub project_id: String,
    /// Interfaces on tenant networks (`qr-` devices); their addresses are usually the subnets'
    /// gateways.
    #[serde(default)]
    pub interfaces: Vec<RouterInterface>,
    #[serde(default)]
    pub external_gateway: Option<ExternalGateway>,
    #[serde(default)]
    pub floating_ips: Vec<FloatingIp>,
    /// Static routes (`routes` attribute of the router).
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A router interface: a port on a tenant network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInterface {
    pub network_id: String,
    pub port: ServicePort,
}

/// `external_gateway_info`: the router's port on an external network (`qg-` device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalGateway {
    pub network_id: String,
    pub port: ServicePort,
    /// Source-NAT outbound traffic of the tenant networks to the gateway address.
    #[serde(default = "yes")]
    pub enable_snat: bool,
}

/// A floating IP associated with a fixed address behind the router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    #[serde(default)]
    pub id: String,
    pub floating_ip_address: Ipv4Addr,
    pub fixed_ip_address: Ipv4Addr,
}

fn yes() -> bool {
    true
}

/// An Ethernet address, written `fa:16:3e:01:02:03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// The modified EUI-64 link-local IPv6 address of this MAC (`fe80::/64`), the address a
    /// guest uses for neighbour discovery and DHCPv6.
    pub fn link_local_ipv6(&self) -> std::net::Ipv6Addr {
        let m = self.0;
        std::net::Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for MacAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let bad = || format!("invalid MAC address {s:?}");
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        Ok(MacAddress(mac))
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an address (as a host prefix) or a CIDR, as Neutron accepts allowed address pairs.
pub fn parse_address_or_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid address or CIDR {text:?}"))
}

mod address_or_cidr {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(net: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_address_or_cidr(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_round_trip_and_reject_garbage() {
        let mac: MacAddress = "FA:16:3e:00:0a:ff".parse().unwrap();
        assert_eq!(mac.to_string(), "fa:16:3e:00:0a:ff");
        assert!("fa:16:3e:00:0a".parse::<MacAddress>().is_err());
        assert!("fa:16:3e:00:0a:fff".parse::<MacAddress>().is_err());
        assert!("zz:16:3e:00:0a:ff".parse::<MacAddress>().is_err());
    }

    #[test]
    fn link_local_address_is_modified_eui64() {
        let mac: MacAddress = "fa:16:3e:11:22:33".parse().unwrap();
        assert_eq!(
            mac.link_local_ipv6().to_string(),
            "fe80::f816:3eff:fe11:2233"
        );
    }

    #[test]
    fn a_host_state_reads_from_json_with_defaults() {
        let state: HostState = serde_json::from_value(serde_json::json!({
            "networks": [{"id": "n1", "network_type": "vxlan", "segmentation_id": 100, "mtu": 1450}],
            "subnets": [{"id": "s1", "network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"}],
            "ports": [{"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
                       "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
                       "allowed_address_pairs": [{"ip_address": "10.0.0.99"}, {"ip_address": "10.1.0.0/24"}]}],
            "security_groups": [{"id": "sg", "rules": [{"direction": "ingress", "ethertype": "IPv6"}]}],
        }))
        .unwrap();
        assert!(state.subnets[0].enable_dhcp);
        let port = &state.ports[0];
        assert!(port.port_security_enabled && port.bound_here);
        assert_eq!(port.device_name(), "tapp1");
        assert_eq!(
            port.allowed_address_pairs[0].ip_address.to_string(),
            "10.0.0.99/32"
        );
        assert_eq!(state.security_groups[0].rules[0].ethertype, EtherType::IPv6);
        let back = serde_json::to_value(&state).unwrap();
        assert_eq!(serde_json::from_value::<HostState>(back).unwrap(), state);
    }
}
