//! `/v2.0/security-groups` and `/v2.0/security-group-rules`.

use super::authz::{enforce, enforce_attributes, enforce_visible, rule_target, strip};
use super::body::{self, Attr, attr, boolean, check_attributes, is_admin, name};
use super::query::{ListQuery, show_fields, trim_fields};
use super::{AppState, created, ok, request_url};
use crate::db::security_groups::{self as sgdb, GroupUpdate};
use crate::errors;
use crate::model::{SecurityGroup, SecurityGroupRule, new_id, now};
use crate::service::Networking;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

const GROUP_ATTRS: &[Attr] = &[
    attr("id", false, false),
    attr("name", true, true),
    attr("description", true, true),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("security_group_rules", false, false),
    attr("stateful", true, true),
    attr("shared", false, false),
    attr("tags", true, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const RULE_ATTRS: &[Attr] = &[
    attr("id", false, false),
    attr("security_group_id", true, false),
    attr("remote_group_id", true, false),
    attr("direction", true, false),
    attr("protocol", true, false),
    attr("port_range_min", true, false),
    attr("port_range_max", true, false),
    attr("ethertype", true, false),
    attr("remote_ip_prefix", true, false),
    attr("description", true, false),
    attr("tenant_id", true, false),
    attr("project_id", true, false),
    attr("normalized_cidr", false, false),
    attr("belongs_to_default_sg", false, false),
    attr("remote_address_group_id", false, false),
    attr("created_at", false, false),
    attr("updated_at", false, false),
    attr("revision_number", false, false),
];

const GROUP_SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "tenant_id",
    "project_id",
    "stateful",
    "created_at",
    "updated_at",
    "revision_number",
];

const RULE_SORT_KEYS: &[&str] = &[
    "id",
    "security_group_id",
    "remote_group_id",
    "direction",
    "protocol",
    "port_range_min",
    "port_range_max",
    "ethertype",
    "remote_ip_prefix",
    "tenant_id",
    "project_id",
    "created_at",
    "updated_at",
    "revision_number",
];

fn reason(attr: &str, why: impl std::fmt::Display) -> ApiError {
    errors::bad_request(format!("Invalid input for {attr}. Reason: {why}."))
}

async fn default_groups(net: &Networking) -> Result<HashSet<String>, ApiError> {
    Ok(crate::db::strings(
        &mut *net.db.conn().await?,
        "SELECT security_group_id FROM net_default_security_groups",
        &[],
    )
    .await?
    .into_iter()
    .collect())
}

/// The views of the groups with their rules (the rules the caller may see).
async fn views(
    net: &Networking,
    auth: &Auth,
    groups: &[SecurityGroup],
) -> Result<Vec<(Value, Value)>, ApiError> {
    let defaults = default_groups(net).await?;
    let mut rules: HashMap<String, Vec<Value>> = HashMap::new();
    let projects: HashSet<&str> = groups.iter().map(|g| g.project_id.as_str()).collect();
    let all: Vec<SecurityGroupRule> = match (groups, projects.len()) {
        ([one], _) => net.db.select("security_group_id = $1", &[&one.id]).await?,
        (_, 1) => {
            let project = projects.into_iter().next().unwrap_or_default();
            net.db
                .select(
                    "security_group_id IN (SELECT id FROM net_security_groups WHERE project_id = $1)",
                    &[project],
                )
                .await?
        }
        _ => net.db.select("1 = 1", &[]).await?,
    };
    let owners: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.project_id.as_str()))
        .collect();
    for rule in &all {
        let Some(owner) = owners.get(rule.security_group_id.as_str()) else {
            continue;
        };
        let view = rule.view(defaults.contains(&rule.security_group_id));
        if auth.allows("get_security_group_rule", &rule_target(&view, owner)) {
            rules
                .entry(rule.security_group_id.clone())
                .or_default()
                .push(view);
        }
    }
    let mut out = Vec::new();
    for group in groups {
        let full = group.view(rules.remove(&group.id).unwrap_or_default());
        if !auth.allows("get_security_group", &full) {
            continue;
        }
        let mut view = full.clone();
        strip(auth, "security_group", &mut view, &full);
        out.push((view, full));
    }
    Ok(out)
}

async fn load_visible(net: &Networking, auth: &Auth, id: &str) -> Result<SecurityGroup, ApiError> {
    let group: SecurityGroup = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::security_group_not_found(id))?;
    if !auth.allows("get_security_group", &group.view(Vec::new())) {
        return Err(errors::security_group_not_found(id));
    }
    Ok(group)
}

async fn group_view(
    net: &Networking,
    auth: &Auth,
    group: &SecurityGroup,
) -> Result<Value, ApiError> {
    Ok(views(net, auth, std::slice::from_ref(group))
        .await?
        .into_iter()
        .next()
        .map(|(v, _)| v)
        .unwrap_or_else(|| group.view(Vec::new())))
}

/// `GET /v2.0/security-groups`
pub async fn index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), GROUP_SORT_KEYS)?;
    let project = auth.project_id().unwrap_or_default().to_string();
    if auth.allows(
        "create_default_security_group",
        &json!({"project_id": project}),
    ) {
        sgdb::ensure_default(&net.db, &project).await?;
    }
    let groups: Vec<SecurityGroup> = if is_admin(&auth) {
        net.db.select("1 = 1", &[]).await?
    } else {
        net.db.select("project_id = $1", &[&project]).await?
    };
    let items = views(&net, &auth, &groups)
        .await?
        .into_iter()
        .filter(|(view, full)| q.matches(view, full))
        .map(|(view, _)| view)
        .collect();
    Ok(axum::Json(q.respond("security_groups", items, &request_url(&net, &uri))).into_response())
}

/// `GET /v2.0/security-groups/{id}`
pub async fn show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let group = load_visible(&net, &auth, &id).await?;
    let view = group_view(&net, &auth, &group).await?;
    Ok(ok(
        "security_group",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

fn prepare_group(auth: &Auth, mut map: Map<String, Value>) -> Result<SecurityGroup, ApiError> {
    check_attributes(&map, GROUP_ATTRS, true)?;
    let project = body::owner(auth, &mut map)?;
    let group_name = name(&map, "name")?.unwrap_or_default();
    if group_name.eq_ignore_ascii_case("default") {
        return Err(errors::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    let ts = now();
    let group = SecurityGroup {
        id: new_id(),
        project_id: project,
        name: group_name,
        description: name(&map, "description")?.unwrap_or_default(),
        stateful: boolean(&map, "stateful")?.unwrap_or(true),
        tags: body::tags(&map)?,
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    let mut target = group.view(Vec::new());
    for (k, v) in &map {
        target[k] = v.clone();
    }
    enforce(auth, "create_security_group", &target)?;
    enforce_attributes(
        auth,
        "create_security_group",
        &map,
        &[("tags", json!([]))],
        &target,
        true,
    )?;
    Ok(group)
}

/// `POST /v2.0/security-groups` (also in bulk).
pub async fn create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (items, bulk) = body::create_items(body, "security_group", "security_groups")?;
    let groups = items
        .into_iter()
        .map(|m| prepare_group(&auth, m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut done: Vec<SecurityGroup> = Vec::new();
    for group in &groups {
        sgdb::ensure_default(&net.db, &group.project_id).await?;
        match crate::db::write_tx!(net.db, |tx| sgdb::create(tx, &net.settings, group).await) {
            Ok(()) => done.push(group.clone()),
            Err(e) => {
                for g in &done {
                    let _ = crate::db::write_tx!(net.db, |tx| sgdb::delete(tx, &g.id, true, None)
                        .await);
                }
                return Err(e.into());
            }
        }
    }
    let mut out = Vec::new();
    for group in &done {
        out.push(group_view(&net, &auth, group).await?);
    }
    Ok(match bulk {
        true => created("security_groups", Value::Array(out)),
        false => created("security_group", out.into_iter().next().unwrap_or_default()),
    })
}

/// `PUT /v2.0/security-groups/{id}`
pub async fn update(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let map = body::resource_object(body, "security_group")?;
    check_attributes(&map, GROUP_ATTRS, false)?;
    let revision = body::if_match(&headers)?;
    let change = GroupUpdate {
        name: name(&map, "name")?,
        description: name(&map, "description")?,
        stateful: boolean(&map, "stateful")?,
    };
    let group = load_visible(&net, &auth, &id).await?;
    let target = group.view(Vec::new());
    enforce_visible(
        &auth,
        "update_security_group",
        "get_security_group",
        &target,
        || errors::security_group_not_found(&id),
    )?;
    enforce_attributes(&auth, "update_security_group", &map, &[], &target, false)?;
    if change
        .name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("default") && group.name != "default")
    {
        return Err(errors::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    let updated =
        crate::db::write_tx!(net.db, |tx| sgdb::update(tx, &id, &change, revision).await)?;
    Ok(ok(
        "security_group",
        group_view(&net, &auth, &updated).await?,
    ))
}

/// `DELETE /v2.0/security-groups/{id}`
pub async fn delete(
    State(net): AppState,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revision = body::if_match(&headers)?;
    let group = load_visible(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_security_group",
        "get_security_group",
        &group.view(Vec::new()),
        || errors::security_group_not_found(&id),
    )?;
    let admin = is_admin(&auth);
    crate::db::write_tx!(net.db, |tx| sgdb::delete(tx, &id, admin, revision).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The rules the caller may see with their views.
async fn visible_rules(net: &Networking, auth: &Auth) -> Result<Vec<(Value, Value)>, ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    let (rules, groups): (Vec<SecurityGroupRule>, Vec<SecurityGroup>) = if is_admin(auth) {
        (
            net.db.select("1 = 1", &[]).await?,
            net.db.select("1 = 1", &[]).await?,
        )
    } else {
        (
            net.db
                .select(
                    "security_group_id IN (SELECT id FROM net_security_groups WHERE project_id = $1)",
                    &[&project],
                )
                .await?,
            net.db.select("project_id = $1", &[&project]).await?,
        )
    };
    let owners: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.project_id.as_str()))
        .collect();
    let defaults = default_groups(net).await?;
    let mut out = Vec::new();
    for rule in &rules {
        let owner = owners
            .get(rule.security_group_id.as_str())
            .copied()
            .unwrap_or("");
        let full = rule.view(defaults.contains(&rule.security_group_id));
        let target = rule_target(&full, owner);
        if !auth.allows("get_security_group_rule", &target) {
            continue;
        }
        let mut view = full.clone();
        strip(auth, "security_group_rule", &mut view, &target);
        out.push((view, full));
    }
    Ok(out)
}

/// `GET /v2.0/security-group-rules`
pub async fn rules_index(
    State(net): AppState,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ListQuery::parse(raw.as_deref(), RULE_SORT_KEYS)?;
    let items = visible_rules(&net, &auth)
        .await?
        .into_iter()
        .filter(|(view, full)| q.matches(view, full))
        .map(|(view, _)| view)
        .collect();
    Ok(
        axum::Json(q.respond("security_group_rules", items, &request_url(&net, &uri)))
            .into_response(),
    )
}

async fn load_rule(
    net: &Networking,
    auth: &Auth,
    id: &str,
) -> Result<(SecurityGroupRule, Value), ApiError> {
    let rule: SecurityGroupRule = net
        .db
        .get(id)
        .await?
        .ok_or_else(|| errors::security_group_rule_not_found(id))?;
    let group: Option<SecurityGroup> = net.db.get(&rule.security_group_id).await?;
    let owner = group.map(|g| g.project_id).unwrap_or_default();
    let default = sgdb::is_default(&mut *net.db.conn().await?, &rule.security_group_id).await?;
    let target = rule_target(&rule.view(default), &owner);
    if !auth.allows("get_security_group_rule", &target) {
        return Err(errors::security_group_rule_not_found(id));
    }
    Ok((rule, target))
}

/// `GET /v2.0/security-group-rules/{id}`
pub async fn rule_show(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (rule, target) = load_rule(&net, &auth, &id).await?;
    let default = target["belongs_to_default_sg"].as_bool().unwrap_or(false);
    let mut view = rule.view(default);
    strip(&auth, "security_group_rule", &mut view, &target);
    Ok(ok(
        "security_group_rule",
        trim_fields(view, &show_fields(raw.as_deref())),
    ))
}

fn port_value(map: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    let invalid = |v: &Value| {
        errors::bad(
            "SecurityGroupInvalidPortValue",
            format!(
                "Invalid value for port {}",
                v.as_str().map(str::to_string).unwrap_or(v.to_string())
            ),
        )
    };
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (0..=65535).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(v)),
            }
        }
    }
}

async fn prepare_rule(
    net: &Networking,
    auth: &Auth,
    mut map: Map<String, Value>,
) -> Result<(SecurityGroupRule, SecurityGroup), ApiError> {
    check_attributes(&map, RULE_ATTRS, true)?;
    let project = body::owner(auth, &mut map)?;
    // Neutron checks these only by looking them up (a malformed id is a 404 like a missing one).
    let group_id = body::string(&map, "security_group_id", 36)?.ok_or_else(|| {
        errors::bad_request(
            "Failed to parse request. Required attribute 'security_group_id' not specified",
        )
    })?;
    let direction = match map.get("direction") {
        Some(Value::String(d)) if d == "ingress" || d == "egress" => d.clone(),
        None => {
            return Err(errors::bad_request(
                "Failed to parse request. Required attribute 'direction' not specified",
            ));
        }
        Some(other) => {
            return Err(reason(
                "direction",
                format!("{other} is not in ['ingress', 'egress']"),
            ));
        }
    };
    let ethertype = match map.get("ethertype") {
        None => "IPv4".to_string(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv4") => "IPv4".into(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv6") => "IPv6".into(),
        Some(other) => {
            let shown = other
                .as_str()
                .map(str::to_string)
                .unwrap_or(other.to_string());
            return Err(errors::bad(
                "SecurityGroupRuleInvalidEtherType",
                format!(
                    "Security group rule for ethertype '{shown}' not supported. Allowed values are ('IPv4', 'IPv6')."
                ),
            ));
        }
    };
    let protocol = match map.get("protocol") {
        None => None,
        Some(v) => crate::sg_rules::convert_protocol(v)?,
    };
    let remote_ip_prefix = match map.get("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(errors::bad(
                "InvalidCIDR",
                format!("Invalid CIDR {other} given as IP prefix."),
            ));
        }
    };
    let ts = now();
    let mut rule = SecurityGroupRule {
        id: new_id(),
        project_id: project,
        security_group_id: group_id.clone(),
        direction,
        ethertype,
        protocol,
        port_range_min: port_value(&map, "port_range_min")?,
        port_range_max: port_value(&map, "port_range_max")?,
        remote_ip_prefix,
        remote_group_id: match map.get("remote_group_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(errors::security_group_not_found(&other.to_string())),
        },
        description: name(&map, "description")?.unwrap_or_default(),
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    };
    crate::sg_rules::validate(&mut rule)?;
    let group = load_visible(net, auth, &group_id).await?;
    if let Some(remote) = &rule.remote_group_id {
        load_visible(net, auth, remote).await?;
    }
    let target = rule_target(&rule.view(false), &group.project_id);
    enforce(auth, "create_security_group_rule", &target)?;
    Ok((rule, group))
}

/// `POST /v2.0/security-group-rules` (also in bulk).
pub async fn rule_create(
    State(net): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (items, bulk) = body::create_items(body, "security_group_rule", "security_group_rules")?;
    let mut prepared = Vec::new();
    for map in items {
        prepared.push(prepare_rule(&net, &auth, map).await?);
    }
    if bulk {
        let mut keys = HashSet::new();
        for (rule, _) in &prepared {
            if !keys.insert(crate::sg_rules::key(rule)) {
                return Err(errors::conflict(
                    "DuplicateSecurityGroupRuleInPost",
                    "Duplicate Security Group Rule in POST.",
                ));
            }
        }
    }
    let defaults = default_groups(&net).await?;
    let mut done: Vec<SecurityGroupRule> = Vec::new();
    for (rule, _) in &prepared {
        match crate::db::write_tx!(net.db, |tx| sgdb::create_rule(tx, &net.settings, rule)
            .await)
        {
            Ok(r) => done.push(r),
            Err(e) => {
                for r in &done {
                    let _ = crate::db::write_tx!(net.db, |tx| sgdb::delete_rule(tx, &r.id).await);
                }
                return Err(e.into());
            }
        }
    }
    let views: Vec<Value> = done
        .iter()
        .map(|r| r.view(defaults.contains(&r.security_group_id)))
        .collect();
    Ok(match bulk {
        true => created("security_group_rules", Value::Array(views)),
        false => created(
            "security_group_rule",
            views.into_iter().next().unwrap_or_default(),
        ),
    })
}

/// `DELETE /v2.0/security-group-rules/{id}`
pub async fn rule_delete(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, target) = load_rule(&net, &auth, &id).await?;
    enforce_visible(
        &auth,
        "delete_security_group_rule",
        "get_security_group_rule",
        &target,
        || errors::security_group_rule_not_found(&id),
    )?;
    crate::db::write_tx!(net.db, |tx| sgdb::delete_rule(tx, &id).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
