//! Routers: the external gateway (a `network:router_gateway` port on an external network),
//! interfaces (`network:router_interface` ports, one per subnet, holding the subnet's gateway
//! address when added by subnet) and static routes whose next hops must sit on an interface
//! subnet. Every operation runs under the router's lock.

use super::ports::{IpRequest, PortRequest};
use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::ipam;
use crate::model::{
    Binding, FloatingIp, Gateway, Network, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port,
    Route, Router, Subnet, new_id, now,
};
use crate::service::Settings;
use ipnet::IpNet;

/// An external gateway a create or update asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRequest {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    pub external_fixed_ips: Option<Vec<IpRequest>>,
}

fn bad_router(message: String) -> crate::db::Error {
    errors::bad("BadRequest", format!("Bad router request: {message}.")).into()
}

/// The router's interface ports.
pub async fn interfaces(tx: &mut Tx, router_id: &str) -> Result<Vec<Port>> {
    tx.select(
        "device_id = $1 AND device_owner = 'network:router_interface'",
        &[router_id],
    )
    .await
}

async fn subnets_of(tx: &mut Tx, ports: &[Port]) -> Result<Vec<Subnet>> {
    let mut out = Vec::new();
    for port in ports {
        for ip in &port.fixed_ips {
            if let Some(s) = tx.get::<Subnet>(&ip.subnet_id).await? {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// A port Neutron makes for itself (router interface or gateway, DHCP): no security groups,
/// no port security, `DOWN` until its agent wires it, no address yet.
pub(crate) fn new_internal_port(
    network_id: &str,
    project: &str,
    device_id: &str,
    owner: &str,
) -> Port {
    let ts = now();
    Port {
        id: new_id(),
        project_id: project.to_string(),
        network_id: network_id.to_string(),
        name: String::new(),
        description: String::new(),
        admin_state_up: true,
        status: "DOWN".into(),
        mac_address: String::new(),
        fixed_ips: Vec::new(),
        device_id: device_id.to_string(),
        device_owner: owner.to_string(),
        binding: Binding::default(),
        security_groups: Vec::new(),
        allowed_address_pairs: Vec::new(),
        port_security_enabled: false,
        tags: Vec::new(),
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    }
}

async fn floatingips_via(tx: &mut Tx, router_id: &str) -> Result<Vec<FloatingIp>> {
    tx.select("router_id = $1", &[router_id]).await
}

async fn remove_gateway(tx: &mut Tx, router: &mut Router) -> Result<()> {
    let Some(gateway) = router.gateway.take() else {
        return Ok(());
    };
    if !floatingips_via(tx, &router.id).await?.is_empty() {
        return Err(errors::conflict(
            "RouterExternalGatewayInUseByFloatingIp",
            format!(
                "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                router.id, gateway.network_id
            ),
        )
        .into());
    }
    if let Some(port) = tx.lock::<Port>(&gateway.port_id).await? {
        super::ports::delete_rows(tx, &port).await?;
    }
    Ok(())
}

/// Sets (or changes) the router's external gateway. Another network replaces the gateway
/// port; the same network keeps it (its addresses change only when asked).
pub async fn set_gateway(
    tx: &mut Tx,
    settings: &Settings,
    router: &mut Router,
    request: &GatewayRequest,
) -> Result<()> {
    let network: Network = tx
        .lock_shared(&request.network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&request.network_id))?;
    if !network.external {
        return Err(bad_router(format!(
            "Network {} is not an external network",
            network.id
        )));
    }
    if let Some(current) = &router.gateway
        && current.network_id == network.id
    {
        let mut gateway = current.clone();
        if let Some(snat) = request.enable_snat {
            gateway.enable_snat = snat;
        }
        if let Some(ips) = &request.external_fixed_ips {
            let change = super::ports::PortUpdate {
                fixed_ips: Some(ips.clone()),
                ..Default::default()
            };
            super::ports::update(tx, settings, &gateway.port_id, &change, None).await?;
        }
        router.gateway = Some(gateway);
        return Ok(());
    }
    remove_gateway(tx, router).await?;
    let port = new_internal_port(&network.id, "", &router.id, OWNER_ROUTER_GATEWAY);
    let port = super::ports::create(
        tx,
        settings,
        &PortRequest {
            port,
            fixed_ips: request.external_fixed_ips.clone(),
            internal: true,
        },
    )
    .await?;
    let ports = interfaces(tx, &router.id).await?;
    let mine = subnets_of(tx, &ports).await?;
    let gateway_subnets = subnets_of(tx, std::slice::from_ref(&port)).await?;
    check_no_overlap(&gateway_subnets, &mine)?;
    router.gateway = Some(Gateway {
        network_id: network.id.clone(),
        enable_snat: request.enable_snat.unwrap_or(true),
        port_id: port.id,
    });
    Ok(())
}

fn check_no_overlap(new: &[Subnet], existing: &[Subnet]) -> Result<()> {
    for a in new {
        for b in existing {
            let (Some(na), Some(nb)) = (super::subnets::net_of(a), super::subnets::net_of(b))
            else {
                continue;
            };
            if ipam::cidrs_overlap(&na, &nb) {
                return Err(bad_router(format!(
                    "Cidr {} of subnet {} overlaps with cidr {} of subnet {}",
                    a.cidr, a.id, b.cidr, b.id
                )));
            }
        }
    }
    Ok(())
}

/// Creates a router (and its gateway when asked).
pub async fn create(
    tx: &mut Tx,
    settings: &Settings,
    mut router: Router,
    gateway: Option<&GatewayRequest>,
) -> Result<Router> {
    super::quotas::check(tx, settings, &router.project_id, "router", 1).await?;
    tx.insert(&router).await?;
    if let Some(request) = gateway {
        set_gateway(tx, settings, &mut router, request).await?;
        tx.save(&router).await?;
    }
    tx.emit(Event::new(
        "router",
        "created",
        &router.id,
        router.revision_number,
    ));
    Ok(router)
}

/// The changes a router update asks for.
#[derive(Debug, Clone, Default)]
pub struct RouterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    /// `Some(None)` removes the gateway.
    pub gateway: Option<Option<GatewayRequest>>,
    pub routes: Option<Vec<Route>>,
}

/// Checks static routes: each next hop on one of the router's interface subnets (Neutron's
/// `_validate_routes`).
async fn check_routes(tx: &mut Tx, router_id: &str, routes: &[Route]) -> Result<()> {
    let ports = interfaces(tx, router_id).await?;
    let subnets = subnets_of(tx, &ports).await?;
    let own_ips: Vec<&str> = ports
        .iter()
        .flat_map(|p| p.fixed_ips.iter().map(|f| f.ip_address.as_str()))
        .collect();
    for route in routes {
        let invalid = |reason: &str| -> crate::db::Error {
            errors::bad(
                "InvalidRoutes",
                format!(
                    "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], {reason}",
                    route.destination, route.nexthop
                ),
            )
            .into()
        };
        let Some(nexthop) = ipam::parse_ip(&route.nexthop) else {
            return Err(invalid("the nexthop is not a valid IP address"));
        };
        if own_ips.contains(&nexthop.to_string().as_str()) {
            return Err(invalid("the nexthop is used by router"));
        }
        let connected = subnets
            .iter()
            .any(|s| super::subnets::net_of(s).is_some_and(|n: IpNet| n.contains(&nexthop)));
        if !connected {
            return Err(invalid("the nexthop is not connected with router"));
        }
    }
    Ok(())
}

/// Updates a router under its lock.
pub async fn update(
    tx: &mut Tx,
    settings: &Settings,
    id: &str,
    change: &RouterUpdate,
    expected_revision: Option<i64>,
) -> Result<Router> {
    let mut router: Router = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    super::networks::check_revision(expected_revision, router.revision_number)?;
    let before = router.clone();
    if let Some(v) = &change.name {
        router.name = v.clone();
    }
    if let Some(v) = &change.description {
        router.description = v.clone();
    }
    if let Some(v) = change.admin_state_up {
        router.admin_state_up = v;
    }
    let mut gateway_changed = false;
    match &change.gateway {
        Some(None) => {
            gateway_changed = router.gateway.is_some();
            remove_gateway(tx, &mut router).await?;
        }
        Some(Some(request)) => {
            gateway_changed = true;
            set_gateway(tx, settings, &mut router, request).await?;
        }
        None => {}
    }
    if let Some(routes) = &change.routes {
        check_routes(tx, id, routes).await?;
        let mut routes = routes.clone();
        routes.sort();
        routes.dedup();
        router.routes = routes;
    }
    if router != before || gateway_changed {
        touch_router(tx, &mut router).await?;
    }
    Ok(router)
}

/// Adds or removes static routes (extraroute-atomic).
pub async fn edit_routes(tx: &mut Tx, id: &str, add: &[Route], remove: &[Route]) -> Result<Router> {
    let mut router: Router = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    if !add.is_empty() {
        check_routes(tx, id, add).await?;
    }
    let before = router.routes.clone();
    router.routes.retain(|r| !remove.contains(r));
    for route in add {
        if !router.routes.contains(route) {
            router.routes.push(route.clone());
        }
    }
    router.routes.sort();
    if router.routes != before {
        touch_router(tx, &mut router).await?;
    }
    Ok(router)
}

/// Bumps the revision and update time, saves and records an event.
pub async fn touch_router(tx: &mut Tx, router: &mut Router) -> Result<()> {
    router.revision_number += 1;
    router.updated_at = now();
    tx.save(router).await?;
    tx.emit(Event::new(
        "router",
        "updated",
        &router.id,
        router.revision_number,
    ));
    Ok(())
}

/// Deletes a router without interfaces (409 `RouterInUse` otherwise), with its gateway port.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<Router> {
    let mut router: Router = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    super::networks::check_revision(expected_revision, router.revision_number)?;
    if !interfaces(tx, id).await?.is_empty() {
        return Err(errors::conflict("RouterInUse", format!("Router {id} still has ports")).into());
    }
    remove_gateway(tx, &mut router).await?;
    tx.delete::<Router>(id).await?;
    tx.emit(Event::new("router", "deleted", id, router.revision_number));
    Ok(router)
}

/// What an interface change names: a subnet, a port, or both (removal).
#[derive(Debug, Clone, Default)]
pub struct InterfaceRequest {
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
}

/// The interface that was added or removed.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    pub router: Router,
    pub port: Port,
    pub subnet_ids: Vec<String>,
}

/// Adds an interface: by subnet (a new port holding the subnet's gateway address) or by port
/// (an unused port of the caller's). The subnet may not overlap the router's other subnets.
pub async fn add_interface(
    tx: &mut Tx,
    settings: &Settings,
    id: &str,
    request: &InterfaceRequest,
) -> Result<InterfaceInfo> {
    let mut router: Router = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    let existing = interfaces(tx, id).await?;
    let mut mine = subnets_of(tx, &existing).await?;
    if let Some(gw) = &router.gateway
        && let Some(port) = tx.get::<Port>(&gw.port_id).await?
    {
        mine.extend(subnets_of(tx, std::slice::from_ref(&port)).await?);
    }
    let port = match (&request.port_id, &request.subnet_id) {
        (Some(_), Some(_)) => {
            return Err(bad_router(
                "Cannot specify both subnet-id and port-id".into(),
            ));
        }
        (None, None) => {
            return Err(bad_router(
                "Either subnet_id or port_id must be specified".into(),
            ));
        }
        (Some(port_id), None) => {
            let mut port: Port = tx
                .lock(port_id)
                .await?
                .ok_or_else(|| errors::port_not_found(port_id))?;
            if !port.device_id.is_empty() || !port.device_owner.is_empty() {
                return Err(errors::conflict(
                    "PortInUse",
                    format!(
                        "Unable to complete operation on port {} for network {}. Port already has an attached device {}.",
                        port.id, port.network_id, port.device_id
                    ),
                )
                .into());
            }
            if port.fixed_ips.is_empty() {
                return Err(bad_router(
                    "Router port must have at least one fixed IP".into(),
                ));
            }
            let subnets = subnets_of(tx, std::slice::from_ref(&port)).await?;
            if subnets.iter().filter(|s| s.ip_version == 4).count() > 1 {
                return Err(bad_router(
                    "Cannot have multiple IPv4 subnets on router port".into(),
                ));
            }
            check_no_overlap(&subnets, &mine)?;
            port.device_id = id.to_string();
            port.device_owner = OWNER_ROUTER_INTERFACE.into();
            port.security_groups.clear();
            tx.exec(
                "DELETE FROM net_port_security_groups WHERE port_id = $1",
                &[&port.id],
            )
            .await?;
            super::ports::touch_port(tx, &mut port).await?;
            port
        }
        (None, Some(subnet_id)) => {
            let subnet: Subnet = tx
                .get(subnet_id)
                .await?
                .ok_or_else(|| errors::subnet_not_found(subnet_id))?;
            let Some(gateway_ip) = subnet.gateway_ip.clone() else {
                return Err(bad_router(
                    "Subnet for router interface must have a gateway IP".into(),
                ));
            };
            if mine.iter().any(|s| s.id == subnet.id) {
                return Err(bad_router(format!(
                    "Router already has a port on subnet {}",
                    subnet.id
                )));
            }
            check_no_overlap(std::slice::from_ref(&subnet), &mine)?;
            let port = new_internal_port(
                &subnet.network_id,
                &subnet.project_id,
                id,
                OWNER_ROUTER_INTERFACE,
            );
            super::ports::create(
                tx,
                settings,
                &PortRequest {
                    port,
                    fixed_ips: Some(vec![IpRequest {
                        subnet_id: Some(subnet.id.clone()),
                        ip_address: ipam::parse_ip(&gateway_ip),
                    }]),
                    internal: true,
                },
            )
            .await?
        }
    };
    touch_router(tx, &mut router).await?;
    let subnet_ids = port.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect();
    Ok(InterfaceInfo {
        router,
        port,
        subnet_ids,
    })
}

/// Removes an interface by port or subnet; refused while floating IPs or routes need it.
pub async fn remove_interface(
    tx: &mut Tx,
    id: &str,
    request: &InterfaceRequest,
) -> Result<InterfaceInfo> {
    let mut router: Router = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    let ports = interfaces(tx, id).await?;
    let port = match (&request.port_id, &request.subnet_id) {
        (None, None) => {
            return Err(bad_router(
                "Either subnet_id or port_id must be specified".into(),
            ));
        }
        (Some(port_id), subnet) => {
            let port = ports
                .iter()
                .find(|p| &p.id == port_id)
                .cloned()
                .ok_or_else(|| {
                    errors::not_found(
                        "RouterInterfaceNotFound",
                        format!("Router {id} does not have an interface with id {port_id}"),
                    )
                })?;
            if let Some(subnet_id) = subnet
                && !port.fixed_ips.iter().any(|f| &f.subnet_id == subnet_id)
            {
                return Err(errors::conflict(
                    "SubnetMismatchForPort",
                    format!("Subnet {subnet_id} does not match with the port {port_id}"),
                )
                .into());
            }
            port
        }
        (None, Some(subnet_id)) => {
            if tx.get::<Subnet>(subnet_id).await?.is_none() {
                return Err(errors::subnet_not_found(subnet_id).into());
            }
            ports
                .iter()
                .find(|p| p.fixed_ips.iter().any(|f| &f.subnet_id == subnet_id))
                .cloned()
                .ok_or_else(|| {
                    errors::not_found(
                        "RouterInterfaceNotFoundForSubnet",
                        format!("Router {id} has no interface on subnet {subnet_id}"),
                    )
                })?
        }
    };
    let subnets = subnets_of(tx, std::slice::from_ref(&port)).await?;
    for subnet in &subnets {
        let Some(net) = super::subnets::net_of(subnet) else {
            continue;
        };
        let through: Vec<FloatingIp> = floatingips_via(tx, id).await?;
        if through.iter().any(|f| {
            f.fixed_ip_address
                .as_deref()
                .and_then(ipam::parse_ip)
                .is_some_and(|ip| net.contains(&ip))
        }) {
            return Err(errors::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!(
                    "Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more floating IPs.",
                    subnet.id
                ),
            )
            .into());
        }
        if router
            .routes
            .iter()
            .any(|r| ipam::parse_ip(&r.nexthop).is_some_and(|ip| net.contains(&ip)))
        {
            return Err(errors::conflict(
                "RouterInterfaceInUseByRoute",
                format!(
                    "Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more routes.",
                    subnet.id
                ),
            )
            .into());
        }
    }
    let locked: Port = tx
        .lock(&port.id)
        .await?
        .ok_or_else(|| errors::port_not_found(&port.id))?;
    super::ports::delete_rows(tx, &locked).await?;
    touch_router(tx, &mut router).await?;
    Ok(InterfaceInfo {
        router,
        subnet_ids: port.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect(),
        port,
    })
}

/// The addresses of a router's gateway port.
pub async fn gateway_ips(
    conn: &mut sqlx::AnyConnection,
    router: &Router,
) -> Result<Vec<crate::model::FixedIp>> {
    let Some(gateway) = &router.gateway else {
        return Ok(Vec::new());
    };
    Ok(super::get::<Port>(conn, &gateway.port_id)
        .await?
        .map(|p| p.fixed_ips)
        .unwrap_or_default())
}
