//! The compute service state: its store, Placement, the bus to the agents, the image catalog
//! and the settings.

use ferrostack_api::ApiError;
use ferrostack_bus::MessageBus;
use ferrostack_config::ComputeConfig;
use ferrostack_placement::Placement;
use ferrostack_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per-user keypair quota (Nova's `quota.key_pairs` default).
pub const KEY_PAIRS_QUOTA: i64 = 100;
/// Per-project server group quota (Nova's `quota.server_groups` default).
pub const SERVER_GROUPS_QUOTA: i64 = 10;
/// Members per server group (Nova's `quota.server_group_members` default).
pub const SERVER_GROUP_MEMBERS_QUOTA: i64 = 10;

/// An image as Nova needs it from Glance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageInfo {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub min_ram: i64,
    pub min_disk: i64,
    /// Extra properties (`kernel_id`, `ramdisk_id`, `os_command_line`, `hw_*`...).
    pub properties: BTreeMap<String, String>,
}

/// Where the compute API looks images up (Glance in Nova; the image service in-process here).
#[async_trait::async_trait]
pub trait ImageCatalog: Send + Sync {
    /// Image `id` as a caller of `project` may see it (any image when `admin`).
    async fn image(
        &self,
        id: &str,
        project: Option<&str>,
        admin: bool,
    ) -> anyhow::Result<Option<ImageInfo>>;
}

/// The compute service.
pub struct Compute {
    pub(crate) store: Store,
    pub(crate) public_url: String,
    pub(crate) placement: Arc<Placement>,
    pub(crate) bus: Arc<dyn MessageBus>,
    pub(crate) images: Arc<dyn ImageCatalog>,
    pub(crate) config: ComputeConfig,
    /// The scheduler's host view; its lock serialises this process's placement decisions.
    pub(crate) host_view: tokio::sync::Mutex<Option<crate::host_view::HostView>>,
    /// The networking service, when the cloud has one (servers then get ports).
    network: std::sync::OnceLock<Arc<dyn crate::network::NetworkApi>>,
    /// The block storage service, when the cloud has one.
    volumes: std::sync::OnceLock<Arc<dyn crate::volumes::VolumeApi>>,
}

impl Compute {
    /// Migrates the compute tables.
    pub async fn open(
        store: Store,
        public_url: &str,
        placement: Arc<Placement>,
        bus: Arc<dyn MessageBus>,
        images: Arc<dyn ImageCatalog>,
        config: ComputeConfig,
    ) -> anyhow::Result<Arc<Compute>> {
        store.migrate("compute", crate::MIGRATIONS).await?;
        Ok(Arc::new(Compute {
            store,
            public_url: public_url.trim_end_matches('/').to_string(),
            placement,
            bus,
            images,
            config,
            host_view: tokio::sync::Mutex::new(None),
            network: std::sync::OnceLock::new(),
            volumes: std::sync::OnceLock::new(),
        }))
    }

    /// `<public url>/compute`.
    pub fn base_url(&self) -> String {
        format!("{}/compute", self.public_url)
    }

    /// Connects the networking service (once, at start-up).
    pub fn set_network(&self, network: Arc<dyn crate::network::NetworkApi>) {
        if self.network.set(network).is_err() {
            tracing::warn!("the networking service was already set");
        }
    }

    /// Connects the block storage service (once, at start-up).
    pub fn set_volumes(&self, volumes: Arc<dyn crate::volumes::VolumeApi>) {
        if self.volumes.set(volumes).is_err() {
            tracing::warn!("the block storage service was already set");
        }
    }

    /// The block storage service, if the cloud has one.
    pub fn volumes(&self) -> Option<&Arc<dyn crate::volumes::VolumeApi>> {
        self.volumes.get()
    }

    /// The networking service, if the cloud has one.
    pub fn network(&self) -> Option<&Arc<dyn crate::network::NetworkApi>> {
        self.network.get()
    }

    /// The shared store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// A database failure is a 500.
pub(crate) fn db_error(e: ferrostack_store::StoreError) -> ApiError {
    ApiError::internal(e)
}
