//! The Neutron HTTP API (mounted at `/networking`), one module per resource.
//!
//! Every handler follows Neutron's controller: body checks (400) → visibility (404 for what the
//! caller may not see) → policy with attribute rules (403) → the store operation in one
//! transaction → the view, with the attributes the caller may not see removed.

mod agents;
pub mod authz;
pub mod body;
mod extensions;
mod floatingips;
mod networks;
mod ports;
pub mod query;
mod quotas;
mod routers;
mod security_groups;
mod subnetpools;
mod subnets;
mod tags;
#[cfg(test)]
mod tests;
mod versions;

use crate::service::Networking;
use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use ferrostack_api::{ErrorFormat, with_error_format};
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared handler state.
pub type AppState = State<Arc<Networking>>;

/// The absolute URL of a request (for pagination links).
pub(crate) fn request_url(net: &Networking, uri: &Uri) -> String {
    let path = uri.path();
    let path = path.strip_prefix("/networking").unwrap_or(path);
    format!("{}{path}", net.base_url())
}

/// `201 Created` with `{key: value}`.
pub(crate) fn created(key: &str, value: Value) -> Response {
    (StatusCode::CREATED, Json(json!({ key: value }))).into_response()
}

/// `200 OK` with `{key: value}`.
pub(crate) fn ok(key: &str, value: Value) -> Response {
    Json(json!({ key: value })).into_response()
}

/// The network router (mounted at `/networking`).
pub fn router(net: Arc<Networking>) -> Router {
    let v2 = Router::new()
        .route("/", get(versions::resources))
        .route("/extensions", get(extensions::index))
        .route("/extensions/{alias}", get(extensions::show))
        .route("/networks", get(networks::index).post(networks::create))
        .route(
            "/networks/{id}",
            get(networks::show)
                .put(networks::update)
                .delete(networks::delete),
        )
        .route("/subnets", get(subnets::index).post(subnets::create))
        .route(
            "/subnets/{id}",
            get(subnets::show)
                .put(subnets::update)
                .delete(subnets::delete),
        )
        .route(
            "/subnetpools",
            get(subnetpools::index).post(subnetpools::create),
        )
        .route(
            "/subnetpools/{id}",
            get(subnetpools::show)
                .put(subnetpools::update)
                .delete(subnetpools::delete),
        )
        .route("/ports", get(ports::index).post(ports::create))
        .route(
            "/ports/{id}",
            get(ports::show).put(ports::update).delete(ports::delete),
        )
        .route(
            "/security-groups",
            get(security_groups::index).post(security_groups::create),
        )
        .route(
            "/security-groups/{id}",
            get(security_groups::show)
                .put(security_groups::update)
                .delete(security_groups::delete),
        )
        .route(
            "/security-group-rules",
            get(security_groups::rules_index).post(security_groups::rule_create),
        )
        .route(
            "/security-group-rules/{id}",
            get(security_groups::rule_show).delete(security_groups::rule_delete),
        )
        .route("/routers", get(routers::index).post(routers::create))
        .route(
            "/routers/{id}",
            get(routers::show)
                .put(routers::update)
                .delete(routers::delete),
        )
        .route(
            "/routers/{id}/add_router_interface",
            put(routers::add_interface),
        )
        .route(
            "/routers/{id}/remove_router_interface",
            put(routers::remove_interface),
        )
        .route("/routers/{id}/add_extraroutes", put(routers::add_routes))
        .route(
            "/routers/{id}/remove_extraroutes",
            put(routers::remove_routes),
        )
        .route(
            "/floatingips",
            get(floatingips::index).post(floatingips::create),
        )
        .route(
            "/floatingips/{id}",
            get(floatingips::show)
                .put(floatingips::update)
                .delete(floatingips::delete),
        )
        .route("/quotas", get(quotas::index))
        .route("/quotas/tenant", get(quotas::tenant))
        .route("/quotas/project", get(quotas::tenant))
        .route(
            "/quotas/{project}",
            get(quotas::show).put(quotas::update).delete(quotas::reset),
        )
        .route("/quotas/{project}/default", get(quotas::defaults))
        .route("/quotas/{project}/details", get(quotas::details))
        .route("/agents", get(agents::index))
        .route(
            "/agents/{id}",
            get(agents::show).put(agents::update).delete(agents::delete),
        );
    let v2 = tags::routes(v2);
    let router = Router::new()
        .route("/", get(versions::index))
        .nest("/v2.0", v2)
        .with_state(net);
    with_error_format(router, ErrorFormat::Neutron)
}
