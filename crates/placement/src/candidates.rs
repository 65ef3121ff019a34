//! A read snapshot of every provider (inventories, usages, traits, aggregates) and the
//! allocation-candidate search over it (spec §7).

use crate::db::{self, Inventory, Provider};
use ferrostack_store::StoreError;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap};

/// Everything placement knows about providers, read in one go.
pub(crate) struct Snapshot {
    pub providers: Vec<Provider>,
    index: HashMap<String, usize>,
    pub inventories: HashMap<String, BTreeMap<String, Inventory>>,
    pub usages: HashMap<(String, String), i64>,
    traits: HashMap<String, Vec<String>>,
    aggregates: HashMap<String, Vec<String>>,
}

impl Snapshot {
    pub async fn load(conn: &mut AnyConnection) -> Result<Snapshot, StoreError> {
        let providers = db::providers(&mut *conn).await?;
        let index = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.uuid.clone(), i))
            .collect();
        Ok(Snapshot {
            providers,
            index,
            inventories: db::all_inventories(&mut *conn).await?,
            usages: db::all_usages(&mut *conn).await?,
            traits: db::all_pairs(&mut *conn, false).await?,
            aggregates: db::all_pairs(&mut *conn, true).await?,
        })
    }

    pub fn get(&self, uuid: &str) -> Option<&Provider> {
        self.index.get(uuid).map(|i| &self.providers[*i])
    }
    pub fn traits(&self, uuid: &str) -> &[String] {
        self.traits.get(uuid).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn aggregates(&self, uuid: &str) -> &[String] {
        self.aggregates.get(uuid).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn used(&self, uuid: &str, rc: &str) -> i64 {
        self.usages
            .get(&(uuid.to_string(), rc.to_string()))
            .copied()
            .unwrap_or(0)
    }
    pub fn inventory(&self, uuid: &str, rc: &str) -> Option<&Inventory> {
        self.inventories.get(uuid).and_then(|m| m.get(rc))
    }
    /// Spec §4.3.
    pub fn fits(&self, uuid: &str, rc: &str, n: i64) -> bool {
        self.inventory(uuid, rc)
            .is_some_and(|inv| inv.fits(self.used(uuid, rc), n))
    }
}

use crate::api::query::{
    MemberOf, Query, TraitFilter, parse_in_tree, parse_member_of, parse_required, parse_resources,
};
use crate::api::{Mv, R, bad, conn, dberr, reply};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashSet};

/// One allocation request: amounts per (provider, class) and the group mappings.
type Request = (
    BTreeMap<(String, String), i64>,
    BTreeMap<String, Vec<String>>,
);

const SHARING: &str = "MISC_SHARES_VIA_AGGREGATE";

/// One request group (`""` is the unsuffixed one).
#[derive(Debug, Default, Clone)]
struct Group {
    suffix: String,
    resources: Vec<(String, i64)>,
    traits: TraitFilter,
    member_of: MemberOf,
    in_tree: Option<String>,
}

/// One way to satisfy one group: anchored at a root, amounts per provider.
#[derive(Debug, Clone)]
struct Cand {
    anchor: String,
    allocs: Vec<(String, String, i64)>,
    providers: Vec<String>,
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
    fn root_ok(&self, root: &str, root_required: &TraitFilter) -> bool {
        root_required.matches(self.traits(root).iter())
    }
    fn is_sharing(&self, uuid: &str) -> bool {
        self.traits(uuid).iter().any(|t| t == SHARING)
    }
    /// Roots of every provider that shares an aggregate with `s` (spec §7.3).
    fn anchors(&self, s: &str) -> Vec<String> {
        let aggs = self.aggregates(s);
        if aggs.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for p in &self.providers {
            if self.aggregates(&p.uuid).iter().any(|a| aggs.contains(a)) && !out.contains(&p.root) {
                out.push(p.root.clone());
            }
        }
        if let Some(own) = self.get(s)
            && !out.contains(&own.root)
        {
            out.push(own.root.clone());
        }
        out
    }
    fn is_ancestor_or_self(&self, ancestor: &str, p: &str) -> bool {
        let mut current = p.to_string();
        for _ in 0..=self.providers.len() {
            if current == ancestor {
                return true;
            }
            match self.get(&current).and_then(|r| r.parent.clone()) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }
}

fn granular(snap: &Snapshot, g: &Group, root_required: &TraitFilter) -> Vec<Cand> {
    let tree_root = g
        .in_tree
        .as_ref()
        .and_then(|t| snap.get(t))
        .map(|p| p.root.clone());
    if g.in_tree.is_some() && tree_root.is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in &snap.providers {
        let aggs = snap.aggregates(&p.uuid);
        let ok = g.resources.iter().all(|(rc, n)| snap.fits(&p.uuid, rc, *n))
            && g.traits.matches(snap.traits(&p.uuid).iter())
            && g.member_of.required_ok(aggs)
            && !g.member_of.forbidden_hit(aggs)
            && tree_root.as_ref().is_none_or(|r| &p.root == r);
        if !ok {
            continue;
        }
        let allocs: Vec<(String, String, i64)> = g
            .resources
            .iter()
            .map(|(rc, n)| (p.uuid.clone(), rc.clone(), *n))
            .collect();
        let mut anchors = vec![p.root.clone()];
        if snap.is_sharing(&p.uuid) && g.in_tree.is_none() {
            for a in snap.anchors(&p.uuid) {
                if !anchors.contains(&a) {
                    anchors.push(a);
                }
            }
        }
        for anchor in anchors {
            if snap.root_ok(&anchor, root_required) {
                out.push(Cand {
                    anchor,
                    allocs: allocs.clone(),
                    providers: vec![p.uuid.clone()],
                });
            }
        }
    }
    out
}

fn unsuffixed(snap: &Snapshot, g: &Group, root_required: &TraitFilter) -> Vec<Cand> {
    let tree_root = g
        .in_tree
        .as_ref()
        .and_then(|t| snap.get(t))
        .map(|p| p.root.clone());
    if g.in_tree.is_some() && tree_root.is_none() {
        return Vec::new();
    }
    let meets =
        |uuid: &str| snap.get(uuid).is_some() && g.member_of.required_ok(snap.aggregates(uuid));
    let forbidden = |uuid: &str| g.member_of.forbidden_hit(snap.aggregates(uuid));
    // Per class: (provider, anchor) pairs.
    let mut per_class: Vec<Vec<(String, String)>> = Vec::new();
    for (rc, n) in &g.resources {
        let mut pairs = Vec::new();
        for p in &snap.providers {
            if !snap.fits(&p.uuid, rc, *n) {
                continue;
            }
            if tree_root.as_ref().is_none_or(|r| &p.root == r) {
                pairs.push((p.uuid.clone(), p.root.clone()));
            }
            if g.in_tree.is_none() && snap.is_sharing(&p.uuid) {
                for a in snap.anchors(&p.uuid) {
                    if a != p.root {
                        pairs.push((p.uuid.clone(), a));
                    }
                }
            }
        }
        pairs.retain(|(p, a)| {
            snap.root_ok(a, root_required)
                && (g.member_of.any_of.is_empty() || meets(p) || meets(a))
                && !forbidden(p)
                && !forbidden(a)
        });
        per_class.push(pairs);
    }
    let mut anchors: Vec<&String> = Vec::new();
    for p in &snap.providers {
        if p.parent.is_none()
            && per_class
                .iter()
                .all(|pairs| pairs.iter().any(|(_, a)| a == &p.uuid))
        {
            anchors.push(&p.uuid);
        }
    }
    let mut out = Vec::new();
    for anchor in anchors {
        let options: Vec<Vec<&String>> = per_class
            .iter()
            .map(|pairs| {
                pairs
                    .iter()
                    .filter(|(_, a)| a == anchor)
                    .map(|(p, _)| p)
                    .collect()
            })
            .collect();
        for combo in product(&options) {
            let mut providers: Vec<String> = Vec::new();
            for p in &combo {
                if !providers.contains(p) {
                    providers.push((*p).clone());
                }
            }
            let union: Vec<&String> = providers.iter().flat_map(|p| snap.traits(p)).collect();
            if !g.traits.matches(union.iter().copied()) {
                continue;
            }
            let allocs = g
                .resources
                .iter()
                .zip(&combo)
                .map(|((rc, n), p)| ((*p).clone(), rc.clone(), *n))
                .collect();
            out.push(Cand {
                anchor: anchor.clone(),
                allocs,
                providers,
            });
        }
    }
    out
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
    // Names must exist.
    let mut c = conn(p).await?;
    let mut trait_names: BTreeSet<String> = root_required.names().into_iter().collect();
    for g in &groups {
        for (rc, _) in &g.resources {
            if !crate::db::class_exists(&mut c, rc).await.map_err(dberr)? {
                return Err(bad(format!(
                    "Invalid resource class in resources parameter: No such resource class {rc}."
                )));
            }
        }
        trait_names.extend(g.traits.names());
    }
    let names: Vec<String> = trait_names.into_iter().collect();
    let existing = crate::db::existing_traits(&mut c, &names)
        .await
        .map_err(dberr)?;
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !existing.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!("No such trait(s): {}.", missing.join(", "))));
    }
    let snap = Snapshot::load(&mut c).await.map_err(dberr)?;
    drop(c);

    // Per-group candidates, then the merge per anchor.
    let per_group: Vec<Vec<Cand>> = groups
        .iter()
        .map(|g| match g.suffix.is_empty() {
            true => unsuffixed(&snap, g, &root_required),
            false => granular(&snap, g, &root_required),
        })
        .collect();
    let mut requests: Vec<Request> = Vec::new();
    let mut seen = HashSet::new();
    if per_group.iter().all(|c| !c.is_empty()) {
        let mut anchors: Vec<&String> = Vec::new();
        for c in per_group.iter().flatten() {
            if !anchors.contains(&&c.anchor) {
                anchors.push(&c.anchor);
            }
        }
        anchors.sort_by_key(|a| snap.providers.iter().position(|p| &p.uuid == *a));
        for anchor in anchors {
            let options: Vec<Vec<&Cand>> = per_group
                .iter()
                .map(|cands| cands.iter().filter(|c| &c.anchor == anchor).collect())
                .collect();
            if options.iter().any(|o| o.is_empty()) {
                continue;
            }
            'combo: for combo in product(&options) {
                if isolate {
                    let mut used = HashSet::new();
                    for (g, cand) in groups.iter().zip(&combo) {
                        if !g.suffix.is_empty() && !cand.providers.iter().all(|p| used.insert(p)) {
                            continue 'combo;
                        }
                    }
                }
                let mut mappings: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
                for (g, cand) in groups.iter().zip(&combo) {
                    let m = mappings.entry(g.suffix.clone()).or_default();
                    for p in &cand.providers {
                        if !m.contains(p) {
                            m.push(p.clone());
                        }
                    }
                    for (p, rc, n) in &cand.allocs {
                        *sums.entry((p.clone(), rc.clone())).or_default() += n;
                    }
                }
                for set in &same_subtree {
                    let members: Vec<&String> = set
                        .iter()
                        .filter_map(|s| mappings.get(s))
                        .flatten()
                        .collect();
                    let ok = members
                        .iter()
                        .any(|top| members.iter().all(|m| snap.is_ancestor_or_self(top, m)));
                    if !ok {
                        continue 'combo;
                    }
                }
                for ((p, rc), n) in &sums {
                    let Some(inv) = snap.inventory(p, rc) else {
                        continue 'combo;
                    };
                    if snap.used(p, rc) + n > inv.capacity() || *n > inv.max_unit {
                        continue 'combo;
                    }
                }
                if !v.at(29) {
                    let providers: BTreeSet<&String> = sums.keys().map(|(p, _)| p).collect();
                    let roots: BTreeSet<&String> = providers
                        .iter()
                        .filter_map(|p| snap.get(p).map(|r| &r.root))
                        .collect();
                    let nested = snap.providers.iter().any(|p| p.parent.is_some());
                    if nested && roots.len() < providers.len() {
                        continue 'combo;
                    }
                }
                let key = format!("{sums:?}{mappings:?}");
                if seen.insert(key) {
                    requests.push((sums, mappings));
                }
            }
        }
    }
    if let Some(limit) = limit {
        requests.truncate(limit);
    }
    // Response.
    let requested: BTreeSet<&String> = groups
        .iter()
        .flat_map(|g| g.resources.iter().map(|(rc, _)| rc))
        .collect();
    let mut roots: Vec<String> = Vec::new();
    let mut out_requests = Vec::new();
    for (sums, mappings) in &requests {
        let mut per_rp: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for ((p, rc), n) in sums {
            per_rp.entry(p.clone()).or_default().insert(rc.clone(), *n);
            if let Some(r) = snap.get(p)
                && !roots.contains(&r.root)
            {
                roots.push(r.root.clone());
            }
        }
        let allocations = match v.at(12) {
            true => Value::Object(
                per_rp
                    .iter()
                    .map(|(p, r)| (p.clone(), json!({"resources": r})))
                    .collect(),
            ),
            false => Value::Array(
                per_rp
                    .iter()
                    .map(|(p, r)| json!({"resource_provider": {"uuid": p}, "resources": r}))
                    .collect(),
            ),
        };
        let mut body = json!({"allocations": allocations});
        if v.at(34) {
            body["mappings"] = json!(mappings);
        }
        out_requests.push(body);
    }
    let mut summaries = Map::new();
    for rp in snap.providers.iter().filter(|p| roots.contains(&p.root)) {
        let mut resources = Map::new();
        for (rc, inv) in snap.inventories.get(&rp.uuid).into_iter().flatten() {
            if v.at(27) || requested.contains(rc) {
                resources.insert(
                    rc.clone(),
                    json!({"capacity": inv.capacity(), "used": snap.used(&rp.uuid, rc)}),
                );
            }
        }
        let mut summary = json!({"resources": resources});
        if v.at(17) {
            summary["traits"] = json!(snap.traits(&rp.uuid));
        }
        if v.at(29) {
            summary["parent_provider_uuid"] = json!(rp.parent);
            summary["root_provider_uuid"] = json!(rp.root);
        }
        summaries.insert(rp.uuid.clone(), summary);
    }
    Ok(reply(
        StatusCode::OK,
        json!({"allocation_requests": out_requests, "provider_summaries": summaries}),
    ))
}
