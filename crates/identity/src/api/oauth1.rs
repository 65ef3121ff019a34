//! OS-OAUTH1 consumers: `/v3/OS-OAUTH1/consumers` (CRUD only; no OAuth1 token flow).
//!
//! The secret is shown once, in the creation response, and stored as its SHA-256 (it is 128
//! random bits, so a fast hash suffices). Keystone keeps it in clear, because OAuth1's
//! HMAC-SHA1 signatures need it: the token flow would need it stored encrypted instead.

use super::credentials::{hex, normalize_keys, require_matching_id};
use super::legacy_policies::lazy_validate;
use super::{AppState, collection_links, links, new_id};
use crate::data::Change;
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use ferrostack_api::{ApiError, Auth, Schema};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/OS-OAUTH1/consumers", get(list).post(create))
        .route(
            "/OS-OAUTH1/consumers/{consumer_id}",
            get(show).patch(update).delete(remove),
        )
}

/// Keystone's `consumer_create` (validated against the `consumer` member).
static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(
        json!({"type": "object", "properties": {"description": {"type": ["string", "null"]}}}),
    )
});

/// Keystone's `consumer_update`: the secret cannot change.
static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({
        "type": "object", "properties": {"description": {"type": ["string", "null"]}},
        "not": {"required": ["secret"]}, "minProperties": 1,
    }))
});

const CORE: &[&str] = &["id", "description", "secret", "links"];

/// The `consumer` member of a body read as Keystone does (`get_json(force=True, silent=True)`:
/// any content type, and an unparsable body counts as empty).
fn consumer_member(bytes: &Bytes) -> Value {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|b| b.get("consumer").cloned())
        .unwrap_or_else(|| json!({}))
}

fn extra_of(b: &Map<String, Value>) -> Map<String, Value> {
    b.iter()
        .filter(|(k, _)| !CORE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keystone's JSON of a consumer (without its secret).
fn consumer_json(identity: &Identity, c: &Consumer) -> Value {
    let mut body = c.extra.clone();
    body.insert("id".into(), json!(c.id));
    body.insert("description".into(), json!(c.description));
    body.insert(
        "links".into(),
        links(identity, &format!("OS-OAUTH1/consumers/{}", c.id)),
    );
    Value::Object(body)
}

fn find(identity: &Identity, id: &str) -> Result<Consumer, ApiError> {
    identity
        .read()
        .consumers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Consumer not found"))
}

/// `GET /v3/OS-OAUTH1/consumers`
async fn list(State(identity): AppState, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:list_consumers", &json!({}))?;
    let data = identity.read();
    let mut consumers: Vec<&Consumer> = data.consumers.values().collect();
    consumers.sort_by(|a, b| a.id.cmp(&b.id));
    let body: Vec<Value> = consumers
        .into_iter()
        .map(|c| consumer_json(&identity, c))
        .collect();
    Ok(Json(
        json!({"consumers": body, "links": collection_links(&identity, "OS-OAUTH1/consumers")}),
    ))
}

/// `POST /v3/OS-OAUTH1/consumers`: the answer carries the secret, the only time it is shown.
async fn create(
    State(identity): AppState,
    auth: Auth,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.enforce("identity:create_consumer", &json!({}))?;
    let b = normalize_keys(&consumer_member(&bytes));
    lazy_validate(&CREATE, &Value::Object(b.clone()))?;
    let secret = new_id();
    let consumer = Consumer {
        id: new_id(),
        description: b
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        secret_hash: hex(&Sha256::digest(secret.as_bytes())),
        extra: extra_of(&b),
    };
    identity.write(vec![Change::put(&consumer)]).await?;
    let mut body = consumer_json(&identity, &consumer);
    body["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(json!({"consumer": body}))))
}

/// `GET /v3/OS-OAUTH1/consumers/{consumer_id}`
async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_consumer", &json!({"consumer_id": id}))?;
    Ok(Json(
        json!({"consumer": consumer_json(&identity, &find(&identity, &id)?)}),
    ))
}

/// `PATCH /v3/OS-OAUTH1/consumers/{consumer_id}` (the description and extra attributes).
async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:update_consumer", &json!({"consumer_id": id}))?;
    let member = consumer_member(&bytes);
    lazy_validate(&UPDATE, &member)?;
    let b = normalize_keys(&member);
    require_matching_id(&b, &id)?;
    let mut consumer = find(&identity, &id)?;
    if let Some(d) = b.get("description") {
        consumer.description = d.as_str().map(String::from);
    }
    consumer.extra.extend(extra_of(&b));
    identity.write(vec![Change::put(&consumer)]).await?;
    Ok(Json(
        json!({"consumer": consumer_json(&identity, &consumer)}),
    ))
}

/// `DELETE /v3/OS-OAUTH1/consumers/{consumer_id}`
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce("identity:delete_consumer", &json!({"consumer_id": id}))?;
    let consumer = find(&identity, &id)?;
    identity.write(vec![Change::delete(&consumer)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::harness::Harness;

    #[tokio::test]
    async fn consumers_crud_and_secret_shown_once() {
        let h = Harness::open("oauth1-consumers").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let r = h
            .call(
                "POST",
                "/OS-OAUTH1/consumers",
                Some(&admin),
                Some(json!({"consumer": {"description": "app"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let c = r.body["consumer"].clone();
        let id = c["id"].as_str().unwrap().to_string();
        let secret = c["secret"].as_str().unwrap().to_string();
        assert_eq!(c["description"], "app");
        assert!(
            c["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/OS-OAUTH1/consumers/{id}"))
        );
        assert_eq!(
            h.identity.read().consumers[&id].secret_hash,
            hex(&Sha256::digest(secret.as_bytes()))
        );
        // Without a body: a consumer with no description.
        let r = h
            .call("POST", "/OS-OAUTH1/consumers", Some(&admin), None)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(r.body["consumer"]["description"].is_null());
        assert_eq!(
            h.call("POST", "/OS-OAUTH1/consumers", Some(&demo), None)
                .await
                .status,
            403
        );

        let r = h
            .call(
                "GET",
                &format!("/OS-OAUTH1/consumers/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body["consumer"].get("secret").is_none());
        assert_eq!(r.body["consumer"]["links"], c["links"]);
        let r = h
            .call("GET", "/OS-OAUTH1/consumers", Some(&admin), None)
            .await;
        assert_eq!(r.body["consumers"].as_array().unwrap().len(), 2);
        assert!(
            r.body["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.get("secret").is_none())
        );

        let path = format!("/OS-OAUTH1/consumers/{id}");
        let r = h
            .call(
                "PATCH",
                &path,
                Some(&admin),
                Some(json!({"consumer": {"description": "new"}})),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["consumer"]["description"]),
            (200, &json!("new"))
        );
        for body in [
            json!({"consumer": {"secret": "mine"}}),
            json!({"consumer": {}}),
            json!({"consumer": {"description": 5}}),
        ] {
            let r = h.call("PATCH", &path, Some(&admin), Some(body)).await;
            assert_eq!(r.status, 400, "{}", r.body);
        }
        let r = h
            .call(
                "PATCH",
                &path,
                Some(&admin),
                Some(json!({"consumer": {"id": "other"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change ID"))
        );
        assert_eq!(h.call("DELETE", &path, Some(&demo), None).await.status, 403);
        assert_eq!(
            h.call("DELETE", &path, Some(&admin), None).await.status,
            204
        );
        let r = h.call("GET", &path, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Consumer not found"))
        );
    }
}
