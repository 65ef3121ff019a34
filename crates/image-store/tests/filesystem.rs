//! Behaviour of the filesystem store.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferrostack_image_store::{
    ByteStream, FilesystemStore, ImageStore, STAGING_STORE_ID, StoreError, byte_stream,
    is_valid_image_id,
};
use futures_util::StreamExt;
use futures_util::stream;
use md5::Md5;
use sha2::{Digest, Sha512};

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "ferrostack-image-store-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TestDir(path)
    }
    fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn image_id(n: u32) -> String {
    format!("{n:08x}-1111-4222-8333-444455556666")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Deterministic test data.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// `data` split into chunks of `chunk` bytes.
fn chunked(data: &[u8], chunk: usize) -> ByteStream<'static> {
    let chunks: Vec<Result<Bytes, io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha512_hex(data: &[u8]) -> String {
    Sha512::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn collect(stream: ByteStream<'static>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = stream;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(
            chunk.len() <= ferrostack_image_store::READ_CHUNK,
            "read chunk of {} bytes",
            chunk.len()
        );
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn new_creates_directory_0700() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TestDir::new();
    let dir = tmp.path().join("a/b/images");
    let store = FilesystemStore::new(dir.clone()).unwrap();
    assert_eq!(store.id(), "file");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let staging = FilesystemStore::staging(tmp.path().join("staging")).unwrap();
    assert_eq!(staging.id(), STAGING_STORE_ID);
}

#[test]
fn image_ids_must_be_uuids() {
    assert!(is_valid_image_id("0123abcd-1111-4222-8333-444455556666"));
    assert!(is_valid_image_id("0123ABCD-1111-4222-8333-444455556666"));
    for bad in [
        "",
        "..",
        "../../etc/passwd",
        "0123abcd11114222833344445555666",
        "0123abcd-1111-4222-8333-44445555666/",
        "0123abcd-1111-4222-8333-4444555566g6",
        "0123abcd/1111-4222-8333-444455556666",
        "{0123abcd-1111-4222-8333-444455556}",
    ] {
        assert!(!is_valid_image_id(bad), "{bad:?}");
    }
}

#[tokio::test]
async fn round_trip_with_hashes() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let bytes = data(1_000_003);
    let id = image_id(1);
    // Odd chunk sizes, to exercise coalescing.
    let stored = store.put(&id, chunked(&bytes, 7_777), None).await.unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.checksum, md5_hex(&bytes));
    assert_eq!(stored.multihash, sha512_hex(&bytes));
    let expected_path = store.dir().join(&id);
    assert_eq!(
        stored.location,
        format!("file://{}", expected_path.display())
    );
    assert_eq!(store.location_for(&id).unwrap(), stored.location);
    assert_eq!(std::fs::read(&expected_path).unwrap(), bytes);
    // Only the final file is left.
    assert_eq!(entries(store.dir()), vec![id.clone()]);

    let (size, stream) = store.get(&stored.location, None).await.unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(collect(stream).await, bytes);
}

#[tokio::test]
async fn known_digests_of_small_inputs() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    // Empty image (Glance allows zero-byte images).
    let empty = store
        .put(&image_id(1), stream::empty().boxed(), None)
        .await
        .unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(empty.checksum, "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        empty.multihash,
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
         47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    );
    let abc = store
        .put(&image_id(2), chunked(b"abc", 1), Some(3))
        .await
        .unwrap();
    assert_eq!(abc.checksum, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        abc.multihash,
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
}

#[tokio::test]
async fn ranges() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let bytes = data(200_000);
    let loc = store
        .put(&image_id(1), chunked(&bytes, 65_536), None)
        .await
        .unwrap()
        .location;
    let last = bytes.len() as u64 - 1;
    for (start, end) in [
        (0, 0),
        (1000, 150_000),
        (65_535, 65_536),
        (last, last),
        (0, last),
    ] {
        let (size, stream) = store.get(&loc, Some((start, end))).await.unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(
            collect(stream).await,
            &bytes[start as usize..=end as usize],
            "range {start}-{end}"
        );
    }
    // An end past the data is clamped (HTTP semantics).
    let (_, stream) = store.get(&loc, Some((last - 1, last + 100))).await.unwrap();
    assert_eq!(collect(stream).await, &bytes[last as usize - 1..]);
    // A start past the data, or an inverted range, is not satisfiable.
    for (start, end) in [(last + 1, last + 5), (10, 5)] {
        assert!(matches!(
            store.get(&loc, Some((start, end))).await,
            Err(StoreError::RangeNotSatisfiable { .. })
        ));
    }
}

#[tokio::test]
async fn max_size_exceeded_leaves_nothing() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let bytes = data(3 * 1024 * 1024);
    let err = store
        .put(
            &image_id(1),
            chunked(&bytes, 100_000),
            Some(2 * 1024 * 1024),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SizeLimitExceeded { limit } if limit == 2 * 1024 * 1024),
        "{err:?}"
    );
    assert!(entries(store.dir()).is_empty());

    // Exactly at the limit is fine.
    let stored = store
        .put(
            &image_id(2),
            chunked(&bytes, 100_000),
            Some(bytes.len() as u64),
        )
        .await
        .unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
}

#[tokio::test]
async fn source_error_midway_leaves_nothing() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let chunks = (0..40)
        .map(|i| {
            if i == 30 {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "client gone",
                ))
            } else {
                Ok(Bytes::from(vec![i as u8; 100_000]))
            }
        })
        .collect::<Vec<_>>();
    let err = store
        .put(&image_id(1), stream::iter(chunks).boxed(), None)
        .await
        .unwrap_err();
    match err {
        StoreError::Source(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("unexpected {other:?}"),
    }
    assert!(entries(store.dir()).is_empty());
}

#[tokio::test]
async fn dropped_put_leaves_no_temp_file() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    // A client that sends some data and then never finishes.
    let endless = stream::iter((0..50).map(|_| Ok(Bytes::from(vec![7u8; 64 * 1024]))))
        .chain(stream::pending());
    let id = image_id(1);
    let put = store.put(&id, endless.boxed(), None);
    let res = tokio::time::timeout(Duration::from_millis(300), put).await;
    assert!(res.is_err(), "put finished on an endless stream");
    assert!(
        entries(store.dir()).is_empty(),
        "{:?}",
        entries(store.dir())
    );
    // The id is free again.
    store
        .put(&image_id(1), chunked(b"again", 2), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn temp_file_is_invisible_until_complete() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(1);
    let rx = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let id = image_id(1);
    let location = store.location_for(&id).unwrap();
    let put = store.put(&id, rx.boxed(), None);
    let feed = async {
        tx.send(Ok(Bytes::from_static(b"hello "))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Mid-upload: only a temp file, and the location does not resolve.
        let names = entries(store.dir());
        assert_eq!(names.len(), 1);
        assert!(
            names[0].starts_with('.') && names[0].ends_with(".tmp"),
            "{names:?}"
        );
        assert!(matches!(
            store.get(&location, None).await,
            Err(StoreError::NotFound(_))
        ));
        // A concurrent sweep leaves an in-progress write alone.
        let report = store.sweep(&HashSet::new()).await.unwrap();
        assert!(report.removed_temp.is_empty());
        tx.send(Ok(Bytes::from_static(b"world"))).await.unwrap();
        drop(tx);
    };
    let (stored, ()) = tokio::join!(put, feed);
    let stored = stored.unwrap();
    assert_eq!(stored.location, location);
    let (_, stream) = store.get(&location, None).await.unwrap();
    assert_eq!(collect(stream).await, b"hello world");
    assert_eq!(entries(store.dir()), vec![id]);
}

#[tokio::test]
async fn duplicate_put_is_refused() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let id = image_id(1);
    store.put(&id, chunked(b"first", 2), None).await.unwrap();
    let err = store
        .put(&id, chunked(b"second", 2), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(std::fs::read(store.dir().join(&id)).unwrap(), b"first");
    assert_eq!(entries(store.dir()), vec![id]);
}

#[tokio::test]
async fn delete_and_not_found() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let loc = store
        .put(&image_id(1), chunked(b"data", 4), None)
        .await
        .unwrap()
        .location;
    store.delete(&loc).await.unwrap();
    assert!(entries(store.dir()).is_empty());
    assert!(matches!(
        store.delete(&loc).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&loc, None).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn sweep_removes_temp_files_and_reports_orphans() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let kept = store
        .put(&image_id(1), chunked(b"kept", 4), None)
        .await
        .unwrap()
        .location;
    let orphan = store
        .put(&image_id(2), chunked(b"orphan", 4), None)
        .await
        .unwrap()
        .location;
    // Leftovers of an interrupted write (crash), and something unrelated.
    let leftover = store.dir().join(format!(".{}.1234-abc-0.tmp", image_id(3)));
    std::fs::write(&leftover, b"partial").unwrap();
    std::fs::write(store.dir().join("README"), b"not an image").unwrap();

    // A known location spelled through a non-canonical path still counts.
    let mut known = HashSet::new();
    known.insert(format!(
        "file://{}/../{}/{}",
        store.dir().display(),
        store.dir().file_name().unwrap().to_string_lossy(),
        image_id(1)
    ));
    known.insert("file:///elsewhere/00000000-0000-0000-0000-000000000000".to_owned());
    let report = store.sweep(&known).await.unwrap();
    assert_eq!(report.removed_temp, vec![leftover.clone()]);
    assert_eq!(report.orphans, vec![orphan.clone()]);
    assert_eq!(report.unrecognized, vec![store.dir().join("README")]);
    assert!(!leftover.exists());
    // Orphans are reported, not deleted.
    assert!(store.get(&orphan, None).await.is_ok());
    assert!(store.get(&kept, None).await.is_ok());

    // With the exact location as known, nothing is an orphan.
    let known: HashSet<String> = [kept, orphan].into_iter().collect();
    let report = store.sweep(&known).await.unwrap();
    assert!(report.orphans.is_empty() && report.removed_temp.is_empty());
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path().join("images")).unwrap();
    // A secret next to the store directory.
    let outside = tmp.path().join("secret");
    std::fs::write(&outside, b"secret").unwrap();
    let dir = store.dir().display().to_string();

    for bad_id in [
        "../secret",
        "..",
        "a/b",
        "",
        "00000000-0000-0000-0000-00000000000/",
    ] {
        assert!(matches!(
            store.put(bad_id, chunked(b"x", 1), None).await,
            Err(StoreError::InvalidImageId(_))
        ));
    }
    let symlink_name = image_id(9);
    std::os::unix::fs::symlink(&outside, store.dir().join(&symlink_name)).unwrap();
    let bad_locations = [
        format!("file://{dir}/../secret"),
        format!("file://{dir}/./../secret"),
        format!("file://{}", outside.display()),
        "file:///etc/passwd".to_owned(),
        format!("file://{dir}"),
        format!("file://{dir}/"),
        "file://relative/path".to_owned(),
        format!("http://{dir}/{}", image_id(1)),
        format!("{dir}/{}", image_id(1)),
        // Symlink inside the store pointing outside it.
        format!("file://{dir}/{symlink_name}"),
    ];
    for loc in &bad_locations {
        let get = store.get(loc, None).await;
        assert!(
            matches!(get, Err(StoreError::InvalidLocation { .. })),
            "get {loc}: {:?}",
            get.map(|(s, _)| s)
        );
        let del = store.delete(loc).await;
        assert!(
            matches!(del, Err(StoreError::InvalidLocation { .. })),
            "delete {loc}: {del:?}"
        );
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    // Temp files are not readable as image data either.
    let tmp_file = store.dir().join(format!(".{}.1-2-3.tmp", image_id(4)));
    std::fs::write(&tmp_file, b"partial").unwrap();
    assert!(matches!(
        store
            .get(&format!("file://{}", tmp_file.display()), None)
            .await,
        Err(StoreError::InvalidLocation { .. })
    ));
}

#[tokio::test]
async fn capacity_is_reported() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let cap = store
        .capacity()
        .await
        .unwrap()
        .expect("filesystem capacity");
    assert!(cap.total > 0);
    assert!(cap.free <= cap.total);
    assert_eq!(cap.used, cap.total - cap.free);
}

#[tokio::test]
async fn axum_style_streams_plug_in() {
    // `Body::into_data_stream()` yields `Result<Bytes, axum::Error>`; any
    // error type convertible to a boxed error works the same way.
    #[derive(Debug)]
    struct BodyError;
    impl std::fmt::Display for BodyError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("body error")
        }
    }
    impl std::error::Error for BodyError {}

    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let ok = stream::iter(vec![
        Ok::<_, BodyError>(Bytes::from_static(b"ab")),
        Ok(Bytes::from_static(b"cd")),
    ]);
    let stored = store
        .put(&image_id(1), byte_stream(ok), None)
        .await
        .unwrap();
    assert_eq!(stored.size, 4);
    let failing = stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err(BodyError)]);
    let err = store
        .put(&image_id(2), byte_stream(failing), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Source(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_put_has_bounded_memory() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    // Produced lazily, one chunk at a time, as a network body would hand
    // them over (hash correctness is covered by the other tests; hashing
    // 256 MiB twice in a debug build is slow).
    let chunk = Bytes::from(data(CHUNK));
    let source = stream::iter(0..TOTAL / CHUNK as u64)
        .map(move |_| Ok::<_, io::Error>(Bytes::copy_from_slice(&chunk)));
    let stored = store
        .put(&image_id(1), source.boxed(), Some(TOTAL))
        .await
        .unwrap();
    assert_eq!(stored.size, TOTAL);
    let peak = store.peak_buffered_bytes();
    assert!(
        peak > 0 && peak <= 3 * 1024 * 1024,
        "peak buffered {peak} bytes"
    );
    assert_eq!(
        std::fs::metadata(store.dir().join(image_id(1)))
            .unwrap()
            .len(),
        TOTAL
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_at_any_point_leaves_no_temp_file() {
    let tmp = TestDir::new();
    let store = FilesystemStore::new(tmp.path()).unwrap();
    let bytes = data(3 * 1024 * 1024 + 17);
    for i in 0..60u32 {
        let id = image_id(i);
        let put = store.put(&id, chunked(&bytes, 256 * 1024), None);
        // From "before the temp file exists" to "during fsync/commit".
        let res = tokio::time::timeout(Duration::from_micros(u64::from(i) * 150), put).await;
        let names = entries(store.dir());
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "cancelled after {}us: {names:?}",
            i * 150
        );
        if let Ok(stored) = res {
            assert_eq!(stored.unwrap().size, bytes.len() as u64);
            assert!(names.contains(&id));
        }
    }
}
