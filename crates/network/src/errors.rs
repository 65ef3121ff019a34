//! Neutron's errors: each carries its exception class name as the `type` of the
//! `{"NeutronError": {"type", "message", "detail"}}` body, with upstream's message.

use axum::http::StatusCode;
use ferrostack_api::ApiError;

fn err(status: StatusCode, kind: &'static str, message: String) -> ApiError {
    ApiError::new(status, message).with_kind(kind)
}

/// 400 `BadRequest` (attribute checks: "Invalid input for X. Reason: ...").
pub fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "HTTPBadRequest", message.into())
}

/// 400 `InvalidInput`.
pub fn invalid_input(message: impl std::fmt::Display) -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("Invalid input for operation: {message}."),
    )
}

/// 400 with a specific exception class.
pub fn bad(kind: &'static str, message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, kind, message.into())
}

/// 404 with a specific exception class.
pub fn not_found(kind: &'static str, message: impl Into<String>) -> ApiError {
    err(StatusCode::NOT_FOUND, kind, message.into())
}

/// 409 with a specific exception class.
pub fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
    err(StatusCode::CONFLICT, kind, message.into())
}

/// 404 for a resource the caller may not see (Neutron hides it rather than answer 403).
pub fn hidden() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.".into(),
    )
}

/// 403 for an action the policy refuses on a resource the caller may see.
pub fn policy_denied(action: &str) -> ApiError {
    err(
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
        format!("({action}) is disallowed by policy"),
    )
}

/// 404 `NetworkNotFound`.
pub fn network_not_found(id: &str) -> ApiError {
    not_found(
        "NetworkNotFound",
        format!("Network {id} could not be found."),
    )
}

/// 404 `SubnetNotFound`.
pub fn subnet_not_found(id: &str) -> ApiError {
    not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
}

/// 404 `PortNotFound`.
pub fn port_not_found(id: &str) -> ApiError {
    not_found("PortNotFound", format!("Port {id} could not be found."))
}

/// 404 `SubnetPoolNotFound`.
pub fn subnetpool_not_found(id: &str) -> ApiError {
    not_found(
        "SubnetPoolNotFound",
        format!("Subnet pool {id} could not be found."),
    )
}

/// 404 `SecurityGroupNotFound`.
pub fn security_group_not_found(id: &str) -> ApiError {
    not_found(
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

/// 404 `SecurityGroupRuleNotFound`.
pub fn security_group_rule_not_found(id: &str) -> ApiError {
    not_found(
        "SecurityGroupRuleNotFound",
        format!("Security group rule {id} does not exist"),
    )
}

/// 404 `RouterNotFound`.
pub fn router_not_found(id: &str) -> ApiError {
    not_found("RouterNotFound", format!("Router {id} could not be found"))
}

/// 404 `FloatingIPNotFound`.
pub fn floatingip_not_found(id: &str) -> ApiError {
    not_found(
        "FloatingIPNotFound",
        format!("Floating IP {id} could not be found"),
    )
}

/// 409 `OverQuota`.
pub fn over_quota(resource: &str) -> ApiError {
    conflict(
        "OverQuota",
        format!("Quota exceeded for resources: ['{resource}']."),
    )
}

/// 412 when `If-Match: revision_number=N` does not match.
pub fn revision_mismatch(wanted: i64, current: i64) -> ApiError {
    err(
        StatusCode::PRECONDITION_FAILED,
        "RevisionNumberConstraintFailed",
        format!("Constrained to {wanted}, but current revision is {current}"),
    )
}

/// 500 for a store failure (the detail goes to the log).
pub fn db(e: ferrostack_store::StoreError) -> ApiError {
    ApiError::internal(e)
}
