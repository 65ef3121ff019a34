//! `/v2.0/floatingips`: addresses of external networks, associated with a port's fixed
//! address through a router (with the associated port's details, fip-port-details).

use super::authz::{enforce, enforce_attributes, enforce_visible, strip};
use super::body::{self, Attr, attr, check_attributes, ip_or_null, is_admin, name};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::floatingips::{self, FloatingIpRequest, FloatingIpUpdate};
use crate::errors;
use crate::model::{FloatingIp, Port, new_id, now};
use crate::service::Networking;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Value, json};

const ATTRS: &[Attr] = &[
    attr("id", false, false),
    attr("floating_ip_address", true, false),
    attr("subnet_id", true, false),
    attr("floating_network_id", true, false),
    attr("router_id", false, false),
    attr("port_id", true, true),
    attr("fixed_ip_address", true, true),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("status", false, false),
    attr("description", true, true),
    attr("port_details", false, false),
    attr("port_forwardings", false, false),
    attr("qos_policy_id", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const SORT_KEYS: &[&str] = &[
    "id",
    "floating_ip_address",
    "floating_network_id",
    "router_id",
    "fixed_ip_address",
    "tenant_id",
    "project_id",
    "status",
    "description",
    "created_at",
    "updated_at",
    "revision_number",
];

async fn full_view(net: &Networking, fip: &FloatingIp) -> Result<Value, ApiError> {
    let port: Option<Port> = match &fip.port_id {
        Some(id) => net.db.get(id).await?,
        None => None,
    };
    Ok(fip.view(port.as_ref()))
}

fn shown(auth: &Auth, full: &Value) -> Option<Value> {
    if !auth.allows("get_floatingip", full) {
        return None;
    }
    let mut view = full.clone();
    strip(auth, "floatingip", &mut view, full);
    Some(view)
}

async fn load_visible(net: &Networking, auth: &Auth, id: &str) -> Result<FloatingIp, ApiError> {
    let fip: FloatingIp = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::floatingip_not_found(id))?;
    if !auth.allows("get_floatingip", &fip.view(None)) {
        return Err(errors::floatingip_not_found(id));
    }
    Ok(fip)
}

/// `GET /v2.0/floatingips`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let found: Vec<FloatingIp> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        let project = auth.project_id().unwrap_or_default().to_string();
        net.db.select("project_id = $1", &[&project]).await?
    };
    let mut items = Vec::new();
    for fip in &found {
        let full = full_view(&net, fip).await?;
        if let Some(view) = shown(&auth, &full)
            && q.matches(&view, &full)
        {
            items.push(view);
        }
    }
    Ok(axum::Json(q.respond("floatingips", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/floatingips/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let fip = load_visible(&net, &auth, &id).await?;
    let full = full_view(&net, &fip).await?;
    let view = shown(&auth, &full).unwrap_or_default();
    Ok(ok(
        "floatingip",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

async fn check_port(net: &Networking, auth: &Auth, port_id: &str) -> Result<(), ApiError> {
    let port: Port = net
        .db
        .get(port_id)
        .await?
        .ok_or_else(|| errors::port_not_found(port_id))?;
    let network = net.db.get(&port.network_id).await?;
    if super::ports::visible(auth, &port, network.as_ref()).is_none() {
        return Err(errors::port_not_found(port_id));
    }
    Ok(())
}

fn fixed_ip(map: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
    Ok(ip_or_null(map, "fixed_ip_address")?
        .flatten()
        .map(|ip| ip.to_string()))
}

/// `POST /v2.0/floatingips`
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut map = body::resource_object(body, "floatingip")?;
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(&auth, &mut map)?;
    let network_id = body::uuid(&map, "floating_network_id")?.ok_or_else(|| {
        errors::bad_request(
            "Failed to parse request. Required attribute 'floating_network_id' not specified",
        )
    })?;
    let ts = now();
    let fip = FloatingIp {
        id: new_id(),
        project_id: project,
        floating_network_id: network_id.clone(),
        floating_ip_address: String::new(),
        floating_port_id: String::new(),
        port_id: None,
        fixed_ip_address: None,
        router_id: None,
        status: "DOWN".into(),
        description: name(&map, "description")?.unwrap_or_default(),
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let request = FloatingIpRequest {
        subnet_id: body::uuid_or_null(&map, "subnet_id")?.flatten(),
        floating_ip_address: ip_or_null(&map, "floating_ip_address")?.flatten(),
        port_id: body::uuid_or_null(&map, "port_id")?.flatten(),
        fixed_ip_address: fixed_ip(&map)?,
        fip,
    };
    let mut target = request.fip.view(None);
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(&auth, "create_floatingip", &target)?;
    enforce_attributes(
        &auth,
        "create_floatingip",
        &map,
        &[("floating_ip_address", Value::Null), ("tags", json!([]))],
        &target,
        true,
    )?;
    super::networks::load_visible(&net, &auth, &network_id).await?;
    if let Some(port_id) = &request.port_id {
        check_port(&net, &auth, port_id).await?;
    }
    let fip = crate::db::write_tx!(net.db, |tx| floatingips::create(
        tx,
        &net.settings,
        &request
    )
    .await)?;
    net.network_changed(&[fip.port_id.as_deref()]).await;
    let full = full_view(&net, &fip).await?;
    Ok(created("floatingip", shown(&auth, &full).unwrap_or(full)))
}

/// `PUT /v2.0/floatingips/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "floatingip")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let change = FloatingIpUpdate {
        port_id: body::uuid_or_null(&map, "port_id")?,
        fixed_ip_address: fixed_ip(&map)?,
        description: name(&map, "description")?,
    };
    let fip = load_visible(&net, &auth, &id).await?;
    let mut target = fip.view(None);
    enforce_visible(
        &auth,
        "update_floatingip",
        "get_floatingip",
        &target,
        || errors::floatingip_not_found(&id),
    )?;
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce_attributes(&auth, "update_floatingip", &map, &[], &target, false)?;
    if let Some(Some(port_id)) = &change.port_id {
        check_port(&net, &auth, port_id).await?;
    }
    let updated =
        crate::db::write_tx!(net.db, |tx| floatingips::update(tx, &id, &change, revision)
            .await)?;
    if (&updated.port_id, &updated.fixed_ip_address) != (&fip.port_id, &fip.fixed_ip_address) {
        net.network_changed(&[fip.port_id.as_deref(), updated.port_id.as_deref()])
            .await;
    }
    let full = full_view(&net, &updated).await?;
    Ok(ok("floatingip", shown(&auth, &full).unwrap_or(full)))
}

/// `DELETE /v2.0/floatingips/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let fip = load_visible(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_floatingip",
        "get_floatingip",
        &fip.view(None),
        || errors::floatingip_not_found(&id),
    )?;
    crate::db::write_tx!(net.db, |tx| floatingips::delete(tx, &id, revision).await)?;
    net.network_changed(&[fip.port_id.as_deref()]).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
