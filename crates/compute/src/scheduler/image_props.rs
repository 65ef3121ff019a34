//! ImagePropertiesFilter (`image_props_filter.py`): an image that names an architecture,
//! hypervisor type or VM mode (`hw_architecture`, `img_hv_type`, `hw_vm_mode`, or their
//! legacy names) needs a host that reports that combination among its supported instances;
//! then an `img_hv_requested_version` (e.g. `>=6.0,<8.0`) must hold for the host's hypervisor
//! version. A host that reported no supported instances fails any such image.

use super::HostState;
use std::collections::BTreeMap;

/// Whether `host` can run an image with `props`.
pub(super) fn passes(host: &HostState, props: &BTreeMap<String, String>) -> bool {
    let prop = |name: &str, legacy: &str| {
        props
            .get(name)
            .or_else(|| props.get(legacy))
            .map(String::as_str)
    };
    let wanted = [
        prop("hw_architecture", "architecture").map(canonical_arch),
        prop("img_hv_type", "hypervisor_type").map(canonical_hv_type),
        prop("hw_vm_mode", "vm_mode").map(canonical_vm_mode),
    ];
    if wanted.iter().all(Option::is_none) {
        return true;
    }
    let hv = &host.hypervisor;
    let offered = hv.supported_instances.iter().any(|(arch, hv_type, mode)| {
        [arch, hv_type, mode]
            .into_iter()
            .zip(&wanted)
            .all(|(have, want)| want.as_ref().is_none_or(|w| w == have))
    });
    let required = prop("img_hv_requested_version", "hypervisor_version_requires");
    offered
        && match (hv.version, required) {
            (Some(version), Some(required)) if version != 0 => version_satisfies(version, required),
            _ => true,
        }
}

/// Nova's `Architecture.canonicalize`: lower case, the i386 family is `i686`, `amd64` is
/// `x86_64`.
fn canonical_arch(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "i386" | "i486" | "i586" | "x86_32" | "x86_32p" => "i686".into(),
        "amd64" | "x64" => "x86_64".into(),
        _ => name,
    }
}

/// Nova's `HVType.canonicalize`: lower case, `xapi` is `xen`.
fn canonical_hv_type(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name == "xapi" { "xen".into() } else { name }
}

/// Nova's `VMMode.canonicalize`: lower case, `pv` is `xen`, `hv` and `baremetal` are `hvm`.
fn canonical_vm_mode(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "pv" => "xen".into(),
        "hv" | "baremetal" => "hvm".into(),
        _ => name,
    }
}

/// Whether the version `major*1000000 + minor*1000 + release` meets every comparison of
/// `predicate` (`>=6.0,<8.0`; operators `<`, `<=`, `==`, `!=`, `>`, `>=`), as Nova's
/// `VersionPredicate` on `convert_version_to_str`. An unreadable predicate is not met.
fn version_satisfies(version: i64, predicate: &str) -> bool {
    let have = version_parts(version);
    predicate.split(',').all(|clause| {
        let clause = clause.trim();
        let op_len = clause
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(clause.len());
        let (op, wanted) = clause.split_at(op_len);
        let Some(wanted) = parse_version(wanted.trim()) else {
            return false;
        };
        let order = compare(&have, &wanted);
        match op {
            "<" => order.is_lt(),
            "<=" => order.is_le(),
            "==" => order.is_eq(),
            "!=" => order.is_ne(),
            ">" => order.is_gt(),
            ">=" => order.is_ge(),
            _ => false,
        }
    })
}

/// `7002022` → `[7, 2, 22]` (Nova's `convert_version_to_str`).
fn version_parts(mut version: i64) -> Vec<u64> {
    let mut parts = Vec::new();
    while version > 0 {
        parts.insert(0, (version % 1000) as u64);
        version /= 1000;
    }
    parts
}

fn parse_version(text: &str) -> Option<Vec<u64>> {
    text.split('.').map(|p| p.parse().ok()).collect()
}

/// Compares dotted versions, missing parts counting as 0.
fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let len = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::super::testing::host;
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn images_need_a_supported_instance_of_the_host() {
        // The test host runs x86_64 qemu/kvm hvm guests, hypervisor 7.2.22.
        let h = host("a", 1, 0);
        // (properties, expected)
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("os_distro", "cirros")], true),
            (&[("hw_architecture", "x86_64")], true),
            (&[("hw_architecture", "aarch64")], false),
            (&[("architecture", "AMD64")], true),
            (&[("img_hv_type", "qemu")], true),
            (&[("img_hv_type", "KVM")], true),
            (&[("hypervisor_type", "xen")], false),
            (&[("hw_vm_mode", "hvm")], true),
            (&[("vm_mode", "hv")], true),
            (&[("hw_vm_mode", "exe")], false),
            (
                &[("hw_architecture", "x86_64"), ("img_hv_type", "qemu")],
                true,
            ),
            (
                &[("hw_architecture", "i686"), ("img_hv_type", "qemu")],
                false,
            ),
            // The version counts only with a compute property, as in Nova.
            (&[("img_hv_requested_version", ">=9.0")], true),
            (
                &[
                    ("img_hv_type", "qemu"),
                    ("img_hv_requested_version", ">=6.0,<8.0"),
                ],
                true,
            ),
            (
                &[
                    ("img_hv_type", "qemu"),
                    ("img_hv_requested_version", ">=7.2.23"),
                ],
                false,
            ),
            (
                &[
                    ("img_hv_type", "qemu"),
                    ("hypervisor_version_requires", "==7.2.22"),
                ],
                true,
            ),
            (
                &[("img_hv_type", "qemu"), ("img_hv_requested_version", "~7")],
                false,
            ),
        ];
        for (pairs, expected) in table {
            assert_eq!(passes(&h, &props(pairs)), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn a_host_that_reported_nothing_fails_images_that_ask() {
        let mut h = host("a", 1, 0);
        h.hypervisor.supported_instances.clear();
        h.hypervisor.version = None;
        assert!(!passes(&h, &props(&[("hw_architecture", "x86_64")])));
        assert!(passes(&h, &props(&[("os_distro", "cirros")])));
    }

    #[test]
    fn versions_compare_as_novas_predicates() {
        assert_eq!(version_parts(7_002_022), [7, 2, 22]);
        assert_eq!(version_parts(1000), [1, 0]);
        assert!(version_satisfies(7_002_022, ">= 7.2"));
        assert!(version_satisfies(7_002_000, "==7.2"));
        assert!(version_satisfies(7_002_022, "!=7.2"));
        assert!(!version_satisfies(7_002_022, "<7.2.22"));
        assert!(version_satisfies(7_002_022, "<=7.2.22, >6"));
        assert!(!version_satisfies(7_002_022, ">=x"));
        assert!(!version_satisfies(7_002_022, "7.2"));
    }
}
