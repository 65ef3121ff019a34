//! The password a guest posted to the metadata service (`server_password.py`):
//! `GET /servers/{id}/os-server-password` shows it (encrypted with the server's key, as the
//! guest stored it), `DELETE` clears it so the guest may post a new one.

use super::load;
use crate::api::AppState;
use crate::db::instances as idb;
use crate::service::db_error;
use axum::{Json, extract::Path, http::StatusCode};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Value, json};

/// `GET /servers/{id}/os-server-password`
pub async fn show(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inst = load(
        &state.0,
        &auth,
        &uuid,
        "os_compute_api:os-server-password:show",
    )
    .await?;
    let password = inst.data.password.unwrap_or_default();
    Ok(Json(json!({ "password": password })))
}

/// `DELETE /servers/{id}/os-server-password`
pub async fn clear(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = &state.0;
    let rule = "os_compute_api:os-server-password:clear";
    let mut inst = load(c, &auth, &uuid, rule).await?;
    for _ in 0..10 {
        if inst.data.password.is_none() {
            return Ok(StatusCode::NO_CONTENT);
        }
        inst.data.password = None;
        let now = ferrostack_store::now_rfc3339();
        if idb::save_data(&c.store, &inst, &now)
            .await
            .map_err(db_error)?
        {
            tracing::info!(server = %uuid, "server password cleared");
            return Ok(StatusCode::NO_CONTENT);
        }
        inst = load(c, &auth, &uuid, rule).await?;
    }
    Err(ApiError::conflict(format!(
        "Instance {uuid} kept changing while its password was cleared; retry."
    )))
}
