//! The network resources as stored (each row's `data` column is one of these, in JSON) and
//! their API views. Every resource has Neutron's standard attributes: description, tags,
//! created/updated timestamps and a revision number bumped on every change.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Device owner of router interface ports.
pub const OWNER_ROUTER_INTERFACE: &str = "network:router_interface";
/// Device owner of router gateway ports.
pub const OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
/// Device owner of floating IP ports.
pub const OWNER_FLOATINGIP: &str = "network:floatingip";
/// Device owner of DHCP ports.
pub const OWNER_DHCP: &str = "network:dhcp";

/// `vif_type` of a port no host has bound.
pub const VIF_UNBOUND: &str = "unbound";
/// `vif_type` of ports bound to a host: a tap device on the network's Linux bridge.
pub const VIF_BRIDGE: &str = "bridge";

/// Neutron's timestamp format (`2016-03-08T20:19:41Z`).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A new resource id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A network's L2 segment (Neutron's provider attributes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segment {
    /// `flat`, `vlan` or `vxlan`.
    pub network_type: String,
    /// The physical network (flat, vlan).
    pub physical_network: Option<String>,
    /// The VLAN id or VNI (vlan, vxlan).
    pub segmentation_id: Option<i64>,
}

/// A network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    /// `ACTIVE` (Neutron's ML2 networks are active once created).
    pub status: String,
    pub shared: bool,
    /// `router:external`
    pub external: bool,
    pub mtu: i64,
    pub port_security_enabled: bool,
    pub segment: Segment,
    pub availability_zone_hints: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl Network {
    /// The API view; `subnets` are the ids of its subnets.
    pub fn view(&self, subnets: &[String]) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "description": self.description,
            "admin_state_up": self.admin_state_up,
            "status": self.status,
            "subnets": subnets,
            "shared": self.shared,
            "router:external": self.external,
            "mtu": self.mtu,
            "port_security_enabled": self.port_security_enabled,
            "provider:network_type": self.segment.network_type,
            "provider:physical_network": self.segment.physical_network,
            "provider:segmentation_id": self.segment.segmentation_id,
            "availability_zone_hints": self.availability_zone_hints,
            "availability_zones": [],
            "ipv4_address_scope": null,
            "ipv6_address_scope": null,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// An allocation pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pool {
    pub start: String,
    pub end: String,
}

/// A route (subnet host route or router static route).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub destination: String,
    pub nexthop: String,
}

/// A subnet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subnet {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<Pool>,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<Route>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub subnetpool_id: Option<String>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl Subnet {
    /// Whether ports get their address here by SLAAC (EUI-64) rather than from the pools.
    pub fn auto_address(&self) -> bool {
        matches!(
            self.ipv6_address_mode.as_deref(),
            Some("slaac") | Some("dhcpv6-stateless")
        )
    }

    /// The API view.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "network_id": self.network_id,
            "description": self.description,
            "ip_version": self.ip_version,
            "cidr": self.cidr,
            "gateway_ip": self.gateway_ip,
            "allocation_pools": self.allocation_pools,
            "dns_nameservers": self.dns_nameservers,
            "host_routes": self.host_routes,
            "enable_dhcp": self.enable_dhcp,
            "ipv6_ra_mode": self.ipv6_ra_mode,
            "ipv6_address_mode": self.ipv6_address_mode,
            "subnetpool_id": self.subnetpool_id,
            "service_types": [],
            "segment_id": null,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// A subnet pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubnetPool {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub prefixes: Vec<String>,
    pub default_prefixlen: u8,
    pub min_prefixlen: u8,
    pub max_prefixlen: u8,
    pub default_quota: Option<i64>,
    pub is_default: bool,
    pub shared: bool,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl SubnetPool {
    /// The API view.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "description": self.description,
            "ip_version": self.ip_version,
            "prefixes": self.prefixes,
            "default_prefixlen": self.default_prefixlen,
            "min_prefixlen": self.min_prefixlen,
            "max_prefixlen": self.max_prefixlen,
            "default_quota": self.default_quota,
            "is_default": self.is_default,
            "shared": self.shared,
            "address_scope_id": null,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// One address of a port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// An extra address (and MAC) a port may send from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressPair {
    pub ip_address: String,
    pub mac_address: String,
}

/// Where a port is bound (Neutron's port binding extension).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Binding {
    /// The host the port lives on; empty when unbound.
    pub host_id: String,
    /// `unbound`, `bridge` (a tap on the network's Linux bridge) or `binding_failed`.
    pub vif_type: String,
    /// What the host's agent needs to plug the port.
    pub vif_details: Map<String, Value>,
    pub vnic_type: String,
    pub profile: Map<String, Value>,
}

impl Default for Binding {
    fn default() -> Self {
        Binding {
            host_id: String::new(),
            vif_type: VIF_UNBOUND.into(),
            vif_details: Map::new(),
            vnic_type: "normal".into(),
            profile: Map::new(),
        }
    }
}

/// A port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    /// `DOWN` until the host's agent reports the port wired (`ACTIVE`).
    pub status: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub binding: Binding,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub port_security_enabled: bool,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl Port {
    /// The API view.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "network_id": self.network_id,
            "description": self.description,
            "admin_state_up": self.admin_state_up,
            "status": self.status,
            "mac_address": self.mac_address,
            "fixed_ips": self.fixed_ips,
            "device_id": self.device_id,
            "device_owner": self.device_owner,
            "binding:host_id": self.binding.host_id,
            "binding:vif_type": self.binding.vif_type,
            "binding:vif_details": self.binding.vif_details,
            "binding:vnic_type": self.binding.vnic_type,
            "binding:profile": self.binding.profile,
            "security_groups": self.security_groups,
            "allowed_address_pairs": self.allowed_address_pairs,
            "port_security_enabled": self.port_security_enabled,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }

    /// The part of the device owner before the colon (`compute`, `network`...), which the
    /// policy's device-owner rules test.
    pub fn device_owner_prefix(&self) -> &str {
        self.device_owner.split(':').next().unwrap_or("")
    }
}

/// A security group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl SecurityGroup {
    /// The API view with its rules' views.
    pub fn view(&self, rules: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "description": self.description,
            "stateful": self.stateful,
            "shared": false,
            "security_group_rules": rules,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// A security group rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroupRule {
    pub id: String,
    pub project_id: String,
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// A protocol name (`tcp`, `icmp`...) or number as text; `None` for any.
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl SecurityGroupRule {
    /// The API view; `default_group` says whether the group is its project's default.
    pub fn view(&self, default_group: bool) -> Value {
        json!({
            "id": self.id,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "security_group_id": self.security_group_id,
            "direction": self.direction,
            "ethertype": self.ethertype,
            "protocol": self.protocol,
            "port_range_min": self.port_range_min,
            "port_range_max": self.port_range_max,
            "remote_ip_prefix": self.remote_ip_prefix,
            "remote_group_id": self.remote_group_id,
            "remote_address_group_id": null,
            "normalized_cidr": self.remote_ip_prefix,
            "belongs_to_default_sg": default_group,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// A router's external gateway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Gateway {
    pub network_id: String,
    pub enable_snat: bool,
    /// The gateway port (device owner `network:router_gateway`).
    pub port_id: String,
}

/// A router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub status: String,
    pub gateway: Option<Gateway>,
    pub routes: Vec<Route>,
    pub availability_zone_hints: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl Router {
    /// The API view; `gateway_ips` are the gateway port's addresses.
    pub fn view(&self, gateway_ips: &[FixedIp]) -> Value {
        let gateway = self.gateway.as_ref().map(|g| {
            json!({
                "network_id": g.network_id,
                "enable_snat": g.enable_snat,
                "external_fixed_ips": gateway_ips,
            })
        });
        json!({
            "id": self.id,
            "name": self.name,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "description": self.description,
            "admin_state_up": self.admin_state_up,
            "status": self.status,
            "external_gateway_info": gateway,
            "routes": self.routes,
            "distributed": false,
            "ha": false,
            "availability_zone_hints": self.availability_zone_hints,
            "availability_zones": [],
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}

/// A floating IP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    /// The port holding the address on the external network.
    pub floating_port_id: String,
    /// The associated (internal) port.
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub router_id: Option<String>,
    /// `DOWN` until associated and wired, then `ACTIVE` (set by the L3 agent).
    pub status: String,
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

impl FloatingIp {
    /// The API view; `port_details` summarises the associated port (fip-port-details).
    pub fn view(&self, port: Option<&Port>) -> Value {
        let details = port.map(|p| {
            json!({
                "name": p.name,
                "network_id": p.network_id,
                "mac_address": p.mac_address,
                "admin_state_up": p.admin_state_up,
                "status": p.status,
                "device_id": p.device_id,
                "device_owner": p.device_owner,
            })
        });
        json!({
            "id": self.id,
            "tenant_id": self.project_id,
            "project_id": self.project_id,
            "floating_network_id": self.floating_network_id,
            "floating_ip_address": self.floating_ip_address,
            "port_id": self.port_id,
            "fixed_ip_address": self.fixed_ip_address,
            "router_id": self.router_id,
            "status": self.status,
            "description": self.description,
            "port_details": details,
            "port_forwardings": [],
            "qos_policy_id": null,
            "tags": self.tags,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision_number": self.revision_number,
        })
    }
}
