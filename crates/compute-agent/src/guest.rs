//! Guests on this host: making a guest's files from a [`GuestBuild`] (only the missing ones),
//! the [`GuestSpec`] the driver boots, and waiting for the hypervisor to report it running.

use crate::cache::{ImageCache, ImageKind};
use crate::config::AgentConfig;
use crate::error::OpError;
use crate::files::{InstanceFiles, overlay_size};
use ferrostack_compute::configdrive;
use ferrostack_compute::rpc::{GuestBuild, VolumeDisk};
use ferrostack_virt::{
    Boot, GuestInterface, GuestSpec, GuestVolume, PowerState, VirtDriver, VirtError,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The hypervisor's view of a volume disk of a build.
fn guest_volume(disk: &VolumeDisk) -> GuestVolume {
    GuestVolume {
        volume_id: disk.volume_id.clone(),
        path: disk.path.clone().into(),
        format: disk.format.clone(),
        target: disk.target.clone(),
        readonly: disk.readonly,
    }
}

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
    /// files are kept (a guest's disk is never overwritten). A driver without disks
    /// ([`VirtDriver::manages_disks`] false: the fake one) gets only the instance directory
    /// (which marks the guest as this agent's, see reconciliation and the heartbeat) and the
    /// console log; its spec names the other files without making them.
    pub(crate) async fn prepare(&self, build: &GuestBuild) -> Result<GuestSpec, OpError> {
        let files = self.files(&build.uuid);
        files.create_dir().await?;
        if !self.driver.manages_disks() {
            files.ensure_console_log().await?;
            let config_drive = build.config_drive.as_ref().map(|_| files.config_drive());
            let boot = match &build.kernel {
                None => Boot::Disk,
                Some(_) => Boot::Kernel {
                    kernel: files.kernel(),
                    initrd: build.ramdisk.as_ref().map(|_| files.ramdisk()),
                    cmdline: self.config.kernel_cmdline(build.kernel_cmdline.as_deref()),
                },
            };
            return Ok(self.spec(build, &files, config_drive, boot));
        }
        if build.boot_volume().is_none() {
            self.ensure_root_disk(build, &files).await?;
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
        Ok(self.spec(build, &files, config_drive, boot))
    }

    /// The local root disk: a qcow2 overlay over the cached image, made once.
    async fn ensure_root_disk(
        &self,
        build: &GuestBuild,
        files: &InstanceFiles,
    ) -> Result<(), OpError> {
        // The base image is needed even when the overlay exists: it is the overlay's backing
        // file (and the cache entry may have been removed).
        let base = self.cache.fetch(&build.image, ImageKind::Disk).await?;
        ferrostack_compute::crashpoint::hit("agent:after-image-cached");
        let size = overlay_size(build.root_gb, base.size);
        if files
            .ensure_overlay(&base.path, size)
            .await
            .map_err(OpError::Host)?
        {
            tracing::info!(uuid = %build.uuid, size, "root disk created");
        }
        Ok(())
    }

    fn spec(
        &self,
        build: &GuestBuild,
        files: &InstanceFiles,
        config_drive: Option<PathBuf>,
        boot: Boot,
    ) -> GuestSpec {
        GuestSpec {
            uuid: build.uuid.clone(),
            name: build.domain_name.clone(),
            display_name: build.display_name.clone(),
            vcpus: build.vcpus,
            memory_mb: build.memory_mb,
            root_disk: build.boot_volume().is_none().then(|| files.disk()),
            config_drive,
            boot,
            console_log: files.console_log(),
            virt_type: self.config.virt_type,
            vnc_listen: self.config.vnc_listen(),
            interfaces: build
                .interfaces
                .iter()
                .map(|i| GuestInterface {
                    port_id: i.port_id.clone(),
                    mac_address: i.mac_address.clone(),
                    tap: i.tap.clone(),
                    mtu: i.mtu,
                })
                .collect(),
            // Started paused until the network reports the ports plugged (see the manager),
            // unless waiting is off (`vif_plugging_timeout` 0, as in Nova).
            start_paused: !build.interfaces.is_empty()
                && !self.config.vif_plugging_timeout.is_zero(),
            volumes: build.volumes.iter().map(guest_volume).collect(),
        }
    }

    /// Plugs a volume into the guest: live when it runs, and into its definition (so a
    /// restart keeps it). Idempotent. A driver without disks (the fake one) records it only.
    pub(crate) async fn attach_volume(&self, uuid: &str, disk: &VolumeDisk) -> Result<(), OpError> {
        Ok(self.driver.attach_volume(uuid, &guest_volume(disk)).await?)
    }

    /// Unplugs a volume from the guest and its definition, waiting until the guest released
    /// it. Idempotent.
    pub(crate) async fn detach_volume(&self, uuid: &str, disk: &VolumeDisk) -> Result<(), OpError> {
        Ok(self.driver.detach_volume(uuid, &guest_volume(disk)).await?)
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
        self.wait_for(uuid, &[PowerState::Running]).await
    }

    /// Defines (if needed) and starts the guest paused (`spec.start_paused`), then waits
    /// until the hypervisor reports it paused (or already running: a resumed build).
    pub(crate) async fn boot_paused(&self, spec: &GuestSpec) -> Result<(), OpError> {
        self.driver.spawn(spec).await?;
        self.wait_for(&spec.uuid, &[PowerState::Paused, PowerState::Running])
            .await
    }

    /// Waits until the guest is in one of `wanted` (up to the spawn timeout).
    async fn wait_for(&self, uuid: &str, wanted: &[PowerState]) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + self.config.spawn_timeout;
        loop {
            let state = self.power_state(uuid).await?;
            if state.is_some_and(|s| wanted.contains(&s)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Host(anyhow::anyhow!(
                    "guest {uuid} is not {wanted:?} {:?} after it was started (state {state:?})",
                    self.config.spawn_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Defines (if needed) and starts the guest, then waits until it runs.
    /// Never paused: a guest started again (start, hard reboot) keeps its bound ports, and one
    /// left paused by an interrupted build is resumed.
    pub(crate) async fn boot(&self, spec: &GuestSpec) -> Result<(), OpError> {
        let running = GuestSpec {
            start_paused: false,
            ..spec.clone()
        };
        self.driver.spawn(&running).await?;
        self.driver.resume(&spec.uuid).await?;
        self.wait_running(&spec.uuid).await
    }

    /// Destroys the guest's domain (if any) and removes its files: what a failed build or a
    /// delete leaves behind.
    pub(crate) async fn remove(&self, uuid: &str) -> Result<(), OpError> {
        self.driver.destroy(uuid).await?;
        ferrostack_compute::crashpoint::hit("agent:after-domain-destroyed");
        self.files(uuid).remove().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageSource;
    use ferrostack_compute::rpc::ImageRef;
    use ferrostack_virt::fake::FakeDriver;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts fetches and fails them: a diskless prepare must never ask for an image.
    #[derive(Default)]
    struct NoImages(AtomicUsize);

    #[async_trait::async_trait]
    impl ImageSource for NoImages {
        async fn fetch(&self, image_id: &str, _dest: &std::path::Path) -> anyhow::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            anyhow::bail!("no image {image_id} here")
        }
    }

    /// The fake driver, but claiming to manage disks (what the libvirt driver says).
    struct DiskFake(FakeDriver);

    #[async_trait::async_trait]
    impl VirtDriver for DiskFake {
        async fn host_capabilities(&self) -> Result<ferrostack_virt::HostCapabilities, VirtError> {
            self.0.host_capabilities().await
        }
        async fn spawn(&self, spec: &GuestSpec) -> Result<(), VirtError> {
            self.0.spawn(spec).await
        }
        async fn resume(&self, uuid: &str) -> Result<(), VirtError> {
            self.0.resume(uuid).await
        }
        async fn destroy(&self, uuid: &str) -> Result<(), VirtError> {
            self.0.destroy(uuid).await
        }
        async fn power_on(&self, uuid: &str) -> Result<(), VirtError> {
            self.0.power_on(uuid).await
        }
        async fn power_off(&self, uuid: &str, timeout: Duration) -> Result<(), VirtError> {
            self.0.power_off(uuid, timeout).await
        }
        async fn reboot(&self, uuid: &str, hard: bool) -> Result<(), VirtError> {
            self.0.reboot(uuid, hard).await
        }
        async fn power_state(&self, uuid: &str) -> Result<PowerState, VirtError> {
            self.0.power_state(uuid).await
        }
        async fn list(&self) -> Result<Vec<ferrostack_virt::GuestInfo>, VirtError> {
            self.0.list().await
        }
        async fn vnc_port(&self, uuid: &str) -> Result<u16, VirtError> {
            self.0.vnc_port(uuid).await
        }
        async fn attach_volume(
            &self,
            uuid: &str,
            volume: &ferrostack_virt::GuestVolume,
        ) -> Result<(), VirtError> {
            self.0.attach_volume(uuid, volume).await
        }
        async fn detach_volume(
            &self,
            uuid: &str,
            volume: &ferrostack_virt::GuestVolume,
        ) -> Result<(), VirtError> {
            self.0.detach_volume(uuid, volume).await
        }
        async fn volume_targets(&self, uuid: &str) -> Result<Vec<String>, VirtError> {
            self.0.volume_targets(uuid).await
        }
    }

    fn guests(
        root: &std::path::Path,
        driver: Arc<dyn VirtDriver>,
        source: Arc<NoImages>,
    ) -> Guests {
        Guests {
            config: Arc::new(AgentConfig::new("h", root)),
            driver,
            cache: ImageCache::new(root, source),
        }
    }

    fn image(id: &str) -> ImageRef {
        ImageRef {
            id: id.into(),
            disk_format: "raw".into(),
            size: None,
        }
    }

    fn build() -> GuestBuild {
        GuestBuild {
            uuid: "6f1b8a52-0000-4000-8000-0000000000aa".into(),
            domain_name: "instance-000000aa".into(),
            display_name: "fake".into(),
            vcpus: 1,
            memory_mb: 64,
            root_gb: 1,
            image: image("disk-image"),
            kernel: Some(image("kernel-image")),
            ramdisk: Some(image("ramdisk-image")),
            kernel_cmdline: Some("console=ttyS0".into()),
            config_drive: Some(BTreeMap::from([(
                "openstack/x".to_string(),
                b"{}".to_vec(),
            )])),
            interfaces: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_driver_without_disks_gets_only_the_directory_and_console_log() {
        let root = std::env::temp_dir().join(format!("agent-diskless-{}", uuid::Uuid::new_v4()));
        let source = Arc::new(NoImages::default());
        let g = guests(&root, Arc::new(FakeDriver::default()), source.clone());
        let build = build();
        let spec = g.prepare(&build).await.unwrap();
        let files = g.files(&build.uuid);
        // Nothing fetched, converted or written but the directory and the console log.
        assert_eq!(source.0.load(Ordering::SeqCst), 0);
        assert!(files.exists());
        assert!(files.console_log().is_file());
        for absent in [
            files.disk(),
            files.config_drive(),
            files.kernel(),
            files.ramdisk(),
        ] {
            assert!(!absent.exists(), "{} was made", absent.display());
        }
        assert!(!root.join(crate::cache::BASE_DIR).exists());
        // The spec is the one the libvirt path would give.
        assert_eq!(spec.root_disk, Some(files.disk()));
        assert_eq!(spec.config_drive, Some(files.config_drive()));
        assert_eq!(
            spec.boot,
            Boot::Kernel {
                kernel: files.kernel(),
                initrd: Some(files.ramdisk()),
                cmdline: "console=ttyS0".into(),
            }
        );
        // The guest boots and counts as this agent's (its directory exists).
        g.boot(&spec).await.unwrap();
        let ours = crate::heartbeat::our_guests(&g).await.unwrap();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].uuid, build.uuid);
        // A second prepare (a restart's re-run) is fine too.
        g.prepare(&build).await.unwrap();
        g.remove(&build.uuid).await.unwrap();
        assert!(!files.exists());

        // A driver that manages disks goes to the image cache (which fails here).
        let g = guests(
            &root,
            Arc::new(DiskFake(FakeDriver::default())),
            source.clone(),
        );
        assert!(g.prepare(&build).await.is_err());
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
