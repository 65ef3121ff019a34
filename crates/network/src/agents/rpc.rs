//! The messages between a host's network agent and the server, JSON over the bus.

use ferrostack_network_agent::model::HostState;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The queue the server consumes (Neutron's `q-plugin` topic).
pub const SERVER_QUEUE: &str = "network.server";

/// A request from an agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Request {
    /// The desired state of `host` (what `get_devices_details_list`, `get_active_networks_info`
    /// and `sync_routers` give Neutron's agents).
    GetState { host: String },
    /// What the agent wired, and a heartbeat (`update_device_list` + `report_state`).
    Report(AgentReport),
}

/// One convergence's outcome and the agent's liveness.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentReport {
    pub host: String,
    /// Ports bound here whose tap is plugged and filtered.
    #[serde(default)]
    pub active_ports: Vec<String>,
    /// Ports bound here whose tap does not exist yet.
    #[serde(default)]
    pub pending_ports: Vec<String>,
    /// Floating IPs whose NAT is in place on this (the network) host.
    #[serde(default)]
    pub active_floating_ips: Vec<String>,
    /// Resources that failed, `"<resource>: <message>"`.
    #[serde(default)]
    pub errors: Vec<String>,
    /// The agent's VTEP address (`tunneling_ip`).
    #[serde(default)]
    pub vtep_ip: Option<IpAddr>,
    /// When the agent sent the report (RFC 3339).
    pub heartbeat: String,
    /// When the agent started (RFC 3339): `started_at` of its rows.
    #[serde(default)]
    pub started_at: String,
}

/// The server's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    State { state: Box<HostState> },
    Ok,
    Error { message: String },
}

/// JSON bytes of a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// A message from JSON bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let report = Request::Report(AgentReport {
            host: "h".into(),
            active_ports: vec!["p".into()],
            vtep_ip: Some("192.0.2.1".parse().unwrap()),
            heartbeat: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        });
        let bytes = encode(&report);
        assert!(String::from_utf8_lossy(&bytes).contains("\"method\":\"report\""));
        assert_eq!(decode::<Request>(&bytes).unwrap(), report);
        let reply = Reply::State {
            state: Box::default(),
        };
        assert_eq!(decode::<Reply>(&encode(&reply)).unwrap(), reply);
    }
}
