//! Host aggregates (`aggregates.py`): admin-managed host groups with metadata; an
//! `availability_zone` in the metadata makes the aggregate's hosts that zone.

use super::{AppState, Mv, at_least};
use crate::db::aggregates::{self as adb, Aggregate};
use crate::db::nodes;
use crate::service::{Compute, db_error};
use axum::{Json, extract::Path};
use ferrostack_api::{ApiError, Auth, JsonBody};
use ferrostack_store::StoreError;
use serde_json::{Map, Value, json};

fn time(stored: &str) -> String {
    crate::api::servers::view::usage_time(stored)
}

fn body(a: &Aggregate, mv: &Mv, full: bool) -> Value {
    let mut b = Map::new();
    b.insert("id".into(), json!(a.id));
    b.insert("name".into(), json!(a.name));
    b.insert("availability_zone".into(), json!(a.availability_zone()));
    b.insert("created_at".into(), json!(time(&a.created_at)));
    b.insert(
        "updated_at".into(),
        json!(a.updated_at.as_deref().map(time)),
    );
    b.insert("deleted_at".into(), Value::Null);
    b.insert("deleted".into(), json!(false));
    if full {
        b.insert("hosts".into(), json!(a.hosts));
        b.insert("metadata".into(), json!(a.metadata));
    }
    if at_least(mv, 2, 41) {
        b.insert("uuid".into(), json!(a.uuid));
    }
    Value::Object(b)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Aggregate {id} could not be found."))
}

async fn find(c: &Compute, id: &str) -> Result<Aggregate, ApiError> {
    let n: i64 = id.parse().map_err(|_| not_found(id))?;
    adb::aggregates(&c.store)
        .await
        .map_err(db_error)?
        .into_iter()
        .find(|a| a.id == n)
        .ok_or_else(|| not_found(id))
}

fn enforce(auth: &Auth, action: &str) -> Result<(), ApiError> {
    auth.enforce(
        &format!("os_compute_api:os-aggregates:{action}"),
        &json!({}),
    )
}

/// A name or zone: 1–255 characters, not only spaces.
fn text(v: Option<&Value>, field: &str, required: bool) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => {
            Ok(Some(s.clone()))
        }
        None => Err(ApiError::bad_request(format!(
            "'{field}' is a required property"
        ))),
        Some(v) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {v}."
        ))),
    }
}

/// Refuses a zone change that would put a host in two zones.
fn check_zones(all: &[Aggregate], agg: &Aggregate, zone: Option<&str>) -> Result<(), ApiError> {
    let Some(zone) = zone else { return Ok(()) };
    for host in &agg.hosts {
        let others: Vec<&str> = all
            .iter()
            .filter(|a| a.id != agg.id && a.hosts.contains(host))
            .filter_map(|a| a.availability_zone())
            .filter(|z| *z != zone)
            .collect();
        if !others.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Cannot update aggregate {}. Reason: One or more hosts already in availability zone(s) {others:?}.",
                agg.id
            )));
        }
    }
    Ok(())
}

fn conflict_name(name: &str) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => ApiError::conflict(format!("Aggregate {name} already exists.")),
        e => db_error(e),
    }
}

/// `GET /os-aggregates`
pub async fn index(auth: Auth, state: AppState, mv: Mv) -> Result<Json<Value>, ApiError> {
    enforce(&auth, "index")?;
    let all = adb::aggregates(&state.0.store).await.map_err(db_error)?;
    let list: Vec<Value> = all.iter().map(|a| body(a, &mv, true)).collect();
    Ok(Json(json!({"aggregates": list})))
}

/// `POST /os-aggregates`: 200 without hosts and metadata.
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    JsonBody(req): JsonBody,
) -> Result<Json<Value>, ApiError> {
    enforce(&auth, "create")?;
    let Some(a) = req.get("aggregate").and_then(Value::as_object) else {
        return Err(ApiError::bad_request("'aggregate' is a required property"));
    };
    if let Some(extra) = a.keys().find(|k| *k != "name" && *k != "availability_zone") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let name = text(a.get("name"), "name", true)?.unwrap_or_default();
    let zone = text(a.get("availability_zone"), "availability_zone", false)?;
    let mut agg = Aggregate {
        id: 0,
        uuid: uuid::Uuid::new_v4().to_string(),
        name: name.clone(),
        metadata: zone
            .map(|z| [("availability_zone".to_string(), z)].into_iter().collect())
            .unwrap_or_default(),
        hosts: Vec::new(),
        created_at: ferrostack_store::now_rfc3339(),
        updated_at: None,
    };
    adb::insert(&state.0.store, &mut agg)
        .await
        .map_err(conflict_name(&name))?;
    tracing::info!(aggregate = agg.id, name = %agg.name, "aggregate created");
    Ok(Json(json!({"aggregate": body(&agg, &mv, false)})))
}

/// `GET /os-aggregates/{id}`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    enforce(&auth, "show")?;
    let agg = find(&state.0, &id).await?;
    Ok(Json(json!({"aggregate": body(&agg, &mv, true)})))
}

/// `PUT /os-aggregates/{id}`: name and/or availability zone.
pub async fn update(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(req): JsonBody,
) -> Result<Json<Value>, ApiError> {
    enforce(&auth, "update")?;
    let c = &state.0;
    let Some(a) = req.get("aggregate").and_then(Value::as_object) else {
        return Err(ApiError::bad_request("'aggregate' is a required property"));
    };
    if a.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input: at least one of name or availability_zone is required",
        ));
    }
    let mut agg = find(c, &id).await?;
    if let Some(name) = text(a.get("name"), "name", false)? {
        agg.name = name;
    }
    if a.contains_key("availability_zone") {
        match text(a.get("availability_zone"), "availability_zone", false)? {
            Some(z) => {
                let all = adb::aggregates(&c.store).await.map_err(db_error)?;
                check_zones(&all, &agg, Some(&z))?;
                agg.metadata.insert("availability_zone".into(), z);
            }
            None => {
                agg.metadata.remove("availability_zone");
            }
        }
    }
    let now = ferrostack_store::now_rfc3339();
    adb::update(&c.store, &agg, &now)
        .await
        .map_err(conflict_name(&agg.name.clone()))?;
    agg.updated_at = Some(now);
    Ok(Json(json!({"aggregate": body(&agg, &mv, true)})))
}

/// `DELETE /os-aggregates/{id}`: 200; the aggregate must hold no host.
pub async fn delete(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    enforce(&auth, "delete")?;
    let agg = find(&state.0, &id).await?;
    if !agg.hosts.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Cannot perform action 'delete' on aggregate {}. Reason: Host aggregate is not empty.",
            agg.id
        )));
    }
    adb::delete(&state.0.store, agg.id)
        .await
        .map_err(db_error)?;
    Ok(axum::http::StatusCode::OK)
}

/// `POST /os-aggregates/{id}/action`: `add_host`, `remove_host`, `set_metadata`.
pub async fn action(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(req): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let Some((name, args)) = req.as_object().and_then(|o| o.iter().next()) else {
        return Err(ApiError::bad_request("Invalid request body"));
    };
    match name.as_str() {
        "add_host" | "remove_host" => {
            enforce(&auth, name)?;
            let host = text(args.get("host"), "host", true)?.unwrap_or_default();
            let agg = find(c, &id).await?;
            let adding = name == "add_host";
            if adding {
                let known = nodes::nodes(&c.store)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .any(|n| n.host == host);
                if !known {
                    return Err(ApiError::not_found(format!(
                        "Compute host {host} could not be found."
                    )));
                }
                let all = adb::aggregates(&c.store).await.map_err(db_error)?;
                if let Some(zone) = agg.availability_zone() {
                    let probe = Aggregate {
                        hosts: vec![host.clone()],
                        ..agg.clone()
                    };
                    check_zones(&all, &probe, Some(zone)).map_err(|_| {
                        ApiError::bad_request(format!(
                            "Cannot add host to aggregate {}. Reason: One or more hosts already in availability zone(s).",
                            agg.id
                        ))
                    })?;
                }
            }
            let changed = adb::set_host(&c.store, agg.id, &host, adding)
                .await
                .map_err(db_error)?;
            if !changed {
                return Err(if adding {
                    ApiError::conflict(format!("Aggregate {} already has host {host}.", agg.id))
                } else {
                    ApiError::not_found(format!(
                        "Cannot remove host {host} in aggregate {}",
                        agg.id
                    ))
                });
            }
            let agg = find(c, &id).await?;
            Ok(Json(json!({"aggregate": body(&agg, &mv, true)})))
        }
        "set_metadata" => {
            enforce(&auth, "set_metadata")?;
            let Some(meta) = args.get("metadata").and_then(Value::as_object) else {
                return Err(ApiError::bad_request("'metadata' is a required property"));
            };
            let mut agg = find(c, &id).await?;
            for (k, v) in meta {
                if k.is_empty() || k.chars().count() > 255 {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field/attribute metadata. Value: {k}."
                    )));
                }
                match v {
                    Value::Null => {
                        agg.metadata.remove(k);
                    }
                    Value::String(s) if s.chars().count() <= 255 => {
                        agg.metadata.insert(k.clone(), s.clone());
                    }
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid input for field/attribute metadata. Value: {v}."
                        )));
                    }
                }
            }
            let all = adb::aggregates(&c.store).await.map_err(db_error)?;
            check_zones(&all, &agg, agg.availability_zone())?;
            let now = ferrostack_store::now_rfc3339();
            adb::update(&c.store, &agg, &now).await.map_err(db_error)?;
            agg.updated_at = Some(now);
            Ok(Json(json!({"aggregate": body(&agg, &mv, true)})))
        }
        other => {
            tracing::debug!(action = other, "unknown aggregate action");
            Err(ApiError::bad_request(format!(
                "Invalid request body: unknown action {other}"
            )))
        }
    }
}
