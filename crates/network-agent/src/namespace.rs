//! Network namespaces the agent owns (`qdhcp-…`, `qrouter-…`) and the veth pairs that connect
//! them to bridges. A namespace is the agent's when its loopback device carries the agent's
//! mark (interface alias), set when the agent creates it.

use crate::agent::Pass;
use crate::error::{Error, Result};
use crate::kernel::{self, Link};
use crate::model::MacAddress;
use crate::runner::Runner;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// The namespaces with the agent's prefixes as found on the host.
pub(crate) struct FoundNamespaces {
    /// The agent's own, with their devices.
    pub owned: BTreeMap<String, Vec<Link>>,
    /// Same prefix, without the agent's mark: never touched.
    pub foreign: BTreeSet<String>,
}

/// The namespaces with one of `prefixes`, split into the agent's own and the others.
pub(crate) fn read_namespaces(
    runner: &Runner,
    tag: &str,
    prefixes: &[&str],
) -> Result<FoundNamespaces> {
    let mut owned = BTreeMap::new();
    let mut foreign = BTreeSet::new();
    for name in kernel::namespaces(runner)? {
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        match kernel::links(runner, Some(&name)) {
            Ok(links) if links.iter().any(|l| l.ifname == "lo" && l.owned_by(tag)) => {
                owned.insert(name, links);
            }
            // Unreadable (being deleted) or someone else's.
            _ => {
                foreign.insert(name);
            }
        }
    }
    Ok(FoundNamespaces { owned, foreign })
}

impl Pass<'_> {
    /// Creates namespace `name` marked as the agent's, unless it exists already. A namespace of
    /// that name that is not the agent's is an error (it is never adopted).
    pub(crate) fn ensure_namespace(&mut self, name: &str) -> Result<()> {
        if self.namespaces.contains_key(name) {
            return Ok(());
        }
        if self.foreign_namespaces.contains(name) {
            return Err(Error::Config(format!(
                "namespace {name} exists and is not this agent's"
            )));
        }
        let runner = self.agent.runner.clone();
        runner.ip(None, &["netns", "add", name])?;
        runner.ip(
            Some(name),
            &["link", "set", "dev", "lo", "alias", &self.agent.tag, "up"],
        )?;
        self.namespaces.insert(name.to_string(), Vec::new());
        self.report.change(format!("created namespace {name}"));
        Ok(())
    }

    /// Deletes one of the agent's namespaces (its processes must be stopped first: a process
    /// keeps a deleted namespace alive).
    pub(crate) fn delete_namespace(&mut self, name: &str) {
        match self.agent.runner.ip(None, &["netns", "del", name]) {
            Ok(_) => {
                self.namespaces.remove(name);
                self.report.change(format!("deleted namespace {name}"));
            }
            Err(e) => self.report.error(format!("namespace {name}"), e),
        }
    }

    /// The device `device` of namespace `ns`, as read at the start of the pass.
    pub(crate) fn namespace_link(&self, ns: &str, device: &str) -> Option<&Link> {
        self.namespaces.get(ns)?.iter().find(|l| l.ifname == device)
    }

    /// A veth pair from `bridge` (end `tap`, in the host namespace) into namespace `ns` (end
    /// `device`, with the port's MAC), both with the network's MTU and up.
    pub(crate) fn ensure_veth(
        &mut self,
        ns: &str,
        tap: &str,
        device: &str,
        mac: MacAddress,
        bridge: &str,
        mtu: u32,
    ) -> Result<()> {
        let runner = self.agent.runner.clone();
        let tag = self.agent.tag.clone();
        let mac_text = mac.to_string();
        let mtu_text = mtu.to_string();
        let inner = self.namespace_link(ns, device).cloned();
        let outer = self.links.get(tap).cloned();
        let (Some(inner), Some(outer)) = (inner.clone(), outer.clone()) else {
            // Missing or half there: start over. (A veth whose namespace was just deleted goes
            // away asynchronously, with the namespace: it may vanish under us, or linger a
            // moment and block the new pair's name.)
            let ignore_missing = |result: Result<String>| match result {
                Err(e) if e.is_missing_device() => Ok(()),
                other => other.map(drop),
            };
            if outer.is_some() {
                ignore_missing(runner.ip(None, &["link", "del", "dev", tap]))?;
            }
            if inner.is_some() {
                ignore_missing(runner.ip(Some(ns), &["link", "del", "dev", device]))?;
            }
            let add = [
                "link", "add", tap, "type", "veth", "peer", "name", device, "netns", ns,
            ];
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                match runner.ip(None, &add) {
                    Err(Error::Command { stderr, .. })
                        if stderr.contains("File exists")
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
            runner.ip(
                None,
                &[
                    "link", "set", "dev", tap, "alias", &tag, "master", bridge, "mtu", &mtu_text,
                    "up",
                ],
            )?;
            runner.ip(
                Some(ns),
                &[
                    "link", "set", "dev", device, "address", &mac_text, "mtu", &mtu_text, "up",
                ],
            )?;
            self.report
                .change(format!("created veth {tap} ({bridge}) <-> {device} ({ns})"));
            return Ok(());
        };
        if outer.master.as_deref() != Some(bridge) || outer.mtu != mtu || !outer.is_up() {
            runner.ip(
                None,
                &[
                    "link", "set", "dev", tap, "master", bridge, "mtu", &mtu_text, "up",
                ],
            )?;
            self.report.change(format!("plugged {tap} into {bridge}"));
        }
        if inner.address.as_deref() != Some(mac_text.as_str()) || inner.mtu != mtu || !inner.is_up()
        {
            runner.ip(
                Some(ns),
                &[
                    "link", "set", "dev", device, "address", &mac_text, "mtu", &mtu_text, "up",
                ],
            )?;
            self.report
                .change(format!("{ns}: set {device} {mac} mtu {mtu} up"));
        }
        Ok(())
    }

    /// Exactly `wanted` global addresses on `device` in `ns` (IPv6 ones without duplicate
    /// address detection, as Neutron adds them).
    pub(crate) fn ensure_addresses(
        &mut self,
        ns: &str,
        device: &str,
        wanted: &[IpNet],
    ) -> Result<()> {
        let current: BTreeSet<IpNet> = self
            .namespace_link(ns, device)
            .map(Link::global_addresses)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let wanted: BTreeSet<IpNet> = wanted.iter().copied().collect();
        let runner = self.agent.runner.clone();
        for address in current.difference(&wanted) {
            let text = address.to_string();
            runner.ip(Some(ns), &["addr", "del", &text, "dev", device])?;
            self.report
                .change(format!("{ns}: removed {text} from {device}"));
        }
        for address in wanted.difference(&current) {
            let text = address.to_string();
            let mut args = vec!["addr", "add", text.as_str(), "dev", device];
            if address.addr().is_ipv6() {
                args.push("nodad");
            }
            runner.ip(Some(ns), &args)?;
            self.report
                .change(format!("{ns}: added {text} to {device}"));
        }
        Ok(())
    }

    /// Deletes the devices of `ns` whose name starts with one of `prefixes` and that are not in
    /// `wanted` (the peer end in the host namespace goes with them).
    pub(crate) fn remove_stale_namespace_devices(
        &mut self,
        ns: &str,
        prefixes: &[&str],
        wanted: &BTreeSet<String>,
    ) -> Result<()> {
        let stale: Vec<String> = self
            .namespaces
            .get(ns)
            .map(|links| {
                links
                    .iter()
                    .map(|l| l.ifname.clone())
                    .filter(|n| prefixes.iter().any(|p| n.starts_with(p)) && !wanted.contains(n))
                    .collect()
            })
            .unwrap_or_default();
        for device in stale {
            match self
                .agent
                .runner
                .ip(Some(ns), &["link", "del", "dev", &device])
            {
                Ok(_) => self.report.change(format!("{ns}: deleted {device}")),
                // Gone with its peer, deleted in the host namespace earlier in this pass.
                Err(e) if e.is_missing_device() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
