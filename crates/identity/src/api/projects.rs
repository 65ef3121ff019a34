//! `/v3/projects` (with hierarchy and tags)

use super::{
    AppState, Pairs, collection_links, enabled_matches, extra_from, links, member, name_matches,
    new_id, not_found, query_value, with_extra,
};
use crate::data::Change;
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::Query,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, put},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route(
            "/projects/{project_id}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/projects/{project_id}/tags",
            get(list_tags).put(replace_tags).delete(delete_tags),
        )
        .route(
            "/projects/{project_id}/tags/{tag}",
            put(add_tag).get(check_tag).delete(delete_tag),
        )
}

const TAGS: &str = r#"{"type": "array", "maxItems": 80, "items": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,/]*$"}}"#;

fn project_schema(create: bool) -> Schema {
    let tags: Value = serde_json::from_str(TAGS).expect("static schema");
    let mut inner = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"},
            "description": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "domain_id": {"type": ["string", "null"]},
            "parent_id": {"type": ["string", "null"]},
            "is_domain": {"type": "boolean"},
            "tags": tags,
            "options": {"type": "object"}
        }
    });
    if create {
        inner["required"] = json!(["name"]);
    } else {
        inner["minProperties"] = json!(1);
    }
    Schema::new(
        json!({"type": "object", "required": ["project"], "properties": {"project": inner}}),
    )
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| project_schema(true));
static UPDATE: LazyLock<Schema> = LazyLock::new(|| project_schema(false));

const CORE: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "domain_id",
    "parent_id",
    "is_domain",
    "tags",
    "options",
    "links",
];

/// Keystone's JSON of a project (`parent_id` is the domain for top-level projects).
pub fn project_json(identity: &Identity, p: &Project) -> Value {
    with_extra(
        json!({
            "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone()),
            "is_domain": false, "tags": p.tags, "options": p.options,
            "links": links(identity, &format!("projects/{}", p.id)),
        }),
        &p.extra,
    )
}

/// Keystone's project-form JSON of a domain (a project acting as a domain).
fn domain_project_json(identity: &Identity, d: &Domain) -> Value {
    json!({
        "id": d.id, "name": d.name, "domain_id": null, "description": d.description,
        "enabled": d.enabled, "parent_id": null, "is_domain": true, "tags": d.tags,
        "options": d.options, "links": links(identity, &format!("projects/{}", d.id)),
    })
}

fn domain_target(d: &Domain) -> Value {
    json!({"target": {"project": {"id": d.id, "name": d.name, "domain_id": null}}})
}

/// The domain `id` when it is addressed through the projects API.
fn domain_as_project(identity: &Identity, id: &str) -> Option<Domain> {
    identity.read().domains.get(id).cloned()
}

/// The policy target of a project.
pub fn target(p: &Project) -> Value {
    json!({"target": {"project": {"id": p.id, "domain_id": p.domain_id, "name": p.name}}})
}

fn find(identity: &Identity, id: &str) -> Result<Project, ApiError> {
    identity
        .read()
        .projects
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("project", id))
}

fn tag_filter(query: &[(String, String)], tags: &[String]) -> bool {
    let split = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
    for (key, value) in query {
        let wanted = split(value);
        let ok = match key.as_str() {
            "tags" => wanted.iter().all(|t| tags.contains(t)),
            "tags-any" => wanted.iter().any(|t| tags.contains(t)),
            "not-tags" => !wanted.iter().all(|t| tags.contains(t)),
            "not-tags-any" => !wanted.iter().any(|t| tags.contains(t)),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let domain_filter = query_value(&query, "domain_id");
    auth.enforce(
        "identity:list_projects",
        &super::filter_target(&[("domain_id", domain_filter)]),
    )?;
    let parent = query_value(&query, "parent_id");
    if query_value(&query, "is_domain").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let data = identity.read();
        let mut domains: Vec<&Domain> = data
            .domains
            .values()
            .filter(|d| name_matches(&query, &d.name) && enabled_matches(&query, d.enabled))
            .collect();
        domains.sort_by(|a, b| a.name.cmp(&b.name));
        let body: Vec<Value> = domains
            .into_iter()
            .map(|d| domain_project_json(&identity, d))
            .collect();
        return Ok(Json(
            json!({"projects": body, "links": collection_links(&identity, "projects")}),
        ));
    }
    let data = identity.read();
    let mut projects: Vec<&Project> = data
        .projects
        .values()
        .filter(|p| domain_filter.is_none_or(|d| p.domain_id == d))
        .filter(|p| parent.is_none_or(|x| p.parent_id.as_deref().unwrap_or(&p.domain_id) == x))
        .filter(|p| {
            name_matches(&query, &p.name)
                && enabled_matches(&query, p.enabled)
                && tag_filter(&query, &p.tags)
        })
        // A domain-scoped reader sees only its domain's projects.
        .filter(|p| {
            auth.has_role("admin")
                || auth.system_scope.is_some()
                || auth.domain.as_ref().is_none_or(|d| d.id == p.domain_id)
        })
        .collect();
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let body: Vec<Value> = projects
        .into_iter()
        .map(|p| project_json(&identity, p))
        .collect();
    Ok(Json(
        json!({"projects": body, "links": collection_links(&identity, "projects")}),
    ))
}

async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    if let Some(domain) = domain_as_project(&identity, &id) {
        auth.enforce("identity:get_project", &domain_target(&domain))?;
        return Ok(Json(
            json!({"project": domain_project_json(&identity, &domain)}),
        ));
    }
    let found = find(&identity, &id);
    let t = found
        .as_ref()
        .map(target)
        .unwrap_or_else(|_| json!({"target": {"project": {"id": id}}}));
    auth.enforce("identity:get_project", &t)?;
    let project = found?;
    let mut body = project_json(&identity, &project);
    let data = identity.read();
    if super::query_bool(&query, "parents_as_ids").unwrap_or(false) {
        body["parents"] = nested_ids(&data.ancestors(&project.id));
    }
    if super::query_bool(&query, "subtree_as_ids").unwrap_or(false) {
        body["subtree"] = subtree_ids(&data, &project.id);
    }
    if super::query_bool(&query, "parents_as_list").unwrap_or(false) {
        let parents: Vec<Value> = data
            .ancestors(&project.id)
            .iter()
            .filter_map(|a| data.projects.get(a))
            .map(|p| json!({"project": project_json(&identity, p)}))
            .collect();
        body["parents"] = json!(parents);
    }
    if super::query_bool(&query, "subtree_as_list").unwrap_or(false) {
        let subtree: Vec<Value> = data
            .descendants(&project.id)
            .iter()
            .filter_map(|a| data.projects.get(a))
            .map(|p| json!({"project": project_json(&identity, p)}))
            .collect();
        body["subtree"] = json!(subtree);
    }
    Ok(Json(json!({"project": body})))
}

/// `{"grandparent": {"parent": null}}`-style nesting of ancestor ids (nearest first in `ids`).
fn nested_ids(ids: &[String]) -> Value {
    let mut value = Value::Null;
    for id in ids.iter().rev() {
        value = json!({ id.clone(): value });
    }
    value
}

fn subtree_ids(data: &crate::data::IdentityData, id: &str) -> Value {
    let children: Vec<&Project> = data
        .projects
        .values()
        .filter(|p| p.parent_id.as_deref() == Some(id))
        .collect();
    if children.is_empty() {
        return Value::Null;
    }
    let mut map = serde_json::Map::new();
    for c in children {
        map.insert(c.id.clone(), subtree_ids(data, &c.id));
    }
    Value::Object(map)
}

async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "project")?;
    if b.get("is_domain").and_then(Value::as_bool) == Some(true) {
        return create_domain_project(&identity, &auth, b).await;
    }
    let parent_id = b.get("parent_id").and_then(Value::as_str).map(String::from);
    let (domain_id, parent_id) = {
        let data = identity.read();
        let default_domain = auth
            .project_domain
            .as_ref()
            .or(auth.domain.as_ref())
            .map(|d| d.id.clone())
            .unwrap_or_else(|| "default".into());
        let mut domain_id = b.get("domain_id").and_then(Value::as_str).map(String::from);
        let mut parent = parent_id;
        match &parent {
            // A parent that is a domain means "top level in that domain".
            Some(pid) if data.domains.contains_key(pid) => {
                domain_id.get_or_insert(pid.clone());
                parent = None;
            }
            Some(pid) => {
                let p = data
                    .projects
                    .get(pid)
                    .ok_or_else(|| not_found("project", pid))?;
                if domain_id.as_ref().is_some_and(|d| *d != p.domain_id) {
                    return Err(ApiError::bad_request(
                        "Cannot create project, the parent is in a different domain.",
                    ));
                }
                domain_id = Some(p.domain_id.clone());
            }
            None => {}
        }
        let domain_id = domain_id.unwrap_or(default_domain);
        if !data.domains.contains_key(&domain_id) {
            return Err(not_found("domain", &domain_id));
        }
        (domain_id, parent)
    };
    let project = Project {
        id: new_id(),
        name: b["name"].as_str().unwrap_or_default().to_string(),
        domain_id,
        parent_id,
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
    auth.enforce("identity:create_project", &target(&project))?;
    if identity
        .read()
        .project_by_name(&project.domain_id, &project.name)
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {}.",
            project.name
        )));
    }
    identity.write(vec![Change::put(&project)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"project": project_json(&identity, &project)})),
    ))
}

async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if let Some(mut domain) = domain_as_project(&identity, &id) {
        let was_enabled = domain.enabled;
        auth.enforce("identity:update_project", &domain_target(&domain))?;
        UPDATE.validate(&body)?;
        let b = member(&body, "project")?;
        if b.get("is_domain").and_then(Value::as_bool) == Some(false) {
            return Err(ApiError::bad_request(
                "Update of `is_domain` is not allowed.",
            ));
        }
        if let Some(name) = b.get("name").and_then(Value::as_str)
            && name != domain.name
            && identity.read().domain_by_name(name).is_some()
        {
            return Err(ApiError::conflict(format!(
                "Conflict occurred attempting to store project - Duplicate entry found with name {name}."
            )));
        }
        let mut fields = b.clone();
        if let Some(map) = fields.as_object_mut() {
            map.retain(|k, _| {
                ["name", "description", "enabled", "tags", "options"].contains(&k.as_str())
            });
        }
        super::domains::apply_update(&mut domain, &fields);
        let mut changes = vec![Change::put(&domain)];
        if was_enabled && !domain.enabled {
            changes.push(Change::put(&Revocation::now(Revoke::Domain(&domain.id))));
        }
        identity.write(changes).await?;
        return Ok(Json(
            json!({"project": domain_project_json(&identity, &domain)}),
        ));
    }
    let mut project = find(&identity, &id)?;
    let was_enabled = project.enabled;
    auth.enforce("identity:update_project", &target(&project))?;
    UPDATE.validate(&body)?;
    let b = member(&body, "project")?;
    if b.get("domain_id")
        .and_then(Value::as_str)
        .is_some_and(|d| d != project.domain_id)
    {
        return Err(ApiError::bad_request(
            "Update of `domain_id` is not allowed.",
        ));
    }
    if b.get("parent_id")
        .and_then(Value::as_str)
        .is_some_and(|p| Some(p) != project.parent_id.as_deref() && p != project.domain_id)
    {
        return Err(ApiError::bad_request(
            "Update of `parent_id` is not allowed.",
        ));
    }
    if b.get("is_domain").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad_request(
            "Update of `is_domain` is not allowed.",
        ));
    }
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        if name != project.name
            && identity
                .read()
                .project_by_name(&project.domain_id, name)
                .is_some()
        {
            return Err(ApiError::conflict(format!(
                "Conflict occurred attempting to store project - Duplicate entry found with name {name}."
            )));
        }
        project.name = name.to_string();
    }
    if let Some(v) = b.get("description") {
        project.description = v.as_str().unwrap_or_default().to_string();
    }
    if let Some(v) = b.get("enabled").and_then(Value::as_bool) {
        project.enabled = v;
    }
    if let Some(v) = b.get("tags") {
        project.tags = serde_json::from_value(v.clone()).unwrap_or_default();
    }
    if let Some(v) = b.get("options").and_then(Value::as_object) {
        project.options.extend(v.clone());
    }
    project.extra.extend(extra_from(b, CORE));
    let mut changes = vec![Change::put(&project)];
    if was_enabled && !project.enabled {
        // Disabling revokes the project's tokens for good, as Keystone.
        changes.push(Change::put(&Revocation::now(Revoke::Project(&project.id))));
    }
    identity.write(changes).await?;
    Ok(Json(json!({"project": project_json(&identity, &project)})))
}

/// Deletes a leaf project and the assignments and application credentials bound to it.
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if let Some(domain) = domain_as_project(&identity, &id) {
        auth.enforce("identity:delete_project", &domain_target(&domain))?;
        let changes = super::domains::delete_changes(&identity, &domain)?;
        identity.write(changes).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let project = find(&identity, &id)?;
    auth.enforce("identity:delete_project", &target(&project))?;
    let changes = {
        let data = identity.read();
        if data
            .projects
            .values()
            .any(|p| p.parent_id.as_deref() == Some(&id))
        {
            return Err(ApiError::forbidden(format!(
                "Cannot delete the project {id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree."
            )));
        }
        let mut changes = vec![Change::delete(&project)];
        changes.extend(crate::cascade::project(&data, &id));
        changes
    };
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tags(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let project = find(&identity, &id)?;
    auth.enforce("identity:list_project_tags", &target(&project))?;
    Ok(Json(json!({"tags": project.tags})))
}

async fn replace_tags(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut project = find(&identity, &id)?;
    auth.enforce("identity:update_project_tags", &target(&project))?;
    let schema: Value = serde_json::from_str(TAGS).expect("static schema");
    Schema::new(json!({"type": "object", "required": ["tags"], "properties": {"tags": schema}}))
        .validate(&body)?;
    project.tags = serde_json::from_value(body["tags"].clone()).unwrap_or_default();
    identity.write(vec![Change::put(&project)]).await?;
    Ok(Json(json!({"tags": project.tags})))
}

async fn delete_tags(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut project = find(&identity, &id)?;
    auth.enforce("identity:delete_project_tags", &target(&project))?;
    project.tags.clear();
    identity.write(vec![Change::put(&project)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_tag(
    State(identity): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let mut project = find(&identity, &id)?;
    auth.enforce("identity:create_project_tag", &target(&project))?;
    if tag.is_empty() || tag.len() > 255 || tag.contains(',') || tag.contains('/') {
        return Err(ApiError::bad_request(format!(
            "Invalid tag {tag:?}: 1-255 characters without ',' or '/'."
        )));
    }
    if !project.tags.contains(&tag) {
        if project.tags.len() >= 80 {
            return Err(ApiError::bad_request("A project may have at most 80 tags."));
        }
        project.tags.push(tag.clone());
        identity.write(vec![Change::put(&project)]).await?;
    }
    // Keystone answers 201 with an empty body and the tag's URL.
    let location = format!("{}/v3/projects/{id}/tags/{tag}", identity.base_url());
    Ok(axum::response::IntoResponse::into_response((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
    )))
}

async fn check_tag(
    State(identity): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = find(&identity, &id)?;
    auth.enforce("identity:get_project_tag", &target(&project))?;
    match project.tags.contains(&tag) {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(not_found("project tag", &tag)),
    }
}

async fn delete_tag(
    State(identity): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut project = find(&identity, &id)?;
    auth.enforce("identity:delete_project_tag", &target(&project))?;
    if !project.tags.contains(&tag) {
        return Err(not_found("project tag", &tag));
    }
    project.tags.retain(|t| *t != tag);
    identity.write(vec![Change::put(&project)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/projects` with `is_domain: true`: creates a domain, answered in project form.
async fn create_domain_project(
    identity: &Identity,
    auth: &Auth,
    b: &Value,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if b.get("domain_id").is_some_and(|d| !d.is_null())
        || b.get("parent_id").is_some_and(|p| !p.is_null())
    {
        return Err(ApiError::bad_request(
            "Invalid input: a project acting as a domain cannot have a domain_id or a parent_id.",
        ));
    }
    let domain = Domain {
        id: new_id(),
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
        extra: serde_json::Map::new(),
    };
    auth.enforce("identity:create_project", &domain_target(&domain))?;
    if identity.read().domain_by_name(&domain.name).is_some() {
        return Err(ApiError::conflict(format!(
            "Conflict occurred attempting to store project - Duplicate entry found with name {}.",
            domain.name
        )));
    }
    identity.write(vec![Change::put(&domain)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"project": domain_project_json(identity, &domain)})),
    ))
}
