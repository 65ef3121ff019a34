//! The Glance v2 HTTP API, one module per resource.

mod data;
mod discovery;
mod images;
mod import;
mod list;
mod members;
mod patch;
mod tags;

use crate::db;
use crate::model::Image;
use crate::service::{Images, db_error};
use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    routing::{get, post, put},
};
use ferrostack_api::{ApiError, Auth, ErrorFormat, with_error_format};
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared handler state.
pub type AppState = State<Arc<Images>>;

/// The image router (mounted at `/image`).
pub fn router(images: Arc<Images>) -> Router {
    let streamed = Router::new()
        .route(
            "/v2/images/{id}/file",
            put(data::upload).get(data::download),
        )
        .route("/v2/images/{id}/stage", put(data::stage))
        .layer(DefaultBodyLimit::disable());
    let router = Router::new()
        .route("/", get(discovery::versions))
        .route("/versions", get(discovery::versions_ok))
        .route("/v2/images", get(list::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(patch::update)
                .delete(images::delete),
        )
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route("/v2/images/{id}/import", post(import::import))
        .route("/v2/images/{id}/tasks", get(import::tasks))
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(tags::add).delete(tags::remove),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/schemas/image", get(discovery::image_schema))
        .route("/v2/schemas/images", get(discovery::images_schema))
        .route("/v2/schemas/member", get(discovery::member_schema))
        .route("/v2/schemas/members", get(discovery::members_schema))
        .route("/v2/info/import", get(discovery::info_import))
        .route("/v2/info/stores", get(discovery::info_stores))
        .route("/v2/info/usage", get(discovery::info_usage))
        .merge(streamed)
        .fallback(discovery::fallback)
        .with_state(images);
    with_error_format(router, ErrorFormat::Glance)
}

/// Whether the caller is an admin (`context_is_admin`).
pub(crate) fn is_admin(auth: &Auth) -> bool {
    auth.allows("context_is_admin", &json!({}))
}

/// A caller's view of one image: the image, whether the caller's project is a member, and
/// the policy target Glance builds for it.
pub(crate) struct Visible {
    pub image: Image,
    pub member: Option<crate::model::Member>,
    pub admin: bool,
}

impl Visible {
    /// Glance's image policy target.
    pub fn target(&self) -> Value {
        let mut target = serde_json::Map::new();
        if let Some(owner) = &self.image.owner {
            target.insert("project_id".into(), json!(owner));
            target.insert("owner".into(), json!(owner));
        }
        target.insert("visibility".into(), json!(self.image.visibility));
        if let Some(m) = &self.member {
            target.insert("member_id".into(), json!(m.member));
        }
        Value::Object(target)
    }

    /// Whether the caller's project owns the image.
    pub fn owned_by(&self, auth: &Auth) -> bool {
        self.image.owner.is_some() && self.image.owner.as_deref() == auth.project_id()
    }
}

/// Loads image `id` as the caller sees it: 404 with `not_found` when it does not exist or the
/// caller may not see it (Glance's `is_image_visible`: admin, owner, public, community, or
/// any membership of a shared image).
pub(crate) async fn visible(
    images: &Images,
    auth: &Auth,
    id: &str,
    not_found: impl FnOnce() -> String,
) -> Result<Visible, ApiError> {
    let image = match images.load(id).await? {
        Some(image) => image,
        None => return Err(ApiError::not_found(not_found())),
    };
    let member = match auth.project_id() {
        Some(project) => db::member(&images.store, id, project)
            .await
            .map_err(db_error)?,
        None => None,
    };
    let view = Visible {
        admin: is_admin(auth),
        image,
        member,
    };
    let seen = view.admin
        || view.owned_by(auth)
        || matches!(view.image.visibility.as_str(), "public" | "community")
        || (view.image.visibility == "shared" && view.member.is_some());
    if !seen {
        return Err(ApiError::not_found(not_found()));
    }
    Ok(view)
}

/// Glance's "No image found with ID" text.
pub(crate) fn no_image(id: &str) -> impl FnOnce() -> String + '_ {
    move || format!("No image found with ID {id}")
}

/// Enforces `action` on the image; a caller who may not even `get_image` gets a 404.
pub(crate) fn enforce_on(
    auth: &Auth,
    view: &Visible,
    action: &str,
    forbidden: impl FnOnce() -> String,
) -> Result<(), ApiError> {
    let target = view.target();
    if auth.allows(action, &target) {
        return Ok(());
    }
    if !auth.allows("get_image", &target) {
        return Err(ApiError::not_found(format!(
            "No image found with ID {}",
            view.image.id
        )));
    }
    Err(ApiError::forbidden(forbidden()))
}
#[cfg(test)]
mod tests;
