//! `/v2.0/subnets`: IPv4 and IPv6 subnets with gateway, allocation pools, DNS servers, host
//! routes, DHCP and IPv6 modes, from a CIDR or a subnet pool.

use super::authz::{enforce, enforce_attributes, enforce_visible, strip, subnet_target};
use super::body::{self, Attr, attr, boolean, check_attributes, int, ip_or_null, is_admin, name};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::subnets::{self, GatewayRequest, SubnetRequest, SubnetUpdate};
use crate::errors;
use crate::ipam;
use crate::model::{Network, Route, Subnet, SubnetPool, new_id, now};
use crate::service::Networking;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;

const ATTRS: &[Attr] = &[
    attr("id", false, false),
    attr("name", true, true),
    attr("description", true, true),
    attr("ip_version", true, false),
    attr("network_id", true, false),
    attr("subnetpool_id", true, false),
    attr("use_default_subnetpool", true, false),
    attr("prefixlen", true, false),
    attr("cidr", true, false),
    attr("gateway_ip", true, true),
    attr("allocation_pools", true, true),
    attr("dns_nameservers", true, true),
    attr("host_routes", true, true),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("enable_dhcp", true, true),
    attr("ipv6_ra_mode", true, false),
    attr("ipv6_address_mode", true, false),
    attr("service_types", false, false),
    attr("segment_id", false, false),
    attr("router:external", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

/// Attributes the collection sorts by.
const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "ip_version",
    "network_id",
    "subnetpool_id",
    "cidr",
    "gateway_ip",
    "tenant_id",
    "project_id",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "created_at",
    "updated_at",
    "revision_number",
];

const IPV6_MODES: &[&str] = &["dhcpv6-stateful", "dhcpv6-stateless", "slaac"];

fn reason(attr: &str, why: impl std::fmt::Display) -> ApiError {
    errors::bad_request(format!("Invalid input for {attr}. Reason: {why}."))
}

fn bad_subnets(message: &str) -> ApiError {
    errors::bad("BadRequest", format!("Bad subnets request: {message}."))
}

/// The networks of the given subnets, by id.
pub(crate) async fn networks_of(
    net: &Networking,
    network_ids: impl Iterator<Item = &str>,
) -> Result<HashMap<String, Network>, ApiError> {
    let mut out = HashMap::new();
    let mut conn = net.db.conn().await?;
    for id in network_ids {
        if out.contains_key(id) {
            continue;
        }
        if let Some(n) = crate::db::get::<Network>(&mut conn, id).await? {
            out.insert(id.to_string(), n);
        }
    }
    Ok(out)
}

/// The subnet as the caller sees it, or `None`.
fn visible(auth: &Auth, subnet: &Subnet, network: Option<&Network>) -> Option<Value> {
    let mut view = subnet.view();
    view["router:external"] = json!(network.is_some_and(|n| n.external));
    let target = subnet_target(&view, network);
    if !auth.allows("get_subnet", &target) {
        return None;
    }
    let mut shown = view;
    strip(auth, "subnet", &mut shown, &target);
    Some(shown)
}

async fn load_visible(
    net: &Networking,
    auth: &Auth,
    id: &str,
) -> Result<(Subnet, Option<Network>), ApiError> {
    let subnet: Subnet = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::subnet_not_found(id))?;
    let network: Option<Network> = net.db.get(&subnet.network_id).await?;
    if visible(auth, &subnet, network.as_ref()).is_none() {
        return Err(errors::subnet_not_found(id));
    }
    Ok((subnet, network))
}

/// `GET /v2.0/subnets`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let subnets: Vec<Subnet> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        let project = auth.project_id().unwrap_or_default().to_string();
        net.db
            .select(
                "project_id = $1 OR network_id IN (SELECT id FROM net_networks \
                 WHERE project_id = $1 OR shared = 1 OR external = 1)",
                &[&project],
            )
            .await?
    };
    let networks = networks_of(&net, subnets.iter().map(|s| s.network_id.as_str())).await?;
    let mut items = Vec::new();
    for subnet in &subnets {
        let Some(view) = visible(&auth, subnet, networks.get(&subnet.network_id)) else {
            continue;
        };
        if q.matches(&view, &subnet.view()) {
            items.push(view);
        }
    }
    Ok(axum::Json(q.respond("subnets", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/subnets/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (subnet, network) = load_visible(&net, &auth, &id).await?;
    let view = visible(&auth, &subnet, network.as_ref()).unwrap_or_default();
    Ok(ok(
        "subnet",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

fn check_version(attr: &str, ip: &IpAddr, version: u8) -> Result<(), ApiError> {
    if ipam::version(ip) != version {
        return Err(errors::invalid_input(format!(
            "{attr} '{ip}' does not match the ip_version '{version}'"
        )));
    }
    Ok(())
}

fn parse_pools(
    map: &Map<String, Value>,
    version: u8,
) -> Result<Option<Vec<(IpAddr, IpAddr)>>, ApiError> {
    let Some(value) = map.get("allocation_pools") else {
        return Ok(None);
    };
    let Some(items) = value.as_array() else {
        return Err(reason(
            "allocation_pools",
            format!("Invalid data format for IP pool: '{value}'"),
        ));
    };
    let mut pools = Vec::new();
    for item in items {
        let (Some(start), Some(end)) = (
            item.get("start").and_then(Value::as_str),
            item.get("end").and_then(Value::as_str),
        ) else {
            return Err(reason(
                "allocation_pools",
                format!("Invalid data format for IP pool: '{item}'"),
            ));
        };
        if item.as_object().is_some_and(|m| m.len() != 2) {
            return Err(reason(
                "allocation_pools",
                format!("Unrecognized attribute(s) in IP pool: '{item}'"),
            ));
        }
        let (Some(s), Some(e)) = (ipam::parse_ip(start), ipam::parse_ip(end)) else {
            let bad = if ipam::parse_ip(start).is_none() {
                start
            } else {
                end
            };
            return Err(reason(
                "allocation_pools",
                format!("'{bad}' is not a valid IP address"),
            ));
        };
        if ipam::version(&s) != version || ipam::version(&e) != version {
            return Err(errors::bad(
                "InvalidAllocationPool",
                format!("The allocation pool {start}-{end} is not valid."),
            ));
        }
        pools.push((s, e));
    }
    Ok(Some(pools))
}

fn parse_nameservers(
    map: &Map<String, Value>,
    version: u8,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = body::string_list(map, "dns_nameservers")? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for ns in list {
        let Some(ip) = ipam::parse_ip(&ns) else {
            return Err(reason(
                "dns_nameservers",
                format!("'{ns}' is not a valid nameserver"),
            ));
        };
        if out.contains(&ip.to_string()) {
            return Err(reason(
                "dns_nameservers",
                format!("Duplicate nameserver '{ns}'"),
            ));
        }
        check_version("dns_nameserver", &ip, version)?;
        out.push(ip.to_string());
    }
    if out.len() > 5 {
        return Err(errors::bad(
            "DNSNameServersExhausted",
            "Unable to complete operation for new subnet. The number of DNS nameservers exceeds the limit 5.",
        ));
    }
    Ok(Some(out))
}

/// Parses `routes`/`host_routes`: each `{destination, nexthop}` of the subnet's version.
pub(crate) fn parse_routes(
    map: &Map<String, Value>,
    key: &str,
    version: Option<u8>,
) -> Result<Option<Vec<Route>>, ApiError> {
    let value = match map.get(key) {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(v) => v,
    };
    let Some(items) = value.as_array() else {
        return Err(reason(
            key,
            format!("Invalid data format for hostroute: '{value}'"),
        ));
    };
    let mut routes: Vec<Route> = Vec::new();
    for item in items {
        let (Some(dest), Some(hop)) = (
            item.get("destination").and_then(Value::as_str),
            item.get("nexthop").and_then(Value::as_str),
        ) else {
            return Err(reason(
                key,
                format!("Invalid data format for hostroute: '{item}'"),
            ));
        };
        let (Ok(net), Some(nexthop)) = (dest.parse::<ipnet::IpNet>(), ipam::parse_ip(hop)) else {
            return Err(errors::invalid_input(format!(
                "Invalid route: {{'destination': '{dest}', 'nexthop': '{hop}'}}"
            )));
        };
        if let Some(v) = version {
            check_version("nexthop", &nexthop, v)?;
            check_version("destination", &net.network(), v)?;
        } else if net.network().is_ipv6() != nexthop.is_ipv6() {
            return Err(errors::invalid_input(format!(
                "Invalid route: {{'destination': '{dest}', 'nexthop': '{hop}'}}"
            )));
        }
        let route = Route {
            destination: net.trunc().to_string(),
            nexthop: nexthop.to_string(),
        };
        if routes.contains(&route) {
            return Err(reason(key, format!("Duplicate hostroute '{item}'")));
        }
        routes.push(route);
    }
    Ok(Some(routes))
}

fn parse_mode(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if IPV6_MODES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(other) => Err(reason(key, format!("'{other}' is not in {IPV6_MODES:?}"))),
    }
}

fn parse_gateway(
    map: &Map<String, Value>,
    version: u8,
) -> Result<Option<GatewayRequest>, ApiError> {
    Ok(match ip_or_null(map, "gateway_ip")? {
        None => None,
        Some(None) => Some(GatewayRequest::Disabled),
        Some(Some(ip)) => {
            check_version("gateway_ip", &ip, version)?;
            Some(GatewayRequest::Ip(ip))
        }
    })
}

async fn find_pool(net: &Networking, auth: &Auth, id: &str) -> Result<SubnetPool, ApiError> {
    let pool: SubnetPool = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::subnetpool_not_found(id))?;
    if !auth.allows("get_subnetpool", &pool.view()) {
        return Err(errors::subnetpool_not_found(id));
    }
    Ok(pool)
}

async fn prepare_create(
    net: &Networking,
    auth: &Auth,
    mut map: Map<String, Value>,
) -> Result<SubnetRequest, ApiError> {
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(auth, &mut map)?;
    let network_id = body::uuid(&map, "network_id")?.ok_or_else(|| {
        errors::bad_request(
            "Failed to parse request. Required attribute 'network_id' not specified",
        )
    })?;
    let version = match int(&map, "ip_version")? {
        None => {
            return Err(errors::bad_request(
                "Failed to parse request. Required attribute 'ip_version' not specified",
            ));
        }
        Some(v @ (4 | 6)) => v as u8,
        Some(v) => return Err(reason("ip_version", format!("{v} is not in [4, 6]"))),
    };
    let cidr = match map.get("cidr") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let Ok(parsed) = s.parse::<ipnet::IpNet>() else {
                if let Some(ip) = ipam::parse_ip(s) {
                    let max = if ip.is_ipv6() { 128 } else { 32 };
                    return Err(reason(
                        "cidr",
                        format!("'{s}' isn't a recommended CIDR, use '{ip}/{max}' instead"),
                    ));
                }
                return Err(reason("cidr", format!("'{s}' is not a valid IP subnet")));
            };
            if ipam::version(&parsed.network()) != version {
                return Err(errors::invalid_input(format!(
                    "cidr '{s}' does not match the ip_version '{version}'"
                )));
            }
            Some(parsed.trunc())
        }
        Some(other) => {
            return Err(reason(
                "cidr",
                format!("'{other}' is not a valid IP subnet"),
            ));
        }
    };
    let prefixlen = int(&map, "prefixlen")?;
    let mut pool_id = body::uuid_or_null(&map, "subnetpool_id")?.flatten();
    let use_default = boolean(&map, "use_default_subnetpool")?.unwrap_or(false);
    if use_default && pool_id.is_some() {
        return Err(bad_subnets(
            "subnetpool_id and use_default_subnetpool cannot both be specified",
        ));
    }
    if cidr.is_some() && prefixlen.is_some() {
        return Err(bad_subnets(
            "cidr and prefixlen must not be supplied together",
        ));
    }
    if use_default {
        let defaults: Vec<SubnetPool> = net
            .db
            .select(
                "is_default = 1 AND ip_version = $1",
                &[&version.to_string()],
            )
            .await?;
        pool_id = Some(defaults.first().map(|p| p.id.clone()).ok_or_else(|| {
            bad_subnets(&format!("No default subnetpool found for IPv{version}"))
        })?);
    }
    if let Some(id) = &pool_id {
        let pool = find_pool(net, auth, id).await?;
        if pool.ip_version != version {
            return Err(bad_subnets(&format!(
                "Cannot allocate IPv{version} subnet from IPv{} subnet pool",
                pool.ip_version
            )));
        }
        if cidr.is_none() && map.contains_key("allocation_pools") {
            return Err(bad_subnets(
                "allocation_pools allowed only for specific subnet requests.",
            ));
        }
    } else if cidr.is_none() {
        return Err(bad_subnets(
            "a subnetpool must be specified in the absence of a cidr",
        ));
    }
    let prefixlen = match prefixlen {
        None => None,
        Some(p) if (0..=128).contains(&p) => Some(p as u8),
        Some(p) => return Err(reason("prefixlen", format!("'{p}' should be non-negative"))),
    };
    let enable_dhcp = boolean(&map, "enable_dhcp")?.unwrap_or(true);
    let ra_mode = parse_mode(&map, "ipv6_ra_mode")?;
    let address_mode = parse_mode(&map, "ipv6_address_mode")?;
    if version == 4 {
        if ra_mode.is_some() {
            return Err(errors::invalid_input(
                "ipv6_ra_mode is not valid when ip_version is 4",
            ));
        }
        if address_mode.is_some() {
            return Err(errors::invalid_input(
                "ipv6_address_mode is not valid when ip_version is 4",
            ));
        }
    } else {
        if (ra_mode.is_some() || address_mode.is_some()) && !enable_dhcp {
            return Err(errors::invalid_input(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
            ));
        }
        if let (Some(ra), Some(addr)) = (&ra_mode, &address_mode)
            && ra != addr
        {
            return Err(errors::invalid_input(format!(
                "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
    }
    let gateway = parse_gateway(&map, version)?.unwrap_or(GatewayRequest::Default);
    let pools = parse_pools(&map, version)?;
    let ts = now();
    let subnet = Subnet {
        id: new_id(),
        project_id: project,
        network_id: network_id.clone(),
        name: name(&map, "name")?.unwrap_or_default(),
        description: name(&map, "description")?.unwrap_or_default(),
        ip_version: version,
        cidr: cidr.map(|c| c.to_string()).unwrap_or_default(),
        gateway_ip: None,
        allocation_pools: Vec::new(),
        dns_nameservers: parse_nameservers(&map, version)?.unwrap_or_default(),
        host_routes: parse_routes(&map, "host_routes", Some(version))?.unwrap_or_default(),
        enable_dhcp,
        ipv6_ra_mode: ra_mode,
        ipv6_address_mode: address_mode,
        subnetpool_id: pool_id,
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let network: Network = net
        .db
        .get(&network_id)
        .await?
        .ok_or_else(|| errors::network_not_found(&network_id))?;
    let admin = is_admin(auth);
    if !admin && !network.shared && network.project_id != subnet.project_id {
        return Err(errors::hidden());
    }
    let mut target = subnet_target(&subnet.view(), Some(&network));
    for (k, v) in &map {
        if !matches!(k.as_str(), "shared" | "router:external") {
            target[k] = v.clone();
        }
    }
    enforce(auth, "create_subnet", &target)?;
    enforce_attributes(
        auth,
        "create_subnet",
        &map,
        &[("tags", json!([]))],
        &target,
        true,
    )?;
    Ok(SubnetRequest {
        subnet,
        gateway,
        pools,
        prefixlen,
    })
}

/// `POST /v2.0/subnets` (also in bulk).
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (items, bulk) = body::create_items(body, "subnet", "subnets")?;
    let mut prepared = Vec::new();
    for map in items {
        prepared.push(prepare_create(&net, &auth, map).await?);
    }
    let mut done: Vec<Subnet> = Vec::new();
    for request in &prepared {
        match crate::db::write_tx!(net.db, |tx| subnets::create(tx, &net.settings, request)
            .await)
        {
            Ok(s) => done.push(s),
            Err(e) => {
                for s in &done {
                    let _ =
                        crate::db::write_tx!(net.db, |tx| subnets::delete(tx, &s.id, None).await);
                }
                return Err(e.into());
            }
        }
    }
    let networks = networks_of(&net, done.iter().map(|s| s.network_id.as_str())).await?;
    let views: Vec<Value> = done
        .iter()
        .map(|s| visible(&auth, s, networks.get(&s.network_id)).unwrap_or_else(|| s.view()))
        .collect();
    Ok(match bulk {
        true => created("subnets", Value::Array(views)),
        false => created("subnet", views.into_iter().next().unwrap_or_default()),
    })
}

/// `PUT /v2.0/subnets/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "subnet")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let (subnet, network) = load_visible(&net, &auth, &id).await?;
    let version = subnet.ip_version;
    let change = SubnetUpdate {
        name: name(&map, "name")?,
        description: name(&map, "description")?,
        gateway: parse_gateway(&map, version)?,
        pools: parse_pools(&map, version)?,
        dns_nameservers: parse_nameservers(&map, version)?,
        host_routes: parse_routes(&map, "host_routes", Some(version))?,
        enable_dhcp: boolean(&map, "enable_dhcp")?,
    };
    let target = subnet_target(&subnet.view(), network.as_ref());
    enforce_visible(&auth, "update_subnet", "get_subnet", &target, || {
        errors::subnet_not_found(&id)
    })?;
    enforce_attributes(&auth, "update_subnet", &map, &[], &target, false)?;
    let updated = crate::db::write_tx!(net.db, |tx| subnets::update(tx, &id, &change, revision)
        .await)?;
    let view = visible(&auth, &updated, network.as_ref()).unwrap_or_else(|| updated.view());
    Ok(ok("subnet", view))
}

/// `DELETE /v2.0/subnets/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let (subnet, network) = load_visible(&net, &auth, &id).await?;
    let target = subnet_target(&subnet.view(), network.as_ref());
    enforce_visible(&auth, "delete_subnet", "get_subnet", &target, || {
        errors::subnet_not_found(&id)
    })?;
    crate::db::write_tx!(net.db, |tx| subnets::delete(tx, &id, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
