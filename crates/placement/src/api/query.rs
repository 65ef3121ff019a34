//! Query-string parsing shared by the provider list and allocation candidates:
//! `resources`, `required`, `member_of`, `in_tree`.

use super::{Mv, R, bad, normalize_uuid};
use std::collections::{BTreeSet, HashSet};

/// The decoded query string, in order, repeated keys kept.
#[derive(Debug, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    /// The last value of `key` (what placement's query schemas see).
    pub fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// 400 for a key that is not allowed (`additionalProperties: false`).
    pub fn only(&self, allowed: impl Fn(&str) -> bool) -> R<()> {
        for (k, _) in &self.0 {
            if !allowed(k) {
                return Err(bad(format!(
                    "Invalid query string parameters: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        Ok(())
    }
}

/// `RC:N,RC:N` (spec §7.2).
pub(crate) fn parse_resources(text: &str) -> R<Vec<(String, i64)>> {
    let badly = |got: &str| {
        bad(format!(
            "Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {got}."
        ))
    };
    if text.trim().is_empty() {
        return Err(badly("empty string"));
    }
    let mut out: Vec<(String, i64)> = Vec::new();
    for item in text.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        if parts.len() != 2 {
            return Err(badly(item));
        }
        let rc = parts[0].trim().to_string();
        let amount: i64 = parts[1].trim().parse().map_err(|_| {
            bad(format!(
                "Requested resource {rc} expected positive integer amount. Got: {}.",
                parts[1]
            ))
        })?;
        if amount < 1 {
            return Err(bad(format!(
                "Requested resource {rc} requires amount >= 1. Got: {amount}."
            )));
        }
        match out.iter_mut().find(|(r, _)| *r == rc) {
            Some(existing) => existing.1 = amount,
            None => out.push((rc, amount)),
        }
    }
    Ok(out)
}

/// Required traits: any-of sets that must all hold, and forbidden traits.
#[derive(Debug, Default, Clone)]
pub(crate) struct TraitFilter {
    pub required: Vec<BTreeSet<String>>,
    pub forbidden: BTreeSet<String>,
}

impl TraitFilter {
    /// Every trait named.
    pub fn names(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.forbidden.clone();
        for set in &self.required {
            all.extend(set.iter().cloned());
        }
        all.into_iter().collect()
    }
    /// Whether a provider with `traits` satisfies the filter.
    pub fn matches<'a>(&self, traits: impl Iterator<Item = &'a String> + Clone) -> bool {
        let has = |t: &String| traits.clone().any(|x| x == t);
        self.required.iter().all(|set| set.iter().any(has)) && !self.forbidden.iter().any(has)
    }
}

/// Parses the values of one `required` key (spec §3.2/§7.1).
pub(crate) fn parse_required(values: &[&str], v: &Mv, key: &str) -> R<TraitFilter> {
    let mut filter = TraitFilter::default();
    let values: Vec<&str> = match v.at(39) {
        true => values.to_vec(),
        false => values.last().map(|l| vec![*l]).unwrap_or_default(),
    };
    for value in values {
        if let Some(rest) = value.strip_prefix("in:") {
            if !v.at(39) {
                return Err(bad(format!(
                    "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: {value}"
                )));
            }
            let mut set = BTreeSet::new();
            for t in rest.split(',') {
                let t = t.trim();
                if t.is_empty() || t.starts_with('!') {
                    return Err(bad(format!(
                        "Invalid query string parameters: Expected '{key}' parameter value of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: {value}"
                    )));
                }
                set.insert(t.to_string());
            }
            filter.required.push(set);
            continue;
        }
        for t in value.split(',') {
            let t = t.trim();
            let name = t.strip_prefix('!');
            if t.is_empty() || name == Some("") {
                return Err(bad(format!(
                    "Invalid query string parameters: Expected '{key}' parameter value of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: {value}"
                )));
            }
            match name {
                Some(name) if v.at(22) => {
                    filter.forbidden.insert(name.to_string());
                }
                Some(_) => {
                    return Err(bad(format!(
                        "Invalid query string parameters: Expected '{key}' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
                    )));
                }
                None => filter.required.push(BTreeSet::from([t.to_string()])),
            }
        }
    }
    Ok(filter)
}

/// Aggregate membership: any-of sets that must all hold, and forbidden aggregates.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemberOf {
    pub any_of: Vec<HashSet<String>>,
    pub forbidden: HashSet<String>,
}

impl MemberOf {
    /// Whether `aggs` meets the required sets (forbidden checked separately).
    pub fn required_ok(&self, aggs: &[String]) -> bool {
        self.any_of
            .iter()
            .all(|set| aggs.iter().any(|a| set.contains(a)))
    }
    pub fn forbidden_hit(&self, aggs: &[String]) -> bool {
        aggs.iter().any(|a| self.forbidden.contains(a))
    }
}

/// Parses the values of one `member_of` key.
pub(crate) fn parse_member_of(values: &[&str], v: &Mv) -> R<MemberOf> {
    let mut out = MemberOf::default();
    if values.len() > 1 && !v.at(24) {
        return Err(bad("Multiple member_of parameters are not supported"));
    }
    let uuids = |list: &str, original: &str| -> R<Vec<String>> {
        list.split(',')
            .map(|u| {
                normalize_uuid(u.trim()).ok_or_else(|| {
                    bad(format!(
                        "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: {original}"
                    ))
                })
            })
            .collect()
    };
    for value in values {
        if let Some(rest) = value.strip_prefix('!') {
            if !v.at(32) {
                return Err(bad(
                    "Forbidden member_of parameters are not supported in the specified microversion",
                ));
            }
            let list = match rest.strip_prefix("in:") {
                Some(list) => list,
                None if rest.contains(',') => {
                    return Err(bad(format!(
                        "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: {value}"
                    )));
                }
                None => rest,
            };
            out.forbidden.extend(uuids(list, value)?);
            continue;
        }
        let list = match value.strip_prefix("in:") {
            Some(list) => {
                if list.contains('!') {
                    return Err(bad(format!(
                        "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: {value}"
                    )));
                }
                list
            }
            None if value.contains(',') => {
                return Err(bad(format!(
                    "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: {value}"
                )));
            }
            None => value,
        };
        out.any_of.push(uuids(list, value)?.into_iter().collect());
    }
    Ok(out)
}

/// `in_tree`: a uuid (400 otherwise).
pub(crate) fn parse_in_tree(value: &str, key: &str) -> R<String> {
    normalize_uuid(value).ok_or_else(|| {
        bad(format!(
            "Invalid query string parameters: Expected '{key}' parameter to be a format of uuid. Got: {value}"
        ))
    })
}
