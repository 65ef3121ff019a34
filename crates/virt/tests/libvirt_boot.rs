//! Boots the test guest (`make guest-image`) under the real libvirtd with QEMU TCG and drives
//! its lifecycle through the driver, checking what the guest prints on its serial console.
//! Needs libvirtd (`FERROSTACK_LIBVIRT_URI`, default `qemu:///system`) and the guest image
//! (`FERROSTACK_GUEST_IMAGE`, default `~/.cache/ferrostack/guest-image`); `make test` provides
//! both.

use ferrostack_virt::testing::{Cleanup, driver, instance_dir, overlay, wait_for_console};
use ferrostack_virt::{
    Boot, GuestInterface, GuestSpec, GuestVolume, PowerState, VirtDriver, VirtError, VirtType,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn spec(dir: &Path, boot: Boot) -> GuestSpec {
    let uuid = uuid::Uuid::new_v4().to_string();
    GuestSpec {
        name: format!("ferrostack-test-{}", &uuid[..8]),
        uuid,
        display_name: "virt test".into(),
        vcpus: 1,
        memory_mb: 256,
        root_disk: Some(overlay(dir)),
        config_drive: None,
        boot,
        console_log: dir.join("console.log"),
        virt_type: VirtType::Qemu,
        vnc_listen: Some("127.0.0.1".into()),
        interfaces: Vec::new(),
        start_paused: false,
        volumes: Vec::new(),
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

/// Cinder volumes as virtio disks of a real guest, whose `/init` reports its disks on the
/// console as they come and go: one defined with the domain, one hot-plugged into the running
/// guest (which writes a mark on it) and unplugged with the guest's cooperation, attached again
/// while the guest is shut off (config only) and found with its mark at the next boot; attach
/// and detach are idempotent, a taken target is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_defined_hot_plugged_unplugged_and_kept_across_a_restart() {
    let driver = driver().await;
    let dir = instance_dir("volume");
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut spec = spec(
        &dir,
        Boot::Kernel {
            kernel: dir.join("vmlinuz"),
            initrd: Some(dir.join("initrd.img")),
            cmdline: format!("console=ttyS0 ferrostack.metadata_timeout=1 write-mark=vdc:{token}"),
        },
    );
    let _cleanup = Cleanup {
        uuid: spec.uuid.clone(),
        dir: dir.clone(),
    };
    // 32 MiB (65536 sectors) and 16 MiB (32768), raw files QEMU opens with O_DIRECT.
    let b = volume_file(&dir, "vdb", "32M");
    let c = volume_file(&dir, "vdc", "16M");
    spec.volumes = vec![b.clone()];
    let log = spec.console_log.clone();
    driver.spawn(&spec).await.unwrap();
    let mut seen = wait_after(&log, 0, "FERROSTACK-GUEST: disks vda:131072 vdb:65536\n").await;
    assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdb"]);

    // Hot-plug into the running guest: live and persistent, the volume id as serial.
    driver.attach_volume(&spec.uuid, &c).await.unwrap();
    seen = wait_after(
        &log,
        seen,
        "FERROSTACK-GUEST: disks vda:131072 vdb:65536 vdc:32768\n",
    )
    .await;
    seen = wait_after(
        &log,
        seen,
        &format!("FERROSTACK-GUEST: wrote-mark vdc {token}"),
    )
    .await;
    let mark = format!("FERROSTACK-MARK:{token}\n");
    assert!(std::fs::read(&c.path).unwrap().starts_with(mark.as_bytes()));
    for inactive in [false, true] {
        let xml = dumpxml(&spec.uuid, inactive);
        assert!(
            xml.contains(&format!("<serial>{}</serial>", c.volume_id)),
            "{xml}"
        );
        assert!(xml.contains("io='native'"), "{xml}");
    }
    assert_eq!(
        driver.volume_targets(&spec.uuid).await.unwrap(),
        ["vdb", "vdc"]
    );
    // Again: nothing changes.
    driver.attach_volume(&spec.uuid, &c).await.unwrap();
    assert_eq!(
        dumpxml(&spec.uuid, false).matches("device='disk'").count(),
        3
    );
    // Another volume where one is: refused.
    let other = GuestVolume {
        target: "vdc".into(),
        ..volume_file(&dir, "other", "1M")
    };
    assert!(matches!(
        driver.attach_volume(&spec.uuid, &other).await,
        Err(VirtError::Hypervisor(_))
    ));

    // Live unplug: it returns once the guest has let go of the disk.
    driver.detach_volume(&spec.uuid, &c).await.unwrap();
    for inactive in [false, true] {
        assert!(!dumpxml(&spec.uuid, inactive).contains(&c.volume_id));
    }
    assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdb"]);
    wait_after(&log, seen, "FERROSTACK-GUEST: disks vda:131072 vdb:65536\n").await;
    driver.detach_volume(&spec.uuid, &c).await.unwrap();

    // Shut off: attached to the definition only, and there at the next boot with its mark.
    driver
        .power_off(&spec.uuid, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Shutdown
    );
    driver.attach_volume(&spec.uuid, &c).await.unwrap();
    driver.attach_volume(&spec.uuid, &c).await.unwrap();
    assert_eq!(
        driver.volume_targets(&spec.uuid).await.unwrap(),
        ["vdb", "vdc"]
    );
    driver.power_on(&spec.uuid).await.unwrap();
    // The console log starts over with each start (`append='off'`).
    wait_after(
        &log,
        0,
        "FERROSTACK-GUEST: disks vda:131072 vdb:65536 vdc:32768\n",
    )
    .await;
    wait_after(
        &log,
        0,
        &format!("FERROSTACK-GUEST: mark vdc {}", mark.trim_end()),
    )
    .await;

    // Shut off again: a detach from the definition alone, which the next start follows.
    driver
        .power_off(&spec.uuid, Duration::from_secs(1))
        .await
        .unwrap();
    driver.detach_volume(&spec.uuid, &b).await.unwrap();
    driver.detach_volume(&spec.uuid, &b).await.unwrap();
    assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdc"]);
    driver.reboot(&spec.uuid, true).await.unwrap();
    // The guest names its disks in the order it finds them (libvirt's target is a hint): the
    // volume at vdc is its second disk now.
    wait_after(&log, 0, "FERROSTACK-GUEST: disks vda:131072 vdb:32768\n").await;
    wait_after(
        &log,
        0,
        &format!("FERROSTACK-GUEST: mark vdb {}", mark.trim_end()),
    )
    .await;

    driver.destroy(&spec.uuid).await.unwrap();
    assert!(matches!(
        driver.attach_volume(&spec.uuid, &c).await,
        Err(VirtError::NotFound(_))
    ));
    assert!(matches!(
        driver.detach_volume(&spec.uuid, &c).await,
        Err(VirtError::NotFound(_))
    ));
}

/// A guest paused before it ever ran gets a volume live, but cannot release it: the detach
/// leaves the persistent definition at once, asks the live guest again and again, and gives up
/// with an error after its timeout instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_detach_the_guest_never_completes_is_an_error() {
    let driver = driver().await;
    let dir = instance_dir("volume-paused");
    let mut spec = spec(&dir, Boot::Disk);
    spec.start_paused = true;
    let _cleanup = Cleanup {
        uuid: spec.uuid.clone(),
        dir: dir.clone(),
    };
    driver.spawn(&spec).await.unwrap();
    let volume = GuestVolume {
        readonly: true,
        ..volume_file(&dir, "vdb", "8M")
    };
    driver.attach_volume(&spec.uuid, &volume).await.unwrap();
    assert_eq!(
        driver.power_state(&spec.uuid).await.unwrap(),
        PowerState::Paused
    );
    let live = dumpxml(&spec.uuid, false);
    assert!(
        live.contains(&volume.volume_id) && live.contains("<readonly/>"),
        "{live}"
    );
    let start = std::time::Instant::now();
    let err = driver.detach_volume(&spec.uuid, &volume).await.unwrap_err();
    assert!(matches!(err, VirtError::Hypervisor(_)), "{err}");
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert!(!dumpxml(&spec.uuid, true).contains(&volume.volume_id));
    assert_eq!(driver.volume_targets(&spec.uuid).await.unwrap(), ["vdb"]);
    driver.destroy(&spec.uuid).await.unwrap();
}

/// A blank raw volume file of `size` (`truncate -s`) in `dir`, to attach at `target`.
fn volume_file(dir: &Path, target: &str, size: &str) -> GuestVolume {
    let path: PathBuf = dir.join(format!("volume-{target}"));
    let out = std::process::Command::new("truncate")
        .args(["-s", size])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    GuestVolume {
        volume_id: uuid::Uuid::new_v4().to_string(),
        path,
        format: "raw".into(),
        target: target.into(),
        readonly: false,
    }
}

/// `virsh dumpxml` of the live domain, or of its persistent definition (`--inactive`).
fn dumpxml(uuid: &str, inactive: bool) -> String {
    let mut cmd = std::process::Command::new("virsh");
    cmd.args(["-q", "-c", "qemu:///system", "dumpxml", uuid]);
    if inactive {
        cmd.arg("--inactive");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (up to 180 s) for `marker` in the console log after byte `from` of its text (without
/// `\r`); returns where the marker ends, to wait for what comes after it.
async fn wait_after(log: &Path, from: usize, marker: &str) -> usize {
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_default()
            .replace('\r', "");
        if let Some(at) = text.get(from..).and_then(|rest| rest.find(marker)) {
            return from + at + marker.len();
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no {marker:?} on the console after byte {from}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
