//! This host's network agent (Neutron's Linux bridge, DHCP, L3 and metadata agents in one
//! loop): it follows the network change events, fetches the host's desired state from
//! `network.server`, converges the kernel to it off the async threads, and reports what it
//! wired (ports turn `ACTIVE`) with a heartbeat. Inside `ferrostack up`, or alone as
//! `ferrostack network-agent` over the AMQP bus. Stopping it leaves the data plane in place
//! (guests keep their network), as Neutron's agents do; the next start reconciles.

use anyhow::Context;
use ferrostack_bus::MessageBus;
use ferrostack_config::Config;
use ferrostack_network::agents::rpc::{self, AgentReport, Reply, Request, SERVER_QUEUE};
use ferrostack_network::events::{Event, TOPIC};
use ferrostack_network_agent::model::HostState;
use ferrostack_network_agent::runner::Runner;
use ferrostack_network_agent::{Agent, AgentConfig, MetadataConfig, Report};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long to collect events before converging (a burst of API changes becomes one pass).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often to look again while ports wait for their tap (libvirt creates it when the guest
/// starts).
const PENDING_RETRY: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The running agent loop.
pub struct NetworkAgentHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NetworkAgentHandle {
    /// Stops the loop (the kernel objects stay).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The VTEP address: `[network] local_ip`, else the address of the default route's interface,
/// else 127.0.0.1.
pub fn local_ip(config: &Config) -> anyhow::Result<IpAddr> {
    if !config.network.local_ip.is_empty() {
        return config
            .network
            .local_ip
            .parse()
            .with_context(|| format!("[network] local_ip {:?}", config.network.local_ip));
    }
    Ok(default_route_address().unwrap_or(IpAddr::from([127, 0, 0, 1])))
}

/// The DHCP files of `host`'s agent: `/run/ferrostack/<host>/dhcp`, world-traversable (as
/// Neutron's `/var/lib/neutron/dhcp`); rebuilt from the desired state after a reboot.
pub fn dhcp_root(host: &str) -> std::path::PathBuf {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::path::Path::new("/run/ferrostack")
        .join(safe)
        .join("dhcp")
}

fn default_route_address() -> Option<IpAddr> {
    let out = |args: &[&str]| Runner.ip(None, args).ok();
    let route = out(&["-4", "-o", "route", "show", "default"])?;
    let words: Vec<&str> = route.split_whitespace().collect();
    let dev = words
        .iter()
        .position(|w| *w == "dev")
        .and_then(|i| words.get(i + 1))?;
    let addrs = out(&["-4", "-o", "addr", "show", "dev", dev])?;
    let words: Vec<&str> = addrs.split_whitespace().collect();
    let cidr = words
        .iter()
        .position(|w| *w == "inet")
        .and_then(|i| words.get(i + 1))?;
    cidr.split('/').next()?.parse().ok()
}

/// The data plane settings of this host from the configuration.
pub fn agent_config(
    config: &Config,
    metadata_secret: Option<String>,
) -> anyhow::Result<AgentConfig> {
    let n = &config.network;
    let mut agent = AgentConfig::new(&config.compute.host, config.state_dir.join("network"));
    // Outside the private state directory: dnsmasq reads its files as `nobody` on reloads.
    agent.dhcp_root = dhcp_root(&config.compute.host);
    agent.local_vtep_ip = Some(local_ip(config)?);
    agent.bridge_mappings = n.bridge_mappings.clone();
    agent.physical_interface_mappings = n
        .physical_interface_mappings
        .iter()
        .filter(|(physnet, _)| !n.bridge_mappings.contains_key(*physnet))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let listen = &config.compute.metadata_listen;
    agent.metadata = match (metadata_secret, listen.is_empty()) {
        (Some(secret), false) => Some(MetadataConfig::new(format!("http://{listen}"), secret)),
        _ => None,
    };
    Ok(agent)
}

/// Creates the mapped bridges that do not exist (the external network's `br-ex`) with their
/// address from `[network] bridge_addresses`, and the outbound NAT when `external_nat` is on.
/// Bridges are never removed: they carry the external network across restarts.
fn ensure_bridges(config: &Config) {
    let n = &config.network;
    let run = Runner;
    for bridge in n.bridge_mappings.values() {
        let exists = run.ip(None, &["link", "show", "dev", bridge]).is_ok();
        let mut steps: Vec<Vec<&str>> = Vec::new();
        if !exists {
            steps.push(vec!["link", "add", "name", bridge, "type", "bridge"]);
        }
        steps.push(vec!["link", "set", "dev", bridge, "up"]);
        if let Some(address) = n.bridge_addresses.get(bridge) {
            steps.push(vec!["addr", "replace", address, "dev", bridge]);
        }
        for args in steps {
            if let Err(e) = run.ip(None, &args) {
                tracing::warn!(bridge = %bridge, error = %e, "external bridge");
            }
        }
        if n.external_nat
            && let Some(address) = n.bridge_addresses.get(bridge)
        {
            external_nat(&run, bridge, address);
        }
    }
}

/// Masquerades traffic from the bridge's subnet leaving through any other interface (one
/// nftables table per bridge, replaced whole).
fn external_nat(run: &Runner, bridge: &str, address: &str) {
    let Ok(net) = address.parse::<ipnet::IpNet>() else {
        return;
    };
    let table = format!("ferrostack_nat_{}", bridge.replace('-', "_"));
    let script = format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n chain postrouting {{\n  type nat hook postrouting priority srcnat; policy accept;\n  ip saddr {} oifname != \"{bridge}\" masquerade\n }}\n}}\n",
        net.trunc()
    );
    if let Err(e) = run.nft_apply(None, &script) {
        tracing::warn!(bridge, error = %e, "outbound NAT not applied");
    }
    let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
}

/// Starts the loop: the agent converges as soon as the server answers.
pub async fn start(
    config: &Config,
    bus: Arc<dyn MessageBus>,
    metadata_secret: Option<String>,
) -> anyhow::Result<NetworkAgentHandle> {
    let agent_config = agent_config(config, metadata_secret)?;
    ensure_bridges(config);
    let vtep = agent_config.local_vtep_ip;
    let host = agent_config.host.clone();
    let agent = Agent::new(agent_config, Some(tokio::runtime::Handle::current()))
        .map_err(|e| anyhow::anyhow!("network agent: {e}"))?;
    let events = bus.subscribe(TOPIC).await?;
    let (stop, stopped) = watch::channel(false);
    let looper = Loop {
        bus,
        host,
        vtep,
        agent: Arc::new(Mutex::new(agent)),
        started_at: chrono::Utc::now().to_rfc3339(),
        resync: Duration::from_secs(config.network.resync_interval.max(1)),
        heartbeat: Duration::from_secs(config.network.report_interval.max(1)),
        networks: BTreeSet::new(),
    };
    tracing::info!(host = %looper.host, vtep = ?vtep, "network agent started");
    let task = tokio::spawn(looper.run(events, stopped));
    Ok(NetworkAgentHandle { stop, task })
}

struct Loop {
    bus: Arc<dyn MessageBus>,
    host: String,
    vtep: Option<IpAddr>,
    agent: Arc<Mutex<Agent>>,
    started_at: String,
    resync: Duration,
    heartbeat: Duration,
    /// The networks of the last state (events about other hosts' ports elsewhere are skipped).
    networks: BTreeSet<String>,
}

impl Loop {
    async fn run(
        mut self,
        mut events: Box<dyn ferrostack_bus::EventStream>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut last = Report::default();
        let mut dirty = true;
        let mut synced = tokio::time::Instant::now();
        let mut reported = tokio::time::Instant::now();
        loop {
            if dirty {
                match self.sync().await {
                    Ok(report) => last = report,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "network agent sync failed; retrying")
                    }
                }
                dirty = false;
                synced = tokio::time::Instant::now();
                reported = synced;
            }
            let next_sync = synced
                + match last.pending_ports.is_empty() {
                    true => self.resync,
                    false => PENDING_RETRY,
                };
            let next_report = reported + self.heartbeat;
            tokio::select! {
                _ = stopped.changed() => break,
                event = events.next() => match event {
                    Some(payload) => {
                        if self.concerns_me(&payload) {
                            self.debounce(&mut events).await;
                            dirty = true;
                        }
                    }
                    None => {
                        tracing::warn!("network change events ended; resyncing on the timer only");
                        events = Box::new(Never);
                    }
                },
                _ = tokio::time::sleep_until(next_sync) => dirty = true,
                _ = tokio::time::sleep_until(next_report) => {
                    if let Err(e) = self.report(&last).await {
                        tracing::debug!(error = %e, "network agent heartbeat");
                    }
                    reported = tokio::time::Instant::now();
                }
            }
        }
        tracing::info!("network agent stopped (the data plane stays)");
    }

    /// Whether an event may change this host's state: anything not about a port bound to
    /// another host on a network this host does not have.
    fn concerns_me(&self, payload: &[u8]) -> bool {
        let Ok(event) = serde_json::from_slice::<Event>(payload) else {
            return true;
        };
        match (&event.host, &event.network_id) {
            (Some(host), Some(network)) if event.resource == "port" => {
                host == &self.host || self.networks.contains(network)
            }
            _ => true,
        }
    }

    /// Waits until no event arrived for [`DEBOUNCE`].
    async fn debounce(&self, events: &mut Box<dyn ferrostack_bus::EventStream>) {
        while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, events.next()).await {}
    }

    async fn call(&self, request: &Request) -> anyhow::Result<Reply> {
        let bytes = self
            .bus
            .call(SERVER_QUEUE, rpc::encode(request), CALL_TIMEOUT)
            .await?;
        Ok(rpc::decode(&bytes)?)
    }

    async fn fetch(&self) -> anyhow::Result<HostState> {
        match self
            .call(&Request::GetState {
                host: self.host.clone(),
            })
            .await?
        {
            Reply::State { state } => Ok(*state),
            Reply::Error { message } => anyhow::bail!("network server: {message}"),
            Reply::Ok => anyhow::bail!("network server: unexpected reply"),
        }
    }

    async fn sync(&mut self) -> anyhow::Result<Report> {
        let state = self.fetch().await?;
        self.networks = state.networks.iter().map(|n| n.id.clone()).collect();
        let agent = self.agent.clone();
        let report = tokio::task::spawn_blocking(move || {
            let mut agent = agent.lock().unwrap_or_else(|p| p.into_inner());
            agent.converge(&state)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("converging: {e}"))?;
        self.report(&report).await?;
        Ok(report)
    }

    async fn report(&self, report: &Report) -> anyhow::Result<()> {
        let request = Request::Report(AgentReport {
            host: self.host.clone(),
            active_ports: report.active_ports.clone(),
            pending_ports: report.pending_ports.clone(),
            active_floating_ips: report.active_floating_ips.clone(),
            errors: report
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.resource, e.message))
                .collect(),
            vtep_ip: self.vtep,
            heartbeat: chrono::Utc::now().to_rfc3339(),
            started_at: self.started_at.clone(),
        });
        match self.call(&request).await? {
            Reply::Error { message } => anyhow::bail!("network server: {message}"),
            _ => Ok(()),
        }
    }
}

/// An event stream that never yields (after the bus closed the real one).
struct Never;

#[async_trait::async_trait]
impl ferrostack_bus::EventStream for Never {
    async fn next(&mut self) -> Option<Vec<u8>> {
        std::future::pending().await
    }
}

/// The network server side of the all-in-one: the RPC consumer with Nova's notifier.
pub async fn start_server(
    config: &Config,
    network: Arc<ferrostack_network::Networking>,
    bus: Arc<dyn MessageBus>,
    service_password: &str,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let network_host = match config.network.l3_host.as_str() {
        "" => config.compute.host.clone(),
        h => h.to_string(),
    };
    let notifier: Arc<dyn ferrostack_network::agents::VifNotifier> = Arc::new(
        crate::nova_notifier::NovaNotifier::new(config, service_password),
    );
    network.set_compute_notifier(notifier.clone());
    let options = ferrostack_network::agents::ServerOptions {
        network_host,
        notifier: Some(notifier),
    };
    ferrostack_network::agents::start(network, bus, options).await
}

/// `ferrostack network-cleanup`: converges this host to the empty state.
pub async fn cleanup(config: Config) -> anyhow::Result<()> {
    let agent_config = agent_config(&config, None)?;
    let report = tokio::task::spawn_blocking(move || {
        let mut agent = Agent::new(agent_config, None)?;
        agent.teardown()
    })
    .await?
    .map_err(|e| anyhow::anyhow!("network cleanup: {e}"))?;
    for change in &report.changes {
        println!("{change}");
    }
    for error in &report.errors {
        eprintln!("{}: {}", error.resource, error.message);
    }
    anyhow::ensure!(report.is_ok(), "some objects could not be removed");
    // The host's DHCP directories, once empty (not an error if something else is left there).
    let root = dhcp_root(&config.compute.host);
    for dir in [root.as_path()].into_iter().chain(root.parent()) {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// `ferrostack network-agent`: this host's network agent alone, over the AMQP bus, without a
/// database; runs until SIGINT/SIGTERM.
pub async fn run_agent_only(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.bus.kind == "amqp",
        "`ferrostack network-agent` reaches the controller only through the message bus, and \
         [bus] kind is {:?}: set [bus] kind = \"amqp\" and [bus] url to the controller's RabbitMQ",
        config.bus.kind
    );
    let bus = crate::server::open_bus(&config, "network-agent").await?;
    let secret = match config.compute.metadata_proxy_shared_secret.as_str() {
        "" => std::fs::read_to_string(config.state_dir.join("metadata-proxy-secret"))
            .ok()
            .map(|s| s.trim().to_string()),
        s => Some(s.to_string()),
    };
    if secret.is_none() {
        tracing::warn!(
            "no metadata proxy secret ([compute] metadata_proxy_shared_secret): metadata proxy off"
        );
    }
    let agent = start(&config, bus, secret).await?;
    crate::server::shutdown_signal().await;
    agent.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looper(networks: &[&str]) -> Loop {
        let config = AgentConfig::new("h1", std::env::temp_dir().join("fs-nh-test"));
        Loop {
            bus: ferrostack_bus::InProcessBus::new(),
            host: "h1".into(),
            vtep: None,
            agent: Arc::new(Mutex::new(Agent::new(config, None).unwrap())),
            started_at: String::new(),
            resync: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            networks: networks.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn event(host: &str, network: &str) -> Vec<u8> {
        serde_json::to_vec(
            &Event::new("port", "updated", "p", 2)
                .on_network(network)
                .on_host(host),
        )
        .unwrap()
    }

    #[test]
    fn events_about_other_hosts_ports_elsewhere_are_skipped() {
        let l = looper(&["n1"]);
        assert!(l.concerns_me(&event("h1", "n9")), "a port of this host");
        assert!(
            l.concerns_me(&event("h2", "n1")),
            "a port on a network this host has"
        );
        assert!(!l.concerns_me(&event("h2", "n9")));
        let subnet = serde_json::to_vec(&Event::new("subnet", "created", "s", 1).on_network("n9"));
        assert!(
            l.concerns_me(&subnet.unwrap()),
            "a new subnet may start DHCP here"
        );
        assert!(l.concerns_me(b"not json"));
    }

    #[test]
    fn agent_settings_come_from_the_configuration() {
        let mut config = Config::default();
        config.compute.host = "h1".into();
        config.network.local_ip = "192.0.2.7".into();
        config
            .network
            .bridge_mappings
            .insert("public".into(), "br-ex".into());
        let agent = agent_config(&config, Some("s3cret".into())).unwrap();
        assert_eq!(agent.local_vtep_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(agent.bridge_mappings["public"], "br-ex");
        assert!(!agent.physical_interface_mappings.contains_key("public"));
        let metadata = agent.metadata.unwrap();
        assert_eq!(metadata.shared_secret, "s3cret");
        assert!(metadata.nova_metadata_url.starts_with("http://"));
        config.network.local_ip = "nonsense".into();
        assert!(agent_config(&config, None).is_err());
    }
}
