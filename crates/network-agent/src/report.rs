//! What one convergence did and what it could not do.

use serde::Serialize;

/// The outcome of [`crate::Agent::converge`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Every change made to the host, in order (empty: the host already matched).
    pub changes: Vec<String>,
    /// Resources that could not be converged, with why; the rest of the state was applied.
    pub errors: Vec<ResourceError>,
    /// Ports bound here whose tap device is plugged into its bridge (and filtered): what Nova's
    /// `network-vif-plugged` event reports; and the ports of the routers converged here.
    pub active_ports: Vec<String>,
    /// Ports bound here whose tap device does not exist yet (the guest is not started).
    pub pending_ports: Vec<String>,
    /// The floating IPs whose NAT rules are in place (their routers converged here).
    pub active_floating_ips: Vec<String>,
}

/// A resource the agent could not converge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceError {
    /// What failed, e.g. `network 6b1f…` or `router 1c2d…`.
    pub resource: String,
    /// Why, with the failing command and its stderr.
    pub message: String,
}

impl Report {
    /// Records a change.
    pub(crate) fn change(&mut self, change: impl Into<String>) {
        let change = change.into();
        tracing::info!(%change, "network agent");
        self.changes.push(change);
    }

    /// Records a failed resource.
    pub(crate) fn error(&mut self, resource: impl Into<String>, error: impl std::fmt::Display) {
        let resource = resource.into();
        let message = error.to_string();
        tracing::warn!(%resource, %message, "network agent could not converge");
        self.errors.push(ResourceError { resource, message });
    }

    /// No errors.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}
