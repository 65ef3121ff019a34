//! The conductor's side of a server's ports: planned and recorded before they are made,
//! bound to the chosen host before the build is cast, reported active to the waiting agent,
//! and given back when the server is deleted or its build fails. Every step may be repeated
//! after a crash (see [`crate::network`]).

use crate::db::instances::{self as idb, Instance};
use crate::network::{PortOwner, RequestedNic, Vif};
use crate::service::Compute;
use crate::states::task;

fn now() -> String {
    ferrostack_store::now_rfc3339()
}

/// The interfaces of the request, each with its port id fixed now: a new id for a port to
/// create (with the requested security groups), the user's for a port to take.
pub fn plan(requested: &[RequestedNic], security_groups: &[String]) -> Vec<Vif> {
    requested
        .iter()
        .map(|nic| Vif {
            security_groups: match nic.port_id {
                None => security_groups.to_vec(),
                Some(_) => Vec::new(),
            },
            port_id: nic
                .port_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            network_id: nic.network_id.clone().unwrap_or_default(),
            created: nic.port_id.is_none(),
            fixed_ip: nic.fixed_ip.clone(),
            ..Default::default()
        })
        .collect()
}

/// Saves `change` applied to the newest copy of the instance while it still builds on a
/// host; `None` once it left that state (deleted, errored, rescheduled).
async fn update_building(
    c: &Compute,
    uuid: &str,
    change: impl Fn(&mut Instance),
) -> anyhow::Result<Option<Instance>> {
    for _ in 0..10 {
        let Some(mut inst) = idb::instance(&c.store, uuid).await? else {
            return Ok(None);
        };
        if !builds_on_a_host(&inst) {
            return Ok(None);
        }
        change(&mut inst);
        if idb::save_data(&c.store, &inst, &now()).await? {
            inst.generation += 1;
            return Ok(Some(inst));
        }
    }
    anyhow::bail!("instance {uuid} kept changing while its ports were recorded")
}

/// Makes the ports of a placed, building instance exist and bound to its host, recording
/// their ids first and their details after. Returns the instance as saved, or `None` when it
/// no longer builds there. Without a networking service, or without interfaces, the instance
/// is returned as it is.
pub async fn allocate(c: &Compute, inst: Instance) -> anyhow::Result<Option<Instance>> {
    let Some(network) = c.network().cloned() else {
        return Ok(Some(inst));
    };
    let Some(host) = inst.host.clone() else {
        return Ok(None);
    };
    if inst.data.spec.requested_networks.is_empty() {
        return Ok(Some(inst));
    }
    let mut inst = inst;
    if inst.data.vifs.is_empty() {
        let spec = &inst.data.spec;
        let planned = plan(&spec.requested_networks, &spec.security_groups);
        match update_building(c, &inst.uuid, |i| {
            if i.data.vifs.is_empty() {
                i.data.vifs = planned.clone();
            }
        })
        .await?
        {
            Some(saved) => inst = saved,
            None => return Ok(None),
        }
    }
    let zone = inst
        .data
        .availability_zone
        .clone()
        .unwrap_or_else(|| c.config.default_availability_zone.clone());
    let owner = PortOwner {
        server_uuid: inst.uuid.clone(),
        project_id: inst.project_id.clone(),
        host,
        device_owner: format!("compute:{zone}"),
    };
    let mut bound = Vec::new();
    for vif in &inst.data.vifs {
        bound.push(network.bind(vif, &owner).await?);
    }
    crate::crashpoint::hit("conductor:after-ports-created");
    // Kept only while the instance still builds on a host; a bind that raced a delete (or a
    // failed build) gives its ports back here, so nothing is left bound to a gone server.
    let saved = match bound == inst.data.vifs {
        true => still_building(c, &inst.uuid).await?.then_some(inst),
        false => update_building(c, &inst.uuid, |i| i.data.vifs = bound.clone()).await?,
    };
    if saved.is_none() {
        network.release(&owner.server_uuid, &bound).await?;
    }
    Ok(saved)
}

/// Whether the instance still builds on a host (not deleted, not being deleted).
async fn still_building(c: &Compute, uuid: &str) -> anyhow::Result<bool> {
    let inst = idb::instance(&c.store, uuid).await?;
    Ok(inst.as_ref().is_some_and(builds_on_a_host))
}

fn builds_on_a_host(inst: &Instance) -> bool {
    !inst.deleted
        && inst.vm_state == crate::states::vm::BUILDING
        && inst.host.is_some()
        && inst.task_state.as_deref() != Some(task::DELETING)
}

/// Gives back the ports of an instance (deleted, or whose build failed for good).
pub async fn release(c: &Compute, uuid: &str) -> anyhow::Result<()> {
    let Some(network) = c.network() else {
        return Ok(());
    };
    let Some(inst) = idb::instance(&c.store, uuid).await? else {
        return Ok(());
    };
    if inst.data.vifs.is_empty() {
        return Ok(());
    }
    network.release(uuid, &inst.data.vifs).await?;
    crate::crashpoint::hit("conductor:after-ports-deleted");
    Ok(())
}

/// The ports of the instance's interfaces not active yet.
pub async fn pending(c: &Compute, uuid: &str) -> anyhow::Result<Vec<String>> {
    let Some(network) = c.network() else {
        return Ok(Vec::new());
    };
    let Some(inst) = idb::instance(&c.store, uuid).await? else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = inst.data.vifs.iter().map(|v| v.port_id.clone()).collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    network.pending(&ids).await
}

/// Reads the instance's interfaces again from the networking service and saves them when
/// they changed (Nova's info-cache refresh on `network-changed`, and after the floating IP
/// actions): the floating addresses and fixed addresses `addresses` shows. A deleted
/// instance, or one without interfaces, is left alone.
pub async fn refresh(c: &Compute, uuid: &str) -> anyhow::Result<()> {
    let Some(network) = c.network().cloned() else {
        return Ok(());
    };
    for _ in 0..10 {
        let Some(mut inst) = idb::instance(&c.store, uuid).await? else {
            return Ok(());
        };
        if inst.deleted || inst.data.vifs.is_empty() {
            return Ok(());
        }
        let refreshed = network.refresh(uuid, &inst.data.vifs).await?;
        if refreshed == inst.data.vifs {
            return Ok(());
        }
        inst.data.vifs = refreshed;
        if idb::save_data(&c.store, &inst, &now()).await? {
            tracing::info!(server = uuid, "network info refreshed");
            return Ok(());
        }
    }
    anyhow::bail!("instance {uuid} kept changing while its network info was refreshed")
}
