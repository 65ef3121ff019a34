//! The allocation-candidate search (spec §7) over a provider [`Snapshot`].
//!
//! Providers are handled by their position in the snapshot and candidates are grouped by
//! anchor (sorted pairs, hash maps), so one request costs about O(providers × requested
//! classes) plus the answer, without scans over every provider per provider; the answer is
//! serialised straight from the snapshot, without an intermediate JSON tree.

use crate::api::query::{
    MemberOf, Query, TraitFilter, parse_in_tree, parse_member_of, parse_required, parse_resources,
};
use crate::api::{Mv, R, bad, dberr};
use crate::snapshot::Snapshot;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One allocation request: amounts per (provider position, class) and the group mappings
/// (suffix → provider positions), borrowing the query's strings.
type Request<'a> = (
    BTreeMap<(usize, &'a str), i64>,
    BTreeMap<&'a str, Vec<usize>>,
);

/// One request group (`""` is the unsuffixed one).
#[derive(Debug, Default, Clone)]
struct Group {
    suffix: String,
    resources: Vec<(String, i64)>,
    traits: TraitFilter,
    member_of: MemberOf,
    in_tree: Option<String>,
}

/// One way to satisfy one group: anchored at a root, amounts per (provider, class); providers
/// are positions in the snapshot.
#[derive(Debug, Clone)]
struct Cand<'a> {
    anchor: usize,
    allocs: Vec<(usize, &'a str, i64)>,
    providers: Vec<usize>,
}

fn valid_suffix(s: &str, v: &Mv) -> bool {
    if s.is_empty() {
        return true;
    }
    match v.at(33) {
        true => {
            s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        false => s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'),
    }
}

fn split_key(key: &str) -> Option<(&'static str, &str)> {
    for prefix in ["resources", "required", "member_of", "in_tree"] {
        if let Some(rest) = key.strip_prefix(prefix) {
            return Some((prefix, rest));
        }
    }
    None
}

impl Snapshot {
    /// Roots of every provider that shares an aggregate with the provider at `s` (spec §7.3),
    /// in provider order, then its own root.
    fn anchors_at(&self, s: usize) -> Vec<usize> {
        let aggs = self.aggregates_at(s);
        if aggs.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<usize> = Vec::new();
        for i in 0..self.providers.len() {
            let root = self.root_at(i);
            if self.aggregates_at(i).iter().any(|a| aggs.contains(a)) && !out.contains(&root) {
                out.push(root);
            }
        }
        let own = self.root_at(s);
        if !out.contains(&own) {
            out.push(own);
        }
        out
    }
    fn is_ancestor_or_self(&self, ancestor: usize, p: usize) -> bool {
        let mut current = p;
        for _ in 0..=self.providers.len() {
            if current == ancestor {
                return true;
            }
            match self.parent_at(current) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }
}

/// Whether each root passes `root_required`, worked out once per root.
struct RootCheck<'f> {
    filter: &'f TraitFilter,
    known: Vec<Option<bool>>,
}

impl<'f> RootCheck<'f> {
    fn new(snap: &Snapshot, filter: &'f TraitFilter) -> RootCheck<'f> {
        RootCheck {
            filter,
            known: vec![None; snap.providers.len()],
        }
    }
    fn ok(&mut self, snap: &Snapshot, root: usize) -> bool {
        *self.known[root].get_or_insert_with(|| self.filter.matches(snap.traits_at(root).iter()))
    }
}

fn granular<'a>(snap: &Snapshot, g: &'a Group, root_required: &TraitFilter) -> Vec<Cand<'a>> {
    let tree_root = g
        .in_tree
        .as_ref()
        .and_then(|t| snap.position(t))
        .map(|i| snap.root_at(i));
    if g.in_tree.is_some() && tree_root.is_none() {
        return Vec::new();
    }
    // A class no provider has inventory of: nothing fits.
    let Some(wanted) = class_numbers(snap, g) else {
        return Vec::new();
    };
    let mut roots = RootCheck::new(snap, root_required);
    let mut out = Vec::new();
    for i in 0..snap.providers.len() {
        let aggs = snap.aggregates_at(i);
        let ok = wanted
            .iter()
            .all(|(class, n)| snap.slot_at(i, *class).is_some_and(|s| s.fits(*n)))
            && g.traits.matches(snap.traits_at(i).iter())
            && g.member_of.required_ok(aggs)
            && !g.member_of.forbidden_hit(aggs)
            && tree_root.is_none_or(|r| snap.root_at(i) == r);
        if !ok {
            continue;
        }
        let allocs: Vec<(usize, &str, i64)> = g
            .resources
            .iter()
            .map(|(rc, n)| (i, rc.as_str(), *n))
            .collect();
        let mut anchors = vec![snap.root_at(i)];
        if snap.is_sharing_at(i) && g.in_tree.is_none() {
            for a in snap.anchors_at(i) {
                if !anchors.contains(&a) {
                    anchors.push(a);
                }
            }
        }
        for anchor in anchors {
            if roots.ok(snap, anchor) {
                out.push(Cand {
                    anchor,
                    allocs: allocs.clone(),
                    providers: vec![i],
                });
            }
        }
    }
    out
}

fn unsuffixed<'a>(snap: &Snapshot, g: &'a Group, root_required: &TraitFilter) -> Vec<Cand<'a>> {
    let tree_root = g
        .in_tree
        .as_ref()
        .and_then(|t| snap.position(t))
        .map(|i| snap.root_at(i));
    if g.in_tree.is_some() && tree_root.is_none() {
        return Vec::new();
    }
    let Some(wanted) = class_numbers(snap, g) else {
        return Vec::new();
    };
    let meets = |i: usize| g.member_of.required_ok(snap.aggregates_at(i));
    let forbidden = |i: usize| g.member_of.forbidden_hit(snap.aggregates_at(i));
    let mut roots = RootCheck::new(snap, root_required);
    // Whether provider `i` may serve a class for the tree anchored at `a`.
    let mut admits = |i: usize, a: usize| {
        roots.ok(snap, a)
            && (g.member_of.any_of.is_empty() || meets(i) || meets(a))
            && !forbidden(i)
            && !forbidden(a)
    };
    // Per class: (anchor, provider) pairs, sorted by anchor and, within one anchor, in
    // provider order.
    let mut per_class: Vec<Vec<(usize, usize)>> = Vec::with_capacity(wanted.len());
    for (class, n) in &wanted {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for i in 0..snap.providers.len() {
            if !snap.slot_at(i, *class).is_some_and(|s| s.fits(*n)) {
                continue;
            }
            let root = snap.root_at(i);
            if tree_root.is_none_or(|r| root == r) && admits(i, root) {
                pairs.push((root, i));
            }
            if g.in_tree.is_none() && snap.is_sharing_at(i) {
                for a in snap.anchors_at(i) {
                    if a != root && admits(i, a) {
                        pairs.push((a, i));
                    }
                }
            }
        }
        pairs.sort_by_key(|(a, _)| *a);
        per_class.push(pairs);
    }
    let mut out = Vec::new();
    let mut options: Vec<&[(usize, usize)]> = Vec::with_capacity(per_class.len());
    for anchor in (0..snap.providers.len()).filter(|i| snap.providers[*i].parent.is_none()) {
        options.clear();
        for pairs in &per_class {
            let start = pairs.partition_point(|(a, _)| *a < anchor);
            let end = start + pairs[start..].partition_point(|(a, _)| *a == anchor);
            if start == end {
                break;
            }
            options.push(&pairs[start..end]);
        }
        if options.len() < per_class.len() {
            continue;
        }
        let mut add = |combo: &[usize]| {
            let mut providers: Vec<usize> = Vec::with_capacity(combo.len());
            for p in combo {
                if !providers.contains(p) {
                    providers.push(*p);
                }
            }
            if !g
                .traits
                .matches(providers.iter().flat_map(|p| snap.traits_at(*p)))
            {
                return;
            }
            let allocs = g
                .resources
                .iter()
                .zip(combo)
                .map(|((rc, n), p)| (*p, rc.as_str(), *n))
                .collect();
            out.push(Cand {
                anchor,
                allocs,
                providers,
            });
        };
        if options.iter().all(|o| o.len() == 1) {
            // The usual case: one provider in the tree for each class.
            let combo: Vec<usize> = options.iter().map(|o| o[0].1).collect();
            add(&combo);
        } else {
            let lists: Vec<Vec<usize>> = options
                .iter()
                .map(|o| o.iter().map(|(_, p)| *p).collect())
                .collect();
            for combo in product(&lists) {
                add(&combo);
            }
        }
    }
    out
}

/// The class numbers and amounts of a group's resources; `None` if some class has no
/// inventory anywhere.
fn class_numbers(snap: &Snapshot, g: &Group) -> Option<Vec<(u32, i64)>> {
    g.resources
        .iter()
        .map(|(rc, n)| snap.class_id(rc).map(|c| (c, *n)))
        .collect()
}

/// Every combination choosing one element per list.
fn product<T: Clone>(lists: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    for list in lists {
        let mut next = Vec::new();
        for prefix in &out {
            for item in list {
                let mut v = prefix.clone();
                v.push(item.clone());
                next.push(v);
            }
        }
        out = next;
    }
    out
}

/// Answers `GET /allocation_candidates`.
pub(crate) async fn handle(p: &crate::Placement, v: &Mv, raw: Option<&str>) -> R<Response> {
    let q = Query::parse(raw);
    q.only(|k| match k {
        "limit" => v.at(16),
        "group_policy" => v.at(25),
        "root_required" => v.at(35),
        "same_subtree" => v.at(36),
        _ => match split_key(k) {
            Some(("required", "")) => v.at(17),
            Some(("member_of", "")) => v.at(21),
            Some(("in_tree", "")) => v.at(31),
            Some(("resources", "")) => true,
            Some(("in_tree", s)) => v.at(31) && valid_suffix(s, v),
            Some((_, s)) => v.at(25) && valid_suffix(s, v),
            None => false,
        },
    })?;
    if !v.at(25) && q.last("resources").is_none() {
        return Err(bad(
            "Invalid query string parameters: 'resources' is a required property",
        ));
    }
    let limit = match q.last("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|n| *n > 0 && !l.starts_with('0'))
                .ok_or_else(|| {
                    bad(format!(
                        "Invalid query string parameters: '{l}' does not match '^[1-9][0-9]*$'"
                    ))
                })?,
        ),
        None => None,
    };
    // Groups, in the order their keys first appear.
    let mut groups: Vec<Group> = Vec::new();
    let mut orphans: Vec<String> = Vec::new();
    let mut suffixes: Vec<String> = Vec::new();
    for (k, _) in &q.0 {
        if let Some((_, s)) = split_key(k)
            && !suffixes.iter().any(|x| x == s)
        {
            suffixes.push(s.to_string());
        }
    }
    for s in &suffixes {
        let mut g = Group {
            suffix: s.clone(),
            ..Default::default()
        };
        if let Some(r) = q.last(&format!("resources{s}")) {
            g.resources = parse_resources(r)?;
        }
        let rkey = format!("required{s}");
        g.traits = parse_required(&q.all(&rkey), v, &rkey)?;
        g.member_of = parse_member_of(&q.all(&format!("member_of{s}")), v)?;
        if let Some(t) = q.last(&format!("in_tree{s}")) {
            g.in_tree = Some(parse_in_tree(t, &format!("in_tree{s}"))?);
        }
        if g.resources.is_empty() {
            if !g.traits.required.is_empty() || !g.traits.forbidden.is_empty() {
                orphans.push(format!("required{s}"));
            } else if !g.member_of.any_of.is_empty() || !g.member_of.forbidden.is_empty() {
                orphans.push(format!("member_of{s}"));
            }
        }
        if v.at(22) {
            for set in &g.traits.required {
                if set.iter().all(|t| g.traits.forbidden.contains(t)) {
                    return Err(bad(format!(
                        "Conflicting required and forbidden traits found in the following traits keys: required{s}: ({})",
                        set.iter().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        groups.push(g);
    }
    if groups.iter().all(|g| g.resources.is_empty()) {
        return Err(match v.at(36) {
            true => bad("There must be at least one resources or resources[$S] parameter.")
                .with_kind("placement.query.missing_value"),
            false => {
                bad("At least one request group (`resources` or `resources{$S}`) is required.")
            }
        });
    }
    if let Some(o) = orphans.first() {
        return Err(match o.starts_with("required") {
            true => bad(format!(
                "All traits parameters must be associated with resources.  Found the following orphaned traits keys: {}",
                orphans.join(", ")
            )),
            false => bad(format!(
                "All member_of parameters must be associated with resources. Found the following orphaned member_of keys: {}",
                orphans.join(", ")
            )),
        });
    }
    let granular_count = groups.iter().filter(|g| !g.suffix.is_empty()).count();
    let group_policy = q.last("group_policy");
    if granular_count > 1 && group_policy.is_none() {
        return Err(bad(
            "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.",
        ));
    }
    if let Some(gp) = group_policy
        && gp != "none"
        && gp != "isolate"
    {
        return Err(bad(format!(
            "Invalid query string parameters: '{gp}' is not one of ['none', 'isolate']"
        )));
    }
    let isolate = group_policy == Some("isolate");
    let root_required = match q.all("root_required").as_slice() {
        [] => TraitFilter::default(),
        [one] => {
            let f = parse_required(&[one], v, "root_required")?;
            if f.required
                .iter()
                .any(|s| s.iter().any(|t| f.forbidden.contains(t)))
            {
                return Err(bad(format!(
                    "Conflicting required and forbidden traits found in root_required: {one}"
                ))
                .with_kind("placement.query.bad_value"));
            }
            f
        }
        _ => {
            return Err(
                bad("Query parameter 'root_required' may be specified only once.")
                    .with_kind("placement.query.duplicate_key"),
            );
        }
    };
    let same_subtree: Vec<Vec<String>> = q
        .all("same_subtree")
        .iter()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .collect();
    for set in &same_subtree {
        if set.iter().any(|s| s.is_empty()) {
            return Err(bad(
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
            )
            .with_kind("placement.query.bad_value"));
        }
        if let Some(bad_suffix) = set.iter().find(|s| !suffixes.contains(s)) {
            return Err(bad(format!(
                "Real suffixes should be specified in `same_subtree`: {bad_suffix}"
            ))
            .with_kind("placement.query.bad_value"));
        }
    }
    // Names must exist (in the same snapshot the search runs on).
    let snap = p.snapshot().await.map_err(dberr)?;
    let mut trait_names: BTreeSet<String> = root_required.names().into_iter().collect();
    for g in &groups {
        for (rc, _) in &g.resources {
            if !snap.has_class(rc) {
                return Err(bad(format!(
                    "Invalid resource class in resources parameter: No such resource class {rc}."
                )));
            }
        }
        trait_names.extend(g.traits.names());
    }
    let missing: Vec<&str> = trait_names
        .iter()
        .filter(|n| !snap.has_trait(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!("No such trait(s): {}.", missing.join(", "))));
    }

    let requests = search(
        &snap,
        &groups,
        &root_required,
        &same_subtree,
        isolate,
        limit,
        v,
    );
    let requested: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.resources.iter().map(|(rc, _)| rc.as_str()))
        .collect();
    // About 450 bytes per request with its provider's summary: usually no regrowth.
    let mut body = Vec::with_capacity(512 * (requests.len() + 1));
    serde_json::to_writer(
        &mut body,
        &Answer {
            snap: &snap,
            requests: &requests,
            requested: &requested,
            v,
        },
    )
    .map_err(dberr)?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Per-group candidates, then the merge per anchor: the allocation requests, in anchor
/// (provider) order, at most `limit`.
fn search<'a>(
    snap: &Snapshot,
    groups: &'a [Group],
    root_required: &TraitFilter,
    same_subtree: &[Vec<String>],
    isolate: bool,
    limit: Option<usize>,
    v: &Mv,
) -> Vec<Request<'a>> {
    let per_group: Vec<Vec<Cand>> = groups
        .iter()
        .map(|g| match g.suffix.is_empty() {
            true => unsuffixed(snap, g, root_required),
            false => granular(snap, g, root_required),
        })
        .collect();
    let mut requests: Vec<Request> = Vec::new();
    if per_group.iter().any(|c| c.is_empty()) {
        return requests;
    }
    let mut seen: HashSet<Request> = HashSet::new();
    // Adds a request unless it is already there; false once `limit` is reached (later requests
    // would only be cut off).
    let mut add = |request: Request<'a>| {
        // One group: its candidates are distinct unless a sharing provider makes the same one
        // for several anchors.
        if groups.len() == 1 && !request.0.keys().any(|(p, _)| snap.is_sharing_at(*p)) {
            requests.push(request);
        } else if !seen.contains(&request) {
            seen.insert(request.clone());
            requests.push(request);
        }
        limit.is_none_or(|l| requests.len() < l)
    };
    if let [cands] = per_group.as_slice() {
        // One group: every candidate is a combination of its own, in anchor order.
        let mut cands: Vec<&Cand> = cands.iter().collect();
        cands.sort_by_key(|c| c.anchor);
        for cand in cands {
            if let Some(request) = merge(snap, groups, &[cand], same_subtree, isolate, v)
                && !add(request)
            {
                break;
            }
        }
        return requests;
    }
    // Per group: anchor → its candidates, in order.
    let by_anchor: Vec<HashMap<usize, Vec<&Cand>>> = per_group
        .iter()
        .map(|cands| {
            let mut m: HashMap<usize, Vec<&Cand>> = HashMap::new();
            for c in cands {
                m.entry(c.anchor).or_default().push(c);
            }
            m
        })
        .collect();
    // The anchors every group has candidates for, in provider order.
    let mut anchors: Vec<usize> = by_anchor[0]
        .keys()
        .copied()
        .filter(|a| by_anchor.iter().all(|m| m.contains_key(a)))
        .collect();
    anchors.sort_unstable();
    'anchors: for anchor in anchors {
        let options: Vec<Vec<&Cand>> = by_anchor.iter().map(|m| m[&anchor].clone()).collect();
        for combo in product(&options) {
            if let Some(request) = merge(snap, groups, &combo, same_subtree, isolate, v)
                && !add(request)
            {
                break 'anchors;
            }
        }
    }
    requests
}

/// One candidate per group (same anchor) merged into an allocation request, or `None` when
/// the combination breaks `group_policy=isolate`, `same_subtree`, the capacity (amounts of
/// several groups on one provider add up) or, below 1.29, uses two providers of one tree.
fn merge<'a>(
    snap: &Snapshot,
    groups: &'a [Group],
    combo: &[&Cand<'a>],
    same_subtree: &[Vec<String>],
    isolate: bool,
    v: &Mv,
) -> Option<Request<'a>> {
    if isolate {
        let mut used = HashSet::new();
        for (g, cand) in groups.iter().zip(combo) {
            if !g.suffix.is_empty() && !cand.providers.iter().all(|p| used.insert(*p)) {
                return None;
            }
        }
    }
    let mut mappings: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut sums: BTreeMap<(usize, &str), i64> = BTreeMap::new();
    for (g, cand) in groups.iter().zip(combo) {
        let m = mappings.entry(g.suffix.as_str()).or_default();
        for p in &cand.providers {
            if !m.contains(p) {
                m.push(*p);
            }
        }
        for (p, rc, n) in &cand.allocs {
            *sums.entry((*p, rc)).or_default() += n;
        }
    }
    for set in same_subtree {
        let members: Vec<usize> = set
            .iter()
            .filter_map(|s| mappings.get(s.as_str()))
            .flatten()
            .copied()
            .collect();
        let ok = members
            .iter()
            .any(|top| members.iter().all(|m| snap.is_ancestor_or_self(*top, *m)));
        if !ok {
            return None;
        }
    }
    for ((p, rc), n) in &sums {
        let slot = snap.class_id(rc).and_then(|c| snap.slot_at(*p, c))?;
        if slot.used + n > slot.inventory.capacity() || *n > slot.inventory.max_unit {
            return None;
        }
    }
    if !v.at(29) && snap.nested {
        let providers: BTreeSet<usize> = sums.keys().map(|(p, _)| *p).collect();
        let roots: BTreeSet<usize> = providers.iter().map(|p| snap.root_at(*p)).collect();
        if roots.len() < providers.len() {
            return None;
        }
    }
    Some((sums, mappings))
}

/// The response body, serialised straight from the snapshot and the requests.
struct Answer<'r, 'a> {
    snap: &'r Snapshot,
    requests: &'r [Request<'a>],
    /// The requested classes (the summaries show only these below 1.27).
    requested: &'r BTreeSet<&'a str>,
    v: &'r Mv,
}

impl Serialize for Answer<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let snap = self.snap;
        // The summaries cover the trees of the providers in the answer; below 1.29, when
        // providers are nested, only those providers (as placement's exclude_nested_providers).
        let by_provider = !self.v.at(29) && snap.nested;
        let key = |i: usize| match by_provider {
            true => i,
            false => snap.root_at(i),
        };
        let mut in_answer = vec![false; snap.providers.len()];
        for (sums, _) in self.requests {
            for (p, _) in sums.keys() {
                in_answer[key(*p)] = true;
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(
            "allocation_requests",
            &Seq(self.requests.iter().map(|request| AllocationRequest {
                snap,
                request,
                v: self.v,
            })),
        )?;
        let summaries = (0..snap.providers.len())
            .filter(|i| in_answer[key(*i)])
            .map(|i| {
                (
                    snap.uuid_at(i),
                    Summary {
                        snap,
                        i,
                        requested: self.requested,
                        v: self.v,
                    },
                )
            });
        m.serialize_entry("provider_summaries", &MapOf(summaries))?;
        m.end()
    }
}

/// Serialises an iterator as a JSON array (it is cloned, so it must be cheap to clone).
struct Seq<I>(I);

impl<I: Iterator<Item = T> + Clone, T: Serialize> Serialize for Seq<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

/// Serialises an iterator of pairs as a JSON object.
struct MapOf<I>(I);

impl<I: Iterator<Item = (K, T)> + Clone, K: Serialize, T: Serialize> Serialize for MapOf<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.clone())
    }
}

/// One allocation request: `allocations` (an object by provider from 1.12, a list before),
/// and `mappings` from 1.34.
struct AllocationRequest<'r, 'a> {
    snap: &'r Snapshot,
    request: &'r Request<'a>,
    v: &'r Mv,
}

impl Serialize for AllocationRequest<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (sums, mappings) = self.request;
        let snap = self.snap;
        // Per provider (by uuid): its (class, amount) entries; `sums` is grouped by provider.
        let mut per_rp: Vec<(&str, Vec<(&str, i64)>)> = Vec::new();
        let mut last = None;
        for ((p, rc), n) in sums {
            match per_rp.last_mut() {
                Some((_, entries)) if last == Some(*p) => entries.push((rc, *n)),
                _ => per_rp.push((snap.uuid_at(*p), vec![(rc, *n)])),
            }
            last = Some(*p);
        }
        per_rp.sort_unstable_by_key(|(uuid, _)| *uuid);
        let mut m = s.serialize_map(None)?;
        if self.v.at(12) {
            let by_rp = per_rp.iter().map(|(p, entries)| {
                (
                    *p,
                    Resources {
                        provider: None,
                        entries,
                    },
                )
            });
            m.serialize_entry("allocations", &MapOf(by_rp))?;
        } else {
            let list = per_rp.iter().map(|(p, entries)| Resources {
                provider: Some(p),
                entries,
            });
            m.serialize_entry("allocations", &Seq(list))?;
        }
        if self.v.at(34) {
            let by_suffix = mappings
                .iter()
                .map(|(suffix, rps)| (*suffix, Seq(rps.iter().map(|p| snap.uuid_at(*p)))));
            m.serialize_entry("mappings", &MapOf(by_suffix))?;
        }
        m.end()
    }
}

/// `{"resources": {class: amount}}`, with `"resource_provider": {"uuid": …}` below 1.12.
struct Resources<'r> {
    provider: Option<&'r str>,
    entries: &'r [(&'r str, i64)],
}

impl Serialize for Resources<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(p) = self.provider {
            m.serialize_entry("resource_provider", &MapOf(std::iter::once(("uuid", p))))?;
        }
        m.serialize_entry("resources", &MapOf(self.entries.iter().copied()))?;
        m.end()
    }
}

/// One provider summary: capacity and usage per class (every class from 1.27, the requested
/// ones before), traits from 1.17, parent and root from 1.29.
struct Summary<'r, 'a> {
    snap: &'r Snapshot,
    i: usize,
    requested: &'r BTreeSet<&'a str>,
    v: &'r Mv,
}

impl Serialize for Summary<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (snap, i, all) = (self.snap, self.i, self.v.at(27));
        let resources = snap
            .slots_at(i)
            .iter()
            .map(|slot| (snap.class_name(slot.class), slot))
            .filter(|(rc, _)| all || self.requested.contains(rc))
            .map(|(rc, slot)| {
                let usage = [("capacity", slot.inventory.capacity()), ("used", slot.used)];
                (rc, MapOf(usage.into_iter()))
            });
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("resources", &MapOf(resources))?;
        if self.v.at(17) {
            m.serialize_entry("traits", snap.traits_at(i))?;
        }
        if self.v.at(29) {
            let p = &snap.providers[i];
            m.serialize_entry("parent_provider_uuid", &p.parent)?;
            m.serialize_entry("root_provider_uuid", &p.root)?;
        }
        m.end()
    }
}
