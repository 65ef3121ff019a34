//! The volume manager (Cinder's `volume/manager.py`): runs the operations the API saved on the
//! rows through the backend driver.
//!
//! The API writes the operation onto its row first (a volume's `task`, a snapshot's `creating`
//! or `deleting` status) and then casts a [`Work`] naming the row to
//! [`MANAGER_QUEUE`]. The manager runs what the row says, so a message is only a wake-up:
//! - at start, a recovery sweep runs every row with work pending (operations a crash
//!   interrupted), then the queue is consumed, and every 30 s the sweep runs again (messages
//!   lost while nobody consumed);
//! - never two runs of the same row at once: a message for a row in flight asks for one more
//!   run after the current one (which then finds the row's new state);
//! - every driver call is idempotent and the row is updated only after it, under the row's
//!   lock and only if the row still holds the same operation; so an operation interrupted at
//!   any point ends correctly when it runs again.
//!
//! It also reports the `cinder-volume` heartbeat every 10 s ([`heartbeat`]), places a new
//! volume (or a retype) only when the backend satisfies the volume type ([`scheduler`]; a
//! creation that cannot be placed ends in `error` with a user message, [`messages`]), and
//! removes expired user messages in its sweep.

use crate::db::{self, write_tx};
use crate::model::{
    Attachment, Snapshot, Volume, VolumeSource, VolumeTask, VolumeType, attach_status,
    snapshot_status, volume_status,
};
use crate::scheduler::{self, NoValidBackend};
use crate::service::{MANAGER_QUEUE, Volumes, Work};
use crate::{heartbeat, messages};
use ferrostack_api::crashpoint;
use ferrostack_bus::QueueConsumer;
use ferrostack_image_format::{DiskFormat, Inspection};
use ferrostack_store::now_rfc3339;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// How often the manager looks for rows with work pending.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// How many operations run at once.
const PARALLEL: usize = 8;
/// Bytes in a GiB.
const GIB: u64 = 1 << 30;

/// The running manager; dropping it stops it (its operations and their child processes too).
pub struct ManagerHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ManagerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the manager: a recovery sweep, then the work queue and periodic sweeps.
pub async fn start(volumes: Arc<Volumes>) -> anyhow::Result<ManagerHandle> {
    let consumer = volumes.bus.consume(MANAGER_QUEUE).await?;
    let manager = Arc::new(Manager {
        volumes,
        in_flight: Mutex::new(HashMap::new()),
        permits: Arc::new(tokio::sync::Semaphore::new(PARALLEL)),
    });
    let host = heartbeat::volume_service_host(&manager.volumes);
    let zone = manager.volumes.settings.availability_zone.clone();
    heartbeat::report(&manager.volumes.db, &host, heartbeat::VOLUME_BINARY, &zone).await?;
    if let Err(e) = manager.remove_orphans().await {
        tracing::warn!(error = %format!("{e:#}"), "volume manager: leftover scratch files not removed");
    }
    let pending = manager.pending().await?;
    tracing::info!(pending = pending.len(), "volume manager started");
    Ok(ManagerHandle {
        task: tokio::spawn(manager.run(consumer, pending)),
    })
}

/// The key of a row in the in-flight map.
fn key(work: &Work) -> String {
    match work {
        Work::Volume(id) => format!("volume:{id}"),
        Work::Snapshot(id) => format!("snapshot:{id}"),
    }
}

struct Manager {
    volumes: Arc<Volumes>,
    /// Rows being worked on; `true` when another run was asked for meanwhile.
    in_flight: Mutex<HashMap<String, bool>>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// Releases a row's in-flight entry if its run ends abnormally (panic, abort).
struct Claim {
    manager: Arc<Manager>,
    key: String,
    released: bool,
}

impl Claim {
    /// Ends the claim whose entry the caller removed.
    fn release(mut self) {
        self.released = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            self.manager.lock_in_flight().remove(&self.key);
        }
    }
}

impl Manager {
    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (up to two minutes) until the image service answers: interrupted work found at
    /// start may need it, and in the all-in-one its listener (and the identity service that
    /// gives the token) opens after the manager starts.
    async fn wait_for_images(&self) {
        let probe = "00000000-0000-0000-0000-000000000000";
        for _ in 0..120 {
            if self.volumes.images.show(probe, None, true).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        tracing::warn!(
            "volume manager: the image service does not answer; recovering all the same"
        );
    }

    /// The loop: the recovery of `pending` work, then queue messages, periodic sweeps, and
    /// reaping finished runs.
    async fn run(self: Arc<Self>, mut consumer: Box<dyn QueueConsumer>, pending: Vec<Work>) {
        let mut tasks = JoinSet::new();
        if !pending.is_empty() {
            self.wait_for_images().await;
        }
        for work in pending {
            self.dispatch(work, &mut tasks);
        }
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.tick().await;
        let mut beat = tokio::time::interval(heartbeat::REPORT_INTERVAL);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        let mut consuming = true;
        loop {
            tokio::select! {
                delivery = consumer.next(), if consuming => match delivery {
                    Some(delivery) => match serde_json::from_slice::<Work>(&delivery.payload) {
                        Ok(work) => self.dispatch(work, &mut tasks),
                        Err(e) => tracing::warn!(error = %e, "volume manager: unreadable message dropped"),
                    },
                    None => {
                        tracing::warn!("volume manager: the bus closed; only sweeping from now on");
                        consuming = false;
                    }
                },
                _ = sweep.tick() => {
                    match self.pending().await {
                        Ok(pending) => pending.into_iter().for_each(|w| self.dispatch(w, &mut tasks)),
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "volume manager sweep failed"),
                    }
                    if let Err(e) = messages::remove_expired(&self.volumes.db).await {
                        let e = anyhow::Error::from(e);
                        tracing::warn!(error = %format!("{e:#}"), "expired user messages not removed");
                    }
                }
                _ = beat.tick() => self.report().await,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(error = %e, "volume operation panicked");
                    }
                }
            }
        }
    }

    /// Writes this `cinder-volume`'s heartbeat.
    async fn report(&self) {
        let host = heartbeat::volume_service_host(&self.volumes);
        let zone = &self.volumes.settings.availability_zone;
        if let Err(e) =
            heartbeat::report(&self.volumes.db, &host, heartbeat::VOLUME_BINARY, zone).await
        {
            let e = anyhow::Error::from(e);
            tracing::warn!(error = %format!("{e:#}"), "volume service report not saved");
        }
    }

    /// Every row with work pending: volumes with a task, snapshots being created or deleted.
    async fn pending(&self) -> anyhow::Result<Vec<Work>> {
        let db = &self.volumes.db;
        let volumes: Vec<Volume> = db.select("has_task = 1", &[]).await?;
        let snapshots: Vec<Snapshot> = db
            .select(
                "status = $1 OR status = $2",
                &[snapshot_status::CREATING, snapshot_status::DELETING],
            )
            .await?;
        Ok(volumes
            .into_iter()
            .map(|v| Work::Volume(v.id))
            .chain(snapshots.into_iter().map(|s| Work::Snapshot(s.id)))
            .collect())
    }

    /// Runs `work` unless its row is in flight (then it runs once more after).
    fn dispatch(self: &Arc<Self>, work: Work, tasks: &mut JoinSet<()>) {
        let key = key(&work);
        {
            let mut in_flight = self.lock_in_flight();
            if let Some(again) = in_flight.get_mut(&key) {
                *again = true;
                return;
            }
            in_flight.insert(key.clone(), false);
        }
        let claim = Claim {
            manager: self.clone(),
            key,
            released: false,
        };
        let manager = self.clone();
        tasks.spawn(async move {
            loop {
                let Ok(_permit) = manager.permits.clone().acquire_owned().await else {
                    return;
                };
                manager.run_once(&work).await;
                let mut in_flight = manager.lock_in_flight();
                match in_flight.get_mut(&claim.key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        in_flight.remove(&claim.key);
                        drop(in_flight);
                        return claim.release();
                    }
                }
            }
        });
    }

    async fn run_once(&self, work: &Work) {
        match work {
            Work::Volume(id) => self.run_volume(id).await,
            Work::Snapshot(id) => self.run_snapshot(id).await,
        }
    }

    fn db(&self) -> &db::Db {
        &self.volumes.db
    }

    // ----- volumes -----

    /// Runs the task saved on volume `id` (nothing when it has none).
    async fn run_volume(&self, id: &str) {
        let volume = match self.db().get::<Volume>(id).await {
            Ok(Some(volume)) => volume,
            Ok(None) => return,
            Err(e) => {
                let e = anyhow::Error::from(e);
                return tracing::warn!(volume = id, error = %format!("{e:#}"), "volume not read");
            }
        };
        let Some(task) = volume.task.clone() else {
            return;
        };
        tracing::info!(volume = id, ?task, "volume operation");
        let result = match &task {
            VolumeTask::Create => self.create(&volume, &task).await,
            VolumeTask::Delete { cascade } => self.delete(&volume, &task, *cascade).await,
            VolumeTask::Extend {
                new_size,
                previous_status,
            } => {
                self.extend(&volume, &task, *new_size, previous_status)
                    .await
            }
            VolumeTask::UploadImage {
                image_id,
                disk_format,
                previous_status,
            } => {
                self.upload(&volume, &task, image_id, disk_format, previous_status)
                    .await
            }
            VolumeTask::Retype {
                new_type_id,
                previous_status,
                ..
            } => {
                self.retype(&volume, &task, new_type_id, previous_status)
                    .await
            }
        };
        if let Err(e) = result {
            self.volume_failed(&volume, &task, e).await;
        }
    }

    /// Records a failed task: the error status of the operation (or, for an upload, the
    /// status before it), with the task cleared.
    async fn volume_failed(&self, volume: &Volume, task: &VolumeTask, error: anyhow::Error) {
        tracing::warn!(volume = %volume.id, ?task, error = %format!("{error:#}"), "volume operation failed");
        let status = match task {
            VolumeTask::Create => {
                self.creation_failed(volume, &error).await;
                volume_status::ERROR.to_string()
            }
            VolumeTask::Delete { .. } => volume_status::ERROR_DELETING.to_string(),
            VolumeTask::Extend { .. } => volume_status::ERROR_EXTENDING.to_string(),
            VolumeTask::UploadImage {
                image_id,
                previous_status,
                ..
            } => {
                if let Err(e) = self.volumes.images.delete(image_id).await {
                    tracing::warn!(image = %image_id, error = %format!("{e:#}"), "image of a failed upload not deleted");
                }
                previous_status.clone()
            }
            VolumeTask::Retype {
                previous_status, ..
            } => previous_status.clone(),
        };
        let updated = self
            .update_volume(&volume.id, task, |v| {
                v.status = status.clone();
                v.task = None;
            })
            .await;
        if let Err(e) = updated {
            tracing::warn!(volume = %volume.id, error = %format!("{e:#}"), "volume error status not saved; the next sweep retries the operation");
        }
    }

    /// Tells the volume's project why its creation failed when that is something it can act
    /// on (no backend for the volume type), as Cinder's scheduler does with a user message.
    async fn creation_failed(&self, volume: &Volume, error: &anyhow::Error) {
        if error.downcast_ref::<NoValidBackend>().is_none() {
            return;
        }
        let recorded = messages::record_volume_error(
            &self.volumes.db,
            &volume.project_id,
            &volume.id,
            volume.request_id.as_deref(),
            messages::SCHEDULE_ALLOCATE_VOLUME,
            messages::NO_BACKEND_AVAILABLE,
        )
        .await;
        if let Err(e) = recorded {
            let e = anyhow::Error::from(e);
            tracing::warn!(volume = %volume.id, error = %format!("{e:#}"), "user message not recorded");
        }
    }

    /// Applies `change` to volume `id` (and sets `updated_at`) if it still holds `task`;
    /// returns whether the row was still there (`None` when it is gone).
    async fn update_volume(
        &self,
        id: &str,
        task: &VolumeTask,
        change: impl Fn(&mut Volume) + Send + Sync,
    ) -> anyhow::Result<Option<bool>> {
        let outcome = write_tx!(self.volumes.db, |tx| {
            async {
                let Some(mut volume) = tx.lock::<Volume>(id).await? else {
                    return Ok(None);
                };
                if volume.task.as_ref() != Some(task) {
                    return Ok(Some(false));
                }
                change(&mut volume);
                volume.updated_at = Some(now_rfc3339());
                tx.save(&volume).await?;
                Ok::<_, db::Error>(Some(true))
            }
            .await
        })?;
        Ok(outcome)
    }

    /// Creates the volume's data from its source, then makes it `available`. (The API set
    /// what the volume inherits from its source, `bootable` and the image metadata.)
    async fn create(&self, volume: &Volume, task: &VolumeTask) -> anyhow::Result<()> {
        let driver = &self.volumes.driver;
        self.schedule(&volume.volume_type_id).await?;
        match &volume.source {
            VolumeSource::Blank => driver.create_volume(volume).await?,
            VolumeSource::Image { image_id } => self.create_from_image(volume, image_id).await?,
            VolumeSource::Snapshot { snapshot_id } => {
                let snapshot = self.source_snapshot(snapshot_id).await?;
                driver.create_from_snapshot(volume, &snapshot).await?;
            }
            VolumeSource::Volume { volume_id } => {
                let source = self.db().get::<Volume>(volume_id).await?.ok_or_else(|| {
                    anyhow::anyhow!("Source volume {volume_id} could not be found.")
                })?;
                driver.create_clone(volume, &source).await?;
            }
        }
        crashpoint::hit("volume:after-data-written");
        let host = self.volumes.volume_host();
        let updated = self
            .update_volume(&volume.id, task, |v| {
                v.status = volume_status::AVAILABLE.into();
                v.task = None;
                v.host = Some(host.clone());
                v.launched_at = Some(now_rfc3339());
            })
            .await?;
        if updated.is_none() {
            // The row went away meanwhile (force-deleted): its data must not stay behind.
            driver.delete_volume(volume).await?;
        }
        tracing::info!(volume = %volume.id, "volume created");
        Ok(())
    }

    /// Checks that this backend may hold a volume of type `type_id` (see [`scheduler`]). The
    /// API checked the type when it took the request; a type gone since (types in use cannot
    /// be deleted) asks for nothing.
    async fn schedule(&self, type_id: &str) -> anyhow::Result<()> {
        let volume_type = self.db().get::<VolumeType>(type_id).await?;
        let extra_specs = volume_type.map(|t| t.extra_specs).unwrap_or_default();
        scheduler::check_backend(&self.volumes, &extra_specs).await
    }

    /// Moves the volume to type `new_type_id` when this backend serves that type (the data
    /// stays where it is: the file backend's volumes do not depend on their type), restoring
    /// `previous_status`. When the backend does not serve the type the volume keeps its type
    /// and status: Cinder would migrate it to a backend that does, and there is none.
    async fn retype(
        &self,
        volume: &Volume,
        task: &VolumeTask,
        new_type_id: &str,
        previous_status: &str,
    ) -> anyhow::Result<()> {
        if let Err(e) = self.schedule(new_type_id).await {
            tracing::warn!(volume = %volume.id, new_type = new_type_id, error = %format!("{e:#}"), "volume not retyped");
            self.update_volume(&volume.id, task, |v| {
                v.status = previous_status.to_string();
                v.task = None;
            })
            .await?;
            return Ok(());
        }
        let new_type: Option<VolumeType> = self.db().get(new_type_id).await?;
        let multiattach = new_type.as_ref().is_some_and(crate::types::is_multiattach);
        self.update_volume(&volume.id, task, |v| {
            v.volume_type_id = new_type_id.to_string();
            v.multiattach = multiattach;
            v.status = previous_status.to_string();
            v.task = None;
        })
        .await?;
        tracing::info!(volume = %volume.id, new_type = new_type_id, "volume retyped");
        Ok(())
    }

    /// The snapshot a volume is created from; it must be `available`.
    async fn source_snapshot(&self, snapshot_id: &str) -> anyhow::Result<Snapshot> {
        let snapshot = self
            .db()
            .get::<Snapshot>(snapshot_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("Snapshot {snapshot_id} could not be found."))?;
        if snapshot.status != snapshot_status::AVAILABLE {
            anyhow::bail!(
                "Snapshot {snapshot_id} is {}, not available.",
                snapshot.status
            );
        }
        Ok(snapshot)
    }

    /// Downloads the image to the work directory, checks it and creates the volume from it;
    /// the download is removed in every case.
    async fn create_from_image(&self, volume: &Volume, image_id: &str) -> anyhow::Result<()> {
        let work_dir = self.volumes.driver.work_dir();
        tokio::fs::create_dir_all(&work_dir).await?;
        let download = work_dir.join(format!("image-{}", volume.id));
        let result = self.image_to_volume(volume, image_id, &download).await;
        remove_scratch(&download).await;
        result
    }

    async fn image_to_volume(
        &self,
        volume: &Volume,
        image_id: &str,
        download: &Path,
    ) -> anyhow::Result<()> {
        let images = &self.volumes.images;
        let image = images
            .show(image_id, None, true)
            .await?
            .ok_or_else(|| anyhow::anyhow!("Image {image_id} could not be found."))?;
        if image.status != "active" {
            anyhow::bail!("Image {image_id} is not active.");
        }
        let declared = image
            .disk_format
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("Image {image_id} has no disk_format."))?;
        let declared = DiskFormat::from_str(declared)
            .map_err(|e| anyhow::anyhow!("Image {image_id} is unacceptable: {e}"))?;
        images.download(image_id, download).await?;
        let inspection = inspect(download).await?;
        let (format, virtual_size) = acceptable(image_id, declared, &inspection)?;
        check_fits(virtual_size, volume.size)?;
        self.volumes
            .driver
            .create_from_image(volume, download, format)
            .await
    }

    /// Deletes the volume's data (with `cascade`, its snapshots first), then its row and its
    /// attachments.
    async fn delete(
        &self,
        volume: &Volume,
        task: &VolumeTask,
        cascade: bool,
    ) -> anyhow::Result<()> {
        let snapshots: Vec<Snapshot> = self.db().select("volume_id = $1", &[&volume.id]).await?;
        if !snapshots.is_empty() && !cascade {
            anyhow::bail!("Volume still has {} dependent snapshots.", snapshots.len());
        }
        for snapshot in &snapshots {
            self.volumes.driver.delete_snapshot(snapshot).await?;
            write_tx!(self.volumes.db, |tx| {
                async { tx.delete::<Snapshot>(&snapshot.id).await }.await
            })?;
        }
        self.volumes.driver.delete_volume(volume).await?;
        crashpoint::hit("volume:after-data-deleted");
        let id = volume.id.as_str();
        write_tx!(self.volumes.db, |tx| {
            async {
                let Some(current) = tx.lock::<Volume>(id).await? else {
                    return Ok(());
                };
                if current.task.as_ref() != Some(task) {
                    return Ok(());
                }
                tx.exec("DELETE FROM vol_attachments WHERE volume_id = $1", &[id])
                    .await?;
                tx.delete::<Volume>(id).await?;
                Ok::<(), db::Error>(())
            }
            .await
        })?;
        tracing::info!(volume = %volume.id, "volume deleted");
        Ok(())
    }

    /// Grows the volume's data, then records the new size and the status before.
    async fn extend(
        &self,
        volume: &Volume,
        task: &VolumeTask,
        new_size: i64,
        previous_status: &str,
    ) -> anyhow::Result<()> {
        self.volumes.driver.extend_volume(volume, new_size).await?;
        crashpoint::hit("volume:after-data-written");
        self.update_volume(&volume.id, task, |v| {
            v.size = new_size;
            v.status = previous_status.to_string();
            v.task = None;
        })
        .await?;
        tracing::info!(volume = %volume.id, new_size, "volume extended");
        if previous_status == volume_status::IN_USE {
            self.tell_guests_extended(&volume.id).await;
        }
        Ok(())
    }

    /// Tells the compute service that the guests holding the volume should read its new size
    /// (Cinder's `nova.extend_volume`; as there, a failure is logged, not the operation's).
    async fn tell_guests_extended(&self, volume_id: &str) {
        let Some(compute) = self.volumes.compute.get() else {
            return tracing::warn!(
                volume = volume_id,
                "no compute service to tell that an attached volume grew"
            );
        };
        let attachments: Vec<Attachment> = match self
            .volumes
            .db
            .select("volume_id = $1", &[volume_id])
            .await
        {
            Ok(list) => list,
            Err(e) => {
                let e = anyhow::Error::from(e);
                return tracing::warn!(volume = volume_id, error = %format!("{e:#}"), "the guests of an extended volume not told");
            }
        };
        for server in attachments
            .iter()
            .filter(|a| a.attach_status == attach_status::ATTACHED)
            .filter_map(|a| a.instance_uuid.as_deref())
        {
            if let Err(e) = compute.volume_extended(server, volume_id).await {
                tracing::warn!(volume = volume_id, server, error = %format!("{e:#}"), "volume-extended not sent");
            }
        }
    }

    /// Writes the volume's data in `disk_format` and uploads it as image `image_id` (unless
    /// a run before a crash already did: the image is `active`), then restores the status
    /// before.
    async fn upload(
        &self,
        volume: &Volume,
        task: &VolumeTask,
        image_id: &str,
        disk_format: &str,
        previous_status: &str,
    ) -> anyhow::Result<()> {
        let image = self
            .volumes
            .images
            .show(image_id, None, true)
            .await?
            .ok_or_else(|| anyhow::anyhow!("Image {image_id} could not be found."))?;
        if image.status != "active" {
            self.upload_data(volume, image_id, disk_format).await?;
        }
        self.update_volume(&volume.id, task, |v| {
            v.status = previous_status.to_string();
            v.task = None;
        })
        .await?;
        tracing::info!(volume = %volume.id, image = image_id, "volume uploaded to an image");
        Ok(())
    }

    async fn upload_data(
        &self,
        volume: &Volume,
        image_id: &str,
        disk_format: &str,
    ) -> anyhow::Result<()> {
        let work_dir = self.volumes.driver.work_dir();
        tokio::fs::create_dir_all(&work_dir).await?;
        let file = work_dir.join(format!("upload-{}", volume.id));
        let result = async {
            self.volumes
                .driver
                .copy_volume_to_file(volume, &file, disk_format)
                .await?;
            self.volumes.images.upload(image_id, &file).await
        }
        .await;
        remove_scratch(&file).await;
        result
    }

    /// Removes the scratch files of volumes that have no task any more (a crash between
    /// writing one and removing it, then the task ended otherwise).
    async fn remove_orphans(&self) -> anyhow::Result<()> {
        let mut entries = match tokio::fs::read_dir(self.volumes.driver.work_dir()).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix("image-")
                .or_else(|| name.strip_prefix("upload-"))
            else {
                continue;
            };
            let busy = self
                .db()
                .get::<Volume>(id)
                .await?
                .is_some_and(|v| v.task.is_some());
            if !busy {
                remove_scratch(&entry.path()).await;
            }
        }
        Ok(())
    }

    // ----- snapshots -----

    /// Runs what snapshot `id`'s status asks for (`creating`, `deleting`; else nothing).
    async fn run_snapshot(&self, id: &str) {
        let snapshot = match self.db().get::<Snapshot>(id).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return,
            Err(e) => {
                let e = anyhow::Error::from(e);
                return tracing::warn!(snapshot = id, error = %format!("{e:#}"), "snapshot not read");
            }
        };
        let status = snapshot.status.clone();
        let (result, failed) = match status.as_str() {
            snapshot_status::CREATING => (
                self.create_snapshot(&snapshot).await,
                snapshot_status::ERROR,
            ),
            snapshot_status::DELETING => (
                self.delete_snapshot(&snapshot).await,
                snapshot_status::ERROR_DELETING,
            ),
            _ => return,
        };
        if let Err(e) = result {
            tracing::warn!(snapshot = id, status, error = %format!("{e:#}"), "snapshot operation failed");
            let saved = self
                .update_snapshot(id, &status, |s| s.status = failed.into())
                .await;
            if let Err(e) = saved {
                tracing::warn!(snapshot = id, error = %format!("{e:#}"), "snapshot error status not saved; the next sweep retries the operation");
            }
        }
    }

    /// Applies `change` to snapshot `id` (and sets `updated_at`) if its status is still
    /// `status`.
    async fn update_snapshot(
        &self,
        id: &str,
        status: &str,
        change: impl Fn(&mut Snapshot) + Send + Sync,
    ) -> anyhow::Result<()> {
        write_tx!(self.volumes.db, |tx| {
            async {
                let Some(mut snapshot) = tx.lock::<Snapshot>(id).await? else {
                    return Ok(());
                };
                if snapshot.status != status {
                    return Ok(());
                }
                change(&mut snapshot);
                snapshot.updated_at = Some(now_rfc3339());
                tx.save(&snapshot).await?;
                Ok::<(), db::Error>(())
            }
            .await
        })?;
        Ok(())
    }

    async fn create_snapshot(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let volume = self
            .db()
            .get::<Volume>(&snapshot.volume_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("Volume {} could not be found.", snapshot.volume_id))?;
        self.volumes
            .driver
            .create_snapshot(snapshot, &volume)
            .await?;
        crashpoint::hit("volume:after-data-written");
        self.update_snapshot(&snapshot.id, snapshot_status::CREATING, |s| {
            s.status = snapshot_status::AVAILABLE.into();
            s.progress = "100%".into();
        })
        .await?;
        tracing::info!(snapshot = %snapshot.id, volume = %volume.id, "snapshot created");
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        self.volumes.driver.delete_snapshot(snapshot).await?;
        let id = snapshot.id.as_str();
        write_tx!(self.volumes.db, |tx| {
            async {
                let Some(current) = tx.lock::<Snapshot>(id).await? else {
                    return Ok(());
                };
                if current.status == snapshot_status::DELETING {
                    tx.delete::<Snapshot>(id).await?;
                }
                Ok::<(), db::Error>(())
            }
            .await
        })?;
        tracing::info!(snapshot = id, "snapshot deleted");
        Ok(())
    }
}

/// The qemu-img format of an inspected image and its virtual size in bytes, or why it is
/// refused: unsafe (backing or data file, ...), content not of its declared `disk_format`,
/// or a format volumes are not made from (only raw and qcow2).
fn acceptable(
    image_id: &str,
    declared: DiskFormat,
    inspection: &Inspection,
) -> anyhow::Result<(&'static str, u64)> {
    inspection
        .check(declared)
        .map_err(|e| anyhow::anyhow!("Image {image_id} is unacceptable: {e}"))?;
    let format = match inspection.detected {
        DiskFormat::Raw | DiskFormat::Iso => "raw",
        DiskFormat::Qcow2 => "qcow2",
        other => anyhow::bail!(
            "Image {image_id} is unacceptable: its content is {other}; volumes are created \
             from raw and qcow2 images only"
        ),
    };
    let virtual_size = match (format, inspection.virtual_size) {
        ("raw", 0) => inspection.actual_size,
        (_, 0) => anyhow::bail!("Image {image_id} is unacceptable: its virtual size is unknown"),
        (_, size) => size,
    };
    Ok((format, virtual_size))
}

/// Cinder's check that an image's virtual size fits the volume.
fn check_fits(virtual_size: u64, volume_size: i64) -> anyhow::Result<()> {
    let size = u64::try_from(volume_size).unwrap_or(0);
    if virtual_size > size.saturating_mul(GIB) {
        anyhow::bail!(
            "Image virtual size is {}GB and doesn't fit in a volume of size {volume_size}GB.",
            virtual_size.div_ceil(GIB)
        );
    }
    Ok(())
}

/// Removes a scratch file (absent is fine; a failure is logged).
async fn remove_scratch(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "scratch file not removed");
    }
}

/// Runs the format inspector over a whole file (off the runtime).
async fn inspect(path: &Path) -> anyhow::Result<Inspection> {
    let path = path.to_path_buf();
    let inspection =
        tokio::task::spawn_blocking(move || ferrostack_image_format::inspect_file(&path)).await??;
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_image_format::Inspector;

    fn inspection_of(data: &[u8]) -> Inspection {
        let mut inspector = Inspector::new();
        inspector.feed(data);
        inspector.finish()
    }

    #[test]
    fn images_must_be_raw_or_qcow2_and_match_their_disk_format() {
        let raw = inspection_of(&[0u8; 8192]);
        assert_eq!(
            acceptable("i", DiskFormat::Raw, &raw).unwrap(),
            ("raw", 8192)
        );
        let error = acceptable("i", DiskFormat::Qcow2, &raw)
            .unwrap_err()
            .to_string();
        assert!(error.contains("Image i is unacceptable"), "{error}");
    }

    #[test]
    fn the_image_must_fit_the_volume() {
        assert!(check_fits(GIB, 1).is_ok());
        let error = check_fits(GIB + 1, 1).unwrap_err().to_string();
        assert_eq!(
            error,
            "Image virtual size is 2GB and doesn't fit in a volume of size 1GB."
        );
    }
}
