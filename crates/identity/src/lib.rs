//! Keystone v3 (identity) for Ferrostack.
//!
//! The whole identity data set lives in memory ([`data`]) and is written through to the store;
//! tokens are Keystone-compatible Fernet tokens ([`tokens`]); every route is checked against
//! Keystone's default policy ([`policies`]), which operators override in `policy.yaml`.

pub mod api;
pub mod bootstrap;
pub mod cascade;
pub mod data;
pub mod model;
pub mod password;
pub mod policies;
pub mod resolve;
pub mod service;
pub mod tokens;

pub use service::Identity;

use ferrostack_store::Migration;

/// The identity service's migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "extensions",
        sql: include_str!("../migrations/0002_extensions.sql"),
    },
    Migration {
        version: 3,
        name: "change_counter",
        sql: include_str!("../migrations/0003_change_counter.sql"),
    },
];

/// Every default policy rule of the identity service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::BASE_RULES
        .iter()
        .chain(policies::IDENTITY_RULES.iter())
        .copied()
        .collect()
}

/// Now, as Unix seconds with a fraction.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a time as stored and shown (`2026-11-22T15:39:32.000000Z`).
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The in-process token validator handed to every service.
#[async_trait::async_trait]
impl ferrostack_api::TokenValidator for Identity {
    async fn validate(
        &self,
        token: &str,
    ) -> Result<std::sync::Arc<ferrostack_api::AuthContext>, ferrostack_api::ApiError> {
        self.validate_token(token)
    }
}
