//! The conductor: the only part of compute that writes instance state on behalf of agents,
//! and the scheduler's caller. It consumes [`CONDUCTOR_QUEUE`], schedules builds (Placement
//! candidates → [`scheduler`] → claim, with retries on alternates), turns agent reports into
//! compare-and-swap state changes, keeps Placement's inventory of each host from its
//! heartbeats, syncs power states, and on start resumes every operation a crash interrupted.
//!
//! Build transitions (the agent's side is in `ferrostack-compute-agent`):
//! `building/scheduling` —claim→ `building/None` (host set) —agent→ `building/spawning`
//! —agent→ `active/None`. A failure on a host releases the claim and either reschedules
//! (`building/scheduling`, host cleared, host added to the tried list) or, after
//! `max_attempts` or for a non-retryable error, ends `error/None` with a fault.

use crate::db::instances::{self as idb, Instance, StateChange};
use crate::db::{self, nodes};
use crate::guest::guest_build;
use crate::host_view::HostView;
use crate::rpc::{
    self, AgentRequest, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest, OwnedInstance,
    agent_queue,
};
use crate::scheduler::{self, GroupPolicy, HostState, Scheduler};
use crate::service::Compute;
use crate::states::{power, task, vm};
use ferrostack_placement::local::{InventorySpec, Resources};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Nova's fault text when no host fits.
pub const NO_VALID_HOST: &str = "No valid host was found. There are not enough hosts available.";

fn now() -> String {
    ferrostack_store::now_rfc3339()
}

/// Nova's action-event timestamp format.
pub fn event_time() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Starts the conductor: resumes interrupted operations, then serves agents until the bus
/// closes.
pub async fn start(compute: Arc<Compute>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // A scheduler setting that cannot work stops start-up here rather than every build later.
    let filters = Scheduler::from_config(&compute.config)?;
    let names: Vec<&str> = filters.filters().iter().map(|f| f.name()).collect();
    tracing::info!(filters = ?names, "scheduler filters");
    let mut queue = compute.bus.consume(CONDUCTOR_QUEUE).await?;
    let resumer = compute.clone();
    tokio::spawn(async move {
        if let Err(e) = resume(&resumer).await {
            tracing::error!(error = %e, "resuming interrupted compute operations");
        }
    });
    Ok(tokio::spawn(async move {
        while let Some(delivery) = queue.next().await {
            let compute = compute.clone();
            tokio::spawn(async move {
                let reply = match rpc::decode::<ConductorRequest>(&delivery.payload) {
                    Ok(request) => handle(&compute, request).await.unwrap_or_else(|e| {
                        tracing::error!(error = %e, "conductor request failed");
                        ConductorReply::Error {
                            message: e.to_string(),
                        }
                    }),
                    Err(e) => ConductorReply::Error {
                        message: format!("bad request: {e}"),
                    },
                };
                let _ = delivery.reply(rpc::encode(&reply)).await;
            });
        }
    }))
}

async fn handle(c: &Arc<Compute>, request: ConductorRequest) -> anyhow::Result<ConductorReply> {
    match request {
        ConductorRequest::Heartbeat {
            host,
            node_uuid,
            resources,
            guests,
            capabilities,
        } => {
            heartbeat(c, &host, &node_uuid, &resources, capabilities.as_ref()).await?;
            sync_power_states(c, &host, &guests).await?;
            Ok(ConductorReply::Ok)
        }
        ConductorRequest::HostInstances { host } => {
            let mut instances = Vec::new();
            for inst in idb::instances_on_host(&c.store, &host).await? {
                // A build whose ports or volumes are not ready goes without its build (the
                // agent leaves it alone) and is cast once they are.
                let (inst, ready) = match inst.vm_state == vm::BUILDING {
                    true => match prepare_build(c, inst.clone()).await {
                        Ok(Some(prepared)) => (prepared, true),
                        Ok(None) => (inst, true),
                        Err(e) => {
                            tracing::warn!(uuid = %inst.uuid, error = %e, "preparing a build: retried");
                            retry_build(c.clone(), inst.uuid.clone());
                            (inst, false)
                        }
                    },
                    false => (inst, true),
                };
                let request_id = idb::latest_request_id(&c.store, &inst.uuid)
                    .await?
                    .unwrap_or_default();
                instances.push(OwnedInstance {
                    build: ready.then(|| guest_build(&inst, &c.config.instance_name_template)),
                    uuid: inst.uuid,
                    vm_state: inst.vm_state,
                    task_state: inst.task_state,
                    request_id,
                });
            }
            Ok(ConductorReply::Instances { instances })
        }
        ConductorRequest::Update(u) => {
            let expected: Vec<Option<&str>> =
                u.expected_task_state.iter().map(|t| t.as_deref()).collect();
            let change = StateChange {
                vm_state: u.vm_state.clone(),
                task_state: u.task_state.clone(),
                power_state: u.power_state,
                launched_at: u.launched.then(now),
                ..Default::default()
            };
            if idb::update_state(&c.store, &u.uuid, &expected, &change, &now()).await? {
                return Ok(ConductorReply::Ok);
            }
            let current = idb::instance(&c.store, &u.uuid).await?;
            Ok(ConductorReply::Conflict {
                task_state: current.as_ref().and_then(|i| i.task_state.clone()),
                deleted: current.is_none_or(|i| i.deleted),
            })
        }
        ConductorRequest::BuildFailed {
            uuid,
            host,
            message,
            reschedule,
        } => {
            build_failed(c, &uuid, &host, &message, reschedule).await?;
            Ok(ConductorReply::Ok)
        }
        ConductorRequest::Deleted { uuid, host: _ } => {
            finish_delete(c, &uuid).await?;
            Ok(ConductorReply::Ok)
        }
        ConductorRequest::PortsActive { uuid } => Ok(ConductorReply::PortsActive {
            pending: crate::ports::pending(c, &uuid).await?,
        }),
        ConductorRequest::VolumeAttached {
            uuid,
            volume_id,
            error,
        } => {
            crate::volumes::attached(c, &uuid, &volume_id, error.as_deref()).await?;
            Ok(ConductorReply::Ok)
        }
        ConductorRequest::VolumeDetached {
            uuid,
            volume_id,
            error,
        } => {
            crate::volumes::detached(c, &uuid, &volume_id, error.as_deref()).await?;
            Ok(ConductorReply::Ok)
        }
        ConductorRequest::Event(e) => {
            let host = idb::instance(&c.store, &e.uuid).await?.and_then(|i| i.host);
            let row = idb::ActionEventRow {
                event: e.event,
                start_time: e.start_time,
                finish_time: Some(e.finish_time),
                result: Some(
                    if e.error.is_some() {
                        "Error"
                    } else {
                        "Success"
                    }
                    .into(),
                ),
                traceback: e.error.clone(),
                host,
                details: e.error,
            };
            idb::add_event(&c.store, &e.uuid, &e.request_id, &row).await?;
            Ok(ConductorReply::Ok)
        }
    }
}

/// Records the heartbeat (resources, and the hypervisor's capabilities when it carries them)
/// and sets the host's inventory in Placement.
async fn heartbeat(
    c: &Compute,
    host: &str,
    node_uuid: &str,
    r: &rpc::HostResources,
    capabilities: Option<&rpc::HostCapabilities>,
) -> anyhow::Result<()> {
    let report = nodes::Report {
        node_uuid,
        vcpus: r.vcpus,
        memory_mb: r.memory_mb,
        disk_gb: r.disk_gb,
        capabilities,
    };
    let created = nodes::heartbeat(&c.store, host, report, &now()).await?;
    if created {
        tracing::info!(host, node_uuid, "compute host registered");
    }
    // The agent reports what it offers, its host reservations already taken off.
    let cfg = &c.config;
    let spec = |total: i64, ratio: f64| InventorySpec {
        total,
        reserved: 0,
        min_unit: 1,
        max_unit: total.max(1),
        step_size: 1,
        allocation_ratio: ratio,
    };
    let mut inventory = BTreeMap::new();
    inventory.insert("VCPU".to_string(), spec(r.vcpus, cfg.cpu_allocation_ratio));
    inventory.insert(
        "MEMORY_MB".to_string(),
        spec(r.memory_mb, cfg.ram_allocation_ratio),
    );
    inventory.insert(
        "DISK_GB".to_string(),
        spec(r.disk_gb, cfg.disk_allocation_ratio),
    );
    c.placement
        .ensure_compute_node(node_uuid, host, &inventory)
        .await?;
    Ok(())
}

/// Nova's `_sync_instance_power_state` for the idle instances of `host`.
async fn sync_power_states(
    c: &Compute,
    host: &str,
    guests: &[rpc::GuestState],
) -> anyhow::Result<()> {
    let seen: BTreeMap<&str, i64> = guests
        .iter()
        .map(|g| (g.uuid.as_str(), g.power_state))
        .collect();
    for inst in idb::instances_on_host(&c.store, host).await? {
        if inst.task_state.is_some() || inst.vm_state == vm::BUILDING {
            continue;
        }
        let observed = seen
            .get(inst.uuid.as_str())
            .copied()
            .unwrap_or(power::NOSTATE);
        let mut change = StateChange::default();
        if observed != inst.power_state {
            change.power_state = Some(observed);
        }
        if inst.vm_state == vm::ACTIVE
            && matches!(observed, power::SHUTDOWN | power::CRASHED | power::NOSTATE)
        {
            tracing::info!(uuid = %inst.uuid, observed, "guest is down: instance stopped");
            change.vm_state = Some(vm::STOPPED.into());
        }
        if change.power_state.is_some() || change.vm_state.is_some() {
            idb::update_state(&c.store, &inst.uuid, &[None], &change, &now()).await?;
        }
    }
    Ok(())
}

/// The resources an instance claims in Placement.
pub fn resources_of(inst: &Instance) -> Resources {
    let f = &inst.data.flavor;
    let mut r = Resources::new();
    r.insert("VCPU".into(), f.vcpus);
    r.insert("MEMORY_MB".into(), f.memory_mb);
    // A server booted from a volume has no local root disk (Nova's `is_volume_backed`).
    let root_gb = match crate::volumes::boots_from_volume(inst) {
        true => 0,
        false => f.root_gb,
    };
    let disk = root_gb + f.ephemeral_gb + (f.swap + 1023) / 1024;
    if disk > 0 {
        r.insert("DISK_GB".into(), disk);
    }
    r
}

async fn group_policy(c: &Compute, inst: &Instance) -> anyhow::Result<Option<GroupPolicy>> {
    let Some(group_id) = &inst.data.spec.group else {
        return Ok(None);
    };
    let Some(group) = db::server_group(&c.store, group_id).await? else {
        return Ok(None);
    };
    let others: Vec<String> = group
        .members
        .iter()
        .filter(|m| **m != inst.uuid)
        .cloned()
        .collect();
    let member_hosts = idb::hosts_of(&c.store, &others).await?;
    Ok(Some(GroupPolicy {
        policy: group.policy.clone(),
        max_server_per_host: group.max_server_per_host.unwrap_or(1),
        member_hosts,
    }))
}

/// Schedules `uuid` (in `building/scheduling`) and casts the build to the chosen host. Errors
/// the instance with a fault when no host fits. Safe to call again after a crash: the claim is
/// idempotent per instance.
pub async fn schedule_and_build(c: &Arc<Compute>, uuid: &str) -> anyhow::Result<()> {
    let arrived = std::time::Instant::now();
    let Some(inst) = idb::instance(&c.store, uuid).await? else {
        return Ok(());
    };
    if inst.deleted || inst.task_state.as_deref() != Some(task::SCHEDULING) {
        return Ok(());
    }
    // Placement decisions of one process are serialised so two builds do not pick the same
    // last slot of an anti-affinity group (the claim itself is atomic either way), and share
    // the host view (see `host_view`).
    let mut guard = c.host_view.lock().await;
    let group = group_policy(c, &inst).await?;
    let request = scheduler::Request {
        spec: &inst.data.spec,
        project_id: &inst.project_id,
        flavor: &inst.data.flavor,
        availability_zone: inst.data.pinned_availability_zone.as_deref(),
        group: group.as_ref(),
        same_host_hosts: idb::hosts_of(&c.store, &inst.data.spec.same_host).await?,
        different_host_hosts: idb::hosts_of(&c.store, &inst.data.spec.different_host).await?,
    };
    // Validated at start-up.
    let scheduler = Scheduler::from_config(&c.config)?;
    let resources = resources_of(&inst);
    let view = match guard.take() {
        Some(view) if view.fresh_for(arrived) => guard.insert(view),
        _ => guard.insert(HostView::load(c).await?),
    };
    let mut chosen: Option<HostState> = None;
    let mut stale = false;
    let mut failed = None;
    let states = view.host_states(c, &resources).await?;
    let (ordered, rejected) = scheduler.select(states, &request);
    for host in ordered {
        let claimed = c
            .placement
            .claim(
                uuid,
                &inst.project_id,
                &inst.user_id,
                &host.node_uuid,
                &resources,
            )
            .await;
        match claimed {
            Ok(true) => {
                chosen = Some(host.clone());
                break;
            }
            // Someone else's claim or a smaller inventory: the view is stale.
            Ok(false) => stale = true,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    match (&chosen, stale || failed.is_some()) {
        (_, true) => *guard = None,
        (Some(host), false) => {
            if let Some(view) = guard.as_mut() {
                view.claimed(host, &resources);
            }
        }
        (None, false) => {}
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    if chosen.is_some() {
        crate::crashpoint::hit("conductor:after-claim");
    }
    let Some(host) = chosen else {
        drop(guard);
        if !rejected.is_empty() {
            tracing::info!(uuid, ?rejected, "no valid host");
        }
        return fail_build(c, &inst, 500, NO_VALID_HOST).await;
    };
    if let Err(e) = record_zone(c, &inst, &host.availability_zone).await {
        tracing::warn!(uuid, error = %e, "recording the instance's availability zone");
    }
    let set = StateChange {
        task_state: Some(None),
        host: Some(Some(host.host.clone())),
        ..Default::default()
    };
    let placed = idb::update_state(&c.store, uuid, &[Some(task::SCHEDULING)], &set, &now()).await?;
    if !placed {
        // The claim is given back below: the view counted it.
        *guard = None;
    }
    drop(guard);
    if !placed {
        // Deleted (or reset) while scheduling: give the claim back.
        c.placement.release(uuid).await?;
        if let Some(i) = idb::instance(&c.store, uuid).await?
            && i.task_state.as_deref() == Some(task::DELETING)
            && i.host.is_none()
        {
            finish_delete(c, uuid).await?;
        }
        return Ok(());
    }
    crate::crashpoint::hit("conductor:after-host-set");
    let Some(inst) = idb::instance(&c.store, uuid).await? else {
        return Ok(());
    };
    bind_ports_and_build(c, inst).await
}

/// Binds the ports of a placed instance to its host and connects its volumes there, then
/// casts the build. A port that cannot be made (no free address, the network gone) or a volume
/// that cannot be connected fails the build for good, as in Nova.
async fn bind_ports_and_build(c: &Arc<Compute>, inst: Instance) -> anyhow::Result<()> {
    match prepare_build(c, inst.clone()).await {
        Ok(Some(inst)) => cast_build(c, &inst).await,
        Ok(None) => Ok(()),
        Err(e) => {
            let host = inst.host.clone().unwrap_or_default();
            build_failed(c, &inst.uuid, &host, &format!("{e:#}"), false).await
        }
    }
}

/// Prepares and casts the build of a placed instance in the background, every 5 s for up to
/// two minutes (the network or volume service may not answer yet while this process starts);
/// then the build fails for good.
fn retry_build(c: Arc<Compute>, uuid: String) {
    tokio::spawn(async move {
        const ATTEMPTS: u32 = 24;
        for attempt in 1..=ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let inst = match idb::instance(&c.store, &uuid).await {
                Ok(Some(i)) if !i.deleted && i.vm_state == vm::BUILDING && i.host.is_some() => i,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(uuid, error = %e, "reading a build to retry");
                    continue;
                }
            };
            let outcome = match prepare_build(&c, inst.clone()).await {
                Ok(Some(inst)) => cast_build(&c, &inst).await,
                Ok(None) => return,
                Err(e) if attempt == ATTEMPTS => {
                    let host = inst.host.clone().unwrap_or_default();
                    build_failed(&c, &uuid, &host, &format!("{e:#}"), false).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => return,
                Err(e) => tracing::warn!(uuid, attempt, error = %e, "preparing a build"),
            }
        }
    });
}

/// What a placed instance needs before its host builds it: its ports bound to the host, then
/// its volumes connected to it. Idempotent; `None` when the instance is gone.
async fn prepare_build(c: &Compute, inst: Instance) -> anyhow::Result<Option<Instance>> {
    let Some(inst) = crate::ports::allocate(c, inst)
        .await
        .map_err(|e| e.context("the ports could not be allocated"))?
    else {
        return Ok(None);
    };
    crate::volumes::connect_for_build(c, inst)
        .await
        .map_err(|e| e.context("the volumes could not be connected"))
}

/// Records the zone of the chosen host as the instance's zone (Nova's conductor does so after
/// scheduling), unless it is already the one recorded. Retried over concurrent changes of the
/// instance's data; nothing to do once it left `scheduling` (deleted, reset).
async fn record_zone(c: &Compute, inst: &Instance, zone: &str) -> anyhow::Result<()> {
    if inst.data.availability_zone.as_deref() == Some(zone) {
        return Ok(());
    }
    for _ in 0..10 {
        let Some(mut current) = idb::instance(&c.store, &inst.uuid).await? else {
            return Ok(());
        };
        if current.deleted || current.task_state.as_deref() != Some(task::SCHEDULING) {
            return Ok(());
        }
        current.data.availability_zone = Some(zone.to_string());
        if idb::save_data(&c.store, &current, &now()).await? {
            return Ok(());
        }
    }
    anyhow::bail!(
        "instance {} kept changing while its zone was recorded",
        inst.uuid
    )
}

/// [`schedule_and_build`] behind a named future type: a build failure reschedules, which may
/// fail again, so the futures are recursive and need one boxed, `Send` link.
fn schedule_again(
    c: Arc<Compute>,
    uuid: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>> {
    Box::pin(async move { schedule_and_build(&c, &uuid).await })
}

/// Sends the build of a placed instance to its host; an unreachable host is a build failure
/// that reschedules.
async fn cast_build(c: &Arc<Compute>, inst: &Instance) -> anyhow::Result<()> {
    let Some(host) = inst.host.clone() else {
        return Ok(());
    };
    let request_id = idb::latest_request_id(&c.store, &inst.uuid)
        .await?
        .unwrap_or_default();
    let message = AgentRequest::Build {
        build: guest_build(inst, &c.config.instance_name_template),
        request_id,
    };
    if let Err(e) = c.bus.send(&agent_queue(&host), rpc::encode(&message)).await {
        let c = c.clone();
        let uuid = inst.uuid.clone();
        // Not inline: build_failed may schedule again, which may cast again.
        tokio::spawn(async move {
            let text = format!("compute host {host} is unreachable: {e}");
            if let Err(e) = build_failed(&c, &uuid, &host, &text, true).await {
                tracing::error!(uuid, error = %e, "handling an unreachable host");
            }
        });
    }
    Ok(())
}

/// Errors a building instance with a fault and releases its claim.
pub(crate) async fn fail_build(
    c: &Compute,
    inst: &Instance,
    code: i64,
    message: &str,
) -> anyhow::Result<()> {
    let set = StateChange {
        vm_state: Some(vm::ERROR.into()),
        task_state: Some(None),
        host: Some(None),
        fault: Some(idb::NewFault {
            code,
            message: message.to_string(),
        }),
        ..Default::default()
    };
    let expected = [Some(task::SCHEDULING), None, Some(task::SPAWNING)];
    if idb::update_state(&c.store, &inst.uuid, &expected, &set, &now()).await? {
        tracing::warn!(uuid = %inst.uuid, message, "build failed");
    }
    crate::ports::release(c, &inst.uuid).await?;
    c.placement.release(&inst.uuid).await?;
    Ok(())
}

async fn build_failed(
    c: &Arc<Compute>,
    uuid: &str,
    host: &str,
    message: &str,
    reschedule: bool,
) -> anyhow::Result<()> {
    let Some(mut inst) = idb::instance(&c.store, uuid).await? else {
        return Ok(());
    };
    if inst.deleted || inst.vm_state != vm::BUILDING {
        return Ok(());
    }
    if inst.task_state.as_deref() == Some(task::DELETING) {
        c.placement.release(uuid).await?;
        return finish_delete(c, uuid).await;
    }
    c.placement.release(uuid).await?;
    inst.data.spec.tried_hosts.push(host.to_string());
    let attempts = inst.data.spec.tried_hosts.len() as u32;
    if !reschedule || attempts >= c.config.max_attempts.max(1) {
        let text = if reschedule {
            format!(
                "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {uuid}."
            )
        } else {
            format!("Build of instance {uuid} aborted: {message}")
        };
        return fail_build(c, &inst, 500, &text).await;
    }
    if !idb::save_data(&c.store, &inst, &now()).await? {
        // Changed meanwhile (deleted or reset): nothing to reschedule.
        return Ok(());
    }
    let set = StateChange {
        task_state: Some(Some(task::SCHEDULING.into())),
        host: Some(None),
        ..Default::default()
    };
    if idb::update_state(&c.store, uuid, &[None, Some(task::SPAWNING)], &set, &now()).await? {
        tracing::info!(uuid, host, message, "rescheduling build");
        schedule_again(c.clone(), uuid.to_string()).await?;
    }
    Ok(())
}

/// Finishes a delete: the ports given back and the claim released, then the row marked
/// deleted (idempotent; in this order a server that reads as gone never holds resources).
pub async fn finish_delete(c: &Compute, uuid: &str) -> anyhow::Result<()> {
    crate::ports::release(c, uuid).await?;
    if let Some(inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) {
        crate::volumes::release_all(c, &inst).await?;
    }
    c.placement.release(uuid).await?;
    crate::crashpoint::hit("conductor:after-release");
    idb::mark_deleted(&c.store, uuid, &now()).await?;
    Ok(())
}

/// Starts the delete of an instance already marked `deleting`: on its host through the
/// agent, or locally when it has no host or the host cannot be reached (the agent removes
/// the guest it no longer owns when it comes back).
pub async fn delete(c: &Arc<Compute>, inst: &Instance, request_id: &str) -> anyhow::Result<()> {
    match &inst.host {
        Some(host) => {
            let message = AgentRequest::Delete {
                uuid: inst.uuid.clone(),
                request_id: request_id.to_string(),
            };
            if c.bus
                .send(&agent_queue(host), rpc::encode(&message))
                .await
                .is_err()
            {
                tracing::warn!(uuid = %inst.uuid, host, "host unreachable: local delete");
                finish_delete(c, &inst.uuid).await?;
            }
        }
        None => finish_delete(c, &inst.uuid).await?,
    }
    Ok(())
}

/// Forwards external events (`os-server-external-events`) to the agent on `host`, the host of
/// their servers (cast: a build waiting for its ports also polls them, so a lost event only
/// delays it).
pub async fn forward_external_events(
    c: &Compute,
    host: &str,
    events: Vec<rpc::ExternalEvent>,
) -> anyhow::Result<()> {
    cast(c, host, &AgentRequest::ExternalEvents { events }).await
}

/// Sends a power operation to the instance's host (cast).
pub async fn cast(c: &Compute, host: &str, message: &AgentRequest) -> anyhow::Result<()> {
    c.bus.send(&agent_queue(host), rpc::encode(message)).await?;
    Ok(())
}

/// On start: carries on with the interrupted operations of instances without a host
/// (scheduling, deleting). Operations on a host are resumed by that host's agent, which asks
/// for its instances when it starts ([`ConductorRequest::HostInstances`]); with a durable bus
/// the agent also still has the requests sent before the crash.
async fn resume(c: &Arc<Compute>) -> anyhow::Result<()> {
    let volumes = c.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::volumes::resume(&volumes).await {
            tracing::warn!(error = %e, "resuming volume attaches and detaches");
        }
    });
    for inst in idb::busy_instances(&c.store).await? {
        if inst.host.is_some() {
            continue;
        }
        let outcome = match inst.task_state.as_deref() {
            // Its volumes are connected right after scheduling: once the volume service
            // answers (in the all-in-one its listener opens after the conductor starts).
            Some(task::SCHEDULING) if !inst.data.volumes.is_empty() => {
                let (c, uuid) = (c.clone(), inst.uuid.clone());
                tokio::spawn(async move {
                    let outcome = match crate::volumes::wait_for_service(&c).await {
                        Ok(()) => schedule_and_build(&c, &uuid).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = outcome {
                        tracing::warn!(uuid, error = %e, "resuming a build");
                    }
                });
                Ok(())
            }
            Some(task::SCHEDULING) => schedule_and_build(c, &inst.uuid).await,
            Some(task::DELETING) => finish_delete(c, &inst.uuid).await,
            _ if inst.vm_state == vm::BUILDING => {
                fail_build(c, &inst, 500, "Build interrupted before scheduling").await
            }
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::warn!(uuid = %inst.uuid, error = %e, "resuming an interrupted operation");
        }
    }
    Ok(())
}
