//! One instance's files on the host (Nova's layout, `docs/design/compute-service.md` §12.2):
//!
//! ```text
//! <instances_path>/<uuid>/disk          qcow2 overlay over _base/<sha1(image id)> (raw)
//! <instances_path>/<uuid>/disk.config   config drive ISO
//! <instances_path>/<uuid>/console.log   serial console log (virtlogd)
//! <instances_path>/<uuid>/kernel        direct kernel boot: copies from the cache
//! <instances_path>/<uuid>/ramdisk
//! ```
//!
//! Every file is created under a temporary name and renamed, so a crash never leaves a
//! half-made file under its final name, and an existing file is never overwritten: a guest's
//! disk survives any re-run of a build, start or hard reboot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const GIB: u64 = 1 << 30;

/// The root disk's virtual size in bytes: the flavor's `root_gb`, or the image's virtual size
/// when `root_gb` is 0 or smaller than the image (the API refuses flavors smaller than the
/// image; the agent never shrinks a disk).
pub fn overlay_size(root_gb: u64, image_virtual_size: u64) -> u64 {
    root_gb.saturating_mul(GIB).max(image_virtual_size)
}

/// Whether `name` is an instance directory's name (a uuid).
pub fn is_instance_dir_name(name: &str) -> bool {
    uuid::Uuid::parse_str(name).is_ok() && name.len() == 36
}

/// The uuid-named directories directly under `instances_path`.
pub fn instance_dirs(instances_path: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(instances_path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type()?.is_dir() && is_instance_dir_name(&name) {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

/// The files of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFiles {
    dir: PathBuf,
}

impl InstanceFiles {
    /// The files of instance `uuid` under `instances_path`.
    pub fn new(instances_path: &Path, uuid: &str) -> Self {
        InstanceFiles {
            dir: instances_path.join(uuid),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk")
    }
    pub fn config_drive(&self) -> PathBuf {
        self.dir.join("disk.config")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("kernel")
    }
    pub fn ramdisk(&self) -> PathBuf {
        self.dir.join("ramdisk")
    }

    /// Whether the instance directory exists.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// Creates the directory (readable by QEMU's user) if needed.
    pub async fn create_dir(&self) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        tokio::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755)).await
    }

    /// Creates the qcow2 overlay `disk` over the raw `base` unless it exists; returns whether
    /// it was created.
    pub async fn ensure_overlay(&self, base: &Path, size: u64) -> anyhow::Result<bool> {
        let disk = self.disk();
        if tokio::fs::try_exists(&disk).await? {
            return Ok(false);
        }
        let partial = self.dir.join("disk.part");
        let out = tokio::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(base)
            .arg(&partial)
            .arg(size.to_string())
            .output()
            .await?;
        if !out.status.success() {
            let _ = tokio::fs::remove_file(&partial).await;
            anyhow::bail!(
                "qemu-img create of {} failed: {}",
                disk.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::fs::File::open(&partial)?.sync_all()?;
        tokio::fs::rename(&partial, &disk).await?;
        Ok(true)
    }

    /// Copies `source` to `dest` (one of this instance's files) unless `dest` exists.
    pub async fn ensure_copy(&self, source: &Path, dest: &Path) -> std::io::Result<()> {
        if tokio::fs::try_exists(dest).await? {
            return Ok(());
        }
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".part");
        tokio::fs::copy(source, &partial).await?;
        std::fs::File::open(&partial)?.sync_all()?;
        tokio::fs::rename(&partial, dest).await
    }

    /// Creates an empty `console.log` unless it exists (so the console can be read at once).
    pub async fn ensure_console_log(&self) -> std::io::Result<()> {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.console_log())
            .await
            .map(|_| ())
    }

    /// Removes the directory and everything in it (a missing directory is fine).
    pub async fn remove(&self) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(&self.dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_disk_is_the_flavor_size_unless_the_image_is_bigger() {
        let image = 64 << 20;
        assert_eq!(overlay_size(0, image), image);
        assert_eq!(overlay_size(1, image), GIB);
        assert_eq!(overlay_size(1, 3 * GIB), 3 * GIB);
        assert_eq!(overlay_size(20, 0), 20 * GIB);
    }

    #[test]
    fn only_uuid_names_are_instance_dirs() {
        assert!(is_instance_dir_name("6f1b8a52-0000-4000-8000-000000000001"));
        assert!(!is_instance_dir_name("_base"));
        assert!(!is_instance_dir_name("compute_id"));
        assert!(!is_instance_dir_name("6f1b8a5200004000800000000000000"));
        assert!(!is_instance_dir_name("6f1b8a52000040008000000000000001"));
    }

    #[tokio::test]
    async fn overlays_are_made_once_and_never_overwritten() {
        let root = std::env::temp_dir().join(format!("agent-files-{}", uuid::Uuid::new_v4()));
        let files = InstanceFiles::new(&root, "6f1b8a52-0000-4000-8000-000000000001");
        files.create_dir().await.unwrap();
        let base = root.join("base.raw");
        std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
        assert!(files.ensure_overlay(&base, 2 << 20).await.unwrap());
        let before = std::fs::read(files.disk()).unwrap();
        assert!(!files.ensure_overlay(&base, 4 << 20).await.unwrap());
        assert_eq!(std::fs::read(files.disk()).unwrap(), before);
        assert_eq!(
            instance_dirs(&root).unwrap(),
            vec!["6f1b8a52-0000-4000-8000-000000000001".to_string()]
        );
        files.remove().await.unwrap();
        files.remove().await.unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
