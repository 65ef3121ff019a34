//! The weighers (`nova/scheduler/weights/*`): each scales its raw values over the hosts to
//! 0..1, times its multiplier, summed per host; then the order the conductor claims in, with
//! Nova's `shuffle_best_same_weighed_hosts` and `host_subset_size`.

use super::{HostState, Request};

/// Weigher multipliers (`[filter_scheduler] *_weight_multiplier`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub ram: f64,
    pub cpu: f64,
    pub disk: f64,
    pub io_ops: f64,
    pub num_instances: f64,
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
            num_instances: 0.0,
            soft_affinity: 1.0,
            soft_anti_affinity: 1.0,
        }
    }
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

/// The hosts with their weights, best first (ties by host name, so the order is stable).
pub(super) fn weigh<'a>(
    hosts: Vec<&'a HostState>,
    req: &Request<'_>,
    weights: &Weights,
) -> Vec<(f64, &'a HostState)> {
    let column = |f: &dyn Fn(&HostState) -> f64| -> Vec<f64> {
        normalise(&hosts.iter().map(|h| f(h)).collect::<Vec<_>>())
    };
    let free = |h: &HostState, rc: &str| h.free.get(rc).copied().unwrap_or(0) as f64;
    let members = |h: &HostState| -> f64 {
        req.group.map_or(0.0, |g| {
            g.member_hosts.iter().filter(|m| **m == h.host).count() as f64
        })
    };
    let policy = req.group.map(|g| g.policy.as_str());
    let columns = [
        (weights.ram, column(&|h| free(h, "MEMORY_MB"))),
        (weights.cpu, column(&|h| free(h, "VCPU"))),
        (weights.disk, column(&|h| free(h, "DISK_GB"))),
        (weights.io_ops, column(&|h| h.busy_instances as f64)),
        (weights.num_instances, column(&|h| h.num_instances as f64)),
        (
            weights.soft_affinity,
            match policy {
                Some("soft-affinity") => column(&members),
                _ => vec![0.0; hosts.len()],
            },
        ),
        (
            weights.soft_anti_affinity,
            match policy {
                Some("soft-anti-affinity") => column(&|h| -members(h)),
                _ => vec![0.0; hosts.len()],
            },
        ),
    ];
    let mut scored: Vec<(f64, &'a HostState)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (columns.iter().map(|(m, c)| m * c[i]).sum(), *h))
        .collect();
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.host.cmp(&b.1.host))
    });
    scored
}

/// The claim order of weighed hosts (best first): with `shuffle_best`, the hosts sharing the
/// best weight in random order; then one of the first `subset_size` hosts, at random, goes
/// first (Nova's `_get_sorted_hosts`). `random(n)` is a random number below `n`.
pub(super) fn order<'a>(
    weighed: Vec<(f64, &'a HostState)>,
    subset_size: usize,
    shuffle_best: bool,
    random: &mut dyn FnMut(usize) -> usize,
) -> Vec<&'a HostState> {
    let mut hosts: Vec<&HostState> = weighed.iter().map(|(_, h)| *h).collect();
    if shuffle_best && let Some((best, _)) = weighed.first() {
        let ties = weighed.iter().take_while(|(w, _)| w == best).count();
        // Fisher–Yates over the tied prefix.
        for i in (1..ties).rev() {
            hosts.swap(i, random(i + 1));
        }
    }
    let subset = subset_size.clamp(1, hosts.len().max(1));
    if subset > 1 {
        let chosen = hosts.remove(random(subset));
        hosts.insert(0, chosen);
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{GroupPolicy, Scheduler};
    use super::*;
    use crate::db::instances::RequestSpec;

    fn weighed_names(hosts: &[HostState], req: &Request<'_>, w: &Weights) -> Vec<String> {
        weigh(hosts.iter().collect(), req, w)
            .into_iter()
            .map(|(_, h)| h.host.clone())
            .collect()
    }

    #[test]
    fn group_policies_weigh() {
        let spec = RequestSpec::default();
        let flavor = flavor(&[]);
        let hosts = vec![host("a", 1000, 0), host("b", 1000, 0)];
        let group = |policy: &str| GroupPolicy {
            policy: policy.into(),
            max_server_per_host: 1,
            member_hosts: vec!["a".into()],
        };
        let run = |g: &GroupPolicy| {
            let req = Request {
                group: Some(g),
                ..request(&spec, &flavor)
            };
            weighed_names(&hosts, &req, &Weights::default())
        };
        assert_eq!(run(&group("soft-affinity")), ["a", "b"]);
        assert_eq!(run(&group("soft-anti-affinity")), ["b", "a"]);
        // Filters apply the hard policies.
        let req = Request {
            group: Some(&group("affinity")),
            ..request(&spec, &flavor)
        };
        assert_eq!(names(&Scheduler::default().select(&hosts, &req).0), ["a"]);
    }

    #[test]
    fn multipliers_decide_between_free_ram_busy_hosts_and_instance_counts() {
        let spec = RequestSpec::default();
        let flavor = flavor(&[]);
        let req = request(&spec, &flavor);
        // a: more RAM, busier; b: less RAM, idle.
        let hosts = vec![host("a", 2000, 3), host("b", 1000, 0)];
        let w = Weights::default();
        // RAM (+1) and IoOps (-1) cancel out: the tie goes by name.
        assert_eq!(weighed_names(&hosts, &req, &w), ["a", "b"]);
        let w = Weights { ram: 0.5, ..w };
        assert_eq!(weighed_names(&hosts, &req, &w), ["b", "a"]);
        // Packing by instance count prefers the fuller host.
        let w = Weights {
            ram: 0.0,
            io_ops: 0.0,
            num_instances: 1.0,
            ..Weights::default()
        };
        assert_eq!(weighed_names(&hosts, &req, &w), ["a", "b"]);
        assert_eq!(normalise(&[3.0, 3.0]), [0.0, 0.0]);
        assert_eq!(normalise(&[1.0, 3.0, 2.0]), [0.0, 1.0, 0.5]);
    }

    #[test]
    fn subset_and_shuffle_pick_among_the_best() {
        let hosts: Vec<HostState> = ["a", "b", "c", "d"].iter().map(|n| host(n, 1, 0)).collect();
        let weighed =
            |ws: [f64; 4]| -> Vec<(f64, &HostState)> { ws.into_iter().zip(hosts.iter()).collect() };
        let order_names =
            |v: Vec<&HostState>| -> Vec<String> { v.iter().map(|h| h.host.clone()).collect() };
        // Subset 1, no shuffle: the order stays.
        let mut never = |_: usize| -> usize { unreachable!() };
        let kept = order(weighed([4.0, 3.0, 2.0, 1.0]), 1, false, &mut never);
        assert_eq!(order_names(kept), ["a", "b", "c", "d"]);
        // Subset 3: the pick (index 2) goes first, the rest keep their order.
        let mut pick = |n: usize| {
            assert_eq!(n, 3);
            2
        };
        let picked = order(weighed([4.0, 3.0, 2.0, 1.0]), 3, false, &mut pick);
        assert_eq!(order_names(picked), ["c", "a", "b", "d"]);
        // A subset larger than the hosts is all of them.
        let mut last = |n: usize| n - 1;
        let picked = order(weighed([4.0, 3.0, 2.0, 1.0]), 10, false, &mut last);
        assert_eq!(order_names(picked), ["d", "a", "b", "c"]);
        // Shuffling touches only the hosts tied for the best weight.
        let mut calls = Vec::new();
        let mut first = |n: usize| {
            calls.push(n);
            0
        };
        let shuffled = order(weighed([5.0, 5.0, 5.0, 1.0]), 1, true, &mut first);
        assert_eq!(order_names(shuffled), ["b", "c", "a", "d"]);
        assert_eq!(calls, [3, 2]);
        // With the real randomness every host of the subset comes first some time.
        let s = scheduler(&[]);
        let s = Scheduler {
            host_subset_size: 2,
            ..s
        };
        let spec = RequestSpec::default();
        let flavor = flavor(&[]);
        let req = request(&spec, &flavor);
        let two = vec![host("a", 2000, 0), host("b", 1000, 0), host("c", 10, 0)];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(s.select(&two, &req).0[0].host.clone());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
