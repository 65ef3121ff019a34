//! An in-memory driver for scale tests of the control plane: guests are table rows. Never used
//! by functional tests, which boot real guests.

use crate::capabilities::{CpuInfo, CpuTopology, HostCapabilities, SupportedInstance};
use crate::{GuestInfo, GuestSpec, GuestVolume, PowerState, VirtDriver, VirtError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Guests that exist only in this process.
#[derive(Default)]
pub struct FakeDriver {
    guests: Mutex<BTreeMap<String, FakeGuest>>,
}

/// A guest of the fake driver: its state and its attached volumes.
struct FakeGuest {
    info: GuestInfo,
    volumes: Vec<GuestVolume>,
}

impl FakeDriver {
    /// Runs `f` on the guest `uuid`.
    fn with_guest<T>(
        &self,
        uuid: &str,
        f: impl FnOnce(&mut FakeGuest) -> Result<T, VirtError>,
    ) -> Result<T, VirtError> {
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        let guest = guests
            .get_mut(uuid)
            .ok_or_else(|| VirtError::NotFound(uuid.to_string()))?;
        f(guest)
    }

    fn set(&self, uuid: &str, state: PowerState) -> Result<(), VirtError> {
        self.with_guest(uuid, |guest| {
            guest.info.state = state;
            Ok(())
        })
    }
}

/// Whether the attached `disk` is `volume`: same volume id or same file, as the libvirt driver
/// matches disks.
fn same_volume(disk: &GuestVolume, volume: &GuestVolume) -> bool {
    disk.volume_id == volume.volume_id || disk.path == volume.path
}

#[async_trait]
impl VirtDriver for FakeDriver {
    /// Fixed values, as Nova's fake driver reports: hypervisor type `fake`, version 1.0
    /// (1000), hostname `fake-host`, a one-socket one-core x86_64 CPU of model and vendor
    /// `fake` without features, and only x86_64 `fake` `hvm` guests.
    async fn host_capabilities(&self) -> Result<HostCapabilities, VirtError> {
        Ok(HostCapabilities {
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            libvirt_version: 1000,
            hostname: "fake-host".into(),
            cpu: CpuInfo {
                arch: "x86_64".into(),
                model: "fake".into(),
                vendor: "fake".into(),
                topology: CpuTopology {
                    cells: 1,
                    sockets: 1,
                    cores: 1,
                    threads: 1,
                },
                maxphysaddr: None,
                features: Vec::new(),
            },
            supported_instances: vec![SupportedInstance {
                arch: "x86_64".into(),
                hypervisor_type: "fake".into(),
                vm_mode: "hvm".into(),
            }],
        })
    }

    /// Paused when `spec.start_paused`; a guest that is already running or paused keeps its
    /// state, as libvirt's active domains do. The spec's volumes are recorded when the guest is
    /// first defined; a guest that exists keeps its own, as a defined domain does.
    async fn spawn(&self, spec: &GuestSpec) -> Result<(), VirtError> {
        let start = match spec.start_paused {
            true => PowerState::Paused,
            false => PowerState::Running,
        };
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        let guest = guests
            .entry(spec.uuid.clone())
            .or_insert_with(|| FakeGuest {
                info: GuestInfo {
                    uuid: spec.uuid.clone(),
                    name: spec.name.clone(),
                    state: start,
                },
                volumes: spec.volumes.clone(),
            });
        if !matches!(guest.info.state, PowerState::Running | PowerState::Paused) {
            guest.info.state = start;
        }
        Ok(())
    }

    async fn resume(&self, uuid: &str) -> Result<(), VirtError> {
        self.with_guest(uuid, |guest| match guest.info.state {
            PowerState::Paused | PowerState::Running => {
                guest.info.state = PowerState::Running;
                Ok(())
            }
            other => Err(VirtError::Hypervisor(format!(
                "cannot resume a guest that is {other:?}"
            ))),
        })
    }

    async fn destroy(&self, uuid: &str) -> Result<(), VirtError> {
        self.guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
        Ok(())
    }

    async fn power_on(&self, uuid: &str) -> Result<(), VirtError> {
        self.set(uuid, PowerState::Running)
    }

    async fn power_off(&self, uuid: &str, _timeout: Duration) -> Result<(), VirtError> {
        self.set(uuid, PowerState::Shutdown)
    }

    async fn reboot(&self, uuid: &str, _hard: bool) -> Result<(), VirtError> {
        self.set(uuid, PowerState::Running)
    }

    async fn power_state(&self, uuid: &str) -> Result<PowerState, VirtError> {
        self.with_guest(uuid, |guest| Ok(guest.info.state))
    }

    async fn list(&self) -> Result<Vec<GuestInfo>, VirtError> {
        Ok(self
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|g| g.info.clone())
            .collect())
    }

    /// Records the volume, in any power state; an attached volume is left as it is, and a
    /// target held by another volume is refused, as with libvirt.
    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError> {
        self.with_guest(uuid, |guest| {
            if guest.volumes.iter().any(|v| same_volume(v, volume)) {
                return Ok(());
            }
            if let Some(other) = guest.volumes.iter().find(|v| v.target == volume.target) {
                return Err(VirtError::Hypervisor(format!(
                    "guest {uuid} already has another disk at {} ({})",
                    other.target, other.volume_id
                )));
            }
            guest.volumes.push(volume.clone());
            Ok(())
        })
    }

    /// Forgets the volume at once (fake guests release disks without delay).
    async fn detach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError> {
        self.with_guest(uuid, |guest| {
            guest.volumes.retain(|v| !same_volume(v, volume));
            Ok(())
        })
    }

    async fn volume_targets(&self, uuid: &str) -> Result<Vec<String>, VirtError> {
        self.with_guest(uuid, |guest| {
            Ok(guest.volumes.iter().map(|v| v.target.clone()).collect())
        })
    }

    /// Fake guests have no display: there is no VNC server to connect to, so no port is
    /// ever reported.
    async fn vnc_port(&self, uuid: &str) -> Result<u16, VirtError> {
        self.power_state(uuid).await?;
        Err(VirtError::ConsoleUnavailable(
            "guests of the fake driver have no display".into(),
        ))
    }

    /// Fake guests have no disks: the agent prepares no image, overlay or config drive.
    fn manages_disks(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Boot, VirtType};
    use std::path::PathBuf;

    fn guest(start_paused: bool) -> GuestSpec {
        GuestSpec {
            uuid: "6f1b8a52-0000-4000-8000-0000000000f1".into(),
            name: "instance-000000f1".into(),
            display_name: "fake".into(),
            vcpus: 1,
            memory_mb: 64,
            root_disk: Some(PathBuf::from("/nonexistent/disk")),
            config_drive: None,
            boot: Boot::Disk,
            console_log: PathBuf::from("/nonexistent/console.log"),
            virt_type: VirtType::Qemu,
            vnc_listen: None,
            interfaces: Vec::new(),
            start_paused,
            volumes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_guest_started_paused_stays_paused_until_resumed() {
        let driver = FakeDriver::default();
        let spec = guest(true);
        assert!(matches!(
            driver.resume(&spec.uuid).await,
            Err(VirtError::NotFound(_))
        ));
        driver.spawn(&spec).await.unwrap();
        assert_eq!(
            driver.power_state(&spec.uuid).await.unwrap(),
            PowerState::Paused
        );
        // Spawning again leaves the active guest as it is, paused or running.
        driver.spawn(&spec).await.unwrap();
        assert_eq!(
            driver.power_state(&spec.uuid).await.unwrap(),
            PowerState::Paused
        );
        driver.resume(&spec.uuid).await.unwrap();
        driver.resume(&spec.uuid).await.unwrap();
        driver.spawn(&spec).await.unwrap();
        assert_eq!(
            driver.power_state(&spec.uuid).await.unwrap(),
            PowerState::Running
        );
        // A stopped guest is not started by a resume.
        driver
            .power_off(&spec.uuid, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(matches!(
            driver.resume(&spec.uuid).await,
            Err(VirtError::Hypervisor(_))
        ));
        driver.spawn(&guest(false)).await.unwrap();
        assert_eq!(
            driver.power_state(&spec.uuid).await.unwrap(),
            PowerState::Running
        );
    }

    #[tokio::test]
    async fn volumes_are_recorded_per_guest_and_attach_and_detach_are_idempotent() {
        let driver = FakeDriver::default();
        let volume = |id: &str, target: &str| GuestVolume {
            volume_id: id.into(),
            path: PathBuf::from(format!("/mnt/volume-{id}")),
            format: "raw".into(),
            target: target.into(),
            readonly: false,
        };
        let (a, b) = (volume("a", "vdb"), volume("b", "vdc"));
        let mut spec = guest(false);
        assert!(matches!(
            driver.attach_volume(&spec.uuid, &a).await,
            Err(VirtError::NotFound(_))
        ));
        assert!(matches!(
            driver.detach_volume(&spec.uuid, &a).await,
            Err(VirtError::NotFound(_))
        ));
        spec.volumes = vec![a.clone()];
        driver.spawn(&spec).await.unwrap();
        assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdb"]);
        // Attached already (by id, or by file): unchanged.
        driver.attach_volume(&spec.uuid, &a).await.unwrap();
        let moved = GuestVolume {
            volume_id: "a2".into(),
            ..a.clone()
        };
        driver.attach_volume(&spec.uuid, &moved).await.unwrap();
        // Another volume at a taken target is refused.
        assert!(matches!(
            driver.attach_volume(&spec.uuid, &volume("c", "vdb")).await,
            Err(VirtError::Hypervisor(_))
        ));
        driver.attach_volume(&spec.uuid, &b).await.unwrap();
        assert_eq!(
            driver.volume_targets(&spec.uuid).await.unwrap(),
            ["vdb", "vdc"]
        );
        // A spawn of the existing guest keeps its volumes; a stopped guest takes them too.
        driver.spawn(&guest(false)).await.unwrap();
        driver
            .power_off(&spec.uuid, Duration::from_secs(1))
            .await
            .unwrap();
        driver.detach_volume(&spec.uuid, &a).await.unwrap();
        driver.detach_volume(&spec.uuid, &a).await.unwrap();
        assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdc"]);
        driver.destroy(&spec.uuid).await.unwrap();
        assert!(matches!(
            driver.volume_targets(&spec.uuid).await,
            Err(VirtError::NotFound(_))
        ));
    }
}
