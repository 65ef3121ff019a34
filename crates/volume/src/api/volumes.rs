//! `/v3/volumes`: create (blank, from a snapshot, a volume or an image), list (summary and
//! detail, with Cinder's filters, sorting and pagination), summary (3.12), show, update,
//! delete (cascade, force from 3.23) and the volume metadata API, as `cinder/api/v3/volumes.py`,
//! `volume_metadata.py` and `cinder/volume/api.py` do them.
//!
//! Create and delete only write the row with its task (`creating` / `deleting`) and cast it to
//! the volume manager, which runs it on the backend.

use super::query::{Collection, ListQuery, bool_param, pairs};
use super::views::{self, Related, ViewCtx};
use super::{AppState, Mv, accepted, at_least, body_schema, ok, project_target};
use crate::db::{self, Tx, write_tx};
use crate::errors;
use crate::images::ImageRecord;
use crate::model::{
    Snapshot, Volume, VolumeSource, VolumeTask, VolumeType, attach_status, snapshot_status,
    volume_status,
};
use crate::quota::{self, Delta};
use crate::service::{Volumes, Work};
use crate::types;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use ferrostack_api::request_id::RequestId;
use ferrostack_api::{ApiError, Auth, JsonBody, Schema, Version};
use ferrostack_store::now_rfc3339;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// The routes of the volumes and volume metadata APIs.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/volumes", get(index).post(create))
        .route("/volumes/detail", get(index))
        .route("/volumes/summary", get(summary))
        .route("/volumes/{id}", get(show).put(update).delete(delete))
        .route(
            "/volumes/{id}/metadata",
            get(metadata_index)
                .post(write_all_metadata)
                .put(write_all_metadata),
        )
        .route(
            "/volumes/{id}/metadata/{key}",
            get(metadata_show)
                .put(metadata_update)
                .delete(metadata_delete),
        )
}

/// The volume list's filters and columns (`resource_filters.json`, `_MV_ADDED_FILTERS`).
const COLLECTION: Collection = Collection {
    user_filters: &[
        "name",
        "status",
        "metadata",
        "bootable",
        "migration_status",
        "availability_zone",
        "group_id",
        "size",
        "created_at",
        "updated_at",
        "consumes_quota",
    ],
    versioned_filters: &[
        ("glance_metadata", 4),
        ("group_id", 10),
        ("created_at", 60),
        ("updated_at", 60),
        ("consumes_quota", 65),
    ],
    booleans: &["bootable", "multiattach", "use_quota", "shared_targets"],
    columns: views::COLUMNS,
};

/// Statuses a volume may be deleted in (without force).
const DELETABLE: &[&str] = &[
    volume_status::AVAILABLE,
    volume_status::ERROR,
    "error_restoring",
    volume_status::ERROR_EXTENDING,
    "error_managing",
];

/// Statuses in which the (user or image) metadata may not change.
const METADATA_FROZEN: &[&str] = &[volume_status::MAINTENANCE, volume_status::UPLOADING];

/// Checks `rule` on a resource of `project`; a refusal is Cinder's 403.
pub(crate) fn enforce(auth: &Auth, rule: &str, project: &str) -> Result<(), ApiError> {
    auth.enforce(rule, &project_target(project))
        .map_err(|e| match e.status {
            StatusCode::FORBIDDEN => errors::policy_denied(rule),
            _ => e,
        })
}

/// Checks `rule` with the caller's own project as target (Cinder's `authorize` without a
/// target object).
pub(crate) fn enforce_own(auth: &Auth, rule: &str) -> Result<(), ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    enforce(auth, rule, &project)
}

/// Whether the caller may see a resource of `project` (`volume:get`).
pub(crate) fn may_see(auth: &Auth, project: &str) -> bool {
    auth.allows("volume:get", &project_target(project))
}

/// The volume `id` as the caller may see it (`VolumeNotFound` otherwise, as Cinder hides
/// volumes `volume:get` refuses).
pub(crate) async fn visible(volumes: &Volumes, auth: &Auth, id: &str) -> Result<Volume, ApiError> {
    let volume: Option<Volume> = volumes.db.get(id).await?;
    match volume {
        Some(v) if may_see(auth, &v.project_id) => Ok(v),
        _ => Err(errors::volume_not_found(id)),
    }
}

/// The volume `id` as the caller may see it ([`visible`]), checked against `rule`.
pub(crate) async fn authorized(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    rule: &str,
) -> Result<Volume, ApiError> {
    let volume = visible(volumes, auth, id).await?;
    enforce(auth, rule, &volume.project_id)?;
    Ok(volume)
}

/// Changes the volume `id` under its row lock: `change` checks and edits it (refusing with its
/// error), then it is saved with a new `updated_at`; the saved row.
pub(crate) async fn change_volume(
    volumes: &Volumes,
    id: &str,
    change: impl Fn(&mut Volume) -> Result<(), ApiError> + Sync,
) -> Result<Volume, ApiError> {
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock(tx, id).await?;
            change(&mut volume)?;
            volume.updated_at = Some(now_rfc3339());
            tx.save(&volume).await?;
            Ok::<Volume, db::Error>(volume)
        }
        .await
    })
    .map_err(ApiError::from)
}

/// Hands the locked `volume` to the manager: in `status` with `task`, saved in `tx` (the work
/// is cast after commit).
pub(crate) async fn start_task(
    tx: &mut Tx,
    volume: &mut Volume,
    status: &str,
    task: VolumeTask,
) -> db::Result<()> {
    volume.task = Some(task);
    volume.status = status.into();
    volume.updated_at = Some(now_rfc3339());
    tx.save(volume).await
}

/// Locks the volume `id` in `tx` (404 when it is gone).
pub(crate) async fn lock(tx: &mut Tx, id: &str) -> db::Result<Volume> {
    tx.lock::<Volume>(id)
        .await?
        .ok_or_else(|| errors::volume_not_found(id).into())
}

/// The detail view of one volume for this request.
pub(crate) async fn detail_view(
    volumes: &Volumes,
    volume: &Volume,
    ctx: &ViewCtx,
) -> Result<Value, ApiError> {
    let related = Related::load(&volumes.db, std::slice::from_ref(volume)).await?;
    Ok(views::volume(volume, &related, ctx))
}

// ---------------------------------------------------------------------------------------------
// List, summary, show

/// `GET /v3/volumes` and `GET /v3/volumes/detail`
async fn index(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let detailed = uri.path().ends_with("/detail");
    list(&volumes, &auth, mv.0, &uri, raw.as_deref(), detailed).await
}

/// The volumes a list covers: every project's (admin with `all_tenants`) or the caller's.
async fn scope(volumes: &Volumes, auth: &Auth, all_tenants: bool) -> Result<Vec<Volume>, ApiError> {
    Ok(match all_tenants {
        true => volumes.db.select("1 = 1", &[]).await?,
        false => {
            let project = auth.project_id().unwrap_or_default();
            volumes.db.select("project_id = $1", &[project]).await?
        }
    })
}

async fn list(
    volumes: &Volumes,
    auth: &Auth,
    mv: Version,
    uri: &axum::http::Uri,
    raw: Option<&str>,
    detail: bool,
) -> Result<Response, ApiError> {
    enforce_own(auth, "volume:get_all")?;
    let admin = super::is_admin(auth);
    let q = ListQuery::parse(raw, mv, admin, &COLLECTION)?;
    let rows = scope(volumes, auth, q.all_tenants()).await?;
    let related = Related::load(&volumes.db, &rows).await?;
    let marker = match q.marker() {
        None => None,
        Some(m) => Some(marker_row(volumes, auth, &rows, &related, m).await?),
    };
    let items = rows
        .iter()
        .map(|v| (views::filter_row(v, &related), v))
        .collect();
    let (page, count) = q.select(items, marker.as_ref());
    let ctx = ViewCtx::new(volumes, auth, mv, uri);
    let views: Vec<Value> = page
        .iter()
        .map(|v| match detail {
            true => views::volume(v, &related, &ctx),
            false => views::summary(v, &ctx),
        })
        .collect();
    let mut body = json!({ "volumes": views });
    let collection = if detail { "volumes/detail" } else { "volumes" };
    let link_count = match q.with_count() && count > 0 {
        true => count,
        false => page.len(),
    };
    let last = page.last().map(|v| v.id.as_str());
    if let Some(links) = q.links(&format!("{}/{collection}", ctx.prefix), last, link_count) {
        body["volumes_links"] = links;
    }
    if q.with_count() {
        body["count"] = json!(count);
    }
    Ok(Json(body).into_response())
}

/// The marker's row: a volume the caller may see (any project's for an admin); 404 else.
async fn marker_row(
    volumes: &Volumes,
    auth: &Auth,
    rows: &[Volume],
    related: &Related,
    marker: &str,
) -> Result<Value, ApiError> {
    if let Some(v) = rows.iter().find(|v| v.id == marker) {
        return Ok(views::filter_row(v, related));
    }
    let found: Option<Volume> = volumes.db.get(marker).await?;
    match found {
        Some(v) if super::is_admin(auth) => Ok(views::filter_row(&v, related)),
        _ => Err(errors::volume_not_found(marker)),
    }
}

/// `GET /v3/volumes/summary` (3.12; the metadata from 3.36).
async fn summary(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if !at_least(&mv, 12) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    enforce_own(&auth, "volume:get_all")?;
    let all_tenants = match pairs(raw.as_deref())
        .into_iter()
        .find(|(k, _)| k == "all_tenants")
    {
        Some((_, v)) if super::is_admin(&auth) => bool_param("all_tenants", &v)?,
        _ => false,
    };
    let rows = scope(&volumes, &auth, all_tenants).await?;
    let mut body = json!({
        "total_count": rows.len(),
        "total_size": rows.iter().map(|v| v.size).sum::<i64>(),
    });
    if at_least(&mv, 36) {
        let mut metadata: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in rows.iter().flat_map(|r| r.metadata.iter()) {
            let values = metadata.entry(k).or_default();
            if !values.contains(&v.as_str()) {
                values.push(v);
            }
        }
        metadata.values_mut().for_each(|values| values.sort());
        body["metadata"] = json!(metadata);
    }
    Ok(ok("volume-summary", body))
}

/// `GET /v3/volumes/{id}`
async fn show(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let volume = authorized(&volumes, &auth, &id, "volume:get").await?;
    let ctx = ViewCtx::new(&volumes, &auth, mv.0, &uri);
    Ok(ok("volume", detail_view(&volumes, &volume, &ctx).await?))
}

// ---------------------------------------------------------------------------------------------
// Create

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$";

/// `parameter_types.extra_specs`: string keys and values of at most 255 characters.
pub(crate) fn metadata_schema(nullable: bool) -> Value {
    json!({
        "type": if nullable { json!(["object", "null"]) } else { json!("object") },
        "patternProperties": {"^[a-zA-Z0-9_:. /-]{1,255}$": {"type": "string", "maxLength": 255}},
        "additionalProperties": false,
    })
}

fn create_schema(closed: bool) -> Schema {
    let text = json!({"type": ["string", "null"]});
    let uuid = json!({"oneOf": [{"type": "null"}, {"type": "string", "pattern": UUID_PATTERN}]});
    let optional_string = json!({"type": ["string", "null"], "maxLength": 255});
    Schema::new(json!({
        "type": "object",
        "properties": {
            "volume": {
                "type": "object",
                "properties": {
                    "name": text, "description": text,
                    "display_name": text, "display_description": text,
                    "volume_type": optional_string,
                    "metadata": metadata_schema(true),
                    "snapshot_id": uuid, "source_volid": uuid, "consistencygroup_id": uuid,
                    "backup_id": uuid,
                    "group_id": optional_string,
                    "size": {
                        "type": ["integer", "string", "null"], "pattern": "^[0-9]+$",
                        "minimum": 1, "maximum": 2147483647,
                    },
                    "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                    "multiattach": {"oneOf": [{"type": "null"}, boolean_schema()]},
                    "image_id": optional_string,
                    "imageRef": optional_string,
                },
                "additionalProperties": !closed,
            },
            "OS-SCH-HNT:scheduler_hints": {"type": ["object", "null"]},
        },
        "required": ["volume"],
        "additionalProperties": false,
    }))
}

/// `parameter_types.boolean`: a boolean or one of oslo's boolean words.
pub(crate) fn boolean_schema() -> Value {
    json!({
        "type": ["boolean", "string"],
        "enum": [true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                 "y", "t", false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO",
                 "No", "no", "n", "f"],
    })
}

/// A value [`boolean_schema`] accepted, as a boolean.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => super::query::strict_bool(s),
        _ => None,
    }
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| create_schema(false));
static CREATE_353: LazyLock<Schema> = LazyLock::new(|| create_schema(true));

/// A create request after the schema.
struct CreateRequest {
    size: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    volume_type: Option<String>,
    availability_zone: Option<String>,
    snapshot_id: Option<String>,
    source_volid: Option<String>,
    image_ref: Option<String>,
    backup_id: Option<String>,
    group_id: Option<String>,
}

fn string_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A name or description as Cinder keeps it: surrounding whitespace removed, at most 255.
pub(crate) fn clean_text(value: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim().to_string();
    if value.chars().count() > 255 {
        return Err(errors::invalid_input(format!(
            "{field} has {} characters, more than 255.",
            value.chars().count()
        )));
    }
    Ok(Some(value))
}

/// Name and description, the API names winning over the legacy `display_*` ones.
fn name_and_description(
    map: &Map<String, Value>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let pick = |key: &str, legacy: &str| match map.contains_key(key) {
        true => string_field(map, key),
        false => string_field(map, legacy),
    };
    Ok((
        clean_text(pick("name", "display_name"), "name")?,
        clean_text(pick("description", "display_description"), "description")?,
    ))
}

/// A validated size: an integer or a string of digits.
fn parse_size(value: Option<&Value>) -> Result<Option<i64>, ApiError> {
    let size = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(_) => None,
    };
    match size {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(errors::invalid_input(format!(
            "Invalid volume size provided for create request: {} (size argument must be an \
             integer (or string representation of an integer) and greater than zero).",
            value.map(plain).unwrap_or_default()
        ))),
    }
}

/// A JSON value as Python prints it in a message.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CreateRequest {
    fn parse(body: Value, mv: Version) -> Result<CreateRequest, ApiError> {
        let schema = match mv >= Version::new(3, 53) {
            true => &*CREATE_353,
            false => &*CREATE,
        };
        schema.validate(&body)?;
        let map = body["volume"].as_object().cloned().unwrap_or_default();
        if map.get("multiattach").and_then(as_bool) == Some(true) {
            return Err(errors::bad_request(
                "multiattach parameter has been removed. The default behavior is to use \
                 multiattach enabled volume types. Contact your administrator to create a \
                 multiattach enabled volume type and use it to create multiattach volumes.",
            ));
        }
        let (name, description) = name_and_description(&map)?;
        let metadata = match map.get("metadata") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
            _ => BTreeMap::new(),
        };
        let image_ref = match map.contains_key("image_id") {
            true => string_field(&map, "image_id"),
            false => string_field(&map, "imageRef"),
        };
        Ok(CreateRequest {
            size: parse_size(map.get("size"))?,
            name,
            description,
            metadata,
            volume_type: string_field(&map, "volume_type").filter(|t| !t.is_empty()),
            availability_zone: string_field(&map, "availability_zone"),
            snapshot_id: string_field(&map, "snapshot_id"),
            source_volid: string_field(&map, "source_volid"),
            image_ref,
            backup_id: string_field(&map, "backup_id"),
            group_id: string_field(&map, "group_id")
                .or_else(|| string_field(&map, "consistencygroup_id")),
        })
    }
}

/// Where the new volume's data comes from, as looked up for the caller.
enum Origin {
    Blank,
    Snapshot {
        snapshot: Box<Snapshot>,
        volume: Box<Volume>,
    },
    Volume(Box<Volume>),
    Image(ImageRecord),
}

/// Whether `text` looks like a UUID (`uuidutils.is_uuid_like`).
fn uuid_like(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

/// The requested volume type (404 with Cinder's message when unknown or not usable).
async fn requested_type(
    volumes: &Volumes,
    auth: &Auth,
    id_or_name: &str,
) -> Result<VolumeType, ApiError> {
    let mut conn = volumes.db.conn().await?;
    let found = types::find(
        &mut conn,
        id_or_name,
        auth.project_id(),
        super::is_admin(auth),
    )
    .await?;
    found.ok_or_else(|| match uuid_like(id_or_name) {
        true => errors::volume_type_not_found(id_or_name),
        false => ApiError::not_found(format!(
            "Volume type with name {id_or_name} could not be found."
        )),
    })
}

/// The snapshot `id` (and its volume) as the caller may see it.
async fn origin_snapshot(volumes: &Volumes, auth: &Auth, id: &str) -> Result<Origin, ApiError> {
    let snapshot: Option<Snapshot> = volumes.db.get(id).await?;
    let snapshot = snapshot
        .filter(|s| may_see(auth, &s.project_id))
        .ok_or_else(|| errors::snapshot_not_found(id))?;
    let volume: Option<Volume> = volumes.db.get(&snapshot.volume_id).await?;
    let volume = volume.ok_or_else(|| errors::volume_not_found(&snapshot.volume_id))?;
    Ok(Origin::Snapshot {
        snapshot: Box::new(snapshot),
        volume: Box::new(volume),
    })
}

/// The image named by `image_ref` (an id or a URL ending with it); Cinder's 400 when the
/// image service does not know it or hides it.
async fn origin_image(volumes: &Volumes, auth: &Auth, image_ref: &str) -> Result<Origin, ApiError> {
    let id = image_ref.rsplit('/').next().unwrap_or(image_ref);
    let image = volumes
        .images()
        .show(id, auth.project_id(), super::is_admin(auth))
        .await
        .map_err(|e| {
            tracing::warn!(image = id, error = %e, "image service lookup failed");
            errors::bad_request("Invalid image identifier or unable to access requested image.")
        })?;
    image.map(Origin::Image).ok_or_else(|| {
        errors::bad_request("Invalid image identifier or unable to access requested image.")
    })
}

/// The controller's lookups: type, snapshot, source volume, group, image, backup (404/400).
async fn look_up(
    volumes: &Volumes,
    auth: &Auth,
    request: &CreateRequest,
) -> Result<(Option<VolumeType>, Vec<Origin>), ApiError> {
    let volume_type = match &request.volume_type {
        Some(t) => Some(requested_type(volumes, auth, t).await?),
        None => None,
    };
    let mut origins = Vec::new();
    if let Some(id) = &request.snapshot_id {
        origins.push(origin_snapshot(volumes, auth, id).await?);
    }
    if let Some(id) = &request.source_volid {
        origins.push(Origin::Volume(Box::new(visible(volumes, auth, id).await?)));
    }
    if let Some(id) = &request.group_id {
        return Err(ApiError::not_found(format!(
            "Group {id} could not be found."
        )));
    }
    if let Some(image_ref) = &request.image_ref {
        origins.push(origin_image(volumes, auth, image_ref).await?);
    }
    if let Some(id) = &request.backup_id {
        return Err(ApiError::not_found(format!(
            "Backup {id} could not be found."
        )));
    }
    Ok((volume_type, origins))
}

/// The one origin (`check_exclusive_options`).
fn single_origin(mut origins: Vec<Origin>) -> Result<Origin, ApiError> {
    match origins.len() {
        0 => Ok(Origin::Blank),
        1 => Ok(origins.remove(0)),
        _ => Err(errors::invalid_input(
            "May specify only one of backup, imageRef, snapshot, source volume",
        )),
    }
}

/// A snapshot a volume may be made from (`SNAPSHOT_PROCEED_STATUS`).
fn check_snapshot_status(snapshot: &Snapshot) -> Result<(), ApiError> {
    match snapshot.status == snapshot_status::AVAILABLE {
        true => Ok(()),
        false => Err(errors::invalid_snapshot(
            "Originating snapshot status must be one of 'available' values",
        )),
    }
}

/// A volume that may be cloned (`SRC_VOL_PROCEED_STATUS`).
fn check_source_status(volume: &Volume) -> Result<(), ApiError> {
    match volume.status == volume_status::AVAILABLE || volume.status == volume_status::IN_USE {
        true => Ok(()),
        false => Err(errors::invalid_volume(
            "Originating source volume status must be one of 'available, in-use' values",
        )),
    }
}

/// The origin's status must let a volume be made from it.
fn check_origin_status(origin: &Origin) -> Result<(), ApiError> {
    match origin {
        Origin::Snapshot { snapshot, .. } => check_snapshot_status(snapshot),
        Origin::Volume(v) => check_source_status(v),
        _ => Ok(()),
    }
}

/// The size: requested or the origin's, at least the origin's (`_extract_size`).
fn resolve_size(requested: Option<i64>, origin: &Origin) -> Result<i64, ApiError> {
    let size = match (requested, origin) {
        (Some(s), _) => s,
        (None, Origin::Snapshot { snapshot, .. }) => snapshot.size,
        (None, Origin::Volume(v)) => v.size,
        (None, _) => {
            return Err(errors::invalid_input(
                "Volume size 'None' must be an integer and greater than 0",
            ));
        }
    };
    match origin {
        Origin::Volume(v) if size < v.size => Err(errors::invalid_input(format!(
            "Volume size '{size}'GB cannot be smaller than original volume size  {}GB. They \
             must be >= original volume size.",
            v.size
        ))),
        Origin::Snapshot { snapshot, .. } if size < snapshot.size => {
            Err(errors::invalid_input(format!(
                "Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They \
                 must be >= original snapshot size.",
                snapshot.size
            )))
        }
        _ => Ok(size),
    }
}

const GIB: i64 = 1 << 30;

/// `check_image_metadata`: active, and its data, `min_disk` and virtual size fit.
fn check_image(image: &ImageRecord, size: i64) -> Result<(), ApiError> {
    if image.status != "active" {
        return Err(errors::invalid_input(format!(
            "Image {} is not active.",
            image.id
        )));
    }
    let image_gb = (image.size.unwrap_or(0) + GIB - 1) / GIB;
    if image_gb > size {
        return Err(errors::invalid_input(format!(
            "Size of specified image {image_gb}GB is larger than volume size {size}GB."
        )));
    }
    if size < image.min_disk {
        return Err(errors::invalid_input(format!(
            "Volume size {size}GB cannot be smaller than the image minDisk size {}GB.",
            image.min_disk
        )));
    }
    if let Some(virtual_size) = image.virtual_size.filter(|v| *v > 0) {
        let virtual_gb = (virtual_size + GIB - 1) / GIB;
        if virtual_gb > size {
            return Err(errors::bad_request(format!(
                "Image {} is unacceptable: Image virtual size is {virtual_gb}GB and doesn't \
                 fit in a volume of size {size}GB.",
                image.id
            )));
        }
    }
    Ok(())
}

/// `volume_image_metadata` of a volume made from `image`.
fn image_metadata(image: &ImageRecord) -> BTreeMap<String, String> {
    let mut metadata = image.properties.clone();
    metadata.insert("image_id".into(), image.id.clone());
    if let Some(name) = &image.name {
        metadata.insert("image_name".into(), name.clone());
    }
    if let Some(format) = &image.disk_format {
        metadata.insert("disk_format".into(), format.clone());
    }
    if let Some(format) = &image.container_format {
        metadata.insert("container_format".into(), format.clone());
    }
    if let Some(size) = image.size {
        metadata.insert("size".into(), size.to_string());
    }
    metadata.insert("min_disk".into(), image.min_disk.to_string());
    metadata.insert("min_ram".into(), image.min_ram.to_string());
    metadata
}

/// `provision_filter_on_size`: the type's `provisioning:min_vol_size` / `max_vol_size`.
pub(crate) fn check_type_size(volume_type: &VolumeType, size: i64) -> Result<(), ApiError> {
    let spec = |key: &str| {
        volume_type
            .extra_specs
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(min) = spec("provisioning:min_vol_size")
        && size < min
    {
        return Err(errors::invalid_input(format!(
            "Specified volume size of '{size}' is less than the minimum required size of \
             '{min}' for volume type '{}'.",
            volume_type.name
        )));
    }
    if let Some(max) = spec("provisioning:max_vol_size")
        && size > max
    {
        return Err(errors::invalid_input(format!(
            "Specified volume size of '{size}' is greater than the maximum allowable size of \
             '{max}' for volume type '{}'.",
            volume_type.name
        )));
    }
    Ok(())
}

/// The type: requested, else the origin's (`cinder_img_volume_type` for an image), else the
/// project's default type (3.62), else the configured default.
async fn resolve_type(
    volumes: &Volumes,
    auth: &Auth,
    requested: Option<VolumeType>,
    origin: &Origin,
) -> Result<VolumeType, ApiError> {
    if let Some(t) = requested {
        return Ok(t);
    }
    let inherited = match origin {
        Origin::Snapshot { volume, .. } | Origin::Volume(volume) => {
            Some(volume.volume_type_id.clone())
        }
        Origin::Image(image) => image.properties.get("cinder_img_volume_type").cloned(),
        Origin::Blank => None,
    };
    match inherited {
        Some(id_or_name) => requested_type(volumes, auth, &id_or_name).await,
        None => {
            let mut conn = volumes.db.conn().await?;
            let project = auth.project_id().unwrap_or_default();
            Ok(types::default_type_for(&mut conn, volumes, project).await?)
        }
    }
}

/// The availability zone (`_extract_availability_zones`, one zone, no fallback).
fn resolve_zone(
    volumes: &Volumes,
    requested: Option<String>,
    origin: &Origin,
) -> Result<String, ApiError> {
    let source_zone = match origin {
        Origin::Snapshot { volume, .. } | Origin::Volume(volume) => {
            Some(volume.availability_zone.clone())
        }
        _ => None,
    };
    let zone = requested
        .or_else(|| source_zone.clone())
        .unwrap_or_else(|| volumes.settings.availability_zone.clone());
    if zone != volumes.settings.availability_zone {
        return Err(errors::bad_request(format!(
            "Availability zone '{zone}' is invalid."
        )));
    }
    match (origin, source_zone) {
        (Origin::Snapshot { .. }, Some(z)) if z != zone => Err(errors::invalid_input(
            "Volume must be in the same availability zone as the snapshot",
        )),
        (Origin::Volume(_), Some(z)) if z != zone => Err(errors::invalid_input(
            "Volume must be in the same availability zone as the source volume",
        )),
        _ => Ok(zone),
    }
}

/// The new row, its type and what it is made from.
struct Planned {
    volume: Volume,
    volume_type: VolumeType,
}

async fn plan(volumes: &Volumes, auth: &Auth, request: CreateRequest) -> Result<Planned, ApiError> {
    let (requested_type, origins) = look_up(volumes, auth, &request).await?;
    let from_image = origins.iter().any(|o| matches!(o, Origin::Image(_)));
    enforce_own(
        auth,
        if from_image {
            "volume:create_from_image"
        } else {
            "volume:create"
        },
    )?;
    let origin = single_origin(origins)?;
    check_origin_status(&origin)?;
    let size = resolve_size(request.size, &origin)?;
    if let Origin::Image(image) = &origin {
        check_image(image, size)?;
    }
    let volume_type = resolve_type(volumes, auth, requested_type, &origin).await?;
    check_type_size(&volume_type, size)?;
    let availability_zone = resolve_zone(volumes, request.availability_zone, &origin)?;
    let multiattach = types::is_multiattach(&volume_type);
    if multiattach {
        enforce_own(auth, "volume:multiattach")?;
    }
    let (source, bootable, image_metadata) = match &origin {
        Origin::Blank => (VolumeSource::Blank, false, BTreeMap::new()),
        Origin::Image(image) => (
            VolumeSource::Image {
                image_id: image.id.clone(),
            },
            true,
            image_metadata(image),
        ),
        Origin::Snapshot { snapshot, volume } => (
            VolumeSource::Snapshot {
                snapshot_id: snapshot.id.clone(),
            },
            volume.bootable,
            volume.image_metadata.clone(),
        ),
        Origin::Volume(v) => (
            VolumeSource::Volume {
                volume_id: v.id.clone(),
            },
            v.bootable,
            v.image_metadata.clone(),
        ),
    };
    let volume = Volume {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: auth.project_id().unwrap_or_default().to_string(),
        user_id: auth.user.id.clone(),
        name: request.name,
        description: request.description,
        size,
        status: volume_status::CREATING.into(),
        attach_status: attach_status::DETACHED.into(),
        availability_zone,
        volume_type_id: volume_type.id.clone(),
        bootable,
        multiattach,
        readonly: None,
        source,
        metadata: request.metadata,
        image_metadata,
        host: None,
        consumes_quota: true,
        task: Some(VolumeTask::Create),
        created_at: now_rfc3339(),
        updated_at: None,
        launched_at: None,
        request_id: None,
    };
    Ok(Planned {
        volume,
        volume_type,
    })
}

/// In the inserting transaction: the origin still exists and is still usable.
async fn recheck_origin(tx: &mut Tx, source: &VolumeSource) -> db::Result<()> {
    match source {
        VolumeSource::Snapshot { snapshot_id } => {
            let snapshot: Snapshot = tx
                .lock::<Snapshot>(snapshot_id)
                .await?
                .ok_or_else(|| errors::snapshot_not_found(snapshot_id))?;
            check_snapshot_status(&snapshot)?;
        }
        VolumeSource::Volume { volume_id } => check_source_status(&lock(tx, volume_id).await?)?,
        _ => {}
    }
    Ok(())
}

/// `POST /v3/volumes`
async fn create(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    request_id: Option<Extension<RequestId>>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = CreateRequest::parse(body, mv.0)?;
    let Planned {
        mut volume,
        volume_type,
    } = plan(&volumes, &auth, request).await?;
    volume.request_id = request_id.map(|Extension(id)| id.0);
    let delta = Delta {
        volumes: 1,
        gigabytes: volume.size,
        snapshots: 0,
        volume_type: Some((volume_type.id.clone(), volume_type.name.clone())),
    };
    write_tx!(volumes.db, |tx| {
        async {
            recheck_origin(tx, &volume.source).await?;
            quota::check(tx, &volumes.settings, &volume.project_id, &delta).await?;
            tx.insert(&volume).await?;
            Ok::<(), db::Error>(())
        }
        .await
    })?;
    volumes.cast(Work::Volume(volume.id.clone())).await;
    let ctx = ViewCtx::new(&volumes, &auth, mv.0, &uri).plain();
    Ok(accepted(
        "volume",
        detail_view(&volumes, &volume, &ctx).await?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Update

fn update_schema(at_least_353: bool) -> Schema {
    let text = json!({"type": ["string", "null"]});
    let mut volume = json!({
        "type": "object",
        "properties": {
            "name": text, "description": text,
            "display_name": text, "display_description": text,
            "metadata": metadata_schema(false),
        },
        "additionalProperties": false,
    });
    if at_least_353 {
        volume["anyOf"] = json!([
            {"required": ["name"]}, {"required": ["description"]},
            {"required": ["display_name"]}, {"required": ["display_description"]},
            {"required": ["metadata"]},
        ]);
    }
    Schema::new(json!({
        "type": "object",
        "properties": {"volume": volume},
        "required": ["volume"],
        "additionalProperties": false,
    }))
}

static UPDATE: LazyLock<Schema> = LazyLock::new(|| update_schema(false));
static UPDATE_353: LazyLock<Schema> = LazyLock::new(|| update_schema(true));

/// Refuses changes to a volume in maintenance (`volume_api.update`).
pub(crate) fn check_updatable(volume: &Volume) -> Result<(), ApiError> {
    match volume.status == volume_status::MAINTENANCE {
        true => Err(errors::invalid_volume(
            "The volume cannot be updated during maintenance.",
        )),
        false => Ok(()),
    }
}

/// `PUT /v3/volumes/{id}`
async fn update(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = match at_least(&mv, 53) {
        true => &*UPDATE_353,
        false => &*UPDATE,
    };
    schema.validate(&body)?;
    let map = body["volume"].as_object().cloned().unwrap_or_default();
    let has = |k: &str, legacy: &str| map.contains_key(k) || map.contains_key(legacy);
    let (name, description) = name_and_description(&map)?;
    let (set_name, set_description) = (
        has("name", "display_name"),
        has("description", "display_description"),
    );
    let metadata: Option<BTreeMap<String, String>> = map.get("metadata").map(string_map);
    authorized(&volumes, &auth, &id, "volume:update").await?;
    let volume = change_volume(&volumes, &id, |volume| {
        check_updatable(volume)?;
        if set_name {
            volume.name = name.clone();
        }
        if set_description {
            volume.description = description.clone();
        }
        if let Some(m) = &metadata {
            volume.metadata = m.clone();
        }
        Ok(())
    })
    .await?;
    let ctx = ViewCtx::new(&volumes, &auth, mv.0, &uri).plain();
    Ok(ok("volume", detail_view(&volumes, &volume, &ctx).await?))
}

/// A JSON object of strings (already checked by a schema) as a map.
pub(crate) fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Delete

/// The refusal of a delete whose conditions do not hold (`volume_api.delete`).
fn undeletable(force: bool) -> ApiError {
    let status = match force {
        true => String::new(),
        false => format!("status must be {} and", DELETABLE.join(" or ")),
    };
    errors::invalid_volume(format!(
        "Volume {status} must not be migrating, attached, belong to a group, have snapshots, \
         awaiting a transfer, or be disassociated from snapshots after volume transfer."
    ))
}

/// Whether the volume's snapshots allow the delete.
fn snapshots_allow(
    snapshots: &[Snapshot],
    cascade: bool,
    force: bool,
    admin: bool,
    project: &str,
) -> bool {
    match (cascade, force) {
        (false, _) => snapshots.is_empty(),
        (true, true) => true,
        (true, false) => snapshots.iter().all(|s| {
            (s.status == snapshot_status::AVAILABLE || s.status == snapshot_status::ERROR)
                && (admin || s.project_id == project)
        }),
    }
}

/// Deletes the volume `id` (already authorized): checks the conditions on the locked row, then
/// marks it (and with `cascade` its snapshots) `deleting` with the task and casts it. Even a
/// volume that never became available goes through the manager: a failed create may have left
/// data behind.
pub(crate) async fn delete_volume(
    volumes: &Volumes,
    auth: &Auth,
    id: &str,
    cascade: bool,
    force: bool,
) -> Result<(), ApiError> {
    let admin = super::is_admin(auth);
    let caller_project = auth.project_id().unwrap_or_default().to_string();
    write_tx!(volumes.db, |tx| {
        async {
            let mut volume = lock(tx, id).await?;
            let snapshots: Vec<Snapshot> = tx.select("volume_id = $1", &[id]).await?;
            let allowed = volume.attach_status != attach_status::ATTACHED
                && (force || DELETABLE.contains(&volume.status.as_str()))
                && snapshots_allow(&snapshots, cascade, force, admin, &caller_project);
            if !allowed {
                return Err::<(), db::Error>(undeletable(force).into());
            }
            let now = now_rfc3339();
            volume.status = volume_status::DELETING.into();
            volume.task = Some(VolumeTask::Delete { cascade });
            volume.updated_at = Some(now.clone());
            tx.save(&volume).await?;
            for mut snapshot in snapshots.into_iter().filter(|_| cascade) {
                snapshot.status = snapshot_status::DELETING.into();
                snapshot.updated_at = Some(now.clone());
                tx.save(&snapshot).await?;
            }
            Ok(())
        }
        .await
    })?;
    volumes.cast(Work::Volume(id.to_string())).await;
    Ok(())
}

/// `DELETE /v3/volumes/{id}` (`?cascade=`, and from 3.23 `?force=`)
async fn delete(
    State(volumes): AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = pairs(raw.as_deref());
    let flag = |name: &str| -> Result<bool, ApiError> {
        match params.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => bool_param(name, v),
            None => Ok(false),
        }
    };
    let cascade = flag("cascade")?;
    let force = at_least(&mv, 23) && flag("force")?;
    let volume = visible(&volumes, &auth, &id).await?;
    if force {
        enforce(&auth, "volume:force_delete", &volume.project_id)?;
    }
    enforce(&auth, "volume:delete", &volume.project_id)?;
    delete_volume(&volumes, &auth, &id, cascade, force).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------------
// Metadata

static METADATA_BODY: LazyLock<Schema> =
    LazyLock::new(|| body_schema("metadata", metadata_schema(false)));

static META_BODY: LazyLock<Schema> = LazyLock::new(|| {
    let mut meta = metadata_schema(false);
    meta["minProperties"] = json!(1);
    body_schema("meta", meta)
});

/// Refuses metadata changes in `maintenance` and `uploading` (`_update_volume_metadata`).
pub(crate) fn check_metadata_writable(volume: &Volume, verb: &str) -> Result<(), ApiError> {
    match METADATA_FROZEN.contains(&volume.status.as_str()) {
        true => Err(errors::invalid_volume(format!(
            "{verb} volume metadata is not allowed for volumes in {} status.",
            volume.status
        ))),
        false => Ok(()),
    }
}

fn metadata_not_found(id: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("Volume {id} has no metadata with key {key}."))
}

/// Changes the metadata of the volume `id` under its row lock: `change` edits the map.
async fn change_metadata(
    volumes: &Volumes,
    id: &str,
    change: impl Fn(&mut BTreeMap<String, String>) -> Result<(), ApiError> + Sync,
) -> Result<BTreeMap<String, String>, ApiError> {
    let volume = change_volume(volumes, id, |volume| {
        check_metadata_writable(volume, "Updating")?;
        change(&mut volume.metadata)
    })
    .await?;
    Ok(volume.metadata)
}

/// `GET /v3/volumes/{id}/metadata`
async fn metadata_index(
    State(volumes): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let volume = authorized(&volumes, &auth, &id, "volume:get_volume_metadata").await?;
    Ok(ok("metadata", json!(volume.metadata)))
}

/// `POST /v3/volumes/{id}/metadata` merges the body's metadata into the volume's, `PUT`
/// replaces it (200, the whole metadata).
async fn write_all_metadata(
    method: Method,
    State(volumes): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let replace = method == Method::PUT;
    METADATA_BODY.validate(&body)?;
    let wanted = string_map(&body["metadata"]);
    let rule = match replace {
        true => "volume:update_volume_metadata",
        false => "volume:create_volume_metadata",
    };
    authorized(&volumes, &auth, &id, rule).await?;
    let metadata = change_metadata(&volumes, &id, |m| {
        match replace {
            true => *m = wanted.clone(),
            false => m.extend(wanted.clone()),
        }
        Ok(())
    })
    .await?;
    Ok(ok("metadata", json!(metadata)))
}

/// `GET /v3/volumes/{id}/metadata/{key}`
async fn metadata_show(
    State(volumes): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let volume = authorized(&volumes, &auth, &id, "volume:get_volume_metadata").await?;
    let value = volume
        .metadata
        .get(&key)
        .ok_or_else(|| metadata_not_found(&id, &key))?;
    Ok(ok("meta", json!({ key: value })))
}

/// `PUT /v3/volumes/{id}/metadata/{key}`: `{"meta": {key: value}}`.
async fn metadata_update(
    State(volumes): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    META_BODY.validate(&body)?;
    let item = string_map(&body["meta"]);
    if !item.contains_key(&key) {
        return Err(errors::bad_request("Request body and URI mismatch"));
    }
    if item.len() > 1 {
        return Err(errors::bad_request("Request body contains too many items"));
    }
    authorized(&volumes, &auth, &id, "volume:update_volume_metadata").await?;
    change_metadata(&volumes, &id, |m| {
        m.extend(item.clone());
        Ok(())
    })
    .await?;
    Ok(ok("meta", json!(item)))
}

/// `DELETE /v3/volumes/{id}/metadata/{key}` (200, empty).
async fn metadata_delete(
    State(volumes): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let volume = authorized(&volumes, &auth, &id, "volume:get_volume_metadata").await?;
    if !volume.metadata.contains_key(&key) {
        return Err(metadata_not_found(&id, &key));
    }
    enforce(&auth, "volume:delete_volume_metadata", &volume.project_id)?;
    change_volume(&volumes, &id, |volume| {
        check_metadata_writable(volume, "Deleting")?;
        match volume.metadata.remove(&key) {
            Some(_) => Ok(()),
            None => Err(metadata_not_found(&id, &key)),
        }
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}
