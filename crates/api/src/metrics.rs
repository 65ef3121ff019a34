//! Prometheus metrics, served at `/metrics`.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ServiceLabels, Histogram>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("ferrostack");
    let requests = Family::<RequestLabels, Counter>::default();
    let latency = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
        Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ])
    });
    registry.register("http_requests", "HTTP requests served", requests.clone());
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency",
        latency.clone(),
    );
    Metrics {
        registry: Mutex::new(registry),
        requests,
        latency,
    }
});

/// The service a path belongs to: its first segment (`identity`, `compute`, ...).
fn service_of(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Records one served request.
pub fn record_request(path: &str, method: &str, status: u16, elapsed: Duration) {
    let service = service_of(path);
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            service: service.clone(),
            method: method.to_string(),
            status,
        })
        .inc();
    METRICS
        .latency
        .get_or_create(&ServiceLabels { service })
        .observe(elapsed.as_secs_f64());
}

/// Lets a service register its own metrics (gauges of resources, queue depths...).
pub fn with_registry(f: impl FnOnce(&mut Registry)) {
    let mut registry = METRICS.registry.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut registry);
}

/// The text exposition of every registered metric.
pub fn render() -> String {
    let registry = METRICS.registry.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out
}

/// Handler for `GET /metrics`.
pub async fn metrics_handler() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_service() {
        record_request("/identity/v3/users", "GET", 200, Duration::from_millis(2));
        let text = render();
        assert!(
            text.contains(
                "ferrostack_http_requests_total{service=\"identity\",method=\"GET\",status=\"200\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains("ferrostack_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
