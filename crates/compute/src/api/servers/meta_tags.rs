//! Server metadata (`server_metadata.py`) and tags (`server_tags.py`, ≥2.26). Writes need an
//! idle server in a settled state, as Nova's `check_instance_state` on them does.

use super::{check_lock, load};
use crate::api::{AppState, Mv, at_least};
use crate::db::instances::{self as idb, Instance};
use crate::service::{Compute, db_error};
use crate::states::vm;
use axum::{
    Json,
    extract::Path,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;

static KEY: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9-_:. ]{1,255}$").expect("valid regex"));

const MAX_TAGS: usize = 50;

fn writable(inst: &Instance, what: &str) -> Result<(), ApiError> {
    let settled = [vm::ACTIVE, vm::PAUSED, vm::SUSPENDED, vm::STOPPED];
    if !settled.contains(&inst.vm_state.as_str()) {
        return Err(ApiError::conflict(format!(
            "Cannot '{what}' instance {} while it is in vm_state {}",
            inst.uuid, inst.vm_state
        )));
    }
    if let Some(t) = &inst.task_state {
        return Err(ApiError::conflict(format!(
            "Cannot '{what}' instance {} while it is in task_state {t}",
            inst.uuid
        )));
    }
    Ok(())
}

/// Reads, changes with `f` and saves a server's record (retrying lost races).
async fn modify<T>(
    c: &Compute,
    auth: &Auth,
    uuid: &str,
    rule: &str,
    what: &str,
    mut f: impl FnMut(&mut Instance) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    for _ in 0..5 {
        let mut inst = load(c, auth, uuid, rule).await?;
        check_lock(auth, &inst)?;
        writable(&inst, what)?;
        let out = f(&mut inst)?;
        if idb::save_data(&c.store, &inst, &ferrostack_store::now_rfc3339())
            .await
            .map_err(db_error)?
        {
            return Ok(out);
        }
    }
    Err(ApiError::conflict(
        "The server was changed concurrently; try again.",
    ))
}

fn parse_metadata(body: &Value, field: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid input for field/attribute {field}."));
    let Some(map) = body.get(field).and_then(Value::as_object) else {
        return Err(ApiError::bad_request(format!(
            "'{field}' is a required property"
        )));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let v = v.as_str().ok_or_else(bad)?;
        if !KEY.is_match(k) || v.chars().count() > 255 {
            return Err(bad());
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

fn check_quota(limit: i64, meta: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if limit >= 0 && meta.len() as i64 > limit {
        return Err(ApiError::forbidden("Quota exceeded for metadata_items"));
    }
    Ok(())
}

/// The `metadata_items` quota of the server's project.
async fn metadata_limit(c: &Compute, auth: &Auth, uuid: &str) -> Result<i64, ApiError> {
    let inst = load(c, auth, uuid, "os_compute_api:server-metadata:index").await?;
    Ok(
        crate::db::quotas::limits(&c.store, &inst.project_id, &c.config)
            .await
            .map_err(db_error)?
            .metadata_items,
    )
}

/// `GET /servers/{id}/metadata`
pub async fn metadata_index(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inst = load(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:server-metadata:index",
    )
    .await?;
    Ok(Json(json!({"metadata": inst.data.metadata})))
}

/// `POST /servers/{id}/metadata` (merge) and `PUT` (replace all).
async fn metadata_write(
    auth: Auth,
    state: AppState,
    uuid: String,
    body: Value,
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let new = parse_metadata(&body, "metadata")?;
    let limit = metadata_limit(c, &auth, &uuid).await?;
    let rule = if replace { "update_all" } else { "create" };
    let merged = modify(
        c,
        &auth,
        &uuid,
        &format!("os_compute_api:server-metadata:{rule}"),
        "update metadata",
        |inst| {
            if replace {
                inst.data.metadata = new.clone();
            } else {
                inst.data.metadata.extend(new.clone());
            }
            check_quota(limit, &inst.data.metadata)?;
            Ok(inst.data.metadata.clone())
        },
    )
    .await?;
    Ok(Json(json!({"metadata": merged})))
}

/// `POST /servers/{id}/metadata`
pub async fn metadata_create(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    metadata_write(auth, state, uuid, body, false).await
}

/// `PUT /servers/{id}/metadata`
pub async fn metadata_replace(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    metadata_write(auth, state, uuid, body, true).await
}

/// `GET /servers/{id}/metadata/{key}`
pub async fn metadata_show(
    auth: Auth,
    state: AppState,
    Path((uuid, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let inst = load(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:server-metadata:show",
    )
    .await?;
    match inst.data.metadata.get(&key) {
        Some(v) => Ok(Json(json!({"meta": {key: v}}))),
        None => Err(ApiError::not_found("Metadata item was not found")),
    }
}

/// `PUT /servers/{id}/metadata/{key}`: `{"meta": {key: value}}`, the key must match the URI.
pub async fn metadata_set(
    auth: Auth,
    state: AppState,
    Path((uuid, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let c = &state.0;
    let item = parse_metadata(&body, "meta")?;
    let limit = metadata_limit(c, &auth, &uuid).await?;
    if item.len() != 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    if !item.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    modify(
        c,
        &auth,
        &uuid,
        "os_compute_api:server-metadata:update",
        "update metadata",
        |inst| {
            inst.data.metadata.extend(item.clone());
            check_quota(limit, &inst.data.metadata)
        },
    )
    .await?;
    Ok(Json(json!({"meta": item})))
}

/// `DELETE /servers/{id}/metadata/{key}`: 204.
pub async fn metadata_delete(
    auth: Auth,
    state: AppState,
    Path((uuid, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    modify(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:server-metadata:delete",
        "delete metadata",
        |inst| match inst.data.metadata.remove(&key) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("Metadata item was not found")),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn require_tags(mv: &Mv) -> Result<(), ApiError> {
    if at_least(mv, 2, 26) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.chars().count() <= 60 && !t.contains(['/', ','])
}

/// `GET /servers/{id}/tags`
pub async fn tags_index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_tags(&mv)?;
    let inst = load(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:os-server-tags:index",
    )
    .await?;
    Ok(Json(json!({"tags": inst.data.tags})))
}

/// `PUT /servers/{id}/tags`: replaces every tag.
pub async fn tags_replace(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    require_tags(&mv)?;
    let Some(list) = body.get("tags").and_then(Value::as_array) else {
        return Err(ApiError::bad_request("'tags' is a required property"));
    };
    let mut tags: Vec<String> = Vec::new();
    for t in list {
        match t.as_str() {
            Some(t) if valid_tag(t) => {
                if !tags.iter().any(|x| x == t) {
                    tags.push(t.to_string());
                }
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute tags. Value: {t}."
                )));
            }
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "The number of tags exceeded the per-server limit {MAX_TAGS}"
        )));
    }
    let tags = modify(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:os-server-tags:update_all",
        "update tag",
        |inst| {
            inst.data.tags = tags.clone();
            Ok(tags.clone())
        },
    )
    .await?;
    Ok(Json(json!({"tags": tags})))
}

/// `DELETE /servers/{id}/tags`: 204.
pub async fn tags_clear(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_tags(&mv)?;
    modify(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:os-server-tags:delete_all",
        "delete tags",
        |inst| {
            inst.data.tags.clear();
            Ok(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /servers/{id}/tags/{tag}`: 204 when present.
pub async fn tag_show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path((uuid, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_tags(&mv)?;
    let inst = load(&state.0, &auth, &uuid, "os_compute_api:os-server-tags:show").await?;
    if inst.data.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "Server {uuid} has no tag '{tag}'"
        )))
    }
}

/// `PUT /servers/{id}/tags/{tag}`: 201 with `Location` when new, 204 when present.
pub async fn tag_add(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path((uuid, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require_tags(&mv)?;
    if !valid_tag(&tag) {
        return Err(ApiError::bad_request(format!("Invalid tag: {tag}")));
    }
    let c = &state.0;
    let added = modify(
        c,
        &auth,
        &uuid,
        "os_compute_api:os-server-tags:update",
        "update tag",
        |inst| {
            if inst.data.tags.contains(&tag) {
                return Ok(false);
            }
            if inst.data.tags.len() >= MAX_TAGS {
                return Err(ApiError::bad_request(format!(
                    "The number of tags exceeded the per-server limit {MAX_TAGS}"
                )));
            }
            inst.data.tags.push(tag.clone());
            Ok(true)
        },
    )
    .await?;
    if !added {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut headers = HeaderMap::new();
    let location = format!("{}/v2.1/servers/{uuid}/tags/{tag}", c.base_url());
    if let Ok(v) = location.parse() {
        headers.insert("location", v);
    }
    Ok((StatusCode::CREATED, headers).into_response())
}

/// `DELETE /servers/{id}/tags/{tag}`: 204.
pub async fn tag_delete(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path((uuid, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_tags(&mv)?;
    modify(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:os-server-tags:delete",
        "delete tag",
        |inst| match inst.data.tags.iter().position(|t| *t == tag) {
            Some(p) => {
                inst.data.tags.remove(p);
                Ok(())
            }
            None => Err(ApiError::not_found(format!(
                "Server {uuid} has no tag '{tag}'"
            ))),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
