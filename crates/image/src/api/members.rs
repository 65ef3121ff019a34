//! Image members: sharing `shared` images with other projects.

use super::images::check_quota;
use super::{AppState, Visible, enforce_on, visible};
use crate::db;
use crate::model::{Member, now};
use crate::service::db_error;
use axum::{Json, extract::Path, http::StatusCode};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Value, json};

async fn shared_image(state: &AppState, auth: &Auth, id: &str) -> Result<Visible, ApiError> {
    visible(&state.0, auth, id, || format!("Image {id} not found.")).await
}

/// The members the caller may see: all for the owner and admins, else only its own row.
fn seen_by(view: &Visible, auth: &Auth, members: Vec<Member>) -> Vec<Member> {
    if view.admin || view.owned_by(auth) {
        return members;
    }
    members
        .into_iter()
        .filter(|m| Some(m.member.as_str()) == auth.project_id())
        .collect()
}

/// `GET /v2/images/{id}/members`
pub async fn list(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = shared_image(&state, &auth, &id).await?;
    enforce_on(&auth, &view, "get_members", || {
        "You are not authorized to complete get_members action.".into()
    })?;
    if view.image.visibility != "shared" {
        return Err(ApiError::forbidden(format!(
            "Not allowed to list members for image {id}: Only shared images have members."
        )));
    }
    let members = db::members(&state.0.store, &id).await.map_err(db_error)?;
    let members: Vec<Value> = seen_by(&view, &auth, members)
        .iter()
        .map(Member::to_json)
        .collect();
    Ok(Json(
        json!({"members": members, "schema": "/v2/schemas/members"}),
    ))
}

/// `GET /v2/images/{id}/members/{member}`
pub async fn show(
    auth: Auth,
    state: AppState,
    Path((id, member)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let view = shared_image(&state, &auth, &id).await?;
    enforce_on(&auth, &view, "get_member", || {
        "You are not authorized to complete get_member action.".into()
    })?;
    if view.image.visibility != "shared" {
        return Err(ApiError::not_found("Only shared images have members."));
    }
    let found = db::member(&state.0.store, &id, &member)
        .await
        .map_err(db_error)?;
    match found
        .map(|m| seen_by(&view, &auth, vec![m]))
        .and_then(|mut v| v.pop())
    {
        Some(m) => Ok(Json(m.to_json())),
        None => Err(ApiError::not_found(format!(
            "{member} not found in the member list of the image {id}."
        ))),
    }
}

/// `POST /v2/images/{id}/members`
pub async fn create(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let images = &state.0;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        ));
    };
    let member_id = match fields.get("member") {
        None => return Err(ApiError::bad_request("Member to be added not specified")),
        Some(Value::String(m)) if m.trim().is_empty() => {
            return Err(ApiError::bad_request("Member can't be empty"));
        }
        Some(Value::String(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Expected a member in the form: {\"member\": \"image_id\"}",
            ));
        }
    };
    let view = shared_image(&state, &auth, &id).await?;
    enforce_on(&auth, &view, "add_member", || {
        format!("Not allowed to create members for image {id}.")
    })?;
    if view.image.visibility != "shared" {
        return Err(ApiError::forbidden(format!(
            "Not allowed to create members for image {id}."
        )));
    }
    let existing = db::members(&images.store, &id).await.map_err(db_error)?;
    if existing.iter().any(|m| m.member == member_id) {
        return Err(ApiError::conflict(format!(
            "Member {member_id} is duplicated for image {id}"
        )));
    }
    check_quota(
        existing.len() + 1,
        images.config.image_member_quota,
        "member",
        &id,
    )?;
    let stamp = now();
    let member = Member {
        image_id: id.clone(),
        member: member_id,
        status: "pending".into(),
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    db::insert_member(&images.store, &member)
        .await
        .map_err(|e| match e {
            ferrostack_store::StoreError::Conflict(_) => ApiError::conflict(format!(
                "Member {} is duplicated for image {id}",
                member.member
            )),
            other => db_error(other),
        })?;
    tracing::info!(image = %id, member = %member.member, "image member added");
    Ok(Json(member.to_json()))
}

/// `PUT /v2/images/{id}/members/{member}`
pub async fn update(
    auth: Auth,
    state: AppState,
    Path((id, member)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let images = &state.0;
    let status = match body.get("status") {
        None => return Err(ApiError::bad_request("Status not specified")),
        Some(Value::String(s)) if ["pending", "accepted", "rejected"].contains(&s.as_str()) => {
            s.clone()
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\".",
            ));
        }
    };
    let view = shared_image(&state, &auth, &id).await?;
    let mut target = view.target();
    target["member_id"] = json!(member);
    let not_found = || {
        ApiError::not_found(format!(
            "{member} not found in the member list of the image {id}."
        ))
    };
    // A member sees only its own row: any other is "not found" to it.
    let own_row = auth.project_id() == Some(member.as_str());
    if !own_row && !view.owned_by(&auth) && !view.admin {
        return Err(not_found());
    }
    let found = db::member(&images.store, &id, &member)
        .await
        .map_err(db_error)?;
    if !auth.allows("modify_member", &target) {
        return Err(ApiError::forbidden(format!(
            "Not allowed to update members for image {id}."
        )));
    }
    if view.image.visibility != "shared" {
        return Err(ApiError::forbidden(format!(
            "Not allowed to update members for image {id}."
        )));
    }
    let mut row = found.ok_or_else(not_found)?;
    row.status = status;
    row.updated_at = now();
    db::update_member(&images.store, &row)
        .await
        .map_err(db_error)?;
    tracing::info!(image = %id, %member, status = %row.status, "image member updated");
    Ok(Json(row.to_json()))
}

/// `DELETE /v2/images/{id}/members/{member}`
pub async fn delete(
    auth: Auth,
    state: AppState,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    let view = shared_image(&state, &auth, &id).await?;
    enforce_on(&auth, &view, "delete_member", || {
        "You are not authorized to complete delete_member action.".into()
    })?;
    if view.image.visibility != "shared" {
        return Err(ApiError::forbidden(format!(
            "Not allowed to delete members for image {id}."
        )));
    }
    if db::member(&images.store, &id, &member)
        .await
        .map_err(db_error)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "{member} not found in the member list of the image {id}."
        )));
    }
    db::delete_member(&images.store, &id, &member)
        .await
        .map_err(db_error)?;
    tracing::info!(image = %id, %member, "image member removed");
    Ok(StatusCode::NO_CONTENT)
}
