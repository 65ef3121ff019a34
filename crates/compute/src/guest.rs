//! What an instance row means to a hypervisor host: its metadata documents and the
//! [`GuestBuild`] the conductor sends to the agent.

use crate::db::instances::Instance;
use crate::metadata::{InstanceMetadata, Key, random_seed};
use crate::network::Vif;
use crate::rpc::{GuestBuild, ImageRef, Interface};
use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;

/// The metadata documents' input for `inst` (served by the metadata service and written to
/// its config drive).
pub fn instance_metadata(inst: &Instance) -> InstanceMetadata {
    let d = &inst.data;
    InstanceMetadata {
        uuid: inst.uuid.clone(),
        internal_id: inst.id as u64,
        name: d.display_name.clone(),
        hostname: d.hostname.clone(),
        project_id: inst.project_id.clone(),
        availability_zone: d.availability_zone.clone().unwrap_or_default(),
        launch_index: d.launch_index as u32,
        reservation_id: d.reservation_id.clone(),
        flavor_name: d.flavor.name.clone(),
        meta: d.metadata.clone(),
        keys: d
            .keys
            .iter()
            .map(|k| Key {
                name: k.name.clone(),
                key_type: k.key_type.clone(),
                data: k.public_key.clone(),
            })
            .collect(),
        user_data: d
            .user_data
            .as_deref()
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok()),
        fixed_ipv4: d
            .vifs
            .iter()
            .flat_map(|v| &v.fixed_ips)
            .find(|ip| ip.version == 4)
            .map(|ip| ip.address.clone()),
        floating_ipv4: d
            .vifs
            .iter()
            .flat_map(|v| &v.fixed_ips)
            .filter(|ip| ip.version == 4)
            .find_map(|ip| ip.floating_ips.first().cloned()),
        security_groups: Vec::new(),
        network_data: network_data(&d.vifs),
        random_seed: random_seed(),
        password: d.password.clone().unwrap_or_default(),
    }
}

/// The agent's build request for `inst`.
pub fn guest_build(inst: &Instance, name_template: &str) -> GuestBuild {
    let d = &inst.data;
    let image_ref = |id: &str, format: &str| ImageRef {
        id: id.to_string(),
        disk_format: format.to_string(),
        size: None,
    };
    let config_drive = (d.config_drive == "True").then(|| {
        instance_metadata(inst)
            .config_drive_files()
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    });
    GuestBuild {
        uuid: inst.uuid.clone(),
        domain_name: inst.domain_name(name_template),
        display_name: d.display_name.clone(),
        vcpus: d.flavor.vcpus.max(1) as u32,
        memory_mb: d.flavor.memory_mb.max(1) as u64,
        root_gb: d.flavor.root_gb.max(0) as u64,
        image: ImageRef {
            id: d.image_ref.clone(),
            disk_format: d.spec.image_disk_format.clone(),
            size: d.spec.image_size,
        },
        kernel: (!d.kernel_id.is_empty()).then(|| image_ref(&d.kernel_id, "aki")),
        ramdisk: (!d.ramdisk_id.is_empty()).then(|| image_ref(&d.ramdisk_id, "ari")),
        kernel_cmdline: d.kernel_cmdline.clone(),
        config_drive,
        interfaces: d
            .vifs
            .iter()
            .filter(|v| v.bound())
            .map(|v| Interface {
                port_id: v.port_id.clone(),
                mac_address: v.mac_address.clone(),
                tap: v.tap(),
                mtu: v.mtu,
            })
            .collect(),
        volumes: crate::volumes::guest_disks(inst),
    }
}

/// Nova's `network_data.json` (`netutils.get_network_metadata`): a link per bound port, a
/// network per address (`ipv4_dhcp` on a DHCP subnet, else static with its netmask and
/// default route), the DNS servers as services.
pub fn network_data(vifs: &[Vif]) -> serde_json::Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services: Vec<serde_json::Value> = Vec::new();
    for vif in vifs.iter().filter(|v| v.bound()) {
        let tap = vif.tap();
        links.push(json!({
            "id": tap,
            "vif_id": vif.port_id,
            "type": "bridge",
            "mtu": vif.mtu,
            "ethernet_mac_address": vif.mac_address,
        }));
        for ip in &vif.fixed_ips {
            let id = format!("network{}", networks.len());
            let network = match (ip.dhcp, ip.version) {
                (true, 4) => json!({"id": id, "type": "ipv4_dhcp", "link": tap,
                                    "network_id": vif.network_id}),
                (_, version) => {
                    let prefix: Option<ipnet::IpNet> = ip.cidr.parse().ok();
                    let (netmask, default) = match version {
                        4 => (prefix.map(|p| p.netmask().to_string()), "0.0.0.0"),
                        _ => (prefix.map(|p| p.prefix_len().to_string()), "::"),
                    };
                    let routes: Vec<serde_json::Value> = ip
                        .gateway
                        .iter()
                        .map(|gw| json!({"network": default, "netmask": if version == 4 { default } else { "0" }, "gateway": gw}))
                        .collect();
                    json!({"id": id, "type": format!("ipv{version}"), "link": tap,
                           "ip_address": ip.address, "netmask": netmask, "routes": routes,
                           "network_id": vif.network_id,
                           "services": ip.dns_nameservers.iter().map(|d| json!({"type": "dns", "address": d})).collect::<Vec<_>>()})
                }
            };
            networks.push(network);
            for dns in &ip.dns_nameservers {
                let service = json!({"type": "dns", "address": dns});
                if !services.contains(&service) {
                    services.push(service);
                }
            }
        }
    }
    json!({"links": links, "networks": networks, "services": services})
}
