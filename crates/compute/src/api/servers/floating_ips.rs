//! The deprecated floating IP server actions (`floating_ips.py`, up to 2.43):
//! `addFloatingIp` associates one of the caller's floating IPs with a fixed address of the
//! server (the first IPv4 one unless `fixed_address` names one), `removeFloatingIp` takes it
//! off again. Both go to the networking service, then refresh the server's network info so
//! that `addresses` shows the change at once.

use super::{is_admin, load};
use crate::api::{Mv, at_least};
use crate::network::{NetworkApi, Vif};
use crate::service::Compute;
use ferrostack_api::{ApiError, Auth, Schema};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

/// The body of either action: `{"address": ip[, "fixed_address": ip]}` (the remove action
/// takes only `address`).
fn schema(with_fixed: bool) -> Schema {
    let mut properties = json!({"address": {"type": "string"}});
    if with_fixed {
        properties["fixed_address"] = json!({"type": "string"});
    }
    Schema::new(json!({
        "type": "object",
        "properties": properties,
        "required": ["address"],
        "additionalProperties": false,
    }))
}

static ADD: LazyLock<Schema> = LazyLock::new(|| schema(true));
static REMOVE: LazyLock<Schema> = LazyLock::new(|| schema(false));

/// Reads `field` of a validated body as an IP address (Nova's `ip_address`: IPv4 or IPv6).
fn address(args: &Value, field: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = args.get(field) else {
        return Ok(None);
    };
    let text = value.as_str().unwrap_or_default();
    if text.parse::<IpAddr>().is_err() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field '{field}': {value} is not valid under any of the given \
             schemas"
        )));
    }
    Ok(Some(text.to_string()))
}

/// The action's preconditions: served up to 2.43 (404 after, as for an unknown action), a
/// valid body, a networking service.
fn checked(
    c: &Compute,
    mv: &Mv,
    schema: &Schema,
    args: &Value,
) -> Result<Arc<dyn NetworkApi>, ApiError> {
    if at_least(mv, 2, 44) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    schema.validate(args)?;
    c.network()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("This cloud has no networking service."))
}

/// `addFloatingIp`
pub(super) async fn add(
    c: &Compute,
    auth: &Auth,
    mv: &Mv,
    uuid: &str,
    args: &Value,
) -> Result<(), ApiError> {
    let network = checked(c, mv, &ADD, args)?;
    let floating = address(args, "address")?.unwrap_or_default();
    let wanted_fixed = address(args, "fixed_address")?;
    let inst = load(c, auth, uuid, "os_compute_api:os-floating-ips:add").await?;
    let bound: Vec<&Vif> = inst.data.vifs.iter().filter(|v| v.bound()).collect();
    if bound.is_empty() {
        return Err(ApiError::bad_request("Instance network is not ready yet"));
    }
    // (port, fixed address) of every fixed IP of the server, in port order.
    let fixed: Vec<(&str, &str)> = bound
        .iter()
        .flat_map(|v| {
            v.fixed_ips
                .iter()
                .map(|ip| (v.port_id.as_str(), ip.address.as_str()))
        })
        .collect();
    if fixed.is_empty() {
        return Err(ApiError::bad_request("No fixed IPs associated to instance"));
    }
    let target = match &wanted_fixed {
        Some(wanted) => fixed
            .iter()
            .find(|(_, address)| address == wanted)
            .ok_or_else(|| {
                ApiError::bad_request("Specified fixed address not assigned to instance")
            })?,
        None => fixed
            .iter()
            .find(|(_, address)| address.parse::<std::net::Ipv4Addr>().is_ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Unable to associate floating IP {floating} to any fixed IPs for instance \
                     {uuid}. Instance has no fixed IPv4 addresses to associate."
                ))
            })?,
    };
    let fip = network
        .floating_ip(&inst.project_id, is_admin(auth), &floating)
        .await?
        .ok_or_else(|| ApiError::not_found("floating IP not found"))?;
    let (port, fixed_address) = *target;
    if let Err(e) = network
        .set_floating_ip_port(&fip.id, Some((port, fixed_address)))
        .await
    {
        if e.status.is_server_error() {
            return Err(e);
        }
        return Err(ApiError::bad_request(format!(
            "Unable to associate floating IP {floating} to fixed IP {fixed_address} for \
             instance {uuid}. Error: {}",
            e.message
        )));
    }
    tracing::info!(
        server = uuid,
        floating,
        fixed_address,
        "floating IP associated"
    );
    // The server it was taken from (if another) shows it no more.
    let previous = fip.device_id.filter(|d| d != uuid);
    refresh(c, [Some(uuid.to_string()), previous]).await;
    Ok(())
}

/// `removeFloatingIp`
pub(super) async fn remove(
    c: &Compute,
    auth: &Auth,
    mv: &Mv,
    uuid: &str,
    args: &Value,
) -> Result<(), ApiError> {
    let network = checked(c, mv, &REMOVE, args)?;
    let floating = address(args, "address")?.unwrap_or_default();
    let inst = load(c, auth, uuid, "os_compute_api:os-floating-ips:remove").await?;
    let fip = network
        .floating_ip(&inst.project_id, is_admin(auth), &floating)
        .await?
        .ok_or_else(|| ApiError::not_found("floating IP not found"))?;
    if fip.port_id.is_none() || fip.device_id.as_deref() != Some(uuid) {
        return Err(ApiError::conflict(format!(
            "Floating IP {floating} is not associated with instance {uuid}."
        )));
    }
    network.set_floating_ip_port(&fip.id, None).await?;
    tracing::info!(server = uuid, floating, "floating IP disassociated");
    refresh(c, [Some(uuid.to_string()), None]).await;
    Ok(())
}

/// Refreshes the network info of the servers the action changed. A failure is logged: the
/// association itself is done, and the next `network-changed` refreshes again.
async fn refresh(c: &Compute, servers: [Option<String>; 2]) {
    for uuid in servers.iter().flatten() {
        if let Err(e) = crate::ports::refresh(c, uuid).await {
            tracing::warn!(server = %uuid, error = %format!("{e:#}"), "refreshing network info");
        }
    }
}
