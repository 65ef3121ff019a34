//! Quotas and limits (`cinder/api/contrib/quotas.py`, `quota_classes.py`,
//! `cinder/api/v3/limits.py`, `contrib/used_limits.py`): a project's limits (the `vol_quotas`
//! rows over the configured defaults), its usage counted from the rows
//! ([`crate::quota::usage`]), and the absolute limits of `/v3/limits`.
//!
//! Resources: `volumes`, `snapshots`, `gigabytes`, `per_volume_gigabytes`, `backups`,
//! `backup_gigabytes`, `groups`, and for every volume type `volumes_<name>`,
//! `snapshots_<name>`, `gigabytes_<name>` (unlimited unless set). Backups and groups do not
//! exist here, so their usage is 0.
//!
//! Quota classes (`GET`/`PUT /v3/os-quota-class-sets/{name}`): a class's limits over the
//! defaults; the `default` class's are every project's defaults ([`crate::quota::defaults`]),
//! which the quota checks read.

use super::snapshots::bool_param;
use super::{
    AppState, Mv, at_least, authorize, caller_project, caller_target, is_admin, ok, project_target,
    query_value,
};
use crate::db::write_tx;
use crate::errors;
use crate::model::VolumeType;
use crate::quota;
use crate::service::Volumes;
use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use ferrostack_api::{ApiError, Auth, JsonBody, Public};
use serde_json::{Map, Value, json};
use sqlx::AnyConnection;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route(
            "/os-quota-sets/{project}",
            get(show).put(update).delete(delete),
        )
        .route("/os-quota-sets/{project}/defaults", get(defaults))
        .route(
            "/os-quota-class-sets/{name}",
            get(class_show).put(class_update),
        )
        .route("/limits", get(limits))
}

/// Keys a quota set body may carry besides resources (`NON_QUOTA_KEYS`).
const NON_QUOTA_KEYS: &[&str] = &["tenant_id", "id"];

/// The largest limit (`DB_MAX_INT`).
const DB_MAX_INT: i64 = 0x7FFF_FFFF;

/// Every resource: the base ones, then the per-type ones of every volume type.
async fn resources(conn: &mut AnyConnection, v: &Volumes) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = v
        .settings
        .quota_defaults
        .keys()
        .map(|k| k.to_string())
        .collect();
    for t in all_types(conn).await? {
        for prefix in ["volumes", "snapshots", "gigabytes"] {
            names.push(format!("{prefix}_{}", t.name));
        }
    }
    Ok(names)
}

async fn all_types(conn: &mut AnyConnection) -> Result<Vec<VolumeType>, ApiError> {
    Ok(ferrostack_store::doc::select(conn, "1 = 1", &[])
        .await
        .map_err(crate::db::Error::Db)?)
}

/// The defaults of every resource (the per-type ones unlimited unless the `default` quota
/// class sets them).
async fn default_limits(
    conn: &mut AnyConnection,
    v: &Volumes,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let defaults = quota::defaults(&mut *conn, &v.settings).await?;
    Ok(resources(conn, v)
        .await?
        .into_iter()
        .map(|r| {
            let limit = defaults.get(&r).copied().unwrap_or(-1);
            (r, limit)
        })
        .collect())
}

/// The limits of quota class `name`: its own over the defaults (`get_class_quotas`).
async fn class_limits(
    conn: &mut AnyConnection,
    v: &Volumes,
    name: &str,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut limits = default_limits(&mut *conn, v).await?;
    let own = quota::class_limits(&mut *conn, name).await?;
    for (resource, limit) in limits.iter_mut() {
        if let Some(set) = own.get(resource) {
            *limit = *set;
        }
    }
    Ok(limits)
}

/// The limits of every resource for `project`.
async fn project_limits(
    conn: &mut AnyConnection,
    v: &Volumes,
    project: &str,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let set = quota::limits(&mut *conn, &v.settings, project).await?;
    Ok(resources(conn, v)
        .await?
        .into_iter()
        .map(|r| {
            let limit = set.get(&r).copied().unwrap_or(-1);
            (r, limit)
        })
        .collect())
}

/// What `project` uses of every resource (0 for those nothing here consumes).
async fn project_usage(
    conn: &mut AnyConnection,
    project: &str,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut used = quota::usage(&mut *conn, project, None).await?;
    for t in all_types(conn).await? {
        let typed = quota::usage(&mut *conn, project, Some((&t.id, &t.name))).await?;
        used.extend(typed);
    }
    Ok(used)
}

/// `{"id": id, <resource>: <value>...}`.
fn quota_set(id: Option<&str>, values: BTreeMap<String, Value>) -> Value {
    let mut m: Map<String, Value> = values.into_iter().collect();
    if let Some(id) = id {
        m.insert("id".into(), json!(id));
    }
    Value::Object(m)
}

fn plain(limits: BTreeMap<String, i64>) -> BTreeMap<String, Value> {
    limits.into_iter().map(|(k, v)| (k, json!(v))).collect()
}

/// `GET /v3/os-quota-sets/{project}[?usage=true]`.
async fn show(
    State(v): AppState,
    auth: Auth,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    auth.enforce("volume_extension:quotas:show", &project_target(&project))?;
    let usage = bool_param("usage", query_value(raw.as_deref(), "usage").as_deref())?;
    let mut conn = v.db.conn().await?;
    let limits = project_limits(&mut conn, &v, &project).await?;
    let values = match usage {
        false => plain(limits),
        true => {
            let used = project_usage(&mut conn, &project).await?;
            limits
                .into_iter()
                .map(|(k, limit)| {
                    let in_use = used.get(&k).copied().unwrap_or(0);
                    (k, json!({"limit": limit, "in_use": in_use, "reserved": 0}))
                })
                .collect()
        }
    };
    Ok(ok("quota_set", quota_set(Some(&project), values)))
}

/// `GET /v3/os-quota-sets/{project}/defaults`.
async fn defaults(
    State(v): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    auth.enforce("volume_extension:quotas:show", &project_target(&project))?;
    let limits = default_limits(&mut *v.db.conn().await?, &v).await?;
    Ok(ok("quota_set", quota_set(Some(&project), plain(limits))))
}

/// `validate_integer(value, key, -1, DB_MAX_INT)` (`int(str(value))`).
fn quota_value(key: &str, value: &Value) -> Result<i64, ApiError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| errors::bad_request(format!("{key} must be an integer")))?;
    if n < -1 {
        return Err(errors::bad_request(format!("{key} must be >= -1")));
    }
    if n > DB_MAX_INT {
        return Err(errors::bad_request(format!(
            "{key} must be <= {DB_MAX_INT}"
        )));
    }
    Ok(n)
}

/// The resources and limits of a quota set body (400 for unknown keys and bad values).
fn parse_quota_set(body: &Value, known: &[String]) -> Result<Vec<(String, i64)>, ApiError> {
    let set = body
        .get("quota_set")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| errors::bad_request("Invalid input for field 'quota_set'."))?;
    if body.as_object().is_some_and(|b| b.len() > 1) {
        return Err(errors::bad_request(
            "Additional properties are not allowed in the request body.",
        ));
    }
    let mut bad = Vec::new();
    let mut changes = Vec::new();
    for (key, value) in set {
        if NON_QUOTA_KEYS.contains(&key.as_str()) {
            continue;
        }
        if !known.contains(key) {
            bad.push(key.as_str());
            continue;
        }
        changes.push((key.clone(), quota_value(key, value)?));
    }
    if !bad.is_empty() {
        return Err(errors::invalid_input(format!(
            "Bad key(s) in quota set: {}",
            bad.join(", ")
        )));
    }
    Ok(changes)
}

/// `PUT /v3/os-quota-sets/{project}` (admins): `{"quota_set": {"volumes": 20, ...}}`.
///
/// As upstream, a new limit below the current usage is refused only for a resource the
/// project already has a limit of its own for (`get_project_quotas(defaults=False)`), and
/// never for `per_volume_gigabytes` or `-1`.
async fn update(
    State(v): AppState,
    auth: Auth,
    Path(project): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    auth.enforce("volume_extension:quotas:update", &project_target(&project))?;
    if project.is_empty() || project.chars().count() > 255 {
        return Err(errors::invalid_input(
            "quota_set_name has more than 255 characters.",
        ));
    }
    let known = resources(&mut *v.db.conn().await?, &v).await?;
    let changes = parse_quota_set(&body, &known)?;
    write_tx!(v.db, |tx| {
        async {
            tx.lock_name(&format!("quota:{project}")).await?;
            let own = tx
                .strings(
                    "SELECT resource FROM vol_quotas WHERE project_id = $1",
                    &[&project],
                )
                .await?;
            let used = project_usage(tx.conn(), &project).await?;
            for (key, limit) in &changes {
                let in_use = used.get(key).copied().unwrap_or(0);
                let checked = own.contains(key) && key != "per_volume_gigabytes" && *limit != -1;
                if checked && *limit < in_use {
                    return Err(errors::bad_request(format!(
                        "Quota {key} limit must be equal or greater than existing resources. \
                         Current usage is {in_use} and the requested limit is {limit}."
                    ))
                    .into());
                }
            }
            for (key, limit) in &changes {
                tx.exec(
                    "INSERT INTO vol_quotas (project_id, resource, hard_limit) \
                     VALUES ($1, $2, CAST($3 AS BIGINT)) ON CONFLICT (project_id, resource) \
                     DO UPDATE SET hard_limit = excluded.hard_limit",
                    &[&project, key, &limit.to_string()],
                )
                .await?;
            }
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    let limits = project_limits(&mut *v.db.conn().await?, &v, &project).await?;
    Ok(ok("quota_set", quota_set(None, plain(limits))))
}

/// `DELETE /v3/os-quota-sets/{project}` (admins): back to the defaults (200, no body).
async fn delete(
    State(v): AppState,
    auth: Auth,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    auth.enforce("volume_extension:quotas:delete", &project_target(&project))?;
    write_tx!(v.db, |tx| {
        tx.exec("DELETE FROM vol_quotas WHERE project_id = $1", &[&project])
            .await
    })?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v3/os-quota-class-sets/{name}` (admins): the class's limits over the defaults.
async fn class_show(
    State(v): AppState,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:quota_classes:get")?;
    let limits = class_limits(&mut *v.db.conn().await?, &v, &name).await?;
    Ok(ok("quota_class_set", quota_set(Some(&name), plain(limits))))
}

/// The resources and limits of a quota class set body (`schemas/quota_classes.py`: an object
/// under `quota_class_set` whose keys are known resources).
fn parse_class_set(body: &Value, known: &[String]) -> Result<Vec<(String, i64)>, ApiError> {
    let object = body.as_object().ok_or_else(|| {
        errors::bad_request("Invalid input for the request body: it is not of type 'object'")
    })?;
    if let Some(extra) = object.keys().find(|k| *k != "quota_class_set") {
        return Err(errors::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let set = object
        .get("quota_class_set")
        .ok_or_else(|| errors::bad_request("'quota_class_set' is a required property"))?
        .as_object()
        .ok_or_else(|| {
            errors::bad_request(
                "Invalid input for field/attribute quota_class_set. Value: it is not of type                  'object'",
            )
        })?;
    let bad: Vec<&str> = set
        .keys()
        .filter(|k| !known.contains(k))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(errors::invalid_input(format!(
            "Bad key(s) in quota class set: {}",
            bad.join(", ")
        )));
    }
    set.iter()
        .map(|(key, value)| Ok((key.clone(), quota_value(key, value)?)))
        .collect()
}

/// `PUT /v3/os-quota-class-sets/{name}` (admins): sets the class's limits (the `default`
/// class's become every project's defaults); answers the class's limits.
async fn class_update(
    State(v): AppState,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    authorize(&auth, "volume_extension:quota_classes:update")?;
    if name.is_empty() || name.chars().count() > 255 {
        return Err(errors::invalid_input(
            "quota_class_name has a minimum character requirement of 1 and a maximum of 255.",
        ));
    }
    let known = resources(&mut *v.db.conn().await?, &v).await?;
    let changes = parse_class_set(&body, &known)?;
    write_tx!(v.db, |tx| {
        async {
            for (key, limit) in &changes {
                tx.exec(
                    "INSERT INTO vol_quota_classes (class_name, resource, hard_limit) \
                     VALUES ($1, $2, CAST($3 AS BIGINT)) ON CONFLICT (class_name, resource) \
                     DO UPDATE SET hard_limit = excluded.hard_limit",
                    &[&name, key, &limit.to_string()],
                )
                .await?;
            }
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    let limits = class_limits(&mut *v.db.conn().await?, &v, &name).await?;
    Ok(ok("quota_class_set", quota_set(None, plain(limits))))
}

/// `GET /v3/limits`: the caller's project (an admin may name another with `project_id` from
/// 3.39); usage when `limits_extension:used_limits` allows.
async fn limits(
    _: Public,
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let named = match at_least(&mv, 39) && is_admin(&auth) {
        true => query_value(raw.as_deref(), "project_id")
            .or_else(|| query_value(raw.as_deref(), "tenant_id")),
        false => None,
    };
    let project = named.unwrap_or_else(|| caller_project(&auth));
    let mut conn = v.db.conn().await?;
    let set = quota::limits(&mut conn, &v.settings, &project).await?;
    let limit = |k: &str| set.get(k).copied().unwrap_or(-1);
    let mut absolute = json!({
        "maxTotalVolumes": limit("volumes"),
        "maxTotalSnapshots": limit("snapshots"),
        "maxTotalVolumeGigabytes": limit("gigabytes"),
        "maxTotalBackups": limit("backups"),
        "maxTotalBackupGigabytes": limit("backup_gigabytes"),
    });
    if auth.allows("limits_extension:used_limits", &caller_target(&auth)) {
        let used = quota::usage(&mut conn, &project, None).await?;
        let in_use = |k: &str| used.get(k).copied().unwrap_or(0);
        absolute["totalVolumesUsed"] = json!(in_use("volumes"));
        absolute["totalGigabytesUsed"] = json!(in_use("gigabytes"));
        absolute["totalSnapshotsUsed"] = json!(in_use("snapshots"));
        absolute["totalBackupsUsed"] = json!(0);
        absolute["totalBackupGigabytesUsed"] = json!(0);
    }
    Ok(ok("limits", json!({"rate": [], "absolute": absolute})))
}
