//! `POST /servers` (`servers.py:create`, `compute/api.py:_provision_instances`): validation
//! in Nova's order, then the instances, their `create` actions and group memberships are
//! written in one quota-checked transaction, and scheduling starts in the background.

use super::block_devices;
use super::is_admin;
use crate::api::availability_zones as zones;
use crate::api::flavors::find_visible;
use crate::api::services::boolean;
use crate::api::{AppState, Mv, at_least};
use crate::conductor;
use crate::db::instances::{
    self as idb, CreateRefusal, FlavorCopy, Instance, InstanceData, KeyCopy, NewAction, RequestSpec,
};
use crate::db::quotas;
use crate::db::{self, Flavor};
use crate::network::{NetworkRequest, RequestedNic, ResolvedNetworks};
use crate::service::{ImageInfo, db_error};
use crate::states::{power, task, vm};
use axum::{Extension, Json, http::HeaderMap, http::StatusCode, response::IntoResponse};
use base64::Engine;
use ferrostack_api::{ApiError, Auth, JsonBody, RequestId};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;

static METADATA_KEY: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9-_:. ]{1,255}$").expect("valid regex"));
static UUID: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
    )
    .expect("valid regex")
});

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message.into())
}

fn invalid(field: &str, value: &Value) -> ApiError {
    bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}."
    ))
}

/// Keys a `server` object may have at microversion `mv`.
fn allowed_keys(mv: &Mv) -> Vec<&'static str> {
    let mut keys = vec![
        "name",
        "imageRef",
        "flavorRef",
        "networks",
        "block_device_mapping_v2",
        "block_device_mapping",
        "min_count",
        "max_count",
        "return_reservation_id",
        "key_name",
        "user_data",
        "metadata",
        "availability_zone",
        "config_drive",
        "adminPass",
        "accessIPv4",
        "accessIPv6",
        "OS-DCF:diskConfig",
        "security_groups",
        "scheduler_hints",
    ];
    if !at_least(mv, 2, 57) {
        keys.push("personality");
    }
    for (minor, key) in [
        (19, "description"),
        (52, "tags"),
        (63, "trusted_image_certificates"),
        (74, "host"),
        (74, "hypervisor_hostname"),
        (90, "hostname"),
    ] {
        if at_least(mv, 2, minor) {
            keys.push(key);
        }
    }
    keys
}

/// A positive count (int or digit string).
fn count(v: Option<&Value>, field: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() => {
            s.parse().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(Some(n)),
        _ => Err(invalid(field, v)),
    }
}

/// Nova's `sanitize_hostname`.
pub fn sanitize_hostname(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| if matches!(c, ' ' | '_' | '.') { '-' } else { c })
        .filter(|c| c.is_alphanumeric() || *c == '-')
        .collect();
    let lower = replaced.to_lowercase();
    let cut: String = lower.chars().take(63).collect();
    cut.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// A 12-character admin password.
fn generate_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 12];
    openssl::rand::rand_bytes(&mut bytes).expect("the system random generator works");
    bytes
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect()
}

/// The requested host or node (2.74) that is no compute host, if any (Nova's
/// `_validate_host_or_node`; one node per host, named after it).
async fn missing_destination(
    c: &crate::service::Compute,
    host: Option<&str>,
    node: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(wanted) = host.or(node) else {
        return Ok(None);
    };
    let found = db::nodes::node(&c.store, wanted)
        .await
        .map_err(db_error)?
        .filter(|n| node.is_none_or(|name| n.hypervisor_hostname() == name));
    Ok(match found {
        Some(_) => None,
        None => Some(wanted.to_string()),
    })
}

fn string_field<'a>(s: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match s.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v)),
        Some(v) => Err(invalid(key, v)),
    }
}

/// `networks` at the request's microversion (Nova's `_get_requested_networks`), not yet
/// checked against the networking service.
fn parse_networks(s: &Map<String, Value>, mv: &Mv) -> Result<NetworkRequest, ApiError> {
    let format = |what: String| bad(format!("Bad networks format: {what}"));
    match s.get("networks") {
        None if at_least(mv, 2, 37) => Err(bad("'networks' is a required property")),
        None => Ok(NetworkRequest::Auto),
        Some(Value::String(v)) if at_least(mv, 2, 37) && v == "auto" => Ok(NetworkRequest::Auto),
        Some(Value::String(v)) if at_least(mv, 2, 37) && v == "none" => Ok(NetworkRequest::None),
        Some(Value::Array(list)) if list.is_empty() && !at_least(mv, 2, 37) => {
            Ok(NetworkRequest::Auto)
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            let mut nics = Vec::new();
            for n in list {
                let Value::Object(item) = n else {
                    return Err(invalid("networks", n));
                };
                let mut allowed = vec!["uuid", "port", "fixed_ip"];
                if at_least(mv, 2, 32) {
                    allowed.push("tag");
                }
                if let Some(k) = item.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(bad(format!(
                        "Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                let text = |key: &str| -> Result<Option<String>, ApiError> {
                    match item.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(v)) => Ok(Some(v.clone())),
                        Some(v) => Err(invalid(&format!("networks/{key}"), v)),
                    }
                };
                let port_id = text("port")?;
                let network_id = text("uuid")?;
                if let Some(p) = &port_id
                    && !UUID.is_match(p)
                {
                    return Err(invalid("port", &json!(p)));
                }
                if port_id.is_none() {
                    match &network_id {
                        Some(u) if UUID.is_match(u) => {}
                        Some(u) => {
                            return Err(format(format!(
                                "network uuid is not in proper format ({u})"
                            )));
                        }
                        None => {
                            return Err(bad(
                                "Bad network format: missing 'uuid' or 'port'".to_string()
                            ));
                        }
                    }
                }
                let fixed_ip = text("fixed_ip")?;
                if let Some(ip) = &fixed_ip
                    && ip.parse::<std::net::IpAddr>().is_err()
                {
                    return Err(bad(format!("Invalid fixed IP address ({ip})")));
                }
                nics.push(RequestedNic {
                    // A port brings its network; `uuid` with a port is ignored, as in Nova.
                    network_id: if port_id.is_some() { None } else { network_id },
                    port_id,
                    fixed_ip,
                });
            }
            Ok(NetworkRequest::List(nics))
        }
        Some(v) => Err(invalid("networks", v)),
    }
}

/// `security_groups`: `[{"name": ...}]` (names or ids), none meaning the project's default.
fn security_group_names(s: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let Some(v) = s.get("security_groups") else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = v else {
        return Err(invalid("security_groups", v));
    };
    let mut names = Vec::new();
    for item in list {
        match item.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n.len() <= 255 => {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
            _ => return Err(invalid("security_groups", item)),
        }
    }
    Ok(names)
}

/// The interfaces the servers get: `networks` checked and resolved by the networking service;
/// without one, only `auto` (no interface) or `none`.
async fn requested_networks(
    c: &crate::service::Compute,
    auth: &Auth,
    project: &str,
    request: &NetworkRequest,
    security_groups: &[String],
    max_count: i64,
) -> Result<ResolvedNetworks, ApiError> {
    if let NetworkRequest::List(nics) = request
        && max_count > 1
        && nics.iter().any(|n| n.port_id.is_some())
    {
        return Err(bad(
            "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.",
        ));
    }
    match (c.network(), request) {
        (Some(network), _) => {
            network
                .resolve(project, is_admin(auth), request, security_groups)
                .await
        }
        (None, NetworkRequest::List(_)) => Err(bad(
            "Networks cannot be requested: this cloud has no networking service; use \"none\" or \"auto\".",
        )),
        (None, _) => Ok(ResolvedNetworks::default()),
    }
}

fn metadata(s: &Map<String, Value>, limit: i64) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    match s.get("metadata") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Value::String(v) = v else {
                    return Err(invalid("metadata", &json!(m)));
                };
                if !METADATA_KEY.is_match(k) || v.chars().count() > 255 {
                    return Err(invalid("metadata", &json!(m)));
                }
                out.insert(k.clone(), v.clone());
            }
        }
        Some(v) => return Err(invalid("metadata", v)),
    }
    if limit >= 0 && out.len() as i64 > limit {
        return Err(ApiError::forbidden("Quota exceeded for metadata_items"));
    }
    Ok(out)
}

/// Flavor vs image checks (`_check_requested_image`).
fn check_image_fits(
    image: &ImageInfo,
    flavor: &Flavor,
    auth: &Auth,
    project: &str,
) -> Result<(), ApiError> {
    if image.min_ram > flavor.memory_mb {
        return Err(bad("Flavor's memory is too small for requested image."));
    }
    if flavor.root_gb == 0 {
        if !auth.allows(
            "os_compute_api:servers:create:zero_disk_flavor",
            &json!({"project_id": project}),
        ) {
            return Err(ApiError::forbidden(
                "Only volume-backed servers are allowed for flavors with zero disk.",
            ));
        }
        return Ok(());
    }
    let disk_bytes = flavor.root_gb << 30;
    let image_bytes = image.virtual_size.or(image.size).unwrap_or(0);
    if image.min_disk > flavor.root_gb || image_bytes > disk_bytes {
        return Err(bad(format!(
            "Flavor's disk is too small for requested image. Flavor disk is {disk_bytes} bytes, image is {image_bytes} bytes."
        )));
    }
    Ok(())
}

async fn find_image(
    state: &AppState,
    auth: &Auth,
    id: &str,
) -> Result<Option<ImageInfo>, ApiError> {
    state
        .0
        .images
        .image(id, auth.project_id(), is_admin(auth))
        .await
        .map_err(ApiError::internal)
}

/// `POST /servers`: 202 with the first server's id, links and admin password.
pub async fn create(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Extension(request_id): Extension<RequestId>,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    let c = state.0.clone();
    let Some(s) = body.get("server").and_then(Value::as_object) else {
        return Err(bad("'server' is a required property"));
    };
    let allowed = allowed_keys(&mv);
    if let Some(extra) = s.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let project = auth.project_id().unwrap_or_default().to_string();
    let target = json!({"project_id": project, "user_id": auth.user.id});
    auth.enforce("os_compute_api:servers:create", &target)?;
    let name = match s.get("name") {
        Some(Value::String(n)) => {
            let n = n.trim();
            if n.is_empty() || n.chars().count() > 255 {
                return Err(invalid("name", &json!(n)));
            }
            n.to_string()
        }
        Some(v) => return Err(invalid("name", v)),
        None => return Err(bad("'name' is a required property")),
    };
    // Availability zone, possibly with a forced host or node (`az:host`, `az::node`,
    // `az:host:node`), then the 2.74 requested destination (Nova's order).
    let requested = match string_field(s, "availability_zone")? {
        Some(text) => zones::parse_requested_zone(text)?,
        None => Default::default(),
    };
    let (force_host, force_node) = (requested.forced_host, requested.forced_node);
    let mut zone = requested.zone;
    if force_host.is_some() || force_node.is_some() {
        auth.enforce("os_compute_api:servers:create:forced_host", &target)?;
        zone = zones::zone_for_forced_host(&c, zone, force_host.as_deref()).await?;
    }
    let (requested_host, requested_node) = if at_least(&mv, 2, 74) {
        (
            string_field(s, "host")?.map(String::from),
            string_field(s, "hypervisor_hostname")?.map(String::from),
        )
    } else {
        (None, None)
    };
    if requested_host.is_some() || requested_node.is_some() {
        auth.enforce("compute:servers:create:requested_destination", &target)?;
        if force_host.is_some() || force_node.is_some() {
            return Err(bad(
                "One mechanism with host and/or hypervisor_hostname and another mechanism \
                 with zone:host:node are mutually exclusive.",
            ));
        }
    }
    if let Some(z) = &zone
        && force_host.is_none()
        && !zones::available_zones(&c).await?.contains(z)
    {
        return Err(bad("The requested availability zone is not available"));
    }
    if let Some(missing) =
        missing_destination(&c, requested_host.as_deref(), requested_node.as_deref()).await?
    {
        return Err(bad(format!("Compute host {missing} could not be found.")));
    }
    let boot = block_devices::boot_request(s)?;
    let image_ref = boot.image_ref.clone();
    // A server booted from a volume has no image (its root disk is the volume's).
    let image = match boot.boots_from_volume() {
        true => ImageInfo::default(),
        false => {
            if !UUID.is_match(&image_ref) {
                return Err(bad("Invalid imageRef provided."));
            }
            let Some(image) = find_image(&state, &auth, &image_ref).await? else {
                return Err(bad("Can not find requested image"));
            };
            if image.status != "active" {
                return Err(bad(format!("Image {image_ref} is not active.")));
            }
            image
        }
    };
    let network_request = parse_networks(s, &mv)?;
    let flavor_ref = match s.get("flavorRef") {
        Some(Value::String(f)) if !f.is_empty() => f.rsplit('/').next().unwrap_or(f).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(invalid("flavorRef", v)),
        None => return Err(bad("'flavorRef' is a required property")),
    };
    let flavor = find_visible(&c, &auth, &flavor_ref)
        .await
        .map_err(|_| bad(format!("Flavor {flavor_ref} could not be found.")))?;
    if !boot.boots_from_volume() {
        check_image_fits(&image, &flavor, &auth, &project)?;
    }
    // Kernel and ramdisk of a kernel/ramdisk image (`_handle_kernel_and_ramdisk`).
    let mut kernel_id = String::new();
    let mut ramdisk_id = String::new();
    for (prop, slot) in [
        ("kernel_id", &mut kernel_id),
        ("ramdisk_id", &mut ramdisk_id),
    ] {
        if let Some(id) = image.properties.get(prop).filter(|v| !v.is_empty()) {
            match find_image(&state, &auth, id).await? {
                Some(i) if i.status == "active" => *slot = id.clone(),
                _ => return Err(bad(format!("Image {id} could not be found."))),
            }
        }
    }
    let keys = match string_field(s, "key_name")? {
        Some(k) => {
            let pairs = db::keypairs(&c.store, &auth.user.id)
                .await
                .map_err(db_error)?;
            let Some(pair) = pairs.into_iter().find(|p| p.name == k) else {
                return Err(bad("Invalid key_name provided."));
            };
            vec![KeyCopy {
                name: pair.name,
                key_type: pair.key_type,
                public_key: pair.public_key,
            }]
        }
        None => Vec::new(),
    };
    let limits = quotas::limits(&c.store, &project, &c.config)
        .await
        .map_err(db_error)?;
    let meta = metadata(s, limits.metadata_items)?;
    let user_data = match string_field(s, "user_data")? {
        Some(u) => {
            if u.len() > 65535 {
                return Err(invalid("user_data", &json!("...")));
            }
            let cleaned: String = u.split_whitespace().collect();
            if base64::engine::general_purpose::STANDARD
                .decode(&cleaned)
                .is_err()
            {
                return Err(bad("User data needs to be valid base 64."));
            }
            Some(cleaned)
        }
        None => None,
    };
    let config_drive = match s.get("config_drive") {
        None | Some(Value::Null) => false,
        Some(v) => boolean(v).ok_or_else(|| invalid("config_drive", v))?,
    };
    let min = count(s.get("min_count"), "min_count")?;
    let max = count(s.get("max_count"), "max_count")?;
    let min_count = min.unwrap_or(1);
    let max_count = max.unwrap_or(min_count);
    if min_count > max_count {
        return Err(bad("min_count must be <= max_count"));
    }
    let explicit_hostname = if at_least(&mv, 2, 90) {
        string_field(s, "hostname")?.map(str::to_string)
    } else {
        None
    };
    if explicit_hostname.is_some() && max_count > 1 {
        return Err(bad(
            "Unable to set hostname with max_count > 1; use name instead.",
        ));
    }
    for image_id in boot
        .volumes
        .iter()
        .filter_map(|v| v.create.as_ref()?.image_id.as_ref())
    {
        match find_image(&state, &auth, image_id).await? {
            Some(i) if i.status == "active" => {}
            Some(_) => return Err(bad(format!("Image {image_id} is not active."))),
            None => return Err(bad("Can not find requested image")),
        }
    }
    let volume_records =
        block_devices::volume_records(&c, &project, is_admin(&auth), &boot.volumes, max_count)
            .await?;
    let group_names = security_group_names(s)?;
    let resolved = requested_networks(
        &c,
        &auth,
        &project,
        &network_request,
        &group_names,
        max_count,
    )
    .await?;
    let description = if at_least(&mv, 2, 19) {
        match s.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) if d.chars().count() <= 255 => Some(d.clone()),
            Some(v) => return Err(invalid("description", v)),
        }
    } else {
        None
    };
    let tags: Vec<String> = match s.get("tags") {
        None => Vec::new(),
        Some(Value::Array(list)) if list.len() <= 50 => {
            let mut tags = Vec::new();
            for t in list {
                match t.as_str() {
                    Some(t) if !t.is_empty() && t.len() <= 60 && !t.contains(['/', ',']) => {
                        tags.push(t.to_string())
                    }
                    _ => return Err(invalid("tags", t)),
                }
            }
            tags
        }
        Some(v) => return Err(invalid("tags", v)),
    };
    let access = |key: &str| -> Result<String, ApiError> {
        let Some(v) = string_field(s, key)? else {
            return Ok(String::new());
        };
        match v.parse::<std::net::IpAddr>() {
            Ok(ip) if (key == "accessIPv4") == ip.is_ipv4() => Ok(ip.to_string()),
            _ => Err(invalid(key, &json!(v))),
        }
    };
    let access_ip_v4 = access("accessIPv4")?;
    let access_ip_v6 = access("accessIPv6")?;
    let auto_disk_config = match string_field(s, "OS-DCF:diskConfig")? {
        None | Some("MANUAL") => false,
        Some("AUTO") => true,
        Some(v) => return Err(invalid("OS-DCF:diskConfig", &json!(v))),
    };
    // Scheduler hints (`os:scheduler_hints`, or the old alias).
    let hints = body
        .get("os:scheduler_hints")
        .or_else(|| body.get("OS-SCH-HNT:scheduler_hints"))
        .cloned()
        .unwrap_or(json!({}));
    let hint_list = |k: &str| -> Vec<String> {
        match hints.get(k) {
            Some(Value::String(v)) => vec![v.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let group = match hint_list("group").first() {
        Some(g) => {
            let group = db::server_group(&c.store, g).await.map_err(db_error)?;
            match group.filter(|x| is_admin(&auth) || x.project_id == project) {
                Some(x) => Some(x.id),
                None => return Err(bad(format!("Invalid server group {g}."))),
            }
        }
        None => None,
    };
    let admin_pass = match string_field(s, "adminPass")? {
        Some(p) => p.to_string(),
        None => generate_password(),
    };
    // The instances.
    let now = ferrostack_store::now_rfc3339();
    let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let spec = RequestSpec {
        group: group.clone(),
        different_host: hint_list("different_host"),
        same_host: hint_list("same_host"),
        force_host,
        force_node,
        requested_host,
        requested_node,
        tried_hosts: Vec::new(),
        image_properties: image.properties.clone(),
        image_disk_format: image.disk_format.clone().unwrap_or_else(|| "raw".into()),
        image_size: image.size,
        requested_networks: resolved.nics,
        security_groups: resolved.security_groups,
    };
    let mut instances = Vec::new();
    for index in 0..max_count {
        let uuid = uuid::Uuid::new_v4().to_string();
        let (display_name, hostname) = if max_count > 1 {
            (
                format!("{name}-{}", index + 1),
                format!("{}-{}", sanitize_hostname(&name), index + 1),
            )
        } else {
            let h = explicit_hostname
                .clone()
                .unwrap_or_else(|| sanitize_hostname(&name));
            (name.clone(), h)
        };
        let hostname = if hostname.is_empty() {
            format!("Server-{uuid}")
        } else {
            hostname
        };
        instances.push(Instance {
            id: 0,
            uuid,
            project_id: project.clone(),
            user_id: auth.user.id.clone(),
            host: None,
            vm_state: vm::BUILDING.into(),
            task_state: Some(task::SCHEDULING.into()),
            power_state: power::NOSTATE,
            deleted: false,
            created_at: now.clone(),
            updated_at: now.clone(),
            launched_at: None,
            deleted_at: None,
            generation: 0,
            data: InstanceData {
                display_name,
                display_description: description.clone(),
                hostname,
                reservation_id: reservation_id.clone(),
                launch_index: index,
                image_ref: image_ref.clone(),
                kernel_id: kernel_id.clone(),
                ramdisk_id: ramdisk_id.clone(),
                kernel_cmdline: image.properties.get("os_command_line").cloned(),
                flavor: FlavorCopy {
                    flavorid: flavor.flavorid.clone(),
                    name: flavor.name.clone(),
                    vcpus: flavor.vcpus,
                    memory_mb: flavor.memory_mb,
                    root_gb: flavor.root_gb,
                    ephemeral_gb: flavor.ephemeral_gb,
                    swap: flavor.swap,
                    extra_specs: flavor.extra_specs.clone(),
                },
                key_name: keys.first().map(|k| k.name.clone()),
                keys: keys.clone(),
                user_data: user_data.clone(),
                availability_zone: zone
                    .clone()
                    .or_else(|| Some(c.config.default_availability_zone.clone())),
                pinned_availability_zone: zone.clone(),
                config_drive: if config_drive {
                    "True".into()
                } else {
                    String::new()
                },
                access_ip_v4: access_ip_v4.clone(),
                access_ip_v6: access_ip_v6.clone(),
                auto_disk_config,
                locked_by: None,
                locked_reason: None,
                metadata: meta.clone(),
                tags: tags.clone(),
                spec: spec.clone(),
                node: None,
                terminated_at: None,
                admin_pass_set: true,
                vifs: Vec::new(),
                volumes: block_devices::for_server(&volume_records, &request_id.0),
                password: None,
            },
        });
    }
    let quota = limits.server_quota();
    let action = NewAction {
        action: "create",
        request_id: &request_id.0,
        user_id: &auth.user.id,
        project_id: &project,
        now: &now,
    };
    let group_quota = group.as_deref().map(|g| (g, limits.server_group_members));
    match idb::create_instances(&c.store, &mut instances, quota, group_quota, &action)
        .await
        .map_err(db_error)?
    {
        Ok(()) => {}
        Err(CreateRefusal::OverQuota(over)) => {
            let names: Vec<&str> = over.iter().map(|o| o.0).collect();
            let (_, req, used, allowed) = over[0];
            return Err(ApiError::forbidden(format!(
                "Quota exceeded for {}: Requested {req}, but already used {used} of {allowed} {}",
                names.join(", "),
                names.join(", ")
            )));
        }
        Err(CreateRefusal::GroupFull) => {
            return Err(ApiError::forbidden(
                "Quota exceeded, too many servers in group",
            ));
        }
    }
    for inst in &instances {
        tracing::info!(uuid = %inst.uuid, name = %inst.data.display_name, "server create accepted");
        crate::crashpoint::hit("api:after-server-recorded");
        if let Err(e) = block_devices::make_volumes(&c, inst, &auth.ctx.token).await {
            // As in Nova, the server errors (the volumes made so far stay on it, deleted
            // with it when marked so).
            let message = format!(
                "Build of instance {} aborted: Failure prepping block device: {e:#}",
                inst.uuid
            );
            conductor::fail_build(&c, inst, 500, &message)
                .await
                .map_err(ApiError::internal)?;
            continue;
        }
        let c = c.clone();
        let uuid = inst.uuid.clone();
        tokio::spawn(async move {
            if let Err(e) = conductor::schedule_and_build(&c, &uuid).await {
                tracing::error!(uuid, error = %e, "scheduling failed");
            }
        });
    }
    let first = &instances[0];
    if s.get("return_reservation_id")
        .and_then(boolean)
        .unwrap_or(false)
    {
        return Ok((
            StatusCode::ACCEPTED,
            HeaderMap::new(),
            Json(json!({"reservation_id": reservation_id})),
        ));
    }
    let links = super::view::links(&c, &first.uuid);
    let location = links[0]["href"].as_str().unwrap_or_default().to_string();
    let mut server = Map::new();
    server.insert("id".into(), json!(first.uuid));
    server.insert("links".into(), links);
    server.insert(
        "OS-DCF:diskConfig".into(),
        json!(if auto_disk_config { "AUTO" } else { "MANUAL" }),
    );
    let groups = match s.get("security_groups") {
        Some(Value::Array(list)) => json!(list),
        _ => json!([{"name": "default"}]),
    };
    server.insert("security_groups".into(), groups);
    server.insert("adminPass".into(), json!(admin_pass));
    let mut headers = HeaderMap::new();
    if let Ok(v) = location.parse() {
        headers.insert("location", v);
    }
    Ok((
        StatusCode::ACCEPTED,
        headers,
        Json(json!({"server": Value::Object(server)})),
    ))
}
