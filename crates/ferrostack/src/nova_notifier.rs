//! The nova notifier of Neutron and Cinder: tells the compute API a server's port is wired
//! (`network-vif-plugged`) or changed (`network-changed`), or its volume grew
//! (`volume-extended`) on
//! `POST /v2.1/os-server-external-events`, as the service user.

use ferrostack_compute_agent::{PasswordTokenSource, TokenSource};
use ferrostack_config::Config;
use serde_json::json;

/// Posts the external events over HTTP with the service user's token.
pub struct NovaNotifier {
    url: String,
    tokens: PasswordTokenSource,
    http: reqwest::Client,
}

impl NovaNotifier {
    /// A notifier for the compute API at `[api] public_url`.
    pub fn new(config: &Config, service_password: &str) -> NovaNotifier {
        let base = config.api.public_url.trim_end_matches('/');
        NovaNotifier {
            url: format!("{base}/compute/v2.1/os-server-external-events"),
            tokens: PasswordTokenSource::new(
                &format!("{base}/identity"),
                ferrostack_identity::bootstrap::SERVICE_USER,
                service_password,
                "service",
                "Default",
                "Default",
            ),
            http: reqwest::Client::new(),
        }
    }

    /// Posts one event per (server, tag) of `events`, all named `name`, in one request;
    /// returns the HTTP status and each event's own `code` (Nova answers 207 with a per-event
    /// 404/422 when a server is unknown or not placed).
    async fn post(
        &self,
        name: &str,
        events: &[(&str, &str)],
    ) -> anyhow::Result<(reqwest::StatusCode, Vec<Option<u64>>)> {
        let token = self.tokens.token().await?;
        let events: Vec<serde_json::Value> = events
            .iter()
            .map(|(server, tag)| {
                json!({"name": name, "server_uuid": server, "tag": tag, "status": "completed"})
            })
            .collect();
        let body = json!({ "events": events });
        let response = self
            .http
            .post(&self.url)
            .header("X-Auth-Token", token)
            // `volume-extended` is accepted from 2.51.
            .header("OpenStack-API-Version", "compute 2.51")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let codes = answer["events"]
            .as_array()
            .map(|list| list.iter().map(|e| e["code"].as_u64()).collect())
            .unwrap_or_default();
        Ok((status, codes))
    }

    /// Posts one event, answering the HTTP status and its code.
    async fn post_one(
        &self,
        name: &str,
        server_id: &str,
        tag: &str,
    ) -> anyhow::Result<(reqwest::StatusCode, Option<u64>)> {
        let (status, codes) = self.post(name, &[(server_id, tag)]).await?;
        Ok((status, codes.first().copied().flatten()))
    }
}

#[async_trait::async_trait]
impl ferrostack_network::agents::VifNotifier for NovaNotifier {
    async fn vifs_plugged(&self, plugged: &[(String, String)]) {
        // A `device_id` that is no uuid (any text a user gave a `compute:` port) would make
        // Nova refuse the whole request: such events are not sent.
        let events: Vec<(&str, &str)> = plugged
            .iter()
            .filter(|(server, _)| uuid::Uuid::parse_str(server).is_ok())
            .map(|(server, port)| (server.as_str(), port.as_str()))
            .collect();
        // Nova's schema sets no limit; batches of 200 keep each request body bounded.
        for events in events.chunks(200) {
            match self.post("network-vif-plugged", events).await {
                Ok((status, codes)) if status.is_success() => {
                    let taken = codes.iter().filter(|c| **c == Some(200)).count();
                    // The others are ports whose device_id names no placed server.
                    tracing::info!(sent = events.len(), taken, "network-vif-plugged sent");
                }
                Ok((status, _)) => {
                    tracing::warn!(sent = events.len(), %status, "network-vif-plugged refused")
                }
                Err(e) => {
                    tracing::warn!(sent = events.len(), error = %e, "network-vif-plugged not sent")
                }
            }
        }
    }

    async fn network_changed(&self, server_id: &str, port_id: &str) {
        match self.post_one("network-changed", server_id, port_id).await {
            Ok((status, Some(200))) if status.is_success() => {
                tracing::info!(server = server_id, port = port_id, "network-changed sent")
            }
            Ok((status, code)) => {
                tracing::debug!(server = server_id, %status, ?code, "network-changed not taken")
            }
            Err(e) => tracing::warn!(server = server_id, error = %e, "network-changed not sent"),
        }
    }
}

#[async_trait::async_trait]
impl ferrostack_volume::service::ComputeEvents for NovaNotifier {
    async fn volume_extended(&self, server_id: &str, volume_id: &str) -> anyhow::Result<()> {
        let (status, code) = self
            .post_one("volume-extended", server_id, volume_id)
            .await?;
        anyhow::ensure!(
            status.is_success() && code == Some(200),
            "the compute API answered {status} (event code {code:?})"
        );
        tracing::info!(
            server = server_id,
            volume = volume_id,
            "volume-extended sent"
        );
        Ok(())
    }
}
