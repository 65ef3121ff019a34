//! Flavors, their extra specs and access lists (`nova/api/openstack/compute/flavors*.py`).

use super::{AppState, Mv, at_least};
use crate::db::{self, Flavor};
use crate::service::{Compute, db_error};
use axum::{
    Json,
    extract::{Path, Query},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Public};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Flavor ids a client may choose (Nova's pattern, without the leading/trailing space rule).
static FLAVOR_ID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9. _-]+$").expect("valid regex"));
/// Extra spec keys.
static SPEC_KEY: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9-_:. ]{1,255}$").expect("valid regex"));

fn is_admin(auth: &Auth) -> bool {
    auth.allows("context_is_admin", &json!({}))
}

/// The caller's project as a policy target.
fn project_target(auth: &Auth) -> Value {
    match auth.project_id() {
        Some(p) => json!({"project_id": p}),
        None => json!({}),
    }
}

fn links(compute: &Compute, id: &str) -> Value {
    let base = compute.base_url();
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/flavors/{id}")},
        {"rel": "bookmark", "href": format!("{base}/flavors/{id}")},
    ])
}

/// The flavor body at the request's microversion.
fn body(compute: &Compute, f: &Flavor, mv: &Mv, specs_visible: bool) -> Value {
    let mut b = Map::new();
    b.insert("id".into(), json!(f.flavorid));
    b.insert("name".into(), json!(f.name));
    b.insert("ram".into(), json!(f.memory_mb));
    b.insert("disk".into(), json!(f.root_gb));
    let swap = match (f.swap, at_least(mv, 2, 75)) {
        (0, false) => json!(""),
        (n, _) => json!(n),
    };
    b.insert("swap".into(), swap);
    b.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral_gb));
    b.insert("OS-FLV-DISABLED:disabled".into(), json!(f.disabled));
    b.insert("vcpus".into(), json!(f.vcpus));
    b.insert("os-flavor-access:is_public".into(), json!(f.is_public));
    b.insert("rxtx_factor".into(), json!(f.rxtx_factor));
    b.insert("links".into(), links(compute, &f.flavorid));
    if at_least(mv, 2, 55) {
        b.insert("description".into(), json!(f.description));
    }
    if at_least(mv, 2, 61) && specs_visible {
        b.insert("extra_specs".into(), json!(f.extra_specs));
    }
    Value::Object(b)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Flavor {id} could not be found."))
}

/// Flavors the caller may see, after Nova's `is_public` rules.
async fn visible_flavors(
    compute: &Compute,
    auth: &Auth,
    is_public: Option<&str>,
) -> Result<Vec<Flavor>, ApiError> {
    let all = db::flavors(&compute.store).await.map_err(db_error)?;
    let granted = match auth.project_id() {
        Some(p) => db::flavors_of_project(&compute.store, p)
            .await
            .map_err(db_error)?,
        None => Vec::new(),
    };
    let accessible = |f: &Flavor| f.is_public || granted.contains(&f.flavorid);
    if !is_admin(auth) {
        return Ok(all
            .into_iter()
            .filter(|f| accessible(f) && !f.disabled)
            .collect());
    }
    let keep: Box<dyn Fn(&Flavor) -> bool> = match is_public.map(str::to_ascii_lowercase).as_deref()
    {
        None | Some("true") | Some("t") | Some("1") | Some("yes") => Box::new(accessible),
        Some("false") | Some("f") | Some("0") | Some("no") => Box::new(|f: &Flavor| !f.is_public),
        Some("none") => Box::new(|_: &Flavor| true),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "Invalid is_public filter [{}]",
                is_public.unwrap_or_default()
            )));
        }
    };
    Ok(all.into_iter().filter(|f| keep(f)).collect())
}

/// The flavor `id` if the caller may see it (as [`visible_flavors`] with `is_public=none`:
/// admins see every flavor, others the enabled public ones and the private ones their project
/// was given), by primary-key lookups.
pub(crate) async fn find_visible(
    compute: &Compute,
    auth: &Auth,
    id: &str,
) -> Result<Flavor, ApiError> {
    let flavor = db::flavor(&compute.store, id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(id))?;
    if is_admin(auth) {
        return Ok(flavor);
    }
    let accessible = flavor.is_public
        || match auth.project_id() {
            Some(p) => db::flavor_projects(&compute.store, id)
                .await
                .map_err(db_error)?
                .iter()
                .any(|granted| granted == p),
            None => false,
        };
    if accessible && !flavor.disabled {
        Ok(flavor)
    } else {
        Err(not_found(id))
    }
}

fn sort_value(f: &Flavor, key: &str) -> Value {
    match key {
        "name" => json!(f.name),
        "memory_mb" => json!(f.memory_mb),
        "vcpus" => json!(f.vcpus),
        "root_gb" => json!(f.root_gb),
        "ephemeral_gb" => json!(f.ephemeral_gb),
        "swap" => json!(f.swap),
        "rxtx_factor" => json!(f.rxtx_factor),
        "is_public" => json!(f.is_public),
        "disabled" => json!(f.disabled),
        "description" => json!(f.description),
        "created_at" | "updated_at" | "id" => json!(f.created_at),
        _ => json!(f.flavorid),
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    }
}

const SORT_KEYS: [&str; 15] = [
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

async fn listing(
    auth: &Auth,
    state: &AppState,
    query: &[(String, String)],
    detail: bool,
    mv: &Mv,
) -> Result<Json<Value>, ApiError> {
    let compute = &state.0;
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let mut flavors = visible_flavors(compute, auth, get("is_public")).await?;
    for (param, field) in [("minRam", "memory_mb"), ("minDisk", "root_gb")] {
        if let Some(v) = get(param) {
            let min: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("Invalid {param} filter [{v}]")))?;
            flavors.retain(|f| match field {
                "memory_mb" => f.memory_mb >= min,
                _ => f.root_gb >= min,
            });
        }
    }
    let key = get("sort_key").unwrap_or("flavorid");
    if !SORT_KEYS.contains(&key) {
        return Err(ApiError::bad_request(format!(
            "Invalid input for query parameters sort_key. Value: {key}."
        )));
    }
    let descending = match get("sort_dir").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for query parameters sort_dir. Value: {other}."
            )));
        }
    };
    flavors.sort_by(|a, b| {
        let o = compare(&sort_value(a, key), &sort_value(b, key))
            .then_with(|| a.flavorid.cmp(&b.flavorid));
        if descending { o.reverse() } else { o }
    });
    if let Some(marker) = get("marker") {
        let at = flavors
            .iter()
            .position(|f| f.flavorid == marker)
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        flavors.drain(..=at);
    }
    let limit = match get("limit") {
        None => 1000,
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input for query parameters limit. Value: {v}."
            ))
        })?,
    }
    .min(1000);
    let full = flavors.len() > limit;
    flavors.truncate(limit);
    let specs_visible = auth.allows(
        "os_compute_api:os-flavor-extra-specs:index",
        &project_target(auth),
    );
    let items: Vec<Value> = flavors
        .iter()
        .map(|f| {
            if detail {
                body(compute, f, mv, specs_visible)
            } else {
                let mut b =
                    json!({"id": f.flavorid, "name": f.name, "links": links(compute, &f.flavorid)});
                if at_least(mv, 2, 55) {
                    b["description"] = json!(f.description);
                }
                b
            }
        })
        .collect();
    let mut out = json!({"flavors": items});
    if full && let Some(last) = flavors.last() {
        let path = if detail { "flavors/detail" } else { "flavors" };
        out["flavors_links"] = json!([{"rel": "next", "href": format!(
            "{}/v2.1/{path}?limit={limit}&marker={}", compute.base_url(), last.flavorid
        )}]);
    }
    Ok(Json(out))
}

/// `GET /flavors` (any authenticated caller, as in Nova).
pub async fn index(
    auth: Auth,
    _: Public,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    listing(&auth, &state, &query, false, &mv).await
}

/// `GET /flavors/detail`
pub async fn detail(
    auth: Auth,
    _: Public,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    listing(&auth, &state, &query, true, &mv).await
}

/// `GET /flavors/{id}`
pub async fn show(
    auth: Auth,
    _: Public,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let flavor = find_visible(&state.0, &auth, &id).await?;
    let specs_visible = auth.allows(
        "os_compute_api:os-flavor-extra-specs:index",
        &project_target(&auth),
    );
    Ok(Json(
        json!({"flavor": body(&state.0, &flavor, &mv, specs_visible)}),
    ))
}

fn int_field(
    f: &Map<String, Value>,
    key: &str,
    min: i64,
    default: Option<i64>,
) -> Result<i64, ApiError> {
    let bad = |v: &Value| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}. {v} is not of type 'integer' or is less than the minimum of {min}"
        ))
    };
    match f.get(key) {
        None | Some(Value::Null) => {
            default.ok_or_else(|| ApiError::bad_request(format!("'{key}' is a required property")))
        }
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            n.filter(|n| *n >= min).ok_or_else(|| bad(v))
        }
    }
}

/// `POST /flavors` (admin)
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-manage:create",
        &project_target(&auth),
    )?;
    let compute = &state.0;
    let Some(f) = body_in.get("flavor").and_then(Value::as_object) else {
        return Err(ApiError::bad_request("'flavor' is a required property"));
    };
    let name = match f.get("name") {
        Some(Value::String(n))
            if !n.is_empty()
                && n.trim() == n
                && n.len() <= 255
                && !n.chars().any(char::is_control) =>
        {
            n.clone()
        }
        _ => {
            return Err(ApiError::bad_request(
                "An invalid 'name' value was provided. The name must be: printable characters. \
                 Can not start or end with whitespace.",
            ));
        }
    };
    let flavorid = match f.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s))
            if FLAVOR_ID.is_match(s)
                && !s.starts_with(' ')
                && !s.ends_with(' ')
                && s.len() <= 255 =>
        {
            s.clone()
        }
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute id. Value: {v}."
            )));
        }
    };
    // `parameter_types.boolean`: JSON booleans and their usual spellings ("True", "false", ...).
    let is_public = match f.get("os-flavor-access:is_public") {
        None | Some(Value::Null) => true,
        Some(v) => super::services::boolean(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute os-flavor-access:is_public. Value: {v}."
            ))
        })?,
    };
    let rxtx_factor = match f.get("rxtx_factor") {
        None | Some(Value::Null) => 1.0,
        Some(v) => v.as_f64().filter(|x| *x > 0.0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute rxtx_factor. Value: {v}."
            ))
        })?,
    };
    let description = match (f.get("description"), at_least(&mv, 2, 55)) {
        (None | Some(Value::Null), _) => None,
        (Some(Value::String(d)), true) if d.len() <= 65535 => Some(d.clone()),
        (Some(_), false) => {
            return Err(ApiError::bad_request(
                "Additional properties are not allowed ('description' was unexpected)",
            ));
        }
        (Some(v), true) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute description. Value: {v}."
            )));
        }
    };
    let flavor = Flavor {
        flavorid,
        name,
        memory_mb: int_field(f, "ram", 1, None)?,
        vcpus: int_field(f, "vcpus", 1, None)?,
        root_gb: int_field(f, "disk", 0, None)?,
        ephemeral_gb: int_field(f, "OS-FLV-EXT-DATA:ephemeral", 0, Some(0))?,
        swap: int_field(f, "swap", 0, Some(0))?,
        rxtx_factor,
        is_public,
        disabled: false,
        description,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        extra_specs: BTreeMap::new(),
    };
    let named = db::flavor_id_by_name(&compute.store, &flavor.name)
        .await
        .map_err(db_error)?;
    if named.is_some() {
        return Err(ApiError::conflict(format!(
            "Flavor with name {} already exists.",
            flavor.name
        )));
    }
    let same_id = db::flavor(&compute.store, &flavor.flavorid)
        .await
        .map_err(db_error)?;
    if same_id.is_some() {
        return Err(ApiError::conflict(format!(
            "Flavor with ID {} already exists.",
            flavor.flavorid
        )));
    }
    db::insert_flavor(&compute.store, &flavor)
        .await
        .map_err(|e| match e {
            ferrostack_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("Flavor with name {} already exists.", flavor.name))
            }
            other => db_error(other),
        })?;
    tracing::info!(flavor = %flavor.flavorid, name = %flavor.name, "flavor created");
    Ok(Json(json!({"flavor": body(compute, &flavor, &mv, true)})))
}

/// `PUT /flavors/{id}` (admin, ≥ 2.55: the description only)
pub async fn update(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(id): Path<String>,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if !at_least(&mv, 2, 55) {
        let _ = auth.allows("os_compute_api:os-flavor-manage:update", &json!({}));
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ));
    }
    auth.enforce(
        "os_compute_api:os-flavor-manage:update",
        &project_target(&auth),
    )?;
    let description = match body_in.get("flavor").and_then(|f| f.get("description")) {
        Some(Value::Null) => None,
        Some(Value::String(d)) if d.len() <= 65535 => Some(d.clone()),
        _ => {
            return Err(ApiError::bad_request(
                "'description' is a required property",
            ));
        }
    };
    let compute = &state.0;
    let mut flavor = db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    db::set_flavor_description(&compute.store, &id, description.as_deref(), &now)
        .await
        .map_err(db_error)?;
    flavor.description = description;
    Ok(Json(json!({"flavor": body(compute, &flavor, &mv, true)})))
}

/// `DELETE /flavors/{id}` (admin): 202
pub async fn delete(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-manage:delete",
        &project_target(&auth),
    )?;
    let compute = &state.0;
    db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    db::delete_flavor(&compute.store, &id)
        .await
        .map_err(db_error)?;
    tracing::info!(flavor = %id, "flavor deleted");
    Ok(StatusCode::ACCEPTED)
}

/// Validates extra specs (`^[a-zA-Z0-9-_:. ]{1,255}$` keys, string or number values ≤ 255).
fn parse_specs(value: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(map) = value.and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "'extra_specs' is a required property",
        ));
    };
    let mut specs = BTreeMap::new();
    for (k, v) in map {
        if !SPEC_KEY.is_match(k) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute extra_specs. Value: {k}. '{k}' does not match any of the regexes"
            )));
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {k}. Value: {other}."
                )));
            }
        };
        if text.len() > 255 {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {k}. Value is too long."
            )));
        }
        specs.insert(k.clone(), text);
    }
    Ok(specs)
}

/// `GET /flavors/{id}/os-extra_specs`
pub async fn specs_index(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-extra-specs:index",
        &project_target(&auth),
    )?;
    let flavor = find_visible(&state.0, &auth, &id).await?;
    Ok(Json(json!({"extra_specs": flavor.extra_specs})))
}

/// `POST /flavors/{id}/os-extra_specs` (admin): merges and echoes the request.
pub async fn specs_create(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-extra-specs:create",
        &project_target(&auth),
    )?;
    let specs = parse_specs(body_in.get("extra_specs"))?;
    let compute = &state.0;
    db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    db::set_extra_specs(&compute.store, &id, &specs)
        .await
        .map_err(db_error)?;
    Ok(Json(json!({"extra_specs": specs})))
}

/// `GET /flavors/{id}/os-extra_specs/{key}`
pub async fn spec_show(
    auth: Auth,
    state: AppState,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-extra-specs:show",
        &project_target(&auth),
    )?;
    let flavor = find_visible(&state.0, &auth, &id).await?;
    match flavor.extra_specs.get(&key) {
        Some(v) => Ok(Json(json!({ key: v }))),
        None => Err(ApiError::not_found(format!(
            "Flavor {id} has no extra specs with key {key}."
        ))),
    }
}

/// `PUT /flavors/{id}/os-extra_specs/{key}` (admin): the body is exactly `{key: value}`.
pub async fn spec_update(
    auth: Auth,
    state: AppState,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body_in): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-extra-specs:update",
        &project_target(&auth),
    )?;
    let specs = parse_specs(Some(&body_in))?;
    if specs.len() != 1 || !specs.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    let compute = &state.0;
    db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    db::set_extra_specs(&compute.store, &id, &specs)
        .await
        .map_err(db_error)?;
    Ok(Json(json!(specs)))
}

/// `DELETE /flavors/{id}/os-extra_specs/{key}` (admin): 200, empty.
pub async fn spec_delete(
    auth: Auth,
    state: AppState,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "os_compute_api:os-flavor-extra-specs:delete",
        &project_target(&auth),
    )?;
    let compute = &state.0;
    db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    if !db::delete_extra_spec(&compute.store, &id, &key)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::not_found(format!(
            "Flavor {id} has no extra specs with key {key}."
        )));
    }
    Ok(StatusCode::OK)
}

async fn access_body(compute: &Compute, id: &str) -> Result<Json<Value>, ApiError> {
    let projects = db::flavor_projects(&compute.store, id)
        .await
        .map_err(db_error)?;
    let list: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    Ok(Json(json!({"flavor_access": list})))
}

/// `GET /flavors/{id}/os-flavor-access` (admin)
pub async fn access_list(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-flavor-access", &project_target(&auth))?;
    let compute = &state.0;
    let flavor = db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    if flavor.is_public {
        return Err(ApiError::not_found(
            "Access list not available for public flavors.",
        ));
    }
    access_body(compute, &id).await
}

/// `POST /flavors/{id}/action`: `addTenantAccess` / `removeTenantAccess` (admin).
pub async fn action(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    JsonBody(body_in): JsonBody,
) -> Result<Response, ApiError> {
    let compute = &state.0;
    let (rule, add, args) = if let Some(a) = body_in.get("addTenantAccess") {
        ("os_compute_api:os-flavor-access:add_tenant_access", true, a)
    } else if let Some(a) = body_in.get("removeTenantAccess") {
        (
            "os_compute_api:os-flavor-access:remove_tenant_access",
            false,
            a,
        )
    } else {
        let _ = auth.allows("os_compute_api:os-flavor-access", &json!({}));
        let key = body_in
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "There is no such action: {key}"
        )));
    };
    auth.enforce(rule, &project_target(&auth))?;
    let Some(project) = args.get("tenant").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("'tenant' is a required property"));
    };
    let flavor = db::flavor(&compute.store, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&id))?;
    if add {
        if flavor.is_public {
            return Err(ApiError::conflict("Can not add access to a public flavor."));
        }
        db::add_flavor_project(&compute.store, &id, project)
            .await
            .map_err(|e| match e {
                ferrostack_store::StoreError::Conflict(_) => ApiError::conflict(format!(
                    "Flavor access already exists for flavor {id} and project {project} combination."
                )),
                other => db_error(other),
            })?;
    } else if !db::remove_flavor_project(&compute.store, &id, project)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::not_found(format!(
            "Flavor access not found for {id} / {project} combination."
        )));
    }
    Ok(access_body(compute, &id).await?.into_response())
}
