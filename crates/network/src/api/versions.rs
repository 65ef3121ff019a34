//! Version discovery: `GET /networking/` lists v2.0; `GET /networking/v2.0/` lists its
//! resources (Neutron's root and v2.0 index).

use super::AppState;
use axum::{Json, response::IntoResponse};
use ferrostack_api::{ApiError, Auth, Public};
use serde_json::{Value, json};

/// The collections of v2.0, as `(member, collection, path)`.
const RESOURCES: &[(&str, &str, &str)] = &[
    ("network", "networks", "networks"),
    ("subnet", "subnets", "subnets"),
    ("subnetpool", "subnetpools", "subnetpools"),
    ("port", "ports", "ports"),
    ("security_group", "security_groups", "security-groups"),
    (
        "security_group_rule",
        "security_group_rules",
        "security-group-rules",
    ),
    ("router", "routers", "routers"),
    ("floatingip", "floatingips", "floatingips"),
    ("quota", "quotas", "quotas"),
];

/// `GET /networking/`
pub async fn index(_: Public, axum::extract::State(net): AppState) -> impl IntoResponse {
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{}/v2.0/", net.base_url())}],
    }]}))
}

/// `GET /networking/v2.0/`
pub async fn resources(
    auth: Auth,
    axum::extract::State(net): AppState,
) -> Result<Json<Value>, ApiError> {
    crate::api::authz::enforce(&auth, "regular_user", &json!({}))?;
    let base = format!("{}/v2.0", net.base_url());
    let list: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, collection, path)| {
            json!({
                "name": name,
                "collection": collection,
                "links": [{"rel": "self", "href": format!("{base}/{path}")}],
            })
        })
        .collect();
    Ok(Json(json!({ "resources": list })))
}
