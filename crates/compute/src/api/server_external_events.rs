//! Server external events (`server_external_events.py`): `POST /os-server-external-events`,
//! the API other services (Neutron's nova notifier, Cinder) call as the service user to tell
//! a server's host that something happened to it (a port was plugged, a volume extended...).
//!
//! Each event is answered on its own: `404` for an unknown (or deleted) server, `400` for a
//! `volume-extended` event without a tag, `422` for a server not yet on a host, `200` for an
//! accepted event. The accepted events are grouped by their server's host and cast to that
//! host's agent; a `network-changed` event also refreshes the server's network info here.
//! The answer is `200` when every event was accepted and `207` otherwise, even
//! when none was (Nova returns no 404 since the fix for bug 1855752).

use super::{AppState, Mv, at_least};
use crate::db::instances::{self as idb, Instance};
use crate::rpc::ExternalEvent;
use crate::service::db_error;
use axum::{Json, http::StatusCode};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

const RULE: &str = "os_compute_api:os-server-external-events:create";

/// Nova's event names (`nova.objects.external_event.EVENT_NAMES`) with the microversion
/// (minor of 2.x) from which the API accepts each.
const EVENT_NAMES: [(&str, u16); 8] = [
    ("network-changed", 0),
    ("network-vif-plugged", 0),
    ("network-vif-unplugged", 0),
    ("network-vif-deleted", 0),
    ("volume-extended", 51),
    ("power-update", 76),
    ("accelerator-request-bound", 82),
    ("volume-reimaged", 93),
];

/// `EVENT_STATUSES`.
const EVENT_STATUSES: [&str; 3] = ["failed", "completed", "in-progress"];

/// The microversions at which the schema changes (`create`, `create_v251`, `create_v276`,
/// `create_v282`, `create_v293`).
const SCHEMA_VERSIONS: [u16; 5] = [0, 51, 76, 82, 93];

/// The request schema of the microversions from 2.`from` (the names accepted from then on).
fn create_schema(from: u16) -> Schema {
    let names: Vec<&str> = EVENT_NAMES
        .iter()
        .filter(|(_, since)| *since <= from)
        .map(|(name, _)| *name)
        .collect();
    Schema::new(json!({
        "type": "object",
        "properties": {"events": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "enum": names},
                    "server_uuid": {"type": "string"},
                    "status": {"type": "string", "enum": EVENT_STATUSES},
                    "tag": {"type": "string", "maxLength": 255},
                },
                "required": ["name", "server_uuid"],
                "additionalProperties": false,
            },
        }},
        "required": ["events"],
        "additionalProperties": false,
    }))
}

static SCHEMAS: LazyLock<[Schema; 5]> = LazyLock::new(|| SCHEMA_VERSIONS.map(create_schema));

/// The schema of the request's microversion.
fn schema(mv: &Mv) -> &'static Schema {
    let tier = SCHEMA_VERSIONS
        .iter()
        .rposition(|minor| at_least(mv, 2, *minor))
        .unwrap_or(0);
    &SCHEMAS[tier]
}

/// Validates the body: the schema, then `server_uuid`'s `uuid` format (Nova's format
/// checker, `uuidutils.is_uuid_like`: hyphens, braces and a `urn:uuid:` prefix are allowed).
fn validate(body: &Value, mv: &Mv) -> Result<(), ApiError> {
    schema(mv).validate(body)?;
    for (i, event) in body["events"].as_array().into_iter().flatten().enumerate() {
        let uuid = event["server_uuid"].as_str().unwrap_or_default();
        if uuid::Uuid::parse_str(uuid).is_err() {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'events/{i}/server_uuid': {} is not a \"uuid\"",
                event["server_uuid"]
            )));
        }
    }
    Ok(())
}

/// What becomes of one event.
enum Outcome {
    /// Accepted for the server's host.
    Accepted(String),
    /// Dropped, with the event's `code`.
    Dropped(u16),
}

fn outcome(name: &str, tag: Option<&str>, instance: Option<&Instance>) -> Outcome {
    let Some(instance) = instance else {
        return Outcome::Dropped(404);
    };
    // A volume-extended event names its volume: without one the host could not act on it.
    if name == "volume-extended" && tag.is_none() {
        return Outcome::Dropped(400);
    }
    match &instance.host {
        Some(host) if !host.is_empty() => Outcome::Accepted(host.clone()),
        // Not on a host yet: there is nowhere to deliver the event.
        _ => Outcome::Dropped(422),
    }
}

/// `POST /os-server-external-events`
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    validate(&body, &mv)?;
    auth.enforce(RULE, &json!({}))?;
    let c = &state.0;
    let events = body["events"].as_array().cloned().unwrap_or_default();

    // Each server once, whatever the number of its events; deleted servers are unknown.
    let mut instances: HashMap<String, Option<Instance>> = HashMap::new();
    for event in &events {
        let uuid = event["server_uuid"].as_str().unwrap_or_default();
        if !instances.contains_key(uuid) {
            let instance = idb::instance(&c.store, uuid)
                .await
                .map_err(db_error)?
                .filter(|i| !i.deleted);
            instances.insert(uuid.to_string(), instance);
        }
    }

    let mut answered = Vec::with_capacity(events.len());
    let mut by_host: BTreeMap<String, Vec<ExternalEvent>> = BTreeMap::new();
    let mut all_accepted = true;
    let mut network_changed = BTreeSet::new();
    for mut event in events {
        let uuid = event["server_uuid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = event["name"].as_str().unwrap_or_default().to_string();
        let tag = event["tag"].as_str().map(String::from);
        let status = event["status"].as_str().unwrap_or("completed").to_string();
        let instance = instances.get(&uuid).and_then(Option::as_ref);
        let (code, shown_status) = match outcome(&name, tag.as_deref(), instance) {
            Outcome::Accepted(host) => {
                if name == "network-changed" {
                    network_changed.insert(uuid.clone());
                }
                tracing::info!(
                    event = %name,
                    tag = tag.as_deref().unwrap_or(""),
                    server = %uuid,
                    %host,
                    "creating external event"
                );
                by_host.entry(host).or_default().push(ExternalEvent {
                    server_uuid: uuid,
                    name,
                    tag,
                    status,
                });
                (200, "completed")
            }
            Outcome::Dropped(code) => {
                tracing::debug!(
                    event = %name,
                    tag = tag.as_deref().unwrap_or(""),
                    server = %uuid,
                    code,
                    "dropping external event"
                );
                all_accepted = false;
                (code, "failed")
            }
        };
        // The event as sent, with its outcome (the status says whether it was accepted).
        event["code"] = json!(code);
        event["status"] = json!(shown_status);
        answered.push(event);
    }

    for (host, events) in by_host {
        let count = events.len();
        if let Err(e) = crate::conductor::forward_external_events(c, &host, events).await {
            // The events are lost for that host; a build waiting for its ports also polls
            // them, so this delays it at worst. The caller's request still succeeded.
            tracing::warn!(%host, count, error = %e, "forwarding external events");
        }
    }

    // The info cache is refreshed here (Nova does it on the host): `addresses` then shows
    // the floating IPs Neutron just associated or took off.
    for uuid in network_changed {
        if let Err(e) = crate::ports::refresh(c, &uuid).await {
            tracing::warn!(server = %uuid, error = %format!("{e:#}"), "refreshing network info");
        }
    }

    let status = if all_accepted {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(json!({"events": answered}))))
}
