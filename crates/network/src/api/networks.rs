//! `/v2.0/networks`: Neutron's networks with the provider, external-net, MTU, port security,
//! availability zone hint and tag attributes.

use super::authz::{enforce, enforce_attributes, enforce_visible, strip};
use super::body::{self, Attr, attr, boolean, check_attributes, int, is_admin, name, string};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::networks::{self, NetworkUpdate, SegmentRequest};
use crate::errors;
use crate::model::{Network, Segment, new_id, now};
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
    attr("subnets", false, false),
    attr("shared", true, true),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("router:external", true, true),
    attr("mtu", true, true),
    attr("port_security_enabled", true, true),
    attr("provider:network_type", true, true),
    attr("provider:physical_network", true, true),
    attr("provider:segmentation_id", true, true),
    attr("availability_zone_hints", true, false),
    attr("availability_zones", false, false),
    attr("ipv4_address_scope", false, false),
    attr("ipv6_address_scope", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

/// Attributes the collection sorts by.
pub const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "admin_state_up",
    "status",
    "tenant_id",
    "project_id",
    "shared",
    "router:external",
    "mtu",
    "availability_zone_hints",
    "created_at",
    "updated_at",
    "revision_number",
];

fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("admin_state_up", json!(true)),
        ("shared", json!(false)),
        ("router:external", json!(false)),
        ("port_security_enabled", json!(true)),
        ("mtu", json!(0)),
        ("availability_zone_hints", json!([])),
        ("tags", json!([])),
        ("name", json!("")),
        ("description", json!("")),
    ]
}

/// The network as the caller sees it (`None` when the caller may not see it).
pub(crate) fn visible(auth: &Auth, network: &Network, subnets: &[String]) -> Option<Value> {
    let full = network.view(subnets);
    if !auth.allows("get_network", &full) {
        return None;
    }
    let mut view = full.clone();
    strip(auth, "network", &mut view, &full);
    Some(view)
}

/// Loads a network the caller may see (404 `NetworkNotFound` otherwise).
pub(crate) async fn load_visible(
    net: &Networking,
    auth: &Auth,
    id: &str,
) -> Result<Network, ApiError> {
    let network: Network = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::network_not_found(id))?;
    if !auth.allows("get_network", &network.view(&[])) {
        return Err(errors::network_not_found(id));
    }
    Ok(network)
}

/// `GET /v2.0/networks`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let networks: Vec<Network> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        let project = auth.project_id().unwrap_or_default().to_string();
        net.db
            .select("project_id = $1 OR shared = 1 OR external = 1", &[&project])
            .await?
    };
    let subnets = networks::subnet_ids(&mut *net.db.conn().await?).await?;
    let mut items = Vec::new();
    for network in &networks {
        let ids = subnets.get(&network.id).map(Vec::as_slice).unwrap_or(&[]);
        let full = network.view(ids);
        let Some(view) = visible(&auth, network, ids) else {
            continue;
        };
        if q.matches(&view, &full) {
            items.push(view);
        }
    }
    Ok(axum::Json(q.respond("networks", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/networks/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let network = load_visible(&net, &auth, &id).await?;
    let subnets = networks::subnet_ids(&mut *net.db.conn().await?).await?;
    let ids = subnets.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    let view = visible(&auth, &network, ids).ok_or_else(|| errors::network_not_found(&id))?;
    Ok(ok(
        "network",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

struct Create {
    network: Network,
    segment: SegmentRequest,
    mtu: Option<i64>,
}

fn parse_provider(map: &Map<String, Value>) -> Result<SegmentRequest, ApiError> {
    let network_type = string(map, "provider:network_type", 32)?;
    let physical_network = string(map, "provider:physical_network", 64)?;
    let segmentation_id = int(map, "provider:segmentation_id")?;
    match (network_type, &physical_network, segmentation_id) {
        (None, None, None) => Ok(SegmentRequest::Tenant),
        (None, _, _) => Err(errors::invalid_input("network_type required")),
        (Some(t), _, _) => Ok(SegmentRequest::Provider {
            network_type: t,
            physical_network,
            segmentation_id,
        }),
    }
}

fn prepare_create(
    net: &Networking,
    auth: &Auth,
    mut map: Map<String, Value>,
) -> Result<Create, ApiError> {
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(auth, &mut map)?;
    let segment = parse_provider(&map)?;
    networks::validate_provider(&net.settings, &segment)?;
    let ts = now();
    let network = Network {
        id: new_id(),
        project_id: project.clone(),
        name: name(&map, "name")?.unwrap_or_default(),
        description: name(&map, "description")?.unwrap_or_default(),
        admin_state_up: boolean(&map, "admin_state_up")?.unwrap_or(true),
        status: "ACTIVE".into(),
        shared: boolean(&map, "shared")?.unwrap_or(false),
        external: boolean(&map, "router:external")?.unwrap_or(false),
        mtu: 0,
        port_security_enabled: boolean(&map, "port_security_enabled")?.unwrap_or(true),
        segment: Segment {
            network_type: String::new(),
            physical_network: None,
            segmentation_id: None,
        },
        availability_zone_hints: body::string_list(&map, "availability_zone_hints")?
            .unwrap_or_default(),
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let mtu = int(&map, "mtu")?;
    if let Some(m) = mtu
        && m != 0
        && m < 68
    {
        return Err(errors::bad_request(format!(
            "Invalid input for mtu. Reason: '{m}' is too small - must be at least '68'."
        )));
    }
    let mut target = network.view(&[]);
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(auth, "create_network", &target)?;
    enforce_attributes(auth, "create_network", &map, &defaults(), &target, true)?;
    Ok(Create {
        network,
        segment,
        mtu,
    })
}

/// `POST /v2.0/networks` (also in bulk: `{"networks": [...]}`).
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (items, bulk) = body::create_items(body, "network", "networks")?;
    let mut prepared = Vec::new();
    for map in items {
        prepared.push(prepare_create(&net, &auth, map)?);
    }
    let mut done: Vec<Network> = Vec::new();
    for item in &prepared {
        crate::db::security_groups::ensure_default(&net.db, &item.network.project_id).await?;
        let result = crate::db::write_tx!(net.db, |tx| (async {
            networks::create(
                tx,
                &net.settings,
                item.network.clone(),
                &item.segment,
                item.mtu,
            )
            .await
        })
        .await);
        match result {
            Ok(n) => done.push(n),
            Err(e) => {
                for n in &done {
                    let _ =
                        crate::db::write_tx!(net.db, |tx| networks::delete(tx, &n.id, None).await);
                }
                return Err(e.into());
            }
        }
    }
    let views: Vec<Value> = done
        .iter()
        .map(|n| visible(&auth, n, &[]).unwrap_or_else(|| n.view(&[])))
        .collect();
    Ok(match bulk {
        true => created("networks", Value::Array(views)),
        false => created("network", views.into_iter().next().unwrap_or_default()),
    })
}

/// `PUT /v2.0/networks/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "network")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let change = NetworkUpdate {
        name: name(&map, "name")?,
        description: name(&map, "description")?,
        admin_state_up: boolean(&map, "admin_state_up")?,
        shared: boolean(&map, "shared")?,
        external: boolean(&map, "router:external")?,
        port_security_enabled: boolean(&map, "port_security_enabled")?,
        mtu: int(&map, "mtu")?,
    };
    let network = load_visible(&net, &auth, &id).await?;
    let provider = parse_provider(&map)?;
    if let SegmentRequest::Provider {
        network_type,
        physical_network,
        segmentation_id,
    } = &provider
    {
        let current = &network.segment;
        let same = *network_type == current.network_type
            && (physical_network.is_none() || *physical_network == current.physical_network)
            && (segmentation_id.is_none() || *segmentation_id == current.segmentation_id);
        if !same {
            return Err(errors::invalid_input(
                "Plugin does not support updating provider attributes",
            ));
        }
    }
    let mut target = network.view(&[]);
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce_visible(&auth, "update_network", "get_network", &target, || {
        errors::network_not_found(&id)
    })?;
    enforce_attributes(&auth, "update_network", &map, &[], &target, false)?;
    let updated = crate::db::write_tx!(net.db, |tx| networks::update(
        tx,
        &net.settings,
        &id,
        &change,
        revision
    )
    .await)?;
    let subnets = networks::subnet_ids(&mut *net.db.conn().await?).await?;
    let ids = subnets.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    let view = visible(&auth, &updated, ids).unwrap_or_else(|| updated.view(ids));
    Ok(ok("network", view))
}

/// `DELETE /v2.0/networks/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let network = load_visible(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_network",
        "get_network",
        &network.view(&[]),
        || errors::network_not_found(&id),
    )?;
    crate::db::write_tx!(net.db, |tx| networks::delete(tx, &id, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
