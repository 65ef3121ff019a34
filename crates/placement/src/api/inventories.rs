//! `/resource_providers/{uuid}/inventories[/{rc}]` (spec §4).

use super::{
    CONCURRENT, Ctx, Mv, R, State, bad, begin, body, commit, conflict, conn, dberr, empty, enforce,
    method_not_allowed, not_found, reply, with_location,
};
use crate::db::{self, Inventory};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const MAX_INT: i64 = 2147483647;

fn fields() -> Map<String, Value> {
    let int = |min: i64| json!({"type": "integer", "minimum": min, "maximum": MAX_INT});
    let mut m = Map::new();
    m.insert("total".into(), int(1));
    m.insert("reserved".into(), int(0));
    m.insert("min_unit".into(), int(1));
    m.insert("max_unit".into(), int(1));
    m.insert("step_size".into(), int(1));
    m.insert(
        "allocation_ratio".into(),
        json!({"type": "number", "maximum": 3.40282e+38}),
    );
    m
}

fn inventory_schema() -> Value {
    json!({"type": "object", "properties": fields(), "required": ["total"], "additionalProperties": false})
}

fn parse(v: &Value) -> Inventory {
    let get = |k: &str, d: i64| v.get(k).and_then(Value::as_i64).unwrap_or(d);
    Inventory {
        total: get("total", 0),
        reserved: get("reserved", 0),
        min_unit: get("min_unit", 1),
        max_unit: get("max_unit", MAX_INT),
        step_size: get("step_size", 1),
        allocation_ratio: v
            .get("allocation_ratio")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
    }
}

/// The reserved-vs-total check (spec §4.1).
fn check_capacity(v: &Mv, uuid: &str, rc: &str, inv: &Inventory, prefix: &str) -> R<()> {
    let invalid = match v.at(26) {
        true => inv.reserved > inv.total,
        false => inv.reserved >= inv.total,
    };
    if invalid {
        let what = match v.at(26) {
            true => "greater than total",
            false => "greater than or equal to total",
        };
        return Err(bad(format!(
            "{prefix}Invalid inventory for '{rc}' on resource provider '{uuid}'. The reserved value is {what}."
        )));
    }
    Ok(())
}

fn one_json(generation: i64, inv: &Inventory) -> Value {
    let mut body = inv.json();
    body["resource_provider_generation"] = json!(generation);
    body
}

fn all_json(generation: i64, invs: &BTreeMap<String, Inventory>) -> Value {
    let inventories: Map<String, Value> = invs.iter().map(|(k, i)| (k.clone(), i.json())).collect();
    json!({"resource_provider_generation": generation, "inventories": inventories})
}

async fn provider_or_404(c: &mut sqlx::AnyConnection, uuid: &str) -> R<db::Provider> {
    db::provider(c, uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))
}

/// `GET …/inventories`
pub(crate) async fn list(State(p): Ctx, auth: Auth, Path(uuid): Path<String>) -> R {
    enforce(&auth, "placement:resource_providers:inventories:list")?;
    let mut c = conn(&p).await?;
    let rp = provider_or_404(&mut c, &uuid).await?;
    let invs = db::inventories(&mut c, &uuid).await.map_err(dberr)?;
    Ok(reply(StatusCode::OK, all_json(rp.generation, &invs)))
}

/// `GET …/inventories/{rc}`
pub(crate) async fn show(State(p): Ctx, auth: Auth, Path((uuid, rc)): Path<(String, String)>) -> R {
    enforce(&auth, "placement:resource_providers:inventories:show")?;
    let mut c = conn(&p).await?;
    let rp = provider_or_404(&mut c, &uuid).await?;
    let invs = db::inventories(&mut c, &uuid).await.map_err(dberr)?;
    let inv = invs
        .get(&rc)
        .ok_or_else(|| not_found(format!("No inventory of class {rc} for {uuid}")))?;
    Ok(reply(StatusCode::OK, one_json(rp.generation, inv)))
}

/// `PUT …/inventories`: replaces the whole set (generation compared).
pub(crate) async fn replace(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:resource_providers:inventories:update")?;
    let schema = json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "inventories": {
                "type": "object",
                "patternProperties": {"^[A-Z0-9_]+$": inventory_schema()},
                "additionalProperties": false,
            },
        },
        "required": ["inventories", "resource_provider_generation"],
        "additionalProperties": false,
    });
    let data = body(&headers, &bytes, &schema)?;
    let generation = data["resource_provider_generation"].as_i64().unwrap_or(-1);
    let mut tx = begin(&p).await?;
    provider_or_404(&mut tx, &uuid).await?;
    let Some(new_generation) = db::bump_generation(&mut tx, &uuid, Some(generation))
        .await
        .map_err(dberr)?
    else {
        return Err(conflict(
            "resource provider generation conflict",
            CONCURRENT,
        ));
    };
    let mut wanted = BTreeMap::new();
    for (rc, fields) in data["inventories"].as_object().into_iter().flatten() {
        if !db::class_exists(&mut tx, rc).await.map_err(dberr)? {
            return Err(bad(format!(
                "Unknown resource class in inventory for resource provider {uuid}: No such resource class {rc}."
            )));
        }
        let inv = parse(fields);
        check_capacity(
            &v,
            &uuid,
            rc,
            &inv,
            &format!("Unable to update inventory for resource provider {uuid}: "),
        )?;
        wanted.insert(rc.clone(), inv);
    }
    let current = db::inventories(&mut tx, &uuid).await.map_err(dberr)?;
    let in_use = db::inventory_in_use(&mut tx, &uuid, &current, &wanted)
        .await
        .map_err(dberr)?;
    if !in_use.is_empty() {
        return Err(conflict(
            format!(
                "update conflict: Inventory for '{}' on resource provider '{uuid}' in use.",
                in_use.join(", ")
            ),
            "placement.inventory.inuse",
        ));
    }
    db::apply_inventories(&mut tx, &uuid, &current, &wanted)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(reply(StatusCode::OK, all_json(new_generation, &wanted)))
}

/// `PUT …/inventories/{rc}` (generation compared; the class must already have inventory).
pub(crate) async fn update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path((uuid, rc)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:resource_providers:inventories:update")?;
    let mut props = fields();
    props.insert(
        "resource_provider_generation".into(),
        json!({"type": "integer"}),
    );
    let schema = json!({"type": "object", "properties": props,
        "required": ["total", "resource_provider_generation"], "additionalProperties": false});
    let data = body(&headers, &bytes, &schema)?;
    let generation = data["resource_provider_generation"].as_i64().unwrap_or(-1);
    let mut tx = begin(&p).await?;
    provider_or_404(&mut tx, &uuid).await?;
    if !db::class_exists(&mut tx, &rc).await.map_err(dberr)? {
        return Err(not_found(format!("No such resource class {rc}.")));
    }
    let Some(new_generation) = db::bump_generation(&mut tx, &uuid, Some(generation))
        .await
        .map_err(dberr)?
    else {
        return Err(conflict(
            "resource provider generation conflict",
            CONCURRENT,
        ));
    };
    let current = db::inventories(&mut tx, &uuid).await.map_err(dberr)?;
    if !current.contains_key(&rc) {
        return Err(bad(format!(
            "No inventory record with resource class for resource provider {uuid}: No inventory of class {rc} found."
        )));
    }
    let inv = parse(&data);
    check_capacity(
        &v,
        &uuid,
        &rc,
        &inv,
        &format!("Unable to update inventory for resource provider {uuid}: "),
    )?;
    db::put_inventory(&mut tx, &uuid, &rc, &inv)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(reply(StatusCode::OK, one_json(new_generation, &inv)))
}

/// `POST …/inventories`: adds one class (generation not compared).
pub(crate) async fn create(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:resource_providers:inventories:create")?;
    let mut props = fields();
    props.insert(
        "resource_class".into(),
        json!({"type": "string", "pattern": "^[A-Z0-9_]+$"}),
    );
    props.insert(
        "resource_provider_generation".into(),
        json!({"type": "integer"}),
    );
    let schema = json!({"type": "object", "properties": props,
        "required": ["total", "resource_class"], "additionalProperties": false});
    let data = body(&headers, &bytes, &schema)?;
    let rc = data["resource_class"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut tx = begin(&p).await?;
    provider_or_404(&mut tx, &uuid).await?;
    let prefix = format!("Unable to create inventory for resource provider {uuid}: ");
    if !db::class_exists(&mut tx, &rc).await.map_err(dberr)? {
        return Err(bad(format!("{prefix}No such resource class {rc}.")));
    }
    let inv = parse(&data);
    check_capacity(&v, &uuid, &rc, &inv, &prefix)?;
    let current = db::inventories(&mut tx, &uuid).await.map_err(dberr)?;
    if current.contains_key(&rc) {
        return Err(conflict(
            format!(
                "Update conflict: Inventory for '{rc}' on resource provider '{uuid}' already exists."
            ),
            CONCURRENT,
        ));
    }
    let generation = db::bump_generation(&mut tx, &uuid, None)
        .await
        .map_err(dberr)?
        .unwrap_or_default();
    db::put_inventory(&mut tx, &uuid, &rc, &inv)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    let response = reply(StatusCode::CREATED, one_json(generation, &inv));
    Ok(with_location(
        &p,
        response,
        &format!("/resource_providers/{uuid}/inventories/{rc}"),
    ))
}

/// `DELETE …/inventories/{rc}`
pub(crate) async fn delete(
    State(p): Ctx,
    auth: Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> R {
    enforce(&auth, "placement:resource_providers:inventories:delete")?;
    let mut tx = begin(&p).await?;
    provider_or_404(&mut tx, &uuid).await?;
    let current = db::inventories(&mut tx, &uuid).await.map_err(dberr)?;
    if !current.contains_key(&rc) {
        return Err(not_found(format!(
            "No inventory of class {rc} found for delete: No inventory of class {rc} for {uuid}"
        )));
    }
    if db::has_allocations(&mut tx, &uuid, Some(&rc))
        .await
        .map_err(dberr)?
    {
        return Err(conflict(
            format!(
                "Unable to delete inventory of class {rc}: Inventory for '{rc}' on resource provider '{uuid}' in use."
            ),
            CONCURRENT,
        ));
    }
    db::bump_generation(&mut tx, &uuid, None)
        .await
        .map_err(dberr)?;
    sqlx::query(
        "DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(&uuid)
    .bind(&rc)
    .execute(&mut *tx)
    .await
    .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `DELETE …/inventories` (≥1.5; 405 below).
pub(crate) async fn delete_all(State(p): Ctx, auth: Auth, v: Mv, Path(uuid): Path<String>) -> R {
    if !v.at(5) {
        return Ok(method_not_allowed("GET, POST, PUT"));
    }
    enforce(&auth, "placement:resource_providers:inventories:delete")?;
    let mut tx = begin(&p).await?;
    provider_or_404(&mut tx, &uuid).await?;
    let current = db::inventories(&mut tx, &uuid).await.map_err(dberr)?;
    let mut in_use = Vec::new();
    for rc in current.keys() {
        if db::has_allocations(&mut tx, &uuid, Some(rc))
            .await
            .map_err(dberr)?
        {
            in_use.push(rc.clone());
        }
    }
    if !in_use.is_empty() {
        return Err(conflict(
            format!(
                "Inventory for '{}' on resource provider '{uuid}' in use.",
                in_use.join(", ")
            ),
            "placement.inventory.inuse",
        ));
    }
    db::bump_generation(&mut tx, &uuid, None)
        .await
        .map_err(dberr)?;
    sqlx::query("DELETE FROM placement_inventories WHERE provider_uuid = $1")
        .bind(&uuid)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
