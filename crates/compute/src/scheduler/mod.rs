//! Host selection as Nova's filter scheduler does it: Placement's allocation candidates, then
//! the checks every request gets (Nova's request pre-filters and host manager: disabled hosts,
//! forced and requested hosts, hosts already tried, the availability zone), then the filters of
//! `[compute] enabled_filters` in their order (none for a forced host, as in Nova), then the
//! weighers; the conductor claims the first host of the order and keeps the rest as alternates.
//! Pure functions over [`HostState`] snapshots, so they are tested without a database.
//!
//! - `filters`: the filter names, the fixed checks and the filters over host and request
//! - `capabilities`: ComputeCapabilitiesFilter and the host attributes it reads
//! - `image_props`: ImagePropertiesFilter over the host's supported instances
//! - `aggregate`: the filters over the metadata of the host's aggregates
//! - [`extra_specs_ops`]: the operators of flavor extra specs
//! - `weighers`: the weighers and the final order (`host_subset_size`, shuffling)

mod aggregate;
mod capabilities;
pub mod extra_specs_ops;
mod filters;
mod image_props;
mod weighers;

use crate::db::instances::{FlavorCopy, RequestSpec};
use ferrostack_config::ComputeConfig;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use filters::{Filter, FilterConfigError};
pub use weighers::Weights;

/// What the filters and weighers know about one candidate host (Nova's `HostState`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub host: String,
    /// Its Placement provider.
    pub node_uuid: String,
    /// Disabled by an admin: never chosen (Nova's `compute_status_filter`).
    pub disabled: bool,
    /// Heartbeating and not forced down (ComputeFilter).
    pub up: bool,
    /// The zone of the host's aggregate, else the default zone.
    pub availability_zone: String,
    /// The metadata of each aggregate the host belongs to.
    pub aggregates: Vec<Arc<BTreeMap<String, String>>>,
    /// Free amounts per resource class (capacity × ratio − reserved − used).
    pub free: BTreeMap<String, i64>,
    /// Capacity per resource class (capacity × ratio − reserved), so used = capacity − free.
    pub capacity: BTreeMap<String, i64>,
    /// How many live instances the host has, and how many of them are mid-operation (IoOps).
    pub num_instances: usize,
    pub busy_instances: usize,
    /// What the host reports of itself (ComputeCapabilitiesFilter, ImagePropertiesFilter).
    pub hypervisor: Hypervisor,
}

/// A host's hypervisor as the hypervisors API shows it. The reported facts are `None` (and
/// `supported_instances` empty) until the host's agent reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypervisor {
    pub hostname: String,
    /// Nova's `hypervisor_type` (`QEMU` for the libvirt driver).
    pub hypervisor_type: Option<String>,
    /// `major*1000000 + minor*1000 + release`.
    pub version: Option<i64>,
    /// The CPU description, a JSON text (`arch`, `model`, `vendor`, `topology`, `features`).
    pub cpu_info: Option<String>,
    /// The guests the host can run: (architecture, hypervisor type, VM mode).
    pub supported_instances: Vec<(String, String, String)>,
    /// Reported totals.
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
}

/// The server group of a request, as the affinity filters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPolicy {
    /// `affinity`, `anti-affinity`, `soft-affinity` or `soft-anti-affinity`.
    pub policy: String,
    /// `max_server_per_host` of the anti-affinity rules (default 1).
    pub max_server_per_host: i64,
    /// Hosts of the group's other members (one entry per member).
    pub member_hosts: Vec<String>,
}

/// A request to place one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub spec: &'a RequestSpec,
    /// The instance's project (AggregateMultiTenancyIsolation).
    pub project_id: &'a str,
    /// The instance's flavor (extra specs, name).
    pub flavor: &'a FlavorCopy,
    /// Requested availability zone (none = any).
    pub availability_zone: Option<&'a str>,
    pub group: Option<&'a GroupPolicy>,
    /// Hosts of the instances named in `same_host` / `different_host` hints.
    pub same_host_hosts: Vec<String>,
    pub different_host_hosts: Vec<String>,
}

/// Filters and weighers as configured (`[compute]`, Nova's `[filter_scheduler]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    filters: Vec<Filter>,
    weights: Weights,
    limits: Limits,
    host_subset_size: usize,
    shuffle_best_same_weighed_hosts: bool,
}

/// The settings some filters read.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    max_io_ops_per_host: i64,
    max_instances_per_host: i64,
    /// AggregateImagePropertiesIsolation's key prefix (namespace + separator), if any.
    isolation_prefix: Option<String>,
}

impl Default for Scheduler {
    /// Nova's defaults.
    fn default() -> Self {
        Scheduler::from_config(&ComputeConfig::default()).expect("the default filters exist")
    }
}

impl Scheduler {
    /// The scheduler `config` describes; an unknown filter name or an impossible setting is
    /// an error (start-up refuses it).
    pub fn from_config(config: &ComputeConfig) -> Result<Scheduler, FilterConfigError> {
        let filters = filters::parse(&config.enabled_filters)?;
        let minimums = [
            ("host_subset_size", i64::from(config.host_subset_size), 1),
            ("max_io_ops_per_host", config.max_io_ops_per_host, 0),
            ("max_instances_per_host", config.max_instances_per_host, 1),
        ];
        if let Some((name, _, min)) = minimums.iter().find(|(_, v, min)| v < min) {
            return Err(FilterConfigError::Invalid(format!(
                "[compute] {name} must be at least {min}"
            )));
        }
        let namespace = &config.aggregate_image_properties_isolation_namespace;
        Ok(Scheduler {
            filters,
            weights: Weights {
                ram: config.ram_weight_multiplier,
                cpu: config.cpu_weight_multiplier,
                disk: config.disk_weight_multiplier,
                io_ops: config.io_ops_weight_multiplier,
                num_instances: config.num_instances_weight_multiplier,
                soft_affinity: config.soft_affinity_weight_multiplier,
                soft_anti_affinity: config.soft_anti_affinity_weight_multiplier,
            },
            limits: Limits {
                max_io_ops_per_host: config.max_io_ops_per_host,
                max_instances_per_host: config.max_instances_per_host,
                isolation_prefix: (!namespace.is_empty()).then(|| {
                    format!(
                        "{namespace}{}",
                        config.aggregate_image_properties_isolation_separator
                    )
                }),
            },
            host_subset_size: config.host_subset_size as usize,
            shuffle_best_same_weighed_hosts: config.shuffle_best_same_weighed_hosts,
        })
    }

    /// The enabled filters, in their order.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Filters `hosts` for `req` and orders the survivors, the host to claim first. The second
    /// value names, per removed host, the check or filter that removed it (for the log).
    pub fn select<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a HostState>,
        req: &Request<'_>,
    ) -> (Vec<&'a HostState>, Vec<(String, &'static str)>) {
        self.select_with(hosts, req, &mut random_below)
    }

    /// [`Scheduler::select`] with the random choices made by `random` (`random(n)` < n).
    fn select_with<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a HostState>,
        req: &Request<'_>,
        random: &mut dyn FnMut(usize) -> usize,
    ) -> (Vec<&'a HostState>, Vec<(String, &'static str)>) {
        let mut rejected = Vec::new();
        let forced = filters::forced(req);
        let passed: Vec<&HostState> = hosts
            .into_iter()
            .filter(|h| {
                let why = filters::pre_filter(h, req).or_else(|| {
                    if forced {
                        return None;
                    }
                    self.filters
                        .iter()
                        .find(|f| !f.passes(h, req, &self.limits))
                        .map(|f| f.name())
                });
                if let Some(why) = why {
                    rejected.push((h.host.clone(), why));
                }
                why.is_none()
            })
            .collect();
        let weighed = weighers::weigh(passed, req, &self.weights);
        let order = weighers::order(
            weighed,
            self.host_subset_size,
            self.shuffle_best_same_weighed_hosts,
            random,
        );
        (order, rejected)
    }
}

/// A uniformly random number below `n` (at least 1).
fn random_below(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n.max(1) as u128) as usize
}

#[cfg(test)]
pub(crate) mod testing {
    //! Host states and requests for the filters' tests.
    use super::*;

    /// An enabled, up host with 8 VCPU and `ram` MiB free.
    pub fn host(name: &str, ram: i64, busy: usize) -> HostState {
        let free: BTreeMap<String, i64> = [
            ("MEMORY_MB".to_string(), ram),
            ("VCPU".to_string(), 8),
            ("DISK_GB".to_string(), 100),
        ]
        .into_iter()
        .collect();
        HostState {
            host: name.into(),
            node_uuid: format!("uuid-{name}"),
            disabled: false,
            up: true,
            availability_zone: "nova".into(),
            aggregates: Vec::new(),
            capacity: free.clone(),
            free,
            num_instances: busy,
            busy_instances: busy,
            hypervisor: Hypervisor {
                hostname: name.into(),
                hypervisor_type: Some("QEMU".into()),
                version: Some(7_002_022),
                cpu_info: Some(r#"{"arch": "x86_64"}"#.into()),
                supported_instances: ["qemu", "kvm"]
                    .into_iter()
                    .map(|t| ("x86_64".into(), t.into(), "hvm".into()))
                    .collect(),
                vcpus: 2,
                memory_mb: ram.max(0),
                disk_gb: 100,
                cpu_allocation_ratio: 4.0,
                ram_allocation_ratio: 1.0,
                disk_allocation_ratio: 1.0,
            },
        }
    }

    /// An aggregate's metadata.
    pub fn aggregate(pairs: &[(&str, &str)]) -> Arc<BTreeMap<String, String>> {
        Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A flavor with `specs` as extra specs.
    pub fn flavor(specs: &[(&str, &str)]) -> FlavorCopy {
        FlavorCopy {
            name: "m1.test".into(),
            extra_specs: specs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    /// A request of project `p1` for `flavor` with nothing else asked.
    pub fn request<'a>(spec: &'a RequestSpec, flavor: &'a FlavorCopy) -> Request<'a> {
        Request {
            spec,
            project_id: "p1",
            flavor,
            availability_zone: None,
            group: None,
            same_host_hosts: vec![],
            different_host_hosts: vec![],
        }
    }

    /// A scheduler with exactly `names` enabled (Nova's other defaults).
    pub fn scheduler(names: &[&str]) -> Scheduler {
        let config = ComputeConfig {
            enabled_filters: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        Scheduler::from_config(&config).unwrap()
    }

    pub fn names<'a>(hosts: &[&'a HostState]) -> Vec<&'a str> {
        hosts.iter().map(|h| h.host.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn spreads_by_free_ram_and_skips_disabled_tried_and_other_zones() {
        let spec = RequestSpec {
            tried_hosts: vec!["c".into()],
            ..Default::default()
        };
        let mut disabled = host("d", 99999, 0);
        disabled.disabled = true;
        let mut other_az = host("e", 99999, 0);
        other_az.availability_zone = "az2".into();
        let mut down = host("f", 99999, 0);
        down.up = false;
        let hosts = vec![
            host("a", 1000, 0),
            host("b", 4000, 0),
            host("c", 8000, 0),
            disabled,
            other_az,
            down,
        ];
        let flavor = flavor(&[]);
        let req = Request {
            availability_zone: Some("nova"),
            ..request(&spec, &flavor)
        };
        let (order, rejected) = Scheduler::default().select(&hosts, &req);
        assert_eq!(names(&order), ["b", "a"]);
        let why: Vec<(&str, &str)> = rejected.iter().map(|r| (r.0.as_str(), r.1)).collect();
        assert_eq!(
            why,
            [
                ("c", "RetryFilter"),
                ("d", "DisabledHost"),
                ("e", "AvailabilityZoneFilter"),
                ("f", "ComputeFilter")
            ]
        );
    }

    #[test]
    fn a_forced_host_skips_the_filters_but_not_the_fixed_checks() {
        let flavor = flavor(&[("aggregate_instance_extra_specs:ssd", "true")]);
        let mut down = host("a", 1000, 0);
        down.up = false;
        let hosts = vec![down, host("b", 1000, 0)];
        let s = scheduler(&["ComputeFilter", "AggregateInstanceExtraSpecsFilter"]);
        let forced = RequestSpec {
            force_host: Some("a".into()),
            ..Default::default()
        };
        let (order, _) = s.select(&hosts, &request(&forced, &flavor));
        assert_eq!(names(&order), ["a"]);
        // A requested destination (2.74 `host`) still goes through the filters.
        let requested = RequestSpec {
            requested_host: Some("a".into()),
            ..Default::default()
        };
        let (order, rejected) = s.select(&hosts, &request(&requested, &flavor));
        assert!(order.is_empty());
        assert_eq!(
            rejected,
            [
                ("a".to_string(), "ComputeFilter"),
                ("b".to_string(), "RequestedDestination")
            ]
        );
        // A forced node is matched on the hypervisor hostname.
        let node = RequestSpec {
            force_node: Some("b".into()),
            ..Default::default()
        };
        let (order, _) = s.select(&hosts, &request(&node, &flavor));
        assert_eq!(names(&order), ["b"]);
        // A forced host on a disabled host finds nothing.
        let mut hosts = hosts;
        hosts[0].disabled = true;
        assert!(s.select(&hosts, &request(&forced, &flavor)).0.is_empty());
    }

    #[test]
    fn filters_run_in_the_configured_order() {
        let flavor = flavor(&[("aggregate_instance_extra_specs:ssd", "true")]);
        let mut h = host("a", 1000, 0);
        h.up = false;
        let spec = RequestSpec::default();
        let req = request(&spec, &flavor);
        let first = |names: &[&str]| scheduler(names).select([&h], &req).1[0].1;
        assert_eq!(
            first(&["ComputeFilter", "AggregateInstanceExtraSpecsFilter"]),
            "ComputeFilter"
        );
        assert_eq!(
            first(&["AggregateInstanceExtraSpecsFilter", "ComputeFilter"]),
            "AggregateInstanceExtraSpecsFilter"
        );
        // Without any filter only the fixed checks remain.
        assert_eq!(names(&scheduler(&[]).select([&h], &req).0), ["a"]);
    }

    #[test]
    fn unknown_filters_and_bad_settings_are_config_errors() {
        let config = ComputeConfig {
            enabled_filters: vec!["ComputeFilter".into(), "NoSuchFilter".into()],
            ..Default::default()
        };
        let err = Scheduler::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("NoSuchFilter"), "{err}");
        assert!(err.contains("enabled_filters"), "{err}");
        let config = ComputeConfig {
            host_subset_size: 0,
            ..Default::default()
        };
        let err = Scheduler::from_config(&config).unwrap_err().to_string();
        assert_eq!(err, "[compute] host_subset_size must be at least 1");
        let config = ComputeConfig {
            max_instances_per_host: 0,
            ..Default::default()
        };
        assert!(Scheduler::from_config(&config).is_err());
        assert_eq!(
            Scheduler::default().filters(),
            [
                Filter::Compute,
                Filter::ComputeCapabilities,
                Filter::ImageProperties,
                Filter::ServerGroupAntiAffinity,
                Filter::ServerGroupAffinity
            ]
        );
    }
}
