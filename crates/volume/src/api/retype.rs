//! `os-retype` (`cinder/volume/api.py` `retype`): a volume moves to another volume type. The
//! API checks the request and the volume, reserves the new type's per-type quotas (the row's
//! `retype_to` counts it there until the end) and marks the volume `retyping`; the volume
//! manager then changes the type if this backend serves it, or else leaves it (there is no
//! other backend to migrate to), restoring the status before in both cases.

use super::volumes::{check_type_size, enforce, lock, start_task, visible};
use crate::db::write_tx;
use crate::errors;
use crate::model::{VolumeTask, VolumeType, volume_status};
use crate::quota;
use crate::service::{Volumes, Work};
use crate::types;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, Schema};
use serde_json::{Value, json};
use std::sync::LazyLock;

static RETYPE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object",
        "properties": {"os-retype": {
            "type": "object",
            "properties": {
                "new_type": {"type": "string"},
                "migration_policy": {"type": ["string", "null"], "enum": ["on-demand", "never", null]},
            },
            "required": ["new_type"],
            "additionalProperties": false,
        }},
        "required": ["os-retype"],
        "additionalProperties": false,
    }))
});

/// The refusal of a volume in the wrong state, of the same type, or whose front-end QoS
/// would change while attached (Cinder's conditional update failing).
fn not_retypable() -> ApiError {
    errors::invalid_volume(
        "Retype needs volume to be in available or in-use state, not be part of an active \
         migration or a consistency group, requested type has to be different that the one \
         from the volume, and for in-use volumes front-end qos specs cannot change.",
    )
}

/// The new type by id or name, whatever its access (`get_by_name_or_id` with an elevated
/// context); 404 otherwise.
async fn new_type(volumes: &Volumes, wanted: &str) -> Result<VolumeType, ApiError> {
    let mut conn = volumes.db.conn().await?;
    let found = types::find(&mut conn, wanted, None, true).await?;
    found.ok_or_else(|| match uuid::Uuid::parse_str(wanted) {
        Ok(_) => errors::volume_type_not_found(wanted),
        Err(_) => ApiError::not_found(format!(
            "Volume type with name {wanted} could not be found."
        )),
    })
}

/// The QoS specs consumer of a type (`None` without QoS specs).
async fn qos_consumer(volumes: &Volumes, t: &VolumeType) -> Result<Option<String>, ApiError> {
    let Some(id) = &t.qos_specs_id else {
        return Ok(None);
    };
    let specs: Option<crate::model::QosSpecs> = volumes.db.get(id).await?;
    Ok(specs.map(|s| s.consumer))
}

/// Whether a type's QoS specs act on the front end (the hypervisor): consumer `front-end` or
/// `both`.
async fn front_end_qos(volumes: &Volumes, t: &VolumeType) -> Result<bool, ApiError> {
    Ok(qos_consumer(volumes, t)
        .await?
        .is_some_and(|c| c != "back-end"))
}

/// `os-retype` `{"new_type", "migration_policy"}` (202).
pub(super) async fn retype(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    RETYPE.validate(body)?;
    let args = &body["os-retype"];
    let wanted = args["new_type"].as_str().unwrap_or_default();
    let policy = args["migration_policy"]
        .as_str()
        .unwrap_or("never")
        .to_string();
    let seen = visible(volumes, auth, id).await?;
    enforce(auth, "volume:retype", &seen.project_id)?;
    let new = new_type(volumes, wanted).await?;
    check_type_size(&new, seen.size)?;
    let target_multiattach = types::is_multiattach(&new);
    if seen.multiattach != target_multiattach {
        if seen.status != volume_status::AVAILABLE {
            return Err(errors::invalid_input(format!(
                "Invalid volume_type passed, retypes affecting multiattach are only allowed on \
                 available volumes, the specified volume however currently has a status of: {}.",
                seen.status
            )));
        }
        if target_multiattach {
            enforce(auth, "volume:multiattach", &seen.project_id)?;
        }
    }
    // `volume_qos_allows_retype`: an attached volume keeps its front-end QoS.
    let old: Option<VolumeType> = volumes.db.get(&seen.volume_type_id).await?;
    let qos_changes = match &old {
        Some(old) if old.qos_specs_id != new.qos_specs_id => {
            front_end_qos(volumes, old).await? || front_end_qos(volumes, &new).await?
        }
        _ => false,
    };
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock(tx, id).await?;
            let retypable = matches!(
                volume.status.as_str(),
                volume_status::AVAILABLE | volume_status::IN_USE
            ) && volume.task.is_none()
                && volume.volume_type_id != new.id
                && volume.volume_type_id == seen.volume_type_id
                && !(qos_changes && volume.status == volume_status::IN_USE);
            if !retypable {
                return Err(not_retypable().into());
            }
            let reserve = quota::Delta {
                volumes: i64::from(volume.consumes_quota),
                gigabytes: if volume.consumes_quota {
                    volume.size
                } else {
                    0
                },
                snapshots: 0,
                volume_type: Some((new.id.clone(), new.name.clone())),
            };
            quota::check_type(tx, &volumes.settings, &volume.project_id, &reserve).await?;
            let task = VolumeTask::Retype {
                new_type_id: new.id.clone(),
                migration_policy: policy.clone(),
                previous_status: volume.status.clone(),
            };
            start_task(tx, &mut volume, "retyping", task).await
        }
        .await
    })?;
    volumes.cast(Work::Volume(id.to_string())).await;
    Ok(StatusCode::ACCEPTED.into_response())
}
