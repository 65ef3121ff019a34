//! `/v3/policies`: Keystone's legacy policy blobs (stored and served, never enforced).

use super::credentials::normalize_keys;
use super::{AppState, Pairs, collection_links, links, new_id, not_found, query_value};
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
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/policies", get(list).post(create))
        .route(
            "/policies/{policy_id}",
            get(show).patch(update).delete(remove),
        )
}

fn properties() -> Value {
    json!({"blob": {"type": "string"}, "type": {"type": "string", "maxLength": 255}})
}

/// Keystone's `policy_create` (validated against the `policy` member, as `lazy_validate`).
static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({"type": "object", "properties": properties(), "required": ["blob", "type"]}))
});

/// Keystone's `policy_update`.
static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(json!({"type": "object", "properties": properties(), "minProperties": 1}))
});

/// Keystone's `lazy_validate` on a request member: a violation at the member's root is worded
/// without the field prefix, as Keystone does.
pub(super) fn lazy_validate(schema: &Schema, value: &Value) -> Result<(), ApiError> {
    schema.validate(value).map_err(|e| {
        let message =
            e.0.strip_prefix("Invalid input for the request body: ")
                .map(String::from)
                .unwrap_or(e.0);
        ApiError::bad_request(message)
    })
}

/// The request member `key` (`{}` when absent, as Keystone's `request_body_json.get(key, {})`).
pub(super) fn member_or_empty(body: &Value, key: &str) -> Value {
    body.get(key).cloned().unwrap_or_else(|| json!({}))
}

const CORE: &[&str] = &["id", "blob", "type", "links"];

fn extra_of(b: &Map<String, Value>) -> Map<String, Value> {
    b.iter()
        .filter(|(k, _)| !CORE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keystone's JSON of a policy.
fn policy_json(identity: &Identity, p: &PolicyBlob) -> Value {
    let mut body = p.extra.clone();
    body.insert("id".into(), json!(p.id));
    body.insert("blob".into(), json!(p.blob));
    body.insert("type".into(), json!(p.policy_type));
    body.insert(
        "links".into(),
        links(identity, &format!("policies/{}", p.id)),
    );
    Value::Object(body)
}

fn find(identity: &Identity, id: &str) -> Result<PolicyBlob, ApiError> {
    identity
        .read()
        .policies
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("policy", id))
}

/// `GET /v3/policies` (filter `type`)
async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:list_policies", &json!({}))?;
    let type_filter = query_value(&query, "type");
    let data = identity.read();
    let mut policies: Vec<&PolicyBlob> = data
        .policies
        .values()
        .filter(|p| type_filter.is_none_or(|t| p.policy_type == t))
        .collect();
    policies.sort_by(|a, b| a.id.cmp(&b.id));
    let body: Vec<Value> = policies
        .into_iter()
        .map(|p| policy_json(&identity, p))
        .collect();
    Ok(Json(
        json!({"policies": body, "links": collection_links(&identity, "policies")}),
    ))
}

/// `POST /v3/policies`
async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.enforce("identity:create_policy", &json!({}))?;
    let b = member_or_empty(&body, "policy");
    lazy_validate(&CREATE, &b)?;
    let b = normalize_keys(&b);
    let policy = PolicyBlob {
        id: new_id(),
        blob: b["blob"].as_str().unwrap_or_default().to_string(),
        policy_type: b["type"].as_str().unwrap_or_default().to_string(),
        extra: extra_of(&b),
    };
    identity.write(vec![Change::put(&policy)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"policy": policy_json(&identity, &policy)})),
    ))
}

/// `GET /v3/policies/{policy_id}`
async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:get_policy", &json!({"policy_id": id}))?;
    Ok(Json(
        json!({"policy": policy_json(&identity, &find(&identity, &id)?)}),
    ))
}

/// `PATCH /v3/policies/{policy_id}`
async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("identity:update_policy", &json!({"policy_id": id}))?;
    let b = member_or_empty(&body, "policy");
    lazy_validate(&UPDATE, &b)?;
    let b = b.as_object().cloned().unwrap_or_default();
    if b.get("id").is_some_and(|v| v.as_str() != Some(id.as_str())) {
        return Err(ApiError::bad_request("Cannot change policy ID"));
    }
    let mut policy = find(&identity, &id)?;
    if let Some(blob) = b.get("blob").and_then(Value::as_str) {
        policy.blob = blob.to_string();
    }
    if let Some(t) = b.get("type").and_then(Value::as_str) {
        policy.policy_type = t.to_string();
    }
    policy.extra.extend(extra_of(&b));
    identity.write(vec![Change::put(&policy)]).await?;
    Ok(Json(json!({"policy": policy_json(&identity, &policy)})))
}

/// `DELETE /v3/policies/{policy_id}`
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.enforce("identity:delete_policy", &json!({"policy_id": id}))?;
    let policy = find(&identity, &id)?;
    identity.write(vec![Change::delete(&policy)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use crate::api::harness::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn policy_blobs_crud() {
        let h = Harness::open("legacy-policies").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let r = h
            .call(
                "POST",
                "/policies",
                Some(&admin),
                Some(json!({"policy": {"blob": "{\"a\": 1}", "type": "application/json", "x-tra": 1}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let p = &r.body["policy"];
        assert_eq!(
            (&p["blob"], &p["type"], &p["x_tra"]),
            (&json!("{\"a\": 1}"), &json!("application/json"), &json!(1))
        );
        let id = p["id"].as_str().unwrap().to_string();
        assert!(
            p["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/policies/{id}"))
        );
        let r = h
            .call(
                "POST",
                "/policies",
                Some(&admin),
                Some(json!({"policy": {"type": "t"}})),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"blob\" is a required property"),
            "{}",
            r.body
        );
        h.call(
            "POST",
            "/policies",
            Some(&admin),
            Some(json!({"policy": {"blob": "b", "type": "other"}})),
        )
        .await;
        assert_eq!(
            h.call(
                "POST",
                "/policies",
                Some(&demo),
                Some(json!({"policy": {"blob": "b", "type": "t"}}))
            )
            .await
            .status,
            403
        );

        let r = h.call("GET", "/policies", Some(&admin), None).await;
        assert_eq!(r.body["policies"].as_array().unwrap().len(), 2);
        let r = h
            .call("GET", "/policies?type=other", Some(&admin), None)
            .await;
        assert_eq!(r.body["policies"].as_array().unwrap().len(), 1);
        assert_eq!(
            h.call("GET", "/policies", Some(&demo), None).await.status,
            403
        );

        let r = h
            .call(
                "PATCH",
                &format!("/policies/{id}"),
                Some(&admin),
                Some(json!({"policy": {"type": "new"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["policy"]["type"], "new");
        assert_eq!(r.body["policy"]["blob"], "{\"a\": 1}");
        let r = h
            .call(
                "PATCH",
                &format!("/policies/{id}"),
                Some(&admin),
                Some(json!({"policy": {"id": "x"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change policy ID"))
        );
        let r = h
            .call(
                "PATCH",
                "/policies/missing",
                Some(&admin),
                Some(json!({"policy": {"type": "t"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find policy: missing."))
        );
        let r = h
            .call("GET", &format!("/policies/{id}"), Some(&admin), None)
            .await;
        assert_eq!((r.status, &r.body["policy"]["type"]), (200, &json!("new")));
        assert_eq!(
            h.call("DELETE", &format!("/policies/{id}"), Some(&admin), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("GET", &format!("/policies/{id}"), Some(&admin), None)
                .await
                .status,
            404
        );
    }
}
