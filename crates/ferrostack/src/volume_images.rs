//! The image service as the volume service uses it (Cinder's `image/glance.py`): Glance v2
//! over HTTP with the service user's token. The service user is an admin, so the caller's
//! visibility of an image is decided here with Glance's rules (see [`visibility`]).

use async_trait::async_trait;
use ferrostack_compute_agent::images::{GlanceImageSource, ImageSource};
use ferrostack_compute_agent::token::TokenSource;
use ferrostack_volume::images::{ImageApi, ImageRecord};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Glance v2 with a service token.
pub struct GlanceImages {
    /// The image endpoint without the version, e.g. `http://127.0.0.1:8080/image`.
    image_url: String,
    tokens: Arc<dyn TokenSource>,
    client: reqwest::Client,
    downloads: GlanceImageSource,
}

impl GlanceImages {
    /// The image service at `image_url`, called with tokens from `tokens`.
    pub fn new(image_url: &str, tokens: Arc<dyn TokenSource>) -> GlanceImages {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .build()
            .unwrap_or_default();
        GlanceImages {
            image_url: image_url.trim_end_matches('/').to_string(),
            downloads: GlanceImageSource::new(image_url, tokens.clone()),
            tokens,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.image_url)
    }

    /// Sends the request `build` makes (with the token set), authenticating again once if the
    /// token is refused.
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> anyhow::Result<RequestBuilder>,
    ) -> anyhow::Result<Response> {
        let mut retried = false;
        loop {
            let token = self.tokens.token().await?;
            let request = self
                .client
                .request(method.clone(), url)
                .header("x-auth-token", &token);
            let response = build(request)?
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
            if response.status() == StatusCode::UNAUTHORIZED && !retried {
                tracing::info!(%url, "the image service refused the token; authenticating again");
                self.tokens.invalidate(&token).await;
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// Whether `project` is a member of image `id` (any member status: Glance shows a shared
    /// image to its members whether or not they accepted it).
    async fn is_member(&self, id: &str, project: &str) -> anyhow::Result<bool> {
        let url = self.url(&format!("images/{id}/members/{project}"));
        let response = self.send(Method::GET, &url, Ok).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            s => Err(failure(&url, s, response).await),
        }
    }
}

/// The error of an unexpected answer.
async fn failure(url: &str, status: StatusCode, response: Response) -> anyhow::Error {
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(500).collect();
    anyhow::anyhow!("{url} answered {status}: {text}")
}

/// The JSON body of a successful answer.
async fn json_body(url: &str, response: Response) -> anyhow::Result<Value> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{url}: not JSON: {e}"))
}

/// Who may see an image, by Glance's `is_image_visible`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Visible,
    Hidden,
    /// Visible if the caller's project is a member of the (shared) image.
    IfMember,
}

/// Glance's visibility rule for a caller of `project` (`admin` sees everything): images
/// without owner, public and community images are visible to all; private ones to their
/// owner; shared ones to their owner and members.
pub fn visibility(
    image_visibility: &str,
    owner: Option<&str>,
    project: Option<&str>,
    admin: bool,
) -> Visibility {
    if admin || owner.is_none() || matches!(image_visibility, "public" | "community") {
        return Visibility::Visible;
    }
    match project {
        Some(p) if owner == Some(p) => Visibility::Visible,
        Some(_) if image_visibility == "shared" => Visibility::IfMember,
        _ => Visibility::Hidden,
    }
}

/// Image attributes that are not properties (Glance's core attributes and the links).
const CORE: &[&str] = &[
    "id",
    "name",
    "status",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "visibility",
    "protected",
    "owner",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
];

/// An image record from Glance's JSON.
pub fn record(body: &Value) -> anyhow::Result<ImageRecord> {
    let text = |key: &str| body[key].as_str().map(str::to_string);
    let id = text("id").ok_or_else(|| anyhow::anyhow!("image without id: {body}"))?;
    let properties: BTreeMap<String, String> = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !CORE.contains(&key.as_str()))
        .filter_map(|(key, value)| {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Bool(_) | Value::Number(_) => value.to_string(),
                _ => return None,
            };
            Some((key.clone(), value))
        })
        .collect();
    Ok(ImageRecord {
        id,
        name: text("name"),
        status: text("status").unwrap_or_default(),
        disk_format: text("disk_format"),
        container_format: text("container_format"),
        size: body["size"].as_i64(),
        virtual_size: body["virtual_size"].as_i64(),
        min_disk: body["min_disk"].as_i64().unwrap_or(0),
        min_ram: body["min_ram"].as_i64().unwrap_or(0),
        properties,
    })
}

#[async_trait]
impl ImageApi for GlanceImages {
    async fn show(
        &self,
        id: &str,
        project: Option<&str>,
        admin: bool,
    ) -> anyhow::Result<Option<ImageRecord>> {
        let url = self.url(&format!("images/{id}"));
        let response = self.send(Method::GET, &url, Ok).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(failure(&url, status, response).await);
        }
        let body = json_body(&url, response).await?;
        let seen = match visibility(
            body["visibility"].as_str().unwrap_or("private"),
            body["owner"].as_str(),
            project,
            admin,
        ) {
            Visibility::Visible => true,
            Visibility::Hidden => false,
            Visibility::IfMember => match project {
                Some(p) => self.is_member(id, p).await?,
                None => false,
            },
        };
        if !seen {
            return Ok(None);
        }
        record(&body).map(Some)
    }

    async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<()> {
        self.downloads.fetch(id, dest).await
    }

    async fn create(
        &self,
        project: &str,
        name: &str,
        disk_format: &str,
        container_format: &str,
        visibility: &str,
        protected: bool,
    ) -> anyhow::Result<ImageRecord> {
        let url = self.url("images");
        let body = json!({
            "name": name,
            "disk_format": disk_format,
            "container_format": container_format,
            "visibility": visibility,
            "protected": protected,
            "owner": project,
        });
        let response = self
            .send(Method::POST, &url, |r| {
                Ok(r.header("content-type", "application/json")
                    .body(body.to_string()))
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure(&url, status, response).await);
        }
        record(&json_body(&url, response).await?)
    }

    async fn upload(&self, id: &str, src: &Path) -> anyhow::Result<()> {
        let url = self.url(&format!("images/{id}/file"));
        let response = self
            .send(Method::PUT, &url, |r| {
                let file = std::fs::File::open(src)
                    .map_err(|e| anyhow::anyhow!("opening {}: {e}", src.display()))?;
                let length = file.metadata()?.len();
                Ok(r.header("content-type", "application/octet-stream")
                    .header("content-length", length)
                    .body(reqwest::Body::from(tokio::fs::File::from_std(file))))
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure(&url, status, response).await);
        }
        tracing::info!(image = id, "volume data uploaded to the image service");
        Ok(())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let url = self.url(&format!("images/{id}"));
        let response = self.send(Method::DELETE, &url, Ok).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            s => Err(failure(&url, s, response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_visibility_rules() {
        use Visibility::*;
        let p1 = Some("p1");
        for v in ["public", "community"] {
            assert_eq!(visibility(v, Some("p2"), p1, false), Visible);
            assert_eq!(visibility(v, Some("p2"), None, false), Visible);
        }
        assert_eq!(visibility("private", Some("p1"), p1, false), Visible);
        assert_eq!(visibility("private", Some("p2"), p1, false), Hidden);
        assert_eq!(visibility("private", Some("p2"), None, false), Hidden);
        assert_eq!(visibility("private", Some("p2"), p1, true), Visible);
        assert_eq!(visibility("shared", Some("p1"), p1, false), Visible);
        assert_eq!(visibility("shared", Some("p2"), p1, false), IfMember);
        assert_eq!(visibility("shared", Some("p2"), None, false), Hidden);
        assert_eq!(visibility("shared", Some("p2"), p1, true), Visible);
        // An image without owner is everybody's.
        assert_eq!(visibility("private", None, p1, false), Visible);
    }

    #[test]
    fn records_keep_the_extra_properties() {
        let body = json!({
            "id": "i1", "name": "cirros", "status": "active", "disk_format": "qcow2",
            "container_format": "bare", "size": 1024, "virtual_size": null, "min_disk": 1,
            "min_ram": 64, "visibility": "public", "owner": "p1", "protected": false,
            "tags": ["a"], "self": "/v2/images/i1", "os_distro": "cirros", "hw_qemu_guest_agent": true,
        });
        let r = record(&body).unwrap();
        assert_eq!(r.id, "i1");
        assert_eq!(r.disk_format.as_deref(), Some("qcow2"));
        assert_eq!(
            (r.size, r.virtual_size, r.min_disk, r.min_ram),
            (Some(1024), None, 1, 64)
        );
        assert_eq!(
            r.properties,
            BTreeMap::from([
                ("hw_qemu_guest_agent".to_string(), "true".to_string()),
                ("os_distro".to_string(), "cirros".to_string()),
            ])
        );
        assert!(record(&json!({"name": "x"})).is_err());
    }
}
