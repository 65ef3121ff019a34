//! The backend seam (Cinder's `volume/driver.py`): what the volume manager asks of the storage
//! that holds the volumes' data. The `file` backend ([`crate::file_driver`]) is the one built;
//! LVM (+iSCSI) and Ceph RBD are further implementations of the same trait, refused by the
//! configuration on machines that cannot run them.
//!
//! Every operation is idempotent: the manager runs it again after a crash, so creating what
//! exists (complete) or deleting what is gone succeeds.

use crate::model::{Snapshot, Volume};
use async_trait::async_trait;
use serde_json::Value;
use std::path::Path;

/// Capacity figures for `scheduler-stats/get_pools` and the capacity check.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendStats {
    /// `volume_backend_name`.
    pub backend_name: String,
    /// `storage_protocol` (e.g. `file`, `NFS`).
    pub storage_protocol: String,
    pub total_capacity_gb: f64,
    pub free_capacity_gb: f64,
    /// Whether volumes are allocated lazily (qcow2 or sparse files).
    pub thin_provisioning: bool,
}

/// A volume backend.
#[async_trait]
pub trait VolumeDriver: Send + Sync {
    /// The backend's name (`file`), also the `@backend` part of volume hosts.
    fn backend_name(&self) -> &str;

    /// Where the manager keeps its scratch files (downloaded images, uploads being written):
    /// a directory on the backend's storage rather than the system temporary directory,
    /// which may be small or in memory.
    fn work_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir()
    }

    /// Capacity and free space.
    async fn stats(&self) -> anyhow::Result<BackendStats>;

    /// Whether [`VolumeDriver::extend_volume`] may run while a guest has the volume open
    /// (the guest is then told to read its new size).
    fn extends_attached(&self) -> bool {
        false
    }

    /// Creates a blank volume of `volume.size` GiB.
    async fn create_volume(&self, volume: &Volume) -> anyhow::Result<()>;

    /// Creates `volume` from an image already downloaded to `image_file` and inspected as
    /// `format` (`raw` or `qcow2`, no backing file); the volume is at least `volume.size` GiB.
    async fn create_from_image(
        &self,
        volume: &Volume,
        image_file: &Path,
        format: &str,
    ) -> anyhow::Result<()>;

    /// Creates `volume` with the data of `snapshot` (grown to `volume.size`).
    async fn create_from_snapshot(
        &self,
        volume: &Volume,
        snapshot: &Snapshot,
    ) -> anyhow::Result<()>;

    /// Creates `volume` as a copy of `source` (grown to `volume.size`).
    async fn create_clone(&self, volume: &Volume, source: &Volume) -> anyhow::Result<()>;

    /// Removes the volume's data (absent data is not an error).
    async fn delete_volume(&self, volume: &Volume) -> anyhow::Result<()>;

    /// Grows the volume to `new_size` GiB.
    async fn extend_volume(&self, volume: &Volume, new_size: i64) -> anyhow::Result<()>;

    /// Takes a snapshot of `volume`.
    async fn create_snapshot(&self, snapshot: &Snapshot, volume: &Volume) -> anyhow::Result<()>;

    /// Removes a snapshot's data (absent data is not an error).
    async fn delete_snapshot(&self, snapshot: &Snapshot) -> anyhow::Result<()>;

    /// Writes the volume's data to `dest` in `disk_format` (`raw`, `qcow2`, ...) for an upload
    /// to the image service.
    async fn copy_volume_to_file(
        &self,
        volume: &Volume,
        dest: &Path,
        disk_format: &str,
    ) -> anyhow::Result<()>;

    /// What a compute host needs to open the volume (`{"driver_volume_type", "data"}`) for the
    /// given connector (`{"host", "initiator", ...}` as Nova sends it).
    fn connection_info(&self, volume: &Volume, connector: &Value) -> anyhow::Result<Value>;
}
