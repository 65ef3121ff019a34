//! Placement of volumes on the backend (Cinder's filter scheduler with one backend): the pool's
//! capabilities as the volume manager reports them, and whether a volume type may be placed
//! there: the `cinder-volume` service is enabled and the pool satisfies the type's extra
//! specs (Cinder's `CapabilitiesFilter` and its `extra_specs_ops`).
//!
//! One difference with Cinder: an unscoped extra spec naming no capability the pool reports
//! (`tier=gold`) is not checked here, where Cinder's filter refuses every backend for it; keys
//! naming a reported capability (`storage_protocol`, `vendor_name`, `volume_backend_name`,
//! `thin_provisioning_support`, ... or `capabilities:<key>`) must match as in Cinder.

use crate::heartbeat;
use crate::service::Volumes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// No backend can take the volume (Cinder's `NoValidBackend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoValidBackend(pub String);

impl std::fmt::Display for NoValidBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "No valid backend was found. {}", self.0)
    }
}

impl std::error::Error for NoValidBackend {}

/// The capabilities of the backend's one pool (`get_pools?detail=true`), from the driver now.
pub async fn pool_capabilities(volumes: &Volumes) -> anyhow::Result<Map<String, Value>> {
    let stats = volumes.driver.stats().await?;
    let allocated = volumes
        .db
        .count(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM vol_volumes WHERE host = $1",
            &[&volumes.volume_host()],
        )
        .await?;
    let caps = json!({
        "pool_name": volumes.driver.backend_name(),
        "volume_backend_name": stats.backend_name,
        "storage_protocol": stats.storage_protocol,
        "vendor_name": VENDOR_NAME,
        "driver_version": env!("CARGO_PKG_VERSION"),
        "total_capacity_gb": stats.total_capacity_gb,
        "free_capacity_gb": stats.free_capacity_gb,
        "allocated_capacity_gb": allocated,
        "reserved_percentage": 0,
        "thin_provisioning_support": stats.thin_provisioning,
        "thick_provisioning_support": !stats.thin_provisioning,
        "QoS_support": false,
        "timestamp": crate::api::views::timestamp(&ferrostack_store::now_rfc3339()),
    });
    Ok(match caps {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// The vendor the backend reports.
pub const VENDOR_NAME: &str = "Ferrostack";

/// Whether a volume of a type with `extra_specs` may be placed on this backend now: its
/// `cinder-volume` service is enabled and its pool satisfies the specs.
pub async fn check_backend(
    volumes: &Volumes,
    extra_specs: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let host = heartbeat::volume_service_host(volumes);
    let service = heartbeat::find(&volumes.db, &host, heartbeat::VOLUME_BINARY).await?;
    if service.is_some_and(|s| s.disabled) {
        return Err(NoValidBackend(format!("The volume service of {host} is disabled.")).into());
    }
    if extra_specs.is_empty() {
        return Ok(());
    }
    let caps = pool_capabilities(volumes).await?;
    if let Some((key, req)) = unsatisfied(extra_specs, &caps) {
        return Err(NoValidBackend(format!(
            "Volume type extra spec requirement \"{key}={req}\" does not match the capabilities \
             of {}.",
            volumes.volume_host()
        ))
        .into());
    }
    Ok(())
}

/// The first extra spec the capabilities do not satisfy (see the module documentation).
pub fn unsatisfied<'a>(
    extra_specs: &'a BTreeMap<String, String>,
    caps: &Map<String, Value>,
) -> Option<(&'a str, &'a str)> {
    for (key, req) in extra_specs {
        let mut scope: Vec<&str> = key.split(':').collect();
        let explicit = scope.len() > 1 && scope[0] == "capabilities";
        if scope.len() > 1 && !explicit {
            continue;
        }
        if explicit {
            scope.remove(0);
        }
        let mut cap = caps.get(scope[0]);
        for part in &scope[1..] {
            cap = cap.and_then(|c| c.get(part));
        }
        let Some(cap) = cap else {
            if explicit {
                return Some((key, req));
            }
            continue;
        };
        let values: Vec<&Value> = match cap {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        if !values.iter().any(|v| spec_matches(v, req)) {
            return Some((key, req));
        }
    }
    None
}

/// A capability as Python's `float(x)`.
fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// oslo's `bool_from_string` (not strict): true for the true words, else false.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "t" | "true" | "on" | "y" | "yes"
        ),
        _ => false,
    }
}

/// Cinder's `extra_specs_ops.match(value, req)`: an operator (`=`, `==`, `!=`, `>=`, `<=`,
/// `<in>`, `<is>`, `<or>`, `s==`, `s!=`, `s<`, `s<=`, `s>`, `s>=`) and its operand, or else
/// equality with the whole requirement (a string capability only: Python's `1 == "1"` is
/// false).
pub fn spec_matches(value: &Value, req: &str) -> bool {
    let mut words = req.split_whitespace();
    let op = words.next().unwrap_or("");
    let operand = words.next();
    let text = value.as_str();
    let numeric = |f: fn(f64, f64) -> bool| match (as_float(value), operand) {
        (Some(x), Some(y)) => y.parse::<f64>().is_ok_and(|y| f(x, y)),
        _ => false,
    };
    let strings = |f: fn(&str, &str) -> bool| match (text, operand) {
        (Some(x), Some(y)) => f(x, y),
        _ => false,
    };
    match op {
        "=" | ">=" => numeric(|x, y| x >= y),
        "==" => numeric(|x, y| x == y),
        "!=" => numeric(|x, y| x != y),
        "<=" => numeric(|x, y| x <= y),
        "<in>" => strings(|x, y| x.contains(y)),
        "<is>" => operand.is_some_and(|y| truthy(value) == truthy(&json!(y))),
        "s==" => strings(|x, y| x == y),
        "s!=" => strings(|x, y| x != y),
        "s<" => strings(|x, y| x < y),
        "s<=" => strings(|x, y| x <= y),
        "s>" => strings(|x, y| x > y),
        "s>=" => strings(|x, y| x >= y),
        "<or>" => {
            let choices: Vec<&str> = req.split_whitespace().collect();
            choices
                .chunks(2)
                .any(|pair| pair.len() == 2 && text == Some(pair[1]))
        }
        _ => text == Some(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Map<String, Value> {
        match json!({
            "storage_protocol": "file", "vendor_name": "Ferrostack", "total_capacity_gb": 1000.0,
            "thin_provisioning_support": true, "nested": {"inner": "x"},
            "protocols": ["iSCSI", "file"],
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn specs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extra_specs_operators_follow_cinder() {
        let file = json!("file");
        assert!(spec_matches(&file, "file"));
        assert!(!spec_matches(&file, "iSCSI"));
        assert!(spec_matches(&file, "<in> fi"));
        assert!(spec_matches(&file, "<or> nfs <or> file"));
        assert!(!spec_matches(&file, "<or> nfs <or> iSCSI"));
        assert!(spec_matches(&file, "s>= e"));
        assert!(spec_matches(&json!(1000.0), ">= 500"));
        assert!(!spec_matches(&json!(1000.0), "== 500"));
        assert!(!spec_matches(&json!(1000.0), "1000"));
        assert!(spec_matches(&json!(true), "<is> True"));
        assert!(!spec_matches(&json!(false), "<is> True"));
        assert!(!spec_matches(&json!(true), "True"));
    }

    #[test]
    fn reported_capabilities_must_satisfy_the_specs() {
        let caps = caps();
        assert_eq!(
            unsatisfied(
                &specs(&[("storage_protocol", "file"), ("vendor_name", "Ferrostack")]),
                &caps
            ),
            None
        );
        assert_eq!(
            unsatisfied(&specs(&[("vendor_name", "Open Source")]), &caps),
            Some(("vendor_name", "Open Source"))
        );
        assert_eq!(
            unsatisfied(&specs(&[("capabilities:nested:inner", "x")]), &caps),
            None
        );
        assert!(unsatisfied(&specs(&[("capabilities:missing", "x")]), &caps).is_some());
        assert_eq!(unsatisfied(&specs(&[("protocols", "file")]), &caps), None);
        // Other scopes and unknown unscoped keys are not the pool's business.
        assert_eq!(
            unsatisfied(&specs(&[("vendor:feature", "x"), ("tier", "gold")]), &caps),
            None
        );
    }
}
