//! The lab the data-plane tests run in: an agent with its own host tag and state directory, and
//! "guests" built as network namespaces whose veth ends are the ports' tap devices. Everything a
//! test creates is removed when its guards drop, even when the test fails. Tests send packets
//! only to addresses they created (shared/GUIDE.md: network safety).

use ferrostack_network_agent::model::*;
use ferrostack_network_agent::{Agent, AgentConfig, Report};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Why the kernel tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (network namespaces, bridges, nftables)".into());
    }
    for tool in [
        "ip", "bridge", "nft", "dnsmasq", "busybox", "sysctl", "python3",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "needs `{tool}` (apt-get install iproute2 nftables dnsmasq-base busybox-static procps)"
            ));
        }
    }
    None
}

/// Returns from the test (passing) with a message when the kernel tests cannot run.
#[macro_export]
macro_rules! skip_unless_capable {
    () => {
        if let Some(reason) = $crate::common::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// A fresh uuid.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random byte (for test-local addresses and VNIs).
pub fn random_u32() -> u32 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Runs a command; panics with its output if it fails.
pub fn sh(command: &str) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "`{command}` failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command, whatever its outcome.
pub fn run(command: &str) -> Output {
    Command::new("sh")
        .args(["-c", command])
        .output()
        .expect("sh runs")
}

/// Whether a device exists in the host namespace.
pub fn link_exists(name: &str) -> bool {
    run(&format!("ip link show dev {name}")).status.success()
}

/// Whether a namespace exists.
pub fn namespace_exists(name: &str) -> bool {
    sh("ip netns list")
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// Polls `check` for up to `timeout`.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An agent with its own host tag and state directory; its `Drop` removes everything it owns.
pub struct Lab {
    pub agent: Option<Agent>,
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub config: AgentConfig,
}

impl Lab {
    /// A lab whose agent is configured by `configure` (VTEP 127.0.0.1 by default: VXLAN networks
    /// without remotes send nothing).
    pub fn new(configure: impl FnOnce(&mut AgentConfig)) -> Lab {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "ferrostack_network_agent=info".into()),
            )
            .with_test_writer()
            .try_init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let host = format!("t{:08x}", random_u32());
        let mut config = AgentConfig::new(host, dir.path().join("state"));
        config.local_vtep_ip = Some("127.0.0.1".parse().unwrap());
        configure(&mut config);
        let agent = Agent::new(config.clone(), Some(runtime.handle().clone())).expect("an agent");
        Lab {
            agent: Some(agent),
            runtime,
            dir,
            config,
        }
    }

    pub fn agent(&mut self) -> &mut Agent {
        self.agent.as_mut().expect("the agent runs")
    }

    /// Converges and asserts that nothing failed.
    pub fn converge(&mut self, state: &HostState) -> Report {
        let report = self.agent().converge(state).expect("the state converges");
        assert!(report.is_ok(), "errors: {:#?}", report.errors);
        report
    }

    /// Simulates a crash and restart: the agent goes away without cleaning up and a new one
    /// starts with the same configuration.
    pub fn restart_agent(&mut self) {
        drop(self.agent.take());
        self.agent = Some(
            Agent::new(self.config.clone(), Some(self.runtime.handle().clone())).expect("an agent"),
        );
    }

    /// Writes the guests' DHCP client script; returns its path.
    pub fn udhcpc_script(&self) -> PathBuf {
        let path = self.dir.path().join("udhcpc.sh");
        if !path.exists() {
            std::fs::write(&path, UDHCPC_SCRIPT).unwrap();
            sh(&format!("chmod 755 {}", path.display()));
        }
        path
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.agent.is_none() {
            self.restart_agent();
        }
        match self.agent().teardown() {
            Ok(report) if !report.is_ok() => eprintln!("teardown errors: {:#?}", report.errors),
            Ok(_) => {}
            Err(e) => eprintln!("teardown failed: {e}"),
        }
    }
}

/// The guests' udhcpc event script: configures eth0 from the lease (classless static routes
/// replace the router option, RFC 3442) and records the lease in `$LEASE_FILE`.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"
ip addr add "$ip/$mask" dev "$interface"
[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
if [ -n "$staticroutes" ]; then
  set -- $staticroutes
  while [ $# -ge 2 ]; do
    if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"
    else ip route replace "$1" via "$2" dev "$interface"; fi
    shift 2
  done
elif [ -n "$router" ]; then
  ip route replace default via "${router%% *}" dev "$interface"
fi
printf 'ip=%s\nmask=%s\nrouter=%s\nstaticroutes=%s\nmtu=%s\ndns=%s\ndomain=%s\n' \
  "$ip" "$mask" "$router" "$staticroutes" "$mtu" "$dns" "$domain" > "$LEASE_FILE"
"#;

/// What a guest's DHCP client was told.
#[derive(Debug, Default, Clone)]
pub struct Lease {
    pub ip: String,
    pub mask: String,
    pub router: String,
    pub staticroutes: String,
    pub mtu: String,
    pub dns: String,
    pub domain: String,
}

/// A guest: a namespace whose `eth0` is the peer of the port's tap device (the device the
/// agent plugs into the bridge).
pub struct Guest {
    pub ns: String,
    pub tap: String,
    pub mac: MacAddress,
}

impl Guest {
    /// A guest for `port` (its tap device, its MAC), with no address yet.
    pub fn new(port: &Port) -> Guest {
        let guest = Guest {
            ns: format!("fsg-{}", &port.id[..13]),
            tap: port.device_name(),
            mac: port.mac_address,
        };
        sh(&format!("ip netns add {}", guest.ns));
        sh(&format!(
            "ip link add {} type veth peer name eth0 netns {}",
            guest.tap, guest.ns
        ));
        sh(&format!(
            "ip -n {} link set dev eth0 address {} up && ip -n {} link set dev lo up",
            guest.ns, guest.mac, guest.ns
        ));
        guest
    }

    /// Runs a shell command inside the guest.
    pub fn run(&self, command: &str) -> Output {
        run(&format!("ip netns exec {} sh -c '{}'", self.ns, command))
    }

    /// Asks for an address by DHCP (busybox udhcpc); the lease, or the client's output.
    pub fn dhcp(&self, script: &Path) -> Result<Lease, String> {
        let lease_file = script.with_file_name(format!("{}.lease", self.ns));
        let _ = std::fs::remove_file(&lease_file);
        let output = run(&format!(
            "ip netns exec {} env LEASE_FILE={} busybox udhcpc -i eth0 -f -q -n -t 5 -T 1 -s {} -O staticroutes -O mtu 2>&1",
            self.ns,
            lease_file.display(),
            script.display()
        ));
        let text = std::fs::read_to_string(&lease_file)
            .map_err(|_| format!("no lease: {}", String::from_utf8_lossy(&output.stdout)))?;
        let mut lease = Lease::default();
        for line in text.lines() {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value.trim().to_string();
            match key {
                "ip" => lease.ip = value,
                "mask" => lease.mask = value,
                "router" => lease.router = value,
                "staticroutes" => lease.staticroutes = value,
                "mtu" => lease.mtu = value,
                "dns" => lease.dns = value,
                "domain" => lease.domain = value,
                _ => {}
            }
        }
        Ok(lease)
    }

    /// Whether `ip` answers a ping (two tries, one second each).
    pub fn ping(&self, ip: impl std::fmt::Display) -> bool {
        self.run(&format!("busybox ping -c 2 -W 1 {ip}"))
            .status
            .success()
    }

    /// Whether `ip` answers one ping within a second.
    pub fn ping_once(&self, ip: impl std::fmt::Display) -> bool {
        self.run(&format!("busybox ping -c 1 -W 1 {ip}"))
            .status
            .success()
    }

    /// Sets a static address (and optionally a default route) on eth0, replacing others.
    pub fn set_address(&self, cidr: &str, gateway: Option<&str>) {
        let mut command = format!("ip addr flush dev eth0 && ip addr add {cidr} dev eth0");
        if let Some(gateway) = gateway {
            command.push_str(&format!(" && ip route replace default via {gateway}"));
        }
        let output = self.run(&command);
        assert!(output.status.success(), "{output:?}");
    }

    /// Changes eth0's MAC address.
    pub fn set_mac(&self, mac: &str) {
        let output = self.run(&format!("ip link set dev eth0 address {mac}"));
        assert!(output.status.success(), "{output:?}");
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        run(&format!("ip netns del {}", self.ns));
        run(&format!("ip link del dev {}", self.tap));
    }
}

/// Kernel objects a test builds itself (an external host, an underlay): deleted on drop.
#[derive(Default)]
pub struct Cleanup {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            run(&format!("ip netns del {ns}"));
        }
        for link in &self.links {
            run(&format!("ip link del dev {link}"));
        }
    }
}

// ---- desired-state builders ----

/// A random MAC with OpenStack's prefix.
pub fn mac() -> MacAddress {
    let r = random_u32().to_le_bytes();
    MacAddress([0xfa, 0x16, 0x3e, r[0], r[1], r[2]])
}

/// A random VNI, distinct across concurrently running tests with high probability.
pub fn vni() -> u32 {
    100_000 + random_u32() % 16_000_000
}

pub fn vxlan_network(vni: u32, mtu: u32) -> Network {
    Network {
        id: uuid(),
        project_id: "project-a".into(),
        network_type: NetworkType::Vxlan,
        physical_network: None,
        segmentation_id: Some(vni),
        mtu,
        vxlan_remotes: vec![],
        dhcp_port: None,
    }
}

pub fn flat_network(physnet: &str) -> Network {
    Network {
        id: uuid(),
        project_id: "admin".into(),
        network_type: NetworkType::Flat,
        physical_network: Some(physnet.into()),
        segmentation_id: None,
        mtu: 1500,
        vxlan_remotes: vec![],
        dhcp_port: None,
    }
}

pub fn subnet(network: &Network, cidr: &str, gateway: Option<&str>) -> Subnet {
    Subnet {
        id: uuid(),
        network_id: network.id.clone(),
        cidr: cidr.parse().unwrap(),
        gateway_ip: gateway.map(|g| g.parse().unwrap()),
        enable_dhcp: true,
        dns_nameservers: vec![],
        host_routes: vec![],
        ipv6_address_mode: None,
    }
}

pub fn fixed(subnet: &Subnet, ip: &str) -> FixedIp {
    FixedIp {
        subnet_id: subnet.id.clone(),
        ip_address: ip.parse().unwrap(),
    }
}

pub fn service_port(subnet: &Subnet, ip: &str) -> ServicePort {
    ServicePort {
        id: uuid(),
        mac_address: mac(),
        fixed_ips: vec![fixed(subnet, ip)],
    }
}

/// A guest port bound here, in `groups`, on an instance of its own.
pub fn port(subnet: &Subnet, ip: &str, groups: &[&SecurityGroup]) -> Port {
    Port {
        id: uuid(),
        network_id: subnet.network_id.clone(),
        project_id: "project-a".into(),
        mac_address: mac(),
        fixed_ips: vec![fixed(subnet, ip)],
        device_id: uuid(),
        device_owner: "compute:nova".into(),
        security_groups: groups.iter().map(|g| g.id.clone()).collect(),
        allowed_address_pairs: vec![],
        port_security_enabled: true,
        dns_name: None,
        bound_here: true,
    }
}

pub fn rule(direction: Direction, protocol: Option<&str>) -> SecurityGroupRule {
    SecurityGroupRule {
        id: uuid(),
        direction,
        ethertype: EtherType::IPv4,
        protocol: protocol.map(String::from),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

/// Neutron's `default` group: all egress, ingress only from members of the group.
pub fn default_group() -> SecurityGroup {
    let id = uuid();
    let mut from_members = rule(Direction::Ingress, None);
    from_members.remote_group_id = Some(id.clone());
    SecurityGroup {
        id,
        rules: vec![rule(Direction::Egress, None), from_members],
        member_ips: vec![],
    }
}

/// A group allowing all egress and nothing in.
pub fn egress_only_group() -> SecurityGroup {
    SecurityGroup {
        id: uuid(),
        rules: vec![rule(Direction::Egress, None)],
        member_ips: vec![],
    }
}

/// An ingress rule for ICMP from anywhere.
pub fn icmp_in() -> SecurityGroupRule {
    let mut r = rule(Direction::Ingress, Some("icmp"));
    r.remote_ip_prefix = Some("0.0.0.0/0".parse().unwrap());
    r
}

/// A network with one DHCP-enabled subnet and its DHCP port (`.2`).
pub fn dhcp_network(vni: u32, prefix: &str) -> (Network, Subnet) {
    let mut network = vxlan_network(vni, 1450);
    let subnet = subnet(
        &network,
        &format!("{prefix}.0/24"),
        Some(&format!("{prefix}.1")),
    );
    network.dhcp_port = Some(service_port(&subnet, &format!("{prefix}.2")));
    (network, subnet)
}

/// The pid of the agent's dnsmasq for `network_id`, from its pid file, if it runs.
pub fn dnsmasq_pid(lab: &Lab, network_id: &str) -> Option<i32> {
    let pid_file = lab.config.dhcp_dir(network_id).join("pid");
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains(network_id)
        .then_some(pid)
}
