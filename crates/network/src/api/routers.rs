//! `/v2.0/routers`: routers with an external gateway (SNAT switch, fixed IPs), interfaces by
//! subnet or port, and static routes (extraroute, extraroute-atomic).

use super::authz::{enforce, enforce_attributes, enforce_visible, strip};
use super::body::{self, Attr, attr, boolean, check_attributes, is_admin, name};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::ports::IpRequest;
use crate::db::routers::{self, GatewayRequest, InterfaceInfo, InterfaceRequest, RouterUpdate};
use crate::errors;
use crate::ipam;
use crate::model::{Port, Route, Router, Subnet, new_id, now};
use crate::service::Networking;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};

const ATTRS: &[Attr] = &[
    attr("id", false, false),
    attr("name", true, true),
    attr("description", true, true),
    attr("admin_state_up", true, true),
    attr("status", false, false),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("external_gateway_info", true, true),
    attr("routes", false, true),
    attr("distributed", false, false),
    attr("ha", false, false),
    attr("availability_zone_hints", true, false),
    attr("availability_zones", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "admin_state_up",
    "status",
    "tenant_id",
    "project_id",
    "created_at",
    "updated_at",
    "revision_number",
];

fn reason(attr: &str, why: impl std::fmt::Display) -> ApiError {
    errors::bad_request(format!("Invalid input for {attr}. Reason: {why}."))
}

async fn view(net: &Networking, auth: &Auth, router: &Router) -> Result<Value, ApiError> {
    let ips = routers::gateway_ips(&mut *net.db.conn().await?, router).await?;
    let full = router.view(&ips);
    let mut shown = full.clone();
    strip(auth, "router", &mut shown, &full);
    Ok(shown)
}

async fn load_visible(net: &Networking, auth: &Auth, id: &str) -> Result<Router, ApiError> {
    let router: Router = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::router_not_found(id))?;
    if !auth.allows("get_router", &router.view(&[])) {
        return Err(errors::router_not_found(id));
    }
    Ok(router)
}

/// `GET /v2.0/routers`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let found: Vec<Router> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        let project = auth.project_id().unwrap_or_default().to_string();
        net.db.select("project_id = $1", &[&project]).await?
    };
    let mut items = Vec::new();
    let mut conn = net.db.conn().await?;
    for router in &found {
        let ips = routers::gateway_ips(&mut conn, router).await?;
        let full = router.view(&ips);
        if !auth.allows("get_router", &full) {
            continue;
        }
        let mut shown = full.clone();
        strip(&auth, "router", &mut shown, &full);
        if q.matches(&shown, &full) {
            items.push(shown);
        }
    }
    Ok(axum::Json(q.respond("routers", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/routers/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let router = load_visible(&net, &auth, &id).await?;
    let shown = view(&net, &auth, &router).await?;
    Ok(ok(
        "router",
        trim_fields(shown, &show_fields(raw.as_deref())),
    ))
}

fn parse_gateway(map: &Map<String, Value>) -> Result<Option<Option<GatewayRequest>>, ApiError> {
    let value = match map.get("external_gateway_info") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(Value::Object(m)) if m.is_empty() => return Ok(Some(None)),
        Some(v) => v,
    };
    let Some(info) = value.as_object() else {
        return Err(reason(
            "external_gateway_info",
            format!("'{value}' is not a dictionary"),
        ));
    };
    let expected = ["network_id", "enable_snat", "external_fixed_ips"];
    if let Some(k) = info.keys().find(|k| !expected.contains(&k.as_str())) {
        return Err(reason(
            "external_gateway_info",
            format!(
                "Validation of dictionary's keys failed. Expected keys: {{'network_id'}} Provided keys: {{'{k}'}}"
            ),
        ));
    }
    let network_id = match info.get("network_id") {
        Some(v) => body::uuid_value(v, "external_gateway_info")?,
        None => {
            return Err(reason(
                "external_gateway_info",
                "Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: set()",
            ));
        }
    };
    let enable_snat = boolean(info, "enable_snat")?;
    let external_fixed_ips = match info.get("external_fixed_ips") {
        None => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let subnet_id = match item.get("subnet_id") {
                    None => None,
                    Some(v) => Some(body::uuid_value(v, "external_fixed_ips")?),
                };
                let ip_address = match item.get("ip_address").and_then(Value::as_str) {
                    None => None,
                    Some(s) => Some(ipam::parse_ip(s).ok_or_else(|| {
                        reason(
                            "external_fixed_ips",
                            format!("'{s}' is not a valid IP address"),
                        )
                    })?),
                };
                out.push(IpRequest {
                    subnet_id,
                    ip_address,
                });
            }
            Some(out)
        }
        Some(other) => {
            return Err(reason(
                "external_fixed_ips",
                format!("'{other}' is not a list"),
            ));
        }
    };
    Ok(Some(Some(GatewayRequest {
        network_id,
        enable_snat,
        external_fixed_ips,
    })))
}

async fn check_gateway_network(
    net: &Networking,
    auth: &Auth,
    gateway: &Option<Option<GatewayRequest>>,
) -> Result<(), ApiError> {
    if let Some(Some(g)) = gateway {
        super::networks::load_visible(net, auth, &g.network_id).await?;
    }
    Ok(())
}

/// `POST /v2.0/routers`
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut map = body::resource_object(body, "router")?;
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(&auth, &mut map)?;
    let gateway = parse_gateway(&map)?;
    let ts = now();
    let router = Router {
        id: new_id(),
        project_id: project,
        name: name(&map, "name")?.unwrap_or_default(),
        description: name(&map, "description")?.unwrap_or_default(),
        admin_state_up: boolean(&map, "admin_state_up")?.unwrap_or(true),
        status: "ACTIVE".into(),
        gateway: None,
        routes: Vec::new(),
        availability_zone_hints: body::string_list(&map, "availability_zone_hints")?
            .unwrap_or_default(),
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let mut target = router.view(&[]);
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(&auth, "create_router", &target)?;
    enforce_attributes(
        &auth,
        "create_router",
        &map,
        &[
            ("admin_state_up", json!(true)),
            ("tags", json!([])),
            ("external_gateway_info", Value::Null),
        ],
        &target,
        true,
    )?;
    check_gateway_network(&net, &auth, &gateway).await?;
    let request = gateway.flatten();
    let created_router = crate::db::write_tx!(net.db, |tx| routers::create(
        tx,
        &net.settings,
        router.clone(),
        request.as_ref()
    )
    .await)?;
    Ok(created("router", view(&net, &auth, &created_router).await?))
}

/// `PUT /v2.0/routers/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "router")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let change = RouterUpdate {
        name: name(&map, "name")?,
        description: name(&map, "description")?,
        admin_state_up: boolean(&map, "admin_state_up")?,
        gateway: parse_gateway(&map)?,
        routes: super::subnets::parse_routes(&map, "routes", None)?,
    };
    let router = load_visible(&net, &auth, &id).await?;
    let mut target = router.view(&[]);
    enforce_visible(&auth, "update_router", "get_router", &target, || {
        errors::router_not_found(&id)
    })?;
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce_attributes(&auth, "update_router", &map, &[], &target, false)?;
    check_gateway_network(&net, &auth, &change.gateway).await?;
    let updated = crate::db::write_tx!(net.db, |tx| routers::update(
        tx,
        &net.settings,
        &id,
        &change,
        revision
    )
    .await)?;
    Ok(ok("router", view(&net, &auth, &updated).await?))
}

/// `DELETE /v2.0/routers/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let router = load_visible(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_router",
        "get_router",
        &router.view(&[]),
        || errors::router_not_found(&id),
    )?;
    crate::db::write_tx!(net.db, |tx| routers::delete(tx, &id, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn interface_request(body: Value) -> Result<InterfaceRequest, ApiError> {
    let Value::Object(map) = body else {
        return Err(errors::bad_request("Body contains invalid data"));
    };
    Ok(InterfaceRequest {
        subnet_id: body::uuid(&map, "subnet_id")?,
        port_id: body::uuid(&map, "port_id")?,
    })
}

fn interface_view(info: &InterfaceInfo) -> Value {
    json!({
        "id": info.router.id,
        "tenant_id": info.router.project_id,
        "project_id": info.router.project_id,
        "port_id": info.port.id,
        "network_id": info.port.network_id,
        "subnet_id": info.subnet_ids.first(),
        "subnet_ids": info.subnet_ids,
    })
}

async fn router_for_action(
    net: &Networking,
    auth: &Auth,
    id: &str,
    action: &str,
) -> Result<Router, ApiError> {
    let router = load_visible(net, auth, id).await?;
    enforce_visible(auth, action, "get_router", &router.view(&[]), || {
        errors::router_not_found(id)
    })?;
    Ok(router)
}

/// `PUT /v2.0/routers/{id}/add_router_interface`
pub async fn add_interface(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = interface_request(body)?;
    let router = router_for_action(&net, &auth, &id, "add_router_interface").await?;
    let admin = is_admin(&auth);
    if let Some(subnet_id) = &request.subnet_id {
        let subnet: Subnet = net
            .db
            .get(subnet_id)
            .await?
            .ok_or_else(|| errors::subnet_not_found(subnet_id))?;
        let network = net.db.get(&subnet.network_id).await?;
        let target = super::authz::subnet_target(&subnet.view(), network.as_ref());
        if !auth.allows("get_subnet", &target) {
            return Err(errors::subnet_not_found(subnet_id));
        }
    }
    if let Some(port_id) = &request.port_id {
        let port: Port = net
            .db
            .get(port_id)
            .await?
            .ok_or_else(|| errors::port_not_found(port_id))?;
        if !admin && port.project_id != router.project_id {
            return Err(errors::port_not_found(port_id));
        }
    }
    let info = crate::db::write_tx!(net.db, |tx| routers::add_interface(
        tx,
        &net.settings,
        &id,
        &request
    )
    .await)?;
    Ok(axum::Json(interface_view(&info)).into_response())
}

/// `PUT /v2.0/routers/{id}/remove_router_interface`
pub async fn remove_interface(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = interface_request(body)?;
    router_for_action(&net, &auth, &id, "remove_router_interface").await?;
    let info = crate::db::write_tx!(net.db, |tx| routers::remove_interface(tx, &id, &request)
        .await)?;
    Ok(axum::Json(interface_view(&info)).into_response())
}

fn routes_body(body: Value) -> Result<Vec<Route>, ApiError> {
    let map = body::resource_object(body, "router")?;
    if let Some(k) = map.keys().find(|k| *k != "routes") {
        return Err(errors::bad_request(format!(
            "Unrecognized attribute(s) '{k}'"
        )));
    }
    super::subnets::parse_routes(&map, "routes", None)?.ok_or_else(|| {
        errors::bad_request("Failed to parse request. Required attribute 'routes' not specified")
    })
}

/// `PUT /v2.0/routers/{id}/add_extraroutes`
pub async fn add_routes(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let routes = routes_body(body)?;
    router_for_action(&net, &auth, &id, "add_extraroutes").await?;
    let router = crate::db::write_tx!(net.db, |tx| routers::edit_routes(tx, &id, &routes, &[])
        .await)?;
    Ok(ok("router", view(&net, &auth, &router).await?))
}

/// `PUT /v2.0/routers/{id}/remove_extraroutes`
pub async fn remove_routes(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let routes = routes_body(body)?;
    router_for_action(&net, &auth, &id, "remove_extraroutes").await?;
    let router = crate::db::write_tx!(net.db, |tx| routers::edit_routes(tx, &id, &[], &routes)
        .await)?;
    Ok(ok("router", view(&net, &auth, &router).await?))
}
