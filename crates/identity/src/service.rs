//! The identity service state: the in-memory data set, its write path, token keys and caches.

use crate::data::{Change, IdentityData, change_counter, commit};
use crate::model::Revocation;
use crate::tokens::TokenCache;
use ferrostack_api::ApiError;
use ferrostack_bus::MessageBus;
use ferrostack_config::Config;
use ferrostack_store::{Store, StoreError};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

/// Bus topic announcing that a process changed identity data.
pub const CHANGED_TOPIC: &str = "identity.changed";

/// How often a process checks the store's change counter for other processes' writes (the bus
/// event makes it sooner).
const PEER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

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
    /// The store's change counter that the in-memory data reflects.
    seen_counter: AtomicI64,
}

impl Identity {
    /// Migrates the store, loads the data and the Fernet keys.
    pub async fn open(
        config: Config,
        store: Store,
        bus: Arc<dyn MessageBus>,
    ) -> anyhow::Result<Arc<Identity>> {
        store.migrate("identity", crate::MIGRATIONS).await?;
        // Counter first: a write landing between the two reads makes the next check reload.
        let counter = change_counter(&store).await?;
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
            seen_counter: AtomicI64::new(counter),
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
        let counter = commit(&self.store, &changes).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(
                "Conflict occurred attempting to store the resource: a duplicate entry exists.",
            ),
            other => ApiError::internal(other),
        })?;
        let seen = self.seen_counter.swap(counter, Ordering::AcqRel);
        if counter == seen + 1 {
            self.data
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply_changes(&changes);
        } else {
            // Another process wrote since our last load: take the whole set from the store.
            match IdentityData::load(&self.store).await {
                Ok(data) => *self.data.write().unwrap_or_else(|e| e.into_inner()) = data,
                Err(e) => {
                    tracing::error!(error = %e, "reloading identity data");
                    self.data
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .apply_changes(&changes);
                    self.seen_counter.store(seen, Ordering::Release);
                }
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.bus.publish(CHANGED_TOPIC, Vec::new()).await;
        Ok(())
    }

    /// Revocation events no token can still match: older than the longest token lifetime
    /// (rescoped and application-credential tokens never outlive `token_expiration`).
    fn expired_revocations(&self) -> Vec<Change> {
        let now = crate::unix_now();
        let horizon = now - self.config.identity.token_expiration as f64 - 60.0;
        self.read()
            .revocations
            .values()
            .filter(|r| r.revoked_at < horizon)
            .map(Change::delete)
            .collect()
    }

    /// Reloads the data set if another process changed the store since it was loaded.
    pub async fn refresh_from_peers(&self) -> Result<(), StoreError> {
        if change_counter(&self.store).await? == self.seen_counter.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.writer.lock().await;
        let counter = change_counter(&self.store).await?;
        if counter == self.seen_counter.load(Ordering::Acquire) {
            return Ok(());
        }
        let data = IdentityData::load(&self.store).await?;
        *self.data.write().unwrap_or_else(|e| e.into_inner()) = data;
        self.seen_counter.store(counter, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(
            counter,
            "identity data reloaded after another process's write"
        );
        Ok(())
    }

    /// Follows other processes' writes: on their bus event, and by checking the store's change
    /// counter every second (so a missed event or a bus that does not span processes only delays).
    async fn follow_peers(self: Arc<Self>) -> anyhow::Result<()> {
        let mut events = self.bus.subscribe(CHANGED_TOPIC).await?;
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PEER_CHECK_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    event = events.next() => if event.is_none() { break },
                    _ = ticker.tick() => {}
                }
                let Some(identity) = weak.upgrade() else {
                    break;
                };
                if let Err(e) = identity.refresh_from_peers().await {
                    tracing::warn!(error = %e, "checking for other processes' identity writes");
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

#[cfg(test)]
mod peer_tests {
    use super::*;
    use crate::model::Domain;

    async fn open_on(store: Store, dir: &std::path::Path) -> Arc<Identity> {
        let mut config = Config {
            state_dir: dir.to_path_buf(),
            ..Default::default()
        };
        config.identity.fernet_key_repository = dir.join("fernet-keys");
        ferrostack_fernet::KeyRepository::setup(&config.identity.fernet_key_repository).unwrap();
        Identity::open(config, store, ferrostack_bus::InProcessBus::new())
            .await
            .unwrap()
    }

    /// Two processes on one database, with buses that do not reach each other: each sees the
    /// other's writes through the store's change counter.
    #[tokio::test]
    async fn processes_sharing_a_store_see_each_others_writes() {
        let store = ferrostack_store::test_store("identity-peers")
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-peers-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let a = open_on(store.clone(), &dir).await;
        let b = open_on(store, &dir).await;
        let domain = Domain {
            id: "peer".into(),
            name: "Peer".into(),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Default::default(),
            extra: Default::default(),
        };
        a.write(vec![Change::put(&domain)]).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !b.read().domains.contains_key("peer") {
            assert!(
                std::time::Instant::now() < deadline,
                "b never saw a's write"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // b writes on top of a's change without losing it, and a catches up.
        let mut renamed = domain.clone();
        renamed.name = "Renamed".into();
        b.write(vec![Change::put(&renamed)]).await.unwrap();
        a.refresh_from_peers().await.unwrap();
        assert_eq!(a.read().domains["peer"].name, "Renamed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
