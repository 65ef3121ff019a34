//! Guests on this host: making a guest's files from a [`GuestBuild`] (only the missing ones),
//! the [`GuestSpec`] the driver boots, and waiting for the hypervisor to report it running.

use crate::cache::{ImageCache, ImageKind};
use crate::config::AgentConfig;
use crate::error::OpError;
use crate::files::{InstanceFiles, overlay_size};
use ferrostack_compute::configdrive;
use ferrostack_compute::rpc::GuestBuild;
use ferrostack_virt::{Boot, GuestSpec, PowerState, VirtDriver, VirtError};
use std::sync::Arc;
use std::time::Duration;

/// The hypervisor side of the agent: its driver, image cache and instance files.
pub(crate) struct Guests {
    pub(crate) config: Arc<AgentConfig>,
    pub(crate) driver: Arc<dyn VirtDriver>,
    pub(crate) cache: ImageCache,
}

impl Guests {
    pub(crate) fn files(&self, uuid: &str) -> InstanceFiles {
        InstanceFiles::new(&self.config.instances_path, uuid)
    }

    /// Makes whatever of the guest's files is missing — cached image, overlay, config drive,
    /// kernel and ramdisk copies, console log — and returns the spec to boot it with. Existing
    /// files are kept (a guest's disk is never overwritten).
    pub(crate) async fn prepare(&self, build: &GuestBuild) -> Result<GuestSpec, OpError> {
        let files = self.files(&build.uuid);
        files.create_dir().await?;
        // The base image is needed even when the overlay exists: it is the overlay's backing
        // file (and the cache entry may have been removed).
        let base = self.cache.fetch(&build.image, ImageKind::Disk).await?;
        let size = overlay_size(build.root_gb, base.size);
        if files
            .ensure_overlay(&base.path, size)
            .await
            .map_err(OpError::Host)?
        {
            tracing::info!(uuid = %build.uuid, size, "root disk created");
        }
        let config_drive = match &build.config_drive {
            Some(drive_files) => {
                let path = files.config_drive();
                if !tokio::fs::try_exists(&path).await? {
                    configdrive::build_from_files(drive_files, &path).await?;
                }
                Some(path)
            }
            None => None,
        };
        let boot = match &build.kernel {
            None => Boot::Disk,
            Some(kernel) => {
                let cached = self.cache.fetch(kernel, ImageKind::KernelOrRamdisk).await?;
                files.ensure_copy(&cached.path, &files.kernel()).await?;
                let initrd = match &build.ramdisk {
                    Some(ramdisk) => {
                        let cached = self
                            .cache
                            .fetch(ramdisk, ImageKind::KernelOrRamdisk)
                            .await?;
                        files.ensure_copy(&cached.path, &files.ramdisk()).await?;
                        Some(files.ramdisk())
                    }
                    None => None,
                };
                Boot::Kernel {
                    kernel: files.kernel(),
                    initrd,
                    cmdline: self.config.kernel_cmdline(build.kernel_cmdline.as_deref()),
                }
            }
        };
        files.ensure_console_log().await?;
        Ok(GuestSpec {
            uuid: build.uuid.clone(),
            name: build.domain_name.clone(),
            display_name: build.display_name.clone(),
            vcpus: build.vcpus,
            memory_mb: build.memory_mb,
            root_disk: files.disk(),
            config_drive,
            boot,
            console_log: files.console_log(),
            virt_type: self.config.virt_type,
        })
    }

    /// The guest's power state; `None` when the hypervisor has no such guest.
    pub(crate) async fn power_state(&self, uuid: &str) -> Result<Option<PowerState>, VirtError> {
        match self.driver.power_state(uuid).await {
            Ok(state) => Ok(Some(state)),
            Err(VirtError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the guest exists and runs.
    pub(crate) async fn running(&self, uuid: &str) -> Result<bool, VirtError> {
        Ok(self.power_state(uuid).await? == Some(PowerState::Running))
    }

    /// Waits until the guest runs (up to the spawn timeout).
    pub(crate) async fn wait_running(&self, uuid: &str) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + self.config.spawn_timeout;
        loop {
            let state = self.power_state(uuid).await?;
            if state == Some(PowerState::Running) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Host(anyhow::anyhow!(
                    "guest {uuid} is not running {:?} after it was started (state {state:?})",
                    self.config.spawn_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Defines (if needed) and starts the guest, then waits until it runs.
    pub(crate) async fn boot(&self, spec: &GuestSpec) -> Result<(), OpError> {
        self.driver.spawn(spec).await?;
        self.wait_running(&spec.uuid).await
    }

    /// Destroys the guest's domain (if any) and removes its files: what a failed build or a
    /// delete leaves behind.
    pub(crate) async fn remove(&self, uuid: &str) -> Result<(), OpError> {
        self.driver.destroy(uuid).await?;
        self.files(uuid).remove().await?;
        Ok(())
    }
}
