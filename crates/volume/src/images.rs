//! The image service as the volume manager uses it (Cinder's `image/glance.py`): read an
//! image's record, download its data, and upload a volume as a new image.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::Path;

/// What the volume service needs to know of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    /// Bytes of data.
    pub size: Option<i64>,
    /// Bytes the disk holds.
    pub virtual_size: Option<i64>,
    /// GiB.
    pub min_disk: i64,
    pub min_ram: i64,
    /// The image's other properties (copied into `volume_image_metadata`).
    pub properties: BTreeMap<String, String>,
}

/// The image service.
#[async_trait]
pub trait ImageApi: Send + Sync {
    /// The image `id` as the caller (`project`, `admin`) may see it, `None` when it does not
    /// exist or is not visible.
    async fn show(
        &self,
        id: &str,
        project: Option<&str>,
        admin: bool,
    ) -> anyhow::Result<Option<ImageRecord>>;

    /// Writes the image's data to `dest` (created or truncated).
    async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<()>;

    /// Creates a queued image owned by `project` (for `os-volume_upload_image`); returns its
    /// record.
    async fn create(
        &self,
        project: &str,
        name: &str,
        disk_format: &str,
        container_format: &str,
        visibility: &str,
        protected: bool,
    ) -> anyhow::Result<ImageRecord>;

    /// Uploads `src` as the data of the queued image `id`.
    async fn upload(&self, id: &str, src: &Path) -> anyhow::Result<()>;

    /// Deletes an image whose upload failed (absent is not an error).
    async fn delete(&self, id: &str) -> anyhow::Result<()>;
}
