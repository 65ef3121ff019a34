//! The volume service state: the store, the backend driver, the image service, the bus on which
//! the API hands work to the volume manager, and the settings parsed from `[volume]`.

use crate::db::Db;
use crate::driver::VolumeDriver;
use crate::images::ImageApi;
use ferrostack_bus::MessageBus;
use ferrostack_config::VolumeConfig;
use ferrostack_store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The work queue the volume manager consumes.
pub const MANAGER_QUEUE: &str = "volume.manager";

/// The `[volume]` settings, parsed and checked once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The name of the default volume type.
    pub default_volume_type: String,
    /// The backend's availability zone.
    pub availability_zone: String,
    /// The manager's host (`<host>@<backend>#<pool>` on volumes).
    pub host: String,
    /// Default quota of each resource (`volumes`, `snapshots`, `gigabytes`,
    /// `per_volume_gigabytes`, `backups`, `backup_gigabytes`, `groups`).
    pub quota_defaults: BTreeMap<&'static str, i64>,
}

impl Settings {
    /// Parses and checks the configuration: only the `file` backend runs here.
    pub fn from_config(config: &VolumeConfig) -> anyhow::Result<Settings> {
        match config.backend.as_str() {
            "file" => {}
            "lvm" => anyhow::bail!(
                "[volume] backend = \"lvm\" is not available: LVM volumes need device-mapper and \
                 an iSCSI target, which this machine does not have; use backend = \"file\""
            ),
            "rbd" | "ceph" => anyhow::bail!(
                "[volume] backend = {:?} is not available: no Ceph cluster or librbd is \
                 configured for Ferrostack; use backend = \"file\"",
                config.backend
            ),
            other => anyhow::bail!("[volume] backend = {other:?}: unknown (known: file)"),
        }
        if !matches!(config.volume_format.as_str(), "raw" | "qcow2") {
            anyhow::bail!(
                "[volume] volume_format = {:?}: must be raw or qcow2",
                config.volume_format
            );
        }
        if config.default_volume_type.trim().is_empty() {
            anyhow::bail!("[volume] default_volume_type must not be empty");
        }
        let quota_defaults = BTreeMap::from([
            ("volumes", config.quota_volumes),
            ("snapshots", config.quota_snapshots),
            ("gigabytes", config.quota_gigabytes),
            ("per_volume_gigabytes", config.per_volume_size_limit),
            ("backups", config.quota_backups),
            ("backup_gigabytes", config.quota_backup_gigabytes),
            ("groups", config.quota_groups),
        ]);
        Ok(Settings {
            default_volume_type: config.default_volume_type.clone(),
            availability_zone: config.availability_zone.clone(),
            host: config.host.clone(),
            quota_defaults,
        })
    }
}

/// A unit of work for the volume manager: "run the task saved on this row". The task itself
/// (what to do, and how far it got) is in the row, so a lost message only delays the work
/// until the manager's next sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Work {
    /// The volume's `task`.
    Volume(String),
    /// The snapshot's transitional status (`creating`, `deleting`).
    Snapshot(String),
}

/// The volume service.
pub struct Volumes {
    pub(crate) db: Db,
    pub(crate) settings: Settings,
    pub(crate) driver: Arc<dyn VolumeDriver>,
    pub(crate) images: Arc<dyn ImageApi>,
    pub(crate) bus: Arc<dyn MessageBus>,
    pub(crate) public_url: String,
    /// Told when an attached volume grew, once set ([`Volumes::set_compute_events`]).
    pub(crate) compute: std::sync::OnceLock<Arc<dyn ComputeEvents>>,
}

/// The compute service as the volume manager tells it of changes to attached volumes
/// (Cinder's `compute/nova.py`).
#[async_trait::async_trait]
pub trait ComputeEvents: Send + Sync {
    /// `volume-extended` for server `server_id`: its disk of `volume_id` grew.
    async fn volume_extended(&self, server_id: &str, volume_id: &str) -> anyhow::Result<()>;
}

impl Volumes {
    /// Migrates the volume tables, checks the settings and creates the default volume type.
    pub async fn open(
        store: Store,
        public_url: &str,
        bus: Arc<dyn MessageBus>,
        config: &VolumeConfig,
        driver: Arc<dyn VolumeDriver>,
        images: Arc<dyn ImageApi>,
    ) -> anyhow::Result<Arc<Volumes>> {
        let settings = Settings::from_config(config)?;
        store.migrate("volume", crate::MIGRATIONS).await?;
        let volumes = Arc::new(Volumes {
            db: Db::new(store),
            settings,
            driver,
            images,
            bus,
            public_url: public_url.trim_end_matches('/').to_string(),
            compute: std::sync::OnceLock::new(),
        });
        crate::types::ensure_default_type(&volumes).await?;
        // This process places volumes: it is the `cinder-scheduler` of `os-services`.
        let host = volumes.settings.host.clone();
        crate::heartbeat::start_reporting(&volumes, host, crate::heartbeat::SCHEDULER_BINARY)
            .await?;
        Ok(volumes)
    }

    /// Whom to tell when an attached volume grew (the compute API); set once.
    pub fn set_compute_events(&self, compute: Arc<dyn ComputeEvents>) {
        if self.compute.set(compute).is_err() {
            tracing::warn!("the compute events of the volume service were set already");
        }
    }

    /// `<public url>/volume`.
    pub fn base_url(&self) -> String {
        format!("{}/volume", self.public_url)
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The parsed settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The backend driver.
    pub fn driver(&self) -> &Arc<dyn VolumeDriver> {
        &self.driver
    }

    /// The image service.
    pub fn images(&self) -> &Arc<dyn ImageApi> {
        &self.images
    }

    /// `host@backend#pool` of volumes this manager holds.
    pub fn volume_host(&self) -> String {
        let backend = self.driver.backend_name();
        format!("{}@{backend}#{backend}", self.settings.host)
    }

    /// Hands `work` to the volume manager. The task is already saved on its row, so a manager
    /// that is down now finds it on its next start or sweep; that is logged, not an error.
    pub async fn cast(&self, work: Work) {
        let payload = match serde_json::to_vec(&work) {
            Ok(p) => p,
            Err(e) => return tracing::error!(error = %e, "volume work not encoded"),
        };
        if let Err(e) = self.bus.send(MANAGER_QUEUE, payload).await {
            tracing::warn!(?work, error = %e, "volume manager not reachable now; its sweep will run the task");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_backends_this_machine_cannot_run() {
        assert!(Settings::from_config(&VolumeConfig::default()).is_ok());
        for backend in ["lvm", "rbd", "nonsense"] {
            let config = VolumeConfig {
                backend: backend.into(),
                ..Default::default()
            };
            let error = Settings::from_config(&config).unwrap_err().to_string();
            assert!(error.contains(backend), "{error}");
        }
        let bad_format = VolumeConfig {
            volume_format: "vmdk".into(),
            ..Default::default()
        };
        assert!(Settings::from_config(&bad_format).is_err());
    }
}
