//! Test support: a fake conductor that keeps instance states and applies the agent's updates as
//! compare-and-swaps (as the real one must), an image source that copies the test guest's
//! files, and a harness running the agent with the real libvirt driver.

#![allow(dead_code)]

use async_trait::async_trait;
use ferrostack_bus::{InProcessBus, MessageBus};
use ferrostack_compute::rpc::{
    AgentReply, AgentRequest, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest, GuestBuild,
    ImageRef, OwnedInstance, StateUpdate, agent_queue, decode, encode,
};
use ferrostack_compute_agent::{Agent, AgentConfig, AgentHandle, ImageNotFound, ImageSource};
use ferrostack_virt::VirtType;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An instance as the fake conductor keeps it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub launched: bool,
    pub deleted: bool,
    pub host: String,
    pub build: Option<GuestBuild>,
    pub request_id: String,
}

#[derive(Default)]
pub struct State {
    pub instances: HashMap<String, Instance>,
    pub requests: Vec<ConductorRequest>,
    /// Instances deleted by "the API" as soon as the agent reports the build done: that update
    /// then conflicts.
    pub delete_on_build_done: HashSet<String>,
    /// The ports of an instance "the network" has not wired yet (absent: none pending).
    pub pending_ports: HashMap<String, Vec<String>>,
}

/// Consumes the conductor's queue and answers like the conductor.
#[derive(Clone)]
pub struct FakeConductor {
    pub state: Arc<Mutex<State>>,
}

fn apply(state: &mut State, request: &ConductorRequest) -> ConductorReply {
    match request {
        ConductorRequest::Heartbeat { .. }
        | ConductorRequest::Event(_)
        | ConductorRequest::VolumeAttached { .. }
        | ConductorRequest::VolumeDetached { .. } => ConductorReply::Ok,
        ConductorRequest::HostInstances { host } => ConductorReply::Instances {
            instances: state
                .instances
                .iter()
                .filter(|(_, i)| &i.host == host && !i.deleted)
                .map(|(uuid, i)| OwnedInstance {
                    uuid: uuid.clone(),
                    vm_state: i.vm_state.clone(),
                    task_state: i.task_state.clone(),
                    build: i.build.clone(),
                    request_id: i.request_id.clone(),
                })
                .collect(),
        },
        ConductorRequest::Update(update) => {
            if update.vm_state.as_deref() == Some("active")
                && state.delete_on_build_done.remove(&update.uuid)
                && let Some(i) = state.instances.get_mut(&update.uuid)
            {
                i.deleted = true;
                i.task_state = Some("deleting".into());
            }
            let Some(i) = state.instances.get_mut(&update.uuid) else {
                return ConductorReply::Conflict {
                    task_state: None,
                    deleted: true,
                };
            };
            if i.deleted || !update.expected_task_state.contains(&i.task_state) {
                return ConductorReply::Conflict {
                    task_state: i.task_state.clone(),
                    deleted: i.deleted,
                };
            }
            cas(i, update);
            ConductorReply::Ok
        }
        ConductorRequest::BuildFailed { uuid, .. } => {
            if let Some(i) = state.instances.get_mut(uuid) {
                i.vm_state = "error".into();
                i.task_state = None;
            }
            ConductorReply::Ok
        }
        ConductorRequest::PortsActive { uuid } => ConductorReply::PortsActive {
            pending: state.pending_ports.get(uuid).cloned().unwrap_or_default(),
        },
        ConductorRequest::Deleted { uuid, .. } => {
            if let Some(i) = state.instances.get_mut(uuid) {
                i.deleted = true;
                i.vm_state = "deleted".into();
                i.task_state = None;
            }
            ConductorReply::Ok
        }
    }
}

fn cas(i: &mut Instance, update: &StateUpdate) {
    if let Some(vm) = &update.vm_state {
        i.vm_state = vm.clone();
    }
    if let Some(task) = &update.task_state {
        i.task_state = task.clone();
    }
    if let Some(power) = update.power_state {
        i.power_state = power;
    }
    if update.launched {
        i.launched = true;
    }
}

impl FakeConductor {
    pub async fn start(bus: &Arc<InProcessBus>) -> FakeConductor {
        let conductor = FakeConductor {
            state: Arc::new(Mutex::new(State::default())),
        };
        let mut consumer = bus.consume(CONDUCTOR_QUEUE).await.unwrap();
        let state = conductor.state.clone();
        tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let request: ConductorRequest = decode(&delivery.payload).unwrap();
                let reply = {
                    let mut state = state.lock().unwrap();
                    let reply = apply(&mut state, &request);
                    state.requests.push(request);
                    reply
                };
                let _ = delivery.reply(encode(&reply)).await;
            }
        });
        conductor
    }

    /// Adds an instance assigned to `host` (what the scheduler does).
    pub fn add(&self, build: &GuestBuild, host: &str, vm_state: &str, task: Option<&str>) {
        self.state.lock().unwrap().instances.insert(
            build.uuid.clone(),
            Instance {
                vm_state: vm_state.into(),
                task_state: task.map(str::to_string),
                power_state: 0,
                launched: false,
                deleted: false,
                host: host.into(),
                build: Some(build.clone()),
                request_id: format!("req-{}", uuid::Uuid::new_v4()),
            },
        );
    }

    /// Sets the task state as the API does when it accepts an action.
    pub fn set_task(&self, uuid: &str, task: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        state.instances.get_mut(uuid).unwrap().task_state = task.map(str::to_string);
    }

    /// Forgets an instance entirely (its row purged while the agent was down).
    pub fn forget(&self, uuid: &str) {
        self.state.lock().unwrap().instances.remove(uuid);
    }

    pub fn instance(&self, uuid: &str) -> Instance {
        self.state.lock().unwrap().instances[uuid].clone()
    }

    pub fn requests(&self) -> Vec<ConductorRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The updates the agent sent for `uuid`, in order.
    pub fn updates(&self, uuid: &str) -> Vec<StateUpdate> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                ConductorRequest::Update(u) if u.uuid == uuid => Some(u),
                _ => None,
            })
            .collect()
    }

    /// The action events recorded for `uuid`: (event, error).
    pub fn events(&self, uuid: &str) -> Vec<(String, Option<String>)> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                ConductorRequest::Event(e) if e.uuid == uuid => Some((e.event, e.error)),
                _ => None,
            })
            .collect()
    }

    /// Waits until `check` holds on the recorded requests.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[ConductorRequest]) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = check(&self.requests()) {
                return found;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; the conductor saw:\n{:#?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the instance is idle (no task) in `vm_state`.
    pub async fn wait_state(&self, uuid: &str, vm_state: &str, timeout: Duration) -> Instance {
        let start = Instant::now();
        loop {
            let i = self.instance(uuid);
            if i.vm_state == vm_state && i.task_state.is_none() {
                return i;
            }
            assert!(
                start.elapsed() < timeout,
                "{uuid} never became {vm_state}/None: {i:?}\n{:#?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn deleted_sent(&self, uuid: &str) -> bool {
        self.requests()
            .iter()
            .any(|r| matches!(r, ConductorRequest::Deleted { uuid: u, .. } if u == uuid))
    }

    pub fn build_failed(&self, uuid: &str) -> Option<(String, bool)> {
        self.requests().into_iter().find_map(|r| match r {
            ConductorRequest::BuildFailed {
                uuid: u,
                message,
                reschedule,
                ..
            } if u == uuid => Some((message, reschedule)),
            _ => None,
        })
    }
}

/// Images served from local files (Glance's role in these tests).
#[derive(Default)]
pub struct LocalImages {
    pub files: Mutex<HashMap<String, PathBuf>>,
    pub fetches: AtomicUsize,
}

impl LocalImages {
    pub fn with(self, id: &str, path: &Path) -> Self {
        self.files
            .lock()
            .unwrap()
            .insert(id.to_string(), path.to_path_buf());
        self
    }

    pub fn fetched(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ImageSource for LocalImages {
    async fn fetch(&self, image_id: &str, dest: &Path) -> anyhow::Result<()> {
        let source = self.files.lock().unwrap().get(image_id).cloned();
        let source = source.ok_or_else(|| ImageNotFound(image_id.to_string()))?;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        // A slow download, so concurrent builds overlap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::fs::copy(&source, dest).await?;
        Ok(())
    }
}

/// The test guest's files (`make guest-image`).
pub fn guest_file(name: &str) -> PathBuf {
    let path = ferrostack_virt::testing::guest_image_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make guest-image` (scripts/build-guest-image.sh)",
        path.display()
    );
    path
}

/// The test guest's images: a whole-disk qcow2, a kernel (aki) and a ramdisk (ari).
pub fn guest_images() -> LocalImages {
    LocalImages::default()
        .with("disk-image", &guest_file("disk.qcow2"))
        .with("kernel-image", &guest_file("vmlinuz"))
        .with("ramdisk-image", &guest_file("initrd.img"))
}

pub fn image(id: &str, disk_format: &str) -> ImageRef {
    ImageRef {
        id: id.into(),
        disk_format: disk_format.into(),
        size: None,
    }
}

/// A small guest booting from the test disk image, with a unique uuid and domain name.
pub fn disk_build(name: &str) -> GuestBuild {
    let uuid = uuid::Uuid::new_v4().to_string();
    GuestBuild {
        domain_name: format!("ferrostack-agent-test-{}", &uuid[..8]),
        uuid,
        display_name: name.into(),
        vcpus: 1,
        memory_mb: 192,
        root_gb: 0,
        image: image("disk-image", "qcow2"),
        kernel: None,
        ramdisk: None,
        kernel_cmdline: None,
        config_drive: None,
        interfaces: Vec::new(),
        volumes: Vec::new(),
    }
}

/// A config drive holding the instance's `meta_data.json` (what the test guest reads).
pub fn config_drive(uuid: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let meta = serde_json::json!({"uuid": uuid, "name": name, "hostname": name});
    BTreeMap::from([(
        "openstack/latest/meta_data.json".to_string(),
        serde_json::to_vec(&meta).unwrap(),
    )])
}

/// An agent on its own host name and instances directory, on an in-process bus with a fake
/// conductor; everything it made (and every domain registered with [`Harness::guard`]) is
/// removed when the harness is dropped, even after a failed assertion.
pub struct Harness {
    pub bus: Arc<InProcessBus>,
    pub conductor: FakeConductor,
    pub host: String,
    pub instances: PathBuf,
    pub images: Arc<LocalImages>,
    pub agent: Option<AgentHandle>,
    guards: Vec<ferrostack_virt::testing::Cleanup>,
}

impl Harness {
    pub async fn new(tag: &str, images: LocalImages) -> Harness {
        let bus = InProcessBus::new();
        let conductor = FakeConductor::start(&bus).await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let instances = std::env::temp_dir().join(format!("ferrostack-agent-{tag}-{}", &id[..8]));
        std::fs::create_dir_all(&instances).unwrap();
        std::fs::set_permissions(&instances, std::fs::Permissions::from_mode(0o755)).unwrap();
        Harness {
            bus,
            conductor,
            host: format!("agent-test-{}", &id[..8]),
            instances,
            images: Arc::new(images),
            agent: None,
            guards: Vec::new(),
        }
    }

    pub fn config(&self) -> AgentConfig {
        let mut config = AgentConfig::new(&self.host, &self.instances);
        config.virt_type = VirtType::Qemu;
        config.heartbeat_interval = Duration::from_millis(500);
        config.shutdown_timeout = Duration::from_secs(5);
        config.soft_reboot_timeout = Duration::from_secs(5);
        config.rpc_timeout = Duration::from_secs(10);
        config
    }

    pub async fn start_agent(&mut self) {
        let driver = Arc::new(ferrostack_virt::testing::driver().await);
        let agent = Agent::start(self.config(), self.bus.clone(), driver, self.images.clone())
            .await
            .unwrap();
        self.agent = Some(agent);
    }

    /// Removes domain `uuid` (and `dir`) when the test ends.
    pub fn guard(&mut self, uuid: &str, dir: PathBuf) {
        self.guards.push(ferrostack_virt::testing::Cleanup {
            uuid: uuid.to_string(),
            dir,
        });
    }

    /// Registers `build` with the conductor (building, task None: claimed by the scheduler)
    /// and casts it to the agent.
    pub async fn build(&mut self, build: &GuestBuild) {
        self.guard(&build.uuid, self.instances.join(&build.uuid));
        self.conductor.add(build, &self.host, "building", None);
        let request_id = self.conductor.instance(&build.uuid).request_id;
        self.cast(AgentRequest::Build {
            build: build.clone(),
            request_id,
        })
        .await;
    }

    pub async fn cast(&self, request: AgentRequest) {
        self.bus
            .send(&agent_queue(&self.host), encode(&request))
            .await
            .unwrap();
    }

    pub async fn call(&self, request: AgentRequest) -> AgentReply {
        let reply = self
            .bus
            .call(
                &agent_queue(&self.host),
                encode(&request),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        decode(&reply).unwrap()
    }

    pub fn request_id(&self, uuid: &str) -> String {
        self.conductor.instance(uuid).request_id
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.abort();
        }
        self.guards.clear();
        let _ = std::fs::remove_dir_all(&self.instances);
    }
}

/// The domain's state as virsh reports it (`running`, `shut off`), or `None` if undefined.
pub fn virsh_state(uuid: &str) -> Option<String> {
    let out = std::process::Command::new("virsh")
        .args(["-q", "-c", "qemu:///system", "domstate", uuid])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
