//! Keystone tokens for the agent's own calls (image downloads): [`TokenSource`] and the
//! password-auth implementation [`PasswordTokenSource`], which caches its token until shortly
//! before it expires.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::Mutex;

/// Supplies a token for `X-Auth-Token`.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token that is valid now (cached, or freshly issued).
    async fn token(&self) -> anyhow::Result<String>;
    /// Forgets `token` after a service answered 401 with it, so the next [`token`](Self::token)
    /// authenticates again.
    async fn invalidate(&self, token: &str);
}

/// Keystone v3 password authentication, project scoped (what a service user's
/// `keystone_authtoken`/`[glance]` section configures in Nova).
pub struct PasswordTokenSource {
    /// Keystone's base URL without the version, e.g. `http://127.0.0.1:8774/identity`.
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    /// Domain name of the user (e.g. `Default`).
    pub user_domain: String,
    /// Domain name of the project (e.g. `Default`).
    pub project_domain: String,
    client: reqwest::Client,
    cached: Mutex<Option<(String, DateTime<Utc>)>>,
}

/// A cached token is renewed this long before it expires.
pub const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

impl PasswordTokenSource {
    /// A token source for `username` in `project_name`, both in the given domains (by name).
    pub fn new(
        auth_url: &str,
        username: &str,
        password: &str,
        project_name: &str,
        user_domain: &str,
        project_domain: &str,
    ) -> Self {
        PasswordTokenSource {
            auth_url: auth_url.trim_end_matches('/').to_string(),
            username: username.to_string(),
            password: password.to_string(),
            project_name: project_name.to_string(),
            user_domain: user_domain.to_string(),
            project_domain: project_domain.to_string(),
            client: crate::images::http_client(),
            cached: Mutex::new(None),
        }
    }

    async fn authenticate(&self) -> anyhow::Result<(String, DateTime<Utc>)> {
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.username,
                "domain": {"name": self.user_domain},
                "password": self.password,
            }}},
            "scope": {"project": {
                "name": self.project_name,
                "domain": {"name": self.project_domain},
            }},
        }});
        let url = format!("{}/v3/auth/tokens", self.auth_url);
        let response = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("Keystone refused the agent's credentials ({status}): {text}");
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("Keystone's answer has no X-Subject-Token"))?;
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
        let expires = body["token"]["expires_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow::anyhow!("Keystone's token has no valid expires_at"))?;
        tracing::debug!(user = %self.username, %expires, "authenticated to Keystone");
        Ok((token, expires))
    }
}

/// Whether a token expiring at `expires` is still worth using at `now`.
pub fn still_fresh(expires: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let margin = chrono::TimeDelta::from_std(RENEW_BEFORE_EXPIRY).unwrap_or_default();
    now + margin < expires
}

#[async_trait]
impl TokenSource for PasswordTokenSource {
    async fn token(&self) -> anyhow::Result<String> {
        // Held across the authentication, so concurrent callers authenticate once.
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && still_fresh(*expires, Utc::now())
        {
            return Ok(token.clone());
        }
        let (token, expires) = self.authenticate().await?;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == token) {
            *cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_five_minutes_before_they_expire() {
        let now = Utc::now();
        assert!(still_fresh(now + chrono::TimeDelta::minutes(6), now));
        assert!(!still_fresh(now + chrono::TimeDelta::minutes(4), now));
        assert!(!still_fresh(now - chrono::TimeDelta::minutes(1), now));
    }
}
