//! An in-memory driver for scale tests of the control plane: guests are table rows. Never used
//! by functional tests, which boot real guests.

use crate::capabilities::{CpuInfo, CpuTopology, HostCapabilities, SupportedInstance};
use crate::{GuestInfo, GuestSpec, PowerState, VirtDriver, VirtError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Guests that exist only in this process.
#[derive(Default)]
pub struct FakeDriver {
    guests: Mutex<BTreeMap<String, GuestInfo>>,
}

impl FakeDriver {
    fn set(&self, uuid: &str, state: PowerState) -> Result<(), VirtError> {
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        let guest = guests
            .get_mut(uuid)
            .ok_or_else(|| VirtError::NotFound(uuid.to_string()))?;
        guest.state = state;
        Ok(())
    }
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

    async fn spawn(&self, spec: &GuestSpec) -> Result<(), VirtError> {
        self.guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                spec.uuid.clone(),
                GuestInfo {
                    uuid: spec.uuid.clone(),
                    name: spec.name.clone(),
                    state: PowerState::Running,
                },
            );
        Ok(())
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
        self.guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uuid)
            .map(|g| g.state)
            .ok_or_else(|| VirtError::NotFound(uuid.to_string()))
    }

    async fn list(&self) -> Result<Vec<GuestInfo>, VirtError> {
        Ok(self
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect())
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
