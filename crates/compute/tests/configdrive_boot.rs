//! A config drive built by the compute service is found and read by a real guest booted under
//! libvirt + QEMU TCG: the guest prints the uuid it read from `openstack/latest/meta_data.json`.

use ferrostack_compute::configdrive;
use ferrostack_compute::metadata::{InstanceMetadata, random_seed};
use ferrostack_virt::testing::{Cleanup, driver, instance_dir, overlay, wait_for_console};
use ferrostack_virt::{Boot, GuestSpec, VirtDriver, VirtType};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_reads_its_identity_from_the_config_drive() {
    let driver = driver().await;
    let dir = instance_dir("configdrive");
    let uuid = uuid::Uuid::new_v4().to_string();
    let _cleanup = Cleanup {
        uuid: uuid.clone(),
        dir: dir.clone(),
    };
    let instance = InstanceMetadata {
        uuid: uuid.clone(),
        internal_id: 7,
        name: "drive-test".into(),
        hostname: "drive-test".into(),
        project_id: "p1".into(),
        availability_zone: "nova".into(),
        network_data: serde_json::json!({}),
        random_seed: random_seed(),
        ..Default::default()
    };
    let drive = dir.join("disk.config");
    configdrive::build(&instance, &drive).await.unwrap();
    let spec = GuestSpec {
        uuid: uuid.clone(),
        name: format!("ferrostack-test-{}", &uuid[..8]),
        display_name: "drive-test".into(),
        vcpus: 1,
        memory_mb: 256,
        root_disk: Some(overlay(&dir)),
        config_drive: Some(drive),
        boot: Boot::Kernel {
            kernel: dir.join("vmlinuz"),
            initrd: Some(dir.join("initrd.img")),
            cmdline: "console=ttyS0 ferrostack.metadata_timeout=1".into(),
        },
        console_log: dir.join("console.log"),
        virt_type: VirtType::Qemu,
        vnc_listen: None,
        interfaces: Vec::new(),
        start_paused: false,
        volumes: Vec::new(),
    };
    driver.spawn(&spec).await.unwrap();
    let console = wait_for_console(
        &spec.console_log,
        &format!("FERROSTACK-GUEST: configdrive uuid={uuid}"),
        Duration::from_secs(180),
    )
    .await;
    driver.destroy(&uuid).await.unwrap();
    assert!(console.contains("FERROSTACK-GUEST: boot"));
}
