//! The `file` backend: every volume is a file `<dir>/volume-<id>` (Cinder's `volume-%s` name
//! template) and every snapshot a full copy `<dir>/snapshot-<id>`, in the configured format
//! (`raw`, sparse, or `qcow2`). The directory can be local or an NFS mount shared with the
//! compute hosts at the same path; QEMU opens the files directly (`driver_volume_type: file`).
//!
//! - Every new file is written under a temporary name (`tmp-<name>`) in the same directory,
//!   flushed and renamed into place, so a file under its final name is always complete.
//! - Every operation is idempotent: creating what exists at the right size, deleting what is
//!   gone and extending to the current size all succeed, so the manager can run an operation
//!   again after a crash.
//! - `qemu-img` is always told the input format (`-f`), never left to probe: a raw volume's
//!   guest-written content must never be read as an image header. Existing qcow2 files are
//!   checked to have no backing or external data file before use.
//! - Copies run as child processes (killed if the operation is dropped), never on the runtime.

use crate::driver::{BackendStats, VolumeDriver};
use crate::model::{Snapshot, Volume};
use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Bytes in a GiB.
pub const GIB: u64 = 1 << 30;
/// Prefix of the driver's temporary files.
pub const TEMP_PREFIX: &str = "tmp-";
/// The manager's scratch directory under the volumes directory.
pub const WORK_DIR: &str = ".tmp";
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// The file format volumes are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A sparse file holding the disk's bytes.
    Raw,
    /// A thin qcow2 file (no backing file).
    Qcow2,
}

impl FileFormat {
    /// The qemu-img name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Raw => "raw",
            FileFormat::Qcow2 => "qcow2",
        }
    }

    fn parse(s: &str) -> anyhow::Result<FileFormat> {
        match s {
            "raw" => Ok(FileFormat::Raw),
            "qcow2" => Ok(FileFormat::Qcow2),
            other => anyhow::bail!("volume format {other:?} is not supported (raw or qcow2)"),
        }
    }
}

/// Volumes as files in a directory.
pub struct FileDriver {
    dir: PathBuf,
    format: FileFormat,
    capacity_gb: u64,
}

impl FileDriver {
    /// A driver keeping volumes in `dir` (created if missing, mode 0755 so that QEMU's user
    /// can reach the files) in `format` (`raw`/`qcow2`), reporting `capacity_gb`.
    pub fn new(dir: PathBuf, format: &str, capacity_gb: u64) -> anyhow::Result<FileDriver> {
        let format = FileFormat::parse(format)?;
        if dir.as_os_str().is_empty() {
            anyhow::bail!("[volume] volumes_dir is empty");
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the volumes directory {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        Ok(FileDriver {
            dir,
            format,
            capacity_gb,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The format of the files.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Where volume `id` is stored.
    pub fn volume_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("volume-{id}"))
    }

    /// Where snapshot `id` is stored.
    pub fn snapshot_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snapshot-{id}"))
    }

    fn temp_path(&self, final_path: &Path) -> PathBuf {
        let name = final_path.file_name().unwrap_or_default().to_string_lossy();
        self.dir.join(format!("{TEMP_PREFIX}{name}"))
    }

    /// The virtual size in bytes of one of the driver's files (`None` when it is missing).
    async fn virtual_size(&self, path: &Path) -> anyhow::Result<Option<u64>> {
        let path = path.to_path_buf();
        let format = self.format;
        blocking(move || match std::fs::File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
            Ok(file) => file_virtual_size(file, format, &path).map(Some),
        })
        .await
    }

    /// Makes sure an existing file may be handed to qemu as the configured format.
    async fn check_existing(&self, path: &Path) -> anyhow::Result<()> {
        match self.virtual_size(path).await? {
            Some(_) => Ok(()),
            None => anyhow::bail!("{} does not exist", path.display()),
        }
    }

    /// Writes `path` through its temporary name: `fill` creates the temporary file (at most
    /// `size` bytes of virtual size), which is then grown to `size`, flushed and renamed.
    /// Nothing is done when `path` already exists with virtual size `size`.
    async fn write_file<F, Fut>(&self, path: &Path, size: u64, fill: F) -> anyhow::Result<()>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        if self.virtual_size(path).await? == Some(size) {
            return Ok(());
        }
        let temp = self.temp_path(path);
        remove_if_present(&temp).await?;
        let result = async {
            fill(temp.clone()).await?;
            self.grow(&temp, size).await?;
            commit(&temp, path).await
        }
        .await;
        if result.is_err() {
            let _ = remove_if_present(&temp).await;
        }
        result
    }

    /// Grows `path` to `size` bytes of virtual size (never shrinks).
    async fn grow(&self, path: &Path, size: u64) -> anyhow::Result<()> {
        let current = self
            .virtual_size(path)
            .await?
            .with_context(|| format!("{} does not exist", path.display()))?;
        if current >= size {
            return Ok(());
        }
        match self.format {
            FileFormat::Raw => {
                let path = path.to_path_buf();
                blocking(move || {
                    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                    file.set_len(size)?;
                    Ok(())
                })
                .await
            }
            FileFormat::Qcow2 => {
                qemu_img([
                    "resize".as_ref(),
                    "-q".as_ref(),
                    "-f".as_ref(),
                    "qcow2".as_ref(),
                    path.as_os_str(),
                    size.to_string().as_ref(),
                ])
                .await
            }
        }
    }

    /// Copies `source` (a file of this driver) to `dest` through its temporary name, grown to
    /// `size` bytes.
    async fn copy_file(&self, source: &Path, dest: &Path, size: u64) -> anyhow::Result<()> {
        if self.virtual_size(dest).await? == Some(size) {
            return Ok(());
        }
        self.check_existing(source).await?;
        let format = self.format.as_str();
        self.write_file(dest, size, |temp| async move {
            convert(source, format, &temp, format).await
        })
        .await
    }

    /// The sum of the virtual sizes of the volume and snapshot files, in bytes.
    async fn allocated(&self) -> anyhow::Result<u64> {
        let mut total = 0u64;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("volume-") || name.starts_with("snapshot-")) {
                continue;
            }
            match self.virtual_size(&entry.path()).await {
                Ok(size) => total += size.unwrap_or(0),
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "volume file not sized");
                    total += entry.metadata().await.map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl VolumeDriver for FileDriver {
    fn backend_name(&self) -> &str {
        "file"
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.join(WORK_DIR)
    }

    /// A raw file grows by `set_len`, which needs no lock the guest's QEMU holds; a qcow2
    /// file is resized by `qemu-img`, which QEMU's image lock refuses while it is open.
    fn extends_attached(&self) -> bool {
        self.format == FileFormat::Raw
    }

    async fn stats(&self) -> anyhow::Result<BackendStats> {
        let total = self.capacity_gb as f64;
        let allocated = self.allocated().await? as f64 / GIB as f64;
        let dir = self.dir.clone();
        let available = blocking(move || Ok(filesystem_available(&dir)?)).await? as f64;
        let free = (total - allocated).min(available / GIB as f64).max(0.0);
        Ok(BackendStats {
            backend_name: self.backend_name().to_string(),
            storage_protocol: "file".into(),
            total_capacity_gb: total,
            free_capacity_gb: (free * 100.0).floor() / 100.0,
            thin_provisioning: true,
        })
    }

    async fn create_volume(&self, volume: &Volume) -> anyhow::Result<()> {
        let path = self.volume_path(&volume.id);
        let size = gib(volume.size)?;
        let format = self.format;
        self.write_file(&path, size, |temp| async move {
            match format {
                FileFormat::Raw => {
                    blocking(move || {
                        std::fs::File::create(&temp)?;
                        Ok(())
                    })
                    .await
                }
                FileFormat::Qcow2 => {
                    qemu_img([
                        "create".as_ref(),
                        "-q".as_ref(),
                        "-f".as_ref(),
                        "qcow2".as_ref(),
                        temp.as_os_str(),
                        size.to_string().as_ref(),
                    ])
                    .await
                }
            }
        })
        .await
    }

    async fn create_from_image(
        &self,
        volume: &Volume,
        image_file: &Path,
        format: &str,
    ) -> anyhow::Result<()> {
        let input = FileFormat::parse(format)?.as_str();
        let path = self.volume_path(&volume.id);
        let size = gib(volume.size)?;
        let output = self.format.as_str();
        self.write_file(&path, size, |temp| async move {
            convert(image_file, input, &temp, output).await?;
            let converted = self.virtual_size(&temp).await?.unwrap_or(0);
            if converted > size {
                anyhow::bail!(
                    "Image virtual size is {}GB and doesn't fit in a volume of size {}GB.",
                    converted.div_ceil(GIB),
                    volume.size
                );
            }
            Ok(())
        })
        .await
    }

    async fn create_from_snapshot(
        &self,
        volume: &Volume,
        snapshot: &Snapshot,
    ) -> anyhow::Result<()> {
        let source = self.snapshot_path(&snapshot.id);
        let dest = self.volume_path(&volume.id);
        self.copy_file(&source, &dest, gib(volume.size)?).await
    }

    async fn create_clone(&self, volume: &Volume, source: &Volume) -> anyhow::Result<()> {
        let from = self.volume_path(&source.id);
        let dest = self.volume_path(&volume.id);
        self.copy_file(&from, &dest, gib(volume.size)?).await
    }

    async fn delete_volume(&self, volume: &Volume) -> anyhow::Result<()> {
        let path = self.volume_path(&volume.id);
        remove_if_present(&self.temp_path(&path)).await?;
        remove_if_present(&path).await
    }

    async fn extend_volume(&self, volume: &Volume, new_size: i64) -> anyhow::Result<()> {
        let path = self.volume_path(&volume.id);
        self.grow(&path, gib(new_size)?).await
    }

    async fn create_snapshot(&self, snapshot: &Snapshot, volume: &Volume) -> anyhow::Result<()> {
        let dest = self.snapshot_path(&snapshot.id);
        if self.virtual_size(&dest).await?.is_some() {
            return Ok(());
        }
        let source = self.volume_path(&volume.id);
        let size = self
            .virtual_size(&source)
            .await?
            .with_context(|| format!("the data of volume {} is missing", volume.id))?;
        self.copy_file(&source, &dest, size).await
    }

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let path = self.snapshot_path(&snapshot.id);
        remove_if_present(&self.temp_path(&path)).await?;
        remove_if_present(&path).await
    }

    async fn copy_volume_to_file(
        &self,
        volume: &Volume,
        dest: &Path,
        disk_format: &str,
    ) -> anyhow::Result<()> {
        let output = qemu_output_format(disk_format)?;
        let source = self.volume_path(&volume.id);
        self.check_existing(&source).await?;
        remove_if_present(dest).await?;
        convert(&source, self.format.as_str(), dest, output).await
    }

    fn connection_info(&self, volume: &Volume, _connector: &Value) -> anyhow::Result<Value> {
        let path = self.volume_path(&volume.id);
        let file = std::fs::File::open(&path)
            .with_context(|| format!("the data of volume {} is missing", volume.id))?;
        file_virtual_size(file, self.format, &path)?;
        Ok(json!({
            "driver_volume_type": "file",
            "data": {
                "device_path": path.to_string_lossy(),
                "format": self.format.as_str(),
                "name": format!("volume-{}", volume.id),
                "access_mode": "rw",
            },
        }))
    }
}

/// The qemu-img output format for an image `disk_format`.
pub fn qemu_output_format(disk_format: &str) -> anyhow::Result<&'static str> {
    Ok(match disk_format {
        "raw" => "raw",
        "qcow2" => "qcow2",
        "vmdk" => "vmdk",
        "vdi" => "vdi",
        "vhd" => "vpc",
        "vhdx" => "vhdx",
        other => anyhow::bail!("disk format {other:?} cannot be written from a volume"),
    })
}

/// A size in GiB as bytes.
fn gib(size: i64) -> anyhow::Result<u64> {
    u64::try_from(size)
        .ok()
        .and_then(|s| s.checked_mul(GIB))
        .filter(|s| *s > 0)
        .with_context(|| format!("invalid volume size {size}"))
}

/// The virtual size of an open file of `format`; a qcow2 file must be a plain qcow2 image
/// (no backing file, no external data file), or it is refused.
fn file_virtual_size(
    mut file: std::fs::File,
    format: FileFormat,
    path: &Path,
) -> anyhow::Result<u64> {
    match format {
        FileFormat::Raw => Ok(file.metadata()?.len()),
        FileFormat::Qcow2 => {
            let mut header = [0u8; 104];
            let n = read_up_to(&mut file, &mut header)?;
            qcow2_virtual_size(&header[..n])
                .with_context(|| format!("{} is not a usable qcow2 volume", path.display()))
        }
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

/// The virtual size a qcow2 header announces, refusing a backing file or an external data
/// file (which this driver never creates).
pub fn qcow2_virtual_size(header: &[u8]) -> anyhow::Result<u64> {
    if header.len() < 72 || &header[..4] != QCOW2_MAGIC {
        anyhow::bail!("no qcow2 header");
    }
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if be_u64(header, 8) != 0 {
        anyhow::bail!("it has a backing file");
    }
    if version >= 3 {
        if header.len() < 80 {
            anyhow::bail!("truncated qcow2 header");
        }
        // Incompatible feature bit 2: external data file.
        if be_u64(header, 72) & 0b100 != 0 {
            anyhow::bail!("it has an external data file");
        }
    }
    Ok(be_u64(header, 24))
}

/// Bytes available to unprivileged users on the filesystem holding `path`.
fn filesystem_available(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `st` is a plain C struct that statvfs(3) fills on success; `c_path` is a valid
    // NUL-terminated string that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Runs blocking file work off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Removes a file; a missing one is fine.
async fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::new(e).context(format!("removing {}", path.display())))
        }
        _ => Ok(()),
    }
}

/// Flushes `temp`, makes it readable by QEMU's user and renames it to `path` (then flushes the
/// directory so that the rename survives a crash).
async fn commit(temp: &Path, path: &Path) -> anyhow::Result<()> {
    let (temp, path) = (temp.to_path_buf(), path.to_path_buf());
    blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&temp)?
            .sync_all()?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&temp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
}

/// `qemu-img convert -f <input format> -O <output format>`: the input format is always given.
async fn convert(input: &Path, from: &str, output: &Path, to: &str) -> anyhow::Result<()> {
    qemu_img([
        "convert".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        from.as_ref(),
        "-O".as_ref(),
        to.as_ref(),
        input.as_os_str(),
        output.as_os_str(),
    ])
    .await
}

/// Runs `qemu-img` (killed when the caller is dropped); its stderr is the error.
async fn qemu_img<'a>(args: impl IntoIterator<Item = &'a OsStr>) -> anyhow::Result<()> {
    let args: Vec<&OsStr> = args.into_iter().collect();
    let out = tokio::process::Command::new("qemu-img")
        .args(&args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running qemu-img")?;
    if !out.status.success() {
        anyhow::bail!(
            "qemu-img {} failed: {}",
            args.first()
                .map(|a| a.to_string_lossy())
                .unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{snapshot, volume};

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "ferrostack-file-driver-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn driver(name: &str, format: &str) -> (FileDriver, Dir) {
        let dir = temp_dir(name);
        let driver = FileDriver::new(dir.join("volumes"), format, 100).unwrap();
        (driver, Dir(dir))
    }

    /// `qemu-img create -q -f qcow2` with `args`.
    fn create_qcow2(args: &[&OsStr]) {
        let mut all: Vec<&OsStr> = ["create", "-q", "-f", "qcow2"].map(OsStr::new).to_vec();
        all.extend_from_slice(args);
        run("qemu-img", &all);
    }

    fn run(program: &str, args: &[&OsStr]) -> String {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `qemu-img info` of a file read as `format`.
    fn info(path: &Path, format: &str) -> Value {
        let out = run(
            "qemu-img",
            &[
                "info".as_ref(),
                "--output=json".as_ref(),
                "-f".as_ref(),
                format.as_ref(),
                path.as_os_str(),
            ],
        );
        serde_json::from_str(&out).unwrap()
    }

    /// Writes byte pattern `pattern` at `offset` (512 bytes) with qemu-io.
    fn write_pattern(path: &Path, format: &str, offset: u64, pattern: u8) {
        let cmd = format!("write -P {pattern} {offset} 512");
        run(
            "qemu-io",
            &[
                "-f".as_ref(),
                format.as_ref(),
                "-c".as_ref(),
                cmd.as_ref(),
                path.as_os_str(),
            ],
        );
    }

    /// Whether the 512 bytes at `offset` are `pattern` (qemu-io `read -P`).
    fn has_pattern(path: &Path, format: &str, offset: u64, pattern: u8) -> bool {
        let cmd = format!("read -P {pattern} {offset} 512");
        let out = std::process::Command::new("qemu-io")
            .args(["-f", format, "-c", &cmd])
            .arg(path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        out.status.success() && !stdout.contains("Pattern verification failed")
    }

    fn temp_files(driver: &FileDriver) -> Vec<String> {
        std::fs::read_dir(driver.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[tokio::test]
    async fn raw_volumes_are_sparse_files_created_deleted_and_extended_idempotently() {
        let (driver, _dir) = driver("raw", "raw");
        let mode = std::fs::metadata(driver.dir())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let vol = volume(1);
        driver.create_volume(&vol).await.unwrap();
        let path = driver.volume_path(&vol.id);
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            format!("volume-{}", vol.id)
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), GIB);
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 < 1 << 20, "the file is sparse");
        // Again: done already.
        assert!(!has_pattern(&path, "raw", 4096, 7));
        write_pattern(&path, "raw", 4096, 7);
        driver.create_volume(&vol).await.unwrap();
        assert!(
            has_pattern(&path, "raw", 4096, 7),
            "a second create keeps the data"
        );

        driver.extend_volume(&vol, 2).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GIB);
        driver.extend_volume(&vol, 2).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GIB);
        assert!(has_pattern(&path, "raw", 4096, 7));

        let info = driver.connection_info(&vol, &json!({"host": "h"})).unwrap();
        assert_eq!(
            info,
            json!({"driver_volume_type": "file", "data": {
                "device_path": path.to_string_lossy(), "format": "raw",
                "name": format!("volume-{}", vol.id), "access_mode": "rw"}})
        );
        assert!(path.is_absolute());

        driver.delete_volume(&vol).await.unwrap();
        assert!(!path.exists());
        driver.delete_volume(&vol).await.unwrap();
        assert!(driver.connection_info(&vol, &json!({})).is_err());
        assert!(
            driver.extend_volume(&vol, 3).await.is_err(),
            "no data to extend"
        );
        assert!(temp_files(&driver).is_empty());
    }

    #[tokio::test]
    async fn snapshots_and_clones_are_full_copies_grown_to_the_new_size() {
        for format in ["raw", "qcow2"] {
            let (driver, _dir) = driver(&format!("copies-{format}"), format);
            let vol = volume(1);
            driver.create_volume(&vol).await.unwrap();
            let path = driver.volume_path(&vol.id);
            write_pattern(&path, format, 0, 0x11);

            let snap = snapshot(&vol);
            driver.create_snapshot(&snap, &vol).await.unwrap();
            let snap_path = driver.snapshot_path(&snap.id);
            assert!(has_pattern(&snap_path, format, 0, 0x11), "{format}");
            // The volume goes on; the snapshot keeps the old data, and a second create keeps it.
            write_pattern(&path, format, 0, 0x22);
            driver.create_snapshot(&snap, &vol).await.unwrap();
            assert!(has_pattern(&snap_path, format, 0, 0x11), "{format}");

            let from_snap = volume(2);
            driver
                .create_from_snapshot(&from_snap, &snap)
                .await
                .unwrap();
            let from_snap_path = driver.volume_path(&from_snap.id);
            assert!(has_pattern(&from_snap_path, format, 0, 0x11), "{format}");
            assert_eq!(info(&from_snap_path, format)["virtual-size"], 2 * GIB);

            let clone = volume(3);
            driver.create_clone(&clone, &vol).await.unwrap();
            let clone_path = driver.volume_path(&clone.id);
            assert!(has_pattern(&clone_path, format, 0, 0x22), "{format}");
            assert_eq!(info(&clone_path, format)["virtual-size"], 3 * GIB);

            driver.delete_snapshot(&snap).await.unwrap();
            driver.delete_snapshot(&snap).await.unwrap();
            assert!(!snap_path.exists());
            assert!(
                driver
                    .create_from_snapshot(&volume(1), &snap)
                    .await
                    .is_err()
            );
            assert!(temp_files(&driver).is_empty(), "{format}");
        }
    }

    #[tokio::test]
    async fn qcow2_volumes_are_plain_qcow2_files() {
        let (driver, _dir) = driver("qcow2", "qcow2");
        let vol = volume(1);
        driver.create_volume(&vol).await.unwrap();
        let path = driver.volume_path(&vol.id);
        let info1 = info(&path, "qcow2");
        assert_eq!(info1["format"], "qcow2");
        assert_eq!(info1["virtual-size"], GIB);
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        driver.create_volume(&vol).await.unwrap();

        driver.extend_volume(&vol, 3).await.unwrap();
        assert_eq!(info(&path, "qcow2")["virtual-size"], 3 * GIB);
        driver.extend_volume(&vol, 3).await.unwrap();
        let connection = driver.connection_info(&vol, &json!({})).unwrap();
        assert_eq!(connection["data"]["format"], "qcow2");

        // A qcow2 file that names a backing file is never handed out or copied.
        let evil = volume(1);
        let evil_path = driver.volume_path(&evil.id);
        create_qcow2(&[
            "-F".as_ref(),
            "qcow2".as_ref(),
            "-b".as_ref(),
            path.as_os_str(),
            evil_path.as_os_str(),
        ]);
        let error = driver.connection_info(&evil, &json!({})).unwrap_err();
        assert!(format!("{error:#}").contains("backing file"), "{error:#}");
        assert!(driver.create_clone(&volume(1), &evil).await.is_err());
        assert!(driver.extend_volume(&evil, 2).await.is_err());
    }

    #[tokio::test]
    async fn volumes_from_images_are_converted_and_grown() {
        for format in ["raw", "qcow2"] {
            let (driver, dir) = driver(&format!("image-{format}"), format);
            let image = dir.0.join("image.qcow2");
            create_qcow2(&[image.as_os_str(), "64M".as_ref()]);
            write_pattern(&image, "qcow2", 1 << 20, 0x5a);
            let vol = volume(1);
            driver
                .create_from_image(&vol, &image, "qcow2")
                .await
                .unwrap();
            let path = driver.volume_path(&vol.id);
            assert_eq!(info(&path, format)["virtual-size"], GIB, "{format}");
            assert!(has_pattern(&path, format, 1 << 20, 0x5a), "{format}");
            // Again: done already.
            driver
                .create_from_image(&vol, &image, "qcow2")
                .await
                .unwrap();

            // Read as raw, the qcow2 image is its own bytes (never probed).
            let as_raw = volume(1);
            driver
                .create_from_image(&as_raw, &image, "raw")
                .await
                .unwrap();
            let as_raw_path = driver.volume_path(&as_raw.id);
            let copy = run(
                "qemu-io",
                &[
                    "-f".as_ref(),
                    format.as_ref(),
                    "-c".as_ref(),
                    "read -v 0 4".as_ref(),
                    as_raw_path.as_os_str(),
                ],
            );
            assert!(copy.contains("51 46 49 fb"), "{copy}");

            assert!(
                driver
                    .create_from_image(&volume(1), &image, "vmdk")
                    .await
                    .is_err()
            );
            assert!(temp_files(&driver).is_empty(), "{format}");
        }
    }

    #[tokio::test]
    async fn an_image_bigger_than_the_volume_leaves_no_file() {
        let (driver, dir) = driver("big-image", "raw");
        let image = dir.0.join("big.raw");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(GIB + 4096)
            .unwrap();
        let vol = volume(1);
        let error = driver
            .create_from_image(&vol, &image, "raw")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Image virtual size is 2GB and doesn't fit in a volume of size 1GB."
        );
        assert!(!driver.volume_path(&vol.id).exists());
        assert!(temp_files(&driver).is_empty());
    }

    #[tokio::test]
    async fn a_leftover_temporary_file_is_replaced() {
        let (driver, _dir) = driver("leftover", "qcow2");
        let vol = volume(1);
        let path = driver.volume_path(&vol.id);
        std::fs::write(driver.temp_path(&path), b"half written").unwrap();
        driver.create_volume(&vol).await.unwrap();
        assert_eq!(info(&path, "qcow2")["virtual-size"], GIB);
        assert!(temp_files(&driver).is_empty());
    }

    #[tokio::test]
    async fn volumes_are_copied_out_in_image_formats() {
        let (driver, dir) = driver("copy-out", "qcow2");
        let vol = volume(1);
        driver.create_volume(&vol).await.unwrap();
        write_pattern(&driver.volume_path(&vol.id), "qcow2", 0, 0x33);
        for (disk_format, qemu) in [
            ("raw", "raw"),
            ("qcow2", "qcow2"),
            ("vhd", "vpc"),
            ("vmdk", "vmdk"),
        ] {
            let dest = dir.0.join(format!("out.{disk_format}"));
            driver
                .copy_volume_to_file(&vol, &dest, disk_format)
                .await
                .unwrap();
            assert_eq!(info(&dest, qemu)["format"], qemu);
            assert!(has_pattern(&dest, qemu, 0, 0x33), "{disk_format}");
        }
        let error = driver
            .copy_volume_to_file(&vol, &dir.0.join("out.iso"), "iso")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("iso"), "{error}");
    }

    #[tokio::test]
    async fn stats_count_the_virtual_sizes_of_the_files() {
        let (driver, _dir) = driver("stats", "raw");
        let empty = driver.stats().await.unwrap();
        assert_eq!(empty.backend_name, "file");
        assert_eq!(empty.total_capacity_gb, 100.0);
        assert!(empty.thin_provisioning);
        assert!(empty.free_capacity_gb <= 100.0);
        let vol = volume(2);
        driver.create_volume(&vol).await.unwrap();
        driver.create_snapshot(&snapshot(&vol), &vol).await.unwrap();
        let used = driver.stats().await.unwrap();
        assert!(used.free_capacity_gb <= 96.0, "{used:?}");
    }

    #[test]
    fn qcow2_headers_with_a_data_file_are_refused() {
        let mut header = vec![0u8; 104];
        header[..4].copy_from_slice(QCOW2_MAGIC);
        header[7] = 3;
        header[24..32].copy_from_slice(&GIB.to_be_bytes());
        assert_eq!(qcow2_virtual_size(&header).unwrap(), GIB);
        header[79] = 0b100;
        assert!(qcow2_virtual_size(&header).is_err());
        assert!(qcow2_virtual_size(&[0u8; 104]).is_err());
        assert!(FileDriver::new(PathBuf::from("/tmp/x"), "vmdk", 1).is_err());
    }
}
