//! List requests as Neutron reads them: attribute filters (several values: any of them;
//! `fixed_ips=ip_address=...`), tag filters (`tags`, `tags-any`, `not-tags`, `not-tags-any`),
//! `changed_since`, `fields=`, `sort_key`/`sort_dir` and emulated pagination (`limit`, `marker`,
//! `page_reverse`) with `<collection>_links`.

use crate::errors;
use ferrostack_api::ApiError;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Query keys that are not attribute filters.
const RESERVED: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "changed_since",
];

/// A parsed list query.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The raw pairs (for the links).
    pub pairs: Vec<(String, String)>,
    /// Attributes to return (all when empty).
    pub fields: Vec<String>,
    /// Attribute → accepted values.
    pub filters: BTreeMap<String, Vec<String>>,
    tags_all: Vec<String>,
    tags_any: Vec<String>,
    not_tags_all: Vec<String>,
    not_tags_any: Vec<String>,
    changed_since: Option<String>,
    sorts: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
    page_reverse: bool,
}

/// The `key=value` pairs of a query string.
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn split_tags(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl ListQuery {
    /// Parses a query; `sort_keys` are the attributes the collection sorts by.
    pub fn parse(raw: Option<&str>, sort_keys: &[&str]) -> Result<ListQuery, ApiError> {
        let pairs = pairs(raw);
        let all = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let mut q = ListQuery {
            fields: all("fields")
                .iter()
                .flat_map(|f| f.split(','))
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            tags_all: split_tags(&all("tags")),
            tags_any: split_tags(&all("tags-any")),
            not_tags_all: split_tags(&all("not-tags")),
            not_tags_any: split_tags(&all("not-tags-any")),
            changed_since: all("changed_since").into_iter().next(),
            marker: all("marker").into_iter().find(|m| !m.is_empty()),
            page_reverse: all("page_reverse")
                .first()
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ..Default::default()
        };
        for (k, v) in &pairs {
            if !RESERVED.contains(&k.as_str()) {
                q.filters.entry(k.clone()).or_default().push(v.clone());
            }
        }
        if let Some(since) = &q.changed_since
            && chrono::DateTime::parse_from_rfc3339(since).is_err()
            && chrono::NaiveDateTime::parse_from_str(since, "%Y-%m-%dT%H:%M:%S").is_err()
        {
            return Err(errors::invalid_input(format!(
                "{since} is not a valid timestamp for changed_since"
            )));
        }
        if let Some(limit) = all("limit").first() {
            match limit.parse::<i64>() {
                Ok(n) if n >= 0 => q.limit = (n > 0).then_some(n as usize),
                _ => {
                    return Err(errors::bad(
                        "BadRequest",
                        format!(
                            "Bad limit request: Limit must be an integer 0 or greater and not '{limit}'."
                        ),
                    ));
                }
            }
        }
        let keys: Vec<String> = all("sort_key")
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect();
        let dirs: Vec<String> = all("sort_dir")
            .into_iter()
            .filter(|d| !d.is_empty())
            .collect();
        if keys.len() != dirs.len() {
            return Err(errors::bad_request(
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        let absent: Vec<&String> = keys
            .iter()
            .filter(|k| !sort_keys.contains(&k.as_str()))
            .collect();
        if !absent.is_empty() {
            return Err(errors::bad_request(format!(
                "{absent:?} is invalid attribute for sort_keys"
            )));
        }
        let invalid: Vec<&String> = dirs
            .iter()
            .filter(|d| d.as_str() != "asc" && d.as_str() != "desc")
            .collect();
        if !invalid.is_empty() {
            return Err(errors::bad_request(format!(
                "{invalid:?} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
            )));
        }
        q.sorts = keys
            .into_iter()
            .zip(dirs.iter().map(|d| d == "asc"))
            .collect();
        q.pairs = pairs;
        Ok(q)
    }

    /// The values asked for `key`, if it is filtered on.
    pub fn filter(&self, key: &str) -> Option<&[String]> {
        self.filters.get(key).map(Vec::as_slice)
    }

    /// Whether the item passes the filters. `visible` is the item as the caller sees it;
    /// `full` is the item with every attribute: a filter on an attribute the caller may not see
    /// matches nothing, a filter on a key that is no attribute is ignored (as Neutron).
    pub fn matches(&self, visible: &Value, full: &Value) -> bool {
        for (key, wanted) in &self.filters {
            match visible.get(key) {
                Some(value)
                    if !wanted.iter().any(|w| value_matches(key, value, w))
                        && !kvp_matches(value, wanted) =>
                {
                    return false;
                }
                Some(_) => {}
                None if full.get(key).is_some() => return false,
                None => {}
            }
        }
        let tags: Vec<&str> = full
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |t: &String| tags.contains(&t.as_str());
        if !self.tags_all.iter().all(has) {
            return false;
        }
        if !self.tags_any.is_empty() && !self.tags_any.iter().any(has) {
            return false;
        }
        if !self.not_tags_all.is_empty() && self.not_tags_all.iter().all(has) {
            return false;
        }
        if self.not_tags_any.iter().any(has) {
            return false;
        }
        if let Some(since) = &self.changed_since {
            let since = since.trim_end_matches('Z');
            let updated = full
                .get("updated_at")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end_matches('Z');
            if updated < since {
                return false;
            }
        }
        true
    }

    /// Sorts, pages and trims the items into the list body `{collection: [...]}` (with
    /// `<collection>_links` when paged). `url` is the request's absolute URL without query.
    pub fn respond(&self, collection: &str, mut items: Vec<Value>, url: &str) -> Value {
        if !self.sorts.is_empty() || self.limit.is_some() {
            items.sort_by(|a, b| {
                for (key, asc) in &self.sorts {
                    let ord = compare(a.get(key), b.get(key));
                    if ord != Ordering::Equal {
                        return if *asc { ord } else { ord.reverse() };
                    }
                }
                compare(a.get("id"), b.get("id"))
            });
        }
        let page = self.paginate(items);
        let links = self.links(&page, url);
        let page: Vec<Value> = page.into_iter().map(|v| self.trim(v)).collect();
        let mut body = Map::new();
        body.insert(collection.to_string(), Value::Array(page));
        if let Some(links) = links {
            body.insert(format!("{collection}_links"), links);
        }
        Value::Object(body)
    }

    fn paginate(&self, items: Vec<Value>) -> Vec<Value> {
        let Some(limit) = self.limit else {
            return items;
        };
        let index = match &self.marker {
            Some(marker) => match items.iter().position(|i| i["id"] == json!(marker)) {
                Some(i) => i,
                None => return Vec::new(),
            },
            None if self.page_reverse => items.len(),
            None => 0,
        };
        if self.page_reverse {
            return items[index.saturating_sub(limit)..index].to_vec();
        }
        let start = if self.marker.is_some() { index + 1 } else { 0 };
        items.into_iter().skip(start).take(limit).collect()
    }

    fn links(&self, page: &[Value], url: &str) -> Option<Value> {
        let limit = self.limit?;
        let link = |marker: Option<&Value>, reverse: bool| {
            let mut params: Vec<String> = self
                .pairs
                .iter()
                .filter(|(k, _)| k != "marker" && k != "page_reverse")
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, NON_ALPHANUMERIC),
                        utf8_percent_encode(v, NON_ALPHANUMERIC)
                    )
                })
                .collect();
            if let Some(m) = marker.and_then(Value::as_str) {
                params.push(format!(
                    "marker={}",
                    utf8_percent_encode(m, NON_ALPHANUMERIC)
                ));
            }
            if reverse {
                params.push("page_reverse=True".into());
            }
            format!("{url}?{}", params.join("&"))
        };
        let mut links = Vec::new();
        if page.len() >= limit || self.page_reverse {
            links.push(json!({"rel": "next", "href": link(page.last().map(|i| &i["id"]), false)}));
        }
        if page.len() >= limit || !self.page_reverse {
            links.push(
                json!({"rel": "previous", "href": link(page.first().map(|i| &i["id"]), true)}),
            );
        }
        Some(Value::Array(links))
    }

    /// The item with only the requested fields.
    pub fn trim(&self, item: Value) -> Value {
        trim_fields(item, &self.fields)
    }
}

/// Keeps only `fields` of an object (all when `fields` is empty).
pub fn trim_fields(item: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        other => other,
    }
}

/// The `fields` of a show request.
pub fn show_fields(raw: Option<&str>) -> Vec<String> {
    pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn value_matches(key: &str, value: &Value, wanted: &str) -> bool {
    match value {
        Value::Bool(b) => parse_bool(wanted) == Some(*b),
        Value::Number(n) => wanted.parse::<f64>().ok() == n.as_f64(),
        Value::String(s) => {
            if key == "mac_address" {
                s.eq_ignore_ascii_case(wanted)
            } else {
                s == wanted
            }
        }
        Value::Null => wanted.is_empty() || wanted == "None",
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(wanted)),
        Value::Object(_) => false,
    }
}

/// `fixed_ips=ip_address=10.0.0.5&fixed_ips=subnet_id=...`: every key given must match one
/// element (any of its values); `ip_address_substr` matches part of the address.
fn kvp_matches(value: &Value, wanted: &[String]) -> bool {
    let Some(items) = value.as_array() else {
        return false;
    };
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in wanted {
        let Some((k, v)) = w.split_once('=') else {
            return false;
        };
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(k, values)| {
        items.iter().any(|item| {
            if *k == "ip_address_substr" {
                let ip = item.get("ip_address").and_then(Value::as_str).unwrap_or("");
                return values.iter().any(|v| ip.contains(v));
            }
            item.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| values.contains(&s))
        })
    })
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", 4 - i), "shared": i % 2 == 0,
                            "tags": if i < 2 { vec!["red"] } else { vec!["blue"] },
                            "fixed_ips": [{"subnet_id": "s", "ip_address": format!("10.0.0.{i}")}]})
            })
            .collect()
    }

    #[test]
    fn filters_match_attributes_tags_and_fixed_ips() {
        let q = ListQuery::parse(Some("shared=true&tags=red"), &[]).unwrap();
        let got: Vec<_> = items().into_iter().filter(|i| q.matches(i, i)).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], "id0");
        let q = ListQuery::parse(Some("fixed_ips=ip_address%3D10.0.0.3"), &[]).unwrap();
        let got: Vec<_> = items().into_iter().filter(|i| q.matches(i, i)).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], "id3");
        let q = ListQuery::parse(Some("name=n1&name=n2&unknown=x"), &[]).unwrap();
        assert_eq!(items().iter().filter(|i| q.matches(i, i)).count(), 2);
        let q = ListQuery::parse(Some("not-tags-any=red"), &[]).unwrap();
        assert_eq!(items().iter().filter(|i| q.matches(i, i)).count(), 3);
        let hidden = json!({"id": "x"});
        let q = ListQuery::parse(Some("name=n1"), &[]).unwrap();
        assert!(!q.matches(&hidden, &json!({"id": "x", "name": "n1"})));
    }

    #[test]
    fn sorting_and_pages_walk_the_collection() {
        let q = ListQuery::parse(Some("sort_key=name&sort_dir=asc&limit=2"), &["name"]).unwrap();
        let body = q.respond("networks", items(), "http://x/networking/v2.0/networks");
        let names: Vec<&str> = body["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["n0", "n1"]);
        let next = body["networks_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker=id3"), "{next}");
        let q = ListQuery::parse(
            Some("sort_key=name&sort_dir=asc&limit=2&marker=id3"),
            &["name"],
        )
        .unwrap();
        let body = q.respond("networks", items(), "u");
        assert_eq!(body["networks"][0]["name"], "n2");
        assert!(ListQuery::parse(Some("sort_key=bogus&sort_dir=asc"), &["name"]).is_err());
        assert!(ListQuery::parse(Some("sort_key=name"), &["name"]).is_err());
        assert!(ListQuery::parse(Some("limit=-1"), &[]).is_err());
    }

    #[test]
    fn fields_trim_the_items() {
        let q = ListQuery::parse(Some("fields=id&fields=name"), &[]).unwrap();
        let body = q.respond("networks", items(), "u");
        assert_eq!(body["networks"][0], json!({"id": "id0", "name": "n4"}));
    }
}
