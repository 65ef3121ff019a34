//! Keypairs (`nova/api/openstack/compute/keypairs.py`): per user, generated or imported.

use super::{AppState, Mv, at_least};
use crate::db::{self, Keypair};
use crate::keys;
use crate::service::{KEY_PAIRS_QUOTA, db_error};
use axum::{
    Json,
    extract::{Path, Query},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// Keypair names before 2.92, and from 2.92 (`@` and `.` allowed).
static NAME: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[_\- a-zA-Z0-9]+$").expect("valid regex"));
static NAME_2_92: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[_\-@. a-zA-Z0-9]+$").expect("valid regex"));

/// The user whose keypairs are addressed: `?user_id=` (admins, ≥ 2.10) or the caller.
fn owner(auth: &Auth, mv: &Mv, requested: Option<&str>) -> String {
    match requested {
        Some(u) if at_least(mv, 2, 10) => u.to_string(),
        _ => auth.user.id.clone(),
    }
}

fn enforce(auth: &Auth, action: &str, user_id: &str) -> Result<(), ApiError> {
    auth.enforce(
        &format!("os_compute_api:os-keypairs:{action}"),
        &json!({"user_id": user_id}),
    )
}

fn summary(k: &Keypair, mv: &Mv) -> Value {
    let mut b = Map::new();
    b.insert("name".into(), json!(k.name));
    b.insert("public_key".into(), json!(k.public_key));
    b.insert("fingerprint".into(), json!(k.fingerprint));
    if at_least(mv, 2, 2) {
        b.insert("type".into(), json!(k.key_type));
    }
    Value::Object(b)
}

fn not_found(name: &str, user_id: &str) -> ApiError {
    ApiError::not_found(format!("Keypair {name} not found for user {user_id}"))
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `GET /os-keypairs`
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let user_id = owner(&auth, &mv, query_value(&query, "user_id"));
    enforce(&auth, "index", &user_id)?;
    let mut keypairs = db::keypairs(&state.0.store, &user_id)
        .await
        .map_err(db_error)?;
    let mut links = None;
    if at_least(&mv, 2, 35) {
        if let Some(marker) = query_value(&query, "marker") {
            let at = keypairs
                .iter()
                .position(|k| k.name == marker)
                .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
            keypairs.drain(..=at);
        }
        if let Some(limit) = query_value(&query, "limit") {
            let limit: usize = limit.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for query parameters limit. Value: {limit}."
                ))
            })?;
            if keypairs.len() > limit {
                keypairs.truncate(limit);
                if let Some(last) = keypairs.last() {
                    links = Some(json!([{"rel": "next", "href": format!(
                        "{}/v2.1/os-keypairs?limit={limit}&marker={}", state.0.base_url(), last.name
                    )}]));
                }
            }
        }
    }
    let items: Vec<Value> = keypairs
        .iter()
        .map(|k| json!({"keypair": summary(k, &mv)}))
        .collect();
    let mut body = json!({"keypairs": items});
    if let Some(links) = links {
        body["keypairs_links"] = links;
    }
    Ok(Json(body))
}

/// `GET /os-keypairs/{name}`
pub async fn show(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let user_id = owner(&auth, &mv, query_value(&query, "user_id"));
    enforce(&auth, "show", &user_id)?;
    let keypair = db::keypairs(&state.0.store, &user_id)
        .await
        .map_err(db_error)?
        .into_iter()
        .find(|k| k.name == name)
        .ok_or_else(|| not_found(&name, &user_id))?;
    let mut body = summary(&keypair, &mv);
    body["user_id"] = json!(keypair.user_id);
    body["created_at"] = json!(keypair.created_at);
    body["updated_at"] = Value::Null;
    body["deleted"] = json!(false);
    body["deleted_at"] = Value::Null;
    body["id"] = json!(keypair.id);
    Ok(Json(json!({"keypair": body})))
}

/// `POST /os-keypairs`: imports `public_key`, or (< 2.92) generates an RSA 2048 keypair.
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    JsonBody(body_in): JsonBody,
) -> Result<Response, ApiError> {
    let Some(k) = body_in.get("keypair").and_then(Value::as_object) else {
        let _ = auth.allows("os_compute_api:os-keypairs:create", &json!({}));
        return Err(ApiError::bad_request("'keypair' is a required property"));
    };
    let requested_user = if at_least(&mv, 2, 10) {
        k.get("user_id").and_then(Value::as_str)
    } else {
        None
    };
    let user_id = owner(&auth, &mv, requested_user);
    enforce(&auth, "create", &user_id)?;
    let pattern: &regex::Regex = if at_least(&mv, 2, 92) {
        &NAME_2_92
    } else {
        &NAME
    };
    let name = match k.get("name") {
        Some(Value::String(n)) if n.trim().len() <= 255 && pattern.is_match(n.trim()) => {
            n.trim().to_string()
        }
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute name. Value: {v}. Keypair name contains unsafe characters"
            )));
        }
        None => return Err(ApiError::bad_request("'name' is a required property")),
    };
    let key_type = match (k.get("type"), at_least(&mv, 2, 2)) {
        (None, _) => "ssh".to_string(),
        (Some(Value::String(t)), true) if t == "ssh" || t == "x509" => t.clone(),
        (Some(v), _) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute type. Value: {v}."
            )));
        }
    };
    let public_key = match k.get("public_key") {
        Some(Value::String(p)) => Some(p.clone()),
        None | Some(Value::Null) if !at_least(&mv, 2, 92) => None,
        _ => return Err(ApiError::bad_request("'public_key' is a required property")),
    };
    let store = &state.0.store;
    let existing = db::keypairs(store, &user_id).await.map_err(db_error)?;
    if existing.iter().any(|e| e.name == name) {
        return Err(ApiError::conflict(format!(
            "Key pair '{name}' already exists."
        )));
    }
    if existing.len() as i64 >= KEY_PAIRS_QUOTA {
        return Err(ApiError::forbidden("Quota exceeded, too many key pairs."));
    }
    let x509 = key_type == "x509";
    let (public_key, fingerprint, private_key) = match public_key {
        Some(p) if x509 => {
            let fp = keys::x509_fingerprint(&p).map_err(ApiError::bad_request)?;
            (p.trim().to_string(), fp, None)
        }
        Some(p) => {
            let fp = keys::validate_public_key(&p).map_err(ApiError::bad_request)?;
            (p.trim().to_string(), fp, None)
        }
        None => {
            let owner = user_id.clone();
            let generated = tokio::task::spawn_blocking(move || {
                if x509 {
                    keys::generate_x509(&owner)
                } else {
                    keys::generate()
                }
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            (
                generated.public_key,
                generated.fingerprint,
                Some(generated.private_key),
            )
        }
    };
    let mut keypair = Keypair {
        id: 0,
        user_id: user_id.clone(),
        name: name.clone(),
        key_type,
        public_key,
        fingerprint,
        created_at: chrono::Utc::now()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
    };
    keypair.id = db::insert_keypair(store, &keypair)
        .await
        .map_err(|e| match e {
            ferrostack_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("Key pair '{name}' already exists."))
            }
            other => db_error(other),
        })?;
    tracing::info!(user = %user_id, keypair = %name, "keypair created");
    let mut body = summary(&keypair, &mv);
    body["user_id"] = json!(user_id);
    if let Some(private) = private_key {
        body["private_key"] = json!(private);
    }
    let status = if at_least(&mv, 2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"keypair": body}))).into_response())
}

/// `DELETE /os-keypairs/{name}`: 202 (< 2.2) or 204.
pub async fn delete(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let user_id = owner(&auth, &mv, query_value(&query, "user_id"));
    enforce(&auth, "delete", &user_id)?;
    if !db::delete_keypair(&state.0.store, &user_id, &name)
        .await
        .map_err(db_error)?
    {
        return Err(not_found(&name, &user_id));
    }
    tracing::info!(user = %user_id, keypair = %name, "keypair deleted");
    Ok(if at_least(&mv, 2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}
