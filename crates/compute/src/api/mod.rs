//! The Nova HTTP API (mounted at `/compute`), one module per resource.

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod aggregate_tests;
mod aggregates;
mod availability_zones;
#[cfg(test)]
mod console_tests;
#[cfg(test)]
mod external_events_tests;
pub(crate) mod flavors;
mod hypervisors;
mod keypairs;
mod limits;
#[cfg(test)]
mod list_tests;
#[cfg(test)]
mod network_tests;
mod quota_sets;
pub(crate) mod remote_consoles;
mod server_external_events;
mod server_groups;
#[cfg(test)]
mod server_tests;
mod servers;
mod services;
#[cfg(test)]
mod tests;
mod versions;

use crate::service::Compute;
use axum::{
    Router,
    extract::{Request, State},
    http::HeaderValue,
    middleware::Next,
    response::Response,
    routing::{get, post, put},
};
use ferrostack_api::{
    ErrorFormat, MicroversionSpec, RequestId, Version, with_error_format, with_microversions,
};
use std::sync::Arc;

/// Shared handler state.
pub type AppState = State<Arc<Compute>>;

/// The microversions served: 2.1 up to the documented maximum.
pub const MICROVERSIONS: MicroversionSpec = MicroversionSpec {
    service_type: "compute",
    legacy_header: Some("X-OpenStack-Nova-API-Version"),
    min: Version::new(2, 1),
    max: Version::new(2, 96),
};

/// Nova answers every request with `x-compute-request-id` too (Tempest matches instance
/// actions by it).
async fn compute_request_id(request: Request, next: Next) -> Response {
    let id = request.extensions().get::<RequestId>().cloned();
    let mut response = next.run(request).await;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.0).ok()) {
        response.headers_mut().insert("x-compute-request-id", value);
    }
    response
}

/// The compute router (mounted at `/compute`).
pub fn router(compute: Arc<Compute>) -> Router {
    let v21 = Router::new()
        .route("/", get(versions::v21))
        .route("/flavors", get(flavors::index).post(flavors::create))
        .route("/flavors/detail", get(flavors::detail))
        .route(
            "/flavors/{id}",
            get(flavors::show)
                .put(flavors::update)
                .delete(flavors::delete),
        )
        .route(
            "/flavors/{id}/os-extra_specs",
            get(flavors::specs_index).post(flavors::specs_create),
        )
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(flavors::spec_show)
                .put(flavors::spec_update)
                .delete(flavors::spec_delete),
        )
        .route("/flavors/{id}/os-flavor-access", get(flavors::access_list))
        .route("/flavors/{id}/action", post(flavors::action))
        .route("/os-keypairs", get(keypairs::index).post(keypairs::create))
        .route(
            "/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route(
            "/os-server-groups",
            get(server_groups::index).post(server_groups::create),
        )
        .route(
            "/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
        .route("/limits", get(limits::index))
        .route(
            "/os-aggregates",
            get(aggregates::index).post(aggregates::create),
        )
        .route(
            "/os-aggregates/{id}",
            get(aggregates::show)
                .put(aggregates::update)
                .delete(aggregates::delete),
        )
        .route("/os-aggregates/{id}/action", post(aggregates::action))
        .route("/os-availability-zone", get(availability_zones::index))
        .route(
            "/os-availability-zone/detail",
            get(availability_zones::detail),
        )
        .route(
            "/os-quota-sets/{id}",
            get(quota_sets::show)
                .put(quota_sets::update)
                .delete(quota_sets::delete),
        )
        .route("/os-quota-sets/{id}/defaults", get(quota_sets::defaults))
        .route("/os-quota-sets/{id}/detail", get(quota_sets::detail))
        .route("/os-services", get(services::index))
        .route("/os-services/{id}", put(services::update))
        .route(
            "/os-server-external-events",
            post(server_external_events::create),
        )
        .route("/os-hypervisors", get(hypervisors::index))
        .route("/os-hypervisors/detail", get(hypervisors::detail))
        .route("/os-hypervisors/statistics", get(hypervisors::statistics))
        .route("/os-hypervisors/{id}", get(hypervisors::show))
        .route("/os-hypervisors/{id}/uptime", get(hypervisors::uptime_show))
        .route("/os-hypervisors/{id}/search", get(hypervisors::search))
        .route("/os-hypervisors/{id}/servers", get(hypervisors::servers))
        .route("/servers", get(servers::index).post(servers::create))
        .route("/servers/detail", get(servers::detail))
        .route(
            "/servers/{id}",
            get(servers::show)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route("/servers/{id}/action", post(servers::action))
        .route("/servers/{id}/ips", get(servers::ips::index))
        .route(
            "/servers/{id}/os-server-password",
            get(servers::password::show).delete(servers::password::clear),
        )
        .route("/servers/{id}/ips/{network}", get(servers::ips::show))
        .route(
            "/servers/{id}/os-volume_attachments",
            get(servers::volume_attachments::index).post(servers::volume_attachments::create),
        )
        .route(
            "/servers/{id}/os-volume_attachments/{volume_id}",
            get(servers::volume_attachments::show).delete(servers::volume_attachments::delete),
        )
        .route(
            "/servers/{id}/metadata",
            get(servers::metadata_index)
                .post(servers::metadata_create)
                .put(servers::metadata_replace),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            get(servers::metadata_show)
                .put(servers::metadata_set)
                .delete(servers::metadata_delete),
        )
        .route(
            "/servers/{id}/tags",
            get(servers::tags_index)
                .put(servers::tags_replace)
                .delete(servers::tags_clear),
        )
        .route(
            "/servers/{id}/tags/{tag}",
            get(servers::tag_show)
                .put(servers::tag_add)
                .delete(servers::tag_delete),
        )
        .route(
            "/servers/{id}/os-instance-actions",
            get(servers::actions_index),
        )
        .route(
            "/servers/{id}/remote-consoles",
            post(remote_consoles::create),
        )
        .route(
            "/os-console-auth-tokens/{token}",
            get(remote_consoles::show_token),
        )
        .route(
            "/servers/{id}/os-instance-actions/{request_id}",
            get(servers::action_show),
        );
    let router = Router::new()
        .route("/", get(versions::index))
        .route("/v2", get(versions::v20))
        .nest("/v2.1", with_microversions(v21, MICROVERSIONS))
        .fallback(versions::choices)
        .layer(axum::middleware::from_fn(compute_request_id))
        .with_state(compute);
    with_error_format(router, ErrorFormat::Nova)
}

/// The request's negotiated microversion.
pub(crate) type Mv = axum::Extension<Version>;

/// Whether the request's microversion is at least `major.minor`.
pub(crate) fn at_least(mv: &Mv, major: u16, minor: u16) -> bool {
    mv.0 >= Version::new(major, minor)
}
