//! `/v3/snapshots` (`cinder/api/v3/snapshots.py`, `snapshot_metadata.py`, the snapshot admin
//! actions and `os-update_snapshot_status`): create from a volume (quota counted in the
//! insert's transaction, the copy cast to the volume manager), list/detail with Cinder's
//! filters, sorting and pagination, show, update, delete, metadata and actions.
//!
//! Also the list helpers the types, QoS, quotas and misc modules share: list parameters
//! ([`ListParams`]), boolean query parameters, filter checks.

use super::query;
use super::views::timestamp;
use super::volumes::{as_bool, boolean_schema};
use super::{
    AppState, Mv, accepted, action_name, at_least, body_schema, caller_project, caller_target,
    closed_object, is_admin, no_such_action, ok,
};
use crate::db::write_tx;
use crate::errors;
use crate::model::{Snapshot, Volume, VolumeType, snapshot_status, volume_status};
use crate::quota::{self, Delta};
use crate::service::{Volumes, Work};
use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/snapshots", get(index).post(create))
        .route("/snapshots/detail", get(index))
        .route("/snapshots/{id}", get(show).put(update).delete(delete))
        .route("/snapshots/{id}/action", post(action))
        .route(
            "/snapshots/{id}/metadata",
            get(metadata_index)
                .post(write_all_metadata)
                .put(write_all_metadata),
        )
        .route(
            "/snapshots/{id}/metadata/{key}",
            get(metadata_show)
                .put(metadata_update)
                .delete(metadata_delete),
        )
}

// ---------------------------------------------------------------------------------------
// List helpers shared by the snapshots, types, QoS, quotas and misc modules.
// ---------------------------------------------------------------------------------------

/// `utils.get_bool_param`: absent is false, anything but a boolean word is a 400.
pub(super) fn bool_param(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    value.map_or(Ok(false), |v| query::bool_param(name, v))
}

/// A filter value written as a Python dict literal (`{'key': 'value'}`) or JSON; `None`
/// when it is neither.
pub(super) fn literal_dict(raw: &str) -> Option<BTreeMap<String, String>> {
    let parsed: Map<String, Value> = serde_json::from_str(raw)
        .or_else(|_| serde_json::from_str(&raw.replace('\'', "\"")))
        .ok()?;
    Some(
        parsed
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
    )
}

/// Refuses (400) filter keys a non-admin may not use (`reject_invalid_filters`, 3.31+);
/// `all_tenants` is dropped silently, as Cinder does for its clients.
pub(super) fn reject_invalid_filters(
    filters: &mut BTreeMap<String, String>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    if filters.keys().any(|k| !k.is_ascii()) {
        return Err(errors::bad_request(
            "Filter keys can only contain ASCII characters.",
        ));
    }
    filters.remove("all_tenants");
    let invalid: Vec<&str> = filters
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if invalid.is_empty() {
        return Ok(());
    }
    Err(errors::bad_request(format!(
        "Invalid filters {} are found in query options.",
        invalid.join(",")
    )))
}

/// `_filter_host`: `host` matches `value` itself or any of its backends and pools.
pub(super) fn host_matches(host: Option<&str>, value: &str) -> bool {
    host.is_some_and(|h| {
        h == value || h.starts_with(&format!("{value}@")) || h.starts_with(&format!("{value}#"))
    })
}

/// Query keys of a Cinder list that are not filters.
const LIST_KEYS: &[&str] = &[
    "sort",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "offset",
    "with_count",
];

/// The `sort`/`sort_key`/`sort_dir`, `limit`, `marker`, `offset` and `with_count` of a list
/// request (`cinder/api/common.py`), the remaining query keys as filters.
#[derive(Debug, Clone)]
pub(super) struct ListParams {
    /// The raw query (for the next link).
    pairs: Vec<(String, String)>,
    /// Filters: every other key (its last value).
    pub(super) filters: BTreeMap<String, String>,
    /// Sort keys with `true` for descending.
    sort: Vec<(String, bool)>,
    limit: usize,
    marker: Option<String>,
    offset: usize,
    /// `with_count` (3.45).
    pub(super) with_count: bool,
}

impl ListParams {
    /// Parses a query string.
    pub(super) fn parse(raw: Option<&str>, mv: &Mv) -> Result<ListParams, ApiError> {
        let pairs = query::pairs(raw);
        let last: HashMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let limit = match last.get("limit") {
            None => query::MAX_LIMIT,
            Some(l) => match l.trim().parse::<i64>() {
                Err(_) => return Err(errors::bad_request("limit param must be an integer")),
                Ok(n) if n < 0 => return Err(errors::bad_request("limit param must be positive")),
                Ok(n) => (n as usize).min(query::MAX_LIMIT),
            },
        };
        let offset = match last.get("offset") {
            None => 0,
            Some(o) => match o.trim().parse::<i64>() {
                Err(_) => return Err(errors::bad_request("offset must be an integer")),
                Ok(n) if n < 0 => return Err(errors::bad_request("offset must be >= 0")),
                Ok(n) => n as usize,
            },
        };
        let with_count = match at_least(mv, 45) {
            true => bool_param("with_count", last.get("with_count").copied())?,
            false => false,
        };
        let filters = pairs
            .iter()
            .filter(|(k, _)| !LIST_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ListParams {
            sort: sort_params(&last)?,
            marker: last.get("marker").map(|m| m.to_string()),
            pairs,
            filters,
            limit,
            offset,
            with_count,
        })
    }

    /// Renames the sort key `from` (e.g. `name` → `display_name`).
    pub(super) fn rename_sort_key(&mut self, from: &str, to: &str) {
        for (key, _) in &mut self.sort {
            if key == from {
                *key = to.to_string();
            }
        }
    }

    /// Refuses sort keys outside `allowed` (400 "Invalid sort key").
    pub(super) fn check_sort_keys(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.sort.iter().all(|(k, _)| allowed.contains(&k.as_str())) {
            true => Ok(()),
            false => Err(errors::invalid_input("Invalid sort key")),
        }
    }

    /// The marker id, if any.
    pub(super) fn marker(&self) -> Option<&str> {
        self.marker.as_deref()
    }

    /// Sorts `items`, each with its row (its columns by name), by the requested keys, then
    /// `created_at` and `id` in the first key's direction; skips up to the `marker` row and
    /// `offset`, and cuts at `limit`.
    pub(super) fn page<T>(&self, mut items: Vec<(Value, T)>, marker: Option<&Value>) -> Vec<T> {
        let mut keys = self.sort.clone();
        let first_desc = keys.first().is_some_and(|(_, d)| *d);
        for default in ["created_at", "id"] {
            if !keys.iter().any(|(k, _)| k == default) {
                keys.push((default.to_string(), first_desc));
            }
        }
        let order = |a: &Value, b: &Value| {
            keys.iter()
                .map(|(k, desc)| {
                    let o = compare(&a[k.as_str()], &b[k.as_str()]);
                    if *desc { o.reverse() } else { o }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        };
        items.sort_by(|(a, _), (b, _)| order(a, b));
        items
            .into_iter()
            .filter(|(row, _)| marker.is_none_or(|m| order(row, m) == Ordering::Greater))
            .skip(self.offset)
            .take(self.limit)
            .map(|(_, item)| item)
            .collect()
    }

    /// `<collection>_links` with the next page (Cinder adds it whenever the page is full:
    /// items shown and `limit` not above the count).
    pub(super) fn links(
        &self,
        volumes: &Volumes,
        collection: &str,
        last_id: Option<&str>,
        shown: usize,
        count: Option<usize>,
    ) -> Option<Value> {
        let count = count.filter(|c| *c > 0).unwrap_or(shown);
        let last = last_id?;
        if shown == 0 || self.limit > count {
            return None;
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "marker") {
            query.append_pair(k, v);
        }
        query.append_pair("marker", last);
        let href = format!("{}/v3/{collection}?{}", volumes.base_url(), query.finish());
        Some(json!([{"rel": "next", "href": href}]))
    }
}

/// `get_sort_params`: `sort=k1:dir,k2` or `sort_key`/`sort_dir`; defaults `created_at desc`.
fn sort_params(last: &HashMap<&str, &str>) -> Result<Vec<(String, bool)>, ApiError> {
    if last.contains_key("sort") && (last.contains_key("sort_key") || last.contains_key("sort_dir"))
    {
        return Err(errors::bad_request(
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with \
             the 'sort' parameter.",
        ));
    }
    let raw: Vec<(String, String)> = match last.get("sort") {
        Some(sort) => sort
            .trim()
            .split(',')
            .map(|s| {
                let (k, d) = s.split_once(':').unwrap_or((s, ""));
                let d = if d.trim().is_empty() { "desc" } else { d };
                (k.trim().to_string(), d.trim().to_string())
            })
            .collect(),
        None => vec![(
            last.get("sort_key")
                .unwrap_or(&"created_at")
                .trim()
                .to_string(),
            last.get("sort_dir").unwrap_or(&"desc").trim().to_string(),
        )],
    };
    raw.into_iter()
        .map(|(k, d)| match d.to_ascii_lowercase().as_str() {
            "asc" => Ok((k, false)),
            "desc" => Ok((k, true)),
            _ => Err(errors::invalid_input(
                "Unknown sort direction, must be 'desc' or 'asc'",
            )),
        })
        .collect()
}

/// Orders two attribute values as the database does (NULL first).
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The message of a Python tuple of strings (`('a', 'b')`), as Cinder's messages show them.
pub(super) fn py_tuple(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", quoted.join(", "))
}

// ---------------------------------------------------------------------------------------
// Views.
// ---------------------------------------------------------------------------------------

/// The summary view (`cinder/api/views/snapshots.py`).
fn summary(s: &Snapshot) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert("created_at".into(), json!(timestamp(&s.created_at)));
    m.insert(
        "updated_at".into(),
        json!(s.updated_at.as_deref().map(timestamp)),
    );
    m.insert("name".into(), json!(s.name));
    m.insert("description".into(), json!(s.description));
    m.insert("volume_id".into(), json!(s.volume_id));
    m.insert("status".into(), json!(s.status));
    m.insert("size".into(), json!(s.size));
    m.insert("metadata".into(), json!(s.metadata));
    m
}

/// The v3 detail view: the summary plus `group_snapshot_id` (3.14), `user_id` (3.41) and
/// `consumes_quota` (3.65).
fn detail(s: &Snapshot, mv: &Mv) -> Map<String, Value> {
    let mut m = summary(s);
    if at_least(mv, 14) {
        m.insert("group_snapshot_id".into(), Value::Null);
    }
    if at_least(mv, 41) {
        m.insert("user_id".into(), json!(s.user_id));
    }
    if at_least(mv, 65) {
        m.insert("consumes_quota".into(), json!(s.consumes_quota));
    }
    m
}

/// Adds `os-extended-snapshot-attributes:project_id` and `:progress`.
fn extend(m: &mut Map<String, Value>, s: &Snapshot) {
    m.insert(
        "os-extended-snapshot-attributes:project_id".into(),
        json!(s.project_id),
    );
    m.insert(
        "os-extended-snapshot-attributes:progress".into(),
        json!(s.progress),
    );
}

/// Whether the caller sees the extended attributes.
fn extended(auth: &Auth) -> bool {
    auth.allows(
        "volume_extension:extended_snapshot_attributes",
        &caller_target(auth),
    )
}

/// The policy target of a snapshot.
fn target(s: &Snapshot) -> Value {
    json!({"project_id": s.project_id, "user_id": s.user_id, "id": s.id})
}

// ---------------------------------------------------------------------------------------
// Lookups.
// ---------------------------------------------------------------------------------------

/// The snapshot as the caller may see it (its project's, or any for an admin); 404 otherwise.
async fn visible_snapshot(v: &Volumes, auth: &Auth, id: &str) -> Result<Snapshot, ApiError> {
    let found: Option<Snapshot> = v.db.get(id).await?;
    found
        .filter(|s| s.project_id == caller_project(auth) || is_admin(auth))
        .ok_or_else(|| errors::snapshot_not_found(id))
}

/// The snapshot, read and checked against `policy`.
async fn authorized_snapshot(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    policy: &str,
) -> Result<Snapshot, ApiError> {
    let snapshot = visible_snapshot(v, auth, id).await?;
    auth.enforce(policy, &target(&snapshot))?;
    Ok(snapshot)
}

// ---------------------------------------------------------------------------------------
// List, show.
// ---------------------------------------------------------------------------------------

/// The keys snapshots sort by (model columns).
const SORT_KEYS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "status",
    "volume_id",
    "project_id",
    "user_id",
    "progress",
    "display_name",
    "display_description",
    "volume_size",
    "use_quota",
];

/// The columns of a snapshot ([`SORT_KEYS`]), for sorting and filtering.
fn row(s: &Snapshot) -> Value {
    json!({
        "id": s.id, "created_at": s.created_at, "updated_at": s.updated_at,
        "status": s.status, "volume_id": s.volume_id, "project_id": s.project_id,
        "user_id": s.user_id, "progress": s.progress, "display_name": s.name,
        "display_description": s.description, "volume_size": s.size,
        "use_quota": s.consumes_quota,
    })
}

/// Applies Cinder's filter rules for the request's microversion: 3.31+ refuses keys a
/// non-admin may not use; before, they are dropped (and `metadata` before 3.22).
fn snapshot_filters(
    filters: &mut BTreeMap<String, String>,
    admin: bool,
    mv: &Mv,
) -> Result<(), ApiError> {
    if at_least(mv, 31) {
        if !admin {
            reject_invalid_filters(
                filters,
                &[
                    "name",
                    "status",
                    "volume_id",
                    "metadata",
                    "availability_zone",
                    "consumes_quota",
                ],
            )?;
        }
        if let Some(value) = filters.remove("consumes_quota") {
            filters.insert("use_quota".into(), value);
        }
    } else {
        if !at_least(mv, 22) {
            filters.remove("metadata");
        }
        filters.remove("use_quota");
        if !admin {
            filters
                .retain(|k, _| ["status", "volume_id", "name", "metadata"].contains(&k.as_str()));
        }
    }
    if let Some(name) = filters.remove("name") {
        filters.insert("display_name".into(), name);
    }
    Ok(())
}

/// Whether a snapshot (with its [`row`]) passes every filter (an unknown filter key matches
/// nothing, as the database query it would become).
fn matches(
    (columns, s): &(Value, Snapshot),
    filters: &BTreeMap<String, String>,
    vols: &HashMap<String, Volume>,
) -> bool {
    let volume = vols.get(&s.volume_id);
    filters.iter().all(|(key, value)| match key.as_str() {
        "metadata" => literal_dict(value)
            .is_some_and(|want| want.iter().all(|(k, v)| s.metadata.get(k) == Some(v))),
        "use_quota" => query::strict_bool(value) == Some(s.consumes_quota),
        "volume_size" => value.parse::<i64>().ok() == Some(s.size),
        "availability_zone" => volume.is_some_and(|v| &v.availability_zone == value),
        "host" => host_matches(volume.and_then(|v| v.host.as_deref()), value),
        "cluster_name" => false,
        k if SORT_KEYS.contains(&k) && k != "use_quota" && k != "volume_size" => {
            columns[k].as_str() == Some(value.as_str())
        }
        _ => false,
    })
}

/// `GET /v3/snapshots` and `GET /v3/snapshots/detail`.
async fn index(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
    uri: Uri,
) -> Result<Response, ApiError> {
    let detailed = uri.path().ends_with("/detail");
    list(&v, &auth, &mv, raw.as_deref(), detailed).await
}

/// `GET /v3/snapshots[/detail]`.
async fn list(
    v: &Volumes,
    auth: &Auth,
    mv: &Mv,
    raw: Option<&str>,
    with_detail: bool,
) -> Result<Response, ApiError> {
    let admin = is_admin(auth);
    let mut params = ListParams::parse(raw, mv)?;
    snapshot_filters(&mut params.filters, admin, mv)?;
    if at_least(mv, 30) {
        params.rename_sort_key("name", "display_name");
    }
    params.check_sort_keys(SORT_KEYS)?;
    auth.enforce("volume:get_all_snapshots", &caller_target(auth))?;
    let all_tenants = params
        .filters
        .remove("all_tenants")
        .is_some_and(|a| query::strict_bool(&a).unwrap_or(false));
    let project = caller_project(auth);
    let all: Vec<Snapshot> = match admin && all_tenants {
        true => v.db.select("1 = 1", &[]).await?,
        false => v.db.select("project_id = $1", &[&project]).await?,
    };
    let marker = match params.marker() {
        None => None,
        Some(m) => Some(row(&visible_snapshot(v, auth, m).await?)),
    };
    let needs_volumes = ["availability_zone", "host"]
        .iter()
        .any(|k| params.filters.contains_key(*k));
    let vols: HashMap<String, Volume> = match needs_volumes {
        true => {
            v.db.select::<Volume>("1 = 1", &[])
                .await?
                .into_iter()
                .map(|vol| (vol.id.clone(), vol))
                .collect()
        }
        false => HashMap::new(),
    };
    let matched: Vec<(Value, Snapshot)> = all
        .into_iter()
        .map(|s| (row(&s), s))
        .filter(|item| matches(item, &params.filters, &vols))
        .collect();
    let count = matched.len();
    let page = params.page(matched, marker.as_ref());
    let show_extended = with_detail && extended(auth);
    let items: Vec<Value> = page
        .iter()
        .map(|s| match with_detail {
            true => {
                let mut m = detail(s, mv);
                if show_extended {
                    extend(&mut m, s);
                }
                Value::Object(m)
            }
            false => Value::Object(summary(s)),
        })
        .collect();
    let collection = if with_detail {
        "snapshots/detail"
    } else {
        "snapshots"
    };
    let mut body = json!({ "snapshots": items });
    let total = params.with_count.then_some(count);
    let last = page.last().map(|s| s.id.as_str());
    if let Some(links) = params.links(v, collection, last, page.len(), total) {
        body["snapshots_links"] = links;
    }
    if let Some(total) = total {
        body["count"] = json!(total);
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /v3/snapshots/{id}`.
async fn show(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = authorized_snapshot(&v, &auth, &id, "volume:get_snapshot").await?;
    let mut m = detail(&snapshot, &mv);
    if extended(&auth) {
        extend(&mut m, &snapshot);
    }
    Ok(ok("snapshot", Value::Object(m)))
}

// ---------------------------------------------------------------------------------------
// Create, update, delete.
// ---------------------------------------------------------------------------------------

/// Metadata keys of snapshot create (and of volume type extra specs).
const KEY_WITH_SLASH: &str = "^[a-zA-Z0-9_:. /-]{1,255}$";

/// Keys of the snapshot metadata API.
const METADATA_KEY: &str = "^[a-zA-Z0-9_:. -]{1,255}$";

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let name = json!({"type": ["string", "null"], "minLength": 0, "maxLength": 255});
    let properties = json!({
        "name": name,
        "display_name": name,
        "description": {"type": ["string", "null"], "maxLength": 255},
        "volume_id": {"type": ["string", "null"]},
        "force": boolean_schema(),
        "metadata": {
            "type": ["object", "null"],
            "patternProperties": {KEY_WITH_SLASH: {"type": "string", "maxLength": 255}},
            "additionalProperties": false,
        },
    });
    body_schema("snapshot", closed_object(properties, &["volume_id"]))
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    let text = json!({"type": ["string", "null"], "minLength": 0, "maxLength": 255});
    let mut snapshot = closed_object(
        json!({
            "name": text, "description": text,
            "display_name": text, "display_description": text,
        }),
        &[],
    );
    snapshot["anyOf"] = json!([
        {"required": ["name"]}, {"required": ["description"]},
        {"required": ["display_name"]}, {"required": ["display_description"]},
    ]);
    body_schema("snapshot", snapshot)
});

/// The message refusing `force=false` from 3.66.
const IN_USE_FLAG_MSG: &str = "Since microversion 3.66 the 'force' flag is invalid for this \
    request.  For backward compatability, however, when the 'force' flag is passed with a \
    value evaluating to True, it is silently ignored.";

/// A stripped optional string of a body.
fn stripped(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.trim().to_string())
}

/// `POST /v3/snapshots`.
async fn create(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    CREATE.validate(&body)?;
    let req = &body["snapshot"];
    let volume_id = req["volume_id"].as_str().unwrap_or("None").to_string();
    if !req["volume_id"].is_null() && uuid::Uuid::parse_str(&volume_id).is_err() {
        return Err(errors::bad_request(format!(
            "Invalid input for field/attribute volume_id. Value: {volume_id}. \
             '{volume_id}' is not a 'uuid'"
        )));
    }
    let volume: Option<Volume> = v.db.get(&volume_id).await?;
    let volume = volume
        .filter(|vol| vol.project_id == caller_project(&auth) || is_admin(&auth))
        .ok_or_else(|| errors::volume_not_found(&volume_id))?;
    let force = match &req["force"] {
        Value::Null => None,
        f => as_bool(f),
    };
    if at_least(&mv, 66) && force == Some(false) {
        return Err(errors::bad_request(IN_USE_FLAG_MSG));
    }
    let name = match req.get("name") {
        Some(n) => stripped(n),
        None => stripped(&req["display_name"]),
    };
    let metadata: BTreeMap<String, String> =
        serde_json::from_value(req["metadata"].clone()).unwrap_or_default();
    auth.enforce(
        "volume:create_snapshot",
        &json!({"project_id": volume.project_id, "user_id": volume.user_id, "id": volume.id}),
    )?;
    let allowed: &[&str] = match force == Some(true) || at_least(&mv, 66) {
        true => &[volume_status::AVAILABLE, volume_status::IN_USE],
        false => &[volume_status::AVAILABLE],
    };
    check_snapshottable(&volume, allowed)?;
    let snapshot = Snapshot {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume.id.clone(),
        project_id: caller_project(&auth),
        user_id: auth.user.id.clone(),
        name,
        description: stripped(&req["description"]),
        size: volume.size,
        status: snapshot_status::CREATING.into(),
        progress: "0%".into(),
        metadata,
        consumes_quota: true,
        created_at: ferrostack_store::now_rfc3339(),
        updated_at: None,
    };
    let settings = v.settings.clone();
    let snapshot = write_tx!(v.db, |tx| {
        async {
            let volume: Volume = tx
                .lock(&snapshot.volume_id)
                .await?
                .ok_or_else(|| errors::volume_not_found(&snapshot.volume_id))?;
            check_snapshottable(&volume, allowed)?;
            let volume_type: Option<VolumeType> = tx.get(&volume.volume_type_id).await?;
            let delta = Delta {
                snapshots: 1,
                gigabytes: volume.size,
                volume_type: volume_type.map(|t| (t.id, t.name)),
                ..Default::default()
            };
            quota::check(tx, &settings, &snapshot.project_id, &delta).await?;
            let mut row = snapshot.clone();
            row.size = volume.size;
            tx.insert(&row).await?;
            Ok::<Snapshot, crate::db::Error>(row)
        }
        .await
    })?;
    v.cast(Work::Snapshot(snapshot.id.clone())).await;
    Ok(accepted("snapshot", Value::Object(detail(&snapshot, &mv))))
}

/// `_create_snapshot_in_db_validate` and the status check of `create_snapshot_in_db`.
fn check_snapshottable(volume: &Volume, allowed: &[&str]) -> Result<(), ApiError> {
    let reason = if volume.host.is_none() {
        "The snapshot cannot be created because volume has not been scheduled to any host."
            .to_string()
    } else if volume.status == volume_status::MAINTENANCE {
        "The snapshot cannot be created when the volume is in maintenance mode.".to_string()
    } else if volume.status == volume_status::ERROR {
        "The snapshot cannot be created when the volume is in error status.".to_string()
    } else if !allowed.contains(&volume.status.as_str()) {
        format!(
            "Volume {} status must be {}, but current status is: {}.",
            volume.id,
            allowed.join(", "),
            volume.status
        )
    } else {
        return Ok(());
    };
    Err(errors::invalid_volume(reason))
}

/// `PUT /v3/snapshots/{id}`: name and description.
async fn update(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    UPDATE.validate(&body)?;
    let req = body["snapshot"].clone();
    authorized_snapshot(&v, &auth, &id, "volume:update_snapshot").await?;
    let name = req.get("name").or_else(|| req.get("display_name")).cloned();
    let description = req
        .get("description")
        .or_else(|| req.get("display_description"))
        .cloned();
    let snapshot = change_snapshot(&v, &id, |row| {
        if let Some(name) = &name {
            row.name = stripped(name);
        }
        if let Some(description) = &description {
            row.description = stripped(description);
        }
        Ok(())
    })
    .await?;
    Ok(ok("snapshot", Value::Object(detail(&snapshot, &mv))))
}

/// `DELETE /v3/snapshots/{id}`.
async fn delete(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorized_snapshot(&v, &auth, &id, "volume:delete_snapshot").await?;
    start_delete(&v, &id, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Moves the snapshot to `deleting` (from `available` or `error` unless `force`) and casts
/// the deletion to the manager.
async fn start_delete(v: &Volumes, id: &str, force: bool) -> Result<(), ApiError> {
    change_snapshot(v, id, |row| {
        let deletable = [snapshot_status::AVAILABLE, snapshot_status::ERROR];
        if !force && !deletable.contains(&row.status.as_str()) {
            return Err(errors::invalid_snapshot(
                "Snapshot status must be available or error and must not be part of a \
                 group.",
            ));
        }
        row.status = snapshot_status::DELETING.into();
        Ok(())
    })
    .await?;
    v.cast(Work::Snapshot(id.to_string())).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Actions.
// ---------------------------------------------------------------------------------------

static RESET_STATUS: LazyLock<Schema> = LazyLock::new(|| {
    let status = json!({"status": {"type": "string"}});
    body_schema("os-reset_status", closed_object(status, &["status"]))
});

static FORCE_DELETE: LazyLock<Schema> = LazyLock::new(|| body_schema("os-force_delete", json!({})));

static UPDATE_STATUS: LazyLock<Schema> = LazyLock::new(|| {
    let properties = json!({"status": {"type": "string"}, "progress": {}});
    body_schema(
        "os-update_snapshot_status",
        closed_object(properties, &["status"]),
    )
});

/// `POST /v3/snapshots/{id}/action`.
async fn action(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let name = action_name(&body)?;
    match name.as_str() {
        "os-reset_status" => reset_status(&v, &auth, &id, &body).await,
        "os-force_delete" => {
            FORCE_DELETE.validate(&body)?;
            authorized_snapshot(
                &v,
                &auth,
                &id,
                "volume_extension:snapshot_admin_actions:force_delete",
            )
            .await?;
            start_delete(&v, &id, true).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-update_snapshot_status" => update_status(&v, &auth, &id, &body).await,
        other => Err(no_such_action(other)),
    }
}

/// `os-reset_status` (admins): any snapshot status, no transition check.
async fn reset_status(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    RESET_STATUS.validate(body)?;
    let status = body["os-reset_status"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    if !snapshot_status::ALL.contains(&status.as_str()) {
        return Err(errors::bad_request(format!(
            "Snapshot status: {status} is invalid, valid statuses are: {}.",
            py_tuple(snapshot_status::ALL)
        )));
    }
    authorized_snapshot(
        v,
        auth,
        id,
        "volume_extension:snapshot_admin_actions:reset_status",
    )
    .await?;
    change_snapshot(v, id, |row| {
        row.status = status.clone();
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `os-update_snapshot_status`: `creating` → `creating`/`available`/`error`, `deleting` →
/// `deleting`/`error_deleting`, with an optional progress.
async fn update_status(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    UPDATE_STATUS.validate(body)?;
    let args = &body["os-update_snapshot_status"];
    let status = args["status"].as_str().unwrap_or_default().to_string();
    let progress = match &args["progress"] {
        Value::Null => None,
        Value::String(p) if p.is_empty() => None,
        Value::String(p) => Some(check_progress(p)?),
        _ => {
            return Err(errors::invalid_input(
                "progress must be an integer percentage",
            ));
        }
    };
    authorized_snapshot(
        v,
        auth,
        id,
        "snapshot_extension:snapshot_actions:update_snapshot_status",
    )
    .await?;
    change_snapshot(v, id, |row| {
        let allowed: &[&str] = match row.status.as_str() {
            snapshot_status::CREATING => &[
                snapshot_status::CREATING,
                snapshot_status::AVAILABLE,
                snapshot_status::ERROR,
            ],
            snapshot_status::DELETING => {
                &[snapshot_status::DELETING, snapshot_status::ERROR_DELETING]
            }
            current => {
                return Err(errors::bad_request(format!(
                    "Snapshot status {current} not allowed for update_snapshot_status"
                )));
            }
        };
        if !allowed.contains(&status.as_str()) {
            return Err(errors::bad_request(format!(
                "Provided snapshot status {status} not allowed for snapshot with status {}.",
                row.status
            )));
        }
        row.status = status.clone();
        if let Some(p) = &progress {
            row.progress = p.clone();
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The `progress` format: an integer percentage `0%` … `100%`.
fn check_progress(p: &str) -> Result<String, ApiError> {
    let number = p.strip_suffix('%').and_then(|n| n.parse::<i64>().ok());
    match number {
        Some(n) if (0..=100).contains(&n) => Ok(p.to_string()),
        Some(_) => Err(errors::invalid_input(
            "progress must be an integer percentage between 0 and 100",
        )),
        None => Err(errors::invalid_input(
            "progress must be an integer percentage",
        )),
    }
}

/// Changes the locked snapshot row with `change` (which may refuse) and saves it with a new
/// `updated_at`; the saved row.
async fn change_snapshot(
    v: &Volumes,
    id: &str,
    change: impl Fn(&mut Snapshot) -> Result<(), ApiError>,
) -> Result<Snapshot, ApiError> {
    let saved = write_tx!(v.db, |tx| {
        async {
            let mut row: Snapshot = tx
                .lock(id)
                .await?
                .ok_or_else(|| errors::snapshot_not_found(id))?;
            change(&mut row)?;
            row.updated_at = Some(ferrostack_store::now_rfc3339());
            tx.save(&row).await?;
            Ok::<Snapshot, crate::db::Error>(row)
        }
        .await
    })?;
    Ok(saved)
}

// ---------------------------------------------------------------------------------------
// Metadata.
// ---------------------------------------------------------------------------------------

fn metadata_properties() -> Value {
    json!({
        "type": "object",
        "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 255}},
        "additionalProperties": false,
    })
}

static METADATA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object",
        "properties": {"metadata": metadata_properties()},
        "required": ["metadata"],
    }))
});

static META_ITEM: LazyLock<Schema> = LazyLock::new(|| {
    let mut item = metadata_properties();
    item["minProperties"] = json!(1);
    item["maxProperties"] = json!(1);
    Schema::new(json!({
        "type": "object",
        "properties": {"meta": item},
        "required": ["meta"],
    }))
});

/// The snapshot's metadata after `change` (with `merge`: added to the existing keys;
/// otherwise: replacing them), saved.
async fn write_metadata(
    v: &Volumes,
    id: &str,
    change: BTreeMap<String, String>,
    merge: bool,
) -> Result<BTreeMap<String, String>, ApiError> {
    let saved = change_snapshot(v, id, |row| {
        if !merge {
            row.metadata.clear();
        }
        row.metadata.extend(change.clone());
        Ok(())
    })
    .await?;
    Ok(saved.metadata)
}

/// The string map of a validated metadata object.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

async fn metadata_index(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = metadata_snapshot(&v, &auth, &id, "volume:get_snapshot_metadata").await?;
    Ok(ok("metadata", json!(s.metadata)))
}

/// `POST /v3/snapshots/{id}/metadata` adds the body's keys, `PUT` replaces all keys with them.
async fn write_all_metadata(
    method: Method,
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let merge = method == Method::POST;
    METADATA.validate(&body)?;
    metadata_snapshot(&v, &auth, &id, "volume:update_snapshot_metadata").await?;
    let saved = write_metadata(&v, &id, string_map(&body["metadata"]), merge).await?;
    Ok(ok("metadata", json!(saved)))
}

/// The snapshot `id` as the caller may see it (`volume:get_snapshot`), checked against the
/// metadata `rule`.
async fn metadata_snapshot(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    rule: &str,
) -> Result<Snapshot, ApiError> {
    let s = authorized_snapshot(v, auth, id, "volume:get_snapshot").await?;
    auth.enforce(rule, &target(&s))?;
    Ok(s)
}

/// The 404 of a missing metadata key.
fn no_metadata_key(id: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("Snapshot {id} has no metadata with key {key}."))
}

async fn metadata_show(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let s = metadata_snapshot(&v, &auth, &id, "volume:get_snapshot_metadata").await?;
    let value = s
        .metadata
        .get(&key)
        .ok_or_else(|| no_metadata_key(&id, &key))?;
    Ok(ok("meta", json!({ key: value })))
}

/// `PUT /v3/snapshots/{id}/metadata/{key}` with `{"meta": {key: value}}`.
async fn metadata_update(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    META_ITEM.validate(&body)?;
    let item = string_map(&body["meta"]);
    if !item.contains_key(&key) {
        return Err(errors::bad_request("Request body and URI mismatch"));
    }
    metadata_snapshot(&v, &auth, &id, "volume:update_snapshot_metadata").await?;
    write_metadata(&v, &id, item.clone(), true).await?;
    Ok(ok("meta", json!(item)))
}

/// `DELETE /v3/snapshots/{id}/metadata/{key}` (200, no body).
async fn metadata_delete(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let s = authorized_snapshot(&v, &auth, &id, "volume:get_snapshot").await?;
    if !s.metadata.contains_key(&key) {
        return Err(no_metadata_key(&id, &key));
    }
    auth.enforce("volume:delete_snapshot_metadata", &target(&s))?;
    change_snapshot(&v, &id, |row| match row.metadata.remove(&key) {
        Some(_) => Ok(()),
        None => Err(no_metadata_key(&id, &key)),
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}
