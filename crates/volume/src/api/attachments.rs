//! Attachments: the attachments API (3.27+: `/v3/attachments`, `os-complete` from 3.44) and the
//! legacy attach actions on `/v3/volumes/{id}/action` (`os-reserve`, `os-attach`,
//! `os-initialize_connection`, ... used by older Nova flows).
//!
//! Cinder's status machine, per volume: `available` → (`attachment create`) `reserved` →
//! (update with a connector) `attaching` → (`os-complete`) `in-use`; deleting an attachment
//! puts the volume in the "highest" state its remaining attachments leave
//! (attached > attaching > detaching > reserved, else `available`). Every transition locks the
//! volume's row and checks the status it expects in the same transaction.

use super::volumes::lock as lock_volume;
use super::{
    AppState, Mv, action_name, at_least, is_admin, no_such_action, project_target, request_url,
    require_version,
};
use crate::db::{Tx, write_tx};
use crate::errors;
use crate::model::{Attachment, Volume, attach_status, volume_status};
use crate::service::Volumes;
use axum::{
    Json, Router,
    extract::{Path, Query},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ferrostack_api::{ApiError, Auth};
use ferrostack_store::now_rfc3339;
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of the attachments API.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/attachments", get(index).post(create))
        .route("/attachments/detail", get(index))
        .route("/attachments/{id}", get(show).put(update).delete(delete))
        .route("/attachments/{id}/action", post(action))
}

/// Cinder renders timestamps without a zone, with microseconds.
pub(crate) fn cinder_time(stored: &str) -> String {
    stored.trim_end_matches('Z').to_string()
}

fn summary(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "status": a.attach_status,
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    })
}

fn detail_view(a: &Attachment) -> Value {
    let mut v = summary(a);
    v["attached_at"] = json!(a.attach_time.as_deref().map(cinder_time));
    v["detached_at"] = json!(a.detach_time.as_deref().map(cinder_time));
    v["attach_mode"] = json!(a.attach_mode);
    v["connection_info"] = a.connection_info.clone().unwrap_or_else(|| json!({}));
    v
}

/// Whether the caller sees a resource of `project`: an admin, or the project's own.
fn sees(auth: &Auth, project: &str) -> bool {
    is_admin(auth) || auth.project_id() == Some(project)
}

/// The volume `id` as the caller may see it (404 otherwise).
async fn visible_volume(volumes: &Volumes, auth: &Auth, id: &str) -> Result<Volume, ApiError> {
    let volume: Option<Volume> = volumes.db.get(id).await?;
    volume
        .filter(|v| sees(auth, &v.project_id))
        .ok_or_else(|| errors::volume_not_found(id))
}

/// The attachment `id` as the caller may see it, checked against `rule` (404, 403).
async fn authorized_attachment(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    rule: &str,
) -> Result<Attachment, ApiError> {
    let attachment: Option<Attachment> = volumes.db.get(id).await?;
    let attachment = attachment
        .filter(|a| sees(auth, &a.project_id))
        .ok_or_else(|| errors::attachment_not_found(id))?;
    auth.enforce(rule, &project_target(&attachment.project_id))?;
    Ok(attachment)
}

async fn list(
    volumes: &Volumes,
    auth: &Auth,
    query: &[(String, String)],
    uri: &Uri,
    detailed: bool,
) -> Result<Response, ApiError> {
    auth.enforce("volume:attachment_get_all", &json!({}))?;
    let all_tenants = is_admin(auth)
        && query
            .iter()
            .any(|(k, v)| k == "all_tenants" && !matches!(v.as_str(), "0" | "false" | "False"));
    let mut rows: Vec<Attachment> = match (all_tenants, auth.project_id()) {
        (true, _) => volumes.db.select("1 = 1", &[]).await?,
        (false, Some(p)) => volumes.db.select("project_id = $1", &[p]).await?,
        (false, None) => Vec::new(),
    };
    for (key, value) in query {
        let keep: Box<dyn Fn(&Attachment) -> bool> = match key.as_str() {
            "volume_id" => Box::new(|a: &Attachment| a.volume_id == *value),
            "instance_id" | "instance_uuid" => {
                Box::new(|a: &Attachment| a.instance_uuid.as_deref() == Some(value.as_str()))
            }
            "status" | "attach_status" => Box::new(|a: &Attachment| a.attach_status == *value),
            "project_id" if all_tenants => Box::new(|a: &Attachment| a.project_id == *value),
            _ => continue,
        };
        rows.retain(|a| keep(a));
    }
    let page = ferrostack_api::pagination::PageRequest::from_query(query, 1000)?;
    let (page_rows, next) = page.apply(rows, |a| a.id.as_str())?;
    let items: Vec<Value> = page_rows
        .iter()
        .map(|a| match detailed {
            true => detail_view(a),
            false => summary(a),
        })
        .collect();
    let mut body = json!({ "attachments": items });
    if let Some(marker) = next {
        let base = request_url(volumes, uri);
        body["attachments_links"] = json!([{
            "rel": "next",
            "href": ferrostack_api::pagination::next_link(&base, query, &marker),
        }]);
    }
    Ok(Json(body).into_response())
}

/// A new attachment of `volume` (created now, not yet connected).
pub(crate) fn new_attachment(
    volume: &Volume,
    instance_uuid: Option<String>,
    status: &str,
    attach_mode: String,
) -> Attachment {
    Attachment {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume.id.clone(),
        project_id: volume.project_id.clone(),
        instance_uuid,
        attach_status: status.into(),
        attach_mode,
        attached_host: None,
        mountpoint: None,
        connector: None,
        connection_info: None,
        attach_time: None,
        detach_time: None,
        created_at: now_rfc3339(),
        updated_at: None,
    }
}

/// Locks the attachment `id`, then its volume (404 when either is gone).
async fn lock_with_volume(tx: &mut Tx, id: &str) -> crate::db::Result<(Attachment, Volume)> {
    let attachment: Attachment = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::attachment_not_found(id))?;
    let volume = lock_volume(tx, &attachment.volume_id).await?;
    Ok((attachment, volume))
}

/// `GET /v3/attachments` and `GET /v3/attachments/detail`.
async fn index(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let detailed = uri.path().ends_with("/detail");
    list(&state.0, &auth, &query, &uri, detailed).await
}

/// `GET /v3/attachments/{id}`
async fn show(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let attachment = authorized_attachment(&state.0, &auth, &id, "volume:attachment_get").await?;
    Ok(super::ok("attachment", detail_view(&attachment)))
}

fn body_object<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    body.get(key).filter(|v| v.is_object()).ok_or_else(|| {
        errors::bad_request(format!("Missing required element '{key}' in request body."))
    })
}

fn connector_of(object: &Value) -> Result<Option<Value>, ApiError> {
    match object.get("connector") {
        None | Some(Value::Null) => Ok(None),
        Some(c) if c.is_object() => Ok(Some(c.clone())),
        Some(_) => Err(errors::invalid_input("connector must be an object")),
    }
}

/// Moves the volume (locked in `tx`) to `reserved` for a new attachment to `instance`, as
/// Cinder's `_attachment_reserve`: from `available`/`downloading`, or also from `in-use` and
/// `reserved` for a multiattach volume, or when `instance` already has an attachment of it
/// (a move of that instance).
async fn reserve(
    tx: &mut Tx,
    volume: &mut Volume,
    instance: Option<&str>,
) -> crate::db::Result<()> {
    let expected: &[&str] = match volume.multiattach {
        true => &[
            volume_status::AVAILABLE,
            volume_status::IN_USE,
            volume_status::DOWNLOADING,
            volume_status::RESERVED,
        ],
        false => &[volume_status::AVAILABLE, volume_status::DOWNLOADING],
    };
    refuse_error_state(volume)?;
    let same_instance = match instance {
        Some(instance) if matches!(volume.status.as_str(), "in-use" | "reserved") => {
            let mine: Vec<Attachment> = tx
                .select(
                    "volume_id = $1 AND instance_uuid = $2",
                    &[&volume.id, instance],
                )
                .await?;
            !mine.is_empty()
        }
        _ => false,
    };
    if !same_instance {
        check_status(volume, expected, "reserve")?;
    }
    if volume.status != volume_status::IN_USE {
        volume.status = volume_status::RESERVED.into();
    }
    volume.updated_at = Some(now_rfc3339());
    tx.save(&*volume).await?;
    Ok(())
}

/// `a or b or c`, as Cinder's `build_or_str`.
fn or_list(items: &[&str]) -> String {
    items.join(" or ")
}

/// 400 for a volume in an error state.
fn refuse_error_state(volume: &Volume) -> Result<(), ApiError> {
    match volume.status.contains("error") {
        true => Err(errors::invalid_volume(format!(
            "Volume {} is in error state",
            volume.id
        ))),
        false => Ok(()),
    }
}

/// 400 unless the volume is in one of the `allowed` statuses to `verb` (`reserve`, `attach`).
fn check_status(volume: &Volume, allowed: &[&str], verb: &str) -> Result<(), ApiError> {
    match allowed.contains(&volume.status.as_str()) {
        true => Ok(()),
        false => Err(errors::invalid_volume(format!(
            "Volume {} status must be {} to {verb}, but the current status is {}.",
            volume.id,
            or_list(allowed),
            volume.status
        ))),
    }
}

/// 400 for an attach mode other than `ro` of a read-only volume.
fn check_mode(volume: &Volume, mode: &str) -> Result<(), ApiError> {
    match volume.readonly == Some(true) && mode != "ro" {
        true => Err(errors::bad_request(format!(
            "Invalid attaching mode '{mode}' for volume {}.",
            volume.id
        ))),
        false => Ok(()),
    }
}

/// Sets the connector and the connection info of `attachment` (Cinder's manager
/// `attachment_update`): the attachment and the volume (unless already `in-use`) become
/// `attaching`; the volume is saved.
async fn connect(
    tx: &mut Tx,
    volumes: &Volumes,
    volume: &mut Volume,
    attachment: &mut Attachment,
    connector: Value,
) -> crate::db::Result<()> {
    let mode = connector
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or(&attachment.attach_mode)
        .to_string();
    check_mode(volume, &mode)?;
    let mut info = volumes
        .driver
        .connection_info(volume, &connector)
        .map_err(ApiError::internal)?;
    info["data"]["access_mode"] = json!(mode);
    info["data"]["attachment_id"] = json!(attachment.id);
    info["data"]["volume_id"] = json!(volume.id);
    attachment.attach_mode = mode;
    attachment.attached_host = connector
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(mountpoint) = connector.get("mountpoint").and_then(Value::as_str) {
        attachment.mountpoint = Some(mountpoint.to_string());
    }
    attachment.connector = Some(connector);
    attachment.connection_info = Some(info);
    if attachment.attach_status != attach_status::ATTACHED {
        attachment.attach_status = attach_status::ATTACHING.into();
    }
    if volume.status != volume_status::IN_USE {
        volume.status = volume_status::ATTACHING.into();
        volume.attach_status = attach_status::ATTACHING.into();
    }
    let now = now_rfc3339();
    attachment.updated_at = Some(now.clone());
    volume.updated_at = Some(now);
    tx.save(&*volume).await
}

/// `POST /v3/attachments` → 200 `{"attachment": ...}`
async fn create(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let object = body_object(&body, "attachment")?;
    let volume_id = object
        .get("volume_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            errors::bad_request("Missing required element 'volume_uuid' in request body.")
        })?
        .to_string();
    let instance = match object.get("instance_uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(errors::invalid_input("instance_uuid must be a string")),
    };
    let connector = connector_of(object)?;
    let mode = match object.get("mode").and_then(Value::as_str) {
        None => "rw".to_string(),
        Some(m @ ("rw" | "ro")) if at_least(&mv, 54) => m.to_string(),
        Some(m) => {
            return Err(errors::invalid_input(format!(
                "Invalid mode {m}: must be rw or ro"
            )));
        }
    };
    let volumes = state.0.clone();
    let seen = visible_volume(&volumes, &auth, &volume_id).await?;
    auth.enforce(
        "volume:attachment_create",
        &project_target(&seen.project_id),
    )?;
    if seen.multiattach && seen.bootable {
        auth.enforce(
            "volume:multiattach_bootable_volume",
            &project_target(&seen.project_id),
        )?;
    }
    let attachment = write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock_volume(tx, &volume_id).await?;
            reserve(tx, &mut volume, instance.as_deref()).await?;
            let mode = if volume.readonly == Some(true) {
                "ro".into()
            } else {
                mode.clone()
            };
            let mut attachment =
                new_attachment(&volume, instance.clone(), attach_status::RESERVED, mode);
            if let Some(connector) = connector.clone() {
                connect(tx, &volumes, &mut volume, &mut attachment, connector).await?;
            }
            tx.insert(&attachment).await?;
            Ok::<_, crate::db::Error>(attachment)
        }
        .await
    })?;
    Ok(super::ok("attachment", detail_view(&attachment)))
}

/// `PUT /v3/attachments/{id}` `{"attachment": {"connector": {...}}}` → 200
async fn update(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let object = body_object(&body, "attachment")?;
    let connector = connector_of(object)?.ok_or_else(|| {
        errors::bad_request("Missing required element 'connector' in request body.")
    })?;
    let volumes = state.0.clone();
    authorized_attachment(&volumes, &auth, &id, "volume:attachment_update").await?;
    let attachment = write_tx!(volumes.db, |tx| {
        async {
            let (mut attachment, mut volume) = lock_with_volume(tx, &id).await?;
            refuse_error_state(&volume)?;
            if matches!(
                attachment.attach_status.as_str(),
                attach_status::DETACHING | attach_status::DETACHED | attach_status::DELETED
            ) {
                return Err(errors::invalid_volume(format!(
                    "Attachment {} is {}; it cannot be updated.",
                    attachment.id, attachment.attach_status
                ))
                .into());
            }
            connect(
                tx,
                &volumes,
                &mut volume,
                &mut attachment,
                connector.clone(),
            )
            .await?;
            tx.save(&attachment).await?;
            Ok::<_, crate::db::Error>(attachment)
        }
        .await
    })?;
    Ok(super::ok("attachment", detail_view(&attachment)))
}

/// The volume status the remaining attachments leave (attached > attaching > detaching >
/// reserved > none → available), with the matching `attach_status`.
fn status_after(remaining: &[Attachment]) -> (&'static str, &'static str) {
    let has = |s: &str| remaining.iter().any(|a| a.attach_status == s);
    if has(attach_status::ATTACHED) {
        (volume_status::IN_USE, attach_status::ATTACHED)
    } else if has(attach_status::ATTACHING) {
        (volume_status::ATTACHING, attach_status::ATTACHING)
    } else if has(attach_status::DETACHING) {
        (volume_status::DETACHING, attach_status::DETACHING)
    } else if has(attach_status::RESERVED) {
        (volume_status::RESERVED, attach_status::RESERVED)
    } else {
        (volume_status::AVAILABLE, attach_status::DETACHED)
    }
}

/// Removes attachment `id` of the locked volume and sets the volume's status from what is
/// left; returns the remaining attachments.
async fn detach(tx: &mut Tx, volume: &mut Volume, id: &str) -> crate::db::Result<Vec<Attachment>> {
    tx.delete::<Attachment>(id).await?;
    let remaining: Vec<Attachment> = tx.select("volume_id = $1", &[&volume.id]).await?;
    let (status, attached) = status_after(&remaining);
    // A volume in the middle of something else (deleting, extending, ...) keeps its status.
    if matches!(
        volume.status.as_str(),
        "reserved" | "attaching" | "in-use" | "detaching" | "available"
    ) {
        volume.status = status.into();
    }
    volume.attach_status = attached.into();
    volume.updated_at = Some(now_rfc3339());
    tx.save(&*volume).await?;
    Ok(remaining)
}

/// `DELETE /v3/attachments/{id}` → 200 `{"attachments": [the volume's remaining ones]}`
async fn delete(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let volumes = state.0.clone();
    authorized_attachment(&volumes, &auth, &id, "volume:attachment_delete").await?;
    let remaining = write_tx!(volumes.db, |tx| {
        async {
            let (_, mut volume) = lock_with_volume(tx, &id).await?;
            detach(tx, &mut volume, &id).await
        }
        .await
    })?;
    let items: Vec<Value> = remaining.iter().map(detail_view).collect();
    Ok(Json(json!({ "attachments": items })).into_response())
}

/// `POST /v3/attachments/{id}/action` — `os-complete` (3.44) → 204
async fn action(
    state: AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require_version(&mv, 27)?;
    let name = action_name(&body)?;
    if name != "os-complete" || !at_least(&mv, 44) {
        return Err(no_such_action(&name));
    }
    let volumes = state.0.clone();
    authorized_attachment(&volumes, &auth, &id, "volume:attachment_complete").await?;
    write_tx!(volumes.db, |tx| {
        async {
            let (mut attachment, mut volume) = lock_with_volume(tx, &id).await?;
            complete(tx, &mut volume, &mut attachment).await
        }
        .await
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Marks an attachment attached and its volume `in-use`.
async fn complete(
    tx: &mut Tx,
    volume: &mut Volume,
    attachment: &mut Attachment,
) -> crate::db::Result<()> {
    let now = now_rfc3339();
    attachment.attach_status = attach_status::ATTACHED.into();
    attachment.attach_time.get_or_insert_with(|| now.clone());
    attachment.updated_at = Some(now.clone());
    volume.status = volume_status::IN_USE.into();
    volume.attach_status = attach_status::ATTACHED.into();
    volume.updated_at = Some(now);
    tx.save(&*attachment).await?;
    tx.save(&*volume).await?;
    Ok(())
}

/// The legacy attach actions on `/v3/volumes/{id}/action` (the volumes module dispatches them
/// here): `os-reserve`, `os-unreserve`, `os-begin_detaching`, `os-roll_detaching`,
/// `os-attach`, `os-detach`, `os-initialize_connection`, `os-terminate_connection`.
pub(crate) async fn legacy_action(
    volumes: &Arc<Volumes>,
    auth: &Auth,
    _mv: &Mv,
    volume_id: &str,
    action: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    use volume_status::{ATTACHING, AVAILABLE, DETACHING, IN_USE};
    let seen = visible_volume(volumes, auth, volume_id).await?;
    let rule = format!(
        "volume_extension:volume_actions:{}",
        action.trim_start_matches("os-")
    );
    auth.enforce(&rule, &project_target(&seen.project_id))?;
    let args = body.get(action).cloned().unwrap_or(Value::Null);
    let step = match action {
        "os-reserve" => LegacyStep::Transition(AVAILABLE, ATTACHING),
        "os-unreserve" => LegacyStep::Transition(ATTACHING, AVAILABLE),
        "os-begin_detaching" => LegacyStep::Transition(IN_USE, DETACHING),
        "os-roll_detaching" => LegacyStep::Transition(DETACHING, IN_USE),
        "os-attach" => LegacyStep::Attach(LegacyAttach::parse(&args)?),
        "os-detach" => LegacyStep::Detach(
            args.get("attachment_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        "os-initialize_connection" => {
            return initialize_connection(volumes, volume_id, &args).await;
        }
        "os-terminate_connection" => {
            connector_of(&args)?.ok_or_else(|| errors::bad_request("Must specify 'connector'"))?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        other => return Err(no_such_action(other)),
    };
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock_volume(tx, volume_id).await?;
            step.apply(tx, &mut volume).await
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// What a legacy action does to the volume (locked in its transaction).
enum LegacyStep {
    /// From one volume status to another.
    Transition(&'static str, &'static str),
    Attach(LegacyAttach),
    /// `os-detach` of the attachment given (optional when the volume has one).
    Detach(Option<String>),
}

impl LegacyStep {
    async fn apply(&self, tx: &mut Tx, volume: &mut Volume) -> crate::db::Result<()> {
        match self {
            LegacyStep::Transition(from, to) => transition(tx, volume, from, to).await,
            LegacyStep::Attach(request) => request.attach(tx, volume).await,
            LegacyStep::Detach(wanted) => legacy_detach(tx, volume, wanted.as_deref()).await,
        }
    }
}

/// Moves the volume from `from` to `to`, else 400 with Cinder's message. For
/// `os-roll_detaching` from a volume no longer detaching, Cinder answers 202 and changes
/// nothing; so do we.
async fn transition(
    tx: &mut Tx,
    volume: &mut Volume,
    from: &str,
    to: &str,
) -> crate::db::Result<()> {
    if volume.status != from {
        if to == volume_status::IN_USE {
            return Ok(());
        }
        return Err(errors::invalid_volume(format!(
            "Volume status must be {from} to {}.",
            match to {
                "attaching" => "reserve",
                "available" => "unreserve",
                _ => "begin detaching",
            }
        ))
        .into());
    }
    volume.status = to.into();
    volume.updated_at = Some(now_rfc3339());
    tx.save(&*volume).await
}

/// `os-attach` `{"instance_uuid", "host_name", "mountpoint", "mode"}`.
struct LegacyAttach {
    instance: Option<String>,
    host: Option<String>,
    mountpoint: String,
    mode: String,
}

impl LegacyAttach {
    /// Reads and checks the arguments.
    fn parse(args: &Value) -> Result<LegacyAttach, ApiError> {
        let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
        let instance = text("instance_uuid");
        let host = text("host_name");
        if instance.is_none() && host.is_none() {
            return Err(errors::bad_request(
                "Invalid request to attach volume to an invalid target",
            ));
        }
        let mountpoint =
            text("mountpoint").ok_or_else(|| errors::bad_request("Must specify 'mountpoint'"))?;
        let mode = text("mode").unwrap_or_else(|| "rw".into());
        if !matches!(mode.as_str(), "rw" | "ro") {
            return Err(errors::bad_request(
                "Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' or 'ro'",
            ));
        }
        Ok(LegacyAttach {
            instance,
            host,
            mountpoint,
            mode,
        })
    }

    /// Records an attached attachment and makes the volume `in-use`.
    async fn attach(&self, tx: &mut Tx, volume: &mut Volume) -> crate::db::Result<()> {
        let allowed: &[&str] = match volume.multiattach {
            true => &["available", "attaching", "reserved", "in-use"],
            false => &["available", "attaching", "reserved"],
        };
        check_status(volume, allowed, "attach")?;
        check_mode(volume, &self.mode)?;
        let mut attachment = new_attachment(
            volume,
            self.instance.clone(),
            attach_status::ATTACHED,
            self.mode.clone(),
        );
        attachment.attached_host = self.host.clone();
        attachment.mountpoint = Some(self.mountpoint.clone());
        attachment.attach_time = Some(attachment.created_at.clone());
        tx.insert(&attachment).await?;
        complete(tx, volume, &mut attachment).await
    }
}

/// `os-detach`: detaches the attachment `wanted`, or the volume's only one.
async fn legacy_detach(
    tx: &mut Tx,
    volume: &mut Volume,
    wanted: Option<&str>,
) -> crate::db::Result<()> {
    let attachments: Vec<Attachment> = tx.select("volume_id = $1", &[&volume.id]).await?;
    let id = match (wanted, attachments.as_slice()) {
        (Some(id), _) if attachments.iter().any(|a| a.id == id) => id.to_string(),
        (Some(id), _) => return Err(errors::attachment_not_found(id).into()),
        (None, [only]) => only.id.clone(),
        (None, []) => {
            return Err(
                errors::invalid_volume("Volume must be attached in order to detach.").into(),
            );
        }
        (None, _) => {
            return Err(errors::invalid_volume(
                "Detach volume failed: more than one attachment, but no attachment_id provided.",
            )
            .into());
        }
    };
    detach(tx, volume, &id).await.map(|_| ())
}

/// `os-initialize_connection` `{"connector": {...}}` → 200 `{"connection_info": ...}`.
async fn initialize_connection(
    volumes: &Volumes,
    volume_id: &str,
    args: &Value,
) -> Result<Response, ApiError> {
    let connector =
        connector_of(args)?.ok_or_else(|| errors::bad_request("Must specify 'connector'"))?;
    let volume: Volume = volumes
        .db
        .get(volume_id)
        .await?
        .ok_or_else(|| errors::volume_not_found(volume_id))?;
    if volume.host.is_none() || volume.status.contains("error") || volume.status == "creating" {
        return Err(errors::invalid_volume(format!(
            "Volume {} is not ready for a connection (status {}).",
            volume.id, volume.status
        )));
    }
    let mut info = volumes
        .driver
        .connection_info(&volume, &connector)
        .map_err(ApiError::internal)?;
    info["data"]["access_mode"] = json!(if volume.readonly == Some(true) {
        "ro"
    } else {
        "rw"
    });
    info["data"]["volume_id"] = json!(volume.id);
    Ok(super::ok("connection_info", info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(status: &str) -> Attachment {
        Attachment {
            id: "a".into(),
            volume_id: "v".into(),
            project_id: "p".into(),
            instance_uuid: None,
            attach_status: status.into(),
            attach_mode: "rw".into(),
            attached_host: None,
            mountpoint: None,
            connector: None,
            connection_info: None,
            attach_time: None,
            detach_time: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: None,
        }
    }

    #[test]
    fn remaining_attachments_decide_the_volume_status() {
        assert_eq!(status_after(&[]), ("available", "detached"));
        assert_eq!(
            status_after(&[attachment("reserved")]),
            ("reserved", "reserved")
        );
        assert_eq!(
            status_after(&[attachment("reserved"), attachment("attaching")]),
            ("attaching", "attaching")
        );
        assert_eq!(
            status_after(&[attachment("detaching"), attachment("attached")]),
            ("in-use", "attached")
        );
    }
}
