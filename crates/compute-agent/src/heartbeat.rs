//! The periodic report (Nova's service heartbeat, resource tracker update and the input of
//! `_sync_power_states`): the host's resources and the power state of each of its guests. The
//! agent only reports; the conductor decides what a differing power state means.

use crate::conductor::Conductor;
use crate::guest::Guests;
use crate::host::{self, Reserved};
use ferrostack_compute::rpc::GuestState;

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
    conductor.heartbeat(node_uuid, resources, states).await
}
