//! What the agent does for each request (Nova's `compute/manager.py`): build, delete, stop,
//! start, reboot, console output and the VNC console's address, each reporting its state changes to the conductor as
//! compare-and-swaps ([`crate::transitions`]) and recording its action event.
//!
//! Common rules:
//! - A conflict from the conductor (the instance moved on) stops the operation. When the
//!   instance was deleted, the agent removes the guest and its files and sends `Deleted`.
//! - A build that fails removes what it made, then sends `BuildFailed` (reschedule unless the
//!   image is the problem).
//! - A stop or start that fails puts the task state back to None (Nova's `reverts_task_state`).

use crate::conductor::Conductor;
use crate::console;
use crate::error::OpError;
use crate::guest::Guests;
use crate::transitions::{self, POWER_RUNNING, POWER_SHUTDOWN, task, vm};
use chrono::Utc;
use ferrostack_compute::rpc::{AgentReply, AgentRequest, ExternalEvent, GuestBuild, VolumeDisk};
use ferrostack_virt::VirtError;

/// Nova's action event names.
pub mod events {
    pub const BUILD: &str = "compute__do_build_and_run_instance";
    pub const TERMINATE: &str = "compute_terminate_instance";
    pub const STOP: &str = "compute_stop_instance";
    pub const START: &str = "compute_start_instance";
    pub const REBOOT: &str = "compute_reboot_instance";
    pub const ATTACH_VOLUME: &str = "compute_attach_volume";
    pub const DETACH_VOLUME: &str = "compute_detach_volume";
}

/// The request handlers.
pub(crate) struct Manager {
    pub(crate) guests: Guests,
    pub(crate) conductor: Conductor,
    /// Woken by `network-vif-plugged` events: builds waiting for their ports look again.
    pub(crate) port_events: tokio::sync::Notify,
}

fn error_text(result: &Result<(), OpError>) -> Option<String> {
    result.as_ref().err().map(|e| e.to_string())
}

impl Manager {
    /// Runs a cast (a request without reply) to its end.
    pub(crate) async fn handle(&self, request: AgentRequest) {
        match request {
            AgentRequest::Build { build, request_id } => self.build(&build, &request_id).await,
            AgentRequest::Delete { uuid, request_id } => self.delete(&uuid, &request_id).await,
            AgentRequest::Stop { uuid, request_id } => self.stop(&uuid, &request_id).await,
            AgentRequest::Start { build, request_id } => self.start(&build, &request_id).await,
            AgentRequest::Reboot {
                build,
                hard,
                request_id,
            } => self.reboot(&build, hard, &request_id).await,
            AgentRequest::ExternalEvents { events } => self.external_events(&events).await,
            AgentRequest::AttachVolume {
                uuid,
                disk,
                request_id,
            } => self.attach_volume(&uuid, &disk, &request_id).await,
            AgentRequest::DetachVolume {
                uuid,
                disk,
                request_id,
            } => self.detach_volume(&uuid, &disk, &request_id).await,
            AgentRequest::ConsoleOutput { .. }
            | AgentRequest::VncConsole { .. }
            | AgentRequest::Ping => {
                tracing::warn!("a call was sent as a cast: ignored");
            }
        }
    }

    /// Plugs a volume into the guest (live when it runs; idempotent) and reports the outcome.
    async fn attach_volume(&self, uuid: &str, disk: &VolumeDisk, request_id: &str) {
        let start = Utc::now();
        tracing::info!(%uuid, volume = %disk.volume_id, target = %disk.target, "attaching a volume");
        let result = self.guests.attach_volume(uuid, disk).await;
        ferrostack_compute::crashpoint::hit("agent:after-volume-plugged");
        let error = result.err().map(|e| e.to_string());
        self.conductor
            .event(
                uuid,
                request_id,
                events::ATTACH_VOLUME,
                start,
                error.clone(),
            )
            .await;
        if let Err(e) = self
            .conductor
            .volume_attached(uuid, &disk.volume_id, error)
            .await
        {
            tracing::warn!(%uuid, volume = %disk.volume_id, "could not report the attach: {e:#}");
        }
    }

    /// Unplugs a volume from the guest (idempotent) and reports the outcome.
    async fn detach_volume(&self, uuid: &str, disk: &VolumeDisk, request_id: &str) {
        let start = Utc::now();
        tracing::info!(%uuid, volume = %disk.volume_id, target = %disk.target, "detaching a volume");
        let result = self.guests.detach_volume(uuid, disk).await;
        ferrostack_compute::crashpoint::hit("agent:after-volume-unplugged");
        let error = result.err().map(|e| e.to_string());
        self.conductor
            .event(
                uuid,
                request_id,
                events::DETACH_VOLUME,
                start,
                error.clone(),
            )
            .await;
        if let Err(e) = self
            .conductor
            .volume_detached(uuid, &disk.volume_id, error)
            .await
        {
            tracing::warn!(%uuid, volume = %disk.volume_id, "could not report the detach: {e:#}");
        }
    }

    /// The guest of a deleted instance: remove it and tell the conductor.
    async fn finish_deleted(&self, uuid: &str) {
        match self.guests.remove(uuid).await {
            Ok(()) => {
                if let Err(e) = self.conductor.deleted(uuid).await {
                    tracing::warn!(%uuid, "could not report the deletion: {e:#}");
                }
            }
            Err(e) => tracing::error!(%uuid, "could not remove the deleted instance's guest: {e}"),
        }
    }

    /// Build: task `spawning`, the guest's files, the domain started and running, then
    /// `active` with `launched_at`. Idempotent: existing files and a running domain are kept.
    /// After the first step, a conflict or a failure removes the domain and the instance
    /// directory (then `Deleted` if the instance was deleted, else `BuildFailed` for a failure).
    pub(crate) async fn build(&self, build: &GuestBuild, request_id: &str) {
        let start = Utc::now();
        let uuid = build.uuid.as_str();
        tracing::info!(%uuid, request_id, "building");
        // Nothing is made before this first step succeeds, so nothing is undone when it fails:
        // a stale copy of a build for an instance that has moved on must not touch its guest.
        if let Err(e) = self
            .conductor
            .update(transitions::build_spawning(uuid))
            .await
        {
            self.conductor
                .event(uuid, request_id, events::BUILD, start, Some(e.to_string()))
                .await;
            match e {
                OpError::Conflict { deleted: true, .. } => self.finish_deleted(uuid).await,
                e => tracing::warn!(%uuid, "build not started: {e}"),
            }
            return;
        }
        ferrostack_compute::crashpoint::hit("agent:after-spawning");
        let result = self.spawn_guest(build).await;
        let error = error_text(&result);
        match result {
            Ok(()) => {
                tracing::info!(%uuid, "built and running");
                self.conductor
                    .event(uuid, request_id, events::BUILD, start, None)
                    .await;
            }
            Err(OpError::Conflict {
                task_state,
                deleted,
            }) => {
                tracing::warn!(%uuid, ?task_state, deleted, "build abandoned: the instance changed");
                self.conductor
                    .event(uuid, request_id, events::BUILD, start, error)
                    .await;
                if deleted {
                    self.finish_deleted(uuid).await;
                } else if let Err(e) = self.guests.remove(uuid).await {
                    tracing::error!(%uuid, "could not clean up the abandoned build: {e}");
                }
            }
            Err(e) => {
                tracing::error!(%uuid, reschedule = e.reschedule(), "build failed: {e}");
                if let Err(e) = self.guests.remove(uuid).await {
                    tracing::error!(%uuid, "could not clean up the failed build: {e}");
                }
                self.conductor
                    .event(uuid, request_id, events::BUILD, start, error)
                    .await;
                let message = e.to_string();
                if let Err(report) = self
                    .conductor
                    .build_failed(uuid, &message, e.reschedule())
                    .await
                {
                    tracing::error!(%uuid, "could not report the failed build: {report:#}");
                }
            }
        }
    }

    async fn spawn_guest(&self, build: &GuestBuild) -> Result<(), OpError> {
        let spec = self.guests.prepare(build).await?;
        if spec.start_paused {
            // Nova's `_create_guest_with_network`: the taps exist once the domain does; the
            // guest runs once the network has wired them.
            self.guests.boot_paused(&spec).await?;
            ferrostack_compute::crashpoint::hit("agent:after-domain-paused");
            self.wait_for_ports(&build.uuid).await?;
            self.guests.driver.resume(&build.uuid).await?;
            self.guests.wait_running(&build.uuid).await?;
        } else {
            self.guests.boot(&spec).await?;
        }
        ferrostack_compute::crashpoint::hit("agent:after-domain-started");
        self.conductor
            .update(transitions::build_done(&build.uuid, POWER_RUNNING))
            .await
    }

    /// `network-vif-plugged` (and other) events for guests here: waiting builds look again.
    pub(crate) async fn external_events(&self, events: &[ExternalEvent]) {
        for e in events {
            tracing::info!(uuid = %e.server_uuid, name = %e.name, tag = ?e.tag, status = %e.status, "external event");
        }
        self.port_events.notify_waiters();
        for e in events.iter().filter(|e| e.name == "volume-extended") {
            let Some(volume_id) = &e.tag else { continue };
            match self
                .guests
                .driver
                .resize_volume(&e.server_uuid, volume_id)
                .await
            {
                Ok(size) => {
                    tracing::info!(uuid = %e.server_uuid, volume = %volume_id, ?size, "extended volume resized in the guest")
                }
                Err(err) => {
                    tracing::warn!(uuid = %e.server_uuid, volume = %volume_id, error = %err, "extended volume not resized in the guest")
                }
            }
        }
    }

    /// Waits until the networking service reports every port of the guest active: asked at
    /// once (the ports may be wired already, e.g. when a build is resumed), then on each event
    /// and at least every second. Past `vif_plugging_timeout` the build fails (and is
    /// rescheduled), as Nova's `VirtualInterfaceCreateException`.
    async fn wait_for_ports(&self, uuid: &str) -> Result<(), OpError> {
        let timeout = self.guests.config.vif_plugging_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let woken = self.port_events.notified();
            let pending = self
                .conductor
                .pending_ports(uuid)
                .await
                .map_err(OpError::Host)?;
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Host(anyhow::anyhow!(
                    "Virtual Interface creation failed: ports {pending:?} of {uuid} were not \
                     plugged within {timeout:?}"
                )));
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), woken).await;
        }
    }

    /// Delete: the domain destroyed (idempotent), the instance directory removed, `Deleted`.
    pub(crate) async fn delete(&self, uuid: &str, request_id: &str) {
        let start = Utc::now();
        let result = self.guests.remove(uuid).await;
        let error = error_text(&result);
        self.conductor
            .event(uuid, request_id, events::TERMINATE, start, error)
            .await;
        match result {
            Ok(()) => {
                tracing::info!(%uuid, "deleted");
                if let Err(e) = self.conductor.deleted(uuid).await {
                    tracing::error!(%uuid, "could not report the deletion: {e:#}");
                }
            }
            Err(e) => tracing::error!(%uuid, "delete failed: {e}"),
        }
    }

    /// The measured power state as Nova's code; a missing guest counts as shut down.
    async fn power_code(&self, uuid: &str) -> Option<i64> {
        match self.guests.power_state(uuid).await {
            Ok(Some(state)) => Some(state as i64),
            Ok(None) => Some(POWER_SHUTDOWN),
            Err(e) => {
                tracing::warn!(%uuid, "power state unknown: {e}");
                None
            }
        }
    }

    /// The end of a stop or start: conflicts and failures handled, the event recorded.
    async fn finish_power_action(
        &self,
        uuid: &str,
        request_id: &str,
        event: &str,
        from_task: &str,
        start: chrono::DateTime<Utc>,
        result: Result<(), OpError>,
    ) {
        let error = error_text(&result);
        self.conductor
            .event(uuid, request_id, event, start, error)
            .await;
        match result {
            Ok(()) => tracing::info!(%uuid, event, "done"),
            Err(OpError::Conflict { deleted: true, .. }) => self.finish_deleted(uuid).await,
            Err(OpError::Conflict { task_state, .. }) => {
                tracing::warn!(%uuid, event, ?task_state, "the instance moved on meanwhile");
            }
            Err(e) => {
                tracing::error!(%uuid, event, "failed: {e}");
                let power = self.power_code(uuid).await;
                let revert = transitions::revert_task(uuid, from_task, power);
                if let Err(e) = self.conductor.update(revert).await {
                    tracing::warn!(%uuid, "task state not reverted: {e}");
                }
            }
        }
    }

    /// Stop: ACPI shutdown, a hard stop after the shutdown timeout, then `stopped`/power 4.
    /// A guest that is already down (or has no domain) counts as stopped.
    pub(crate) async fn stop(&self, uuid: &str, request_id: &str) {
        let start = Utc::now();
        let result = async {
            let was_down = !self.guests.running(uuid).await?;
            match self
                .guests
                .driver
                .power_off(uuid, self.guests.config.shutdown_timeout)
                .await
            {
                Ok(()) | Err(VirtError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let power = self.power_code(uuid).await.unwrap_or(POWER_SHUTDOWN);
            self.conductor
                .update(transitions::stopped(uuid, power, was_down))
                .await
        }
        .await;
        self.finish_power_action(
            uuid,
            request_id,
            events::STOP,
            task::POWERING_OFF,
            start,
            result,
        )
        .await;
    }

    /// Start: missing files (and a missing domain, e.g. after a host reboot) are made again
    /// from `build` — an existing disk is never replaced — then the guest is started and
    /// reported `active`/power 1.
    pub(crate) async fn start(&self, build: &GuestBuild, request_id: &str) {
        let start = Utc::now();
        let uuid = build.uuid.as_str();
        let result = async {
            let spec = self.guests.prepare(build).await?;
            self.guests.boot(&spec).await?;
            self.conductor
                .update(transitions::started(uuid, POWER_RUNNING))
                .await
        }
        .await;
        self.finish_power_action(
            uuid,
            request_id,
            events::START,
            task::POWERING_ON,
            start,
            result,
        )
        .await;
    }

    /// Reboot (Nova's libvirt driver): soft = ACPI shutdown, wait up to the soft reboot timeout
    /// (then a hard stop), start again; a guest that is not running gets a hard reboot. Hard =
    /// destroy the domain, re-create missing files, define and start it again from the same
    /// disk (this also boots a stopped server).
    pub(crate) async fn reboot(&self, build: &GuestBuild, hard: bool, request_id: &str) {
        let start = Utc::now();
        let uuid = build.uuid.as_str();
        if let Err(e) = self
            .conductor
            .update(transitions::reboot_started(uuid, hard))
            .await
        {
            self.conductor
                .event(uuid, request_id, events::REBOOT, start, Some(e.to_string()))
                .await;
            match e {
                OpError::Conflict { deleted: true, .. } => self.finish_deleted(uuid).await,
                e => tracing::warn!(%uuid, hard, "reboot not started: {e}"),
            }
            return;
        }
        let outcome = match hard {
            true => self.hard_reboot(build).await,
            false => self.soft_reboot(build).await,
        };
        let (vm_state, power) = match &outcome {
            Ok(()) => (vm::ACTIVE, POWER_RUNNING),
            Err(e) => {
                tracing::error!(%uuid, hard, "reboot failed: {e}");
                match self.power_code(uuid).await {
                    Some(POWER_RUNNING) => (vm::ACTIVE, POWER_RUNNING),
                    power => (vm::ERROR, power.unwrap_or(0)),
                }
            }
        };
        let reported = self
            .conductor
            .update(transitions::reboot_done(uuid, hard, vm_state, power))
            .await;
        let result = outcome.and(reported);
        let error = error_text(&result);
        self.conductor
            .event(uuid, request_id, events::REBOOT, start, error)
            .await;
        match result {
            Ok(()) => tracing::info!(%uuid, hard, "rebooted"),
            Err(OpError::Conflict { deleted: true, .. }) => self.finish_deleted(uuid).await,
            Err(e) => tracing::warn!(%uuid, hard, "reboot: {e}"),
        }
    }

    async fn soft_reboot(&self, build: &GuestBuild) -> Result<(), OpError> {
        let uuid = build.uuid.as_str();
        if !self.guests.running(uuid).await? {
            tracing::info!(%uuid, "not running: rebooting hard instead");
            return self.hard_reboot(build).await;
        }
        let timeout = self.guests.config.soft_reboot_timeout;
        self.guests.driver.power_off(uuid, timeout).await?;
        self.guests.driver.power_on(uuid).await?;
        self.guests.wait_running(uuid).await
    }

    async fn hard_reboot(&self, build: &GuestBuild) -> Result<(), OpError> {
        self.guests.driver.destroy(&build.uuid).await?;
        let spec = self.guests.prepare(build).await?;
        self.guests.boot(&spec).await
    }

    /// Start-up: a reboot interrupted by an agent restart whose guest runs: clear its task.
    pub(crate) async fn clear_reboot(&self, uuid: &str, from_task: &str) {
        match self
            .conductor
            .update(transitions::reboot_cleared(uuid, from_task))
            .await
        {
            Ok(()) => tracing::info!(%uuid, "interrupted reboot cleared: the guest runs"),
            Err(OpError::Conflict { deleted: true, .. }) => self.finish_deleted(uuid).await,
            Err(e) => tracing::warn!(%uuid, "interrupted reboot not cleared: {e}"),
        }
    }

    /// Where the guest's VNC server listens now: this host's proxy-client address and the port
    /// libvirt assigned, read from the live guest. [`AgentReply::NotFound`] when this host
    /// has no such guest; [`AgentReply::ConsoleUnavailable`] when VNC is disabled here, the
    /// guest has no display or it is not running.
    pub(crate) async fn vnc_console(&self, uuid: &str) -> AgentReply {
        let config = &self.guests.config;
        if !config.vnc_enabled {
            return AgentReply::ConsoleUnavailable {
                reason: format!("VNC is disabled on host {}", config.host),
            };
        }
        if !self.guests.files(uuid).exists() {
            return AgentReply::NotFound;
        }
        match self.guests.driver.vnc_port(uuid).await {
            Ok(port) => AgentReply::VncConsole {
                host: config.vnc_server_proxyclient_address.clone(),
                port,
            },
            Err(VirtError::NotFound(_)) => AgentReply::NotFound,
            Err(VirtError::ConsoleUnavailable(reason)) => AgentReply::ConsoleUnavailable { reason },
            Err(e) => AgentReply::Error {
                message: format!("reading the VNC console of {uuid}: {e}"),
            },
        }
    }

    /// The tail of the guest's serial log. [`AgentReply::NotFound`] when this host has no
    /// files for the instance; an empty output when it has no log yet.
    pub(crate) async fn console_output(&self, uuid: &str, length: Option<i64>) -> AgentReply {
        let files = self.guests.files(uuid);
        if !files.exists() {
            return AgentReply::NotFound;
        }
        let log = files.console_log();
        match tokio::task::spawn_blocking(move || console::console_output(&log, length)).await {
            Ok(Ok(output)) => AgentReply::ConsoleOutput { output },
            Ok(Err(e)) => AgentReply::Error {
                message: format!("reading the console log of {uuid}: {e}"),
            },
            Err(e) => AgentReply::Error {
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ImageCache;
    use crate::config::AgentConfig;
    use crate::images::ImageSource;
    use ferrostack_virt::fake::FakeDriver;
    use ferrostack_virt::{Boot, GuestSpec, VirtDriver, VirtType};
    use std::sync::Arc;

    struct NoImages;

    #[async_trait::async_trait]
    impl ImageSource for NoImages {
        async fn fetch(&self, image_id: &str, _dest: &std::path::Path) -> anyhow::Result<()> {
            anyhow::bail!("no image {image_id} here")
        }
    }

    fn manager(root: &std::path::Path, vnc_enabled: bool, driver: Arc<FakeDriver>) -> Manager {
        let mut config = AgentConfig::new("h", root);
        config.vnc_enabled = vnc_enabled;
        let bus = ferrostack_bus::InProcessBus::new();
        Manager {
            guests: Guests {
                config: Arc::new(config),
                driver,
                cache: ImageCache::new(root, Arc::new(NoImages)),
            },
            conductor: Conductor::new(bus, "h", std::time::Duration::from_secs(1)),
            port_events: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_vnc_console_is_reported_from_the_driver_and_never_made_up() {
        let root = std::env::temp_dir().join(format!("agent-vnc-{}", uuid::Uuid::new_v4()));
        let driver = Arc::new(FakeDriver::default());
        let m = manager(&root, true, driver.clone());
        let uuid = uuid::Uuid::new_v4().to_string();
        // Not this host's guest.
        assert_eq!(m.vnc_console(&uuid).await, AgentReply::NotFound);
        // A guest of the fake driver has no display: unavailable, no port.
        m.guests.files(&uuid).create_dir().await.unwrap();
        let spec = GuestSpec {
            uuid: uuid.clone(),
            name: "instance-00000001".into(),
            display_name: "vm".into(),
            vcpus: 1,
            memory_mb: 64,
            root_disk: Some(root.join("disk")),
            config_drive: None,
            boot: Boot::Disk,
            console_log: root.join("console.log"),
            virt_type: VirtType::Qemu,
            vnc_listen: Some("127.0.0.1".into()),
            interfaces: Vec::new(),
            start_paused: false,
            volumes: Vec::new(),
        };
        driver.spawn(&spec).await.unwrap();
        assert!(matches!(
            m.vnc_console(&uuid).await,
            AgentReply::ConsoleUnavailable { .. }
        ));
        // Files but no guest: not found.
        driver.destroy(&uuid).await.unwrap();
        assert_eq!(m.vnc_console(&uuid).await, AgentReply::NotFound);
        // VNC disabled on the host: unavailable whatever the guest.
        let off = manager(&root, false, driver);
        let AgentReply::ConsoleUnavailable { reason } = off.vnc_console(&uuid).await else {
            panic!("VNC is off")
        };
        assert!(reason.contains("disabled"), "{reason}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
