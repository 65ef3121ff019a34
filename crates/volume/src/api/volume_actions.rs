//! `POST /v3/volumes/{id}/action`: the volume actions (`cinder/api/contrib/volume_actions.py`,
//! `admin_actions.py`, `volume_image_metadata.py`): `os-extend`, `os-reset_status`,
//! `os-force_delete`, `os-set_bootable`, `os-update_readonly_flag`, `os-volume_upload_image`,
//! `os-retype` ([`super::retype`]) and the image metadata actions. The legacy attach actions
//! are the attachments module's ([`super::attachments::legacy_action`]).

use super::volumes::{
    as_bool, authorized, boolean_schema, change_volume, check_metadata_writable, check_type_size,
    check_updatable, delete_volume, enforce, lock, start_task, string_map, visible,
};
use super::{AppState, Mv, accepted, at_least, body_schema, closed_object, no_such_action, ok};
use crate::db::{self, write_tx};
use crate::errors;
use crate::model::{Attachment, Volume, VolumeTask, VolumeType, attach_status, volume_status};
use crate::quota::{self, Delta};
use crate::service::{Volumes, Work};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use ferrostack_store::now_rfc3339;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

/// The route of the volume actions.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new().route("/volumes/{id}/action", post(action))
}

/// The actions [`super::attachments::legacy_action`] runs.
const LEGACY_ATTACH_ACTIONS: &[&str] = &[
    "os-reserve",
    "os-unreserve",
    "os-begin_detaching",
    "os-roll_detaching",
    "os-attach",
    "os-detach",
    "os-initialize_connection",
    "os-terminate_connection",
];

/// `POST /v3/volumes/{id}/action`: `{"<action>": {...}}`.
async fn action(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let name = match body.as_object() {
        Some(map) if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
        Some(map) if map.len() > 1 => {
            return Err(errors::bad_request(
                "Malformed request body: too many body keys",
            ));
        }
        _ => return Err(errors::bad_request("Malformed request body")),
    };
    if LEGACY_ATTACH_ACTIONS.contains(&name.as_str()) {
        return super::attachments::legacy_action(&volumes, &auth, &mv, &id, &name, &body).await;
    }
    let args = &body[name.as_str()];
    match name.as_str() {
        "os-extend" => extend(&volumes, &auth, &mv, &id, &body).await,
        "os-reset_status" => reset_status(&volumes, &auth, &id, &body).await,
        "os-force_delete" => force_delete(&volumes, &auth, &id).await,
        "os-set_bootable" => set_flag(&volumes, &auth, &id, &body, &BOOTABLE).await,
        "os-update_readonly_flag" => set_flag(&volumes, &auth, &id, &body, &READONLY).await,
        "os-volume_upload_image" => upload_image(&volumes, &auth, &mv, &id, &body).await,
        "os-set_image_metadata" => set_image_metadata(&volumes, &auth, &id, &body).await,
        "os-unset_image_metadata" => unset_image_metadata(&volumes, &auth, &id, &body).await,
        "os-show_image_metadata" => show_image_metadata(&volumes, &auth, &id, args).await,
        "os-retype" => super::retype::retype(&volumes, &auth, &id, &body).await,
        other => Err(no_such_action(other)),
    }
}

/// `{"<action>": <object with properties>}` with no other keys (Cinder's action schemas).
fn action_schema(action: &str, properties: Value, required: &[&str]) -> Schema {
    body_schema(action, closed_object(properties, required))
}

/// An action with one property, `field`, required.
fn one_field_action(action: &str, field: &str, schema: Value) -> Schema {
    action_schema(action, json!({ field: schema }), &[field])
}

fn size_schema() -> Value {
    json!({"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": 2147483647})
}

static EXTEND: LazyLock<Schema> =
    LazyLock::new(|| one_field_action("os-extend", "new_size", size_schema()));

static RESET_STATUS: LazyLock<Schema> = LazyLock::new(|| {
    let text = json!({"type": ["string", "null"]});
    action_schema(
        "os-reset_status",
        json!({"status": text, "attach_status": text, "migration_status": text}),
        &[],
    )
});

fn upload_schema(v31: bool) -> Schema {
    let mut properties = json!({
        "image_name": {"type": "string", "minLength": 1, "maxLength": 255},
        "force": boolean_schema(),
        "disk_format": {"type": "string", "enum": ["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"]},
        "container_format": {"type": ["string", "null"], "maxLength": 255},
    });
    if v31 {
        properties["visibility"] =
            json!({"type": "string", "enum": ["community", "public", "private", "shared"]});
        properties["protected"] = boolean_schema();
    }
    action_schema("os-volume_upload_image", properties, &["image_name"])
}

static UPLOAD: LazyLock<Schema> = LazyLock::new(|| upload_schema(false));
static UPLOAD_31: LazyLock<Schema> = LazyLock::new(|| upload_schema(true));

static SET_IMAGE_METADATA: LazyLock<Schema> = LazyLock::new(|| {
    let metadata = json!({
        "type": "object",
        "patternProperties": {"^[a-zA-Z0-9_:. /-]{1,255}$": {"type": "string"}},
        "additionalProperties": false,
    });
    one_field_action("os-set_image_metadata", "metadata", metadata)
});

static UNSET_IMAGE_METADATA: LazyLock<Schema> = LazyLock::new(|| {
    let key = json!({"type": "string", "minLength": 1, "maxLength": 255});
    one_field_action("os-unset_image_metadata", "key", key)
});

fn accepted_empty() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// An integer or a string of digits (already checked by a schema).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The volume type of `volume` (for quota and size limits).
async fn type_of(volumes: &Volumes, volume: &Volume) -> Result<Option<VolumeType>, ApiError> {
    Ok(volumes.db.get(&volume.volume_type_id).await?)
}

// ---------------------------------------------------------------------------------------------
// os-extend

/// `per_volume_gigabytes` for an extend (`VolumeSizeExceedsLimit`, 413).
async fn check_per_volume_limit(
    tx: &mut db::Tx,
    volumes: &Volumes,
    project: &str,
    new_size: i64,
) -> db::Result<()> {
    let limits = quota::limits(tx.conn(), &volumes.settings, project).await?;
    match limits.get("per_volume_gigabytes").copied() {
        Some(limit) if limit >= 0 && new_size > limit => Err(errors::over_quota(format!(
            "Requested volume size {new_size}G is larger than maximum allowed limit {limit}G."
        ))
        .into()),
        _ => Ok(()),
    }
}

/// `os-extend` `{"new_size"}`: an available volume grows (the manager does it), and from 3.42
/// an in-use one when the backend can grow it under a running guest (the manager then tells
/// the compute service, which has the guest read the new size).
async fn extend(
    volumes: &Volumes,
    auth: &Auth,
    mv: &Mv,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    EXTEND.validate(body)?;
    let new_size = integer(&body["os-extend"]["new_size"])
        .ok_or_else(|| errors::invalid_input("new_size must be an integer"))?;
    let seen = visible(volumes, auth, id).await?;
    let attached = at_least(mv, 42) && seen.status == volume_status::IN_USE;
    let rule = match attached {
        true => "volume:extend_attached_volume",
        false => "volume:extend",
    };
    enforce(auth, rule, &seen.project_id)?;
    if attached && !volumes.driver.extends_attached() {
        return Err(errors::invalid_volume(format!(
            "Volume {id} is in-use: this backend (qcow2 files) cannot extend an attached \
             volume; detach it first."
        )));
    }
    let allowed = match attached {
        true => volume_status::IN_USE,
        false => volume_status::AVAILABLE,
    };
    let volume_type = type_of(volumes, &seen).await?;
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock(tx, id).await?;
            let increase = new_size - volume.size;
            if increase <= 0 {
                return Err(errors::invalid_input(format!(
                    "New size for extend must be greater than current size. (current: {}, \
                     extended: {new_size}).",
                    volume.size
                ))
                .into());
            }
            if let Some(t) = &volume_type {
                check_type_size(t, new_size)?;
            }
            if volume.status != allowed {
                return Err(errors::invalid_volume(format!(
                    "Volume {id} status must be '{{'status': '{allowed}'}}' to extend, \
                     currently {}.",
                    volume.status
                ))
                .into());
            }
            check_per_volume_limit(tx, volumes, &volume.project_id, new_size).await?;
            let delta = Delta {
                gigabytes: increase,
                volume_type: volume_type.as_ref().map(|t| (t.id.clone(), t.name.clone())),
                ..Delta::default()
            };
            quota::check(tx, &volumes.settings, &volume.project_id, &delta).await?;
            let task = VolumeTask::Extend {
                new_size,
                previous_status: volume.status.clone(),
            };
            start_task(tx, &mut volume, volume_status::EXTENDING, task).await
        }
        .await
    })?;
    volumes.cast(Work::Volume(id.to_string())).await;
    Ok(accepted_empty())
}

// ---------------------------------------------------------------------------------------------
// Admin actions

/// A Python list literal, as Cinder's messages print the valid values.
fn python_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The lower-cased non-empty value of `key` in `args`.
fn lower(args: &Value, key: &str) -> Option<String> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

/// The checked `os-reset_status` arguments: status and attach status.
fn reset_arguments(args: &Value) -> Result<(Option<String>, Option<String>), ApiError> {
    let status = lower(args, "status");
    let attach = lower(args, "attach_status");
    let migration = lower(args, "migration_status");
    if status.is_none() && attach.is_none() && migration.is_none() {
        return Err(errors::bad_request(
            "Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    if let Some(s) = status
        .as_deref()
        .filter(|s| !volume_status::ALL.contains(s))
    {
        return Err(errors::bad_request(format!(
            "Volume status: {s} is invalid, valid statuses are: {}.",
            python_list(volume_status::ALL)
        )));
    }
    let attach_values = [attach_status::ATTACHED, attach_status::DETACHED];
    if let Some(s) = attach.as_deref().filter(|s| !attach_values.contains(s)) {
        return Err(errors::bad_request(format!(
            "Volume attach status: {s} is invalid, valid statuses are: {}.",
            python_list(&attach_values)
        )));
    }
    const MIGRATION: &[&str] = &[
        "migrating",
        "error",
        "success",
        "completing",
        "none",
        "starting",
    ];
    match migration.as_deref() {
        Some(s) if !MIGRATION.contains(&s) => Err(errors::bad_request(format!(
            "Volume migration status: {s} is invalid, valid statuses are: {}.",
            python_list(MIGRATION)
        ))),
        Some(s) if s != "none" => Err(errors::bad_request(format!(
            "Volume migration status: {s} cannot be set: volume migration is not available \
             on this cloud (the only migration status is none)."
        ))),
        _ => Ok((status, attach)),
    }
}

/// `os-reset_status` (admin): sets the status and/or attach status as given, clears the
/// task; resetting to `detached` removes the volume's attachments.
async fn reset_status(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    RESET_STATUS.validate(body)?;
    let (status, attach) = reset_arguments(&body["os-reset_status"])?;
    authorized(
        volumes,
        auth,
        id,
        "volume_extension:volume_admin_actions:reset_status",
    )
    .await?;
    if let Some(s) = status.as_deref().filter(|s| *s == volume_status::DELETING) {
        return Err(errors::bad_request(format!("Cannot reset-state to {s}")));
    }
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock(tx, id).await?;
            let attachments: Vec<Attachment> = tx.select("volume_id = $1", &[id]).await?;
            if status.as_deref() == Some(volume_status::IN_USE) && attachments.is_empty() {
                return Err(errors::bad_request(
                    "Cannot reset-state to in-use because volume does not have any attachments.",
                )
                .into());
            }
            if let Some(s) = &status {
                volume.status = s.clone();
            }
            if let Some(a) = &attach {
                volume.attach_status = a.clone();
            }
            if attach.as_deref() == Some(attach_status::DETACHED) {
                for a in &attachments {
                    tx.delete::<Attachment>(&a.id).await?;
                }
            }
            volume.task = None;
            volume.updated_at = Some(now_rfc3339());
            tx.save(&volume).await?;
            Ok::<(), db::Error>(())
        }
        .await
    })?;
    Ok(accepted_empty())
}

/// `os-force_delete` (admin): a delete without the status condition.
async fn force_delete(volumes: &Volumes, auth: &Auth, id: &str) -> Result<Response, ApiError> {
    let seen = authorized(
        volumes,
        auth,
        id,
        "volume_extension:volume_admin_actions:force_delete",
    )
    .await?;
    enforce(auth, "volume:delete", &seen.project_id)?;
    delete_volume(volumes, auth, id, false, true).await?;
    Ok(accepted_empty())
}

// ---------------------------------------------------------------------------------------------
// Flags

/// A flag action, `{"<action>": {"<field>": <boolean>}}`: `rule` allows it, `set` checks the
/// volume and sets the flag, the answer is `status` with no body.
struct Flag {
    action: &'static str,
    field: &'static str,
    rule: &'static str,
    set: fn(&mut Volume, bool) -> Result<(), ApiError>,
    status: StatusCode,
    schema: Schema,
}

impl Flag {
    fn new(
        action: &'static str,
        field: &'static str,
        rule: &'static str,
        set: fn(&mut Volume, bool) -> Result<(), ApiError>,
        status: StatusCode,
    ) -> Flag {
        let schema = one_field_action(action, field, boolean_schema());
        Flag {
            action,
            field,
            rule,
            set,
            status,
            schema,
        }
    }
}

/// `os-set_bootable` `{"bootable"}` (200).
static BOOTABLE: LazyLock<Flag> = LazyLock::new(|| {
    Flag::new(
        "os-set_bootable",
        "bootable",
        "volume:update",
        set_bootable,
        StatusCode::OK,
    )
});

/// `os-update_readonly_flag` `{"readonly"}` (202).
static READONLY: LazyLock<Flag> = LazyLock::new(|| {
    Flag::new(
        "os-update_readonly_flag",
        "readonly",
        "volume:update_readonly_flag",
        set_readonly,
        StatusCode::ACCEPTED,
    )
});

fn set_bootable(volume: &mut Volume, bootable: bool) -> Result<(), ApiError> {
    check_updatable(volume)?;
    volume.bootable = bootable;
    Ok(())
}

/// The readonly flag of an available volume.
fn set_readonly(volume: &mut Volume, readonly: bool) -> Result<(), ApiError> {
    if volume.status != volume_status::AVAILABLE {
        return Err(errors::invalid_volume(format!(
            "Volume {} status must be available to update readonly flag, but current status \
             is: {}.",
            volume.id, volume.status
        )));
    }
    volume.readonly = Some(readonly);
    Ok(())
}

/// Runs a flag action on the volume `id` (once it is visible to the caller and the flag's
/// rule allows the change).
async fn set_flag(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
    flag: &Flag,
) -> Result<Response, ApiError> {
    flag.schema.validate(body)?;
    let value = as_bool(&body[flag.action][flag.field])
        .ok_or_else(|| errors::invalid_input(format!("{} must be a boolean", flag.field)))?;
    authorized(volumes, auth, id, flag.rule).await?;
    change_volume(volumes, id, |volume| (flag.set)(volume, value)).await?;
    Ok(flag.status.into_response())
}

// ---------------------------------------------------------------------------------------------
// os-volume_upload_image

/// What an upload asks for.
struct Upload {
    image_name: String,
    disk_format: String,
    container_format: String,
    visibility: String,
    protected: bool,
}

fn parse_upload(mv: &Mv, body: &Value) -> Result<Upload, ApiError> {
    let v31 = at_least(mv, 1);
    match v31 {
        true => UPLOAD_31.validate(body)?,
        false => UPLOAD.validate(body)?,
    }
    let args = &body["os-volume_upload_image"];
    let text = |key: &str, default: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Ok(Upload {
        image_name: text("image_name", ""),
        disk_format: text("disk_format", "raw"),
        container_format: text("container_format", "bare"),
        visibility: if v31 {
            text("visibility", "private")
        } else {
            "private".into()
        },
        protected: v31 && args.get("protected").and_then(as_bool).unwrap_or(false),
    })
}

/// The refusal of an upload from a volume not `available` (Cinder ignores `force` unless
/// `enable_force_upload` is set, which it is not by default).
fn not_uploadable(id: &str) -> ApiError {
    errors::invalid_volume(format!("Volume {id} status must be available"))
}

/// `os-volume_upload_image`: creates the image, marks the volume `uploading` with the task,
/// casts it; answers the upload's description.
async fn upload_image(
    volumes: &Volumes,
    auth: &Auth,
    mv: &Mv,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    let upload = parse_upload(mv, body)?;
    let seen = authorized(
        volumes,
        auth,
        id,
        "volume_extension:volume_actions:upload_image",
    )
    .await?;
    if upload.visibility == "public" {
        enforce(
            auth,
            "volume_extension:volume_actions:upload_public",
            &seen.project_id,
        )?;
    }
    if seen.status != volume_status::AVAILABLE {
        return Err(not_uploadable(id));
    }
    let project = auth.project_id().unwrap_or(&seen.project_id).to_string();
    let image = volumes
        .images()
        .create(
            &project,
            &upload.image_name,
            &upload.disk_format,
            &upload.container_format,
            &upload.visibility,
            upload.protected,
        )
        .await
        .map_err(|e| errors::bad_request(e.to_string()))?;
    let marked = change_volume(volumes, id, |volume| {
        if volume.status != volume_status::AVAILABLE {
            return Err(not_uploadable(id));
        }
        volume.task = Some(VolumeTask::UploadImage {
            image_id: image.id.clone(),
            disk_format: upload.disk_format.clone(),
            previous_status: volume.status.clone(),
        });
        volume.status = volume_status::UPLOADING.into();
        Ok(())
    })
    .await;
    let volume = match marked {
        Ok(v) => v,
        Err(e) => {
            if let Err(cleanup) = volumes.images().delete(&image.id).await {
                tracing::warn!(image = %image.id, error = %cleanup, "unused upload image not deleted");
            }
            return Err(e);
        }
    };
    volumes.cast(Work::Volume(id.to_string())).await;
    let volume_type = type_of(volumes, &volume).await?;
    Ok(accepted(
        "os-volume_upload_image",
        json!({
            "id": volume.id,
            "updated_at": volume.updated_at.as_deref().map(super::views::timestamp),
            "status": volume_status::UPLOADING,
            "display_description": volume.description,
            "size": volume.size,
            "volume_type": volume_type.as_ref().map(super::views::volume_type_object),
            "image_id": image.id,
            "container_format": image.container_format.unwrap_or(upload.container_format),
            "disk_format": image.disk_format.unwrap_or(upload.disk_format),
            "image_name": image.name,
            "protected": upload.protected,
            "visibility": upload.visibility,
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Image metadata

/// `os-set_image_metadata` `{"metadata": {...}}`: merges into the volume's image metadata
/// (200, the whole image metadata).
async fn set_image_metadata(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    SET_IMAGE_METADATA.validate(body)?;
    let wanted = string_map(&body["os-set_image_metadata"]["metadata"]);
    let seen = authorized(
        volumes,
        auth,
        id,
        "volume_extension:volume_image_metadata:set",
    )
    .await?;
    enforce(auth, "volume:update_volume_metadata", &seen.project_id)?;
    let metadata = change_volume(volumes, id, |volume| {
        check_metadata_writable(volume, "Updating")?;
        volume.image_metadata.extend(wanted.clone());
        Ok(())
    })
    .await?
    .image_metadata;
    Ok(ok("metadata", json!(metadata)))
}

fn image_metadata_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Glance metadata for volume/snapshot {id} cannot be found."
    ))
}

/// `os-unset_image_metadata` `{"key"}` (200, empty).
async fn unset_image_metadata(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    UNSET_IMAGE_METADATA.validate(body)?;
    let key = body["os-unset_image_metadata"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let seen = authorized(
        volumes,
        auth,
        id,
        "volume_extension:volume_image_metadata:remove",
    )
    .await?;
    enforce(auth, "volume:get_volume_metadata", &seen.project_id)?;
    if !seen.image_metadata.contains_key(&key) {
        return Err(image_metadata_not_found(id));
    }
    enforce(auth, "volume:delete_volume_metadata", &seen.project_id)?;
    change_volume(volumes, id, |volume| {
        check_metadata_writable(volume, "Deleting")?;
        match volume.image_metadata.remove(&key) {
            Some(_) => Ok(()),
            None => Err(image_metadata_not_found(id)),
        }
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `os-show_image_metadata` (200, `{"metadata": {...}}`).
async fn show_image_metadata(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    args: &Value,
) -> Result<Response, ApiError> {
    if !(args.is_null() || args.is_object()) {
        return Err(errors::bad_request(
            "Invalid input for field 'os-show_image_metadata': must be an object or null",
        ));
    }
    let volume = authorized(volumes, auth, id, "volume:get_volume_metadata").await?;
    Ok(ok("metadata", json!(volume.image_metadata)))
}
