//! User messages (`cinder/api/v3/messages.py`, 3.3): list, show and delete the messages of
//! the caller's project (an admin sees every project's). From 3.5 the list takes Cinder's
//! filters, sorting and pagination.

use super::query::{Collection, ListQuery};
use super::views::{self, ViewCtx};
use super::{AppState, Mv, at_least, ok};
use crate::db::write_tx;
use crate::messages::Message;
use crate::service::Volumes;
use axum::{
    Json, Router,
    extract::{OriginalUri, Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/messages", get(index))
        .route("/messages/{id}", get(show).delete(delete))
}

/// The message filters (`resource_filters.json`) and columns.
const COLLECTION: Collection = Collection {
    user_filters: &[
        "resource_uuid",
        "resource_type",
        "event_id",
        "request_id",
        "message_level",
    ],
    versioned_filters: &[],
    booleans: &[],
    columns: &[
        "id",
        "project_id",
        "event_id",
        "message_level",
        "resource_type",
        "resource_uuid",
        "request_id",
        "created_at",
        "expires_at",
    ],
};

/// Below 3.3 the API does not exist (Cinder's `VersionNotFoundForAPIMethod`).
fn check_version(mv: &Mv) -> Result<(), ApiError> {
    match at_least(mv, 3) {
        true => Ok(()),
        false => Err(ApiError::not_found("The resource could not be found.")),
    }
}

/// The policy target of a message (`{project_id, user_id}` of the caller, then the message's).
fn target(auth: &Auth, message: Option<&Message>) -> Value {
    let project = message.map_or(auth.project_id(), |m| Some(m.project_id.as_str()));
    json!({"project_id": project, "user_id": auth.user.id})
}

fn checked(auth: &Auth, rule: &str, message: Option<&Message>) -> Result<(), ApiError> {
    auth.enforce(rule, &target(auth, message))
        .map_err(|e| match e.status {
            StatusCode::FORBIDDEN => crate::errors::policy_denied(rule),
            _ => e,
        })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Message {id} could not be found."))
}

/// The message `id` of the caller's project (any project's for an admin).
async fn visible(v: &Volumes, auth: &Auth, id: &str) -> Result<Message, ApiError> {
    let found: Option<Message> = v.db.get(id).await?;
    match found {
        Some(m) if super::is_admin(auth) || auth.project_id() == Some(m.project_id.as_str()) => {
            Ok(m)
        }
        _ => Err(not_found(id)),
    }
}

/// The row filters and sorting work over.
fn row(m: &Message) -> Value {
    json!({
        "id": m.id, "project_id": m.project_id, "event_id": m.event_id,
        "message_level": m.message_level, "resource_type": m.resource_type,
        "resource_uuid": m.resource_uuid, "request_id": m.request_id,
        "created_at": m.created_at, "expires_at": m.expires_at,
    })
}

/// A message as Cinder's view shows it.
fn view(m: &Message, ctx: &ViewCtx) -> Value {
    let mut body = json!({
        "id": m.id,
        "event_id": m.event_id,
        "user_message": m.user_message(),
        "message_level": m.message_level,
        "created_at": views::timestamp(&m.created_at),
        "guaranteed_until": views::timestamp(&m.expires_at),
        "request_id": m.request_id,
        "links": ctx.links("messages", &m.id),
    });
    if let Some(t) = &m.resource_type {
        body["resource_type"] = json!(t);
    }
    if let Some(u) = &m.resource_uuid {
        body["resource_uuid"] = json!(u);
    }
    body
}

/// `GET /v3/messages`
async fn index(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    check_version(&mv)?;
    checked(&auth, "message:get_all", None)?;
    let admin = super::is_admin(&auth);
    // Before 3.5 the query is not read.
    let raw = raw.filter(|_| at_least(&mv, 5));
    let q = ListQuery::parse(raw.as_deref(), mv.0, admin, &COLLECTION)?;
    let messages: Vec<Message> = match admin {
        true => v.db.select("1 = 1", &[]).await?,
        false => {
            let project = auth.project_id().unwrap_or_default();
            v.db.select("project_id = $1", &[project]).await?
        }
    };
    let marker = match q.marker() {
        None => None,
        Some(id) => Some(row(&visible(&v, &auth, id).await?)),
    };
    let items = messages.iter().map(|m| (row(m), m)).collect();
    let (page, _) = q.select(items, marker.as_ref());
    let ctx = ViewCtx::new(&v, &auth, mv.0, &uri);
    let mut body = json!({"messages": page.iter().map(|m| view(m, &ctx)).collect::<Vec<_>>()});
    let last = page.last().map(|m| m.id.as_str());
    if let Some(links) = q.links(&format!("{}/messages", ctx.prefix), last, page.len()) {
        body["messages_links"] = links;
    }
    Ok(Json(body).into_response())
}

/// `GET /v3/messages/{id}`
async fn show(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_version(&mv)?;
    let message = visible(&v, &auth, &id).await?;
    checked(&auth, "message:get", Some(&message))?;
    let ctx = ViewCtx::new(&v, &auth, mv.0, &uri);
    Ok(ok("message", view(&message, &ctx)))
}

/// `DELETE /v3/messages/{id}` (204).
async fn delete(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_version(&mv)?;
    let message = visible(&v, &auth, &id).await?;
    checked(&auth, "message:delete", Some(&message))?;
    write_tx!(v.db, |tx| tx.delete::<Message>(&id).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
