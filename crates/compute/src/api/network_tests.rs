//! Servers with ports, in process: the real API, conductor and scheduler with an in-memory
//! networking service ([`FakeNetwork`], mirroring `ferrostack::compute_network`) that records
//! what compute asks of it, and a scripted agent that hands over what the conductor casts to
//! its host (and answers builds and deletes like the real agent does).

use super::tests::{Harness, IMAGE, Reply, flavor};
use crate::conductor;
use crate::db::instances::{self as idb, Instance};
use crate::network::{
    FloatingIpInfo, NetworkApi, NetworkRequest, PortOwner, RequestedNic, ResolvedNetworks, Vif,
    VifIp,
};
use crate::rpc::{
    self, AgentRequest, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest, GuestBuild,
    HostResources, StateUpdate, agent_queue,
};
use crate::service::Compute;
use ferrostack_api::ApiError;
use ferrostack_store::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Project `p1`'s only network.
const NET: &str = "4f0c6a4e-5a43-4f55-8c7e-1d2a3b4c5d01";
const NET_NAME: &str = "private";
/// Project `p2`'s network (invisible to `p1`).
const BOB_NET: &str = "4f0c6a4e-5a43-4f55-8c7e-1d2a3b4c5d02";
/// A free port of `p1` on [`NET`].
const USER_PORT: &str = "9b1e2d3c-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
const HOST: &str = "host-a";

/// A port as the fake networking service keeps it.
#[derive(Debug, Clone)]
struct FakePort {
    network_id: String,
    project_id: String,
    status: String,
    device_id: String,
    device_owner: String,
    host: String,
    mac: String,
    ip: String,
    security_groups: Vec<String>,
}

/// An in-memory networking service recording what compute asks of it.
#[derive(Default)]
struct FakeNetwork {
    /// (id, name, project) of the networks it knows.
    networks: Vec<(&'static str, &'static str, &'static str)>,
    ports: Mutex<HashMap<String, FakePort>>,
    binds: Mutex<Vec<(Vif, PortOwner)>>,
    releases: Mutex<Vec<(String, Vec<Vif>)>>,
    group_changes: Mutex<Vec<(String, String, bool)>>,
    /// Per port created: whether its id was already recorded in the instance (crash safety).
    planned_first: Mutex<Vec<(String, bool)>>,
    /// Compute's store, to look at the instance when a port is created.
    store: OnceLock<Store>,
    /// Floating IPs by address: (id, project, associated (port, fixed address)).
    floating: Mutex<HashMap<String, FakeFloating>>,
}

/// A floating IP as the fake networking service keeps it.
#[derive(Debug, Clone)]
struct FakeFloating {
    id: String,
    project_id: String,
    association: Option<(String, String)>,
}

impl FakeNetwork {
    /// `p1` with [`NET`] and the free [`USER_PORT`], `p2` with [`BOB_NET`].
    fn new() -> Arc<FakeNetwork> {
        let fake = FakeNetwork {
            networks: vec![(NET, NET_NAME, "p1"), (BOB_NET, "bob-net", "p2")],
            ..Default::default()
        };
        fake.ports.lock().unwrap().insert(
            USER_PORT.into(),
            FakePort {
                network_id: NET.into(),
                project_id: "p1".into(),
                status: "DOWN".into(),
                device_id: String::new(),
                device_owner: String::new(),
                host: String::new(),
                mac: "fa:16:3e:aa:bb:cc".into(),
                ip: "10.0.0.5".into(),
                security_groups: vec!["sg-default".into()],
            },
        );
        Arc::new(fake)
    }

    fn port(&self, id: &str) -> Option<FakePort> {
        self.ports.lock().unwrap().get(id).cloned()
    }

    fn set_status(&self, id: &str, status: &str) {
        self.ports.lock().unwrap().get_mut(id).unwrap().status = status.into();
    }

    fn binds(&self) -> Vec<(Vif, PortOwner)> {
        self.binds.lock().unwrap().clone()
    }

    fn network_name(&self, id: &str) -> String {
        let found = self.networks.iter().find(|n| n.0 == id);
        found.map(|n| n.1.to_string()).unwrap_or_default()
    }

    /// Names (or ids) of groups to ids: `default` and `web` exist in every project.
    fn groups(&self, project: &str, names: &[String]) -> Result<Vec<String>, ApiError> {
        let mut ids = Vec::new();
        for name in names {
            let id = match name.as_str() {
                "default" | "sg-default" => "sg-default",
                "web" | "sg-web" => "sg-web",
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Security group {name} not found for project {project}."
                    )));
                }
            };
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    /// The floating addresses associated with `fixed` of `port`.
    fn floating_of(&self, port: &str, fixed: &str) -> Vec<String> {
        let floating = self.floating.lock().unwrap();
        let mut found: Vec<String> = floating
            .iter()
            .filter(|(_, f)| {
                f.association
                    .as_ref()
                    .is_some_and(|(p, ip)| p == port && ip == fixed)
            })
            .map(|(address, _)| address.clone())
            .collect();
        found.sort();
        found
    }

    fn describe(&self, vif: &Vif, port: &FakePort) -> Vif {
        Vif {
            network_id: port.network_id.clone(),
            network_name: self.network_name(&port.network_id),
            mac_address: port.mac.clone(),
            mtu: Some(1450),
            fixed_ips: vec![VifIp {
                address: port.ip.clone(),
                version: 4,
                subnet_id: "subnet-1".into(),
                cidr: "10.0.0.0/24".into(),
                gateway: Some("10.0.0.1".into()),
                dns_nameservers: Vec::new(),
                dhcp: true,
                floating_ips: self.floating_of(&vif.port_id, &port.ip),
            }],
            ..vif.clone()
        }
    }
}

#[async_trait::async_trait]
impl NetworkApi for FakeNetwork {
    async fn resolve(
        &self,
        project: &str,
        admin: bool,
        request: &NetworkRequest,
        security_groups: &[String],
    ) -> Result<ResolvedNetworks, ApiError> {
        let security_groups = self.groups(project, security_groups)?;
        let nics = match request {
            NetworkRequest::None => return Ok(ResolvedNetworks::default()),
            NetworkRequest::Auto => {
                let own: Vec<_> = self.networks.iter().filter(|n| n.2 == project).collect();
                match own.as_slice() {
                    [] => return Ok(ResolvedNetworks::default()),
                    [one] => vec![RequestedNic {
                        network_id: Some(one.0.to_string()),
                        ..Default::default()
                    }],
                    _ => return Err(ApiError::conflict("Multiple possible networks found")),
                }
            }
            NetworkRequest::List(nics) => nics.clone(),
        };
        let mut resolved = Vec::new();
        for mut nic in nics {
            match (&nic.port_id, &nic.network_id) {
                (Some(id), _) => {
                    let port = self.port(id).filter(|p| admin || p.project_id == project);
                    let Some(port) = port else {
                        return Err(ApiError::bad_request(format!(
                            "Port {id} could not be found."
                        )));
                    };
                    if !port.device_id.is_empty() {
                        return Err(ApiError::conflict(format!("Port {id} is still in use.")));
                    }
                    nic.network_id = Some(port.network_id);
                }
                (None, Some(id)) => {
                    if !self
                        .networks
                        .iter()
                        .any(|n| n.0 == id && (admin || n.2 == project))
                    {
                        return Err(ApiError::bad_request(format!(
                            "Network {id} could not be found."
                        )));
                    }
                }
                (None, None) => return Err(ApiError::bad_request("missing 'uuid'")),
            }
            resolved.push(nic);
        }
        Ok(ResolvedNetworks {
            nics: resolved,
            security_groups,
        })
    }

    async fn bind(&self, vif: &Vif, owner: &PortOwner) -> anyhow::Result<Vif> {
        // Whether the instance already records the port (looked at before locking).
        let recorded = match self.store.get() {
            Some(store) => idb::instance(store, &owner.server_uuid)
                .await?
                .is_some_and(|i| i.data.vifs.iter().any(|v| v.port_id == vif.port_id)),
            None => false,
        };
        self.binds
            .lock()
            .unwrap()
            .push((vif.clone(), owner.clone()));
        let mut ports = self.ports.lock().unwrap();
        let count = ports.len();
        let port = match ports.get_mut(&vif.port_id) {
            Some(port) => {
                if !port.device_id.is_empty() && port.device_id != owner.server_uuid {
                    anyhow::bail!("Port {} is still in use.", vif.port_id);
                }
                port.device_id = owner.server_uuid.clone();
                port.device_owner = owner.device_owner.clone();
                port.host = owner.host.clone();
                port.clone()
            }
            None if vif.created => {
                self.planned_first
                    .lock()
                    .unwrap()
                    .push((vif.port_id.clone(), recorded));
                let security_groups = match vif.security_groups.is_empty() {
                    true => vec!["sg-default".to_string()],
                    false => vif.security_groups.clone(),
                };
                let port = FakePort {
                    network_id: vif.network_id.clone(),
                    project_id: owner.project_id.clone(),
                    status: "DOWN".into(),
                    device_id: owner.server_uuid.clone(),
                    device_owner: owner.device_owner.clone(),
                    host: owner.host.clone(),
                    mac: format!("fa:16:3e:00:00:{count:02x}"),
                    ip: vif
                        .fixed_ip
                        .clone()
                        .unwrap_or_else(|| format!("10.0.0.{}", 10 + count)),
                    security_groups,
                };
                ports.insert(vif.port_id.clone(), port.clone());
                port
            }
            None => anyhow::bail!("Port {} could not be found.", vif.port_id),
        };
        Ok(self.describe(vif, &port))
    }

    async fn release(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<()> {
        self.releases
            .lock()
            .unwrap()
            .push((server_uuid.to_string(), vifs.to_vec()));
        let mut ports = self.ports.lock().unwrap();
        for vif in vifs {
            let Some(port) = ports.get_mut(&vif.port_id) else {
                continue;
            };
            if !port.device_id.is_empty() && port.device_id != server_uuid {
                continue;
            }
            if vif.created {
                ports.remove(&vif.port_id);
            } else {
                port.device_id.clear();
                port.device_owner.clear();
                port.host.clear();
            }
        }
        Ok(())
    }

    async fn change_security_group(
        &self,
        project: &str,
        _admin: bool,
        server_uuid: &str,
        vifs: &[Vif],
        group: &str,
        add: bool,
    ) -> Result<(), ApiError> {
        let id = match self.groups(project, &[group.to_string()]) {
            Ok(ids) => ids.into_iter().next().unwrap_or_default(),
            Err(_) => {
                return Err(ApiError::not_found(format!(
                    "Security group {group} not found for project {project}."
                )));
            }
        };
        let mut ports = self.ports.lock().unwrap();
        let ours: Vec<&String> = vifs
            .iter()
            .map(|v| &v.port_id)
            .filter(|id| ports.get(*id).is_some_and(|p| p.device_id == server_uuid))
            .collect();
        let holding = ours.iter().any(|p| ports[*p].security_groups.contains(&id));
        if add == holding {
            return Err(ApiError::bad_request(format!(
                "Security group {group} is already (or not) associated with {server_uuid}"
            )));
        }
        for port_id in ours {
            let groups = &mut ports.get_mut(port_id).unwrap().security_groups;
            match add {
                true if !groups.contains(&id) => groups.push(id.clone()),
                true => {}
                false => groups.retain(|g| g != &id),
            }
        }
        self.group_changes
            .lock()
            .unwrap()
            .push((server_uuid.to_string(), group.to_string(), add));
        Ok(())
    }

    async fn pending(&self, port_ids: &[String]) -> anyhow::Result<Vec<String>> {
        let ports = self.ports.lock().unwrap();
        Ok(port_ids
            .iter()
            .filter(|id| ports.get(*id).is_none_or(|p| p.status != "ACTIVE"))
            .cloned()
            .collect())
    }

    async fn refresh(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<Vec<Vif>> {
        Ok(vifs
            .iter()
            .map(|vif| match self.port(&vif.port_id) {
                Some(port) if vif.bound() && port.device_id == server_uuid => {
                    self.describe(vif, &port)
                }
                _ => vif.clone(),
            })
            .collect())
    }

    async fn security_group_names(
        &self,
        server_uuids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for port in self.ports.lock().unwrap().values() {
            if !server_uuids.contains(&port.device_id.as_str()) {
                continue;
            }
            let names = out.entry(port.device_id.clone()).or_default();
            for id in &port.security_groups {
                let name = id.trim_start_matches("sg-").to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(out)
    }

    async fn floating_ip(
        &self,
        project: &str,
        admin: bool,
        address: &str,
    ) -> Result<Option<FloatingIpInfo>, ApiError> {
        let floating = self.floating.lock().unwrap().get(address).cloned();
        let Some(f) = floating.filter(|f| admin || f.project_id == project) else {
            return Ok(None);
        };
        let port_id = f.association.map(|(port, _)| port);
        let device_id = port_id
            .as_deref()
            .and_then(|p| self.port(p))
            .map(|p| p.device_id)
            .filter(|d| !d.is_empty());
        Ok(Some(FloatingIpInfo {
            id: f.id,
            port_id,
            device_id,
        }))
    }

    async fn set_floating_ip_port(
        &self,
        id: &str,
        port: Option<(&str, &str)>,
    ) -> Result<(), ApiError> {
        let mut floating = self.floating.lock().unwrap();
        let f = floating
            .values_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| ApiError::not_found(format!("Floating IP {id} could not be found")))?;
        f.association = port.map(|(p, ip)| (p.to_string(), ip.to_string()));
        Ok(())
    }
}

async fn conductor_call(c: &Compute, request: ConductorRequest) -> ConductorReply {
    let reply = c
        .bus
        .call(
            CONDUCTOR_QUEUE,
            rpc::encode(&request),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    rpc::decode(&reply).unwrap()
}

/// The conductor update an agent sends when `uuid` moves from task `expected` to `task`
/// (and to `vm`, powered on).
fn update(
    uuid: &str,
    expected: Option<&str>,
    vm: Option<&str>,
    task: Option<&str>,
) -> ConductorRequest {
    ConductorRequest::Update(StateUpdate {
        uuid: uuid.into(),
        expected_task_state: vec![expected.map(String::from)],
        vm_state: vm.map(String::from),
        task_state: Some(task.map(String::from)),
        power_state: vm.map(|_| 1),
        launched: vm == Some("active"),
    })
}

/// Registers `host` with the conductor and serves its queue like an agent whose guests always
/// start and whose deletes always succeed; every request it gets is handed over on the
/// returned channel.
async fn agent(c: Arc<Compute>, host: &str) -> mpsc::UnboundedReceiver<AgentRequest> {
    let heartbeat = ConductorRequest::Heartbeat {
        host: host.into(),
        node_uuid: uuid::Uuid::new_v4().to_string(),
        resources: HostResources {
            vcpus: 4,
            memory_mb: 8192 + 512,
            disk_gb: 100,
        },
        guests: vec![],
        capabilities: Some(crate::db::nodes::testing::qemu()),
    };
    assert_eq!(conductor_call(&c, heartbeat).await, ConductorReply::Ok);
    let mut queue = c.bus.consume(&agent_queue(host)).await.unwrap();
    let (seen, observed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(d) = queue.next().await {
            let request: AgentRequest = rpc::decode(&d.payload).unwrap();
            let _ = seen.send(request.clone());
            match request {
                AgentRequest::Build { build, .. } => {
                    let u = &build.uuid;
                    let spawning = update(u, None, None, Some("spawning"));
                    if conductor_call(&c, spawning).await == ConductorReply::Ok {
                        let active = update(u, Some("spawning"), Some("active"), None);
                        conductor_call(&c, active).await;
                    }
                }
                AgentRequest::Delete { uuid, .. } => {
                    let host = String::new();
                    conductor_call(&c, ConductorRequest::Deleted { uuid, host }).await;
                }
                _ => {}
            }
        }
    });
    observed
}

/// The API with a running conductor and the `m1.tiny` flavor (`1`); `network`, when given, is
/// the cloud's networking service.
async fn cloud(name: &str, network: Option<&Arc<FakeNetwork>>) -> Harness {
    let h = Harness::open(name).await;
    if let Some(network) = network {
        let _ = network.store.set(h.compute.store.clone());
        h.compute.set_network(network.clone());
    }
    conductor::start(h.compute.clone()).await.unwrap();
    let r = h
        .call(
            "admin",
            "POST",
            "/v2.1/flavors",
            "2.1",
            Some(flavor("m1.tiny", json!({"id": "1", "ram": 256, "disk": 1}))),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    h
}

/// Alice's `POST /servers` of `vm` with `networks` (and `extra` server fields).
async fn create(h: &Harness, mv: &str, networks: Value, extra: Value) -> Reply {
    let mut server =
        json!({"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": networks});
    for (k, v) in extra.as_object().unwrap() {
        server[k] = v.clone();
    }
    let body = json!({ "server": server });
    h.call("alice", "POST", "/v2.1/servers", mv, Some(body))
        .await
}

/// Creates the server and answers its id (202 expected).
async fn created(h: &Harness, networks: Value, extra: Value) -> String {
    let r = create(h, "2.96", networks, extra).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_string()
}

fn bad_request(r: &Reply) -> String {
    assert_eq!(r.status, 400, "{:?}", r.body);
    r.body["badRequest"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn instance(h: &Harness, id: &str) -> Instance {
    idb::instance(&h.compute.store, id).await.unwrap().unwrap()
}

/// The next build cast to the agent (other requests skipped).
async fn next_build(agent: &mut mpsc::UnboundedReceiver<AgentRequest>) -> GuestBuild {
    loop {
        let request = tokio::time::timeout(Duration::from_secs(10), agent.recv())
            .await
            .expect("a build cast to the agent")
            .expect("a running agent");
        if let AgentRequest::Build { build, .. } = request {
            return build;
        }
    }
}

/// Polls a server until its status is `status` and its task state is idle.
async fn wait_for(h: &Harness, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        let r = h
            .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
            .await;
        if r.body["server"]["status"] == status
            && r.body["server"]["OS-EXT-STS:task_state"].is_null()
        {
            return r.body["server"].clone();
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} never reached {status}: {last}");
}

/// Polls a deleted server until it is gone (404).
async fn wait_gone(h: &Harness, id: &str) {
    for _ in 0..250 {
        let r = h
            .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
            .await;
        if r.status == 404 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} was never deleted");
}

/// A cloud named `name` over `fake` (with a scripted agent: keep the receiver) and an ACTIVE
/// server of alice's on [`NET`] at 10.0.0.42.
async fn active_at_42(
    fake: &Arc<FakeNetwork>,
    name: &str,
) -> (Harness, mpsc::UnboundedReceiver<AgentRequest>, String) {
    let h = cloud(name, Some(fake)).await;
    let agent = agent(h.compute.clone(), HOST).await;
    let id = created(
        &h,
        json!([{"uuid": NET, "fixed_ip": "10.0.0.42"}]),
        json!({}),
    )
    .await;
    wait_for(&h, &id, "ACTIVE").await;
    (h, agent, id)
}

async fn action(h: &Harness, id: &str, body: Value) -> Reply {
    let path = format!("/v2.1/servers/{id}/action");
    h.call("alice", "POST", &path, "2.96", Some(body)).await
}

#[tokio::test]
async fn networks_are_validated_before_anything_is_created() {
    let fake = FakeNetwork::new();
    let h = cloud("net-validate", Some(&fake)).await;
    let none = json!({});
    let r = create(&h, "2.96", json!([{"uuid": "not-a-uuid"}]), none.clone()).await;
    assert_eq!(
        bad_request(&r),
        "Bad networks format: network uuid is not in proper format (not-a-uuid)"
    );
    let r = create(&h, "2.96", json!([{"uuid": NET, "foo": 1}]), none.clone()).await;
    assert!(
        bad_request(&r).contains("'foo' was unexpected"),
        "{:?}",
        r.body
    );
    let r = create(
        &h,
        "2.96",
        json!([{"uuid": NET, "fixed_ip": "10.0.0.300"}]),
        none.clone(),
    )
    .await;
    assert_eq!(bad_request(&r), "Invalid fixed IP address (10.0.0.300)");
    let r = create(
        &h,
        "2.96",
        json!([{"port": USER_PORT}]),
        json!({"max_count": 2}),
    )
    .await;
    assert!(
        bad_request(&r)
            .starts_with("Unable to launch multiple instances with a single configured port ID"),
        "{:?}",
        r.body
    );
    // Unknown to the networking service, or another project's: its 400.
    for net in ["0d1c2b3a-0000-4000-8000-000000000000", BOB_NET] {
        let r = create(&h, "2.96", json!([{"uuid": net}]), none.clone()).await;
        assert_eq!(
            bad_request(&r),
            format!("Network {net} could not be found.")
        );
    }
    // Nothing was created nor bound.
    let r = h.call("alice", "GET", "/v2.1/servers", "2.96", None).await;
    assert_eq!(r.body["servers"], json!([]));
    assert!(fake.binds().is_empty());
}

#[tokio::test]
async fn auto_takes_the_projects_network_and_none_takes_nothing() {
    let fake = FakeNetwork::new();
    let h = cloud("net-auto", Some(&fake)).await;
    let id = create(&h, "2.37", json!("auto"), json!({})).await;
    assert_eq!(id.status, 202, "{:?}", id.body);
    let inst = instance(&h, id.body["server"]["id"].as_str().unwrap()).await;
    let expected = RequestedNic {
        network_id: Some(NET.into()),
        ..Default::default()
    };
    assert_eq!(inst.data.spec.requested_networks, [expected]);

    let id = create(&h, "2.37", json!("none"), json!({})).await;
    assert_eq!(id.status, 202, "{:?}", id.body);
    let inst = instance(&h, id.body["server"]["id"].as_str().unwrap()).await;
    assert!(inst.data.spec.requested_networks.is_empty());
}

#[tokio::test]
async fn without_a_networking_service_only_auto_and_none_are_accepted() {
    let h = cloud("net-absent", None).await;
    let mut agent = agent(h.compute.clone(), HOST).await;
    let r = create(&h, "2.96", json!([{"uuid": NET}]), json!({})).await;
    assert!(
        bad_request(&r).starts_with("Networks cannot be requested"),
        "{:?}",
        r.body
    );
    let id = created(&h, json!("auto"), json!({})).await;
    let build = next_build(&mut agent).await;
    assert_eq!(build.uuid, id);
    assert!(build.interfaces.is_empty());
    let server = wait_for(&h, &id, "ACTIVE").await;
    assert_eq!(server["addresses"], json!({}));
    let inst = instance(&h, &id).await;
    assert!(inst.data.spec.requested_networks.is_empty());
    assert!(inst.data.vifs.is_empty());
}

#[tokio::test]
async fn ports_are_planned_recorded_and_bound_before_the_build_is_cast() {
    let fake = FakeNetwork::new();
    let h = cloud("net-bind", Some(&fake)).await;
    let mut agent = agent(h.compute.clone(), HOST).await;
    let id = created(
        &h,
        json!([{"uuid": NET}]),
        json!({"security_groups": [{"name": "web"}]}),
    )
    .await;
    let build = next_build(&mut agent).await;
    assert_eq!(build.uuid, id);

    // The bind the conductor asked for: the server's, on the chosen host, in its zone.
    let binds = fake.binds();
    assert_eq!(binds.len(), 1, "{binds:?}");
    let (vif, owner) = &binds[0];
    assert!(vif.created);
    assert_eq!(vif.network_id, NET);
    assert_eq!(vif.security_groups, ["sg-web"]);
    let expected = PortOwner {
        server_uuid: id.clone(),
        project_id: "p1".into(),
        host: HOST.into(),
        device_owner: "compute:nova".into(),
    };
    assert_eq!(*owner, expected);
    let port = fake.port(&vif.port_id).expect("the port was created");
    assert_eq!(port.device_id, id);
    assert_eq!(port.host, HOST);
    assert_eq!(port.security_groups, ["sg-web"]);

    // Its id was chosen and recorded in the instance before the port was made.
    assert_eq!(
        *fake.planned_first.lock().unwrap(),
        [(vif.port_id.clone(), true)]
    );
    let inst = instance(&h, &id).await;
    assert_eq!(inst.data.vifs.len(), 1);
    let recorded = &inst.data.vifs[0];
    assert_eq!(recorded.port_id, vif.port_id);
    assert!(recorded.created);
    assert_eq!(recorded.mac_address, port.mac);

    // The build carries the bound interface.
    assert_eq!(build.interfaces.len(), 1);
    let interface = &build.interfaces[0];
    assert_eq!(interface.port_id, vif.port_id);
    assert_eq!(interface.mac_address, port.mac);
    assert_eq!(interface.tap, format!("tap{}", &vif.port_id[..11]));
    assert_eq!(interface.mtu, Some(1450));
}

#[tokio::test]
async fn ports_active_answers_the_ports_not_yet_active() {
    let fake = FakeNetwork::new();
    let h = cloud("net-active", Some(&fake)).await;
    let mut agent = agent(h.compute.clone(), HOST).await;
    let id = created(&h, json!([{"uuid": NET}, {"port": USER_PORT}]), json!({})).await;
    next_build(&mut agent).await;
    let ports: Vec<String> = instance(&h, &id)
        .await
        .data
        .vifs
        .iter()
        .map(|v| v.port_id.clone())
        .collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[1], USER_PORT);
    let ask = || ConductorRequest::PortsActive { uuid: id.clone() };
    let pending = |p: &[String]| ConductorReply::PortsActive {
        pending: p.to_vec(),
    };
    assert_eq!(conductor_call(&h.compute, ask()).await, pending(&ports));
    fake.set_status(&ports[0], "ACTIVE");
    assert_eq!(
        conductor_call(&h.compute, ask()).await,
        pending(&ports[1..])
    );
    fake.set_status(&ports[1], "ACTIVE");
    assert_eq!(conductor_call(&h.compute, ask()).await, pending(&[]));
}

#[tokio::test]
async fn delete_deletes_created_ports_and_unbinds_taken_ones() {
    let fake = FakeNetwork::new();
    let h = cloud("net-delete", Some(&fake)).await;
    let _agent = agent(h.compute.clone(), HOST).await;
    let id = created(&h, json!([{"uuid": NET}, {"port": USER_PORT}]), json!({})).await;
    wait_for(&h, &id, "ACTIVE").await;
    let vifs = instance(&h, &id).await.data.vifs;
    assert_eq!(vifs.len(), 2);
    let created_port = vifs[0].port_id.clone();
    assert!(vifs[0].created);
    assert!(!vifs[1].created);
    assert_eq!(vifs[1].network_id, NET, "a taken port brings its network");
    let taken = fake.port(USER_PORT).unwrap();
    assert_eq!(
        (taken.device_id.as_str(), taken.host.as_str()),
        (id.as_str(), HOST)
    );
    assert!(fake.port(&created_port).is_some());

    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{id}"),
            "2.96",
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    wait_gone(&h, &id).await;
    assert!(
        fake.port(&created_port).is_none(),
        "the created port is deleted"
    );
    let taken = fake.port(USER_PORT).expect("the user's port is kept");
    assert_eq!(taken.device_id, "");
    assert_eq!(taken.device_owner, "");
    assert_eq!(taken.host, "");
    let releases = fake.releases.lock().unwrap().clone();
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].0, id);
}

#[tokio::test]
async fn show_lists_the_fixed_addresses_per_network() {
    let fake = FakeNetwork::new();
    let (h, _agent, id) = active_at_42(&fake, "net-addresses").await;
    let port = &instance(&h, &id).await.data.vifs[0].port_id;
    let mac = fake.port(port).unwrap().mac;
    assert_eq!(
        addresses(&h, &id).await,
        json!({NET_NAME: [{
            "version": 4,
            "addr": "10.0.0.42",
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": mac,
        }]})
    );
}

#[tokio::test]
async fn security_groups_are_changed_through_the_networking_service() {
    // No networking service: servers have no ports to change.
    let h = cloud("net-sg-absent", None).await;
    let id = created(&h, json!("none"), json!({})).await;
    let r = action(&h, &id, json!({"addSecurityGroup": {"name": "web"}})).await;
    assert!(
        bad_request(&r).contains("no networking service"),
        "{:?}",
        r.body
    );

    let fake = FakeNetwork::new();
    let h = cloud("net-sg", Some(&fake)).await;
    let _agent = agent(h.compute.clone(), HOST).await;
    let id = created(&h, json!([{"uuid": NET}]), json!({})).await;
    wait_for(&h, &id, "ACTIVE").await;
    let port = instance(&h, &id).await.data.vifs[0].port_id.clone();
    assert_eq!(fake.port(&port).unwrap().security_groups, ["sg-default"]);

    let r = action(&h, &id, json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(
        *fake.group_changes.lock().unwrap(),
        [(id.clone(), "web".to_string(), true)]
    );
    assert_eq!(
        fake.port(&port).unwrap().security_groups,
        ["sg-default", "sg-web"]
    );
    // The service's errors are the API's.
    let r = action(&h, &id, json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = action(&h, &id, json!({"addSecurityGroup": {"name": "nope"}})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    let r = action(&h, &id, json!({"removeSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(fake.port(&port).unwrap().security_groups, ["sg-default"]);
}

/// `addresses` of the server as alice sees it.
async fn addresses(h: &Harness, id: &str) -> Value {
    let r = h
        .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["server"]["addresses"].clone()
}

/// A floating IP of `project` in the fake networking service.
fn add_floating(fake: &FakeNetwork, address: &str, id: &str, project: &str) {
    fake.floating.lock().unwrap().insert(
        address.into(),
        FakeFloating {
            id: id.into(),
            project_id: project.into(),
            association: None,
        },
    );
}

#[tokio::test]
async fn floating_ip_actions_associate_and_show_in_addresses() {
    let fake = FakeNetwork::new();
    let (h, _agent, id) = active_at_42(&fake, "net-fip-actions").await;
    let port = instance(&h, &id).await.data.vifs[0].port_id.clone();
    let mac = fake.port(&port).unwrap().mac;
    add_floating(&fake, "172.24.4.10", "fip-1", "p1");
    add_floating(&fake, "172.24.4.20", "fip-2", "p2");
    let path = format!("/v2.1/servers/{id}/action");
    let act = |mv: &'static str, body: Value| {
        let path = path.clone();
        let h = &h;
        async move { h.call("alice", "POST", &path, mv, Some(body)).await }
    };

    // Removed from the API at 2.44.
    let r = act("2.44", json!({"addFloatingIp": {"address": "172.24.4.10"}})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    // Bad input, unknown or invisible floating IPs, a fixed address of another server.
    let r = act("2.43", json!({"addFloatingIp": {"address": "nope"}})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = act("2.43", json!({"addFloatingIp": {}})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = act("2.43", json!({"addFloatingIp": {"address": "172.24.4.99"}})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(r.body["itemNotFound"]["message"], "floating IP not found");
    let r = act("2.43", json!({"addFloatingIp": {"address": "172.24.4.20"}})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let body = json!({"addFloatingIp": {"address": "172.24.4.10", "fixed_address": "10.0.0.9"}});
    let r = act("2.43", body).await;
    assert_eq!(
        bad_request(&r),
        "Specified fixed address not assigned to instance"
    );

    let r = act("2.43", json!({"addFloatingIp": {"address": "172.24.4.10"}})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let entry = |addr: &str, kind: &str| json!({"version": 4, "addr": addr, "OS-EXT-IPS:type": kind, "OS-EXT-IPS-MAC:mac_addr": mac});
    assert_eq!(
        addresses(&h, &id).await,
        json!({NET_NAME: [entry("10.0.0.42", "fixed"), entry("172.24.4.10", "floating")]})
    );

    let r = act(
        "2.43",
        json!({"removeFloatingIp": {"address": "172.24.4.10"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(
        addresses(&h, &id).await,
        json!({NET_NAME: [entry("10.0.0.42", "fixed")]})
    );
    let r = act(
        "2.43",
        json!({"removeFloatingIp": {"address": "172.24.4.10"}}),
    )
    .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(
        r.body["conflictingRequest"]["message"],
        format!("Floating IP 172.24.4.10 is not associated with instance {id}.")
    );
}

#[tokio::test]
async fn network_changed_refreshes_the_addresses() {
    let fake = FakeNetwork::new();
    let (h, _agent, id) = active_at_42(&fake, "net-changed").await;
    let port = instance(&h, &id).await.data.vifs[0].port_id.clone();
    // Associated behind compute's back (through the Neutron API): not seen until told.
    add_floating(&fake, "172.24.4.10", "fip-1", "p1");
    fake.floating
        .lock()
        .unwrap()
        .get_mut("172.24.4.10")
        .unwrap()
        .association = Some((port.clone(), "10.0.0.42".into()));
    assert_eq!(
        addresses(&h, &id).await[NET_NAME].as_array().unwrap().len(),
        1
    );

    let event = json!({"events": [{"name": "network-changed", "server_uuid": id, "tag": port}]});
    let r = h
        .call(
            "admin",
            "POST",
            "/v2.1/os-server-external-events",
            "2.51",
            Some(event),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let shown = addresses(&h, &id).await;
    assert_eq!(shown[NET_NAME][1]["addr"], "172.24.4.10", "{shown}");
    assert_eq!(shown[NET_NAME][1]["OS-EXT-IPS:type"], "floating");
}

#[tokio::test]
async fn servers_with_ports_show_their_security_groups() {
    let fake = FakeNetwork::new();
    let h = cloud("net-sg-view", Some(&fake)).await;
    let _agent = agent(h.compute.clone(), HOST).await;
    let id = created(&h, json!([{"uuid": NET}]), json!({})).await;
    wait_for(&h, &id, "ACTIVE").await;
    let bare = created(&h, json!("none"), json!({})).await;
    wait_for(&h, &bare, "ACTIVE").await;
    let r = action(&h, &id, json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    let groups = json!([{"name": "default"}, {"name": "web"}]);
    let r = h
        .call("alice", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
        .await;
    assert_eq!(r.body["server"]["security_groups"], groups);
    let r = h
        .call("alice", "GET", "/v2.1/servers/detail", "2.96", None)
        .await;
    let servers = r.body["servers"].as_array().unwrap();
    let with = servers.iter().find(|s| s["id"] == id.as_str()).unwrap();
    let without = servers.iter().find(|s| s["id"] == bare.as_str()).unwrap();
    assert_eq!(with["security_groups"], groups);
    // A server without ports has none (Nova leaves the key out).
    assert!(without.get("security_groups").is_none(), "{without}");
    // PUT answers with the full body from 2.75 only.
    let rename = json!({"server": {"name": "renamed"}});
    let path = format!("/v2.1/servers/{id}");
    let r = h
        .call("alice", "PUT", &path, "2.74", Some(rename.clone()))
        .await;
    assert!(
        r.body["server"].get("security_groups").is_none(),
        "{:?}",
        r.body
    );
    let r = h.call("alice", "PUT", &path, "2.75", Some(rename)).await;
    assert_eq!(r.body["server"]["security_groups"], groups);
}

#[tokio::test]
async fn ips_lists_the_addresses_per_network() {
    let fake = FakeNetwork::new();
    let (h, _agent, id) = active_at_42(&fake, "net-ips").await;
    let r = h
        .call(
            "alice",
            "GET",
            &format!("/v2.1/servers/{id}/ips"),
            "2.1",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let short = json!([{"version": 4, "addr": "10.0.0.42"}]);
    assert_eq!(r.body, json!({"addresses": {NET_NAME: short}}));
    let path = format!("/v2.1/servers/{id}/ips/{NET_NAME}");
    let r = h.call("alice", "GET", &path, "2.1", None).await;
    assert_eq!(r.body, json!({NET_NAME: short}));
    let path = format!("/v2.1/servers/{id}/ips/elsewhere");
    let r = h.call("alice", "GET", &path, "2.1", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    // Another project's caller does not see the server at all.
    let r = h
        .call(
            "bob",
            "GET",
            &format!("/v2.1/servers/{id}/ips"),
            "2.1",
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test]
async fn servers_are_listed_by_address() {
    let fake = FakeNetwork::new();
    let (h, _agent, first) = active_at_42(&fake, "net-list-ip").await;
    let second = created(
        &h,
        json!([{"uuid": NET, "fixed_ip": "10.0.0.43"}]),
        json!({}),
    )
    .await;
    wait_for(&h, &second, "ACTIVE").await;
    let ids = |query: &'static str| {
        let h = &h;
        async move {
            let r = h
                .call(
                    "alice",
                    "GET",
                    &format!("/v2.1/servers?{query}"),
                    "2.96",
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            let mut ids: Vec<String> = r.body["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(ids("ip=10.0.0.42").await, std::slice::from_ref(&first));
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(ids("ip=10.0.0.4").await, both);
    assert!(ids("ip=10.9").await.is_empty());
    // The fake's addresses are IPv4 only.
    assert!(ids("ip6=10.0.0.42").await.is_empty());
}
