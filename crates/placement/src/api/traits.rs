//! `/traits[/{name}]` and `/resource_providers/{uuid}/traits` (1.6+, spec §5.2).

use super::query::Query;
use super::{
    CONCURRENT, Ctx, Mv, R, State, bad, begin, body, commit, conflict, conn, dberr, empty, enforce,
    not_found, reply, with_location,
};
use crate::db;
use crate::standard::is_custom_name;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use ferrostack_store::now_rfc3339;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const GENERATION_CHANGED: &str =
    "Resource provider's generation already changed. Please update the generation and try again.";

/// `GET /traits`
pub(crate) async fn list(State(p): Ctx, auth: Auth, v: Mv, RawQuery(raw): RawQuery) -> R {
    v.need(6)?;
    enforce(&auth, "placement:traits:list")?;
    let q = Query::parse(raw.as_deref());
    q.only(|k| matches!(k, "name" | "associated"))?;
    let mut names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM placement_traits ORDER BY name")
            .fetch_all(&mut *conn(&p).await?)
            .await
            .map_err(dberr)?;
    if let Some(filter) = q.last("name") {
        let Some((op, arg)) = filter.split_once(':') else {
            return Err(bad(format!(
                "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{filter}\""
            )));
        };
        match op {
            "in" => {
                let wanted: BTreeSet<&str> = arg.split(',').map(str::trim).collect();
                names.retain(|n| wanted.contains(n.as_str()));
            }
            "startswith" => names.retain(|n| n.starts_with(arg)),
            _ => {}
        }
    }
    if let Some(associated) = q.last("associated") {
        let want = match associated.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(bad(
                    "The query parameter \"associated\" only accepts \"true\" or \"false\"",
                ));
            }
        };
        let used: BTreeSet<String> =
            sqlx::query_scalar("SELECT DISTINCT trait FROM placement_provider_traits")
                .fetch_all(&mut *conn(&p).await?)
                .await
                .map_err(dberr)?
                .into_iter()
                .collect();
        names.retain(|n| used.contains(n) == want);
    }
    Ok(reply(StatusCode::OK, json!({"traits": names})))
}

/// `GET /traits/{name}`: 204 when it exists.
pub(crate) async fn show(State(p): Ctx, auth: Auth, v: Mv, Path(name): Path<String>) -> R {
    v.need(6)?;
    enforce(&auth, "placement:traits:show")?;
    let found = db::existing_traits(&mut *conn(&p).await?, std::slice::from_ref(&name))
        .await
        .map_err(dberr)?;
    if found.is_empty() {
        return Err(not_found(format!("No such trait(s): {name}.")));
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `PUT /traits/{name}`: 201 created, 204 existed.
pub(crate) async fn update(State(p): Ctx, auth: Auth, v: Mv, Path(name): Path<String>) -> R {
    v.need(6)?;
    enforce(&auth, "placement:traits:update")?;
    if !is_custom_name(&name) {
        return Err(bad(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"",
        ));
    }
    let mut tx = begin(&p).await?;
    tx.touch_all(); // the trait catalog
    let exists = !db::existing_traits(&mut tx, std::slice::from_ref(&name))
        .await
        .map_err(dberr)?
        .is_empty();
    if !exists {
        sqlx::query("INSERT INTO placement_traits (name, standard, created_at) VALUES ($1, 0, $2)")
            .bind(&name)
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
    }
    commit(&p, tx).await?;
    let status = match exists {
        true => StatusCode::NO_CONTENT,
        false => StatusCode::CREATED,
    };
    Ok(with_location(&p, empty(status), &format!("/traits/{name}")))
}

/// `DELETE /traits/{name}`
pub(crate) async fn delete(State(p): Ctx, auth: Auth, v: Mv, Path(name): Path<String>) -> R {
    v.need(6)?;
    enforce(&auth, "placement:traits:delete")?;
    let mut tx = begin(&p).await?;
    tx.touch_all(); // the trait catalog
    let standard: Option<i64> =
        sqlx::query_scalar("SELECT standard FROM placement_traits WHERE name = $1")
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(dberr)?;
    match standard {
        None => return Err(not_found(format!("No such trait(s): {name}."))),
        Some(1) => return Err(bad(format!("Cannot delete standard trait {name}."))),
        Some(_) => {}
    }
    let used: Option<String> = sqlx::query_scalar(
        "SELECT provider_uuid FROM placement_provider_traits WHERE trait = $1 LIMIT 1",
    )
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(dberr)?;
    if used.is_some() {
        return Err(conflict(
            format!("The trait {name} is in use by a resource provider."),
            super::UNDEFINED,
        ));
    }
    sqlx::query("DELETE FROM placement_traits WHERE name = $1")
        .bind(&name)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn rp_missing(uuid: &str) -> ferrostack_api::ApiError {
    not_found(format!("No resource provider with uuid {uuid} found"))
}

/// `GET /resource_providers/{uuid}/traits`
pub(crate) async fn provider_list(State(p): Ctx, auth: Auth, v: Mv, Path(uuid): Path<String>) -> R {
    v.need(6)?;
    enforce(&auth, "placement:resource_providers:traits:list")?;
    let mut c = conn(&p).await?;
    let rp = db::provider(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| rp_missing(&uuid))?;
    let traits = db::provider_traits(&mut c, &uuid).await.map_err(dberr)?;
    Ok(reply(
        StatusCode::OK,
        json!({"traits": traits, "resource_provider_generation": rp.generation}),
    ))
}

/// `PUT /resource_providers/{uuid}/traits`
pub(crate) async fn provider_update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    v.need(6)?;
    enforce(&auth, "placement:resource_providers:traits:update")?;
    let schema = json!({"type": "object", "properties": {
            "traits": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}},
            "resource_provider_generation": {"type": "integer"}},
        "required": ["traits", "resource_provider_generation"], "additionalProperties": false});
    let data = body(&headers, &bytes, &schema)?;
    let generation = data["resource_provider_generation"].as_i64().unwrap_or(-1);
    let wanted: BTreeSet<String> = data["traits"]
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
        .ok_or_else(|| rp_missing(&uuid))?;
    let names: Vec<String> = wanted.iter().cloned().collect();
    let existing = db::existing_traits(&mut tx, &names).await.map_err(dberr)?;
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !existing.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!("No such trait {}", missing.join(", "))));
    }
    let current: BTreeSet<String> = db::provider_traits(&mut tx, &uuid)
        .await
        .map_err(dberr)?
        .into_iter()
        .collect();
    let new_generation = if current == wanted {
        if rp.generation != generation {
            return Err(conflict(GENERATION_CHANGED, CONCURRENT));
        }
        rp.generation
    } else {
        let Some(g) = db::bump_generation(&mut tx, &uuid, Some(generation))
            .await
            .map_err(dberr)?
        else {
            return Err(conflict(GENERATION_CHANGED, CONCURRENT));
        };
        sqlx::query("DELETE FROM placement_provider_traits WHERE provider_uuid = $1")
            .bind(&uuid)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
        for t in &wanted {
            sqlx::query(
                "INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES ($1, $2)",
            )
            .bind(&uuid)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
        }
        g
    };
    commit(&p, tx).await?;
    Ok(reply(
        StatusCode::OK,
        json!({"traits": wanted, "resource_provider_generation": new_generation}),
    ))
}

/// `DELETE /resource_providers/{uuid}/traits`
pub(crate) async fn provider_delete(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
) -> R {
    v.need(6)?;
    enforce(&auth, "placement:resource_providers:traits:delete")?;
    let mut tx = begin(&p).await?;
    tx.touch(&uuid);
    db::provider(&mut tx, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| rp_missing(&uuid))?;
    let current = db::provider_traits(&mut tx, &uuid).await.map_err(dberr)?;
    if !current.is_empty() {
        db::bump_generation(&mut tx, &uuid, None)
            .await
            .map_err(dberr)?;
        sqlx::query("DELETE FROM placement_provider_traits WHERE provider_uuid = $1")
            .bind(&uuid)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
    }
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
