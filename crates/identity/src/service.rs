//! The identity service state: the in-memory data set, its write path, token keys and caches.

use crate::data::{Change, IdentityData, commit};
use crate::model::Revocation;
use crate::tokens::TokenCache;
use ferrostack_api::ApiError;
use ferrostack_bus::MessageBus;
use ferrostack_config::Config;
use ferrostack_store::{Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Bus topic announcing that a process changed identity data.
pub const CHANGED_TOPIC: &str = "identity.changed";

/// The identity service.
pub struct Identity {
    pub(crate) store: Store,
    pub(crate) config: Config,
    data: RwLock<IdentityData>,
    writer: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    bus: Arc<dyn MessageBus>,
    /// Fernet keys and validated-token cache.
    pub(crate) tokens: TokenCache,
    /// The rendered catalog and the generation it was rendered at.
    catalog: RwLock<(u64, Arc<serde_json::value::RawValue>)>,
    /// This process's id on the bus (to ignore its own change events).
    origin: String,
}

impl Identity {
    /// Migrates the store, loads the data and the Fernet keys.
    pub async fn open(
        config: Config,
        store: Store,
        bus: Arc<dyn MessageBus>,
    ) -> anyhow::Result<Arc<Identity>> {
        store.migrate("identity", crate::MIGRATIONS).await?;
        let data = IdentityData::load(&store).await?;
        let tokens = TokenCache::open(&config.identity)?;
        let identity = Arc::new(Identity {
            store,
            config,
            data: RwLock::new(data),
            writer: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            bus,
            tokens,
            catalog: RwLock::new((
                0,
                Arc::from(serde_json::value::to_raw_value(&()).expect("null")),
            )),
            origin: uuid::Uuid::new_v4().simple().to_string(),
        });
        identity.clone().follow_peers().await?;
        Ok(identity)
    }

    /// Reads the data set.
    pub fn read(&self) -> RwLockReadGuard<'_, IdentityData> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The change counter; bumps on every write (own or a peer's).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Commits `changes` atomically and applies them. A uniqueness violation is a 409.
    pub async fn write(&self, mut changes: Vec<Change>) -> Result<(), ApiError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _guard = self.writer.lock().await;
        if changes.iter().any(Change::is_put_of::<Revocation>) {
            changes.extend(self.expired_revocations());
        }
        commit(&self.store, &changes).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(
                "Conflict occurred attempting to store the resource: a duplicate entry exists.",
            ),
            other => ApiError::internal(other),
        })?;
        self.data
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply_changes(&changes);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self
            .bus
            .publish(CHANGED_TOPIC, self.origin.as_bytes().to_vec())
            .await;
        Ok(())
    }

    /// Revocation events no token can still match: older than the longest token lifetime
    /// (rescoped and application-credential tokens never outlive `token_expiration`).
    fn expired_revocations(&self) -> Vec<Change> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let horizon = now - self.config.identity.token_expiration as f64 - 60.0;
        self.read()
            .revocations
            .values()
            .filter(|r| r.revoked_at < horizon)
            .map(Change::delete)
            .collect()
    }

    /// Reloads everything from the store when another process announces a change.
    async fn follow_peers(self: Arc<Self>) -> anyhow::Result<()> {
        let mut events = self.bus.subscribe(CHANGED_TOPIC).await?;
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            while let Some(origin) = events.next().await {
                let Some(identity) = weak.upgrade() else {
                    break;
                };
                if origin == identity.origin.as_bytes() {
                    continue;
                }
                let _guard = identity.writer.lock().await;
                match IdentityData::load(&identity.store).await {
                    Ok(data) => {
                        *identity.data.write().unwrap_or_else(|e| e.into_inner()) = data;
                        identity.generation.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reloading identity data after a peer's change")
                    }
                }
            }
        });
        Ok(())
    }

    /// The catalog as raw JSON, rendered again only after the data changed.
    pub fn catalog_json(&self) -> Arc<serde_json::value::RawValue> {
        let generation = self.generation();
        {
            let cached = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            if cached.0 == generation {
                return cached.1.clone();
            }
        }
        let rendered: Arc<serde_json::value::RawValue> =
            Arc::from(crate::api::token_body::render_catalog(&self.read()));
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = (generation, rendered.clone());
        rendered
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Public base URL of the identity API (`<public_url>/identity`).
    pub fn base_url(&self) -> String {
        format!(
            "{}/identity",
            self.config.api.public_url.trim_end_matches('/')
        )
    }
}

impl Identity {
    /// Closes the store (on shutdown).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use crate::api::harness::Harness;
    use crate::data::Change;
    use crate::model::Revocation;

    fn event(id: &str, at: f64) -> Revocation {
        Revocation {
            id: id.into(),
            audit_id: Some(format!("audit-{id}")),
            user_id: None,
            project_id: None,
            domain_id: None,
            issued_before: at,
            revoked_at: at,
        }
    }

    #[tokio::test]
    async fn new_revocations_purge_the_ones_no_token_can_match() {
        let h = Harness::open("revocation-purge").await;
        let now = chrono::Utc::now().timestamp() as f64;
        let lifetime = h.identity.config().identity.token_expiration as f64;
        h.identity
            .write(vec![Change::put(&event("old", now - lifetime - 3600.0))])
            .await
            .unwrap();
        h.identity
            .write(vec![Change::put(&event("recent", now - 10.0))])
            .await
            .unwrap();
        let data = h.identity.read();
        assert!(!data.revocations.contains_key("old"));
        assert!(data.revocations.contains_key("recent"));
    }
}
