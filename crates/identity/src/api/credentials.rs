//! `/v3/credentials`: Keystone's generic credential store.
//!
//! Blobs are encrypted at rest as Keystone's Fernet credential provider does
//! (`keystone/credential/providers/fernet`): a Fernet token made with the primary key of the
//! credential key repository (`credential-keys` in the state dir, key `0` created on first use,
//! primary = highest index, the others kept for decryption) and the SHA-1 of that key as
//! `key_hash`. The `fernet` crate (RustCrypto backend) does the sealing: `ferrostack-fernet` only
//! seals token payloads.

use super::{AppState, Pairs, collection_links, links, member, new_id, not_found, query_value};
use crate::data::Change;
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
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/credentials", get(list).post(create))
        .route(
            "/credentials/{credential_id}",
            get(show).patch(update).delete(remove),
        )
}

/// Keystone's `_credential_properties`.
fn properties() -> Value {
    json!({
        "blob": {"type": "string"},
        "project_id": {"type": ["string", "null"]},
        "type": {"type": "string"},
        "user_id": {"type": "string"},
    })
}

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let mut props = properties();
    props["id"] = json!({"type": "string"});
    Schema::new(json!({
        "type": "object", "required": ["credential"],
        "properties": {"credential": {
            "type": "object", "properties": props, "required": ["blob", "type", "user_id"],
            "if": {"properties": {"type": {"const": "ec2"}}},
            "then": {"required": ["blob", "type", "user_id", "project_id"]},
        }},
    }))
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object", "required": ["credential"],
        "properties": {"credential": {"type": "object", "properties": properties(), "minProperties": 1}},
    }))
});

/// Attributes that are columns (everything else is kept in `extra`).
const CORE: &[&str] = &["id", "user_id", "project_id", "type", "blob", "links"];

/// Keystone's `ValidationError` wording.
fn expecting(attribute: &str, target: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Expecting to find {attribute} in {target}. The server could not comply with the request since it is either \
         malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

/// Keystone's `ForbiddenAction` wording.
fn forbidden_action(action: &str) -> ApiError {
    ApiError::forbidden(format!(
        "You are not authorized to perform the requested action: {action}."
    ))
}

/// Lower-case hex of a digest.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keystone's `_normalize_dict`: `:` and `-` in attribute names become `_`.
pub(super) fn normalize_keys(body: &Value) -> Map<String, Value> {
    body.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Keystone's `_require_matching_id`.
pub(super) fn require_matching_id(body: &Map<String, Value>, id: &str) -> Result<(), ApiError> {
    match body.get("id") {
        Some(v) if !v.is_null() && v.as_str() != Some(id) => {
            Err(ApiError::bad_request("Cannot change ID"))
        }
        _ => Ok(()),
    }
}

// ---- the credential key repository ----

/// The loaded keys: primary first, as Keystone's `load_keys`.
pub struct CredentialKeys {
    fernet: fernet::MultiFernet,
    primary_hash: String,
}

/// `credential-keys` in the state dir.
fn key_repository(identity: &Identity) -> PathBuf {
    identity.config().state_dir.join("credential-keys")
}

/// Creates the repository with a key `0` unless it already holds a numbered key. The key is
/// written to a private temporary file and linked into place, so a concurrent process either
/// wins the race or sees a complete key.
fn ensure_keys(dir: &FsPath) -> std::io::Result<()> {
    let has_key = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
    });
    if has_key {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let key = ferrostack_fernet::generate_key().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".0.tmp-{}", new_id()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(key.as_bytes())?;
        file.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, dir.join("0"));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => {
            tracing::info!(dir = %dir.display(), "created the credential key repository");
            Ok(())
        }
    }
}

/// Loads the credential keys, creating the repository on first use.
pub fn load_keys(dir: &FsPath) -> Result<CredentialKeys, ApiError> {
    ensure_keys(dir).map_err(|e| {
        ApiError::internal(format!("credential key repository {}: {e}", dir.display()))
    })?;
    let keys = ferrostack_fernet::KeyRepository::load(dir).map_err(ApiError::internal)?;
    let fernets = keys
        .iter()
        .map(|k| fernet::Fernet::new(k))
        .collect::<Option<Vec<_>>>()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::internal("malformed credential key"))?;
    Ok(CredentialKeys {
        fernet: fernet::MultiFernet::new(fernets),
        primary_hash: hex(&Sha1::digest(keys[0].as_bytes())),
    })
}

impl CredentialKeys {
    /// Keystone's `_encrypt_credential`: an `ec2` blob is encrypted as its JSON encoding.
    fn encrypt(&self, cred_type: &str, blob: &str) -> (String, String) {
        let plain = match cred_type {
            "ec2" => Value::String(blob.to_string()).to_string(),
            _ => blob.to_string(),
        };
        (
            self.fernet.encrypt(plain.as_bytes()),
            self.primary_hash.clone(),
        )
    }

    /// Keystone's `_decrypt_credential` followed by `_blob_to_json`.
    fn decrypt(&self, c: &Credential) -> Result<String, ApiError> {
        let plain = self.fernet.decrypt(&c.encrypted_blob).map_err(|_| {
            ApiError::internal(format!(
                "credential {} cannot be decrypted with the credential keys",
                c.id
            ))
        })?;
        let text = String::from_utf8(plain).map_err(ApiError::internal)?;
        if c.cred_type != "ec2" {
            return Ok(text);
        }
        Ok(match serde_json::from_str::<Value>(&text) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => text,
        })
    }
}

// ---- JSON and targets ----

/// Keystone's JSON of a credential, without `links` (the policy target).
fn credential_ref(c: &Credential, blob: &str) -> Value {
    let mut body = c.extra.clone();
    body.insert("id".into(), json!(c.id));
    body.insert("user_id".into(), json!(c.user_id));
    body.insert("project_id".into(), json!(c.project_id));
    body.insert("type".into(), json!(c.cred_type));
    body.insert("blob".into(), json!(blob));
    Value::Object(body)
}

/// Keystone's JSON of a credential.
fn credential_json(identity: &Identity, c: &Credential, blob: &str) -> Value {
    let mut body = credential_ref(c, blob);
    body["links"] = links(identity, &format!("credentials/{}", c.id));
    body
}

/// Keystone's `_validate_blob_json` (for `ec2` credentials): the blob is a non-empty JSON
/// object with an `access` key.
fn validate_blob_json(blob: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let parsed: Value = blob
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| ApiError::bad_request("Invalid blob in credential"))?;
    let map = match parsed {
        Value::Object(m) if !m.is_empty() => m,
        _ => return Err(expecting("blob", "credential")),
    };
    if map.get("access").is_none_or(Value::is_null) {
        return Err(expecting("access", "credential"));
    }
    Ok(map)
}

/// Keystone's `_check_credential_project_scope`: a delegated token (here: an application
/// credential's) reaches only credentials of the project it is scoped to.
fn check_project_scope(auth: &Auth, project_id: Option<&str>) -> Result<(), ApiError> {
    if auth.application_credential.is_some() && project_id != auth.project_id() {
        return Err(forbidden_action(
            "Credential project does not match the project scope of the delegated token",
        ));
    }
    Ok(())
}

/// Keystone's `_check_unrestricted_application_credential`.
fn check_unrestricted(auth: &Auth) -> Result<(), ApiError> {
    if auth
        .application_credential
        .as_ref()
        .is_some_and(|(_, _, restricted)| *restricted)
    {
        return Err(forbidden_action(
            "Using method 'application_credential' is not allowed for managing additional credentials",
        ));
    }
    Ok(())
}

/// The credential and its decrypted blob, if it exists.
fn find(identity: &Identity, id: &str) -> Result<Option<(Credential, String)>, ApiError> {
    let Some(c) = identity.read().credentials.get(id).cloned() else {
        return Ok(None);
    };
    let keys = load_keys(&key_repository(identity))?;
    let blob = keys.decrypt(&c)?;
    Ok(Some((c, blob)))
}

/// The target of the member calls: the whole credential when it exists (Keystone's
/// `_build_target_enforcement`).
fn member_target(found: &Option<(Credential, String)>) -> Value {
    match found {
        Some((c, blob)) => json!({"target": {"credential": credential_ref(c, blob)}}),
        None => json!({"target": {}}),
    }
}

// ---- handlers ----

/// `GET /v3/credentials` (filters `user_id`, `type`): only the credentials the caller may see.
async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let t = match auth.system_scope {
        Some(_) => json!({}),
        None => json!({"target": {"credential": {"user_id": auth.user.id}}}),
    };
    auth.enforce("identity:list_credentials", &t)?;
    let user_filter = query_value(&query, "user_id");
    let type_filter = query_value(&query, "type");
    let mut creds: Vec<Credential> = identity
        .read()
        .credentials
        .values()
        .filter(|c| user_filter.is_none_or(|u| c.user_id == u))
        .filter(|c| type_filter.is_none_or(|t| c.cred_type == t))
        .cloned()
        .collect();
    creds.sort_by(|a, b| a.id.cmp(&b.id));
    let mut body = Vec::new();
    if !creds.is_empty() {
        let keys = load_keys(&key_repository(&identity))?;
        for c in &creds {
            let blob = keys.decrypt(c)?;
            let t = json!({"target": {"credential": credential_ref(c, &blob)}});
            if auth.allows("identity:get_credential", &t)
                && check_project_scope(&auth, c.project_id.as_deref()).is_ok()
            {
                body.push(credential_json(&identity, c, &blob));
            }
        }
    }
    Ok(Json(
        json!({"credentials": body, "links": collection_links(&identity, "credentials")}),
    ))
}

/// `POST /v3/credentials`: an `ec2` credential's id is the SHA-256 of its access key.
async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "credential")?;
    auth.enforce(
        "identity:create_credential",
        &json!({"target": {"credential": b}}),
    )?;
    let b = normalize_keys(b);
    let cred_type = b["type"].as_str().unwrap_or_default().to_string();
    let is_ec2 = cred_type.eq_ignore_ascii_case("ec2");
    if is_ec2 {
        check_unrestricted(&auth)?;
    }
    let project_id = b
        .get("project_id")
        .and_then(Value::as_str)
        .map(String::from);
    check_project_scope(&auth, project_id.as_deref())?;
    let mut blob = b["blob"].as_str().unwrap_or_default().to_string();
    let id = if is_ec2 {
        let mut parsed = validate_blob_json(Some(&blob))?;
        let access = parsed["access"]
            .as_str()
            .ok_or_else(|| expecting("access", "credential"))?;
        let id = hex(&Sha256::digest(access.as_bytes()));
        // Credentials made with an application credential's token authenticate (ec2tokens)
        // to that application credential again.
        if let Some((app_cred_id, _, _)) = &auth.application_credential {
            parsed.insert("app_cred_id".into(), json!(app_cred_id));
            blob = Value::Object(parsed).to_string();
        }
        id
    } else {
        new_id()
    };
    let keys = load_keys(&key_repository(&identity))?;
    let (encrypted_blob, key_hash) = keys.encrypt(&cred_type, &blob);
    let credential = Credential {
        id,
        user_id: b["user_id"].as_str().unwrap_or_default().to_string(),
        project_id,
        cred_type,
        encrypted_blob,
        key_hash,
        extra: b
            .iter()
            .filter(|(k, _)| !CORE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    if identity.read().credentials.contains_key(&credential.id) {
        return Err(ApiError::conflict(format!(
            "Conflict occurred attempting to store credential - Duplicate entry found with ID {}.",
            credential.id
        )));
    }
    identity.write(vec![Change::put(&credential)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"credential": credential_json(&identity, &credential, &blob)})),
    ))
}

/// `GET /v3/credentials/{credential_id}`
async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id)?;
    auth.enforce("identity:get_credential", &member_target(&found))?;
    let (c, blob) = found.ok_or_else(|| not_found("credential", &id))?;
    check_project_scope(&auth, c.project_id.as_deref())?;
    Ok(Json(
        json!({"credential": credential_json(&identity, &c, &blob)}),
    ))
}

/// `PATCH /v3/credentials/{credential_id}`: the id stays (also for an `ec2` credential whose
/// access key changes); the scope keys of an `ec2` blob cannot change.
async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    UPDATE.validate(&body)?;
    let found = find(&identity, &id)?;
    auth.enforce("identity:update_credential", &member_target(&found))?;
    let (mut c, old_blob) = found.ok_or_else(|| not_found("credential", &id))?;
    check_project_scope(&auth, c.project_id.as_deref())?;
    let b = normalize_keys(member(&body, "credential")?);
    if c.cred_type.eq_ignore_ascii_case("ec2") {
        let new = validate_blob_json(b.get("blob").and_then(Value::as_str))?;
        let old = match serde_json::from_str::<Value>(&old_blob) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for key in ["trust_id", "app_cred_id", "access_token_id", "access_id"] {
            if old.get(key) != new.get(key) {
                return Err(ApiError::bad_request(format!(
                    "{key} can not be updated for credential"
                )));
            }
        }
    }
    require_matching_id(&b, &id)?;
    // The caller may not move the credential to someone it could not manage.
    let mut merged = credential_ref(&c, &old_blob);
    if let Value::Object(m) = &mut merged {
        m.extend(b.clone());
    }
    auth.enforce(
        "identity:update_credential",
        &json!({"target": {"credential": merged}}),
    )?;
    let new_type = b.get("type").and_then(Value::as_str);
    let new_project = b.get("project_id").and_then(Value::as_str);
    if new_type.is_some_and(|t| t.eq_ignore_ascii_case("ec2"))
        && new_project.is_none_or(str::is_empty)
        && c.project_id.as_deref().is_none_or(str::is_empty)
    {
        return Err(expecting("project_id", "credential"));
    }
    if let Some(u) = b.get("user_id").and_then(Value::as_str) {
        c.user_id = u.to_string();
    }
    if let Some(p) = b.get("project_id") {
        c.project_id = p.as_str().map(String::from);
    }
    if let Some(t) = new_type {
        c.cred_type = t.to_string();
    }
    let blob = b
        .get("blob")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or(old_blob);
    // Re-encrypted with the current primary key (also when only the type changed, since an
    // `ec2` blob is stored as its JSON encoding).
    let keys = load_keys(&key_repository(&identity))?;
    (c.encrypted_blob, c.key_hash) = keys.encrypt(&c.cred_type, &blob);
    c.extra.extend(
        b.iter()
            .filter(|(k, _)| !CORE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    identity.write(vec![Change::put(&c)]).await?;
    Ok(Json(
        json!({"credential": credential_json(&identity, &c, &blob)}),
    ))
}

/// `DELETE /v3/credentials/{credential_id}`
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = find(&identity, &id)?;
    auth.enforce("identity:delete_credential", &member_target(&found))?;
    let (c, _) = found.ok_or_else(|| not_found("credential", &id))?;
    check_project_scope(&auth, c.project_id.as_deref())?;
    identity.write(vec![Change::delete(&c)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The deletions Keystone makes when a user is deleted (`delete_credentials_for_user`), for the
/// user removal to include in its write.
pub fn changes_for_deleted_user(data: &crate::data::IdentityData, user_id: &str) -> Vec<Change> {
    data.credentials
        .values()
        .filter(|c| c.user_id == user_id)
        .map(Change::delete)
        .collect()
}

/// The deletions Keystone makes when a project is deleted (`delete_credentials_for_project`).
pub fn changes_for_deleted_project(
    data: &crate::data::IdentityData,
    project_id: &str,
) -> Vec<Change> {
    data.credentials
        .values()
        .filter(|c| c.project_id.as_deref() == Some(project_id))
        .map(Change::delete)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::harness::Harness;
    use std::os::unix::fs::PermissionsExt;

    fn sha256_hex(s: &str) -> String {
        hex(&Sha256::digest(s.as_bytes()))
    }

    #[tokio::test]
    async fn ec2_credentials_follow_keystone() {
        let h = Harness::open("credentials-ec2").await;
        let admin = h.admin().await;
        let admin_id = h.user_id("admin");
        let project = h.project_id("demo");
        let blob = r#"{"access": "AKIA-1", "secret": "s3cr3t"}"#;
        let r = h
            .call(
                "POST",
                "/credentials",
                Some(&admin),
                Some(json!({"credential": {"user_id": admin_id, "project_id": project, "type": "ec2", "blob": blob}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let c = &r.body["credential"];
        let id = sha256_hex("AKIA-1");
        assert_eq!(c["id"], json!(id));
        assert_eq!(c["blob"], json!(blob));
        assert_eq!(c["type"], "ec2");
        assert_eq!(c["project_id"], json!(project));
        assert_eq!(c["user_id"], json!(admin_id));
        assert!(
            c["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/credentials/{id}"))
        );

        // At rest: a Fernet token under the key created on first use, never the blob.
        let stored = h.identity.read().credentials[&id].clone();
        assert!(!stored.encrypted_blob.contains("AKIA"));
        let dir = h.identity.config().state_dir.join("credential-keys");
        let key = std::fs::read_to_string(dir.join("0")).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("0"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(stored.key_hash, hex(&Sha1::digest(key.as_bytes())));
        let plain = fernet::Fernet::new(&key)
            .unwrap()
            .decrypt(&stored.encrypted_blob)
            .unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            Value::String(blob.into()).to_string()
        );

        let dup = h
            .call(
                "POST",
                "/credentials",
                Some(&admin),
                Some(json!({"credential": {"user_id": admin_id, "project_id": project, "type": "ec2", "blob": blob}})),
            )
            .await;
        assert_eq!(
            (dup.status, dup.body["error"]["message"].as_str()),
            (409, Some(format!("Conflict occurred attempting to store credential - Duplicate entry found with ID {id}.").as_str()))
        );
        for (body, message) in [
            (
                json!({"user_id": admin_id, "type": "ec2", "blob": blob}),
                None,
            ),
            (
                json!({"user_id": admin_id, "project_id": project, "type": "ec2", "blob": "{oops"}),
                Some("Invalid blob in credential"),
            ),
            (
                json!({"user_id": admin_id, "project_id": project, "type": "ec2", "blob": "{\"secret\": \"x\"}"}),
                Some(
                    "Expecting to find access in credential. The server could not comply with the request since it is \
                     either malformed or otherwise incorrect. The client is assumed to be in error.",
                ),
            ),
            (
                json!({"user_id": admin_id, "project_id": project, "type": "ec2", "blob": "[]"}),
                Some(
                    "Expecting to find blob in credential. The server could not comply with the request since it is \
                     either malformed or otherwise incorrect. The client is assumed to be in error.",
                ),
            ),
            (
                json!({"user_id": admin_id, "type": "cert", "blob": 5}),
                None,
            ),
        ] {
            let r = h
                .call(
                    "POST",
                    "/credentials",
                    Some(&admin),
                    Some(json!({ "credential": body })),
                )
                .await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
            if let Some(m) = message {
                assert_eq!(r.body["error"]["message"], m);
            }
        }

        // Update: a new access key keeps the id; the blob's scope keys cannot change.
        let other_project = h.project_id("admin");
        let new_blob = r#"{"access": "AKIA-2", "secret": "other"}"#;
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{id}"),
                Some(&admin),
                Some(json!({"credential": {"blob": new_blob, "project_id": other_project, "type": "ec2"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["credential"]["id"], json!(id));
        assert_eq!(r.body["credential"]["blob"], json!(new_blob));
        assert_eq!(r.body["credential"]["project_id"], json!(other_project));
        let r = h
            .call("GET", &format!("/credentials/{id}"), Some(&admin), None)
            .await;
        assert_eq!(
            (r.status, &r.body["credential"]["blob"]),
            (200, &json!(new_blob))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{id}"),
                Some(&admin),
                Some(json!({"credential": {"blob": r#"{"access": "a", "trust_id": "t"}"#}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("trust_id can not be updated for credential"))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{id}"),
                Some(&admin),
                Some(json!({"credential": {"blob": new_blob, "id": "other"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change ID"))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{id}"),
                Some(&admin),
                Some(json!({"credential": {}})),
            )
            .await;
        assert_eq!(r.status, 400);

        // Survives a reload from the store.
        let data = crate::data::IdentityData::load(&h.identity.store)
            .await
            .unwrap();
        assert_eq!(data.credentials[&id].project_id, Some(other_project));

        assert_eq!(
            h.call("DELETE", &format!("/credentials/{id}"), Some(&admin), None)
                .await
                .status,
            204
        );
        let r = h
            .call("GET", &format!("/credentials/{id}"), Some(&admin), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                404,
                Some(format!("Could not find credential: {id}.").as_str())
            )
        );
        assert_eq!(
            h.call("DELETE", &format!("/credentials/{id}"), Some(&admin), None)
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn owners_see_and_manage_only_their_credentials() {
        let h = Harness::open("credentials-owners").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let (admin_id, demo_id) = (h.user_id("admin"), h.user_id("demo"));
        let create = |token: String, user: String, kind: &'static str| {
            let h = &h;
            async move {
                h.call(
                    "POST",
                    "/credentials",
                    Some(&token),
                    Some(json!({"credential": {"user_id": user, "type": kind, "blob": "opaque", "color": "red"}})),
                )
                .await
            }
        };
        let mine = create(demo.clone(), demo_id.clone(), "totp").await;
        assert_eq!(mine.status, 201, "{}", mine.body);
        assert_eq!(mine.body["credential"]["color"], "red");
        assert_eq!(mine.body["credential"]["blob"], "opaque");
        assert!(mine.body["credential"]["project_id"].is_null());
        let mine_id = mine.body["credential"]["id"].as_str().unwrap().to_string();
        assert_eq!(mine_id.len(), 32);
        assert_eq!(
            create(demo.clone(), admin_id.clone(), "totp").await.status,
            403
        );
        let theirs = create(admin.clone(), admin_id.clone(), "cert").await;
        assert_eq!(theirs.status, 201);
        let theirs_id = theirs.body["credential"]["id"]
            .as_str()
            .unwrap()
            .to_string();

        let ids = |r: &crate::api::harness::Reply| -> Vec<String> {
            r.body["credentials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        };
        let r = h.call("GET", "/credentials", Some(&demo), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(ids(&r), vec![mine_id.clone()]);
        assert!(
            r.body["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with("/v3/credentials")
        );
        let r = h.call("GET", "/credentials", Some(&admin), None).await;
        assert_eq!(ids(&r).len(), 2);
        let r = h
            .call(
                "GET",
                &format!("/credentials?user_id={admin_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ids(&r), vec![theirs_id.clone()]);
        let r = h
            .call("GET", "/credentials?type=totp", Some(&admin), None)
            .await;
        assert_eq!(ids(&r), vec![mine_id.clone()]);

        assert_eq!(
            h.call("GET", &format!("/credentials/{mine_id}"), Some(&demo), None)
                .await
                .status,
            200
        );
        assert_eq!(
            h.call(
                "GET",
                &format!("/credentials/{theirs_id}"),
                Some(&demo),
                None
            )
            .await
            .status,
            403
        );
        // An unknown credential is not revealed to those who could not read it.
        assert_eq!(
            h.call("GET", "/credentials/nothing", Some(&demo), None)
                .await
                .status,
            403
        );
        // The owner may not hand the credential to someone else.
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{mine_id}"),
                Some(&demo),
                Some(json!({"credential": {"user_id": admin_id}})),
            )
            .await;
        assert_eq!(r.status, 403);
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{mine_id}"),
                Some(&demo),
                Some(json!({"credential": {"blob": "new", "size": 2}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (
                &r.body["credential"]["blob"],
                &r.body["credential"]["color"],
                &r.body["credential"]["size"]
            ),
            (&json!("new"), &json!("red"), &json!(2))
        );
        // Becoming ec2 needs a project.
        let r = h
            .call(
                "PATCH",
                &format!("/credentials/{mine_id}"),
                Some(&demo),
                Some(json!({"credential": {"type": "ec2"}})),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            h.call(
                "DELETE",
                &format!("/credentials/{theirs_id}"),
                Some(&demo),
                None
            )
            .await
            .status,
            403
        );
        assert_eq!(
            h.call(
                "DELETE",
                &format!("/credentials/{mine_id}"),
                Some(&demo),
                None
            )
            .await
            .status,
            204
        );
        let data = h.identity.read();
        assert_eq!(changes_for_deleted_user(&data, &admin_id).len(), 1);
        assert!(changes_for_deleted_project(&data, "none").is_empty());
    }
}
