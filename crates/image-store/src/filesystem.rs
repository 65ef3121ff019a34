//! The `file` store: one file per image, named by the image id, directly in
//! the store directory (glance_store's `filesystem` driver, single data
//! directory).
//!
//! Writes go to `.<image-id>.<unique>.tmp` in the same directory (created
//! 0600, exclusively), are fsynced, then linked to `<image-id>` with
//! no-replace semantics (an existing image is a `Duplicate`, as in Glance) and
//! the directory is fsynced. A guard removes the temp file on every error path
//! and when the `put` future is dropped.
//!
//! Memory per `put`: incoming chunks are coalesced into writes of up to
//! [`WRITE_CHUNK`] bytes and handed to three blocking workers (file writer, md5,
//! sha512) through one-slot channels, so a put holds at most about
//! `2 * WRITE_CHUNK` in the pipeline plus the chunk being filled, whatever the
//! image size ([`FilesystemStore::peak_buffered_bytes`] records the high-water
//! mark).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use openssl::hash::{Hasher, MessageDigest};
use tokio::task::{JoinHandle, spawn_blocking};

use crate::{
    ByteStream, Capacity, ImageStore, StoreError, Stored, SweepReport, hex, is_valid_image_id,
};

/// Id of the staging store built by [`FilesystemStore::staging`] (Glance's
/// reserved `os_glance_staging_store`).
pub const STAGING_STORE_ID: &str = "os_glance_staging_store";

/// Size of the writes `put` issues (incoming chunks are coalesced up to it).
pub const WRITE_CHUNK: usize = 1024 * 1024;
/// Size of the chunks `get` yields.
pub const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the consumer by [`ImageStore::get`].
pub const READ_AHEAD: usize = 2;

const TEMP_PREFIX: &str = ".";
const TEMP_SUFFIX: &str = ".tmp";

/// Image data as files in one directory. See the module docs.
pub struct FilesystemStore {
    id: String,
    /// Canonical, absolute, UTF-8.
    dir: PathBuf,
    /// File names of the temp files of puts in progress in this process
    /// (`sweep` leaves them alone). Its lock also orders creating and
    /// committing a temp file against the guard removing it, so that a
    /// cancelled put cannot leave one behind.
    active: Arc<Mutex<HashSet<OsString>>>,
    seq: AtomicU64,
    peak_buffered: AtomicU64,
}

impl std::fmt::Debug for FilesystemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesystemStore")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FilesystemStore {
    /// The `file` store over `dir`, created (mode 0700, with its parents) if
    /// missing. An existing directory keeps its permissions.
    pub fn new(dir: PathBuf) -> Result<Self, StoreError> {
        Self::with_id("file", dir)
    }

    /// The staging store of interoperable import (`PUT /v2/images/{id}/stage`)
    /// over `dir`: same behaviour, id [`STAGING_STORE_ID`]. Use a directory
    /// distinct from the image store's, so that neither `sweep` reports the
    /// other's files as orphans.
    pub fn staging(dir: PathBuf) -> Result<Self, StoreError> {
        Self::with_id(STAGING_STORE_ID, dir)
    }

    /// A filesystem store with a given store id (multi-store
    /// `enabled_backends`, e.g. `fast:file`).
    pub fn with_id(id: impl Into<String>, dir: PathBuf) -> Result<Self, StoreError> {
        let id = id.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| StoreError::Config(format!("creating {}: {e}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| StoreError::Config(format!("resolving {}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(StoreError::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        if dir.to_str().is_none() {
            return Err(StoreError::Config(format!(
                "{} is not valid UTF-8",
                dir.display()
            )));
        }
        Ok(FilesystemStore {
            id,
            dir,
            active: Arc::new(Mutex::new(HashSet::new())),
            seq: AtomicU64::new(0),
            peak_buffered: AtomicU64::new(0),
        })
    }

    /// The (canonical) store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The location `put` gives the data of `image_id`.
    pub fn location_for(&self, image_id: &str) -> Result<String, StoreError> {
        if !is_valid_image_id(image_id) {
            return Err(StoreError::InvalidImageId(image_id.to_owned()));
        }
        Ok(self.location_of(OsStr::new(image_id)))
    }

    /// Largest amount of image data any single `put` of this store held in
    /// memory so far (diagnostics; bounded by construction, see module docs).
    pub fn peak_buffered_bytes(&self) -> u64 {
        self.peak_buffered.load(Ordering::Relaxed)
    }

    fn location_of(&self, name: &OsStr) -> String {
        // `dir` is UTF-8 (checked in `with_id`), names are UUIDs.
        format!("file://{}", self.dir.join(name).to_string_lossy())
    }

    fn note_buffered(&self, bytes: usize) {
        self.peak_buffered
            .fetch_max(bytes as u64, Ordering::Relaxed);
    }

    fn temp_name(&self, image_id: &str) -> OsString {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        OsString::from(format!(
            "{TEMP_PREFIX}{image_id}.{}-{nanos:x}-{seq}{TEMP_SUFFIX}",
            std::process::id()
        ))
    }

    /// Resolves a location of this store to the canonical path of an existing
    /// regular file directly in the store directory.
    async fn resolve(&self, location: &str) -> Result<PathBuf, StoreError> {
        let invalid = |reason| StoreError::InvalidLocation {
            location: location.to_owned(),
            reason,
        };
        let raw = location
            .strip_prefix("file://")
            .ok_or_else(|| invalid("not a file:// location"))?;
        let path = Path::new(raw);
        if !path.is_absolute() {
            return Err(invalid("not an absolute path"));
        }
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(invalid("'.' or '..' in the path"));
        }
        let name = path.file_name().ok_or_else(|| invalid("no file name"))?;
        if name.as_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
            return Err(invalid("not image data"));
        }
        let canonical = match tokio::fs::canonicalize(path).await {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Missing: NotFound only if it would have been ours.
                let parent = path.parent().ok_or_else(|| invalid("no parent"))?;
                return match tokio::fs::canonicalize(parent).await {
                    Ok(p) if p == self.dir => Err(StoreError::NotFound(location.to_owned())),
                    _ => Err(invalid("outside the store directory")),
                };
            }
            Err(e) => return Err(StoreError::from_io(e)),
        };
        if canonical.parent() != Some(self.dir.as_path()) {
            return Err(invalid("outside the store directory"));
        }
        if canonical
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(TEMP_PREFIX.as_bytes()))
        {
            return Err(invalid("not image data"));
        }
        Ok(canonical)
    }
}

type ActiveSet = Arc<Mutex<HashSet<OsString>>>;

fn lock(active: &ActiveSet) -> std::sync::MutexGuard<'_, HashSet<OsString>> {
    active.lock().unwrap_or_else(|p| p.into_inner())
}

fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "image upload cancelled")
}

/// Removes the temp file of a `put` unless disarmed, whatever the exit path
/// (error, panic, or the future being dropped).
///
/// The name is registered in the active set for the guard's lifetime; the
/// blocking tasks that create the temp file or link it to its final name do so
/// under the set's lock and only while the name is still registered, and the
/// guard unregisters and unlinks under the same lock. So a put dropped while
/// one of those tasks is queued or running leaves no file behind.
struct TempGuard {
    path: PathBuf,
    name: OsString,
    active: ActiveSet,
    armed: bool,
}

impl TempGuard {
    fn new(dir: &Path, name: OsString, active: &ActiveSet) -> Self {
        lock(active).insert(name.clone());
        let active = Arc::clone(active);
        TempGuard {
            path: dir.join(&name),
            name,
            active,
            armed: true,
        }
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        let mut active = lock(&self.active);
        active.remove(&self.name);
        if self.armed {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {
                    tracing::debug!(path = %self.path.display(), "removed partial image data")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    "unable to remove partial image data"
                ),
            }
        }
    }
}

struct Hashers {
    md5: Hasher,
    sha512: Hasher,
}

/// A chunk in the write pipeline; the last of its three holders to drop it takes its size
/// off the pipeline's byte count.
struct Tracked {
    bytes: Bytes,
    alive: Arc<AtomicU64>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive
            .fetch_sub(self.bytes.len() as u64, Ordering::Relaxed);
    }
}

type Chunk = Arc<Tracked>;

/// Writes and hashes on three blocking workers — the file writer, md5 and sha512 — each fed
/// through a one-slot channel, so each runs at its own pace (on its own core when there is
/// one) and no worker is ever more than two chunks ahead of the slowest.
struct Writer {
    senders: Vec<tokio::sync::mpsc::Sender<Chunk>>,
    file: JoinHandle<io::Result<File>>,
    md5: JoinHandle<io::Result<Hasher>>,
    sha512: JoinHandle<io::Result<Hasher>>,
    alive: Arc<AtomicU64>,
}

/// OpenSSL refused a digest (e.g. md5 disabled by a FIPS policy): a configuration problem.
fn hash_init(e: openssl::error::ErrorStack) -> StoreError {
    StoreError::Config(format!("OpenSSL cannot compute the image checksums: {e}"))
}

fn hash_worker(
    mut hasher: Hasher,
) -> (
    tokio::sync::mpsc::Sender<Chunk>,
    JoinHandle<io::Result<Hasher>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(1);
    let handle = spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk.bytes).map_err(io::Error::other)?;
        }
        Ok(hasher)
    });
    (tx, handle)
}

impl Writer {
    fn start(mut file: File, hashers: Hashers) -> Writer {
        let (file_tx, mut file_rx) = tokio::sync::mpsc::channel::<Chunk>(1);
        let file = spawn_blocking(move || {
            while let Some(chunk) = file_rx.blocking_recv() {
                file.write_all(&chunk.bytes)?;
            }
            Ok(file)
        });
        let (md5_tx, md5) = hash_worker(hashers.md5);
        let (sha_tx, sha512) = hash_worker(hashers.sha512);
        Writer {
            senders: vec![file_tx, md5_tx, sha_tx],
            file,
            md5,
            sha512,
            alive: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes handed to the workers and not yet processed by all of them.
    fn inflight_len(&self) -> usize {
        self.alive.load(Ordering::Relaxed) as usize
    }

    async fn write(&mut self, buf: Bytes) -> Result<(), StoreError> {
        self.alive.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let chunk = Arc::new(Tracked {
            bytes: buf,
            alive: Arc::clone(&self.alive),
        });
        for tx in &self.senders {
            if tx.send(Arc::clone(&chunk)).await.is_err() {
                // A worker stopped: its error comes out of `finish`.
                self.senders.clear();
                return Err(self.fail().await);
            }
        }
        Ok(())
    }

    async fn fail(&mut self) -> StoreError {
        self.senders.clear();
        match self.join().await {
            Err(e) => e,
            Ok(_) => StoreError::Io(io::Error::other("image write pipeline stopped")),
        }
    }

    async fn join(&mut self) -> Result<(File, Hashers), StoreError> {
        let file = (&mut self.file)
            .await
            .map_err(join_err)?
            .map_err(StoreError::from_io)?;
        let md5 = (&mut self.md5)
            .await
            .map_err(join_err)?
            .map_err(StoreError::Io)?;
        let sha512 = (&mut self.sha512)
            .await
            .map_err(join_err)?
            .map_err(StoreError::Io)?;
        Ok((file, Hashers { md5, sha512 }))
    }

    /// Waits for every worker to finish the data handed over; returns the file and hashers.
    async fn finish(mut self) -> Result<(File, Hashers), StoreError> {
        self.senders.clear();
        self.join().await
    }
}

/// fsync the data, link it under its final name without replacing anything,
/// drop the temp name, fsync the directory.
fn commit(
    file: File,
    tmp: &Path,
    dst: &Path,
    dir: &Path,
    image_id: &str,
    (active, name): (&ActiveSet, &OsStr),
) -> Result<(), StoreError> {
    file.sync_all().map_err(StoreError::from_io)?;
    drop(file);
    let active = lock(active);
    if !active.contains(name) {
        return Err(StoreError::Io(cancelled()));
    }
    match std::fs::hard_link(tmp, dst) {
        Ok(()) => {
            std::fs::remove_file(tmp).map_err(StoreError::from_io)?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(StoreError::Duplicate(image_id.to_owned()));
        }
        Err(e) => {
            // Filesystems without hard links: check, then rename.
            tracing::debug!(error = %e, "hard link failed, falling back to rename");
            if dst.symlink_metadata().is_ok() {
                return Err(StoreError::Duplicate(image_id.to_owned()));
            }
            std::fs::rename(tmp, dst).map_err(StoreError::from_io)?;
        }
    }
    drop(active);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::from_io)
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(io::Error::other(e))
}

#[async_trait]
impl ImageStore for FilesystemStore {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put(
        &self,
        image_id: &str,
        mut data: ByteStream<'_>,
        max_size: Option<u64>,
    ) -> Result<Stored, StoreError> {
        if !is_valid_image_id(image_id) {
            return Err(StoreError::InvalidImageId(image_id.to_owned()));
        }
        let final_path = self.dir.join(image_id);
        match tokio::fs::symlink_metadata(&final_path).await {
            Ok(_) => return Err(StoreError::Duplicate(image_id.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from_io(e)),
        }

        // The guard exists before the file does, so a drop at any await
        // below removes it.
        let mut guard = TempGuard::new(&self.dir, self.temp_name(image_id), &self.active);
        let (tmp_path, name, active) = (
            guard.path.clone(),
            guard.name.clone(),
            Arc::clone(&self.active),
        );
        let file = spawn_blocking(move || {
            let active = lock(&active);
            if !active.contains(&name) {
                return Err(cancelled());
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp_path)
        })
        .await
        .map_err(join_err)?;
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    // Not ours: leave it.
                    guard.armed = false;
                }
                return Err(StoreError::from_io(e));
            }
        };

        let mut writer = Writer::start(
            file,
            Hashers {
                md5: Hasher::new(MessageDigest::md5()).map_err(hash_init)?,
                sha512: Hasher::new(MessageDigest::sha512()).map_err(hash_init)?,
            },
        );
        let mut pending = BytesMut::new();
        let mut size: u64 = 0;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(StoreError::Source)?;
            if chunk.is_empty() {
                continue;
            }
            let new_size = size + chunk.len() as u64;
            if let Some(limit) = max_size
                && new_size > limit
            {
                return Err(StoreError::SizeLimitExceeded { limit });
            }
            size = new_size;
            self.note_buffered(writer.inflight_len() + pending.len() + chunk.len());
            if pending.is_empty() && chunk.len() >= WRITE_CHUNK {
                writer.write(chunk).await?;
            } else {
                if pending.capacity() == 0 {
                    pending.reserve(WRITE_CHUNK);
                }
                pending.extend_from_slice(&chunk);
                drop(chunk);
                if pending.len() >= WRITE_CHUNK {
                    writer.write(pending.split().freeze()).await?;
                }
            }
        }
        if !pending.is_empty() {
            writer.write(pending.split().freeze()).await?;
        }
        let (file, mut hashers) = writer.finish().await?;

        let (tmp, dst, dir, id, name, active) = (
            guard.path.clone(),
            final_path,
            self.dir.clone(),
            image_id.to_owned(),
            guard.name.clone(),
            Arc::clone(&self.active),
        );
        spawn_blocking(move || commit(file, &tmp, &dst, &dir, &id, (&active, &name)))
            .await
            .map_err(join_err)??;
        guard.armed = false;
        drop(guard);

        let stored = Stored {
            location: self.location_of(OsStr::new(image_id)),
            size,
            checksum: hex(&hashers.md5.finish().map_err(hash_init)?),
            multihash: hex(&hashers.sha512.finish().map_err(hash_init)?),
        };
        tracing::debug!(
            store = %self.id,
            location = %stored.location,
            size,
            checksum = %stored.checksum,
            "stored image data"
        );
        Ok(stored)
    }

    async fn get(
        &self,
        location: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(u64, ByteStream<'static>), StoreError> {
        let path = self.resolve(location).await?;
        let loc = location.to_owned();
        let file = spawn_blocking(move || {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .and_then(|f| f.metadata().map(|m| (f, m)))
        })
        .await
        .map_err(join_err)?;
        let (file, meta) = match file {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(loc)),
            Err(e) => return Err(StoreError::from_io(e)),
        };
        if !meta.is_file() {
            return Err(StoreError::InvalidLocation {
                location: loc,
                reason: "not a regular file",
            });
        }
        let size = meta.len();
        let (start, end_excl) = match range {
            None => (0, size),
            Some((start, end)) => {
                if start > end || start >= size {
                    return Err(StoreError::RangeNotSatisfiable { start, end, size });
                }
                (start, end.min(size - 1) + 1)
            }
        };
        Ok((size, read_stream(Arc::new(file), start, end_excl)))
    }

    async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let path = self.resolve(location).await?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                tracing::debug!(store = %self.id, location, "deleted image data");
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(location.to_owned()))
            }
            Err(e) => Err(StoreError::from_io(e)),
        }
    }

    async fn capacity(&self) -> Result<Option<Capacity>, StoreError> {
        let dir = self.dir.clone();
        let cap = spawn_blocking(move || statvfs(&dir))
            .await
            .map_err(join_err)?
            .map_err(StoreError::Io)?;
        Ok(Some(cap))
    }

    async fn sweep(&self, known: &HashSet<String>) -> Result<SweepReport, StoreError> {
        // File names (in this directory) of the known locations.
        let mut parents: HashMap<PathBuf, bool> = HashMap::new();
        let mut known_names: HashSet<OsString> = HashSet::new();
        for loc in known {
            let Some(raw) = loc.strip_prefix("file://") else {
                continue;
            };
            let path = Path::new(raw);
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let ours = match parents.get(parent) {
                Some(ours) => *ours,
                None => {
                    let ours = parent == self.dir
                        || tokio::fs::canonicalize(parent)
                            .await
                            .is_ok_and(|p| p == self.dir);
                    parents.insert(parent.to_owned(), ours);
                    ours
                }
            };
            if ours {
                known_names.insert(name.to_owned());
            }
        }

        let active = Arc::clone(&self.active);
        let dir = self.dir.clone();
        let (mut report, orphan_names) = spawn_blocking(move || -> io::Result<_> {
            let mut report = SweepReport::default();
            let mut orphans = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let bytes = name.as_bytes();
                let file_type = entry.file_type()?;
                if bytes.starts_with(TEMP_PREFIX.as_bytes())
                    && bytes.ends_with(TEMP_SUFFIX.as_bytes())
                    && file_type.is_file()
                {
                    // Checked and removed under the lock: a put in
                    // progress (registered before it creates its file) is
                    // never swept.
                    let active = lock(&active);
                    if active.contains(&name) {
                        continue;
                    }
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => report.removed_temp.push(entry.path()),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                } else if file_type.is_file() && name.to_str().is_some_and(is_valid_image_id) {
                    if !known_names.contains(&name) {
                        orphans.push(name);
                    }
                } else {
                    report.unrecognized.push(entry.path());
                }
            }
            Ok((report, orphans))
        })
        .await
        .map_err(join_err)?
        .map_err(StoreError::from_io)?;
        report.orphans = orphan_names.iter().map(|n| self.location_of(n)).collect();
        report.orphans.sort();
        report.removed_temp.sort();
        report.unrecognized.sort();
        if !report.removed_temp.is_empty() || !report.orphans.is_empty() {
            tracing::info!(
                store = %self.id,
                removed_temp = report.removed_temp.len(),
                orphans = report.orphans.len(),
                "swept image store"
            );
        }
        Ok(report)
    }
}

/// Chunks of `[start, end_excl)` of `file`, read with `pread` on the
/// blocking pool.
/// Streams `[start, end_excl)` of `file`: one blocking reader thread reads ahead
/// [`READ_CHUNK`]-sized chunks into a channel of [`READ_AHEAD`] slots, so reading the disk
/// overlaps sending; dropping the stream stops the reader.
fn read_stream(file: Arc<File>, start: u64, end_excl: u64) -> ByteStream<'static> {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
    spawn_blocking(move || {
        let mut pos = start;
        while pos < end_excl {
            let len = (end_excl - pos).min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; len];
            let item = file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            pos += len as u64;
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

#[allow(clippy::unnecessary_cast)] // the field types vary between platforms
fn statvfs(dir: &Path) -> io::Result<Capacity> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `st` is a plain C struct fully written by statvfs(3) on success;
    // `c_path` is a valid NUL-terminated string for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    let total = (st.f_blocks as u64).saturating_mul(frsize);
    let free = (st.f_bavail as u64).saturating_mul(frsize);
    Ok(Capacity {
        total,
        free,
        used: total.saturating_sub(free),
    })
}
