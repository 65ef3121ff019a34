//! Image tags (`PUT`/`DELETE /v2/images/{id}/tags/{tag}`).

use super::images::check_quota;
use super::{AppState, enforce_on, visible};
use crate::model::now;
use axum::{extract::Path, http::StatusCode};
use ferrostack_api::{ApiError, Auth};
use serde_json::json;

async fn change(
    auth: Auth,
    state: AppState,
    id: String,
    tag: String,
    add: bool,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, || format!("Image {id} not found.")).await?;
    enforce_on(&auth, &view, "modify_image", || {
        "You are not authorized to complete modify_image action.".into()
    })?;
    let mut image = view.image;
    if add {
        images
            .validator
            .validate_property("tags", &json!([tag]))
            .map_err(ApiError::bad_request)?;
        if !image.tags.insert(tag) {
            return Ok(StatusCode::NO_CONTENT);
        }
        check_quota(image.tags.len(), images.config.image_tag_quota, "tag", &id)?;
    } else if !image.tags.remove(&tag) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    image.updated_at = now();
    let expected = image.status.clone();
    if !images.save(&mut image, &expected).await? {
        return Err(ApiError::conflict(format!(
            "Image {id} changed during the update; retry."
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/tags/{tag}`
pub async fn add(
    auth: Auth,
    state: AppState,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    change(auth, state, id, tag, true).await
}

/// `DELETE /v2/images/{id}/tags/{tag}`
pub async fn remove(
    auth: Auth,
    state: AppState,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    change(auth, state, id, tag, false).await
}
