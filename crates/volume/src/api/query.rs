//! List requests as Cinder reads them (`cinder/api/common.py`, `cinder/db/api.py`): filters
//! (checked against `resource_filters.json` for non-admins from 3.31, dropped silently before;
//! `key~` LIKE filters; `metadata` dicts; `created_at`/`updated_at` comparisons from 3.60;
//! booleans strict from 3.2; other values read as Python literals), `sort` /
//! `sort_key`+`sort_dir` (default `created_at:desc`, then `id`), `limit` (at most 1000),
//! `marker` (the rows after it in the sort order), `offset`, `with_count` (3.45) and the `next`
//! link.
//!
//! It works over a *row*: a JSON object per resource with Cinder's column names
//! (`display_name`, `use_quota`, ...), so every collection shares it: the collection says which
//! columns it has ([`Collection`]) and builds its rows.

use crate::errors;
use ferrostack_api::{ApiError, Version};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Cinder's `osapi_max_limit`.
pub(crate) const MAX_LIMIT: usize = 1000;

/// What differs between collections.
pub(crate) struct Collection {
    /// Filters a non-admin may use (`resource_filters.json`).
    pub(crate) user_filters: &'static [&'static str],
    /// Filters that only exist from `3.<minor>` (dropped below it, before 3.31).
    pub(crate) versioned_filters: &'static [(&'static str, u16)],
    /// Columns holding booleans (filter values parsed as booleans).
    pub(crate) booleans: &'static [&'static str],
    /// Every column of a row: what admins may filter on and anyone may sort by.
    pub(crate) columns: &'static [&'static str],
}

/// A Python literal as `ast.literal_eval` reads a filter value.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Literal>),
}

/// One filter on a row column.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// Exact match (a list: any of its values).
    Eq(String, Literal),
    /// `key~=value`: the column contains the value (case-insensitive, as SQL `LIKE`).
    Like(String, String),
    /// Every pair must be in the (object) column.
    Dict(String, BTreeMap<String, String>),
    /// Time comparisons (`gt:`, `lte:`, ...) that must all hold.
    Time(String, Vec<(String, chrono::DateTime<chrono::Utc>)>),
    /// Matches nothing (a column the collection does not have, a malformed dict).
    Never,
}

/// A parsed list request.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    pairs: Vec<(String, String)>,
    sorts: Vec<(String, bool)>,
    limit: usize,
    marker: Option<String>,
    offset: usize,
    all_tenants: bool,
    with_count: bool,
    filters: Vec<Filter>,
}

/// The `key=value` pairs of a query string, in order.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `strutils.bool_from_string(value, strict=True)`: `None` for anything else.
pub(crate) fn strict_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// `utils.get_bool_param`: a strict boolean, else 400.
pub(crate) fn bool_param(name: &str, value: &str) -> Result<bool, ApiError> {
    strict_bool(value).ok_or_else(|| {
        errors::bad_request(format!("Value '{value}' for '{name}' is not a boolean."))
    })
}

impl ListQuery {
    /// Parses a list request of `collection` at microversion `mv` for an admin or not.
    pub(crate) fn parse(
        raw: Option<&str>,
        mv: Version,
        admin: bool,
        collection: &Collection,
    ) -> Result<ListQuery, ApiError> {
        let pairs = pairs(raw);
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in &pairs {
            params.retain(|(key, _)| key != k);
            params.push((k.clone(), v.clone()));
        }
        let mut take = |key: &str| -> Option<String> {
            let at = params.iter().position(|(k, _)| k == key)?;
            Some(params.remove(at).1)
        };
        let limit = parse_limit(take("limit"))?;
        let marker = take("marker");
        let offset = parse_offset(take("offset"))?;
        let (sort, sort_key, sort_dir) = (take("sort"), take("sort_key"), take("sort_dir"));
        let sorts = parse_sorts(sort, sort_key, sort_dir, collection)?;
        let with_count = match mv >= Version::new(3, 45) {
            true => match take("with_count") {
                Some(v) => bool_param("with_count", &v)?,
                None => false,
            },
            false => false,
        };
        let mut filters: Vec<(String, String)> = params;
        general_filtering(&mut filters, mv, admin, collection)?;
        let all_tenants = match filters.iter().position(|(k, _)| k == "all_tenants") {
            Some(at) => bool_param("all_tenants", &filters.remove(at).1)?,
            None => false,
        };
        let strict = mv >= Version::new(3, 2);
        let filters = filters
            .into_iter()
            .map(|(k, v)| build_filter(k, v, strict, mv, collection))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListQuery {
            pairs,
            sorts,
            limit,
            marker,
            offset,
            all_tenants: admin && all_tenants,
            with_count,
            filters,
        })
    }

    /// Whether an admin asked for every project's resources.
    pub(crate) fn all_tenants(&self) -> bool {
        self.all_tenants
    }

    /// Whether the total count was asked for (3.45).
    pub(crate) fn with_count(&self) -> bool {
        self.with_count
    }

    /// The marker id, if any.
    pub(crate) fn marker(&self) -> Option<&str> {
        self.marker.as_deref()
    }

    /// Whether a row passes every filter.
    pub(crate) fn matches(&self, row: &Value) -> bool {
        self.filters.iter().all(|f| filter_matches(f, row))
    }

    /// Filters, sorts and pages `items` (each with its row). `marker` is the marker's row
    /// (found by the caller among the resources the caller may see, filtered or not). Returns
    /// the page and the number of items that passed the filters.
    pub(crate) fn select<T>(
        &self,
        items: Vec<(Value, T)>,
        marker: Option<&Value>,
    ) -> (Vec<T>, usize) {
        let mut items: Vec<(Value, T)> =
            items.into_iter().filter(|(r, _)| self.matches(r)).collect();
        let count = items.len();
        items.sort_by(|(a, _), (b, _)| self.compare(a, b));
        let page = items
            .into_iter()
            .filter(|(r, _)| marker.is_none_or(|m| self.compare(r, m) == Ordering::Greater))
            .skip(self.offset)
            .take(self.limit)
            .map(|(_, t)| t)
            .collect();
        (page, count)
    }

    /// Orders two rows by the sort keys, then `created_at` and `id` in the first direction.
    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        let first_asc = self.sorts.first().is_none_or(|(_, asc)| *asc);
        let defaults = [("created_at", first_asc), ("id", first_asc)];
        let keys = self
            .sorts
            .iter()
            .map(|(k, asc)| (k.as_str(), *asc))
            .chain(defaults);
        for (key, asc) in keys {
            let ord = compare_values(a.get(key), b.get(key));
            if ord != Ordering::Equal {
                return if asc { ord } else { ord.reverse() };
            }
        }
        Ordering::Equal
    }

    /// `<collection>_links` with the `next` page (Cinder's `_get_collection_links`): when the
    /// page is not empty and the limit is at most `count` (the total when `with_count`, else
    /// the page's length). `url` is the collection's absolute URL.
    pub(crate) fn links(&self, url: &str, last_id: Option<&str>, count: usize) -> Option<Value> {
        let last_id = last_id?;
        if self.limit > count {
            return None;
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "marker") {
            query.append_pair(k, v);
        }
        query.append_pair("marker", last_id);
        Some(json!([{"rel": "next", "href": format!("{url}?{}", query.finish())}]))
    }
}

fn parse_limit(limit: Option<String>) -> Result<usize, ApiError> {
    let Some(limit) = limit else {
        return Ok(MAX_LIMIT);
    };
    let n: i64 = limit
        .trim()
        .parse()
        .map_err(|_| errors::bad_request("limit param must be an integer"))?;
    if n < 0 {
        return Err(errors::bad_request("limit param must be positive"));
    }
    Ok((n as usize).min(MAX_LIMIT))
}

fn parse_offset(offset: Option<String>) -> Result<usize, ApiError> {
    let Some(offset) = offset else {
        return Ok(0);
    };
    let n: i64 = offset
        .trim()
        .parse()
        .map_err(|_| errors::bad_request("offset must be an integer."))?;
    if n < 0 {
        return Err(errors::bad_request("offset must be >= 0."));
    }
    Ok(n as usize)
}

/// `common.get_sort_params` and `process_sort_params`.
fn parse_sorts(
    sort: Option<String>,
    sort_key: Option<String>,
    sort_dir: Option<String>,
    collection: &Collection,
) -> Result<Vec<(String, bool)>, ApiError> {
    if sort.is_some() && (sort_key.is_some() || sort_dir.is_some()) {
        return Err(errors::bad_request(
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with \
             the 'sort' parameter.",
        ));
    }
    let specs: Vec<(String, String)> = match sort {
        Some(sort) => sort
            .trim()
            .split(',')
            .map(|s| {
                let (key, dir) = s.split_once(':').unwrap_or((s, ""));
                let dir = if dir.is_empty() { "desc" } else { dir };
                (key.trim().to_string(), dir.trim().to_string())
            })
            .collect(),
        None => vec![(
            sort_key
                .unwrap_or_else(|| "created_at".into())
                .trim()
                .to_string(),
            sort_dir.unwrap_or_else(|| "desc".into()).trim().to_string(),
        )],
    };
    specs
        .into_iter()
        .map(|(key, dir)| {
            let asc = match dir.as_str() {
                "asc" => true,
                "desc" => false,
                _ => {
                    return Err(errors::invalid_input(
                        "Unknown sort direction, must be 'desc' or 'asc'.",
                    ));
                }
            };
            let key = match key.as_str() {
                "name" => "display_name".to_string(),
                _ => key,
            };
            match collection.columns.contains(&key.as_str()) {
                true => Ok((key, asc)),
                false => Err(errors::invalid_input("Invalid sort key")),
            }
        })
        .collect()
}

/// `process_general_filtering`: from 3.31 a non-admin's filters outside the collection's
/// list are a 400 (except `all_tenants`, dropped); before, they are dropped, as are filters
/// newer than the request. Then the API names become column names.
fn general_filtering(
    filters: &mut Vec<(String, String)>,
    mv: Version,
    admin: bool,
    collection: &Collection,
) -> Result<(), ApiError> {
    if filters.iter().any(|(k, _)| !k.is_ascii()) {
        return Err(errors::bad_request(
            "Filter keys can only contain ASCII characters.",
        ));
    }
    let allowed = |k: &str| collection.user_filters.contains(&k);
    if mv >= Version::new(3, 31) {
        if !admin {
            filters.retain(|(k, _)| k != "all_tenants");
            let invalid: Vec<&str> = filters
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !allowed(k))
                .collect();
            if !invalid.is_empty() {
                return Err(errors::bad_request(format!(
                    "Invalid filters {} are found in query options.",
                    invalid.join(",")
                )));
            }
        }
    } else {
        filters.retain(|(k, _)| {
            collection
                .versioned_filters
                .iter()
                .all(|(f, minor)| f != k || mv >= Version::new(3, *minor))
        });
        if !admin {
            filters.retain(|(k, _)| allowed(k));
        }
    }
    for (key, _) in filters.iter_mut() {
        let renamed = match key.as_str() {
            "name" => "display_name",
            "name~" => "display_name~",
            "description" => "display_description",
            "description~" => "display_description~",
            "consumes_quota" => "use_quota",
            _ => continue,
        };
        *key = renamed.to_string();
    }
    Ok(())
}

/// One filter from `key=value` (key already a column name).
fn build_filter(
    key: String,
    value: String,
    strict: bool,
    mv: Version,
    collection: &Collection,
) -> Result<Filter, ApiError> {
    if let Some(column) = key.strip_suffix('~') {
        return Ok(match collection.columns.contains(&column) {
            true => Filter::Like(column.to_string(), value),
            false => Filter::Never,
        });
    }
    if !collection.columns.contains(&key.as_str()) {
        return Ok(Filter::Never);
    }
    if (key == "created_at" || key == "updated_at") && mv >= Version::new(3, 60) {
        return Ok(Filter::Time(key, time_comparisons(&value)?));
    }
    if collection.booleans.contains(&key.as_str()) {
        let b = match strict {
            true => strict_bool(&value)
                .ok_or_else(|| errors::invalid_input(format!("'{key} = {value}'")))?,
            false => !matches!(value.as_str(), "False" | "false" | "FALSE") && !value.is_empty(),
        };
        return Ok(Filter::Eq(key, Literal::Bool(b)));
    }
    if key == "metadata" || key == "glance_metadata" {
        return Ok(match parse_dict(&value) {
            Some(dict) => Filter::Dict(key, dict),
            None => Filter::Never,
        });
    }
    if key == "display_name" {
        return Ok(Filter::Eq(key, Literal::Str(value)));
    }
    Ok(Filter::Eq(key, literal(&value)))
}

/// `created_at=gt:2024-01-01T00:00:00,lte:...` (Cinder's `_handle_time_comparison_filters`).
fn time_comparisons(value: &str) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, ApiError> {
    const OPERATORS: &[&str] = &["gt", "gte", "eq", "neq", "lt", "lte"];
    value
        .split(',')
        .map(|unit| {
            let (op, time) = unit.split_once(':').unwrap_or((unit, unit));
            if !OPERATORS.contains(&op) {
                return Err(errors::bad_request(format!("Invalid {op} operator")));
            }
            let at = parse_time(time)
                .ok_or_else(|| errors::bad_request(format!("Invalid {time} value")))?;
            Ok((op.to_string(), at))
        })
        .collect()
}

/// An ISO 8601 time (with or without a zone; UTC when without) or a date.
pub(crate) fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A metadata filter: a JSON object, or a Python dict literal with single quotes.
fn parse_dict(text: &str) -> Option<BTreeMap<String, String>> {
    let parsed: Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&text.replace('\'', "\"")))
        .ok()?;
    let object = parsed.as_object()?;
    object
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

/// `ast.literal_eval` for the literals a filter value can hold; anything else is the string.
fn literal(text: &str) -> Literal {
    let t = text.trim();
    match t {
        "None" => return Literal::Null,
        "True" => return Literal::Bool(true),
        "False" => return Literal::Bool(false),
        _ => {}
    }
    if let Ok(n) = t.parse::<f64>()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return Literal::Num(n);
    }
    let quoted = |q: char| t.len() >= 2 && t.starts_with(q) && t.ends_with(q);
    if quoted('\'') || quoted('"') {
        return Literal::Str(t[1..t.len() - 1].to_string());
    }
    let bracketed =
        (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('(') && t.ends_with(')'));
    if bracketed && t.len() >= 2 {
        let inner = &t[1..t.len() - 1];
        return Literal::List(
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(literal)
                .collect(),
        );
    }
    Literal::Str(text.to_string())
}

fn literal_matches(wanted: &Literal, value: &Value) -> bool {
    match (wanted, value) {
        (Literal::List(items), v) => items.iter().any(|i| literal_matches(i, v)),
        (w, Value::Array(values)) => values.iter().any(|v| literal_matches(w, v)),
        (Literal::Null, v) => v.is_null(),
        (Literal::Bool(b), Value::Bool(v)) => b == v,
        (Literal::Num(n), Value::Number(v)) => v.as_f64() == Some(*n),
        (Literal::Num(n), Value::String(s)) => s.parse::<f64>().ok() == Some(*n),
        (Literal::Str(s), Value::String(v)) => s == v,
        (Literal::Str(s), Value::Number(v)) => s.parse::<f64>().ok() == v.as_f64(),
        _ => false,
    }
}

fn filter_matches(filter: &Filter, row: &Value) -> bool {
    match filter {
        Filter::Never => false,
        Filter::Eq(key, wanted) => row.get(key).is_some_and(|v| literal_matches(wanted, v)),
        Filter::Like(key, part) => row
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| s.to_lowercase().contains(&part.to_lowercase())),
        Filter::Dict(key, pairs) => row.get(key).and_then(Value::as_object).is_some_and(|m| {
            pairs
                .iter()
                .all(|(k, v)| m.get(k).and_then(Value::as_str) == Some(v.as_str()))
        }),
        Filter::Time(key, comparisons) => {
            let Some(at) = row.get(key).and_then(Value::as_str).and_then(parse_time) else {
                return false;
            };
            comparisons.iter().all(|(op, t)| match op.as_str() {
                "gt" => at > *t,
                "gte" => at >= *t,
                "eq" => at == *t,
                "neq" => at != *t,
                "lt" => at < *t,
                _ => at <= *t,
            })
        }
    }
}

/// SQL order on one column: NULL first, numbers, booleans and strings by value.
fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
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
        (Some(Value::Array(x)), Some(Value::Array(y))) => compare_values(x.first(), y.first()),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// A row object from `(column, value)` pairs.
pub(crate) fn row(columns: Vec<(&str, Value)>) -> Value {
    Value::Object(
        columns
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<String, Value>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Collection = Collection {
        user_filters: &[
            "name",
            "status",
            "metadata",
            "bootable",
            "size",
            "created_at",
        ],
        versioned_filters: &[("created_at", 60)],
        booleans: &["bootable"],
        columns: &[
            "id",
            "display_name",
            "status",
            "size",
            "bootable",
            "metadata",
            "created_at",
            "project_id",
        ],
    };

    fn rows() -> Vec<(Value, String)> {
        (0..5)
            .map(|i| {
                let r = json!({"id": format!("id{i}"), "display_name": format!("n{}", i % 2),
                    "status": if i < 3 { "available" } else { "error" }, "size": i,
                    "bootable": i == 0, "metadata": {"k": format!("v{i}")},
                    "created_at": format!("2024-01-0{}T00:00:00.000000Z", i + 1),
                    "project_id": "p"});
                (r, format!("id{i}"))
            })
            .collect()
    }

    fn parse(q: &str, minor: u16, admin: bool) -> Result<ListQuery, ApiError> {
        ListQuery::parse(Some(q), Version::new(3, minor), admin, &C)
    }

    #[test]
    fn default_order_is_newest_first_and_marker_pages_on() {
        let q = parse("limit=2", 0, false).unwrap();
        let (page, count) = q.select(rows(), None);
        assert_eq!(page, ["id4", "id3"]);
        assert_eq!(count, 5);
        let links = q
            .links("http://x/v3/volumes", Some("id3"), page.len())
            .unwrap();
        assert_eq!(links[0]["href"], "http://x/v3/volumes?limit=2&marker=id3");
        let marker = rows().into_iter().find(|(_, id)| id == "id3").unwrap().0;
        let (page, _) = parse("limit=2&marker=id3", 0, false)
            .unwrap()
            .select(rows(), Some(&marker));
        assert_eq!(page, ["id2", "id1"]);
        let q = parse("sort=size:asc&offset=1", 0, false).unwrap();
        assert_eq!(q.select(rows(), None).0, ["id1", "id2", "id3", "id4"]);
        assert!(q.links("u", Some("id4"), 4).is_none());
    }

    #[test]
    fn filters_follow_cinder() {
        let q = parse("status=available&name=n0", 0, false).unwrap();
        assert_eq!(q.select(rows(), None).0, ["id2", "id0"]);
        let q = parse("metadata=%7B%22k%22%3A%22v3%22%7D", 0, false).unwrap();
        assert_eq!(q.select(rows(), None).0, ["id3"]);
        let q = parse("bootable=true&size=0", 31, false).unwrap();
        assert_eq!(q.select(rows(), None).0, ["id0"]);
        assert!(parse("bootable=maybe", 2, false).is_err());
        assert_eq!(parse("project_id=p", 31, false).unwrap_err().status, 400);
        // Before 3.31 a non-admin's unknown filter is dropped; an admin's matches nothing.
        assert_eq!(
            parse("project_id=x", 30, false)
                .unwrap()
                .select(rows(), None)
                .1,
            5
        );
        assert_eq!(
            parse("bogus=x", 31, true).unwrap().select(rows(), None).1,
            0
        );
        let q = parse(
            "created_at=gt:2024-01-03T00:00:00,lte:2024-01-05",
            60,
            false,
        )
        .unwrap();
        assert_eq!(q.select(rows(), None).0, ["id4", "id3"]);
        assert!(parse("created_at=xx:2024-01-01", 60, false).is_err());
        let q = parse("all_tenants=1&name~=N1", 34, true).unwrap();
        assert!(q.all_tenants());
        assert_eq!(q.select(rows(), None).1, 2);
    }

    #[test]
    fn sort_parameters_are_checked() {
        assert!(parse("sort=name&sort_key=size", 0, false).is_err());
        assert!(parse("sort=bogus", 0, false).is_err());
        assert!(parse("sort=size:up", 0, false).is_err());
        assert!(parse("limit=-1", 0, false).is_err());
        let q = parse("sort_key=name&sort_dir=asc", 0, false).unwrap();
        assert_eq!(
            q.select(rows(), None).0,
            ["id0", "id2", "id4", "id1", "id3"]
        );
    }
}
