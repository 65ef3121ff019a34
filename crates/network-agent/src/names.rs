//! Kernel object names, derived from Neutron ids exactly as Neutron's linuxbridge, DHCP and L3
//! agents derive them, so an operator who knows Neutron finds everything where they expect it.
//! Linux interface names are at most 15 characters.

/// The longest Linux interface name (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// Characters of an id kept after a device prefix (`tap`, `brq`, `ns-`, `qr-`, `qg-`).
const ID_CHARS: usize = 11;

pub const BRIDGE_PREFIX: &str = "brq";
pub const TAP_PREFIX: &str = "tap";
pub const DHCP_DEVICE_PREFIX: &str = "ns-";
pub const ROUTER_INTERFACE_PREFIX: &str = "qr-";
pub const ROUTER_GATEWAY_PREFIX: &str = "qg-";
pub const VXLAN_PREFIX: &str = "vxlan-";
pub const DHCP_NAMESPACE_PREFIX: &str = "qdhcp-";
pub const ROUTER_NAMESPACE_PREFIX: &str = "qrouter-";

fn prefixed(prefix: &str, id: &str) -> String {
    let short: String = id.chars().take(ID_CHARS).collect();
    format!("{prefix}{short}")
}

/// A network's bridge: `brq` + 11 characters of the network id.
pub fn bridge(network_id: &str) -> String {
    prefixed(BRIDGE_PREFIX, network_id)
}

/// A port's tap device (or the bridge end of a service port's veth pair).
pub fn tap(port_id: &str) -> String {
    prefixed(TAP_PREFIX, port_id)
}

/// The DHCP port's device inside the `qdhcp-` namespace.
pub fn dhcp_device(port_id: &str) -> String {
    prefixed(DHCP_DEVICE_PREFIX, port_id)
}

/// A router interface's device inside the `qrouter-` namespace.
pub fn router_interface(port_id: &str) -> String {
    prefixed(ROUTER_INTERFACE_PREFIX, port_id)
}

/// A router gateway's device inside the `qrouter-` namespace.
pub fn router_gateway(port_id: &str) -> String {
    prefixed(ROUTER_GATEWAY_PREFIX, port_id)
}

/// The VXLAN device of a VNI: `vxlan-<vni>`.
pub fn vxlan(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// The VLAN sub-interface `<physical>.<vid>`; when that is longer than 15 characters, the
/// physical name is cut and a short hash of it added so different interfaces stay distinct
/// (Neutron's linuxbridge does the same).
pub fn vlan(physical_interface: &str, vlan_id: u32) -> String {
    let full = format!("{physical_interface}.{vlan_id}");
    if full.len() <= MAX_IFNAME {
        return full;
    }
    let suffix = format!(".{vlan_id}");
    let hash = format!("{:04x}", fnv1a(physical_interface.as_bytes()) & 0xffff);
    let keep = MAX_IFNAME - suffix.len() - hash.len() - 1;
    let head: String = physical_interface.chars().take(keep).collect();
    format!("{head}-{hash}{suffix}")
}

/// The DHCP namespace of a network.
pub fn dhcp_namespace(network_id: &str) -> String {
    format!("{DHCP_NAMESPACE_PREFIX}{network_id}")
}

/// The namespace of a router.
pub fn router_namespace(router_id: &str) -> String {
    format!("{ROUTER_NAMESPACE_PREFIX}{router_id}")
}

/// FNV-1a, a stable hash for names (not for security).
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "6b1f0d52-1c2a-4f3e-9d0e-0a1b2c3d4e5f";

    #[test]
    fn names_follow_neutron() {
        assert_eq!(bridge(NET), "brq6b1f0d52-1c");
        assert_eq!(tap(NET), "tap6b1f0d52-1c");
        assert_eq!(dhcp_device(NET), "ns-6b1f0d52-1c");
        assert_eq!(router_interface(NET), "qr-6b1f0d52-1c");
        assert_eq!(router_gateway(NET), "qg-6b1f0d52-1c");
        assert_eq!(vxlan(16_777_215), "vxlan-16777215");
        assert_eq!(dhcp_namespace(NET), format!("qdhcp-{NET}"));
        assert_eq!(router_namespace(NET), format!("qrouter-{NET}"));
        for name in [bridge(NET), tap(NET), vxlan(16_777_215)] {
            assert!(name.len() <= MAX_IFNAME, "{name}");
        }
    }

    #[test]
    fn long_vlan_names_are_shortened_and_distinct() {
        assert_eq!(vlan("eth1", 100), "eth1.100");
        let a = vlan("enp0s31f6long", 4094);
        let b = vlan("enp0s31f6lonh", 4094);
        assert!(a.len() <= MAX_IFNAME && b.len() <= MAX_IFNAME, "{a} {b}");
        assert!(a.ends_with(".4094"));
        assert_ne!(a, b);
    }
}
