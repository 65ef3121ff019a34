//! How one host's network agent runs (Neutron's `[linux_bridge]`, `[vxlan]`, DHCP and metadata
//! agent options).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The host name. It scopes ownership: every kernel object the agent creates is marked with
    /// it ([`AgentConfig::owner_tag`]), and reconciliation removes only objects with this mark,
    /// so several agents (or tests) share a kernel without touching each other's objects.
    pub host: String,
    /// The agent's own files.
    pub state_dir: PathBuf,
    /// Where DHCP configuration, leases and pid files live (`<dhcp_root>/<network>/`; default
    /// `<state_dir>/dhcp`). dnsmasq re-reads its hosts file as `nobody` on a reload, so every
    /// directory above it must be traversable by others (a private state directory is not).
    pub dhcp_root: PathBuf,
    /// This host's VTEP address (`[vxlan] local_ip`); required for vxlan networks.
    pub local_vtep_ip: Option<IpAddr>,
    /// The underlay device of VXLAN traffic (`[vxlan]` uses the route to the remote otherwise).
    pub vxlan_underlay_device: Option<String>,
    /// The VXLAN UDP port (IANA's 4789, as Neutron's `[vxlan] udp_dstport`).
    pub vxlan_port: u16,
    /// `physical_interface_mappings`: physical network name → host interface. Flat networks
    /// enslave the interface into their bridge; VLAN networks a `<interface>.<vid>`
    /// sub-interface.
    pub physical_interface_mappings: BTreeMap<String, String>,
    /// `bridge_mappings`: physical network name → an existing host bridge used as the network's
    /// bridge for flat networks (the agent plugs into it but never creates or deletes it).
    pub bridge_mappings: BTreeMap<String, String>,
    /// `dhcp_domain` (Neutron's default `openstacklocal`): the DNS domain of port host names.
    pub dhcp_domain: String,
    /// `dhcp_lease_duration` in seconds.
    pub dhcp_lease_duration: u32,
    /// `dnsmasq_dns_servers`: upstream resolvers dnsmasq forwards to (none: it answers only
    /// the network's own names).
    pub dnsmasq_dns_servers: Vec<IpAddr>,
    /// The metadata proxy; `None` disables it (no 169.254.169.254 in DHCP namespaces).
    pub metadata: Option<MetadataConfig>,
    /// Create tap devices the desired state names that do not exist yet (normally libvirt
    /// creates them when it starts the guest; tests and benchmarks use this).
    pub create_missing_taps: bool,
}

/// Where the metadata proxy forwards and how it signs (Neutron's `nova_metadata_host`/`port`
/// and `metadata_proxy_shared_secret`).
#[derive(Debug, Clone)]
pub struct MetadataConfig {
    /// The compute metadata service, e.g. `http://127.0.0.1:8775`.
    pub nova_metadata_url: String,
    /// The secret shared with the compute metadata service (HMAC-SHA256 key).
    pub shared_secret: String,
    /// The port the proxy listens on at 169.254.169.254 inside each `qdhcp-` namespace.
    pub listen_port: u16,
}

impl MetadataConfig {
    /// A proxy to `nova_metadata_url` signing with `shared_secret`, on port 80.
    pub fn new(nova_metadata_url: impl Into<String>, shared_secret: impl Into<String>) -> Self {
        MetadataConfig {
            nova_metadata_url: nova_metadata_url.into(),
            shared_secret: shared_secret.into(),
            listen_port: 80,
        }
    }
}

impl AgentConfig {
    /// Neutron's defaults for `host`, keeping state under `state_dir`.
    pub fn new(host: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        let state_dir: PathBuf = state_dir.into();
        AgentConfig {
            host: host.into(),
            dhcp_root: state_dir.join("dhcp"),
            state_dir,
            local_vtep_ip: None,
            vxlan_underlay_device: None,
            vxlan_port: 4789,
            physical_interface_mappings: BTreeMap::new(),
            bridge_mappings: BTreeMap::new(),
            dhcp_domain: "openstacklocal".to_string(),
            dhcp_lease_duration: 86400,
            dnsmasq_dns_servers: Vec::new(),
            metadata: None,
            create_missing_taps: false,
        }
    }

    /// The mark on every object this agent owns: the interface alias of its bridges, VXLAN,
    /// VLAN and veth devices and of the loopback device of its namespaces.
    pub fn owner_tag(&self) -> String {
        format!("ferrostack-network-agent:{}", self.host)
    }

    /// The name of this agent's nftables tables in the host namespace (`ferrostack_<host>`
    /// with characters nft identifiers do not allow replaced by `_`).
    pub fn firewall_table(&self) -> String {
        let host: String = self
            .host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("ferrostack_{host}")
    }

    /// The directory of the DHCP files of `network_id`.
    pub fn dhcp_dir(&self, network_id: &str) -> PathBuf {
        self.dhcp_root().join(network_id)
    }

    /// The parent of every network's DHCP directory.
    pub fn dhcp_root(&self) -> PathBuf {
        self.dhcp_root.clone()
    }
}
