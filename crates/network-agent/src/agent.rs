//! The agent: converges the host to a desired state, idempotently. Every call reads the
//! kernel's state (devices, the agent's namespaces, its dnsmasq processes), removes what the
//! agent owns and the state no longer names, then creates or fixes what is missing — so the first
//! call after a crash or restart is the reconciliation, and a repeated call changes nothing.

use crate::config::AgentConfig;
use crate::dhcp::create_public_dir;
use crate::error::{Error, Result};
use crate::kernel::{self, Link};
use crate::metadata::MetadataProxies;
use crate::model::{HostState, Network, Subnet};
use crate::names;
use crate::namespace::read_namespaces;
use crate::process::{self, Process};
use crate::report::Report;
use crate::runner::Runner;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// One host's network agent.
pub struct Agent {
    pub(crate) config: AgentConfig,
    pub(crate) runner: Runner,
    pub(crate) tag: String,
    pub(crate) firewall: FirewallMemory,
    /// Router id → the NAT script last applied in its namespace.
    pub(crate) router_rules: HashMap<String, String>,
    pub(crate) metadata: Option<MetadataProxies>,
}

/// What the agent remembers about its nftables tables between passes.
#[derive(Debug, Default)]
pub(crate) struct FirewallMemory {
    /// Bridge → conntrack zone, stable while the bridge exists (seeded from the kernel's table
    /// after a restart, so connections keep their zone).
    pub zones: BTreeMap<String, u16>,
    pub seeded: bool,
    /// The script last applied.
    pub applied: Option<String>,
}

/// Lookups into a desired state.
pub(crate) struct StateIndex<'a> {
    pub networks: HashMap<&'a str, &'a Network>,
    pub subnets: HashMap<&'a str, &'a Subnet>,
    by_network: HashMap<&'a str, Vec<&'a Subnet>>,
}

impl<'a> StateIndex<'a> {
    fn new(state: &'a HostState) -> Self {
        let mut by_network: HashMap<&str, Vec<&Subnet>> = HashMap::new();
        for subnet in &state.subnets {
            by_network
                .entry(subnet.network_id.as_str())
                .or_default()
                .push(subnet);
        }
        StateIndex {
            networks: state.networks.iter().map(|n| (n.id.as_str(), n)).collect(),
            subnets: state.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
            by_network,
        }
    }

    /// The subnets of a network, in the state's order.
    pub fn subnets_of(&self, network_id: &str) -> Vec<&'a Subnet> {
        self.by_network.get(network_id).cloned().unwrap_or_default()
    }
}

/// One convergence: the kernel's state as read at its start, and what it did.
pub(crate) struct Pass<'a> {
    pub agent: &'a mut Agent,
    pub state: &'a HostState,
    pub index: StateIndex<'a>,
    /// The host namespace's devices.
    pub links: HashMap<String, Link>,
    /// The agent's namespaces with their devices.
    pub namespaces: BTreeMap<String, Vec<Link>>,
    /// Namespaces with the agent's prefixes that are not the agent's.
    pub foreign_namespaces: BTreeSet<String>,
    /// The agent's dnsmasq processes by network.
    pub dnsmasq: HashMap<String, Vec<Process>>,
    /// Network id → bridge, for the networks wired in this pass.
    pub bridges: HashMap<String, String>,
    /// Whether the security group tables are in place (ports with port security are plugged
    /// only then: never unfiltered).
    pub firewall_ok: bool,
    pub report: Report,
}

impl Agent {
    /// An agent for `config`. `runtime` serves the metadata proxies; it is required when
    /// `config.metadata` is set.
    pub fn new(config: AgentConfig, runtime: Option<tokio::runtime::Handle>) -> Result<Agent> {
        if config.host.is_empty() {
            return Err(Error::Config("the host name is empty".into()));
        }
        create_public_dir(&config.state_dir)?;
        let metadata = match (&config.metadata, runtime) {
            (Some(metadata), Some(runtime)) => {
                Some(MetadataProxies::new(runtime, metadata.clone())?)
            }
            (Some(_), None) => {
                return Err(Error::Config(
                    "the metadata proxy needs a tokio runtime handle".into(),
                ));
            }
            (None, _) => None,
        };
        Ok(Agent {
            tag: config.owner_tag(),
            config,
            runner: Runner,
            firewall: FirewallMemory::default(),
            router_rules: HashMap::new(),
            metadata,
        })
    }

    /// The agent's configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Converges the host to `desired`: removes the agent's objects it does not name, creates
    /// and fixes the rest. Blocking (it runs host tools); call it from `spawn_blocking` in async
    /// code. An invalid state, or a kernel state that cannot be read, is an error and changes
    /// nothing; a resource that fails is reported in [`Report::errors`] while the others are
    /// still converged.
    pub fn converge(&mut self, desired: &HostState) -> Result<Report> {
        desired.validate()?;
        let started = Instant::now();
        let mut pass = Pass::read(self, desired)?;
        pass.run();
        let report = pass.report;
        let (elapsed, changes, errors) =
            (started.elapsed(), report.changes.len(), report.errors.len());
        // A pass that found the host as desired (the agent's periodic resyncs) logs at debug.
        match changes + errors {
            0 => tracing::debug!(?elapsed, "network agent converged: no changes"),
            _ => tracing::info!(?elapsed, changes, errors, "network agent converged"),
        }
        Ok(report)
    }

    /// Removes everything the agent owns on this host (converges to the empty state).
    pub fn teardown(&mut self) -> Result<Report> {
        self.converge(&HostState::default())
    }
}

impl<'a> Pass<'a> {
    fn read(agent: &'a mut Agent, state: &'a HostState) -> Result<Pass<'a>> {
        let links = kernel::links(&agent.runner, None)?
            .into_iter()
            .map(|l| (l.ifname.clone(), l))
            .collect();
        let found = read_namespaces(
            &agent.runner,
            &agent.tag,
            &[names::DHCP_NAMESPACE_PREFIX, names::ROUTER_NAMESPACE_PREFIX],
        )?;
        let mut dnsmasq: HashMap<String, Vec<Process>> = HashMap::new();
        for (network, process) in process::find_by_pid_file_dir(&agent.config.dhcp_root()) {
            dnsmasq.entry(network).or_default().push(process);
        }
        Ok(Pass {
            agent,
            state,
            index: StateIndex::new(state),
            links,
            namespaces: found.owned,
            foreign_namespaces: found.foreign,
            dnsmasq,
            bridges: HashMap::new(),
            firewall_ok: false,
            report: Report::default(),
        })
    }

    fn run(&mut self) {
        let expected = self.expected_root();
        if let Some(metadata) = &self.agent.metadata {
            metadata.update_directory(self.state);
        }
        self.remove_stale_routers();
        self.remove_stale_dhcp();
        let served = self.dhcp_networks();
        let orphans: Vec<String> = self
            .agent
            .metadata
            .as_ref()
            .map(|m| m.networks())
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !served.contains(n))
            .collect();
        for network in orphans {
            self.stop_metadata_proxy(&network);
        }
        self.remove_stale_links(&expected);
        self.converge_networks();
        self.converge_firewall(&expected);
        self.plug_ports();
        self.converge_dhcp();
        self.converge_routers();
    }

    /// Serves metadata for `network_id` in its DHCP namespace `ns`.
    pub(crate) fn ensure_metadata_proxy(&mut self, network_id: &str, ns: &str) -> Result<()> {
        if let Some(metadata) = self.agent.metadata.as_mut()
            && metadata.ensure(network_id, ns)?
        {
            self.report
                .change(format!("started the metadata proxy in {ns}"));
        }
        Ok(())
    }

    /// Stops the metadata proxy of `network_id`, if one runs.
    pub(crate) fn stop_metadata_proxy(&mut self, network_id: &str) {
        if let Some(metadata) = self.agent.metadata.as_mut()
            && metadata.stop(network_id)
        {
            self.report.change(format!(
                "stopped the metadata proxy of network {network_id}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_can_move_to_a_blocking_thread() {
        fn send<T: Send>() {}
        send::<Agent>();
    }

    #[test]
    fn the_metadata_proxy_needs_a_runtime_and_an_invalid_state_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AgentConfig::new("h", dir.path());
        config.metadata = Some(crate::MetadataConfig::new("http://127.0.0.1:1", "s"));
        assert!(matches!(
            Agent::new(config.clone(), None),
            Err(Error::Config(_))
        ));
        config.metadata = None;
        let mut agent = Agent::new(config, None).unwrap();
        let invalid: HostState = serde_json::from_value(serde_json::json!({
            "ports": [{"id": "p", "network_id": "missing", "mac_address": "fa:16:3e:00:00:01"}]
        }))
        .unwrap();
        assert!(matches!(agent.converge(&invalid), Err(Error::Invalid(_))));
    }
}
