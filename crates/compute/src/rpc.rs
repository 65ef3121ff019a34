//! The messages between the conductor (in the API process, the only one with database access)
//! and the compute agents (one per hypervisor host, database-free), carried as JSON over the
//! [`ferrostack_bus::MessageBus`].
//!
//! - Conductor → agent: casts and calls on the agent's queue ([`agent_queue`]).
//! - Agent → conductor: calls on [`CONDUCTOR_QUEUE`]; every state change an agent makes is a
//!   compare-and-swap on the instance's task state done by the conductor, so an agent acting on
//!   a stale request (the server was deleted meanwhile) learns it and cleans up.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The conductor's queue.
pub const CONDUCTOR_QUEUE: &str = "compute.conductor";

/// The queue of the agent on `host`.
pub fn agent_queue(host: &str) -> String {
    format!("compute.agent.{host}")
}

/// A Glance image the agent fetches and caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    pub id: String,
    pub disk_format: String,
    /// Bytes, for the cache's free-space check.
    pub size: Option<i64>,
}

/// Everything an agent needs to create (or re-create) one guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestBuild {
    pub uuid: String,
    /// Domain name (`instance-%08x`).
    pub domain_name: String,
    pub display_name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    /// Root disk size in GiB; 0 keeps the image's virtual size.
    pub root_gb: u64,
    pub image: ImageRef,
    /// Direct kernel boot: kernel and ramdisk images and the command line.
    pub kernel: Option<ImageRef>,
    pub ramdisk: Option<ImageRef>,
    pub kernel_cmdline: Option<String>,
    /// The config drive's files (path → content), when the server has one.
    pub config_drive: Option<BTreeMap<String, Vec<u8>>>,
    /// The guest's network interfaces (its bound Neutron ports), in order; the guest starts
    /// paused until every one is reported plugged.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// The volumes attached to the guest (defined with it, so a redefine keeps them); the one
    /// on `vda`, if any, is its root disk ([`GuestBuild::boot_volume`]).
    #[serde(default)]
    pub volumes: Vec<VolumeDisk>,
}

/// The guest device of the root disk: the local one, or the volume a guest boots from.
pub const ROOT_TARGET: &str = "vda";

impl GuestBuild {
    /// The volume the guest boots from (on `vda`), when it has no local root disk.
    pub fn boot_volume(&self) -> Option<&VolumeDisk> {
        self.volumes.iter().find(|v| v.target == ROOT_TARGET)
    }
}

/// A volume disk of a guest: the file the hypervisor opens and the guest's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDisk {
    pub volume_id: String,
    /// The volume's file on the host (a shared directory for the `file` backend).
    pub path: String,
    /// `raw` or `qcow2`.
    pub format: String,
    /// The guest's device name (`vdb`).
    pub target: String,
    pub readonly: bool,
}

/// A guest interface: one bound port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub port_id: String,
    pub mac_address: String,
    /// `tap` + the port id's first 11 characters (the device the network agent plugs).
    pub tap: String,
    pub mtu: Option<u32>,
}

/// An event from another service about a server (Nova's `os-server-external-events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalEvent {
    pub server_uuid: String,
    /// `network-vif-plugged`, `network-changed`, ...
    pub name: String,
    /// The port id for network events.
    pub tag: Option<String>,
    /// `completed`, `failed` or `in-progress`.
    pub status: String,
}

/// Conductor → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AgentRequest {
    /// Build and start a guest (cast). The agent reports through [`ConductorRequest`].
    Build {
        build: GuestBuild,
        /// The instance action's request id, for events.
        request_id: String,
    },
    /// Stop and undefine the guest and remove its files (cast; idempotent).
    Delete { uuid: String, request_id: String },
    /// Clean shutdown (ACPI, then hard after the timeout).
    Stop { uuid: String, request_id: String },
    /// Start a stopped guest; re-creates its domain and disks from `build` if missing.
    Start {
        build: GuestBuild,
        request_id: String,
    },
    Reboot {
        build: GuestBuild,
        hard: bool,
        request_id: String,
    },
    /// Call: the tail of the serial console log.
    ConsoleOutput { uuid: String, length: Option<i64> },
    /// Call: where the guest's VNC server listens now, answered with
    /// [`AgentReply::VncConsole`], [`AgentReply::ConsoleUnavailable`] or
    /// [`AgentReply::NotFound`] (Nova's `get_vnc_console` / `validate_console_port`).
    VncConsole { uuid: String },
    /// Call: liveness, answered with [`AgentReply::Pong`].
    Ping,
    /// External events for guests on this host (cast): wakes a build waiting for its ports.
    ExternalEvents { events: Vec<ExternalEvent> },
    /// Plug a volume into the guest, live when it runs (cast; idempotent). Answered with
    /// [`ConductorRequest::VolumeAttached`].
    AttachVolume {
        uuid: String,
        disk: VolumeDisk,
        request_id: String,
    },
    /// Unplug a volume from the guest (cast; idempotent). Answered with
    /// [`ConductorRequest::VolumeDetached`].
    DetachVolume {
        uuid: String,
        disk: VolumeDisk,
        request_id: String,
    },
}

/// Agent → conductor, answering [`AgentRequest`] calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum AgentReply {
    ConsoleOutput {
        output: String,
    },
    /// The guest's VNC server: `host` is the address the console proxy connects to (the
    /// host's `vnc_server_proxyclient_address`), `port` the one libvirt assigned.
    VncConsole {
        host: String,
        port: u16,
    },
    /// The guest has no console of that kind now (VNC disabled on the host, no display, or the
    /// guest is not running).
    ConsoleUnavailable {
        reason: String,
    },
    NotFound,
    Pong,
    Error {
        message: String,
    },
}

/// The resources a host offers, as it measures them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResources {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// What a host is and can run, as its virt driver reports it (the compute node fields of
/// Nova's `get_available_resource` that do not change while the host runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCapabilities {
    /// Nova's `hypervisor_type` (`QEMU` for the libvirt driver's QEMU and KVM guests).
    pub hypervisor_type: String,
    /// `major*1000000 + minor*1000 + release`.
    pub hypervisor_version: i64,
    /// The virtualization library's version (libvirt's), same encoding; 0 when none.
    #[serde(default)]
    pub libvirt_version: i64,
    /// The hypervisor's own name for the host.
    #[serde(default)]
    pub hostname: String,
    /// Nova's `cpu_info`: a JSON object as text (`arch`, `model`, `vendor`, `topology`,
    /// `features`).
    pub cpu_info: String,
    /// The guests the host can run: (architecture, hypervisor type, VM mode), as Nova's
    /// `supported_instances`.
    #[serde(default)]
    pub supported_instances: Vec<(String, String, String)>,
}

/// One guest the agent sees on its hypervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestState {
    pub uuid: String,
    /// Nova's power state code.
    pub power_state: i64,
}

/// An instance's state change reported by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateUpdate {
    pub uuid: String,
    /// Applied only if the instance's task state is one of these (`None` = idle).
    pub expected_task_state: Vec<Option<String>>,
    pub vm_state: Option<String>,
    /// `Some(None)` clears the task state (sent as `null`; an absent key is `None`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub task_state: Option<Option<String>>,
    pub power_state: Option<i64>,
    /// Sets `launched_at` to now.
    pub launched: bool,
}

/// A finished step of an instance action (Nova's action events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub uuid: String,
    pub request_id: String,
    pub event: String,
    pub start_time: String,
    pub finish_time: String,
    /// `None` = success, else the error text.
    pub error: Option<String>,
}

/// Agent → conductor (all calls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConductorRequest {
    /// Periodic: the agent is alive, what it offers and which guests run.
    Heartbeat {
        host: String,
        node_uuid: String,
        resources: HostResources,
        guests: Vec<GuestState>,
        /// What the host is and can run, as its driver reported at agent start-up; absent
        /// from agents older than this field (the node keeps what it had).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capabilities: Option<HostCapabilities>,
    },
    /// On agent start-up: which instances does the conductor say this host owns?
    HostInstances { host: String },
    /// A state change, applied as a compare-and-swap on the task state.
    Update(StateUpdate),
    /// A build failed on the host: the conductor reschedules or errors the instance.
    BuildFailed {
        uuid: String,
        host: String,
        message: String,
        /// Whether another host might succeed.
        reschedule: bool,
    },
    /// The guest of a deleted instance is gone from its host: finish the deletion.
    Deleted { uuid: String, host: String },
    /// Records an action event.
    Event(ActionEvent),
    /// Whether every port of the instance's interfaces is `ACTIVE` in the networking service,
    /// answered with [`ConductorReply::PortsActive`].
    PortsActive { uuid: String },
    /// The volume is plugged into the guest (`error`: it could not be).
    VolumeAttached {
        uuid: String,
        volume_id: String,
        error: Option<String>,
    },
    /// The volume is unplugged from the guest (`error`: it could not be; it stays attached).
    VolumeDetached {
        uuid: String,
        volume_id: String,
        error: Option<String>,
    },
}

/// What the conductor knows about an instance assigned to a host (answer to
/// [`ConductorRequest::HostInstances`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedInstance {
    pub uuid: String,
    pub vm_state: String,
    pub task_state: Option<String>,
    /// Set for instances whose guest should exist (everything but deleted rows).
    pub build: Option<GuestBuild>,
    /// The request id of the instance's newest action.
    pub request_id: String,
}

/// The conductor's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ConductorReply {
    Ok,
    /// The compare-and-swap failed: the instance is in another state (or deleted).
    Conflict {
        task_state: Option<String>,
        deleted: bool,
    },
    Instances {
        instances: Vec<OwnedInstance>,
    },
    /// `pending`: the ports not active yet (empty: all are).
    PortsActive {
        pending: Vec<String>,
    },
    Error {
        message: String,
    },
}

/// A key that is present deserialises to `Some`, even when its value is `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Encodes a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).expect("RPC messages always serialise")
}

/// Decodes a message.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_the_task_state_survives_encoding() {
        let mut u = StateUpdate {
            uuid: "u".into(),
            expected_task_state: vec![None, Some("spawning".into())],
            vm_state: None,
            task_state: Some(None),
            power_state: None,
            launched: false,
        };
        let back: StateUpdate = decode(&encode(&u)).unwrap();
        assert_eq!(back, u);
        u.task_state = None;
        let back: StateUpdate = decode(&encode(&u)).unwrap();
        assert_eq!(back, u);
        u.task_state = Some(Some("spawning".into()));
        assert_eq!(decode::<StateUpdate>(&encode(&u)).unwrap(), u);
    }

    #[test]
    fn heartbeats_without_capabilities_still_decode() {
        // As an agent older than the capabilities field sends it.
        let old = serde_json::json!({"op": "heartbeat", "host": "h", "node_uuid": "n",
            "resources": {"vcpus": 2, "memory_mb": 512, "disk_gb": 1}, "guests": []});
        let decoded: ConductorRequest = decode(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert!(matches!(
            &decoded,
            ConductorRequest::Heartbeat {
                capabilities: None,
                ..
            }
        ));
        assert_eq!(serde_json::to_value(&decoded).unwrap(), old);
        let caps = HostCapabilities {
            hypervisor_type: "QEMU".into(),
            hypervisor_version: 7002022,
            libvirt_version: 9000000,
            hostname: "vm".into(),
            cpu_info: r#"{"arch":"x86_64"}"#.into(),
            supported_instances: vec![("x86_64".into(), "qemu".into(), "hvm".into())],
        };
        let wire = serde_json::to_value(&caps).unwrap();
        assert_eq!(
            wire["supported_instances"],
            serde_json::json!([["x86_64", "qemu", "hvm"]])
        );
        assert_eq!(decode::<HostCapabilities>(&encode(&caps)).unwrap(), caps);
    }

    #[test]
    fn vnc_console_messages_have_a_stable_wire_form() {
        let request = AgentRequest::VncConsole { uuid: "u".into() };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"op": "vnc_console", "uuid": "u"})
        );
        let reply = AgentReply::VncConsole {
            host: "192.0.2.1".into(),
            port: 5901,
        };
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            serde_json::json!({"reply": "vnc_console", "host": "192.0.2.1", "port": 5901})
        );
        let unavailable = AgentReply::ConsoleUnavailable {
            reason: "off".into(),
        };
        assert_eq!(
            decode::<AgentReply>(&encode(&unavailable)).unwrap(),
            unavailable
        );
    }
}
