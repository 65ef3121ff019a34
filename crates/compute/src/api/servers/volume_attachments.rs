//! `/servers/{id}/os-volume_attachments` (Nova's `volumes.py` `VolumeAttachmentController`):
//! list, show, attach (the 2.89 attachment flow: the volume is reserved, connected to the
//! server's host and plugged by its agent) and detach. The steps and their recovery are in
//! [`crate::volumes`].

use super::actions::{check_state, invalid_state};
use super::{check_lock, load};
use crate::api::{AppState, Mv};
use crate::db::instances::{self as idb, Instance, NewAction};
use crate::service::{Compute, db_error};
use crate::states::vm;
use crate::volumes::{self, VolumeRecord, state};
use axum::{
    Extension, Json,
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, JsonBody, RequestId};
use serde_json::{Value, json};

/// The vm states a volume may be attached or detached in (Nova's `check_instance_state` of
/// `attach_volume` / `detach_volume`, less the ones Ferrostack has no guests in).
const ATTACHABLE: &[&str] = &[vm::ACTIVE, vm::PAUSED, vm::SUSPENDED, vm::STOPPED];

fn version(mv: &Mv) -> (u16, u16) {
    (mv.0.major, mv.0.minor)
}

fn volume_not_attached(uuid: &str, volume_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "volume_id not found: {volume_id} (Instance {uuid} has no such volume attachment)"
    ))
}

fn no_service() -> ApiError {
    ApiError::bad_request("This cloud has no block storage service.")
}

/// Server `uuid` as `load` gives it for `action` of this API (the policy
/// `os_compute_api:os-volumes-attachments:{action}`: index, show, create or delete).
async fn load_server(
    c: &Compute,
    auth: &Auth,
    uuid: &str,
    action: &str,
) -> Result<Instance, ApiError> {
    let rule = format!("os_compute_api:os-volumes-attachments:{action}");
    load(c, auth, uuid, &rule).await
}

/// The attachment of volume `volume_id` to server `inst` (`uuid`); 404 when there is none.
fn attachment<'a>(
    inst: &'a Instance,
    uuid: &str,
    volume_id: &str,
) -> Result<&'a VolumeRecord, ApiError> {
    inst.data
        .volumes
        .iter()
        .find(|r| r.volume_id == volume_id)
        .ok_or_else(|| volume_not_attached(uuid, volume_id))
}

/// `GET /servers/{id}/os-volume_attachments`
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let inst = load_server(&state.0, &auth, &uuid, "index").await?;
    let items: Vec<Value> = inst
        .data
        .volumes
        .iter()
        .map(|r| volumes::view(&inst, r, version(&mv)))
        .collect();
    Ok(Json(json!({ "volumeAttachments": items })).into_response())
}

/// `GET /servers/{id}/os-volume_attachments/{volume_id}`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path((uuid, volume_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = load_server(&state.0, &auth, &uuid, "show").await?;
    let rec = attachment(&inst, &uuid, &volume_id)?;
    Ok(
        Json(json!({ "volumeAttachment": volumes::view(&inst, rec, version(&mv)) }))
            .into_response(),
    )
}

/// The body of an attach: `volumeId`, and `device` (ignored by the libvirt driver, as Nova's),
/// `tag` (2.49) and `delete_on_termination` (2.79).
struct AttachRequest {
    volume_id: String,
    tag: Option<String>,
    delete_on_termination: bool,
}

fn parse_attach(body: &Value, mv: &Mv) -> Result<AttachRequest, ApiError> {
    let Some(object) = body.get("volumeAttachment").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute volumeAttachment. Value: None. None is not of type 'object'",
        ));
    };
    let mut allowed = vec!["volumeId", "device"];
    if version(mv) >= (2, 49) {
        allowed.push("tag");
    }
    if version(mv) >= (2, 79) {
        allowed.push("delete_on_termination");
    }
    if let Some(extra) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let volume_id = match object.get("volumeId") {
        Some(Value::String(v)) if uuid::Uuid::parse_str(v).is_ok() => v.clone(),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute volumeId. Value: {v}. {v} is not a 'uuid'"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property",
            ));
        }
    };
    match object.get("device") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if d.starts_with("/dev/") || d.is_empty() => {}
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute device. Value: {d}. does not match '(^/dev/x{{0,1}}[a-z]{{0,1}}d{{0,1}})([a-z]+)[0-9]*$'"
            )));
        }
    }
    let tag = match object.get("tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if !t.is_empty() && t.len() <= 60 && !t.contains(['/', ',']) => {
            Some(t.clone())
        }
        Some(t) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute tag. Value: {t}."
            )));
        }
    };
    let delete_on_termination = match object.get("delete_on_termination") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute delete_on_termination. Value: {v}. {v} is not of type 'boolean'"
            )));
        }
    };
    Ok(AttachRequest {
        volume_id,
        tag,
        delete_on_termination,
    })
}

/// `POST /servers/{id}/os-volume_attachments` → 200 `{"volumeAttachment": ...}`
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Extension(request_id): Extension<RequestId>,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let c = state.0.clone();
    let request = parse_attach(&body, &mv)?;
    let inst = load_server(&c, &auth, &uuid, "create").await?;
    check_lock(&auth, &inst)?;
    check_state(&inst, "attach_volume", ATTACHABLE, &[None])?;
    let service = c.volumes().cloned().ok_or_else(no_service)?;
    let volume = service
        .volume(&request.volume_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|v| super::is_admin(&auth) || v.project_id == inst.project_id)
        .ok_or_else(|| {
            ApiError::not_found(format!("Volume {} could not be found.", request.volume_id))
        })?;
    if inst.data.volumes.iter().any(|r| r.volume_id == volume.id) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} already attached",
            volume.id
        )));
    }
    let multiattach_ok = volume.multiattach && volume.status == "in-use";
    if volume.status != "available" && !multiattach_ok {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} status must be 'available'. Currently in '{}'",
            volume.id, volume.status
        )));
    }
    let rid = request_id.0.clone();
    let volume_id = volume.id.clone();
    let mut chosen: Option<VolumeRecord> = None;
    let saved = volumes::update(&c, &uuid, |i| {
        if i.data.volumes.iter().any(|r| r.volume_id == volume_id) {
            return false;
        }
        let Some(target) = volumes::next_target(i) else {
            return false;
        };
        i.data.volumes.push(VolumeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: volume_id.clone(),
            attachment_id: None,
            target,
            tag: request.tag.clone(),
            delete_on_termination: request.delete_on_termination,
            state: state::RESERVING.into(),
            connection: None,
            request_id: rid.clone(),
            create: None,
        });
        true
    })
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| super::not_found(&uuid))?;
    if let Some(rec) = saved
        .data
        .volumes
        .iter()
        .find(|r| r.volume_id == volume_id && r.request_id == rid)
    {
        chosen = Some(rec.clone());
    }
    let Some(rec) = chosen else {
        return Err(ApiError::conflict(format!(
            "Cannot 'attach_volume' instance {uuid}: the volume is being attached already or \
             the server has no free device name"
        )));
    };
    record_action(&c, &auth, &uuid, &rid, "attach_volume").await?;
    crate::crashpoint::hit("api:after-volume-recorded");
    if let Err(e) = volumes::attach(&c, &uuid, &volume_id).await {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {volume_id} could not be attached: {e}"
        )));
    }
    let current = idb::instance(&c.store, &uuid)
        .await
        .map_err(db_error)?
        .ok_or_else(|| super::not_found(&uuid))?;
    let rec = current
        .data
        .volumes
        .iter()
        .find(|r| r.id == rec.id)
        .cloned()
        .unwrap_or(rec);
    Ok(
        Json(json!({ "volumeAttachment": volumes::view(&current, &rec, version(&mv)) }))
            .into_response(),
    )
}

/// `DELETE /servers/{id}/os-volume_attachments/{volume_id}` → 202
pub async fn delete(
    auth: Auth,
    state: AppState,
    Extension(request_id): Extension<RequestId>,
    Path((uuid, volume_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = state.0.clone();
    let inst = load_server(&c, &auth, &uuid, "delete").await?;
    check_lock(&auth, &inst)?;
    check_state(&inst, "detach_volume", ATTACHABLE, &[None])?;
    let rec = attachment(&inst, &uuid, &volume_id)?;
    if rec.is_root() {
        return Err(ApiError::bad_request("Cannot detach a root device volume"));
    }
    if rec.state != state::ATTACHED {
        return Err(invalid_state(
            "detach_volume",
            &uuid,
            "volume state",
            &rec.state,
        ));
    }
    let rid = request_id.0.clone();
    let marked = volumes::update(&c, &uuid, |i| {
        match i.data.volumes.iter_mut().find(|r| r.volume_id == volume_id) {
            Some(r) if r.state == state::ATTACHED => {
                r.state = state::DETACHING.into();
                r.request_id = rid.clone();
                true
            }
            _ => false,
        }
    })
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| super::not_found(&uuid))?;
    let detaching =
        marked.data.volumes.iter().any(|r| {
            r.volume_id == volume_id && r.state == state::DETACHING && r.request_id == rid
        });
    if !detaching {
        return Err(invalid_state(
            "detach_volume",
            &uuid,
            "volume state",
            "changing",
        ));
    }
    record_action(&c, &auth, &uuid, &rid, "detach_volume").await?;
    if let Err(e) = volumes::detach(&c, &uuid, &volume_id).await {
        // The host is unreachable: the volume stays attached.
        volumes::detached(&c, &uuid, &volume_id, Some(&e.to_string()))
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::conflict(format!(
            "Cannot 'detach_volume' instance {uuid}: its host did not answer ({e})"
        )));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn record_action(
    c: &Compute,
    auth: &Auth,
    uuid: &str,
    request_id: &str,
    action: &str,
) -> Result<(), ApiError> {
    idb::add_action(
        &c.store,
        uuid,
        &NewAction {
            action,
            request_id,
            user_id: &auth.user.id,
            project_id: auth.project_id().unwrap_or_default(),
            now: &ferrostack_store::now_rfc3339(),
        },
    )
    .await
    .map_err(db_error)
}
