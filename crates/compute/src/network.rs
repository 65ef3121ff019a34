//! What compute needs from the networking service (Nova's `network/neutron.py`): checking the
//! `networks` a server asks for, creating or taking its ports bound to its host, telling
//! whether they are wired, and giving them back. The service behind [`NetworkApi`] is chosen
//! by the binary; compute never reads the networking tables.
//!
//! Crash safety: the ports of a server are planned before they exist — a port compute creates
//! gets its id up front, recorded in the instance ([`Vif::created`]) before it is made — so
//! every step can be repeated and a delete after any crash knows which ports to delete and
//! which to only unbind.

use ferrostack_api::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One entry of a server create's `networks` once resolved: a network to get a new port on, or
/// an existing port to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RequestedNic {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<String>,
}

/// What a server create asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRequest {
    /// `auto` (and an absent `networks` before 2.37): the project's network if it has exactly
    /// one, else the one shared network, else no interface. (Nova would try Neutron's
    /// auto-allocated topology for a 2.37 `auto`, which this cloud does not offer; without a
    /// network the server boots without an interface, as before 2.37.)
    Auto,
    /// `none`: no interface.
    None,
    /// Explicit networks, ports and fixed addresses.
    List(Vec<RequestedNic>),
}

/// A server create's interfaces with the security groups its new ports get.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedNetworks {
    pub nics: Vec<RequestedNic>,
    /// Group ids (the project's `default` when none was asked for).
    pub security_groups: Vec<String>,
}

/// An address of a port, with what the guest needs to configure it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VifIp {
    pub address: String,
    pub version: u8,
    pub subnet_id: String,
    pub cidr: String,
    pub gateway: Option<String>,
    pub dns_nameservers: Vec<String>,
    pub dhcp: bool,
    /// The floating addresses associated with this fixed address (Nova's info cache keeps
    /// them per fixed IP; refreshed on `network-changed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floating_ips: Vec<String>,
}

/// A server's interface: a port it created or took, and (once bound) what it looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    /// Compute made the port (deleted with the server) rather than taking the user's one
    /// (unbound on delete), as Nova's `preserve_on_delete`.
    pub created: bool,
    /// The address asked for, if any.
    pub fixed_ip: Option<String>,
    /// The security groups of a port compute creates (ids; empty: the project's default).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Filled when the port is bound (empty before).
    #[serde(default)]
    pub network_name: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub fixed_ips: Vec<VifIp>,
}

impl Vif {
    /// Whether the port was bound and its details recorded.
    pub fn bound(&self) -> bool {
        !self.mac_address.is_empty()
    }

    /// The guest's tap device (Nova's `tap` + the port id's first 11 characters).
    pub fn tap(&self) -> String {
        format!("tap{}", &self.port_id[..self.port_id.len().min(11)])
    }
}

/// The server a port is bound for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    pub server_uuid: String,
    pub project_id: String,
    pub host: String,
    /// `compute:<zone>`
    pub device_owner: String,
}

/// A floating IP as the server actions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingIpInfo {
    pub id: String,
    /// The port it is associated with, if any.
    pub port_id: Option<String>,
    /// That port's `device_id` (the server holding the floating IP).
    pub device_id: Option<String>,
}

/// The networking service as compute uses it.
#[async_trait::async_trait]
pub trait NetworkApi: Send + Sync {
    /// Checks the request as the caller (`project`, `admin`) may make it and resolves `auto`:
    /// networks that exist and are visible, ports of the project that are free, security
    /// groups (names or ids) of the project. The errors are Nova's (400 unknown network, port
    /// or group; 403 an external network; 409 port in use or an ambiguous `auto`).
    async fn resolve(
        &self,
        project: &str,
        admin: bool,
        request: &NetworkRequest,
        security_groups: &[String],
    ) -> Result<ResolvedNetworks, ApiError>;

    /// Makes `vif` exist and bound to `owner`'s host: a created port is made with the planned
    /// id if it does not exist yet; a taken port gets its device and binding. Idempotent.
    /// Returns the vif with its details.
    async fn bind(&self, vif: &Vif, owner: &PortOwner) -> anyhow::Result<Vif>;

    /// Gives the server's ports back: those it created are deleted, the others unbound (only
    /// if still the server's). Ports already gone are fine. Idempotent.
    async fn release(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<()>;

    /// Adds (or removes) security group `group` (name or id, looked up as for a server create)
    /// to (from) every port of the server: Nova's `addSecurityGroup`/`removeSecurityGroup`
    /// (404 unknown group, 400 already there / not there).
    async fn change_security_group(
        &self,
        project: &str,
        admin: bool,
        server_uuid: &str,
        vifs: &[Vif],
        group: &str,
        add: bool,
    ) -> Result<(), ApiError>;

    /// The ports among `port_ids` that are not `ACTIVE` yet.
    async fn pending(&self, port_ids: &[String]) -> anyhow::Result<Vec<String>>;

    /// The server's bound vifs read again from their ports (addresses and their floating
    /// addresses), as Nova refreshes its network info cache; a vif whose port is gone or no
    /// longer the server's is kept as it was.
    async fn refresh(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<Vec<Vif>>;

    /// The names of the security groups of each server's ports, by server uuid, each name
    /// once (Nova's `get_instances_security_groups_bindings`); servers without ports are
    /// absent.
    async fn security_group_names(
        &self,
        server_uuids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<String>>>;

    /// The floating IP with `address` that the caller (`project`, `admin`) can see.
    async fn floating_ip(
        &self,
        project: &str,
        admin: bool,
        address: &str,
    ) -> Result<Option<FloatingIpInfo>, ApiError>;

    /// Associates floating IP `id` with `fixed_address` of port `port_id`, or (with `None`)
    /// disassociates it. Neutron's refusals come back as its messages.
    async fn set_floating_ip_port(
        &self,
        id: &str,
        port: Option<(&str, &str)>,
    ) -> Result<(), ApiError>;
}
