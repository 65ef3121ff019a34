//! Routers, as Neutron's L3 agent builds them: a `qrouter-<router>` namespace with IP
//! forwarding on, a `qr-` device per interface on its tenant network's bridge, a `qg-` device on
//! the external network's bridge carrying the gateway address and the floating IPs (the kernel
//! answers ARP for them there), a default route via the external subnet's gateway, the static
//! routes, and NAT in one nftables table: DNAT of each floating IP to its fixed address, SNAT of
//! that fixed address back to the floating IP, SNAT of everything else leaving through `qg-` to
//! the gateway address when `enable_snat`, and no NAT between the router's tenant networks.

use crate::agent::Pass;
use crate::error::{Error, Result};
use crate::kernel::{self, RouteEntry};
use crate::model::{FixedIp, Route, Router, ServicePort};
use crate::names;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The nftables table of a router namespace.
pub const NAT_TABLE: &str = "ferrostack_l3";

/// The mark of packets that entered the router from a tenant network (for hairpin NAT).
const FROM_INSIDE: u32 = 0x1;

/// The router's NAT rules as one nftables transaction. `gateway` is the `qg-` device and the
/// router's external IPv4 address.
pub(crate) fn render_nat(router: &Router, gateway: Option<(&str, IpAddr)>) -> String {
    let mut out = format!("table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n");
    let Some((qg, gateway_ip)) = gateway else {
        return out;
    };
    let _ = writeln!(out, "table ip {NAT_TABLE} {{");
    let mut dnat = String::new();
    let mut snat = String::new();
    for fip in &router.floating_ips {
        let _ = writeln!(
            dnat,
            "    ip daddr {} dnat to {}",
            fip.floating_ip_address, fip.fixed_ip_address
        );
        let _ = writeln!(
            snat,
            "    ip saddr {} snat to {}",
            fip.fixed_ip_address, fip.floating_ip_address
        );
    }
    let _ = write!(
        out,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         iifname != \"{qg}\" meta mark set {FROM_INSIDE:#x}\n{dnat}  }}\n\
         \x20 chain output {{\n    type nat hook output priority -100; policy accept;\n{dnat}  }}\n\
         \x20 chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         meta mark {FROM_INSIDE:#x} ct status dnat oifname != \"{qg}\" masquerade\n    \
         oifname != \"{qg}\" accept\n{snat}"
    );
    let snat_enabled = router
        .external_gateway
        .as_ref()
        .is_some_and(|g| g.enable_snat);
    if snat_enabled {
        let _ = writeln!(out, "    snat to {gateway_ip}");
    }
    out.push_str("  }\n}\n");
    out
}

/// A route's destination as `ip -j route` prints it (`default`, `10.0.0.0/24`, `192.0.2.7`).
fn parse_destination(entry: &RouteEntry, v4: bool) -> Option<IpNet> {
    if entry.dst == "default" {
        return Some(if v4 {
            "0.0.0.0/0".parse().ok()?
        } else {
            "::/0".parse().ok()?
        });
    }
    entry
        .dst
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.dst.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Pass<'_> {
    /// Deletes the namespaces of routers no longer desired here.
    pub(crate) fn remove_stale_routers(&mut self) {
        let wanted: BTreeSet<String> = self
            .state
            .routers
            .iter()
            .map(|r| names::router_namespace(&r.id))
            .collect();
        let stale: Vec<String> = self
            .namespaces
            .keys()
            .filter(|ns| ns.starts_with(names::ROUTER_NAMESPACE_PREFIX) && !wanted.contains(*ns))
            .cloned()
            .collect();
        for ns in stale {
            let router = ns
                .trim_start_matches(names::ROUTER_NAMESPACE_PREFIX)
                .to_string();
            self.agent.router_rules.remove(&router);
            self.delete_namespace(&ns);
        }
    }

    /// Every desired router.
    pub(crate) fn converge_routers(&mut self) {
        for router in &self.state.routers {
            match self.converge_router(router) {
                // Its interfaces, gateway and floating IPs are wired: they are up.
                Ok(()) => {
                    self.report.active_ports.extend(
                        router
                            .interfaces
                            .iter()
                            .map(|i| &i.port)
                            .chain(router.external_gateway.as_ref().map(|g| &g.port))
                            .map(|p| p.id.clone()),
                    );
                    self.report.active_floating_ips.extend(
                        router
                            .floating_ips
                            .iter()
                            .filter(|f| !f.id.is_empty())
                            .map(|f| f.id.clone()),
                    );
                }
                Err(e) => self.report.error(format!("router {}", router.id), e),
            }
        }
    }

    /// The address with prefix length of each fixed IP (prefix from its subnet).
    fn with_prefixes(&self, fixed_ips: &[FixedIp]) -> Vec<IpNet> {
        fixed_ips
            .iter()
            .filter_map(|ip| {
                let subnet = self.index.subnets.get(ip.subnet_id.as_str())?;
                IpNet::new(ip.ip_address, subnet.cidr.prefix_len()).ok()
            })
            .collect()
    }

    fn router_port(
        &mut self,
        ns: &str,
        network_id: &str,
        port: &ServicePort,
        device: &str,
        extra: &[IpNet],
    ) -> Result<()> {
        let bridge = self.bridges.get(network_id).cloned().ok_or_else(|| {
            Error::Config(format!("network {network_id} is not wired on this host"))
        })?;
        let mtu = self.index.networks[network_id].mtu;
        self.ensure_veth(
            ns,
            &names::tap(&port.id),
            device,
            port.mac_address,
            &bridge,
            mtu,
        )?;
        let mut addresses = self.with_prefixes(&port.fixed_ips);
        addresses.extend_from_slice(extra);
        self.ensure_addresses(ns, device, &addresses)
    }

    fn converge_router(&mut self, router: &Router) -> Result<()> {
        let ns = names::router_namespace(&router.id);
        let created = !self.namespaces.contains_key(&ns);
        self.ensure_namespace(&ns)?;
        self.ensure_forwarding(&ns)?;

        let mut wanted: BTreeSet<String> = router
            .interfaces
            .iter()
            .map(|i| names::router_interface(&i.port.id))
            .collect();
        let gateway_device = router
            .external_gateway
            .as_ref()
            .map(|g| names::router_gateway(&g.port.id));
        wanted.extend(gateway_device.clone());
        self.remove_stale_namespace_devices(
            &ns,
            &[names::ROUTER_INTERFACE_PREFIX, names::ROUTER_GATEWAY_PREFIX],
            &wanted,
        )?;
        for interface in &router.interfaces {
            let device = names::router_interface(&interface.port.id);
            self.router_port(&ns, &interface.network_id, &interface.port, &device, &[])?;
        }
        let mut routes: Vec<Route> = router.routes.clone();
        let mut nat_gateway = None;
        if let (Some(gateway), Some(device)) = (&router.external_gateway, &gateway_device) {
            let floating: Vec<IpNet> = router
                .floating_ips
                .iter()
                .map(|f| IpNet::from(IpAddr::V4(f.floating_ip_address)))
                .collect();
            self.router_port(&ns, &gateway.network_id, &gateway.port, device, &floating)?;
            let external_v4 = gateway
                .port
                .fixed_ips
                .iter()
                .find(|ip| ip.ip_address.is_ipv4());
            if let Some(ip) = external_v4 {
                nat_gateway = Some((device.clone(), ip.ip_address));
                let upstream = self
                    .index
                    .subnets
                    .get(ip.subnet_id.as_str())
                    .and_then(|s| s.gateway_ip);
                if let Some(upstream) = upstream {
                    routes.push(Route {
                        destination: "0.0.0.0/0".parse().expect("a valid prefix"),
                        nexthop: upstream,
                    });
                }
            }
        }
        self.converge_routes(&ns, &routes)?;
        let script = render_nat(
            router,
            nat_gateway.as_ref().map(|(dev, ip)| (dev.as_str(), *ip)),
        );
        if created || self.agent.router_rules.get(&router.id) != Some(&script) {
            self.agent.runner.nft_apply(Some(&ns), &script)?;
            self.agent.router_rules.insert(router.id.clone(), script);
            self.report.change(format!("{ns}: applied NAT rules"));
        }
        Ok(())
    }

    /// IPv4 and IPv6 forwarding on inside `ns`.
    fn ensure_forwarding(&mut self, ns: &str) -> Result<()> {
        let keys = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];
        let current = self
            .agent
            .runner
            .in_namespace(ns, "sysctl", &["-n", keys[0], keys[1]])?;
        if current.split_whitespace().all(|v| v == "1") {
            return Ok(());
        }
        self.agent.runner.in_namespace(
            ns,
            "sysctl",
            &[
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        self.report.change(format!("{ns}: enabled IP forwarding"));
        Ok(())
    }

    /// Exactly `wanted` routes with `proto static` in `ns`.
    fn converge_routes(&mut self, ns: &str, wanted: &[Route]) -> Result<()> {
        let runner = self.agent.runner.clone();
        let current: Vec<(IpNet, Option<IpAddr>)> = kernel::static_routes(&runner, ns)?
            .iter()
            .filter_map(|(v4, entry)| Some((parse_destination(entry, *v4)?, entry.gateway)))
            .collect();
        let wanted_set: BTreeSet<(IpNet, Option<IpAddr>)> = wanted
            .iter()
            .map(|r| (r.destination.trunc(), Some(r.nexthop)))
            .collect();
        for (destination, gateway) in &current {
            if !wanted_set.contains(&(*destination, *gateway)) {
                let text = destination.to_string();
                runner.ip(Some(ns), &["route", "del", &text, "proto", "static"])?;
                self.report.change(format!("{ns}: removed route {text}"));
            }
        }
        let present: BTreeSet<(IpNet, Option<IpAddr>)> = current.into_iter().collect();
        for (destination, nexthop) in wanted_set.difference(&present) {
            let text = destination.to_string();
            let via = nexthop.map(|n| n.to_string()).unwrap_or_default();
            runner.ip(
                Some(ns),
                &["route", "replace", &text, "via", &via, "proto", "static"],
            )?;
            self.report.change(format!("{ns}: route {text} via {via}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExternalGateway, FloatingIp};

    fn router(enable_snat: bool) -> Router {
        Router {
            id: "r".into(),
            project_id: String::new(),
            interfaces: vec![],
            external_gateway: Some(ExternalGateway {
                network_id: "ext".into(),
                port: ServicePort {
                    id: "gw".into(),
                    mac_address: "fa:16:3e:00:00:09".parse().unwrap(),
                    fixed_ips: vec![],
                },
                enable_snat,
            }),
            floating_ips: vec![FloatingIp {
                id: String::new(),
                floating_ip_address: "203.0.113.20".parse().unwrap(),
                fixed_ip_address: "10.0.0.5".parse().unwrap(),
            }],
            routes: vec![],
        }
    }

    #[test]
    fn nat_rules_cover_floating_ips_and_snat() {
        let script = render_nat(
            &router(true),
            Some(("qg-gw", "203.0.113.10".parse().unwrap())),
        );
        for line in [
            "iifname != \"qg-gw\" meta mark set 0x1",
            "ip daddr 203.0.113.20 dnat to 10.0.0.5",
            "meta mark 0x1 ct status dnat oifname != \"qg-gw\" masquerade",
            "oifname != \"qg-gw\" accept",
            "ip saddr 10.0.0.5 snat to 203.0.113.20",
            "snat to 203.0.113.10",
        ] {
            assert!(script.contains(line), "{line} missing:\n{script}");
        }
        // The floating IP's own SNAT comes before the router-wide one.
        assert!(script.find("snat to 203.0.113.20") < script.find("    snat to 203.0.113.10"));
        let no_snat = render_nat(
            &router(false),
            Some(("qg-gw", "203.0.113.10".parse().unwrap())),
        );
        assert!(!no_snat.contains("snat to 203.0.113.10"));
        assert!(no_snat.contains("dnat to 10.0.0.5"));
        assert_eq!(
            render_nat(&router(true), None),
            format!("table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n")
        );
    }

    #[test]
    fn route_destinations_parse() {
        let entry = |dst: &str| RouteEntry {
            dst: dst.into(),
            gateway: None,
            dev: None,
        };
        assert_eq!(
            parse_destination(&entry("default"), true),
            Some("0.0.0.0/0".parse().unwrap())
        );
        assert_eq!(
            parse_destination(&entry("192.0.2.7"), true),
            Some("192.0.2.7/32".parse().unwrap())
        );
        assert_eq!(
            parse_destination(&entry("2001:db8::/64"), false),
            Some("2001:db8::/64".parse().unwrap())
        );
    }
}
