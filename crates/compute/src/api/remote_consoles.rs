//! Remote consoles (`remote_consoles.py`, `console_auth_tokens.py`): `POST
//! /servers/{id}/remote-consoles` (2.6+), the deprecated `os-get*Console` actions (2.1–2.5,
//! dispatched from the server actions) and `GET /os-console-auth-tokens/{token}` (admin,
//! 2.31+). VNC is the only console protocol served: SPICE, serial and MKS consoles are off,
//! as in a Nova whose `[spice]`, `[serial_console]` and `[mks]` are disabled, and RDP was
//! removed from Nova.

use super::servers::{load, not_found};
use super::{AppState, Mv, at_least};
use crate::consoles::{self, ConsoleError};
use axum::{Json, extract::Path};
use ferrostack_api::{ApiError, Auth, JsonBody, Schema};
use serde_json::{Value, json};
use std::sync::LazyLock;

const RULE: &str = "os_compute_api:os-remote-consoles";

/// `remote_console` of 2.6–2.7 (`create_v26`); 2.8 adds `mks`/`webmks` (`create_v28`).
fn create_schema(mks: bool) -> Schema {
    let mut protocols = vec!["vnc", "spice", "serial", "rdp"];
    let mut types = vec!["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"];
    if mks {
        protocols.push("mks");
        types.push("webmks");
    }
    Schema::new(json!({
        "type": "object",
        "properties": {"remote_console": {
            "type": "object",
            "properties": {
                "protocol": {"type": "string", "enum": protocols},
                "type": {"type": "string", "enum": types},
            },
            "required": ["protocol", "type"],
            "additionalProperties": false,
        }},
        "required": ["remote_console"],
        "additionalProperties": false,
    }))
}

static CREATE_V26: LazyLock<Schema> = LazyLock::new(|| create_schema(false));
static CREATE_V28: LazyLock<Schema> = LazyLock::new(|| create_schema(true));

/// The body of an `os-get*Console` action: `{action: {"type": <one of types>}}`.
fn action_schema(action: &str, types: &[&str]) -> Schema {
    Schema::new(json!({
        "type": "object",
        "properties": {action: {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": types}},
            "required": ["type"],
            "additionalProperties": false,
        }},
        "required": [action],
        "additionalProperties": false,
    }))
}

static VNC_ACTION: LazyLock<Schema> =
    LazyLock::new(|| action_schema("os-getVNCConsole", &consoles::VNC_TYPES));
static SPICE_ACTION: LazyLock<Schema> =
    LazyLock::new(|| action_schema("os-getSPICEConsole", &["spice-html5"]));
static SERIAL_ACTION: LazyLock<Schema> =
    LazyLock::new(|| action_schema("os-getSerialConsole", &["serial"]));

/// Nova's answer for each [`ConsoleError`]; `method` names the compute API call in the
/// invalid-state message (`get_vnc_console`).
pub(crate) fn console_error(e: ConsoleError, uuid: &str, method: &str) -> ApiError {
    match e {
        ConsoleError::NotReady => ApiError::conflict(format!("Instance {uuid} is not ready")),
        ConsoleError::InvalidState { attr, state } => ApiError::conflict(format!(
            "Cannot '{method}' instance {uuid} while it is in {attr} {state}"
        )),
        ConsoleError::InvalidType(t) => ApiError::bad_request(format!("Invalid console type {t}")),
        ConsoleError::Unavailable {
            console_type,
            reason,
        } => {
            tracing::info!(%uuid, %console_type, %reason, "console unavailable");
            ApiError::bad_request(format!("Unavailable console type {console_type}."))
        }
        ConsoleError::NotFound => not_found(uuid),
        ConsoleError::HostUnreachable { host, error } => {
            tracing::warn!(%uuid, %host, %error, "compute host unreachable");
            ApiError::conflict(format!("Compute host {host} could not be reached."))
        }
        ConsoleError::Internal(message) => ApiError::internal(message),
    }
}

/// The `os-getVNCConsole`, `os-getSPICEConsole`, `os-getSerialConsole` and `os-getRDPConsole`
/// server actions (2.1–2.5; a 404 from 2.6 on, where Nova routes them no more).
pub(crate) async fn legacy_action(
    state: &AppState,
    auth: &Auth,
    mv: &Mv,
    uuid: &str,
    action: &str,
    args: &Value,
) -> Result<Value, ApiError> {
    if at_least(mv, 2, 6) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let schema = match action {
        "os-getVNCConsole" => &*VNC_ACTION,
        "os-getSPICEConsole" => &*SPICE_ACTION,
        "os-getSerialConsole" => &*SERIAL_ACTION,
        // Removed with the Hyper-V driver (Nova 29.0.0): a bare 400.
        _ => {
            return Err(ApiError::bad_request(
                "The server could not comply with the request since it is either malformed or \
                 otherwise incorrect.",
            ));
        }
    };
    schema.validate(&json!({ action: args }))?;
    let console_type = args["type"].as_str().unwrap_or_default();
    let c = &state.0;
    let inst = load(c, auth, uuid, RULE).await?;
    let url = match action {
        "os-getVNCConsole" => consoles::authorize_vnc(c, &inst, console_type)
            .await
            .map_err(|e| console_error(e, uuid, "get_vnc_console"))?,
        _ => return Err(unavailable(&inst, console_type)),
    };
    Ok(json!({"console": {"type": console_type, "url": url}}))
}

/// A console type that is off on this cloud (SPICE, serial, MKS): Nova's compute manager
/// answers `ConsoleTypeUnavailable` — after the compute API's host check.
fn unavailable(inst: &crate::db::instances::Instance, console_type: &str) -> ApiError {
    match inst.host {
        None => console_error(ConsoleError::NotReady, &inst.uuid, ""),
        Some(_) => ApiError::bad_request(format!("Unavailable console type {console_type}.")),
    }
}

/// `POST /servers/{id}/remote-consoles` (2.6+)
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if !at_least(&mv, 2, 6) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let schema = if at_least(&mv, 2, 8) {
        &*CREATE_V28
    } else {
        &*CREATE_V26
    };
    schema.validate(&body)?;
    let protocol = body["remote_console"]["protocol"]
        .as_str()
        .unwrap_or_default();
    let console_type = body["remote_console"]["type"].as_str().unwrap_or_default();
    let c = &state.0;
    let inst = load(c, &auth, &uuid, RULE).await?;
    if protocol == "rdp" {
        return Err(ApiError::bad_request(format!(
            "Unavailable console type {protocol}."
        )));
    }
    let url = match protocol {
        "vnc" => consoles::authorize_vnc(c, &inst, console_type)
            .await
            .map_err(|e| console_error(e, &uuid, "get_vnc_console"))?,
        _ => return Err(unavailable(&inst, console_type)),
    };
    Ok(Json(json!({"remote_console": {
        "protocol": protocol,
        "type": console_type,
        "url": url,
    }})))
}

/// `GET /os-console-auth-tokens/{token}`: what a valid token connects to (admin). Before 2.31
/// this served only RDP consoles, removed from Nova: a 400 there.
pub async fn show_token(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !at_least(&mv, 2, 31) {
        return Err(ApiError::bad_request(
            "The server could not comply with the request since it is either malformed or \
             otherwise incorrect.",
        ));
    }
    auth.enforce("os_compute_api:os-console-auth-tokens", &json!({}))?;
    let found = consoles::validate(&state.0, &token)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Token not found"))?;
    Ok(Json(json!({"console": {
        "instance_uuid": found.instance_uuid,
        "host": found.host,
        "port": found.port,
        "internal_access_path": found.internal_access_path,
    }})))
}
