//! `/v3/auth/*`: token issue, validation and revocation; the catalog and the scopes a token
//! may take.

use super::{AppState, Pairs, links, query_bool};
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::Query,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use ferrostack_api::{ApiError, Auth, AuthContext, JsonBody, Public, Schema};
use ferrostack_fernet::{Scope, TokenPayload, expires_at_from, random_audit_id};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route(
            "/auth/tokens",
            get(validate).head(check).post(issue).delete(revoke),
        )
        .route("/auth/catalog", get(catalog))
        .route("/auth/projects", get(auth_projects))
        .route("/auth/domains", get(auth_domains))
        .route("/auth/system", get(auth_system))
}

static AUTH_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let named = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "domain": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    }});
    Schema::new(json!({
        "type": "object",
        "required": ["auth"],
        "properties": {"auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "password": {"type": "object", "required": ["user"], "properties": {"user": {
                            "type": "object", "required": ["password"],
                            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "password": {"type": "string"},
                                "domain": named["properties"]["domain"].clone()}}}},
                        "token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                        "application_credential": {"type": "object", "required": ["secret"], "properties": {
                            "id": {"type": "string"}, "name": {"type": "string"}, "secret": {"type": "string"},
                            "user": named.clone()}},
                    }
                },
                "scope": {"oneOf": [
                    {"type": "string", "enum": ["unscoped"]},
                    {"type": "object", "properties": {
                        "project": named.clone(),
                        "domain": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
                        "system": {"type": "object", "properties": {"all": {"type": "boolean"}}},
                        "OS-TRUST:trust": {"type": "object"}
                    }}
                ]}
            }
        }}
    }))
});

fn unauthorized() -> ApiError {
    ApiError::unauthorized()
}

/// The user an identity method authenticated, with what the token inherits.
struct Authenticated {
    user_id: String,
    methods: Vec<String>,
    expires_at: Option<f64>,
    parent_audit_id: Option<String>,
    app_cred: Option<AppCred>,
}

/// Finds a user from `{"id"}` or `{"name", "domain": {"id"|"name"}}`.
fn find_user(identity: &Identity, spec: &Value) -> Option<User> {
    let data = identity.read();
    if let Some(id) = spec.get("id").and_then(Value::as_str) {
        return data.users.get(id).cloned();
    }
    let name = spec.get("name")?.as_str()?;
    let domain = spec.get("domain")?;
    let domain_id = match domain.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => data
            .domain_by_name(domain.get("name")?.as_str()?)?
            .id
            .clone(),
    };
    data.user_by_name(&domain_id, name).cloned()
}

async fn password_method(identity: &Identity, spec: &Value) -> Result<Authenticated, ApiError> {
    let password = spec["password"].as_str().unwrap_or_default().to_string();
    let user = find_user(identity, spec).ok_or_else(unauthorized)?;
    let config = &identity.config().identity;
    let now = chrono::Utc::now();
    if crate::password::is_locked_out(&user, config, now) {
        return Err(ApiError::unauthorized_msg(format!(
            "The account is locked for user: {}.",
            user.id
        )));
    }
    let hash = user.password_hash.clone().unwrap_or_default();
    let ok = !hash.is_empty() && crate::password::verify(password, hash).await;
    if !ok {
        crate::api::users::record_failed_auth(identity, &user.id).await;
        return Err(unauthorized());
    }
    if !user.enabled
        || !identity
            .read()
            .domains
            .get(&user.domain_id)
            .is_some_and(|d| d.enabled)
    {
        return Err(unauthorized());
    }
    if crate::password::is_expired(&user, now) {
        return Err(ApiError::unauthorized_msg(format!(
            "The password is expired and needs to be changed for user: {}.",
            user.id
        )));
    }
    if user.failed_auth_count > 0 {
        crate::api::users::reset_failed_auth(identity, &user.id).await;
    }
    Ok(Authenticated {
        user_id: user.id,
        methods: vec!["password".into()],
        expires_at: None,
        parent_audit_id: None,
        app_cred: None,
    })
}

fn token_method(identity: &Identity, spec: &Value) -> Result<Authenticated, ApiError> {
    let token = spec["id"].as_str().unwrap_or_default();
    let ctx = identity
        .validate_token(token)
        .map_err(|_| ApiError::not_found("Could not find token."))?;
    if ctx.application_credential.is_some() {
        return Err(ApiError::forbidden(
            "Application credentials cannot request a token rescope.",
        ));
    }
    let mut methods = ctx.methods.clone();
    if !methods.iter().any(|m| m == "token") {
        methods.push("token".into());
    }
    Ok(Authenticated {
        user_id: ctx.user.id.clone(),
        methods,
        expires_at: Some(ctx.expires_at_unix),
        parent_audit_id: ctx.audit_ids.last().cloned(),
        app_cred: None,
    })
}

async fn app_cred_method(identity: &Identity, spec: &Value) -> Result<Authenticated, ApiError> {
    let secret = spec["secret"].as_str().unwrap_or_default().to_string();
    let cred = {
        let data = identity.read();
        match spec.get("id").and_then(Value::as_str) {
            Some(id) => data.app_creds.get(id).cloned(),
            None => {
                drop(data);
                let user = spec
                    .get("user")
                    .and_then(|u| find_user(identity, u))
                    .ok_or_else(unauthorized)?;
                let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                identity
                    .read()
                    .app_creds
                    .values()
                    .find(|c| c.user_id == user.id && c.name == name)
                    .cloned()
            }
        }
    }
    .ok_or_else(unauthorized)?;
    if !crate::password::verify(secret, cred.secret_hash.clone()).await {
        return Err(unauthorized());
    }
    if cred
        .expires_at
        .as_deref()
        .and_then(crate::password::parse_time)
        .is_some_and(|t| t <= chrono::Utc::now())
    {
        return Err(ApiError::unauthorized_msg(
            "The application credential has expired.",
        ));
    }
    Ok(Authenticated {
        user_id: cred.user_id.clone(),
        methods: vec!["application_credential".into()],
        expires_at: cred
            .expires_at
            .as_deref()
            .and_then(crate::password::parse_time)
            .map(|t| t.timestamp() as f64),
        parent_audit_id: None,
        app_cred: Some(cred),
    })
}

/// Resolves the requested scope to a payload scope.
fn resolve_scope(
    identity: &Identity,
    auth: &Value,
    who: &Authenticated,
) -> Result<Scope, ApiError> {
    if let Some(cred) = &who.app_cred {
        return Ok(Scope::ApplicationCredential {
            project_id: cred.project_id.clone(),
            app_cred_id: cred.id.clone(),
        });
    }
    let data = identity.read();
    let scope = auth.get("scope");
    let Some(scope) = scope.filter(|s| s.is_object()) else {
        if scope.is_none() {
            // Keystone scopes to the default project when the user has a role there.
            if let Some(pid) = data
                .users
                .get(&who.user_id)
                .and_then(|u| u.default_project_id.clone())
                && data.projects.get(&pid).is_some_and(|p| p.enabled)
                && !data
                    .roles_for(&who.user_id, &Target::Project(pid.clone()))
                    .is_empty()
            {
                return Ok(Scope::Project(pid));
            }
        }
        return Ok(Scope::Unscoped);
    };
    if let Some(project) = scope.get("project") {
        let found = match project.get("id").and_then(Value::as_str) {
            Some(id) => data.projects.get(id),
            None => {
                let name = project
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let domain = project.get("domain").ok_or_else(|| {
                    ApiError::bad_request("A project scoped by name needs a domain.")
                })?;
                let domain_id = match domain.get("id").and_then(Value::as_str) {
                    Some(id) => Some(id.to_string()),
                    None => domain
                        .get("name")
                        .and_then(Value::as_str)
                        .and_then(|n| data.domain_by_name(n))
                        .map(|d| d.id.clone()),
                };
                domain_id.and_then(|d| data.project_by_name(&d, name))
            }
        };
        let project = found.ok_or_else(|| {
            ApiError::unauthorized_msg("Could not find project for the requested scope.")
        })?;
        if !project.enabled {
            return Err(ApiError::unauthorized_msg(format!(
                "Project {} is disabled.",
                project.id
            )));
        }
        if data
            .roles_for(&who.user_id, &Target::Project(project.id.clone()))
            .is_empty()
        {
            return Err(ApiError::unauthorized_msg(format!(
                "User {} has no access to project {}",
                who.user_id, project.id
            )));
        }
        return Ok(Scope::Project(project.id.clone()));
    }
    if let Some(domain) = scope.get("domain") {
        let found = match domain.get("id").and_then(Value::as_str) {
            Some(id) => data.domains.get(id),
            None => domain
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| data.domain_by_name(n)),
        };
        let domain = found.ok_or_else(|| {
            ApiError::unauthorized_msg("Could not find domain for the requested scope.")
        })?;
        if data
            .roles_for(&who.user_id, &Target::Domain(domain.id.clone()))
            .is_empty()
        {
            return Err(ApiError::unauthorized_msg(format!(
                "User {} has no access to domain {}",
                who.user_id, domain.id
            )));
        }
        return Ok(Scope::Domain(domain.id.clone()));
    }
    if scope.get("system").is_some() {
        if data.roles_for(&who.user_id, &Target::System).is_empty() {
            return Err(ApiError::unauthorized_msg(format!(
                "User {} has no access to the system",
                who.user_id
            )));
        }
        return Ok(Scope::System("all".into()));
    }
    if scope.get("OS-TRUST:trust").is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Trusts are not supported.",
        ));
    }
    Ok(Scope::Unscoped)
}

/// `POST /v3/auth/tokens`
async fn issue(
    _: Public,
    State(identity): AppState,
    Query(query): Pairs,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    AUTH_SCHEMA.validate(&body)?;
    let auth = &body["auth"];
    let id = &auth["identity"];
    let methods: Vec<&str> = id["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let who = match methods.as_slice() {
        ["password"] => password_method(&identity, &id["password"]["user"]).await?,
        ["token"] => token_method(&identity, &id["token"])?,
        ["application_credential"] => {
            app_cred_method(&identity, &id["application_credential"]).await?
        }
        other => {
            return Err(ApiError::unauthorized_msg(format!(
                "Unsupported authentication method(s): {}",
                other.join(", ")
            )));
        }
    };
    if id.get(methods[0]).is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'auth/identity': '{}' is a required property",
            methods[0]
        )));
    }
    let scope = resolve_scope(&identity, auth, &who)?;
    let ttl = Duration::from_secs(identity.config().identity.token_expiration);
    let mut expires_at = expires_at_from(SystemTime::now(), ttl);
    if let Some(limit) = who.expires_at {
        expires_at = expires_at.min(limit);
    }
    let mut audit_ids = vec![random_audit_id()];
    audit_ids.extend(who.parent_audit_id);
    let project_id = match &scope {
        Scope::Project(p) | Scope::ApplicationCredential { project_id: p, .. } => Some(p.clone()),
        _ => None,
    };
    identity
        .wait_past_revocations(&who.user_id, project_id.as_deref())
        .await;
    let payload = TokenPayload {
        user_id: who.user_id,
        methods: who.methods,
        scope,
        expires_at,
        audit_ids,
    };
    let (token, ctx) = identity.issue_token(payload)?;
    let with_catalog = !query_bool(&query, "nocatalog").unwrap_or(false);
    let body = super::token_body::render(&identity, &ctx, with_catalog);
    let mut response = json_bytes(StatusCode::CREATED, body);
    let header = HeaderValue::from_str(&token).map_err(ApiError::internal)?;
    response.headers_mut().insert("x-subject-token", header);
    Ok(response)
}

/// The subject token of a validation request (404 when it is missing or invalid).
fn subject(identity: &Identity, headers: &HeaderMap) -> Result<Arc<AuthContext>, ApiError> {
    let token = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("X-Subject-Token is required."))?;
    identity
        .validate_token(token)
        .map_err(|_| ApiError::not_found("Could not find token."))
}

fn token_target(subject: &AuthContext) -> Value {
    json!({"target": {"token": {"user_id": subject.user.id}}})
}

/// `GET /v3/auth/tokens`
async fn validate(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // As Keystone: an invalid subject token is a 404 before any policy decision.
    let subject = subject(&identity, &headers)?;
    auth.enforce("identity:validate_token", &token_target(&subject))?;
    let with_catalog = !query_bool(&query, "nocatalog").unwrap_or(false);
    let mut response = json_bytes(
        StatusCode::OK,
        super::token_body::render(&identity, &subject, with_catalog),
    );
    response.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&subject.token).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// `HEAD /v3/auth/tokens`
async fn check(
    State(identity): AppState,
    auth: Auth,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    // As Keystone: an invalid subject token is a 404 before any policy decision.
    let subject = subject(&identity, &headers)?;
    auth.enforce("identity:check_token", &token_target(&subject))?;
    Ok(StatusCode::OK)
}

/// `DELETE /v3/auth/tokens`: revokes the subject token (its own audit id).
async fn revoke(
    State(identity): AppState,
    auth: Auth,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    // As Keystone: an invalid subject token is a 404 before any policy decision.
    let subject = subject(&identity, &headers)?;
    auth.enforce("identity:revoke_token", &token_target(&subject))?;
    let audit_id = subject.audit_ids.first().cloned().unwrap_or_default();
    let event = Revocation::now(Revoke::Token(&audit_id));
    identity
        .write(vec![crate::data::Change::put(&event)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The service catalog as a JSON value (cached per change of the identity data).
pub fn catalog_body(identity: &Identity) -> Value {
    serde_json::from_str(identity.catalog_json().get()).unwrap_or(Value::Array(Vec::new()))
}

/// A JSON response from already-rendered bytes.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /v3/auth/catalog`
async fn catalog(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_auth_catalog", &json!({}))?;
    if auth.project.is_none() && auth.domain.is_none() && auth.system_scope.is_none() {
        return Err(ApiError::forbidden(
            "A scoped token is required to get the catalog.",
        ));
    }
    Ok(Json(
        json!({"catalog": catalog_body(&identity), "links": links(&identity, "auth/catalog")}),
    ))
}

/// `GET /v3/auth/projects`: projects the caller has a role on.
async fn auth_projects(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_auth_projects", &json!({}))?;
    let data = identity.read();
    let mut projects: Vec<Value> = data
        .projects
        .values()
        .filter(|p| {
            p.enabled
                && !data
                    .roles_for(&auth.user.id, &Target::Project(p.id.clone()))
                    .is_empty()
        })
        .map(|p| super::projects::project_json(&identity, p))
        .collect();
    projects.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(
        json!({"projects": projects, "links": super::collection_links(&identity, "auth/projects")}),
    ))
}

/// `GET /v3/auth/domains`: domains the caller has a role on.
async fn auth_domains(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_auth_domains", &json!({}))?;
    let data = identity.read();
    let domains: Vec<Value> = data
        .domains
        .values()
        .filter(|d| {
            d.enabled
                && !data
                    .roles_for(&auth.user.id, &Target::Domain(d.id.clone()))
                    .is_empty()
        })
        .map(|d| super::domains::domain_json(&identity, d))
        .collect();
    Ok(Json(
        json!({"domains": domains, "links": super::collection_links(&identity, "auth/domains")}),
    ))
}

/// `GET /v3/auth/system`
async fn auth_system(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_auth_system", &json!({}))?;
    let has = !identity
        .read()
        .roles_for(&auth.user.id, &Target::System)
        .is_empty();
    let system: Vec<Value> = if has {
        vec![json!({"all": true})]
    } else {
        vec![]
    };
    Ok(Json(
        json!({"system": system, "links": links(&identity, "auth/system")}),
    ))
}
