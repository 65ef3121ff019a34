//! The virt-driver seam of the compute agent, as Nova's `virt/driver.py`: what the agent asks
//! of a hypervisor, with two implementations — [`libvirt::LibvirtDriver`] (QEMU/KVM through
//! libvirt, the real one) and [`fake::FakeDriver`] (in memory, for scale tests of the control
//! plane only, never in functional tests).

pub mod capabilities;
pub mod domain_xml;
pub mod fake;
pub mod libvirt;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use capabilities::{CpuInfo, CpuTopology, HostCapabilities, SupportedInstance};

/// Nova's power states (`nova/compute/power_state.py`), with their numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Crashed = 6,
    Suspended = 7,
}

/// How a guest boots.
#[derive(Debug, Clone, PartialEq)]
pub enum Boot {
    /// From its first disk (a whole-disk image).
    Disk,
    /// Direct kernel boot (images with `kernel_id`/`ramdisk_id`).
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        cmdline: String,
    },
}

/// Hypervisor flavour of the domain: `qemu` (TCG, software) or `kvm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtType {
    Qemu,
    Kvm,
}

impl VirtType {
    /// libvirt's domain type.
    pub fn as_str(self) -> &'static str {
        match self {
            VirtType::Qemu => "qemu",
            VirtType::Kvm => "kvm",
        }
    }
}

/// A guest network interface: a tap device that the host's network agent plugs into the
/// network's bridge (Nova's `ethernet` VIF). libvirt creates the tap when the guest starts and
/// removes it when the guest stops; it refuses to start the guest if a device of that name
/// already exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInterface {
    /// The Neutron port id (recorded in the domain XML's interface alias as `ua-<port id>`,
    /// as Nova does).
    pub port_id: String,
    /// `fa:16:3e:..`
    pub mac_address: String,
    /// The tap device libvirt creates (`tap` + the port id's first 11 characters, Nova's name).
    pub tap: String,
    /// The network's MTU, when known.
    pub mtu: Option<u32>,
}

/// A Cinder volume attached to a guest as a virtio disk: a file (a raw or qcow2 image on the
/// host, e.g. on an NFS share), as Nova's libvirt driver attaches file/NFS-backed volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestVolume {
    /// The Cinder volume id: the disk's serial, as Nova sets it (the guest sees its first 20
    /// characters, virtio-blk's limit, e.g. in `/dev/disk/by-id/virtio-<id>`).
    pub volume_id: String,
    /// The file the disk reads and writes.
    pub path: PathBuf,
    /// The file's format: `raw` or `qcow2`.
    pub format: String,
    /// The guest device name (`vdb`, `vdc`, ...).
    pub target: String,
    /// Attached read-only.
    pub readonly: bool,
}

/// Everything needed to create one guest.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestSpec {
    /// The server's uuid: also the domain uuid, so `virsh list --uuid` maps back to servers.
    pub uuid: String,
    /// Domain name (Nova's `instance-%08x`).
    pub name: String,
    /// The server's display name (recorded in the domain metadata).
    pub display_name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    /// The root disk (a qcow2 overlay over the cached image); `None` when the guest boots
    /// from a volume: the one of [`GuestSpec::volumes`] on `vda`.
    pub root_disk: Option<PathBuf>,
    /// A config drive ISO, attached read-only as a CD-ROM.
    pub config_drive: Option<PathBuf>,
    pub boot: Boot,
    /// Where the serial console is logged (read by `os-getConsoleOutput`).
    pub console_log: PathBuf,
    pub virt_type: VirtType,
    /// The address the guest's VNC server listens on (libvirt picks the port: `autoport`);
    /// `None`: the guest has no graphical console.
    pub vnc_listen: Option<String>,
    /// The guest's network interfaces, in order: the first is the guest's eth0.
    pub interfaces: Vec<GuestInterface>,
    /// Define and start the domain paused: Nova starts a guest paused until the network
    /// reports its ports plugged (`network-vif-plugged`), then resumes it
    /// ([`VirtDriver::resume`]).
    pub start_paused: bool,
    /// The attached volumes, after the root disk and the config drive: part of the domain's
    /// definition, so they stay attached through a redefine, hard reboot or stop/start.
    pub volumes: Vec<GuestVolume>,
}

/// A guest as the hypervisor reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestInfo {
    pub uuid: String,
    pub name: String,
    pub state: PowerState,
}

/// Driver errors.
#[derive(Debug, thiserror::Error)]
pub enum VirtError {
    #[error("no guest with uuid {0}")]
    NotFound(String),
    #[error("hypervisor error: {0}")]
    Hypervisor(String),
    /// The guest has no console of the kind asked for (none configured, or it is not running).
    #[error("console unavailable: {0}")]
    ConsoleUnavailable(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What the compute agent needs from a hypervisor. Every call is idempotent where Nova's
/// recovery needs it: spawning an existing guest starts it, destroying a missing one is Ok.
#[async_trait]
pub trait VirtDriver: Send + Sync {
    /// What the host is and can run (hypervisor type and version, CPU, supported guests):
    /// asked once when the agent starts, and reported with every heartbeat.
    async fn host_capabilities(&self) -> Result<HostCapabilities, VirtError>;
    /// Defines and starts the guest, paused when `spec.start_paused`. A guest that is already
    /// active (running or paused) is left as it is.
    async fn spawn(&self, spec: &GuestSpec) -> Result<(), VirtError>;
    /// Resumes a paused guest (one spawned with `start_paused`); a running guest is left as it
    /// is. [`VirtError::NotFound`] when there is no such guest; a stopped guest is not
    /// started ([`VirtError::Hypervisor`]: that is [`VirtDriver::power_on`]'s job).
    async fn resume(&self, uuid: &str) -> Result<(), VirtError>;
    /// Stops the guest if it runs and removes its definition (disks are the caller's).
    async fn destroy(&self, uuid: &str) -> Result<(), VirtError>;
    /// Starts a defined, stopped guest.
    async fn power_on(&self, uuid: &str) -> Result<(), VirtError>;
    /// Stops the guest: an ACPI shutdown, then a hard stop after `timeout` seconds.
    async fn power_off(&self, uuid: &str, timeout: std::time::Duration) -> Result<(), VirtError>;
    /// Reboots: `hard` resets at once, otherwise an ACPI reboot.
    async fn reboot(&self, uuid: &str, hard: bool) -> Result<(), VirtError>;
    /// The guest's power state.
    async fn power_state(&self, uuid: &str) -> Result<PowerState, VirtError>;
    /// Every guest of this host that the driver manages.
    async fn list(&self) -> Result<Vec<GuestInfo>, VirtError>;
    /// The TCP port of the running guest's VNC server, as the hypervisor assigned it (read
    /// from the live guest, never guessed). [`VirtError::ConsoleUnavailable`] when the guest
    /// has no VNC display or is not running.
    async fn vnc_port(&self, uuid: &str) -> Result<u16, VirtError>;
    /// Attaches `volume` to the guest's persistent definition and, when the guest is active
    /// (running or paused), to the live guest too (Nova's `attach_volume`). Idempotent: a
    /// definition that already has the volume (a disk with its serial or its file) is left as
    /// it is. [`VirtError::Hypervisor`] when another disk holds the target;
    /// [`VirtError::NotFound`] when there is no such guest.
    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError>;
    /// Detaches `volume` (found by its serial or its file) from the persistent definition and
    /// from the live guest, waiting until the guest has released it: a live unplug needs the
    /// guest's cooperation and finishes asynchronously, so it is asked again while waiting, as
    /// Nova's `_detach_with_retry` does ([`VirtError::Hypervisor`] if the disk never goes).
    /// Idempotent: a volume that is not attached is Ok. [`VirtError::NotFound`] when there is
    /// no such guest.
    async fn detach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError>;
    /// Tells the running guest that the disk of volume `volume_id` grew to its file's size now
    /// (Nova's `extend_volume`: `virDomainBlockResize`, after the volume service grew the
    /// file). Returns the new size in bytes; `None` when the guest is not running or has no
    /// such disk (a guest reads its disks' sizes when it starts). Drivers without disks do
    /// nothing.
    async fn resize_volume(&self, uuid: &str, volume_id: &str) -> Result<Option<u64>, VirtError> {
        let _ = (uuid, volume_id);
        Ok(None)
    }
    /// The targets (`vdb`, ...) of the guest's volume disks, in device order: the live guest's
    /// when it is active, otherwise its persistent definition's.
    async fn volume_targets(&self, uuid: &str) -> Result<Vec<String>, VirtError>;
    /// Whether the guests' disks are real files the hypervisor reads: the agent then caches
    /// the image, makes the overlay, the config drive and the kernel copies before a spawn.
    /// A driver whose guests have no disks (the fake one) answers false and the agent makes
    /// only the instance directory and console log, so a control-plane scale test measures
    /// the control plane and not `qemu-img`.
    fn manages_disks(&self) -> bool {
        true
    }
}
