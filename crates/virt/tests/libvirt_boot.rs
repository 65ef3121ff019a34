//! Boots the test guest (`make guest-image`) under the real libvirtd with QEMU TCG and drives
//! its lifecycle through the driver, checking what the guest prints on its serial console.
//! Needs libvirtd (`FERROSTACK_LIBVIRT_URI`, default `qemu:///system`) and the guest image
//! (`FERROSTACK_GUEST_IMAGE`, default `~/.cache/ferrostack/guest-image`); `make test` provides
//! both.

use ferrostack_virt::testing::{Cleanup, driver, instance_dir, overlay, wait_for_console};
use ferrostack_virt::{Boot, GuestSpec, PowerState, VirtDriver, VirtType};
use std::path::Path;
use std::time::Duration;

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
