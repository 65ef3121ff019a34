//! `/resource_providers` and `/resource_providers/{uuid}` (spec §3).

use super::query::{Query, parse_in_tree, parse_member_of, parse_required, parse_resources};
use super::{
    Ctx, Mv, R, State, UUID_PATTERN, bad, begin, body, commit, conflict, conn, dberr, empty,
    enforce, normalize_uuid, not_found, reply, with_location,
};
use crate::db::{self, Provider};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use ferrostack_store::now_rfc3339;
use serde_json::{Value, json};

/// A provider's body at the request version.
pub(crate) fn provider_json(p: &Provider, v: &Mv) -> Value {
    let base = format!("/placement/resource_providers/{}", p.uuid);
    let mut links = vec![
        json!({"rel": "self", "href": base}),
        json!({"rel": "inventories", "href": format!("{base}/inventories")}),
        json!({"rel": "usages", "href": format!("{base}/usages")}),
    ];
    if v.at(1) {
        links.push(json!({"rel": "aggregates", "href": format!("{base}/aggregates")}));
    }
    if v.at(6) {
        links.push(json!({"rel": "traits", "href": format!("{base}/traits")}));
    }
    if v.at(11) {
        links.push(json!({"rel": "allocations", "href": format!("{base}/allocations")}));
    }
    let mut body = json!({
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": links,
    });
    if v.at(14) {
        body["parent_provider_uuid"] = json!(p.parent);
        body["root_provider_uuid"] = json!(p.root);
    }
    body
}

fn schema(v: &Mv, update: bool) -> Value {
    let mut props = json!({"name": {"type": "string", "maxLength": 200}});
    if !update {
        props["uuid"] = json!({"type": "string", "pattern": UUID_PATTERN});
    }
    if v.at(14) {
        props["parent_provider_uuid"] =
            json!({"anyOf": [{"type": "string", "pattern": UUID_PATTERN}, {"type": "null"}]});
    }
    json!({"type": "object", "properties": props, "required": ["name"], "additionalProperties": false})
}

/// `GET /resource_providers`
pub(crate) async fn list(State(p): Ctx, auth: Auth, v: Mv, RawQuery(raw): RawQuery) -> R {
    enforce(&auth, "placement:resource_providers:list")?;
    let q = Query::parse(raw.as_deref());
    q.only(|k| match k {
        "name" | "uuid" => true,
        "member_of" => v.at(3),
        "resources" => v.at(4),
        "in_tree" => v.at(14),
        "required" => v.at(18),
        _ => false,
    })?;
    let uuid = match q.last("uuid") {
        Some(u) => Some(normalize_uuid(u).ok_or_else(|| {
            bad(format!(
                "Invalid query string parameters: '{u}' is not a 'uuid'"
            ))
        })?),
        None => None,
    };
    let member_of = parse_member_of(&q.all("member_of"), &v)?;
    let resources = match q.last("resources") {
        Some(r) => parse_resources(r)?,
        None => Vec::new(),
    };
    let in_tree = match q.last("in_tree") {
        Some(t) => Some(parse_in_tree(t, "in_tree")?),
        None => None,
    };
    let traits = parse_required(&q.all("required"), &v, "required")?;
    let mut c = conn(&p).await?;
    for (rc, _) in &resources {
        if !db::class_exists(&mut c, rc).await.map_err(dberr)? {
            return Err(bad(format!(
                "Invalid resource class in resources parameter: No such resource class {rc}."
            )));
        }
    }
    let names = traits.names();
    let existing = db::existing_traits(&mut c, &names).await.map_err(dberr)?;
    let missing: Vec<&String> = names.iter().filter(|n| !existing.contains(n)).collect();
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(bad(format!(
            "Invalid trait(s) in \"required\" parameter: No such trait(s): {}.",
            missing.join(", ")
        )));
    }
    drop(c);
    let snap = p.snapshot().await.map_err(dberr)?;
    let tree_root = match &in_tree {
        Some(t) => match snap.get(t) {
            Some(tp) => Some(tp.root.clone()),
            None => return Ok(reply(StatusCode::OK, json!({"resource_providers": []}))),
        },
        None => None,
    };
    let name = q.last("name");
    let out: Vec<Value> = snap
        .providers
        .iter()
        .filter(|rp| name.is_none_or(|n| rp.name == n))
        .filter(|rp| uuid.as_ref().is_none_or(|u| &rp.uuid == u))
        .filter(|rp| tree_root.as_ref().is_none_or(|r| &rp.root == r))
        .filter(|rp| {
            let aggs = snap.aggregates(&rp.uuid);
            member_of.required_ok(aggs) && !member_of.forbidden_hit(aggs)
        })
        .filter(|rp| traits.matches(snap.traits(&rp.uuid).iter()))
        .filter(|rp| resources.iter().all(|(rc, n)| snap.fits(&rp.uuid, rc, *n)))
        .map(|rp| provider_json(rp, &v))
        .collect();
    Ok(reply(StatusCode::OK, json!({"resource_providers": out})))
}

/// `POST /resource_providers`
pub(crate) async fn create(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:resource_providers:create")?;
    let data = body(&headers, &bytes, &schema(&v, false))?;
    let name = data["name"].as_str().unwrap_or_default().to_string();
    let uuid = match data.get("uuid").and_then(Value::as_str) {
        Some(u) => normalize_uuid(u).ok_or_else(|| bad(format!("Invalid uuid {u}")))?,
        None => uuid::Uuid::new_v4().hyphenated().to_string(),
    };
    let parent = match data.get("parent_provider_uuid").and_then(Value::as_str) {
        Some(u) => Some(normalize_uuid(u).ok_or_else(|| bad(format!("Invalid uuid {u}")))?),
        None => None,
    };
    let failed = |why: &str| {
        bad(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create failed because: {why}"
        ))
    };
    if name.is_empty() {
        return Err(failed("name is required"));
    }
    if parent.as_deref() == Some(uuid.as_str()) {
        return Err(failed(
            "parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.",
        ));
    }
    let mut tx = begin(&p).await?;
    // A provider's tree or its presence: readers re-read everything.
    tx.touch_all();
    let root = match &parent {
        Some(parent) => match db::provider(&mut tx, parent).await.map_err(dberr)? {
            Some(pp) => pp.root,
            None => return Err(failed("parent provider UUID does not exist.")),
        },
        None => uuid.clone(),
    };
    if db::provider(&mut tx, &uuid).await.map_err(dberr)?.is_some() {
        return Err(conflict(
            format!("Conflicting resource provider uuid: {uuid} already exists."),
            "placement.duplicate_name",
        ));
    }
    if db::provider_by_name(&mut tx, &name)
        .await
        .map_err(dberr)?
        .is_some()
    {
        return Err(conflict(
            format!("Conflicting resource provider name: {name} already exists."),
            "placement.duplicate_name",
        ));
    }
    let inserted = db::insert_provider(&mut tx, &uuid, &name, parent.as_deref(), &root).await;
    if let Err(e) = inserted {
        return Err(match e {
            ferrostack_store::StoreError::Conflict(_) => conflict(
                format!("Conflicting resource provider uuid: {uuid} already exists."),
                "placement.duplicate_name",
            ),
            other => dberr(other),
        });
    }
    commit(&p, tx).await?;
    let path = format!("/resource_providers/{uuid}");
    let created = Provider {
        uuid,
        name,
        generation: 0,
        parent,
        root,
    };
    let response = match v.at(20) {
        true => reply(StatusCode::OK, provider_json(&created, &v)),
        false => empty(StatusCode::CREATED),
    };
    Ok(with_location(&p, response, &path))
}

/// `GET /resource_providers/{uuid}`
pub(crate) async fn show(State(p): Ctx, auth: Auth, v: Mv, Path(uuid): Path<String>) -> R {
    enforce(&auth, "placement:resource_providers:show")?;
    let mut c = conn(&p).await?;
    let rp = db::provider(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))?;
    Ok(reply(StatusCode::OK, provider_json(&rp, &v)))
}

/// `PUT /resource_providers/{uuid}`
pub(crate) async fn update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:resource_providers:update")?;
    let data = body(&headers, &bytes, &schema(&v, true))?;
    let mut tx = begin(&p).await?;
    // A provider's tree or its presence: readers re-read everything.
    tx.touch_all();
    let mut rp = db::provider(&mut tx, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))?;
    let failed = |why: &str| {
        bad(format!(
            "Unable to save resource provider {uuid}: Object action update failed because: {why}"
        ))
    };
    let name = data["name"].as_str().unwrap_or_default().to_string();
    if let Some(requested) = data.get("parent_provider_uuid") {
        let new_parent = match requested.as_str() {
            Some(u) => Some(normalize_uuid(u).ok_or_else(|| bad(format!("Invalid uuid {u}")))?),
            None => None,
        };
        if new_parent != rp.parent {
            let parent_row = match &new_parent {
                Some(np) => Some(db::provider(&mut tx, np).await.map_err(dberr)?.ok_or_else(|| {
                    bad(format!(
                        "Unable to save resource provider {uuid}: Object action create failed because: parent provider UUID does not exist."
                    ))
                })?),
                None => None,
            };
            if rp.parent.is_some() && !v.at(37) {
                return Err(failed(match new_parent {
                    Some(_) => "re-parenting a provider is not currently allowed.",
                    None => "un-parenting a provider is not currently allowed.",
                }));
            }
            let all = db::providers(&mut tx).await.map_err(dberr)?;
            let subtree = descendants(&all, &uuid);
            if let Some(np) = &new_parent
                && (np == &uuid || subtree.contains(np))
            {
                return Err(failed("creating loop in the provider tree is not allowed."));
            }
            let new_root = parent_row.map(|pr| pr.root).unwrap_or_else(|| uuid.clone());
            sqlx::query("UPDATE placement_providers SET parent_uuid = $1, root_uuid = $2, updated_at = $3 WHERE uuid = $4")
                .bind(&new_parent)
                .bind(&new_root)
                .bind(now_rfc3339())
                .bind(&uuid)
                .execute(&mut *tx)
                .await
                .map_err(dberr)?;
            for d in &subtree {
                sqlx::query("UPDATE placement_providers SET root_uuid = $1 WHERE uuid = $2")
                    .bind(&new_root)
                    .bind(d)
                    .execute(&mut *tx)
                    .await
                    .map_err(dberr)?;
            }
            rp.parent = new_parent;
            rp.root = new_root;
        }
    }
    if name != rp.name {
        if db::provider_by_name(&mut tx, &name)
            .await
            .map_err(dberr)?
            .is_some()
        {
            return Err(conflict(
                format!("Conflicting resource provider {name} already exists."),
                "placement.duplicate_name",
            ));
        }
        sqlx::query("UPDATE placement_providers SET name = $1, updated_at = $2 WHERE uuid = $3")
            .bind(&name)
            .bind(now_rfc3339())
            .bind(&uuid)
            .execute(&mut *tx)
            .await
            .map_err(|e| match ferrostack_store::StoreError::from_write(e) {
                ferrostack_store::StoreError::Conflict(_) => conflict(
                    format!("Conflicting resource provider {name} already exists."),
                    "placement.duplicate_name",
                ),
                other => dberr(other),
            })?;
        rp.name = name;
    }
    commit(&p, tx).await?;
    Ok(reply(StatusCode::OK, provider_json(&rp, &v)))
}

/// Every provider below `uuid` (not itself).
pub(crate) fn descendants(all: &[Provider], uuid: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut frontier = vec![uuid.to_string()];
    while let Some(next) = frontier.pop() {
        for child in all
            .iter()
            .filter(|p| p.parent.as_deref() == Some(next.as_str()))
        {
            if !out.contains(&child.uuid) && child.uuid != uuid {
                out.push(child.uuid.clone());
                frontier.push(child.uuid.clone());
            }
        }
    }
    out
}

/// `DELETE /resource_providers/{uuid}`
pub(crate) async fn delete(State(p): Ctx, auth: Auth, Path(uuid): Path<String>) -> R {
    enforce(&auth, "placement:resource_providers:delete")?;
    let mut tx = begin(&p).await?;
    // A provider's tree or its presence: readers re-read everything.
    tx.touch_all();
    if db::provider(&mut tx, &uuid).await.map_err(dberr)?.is_none() {
        return Err(not_found(format!(
            "No resource provider with uuid {uuid} found for delete"
        )));
    }
    let child: Option<String> =
        sqlx::query_scalar("SELECT uuid FROM placement_providers WHERE parent_uuid = $1 LIMIT 1")
            .bind(&uuid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(dberr)?;
    if child.is_some() {
        return Err(conflict(
            format!(
                "Unable to delete parent resource provider {uuid}: It has child resource providers."
            ),
            "placement.resource_provider.cannot_delete_parent",
        ));
    }
    if db::has_allocations(&mut tx, &uuid, None)
        .await
        .map_err(dberr)?
    {
        return Err(conflict(
            format!(
                "Unable to delete resource provider {uuid}: Resource provider has allocations."
            ),
            "placement.resource_provider.inuse",
        ));
    }
    for sql in [
        "DELETE FROM placement_inventories WHERE provider_uuid = $1",
        "DELETE FROM placement_provider_traits WHERE provider_uuid = $1",
        "DELETE FROM placement_provider_aggregates WHERE provider_uuid = $1",
        "DELETE FROM placement_providers WHERE uuid = $1",
    ] {
        sqlx::query(sql)
            .bind(&uuid)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
    }
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
