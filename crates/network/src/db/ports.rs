//! Ports and IPAM. An address is handed out under the lock of its subnet's row and recorded
//! in `net_ip_allocations`, whose primary key (subnet, address) makes a second holder
//! impossible even if a lock were missed; deleting a port or dropping one of its addresses
//! removes the row, which returns the address. MACs are unique per network (a unique key).
//! Also the queries an L2 agent needs: the ports bound to a host, the ports of a network.

use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::ipam;
use crate::model::{
    AddressPair, FixedIp, Network, OWNER_ROUTER_INTERFACE, Port, SecurityGroup, Subnet, VIF_BRIDGE,
    VIF_UNBOUND,
};
use crate::service::Settings;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::net::IpAddr;

/// One entry of a requested `fixed_ips`: a subnet, an address, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<IpAddr>,
}

/// A port create: the port without addresses (and without MAC when one is to be generated).
#[derive(Debug, Clone)]
pub struct PortRequest {
    pub port: Port,
    /// `None`: one address from an IPv4 subnet, one from a stateful IPv6 subnet and the SLAAC
    /// addresses, as Neutron chooses.
    pub fixed_ips: Option<Vec<IpRequest>>,
    /// Skip the project quota (ports Neutron makes for routers and floating IPs).
    pub internal: bool,
}

/// The binding details of a port bound to `host` on `network`.
pub fn bind(port: &mut Port, host: &str) {
    port.binding.host_id = host.to_string();
    if host.is_empty() {
        port.binding.vif_type = VIF_UNBOUND.into();
        port.binding.vif_details = Map::new();
    } else {
        port.binding.vif_type = VIF_BRIDGE.into();
        let details = json!({
            "port_filter": true,
            "connectivity": "l2",
            "bridge_name": bridge_name(&port.network_id),
        });
        port.binding.vif_details = details.as_object().cloned().unwrap_or_default();
    }
}

/// The Linux bridge of a network on every host (`brq` and the id's first 11 characters, as
/// Neutron's Linux bridge agent names it).
pub fn bridge_name(network_id: &str) -> String {
    format!("brq{}", &network_id[..network_id.len().min(11)])
}

/// Locks the network's subnets (in id order, the one order every port operation uses) and
/// returns them oldest first.
async fn lock_subnets(tx: &mut Tx, network_id: &str) -> Result<Vec<Subnet>> {
    let subnets: Vec<Subnet> = tx.select("network_id = $1", &[network_id]).await?;
    let mut ids: Vec<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    for id in ids {
        tx.lock::<Subnet>(id).await?;
    }
    Ok(subnets)
}

async fn used_addresses(tx: &mut Tx, subnet_id: &str) -> Result<HashSet<u128>> {
    Ok(tx
        .strings(
            "SELECT ip_address FROM net_ip_allocations WHERE subnet_id = $1",
            &[subnet_id],
        )
        .await?
        .iter()
        .filter_map(|a| ipam::parse_ip(a).map(ipam::to_u128))
        .collect())
}

async fn record(tx: &mut Tx, port: &Port, ip: &FixedIp) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO net_ip_allocations (subnet_id, ip_address, port_id, network_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (subnet_id, ip_address) DO NOTHING",
    )
    .bind(&ip.subnet_id)
    .bind(&ip.ip_address)
    .bind(&port.id)
    .bind(&port.network_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(already_allocated(&ip.ip_address, &ip.subnet_id));
    }
    Ok(())
}

fn already_allocated(ip: &str, subnet: &str) -> crate::db::Error {
    errors::conflict(
        "IpAddressAlreadyAllocated",
        format!("IP address {ip} already allocated in subnet {subnet}"),
    )
    .into()
}

fn generation_failure(network_id: &str) -> crate::db::Error {
    errors::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network_id}."),
    )
    .into()
}

/// The next free address of `subnet`, or `None` when its pools are exhausted.
async fn next_address(tx: &mut Tx, subnet: &Subnet) -> Result<Option<FixedIp>> {
    let used = used_addresses(tx, &subnet.id).await?;
    let pools = super::subnets::pool_ranges(subnet);
    Ok(
        ipam::next_free(&pools, &used, subnet.ip_version == 6).map(|ip| FixedIp {
            subnet_id: subnet.id.clone(),
            ip_address: ip.to_string(),
        }),
    )
}

fn eui64_address(subnet: &Subnet, mac: &str) -> Option<FixedIp> {
    let net = super::subnets::net_of(subnet)?;
    ipam::eui64(&net, mac).map(|ip| FixedIp {
        subnet_id: subnet.id.clone(),
        ip_address: ip.to_string(),
    })
}

/// Resolves the subnet of one requested address (Neutron's `_get_subnet_for_fixed_ip`).
async fn subnet_for<'s>(
    tx: &mut Tx,
    subnets: &'s [Subnet],
    request: &IpRequest,
    network_id: &str,
    router_port: bool,
) -> Result<&'s Subnet> {
    if let Some(subnet_id) = &request.subnet_id {
        let Some(subnet) = subnets.iter().find(|s| &s.id == subnet_id) else {
            if tx.get::<Subnet>(subnet_id).await?.is_none() {
                return Err(errors::subnet_not_found(subnet_id).into());
            }
            return Err(errors::invalid_input(format!(
                "Failed to create port on network {network_id}, because fixed_ips included invalid subnet {subnet_id}"
            ))
            .into());
        };
        if let Some(ip) = request.ip_address {
            let net = super::subnets::net_of(subnet);
            if !net.is_some_and(|n| ipam::valid_host_ip(&n, ip, router_port)) {
                return Err(errors::bad(
                    "InvalidIpForSubnet",
                    format!("IP address {ip} is not a valid IP for the specified subnet."),
                )
                .into());
            }
        }
        return Ok(subnet);
    }
    let Some(ip) = request.ip_address else {
        return Err(errors::invalid_input("IP allocation requires subnet_id or ip_address").into());
    };
    subnets
        .iter()
        .find(|s| super::subnets::net_of(s).is_some_and(|n| ipam::valid_host_ip(&n, ip, router_port)))
        .ok_or_else(|| {
            errors::bad(
                "InvalidIpForNetwork",
                format!(
                    "IP address {ip} is not a valid IP for any of the subnets on the specified network."
                ),
            )
            .into()
        })
}

/// Allocates the addresses a port asks for (or Neutron's automatic choice), recording them.
/// `keep` are addresses the port already holds and keeps (updates).
async fn allocate(
    tx: &mut Tx,
    settings: &Settings,
    port: &Port,
    subnets: &[Subnet],
    requests: Option<&[IpRequest]>,
    keep: &[FixedIp],
) -> Result<Vec<FixedIp>> {
    let router_port = port.device_owner.starts_with("network:router");
    let mut out: Vec<FixedIp> = Vec::new();
    let mut covered: HashSet<String> = keep.iter().map(|f| f.subnet_id.clone()).collect();
    match requests {
        Some(requests) => {
            if requests.len() + keep.len() > settings.max_fixed_ips_per_port {
                return Err(errors::invalid_input(
                    "Exceeded maximum amount of fixed ips per port.",
                )
                .into());
            }
            for request in requests {
                let subnet =
                    subnet_for(tx, subnets, request, &port.network_id, router_port).await?;
                let fixed = match request.ip_address {
                    Some(ip) => {
                        if subnet.auto_address() && !router_port {
                            return Err(errors::bad(
                                "AllocationOnAutoAddressSubnet",
                                format!(
                                    "IPv6 address {ip} cannot be directly assigned to a port on subnet {} as the subnet is configured for automatic addresses",
                                    subnet.id
                                ),
                            )
                            .into());
                        }
                        FixedIp {
                            subnet_id: subnet.id.clone(),
                            ip_address: ip.to_string(),
                        }
                    }
                    None if subnet.auto_address() && !router_port => {
                        eui64_address(subnet, &port.mac_address)
                            .ok_or_else(|| generation_failure(&port.network_id))?
                    }
                    None => next_address(tx, subnet).await?.ok_or_else(|| {
                        crate::db::Error::from(errors::conflict(
                            "IpAddressGenerationFailure",
                            format!("No more IP addresses available for subnet {}.", subnet.id),
                        ))
                    })?,
                };
                record(tx, port, &fixed).await?;
                covered.insert(fixed.subnet_id.clone());
                out.push(fixed);
            }
        }
        None => {
            let stateful_v4: Vec<&Subnet> = subnets.iter().filter(|s| s.ip_version == 4).collect();
            let stateful_v6: Vec<&Subnet> = subnets
                .iter()
                .filter(|s| s.ip_version == 6 && !s.auto_address())
                .collect();
            for group in [stateful_v4, stateful_v6] {
                if group.is_empty() {
                    continue;
                }
                let mut got = None;
                for subnet in group {
                    if let Some(fixed) = next_address(tx, subnet).await? {
                        got = Some(fixed);
                        break;
                    }
                }
                let fixed = got.ok_or_else(|| generation_failure(&port.network_id))?;
                record(tx, port, &fixed).await?;
                covered.insert(fixed.subnet_id.clone());
                out.push(fixed);
            }
        }
    }
    if !router_port {
        for subnet in subnets.iter().filter(|s| s.auto_address()) {
            if covered.contains(&subnet.id) {
                continue;
            }
            if let Some(fixed) = eui64_address(subnet, &port.mac_address) {
                record(tx, port, &fixed).await?;
                out.push(fixed);
            }
        }
    }
    Ok(out)
}

async fn mac_in_use(tx: &mut Tx, network_id: &str, mac: &str) -> Result<bool> {
    Ok(tx
        .count(
            "SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND mac_address = $2",
            &[network_id, mac],
        )
        .await?
        > 0)
}

fn mac_conflict(network_id: &str, mac: &str) -> crate::db::Error {
    errors::conflict(
        "MacAddressInUse",
        format!(
            "Unable to complete operation for network {network_id}. The mac address {mac} is in use."
        ),
    )
    .into()
}

/// Checks that every security group exists and belongs to the port's project (404
/// `SecurityGroupNotFound` otherwise) and keeps them from being deleted meanwhile.
async fn check_security_groups(tx: &mut Tx, port: &Port) -> Result<()> {
    for id in &port.security_groups {
        let group: Option<SecurityGroup> = tx.lock_shared(id).await?;
        match group {
            Some(g) if g.project_id == port.project_id || port.project_id.is_empty() => {}
            _ => return Err(errors::security_group_not_found(id).into()),
        }
    }
    Ok(())
}

async fn write_security_groups(tx: &mut Tx, port: &Port) -> Result<()> {
    tx.exec(
        "DELETE FROM net_port_security_groups WHERE port_id = $1",
        &[&port.id],
    )
    .await?;
    for group in &port.security_groups {
        tx.exec(
            "INSERT INTO net_port_security_groups (port_id, security_group_id) VALUES ($1, $2)",
            &[&port.id, group],
        )
        .await?;
    }
    Ok(())
}

fn check_port_security(port: &Port) -> Result<()> {
    if !port.port_security_enabled {
        if !port.security_groups.is_empty() {
            return Err(errors::conflict(
                "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to use security groups.",
            )
            .into());
        }
        if !port.allowed_address_pairs.is_empty() {
            return Err(errors::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            )
            .into());
        }
    }
    Ok(())
}

/// Creates a port: quota, network (kept from deletion meanwhile), MAC, addresses, security
/// groups, row, event.
pub async fn create(tx: &mut Tx, settings: &Settings, request: &PortRequest) -> Result<Port> {
    let mut port = request.port.clone();
    if !request.internal {
        super::quotas::check(tx, settings, &port.project_id, "port", 1).await?;
    }
    let network: Network = tx
        .lock_shared(&port.network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&port.network_id))?;
    let subnets = lock_subnets(tx, &network.id).await?;
    if port.mac_address.is_empty() {
        let mut tries = 0;
        loop {
            let mac = ipam::random_mac(&settings.base_mac);
            if !mac_in_use(tx, &network.id, &mac).await? {
                port.mac_address = mac;
                break;
            }
            tries += 1;
            if tries > 16 {
                return Err(mac_conflict(&network.id, &mac));
            }
        }
    } else if mac_in_use(tx, &network.id, &port.mac_address).await? {
        return Err(mac_conflict(&network.id, &port.mac_address));
    }
    for pair in &mut port.allowed_address_pairs {
        if pair.mac_address.is_empty() {
            pair.mac_address = port.mac_address.clone();
        }
    }
    check_port_security(&port)?;
    check_security_groups(tx, &port).await?;
    port.fixed_ips = allocate(
        tx,
        settings,
        &port,
        &subnets,
        request.fixed_ips.as_deref(),
        &[],
    )
    .await?;
    tx.insert(&port).await?;
    write_security_groups(tx, &port).await?;
    tx.emit(
        Event::new("port", "created", &port.id, port.revision_number)
            .on_network(&port.network_id)
            .on_host(&port.binding.host_id),
    );
    Ok(port)
}

/// The changes a port update asks for.
#[derive(Debug, Clone, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<IpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub host_id: Option<String>,
    pub vnic_type: Option<String>,
    pub profile: Option<Map<String, Value>>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub port_security_enabled: Option<bool>,
}

/// Neutron's `_get_changed_ips_for_port`: which requested addresses the port keeps, which it
/// gets anew and which it gives back.
fn changed_ips(
    original: &[FixedIp],
    requested: &[IpRequest],
    auto_subnets: &HashSet<String>,
) -> (Vec<FixedIp>, Vec<IpRequest>, Vec<FixedIp>) {
    let mut keep = Vec::new();
    let mut add = Vec::new();
    let mut remaining: Vec<FixedIp> = original.to_vec();
    for request in requested.iter().filter(|r| r.ip_address.is_some()) {
        let ip = request.ip_address.expect("filtered").to_string();
        match remaining.iter().position(|o| o.ip_address == ip) {
            Some(i) => keep.push(remaining.remove(i)),
            None => add.push(request.clone()),
        }
    }
    for request in requested.iter().filter(|r| r.ip_address.is_none()) {
        match remaining
            .iter()
            .position(|o| Some(&o.subnet_id) == request.subnet_id.as_ref())
        {
            Some(i) => keep.push(remaining.remove(i)),
            None => add.push(request.clone()),
        }
    }
    let mut remove = Vec::new();
    for ip in remaining {
        if auto_subnets.contains(&ip.subnet_id) {
            keep.push(ip);
        } else {
            remove.push(ip);
        }
    }
    (keep, add, remove)
}

/// Applies a port update under the port's lock (and its network's subnets' for address
/// changes).
pub async fn update(
    tx: &mut Tx,
    settings: &Settings,
    id: &str,
    change: &PortUpdate,
    expected_revision: Option<i64>,
) -> Result<Port> {
    let current: Port = tx
        .get(id)
        .await?
        .ok_or_else(|| errors::port_not_found(id))?;
    let subnets = match change.fixed_ips {
        Some(_) => lock_subnets(tx, &current.network_id).await?,
        None => Vec::new(),
    };
    let mut port: Port = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::port_not_found(id))?;
    super::networks::check_revision(expected_revision, port.revision_number)?;
    let before = port.clone();
    let old_host = port.binding.host_id.clone();
    macro_rules! apply {
        ($($field:ident),*) => {$(
            if let Some(v) = &change.$field {
                port.$field = v.clone();
            }
        )*};
    }
    apply!(
        name,
        description,
        admin_state_up,
        device_id,
        device_owner,
        security_groups,
        allowed_address_pairs,
        port_security_enabled
    );
    if let Some(vnic) = &change.vnic_type {
        port.binding.vnic_type = vnic.clone();
    }
    if let Some(profile) = &change.profile {
        port.binding.profile = profile.clone();
    }
    if let Some(host) = &change.host_id {
        bind(&mut port, host);
    }
    if let Some(mac) = &change.mac_address
        && *mac != port.mac_address
    {
        if !port.binding.host_id.is_empty() && port.device_owner.starts_with("compute:") {
            return Err(errors::conflict(
                "PortBound",
                format!(
                    "Unable to complete operation on port {id}, port is already bound, port type: {}, old_mac {}, new_mac {mac}.",
                    port.binding.vif_type, port.mac_address
                ),
            )
            .into());
        }
        if mac_in_use(tx, &port.network_id, mac).await? {
            return Err(mac_conflict(&port.network_id, mac));
        }
        port.mac_address = mac.clone();
    }
    check_port_security(&port)?;
    if change.security_groups.is_some() {
        check_security_groups(tx, &port).await?;
    }
    if let Some(requests) = &change.fixed_ips {
        let auto: HashSet<String> = subnets
            .iter()
            .filter(|s| s.auto_address())
            .map(|s| s.id.clone())
            .collect();
        let (keep, add, remove) = changed_ips(&port.fixed_ips, requests, &auto);
        let fips: Vec<crate::model::FloatingIp> = tx.select("fixed_port_id = $1", &[id]).await?;
        if fips.iter().any(|f| {
            remove
                .iter()
                .any(|r| Some(&r.ip_address) == f.fixed_ip_address.as_ref())
        }) {
            return Err(errors::bad(
                "BadRequest",
                format!(
                    "Bad port request: Cannot update the fixed_ips of the port {id}, because its original fixed_ip has been associated to a floating ip."
                ),
            )
            .into());
        }
        for gone in &remove {
            tx.exec(
                "DELETE FROM net_ip_allocations WHERE subnet_id = $1 AND ip_address = $2 AND port_id = $3",
                &[&gone.subnet_id, &gone.ip_address, id],
            )
            .await?;
        }
        let mut placeholder = port.clone();
        placeholder.fixed_ips = Vec::new();
        let added = allocate(tx, settings, &placeholder, &subnets, Some(&add), &keep).await?;
        let mut fixed = keep;
        fixed.extend(added);
        // Keep the subnets' order stable: the order of the request, then the rest.
        port.fixed_ips = fixed;
    }
    if port != before {
        touch_port(tx, &mut port).await?;
        if change.security_groups.is_some() {
            write_security_groups(tx, &port).await?;
        }
        if old_host != port.binding.host_id && !old_host.is_empty() {
            tx.emit(
                Event::new("port", "updated", &port.id, port.revision_number)
                    .on_network(&port.network_id)
                    .on_host(&old_host),
            );
        }
    }
    Ok(port)
}

/// Bumps the revision and update time, saves and records an event.
pub async fn touch_port(tx: &mut Tx, port: &mut Port) -> Result<()> {
    port.revision_number += 1;
    port.updated_at = crate::model::now();
    tx.save(port).await?;
    tx.emit(
        Event::new("port", "updated", &port.id, port.revision_number)
            .on_network(&port.network_id)
            .on_host(&port.binding.host_id),
    );
    Ok(())
}

/// Removes a port's rows (addresses, security group bindings, the port) and records the event.
pub async fn delete_rows(tx: &mut Tx, port: &Port) -> Result<()> {
    tx.exec(
        "DELETE FROM net_ip_allocations WHERE port_id = $1",
        &[&port.id],
    )
    .await?;
    tx.exec(
        "DELETE FROM net_port_security_groups WHERE port_id = $1",
        &[&port.id],
    )
    .await?;
    tx.delete::<Port>(&port.id).await?;
    tx.emit(
        Event::new("port", "deleted", &port.id, port.revision_number)
            .on_network(&port.network_id)
            .on_host(&port.binding.host_id),
    );
    Ok(())
}

/// Deletes a port through the API: router and floating IP ports belong to their router or
/// floating IP (409 `ServicePortInUse`); floating IPs associated with the port are
/// disassociated.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<Port> {
    let port: Port = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::port_not_found(id))?;
    super::networks::check_revision(expected_revision, port.revision_number)?;
    if port.device_owner == OWNER_ROUTER_INTERFACE
        || port.device_owner == crate::model::OWNER_ROUTER_GATEWAY
        || port.device_owner == crate::model::OWNER_FLOATINGIP
    {
        return Err(errors::conflict(
            "ServicePortInUse",
            format!(
                "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                port.device_owner
            ),
        )
        .into());
    }
    super::floatingips::disassociate_port(tx, id).await?;
    delete_rows(tx, &port).await?;
    Ok(port)
}

/// Sets a port's status (`ACTIVE` once its host's agent wired it, `DOWN` otherwise): the
/// agents' report. Returns the port, or `None` when it is gone.
pub async fn set_status(db: &super::Db, id: &str, status: &str) -> Result<Option<Port>> {
    crate::db::write_tx!(db, |tx| (async {
        let Some(mut port) = tx.lock::<Port>(id).await? else {
            return Ok(None);
        };
        if port.status != status {
            port.status = status.to_string();
            touch_port(tx, &mut port).await?;
        }
        Ok(Some(port))
    })
    .await)
}

/// Sets the status of each of `changes` (port id, status) in one transaction; answers the
/// ports that changed (ports gone meanwhile are skipped).
pub async fn set_statuses(db: &super::Db, changes: &[(&str, &str)]) -> Result<Vec<Port>> {
    crate::db::write_tx!(db, |tx| (async {
        let mut changed = Vec::new();
        for (id, status) in changes {
            let Some(mut port) = tx.lock::<Port>(id).await? else {
                continue;
            };
            if port.status != *status {
                port.status = status.to_string();
                touch_port(tx, &mut port).await?;
                changed.push(port);
            }
        }
        Ok(changed)
    })
    .await)
}

/// Every port bound to `host` (what that host's agents must wire).
pub async fn on_host(db: &super::Db, host: &str) -> Result<Vec<Port>> {
    db.select("binding_host = $1", &[host]).await
}

/// Every port of a network.
pub async fn of_network(db: &super::Db, network_id: &str) -> Result<Vec<Port>> {
    db.select("network_id = $1", &[network_id]).await
}

/// The networks with at least one port bound to `host`.
pub async fn networks_on_host(db: &super::Db, host: &str) -> Result<Vec<Network>> {
    db.select(
        "id IN (SELECT network_id FROM net_ports WHERE binding_host = $1)",
        &[host],
    )
    .await
}

/// The ids of the ports in a security group (for remote-group rules).
pub async fn in_security_group(db: &super::Db, group_id: &str) -> Result<Vec<String>> {
    super::strings(
        &mut *db.conn().await?,
        "SELECT port_id FROM net_port_security_groups WHERE security_group_id = $1 ORDER BY port_id",
        &[group_id],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str, ip: &str) -> FixedIp {
        FixedIp {
            subnet_id: s.into(),
            ip_address: ip.into(),
        }
    }

    #[test]
    fn changed_ips_keep_reuse_and_release() {
        let original = [
            fixed("a", "10.0.0.5"),
            fixed("b", "10.1.0.5"),
            fixed("v6", "2001:db8::1"),
        ];
        let requested = [
            IpRequest {
                subnet_id: None,
                ip_address: Some("10.0.0.5".parse().unwrap()),
            },
            IpRequest {
                subnet_id: Some("c".into()),
                ip_address: None,
            },
        ];
        let auto = HashSet::from(["v6".to_string()]);
        let (keep, add, remove) = changed_ips(&original, &requested, &auto);
        assert_eq!(
            keep,
            vec![fixed("a", "10.0.0.5"), fixed("v6", "2001:db8::1")]
        );
        assert_eq!(add.len(), 1);
        assert_eq!(add[0].subnet_id.as_deref(), Some("c"));
        assert_eq!(remove, vec![fixed("b", "10.1.0.5")]);
        let by_subnet = [IpRequest {
            subnet_id: Some("b".into()),
            ip_address: None,
        }];
        let (keep, add, _) = changed_ips(&original, &by_subnet, &auto);
        assert!(keep.contains(&fixed("b", "10.1.0.5")));
        assert!(add.is_empty());
    }

    #[test]
    fn bridge_names_fit_interface_names() {
        assert_eq!(
            bridge_name("9c3b0e15-36a2-4b10-81fe-9e66e4d5c285"),
            "brq9c3b0e15-36"
        );
    }
}
