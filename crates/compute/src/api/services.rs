//! Compute services (`nova/api/openstack/compute/services.py`): each compute host is a
//! `nova-compute` service (its heartbeats say whether it is up); the conductor and scheduler
//! running in this process are `nova-conductor` and `nova-scheduler` in the `internal` zone.
//! Admins disable, enable and force down compute services.
//!
//! Nova's services have an integer id (shown below 2.53) and a uuid (from 2.53); here both are
//! derived from what identifies the service (the compute node's uuid, or binary and host), so
//! they are stable across restarts without a column of their own.

use super::{AppState, Mv, at_least};
use crate::db::nodes::{self, Node};
use crate::db::services::{self as service_db, ServiceChange};
use crate::service::{Compute, db_error};
use axum::{
    Json,
    extract::{Path, Query},
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};

/// The zone of the services that are not compute hosts (`internal_service_availability_zone`).
pub(crate) const INTERNAL_ZONE: &str = "internal";

/// The binary of compute host services.
pub(crate) const COMPUTE_BINARY: &str = "nova-compute";

/// Namespace of the uuids derived for services (a fixed random uuid).
const SERVICE_NAMESPACE: uuid::Uuid = uuid::uuid!("2f7d3c9e-8b1a-4e52-9c6d-5a0e71b3f4d8");

/// A service as `os-services` and the availability zone detail show it.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub binary: &'static str,
    pub host: String,
    pub zone: String,
    /// The id shown below 2.53.
    pub legacy_id: i64,
    /// The id shown from 2.53.
    pub uuid: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub up: bool,
    /// Nova's format (`%Y-%m-%dT%H:%M:%S.%f`, UTC).
    pub updated_at: Option<String>,
}

/// The name of the host this API process runs on (`[compute] host`, else the hostname).
pub(crate) fn local_host(c: &Compute) -> String {
    if !c.config.host.is_empty() {
        return c.config.host.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// An RFC 3339 time in Nova's format (`2026-01-02T03:04:05.000000`); `None` if unparsable.
pub(crate) fn nova_time(rfc3339: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| {
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()
    })
}

/// A uuid derived from `name` (an RFC 4122 version 5 uuid in a namespace of our own).
pub(crate) fn stable_uuid(name: &str) -> String {
    let mut data = SERVICE_NAMESPACE.as_bytes().to_vec();
    data.extend_from_slice(name.as_bytes());
    let hash = openssl::sha::sha1(&data);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A positive 31-bit integer derived from `name` (the ids shown below 2.53).
pub(crate) fn legacy_id(name: &str) -> i64 {
    let hash = openssl::sha::sha1(name.as_bytes());
    let n = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]) & 0x7fff_ffff;
    i64::from(n.max(1))
}

/// Whether a compute host is up: heartbeats younger than `service_down_time`, not forced down.
pub(crate) fn node_is_up(c: &Compute, node: &Node, now: chrono::DateTime<chrono::Utc>) -> bool {
    let down_after =
        chrono::Duration::seconds(i64::try_from(c.config.service_down_time).unwrap_or(i64::MAX));
    !node.is_down(now, down_after)
}

/// The `nova-compute` service of a compute host.
pub(crate) fn compute_service(
    c: &Compute,
    node: &Node,
    aggregates: &[crate::db::aggregates::Aggregate],
    now: chrono::DateTime<chrono::Utc>,
) -> Service {
    Service {
        binary: COMPUTE_BINARY,
        host: node.host.clone(),
        zone: crate::db::aggregates::host_zone(
            aggregates,
            &node.host,
            &c.config.default_availability_zone,
        ),
        legacy_id: legacy_id(&node.node_uuid),
        uuid: stable_uuid(&format!("{COMPUTE_BINARY}:{}", node.node_uuid)),
        disabled: node.disabled,
        disabled_reason: node.disabled_reason.clone(),
        forced_down: node.forced_down,
        up: node_is_up(c, node, now),
        updated_at: nova_time(&node.heartbeat_at),
    }
}

/// The services of this process (conductor and scheduler): up while it answers.
fn internal_services(c: &Compute, now: chrono::DateTime<chrono::Utc>) -> Vec<Service> {
    let host = local_host(c);
    ["nova-conductor", "nova-scheduler"]
        .into_iter()
        .map(|binary| Service {
            binary,
            host: host.clone(),
            zone: INTERNAL_ZONE.into(),
            legacy_id: legacy_id(&format!("{binary}@{host}")),
            uuid: stable_uuid(&format!("{binary}@{host}")),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            up: true,
            updated_at: Some(now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        })
        .collect()
}

/// Every service: this process's, then the compute hosts' by host name.
pub(crate) async fn services(c: &Compute) -> Result<Vec<Service>, ApiError> {
    let now = chrono::Utc::now();
    let mut all = internal_services(c, now);
    let aggregates = crate::db::aggregates::aggregates(&c.store)
        .await
        .map_err(db_error)?;
    for node in nodes::nodes(&c.store).await.map_err(db_error)? {
        all.push(compute_service(c, &node, &aggregates, now));
    }
    Ok(all)
}

/// From 2.75 unknown query parameters are refused (Nova's `additionalProperties: false`).
pub(crate) fn strict_query(
    mv: &Mv,
    query: &[(String, String)],
    allowed: &[&str],
) -> Result<(), ApiError> {
    if !at_least(mv, 2, 75) {
        return Ok(());
    }
    match query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::bad_request(format!(
            "Invalid input for query parameters {k}. Additional properties are not allowed \
             ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// The last value of query parameter `key`.
pub(crate) fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Nova's `parameter_types.boolean`: JSON booleans and the usual spellings.
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => bool_text(s),
        _ => None,
    }
}

/// `oslo_utils.strutils.bool_from_string(strict=True)`.
pub(crate) fn bool_text(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn body(s: &Service, mv: &Mv) -> Value {
    let mut b = Map::new();
    if at_least(mv, 2, 53) {
        b.insert("id".into(), json!(s.uuid));
    } else {
        b.insert("id".into(), json!(s.legacy_id));
    }
    b.insert("binary".into(), json!(s.binary));
    b.insert("host".into(), json!(s.host));
    b.insert("zone".into(), json!(s.zone));
    b.insert(
        "status".into(),
        json!(if s.disabled { "disabled" } else { "enabled" }),
    );
    b.insert("state".into(), json!(if s.up { "up" } else { "down" }));
    b.insert("updated_at".into(), json!(s.updated_at));
    b.insert("disabled_reason".into(), json!(s.disabled_reason));
    if at_least(mv, 2, 11) {
        b.insert("forced_down".into(), json!(s.forced_down));
    }
    Value::Object(b)
}

/// `GET /os-services[?host=&binary=]`
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-services:list", &json!({}))?;
    strict_query(&mv, &query, &["host", "binary"])?;
    let host = query_value(&query, "host").filter(|h| !h.is_empty());
    let binary = query_value(&query, "binary").filter(|b| !b.is_empty());
    let list: Vec<Value> = services(&state.0)
        .await?
        .iter()
        .filter(|s| host.is_none_or(|h| s.host == h) && binary.is_none_or(|b| s.binary == b))
        .map(|s| body(s, &mv))
        .collect();
    Ok(Json(json!({"services": list})))
}

fn not_compute(binary: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Updating a {binary} service is not supported. Only nova-compute services can be \
         updated."
    ))
}

fn invalid(field: &str, v: &Value) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {v}."
    ))
}

/// The body's fields after the schema of the request's microversion.
struct UpdateBody {
    status: Option<bool>,
    disabled_reason: Option<String>,
    forced_down: Option<bool>,
    host: Option<String>,
    binary: Option<String>,
}

fn parse_update(body: &Value, mv: &Mv) -> Result<UpdateBody, ApiError> {
    let Some(b) = body.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute body. Value: {body}. {body} is not of type \
             'object'"
        )));
    };
    let allowed: &[&str] = if at_least(mv, 2, 53) {
        &["status", "disabled_reason", "forced_down"]
    } else if at_least(mv, 2, 11) {
        &["host", "binary", "disabled_reason", "forced_down"]
    } else {
        &["host", "binary", "disabled_reason"]
    };
    if let Some(extra) = b.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let text = |field: &str, max: usize| -> Result<Option<String>, ApiError> {
        match b.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => {
                Ok(Some(s.clone()))
            }
            Some(v) => Err(invalid(field, v)),
        }
    };
    let status = match b.get("status") {
        None => None,
        Some(Value::String(s)) if s == "enabled" => Some(false),
        Some(Value::String(s)) if s == "disabled" => Some(true),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute status. Value: {v}. {v} is not one of \
                 ['enabled', 'disabled']"
            )));
        }
    };
    let forced_down = match b.get("forced_down") {
        None => None,
        Some(v) => Some(boolean(v).ok_or_else(|| invalid("forced_down", v))?),
    };
    let host = text("host", 255)?;
    if let Some(h) = &host
        && !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(invalid("host", &json!(h)));
    }
    let parsed = UpdateBody {
        status,
        disabled_reason: text("disabled_reason", 255)?,
        forced_down,
        host,
        binary: text("binary", 255)?,
    };
    if !at_least(mv, 2, 53) {
        for (field, value) in [("host", &parsed.host), ("binary", &parsed.binary)] {
            if value.is_none() {
                return Err(ApiError::bad_request(format!(
                    "'{field}' is a required property"
                )));
            }
        }
    }
    Ok(parsed)
}

fn now() -> String {
    ferrostack_store::now_rfc3339()
}

/// `PUT /os-services/{id}`: from 2.53 `{id}` is the service uuid and the body says what
/// changes; before, `{id}` is the action (`enable`, `disable`, `disable-log-reason`,
/// `force-down` from 2.11) and the body names the host and binary.
pub async fn update(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let request = parse_update(&body_in, &mv)?;
    if at_least(&mv, 2, 53) {
        update_v253(&auth, &state, &mv, &id, request).await
    } else {
        update_v21(&auth, &state, &mv, &id, request).await
    }
}

async fn update_v253(
    auth: &Auth,
    state: &AppState,
    mv: &Mv,
    id: &str,
    request: UpdateBody,
) -> Result<Json<Value>, ApiError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::bad_request(format!("Invalid uuid {id}")));
    }
    auth.enforce("os_compute_api:os-services:update", &json!({}))?;
    let c = &state.0;
    let service = services(c)
        .await?
        .into_iter()
        .find(|s| s.uuid == id)
        .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    if service.binary != COMPUTE_BINARY {
        return Err(not_compute(service.binary));
    }
    let mut change = ServiceChange::default();
    match request.status {
        Some(false) => {
            if request.disabled_reason.is_some() {
                return Err(ApiError::bad_request(
                    "Specifying 'disabled_reason' with status 'enabled' is invalid.",
                ));
            }
            change.disabled = Some((false, None));
        }
        Some(true) => change.disabled = Some((true, request.disabled_reason.clone())),
        None => {}
    }
    change.forced_down = request.forced_down;
    if change == ServiceChange::default() {
        return Err(ApiError::bad_request(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
        ));
    }
    if !service_db::update(&c.store, &service.host, &change, &now())
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::not_found(format!(
            "Service {id} could not be found."
        )));
    }
    tracing::info!(host = %service.host, ?change, "compute service updated");
    let updated = services(c)
        .await?
        .into_iter()
        .find(|s| s.uuid == id)
        .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    let mut shown = body(&updated, mv);
    shown["forced_down"] = json!(updated.forced_down);
    Ok(Json(json!({"service": shown})))
}

async fn update_v21(
    auth: &Auth,
    state: &AppState,
    mv: &Mv,
    action: &str,
    request: UpdateBody,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-services:update", &json!({}))?;
    let host = request.host.unwrap_or_default();
    let binary = request.binary.unwrap_or_default();
    let (change, mut reply) = match action {
        "enable" => (
            ServiceChange {
                disabled: Some((false, None)),
                ..Default::default()
            },
            json!({"host": host, "binary": binary, "status": "enabled"}),
        ),
        "disable" => (
            ServiceChange {
                disabled: Some((true, None)),
                ..Default::default()
            },
            json!({"host": host, "binary": binary, "status": "disabled"}),
        ),
        "disable-log-reason" => {
            let Some(reason) = request.disabled_reason else {
                return Err(ApiError::bad_request("Missing disabled reason field"));
            };
            (
                ServiceChange {
                    disabled: Some((true, Some(reason.clone()))),
                    ..Default::default()
                },
                json!({"host": host, "binary": binary, "status": "disabled",
                       "disabled_reason": reason}),
            )
        }
        "force-down" if at_least(mv, 2, 11) => {
            let Some(forced_down) = request.forced_down else {
                return Err(ApiError::bad_request("Missing forced_down field"));
            };
            (
                ServiceChange {
                    forced_down: Some(forced_down),
                    ..Default::default()
                },
                json!({"host": host, "binary": binary, "forced_down": forced_down}),
            )
        }
        _ => return Err(ApiError::not_found("Unknown action")),
    };
    if binary != COMPUTE_BINARY {
        return Err(not_compute(&binary));
    }
    if !service_db::update(&state.0.store, &host, &change, &now())
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::not_found(format!(
            "Could not find binary {binary} on host {host}."
        )));
    }
    tracing::info!(%host, ?change, "compute service updated");
    if let Some(obj) = reply.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    Ok(Json(json!({"service": reply})))
}
