//! `/v3/users/{user_id}/application_credentials`
//!
//! An application credential is bound to the project of the token that created it and delegates
//! a subset of the creator's roles there. Its secret is shown once, in the create response; only
//! a bcrypt hash is kept. Authenticating with one is `api/auth.rs`'s business.

use super::{AppState, Pairs, collection_links, links, member, name_matches, new_id, not_found};
use crate::data::Change;
use crate::model::*;
use crate::password;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::Query,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route(
            "/users/{user_id}/application_credentials",
            get(list).post(create),
        )
        .route(
            "/users/{user_id}/application_credentials/{application_credential_id}",
            get(show).delete(remove),
        )
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let id_string =
        json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-zA-Z0-9-]+$"});
    let name = json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "[\\S]+"});
    Schema::new(json!({
        "type": "object", "required": ["application_credential"], "additionalProperties": false,
        "properties": {"application_credential": {
            "type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {
                "id": {"type": "string"},
                "secret": {"type": ["string", "null"]},
                "name": name,
                "description": {"type": ["string", "null"]},
                "expires_at": {"type": ["string", "null"]},
                "project_id": {"type": "string"},
                "unrestricted": {"type": ["boolean", "null"]},
                "system": {"type": ["string", "null"]},
                "access_rules": {"type": "array", "items": {"type": "object", "properties": {
                    "id": id_string,
                    "path": {"type": "string", "minLength": 0, "maxLength": 225, "pattern": "^/\\.*"},
                    "service": id_string,
                    "method": {"type": "string", "enum": ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]}
                }}},
                "roles": {"type": "array", "items": {
                    "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
                    "properties": {"id": id_string, "name": name}
                }}
            }
        }}
    }))
});

/// Keystone's suffix of its validation errors.
const CLIENT_ERROR: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";

/// `ApplicationCredentialValidationError`
fn invalid(detail: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid application credential: {detail}"))
}

/// Keystone's `ForbiddenAction` with a sentence for an action.
fn forbidden_action(action: &str) -> ApiError {
    ApiError::forbidden(format!(
        "You are not authorized to perform the requested action: {action}"
    ))
}

/// Keystone's JSON of an application credential (never the secret or its hash).
pub fn app_cred_json(identity: &Identity, c: &AppCred) -> Value {
    let data = identity.read();
    let roles: Vec<Value> = c
        .role_ids
        .iter()
        .filter_map(|id| data.roles.get(id))
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description, "options": r.options}))
        .collect();
    // Shown as Keystone's naive UTC datetimes (`2026-02-27T18:30:59.000000`).
    let expires_at = c
        .expires_at
        .as_deref()
        .and_then(password::parse_time)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
    json!({
        "id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
        "project_id": c.project_id, "system": null, "expires_at": expires_at, "unrestricted": c.unrestricted,
        "roles": roles, "access_rules": [],
        "links": links(identity, &format!("users/{}/application_credentials/{}", c.user_id, c.id)),
    })
}

/// Keystone's `parse_expiration_date`: ISO 8601, UTC unless stated, not in the past.
fn parse_expiration(text: &str) -> Result<DateTime<Utc>, ApiError> {
    let bad = || ApiError::bad_request(format!("Timestamp not in expected format. {CLIENT_ERROR}"));
    let zoned = if text.ends_with('Z') {
        text.to_string()
    } else {
        format!("{text}Z")
    };
    let parsed = DateTime::parse_from_rfc3339(&zoned)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            let naive = zoned.strip_suffix('Z')?;
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(naive, f).ok())
            .or_else(|| {
                NaiveDate::parse_from_str(naive, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map(|t| t.and_utc())
        });
    let at = parsed.ok_or_else(bad)?;
    if at < Utc::now() {
        return Err(ApiError::bad_request(format!(
            "The 'expires_at' must not be before now. {CLIENT_ERROR}"
        )));
    }
    Ok(at)
}

/// 64 random bytes in urlsafe base64 without padding (86 characters), as Keystone's
/// `_generate_secret`. The bytes come from v4 UUIDs (the OS CSPRNG), skipping the two bytes of
/// each that carry the fixed version and variant bits.
fn generate_secret() -> String {
    let mut bytes = Vec::with_capacity(70);
    while bytes.len() < 64 {
        let uuid = uuid::Uuid::new_v4();
        bytes.extend(
            uuid.as_bytes()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 6 && *i != 8)
                .map(|(_, b)| *b),
        );
    }
    bytes.truncate(64);
    base64_url(&bytes)
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The target Keystone builds for one application credential: its owner's id, so that
/// `rule:owner` cannot be passed by naming oneself in the path.
fn cred_target(cred: Option<&AppCred>, path_user: &str) -> Value {
    match cred {
        Some(c) => json!({"user_id": c.user_id, "target": {"user_id": c.user_id}}),
        None => json!({"user_id": path_user}),
    }
}

/// Keystone's `_check_unrestricted_application_credential`.
fn check_unrestricted(auth: &Auth) -> Result<(), ApiError> {
    if auth
        .application_credential
        .as_ref()
        .is_some_and(|(_, _, restricted)| *restricted)
    {
        return Err(forbidden_action(
            "Using method 'application_credential' is not allowed for managing additional application credentials.",
        ));
    }
    Ok(())
}

/// `GET /v3/users/{user_id}/application_credentials` (filter `name`)
async fn list(
    State(identity): AppState,
    auth: Auth,
    Path(user_id): Path<String>,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:list_application_credentials",
        &json!({"user_id": user_id}),
    )?;
    let mut creds: Vec<AppCred> = identity
        .read()
        .app_creds
        .values()
        .filter(|c| c.user_id == user_id && name_matches(&query, &c.name))
        .cloned()
        .collect();
    creds.sort_by(|a, b| a.name.cmp(&b.name));
    let body: Vec<Value> = creds.iter().map(|c| app_cred_json(&identity, c)).collect();
    let path = format!("users/{user_id}/application_credentials");
    Ok(Json(
        json!({"application_credentials": body, "links": collection_links(&identity, &path)}),
    ))
}

/// The role ids a new credential delegates: the requested ones (by id or global-role name) with
/// what they imply, all of which the token must carry; or else every role of the token.
fn delegated_roles(
    identity: &Identity,
    auth: &Auth,
    requested: Option<&Vec<Value>>,
) -> Result<Vec<String>, ApiError> {
    let token_roles: Vec<String> = auth.roles.iter().map(|r| r.id.clone()).collect();
    let Some(requested) = requested.filter(|r| !r.is_empty()) else {
        return Ok(token_roles);
    };
    let data = identity.read();
    let mut roles: Vec<String> = Vec::new();
    for r in requested {
        let id = match (
            r.get("id").and_then(Value::as_str),
            r.get("name").and_then(Value::as_str),
        ) {
            (Some(id), _) => id.to_string(),
            (None, Some(name)) => {
                let role = data
                    .role_by_name(name)
                    .ok_or_else(|| ApiError::not_found(format!("Role {name} is not defined")))?;
                role.id.clone()
            }
            (None, None) => return Err(invalid("a role needs an id or a name")),
        };
        if !roles.contains(&id) {
            roles.push(id);
        }
    }
    for id in roles.clone() {
        for implied in data.implied_by(&id) {
            if !roles.contains(&implied) {
                roles.push(implied);
            }
        }
    }
    if roles.iter().any(|r| !token_roles.contains(r)) {
        return Err(invalid(
            "Cannot create an application credential with unassigned role",
        ));
    }
    Ok(roles)
}

/// `POST /v3/users/{user_id}/application_credentials`
async fn create(
    State(identity): AppState,
    auth: Auth,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    auth.enforce(
        "identity:create_application_credential",
        &json!({"user_id": user_id}),
    )?;
    check_unrestricted(&auth)?;
    if auth.user.id != user_id {
        return Err(forbidden_action(
            "Cannot create an application credential for another user.",
        ));
    }
    // The policy's scope types already demand a project-scoped token; without scope enforcement
    // there is still no project to bind the credential to.
    let project_id = auth
        .project_id()
        .map(String::from)
        .ok_or_else(|| forbidden_action("identity:create_application_credential."))?;
    let b = member(&body, "application_credential")?;
    let secret = b
        .get("secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(generate_secret);
    let role_ids = delegated_roles(&identity, &auth, b.get("roles").and_then(Value::as_array))?;
    let expires_at = match b
        .get("expires_at")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(text) => Some(crate::format_time(parse_expiration(text)?)),
        None => None,
    };
    if b.get("access_rules")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        return Err(invalid("access rules are not supported."));
    }
    let name = b["name"].as_str().unwrap_or_default().to_string();
    {
        let data = identity.read();
        // The user must (still) hold every delegated role on the project.
        let held = data.roles_for(&user_id, &Target::Project(project_id.clone()));
        if let Some(missing) = role_ids.iter().find(|r| !held.contains(r)) {
            return Err(invalid(&format!(
                "Could not find role assignment with role: {missing}, user or group: {user_id}, project, domain, or system: {project_id}."
            )));
        }
        if data
            .app_creds
            .values()
            .any(|c| c.user_id == user_id && c.name == name)
        {
            return Err(ApiError::conflict(format!(
                "Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."
            )));
        }
    }
    let cred = AppCred {
        id: new_id(),
        name,
        description: b
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        user_id,
        project_id,
        secret_hash: password::hash(
            secret.clone(),
            identity.config().identity.password_hash_rounds,
        )
        .await?,
        expires_at,
        unrestricted: b
            .get("unrestricted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        role_ids,
    };
    identity.write(vec![Change::put(&cred)]).await?;
    let mut body = app_cred_json(&identity, &cred);
    body["secret"] = json!(secret);
    Ok((
        StatusCode::CREATED,
        Json(json!({"application_credential": body})),
    ))
}

/// `GET /v3/users/{user_id}/application_credentials/{id}`
async fn show(
    State(identity): AppState,
    auth: Auth,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let cred = identity.read().app_creds.get(&id).cloned();
    auth.enforce(
        "identity:get_application_credential",
        &cred_target(cred.as_ref(), &user_id),
    )?;
    let cred = cred.ok_or_else(|| not_found("Application Credential", &id))?;
    Ok(Json(
        json!({"application_credential": app_cred_json(&identity, &cred)}),
    ))
}

/// `DELETE /v3/users/{user_id}/application_credentials/{id}` (tokens made from it stop
/// validating, since validation looks the credential up).
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let cred = identity.read().app_creds.get(&id).cloned();
    auth.enforce(
        "identity:delete_application_credential",
        &cred_target(cred.as_ref(), &user_id),
    )?;
    check_unrestricted(&auth)?;
    let cred = cred.ok_or_else(|| not_found("Application Credential", &id))?;
    identity.write(vec![Change::delete(&cred)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::{base64_url, generate_secret, parse_expiration};
    use crate::api::harness::Harness;
    use serde_json::json;

    #[test]
    fn secrets_and_timestamps() {
        assert_eq!(base64_url(b"\xfb\xff"), "-_8");
        assert_eq!(
            base64_url(b"any carnal pleasure."),
            "YW55IGNhcm5hbCBwbGVhc3VyZS4"
        );
        let s = generate_secret();
        assert_eq!(s.len(), 86);
        assert_ne!(s, generate_secret());
        assert!(parse_expiration("2999-01-02T03:04:05").is_ok());
        assert!(parse_expiration("2999-01-02T03:04:05.123456Z").is_ok());
        assert!(parse_expiration("2999-01-02").is_ok());
        let past = parse_expiration("2000-01-01T00:00:00Z").unwrap_err();
        assert!(
            past.message
                .starts_with("The 'expires_at' must not be before now.")
        );
        let bad = parse_expiration("tomorrow").unwrap_err();
        assert!(bad.message.starts_with("Timestamp not in expected format."));
    }

    async fn issue(
        h: &Harness,
        spec: serde_json::Value,
    ) -> (u16, Option<String>, serde_json::Value) {
        let body = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": spec}}});
        let r = h.call("POST", "/auth/tokens", None, Some(body)).await;
        (r.status, r.headers.get("x-subject-token").cloned(), r.body)
    }

    #[tokio::test]
    async fn create_show_list_delete() {
        let h = Harness::open("app-creds-crud").await;
        let demo_id = h.user_id("demo");
        let demo_project = h.project_id("demo");
        let demo = h.demo().await;
        let admin = h.admin().await;
        let base = format!("/users/{demo_id}/application_credentials");

        let r = h.call("POST", &base, Some(&demo), Some(json!({"application_credential": {"name": "monitoring", "description": "for monitoring", "expires_at": "2999-02-27T18:30:59.999999Z"}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let c = r.body["application_credential"].clone();
        let id = c["id"].as_str().unwrap().to_string();
        assert_eq!(c["secret"].as_str().unwrap().len(), 86);
        assert_eq!(
            (c["name"].as_str(), c["description"].as_str()),
            (Some("monitoring"), Some("for monitoring"))
        );
        assert_eq!(c["project_id"], json!(demo_project));
        assert_eq!(c["user_id"], json!(demo_id));
        assert_eq!(c["expires_at"], "2999-02-27T18:30:59.999999");
        assert_eq!(c["unrestricted"], false);
        assert_eq!(c["access_rules"], json!([]));
        let roles: Vec<&str> = c["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"member") && roles.contains(&"reader"),
            "{roles:?}"
        );
        assert!(
            c["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/users/{demo_id}/application_credentials/{id}"))
        );
        let stored = h
            .identity
            .read()
            .app_creds
            .get(&id)
            .unwrap()
            .secret_hash
            .clone();
        assert!(stored.starts_with("$2"), "only a bcrypt hash is stored");

        let r = h
            .call("GET", &format!("{base}/{id}"), Some(&demo), None)
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body["application_credential"].get("secret").is_none());
        assert_eq!(r.body["application_credential"]["id"], json!(id));
        // The admin may read it; another user may not, even naming themselves in the path.
        assert_eq!(
            h.call("GET", &format!("{base}/{id}"), Some(&admin), None)
                .await
                .status,
            200
        );
        let admin_id = h.user_id("admin");
        let r = h
            .call(
                "GET",
                &format!("/users/{admin_id}/application_credentials/{id}"),
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "the owner passes whatever the path says");

        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(json!({"application_credential": {"name": "monitoring"}})),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(
            r.body["error"]["message"],
            "Conflict occurred attempting to store application_credential - Duplicate entry found with name monitoring."
        );
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(
                    json!({"application_credential": {"name": "r", "roles": [{"name": "reader"}]}}),
                ),
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(
            r.body["application_credential"]["roles"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(
                    json!({"application_credential": {"name": "a", "roles": [{"name": "admin"}]}}),
                ),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["error"]["message"],
            "Invalid application credential: Cannot create an application credential with unassigned role"
        );
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(json!({"application_credential": {"name": "a", "roles": [{"name": "nope"}]}})),
            )
            .await;
        assert_eq!(r.status, 404);
        let r = h.call("POST", &base, Some(&demo), Some(json!({"application_credential": {"name": "a", "expires_at": "2001-01-01T00:00:00"}}))).await;
        assert_eq!(r.status, 400);
        let r = h.call("POST", &base, Some(&demo), Some(json!({"application_credential": {"name": "a", "access_rules": [{"service": "compute", "path": "/servers", "method": "GET"}]}}))).await;
        assert_eq!(r.status, 400);
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(json!({"application_credential": {"name": "a", "access_rules": []}})),
            )
            .await;
        assert_eq!(r.status, 201);
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(json!({"application_credential": {"name": "b", "bogus": 1}})),
            )
            .await;
        assert_eq!(r.status, 400);
        let r = h
            .call(
                "POST",
                &base,
                Some(&demo),
                Some(json!({"application_credential": {}})),
            )
            .await;
        assert_eq!(r.status, 400);
        // Only for oneself: even the admin cannot create one for another user.
        let r = h
            .call(
                "POST",
                &base,
                Some(&admin),
                Some(json!({"application_credential": {"name": "x"}})),
            )
            .await;
        assert_eq!(r.status, 403);
        // A project-scoped token is required.
        let system = h
            .token(&admin_id, ferrostack_fernet::Scope::System("all".into()))
            .await;
        let r = h
            .call(
                "POST",
                &format!("/users/{admin_id}/application_credentials"),
                Some(&system),
                Some(json!({"application_credential": {"name": "x"}})),
            )
            .await;
        assert_eq!(r.status, 403);

        let r = h.call("GET", &base, Some(&demo), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["application_credentials"].as_array().unwrap().len(),
            3
        );
        assert!(
            r.body["application_credentials"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.get("secret").is_none())
        );
        let r = h
            .call("GET", &format!("{base}?name=monitoring"), Some(&demo), None)
            .await;
        assert_eq!(
            r.body["application_credentials"].as_array().unwrap().len(),
            1
        );
        assert_eq!(
            h.call(
                "GET",
                &format!("/users/{admin_id}/application_credentials"),
                Some(&demo),
                None
            )
            .await
            .status,
            403
        );

        let r = h
            .call("DELETE", &format!("{base}/nope"), Some(&demo), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find Application Credential: nope."))
        );
        assert_eq!(
            h.call("DELETE", &format!("{base}/{id}"), Some(&demo), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("GET", &format!("{base}/{id}"), Some(&demo), None)
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn authenticating_with_an_application_credential() {
        let h = Harness::open("app-creds-auth").await;
        let demo_id = h.user_id("demo");
        let demo = h.demo().await;
        let base = format!("/users/{demo_id}/application_credentials");
        let r = h.call("POST", &base, Some(&demo), Some(json!({"application_credential": {"name": "ci", "secret": "s3cret", "roles": [{"name": "reader"}]}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["application_credential"]["secret"], "s3cret");
        let id = r.body["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_string();

        assert_eq!(issue(&h, json!({"id": id, "secret": "wrong"})).await.0, 401);
        let (status, token, body) = issue(&h, json!({"id": id, "secret": "s3cret"})).await;
        assert_eq!(status, 201, "{body}");
        let token = token.unwrap();
        assert_eq!(body["token"]["application_credential"]["id"], json!(id));
        assert_eq!(body["token"]["application_credential"]["restricted"], true);
        let ctx = h.identity.validate_token(&token).unwrap();
        let roles: Vec<&str> = ctx.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(roles, vec!["reader"], "only the delegated roles");
        // By name, with the user.
        let (status, _, _) = issue(&h, json!({"name": "ci", "secret": "s3cret", "user": {"name": "demo", "domain": {"id": "default"}}})).await;
        assert_eq!(status, 201);

        // A restricted credential may not manage credentials.
        let r = h
            .call(
                "POST",
                &base,
                Some(&token),
                Some(json!({"application_credential": {"name": "more"}})),
            )
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body["error"]["message"],
            "You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional application credentials."
        );
        assert_eq!(
            h.call("DELETE", &format!("{base}/{id}"), Some(&token), None)
                .await
                .status,
            403
        );
        assert_eq!(
            h.call("GET", &format!("{base}/{id}"), Some(&token), None)
                .await
                .status,
            200
        );

        // An unrestricted one may, and what it creates is bound to the same project.
        let r = h.call("POST", &base, Some(&demo), Some(json!({"application_credential": {"name": "root", "secret": "s", "unrestricted": true}}))).await;
        let root_id = r.body["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, root_token, _) = issue(&h, json!({"id": root_id, "secret": "s"})).await;
        let r = h
            .call(
                "POST",
                &base,
                Some(&root_token.unwrap()),
                Some(json!({"application_credential": {"name": "child"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            r.body["application_credential"]["project_id"],
            json!(h.project_id("demo"))
        );

        // Deleting the credential invalidates its tokens.
        assert_eq!(
            h.call("DELETE", &format!("{base}/{id}"), Some(&demo), None)
                .await
                .status,
            204
        );
        assert!(h.identity.validate_token(&token).is_err());
        assert_eq!(
            issue(&h, json!({"id": id, "secret": "s3cret"})).await.0,
            401
        );
    }
}
