//! The libvirt domain XML of a guest, shaped like the one Nova's libvirt driver writes for an
//! image-backed boot: virtio disk and bus, the config drive as a read-only CD-ROM, `ethernet`
//! network interfaces on tap devices libvirt creates, a serial console on a pty logged to a
//! file (virtlogd), VNC on the configured address (libvirt picks the port), and the SMBIOS
//! entries that make cloud-init detect OpenStack, then the attached volumes as virtio disks.
//! Also reads back from a domain's XML the VNC port libvirt assigned and the disks it has.

use crate::{Boot, GuestSpec, GuestVolume};
use std::fmt::Write;
use std::path::PathBuf;

/// XML namespace of Ferrostack's domain metadata: its presence marks a domain as ours.
pub const METADATA_NS: &str = "https://ferrostack.dev/xmlns/libvirt/instance/1";

/// The guest device of the root disk, local or a boot volume.
pub const ROOT_TARGET: &str = "vda";

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn path(p: &std::path::Path) -> String {
    escape(&p.to_string_lossy())
}

/// The domain XML for `spec`.
pub fn domain_xml(spec: &GuestSpec) -> String {
    let mut x = String::new();
    let uuid = escape(&spec.uuid);
    let _ = writeln!(x, "<domain type='{}'>", spec.virt_type.as_str());
    let _ = writeln!(x, "  <name>{}</name>", escape(&spec.name));
    let _ = writeln!(x, "  <uuid>{uuid}</uuid>");
    let _ = writeln!(x, "  <metadata>");
    let _ = writeln!(
        x,
        "    <ferrostack:instance xmlns:ferrostack='{METADATA_NS}'><ferrostack:name>{}</ferrostack:name></ferrostack:instance>",
        escape(&spec.display_name)
    );
    let _ = writeln!(x, "  </metadata>");
    let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", spec.memory_mb);
    let _ = writeln!(x, "  <vcpu>{}</vcpu>", spec.vcpus);
    let _ = writeln!(x, "  <sysinfo type='smbios'>\n    <system>");
    for (name, value) in [
        ("manufacturer", "OpenStack Foundation"),
        ("product", "OpenStack Nova"),
        ("version", "ferrostack"),
        ("serial", spec.uuid.as_str()),
        ("uuid", spec.uuid.as_str()),
        ("family", "Virtual Machine"),
    ] {
        let _ = writeln!(x, "      <entry name='{name}'>{}</entry>", escape(value));
    }
    let _ = writeln!(x, "    </system>\n  </sysinfo>");
    let _ = writeln!(x, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>");
    match &spec.boot {
        Boot::Disk => {
            let _ = writeln!(x, "    <boot dev='hd'/>");
        }
        Boot::Kernel {
            kernel,
            initrd,
            cmdline,
        } => {
            let _ = writeln!(x, "    <kernel>{}</kernel>", path(kernel));
            if let Some(initrd) = initrd {
                let _ = writeln!(x, "    <initrd>{}</initrd>", path(initrd));
            }
            let _ = writeln!(x, "    <cmdline>{}</cmdline>", escape(cmdline));
        }
    }
    let _ = writeln!(x, "    <smbios mode='sysinfo'/>\n  </os>");
    let _ = writeln!(x, "  <features><acpi/><apic/></features>");
    let _ = writeln!(x, "  <clock offset='utc'/>");
    let _ = writeln!(
        x,
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>"
    );
    let _ = writeln!(x, "  <devices>");
    // The root disk comes first (SeaBIOS boots the first disk): the local overlay, or the
    // boot volume.
    let (boot_volumes, data_volumes): (Vec<_>, Vec<_>) =
        spec.volumes.iter().partition(|v| v.target == ROOT_TARGET);
    match &spec.root_disk {
        Some(root) => {
            let _ = writeln!(
                x,
                "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none'/>\n      <source file='{}'/>\n      <target dev='{ROOT_TARGET}' bus='virtio'/>\n    </disk>",
                path(root)
            );
        }
        None => boot_volumes
            .iter()
            .for_each(|v| x.push_str(&volume_disk_xml(v))),
    }
    if let Some(iso) = &spec.config_drive {
        let _ = writeln!(
            x,
            "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='hdd' bus='ide'/>\n      <readonly/>\n    </disk>",
            path(iso)
        );
    }
    for volume in data_volumes {
        x.push_str(&volume_disk_xml(volume));
    }
    // Nova's `ethernet` VIF (`LibvirtConfigGuestInterface`): libvirt creates the tap (no
    // `managed='no'`, which would make it demand an existing one) and the network agent plugs
    // it into the network's bridge.
    for nic in &spec.interfaces {
        let _ = writeln!(
            x,
            "    <interface type='ethernet'>\n      <mac address='{}'/>\n      <model type='virtio'/>\n      <target dev='{}'/>",
            escape(&nic.mac_address),
            escape(&nic.tap)
        );
        if let Some(mtu) = nic.mtu {
            let _ = writeln!(x, "      <mtu size='{mtu}'/>");
        }
        let _ = writeln!(
            x,
            "      <alias name='ua-{}'/>\n    </interface>",
            escape(&nic.port_id)
        );
    }
    let _ = writeln!(
        x,
        "    <serial type='pty'>\n      <log file='{}' append='off'/>\n      <target port='0'/>\n    </serial>\n    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>",
        path(&spec.console_log)
    );
    if let Some(listen) = &spec.vnc_listen {
        let _ = writeln!(
            x,
            "    <graphics type='vnc' autoport='yes' listen='{}'/>\n    <video><model type='virtio'/></video>",
            escape(listen)
        );
    }
    let _ = writeln!(
        x,
        "    <memballoon model='virtio'/>\n    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    );
    let _ = writeln!(x, "  </devices>\n</domain>");
    x
}

/// The `<disk>` element of an attached volume, as Nova's libvirt driver writes a file/NFS-backed
/// Cinder volume: no host cache and native AIO (`io='native'` needs `cache='none'`, i.e.
/// O_DIRECT), the volume id as the serial, `<readonly/>` for a read-only attachment. Used in
/// the domain XML and, alone, to hot-plug and unplug the volume.
pub fn volume_disk_xml(volume: &GuestVolume) -> String {
    let mut x = String::new();
    let _ = writeln!(
        x,
        "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}' cache='none' io='native'/>\n      <source file='{}'/>\n      <target dev='{}' bus='virtio'/>\n      <serial>{}</serial>",
        escape(&volume.format),
        path(&volume.path),
        escape(&volume.target),
        escape(&volume.volume_id)
    );
    if volume.readonly {
        let _ = writeln!(x, "      <readonly/>");
    }
    let _ = writeln!(x, "    </disk>");
    x
}

/// A `<disk device='disk'>` of a domain's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDisk {
    /// The guest device name (`vda`, `vdb`, ...).
    pub target: String,
    /// The file it reads, for a `type='file'` disk.
    pub source: Option<PathBuf>,
    /// Its `<serial>`: the volume id for a volume, none for the root disk.
    pub serial: Option<String>,
}

impl DomainDisk {
    /// Whether this disk is `volume`: it carries the volume's id as serial, or reads its file.
    pub fn is(&self, volume: &GuestVolume) -> bool {
        self.serial.as_deref() == Some(volume.volume_id.as_str())
            || self.source.as_deref() == Some(volume.path.as_path())
    }

    /// Whether this disk is a volume: it has a serial (the root disk has none).
    pub fn is_volume(&self) -> bool {
        self.serial.is_some()
    }
}

/// The disks (`device='disk'`, not CD-ROMs) of a domain's XML, in device order.
pub fn disks(xml: &str) -> Result<Vec<DomainDisk>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("domain XML: {e}"))?;
    fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        node.children()
            .find(|c| c.is_element() && c.has_tag_name(name))
    }
    let Some(devices) = child(doc.root_element(), "devices") else {
        return Ok(Vec::new());
    };
    Ok(devices
        .children()
        .filter(|n| n.is_element() && n.has_tag_name("disk"))
        .filter(|n| n.attribute("device").unwrap_or("disk") == "disk")
        .filter_map(|disk| {
            Some(DomainDisk {
                target: child(disk, "target")?.attribute("dev")?.to_string(),
                source: child(disk, "source")
                    .and_then(|s| s.attribute("file"))
                    .map(PathBuf::from),
                serial: child(disk, "serial")
                    .and_then(|s| s.text())
                    .map(str::to_string),
            })
        })
        .collect())
}

/// The port of the first `<graphics type='vnc'>` of a domain's XML as libvirt reports it for
/// the live domain (`virDomainGetXMLDesc`). `None` when there is no VNC display or libvirt has
/// not assigned a port (`port='-1'`: the guest is not running).
pub fn vnc_port(xml: &str) -> Option<u16> {
    elements(xml, "graphics")
        .into_iter()
        .map(attributes)
        .find(|attrs| attribute(attrs, "type") == Some("vnc"))
        .and_then(|attrs| attribute(&attrs, "port")?.parse::<i32>().ok())
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port > 0)
}

/// The attribute text of every `<name ...>` start tag in `xml`.
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut tags = Vec::new();
    for (at, _) in xml.match_indices(open.as_str()) {
        let rest = &xml[at + open.len()..];
        // Skip elements whose name only starts with `name`.
        if !rest.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            continue;
        }
        if let Some(end) = rest.find('>') {
            tags.push(rest[..end].trim_end_matches('/'));
        }
    }
    tags
}

/// `name='value'` / `name="value"` pairs of a start tag, values unescaped. Stops at the first
/// malformed pair.
fn attributes(tag: &str) -> Vec<(&str, String)> {
    let mut pairs = Vec::new();
    let mut rest = tag.trim_start();
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|q| *q == '\'' || *q == '"') else {
            break;
        };
        let Some(end) = after[1..].find(quote) else {
            break;
        };
        pairs.push((name, unescape(&after[1..1 + end])));
        rest = after[end + 2..].trim_start();
    }
    pairs
}

fn attribute<'a>(attrs: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// The inverse of [`escape`] (the five predefined entities).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GuestInterface, VirtType};

    fn spec(boot: Boot) -> GuestSpec {
        GuestSpec {
            uuid: "6f1b8a52-0000-4000-8000-000000000001".into(),
            name: "instance-00000001".into(),
            display_name: "web <1> & co".into(),
            vcpus: 2,
            memory_mb: 256,
            root_disk: Some(PathBuf::from("/var/lib/ferrostack/instances/u/disk")),
            config_drive: Some(PathBuf::from("/var/lib/ferrostack/instances/u/disk.config")),
            boot,
            console_log: PathBuf::from("/var/lib/ferrostack/instances/u/console.log"),
            virt_type: VirtType::Qemu,
            vnc_listen: Some("192.0.2.7".into()),
            interfaces: Vec::new(),
            start_paused: false,
            volumes: Vec::new(),
        }
    }

    #[test]
    fn disk_boot_has_nova_shaped_devices_and_escapes_text() {
        let xml = domain_xml(&spec(Boot::Disk));
        assert!(xml.starts_with("<domain type='qemu'>"));
        assert!(xml.contains("<uuid>6f1b8a52-0000-4000-8000-000000000001</uuid>"));
        assert!(xml.contains("<entry name='product'>OpenStack Nova</entry>"));
        assert!(xml.contains("<target dev='vda' bus='virtio'/>"));
        assert!(xml.contains("device='cdrom'"));
        assert!(xml.contains("<log file='/var/lib/ferrostack/instances/u/console.log'"));
        assert!(xml.contains("web &lt;1&gt; &amp; co"));
        assert!(xml.contains("<boot dev='hd'/>"));
        assert!(!xml.contains("<kernel>"));
        assert!(xml.contains("<graphics type='vnc' autoport='yes' listen='192.0.2.7'/>"));
        // No interfaces asked for, none rendered.
        assert!(!xml.contains("<interface"));
    }

    #[test]
    fn interfaces_are_nova_ethernet_vifs_in_order() {
        let mut spec = spec(Boot::Disk);
        spec.interfaces = vec![
            GuestInterface {
                port_id: "0a1b2c3d-4e5f-4000-8000-000000000001".into(),
                mac_address: "fa:16:3e:00:00:01".into(),
                tap: "tap0a1b2c3d-4e".into(),
                mtu: Some(1450),
            },
            GuestInterface {
                port_id: "9f8e7d6c-'&-4000-8000-000000000002".into(),
                mac_address: "fa:16:3e:00:00:02".into(),
                tap: "tap9f8e7d6c-'&".into(),
                mtu: None,
            },
        ];
        let xml = domain_xml(&spec);
        let first = "    <interface type='ethernet'>\n      \
            <mac address='fa:16:3e:00:00:01'/>\n      \
            <model type='virtio'/>\n      \
            <target dev='tap0a1b2c3d-4e'/>\n      \
            <mtu size='1450'/>\n      \
            <alias name='ua-0a1b2c3d-4e5f-4000-8000-000000000001'/>\n    \
            </interface>\n";
        let second = "    <interface type='ethernet'>\n      \
            <mac address='fa:16:3e:00:00:02'/>\n      \
            <model type='virtio'/>\n      \
            <target dev='tap9f8e7d6c-&apos;&amp;'/>\n      \
            <alias name='ua-9f8e7d6c-&apos;&amp;-4000-8000-000000000002'/>\n    \
            </interface>\n";
        let (at_first, at_second) = (xml.find(first), xml.find(second));
        assert!(at_first.is_some() && at_second.is_some(), "{xml}");
        assert!(at_first < at_second, "eth0 first:\n{xml}");
        assert_eq!(xml.matches("<interface").count(), 2);
        // Inside <devices>, and libvirt is left to create the taps.
        assert!(xml.find("<devices>") < at_first && at_second < xml.find("</devices>"));
        assert!(!xml.contains("managed="));
    }

    fn volume(id: &str, target: &str, readonly: bool) -> GuestVolume {
        GuestVolume {
            volume_id: id.into(),
            path: PathBuf::from(format!("/var/lib/ferrostack/mnt/abc/volume-{id}")),
            format: "raw".into(),
            target: target.into(),
            readonly,
        }
    }

    #[test]
    fn a_boot_volume_is_the_first_disk_and_there_is_no_local_root() {
        let mut spec = spec(Boot::Disk);
        spec.root_disk = None;
        spec.volumes = vec![
            volume("0b7e4a8c-3333-4000-8000-000000000003", "vdb", false),
            volume("0b7e4a8c-4444-4000-8000-000000000004", ROOT_TARGET, false),
        ];
        let xml = domain_xml(&spec);
        assert!(!xml.contains("type='qcow2'"), "{xml}");
        assert_eq!(xml.matches("<target dev='vda'").count(), 1, "{xml}");
        let boot = xml.find("volume-0b7e4a8c-4444").unwrap();
        assert!(boot < xml.find("device='cdrom'").unwrap(), "{xml}");
        assert!(boot < xml.find("volume-0b7e4a8c-3333").unwrap(), "{xml}");
        let found = disks(&xml).unwrap();
        let targets: Vec<&str> = found.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(targets, ["vda", "vdb"]);
        assert!(found.iter().all(DomainDisk::is_volume));
    }

    #[test]
    fn volumes_are_virtio_disks_after_the_root_disk_and_the_config_drive() {
        let mut spec = spec(Boot::Disk);
        spec.volumes = vec![
            volume("0b7e4a8c-1111-4000-8000-000000000001", "vdb", false),
            GuestVolume {
                format: "qcow2".into(),
                ..volume("0b7e4a8c-2222-4000-8000-000000000002", "vdc", true)
            },
        ];
        let xml = domain_xml(&spec);
        let vdb = "    <disk type='file' device='disk'>\n      \
            <driver name='qemu' type='raw' cache='none' io='native'/>\n      \
            <source file='/var/lib/ferrostack/mnt/abc/volume-0b7e4a8c-1111-4000-8000-000000000001'/>\n      \
            <target dev='vdb' bus='virtio'/>\n      \
            <serial>0b7e4a8c-1111-4000-8000-000000000001</serial>\n    \
            </disk>\n";
        let vdc = "    <disk type='file' device='disk'>\n      \
            <driver name='qemu' type='qcow2' cache='none' io='native'/>\n      \
            <source file='/var/lib/ferrostack/mnt/abc/volume-0b7e4a8c-2222-4000-8000-000000000002'/>\n      \
            <target dev='vdc' bus='virtio'/>\n      \
            <serial>0b7e4a8c-2222-4000-8000-000000000002</serial>\n      \
            <readonly/>\n    \
            </disk>\n";
        assert_eq!(volume_disk_xml(&spec.volumes[0]), vdb);
        assert_eq!(volume_disk_xml(&spec.volumes[1]), vdc);
        let at = |needle: &str| {
            xml.find(needle)
                .unwrap_or_else(|| panic!("{needle}: {xml}"))
        };
        let (root, drive) = (at("<target dev='vda'"), at("device='cdrom'"));
        let (b, c) = (at(vdb), at(vdc));
        assert!(root < drive && drive < b && b < c, "{xml}");
        assert!(c < at("<serial type='pty'>"), "{xml}");
        assert_eq!(xml.matches("<readonly/>").count(), 2, "the CD-ROM and vdc");
        // Only a read-only volume says so.
        assert!(!vdb.contains("readonly"));
        // The domain XML parses back: the root disk (no serial), then the volumes; no CD-ROM.
        let found = disks(&xml).unwrap();
        assert_eq!(
            found,
            vec![
                DomainDisk {
                    target: "vda".into(),
                    source: spec.root_disk.clone(),
                    serial: None,
                },
                DomainDisk {
                    target: "vdb".into(),
                    source: Some(spec.volumes[0].path.clone()),
                    serial: Some(spec.volumes[0].volume_id.clone()),
                },
                DomainDisk {
                    target: "vdc".into(),
                    source: Some(spec.volumes[1].path.clone()),
                    serial: Some(spec.volumes[1].volume_id.clone()),
                },
            ]
        );
        assert!(!found[0].is_volume() && found[1].is_volume());
        assert!(found[1].is(&spec.volumes[0]) && !found[1].is(&spec.volumes[1]));
        // Without volumes, no volume disks.
        spec.volumes.clear();
        assert_eq!(domain_xml(&spec).matches("device='disk'").count(), 1);
    }

    #[test]
    fn volume_disk_text_is_escaped_and_reads_back_unescaped() {
        let odd = GuestVolume {
            volume_id: "v<1>&'\"".into(),
            path: PathBuf::from("/mnt/a'b&c<d>/vol"),
            format: "raw".into(),
            target: "vd'b".into(),
            readonly: false,
        };
        let xml = volume_disk_xml(&odd);
        assert!(
            xml.contains("<source file='/mnt/a&apos;b&amp;c&lt;d&gt;/vol'/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<target dev='vd&apos;b' bus='virtio'/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<serial>v&lt;1&gt;&amp;&apos;&quot;</serial>"),
            "{xml}"
        );
        let back = disks(&format!("<domain><devices>{xml}</devices></domain>")).unwrap();
        assert_eq!(
            back,
            vec![DomainDisk {
                target: odd.target.clone(),
                source: Some(odd.path.clone()),
                serial: Some(odd.volume_id.clone()),
            }]
        );
    }

    #[test]
    fn disks_are_read_from_a_live_domain_xml() {
        // As libvirt reports a running guest: aliases, addresses, backing stores, a CD-ROM and
        // a disk that is not a file.
        let live = "<domain type='qemu' id='7'><name>i</name><devices>\n\
            <emulator>/usr/bin/qemu-system-x86_64</emulator>\n\
            <disk type='file' device='disk'>\n\
              <driver name='qemu' type='qcow2' cache='none'/>\n\
              <source file='/i/disk' index='2'/>\n\
              <backingStore type='file' index='3'><format type='qcow2'/><source file='/b'/></backingStore>\n\
              <target dev='vda' bus='virtio'/>\n\
              <alias name='virtio-disk0'/>\n\
            </disk>\n\
            <disk type='file' device='cdrom'><source file='/i/disk.config'/><target dev='hdd' bus='ide'/></disk>\n\
            <disk type='file' device='disk'>\n\
              <driver name='qemu' type='raw' cache='none' io='native'/>\n\
              <source file='/v/vol' index='1'/>\n\
              <backingStore/>\n\
              <target dev='vdb' bus='virtio'/>\n\
              <serial>0b7e4a8c-1111-4000-8000-000000000001</serial>\n\
              <alias name='virtio-disk1'/>\n\
            </disk>\n\
            <disk type='network' device='disk'><source protocol='rbd' name='p/v'/><target dev='vdc' bus='virtio'/><serial>rbd</serial></disk>\n\
            </devices></domain>";
        let found = disks(live).unwrap();
        let targets: Vec<_> = found.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(targets, ["vda", "vdb", "vdc"]);
        assert_eq!(
            found[1].source.as_deref(),
            Some(std::path::Path::new("/v/vol"))
        );
        assert_eq!(found[2].source, None);
        let vol = volume("0b7e4a8c-1111-4000-8000-000000000001", "vdb", false);
        // Found by serial (its file is elsewhere here) and by file (whatever its serial).
        assert!(found[1].is(&vol));
        let by_path = GuestVolume {
            volume_id: "other".into(),
            path: PathBuf::from("/v/vol"),
            ..vol.clone()
        };
        assert!(found[1].is(&by_path) && !found[0].is(&by_path));
        assert_eq!(disks("<domain/>").unwrap(), Vec::new());
        assert!(disks("<domain>").is_err());
    }

    #[test]
    fn without_a_vnc_address_the_guest_has_no_display() {
        let mut spec = spec(Boot::Disk);
        spec.vnc_listen = None;
        let xml = domain_xml(&spec);
        assert!(!xml.contains("<graphics"));
        assert!(!xml.contains("<video>"));
        assert_eq!(vnc_port(&xml), None);
    }

    #[test]
    fn the_vnc_port_is_read_from_the_live_domain_xml() {
        // As libvirt reports a running guest, a stopped one, and one with SPICE first.
        let running = "<domain type='qemu' id='3'><devices>\n\
            <graphicsx port='1'/>\n\
            <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>\n\
              <listen type='address' address='127.0.0.1'/>\n\
            </graphics>\n</devices></domain>";
        assert_eq!(vnc_port(running), Some(5901));
        let stopped = "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>";
        assert_eq!(vnc_port(stopped), None);
        let both = "<graphics type=\"spice\" port=\"5900\"/><graphics type=\"vnc\" port=\"5902\"/>";
        assert_eq!(vnc_port(both), Some(5902));
        assert_eq!(vnc_port("<graphics type='spice' port='5900'/>"), None);
        assert_eq!(vnc_port("<graphics type='vnc' port='70000'/>"), None);
        assert_eq!(vnc_port("<graphics type='vnc' port='x'/>"), None);
        // The XML of a defined spec has no port: libvirt assigns it when the guest starts.
        assert_eq!(vnc_port(&domain_xml(&spec(Boot::Disk))), None);
        assert_eq!(
            attributes(" a='1' b=\"x &amp; &lt;y&gt;\" c"),
            vec![("a", "1".to_string()), ("b", "x & <y>".to_string())]
        );
    }

    #[test]
    fn kernel_boot_names_kernel_initrd_and_cmdline() {
        let xml = domain_xml(&spec(Boot::Kernel {
            kernel: PathBuf::from("/k"),
            initrd: Some(PathBuf::from("/i")),
            cmdline: "console=ttyS0 root=/dev/vda".into(),
        }));
        assert!(xml.contains("<kernel>/k</kernel>"));
        assert!(xml.contains("<initrd>/i</initrd>"));
        assert!(xml.contains("<cmdline>console=ttyS0 root=/dev/vda</cmdline>"));
        assert!(!xml.contains("<boot dev='hd'/>"));
    }
}
