//! `/resource_providers/{uuid}/aggregates` (1.1+, spec §5.3).

use super::{
    CONCURRENT, Ctx, Mv, R, State, UUID_PATTERN, begin, body, commit, conflict, conn, dberr,
    enforce, not_found, reply,
};
use crate::db;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use serde_json::{Value, json};

fn shape(v: &Mv, aggregates: &[String], generation: i64) -> Value {
    match v.at(19) {
        true => json!({"aggregates": aggregates, "resource_provider_generation": generation}),
        false => json!({"aggregates": aggregates}),
    }
}

/// `GET …/aggregates`
pub(crate) async fn list(State(p): Ctx, auth: Auth, v: Mv, Path(uuid): Path<String>) -> R {
    v.need(1)?;
    enforce(&auth, "placement:resource_providers:aggregates:list")?;
    let mut c = conn(&p).await?;
    let rp = db::provider(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))?;
    let aggs = db::provider_aggregates(&mut c, &uuid)
        .await
        .map_err(dberr)?;
    Ok(reply(StatusCode::OK, shape(&v, &aggs, rp.generation)))
}

/// `PUT …/aggregates`: a bare list below 1.19; an object with the generation from 1.19.
pub(crate) async fn update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    v.need(1)?;
    enforce(&auth, "placement:resource_providers:aggregates:update")?;
    let list = json!({"type": "array", "uniqueItems": true,
        "items": {"type": "string", "pattern": UUID_PATTERN}});
    let schema = match v.at(19) {
        true => json!({"type": "object", "properties": {
                "aggregates": list, "resource_provider_generation": {"type": "integer"}},
            "required": ["aggregates", "resource_provider_generation"],
            "additionalProperties": false}),
        false => list,
    };
    let data = body(&headers, &bytes, &schema)?;
    let (items, generation) = match v.at(19) {
        true => (
            data["aggregates"].clone(),
            data["resource_provider_generation"].as_i64(),
        ),
        false => (data, None),
    };
    let aggregates: Vec<String> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let mut tx = begin(&p).await?;
    tx.touch(&uuid);
    let rp = db::provider(&mut tx, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))?;
    let new_generation = match generation {
        Some(g) => db::bump_generation(&mut tx, &uuid, Some(g))
            .await
            .map_err(dberr)?
            .ok_or_else(|| {
                conflict(
                    "Resource provider's generation already changed. Please update the generation and try again.",
                    CONCURRENT,
                )
            })?,
        None => rp.generation,
    };
    sqlx::query("DELETE FROM placement_provider_aggregates WHERE provider_uuid = $1")
        .bind(&uuid)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    for a in &aggregates {
        sqlx::query(
            "INSERT INTO placement_provider_aggregates (provider_uuid, aggregate_uuid) VALUES ($1, $2)",
        )
        .bind(&uuid)
        .bind(a)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    }
    commit(&p, tx).await?;
    Ok(reply(
        StatusCode::OK,
        shape(&v, &aggregates, new_generation),
    ))
}
