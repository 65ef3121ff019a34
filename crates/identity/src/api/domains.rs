//! `/v3/domains`

use super::{
    AppState, Pairs, collection_links, enabled_matches, extra_from, links, member, name_matches,
    new_id, not_found, with_extra,
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
        .route("/domains", get(list).post(create))
        .route(
            "/domains/{domain_id}",
            get(show).patch(update).delete(remove),
        )
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "required": ["domain"], "properties": {"domain": {
        "type": "object", "required": ["name"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"},
            "description": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
            "options": {"type": "object"}
        }}}}),
    )
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "required": ["domain"], "properties": {"domain": {
        "type": "object", "minProperties": 1,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"},
            "description": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
            "options": {"type": "object"}
        }}}}),
    )
});

const CORE: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "tags",
    "options",
    "links",
];

/// Keystone's JSON of a domain.
pub fn domain_json(identity: &Identity, d: &Domain) -> Value {
    with_extra(
        json!({
            "id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": d.tags, "options": d.options, "links": links(identity, &format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

fn target(d: &Domain) -> Value {
    json!({"target": {"domain": {"id": d.id, "name": d.name}}})
}

fn find(identity: &Identity, id: &str) -> Result<Domain, ApiError> {
    identity
        .read()
        .domains
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("domain", id))
}

async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_domains",
        &match &auth.domain {
            Some(d) => json!({"target": {"domain": {"id": d.id}}}),
            None => json!({"target": {}}),
        },
    )?;
    let data = identity.read();
    let mut domains: Vec<&Domain> = data
        .domains
        .values()
        .filter(|d| name_matches(&query, &d.name) && enabled_matches(&query, d.enabled))
        .collect();
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    let body: Vec<Value> = domains
        .into_iter()
        .map(|d| domain_json(&identity, d))
        .collect();
    Ok(Json(
        json!({"domains": body, "links": collection_links(&identity, "domains")}),
    ))
}

async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id);
    let t = found
        .as_ref()
        .map(target)
        .unwrap_or_else(|_| json!({"target": {"domain": {"id": id}}}));
    auth.enforce("identity:get_domain", &t)?;
    Ok(Json(json!({"domain": domain_json(&identity, &found?)})))
}

async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "domain")?;
    let domain = Domain {
        id: b
            .get("id")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(new_id),
        name: b["name"].as_str().unwrap_or_default().to_string(),
        description: b
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        enabled: b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        tags: serde_json::from_value(b.get("tags").cloned().unwrap_or(json!([])))
            .unwrap_or_default(),
        options: b
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        extra: extra_from(b, CORE),
    };
    auth.enforce("identity:create_domain", &target(&domain))?;
    if identity.read().domain_by_name(&domain.name).is_some() {
        return Err(ApiError::conflict(format!(
            "Conflict occurred attempting to store domain - Duplicate entry found with name {}.",
            domain.name
        )));
    }
    identity.write(vec![Change::put(&domain)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"domain": domain_json(&identity, &domain)})),
    ))
}

async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut domain = find(&identity, &id)?;
    let was_enabled = domain.enabled;
    auth.enforce("identity:update_domain", &target(&domain))?;
    UPDATE.validate(&body)?;
    apply_update(&mut domain, member(&body, "domain")?);
    let mut changes = vec![Change::put(&domain)];
    if was_enabled && !domain.enabled {
        // Disabling revokes the tokens scoped to the domain and its projects, as Keystone.
        changes.push(Change::put(&Revocation::now(Revoke::Domain(&domain.id))));
    }
    identity.write(changes).await?;
    Ok(Json(json!({"domain": domain_json(&identity, &domain)})))
}

/// Applies the attributes of an update body (already validated) to a domain.
pub(super) fn apply_update(domain: &mut Domain, b: &Value) {
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        domain.name = name.to_string();
    }
    if let Some(v) = b.get("description") {
        domain.description = v.as_str().unwrap_or_default().to_string();
    }
    if let Some(v) = b.get("enabled").and_then(Value::as_bool) {
        domain.enabled = v;
    }
    if let Some(v) = b.get("tags") {
        domain.tags = serde_json::from_value(v.clone()).unwrap_or_default();
    }
    if let Some(v) = b.get("options").and_then(Value::as_object) {
        domain.options.extend(v.clone());
    }
    domain.extra.extend(extra_from(b, CORE));
}

/// Deletes a disabled domain with everything in it (projects, users, groups, their assignments).
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let domain = find(&identity, &id)?;
    auth.enforce("identity:delete_domain", &target(&domain))?;
    let changes = delete_changes(&identity, &domain)?;
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The changes that delete a disabled domain and everything in it (403 while it is enabled).
pub(super) fn delete_changes(
    identity: &Identity,
    domain: &Domain,
) -> Result<Vec<Change>, ApiError> {
    if domain.enabled {
        return Err(ApiError::forbidden(
            "Cannot delete a domain that is enabled, please disable it first.",
        ));
    }
    let mut changes = vec![Change::delete(domain)];
    changes.extend(crate::cascade::domain(&identity.read(), &domain.id));
    Ok(changes)
}
