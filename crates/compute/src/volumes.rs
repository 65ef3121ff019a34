//! Compute's side of block storage (Nova's `volume/cinder.py` and the attach/detach parts of
//! `compute/manager.py`): the [`VolumeApi`] seam to the volume service, the attachments a
//! server holds ([`VolumeRecord`], Nova's block device mappings), and the steps of attach and
//! detach.
//!
//! Every step is recorded on the instance before it acts, so that a crash of any process at any
//! point ends, once the conductor runs again, with the volume either attached (`in-use`, in the
//! domain) or not (`available`, not in it):
//! 1. `reserving`: recorded; then the volume service reserves the volume for the server (an
//!    attachment is created) and the record gets the attachment's id.
//! 2. `attaching`: the connection info is taken (the attachment is updated with the host's
//!    connector) and the agent is asked to plug the disk (idempotent).
//! 3. `attached`: the agent reported the disk in the domain; the attachment is completed.
//! 4. `detaching`: the agent is asked to unplug it; once it reports the disk gone the
//!    attachment is deleted and the record removed.
//!
//! The conductor's sweep ([`resume`]) re-drives records left in 1, 2 or 4: a reservation without
//! its id is rolled back (the server's attachments of that volume deleted), the others are sent
//! to the agent again.

use crate::db::instances::{self as idb, Instance};
use crate::rpc::{AgentRequest, ROOT_TARGET, VolumeDisk};
use crate::service::Compute;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A volume as compute needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub id: String,
    pub project_id: String,
    pub status: String,
    /// GiB.
    pub size: i64,
    pub multiattach: bool,
    pub bootable: bool,
}

/// Where and how a compute host opens an attached volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The file the hypervisor opens.
    pub path: String,
    /// `raw` or `qcow2`.
    pub format: String,
    pub readonly: bool,
}

/// The volume service as compute uses it (Cinder's attachments API, 3.44+).
#[async_trait]
pub trait VolumeApi: Send + Sync {
    /// The volume `id`, whoever owns it (`None` when it does not exist).
    async fn volume(&self, id: &str) -> anyhow::Result<Option<VolumeInfo>>;
    /// Reserves the volume for `instance` (an attachment in `reserved`); its id.
    async fn reserve(&self, volume_id: &str, instance: &str) -> anyhow::Result<String>;
    /// Gives the attachment the connector of `host`; the connection to open.
    async fn connect(&self, attachment_id: &str, host: &str) -> anyhow::Result<Connection>;
    /// Marks the attachment attached (the volume turns `in-use`).
    async fn complete(&self, attachment_id: &str) -> anyhow::Result<()>;
    /// Deletes the attachment (absent is not an error); the volume turns `available` when it
    /// was its last.
    async fn release(&self, attachment_id: &str) -> anyhow::Result<()>;
    /// The ids of the attachments of `volume_id` to `instance`.
    async fn attachments_of(&self, volume_id: &str, instance: &str) -> anyhow::Result<Vec<String>>;
    /// Deletes the volume (for `delete_on_termination`); absent is not an error.
    async fn delete_volume(&self, volume_id: &str) -> anyhow::Result<()>;
    /// Creates a volume as the caller of `user_token` (so it is theirs, in their project, as
    /// Nova creates boot volumes with the user's token), tagged with the block device
    /// mapping `bdm_id` it is for; its id.
    async fn create_volume(
        &self,
        user_token: &str,
        bdm_id: &str,
        source: &NewVolume,
    ) -> anyhow::Result<String>;
    /// The volume made for the block device mapping `bdm_id` (found by its tag), if any.
    async fn volume_for_mapping(&self, bdm_id: &str) -> anyhow::Result<Option<String>>;
}

/// A volume to be made at boot (`image`, `snapshot` or `blank` → `volume`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVolume {
    /// GiB; `None`: the snapshot's size.
    pub size: Option<i64>,
    pub image_id: Option<String>,
    pub snapshot_id: Option<String>,
}

/// The tag (volume metadata key) naming the block device mapping a volume was made for.
pub const MAPPING_TAG: &str = "ferrostack_bdm";

/// The state of one attachment of a server.
pub mod state {
    pub const RESERVING: &str = "reserving";
    pub const ATTACHING: &str = "attaching";
    pub const ATTACHED: &str = "attached";
    pub const DETACHING: &str = "detaching";
}

/// One volume attached to a server (Nova's block device mapping of a volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// The mapping's own id (`bdm_uuid`, 2.89).
    pub id: String,
    pub volume_id: String,
    /// The volume service's attachment (`attachment_id`, 2.89), once reserved.
    pub attachment_id: Option<String>,
    /// `vdb`, ...: the guest's device is `/dev/<target>`.
    pub target: String,
    pub tag: Option<String>,
    pub delete_on_termination: bool,
    /// See [`state`].
    pub state: String,
    /// Known once connected.
    pub connection: Option<Connection>,
    /// The request that made or is unmaking it (for the instance action's events).
    pub request_id: String,
    /// Made at boot from this source; `volume_id` is empty until the volume exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<NewVolume>,
}

impl VolumeRecord {
    /// Whether this is the server's root disk (`vda`: it boots from it).
    pub fn is_root(&self) -> bool {
        self.target == ROOT_TARGET
    }

    /// `/dev/<target>`.
    pub fn device(&self) -> String {
        format!("/dev/{}", self.target)
    }

    /// The disk the agent plugs, once connected.
    pub fn disk(&self) -> Option<VolumeDisk> {
        let c = self.connection.as_ref()?;
        Some(VolumeDisk {
            volume_id: self.volume_id.clone(),
            path: c.path.clone(),
            format: c.format.clone(),
            target: self.target.clone(),
            readonly: c.readonly,
        })
    }
}

/// The disks a (re)defined guest carries: every volume attached or being attached.
pub fn guest_disks(inst: &Instance) -> Vec<VolumeDisk> {
    inst.data
        .volumes
        .iter()
        .filter(|r| matches!(r.state.as_str(), state::ATTACHING | state::ATTACHED))
        .filter_map(VolumeRecord::disk)
        .collect()
}

/// The first free `vdX` (the root disk is `vda`).
pub fn next_target(inst: &Instance) -> Option<String> {
    ('b'..='z')
        .map(|c| format!("vd{c}"))
        .find(|t| !inst.data.volumes.iter().any(|r| &r.target == t))
}

fn now() -> String {
    ferrostack_store::now_rfc3339()
}

/// Saves `change` applied to the newest copy of the live instance (retried on a concurrent
/// change); `None` when the instance is gone. `change` returns false to save nothing.
pub async fn update(
    c: &Compute,
    uuid: &str,
    change: impl Fn(&mut Instance) -> bool,
) -> anyhow::Result<Option<Instance>> {
    for _ in 0..20 {
        let Some(mut inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) else {
            return Ok(None);
        };
        if !change(&mut inst) {
            return Ok(Some(inst));
        }
        if idb::save_data(&c.store, &inst, &now()).await? {
            inst.generation += 1;
            return Ok(Some(inst));
        }
    }
    anyhow::bail!("instance {uuid} kept changing while its volumes were recorded")
}

fn record<'a>(inst: &'a Instance, volume_id: &str) -> Option<&'a VolumeRecord> {
    inst.data.volumes.iter().find(|r| r.volume_id == volume_id)
}

fn service(c: &Compute) -> anyhow::Result<&std::sync::Arc<dyn VolumeApi>> {
    c.volumes()
        .ok_or_else(|| anyhow::anyhow!("this cloud has no block storage service"))
}

/// Moves the record of `volume_id` from state `from` to `to` (nothing when it is elsewhere).
async fn move_state(
    c: &Compute,
    uuid: &str,
    volume_id: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    update(c, uuid, |i| {
        match i.data.volumes.iter_mut().find(|r| r.volume_id == volume_id) {
            Some(r) if r.state == from => {
                r.state = to.into();
                true
            }
            _ => false,
        }
    })
    .await?;
    Ok(())
}

/// Removes the record of `volume_id` from the instance.
async fn forget(c: &Compute, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
    update(c, uuid, |i| {
        let before = i.data.volumes.len();
        i.data.volumes.retain(|r| r.volume_id != volume_id);
        i.data.volumes.len() != before
    })
    .await?;
    Ok(())
}

/// Steps 1 and 2 for a record already saved as `reserving` (or found there by the sweep):
/// reserve, connect, and ask the agent to plug the disk. A failure rolls the attach back.
pub async fn attach(c: &Compute, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
    let volumes = service(c)?.clone();
    let Some(inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) else {
        return Ok(());
    };
    let Some(rec) = record(&inst, volume_id).cloned() else {
        return Ok(());
    };
    let host = inst.host.clone().unwrap_or_default();
    let outcome: anyhow::Result<()> = async {
        let Some(attachment_id) = reservation(c, &rec, uuid).await? else {
            return Ok(());
        };
        let connection = volumes.connect(&attachment_id, &host).await?;
        let Some(inst) = update(c, uuid, |i| {
            match i.data.volumes.iter_mut().find(|r| r.volume_id == volume_id) {
                Some(r) if r.state != state::DETACHING => {
                    r.connection = Some(connection.clone());
                    if r.state == state::RESERVING {
                        r.state = state::ATTACHING.into();
                    }
                    true
                }
                _ => false,
            }
        })
        .await?
        else {
            return Ok(());
        };
        let Some(rec) = record(&inst, volume_id).filter(|r| r.state == state::ATTACHING) else {
            return Ok(());
        };
        let disk = rec.disk().expect("connected above");
        crate::conductor::cast(
            c,
            &host,
            &AgentRequest::AttachVolume {
                uuid: uuid.to_string(),
                disk,
                request_id: rec.request_id.clone(),
            },
        )
        .await
    }
    .await;
    if let Err(e) = &outcome {
        tracing::warn!(uuid, volume_id, error = %e, "attaching a volume failed: rolled back");
        roll_back(c, uuid, volume_id).await?;
    }
    outcome
}

/// Step 1: the attachment of record `rec` of server `uuid`, reserved now unless it was
/// already; `None` when the record went away meanwhile (the reservation is given back).
async fn reservation(
    c: &Compute,
    rec: &VolumeRecord,
    uuid: &str,
) -> anyhow::Result<Option<String>> {
    if let Some(id) = &rec.attachment_id {
        return Ok(Some(id.clone()));
    }
    let volumes = service(c)?;
    let volume_id = rec.volume_id.as_str();
    // A reservation made before a crash (its id never saved) is taken over, so the volume
    // never keeps a second, orphaned attachment for this server.
    let id = match volumes.attachments_of(volume_id, uuid).await?.first() {
        Some(existing) => existing.clone(),
        None => volumes.reserve(volume_id, uuid).await?,
    };
    crate::crashpoint::hit("conductor:after-volume-reserved");
    let saved = update(c, uuid, |i| {
        match i.data.volumes.iter_mut().find(|r| r.volume_id == volume_id) {
            Some(r) => {
                r.attachment_id = Some(id.clone());
                true
            }
            None => false,
        }
    })
    .await?;
    if saved.is_none_or(|i| record(&i, volume_id).is_none()) {
        volumes.release(&id).await?;
        return Ok(None);
    }
    Ok(Some(id))
}

/// Before a build is cast to the instance's host: every volume requested with the server
/// (boot and data volumes, Nova's `_prep_block_device`) is reserved, connected to that host
/// and completed, so the guest is defined with them. Idempotent: a run again after a crash
/// or for another host (a reschedule) takes over what is done and reconnects. Returns the
/// instance as saved; `None` when it is gone.
pub async fn connect_for_build(c: &Compute, inst: Instance) -> anyhow::Result<Option<Instance>> {
    if inst.data.volumes.is_empty() {
        return Ok(Some(inst));
    }
    let volumes = service(c)?.clone();
    let uuid = inst.uuid.clone();
    let host = inst.host.clone().unwrap_or_default();
    for rec in &inst.data.volumes {
        let rec = &made_volume(c, &uuid, rec).await?;
        if rec.attachment_id.is_none() {
            wait_available(volumes.as_ref(), &rec.volume_id).await?;
        }
        let Some(attachment_id) = reservation(c, rec, &uuid).await? else {
            continue;
        };
        let connection = volumes.connect(&attachment_id, &host).await?;
        volumes.complete(&attachment_id).await?;
        crate::crashpoint::hit("conductor:after-boot-volume-connected");
        let volume_id = rec.volume_id.as_str();
        update(c, &uuid, |i| {
            match i.data.volumes.iter_mut().find(|r| r.volume_id == volume_id) {
                Some(r)
                    if r.state != state::ATTACHED || r.connection.as_ref() != Some(&connection) =>
                {
                    r.connection = Some(connection.clone());
                    r.state = state::ATTACHED.into();
                    true
                }
                _ => false,
            }
        })
        .await?;
    }
    Ok(idb::instance(&c.store, &uuid).await?.filter(|i| !i.deleted))
}

/// The record with its volume id: a volume made at boot whose id was not saved (a crash
/// right after its creation) is found by its tag and its id saved; none is an error.
async fn made_volume(c: &Compute, uuid: &str, rec: &VolumeRecord) -> anyhow::Result<VolumeRecord> {
    if !rec.volume_id.is_empty() {
        return Ok(rec.clone());
    }
    let Some(volume_id) = service(c)?.volume_for_mapping(&rec.id).await? else {
        anyhow::bail!(
            "the volume of block device mapping {} was never created",
            rec.id
        );
    };
    save_volume_id(c, uuid, &rec.id, &volume_id).await?;
    Ok(VolumeRecord {
        volume_id,
        ..rec.clone()
    })
}

/// Records `volume_id` as the volume of the mapping `bdm_id` of server `uuid`.
pub async fn save_volume_id(
    c: &Compute,
    uuid: &str,
    bdm_id: &str,
    volume_id: &str,
) -> anyhow::Result<()> {
    update(c, uuid, |i| {
        match i.data.volumes.iter_mut().find(|r| r.id == bdm_id) {
            Some(r) if r.volume_id.is_empty() => {
                r.volume_id = volume_id.to_string();
                true
            }
            _ => false,
        }
    })
    .await?;
    Ok(())
}

/// Waits until the volume is `available` (a volume made at boot is `creating` or
/// `downloading` first), at most as long as Nova's `block_device_allocate_retries` (60 × 3 s).
async fn wait_available(volumes: &dyn VolumeApi, volume_id: &str) -> anyhow::Result<()> {
    const ATTEMPTS: u32 = 60;
    const PAUSE_SECS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let Some(volume) = volumes.volume(volume_id).await? else {
            anyhow::bail!("volume {volume_id} could not be found");
        };
        let waiting = matches!(volume.status.as_str(), "creating" | "downloading");
        if volume.status == "error" || (waiting && attempt == ATTEMPTS) {
            anyhow::bail!(
                "Volume {volume_id} did not finish being created even after we waited {} seconds or {attempt} attempts. And its status is {}.",
                (attempt - 1) * PAUSE_SECS,
                volume.status
            );
        }
        if !waiting {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(PAUSE_SECS.into())).await;
    }
    Ok(())
}

/// Whether the server boots from a volume (one is, or is to be, its root disk).
pub fn boots_from_volume(inst: &Instance) -> bool {
    inst.data.volumes.iter().any(VolumeRecord::is_root)
}

/// Undoes an attach that did not reach the guest: the server's attachments of the volume are
/// deleted in the volume service, then the record is removed.
pub async fn roll_back(c: &Compute, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
    let volumes = service(c)?.clone();
    let mut ids = volumes.attachments_of(volume_id, uuid).await?;
    if let Some(inst) = idb::instance(&c.store, uuid).await?
        && let Some(id) = record(&inst, volume_id).and_then(|r| r.attachment_id.clone())
        && !ids.contains(&id)
    {
        ids.push(id);
    }
    for id in ids {
        volumes.release(&id).await?;
    }
    forget(c, uuid, volume_id).await
}

/// Step 3: the agent reported the disk plugged (or failed to plug it).
pub async fn attached(
    c: &Compute,
    uuid: &str,
    volume_id: &str,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let Some(inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) else {
        return Ok(());
    };
    let Some(rec) = record(&inst, volume_id).cloned() else {
        return Ok(());
    };
    if let Some(message) = error {
        tracing::warn!(
            uuid,
            volume_id,
            message,
            "the agent could not plug the volume"
        );
        if rec.state == state::ATTACHING {
            roll_back(c, uuid, volume_id).await?;
        }
        return Ok(());
    }
    if rec.state != state::ATTACHING {
        return Ok(());
    }
    if let Some(id) = &rec.attachment_id {
        service(c)?.complete(id).await?;
    }
    crate::crashpoint::hit("conductor:after-volume-completed");
    move_state(c, uuid, volume_id, state::ATTACHING, state::ATTACHED).await
}

/// Step 4: asks the agent to unplug a record already saved as `detaching`.
pub async fn detach(c: &Compute, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
    let Some(inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) else {
        return Ok(());
    };
    let Some(rec) = record(&inst, volume_id).filter(|r| r.state == state::DETACHING) else {
        return Ok(());
    };
    let (Some(host), Some(disk)) = (inst.host.clone(), rec.disk()) else {
        // Never plugged anywhere: only the volume service's side is left.
        return detached(c, uuid, volume_id, None).await;
    };
    crate::conductor::cast(
        c,
        &host,
        &AgentRequest::DetachVolume {
            uuid: uuid.to_string(),
            disk,
            request_id: rec.request_id.clone(),
        },
    )
    .await
}

/// The agent reported the disk unplugged (or could not unplug it: the volume stays attached).
pub async fn detached(
    c: &Compute,
    uuid: &str,
    volume_id: &str,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let Some(inst) = idb::instance(&c.store, uuid).await?.filter(|i| !i.deleted) else {
        return Ok(());
    };
    let Some(rec) = record(&inst, volume_id)
        .filter(|r| r.state == state::DETACHING)
        .cloned()
    else {
        return Ok(());
    };
    if let Some(message) = error {
        tracing::warn!(
            uuid,
            volume_id,
            message,
            "the agent could not unplug the volume"
        );
        return move_state(c, uuid, volume_id, state::DETACHING, state::ATTACHED).await;
    }
    if let Some(id) = &rec.attachment_id {
        service(c)?.release(id).await?;
    }
    crate::crashpoint::hit("conductor:after-volume-released");
    forget(c, uuid, volume_id).await
}

/// On a server's deletion (its guest is gone): every attachment deleted, and the volumes
/// marked `delete_on_termination` deleted. Idempotent.
pub async fn release_all(c: &Compute, inst: &Instance) -> anyhow::Result<()> {
    if inst.data.volumes.is_empty() {
        return Ok(());
    }
    let volumes = service(c)?.clone();
    for rec in &inst.data.volumes {
        let rec = &match rec.volume_id.is_empty() {
            true => match volumes.volume_for_mapping(&rec.id).await? {
                Some(volume_id) => VolumeRecord {
                    volume_id,
                    ..rec.clone()
                },
                None => continue,
            },
            false => rec.clone(),
        };
        let mut ids = volumes.attachments_of(&rec.volume_id, &inst.uuid).await?;
        if let Some(id) = &rec.attachment_id
            && !ids.contains(id)
        {
            ids.push(id.clone());
        }
        for id in ids {
            volumes.release(&id).await?;
        }
        if rec.delete_on_termination {
            // A volume made at boot may still be being made: it can be deleted once done.
            wait_available(volumes.as_ref(), &rec.volume_id).await.ok();
            volumes.delete_volume(&rec.volume_id).await?;
        }
    }
    Ok(())
}

/// The conductor's sweep: carries on with every attach and detach left half-way. It waits
/// for the volume service to answer (in the all-in-one it is this process's own listener,
/// which opens after the conductor starts), then makes passes until one meets no error.
pub async fn resume(c: &Compute) -> anyhow::Result<()> {
    if c.volumes().is_none() {
        return Ok(());
    }
    wait_for_service(c).await?;
    for pass in 1..=60 {
        let mut failed = false;
        for inst in idb::instances_with_volumes(&c.store).await? {
            let unsettled = inst.data.volumes.iter().any(|r| r.state != state::ATTACHED);
            // A building server's volumes are connected by its build (see
            // `connect_for_build`), which the conductor and the agent drive again; a server
            // whose build failed keeps them as they are until it is deleted.
            if !unsettled || inst.vm_state == crate::states::vm::BUILDING || inst.host.is_none() {
                continue;
            }
            // The disk may be plugged already: never roll back for a host that is not up yet.
            if let Some(host) = &inst.host
                && !agent_alive(c, host).await
            {
                failed = true;
                continue;
            }
            for rec in &inst.data.volumes {
                let outcome = match rec.state.as_str() {
                    state::RESERVING | state::ATTACHING => {
                        attach(c, &inst.uuid, &rec.volume_id).await
                    }
                    state::DETACHING => detach(c, &inst.uuid, &rec.volume_id).await,
                    _ => Ok(()),
                };
                if let Err(e) = outcome {
                    failed = true;
                    tracing::warn!(uuid = %inst.uuid, volume = %rec.volume_id, pass, error = %e, "resuming a volume operation");
                }
            }
        }
        if !failed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    Ok(())
}

/// Waits (up to two minutes) until the volume service answers.
pub async fn wait_for_service(c: &Compute) -> anyhow::Result<()> {
    let volumes = service(c)?;
    let probe = "00000000-0000-0000-0000-000000000000";
    let mut waited = 0;
    while volumes.volume(probe).await.is_err() {
        waited += 1;
        anyhow::ensure!(waited < 120, "the volume service did not answer");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Whether the agent of `host` answers a ping now.
async fn agent_alive(c: &Compute, host: &str) -> bool {
    let ping = crate::rpc::encode(&AgentRequest::Ping);
    let queue = crate::rpc::agent_queue(host);
    c.bus
        .call(&queue, ping, std::time::Duration::from_secs(3))
        .await
        .is_ok()
}

/// The `volumeAttachment` view at microversion `mv` (2.70 `tag`, 2.79
/// `delete_on_termination`, 2.89 `attachment_id`/`bdm_uuid` and no `id`).
pub fn view(inst: &Instance, rec: &VolumeRecord, mv: (u16, u16)) -> Value {
    let mut v = json!({
        "device": rec.device(),
        "serverId": inst.uuid,
        "volumeId": rec.volume_id,
    });
    if mv < (2, 89) {
        v["id"] = json!(rec.volume_id);
    }
    if mv >= (2, 70) {
        v["tag"] = json!(rec.tag);
    }
    if mv >= (2, 79) {
        v["delete_on_termination"] = json!(rec.delete_on_termination);
    }
    if mv >= (2, 89) {
        v["attachment_id"] = json!(rec.attachment_id);
        v["bdm_uuid"] = json!(rec.id);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::instances::InstanceData;

    fn instance(records: Vec<VolumeRecord>) -> Instance {
        Instance {
            id: 1,
            uuid: "u1".into(),
            project_id: "p1".into(),
            user_id: "u".into(),
            host: Some("h1".into()),
            vm_state: "active".into(),
            task_state: None,
            power_state: 1,
            deleted: false,
            created_at: String::new(),
            updated_at: String::new(),
            launched_at: None,
            deleted_at: None,
            generation: 0,
            data: InstanceData {
                volumes: records,
                ..Default::default()
            },
        }
    }

    fn record(volume: &str, target: &str, state: &str, connected: bool) -> VolumeRecord {
        VolumeRecord {
            id: format!("bdm-{volume}"),
            volume_id: volume.into(),
            attachment_id: Some(format!("att-{volume}")),
            target: target.into(),
            tag: None,
            delete_on_termination: false,
            state: state.into(),
            connection: connected.then(|| Connection {
                path: format!("/v/volume-{volume}"),
                format: "raw".into(),
                readonly: false,
            }),
            request_id: "req".into(),
            create: None,
        }
    }

    #[test]
    fn targets_skip_the_ones_in_use_and_guests_carry_plugged_volumes_only() {
        let inst = instance(vec![
            record("a", "vdb", state::ATTACHED, true),
            record("b", "vdc", state::DETACHING, true),
            record("c", "vdd", state::RESERVING, false),
            record("d", "vde", state::ATTACHING, true),
        ]);
        assert_eq!(next_target(&inst).as_deref(), Some("vdf"));
        let disks: Vec<String> = guest_disks(&inst).into_iter().map(|d| d.target).collect();
        assert_eq!(disks, ["vdb", "vde"]);
        assert_eq!(next_target(&instance(Vec::new())).as_deref(), Some("vdb"));
    }

    #[test]
    fn the_view_follows_the_microversion() {
        let inst = instance(vec![record("a", "vdb", state::ATTACHED, true)]);
        let rec = &inst.data.volumes[0];
        let old = view(&inst, rec, (2, 1));
        assert_eq!(old["id"], "a");
        assert_eq!(old["device"], "/dev/vdb");
        assert!(old.get("tag").is_none() && old.get("attachment_id").is_none());
        let new = view(&inst, rec, (2, 89));
        assert!(new.get("id").is_none());
        assert_eq!(new["attachment_id"], "att-a");
        assert_eq!(new["bdm_uuid"], "bdm-a");
        assert_eq!(new["delete_on_termination"], false);
        assert_eq!(new["serverId"], "u1");
    }
}
