//! Hypervisors (`nova/api/openstack/compute/hypervisors.py`): one per compute host. Ids are
//! the compute node's uuid (its Placement provider) from 2.53 and a stable integer derived
//! from it before; resources (before 2.88) are the host's reported inventory and its usage in
//! Placement, and `running_vms` counts the live servers on the host.
//!
//! `hypervisor_type`, `hypervisor_version` and `cpu_info` are what the host's agent reported
//! from its virt driver (null, null and `{}` for a host whose agent never did). The agent does
//! not report the host's IP, so `host_ip` is null; uptime is known for the host this API runs
//! on only.

use super::services::{
    Service, bool_text, compute_service, legacy_id, local_host, query_value, strict_query,
};
use super::{AppState, Mv, at_least};
use crate::db::instances::{self as idb, Instance};
use crate::db::nodes::{self, Node};
use crate::service::{Compute, db_error};
use axum::{
    Json,
    extract::{Path, Query},
};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};

/// Nova's `api.max_limit`.
const MAX_LIMIT: usize = 1000;

/// A compute node with what its views need.
struct Hypervisor {
    node: Node,
    service: Service,
}

impl Hypervisor {
    fn id(&self, mv: &Mv) -> Value {
        if at_least(mv, 2, 53) {
            json!(self.node.node_uuid)
        } else {
            json!(legacy_id(&self.node.node_uuid))
        }
    }

    fn id_text(&self, mv: &Mv) -> String {
        match self.id(mv) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

async fn hypervisors(c: &Compute) -> Result<Vec<Hypervisor>, ApiError> {
    let now = chrono::Utc::now();
    let aggregates = crate::db::aggregates::aggregates(&c.store)
        .await
        .map_err(db_error)?;
    Ok(nodes::nodes(&c.store)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|node| Hypervisor {
            service: compute_service(c, &node, &aggregates, now),
            node,
        })
        .collect())
}

/// Resource figures of one host (the fields below 2.88 and the statistics).
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    vcpus: i64,
    memory_mb: i64,
    local_gb: i64,
    vcpus_used: i64,
    memory_mb_used: i64,
    local_gb_used: i64,
    current_workload: i64,
    running_vms: i64,
}

impl Figures {
    fn fields(&self) -> [(&'static str, i64); 11] {
        let free_disk = self.local_gb - self.local_gb_used;
        [
            ("vcpus", self.vcpus),
            ("memory_mb", self.memory_mb),
            ("local_gb", self.local_gb),
            ("vcpus_used", self.vcpus_used),
            ("memory_mb_used", self.memory_mb_used),
            ("local_gb_used", self.local_gb_used),
            ("free_ram_mb", self.memory_mb - self.memory_mb_used),
            ("free_disk_gb", free_disk),
            ("current_workload", self.current_workload),
            ("running_vms", self.running_vms),
            ("disk_available_least", free_disk),
        ]
    }
}

async fn figures(c: &Compute, node: &Node, on_host: &[Instance]) -> Result<Figures, ApiError> {
    let usage = match c.placement.provider_usages(&node.node_uuid).await {
        Ok(u) => u,
        // A host whose provider is not (or no longer) in Placement uses nothing there.
        Err(ferrostack_placement::PlacementError::ProviderNotFound(_)) => Default::default(),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let used = |rc: &str| usage.get(rc).copied().unwrap_or(0);
    Ok(Figures {
        vcpus: node.vcpus,
        memory_mb: node.memory_mb,
        local_gb: node.disk_gb,
        vcpus_used: used("VCPU"),
        memory_mb_used: used("MEMORY_MB"),
        local_gb_used: used("DISK_GB"),
        current_workload: on_host.iter().filter(|i| i.task_state.is_some()).count() as i64,
        running_vms: on_host.len() as i64,
    })
}

/// The output of `uptime` on this host (what libvirt's driver reports), from `/proc`.
fn local_uptime() -> Option<String> {
    let seconds: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let load: Vec<String> = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .take(3)
        .map(String::from)
        .collect();
    let total = seconds as u64;
    let (days, hours, minutes) = (total / 86400, total % 86400 / 3600, total % 3600 / 60);
    let up = match days {
        0 => format!("{hours:2}:{minutes:02}"),
        1 => format!("1 day, {hours:2}:{minutes:02}"),
        d => format!("{d} days, {hours:2}:{minutes:02}"),
    };
    Some(format!(
        " {} up {up},  0 users,  load average: {}",
        chrono::Local::now().format("%H:%M:%S"),
        load.join(", ")
    ))
}

/// The uptime of `node`'s host when it is up and is the host this API runs on.
fn uptime(c: &Compute, h: &Hypervisor) -> Option<String> {
    if h.service.up && h.node.host == local_host(c) {
        local_uptime()
    } else {
        None
    }
}

/// Nova's `_view_hypervisor`.
async fn view(
    c: &Compute,
    h: &Hypervisor,
    detail: bool,
    mv: &Mv,
    servers: Option<&[Instance]>,
    with_servers: bool,
) -> Result<Value, ApiError> {
    let mut b = Map::new();
    b.insert("id".into(), h.id(mv));
    b.insert(
        "hypervisor_hostname".into(),
        json!(h.node.hypervisor_hostname()),
    );
    b.insert(
        "state".into(),
        json!(if h.service.up { "up" } else { "down" }),
    );
    b.insert(
        "status".into(),
        json!(if h.service.disabled {
            "disabled"
        } else {
            "enabled"
        }),
    );
    if detail {
        // The same facts as the scheduler's capabilities filter sees (`db::nodes`).
        b.insert("hypervisor_type".into(), json!(h.node.hypervisor_type()));
        b.insert(
            "hypervisor_version".into(),
            json!(h.node.hypervisor_version()),
        );
        b.insert("host_ip".into(), Value::Null);
        let service_id = if at_least(mv, 2, 53) {
            json!(h.service.uuid)
        } else {
            json!(h.service.legacy_id)
        };
        b.insert(
            "service".into(),
            json!({"id": service_id, "host": h.node.host,
                   "disabled_reason": h.service.disabled_reason}),
        );
        if at_least(mv, 2, 88) {
            b.insert("uptime".into(), json!(uptime(c, h)));
        } else {
            let on_host = idb::instances_on_host(&c.store, &h.node.host)
                .await
                .map_err(db_error)?;
            for (k, v) in figures(c, &h.node, &on_host).await?.fields() {
                b.insert(k.into(), json!(v));
            }
            let cpu_info = h.node.cpu_info().unwrap_or("{}");
            if at_least(mv, 2, 28) {
                let parsed = serde_json::from_str(cpu_info).unwrap_or_else(|_| json!({}));
                b.insert("cpu_info".into(), parsed);
            } else {
                b.insert("cpu_info".into(), json!(cpu_info));
            }
        }
    }
    match servers {
        Some(list) if !list.is_empty() => {
            let template = &c.config.instance_name_template;
            let shown: Vec<Value> = list
                .iter()
                .map(|i| json!({"name": i.domain_name(template), "uuid": i.uuid}))
                .collect();
            b.insert("servers".into(), json!(shown));
        }
        _ if with_servers && at_least(mv, 2, 75) => {
            b.insert("servers".into(), json!([]));
        }
        _ => {}
    }
    Ok(Value::Object(b))
}

fn bad_query(key: &str, value: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for query parameters {key}. Value: {value}."
    ))
}

/// `with_servers` (from 2.53; a strict boolean).
fn with_servers(mv: &Mv, query: &[(String, String)]) -> Result<bool, ApiError> {
    if !at_least(mv, 2, 53) {
        return Ok(false);
    }
    match query_value(query, "with_servers") {
        None => Ok(false),
        Some(v) => bool_text(v).ok_or_else(|| bad_query("with_servers", v)),
    }
}

/// Hosts whose name contains `pattern` (Nova's `LIKE %pattern%`); 404 when none.
fn matching(all: Vec<Hypervisor>, pattern: &str) -> Result<Vec<Hypervisor>, ApiError> {
    let found: Vec<Hypervisor> = all
        .into_iter()
        .filter(|h| h.node.host.contains(pattern))
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(found)
}

/// `GET /os-hypervisors` and `/os-hypervisors/detail`.
async fn list(
    state: &AppState,
    mv: &Mv,
    query: &[(String, String)],
    detail: bool,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let mut allowed = vec![];
    if at_least(mv, 2, 33) {
        allowed.extend(["limit", "marker"]);
    }
    if at_least(mv, 2, 53) {
        allowed.extend(["hypervisor_hostname_pattern", "with_servers"]);
    }
    strict_query(mv, query, &allowed)?;
    let with_servers = with_servers(mv, query)?;
    let pattern = if at_least(mv, 2, 53) {
        query_value(query, "hypervisor_hostname_pattern")
    } else {
        None
    };
    let paged = at_least(mv, 2, 33);
    let limit = match query_value(query, "limit").filter(|_| paged) {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| bad_query("limit", v))?
                .min(MAX_LIMIT),
        ),
        None => None,
    };
    let marker = query_value(query, "marker").filter(|_| paged);
    let mut all = hypervisors(c).await?;
    if let Some(pattern) = pattern {
        if limit.is_some() || marker.is_some() {
            return Err(ApiError::bad_request(
                "Paging over hypervisors with the hypervisor_hostname_pattern query parameter \
                 is not supported.",
            ));
        }
        all = matching(all, pattern)?;
    }
    if let Some(marker) = marker {
        let at = all
            .iter()
            .position(|h| h.id_text(mv) == marker)
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        all.drain(..=at);
    }
    let page_size = limit.unwrap_or(MAX_LIMIT);
    all.truncate(page_size);
    let mut shown = Vec::new();
    for h in &all {
        let servers = if with_servers {
            Some(
                idb::instances_on_host(&c.store, &h.node.host)
                    .await
                    .map_err(db_error)?,
            )
        } else {
            None
        };
        shown.push(view(c, h, detail, mv, servers.as_deref(), with_servers).await?);
    }
    let mut body = json!({"hypervisors": shown});
    if paged
        && pattern.is_none()
        && page_size > 0
        && all.len() == page_size
        && let Some(last) = all.last()
    {
        let path = if detail {
            "os-hypervisors/detail"
        } else {
            "os-hypervisors"
        };
        let base = format!("{}/v2.1/{path}", c.base_url());
        // Nova: the request's parameters sorted, `marker` replaced, form-encoded.
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "marker")
            .cloned()
            .collect();
        params.sort();
        params.push(("marker".into(), last.id_text(mv)));
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        body["hypervisors_links"] = json!([{"rel": "next", "href": format!("{base}?{encoded}")}]);
    }
    Ok(Json(body))
}

/// `GET /os-hypervisors`
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-hypervisors:list", &json!({}))?;
    list(&state, &mv, &query, false).await
}

/// `GET /os-hypervisors/detail`
pub async fn detail(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-hypervisors:list-detail", &json!({}))?;
    list(&state, &mv, &query, true).await
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Hypervisor with ID '{id}' could not be found."))
}

/// The hypervisor `{id}` names: a uuid from 2.53 (400 otherwise), an integer before (404
/// otherwise).
async fn find(c: &Compute, mv: &Mv, id: &str) -> Result<Hypervisor, ApiError> {
    if at_least(mv, 2, 53) {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::bad_request(format!("Invalid uuid {id}")));
        }
    } else if id.parse::<i64>().is_err() {
        return Err(not_found(id));
    }
    hypervisors(c)
        .await?
        .into_iter()
        .find(|h| h.id_text(mv).eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found(id))
}

/// `GET /os-hypervisors/{id}[?with_servers=]`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let allowed: &[&str] = if at_least(&mv, 2, 53) {
        &["with_servers"]
    } else {
        &[]
    };
    strict_query(&mv, &query, allowed)?;
    let with_servers = with_servers(&mv, &query)?;
    auth.enforce("os_compute_api:os-hypervisors:show", &json!({}))?;
    let c = &state.0;
    let h = find(c, &mv, &id).await?;
    let servers = if with_servers {
        Some(
            idb::instances_on_host(&c.store, &h.node.host)
                .await
                .map_err(db_error)?,
        )
    } else {
        None
    };
    let shown = view(c, &h, true, &mv, servers.as_deref(), with_servers).await?;
    Ok(Json(json!({"hypervisor": shown})))
}

/// A route removed at `max` answers 404 from then on, as Nova's version-gated methods.
fn gone_from(mv: &Mv, major: u16, minor: u16) -> Result<(), ApiError> {
    if at_least(mv, major, minor) {
        Err(ApiError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

/// `GET /os-hypervisors/{id}/uptime` (before 2.88): 400 when the host is down, 501 when its
/// uptime cannot be read from here.
pub async fn uptime_show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    gone_from(&mv, 2, 88)?;
    auth.enforce("os_compute_api:os-hypervisors:uptime", &json!({}))?;
    let c = &state.0;
    let h = find(c, &mv, &id).await?;
    if !h.service.up {
        return Err(ApiError::bad_request(format!(
            "Compute service of {} is unavailable at this time.",
            h.node.host
        )));
    }
    let Some(up) = uptime(c, &h) else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "Action is not supported.",
        ));
    };
    let mut shown = view(c, &h, false, &mv, None, false).await?;
    shown["uptime"] = json!(up);
    Ok(Json(json!({"hypervisor": shown})))
}

/// `GET /os-hypervisors/{pattern}/search` (before 2.53).
pub async fn search(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    gone_from(&mv, 2, 53)?;
    auth.enforce("os_compute_api:os-hypervisors:search", &json!({}))?;
    let c = &state.0;
    let mut shown = Vec::new();
    for h in matching(hypervisors(c).await?, &pattern)? {
        shown.push(view(c, &h, false, &mv, None, false).await?);
    }
    Ok(Json(json!({"hypervisors": shown})))
}

/// `GET /os-hypervisors/{pattern}/servers` (before 2.53): matching hosts with their servers.
pub async fn servers(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(pattern): Path<String>,
) -> Result<Json<Value>, ApiError> {
    gone_from(&mv, 2, 53)?;
    auth.enforce("os_compute_api:os-hypervisors:servers", &json!({}))?;
    let c = &state.0;
    let mut shown = Vec::new();
    for h in matching(hypervisors(c).await?, &pattern)? {
        let on_host = idb::instances_on_host(&c.store, &h.node.host)
            .await
            .map_err(db_error)?;
        shown.push(view(c, &h, false, &mv, Some(&on_host), false).await?);
    }
    Ok(Json(json!({"hypervisors": shown})))
}

/// `GET /os-hypervisors/statistics` (before 2.88): the figures summed over the enabled hosts.
pub async fn statistics(auth: Auth, state: AppState, mv: Mv) -> Result<Json<Value>, ApiError> {
    gone_from(&mv, 2, 88)?;
    auth.enforce("os_compute_api:os-hypervisors:statistics", &json!({}))?;
    let c = &state.0;
    let mut stats = Map::new();
    stats.insert("count".into(), json!(0));
    for (k, _) in Figures::default().fields() {
        stats.insert(k.into(), json!(0));
    }
    let mut count = 0;
    for h in hypervisors(c).await? {
        if h.service.disabled {
            continue;
        }
        count += 1;
        let on_host = idb::instances_on_host(&c.store, &h.node.host)
            .await
            .map_err(db_error)?;
        for (k, v) in figures(c, &h.node, &on_host).await?.fields() {
            let sum = stats.get(k).and_then(Value::as_i64).unwrap_or(0) + v;
            stats.insert(k.into(), json!(sum));
        }
    }
    stats.insert("count".into(), json!(count));
    Ok(Json(json!({"hypervisor_statistics": stats})))
}
