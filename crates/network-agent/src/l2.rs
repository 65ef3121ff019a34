//! Layer 2, as Neutron's linuxbridge agent builds it: a bridge per network (`brq…`), its
//! segment device (a `vxlan-<vni>` tunnel with a unicast flood list of remote VTEPs, a mapped
//! physical interface for flat networks, a `<interface>.<vid>` sub-interface for VLANs), and the
//! guests' tap devices plugged into it.

use crate::agent::Pass;
use crate::config::AgentConfig;
use crate::error::{Error, Result};
use crate::kernel;
use crate::model::{Network, NetworkType};
use crate::names;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The bridge a network uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BridgeChoice {
    pub name: String,
    /// The agent created it (`brq…`); otherwise an existing bridge from `bridge_mappings`.
    pub owned: bool,
}

/// The device that connects a network's bridge to the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentDevice {
    Vxlan {
        device: String,
        vni: u32,
        local: IpAddr,
    },
    Physical {
        device: String,
    },
    Vlan {
        device: String,
        parent: String,
        vlan_id: u32,
    },
}

impl SegmentDevice {
    pub fn device(&self) -> &str {
        match self {
            SegmentDevice::Vxlan { device, .. }
            | SegmentDevice::Physical { device }
            | SegmentDevice::Vlan { device, .. } => device,
        }
    }

    /// Whether the agent creates (and so owns) the device.
    fn owned(&self) -> bool {
        !matches!(self, SegmentDevice::Physical { .. })
    }
}

/// How `network` is wired on this host: its bridge and its segment device.
pub(crate) fn wiring(
    config: &AgentConfig,
    network: &Network,
) -> Result<(BridgeChoice, Option<SegmentDevice>)> {
    let owned = |name: String| BridgeChoice { name, owned: true };
    let bridge = names::bridge(&network.id);
    let physnet = network.physical_network.as_deref().unwrap_or_default();
    let segment = network.segmentation_id.unwrap_or_default();
    let interface = || {
        config
            .physical_interface_mappings
            .get(physnet)
            .cloned()
            .ok_or_else(|| {
                Error::Config(format!(
                    "network {}: physical network {physnet:?} has no interface mapping",
                    network.id
                ))
            })
    };
    match network.network_type {
        NetworkType::Vxlan => {
            let local = config.local_vtep_ip.ok_or_else(|| {
                Error::Config(format!(
                    "network {}: vxlan networks need local_vtep_ip",
                    network.id
                ))
            })?;
            let device = names::vxlan(segment);
            Ok((
                owned(bridge),
                Some(SegmentDevice::Vxlan {
                    device,
                    vni: segment,
                    local,
                }),
            ))
        }
        NetworkType::Flat => match config.bridge_mappings.get(physnet) {
            Some(mapped) => Ok((
                BridgeChoice {
                    name: mapped.clone(),
                    owned: false,
                },
                None,
            )),
            None => Ok((
                owned(bridge),
                Some(SegmentDevice::Physical {
                    device: interface()?,
                }),
            )),
        },
        NetworkType::Vlan => {
            let parent = interface()?;
            Ok((
                owned(bridge),
                Some(SegmentDevice::Vlan {
                    device: names::vlan(&parent, segment),
                    parent,
                    vlan_id: segment,
                }),
            ))
        }
    }
}

/// `ip` arguments creating a VXLAN device: unicast flooding to the remotes in the fdb,
/// MAC learning on (unknown unicast is flooded, answers teach the bridge).
pub(crate) fn vxlan_add_args(
    device: &str,
    vni: u32,
    port: u16,
    local: IpAddr,
    underlay: Option<&str>,
) -> Vec<String> {
    let mut args: Vec<String> = ["link", "add", device, "type", "vxlan", "id"]
        .map(String::from)
        .to_vec();
    args.extend([
        vni.to_string(),
        "dstport".into(),
        port.to_string(),
        "local".into(),
        local.to_string(),
    ]);
    if let Some(dev) = underlay {
        args.extend(["dev".into(), dev.to_string()]);
    }
    args
}

/// `ip` arguments creating the VLAN sub-interface `device` of `parent`.
pub(crate) fn vlan_add_args(parent: &str, device: &str, vlan_id: u32) -> Vec<String> {
    [
        "link", "add", "link", parent, "name", device, "type", "vlan", "id",
    ]
    .map(String::from)
    .into_iter()
    .chain([vlan_id.to_string()])
    .collect()
}

/// Turns the kernel's refusal of VLAN devices (no 8021q: "Unknown device type", or
/// "Operation not supported") into [`Error::VlanUnsupported`]; other errors pass through.
pub fn classify_vlan_error(network_id: &str, error: Error) -> Error {
    match error {
        Error::Command {
            command, stderr, ..
        } if stderr.contains("Unknown device type") || stderr.contains("not supported") => {
            Error::VlanUnsupported {
                network: network_id.to_string(),
                command,
                stderr,
            }
        }
        other => other,
    }
}

/// What the host's root namespace should hold, from the desired state: the bridges, and for
/// every device the bridge it belongs in.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    /// Bridge names the agent owns and keeps.
    pub owned_bridges: BTreeSet<String>,
    /// Devices the agent owns and keeps (segment devices, veth ends, created taps).
    pub owned_devices: BTreeSet<String>,
    /// Device → the bridge it must be plugged into.
    pub members: BTreeMap<String, String>,
}

fn args_ref(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

impl Pass<'_> {
    /// The root namespace as the desired state wants it (networks whose wiring cannot be
    /// resolved are left out; their error is reported when they are converged).
    pub(crate) fn expected_root(&self) -> Expected {
        let mut expected = Expected::default();
        let config = &self.agent.config;
        for network in &self.state.networks {
            let Ok((bridge, segment)) = wiring(config, network) else {
                continue;
            };
            if bridge.owned {
                expected.owned_bridges.insert(bridge.name.clone());
            }
            if let Some(segment) = segment {
                if segment.owned() {
                    expected.owned_devices.insert(segment.device().to_string());
                }
                expected
                    .members
                    .insert(segment.device().to_string(), bridge.name.clone());
            }
            if crate::dhcp::serves_dhcp(network, &self.index.subnets_of(&network.id))
                && let Some(port) = &network.dhcp_port
            {
                let tap = names::tap(&port.id);
                expected.owned_devices.insert(tap.clone());
                expected.members.insert(tap, bridge.name.clone());
            }
        }
        for router in &self.state.routers {
            let ports = router
                .interfaces
                .iter()
                .map(|i| (&i.network_id, &i.port))
                .chain(
                    router
                        .external_gateway
                        .iter()
                        .map(|g| (&g.network_id, &g.port)),
                );
            for (network_id, port) in ports {
                if let Some(bridge) = self.bridge_of(network_id) {
                    let tap = names::tap(&port.id);
                    expected.owned_devices.insert(tap.clone());
                    expected.members.insert(tap, bridge);
                }
            }
        }
        for port in self.state.ports.iter().filter(|p| p.bound_here) {
            if let Some(bridge) = self.bridge_of(&port.network_id) {
                expected.owned_devices.insert(port.device_name());
                expected.members.insert(port.device_name(), bridge);
            }
        }
        expected
    }

    /// The bridge name of a desired network, if its wiring resolves.
    pub(crate) fn bridge_of(&self, network_id: &str) -> Option<String> {
        let network = self.index.networks.get(network_id)?;
        wiring(&self.agent.config, network)
            .ok()
            .map(|(bridge, _)| bridge.name)
    }

    /// Removes this agent's devices the desired state no longer names, and unplugs strays from
    /// its bridges (a removed port's tap, an interface of a changed mapping). Devices without
    /// the agent's mark are never deleted.
    pub(crate) fn remove_stale_links(&mut self, expected: &Expected) {
        let tag = self.agent.tag.clone();
        let (bridges, devices): (Vec<_>, Vec<_>) = self
            .links
            .values()
            .filter(|l| l.owned_by(&tag))
            .map(|l| (l.ifname.clone(), l.kind() == Some("bridge")))
            .partition(|(_, is_bridge)| *is_bridge);
        for (name, _) in devices {
            if !expected.owned_devices.contains(&name) {
                self.delete_link(&name);
            }
        }
        // Strays of bridges that stay (a bridge about to be deleted releases its ports anyway).
        let our_bridges: BTreeSet<String> = bridges
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| expected.owned_bridges.contains(n))
            .collect();
        let strays: Vec<String> = self
            .links
            .values()
            .filter(|l| {
                l.master.as_ref().is_some_and(|m| {
                    our_bridges.contains(m) && expected.members.get(&l.ifname) != Some(m)
                })
            })
            .map(|l| l.ifname.clone())
            .collect();
        for name in strays {
            match self
                .agent
                .runner
                .ip(None, &["link", "set", "dev", &name, "nomaster"])
            {
                Err(e) if e.is_missing_device() => {
                    self.links.remove(&name);
                }
                Ok(_) => {
                    self.report
                        .change(format!("unplugged {name} from its bridge"));
                    if let Some(link) = self.links.get_mut(&name) {
                        link.master = None;
                    }
                }
                Err(e) => self.report.error(format!("device {name}"), e),
            }
        }
        for (name, _) in bridges {
            if !expected.owned_bridges.contains(&name) {
                self.delete_link(&name);
            }
        }
    }

    fn delete_link(&mut self, name: &str) {
        match self.agent.runner.ip(None, &["link", "del", "dev", name]) {
            Ok(_) => {
                self.report.change(format!("deleted {name}"));
                self.links.remove(name);
            }
            Err(e) if e.is_missing_device() => {
                self.links.remove(name);
            }
            Err(e) => self.report.error(format!("device {name}"), e),
        }
    }

    /// Bridges and segment devices of every desired network. Networks that fail are reported
    /// and left out of [`Pass::bridges`], so nothing is plugged into them.
    pub(crate) fn converge_networks(&mut self) {
        for network in &self.state.networks {
            match self.converge_network(network) {
                Ok(bridge) => {
                    self.bridges.insert(network.id.clone(), bridge);
                }
                Err(e) => self.report.error(format!("network {}", network.id), e),
            }
        }
    }

    fn converge_network(&mut self, network: &Network) -> Result<String> {
        let (bridge, segment) = wiring(&self.agent.config, network)?;
        if bridge.owned {
            self.ensure_bridge(&bridge.name, network.mtu)?;
        } else {
            let Some(link) = self.links.get(&bridge.name) else {
                return Err(Error::Config(format!(
                    "mapped bridge {} does not exist",
                    bridge.name
                )));
            };
            // Security groups see bridged traffic only through br_netfilter.
            let host_wide = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
                .is_ok_and(|v| v.trim() == "1");
            let filtered_ports = self
                .state
                .ports
                .iter()
                .any(|p| p.bound_here && p.port_security_enabled && p.network_id == network.id);
            if filtered_ports && !host_wide && link.info_u64("nf_call_iptables") != Some(1) {
                return Err(Error::Config(format!(
                    "mapped bridge {} does not pass its traffic to netfilter (set its \
                     nf_call_iptables, or net.bridge.bridge-nf-call-iptables=1), so its ports \
                     could not be filtered",
                    bridge.name
                )));
            }
        }
        match segment {
            Some(SegmentDevice::Vxlan { device, vni, local }) => {
                self.ensure_vxlan(&device, vni, local, &bridge.name, network)?
            }
            Some(SegmentDevice::Physical { device }) => {
                self.ensure_physical(&device, &bridge.name)?
            }
            Some(SegmentDevice::Vlan {
                device,
                parent,
                vlan_id,
            }) => self.ensure_vlan(&device, &parent, vlan_id, &bridge.name, network)?,
            None => {}
        }
        Ok(bridge.name)
    }

    fn ensure_bridge(&mut self, name: &str, mtu: u32) -> Result<()> {
        let runner = self.agent.runner.clone();
        let tag = self.agent.tag.clone();
        let mtu_text = mtu.to_string();
        match self.links.get(name) {
            Some(link) if !link.owned_by(&tag) => Err(Error::Config(format!(
                "a device named {name} exists and is not this agent's (alias {:?})",
                link.ifalias
            ))),
            Some(link)
                if link.mtu == mtu
                    && link.is_up()
                    && link.info_u64("nf_call_iptables") == Some(1)
                    && link.info_u64("nf_call_ip6tables") == Some(1) =>
            {
                Ok(())
            }
            Some(_) => {
                runner.ip(
                    None,
                    &[
                        "link",
                        "set",
                        "dev",
                        name,
                        "mtu",
                        &mtu_text,
                        "up",
                        "type",
                        "bridge",
                        "nf_call_iptables",
                        "1",
                        "nf_call_ip6tables",
                        "1",
                    ],
                )?;
                self.report
                    .change(format!("set bridge {name} mtu {mtu} up"));
                Ok(())
            }
            None => {
                // STP off and no forwarding delay (Neutron's linuxbridge); br_netfilter on for
                // this bridge so the security groups' inet chains see its traffic, whatever the
                // host-wide bridge-nf-call-iptables sysctl says.
                runner.ip(
                    None,
                    &[
                        "link",
                        "add",
                        name,
                        "type",
                        "bridge",
                        "forward_delay",
                        "0",
                        "stp_state",
                        "0",
                        "nf_call_iptables",
                        "1",
                        "nf_call_ip6tables",
                        "1",
                    ],
                )?;
                runner.ip(
                    None,
                    &[
                        "link", "set", "dev", name, "alias", &tag, "mtu", &mtu_text, "up",
                    ],
                )?;
                self.report.change(format!("created bridge {name}"));
                Ok(())
            }
        }
    }

    fn ensure_vxlan(
        &mut self,
        device: &str,
        vni: u32,
        local: IpAddr,
        bridge: &str,
        network: &Network,
    ) -> Result<()> {
        let runner = self.agent.runner.clone();
        let tag = self.agent.tag.clone();
        let port = self.agent.config.vxlan_port;
        let mut present = false;
        if let Some(link) = self.links.get(device) {
            if !link.owned_by(&tag) {
                return Err(Error::Config(format!(
                    "a device named {device} exists and is not this agent's"
                )));
            }
            let matches = link.info_u64("id") == Some(u64::from(vni))
                && link.info_u64("port") == Some(u64::from(port))
                && link.info_str("local") == Some(local.to_string().as_str());
            if matches {
                present = true;
            } else {
                runner.ip(None, &["link", "del", "dev", device])?;
                self.report.change(format!(
                    "deleted {device} (its VNI, port or local address changed)"
                ));
                self.links.remove(device);
            }
        }
        if !present {
            let underlay = self.agent.config.vxlan_underlay_device.clone();
            let args = vxlan_add_args(device, vni, port, local, underlay.as_deref());
            runner.ip(None, &args_ref(&args))?;
            self.report.change(format!(
                "created {device} (VNI {vni}, local {local}, port {port})"
            ));
        }
        self.enslave_owned(device, bridge, network.mtu, !present)?;
        self.converge_flood_list(device, &network.vxlan_remotes)
    }

    /// Sets an owned device's alias, MTU and master, and brings it up, when any differs.
    fn enslave_owned(&mut self, device: &str, bridge: &str, mtu: u32, created: bool) -> Result<()> {
        let tag = self.agent.tag.clone();
        let settled = !created
            && self
                .links
                .get(device)
                .is_some_and(|l| l.master.as_deref() == Some(bridge) && l.mtu == mtu && l.is_up());
        if settled {
            return Ok(());
        }
        let mtu_text = mtu.to_string();
        self.agent.runner.ip(
            None,
            &[
                "link", "set", "dev", device, "alias", &tag, "mtu", &mtu_text, "master", bridge,
                "up",
            ],
        )?;
        if !created {
            self.report
                .change(format!("plugged {device} into {bridge}"));
        }
        Ok(())
    }

    /// The flood list holds exactly `remotes`; entries learned from a removed VTEP go too.
    fn converge_flood_list(&mut self, device: &str, remotes: &[IpAddr]) -> Result<()> {
        const FLOOD: &str = "00:00:00:00:00:00";
        let runner = self.agent.runner.clone();
        let entries = kernel::vxlan_fdb(&runner, device)?;
        let current: BTreeSet<IpAddr> = entries
            .iter()
            .filter(|(mac, _)| mac == FLOOD)
            .map(|(_, dst)| *dst)
            .collect();
        let wanted: BTreeSet<IpAddr> = remotes.iter().copied().collect();
        for remote in wanted.difference(&current) {
            let dst = remote.to_string();
            runner.run(
                "bridge",
                &["fdb", "append", FLOOD, "dev", device, "dst", &dst],
            )?;
            self.report
                .change(format!("{device}: flood to VTEP {remote}"));
        }
        for (mac, remote) in entries.iter().filter(|(_, dst)| !wanted.contains(dst)) {
            let dst = remote.to_string();
            runner.run("bridge", &["fdb", "del", mac, "dev", device, "dst", &dst])?;
            if mac == FLOOD {
                self.report
                    .change(format!("{device}: stopped flooding to VTEP {remote}"));
            }
        }
        Ok(())
    }

    fn ensure_physical(&mut self, device: &str, bridge: &str) -> Result<()> {
        let Some(link) = self.links.get(device) else {
            return Err(Error::Config(format!(
                "mapped physical interface {device} does not exist"
            )));
        };
        match link.master.as_deref() {
            Some(master) if master == bridge && link.is_up() => Ok(()),
            Some(master) if master != bridge => Err(Error::Config(format!(
                "physical interface {device} is already plugged into {master}"
            ))),
            _ => {
                self.agent.runner.ip(
                    None,
                    &["link", "set", "dev", device, "master", bridge, "up"],
                )?;
                self.report
                    .change(format!("plugged {device} into {bridge}"));
                Ok(())
            }
        }
    }

    fn ensure_vlan(
        &mut self,
        device: &str,
        parent: &str,
        vlan_id: u32,
        bridge: &str,
        network: &Network,
    ) -> Result<()> {
        if !self.links.contains_key(parent) {
            return Err(Error::Config(format!(
                "mapped physical interface {parent} does not exist"
            )));
        }
        let created = match self.links.get(device) {
            Some(link) if link.owned_by(&self.agent.tag) => false,
            Some(_) => {
                return Err(Error::Config(format!(
                    "a device named {device} exists and is not this agent's"
                )));
            }
            None => {
                let args = vlan_add_args(parent, device, vlan_id);
                self.agent
                    .runner
                    .ip(None, &args_ref(&args))
                    .map_err(|e| classify_vlan_error(&network.id, e))?;
                self.report
                    .change(format!("created {device} (VLAN {vlan_id} on {parent})"));
                true
            }
        };
        self.enslave_owned(device, bridge, network.mtu, created)
    }

    /// Plugs the tap devices of the ports bound here into their networks' bridges (creating
    /// missing ones when configured to), in one `ip -batch`.
    pub(crate) fn plug_ports(&mut self) {
        let tag = self.agent.tag.clone();
        let create = self.agent.config.create_missing_taps;
        let mut lines = Vec::new();
        let mut plugged = Vec::new();
        for port in self.state.ports.iter().filter(|p| p.bound_here) {
            let Some(bridge) = self.bridges.get(&port.network_id) else {
                continue;
            };
            let Some(network) = self.index.networks.get(port.network_id.as_str()) else {
                continue;
            };
            if port.port_security_enabled && !self.firewall_ok {
                self.report.error(
                    format!("port {}", port.id),
                    "not plugged: its security group rules could not be applied",
                );
                continue;
            }
            let device = port.device_name();
            let plug = format!(
                "link set dev {device} master {bridge} mtu {} up",
                network.mtu
            );
            match self.links.get(&device) {
                None if create => {
                    lines.push(format!("tuntap add dev {device} mode tap"));
                    lines.push(format!("link set dev {device} alias {tag}"));
                    lines.push(plug);
                    plugged.push((port.id.clone(), device));
                }
                None => self.report.pending_ports.push(port.id.clone()),
                Some(link)
                    if link.master.as_ref() == Some(bridge)
                        && link.mtu == network.mtu
                        && link.is_up() =>
                {
                    self.report.active_ports.push(port.id.clone());
                }
                Some(_) => {
                    lines.push(plug);
                    plugged.push((port.id.clone(), device));
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        let runner = self.agent.runner.clone();
        if let Err(batch_error) = runner.ip_batch(None, &lines) {
            // Find out which lines failed, one command each (the rare path).
            tracing::warn!(error = %batch_error, "plugging ports in one batch failed");
            for line in &lines {
                let args: Vec<&str> = line.split(' ').collect();
                if let Err(e) = runner.ip(None, &args) {
                    let device = args.iter().skip_while(|a| **a != "dev").nth(1);
                    if let Some(index) = plugged
                        .iter()
                        .position(|(_, d)| Some(&d.as_str()) == device)
                    {
                        let (port, _) = plugged.remove(index);
                        self.report.error(format!("port {port}"), e);
                    }
                }
            }
        }
        for (port, device) in plugged {
            self.report
                .change(format!("plugged {device} (port {port})"));
            self.report.active_ports.push(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(kind: NetworkType, physnet: Option<&str>, segment: Option<u32>) -> Network {
        Network {
            id: "0123456789abcdef".into(),
            project_id: String::new(),
            network_type: kind,
            physical_network: physnet.map(String::from),
            segmentation_id: segment,
            mtu: 1500,
            vxlan_remotes: vec![],
            dhcp_port: None,
        }
    }

    fn config() -> AgentConfig {
        let mut config = AgentConfig::new("h", "/tmp");
        config.local_vtep_ip = Some("198.18.0.1".parse().unwrap());
        config
            .physical_interface_mappings
            .insert("physnet1".into(), "eth1".into());
        config
            .bridge_mappings
            .insert("public".into(), "br-ex".into());
        config
    }

    #[test]
    fn each_network_type_resolves_to_its_devices() {
        let config = config();
        let (bridge, segment) =
            wiring(&config, &network(NetworkType::Vxlan, None, Some(42))).unwrap();
        assert_eq!(bridge.name, "brq0123456789a");
        assert!(bridge.owned);
        assert_eq!(segment.unwrap().device(), "vxlan-42");

        let (_, segment) =
            wiring(&config, &network(NetworkType::Flat, Some("physnet1"), None)).unwrap();
        assert_eq!(
            segment,
            Some(SegmentDevice::Physical {
                device: "eth1".into()
            })
        );

        let (bridge, segment) =
            wiring(&config, &network(NetworkType::Flat, Some("public"), None)).unwrap();
        assert_eq!(
            (bridge.name.as_str(), bridge.owned, segment),
            ("br-ex", false, None)
        );

        let (_, segment) = wiring(
            &config,
            &network(NetworkType::Vlan, Some("physnet1"), Some(100)),
        )
        .unwrap();
        assert_eq!(
            segment,
            Some(SegmentDevice::Vlan {
                device: "eth1.100".into(),
                parent: "eth1".into(),
                vlan_id: 100
            })
        );

        let err = wiring(
            &config,
            &network(NetworkType::Vlan, Some("nowhere"), Some(100)),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"nowhere\" has no interface mapping"),
            "{err}"
        );
        let mut no_vtep = config.clone();
        no_vtep.local_vtep_ip = None;
        assert!(wiring(&no_vtep, &network(NetworkType::Vxlan, None, Some(1))).is_err());
    }

    #[test]
    fn vxlan_and_vlan_commands() {
        let args = vxlan_add_args(
            "vxlan-42",
            42,
            4789,
            "198.18.0.1".parse().unwrap(),
            Some("eth0"),
        );
        assert_eq!(
            args.join(" "),
            "link add vxlan-42 type vxlan id 42 dstport 4789 local 198.18.0.1 dev eth0"
        );
        assert_eq!(
            vlan_add_args("eth1", "eth1.100", 100).join(" "),
            "link add link eth1 name eth1.100 type vlan id 100"
        );
    }

    #[test]
    fn a_kernel_without_8021q_gives_a_clear_vlan_error() {
        // What `ip link add link eth1 name eth1.100 type vlan id 100` prints on this kernel.
        let refused = Error::Command {
            command: "ip link add link eth1 name eth1.100 type vlan id 100".into(),
            status: "exit status: 2".into(),
            stderr: "Error: Unknown device type.".into(),
        };
        let err = classify_vlan_error("net-1", refused);
        assert!(matches!(err, Error::VlanUnsupported { .. }));
        let text = err.to_string();
        assert!(
            text.contains("VLAN network net-1") && text.contains("802.1Q"),
            "{text}"
        );

        let other = Error::Command {
            command: "ip link add ...".into(),
            status: "exit status: 2".into(),
            stderr: "Cannot find device \"eth9\"".into(),
        };
        assert!(matches!(
            classify_vlan_error("net-1", other),
            Error::Command { .. }
        ));
    }
}
