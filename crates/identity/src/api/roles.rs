//! `/v3/roles` (with implied roles), `/v3/role_inferences` and the role grants on projects,
//! domains (with OS-INHERIT) and the system.

use super::{
    AppState, Pairs, extra_from, links, member, name_matches, new_id, not_found, opt_str,
    query_value, with_extra,
};
use crate::data::{Change, IdentityData};
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::{OriginalUri, Path, Query, RawQuery, State},
    http::{Method, StatusCode},
    routing::{MethodRouter, get},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Map, Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/{role_id}", get(show).patch(update).delete(remove))
        .route("/roles/{role_id}/implies", get(list_implied))
        .route(
            "/roles/{role_id}/implies/{implied_role_id}",
            get(show_implied)
                .head(check_implied)
                .put(create_implied)
                .delete(delete_implied),
        )
        .route("/role_inferences", get(list_inferences))
        .route(
            "/projects/{project_id}/users/{user_id}/roles",
            get(direct_grants),
        )
        .route(
            "/projects/{project_id}/users/{user_id}/roles/{role_id}",
            grant_methods(false),
        )
        .route(
            "/projects/{project_id}/groups/{group_id}/roles",
            get(direct_grants),
        )
        .route(
            "/projects/{project_id}/groups/{group_id}/roles/{role_id}",
            grant_methods(false),
        )
        .route(
            "/domains/{domain_id}/users/{user_id}/roles",
            get(direct_grants),
        )
        .route(
            "/domains/{domain_id}/users/{user_id}/roles/{role_id}",
            grant_methods(false),
        )
        .route(
            "/domains/{domain_id}/groups/{group_id}/roles",
            get(direct_grants),
        )
        .route(
            "/domains/{domain_id}/groups/{group_id}/roles/{role_id}",
            grant_methods(false),
        )
        .route("/system/users/{user_id}/roles", get(direct_grants))
        .route(
            "/system/users/{user_id}/roles/{role_id}",
            grant_methods(false),
        )
        .route("/system/groups/{group_id}/roles", get(direct_grants))
        .route(
            "/system/groups/{group_id}/roles/{role_id}",
            grant_methods(false),
        )
        .nest("/OS-INHERIT", inherited_routes())
}

/// `/OS-INHERIT/...`: grants inherited to the projects below a domain or project (Keystone lists
/// them only for domains).
fn inherited_routes() -> Router<Arc<Identity>> {
    const DOMAIN_USER: &str = "/domains/{domain_id}/users/{user_id}/roles";
    const DOMAIN_GROUP: &str = "/domains/{domain_id}/groups/{group_id}/roles";
    const PROJECT_USER: &str = "/projects/{project_id}/users/{user_id}/roles";
    const PROJECT_GROUP: &str = "/projects/{project_id}/groups/{group_id}/roles";
    let list = |base: &str| format!("{base}/inherited_to_projects");
    let one = |base: &str| format!("{base}/{{role_id}}/inherited_to_projects");
    Router::new()
        .route(&list(DOMAIN_USER), get(inherited_grants))
        .route(&one(DOMAIN_USER), grant_methods(true))
        .route(&list(DOMAIN_GROUP), get(inherited_grants))
        .route(&one(DOMAIN_GROUP), grant_methods(true))
        .route(&one(PROJECT_USER), grant_methods(true))
        .route(&one(PROJECT_GROUP), grant_methods(true))
}

/// GET/HEAD (check), PUT (grant) and DELETE (revoke) of one grant; the actor, target and role
/// come from the route's path parameters.
fn grant_methods(inherited: bool) -> MethodRouter<Arc<Identity>> {
    let handler = move |State(identity): AppState,
                        auth: Auth,
                        method: Method,
                        Path(ids): GrantIds| async move {
        let (actor, target) = actor_and_target(&ids)?;
        let role_id = ids.get("role_id").cloned().unwrap_or_default();
        grant(
            &identity,
            &auth,
            &method,
            assignment(actor, target, role_id, inherited),
        )
        .await
    };
    get(handler).put(handler).delete(handler)
}

/// Path parameters of a grant route, by name.
type GrantIds = Path<std::collections::HashMap<String, String>>;

/// The actor (`user_id` or `group_id`) and target (`project_id`, `domain_id`, or the system when
/// neither) named by a grant route's path parameters.
fn actor_and_target(
    ids: &std::collections::HashMap<String, String>,
) -> Result<(Actor, Target), ApiError> {
    let actor = match (ids.get("user_id"), ids.get("group_id")) {
        (Some(u), _) => Actor::User(u.clone()),
        (None, Some(g)) => Actor::Group(g.clone()),
        (None, None) => return Err(ApiError::internal("grant route without an actor")),
    };
    let target = match (ids.get("project_id"), ids.get("domain_id")) {
        (Some(p), _) => Target::Project(p.clone()),
        (None, Some(d)) => Target::Domain(d.clone()),
        (None, None) => Target::System,
    };
    Ok((actor, target))
}

/// `GET .../roles`: the direct grants of an actor on a target.
async fn direct_grants(
    State(identity): AppState,
    auth: Auth,
    Path(ids): GrantIds,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let (actor, target) = actor_and_target(&ids)?;
    list_grants(&identity, &auth, actor, target, false, &uri).await
}

/// `GET /OS-INHERIT/.../roles/inherited_to_projects`: the inherited grants of an actor.
async fn inherited_grants(
    State(identity): AppState,
    auth: Auth,
    Path(ids): GrantIds,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let (actor, target) = actor_and_target(&ids)?;
    list_grants(&identity, &auth, actor, target, true, &uri).await
}

/// Role names that may never be implied (Keystone's `[assignment] prohibited_implied_role`
/// default).
const PROHIBITED_IMPLIED_ROLES: &[&str] = &["admin"];

fn role_schema(create: bool) -> Schema {
    let mut inner = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "[\\S]+"},
            "description": {"type": ["string", "null"]},
            "domain_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64, "pattern": "^[a-zA-Z0-9_-]+$"},
            "options": {
                "type": "object",
                "properties": {"immutable": {"type": ["boolean", "null"]}},
                "additionalProperties": false
            }
        }
    });
    if create {
        inner["required"] = json!(["name"]);
    } else {
        inner["minProperties"] = json!(1);
    }
    Schema::new(json!({"type": "object", "required": ["role"], "properties": {"role": inner}}))
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| role_schema(true));
static UPDATE: LazyLock<Schema> = LazyLock::new(|| role_schema(false));

const CORE: &[&str] = &["id", "name", "domain_id", "description", "options", "links"];

/// Keystone's JSON of a role.
pub fn role_json(identity: &Identity, r: &Role) -> Value {
    with_extra(
        json!({
            "id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description,
            "options": r.options, "links": links(identity, &format!("roles/{}", r.id)),
        }),
        &r.extra,
    )
}

/// A role as policy rules see it (`target.role.*`); `domain_id` is null for global roles.
fn role_target(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description, "options": r.options})
}

fn find(identity: &Identity, id: &str) -> Result<Role, ApiError> {
    identity
        .read()
        .roles
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("role", id))
}

/// `{"self": <url with the request's query>, "previous": null, "next": null}`, as Keystone's
/// `wrap_collection`.
fn collection_self(identity: &Identity, path: &str, raw_query: Option<&str>) -> Value {
    let query = raw_query
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    json!({"self": format!("{}/v3/{path}{query}", identity.base_url()), "previous": null, "next": null})
}

/// Query filters as Keystone hands them to policy (`filter_attr.<name>`).
fn filter_attrs(query: &[(String, String)], names: &[&str]) -> Value {
    let mut target = Map::new();
    for name in names {
        if let Some(v) = query_value(query, name) {
            target.insert(format!("filter_attr.{name}"), json!(v));
        }
    }
    Value::Object(target)
}

fn immutable(r: &Role) -> bool {
    r.options
        .get("immutable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn conflict(name: &str, domain_id: Option<&str>) -> ApiError {
    match domain_id {
        Some(d) => ApiError::conflict(format!(
            "Conflict occurred attempting to store role - Duplicate entry found with name {name} at domain ID {d}."
        )),
        None => ApiError::conflict(format!(
            "Conflict occurred attempting to store role - Duplicate entry found with name {name}."
        )),
    }
}

/// Sets (or, for null, removes) the resource options in `update`.
fn merge_options(options: &mut Map<String, Value>, update: &Map<String, Value>) {
    for (k, v) in update {
        if v.is_null() {
            options.remove(k);
        } else {
            options.insert(k.clone(), v.clone());
        }
    }
}

// ---- /roles ----

async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let domain_filter = query_value(&query, "domain_id").filter(|d| !d.is_empty());
    let action = if domain_filter.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    auth.enforce(action, &filter_attrs(&query, &["name", "domain_id"]))?;
    let data = identity.read();
    let mut roles: Vec<&Role> = data
        .roles
        .values()
        // Without a domain filter only global roles are listed.
        .filter(|r| r.domain_id.as_deref() == domain_filter)
        .filter(|r| name_matches(&query, &r.name))
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<Value> = roles.into_iter().map(|r| role_json(&identity, r)).collect();
    Ok(Json(
        json!({"roles": body, "links": collection_self(&identity, "roles", raw.as_deref())}),
    ))
}

async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id);
    match &found {
        Ok(r) if r.domain_id.is_some() => auth.enforce(
            "identity:get_domain_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Ok(r) => auth.enforce(
            "identity:get_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Err(_) => auth.enforce(
            "identity:get_role",
            &json!({"target": {"role": {"id": id}}}),
        )?,
    }
    Ok(Json(json!({"role": role_json(&identity, &found?)})))
}

async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "role")?;
    let domain_id = opt_str(b, "domain_id");
    if domain_id.is_some() {
        auth.enforce(
            "identity:create_domain_role",
            &json!({"target": {"role": b}}),
        )?;
    } else {
        auth.enforce("identity:create_role", &json!({}))?;
    }
    let mut options = Map::new();
    if let Some(o) = b.get("options").and_then(Value::as_object) {
        merge_options(&mut options, o);
    }
    let role = Role {
        id: new_id(),
        name: b["name"].as_str().unwrap_or_default().to_string(),
        domain_id,
        description: opt_str(b, "description"),
        options,
        extra: extra_from(b, CORE),
    };
    {
        let data = identity.read();
        if let Some(d) = &role.domain_id
            && !data.domains.contains_key(d)
        {
            return Err(not_found("domain", d));
        }
        if data
            .roles
            .values()
            .any(|r| r.name == role.name && r.domain_id == role.domain_id)
        {
            return Err(conflict(&role.name, role.domain_id.as_deref()));
        }
    }
    identity.write(vec![Change::put(&role)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"role": role_json(&identity, &role)})),
    ))
}

async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id);
    match &found {
        Ok(r) if r.domain_id.is_some() => auth.enforce(
            "identity:update_domain_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Ok(r) => auth.enforce(
            "identity:update_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Err(_) => auth.enforce(
            "identity:update_role",
            &json!({"target": {"role": {"id": id}}}),
        )?,
    }
    let mut role = found?;
    UPDATE.validate(&body)?;
    let b = member(&body, "role")?;
    if b.get("id")
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(id.as_str()))
    {
        return Err(ApiError::bad_request("Cannot change ID"));
    }
    if immutable(&role) {
        // Only `{"options": {"immutable": false|null}}` may touch an immutable role.
        let unlocks = b.as_object().is_some_and(|m| m.len() == 1)
            && b.get("options")
                .and_then(|o| o.get("immutable"))
                .is_some_and(|v| v.is_null() || *v == json!(false));
        if !unlocks {
            return Err(ApiError::forbidden(format!(
                "Unable to update immutable role resource: `{id}. Set resource option \"immutable\" to false first."
            )));
        }
    }
    if b.get("domain_id")
        .is_some_and(|d| d.as_str() != role.domain_id.as_deref())
    {
        return Err(ApiError::bad_request(
            "Update of `domain_id` is not allowed.",
        ));
    }
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        let taken = identity
            .read()
            .roles
            .values()
            .any(|r| r.id != role.id && r.name == name && r.domain_id == role.domain_id);
        if taken {
            return Err(conflict(name, b.get("domain_id").and_then(Value::as_str)));
        }
        role.name = name.to_string();
    }
    if let Some(v) = b.get("description") {
        role.description = v.as_str().map(String::from);
    }
    if let Some(o) = b.get("options").and_then(Value::as_object) {
        merge_options(&mut role.options, o);
    }
    role.extra.extend(extra_from(b, CORE));
    identity.write(vec![Change::put(&role)]).await?;
    Ok(Json(json!({"role": role_json(&identity, &role)})))
}

/// Deletes a role with its grants and implication rules; application credentials of users who
/// held it directly on a project go too (Keystone's `REMOVE_APP_CREDS_FOR_USER`).
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = find(&identity, &id);
    match &found {
        Ok(r) if r.domain_id.is_some() => auth.enforce(
            "identity:delete_domain_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Ok(r) => auth.enforce(
            "identity:delete_role",
            &json!({"target": {"role": role_target(r)}}),
        )?,
        Err(_) => auth.enforce(
            "identity:delete_role",
            &json!({"target": {"role": {"id": id}}}),
        )?,
    }
    let role = found?;
    if immutable(&role) {
        return Err(ApiError::forbidden(format!(
            "Unable to delete immutable role resource: `{id}. Set resource option \"immutable\" to false first."
        )));
    }
    let changes = role_deletion(&identity.read(), &role);
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything deleting `role` removes.
fn role_deletion(data: &IdentityData, role: &Role) -> Vec<Change> {
    let mut changes = vec![Change::delete(role)];
    let grants: Vec<&Assignment> = data
        .assignments
        .values()
        .filter(|a| a.role_id == role.id)
        .collect();
    changes.extend(grants.iter().map(|a| Change::delete(*a)));
    changes.extend(
        data.implied
            .values()
            .filter(|r| r.prior_role_id == role.id || r.implied_role_id == role.id)
            .map(Change::delete),
    );
    let holders: Vec<(&str, &str)> = grants
        .iter()
        .filter_map(|a| match (&a.actor, &a.target) {
            (Actor::User(u), Target::Project(p)) => Some((u.as_str(), p.as_str())),
            _ => None,
        })
        .collect();
    changes.extend(
        data.app_creds
            .values()
            .filter(|c| holders.contains(&(c.user_id.as_str(), c.project_id.as_str())))
            .map(Change::delete),
    );
    changes
}

// ---- implied roles ----

fn prior_role_json(identity: &Identity, r: &Role) -> Value {
    json!({"id": r.id, "links": links(identity, &format!("roles/{}", r.id)), "name": r.name})
}

/// The policy target of the implied-role calls (Keystone's `prior_role` / `implied_role`).
fn inference_target(data: &IdentityData, prior: &str, implied: Option<&str>) -> Value {
    let role = |id: &str| {
        data.roles
            .get(id)
            .map(role_target)
            .unwrap_or_else(|| json!({"id": id}))
    };
    let mut target = json!({"prior_role": role(prior)});
    let mut top = json!({"prior_role_id": prior});
    if let Some(i) = implied {
        target["implied_role"] = role(i);
        top["implied_role_id"] = json!(i);
    }
    top["target"] = target;
    top
}

/// Whether `prior` implying `implied` would close a cycle of implications (including a role
/// implying itself).
fn would_cycle(data: &IdentityData, prior: &str, implied: &str) -> bool {
    prior == implied || data.implied_by(implied).iter().any(|r| r == prior)
}

/// Keystone's checks on a new implication (`RoleManager.create_implied_role`) plus a refusal of
/// cycles; every refusal is Keystone's `InvalidImpliedRole` (403).
fn check_new_implication(data: &IdentityData, prior: &str, implied: &str) -> Result<(), ApiError> {
    let prior_role = data
        .roles
        .get(prior)
        .ok_or_else(|| not_found("role", prior))?;
    let implied_role = data
        .roles
        .get(implied)
        .ok_or_else(|| not_found("role", implied))?;
    let invalid = || ApiError::forbidden(format!("{implied} cannot be an implied roles."));
    if PROHIBITED_IMPLIED_ROLES.contains(&implied_role.name.as_str()) {
        return Err(invalid());
    }
    // A global role cannot imply a domain-specific role.
    if prior_role.domain_id.is_none() && implied_role.domain_id.is_some() {
        return Err(invalid());
    }
    if would_cycle(data, prior, implied) {
        return Err(invalid());
    }
    if data
        .implied
        .values()
        .any(|r| r.prior_role_id == prior && r.implied_role_id == implied)
    {
        return Err(ApiError::conflict(
            "Conflict occurred attempting to store implied_role - Duplicate entry.",
        ));
    }
    Ok(())
}

/// `{"role_inference": {"prior_role": ..., "implies": <implied>}, "links": ...}` for one rule.
fn inference_json(identity: &Identity, prior: &str, implied: &str) -> Result<Value, ApiError> {
    let data = identity.read();
    if !data
        .implied
        .values()
        .any(|r| r.prior_role_id == prior && r.implied_role_id == implied)
    {
        return Err(ApiError::not_found(format!(
            "{prior} does not imply {implied}."
        )));
    }
    let implied_role = data
        .roles
        .get(implied)
        .ok_or_else(|| not_found("role", implied))?;
    let prior_role = data
        .roles
        .get(prior)
        .ok_or_else(|| not_found("role", prior))?;
    Ok(json!({
        "role_inference": {"prior_role": prior_role_json(identity, prior_role), "implies": prior_role_json(identity, implied_role)},
        "links": links(identity, &format!("roles/{prior}/implies/{implied}")),
    }))
}

async fn list_implied(
    State(identity): AppState,
    auth: Auth,
    Path(prior): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_implied_roles",
        &inference_target(&identity.read(), &prior, None),
    )?;
    let data = identity.read();
    let prior_role = data
        .roles
        .get(&prior)
        .ok_or_else(|| not_found("role", &prior))?;
    let mut implied: Vec<&Role> = data
        .implied
        .values()
        .filter(|r| r.prior_role_id == prior)
        .filter_map(|r| data.roles.get(&r.implied_role_id))
        .collect();
    implied.sort_by(|a, b| a.name.cmp(&b.name));
    let implies: Vec<Value> = implied
        .into_iter()
        .map(|r| prior_role_json(&identity, r))
        .collect();
    Ok(Json(json!({
        "role_inference": {"prior_role": prior_role_json(&identity, prior_role), "implies": implies},
        "links": links(&identity, &format!("roles/{prior}/implies")),
    })))
}

async fn show_implied(
    State(identity): AppState,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:get_implied_role",
        &inference_target(&identity.read(), &prior, Some(&implied)),
    )?;
    {
        let data = identity.read();
        data.roles
            .get(&prior)
            .ok_or_else(|| not_found("role", &prior))?;
        data.roles
            .get(&implied)
            .ok_or_else(|| not_found("role", &implied))?;
    }
    Ok(Json(inference_json(&identity, &prior, &implied)?))
}

/// `HEAD /roles/{prior}/implies/{implied}`: 204 (not 200) as Keystone answers.
async fn check_implied(
    State(identity): AppState,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let target = inference_target(&identity.read(), &prior, Some(&implied));
    auth.enforce("identity:check_implied_role", &target)?;
    auth.enforce("identity:get_implied_role", &target)?;
    {
        let data = identity.read();
        data.roles
            .get(&prior)
            .ok_or_else(|| not_found("role", &prior))?;
        data.roles
            .get(&implied)
            .ok_or_else(|| not_found("role", &implied))?;
    }
    inference_json(&identity, &prior, &implied)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_implied(
    State(identity): AppState,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.enforce(
        "identity:create_implied_role",
        &inference_target(&identity.read(), &prior, Some(&implied)),
    )?;
    check_new_implication(&identity.read(), &prior, &implied)?;
    let rule = ImpliedRole {
        prior_role_id: prior.clone(),
        implied_role_id: implied.clone(),
    };
    identity.write(vec![Change::put(&rule)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(inference_json(&identity, &prior, &implied)?),
    ))
}

async fn delete_implied(
    State(identity): AppState,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:delete_implied_role",
        &inference_target(&identity.read(), &prior, Some(&implied)),
    )?;
    let rule = {
        let data = identity.read();
        data.roles
            .get(&prior)
            .ok_or_else(|| not_found("role", &prior))?;
        data.roles
            .get(&implied)
            .ok_or_else(|| not_found("role", &implied))?;
        data.implied
            .values()
            .find(|r| r.prior_role_id == prior && r.implied_role_id == implied)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("{prior} does not imply {implied}.")))?
    };
    identity.write(vec![Change::delete(&rule)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /role_inferences`: every rule, grouped by prior role.
async fn list_inferences(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:list_role_inference_rules", &json!({}))?;
    let data = identity.read();
    let mut priors: Vec<&Role> = data
        .implied
        .values()
        .filter_map(|r| data.roles.get(&r.prior_role_id))
        .collect();
    priors.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    priors.dedup_by(|a, b| a.id == b.id);
    let inferences: Vec<Value> = priors
        .into_iter()
        .map(|prior| {
            let mut implied: Vec<&Role> = data
                .implied
                .values()
                .filter(|r| r.prior_role_id == prior.id)
                .filter_map(|r| data.roles.get(&r.implied_role_id))
                .collect();
            implied.sort_by(|a, b| a.name.cmp(&b.name));
            let implies: Vec<Value> = implied
                .into_iter()
                .map(|r| prior_role_json(&identity, r))
                .collect();
            json!({"prior_role": prior_role_json(&identity, prior), "implies": implies})
        })
        .collect();
    Ok(Json(json!({"role_inferences": inferences})))
}

// ---- grants ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantOp {
    Check,
    Create,
    Revoke,
}

impl GrantOp {
    fn of(method: &Method) -> GrantOp {
        match *method {
            Method::PUT => GrantOp::Create,
            Method::DELETE => GrantOp::Revoke,
            _ => GrantOp::Check,
        }
    }
}

fn grant_action(op: GrantOp, actor: &Actor, target: &Target) -> &'static str {
    match (target, actor, op) {
        (Target::System, Actor::User(_), GrantOp::Check) => "identity:check_system_grant_for_user",
        (Target::System, Actor::User(_), GrantOp::Create) => {
            "identity:create_system_grant_for_user"
        }
        (Target::System, Actor::User(_), GrantOp::Revoke) => {
            "identity:revoke_system_grant_for_user"
        }
        (Target::System, Actor::Group(_), GrantOp::Check) => {
            "identity:check_system_grant_for_group"
        }
        (Target::System, Actor::Group(_), GrantOp::Create) => {
            "identity:create_system_grant_for_group"
        }
        (Target::System, Actor::Group(_), GrantOp::Revoke) => {
            "identity:revoke_system_grant_for_group"
        }
        (_, _, GrantOp::Check) => "identity:check_grant",
        (_, _, GrantOp::Create) => "identity:create_grant",
        (_, _, GrantOp::Revoke) => "identity:revoke_grant",
    }
}

/// Keystone's grant policy target: `target.role`, `target.user`/`target.group` and
/// `target.project`/`target.domain` (each `{}` when it does not exist), with the path arguments
/// at the top level.
fn grant_target(
    data: &IdentityData,
    actor: &Actor,
    target: &Target,
    role_id: Option<&str>,
) -> Value {
    let mut t = Map::new();
    let mut top = Map::new();
    if let Some(r) = role_id {
        t.insert(
            "role".into(),
            data.roles
                .get(r)
                .map(role_target)
                .unwrap_or_else(|| json!({})),
        );
        top.insert("role_id".into(), json!(r));
    }
    match actor {
        Actor::User(u) => {
            let user = data.users.get(u).map(|u| {
                json!({"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled})
            });
            t.insert("user".into(), user.unwrap_or_else(|| json!({})));
            top.insert("user_id".into(), json!(u));
        }
        Actor::Group(g) => {
            let group = data
                .groups
                .get(g)
                .map(|g| json!({"id": g.id, "name": g.name, "domain_id": g.domain_id}));
            t.insert("group".into(), group.unwrap_or_else(|| json!({})));
            top.insert("group_id".into(), json!(g));
        }
    }
    match target {
        Target::Project(p) => {
            let project = data.projects.get(p).map(|p| {
                json!({"id": p.id, "name": p.name, "domain_id": p.domain_id, "parent_id": p.parent_id})
            });
            t.insert("project".into(), project.unwrap_or_else(|| json!({})));
            top.insert("project_id".into(), json!(p));
        }
        Target::Domain(d) => {
            let domain = data
                .domains
                .get(d)
                .map(|d| json!({"id": d.id, "name": d.name, "enabled": d.enabled}));
            t.insert("domain".into(), domain.unwrap_or_else(|| json!({})));
            top.insert("domain_id".into(), json!(d));
        }
        Target::System => {}
    }
    top.insert("target".into(), Value::Object(t));
    Value::Object(top)
}

/// Checks that the actor (404), target (404) exist, in Keystone's order.
fn check_actor_and_target(
    data: &IdentityData,
    actor: &Actor,
    target: &Target,
    actor_must_exist: bool,
) -> Result<(), ApiError> {
    if actor_must_exist {
        match actor {
            Actor::User(u) if !data.users.contains_key(u) => return Err(not_found("user", u)),
            Actor::Group(g) if !data.groups.contains_key(g) => return Err(not_found("group", g)),
            _ => {}
        }
    }
    match target {
        Target::Project(p) if !data.projects.contains_key(p) => Err(not_found("project", p)),
        Target::Domain(d) if !data.domains.contains_key(d) => Err(not_found("domain", d)),
        _ => Ok(()),
    }
}

/// Keystone's `RoleAssignmentNotFound`.
fn assignment_not_found(a: &Assignment) -> ApiError {
    let actor = match &a.actor {
        Actor::User(id) | Actor::Group(id) => id.as_str(),
    };
    let target = match &a.target {
        Target::Project(id) | Target::Domain(id) => id.as_str(),
        Target::System => "system",
    };
    ApiError::not_found(format!(
        "Could not find role assignment with role: {}, user or group: {actor}, project, domain, or system: {target}.",
        a.role_id
    ))
}

/// Validates a grant operation against the data: the role, actor and target exist (a revoke
/// tolerates a vanished actor, as Keystone), a domain-specific role is granted only within its
/// domain and never on the system, and a checked or revoked grant exists.
fn validate_grant(data: &IdentityData, a: &Assignment, op: GrantOp) -> Result<(), ApiError> {
    let role = data
        .roles
        .get(&a.role_id)
        .ok_or_else(|| not_found("role", &a.role_id))?;
    check_actor_and_target(data, &a.actor, &a.target, op != GrantOp::Revoke)?;
    if op == GrantOp::Create {
        match (&a.target, &role.domain_id) {
            (Target::Project(p), Some(rd))
                if data.projects.get(p).is_some_and(|p| &p.domain_id != rd) =>
            {
                return Err(ApiError::forbidden(format!(
                    "Project {p} must be in the same domain as the role {} being assigned.",
                    a.role_id
                )));
            }
            (Target::Domain(d), Some(rd)) if d != rd => {
                return Err(ApiError::forbidden(format!(
                    "Domain {d} must be the domain of the role {} being assigned.",
                    a.role_id
                )));
            }
            (Target::System, Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "Role {} is a domain-specific role. Unable to use a domain-specific role in a system assignment.",
                    a.role_id
                )));
            }
            _ => {}
        }
    } else if !data.assignments.contains_key(&a.key()) {
        return Err(assignment_not_found(a));
    }
    Ok(())
}

/// Check (GET/HEAD), create (PUT) or revoke (DELETE) one grant; 204 in every case.
async fn grant(
    identity: &Identity,
    auth: &Auth,
    method: &Method,
    assignment: Assignment,
) -> Result<StatusCode, ApiError> {
    let op = GrantOp::of(method);
    let policy = grant_target(
        &identity.read(),
        &assignment.actor,
        &assignment.target,
        Some(&assignment.role_id),
    );
    auth.enforce(
        grant_action(op, &assignment.actor, &assignment.target),
        &policy,
    )?;
    let exists = {
        let data = identity.read();
        validate_grant(&data, &assignment, op)?;
        data.assignments.contains_key(&assignment.key())
    };
    match op {
        GrantOp::Check => {}
        // Granting an existing assignment again is silently accepted.
        GrantOp::Create if exists => {}
        GrantOp::Create => identity.write(vec![Change::put(&assignment)]).await?,
        // Token roles are computed from the live data, so a revocation takes effect at once.
        GrantOp::Revoke => identity.write(vec![Change::delete(&assignment)]).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The roles granted to an actor on a target (`{"roles": [...], "links": ...}`).
async fn list_grants(
    identity: &Identity,
    auth: &Auth,
    actor: Actor,
    target: Target,
    inherited: bool,
    uri: &axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let path = uri
        .path()
        .split_once("/v3/")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let raw_query = uri.query();
    let action = match (&target, &actor) {
        (Target::System, Actor::User(_)) => "identity:list_system_grants_for_user",
        (Target::System, Actor::Group(_)) => "identity:list_system_grants_for_group",
        _ => "identity:list_grants",
    };
    auth.enforce(
        action,
        &grant_target(&identity.read(), &actor, &target, None),
    )?;
    let data = identity.read();
    check_actor_and_target(&data, &actor, &target, true)?;
    let mut roles: Vec<&Role> = data
        .assignments
        .values()
        .filter(|a| a.actor == actor && a.target == target && a.inherited == inherited)
        .filter_map(|a| data.roles.get(&a.role_id))
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<Value> = roles.into_iter().map(|r| role_json(identity, r)).collect();
    Ok(Json(
        json!({"roles": body, "links": collection_self(identity, path, raw_query)}),
    ))
}

fn assignment(actor: Actor, target: Target, role_id: String, inherited: bool) -> Assignment {
    Assignment {
        actor,
        target,
        role_id,
        inherited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, domain: Option<&str>) -> Role {
        Role {
            id: id.into(),
            name: id.into(),
            domain_id: domain.map(String::from),
            description: None,
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn user(id: &str, domain: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            domain_id: domain.into(),
            enabled: true,
            default_project_id: None,
            description: None,
            extra: Map::new(),
            options: Map::new(),
            password_hash: None,
            password_created_at: None,
            password_expires_at: None,
            password_history: vec![],
            failed_auth_count: 0,
            failed_auth_at: None,
            created_at: None,
            last_active_at: None,
        }
    }

    fn project(id: &str, domain: &str) -> Project {
        Project {
            id: id.into(),
            name: id.into(),
            domain_id: domain.into(),
            parent_id: None,
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn domain(id: &str) -> Domain {
        Domain {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn imply(d: &mut IdentityData, prior: &str, implied: &str) {
        let rule = ImpliedRole {
            prior_role_id: prior.into(),
            implied_role_id: implied.into(),
        };
        d.implied.insert(rule.key(), rule);
    }

    fn data() -> IdentityData {
        let mut d = IdentityData::default();
        for r in ["admin", "member", "reader", "other"] {
            d.roles.insert(r.into(), role(r, None));
        }
        d.roles.insert("d1role".into(), role("d1role", Some("d1")));
        imply(&mut d, "admin", "member");
        imply(&mut d, "member", "reader");
        for id in ["d1", "d2"] {
            d.domains.insert(id.into(), domain(id));
        }
        d.projects.insert("p1".into(), project("p1", "d1"));
        d.projects.insert("p2".into(), project("p2", "d2"));
        d.users.insert("u".into(), user("u", "d1"));
        d
    }

    fn grant(d: &mut IdentityData, a: &Assignment) {
        d.assignments.insert(a.key(), a.clone());
    }

    fn on_project(user: &str, project: &str, role: &str) -> Assignment {
        Assignment {
            actor: Actor::User(user.into()),
            target: Target::Project(project.into()),
            role_id: role.into(),
            inherited: false,
        }
    }

    #[test]
    fn cycles_are_detected_transitively() {
        let d = data();
        assert!(
            would_cycle(&d, "reader", "admin"),
            "admin implies member implies reader"
        );
        assert!(would_cycle(&d, "member", "admin"));
        assert!(would_cycle(&d, "other", "other"), "a role implying itself");
        assert!(
            !would_cycle(&d, "admin", "reader"),
            "a shortcut is no cycle"
        );
        assert!(!would_cycle(&d, "other", "member"));
    }

    #[test]
    fn new_implications_follow_keystones_rules() {
        let d = data();
        let status = |r: Result<(), ApiError>| r.unwrap_err().status.as_u16();
        let err = check_new_implication(&d, "reader", "admin").unwrap_err();
        assert_eq!(
            err.status.as_u16(),
            403,
            "admin is a prohibited implied role"
        );
        assert_eq!(err.message, "admin cannot be an implied roles.");
        assert_eq!(
            status(check_new_implication(&d, "reader", "member")),
            403,
            "cycle"
        );
        assert_eq!(
            status(check_new_implication(&d, "other", "d1role")),
            403,
            "global implying domain-specific"
        );
        assert!(
            check_new_implication(&d, "d1role", "other").is_ok(),
            "a domain role may imply a global one"
        );
        assert_eq!(
            status(check_new_implication(&d, "admin", "member")),
            409,
            "duplicate rule"
        );
        let missing = check_new_implication(&d, "nope", "member").unwrap_err();
        assert_eq!(
            (missing.status.as_u16(), missing.message.as_ref()),
            (404, "Could not find role: nope.")
        );
        assert!(check_new_implication(&d, "other", "reader").is_ok());
    }

    #[test]
    fn grants_check_entities_in_keystones_order() {
        let mut d = data();
        let msg = |r: Result<(), ApiError>| {
            let e = r.unwrap_err();
            (e.status.as_u16(), e.message.to_string())
        };
        let a = on_project("ghost", "nowhere", "nothing");
        assert_eq!(
            msg(validate_grant(&d, &a, GrantOp::Create)),
            (404, "Could not find role: nothing.".into())
        );
        let a = on_project("ghost", "nowhere", "member");
        assert_eq!(
            msg(validate_grant(&d, &a, GrantOp::Create)),
            (404, "Could not find user: ghost.".into())
        );
        let a = on_project("u", "nowhere", "member");
        assert_eq!(
            msg(validate_grant(&d, &a, GrantOp::Create)),
            (404, "Could not find project: nowhere.".into())
        );
        let g = Assignment {
            actor: Actor::Group("g".into()),
            target: Target::Domain("d1".into()),
            role_id: "member".into(),
            inherited: true,
        };
        assert_eq!(
            msg(validate_grant(&d, &g, GrantOp::Check)),
            (404, "Could not find group: g.".into())
        );

        // Checks and revocations need the grant; a revocation tolerates a vanished user.
        let a = on_project("u", "p1", "member");
        let none = (404, "Could not find role assignment with role: member, user or group: u, project, domain, or system: p1.".to_string());
        assert_eq!(msg(validate_grant(&d, &a, GrantOp::Check)), none);
        assert!(validate_grant(&d, &a, GrantOp::Create).is_ok());
        grant(&mut d, &a);
        assert!(validate_grant(&d, &a, GrantOp::Check).is_ok());
        let orphan = on_project("gone", "p1", "member");
        grant(&mut d, &orphan);
        assert!(validate_grant(&d, &orphan, GrantOp::Revoke).is_ok());
        assert_eq!(msg(validate_grant(&d, &orphan, GrantOp::Check)).0, 404);
        // Inherited and direct grants are distinct.
        let inherited = Assignment {
            inherited: true,
            ..a.clone()
        };
        assert_eq!(msg(validate_grant(&d, &inherited, GrantOp::Revoke)).0, 404);
    }

    #[test]
    fn domain_specific_roles_stay_in_their_domain() {
        let d = data();
        assert!(validate_grant(&d, &on_project("u", "p1", "d1role"), GrantOp::Create).is_ok());
        let e = validate_grant(&d, &on_project("u", "p2", "d1role"), GrantOp::Create).unwrap_err();
        assert_eq!(e.status.as_u16(), 403);
        assert_eq!(
            e.message,
            "Project p2 must be in the same domain as the role d1role being assigned."
        );
        let on_domain = |dom: &str| Assignment {
            actor: Actor::User("u".into()),
            target: Target::Domain(dom.into()),
            role_id: "d1role".into(),
            inherited: false,
        };
        assert!(validate_grant(&d, &on_domain("d1"), GrantOp::Create).is_ok());
        assert_eq!(
            validate_grant(&d, &on_domain("d2"), GrantOp::Create)
                .unwrap_err()
                .status
                .as_u16(),
            403
        );
        let system = Assignment {
            target: Target::System,
            ..on_domain("d1")
        };
        let e = validate_grant(&d, &system, GrantOp::Create).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(
            e.message,
            "Role d1role is a domain-specific role. Unable to use a domain-specific role in a system assignment."
        );
        let global = Assignment {
            role_id: "reader".into(),
            ..system
        };
        assert!(validate_grant(&d, &global, GrantOp::Create).is_ok());
        let missing = validate_grant(&d, &global, GrantOp::Revoke).unwrap_err();
        assert!(
            missing
                .message
                .ends_with("project, domain, or system: system."),
            "{}",
            missing.message
        );
    }

    #[test]
    fn grant_policy_target_has_keystones_keys() {
        let d = data();
        let t = grant_target(
            &d,
            &Actor::User("u".into()),
            &Target::Project("p1".into()),
            Some("member"),
        );
        assert_eq!(t["target"]["user"]["domain_id"], "d1");
        assert_eq!(t["target"]["project"]["domain_id"], "d1");
        assert_eq!(
            t["target"]["role"]["domain_id"],
            Value::Null,
            "global roles have a null domain"
        );
        assert_eq!(t["target"]["role"]["name"], "member");
        assert_eq!(
            (
                t["user_id"].as_str(),
                t["project_id"].as_str(),
                t["role_id"].as_str()
            ),
            (Some("u"), Some("p1"), Some("member"))
        );
        let t = grant_target(
            &d,
            &Actor::Group("g".into()),
            &Target::Domain("d2".into()),
            Some("d1role"),
        );
        assert_eq!(
            t["target"]["group"],
            json!({}),
            "a missing entity is an empty target"
        );
        assert_eq!(t["target"]["domain"]["id"], "d2");
        assert_eq!(t["target"]["role"]["domain_id"], "d1");
        assert_eq!(
            grant_action(GrantOp::Revoke, &Actor::Group("g".into()), &Target::System),
            "identity:revoke_system_grant_for_group"
        );
        assert_eq!(
            grant_action(
                GrantOp::Check,
                &Actor::User("u".into()),
                &Target::Domain("d".into())
            ),
            "identity:check_grant"
        );
    }

    #[test]
    fn deleting_a_role_takes_its_grants_rules_and_app_creds() {
        let mut d = data();
        grant(&mut d, &on_project("u", "p1", "member"));
        grant(&mut d, &on_project("u", "p1", "reader"));
        let cred = |id: &str, project: &str| AppCred {
            id: id.into(),
            name: id.into(),
            description: None,
            user_id: "u".into(),
            project_id: project.into(),
            secret_hash: String::new(),
            expires_at: None,
            unrestricted: false,
            role_ids: vec![],
        };
        d.app_creds.insert("c1".into(), cred("c1", "p1"));
        d.app_creds.insert("c2".into(), cred("c2", "p2"));
        let member = d.roles["member"].clone();
        let changes = role_deletion(&d, &member);
        d.apply_changes(&changes);
        assert!(!d.roles.contains_key("member"));
        assert_eq!(d.assignments.len(), 1, "only the reader grant is left");
        assert!(
            d.implied
                .values()
                .all(|r| r.prior_role_id != "member" && r.implied_role_id != "member")
        );
        assert_eq!(
            d.implied.len(),
            0,
            "admin->member and member->reader both went"
        );
        assert!(!d.app_creds.contains_key("c1") && d.app_creds.contains_key("c2"));
    }

    /// The CLI's flow over HTTP: role create and lookup, grant, check, list, assignment listing
    /// with names, implied roles, revoke.
    #[tokio::test]
    async fn roles_and_grants_over_http() {
        let h = crate::api::harness::Harness::open("roles-http").await;
        let admin = h.admin().await;
        let demo_user = h.user_id("demo");
        let demo_project = h.project_id("demo");

        let r = h
            .call(
                "POST",
                "/roles",
                Some(&admin),
                Some(json!({"role": {"name": "member2"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let role_id = r.body["role"]["id"].as_str().unwrap().to_string();
        assert_eq!(r.body["role"]["domain_id"], Value::Null);
        assert_eq!(r.body["role"]["options"], json!({}));
        let r = h
            .call(
                "POST",
                "/roles",
                Some(&admin),
                Some(json!({"role": {"name": "member2"}})),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(
            h.call("GET", "/roles/member2", Some(&admin), None)
                .await
                .status,
            404
        );
        let r = h
            .call("GET", "/roles?name=member2", Some(&admin), None)
            .await;
        assert_eq!(r.body["roles"].as_array().unwrap().len(), 1);
        assert!(
            r.body["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with("/v3/roles?name=member2")
        );

        let grant = format!("/projects/{demo_project}/users/{demo_user}/roles/{role_id}");
        let demo = h.demo().await;
        assert_eq!(
            h.call("PUT", &grant, Some(&demo), None).await.status,
            403,
            "a member may not grant"
        );
        assert_eq!(h.call("HEAD", &grant, Some(&admin), None).await.status, 404);
        assert_eq!(h.call("PUT", &grant, Some(&admin), None).await.status, 204);
        assert_eq!(
            h.call("PUT", &grant, Some(&admin), None).await.status,
            204,
            "granting twice is fine"
        );
        assert_eq!(h.call("HEAD", &grant, Some(&admin), None).await.status, 204);
        assert_eq!(h.call("GET", &grant, Some(&admin), None).await.status, 204);
        let r = h
            .call(
                "GET",
                &format!("/projects/{demo_project}/users/{demo_user}/roles"),
                Some(&admin),
                None,
            )
            .await;
        assert!(
            r.body["roles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == role_id.as_str()),
            "{}",
            r.body
        );
        let r = h
            .call(
                "PUT",
                &format!("/projects/{demo_project}/users/{demo_user}/roles/nope"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find role: nope."))
        );

        let r = h
            .call(
                "GET",
                &format!("/role_assignments?include_names=True&user.id={demo_user}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ours = r.body["role_assignments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["role"]["id"] == role_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(ours["role"]["name"], "member2");
        assert_eq!(ours["user"]["name"], "demo");
        assert_eq!(ours["user"]["domain"]["name"], "Default");
        assert_eq!(ours["scope"]["project"]["name"], "demo");
        assert!(
            ours["links"]["assignment"]
                .as_str()
                .unwrap()
                .ends_with(&grant)
        );
        let r = h
            .call(
                "GET",
                "/role_assignments?effective&group.id=x",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 400);

        // member2 implies reader; reader may not imply admin.
        let reader = h.role_id("reader");
        let rule = format!("/roles/{role_id}/implies/{reader}");
        let r = h.call("PUT", &rule, Some(&admin), None).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["role_inference"]["prior_role"]["name"], "member2");
        assert_eq!(r.body["role_inference"]["implies"]["id"], reader.as_str());
        assert_eq!(h.call("HEAD", &rule, Some(&admin), None).await.status, 204);
        let r = h
            .call(
                "PUT",
                &format!("/roles/{reader}/implies/{}", h.role_id("admin")),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 403);
        let r = h.call("GET", "/role_inferences", Some(&admin), None).await;
        assert!(
            r.body["role_inferences"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["prior_role"]["id"] == role_id.as_str())
        );

        // Inherited to the projects of the default domain, and on the system.
        let base = format!("/OS-INHERIT/domains/default/users/{demo_user}/roles");
        let inherited = format!("{base}/{reader}/inherited_to_projects");
        assert_eq!(
            h.call("PUT", &inherited, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("HEAD", &inherited, Some(&admin), None).await.status,
            204
        );
        let r = h
            .call(
                "GET",
                &format!("{base}/inherited_to_projects"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["roles"][0]["id"], reader.as_str(), "{}", r.body);
        let query = format!(
            "/role_assignments?effective&user.id={demo_user}&scope.project.id={demo_project}"
        );
        let r = h.call("GET", &query, Some(&admin), None).await;
        let via_domain = r.body["role_assignments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| {
                a["links"]["assignment"]
                    .as_str()
                    .unwrap()
                    .ends_with(&inherited)
                    && a["scope"]["OS-INHERIT:inherited_to"] == "projects"
            });
        assert!(via_domain, "{}", r.body);
        assert_eq!(
            h.call("DELETE", &inherited, Some(&admin), None)
                .await
                .status,
            204
        );
        let system = format!("/system/users/{demo_user}/roles/{reader}");
        assert_eq!(h.call("PUT", &system, Some(&admin), None).await.status, 204);
        let r = h
            .call(
                "GET",
                &format!("/system/users/{demo_user}/roles"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["roles"][0]["name"], "reader");
        let r = h
            .call(
                "GET",
                "/role_assignments?scope.system=all",
                Some(&admin),
                None,
            )
            .await;
        assert!(
            r.body["role_assignments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["scope"]["system"]["all"] == true)
        );
        assert_eq!(
            h.call("DELETE", &system, Some(&admin), None).await.status,
            204
        );
        assert_eq!(h.call("GET", &system, Some(&admin), None).await.status, 404);

        assert_eq!(
            h.call("DELETE", &grant, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("DELETE", &grant, Some(&admin), None).await.status,
            404
        );
        assert_eq!(
            h.call("DELETE", &format!("/roles/{role_id}"), Some(&admin), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("GET", &rule, Some(&admin), None).await.status,
            404,
            "the rule went with the role"
        );
    }
}
