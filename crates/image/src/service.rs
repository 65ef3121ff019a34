//! The image service state and the data flows: upload, stage, import, delete, crash recovery.

use crate::db;
use crate::model::{
    FAILED_IMPORT_PROPERTY, IMPORT_TASK_PROPERTY, IMPORTING_TO_PROPERTY, Image, Task, now, status,
};
use crate::schemas::ImageValidator;
use ferrostack_api::ApiError;
use ferrostack_config::Config;
use ferrostack_image_format::{DiskFormat, FormatError, Inspection, Inspector};
use ferrostack_image_store::{ByteStream, FilesystemStore, ImageStore, StoreError, Stored};
use ferrostack_store::Store;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Disk formats offered (Glance's default list).
pub const DISK_FORMATS: [&str; 11] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Container formats offered (Glance's default list).
pub const CONTAINER_FORMATS: [&str; 8] = [
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// Id of the single data store.
pub const STORE_ID: &str = "file";

/// The image service.
pub struct Images {
    pub(crate) store: Store,
    pub(crate) data: Arc<dyn ImageStore>,
    pub(crate) staging: Arc<FilesystemStore>,
    pub(crate) config: ferrostack_config::ImageConfig,
    pub(crate) public_url: String,
    pub(crate) validator: ImageValidator,
    pub(crate) http: reqwest::Client,
}

/// Maps a store failure of the relational store to a 500.
pub(crate) fn db_error(e: ferrostack_store::StoreError) -> ApiError {
    ApiError::internal(e)
}

/// Maps an image-data store failure as Glance does.
fn data_error(e: StoreError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        StoreError::SizeLimitExceeded { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The incoming image is too large: The provided image is too large.",
        ),
        StoreError::StorageFull => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Image storage media is full: There is not enough disk space on the image storage media.",
        ),
        StoreError::PermissionDenied(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Insufficient permissions on image storage media.",
        ),
        StoreError::Source(e) => {
            ApiError::bad_request(format!("Error reading the image data: {e}"))
        }
        other => ApiError::internal(other),
    }
}

/// The user-facing refusal of data that failed format inspection (415, as Glance).
fn format_refusal(e: &FormatError) -> ApiError {
    let detail = match e {
        FormatError::Unsafe(why) => format!("Image failed safety checks: {why}"),
        FormatError::Mismatch { detected, declared } => {
            format!("Image disk_format {declared} does not match stream data {detected}")
        }
    };
    ApiError::new(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, detail)
}

/// A stream that feeds every chunk to a format inspector on the way through.
fn inspected(stream: ByteStream<'static>, inspector: Arc<Mutex<Inspector>>) -> ByteStream<'static> {
    stream
        .map(move |chunk| {
            if let Ok(bytes) = &chunk {
                inspector
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .feed(bytes);
            }
            chunk
        })
        .boxed()
}

fn finish(inspector: Arc<Mutex<Inspector>>) -> Inspection {
    let inspector = match Arc::try_unwrap(inspector) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(shared) => shared.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    };
    inspector.finish()
}

/// Format verdict for an image's data: `Ok(virtual_size)` or the refusal. Only `bare`
/// containers are inspected, as in Glance, unless `always` (data about to be handed to
/// `qemu-img`).
fn verdict(image: &Image, inspection: &Inspection, always: bool) -> Result<Option<i64>, ApiError> {
    if !always && image.container_format.as_deref() != Some("bare") {
        return Ok(None);
    }
    let Some(declared) = image
        .disk_format
        .as_deref()
        .and_then(|d| d.parse::<DiskFormat>().ok())
    else {
        return Ok(None);
    };
    inspection.check(declared).map_err(|e| format_refusal(&e))?;
    Ok((inspection.virtual_size > 0).then_some(inspection.virtual_size as i64))
}

/// Glance's `validate_import_uri`: scheme, port and host filters, and the host must resolve.
pub(crate) async fn uri_allowed(config: &ferrostack_config::ImageConfig, uri: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return false;
    };
    if !config
        .web_download_allowed_schemes
        .iter()
        .any(|s| s == url.scheme())
    {
        return false;
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return false;
    };
    if config
        .web_download_disallowed_hosts
        .iter()
        .any(|h| h == host)
        || (!config.web_download_allowed_hosts.is_empty()
            && !config.web_download_allowed_hosts.iter().any(|h| h == host))
    {
        return false;
    }
    if let Some(port) = url.port()
        && !config.web_download_allowed_ports.is_empty()
        && !config.web_download_allowed_ports.contains(&port)
    {
        return false;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    // Hosts the operator allowed by name may be internal (e.g. a local mirror); any other
    // host must not lead the control plane to loopback, link-local (the metadata address) or
    // unspecified addresses.
    let trusted = config.web_download_allowed_hosts.iter().any(|h| h == host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return trusted || !is_internal(ip);
    }
    if bare.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return false;
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((bare, port)),
    );
    match lookup.await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && (trusted || !addrs.iter().any(|a| is_internal(a.ip())))
        }
        _ => false,
    }
}

/// Addresses web-download never fetches from unless the host is explicitly allowed.
fn is_internal(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast()
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(v4.into()))
        }
    }
}

impl Images {
    /// Opens the data stores, migrates the tables and repairs what a crash left behind.
    pub async fn open(config: &Config, store: Store) -> anyhow::Result<Arc<Images>> {
        store.migrate("image", crate::MIGRATIONS).await?;
        let image = config.image.clone();
        let data = Arc::new(FilesystemStore::with_id(
            STORE_ID,
            image.filesystem_store_datadir.clone(),
        )?);
        let staging = Arc::new(FilesystemStore::staging(image.node_staging_dir.clone())?);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        let images = Arc::new(Images {
            store,
            data,
            staging,
            validator: ImageValidator::new(&DISK_FORMATS, &CONTAINER_FORMATS),
            public_url: config.api.public_url.trim_end_matches('/').to_string(),
            config: image,
            http,
        });
        images.recover().await?;
        Ok(images)
    }

    /// The service's public base URL (`.../image`).
    pub fn base_url(&self) -> String {
        format!("{}/image", self.public_url)
    }

    /// Image `id` as a caller of `project` (any project when `admin`) may see it, with
    /// Glance's visibility rules (owner, public, community, or any membership of a shared
    /// image): what Nova asks Glance before it boots a server.
    pub async fn find_visible(
        &self,
        id: &str,
        project: Option<&str>,
        admin: bool,
    ) -> Result<Option<Image>, ferrostack_store::StoreError> {
        let Some(image) = db::get_image(&self.store, id).await? else {
            return Ok(None);
        };
        let owned = image.owner.is_some() && image.owner.as_deref() == project;
        let seen = admin
            || owned
            || matches!(image.visibility.as_str(), "public" | "community")
            || (image.visibility == "shared"
                && match project {
                    Some(p) => db::member(&self.store, id, p).await?.is_some(),
                    None => false,
                });
        Ok(seen.then_some(image))
    }

    /// Loads a live image.
    pub(crate) async fn load(&self, id: &str) -> Result<Option<Image>, ApiError> {
        db::get_image(&self.store, id).await.map_err(db_error)
    }

    /// Saves the whole `image` if nobody changed it since it was read and its status is still
    /// `expected`; `Ok(false)` otherwise.
    pub(crate) async fn save(&self, image: &mut Image, expected: &str) -> Result<bool, ApiError> {
        db::save_image(&self.store, image, expected)
            .await
            .map_err(db_error)
    }

    /// Saves the data-flow state of `image` (status, data, import properties) if its status is
    /// still `expected`; `Ok(false)` if it moved meanwhile (e.g. deleted).
    async fn save_state(&self, image: &Image, expected: &str) -> Result<bool, ApiError> {
        db::save_data_state(&self.store, image, expected)
            .await
            .map_err(db_error)
    }

    /// Bytes the owner may still store (None: unlimited).
    async fn remaining_bytes(&self, owner: Option<&str>) -> Result<Option<u64>, ApiError> {
        let limit = self.config.image_size_total;
        let Some(owner) = owner.filter(|_| limit >= 0) else {
            return Ok(None);
        };
        let (_, used) = db::usage(&self.store, owner).await.map_err(db_error)?;
        Ok(Some(limit.saturating_sub(used).max(0) as u64))
    }

    fn over_quota(remaining: u64) -> ApiError {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Image exceeds the storage quota: The size of the data will exceed the limit. \
                 {remaining} bytes remaining."
            ),
        )
    }

    /// Writes the data of `image` to the data store through the format inspector, with the
    /// size cap and the owner's remaining quota. Returns what was stored and the virtual size;
    /// on a refusal the data is removed again.
    async fn store_data(
        &self,
        image: &Image,
        body: ByteStream<'static>,
        declared_size: Option<u64>,
    ) -> Result<(Stored, Option<i64>), ApiError> {
        let remaining = self.remaining_bytes(image.owner.as_deref()).await?;
        if let (Some(r), Some(d)) = (remaining, declared_size)
            && d > r
        {
            return Err(Self::over_quota(r));
        }
        let cap = match remaining {
            Some(r) => r.min(self.config.image_size_cap),
            None => self.config.image_size_cap,
        };
        let inspector = Arc::new(Mutex::new(Inspector::new()));
        let stream = inspected(body, inspector.clone());
        let stored = match self.data.put(&image.id, stream, Some(cap)).await {
            Ok(s) => s,
            Err(StoreError::SizeLimitExceeded { .. })
                if remaining.is_some_and(|r| r < self.config.image_size_cap) =>
            {
                return Err(Self::over_quota(remaining.unwrap_or(0)));
            }
            Err(StoreError::Duplicate(_)) => {
                // Leftover data of an earlier attempt that crashed before recording it.
                let location = self.data_location(&image.id);
                let _ = self.data.delete(&location).await;
                return Err(ApiError::conflict(
                    "Stale data of an earlier upload was found and removed; retry the upload.",
                ));
            }
            Err(e) => return Err(data_error(e)),
        };
        let refusal = match declared_size {
            Some(d) if d != stored.size => Some(ApiError::bad_request(format!(
                "The image data is {} bytes but the request declared {d}.",
                stored.size
            ))),
            _ => None,
        };
        let inspection = finish(inspector);
        let verdict = match refusal {
            Some(e) => Err(e),
            None => verdict(image, &inspection, false),
        };
        match verdict {
            Ok(virtual_size) => Ok((stored, virtual_size)),
            Err(e) => {
                tracing::info!(image = %image.id, detected = inspection.format_name,
                    reason = %e.message, "image data refused");
                self.remove_data(&stored.location).await;
                Err(e)
            }
        }
    }

    fn data_location(&self, id: &str) -> String {
        format!(
            "file://{}/{}",
            self.config.filesystem_store_datadir.display(),
            id
        )
    }

    async fn remove_data(&self, location: &str) {
        if let Err(e) = self.data.delete(location).await
            && !matches!(e, StoreError::NotFound(_))
        {
            tracing::warn!(%location, error = %e, "removing image data");
        }
    }

    fn record(image: &mut Image, stored: &Stored, virtual_size: Option<i64>) {
        image.size = Some(stored.size as i64);
        image.checksum = Some(stored.checksum.clone());
        image.os_hash_algo = Some(ferrostack_image_store::HASH_ALGO.into());
        image.os_hash_value = Some(stored.multihash.clone());
        image.virtual_size = virtual_size;
        image.location = Some(stored.location.clone());
    }

    /// `PUT /v2/images/{id}/file` after policy: queued → saving → active, or back to queued.
    pub(crate) async fn upload(
        self: &Arc<Self>,
        mut image: Image,
        body: ByteStream<'static>,
        declared_size: Option<u64>,
    ) -> Result<(), ApiError> {
        if image.status != status::QUEUED {
            return Err(ApiError::conflict(format!(
                "Image status transition from {} to saving is not allowed",
                image.status
            )));
        }
        if let Some(msg) = image.formats_missing() {
            return Err(ApiError::bad_request(msg));
        }
        image.status = status::SAVING.into();
        image.updated_at = now();
        if !self.save_state(&image, status::QUEUED).await? {
            return Err(ApiError::conflict(
                "Image status transition from queued to saving is not allowed",
            ));
        }
        // The upload runs to its end even if the client's connection (and this future) goes
        // away, so the image is never left in `saving`.
        let this = self.clone();
        let task = tokio::spawn(async move {
            match this.store_data(&image, body, declared_size).await {
                Ok((stored, virtual_size)) => {
                    let mut done = image.clone();
                    Self::record(&mut done, &stored, virtual_size);
                    done.status = status::ACTIVE.into();
                    done.updated_at = now();
                    if this.save_state(&done, status::SAVING).await? {
                        return Ok(());
                    }
                    this.remove_data(&stored.location).await;
                    Err(ApiError::new(
                        axum::http::StatusCode::GONE,
                        format!(
                            "Image {} could not be found after upload. The image may have been \
                             deleted during the upload, cleaning up the chunks uploaded.",
                            image.id
                        ),
                    ))
                }
                Err(e) => {
                    let mut back = image.clone();
                    back.reset_to_queued();
                    back.updated_at = now();
                    this.save_state(&back, status::SAVING).await?;
                    Err(e)
                }
            }
        });
        task.await.map_err(ApiError::internal)?
    }

    /// `PUT /v2/images/{id}/stage` after policy: queued → uploading with the data staged.
    pub(crate) async fn stage(
        self: &Arc<Self>,
        mut image: Image,
        body: ByteStream<'static>,
    ) -> Result<(), ApiError> {
        if image.status != status::QUEUED {
            return Err(ApiError::conflict(format!(
                "Image status transition from {} to uploading is not allowed",
                image.status
            )));
        }
        image.status = status::UPLOADING.into();
        image.updated_at = now();
        if !self.save_state(&image, status::QUEUED).await? {
            return Err(ApiError::conflict(
                "Image status transition from queued to uploading is not allowed",
            ));
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            let cap = Some(this.config.image_size_cap);
            match this.staging.put(&image.id, body, cap).await {
                Ok(stored) => {
                    image.size = Some(stored.size as i64);
                    image.updated_at = now();
                    if this.save_state(&image, status::UPLOADING).await? {
                        return Ok(());
                    }
                    let _ = this.staging.delete(&stored.location).await;
                    Err(ApiError::conflict(format!(
                        "Image {} changed while its data was being staged.",
                        image.id
                    )))
                }
                Err(e) => {
                    let mut back = image.clone();
                    back.reset_to_queued();
                    back.updated_at = now();
                    this.save_state(&back, status::UPLOADING).await?;
                    Err(match e {
                        StoreError::Duplicate(_) => ApiError::conflict(format!(
                            "The image {} has data on staging",
                            image.id
                        )),
                        other => data_error(other),
                    })
                }
            }
        });
        task.await.map_err(ApiError::internal)?
    }

    fn staged_location(&self, id: &str) -> Option<String> {
        self.staging.location_for(id).ok()
    }

    async fn staged_exists(&self, id: &str) -> bool {
        match self.staged_location(id) {
            Some(location) => self.staging.get(&location, Some((0, 0))).await.is_ok(),
            None => false,
        }
    }

    /// Starts an import after the API checks: records the task, takes the import lock, moves
    /// the image to `importing` and runs the flow in the background.
    pub(crate) async fn start_import(
        self: &Arc<Self>,
        mut image: Image,
        method: String,
        uri: Option<String>,
        input: serde_json::Value,
        user_id: String,
        request_id: String,
    ) -> Result<(), ApiError> {
        let stamp = now();
        let task = Task {
            id: uuid::Uuid::new_v4().to_string(),
            image_id: image.id.clone(),
            status: "processing".into(),
            owner: image.owner.clone(),
            user_id,
            request_id,
            input,
            result: None,
            message: String::new(),
            created_at: stamp.clone(),
            updated_at: stamp.clone(),
        };
        let from = image.status.clone();
        image.status = status::IMPORTING.into();
        image.updated_at = stamp;
        image
            .properties
            .insert(IMPORT_TASK_PROPERTY.into(), task.id.clone());
        image
            .properties
            .insert(IMPORTING_TO_PROPERTY.into(), STORE_ID.into());
        image
            .properties
            .insert(FAILED_IMPORT_PROPERTY.into(), String::new());
        db::put_task(&self.store, &task).await.map_err(db_error)?;
        if !self.save_state(&image, &from).await? {
            return Err(ApiError::conflict(format!(
                "New operation on image '{}' is not permitted as prior operation is still in \
                 progress",
                image.id
            )));
        }
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.run_import(&image, &method, uri.as_deref()).await;
            this.finish_import(image, task, from, result).await;
        });
        Ok(())
    }

    /// GETs a web-download URI, following up to five redirects, each re-checked by the URI
    /// filter (as Glance does).
    async fn fetch(&self, uri: &str) -> Result<reqwest::Response, String> {
        let mut current =
            reqwest::Url::parse(uri).map_err(|e| format!("Invalid URI {uri}: {e}"))?;
        for _ in 0..=5 {
            let response = self
                .http
                .get(current.clone())
                .send()
                .await
                .map_err(|e| format!("Failed to download {current}: {e}"))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .filter(|_| status.is_redirection());
            let Some(location) = location else {
                return Err(format!("Failed to download {current}: HTTP {status}"));
            };
            let next = current
                .join(location)
                .map_err(|e| format!("Invalid redirect from {current}: {e}"))?;
            if !uri_allowed(&self.config, next.as_str()).await {
                return Err(format!("Redirect target does not pass filtering: {next}"));
            }
            current = next;
        }
        Err(format!("Too many redirects downloading {uri}"))
    }

    /// The import flow proper: data to staging (web-download), inspection, optional
    /// conversion, data to the store. Returns the stored data and virtual size.
    async fn run_import(
        &self,
        image: &Image,
        method: &str,
        uri: Option<&str>,
    ) -> Result<(Stored, Option<i64>, Option<String>), String> {
        if method == "web-download" {
            let response = self.fetch(uri.unwrap_or_default()).await?;
            let stream = ferrostack_image_store::byte_stream(response.bytes_stream());
            self.staging
                .put(&image.id, stream, Some(self.config.image_size_cap))
                .await
                .map_err(|e| format!("Failed to stage the downloaded data: {e}"))?;
        }
        let staged = self
            .staged_location(&image.id)
            .ok_or_else(|| "invalid image id".to_string())?;
        let mut target = image.clone();
        let convert_to = self.config.import_convert_to.trim();
        let mut converted_path = None;
        if !convert_to.is_empty() && image.disk_format.as_deref() != Some(convert_to) {
            // Inspect before qemu-img sees the file.
            let (_, stream) = self
                .staging
                .get(&staged, None)
                .await
                .map_err(|e| e.to_string())?;
            let inspector = Arc::new(Mutex::new(Inspector::new()));
            let mut s = inspected(stream, inspector.clone());
            while let Some(chunk) = s.next().await {
                chunk.map_err(|e| e.to_string())?;
            }
            drop(s);
            verdict(image, &finish(inspector), true).map_err(|e| e.message.to_string())?;
            let source = staged.trim_start_matches("file://").to_string();
            let output = format!("{source}.{convert_to}");
            let from = image.disk_format.clone().unwrap_or_else(|| "raw".into());
            let result = tokio::process::Command::new("qemu-img")
                .args(["convert", "-f", &from, "-O", convert_to, &source, &output])
                .output()
                .await
                .map_err(|e| format!("Running qemu-img convert failed: {e}"))?;
            if !result.status.success() {
                let _ = tokio::fs::remove_file(&output).await;
                return Err(format!(
                    "Image conversion to {convert_to} failed: {}",
                    String::from_utf8_lossy(&result.stderr).trim()
                ));
            }
            target.disk_format = Some(convert_to.to_string());
            converted_path = Some(output);
        }
        let stream: ByteStream<'static> = match &converted_path {
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| e.to_string())?;
                ferrostack_image_store::byte_stream(tokio_util::io::ReaderStream::new(file))
            }
            None => {
                self.staging
                    .get(&staged, None)
                    .await
                    .map_err(|e| e.to_string())?
                    .1
            }
        };
        let result = self.store_data(&target, stream, None).await;
        if let Some(path) = converted_path {
            let _ = tokio::fs::remove_file(path).await;
        }
        let (stored, virtual_size) = result.map_err(|e| e.message.to_string())?;
        Ok((stored, virtual_size, target.disk_format))
    }

    /// Records the outcome of an import: active with the data, or back to the status it came
    /// from (`uploading` keeps the staged data for glance-direct) with the failure noted.
    async fn finish_import(
        &self,
        mut image: Image,
        mut task: Task,
        from: String,
        result: Result<(Stored, Option<i64>, Option<String>), String>,
    ) {
        image.properties.remove(IMPORT_TASK_PROPERTY);
        image
            .properties
            .insert(IMPORTING_TO_PROPERTY.into(), String::new());
        image.updated_at = now();
        task.updated_at = image.updated_at.clone();
        let stored_location = result.as_ref().ok().map(|r| r.0.location.clone());
        match result {
            Ok((stored, virtual_size, disk_format)) => {
                Self::record(&mut image, &stored, virtual_size);
                image.disk_format = disk_format;
                image.status = status::ACTIVE.into();
                task.status = "success".into();
                task.result = Some(serde_json::json!({"image_id": image.id}));
            }
            Err(message) => {
                tracing::info!(image = %image.id, %message, "import failed");
                image.reset_to_queued();
                image
                    .properties
                    .insert(FAILED_IMPORT_PROPERTY.into(), STORE_ID.into());
                task.status = "failure".into();
                task.message = message;
            }
        }
        let _ = from;
        match self.save_state(&image, status::IMPORTING).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                // Deleted (or changed) meanwhile: the data must not outlive it.
                if let Some(location) = stored_location {
                    self.remove_data(&location).await;
                }
                task.status = "failure".into();
                task.message = "The image was deleted during the import.".into();
            }
        }
        if let Some(staged) = self.staged_location(&image.id) {
            let _ = self.staging.delete(&staged).await;
        }
        if let Err(e) = db::put_task(&self.store, &task).await {
            tracing::error!(error = %e, task = %task.id, "recording import task");
        }
    }

    /// Deletes an image: marked deleted first, then its data (staged and stored) removed.
    pub(crate) async fn delete(&self, image: &Image) -> Result<bool, ApiError> {
        if !db::mark_deleted(&self.store, &image.id, &now())
            .await
            .map_err(db_error)?
        {
            return Ok(false);
        }
        if let Some(location) = &image.location {
            self.remove_data(location).await;
        }
        if let Some(staged) = self.staged_location(&image.id) {
            let _ = self.staging.delete(&staged).await;
        }
        db::clear_deleted_location(&self.store, &image.id)
            .await
            .map_err(db_error)?;
        Ok(true)
    }

    /// Start-up repair: interrupted uploads go back to `queued`, interrupted imports back to
    /// where they came from, data of deleted images and data nobody references is removed.
    async fn recover(&self) -> anyhow::Result<()> {
        let busy = [status::SAVING, status::UPLOADING, status::IMPORTING];
        for mut image in db::images_in_status(&self.store, &busy).await? {
            let was = image.status.clone();
            let staged = self.staged_exists(&image.id).await;
            match was.as_str() {
                status::UPLOADING if staged => continue,
                status::IMPORTING => {
                    image.properties.remove(IMPORT_TASK_PROPERTY);
                    image
                        .properties
                        .insert(IMPORTING_TO_PROPERTY.into(), String::new());
                    image
                        .properties
                        .insert(FAILED_IMPORT_PROPERTY.into(), STORE_ID.into());
                    for mut task in db::tasks(&self.store, &image.id).await? {
                        if task.status == "processing" {
                            task.status = "failure".into();
                            task.message = "Interrupted by a restart of the image service.".into();
                            task.updated_at = now();
                            db::put_task(&self.store, &task).await?;
                        }
                    }
                }
                _ => {}
            }
            let size = image.size;
            image.reset_to_queued();
            if was == status::IMPORTING && staged {
                // glance-direct data is still staged: the import can simply be run again.
                image.status = status::UPLOADING.into();
                image.size = size;
            }
            image.updated_at = now();
            db::save_data_state(&self.store, &image, &was).await?;
            tracing::warn!(image = %image.id, from = %was, to = %image.status,
                "image operation interrupted by a restart: rolled back");
        }
        let mut known = HashSet::new();
        for (id, deleted, location) in db::locations(&self.store).await? {
            if deleted {
                self.remove_data(&location).await;
                db::clear_deleted_location(&self.store, &id).await?;
            } else {
                known.insert(location);
            }
        }
        let report = self.data.sweep(&known).await?;
        for orphan in report.orphans {
            tracing::warn!(location = %orphan, "removing image data no image refers to");
            self.remove_data(&orphan).await;
        }
        let mut staged_known = HashSet::new();
        for image in db::images_in_status(&self.store, &[status::UPLOADING]).await? {
            if let Some(location) = self.staged_location(&image.id) {
                staged_known.insert(location);
            }
        }
        let report = self.staging.sweep(&staged_known).await?;
        for orphan in report.orphans {
            let _ = self.staging.delete(&orphan).await;
        }
        // Outputs of a `qemu-img convert` interrupted by the crash: `<image id>.<format>`.
        for path in report.unrecognized {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let converted = name.split_once('.').is_some_and(|(id, ext)| {
                ferrostack_image_store::is_valid_image_id(id) && DISK_FORMATS.contains(&ext)
            });
            if converted {
                tracing::warn!(path = %path.display(), "removing an interrupted conversion");
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
        Ok(())
    }
}
