//! `/v3/regions`, `/v3/services` and `/v3/endpoints`: the service catalog.

use super::{
    AppState, Pairs, collection_links, extra_from, links, member, name_matches, new_id, not_found,
    query_bool, query_value, with_extra,
};
use crate::data::Change;
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::Query,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/regions", get(list_regions).post(create_region))
        .route(
            "/regions/{region_id}",
            get(show_region)
                .put(put_region)
                .patch(update_region)
                .delete(remove_region),
        )
        .route("/services", get(list_services).post(create_service))
        .route(
            "/services/{service_id}",
            get(show_service)
                .patch(update_service)
                .delete(remove_service),
        )
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{endpoint_id}",
            get(show_endpoint)
                .patch(update_endpoint)
                .delete(remove_endpoint),
        )
}

/// Keystone's `ValidationError` wording for an attribute that must refer to something.
fn expecting(attribute: &str, target: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Expecting to find {attribute} in {target}. The server could not comply with the request since it is either \
         malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

/// Keystone's `_require_matching_id`: a body `id` must match the path.
fn require_matching_id(body: &Value, id: &str) -> Result<(), ApiError> {
    match body.get("id") {
        Some(v) if !v.is_null() && v.as_str() != Some(id) => {
            Err(ApiError::bad_request("Cannot change ID"))
        }
        _ => Ok(()),
    }
}

/// Whether an exact-match query filter (if given) accepts `value`.
fn filter_matches(pairs: &[(String, String)], key: &str, value: Option<&str>) -> bool {
    query_value(pairs, key).is_none_or(|want| value == Some(want))
}

// ---- regions ----

static REGION_CREATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "required": ["region"], "properties": {"region": {
        "type": "object",
        "properties": {
            "id": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
            "parent_region_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
        }}}}),
    )
});

static REGION_UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "required": ["region"], "additionalProperties": false, "properties": {"region": {
        "type": "object", "minProperties": 1,
        "properties": {"parent_region_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}}}}}),
    )
});

const REGION_CORE: &[&str] = &["id", "description", "parent_region_id", "links"];

/// Keystone's JSON of a region.
pub fn region_json(identity: &Identity, r: &Region) -> Value {
    with_extra(
        json!({
            "id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": links(identity, &format!("regions/{}", r.id)),
        }),
        &r.extra,
    )
}

fn find_region(identity: &Identity, id: &str) -> Result<Region, ApiError> {
    identity
        .read()
        .regions
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("region", id))
}

/// `GET /v3/regions` (its query schema admits only `parent_region_id`).
async fn list_regions(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    if let Some((key, _)) = query.iter().find(|(k, _)| k != "parent_region_id") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{key}' was unexpected)"
        )));
    }
    if query_value(&query, "parent_region_id").is_some_and(str::is_empty) {
        return Err(ApiError::bad_request(
            "Invalid input for query parameters parent_region_id. Value: . '' should be non-empty",
        ));
    }
    auth.enforce("identity:list_regions", &json!({}))?;
    let data = identity.read();
    let mut regions: Vec<&Region> = data
        .regions
        .values()
        .filter(|r| filter_matches(&query, "parent_region_id", r.parent_region_id.as_deref()))
        .collect();
    regions.sort_by(|a, b| a.id.cmp(&b.id));
    let body: Vec<Value> = regions
        .into_iter()
        .map(|r| region_json(&identity, r))
        .collect();
    Ok(Json(
        json!({"regions": body, "links": collection_links(&identity, "regions")}),
    ))
}

async fn show_region(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_region", &json!({"region_id": id}))?;
    Ok(Json(
        json!({"region": region_json(&identity, &find_region(&identity, &id)?)}),
    ))
}

/// Creates a region from a validated body whose `id` is settled.
async fn store_new_region(
    identity: &Identity,
    b: &Value,
    id: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let region = Region {
        id,
        description: b
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        parent_region_id: b
            .get("parent_region_id")
            .and_then(Value::as_str)
            .map(String::from),
        extra: extra_from(b, REGION_CORE),
    };
    {
        let data = identity.read();
        if data.regions.contains_key(&region.id) {
            return Err(ApiError::conflict(format!(
                "Conflict occurred attempting to store region - Duplicate ID, {}.",
                region.id
            )));
        }
        if let Some(parent) = &region.parent_region_id
            && !data.regions.contains_key(parent)
        {
            return Err(not_found("region", parent));
        }
    }
    identity.write(vec![Change::put(&region)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"region": region_json(identity, &region)})),
    ))
}

/// `POST /v3/regions` (the id is generated unless given).
async fn create_region(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    REGION_CREATE.validate(&body)?;
    auth.enforce("identity:create_region", &json!({}))?;
    let b = member(&body, "region")?;
    let id = b
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(new_id);
    store_new_region(&identity, b, id).await
}

/// `PUT /v3/regions/{region_id}`: creates a region with the id of the path.
async fn put_region(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    REGION_CREATE.validate(&body)?;
    auth.enforce("identity:create_region", &json!({"region_id": id}))?;
    let b = member(&body, "region")?;
    if let Some(body_id) = b.get("id")
        && body_id.as_str() != Some(id.as_str())
    {
        let shown = body_id
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| "None".into());
        return Err(ApiError::bad_request(format!(
            "Conflicting region IDs specified: \"{id}\" != \"{shown}\""
        )));
    }
    store_new_region(&identity, b, id).await
}

/// `PATCH /v3/regions/{region_id}`
async fn update_region(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    REGION_UPDATE.validate(&body)?;
    auth.enforce("identity:update_region", &json!({"region_id": id}))?;
    let b = member(&body, "region")?;
    require_matching_id(b, &id)?;
    let parent = b
        .get("parent_region_id")
        .map(|v| v.as_str().map(String::from));
    let mut region = {
        let data = identity.read();
        // Keystone checks the new parent before the region itself.
        if let Some(Some(p)) = &parent
            && !data.regions.contains_key(p)
        {
            return Err(not_found("region", p));
        }
        let region = data
            .regions
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found("region", &id))?;
        if let Some(Some(p)) = &parent {
            // Walk up from the new parent: meeting this region would make a cycle.
            let mut current = Some(p.clone());
            let mut seen = Vec::new();
            while let Some(c) = current {
                if c == id {
                    return Err(ApiError::bad_request(format!(
                        "The specified parent region {c} would create a circular region hierarchy."
                    )));
                }
                if seen.contains(&c) {
                    break;
                }
                current = data
                    .regions
                    .get(&c)
                    .and_then(|r| r.parent_region_id.clone());
                seen.push(c);
            }
        }
        region
    };
    if let Some(p) = parent {
        region.parent_region_id = p;
    }
    if let Some(v) = b.get("description") {
        region.description = v.as_str().unwrap_or_default().to_string();
    }
    region.extra.extend(extra_from(b, REGION_CORE));
    identity.write(vec![Change::put(&region)]).await?;
    Ok(Json(json!({"region": region_json(&identity, &region)})))
}

/// `DELETE /v3/regions/{region_id}`: deletes the region and its sub-regions; refused (403) when
/// any of them has endpoints.
async fn remove_region(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce("identity:delete_region", &json!({"region_id": id}))?;
    let changes = {
        let data = identity.read();
        let region = data
            .regions
            .get(&id)
            .ok_or_else(|| not_found("region", &id))?;
        let mut subtree = vec![region.id.clone()];
        let mut i = 0;
        while i < subtree.len() {
            let parent = subtree[i].clone();
            for r in data.regions.values() {
                if r.parent_region_id.as_deref() == Some(parent.as_str())
                    && !subtree.contains(&r.id)
                {
                    subtree.push(r.id.clone());
                }
            }
            i += 1;
        }
        if data
            .endpoints
            .values()
            .any(|e| e.region_id.as_ref().is_some_and(|r| subtree.contains(r)))
        {
            return Err(ApiError::forbidden(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            )));
        }
        subtree
            .iter()
            .filter_map(|r| data.regions.get(r))
            .map(Change::delete)
            .collect::<Vec<_>>()
    };
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- services ----

fn service_schema(create: bool) -> Schema {
    let mut inner = json!({
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "type": {"type": "string", "minLength": 1, "maxLength": 255},
            "name": {"type": "string", "minLength": 1, "maxLength": 255}
        }
    });
    if create {
        inner["required"] = json!(["type"]);
    } else {
        inner["minProperties"] = json!(1);
    }
    Schema::new(
        json!({"type": "object", "required": ["service"], "properties": {"service": inner}}),
    )
}

static SERVICE_CREATE: LazyLock<Schema> = LazyLock::new(|| service_schema(true));
static SERVICE_UPDATE: LazyLock<Schema> = LazyLock::new(|| service_schema(false));

const SERVICE_CORE: &[&str] = &["id", "type", "name", "description", "enabled", "links"];

/// Keystone's JSON of a service.
pub fn service_json(identity: &Identity, s: &Service) -> Value {
    with_extra(
        json!({
            "id": s.id, "type": s.service_type, "name": s.name, "description": s.description,
            "enabled": s.enabled, "links": links(identity, &format!("services/{}", s.id)),
        }),
        &s.extra,
    )
}

fn find_service(identity: &Identity, id: &str) -> Result<Service, ApiError> {
    identity
        .read()
        .services
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("service", id))
}

/// `GET /v3/services` (filters `type`, `name`)
async fn list_services(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:list_services", &json!({}))?;
    let data = identity.read();
    let mut services: Vec<&Service> = data
        .services
        .values()
        .filter(|s| filter_matches(&query, "type", Some(&s.service_type)))
        .filter(|s| name_matches(&query, &s.name))
        .filter(|s| query_bool(&query, "enabled").is_none_or(|want| want == s.enabled))
        .collect();
    services.sort_by(|a, b| {
        a.service_type
            .cmp(&b.service_type)
            .then_with(|| a.id.cmp(&b.id))
    });
    let body: Vec<Value> = services
        .into_iter()
        .map(|s| service_json(&identity, s))
        .collect();
    Ok(Json(
        json!({"services": body, "links": collection_links(&identity, "services")}),
    ))
}

async fn show_service(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_service", &json!({"service_id": id}))?;
    Ok(Json(
        json!({"service": service_json(&identity, &find_service(&identity, &id)?)}),
    ))
}

/// `POST /v3/services`
async fn create_service(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    SERVICE_CREATE.validate(&body)?;
    auth.enforce("identity:create_service", &json!({}))?;
    let b = member(&body, "service")?;
    let service = Service {
        id: new_id(),
        service_type: b["type"].as_str().unwrap_or_default().to_string(),
        name: b
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        description: b
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        enabled: b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        extra: extra_from(b, SERVICE_CORE),
    };
    identity.write(vec![Change::put(&service)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"service": service_json(&identity, &service)})),
    ))
}

/// `PATCH /v3/services/{service_id}`
async fn update_service(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    SERVICE_UPDATE.validate(&body)?;
    auth.enforce("identity:update_service", &json!({"service_id": id}))?;
    let b = member(&body, "service")?;
    require_matching_id(b, &id)?;
    let mut service = find_service(&identity, &id)?;
    if let Some(v) = b.get("type").and_then(Value::as_str) {
        service.service_type = v.to_string();
    }
    if let Some(v) = b.get("name").and_then(Value::as_str) {
        service.name = v.to_string();
    }
    if let Some(v) = b.get("description") {
        service.description = v.as_str().unwrap_or_default().to_string();
    }
    if let Some(v) = b.get("enabled").and_then(Value::as_bool) {
        service.enabled = v;
    }
    service.extra.extend(extra_from(b, SERVICE_CORE));
    identity.write(vec![Change::put(&service)]).await?;
    Ok(Json(json!({"service": service_json(&identity, &service)})))
}

/// `DELETE /v3/services/{service_id}`: the service and its endpoints.
async fn remove_service(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce("identity:delete_service", &json!({"service_id": id}))?;
    let service = find_service(&identity, &id)?;
    let changes = {
        let data = identity.read();
        let mut changes = vec![Change::delete(&service)];
        changes.extend(crate::cascade::service(&data, &id));
        changes
    };
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- endpoints ----

fn endpoint_schema(create: bool) -> Schema {
    let mut inner = json!({
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "interface": {"type": "string", "enum": ["admin", "internal", "public"]},
            "region_id": {"type": ["string", "null"]},
            "region": {"type": ["string", "null"]},
            "service_id": {"type": "string"},
            "url": {"type": "string", "minLength": 0, "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+:.+"},
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]}
        }
    });
    if create {
        inner["required"] = json!(["interface", "service_id", "url"]);
    } else {
        inner["minProperties"] = json!(1);
    }
    Schema::new(
        json!({"type": "object", "required": ["endpoint"], "additionalProperties": false, "properties": {"endpoint": inner}}),
    )
}

static ENDPOINT_CREATE: LazyLock<Schema> = LazyLock::new(|| endpoint_schema(true));
static ENDPOINT_UPDATE: LazyLock<Schema> = LazyLock::new(|| endpoint_schema(false));

const ENDPOINT_CORE: &[&str] = &[
    "id",
    "interface",
    "region_id",
    "region",
    "service_id",
    "url",
    "enabled",
    "links",
    "legacy_endpoint_id",
];

/// Keystone's JSON of an endpoint (`region` repeats `region_id`, for v3.0 clients).
pub fn endpoint_json(identity: &Identity, e: &Endpoint) -> Value {
    with_extra(
        json!({
            "id": e.id, "interface": e.interface, "region_id": e.region_id, "region": e.region_id,
            "url": e.url, "service_id": e.service_id, "enabled": e.enabled,
            "links": links(identity, &format!("endpoints/{}", e.id)),
        }),
        &e.extra,
    )
}

fn find_endpoint(identity: &Identity, id: &str) -> Result<Endpoint, ApiError> {
    identity
        .read()
        .endpoints
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("endpoint", id))
}

/// Keystone's `check_endpoint_url`: the URL must survive Python `%`-formatting with the
/// whitelisted substitutions (`$(project_id)s` and friends) after `$(` becomes `%(`.
fn check_endpoint_url(url: &str) -> Result<(), ApiError> {
    const ALLOWED: &[&str] = &[
        "tenant_id",
        "project_id",
        "user_id",
        "compute_host",
        "public_endpoint",
    ];
    let invalid = || {
        ApiError::bad_request(format!(
            "Cannot create an endpoint with an invalid URL: {url}."
        ))
    };
    let text = url.replace("$(", "%(");
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            i += 1;
            continue;
        }
        i += 1;
        match chars.get(i) {
            Some('%') => {
                i += 1;
                continue;
            }
            Some('(') => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ')')
                    .ok_or_else(invalid)?;
                let key: String = chars[i + 1..i + close].iter().collect();
                if !ALLOWED.contains(&key.as_str()) {
                    return Err(invalid());
                }
                i += close + 1;
            }
            _ => return Err(invalid()),
        }
        // Conversion flags, width, precision, then a string conversion (the values are strings).
        while chars.get(i).is_some_and(|c| "#0- +".contains(*c)) {
            i += 1;
        }
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
        while chars.get(i).is_some_and(|c| "hlL".contains(*c)) {
            i += 1;
        }
        match chars.get(i) {
            Some('s' | 'r' | 'a') => i += 1,
            _ => return Err(invalid()),
        }
    }
    Ok(())
}

/// Keystone's `_validate_endpoint_region`: a legacy `region` (without `region_id`) becomes the
/// `region_id`, and that region is created when it does not exist. Returns the region to create.
fn legacy_region(identity: &Identity, b: &Value) -> Option<Region> {
    if b.get("region_id").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let region = b.get("region").and_then(Value::as_str)?;
    if identity.read().regions.contains_key(region) {
        return None;
    }
    Some(Region {
        id: region.to_string(),
        description: String::new(),
        parent_region_id: None,
        extra: Default::default(),
    })
}

/// The `region_id` a body asks for: `region_id`, else the legacy `region`. `None` when neither
/// is present; `Some(None)` when it is explicitly null.
fn requested_region(b: &Value) -> Option<Option<String>> {
    match b.get("region_id") {
        Some(v) if !v.is_null() => Some(v.as_str().map(String::from)),
        region_id => match b.get("region") {
            Some(v) if !v.is_null() => Some(v.as_str().map(String::from)),
            _ => region_id.map(|_| None),
        },
    }
}

/// Checks the referenced region (unless it is being created) and service.
fn check_references(
    identity: &Identity,
    region: Option<&str>,
    created: Option<&Region>,
    service: Option<&str>,
) -> Result<(), ApiError> {
    let data = identity.read();
    if let Some(r) = region
        && !data.regions.contains_key(r)
        && created.is_none_or(|c| c.id != r)
    {
        return Err(expecting("endpoint region_id", "region table"));
    }
    if let Some(s) = service
        && !data.services.contains_key(s)
    {
        return Err(expecting("endpoint service_id", "service table"));
    }
    Ok(())
}

/// `GET /v3/endpoints` (filters `interface`, `service_id`, `region_id`)
async fn list_endpoints(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    if let Some(interface) = query_value(&query, "interface")
        && !["admin", "internal", "public"].contains(&interface)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid input for query parameters interface. Value: {interface}. '{interface}' is not one of ['admin', 'internal', 'public']"
        )));
    }
    auth.enforce("identity:list_endpoints", &json!({}))?;
    let data = identity.read();
    let mut endpoints: Vec<&Endpoint> = data
        .endpoints
        .values()
        .filter(|e| filter_matches(&query, "interface", Some(&e.interface)))
        .filter(|e| filter_matches(&query, "service_id", Some(&e.service_id)))
        .filter(|e| filter_matches(&query, "region_id", e.region_id.as_deref()))
        .filter(|e| query_bool(&query, "enabled").is_none_or(|want| want == e.enabled))
        .collect();
    endpoints.sort_by(|a, b| {
        (&a.service_id, &a.interface, &a.id).cmp(&(&b.service_id, &b.interface, &b.id))
    });
    let body: Vec<Value> = endpoints
        .into_iter()
        .map(|e| endpoint_json(&identity, e))
        .collect();
    Ok(Json(
        json!({"endpoints": body, "links": collection_links(&identity, "endpoints")}),
    ))
}

async fn show_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = find_endpoint(&identity, &id);
    let t = found
        .as_ref()
        .map(|e| json!({"target": {"endpoint": {"id": e.id, "service_id": e.service_id}}}))
        .unwrap_or_else(|_| json!({}));
    auth.enforce("identity:get_endpoint", &t)?;
    Ok(Json(json!({"endpoint": endpoint_json(&identity, &found?)})))
}

/// `POST /v3/endpoints`
async fn create_endpoint(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    ENDPOINT_CREATE.validate(&body)?;
    auth.enforce("identity:create_endpoint", &json!({}))?;
    let b = member(&body, "endpoint")?;
    let url = b["url"].as_str().unwrap_or_default().to_string();
    check_endpoint_url(&url)?;
    let new_region = legacy_region(&identity, b);
    let region_id = requested_region(b).flatten();
    let service_id = b["service_id"].as_str().unwrap_or_default().to_string();
    check_references(
        &identity,
        region_id.as_deref(),
        new_region.as_ref(),
        Some(&service_id),
    )?;
    let endpoint = Endpoint {
        id: new_id(),
        service_id,
        interface: b["interface"].as_str().unwrap_or_default().to_string(),
        url,
        region_id,
        enabled: b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        extra: extra_from(b, ENDPOINT_CORE),
    };
    let mut changes = Vec::new();
    if let Some(r) = &new_region {
        changes.push(Change::put(r));
    }
    changes.push(Change::put(&endpoint));
    identity.write(changes).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"endpoint": endpoint_json(&identity, &endpoint)})),
    ))
}

/// `PATCH /v3/endpoints/{endpoint_id}`
async fn update_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    ENDPOINT_UPDATE.validate(&body)?;
    let found = find_endpoint(&identity, &id);
    let t = found
        .as_ref()
        .map(|e| json!({"target": {"endpoint": {"id": e.id, "service_id": e.service_id}}}))
        .unwrap_or_else(|_| json!({}));
    auth.enforce("identity:update_endpoint", &t)?;
    let b = member(&body, "endpoint")?;
    require_matching_id(b, &id)?;
    let new_region = legacy_region(&identity, b);
    let region = requested_region(b);
    let service_id = b.get("service_id").and_then(Value::as_str);
    check_references(
        &identity,
        region.clone().flatten().as_deref(),
        new_region.as_ref(),
        service_id,
    )?;
    let mut endpoint = found?;
    if let Some(r) = region {
        endpoint.region_id = r;
    }
    if let Some(s) = service_id {
        endpoint.service_id = s.to_string();
    }
    if let Some(v) = b.get("interface").and_then(Value::as_str) {
        endpoint.interface = v.to_string();
    }
    if let Some(v) = b.get("url").and_then(Value::as_str) {
        endpoint.url = v.to_string();
    }
    if let Some(v) = b.get("enabled").and_then(Value::as_bool) {
        endpoint.enabled = v;
    }
    endpoint.extra.extend(extra_from(b, ENDPOINT_CORE));
    let mut changes = Vec::new();
    if let Some(r) = &new_region {
        changes.push(Change::put(r));
    }
    changes.push(Change::put(&endpoint));
    identity.write(changes).await?;
    Ok(Json(
        json!({"endpoint": endpoint_json(&identity, &endpoint)}),
    ))
}

async fn remove_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let endpoint = find_endpoint(&identity, &id);
    let t = endpoint
        .as_ref()
        .map(|e| json!({"target": {"endpoint": {"id": e.id, "service_id": e.service_id}}}))
        .unwrap_or_else(|_| json!({}));
    auth.enforce("identity:delete_endpoint", &t)?;
    let endpoint = endpoint?;
    let mut changes = vec![Change::delete(&endpoint)];
    changes.extend(crate::cascade::endpoint(&identity.read(), &endpoint.id));
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::check_endpoint_url;
    use crate::api::harness::Harness;
    use serde_json::json;

    #[test]
    fn endpoint_urls_are_checked_like_keystone() {
        assert!(check_endpoint_url("http://h:8774/v2.1/$(project_id)s").is_ok());
        assert!(check_endpoint_url("http://h/v1/AUTH_$(tenant_id)s/x").is_ok());
        assert!(check_endpoint_url("http://h/100%%").is_ok());
        assert!(check_endpoint_url("http://h/$(admin_token)s").is_err());
        assert!(check_endpoint_url("http://h/$(project_id)d").is_err());
        assert!(check_endpoint_url("http://h/$(project_id").is_err());
        assert!(check_endpoint_url("http://h/a%20b").is_err());
    }

    #[tokio::test]
    async fn regions_follow_keystone() {
        let h = Harness::open("catalog-regions").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        // Anyone authenticated may read regions; only admins write them.
        let r = h.call("GET", "/regions", Some(&demo), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["regions"][0]["id"], "RegionOne");
        assert_eq!(
            h.call("POST", "/regions", Some(&demo), Some(json!({"region": {}})))
                .await
                .status,
            403
        );

        let r = h
            .call(
                "POST",
                "/regions",
                Some(&admin),
                Some(json!({"region": {"id": "East", "description": "east coast"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            r.body["region"],
            json!({
                "id": "East", "description": "east coast", "parent_region_id": null,
                "links": {"self": "http://127.0.0.1:8080/identity/v3/regions/East"}
            })
        );
        let r = h
            .call(
                "POST",
                "/regions",
                Some(&admin),
                Some(json!({"region": {"id": "East"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                409,
                Some("Conflict occurred attempting to store region - Duplicate ID, East.")
            )
        );
        let r = h
            .call(
                "POST",
                "/regions",
                Some(&admin),
                Some(json!({"region": {"id": ""}})),
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["region"]["id"].as_str().unwrap().len(), 32);
        assert_eq!(r.body["region"]["description"], "");
        let r = h
            .call(
                "POST",
                "/regions",
                Some(&admin),
                Some(json!({"region": {"parent_region_id": "nowhere"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find region: nowhere."))
        );

        let r = h
            .call(
                "PUT",
                "/regions/East-1",
                Some(&admin),
                Some(json!({"region": {"parent_region_id": "East"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["region"]["parent_region_id"].as_str()),
            (201, Some("East"))
        );
        let r = h
            .call(
                "PUT",
                "/regions/East-2",
                Some(&admin),
                Some(json!({"region": {"id": "other"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                400,
                Some("Conflicting region IDs specified: \"East-2\" != \"other\"")
            )
        );

        let r = h
            .call("GET", "/regions?parent_region_id=East", Some(&admin), None)
            .await;
        assert_eq!(r.body["regions"].as_array().unwrap().len(), 1);
        assert_eq!(
            h.call("GET", "/regions?foo=bar", Some(&admin), None)
                .await
                .status,
            400
        );
        let r = h.call("GET", "/regions/East-1", Some(&demo), None).await;
        assert_eq!(
            (r.status, r.body["region"]["id"].as_str()),
            (200, Some("East-1"))
        );
        assert_eq!(
            h.call("GET", "/regions/nope", Some(&demo), None)
                .await
                .status,
            404
        );

        let r = h
            .call(
                "PATCH",
                "/regions/East",
                Some(&admin),
                Some(json!({"region": {"parent_region_id": "East-1"}})),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["error"]["message"],
            "The specified parent region East would create a circular region hierarchy."
        );
        let r = h
            .call(
                "PATCH",
                "/regions/East",
                Some(&admin),
                Some(json!({"region": {"id": "West"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change ID"))
        );
        let r = h
            .call(
                "PATCH",
                "/regions/East",
                Some(&admin),
                Some(json!({"region": {"description": null, "x": 1}})),
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.body["region"]["description"].as_str(),
                &r.body["region"]["x"]
            ),
            (200, Some(""), &json!(1))
        );

        // A region whose subtree holds an endpoint cannot be deleted; without, the subtree goes.
        let service_id = h
            .identity
            .read()
            .services
            .values()
            .next()
            .unwrap()
            .id
            .clone();
        let r = h.call("POST", "/endpoints", Some(&admin), Some(json!({"endpoint": {
            "interface": "public", "service_id": service_id, "url": "http://e1", "region_id": "East-1"}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let endpoint_id = r.body["endpoint"]["id"].as_str().unwrap().to_string();
        let r = h.call("DELETE", "/regions/East", Some(&admin), None).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body["error"]["message"],
            "Unable to delete region East because it or its child regions have associated endpoints."
        );
        assert_eq!(
            h.call(
                "DELETE",
                &format!("/endpoints/{endpoint_id}"),
                Some(&admin),
                None
            )
            .await
            .status,
            204
        );
        assert_eq!(
            h.call("DELETE", "/regions/East", Some(&demo), None)
                .await
                .status,
            403
        );
        assert_eq!(
            h.call("DELETE", "/regions/East", Some(&admin), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("GET", "/regions/East-1", Some(&admin), None)
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn services_and_endpoints_follow_keystone() {
        let h = Harness::open("catalog-services").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        assert_eq!(
            h.call("GET", "/services", Some(&demo), None).await.status,
            403
        );
        assert_eq!(
            h.call(
                "POST",
                "/services",
                Some(&admin),
                Some(json!({"service": {"name": "x"}}))
            )
            .await
            .status,
            400
        );
        let r = h.call("POST", "/services", Some(&admin), Some(json!({"service": {"type": "object-store", "name": "swift", "description": "objects"}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let s = r.body["service"].clone();
        assert_eq!(
            (
                s["type"].as_str(),
                s["name"].as_str(),
                s["enabled"].as_bool(),
                s["description"].as_str()
            ),
            (
                Some("object-store"),
                Some("swift"),
                Some(true),
                Some("objects")
            )
        );
        let sid = s["id"].as_str().unwrap().to_string();
        let r = h
            .call("GET", "/services?type=object-store", Some(&admin), None)
            .await;
        assert_eq!(r.body["services"].as_array().unwrap().len(), 1);
        let r = h
            .call(
                "PATCH",
                &format!("/services/{sid}"),
                Some(&admin),
                Some(json!({"service": {"enabled": false}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["service"]["enabled"].as_bool()),
            (200, Some(false))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/services/{sid}"),
                Some(&admin),
                Some(json!({"service": {"enabled": true}})),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            h.call("GET", "/services/nope", Some(&admin), None)
                .await
                .body["error"]["message"],
            "Could not find service: nope."
        );

        // Endpoints.
        let ep = |body: serde_json::Value| json!({"endpoint": body});
        let r = h
            .call(
                "POST",
                "/endpoints",
                Some(&admin),
                Some(ep(
                    json!({"interface": "public", "service_id": "nope", "url": "http://x"}),
                )),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Expecting to find endpoint service_id in service table.")
        );
        let r = h
            .call(
                "POST",
                "/endpoints",
                Some(&admin),
                Some(ep(
                    json!({"interface": "private", "service_id": sid, "url": "http://x"}),
                )),
            )
            .await;
        assert_eq!(r.status, 400);
        let r = h
            .call(
                "POST",
                "/endpoints",
                Some(&admin),
                Some(ep(json!({"interface": "public", "service_id": sid}))),
            )
            .await;
        assert_eq!(r.status, 400);
        let r = h.call("POST", "/endpoints", Some(&admin), Some(ep(json!({"interface": "public", "service_id": sid, "url": "http://x", "region_id": "nope"})))).await;
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Expecting to find endpoint region_id in region table.")
        );
        let r = h
            .call(
                "POST",
                "/endpoints",
                Some(&admin),
                Some(ep(
                    json!({"interface": "public", "service_id": sid, "url": "http://x/$(secret)s"}),
                )),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                400,
                Some("Cannot create an endpoint with an invalid URL: http://x/$(secret)s.")
            )
        );
        assert_eq!(
            h.call(
                "POST",
                "/endpoints",
                Some(&demo),
                Some(ep(
                    json!({"interface": "public", "service_id": sid, "url": "http://x"})
                ))
            )
            .await
            .status,
            403
        );

        // A legacy `region` is created on the fly.
        let url = "http://swift:8080/v1/AUTH_$(project_id)s";
        let r = h.call("POST", "/endpoints", Some(&admin), Some(ep(json!({"interface": "public", "service_id": sid, "url": url, "region": "Legacy"})))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let e = r.body["endpoint"].clone();
        assert_eq!(
            (
                e["region_id"].as_str(),
                e["region"].as_str(),
                e["url"].as_str(),
                e["enabled"].as_bool()
            ),
            (Some("Legacy"), Some("Legacy"), Some(url), Some(true))
        );
        let eid = e["id"].as_str().unwrap().to_string();
        assert!(h.identity.read().regions.contains_key("Legacy"));
        let r = h.call("POST", "/endpoints", Some(&admin), Some(ep(json!({"interface": "internal", "service_id": sid, "url": "http://swift-int:8080", "region_id": "RegionOne"})))).await;
        assert_eq!(r.status, 201);

        let r = h
            .call(
                "GET",
                &format!("/endpoints?service_id={sid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["endpoints"].as_array().unwrap().len(), 2);
        let r = h
            .call(
                "GET",
                &format!("/endpoints?service_id={sid}&interface=internal"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["endpoints"].as_array().unwrap().len(), 1);
        let r = h
            .call("GET", "/endpoints?region_id=Legacy", Some(&admin), None)
            .await;
        assert_eq!(r.body["endpoints"].as_array().unwrap().len(), 1);
        assert_eq!(
            h.call("GET", "/endpoints?interface=bogus", Some(&admin), None)
                .await
                .status,
            400
        );
        assert_eq!(
            h.call("GET", "/endpoints", Some(&demo), None).await.status,
            403
        );
        let r = h
            .call("GET", &format!("/endpoints/{eid}"), Some(&admin), None)
            .await;
        assert_eq!(r.body["endpoint"]["service_id"], json!(sid));

        // The catalog in tokens follows.
        let catalog = crate::api::auth::catalog_body(&h.identity);
        let swift = catalog
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == "object-store")
            .unwrap()
            .clone();
        assert_eq!(swift["endpoints"].as_array().unwrap().len(), 2);

        let r = h
            .call(
                "PATCH",
                &format!("/endpoints/{eid}"),
                Some(&admin),
                Some(ep(json!({"region_id": null, "enabled": false}))),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body["endpoint"]["region_id"].is_null() && r.body["endpoint"]["region"].is_null()
        );
        let r = h
            .call(
                "PATCH",
                &format!("/endpoints/{eid}"),
                Some(&admin),
                Some(ep(json!({"service_id": "nope"}))),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            h.call(
                "PATCH",
                "/endpoints/nope",
                Some(&admin),
                Some(ep(json!({"enabled": true})))
            )
            .await
            .status,
            404
        );

        // Deleting the service deletes its endpoints.
        assert_eq!(
            h.call("DELETE", &format!("/services/{sid}"), Some(&admin), None)
                .await
                .status,
            204
        );
        assert!(
            h.identity
                .read()
                .endpoints
                .values()
                .all(|e| e.service_id != sid)
        );
        assert_eq!(
            h.call("GET", &format!("/endpoints/{eid}"), Some(&admin), None)
                .await
                .status,
            404
        );
        assert_eq!(
            h.call("DELETE", &format!("/services/{sid}"), Some(&admin), None)
                .await
                .status,
            404
        );
    }
}
