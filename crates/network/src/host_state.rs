//! The desired state of one host's data plane, built from the store: what Neutron's ML2 RPC
//! (`get_devices_details_list`, the DHCP agent's `get_active_networks_info`, the L3 agent's
//! `sync_routers`) hands the agents, in one document ([`ferrostack_network_agent::model`]).
//!
//! The host gets the networks it has ports bound to; the network host (the one `[network]
//! l3_host` names, in the all-in-one the single host) also serves DHCP for every network with a
//! DHCP-enabled subnet and runs every router, so it gets those networks too. Each network comes
//! with all its ports (the DHCP hosts file and the metadata proxy need them), the security
//! groups of the host's ports (with the member addresses of groups rules name as remotes), and
//! the VTEP addresses of the other hosts with ports on it ([`Snapshot::vteps`]).

use crate::db::{self, Db, Result, write_tx};
use crate::model::{
    FloatingIp, Network, OWNER_DHCP, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port, Router,
    SecurityGroup, SecurityGroupRule, Subnet,
};
use crate::service::Settings;
use ferrostack_network_agent::model as agent;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Who a host is: its name, and whether it is the network host (DHCP and routers).
#[derive(Debug, Clone)]
pub struct Scope {
    pub host: String,
    pub network_host: bool,
}

/// Everything the mapping reads, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub networks: Vec<Network>,
    pub subnets: Vec<Subnet>,
    pub ports: Vec<Port>,
    pub security_groups: Vec<SecurityGroup>,
    pub rules: Vec<SecurityGroupRule>,
    pub routers: Vec<Router>,
    pub floatingips: Vec<FloatingIp>,
    /// Host → its VTEP address (from the agents' reports).
    pub vteps: BTreeMap<String, IpAddr>,
}

/// The device id of the DHCP port `host` runs for `network_id`, as Neutron's DHCP agent
/// makes it: `dhcp<uuid of the host>-<network>` (here a v4-shaped uuid derived from the host
/// name, stable across restarts).
pub fn dhcp_device_id(host: &str, network_id: &str) -> String {
    format!("dhcp{}-{network_id}", host_uuid(host))
}

fn host_uuid(host: &str) -> String {
    // FNV-1a over the name, twice with different seeds: 128 stable bits.
    let hash = |seed: u64| {
        host.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let bits = (u128::from(hash(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(hash(0x84222325));
    uuid::Uuid::from_u128(bits).to_string()
}

/// Whether a network has a subnet with DHCP on.
fn dhcp_enabled(subnets: &[Subnet], network_id: &str) -> bool {
    subnets
        .iter()
        .any(|s| s.network_id == network_id && s.enable_dhcp)
}

/// Creates the DHCP port of every network the network host serves that lacks one (an address
/// from each IPv4 subnet, bound to the host), as the DHCP agent's `create_dhcp_port` does.
/// Returns whether it created any.
pub async fn ensure_dhcp_ports(db: &Db, settings: &Settings, host: &str) -> Result<bool> {
    let networks: Vec<Network> = db.select("1 = 1", &[]).await?;
    let subnets: Vec<Subnet> = db.select("1 = 1", &[]).await?;
    let mut created = false;
    // A network that no longer has a DHCP subnet gives its DHCP port back (the agent stops
    // its dnsmasq when the network leaves its DHCP set).
    for network in networks.iter().filter(|n| !dhcp_enabled(&subnets, &n.id)) {
        let device_id = dhcp_device_id(host, &network.id);
        let stale: Vec<Port> = db.select("device_id = $1", &[&device_id]).await?;
        for port in stale {
            match write_tx!(db, |tx| db::ports::delete(tx, &port.id, None).await) {
                Ok(_) => {
                    tracing::info!(network = %network.id, port = %port.id, "DHCP port removed")
                }
                Err(db::Error::Api(e)) => tracing::debug!(port = %port.id, error = ?e, "gone"),
                Err(e) => return Err(e),
            }
        }
    }
    for network in networks.iter().filter(|n| dhcp_enabled(&subnets, &n.id)) {
        let device_id = dhcp_device_id(host, &network.id);
        let existing: Vec<Port> = db.select("device_id = $1", &[&device_id]).await?;
        if let Some(port) = existing.first() {
            extend_dhcp_port(db, settings, port, &subnets).await?;
            continue;
        }
        let request = db::ports::PortRequest {
            port: dhcp_port(network, &device_id, host),
            fixed_ips: None,
            internal: true,
        };
        let outcome = write_tx!(db, |tx| db::ports::create(tx, settings, &request).await);
        match outcome {
            Ok(port) => {
                tracing::info!(network = %network.id, port = %port.id, "DHCP port created");
                created = true;
            }
            // The network went away meanwhile, or has no free address: nothing to serve.
            Err(db::Error::Api(e)) => {
                tracing::warn!(network = %network.id, error = ?e, "no DHCP port")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

/// Binds the routers' interface and gateway ports to the network host (as the L3 agent's
/// host becomes their `binding:host_id` in Neutron), so that their status follows its reports
/// and other hosts tunnel to it. Returns whether it bound any.
pub async fn bind_router_ports(db: &Db, settings: &Settings, host: &str) -> Result<bool> {
    let ports: Vec<Port> = db
        .select(
            "device_owner IN ($1, $2) AND binding_host <> $3",
            &[OWNER_ROUTER_INTERFACE, OWNER_ROUTER_GATEWAY, host],
        )
        .await?;
    for port in &ports {
        let change = db::ports::PortUpdate {
            host_id: Some(host.to_string()),
            ..Default::default()
        };
        match write_tx!(db, |tx| db::ports::update(
            tx, settings, &port.id, &change, None
        )
        .await)
        {
            Ok(_) => tracing::info!(port = %port.id, host, "router port bound"),
            // Removed from its router meanwhile.
            Err(db::Error::Api(e)) => tracing::debug!(port = %port.id, error = ?e, "not bound"),
            Err(e) => return Err(e),
        }
    }
    Ok(!ports.is_empty())
}

/// Gives the DHCP port an address on the network's DHCP-enabled IPv4 subnets created after it
/// (as the DHCP agent updates its port's `fixed_ips`).
async fn extend_dhcp_port(
    db: &Db,
    settings: &Settings,
    port: &Port,
    subnets: &[Subnet],
) -> Result<()> {
    let missing: Vec<&Subnet> = subnets
        .iter()
        .filter(|s| s.network_id == port.network_id && s.enable_dhcp && s.ip_version == 4)
        .filter(|s| !port.fixed_ips.iter().any(|ip| ip.subnet_id == s.id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut wanted: Vec<db::ports::IpRequest> = port
        .fixed_ips
        .iter()
        .map(|ip| db::ports::IpRequest {
            subnet_id: Some(ip.subnet_id.clone()),
            ip_address: ip.ip_address.parse().ok(),
        })
        .collect();
    wanted.extend(missing.iter().map(|s| db::ports::IpRequest {
        subnet_id: Some(s.id.clone()),
        ip_address: None,
    }));
    let change = db::ports::PortUpdate {
        fixed_ips: Some(wanted),
        ..Default::default()
    };
    match write_tx!(db, |tx| db::ports::update(
        tx, settings, &port.id, &change, None
    )
    .await)
    {
        Ok(_) => Ok(()),
        Err(db::Error::Api(e)) => {
            tracing::warn!(port = %port.id, error = ?e, "DHCP port not extended");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn dhcp_port(network: &Network, device_id: &str, host: &str) -> Port {
    let mut port =
        db::routers::new_internal_port(&network.id, &network.project_id, device_id, OWNER_DHCP);
    db::ports::bind(&mut port, host);
    port
}

/// Loads what [`build`] reads. `vteps` comes from the agent rows.
pub async fn load(db: &Db, vteps: BTreeMap<String, IpAddr>) -> Result<Snapshot> {
    Ok(Snapshot {
        networks: db.select("1 = 1", &[]).await?,
        subnets: db.select("1 = 1", &[]).await?,
        ports: db.select("1 = 1", &[]).await?,
        security_groups: db.select("1 = 1", &[]).await?,
        rules: db.select("1 = 1", &[]).await?,
        routers: db.select("1 = 1", &[]).await?,
        floatingips: db.select("1 = 1", &[]).await?,
        vteps,
    })
}

/// Whether a port is a guest's interface (a tap the host plugs), not one the agent itself
/// plugs into a namespace (DHCP, router) or a floating IP's placeholder.
fn is_guest_port(port: &Port) -> bool {
    !port.device_owner.starts_with("network:")
}

/// Maps the snapshot to the desired state of `scope.host`. Resources the agent cannot express
/// (a network of another segment type, an address that does not parse) are left out with a
/// warning rather than failing the host's whole state.
pub fn build(snap: &Snapshot, scope: &Scope) -> agent::HostState {
    let host = scope.host.as_str();
    let local: Vec<&Port> = snap
        .ports
        .iter()
        .filter(|p| p.binding.host_id == host && is_guest_port(p))
        .collect();
    let mut network_ids: BTreeSet<&str> = local.iter().map(|p| p.network_id.as_str()).collect();
    let routers: Vec<&Router> = match scope.network_host {
        true => snap.routers.iter().collect(),
        false => Vec::new(),
    };
    if scope.network_host {
        for n in snap.networks.iter() {
            if dhcp_enabled(&snap.subnets, &n.id) {
                network_ids.insert(&n.id);
            }
        }
        for p in &snap.ports {
            let routed = (p.device_owner == OWNER_ROUTER_INTERFACE
                || p.device_owner == OWNER_ROUTER_GATEWAY)
                && routers.iter().any(|r| r.id == p.device_id);
            if routed {
                network_ids.insert(&p.network_id);
            }
        }
    }
    let mut state = agent::HostState::default();
    for network in snap
        .networks
        .iter()
        .filter(|n| network_ids.contains(n.id.as_str()))
    {
        if let Some(net) = map_network(snap, scope, network) {
            state.networks.push(net);
        }
    }
    let wired: BTreeSet<&str> = state.networks.iter().map(|n| n.id.as_str()).collect();
    state.subnets = snap
        .subnets
        .iter()
        .filter(|s| wired.contains(s.network_id.as_str()))
        .filter_map(map_subnet)
        .collect();
    let subnet_ids: BTreeSet<&str> = state.subnets.iter().map(|s| s.id.as_str()).collect();
    state.ports = snap
        .ports
        .iter()
        .filter(|p| wired.contains(p.network_id.as_str()))
        .filter(|p| p.device_owner != crate::model::OWNER_FLOATINGIP)
        .filter_map(|p| map_port(p, host, &subnet_ids))
        .collect();
    state.security_groups = security_groups(snap, &state.ports);
    state.routers = routers
        .iter()
        .filter_map(|r| map_router(snap, r, &wired, &subnet_ids))
        .collect();
    state
}

fn map_network(snap: &Snapshot, scope: &Scope, n: &Network) -> Option<agent::Network> {
    let network_type = match n.segment.network_type.as_str() {
        "vxlan" => agent::NetworkType::Vxlan,
        "flat" => agent::NetworkType::Flat,
        "vlan" => agent::NetworkType::Vlan,
        other => {
            tracing::warn!(network = %n.id, network_type = other, "segment type not wired");
            return None;
        }
    };
    let mut hosts: BTreeSet<&str> = snap
        .ports
        .iter()
        .filter(|p| p.network_id == n.id && !p.binding.host_id.is_empty())
        .map(|p| p.binding.host_id.as_str())
        .collect();
    hosts.remove(scope.host.as_str());
    let vxlan_remotes = match network_type {
        agent::NetworkType::Vxlan => {
            let mut ips: Vec<IpAddr> = hosts
                .iter()
                .filter_map(|h| snap.vteps.get(*h))
                .copied()
                .collect();
            ips.sort();
            ips.dedup();
            ips
        }
        _ => Vec::new(),
    };
    let dhcp_port = match scope.network_host && dhcp_enabled(&snap.subnets, &n.id) {
        true => {
            let device_id = dhcp_device_id(&scope.host, &n.id);
            snap.ports
                .iter()
                .find(|p| p.device_id == device_id && p.network_id == n.id)
                .and_then(service_port)
        }
        false => None,
    };
    Some(agent::Network {
        id: n.id.clone(),
        project_id: n.project_id.clone(),
        network_type,
        physical_network: n.segment.physical_network.clone(),
        segmentation_id: n
            .segment
            .segmentation_id
            .and_then(|s| u32::try_from(s).ok()),
        mtu: u32::try_from(n.mtu).unwrap_or(1500),
        vxlan_remotes,
        dhcp_port,
    })
}

fn map_subnet(s: &Subnet) -> Option<agent::Subnet> {
    let ip_mode = match s.ipv6_address_mode.as_deref() {
        Some("dhcpv6-stateful") => Some(agent::Ipv6AddressMode::Dhcpv6Stateful),
        Some("dhcpv6-stateless") => Some(agent::Ipv6AddressMode::Dhcpv6Stateless),
        Some("slaac") => Some(agent::Ipv6AddressMode::Slaac),
        _ => None,
    };
    Some(agent::Subnet {
        id: s.id.clone(),
        network_id: s.network_id.clone(),
        cidr: s.cidr.parse().ok()?,
        gateway_ip: s.gateway_ip.as_deref().and_then(|g| g.parse().ok()),
        enable_dhcp: s.enable_dhcp,
        dns_nameservers: s
            .dns_nameservers
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect(),
        host_routes: s.host_routes.iter().filter_map(map_route).collect(),
        ipv6_address_mode: ip_mode,
    })
}

fn map_route(r: &crate::model::Route) -> Option<agent::Route> {
    Some(agent::Route {
        destination: r.destination.parse().ok()?,
        nexthop: r.nexthop.parse().ok()?,
    })
}

fn fixed_ips(port: &Port) -> Vec<agent::FixedIp> {
    port.fixed_ips
        .iter()
        .filter_map(|ip| {
            Some(agent::FixedIp {
                subnet_id: ip.subnet_id.clone(),
                ip_address: ip.ip_address.parse().ok()?,
            })
        })
        .collect()
}

fn service_port(port: &Port) -> Option<agent::ServicePort> {
    Some(agent::ServicePort {
        id: port.id.clone(),
        mac_address: port.mac_address.parse().ok()?,
        fixed_ips: fixed_ips(port),
    })
}

fn map_port(p: &Port, host: &str, subnets: &BTreeSet<&str>) -> Option<agent::Port> {
    let mut fixed = fixed_ips(p);
    fixed.retain(|ip| subnets.contains(ip.subnet_id.as_str()));
    Some(agent::Port {
        id: p.id.clone(),
        network_id: p.network_id.clone(),
        project_id: p.project_id.clone(),
        mac_address: p.mac_address.parse().ok()?,
        fixed_ips: fixed,
        device_id: p.device_id.clone(),
        device_owner: p.device_owner.clone(),
        security_groups: p.security_groups.clone(),
        allowed_address_pairs: p
            .allowed_address_pairs
            .iter()
            .filter_map(|pair| {
                Some(agent::AddressPair {
                    ip_address: agent::parse_address_or_cidr(&pair.ip_address).ok()?,
                    mac_address: pair.mac_address.parse().ok(),
                })
            })
            .collect(),
        port_security_enabled: p.port_security_enabled,
        dns_name: None,
        bound_here: p.binding.host_id == host && is_guest_port(p) && p.admin_state_up,
    })
}

/// The groups of the host's filtered ports, plus the groups their rules name as remotes, each
/// with the addresses of all its members.
fn security_groups(snap: &Snapshot, ports: &[agent::Port]) -> Vec<agent::SecurityGroup> {
    let mut wanted: BTreeSet<&str> = ports
        .iter()
        .filter(|p| p.bound_here && p.port_security_enabled)
        .flat_map(|p| p.security_groups.iter().map(String::as_str))
        .collect();
    let remotes: Vec<&str> = snap
        .rules
        .iter()
        .filter(|r| wanted.contains(r.security_group_id.as_str()))
        .filter_map(|r| r.remote_group_id.as_deref())
        .collect();
    wanted.extend(remotes);
    let mut members: HashMap<&str, Vec<IpAddr>> = HashMap::new();
    for port in &snap.ports {
        for group in &port.security_groups {
            if wanted.contains(group.as_str()) {
                let ips = port
                    .fixed_ips
                    .iter()
                    .filter_map(|ip| ip.ip_address.parse::<IpAddr>().ok());
                members.entry(group.as_str()).or_default().extend(ips);
            }
        }
    }
    snap.security_groups
        .iter()
        .filter(|g| wanted.contains(g.id.as_str()))
        .map(|g| agent::SecurityGroup {
            id: g.id.clone(),
            rules: snap
                .rules
                .iter()
                .filter(|r| r.security_group_id == g.id)
                .filter_map(map_rule)
                .collect(),
            member_ips: members.remove(g.id.as_str()).unwrap_or_default(),
        })
        .collect()
}

fn map_rule(r: &SecurityGroupRule) -> Option<agent::SecurityGroupRule> {
    Some(agent::SecurityGroupRule {
        id: r.id.clone(),
        direction: match r.direction.as_str() {
            "ingress" => agent::Direction::Ingress,
            "egress" => agent::Direction::Egress,
            _ => return None,
        },
        ethertype: match r.ethertype.as_str() {
            "IPv6" => agent::EtherType::IPv6,
            _ => agent::EtherType::IPv4,
        },
        protocol: r.protocol.clone(),
        port_range_min: r.port_range_min.and_then(|p| u16::try_from(p).ok()),
        port_range_max: r.port_range_max.and_then(|p| u16::try_from(p).ok()),
        remote_ip_prefix: match &r.remote_ip_prefix {
            Some(prefix) => Some(agent::parse_address_or_cidr(prefix).ok()?),
            None => None,
        },
        remote_group_id: r.remote_group_id.clone(),
    })
}

fn map_router(
    snap: &Snapshot,
    r: &Router,
    networks: &BTreeSet<&str>,
    subnets: &BTreeSet<&str>,
) -> Option<agent::Router> {
    let wired = |p: &Port| networks.contains(p.network_id.as_str());
    let interfaces = snap
        .ports
        .iter()
        .filter(|p| p.device_owner == OWNER_ROUTER_INTERFACE && p.device_id == r.id && wired(p))
        .filter_map(|p| {
            let mut port = service_port(p)?;
            port.fixed_ips
                .retain(|ip| subnets.contains(ip.subnet_id.as_str()));
            Some(agent::RouterInterface {
                network_id: p.network_id.clone(),
                port,
            })
        })
        .collect();
    let external_gateway = r.gateway.as_ref().and_then(|g| {
        let port = snap.ports.iter().find(|p| p.id == g.port_id && wired(p))?;
        Some(agent::ExternalGateway {
            network_id: g.network_id.clone(),
            port: service_port(port)?,
            enable_snat: g.enable_snat,
        })
    });
    let floating_ips = match &external_gateway {
        Some(_) => snap
            .floatingips
            .iter()
            .filter(|f| f.router_id.as_deref() == Some(r.id.as_str()))
            .filter_map(|f| {
                Some(agent::FloatingIp {
                    id: f.id.clone(),
                    floating_ip_address: f.floating_ip_address.parse().ok()?,
                    fixed_ip_address: f.fixed_ip_address.as_deref()?.parse().ok()?,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    Some(agent::Router {
        id: r.id.clone(),
        project_id: r.project_id.clone(),
        interfaces,
        external_gateway,
        floating_ips,
        routes: r.routes.iter().filter_map(map_route).collect(),
    })
}

#[cfg(test)]
#[path = "host_state_tests.rs"]
mod tests;
