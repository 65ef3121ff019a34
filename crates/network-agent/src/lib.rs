//! The Linux data plane of one Ferrostack host, the work of Neutron's linuxbridge, DHCP, L3 and
//! metadata agents: given the desired state of the host ([`model::HostState`]), [`Agent`]
//! converges the kernel to it — bridges and VXLAN/flat/VLAN segments ([`l2`]), security groups
//! and anti-spoofing in nftables ([`firewall`]), dnsmasq in `qdhcp-` namespaces ([`dhcp`]),
//! routers with SNAT and floating IPs in `qrouter-` namespaces ([`router`]), and the metadata
//! proxy ([`metadata`]). Every object it creates is named from Neutron ids ([`names`]) and marked
//! as the agent's, so a pass removes exactly the agent's stale objects and never anything else.
//!
//! Tools: `ip`, `bridge`, `nft`, `dnsmasq`, `sysctl`, run through one [`runner::Runner`] that
//! logs every command and turns failures into errors carrying stderr.

pub mod agent;
pub mod config;
pub mod dhcp;
pub mod error;
pub mod firewall;
pub mod kernel;
pub mod l2;
pub mod metadata;
pub mod model;
pub mod names;
mod namespace;
mod process;
pub mod report;
pub mod router;
pub mod runner;
mod validate;

pub use agent::Agent;
pub use config::{AgentConfig, MetadataConfig};
pub use error::{Error, Result};
pub use metadata::{METADATA_ADDRESS, sign_instance_id};
pub use report::{Report, ResourceError};
pub use validate::InvalidState;
