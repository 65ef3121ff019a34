//! The filters over the metadata of the host's aggregates (`aggregate_*.py`, `type_filter.py`,
//! the `Aggregate*` variants of `io_ops_filter.py` and `num_instances_filter.py`).

use super::HostState;
use super::extra_specs_ops;
use std::collections::{BTreeMap, BTreeSet};

const EXTRA_SPECS_SCOPE: &str = "aggregate_instance_extra_specs";

/// Nova's `aggregate_metadata_get_by_host`: every key of the host's aggregates with all its
/// values, comma-separated values split and trimmed.
fn metadata(host: &HostState) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut all: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for aggregate in &host.aggregates {
        for (key, value) in aggregate.iter() {
            all.entry(key)
                .or_default()
                .extend(value.split(',').map(str::trim));
        }
    }
    all
}

/// Nova's `aggregate_values_from_key`: the values of `key` in the host's aggregates, whole.
fn values_of<'a>(host: &'a HostState, key: &str) -> BTreeSet<&'a str> {
    host.aggregates
        .iter()
        .filter_map(|a| a.get(key).map(String::as_str))
        .collect()
}

/// AggregateInstanceExtraSpecsFilter: each flavor extra spec in the
/// `aggregate_instance_extra_specs:` scope, and each unscoped one, must be met by a value of
/// that key in the host's aggregates (a host in no aggregate with the key fails).
pub(super) fn instance_extra_specs_pass(
    host: &HostState,
    extra_specs: &BTreeMap<String, String>,
) -> bool {
    if extra_specs.is_empty() {
        return true;
    }
    let metadata = metadata(host);
    extra_specs.iter().all(|(key, requirement)| {
        let key = match key.split_once(':') {
            None => key.as_str(),
            Some((EXTRA_SPECS_SCOPE, rest)) => rest,
            Some(_) => return true,
        };
        metadata.get(key).is_some_and(|values| {
            values
                .iter()
                .any(|v| extra_specs_ops::matches(v, requirement))
        })
    })
}

/// AggregateImagePropertiesIsolation: for each metadata key of the host's aggregates (only keys
/// under `prefix` when one is configured) that names a property the image sets, the image's
/// value must be one of the key's values. Only Nova's image property names count, legacy names
/// included (Nova no longer filters on arbitrary properties).
pub(super) fn image_properties_isolation_pass(
    host: &HostState,
    image_properties: &BTreeMap<String, String>,
    prefix: Option<&str>,
) -> bool {
    metadata(host).iter().all(|(key, options)| {
        if prefix.is_some_and(|p| !key.starts_with(p)) {
            return true;
        }
        match image_property(image_properties, key) {
            Some(value) if !value.is_empty() => options.contains(value),
            _ => true,
        }
    })
}

/// AggregateMultiTenancyIsolation: a host in an aggregate with `filter_tenant_id*` keys takes
/// only the projects those keys list.
pub(super) fn multi_tenancy_pass(host: &HostState, project_id: &str) -> bool {
    let allowed: BTreeSet<&str> = metadata(host)
        .into_iter()
        .filter(|(key, _)| key.starts_with("filter_tenant_id"))
        .flat_map(|(_, values)| values)
        .collect();
    allowed.is_empty() || allowed.contains(project_id)
}

/// AggregateTypeAffinityFilter: a host whose aggregates have `instance_type` takes only the
/// flavors those values name (comma-separated).
pub(super) fn type_affinity_pass(host: &HostState, flavor_name: &str) -> bool {
    let values = values_of(host, "instance_type");
    values.is_empty()
        || values
            .iter()
            .any(|v| v.split(',').any(|name| name.trim() == flavor_name))
}

/// The smallest integer value of `key` in the host's aggregates, else `default` (also when a
/// value is no integer, as Nova falls back then).
pub(super) fn min_number(host: &HostState, key: &str, default: i64) -> i64 {
    let values: Result<Vec<i64>, _> = values_of(host, key)
        .into_iter()
        .map(|v| v.trim().parse::<i64>())
        .collect();
    match values {
        Ok(values) => values.into_iter().min().unwrap_or(default),
        Err(_) => {
            tracing::warn!(host = %host.host, key, "aggregate value is no integer");
            default
        }
    }
}

/// The image's value of Nova's image property `key` (set under its name or a legacy one).
fn image_property<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    if IMAGE_PROPERTIES.binary_search(&key).is_err() {
        return None;
    }
    props.get(key).map(String::as_str).or_else(|| {
        LEGACY_IMAGE_PROPERTIES
            .iter()
            .filter(|(_, new)| *new == key)
            .find_map(|(old, _)| props.get(*old).map(String::as_str))
    })
}

/// Nova's image property names (`ImageMetaProps` fields), sorted.
const IMAGE_PROPERTIES: &[&str] = &[
    "hw_architecture",
    "hw_auto_disk_config",
    "hw_boot_menu",
    "hw_cdrom_bus",
    "hw_cpu_cores",
    "hw_cpu_max_cores",
    "hw_cpu_max_sockets",
    "hw_cpu_max_threads",
    "hw_cpu_policy",
    "hw_cpu_realtime_mask",
    "hw_cpu_sockets",
    "hw_cpu_thread_policy",
    "hw_cpu_threads",
    "hw_device_id",
    "hw_disk_bus",
    "hw_disk_type",
    "hw_emulation_architecture",
    "hw_ephemeral_encryption",
    "hw_ephemeral_encryption_secret_uuid",
    "hw_firmware_stateless",
    "hw_firmware_type",
    "hw_floppy_bus",
    "hw_input_bus",
    "hw_ipxe_boot",
    "hw_locked_memory",
    "hw_machine_type",
    "hw_maxphysaddr_bits",
    "hw_maxphysaddr_mode",
    "hw_mem_encryption",
    "hw_mem_encryption_model",
    "hw_mem_page_size",
    "hw_numa_cpus",
    "hw_numa_mem",
    "hw_numa_nodes",
    "hw_pci_numa_affinity_policy",
    "hw_pmu",
    "hw_pointer_model",
    "hw_qemu_guest_agent",
    "hw_redirected_usb_ports",
    "hw_rescue_bus",
    "hw_rescue_device",
    "hw_rng_model",
    "hw_scsi_model",
    "hw_serial_port_count",
    "hw_sound_model",
    "hw_time_hpet",
    "hw_tpm_model",
    "hw_tpm_version",
    "hw_usb_model",
    "hw_video_model",
    "hw_video_ram",
    "hw_vif_model",
    "hw_vif_multiqueue_enabled",
    "hw_viommu_model",
    "hw_virtio_packed_ring",
    "hw_vm_mode",
    "hw_watchdog_action",
    "img_bdm_v2",
    "img_bittorrent",
    "img_cache_in_nova",
    "img_compression_level",
    "img_config_drive",
    "img_hide_hypervisor_id",
    "img_hv_requested_version",
    "img_hv_type",
    "img_linked_clone",
    "img_mappings",
    "img_owner_id",
    "img_root_device_name",
    "img_signature",
    "img_signature_certificate_uuid",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_use_agent",
    "img_version",
    "os_admin_user",
    "os_command_line",
    "os_distro",
    "os_require_quiesce",
    "os_secure_boot",
    "os_skip_agent_inject_files_at_boot",
    "os_skip_agent_inject_ssh",
    "os_type",
    "traits_required",
];

/// Nova's legacy image property names and the names they stand for.
const LEGACY_IMAGE_PROPERTIES: &[(&str, &str)] = &[
    ("architecture", "hw_architecture"),
    ("owner_id", "img_owner_id"),
    ("vmware_disktype", "hw_disk_type"),
    ("vmware_image_version", "img_version"),
    ("vmware_ostype", "os_distro"),
    ("auto_disk_config", "hw_auto_disk_config"),
    ("ipxe_boot", "hw_ipxe_boot"),
    ("xenapi_device_id", "hw_device_id"),
    ("xenapi_image_compression_level", "img_compression_level"),
    ("vmware_linked_clone", "img_linked_clone"),
    ("xenapi_use_agent", "img_use_agent"),
    ("xenapi_skip_agent_inject_ssh", "os_skip_agent_inject_ssh"),
    (
        "xenapi_skip_agent_inject_files_at_boot",
        "os_skip_agent_inject_files_at_boot",
    ),
    ("cache_in_nova", "img_cache_in_nova"),
    ("vm_mode", "hw_vm_mode"),
    ("bittorrent", "img_bittorrent"),
    ("mappings", "img_mappings"),
    ("block_device_mapping", "img_block_device_mapping"),
    ("bdm_v2", "img_bdm_v2"),
    ("root_device_name", "img_root_device_name"),
    ("hypervisor_version_requires", "img_hv_requested_version"),
    ("hypervisor_type", "img_hv_type"),
];

#[cfg(test)]
mod tests {
    use super::super::testing::{aggregate, host};
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Key-value pairs of a table row.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn host_in(aggregates: &[&[(&str, &str)]]) -> HostState {
        let mut h = host("a", 1, 0);
        h.aggregates = aggregates.iter().map(|m| aggregate(m)).collect();
        h
    }

    #[test]
    fn image_property_names_are_sorted_for_the_search() {
        assert!(IMAGE_PROPERTIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn instance_extra_specs_against_aggregate_metadata() {
        let ssd = host_in(&[&[("ssd", "true"), ("speed", "10")], &[("gpu", "a, b")]]);
        let bare = host_in(&[]);
        // (host, specs, expected)
        let table: Vec<(&HostState, Pairs<'_>, bool)> = vec![
            (&ssd, &[], true),
            (&bare, &[], true),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:ssd", "true")],
                true,
            ),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:ssd", "false")],
                false,
            ),
            (
                &bare,
                &[("aggregate_instance_extra_specs:ssd", "true")],
                false,
            ),
            (&ssd, &[("ssd", "true")], true),
            (&bare, &[("ssd", "true")], false),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:speed", ">= 5")],
                true,
            ),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:speed", ">= 50")],
                false,
            ),
            (&ssd, &[("aggregate_instance_extra_specs:gpu", "b")], true),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:gpu", "<or> c <or> a")],
                true,
            ),
            (
                &ssd,
                &[("aggregate_instance_extra_specs:gpu", "a, b")],
                false,
            ),
            // Other scopes are not this filter's.
            (&bare, &[("hw:cpu_policy", "dedicated")], true),
            (&bare, &[("capabilities:hypervisor_type", "QEMU")], true),
            // Every spec must hold.
            (
                &ssd,
                &[("ssd", "true"), ("aggregate_instance_extra_specs:gpu", "c")],
                false,
            ),
        ];
        for (i, (h, specs, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                instance_extra_specs_pass(h, &map(specs)),
                expected,
                "row {i}"
            );
        }
    }

    #[test]
    fn image_properties_isolation() {
        let linux = host_in(&[&[("os_distro", "ubuntu,debian"), ("ssd", "true")]]);
        let arm = host_in(&[&[("hw_architecture", "aarch64")]]);
        let scoped = host_in(&[&[("isolation.os_distro", "windows"), ("os_distro", "x")]]);
        // (host, image properties, namespace prefix, expected)
        let table: Vec<(&HostState, Pairs<'_>, Option<&str>, bool)> = vec![
            (&linux, &[("os_distro", "debian")], None, true),
            (&linux, &[("os_distro", "windows")], None, false),
            (&linux, &[], None, true),
            (&linux, &[("os_distro", "")], None, true),
            // A property that is no Nova image property is not filtered on.
            (&linux, &[("ssd", "false")], None, true),
            // Legacy names stand for the new ones.
            (&arm, &[("architecture", "x86_64")], None, false),
            (&arm, &[("architecture", "aarch64")], None, true),
            (&arm, &[("hw_architecture", "aarch64")], None, true),
            // With a namespace, only its keys count (and those never name a property).
            (&scoped, &[("os_distro", "linux")], Some("isolation."), true),
            (&scoped, &[("os_distro", "linux")], None, false),
        ];
        for (i, (h, props, prefix, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                image_properties_isolation_pass(h, &map(props), prefix),
                expected,
                "row {i}"
            );
        }
    }

    #[test]
    fn multi_tenancy_isolation() {
        let private = host_in(&[
            &[("filter_tenant_id", "p1,p2")],
            &[("filter_tenant_id2", "p3")],
        ]);
        let open = host_in(&[&[("ssd", "true")]]);
        // (host, project, expected)
        let table = [
            (&private, "p1", true),
            (&private, "p2", true),
            (&private, "p3", true),
            (&private, "p4", false),
            (&open, "p4", true),
        ];
        for (h, project, expected) in table {
            assert_eq!(multi_tenancy_pass(h, project), expected, "{project}");
        }
        assert!(multi_tenancy_pass(&host_in(&[]), "anyone"));
    }

    #[test]
    fn type_affinity_and_per_aggregate_limits() {
        let small = host_in(&[&[("instance_type", "m1.tiny, m1.small")]]);
        assert!(type_affinity_pass(&small, "m1.small"));
        assert!(!type_affinity_pass(&small, "m1.large"));
        assert!(type_affinity_pass(&host_in(&[]), "m1.large"));
        let limited = host_in(&[
            &[("max_io_ops_per_host", "4")],
            &[("max_io_ops_per_host", "2")],
        ]);
        assert_eq!(min_number(&limited, "max_io_ops_per_host", 8), 2);
        assert_eq!(min_number(&host_in(&[]), "max_io_ops_per_host", 8), 8);
        let broken = host_in(&[&[("max_io_ops_per_host", "many")]]);
        assert_eq!(min_number(&broken, "max_io_ops_per_host", 8), 8);
    }
}
