//! The libvirt driver: QEMU guests (TCG or KVM) through libvirtd. The binding's calls block, so
//! every call runs on the blocking pool with its own connection.

use crate::capabilities::parse_capabilities;
use crate::domain_xml::{DomainDisk, METADATA_NS, disks, domain_xml, vnc_port, volume_disk_xml};
use crate::{
    GuestInfo, GuestSpec, GuestVolume, HostCapabilities, PowerState, VirtDriver, VirtError,
};
use async_trait::async_trait;
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::sys;

/// How long a live volume detach may take before it is an error (Nova retries up to 8 × 20 s;
/// a software-emulated guest under load can take tens of seconds to act on the eject).
const DETACH_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a live detach that has not completed is asked again (libvirt itself waits up to
/// 5 s for QEMU's `DEVICE_DELETED` within each request).
const DETACH_RETRY: Duration = Duration::from_secs(5);
/// How often the live definition is looked at while a detach completes.
const DETACH_POLL: Duration = Duration::from_millis(500);

/// Drives guests on the libvirt at `uri` (e.g. `qemu:///system`).
pub struct LibvirtDriver {
    uri: String,
}

fn hv(e: virt::error::Error) -> VirtError {
    VirtError::Hypervisor(e.message().to_string())
}

fn state_of(state: sys::virDomainState) -> PowerState {
    match state {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED => PowerState::Running,
        sys::VIR_DOMAIN_PAUSED => PowerState::Paused,
        sys::VIR_DOMAIN_SHUTDOWN | sys::VIR_DOMAIN_SHUTOFF => PowerState::Shutdown,
        sys::VIR_DOMAIN_CRASHED => PowerState::Crashed,
        sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Suspended,
        _ => PowerState::NoState,
    }
}

impl LibvirtDriver {
    /// A driver for the libvirt at `uri`; checks that it answers.
    pub async fn connect(uri: &str) -> Result<LibvirtDriver, VirtError> {
        let driver = LibvirtDriver {
            uri: uri.to_string(),
        };
        driver.with_conn(|_| Ok(())).await?;
        Ok(driver)
    }

    /// Runs `f` with a fresh connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, VirtError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, VirtError> + Send + 'static,
    {
        let uri = self.uri.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = Connect::open(Some(&uri)).map_err(hv)?;
            let result = f(&conn);
            let _ = conn.close();
            result
        })
        .await
        .map_err(|e| VirtError::Hypervisor(e.to_string()))?
    }

    /// Runs `f` on the domain `uuid`; `missing` is returned when there is none.
    async fn with_domain<T, F>(&self, uuid: &str, missing: Option<T>, f: F) -> Result<T, VirtError>
    where
        T: Send + 'static,
        F: FnOnce(&Domain) -> Result<T, VirtError> + Send + 'static,
    {
        let uuid = uuid.to_string();
        self.with_conn(
            move |conn| match Domain::lookup_by_uuid_string(conn, &uuid) {
                Ok(dom) => f(&dom),
                Err(e) if e.code() == ErrorNumber::NoDomain => {
                    missing.ok_or(VirtError::NotFound(uuid))
                }
                Err(e) => Err(hv(e)),
            },
        )
        .await
    }
}

/// Whether the domain is active: running, or paused (`virDomainIsActive`).
fn running(dom: &Domain) -> Result<bool, VirtError> {
    dom.is_active().map_err(hv)
}

/// The disks of the live definition (flags 0; the persistent one when the domain is inactive)
/// or of the persistent definition (`VIR_DOMAIN_XML_INACTIVE`).
fn domain_disks(dom: &Domain, flags: sys::virDomainXMLFlags) -> Result<Vec<DomainDisk>, VirtError> {
    disks(&dom.get_xml_desc(flags).map_err(hv)?).map_err(VirtError::Hypervisor)
}

/// The disk XML that names `volume` where a definition has it: libvirt finds the disk to
/// detach by its target.
fn volume_at(volume: &GuestVolume, disk: &DomainDisk) -> String {
    volume_disk_xml(&GuestVolume {
        target: disk.target.clone(),
        ..volume.clone()
    })
}

/// The live guest's disk that is `volume`, if the domain is active and has it.
fn live_disk(dom: &Domain, volume: &GuestVolume) -> Result<Option<DomainDisk>, VirtError> {
    if !running(dom)? {
        return Ok(None);
    }
    Ok(domain_disks(dom, 0)?.into_iter().find(|d| d.is(volume)))
}

/// Asks libvirt to unplug `volume` from the live guest, if it has it; whether the live guest
/// still has it afterwards (the guest releases it asynchronously). A refused request is not
/// final while the guest still has the disk: the domain may be busy with another job, the
/// guest still settling an earlier hot-plug, or an earlier request pending; the caller asks
/// again until its deadline.
fn unplug(dom: &Domain, volume: &GuestVolume, first: bool) -> Result<bool, VirtError> {
    let Some(disk) = live_disk(dom, volume)? else {
        return Ok(false);
    };
    if let Err(e) = dom.detach_device_flags(&volume_at(volume, &disk), sys::VIR_DOMAIN_AFFECT_LIVE)
    {
        if live_disk(dom, volume)?.is_none() {
            return Ok(false);
        }
        match first {
            true => {
                tracing::warn!(volume = %volume.volume_id, error = %e.message(), "live detach refused: asking again")
            }
            false => {
                tracing::debug!(volume = %volume.volume_id, error = %e.message(), "repeated detach refused")
            }
        }
    }
    Ok(live_disk(dom, volume)?.is_some())
}

#[async_trait]
impl VirtDriver for LibvirtDriver {
    /// Nova's `get_available_resource` facts: `getType`, `getVersion`, `getLibVersion`,
    /// `getHostname` and the capabilities XML.
    async fn host_capabilities(&self) -> Result<HostCapabilities, VirtError> {
        self.with_conn(|conn| {
            let (cpu, supported_instances) =
                parse_capabilities(&conn.get_capabilities().map_err(hv)?)?;
            Ok(HostCapabilities {
                hypervisor_type: conn.get_type().map_err(hv)?,
                hypervisor_version: conn.get_hyp_version().map_err(hv)?.into(),
                libvirt_version: conn.get_lib_version().map_err(hv)?.into(),
                hostname: conn.get_hostname().map_err(hv)?,
                cpu,
                supported_instances,
            })
        })
        .await
    }

    /// Nova's `_create_guest`: define, then start — with `VIR_DOMAIN_START_PAUSED` when the
    /// spec asks to wait for the network. An active domain (running or paused) is left alone.
    async fn spawn(&self, spec: &GuestSpec) -> Result<(), VirtError> {
        let xml = domain_xml(spec);
        let (uuid, name, paused) = (spec.uuid.clone(), spec.name.clone(), spec.start_paused);
        self.with_conn(move |conn| {
            let dom = match Domain::lookup_by_uuid_string(conn, &uuid) {
                Ok(dom) => dom,
                Err(e) if e.code() == ErrorNumber::NoDomain => {
                    Domain::define_xml(conn, &xml).map_err(hv)?
                }
                Err(e) => return Err(hv(e)),
            };
            if !running(&dom)? {
                let flags = match paused {
                    true => sys::VIR_DOMAIN_START_PAUSED,
                    false => sys::VIR_DOMAIN_NONE,
                };
                dom.create_with_flags(flags).map_err(hv)?;
                tracing::info!(%uuid, domain = %name, paused, "guest started");
            }
            Ok(())
        })
        .await
    }

    /// The resume at the end of Nova's `_create_guest_with_network` (`guest.resume()` once the
    /// ports are plugged): only a paused domain is resumed; a running one is already where the
    /// caller wants it.
    async fn resume(&self, uuid: &str) -> Result<(), VirtError> {
        self.with_domain(uuid, None, |dom| {
            let (state, _) = dom.get_state().map_err(hv)?;
            match state_of(state) {
                PowerState::Paused => dom.resume().map(|_| ()).map_err(hv),
                PowerState::Running => Ok(()),
                other => Err(VirtError::Hypervisor(format!(
                    "cannot resume a guest that is {other:?}"
                ))),
            }
        })
        .await
    }

    async fn destroy(&self, uuid: &str) -> Result<(), VirtError> {
        self.with_domain(uuid, Some(()), |dom| {
            if running(dom)? {
                dom.destroy().map_err(hv)?;
            }
            dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM)
                .or_else(|_| dom.undefine())
                .map_err(hv)
        })
        .await
    }

    async fn power_on(&self, uuid: &str) -> Result<(), VirtError> {
        self.with_domain(uuid, None, |dom| {
            if !running(dom)? {
                dom.create().map_err(hv)?;
            }
            Ok(())
        })
        .await
    }

    async fn power_off(&self, uuid: &str, timeout: Duration) -> Result<(), VirtError> {
        let asked = self
            .with_domain(uuid, None, |dom| {
                if running(dom)? {
                    dom.shutdown().map_err(hv)?;
                    return Ok(true);
                }
                Ok(false)
            })
            .await?;
        if !asked {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.power_state(uuid).await? == PowerState::Shutdown {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tracing::info!(%uuid, "guest ignored the ACPI shutdown: stopping it");
        self.with_domain(uuid, Some(()), |dom| {
            if running(dom)? {
                dom.destroy().map_err(hv)?;
            }
            Ok(())
        })
        .await
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<(), VirtError> {
        self.with_domain(uuid, None, move |dom| {
            if !running(dom)? {
                return dom.create().map(|_| ()).map_err(hv);
            }
            match hard {
                true => dom.reset().map(|_| ()).map_err(hv),
                false => dom
                    .reboot(sys::VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
                    .map_err(hv),
            }
        })
        .await
    }

    async fn power_state(&self, uuid: &str) -> Result<PowerState, VirtError> {
        self.with_domain(uuid, None, |dom| {
            dom.get_state().map(|(s, _)| state_of(s)).map_err(hv)
        })
        .await
    }

    /// Nova's `get_vnc_console`: the port libvirt assigned (autoport), from the live XML.
    async fn vnc_port(&self, uuid: &str) -> Result<u16, VirtError> {
        self.with_domain(uuid, None, |dom| {
            if !running(dom)? {
                return Err(VirtError::ConsoleUnavailable(
                    "the guest is not running".into(),
                ));
            }
            let xml = dom.get_xml_desc(0).map_err(hv)?;
            vnc_port(&xml)
                .ok_or_else(|| VirtError::ConsoleUnavailable("the guest has no VNC display".into()))
        })
        .await
    }

    /// Nova's `attach_volume` (`guest.attach_device(conf, persistent=True, live=...)`): one
    /// `virDomainAttachDeviceFlags` with `VIR_DOMAIN_AFFECT_CONFIG`, plus
    /// `VIR_DOMAIN_AFFECT_LIVE` when the domain is active, for the definitions that lack the
    /// volume.
    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError> {
        let (guest, volume) = (uuid.to_string(), volume.clone());
        self.with_domain(uuid, None, move |dom| {
            let active = running(dom)?;
            let mut flags = 0;
            for (affect, xml_flags, applies) in [
                (
                    sys::VIR_DOMAIN_AFFECT_CONFIG,
                    sys::VIR_DOMAIN_XML_INACTIVE,
                    true,
                ),
                (sys::VIR_DOMAIN_AFFECT_LIVE, 0, active),
            ] {
                if !applies {
                    continue;
                }
                let disks = domain_disks(dom, xml_flags)?;
                if disks.iter().any(|d| d.is(&volume)) {
                    continue;
                }
                if let Some(other) = disks.iter().find(|d| d.target == volume.target) {
                    return Err(VirtError::Hypervisor(format!(
                        "guest {guest} already has another disk at {} ({})",
                        other.target,
                        other
                            .serial
                            .clone()
                            .or_else(|| other.source.as_ref().map(|p| p.display().to_string()))
                            .unwrap_or_default()
                    )));
                }
                flags |= affect;
            }
            if flags == 0 {
                return Ok(());
            }
            dom.attach_device_flags(&volume_disk_xml(&volume), flags)
                .map_err(hv)?;
            tracing::info!(
                uuid = %guest,
                volume = %volume.volume_id,
                target = %volume.target,
                live = flags & sys::VIR_DOMAIN_AFFECT_LIVE != 0,
                "volume attached"
            );
            Ok(())
        })
        .await
    }

    /// Nova's `extend_volume`: `virDomainBlockResize` of the live disk with the volume's serial
    /// to its file's size, in bytes.
    async fn resize_volume(&self, uuid: &str, volume_id: &str) -> Result<Option<u64>, VirtError> {
        let volume_id = volume_id.to_string();
        self.with_domain(uuid, None, move |dom| {
            if !running(dom)? {
                return Ok(None);
            }
            let disks = domain_disks(dom, 0)?;
            let Some(source) = disks
                .iter()
                .find(|d| d.serial.as_deref() == Some(volume_id.as_str()))
                .and_then(|d| d.source.clone())
            else {
                return Ok(None);
            };
            let size = std::fs::metadata(&source)
                .map_err(|e| VirtError::Hypervisor(format!("{}: {e}", source.display())))?
                .len();
            dom.block_resize(
                &source.to_string_lossy(),
                size,
                sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES,
            )
            .map_err(hv)?;
            tracing::info!(uuid = %dom.get_uuid_string().unwrap_or_default(), volume = %volume_id, size, "volume resized in the guest");
            Ok(Some(size))
        })
        .await
    }

    /// Nova's `detach_volume`: from the persistent definition first, then from the live guest
    /// with retries (`_detach_with_retry`), until the live XML no longer has the disk.
    async fn detach_volume(&self, uuid: &str, volume: &GuestVolume) -> Result<(), VirtError> {
        let vol = volume.clone();
        let (attached, mut still) = self
            .with_domain(uuid, None, move |dom| {
                let config = domain_disks(dom, sys::VIR_DOMAIN_XML_INACTIVE)?;
                let in_config = config.iter().find(|d| d.is(&vol));
                if let Some(disk) = in_config {
                    dom.detach_device_flags(&volume_at(&vol, disk), sys::VIR_DOMAIN_AFFECT_CONFIG)
                        .map_err(hv)?;
                }
                let live = live_disk(dom, &vol)?.is_some();
                Ok((
                    in_config.is_some() || live,
                    live && unplug(dom, &vol, true)?,
                ))
            })
            .await?;
        let start = tokio::time::Instant::now();
        let mut asked = start;
        while still {
            if start.elapsed() >= DETACH_TIMEOUT {
                return Err(VirtError::Hypervisor(format!(
                    "guest {uuid} did not release volume {} ({}) within {DETACH_TIMEOUT:?} \
                     (it is detached from the guest's definition only)",
                    volume.volume_id, volume.target
                )));
            }
            tokio::time::sleep(DETACH_POLL).await;
            let vol = volume.clone();
            let again = asked.elapsed() >= DETACH_RETRY;
            if again {
                asked = tokio::time::Instant::now();
            }
            still = self
                .with_domain(uuid, None, move |dom| match again {
                    true => unplug(dom, &vol, false),
                    false => Ok(live_disk(dom, &vol)?.is_some()),
                })
                .await?;
        }
        if attached {
            tracing::info!(%uuid, volume = %volume.volume_id, "volume detached");
        }
        Ok(())
    }

    async fn volume_targets(&self, uuid: &str) -> Result<Vec<String>, VirtError> {
        self.with_domain(uuid, None, |dom| {
            Ok(domain_disks(dom, 0)?
                .into_iter()
                .filter(DomainDisk::is_volume)
                .map(|d| d.target)
                .collect())
        })
        .await
    }

    async fn list(&self) -> Result<Vec<GuestInfo>, VirtError> {
        self.with_conn(|conn| {
            let mut guests = Vec::new();
            for dom in conn.list_all_domains(0).map_err(hv)? {
                let info = (|| -> Result<Option<GuestInfo>, virt::error::Error> {
                    let xml = dom.get_xml_desc(0)?;
                    if !xml.contains(METADATA_NS) {
                        return Ok(None);
                    }
                    Ok(Some(GuestInfo {
                        uuid: dom.get_uuid_string()?,
                        name: dom.get_name()?,
                        state: dom.get_state().map(|(s, _)| state_of(s))?,
                    }))
                })();
                match info {
                    Ok(Some(guest)) => guests.push(guest),
                    Ok(None) => {}
                    // Undefined between the listing and this look (a concurrent destroy).
                    Err(e) if e.code() == ErrorNumber::NoDomain => {}
                    Err(e) => return Err(hv(e)),
                }
            }
            Ok(guests)
        })
        .await
    }
}
