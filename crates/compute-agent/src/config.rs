//! The agent's settings and its stable node identity.

use ferrostack_virt::VirtType;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How one compute agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The host name: the agent consumes `compute.agent.<host>`.
    pub host: String,
    /// The compute node's uuid. `None`: read from `<instances_path>/compute_id`, written there
    /// with a new uuid on the first start (as Nova does), so it survives restarts.
    pub node_uuid: Option<String>,
    /// Where instance directories and the image cache (`_base`) live (Nova's
    /// `$state_path/instances`). QEMU runs as its own user: it must be able to traverse it.
    pub instances_path: PathBuf,
    /// `qemu` (TCG) or `kvm`.
    pub virt_type: VirtType,
    /// How often the agent reports itself and its guests (Nova's `report_interval`, 10 s).
    pub heartbeat_interval: Duration,
    /// How long a clean (ACPI) shutdown may take before the guest is stopped hard (Nova's
    /// `shutdown_timeout`, 60 s).
    pub shutdown_timeout: Duration,
    /// How long a soft reboot waits for the guest to shut down before it stops it hard
    /// (Nova's `wait_soft_reboot_seconds`, 120 s).
    pub soft_reboot_timeout: Duration,
    /// How long a started guest may take to be reported running.
    pub spawn_timeout: Duration,
    /// How long a new guest waits, paused, for its ports to be reported plugged (Nova's
    /// `vif_plugging_timeout`, 300 s); then the build fails and is rescheduled. Zero: no wait.
    pub vif_plugging_timeout: Duration,
    /// How long a call to the conductor may take.
    pub rpc_timeout: Duration,
    /// Memory kept for the host (Nova's `reserved_host_memory_mb`, 512).
    pub reserved_host_memory_mb: i64,
    /// Disk kept for the host, in GiB (Nova's `reserved_host_disk_mb` / 1024, 0).
    pub reserved_host_disk_gb: i64,
    /// CPUs kept for the host (Nova's `reserved_host_cpus`, 0).
    pub reserved_host_cpus: i64,
    /// The kernel command line of direct-kernel-boot guests whose build names none.
    pub default_kernel_cmdline: String,
    /// Whether guests get a VNC display (Nova's `[vnc] enabled`, true).
    pub vnc_enabled: bool,
    /// The address guests' VNC servers listen on (`[vnc] server_listen`, `127.0.0.1`).
    pub vnc_server_listen: String,
    /// The address the console proxy connects to for this host's VNC servers
    /// (`[vnc] server_proxyclient_address`; Nova's default `127.0.0.1`, here the listen
    /// address).
    pub vnc_server_proxyclient_address: String,
}

impl AgentConfig {
    /// Nova's defaults for `host`, with instances under `instances_path`.
    pub fn new(host: &str, instances_path: impl Into<PathBuf>) -> Self {
        AgentConfig {
            host: host.to_string(),
            node_uuid: None,
            instances_path: instances_path.into(),
            virt_type: VirtType::Kvm,
            heartbeat_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(60),
            soft_reboot_timeout: Duration::from_secs(120),
            spawn_timeout: Duration::from_secs(60),
            vif_plugging_timeout: Duration::from_secs(300),
            rpc_timeout: Duration::from_secs(60),
            reserved_host_memory_mb: 512,
            reserved_host_disk_gb: 0,
            reserved_host_cpus: 0,
            default_kernel_cmdline: "root=/dev/vda console=tty0 console=ttyS0".to_string(),
            vnc_enabled: true,
            vnc_server_listen: "127.0.0.1".to_string(),
            vnc_server_proxyclient_address: "127.0.0.1".to_string(),
        }
    }

    /// The VNC listen address a new guest gets; `None` when VNC is disabled.
    pub fn vnc_listen(&self) -> Option<String> {
        self.vnc_enabled.then(|| self.vnc_server_listen.clone())
    }

    /// The command line of a direct kernel boot: the build's own, else the default (plus
    /// `no_timer_check` under TCG, as Nova adds it for `virt_type=qemu`).
    pub fn kernel_cmdline(&self, requested: Option<&str>) -> String {
        match requested {
            Some(cmdline) => cmdline.to_string(),
            None if self.virt_type == VirtType::Qemu => {
                format!("{} no_timer_check", self.default_kernel_cmdline)
            }
            None => self.default_kernel_cmdline.clone(),
        }
    }
}

/// The file holding the node uuid.
pub const COMPUTE_ID_FILE: &str = "compute_id";

/// The node uuid stored in `<instances_path>/compute_id`, created (atomically) on first use.
pub fn node_uuid(instances_path: &Path) -> std::io::Result<String> {
    let path = instances_path.join(COMPUTE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            uuid::Uuid::parse_str(id).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} does not hold a uuid: {e}", path.display()),
                )
            })?;
            return Ok(id.to_string());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().to_string();
    let temp = instances_path.join(format!(".{COMPUTE_ID_FILE}.{}", std::process::id()));
    std::fs::write(&temp, format!("{id}\n"))?;
    std::fs::File::open(&temp)?.sync_all()?;
    // A hard link fails if another process created the file meanwhile: then its id wins.
    let linked = std::fs::hard_link(&temp, &path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            tracing::info!(node_uuid = %id, path = %path.display(), "new compute node id");
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => node_uuid(instances_path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_uuid_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("agent-node-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = node_uuid(&dir).unwrap();
        assert_eq!(node_uuid(&dir).unwrap(), first);
        assert_eq!(
            std::fs::read_to_string(dir.join(COMPUTE_ID_FILE)).unwrap(),
            format!("{first}\n")
        );
        std::fs::write(dir.join(COMPUTE_ID_FILE), "garbage").unwrap();
        assert!(node_uuid(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kernel_command_lines() {
        let mut config = AgentConfig::new("h", "/x");
        assert_eq!(
            config.kernel_cmdline(None),
            "root=/dev/vda console=tty0 console=ttyS0"
        );
        config.virt_type = VirtType::Qemu;
        assert!(config.kernel_cmdline(None).ends_with(" no_timer_check"));
        assert_eq!(
            config.kernel_cmdline(Some("console=ttyS0")),
            "console=ttyS0"
        );
    }
}
