//! Change events for the agents: every committed change of a network resource is published on
//! [`TOPIC`] (after the commit), so an agent re-reads what changed from the store. Events are
//! hints: agents also reconcile from the store on start-up and tolerate lost events.

use ferrostack_bus::MessageBus;
use serde::{Deserialize, Serialize};

/// The bus topic of network changes.
pub const TOPIC: &str = "network.changed";

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `network`, `subnet`, `port`, `security_group`, `security_group_rule`, `router`,
    /// `floatingip` or `subnetpool`.
    pub resource: String,
    /// `created`, `updated` or `deleted`.
    pub action: String,
    /// The resource's id.
    pub id: String,
    /// Its revision after the change (the last one for a delete).
    pub revision_number: i64,
    /// The network it belongs to, when it belongs to one (subnets, ports).
    pub network_id: Option<String>,
    /// The host a port is bound to (before and after a rebinding, one event each).
    pub host: Option<String>,
}

impl Event {
    /// An event about `id` of `resource`.
    pub fn new(resource: &str, action: &str, id: &str, revision_number: i64) -> Event {
        Event {
            resource: resource.into(),
            action: action.into(),
            id: id.into(),
            revision_number,
            network_id: None,
            host: None,
        }
    }

    /// The network the resource belongs to.
    pub fn on_network(mut self, network_id: &str) -> Event {
        self.network_id = Some(network_id.into());
        self
    }

    /// The host a port is bound to (none when unbound).
    pub fn on_host(mut self, host: &str) -> Event {
        self.host = (!host.is_empty()).then(|| host.to_string());
        self
    }

    /// Publishes the event; a bus failure is logged (agents reconcile from the store anyway).
    pub async fn publish(&self, bus: &dyn MessageBus) {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        if let Err(e) = bus.publish(TOPIC, payload).await {
            tracing::warn!(error = %e, resource = %self.resource, id = %self.id, "network event not published");
        }
    }
}
