//! `/v2.0/ports`: ports with fixed IPs (IPAM), MAC, device, binding, security groups, allowed
//! address pairs and port security.

use super::authz::{enforce, enforce_attributes, enforce_visible, port_target, strip};
use super::body::{self, Attr, attr, boolean, check_attributes, is_admin, name, string};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::ports::{self, IpRequest, PortRequest, PortUpdate};
use crate::errors;
use crate::ipam;
use crate::model::{AddressPair, Binding, Network, Port, new_id, now};
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
    attr("network_id", true, false),
    attr("admin_state_up", true, true),
    attr("mac_address", true, true),
    attr("fixed_ips", true, true),
    attr("device_id", true, true),
    attr("device_owner", true, true),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("status", false, false),
    attr("security_groups", true, true),
    attr("allowed_address_pairs", true, true),
    attr("port_security_enabled", true, true),
    attr("binding:host_id", true, true),
    attr("binding:vnic_type", true, true),
    attr("binding:profile", true, true),
    attr("binding:vif_type", false, false),
    attr("binding:vif_details", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "network_id",
    "admin_state_up",
    "mac_address",
    "device_id",
    "device_owner",
    "tenant_id",
    "project_id",
    "status",
    "created_at",
    "updated_at",
    "revision_number",
];

const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "accelerator-direct",
    "accelerator-direct-physical",
    "remote-managed",
];

/// Most allowed address pairs per port (`max_allowed_address_pair`).
const MAX_ADDRESS_PAIRS: usize = 10;

fn reason(attr: &str, why: impl std::fmt::Display) -> ApiError {
    errors::bad_request(format!("Invalid input for {attr}. Reason: {why}."))
}

fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("admin_state_up", json!(true)),
        ("device_id", json!("")),
        ("device_owner", json!("")),
        ("binding:vnic_type", json!("normal")),
        ("name", json!("")),
        ("description", json!("")),
        ("tags", json!([])),
    ]
}

/// The port as the caller sees it, or `None`.
pub(crate) fn visible(auth: &Auth, port: &Port, network: Option<&Network>) -> Option<Value> {
    let view = port.view();
    let target = port_target(&view, network);
    if !auth.allows("get_port", &target) {
        return None;
    }
    let mut shown = view;
    strip(auth, "port", &mut shown, &target);
    Some(shown)
}

async fn load_visible(
    net: &Networking,
    auth: &Auth,
    id: &str,
) -> Result<(Port, Option<Network>), ApiError> {
    let port: Port = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::port_not_found(id))?;
    let network: Option<Network> = net.db.get(&port.network_id).await?;
    if visible(auth, &port, network.as_ref()).is_none() {
        return Err(errors::port_not_found(id));
    }
    Ok((port, network))
}

/// `GET /v2.0/ports`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let mut cond = String::from("1 = 1");
    let mut binds: Vec<String> = Vec::new();
    if !is_admin(&auth) {
        binds.push(auth.project_id().unwrap_or_default().to_string());
        cond = "(project_id = $1 OR network_id IN (SELECT id FROM net_networks WHERE project_id = $1))".into();
    }
    for (column, key) in [
        ("network_id", "network_id"),
        ("device_id", "device_id"),
        ("device_owner", "device_owner"),
    ] {
        if let Some([value]) = q.filter(key) {
            binds.push(value.clone());
            cond.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    let bind_refs: Vec<&str> = binds.iter().map(String::as_str).collect();
    let found: Vec<Port> = net.db.select(&cond, &bind_refs).await?;
    let networks =
        super::subnets::networks_of(&net, found.iter().map(|p| p.network_id.as_str())).await?;
    let mut items = Vec::new();
    for port in &found {
        let Some(view) = visible(&auth, port, networks.get(&port.network_id)) else {
            continue;
        };
        if q.matches(&view, &port.view()) {
            items.push(view);
        }
    }
    Ok(axum::Json(q.respond("ports", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/ports/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (port, network) = load_visible(&net, &auth, &id).await?;
    let view = visible(&auth, &port, network.as_ref()).unwrap_or_default();
    Ok(ok("port", trim_fields(view, &show_fields(raw.as_deref()))))
}

/// Parses `fixed_ips`.
fn parse_fixed_ips(map: &Map<String, Value>) -> Result<Option<Vec<IpRequest>>, ApiError> {
    let value = match map.get("fixed_ips") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(v) => v,
    };
    let Some(items) = value.as_array() else {
        return Err(reason(
            "fixed_ips",
            format!("Invalid data format for fixed IP: '{value}'"),
        ));
    };
    let mut out: Vec<IpRequest> = Vec::new();
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(reason(
                "fixed_ips",
                format!("Invalid data format for fixed IP: '{item}'"),
            ));
        };
        if let Some(k) = obj.keys().find(|k| *k != "ip_address" && *k != "subnet_id") {
            return Err(reason(
                "fixed_ips",
                format!("Unrecognized attribute(s) '{k}'"),
            ));
        }
        let subnet_id = match obj.get("subnet_id") {
            None => None,
            Some(v) => Some(body::uuid_value(v, "fixed_ips")?),
        };
        let ip_address = match obj.get("ip_address") {
            None => None,
            Some(Value::String(s)) => match ipam::parse_ip(s) {
                Some(ip) => Some(ip),
                None => {
                    return Err(reason(
                        "fixed_ips",
                        format!("'{s}' is not a valid IP address"),
                    ));
                }
            },
            Some(other) => {
                return Err(reason(
                    "fixed_ips",
                    format!("'{other}' is not a valid IP address"),
                ));
            }
        };
        if let Some(ip) = ip_address
            && out.iter().any(|r| r.ip_address == Some(ip))
        {
            return Err(reason("fixed_ips", format!("Duplicate IP address '{ip}'")));
        }
        out.push(IpRequest {
            subnet_id,
            ip_address,
        });
    }
    Ok(Some(out))
}

fn parse_mac(map: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match map.get("mac_address") {
        None => Ok(None),
        Some(Value::String(s)) => ipam::canonical_mac(s)
            .map(Some)
            .ok_or_else(|| reason("mac_address", format!("'{s}' is not a valid MAC address"))),
        Some(other) => Err(reason(
            "mac_address",
            format!("'{other}' is not a valid MAC address"),
        )),
    }
}

fn parse_address_pairs(
    map: &Map<String, Value>,
    port_mac: &str,
) -> Result<Option<Vec<AddressPair>>, ApiError> {
    let value = match map.get("allowed_address_pairs") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(v) => v,
    };
    let Some(items) = value.as_array() else {
        return Err(reason(
            "allowed_address_pairs",
            "Allowed address pairs must be a list.",
        ));
    };
    if items.len() > MAX_ADDRESS_PAIRS {
        return Err(errors::bad(
            "AllowedAddressPairExhausted",
            format!("The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}."),
        ));
    }
    let mut out: Vec<AddressPair> = Vec::new();
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(reason(
                "allowed_address_pairs",
                format!("Invalid data format for allowed address pair: '{item}'"),
            ));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| *k != "ip_address" && *k != "mac_address")
        {
            return Err(reason(
                "allowed_address_pairs",
                format!("Unrecognized attribute(s) '{k}'"),
            ));
        }
        let Some(ip) = obj.get("ip_address").and_then(Value::as_str) else {
            return Err(errors::bad(
                "AllowedAddressPairsMissingIP",
                "AllowedAddressPair must contain ip_address",
            ));
        };
        let ip_text = match (ipam::parse_ip(ip), ip.parse::<ipnet::IpNet>()) {
            (Some(addr), _) => addr.to_string(),
            (None, Ok(net)) => net.to_string(),
            _ => {
                return Err(reason(
                    "allowed_address_pairs",
                    format!("'{ip}' is not a valid IP address"),
                ));
            }
        };
        let mac = match obj.get("mac_address") {
            None | Some(Value::Null) => port_mac.to_string(),
            Some(Value::String(s)) => ipam::canonical_mac(s).ok_or_else(|| {
                reason(
                    "allowed_address_pairs",
                    format!("'{s}' is not a valid MAC address"),
                )
            })?,
            Some(other) => {
                return Err(reason(
                    "allowed_address_pairs",
                    format!("'{other}' is not a valid MAC address"),
                ));
            }
        };
        let pair = AddressPair {
            ip_address: ip_text,
            mac_address: mac,
        };
        if out.contains(&pair) {
            return Err(errors::bad(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {}.",
                    pair.mac_address, pair.ip_address
                ),
            ));
        }
        out.push(pair);
    }
    Ok(Some(out))
}

fn parse_security_groups(map: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    match map.get("security_groups") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => {
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let id = body::uuid_value(item, "security_groups")?;
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            Ok(Some(out))
        }
        Some(other) => Err(reason(
            "security_groups",
            format!("'{other}' is not a list"),
        )),
    }
}

fn parse_vnic(map: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match map.get("binding:vnic_type") {
        None => Ok(None),
        Some(Value::String(s)) if VNIC_TYPES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(other) => Err(reason(
            "binding:vnic_type",
            format!("{other} is not in {VNIC_TYPES:?}"),
        )),
    }
}

fn parse_host(map: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match map.get("binding:host_id") {
        Some(Value::Null) => Ok(Some(String::new())),
        _ => string(map, "binding:host_id", 255),
    }
}

async fn prepare_create(
    net: &Networking,
    auth: &Auth,
    mut map: Map<String, Value>,
) -> Result<PortRequest, ApiError> {
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(auth, &mut map)?;
    let network_id = body::uuid(&map, "network_id")?.ok_or_else(|| {
        errors::bad_request(
            "Failed to parse request. Required attribute 'network_id' not specified",
        )
    })?;
    let network: Network = net
        .db
        .get(&network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&network_id))?;
    if !is_admin(auth) && !network.shared && network.project_id != project {
        return Err(errors::hidden());
    }
    let mac = parse_mac(&map)?.unwrap_or_default();
    let device_owner = string(&map, "device_owner", 255)?.unwrap_or_default();
    let port_security =
        boolean(&map, "port_security_enabled")?.unwrap_or(network.port_security_enabled);
    let ts = now();
    let mut port = Port {
        id: new_id(),
        project_id: project,
        network_id: network_id.clone(),
        name: name(&map, "name")?.unwrap_or_default(),
        description: name(&map, "description")?.unwrap_or_default(),
        admin_state_up: boolean(&map, "admin_state_up")?.unwrap_or(true),
        status: "DOWN".into(),
        mac_address: mac,
        fixed_ips: Vec::new(),
        device_id: string(&map, "device_id", 255)?.unwrap_or_default(),
        device_owner: device_owner.clone(),
        binding: Binding {
            vnic_type: parse_vnic(&map)?.unwrap_or_else(|| "normal".into()),
            profile: body::object(&map, "binding:profile")?.unwrap_or_default(),
            ..Binding::default()
        },
        security_groups: Vec::new(),
        allowed_address_pairs: Vec::new(),
        port_security_enabled: port_security,
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    if let Some(host) = parse_host(&map)? {
        ports::bind(&mut port, &host);
    }
    port.allowed_address_pairs = parse_address_pairs(&map, &port.mac_address)?.unwrap_or_default();
    let fixed_ips = parse_fixed_ips(&map)?;
    let mut target = port_target(&port.view(), Some(&network));
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(auth, "create_port", &target)?;
    enforce_attributes(auth, "create_port", &map, &defaults(), &target, true)?;
    port.security_groups = match parse_security_groups(&map)? {
        Some(groups) => groups,
        None if port_security && !device_owner.starts_with("network:") => {
            vec![crate::db::security_groups::ensure_default(&net.db, &port.project_id).await?]
        }
        None => Vec::new(),
    };
    Ok(PortRequest {
        port,
        fixed_ips,
        internal: false,
    })
}

/// `POST /v2.0/ports` (also in bulk).
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (items, bulk) = body::create_items(body, "port", "ports")?;
    let mut prepared = Vec::new();
    for map in items {
        prepared.push(prepare_create(&net, &auth, map).await?);
    }
    let mut done: Vec<Port> = Vec::new();
    for request in &prepared {
        match crate::db::write_tx!(net.db, |tx| ports::create(tx, &net.settings, request).await) {
            Ok(p) => done.push(p),
            Err(e) => {
                for p in &done {
                    let _ = crate::db::write_tx!(net.db, |tx| ports::delete(tx, &p.id, None).await);
                }
                return Err(e.into());
            }
        }
    }
    let networks =
        super::subnets::networks_of(&net, done.iter().map(|p| p.network_id.as_str())).await?;
    let views: Vec<Value> = done
        .iter()
        .map(|p| visible(&auth, p, networks.get(&p.network_id)).unwrap_or_else(|| p.view()))
        .collect();
    Ok(match bulk {
        true => created("ports", Value::Array(views)),
        false => created("port", views.into_iter().next().unwrap_or_default()),
    })
}

/// `PUT /v2.0/ports/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "port")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let (port, network) = load_visible(&net, &auth, &id).await?;
    let mac = parse_mac(&map)?;
    let change = PortUpdate {
        name: name(&map, "name")?,
        description: name(&map, "description")?,
        admin_state_up: boolean(&map, "admin_state_up")?,
        allowed_address_pairs: parse_address_pairs(
            &map,
            mac.as_deref().unwrap_or(&port.mac_address),
        )?,
        mac_address: mac,
        fixed_ips: parse_fixed_ips(&map)?,
        device_id: string(&map, "device_id", 255)?,
        device_owner: string(&map, "device_owner", 255)?,
        host_id: parse_host(&map)?,
        vnic_type: parse_vnic(&map)?,
        profile: body::object(&map, "binding:profile")?,
        security_groups: parse_security_groups(&map)?,
        port_security_enabled: boolean(&map, "port_security_enabled")?,
    };
    let mut target = port_target(&port.view(), network.as_ref());
    enforce_visible(&auth, "update_port", "get_port", &target, || {
        errors::port_not_found(&id)
    })?;
    for (k, v) in &map {
        target[k] = v.clone();
    }
    if let Some(owner) = map.get("device_owner").and_then(Value::as_str) {
        target["device_owner_prefix"] = json!(owner.split(':').next().unwrap_or(""));
    }
    enforce_attributes(&auth, "update_port", &map, &[], &target, false)?;
    let updated = crate::db::write_tx!(net.db, |tx| ports::update(
        tx,
        &net.settings,
        &id,
        &change,
        revision
    )
    .await)?;
    let view = visible(&auth, &updated, network.as_ref()).unwrap_or_else(|| updated.view());
    Ok(ok("port", view))
}

/// `DELETE /v2.0/ports/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let (port, network) = load_visible(&net, &auth, &id).await?;
    let target = port_target(&port.view(), network.as_ref());
    enforce_visible(&auth, "delete_port", "get_port", &target, || {
        errors::port_not_found(&id)
    })?;
    crate::db::write_tx!(net.db, |tx| ports::delete(tx, &id, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
