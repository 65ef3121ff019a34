//! Remote consoles (Nova's `get_vnc_console` and console auth tokens): the instance's host
//! says where the guest's VNC server listens now, a random token is issued for that address
//! (stored only as its SHA-256, with an expiry), and the console proxy checks the token and
//! the address again before it relays a connection.

use crate::db::console_tokens::{self, ConsoleToken};
use crate::db::instances::Instance;
use crate::rpc::{self, AgentReply, AgentRequest, agent_queue};
use crate::service::Compute;
use crate::states::{task, vm};
use ferrostack_store::StoreError;
use std::time::Duration;

/// How long the API and the proxy wait for a host to say where a VNC server listens.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The console types of the VNC protocol Nova's API accepts (`xvpvnc` was XenServer's: it
/// passes the schema and is refused as an invalid type).
pub const VNC_TYPES: [&str; 2] = ["novnc", "xvpvnc"];

/// Why no console URL could be given.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleError {
    /// The instance has no host yet (Nova's `InstanceNotReady`).
    NotReady,
    /// The instance's `attr` (`vm_state`/`task_state`) is `state`, which has no console.
    InvalidState { attr: &'static str, state: String },
    /// A console type this protocol does not have (`ConsoleTypeInvalid`).
    InvalidType(String),
    /// The console type is off on this cloud or host, or the guest has no such console now
    /// (`ConsoleTypeUnavailable`); `reason` is for the logs.
    Unavailable {
        console_type: String,
        reason: String,
    },
    /// The instance's host has no such guest (`InstanceNotFound`).
    NotFound,
    /// The instance's host did not answer.
    HostUnreachable { host: String, error: String },
    /// Anything else (a store or host error).
    Internal(String),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

/// The VNC server of `inst` as its host reports it now: the address the proxy connects to
/// and the port libvirt assigned.
pub async fn vnc_target(c: &Compute, inst: &Instance) -> Result<(String, u16), ConsoleError> {
    let Some(host) = inst.host.as_deref() else {
        return Err(ConsoleError::NotReady);
    };
    let request = AgentRequest::VncConsole {
        uuid: inst.uuid.clone(),
    };
    let reply = c
        .bus
        .call(&agent_queue(host), rpc::encode(&request), AGENT_TIMEOUT)
        .await
        .map_err(|e| ConsoleError::HostUnreachable {
            host: host.to_string(),
            error: e.to_string(),
        })?;
    match rpc::decode::<AgentReply>(&reply).map_err(|e| ConsoleError::Internal(e.to_string()))? {
        AgentReply::VncConsole { host, port } => Ok((host, port)),
        AgentReply::ConsoleUnavailable { reason } => Err(ConsoleError::Unavailable {
            console_type: "novnc".into(),
            reason,
        }),
        // A guest that is still being built has no domain yet.
        AgentReply::NotFound if inst.vm_state == vm::BUILDING => Err(ConsoleError::NotReady),
        AgentReply::NotFound => Err(ConsoleError::NotFound),
        AgentReply::Error { message } => Err(ConsoleError::Internal(message)),
        other => Err(ConsoleError::Internal(format!(
            "unexpected agent reply {other:?}"
        ))),
    }
}

/// Nova's `get_vnc_console`: the checks of the compute API (a host; not deleting or
/// migrating), of the compute manager (VNC enabled, type `novnc`) and of the driver (a
/// running guest with a VNC display), then a token for the guest's VNC server. Returns the
/// console URL.
pub async fn authorize_vnc(
    c: &Compute,
    inst: &Instance,
    console_type: &str,
) -> Result<String, ConsoleError> {
    if inst.host.is_none() {
        return Err(ConsoleError::NotReady);
    }
    if let Some(t) = inst.task_state.as_deref()
        && (t == task::DELETING || t == "migrating")
    {
        return Err(ConsoleError::InvalidState {
            attr: "task_state",
            state: t.to_string(),
        });
    }
    if !c.config.vnc_enabled {
        return Err(ConsoleError::Unavailable {
            console_type: console_type.to_string(),
            reason: "[compute] vnc_enabled is false".into(),
        });
    }
    if console_type != "novnc" {
        return Err(ConsoleError::InvalidType(console_type.to_string()));
    }
    // Only a guest whose QEMU process runs has a VNC server.
    if ![vm::ACTIVE, vm::PAUSED, vm::RESCUED].contains(&inst.vm_state.as_str()) {
        return Err(ConsoleError::InvalidState {
            attr: "vm_state",
            state: inst.vm_state.clone(),
        });
    }
    let (host, port) = vnc_target(c, inst).await?;
    let base = base_url(c);
    let token = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now();
    let row = ConsoleToken {
        token_hash: token_hash(&token),
        console_type: console_type.to_string(),
        host,
        port: port.into(),
        internal_access_path: None,
        instance_uuid: inst.uuid.clone(),
        access_url_base: Some(base.clone()),
        expires: now.timestamp() + c.config.console_token_ttl as i64,
        created_at: ferrostack_store::now_rfc3339(),
    };
    console_tokens::purge(&c.store, now.timestamp()).await?;
    console_tokens::insert(&c.store, &row).await?;
    tracing::info!(uuid = %inst.uuid, host = %row.host, port, expires = row.expires, "console token issued");
    Ok(access_url(&base, &token))
}

/// The authorization `token` grants now, if any: known, unexpired, its instance not deleted.
pub async fn validate(c: &Compute, token: &str) -> Result<Option<ConsoleToken>, StoreError> {
    if token.is_empty() {
        return Ok(None);
    }
    console_tokens::find_valid(&c.store, &token_hash(token), chrono::Utc::now().timestamp()).await
}

/// Whether `auth` still names the instance's VNC server: its host reports the same address
/// and port now (Nova's `validate_console_port`; a restarted guest may have another port).
pub async fn still_current(c: &Compute, auth: &ConsoleToken) -> bool {
    let inst = match crate::db::instances::instance(&c.store, &auth.instance_uuid).await {
        Ok(Some(inst)) if !inst.deleted => inst,
        Ok(_) => return false,
        Err(e) => {
            tracing::warn!(uuid = %auth.instance_uuid, "console check: {e}");
            return false;
        }
    };
    match vnc_target(c, &inst).await {
        Ok((host, port)) => host == auth.host && i64::from(port) == auth.port,
        Err(e) => {
            tracing::info!(uuid = %inst.uuid, ?e, "console check: the VNC server moved or is gone");
            false
        }
    }
}

/// Removes expired authorizations and those of deleted instances.
pub async fn purge(c: &Compute) -> Result<u64, StoreError> {
    console_tokens::purge(&c.store, chrono::Utc::now().timestamp()).await
}

/// The console URL base (`[compute] novncproxy_base_url`, resolved by the configuration).
pub fn base_url(c: &Compute) -> String {
    match c.config.novncproxy_base_url.as_str() {
        "" => ferrostack_config::default_novncproxy_base_url(
            &c.public_url,
            &c.config.novncproxy_listen,
        ),
        url => url.to_string(),
    }
}

/// How a token is stored: lowercase hex SHA-256 (Nova's `get_sha256_str`).
pub fn token_hash(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Nova's noVNC access URL: the token goes inside the `path` query parameter
/// (`?path=%3Ftoken%3D<token>`), which noVNC (1.1 and later) opens as its websocket path;
/// a `path` already in the base URL is kept in front of it.
pub fn access_url(base: &str, token: &str) -> String {
    let (base, fragment) = match base.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (base, None),
    };
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let qpath = format!(
        "{}?token={token}",
        pairs
            .iter()
            .find(|(k, _)| k == "path")
            .map_or("", |(_, v)| v.as_str())
    );
    match pairs.iter_mut().find(|(k, _)| k == "path") {
        Some(pair) => pair.1 = qpath,
        None => pairs.push(("path".into(), qpath)),
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    match fragment {
        Some(f) => format!("{head}?{query}#{f}"),
        None => format!("{head}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_url_carries_the_token_in_the_path_parameter_as_nova_does() {
        assert_eq!(
            access_url("http://h:6080/vnc_lite.html", "abc-1"),
            "http://h:6080/vnc_lite.html?path=%3Ftoken%3Dabc-1"
        );
        assert_eq!(
            access_url(
                "https://h/console/vnc_lite.html?path=console&scale=1#x",
                "t"
            ),
            "https://h/console/vnc_lite.html?path=console%3Ftoken%3Dt&scale=1#x"
        );
    }

    #[test]
    fn tokens_are_stored_as_their_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
