//! OS-EP-FILTER: endpoint groups and endpoint/endpoint-group associations with projects
//! (`/v3/OS-EP-FILTER/...`).
//!
//! The associations are stored and listed as Keystone does; the token catalog is not (yet)
//! filtered by them.

use super::{AppState, Pairs, collection_links, links, new_id, not_found};
use crate::data::{Change, IdentityData};
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::get,
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Map, Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route(
            "/OS-EP-FILTER/endpoint_groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}",
            get(show_group).patch(update_group).delete(remove_group),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects",
            get(group_projects),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}",
            get(show_group_project)
                .put(add_group_project)
                .delete(remove_group_project),
        )
        .route(
            "/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints",
            get(group_endpoints),
        )
        .route(
            "/OS-EP-FILTER/endpoints/{endpoint_id}/projects",
            get(endpoint_projects),
        )
        .route(
            "/OS-EP-FILTER/projects/{project_id}/endpoints",
            get(project_endpoints),
        )
        .route(
            "/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}",
            get(check_project_endpoint)
                .put(add_project_endpoint)
                .delete(remove_project_endpoint),
        )
        .route(
            "/OS-EP-FILTER/projects/{project_id}/endpoint_groups",
            get(project_groups),
        )
}

/// Keystone's `_endpoint_group_properties`.
fn properties() -> Value {
    json!({
        "description": {"type": ["string", "null"]},
        "filters": {"type": "object", "properties": {
            "interface": {"type": "string", "enum": ["admin", "internal", "public"]},
            "service_id": {"type": "string"},
            "region_id": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
        }},
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "[\\S]+"},
    })
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object", "additionalProperties": false,
        "properties": {"endpoint_group": {
            "type": "object", "properties": properties(), "required": ["name", "filters"],
            "additionalProperties": false,
        }},
    }))
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object", "required": ["endpoint_group"], "additionalProperties": false,
        "properties": {"endpoint_group": {
            "type": "object", "properties": properties(), "minProperties": 1,
            "additionalProperties": false,
        }},
    }))
});

/// The endpoint attributes a filter may name.
const FILTER_KEYS: [&str; 3] = ["service_id", "region_id", "interface"];

/// Keystone's `_require_valid_filter`.
fn require_valid_filter(filters: &Map<String, Value>) -> Result<(), ApiError> {
    if filters.keys().any(|k| !FILTER_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Expecting to find {} in endpoint_group. The server could not comply with the request since it is either \
             malformed or otherwise incorrect. The client is assumed to be in error.",
            FILTER_KEYS.join(" or ")
        )));
    }
    Ok(())
}

/// Keystone's JSON of an endpoint group.
fn group_json(identity: &Identity, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id, "name": g.name, "description": g.description, "filters": g.filters,
        "links": links(identity, &format!("OS-EP-FILTER/endpoint_groups/{}", g.id)),
    })
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find Endpoint Group: {id}."))
}

fn find_group(identity: &Identity, id: &str) -> Result<EndpointGroup, ApiError> {
    identity
        .read()
        .endpoint_groups
        .get(id)
        .cloned()
        .ok_or_else(|| group_not_found(id))
}

fn require_project(identity: &Identity, id: &str) -> Result<Project, ApiError> {
    identity
        .read()
        .projects
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("project", id))
}

fn require_endpoint(identity: &Identity, id: &str) -> Result<Endpoint, ApiError> {
    identity
        .read()
        .endpoints
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("endpoint", id))
}

/// The endpoints an endpoint group selects: every filter equals the endpoint's attribute.
fn filtered_endpoints<'a>(data: &'a IdentityData, g: &EndpointGroup) -> Vec<&'a Endpoint> {
    let mut endpoints: Vec<&Endpoint> = data
        .endpoints
        .values()
        .filter(|e| {
            g.filters.iter().all(|(key, want)| {
                let have = match key.as_str() {
                    "service_id" => json!(e.service_id),
                    "region_id" => json!(e.region_id),
                    "interface" => json!(e.interface),
                    "enabled" => json!(e.enabled),
                    other => e.extra.get(other).cloned().unwrap_or(Value::Null),
                };
                have == *want
            })
        })
        .collect();
    endpoints.sort_by(|a, b| a.id.cmp(&b.id));
    endpoints
}

/// The endpoint groups associated with a project (existing ones).
fn groups_of_project<'a>(data: &'a IdentityData, project_id: &str) -> Vec<&'a EndpointGroup> {
    let mut groups: Vec<&EndpointGroup> = data
        .project_endpoint_groups
        .values()
        .filter(|a| a.project_id == project_id)
        .filter_map(|a| data.endpoint_groups.get(&a.endpoint_group_id))
        .collect();
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups
}

fn endpoints_json(identity: &Identity, endpoints: &[&Endpoint], path: &str) -> Json<Value> {
    let body: Vec<Value> = endpoints
        .iter()
        .map(|e| super::catalog::endpoint_json(identity, e))
        .collect();
    Json(json!({"endpoints": body, "links": collection_links(identity, path)}))
}

fn projects_json(identity: &Identity, projects: &[&Project], path: &str) -> Json<Value> {
    let body: Vec<Value> = projects
        .iter()
        .map(|p| super::projects::project_json(identity, p))
        .collect();
    Json(json!({"projects": body, "links": collection_links(identity, path)}))
}

fn groups_json(identity: &Identity, groups: &[&EndpointGroup], path: &str) -> Json<Value> {
    let body: Vec<Value> = groups.iter().map(|g| group_json(identity, g)).collect();
    Json(json!({"endpoint_groups": body, "links": collection_links(identity, path)}))
}

// ---- endpoint groups ----

/// `GET /v3/OS-EP-FILTER/endpoint_groups` (filter `name`; no other query parameter).
async fn list_groups(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    if let Some((key, _)) = query.iter().find(|(k, _)| k != "name") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{key}' was unexpected)"
        )));
    }
    let name = super::query_value(&query, "name");
    if name.is_some_and(|n| n.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute name. Value: . '' should be non-empty",
        ));
    }
    auth.enforce("identity:list_endpoint_groups", &json!({}))?;
    let data = identity.read();
    let mut groups: Vec<&EndpointGroup> = data
        .endpoint_groups
        .values()
        .filter(|g| name.is_none_or(|n| g.name == n))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(groups_json(
        &identity,
        &groups,
        "OS-EP-FILTER/endpoint_groups",
    ))
}

/// `POST /v3/OS-EP-FILTER/endpoint_groups`
async fn create_group(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    auth.enforce("identity:create_endpoint_group", &json!({}))?;
    let b = body.get("endpoint_group").cloned().unwrap_or_default();
    let filters = b
        .get("filters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if filters.is_empty() {
        return Err(ApiError::bad_request(
            "filters field is required and cannot be empty",
        ));
    }
    require_valid_filter(&filters)?;
    let group = EndpointGroup {
        id: new_id(),
        name: b["name"].as_str().unwrap_or_default().to_string(),
        description: b
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        filters,
    };
    identity.write(vec![Change::put(&group)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"endpoint_group": group_json(&identity, &group)})),
    ))
}

/// `GET|HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}`
async fn show_group(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:get_endpoint_group",
        &json!({"endpoint_group_id": id}),
    )?;
    Ok(Json(
        json!({"endpoint_group": group_json(&identity, &find_group(&identity, &id)?)}),
    ))
}

/// `PATCH /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}`
async fn update_group(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    UPDATE.validate(&body)?;
    auth.enforce(
        "identity:update_endpoint_group",
        &json!({"endpoint_group_id": id}),
    )?;
    let b = body["endpoint_group"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let filters = b.get("filters").and_then(Value::as_object);
    if let Some(f) = filters {
        require_valid_filter(f)?;
    }
    super::credentials::require_matching_id(&b, &id)?;
    let mut group = find_group(&identity, &id)?;
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        group.name = name.to_string();
    }
    if let Some(d) = b.get("description") {
        group.description = d.as_str().map(String::from);
    }
    if let Some(f) = filters {
        group.filters = f.clone();
    }
    identity.write(vec![Change::put(&group)]).await?;
    Ok(Json(
        json!({"endpoint_group": group_json(&identity, &group)}),
    ))
}

/// `DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}` (and its project
/// associations).
async fn remove_group(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:delete_endpoint_group",
        &json!({"endpoint_group_id": id}),
    )?;
    let group = find_group(&identity, &id)?;
    let mut changes = vec![Change::delete(&group)];
    changes.extend(
        identity
            .read()
            .project_endpoint_groups
            .values()
            .filter(|a| a.endpoint_group_id == id)
            .map(Change::delete),
    );
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects` (an unknown group has
/// no projects, as in Keystone).
async fn group_projects(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_projects_associated_with_endpoint_group",
        &json!({"endpoint_group_id": id}),
    )?;
    let data = identity.read();
    let mut projects: Vec<&Project> = data
        .project_endpoint_groups
        .values()
        .filter(|a| a.endpoint_group_id == id)
        .filter_map(|a| data.projects.get(&a.project_id))
        .collect();
    projects.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(projects_json(
        &identity,
        &projects,
        &format!("OS-EP-FILTER/endpoint_groups/{id}/projects"),
    ))
}

/// `GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints`
async fn group_endpoints(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_endpoints_associated_with_endpoint_group",
        &json!({"endpoint_group_id": id}),
    )?;
    let group = find_group(&identity, &id)?;
    let data = identity.read();
    Ok(endpoints_json(
        &identity,
        &filtered_endpoints(&data, &group),
        &format!("OS-EP-FILTER/endpoint_groups/{id}/endpoints"),
    ))
}

fn association_not_found() -> ApiError {
    ApiError::not_found("Endpoint Group Project Association not found")
}

/// 404 for a missing project, then a missing endpoint group (Keystone's order).
fn require_project_and_group(
    identity: &Identity,
    group_id: &str,
    project_id: &str,
) -> Result<(), ApiError> {
    require_project(identity, project_id)?;
    find_group(identity, group_id)?;
    Ok(())
}

/// `GET|HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}`
async fn show_group_project(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, project_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:get_endpoint_group_in_project",
        &json!({"endpoint_group_id": group_id, "project_id": project_id}),
    )?;
    require_project_and_group(&identity, &group_id, &project_id)?;
    let a = ProjectEndpointGroup {
        endpoint_group_id: group_id,
        project_id,
    };
    if !identity
        .read()
        .project_endpoint_groups
        .contains_key(&a.key())
    {
        return Err(association_not_found());
    }
    // Keystone's self link of this one resource is a path, not a URL.
    Ok(Json(json!({"project_endpoint_group": {
        "endpoint_group_id": a.endpoint_group_id, "project_id": a.project_id,
        "links": {"self": format!("/OS-EP-FILTER/endpoint_groups/{}/projects/{}", a.endpoint_group_id, a.project_id)},
    }})))
}

/// `PUT /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}` (409 when
/// already associated).
async fn add_group_project(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, project_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:add_endpoint_group_to_project",
        &json!({"endpoint_group_id": group_id, "project_id": project_id}),
    )?;
    require_project_and_group(&identity, &group_id, &project_id)?;
    let a = ProjectEndpointGroup {
        endpoint_group_id: group_id,
        project_id,
    };
    if identity
        .read()
        .project_endpoint_groups
        .contains_key(&a.key())
    {
        return Err(ApiError::conflict(
            "Conflict occurred attempting to store project_endpoint_group - Duplicate entry.",
        ));
    }
    identity.write(vec![Change::put(&a)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}`
async fn remove_group_project(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, project_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:remove_endpoint_group_from_project",
        &json!({"endpoint_group_id": group_id, "project_id": project_id}),
    )?;
    require_project_and_group(&identity, &group_id, &project_id)?;
    let a = ProjectEndpointGroup {
        endpoint_group_id: group_id,
        project_id,
    };
    if !identity
        .read()
        .project_endpoint_groups
        .contains_key(&a.key())
    {
        return Err(association_not_found());
    }
    identity.write(vec![Change::delete(&a)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- endpoints and projects ----

/// `GET /v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects`
async fn endpoint_projects(
    State(identity): AppState,
    auth: Auth,
    Path(endpoint_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_projects_for_endpoint",
        &json!({"endpoint_id": endpoint_id}),
    )?;
    require_endpoint(&identity, &endpoint_id)?;
    let data = identity.read();
    let mut projects: Vec<&Project> = data
        .project_endpoints
        .values()
        .filter(|a| a.endpoint_id == endpoint_id)
        .filter_map(|a| data.projects.get(&a.project_id))
        .collect();
    projects.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(projects_json(
        &identity,
        &projects,
        &format!("OS-EP-FILTER/endpoints/{endpoint_id}/projects"),
    ))
}

fn endpoint_not_in_project(endpoint_id: &str, project_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Endpoint {endpoint_id} not found in project {project_id}"
    ))
}

/// `GET|HEAD /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}`: 204 when
/// associated.
async fn check_project_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:check_endpoint_in_project",
        &json!({"project_id": project_id, "endpoint_id": endpoint_id}),
    )?;
    require_endpoint(&identity, &endpoint_id)?;
    require_project(&identity, &project_id)?;
    let a = ProjectEndpoint {
        endpoint_id,
        project_id,
    };
    match identity.read().project_endpoints.contains_key(&a.key()) {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(endpoint_not_in_project(&a.endpoint_id, &a.project_id)),
    }
}

/// `PUT /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}` (409 when already
/// associated).
async fn add_project_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:add_endpoint_to_project",
        &json!({"project_id": project_id, "endpoint_id": endpoint_id}),
    )?;
    require_endpoint(&identity, &endpoint_id)?;
    require_project(&identity, &project_id)?;
    let a = ProjectEndpoint {
        endpoint_id,
        project_id,
    };
    if identity.read().project_endpoints.contains_key(&a.key()) {
        return Err(ApiError::conflict(
            "Conflict occurred attempting to store project_endpoint - Duplicate entry.",
        ));
    }
    identity.write(vec![Change::put(&a)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}`
async fn remove_project_endpoint(
    State(identity): AppState,
    auth: Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:remove_endpoint_from_project",
        &json!({"project_id": project_id, "endpoint_id": endpoint_id}),
    )?;
    let a = ProjectEndpoint {
        endpoint_id,
        project_id,
    };
    if !identity.read().project_endpoints.contains_key(&a.key()) {
        return Err(endpoint_not_in_project(&a.endpoint_id, &a.project_id));
    }
    identity.write(vec![Change::delete(&a)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-EP-FILTER/projects/{project_id}/endpoints`: the endpoints associated directly,
/// then those of the project's endpoint groups.
async fn project_endpoints(
    State(identity): AppState,
    auth: Auth,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_endpoints_for_project",
        &json!({"project_id": project_id}),
    )?;
    require_project(&identity, &project_id)?;
    let data = identity.read();
    let mut direct: Vec<&Endpoint> = data
        .project_endpoints
        .values()
        .filter(|a| a.project_id == project_id)
        .filter_map(|a| data.endpoints.get(&a.endpoint_id))
        .collect();
    direct.sort_by(|a, b| a.id.cmp(&b.id));
    let mut endpoints = direct;
    for group in groups_of_project(&data, &project_id) {
        for e in filtered_endpoints(&data, group) {
            if !endpoints.iter().any(|have| have.id == e.id) {
                endpoints.push(e);
            }
        }
    }
    Ok(endpoints_json(
        &identity,
        &endpoints,
        &format!("OS-EP-FILTER/projects/{project_id}/endpoints"),
    ))
}

/// `GET /v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups`
async fn project_groups(
    State(identity): AppState,
    auth: Auth,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_endpoint_groups_for_project",
        &json!({"project_id": project_id}),
    )?;
    require_project(&identity, &project_id)?;
    let data = identity.read();
    Ok(groups_json(
        &identity,
        &groups_of_project(&data, &project_id),
        &format!("OS-EP-FILTER/projects/{project_id}/endpoint_groups"),
    ))
}

/// The association deletions Keystone makes when a project is deleted (its callback on the
/// project's deletion), for the project removal to include in its write.
pub fn changes_for_deleted_project(data: &IdentityData, project_id: &str) -> Vec<Change> {
    let mut changes: Vec<Change> = data
        .project_endpoints
        .values()
        .filter(|a| a.project_id == project_id)
        .map(Change::delete)
        .collect();
    changes.extend(
        data.project_endpoint_groups
            .values()
            .filter(|a| a.project_id == project_id)
            .map(Change::delete),
    );
    changes
}

/// The association deletions Keystone makes when an endpoint is deleted.
pub fn changes_for_deleted_endpoint(data: &IdentityData, endpoint_id: &str) -> Vec<Change> {
    data.project_endpoints
        .values()
        .filter(|a| a.endpoint_id == endpoint_id)
        .map(Change::delete)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::api::harness::{Harness, Reply};
    use serde_json::{Value, json};

    fn ids(r: &Reply, key: &str) -> Vec<String> {
        let mut ids: Vec<String> = r.body[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    async fn create(h: &Harness, token: &str, path: &str, body: Value, key: &str) -> String {
        let r = h.call("POST", path, Some(token), Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body[key]["id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn endpoint_groups_crud_and_associations() {
        let h = Harness::open("ep-filter-groups").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let svc = create(
            &h,
            &admin,
            "/services",
            json!({"service": {"type": "widget", "name": "w"}}),
            "service",
        )
        .await;
        let other_svc = create(
            &h,
            &admin,
            "/services",
            json!({"service": {"type": "gadget"}}),
            "service",
        )
        .await;
        let public = create(
            &h,
            &admin,
            "/endpoints",
            json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://w/pub"}}),
            "endpoint",
        )
        .await;
        let internal = create(&h, &admin, "/endpoints",
            json!({"endpoint": {"service_id": svc, "interface": "internal", "url": "http://w/int"}}), "endpoint").await;
        let gadget = create(&h, &admin, "/endpoints",
            json!({"endpoint": {"service_id": other_svc, "interface": "public", "url": "http://g"}}), "endpoint").await;

        let groups = "/OS-EP-FILTER/endpoint_groups";
        let r = h
            .call("POST", groups, Some(&admin), Some(json!({"endpoint_group": {
                "name": "widgets", "description": "all widget endpoints", "filters": {"service_id": svc}}})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let group = r.body["endpoint_group"].clone();
        let gid = group["id"].as_str().unwrap().to_string();
        assert_eq!(group["filters"], json!({"service_id": svc}));
        assert!(
            group["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"))
        );
        let r = h
            .call(
                "POST",
                groups,
                Some(&admin),
                Some(json!({"endpoint_group": {
                "name": "publics", "filters": {"interface": "public"}}})),
            )
            .await;
        assert_eq!(r.status, 201);
        assert!(r.body["endpoint_group"]["description"].is_null());
        let public_gid = r.body["endpoint_group"]["id"].as_str().unwrap().to_string();

        for (body, message) in [
            (
                json!({"endpoint_group": {"name": "x", "filters": {}}}),
                "filters field is required and cannot be empty",
            ),
            (json!({}), "filters field is required and cannot be empty"),
            (
                json!({"endpoint_group": {"name": "x", "filters": {"url": "u"}}}),
                "Expecting to find service_id or region_id or interface in endpoint_group. The server could not comply \
              with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
            ),
        ] {
            let r = h.call("POST", groups, Some(&admin), Some(body)).await;
            assert_eq!(
                (r.status, r.body["error"]["message"].as_str()),
                (400, Some(message))
            );
        }
        for body in [
            json!({"endpoint_group": {"filters": {"interface": "public"}}}),
            json!({"endpoint_group": {"name": "x", "filters": {"interface": "sideways"}}}),
            json!({"endpoint_group": {"name": "x", "filters": {"interface": "public"}, "extra": 1}}),
        ] {
            assert_eq!(
                h.call("POST", groups, Some(&admin), Some(body))
                    .await
                    .status,
                400
            );
        }
        assert_eq!(
            h.call(
                "POST",
                groups,
                Some(&demo),
                Some(json!({"endpoint_group": {
            "name": "x", "filters": {"interface": "public"}}}))
            )
            .await
            .status,
            403
        );

        // List (equal to what creation answered), show, HEAD.
        let r = h.call("GET", groups, Some(&admin), None).await;
        assert_eq!(r.status, 200);
        assert!(
            r.body["endpoint_groups"]
                .as_array()
                .unwrap()
                .contains(&group)
        );
        assert!(
            r.body["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with("/v3/OS-EP-FILTER/endpoint_groups")
        );
        let r = h
            .call("GET", &format!("{groups}?name=widgets"), Some(&admin), None)
            .await;
        assert_eq!(ids(&r, "endpoint_groups"), vec![gid.clone()]);
        let r = h
            .call("GET", &format!("{groups}?color=red"), Some(&admin), None)
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(h.call("GET", groups, Some(&demo), None).await.status, 403);
        let r = h
            .call("GET", &format!("{groups}/{gid}"), Some(&admin), None)
            .await;
        assert_eq!((r.status, &r.body["endpoint_group"]), (200, &group));
        assert_eq!(
            h.call("HEAD", &format!("{groups}/{gid}"), Some(&admin), None)
                .await
                .status,
            200
        );
        let r = h
            .call("GET", &format!("{groups}/nope"), Some(&admin), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find Endpoint Group: nope."))
        );

        // The group's endpoints follow its filters.
        let r = h
            .call(
                "GET",
                &format!("{groups}/{gid}/endpoints"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let mut want = vec![public.clone(), internal.clone()];
        want.sort();
        assert_eq!(ids(&r, "endpoints"), want);
        let r = h
            .call(
                "GET",
                &format!("{groups}/{public_gid}/endpoints"),
                Some(&admin),
                None,
            )
            .await;
        let found = ids(&r, "endpoints");
        assert!(found.contains(&public) && found.contains(&gadget) && !found.contains(&internal));
        assert!(
            r.body["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["interface"] == "public")
        );

        // Update.
        let r = h.call("PATCH", &format!("{groups}/{gid}"), Some(&admin), Some(json!({"endpoint_group": {
            "name": "internal widgets", "description": null, "filters": {"service_id": svc, "interface": "internal"}}}))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["endpoint_group"]["name"], "internal widgets");
        assert!(r.body["endpoint_group"]["description"].is_null());
        let r = h
            .call(
                "GET",
                &format!("{groups}/{gid}/endpoints"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ids(&r, "endpoints"), vec![internal.clone()]);
        let r = h
            .call(
                "PATCH",
                &format!("{groups}/{gid}"),
                Some(&admin),
                Some(json!({"endpoint_group": {"filters": {"enabled": true}}})),
            )
            .await;
        assert_eq!(r.status, 400);
        let r = h
            .call(
                "PATCH",
                &format!("{groups}/nope"),
                Some(&admin),
                Some(json!({"endpoint_group": {"name": "n"}})),
            )
            .await;
        assert_eq!(r.status, 404);

        // Group <-> project.
        let project = h.project_id("demo");
        let assoc = format!("{groups}/{gid}/projects/{project}");
        let r = h.call("GET", &assoc, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Endpoint Group Project Association not found"))
        );
        assert_eq!(h.call("PUT", &assoc, Some(&demo), None).await.status, 403);
        assert_eq!(h.call("PUT", &assoc, Some(&admin), None).await.status, 204);
        let r = h.call("PUT", &assoc, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                409,
                Some(
                    "Conflict occurred attempting to store project_endpoint_group - Duplicate entry."
                )
            )
        );
        let r = h
            .call(
                "PUT",
                &format!("{groups}/{gid}/projects/nope"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find project: nope."))
        );
        let r = h
            .call(
                "PUT",
                &format!("{groups}/nope/projects/{project}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 404);
        let r = h.call("GET", &assoc, Some(&admin), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["project_endpoint_group"],
            json!({"endpoint_group_id": gid, "project_id": project,
            "links": {"self": format!("/OS-EP-FILTER/endpoint_groups/{gid}/projects/{project}")}})
        );
        let r = h
            .call(
                "GET",
                &format!("{groups}/{gid}/projects"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ids(&r, "projects"), vec![project.clone()]);
        assert!(
            r.body["projects"][0]["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/projects/{project}"))
        );
        let r = h
            .call(
                "GET",
                &format!("{groups}/nope/projects"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!((r.status, ids(&r, "projects").len()), (200, 0));
        let r = h
            .call(
                "GET",
                &format!("/OS-EP-FILTER/projects/{project}/endpoint_groups"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ids(&r, "endpoint_groups"), vec![gid.clone()]);
        let r = h
            .call(
                "GET",
                "/OS-EP-FILTER/projects/nope/endpoint_groups",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 404);

        // Endpoint <-> project, and the project's endpoints (direct and through groups).
        let pe = format!("/OS-EP-FILTER/projects/{project}/endpoints/{gadget}");
        let r = h.call("GET", &pe, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                404,
                Some(format!("Endpoint {gadget} not found in project {project}").as_str())
            )
        );
        assert_eq!(h.call("PUT", &pe, Some(&admin), None).await.status, 204);
        assert_eq!(h.call("PUT", &pe, Some(&admin), None).await.status, 409);
        assert_eq!(h.call("GET", &pe, Some(&admin), None).await.status, 204);
        assert_eq!(h.call("HEAD", &pe, Some(&admin), None).await.status, 204);
        let r = h
            .call(
                "PUT",
                &format!("/OS-EP-FILTER/projects/{project}/endpoints/nope"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find endpoint: nope."))
        );
        let r = h
            .call(
                "GET",
                &format!("/OS-EP-FILTER/endpoints/{gadget}/projects"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ids(&r, "projects"), vec![project.clone()]);
        let r = h
            .call(
                "GET",
                &format!("/OS-EP-FILTER/projects/{project}/endpoints"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        let mut want = vec![gadget.clone(), internal.clone()];
        want.sort();
        assert_eq!(ids(&r, "endpoints"), want);
        assert!(r.body["endpoints"][0].get("legacy_endpoint_id").is_none());
        assert_eq!(
            h.call(
                "GET",
                &format!("/OS-EP-FILTER/projects/{project}/endpoints"),
                Some(&demo),
                None
            )
            .await
            .status,
            403
        );

        let data = h.identity.read().clone();
        assert_eq!(super::changes_for_deleted_project(&data, &project).len(), 2);
        assert_eq!(super::changes_for_deleted_endpoint(&data, &gadget).len(), 1);
        drop(data);

        assert_eq!(h.call("DELETE", &pe, Some(&admin), None).await.status, 204);
        assert_eq!(h.call("DELETE", &pe, Some(&admin), None).await.status, 404);
        assert_eq!(
            h.call("DELETE", &assoc, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("DELETE", &assoc, Some(&admin), None).await.status,
            404
        );

        // Deleting a group drops its associations.
        assert_eq!(h.call("PUT", &assoc, Some(&admin), None).await.status, 204);
        assert_eq!(
            h.call("DELETE", &format!("{groups}/{gid}"), Some(&demo), None)
                .await
                .status,
            403
        );
        assert_eq!(
            h.call("DELETE", &format!("{groups}/{gid}"), Some(&admin), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("DELETE", &format!("{groups}/{gid}"), Some(&admin), None)
                .await
                .status,
            404
        );
        assert!(h.identity.read().project_endpoint_groups.is_empty());
        let r = h.call("GET", groups, Some(&admin), None).await;
        assert_eq!(ids(&r, "endpoint_groups"), vec![public_gid]);
    }
}
