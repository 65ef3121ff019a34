//! The filters by Nova's class names, the checks every request gets before them, and the
//! filters over the host and the request alone (`nova/scheduler/filters/*`).

use super::{HostState, Limits, Request, aggregate, capabilities, image_props};

/// A filter of `[compute] enabled_filters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    AllHosts,
    Compute,
    ComputeCapabilities,
    ImageProperties,
    SameHost,
    DifferentHost,
    ServerGroupAffinity,
    ServerGroupAntiAffinity,
    IoOps,
    NumInstances,
    AggregateInstanceExtraSpecs,
    AggregateImagePropertiesIsolation,
    AggregateMultiTenancyIsolation,
    AggregateTypeAffinity,
    AggregateIoOps,
    AggregateNumInstances,
}

/// Every filter with its name.
const FILTERS: [(Filter, &str); 16] = [
    (Filter::AllHosts, "AllHostsFilter"),
    (Filter::Compute, "ComputeFilter"),
    (Filter::ComputeCapabilities, "ComputeCapabilitiesFilter"),
    (Filter::ImageProperties, "ImagePropertiesFilter"),
    (Filter::SameHost, "SameHostFilter"),
    (Filter::DifferentHost, "DifferentHostFilter"),
    (Filter::ServerGroupAffinity, "ServerGroupAffinityFilter"),
    (
        Filter::ServerGroupAntiAffinity,
        "ServerGroupAntiAffinityFilter",
    ),
    (Filter::IoOps, "IoOpsFilter"),
    (Filter::NumInstances, "NumInstancesFilter"),
    (
        Filter::AggregateInstanceExtraSpecs,
        "AggregateInstanceExtraSpecsFilter",
    ),
    (
        Filter::AggregateImagePropertiesIsolation,
        "AggregateImagePropertiesIsolation",
    ),
    (
        Filter::AggregateMultiTenancyIsolation,
        "AggregateMultiTenancyIsolation",
    ),
    (Filter::AggregateTypeAffinity, "AggregateTypeAffinityFilter"),
    (Filter::AggregateIoOps, "AggregateIoOpsFilter"),
    (Filter::AggregateNumInstances, "AggregateNumInstancesFilter"),
];

/// Names of filters that older Nova releases had and whose check every request gets here
/// (Nova made the zone a mandatory pre-filter in 2023.2 and retries use alternates since
/// Train): accepted so that older `enabled_filters` lists still load.
const ALWAYS_APPLIED: [&str; 2] = ["AvailabilityZoneFilter", "RetryFilter"];

/// A scheduler setting start-up refuses.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterConfigError {
    /// A name of `enabled_filters` that is no filter.
    UnknownFilter(String),
    /// Another setting out of range.
    Invalid(String),
}

impl std::fmt::Display for FilterConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterConfigError::UnknownFilter(name) => write!(
                f,
                "[compute] enabled_filters: unknown scheduler filter {name:?} (known: {})",
                known_names()
            ),
            FilterConfigError::Invalid(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for FilterConfigError {}

fn known_names() -> String {
    FILTERS
        .iter()
        .map(|(_, n)| *n)
        .chain(ALWAYS_APPLIED)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The filters `names` lists, in order (a repeated name runs once).
pub(super) fn parse(names: &[String]) -> Result<Vec<Filter>, FilterConfigError> {
    let mut filters = Vec::new();
    for name in names {
        if ALWAYS_APPLIED.contains(&name.as_str()) {
            continue;
        }
        let filter = FILTERS
            .iter()
            .find(|(_, n)| n == name)
            .map(|(f, _)| *f)
            .ok_or_else(|| FilterConfigError::UnknownFilter(name.clone()))?;
        if !filters.contains(&filter) {
            filters.push(filter);
        }
    }
    Ok(filters)
}

impl Filter {
    /// Nova's class name.
    pub fn name(self) -> &'static str {
        FILTERS
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .expect("every filter has a name")
    }

    /// Whether `host` passes this filter for `req`.
    pub(super) fn passes(self, host: &HostState, req: &Request<'_>, limits: &Limits) -> bool {
        match self {
            Filter::AllHosts => true,
            Filter::Compute => !host.disabled && host.up,
            Filter::ComputeCapabilities => capabilities::passes(host, &req.flavor.extra_specs),
            Filter::ImageProperties => image_props::passes(host, &req.spec.image_properties),
            Filter::SameHost => {
                req.spec.same_host.is_empty() || req.same_host_hosts.contains(&host.host)
            }
            Filter::DifferentHost => !req.different_host_hosts.contains(&host.host),
            Filter::ServerGroupAffinity => match req.group {
                Some(g) if g.policy == "affinity" && !g.member_hosts.is_empty() => {
                    g.member_hosts.contains(&host.host)
                }
                _ => true,
            },
            Filter::ServerGroupAntiAffinity => match req.group {
                Some(g) if g.policy == "anti-affinity" => {
                    let on_host = g.member_hosts.iter().filter(|h| **h == host.host).count();
                    (on_host as i64) < g.max_server_per_host.max(1)
                }
                _ => true,
            },
            Filter::IoOps => (host.busy_instances as i64) < limits.max_io_ops_per_host,
            Filter::NumInstances => (host.num_instances as i64) < limits.max_instances_per_host,
            Filter::AggregateIoOps => {
                let max =
                    aggregate::min_number(host, "max_io_ops_per_host", limits.max_io_ops_per_host);
                (host.busy_instances as i64) < max
            }
            Filter::AggregateNumInstances => {
                let max = aggregate::min_number(
                    host,
                    "max_instances_per_host",
                    limits.max_instances_per_host,
                );
                (host.num_instances as i64) < max
            }
            Filter::AggregateInstanceExtraSpecs => {
                aggregate::instance_extra_specs_pass(host, &req.flavor.extra_specs)
            }
            Filter::AggregateImagePropertiesIsolation => {
                aggregate::image_properties_isolation_pass(
                    host,
                    &req.spec.image_properties,
                    limits.isolation_prefix.as_deref(),
                )
            }
            Filter::AggregateMultiTenancyIsolation => {
                aggregate::multi_tenancy_pass(host, req.project_id)
            }
            Filter::AggregateTypeAffinity => aggregate::type_affinity_pass(host, &req.flavor.name),
        }
    }
}

/// Whether the request forces a host or node (`az:host`, `az::node`, `az:host:node`): Nova
/// then skips the filters.
pub(super) fn forced(req: &Request<'_>) -> bool {
    req.spec.force_host.is_some() || req.spec.force_node.is_some()
}

/// The checks every request gets, whatever the filters: disabled hosts (Nova's
/// `compute_status_filter`), the forced host or node, the requested destination (2.74), the
/// hosts this build already failed on (alternates), the requested zone (Nova's mandatory
/// zone pre-filter). The name of the failed check, if any.
pub(super) fn pre_filter(host: &HostState, req: &Request<'_>) -> Option<&'static str> {
    let spec = req.spec;
    let differs =
        |wanted: &Option<String>, have: &str| wanted.as_deref().is_some_and(|w| w != have);
    if host.disabled {
        return Some("DisabledHost");
    }
    if differs(&spec.force_host, &host.host) || differs(&spec.force_node, &host.hypervisor.hostname)
    {
        return Some("ForcedHost");
    }
    if differs(&spec.requested_host, &host.host)
        || differs(&spec.requested_node, &host.hypervisor.hostname)
    {
        return Some("RequestedDestination");
    }
    if spec.tried_hosts.contains(&host.host) {
        return Some("RetryFilter");
    }
    if let Some(az) = req.availability_zone
        && az != host.availability_zone
    {
        return Some("AvailabilityZoneFilter");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{GroupPolicy, Request};
    use super::*;
    use crate::db::instances::RequestSpec;

    fn limits() -> Limits {
        Limits {
            max_io_ops_per_host: 2,
            max_instances_per_host: 3,
            isolation_prefix: None,
        }
    }

    #[test]
    fn names_round_trip_and_legacy_names_are_accepted() {
        for (filter, name) in FILTERS {
            assert_eq!(filter.name(), name);
            assert_eq!(parse(&[name.to_string()]).unwrap(), [filter]);
        }
        let names = [
            "RetryFilter",
            "ComputeFilter",
            "AvailabilityZoneFilter",
            "ComputeFilter",
        ];
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(parse(&names).unwrap(), [Filter::Compute]);
        assert_eq!(
            parse(&["computefilter".to_string()]),
            Err(FilterConfigError::UnknownFilter("computefilter".into()))
        );
    }

    #[test]
    fn host_and_request_filters() {
        let flavor = flavor(&[]);
        let spec = RequestSpec::default();
        let mut down = host("down", 1, 0);
        down.up = false;
        let mut disabled = host("off", 1, 0);
        disabled.disabled = true;
        let busy = host("busy", 1, 2);
        let idle = host("idle", 1, 1);
        let base = request(&spec, &flavor);
        // (filter, host, request, expected)
        let table: Vec<(Filter, &HostState, Request<'_>, bool)> = vec![
            (Filter::AllHosts, &down, base.clone(), true),
            (Filter::Compute, &down, base.clone(), false),
            (Filter::Compute, &disabled, base.clone(), false),
            (Filter::Compute, &idle, base.clone(), true),
            (Filter::IoOps, &busy, base.clone(), false),
            (Filter::IoOps, &idle, base.clone(), true),
            (Filter::NumInstances, &busy, base.clone(), true),
        ];
        for (i, (filter, host, req, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                filter.passes(host, &req, &limits()),
                expected,
                "row {i}: {filter:?}"
            );
        }
        let mut full = host("full", 1, 0);
        full.num_instances = 3;
        assert!(!Filter::NumInstances.passes(&full, &base, &limits()));
    }

    #[test]
    fn same_and_different_host_hints() {
        let flavor = flavor(&[]);
        let hinted = RequestSpec {
            same_host: vec!["some-instance".into()],
            different_host: vec!["other-instance".into()],
            ..Default::default()
        };
        let a = host("a", 1, 0);
        let b = host("b", 1, 0);
        let req = Request {
            same_host_hosts: vec!["a".into()],
            different_host_hosts: vec!["b".into()],
            ..request(&hinted, &flavor)
        };
        let l = limits();
        assert!(Filter::SameHost.passes(&a, &req, &l));
        assert!(!Filter::SameHost.passes(&b, &req, &l));
        assert!(Filter::DifferentHost.passes(&a, &req, &l));
        assert!(!Filter::DifferentHost.passes(&b, &req, &l));
        // A same_host hint whose instances have no host matches no host (Nova's overlap).
        let nowhere = Request {
            same_host_hosts: vec![],
            ..req.clone()
        };
        assert!(!Filter::SameHost.passes(&a, &nowhere, &l));
        // No hint: every host.
        let spec = RequestSpec::default();
        assert!(Filter::SameHost.passes(&b, &request(&spec, &flavor), &l));
    }

    #[test]
    fn server_group_filters() {
        let flavor = flavor(&[]);
        let spec = RequestSpec::default();
        let a = host("a", 1, 0);
        let b = host("b", 1, 0);
        let group = |policy: &str, max: i64, members: &[&str]| GroupPolicy {
            policy: policy.into(),
            max_server_per_host: max,
            member_hosts: members.iter().map(|m| m.to_string()).collect(),
        };
        let l = limits();
        // (filter, group, host, expected)
        let table = [
            (
                Filter::ServerGroupAffinity,
                group("affinity", 1, &["a"]),
                &a,
                true,
            ),
            (
                Filter::ServerGroupAffinity,
                group("affinity", 1, &["a"]),
                &b,
                false,
            ),
            (
                Filter::ServerGroupAffinity,
                group("affinity", 1, &[]),
                &b,
                true,
            ),
            (
                Filter::ServerGroupAffinity,
                group("anti-affinity", 1, &["a"]),
                &b,
                true,
            ),
            (
                Filter::ServerGroupAntiAffinity,
                group("anti-affinity", 1, &["a"]),
                &a,
                false,
            ),
            (
                Filter::ServerGroupAntiAffinity,
                group("anti-affinity", 1, &["a"]),
                &b,
                true,
            ),
            (
                Filter::ServerGroupAntiAffinity,
                group("anti-affinity", 2, &["a"]),
                &a,
                true,
            ),
            (
                Filter::ServerGroupAntiAffinity,
                group("anti-affinity", 2, &["a", "a"]),
                &a,
                false,
            ),
            (
                Filter::ServerGroupAntiAffinity,
                group("soft-anti-affinity", 1, &["a"]),
                &a,
                true,
            ),
        ];
        for (i, (filter, g, host, expected)) in table.iter().enumerate() {
            let req = Request {
                group: Some(g),
                ..request(&spec, &flavor)
            };
            assert_eq!(filter.passes(host, &req, &l), *expected, "row {i}");
        }
    }

    #[test]
    fn image_properties_filter() {
        let flavor = flavor(&[]);
        let h = host("a", 1, 0);
        let l = limits();
        // (property, value, expected)
        let table = [
            // The cases are image_props' tests; this checks the name dispatches to them.
            ("hw_architecture", "x86_64", true),
            ("hw_architecture", "aarch64", false),
            ("img_hv_type", "xen", false),
            ("os_distro", "cirros", true),
        ];
        for (key, value, expected) in table {
            let spec = RequestSpec {
                image_properties: [(key.to_string(), value.to_string())].into_iter().collect(),
                ..Default::default()
            };
            let req = request(&spec, &flavor);
            assert_eq!(
                Filter::ImageProperties.passes(&h, &req, &l),
                expected,
                "{key}={value}"
            );
        }
    }
}
