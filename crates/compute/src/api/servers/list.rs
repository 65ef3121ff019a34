//! `GET /servers` and `/servers/detail` with Nova's filters, sorting and marker paging.

use super::view::{self, Shape};
use super::{is_admin, node_status, visibility};
use crate::api::{AppState, Mv, at_least};
use crate::db::instances::{self as idb, Instance, Scope};
use crate::db::nodes;
use crate::service::{Compute, db_error};
use crate::states;
use axum::{Json, extract::Query};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// Nova's `api.max_limit`.
const MAX_LIMIT: usize = 1000;

/// Filters any caller may use (others are dropped for non-admins).
fn user_filters(mv: &Mv) -> Vec<&'static str> {
    let mut f = vec![
        "reservation_id",
        "name",
        "status",
        "image",
        "flavor",
        "ip",
        "changes-since",
        "all_tenants",
    ];
    for (minor, keys) in [
        (5, &["ip6"][..]),
        (26, &["tags", "tags-any", "not-tags", "not-tags-any"][..]),
        (66, &["changes-before"][..]),
        (73, &["locked"][..]),
        (
            83,
            &[
                "availability_zone",
                "config_drive",
                "key_name",
                "created_at",
                "launched_at",
                "terminated_at",
                "power_state",
                "task_state",
                "vm_state",
                "progress",
                "user_id",
            ][..],
        ),
        (90, &["hostname"][..]),
    ] {
        if at_least(mv, 2, minor) {
            f.extend_from_slice(keys);
        }
    }
    f
}

const FORBIDDEN_FILTERS: &[&str] = &[
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
];

const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
];

/// Whether one of the instance's fixed addresses of IP `version` matches `pattern`.
fn has_address(i: &Instance, version: u8, pattern: &regex::Regex) -> bool {
    i.data
        .vifs
        .iter()
        .flat_map(|v| &v.fixed_ips)
        .any(|ip| ip.version == version && pattern.is_match(&ip.address))
}

fn truthy(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "false" | "f" | "0" | "off" | "n" | "no"
    )
}

fn parse_time(field: &str, v: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let parsed = chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc())
        });
    parsed.map_err(|_| ApiError::bad_request(format!("Invalid filter field: {field}.")))
}

fn stored_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// A sort value of an instance for `key`.
fn sort_value(i: &Instance, key: &str) -> Value {
    let d = &i.data;
    match key {
        "display_name" => json!(d.display_name),
        "display_description" => json!(d.display_description),
        "hostname" => json!(d.hostname),
        "host" => json!(i.host),
        "node" => json!(d.node),
        "image_ref" => json!(d.image_ref),
        "kernel_id" => json!(d.kernel_id),
        "ramdisk_id" => json!(d.ramdisk_id),
        "key_name" => json!(d.key_name),
        "launch_index" => json!(d.launch_index),
        "launched_at" => json!(i.launched_at),
        "terminated_at" => json!(d.terminated_at),
        "updated_at" => json!(i.updated_at),
        "created_at" => json!(i.created_at),
        "power_state" => json!(i.power_state),
        "task_state" => json!(i.task_state),
        "vm_state" => json!(i.vm_state),
        "project_id" => json!(i.project_id),
        "user_id" => json!(i.user_id),
        "uuid" => json!(i.uuid),
        "availability_zone" => json!(d.availability_zone),
        "config_drive" => json!(d.config_drive),
        "locked" | "locked_by" => json!(d.locked_by),
        "access_ip_v4" => json!(d.access_ip_v4),
        "access_ip_v6" => json!(d.access_ip_v6),
        "auto_disk_config" => json!(d.auto_disk_config),
        "instance_type_id" => json!(d.flavor.flavorid),
        _ => Value::Null,
    }
}

/// A sort value with its JSON text, made once per instance rather than per comparison.
struct SortKey {
    value: Value,
    text: String,
}

impl SortKey {
    fn new(value: Value) -> SortKey {
        let text = value.to_string();
        SortKey { value, text }
    }
}

/// Nulls first, numbers and booleans by value, anything else by its JSON text.
fn compare(a: &SortKey, b: &SortKey) -> Ordering {
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.text.cmp(&b.text),
    }
}

struct Listing {
    instances: Vec<Instance>,
    limit: Option<usize>,
}

async fn select(
    c: &Compute,
    auth: &Auth,
    mv: &Mv,
    query: &[(String, String)],
    detail: bool,
) -> Result<Listing, ApiError> {
    let admin = is_admin(auth);
    let project = auth.project_id().unwrap_or_default().to_string();
    let target = json!({"project_id": project});
    let rule = if detail { "detail" } else { "index" };
    auth.enforce(&format!("os_compute_api:servers:{rule}"), &target)?;
    let all_filters = auth.allows("os_compute_api:servers:allow_all_filters", &target);
    let allowed = user_filters(mv);
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut sort_keys = Vec::new();
    let mut sort_dirs = Vec::new();
    let mut limit = None;
    let mut marker = None;
    for (k, v) in query {
        match k.as_str() {
            "sort_key" => sort_keys.push(v.clone()),
            "sort_dir" => sort_dirs.push(v.clone()),
            "limit" => {
                limit = Some(v.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid input for query parameters limit. Value: {v}."
                    ))
                })?)
            }
            "marker" => marker = Some(v.clone()),
            k if FORBIDDEN_FILTERS.contains(&k) || k.starts_with('_') => {
                return Err(ApiError::bad_request(format!("Invalid filter field: {k}.")));
            }
            k if all_filters || allowed.contains(&k) => filters.push((k.to_string(), v.clone())),
            _ => {}
        }
    }
    let get = |k: &str| {
        filters
            .iter()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.as_str())
    };
    let all = |k: &str| -> Vec<&str> {
        filters
            .iter()
            .filter(|(q, _)| q == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let all_tenants = get("all_tenants").is_some_and(truthy);
    if all_tenants {
        auth.enforce(
            &format!("os_compute_api:servers:{rule}:get_all_tenants"),
            &target,
        )?;
    }
    let scope_project = if all_tenants {
        get("project_id").or(get("tenant_id")).map(str::to_string)
    } else {
        Some(project.clone())
    };
    let statuses = all("status");
    if statuses.iter().any(|s| s.eq_ignore_ascii_case("deleted")) && !admin {
        return Err(ApiError::forbidden(
            "Only administrators may list deleted instances",
        ));
    }
    for s in &statuses {
        if states::states_for_status(s).is_none() && at_least(mv, 2, 38) {
            return Err(ApiError::bad_request("Invalid status value"));
        }
    }
    let since = get("changes-since")
        .map(|v| parse_time("changes-since", v))
        .transpose()?;
    let before = get("changes-before")
        .map(|v| parse_time("changes-before", v))
        .transpose()?;
    if let (Some(s), Some(b)) = (since, before)
        && b < s
    {
        return Err(ApiError::bad_request(
            "The value of changes-since must be less than or equal to changes-before.",
        ));
    }
    let want_deleted = statuses.iter().any(|s| s.eq_ignore_ascii_case("deleted"))
        || (admin && get("deleted").is_some_and(truthy));
    let scope = Scope {
        project_id: scope_project,
        deleted: since.is_some() || before.is_some() || want_deleted,
        only_deleted: admin && get("deleted").is_some_and(truthy),
    };
    let regex = |k: &str| -> Result<Option<regex::Regex>, ApiError> {
        get(k)
            .map(|v| {
                regex::Regex::new(v)
                    .map_err(|_| ApiError::bad_request(format!("Invalid filter field: {k}.")))
            })
            .transpose()
    };
    let name_re = regex("name")?;
    let hostname_re = regex("hostname")?;
    let reservation_re = regex("reservation_id")?;
    let key_re = regex("key_name")?;
    // `ip` / `ip6`: a pattern found in one of the server's fixed addresses of that version
    // (with Neutron, Nova asks for ports whose address contains the text).
    let ip_re = regex("ip")?;
    let ip6_re = regex("ip6")?;
    let image = get("image").map(|i| i.rsplit('/').next().unwrap_or(i).to_string());
    let flavor = get("flavor").map(|f| f.rsplit('/').next().unwrap_or(f).to_string());
    let exact = |k: &str| get(k).map(str::to_string);
    let (host, uuid, vm_state, task_state, user_id) = (
        exact("host"),
        exact("uuid"),
        exact("vm_state"),
        exact("task_state"),
        exact("user_id"),
    );
    let locked = get("locked").map(truthy);
    let tag_set = |k: &str| -> Vec<String> {
        get(k)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (tags, tags_any, not_tags, not_tags_any) = (
        tag_set("tags"),
        tag_set("tags-any"),
        tag_set("not-tags"),
        tag_set("not-tags-any"),
    );
    // Sort keys (default created_at desc, id as tie-break).
    let mut keys: Vec<(String, bool)> = Vec::new();
    for (n, k) in sort_keys.iter().enumerate() {
        if !SORT_KEYS.contains(&k.as_str()) {
            if at_least(mv, 2, 75) {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for query parameters sort_key. Value: {k}."
                )));
            }
            continue;
        }
        if (k == "host" || k == "node") && !admin {
            return Err(ApiError::forbidden(
                "Only administrators can sort servers by host",
            ));
        }
        let dir = sort_dirs.get(n).map(String::as_str).unwrap_or("desc");
        if dir != "asc" && dir != "desc" {
            return Err(ApiError::bad_request(format!(
                "Invalid input for query parameters sort_dir. Value: {dir}."
            )));
        }
        keys.push((k.clone(), dir == "desc"));
    }
    if keys.is_empty() {
        keys.push(("created_at".into(), true));
    }
    let cap = limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
    let unfiltered = name_re.is_none()
        && hostname_re.is_none()
        && reservation_re.is_none()
        && key_re.is_none()
        && ip_re.is_none()
        && ip6_re.is_none()
        && image.is_none()
        && flavor.is_none()
        && host.is_none()
        && uuid.is_none()
        && vm_state.is_none()
        && task_state.is_none()
        && user_id.is_none()
        && locked.is_none()
        && statuses.is_empty()
        && since.is_none()
        && before.is_none()
        && tags.is_empty()
        && tags_any.is_empty()
        && not_tags.is_empty()
        && not_tags_any.is_empty();
    if unfiltered && keys == [("created_at".to_string(), true)] {
        // The usual listing (no filter, newest first): the database sorts and pages, and the
        // rows after this page are never read. created_at is always the same RFC 3339 form,
        // so its text order is its JSON text order, which the general path sorts by.
        let after = match &marker {
            Some(m) => match idb::newest_first_position(&c.store, &scope, m)
                .await
                .map_err(db_error)?
            {
                Some(position) => Some(position),
                None => return Err(ApiError::bad_request(format!("marker [{m}] not found"))),
            },
            None => None,
        };
        let after = after.as_ref().map(|(t, id)| (t.as_str(), *id));
        let page = idb::newest_first(&c.store, &scope, after, cap + 1)
            .await
            .map_err(db_error)?;
        return Ok(page_of(page, cap, limit.is_some()));
    }
    let narrowed = column_filter(&ColumnFilters {
        host: &host,
        uuid: &uuid,
        user_id: &user_id,
        task_state: &task_state,
        vm_state: &vm_state,
        statuses: &statuses,
        since,
        before,
    });
    let mut instances = idb::instances_matching(&c.store, &scope, &narrowed)
        .await
        .map_err(db_error)?;
    instances.retain(|i| {
        let d = &i.data;
        let updated = stored_time(&i.updated_at);
        name_re.as_ref().is_none_or(|r| r.is_match(&d.display_name))
            && hostname_re.as_ref().is_none_or(|r| r.is_match(&d.hostname))
            && reservation_re
                .as_ref()
                .is_none_or(|r| r.is_match(&d.reservation_id))
            && key_re
                .as_ref()
                .is_none_or(|r| d.key_name.as_deref().is_some_and(|k| r.is_match(k)))
            && ip_re.as_ref().is_none_or(|r| has_address(i, 4, r))
            && ip6_re.as_ref().is_none_or(|r| has_address(i, 6, r))
            && image.as_ref().is_none_or(|x| &d.image_ref == x)
            && flavor.as_ref().is_none_or(|x| &d.flavor.flavorid == x)
            && host.as_ref().is_none_or(|x| i.host.as_ref() == Some(x))
            && uuid.as_ref().is_none_or(|x| &i.uuid == x)
            && vm_state.as_ref().is_none_or(|x| &i.vm_state == x)
            && task_state
                .as_ref()
                .is_none_or(|x| i.task_state.as_ref() == Some(x))
            && user_id.as_ref().is_none_or(|x| &i.user_id == x)
            && locked.is_none_or(|l| d.locked_by.is_some() == l)
            && (statuses.is_empty()
                || statuses.iter().any(|s| {
                    states::has_status(&i.vm_state, i.task_state.as_deref(), i.deleted, s)
                }))
            && since.is_none_or(|s| updated >= s)
            && before.is_none_or(|b| updated <= b)
            && tags.iter().all(|t| d.tags.contains(t))
            && (tags_any.is_empty() || tags_any.iter().any(|t| d.tags.contains(t)))
            && (not_tags.is_empty() || !not_tags.iter().all(|t| d.tags.contains(t)))
            && !not_tags_any.iter().any(|t| d.tags.contains(t))
    });
    let mut keyed: Vec<(Vec<SortKey>, Instance)> = instances
        .into_iter()
        .map(|i| {
            let values = keys
                .iter()
                .map(|(k, _)| SortKey::new(sort_value(&i, k)))
                .collect();
            (values, i)
        })
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| {
        for (n, (_, desc)) in keys.iter().enumerate() {
            let o = compare(&ka[n], &kb[n]);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        b.id.cmp(&a.id)
    });
    let mut instances: Vec<Instance> = keyed.into_iter().map(|(_, i)| i).collect();
    if let Some(m) = marker {
        match instances.iter().position(|i| i.uuid == m) {
            Some(p) => {
                instances.drain(..=p);
            }
            None => return Err(ApiError::bad_request(format!("marker [{m}] not found"))),
        }
    }
    Ok(page_of(instances, cap, limit.is_some()))
}

/// The list filters that instance columns can answer.
struct ColumnFilters<'a> {
    host: &'a Option<String>,
    uuid: &'a Option<String>,
    user_id: &'a Option<String>,
    task_state: &'a Option<String>,
    vm_state: &'a Option<String>,
    statuses: &'a [&'a str],
    since: Option<chrono::DateTime<chrono::Utc>>,
    before: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the database can filter before the exact checks in memory: equal columns, the vm
/// states the statuses allow, and `updated_at` within the changes-since/-before window
/// widened to whole seconds (stored times are UTC RFC 3339, so their text order is their time
/// order at that precision). Every instance the exact checks keep meets it.
fn column_filter(f: &ColumnFilters<'_>) -> idb::ColumnFilter {
    const SECONDS: &str = "%Y-%m-%dT%H:%M:%S";
    let from_statuses: Option<Vec<&str>> = if f.statuses.is_empty() {
        None
    } else {
        f.statuses
            .iter()
            .map(|s| states::vm_states_with_status(s))
            .collect::<Option<Vec<_>>>()
            .map(|sets| sets.concat())
    };
    let vm_states = match (f.vm_state, from_statuses) {
        (Some(v), Some(set)) => Some(
            set.iter()
                .filter(|s| **s == v)
                .map(|s| s.to_string())
                .collect(),
        ),
        (Some(v), None) => Some(vec![v.clone()]),
        (None, Some(set)) => {
            let mut set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            set.sort();
            set.dedup();
            Some(set)
        }
        (None, None) => None,
    };
    idb::ColumnFilter {
        host: f.host.clone(),
        uuid: f.uuid.clone(),
        user_id: f.user_id.clone(),
        task_state: f.task_state.clone(),
        vm_states,
        updated_since: f.since.map(|t| t.format(SECONDS).to_string()),
        updated_until: f.before.map(|t| {
            (t + chrono::Duration::seconds(1))
                .format(SECONDS)
                .to_string()
        }),
    }
}

/// The first `cap` of `instances` (those after the marker, in order); a next link when there
/// are more, or when a `limit` was asked for and exactly `cap` are left.
fn page_of(mut instances: Vec<Instance>, cap: usize, limited: bool) -> Listing {
    let full = instances.len() > cap || (limited && instances.len() == cap && cap > 0);
    instances.truncate(cap);
    Listing {
        instances,
        limit: full.then_some(cap),
    }
}

fn next_link(
    c: &Compute,
    query: &[(String, String)],
    listing: &Listing,
    path: &str,
) -> Option<Value> {
    let limit = listing.limit?;
    let last = listing.instances.last()?;
    let mut q: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "marker" && k != "limit")
        .cloned()
        .collect();
    q.push(("limit".into(), limit.to_string()));
    q.push(("marker".into(), last.uuid.clone()));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish();
    Some(json!([{"rel": "next", "href": format!("{}/v2.1/{path}?{encoded}", c.base_url())}]))
}

/// `GET /servers`: id, name, links.
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let listing = select(c, &auth, &mv, &query, false).await?;
    let servers: Vec<Value> = listing
        .instances
        .iter()
        .map(|i| json!({"id": i.uuid, "name": i.data.display_name, "links": view::links(c, &i.uuid)}))
        .collect();
    let mut body = json!({"servers": servers});
    if let Some(links) = next_link(c, &query, &listing, "servers") {
        body["servers_links"] = links;
    }
    Ok(Json(body))
}

/// `GET /servers/detail`: full bodies.
pub async fn detail(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let listing = select(c, &auth, &mv, &query, true).await?;
    let uuids: Vec<&str> = listing.instances.iter().map(|i| i.uuid.as_str()).collect();
    let faults = idb::latest_faults(&c.store, &uuids)
        .await
        .map_err(db_error)?;
    // The hosts' nodes in one read, for the servers whose host status the caller may see.
    let shown: Vec<&str> = listing
        .instances
        .iter()
        .filter(|i| visibility(&auth, &i.project_id).host_status)
        .filter_map(|i| i.host.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let hosts: HashMap<String, nodes::Node> = if shown.is_empty() {
        HashMap::new()
    } else {
        nodes::nodes_of(&c.store, &shown)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|n| (n.host.clone(), n))
            .collect()
    };
    let all: Vec<&Instance> = listing.instances.iter().collect();
    let mut groups = super::security_groups(c, &all).await?;
    let mut servers = Vec::new();
    for i in &listing.instances {
        let vis = visibility(&auth, &i.project_id);
        let status = match (&i.host, vis.host_status) {
            (_, false) => None,
            (None, true) => Some(String::new()),
            (Some(h), true) => Some(node_status(c, hosts.get(h))),
        };
        let mut server = view::server(
            c,
            i,
            faults.get(&i.uuid),
            status.as_deref(),
            &mv,
            vis,
            Shape::Full,
        );
        if let Some(list) = groups.remove(&i.uuid) {
            server["security_groups"] = list;
        }
        servers.push(server);
    }
    let mut body = json!({"servers": servers});
    if let Some(links) = next_link(c, &query, &listing, "servers/detail") {
        body["servers_links"] = links;
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        statuses: &[&str],
        vm_state: Option<&str>,
        since: Option<&str>,
        before: Option<&str>,
    ) -> idb::ColumnFilter {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        column_filter(&ColumnFilters {
            host: &None,
            uuid: &None,
            user_id: &None,
            task_state: &None,
            vm_state: &vm_state.map(str::to_string),
            statuses,
            since: since.map(at),
            before: before.map(at),
        })
    }

    #[test]
    fn the_database_filter_widens_times_to_whole_seconds() {
        let f = filter(
            &["SHUTOFF", "error"],
            Some("stopped"),
            Some("2026-01-01T10:00:00.7Z"),
            Some("2026-01-01T10:00:05.2Z"),
        );
        assert_eq!(f.vm_states, Some(vec!["stopped".to_string()]));
        assert_eq!(f.updated_since.as_deref(), Some("2026-01-01T10:00:00"));
        assert_eq!(f.updated_until.as_deref(), Some("2026-01-01T10:00:06"));
        let f = filter(&["ACTIVE", "REBUILD"], None, None, None);
        assert_eq!(
            f.vm_states,
            Some(vec!["active".to_string(), "error".into(), "stopped".into()])
        );
        assert_eq!(
            filter(&["ERROR"], Some("active"), None, None).vm_states,
            Some(vec![])
        );
        // A status no vm state pins down leaves the states to the exact check.
        assert_eq!(
            filter(&["ACTIVE", "DELETED"], None, None, None).vm_states,
            None
        );
        assert_eq!(filter(&[], None, None, None), idb::ColumnFilter::default());
    }
}
