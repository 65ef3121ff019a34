//! Reading the kernel's current state through the tools' JSON output (`ip -j`, `bridge -j`):
//! links with their kind, master, alias and addresses; namespaces; static routes; VXLAN flood
//! entries.

use crate::error::{Error, Result};
use crate::runner::Runner;
use ipnet::IpNet;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::net::IpAddr;

/// One network device as `ip -j -d addr show` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub ifname: String,
    #[serde(default)]
    pub ifalias: Option<String>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub linkinfo: Option<LinkInfo>,
    #[serde(default)]
    pub addr_info: Vec<AddrInfo>,
}

/// The `linkinfo` of a device: its kind (`bridge`, `vxlan`, `veth`, `tun`, ...) and details.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkInfo {
    #[serde(default)]
    pub info_kind: Option<String>,
    #[serde(default)]
    pub info_data: Option<serde_json::Value>,
}

/// One address of a device.
#[derive(Debug, Clone, Deserialize)]
pub struct AddrInfo {
    #[serde(default)]
    pub local: Option<IpAddr>,
    #[serde(default)]
    pub prefixlen: u8,
    #[serde(default)]
    pub scope: String,
}

impl Link {
    /// The device kind (`bridge`, `vxlan`, `veth`, `tun`, `vlan`), if any.
    pub fn kind(&self) -> Option<&str> {
        self.linkinfo.as_ref()?.info_kind.as_deref()
    }

    /// Whether the device is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }

    /// Whether the alias marks the device as owned by `tag`.
    pub fn owned_by(&self, tag: &str) -> bool {
        self.ifalias.as_deref() == Some(tag)
    }

    /// A numeric field of `info_data` (the VXLAN `id`, `port`).
    pub fn info_u64(&self, key: &str) -> Option<u64> {
        self.linkinfo
            .as_ref()?
            .info_data
            .as_ref()?
            .get(key)?
            .as_u64()
    }

    /// A text field of `info_data` (the VXLAN `local`).
    pub fn info_str(&self, key: &str) -> Option<&str> {
        self.linkinfo
            .as_ref()?
            .info_data
            .as_ref()?
            .get(key)?
            .as_str()
    }

    /// The global (non link-local) addresses with their prefixes.
    pub fn global_addresses(&self) -> Vec<IpNet> {
        self.addr_info
            .iter()
            .filter(|a| a.scope == "global")
            .filter_map(|a| IpNet::new(a.local?, a.prefixlen).ok())
            .collect()
    }
}

/// A route as `ip -j route show` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteEntry {
    pub dst: String,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub dev: Option<String>,
}

#[derive(Deserialize)]
struct Namespace {
    name: String,
}

#[derive(Deserialize)]
struct FdbEntry {
    mac: String,
    #[serde(default)]
    dst: Option<IpAddr>,
}

fn parse<T: DeserializeOwned + Default>(command: &str, output: &str) -> Result<T> {
    if output.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(output).map_err(|e| Error::Parse {
        command: command.to_string(),
        detail: e.to_string(),
    })
}

/// Every device of `namespace` (the host's when `None`), with details and addresses.
pub fn links(runner: &Runner, namespace: Option<&str>) -> Result<Vec<Link>> {
    let output = runner.ip(namespace, &["-j", "-d", "addr", "show"])?;
    parse("ip -j -d addr show", &output)
}

/// The names of every network namespace (`ip netns list`).
pub fn namespaces(runner: &Runner) -> Result<Vec<String>> {
    let output = runner.ip(None, &["-j", "netns", "list"])?;
    let list: Vec<Namespace> = parse("ip -j netns list", &output)?;
    Ok(list.into_iter().map(|n| n.name).collect())
}

/// The routes of `namespace` the agent manages (`proto static`), each with whether it is IPv4.
pub fn static_routes(runner: &Runner, namespace: &str) -> Result<Vec<(bool, RouteEntry)>> {
    let mut routes = Vec::new();
    for (v4, family) in [(true, "-4"), (false, "-6")] {
        let output = runner.ip(
            Some(namespace),
            &["-j", family, "route", "show", "proto", "static"],
        )?;
        let entries: Vec<RouteEntry> = parse("ip -j route show", &output)?;
        routes.extend(entries.into_iter().map(|e| (v4, e)));
    }
    Ok(routes)
}

/// The entries of a VXLAN device's forwarding database that point at a remote VTEP:
/// `(mac, remote)`; the all-zero MAC is the flood list, others were learned.
pub fn vxlan_fdb(runner: &Runner, device: &str) -> Result<Vec<(String, IpAddr)>> {
    let output = runner.run("bridge", &["-j", "fdb", "show", "dev", device])?;
    let entries: Vec<FdbEntry> = parse("bridge -j fdb show", &output)?;
    Ok(entries
        .into_iter()
        .filter_map(|e| Some((e.mac, e.dst?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_from_ip_json() {
        let json = r#"[{"ifindex":9,"ifname":"vxlan-7","flags":["BROADCAST","UP"],"mtu":1450,
            "master":"brqabc","ifalias":"me","linkinfo":{"info_kind":"vxlan",
            "info_data":{"id":7,"local":"198.18.0.1","port":4789}},
            "addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global"},
                         {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
        let links: Vec<Link> = parse("ip", json).unwrap();
        let link = &links[0];
        assert_eq!(link.kind(), Some("vxlan"));
        assert!(link.is_up() && link.owned_by("me") && !link.owned_by("you"));
        assert_eq!(link.info_u64("id"), Some(7));
        assert_eq!(link.info_str("local"), Some("198.18.0.1"));
        assert_eq!(
            link.global_addresses(),
            vec!["10.0.0.2/24".parse::<IpNet>().unwrap()]
        );
        assert!(parse::<Vec<Link>>("ip", "").unwrap().is_empty());
        assert!(parse::<Vec<Link>>("ip", "{").is_err());
    }
}
