//! The agent's side of the conductor RPC: typed calls on [`CONDUCTOR_QUEUE`], state updates
//! whose compare-and-swap outcome is an error variant, and action events.

use crate::error::OpError;
use ferrostack_bus::{BusError, MessageBus};
use ferrostack_compute::rpc::{
    ActionEvent, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest, GuestState, HostCapabilities,
    HostResources, OwnedInstance, StateUpdate, decode, encode,
};
use std::sync::Arc;
use std::time::Duration;

/// Nova's action event time format (`YYYY-MM-DDTHH:MM:SS.ffffff`, UTC).
pub fn event_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Calls the conductor for one agent.
#[derive(Clone)]
pub(crate) struct Conductor {
    bus: Arc<dyn MessageBus>,
    host: String,
    timeout: Duration,
    /// State updates hold it shared, a heartbeat exclusively from its look at the guests to
    /// the conductor's answer: the conductor then never applies a heartbeat whose guest list
    /// is older than an update it applied before (a guest defined just after the listing,
    /// whose build then reported `active`, would otherwise look gone to the power sync).
    reports: Arc<tokio::sync::RwLock<()>>,
}

/// How often a call is tried when nobody consumes the conductor's queue (the message was never
/// delivered, so trying again is safe). A timed-out call is not retried: the conductor may have
/// applied it, and a compare-and-swap sent twice would conflict with itself.
const ATTEMPTS: u32 = 5;

impl Conductor {
    pub(crate) fn new(bus: Arc<dyn MessageBus>, host: &str, timeout: Duration) -> Self {
        Conductor {
            bus,
            host: host.to_string(),
            timeout,
            reports: Arc::default(),
        }
    }

    /// Held by a heartbeat from its look at the guests until the conductor answered it.
    pub(crate) async fn heartbeat_turn(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.reports.write().await
    }

    /// One call; retried with back-off while the conductor's queue has no consumer.
    pub(crate) async fn call(&self, request: &ConductorRequest) -> anyhow::Result<ConductorReply> {
        let payload = encode(request);
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            match self
                .bus
                .call(CONDUCTOR_QUEUE, payload.clone(), self.timeout)
                .await
            {
                Ok(reply) => return Ok(decode(&reply)?),
                Err(BusError::NoConsumer(_)) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, "the conductor is not consuming; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(anyhow::anyhow!("conductor call failed: {e}")),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// A state change: `Ok` when applied, [`OpError::Conflict`] when the instance's task
    /// state was not one of the expected ones (or it was deleted).
    pub(crate) async fn update(&self, update: StateUpdate) -> Result<(), OpError> {
        let uuid = update.uuid.clone();
        let task = update.task_state.clone();
        let _turn = self.reports.read().await;
        match self
            .call(&ConductorRequest::Update(update))
            .await
            .map_err(OpError::Host)?
        {
            ConductorReply::Ok => {
                tracing::debug!(%uuid, ?task, "state updated");
                Ok(())
            }
            ConductorReply::Conflict {
                task_state,
                deleted,
            } => Err(OpError::Conflict {
                task_state,
                deleted,
            }),
            other => Err(OpError::Host(anyhow::anyhow!(
                "the conductor refused the update of {uuid}: {other:?}"
            ))),
        }
    }

    /// Tells the conductor the guest of `uuid` is gone from this host.
    pub(crate) async fn deleted(&self, uuid: &str) -> anyhow::Result<()> {
        self.expect_ok(&ConductorRequest::Deleted {
            uuid: uuid.to_string(),
            host: self.host.clone(),
        })
        .await
    }

    /// The ports of the guest's interfaces that the networking service does not report
    /// active yet.
    pub(crate) async fn pending_ports(&self, uuid: &str) -> anyhow::Result<Vec<String>> {
        let request = ConductorRequest::PortsActive {
            uuid: uuid.to_string(),
        };
        match self.call(&request).await? {
            ConductorReply::PortsActive { pending } => Ok(pending),
            other => anyhow::bail!("unexpected answer to a port status call: {other:?}"),
        }
    }

    /// Reports that a volume is plugged into the guest of `uuid` (`error`: it could not be).
    pub(crate) async fn volume_attached(
        &self,
        uuid: &str,
        volume_id: &str,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        self.expect_ok(&ConductorRequest::VolumeAttached {
            uuid: uuid.to_string(),
            volume_id: volume_id.to_string(),
            error,
        })
        .await
    }

    /// Reports that a volume is unplugged from the guest of `uuid` (`error`: it could not be).
    pub(crate) async fn volume_detached(
        &self,
        uuid: &str,
        volume_id: &str,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        self.expect_ok(&ConductorRequest::VolumeDetached {
            uuid: uuid.to_string(),
            volume_id: volume_id.to_string(),
            error,
        })
        .await
    }

    /// Reports a failed build.
    pub(crate) async fn build_failed(
        &self,
        uuid: &str,
        message: &str,
        reschedule: bool,
    ) -> anyhow::Result<()> {
        self.expect_ok(&ConductorRequest::BuildFailed {
            uuid: uuid.to_string(),
            host: self.host.clone(),
            message: message.to_string(),
            reschedule,
        })
        .await
    }

    /// Records an action event; failures are logged, never fatal.
    pub(crate) async fn event(
        &self,
        uuid: &str,
        request_id: &str,
        event: &str,
        start: chrono::DateTime<chrono::Utc>,
        error: Option<String>,
    ) {
        let request = ConductorRequest::Event(ActionEvent {
            uuid: uuid.to_string(),
            request_id: request_id.to_string(),
            event: event.to_string(),
            start_time: event_time(start),
            finish_time: event_time(chrono::Utc::now()),
            error,
        });
        if let Err(e) = self.expect_ok(&request).await {
            tracing::warn!(%uuid, event, "action event not recorded: {e:#}");
        }
    }

    /// The instances the conductor assigns to this host.
    pub(crate) async fn host_instances(&self) -> anyhow::Result<Vec<OwnedInstance>> {
        match self
            .call(&ConductorRequest::HostInstances {
                host: self.host.clone(),
            })
            .await?
        {
            ConductorReply::Instances { instances } => Ok(instances),
            other => anyhow::bail!("unexpected answer to HostInstances: {other:?}"),
        }
    }

    /// The periodic report.
    pub(crate) async fn heartbeat(
        &self,
        node_uuid: &str,
        resources: HostResources,
        guests: Vec<GuestState>,
        capabilities: HostCapabilities,
    ) -> anyhow::Result<()> {
        self.expect_ok(&ConductorRequest::Heartbeat {
            host: self.host.clone(),
            node_uuid: node_uuid.to_string(),
            resources,
            guests,
            capabilities: Some(capabilities),
        })
        .await
    }

    async fn expect_ok(&self, request: &ConductorRequest) -> anyhow::Result<()> {
        match self.call(request).await? {
            ConductorReply::Ok => Ok(()),
            // A deleted instance's late event or a second `Deleted`: nothing left to do.
            ConductorReply::Conflict { .. } => Ok(()),
            other => anyhow::bail!("the conductor answered {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn event_times_have_microseconds_and_no_zone() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 1, 12, 3, 4)
            .unwrap()
            .checked_add_signed(chrono::TimeDelta::microseconds(56))
            .unwrap();
        assert_eq!(event_time(at), "2026-11-01T12:03:04.000056");
    }
}
