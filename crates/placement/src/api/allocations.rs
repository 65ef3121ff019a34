//! Allocations, consumers and usages (spec §6): `/allocations[/{consumer}]`,
//! `/resource_providers/{uuid}/allocations`, `/resource_providers/{uuid}/usages`, `/usages`.

use super::query::Query;
use super::{
    CONCURRENT, Ctx, Mv, R, State, UNDEFINED, bad, begin, body, commit, conflict, conn, dberr,
    empty, enforce, enforce_on, normalize_uuid, not_found, reply,
};
use crate::Placement;
use crate::db;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use ferrostack_api::Auth;
use ferrostack_store::{StoreError, now_rfc3339};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Project and user of consumers written below 1.8.
pub(crate) const INCOMPLETE_ID: &str = "00000000-0000-0000-0000-000000000000";
const UUID36: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// One consumer's requested allocations.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerWrite {
    pub consumer: String,
    /// (provider, class) → amount, in request order.
    pub allocs: Vec<(String, String, i64)>,
    pub project_id: String,
    pub user_id: String,
    /// Set at ≥1.38.
    pub consumer_type: Option<String>,
    /// The expected consumer generation at ≥1.28 (`Some(None)` = a new consumer).
    pub generation: Option<Option<i64>>,
}

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

async fn used(tx: &mut sqlx::AnyConnection, provider: &str, rc: &str) -> Result<i64, StoreError> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(used) AS BIGINT) FROM placement_allocations WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(provider)
    .bind(rc)
    .fetch_one(tx)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Writes the allocations of one or more consumers in one transaction (spec §6.2, §10.2):
/// the providers involved are locked (generation +1) in sorted order first, so concurrent
/// claims on a provider are serialised and each sees the other's usage.
pub(crate) async fn write_allocations(p: &Placement, writes: &[ConsumerWrite]) -> R<()> {
    let mut tx = begin(p).await?;
    let requested: BTreeSet<&str> = writes
        .iter()
        .flat_map(|w| w.allocs.iter().map(|(rp, _, _)| rp.as_str()))
        .collect();
    let mut lock: BTreeSet<String> = requested.iter().map(|s| s.to_string()).collect();
    for w in writes.iter().filter(|w| w.allocs.is_empty()) {
        let had: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT provider_uuid FROM placement_allocations WHERE consumer_uuid = $1",
        )
        .bind(&w.consumer)
        .fetch_all(&mut *tx)
        .await
        .map_err(dberr)?;
        lock.extend(had);
    }
    for rp in &lock {
        let bumped = db::bump_generation(&mut tx, rp, None)
            .await
            .map_err(dberr)?;
        if bumped.is_none() && requested.contains(rp.as_str()) {
            return Err(bad(format!(
                "Allocation for resource provider '{rp}' that does not exist."
            )));
        }
    }
    for w in writes {
        for (_, rc, _) in &w.allocs {
            if !db::class_exists(&mut tx, rc).await.map_err(dberr)? {
                return Err(bad(format!(
                    "Unable to allocate inventory for consumer {}: No such resource class {rc}.",
                    w.consumer
                )));
            }
        }
    }
    let mut existing = HashMap::new();
    for w in writes {
        let current = db::consumer(&mut tx, &w.consumer).await.map_err(dberr)?;
        if let Some(expected) = w.generation {
            let show = |g: Option<i64>| g.map(|g| g.to_string()).unwrap_or_else(|| "None".into());
            match (&current, expected) {
                (Some(c), Some(g)) if c.generation == g => {}
                (Some(c), got) => {
                    return Err(conflict(
                        format!(
                            "consumer generation conflict - expected {} but got {}",
                            c.generation,
                            show(got)
                        ),
                        CONCURRENT,
                    ));
                }
                (None, Some(got)) => {
                    return Err(conflict(
                        format!("consumer generation conflict - expected null but got {got}"),
                        CONCURRENT,
                    ));
                }
                (None, None) => {}
            }
        }
        existing.insert(w.consumer.clone(), current);
    }
    // Usage before this request, then without the consumers' old allocations.
    let mut pairs: BTreeMap<(String, String), i64> = BTreeMap::new();
    for w in writes {
        for (rp, rc, n) in &w.allocs {
            *pairs.entry((rp.clone(), rc.clone())).or_default() += n;
        }
    }
    let mut before = HashMap::new();
    for (rp, rc) in pairs.keys() {
        before.insert(
            (rp.clone(), rc.clone()),
            used(&mut tx, rp, rc).await.map_err(dberr)?,
        );
    }
    for w in writes {
        sqlx::query("DELETE FROM placement_allocations WHERE consumer_uuid = $1")
            .bind(&w.consumer)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
    }
    let mut inventories: HashMap<String, BTreeMap<String, db::Inventory>> = HashMap::new();
    for rp in &requested {
        inventories.insert(
            rp.to_string(),
            db::inventories(&mut tx, rp).await.map_err(dberr)?,
        );
    }
    for w in writes {
        for (rp, rc, n) in &w.allocs {
            let Some(inv) = inventories.get(rp).and_then(|m| m.get(rc)) else {
                return Err(conflict(
                    format!(
                        "Unable to allocate inventory: Inventory for '{rc}' on resource provider '{rp}' invalid."
                    ),
                    UNDEFINED,
                ));
            };
            if *n < inv.min_unit || *n > inv.max_unit || n % inv.step_size.max(1) != 0 {
                return Err(conflict(
                    format!(
                        "Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider '{rp}'. The requested amount would violate inventory constraints."
                    ),
                    UNDEFINED,
                ));
            }
            let key = (rp.clone(), rc.clone());
            let others = used(&mut tx, rp, rc).await.map_err(dberr)?;
            let new_total = others + pairs[&key];
            if new_total as f64 > inv.capacity_real() && new_total > before[&key] {
                return Err(conflict(
                    format!(
                        "Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider '{rp}'. The requested amount would exceed the capacity."
                    ),
                    UNDEFINED,
                ));
            }
        }
    }
    let now = now_rfc3339();
    for w in writes {
        let current = existing.get(&w.consumer).cloned().flatten();
        if w.allocs.is_empty() {
            sqlx::query("DELETE FROM placement_consumers WHERE uuid = $1")
                .bind(&w.consumer)
                .execute(&mut *tx)
                .await
                .map_err(dberr)?;
            continue;
        }
        match current {
            Some(c) => {
                let done = sqlx::query(
                    "UPDATE placement_consumers SET project_id = $1, user_id = $2, consumer_type = $3, \
                     generation = generation + 1, updated_at = $4 WHERE uuid = $5 AND generation = $6",
                )
                .bind(&w.project_id)
                .bind(&w.user_id)
                .bind(w.consumer_type.clone().or(c.consumer_type))
                .bind(&now)
                .bind(&w.consumer)
                .bind(c.generation)
                .execute(&mut *tx)
                .await
                .map_err(dberr)?;
                if done.rows_affected() == 0 {
                    return Err(conflict(
                        format!(
                            "consumer generation conflict - expected {} but the consumer changed concurrently",
                            c.generation
                        ),
                        CONCURRENT,
                    ));
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO placement_consumers (uuid, project_id, user_id, consumer_type, generation, created_at) \
                     VALUES ($1, $2, $3, $4, 1, $5)",
                )
                .bind(&w.consumer)
                .bind(&w.project_id)
                .bind(&w.user_id)
                .bind(&w.consumer_type)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from_write(e) {
                    StoreError::Conflict(_) => conflict(
                        "consumer generation conflict - expected null but the consumer was created concurrently",
                        CONCURRENT,
                    ),
                    other => dberr(other),
                })?;
            }
        }
        for (rp, rc, n) in &w.allocs {
            sqlx::query(
                "INSERT INTO placement_allocations (consumer_uuid, provider_uuid, resource_class, used, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&w.consumer)
            .bind(rp)
            .bind(rc)
            .bind(n)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
        }
    }
    commit(p, tx).await
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
    write_allocations(&p, &[write]).await?;
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
    write_allocations(&p, &writes).await?;
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
    let done = sqlx::query("DELETE FROM placement_allocations WHERE consumer_uuid = $1")
        .bind(&uuid)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
    if done.rows_affected() == 0 {
        return Err(none());
    }
    sqlx::query("DELETE FROM placement_consumers WHERE uuid = $1")
        .bind(&uuid)
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
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
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT a.consumer_uuid, a.resource_class, a.used, c.generation FROM placement_allocations a \
         JOIN placement_consumers c ON c.uuid = a.consumer_uuid WHERE a.provider_uuid = $1",
    )
    .bind(&uuid)
    .fetch_all(&mut *c)
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
    let mut usages: BTreeMap<String, i64> = db::inventories(&mut c, &uuid)
        .await
        .map_err(dberr)?
        .keys()
        .map(|rc| (rc.clone(), 0))
        .collect();
    usages.extend(db::usages(&mut c, &uuid).await.map_err(dberr)?);
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
