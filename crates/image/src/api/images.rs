//! Create, show, delete, deactivate and reactivate images.

use super::{AppState, Visible, enforce_on, no_image, visible};
use crate::db;
use crate::model::{Image, READ_ONLY_KEYS, is_reserved, now, status};
use crate::service::{Images, db_error};
use axum::{
    Json,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};

/// Keys that are image attributes rather than extra properties.
const CORE_SETTABLE: [&str; 10] = [
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_ram",
    "min_disk",
    "owner",
    "tags",
];

/// Checks a count against a per-image quota (negative: unlimited) → 413.
pub(crate) fn check_quota(count: usize, quota: i64, what: &str, id: &str) -> Result<(), ApiError> {
    if quota >= 0 && count as i64 > quota {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Image {what} limit exceeded for image {id}: The limit has been exceeded on the \
                 number of allowed image {what}s. Attempted: {count}, Maximum: {quota}"
            ),
        ));
    }
    Ok(())
}

/// Sets a core attribute (already schema-validated) on `image`.
pub(crate) fn set_core(image: &mut Image, key: &str, value: &Value) -> Result<(), ApiError> {
    let text = || value.as_str().map(str::to_string);
    match key {
        "name" => image.name = text(),
        "visibility" => image.visibility = text().unwrap_or_default(),
        "protected" => image.protected = value.as_bool().unwrap_or(false),
        "os_hidden" => image.os_hidden = value.as_bool().unwrap_or(false),
        "disk_format" => image.disk_format = text(),
        "container_format" => image.container_format = text(),
        "owner" => image.owner = text(),
        "min_ram" | "min_disk" => {
            let n = value.as_i64().unwrap_or(0);
            if n < 0 {
                return Err(ApiError::bad_request(format!(
                    "Invalid value '{n}' for parameter '{key}': Cannot be a negative value"
                )));
            }
            match key {
                "min_ram" => image.min_ram = n,
                _ => image.min_disk = n,
            }
        }
        "tags" => {
            image.tags = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => return Err(ApiError::internal(format!("{key} is not a core attribute"))),
    }
    Ok(())
}

/// Whether `key` is a core attribute a client may set.
pub(crate) fn is_core_settable(key: &str) -> bool {
    CORE_SETTABLE.contains(&key)
}

/// Enforces the visibility rules for making an image public or community.
pub(crate) fn enforce_visibility(
    auth: &Auth,
    visibility: &str,
    target: &Value,
) -> Result<(), ApiError> {
    let rule = match visibility {
        "public" => "publicize_image",
        "community" => "communitize_image",
        _ => return Ok(()),
    };
    auth.enforce(rule, target)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

/// `POST /v2/images`
pub async fn create(
    auth: Auth,
    state: AppState,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let images = &state.0;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request("Body expected in request."));
    };
    for key in ["direct_url", "self", "file", "schema", "stores"] {
        if fields.contains_key(key) {
            return Err(ApiError::forbidden(format!(
                "Attribute '{key}' is read-only."
            )));
        }
    }
    images
        .validator
        .validate(&body)
        .map_err(ApiError::bad_request)?;
    for key in fields.keys() {
        if key.len() > 255 {
            return Err(ApiError::bad_request(
                "Custom property should not be greater than 255 characters.",
            ));
        }
        if is_reserved(key) || key == "locations" {
            return Err(ApiError::forbidden(format!(
                "Attribute '{key}' is reserved."
            )));
        }
    }
    let project = auth.project_id().map(str::to_string);
    let owner = match fields.get("owner") {
        Some(Value::String(o)) => Some(o.clone()),
        _ => project.clone(),
    };
    let target = json!({"project_id": project, "owner": owner});
    let target = ferrostack_api_target(target);
    if !auth.allows("add_image", &target) {
        if owner.is_some() && owner != project {
            return Err(ApiError::forbidden(format!(
                "You are not permitted to create images owned by '{}'.",
                owner.unwrap_or_default()
            )));
        }
        auth.enforce("add_image", &target)?;
    }
    if let Some(Value::String(v)) = fields.get("visibility") {
        enforce_visibility(&auth, v, &target)?;
    }
    if let Some(owner) = &owner
        && images.config.image_count_total >= 0
    {
        let (count, _) = db::usage(&images.store, owner).await.map_err(db_error)?;
        if count >= images.config.image_count_total {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Maximum number of images exceeded: project {owner} may own {} images.",
                    images.config.image_count_total
                ),
            ));
        }
    }
    for key in READ_ONLY_KEYS.iter().filter(|k| **k != "id") {
        if fields.contains_key(*key) {
            return Err(ApiError::forbidden(format!(
                "Attribute '{key}' is read-only."
            )));
        }
    }
    let id = match fields.get("id") {
        Some(Value::String(id)) => id.to_lowercase(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let mut image = Image::new(id, owner, &now());
    apply_fields(&mut image, fields)?;
    check_quota(
        image.properties.len(),
        images.config.image_property_quota,
        "property",
        &image.id,
    )?;
    check_quota(
        image.tags.len(),
        images.config.image_tag_quota,
        "tag",
        &image.id,
    )?;
    if db::id_taken(&images.store, &image.id)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::conflict(format!(
            "An image with identifier {} already exists",
            image.id
        )));
    }
    db::insert_image(&images.store, &image)
        .await
        .map_err(|e| match e {
            ferrostack_store::StoreError::Conflict(_) => ApiError::conflict(format!(
                "An image with identifier {} already exists",
                image.id
            )),
            other => db_error(other),
        })?;
    tracing::info!(image = %image.id, owner = ?image.owner, "image created");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        header_value(&format!("{}/v2/images/{}", images.base_url(), image.id)),
    );
    let methods = images.config.enabled_import_methods.join(",");
    if !methods.is_empty() {
        headers.insert("openstack-image-import-methods", header_value(&methods));
    }
    Ok((StatusCode::CREATED, headers, Json(image.to_json())).into_response())
}

/// Target with null values dropped (a missing key never matches, as in oslo.policy).
fn ferrostack_api_target(target: Value) -> Value {
    match target {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn apply_fields(image: &mut Image, fields: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in fields {
        if key == "id" {
            continue;
        }
        if is_core_settable(key) {
            set_core(image, key, value)?;
        } else if let Some(text) = value.as_str() {
            image.properties.insert(key.clone(), text.to_string());
        } else if value.is_null() {
            image.properties.insert(key.clone(), String::new());
        }
    }
    Ok(())
}

/// `GET /v2/images/{id}`
pub async fn show(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = visible(&state.0, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "get_image", || {
        "You are not authorized to complete get_image action.".into()
    })?;
    Ok(Json(view.image.to_json()))
}

/// `DELETE /v2/images/{id}`
pub async fn delete(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, || {
        format!("Failed to find image {id} to delete")
    })
    .await?;
    enforce_on(&auth, &view, "delete_image", || {
        "You are not authorized to complete delete_image action.".into()
    })?;
    if view.image.protected {
        return Err(ApiError::forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    if !images.delete(&view.image).await? {
        return Err(ApiError::not_found(format!(
            "Failed to find image {id} to delete"
        )));
    }
    tracing::info!(image = %id, "image deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn flip(
    images: &Images,
    auth: &Auth,
    id: &str,
    action: &str,
    from: &str,
    to: &str,
) -> Result<StatusCode, ApiError> {
    let view: Visible = visible(images, auth, id, no_image(id)).await?;
    enforce_on(auth, &view, action, || {
        format!("You are not authorized to complete {action} action.")
    })?;
    let mut image = view.image;
    if image.status == to {
        return Ok(StatusCode::NO_CONTENT);
    }
    if image.status != from {
        return Err(ApiError::forbidden(format!(
            "Not allowed to {action} image in status '{}'",
            image.status
        )));
    }
    image.status = to.into();
    image.updated_at = now();
    if !images.save(&mut image, from).await? {
        return Err(ApiError::conflict(format!(
            "Image {id} changed status while it was being {action}d; retry."
        )));
    }
    tracing::info!(image = %id, action, "image status changed");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/deactivate`
pub async fn deactivate(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    flip(
        &state.0,
        &auth,
        &id,
        "deactivate",
        status::ACTIVE,
        status::DEACTIVATED,
    )
    .await
}

/// `POST /v2/images/{id}/actions/reactivate`
pub async fn reactivate(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    flip(
        &state.0,
        &auth,
        &id,
        "reactivate",
        status::DEACTIVATED,
        status::ACTIVE,
    )
    .await
}
