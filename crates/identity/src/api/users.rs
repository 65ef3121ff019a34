//! `/v3/users` (with self-service password change and the user's projects)

use super::{
    AppState, Pairs, collection_links, enabled_matches, extra_from, links, member, name_matches,
    new_id, not_found, query_value, with_extra,
};
use crate::data::Change;
use crate::model::*;
use crate::password;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::Query,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Public, Schema};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{user_id}", get(show).patch(update).delete(remove))
        .route("/users/{user_id}/password", post(change_password))
        .route("/users/{user_id}/projects", get(user_projects))
}

fn user_schema(create: bool) -> Schema {
    let mut inner = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"},
            "domain_id": {"type": "string"},
            "default_project_id": {"type": ["string", "null"]},
            "description": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "password": {"type": ["string", "null"], "maxLength": 4096},
            "email": {"type": ["string", "null"]},
            "options": {"type": "object"}
        }
    });
    if create {
        inner["required"] = json!(["name"]);
    } else {
        inner["minProperties"] = json!(1);
    }
    Schema::new(json!({"type": "object", "required": ["user"], "properties": {"user": inner}}))
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| user_schema(true));
static UPDATE: LazyLock<Schema> = LazyLock::new(|| user_schema(false));
static CHANGE_PASSWORD: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "required": ["user"], "properties": {"user": {
        "type": "object", "required": ["original_password", "password"],
        "properties": {"original_password": {"type": "string"}, "password": {"type": "string", "maxLength": 4096}}}}}),
    )
});

const CORE: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "default_project_id",
    "description",
    "enabled",
    "password",
    "options",
    "links",
    "password_expires_at",
];

/// Keystone's JSON of a user (never the password).
pub fn user_json(identity: &Identity, u: &User) -> Value {
    let mut body = json!({
        "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
        "password_expires_at": u.password_expires_at, "options": u.options,
        "links": links(identity, &format!("users/{}", u.id)),
    });
    if let Some(p) = &u.default_project_id {
        body["default_project_id"] = json!(p);
    }
    if let Some(d) = &u.description {
        body["description"] = json!(d);
    }
    with_extra(body, &u.extra)
}

/// The policy target of a user.
pub fn target(u: &User) -> Value {
    json!({"target": {"user": {"id": u.id, "domain_id": u.domain_id, "name": u.name}}, "user_id": u.id})
}

/// The user `id` (404 if absent).
pub fn find(identity: &Identity, id: &str) -> Result<User, ApiError> {
    identity
        .read()
        .users
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("user", id))
}

/// Counts a failed password authentication (for lockout).
pub async fn record_failed_auth(identity: &Identity, user_id: &str) {
    if identity.config().identity.lockout_failure_attempts == 0 {
        return;
    }
    let Some(mut user) = identity.read().users.get(user_id).cloned() else {
        return;
    };
    user.failed_auth_count += 1;
    user.failed_auth_at = Some(crate::format_time(chrono::Utc::now()));
    if let Err(e) = identity.write(vec![Change::put(&user)]).await {
        tracing::error!(error = %e, "recording a failed authentication");
    }
}

/// Clears the failure count after a successful authentication.
pub async fn reset_failed_auth(identity: &Identity, user_id: &str) {
    let Some(mut user) = identity.read().users.get(user_id).cloned() else {
        return;
    };
    user.failed_auth_count = 0;
    user.failed_auth_at = None;
    if let Err(e) = identity.write(vec![Change::put(&user)]).await {
        tracing::error!(error = %e, "resetting failed authentications");
    }
}

/// Sets a new password: hash, history, expiry; returns the updated user. The history rule
/// applies to a user's own change (`self_service`), not to an administrator's reset, as Keystone.
pub async fn set_password(
    identity: &Identity,
    mut user: User,
    new: &str,
    self_service: bool,
) -> Result<User, ApiError> {
    let config = &identity.config().identity;
    password::check_complexity(new, config)?;
    if self_service {
        password::check_history(&user, new, config).await?;
    }
    let now = chrono::Utc::now();
    if let Some(old) = user.password_hash.take() {
        user.password_history.insert(0, old);
        user.password_history
            .truncate(config.unique_last_password_count.max(1) as usize);
    }
    user.password_hash = Some(password::hash(new.to_string(), config.password_hash_rounds).await?);
    user.password_created_at = Some(crate::format_time(now));
    user.password_expires_at = password::expiry_for_new_password(&user, config, now);
    user.failed_auth_count = 0;
    user.failed_auth_at = None;
    Ok(user)
}

/// A revocation of every token of `user_id` issued until now.
pub fn revoke_user_tokens(user_id: &str) -> Change {
    Change::put(&Revocation::now(Revoke::User(user_id)))
}

async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let domain_filter = query_value(&query, "domain_id").map(String::from);
    auth.enforce(
        "identity:list_users",
        &super::filter_target(&[("domain_id", domain_filter.as_deref())]),
    )?;
    let data = identity.read();
    let mut users: Vec<&User> = data
        .users
        .values()
        .filter(|u| domain_filter.as_ref().is_none_or(|d| &u.domain_id == d))
        .filter(|u| name_matches(&query, &u.name) && enabled_matches(&query, u.enabled))
        .filter(|u| {
            auth.has_role("admin")
                || auth.system_scope.is_some()
                || auth.domain.as_ref().is_none_or(|d| d.id == u.domain_id)
        })
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let body: Vec<Value> = users.into_iter().map(|u| user_json(&identity, u)).collect();
    Ok(Json(
        json!({"users": body, "links": collection_links(&identity, "users")}),
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
        .unwrap_or_else(|_| json!({"target": {"user": {"id": id}}}));
    auth.enforce("identity:get_user", &t)?;
    Ok(Json(json!({"user": user_json(&identity, &found?)})))
}

async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "user")?;
    let domain_id = b
        .get("domain_id")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
        .or_else(|| auth.project_domain.as_ref().map(|d| d.id.clone()))
        .unwrap_or_else(|| "default".into());
    let mut user = User {
        id: new_id(),
        name: b["name"].as_str().unwrap_or_default().to_string(),
        domain_id,
        enabled: b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        default_project_id: b
            .get("default_project_id")
            .and_then(Value::as_str)
            .map(String::from),
        description: b
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        extra: extra_from(b, CORE),
        options: b
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        password_hash: None,
        password_created_at: None,
        password_expires_at: None,
        password_history: Vec::new(),
        failed_auth_count: 0,
        failed_auth_at: None,
        created_at: Some(crate::format_time(chrono::Utc::now())),
        last_active_at: None,
    };
    auth.enforce("identity:create_user", &target(&user))?;
    {
        let data = identity.read();
        if !data.domains.contains_key(&user.domain_id) {
            return Err(not_found("domain", &user.domain_id));
        }
        if data.user_by_name(&user.domain_id, &user.name).is_some() {
            return Err(ApiError::conflict(format!(
                "Conflict occurred attempting to store user - Duplicate entry found with name {} at domain ID {}.",
                user.name, user.domain_id
            )));
        }
    }
    if let Some(pw) = b.get("password").and_then(Value::as_str) {
        user = set_password(&identity, user, pw, false).await?;
    }
    identity.write(vec![Change::put(&user)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": user_json(&identity, &user)})),
    ))
}

async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut user = find(&identity, &id)?;
    auth.enforce("identity:update_user", &target(&user))?;
    UPDATE.validate(&body)?;
    let b = member(&body, "user")?;
    if b.get("domain_id")
        .and_then(Value::as_str)
        .is_some_and(|d| d != user.domain_id)
    {
        return Err(ApiError::bad_request(
            "Update of `domain_id` is not allowed.",
        ));
    }
    let mut changes = Vec::new();
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        user.name = name.to_string();
    }
    if let Some(v) = b.get("enabled").and_then(Value::as_bool) {
        // Disabling revokes the user's tokens for good, as Keystone (re-enabling does not
        // bring them back).
        if user.enabled && !v {
            changes.push(revoke_user_tokens(&user.id));
        }
        user.enabled = v;
    }
    if let Some(v) = b.get("default_project_id") {
        user.default_project_id = v.as_str().map(String::from);
    }
    if let Some(v) = b.get("description") {
        user.description = v.as_str().map(String::from);
    }
    if let Some(v) = b.get("options").and_then(Value::as_object) {
        for (k, val) in v {
            if val.is_null() {
                user.options.remove(k);
            } else {
                user.options.insert(k.clone(), val.clone());
            }
        }
    }
    user.extra.extend(extra_from(b, CORE));
    if let Some(pw) = b.get("password").and_then(Value::as_str) {
        user = set_password(&identity, user, pw, false).await?;
        changes.push(revoke_user_tokens(&user.id));
    }
    changes.insert(0, Change::put(&user));
    identity.write(changes).await?;
    Ok(Json(json!({"user": user_json(&identity, &user)})))
}

async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = find(&identity, &id)?;
    auth.enforce("identity:delete_user", &target(&user))?;
    let changes = {
        let data = identity.read();
        let mut changes = vec![Change::delete(&user)];
        changes.extend(crate::cascade::user(&data, &id));
        changes
    };
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: self-service change, authenticated by the original password
/// (no token needed, so a user with an expired password can change it).
async fn change_password(
    _: Public,
    State(identity): AppState,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    CHANGE_PASSWORD.validate(&body)?;
    let original = body["user"]["original_password"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let new = body["user"]["password"].as_str().unwrap_or_default();
    let user = identity
        .read()
        .users
        .get(&id)
        .cloned()
        .ok_or_else(ApiError::unauthorized)?;
    let config = &identity.config().identity;
    let now = chrono::Utc::now();
    if password::is_locked_out(&user, config, now) {
        return Err(ApiError::unauthorized_msg(format!(
            "The account is locked for user: {}.",
            user.id
        )));
    }
    let hash = user.password_hash.clone().unwrap_or_default();
    if hash.is_empty() || !password::verify(original, hash).await {
        record_failed_auth(&identity, &id).await;
        return Err(ApiError::unauthorized());
    }
    password::check_minimum_age(&user, config, now)?;
    let user = set_password(&identity, user, new, true).await?;
    identity
        .write(vec![Change::put(&user), revoke_user_tokens(&user.id)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/users/{id}/projects`: projects the user has a role on.
async fn user_projects(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let user = find(&identity, &id);
    let t = user
        .as_ref()
        .map(target)
        .unwrap_or_else(|_| json!({"target": {"user": {"id": id}}}));
    auth.enforce("identity:list_user_projects", &t)?;
    let user = user?;
    let data = identity.read();
    let mut projects: Vec<&Project> = data
        .projects
        .values()
        .filter(|p| {
            !data
                .roles_for(&user.id, &Target::Project(p.id.clone()))
                .is_empty()
        })
        .filter(|p| name_matches(&query, &p.name) && enabled_matches(&query, p.enabled))
        .collect();
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let body: Vec<Value> = projects
        .into_iter()
        .map(|p| super::projects::project_json(&identity, p))
        .collect();
    Ok(Json(
        json!({"projects": body, "links": collection_links(&identity, &format!("users/{id}/projects"))}),
    ))
}
