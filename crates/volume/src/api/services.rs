//! The services and their backend (`cinder/api/v3/services.py`, `contrib/hosts.py`,
//! `contrib/capabilities.py`): `GET /v3/os-services` with each service's state from its
//! heartbeat ([`crate::heartbeat`]), `PUT /v3/os-services/{enable,disable,disable-log-reason}`,
//! the deprecated hosts API (`GET /v3/os-hosts[/{host}]`; Cinder's host update raises
//! `NotImplementedError`, so it is not served) and `GET /v3/capabilities/{backend}`.
//!
//! Not served: `freeze`, `thaw`, `failover_host` (replication), `get-log`/`set-log`.

use super::snapshots::host_matches;
use super::views::timestamp;
use super::{AppState, Mv, at_least, authorize, ok, query_map};
use crate::errors;
use crate::heartbeat::{self, ServiceRow, VOLUME_BINARY};
use crate::model::{Snapshot, Volume};
use crate::scheduler;
use crate::service::Volumes;
use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/os-services", get(index))
        .route("/os-services/enable", put(enable))
        .route("/os-services/disable", put(disable))
        .route("/os-services/disable-log-reason", put(disable_log_reason))
        .route("/os-hosts", get(hosts))
        .route("/os-hosts/{host}", get(host_show))
        .route("/capabilities/{backend}", get(capabilities))
}

/// `GET /v3/os-services` (admins; filters `host`, `binary`).
async fn index(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:services:index")?;
    let query = query_map(raw.as_deref());
    let backend_up = v.driver.stats().await.is_ok();
    let own_backend = heartbeat::volume_service_host(&v);
    let now = chrono::Utc::now();
    let rows: Vec<Value> = heartbeat::list(&v.db)
        .await?
        .into_iter()
        .filter(|s| query.get("binary").is_none_or(|b| *b == s.binary))
        .filter(|s| {
            query
                .get("host")
                .is_none_or(|h| host_matches(Some(&s.host), h))
        })
        .map(|s| {
            let backend_state = match s.host == own_backend {
                true => Some(if backend_up { "up" } else { "down" }),
                false => None,
            };
            service_view(&s, &mv, now, backend_state)
        })
        .collect();
    Ok(ok("services", Value::Array(rows)))
}

/// A service as `os-services` shows it (with the extended services' fields).
fn service_view(
    s: &ServiceRow,
    mv: &Mv,
    now: chrono::DateTime<chrono::Utc>,
    backend_state: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("binary".into(), json!(s.binary));
    m.insert("host".into(), json!(s.host));
    m.insert("zone".into(), json!(s.zone));
    m.insert("status".into(), json!(status_word(s.disabled)));
    m.insert(
        "state".into(),
        json!(if s.is_up(now) { "up" } else { "down" }),
    );
    m.insert("updated_at".into(), json!(timestamp(&s.updated_at)));
    m.insert("disabled_reason".into(), json!(s.disabled_reason));
    if s.binary == VOLUME_BINARY {
        if at_least(mv, 49) {
            m.insert("backend_state".into(), json!(backend_state));
        }
        m.insert("replication_status".into(), json!("disabled"));
        m.insert("active_backend_id".into(), Value::Null);
        m.insert("frozen".into(), json!(false));
    }
    if at_least(mv, 7) {
        m.insert("cluster".into(), Value::Null);
    }
    Value::Object(m)
}

fn status_word(disabled: bool) -> &'static str {
    if disabled { "disabled" } else { "enabled" }
}

/// The body of `enable` / `disable` (`schemas/services.py`); `disable-log-reason` adds
/// `disabled_reason`.
fn service_schema(with_reason: bool) -> Schema {
    let mut properties = json!({
        "binary": {"type": "string", "minLength": 1, "maxLength": 255},
        "host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9-._#@:/+\\[\\]]*$"},
        "cluster": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
        "service": {"type": "string", "minLength": 1, "maxLength": 255},
    });
    if with_reason {
        properties["disabled_reason"] = json!({"type": "string", "minLength": 1, "maxLength": 255});
    }
    Schema::new(json!({
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": ["binary"]}, {"required": ["service"]}],
        "additionalProperties": false,
    }))
}

static ENABLE_DISABLE: LazyLock<Schema> = LazyLock::new(|| service_schema(false));
static DISABLE_LOG_REASON: LazyLock<Schema> = LazyLock::new(|| service_schema(true));

/// What an enable/disable names: `host`, `service` and `binary` as given.
struct Named {
    host: String,
    service: String,
    binary: String,
}

/// Reads the body (after its schema) and finds the service (`Service.get_by_args`: 404 when
/// no service of that binary runs on the host or one of its backends).
async fn named_service(v: &Volumes, body: &Value) -> Result<(Named, ServiceRow), ApiError> {
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let named = Named {
        host: text("host"),
        service: text("service"),
        binary: text("binary"),
    };
    if named.host.is_empty() {
        return Err(errors::invalid_input("Host field is missing."));
    }
    let binary = match named.binary.is_empty() {
        true => named.service.clone(),
        false => named.binary.clone(),
    };
    let found = heartbeat::list(&v.db)
        .await?
        .into_iter()
        .find(|s| s.binary == binary && host_matches(Some(&s.host), &named.host));
    match found {
        Some(service) => Ok((named, service)),
        None => Err(ApiError::not_found(format!(
            "Service {binary} could not be found on host {}.",
            named.host
        ))),
    }
}

/// Sets the service's `disabled` flag and answers as Cinder (`host`, `service`, `binary` as
/// given, the new status).
async fn change(
    v: &Volumes,
    auth: &Auth,
    body: &Value,
    disabled: bool,
    reason: Option<Option<String>>,
) -> Result<Response, ApiError> {
    authorize(auth, "volume_extension:services:update")?;
    let (named, service) = named_service(v, body).await?;
    let stored_reason = match (&reason, disabled) {
        (Some(r), _) => r.clone(),
        (None, true) => service.disabled_reason.clone(),
        (None, false) => None,
    };
    heartbeat::set_disabled(
        &v.db,
        &service.host,
        &service.binary,
        disabled,
        stored_reason.as_deref(),
    )
    .await?;
    let mut answer = json!({
        "host": named.host,
        "service": named.service,
        "binary": named.binary,
        "status": status_word(disabled),
        "disabled": disabled,
    });
    if let Some(reason) = reason {
        answer["disabled_reason"] = json!(reason);
    }
    Ok(Json(answer).into_response())
}

/// `PUT /v3/os-services/enable` `{"host", "binary"}` (admins).
async fn enable(
    State(v): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    ENABLE_DISABLE.validate(&body)?;
    change(&v, &auth, &body, false, Some(None)).await
}

/// `PUT /v3/os-services/disable` `{"host", "binary"}` (admins): a disabled `cinder-volume`
/// gets no new volumes.
async fn disable(
    State(v): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    ENABLE_DISABLE.validate(&body)?;
    change(&v, &auth, &body, true, None).await
}

/// `PUT /v3/os-services/disable-log-reason` `{"host", "binary", "disabled_reason"}`.
async fn disable_log_reason(
    State(v): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    DISABLE_LOG_REASON.validate(&body)?;
    let reason = body
        .get("disabled_reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if body.get("disabled_reason").is_some() && reason.is_none() {
        return Err(errors::invalid_input(
            "disabled_reason has a minimum character requirement of 1.",
        ));
    }
    change(&v, &auth, &body, true, Some(reason)).await
}

// ---------------------------------------------------------------------------------------------
// os-hosts (deprecated in Cinder, still served)

/// `GET /v3/os-hosts[?zone=]` (admins): the enabled services.
async fn hosts(
    State(v): AppState,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:hosts")?;
    let zone = query_map(raw.as_deref()).remove("zone").unwrap_or_default();
    let now = chrono::Utc::now();
    let rows: Vec<Value> = heartbeat::list(&v.db)
        .await?
        .into_iter()
        .filter(|s| !s.disabled && (zone.is_empty() || s.zone == zone))
        .map(|s| {
            json!({
                "host_name": s.host,
                "service": s.binary,
                "zone": s.zone,
                "service-status": if s.is_up(now) { "available" } else { "unavailable" },
                "service-state": status_word(s.disabled),
                "last-update": timestamp(&s.updated_at),
            })
        })
        .collect();
    Ok(ok("hosts", Value::Array(rows)))
}

/// Volume count and gigabytes (as strings, as Cinder's view) of `volumes`.
fn usage(volumes: &[&Volume], snapshots: &[&Snapshot], host: &str, project: &str) -> Value {
    json!({"resource": {
        "host": host,
        "project": project,
        "volume_count": volumes.len().to_string(),
        "total_volume_gb": volumes.iter().map(|v| v.size).sum::<i64>().to_string(),
        "snapshot_count": snapshots.len().to_string(),
        "total_snapshot_gb": snapshots.iter().map(|s| s.size).sum::<i64>().to_string(),
    }})
}

/// `GET /v3/os-hosts/{host}` (admins): the volumes and snapshots on the enabled
/// `cinder-volume` of `host`, in total and per project.
async fn host_show(
    State(v): AppState,
    auth: Auth,
    Path(host): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:hosts")?;
    let service = heartbeat::list(&v.db)
        .await?
        .into_iter()
        .find(|s| s.binary == VOLUME_BINARY && !s.disabled && host_matches(Some(&s.host), &host))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Service {VOLUME_BINARY} could not be found on host {host}."
            ))
        })?;
    let all_volumes: Vec<Volume> = v.db.select("1 = 1", &[]).await?;
    let on_host: Vec<&Volume> = all_volumes
        .iter()
        .filter(|vol| host_matches(vol.host.as_deref(), &service.host))
        .collect();
    let ids: BTreeSet<&str> = on_host.iter().map(|vol| vol.id.as_str()).collect();
    let all_snapshots: Vec<Snapshot> = v.db.select("1 = 1", &[]).await?;
    let snapshots: Vec<&Snapshot> = all_snapshots
        .iter()
        .filter(|s| ids.contains(s.volume_id.as_str()))
        .collect();
    let mut resources = vec![usage(&on_host, &snapshots, &host, "(total)")];
    let projects: BTreeSet<&str> = on_host.iter().map(|vol| vol.project_id.as_str()).collect();
    for project in projects {
        let vols: Vec<&Volume> = on_host
            .iter()
            .copied()
            .filter(|vol| vol.project_id == project)
            .collect();
        let snaps: Vec<&Snapshot> = snapshots
            .iter()
            .copied()
            .filter(|s| s.project_id == project)
            .collect();
        resources.push(usage(&vols, &snaps, &host, project));
    }
    Ok(ok("host", Value::Array(resources)))
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/// `GET /v3/capabilities/{backend}` (admins): what the backend reports of itself. The name may
/// be a pool's (`host@backend#pool`, as `get_pools` lists them), a backend's or a host's.
async fn capabilities(
    State(v): AppState,
    auth: Auth,
    Path(backend): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:capabilities")?;
    let wanted = backend.split('#').next().unwrap_or_default();
    let service = heartbeat::list(&v.db)
        .await?
        .into_iter()
        .find(|s| s.binary == VOLUME_BINARY && host_matches(Some(&s.host), wanted))
        .ok_or_else(|| ApiError::not_found(format!("Can't find service: {backend}")))?;
    if service.host != heartbeat::volume_service_host(&v) {
        // Another manager's backend: this process cannot ask it (Cinder's `RPCTimeout`).
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            format!(
                "Timeout while requesting capabilities from backend {}.",
                service.host
            ),
        ));
    }
    let caps = scheduler::pool_capabilities(&v)
        .await
        .map_err(ApiError::internal)?;
    let field = |k: &str| caps.get(k).cloned().unwrap_or(Value::Null);
    Ok(Json(json!({
        "namespace": format!("OS::Storage::Capabilities::{}", service.host),
        "vendor_name": field("vendor_name"),
        "volume_backend_name": field("volume_backend_name"),
        "pool_name": Value::Null,
        "driver_version": field("driver_version"),
        "storage_protocol": field("storage_protocol"),
        "display_name": Value::Null,
        "description": Value::Null,
        "visibility": Value::Null,
        "replication_targets": [],
        "properties": {},
    }))
    .into_response())
}
