//! Microversion negotiation (`OpenStack-API-Version` and the legacy per-service headers).

use crate::ApiError;
use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::fmt;

/// A `major.minor` API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number (2 for compute).
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Version {
    /// `Version::new(2, 1)`
    pub const fn new(major: u16, minor: u16) -> Self {
        Version { major, minor }
    }

    /// Parses `"2.60"`.
    pub fn parse(text: &str) -> Option<Version> {
        let (major, minor) = text.trim().split_once('.')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'))
        };
        if !valid(major) || !valid(minor) {
            return None;
        }
        Some(Version {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The versions one service supports and the headers it reads.
#[derive(Debug, Clone, Copy)]
pub struct MicroversionSpec {
    /// Service type named in `OpenStack-API-Version` (`compute`, `volume`, `placement`).
    pub service_type: &'static str,
    /// Legacy header, e.g. `X-OpenStack-Nova-API-Version`.
    pub legacy_header: Option<&'static str>,
    /// Oldest supported version (used when the client asks for none).
    pub min: Version,
    /// Newest supported version (`latest`).
    pub max: Version,
}

impl MicroversionSpec {
    /// The version a request asks for, or the error to answer.
    pub fn negotiate(&self, headers: &HeaderMap) -> Result<Version, ApiError> {
        let requested = self.requested(headers);
        let Some(text) = requested else {
            return Ok(self.min);
        };
        if text.eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let version = Version::parse(&text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
            ))
        })?;
        if version < self.min || version > self.max {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version {version} is not supported by the API. Minimum is {} and maximum is {}.",
                    self.min, self.max
                ),
            ));
        }
        Ok(version)
    }

    fn requested(&self, headers: &HeaderMap) -> Option<String> {
        for value in headers.get_all("openstack-api-version") {
            let Ok(value) = value.to_str() else { continue };
            for entry in value.split(',') {
                let mut words = entry.split_whitespace();
                if let (Some(service), Some(version)) = (words.next(), words.next())
                    && service.eq_ignore_ascii_case(self.service_type)
                {
                    return Some(version.to_string());
                }
            }
        }
        let legacy = self.legacy_header?;
        headers
            .get(legacy)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    }

    /// Adds the echo headers and `Vary` to a response.
    pub fn echo(&self, version: Version, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&format!("{} {version}", self.service_type)) {
            headers.insert("openstack-api-version", v);
        }
        let mut vary = String::from("OpenStack-API-Version");
        if let Some(legacy) = self.legacy_header {
            if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
                headers.insert(legacy, v);
            }
            vary.push_str(", ");
            vary.push_str(legacy);
        }
        if let Ok(v) = HeaderValue::from_str(&vary) {
            headers.append(header::VARY, v);
        }
    }
}

/// Middleware: negotiates the version, stores it in the request extensions and echoes it.
pub async fn negotiate_middleware(
    spec: MicroversionSpec,
    mut request: Request,
    next: Next,
) -> Response {
    let version = match spec.negotiate(request.headers()) {
        Ok(v) => v,
        Err(e) => {
            let mut response = e.into_response();
            spec.echo(spec.min, response.headers_mut());
            return response;
        }
    };
    request.extensions_mut().insert(version);
    let mut response = next.run(request).await;
    spec.echo(version, response.headers_mut());
    response
}

/// Wraps a router so that every request under it is negotiated against `spec`.
pub fn with_microversions<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    spec: MicroversionSpec,
) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| negotiate_middleware(spec, req, next),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: MicroversionSpec = MicroversionSpec {
        service_type: "compute",
        legacy_header: Some("X-OpenStack-Nova-API-Version"),
        min: Version::new(2, 1),
        max: Version::new(2, 79),
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn both_spellings_and_latest() {
        assert_eq!(SPEC.negotiate(&headers(&[])).unwrap(), Version::new(2, 1));
        assert_eq!(
            SPEC.negotiate(&headers(&[("OpenStack-API-Version", "compute 2.60")]))
                .unwrap(),
            Version::new(2, 60)
        );
        assert_eq!(
            SPEC.negotiate(&headers(&[("X-OpenStack-Nova-API-Version", "2.37")]))
                .unwrap(),
            Version::new(2, 37)
        );
        assert_eq!(
            SPEC.negotiate(&headers(&[(
                "OpenStack-API-Version",
                "volume 3.1, compute latest"
            )]))
            .unwrap(),
            Version::new(2, 79)
        );
        // The new header wins over the legacy one.
        assert_eq!(
            SPEC.negotiate(&headers(&[
                ("X-OpenStack-Nova-API-Version", "2.5"),
                ("OpenStack-API-Version", "compute 2.6")
            ]))
            .unwrap(),
            Version::new(2, 6)
        );
    }

    #[test]
    fn out_of_range_is_406_and_garbage_is_400() {
        let e = SPEC
            .negotiate(&headers(&[("OpenStack-API-Version", "compute 2.200")]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        let e = SPEC
            .negotiate(&headers(&[("OpenStack-API-Version", "compute 2.x")]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(Version::parse("2.01").is_none());
    }

    #[test]
    fn echo_sets_both_headers_and_vary() {
        let mut h = HeaderMap::new();
        SPEC.echo(Version::new(2, 60), &mut h);
        assert_eq!(h["openstack-api-version"], "compute 2.60");
        assert_eq!(h["x-openstack-nova-api-version"], "2.60");
        assert_eq!(
            h["vary"],
            "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        );
    }
}
