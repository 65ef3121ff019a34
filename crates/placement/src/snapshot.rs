//! A read snapshot of every provider (inventories, usages, traits, aggregates) plus the names
//! of the resource classes and traits, for the allocation-candidate search, the provider list
//! and the in-process scheduler API.
//!
//! Every placement write bumps `placement_change_counter` in its transaction
//! ([`db::begin_write`]/[`db::commit_write`]), so a snapshot read in one consistent
//! transaction together with the counter stays valid exactly until the counter moves. The
//! [`SnapshotCache`] keeps the newest one: a request reads the counter (one indexed row) and
//! reuses the snapshot when nothing was written since, instead of reading every table again.
//! Writes made by other processes on the same database bump the same counter, so they are seen.
//! When the counter has moved, the cached snapshot is patched with the rows of the providers
//! the change log ([`changes`]) names for the writes since, and read again in full only when
//! the log cannot say (global changes, providers added or removed, a reader far behind).

use crate::changes::{self, Since};
use crate::db::{self, Inventory, Provider};
use ferrostack_store::{Backend, Store, StoreError};
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The trait of a provider that shares its resources with its aggregates' members.
pub(crate) const SHARING: &str = "MISC_SHARES_VIA_AGGREGATE";

/// One inventory of a provider with the amount allocated from it, by class number
/// ([`Snapshot::class_id`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slot {
    pub class: u32,
    pub inventory: Inventory,
    pub used: i64,
}

impl Slot {
    /// Whether `n` more fits (spec §4.3).
    pub fn fits(&self, n: i64) -> bool {
        self.inventory.fits(self.used, n)
    }
}

/// Everything placement knows about providers, read in one consistent transaction.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    /// The change counter this snapshot was read at.
    pub version: i64,
    /// Every provider, in creation order.
    pub providers: Vec<Provider>,
    index: HashMap<String, usize>,
    /// Per provider: the position of its root (its own when the root is missing).
    roots: Vec<usize>,
    /// Per provider: the position of its parent.
    parents: Vec<Option<usize>>,
    /// Per provider (same order): class → inventory.
    inventories: Vec<BTreeMap<String, Inventory>>,
    /// Per provider: class → used (only classes with allocations).
    usages: Vec<HashMap<String, i64>>,
    /// The classes that have inventory somewhere, sorted by name; their numbers index this.
    class_names: Vec<String>,
    class_ids: HashMap<String, u32>,
    /// Per provider: its inventories with their usage, sorted by class number (= by name).
    slots: Vec<Vec<Slot>>,
    /// Per provider: trait names, sorted.
    traits: Vec<Vec<String>>,
    /// Per provider: aggregate uuids, sorted.
    aggregates: Vec<Vec<String>>,
    /// Per provider: whether it shares its resources via aggregates
    /// (`MISC_SHARES_VIA_AGGREGATE`).
    sharing: Vec<bool>,
    /// Whether any provider has a parent.
    pub nested: bool,
    classes: HashSet<String>,
    trait_names: HashSet<String>,
}

/// The rows a snapshot is built from, per provider in the order of `providers`.
#[derive(Clone)]
struct Rows {
    providers: Vec<Provider>,
    inventories: Vec<BTreeMap<String, Inventory>>,
    usages: Vec<HashMap<String, i64>>,
    traits: Vec<Vec<String>>,
    aggregates: Vec<Vec<String>>,
}

impl Rows {
    /// Reads the rows of `providers` (every one when `None`), which must be in creation order.
    async fn read(
        conn: &mut AnyConnection,
        only: Option<&[String]>,
    ) -> Result<(Rows, HashMap<String, usize>), StoreError> {
        let providers = db::providers_in(&mut *conn, only).await?;
        let index = index_of(&providers);
        let n = providers.len();
        let mut rows = Rows {
            providers,
            inventories: vec![BTreeMap::new(); n],
            usages: vec![HashMap::new(); n],
            traits: vec![Vec::new(); n],
            aggregates: vec![Vec::new(); n],
        };
        for (uuid, invs) in db::all_inventories(&mut *conn, only).await? {
            if let Some(&i) = index.get(&uuid) {
                rows.inventories[i] = invs;
            }
        }
        for ((uuid, rc), used) in db::all_usages(&mut *conn, only).await? {
            if let Some(&i) = index.get(&uuid) {
                rows.usages[i].insert(rc, used);
            }
        }
        for (uuid, names) in db::all_pairs(&mut *conn, false, only).await? {
            if let Some(&i) = index.get(&uuid) {
                rows.traits[i] = names;
            }
        }
        for (uuid, aggs) in db::all_pairs(&mut *conn, true, only).await? {
            if let Some(&i) = index.get(&uuid) {
                rows.aggregates[i] = aggs;
            }
        }
        Ok((rows, index))
    }
}

fn index_of(providers: &[Provider]) -> HashMap<String, usize> {
    providers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.uuid.clone(), i))
        .collect()
}

/// Opens the read transaction of a snapshot: `REPEATABLE READ` on PostgreSQL, a read
/// transaction on SQLite, so that the tables and the counter agree.
async fn read_tx(store: &Store) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    let mut tx = store.begin().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Above this many changed providers a refresh reads everything again.
const MAX_PATCHED: usize = 256;

impl Snapshot {
    /// Reads everything in one consistent transaction.
    pub async fn load(store: &Store) -> Result<Snapshot, StoreError> {
        let mut tx = read_tx(store).await?;
        let version = changes::current(&mut tx).await?;
        let (rows, index) = Rows::read(&mut tx, None).await?;
        let classes = db::class_names(&mut tx).await?.into_iter().collect();
        let trait_names = db::trait_names(&mut tx).await?.into_iter().collect();
        tx.commit().await?;
        Ok(Snapshot::assemble(
            version,
            rows,
            index,
            classes,
            trait_names,
        ))
    }

    /// Catches `self` up with the writes logged since it was read, re-reading only the
    /// providers they touched (one consistent transaction). `None` when the log cannot say
    /// (something global changed, or it is too far behind) or providers were added, removed or
    /// moved in their tree: then the caller reads everything.
    pub async fn refresh(&self, store: &Store) -> Result<Option<Snapshot>, StoreError> {
        let mut tx = read_tx(store).await?;
        let version = changes::current(&mut tx).await?;
        let touched = match changes::since(&mut tx, self.version, version).await? {
            Since::Providers(p) if p.len() <= MAX_PATCHED => p,
            _ => return Ok(None),
        };
        let uuids: Vec<String> = touched.into_iter().collect();
        let (fresh, _) = Rows::read(&mut tx, Some(&uuids)).await?;
        tx.commit().await?;
        if fresh.providers.len() != uuids.len() {
            return Ok(None); // a provider was deleted
        }
        let mut rows = self.rows();
        for (k, p) in fresh.providers.iter().enumerate() {
            let Some(i) = self.position(&p.uuid) else {
                return Ok(None); // a new provider
            };
            let old = &self.providers[i];
            if old.parent != p.parent || old.root != p.root {
                return Ok(None);
            }
            rows.providers[i] = p.clone();
            rows.inventories[i] = fresh.inventories[k].clone();
            rows.usages[i] = fresh.usages[k].clone();
            rows.traits[i] = fresh.traits[k].clone();
            rows.aggregates[i] = fresh.aggregates[k].clone();
        }
        Ok(Some(Snapshot::assemble(
            version,
            rows,
            self.index.clone(),
            self.classes.clone(),
            self.trait_names.clone(),
        )))
    }

    fn rows(&self) -> Rows {
        Rows {
            providers: self.providers.clone(),
            inventories: self.inventories.clone(),
            usages: self.usages.clone(),
            traits: self.traits.clone(),
            aggregates: self.aggregates.clone(),
        }
    }

    /// Builds the search structures over the rows.
    fn assemble(
        version: i64,
        rows: Rows,
        index: HashMap<String, usize>,
        classes: HashSet<String>,
        trait_names: HashSet<String>,
    ) -> Snapshot {
        let Rows {
            providers,
            inventories,
            usages,
            traits,
            aggregates,
        } = rows;
        let class_names: Vec<String> = inventories
            .iter()
            .flat_map(|m| m.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        let class_ids: HashMap<String, u32> = class_names
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), k as u32))
            .collect();
        let slots = inventories
            .iter()
            .zip(&usages)
            .map(|(invs, used)| {
                invs.iter()
                    .map(|(rc, inv)| Slot {
                        class: class_ids[rc],
                        inventory: *inv,
                        used: used.get(rc).copied().unwrap_or(0),
                    })
                    .collect()
            })
            .collect();
        let nested = providers.iter().any(|p| p.parent.is_some());
        let roots = providers
            .iter()
            .enumerate()
            .map(|(i, p)| index.get(&p.root).copied().unwrap_or(i))
            .collect();
        let parents = providers
            .iter()
            .map(|p| p.parent.as_ref().and_then(|u| index.get(u).copied()))
            .collect();
        let sharing = traits
            .iter()
            .map(|t| t.iter().any(|t| t == SHARING))
            .collect();
        Snapshot {
            version,
            providers,
            index,
            roots,
            parents,
            inventories,
            usages,
            class_names,
            class_ids,
            slots,
            traits,
            aggregates,
            sharing,
            nested,
            classes,
            trait_names,
        }
    }

    /// The position of a provider in [`Snapshot::providers`].
    pub fn position(&self, uuid: &str) -> Option<usize> {
        self.index.get(uuid).copied()
    }
    pub fn get(&self, uuid: &str) -> Option<&Provider> {
        self.position(uuid).map(|i| &self.providers[i])
    }
    pub fn traits(&self, uuid: &str) -> &[String] {
        self.position(uuid).map_or(&[], |i| self.traits_at(i))
    }
    pub fn aggregates(&self, uuid: &str) -> &[String] {
        self.position(uuid).map_or(&[], |i| self.aggregates_at(i))
    }
    pub fn used(&self, uuid: &str, rc: &str) -> i64 {
        self.position(uuid).map_or(0, |i| self.used_at(i, rc))
    }
    /// A provider's inventories by class (empty for an unknown provider).
    pub fn inventories(&self, uuid: &str) -> impl Iterator<Item = (&String, &Inventory)> {
        self.position(uuid)
            .map(|i| &self.inventories[i])
            .into_iter()
            .flatten()
    }
    /// Spec §4.3.
    pub fn fits(&self, uuid: &str, rc: &str, n: i64) -> bool {
        self.position(uuid).is_some_and(|i| self.fits_at(i, rc, n))
    }

    pub fn root_at(&self, i: usize) -> usize {
        self.roots[i]
    }
    pub fn parent_at(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }
    pub fn uuid_at(&self, i: usize) -> &str {
        &self.providers[i].uuid
    }
    /// Whether the provider shares its resources via aggregates (spec §7.3).
    pub fn is_sharing_at(&self, i: usize) -> bool {
        self.sharing[i]
    }
    pub fn traits_at(&self, i: usize) -> &[String] {
        &self.traits[i]
    }
    pub fn aggregates_at(&self, i: usize) -> &[String] {
        &self.aggregates[i]
    }
    pub fn used_at(&self, i: usize, rc: &str) -> i64 {
        self.usages[i].get(rc).copied().unwrap_or(0)
    }
    pub fn fits_at(&self, i: usize, rc: &str, n: i64) -> bool {
        self.inventories[i]
            .get(rc)
            .is_some_and(|inv| inv.fits(self.used_at(i, rc), n))
    }

    /// The number of a class that has inventory on some provider.
    pub fn class_id(&self, name: &str) -> Option<u32> {
        self.class_ids.get(name).copied()
    }
    pub fn class_name(&self, class: u32) -> &str {
        &self.class_names[class as usize]
    }
    /// A provider's inventories with their usage, by class number (= by class name).
    pub fn slots_at(&self, i: usize) -> &[Slot] {
        &self.slots[i]
    }
    pub fn slot_at(&self, i: usize, class: u32) -> Option<&Slot> {
        self.slots[i].iter().find(|s| s.class == class)
    }

    /// Whether the resource class exists.
    pub fn has_class(&self, name: &str) -> bool {
        self.classes.contains(name)
    }
    /// Whether the trait exists.
    pub fn has_trait(&self, name: &str) -> bool {
        self.trait_names.contains(name)
    }
}

/// The newest snapshot read, shared by the requests that come after it.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held while a snapshot is read, so that concurrent requests after a write wait for that
    /// one read instead of each reading every table.
    loading: tokio::sync::Mutex<()>,
}

impl SnapshotCache {
    fn at_least(&self, version: i64) -> Option<Arc<Snapshot>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|s| s.version >= version).cloned()
    }

    /// A snapshot that includes every write committed before this call: the cached one when
    /// nothing was written since, else the cached one patched from the change log
    /// ([`Snapshot::refresh`]), else a full read.
    pub async fn get(&self, store: &Store) -> Result<Arc<Snapshot>, StoreError> {
        let version = {
            let mut c = store.pool().acquire().await?;
            changes::current(&mut c).await?
        };
        if let Some(s) = self.at_least(version) {
            return Ok(s);
        }
        let _loading = self.loading.lock().await;
        if let Some(s) = self.at_least(version) {
            return Ok(s);
        }
        let cached = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let patched = match cached {
            Some(old) => old.refresh(store).await?,
            None => None,
        };
        let snap = Arc::new(match patched {
            Some(s) => s,
            None => Snapshot::load(store).await?,
        });
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_none_or(|s| s.version <= snap.version) {
            *current = Some(snap.clone());
        }
        Ok(snap)
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
