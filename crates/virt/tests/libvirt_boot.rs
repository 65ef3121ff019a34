//! Boots the test guest (`make guest-image`) under the real libvirtd with QEMU TCG and drives
//! its lifecycle through the driver, checking what the guest prints on its serial console.
//! Needs libvirtd (`FERROSTACK_LIBVIRT_URI`, default `qemu:///system`) and the guest image
//! (`FERROSTACK_GUEST_IMAGE`, default `~/.cache/ferrostack/guest-image`); `make test` provides
//! both.

use ferrostack_virt::libvirt::LibvirtDriver;
use ferrostack_virt::{Boot, GuestSpec, PowerState, VirtDriver, VirtType};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn guest_image_dir() -> PathBuf {
    std::env::var_os("FERROSTACK_GUEST_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/ferrostack/guest-image")
        })
}

/// A directory QEMU (running as its own user) can read, holding copies of the guest files.
fn instance_dir(tag: &str) -> PathBuf {
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

fn overlay(dir: &Path) -> PathBuf {
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

async fn driver() -> LibvirtDriver {
    let uri = std::env::var("FERROSTACK_LIBVIRT_URI").unwrap_or_else(|_| "qemu:///system".into());
    LibvirtDriver::connect(&uri)
        .await
        .unwrap_or_else(|e| panic!("libvirtd at {uri} is needed (make test starts it): {e}"))
}

/// Waits for `marker` in the console log; returns the log.
async fn wait_for_console(log: &Path, marker: &str, timeout: Duration) -> String {
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
struct Cleanup {
    uuid: String,
    dir: PathBuf,
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

fn spec(dir: &Path, boot: Boot) -> GuestSpec {
    let uuid = uuid::Uuid::new_v4().to_string();
    GuestSpec {
        name: format!("ferrostack-test-{}", &uuid[..8]),
        uuid,
        display_name: "virt test".into(),
        vcpus: 1,
        memory_mb: 256,
        root_disk: overlay(dir),
        config_drive: None,
        boot,
        console_log: dir.join("console.log"),
        virt_type: VirtType::Qemu,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_disk_guest_boots_stops_restarts_and_is_destroyed() {
    let driver = driver().await;
    let dir = instance_dir("disk");
    let spec = spec(&dir, Boot::Disk);
    let _cleanup = Cleanup {
        uuid: spec.uuid.clone(),
        dir: dir.clone(),
    };
    driver.spawn(&spec).await.unwrap();
    wait_for_console(
        &spec.console_log,
        "FERROSTACK-GUEST: boot",
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Running
    );
    let listed = driver.list().await.unwrap();
    let ours = listed.iter().find(|g| g.uuid == spec.uuid).expect("listed");
    assert_eq!(ours.name, spec.name);
    // Spawning again is idempotent.
    driver.spawn(&spec).await.unwrap();
    driver
        .power_off(&spec.uuid, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Shutdown
    );
    driver.power_on(&spec.uuid).await.unwrap();
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Running
    );
    driver.reboot(&spec.uuid, true).await.unwrap();
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Running
    );
    driver.destroy(&spec.uuid).await.unwrap();
    assert!(
        driver
            .list()
            .await
            .unwrap()
            .iter()
            .all(|g| g.uuid != spec.uuid)
    );
    // Destroying what is gone is fine; asking for its state is not.
    driver.destroy(&spec.uuid).await.unwrap();
    assert!(driver.power_state(&spec.uuid).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_and_initrd_guest_boots_with_its_command_line() {
    let driver = driver().await;
    let dir = instance_dir("kernel");
    let spec = spec(
        &dir,
        Boot::Kernel {
            kernel: dir.join("vmlinuz"),
            initrd: Some(dir.join("initrd.img")),
            cmdline: "console=ttyS0 ferrostack.metadata_timeout=1".into(),
        },
    );
    let _cleanup = Cleanup {
        uuid: spec.uuid.clone(),
        dir: dir.clone(),
    };
    driver.spawn(&spec).await.unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(200),
        wait_for_console(
            &spec.console_log,
            "FERROSTACK-GUEST: boot",
            Duration::from_secs(180),
        ),
    )
    .await;
    driver.destroy(&spec.uuid).await.unwrap();
    let console = outcome.expect("boot marker in time");
    assert!(
        console.contains("Linux version"),
        "the kernel logged to the serial console"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
