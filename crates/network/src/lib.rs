//! Neutron for Ferrostack: the networking API (v2.0) mounted at `/networking` and its store.
//!
//! Networks (VXLAN tenant networks with VNIs from the configured ranges, flat and VLAN provider
//! networks on the mapped physical networks), subnets and subnet pools, ports with IPAM
//! (`ipam.rs` for the arithmetic, `db/ports.rs` for allocation under the subnet's lock),
//! security groups, routers and floating IPs, quotas and tags, with Neutron's policy, errors,
//! filters, sorting and pagination. The data plane agents read the store (`db`) and follow the
//! change events (`events`).

pub mod agents;
pub mod api;
pub mod db;
pub mod errors;
pub mod events;
pub mod host_state;
pub mod ipam;
pub mod model;
pub mod policies;
pub mod service;
pub mod sg_rules;

pub use db::MIGRATIONS;
pub use service::{Networking, Settings};

/// Every default policy rule of the network service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::NETWORK_RULES.to_vec()
}
