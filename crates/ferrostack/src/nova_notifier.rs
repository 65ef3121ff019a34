//! Neutron's nova notifier: tells the compute API a server's port is wired
//! (`network-vif-plugged` on `POST /v2.1/os-server-external-events`), as the service user.

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

    async fn post(&self, server_id: &str, port_id: &str) -> anyhow::Result<reqwest::StatusCode> {
        let token = self.tokens.token().await?;
        let body = json!({"events": [{
            "name": "network-vif-plugged",
            "server_uuid": server_id,
            "tag": port_id,
            "status": "completed",
        }]});
        let response = self
            .http
            .post(&self.url)
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        Ok(response.status())
    }
}

#[async_trait::async_trait]
impl ferrostack_network::agents::VifNotifier for NovaNotifier {
    async fn vif_plugged(&self, server_id: &str, port_id: &str) {
        match self.post(server_id, port_id).await {
            Ok(status) if status.is_success() => {
                tracing::info!(
                    server = server_id,
                    port = port_id,
                    "network-vif-plugged sent"
                )
            }
            Ok(status) if status == reqwest::StatusCode::NOT_FOUND => tracing::debug!(
                server = server_id,
                "the compute API has no os-server-external-events (or no such server)"
            ),
            Ok(status) => {
                tracing::warn!(server = server_id, %status, "network-vif-plugged refused")
            }
            Err(e) => {
                tracing::warn!(server = server_id, error = %e, "network-vif-plugged not sent")
            }
        }
    }
}
