//! What a hypervisor host is and can run, as Nova's libvirt driver reports it in
//! `get_available_resource`: the hypervisor's type and version, the host's CPU as Nova's
//! `cpu_info` JSON (`_get_cpu_info`), and the (architecture, hypervisor type, VM mode) triples
//! it can host (`_get_instance_capabilities`, read by ImagePropertiesFilter). The CPU and the
//! guests come from libvirt's capabilities XML (`virConnectGetCapabilities`).

use crate::VirtError;
use serde::Serialize;

/// A host's capabilities, read once when the agent starts.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCapabilities {
    /// Nova's `hypervisor_type`: the connection's driver name (`virConnectGetType`), `QEMU`
    /// for QEMU and KVM guests alike.
    pub hypervisor_type: String,
    /// The hypervisor's version in Nova's integer encoding (`major*1000000 + minor*1000 +
    /// release`, what `virConnectGetVersion` answers).
    pub hypervisor_version: u64,
    /// libvirt's own version, same encoding (`virConnectGetLibVersion`).
    pub libvirt_version: u64,
    /// The hypervisor host's name (`virConnectGetHostname`).
    pub hostname: String,
    pub cpu: CpuInfo,
    /// The guests the host can run.
    pub supported_instances: Vec<SupportedInstance>,
}

/// The host CPU (Nova's `cpu_info`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuInfo {
    pub arch: String,
    pub model: String,
    pub vendor: String,
    pub topology: CpuTopology,
    /// Physical address bits, when libvirt reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxphysaddr: Option<MaxPhysAddr>,
    /// CPU feature flags, sorted (Nova reports them as a set).
    pub features: Vec<String>,
}

/// Nova's `cpu_info.topology`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuTopology {
    /// NUMA cells.
    pub cells: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

/// Nova's `cpu_info.maxphysaddr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaxPhysAddr {
    pub mode: String,
    pub bits: u32,
}

/// One kind of guest the host can run, canonicalized as Nova's `fields` do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedInstance {
    /// `x86_64`, `i686`, `aarch64`, ...
    pub arch: String,
    /// The domain type: `qemu`, `kvm`, ...
    pub hypervisor_type: String,
    /// `hvm`, `xen`, `exe`, ...
    pub vm_mode: String,
}

impl CpuInfo {
    /// Nova's `cpu_info` text: the JSON object the compute node stores.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("CPU info always serialises")
    }
}

/// The CPU and the supported guests described by a capabilities XML document.
pub fn parse_capabilities(xml: &str) -> Result<(CpuInfo, Vec<SupportedInstance>), VirtError> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| VirtError::Hypervisor(format!("bad capabilities XML: {e}")))?;
    let root = doc.root_element();
    let host = child(root, "host")
        .ok_or_else(|| VirtError::Hypervisor("capabilities XML without <host>".into()))?;
    let cpu = child(host, "cpu")
        .ok_or_else(|| VirtError::Hypervisor("capabilities XML without <host><cpu>".into()))?;
    Ok((cpu_info(host, cpu)?, supported_instances(root)))
}

fn cpu_info(host: roxmltree::Node, cpu: roxmltree::Node) -> Result<CpuInfo, VirtError> {
    let text = |name| child(cpu, name).and_then(|n| n.text()).unwrap_or("").trim();
    let arch = text("arch");
    if arch.is_empty() {
        return Err(VirtError::Hypervisor(
            "capabilities XML: the host CPU has no <arch>".into(),
        ));
    }
    let topology = child(cpu, "topology");
    let count = |name| {
        topology
            .and_then(|t| t.attribute(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    };
    let cells = child(host, "topology")
        .and_then(|t| child(t, "cells"))
        .and_then(|c| c.attribute("num"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let maxphysaddr = child(cpu, "maxphysaddr").and_then(|m| {
        Some(MaxPhysAddr {
            mode: m.attribute("mode")?.to_string(),
            bits: m.attribute("bits")?.parse().ok()?,
        })
    });
    let mut features: Vec<String> = cpu
        .children()
        .filter(|n| n.has_tag_name("feature"))
        .filter_map(|n| n.attribute("name"))
        .map(str::to_string)
        .collect();
    features.sort();
    features.dedup();
    Ok(CpuInfo {
        arch: arch.to_string(),
        model: text("model").to_string(),
        vendor: text("vendor").to_string(),
        topology: CpuTopology {
            cells,
            sockets: count("sockets"),
            cores: count("cores"),
            threads: count("threads"),
        },
        maxphysaddr,
        features,
    })
}

/// Every (arch, domain type, os type) of the `<guest>` elements, canonicalized.
fn supported_instances(root: roxmltree::Node) -> Vec<SupportedInstance> {
    let mut out = Vec::new();
    for guest in root.children().filter(|n| n.has_tag_name("guest")) {
        let Some(os_type) = child(guest, "os_type").and_then(|n| n.text()) else {
            continue;
        };
        for arch in guest.children().filter(|n| n.has_tag_name("arch")) {
            let Some(arch_name) = arch.attribute("name") else {
                continue;
            };
            for domain in arch.children().filter(|n| n.has_tag_name("domain")) {
                let Some(domain_type) = domain.attribute("type") else {
                    continue;
                };
                let instance = SupportedInstance {
                    arch: canonical_arch(arch_name),
                    hypervisor_type: canonical_hv_type(domain_type),
                    vm_mode: canonical_vm_mode(os_type.trim()),
                };
                if !out.contains(&instance) {
                    out.push(instance);
                }
            }
        }
    }
    out
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

/// Nova's `Architecture.canonicalize`: lower case, the i386 family is `i686`, `amd64` is
/// `x86_64`.
pub fn canonical_arch(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "i386" | "i486" | "i586" | "x86_32" | "x86_32p" => "i686".into(),
        "amd64" | "x64" => "x86_64".into(),
        _ => name,
    }
}

/// Nova's `HVType.canonicalize`: lower case, `xapi` is `xen`.
pub fn canonical_hv_type(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name == "xapi" { "xen".into() } else { name }
}

/// Nova's `VMMode.canonicalize`: lower case, `pv` is `xen`, `hv` and `baremetal` are `hvm`.
pub fn canonical_vm_mode(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "pv" => "xen".into(),
        "hv" | "baremetal" => "hvm".into(),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `virsh capabilities` of a Debian 12 host (libvirt 9.0, QEMU 7.2, an AMD CPU).
    const CAPABILITIES: &str = include_str!("../testdata/capabilities-x86_64.xml");

    #[test]
    fn the_host_cpu_is_read_as_novas_cpu_info() {
        let (cpu, _) = parse_capabilities(CAPABILITIES).unwrap();
        assert_eq!(cpu.arch, "x86_64");
        assert_eq!(cpu.model, "kvm64");
        assert_eq!(cpu.vendor, "AMD");
        assert_eq!(
            cpu.topology,
            CpuTopology {
                cells: 1,
                sockets: 1,
                cores: 2,
                threads: 1
            }
        );
        assert_eq!(
            cpu.maxphysaddr,
            Some(MaxPhysAddr {
                mode: "emulate".into(),
                bits: 48
            })
        );
        for flag in ["avx2", "sse4.2", "vme", "xsaveerptr"] {
            assert!(cpu.features.iter().any(|f| f == flag), "{flag}");
        }
        // `<pages>` and `<counter>` are no features; the list is sorted and unique.
        assert!(!cpu.features.iter().any(|f| f == "tsc" || f.is_empty()));
        assert!(cpu.features.windows(2).all(|w| w[0] < w[1]));
        let json: serde_json::Value = serde_json::from_str(&cpu.to_json()).unwrap();
        assert_eq!(json["arch"], "x86_64");
        assert_eq!(
            json["topology"],
            serde_json::json!({"cells": 1, "sockets": 1, "cores": 2, "threads": 1})
        );
        assert_eq!(json["maxphysaddr"]["bits"], 48);
        assert!(json["features"].as_array().unwrap().len() > 50);
        // Nova's key order.
        let text = cpu.to_json();
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
        assert!(at("arch") < at("model") && at("model") < at("vendor"));
        assert!(at("vendor") < at("topology") && at("topology") < at("features"));
    }

    #[test]
    fn every_guest_arch_and_domain_type_is_a_supported_instance() {
        let (_, supported) = parse_capabilities(CAPABILITIES).unwrap();
        let triples: Vec<(&str, &str, &str)> = supported
            .iter()
            .map(|s| {
                (
                    s.arch.as_str(),
                    s.hypervisor_type.as_str(),
                    s.vm_mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            triples,
            [
                ("i686", "qemu", "hvm"),
                ("i686", "kvm", "hvm"),
                ("x86_64", "qemu", "hvm"),
                ("x86_64", "kvm", "hvm"),
            ]
        );
    }

    #[test]
    fn sparse_and_broken_documents() {
        // An aarch64 host without topology, features or NUMA cells; a guest without domains.
        let xml = "<capabilities><host><cpu><arch>aarch64</arch></cpu></host>\
            <guest><os_type>HVM</os_type><arch name='aarch64'><domain type='QEMU'/></arch></guest>\
            <guest><os_type>hvm</os_type><arch name='armv7l'/></guest></capabilities>";
        let (cpu, supported) = parse_capabilities(xml).unwrap();
        assert_eq!(cpu.arch, "aarch64");
        assert_eq!((cpu.model.as_str(), cpu.vendor.as_str()), ("", ""));
        assert_eq!(cpu.topology.sockets * cpu.topology.cores, 1);
        assert!(cpu.features.is_empty() && cpu.maxphysaddr.is_none());
        assert!(!cpu.to_json().contains("maxphysaddr"));
        assert_eq!(
            supported,
            [SupportedInstance {
                arch: "aarch64".into(),
                hypervisor_type: "qemu".into(),
                vm_mode: "hvm".into()
            }]
        );
        for bad in [
            "<capabilities>",
            "<capabilities/>",
            "<capabilities><host/></capabilities>",
            "<capabilities><host><cpu/></host></capabilities>",
        ] {
            assert!(parse_capabilities(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_canonicalized_as_nova_does() {
        assert_eq!(canonical_arch("AMD64"), "x86_64");
        assert_eq!(canonical_arch("i386"), "i686");
        assert_eq!(canonical_arch("ppc64le"), "ppc64le");
        assert_eq!(canonical_hv_type("QEMU"), "qemu");
        assert_eq!(canonical_hv_type("xapi"), "xen");
        assert_eq!(canonical_vm_mode("HV"), "hvm");
        assert_eq!(canonical_vm_mode("pv"), "xen");
        assert_eq!(canonical_vm_mode("exe"), "exe");
    }
}
