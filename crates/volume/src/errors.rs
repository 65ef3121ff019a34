//! Cinder's errors: the body is Nova's shape (`{"itemNotFound": {"code", "message"}}`,
//! `badRequest`, `overLimit`, ...), the messages are upstream's (`cinder/exception.py`).

use axum::http::StatusCode;
use ferrostack_api::ApiError;

/// 400 with Cinder's message.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message.into())
}

/// 400 `InvalidVolume`: `Invalid volume: <reason>`.
pub fn invalid_volume(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid volume: {reason}"))
}

/// 400 `InvalidSnapshot`.
pub fn invalid_snapshot(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid snapshot: {reason}"))
}

/// 400 `InvalidInput`.
pub fn invalid_input(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid input received: {reason}"))
}

/// 404 `VolumeNotFound` (also for volumes the caller may not see).
pub fn volume_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Volume {id} could not be found."))
}

/// 404 `SnapshotNotFound`.
pub fn snapshot_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Snapshot {id} could not be found."))
}

/// 404 `VolumeTypeNotFound`.
pub fn volume_type_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Volume type {id} could not be found."))
}

/// 404 `VolumeAttachmentNotFound`.
pub fn attachment_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Volume attachment could not be found with filter: attachment_id = {id}."
    ))
}

/// 404 `QoSSpecsNotFound`.
pub fn qos_specs_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("No such QoS spec {id}."))
}

/// 404 `ImageNotFound`.
pub fn image_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Image {id} could not be found."))
}

/// 409 with Cinder's message.
pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::conflict(message.into())
}

/// 403 for an action the policy refuses on a resource the caller may see.
pub fn policy_denied(action: &str) -> ApiError {
    ApiError::forbidden(format!("Policy doesn't allow {action} to be performed."))
}

/// 413 `OverQuota` family ("VolumeSizeExceedsAvailableQuota", "VolumeLimitExceeded", ...).
pub fn over_quota(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message.into())
}
