//! `/v2.0/subnetpools`: pools of prefixes subnets are allocated from (subnet_allocation,
//! default-subnetpools).

use super::authz::{enforce, enforce_attributes, enforce_visible, strip};
use super::body::{self, Attr, attr, boolean, check_attributes, int, is_admin, name};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::subnetpools::{self, default_min_prefixlen, max_len};
use crate::errors;
use crate::model::{SubnetPool, new_id, now};
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
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("prefixes", true, true),
    attr("default_quota", true, true),
    attr("ip_version", false, false),
    attr("default_prefixlen", true, true),
    attr("min_prefixlen", true, true),
    attr("max_prefixlen", true, true),
    attr("is_default", true, true),
    attr("shared", true, false),
    attr("address_scope_id", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "tenant_id",
    "project_id",
    "default_quota",
    "ip_version",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "is_default",
    "shared",
    "created_at",
    "updated_at",
    "revision_number",
];

fn shown(auth: &Auth, pool: &SubnetPool) -> Option<Value> {
    let full = pool.view();
    if !auth.allows("get_subnetpool", &full) {
        return None;
    }
    let mut view = full.clone();
    strip(auth, "subnetpool", &mut view, &full);
    Some(view)
}

async fn load_visible(net: &Networking, auth: &Auth, id: &str) -> Result<SubnetPool, ApiError> {
    let pool: SubnetPool = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::subnetpool_not_found(id))?;
    shown(auth, &pool).ok_or_else(|| errors::subnetpool_not_found(id))?;
    Ok(pool)
}

/// `GET /v2.0/subnetpools`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), SORT_KEYS)?;
    let found: Vec<SubnetPool> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        let project = auth.project_id().unwrap_or_default().to_string();
        net.db
            .select("project_id = $1 OR shared = 1", &[&project])
            .await?
    };
    let items = found
        .iter()
        .filter_map(|p| shown(&auth, p).map(|v| (v, p.view())))
        .filter(|(v, full)| q.matches(v, full))
        .map(|(v, _)| v)
        .collect();
    Ok(axum::Json(q.respond("subnetpools", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/subnetpools/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pool = load_visible(&net, &auth, &id).await?;
    let view = shown(&auth, &pool).unwrap_or_default();
    Ok(ok(
        "subnetpool",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

fn prefixlen(map: &Map<String, Value>, key: &str) -> Result<Option<u8>, ApiError> {
    match int(map, key)? {
        None => Ok(None),
        Some(n) if (0..=128).contains(&n) => Ok(Some(n as u8)),
        Some(n) => Err(errors::bad_request(format!(
            "Invalid input for {key}. Reason: '{n}' should be non-negative."
        ))),
    }
}

fn quota(map: &Map<String, Value>) -> Result<Option<Option<i64>>, ApiError> {
    match map.get("default_quota") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => match int(map, "default_quota")? {
            Some(n) if n >= 0 => Ok(Some(Some(n))),
            other => Err(errors::bad_request(format!(
                "Invalid input for default_quota. Reason: '{}' should be non-negative.",
                other.unwrap_or_default()
            ))),
        },
    }
}

/// `POST /v2.0/subnetpools`
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut map = body::resource_object(body, "subnetpool")?;
    check_attributes(&map, ATTRS, true)?;
    let project = body::owner(&auth, &mut map)?;
    let pool_name = name(&map, "name")?.ok_or_else(|| {
        errors::bad_request("Failed to parse request. Required attribute 'name' not specified")
    })?;
    let prefixes = body::string_list(&map, "prefixes")?.ok_or_else(|| {
        errors::bad_request("Failed to parse request. Required attribute 'prefixes' not specified")
    })?;
    let version = prefixes
        .first()
        .and_then(|p| p.parse::<ipnet::IpNet>().ok())
        .map(|n| if n.network().is_ipv6() { 6 } else { 4 })
        .unwrap_or(4);
    let min = prefixlen(&map, "min_prefixlen")?.unwrap_or(default_min_prefixlen(version));
    let ts = now();
    let mut pool = SubnetPool {
        id: new_id(),
        project_id: project,
        name: pool_name,
        description: name(&map, "description")?.unwrap_or_default(),
        ip_version: version,
        prefixes,
        default_prefixlen: prefixlen(&map, "default_prefixlen")?.unwrap_or(min),
        min_prefixlen: min,
        max_prefixlen: prefixlen(&map, "max_prefixlen")?.unwrap_or(max_len(version)),
        default_quota: quota(&map)?.flatten(),
        is_default: boolean(&map, "is_default")?.unwrap_or(false),
        shared: boolean(&map, "shared")?.unwrap_or(false),
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    subnetpools::normalise(&mut pool)?;
    let mut target = pool.view();
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(&auth, "create_subnetpool", &target)?;
    enforce_attributes(
        &auth,
        "create_subnetpool",
        &map,
        &[
            ("shared", json!(false)),
            ("is_default", json!(false)),
            ("tags", json!([])),
        ],
        &target,
        true,
    )?;
    crate::db::write_tx!(net.db, |tx| subnetpools::create(tx, &net.settings, &pool)
        .await)?;
    Ok(created("subnetpool", pool.view()))
}

/// `PUT /v2.0/subnetpools/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "subnetpool")?;
    check_attributes(&map, ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let new_name = name(&map, "name")?;
    let description = name(&map, "description")?;
    let prefixes = body::string_list(&map, "prefixes")?;
    let default_len = prefixlen(&map, "default_prefixlen")?;
    let min = prefixlen(&map, "min_prefixlen")?;
    let max = prefixlen(&map, "max_prefixlen")?;
    let default_quota = quota(&map)?;
    let is_default = boolean(&map, "is_default")?;
    let pool = load_visible(&net, &auth, &id).await?;
    let target = pool.view();
    enforce_visible(
        &auth,
        "update_subnetpool",
        "get_subnetpool",
        &target,
        || errors::subnetpool_not_found(&id),
    )?;
    enforce_attributes(&auth, "update_subnetpool", &map, &[], &target, false)?;
    let apply = move |p: &mut SubnetPool| {
        if let Some(v) = &new_name {
            p.name = v.clone();
        }
        if let Some(v) = &description {
            p.description = v.clone();
        }
        if let Some(v) = &prefixes {
            p.prefixes = v.clone();
        }
        if let Some(v) = default_len {
            p.default_prefixlen = v;
        }
        if let Some(v) = min {
            p.min_prefixlen = v;
        }
        if let Some(v) = max {
            p.max_prefixlen = v;
        }
        if let Some(v) = default_quota {
            p.default_quota = v;
        }
        if let Some(v) = is_default {
            p.is_default = v;
        }
    };
    let updated =
        crate::db::write_tx!(net.db, |tx| subnetpools::update(tx, &id, &apply, revision)
            .await)?;
    Ok(ok("subnetpool", updated.view()))
}

/// `DELETE /v2.0/subnetpools/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let pool = load_visible(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_subnetpool",
        "get_subnetpool",
        &pool.view(),
        || errors::subnetpool_not_found(&id),
    )?;
    crate::db::write_tx!(net.db, |tx| subnetpools::delete(tx, &id, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
