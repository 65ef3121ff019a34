//! `PATCH /v2/images/{id}`: JSON patch in Glance's two media types.

use super::images::{check_quota, enforce_visibility, is_core_settable, set_core};
use super::{AppState, enforce_on, no_image, visible};
use crate::model::{READ_ONLY_KEYS, is_reserved, now, status};
use axum::{
    Json,
    body::Bytes,
    extract::Path,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth};
use serde_json::Value;

const V20: &str = "application/openstack-images-v2.0-json-patch";
const V21: &str = "application/openstack-images-v2.1-json-patch";

/// One decoded change.
#[derive(Debug, PartialEq)]
struct Change {
    op: String,
    key: String,
    value: Option<Value>,
}

fn unsupported() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Image PATCH expects Content-Type one of: {V20}, {V21}"),
    )
    .into_response();
    if let Ok(v) = format!("{V20}, {V21}").parse() {
        response.headers_mut().insert("accept-patch", v);
    }
    response
}

/// Decodes a JSON pointer into the (single) attribute name it designates.
fn pointer_key(pointer: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("Pointer `{pointer}` {why}"));
    if !pointer.starts_with('/') {
        return Err(bad("does not start with \"/\"."));
    }
    if pointer.contains("//") {
        return Err(bad("contains adjacent \"/\"."));
    }
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(bad("end with \"/\"."));
    }
    let mut parts = Vec::new();
    for raw in pointer[1..].split('/') {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '~' {
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(bad(
                            "contains \"~\" not part of a recognized escape sequence.",
                        ));
                    }
                }
            } else {
                out.push(c);
            }
        }
        parts.push(out);
    }
    if parts.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "Invalid JSON pointer for this resource: '/{}'",
            parts.join("/")
        )));
    }
    Ok(parts.remove(0))
}

fn decode(body: &Value, v20: bool) -> Result<Vec<Change>, ApiError> {
    let Some(list) = body.as_array() else {
        return Err(ApiError::bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let mut changes = Vec::new();
    for item in list {
        let Some(obj) = item.as_object() else {
            return Err(ApiError::bad_request("Operations must be JSON objects."));
        };
        let (op, path) = if v20 {
            let ops: Vec<&str> = ["add", "remove", "replace"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .collect();
            match ops.as_slice() {
                [] => {
                    return Err(ApiError::bad_request(
                        "Operation objects must contain exactly one member named \"add\", \
                         \"remove\", or \"replace\".",
                    ));
                }
                [op] => (
                    op.to_string(),
                    obj[*op].as_str().unwrap_or_default().to_string(),
                ),
                _ => {
                    return Err(ApiError::bad_request(
                        "Operation objects must contain only one member named \"add\", \
                         \"remove\", or \"replace\".",
                    ));
                }
            }
        } else {
            let op = match obj.get("op").and_then(Value::as_str) {
                None => {
                    return Err(ApiError::bad_request(
                        "Unable to find `op` in JSON Schema change. It must be one of the \
                         following: add, remove, replace.",
                    ));
                }
                Some(op @ ("add" | "remove" | "replace")) => op.to_string(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid operation: `{other}`. It must be one of the following: add, \
                         remove, replace."
                    )));
                }
            };
            let Some(path) = obj.get("path").and_then(Value::as_str) else {
                return Err(ApiError::bad_request(
                    "Unable to find 'path' in JSON Schema change",
                ));
            };
            (op, path.to_string())
        };
        let value = obj.get("value").cloned();
        if op != "remove" && value.is_none() {
            return Err(ApiError::bad_request(format!(
                "Operation \"{op}\" requires a member named \"value\"."
            )));
        }
        let key = pointer_key(&path)?;
        changes.push(Change { op, key, value });
    }
    Ok(changes)
}

/// `PATCH /v2/images/{id}`
pub async fn update(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let images = &state.0;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let v20 = match content_type.as_str() {
        V20 => true,
        V21 => false,
        _ => {
            // Still a policy decision: the caller learns nothing about the image.
            let _ = auth.allows("modify_image", &serde_json::json!({}));
            return Ok(unsupported());
        }
    };
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON in request body: {e}")))?;
    let changes = decode(&body, v20)?;
    for change in &changes {
        let key = change.key.as_str();
        if READ_ONLY_KEYS.contains(&key) {
            return Err(ApiError::forbidden(format!(
                "Attribute '{key}' is read-only."
            )));
        }
        if is_reserved(key) {
            return Err(ApiError::forbidden(format!(
                "Attribute '{key}' is reserved."
            )));
        }
        if key == "locations" {
            return Err(ApiError::forbidden(format!(
                "It's not allowed to {} locations if locations are invisible.",
                if change.op == "remove" {
                    "remove"
                } else {
                    "update"
                }
            )));
        }
        if let Some(value) = &change.value {
            images
                .validator
                .validate_property(key, value)
                .map_err(ApiError::bad_request)?;
        }
    }
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "modify_image", || {
        "You are not authorized to complete modify_image action.".into()
    })?;
    let target = view.target();
    let admin = view.admin;
    let mut image = view.image;
    let original_status = image.status.clone();
    for change in changes {
        let key = change.key.as_str();
        let core = is_core_settable(key);
        match change.op.as_str() {
            "remove" => {
                if core {
                    return Err(ApiError::forbidden(format!(
                        "Property {key} may not be removed."
                    )));
                }
                if image.properties.remove(key).is_none() {
                    return Err(ApiError::conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
            }
            op => {
                let value = change.value.unwrap_or(Value::Null);
                if op == "replace" && !core && !image.properties.contains_key(key) {
                    return Err(ApiError::conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                if op == "add" && v20 && !core && image.properties.contains_key(key) {
                    return Err(ApiError::conflict(format!(
                        "Property {key} already present."
                    )));
                }
                if !core {
                    let text = value.as_str().unwrap_or_default().to_string();
                    image.properties.insert(key.to_string(), text);
                    continue;
                }
                match key {
                    "owner" if !admin => {
                        return Err(ApiError::forbidden("Owner can't be updated by non admin."));
                    }
                    "visibility" => {
                        enforce_visibility(&auth, value.as_str().unwrap_or_default(), &target)?
                    }
                    "disk_format" | "container_format"
                        if !matches!(image.status.as_str(), status::QUEUED | status::IMPORTING) =>
                    {
                        return Err(ApiError::forbidden(format!(
                            "Attribute {key} can be only replaced for a queued image."
                        )));
                    }
                    _ => {}
                }
                set_core(&mut image, key, &value)?;
            }
        }
    }
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
    image.updated_at = now();
    if !images.save(&mut image, &original_status).await? {
        return Err(ApiError::conflict(format!(
            "Image {id} was changed by another request during the update; retry."
        )));
    }
    Ok(Json(image.to_json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_media_types_decode() {
        let v21 = decode(
            &json!([{"op": "replace", "path": "/name", "value": "x"}]),
            false,
        )
        .unwrap();
        let v20 = decode(&json!([{"replace": "/name", "value": "x"}]), true).unwrap();
        assert_eq!(v21, v20);
        assert_eq!(v21[0].key, "name");
    }

    #[test]
    fn bad_changes_are_refused_with_glance_texts() {
        let err = |body: Value, v20| decode(&body, v20).unwrap_err().message.to_string();
        assert!(err(json!({}), false).contains("JSON array"));
        assert!(err(json!([{"op": "move", "path": "/a"}]), false).contains("Invalid operation"));
        assert!(err(json!([{"op": "add", "path": "/a"}]), false).contains("requires a member"));
        assert!(
            err(json!([{"op": "add", "path": "/a/b", "value": 1}]), false)
                .contains("Invalid JSON pointer")
        );
        assert!(err(json!([{"add": "/a", "remove": "/b"}]), true).contains("only one member"));
        assert!(err(json!([{"op": "remove", "path": "a"}]), false).contains("Pointer"));
    }

    #[test]
    fn pointer_escapes_decode() {
        assert_eq!(pointer_key("/a~1b~0c").unwrap(), "a/b~c");
        assert!(pointer_key("/a~2").is_err());
    }
}
