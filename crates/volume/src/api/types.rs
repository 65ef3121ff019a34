//! `/v3/types` (`cinder/api/v3/types.py`, `contrib/types_manage.py`,
//! `contrib/types_extra_specs.py`, `contrib/volume_type_access.py`): volume types as each
//! caller may see them (public ones and the private ones shared with its project; admins see
//! every type), their extra specs (only the user-visible ones unless
//! `read_sensitive` allows), the admin operations, and private types' project access.

use super::query::strict_bool;
use super::snapshots::{ListParams, literal_dict, reject_invalid_filters};
use super::volumes::{as_bool, boolean_schema};
use super::{
    AppState, Mv, action_name, at_least, authorize, body_schema, caller_project, caller_target,
    closed_object, is_admin, no_such_action, ok, require_version,
};
use crate::db::write_tx;
use crate::errors;
use crate::model::VolumeType;
use crate::service::Volumes;
use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/types", get(index).post(create))
        .route("/types/{id}", get(show).put(update).delete(delete))
        .route("/types/{id}/action", post(action))
        .route("/types/{id}/os-volume-type-access", get(access_list))
        .route(
            "/types/{id}/extra_specs",
            get(specs_index).post(specs_create),
        )
        .route(
            "/types/{id}/extra_specs/{key}",
            get(specs_show).put(specs_update).delete(specs_delete),
        )
        .route("/default-types", get(defaults_index))
        .route(
            "/default-types/{project}",
            get(default_show).put(default_set).delete(default_unset),
        )
}

/// Extra specs every caller may read (`USER_VISIBLE_EXTRA_SPECS`).
const USER_VISIBLE_EXTRA_SPECS: &[&str] = &[
    "RESKEY:availability_zones",
    "multiattach",
    "replication_enabled",
];

/// What the caller may see of volume types.
struct Rights {
    extra_specs: bool,
    sensitive: bool,
    qos: bool,
    access: bool,
}

impl Rights {
    fn of(auth: &Auth) -> Rights {
        let caller = caller_target(auth);
        Rights {
            extra_specs: auth.allows("volume_extension:access_types_extra_specs", &caller),
            sensitive: auth.allows("volume_extension:types_extra_specs:read_sensitive", &caller),
            qos: auth.allows("volume_extension:access_types_qos_specs_id", &caller),
            access: auth.allows("volume_extension:volume_type_access", &caller),
        }
    }
}

/// The extra specs the caller may read.
fn visible_specs(specs: &BTreeMap<String, String>, sensitive: bool) -> BTreeMap<String, String> {
    specs
        .iter()
        .filter(|(k, _)| sensitive || USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The v3 view (`cinder/api/v3/views/types.py` plus the type access extension).
fn view(t: &VolumeType, rights: &Rights) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.name));
    m.insert("is_public".into(), json!(t.is_public));
    m.insert("description".into(), json!(t.description));
    if rights.extra_specs {
        m.insert(
            "extra_specs".into(),
            json!(visible_specs(&t.extra_specs, rights.sensitive)),
        );
    }
    if rights.qos {
        m.insert("qos_specs_id".into(), json!(t.qos_specs_id));
    }
    if rights.access {
        m.insert("os-volume-type-access:is_public".into(), json!(t.is_public));
    }
    Value::Object(m)
}

/// The view of the manage operations (`cinder/api/views/types.py`).
fn manage_view(t: &VolumeType) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.name));
    m.insert("is_public".into(), json!(t.is_public));
    m.insert("extra_specs".into(), json!(t.extra_specs));
    m.insert("description".into(), json!(t.description));
    m
}

/// The type by id as the caller may see it; 404 otherwise.
pub(super) async fn visible_type(
    v: &Volumes,
    auth: &Auth,
    id: &str,
) -> Result<VolumeType, ApiError> {
    let found: Option<VolumeType> = v.db.get(id).await?;
    let project = caller_project(auth);
    found
        .filter(|t| crate::types::usable_by(t, Some(&project), is_admin(auth)))
        .ok_or_else(|| errors::volume_type_not_found(id))
}

// ---------------------------------------------------------------------------------------
// List and show.
// ---------------------------------------------------------------------------------------

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "is_public",
    "created_at",
    "updated_at",
    "qos_specs_id",
];

/// `_parse_is_public`: absent → public (and shared) only, `none` → all, else a boolean.
fn parse_is_public(value: Option<&str>) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
        Some(v) => strict_bool(v)
            .map(Some)
            .ok_or_else(|| errors::bad_request(format!("Invalid is_public filter [{v}]"))),
    }
}

/// Whether a type (with its columns: its stored fields) passes the list filters
/// (`_process_volume_types_filters`).
fn matches(
    (columns, t): &(Value, VolumeType),
    filters: &BTreeMap<String, String>,
    specs: &BTreeMap<String, String>,
) -> bool {
    let specs_match = specs.iter().all(|(k, v)| match k.as_str() {
        "RESKEY:availability_zones" => t
            .extra_specs
            .get(k)
            .is_some_and(|have| have.contains(v.as_str())),
        _ => t.extra_specs.get(k) == Some(v),
    });
    specs_match
        && filters.iter().all(|(k, v)| match k.as_str() {
            "id" | "name" | "description" | "qos_specs_id" => columns[k].as_str() == Some(v),
            _ => false,
        })
}

/// `GET /v3/types`.
async fn index(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:type_get_all")?;
    let admin = is_admin(&auth);
    let rights = Rights::of(&auth);
    let mut params = ListParams::parse(raw.as_deref(), &mv)?;
    if !admin {
        match at_least(&mv, 52) {
            true => reject_invalid_filters(&mut params.filters, &["is_public", "extra_specs"])?,
            false => params.filters.retain(|k, _| k == "is_public"),
        }
    }
    let is_public = match admin {
        true => parse_is_public(params.filters.get("is_public").map(String::as_str))?,
        false => Some(true),
    };
    params.filters.remove("is_public");
    params.check_sort_keys(SORT_KEYS)?;
    let specs = match params.filters.remove("extra_specs") {
        None => BTreeMap::new(),
        Some(raw) => match literal_dict(&raw) {
            Some(specs) => specs,
            None => return Ok(list_body(&v, &params, Vec::new(), &rights)),
        },
    };
    if !rights.sensitive
        && specs
            .keys()
            .any(|k| !USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
    {
        return Ok(list_body(&v, &params, Vec::new(), &rights));
    }
    let project = caller_project(&auth);
    let all: Vec<VolumeType> = v.db.select("1 = 1", &[]).await?;
    let marker = match params.marker() {
        None => None,
        Some(m) => Some(json!(visible_type(&v, &auth, m).await?)),
    };
    let matched: Vec<(Value, VolumeType)> = all
        .into_iter()
        .filter(|t| match is_public {
            Some(true) => t.is_public || t.projects.contains(&project),
            Some(false) => !t.is_public,
            None => true,
        })
        .map(|t| (json!(t), t))
        .filter(|item| matches(item, &params.filters, &specs))
        .collect();
    let page = params.page(matched, marker.as_ref());
    Ok(list_body(&v, &params, page, &rights))
}

/// `{"volume_types": [...], "volume_type_links": [...]}`.
fn list_body(v: &Volumes, params: &ListParams, page: Vec<VolumeType>, rights: &Rights) -> Response {
    let items: Vec<Value> = page.iter().map(|t| view(t, rights)).collect();
    let mut body = json!({ "volume_types": items });
    let last = page.last().map(|t| t.id.as_str());
    if let Some(links) = params.links(v, "types", last, page.len(), None) {
        body["volume_type_links"] = links;
    }
    axum::Json(body).into_response()
}

/// `GET /v3/types/{id}` (`default`: the default type).
async fn show(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let volume_type = match id.as_str() {
        "default" => {
            let mut conn = v.db.conn().await?;
            crate::types::default_type_for(&mut conn, &v, &caller_project(&auth))
                .await
                .map_err(|_| ApiError::not_found("Default volume type can not be found."))?
        }
        _ => visible_type(&v, &auth, &id).await?,
    };
    authorize(&auth, "volume_extension:type_get")?;
    Ok(ok("volume_type", view(&volume_type, &Rights::of(&auth))))
}

// ---------------------------------------------------------------------------------------
// Create, update, delete.
// ---------------------------------------------------------------------------------------

/// Extra spec keys (no spaces) of the extra specs API.
const SPEC_KEY: &str = "^[a-zA-Z0-9_:.-]{1,255}$";

/// Extra spec keys of type create.
const SPEC_KEY_WITH_SPACES: &str = "^[a-zA-Z0-9_:. /-]{1,255}$";

fn specs_schema(key: &str) -> Value {
    json!({
        "type": "object",
        "patternProperties": {key: {"type": ["string", "null"], "maxLength": 255}},
        "additionalProperties": false,
    })
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let properties = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": ["string", "null"], "maxLength": 255},
        "extra_specs": specs_schema(SPEC_KEY_WITH_SPACES),
        "os-volume-type-access:is_public": boolean_schema(),
    });
    body_schema("volume_type", closed_object(properties, &["name"]))
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    let properties = json!({
        "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "description": {"type": ["string", "null"], "maxLength": 255},
        "is_public": boolean_schema(),
    });
    body_schema("volume_type", closed_object(properties, &[]))
});

/// Extra specs of a validated body. A `null` value (which Cinder stores as NULL) is refused:
/// the specs here are strings.
fn spec_values(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let mut specs = BTreeMap::new();
    for (k, value) in v.as_object().into_iter().flatten() {
        let value = value.as_str().ok_or_else(|| {
            errors::invalid_input(format!("Value for key \"{k}\" must be a string, not null."))
        })?;
        specs.insert(k.clone(), value.to_string());
    }
    Ok(specs)
}

/// 409 for a taken name.
fn name_exists(name: &str) -> ApiError {
    errors::conflict(format!("Volume Type {name} already exists."))
}

/// `POST /v3/types` (admins).
async fn create(
    State(v): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    CREATE.validate(&body)?;
    authorize(&auth, "volume_extension:type_create")?;
    let req = &body["volume_type"];
    let name = req["name"].as_str().unwrap_or_default().to_string();
    if name.trim().is_empty() {
        return Err(errors::bad_request(
            "An invalid 'name' value was provided. The 'name' can not be empty.",
        ));
    }
    let is_public = match &req["os-volume-type-access:is_public"] {
        Value::Null => true,
        flag => as_bool(flag).unwrap_or(true),
    };
    let volume_type = VolumeType {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        description: req["description"].as_str().map(str::to_string),
        is_public,
        extra_specs: spec_values(&req["extra_specs"])?,
        qos_specs_id: None,
        projects: Vec::new(),
        created_at: ferrostack_store::now_rfc3339(),
        updated_at: None,
    };
    write_tx!(v.db, |tx| {
        async {
            let taken: Vec<VolumeType> = tx.select("name = $1", &[&volume_type.name]).await?;
            if !taken.is_empty() {
                return Err(name_exists(&volume_type.name).into());
            }
            tx.insert(&volume_type).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    let mut m = manage_view(&volume_type);
    if Rights::of(&auth).access {
        m.insert("os-volume-type-access:is_public".into(), json!(is_public));
    }
    Ok(ok("volume_type", Value::Object(m)))
}

/// `PUT /v3/types/{id}` (admins): name, description, is_public. A new name renames the
/// type's quota resources (`volumes_<name>`, ...).
async fn update(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    UPDATE.validate(&body)?;
    authorize(&auth, "volume_extension:type_update")?;
    let req = &body["volume_type"];
    let name = req["name"].as_str().map(str::to_string);
    let description = req["description"].as_str().map(str::to_string);
    let is_public = as_bool(&req["is_public"]);
    if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(errors::bad_request("Volume type name can not be empty."));
    }
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(errors::bad_request(
            "Specify volume type name, description, is_public or a combination thereof.",
        ));
    }
    let updated = write_tx!(v.db, |tx| {
        async {
            let mut row = lock_type(tx, &id).await?;
            if let Some(name) = name.as_ref().filter(|n| **n != row.name) {
                let taken: Vec<VolumeType> = tx.select("name = $1", &[name]).await?;
                if !taken.is_empty() {
                    return Err(name_exists(name).into());
                }
                rename_quota_resources(tx, &row.name, name).await?;
                row.name = name.clone();
            }
            if let Some(description) = &description {
                row.description = Some(description.clone());
            }
            if let Some(is_public) = is_public {
                row.is_public = is_public;
            }
            row.updated_at = Some(ferrostack_store::now_rfc3339());
            tx.save(&row).await?;
            Ok::<VolumeType, crate::db::Error>(row)
        }
        .await
    })?;
    Ok(ok("volume_type", Value::Object(manage_view(&updated))))
}

/// Renames the per-type quota limits of `old` to `new` (`update_quota_resource`).
async fn rename_quota_resources(
    tx: &mut crate::db::Tx,
    old: &str,
    new: &str,
) -> crate::db::Result<()> {
    for prefix in ["volumes", "snapshots", "gigabytes"] {
        let from = format!("{prefix}_{old}");
        let to = format!("{prefix}_{new}");
        tx.exec("DELETE FROM vol_quotas WHERE resource = $1", &[&to])
            .await?;
        tx.exec(
            "UPDATE vol_quotas SET resource = $1 WHERE resource = $2",
            &[&to, &from],
        )
        .await?;
    }
    Ok(())
}

/// `DELETE /v3/types/{id}` (admins): not the default type, not the last one, not while
/// volumes use it.
async fn delete(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:type_delete")?;
    let volume_type = visible_type(&v, &auth, &id).await?;
    if volume_type.name == v.settings.default_volume_type
        || project_default_of(&v, &volume_type.id).await?
    {
        return Err(errors::bad_request(format!(
            "The volume type {id} is a default volume type and cannot be deleted."
        )));
    }
    write_tx!(v.db, |tx| {
        async {
            let types = tx.count("SELECT COUNT(*) FROM vol_types", &[]).await?;
            if types <= 1 {
                return Err(errors::bad_request(format!(
                    "The volume type {id} is the only currently defined volume type and cannot \
                     be deleted."
                ))
                .into());
            }
            let used = tx
                .count(
                    "SELECT COUNT(*) FROM vol_volumes WHERE volume_type_id = $1",
                    &[&id],
                )
                .await?;
            if used > 0 {
                return Err(errors::bad_request("Target volume type is still in use.").into());
            }
            tx.delete::<VolumeType>(&id).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Whether some project has `type_id` as its default type (`default-types`).
async fn project_default_of(v: &Volumes, type_id: &str) -> Result<bool, ApiError> {
    let projects =
        v.db.count(
            "SELECT COUNT(*) FROM vol_default_types WHERE volume_type_id = $1",
            &[type_id],
        )
        .await?;
    Ok(projects > 0)
}

// ---------------------------------------------------------------------------------------
// Type access.
// ---------------------------------------------------------------------------------------

/// `GET /v3/types/{id}/os-volume-type-access` (admins; private types only).
async fn access_list(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(
        &auth,
        "volume_extension:volume_type_access:get_all_for_type",
    )?;
    let volume_type = visible_type(&v, &auth, &id).await?;
    if volume_type.is_public {
        return Err(ApiError::not_found(
            "Access list not available for public volume types.",
        ));
    }
    let access: Vec<Value> = volume_type
        .projects
        .iter()
        .map(|p| json!({"volume_type_id": volume_type.id, "project_id": p}))
        .collect();
    Ok(ok("volume_type_access", Value::Array(access)))
}

static PROJECT_ACCESS: LazyLock<Schema> = LazyLock::new(|| {
    let project = json!({
        "type": "object",
        "properties": {"project": {"type": "string", "minLength": 1, "maxLength": 255}},
        "required": ["project"],
        "additionalProperties": false,
    });
    Schema::new(json!({
        "type": "object",
        "properties": {"addProjectAccess": project, "removeProjectAccess": project},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": false,
    }))
});

/// `POST /v3/types/{id}/action`: `addProjectAccess` / `removeProjectAccess` (admins).
async fn action(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let name = action_name(&body)?;
    let add = match name.as_str() {
        "addProjectAccess" => true,
        "removeProjectAccess" => false,
        other => {
            return Err(no_such_action(other));
        }
    };
    PROJECT_ACCESS.validate(&body)?;
    let project = body[&name]["project"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    auth.enforce(
        &format!("volume_extension:volume_type_access:{name}"),
        &caller_target(&auth),
    )?;
    write_tx!(v.db, |tx| {
        async {
            let mut row = lock_type(tx, &id).await?;
            if row.is_public {
                return Err(errors::bad_request(
                    "Invalid volume type: Type access modification is not applicable to public \
                     volume type.",
                )
                .into());
            }
            let present = row.projects.contains(&project);
            match (add, present) {
                (true, true) => {
                    return Err(errors::conflict(format!(
                        "Volume type access for {id} / {project} combination already exists."
                    ))
                    .into());
                }
                (false, false) => {
                    return Err(ApiError::not_found(format!(
                        "Volume type access not found for {id} / {project} combination."
                    ))
                    .into());
                }
                (true, false) => row.projects.push(project.clone()),
                (false, true) => row.projects.retain(|p| *p != project),
            }
            row.updated_at = Some(ferrostack_store::now_rfc3339());
            tx.save(&row).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Extra specs.
// ---------------------------------------------------------------------------------------

static SPECS_CREATE: LazyLock<Schema> =
    LazyLock::new(|| body_schema("extra_specs", specs_schema(SPEC_KEY)));

static SPECS_UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    let mut schema = specs_schema(SPEC_KEY);
    schema["minProperties"] = json!(1);
    schema["maxProperties"] = json!(1);
    Schema::new(schema)
});

/// Refuses changes to the extra specs of a type volumes use (`_allow_update`).
async fn allow_update(v: &Volumes, id: &str) -> Result<(), ApiError> {
    let used =
        v.db.count(
            "SELECT COUNT(*) FROM vol_volumes WHERE volume_type_id = $1",
            &[id],
        )
        .await?;
    match used {
        0 => Ok(()),
        _ => Err(errors::bad_request("Volume Type is currently in use.")),
    }
}

/// `cacheable` and `multiattach` cannot both be `<is> True` (`_check_cacheable`).
fn check_cacheable(
    new: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let is_true =
        |m: &BTreeMap<String, String>, k: &str| m.get(k).is_some_and(|v| v == "<is> True");
    let refused = (is_true(new, "multiattach") && is_true(existing, "cacheable"))
        || (is_true(new, "cacheable") && is_true(existing, "multiattach"))
        || (is_true(new, "cacheable") && is_true(new, "multiattach"));
    match refused {
        true => Err(errors::bad_request(
            "cacheable cannot be set with multiattach.",
        )),
        false => Ok(()),
    }
}

/// Locks the type `id` in `tx` (404 when it is gone).
pub(super) async fn lock_type(tx: &mut crate::db::Tx, id: &str) -> crate::db::Result<VolumeType> {
    let row: Option<VolumeType> = tx.lock(id).await?;
    Ok(row.ok_or_else(|| errors::volume_type_not_found(id))?)
}

/// Changes the locked type `id` with `change` (which may refuse) and saves it with a new
/// `updated_at`.
async fn change_type(
    v: &Volumes,
    id: &str,
    change: impl Fn(&mut VolumeType) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    write_tx!(v.db, |tx| {
        async {
            let mut row = lock_type(tx, id).await?;
            change(&mut row)?;
            row.updated_at = Some(ferrostack_store::now_rfc3339());
            tx.save(&row).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(())
}

/// The type whose extra specs `rule` allows to change (`_allow_update`: not while volumes use
/// it), as the caller may see it.
async fn specs_target(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    rule: &str,
) -> Result<VolumeType, ApiError> {
    authorize(auth, rule)?;
    allow_update(v, id).await?;
    visible_type(v, auth, id).await
}

/// Merges `specs` into the extra specs of `volume_type` (`_check_cacheable` first).
async fn merge_specs(
    v: &Volumes,
    volume_type: &VolumeType,
    specs: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    check_cacheable(&specs, &volume_type.extra_specs)?;
    change_type(v, &volume_type.id, |row| {
        row.extra_specs.extend(specs.clone());
        Ok(())
    })
    .await
}

/// The extra specs of the type `id` the caller may read, once `rule` allows it.
async fn readable_specs(
    v: &Volumes,
    auth: &Auth,
    id: &str,
    rule: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    authorize(auth, rule)?;
    let volume_type = visible_type(v, auth, id).await?;
    Ok(visible_specs(
        &volume_type.extra_specs,
        Rights::of(auth).sensitive,
    ))
}

/// `GET /v3/types/{id}/extra_specs`.
async fn specs_index(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let specs = readable_specs(&v, &auth, &id, "volume_extension:types_extra_specs:index").await?;
    Ok(ok("extra_specs", json!(specs)))
}

/// `POST /v3/types/{id}/extra_specs` (admins): adds or changes specs; answers the body.
async fn specs_create(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    SPECS_CREATE.validate(&body)?;
    let rule = "volume_extension:types_extra_specs:create";
    let volume_type = specs_target(&v, &auth, &id, rule).await?;
    merge_specs(&v, &volume_type, spec_values(&body["extra_specs"])?).await?;
    Ok(axum::Json(body).into_response())
}

/// `GET /v3/types/{id}/extra_specs/{key}`: `{key: value}`.
async fn specs_show(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let specs = readable_specs(&v, &auth, &id, "volume_extension:types_extra_specs:show").await?;
    let value = specs.get(&key).ok_or_else(|| no_spec(&id, &key))?;
    Ok(ok(&key, json!(value)))
}

/// 404 for a missing extra spec.
fn no_spec(id: &str, key: &str) -> ApiError {
    ApiError::not_found(format!(
        "Volume Type {id} has no extra specs with key {key}."
    ))
}

/// `PUT /v3/types/{id}/extra_specs/{key}` with `{key: value}` (admins).
async fn specs_update(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    SPECS_UPDATE.validate(&body)?;
    let rule = "volume_extension:types_extra_specs:update";
    let volume_type = specs_target(&v, &auth, &id, rule).await?;
    if body.get(&key).is_none() {
        return Err(errors::bad_request("Request body and URI mismatch"));
    }
    merge_specs(&v, &volume_type, spec_values(&body)?).await?;
    Ok(axum::Json(body).into_response())
}

/// `DELETE /v3/types/{id}/extra_specs/{key}` (admins).
async fn specs_delete(
    State(v): AppState,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible_type(&v, &auth, &id).await?;
    authorize(&auth, "volume_extension:types_extra_specs:delete")?;
    allow_update(&v, &id).await?;
    change_type(&v, &id, |row| match row.extra_specs.remove(&key) {
        Some(_) => Ok(()),
        None => Err(no_spec(&id, &key)),
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Project default types (3.62, `cinder/api/v3/default_types.py`).
// ---------------------------------------------------------------------------------------

/// Checks a default-types rule on `project` (403 with Cinder's message).
fn authorize_project(auth: &Auth, policy: &str, project: &str) -> Result<(), ApiError> {
    auth.enforce(policy, &json!({"project_id": project}))
        .map_err(|_| ApiError::forbidden("You are not authorized to perform this operation."))
}

/// A default-types request on `project` (3.62, 404 below) that `policy` allows.
fn check_project_request(
    mv: &Mv,
    auth: &Auth,
    policy: &str,
    project: &str,
) -> Result<(), ApiError> {
    require_version(mv, 62)?;
    authorize_project(auth, policy, project)
}

fn default_view(project: &str, type_id: &str) -> Value {
    json!({"project_id": project, "volume_type_id": type_id})
}

static DEFAULT_SET: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object",
        "properties": {"default_type": {
            "type": "object",
            "properties": {"volume_type": {"type": "string", "minLength": 1, "maxLength": 255}},
            "required": ["volume_type"],
            "additionalProperties": false,
        }},
    }))
});

/// `PUT /v3/default-types/{project}`: `{"default_type": {"volume_type": <name or id>}}`.
/// The project is not checked against the identity service.
async fn default_set(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(project): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    require_version(&mv, 62)?;
    DEFAULT_SET.validate(&body)?;
    let wanted = body["default_type"]["volume_type"]
        .as_str()
        .ok_or_else(|| errors::bad_request("Invalid input for field 'default_type'."))?;
    authorize_project(&auth, "volume_extension:default_set_or_update", &project)?;
    let mut conn = v.db.conn().await?;
    let volume_type = crate::types::find(&mut conn, wanted, None, true)
        .await?
        .ok_or_else(|| errors::bad_request(format!("Volume type {wanted} could not be found.")))?;
    drop(conn);
    write_tx!(v.db, |tx| {
        tx.exec(
            "INSERT INTO vol_default_types (project_id, volume_type_id) VALUES ($1, $2) \
             ON CONFLICT (project_id) DO UPDATE SET volume_type_id = excluded.volume_type_id",
            &[&project, &volume_type.id],
        )
        .await
    })?;
    Ok(ok("default_type", default_view(&project, &volume_type.id)))
}

/// `GET /v3/default-types/{project}`.
async fn default_show(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    check_project_request(&mv, &auth, "volume_extension:default_get", &project)?;
    let mut conn = v.db.conn().await?;
    let set = ferrostack_store::doc::strings(
        &mut conn,
        "SELECT volume_type_id FROM vol_default_types WHERE project_id = $1",
        &[&project],
    )
    .await
    .map_err(ApiError::internal)?;
    let type_id = set.first().ok_or_else(|| {
        ApiError::not_found(format!("Default type for project {project} not found."))
    })?;
    Ok(ok("default_type", default_view(&project, type_id)))
}

/// `GET /v3/default-types` (admins).
async fn defaults_index(State(v): AppState, auth: Auth, mv: Mv) -> Result<Response, ApiError> {
    require_version(&mv, 62)?;
    authorize(&auth, "volume_extension:default_get_all")
        .map_err(|_| ApiError::forbidden("You are not authorized to perform this operation."))?;
    let mut conn = v.db.conn().await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT project_id, volume_type_id FROM vol_default_types ORDER BY project_id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(ApiError::internal)?;
    let items: Vec<Value> = rows.iter().map(|(p, t)| default_view(p, t)).collect();
    Ok(ok("default_types", Value::Array(items)))
}

/// `DELETE /v3/default-types/{project}` (204, also when none was set).
async fn default_unset(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    check_project_request(&mv, &auth, "volume_extension:default_unset", &project)?;
    write_tx!(v.db, |tx| {
        tx.exec(
            "DELETE FROM vol_default_types WHERE project_id = $1",
            &[&project],
        )
        .await
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
