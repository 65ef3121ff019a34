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

use crate::db::aggregates;
use crate::db::instances::{self as idb, HostCount};
use crate::db::nodes::{self, Node};
use crate::scheduler::{HostState, Hypervisor};
use crate::service::Compute;
use ferrostack_config::ComputeConfig;
use ferrostack_placement::{HostCandidate, Resources};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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
    /// The aggregates of the hosts that have some (their metadata, by aggregate id) and the
    /// zone they give each.
    memberships: HashMap<String, Membership>,
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

/// What a host's aggregates say of it.
#[derive(Debug, Clone)]
struct Membership {
    zone: String,
    metadata: Vec<Arc<BTreeMap<String, String>>>,
}

struct Entry {
    /// Free amounts per class (capacity − used).
    free: Resources,
    /// `None` for a provider that is no compute node (it counts against the candidate limit,
    /// as Placement returned it, but is never chosen).
    state: Option<HostState>,
}

impl HostView {
    /// Reads the nodes, instance counts and aggregates (Placement's candidates are read per
    /// resource set when first needed).
    pub async fn load(c: &Compute) -> anyhow::Result<HostView> {
        let loaded = Instant::now();
        let now = chrono::Utc::now();
        let nodes = nodes::nodes(&c.store)
            .await?
            .into_iter()
            .map(|n| (n.node_uuid.clone(), n))
            .collect();
        let counts = idb::host_instance_counts(&c.store).await?;
        let memberships = memberships(
            &aggregates::aggregates(&c.store).await?,
            &c.config.default_availability_zone,
        );
        Ok(HostView {
            loaded,
            now,
            nodes,
            counts,
            memberships,
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
            let candidates = self.candidates_of(all, &c.config);
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

    fn candidates_of(&self, all: Vec<HostCandidate>, config: &ComputeConfig) -> Candidates {
        let down_after = chrono::Duration::seconds(config.service_down_time as i64);
        let mut index = HashMap::new();
        let mut entries = Vec::with_capacity(all.len());
        for cand in all {
            let state = self.nodes.get(&cand.uuid).map(|node| {
                let count = self.counts.get(&node.host).copied().unwrap_or_default();
                let membership = self.memberships.get(&node.host);
                HostState {
                    host: node.host.clone(),
                    node_uuid: node.node_uuid.clone(),
                    disabled: node.disabled,
                    up: !node.is_down(self.now, down_after),
                    availability_zone: membership
                        .map_or(&config.default_availability_zone, |m| &m.zone)
                        .clone(),
                    aggregates: membership.map(|m| m.metadata.clone()).unwrap_or_default(),
                    free: cand.free.clone(),
                    capacity: cand.capacity.clone(),
                    busy_instances: count.busy,
                    num_instances: count.total,
                    hypervisor: hypervisor(node, config),
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

/// The aggregates and zone of each host in an aggregate (each aggregate's metadata shared).
fn memberships(all: &[aggregates::Aggregate], default_zone: &str) -> HashMap<String, Membership> {
    let metadata: HashMap<i64, Arc<BTreeMap<String, String>>> = all
        .iter()
        .map(|a| (a.id, Arc::new(a.metadata.clone())))
        .collect();
    aggregates::by_host(all)
        .into_iter()
        .map(|(host, list)| {
            let membership = Membership {
                zone: aggregates::zone_of(list.iter().copied(), default_zone).to_string(),
                metadata: list.iter().map(|a| metadata[&a.id].clone()).collect(),
            };
            (host.to_string(), membership)
        })
        .collect()
}

/// The host's hypervisor as the hypervisors API shows it, with the allocation ratios it
/// reports to Placement.
fn hypervisor(node: &Node, config: &ComputeConfig) -> Hypervisor {
    Hypervisor {
        hostname: node.hypervisor_hostname().to_string(),
        hypervisor_type: node.hypervisor_type().map(str::to_string),
        version: node.hypervisor_version(),
        cpu_info: node.cpu_info().map(str::to_string),
        supported_instances: node
            .capabilities
            .as_ref()
            .map(|c| c.supported_instances.clone())
            .unwrap_or_default(),
        vcpus: node.vcpus,
        memory_mb: node.memory_mb,
        disk_gb: node.disk_gb,
        cpu_allocation_ratio: config.cpu_allocation_ratio,
        ram_allocation_ratio: config.ram_allocation_ratio,
        disk_allocation_ratio: config.disk_allocation_ratio,
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
            capabilities: None,
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
            memberships: HashMap::new(),
            candidates: HashMap::new(),
        };
        assert!(view.fresh_for(arrived));
        assert!(!view.fresh_for(Instant::now() + std::time::Duration::from_secs(1)));
        let config = ComputeConfig::default();
        for r in [&small, &big] {
            // "uc" is a provider without a compute node.
            let all = vec![
                candidate("ua", 2, 1024),
                candidate("uc", 8, 8192),
                candidate("ub", 4, 4096),
            ];
            let list = view.candidates_of(all, &config);
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

    struct NoImages;

    #[async_trait::async_trait]
    impl crate::service::ImageCatalog for NoImages {
        async fn image(
            &self,
            _id: &str,
            _project: Option<&str>,
            _admin: bool,
        ) -> anyhow::Result<Option<crate::service::ImageInfo>> {
            Ok(None)
        }
    }

    /// The view reads each host's aggregates from the store: their metadata, the zone they
    /// give, the default zone for hosts in none, the admin's disabled flag.
    #[tokio::test]
    async fn hosts_carry_their_aggregates_and_zone_from_the_store() {
        let store = ferrostack_store::test_store("compute-host-view")
            .await
            .unwrap();
        let placement = ferrostack_placement::Placement::open(store.clone(), "http://cloud")
            .await
            .unwrap();
        let config = ComputeConfig {
            default_availability_zone: "dflt".into(),
            ..Default::default()
        };
        let c = Compute::open(
            store.clone(),
            "http://cloud",
            placement.clone(),
            ferrostack_bus::InProcessBus::new(),
            Arc::new(NoImages),
            config,
        )
        .await
        .unwrap();
        let now = ferrostack_store::now_rfc3339();
        let inventory = |n: i64| {
            let spec = ferrostack_placement::local::InventorySpec {
                total: n,
                reserved: 0,
                min_unit: 1,
                max_unit: n,
                step_size: 1,
                allocation_ratio: 1.0,
            };
            BTreeMap::from([
                ("VCPU".to_string(), spec),
                (
                    "MEMORY_MB".to_string(),
                    InventorySpec {
                        total: n * 1024,
                        max_unit: n * 1024,
                        ..spec
                    },
                ),
            ])
        };
        use ferrostack_placement::local::InventorySpec;
        for host in ["h1", "h2", "h3"] {
            let uuid = uuid::Uuid::new_v4().to_string();
            nodes::testing::heartbeat(&store, host, &uuid, 4, 4096, 10, &now)
                .await
                .unwrap();
            placement
                .ensure_compute_node(&uuid, host, &inventory(4))
                .await
                .unwrap();
        }
        crate::db::services::update(
            &store,
            "h3",
            &crate::db::services::ServiceChange {
                disabled: Some((true, Some("maintenance".into()))),
                ..Default::default()
            },
            &now,
        )
        .await
        .unwrap();
        let add = |name: &str, meta: &[(&str, &str)], hosts: &[&str]| {
            let a = aggregates::Aggregate {
                id: 0,
                uuid: uuid::Uuid::new_v4().to_string(),
                name: name.into(),
                metadata: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                hosts: Vec::new(),
                created_at: now.clone(),
                updated_at: None,
            };
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            (a, hosts)
        };
        for (mut a, hosts) in [
            add(
                "fast",
                &[("availability_zone", "az1"), ("ssd", "true")],
                &["h1"],
            ),
            add("gpus", &[("gpu", "yes")], &["h1", "h2"]),
        ] {
            aggregates::insert(&store, &mut a).await.unwrap();
            for h in hosts {
                assert!(aggregates::set_host(&store, a.id, &h, true).await.unwrap());
            }
        }
        let mut view = HostView::load(&c).await.unwrap();
        let wanted = Resources::from([("VCPU".to_string(), 1)]);
        let states = view.host_states(&c, &wanted).await.unwrap();
        let mut seen: Vec<(String, String, bool, Vec<Vec<String>>)> = states
            .iter()
            .map(|s| {
                let keys = s
                    .aggregates
                    .iter()
                    .map(|m| m.keys().cloned().collect())
                    .collect();
                (
                    s.host.clone(),
                    s.availability_zone.clone(),
                    s.disabled,
                    keys,
                )
            })
            .collect();
        seen.sort();
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            seen,
            [
                (
                    "h1".into(),
                    "az1".into(),
                    false,
                    vec![keys(&["availability_zone", "ssd"]), keys(&["gpu"])]
                ),
                ("h2".into(), "dflt".into(), false, vec![keys(&["gpu"])]),
                ("h3".into(), "dflt".into(), true, vec![]),
            ]
        );
        let h1 = states.iter().find(|s| s.host == "h1").unwrap();
        assert_eq!(h1.hypervisor.hostname, "h1");
        assert_eq!(h1.hypervisor.hypervisor_type.as_deref(), Some("QEMU"));
        assert_eq!(
            (h1.hypervisor.vcpus, h1.capacity["VCPU"], h1.free["VCPU"]),
            (4, 4, 4)
        );
    }
}
