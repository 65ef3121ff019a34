//! The libvirt domain XML of a guest, shaped like the one Nova's libvirt driver writes for an
//! image-backed boot: virtio disk and bus, the config drive as a read-only CD-ROM, a serial
//! console on a pty logged to a file (virtlogd), VNC on localhost, and the SMBIOS entries
//! that make cloud-init detect OpenStack.

use crate::{Boot, GuestSpec};
use std::fmt::Write;

/// XML namespace of Ferrostack's domain metadata: its presence marks a domain as ours.
pub const METADATA_NS: &str = "https://ferrostack.dev/xmlns/libvirt/instance/1";

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
    let _ = writeln!(
        x,
        "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>",
        path(&spec.root_disk)
    );
    if let Some(iso) = &spec.config_drive {
        let _ = writeln!(
            x,
            "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='hdd' bus='ide'/>\n      <readonly/>\n    </disk>",
            path(iso)
        );
    }
    let _ = writeln!(
        x,
        "    <serial type='pty'>\n      <log file='{}' append='off'/>\n      <target port='0'/>\n    </serial>\n    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>",
        path(&spec.console_log)
    );
    let _ = writeln!(
        x,
        "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\n    <video><model type='virtio'/></video>"
    );
    let _ = writeln!(
        x,
        "    <memballoon model='virtio'/>\n    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    );
    let _ = writeln!(x, "  </devices>\n</domain>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VirtType;
    use std::path::PathBuf;

    fn spec(boot: Boot) -> GuestSpec {
        GuestSpec {
            uuid: "6f1b8a52-0000-4000-8000-000000000001".into(),
            name: "instance-00000001".into(),
            display_name: "web <1> & co".into(),
            vcpus: 2,
            memory_mb: 256,
            root_disk: PathBuf::from("/var/lib/ferrostack/instances/u/disk"),
            config_drive: Some(PathBuf::from("/var/lib/ferrostack/instances/u/disk.config")),
            boot,
            console_log: PathBuf::from("/var/lib/ferrostack/instances/u/console.log"),
            virt_type: VirtType::Qemu,
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
