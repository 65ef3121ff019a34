//! Image data: upload (`PUT .../file`), download (`GET .../file`) and staging (`PUT .../stage`).

use super::{AppState, enforce_on, no_image, visible};
use crate::model::status;
use axum::{
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferrostack_api::{ApiError, Auth};
use ferrostack_image_store::{StoreError, byte_stream};

fn require_octet_stream(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().unwrap_or("").trim() != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content type '{content_type}' is not supported; image data must be sent as application/octet-stream."
            ),
        ));
    }
    Ok(())
}

/// The size the client announced: `x-openstack-image-size`, else `Content-Length`.
fn declared_size(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let value = headers
        .get("x-openstack-image-size")
        .or_else(|| headers.get(header::CONTENT_LENGTH));
    match value {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("Invalid or missing image size in request headers.")
            }),
    }
}

/// `PUT /v2/images/{id}/file`
pub async fn upload(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "upload_image", || {
        format!("Not allowed to upload image data for image {id}")
    })?;
    require_octet_stream(&headers)?;
    let size = declared_size(&headers)?;
    images
        .upload(view.image, byte_stream(body.into_data_stream()), size)
        .await?;
    tracing::info!(image = %id, "image data uploaded");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/stage`
pub async fn stage(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "modify_image", || {
        "You are not authorized to complete modify_image action.".into()
    })?;
    if !images
        .config
        .enabled_import_methods
        .iter()
        .any(|m| m == "glance-direct")
    {
        return Err(ApiError::not_found(
            "'glance-direct' method is not available at this site.",
        ));
    }
    require_octet_stream(&headers)?;
    images
        .stage(view.image, byte_stream(body.into_data_stream()))
        .await?;
    tracing::info!(image = %id, "image data staged");
    Ok(StatusCode::NO_CONTENT)
}

/// A parsed single `Range: bytes=...` request.
#[derive(Debug, PartialEq)]
enum Range {
    From(u64, Option<u64>),
    Suffix(u64),
}

fn parse_range(value: &str) -> Result<Range, ApiError> {
    let invalid = || ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "Invalid Range header.");
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    if spec.contains(',') {
        return Err(ApiError::bad_request(
            "Requests with multiple ranges are not supported in Glance. You may make multiple \
             single-range requests instead.",
        ));
    }
    let (start, end) = spec.split_once('-').ok_or_else(invalid)?;
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        return end.parse().map(Range::Suffix).map_err(|_| invalid());
    }
    let start: u64 = start.parse().map_err(|_| invalid())?;
    let end = match end {
        "" => None,
        e => {
            let e: u64 = e.parse().map_err(|_| invalid())?;
            if e < start {
                return Err(invalid());
            }
            Some(e)
        }
    };
    Ok(Range::From(start, end))
}

/// `GET /v2/images/{id}/file`
pub async fn download(
    auth: Auth,
    state: AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let images = &state.0;
    let view = visible(images, &auth, &id, no_image(&id)).await?;
    enforce_on(&auth, &view, "download_image", || {
        "You are not authorized to complete download_image action.".into()
    })?;
    let image = view.image;
    if image.status == status::DEACTIVATED && !view.admin {
        return Err(ApiError::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        ));
    }
    let (Some(location), Some(size)) = (image.location.clone(), image.size) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let size = size as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => Some(match parse_range(value)? {
            Range::From(start, end) => {
                if start >= size {
                    return Err(ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        format!(
                            "Invalid start position in Range header. Start position MUST be in \
                             the inclusive range [0, {}].",
                            size.saturating_sub(1)
                        ),
                    ));
                }
                (start, end.unwrap_or(size - 1).min(size - 1))
            }
            Range::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "Invalid Range header.",
                    ));
                }
                (size.saturating_sub(n), size - 1)
            }
        }),
    };
    let (total, stream) = match (images.data.get(&location, range).await, range) {
        (Ok(found), _) => found,
        (Err(StoreError::NotFound(_)), _) => {
            return Err(ApiError::not_found(format!(
                "Data for image {id} was not found in the store."
            )));
        }
        (Err(e), _) => return Err(ApiError::internal(e)),
    };
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(md5) = image
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    let length = match range {
        Some((start, end)) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            end - start + 1
        }
        None => total,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_glance() {
        assert_eq!(parse_range("bytes=0-9").unwrap(), Range::From(0, Some(9)));
        assert_eq!(parse_range("bytes=5-").unwrap(), Range::From(5, None));
        assert_eq!(parse_range("bytes=-3").unwrap(), Range::Suffix(3));
        assert_eq!(parse_range("bytes=0-1,4-5").unwrap_err().status, 400);
        assert_eq!(parse_range("items=0-1").unwrap_err().status, 416);
        assert_eq!(parse_range("bytes=9-2").unwrap_err().status, 416);
    }
}
