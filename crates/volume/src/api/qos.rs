//! `/v3/qos-specs` (`cinder/api/contrib/qos_specs_manage.py`, `cinder/volume/qos_specs.py`),
//! admins only: QoS specs with their consumer and key/value specs, and their association with
//! volume types (kept on the type as `qos_specs_id`: a type has at most one).

use super::snapshots::{ListParams, bool_param};
use super::types::lock_type;
use super::{AppState, Mv, authorize, body_schema, is_admin, ok, query_value};
use crate::db::{Tx, write_tx};
use crate::errors;
use crate::model::{QosSpecs, VolumeType};
use crate::service::Volumes;
use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/qos-specs", get(index).post(create))
        .route("/qos-specs/{id}", get(show).put(update).delete(delete))
        .route("/qos-specs/{id}/delete_keys", put(delete_keys))
        .route("/qos-specs/{id}/associations", get(associations))
        .route("/qos-specs/{id}/associate", get(set_association))
        .route("/qos-specs/{id}/disassociate", get(set_association))
        .route("/qos-specs/{id}/disassociate_all", get(disassociate_all))
}

/// The consumers a QoS spec may name.
const CONSUMERS: &[&str] = &["back-end", "front-end", "both"];

/// The item view.
fn item(q: &QosSpecs) -> Value {
    json!({"id": q.id, "name": q.name, "consumer": q.consumer, "specs": q.specs})
}

/// The detail view with its `self` and `bookmark` links.
fn detail(v: &Volumes, q: &QosSpecs) -> Response {
    let base = v.base_url();
    axum::Json(json!({
        "qos_specs": item(q),
        "links": [
            {"rel": "self", "href": format!("{base}/v3/qos-specs/{}", q.id)},
            {"rel": "bookmark", "href": format!("{base}/qos-specs/{}", q.id)},
        ],
    }))
    .into_response()
}

/// The QoS specs `id`; 404 otherwise.
async fn find(v: &Volumes, id: &str) -> Result<QosSpecs, ApiError> {
    let found: Option<QosSpecs> = v.db.get(id).await?;
    found.ok_or_else(|| errors::qos_specs_not_found(id))
}

/// The types associated with `id`.
async fn associated(v: &Volumes, id: &str) -> Result<Vec<VolumeType>, ApiError> {
    Ok(v.db.select("qos_specs_id = $1", &[id]).await?)
}

/// 400 `InvalidQoSSpecs` for an unknown consumer.
fn check_consumer(consumer: &str) -> Result<(), ApiError> {
    match CONSUMERS.contains(&consumer) {
        true => Ok(()),
        false => Err(errors::bad_request(
            "Invalid qos specs: Valid consumer of QoS specs are: ['back-end', 'front-end', \
             'both']",
        )),
    }
}

/// Splits a body's key/value pairs into the consumer and the specs; values must be strings
/// of at most 255 characters (`validate_dictionary_string_length`).
fn split_specs(
    pairs: &serde_json::Map<String, Value>,
) -> Result<(Option<String>, BTreeMap<String, String>), ApiError> {
    let mut consumer = None;
    let mut specs = BTreeMap::new();
    for (key, value) in pairs {
        let Some(text) = value.as_str() else {
            return Err(errors::invalid_input(format!(
                "Value for key \"{key}\" is not a string or unicode"
            )));
        };
        if key.is_empty() {
            return Err(errors::invalid_input(
                "Key \"\" has a minimum character requirement of 1.",
            ));
        }
        if key.chars().count() > 255 {
            return Err(errors::invalid_input(format!(
                "Key \"{key}\" has more than 255 characters."
            )));
        }
        if text.chars().count() > 255 {
            return Err(errors::invalid_input(format!(
                "Value for key \"{key}\" has more than 255 characters."
            )));
        }
        match key.as_str() {
            "consumer" => consumer = Some(text.to_string()),
            _ => {
                specs.insert(key.clone(), text.to_string());
            }
        }
    }
    Ok((consumer, specs))
}

// ---------------------------------------------------------------------------------------
// List, show, create, update, delete.
// ---------------------------------------------------------------------------------------

const SORT_KEYS: &[&str] = &["id", "name", "consumer", "created_at"];

/// `GET /v3/qos-specs` (filters `id`, `name`, `consumer`).
async fn index(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:qos_specs_manage:get_all")?;
    let mut params = ListParams::parse(raw.as_deref(), &mv)?;
    if !is_admin(&auth) {
        params
            .filters
            .retain(|k, _| ["id", "name", "consumer"].contains(&k.as_str()));
    }
    params.check_sort_keys(SORT_KEYS)?;
    let marker = match params.marker() {
        None => None,
        Some(m) => Some(json!(find(&v, m).await?)),
    };
    let all: Vec<QosSpecs> = v.db.select("1 = 1", &[]).await?;
    let matched: Vec<(Value, QosSpecs)> = all
        .into_iter()
        .map(|q| (json!(q), q))
        .filter(|(columns, _)| {
            params.filters.iter().all(|(k, want)| match k.as_str() {
                "id" | "name" | "consumer" => columns[k].as_str() == Some(want.as_str()),
                _ => false,
            })
        })
        .collect();
    let page = params.page(matched, marker.as_ref());
    let mut body = json!({"qos_specs": page.iter().map(item).collect::<Vec<_>>()});
    let last = page.last().map(|q| q.id.as_str());
    if let Some(links) = params.links(&v, "qos-specs", last, page.len(), None) {
        body["qos_specs_links"] = links;
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /v3/qos-specs/{id}`.
async fn show(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:qos_specs_manage:get")?;
    Ok(detail(&v, &find(&v, &id).await?))
}

/// `{"qos_specs": {"name", ...}}`: the other keys are the specs (checked by [`split_specs`]).
static CREATE: LazyLock<Schema> = LazyLock::new(|| {
    let qos_specs = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    });
    body_schema("qos_specs", qos_specs)
});

static SET: LazyLock<Schema> = LazyLock::new(|| {
    let qos_specs = json!({
        "type": "object",
        "patternProperties": {"^[a-zA-Z0-9_:. /-]{1,255}$": {
            "type": ["string", "null"], "maxLength": 255,
        }},
        "additionalProperties": false,
    });
    body_schema("qos_specs", qos_specs)
});

static UNSET: LazyLock<Schema> = LazyLock::new(|| {
    let keys = json!({
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 255},
        "uniqueItems": true,
    });
    body_schema("keys", keys)
});

/// The name of `POST /v3/qos-specs` (`name_skip_leading_trailing_spaces`), stripped.
fn qos_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let reason = if raw.is_empty() {
        "The 'name' can not be None."
    } else if name.is_empty() {
        "The 'name' can not be empty."
    } else if name.chars().count() > 255 {
        "The 'name' can not be greater than 255 characters."
    } else {
        return Ok(name.to_string());
    };
    Err(errors::bad_request(format!(
        "An invalid 'name' value was provided. {reason}"
    )))
}

/// `POST /v3/qos-specs`: `{"qos_specs": {"name", "consumer"?, <key>: <value>...}}`.
async fn create(
    State(v): AppState,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    CREATE.validate(&body)?;
    authorize(&auth, "volume_extension:qos_specs_manage:create")?;
    let mut pairs = body["qos_specs"].as_object().cloned().unwrap_or_default();
    let name = qos_name(
        pairs
            .remove("name")
            .and_then(|n| n.as_str().map(str::to_string))
            .as_deref()
            .unwrap_or(""),
    )?;
    let (consumer, specs) = split_specs(&pairs)?;
    let consumer = consumer.unwrap_or_else(|| "back-end".into());
    check_consumer(&consumer)?;
    let qos = QosSpecs {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        consumer,
        specs,
        created_at: ferrostack_store::now_rfc3339(),
    };
    write_tx!(v.db, |tx| {
        async {
            let taken: Vec<QosSpecs> = tx.select("name = $1", &[&qos.name]).await?;
            if !taken.is_empty() {
                return Err(
                    errors::conflict(format!("QoS Specs {} already exists.", qos.name)).into(),
                );
            }
            tx.insert(&qos).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(detail(&v, &qos))
}

/// `PUT /v3/qos-specs/{id}`: sets keys (and `consumer`); answers the body.
async fn update(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    SET.validate(&body)?;
    authorize(&auth, "volume_extension:qos_specs_manage:update")?;
    let pairs = body["qos_specs"].as_object().cloned().unwrap_or_default();
    find(&v, &id).await?;
    let (consumer, specs) = split_specs(&pairs)?;
    if let Some(consumer) = &consumer {
        check_consumer(consumer)?;
    }
    write_tx!(v.db, |tx| {
        async {
            let mut row = locked(tx, &id).await?;
            if let Some(consumer) = &consumer {
                row.consumer = consumer.clone();
            }
            row.specs.extend(specs.clone());
            tx.save(&row).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(ok("qos_specs", Value::Object(pairs)))
}

/// The QoS specs row locked in `tx`; 404 when gone.
async fn locked(tx: &mut Tx, id: &str) -> crate::db::Result<QosSpecs> {
    let row: Option<QosSpecs> = tx.lock(id).await?;
    Ok(row.ok_or_else(|| errors::qos_specs_not_found(id))?)
}

/// Clears the association of every type with `id`.
async fn clear_associations(tx: &mut Tx, id: &str) -> crate::db::Result<()> {
    let types: Vec<VolumeType> = tx.select("qos_specs_id = $1", &[id]).await?;
    for mut t in types {
        t.qos_specs_id = None;
        t.updated_at = Some(ferrostack_store::now_rfc3339());
        tx.save(&t).await?;
    }
    Ok(())
}

/// `DELETE /v3/qos-specs/{id}[?force=true]`: refused while associated unless forced (then
/// disassociated first).
async fn delete(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:qos_specs_manage:delete")?;
    let force = query_value(raw.as_deref(), "force");
    let force = bool_param("force", force.as_deref())?;
    find(&v, &id).await?;
    write_tx!(v.db, |tx| {
        async {
            locked(tx, &id).await?;
            let used = tx
                .count(
                    "SELECT COUNT(*) FROM vol_types WHERE qos_specs_id = $1",
                    &[&id],
                )
                .await?;
            if used > 0 && !force {
                return Err(errors::bad_request("Qos specs still in use.").into());
            }
            clear_associations(tx, &id).await?;
            tx.delete::<QosSpecs>(&id).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /v3/qos-specs/{id}/delete_keys`: removes keys in order, stopping (404) at the first
/// one that is not set — the keys before it stay removed, as upstream.
async fn delete_keys(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    UNSET.validate(&body)?;
    authorize(&auth, "volume_extension:qos_specs_manage:delete")?;
    let keys: Vec<String> = serde_json::from_value(body["keys"].clone()).unwrap_or_default();
    let missing = write_tx!(v.db, |tx| {
        async {
            let mut row = locked(tx, &id).await?;
            let mut missing = None;
            for key in &keys {
                if row.specs.remove(key).is_none() {
                    missing = Some(key.clone());
                    break;
                }
            }
            tx.save(&row).await?;
            Ok::<Option<String>, crate::db::Error>(missing)
        }
        .await
    })?;
    match missing {
        Some(key) => Err(ApiError::not_found(format!(
            "QoS spec {id} has no spec with key {key}."
        ))),
        None => Ok(StatusCode::ACCEPTED.into_response()),
    }
}

// ---------------------------------------------------------------------------------------
// Associations.
// ---------------------------------------------------------------------------------------

/// `GET /v3/qos-specs/{id}/associations`.
async fn associations(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:qos_specs_manage:get_all")?;
    find(&v, &id).await?;
    let items: Vec<Value> = associated(&v, &id)
        .await?
        .iter()
        .map(|t| json!({"association_type": "volume_type", "name": t.name, "id": t.id}))
        .collect();
    Ok(ok("qos_associations", Value::Array(items)))
}

/// The `vol_type_id` query parameter (400 when missing).
fn type_param(raw: Option<&str>) -> Result<String, ApiError> {
    query_value(raw, "vol_type_id")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| errors::bad_request("Volume Type id must not be None."))
}

/// `GET /v3/qos-specs/{id}/associate?vol_type_id=` associates the type with the specs (a type
/// already associated with other specs is refused, 400); `.../disassociate?vol_type_id=`
/// disassociates it when associated with them.
async fn set_association(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    uri: Uri,
) -> Result<Response, ApiError> {
    let associate = uri.path().ends_with("/associate");
    authorize(&auth, "volume_extension:qos_specs_manage:update")?;
    let type_id = type_param(raw.as_deref())?;
    find(&v, &id).await?;
    write_tx!(v.db, |tx| {
        async {
            locked(tx, &id).await?;
            let mut t = lock_type(tx, &type_id).await?;
            let change = match &t.qos_specs_id {
                Some(other) if *other != id && associate => {
                    return Err(errors::bad_request(format!(
                        "Invalid volume type: Type {type_id} is already associated with \
                         another qos specs: {other}"
                    ))
                    .into());
                }
                Some(_) => !associate && t.qos_specs_id.as_deref() == Some(id.as_str()),
                None => associate,
            };
            if change {
                t.qos_specs_id = associate.then(|| id.clone());
                t.updated_at = Some(ferrostack_store::now_rfc3339());
                tx.save(&t).await?;
            }
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v3/qos-specs/{id}/disassociate_all`.
async fn disassociate_all(
    State(v): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:qos_specs_manage:update")?;
    find(&v, &id).await?;
    write_tx!(v.db, |tx| {
        async {
            locked(tx, &id).await?;
            clear_associations(tx, &id).await?;
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}
