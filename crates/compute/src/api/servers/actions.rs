//! `POST /servers/{id}/action`: the actions implemented so far (start, stop, reboot, console
//! output, the deprecated remote console actions, reset state, lock/unlock, the floating IP
//! and security group actions). Each state-changing action checks lock → host → state
//! as Nova's decorators do, sets its task state with a compare-and-swap (two concurrent
//! actions cannot both start), records an instance action and casts to the host's agent.

use super::{check_lock, is_admin, load, target};
use crate::api::{AppState, Mv};
use crate::conductor;
use crate::db::instances::{self as idb, Instance, NewAction, StateChange};
use crate::guest::guest_build;
use crate::rpc::{self, AgentReply, AgentRequest, agent_queue};
use crate::service::db_error;
use crate::states::{task, vm};
use axum::{Extension, Json, extract::Path, http::StatusCode, response::IntoResponse};
use ferrostack_api::{ApiError, Auth, JsonBody, RequestId};
use serde_json::{Value, json};
use std::time::Duration;

pub(super) fn invalid_state(action: &str, uuid: &str, attr: &str, state: &str) -> ApiError {
    ApiError::conflict(format!(
        "Cannot '{action}' instance {uuid} while it is in {attr} {state}"
    ))
}

/// `check_instance_host` then `check_instance_state`.
pub(super) fn check_state(
    inst: &Instance,
    action: &str,
    vm_states: &[&str],
    task_states: &[Option<&str>],
) -> Result<String, ApiError> {
    let Some(host) = inst.host.clone() else {
        return Err(ApiError::conflict(format!(
            "Instance {} is not ready",
            inst.uuid
        )));
    };
    if !vm_states.contains(&inst.vm_state.as_str()) {
        return Err(invalid_state(
            action,
            &inst.uuid,
            "vm_state",
            &inst.vm_state,
        ));
    }
    if !task_states.contains(&inst.task_state.as_deref()) {
        let t = inst.task_state.as_deref().unwrap_or("None");
        return Err(invalid_state(action, &inst.uuid, "task_state", t));
    }
    Ok(host)
}

/// Records the action and moves the task state with a compare-and-swap; 409 if another
/// operation got there first.
async fn begin(
    state: &AppState,
    auth: &Auth,
    inst: &Instance,
    request_id: &str,
    action: (&str, &str),
    expected: &[Option<&str>],
    new_task: &str,
) -> Result<(), ApiError> {
    let c = &state.0;
    let now = ferrostack_store::now_rfc3339();
    let change = StateChange {
        task_state: Some(Some(new_task.to_string())),
        ..Default::default()
    };
    if !idb::update_state(&c.store, &inst.uuid, expected, &change, &now)
        .await
        .map_err(db_error)?
    {
        return Err(invalid_state(
            action.1,
            &inst.uuid,
            "task_state",
            "changing",
        ));
    }
    idb::add_action(
        &c.store,
        &inst.uuid,
        &NewAction {
            action: action.0,
            request_id,
            user_id: &auth.user.id,
            project_id: auth.project_id().unwrap_or_default(),
            now: &now,
        },
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Casts to the instance's host; an unreachable host rolls the task state back (409).
async fn send(
    state: &AppState,
    inst: &Instance,
    host: &str,
    new_task: &str,
    message: AgentRequest,
) -> Result<(), ApiError> {
    let c = &state.0;
    if let Err(e) = conductor::cast(c, host, &message).await {
        let back = StateChange {
            task_state: Some(None),
            ..Default::default()
        };
        let _ = idb::update_state(
            &c.store,
            &inst.uuid,
            &[Some(new_task)],
            &back,
            &ferrostack_store::now_rfc3339(),
        )
        .await;
        tracing::warn!(uuid = %inst.uuid, host, error = %e, "compute host unreachable");
        return Err(ApiError::conflict(format!(
            "Compute host {host} could not be found."
        )));
    }
    Ok(())
}

fn console_length(v: &Value) -> Result<Option<i64>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute length. Value: {v}."
        ))
    };
    match v.get("length") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= -1).map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= -1)
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// Removes control characters the way Nova's console API does.
fn strip_control(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(*c as u32, 0x00..=0x08 | 0x0B..=0x1F))
        .collect()
}

/// `POST /servers/{id}/action`
pub async fn action(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Extension(request_id): Extension<RequestId>,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<axum::response::Response, ApiError> {
    let Some((name, args)) = body.as_object().and_then(|o| {
        if o.len() == 1 {
            o.iter().next().map(|(k, v)| (k.clone(), v.clone()))
        } else {
            None
        }
    }) else {
        return Err(ApiError::bad_request(
            "There is no such action or the body has more than one",
        ));
    };
    let c = state.0.clone();
    let rid = request_id.0.as_str();
    match name.as_str() {
        "os-stop" => {
            let inst = load(&c, &auth, &uuid, "os_compute_api:servers:stop").await?;
            check_lock(&auth, &inst)?;
            if inst.launched_at.is_none() {
                return Err(invalid_state("stop", &uuid, "launched_at", "None"));
            }
            let host = check_state(&inst, "stop", &[vm::ACTIVE, vm::ERROR], &[None])?;
            begin(
                &state,
                &auth,
                &inst,
                rid,
                ("stop", "stop"),
                &[None],
                task::POWERING_OFF,
            )
            .await?;
            let m = AgentRequest::Stop {
                uuid: uuid.clone(),
                request_id: rid.to_string(),
            };
            send(&state, &inst, &host, task::POWERING_OFF, m).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-start" => {
            let inst = load(&c, &auth, &uuid, "os_compute_api:servers:start").await?;
            check_lock(&auth, &inst)?;
            let host = check_state(&inst, "start", &[vm::STOPPED], &[None])?;
            begin(
                &state,
                &auth,
                &inst,
                rid,
                ("start", "start"),
                &[None],
                task::POWERING_ON,
            )
            .await?;
            let m = AgentRequest::Start {
                build: guest_build(&inst, &c.config.instance_name_template),
                request_id: rid.to_string(),
            };
            send(&state, &inst, &host, task::POWERING_ON, m).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "reboot" => {
            let kind = args
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase);
            let hard = match kind.as_deref() {
                Some("HARD") => true,
                Some("SOFT") => false,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field/attribute type. Value: {}.",
                        args.get("type").cloned().unwrap_or(Value::Null)
                    )));
                }
            };
            let inst = load(&c, &auth, &uuid, "os_compute_api:servers:reboot").await?;
            check_lock(&auth, &inst)?;
            let (vm_ok, task_ok, new_task): (&[&str], &[Option<&str>], &str) = if hard {
                (
                    &[
                        vm::ACTIVE,
                        vm::STOPPED,
                        vm::PAUSED,
                        vm::SUSPENDED,
                        vm::ERROR,
                    ],
                    &[
                        None,
                        Some(task::REBOOTING),
                        Some(task::REBOOT_PENDING),
                        Some(task::REBOOT_STARTED),
                        Some(task::REBOOTING_HARD),
                        Some(task::RESUMING),
                        Some(task::PAUSING),
                        Some(task::UNPAUSING),
                        Some(task::SUSPENDING),
                    ],
                    task::REBOOTING_HARD,
                )
            } else {
                (&[vm::ACTIVE], &[None], task::REBOOTING)
            };
            let host = check_state(&inst, "reboot", vm_ok, task_ok)?;
            begin(
                &state,
                &auth,
                &inst,
                rid,
                ("reboot", "reboot"),
                task_ok,
                new_task,
            )
            .await?;
            let m = AgentRequest::Reboot {
                build: guest_build(&inst, &c.config.instance_name_template),
                hard,
                request_id: rid.to_string(),
            };
            send(&state, &inst, &host, new_task, m).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-getConsoleOutput" => {
            let inst = load(&c, &auth, &uuid, "os_compute_api:os-console-output").await?;
            let length = console_length(&args)?;
            let Some(host) = inst.host.clone() else {
                return Err(ApiError::conflict(format!("Instance {uuid} is not ready")));
            };
            let request = AgentRequest::ConsoleOutput {
                uuid: uuid.clone(),
                length,
            };
            let reply = c
                .bus
                .call(
                    &agent_queue(&host),
                    rpc::encode(&request),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|e| {
                    ApiError::conflict(format!("Compute host {host} could not be reached: {e}"))
                })?;
            match rpc::decode::<AgentReply>(&reply).map_err(ApiError::internal)? {
                AgentReply::ConsoleOutput { output } => {
                    Ok(Json(json!({"output": strip_control(&output)})).into_response())
                }
                AgentReply::NotFound => Err(ApiError::not_found(
                    "Guest does not have a console available.",
                )),
                AgentReply::Error { message } => Err(ApiError::internal(message)),
                other => Err(ApiError::internal(format!(
                    "unexpected agent reply {other:?}"
                ))),
            }
        }
        "os-resetState" => {
            let inst = load(
                &c,
                &auth,
                &uuid,
                "os_compute_api:os-admin-actions:reset_state",
            )
            .await?;
            let wanted = match args.get("state").and_then(Value::as_str) {
                Some("active") => vm::ACTIVE,
                Some("error") => vm::ERROR,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field/attribute state. Value: {}.",
                        args.get("state").cloned().unwrap_or(Value::Null)
                    )));
                }
            };
            let now = ferrostack_store::now_rfc3339();
            idb::add_action(
                &c.store,
                &uuid,
                &NewAction {
                    action: "resetState",
                    request_id: rid,
                    user_id: &auth.user.id,
                    project_id: auth.project_id().unwrap_or_default(),
                    now: &now,
                },
            )
            .await
            .map_err(db_error)?;
            let change = StateChange {
                vm_state: Some(wanted.into()),
                task_state: Some(None),
                ..Default::default()
            };
            idb::update_state(&c.store, &inst.uuid, &[], &change, &now)
                .await
                .map_err(db_error)?;
            tracing::info!(uuid, state = wanted, "server state reset");
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "addSecurityGroup" | "removeSecurityGroup" => {
            let add = name == "addSecurityGroup";
            let rule = match add {
                true => "os_compute_api:os-security-groups:add",
                false => "os_compute_api:os-security-groups:remove",
            };
            let inst = load(&c, &auth, &uuid, rule).await?;
            let group = match args.get("name") {
                Some(Value::String(g)) if !g.trim().is_empty() => g.trim().to_string(),
                Some(Value::String(_)) => {
                    return Err(ApiError::bad_request("Security group name cannot be empty"));
                }
                _ => return Err(ApiError::bad_request("Missing parameter name")),
            };
            let Some(network) = c.network() else {
                return Err(ApiError::bad_request(
                    "This cloud has no networking service: servers have no ports.",
                ));
            };
            network
                .change_security_group(
                    &inst.project_id,
                    is_admin(&auth),
                    &uuid,
                    &inst.data.vifs,
                    &group,
                    add,
                )
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "addFloatingIp" => {
            super::floating_ips::add(&c, &auth, &mv, &uuid, &args).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "removeFloatingIp" => {
            super::floating_ips::remove(&c, &auth, &mv, &uuid, &args).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "lock" | "unlock" => {
            let rule = format!("os_compute_api:os-lock-server:{name}");
            let mut inst = load(&c, &auth, &uuid, &rule).await?;
            if name == "unlock"
                && let Some(owner) = &inst.data.locked_by
                && owner == "admin"
            {
                auth.enforce(
                    "os_compute_api:os-lock-server:unlock:unlock_override",
                    &target(&inst),
                )?;
            }
            let reason = args
                .get("locked_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            if name == "lock" {
                inst.data.locked_by = Some(
                    if is_admin(&auth) && auth.project_id() != Some(inst.project_id.as_str()) {
                        "admin".into()
                    } else {
                        "owner".into()
                    },
                );
                inst.data.locked_reason = reason;
            } else {
                inst.data.locked_by = None;
                inst.data.locked_reason = None;
            }
            let now = ferrostack_store::now_rfc3339();
            if !idb::save_data(&c.store, &inst, &now)
                .await
                .map_err(db_error)?
            {
                return Err(ApiError::conflict(
                    "The server was changed concurrently; try again.",
                ));
            }
            idb::add_action(
                &c.store,
                &uuid,
                &NewAction {
                    action: &name,
                    request_id: rid,
                    user_id: &auth.user.id,
                    project_id: auth.project_id().unwrap_or_default(),
                    now: &now,
                },
            )
            .await
            .map_err(db_error)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        // Deferred delete (`os-deferred-delete`): servers are deleted at once here
        // (`reclaim_instance_interval` 0), so none is ever SOFT_DELETED: `restore` is always
        // in the wrong state, and `forceDelete` deletes like DELETE does.
        "restore" => {
            let inst = load(
                &c,
                &auth,
                &uuid,
                "os_compute_api:os-deferred-delete:restore",
            )
            .await?;
            check_lock(&auth, &inst)?;
            Err(invalid_state("restore", &uuid, "vm_state", &inst.vm_state))
        }
        "forceDelete" => {
            let inst = load(&c, &auth, &uuid, "os_compute_api:os-deferred-delete:force").await?;
            check_lock(&auth, &inst)?;
            super::destroy(&c, &auth, &uuid, rid).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" => {
            let body =
                crate::api::remote_consoles::legacy_action(&state, &auth, &mv, &uuid, &name, &args)
                    .await?;
            Ok(Json(body).into_response())
        }
        other => {
            tracing::debug!(action = other, "unknown server action");
            Err(ApiError::not_found("The resource could not be found."))
        }
    }
}
