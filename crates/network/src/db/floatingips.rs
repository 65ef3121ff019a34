//! Floating IPs: an address of an external network (held by a `network:floatingip` port) and
//! its association with a port's fixed address, reachable through a router that has its
//! gateway on that external network and an interface on the fixed address's subnet (Neutron's
//! `_get_router_for_floatingip`). One floating IP per fixed address (a unique key).

use super::ports::{IpRequest, PortRequest};
use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::ipam;
use crate::model::{
    Binding, FloatingIp, Network, OWNER_FLOATINGIP, Port, Router, Subnet, new_id, now,
};
use crate::service::Settings;

/// A floating IP create.
#[derive(Debug, Clone)]
pub struct FloatingIpRequest {
    /// The floating IP with its project, network and description.
    pub fip: FloatingIp,
    pub subnet_id: Option<String>,
    pub floating_ip_address: Option<std::net::IpAddr>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
}

fn bad_fip(message: String) -> crate::db::Error {
    errors::bad("BadRequest", format!("Bad floatingip request: {message}.")).into()
}

/// Finds the fixed address and the router for an association (Neutron's
/// `_get_assoc_data`), or refuses it.
async fn association(
    tx: &mut Tx,
    fip: &FloatingIp,
    port_id: &str,
    fixed_ip: Option<&str>,
) -> Result<(String, String)> {
    let port: Port = tx
        .lock_shared(port_id)
        .await?
        .ok_or_else(|| errors::port_not_found(port_id))?;
    if port.project_id != fip.project_id {
        return Err(bad_fip(format!(
            "Cannot process floating IP association with Port {port_id}, since that port is owned by a different project"
        )));
    }
    let v4: Vec<&crate::model::FixedIp> = port
        .fixed_ips
        .iter()
        .filter(|f| ipam::parse_ip(&f.ip_address).is_some_and(|ip| ip.is_ipv4()))
        .collect();
    let chosen = match fixed_ip {
        Some(ip) => port
            .fixed_ips
            .iter()
            .find(|f| f.ip_address == ip)
            .ok_or_else(|| bad_fip(format!("Port {port_id} does not have fixed ip {ip}")))?,
        None => match v4.as_slice() {
            [] => {
                return Err(bad_fip(format!(
                    "Port {port_id} does not have an IPv4 address"
                )));
            }
            [one] => *one,
            _ => {
                return Err(bad_fip(format!(
                    "Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP"
                )));
            }
        },
    };
    let routers: Vec<Router> = tx
        .select(
            "gw_network_id = $1 AND id IN (SELECT p.device_id FROM net_ports p \
             JOIN net_ip_allocations a ON a.port_id = p.id \
             WHERE p.device_owner = 'network:router_interface' AND a.subnet_id = $2)",
            &[&fip.floating_network_id, &chosen.subnet_id],
        )
        .await?;
    let Some(router) = routers.first() else {
        return Err(errors::not_found(
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {} is not reachable from subnet {}.  Therefore, cannot associate Port {port_id} with a Floating IP.",
                fip.floating_network_id, chosen.subnet_id
            ),
        )
        .into());
    };
    let taken: Vec<FloatingIp> = tx
        .select(
            "fixed_port_id = $1 AND fixed_ip_address = $2 AND id <> $3",
            &[port_id, &chosen.ip_address, &fip.id],
        )
        .await?;
    if let Some(other) = taken.first() {
        return Err(errors::conflict(
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                fip.floating_ip_address, fip.id, chosen.ip_address, other.floating_network_id
            ),
        )
        .into());
    }
    Ok((chosen.ip_address.clone(), router.id.clone()))
}

/// Creates a floating IP (and associates it when a port is given).
pub async fn create(
    tx: &mut Tx,
    settings: &Settings,
    request: &FloatingIpRequest,
) -> Result<FloatingIp> {
    let mut fip = request.fip.clone();
    super::quotas::check(tx, settings, &fip.project_id, "floatingip", 1).await?;
    let network: Network = tx
        .lock_shared(&fip.floating_network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&fip.floating_network_id))?;
    if !network.external {
        return Err(bad_fip(format!(
            "Network {} is not a valid external network",
            network.id
        )));
    }
    if let Some(subnet_id) = &request.subnet_id {
        let subnet: Option<Subnet> = tx.get(subnet_id).await?;
        match subnet {
            Some(s) if s.network_id == network.id => {}
            Some(_) => {
                return Err(bad_fip(format!(
                    "Subnet {subnet_id} does not belong to network {}",
                    network.id
                )));
            }
            None => return Err(errors::subnet_not_found(subnet_id).into()),
        }
    }
    let fixed_ips = match (&request.subnet_id, request.floating_ip_address) {
        (None, None) => None,
        (subnet_id, ip) => Some(vec![IpRequest {
            subnet_id: subnet_id.clone(),
            ip_address: ip,
        }]),
    };
    let ts = now();
    let port = Port {
        id: new_id(),
        project_id: String::new(),
        network_id: network.id.clone(),
        name: String::new(),
        description: String::new(),
        admin_state_up: true,
        status: "N/A".into(),
        mac_address: String::new(),
        fixed_ips: Vec::new(),
        device_id: fip.id.clone(),
        device_owner: OWNER_FLOATINGIP.into(),
        binding: Binding::default(),
        security_groups: Vec::new(),
        allowed_address_pairs: Vec::new(),
        port_security_enabled: false,
        tags: Vec::new(),
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let port = super::ports::create(
        tx,
        settings,
        &PortRequest {
            port,
            fixed_ips,
            internal: true,
        },
    )
    .await?;
    let address = port
        .fixed_ips
        .iter()
        .find(|f| ipam::parse_ip(&f.ip_address).is_some_and(|ip| ip.is_ipv4()))
        .or(port.fixed_ips.first())
        .ok_or_else(|| {
            bad_fip(format!(
                "No IPv4 subnet found on external network {}",
                network.id
            ))
        })?;
    fip.floating_ip_address = address.ip_address.clone();
    fip.floating_port_id = port.id.clone();
    if let Some(port_id) = &request.port_id {
        let (fixed, router) =
            association(tx, &fip, port_id, request.fixed_ip_address.as_deref()).await?;
        fip.port_id = Some(port_id.clone());
        fip.fixed_ip_address = Some(fixed);
        fip.router_id = Some(router);
    }
    tx.insert(&fip).await?;
    tx.emit(Event::new(
        "floatingip",
        "created",
        &fip.id,
        fip.revision_number,
    ));
    Ok(fip)
}

/// The changes an update asks for: `port_id` `Some(None)` disassociates.
#[derive(Debug, Clone, Default)]
pub struct FloatingIpUpdate {
    pub port_id: Option<Option<String>>,
    pub fixed_ip_address: Option<String>,
    pub description: Option<String>,
}

/// Associates, re-associates or disassociates a floating IP.
pub async fn update(
    tx: &mut Tx,
    id: &str,
    change: &FloatingIpUpdate,
    expected_revision: Option<i64>,
) -> Result<FloatingIp> {
    let mut fip: FloatingIp = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::floatingip_not_found(id))?;
    super::networks::check_revision(expected_revision, fip.revision_number)?;
    let before = fip.clone();
    if let Some(v) = &change.description {
        fip.description = v.clone();
    }
    match &change.port_id {
        Some(Some(port_id)) => {
            let (fixed, router) =
                association(tx, &fip, port_id, change.fixed_ip_address.as_deref()).await?;
            fip.port_id = Some(port_id.clone());
            fip.fixed_ip_address = Some(fixed);
            fip.router_id = Some(router);
        }
        Some(None) => {
            fip.port_id = None;
            fip.fixed_ip_address = None;
            fip.router_id = None;
            fip.status = "DOWN".into();
        }
        None => {}
    }
    if fip != before {
        touch(tx, &mut fip).await?;
    }
    Ok(fip)
}

async fn touch(tx: &mut Tx, fip: &mut FloatingIp) -> Result<()> {
    fip.revision_number += 1;
    fip.updated_at = now();
    tx.save(fip).await?;
    tx.emit(Event::new(
        "floatingip",
        "updated",
        &fip.id,
        fip.revision_number,
    ));
    Ok(())
}

/// Sets the status the network host reports (`ACTIVE` once its NAT is in place, `DOWN`
/// otherwise); an unassociated floating IP stays `DOWN`. Returns whether it changed.
pub async fn set_status(tx: &mut Tx, id: &str, active: bool) -> Result<bool> {
    let Some(mut fip) = tx.lock::<FloatingIp>(id).await? else {
        return Ok(false);
    };
    let status = match active && fip.port_id.is_some() {
        true => "ACTIVE",
        false => "DOWN",
    };
    if fip.status == status {
        return Ok(false);
    }
    fip.status = status.into();
    touch(tx, &mut fip).await?;
    Ok(true)
}

/// Deletes a floating IP and returns its address.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<FloatingIp> {
    let fip: FloatingIp = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::floatingip_not_found(id))?;
    super::networks::check_revision(expected_revision, fip.revision_number)?;
    if let Some(port) = tx.lock::<Port>(&fip.floating_port_id).await? {
        super::ports::delete_rows(tx, &port).await?;
    }
    tx.delete::<FloatingIp>(id).await?;
    tx.emit(Event::new("floatingip", "deleted", id, fip.revision_number));
    Ok(fip)
}

/// Disassociates the floating IPs of a port that is going away.
pub async fn disassociate_port(tx: &mut Tx, port_id: &str) -> Result<()> {
    let fips: Vec<FloatingIp> = tx.select("fixed_port_id = $1", &[port_id]).await?;
    for fip in fips {
        let Some(mut fip) = tx.lock::<FloatingIp>(&fip.id).await? else {
            continue;
        };
        fip.port_id = None;
        fip.fixed_ip_address = None;
        fip.router_id = None;
        fip.status = "DOWN".into();
        touch(tx, &mut fip).await?;
    }
    Ok(())
}
