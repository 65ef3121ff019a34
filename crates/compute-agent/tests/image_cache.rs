//! The `_base` image cache with the test guest's images and qemu-img: qcow2 stored raw, one
//! download for concurrent users, kernels kept as they are, unsafe or mislabelled images
//! refused before qemu-img reads them, and no partial files left behind.

mod common;

use common::{LocalImages, guest_file, guest_images, image};
use ferrostack_compute_agent::cache::{BASE_DIR, cache_name, inspect};
use ferrostack_compute_agent::{CacheError, ImageCache, ImageKind};
use ferrostack_image_format::DiskFormat;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("agent-cache-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(BASE_DIR))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qcow2_image_is_downloaded_once_and_stored_raw() {
    let dir = TempDir::new("raw");
    let images = Arc::new(guest_images());
    let cache = Arc::new(ImageCache::new(&dir.0, images.clone()));
    let disk = image("disk-image", "qcow2");
    let mut users = Vec::new();
    for _ in 0..3 {
        let (cache, disk) = (cache.clone(), disk.clone());
        users.push(tokio::spawn(async move {
            cache.fetch(&disk, ImageKind::Disk).await.unwrap()
        }));
    }
    let mut entries = Vec::new();
    for user in users {
        entries.push(user.await.unwrap());
    }
    assert_eq!(images.fetched(), 1, "concurrent users share one download");
    assert!(entries.iter().all(|e| e == &entries[0]));
    let entry = &entries[0];
    assert_eq!(
        entry.path,
        dir.0.join(BASE_DIR).join(cache_name("disk-image"))
    );
    // The test disk is 64 MiB virtual; stored raw, its file size is its virtual size.
    assert_eq!(entry.size, 64 << 20);
    assert_eq!(
        inspect(&entry.path).await.unwrap().detected,
        DiskFormat::Raw
    );
    assert_eq!(cache_files(&dir.0), vec![cache_name("disk-image")]);
    // Cached: no second download.
    cache.fetch(&disk, ImageKind::Disk).await.unwrap();
    assert_eq!(images.fetched(), 1);

    // A kernel is kept byte for byte.
    let kernel = cache
        .fetch(&image("kernel-image", "aki"), ImageKind::KernelOrRamdisk)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&kernel.path).unwrap(),
        std::fs::read(guest_file("vmlinuz")).unwrap()
    );
}

#[tokio::test]
async fn unsafe_missing_and_mislabelled_images_are_refused() {
    let dir = TempDir::new("refused");
    let bad = dir.0.join("backing.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(guest_file("disk.qcow2"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images = Arc::new(
        LocalImages::default()
            .with("backing", &bad)
            .with("kernel", &guest_file("vmlinuz")),
    );
    let cache = ImageCache::new(&dir.0, images);
    let refused = |e: CacheError| match e {
        CacheError::Image(message) => message,
        CacheError::Host(e) => panic!("not an image error: {e:#}"),
    };
    let e = cache
        .fetch(&image("backing", "qcow2"), ImageKind::Disk)
        .await
        .unwrap_err();
    let message = refused(e);
    assert!(
        message.contains("unacceptable") && message.contains("backing file"),
        "{message}"
    );
    // Raw content declared qcow2: qemu-img must never be told it is qcow2.
    let message = refused(
        cache
            .fetch(&image("kernel", "qcow2"), ImageKind::Disk)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("disk_format is qcow2"), "{message}");
    let message = refused(
        cache
            .fetch(&image("kernel", "floppy"), ImageKind::Disk)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("Invalid disk format"), "{message}");
    let message = refused(
        cache
            .fetch(&image("nope", "raw"), ImageKind::Disk)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("could not be found"), "{message}");
    assert!(cache_files(&dir.0).is_empty(), "nothing partial is left");

    // Leftovers of a crash are swept.
    std::fs::write(dir.0.join(BASE_DIR).join("tmp-abc.download"), b"x").unwrap();
    std::fs::write(dir.0.join(BASE_DIR).join("keep"), b"x").unwrap();
    assert_eq!(cache.remove_leftovers().await.unwrap(), 1);
    assert_eq!(cache_files(&dir.0), vec!["keep".to_string()]);
}
