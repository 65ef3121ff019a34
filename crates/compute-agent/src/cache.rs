//! The host's image cache (Nova's `_base`): `<instances_path>/_base/<sha1 of the image id>`.
//!
//! - Disk images are stored **raw** (Nova's `force_raw_images`): downloaded to a temporary name,
//!   inspected with the format inspector (no backing file, no external data file, content of the
//!   declared `disk_format`) *before* `qemu-img` reads them, converted with
//!   `qemu-img convert -f <detected> -O raw` when they are not raw, fsynced and renamed into
//!   place. An entry under its final name is therefore always complete and safe.
//! - Kernel and ramdisk images (`aki`/`ari`) are cached the same way but kept as they are.
//! - One download per image at a time (an async lock per entry): concurrent builds of the same
//!   image wait for the first one and share its entry.
//! - Temporary files are named `tmp-*`; [`ImageCache::remove_leftovers`] removes those a crash
//!   left behind.

use crate::host;
use crate::images::{ImageNotFound, ImageSource};
use ferrostack_compute::rpc::ImageRef;
use ferrostack_image_format::{DiskFormat, Inspection};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// The cache directory's name under the instances path.
pub const BASE_DIR: &str = "_base";
/// Prefix of the cache's temporary files.
pub const TEMP_PREFIX: &str = "tmp-";

/// An image's file name in the cache: the hex sha1 of its id (Nova's
/// `imagecache.get_cache_fname`).
pub fn cache_name(image_id: &str) -> String {
    openssl::sha::sha1(image_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the cached file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A root disk image: stored raw.
    Disk,
    /// A kernel or ramdisk for direct kernel boot: stored as it is (must be raw content).
    KernelOrRamdisk,
}

/// A complete cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    pub path: PathBuf,
    /// Its size in bytes: the virtual disk size for a (raw) disk image.
    pub size: u64,
}

/// Why an image could not be cached.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The image itself is the problem (missing, unsafe, wrong format, unreadable by qemu).
    #[error("{0}")]
    Image(String),
    /// The host is (download failed, disk full, I/O error).
    #[error("{0:#}")]
    Host(anyhow::Error),
}

impl From<std::io::Error> for CacheError {
    fn from(e: std::io::Error) -> Self {
        CacheError::Host(e.into())
    }
}

fn unacceptable(image_id: &str, reason: impl std::fmt::Display) -> CacheError {
    CacheError::Image(format!("Image {image_id} is unacceptable: {reason}"))
}

/// The qemu-img input format of inspected content, `None` when it is already raw.
pub fn qemu_format(detected: DiskFormat) -> Option<&'static str> {
    match detected {
        DiskFormat::Raw | DiskFormat::Iso | DiskFormat::Ami | DiskFormat::Aki | DiskFormat::Ari => {
            None
        }
        DiskFormat::Qcow2 => Some("qcow2"),
        DiskFormat::Vmdk => Some("vmdk"),
        DiskFormat::Vhd => Some("vpc"),
        DiskFormat::Vhdx => Some("vhdx"),
        DiskFormat::Vdi => Some("vdi"),
        DiskFormat::Ploop => Some("parallels"),
    }
}

/// The `_base` directory of one host.
pub struct ImageCache {
    dir: PathBuf,
    source: Arc<dyn ImageSource>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageCache {
    /// The cache under `instances_path`, filled from `source`.
    pub fn new(instances_path: &Path, source: Arc<dyn ImageSource>) -> Self {
        ImageCache {
            dir: instances_path.join(BASE_DIR),
            source,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where image `image_id` is (or will be) cached.
    pub fn path_of(&self, image_id: &str) -> PathBuf {
        self.dir.join(cache_name(image_id))
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(name.to_string()).or_default().clone()
    }

    /// The cache entry of `image`, downloading, checking and converting it first if needed.
    pub async fn fetch(
        &self,
        image: &ImageRef,
        kind: ImageKind,
    ) -> Result<CachedImage, CacheError> {
        let name = cache_name(&image.id);
        let path = self.dir.join(&name);
        let lock = self.lock_for(&name);
        let _guard = lock.lock().await;
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            return Ok(CachedImage {
                path,
                size: meta.len(),
            });
        }
        tokio::fs::create_dir_all(&self.dir).await?;
        // QEMU (its own user) reads base files through overlays.
        tokio::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755)).await?;
        let download = self.dir.join(format!("{TEMP_PREFIX}{name}.download"));
        let converted = self.dir.join(format!("{TEMP_PREFIX}{name}.raw"));
        let result = self.fill(image, kind, &download, &converted, &path).await;
        for temp in [&download, &converted] {
            let _ = tokio::fs::remove_file(temp).await;
        }
        let size = result?;
        tracing::info!(image = %image.id, path = %path.display(), size, "image cached");
        Ok(CachedImage { path, size })
    }

    async fn fill(
        &self,
        image: &ImageRef,
        kind: ImageKind,
        download: &Path,
        converted: &Path,
        path: &Path,
    ) -> Result<u64, CacheError> {
        let id = &image.id;
        let declared = DiskFormat::from_str(&image.disk_format).map_err(|e| unacceptable(id, e))?;
        if let Some(size) = image.size {
            let fs = host::filesystem(&self.dir)?;
            if (size.max(0) as u64) > fs.available {
                return Err(CacheError::Host(anyhow::anyhow!(
                    "not enough free space in {} for image {id} ({size} bytes, {} available)",
                    self.dir.display(),
                    fs.available
                )));
            }
        }
        self.source.fetch(id, download).await.map_err(|e| {
            match e.downcast_ref::<ImageNotFound>() {
                Some(_) => CacheError::Image(e.to_string()),
                None => CacheError::Host(e.context(format!("downloading image {id}"))),
            }
        })?;
        let inspection = inspect(download).await?;
        inspection
            .check(declared)
            .map_err(|e| unacceptable(id, format_args!("Base image failed safety check: {e}")))?;
        let input = match kind {
            ImageKind::KernelOrRamdisk => None,
            ImageKind::Disk => qemu_format(inspection.detected),
        };
        let ready = match input {
            None => download,
            Some(format) => {
                convert(download, format, converted)
                    .await
                    .map_err(|e| unacceptable(id, e))?;
                converted
            }
        };
        std::fs::File::open(ready)?.sync_all()?;
        let size = tokio::fs::metadata(ready).await?.len();
        tokio::fs::set_permissions(ready, std::fs::Permissions::from_mode(0o644)).await?;
        tokio::fs::rename(ready, path).await?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(size)
    }

    /// Removes the temporary files of interrupted downloads and conversions; returns how many.
    pub async fn remove_leftovers(&self) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                tracing::info!(path = %entry.path().display(), "removing a leftover cache file");
                tokio::fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Runs the format inspector over a whole file.
pub async fn inspect(path: &Path) -> std::io::Result<Inspection> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || ferrostack_image_format::inspect_file(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// `qemu-img convert -f <format> -O raw`; the input format is always given, never probed.
async fn convert(input: &Path, format: &str, output: &Path) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", format, "-O", "raw"])
        .arg(input)
        .arg(output)
        .output()
        .await?;
    if !out.status.success() {
        anyhow::bail!(
            "qemu-img could not convert it from {format} to raw: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_are_the_sha1_of_the_image_id() {
        // Nova: hashlib.sha1(image_id.encode()).hexdigest()
        assert_eq!(
            cache_name("abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(cache_name("abc").len(), 40);
    }

    #[test]
    fn raw_kinds_need_no_conversion() {
        assert_eq!(qemu_format(DiskFormat::Raw), None);
        assert_eq!(qemu_format(DiskFormat::Iso), None);
        assert_eq!(qemu_format(DiskFormat::Qcow2), Some("qcow2"));
        assert_eq!(qemu_format(DiskFormat::Vhd), Some("vpc"));
    }
}
