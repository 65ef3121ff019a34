//! `GET /v2/images`: Glance's visibility rules, filters, sorting and marker pagination.

use super::{AppState, is_admin};
use crate::db::{self, Bind};
use crate::model::Image;
use crate::service::db_error;
use axum::{Json, extract::Query};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Value, json};

/// Sort keys Glance accepts, with the SQL expression used (NULLs sort as empty/zero).
const SORT_KEYS: [(&str, &str); 8] = [
    ("name", "COALESCE(i.name, '')"),
    ("status", "i.status"),
    ("container_format", "COALESCE(i.container_format, '')"),
    ("disk_format", "COALESCE(i.disk_format, '')"),
    ("size", "COALESCE(i.size, 0)"),
    ("id", "i.id"),
    ("created_at", "i.created_at"),
    ("updated_at", "i.updated_at"),
];

/// Query builder: SQL conditions with numbered placeholders.
#[derive(Default)]
struct Sql {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

impl Sql {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }
    fn text(&mut self, value: &str) -> String {
        self.bind(Bind::Text(value.to_string()))
    }
    fn add(&mut self, condition: String) {
        self.conditions.push(condition);
    }
}

fn sort_expr(key: &str) -> Option<&'static str> {
    SORT_KEYS.iter().find(|(k, _)| *k == key).map(|(_, e)| *e)
}

fn invalid_sort_key(key: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid sort key: {key}. It must be one of the following: name, status, \
         container_format, disk_format, size, id, created_at, updated_at."
    ))
}

fn check_dir(dir: &str) -> Result<bool, ApiError> {
    match dir {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "Invalid sort direction: {other}"
        ))),
    }
}

/// Parses `sort=` or `sort_key`/`sort_dir` into (key, ascending) pairs with the tie-breakers.
fn sorting(query: &[(String, String)]) -> Result<Vec<(String, bool)>, ApiError> {
    let get_all = |name: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let sort = get_all("sort");
    let keys = get_all("sort_key");
    let dirs = get_all("sort_dir");
    let mut out = Vec::new();
    if !sort.is_empty() {
        if !keys.is_empty() || !dirs.is_empty() {
            return Err(ApiError::bad_request(
                "Old and new sorting syntax cannot be combined",
            ));
        }
        for item in sort.iter().flat_map(|s| s.split(',')) {
            let mut parts = item.trim().splitn(2, ':');
            let key = parts.next().unwrap_or("").trim();
            let dir = parts.next().map(str::trim).unwrap_or("desc");
            sort_expr(key).ok_or_else(|| invalid_sort_key(key))?;
            out.push((key.to_string(), check_dir(dir)?));
        }
    } else {
        for dir in &dirs {
            check_dir(dir)?;
        }
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(ApiError::bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
        let default_dir = dirs.first().copied().unwrap_or("desc");
        for (n, key) in keys.iter().enumerate() {
            sort_expr(key).ok_or_else(|| invalid_sort_key(key))?;
            let dir = dirs
                .get(n)
                .copied()
                .filter(|_| dirs.len() > 1)
                .unwrap_or(default_dir);
            out.push((key.to_string(), check_dir(dir)?));
        }
        if out.is_empty() {
            out.push(("created_at".into(), check_dir(default_dir)?));
        }
    }
    let first_dir = out[0].1;
    for tie in ["created_at", "id"] {
        if !out.iter().any(|(k, _)| k == tie) {
            out.push((tie.into(), first_dir));
        }
    }
    Ok(out)
}

/// Splits `in:a,b,"c,d"` into values.
fn in_values(list: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => values.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !list.is_empty() {
        values.push(current);
    }
    values
}

/// A `name=`/`id=`/... filter: equality or `in:` list.
fn eq_or_in(sql: &mut Sql, column: &str, value: &str) -> Result<(), ApiError> {
    if let Some(list) = value.strip_prefix("in:") {
        let values = in_values(list);
        if values.is_empty() {
            sql.add("1 = 0".into());
            return Ok(());
        }
        let marks: Vec<String> = values.iter().map(|v| sql.text(v)).collect();
        sql.add(format!("{column} IN ({})", marks.join(", ")));
        return Ok(());
    }
    if let Some(rest) = value.strip_prefix("eq:") {
        let mark = sql.text(rest);
        sql.add(format!("{column} = {mark}"));
        return Ok(());
    }
    let mark = sql.text(value);
    sql.add(format!("{column} = {mark}"));
    Ok(())
}

/// Normalises an ISO 8601 time to the stored `YYYY-MM-DDTHH:MM:SSZ` form.
fn iso_time(value: &str) -> Option<String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc())
        })
        .ok()?;
    Some(parsed.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn time_filter(sql: &mut Sql, column: &str, name: &str, value: &str) -> Result<(), ApiError> {
    let (op, time) = match value.split_once(':') {
        Some((op, rest)) if ["gt", "gte", "lt", "lte", "eq", "neq"].contains(&op) => (op, rest),
        Some((op, _)) if op.chars().all(|c| c.is_ascii_alphabetic()) && op.len() > 2 => {
            return Err(ApiError::bad_request(
                "Unable to filter on a unknown operator.",
            ));
        }
        _ => ("eq", value),
    };
    let time = iso_time(time).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Bad \"{name}\" query filter format. Use ISO 8601 DateTime notation."
        ))
    })?;
    let sql_op = match op {
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        "neq" => "<>",
        _ => "=",
    };
    let mark = sql.text(&time);
    sql.add(format!("{column} {sql_op} {mark}"));
    Ok(())
}

fn int_value(name: &str, value: &str) -> Result<i64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid value '{value}' for '{name}' filter.")))
}

fn bool_filter(name: &str, value: &str, case_insensitive: bool) -> Result<i64, ApiError> {
    let v = if case_insensitive {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    };
    match v.as_str() {
        "true" => Ok(1),
        "false" => Ok(0),
        _ => Err(ApiError::bad_request(format!(
            "Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'."
        ))),
    }
}

/// `GET /v2/images`
pub async fn list(
    auth: Auth,
    state: AppState,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let images = &state.0;
    let project = auth.project_id().map(str::to_string);
    let mut target = serde_json::Map::new();
    if let Some(p) = &project {
        target.insert("project_id".into(), json!(p));
    }
    auth.enforce("get_images", &Value::Object(target))?;
    let admin = is_admin(&auth);
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let limit = match get("limit") {
        None => images.config.limit_param_default,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(ApiError::bad_request("limit param must be positive"));
            }
            n as u64
        }
    }
    .min(images.config.api_limit_max);
    let member_status = get("member_status").unwrap_or("accepted");
    if !["pending", "accepted", "rejected", "all"].contains(&member_status) {
        return Err(ApiError::bad_request(format!(
            "Invalid status: {member_status}"
        )));
    }
    let sort = sorting(&query)?;

    let mut sql = Sql::default();
    sql.add("i.deleted = 0 AND i.status <> 'killed'".into());
    // Visible set.
    let caller = project.clone().unwrap_or_default();
    if !admin {
        let p = sql.text(&caller);
        let membership = match member_status {
            "all" => format!(
                "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.member = {p})"
            ),
            status => {
                let s = sql.text(status);
                format!(
                    "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id \
                     AND m.member = {p} AND m.status = {s})"
                )
            }
        };
        sql.add(format!(
            "(i.owner = {p} OR i.visibility IN ('public', 'community') OR \
             (i.visibility = 'shared' AND {membership}))"
        ));
    } else if get("member_status").is_some() && member_status != "all" {
        // An admin asking for a member status sees what their project would see as a member.
        let p = sql.text(&caller);
        let s = sql.text(member_status);
        sql.add(format!(
            "(i.visibility <> 'shared' OR i.owner = {p} OR EXISTS (SELECT 1 FROM image_members m \
             WHERE m.image_id = i.id AND m.member = {p} AND m.status = {s}))"
        ));
    }
    match get("visibility") {
        None => {
            let p = sql.text(&caller);
            sql.add(format!("(i.visibility <> 'community' OR i.owner = {p})"));
        }
        Some("all") => {}
        Some(v @ ("public" | "private" | "shared" | "community")) => {
            let mark = sql.text(v);
            sql.add(format!("i.visibility = {mark}"));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid visibility value: {other}"
            )));
        }
    }
    let hidden = match get("os_hidden") {
        None => 0,
        Some(v) => bool_filter("os_hidden", v, true)?,
    };
    sql.add(format!("i.os_hidden = {hidden}"));

    for (key, value) in &query {
        match key.as_str() {
            "limit" | "marker" | "sort" | "sort_key" | "sort_dir" | "member_status"
            | "visibility" | "os_hidden" => {}
            "changes-since" => {
                return Err(ApiError::bad_request(
                    "The \"changes-since\" filter is no longer available on v2.",
                ));
            }
            "name" | "id" | "status" | "container_format" | "disk_format" => {
                eq_or_in(&mut sql, &format!("i.{key}"), value)?
            }
            "owner" | "checksum" | "os_hash_value" | "os_hash_algo" => {
                let mark = sql.text(value);
                sql.add(format!("i.{key} = {mark}"));
            }
            "protected" => {
                let n = bool_filter("protected", value, false)?;
                sql.add(format!("i.protected = {n}"));
            }
            "size" | "min_ram" | "min_disk" | "virtual_size" => {
                let mark = sql.bind(Bind::Int(int_value(key, value)?));
                sql.add(format!("i.{key} = {mark}"));
            }
            "size_min" | "size_max" => {
                let n: i64 = value.parse().map_err(|_| {
                    ApiError::bad_request("Unable to filter on a range with a non-numeric value.")
                })?;
                let mark = sql.bind(Bind::Int(n));
                let op = if key == "size_min" { ">=" } else { "<=" };
                sql.add(format!("i.size {op} {mark}"));
            }
            "created_at" | "updated_at" => time_filter(&mut sql, &format!("i.{key}"), key, value)?,
            "tag" => {
                let mark = sql.text(value);
                sql.add(format!(
                    "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.tag = {mark})"
                ));
            }
            other => {
                let name = sql.text(other);
                let mark = sql.text(value);
                sql.add(format!(
                    "EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = i.id \
                     AND p.name = {name} AND p.value = {mark})"
                ));
            }
        }
    }

    if let Some(marker) = get("marker") {
        let Some(m) = images.load(marker).await? else {
            return Err(ApiError::bad_request(format!(
                "No image found with ID {marker}"
            )));
        };
        keyset(&mut sql, &sort, &m);
    }

    let order: Vec<String> = sort
        .iter()
        .map(|(k, asc)| {
            format!(
                "{} {}",
                sort_expr(k).unwrap_or("i.id"),
                if *asc { "ASC" } else { "DESC" }
            )
        })
        .collect();
    let rows = if limit == 0 {
        Vec::new()
    } else {
        db::list_images(
            &images.store,
            &sql.conditions.join(" AND "),
            &order.join(", "),
            &sql.binds,
            limit,
        )
        .await
        .map_err(db_error)?
    };
    let full_page = limit > 0 && rows.len() as u64 == limit;
    let base: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    let encode = |pairs: &[(String, String)]| -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let first = match base.is_empty() {
        true => "/v2/images".to_string(),
        false => format!("/v2/images?{}", encode(&base)),
    };
    let mut body = json!({
        "images": rows.iter().map(Image::to_json).collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/images",
    });
    if full_page && let Some(last) = rows.last() {
        let mut next = base.clone();
        next.push(("marker".into(), last.id.clone()));
        body["next"] = json!(format!("/v2/images?{}", encode(&next)));
    }
    Ok(Json(body))
}

/// Rows strictly after the marker image in the sort order.
fn keyset(sql: &mut Sql, sort: &[(String, bool)], marker: &Image) {
    let value_of = |key: &str| -> Bind {
        match key {
            "name" => Bind::Text(marker.name.clone().unwrap_or_default()),
            "status" => Bind::Text(marker.status.clone()),
            "container_format" => Bind::Text(marker.container_format.clone().unwrap_or_default()),
            "disk_format" => Bind::Text(marker.disk_format.clone().unwrap_or_default()),
            "size" => Bind::Int(marker.size.unwrap_or(0)),
            "created_at" => Bind::Text(marker.created_at.clone()),
            "updated_at" => Bind::Text(marker.updated_at.clone()),
            _ => Bind::Text(marker.id.clone()),
        }
    };
    let mut alternatives = Vec::new();
    for n in 0..sort.len() {
        let mut parts = Vec::new();
        for (key, _) in &sort[..n] {
            let mark = sql.bind(value_of(key));
            parts.push(format!("{} = {mark}", sort_expr(key).unwrap_or("i.id")));
        }
        let (key, asc) = &sort[n];
        let mark = sql.bind(value_of(key));
        let op = if *asc { ">" } else { "<" };
        parts.push(format!("{} {op} {mark}", sort_expr(key).unwrap_or("i.id")));
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    sql.add(format!("({})", alternatives.join(" OR ")));
}

/// Form-urlencodes a query component.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sorting_defaults_and_tie_breakers() {
        assert_eq!(
            sorting(&q(&[])).unwrap(),
            vec![("created_at".into(), false), ("id".into(), false)]
        );
        assert_eq!(
            sorting(&q(&[("sort", "name:asc,size")])).unwrap(),
            vec![
                ("name".into(), true),
                ("size".into(), false),
                ("created_at".into(), true),
                ("id".into(), true)
            ]
        );
        assert_eq!(
            sorting(&q(&[("sort_key", "size"), ("sort_dir", "desc")])).unwrap()[0],
            ("size".into(), false)
        );
        assert!(sorting(&q(&[("sort", "name"), ("sort_key", "id")])).is_err());
        assert!(
            sorting(&q(&[("sort_key", "owner")]))
                .unwrap_err()
                .message
                .contains("Invalid sort key")
        );
        assert!(sorting(&q(&[("sort_key", "a"), ("sort_dir", "up")])).is_err());
    }

    #[test]
    fn in_lists_split_on_unquoted_commas() {
        assert_eq!(in_values("a,b,\"c,d\""), vec!["a", "b", "c,d"]);
        assert!(in_values("").is_empty());
    }

    #[test]
    fn times_normalise() {
        assert_eq!(
            iso_time("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            iso_time("2026-01-02T03:04:05+01:00").unwrap(),
            "2026-01-02T02:04:05Z"
        );
        assert!(iso_time("yesterday").is_none());
    }
}
