//! Compute's view of the block storage service ([`VolumeApi`]), as Nova's `volume/cinder.py`:
//! Cinder's v3 API over HTTP (the attachments API at 3.44) with the service user's token, so
//! the conductor works the same whether the volume service runs in this process or elsewhere.

use ferrostack_compute::volumes::{Connection, MAPPING_TAG, NewVolume, VolumeApi, VolumeInfo};
use ferrostack_compute_agent::token::TokenSource;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The microversion of every call (attachments with `os-complete`).
const MICROVERSION: &str = "volume 3.44";

/// [`VolumeApi`] over Cinder's HTTP API.
pub struct CinderVolumes {
    /// `<public url>/volume/v3`.
    base: String,
    tokens: Arc<dyn TokenSource>,
    client: reqwest::Client,
}

impl CinderVolumes {
    /// A client of the volume service at `volume_url` (e.g. `http://127.0.0.1:8080/volume`).
    pub fn new(volume_url: &str, tokens: Arc<dyn TokenSource>) -> Self {
        CinderVolumes {
            base: format!("{}/v3", volume_url.trim_end_matches('/')),
            tokens,
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    /// One call with the service's token; a 401 renews the token once. Returns the status
    /// and the JSON body (`Null` when empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call_as(None, method, path, body).await
    }

    /// [`Self::call`] with the token `as_user` instead of the service's when given (not
    /// renewed: a user's token is theirs).
    async fn call_as(
        &self,
        as_user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut retried = as_user.is_some();
        loop {
            let token = match as_user {
                Some(token) => token.to_string(),
                None => self.tokens.token().await?,
            };
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .header("X-Auth-Token", &token)
                .header("OpenStack-API-Version", MICROVERSION);
            if let Some(b) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let response = request.send().await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                self.tokens.invalidate(&token).await;
                retried = true;
                continue;
            }
            let bytes = response.bytes().await?;
            let value = match bytes.is_empty() {
                true => Value::Null,
                false => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            return Ok((status, value));
        }
    }

    /// A call that must succeed (2xx); the error names the volume service's message.
    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            anyhow::bail!("{}", error_message(status, &value));
        }
        Ok(value)
    }
}

/// The message of a Cinder error body (`{"badRequest": {"message": ...}}`).
fn error_message(status: StatusCode, body: &Value) -> String {
    let message = body
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no message");
    format!("the volume service answered {status}: {message}")
}

/// The metadata of a volume made for the block device mapping `bdm_id`.
fn mapping_tag(bdm_id: &str) -> Value {
    let mut tag = serde_json::Map::new();
    tag.insert(MAPPING_TAG.into(), json!(bdm_id));
    Value::Object(tag)
}

/// Reads a volume's view.
fn volume_info(v: &Value) -> VolumeInfo {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    VolumeInfo {
        id: text("id"),
        project_id: text("os-vol-tenant-attr:tenant_id"),
        status: text("status"),
        size: v.get("size").and_then(Value::as_i64).unwrap_or(0),
        multiattach: v
            .get("multiattach")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        bootable: matches!(v.get("bootable"), Some(Value::String(s)) if s == "true")
            || v.get("bootable") == Some(&Value::Bool(true)),
    }
}

/// The file connection in an attachment's `connection_info` (the `file` backend's shape).
fn connection(info: &Value) -> anyhow::Result<Connection> {
    let kind = info
        .get("driver_volume_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    anyhow::ensure!(
        kind == "file",
        "volume connection type {kind:?} is not supported by this compute host (file only)"
    );
    let data = &info["data"];
    let path = data
        .get("device_path")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the volume connection has no device_path"))?;
    Ok(Connection {
        path: path.to_string(),
        format: data
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("raw")
            .to_string(),
        readonly: data.get("access_mode").and_then(Value::as_str) == Some("ro"),
    })
}

#[async_trait::async_trait]
impl VolumeApi for CinderVolumes {
    async fn volume(&self, id: &str) -> anyhow::Result<Option<VolumeInfo>> {
        let (status, body) = self
            .call(Method::GET, &format!("/volumes/{id}"), None)
            .await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(volume_info(&body["volume"]))),
            s => anyhow::bail!("{}", error_message(s, &body)),
        }
    }

    async fn reserve(&self, volume_id: &str, instance: &str) -> anyhow::Result<String> {
        let body = json!({"attachment": {"volume_uuid": volume_id, "instance_uuid": instance}});
        let reply = self
            .expect(Method::POST, "/attachments", Some(body))
            .await?;
        reply["attachment"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("the volume service returned no attachment id"))
    }

    async fn connect(&self, attachment_id: &str, host: &str) -> anyhow::Result<Connection> {
        let connector = json!({"host": host, "platform": std::env::consts::ARCH, "os_type": "linux", "multipath": false, "mode": "rw"});
        let body = json!({"attachment": {"connector": connector}});
        let reply = self
            .expect(
                Method::PUT,
                &format!("/attachments/{attachment_id}"),
                Some(body),
            )
            .await?;
        connection(&reply["attachment"]["connection_info"])
    }

    async fn complete(&self, attachment_id: &str) -> anyhow::Result<()> {
        self.expect(
            Method::POST,
            &format!("/attachments/{attachment_id}/action"),
            Some(json!({"os-complete": null})),
        )
        .await?;
        Ok(())
    }

    async fn release(&self, attachment_id: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .call(
                Method::DELETE,
                &format!("/attachments/{attachment_id}"),
                None,
            )
            .await?;
        match status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => anyhow::bail!("{}", error_message(s, &body)),
        }
    }

    async fn attachments_of(&self, volume_id: &str, instance: &str) -> anyhow::Result<Vec<String>> {
        let reply = self
            .expect(
                Method::GET,
                &format!("/attachments?all_tenants=1&volume_id={volume_id}&instance_id={instance}"),
                None,
            )
            .await?;
        Ok(reply["attachments"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|a| a["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_volume(
        &self,
        user_token: &str,
        bdm_id: &str,
        source: &NewVolume,
    ) -> anyhow::Result<String> {
        let mut volume = json!({"name": "", "metadata": mapping_tag(bdm_id)});
        for (key, value) in [
            ("size", source.size.map(Value::from)),
            ("imageRef", source.image_id.clone().map(Value::from)),
            ("snapshot_id", source.snapshot_id.clone().map(Value::from)),
        ] {
            if let Some(v) = value {
                volume[key] = v;
            }
        }
        let body = json!({ "volume": volume });
        let (status, reply) = self
            .call_as(Some(user_token), Method::POST, "/volumes", Some(body))
            .await?;
        if !status.is_success() {
            anyhow::bail!("{}", error_message(status, &reply));
        }
        reply["volume"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("the volume service returned no volume id"))
    }

    async fn volume_for_mapping(&self, bdm_id: &str) -> anyhow::Result<Option<String>> {
        let mut url = reqwest::Url::parse("http://volume.invalid/volumes")?;
        url.query_pairs_mut()
            .append_pair("all_tenants", "1")
            .append_pair("metadata", &mapping_tag(bdm_id).to_string());
        let query = url.query().unwrap_or_default();
        let reply = self
            .expect(Method::GET, &format!("/volumes?{query}"), None)
            .await?;
        Ok(reply["volumes"]
            .as_array()
            .and_then(|list| list.first())
            .and_then(|v| v["id"].as_str())
            .map(str::to_string))
    }

    async fn delete_volume(&self, volume_id: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .call(Method::DELETE, &format!("/volumes/{volume_id}"), None)
            .await?;
        match status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => anyhow::bail!("{}", error_message(s, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_connections_are_read_and_others_refused() {
        let info = json!({"driver_volume_type": "file", "data": {"device_path": "/v/volume-1", "format": "qcow2", "access_mode": "ro"}});
        assert_eq!(
            connection(&info).unwrap(),
            Connection {
                path: "/v/volume-1".into(),
                format: "qcow2".into(),
                readonly: true
            }
        );
        let iscsi = json!({"driver_volume_type": "iscsi", "data": {}});
        assert!(
            connection(&iscsi)
                .unwrap_err()
                .to_string()
                .contains("iscsi")
        );
    }

    #[test]
    fn volume_views_and_error_bodies_are_read() {
        let v = json!({"id": "v1", "os-vol-tenant-attr:tenant_id": "p1", "status": "available", "size": 2, "multiattach": false, "bootable": "true"});
        let info = volume_info(&v);
        assert_eq!(
            (info.project_id.as_str(), info.size, info.bootable),
            ("p1", 2, true)
        );
        let message = error_message(
            StatusCode::BAD_REQUEST,
            &json!({"badRequest": {"code": 400, "message": "Invalid volume: nope"}}),
        );
        assert!(message.contains("Invalid volume: nope"), "{message}");
    }
}
