//! Servers (`servers.py` and the action modules): create, list, show, update, delete, the
//! server actions and instance actions.

mod actions;
mod block_devices;
mod create;
mod floating_ips;
mod instance_actions;
pub mod ips;
mod list;
mod meta_tags;
pub mod password;
pub mod view;
pub mod volume_attachments;

pub use actions::action;
pub use create::create;
pub use instance_actions::{action_show, actions_index};
pub use list::{detail, index};
pub use meta_tags::*;

use super::{AppState, Mv};
use crate::conductor;
use crate::db::instances::{self as idb, Instance, NewAction};
use crate::db::nodes;
use crate::service::{Compute, db_error};
use axum::{Extension, Json, extract::Path, http::StatusCode};
use ferrostack_api::{ApiError, Auth, JsonBody, RequestId};
use serde_json::{Value, json};
use std::collections::HashMap;
use view::{Shape, Visibility};

/// Whether the caller is an admin (`context_is_admin`).
pub(crate) fn is_admin(auth: &Auth) -> bool {
    auth.allows("context_is_admin", &json!({}))
}

/// The policy target of an instance.
pub(crate) fn target(inst: &Instance) -> Value {
    json!({"project_id": inst.project_id, "user_id": inst.user_id})
}

/// Nova's 404 text for a server.
pub(crate) fn not_found(uuid: &str) -> ApiError {
    ApiError::not_found(format!("Instance {uuid} could not be found."))
}

/// Loads a live server the caller may see: another project's server is a 404 unless the
/// caller is an admin. Then `rule` is enforced on it.
pub(crate) async fn load(
    c: &Compute,
    auth: &Auth,
    uuid: &str,
    rule: &str,
) -> Result<Instance, ApiError> {
    let inst = idb::instance(&c.store, uuid)
        .await
        .map_err(db_error)?
        .filter(|i| !i.deleted)
        .ok_or_else(|| not_found(uuid))?;
    if !is_admin(auth) && auth.project_id() != Some(inst.project_id.as_str()) {
        return Err(not_found(uuid));
    }
    auth.enforce(rule, &target(&inst))?;
    Ok(inst)
}

/// What the caller may see of servers.
pub(crate) fn visibility(auth: &Auth, project: &str) -> Visibility {
    let t = json!({"project_id": project});
    Visibility {
        extended_attributes: auth.allows("os_compute_api:os-extended-server-attributes", &t),
        host_status: auth.allows("os_compute_api:servers:show:host_status", &t),
        flavor_extra_specs: auth.allows("os_compute_api:servers:show:flavor-extra-specs", &t),
        fault_details: is_admin(auth),
    }
}

/// `host_status` of a server's host (`UP`, `DOWN`, `MAINTENANCE`, or `""` unscheduled).
pub(crate) async fn host_status(c: &Compute, inst: &Instance) -> Result<String, ApiError> {
    let Some(host) = &inst.host else {
        return Ok(String::new());
    };
    let node = nodes::node(&c.store, host).await.map_err(db_error)?;
    Ok(node_status(c, node.as_ref()))
}

/// `host_status` of a scheduled server whose host's node is `node`.
pub(crate) fn node_status(c: &Compute, node: Option<&nodes::Node>) -> String {
    let down_after = chrono::Duration::seconds(c.config.service_down_time as i64);
    match node {
        None => "UNKNOWN".into(),
        Some(n) if n.is_down(chrono::Utc::now(), down_after) => "DOWN".into(),
        Some(n) if n.disabled => "MAINTENANCE".into(),
        Some(_) => "UP".into(),
    }
}

/// The `security_groups` of those `instances` that have ports (`[{"name": ...}]`, each group
/// once), by server uuid: asked of the networking service on every read, as Nova does.
pub(crate) async fn security_groups(
    c: &Compute,
    instances: &[&Instance],
) -> Result<HashMap<String, Value>, ApiError> {
    let Some(network) = c.network() else {
        return Ok(HashMap::new());
    };
    let with_ports: Vec<&str> = instances
        .iter()
        .filter(|i| !i.data.vifs.is_empty())
        .map(|i| i.uuid.as_str())
        .collect();
    if with_ports.is_empty() {
        return Ok(HashMap::new());
    }
    let names = network
        .security_group_names(&with_ports)
        .await
        .map_err(ApiError::internal)?;
    Ok(names
        .into_iter()
        .filter(|(_, groups)| !groups.is_empty())
        .map(|(uuid, groups)| {
            let list: Vec<Value> = groups.iter().map(|g| json!({"name": g})).collect();
            (uuid, Value::Array(list))
        })
        .collect())
}

/// The server body as `auth` may see it.
pub(crate) async fn render(
    c: &Compute,
    auth: &Auth,
    inst: &Instance,
    mv: &Mv,
    shape: Shape,
) -> Result<Value, ApiError> {
    let faults = idb::latest_faults(&c.store, &[inst.uuid.as_str()])
        .await
        .map_err(db_error)?;
    let vis = visibility(auth, &inst.project_id);
    let status = if vis.host_status {
        Some(host_status(c, inst).await?)
    } else {
        None
    };
    let mut body = view::server(
        c,
        inst,
        faults.get(&inst.uuid),
        status.as_deref(),
        mv,
        vis,
        shape,
    );
    // `server_groups` (≥2.71) is part of the full body, which PUT also answers with from 2.75.
    let full = shape == Shape::Full || super::at_least(mv, 2, 75);
    if full && super::at_least(mv, 2, 71) {
        let mine = crate::db::server_groups_of_instance(&c.store, &inst.uuid)
            .await
            .map_err(db_error)?;
        body["server_groups"] = json!(mine);
    }
    if full && let Some(groups) = security_groups(c, &[inst]).await?.remove(&inst.uuid) {
        body["security_groups"] = groups;
    }
    Ok(body)
}

/// `GET /servers/{id}`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let inst = load(c, &auth, &uuid, "os_compute_api:servers:show").await?;
    Ok(Json(
        json!({"server": render(c, &auth, &inst, &mv, Shape::Full).await?}),
    ))
}

/// `PUT /servers/{id}`: name, access IPs, disk config, description (≥2.19), hostname (≥2.90).
pub async fn update(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let Some(s) = body.get("server").and_then(Value::as_object) else {
        return Err(ApiError::bad_request("'server' is a required property"));
    };
    let mut allowed = vec!["name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"];
    if super::at_least(&mv, 2, 19) {
        allowed.push("description");
    }
    if super::at_least(&mv, 2, 90) {
        allowed.push("hostname");
    }
    if let Some(extra) = s.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let invalid = |k: &str, v: &Value| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {k}. Value: {v}."
        ))
    };
    for _ in 0..5 {
        let mut inst = load(c, &auth, &uuid, "os_compute_api:servers:update").await?;
        let d = &mut inst.data;
        for (k, v) in s {
            match (k.as_str(), v) {
                ("name", Value::String(n))
                    if !n.trim().is_empty() && n.trim().chars().count() <= 255 =>
                {
                    d.display_name = n.trim().to_string();
                }
                ("description", Value::Null) => d.display_description = None,
                ("description", Value::String(x)) if x.chars().count() <= 255 => {
                    d.display_description = Some(x.clone())
                }
                ("hostname", Value::String(h)) if !h.is_empty() && h.len() <= 63 => {
                    d.hostname = h.clone()
                }
                ("OS-DCF:diskConfig", Value::String(x)) if x == "AUTO" || x == "MANUAL" => {
                    d.auto_disk_config = x == "AUTO"
                }
                ("accessIPv4" | "accessIPv6", Value::String(ip)) => {
                    match ip.parse::<std::net::IpAddr>() {
                        Ok(a) if (k == "accessIPv4") == a.is_ipv4() => {
                            if k == "accessIPv4" {
                                d.access_ip_v4 = a.to_string();
                            } else {
                                d.access_ip_v6 = a.to_string();
                            }
                        }
                        _ => return Err(invalid(k, v)),
                    }
                }
                _ => return Err(invalid(k, v)),
            }
        }
        if idb::save_data(&c.store, &inst, &ferrostack_store::now_rfc3339())
            .await
            .map_err(db_error)?
        {
            let inst = load(c, &auth, &uuid, "os_compute_api:servers:update").await?;
            return Ok(Json(
                json!({"server": render(c, &auth, &inst, &mv, Shape::Update).await?}),
            ));
        }
    }
    Err(ApiError::conflict(
        "The server was changed concurrently; try again.",
    ))
}

/// Refuses a non-admin's action on a locked server (`check_instance_lock`).
pub(crate) fn check_lock(auth: &Auth, inst: &Instance) -> Result<(), ApiError> {
    if inst.data.locked_by.is_some() && !is_admin(auth) {
        return Err(ApiError::conflict(format!(
            "Instance {} is locked",
            inst.uuid
        )));
    }
    Ok(())
}

/// `DELETE /servers/{id}`: 204, in any state.
pub async fn delete(
    auth: Auth,
    state: AppState,
    Extension(request_id): Extension<RequestId>,
    Path(uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = &state.0;
    let inst = load(c, &auth, &uuid, "os_compute_api:servers:delete").await?;
    check_lock(&auth, &inst)?;
    destroy(c, &auth, &uuid, &request_id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a server the caller was allowed to delete (DELETE, the `forceDelete` action):
/// records the `delete` action, marks it deleting and hands it to the conductor.
pub(crate) async fn destroy(
    c: &std::sync::Arc<Compute>,
    auth: &Auth,
    uuid: &str,
    request_id: &str,
) -> Result<(), ApiError> {
    let now = ferrostack_store::now_rfc3339();
    idb::add_action(
        &c.store,
        uuid,
        &NewAction {
            action: "delete",
            request_id,
            user_id: &auth.user.id,
            project_id: auth.project_id().unwrap_or_default(),
            now: &now,
        },
    )
    .await
    .map_err(db_error)?;
    let Some(inst) = idb::begin_delete(&c.store, uuid, &now)
        .await
        .map_err(db_error)?
    else {
        return Err(not_found(uuid));
    };
    tracing::info!(uuid, host = ?inst.host, "server delete accepted");
    crate::crashpoint::hit("api:after-deleting");
    conductor::delete(c, &inst, request_id)
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}
