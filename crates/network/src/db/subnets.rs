//! Subnets: CIDR (given, or a free prefix of a subnet pool), gateway and allocation pools
//! (defaults or validated), no overlap within the network, and deletes that refuse while ports
//! hold addresses of the subnet (DHCP ports and SLAAC addresses excepted).

use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::ipam::{self, PoolError, Range};
use crate::model::{
    FixedIp, Network, OWNER_DHCP, OWNER_ROUTER_INTERFACE, Pool, Port, Route, Subnet, SubnetPool,
};
use crate::service::Settings;
use ipnet::IpNet;
use std::net::IpAddr;

/// The gateway a create or update asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRequest {
    /// Not given: the first host address.
    Default,
    /// `null`: no gateway.
    Disabled,
    /// This address.
    Ip(IpAddr),
}

/// A subnet create: the subnet with every attribute but those that depend on the CIDR.
#[derive(Debug, Clone)]
pub struct SubnetRequest {
    /// The subnet; its `cidr` is empty when a pool chooses it.
    pub subnet: Subnet,
    pub gateway: GatewayRequest,
    /// Explicit allocation pools.
    pub pools: Option<Vec<(IpAddr, IpAddr)>>,
    /// The prefix length asked of the subnet pool.
    pub prefixlen: Option<u8>,
}

fn pool_error(e: PoolError, pools: &[(IpAddr, IpAddr)], cidr: &str) -> crate::db::Error {
    let show = |i: usize| format!("{}-{}", pools[i].0, pools[i].1);
    match e {
        PoolError::Invalid(i) => errors::bad(
            "InvalidAllocationPool",
            format!("The allocation pool {} is not valid.", show(i)),
        ),
        PoolError::OutOfBounds(i) => errors::bad(
            "OutOfBoundsAllocationPool",
            format!(
                "The allocation pool {} spans beyond the subnet cidr {cidr}.",
                show(i)
            ),
        ),
        PoolError::Overlapping(i, j) => errors::conflict(
            "OverlappingAllocationPools",
            format!(
                "Found overlapping allocation pools: {} {} for subnet {cidr}.",
                show(i),
                show(j)
            ),
        ),
    }
    .into()
}

/// The ranges of a subnet's stored pools.
pub fn pool_ranges(subnet: &Subnet) -> Vec<Range> {
    subnet
        .allocation_pools
        .iter()
        .filter_map(|p| {
            Some(Range {
                first: ipam::to_u128(ipam::parse_ip(&p.start)?),
                last: ipam::to_u128(ipam::parse_ip(&p.end)?),
            })
        })
        .collect()
}

fn pools_to_model(ranges: &[Range], v6: bool) -> Vec<Pool> {
    ranges
        .iter()
        .map(|r| Pool {
            start: ipam::from_u128(r.first, v6).to_string(),
            end: ipam::from_u128(r.last, v6).to_string(),
        })
        .collect()
}

/// The subnet's network as a parsed CIDR.
pub fn net_of(subnet: &Subnet) -> Option<IpNet> {
    subnet.cidr.parse().ok()
}

/// Fills the gateway and pools of `subnet` on `net` and validates them (gateway inside the
/// CIDR and outside the pools).
fn settle_addresses(
    subnet: &mut Subnet,
    net: &IpNet,
    gateway: &GatewayRequest,
    pools: Option<&[(IpAddr, IpAddr)]>,
) -> Result<()> {
    let gateway = match gateway {
        GatewayRequest::Default => ipam::default_gateway(net),
        GatewayRequest::Disabled => None,
        GatewayRequest::Ip(ip) => {
            if ipam::version(ip) != subnet.ip_version {
                return Err(errors::invalid_input(
                    "Gateway IP version inconsistent with allocation pool version",
                )
                .into());
            }
            let (first, last) = ipam::bounds(net);
            let n = ipam::to_u128(*ip);
            let v4_broadcast = subnet.ip_version == 4 && net.prefix_len() < 31 && n == last;
            if net.contains(ip) && (n == first || v4_broadcast) {
                return Err(errors::invalid_input("Gateway is not valid on subnet").into());
            }
            Some(*ip)
        }
    };
    let ranges = match pools {
        None => ipam::default_pools(net, gateway),
        Some(pools) => {
            ipam::validate_pools(net, pools).map_err(|e| pool_error(e, pools, &subnet.cidr))?
        }
    };
    if let Some(gw) = gateway
        && let Some(pool) = ranges.iter().find(|r| r.contains(ipam::to_u128(gw)))
    {
        let v6 = subnet.ip_version == 6;
        return Err(errors::conflict(
            "GatewayConflictWithAllocationPools",
            format!(
                "Gateway ip {gw} conflicts with allocation pool {}-{}.",
                ipam::from_u128(pool.first, v6),
                ipam::from_u128(pool.last, v6)
            ),
        )
        .into());
    }
    subnet.gateway_ip = gateway.map(|g| g.to_string());
    subnet.allocation_pools = pools_to_model(&ranges, subnet.ip_version == 6);
    Ok(())
}

fn check_eui64(subnet: &Subnet, net: &IpNet) -> Result<()> {
    if subnet.auto_address() && net.prefix_len() != 64 {
        return Err(errors::invalid_input(format!(
            "Invalid CIDR {} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64",
            subnet.cidr
        ))
        .into());
    }
    Ok(())
}

async fn allocate_from_pool(
    tx: &mut Tx,
    request: &SubnetRequest,
    pool_id: &str,
) -> Result<(IpNet, SubnetPool)> {
    let pool: SubnetPool = tx
        .lock(pool_id)
        .await?
        .ok_or_else(|| errors::subnetpool_not_found(pool_id))?;
    if pool.ip_version != request.subnet.ip_version {
        return Err(errors::bad(
            "BadRequest",
            format!(
                "Bad subnets request: Cannot allocate IPv{} subnet from IPv{} subnet pool.",
                request.subnet.ip_version, pool.ip_version
            ),
        )
        .into());
    }
    let prefixes: Vec<IpNet> = pool
        .prefixes
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let taken: Vec<IpNet> = tx
        .select::<Subnet>("subnetpool_id = $1", &[pool_id])
        .await?
        .iter()
        .filter_map(net_of)
        .collect();
    let bounds_check = |len: u8| -> Result<()> {
        if len < pool.min_prefixlen {
            return Err(errors::bad(
                "MinPrefixSubnetAllocationError",
                format!(
                    "Unable to allocate subnet with prefix length {len}, minimum allowed prefix is {}.",
                    pool.min_prefixlen
                ),
            )
            .into());
        }
        if len > pool.max_prefixlen {
            return Err(errors::bad(
                "MaxPrefixSubnetAllocationError",
                format!(
                    "Unable to allocate subnet with prefix length {len}, maximum allowed prefix is {}.",
                    pool.max_prefixlen
                ),
            )
            .into());
        }
        Ok(())
    };
    let unavailable = |what: String| -> crate::db::Error {
        errors::conflict(
            "SubnetAllocationError",
            format!("Failed to allocate subnet: {what}."),
        )
        .into()
    };
    let net = if request.subnet.cidr.is_empty() {
        let len = request.prefixlen.unwrap_or(pool.default_prefixlen);
        bounds_check(len)?;
        ipam::free_prefix(&prefixes, &taken, len).ok_or_else(|| {
            unavailable(
                "Insufficient prefix space to allocate subnet size /{len}"
                    .replace("{len}", &len.to_string()),
            )
        })?
    } else {
        let net: IpNet =
            request.subnet.cidr.parse().map_err(|_| {
                errors::invalid_input(format!("Invalid CIDR {}", request.subnet.cidr))
            })?;
        bounds_check(net.prefix_len())?;
        if !prefixes.iter().any(|p| p.contains(&net)) {
            return Err(unavailable(
                "Cannot allocate requested subnet from the available set of prefixes".to_string(),
            ));
        }
        if taken.iter().any(|t| ipam::cidrs_overlap(t, &net)) {
            return Err(unavailable(
                "Cannot allocate requested subnet from the available set of prefixes".to_string(),
            ));
        }
        net
    };
    Ok((net, pool))
}

/// Creates a subnet under its network's lock (and its pool's, when a pool gives the CIDR).
pub async fn create(tx: &mut Tx, settings: &Settings, request: &SubnetRequest) -> Result<Subnet> {
    let mut subnet = request.subnet.clone();
    super::quotas::check(tx, settings, &subnet.project_id, "subnet", 1).await?;
    let network: Network = tx
        .lock(&subnet.network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&subnet.network_id))?;
    let net = match &subnet.subnetpool_id {
        Some(pool_id) => {
            let (net, _) = allocate_from_pool(tx, request, pool_id).await?;
            subnet.cidr = net.to_string();
            net
        }
        None => subnet
            .cidr
            .parse()
            .map_err(|_| errors::invalid_input(format!("Invalid CIDR {}", subnet.cidr)))?,
    };
    if net.prefix_len() == 0 {
        return Err(errors::invalid_input("0 is not allowed as CIDR prefix length").into());
    }
    if subnet.ip_version == 6 && network.mtu < 1280 {
        return Err(errors::conflict(
            "NetworkMTUSubnetConflict",
            format!(
                "MTU of {} is not valid, subnet requires a minimum of 1280",
                network.id
            ),
        )
        .into());
    }
    check_eui64(&subnet, &net)?;
    settle_addresses(
        &mut subnet,
        &net,
        &request.gateway,
        request.pools.as_deref(),
    )?;
    let siblings: Vec<Subnet> = tx.select("network_id = $1", &[&network.id]).await?;
    for sibling in &siblings {
        if net_of(sibling).is_some_and(|s| ipam::cidrs_overlap(&s, &net)) {
            return Err(errors::invalid_input(format!(
                "Requested subnet with cidr: {} for network: {} overlaps with another subnet",
                subnet.cidr, network.id
            ))
            .into());
        }
        if sibling.ip_version == subnet.ip_version && sibling.subnetpool_id != subnet.subnetpool_id
        {
            return Err(errors::bad(
                "NetworkSubnetPoolAffinityError",
                "Subnets hosted on the same network must be allocated from the same subnet pool.",
            )
            .into());
        }
    }
    tx.insert(&subnet).await?;
    tx.emit(
        Event::new("subnet", "created", &subnet.id, subnet.revision_number)
            .on_network(&subnet.network_id),
    );
    Ok(subnet)
}

/// The changes an update asks for.
#[derive(Debug, Clone, Default)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub gateway: Option<GatewayRequest>,
    pub pools: Option<Vec<(IpAddr, IpAddr)>>,
    pub dns_nameservers: Option<Vec<String>>,
    pub host_routes: Option<Vec<Route>>,
    pub enable_dhcp: Option<bool>,
}

/// Applies an update under the subnet's lock. A gateway a router interface holds cannot move
/// (409 `GatewayIpInUse`).
pub async fn update(
    tx: &mut Tx,
    id: &str,
    change: &SubnetUpdate,
    expected_revision: Option<i64>,
) -> Result<Subnet> {
    let mut subnet: Subnet = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::subnet_not_found(id))?;
    super::networks::check_revision(expected_revision, subnet.revision_number)?;
    let before = subnet.clone();
    let net = net_of(&subnet).ok_or_else(|| errors::subnet_not_found(id))?;
    if change.enable_dhcp == Some(false)
        && (subnet.ipv6_ra_mode.is_some() || subnet.ipv6_address_mode.is_some())
    {
        return Err(
            errors::invalid_input("Cannot disable enable_dhcp with ipv6 attributes set").into(),
        );
    }
    if change.gateway.is_some() || change.pools.is_some() {
        let gateway = match &change.gateway {
            Some(g) => g.clone(),
            None => match &subnet.gateway_ip {
                Some(ip) => GatewayRequest::Ip(ipam::parse_ip(ip).expect("a stored address")),
                None => GatewayRequest::Disabled,
            },
        };
        let pools: Vec<(IpAddr, IpAddr)> = match &change.pools {
            Some(p) => p.clone(),
            None => subnet
                .allocation_pools
                .iter()
                .filter_map(|p| Some((ipam::parse_ip(&p.start)?, ipam::parse_ip(&p.end)?)))
                .collect(),
        };
        let old_gateway = subnet.gateway_ip.clone();
        settle_addresses(&mut subnet, &net, &gateway, Some(&pools))?;
        if subnet.gateway_ip != old_gateway
            && let Some(old) = &old_gateway
        {
            let holders = tx
                .strings(
                    "SELECT a.port_id FROM net_ip_allocations a JOIN net_ports p ON p.id = a.port_id \
                     WHERE a.subnet_id = $1 AND a.ip_address = $2 \
                     AND p.device_owner = 'network:router_interface'",
                    &[id, old],
                )
                .await?;
            if let Some(port) = holders.first() {
                return Err(errors::conflict(
                    "GatewayIpInUse",
                    format!(
                        "Current gateway ip {old} already in use by port {port}. Unable to update."
                    ),
                )
                .into());
            }
        }
    }
    if let Some(v) = &change.name {
        subnet.name = v.clone();
    }
    if let Some(v) = &change.description {
        subnet.description = v.clone();
    }
    if let Some(v) = &change.dns_nameservers {
        subnet.dns_nameservers = v.clone();
    }
    if let Some(v) = &change.host_routes {
        subnet.host_routes = v.clone();
    }
    if let Some(v) = change.enable_dhcp {
        subnet.enable_dhcp = v;
    }
    if subnet != before {
        touch_subnet(tx, &mut subnet).await?;
    }
    Ok(subnet)
}

/// Bumps the revision and update time, saves and records an event.
pub async fn touch_subnet(tx: &mut Tx, subnet: &mut Subnet) -> Result<()> {
    subnet.revision_number += 1;
    subnet.updated_at = crate::model::now();
    tx.save(subnet).await?;
    tx.emit(
        Event::new("subnet", "updated", &subnet.id, subnet.revision_number)
            .on_network(&subnet.network_id),
    );
    Ok(())
}

/// Deletes a subnet. Addresses of DHCP ports (and SLAAC addresses of other ports) go with it;
/// any other port with an address on it is a 409 `SubnetInUse`.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<Subnet> {
    let subnet: Subnet = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::subnet_not_found(id))?;
    super::networks::check_revision(expected_revision, subnet.revision_number)?;
    let holders: Vec<Port> = tx
        .select(
            "id IN (SELECT port_id FROM net_ip_allocations WHERE subnet_id = $1)",
            &[id],
        )
        .await?;
    let removable = |p: &Port| {
        p.device_owner == OWNER_DHCP
            || (subnet.auto_address() && p.device_owner != OWNER_ROUTER_INTERFACE)
    };
    if holders.iter().any(|p| !removable(p)) {
        return Err(errors::conflict(
            "SubnetInUse",
            format!(
                "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
            ),
        )
        .into());
    }
    for mut port in holders {
        tx.lock::<Port>(&port.id).await?;
        port.fixed_ips.retain(|ip: &FixedIp| ip.subnet_id != id);
        super::ports::touch_port(tx, &mut port).await?;
    }
    tx.exec("DELETE FROM net_ip_allocations WHERE subnet_id = $1", &[id])
        .await?;
    tx.delete::<Subnet>(id).await?;
    tx.emit(
        Event::new("subnet", "deleted", id, subnet.revision_number).on_network(&subnet.network_id),
    );
    Ok(subnet)
}
