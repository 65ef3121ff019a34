//! The server body (`views/servers.py`), field by field as the microversion and the caller's
//! rights allow (Tempest's response schemas refuse extra fields).

use crate::api::{Mv, at_least};
use crate::db::instances::{Fault, Instance};
use crate::service::Compute;
use crate::states::{self, vm};
use serde_json::{Map, Value, json};

/// What the caller may see beyond the common fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visibility {
    /// `os-extended-server-attributes` (admin).
    pub extended_attributes: bool,
    /// `servers:show:host_status` (admin).
    pub host_status: bool,
    /// `servers:show:flavor-extra-specs`.
    pub flavor_extra_specs: bool,
    /// Fault tracebacks (admin).
    pub fault_details: bool,
}

/// Which body: the full one (show, detail) or the short one PUT answers with below 2.75.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Full,
    Update,
}

/// `self` and `bookmark` links of a server.
pub fn links(c: &Compute, uuid: &str) -> Value {
    let base = c.base_url();
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/servers/{uuid}")},
        {"rel": "bookmark", "href": format!("{base}/servers/{uuid}")},
    ])
}

/// `YYYY-MM-DDTHH:MM:SSZ` from a stored timestamp.
pub fn api_time(stored: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => stored.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone), the `OS-SRV-USG` and action format.
pub fn usage_time(stored: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        Err(_) => stored.to_string(),
    }
}

/// Nova's `hostId`: sha224 of project id + host, `""` when unscheduled.
pub fn host_id(project_id: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => openssl::hash::hash(
            openssl::hash::MessageDigest::sha224(),
            format!("{project_id}{h}").as_bytes(),
        )
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default(),
        _ => String::new(),
    }
}

fn flavor(c: &Compute, inst: &Instance, mv: &Mv, vis: Visibility) -> Value {
    let f = &inst.data.flavor;
    if at_least(mv, 2, 47) {
        let mut b = Map::new();
        b.insert("vcpus".into(), json!(f.vcpus));
        b.insert("ram".into(), json!(f.memory_mb));
        b.insert("disk".into(), json!(f.root_gb));
        b.insert("ephemeral".into(), json!(f.ephemeral_gb));
        b.insert("swap".into(), json!(f.swap));
        b.insert("original_name".into(), json!(f.name));
        if vis.flavor_extra_specs {
            b.insert("extra_specs".into(), json!(f.extra_specs));
        }
        Value::Object(b)
    } else {
        json!({"id": f.flavorid, "links": [
            {"rel": "bookmark", "href": format!("{}/flavors/{}", c.base_url(), f.flavorid)}
        ]})
    }
}

fn image(c: &Compute, inst: &Instance) -> Value {
    if inst.data.image_ref.is_empty() {
        return json!("");
    }
    json!({"id": inst.data.image_ref, "links": [
        {"rel": "bookmark", "href": format!("{}/images/{}", c.base_url(), inst.data.image_ref)}
    ]})
}

fn fault(f: &Fault, vis: Visibility) -> Value {
    let mut b = Map::new();
    b.insert("code".into(), json!(f.code));
    b.insert("created".into(), json!(api_time(&f.created_at)));
    b.insert("message".into(), json!(f.message));
    if vis.fault_details || f.code != 500 {
        b.insert(
            "details".into(),
            json!(f.details.clone().unwrap_or_default()),
        );
    }
    Value::Object(b)
}

/// The server body.
pub fn server(
    c: &Compute,
    inst: &Instance,
    fault_row: Option<&Fault>,
    host_status: Option<&str>,
    mv: &Mv,
    vis: Visibility,
    shape: Shape,
) -> Value {
    let d = &inst.data;
    let status = states::status(&inst.vm_state, inst.task_state.as_deref(), inst.deleted);
    let mut b = Map::new();
    b.insert("id".into(), json!(inst.uuid));
    b.insert("name".into(), json!(d.display_name));
    b.insert("status".into(), json!(status));
    b.insert("tenant_id".into(), json!(inst.project_id));
    b.insert("user_id".into(), json!(inst.user_id));
    b.insert("metadata".into(), json!(d.metadata));
    b.insert(
        "hostId".into(),
        json!(host_id(&inst.project_id, inst.host.as_deref())),
    );
    b.insert("image".into(), image(c, inst));
    b.insert("flavor".into(), flavor(c, inst, mv, vis));
    b.insert("created".into(), json!(api_time(&inst.created_at)));
    b.insert("updated".into(), json!(api_time(&inst.updated_at)));
    b.insert("addresses".into(), addresses(&d.vifs));
    b.insert("accessIPv4".into(), json!(d.access_ip_v4));
    b.insert("accessIPv6".into(), json!(d.access_ip_v6));
    b.insert("links".into(), links(c, &inst.uuid));
    b.insert(
        "OS-DCF:diskConfig".into(),
        json!(if d.auto_disk_config { "AUTO" } else { "MANUAL" }),
    );
    if matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    ) {
        b.insert("progress".into(), json!(0));
    }
    if let Some(f) = fault_row
        && matches!(status, "ERROR" | "DELETED")
    {
        b.insert("fault".into(), fault(f, vis));
    }
    if at_least(mv, 2, 9) {
        b.insert("locked".into(), json!(d.locked_by.is_some()));
    }
    if at_least(mv, 2, 19) {
        b.insert("description".into(), json!(d.display_description));
    }
    if at_least(mv, 2, 26) {
        b.insert("tags".into(), json!(d.tags));
    }
    if at_least(mv, 2, 63) {
        b.insert("trusted_image_certificates".into(), Value::Null);
    }
    if at_least(mv, 2, 73) {
        b.insert("locked_reason".into(), json!(d.locked_reason));
    }
    if at_least(mv, 2, 16) && vis.host_status {
        b.insert("host_status".into(), json!(host_status.unwrap_or("")));
    }
    if at_least(mv, 2, 90) {
        b.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(d.hostname));
    }
    if shape == Shape::Update && !at_least(mv, 2, 75) {
        return Value::Object(b);
    }
    b.insert(
        "OS-EXT-AZ:availability_zone".into(),
        json!(d.availability_zone.clone().unwrap_or_default()),
    );
    b.insert("config_drive".into(), json!(d.config_drive));
    b.insert("key_name".into(), json!(d.key_name));
    b.insert(
        "OS-SRV-USG:launched_at".into(),
        json!(inst.launched_at.as_deref().map(usage_time)),
    );
    b.insert(
        "OS-SRV-USG:terminated_at".into(),
        json!(d.terminated_at.as_deref().map(usage_time)),
    );
    b.insert("OS-EXT-STS:task_state".into(), json!(inst.task_state));
    b.insert(
        "OS-EXT-STS:vm_state".into(),
        json!(if inst.deleted {
            vm::DELETED
        } else {
            inst.vm_state.as_str()
        }),
    );
    b.insert("OS-EXT-STS:power_state".into(), json!(inst.power_state));
    let attached: Vec<Value> = d
        .volumes
        .iter()
        .map(|r| match at_least(mv, 2, 3) {
            true => json!({"id": r.volume_id, "delete_on_termination": r.delete_on_termination}),
            false => json!({"id": r.volume_id}),
        })
        .collect();
    b.insert(
        "os-extended-volumes:volumes_attached".into(),
        Value::Array(attached),
    );
    if vis.extended_attributes {
        b.insert("OS-EXT-SRV-ATTR:host".into(), json!(inst.host));
        b.insert(
            "OS-EXT-SRV-ATTR:hypervisor_hostname".into(),
            json!(d.node.clone().or(inst.host.clone())),
        );
        b.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(inst.domain_name(&c.config.instance_name_template)),
        );
        if at_least(mv, 2, 3) {
            if !at_least(mv, 2, 90) {
                b.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(d.hostname));
            }
            b.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(d.kernel_id));
            b.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(d.ramdisk_id));
            b.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(d.launch_index));
            b.insert(
                "OS-EXT-SRV-ATTR:reservation_id".into(),
                json!(d.reservation_id),
            );
            b.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            b.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(d.user_data));
        }
    }
    if at_least(mv, 2, 96) {
        b.insert(
            "pinned_availability_zone".into(),
            json!(d.pinned_availability_zone),
        );
    }
    Value::Object(b)
}

/// Nova's `addresses`: per network name, the fixed addresses of the server's bound ports,
/// each followed by its floating addresses (`{}` before the ports are bound).
pub fn addresses(vifs: &[crate::network::Vif]) -> Value {
    let mut out = serde_json::Map::new();
    for vif in vifs.iter().filter(|v| v.bound()) {
        let list = out
            .entry(vif.network_name.clone())
            .or_insert_with(|| json!([]));
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        let entry = |version: u8, addr: &str, kind: &str| {
            json!({
                "version": version,
                "addr": addr,
                "OS-EXT-IPS:type": kind,
                "OS-EXT-IPS-MAC:mac_addr": vif.mac_address,
            })
        };
        for ip in &vif.fixed_ips {
            list.push(entry(ip.version, &ip.address, "fixed"));
            for floating in &ip.floating_ips {
                let version = if floating.contains(':') { 6 } else { 4 };
                list.push(entry(version, floating, "floating"));
            }
        }
    }
    Value::Object(out)
}
