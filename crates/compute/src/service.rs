//! The compute service state.

use ferrostack_api::ApiError;
use ferrostack_store::Store;
use std::sync::Arc;

/// Per-user keypair quota (Nova's `quota.key_pairs` default).
pub const KEY_PAIRS_QUOTA: i64 = 100;
/// Per-project server group quota (Nova's `quota.server_groups` default).
pub const SERVER_GROUPS_QUOTA: i64 = 10;

/// The compute service.
pub struct Compute {
    pub(crate) store: Store,
    pub(crate) public_url: String,
}

impl Compute {
    /// Migrates the compute tables.
    pub async fn open(store: Store, public_url: &str) -> anyhow::Result<Arc<Compute>> {
        store.migrate("compute", crate::MIGRATIONS).await?;
        Ok(Arc::new(Compute {
            store,
            public_url: public_url.trim_end_matches('/').to_string(),
        }))
    }

    /// `<public url>/compute`.
    pub fn base_url(&self) -> String {
        format!("{}/compute", self.public_url)
    }
}

/// A database failure is a 500.
pub(crate) fn db_error(e: ferrostack_store::StoreError) -> ApiError {
    ApiError::internal(e)
}
