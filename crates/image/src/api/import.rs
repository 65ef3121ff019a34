//! Interoperable import (`POST /v2/images/{id}/import`) and the image's import tasks.

use super::{AppState, enforce_on, no_image, visible};
use crate::db;
use crate::model::{IMPORT_TASK_PROPERTY, status};
use crate::service::db_error;
use axum::{Json, body::Bytes, extract::Path, http::StatusCode};
use ferrostack_api::{ApiError, Auth, RequestId};
use serde_json::{Value, json};

/// `POST /v2/images/{id}/import`
pub async fn import(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    if body.is_empty() {
        // A policy decision is still recorded for the refusal path.
        let _ = auth.allows("modify_image", &json!({}));
        return Err(ApiError::bad_request("Body expected in request."));
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON in request body: {e}")))?;
    let Some(method) = body.get("method").filter(|m| m.is_object()) else {
        return Err(ApiError::bad_request(
            "Import request requires a 'method' field.",
        ));
    };
    let Some(name) = method.get("name").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "Import request requires a 'name' field.",
        ));
    };
    if !images
        .config
        .enabled_import_methods
        .iter()
        .any(|m| m == name)
    {
        return Err(ApiError::bad_request(format!(
            "Unknown import method name '{name}'."
        )));
    }
    for key in ["all_stores", "all_stores_must_succeed"] {
        if let Some(v) = body.get(key)
            && !v.is_boolean()
        {
            return Err(ApiError::bad_request(format!(
                "'{key}' must be boolean value only"
            )));
        }
    }
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    let image = &view.image;
    match (name, image.status.as_str()) {
        (_, status::ACTIVE) => {
            return Err(ApiError::conflict(
                "Image with status active cannot be target for import",
            ));
        }
        ("web-download", s) if s != status::QUEUED => {
            return Err(ApiError::conflict(format!(
                "Image needs to be in 'queued' state to use '{name}' method"
            )));
        }
        ("glance-direct", s) if s != status::UPLOADING => {
            return Err(ApiError::conflict(
                "Image needs to be staged before 'glance-direct' method can be used",
            ));
        }
        _ => {}
    }
    if image.container_format.is_none() {
        return Err(ApiError::conflict(
            "'container_format' needs to be set before import",
        ));
    }
    if image.disk_format.is_none() {
        return Err(ApiError::conflict(
            "'disk_format' needs to be set before import",
        ));
    }
    enforce_on(&auth, &view, "modify_image", || {
        "You are not authorized to complete modify_image action.".into()
    })?;
    if image
        .properties
        .get(IMPORT_TASK_PROPERTY)
        .is_some_and(|t| !t.is_empty())
    {
        return Err(ApiError::conflict(format!(
            "New operation on image '{id}' is not permitted as prior operation is still in \
             progress"
        )));
    }
    if body.get("all_stores_must_succeed") == Some(&Value::Bool(false)) {
        return Err(ApiError::bad_request(
            "All_stores_must_succeed can only be set with enabled_backends",
        ));
    }
    let uri = match name {
        "web-download" => {
            let uri = method
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !crate::service::uri_allowed(&images.config, uri).await {
                return Err(ApiError::bad_request(format!(
                    "URI for web-download does not pass filtering: {uri}"
                )));
            }
            Some(uri.to_string())
        }
        _ => None,
    };
    let request_id = request_id.map(|r| r.0.0.clone()).unwrap_or_default();
    images
        .start_import(
            view.image,
            name.to_string(),
            uri,
            json!({"import_req": body}),
            auth.user.id.clone(),
            request_id,
        )
        .await?;
    tracing::info!(image = %id, method = name, "image import started");
    Ok(StatusCode::ACCEPTED)
}

/// `GET /v2/images/{id}/tasks`
pub async fn tasks(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "get_image", || {
        format!("No image found with ID {id}")
    })?;
    let tasks = db::tasks(&images.store, &id).await.map_err(db_error)?;
    Ok(Json(
        json!({"tasks": tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>()}),
    ))
}
