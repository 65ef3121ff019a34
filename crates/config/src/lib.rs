//! Ferrostack configuration.
//!
//! One TOML file (every key optional; the defaults are documented on the fields and printed by
//! `ferrostack config show`), then environment overrides: `FERROSTACK__<SECTION>__<KEY>=value`
//! (double underscores; the value is parsed as a TOML literal when it is one, else taken as a
//! string), e.g. `FERROSTACK__API__LISTEN=0.0.0.0:9000`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "FERROSTACK__";

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the database, keys and service state. Default `/var/lib/ferrostack`.
    pub state_dir: PathBuf,
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    pub log: LogConfig,
    pub identity: IdentityConfig,
    pub image: ImageConfig,
    pub compute: ComputeConfig,
    pub network: NetworkConfig,
    pub volume: VolumeConfig,
    pub bootstrap: BootstrapConfig,
}

/// The HTTP listener shared by all services.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the single HTTP listener binds. Default `0.0.0.0:8080`.
    pub listen: String,
    /// Base URL clients use to reach the listener (catalog endpoints are built from it).
    /// Default `http://127.0.0.1:8080`.
    pub public_url: String,
    /// Largest accepted JSON request body in bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish on shutdown. Default 10.
    pub shutdown_grace_secs: u64,
}

/// The relational store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://user:pass@host/db`. Empty (default): SQLite file
    /// `ferrostack.db` in the state dir.
    pub url: String,
    /// Connection pool size. Default 8.
    pub max_connections: u32,
}

/// The message bus between services and agents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `in-process` (default; every service and the compute agent in one process) or `amqp`
    /// (RabbitMQ: controllers and `ferrostack compute-agent` hosts talk through the broker).
    pub kind: String,
    /// The broker when `kind = "amqp"`: `amqp://user:password@host:5672/%2f` (`amqps://`
    /// for TLS; `?heartbeat=N` seconds, default 10). Its password is never logged.
    pub url: String,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `ferrostack_identity=debug`. Default `info`.
    pub level: String,
    /// `text` (default) or `json`.
    pub format: String,
}

/// Keystone (identity) settings; names follow keystone.conf where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Token lifetime in seconds (`[token] expiration`). Default 3600.
    pub token_expiration: u64,
    /// Fernet key repository. Empty (default): `fernet-keys` in the state dir.
    pub fernet_key_repository: PathBuf,
    /// Keys kept by `fernet-rotate` (`[fernet_tokens] max_active_keys`). Default 3.
    pub max_active_keys: usize,
    /// bcrypt cost (`[identity] password_hash_rounds`). Default 12.
    pub password_hash_rounds: u32,
    /// Failed authentications before a user is locked out; 0 disables (default, as Keystone).
    pub lockout_failure_attempts: u32,
    /// Seconds a locked-out user stays locked. Default 1800.
    pub lockout_duration: u64,
    /// Days until a password expires; 0 disables (default).
    pub password_expires_days: u32,
    /// Number of previous passwords a new one may not repeat; 0 disables (default).
    pub unique_last_password_count: u32,
    /// Days a password must be in use before the user may change it; 0 disables (default).
    pub minimum_password_age: u32,
    /// Regular expression a new password must match; empty disables (default).
    pub password_regex: String,
    /// Human-readable description of `password_regex`, shown when it does not match.
    pub password_regex_description: String,
    /// Operator policy overrides (YAML). Empty (default): `policy.yaml` in the state dir if present.
    pub policy_file: PathBuf,
    /// Reject tokens whose scope does not match a rule's scope types (oslo.policy `enforce_scope`).
    /// Default true, as current Keystone.
    pub enforce_scope: bool,
}

/// The image service (Glance v2). Option names follow Glance's where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Directory of the filesystem store. Default `<state_dir>/images`.
    pub filesystem_store_datadir: PathBuf,
    /// Directory where `glance-direct` imports are staged. Default `<state_dir>/images-staging`.
    pub node_staging_dir: PathBuf,
    /// Largest image in bytes (upload and stage); 413 beyond. Default 1 TiB.
    pub image_size_cap: u64,
    /// Members per image (negative: unlimited). Default 128.
    pub image_member_quota: i64,
    /// Tags per image (negative: unlimited). Default 128.
    pub image_tag_quota: i64,
    /// Extra properties per image (negative: unlimited). Default 128.
    pub image_property_quota: i64,
    /// Images a project may own (not deleted; negative: unlimited). Default -1.
    pub image_count_total: i64,
    /// Bytes of image data a project may store (negative: unlimited). Default -1.
    pub image_size_total: i64,
    /// Default page size of `GET /v2/images`. Default 25.
    pub limit_param_default: u64,
    /// Largest page size. Default 1000.
    pub api_limit_max: u64,
    /// Import methods offered (`glance-direct`, `web-download`). Default both.
    pub enabled_import_methods: Vec<String>,
    /// Disk format every imported image is converted to with `qemu-img convert` after
    /// inspection (e.g. `qcow2` or `raw`); empty: no conversion. Default empty.
    pub import_convert_to: String,
    /// URI schemes `web-download` may fetch. Default `http`, `https`.
    pub web_download_allowed_schemes: Vec<String>,
    /// Ports `web-download` may fetch from (an empty list allows any). Default 80, 443.
    pub web_download_allowed_ports: Vec<u16>,
    /// Hosts `web-download` may fetch from (empty: any host not disallowed). Default empty.
    /// Loopback, link-local (169.254.0.0/16: the metadata address) and unspecified addresses
    /// are refused unless their host is listed here by name or literal address.
    pub web_download_allowed_hosts: Vec<String>,
    /// Hosts `web-download` may never fetch from. Default empty.
    pub web_download_disallowed_hosts: Vec<String>,
}

/// What `ferrostack up` creates on first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Region of the catalog endpoints. Default `RegionOne`.
    pub region: String,
    /// Create the `demo` project and user. Default true.
    pub demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("/var/lib/ferrostack"),
            api: ApiConfig::default(),
            database: DatabaseConfig::default(),
            bus: BusConfig::default(),
            log: LogConfig::default(),
            identity: IdentityConfig::default(),
            image: ImageConfig::default(),
            compute: ComputeConfig::default(),
            network: NetworkConfig::default(),
            volume: VolumeConfig::default(),
            bootstrap: BootstrapConfig::default(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "0.0.0.0:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1 << 20,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: "in-process".into(),
            url: String::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            token_expiration: 3600,
            fernet_key_repository: PathBuf::new(),
            max_active_keys: 3,
            password_hash_rounds: 12,
            lockout_failure_attempts: 0,
            lockout_duration: 1800,
            password_expires_days: 0,
            unique_last_password_count: 0,
            minimum_password_age: 0,
            password_regex: String::new(),
            password_regex_description: String::new(),
            policy_file: PathBuf::new(),
            enforce_scope: true,
        }
    }
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            filesystem_store_datadir: PathBuf::new(),
            node_staging_dir: PathBuf::new(),
            image_size_cap: 1 << 40,
            image_member_quota: 128,
            image_tag_quota: 128,
            image_property_quota: 128,
            image_count_total: -1,
            image_size_total: -1,
            limit_param_default: 25,
            api_limit_max: 1000,
            enabled_import_methods: vec!["glance-direct".into(), "web-download".into()],
            import_convert_to: String::new(),
            web_download_allowed_schemes: vec!["http".into(), "https".into()],
            web_download_allowed_ports: vec![80, 443],
            web_download_allowed_hosts: Vec::new(),
            web_download_disallowed_hosts: Vec::new(),
        }
    }
}

/// Nova: the compute API, scheduler, conductor and this host's compute agent. Option names
/// follow nova.conf's where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// Run a compute agent in this process (all-in-one). Default true.
    pub agent: bool,
    /// The service user's password, with which the agent downloads images (a
    /// `ferrostack compute-agent` host has no state of the controller's). Empty (default):
    /// read from `service_password_file`. Never logged; `config show` masks it.
    pub service_password: String,
    /// File holding the service user's password. Empty (default):
    /// `<state_dir>/service-password`, which the controller writes on first start.
    pub service_password_file: PathBuf,
    /// This host's name as compute agent (`[DEFAULT] host`). Empty (default): the hostname.
    pub host: String,
    /// `libvirt` (default) or `fake` (in-memory guests, only for control-plane scale tests).
    pub driver: String,
    /// libvirt connection URI. Default `qemu:///system`.
    pub libvirt_uri: String,
    /// `qemu` (software emulation, default: works everywhere) or `kvm`.
    pub virt_type: String,
    /// Where guests' disks, config drives and console logs live (`instances_path`). QEMU runs
    /// as its own user and must traverse every parent, so the default is beside the (private)
    /// state dir rather than in it: `<state_dir>-instances`, e.g. `/var/lib/ferrostack-instances`.
    pub instances_path: PathBuf,
    /// Seconds between agent heartbeats (`report_interval`). Default 10.
    pub report_interval: u64,
    /// A host whose last heartbeat is older than this many seconds is down
    /// (`service_down_time`). Default 60.
    pub service_down_time: u64,
    /// Hosts tried per build before the server goes to ERROR (`[scheduler] max_attempts`). Default 3.
    pub max_attempts: u32,
    /// Seconds a clean shutdown may take before the guest is destroyed (`shutdown_timeout`). Default 60.
    pub shutdown_timeout: u64,
    /// Seconds a new guest waits, paused, for the networking service to report its ports
    /// plugged before the build fails (`vif_plugging_timeout`; 0: do not wait). Default 300.
    pub vif_plugging_timeout: u64,
    /// Allocation ratios reported to Placement. Defaults 4.0 / 1.0 / 1.0 (Nova's initial ratios).
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Memory kept for the host (`reserved_host_memory_mb`). Default 512.
    pub reserved_host_memory_mb: i64,
    /// Disk kept for the host in GiB. Default 0.
    pub reserved_host_disk_gb: i64,
    /// Per-project defaults (`[quota]`; -1 = unlimited): instances 10, cores 20, ram 51200 MiB,
    /// metadata items 128.
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_metadata_items: i64,
    /// Where the metadata service (169.254.169.254's backend, reached through the network
    /// metadata proxy) listens; empty disables it. Default `127.0.0.1:8775`.
    pub metadata_listen: String,
    /// Key of the proxy's `X-Instance-ID-Signature` (`metadata_proxy_shared_secret`). Empty
    /// (default): generated once into the state dir.
    pub metadata_proxy_shared_secret: String,
    /// Hypervisor names of guests (`instance_name_template`; `%08x` is the server's internal
    /// id). Default `instance-%08x`. Two clouds sharing one libvirt need different ones.
    pub instance_name_template: String,
    /// The availability zone of compute hosts (`default_availability_zone`). Default `nova`.
    pub default_availability_zone: String,
    /// Whether guests get a VNC display (`[vnc] enabled`). Default true.
    pub vnc_enabled: bool,
    /// Address guests' VNC servers listen on (`[vnc] server_listen`). Default `127.0.0.1`.
    pub vnc_server_listen: String,
    /// Address the console proxy connects to for this host's guests
    /// (`[vnc] server_proxyclient_address`). Empty (default): `vnc_server_listen`.
    pub vnc_server_proxyclient_address: String,
    /// Seconds a console token stays valid (`[consoleauth] token_ttl`). Default 600.
    pub console_token_ttl: u64,
    /// Where the noVNC websocket proxy listens (nova-novncproxy's `novncproxy_host` and
    /// `novncproxy_port`); empty disables it. Default `0.0.0.0:6080`.
    pub novncproxy_listen: String,
    /// The console URL handed to clients, the token appended (`[vnc] novncproxy_base_url`).
    /// Empty (default): `http://<host of api.public_url>:<port of novncproxy_listen>/vnc_lite.html`.
    pub novncproxy_base_url: String,
    /// The noVNC client files the proxy serves (the `@novnc/novnc` package: `core/`,
    /// `vendor/`; nova-novncproxy's `web`). Empty (default): `<state_dir>/novnc`, where
    /// `make up` puts them.
    pub novncproxy_web: PathBuf,
    /// Weigher multipliers (`[filter_scheduler] *_weight_multiplier`). Defaults 1.0, 1.0, 1.0, -1.0.
    pub ram_weight_multiplier: f64,
    pub cpu_weight_multiplier: f64,
    pub disk_weight_multiplier: f64,
    pub io_ops_weight_multiplier: f64,
    /// Weigher multipliers of soft (anti-)affinity server groups
    /// (`[filter_scheduler] soft_affinity_weight_multiplier`, `soft_anti_affinity_...`).
    /// Defaults 1.0, 1.0.
    pub soft_affinity_weight_multiplier: f64,
    pub soft_anti_affinity_weight_multiplier: f64,
    /// Weigher multiplier of a host's instance count (`num_instances_weight_multiplier`):
    /// positive packs, negative spreads. Default 0.0 (off).
    pub num_instances_weight_multiplier: f64,
    /// The scheduler's filters, in the order they run (`[filter_scheduler] enabled_filters`,
    /// Nova's class names; a TOML list or one comma-separated string). An unknown name stops
    /// start-up. Default Nova's: ComputeFilter, ComputeCapabilitiesFilter,
    /// ImagePropertiesFilter, ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter.
    #[serde(deserialize_with = "list_or_commas")]
    pub enabled_filters: Vec<String>,
    /// The host is picked at random among this many best-weighed hosts (`host_subset_size`,
    /// at least 1). Default 1 (always the best).
    pub host_subset_size: u32,
    /// Shuffle the hosts that share the best weight (`shuffle_best_same_weighed_hosts`).
    /// Default false.
    pub shuffle_best_same_weighed_hosts: bool,
    /// IoOpsFilter: hosts with this many instances mid-operation are skipped
    /// (`max_io_ops_per_host`). Default 8.
    pub max_io_ops_per_host: i64,
    /// NumInstancesFilter: hosts with this many instances are skipped
    /// (`max_instances_per_host`). Default 50.
    pub max_instances_per_host: i64,
    /// AggregateImagePropertiesIsolation looks only at aggregate metadata keys starting with
    /// this namespace and the separator (`aggregate_image_properties_isolation_namespace` /
    /// `_separator`). Defaults empty (every key) and `.`.
    pub aggregate_image_properties_isolation_namespace: String,
    pub aggregate_image_properties_isolation_separator: String,
}

/// A list option given as a TOML list or, as in nova.conf, one comma-separated string (handy
/// in environment overrides).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            agent: true,
            service_password: String::new(),
            service_password_file: PathBuf::new(),
            host: String::new(),
            driver: "libvirt".into(),
            libvirt_uri: "qemu:///system".into(),
            virt_type: "qemu".into(),
            instances_path: PathBuf::new(),
            report_interval: 10,
            service_down_time: 60,
            max_attempts: 3,
            shutdown_timeout: 60,
            vif_plugging_timeout: 300,
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 512,
            reserved_host_disk_gb: 0,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51200,
            quota_metadata_items: 128,
            metadata_listen: "127.0.0.1:8775".into(),
            metadata_proxy_shared_secret: String::new(),
            instance_name_template: "instance-%08x".into(),
            default_availability_zone: "nova".into(),
            vnc_enabled: true,
            vnc_server_listen: "127.0.0.1".into(),
            vnc_server_proxyclient_address: String::new(),
            console_token_ttl: 600,
            novncproxy_listen: "0.0.0.0:6080".into(),
            novncproxy_base_url: String::new(),
            novncproxy_web: PathBuf::new(),
            ram_weight_multiplier: 1.0,
            cpu_weight_multiplier: 1.0,
            disk_weight_multiplier: 1.0,
            io_ops_weight_multiplier: -1.0,
            soft_affinity_weight_multiplier: 1.0,
            soft_anti_affinity_weight_multiplier: 1.0,
            num_instances_weight_multiplier: 0.0,
            enabled_filters: [
                "ComputeFilter",
                "ComputeCapabilitiesFilter",
                "ImagePropertiesFilter",
                "ServerGroupAntiAffinityFilter",
                "ServerGroupAffinityFilter",
            ]
            .map(String::from)
            .to_vec(),
            host_subset_size: 1,
            shuffle_best_same_weighed_hosts: false,
            max_io_ops_per_host: 8,
            max_instances_per_host: 50,
            aggregate_image_properties_isolation_namespace: String::new(),
            aggregate_image_properties_isolation_separator: ".".into(),
        }
    }
}

/// The default console URL: the host clients reach the API at (from `public_url`), the port
/// the proxy listens on (from `listen`, else 6080), and noVNC's lite client page.
pub fn default_novncproxy_base_url(public_url: &str, listen: &str) -> String {
    let authority = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
        None => authority.split(':').next().unwrap_or_default().to_string(),
    };
    let host = if host.is_empty() { "127.0.0.1" } else { &host };
    let port = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(6080);
    format!("http://{host}:{port}/vnc_lite.html")
}

/// Neutron: the networking API and its segment, address and quota settings. Option names follow
/// neutron.conf / ml2_conf.ini where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// VXLAN network identifiers tenant networks get, each `MIN:MAX` (`[ml2_type_vxlan]
    /// vni_ranges`). Default `["1:1000"]`.
    pub vni_ranges: Vec<String>,
    /// The physical networks and the host bridge or interface that carries each
    /// (`physical_interface_mappings`); flat and VLAN networks may only name these. Default
    /// `public = "br-public"` (the external network's host bridge).
    pub physical_interface_mappings: std::collections::BTreeMap<String, String>,
    /// VLAN ranges for tenant networks, `PHYSNET:MIN:MAX` (`[ml2_type_vlan] network_vlan_ranges`).
    /// Default empty (VLAN networks only when an admin names the VLAN).
    pub network_vlan_ranges: Vec<String>,
    /// Segment types tenant networks get, tried in order (`[ml2] tenant_network_types`):
    /// `vxlan` and/or `vlan`. Default `["vxlan"]`.
    pub tenant_network_types: Vec<String>,
    /// MTU of the underlying physical network (`global_physnet_mtu`); VXLAN networks get 50
    /// bytes less (the IPv4 encapsulation overhead). Default 1500.
    pub global_physnet_mtu: u32,
    /// The MAC prefix of ports (`base_mac`: the first three octets are kept). Default
    /// `fa:16:3e:00:00:00`.
    pub base_mac: String,
    /// Most fixed IPs one port may have (`max_fixed_ips_per_port`). Default 5.
    pub max_fixed_ips_per_port: usize,
    /// Per-project quota defaults (`[quotas]`; -1 = unlimited): networks 100, subnets 100,
    /// ports 500, routers 10, floating IPs 50, security groups 10, security group rules 100,
    /// subnet pools -1.
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_port: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    pub quota_subnetpool: i64,
    /// Run this host's network agent (the Linux bridge, DHCP, L3 and metadata data plane) in
    /// `ferrostack up`. Default true.
    pub agent: bool,
    /// This host's VXLAN tunnel address (`[vxlan] local_ip`). Default empty: the address of
    /// the interface of the default route, else 127.0.0.1.
    pub local_ip: String,
    /// Physical network → host bridge the cloud creates and the agent plugs flat networks
    /// into (`bridge_mappings`, e.g. `public = "br-ex"`). Default empty.
    pub bridge_mappings: std::collections::BTreeMap<String, String>,
    /// Address/prefix the cloud puts on each mapped bridge (the external network's gateway),
    /// e.g. `br-ex = "172.24.4.1/24"`. Default empty.
    pub bridge_addresses: std::collections::BTreeMap<String, String>,
    /// Masquerade traffic leaving the bridges' subnets through the host's uplink (outbound
    /// internet for floating IPs and routers). Default false.
    pub external_nat: bool,
    /// The host that serves DHCP and runs the routers (the network node). Default empty: the
    /// `[compute] host` of the all-in-one.
    pub l3_host: String,
    /// Seconds between full resyncs of the agent even without change events. Default 30.
    pub resync_interval: u64,
    /// Seconds between agent heartbeats. Default 10 (Neutron's `report_interval` is 30).
    pub report_interval: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            vni_ranges: vec!["1:1000".into()],
            physical_interface_mappings: [("public".to_string(), "br-public".to_string())]
                .into_iter()
                .collect(),
            network_vlan_ranges: Vec::new(),
            tenant_network_types: vec!["vxlan".into()],
            global_physnet_mtu: 1500,
            base_mac: "fa:16:3e:00:00:00".into(),
            max_fixed_ips_per_port: 5,
            quota_network: 100,
            quota_subnet: 100,
            quota_port: 500,
            quota_router: 10,
            quota_floatingip: 50,
            quota_security_group: 10,
            quota_security_group_rule: 100,
            quota_subnetpool: -1,
            agent: true,
            local_ip: String::new(),
            bridge_mappings: Default::default(),
            bridge_addresses: Default::default(),
            external_nat: false,
            l3_host: String::new(),
            resync_interval: 30,
            report_interval: 10,
        }
    }
}

/// Cinder: the block storage API, its volume manager and backend. Option names follow
/// cinder.conf where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// The backend driver (`volume_driver`): `file` (volumes as files in `volumes_dir`). `lvm`
    /// and `rbd` are refused: these machines have no device-mapper, no iSCSI target and no Ceph.
    /// Default `file`.
    pub backend: String,
    /// Where the file backend keeps volumes (a local directory, or an NFS mount shared with the
    /// compute hosts at the same path). QEMU opens the files, so the default is beside the
    /// (private) state dir: `<state_dir>-volumes`.
    pub volumes_dir: PathBuf,
    /// The file format of new volumes: `raw` (default, sparse files) or `qcow2`. Snapshots are
    /// full copies in either format.
    pub volume_format: String,
    /// The backend's capacity reported to the scheduler, in GiB. Default 1000.
    pub capacity_gb: u64,
    /// The volume type volumes get when none is given (`default_volume_type`). Default
    /// `__DEFAULT__`, which the service creates.
    pub default_volume_type: String,
    /// The availability zone of the backend (`storage_availability_zone`). Default `nova`.
    pub availability_zone: String,
    /// This volume manager's host name (`host`; volumes show `<host>@<backend>#<pool>`).
    /// Default empty: the `[compute] host`.
    pub host: String,
    /// Run the volume manager in `ferrostack up`. Default true.
    pub manager: bool,
    /// Per-project quota defaults (`quota_*`; -1 = unlimited): volumes 10, snapshots 10,
    /// gigabytes 1000, per-volume gigabytes -1, backups 10, backup gigabytes 1000, groups 10.
    pub quota_volumes: i64,
    pub quota_snapshots: i64,
    pub quota_gigabytes: i64,
    pub per_volume_size_limit: i64,
    pub quota_backups: i64,
    pub quota_backup_gigabytes: i64,
    pub quota_groups: i64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            backend: "file".into(),
            volumes_dir: PathBuf::new(),
            volume_format: "raw".into(),
            capacity_gb: 1000,
            default_volume_type: "__DEFAULT__".into(),
            availability_zone: "nova".into(),
            host: String::new(),
            manager: true,
            quota_volumes: 10,
            quota_snapshots: 10,
            quota_gigabytes: 1000,
            per_volume_size_limit: -1,
            quota_backups: 10,
            quota_backup_gigabytes: 1000,
            quota_groups: 10,
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            region: "RegionOne".into(),
            demo: true,
        }
    }
}

impl Config {
    /// Loads `path` (if given and present) and applies the environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) if p.exists() => {
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?
            }
            _ => String::new(),
        };
        Self::from_sources(&text, std::env::vars())
    }

    /// Builds a configuration from TOML text and `(name, value)` environment pairs.
    pub fn from_sources(
        toml_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut root: toml::Table =
            toml::from_str(toml_text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (name, value) in env {
            if let Some(path) = name.strip_prefix(ENV_PREFIX) {
                apply_override(&mut root, path, &value)?;
            }
        }
        let mut config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.resolve_paths();
        Ok(config)
    }

    /// Fills the path defaults that hang off `state_dir`.
    fn resolve_paths(&mut self) {
        if self.database.url.is_empty() {
            self.database.url = format!(
                "sqlite://{}",
                self.state_dir.join("ferrostack.db").display()
            );
        }
        if self.identity.fernet_key_repository.as_os_str().is_empty() {
            self.identity.fernet_key_repository = self.state_dir.join("fernet-keys");
        }
        if self.image.filesystem_store_datadir.as_os_str().is_empty() {
            self.image.filesystem_store_datadir = self.state_dir.join("images");
        }
        if self.image.node_staging_dir.as_os_str().is_empty() {
            self.image.node_staging_dir = self.state_dir.join("images-staging");
        }
        if self.compute.instances_path.as_os_str().is_empty() {
            let mut name = self
                .state_dir
                .file_name()
                .unwrap_or_default()
                .to_os_string();
            name.push("-instances");
            self.compute.instances_path = self.state_dir.with_file_name(name);
        }
        if self.compute.host.is_empty() {
            self.compute.host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
        }
        if self.volume.volumes_dir.as_os_str().is_empty() {
            let mut name = self
                .state_dir
                .file_name()
                .unwrap_or_default()
                .to_os_string();
            name.push("-volumes");
            self.volume.volumes_dir = self.state_dir.with_file_name(name);
        }
        if self.volume.host.is_empty() {
            self.volume.host = self.compute.host.clone();
        }
        if self.compute.vnc_server_proxyclient_address.is_empty() {
            self.compute.vnc_server_proxyclient_address = self.compute.vnc_server_listen.clone();
        }
        if self.compute.novncproxy_base_url.is_empty() {
            self.compute.novncproxy_base_url =
                default_novncproxy_base_url(&self.api.public_url, &self.compute.novncproxy_listen);
        }
        if self.compute.novncproxy_web.as_os_str().is_empty() {
            self.compute.novncproxy_web = self.state_dir.join("novnc");
        }
        if self.compute.service_password_file.as_os_str().is_empty() {
            self.compute.service_password_file = self.state_dir.join("service-password");
        }
        if self.identity.policy_file.as_os_str().is_empty() {
            self.identity.policy_file = self.state_dir.join("policy.yaml");
        }
    }

    /// The effective configuration as TOML, with passwords in URLs masked.
    pub fn to_toml_masked(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = mask_url_password(&shown.database.url);
        shown.bus.url = mask_url_password(&shown.bus.url);
        if !shown.compute.service_password.is_empty() {
            shown.compute.service_password = "***".into();
        }
        if !shown.compute.metadata_proxy_shared_secret.is_empty() {
            shown.compute.metadata_proxy_shared_secret = "***".into();
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

fn apply_override(root: &mut toml::Table, path: &str, value: &str) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
    let (last, parents) = keys
        .split_last()
        .ok_or_else(|| ConfigError::Invalid(path.into()))?;
    let mut table = root;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            ConfigError::Invalid(format!("{ENV_PREFIX}{path}: {key} is not a section"))
        })?;
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    table.insert(last.clone(), parsed);
    Ok(())
}

/// Replaces the password of `scheme://user:password@host` URLs with `***`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_under_state_dir() {
        let c = Config::from_sources("state_dir = \"/tmp/x\"", Vec::new()).unwrap();
        assert_eq!(c.database.url, "sqlite:///tmp/x/ferrostack.db");
        assert_eq!(
            c.identity.fernet_key_repository,
            PathBuf::from("/tmp/x/fernet-keys")
        );
        assert_eq!(c.api.listen, "0.0.0.0:8080");
        assert_eq!(c.compute.instances_path, PathBuf::from("/tmp/x-instances"));
    }

    #[test]
    fn console_defaults_follow_the_public_url_and_listen_addresses() {
        let c = Config::from_sources(
            "state_dir = \"/tmp/x\"\n[api]\npublic_url = \"https://cloud.example:8443/\"\n\
             [compute]\nvnc_server_listen = \"0.0.0.0\"\nnovncproxy_listen = \"127.0.0.1:16080\"",
            Vec::new(),
        )
        .unwrap();
        assert!(c.compute.vnc_enabled);
        assert_eq!(c.compute.vnc_server_proxyclient_address, "0.0.0.0");
        assert_eq!(c.compute.console_token_ttl, 600);
        assert_eq!(
            c.compute.novncproxy_base_url,
            "http://cloud.example:16080/vnc_lite.html"
        );
        assert_eq!(c.compute.novncproxy_web, PathBuf::from("/tmp/x/novnc"));
        let d = Config::from_sources("", Vec::new()).unwrap();
        assert_eq!(d.compute.novncproxy_listen, "0.0.0.0:6080");
        assert_eq!(d.compute.vnc_server_proxyclient_address, "127.0.0.1");
        assert_eq!(
            d.compute.novncproxy_base_url,
            "http://127.0.0.1:6080/vnc_lite.html"
        );
        assert_eq!(
            default_novncproxy_base_url("http://[::1]:8080", ""),
            "http://[::1]:6080/vnc_lite.html"
        );
        assert_eq!(
            default_novncproxy_base_url("http://u:p@h", "0.0.0.0:1"),
            "http://h:1/vnc_lite.html"
        );
    }

    #[test]
    fn env_overrides_typed_and_string_values() {
        let env = vec![
            (
                "FERROSTACK__API__LISTEN".to_string(),
                "127.0.0.1:9".to_string(),
            ),
            (
                "FERROSTACK__IDENTITY__PASSWORD_HASH_ROUNDS".to_string(),
                "4".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_sources("[api]\nlisten = \"1.2.3.4:5\"", env).unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:9");
        assert_eq!(c.identity.password_hash_rounds, 4);
    }

    #[test]
    fn enabled_filters_take_a_list_or_a_comma_separated_string() {
        let c = Config::from_sources("", Vec::new()).unwrap();
        assert_eq!(c.compute.enabled_filters.len(), 5);
        assert_eq!(c.compute.enabled_filters[0], "ComputeFilter");
        let c = Config::from_sources(
            "[compute]\nenabled_filters = [\"ComputeFilter\", \"AllHostsFilter\"]",
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            c.compute.enabled_filters,
            ["ComputeFilter", "AllHostsFilter"]
        );
        let env = vec![(
            "FERROSTACK__COMPUTE__ENABLED_FILTERS".to_string(),
            "ComputeFilter, SameHostFilter,".to_string(),
        )];
        let c = Config::from_sources("", env).unwrap();
        assert_eq!(
            c.compute.enabled_filters,
            ["ComputeFilter", "SameHostFilter"]
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_sources("[api]\nlisen = 1", Vec::new()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn agent_secrets_are_masked_and_the_password_file_defaults_under_state_dir() {
        let c = Config::from_sources(
            "state_dir = \"/tmp/x\"\n[bus]\nkind = \"amqp\"\nurl = \"amqp://fs:bus-pw@mq/%2f\"",
            vec![(
                "FERROSTACK__COMPUTE__SERVICE_PASSWORD".to_string(),
                "svc-pw".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(c.compute.service_password, "svc-pw");
        assert_eq!(
            c.compute.service_password_file,
            PathBuf::from("/tmp/x/service-password")
        );
        let shown = c.to_toml_masked();
        assert!(
            !shown.contains("svc-pw") && !shown.contains("bus-pw"),
            "{shown}"
        );
        assert!(shown.contains("amqp://fs:***@mq/%2f"), "{shown}");
    }

    #[test]
    fn masks_url_passwords() {
        assert_eq!(
            mask_url_password("postgres://fs:secret@db/fs"),
            "postgres://fs:***@db/fs"
        );
        assert_eq!(mask_url_password("sqlite:///x.db"), "sqlite:///x.db");
    }
}
