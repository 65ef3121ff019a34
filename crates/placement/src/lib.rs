//! OpenStack Placement (API 1.0–1.39) for Ferrostack, mounted at `/placement`: resource
//! providers and their trees, inventories, resource classes, traits, aggregates, consumers and
//! their allocations, usages and allocation candidates, following
//! `docs/design/placement-service.md`.
//!
//! Everything lives in the shared store (`placement_*` tables). Writes are one transaction each;
//! writes that depend on a provider's inventory or usage bump the provider's generation first
//! (compare-and-swap when the client supplied a generation), which takes the provider's row lock
//! up front so concurrent claims can never over-allocate (`db::write_allocations`).
//!
//! Services in the same process (the compute scheduler and conductor) use the in-process API
//! in [`local`] (`Placement::ensure_compute_node`, `host_candidates`, `claim`, `release`, …),
//! which shares those code paths with the HTTP handlers.

pub mod api;
mod candidates;
mod changes;
mod db;
pub mod local;
pub mod policies;
mod snapshot;
mod standard;

pub use db::MIGRATIONS;
pub use local::{HostCandidate, InventorySpec, PlacementError, Resources};
pub use standard::{STANDARD_RESOURCE_CLASSES, standard_traits};

use ferrostack_store::Store;
use std::sync::Arc;

/// Every default policy rule of the placement service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::PLACEMENT_RULES.to_vec()
}

/// The placement service: its store and where it is published.
pub struct Placement {
    /// The shared store.
    pub store: Store,
    /// Absolute base of the service (`http://host:port/placement`), used for `Location`.
    pub(crate) base_url: String,
    /// The newest read snapshot of the providers (see [`snapshot`]).
    snapshots: snapshot::SnapshotCache,
}

impl Placement {
    /// Applies the migrations and inserts the standard resource classes and traits that are
    /// missing (idempotent; never deletes). `public_url` is the process's public root URL
    /// (`http://host:port`); `/placement` is appended unless it is already there.
    pub async fn open(store: Store, public_url: &str) -> anyhow::Result<Arc<Placement>> {
        store.migrate("placement", MIGRATIONS).await?;
        db::sync_standards(&store).await?;
        let trimmed = public_url.trim_end_matches('/');
        let base_url = if trimmed.ends_with("/placement") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/placement")
        };
        Ok(Arc::new(Placement {
            store,
            base_url,
            snapshots: snapshot::SnapshotCache::default(),
        }))
    }

    /// A snapshot of every provider that includes every write committed before the call:
    /// the cached one when the change counter has not moved since it was read.
    pub(crate) async fn snapshot(
        &self,
    ) -> Result<Arc<snapshot::Snapshot>, ferrostack_store::StoreError> {
        self.snapshots.get(&self.store).await
    }
}
