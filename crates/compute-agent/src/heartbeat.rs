//! The periodic report (Nova's service heartbeat, resource tracker update and the input of
//! `_sync_power_states`): the host's resources, the hypervisor's capabilities (read from the
//! driver once, at start-up) and the power state of each of its guests. The agent only
//! reports; the conductor decides what a differing power state means.

use crate::conductor::Conductor;
use crate::guest::Guests;
use crate::host::{self, Reserved};
use ferrostack_compute::rpc::{GuestState, HostCapabilities};
use ferrostack_virt::VirtDriver;

/// Asks the driver what the host is and can run, in the RPC's form.
pub(crate) async fn capabilities(driver: &dyn VirtDriver) -> anyhow::Result<HostCapabilities> {
    let caps = driver.host_capabilities().await?;
    Ok(HostCapabilities {
        hypervisor_type: caps.hypervisor_type,
        hypervisor_version: i64::try_from(caps.hypervisor_version)?,
        libvirt_version: i64::try_from(caps.libvirt_version)?,
        hostname: caps.hostname,
        cpu_info: caps.cpu.to_json(),
        supported_instances: caps
            .supported_instances
            .into_iter()
            .map(|s| (s.arch, s.hypervisor_type, s.vm_mode))
            .collect(),
    })
}

/// The guests of this agent: those the driver lists that have a directory under this agent's
/// instances path (other agents may share the hypervisor).
pub(crate) async fn our_guests(guests: &Guests) -> anyhow::Result<Vec<GuestState>> {
    Ok(guests
        .driver
        .list()
        .await?
        .into_iter()
        .filter(|g| guests.files(&g.uuid).exists())
        .map(|g| GuestState {
            uuid: g.uuid,
            power_state: g.state as i64,
        })
        .collect())
}

/// Sends one heartbeat.
pub(crate) async fn beat(
    guests: &Guests,
    conductor: &Conductor,
    node_uuid: &str,
    capabilities: &HostCapabilities,
) -> anyhow::Result<()> {
    let config = guests.config.clone();
    let reserved = Reserved {
        cpus: config.reserved_host_cpus,
        memory_mb: config.reserved_host_memory_mb,
        disk_gb: config.reserved_host_disk_gb,
    };
    let resources =
        tokio::task::spawn_blocking(move || host::measure(&config.instances_path, reserved))
            .await??;
    let _turn = conductor.heartbeat_turn().await;
    let states = our_guests(guests).await?;
    conductor
        .heartbeat(node_uuid, resources, states, capabilities.clone())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_virt::fake::FakeDriver;

    #[tokio::test]
    async fn the_drivers_capabilities_are_reported_in_novas_form() {
        let caps = capabilities(&FakeDriver::default()).await.unwrap();
        assert_eq!(caps.hypervisor_type, "fake");
        assert_eq!(caps.hypervisor_version, 1000);
        let cpu: serde_json::Value = serde_json::from_str(&caps.cpu_info).unwrap();
        assert_eq!(cpu["arch"], "x86_64");
        assert_eq!(cpu["topology"]["sockets"], 1);
        assert_eq!(
            caps.supported_instances,
            [("x86_64".to_string(), "fake".to_string(), "hvm".to_string())]
        );
    }
}
