//! Cinder for Ferrostack: the block storage API (v3) mounted at `/volume`, its store, the
//! volume manager that runs the operations on the backend, and the backend drivers.
//!
//! Volumes, snapshots, attachments, volume types and QoS specs, quotas and limits, with
//! Cinder's status machine, policy, errors, filters, sorting and pagination. The API writes
//! the operation onto the row (`task`, or a transitional status) and casts it to the manager
//! (`manager`), which runs it through the [`driver::VolumeDriver`] (the `file` backend:
//! `file_driver`) and can finish or undo it after a crash. The services report heartbeats
//! (`heartbeat`), placement checks the backend against the volume type (`scheduler`), and
//! failures of asynchronous operations become user messages (`messages`).

pub mod api;
pub mod db;
pub mod driver;
pub mod errors;
pub mod file_driver;
pub mod heartbeat;
pub mod images;
pub mod manager;
pub mod messages;
pub mod model;
pub mod policies;
pub mod quota;
pub mod scheduler;
pub mod service;
pub mod types;

pub use db::MIGRATIONS;
pub use service::{Settings, Volumes};

/// Every default policy rule of the volume service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::all()
}
