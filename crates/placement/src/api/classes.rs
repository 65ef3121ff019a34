//! `/resource_classes[/{name}]` (1.2+, spec §5.1).

use super::{
    Ctx, Mv, R, State, bad, begin, body, commit, conflict, conn, dberr, empty, enforce, not_found,
    reply, with_location,
};
use crate::standard::{is_custom_name, is_standard_class};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use ferrostack_store::now_rfc3339;
use serde_json::{Value, json};

const CUSTOM_PATTERN: &str = "^CUSTOM_[A-Z0-9_]+$";

fn class_json(name: &str) -> Value {
    json!({"name": name, "links": [{"rel": "self", "href": format!("/placement/resource_classes/{name}")}]})
}

fn name_schema() -> Value {
    json!({"type": "object",
        "properties": {"name": {"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255}},
        "required": ["name"], "additionalProperties": false})
}

async fn insert_custom(tx: &mut sqlx::AnyConnection, name: &str) -> R<()> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(seq), 9999) AS BIGINT) FROM placement_resource_classes WHERE seq >= 10000",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(dberr)?;
    sqlx::query("INSERT INTO placement_resource_classes (name, standard, seq, created_at) VALUES ($1, 0, $2, $3)")
        .bind(name)
        .bind(seq + 1)
        .bind(now_rfc3339())
        .execute(tx)
        .await
        .map_err(dberr)?;
    Ok(())
}

/// `GET /resource_classes`
pub(crate) async fn list(State(p): Ctx, auth: Auth, v: Mv) -> R {
    v.need(2)?;
    enforce(&auth, "placement:resource_classes:list")?;
    let mut c = conn(&p).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM placement_resource_classes ORDER BY seq, name")
            .fetch_all(&mut *c)
            .await
            .map_err(dberr)?;
    let out: Vec<Value> = names.iter().map(|n| class_json(n)).collect();
    Ok(reply(StatusCode::OK, json!({"resource_classes": out})))
}

/// `GET /resource_classes/{name}`
pub(crate) async fn show(State(p): Ctx, auth: Auth, v: Mv, Path(name): Path<String>) -> R {
    v.need(2)?;
    enforce(&auth, "placement:resource_classes:show")?;
    let mut c = conn(&p).await?;
    if !crate::db::class_exists(&mut c, &name)
        .await
        .map_err(dberr)?
    {
        return Err(not_found(format!("No such resource class {name}.")));
    }
    Ok(reply(StatusCode::OK, class_json(&name)))
}

/// `POST /resource_classes`
pub(crate) async fn create(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    v.need(2)?;
    enforce(&auth, "placement:resource_classes:create")?;
    let data = body(&headers, &bytes, &name_schema())?;
    let name = data["name"].as_str().unwrap_or_default().to_string();
    let mut tx = begin(&p).await?;
    tx.touch_all(); // the class catalog
    if crate::db::class_exists(&mut tx, &name)
        .await
        .map_err(dberr)?
    {
        return Err(conflict(
            format!("Conflicting resource class already exists: {name}"),
            super::UNDEFINED,
        ));
    }
    insert_custom(&mut tx, &name).await?;
    commit(&p, tx).await?;
    Ok(with_location(
        &p,
        empty(StatusCode::CREATED),
        &format!("/resource_classes/{name}"),
    ))
}

/// `PUT /resource_classes/{name}`: rename (1.2–1.6) or create-or-verify (≥1.7, bodiless).
pub(crate) async fn update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    v.need(2)?;
    enforce(&auth, "placement:resource_classes:update")?;
    if v.at(7) {
        if !is_custom_name(&name) {
            return Err(bad(format!(
                "JSON does not validate: \"{name}\" does not match \"{CUSTOM_PATTERN}\""
            )));
        }
        let mut tx = begin(&p).await?;
        tx.touch_all(); // the class catalog
        let status = if crate::db::class_exists(&mut tx, &name)
            .await
            .map_err(dberr)?
        {
            StatusCode::NO_CONTENT
        } else {
            insert_custom(&mut tx, &name).await?;
            StatusCode::CREATED
        };
        commit(&p, tx).await?;
        return Ok(with_location(
            &p,
            empty(status),
            &format!("/resource_classes/{name}"),
        ));
    }
    let data = body(&headers, &bytes, &name_schema())?;
    let new_name = data["name"].as_str().unwrap_or_default().to_string();
    let mut tx = begin(&p).await?;
    tx.touch_all(); // the class catalog
    if !crate::db::class_exists(&mut tx, &name)
        .await
        .map_err(dberr)?
    {
        return Err(not_found(format!("No such resource class {name}.")));
    }
    if is_standard_class(&name) {
        return Err(bad(format!("Cannot update standard resource class {name}")));
    }
    if crate::db::class_exists(&mut tx, &new_name)
        .await
        .map_err(dberr)?
    {
        return Err(conflict(
            format!("Resource class already exists: {new_name}"),
            super::UNDEFINED,
        ));
    }
    for sql in [
        "UPDATE placement_resource_classes SET name = $1 WHERE name = $2",
        "UPDATE placement_inventories SET resource_class = $1 WHERE resource_class = $2",
        "UPDATE placement_allocations SET resource_class = $1 WHERE resource_class = $2",
    ] {
        sqlx::query(sql)
            .bind(&new_name)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
    }
    commit(&p, tx).await?;
    Ok(reply(StatusCode::OK, class_json(&new_name)))
}

/// `DELETE /resource_classes/{name}`
pub(crate) async fn delete(State(p): Ctx, auth: Auth, v: Mv, Path(name): Path<String>) -> R {
    v.need(2)?;
    enforce(&auth, "placement:resource_classes:delete")?;
    if is_standard_class(&name) {
        return Err(bad(format!(
            "Error in delete resource class: Cannot delete standard resource class {name}."
        )));
    }
    let mut tx = begin(&p).await?;
    tx.touch_all(); // the class catalog
    if !crate::db::class_exists(&mut tx, &name)
        .await
        .map_err(dberr)?
    {
        return Err(not_found(format!("No such resource class {name}.")));
    }
    let used: Option<String> = sqlx::query_scalar(
        "SELECT provider_uuid FROM placement_inventories WHERE resource_class = $1 LIMIT 1",
    )
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(dberr)?;
    if used.is_some() {
        return Err(conflict(
            format!(
                "Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."
            ),
            super::UNDEFINED,
        ));
    }
    sqlx::query("DELETE FROM placement_resource_classes WHERE name = $1")
        .bind(&name)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
