//! ComputeCapabilitiesFilter (`compute_capabilities_filter.py`): the flavor's extra specs in
//! the `capabilities:` scope, and unscoped ones that name a host attribute, are requirements on
//! the host's attributes (`capabilities:cpu_info:arch` walks into the JSON of `cpu_info`),
//! compared with [`extra_specs_ops`](super::extra_specs_ops) on the value's text as Python's
//! `str()` writes it.

use super::HostState;
use super::extra_specs_ops;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SCOPE: &str = "capabilities";

/// Whether `host` meets the capability requirements of `extra_specs`.
pub(super) fn passes(host: &HostState, extra_specs: &BTreeMap<String, String>) -> bool {
    extra_specs.iter().all(|(key, requirement)| {
        // Nova turns `hw:maxphysaddr_bits` into a requirement on the CPU.
        if key == "hw:maxphysaddr_bits" {
            let requirement = format!(">= {requirement}");
            return meets(host, &["cpu_info", "maxphysaddr", "bits"], &requirement);
        }
        let scope: Vec<&str> = key.split(':').collect();
        match scope.as_slice() {
            // An unscoped key counts only when it names a host attribute.
            [name] => attribute(host, name).is_none() || meets(host, &scope, requirement),
            [SCOPE, rest @ ..] => meets(host, rest, requirement),
            _ => true,
        }
    })
}

fn meets(host: &HostState, scope: &[&str], requirement: &str) -> bool {
    lookup(host, scope).is_some_and(|value| extra_specs_ops::matches(&py_str(&value), requirement))
}

/// The value at `scope`: a host attribute, then keys into its JSON (a text attribute is parsed
/// as JSON before a key is looked up in it). `None` when any step finds nothing.
fn lookup(host: &HostState, scope: &[&str]) -> Option<Value> {
    let (first, rest) = scope.split_first()?;
    let mut value = attribute(host, first).filter(|v| !v.is_null())?;
    for key in rest {
        if let Value::String(text) = &value {
            value = serde_json::from_str(text).ok()?;
        }
        value = match value {
            Value::Object(mut map) => map.remove(*key)?,
            _ => return None,
        };
        if value.is_null() {
            return None;
        }
    }
    Some(value)
}

/// A host attribute by Nova's `HostState` name: `None` for a name that is no attribute,
/// `Some(Null)` for one the host did not report (a requirement on it fails, as in Nova).
fn attribute(host: &HostState, name: &str) -> Option<Value> {
    let hv = &host.hypervisor;
    let used = |rc: &str| {
        host.capacity.get(rc).copied().unwrap_or(0) - host.free.get(rc).copied().unwrap_or(0)
    };
    Some(match name {
        "host" => json!(host.host),
        "nodename" | "hypervisor_hostname" => json!(hv.hostname),
        "uuid" => json!(host.node_uuid),
        "hypervisor_type" => json!(hv.hypervisor_type),
        "hypervisor_version" => json!(hv.version),
        "cpu_info" => json!(hv.cpu_info),
        "supported_instances" => json!(hv.supported_instances),
        "vcpus_total" => json!(hv.vcpus),
        "vcpus_used" => json!(used("VCPU")),
        "total_usable_ram_mb" => json!(hv.memory_mb),
        "free_ram_mb" => json!(hv.memory_mb - used("MEMORY_MB")),
        "total_usable_disk_gb" => json!(hv.disk_gb),
        "free_disk_mb" => json!((hv.disk_gb - used("DISK_GB")) * 1024),
        "disk_mb_used" => json!(used("DISK_GB") * 1024),
        "num_instances" => json!(host.num_instances),
        "num_io_ops" => json!(host.busy_instances),
        "cpu_allocation_ratio" => json!(hv.cpu_allocation_ratio),
        "ram_allocation_ratio" => json!(hv.ram_allocation_ratio),
        "disk_allocation_ratio" => json!(hv.disk_allocation_ratio),
        _ => return None,
    })
}

/// Python's `str()` of a value (`4.0`, `True`, `['a', 'b']`, `{'k': 1}`).
fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value decoded from JSON.
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                format!("{f:.1}")
            }
            _ => n.to_string(),
        },
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::host;
    use super::*;

    fn specs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flavor_specs_against_host_attributes() {
        let mut h = host("compute-1", 4096, 1);
        h.hypervisor.version = Some(8002000);
        h.hypervisor.cpu_info = Some(
            r#"{"arch": "x86_64", "vendor": "Intel", "features": ["sse", "avx"],
            "topology": {"sockets": 1, "cores": 4}, "maxphysaddr": {"bits": 46}}"#
                .into(),
        );
        // Host a has 100 GiB of disk, 2 VCPUs, 4096 MiB; 8 VCPU and all the RAM free.
        h.capacity.insert("VCPU".into(), 10);
        // (key, requirement, expected)
        let table: &[(&str, &str, bool)] = &[
            ("capabilities:hypervisor_type", "QEMU", true),
            ("capabilities:hypervisor_type", "s== QEMU", true),
            ("capabilities:hypervisor_type", "s!= QEMU", false),
            ("capabilities:hypervisor_type", "<or> Xen <or> QEMU", true),
            ("capabilities:hypervisor_version", ">= 8000000", true),
            ("capabilities:hypervisor_version", "<= 7000000", false),
            ("capabilities:hypervisor_hostname", "compute-1", true),
            ("capabilities:host", "s< compute-2", true),
            ("capabilities:cpu_info:arch", "x86_64", true),
            ("capabilities:cpu_info:vendor", "AMD", false),
            ("capabilities:cpu_info:features", "<in> avx", true),
            ("capabilities:cpu_info:features", "<all-in> sse avx", true),
            (
                "capabilities:cpu_info:features",
                "<all-in> sse avx512",
                false,
            ),
            ("capabilities:cpu_info:topology:cores", ">= 4", true),
            ("capabilities:cpu_info:topology:cores", "== 8", false),
            ("capabilities:cpu_info:topology:threads", "1", false),
            ("capabilities:cpu_info:arch:deeper", "x", false),
            ("capabilities:no_such_attribute", "x", false),
            ("capabilities:vcpus_used", "== 2", true),
            ("capabilities:free_ram_mb", ">= 4096", true),
            ("capabilities:free_disk_mb", "= 102400", true),
            ("capabilities:num_io_ops", "1", true),
            ("capabilities:cpu_allocation_ratio", "4.0", true),
            ("capabilities:cpu_allocation_ratio", "== 4", true),
            (
                "capabilities:supported_instances",
                "<in> 'x86_64', 'qemu'",
                true,
            ),
            ("hw:maxphysaddr_bits", "40", true),
            ("hw:maxphysaddr_bits", "48", false),
            // Unscoped: a host attribute is a requirement, anything else is ignored.
            ("hypervisor_type", "QEMU", true),
            ("hypervisor_type", "Xen", false),
            ("num_instances", "== 1", true),
            ("ssd", "true", true),
            // Other scopes are other filters' business.
            ("aggregate_instance_extra_specs:ssd", "true", true),
            ("hw:cpu_policy", "dedicated", true),
        ];
        for (key, requirement, expected) in table {
            assert_eq!(
                passes(&h, &specs(&[(key, requirement)])),
                *expected,
                "{key} = {requirement}"
            );
        }
        // All of the specs must hold.
        assert!(!passes(
            &h,
            &specs(&[
                ("capabilities:hypervisor_type", "QEMU"),
                ("capabilities:cpu_info:arch", "aarch64"),
            ])
        ));
        assert!(passes(&h, &BTreeMap::new()));
    }

    #[test]
    fn cpu_info_that_is_no_json_fails_a_nested_requirement() {
        let mut h = host("a", 1, 0);
        h.hypervisor.cpu_info = Some("not json".into());
        assert!(!passes(
            &h,
            &specs(&[("capabilities:cpu_info:arch", "x86_64")])
        ));
        assert!(passes(&h, &specs(&[("capabilities:cpu_info", "not json")])));
    }

    #[test]
    fn attributes_a_host_did_not_report_fail_requirements() {
        let mut h = host("a", 1, 0);
        h.hypervisor.hypervisor_type = None;
        h.hypervisor.version = None;
        h.hypervisor.cpu_info = None;
        for (key, requirement) in [
            ("capabilities:hypervisor_type", "QEMU"),
            ("hypervisor_type", "QEMU"),
            ("capabilities:hypervisor_version", ">= 0"),
            ("capabilities:cpu_info:arch", "x86_64"),
        ] {
            assert!(!passes(&h, &specs(&[(key, requirement)])), "{key}");
        }
        assert!(passes(&h, &specs(&[("capabilities:host", "a")])));
    }

    #[test]
    fn values_are_written_as_python_writes_them() {
        let table = [
            (json!(4), "4"),
            (json!(4.0), "4.0"),
            (json!(1.5), "1.5"),
            (json!(true), "True"),
            (json!("text"), "text"),
            (json!(["a", 1]), "['a', 1]"),
            (json!({"k": "v", "n": null}), "{'k': 'v', 'n': None}"),
        ];
        for (value, text) in table {
            assert_eq!(py_str(&value), text);
        }
    }
}
