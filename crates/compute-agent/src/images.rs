//! Where image bytes come from: the [`ImageSource`] trait, and [`GlanceImageSource`], which
//! downloads them from the image service (`GET /v2/images/{id}/file`) as Nova's `glance` image
//! API does, checking the data's md5 against `Content-MD5`.

use crate::token::TokenSource;
use async_trait::async_trait;
use openssl::hash::{Hasher, MessageDigest};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Fetches an image's data.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// Writes the bytes of image `image_id` to `dest` (created or truncated). Returns
    /// [`ImageNotFound`] (inside the `anyhow::Error`) when the image does not exist or has no
    /// data.
    async fn fetch(&self, image_id: &str, dest: &Path) -> anyhow::Result<()>;
}

/// The image does not exist, or has no data (a build with it cannot succeed anywhere).
#[derive(Debug, thiserror::Error)]
#[error("Image {0} could not be found or has no data")]
pub struct ImageNotFound(pub String);

/// The HTTP client of the agent's own calls: a stalled server fails the request instead of
/// holding a build forever.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap_or_default()
}

/// Downloads from Glance v2 with a service token.
pub struct GlanceImageSource {
    /// The image endpoint without the version, e.g. `http://127.0.0.1:8774/image`.
    pub image_url: String,
    pub tokens: Arc<dyn TokenSource>,
    client: reqwest::Client,
}

impl GlanceImageSource {
    /// A source reading from the image service at `image_url`.
    pub fn new(image_url: &str, tokens: Arc<dyn TokenSource>) -> Self {
        GlanceImageSource {
            image_url: image_url.trim_end_matches('/').to_string(),
            tokens,
            client: http_client(),
        }
    }

    async fn get(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        let mut retried = false;
        loop {
            let token = self.tokens.token().await?;
            let response = self
                .client
                .get(url)
                .header("x-auth-token", &token)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && !retried {
                // The token was revoked or expired early: authenticate again, once.
                tracing::info!(%url, "the image service refused the token; authenticating again");
                self.tokens.invalidate(&token).await;
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }
}

/// Whether `header` (Glance's hex md5, or RFC 1864's base64) names `digest`.
pub fn md5_matches(header: &str, digest: &[u8]) -> bool {
    let header = header.trim();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    header.eq_ignore_ascii_case(&hex) || openssl::base64::encode_block(digest) == header
}

#[async_trait]
impl ImageSource for GlanceImageSource {
    async fn fetch(&self, image_id: &str, dest: &Path) -> anyhow::Result<()> {
        let url = format!("{}/v2/images/{image_id}/file", self.image_url);
        let mut response = self.get(&url).await?;
        let status = response.status();
        // 204: the image has no data (queued).
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::NO_CONTENT {
            return Err(ImageNotFound(image_id.to_string()).into());
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("GET {url} answered {status}: {text}");
        }
        let expected_md5 = response
            .headers()
            .get("content-md5")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut md5 = Hasher::new(MessageDigest::md5())?;
        let mut file = tokio::fs::File::create(dest).await?;
        let mut bytes = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("reading image {image_id}: {e}"))?
        {
            md5.update(&chunk)?;
            file.write_all(&chunk).await?;
            bytes += chunk.len() as u64;
        }
        file.flush().await?;
        file.sync_all().await?;
        let digest = md5.finish()?;
        if let Some(expected) = expected_md5
            && !md5_matches(&expected, &digest)
        {
            anyhow::bail!(
                "Image {image_id}: the downloaded data ({bytes} bytes) does not match its checksum {expected}"
            );
        }
        tracing::info!(image = image_id, bytes, "image downloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_is_accepted_in_hex_and_base64() {
        let digest = openssl::hash::hash(MessageDigest::md5(), b"hello").unwrap();
        assert!(md5_matches("5d41402abc4b2a76b9719d911017c592", &digest));
        assert!(md5_matches("5D41402ABC4B2A76B9719D911017C592", &digest));
        assert!(md5_matches("XUFAKrxLKna5cZ2REBfFkg==", &digest));
        assert!(!md5_matches("00000000000000000000000000000000", &digest));
    }
}
