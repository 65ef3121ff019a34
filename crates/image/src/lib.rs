//! Glance v2 (images) for Ferrostack: the image records in the shared store, their data in an
//! [`ferrostack_image_store::ImageStore`], format inspection before anything trusts the data,
//! interoperable import, sharing, and the HTTP API mounted at `/image`.

pub mod api;
pub mod db;
pub mod model;
pub mod policies;
pub mod schemas;
pub mod service;

pub use db::MIGRATIONS;
pub use service::Images;

/// Every default policy rule of the image service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::IMAGE_RULES.to_vec()
}
