//! Boots the test guest (`make guest-image`) under the real libvirtd with QEMU TCG and drives
//! its lifecycle through the driver, checking what the guest prints on its serial console.
//! Needs libvirtd (`FERROSTACK_LIBVIRT_URI`, default `qemu:///system`) and the guest image
//! (`FERROSTACK_GUEST_IMAGE`, default `~/.cache/ferrostack/guest-image`); `make test` provides
//! both.

use ferrostack_virt::testing::{Cleanup, driver, instance_dir, overlay, wait_for_console};
use ferrostack_virt::{
    Boot, GuestInterface, GuestSpec, PowerState, VirtDriver, VirtError, VirtType,
};
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
        vnc_listen: Some("127.0.0.1".into()),
        interfaces: Vec::new(),
        start_paused: false,
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
    // The VNC server libvirt started on an automatic port greets like an RFB 3.8 server.
    let port = driver.vnc_port(&spec.uuid).await.unwrap();
    assert!(port >= 5900, "{port}");
    assert_eq!(&rfb_greeting(port).await, b"RFB 003.008\n");
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
    // A stopped guest has no VNC server (libvirt reports port -1).
    assert!(matches!(
        driver.vnc_port(&spec.uuid).await,
        Err(VirtError::ConsoleUnavailable(_))
    ));
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
    // Destroying what is gone is fine; asking for its state or console is not.
    driver.destroy(&spec.uuid).await.unwrap();
    assert!(driver.power_state(&spec.uuid).await.is_err());
    assert!(matches!(
        driver.vnc_port(&spec.uuid).await,
        Err(VirtError::NotFound(_))
    ));
}

/// Nova's network wait: the guest starts paused with its tap made by libvirt (for the network
/// agent to plug), stays paused through a repeated spawn, runs once resumed, and its tap goes
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_started_paused_has_its_tap_and_runs_once_resumed() {
    let driver = driver().await;
    let dir = instance_dir("paused");
    let mut spec = spec(&dir, Boot::Disk);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tap = format!("tapfs{}", &id[..8]);
    spec.interfaces = vec![GuestInterface {
        port_id: uuid::Uuid::new_v4().to_string(),
        mac_address: format!("fa:16:3e:{}:{}:{}", &id[8..10], &id[10..12], &id[12..14]),
        tap: tap.clone(),
        mtu: Some(1450),
    }];
    spec.start_paused = true;
    let _cleanup = Cleanup {
        uuid: spec.uuid.clone(),
        dir: dir.clone(),
    };
    let state = || async { driver.power_state(&spec.uuid).await.unwrap() };
    driver.spawn(&spec).await.unwrap();
    assert_eq!(state().await, PowerState::Paused);
    let link = ip_link(&tap).expect("libvirt made the tap");
    assert!(link.contains("mtu 1450"), "{link}");
    // Spawning again leaves the paused guest as it is.
    driver.spawn(&spec).await.unwrap();
    assert_eq!(state().await, PowerState::Paused);
    driver.resume(&spec.uuid).await.unwrap();
    assert_eq!(state().await, PowerState::Running);
    driver.resume(&spec.uuid).await.unwrap();
    driver.destroy(&spec.uuid).await.unwrap();
    assert_eq!(ip_link(&tap), None, "the tap went with the guest");
    assert!(matches!(
        driver.resume(&spec.uuid).await,
        Err(VirtError::NotFound(_))
    ));
}

/// `ip -o link show dev <name>`: `None` when there is no such device.
fn ip_link(name: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "dev", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first 12 bytes QEMU's VNC server sends on 127.0.0.1:`port`.
async fn rfb_greeting(port: u16) -> [u8; 12] {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut greeting = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut greeting))
        .await
        .expect("a greeting in time")
        .unwrap();
    greeting
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

/// What the running libvirtd reports of this host: QEMU (for qemu and kvm domains alike), real
/// versions, this machine's architecture and a CPU topology, and native `qemu` guests.
#[tokio::test]
async fn the_host_reports_its_real_capabilities() {
    let caps = driver().await.host_capabilities().await.unwrap();
    assert_eq!(caps.hypervisor_type, "QEMU");
    // QEMU and libvirt are newer than 1.0 (encoded major*1000000 + minor*1000 + release).
    assert!(caps.hypervisor_version > 1_000_000, "{caps:?}");
    assert!(caps.libvirt_version > 1_000_000, "{caps:?}");
    assert!(!caps.hostname.is_empty());
    assert_eq!(caps.cpu.arch, std::env::consts::ARCH);
    let t = caps.cpu.topology;
    assert!(t.sockets >= 1 && t.cores >= 1 && t.threads >= 1 && t.cells >= 1);
    assert!(!caps.cpu.features.is_empty(), "{caps:?}");
    assert!(
        caps.supported_instances
            .iter()
            .any(|s| s.arch == std::env::consts::ARCH
                && s.hypervisor_type == "qemu"
                && s.vm_mode == "hvm"),
        "{:?}",
        caps.supported_instances
    );
}
