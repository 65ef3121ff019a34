//! Helpers for tests that boot the test guest (`make guest-image`) under the real libvirtd:
//! the guest files copied where QEMU can read them, qcow2 overlays, console waits and a guard
//! that removes the domain and its files whatever happens. Built with the `testing` feature.

use crate::libvirt::LibvirtDriver;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn guest_image_dir() -> PathBuf {
    std::env::var_os("FERROSTACK_GUEST_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/ferrostack/guest-image")
        })
}

/// A directory QEMU (running as its own user) can read, holding copies of the guest files.
pub fn instance_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferrostack-virt-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let source = guest_image_dir();
    for file in ["disk.qcow2", "vmlinuz", "initrd.img"] {
        let from = source.join(file);
        assert!(
            from.exists(),
            "{} is missing: run `make guest-image` (scripts/build-guest-image.sh)",
            from.display()
        );
        std::fs::copy(&from, dir.join(file)).unwrap();
    }
    dir
}

pub fn overlay(dir: &Path) -> PathBuf {
    let disk = dir.join("disk");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(dir.join("disk.qcow2"))
        .arg(&disk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    disk
}

pub async fn driver() -> LibvirtDriver {
    let uri = std::env::var("FERROSTACK_LIBVIRT_URI").unwrap_or_else(|_| "qemu:///system".into());
    LibvirtDriver::connect(&uri)
        .await
        .unwrap_or_else(|e| panic!("libvirtd at {uri} is needed (make test starts it): {e}"))
}

/// Waits for `marker` in the console log; returns the log.
pub async fn wait_for_console(log: &Path, marker: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_default()
            .replace('\r', "");
        if text.contains(marker) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "no {marker:?} on the console after {timeout:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Removes the test domain and its files even when an assertion fails half-way.
pub struct Cleanup {
    pub uuid: String,
    pub dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in [["destroy", &self.uuid], ["undefine", &self.uuid]] {
            let _ = std::process::Command::new("virsh")
                .args(["-q", "-c", "qemu:///system"])
                .args(args)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
