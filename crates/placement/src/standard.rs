//! The standard resource classes (`os-resource-classes` 1.1.0) and traits (`os-traits` 3.9.0).

/// `os_resource_classes.STANDARDS`, in order (the index is the class's internal id).
pub const STANDARD_RESOURCE_CLASSES: &[&str] = &[
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
];

/// Every trait of `os_traits.get_traits()` in os-traits 3.9.0, one per line, sorted.
///
/// Generated (and committed) with:
/// `pip download os-traits==3.9.0 --no-deps` into a throwaway venv, `pip install` the wheel and
/// `pbr`, then `python -c "import os_traits; print('\n'.join(sorted(os_traits.get_traits())))"`
/// (377 names: 270 `HW_*`, 102 `COMPUTE_*`, `STORAGE_DISK_HDD`/`_SSD`,
/// `MISC_SHARES_VIA_AGGREGATE`, `OWNER_CYBORG`, `OWNER_NOVA`).
const OS_TRAITS: &str = include_str!("os_traits_3.9.0.txt");

/// The standard traits.
pub fn standard_traits() -> impl Iterator<Item = &'static str> {
    OS_TRAITS.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Whether `name` is a standard resource class.
pub fn is_standard_class(name: &str) -> bool {
    STANDARD_RESOURCE_CLASSES.contains(&name)
}

/// `^CUSTOM_[A-Z0-9_]+$`, at most 255 characters.
pub fn is_custom_name(name: &str) -> bool {
    name.len() <= 255
        && name.strip_prefix("CUSTOM_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_upstream_counts() {
        assert_eq!(STANDARD_RESOURCE_CLASSES.len(), 21);
        let traits: Vec<_> = standard_traits().collect();
        assert_eq!(traits.len(), 377);
        assert_eq!(traits.iter().filter(|t| t.starts_with("HW_")).count(), 270);
        assert_eq!(
            traits.iter().filter(|t| t.starts_with("COMPUTE_")).count(),
            102
        );
        for t in [
            "COMPUTE_STATUS_DISABLED",
            "OWNER_NOVA",
            "MISC_SHARES_VIA_AGGREGATE",
        ] {
            assert!(traits.contains(&t), "{t}");
        }
        assert!(is_custom_name("CUSTOM_X1_Y"));
        assert!(!is_custom_name("CUSTOM_"));
        assert!(!is_custom_name("VCPU"));
        assert!(!is_custom_name("CUSTOM_low"));
    }
}
