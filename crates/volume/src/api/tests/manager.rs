//! The volume manager over the real `file` backend: rows are written directly (as the API
//! does) and the work is cast; the tests poll the rows and look at the files.

use super::Harness;
use crate::api::attachments::new_attachment;
use crate::db::write_tx;
use crate::images::ImageApi;
use crate::model::{Attachment, Snapshot, Volume, VolumeSource, VolumeTask, fixtures};
use crate::service::Work;
use std::path::{Path, PathBuf};
use std::time::Duration;

const GIB: u64 = 1 << 30;

fn new_volume(size: i64, source: VolumeSource) -> Volume {
    Volume {
        user_id: "alice".into(),
        name: Some("v".into()),
        volume_type_id: "default".into(),
        source,
        task: Some(VolumeTask::Create),
        ..fixtures::volume(size)
    }
}

fn new_snapshot(volume: &Volume) -> Snapshot {
    fixtures::snapshot(volume)
}

async fn insert_volume(h: &Harness, volume: &Volume) {
    write_tx!(h.volumes.db, |tx| {
        async { tx.insert(volume).await }.await
    })
    .unwrap();
}

async fn insert_snapshot(h: &Harness, snapshot: &Snapshot) {
    write_tx!(h.volumes.db, |tx| {
        async { tx.insert(snapshot).await }.await
    })
    .unwrap();
}

/// Sets a task (and its transitional status) on a volume, as the API does, and casts it.
async fn start_task(h: &Harness, id: &str, status: &str, task: VolumeTask) {
    write_tx!(h.volumes.db, |tx| {
        async {
            let mut volume = tx.lock::<Volume>(id).await?.unwrap();
            volume.status = status.into();
            volume.task = Some(task.clone());
            tx.save(&volume).await
        }
        .await
    })
    .unwrap();
    h.volumes.cast(Work::Volume(id.into())).await;
}

/// Polls volume `id` until its status is not `transitional`; `None` when the row is gone.
async fn settled(h: &Harness, id: &str, transitional: &str) -> Option<Volume> {
    for _ in 0..600 {
        match h.volumes.db.get::<Volume>(id).await.unwrap() {
            None => return None,
            Some(v) if v.status != transitional && v.task.is_none() => return Some(v),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("volume {id} stayed {transitional}");
}

async fn settled_snapshot(h: &Harness, id: &str, transitional: &str) -> Option<Snapshot> {
    for _ in 0..600 {
        match h.volumes.db.get::<Snapshot>(id).await.unwrap() {
            None => return None,
            Some(s) if s.status != transitional => return Some(s),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("snapshot {id} stayed {transitional}");
}

fn volume_file(h: &Harness, id: &str) -> PathBuf {
    h.dir.join("volumes").join(format!("volume-{id}"))
}

fn snapshot_file(h: &Harness, id: &str) -> PathBuf {
    h.dir.join("volumes").join(format!("snapshot-{id}"))
}

/// The files left in the manager's scratch directory and the driver's temporary files (but
/// not the image data `MemoryImages` keeps beside an uploaded file, `*.uploaded`).
fn scratch_files(h: &Harness) -> Vec<String> {
    let volumes = h.dir.join("volumes");
    let mut names: Vec<String> = std::fs::read_dir(volumes.join(".tmp"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".uploaded"))
                .collect()
        })
        .unwrap_or_default();
    names.extend(
        std::fs::read_dir(&volumes)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp-")),
    );
    names
}

fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn has_pattern(path: &Path, format: &str, offset: u64, pattern: u8) -> bool {
    let out = std::process::Command::new("qemu-io")
        .args([
            "-f",
            format,
            "-c",
            &format!("read -P {pattern} {offset} 512"),
        ])
        .arg(path)
        .output()
        .unwrap();
    out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("verification failed")
}

fn write_pattern(path: &Path, format: &str, offset: u64, pattern: u8) {
    let cmd = format!("write -P {pattern} {offset} 512");
    run("qemu-io", &["-f", format, "-c", &cmd, text(path)]);
}

/// A qcow2 image of `size` in the harness directory with pattern 0x5a at 1 MiB.
fn qcow2_image(h: &Harness, name: &str, size: &str) -> PathBuf {
    let dir = h.dir.join("images");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    run(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", text(&path), size],
    );
    write_pattern(&path, "qcow2", 1 << 20, 0x5a);
    path
}

/// A blank volume made available by the manager.
/// Inserts `volume` (`creating`), casts its creation and waits until it settles.
async fn create_settled(h: &Harness, volume: &Volume) -> Volume {
    insert_volume(h, volume).await;
    h.volumes.cast(Work::Volume(volume.id.clone())).await;
    settled(h, &volume.id, "creating").await.unwrap()
}

async fn available_volume(h: &Harness, size: i64) -> Volume {
    let volume = create_settled(h, &new_volume(size, VolumeSource::Blank)).await;
    assert_eq!(volume.status, "available");
    volume
}

/// Inserts `snapshot` (`creating`), casts its creation and waits until it settles.
async fn snapshot_settled(h: &Harness, snapshot: &Snapshot) -> Snapshot {
    insert_snapshot(h, snapshot).await;
    h.volumes.cast(Work::Snapshot(snapshot.id.clone())).await;
    settled_snapshot(h, &snapshot.id, "creating").await.unwrap()
}

/// Extends the available volume `id` to `new_size` and waits until the extend settles.
async fn extend_settled(h: &Harness, id: &str, new_size: i64) -> Volume {
    let task = VolumeTask::Extend {
        new_size,
        previous_status: "available".into(),
    };
    start_task(h, id, "extending", task).await;
    settled(h, id, "extending").await.unwrap()
}

/// Deletes volume `id` (its snapshots too with `cascade`) and waits until the delete settles:
/// the row, or `None` when it is gone.
async fn delete_settled(h: &Harness, id: &str, cascade: bool) -> Option<Volume> {
    start_task(h, id, "deleting", VolumeTask::Delete { cascade }).await;
    settled(h, id, "deleting").await
}

#[tokio::test]
async fn a_blank_volume_is_created_as_a_file_of_its_size() {
    let h = Harness::open("mgr-blank").await;
    let volume = new_volume(1, VolumeSource::Blank);
    let done = create_settled(&h, &volume).await;
    assert_eq!(done.status, "available");
    assert_eq!(done.task, None);
    assert_eq!(done.host.as_deref(), Some("storage1@file#file"));
    assert!(done.launched_at.is_some() && done.updated_at.is_some());
    let file = volume_file(&h, &volume.id);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), GIB);
    let info = h
        .volumes
        .driver
        .connection_info(&done, &serde_json::json!({}))
        .unwrap();
    assert_eq!(info["data"]["device_path"], file.to_string_lossy().as_ref());
    assert!(scratch_files(&h).is_empty());
}

#[tokio::test]
async fn a_volume_is_created_from_a_qcow2_image_with_its_data() {
    let h = Harness::open("mgr-image").await;
    let image = qcow2_image(&h, "image.qcow2", "64M");
    h.images.add("img1", "qcow2", &image, 0);
    let volume = new_volume(
        1,
        VolumeSource::Image {
            image_id: "img1".into(),
        },
    );
    let done = create_settled(&h, &volume).await;
    assert_eq!(done.status, "available");
    let file = volume_file(&h, &volume.id);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), GIB);
    assert!(has_pattern(&file, "raw", 1 << 20, 0x5a));
    assert!(scratch_files(&h).is_empty(), "{:?}", scratch_files(&h));
}

#[tokio::test]
async fn unsafe_or_oversized_or_mislabelled_images_make_the_volume_error() {
    let h = Harness::open("mgr-bad-image").await;
    let base = qcow2_image(&h, "base.qcow2", "64M");
    let evil = h.dir.join("images").join("evil.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            text(&base),
            text(&evil),
        ],
    );
    h.images.add("backing", "qcow2", &evil, 0);
    let big = h.dir.join("images").join("big.raw");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 * GIB)
        .unwrap();
    h.images.add("big", "raw", &big, 0);
    h.images.add("mislabelled", "raw", &base, 0);
    for image_id in ["backing", "big", "mislabelled", "missing"] {
        let volume = new_volume(
            1,
            VolumeSource::Image {
                image_id: image_id.into(),
            },
        );
        let done = create_settled(&h, &volume).await;
        assert_eq!(done.status, "error", "{image_id}");
        assert_eq!(done.task, None);
        assert_eq!(done.host, None);
        assert!(!volume_file(&h, &volume.id).exists(), "{image_id}");
    }
    assert!(scratch_files(&h).is_empty(), "{:?}", scratch_files(&h));
}

#[tokio::test]
async fn volumes_are_created_from_snapshots_and_cloned_with_their_data() {
    let h = Harness::open("mgr-copies").await;
    let source = available_volume(&h, 1).await;
    write_pattern(&volume_file(&h, &source.id), "raw", 0, 0x11);

    let snapshot = new_snapshot(&source);
    let snap = snapshot_settled(&h, &snapshot).await;
    assert_eq!(
        (snap.status.as_str(), snap.progress.as_str()),
        ("available", "100%")
    );
    assert!(snapshot_file(&h, &snapshot.id).exists());
    write_pattern(&volume_file(&h, &source.id), "raw", 0, 0x22);

    let from_snap = new_volume(
        2,
        VolumeSource::Snapshot {
            snapshot_id: snapshot.id.clone(),
        },
    );
    assert_eq!(create_settled(&h, &from_snap).await.status, "available");
    let file = volume_file(&h, &from_snap.id);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 2 * GIB);
    assert!(has_pattern(&file, "raw", 0, 0x11));

    let clone = new_volume(
        1,
        VolumeSource::Volume {
            volume_id: source.id.clone(),
        },
    );
    assert_eq!(create_settled(&h, &clone).await.status, "available");
    assert!(has_pattern(&volume_file(&h, &clone.id), "raw", 0, 0x22));

    let orphan = new_volume(
        1,
        VolumeSource::Snapshot {
            snapshot_id: "nope".into(),
        },
    );
    assert_eq!(create_settled(&h, &orphan).await.status, "error");
}

/// The `volume-extended` events the manager sends.
#[derive(Default)]
struct SentEvents(std::sync::Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl crate::service::ComputeEvents for SentEvents {
    async fn volume_extended(&self, server_id: &str, volume_id: &str) -> anyhow::Result<()> {
        let mut sent = self.0.lock().unwrap();
        sent.push((server_id.to_string(), volume_id.to_string()));
        Ok(())
    }
}

#[tokio::test]
async fn extending_an_in_use_volume_tells_the_servers_holding_it() {
    let h = Harness::open("mgr-extend-in-use").await;
    let sent = std::sync::Arc::new(SentEvents::default());
    h.volumes.set_compute_events(sent.clone());
    let volume = available_volume(&h, 1).await;
    let holding = new_attachment(&volume, Some("server-a".into()), "attached", "rw".into());
    let reserved = new_attachment(&volume, Some("server-b".into()), "reserved", "rw".into());
    write_tx!(h.volumes.db, |tx| {
        async {
            tx.insert(&holding).await?;
            tx.insert(&reserved).await
        }
        .await
    })
    .unwrap();
    let task = VolumeTask::Extend {
        new_size: 2,
        previous_status: "in-use".into(),
    };
    start_task(&h, &volume.id, "extending", task).await;
    let done = settled(&h, &volume.id, "extending").await.unwrap();
    assert_eq!((done.status.as_str(), done.size), ("in-use", 2));
    let file = std::fs::metadata(volume_file(&h, &volume.id)).unwrap();
    assert_eq!(file.len(), 2 * GIB);
    // Only the server the volume is attached to is told.
    let told = sent.0.lock().unwrap().clone();
    assert_eq!(told, vec![("server-a".to_string(), volume.id.clone())]);
    // An available volume's extend tells no one.
    extend_settled(&h, &available_volume(&h, 1).await.id, 2).await;
    assert_eq!(sent.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn extend_grows_the_file_and_restores_the_status() {
    let h = Harness::open("mgr-extend").await;
    let volume = available_volume(&h, 1).await;
    let done = extend_settled(&h, &volume.id, 3).await;
    assert_eq!((done.status.as_str(), done.size), ("available", 3));
    assert_eq!(
        std::fs::metadata(volume_file(&h, &volume.id))
            .unwrap()
            .len(),
        3 * GIB
    );

    // The data gone: the extend fails, the size stays.
    std::fs::remove_file(volume_file(&h, &volume.id)).unwrap();
    let failed = extend_settled(&h, &volume.id, 4).await;
    assert_eq!(
        (failed.status.as_str(), failed.size),
        ("error_extending", 3)
    );
}

#[tokio::test]
async fn delete_removes_the_file_the_row_and_its_attachments() {
    let h = Harness::open("mgr-delete").await;
    let volume = available_volume(&h, 1).await;
    let attachment = new_attachment(&volume, None, "reserved", "rw".into());
    write_tx!(h.volumes.db, |tx| {
        async { tx.insert(&attachment).await }.await
    })
    .unwrap();
    assert!(delete_settled(&h, &volume.id, false).await.is_none());
    assert!(!volume_file(&h, &volume.id).exists());
    let left: Option<Attachment> = h.volumes.db.get(&attachment.id).await.unwrap();
    assert!(left.is_none());
}

#[tokio::test]
async fn a_cascade_delete_removes_the_snapshots_first() {
    let h = Harness::open("mgr-cascade").await;
    let volume = available_volume(&h, 1).await;
    let snapshot = new_snapshot(&volume);
    snapshot_settled(&h, &snapshot).await;

    // Without cascade, a volume with snapshots is not deleted.
    let refused = delete_settled(&h, &volume.id, false).await.unwrap();
    assert_eq!(refused.status, "error_deleting");
    assert!(volume_file(&h, &volume.id).exists());

    assert!(delete_settled(&h, &volume.id, true).await.is_none());
    assert!(
        h.volumes
            .db
            .get::<Snapshot>(&snapshot.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!snapshot_file(&h, &snapshot.id).exists());
    assert!(!volume_file(&h, &volume.id).exists());
}

#[tokio::test]
async fn a_snapshot_is_deleted_and_a_snapshot_of_a_missing_volume_errors() {
    let h = Harness::open("mgr-snapshots").await;
    let volume = available_volume(&h, 1).await;
    let mut snapshot = new_snapshot(&volume);
    snapshot_settled(&h, &snapshot).await;
    snapshot.status = "deleting".into();
    write_tx!(h.volumes.db, |tx| {
        async { tx.save(&snapshot).await }.await
    })
    .unwrap();
    h.volumes.cast(Work::Snapshot(snapshot.id.clone())).await;
    assert!(
        settled_snapshot(&h, &snapshot.id, "deleting")
            .await
            .is_none()
    );
    assert!(!snapshot_file(&h, &snapshot.id).exists());

    let mut ghost = new_volume(1, VolumeSource::Blank);
    ghost.id = "no-such-volume".into();
    let failed = snapshot_settled(&h, &new_snapshot(&ghost)).await;
    assert_eq!(failed.status, "error");
}

/// Uploads the available volume `volume_id` to the image `image_id`; the status comes back.
async fn upload_and_settle(h: &Harness, volume_id: &str, image_id: &str, disk_format: &str) {
    let task = VolumeTask::UploadImage {
        image_id: image_id.into(),
        disk_format: disk_format.into(),
        previous_status: "available".into(),
    };
    start_task(h, volume_id, "uploading", task).await;
    assert_eq!(
        settled(h, volume_id, "uploading").await.unwrap().status,
        "available"
    );
}

#[tokio::test]
async fn upload_to_image_writes_the_image_and_restores_the_status() {
    let h = Harness::open("mgr-upload").await;
    let volume = available_volume(&h, 1).await;
    write_pattern(&volume_file(&h, &volume.id), "raw", 4096, 0x44);
    let image = h
        .images
        .create("p1", "up", "qcow2", "bare", "private", false)
        .await
        .unwrap();
    upload_and_settle(&h, &volume.id, &image.id, "qcow2").await;
    let (record, data) = h.images.images.lock().unwrap()[&image.id].clone();
    assert_eq!(record.status, "active");
    assert!(has_pattern(&data.unwrap(), "qcow2", 4096, 0x44));
    assert!(scratch_files(&h).is_empty(), "{:?}", scratch_files(&h));

    // A format the backend cannot write: the image is deleted, the status restored.
    let image = h
        .images
        .create("p1", "bad", "iso", "bare", "private", false)
        .await
        .unwrap();
    upload_and_settle(&h, &volume.id, &image.id, "iso").await;
    assert!(!h.images.images.lock().unwrap().contains_key(&image.id));

    // Run again after a crash that followed the upload: the active image is kept as it is.
    let image = h
        .images
        .create("p1", "again", "raw", "bare", "private", false)
        .await
        .unwrap();
    let marker = h.dir.join("marker");
    std::fs::write(&marker, b"uploaded before the crash").unwrap();
    h.images.upload(&image.id, &marker).await.unwrap();
    let task = VolumeTask::UploadImage {
        image_id: image.id.clone(),
        disk_format: "raw".into(),
        previous_status: "in-use".into(),
    };
    start_task(&h, &volume.id, "uploading", task).await;
    let done = settled(&h, &volume.id, "uploading").await.unwrap();
    assert_eq!(done.status, "in-use");
    let size = h.images.images.lock().unwrap()[&image.id].0.size;
    assert_eq!(size, Some(25));
}

#[tokio::test]
async fn work_saved_while_the_manager_was_down_is_finished_at_its_start() {
    let h = Harness::with_config(
        "mgr-recovery",
        ferrostack_config::VolumeConfig::default(),
        false,
    )
    .await;
    let volume = new_volume(1, VolumeSource::Blank);
    insert_volume(&h, &volume).await;
    h.volumes.cast(Work::Volume(volume.id.clone())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = h
        .volumes
        .db
        .get::<Volume>(&volume.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.status, "creating");
    // The scratch file of a volume that is gone is removed at start.
    let scratch = h.dir.join("volumes").join(".tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("image-gone"), b"x").unwrap();
    // A half-written file from the crashed run is replaced.
    std::fs::write(
        h.dir
            .join("volumes")
            .join(format!("tmp-volume-{}", volume.id)),
        b"x",
    )
    .unwrap();

    let _manager = crate::manager::start(h.volumes.clone()).await.unwrap();
    let done = settled(&h, &volume.id, "creating").await.unwrap();
    assert_eq!(done.status, "available");
    assert_eq!(
        std::fs::metadata(volume_file(&h, &volume.id))
            .unwrap()
            .len(),
        GIB
    );
    assert!(scratch_files(&h).is_empty(), "{:?}", scratch_files(&h));

    // A snapshot left `creating` is finished by the next start as well.
    drop(_manager);
    let snapshot = new_snapshot(&done);
    insert_snapshot(&h, &snapshot).await;
    let _manager = crate::manager::start(h.volumes.clone()).await.unwrap();
    let snap = settled_snapshot(&h, &snapshot.id, "creating")
        .await
        .unwrap();
    assert_eq!(snap.status, "available");
}

#[tokio::test]
async fn qcow2_volumes_hold_image_data() {
    let config = ferrostack_config::VolumeConfig {
        volume_format: "qcow2".into(),
        ..Default::default()
    };
    let h = Harness::with_config("mgr-qcow2", config, true).await;
    let image = qcow2_image(&h, "image.qcow2", "64M");
    h.images.add("img", "qcow2", &image, 0);
    let volume = new_volume(
        2,
        VolumeSource::Image {
            image_id: "img".into(),
        },
    );
    assert_eq!(create_settled(&h, &volume).await.status, "available");
    let file = volume_file(&h, &volume.id);
    assert!(has_pattern(&file, "qcow2", 1 << 20, 0x5a));
    assert!(std::fs::metadata(&file).unwrap().len() < GIB);
}
