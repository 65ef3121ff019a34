//! Host selection as Nova's filter scheduler does it: Placement's allocation candidates, then
//! filters, then weighers; the conductor claims the best host and keeps the rest as
//! alternates. Pure functions over a [`HostState`] snapshot, so they are tested without a
//! database.

use crate::db::instances::RequestSpec;
use std::collections::BTreeMap;

/// What the filters and weighers know about one candidate host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub host: String,
    /// Its Placement provider.
    pub node_uuid: String,
    /// Enabled and heartbeating (ComputeFilter).
    pub up: bool,
    pub availability_zone: String,
    /// Free amounts per resource class (capacity × ratio − reserved − used).
    pub free: BTreeMap<String, i64>,
    /// How many live instances the host has, and how many of them are mid-operation (IoOps).
    pub num_instances: usize,
    pub busy_instances: usize,
    /// The hypervisor's architecture and type (ImagePropertiesFilter).
    pub arch: String,
    pub hypervisor_type: String,
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
    /// Requested availability zone (none = any).
    pub availability_zone: Option<&'a str>,
    pub group: Option<&'a GroupPolicy>,
    /// Hosts of the instances named in `same_host` / `different_host` hints.
    pub same_host_hosts: Vec<String>,
    pub different_host_hosts: Vec<String>,
}

/// Weigher multipliers (`[filter_scheduler]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub ram: f64,
    pub cpu: f64,
    pub disk: f64,
    pub io_ops: f64,
    pub soft_affinity: f64,
    pub soft_anti_affinity: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            ram: 1.0,
            cpu: 1.0,
            disk: 1.0,
            io_ops: -1.0,
            soft_affinity: 1.0,
            soft_anti_affinity: 1.0,
        }
    }
}

/// Why a host was filtered out (logged, and shown in the fault when nothing is left).
fn rejection(host: &HostState, req: &Request<'_>) -> Option<&'static str> {
    if !host.up {
        return Some("ComputeFilter");
    }
    if req.spec.tried_hosts.contains(&host.host) {
        return Some("RetryFilter");
    }
    if let Some(forced) = &req.spec.force_host
        && forced != &host.host
    {
        return Some("ForcedHost");
    }
    if let Some(az) = req.availability_zone
        && az != host.availability_zone
    {
        return Some("AvailabilityZoneFilter");
    }
    let props = &req.spec.image_properties;
    for (key, have) in [
        ("hw_architecture", &host.arch),
        ("architecture", &host.arch),
        ("img_hv_type", &host.hypervisor_type),
        ("hypervisor_type", &host.hypervisor_type),
    ] {
        if let Some(want) = props.get(key)
            && !want.eq_ignore_ascii_case(have)
        {
            return Some("ImagePropertiesFilter");
        }
    }
    if !req.same_host_hosts.is_empty() && !req.same_host_hosts.contains(&host.host) {
        return Some("SameHostFilter");
    }
    if req.different_host_hosts.contains(&host.host) {
        return Some("DifferentHostFilter");
    }
    if let Some(group) = req.group {
        let on_host = group
            .member_hosts
            .iter()
            .filter(|h| **h == host.host)
            .count() as i64;
        match group.policy.as_str() {
            "affinity" if !group.member_hosts.is_empty() && on_host == 0 => {
                return Some("ServerGroupAffinityFilter");
            }
            "anti-affinity" if on_host >= group.max_server_per_host.max(1) => {
                return Some("ServerGroupAntiAffinityFilter");
            }
            _ => {}
        }
    }
    None
}

/// Scales values to 0..1 as Nova's weigher normalisation does (all equal → all 0).
fn normalise(values: &[f64]) -> Vec<f64> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater) {
        return vec![0.0; values.len()];
    }
    values.iter().map(|v| (v - min) / (max - min)).collect()
}

/// Filters `hosts` for `req` and orders the survivors best first. The second value names
/// the filters that removed hosts, for the fault text.
pub fn select<'a>(
    hosts: impl IntoIterator<Item = &'a HostState>,
    req: &Request<'_>,
    weights: &Weights,
) -> (Vec<&'a HostState>, Vec<(String, &'static str)>) {
    let mut rejected = Vec::new();
    let passed: Vec<&HostState> = hosts
        .into_iter()
        .filter(|h| match rejection(h, req) {
            Some(why) => {
                rejected.push((h.host.clone(), why));
                false
            }
            None => true,
        })
        .collect();
    let column = |f: &dyn Fn(&HostState) -> f64| -> Vec<f64> {
        normalise(&passed.iter().map(|h| f(h)).collect::<Vec<_>>())
    };
    let free = |h: &HostState, rc: &str| h.free.get(rc).copied().unwrap_or(0) as f64;
    let ram = column(&|h| free(h, "MEMORY_MB"));
    let cpu = column(&|h| free(h, "VCPU"));
    let disk = column(&|h| free(h, "DISK_GB"));
    let io = column(&|h| h.busy_instances as f64);
    let members = |h: &HostState| -> f64 {
        req.group.map_or(0.0, |g| {
            g.member_hosts.iter().filter(|m| **m == h.host).count() as f64
        })
    };
    let (soft_aff, soft_anti) = match req.group.map(|g| g.policy.as_str()) {
        Some("soft-affinity") => (column(&members), vec![0.0; passed.len()]),
        Some("soft-anti-affinity") => (vec![0.0; passed.len()], column(&|h| -members(h))),
        _ => (vec![0.0; passed.len()], vec![0.0; passed.len()]),
    };
    let mut scored: Vec<(f64, &'a HostState)> = passed
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let score = weights.ram * ram[i]
                + weights.cpu * cpu[i]
                + weights.disk * disk[i]
                + weights.io_ops * io[i]
                + weights.soft_affinity * soft_aff[i]
                + weights.soft_anti_affinity * soft_anti[i];
            (score, *h)
        })
        .collect();
    // Best first; ties by host name so the order is stable.
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.host.cmp(&b.1.host))
    });
    (scored.into_iter().map(|(_, h)| h).collect(), rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ram: i64, busy: usize) -> HostState {
        HostState {
            host: name.into(),
            node_uuid: format!("uuid-{name}"),
            up: true,
            availability_zone: "nova".into(),
            free: [("MEMORY_MB".to_string(), ram), ("VCPU".to_string(), 8)]
                .into_iter()
                .collect(),
            num_instances: busy,
            busy_instances: busy,
            arch: "x86_64".into(),
            hypervisor_type: "qemu".into(),
        }
    }

    fn names<'a>(hosts: &[&'a HostState]) -> Vec<&'a str> {
        hosts.iter().map(|h| h.host.as_str()).collect()
    }

    #[test]
    fn spreads_by_free_ram_and_skips_down_tried_and_other_zones() {
        let spec = RequestSpec {
            tried_hosts: vec!["c".into()],
            ..Default::default()
        };
        let mut down = host("d", 99999, 0);
        down.up = false;
        let mut other_az = host("e", 99999, 0);
        other_az.availability_zone = "az2".into();
        let hosts = vec![
            host("a", 1000, 0),
            host("b", 4000, 0),
            host("c", 8000, 0),
            down,
            other_az,
        ];
        let req = Request {
            spec: &spec,
            availability_zone: Some("nova"),
            group: None,
            same_host_hosts: vec![],
            different_host_hosts: vec![],
        };
        let (order, rejected) = select(&hosts, &req, &Weights::default());
        assert_eq!(names(&order), ["b", "a"]);
        let why: Vec<&str> = rejected.iter().map(|r| r.1).collect();
        assert_eq!(
            why,
            ["RetryFilter", "ComputeFilter", "AvailabilityZoneFilter"]
        );
    }

    #[test]
    fn group_policies_filter_and_weigh() {
        let spec = RequestSpec::default();
        let hosts = vec![host("a", 1000, 0), host("b", 1000, 0)];
        let group = |policy: &str| GroupPolicy {
            policy: policy.into(),
            max_server_per_host: 1,
            member_hosts: vec!["a".into()],
        };
        let run = |g: &GroupPolicy| {
            let req = Request {
                spec: &spec,
                availability_zone: None,
                group: Some(g),
                same_host_hosts: vec![],
                different_host_hosts: vec![],
            };
            names(&select(&hosts, &req, &Weights::default()).0)
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&group("affinity")), ["a"]);
        assert_eq!(run(&group("anti-affinity")), ["b"]);
        assert_eq!(run(&group("soft-affinity")), ["a", "b"]);
        assert_eq!(run(&group("soft-anti-affinity")), ["b", "a"]);
    }

    #[test]
    fn busy_hosts_weigh_less_and_image_properties_filter() {
        let mut spec = RequestSpec::default();
        let hosts = vec![host("a", 1000, 3), host("b", 1000, 0)];
        let req = |spec: &RequestSpec| {
            let r = Request {
                spec,
                availability_zone: None,
                group: None,
                same_host_hosts: vec![],
                different_host_hosts: vec![],
            };
            names(&select(&hosts, &r, &Weights::default()).0)
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(req(&spec), ["b", "a"]);
        spec.image_properties
            .insert("hw_architecture".into(), "aarch64".into());
        assert!(req(&spec).is_empty());
    }
}
