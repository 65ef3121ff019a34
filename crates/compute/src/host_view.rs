//! The scheduler's view of the hosts: Placement's candidates, the compute nodes and each host's
//! instance counts, read once and shared by the builds that were already waiting when it was
//! read, with the claims made through it applied in memory (Nova's scheduler keeps its host
//! states the same way and applies `consume_from_request` after each selection).
//!
//! A build uses the view only if the view was read after the build arrived, so it sees every
//! change committed before it asked for a host — exactly what a fresh read would show, apart
//! from the claims of this process, which the view applies itself. Under load one read then
//! serves a whole queue of builds instead of each build reading every host again; with one
//! build at a time every build reads afresh. A claim that fails (another writer got there
//! first, or an inventory shrank) means the view is stale: the conductor drops it.

use crate::db::instances::{self as idb, HostCount};
use crate::db::nodes::{self, Node};
use crate::scheduler::HostState;
use crate::service::Compute;
use ferrostack_placement::{HostCandidate, Resources};
use std::collections::HashMap;
use std::time::Instant;

/// How many candidates the scheduler considers, in Placement's order (Nova's
/// `[scheduler] max_placement_results`, 1000).
pub const MAX_CANDIDATES: usize = 1000;

/// What the scheduler knows of every host.
pub struct HostView {
    /// When the reads began.
    loaded: Instant,
    now: chrono::DateTime<chrono::Utc>,
    /// Compute nodes by node (provider) uuid.
    nodes: HashMap<String, Node>,
    /// Live instance counts by host.
    counts: HashMap<String, HostCount>,
    /// Per requested resource set: every provider that could hold it when it was first asked
    /// for (read after `loaded`), in Placement's order, kept up to date by the claims made
    /// through this view since.
    candidates: HashMap<Resources, Candidates>,
}

/// The providers that could hold one resource set, each with its host's state when it is a
/// compute node.
struct Candidates {
    entries: Vec<Entry>,
    /// Entry index by provider uuid.
    index: HashMap<String, usize>,
}

struct Entry {
    /// Free amounts per class (capacity − used).
    free: Resources,
    /// `None` for a provider that is no compute node (it counts against the candidate limit,
    /// as Placement returned it, but is never chosen).
    state: Option<HostState>,
}

impl HostView {
    /// Reads the nodes and instance counts (Placement's candidates are read per resource set
    /// when first needed).
    pub async fn load(c: &Compute) -> anyhow::Result<HostView> {
        let loaded = Instant::now();
        let now = chrono::Utc::now();
        let nodes = nodes::nodes(&c.store)
            .await?
            .into_iter()
            .map(|n| (n.node_uuid.clone(), n))
            .collect();
        let counts = idb::host_instance_counts(&c.store).await?;
        Ok(HostView {
            loaded,
            now,
            nodes,
            counts,
            candidates: HashMap::new(),
        })
    }

    /// Whether the view was read after `arrived`, so it holds every change committed before.
    pub fn fresh_for(&self, arrived: Instant) -> bool {
        self.loaded >= arrived
    }

    /// The hosts that can hold `resources` now, with what the filters and weighers need: of
    /// the first [`MAX_CANDIDATES`] providers that fit, in Placement's order, the compute
    /// nodes.
    pub async fn host_states(
        &mut self,
        c: &Compute,
        resources: &Resources,
    ) -> anyhow::Result<Vec<&HostState>> {
        if !self.candidates.contains_key(resources) {
            let all = c
                .placement
                .host_candidates(resources, &[], &[], &[], usize::MAX)
                .await?;
            let down_after = chrono::Duration::seconds(c.config.service_down_time as i64);
            let candidates =
                self.candidates_of(all, down_after, &c.config.default_availability_zone);
            self.candidates.insert(resources.clone(), candidates);
        }
        Ok(self.candidates[resources]
            .entries
            .iter()
            .filter(|e| fits(&e.free, resources))
            .take(MAX_CANDIDATES)
            .filter_map(|e| e.state.as_ref())
            .collect())
    }

    fn candidates_of(
        &self,
        all: Vec<HostCandidate>,
        down_after: chrono::Duration,
        zone: &str,
    ) -> Candidates {
        let mut index = HashMap::new();
        let mut entries = Vec::with_capacity(all.len());
        for cand in all {
            let state = self.nodes.get(&cand.uuid).map(|node| {
                let count = self.counts.get(&node.host).copied().unwrap_or_default();
                HostState {
                    host: node.host.clone(),
                    node_uuid: node.node_uuid.clone(),
                    up: !node.disabled && !node.is_down(self.now, down_after),
                    availability_zone: zone.to_string(),
                    free: cand.free.clone(),
                    busy_instances: count.busy,
                    num_instances: count.total,
                    arch: "x86_64".into(),
                    hypervisor_type: "qemu".into(),
                }
            });
            index.insert(cand.uuid, entries.len());
            entries.push(Entry {
                free: cand.free,
                state,
            });
        }
        Candidates { entries, index }
    }

    /// Applies a claim of `resources` on `host` made after this view was read: less free on
    /// its provider, one more instance (busy: it is building) on the host.
    pub fn claimed(&mut self, host: &HostState, resources: &Resources) {
        let count = self.counts.entry(host.host.clone()).or_default();
        count.total += 1;
        count.busy += 1;
        let count = *count;
        for list in self.candidates.values_mut() {
            let Some(&i) = list.index.get(&host.node_uuid) else {
                continue;
            };
            let entry = &mut list.entries[i];
            for (rc, n) in resources {
                if let Some(free) = entry.free.get_mut(rc) {
                    *free -= n;
                }
            }
            if let Some(state) = &mut entry.state {
                state.free.clone_from(&entry.free);
                state.num_instances = count.total;
                state.busy_instances = count.busy;
            }
        }
    }
}

/// Whether `resources` still fit in `free`. Placement's rule is `used + n ≤ capacity` plus
/// min_unit, max_unit and step_size; the last three do not change with usage and held when
/// the candidate was read, and with integer amounts `used + n ≤ capacity` is `n ≤ free`.
fn fits(free: &Resources, resources: &Resources) -> bool {
    resources
        .iter()
        .all(|(rc, n)| free.get(rc).is_some_and(|f| f >= n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(uuid: &str, vcpu: i64, ram: i64) -> HostCandidate {
        let free = Resources::from([("VCPU".to_string(), vcpu), ("MEMORY_MB".to_string(), ram)]);
        HostCandidate {
            uuid: uuid.into(),
            name: uuid.into(),
            capacity: free.clone(),
            free,
            traits: vec![],
            aggregates: vec![],
        }
    }

    fn node(host: &str, uuid: &str) -> Node {
        Node {
            host: host.into(),
            node_uuid: uuid.into(),
            vcpus: 4,
            memory_mb: 4096,
            disk_gb: 10,
            heartbeat_at: ferrostack_store::now_rfc3339(),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn claims_through_the_view_lower_free_amounts_and_drop_full_hosts() {
        let small = Resources::from([("VCPU".to_string(), 1), ("MEMORY_MB".to_string(), 512)]);
        let big = Resources::from([("VCPU".to_string(), 2), ("MEMORY_MB".to_string(), 1024)]);
        let arrived = Instant::now();
        let mut view = HostView {
            loaded: Instant::now(),
            now: chrono::Utc::now(),
            nodes: [node("a", "ua"), node("b", "ub")]
                .into_iter()
                .map(|n| (n.node_uuid.clone(), n))
                .collect(),
            counts: HashMap::from([("b".to_string(), HostCount { total: 3, busy: 1 })]),
            candidates: HashMap::new(),
        };
        assert!(view.fresh_for(arrived));
        assert!(!view.fresh_for(Instant::now() + std::time::Duration::from_secs(1)));
        let minute = chrono::Duration::seconds(60);
        for r in [&small, &big] {
            // "uc" is a provider without a compute node.
            let all = vec![
                candidate("ua", 2, 1024),
                candidate("uc", 8, 8192),
                candidate("ub", 4, 4096),
            ];
            let list = view.candidates_of(all, minute, "nova");
            view.candidates.insert(r.clone(), list);
        }
        let hosts = |view: &HostView, r: &Resources| -> Vec<(String, i64, usize, usize)> {
            view.candidates[r]
                .entries
                .iter()
                .filter(|e| fits(&e.free, r))
                .take(MAX_CANDIDATES)
                .filter_map(|e| e.state.as_ref())
                .map(|s| {
                    (
                        s.host.clone(),
                        s.free["VCPU"],
                        s.num_instances,
                        s.busy_instances,
                    )
                })
                .collect()
        };
        assert_eq!(
            hosts(&view, &small),
            [("a".into(), 2, 0, 0), ("b".into(), 4, 3, 1)]
        );
        let a = view.candidates[&small].entries[0].state.clone().unwrap();
        assert!(a.up);
        view.claimed(&a, &small);
        // Host a has 1 VCPU and 512 MiB left: the small request still fits, the big one not.
        assert_eq!(
            hosts(&view, &small),
            [("a".into(), 1, 1, 1), ("b".into(), 4, 3, 1)]
        );
        assert_eq!(hosts(&view, &big), [("b".into(), 4, 3, 1)]);
        view.claimed(&a, &small);
        assert_eq!(hosts(&view, &small), [("b".into(), 4, 3, 1)]);
        assert_eq!(view.counts["a"], HostCount { total: 2, busy: 2 });
        // A provider that is no compute node is never a host.
        assert!(view.candidates[&small].entries[1].state.is_none());
    }
}
