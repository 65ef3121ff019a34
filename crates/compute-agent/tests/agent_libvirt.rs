//! The agent with the real libvirt driver (QEMU TCG under libvirtd) and a fake conductor:
//! builds from a whole-disk image with a config drive and from a kernel + ramdisk, the
//! stop/start/reboot/delete lifecycle, console output, heartbeats, failed and abandoned
//! builds, and start-up reconciliation. Needs libvirtd (`make test` starts it) and the test
//! guest (`make guest-image`).

mod common;

use common::{Harness, config_drive, disk_build, guest_file, guest_images, image, virsh_state};
use ferrostack_compute::rpc::{AgentReply, AgentRequest, ConductorRequest};
use ferrostack_compute_agent::cache::{BASE_DIR, cache_name, inspect};
use ferrostack_image_format::DiskFormat;
use ferrostack_virt::testing::wait_for_console;
use ferrostack_virt::{Boot, GuestSpec, VirtDriver, VirtType};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const BUILD: Duration = Duration::from_secs(120);
const BOOT: Duration = Duration::from_secs(180);
const ACTION: Duration = Duration::from_secs(90);

fn some(s: &str) -> Option<Option<String>> {
    Some(Some(s.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_image_guest_is_built_stopped_started_rebooted_and_deleted() {
    let mut h = Harness::new("life", guest_images()).await;
    h.start_agent().await;
    let mut build = disk_build("life");
    build.config_drive = Some(config_drive(&build.uuid, "life"));
    let uuid = build.uuid.clone();
    let dir = h.instances.join(&uuid);
    h.build(&build).await;

    let active = h.conductor.wait_state(&uuid, "active", BUILD).await;
    assert!(active.launched);
    assert_eq!(active.power_state, 1);
    let updates = h.conductor.updates(&uuid);
    assert_eq!(updates.len(), 2, "{updates:#?}");
    assert_eq!(
        updates[0].expected_task_state,
        vec![None, Some("scheduling".into()), Some("spawning".into())]
    );
    assert_eq!(updates[0].task_state, some("spawning"));
    assert_eq!(
        updates[1].expected_task_state,
        vec![Some("spawning".into())]
    );
    assert_eq!(updates[1].task_state, Some(None), "the task is cleared");
    assert_eq!(updates[1].vm_state.as_deref(), Some("active"));
    assert_eq!(updates[1].power_state, Some(1));
    assert!(updates[1].launched);
    assert_eq!(virsh_state(&uuid).as_deref(), Some("running"));

    // The image is cached raw, and the root disk is a qcow2 overlay over it.
    let base = h.instances.join(BASE_DIR).join(cache_name("disk-image"));
    assert_eq!(inspect(&base).await.unwrap().detected, DiskFormat::Raw);
    let info = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(dir.join("disk"))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["backing-filename"], base.to_str().unwrap());
    assert_eq!(info["backing-filename-format"], "raw");
    assert_eq!(info["virtual-size"], 64 << 20);
    let disk_inode = std::fs::metadata(dir.join("disk")).unwrap().ino();

    // The conductor re-sends the build: it is idempotent (same domain, same disk).
    h.cast(AgentRequest::Build {
        build: build.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    h.conductor
        .wait_for("the second build", BUILD, |_| {
            (h.conductor.events(&uuid).len() == 2).then_some(())
        })
        .await;
    assert_eq!(
        h.conductor.events(&uuid)[1],
        ("compute__do_build_and_run_instance".to_string(), None)
    );
    assert_eq!(
        std::fs::metadata(dir.join("disk")).unwrap().ino(),
        disk_inode
    );
    assert_eq!(h.images.fetched(), 1);

    // The guest found its config drive.
    wait_for_console(
        &dir.join("console.log"),
        &format!("FERROSTACK-GUEST: configdrive uuid={uuid}"),
        BOOT,
    )
    .await;
    let reply = h
        .call(AgentRequest::ConsoleOutput {
            uuid: uuid.clone(),
            length: None,
        })
        .await;
    let AgentReply::ConsoleOutput { output } = reply else {
        panic!("{reply:?}");
    };
    assert!(output.contains("FERROSTACK-GUEST: boot"));
    let AgentReply::ConsoleOutput { output } = h
        .call(AgentRequest::ConsoleOutput {
            uuid: uuid.clone(),
            length: Some(3),
        })
        .await
    else {
        panic!()
    };
    assert_eq!(output.split('\n').count(), 3, "{output:?}");
    assert_eq!(
        h.call(AgentRequest::ConsoleOutput {
            uuid: uuid::Uuid::new_v4().to_string(),
            length: None,
        })
        .await,
        AgentReply::NotFound
    );
    assert_eq!(h.call(AgentRequest::Ping).await, AgentReply::Pong);

    // The VNC console: the proxy-client address and the port libvirt assigned, where QEMU's
    // VNC server greets.
    let vnc = |uuid: &str| AgentRequest::VncConsole {
        uuid: uuid.to_string(),
    };
    let AgentReply::VncConsole { host, port } = h.call(vnc(&uuid)).await else {
        panic!("no VNC console")
    };
    assert_eq!(host, "127.0.0.1");
    assert!(port >= 5900, "{port}");
    assert_eq!(&rfb_greeting(port).await, b"RFB 003.008\n");
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(h.call(vnc(&missing)).await, AgentReply::NotFound);

    // Heartbeats carry the node id, the host's resources, the hypervisor's capabilities and
    // the guest's power state.
    let node = h.agent.as_ref().unwrap().node_uuid().to_string();
    h.conductor
        .wait_for("a heartbeat with the guest", ACTION, |requests| {
            requests.iter().find_map(|r| match r {
                ConductorRequest::Heartbeat {
                    node_uuid,
                    resources,
                    guests,
                    host,
                    capabilities,
                } if guests.iter().any(|g| g.uuid == uuid && g.power_state == 1) => {
                    assert_eq!(node_uuid, &node);
                    assert_eq!(host, &h.host);
                    assert!(resources.vcpus >= 1 && resources.memory_mb > 0);
                    assert!(resources.disk_gb > 0);
                    let caps = capabilities
                        .as_ref()
                        .expect("heartbeats carry capabilities");
                    assert_eq!(caps.hypervisor_type, "QEMU");
                    assert!(caps.hypervisor_version >= 1_000_000, "{caps:?}");
                    assert!(caps.libvirt_version >= 1_000_000, "{caps:?}");
                    let cpu: serde_json::Value = serde_json::from_str(&caps.cpu_info).unwrap();
                    assert_eq!(cpu["arch"], std::env::consts::ARCH);
                    assert!(cpu["topology"]["cores"].as_u64() >= Some(1));
                    let native = (std::env::consts::ARCH.into(), "qemu".into(), "hvm".into());
                    assert!(caps.supported_instances.contains(&native), "{caps:?}");
                    Some(())
                }
                _ => None,
            })
        })
        .await;

    // Stop. A stale copy of the build arrives first: its first step conflicts, and it leaves
    // the guest alone.
    h.conductor.set_task(&uuid, Some("powering-off"));
    h.cast(AgentRequest::Build {
        build: build.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    h.cast(AgentRequest::Stop {
        uuid: uuid.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    let stopped = h.conductor.wait_state(&uuid, "stopped", ACTION).await;
    assert_eq!(stopped.power_state, 4);
    assert_eq!(virsh_state(&uuid).as_deref(), Some("shut off"));
    // The console of a stopped server is still readable.
    let AgentReply::ConsoleOutput { output } = h
        .call(AgentRequest::ConsoleOutput {
            uuid: uuid.clone(),
            length: None,
        })
        .await
    else {
        panic!()
    };
    assert!(output.contains("FERROSTACK-GUEST: boot"));
    // A stopped guest has no VNC server.
    assert!(matches!(
        h.call(AgentRequest::VncConsole { uuid: uuid.clone() })
            .await,
        AgentReply::ConsoleUnavailable { .. }
    ));

    // Start.
    h.conductor.set_task(&uuid, Some("powering-on"));
    h.cast(AgentRequest::Start {
        build: build.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    let started = h.conductor.wait_state(&uuid, "active", ACTION).await;
    assert_eq!(started.power_state, 1);
    assert_eq!(virsh_state(&uuid).as_deref(), Some("running"));

    // Soft reboot (the test guest ignores ACPI: stopped hard after the timeout, started).
    h.conductor.set_task(&uuid, Some("rebooting"));
    h.cast(AgentRequest::Reboot {
        build: build.clone(),
        hard: false,
        request_id: h.request_id(&uuid),
    })
    .await;
    h.conductor.wait_state(&uuid, "active", ACTION).await;
    // Hard reboot: the domain is re-created from the same disk and boots again.
    h.conductor.set_task(&uuid, Some("rebooting_hard"));
    h.cast(AgentRequest::Reboot {
        build: build.clone(),
        hard: true,
        request_id: h.request_id(&uuid),
    })
    .await;
    let rebooted = h.conductor.wait_state(&uuid, "active", ACTION).await;
    assert_eq!(rebooted.power_state, 1);
    let tasks: Vec<_> = h
        .conductor
        .updates(&uuid)
        .into_iter()
        .filter_map(|u| u.task_state.flatten())
        .collect();
    assert_eq!(
        tasks,
        // The third one is the stale build's, refused.
        [
            "spawning",
            "spawning",
            "spawning",
            "reboot_started",
            "reboot_started_hard"
        ]
    );
    assert_eq!(
        std::fs::metadata(dir.join("disk")).unwrap().ino(),
        disk_inode
    );
    wait_for_console(&dir.join("console.log"), "FERROSTACK-GUEST: boot", BOOT).await;

    // Delete.
    h.conductor.set_task(&uuid, Some("deleting"));
    h.cast(AgentRequest::Delete {
        uuid: uuid.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    h.conductor
        .wait_for("Deleted", ACTION, |_| {
            h.conductor.deleted_sent(&uuid).then_some(())
        })
        .await;
    assert!(!dir.exists());
    assert_eq!(virsh_state(&uuid), None);
    let events: Vec<_> = h.conductor.events(&uuid);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "compute__do_build_and_run_instance",
            "compute__do_build_and_run_instance",
            "compute__do_build_and_run_instance",
            "compute_stop_instance",
            "compute_start_instance",
            "compute_reboot_instance",
            "compute_reboot_instance",
            "compute_terminate_instance",
        ]
    );
    let failed: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].1.is_some())
        .collect();
    assert_eq!(failed, [2], "only the stale build failed: {events:?}");
    assert!(events[2].1.as_deref().unwrap().contains("powering-off"));
    // The cache entry outlives the instance.
    assert!(base.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_and_ramdisk_image_boots_directly() {
    let mut h = Harness::new("kernel", guest_images()).await;
    h.start_agent().await;
    let mut build = disk_build("kernel");
    build.kernel = Some(image("kernel-image", "aki"));
    build.ramdisk = Some(image("ramdisk-image", "ari"));
    let uuid = build.uuid.clone();
    let dir = h.instances.join(&uuid);
    h.build(&build).await;
    h.conductor.wait_state(&uuid, "active", BUILD).await;
    let console = wait_for_console(&dir.join("console.log"), "FERROSTACK-GUEST: boot", BOOT).await;
    assert!(console.contains("Linux version"));
    assert!(
        console.contains("no_timer_check"),
        "the default command line was used"
    );
    assert_eq!(
        std::fs::read(dir.join("kernel")).unwrap(),
        std::fs::read(guest_file("vmlinuz")).unwrap()
    );
    assert!(dir.join("ramdisk").exists());
    h.conductor.set_task(&uuid, Some("deleting"));
    h.cast(AgentRequest::Delete {
        uuid: uuid.clone(),
        request_id: h.request_id(&uuid),
    })
    .await;
    h.conductor
        .wait_for("Deleted", ACTION, |_| {
            h.conductor.deleted_sent(&uuid).then_some(())
        })
        .await;
    assert!(!dir.exists());
    assert_eq!(virsh_state(&uuid), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_abandoned_builds_leave_nothing_behind() {
    let scratch = std::env::temp_dir().join(format!("agent-bad-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let unsafe_image = scratch.join("backing.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(guest_file("disk.qcow2"))
        .arg(&unsafe_image)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut h = Harness::new("fail", guest_images().with("unsafe-image", &unsafe_image)).await;
    h.start_agent().await;

    // An image with a backing file: refused before qemu-img sees it; not rescheduled.
    let mut bad = disk_build("bad");
    bad.image = image("unsafe-image", "qcow2");
    h.build(&bad).await;
    let (message, reschedule) = h
        .conductor
        .wait_for("BuildFailed", ACTION, |_| {
            h.conductor.build_failed(&bad.uuid)
        })
        .await;
    assert!(message.contains("backing file"), "{message}");
    assert!(!reschedule);
    assert!(!h.instances.join(&bad.uuid).exists());
    assert_eq!(virsh_state(&bad.uuid), None);
    let events = h.conductor.events(&bad.uuid);
    assert!(events[0].1.as_deref().unwrap().contains("backing file"));

    // A missing image.
    let mut missing = disk_build("missing");
    missing.image = image("no-such-image", "raw");
    h.build(&missing).await;
    let (message, reschedule) = h
        .conductor
        .wait_for("BuildFailed", ACTION, |_| {
            h.conductor.build_failed(&missing.uuid)
        })
        .await;
    assert!(message.contains("could not be found"), "{message}");
    assert!(!reschedule);

    // Deleted while it was spawning: the final update conflicts; the guest is removed and the
    // deletion finished.
    let gone = disk_build("gone");
    h.conductor
        .state
        .lock()
        .unwrap()
        .delete_on_build_done
        .insert(gone.uuid.clone());
    h.build(&gone).await;
    h.conductor
        .wait_for("Deleted", BUILD, |_| {
            h.conductor.deleted_sent(&gone.uuid).then_some(())
        })
        .await;
    assert!(!h.instances.join(&gone.uuid).exists());
    assert_eq!(virsh_state(&gone.uuid), None);
    assert!(h.conductor.build_failed(&gone.uuid).is_none());
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_reconciliation_removes_orphans_and_finishes_interrupted_work() {
    let mut h = Harness::new("init", guest_images()).await;
    h.start_agent().await;
    let node = h.agent.as_ref().unwrap().node_uuid().to_string();
    // A guest whose instance the conductor forgets while the agent is down.
    let orphan = disk_build("orphan");
    h.build(&orphan).await;
    h.conductor.wait_state(&orphan.uuid, "active", BUILD).await;
    h.agent.take().unwrap().abort();
    h.conductor.forget(&orphan.uuid);

    // A guest this agent did not make (its files are elsewhere): never touched.
    let driver = ferrostack_virt::testing::driver().await;
    let foreign_dir = ferrostack_virt::testing::instance_dir("agent-foreign");
    let foreign_uuid = uuid::Uuid::new_v4().to_string();
    h.guard(&foreign_uuid, foreign_dir.clone());
    driver
        .spawn(&GuestSpec {
            uuid: foreign_uuid.clone(),
            name: format!("ferrostack-agent-test-{}", &foreign_uuid[..8]),
            display_name: "foreign".into(),
            vcpus: 1,
            memory_mb: 128,
            root_disk: Some(ferrostack_virt::testing::overlay(&foreign_dir)),
            config_drive: None,
            boot: Boot::Disk,
            console_log: foreign_dir.join("console.log"),
            virt_type: VirtType::Qemu,
            vnc_listen: None,
            interfaces: Vec::new(),
            start_paused: false,
            volumes: Vec::new(),
        })
        .await
        .unwrap();

    // A stray instance directory and the leftover of an interrupted download.
    let stray = h.instances.join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("disk"), b"old").unwrap();
    let leftover = h.instances.join(BASE_DIR).join("tmp-0123.download");
    std::fs::write(&leftover, b"partial").unwrap();

    // Owned instances with interrupted work: a build, a delete, a stop.
    let interrupted = disk_build("interrupted");
    h.guard(&interrupted.uuid, h.instances.join(&interrupted.uuid));
    h.conductor
        .add(&interrupted, &h.host, "building", Some("spawning"));
    let deleting = disk_build("deleting");
    h.conductor
        .add(&deleting, &h.host, "active", Some("deleting"));
    std::fs::create_dir_all(h.instances.join(&deleting.uuid)).unwrap();
    let stopping = disk_build("stopping");
    h.conductor
        .add(&stopping, &h.host, "active", Some("powering-off"));

    h.start_agent().await;
    assert_eq!(
        h.agent.as_ref().unwrap().node_uuid(),
        node,
        "the node id is kept"
    );
    // Rules 1-3 ran before start() returned.
    assert_eq!(virsh_state(&orphan.uuid), None);
    assert!(!h.instances.join(&orphan.uuid).exists());
    assert_eq!(virsh_state(&foreign_uuid).as_deref(), Some("running"));
    assert!(foreign_dir.join("disk").exists());
    assert!(!stray.exists());
    assert!(!leftover.exists());
    assert!(
        h.instances
            .join(BASE_DIR)
            .join(cache_name("disk-image"))
            .exists()
    );

    h.conductor
        .wait_for("Deleted", ACTION, |_| {
            h.conductor.deleted_sent(&deleting.uuid).then_some(())
        })
        .await;
    assert!(!h.instances.join(&deleting.uuid).exists());
    let stopped = h
        .conductor
        .wait_state(&stopping.uuid, "stopped", ACTION)
        .await;
    assert_eq!(stopped.power_state, 4);
    let built = h
        .conductor
        .wait_state(&interrupted.uuid, "active", BUILD)
        .await;
    assert!(built.launched);
    assert_eq!(virsh_state(&interrupted.uuid).as_deref(), Some("running"));
    // The cached image served the re-run build: one download in all.
    assert_eq!(h.images.fetched(), 1);
    driver.destroy(&foreign_uuid).await.unwrap();
    h.agent.take().unwrap().shutdown().await;
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
