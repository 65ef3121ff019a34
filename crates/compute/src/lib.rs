//! Nova for Ferrostack: the compute API mounted at `/compute`. So far: version discovery,
//! flavors (with extra specs and access lists) and keypairs; servers, scheduling and the
//! compute agent follow (issue 4, `docs/design/compute-service.md`).

pub mod api;
pub mod conductor;
pub mod configdrive;
pub mod consoles;
pub use ferrostack_api::crashpoint;
pub mod db;
pub mod guest;
mod host_view;
pub mod keys;
pub mod metadata;
pub mod metadata_api;
pub mod network;
pub mod novnc_proxy;
pub mod policies;
pub mod ports;
pub mod rpc;
pub mod scheduler;
pub mod service;
pub mod states;
pub mod volumes;

pub use db::MIGRATIONS;
pub use service::{Compute, ImageCatalog, ImageInfo};

/// Every default policy rule of the compute service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::COMPUTE_RULES.to_vec()
}
