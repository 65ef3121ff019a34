//! A server's addresses (`ips.py`): `GET /servers/{id}/ips` and
//! `GET /servers/{id}/ips/{network}`, from the same network info as the server's
//! `addresses`, in the short form (`version` and `addr` only).

use super::load;
use crate::api::AppState;
use axum::{Json, extract::Path};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};

/// Per network name, the server's fixed and floating addresses as `{version, addr}`.
fn networks(vifs: &[crate::network::Vif]) -> Map<String, Value> {
    let full = super::view::addresses(vifs);
    let mut out = Map::new();
    for (network, list) in full.as_object().into_iter().flatten() {
        let short: Vec<Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| json!({"version": a["version"], "addr": a["addr"]}))
            .collect();
        out.insert(network.clone(), Value::Array(short));
    }
    out
}

/// `GET /servers/{id}/ips`
pub async fn index(
    auth: Auth,
    state: AppState,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inst = load(&state.0, &auth, &uuid, "os_compute_api:ips:index").await?;
    Ok(Json(json!({"addresses": networks(&inst.data.vifs)})))
}

/// `GET /servers/{id}/ips/{network}`
pub async fn show(
    auth: Auth,
    state: AppState,
    Path((uuid, network)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let inst = load(&state.0, &auth, &uuid, "os_compute_api:ips:show").await?;
    let mut all = networks(&inst.data.vifs);
    let list = all
        .remove(&network)
        .ok_or_else(|| ApiError::not_found("Instance is not a member of specified network"))?;
    let mut body = Map::new();
    body.insert(network, list);
    Ok(Json(Value::Object(body)))
}
