//! `os-instance-actions` (`instance_actions.py`): what was done to a server, with the steps
//! (events) its host recorded. Readable after the server is deleted (≥2.21).

use super::view::usage_time;
use super::{is_admin, not_found, target};
use crate::api::{AppState, Mv, at_least};
use crate::db::instances::{self as idb, Action, Instance};
use crate::service::{Compute, db_error};
use axum::{
    Json,
    extract::{Path, Query},
};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};

async fn load_any(
    c: &Compute,
    auth: &Auth,
    uuid: &str,
    mv: &Mv,
    rule: &str,
) -> Result<Instance, ApiError> {
    let inst = idb::instance(&c.store, uuid)
        .await
        .map_err(db_error)?
        .filter(|i| !i.deleted || at_least(mv, 2, 21))
        .ok_or_else(|| not_found(uuid))?;
    if !is_admin(auth) && auth.project_id() != Some(inst.project_id.as_str()) {
        return Err(not_found(uuid));
    }
    auth.enforce(rule, &target(&inst))?;
    Ok(inst)
}

fn action_body(a: &Action, mv: &Mv) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("action".into(), json!(a.action));
    b.insert("instance_uuid".into(), json!(a.instance_uuid));
    b.insert("request_id".into(), json!(a.request_id));
    b.insert("user_id".into(), json!(a.user_id));
    b.insert("project_id".into(), json!(a.project_id));
    b.insert("start_time".into(), json!(usage_time(&a.start_time)));
    b.insert("message".into(), json!(a.message));
    if at_least(mv, 2, 58) {
        b.insert("updated_at".into(), json!(usage_time(&a.updated_at)));
    }
    b
}

/// `GET /servers/{id}/os-instance-actions`: newest first (≥2.58: `limit`, `marker`,
/// `changes-since`, `changes-before`).
pub async fn actions_index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    load_any(
        c,
        &auth,
        &uuid,
        &mv,
        "os_compute_api:os-instance-actions:list",
    )
    .await?;
    let mut actions = idb::actions(&c.store, &uuid).await.map_err(db_error)?;
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let mut links = None;
    if at_least(&mv, 2, 58) {
        if let Some(since) = get("changes-since") {
            actions.retain(|a| usage_time(&a.updated_at).as_str() >= since.trim_end_matches('Z'));
        }
        if let Some(before) = get("changes-before") {
            actions.retain(|a| usage_time(&a.updated_at).as_str() <= before.trim_end_matches('Z'));
        }
        if let Some(marker) = get("marker") {
            match actions.iter().position(|a| a.request_id == marker) {
                Some(p) => {
                    actions.drain(..=p);
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Marker {marker} could not be found."
                    )));
                }
            }
        }
        if let Some(limit) = get("limit") {
            let n: usize = limit.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for query parameters limit. Value: {limit}."
                ))
            })?;
            if actions.len() > n {
                actions.truncate(n);
                if let Some(last) = actions.last() {
                    links = Some(json!([{"rel": "next", "href": format!(
                        "{}/v2.1/servers/{uuid}/os-instance-actions?limit={n}&marker={}",
                        c.base_url(), last.request_id
                    )}]));
                }
            }
        }
    }
    let list: Vec<Value> = actions
        .iter()
        .map(|a| Value::Object(action_body(a, &mv)))
        .collect();
    let mut body = json!({"instanceActions": list});
    if let Some(l) = links {
        body["links"] = l;
    }
    Ok(Json(body))
}

/// `GET /servers/{id}/os-instance-actions/{request_id}`
pub async fn action_show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path((uuid, request_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let inst = load_any(
        c,
        &auth,
        &uuid,
        &mv,
        "os_compute_api:os-instance-actions:show",
    )
    .await?;
    let action = idb::actions(&c.store, &uuid)
        .await
        .map_err(db_error)?
        .into_iter()
        .find(|a| a.request_id == request_id)
        .ok_or_else(|| ApiError::not_found(format!("Action {request_id} not found")))?;
    let mut body = action_body(&action, &mv);
    let t = target(&inst);
    let admin_events = auth.allows("os_compute_api:os-instance-actions:events", &t);
    if admin_events || at_least(&mv, 2, 51) {
        let details = at_least(&mv, 2, 84)
            && auth.allows("os_compute_api:os-instance-actions:events:details", &t);
        let events: Vec<Value> = action
            .events
            .iter()
            .map(|e| {
                let mut ev = Map::new();
                ev.insert("event".into(), json!(e.event));
                ev.insert("start_time".into(), json!(e.start_time));
                ev.insert("finish_time".into(), json!(e.finish_time));
                ev.insert("result".into(), json!(e.result));
                if admin_events {
                    ev.insert("traceback".into(), json!(e.traceback));
                }
                if at_least(&mv, 2, 62) {
                    if admin_events {
                        ev.insert("host".into(), json!(e.host.clone().unwrap_or_default()));
                    }
                    ev.insert(
                        "hostId".into(),
                        json!(super::view::host_id(&inst.project_id, e.host.as_deref())),
                    );
                }
                if details {
                    ev.insert("details".into(), json!(e.details));
                }
                Value::Object(ev)
            })
            .collect();
        body.insert("events".into(), json!(events));
    }
    Ok(Json(json!({"instanceAction": Value::Object(body)})))
}
