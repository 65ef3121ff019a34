//! DHCP and DNS as Neutron's DHCP agent runs them: one dnsmasq per network inside a
//! `qdhcp-<network>` namespace, on an `ns-` device plugged into the network's bridge, answering
//! only the ports listed in its hosts file (`--dhcp-hostsfile`, `mac,fqdn,ip`; no dynamic
//! pool), with the subnets' options in an options file (router, DNS servers, classless static
//! routes with the metadata route, MTU). Changes rewrite the files and send SIGHUP: dnsmasq
//! rereads them without a restart; it restarts only when its command line changes (subnets
//! added or removed, MTU).

use crate::agent::Pass;
use crate::config::AgentConfig;
use crate::error::{Error, Result};
use crate::metadata::METADATA_ADDRESS;
use crate::model::{Ipv6AddressMode, Network, Port, Subnet};
use crate::names;
use crate::process;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// dnsmasq's lease cap (Neutron's `dnsmasq_lease_max`).
const LEASE_MAX: u128 = 1 << 24;

/// Whether dnsmasq serves `subnet` (IPv6 SLAAC subnets get no DHCP).
pub(crate) fn dhcp_subnet(subnet: &Subnet) -> bool {
    subnet.enable_dhcp
        && !(subnet.cidr.addr().is_ipv6()
            && subnet.ipv6_address_mode == Some(Ipv6AddressMode::Slaac))
}

/// Whether this host runs a DHCP server for `network`: it has a DHCP port here and a subnet
/// with DHCP on.
pub(crate) fn serves_dhcp(network: &Network, subnets: &[&Subnet]) -> bool {
    network.dhcp_port.is_some() && subnets.iter().any(|s| dhcp_subnet(s))
}

/// The files of one network's dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DhcpFiles {
    /// `--dhcp-hostsfile`: `mac,fqdn,ip` per address on a DHCP subnet.
    pub hosts: String,
    /// `--addn-hosts`: `ip<TAB>fqdn hostname` for DNS.
    pub addn_hosts: String,
    /// `--dhcp-optsfile`: per-subnet options, tagged `subnet-<id>`.
    pub opts: String,
}

/// Where one network's dnsmasq keeps its files.
#[derive(Debug, Clone)]
pub(crate) struct DhcpPaths {
    pub dir: PathBuf,
}

impl DhcpPaths {
    pub fn new(config: &AgentConfig, network_id: &str) -> Self {
        DhcpPaths {
            dir: config.dhcp_dir(network_id),
        }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn subnet_tag(subnet: &Subnet) -> String {
    format!("subnet-{}", subnet.id)
}

/// An address as dnsmasq wants it in hosts files (IPv6 in brackets).
fn dnsmasq_address(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A port's host name: its `dns_name`, else `host-<address with dashes>` (Neutron's default).
pub(crate) fn hostname(port: &Port, ip: &IpAddr) -> String {
    match port
        .dns_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(name) => name.trim_end_matches('.').to_ascii_lowercase(),
        None => format!("host-{}", ip.to_string().replace(['.', ':'], "-")),
    }
}

/// The hosts, DNS and options files of `network`.
pub(crate) fn render_files(
    config: &AgentConfig,
    network: &Network,
    subnets: &[&Subnet],
    ports: &[&Port],
) -> DhcpFiles {
    let dhcp_subnets: Vec<&Subnet> = subnets.iter().copied().filter(|s| dhcp_subnet(s)).collect();
    let mut hosts = String::new();
    let mut addn_hosts = String::new();
    for port in ports {
        for fixed in &port.fixed_ips {
            let name = hostname(port, &fixed.ip_address);
            let fqdn = format!("{name}.{}", config.dhcp_domain);
            let _ = writeln!(addn_hosts, "{}\t{fqdn} {name}", fixed.ip_address);
            let subnet = dhcp_subnets.iter().find(|s| s.id == fixed.subnet_id);
            let stateless = subnet
                .is_some_and(|s| s.ipv6_address_mode == Some(Ipv6AddressMode::Dhcpv6Stateless));
            if subnet.is_some() && !stateless {
                let _ = writeln!(
                    hosts,
                    "{},{fqdn},{}",
                    port.mac_address,
                    dnsmasq_address(&fixed.ip_address)
                );
            }
        }
    }
    let opts = render_opts(config, network, subnets, &dhcp_subnets);
    DhcpFiles {
        hosts,
        addn_hosts,
        opts,
    }
}

/// The DHCP port's address on `subnet`.
fn dhcp_address(network: &Network, subnet: &Subnet) -> Option<IpAddr> {
    network
        .dhcp_port
        .as_ref()?
        .fixed_ips
        .iter()
        .find(|ip| ip.subnet_id == subnet.id)
        .map(|ip| ip.ip_address)
}

fn render_opts(
    config: &AgentConfig,
    network: &Network,
    all_subnets: &[&Subnet],
    dhcp_subnets: &[&Subnet],
) -> String {
    let mut lines = Vec::new();
    for subnet in dhcp_subnets {
        let tag = subnet_tag(subnet);
        let v4 = subnet.cidr.addr().is_ipv4();
        let own = dhcp_address(network, subnet);
        let dns: Vec<IpAddr> = if subnet.dns_nameservers.is_empty() {
            own.into_iter().collect()
        } else {
            subnet.dns_nameservers.clone()
        };
        if !v4 {
            if !dns.is_empty() {
                let list: Vec<String> = dns.iter().map(|ip| format!("[{ip}]")).collect();
                lines.push(format!("tag:{tag},option6:dns-server,{}", list.join(",")));
            }
            lines.push(format!(
                "tag:{tag},option6:domain-search,{}",
                config.dhcp_domain
            ));
            continue;
        }
        if !dns.is_empty() {
            let list: Vec<String> = dns.iter().map(IpAddr::to_string).collect();
            lines.push(format!("tag:{tag},option:dns-server,{}", list.join(",")));
        }
        let mut gateway = subnet.gateway_ip;
        let mut routes: Vec<String> = Vec::new();
        for route in &subnet.host_routes {
            if route.destination.prefix_len() == 0 {
                gateway = gateway.or(Some(route.nexthop));
            } else {
                routes.push(format!("{},{}", route.destination.trunc(), route.nexthop));
            }
        }
        if config.metadata.is_some()
            && let Some(own) = own
        {
            routes.push(format!("{METADATA_ADDRESS}/32,{own}"));
        }
        for other in all_subnets {
            if other.cidr.addr().is_ipv4() && other.id != subnet.id && other.cidr != subnet.cidr {
                routes.push(format!("{},0.0.0.0", other.cidr.trunc()));
            }
        }
        if !routes.is_empty() {
            if let Some(gateway) = gateway {
                routes.push(format!("0.0.0.0/0,{gateway}"));
            }
            let list = routes.join(",");
            lines.push(format!("tag:{tag},option:classless-static-route,{list}"));
            // Windows' pre-standard classless static routes option.
            lines.push(format!("tag:{tag},249,{list}"));
        }
        match gateway {
            Some(gateway) => lines.push(format!("tag:{tag},option:router,{gateway}")),
            None => lines.push(format!("tag:{tag},option:router")),
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// dnsmasq's arguments (after the program name) for `network`, listening on `interface`.
pub(crate) fn command_args(
    config: &AgentConfig,
    network: &Network,
    subnets: &[&Subnet],
    paths: &DhcpPaths,
    interface: &str,
) -> Vec<String> {
    let path = |name: &str| paths.file(name).display().to_string();
    let mut args = vec![
        "--no-hosts".to_string(),
        "--no-resolv".to_string(),
        "--strict-order".to_string(),
        "--except-interface=lo".to_string(),
        format!("--pid-file={}", path("pid")),
        format!("--dhcp-hostsfile={}", path("host")),
        format!("--addn-hosts={}", path("addn_hosts")),
        format!("--dhcp-optsfile={}", path("opts")),
        format!("--dhcp-leasefile={}", path("leases")),
        "--dhcp-match=set:ipxe,175".to_string(),
        "--bind-interfaces".to_string(),
        format!("--interface={interface}"),
    ];
    let mut possible_leases: u128 = 0;
    for subnet in subnets.iter().filter(|s| dhcp_subnet(s)) {
        let tag = subnet_tag(subnet);
        let lease = config.dhcp_lease_duration;
        let net = subnet.cidr.network();
        match subnet.cidr {
            IpNet::V4(v4) => args.push(format!(
                "--dhcp-range=set:{tag},{net},static,{},{lease}s",
                v4.netmask()
            )),
            IpNet::V6(v6) => args.push(format!(
                "--dhcp-range=set:{tag},{net},static,{},{lease}s",
                v6.prefix_len()
            )),
        }
        let host_bits = u32::from(subnet.cidr.max_prefix_len() - subnet.cidr.prefix_len());
        possible_leases =
            possible_leases.saturating_add(1u128.checked_shl(host_bits).unwrap_or(u128::MAX));
    }
    if network.mtu > 0 {
        args.push(format!("--dhcp-option-force=option:mtu,{}", network.mtu));
    }
    args.push(format!(
        "--dhcp-lease-max={}",
        possible_leases.min(LEASE_MAX)
    ));
    args.push("--conf-file=/dev/null".to_string());
    for server in &config.dnsmasq_dns_servers {
        args.push(format!("--server={server}"));
    }
    args.push(format!("--domain={}", config.dhcp_domain));
    args
}

/// Writes `content` to `path` (atomically) unless it holds it already; returns whether it
/// changed. Files are world-readable: dnsmasq rereads them as an unprivileged user.
fn write_if_changed(path: &Path, content: &str) -> Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).map_err(Error::io(format!("writing {}", tmp.display())))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .map_err(Error::io(format!("chmod {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(Error::io(format!("renaming to {}", path.display())))?;
    Ok(true)
}

/// Creates `dir` readable and traversable by everyone, and the parents it has to create too
/// (whatever the process's umask).
pub(crate) fn create_public_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    for d in missing.into_iter().chain([dir]) {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("chmod {}", d.display())))?;
    }
    Ok(())
}

impl Pass<'_> {
    /// The networks this host serves DHCP for.
    pub(crate) fn dhcp_networks(&self) -> BTreeSet<String> {
        self.state
            .networks
            .iter()
            .filter(|n| serves_dhcp(n, &self.index.subnets_of(&n.id)))
            .map(|n| n.id.clone())
            .collect()
    }

    /// Stops the DHCP servers of networks no longer served: their dnsmasq, metadata proxy,
    /// namespace and files.
    pub(crate) fn remove_stale_dhcp(&mut self) {
        let served = self.dhcp_networks();
        let stale_namespaces: Vec<String> = self
            .namespaces
            .keys()
            .filter_map(|ns| ns.strip_prefix(names::DHCP_NAMESPACE_PREFIX))
            .filter(|network| !served.contains(*network))
            .map(String::from)
            .collect();
        let stale_processes: Vec<(String, i32)> = self
            .dnsmasq
            .iter()
            .filter(|(network, _)| !served.contains(*network))
            .flat_map(|(network, procs)| procs.iter().map(move |p| (network.clone(), p.pid)))
            .collect();
        for (network, pid) in stale_processes {
            match process::stop(pid) {
                Ok(()) => self
                    .report
                    .change(format!("stopped dnsmasq {pid} of network {network}")),
                Err(e) => self
                    .report
                    .error(format!("dnsmasq of network {network}"), e),
            }
            self.dnsmasq.remove(&network);
        }
        for network in stale_namespaces {
            self.stop_metadata_proxy(&network);
            self.delete_namespace(&names::dhcp_namespace(&network));
        }
        let root = self.agent.config.dhcp_root();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !served.contains(&name) && !self.dnsmasq.contains_key(&name) {
                    match std::fs::remove_dir_all(entry.path()) {
                        Ok(()) => self.report.change(format!("removed DHCP files of {name}")),
                        Err(e) => self.report.error(format!("DHCP files of {name}"), e),
                    }
                }
            }
        }
    }

    /// A DHCP server for every served network whose bridge is up.
    pub(crate) fn converge_dhcp(&mut self) {
        for network_id in self.dhcp_networks() {
            if !self.bridges.contains_key(&network_id) {
                continue;
            }
            if let Err(e) = self.converge_dhcp_network(&network_id) {
                self.report
                    .error(format!("DHCP of network {network_id}"), e);
            }
        }
    }

    fn converge_dhcp_network(&mut self, network_id: &str) -> Result<()> {
        let state = self.state;
        let network = self.index.networks[network_id];
        let port = network
            .dhcp_port
            .as_ref()
            .expect("served networks have a DHCP port");
        let bridge = self.bridges[network_id].clone();
        let subnets = self.index.subnets_of(network_id);
        let ns = names::dhcp_namespace(network_id);
        let device = names::dhcp_device(&port.id);
        self.ensure_namespace(&ns)?;
        self.remove_stale_namespace_devices(
            &ns,
            &[names::DHCP_DEVICE_PREFIX],
            &BTreeSet::from([device.clone()]),
        )?;
        self.ensure_veth(
            &ns,
            &names::tap(&port.id),
            &device,
            port.mac_address,
            &bridge,
            network.mtu,
        )?;
        let mut addresses: Vec<IpNet> = port
            .fixed_ips
            .iter()
            .filter_map(|ip| {
                let subnet = subnets.iter().find(|s| s.id == ip.subnet_id)?;
                IpNet::new(ip.ip_address, subnet.cidr.prefix_len()).ok()
            })
            .collect();
        if self.agent.config.metadata.is_some() {
            addresses.push(IpNet::from(IpAddr::V4(METADATA_ADDRESS)));
        }
        self.ensure_addresses(&ns, &device, &addresses)?;

        let config = &self.agent.config;
        let paths = DhcpPaths::new(config, network_id);
        create_public_dir(&config.state_dir)?;
        create_public_dir(&config.dhcp_root())?;
        create_public_dir(&paths.dir)?;
        let ports: Vec<&Port> = state
            .ports
            .iter()
            .filter(|p| p.network_id == network_id)
            .collect();
        let files = render_files(config, network, &subnets, &ports);
        let mut changed = false;
        changed |= write_if_changed(&paths.file("host"), &files.hosts)?;
        changed |= write_if_changed(&paths.file("addn_hosts"), &files.addn_hosts)?;
        changed |= write_if_changed(&paths.file("opts"), &files.opts)?;
        let args = command_args(config, network, &subnets, &paths, &device);

        let running = self.dnsmasq.remove(network_id).unwrap_or_default();
        let (same, other): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|p| p.argv.get(1..) == Some(args.as_slice()));
        for stale in other {
            process::stop(stale.pid)?;
            self.report.change(format!(
                "stopped dnsmasq {} of network {network_id} (its configuration changed)",
                stale.pid
            ));
        }
        match same.first() {
            Some(current) if changed => {
                process::signal(current.pid, libc::SIGHUP)?;
                self.report.change(format!(
                    "reloaded dnsmasq {} of network {network_id}",
                    current.pid
                ));
            }
            Some(_) => {}
            None => {
                self.start_dnsmasq(&ns, &paths, &args, &ports)?;
                self.report
                    .change(format!("started dnsmasq for network {network_id}"));
            }
        }
        if self.agent.config.metadata.is_some() {
            self.ensure_metadata_proxy(network_id, &ns)?;
        }
        Ok(())
    }

    fn start_dnsmasq(
        &mut self,
        ns: &str,
        paths: &DhcpPaths,
        args: &[String],
        ports: &[&Port],
    ) -> Result<()> {
        // Seed the lease file with every host (Neutron does so): a restarted dnsmasq then
        // renews existing leases instead of refusing them.
        let expiry = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + u64::from(self.agent.config.dhcp_lease_duration);
        let mut leases = String::new();
        for port in ports {
            for ip in port.fixed_ips.iter().filter(|ip| ip.ip_address.is_ipv4()) {
                let _ = writeln!(
                    leases,
                    "{expiry} {} {} * *",
                    port.mac_address, ip.ip_address
                );
            }
        }
        write_if_changed(&paths.file("leases"), &leases)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.agent.runner.in_namespace(ns, "dnsmasq", &args)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MetadataConfig;
    use crate::model::{FixedIp, Route, ServicePort};

    fn subnet(id: &str, cidr: &str, gateway: Option<&str>) -> Subnet {
        Subnet {
            id: id.into(),
            network_id: "net".into(),
            cidr: cidr.parse().unwrap(),
            gateway_ip: gateway.map(|g| g.parse().unwrap()),
            enable_dhcp: true,
            dns_nameservers: vec![],
            host_routes: vec![],
            ipv6_address_mode: None,
        }
    }

    fn network() -> Network {
        Network {
            id: "net".into(),
            project_id: String::new(),
            network_type: crate::model::NetworkType::Vxlan,
            physical_network: None,
            segmentation_id: Some(5),
            mtu: 1450,
            vxlan_remotes: vec![],
            dhcp_port: Some(ServicePort {
                id: "dhcp".into(),
                mac_address: "fa:16:3e:00:00:02".parse().unwrap(),
                fixed_ips: vec![FixedIp {
                    subnet_id: "s1".into(),
                    ip_address: "10.0.0.2".parse().unwrap(),
                }],
            }),
        }
    }

    fn port(id: &str, mac: &str, ip: &str, subnet: &str, dns_name: Option<&str>) -> Port {
        Port {
            id: id.into(),
            network_id: "net".into(),
            project_id: String::new(),
            mac_address: mac.parse().unwrap(),
            fixed_ips: vec![FixedIp {
                subnet_id: subnet.into(),
                ip_address: ip.parse().unwrap(),
            }],
            device_id: String::new(),
            device_owner: String::new(),
            security_groups: vec![],
            allowed_address_pairs: vec![],
            port_security_enabled: true,
            dns_name: dns_name.map(String::from),
            bound_here: true,
        }
    }

    #[test]
    fn files_list_ports_and_subnet_options() {
        let mut config = AgentConfig::new("h", "/var/lib/x");
        config.metadata = Some(MetadataConfig::new("http://127.0.0.1:8775", "s"));
        let mut s1 = subnet("s1", "10.0.0.0/24", Some("10.0.0.1"));
        s1.host_routes.push(Route {
            destination: "172.16.0.0/12".parse().unwrap(),
            nexthop: "10.0.0.254".parse().unwrap(),
        });
        let mut s2 = subnet("s2", "10.0.1.0/24", None);
        s2.enable_dhcp = false;
        s2.dns_nameservers = vec!["192.0.2.53".parse().unwrap()];
        let p1 = port("p1", "fa:16:3e:00:00:05", "10.0.0.5", "s1", Some("web-1"));
        let p2 = port("p2", "fa:16:3e:00:00:06", "10.0.1.6", "s2", None);
        let files = render_files(&config, &network(), &[&s1, &s2], &[&p1, &p2]);
        assert_eq!(
            files.hosts,
            "fa:16:3e:00:00:05,web-1.openstacklocal,10.0.0.5\n"
        );
        assert_eq!(
            files.addn_hosts,
            "10.0.0.5\tweb-1.openstacklocal web-1\n10.0.1.6\thost-10-0-1-6.openstacklocal host-10-0-1-6\n"
        );
        let routes = "172.16.0.0/12,10.0.0.254,169.254.169.254/32,10.0.0.2,10.0.1.0/24,0.0.0.0,0.0.0.0/0,10.0.0.1";
        assert_eq!(
            files.opts,
            format!(
                "tag:subnet-s1,option:dns-server,10.0.0.2\n\
                 tag:subnet-s1,option:classless-static-route,{routes}\n\
                 tag:subnet-s1,249,{routes}\n\
                 tag:subnet-s1,option:router,10.0.0.1\n"
            )
        );
    }

    #[test]
    fn a_subnet_without_gateway_gets_an_empty_router_option_and_ipv6_is_bracketed() {
        let config = AgentConfig::new("h", "/x");
        let s1 = subnet("s1", "10.0.0.0/24", None);
        let mut s6 = subnet("s6", "2001:db8::/64", None);
        s6.ipv6_address_mode = Some(Ipv6AddressMode::Dhcpv6Stateful);
        let mut slaac = subnet("s7", "2001:db8:1::/64", None);
        slaac.ipv6_address_mode = Some(Ipv6AddressMode::Slaac);
        let p = port("p1", "fa:16:3e:00:00:05", "2001:db8::5", "s6", None);
        let files = render_files(&config, &network(), &[&s1, &s6, &slaac], &[&p]);
        assert_eq!(
            files.hosts,
            "fa:16:3e:00:00:05,host-2001-db8--5.openstacklocal,[2001:db8::5]\n"
        );
        assert!(
            files.opts.contains("tag:subnet-s1,option:router\n"),
            "{}",
            files.opts
        );
        assert!(
            files
                .opts
                .contains("tag:subnet-s6,option6:domain-search,openstacklocal")
        );
        assert!(!files.opts.contains("subnet-s7"));
    }

    #[test]
    fn the_command_line_matches_neutrons() {
        let mut config = AgentConfig::new("h", "/var/lib/fs");
        config.dnsmasq_dns_servers = vec!["192.0.2.53".parse().unwrap()];
        let s1 = subnet("s1", "10.0.0.0/24", Some("10.0.0.1"));
        let mut s6 = subnet("s6", "2001:db8::/64", None);
        s6.ipv6_address_mode = Some(Ipv6AddressMode::Dhcpv6Stateful);
        let paths = DhcpPaths::new(&config, "net");
        let args = command_args(&config, &network(), &[&s1, &s6], &paths, "ns-dhcp");
        let expected = [
            "--pid-file=/var/lib/fs/dhcp/net/pid",
            "--dhcp-hostsfile=/var/lib/fs/dhcp/net/host",
            "--dhcp-optsfile=/var/lib/fs/dhcp/net/opts",
            "--interface=ns-dhcp",
            "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,86400s",
            "--dhcp-range=set:subnet-s6,2001:db8::,static,64,86400s",
            "--dhcp-option-force=option:mtu,1450",
            "--dhcp-lease-max=16777216",
            "--server=192.0.2.53",
            "--domain=openstacklocal",
        ];
        for arg in expected {
            assert!(
                args.iter().any(|a| a == arg),
                "{arg} missing from {args:#?}"
            );
        }
    }
}
