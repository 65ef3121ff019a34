//! Image data backends for the image service (the Rust counterpart of Glance's
//! `glance_store`).
//!
//! [`ImageStore`] is the backend trait; [`FilesystemStore`] is the first
//! implementation (`file` store, `file:///...` locations). S3 or Ceph RBD are
//! meant to be further implementations of the same trait.
//!
//! Streams are [`ByteStream`]s (`BoxStream` of `Result<Bytes, io::Error>`):
//! an axum request body plugs in with
//! `image_store::byte_stream(body.into_data_stream())`, and the stream returned
//! by [`ImageStore::get`] goes straight into `axum::body::Body::from_stream`.
//!
//! Staging for interoperable import (`PUT /v2/images/{id}/stage`) is a second
//! [`FilesystemStore`] over the staging directory, built with
//! [`FilesystemStore::staging`] (store id `os_glance_staging_store`, as Glance
//! names its internal staging store).

mod filesystem;

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use futures_util::stream::{BoxStream, Stream, StreamExt};

pub use filesystem::{FilesystemStore, READ_AHEAD, READ_CHUNK, STAGING_STORE_ID, WRITE_CHUNK};

/// A stream of image data chunks.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, io::Error>>;

/// Boxes any stream of byte chunks into a [`ByteStream`], turning its error
/// type into `io::Error` (e.g. `axum::body::Body::into_data_stream()`, whose
/// items are `Result<Bytes, axum::Error>`).
pub fn byte_stream<'a, S, E>(stream: S) -> ByteStream<'a>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'a,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'a,
{
    stream.map_err(io::Error::other).boxed()
}

/// What a successful [`ImageStore::put`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Location URI to record on the image (`file:///...` for the filesystem store).
    pub location: String,
    /// Bytes written (Glance `size`).
    pub size: u64,
    /// MD5 of the data, lower-case hex (Glance `checksum`).
    pub checksum: String,
    /// SHA-512 of the data, lower-case hex (Glance `os_hash_value`, with
    /// `os_hash_algo` = [`HASH_ALGO`]).
    pub multihash: String,
}

/// The `os_hash_algo` matching [`Stored::multihash`].
pub const HASH_ALGO: &str = "sha512";

/// Capacity of the storage behind a store, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Size of the underlying storage.
    pub total: u64,
    /// Space still available for image data (to unprivileged writers).
    pub free: u64,
    /// `total - free`.
    pub used: u64,
}

/// Result of [`ImageStore::sweep`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Leftovers of interrupted writes that were removed.
    pub removed_temp: Vec<PathBuf>,
    /// Locations of image data present in the store but not in `known`,
    /// sorted. Not touched: the caller decides (delete, or log).
    pub orphans: Vec<String>,
    /// Entries that are neither image data nor temp files (left alone).
    pub unrecognized: Vec<PathBuf>,
}

/// Errors of the image stores. The comments give the HTTP status a Glance
/// handler would map them to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The image id is not a UUID (400).
    #[error("invalid image id {0:?}")]
    InvalidImageId(String),
    /// The location is malformed, of another store, or outside the store (400,
    /// or a 500 when it came from the database).
    #[error("invalid location {location:?}: {reason}")]
    InvalidLocation {
        location: String,
        reason: &'static str,
    },
    /// No data at this location (404).
    #[error("image data not found at {0}")]
    NotFound(String),
    /// Data for this image id already exists in the store (409).
    #[error("image data for {0} already exists in the store")]
    Duplicate(String),
    /// The data is larger than the `max_size` given to `put` (413).
    #[error("image data exceeds the limit of {limit} bytes")]
    SizeLimitExceeded { limit: u64 },
    /// The requested range starts past the end of the data (416).
    #[error("range {start}-{end} is not satisfiable for {size} bytes of data")]
    RangeNotSatisfiable { start: u64, end: u64, size: u64 },
    /// No space left on the storage (413, Glance `StorageFull`).
    #[error("the image store is full")]
    StorageFull,
    /// The store may not write or delete there (403 / 500, Glance
    /// `StorageWriteDenied`).
    #[error("permission denied by the image store: {0}")]
    PermissionDenied(#[source] io::Error),
    /// Reading the incoming data failed (client went away, body error): 400
    /// or nothing to answer.
    #[error("reading the incoming image data failed: {0}")]
    Source(#[source] io::Error),
    /// Invalid store configuration (startup).
    #[error("invalid image store configuration: {0}")]
    Config(String),
    /// Any other storage I/O error (500).
    #[error("image store I/O error: {0}")]
    Io(#[source] io::Error),
}

impl StoreError {
    /// Maps a storage-side I/O error the way glance_store does (ENOSPC and
    /// EFBIG are `StorageFull`, EACCES/EPERM `StorageWriteDenied`).
    pub(crate) fn from_io(err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => StoreError::StorageFull,
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                StoreError::PermissionDenied(err)
            }
            _ => StoreError::Io(err),
        }
    }
}

/// A backend holding image data.
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Store id as shown in `/v2/info/stores` (e.g. `file`).
    fn id(&self) -> &str;

    /// Writes the data of `image_id` from a stream of chunks with bounded
    /// memory, computing size, md5 and sha512 on the way. Fails with
    /// [`StoreError::SizeLimitExceeded`] before writing past `max_size`. The
    /// data becomes visible only once complete; on any error, or when the
    /// future is dropped, nothing is left behind.
    async fn put(
        &self,
        image_id: &str,
        data: ByteStream<'_>,
        max_size: Option<u64>,
    ) -> Result<Stored, StoreError>;

    /// Opens the data at `location` for reading. `range` is an inclusive byte
    /// range `(start, end)` (HTTP `Range: bytes=start-end`); an `end` past the
    /// data is clamped to its last byte, a `start` past it is
    /// [`StoreError::RangeNotSatisfiable`]. Returns the total size of the data
    /// (not of the range) and the stream of the requested bytes.
    async fn get(
        &self,
        location: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(u64, ByteStream<'static>), StoreError>;

    /// Deletes the data at `location`; [`StoreError::NotFound`] when missing.
    async fn delete(&self, location: &str) -> Result<(), StoreError>;

    /// Capacity of the storage, if the backend knows it.
    async fn capacity(&self) -> Result<Option<Capacity>, StoreError>;

    /// Removes leftovers of interrupted writes and reports image data whose
    /// location is not in `known` (orphans), without deleting them.
    async fn sweep(&self, known: &HashSet<String>) -> Result<SweepReport, StoreError>;
}

/// Whether `id` is a UUID in its canonical hyphenated 8-4-4-4-12 form (either
/// case). Only such ids become file or object names.
pub fn is_valid_image_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}
