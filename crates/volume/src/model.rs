//! The block storage resources as stored (one JSON document per row, see [`crate::db`]) and
//! Cinder's status values.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cinder's volume statuses (`cinder/objects/fields.py` `VolumeStatus`).
pub mod volume_status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const ERROR_EXTENDING: &str = "error_extending";
    pub const RESERVED: &str = "reserved";
    pub const ATTACHING: &str = "attaching";
    pub const IN_USE: &str = "in-use";
    pub const DETACHING: &str = "detaching";
    pub const EXTENDING: &str = "extending";
    pub const DOWNLOADING: &str = "downloading";
    pub const UPLOADING: &str = "uploading";
    pub const MAINTENANCE: &str = "maintenance";
    /// Every status `os-reset_status` accepts.
    pub const ALL: &[&str] = &[
        CREATING,
        AVAILABLE,
        DELETING,
        ERROR,
        ERROR_DELETING,
        ERROR_EXTENDING,
        RESERVED,
        ATTACHING,
        IN_USE,
        DETACHING,
        EXTENDING,
        DOWNLOADING,
        UPLOADING,
        MAINTENANCE,
        "backing-up",
        "restoring-backup",
        "error_restoring",
        "error_managing",
        "managing",
        "retyping",
        "awaiting-transfer",
    ];
}

/// Cinder's snapshot statuses (`SnapshotStatus`): these volume statuses and a few more.
pub mod snapshot_status {
    pub use super::volume_status::{AVAILABLE, CREATING, DELETING, ERROR, ERROR_DELETING};
    /// Every status `os-reset_status` accepts.
    pub const ALL: &[&str] = &[
        CREATING,
        AVAILABLE,
        DELETING,
        ERROR,
        ERROR_DELETING,
        "unmanaging",
        "backing-up",
        "restoring",
    ];
}

/// Attachment statuses (`VolumeAttachStatus`), also the volume's `attach_status`; three are
/// volume statuses too.
pub mod attach_status {
    pub use super::volume_status::{ATTACHING, DETACHING, RESERVED};
    pub const ATTACHED: &str = "attached";
    pub const DETACHED: &str = "detached";
    pub const ERROR_ATTACHING: &str = "error_attaching";
    pub const ERROR_DETACHING: &str = "error_detaching";
    pub const DELETED: &str = "deleted";
}

/// Where a new volume's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeSource {
    /// Zeroes.
    Blank,
    /// A Glance image (downloaded, inspected, converted).
    Image { image_id: String },
    /// A snapshot of another volume.
    Snapshot { snapshot_id: String },
    /// Another volume (a clone).
    Volume { volume_id: String },
}

/// A volume (`cinder.volumes` plus its metadata, image metadata and admin metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Size in GiB.
    pub size: i64,
    pub status: String,
    /// `attached` / `detached` / ... (summarises the attachments).
    pub attach_status: String,
    pub availability_zone: String,
    pub volume_type_id: String,
    pub bootable: bool,
    pub multiattach: bool,
    /// `readonly` admin metadata (`os-update_readonly_flag`); `None` until first set.
    pub readonly: Option<bool>,
    pub source: VolumeSource,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// `volume_image_metadata`: the properties of the image a volume was made from (or set
    /// with `os-set_image_metadata`).
    pub image_metadata: BTreeMap<String, String>,
    /// `<host>@<backend>#<pool>` once the manager took it.
    pub host: Option<String>,
    /// Whether the volume counts against quota (`consumes_quota`, 3.65).
    pub consumes_quota: bool,
    /// The operation the manager is running on it, persisted for recovery after a crash
    /// (see [`crate::manager`]); `None` when idle.
    pub task: Option<VolumeTask>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub launched_at: Option<String>,
    /// The id of the request that created the volume (`x-openstack-request-id`): user
    /// messages about its creation name it, as Cinder's carry the request's context.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl Volume {
    /// The size counted against quota: the new size while an extension runs.
    pub fn quota_size(&self) -> i64 {
        match &self.task {
            Some(VolumeTask::Extend { new_size, .. }) => (*new_size).max(self.size),
            _ => self.size,
        }
    }

    /// The volume type a running retype moves the volume to.
    pub fn retyping_to(&self) -> Option<&str> {
        match &self.task {
            Some(VolumeTask::Retype { new_type_id, .. }) => Some(new_type_id),
            _ => None,
        }
    }
}

/// An operation in progress on a volume, saved before its first step so that a restarted
/// manager finishes or undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum VolumeTask {
    /// Create the backing file from the volume's source.
    Create,
    /// Remove the backing file, then the row (and with `cascade`, its snapshots first).
    Delete { cascade: bool },
    /// Grow the backing file to `new_size` GiB; `previous_status` is restored after.
    Extend {
        new_size: i64,
        previous_status: String,
    },
    /// Upload the volume's data to image `image_id`; `previous_status` is restored after.
    UploadImage {
        image_id: String,
        disk_format: String,
        previous_status: String,
    },
    /// Change the volume's type to `new_type_id` if this backend serves it (there is no
    /// other backend to migrate to); `previous_status` is restored after, either way.
    Retype {
        new_type_id: String,
        /// `never` or `on-demand` (`migration_policy`; the same here: no migration).
        migration_policy: String,
        previous_status: String,
    },
}

/// A snapshot of a volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The volume's size when taken, in GiB.
    pub size: i64,
    pub status: String,
    /// `0%` … `100%`.
    pub progress: String,
    pub metadata: BTreeMap<String, String>,
    pub consumes_quota: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// A volume type with its extra specs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
    pub qos_specs_id: Option<String>,
    /// Projects allowed to use a private type (`os-volume-type-access`).
    pub projects: Vec<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// QoS specs (associated with volume types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QosSpecs {
    pub id: String,
    pub name: String,
    /// `front-end`, `back-end` or `both`.
    pub consumer: String,
    pub specs: BTreeMap<String, String>,
    pub created_at: String,
}

/// An attachment of a volume to an instance (the attachments API, 3.27+, and the legacy
/// `os-attach` flow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub volume_id: String,
    pub project_id: String,
    pub instance_uuid: Option<String>,
    /// `reserved`, `attaching`, `attached`, `detaching`, ...
    pub attach_status: String,
    /// `rw` or `ro`.
    pub attach_mode: String,
    /// The compute host the connector named.
    pub attached_host: Option<String>,
    /// The device path in the guest (`/dev/vdb`), as Nova reports it.
    pub mountpoint: Option<String>,
    /// The connector Nova sent (`os-initialize_connection`, attachment update).
    pub connector: Option<serde_json::Value>,
    /// What the compute host needs to open the volume (`driver_volume_type` + `data`).
    pub connection_info: Option<serde_json::Value>,
    pub attach_time: Option<String>,
    pub detach_time: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// Rows for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Snapshot, Volume, VolumeSource};
    use std::collections::BTreeMap;

    /// A new blank `creating` volume of `size` GiB in project `p1`.
    pub(crate) fn volume(size: i64) -> Volume {
        Volume {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            name: None,
            description: None,
            size,
            status: "creating".into(),
            attach_status: "detached".into(),
            availability_zone: "nova".into(),
            volume_type_id: "t".into(),
            bootable: false,
            multiattach: false,
            readonly: None,
            source: VolumeSource::Blank,
            metadata: BTreeMap::new(),
            image_metadata: BTreeMap::new(),
            host: None,
            consumes_quota: true,
            task: None,
            created_at: ferrostack_store::now_rfc3339(),
            updated_at: None,
            launched_at: None,
            request_id: None,
        }
    }

    /// A new `creating` snapshot of `volume`.
    pub(crate) fn snapshot(volume: &Volume) -> Snapshot {
        Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: volume.id.clone(),
            project_id: volume.project_id.clone(),
            user_id: volume.user_id.clone(),
            name: None,
            description: None,
            size: volume.size,
            status: "creating".into(),
            progress: "0%".into(),
            metadata: BTreeMap::new(),
            consumes_quota: true,
            created_at: ferrostack_store::now_rfc3339(),
            updated_at: None,
        }
    }
}
