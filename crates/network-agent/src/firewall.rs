//! Security groups and anti-spoofing with nftables, in two tables of the host namespace that
//! are replaced together in one `nft -f` transaction (so a port's rules change atomically).
//!
//! Why two tables (checked on this kernel, 6.18): stateful matching (`ct state`) is refused in
//! the `bridge` family without `nf_conntrack_bridge` (not built here), but bridged IP traffic
//! does pass the `inet` hooks through `br_netfilter` (built in; the agent also turns on each of
//! its bridges' own `nf_call_iptables`, so the host-wide sysctl does not matter), where
//! conntrack works. There, though, `iifname`/`oifname` are the bridge, not the tap. So:
//!
//! * `table bridge <name>` (stateless, sees the tap devices): frames from a filtered port must
//!   carry one of its MACs, and ARP and IP from it one of its (MAC, address) pairs — fixed IPs,
//!   allowed address pairs, IPv6 link-local — looked up in sets keyed by the tap; DHCP discovery
//!   from 0.0.0.0 and ARP probes pass; DHCP server replies and router advertisements from guests
//!   are dropped. Packets are marked with the port they came from (`0x8000_0000 | n`, at
//!   prerouting) and then with the port they go to (`0x4000_0000 | n`, at forward).
//! * `table inet <name>` (stateful): at prerouting, a packet from a port passes its egress rules
//!   (after conntrack: established/related pass); at forward, a packet to a port passes its
//!   ingress rules (default deny: only rules of its security groups, DHCP replies and neighbour
//!   discovery). Rules live in one chain pair per distinct set of security groups, shared by
//!   the ports that have it, so the table grows with the number of ports only by map and set
//!   elements. Each network's bridge gets its own conntrack zone, so tenants with overlapping
//!   addresses never share connection state.
//!
//! Only packets on this agent's bridges are looked at (`iifname` in the bridge set), and only its
//! ports' devices are matched, so other bridges on the host (libvirt's, other agents') are
//! untouched.

use crate::agent::Pass;
use crate::error::{Error, Result};
use crate::l2::Expected;
use crate::model::{
    Direction, EtherType, HostState, MacAddress, Port, SecurityGroup, SecurityGroupRule,
};
use crate::runner::Runner;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

/// The mark of packets that came from a filtered port (its index in the low bits).
pub const FROM_PORT: u32 = 0x8000_0000;
/// The mark of packets going to a filtered port (its index in the low bits).
pub const TO_PORT: u32 = 0x4000_0000;
/// The most filtered ports one host can have (the index shares the mark with the flags).
pub const MAX_FILTERED_PORTS: usize = 0x3fff_ffff;

/// Neutron's protocol names (`neutron_lib.constants.IP_PROTOCOL_MAP`).
const PROTOCOLS: [(&str, u8); 22] = [
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
];

/// The IP protocol number of a rule's `protocol` (`None`: any protocol). `icmp` in an IPv6 rule
/// means ICMPv6, as in Neutron.
pub fn protocol_number(protocol: Option<&str>, ethertype: EtherType) -> Result<Option<u8>, String> {
    let Some(name) = protocol.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let lower = name.to_ascii_lowercase();
    if lower == "any" {
        return Ok(None);
    }
    let number = match lower.parse::<u8>() {
        Ok(number) => number,
        Err(_) => PROTOCOLS
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, number)| *number)
            .ok_or_else(|| format!("unknown protocol {name:?}"))?,
    };
    Ok(match (number, ethertype) {
        (0, _) => None,
        (1, EtherType::IPv6) => Some(58),
        (n, _) => Some(n),
    })
}

/// A port the firewall filters: its index in the marks (1-based) and its policy (the index
/// of its set of security groups).
#[derive(Debug, Clone)]
pub(crate) struct FilteredPort<'a> {
    pub index: u32,
    pub policy: usize,
    pub port: &'a Port,
}

/// Everything the rendered tables depend on.
#[derive(Debug)]
pub(crate) struct FirewallInput<'a> {
    /// The table name (both families).
    pub table: String,
    /// The bridges carrying filtered ports, with their conntrack zone (`None` for a mapped bridge
    /// the agent does not own: its other traffic keeps the default zone).
    pub bridges: BTreeMap<String, Option<u16>>,
    /// Devices on those bridges that are not filtered ports (segment devices, DHCP and router
    /// ports, ports without port security): their packets' port marks are cleared.
    pub unfiltered: BTreeSet<String>,
    pub ports: Vec<FilteredPort<'a>>,
    /// The distinct sets of security groups of the ports (sorted group ids), by policy index.
    pub policies: Vec<Vec<&'a str>>,
    pub groups: BTreeMap<&'a str, &'a SecurityGroup>,
    /// The members of every group, as rules naming it as remote group see them.
    pub members: BTreeMap<&'a str, BTreeSet<IpNet>>,
}

/// The whole nftables transaction: both tables dropped (if present) and created anew.
pub(crate) fn render(input: &FirewallInput) -> String {
    let mut out = String::new();
    let table = &input.table;
    for family in ["bridge", "inet"] {
        let _ = writeln!(out, "table {family} {table}\ndelete table {family} {table}");
    }
    render_bridge_table(&mut out, input);
    render_inet_table(&mut out, input);
    out
}

/// The transaction removing both tables.
pub(crate) fn render_removal(table: &str) -> String {
    ["bridge", "inet"]
        .map(|family| format!("table {family} {table}\ndelete table {family} {table}\n"))
        .concat()
}

/// `name { type ...; [flags] elements = { ... } }`, without `elements` when empty.
fn set(out: &mut String, kind: &str, name: &str, spec: &str, items: &[String]) {
    let elements = if items.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {} }};", items.join(", "))
    };
    let _ = writeln!(out, "  {kind} {name} {{ {spec};{elements} }}");
}

fn quoted(names: impl IntoIterator<Item = impl std::fmt::Display>) -> Vec<String> {
    names.into_iter().map(|n| format!("\"{n}\"")).collect()
}

/// An address or prefix as nft writes set elements.
fn element(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.trunc().to_string()
    }
}

fn render_bridge_table(out: &mut String, input: &FirewallInput) {
    let _ = writeln!(out, "table bridge {} {{", input.table);
    let taps: Vec<String> = input.ports.iter().map(|p| p.port.device_name()).collect();
    set(
        out,
        "set",
        "unfiltered",
        "type ifname",
        &quoted(&input.unfiltered),
    );
    set(out, "set", "filtered", "type ifname", &quoted(&taps));
    let marks = |flag: u32| -> Vec<String> {
        input
            .ports
            .iter()
            .map(|p| format!("\"{}\" : {:#010x}", p.port.device_name(), flag | p.index))
            .collect()
    };
    set(
        out,
        "map",
        "in_marks",
        "type ifname : mark",
        &marks(FROM_PORT),
    );
    set(
        out,
        "map",
        "out_marks",
        "type ifname : mark",
        &marks(TO_PORT),
    );
    let (mut macs, mut pairs4, mut pairs6) = (Vec::new(), Vec::new(), Vec::new());
    for filtered in &input.ports {
        let tap = filtered.port.device_name();
        let (port_macs, pairs) = sending_pairs(filtered.port);
        macs.extend(port_macs.iter().map(|mac| format!("\"{tap}\" . {mac}")));
        for (mac, net) in pairs {
            let entry = format!("\"{tap}\" . {mac} . {}", element(&net));
            if net.addr().is_ipv4() {
                pairs4.push(entry);
            } else {
                pairs6.push(entry);
            }
        }
    }
    set(out, "set", "macs", "type ifname . ether_addr", &macs);
    set(
        out,
        "set",
        "pairs4",
        "type ifname . ether_addr . ipv4_addr; flags interval",
        &pairs4,
    );
    set(
        out,
        "set",
        "pairs6",
        "type ifname . ether_addr . ipv6_addr; flags interval",
        &pairs6,
    );
    let _ = write!(
        out,
        "  chain prerouting {{\n\
         \x20   type filter hook prerouting priority -200; policy accept;\n\
         \x20   iifname @unfiltered meta mark set 0\n\
         \x20   iifname @filtered jump anti_spoofing\n\
         \x20 }}\n\
         \x20 chain anti_spoofing {{\n\
         \x20   meta mark set iifname map @in_marks\n\
         \x20   iifname . ether saddr != @macs drop\n\
         \x20   arp saddr ip 0.0.0.0 accept\n\
         \x20   iifname . arp saddr ether . arp saddr ip @pairs4 accept\n\
         \x20   ether type arp drop\n\
         \x20   udp sport 67 udp dport 68 drop\n\
         \x20   udp sport 547 udp dport 546 drop\n\
         \x20   icmpv6 type nd-router-advert drop\n\
         \x20   ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept\n\
         \x20   iifname . ether saddr . ip saddr @pairs4 accept\n\
         \x20   ether type ip drop\n\
         \x20   ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, mld-listener-report, mld2-listener-report }} accept\n\
         \x20   iifname . ether saddr . ip6 saddr @pairs6 accept\n\
         \x20   drop\n\
         \x20 }}\n\
         \x20 chain forward {{\n\
         \x20   type filter hook forward priority -200; policy accept;\n\
         \x20   oifname @filtered meta mark set oifname map @out_marks\n\
         \x20 }}\n\
         }}\n"
    );
}

fn render_inet_table(out: &mut String, input: &FirewallInput) {
    let _ = writeln!(out, "table inet {} {{", input.table);
    set(
        out,
        "set",
        "bridges",
        "type ifname",
        &quoted(input.bridges.keys()),
    );
    let zones: Vec<String> = input
        .bridges
        .iter()
        .filter_map(|(bridge, zone)| zone.map(|z| format!("\"{bridge}\" : {z}")))
        .collect();
    set(out, "map", "zones", "typeof iifname : ct zone", &zones);
    let verdicts = |flag: u32, chain: &str| -> Vec<String> {
        input
            .ports
            .iter()
            .map(|p| format!("{:#010x} : jump {chain}_{}", flag | p.index, p.policy))
            .collect()
    };
    set(
        out,
        "map",
        "egress",
        "type mark : verdict",
        &verdicts(FROM_PORT, "egress"),
    );
    set(
        out,
        "map",
        "ingress",
        "type mark : verdict",
        &verdicts(TO_PORT, "ingress"),
    );
    let set_names = remote_group_sets(out, input);
    let _ = write!(
        out,
        "  chain zone {{\n\
         \x20   type filter hook prerouting priority raw; policy accept;\n\
         \x20   ct zone set iifname map @zones\n\
         \x20 }}\n\
         \x20 chain from_ports {{\n\
         \x20   type filter hook prerouting priority filter; policy accept;\n\
         \x20   iifname != @bridges return\n\
         \x20   meta mark & {FROM_PORT:#010x} == 0 return\n\
         \x20   ct state established,related accept\n\
         \x20   meta mark vmap @egress\n\
         \x20 }}\n\
         \x20 chain to_ports {{\n\
         \x20   type filter hook forward priority filter; policy accept;\n\
         \x20   iifname != @bridges return\n\
         \x20   meta mark & {TO_PORT:#010x} == 0 return\n\
         \x20   ct state established,related accept\n\
         \x20   meta mark vmap @ingress\n\
         \x20 }}\n"
    );
    for (index, policy) in input.policies.iter().enumerate() {
        render_policy(out, input, index, policy, &set_names);
    }
    out.push_str("}\n");
}

/// One set of member addresses per remote group and family; returns group id → set index.
fn remote_group_sets<'a>(out: &mut String, input: &FirewallInput<'a>) -> BTreeMap<&'a str, usize> {
    let mut names = BTreeMap::new();
    for (index, (group, members)) in input.members.iter().enumerate() {
        names.insert(*group, index);
        for (v4, kind) in [(true, "ipv4_addr"), (false, "ipv6_addr")] {
            let list: Vec<String> = members
                .iter()
                .filter(|net| net.addr().is_ipv4() == v4)
                .map(element)
                .collect();
            let name = format!("group{index}_v{}", if v4 { 4 } else { 6 });
            set(
                out,
                "set",
                &name,
                &format!("type {kind}; flags interval; auto-merge"),
                &list,
            );
        }
    }
    names
}

/// The egress and ingress chains of the ports whose security groups are `groups`.
fn render_policy(
    out: &mut String,
    input: &FirewallInput,
    index: usize,
    groups: &[&str],
    sets: &BTreeMap<&str, usize>,
) {
    let mut egress = Vec::new();
    let mut ingress = Vec::new();
    let mut seen = BTreeSet::new();
    for group in groups.iter().filter_map(|g| input.groups.get(g)) {
        for rule in &group.rules {
            let Some(text) = render_rule(rule, sets) else {
                continue;
            };
            if !seen.insert((rule.direction == Direction::Ingress, text.clone())) {
                continue;
            }
            match rule.direction {
                Direction::Ingress => ingress.push(text),
                Direction::Egress => egress.push(text),
            }
        }
    }
    let _ = writeln!(
        out,
        "  chain egress_{index} {{\n\
         \x20   udp sport 68 udp dport 67 accept\n\
         \x20   udp sport 546 udp dport 547 accept\n\
         \x20   icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report }} accept\n\
         \x20   ct state invalid drop"
    );
    for rule in egress {
        let _ = writeln!(out, "    {rule} accept");
    }
    let _ = writeln!(
        out,
        "    drop\n  }}\n  chain ingress_{index} {{\n\
         \x20   udp sport 67 udp dport 68 accept\n\
         \x20   udp sport 547 udp dport 546 accept\n\
         \x20   icmpv6 type {{ nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query }} accept\n\
         \x20   ct state invalid drop"
    );
    for rule in ingress {
        let _ = writeln!(out, "    {rule} accept");
    }
    out.push_str("    drop\n  }\n");
}

/// The (MAC, address) pairs a port may send from: its fixed IPs with its MAC, its allowed
/// address pairs, and for IPv6 the link-local address of each MAC. Pairs inside a wider pair of
/// the same MAC are dropped (nft refuses overlapping intervals).
fn sending_pairs(port: &Port) -> (BTreeSet<MacAddress>, Vec<(MacAddress, IpNet)>) {
    let mut pairs: Vec<(MacAddress, IpNet)> = port
        .fixed_ips
        .iter()
        .map(|ip| (port.mac_address, IpNet::from(ip.ip_address)))
        .collect();
    for pair in &port.allowed_address_pairs {
        pairs.push((
            pair.mac_address.unwrap_or(port.mac_address),
            pair.ip_address.trunc(),
        ));
    }
    let macs: BTreeSet<MacAddress> = pairs
        .iter()
        .map(|(mac, _)| *mac)
        .chain([port.mac_address])
        .collect();
    for mac in &macs {
        pairs.push((*mac, IpNet::from(IpAddr::V6(mac.link_local_ipv6()))));
    }
    pairs.sort_by_key(|(mac, net)| (*mac, net.addr(), std::cmp::Reverse(net.prefix_len())));
    pairs.dedup();
    let kept: Vec<(MacAddress, IpNet)> = pairs
        .iter()
        .filter(|(mac, net)| {
            !pairs
                .iter()
                .any(|(m, wider)| m == mac && wider != net && wider.contains(net))
        })
        .copied()
        .collect();
    (macs, kept)
}

/// The match of one rule (without its verdict). `None` for a rule the validation refuses
/// (never reached: states are validated first).
pub(crate) fn render_rule(
    rule: &SecurityGroupRule,
    sets: &BTreeMap<&str, usize>,
) -> Option<String> {
    let v4 = rule.ethertype == EtherType::IPv4;
    let (ip, family) = if v4 { ("ip", "ipv4") } else { ("ip6", "ipv6") };
    let peer = match rule.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut parts = vec![format!("meta nfproto {family}")];
    if let Some(prefix) = rule.remote_ip_prefix {
        parts.push(format!("{ip} {peer} {}", prefix.trunc()));
    }
    if let Some(group) = &rule.remote_group_id {
        let index = sets.get(group.as_str())?;
        parts.push(format!(
            "{ip} {peer} @group{index}_v{}",
            if v4 { 4 } else { 6 }
        ));
    }
    let protocol = protocol_number(rule.protocol.as_deref(), rule.ethertype).ok()?;
    match protocol {
        None => {}
        Some(p @ (1 | 58)) => {
            let icmp = if p == 1 { "icmp" } else { "icmpv6" };
            parts.push(format!("meta l4proto {p}"));
            if let Some(kind) = rule.port_range_min {
                parts.push(format!("{icmp} type {kind}"));
                if let Some(code) = rule.port_range_max {
                    parts.push(format!("{icmp} code {code}"));
                }
            }
        }
        Some(p) => {
            parts.push(format!("meta l4proto {p}"));
            match (rule.port_range_min, rule.port_range_max) {
                (Some(min), Some(max)) if min == max => parts.push(format!("th dport {min}")),
                (Some(min), Some(max)) => parts.push(format!("th dport {min}-{max}")),
                _ => {}
            }
        }
    }
    Some(parts.join(" "))
}

/// Which of the agent's two tables exist (`nft list tables`).
fn tables_present(runner: &Runner, table: &str) -> Result<(bool, bool)> {
    let listing = runner.run("nft", &["list", "tables"])?;
    let has = |family: &str| {
        listing
            .lines()
            .any(|line| line.trim() == format!("table {family} {table}"))
    };
    Ok((has("bridge"), has("inet")))
}

/// The conntrack zones of the agent's bridges recorded in its table (after a restart).
fn zones_in_kernel(runner: &Runner, table: &str) -> Result<BTreeMap<String, u16>> {
    let output = runner.run("nft", &["-j", "list", "map", "inet", table, "zones"])?;
    let json: serde_json::Value = serde_json::from_str(&output).map_err(|e| Error::Parse {
        command: "nft -j list map".into(),
        detail: e.to_string(),
    })?;
    let mut zones = BTreeMap::new();
    let objects = json["nftables"].as_array().cloned().unwrap_or_default();
    for object in objects {
        for element in object["map"]["elem"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if let (Some(bridge), Some(zone)) = (element[0].as_str(), element[1].as_u64())
                && let Ok(zone) = u16::try_from(zone)
            {
                zones.insert(bridge.to_string(), zone);
            }
        }
    }
    Ok(zones)
}

/// The addresses of a group's members: its `member_ips` and, for the state's ports in the
/// group, their fixed IPs and allowed address pairs (as Neutron counts them).
fn group_members(state: &HostState, group: &SecurityGroup) -> BTreeSet<IpNet> {
    let of_ports = state
        .ports
        .iter()
        .filter(|p| p.security_groups.contains(&group.id))
        .flat_map(|p| {
            p.fixed_ips
                .iter()
                .map(|ip| IpNet::from(ip.ip_address))
                .chain(
                    p.allowed_address_pairs
                        .iter()
                        .map(|pair| pair.ip_address.trunc()),
                )
        });
    group
        .member_ips
        .iter()
        .map(|ip| IpNet::from(*ip))
        .chain(of_ports)
        .collect()
}

impl Pass<'_> {
    /// The security group tables for the ports bound here with port security.
    pub(crate) fn converge_firewall(&mut self, expected: &Expected) {
        match self.try_converge_firewall(expected) {
            Ok(()) => self.firewall_ok = true,
            Err(e) => self.report.error("security groups", e),
        }
    }

    fn try_converge_firewall(&mut self, expected: &Expected) -> Result<()> {
        let state = self.state;
        let table = self.agent.config.firewall_table();
        let runner = self.agent.runner.clone();
        let mut ports: Vec<&Port> = state
            .ports
            .iter()
            .filter(|p| {
                p.bound_here && p.port_security_enabled && self.bridges.contains_key(&p.network_id)
            })
            .collect();
        ports.sort_by(|a, b| a.id.cmp(&b.id));
        if ports.len() > MAX_FILTERED_PORTS {
            return Err(Error::Config(format!(
                "{} ports with port security on one host; at most {MAX_FILTERED_PORTS} can be filtered",
                ports.len()
            )));
        }
        let (bridge_table, inet_table) = tables_present(&runner, &table)?;
        if ports.is_empty() {
            if bridge_table || inet_table {
                runner.nft_apply(None, &render_removal(&table))?;
                self.report
                    .change(format!("removed the security group tables {table}"));
            }
            self.agent.firewall.applied = None;
            return Ok(());
        }
        let memory = &mut self.agent.firewall;
        if !memory.seeded {
            if inet_table {
                memory.zones = zones_in_kernel(&runner, &table)?;
            }
            memory.seeded = true;
        }
        memory
            .zones
            .retain(|bridge, _| expected.owned_bridges.contains(bridge));
        let mut bridges = BTreeMap::new();
        for port in &ports {
            let bridge = self.bridges[&port.network_id].clone();
            let zone = if expected.owned_bridges.contains(&bridge) {
                let zone = match memory.zones.get(&bridge) {
                    Some(zone) => *zone,
                    None => {
                        let used: BTreeSet<u16> = memory.zones.values().copied().collect();
                        let zone = (1..=u16::MAX)
                            .find(|z| !used.contains(z))
                            .ok_or_else(|| Error::Config("no conntrack zone left".into()))?;
                        memory.zones.insert(bridge.clone(), zone);
                        zone
                    }
                };
                Some(zone)
            } else {
                None
            };
            bridges.insert(bridge, zone);
        }
        let filtered_devices: BTreeSet<String> = ports.iter().map(|p| p.device_name()).collect();
        let unfiltered = expected
            .members
            .iter()
            .filter(|(device, bridge)| {
                bridges.contains_key(*bridge) && !filtered_devices.contains(*device)
            })
            .map(|(device, _)| device.clone())
            .collect();
        let groups: BTreeMap<&str, &SecurityGroup> = state
            .security_groups
            .iter()
            .map(|g| (g.id.as_str(), g))
            .collect();
        let mut members: BTreeMap<&str, BTreeSet<IpNet>> = BTreeMap::new();
        for port in &ports {
            for group in port
                .security_groups
                .iter()
                .filter_map(|g| groups.get(g.as_str()))
            {
                for remote in group
                    .rules
                    .iter()
                    .filter_map(|r| r.remote_group_id.as_deref())
                {
                    let Some(remote_group) = groups.get(remote) else {
                        continue;
                    };
                    members
                        .entry(remote_group.id.as_str())
                        .or_insert_with(|| group_members(state, remote_group));
                }
            }
        }
        let mut policies: Vec<Vec<&str>> = Vec::new();
        let mut filtered = Vec::with_capacity(ports.len());
        for (i, port) in ports.iter().enumerate() {
            let mut policy: Vec<&str> = port.security_groups.iter().map(String::as_str).collect();
            policy.sort_unstable();
            policy.dedup();
            let policy = match policies.iter().position(|p| *p == policy) {
                Some(index) => index,
                None => {
                    policies.push(policy);
                    policies.len() - 1
                }
            };
            filtered.push(FilteredPort {
                index: i as u32 + 1,
                policy,
                port,
            });
        }
        let input = FirewallInput {
            table: table.clone(),
            bridges,
            unfiltered,
            ports: filtered,
            policies,
            groups,
            members,
        };
        let script = render(&input);
        if bridge_table && inet_table && self.agent.firewall.applied.as_ref() == Some(&script) {
            return Ok(());
        }
        runner.nft_apply(None, &script)?;
        self.agent.firewall.applied = Some(script);
        self.report.change(format!(
            "applied security group rules for {} ports",
            input.ports.len()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AddressPair, FixedIp};

    fn rule(
        direction: Direction,
        protocol: Option<&str>,
        ports: (Option<u16>, Option<u16>),
    ) -> SecurityGroupRule {
        SecurityGroupRule {
            id: String::new(),
            direction,
            ethertype: EtherType::IPv4,
            protocol: protocol.map(String::from),
            port_range_min: ports.0,
            port_range_max: ports.1,
            remote_ip_prefix: None,
            remote_group_id: None,
        }
    }

    #[test]
    fn protocols_follow_neutron() {
        assert_eq!(protocol_number(Some("tcp"), EtherType::IPv4), Ok(Some(6)));
        assert_eq!(protocol_number(Some("ICMP"), EtherType::IPv6), Ok(Some(58)));
        assert_eq!(
            protocol_number(Some("ipv6-icmp"), EtherType::IPv6),
            Ok(Some(58))
        );
        assert_eq!(protocol_number(Some("112"), EtherType::IPv4), Ok(Some(112)));
        assert_eq!(protocol_number(Some("any"), EtherType::IPv4), Ok(None));
        assert_eq!(protocol_number(None, EtherType::IPv4), Ok(None));
        assert!(protocol_number(Some("bogus"), EtherType::IPv4).is_err());
    }

    #[test]
    fn rules_render_to_nft_matches() {
        let sets = BTreeMap::from([("g", 3usize)]);
        let mut ssh = rule(Direction::Ingress, Some("tcp"), (Some(22), Some(22)));
        ssh.remote_ip_prefix = Some("10.1.2.3/16".parse().unwrap());
        assert_eq!(
            render_rule(&ssh, &sets).unwrap(),
            "meta nfproto ipv4 ip saddr 10.1.0.0/16 meta l4proto 6 th dport 22"
        );
        let mut range = rule(Direction::Egress, Some("udp"), (Some(1000), Some(2000)));
        range.remote_group_id = Some("g".into());
        assert_eq!(
            render_rule(&range, &sets).unwrap(),
            "meta nfproto ipv4 ip daddr @group3_v4 meta l4proto 17 th dport 1000-2000"
        );
        let ping = rule(Direction::Ingress, Some("icmp"), (Some(8), Some(0)));
        assert_eq!(
            render_rule(&ping, &sets).unwrap(),
            "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0"
        );
        let mut any6 = rule(Direction::Egress, None, (None, None));
        any6.ethertype = EtherType::IPv6;
        assert_eq!(render_rule(&any6, &sets).unwrap(), "meta nfproto ipv6");
    }

    #[test]
    fn sending_pairs_cover_fixed_ips_pairs_and_link_local() {
        let mac: MacAddress = "fa:16:3e:00:00:01".parse().unwrap();
        let other: MacAddress = "fa:16:3e:00:00:02".parse().unwrap();
        let port = Port {
            id: "p".into(),
            network_id: "n".into(),
            project_id: String::new(),
            mac_address: mac,
            fixed_ips: vec![FixedIp {
                subnet_id: "s".into(),
                ip_address: "10.0.0.5".parse().unwrap(),
            }],
            device_id: String::new(),
            device_owner: String::new(),
            security_groups: vec![],
            allowed_address_pairs: vec![
                AddressPair {
                    ip_address: "10.0.0.0/24".parse().unwrap(),
                    mac_address: None,
                },
                AddressPair {
                    ip_address: "10.9.9.9/32".parse().unwrap(),
                    mac_address: Some(other),
                },
            ],
            port_security_enabled: true,
            dns_name: None,
            bound_here: true,
        };
        let (macs, pairs) = sending_pairs(&port);
        assert_eq!(macs, BTreeSet::from([mac, other]));
        let text: Vec<String> = pairs.iter().map(|(m, n)| format!("{m} {n}")).collect();
        assert_eq!(
            text,
            [
                "fa:16:3e:00:00:01 10.0.0.0/24",
                "fa:16:3e:00:00:01 fe80::f816:3eff:fe00:1/128",
                "fa:16:3e:00:00:02 10.9.9.9/32",
                "fa:16:3e:00:00:02 fe80::f816:3eff:fe00:2/128",
            ]
        );
    }
}
