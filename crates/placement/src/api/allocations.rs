//! Allocations, consumers and usages (spec §6): `/allocations[/{consumer}]`,
//! `/resource_providers/{uuid}/allocations`, `/resource_providers/{uuid}/usages`, `/usages`.

use super::query::Query;
use super::{
    CONCURRENT, Ctx, Mv, R, State, UNDEFINED, bad, begin, body, commit, conflict, conn, dberr,
    empty, enforce, enforce_on, normalize_uuid, not_found, reply,
};
use crate::db::{self, ConsumerWrite, WriteError, write_allocations};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Project and user of consumers written below 1.8.
pub(crate) const INCOMPLETE_ID: &str = "00000000-0000-0000-0000-000000000000";
const UUID36: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn resources_schema() -> Value {
    json!({"type": "object", "minProperties": 1,
        "patternProperties": {"^[A-Z0-9_]+$": {"type": "integer", "minimum": 1}},
        "additionalProperties": false})
}

fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

/// The schema of one consumer's body in the dict form (≥1.12); `post` allows `{}`.
fn dict_schema(v: &Mv, post: bool) -> Value {
    let mut props = Map::new();
    props.insert(
        "allocations".into(),
        json!({"type": "object",
            "minProperties": if post || v.at(28) { 0 } else { 1 },
            "patternProperties": {UUID36: {"type": "object", "properties": {
                "resources": resources_schema(),
                "generation": {"type": ["integer", "null"]}},
                "required": ["resources"], "additionalProperties": false}},
            "additionalProperties": false}),
    );
    props.insert("project_id".into(), id_schema());
    props.insert("user_id".into(), id_schema());
    let mut required = vec!["allocations", "project_id", "user_id"];
    if v.at(28) {
        props.insert(
            "consumer_generation".into(),
            json!({"type": ["integer", "null"]}),
        );
        required.push("consumer_generation");
    }
    if v.at(34) {
        props.insert(
            "mappings".into(),
            json!({"type": "object", "additionalProperties":
                {"type": "array", "items": {"type": "string", "pattern": UUID36}}}),
        );
    }
    if v.at(38) {
        props.insert(
            "consumer_type".into(),
            json!({"type": "string", "pattern": "^[A-Z0-9_]+$", "minLength": 1, "maxLength": 255}),
        );
        required.push("consumer_type");
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// The list form (1.0–1.11).
fn list_schema(v: &Mv) -> Value {
    let mut props = Map::new();
    props.insert(
        "allocations".into(),
        json!({"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "resource_provider": {"type": "object", "properties": {
                "uuid": {"type": "string", "pattern": UUID36}},
                "required": ["uuid"], "additionalProperties": false},
            "resources": resources_schema()},
            "required": ["resource_provider", "resources"], "additionalProperties": false}}),
    );
    let mut required = vec!["allocations"];
    if v.at(8) {
        props.insert("project_id".into(), id_schema());
        props.insert("user_id".into(), id_schema());
        required.extend(["project_id", "user_id"]);
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

fn lower(u: &str) -> String {
    normalize_uuid(u).unwrap_or_else(|| u.to_ascii_lowercase())
}

/// Builds a [`ConsumerWrite`] from a validated body.
fn consumer_write(consumer: String, data: &Value, v: &Mv) -> ConsumerWrite {
    let mut allocs: Vec<(String, String, i64)> = Vec::new();
    let mut push = |rp: &str, resources: &Value| {
        for (rc, n) in resources.as_object().into_iter().flatten() {
            let rp = lower(rp);
            let n = n.as_i64().unwrap_or(0);
            match allocs.iter_mut().find(|(p, c, _)| *p == rp && c == rc) {
                Some(existing) => existing.2 = n,
                None => allocs.push((rp, rc.clone(), n)),
            }
        }
    };
    match &data["allocations"] {
        Value::Array(items) => {
            for item in items {
                push(
                    item["resource_provider"]["uuid"]
                        .as_str()
                        .unwrap_or_default(),
                    &item["resources"],
                );
            }
        }
        Value::Object(map) => {
            for (rp, entry) in map {
                push(rp, &entry["resources"]);
            }
        }
        _ => {}
    }
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(String::from);
    ConsumerWrite {
        consumer,
        allocs,
        project_id: text("project_id").unwrap_or_else(|| INCOMPLETE_ID.into()),
        user_id: text("user_id").unwrap_or_else(|| INCOMPLETE_ID.into()),
        consumer_type: v.at(38).then(|| text("consumer_type")).flatten(),
        generation: v
            .at(28)
            .then(|| data.get("consumer_generation").and_then(Value::as_i64)),
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        match e {
            WriteError::Store(e) => dberr(e),
            WriteError::NoProvider(rp) => bad(format!(
                "Allocation for resource provider '{rp}' that does not exist."
            )),
            WriteError::NoClass(consumer, rc) => bad(format!(
                "Unable to allocate inventory for consumer {consumer}: No such resource class {rc}."
            )),
            WriteError::ConsumerGeneration(message) => conflict(message, CONCURRENT),
            WriteError::NoInventory(rp, rc) => conflict(
                format!(
                    "Unable to allocate inventory: Inventory for '{rc}' on resource provider '{rp}' invalid."
                ),
                UNDEFINED,
            ),
            WriteError::Constraints(rp, rc) => conflict(
                format!(
                    "Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider '{rp}'. The requested amount would violate inventory constraints."
                ),
                UNDEFINED,
            ),
            WriteError::Capacity(rp, rc) => conflict(
                format!(
                    "Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider '{rp}'. The requested amount would exceed the capacity."
                ),
                UNDEFINED,
            ),
        }
    }
}

/// `PUT /allocations/{consumer}` → 204
pub(crate) async fn update(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(consumer): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    enforce(&auth, "placement:allocations:update")?;
    let consumer = normalize_uuid(&consumer)
        .ok_or_else(|| bad(format!("Malformed consumer_uuid: {consumer}")))?;
    let schema = match v.at(12) {
        true => dict_schema(&v, false),
        false => list_schema(&v),
    };
    let data = body(&headers, &bytes, &schema)?;
    let write = consumer_write(consumer, &data, &v);
    write_allocations(&p.store, &[write]).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /allocations` (≥1.13) → 204
pub(crate) async fn post_allocations(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    v.need(13)?;
    enforce(&auth, "placement:allocations:manage")?;
    let schema = json!({"type": "object", "minProperties": 1,
        "patternProperties": {UUID36: dict_schema(&v, true)},
        "additionalProperties": false});
    let data = body(&headers, &bytes, &schema)?;
    let writes: Vec<ConsumerWrite> = data
        .as_object()
        .into_iter()
        .flatten()
        .map(|(c, body)| consumer_write(lower(c), body, &v))
        .collect();
    write_allocations(&p.store, &writes).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /allocations/{consumer}` (an unknown consumer is `{"allocations": {}}`).
pub(crate) async fn show(State(p): Ctx, auth: Auth, v: Mv, Path(consumer): Path<String>) -> R {
    enforce(&auth, "placement:allocations:list")?;
    let Some(consumer) = normalize_uuid(&consumer) else {
        return Ok(reply(StatusCode::OK, json!({"allocations": {}})));
    };
    let mut c = conn(&p).await?;
    let allocs = db::consumer_allocations(&mut c, &consumer)
        .await
        .map_err(dberr)?;
    if allocs.is_empty() {
        return Ok(reply(StatusCode::OK, json!({"allocations": {}})));
    }
    let mut out = Map::new();
    for (rp, resources) in &allocs {
        let generation = db::provider(&mut c, rp)
            .await
            .map_err(dberr)?
            .map(|r| r.generation);
        out.insert(
            rp.clone(),
            json!({"generation": generation, "resources": resources}),
        );
    }
    let mut body = json!({"allocations": out});
    if let Some(row) = db::consumer(&mut c, &consumer).await.map_err(dberr)? {
        if v.at(12) {
            body["project_id"] = json!(row.project_id);
            body["user_id"] = json!(row.user_id);
        }
        if v.at(28) {
            body["consumer_generation"] = json!(row.generation);
        }
        if v.at(38) {
            body["consumer_type"] = json!(row.consumer_type.as_deref().unwrap_or("unknown"));
        }
    }
    Ok(reply(StatusCode::OK, body))
}

/// `DELETE /allocations/{consumer}` (no generation check, no provider generation bump).
pub(crate) async fn delete(State(p): Ctx, auth: Auth, Path(consumer): Path<String>) -> R {
    enforce(&auth, "placement:allocations:delete")?;
    let none = || not_found(format!("No allocations for consumer '{consumer}'"));
    let Some(uuid) = normalize_uuid(&consumer) else {
        return Err(none());
    };
    let mut tx = begin(&p).await?;
    if db::delete_consumer(&mut tx, &uuid).await.map_err(dberr)? == 0 {
        return Err(none());
    }
    commit(&p, tx).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /resource_providers/{uuid}/allocations`
pub(crate) async fn provider_allocations(
    State(p): Ctx,
    auth: Auth,
    v: Mv,
    Path(uuid): Path<String>,
) -> R {
    enforce(&auth, "placement:resource_providers:allocations:list")?;
    let mut c = conn(&p).await?;
    let rp = db::provider(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| {
            not_found(format!(
                "Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"
            ))
        })?;
    let rows = db::provider_allocations(&mut c, &uuid)
        .await
        .map_err(dberr)?;
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for (consumer, rc, used, generation) in rows {
        let entry = out
            .entry(consumer)
            .or_insert_with(|| json!({"resources": {}}));
        entry["resources"][rc] = json!(used);
        if v.at(28) {
            entry["consumer_generation"] = json!(generation);
        }
    }
    Ok(reply(
        StatusCode::OK,
        json!({"allocations": out, "resource_provider_generation": rp.generation}),
    ))
}

/// `GET /resource_providers/{uuid}/usages`: every inventory class, 0 when unused.
pub(crate) async fn provider_usages(State(p): Ctx, auth: Auth, Path(uuid): Path<String>) -> R {
    enforce(&auth, "placement:resource_providers:usages")?;
    let mut c = conn(&p).await?;
    let rp = db::provider(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .ok_or_else(|| not_found(format!("No resource provider with uuid {uuid} found")))?;
    let usages = db::usages_with_zeros(&mut c, &uuid).await.map_err(dberr)?;
    Ok(reply(
        StatusCode::OK,
        json!({"resource_provider_generation": rp.generation, "usages": usages}),
    ))
}

/// `GET /usages?project_id=&user_id=[&consumer_type=]` (≥1.9).
pub(crate) async fn usages(State(p): Ctx, auth: Auth, v: Mv, RawQuery(raw): RawQuery) -> R {
    v.need(9)?;
    let q = Query::parse(raw.as_deref());
    enforce_on(
        &auth,
        "placement:usages",
        &json!({"project_id": q.last("project_id"), "user_id": auth.user.id}),
    )?;
    q.only(|k| matches!(k, "project_id" | "user_id") || (k == "consumer_type" && v.at(38)))?;
    let Some(project) = q.last("project_id") else {
        return Err(bad(
            "Invalid query string parameters: 'project_id' is a required property",
        ));
    };
    let user = q.last("user_id");
    let mut c = conn(&p).await?;
    let rows: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT c.uuid, c.consumer_type, a.resource_class, a.used FROM placement_allocations a \
         JOIN placement_consumers c ON c.uuid = a.consumer_uuid \
         WHERE c.project_id = $1 AND ($2 = '' OR c.user_id = $2)",
    )
    .bind(project)
    .bind(user.unwrap_or(""))
    .fetch_all(&mut *c)
    .await
    .map_err(dberr)?;
    if !v.at(38) {
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        for (_, _, rc, used) in rows {
            *out.entry(rc).or_default() += used;
        }
        return Ok(reply(StatusCode::OK, json!({"usages": out})));
    }
    let filter = q.last("consumer_type");
    let mut groups: BTreeMap<String, (BTreeMap<String, i64>, BTreeSet<String>)> = BTreeMap::new();
    for (consumer, ctype, rc, used) in rows {
        let ctype = ctype.unwrap_or_else(|| "unknown".into());
        let group = match filter {
            Some("all") => "all".to_string(),
            Some(f) if f != ctype => continue,
            _ => ctype,
        };
        let entry = groups.entry(group).or_default();
        *entry.0.entry(rc).or_default() += used;
        entry.1.insert(consumer);
    }
    let out: Map<String, Value> = groups
        .into_iter()
        .map(|(g, (resources, consumers))| {
            let mut body = json!(resources);
            body["consumer_count"] = json!(consumers.len());
            (g, body)
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"usages": out})))
}
