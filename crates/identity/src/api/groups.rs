//! `/v3/groups` (with membership) and `/v3/users/{user_id}/groups`

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
    routing::get,
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{group_id}", get(show).patch(update).delete(remove))
        .route("/groups/{group_id}/users", get(list_users))
        .route(
            "/groups/{group_id}/users/{user_id}",
            get(check_member).put(add_member).delete(remove_member),
        )
        .route("/users/{user_id}/groups", get(user_groups))
}

/// Keystone's `_identity_name`.
const NAME: &str = r#"{"type": "string", "minLength": 1, "maxLength": 255, "pattern": "[\\S]+"}"#;

static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let name: Value = serde_json::from_str(NAME).expect("static schema");
    Schema::new(
        json!({"type": "object", "required": ["group"], "additionalProperties": false, "properties": {"group": {
        "type": "object", "required": ["name"],
        "properties": {
            "domain_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-zA-Z0-9-]+$"},
            "description": {"type": ["string", "null"]},
            "name": name
        }}}}),
    )
});

static UPDATE: LazyLock<Schema> = LazyLock::new(|| {
    let name: Value = serde_json::from_str(NAME).expect("static schema");
    Schema::new(
        json!({"type": "object", "required": ["group"], "additionalProperties": false, "properties": {"group": {
        "type": "object", "minProperties": 1,
        "properties": {"description": {"type": ["string", "null"]}, "name": name}}}}),
    )
});

const CORE: &[&str] = &["id", "name", "domain_id", "description", "links"];

/// Keystone's JSON of a group.
pub fn group_json(identity: &Identity, g: &Group) -> Value {
    with_extra(
        json!({
            "id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": links(identity, &format!("groups/{}", g.id)),
        }),
        &g.extra,
    )
}

/// The policy target of a group.
pub fn target(g: &Group) -> Value {
    json!({"target": {"group": {"id": g.id, "domain_id": g.domain_id, "name": g.name}}})
}

fn find(identity: &Identity, id: &str) -> Result<Group, ApiError> {
    identity
        .read()
        .groups
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("group", id))
}

fn conflict(name: &str, domain_id: Option<&str>) -> ApiError {
    let details = match domain_id {
        Some(d) => format!("Duplicate entry found with name {name} at domain ID {d}"),
        None => format!("Duplicate entry found with name {name}"),
    };
    ApiError::conflict(format!(
        "Conflict occurred attempting to store group - {details}."
    ))
}

/// `GET /v3/groups`
async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    // Keystone's target is the scoping domain of a domain-scoped token, and the list is then
    // limited to that domain.
    let scoped_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let t = match &scoped_domain {
        Some(d) => json!({"target": {"group": {"domain_id": d}}}),
        None => json!({}),
    };
    auth.enforce("identity:list_groups", &t)?;
    let domain_filter = query_value(&query, "domain_id");
    let data = identity.read();
    let mut groups: Vec<&Group> = data
        .groups
        .values()
        .filter(|g| domain_filter.is_none_or(|d| g.domain_id == d))
        .filter(|g| scoped_domain.as_ref().is_none_or(|d| *d == g.domain_id))
        .filter(|g| name_matches(&query, &g.name))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<Value> = groups
        .into_iter()
        .map(|g| group_json(&identity, g))
        .collect();
    Ok(Json(
        json!({"groups": body, "links": collection_links(&identity, "groups")}),
    ))
}

/// `POST /v3/groups`
async fn create(
    State(identity): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    CREATE.validate(&body)?;
    let b = member(&body, "group")?;
    // Keystone enforces on the body as sent (before filling in the domain).
    auth.enforce("identity:create_group", &json!({"target": {"group": b}}))?;
    let domain_id = b
        .get("domain_id")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(String::from)
        .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
        .unwrap_or_else(|| "default".into());
    let group = Group {
        id: new_id(),
        name: b["name"].as_str().unwrap_or_default().trim().to_string(),
        domain_id,
        description: b
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        extra: extra_from(b, CORE),
    };
    {
        let data = identity.read();
        if !data.domains.contains_key(&group.domain_id) {
            return Err(not_found("domain", &group.domain_id));
        }
        if data
            .groups
            .values()
            .any(|g| g.domain_id == group.domain_id && g.name == group.name)
        {
            return Err(conflict(&group.name, Some(&group.domain_id)));
        }
    }
    identity.write(vec![Change::put(&group)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"group": group_json(&identity, &group)})),
    ))
}

/// `GET /v3/groups/{group_id}`
async fn show(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id);
    let t = found
        .as_ref()
        .map(target)
        .unwrap_or_else(|_| json!({"target": {}}));
    auth.enforce("identity:get_group", &t)?;
    Ok(Json(json!({"group": group_json(&identity, &found?)})))
}

/// `PATCH /v3/groups/{group_id}`
async fn update(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    UPDATE.validate(&body)?;
    let found = find(&identity, &id);
    let t = found
        .as_ref()
        .map(target)
        .unwrap_or_else(|_| json!({"target": {}}));
    auth.enforce("identity:update_group", &t)?;
    let mut group = found?;
    let b = member(&body, "group")?;
    if b.get("id")
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(id.as_str()))
    {
        return Err(ApiError::bad_request("Cannot change ID"));
    }
    if let Some(d) = b.get("domain_id")
        && d.as_str() != Some(group.domain_id.as_str())
    {
        return Err(ApiError::bad_request("Cannot change Domain ID"));
    }
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        let name = name.trim();
        if name != group.name
            && identity
                .read()
                .groups
                .values()
                .any(|g| g.domain_id == group.domain_id && g.name == name)
        {
            return Err(conflict(name, b.get("domain_id").and_then(Value::as_str)));
        }
        group.name = name.to_string();
    }
    if let Some(v) = b.get("description") {
        group.description = v.as_str().unwrap_or_default().to_string();
    }
    group.extra.extend(extra_from(b, CORE));
    identity.write(vec![Change::put(&group)]).await?;
    Ok(Json(json!({"group": group_json(&identity, &group)})))
}

/// `DELETE /v3/groups/{group_id}`: the group, its memberships and its role assignments. When it
/// had assignments, its members' tokens are revoked (Keystone persists a revocation event per
/// member).
async fn remove(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let group = find(&identity, &id)?;
    auth.enforce("identity:delete_group", &target(&group))?;
    let changes = {
        let data = identity.read();
        let mut changes = vec![Change::delete(&group)];
        let assignments: Vec<&Assignment> = data
            .assignments
            .values()
            .filter(|a| a.actor == Actor::Group(id.clone()))
            .collect();
        changes.extend(assignments.iter().map(|a| Change::delete(*a)));
        let members: Vec<&Membership> = data
            .memberships
            .values()
            .filter(|m| m.group_id == id)
            .collect();
        changes.extend(members.iter().map(|m| Change::delete(*m)));
        if !assignments.is_empty() {
            changes.extend(
                members
                    .iter()
                    .map(|m| super::users::revoke_user_tokens(&m.user_id)),
            );
        }
        changes
    };
    identity.write(changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/groups/{group_id}/users`
async fn list_users(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let found = find(&identity, &id);
    let t = found.as_ref().map(target).unwrap_or_else(|_| json!({}));
    auth.enforce("identity:list_users_in_group", &t)?;
    found?;
    let domain_filter = query_value(&query, "domain_id");
    let scoped_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let data = identity.read();
    let members = data.members_of(&id);
    let mut users: Vec<&User> = members
        .iter()
        .filter_map(|u| data.users.get(u))
        .filter(|u| domain_filter.is_none_or(|d| u.domain_id == d))
        .filter(|u| scoped_domain.as_ref().is_none_or(|d| *d == u.domain_id))
        .filter(|u| name_matches(&query, &u.name) && enabled_matches(&query, u.enabled))
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<Value> = users
        .into_iter()
        .map(|u| super::users::user_json(&identity, u))
        .collect();
    Ok(Json(
        json!({"users": body, "links": collection_links(&identity, &format!("groups/{id}/users"))}),
    ))
}

/// The target of the membership calls: the group and the user, those that exist.
fn membership_target(identity: &Identity, group_id: &str, user_id: &str) -> Value {
    let data = identity.read();
    let mut t = serde_json::Map::new();
    if let Some(g) = data.groups.get(group_id) {
        t.insert(
            "group".into(),
            json!({"id": g.id, "domain_id": g.domain_id, "name": g.name}),
        );
    }
    if let Some(u) = data.users.get(user_id) {
        t.insert(
            "user".into(),
            json!({"id": u.id, "domain_id": u.domain_id, "name": u.name}),
        );
    }
    json!({"target": t, "group_id": group_id, "user_id": user_id})
}

/// 404 for a missing group, then a missing user (in Keystone's order).
fn require_group_and_user(
    identity: &Identity,
    group_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    let data = identity.read();
    if !data.groups.contains_key(group_id) {
        return Err(not_found("group", group_id));
    }
    if !data.users.contains_key(user_id) {
        return Err(not_found("user", user_id));
    }
    Ok(())
}

fn not_member(group_id: &str, user_id: &str) -> ApiError {
    ApiError::not_found(format!("User '{user_id}' not found in group '{group_id}'"))
}

/// `GET|HEAD /v3/groups/{group_id}/users/{user_id}`: 204 when a member.
async fn check_member(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:check_user_in_group",
        &membership_target(&identity, &group_id, &user_id),
    )?;
    require_group_and_user(&identity, &group_id, &user_id)?;
    let m = Membership { group_id, user_id };
    match identity.read().memberships.contains_key(&m.key()) {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(not_member(&m.group_id, &m.user_id)),
    }
}

/// `PUT /v3/groups/{group_id}/users/{user_id}` (idempotent).
async fn add_member(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:add_user_to_group",
        &membership_target(&identity, &group_id, &user_id),
    )?;
    require_group_and_user(&identity, &group_id, &user_id)?;
    let m = Membership { group_id, user_id };
    if !identity.read().memberships.contains_key(&m.key()) {
        identity.write(vec![Change::put(&m)]).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/groups/{group_id}/users/{user_id}`: also revokes the user's tokens, as Keystone
/// does (roles are recomputed on validation anyway).
async fn remove_member(
    State(identity): AppState,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:remove_user_from_group",
        &membership_target(&identity, &group_id, &user_id),
    )?;
    let m = Membership { group_id, user_id };
    if !identity.read().memberships.contains_key(&m.key()) {
        require_group_and_user(&identity, &m.group_id, &m.user_id)?;
        return Err(not_member(&m.group_id, &m.user_id));
    }
    identity
        .write(vec![
            Change::delete(&m),
            super::users::revoke_user_tokens(&m.user_id),
        ])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/users/{user_id}/groups`
async fn user_groups(
    State(identity): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Pairs,
) -> Result<Json<Value>, ApiError> {
    let user = super::users::find(&identity, &id);
    let t = user
        .as_ref()
        .map(super::users::target)
        .unwrap_or_else(|_| json!({"target": {}, "user_id": id}));
    auth.enforce("identity:list_groups_for_user", &t)?;
    user?;
    let scoped_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let data = identity.read();
    let mut groups: Vec<&Group> = data
        .groups_of(&id)
        .iter()
        .filter_map(|g| data.groups.get(g))
        .filter(|g| scoped_domain.as_ref().is_none_or(|d| *d == g.domain_id))
        .filter(|g| name_matches(&query, &g.name))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let mut v = group_json(&identity, g);
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    Ok(Json(
        json!({"groups": body, "links": collection_links(&identity, &format!("users/{id}/groups"))}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::api::harness::Harness;
    use ferrostack_fernet::Scope;
    use serde_json::json;

    #[tokio::test]
    async fn group_crud_follows_keystone() {
        let h = Harness::open("groups-crud").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let r = h.call("POST", "/groups", Some(&admin), Some(json!({"group": {"name": " devs ", "description": "Developers", "color": "red"}}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let g = &r.body["group"];
        assert_eq!(g["name"], "devs");
        assert_eq!(g["domain_id"], "default");
        assert_eq!(g["description"], "Developers");
        assert_eq!(g["color"], "red");
        let id = g["id"].as_str().unwrap().to_string();
        assert!(
            g["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/groups/{id}"))
        );

        let dup = h
            .call(
                "POST",
                "/groups",
                Some(&admin),
                Some(json!({"group": {"name": "devs"}})),
            )
            .await;
        assert_eq!(dup.status, 409);
        assert_eq!(
            dup.body["error"]["message"],
            "Conflict occurred attempting to store group - Duplicate entry found with name devs at domain ID default."
        );
        let r = h
            .call(
                "POST",
                "/groups",
                Some(&admin),
                Some(json!({"group": {"name": "x", "domain_id": "nowhere"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find domain: nowhere."))
        );
        let r = h
            .call("POST", "/groups", Some(&admin), Some(json!({"group": {}})))
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            h.call(
                "POST",
                "/groups",
                Some(&demo),
                Some(json!({"group": {"name": "y"}}))
            )
            .await
            .status,
            403
        );

        let r = h
            .call("GET", &format!("/groups/{id}"), Some(&admin), None)
            .await;
        assert_eq!((r.status, &r.body["group"]["id"]), (200, &json!(id)));
        let r = h.call("GET", "/groups/missing", Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("Could not find group: missing."))
        );
        assert_eq!(
            h.call("GET", &format!("/groups/{id}"), Some(&demo), None)
                .await
                .status,
            403
        );

        h.call(
            "POST",
            "/groups",
            Some(&admin),
            Some(json!({"group": {"name": "ops"}})),
        )
        .await;
        let r = h.call("GET", "/groups?name=devs", Some(&admin), None).await;
        assert_eq!(r.body["groups"].as_array().unwrap().len(), 1);
        let r = h
            .call("GET", "/groups?domain_id=default", Some(&admin), None)
            .await;
        assert_eq!(r.body["groups"].as_array().unwrap().len(), 2);
        assert!(
            r.body["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with("/v3/groups")
        );
        assert_eq!(
            h.call("GET", "/groups", Some(&demo), None).await.status,
            403
        );

        let r = h
            .call(
                "PATCH",
                &format!("/groups/{id}"),
                Some(&admin),
                Some(json!({"group": {"name": "ops"}})),
            )
            .await;
        assert_eq!(r.status, 409);
        let r = h
            .call(
                "PATCH",
                &format!("/groups/{id}"),
                Some(&admin),
                Some(json!({"group": {"domain_id": "other"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change Domain ID"))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/groups/{id}"),
                Some(&admin),
                Some(json!({"group": {"id": "other"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("Cannot change ID"))
        );
        let r = h
            .call(
                "PATCH",
                &format!("/groups/{id}"),
                Some(&admin),
                Some(json!({"group": {"name": "devs2", "description": null}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (
                r.body["group"]["name"].as_str(),
                r.body["group"]["description"].as_str()
            ),
            (Some("devs2"), Some(""))
        );

        assert_eq!(
            h.call("DELETE", &format!("/groups/{id}"), Some(&demo), None)
                .await
                .status,
            403
        );
        assert_eq!(
            h.call("DELETE", &format!("/groups/{id}"), Some(&admin), None)
                .await
                .status,
            204
        );
        assert_eq!(
            h.call("DELETE", &format!("/groups/{id}"), Some(&admin), None)
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn membership_grants_roles_and_removal_invalidates_tokens() {
        let h = Harness::open("groups-members").await;
        let admin = h.admin().await;
        let demo_id = h.user_id("demo");
        let r = h
            .call(
                "POST",
                "/groups",
                Some(&admin),
                Some(json!({"group": {"name": "team"}})),
            )
            .await;
        let gid = r.body["group"]["id"].as_str().unwrap().to_string();
        let member_path = format!("/groups/{gid}/users/{demo_id}");

        let r = h.call("GET", &member_path, Some(&admin), None).await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body["error"]["message"],
            format!("User '{demo_id}' not found in group '{gid}'")
        );
        assert_eq!(
            h.call(
                "PUT",
                &format!("/groups/{gid}/users/nobody"),
                Some(&admin),
                None
            )
            .await
            .status,
            404
        );
        assert_eq!(
            h.call(
                "PUT",
                &format!("/groups/nogroup/users/{demo_id}"),
                Some(&admin),
                None
            )
            .await
            .status,
            404
        );
        assert_eq!(
            h.call("PUT", &member_path, Some(&h.demo().await), None)
                .await
                .status,
            403
        );
        assert_eq!(
            h.call("PUT", &member_path, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("PUT", &member_path, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("GET", &member_path, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("HEAD", &member_path, Some(&admin), None)
                .await
                .status,
            204
        );

        let r = h
            .call("GET", &format!("/groups/{gid}/users"), Some(&admin), None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["users"][0]["id"], json!(demo_id));
        assert!(r.body["users"][0].get("password_hash").is_none());
        let r = h
            .call(
                "GET",
                &format!("/groups/{gid}/users?name=nobody"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["users"].as_array().unwrap().len(), 0);

        // A user may list their own groups.
        let demo = h.demo().await;
        let r = h
            .call(
                "GET",
                &format!("/users/{demo_id}/groups"),
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["groups"][0]["id"], json!(gid));
        assert!(r.body["groups"][0]["membership_expires_at"].is_null());
        let admin_id = h.user_id("admin");
        assert_eq!(
            h.call(
                "GET",
                &format!("/users/{admin_id}/groups"),
                Some(&demo),
                None
            )
            .await
            .status,
            403
        );

        // A role on a project through the group: the demo user can scope there.
        let r = h
            .call(
                "POST",
                "/projects",
                Some(&admin),
                Some(json!({"project": {"name": "team-project"}})),
            )
            .await;
        let pid = r.body["project"]["id"].as_str().unwrap().to_string();
        let grant = crate::model::Assignment {
            actor: crate::model::Actor::Group(gid.clone()),
            target: crate::model::Target::Project(pid.clone()),
            role_id: h.role_id("member"),
            inherited: false,
        };
        h.identity
            .write(vec![crate::data::Change::put(&grant)])
            .await
            .unwrap();
        let team_token = h.token(&demo_id, Scope::Project(pid.clone())).await;
        let ctx = h.identity.validate_token(&team_token).unwrap();
        assert!(ctx.roles.iter().any(|r| r.name == "member"));

        assert_eq!(
            h.call("DELETE", &member_path, Some(&admin), None)
                .await
                .status,
            204
        );
        assert!(
            h.identity.validate_token(&team_token).is_err(),
            "token relying on the group's role must be invalid"
        );
        assert!(
            h.identity.validate_token(&demo).is_err(),
            "Keystone revokes every token of the removed user"
        );
        assert_eq!(
            h.call("DELETE", &member_path, Some(&admin), None)
                .await
                .status,
            404
        );
        assert_eq!(
            h.call("GET", &member_path, Some(&admin), None).await.status,
            404
        );
        // New tokens work where the user still has a role, and not through the old group.
        let fresh = h.demo().await;
        assert!(h.identity.validate_token(&fresh).is_ok());
        let r = h
            .call(
                "GET",
                &format!("/users/{demo_id}/groups"),
                Some(&fresh),
                None,
            )
            .await;
        assert_eq!(r.body["groups"].as_array().unwrap().len(), 0);

        // Deleting the group drops its memberships and assignments.
        assert_eq!(
            h.call("PUT", &member_path, Some(&admin), None).await.status,
            204
        );
        assert_eq!(
            h.call("DELETE", &format!("/groups/{gid}"), Some(&admin), None)
                .await
                .status,
            204
        );
        let data = h.identity.read();
        assert!(data.memberships.values().all(|m| m.group_id != gid));
        assert!(
            data.assignments
                .values()
                .all(|a| a.actor != crate::model::Actor::Group(gid.clone()))
        );
    }
}
