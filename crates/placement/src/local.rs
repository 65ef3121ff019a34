//! The in-process placement API for the compute scheduler and conductor running in the same
//! process: compute node inventories, host candidates, claims and their release, without HTTP.
//!
//! Every write goes through the same code as the HTTP API: claims are
//! `db::write_allocations` (each provider's generation bumped under its row lock first, so
//! concurrent claims are serialised on SQLite and PostgreSQL alike and never over-allocate) and
//! keep the consumer records (`project_id`, `user_id`, consumer generation) that
//! `GET /allocations/{consumer}` shows; inventories go through `db::apply_inventories` after
//! the same generation bump as `PUT /resource_providers/{uuid}/inventories`.

use crate::Placement;
use crate::api::normalize_uuid;
use crate::changes;
use crate::db::{self, ConsumerWrite, Inventory, WriteError};
use ferrostack_store::StoreError;
use std::collections::BTreeMap;
use std::time::Duration;

/// One resource amount per class, e.g. `{"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}`.
pub type Resources = BTreeMap<String, i64>;

/// The consumer type recorded for claims (placement ≥1.38 shows it; servers are `INSTANCE`).
pub const CONSUMER_TYPE: &str = "INSTANCE";

/// How many times a write that lost a race (a provider or consumer created concurrently) is
/// retried before [`PlacementError::Contended`].
const ATTEMPTS: u32 = 10;

/// The largest integer placement accepts in an inventory field.
const MAX_INT: i64 = 2_147_483_647;

/// An inventory record for one class as a compute node reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InventorySpec {
    /// Physical amount (≥ 1).
    pub total: i64,
    /// Amount kept for the host (0 ≤ reserved ≤ total).
    pub reserved: i64,
    /// Smallest amount one allocation may take (≥ 1).
    pub min_unit: i64,
    /// Largest amount one allocation may take (≥ 1).
    pub max_unit: i64,
    /// Allocations must be multiples of this (≥ 1).
    pub step_size: i64,
    /// Overcommit factor (finite, > 0).
    pub allocation_ratio: f64,
}

impl InventorySpec {
    /// `total` units with nothing reserved, units 1..=total, step 1, ratio `allocation_ratio`.
    pub fn new(total: i64, allocation_ratio: f64) -> InventorySpec {
        InventorySpec {
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio,
        }
    }

    fn inventory(&self) -> Inventory {
        Inventory {
            total: self.total,
            reserved: self.reserved,
            min_unit: self.min_unit,
            max_unit: self.max_unit,
            step_size: self.step_size,
            allocation_ratio: self.allocation_ratio,
        }
    }

    /// The same checks as the HTTP API's inventory schema and its reserved-vs-total rule (1.26).
    fn check(&self, rc: &str) -> Result<(), PlacementError> {
        let ints = [
            ("total", self.total, 1),
            ("reserved", self.reserved, 0),
            ("min_unit", self.min_unit, 1),
            ("max_unit", self.max_unit, 1),
            ("step_size", self.step_size, 1),
        ];
        for (field, value, min) in ints {
            if !(min..=MAX_INT).contains(&value) {
                return Err(invalid(format!(
                    "inventory {rc}: {field} {value} is outside {min}..={MAX_INT}"
                )));
            }
        }
        if self.reserved > self.total {
            return Err(invalid(format!(
                "inventory {rc}: reserved {} is greater than total {}",
                self.reserved, self.total
            )));
        }
        if !(self.allocation_ratio.is_finite() && self.allocation_ratio > 0.0) {
            return Err(invalid(format!(
                "inventory {rc}: allocation_ratio {} is not a positive number",
                self.allocation_ratio
            )));
        }
        Ok(())
    }
}

/// A root provider that can hold a request, with what the weighers need.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCandidate {
    /// The provider's uuid (the compute node's).
    pub uuid: String,
    /// The provider's name (the hypervisor hostname).
    pub name: String,
    /// Per class with inventory: capacity − used, before the request is claimed (negative when
    /// an inventory shrank below its usage).
    pub free: Resources,
    /// Per class with inventory: `int((total − reserved) × allocation_ratio)`, as placement
    /// reports capacity and enforces it in claims.
    pub capacity: Resources,
    /// The provider's traits, sorted.
    pub traits: Vec<String>,
    /// The provider's aggregate uuids, sorted.
    pub aggregates: Vec<String>,
}

/// Failures of the in-process API.
#[derive(Debug)]
pub enum PlacementError {
    /// The store failed.
    Store(StoreError),
    /// An argument is malformed: a bad uuid, an unknown resource class, an amount or inventory
    /// field out of range, an empty request.
    InvalidInput(String),
    /// Another provider (`uuid`) already has the name `name`.
    NameConflict {
        /// The name asked for.
        name: String,
        /// The provider that has it.
        uuid: String,
    },
    /// No provider has this uuid.
    ProviderNotFound(String),
    /// A write kept losing races with concurrent writers and was given up.
    Contended(String),
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlacementError::Store(e) => write!(f, "placement store error: {e}"),
            PlacementError::InvalidInput(m) => write!(f, "invalid placement request: {m}"),
            PlacementError::NameConflict { name, uuid } => write!(
                f,
                "resource provider name {name} is already used by provider {uuid}"
            ),
            PlacementError::ProviderNotFound(uuid) => {
                write!(f, "no resource provider with uuid {uuid}")
            }
            PlacementError::Contended(m) => {
                write!(f, "placement write gave up after repeated conflicts: {m}")
            }
        }
    }
}

impl std::error::Error for PlacementError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlacementError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for PlacementError {
    fn from(e: StoreError) -> Self {
        PlacementError::Store(e)
    }
}

impl From<sqlx::Error> for PlacementError {
    fn from(e: sqlx::Error) -> Self {
        PlacementError::Store(e.into())
    }
}

fn invalid(message: impl Into<String>) -> PlacementError {
    PlacementError::InvalidInput(message.into())
}

fn uuid_arg(what: &str, text: &str) -> Result<String, PlacementError> {
    normalize_uuid(text).ok_or_else(|| invalid(format!("{what} {text:?} is not a uuid")))
}

/// Non-empty, every amount ≥ 1.
fn check_resources(resources: &Resources) -> Result<(), PlacementError> {
    if resources.is_empty() {
        return Err(invalid("no resources requested"));
    }
    if let Some((rc, n)) = resources.iter().find(|(_, n)| **n < 1) {
        return Err(invalid(format!("{rc} amount {n} is not positive")));
    }
    Ok(())
}

async fn check_classes<'a>(
    conn: &mut sqlx::AnyConnection,
    classes: impl IntoIterator<Item = &'a String>,
) -> Result<(), PlacementError> {
    for rc in classes {
        if !db::class_exists(&mut *conn, rc).await? {
            return Err(invalid(format!("no such resource class {rc}")));
        }
    }
    Ok(())
}

/// `wanted` plus the classes of `current` that are not wanted but still in use (kept as they
/// are).
fn target(
    current: &BTreeMap<String, Inventory>,
    wanted: &BTreeMap<String, Inventory>,
    in_use: &[String],
) -> BTreeMap<String, Inventory> {
    let mut out = wanted.clone();
    for rc in in_use {
        if let Some(inv) = current.get(rc) {
            out.insert(rc.clone(), *inv);
        }
    }
    out
}

/// A short pause before retrying a write that lost a race, growing with the attempt.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt + 1))).await;
}

impl Placement {
    /// Creates the provider (`uuid`, `name`) if missing — a name used by a different provider is
    /// [`PlacementError::NameConflict`]; an existing provider with another name is renamed — and
    /// sets its inventories to exactly `inventories`: classes not listed are removed unless they
    /// have allocations, in which case they are kept as they are. A change bumps the provider's
    /// generation under its row lock first (as the HTTP inventory writes do), so it is
    /// serialised with concurrent claims; lost creation races are retried. Idempotent: when
    /// nothing differs, nothing is written.
    pub async fn ensure_compute_node(
        &self,
        uuid: &str,
        name: &str,
        inventories: &BTreeMap<String, InventorySpec>,
    ) -> Result<(), PlacementError> {
        let uuid = uuid_arg("provider uuid", uuid)?;
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid(format!(
                "provider name {name:?} must have 1 to 200 characters"
            )));
        }
        let mut wanted = BTreeMap::new();
        for (rc, spec) in inventories {
            spec.check(rc)?;
            wanted.insert(rc.clone(), spec.inventory());
        }
        {
            let mut c = self.store.pool().acquire().await?;
            check_classes(&mut c, wanted.keys()).await?;
            // Read-only fast path: nothing to do.
            if let Some(rp) = db::provider(&mut c, &uuid).await?
                && rp.name == name
            {
                let current = db::inventories(&mut c, &uuid).await?;
                let in_use = db::inventory_in_use(&mut c, &uuid, &current, &wanted).await?;
                if target(&current, &wanted, &in_use) == current {
                    return Ok(());
                }
            }
        }
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let mut tx = changes::begin_write(&self.store).await?;
            let mut changed = false;
            match db::provider(&mut tx, &uuid).await? {
                None => {
                    if let Some(other) = db::provider_by_name(&mut tx, name).await? {
                        return Err(PlacementError::NameConflict {
                            name: name.into(),
                            uuid: other.uuid,
                        });
                    }
                    match db::insert_provider(&mut tx, &uuid, name, None, &uuid).await {
                        Ok(()) => changed = true,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(rp) if rp.name != name => {
                    if let Some(other) = db::provider_by_name(&mut tx, name).await? {
                        return Err(PlacementError::NameConflict {
                            name: name.into(),
                            uuid: other.uuid,
                        });
                    }
                    let renamed = sqlx::query(
                        "UPDATE placement_providers SET name = $1, updated_at = $2 WHERE uuid = $3",
                    )
                    .bind(name)
                    .bind(ferrostack_store::now_rfc3339())
                    .bind(&uuid)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_write);
                    match renamed {
                        Ok(_) => changed = true,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(_) => {}
            }
            // The row lock first, then the inventories and usage as they are now.
            if db::bump_generation(&mut tx, &uuid, None).await?.is_none() {
                continue; // deleted concurrently
            }
            let current = db::inventories(&mut tx, &uuid).await?;
            let in_use = db::inventory_in_use(&mut tx, &uuid, &current, &wanted).await?;
            let target = target(&current, &wanted, &in_use);
            if target == current && !changed {
                return Ok(()); // someone else wrote the same; the rollback undoes the bump
            }
            db::apply_inventories(&mut tx, &uuid, &current, &target).await?;
            changes::commit_write(tx).await?;
            if !in_use.is_empty() {
                tracing::info!(
                    provider = %uuid,
                    classes = ?in_use,
                    "inventory kept: the classes still have allocations"
                );
            }
            return Ok(());
        }
        Err(PlacementError::Contended(format!(
            "ensuring resource provider {uuid} ({name})"
        )))
    }

    /// Root providers that can satisfy all of `resources` on themselves (no sharing or nested
    /// providers: compute nodes), in creation order, at most `limit` of them. A provider must
    /// have every trait of `required_traits`, none of `forbidden_traits` and, when `member_of`
    /// is not empty, be in at least one of those aggregates. Fitting is placement's rule
    /// (capacity, min_unit, max_unit, step_size). A required trait that does not exist matches
    /// no provider.
    pub async fn host_candidates(
        &self,
        resources: &Resources,
        required_traits: &[String],
        forbidden_traits: &[String],
        member_of: &[String],
        limit: usize,
    ) -> Result<Vec<HostCandidate>, PlacementError> {
        check_resources(resources)?;
        let member_of: Vec<String> = member_of
            .iter()
            .map(|a| uuid_arg("aggregate", a))
            .collect::<Result<_, _>>()?;
        {
            let mut c = self.store.pool().acquire().await?;
            check_classes(&mut c, resources.keys()).await?;
        }
        let snap = self.snapshot().await?;
        let mut out = Vec::new();
        for rp in snap.providers.iter().filter(|rp| rp.parent.is_none()) {
            if out.len() >= limit {
                break;
            }
            let traits = snap.traits(&rp.uuid);
            let aggregates = snap.aggregates(&rp.uuid);
            let ok = resources.iter().all(|(rc, n)| snap.fits(&rp.uuid, rc, *n))
                && required_traits.iter().all(|t| traits.contains(t))
                && !forbidden_traits.iter().any(|t| traits.contains(t))
                && (member_of.is_empty() || member_of.iter().any(|a| aggregates.contains(a)));
            if !ok {
                continue;
            }
            let mut capacity = Resources::new();
            let mut free = Resources::new();
            for (rc, inv) in snap.inventories(&rp.uuid) {
                capacity.insert(rc.clone(), inv.capacity());
                free.insert(rc.clone(), inv.capacity() - snap.used(&rp.uuid, rc));
            }
            out.push(HostCandidate {
                uuid: rp.uuid.clone(),
                name: rp.name.clone(),
                free,
                capacity,
                traits: traits.to_vec(),
                aggregates: aggregates.to_vec(),
            });
        }
        Ok(out)
    }

    /// Claims `resources` on `provider` for `consumer` (a server uuid) atomically, recording
    /// `project_id`, `user_id` and consumer type [`CONSUMER_TYPE`] as `PUT /allocations` does.
    /// `Ok(true)` when written; `Ok(false)` when they no longer fit (someone else claimed first,
    /// the inventory changed) or the provider is gone. If the consumer already has exactly these
    /// allocations (on this provider and nowhere else), `Ok(true)` without writing (an
    /// idempotent retry after a crash). If it has different allocations, they are replaced
    /// (move semantics) only if the new ones fit.
    pub async fn claim(
        &self,
        consumer: &str,
        project_id: &str,
        user_id: &str,
        provider: &str,
        resources: &Resources,
    ) -> Result<bool, PlacementError> {
        let consumer = uuid_arg("consumer", consumer)?;
        let provider = uuid_arg("provider", provider)?;
        check_resources(resources)?;
        for (what, id) in [("project_id", project_id), ("user_id", user_id)] {
            if id.is_empty() || id.chars().count() > 255 {
                return Err(invalid(format!("{what} must have 1 to 255 characters")));
            }
        }
        let mine = BTreeMap::from([(provider.clone(), resources.clone())]);
        let write = ConsumerWrite {
            consumer: consumer.clone(),
            allocs: resources
                .iter()
                .map(|(rc, n)| (provider.clone(), rc.clone(), *n))
                .collect(),
            project_id: project_id.into(),
            user_id: user_id.into(),
            consumer_type: Some(CONSUMER_TYPE.into()),
            generation: None,
        };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            {
                let mut c = self.store.pool().acquire().await?;
                if db::consumer_allocations(&mut c, &consumer).await? == mine {
                    return Ok(true);
                }
            }
            match db::write_allocations(&self.store, std::slice::from_ref(&write)).await {
                Ok(()) => return Ok(true),
                Err(
                    WriteError::NoProvider(_)
                    | WriteError::NoInventory(..)
                    | WriteError::Constraints(..)
                    | WriteError::Capacity(..),
                ) => return Ok(false),
                // The same consumer written concurrently: look again.
                Err(WriteError::ConsumerGeneration(_)) => continue,
                Err(WriteError::NoClass(_, rc)) => {
                    return Err(invalid(format!("no such resource class {rc}")));
                }
                Err(WriteError::Store(e)) => return Err(e.into()),
            }
        }
        Err(PlacementError::Contended(format!(
            "claiming for consumer {consumer}"
        )))
    }

    /// Deletes every allocation of `consumer` and its consumer record, as
    /// `DELETE /allocations/{consumer}`; `Ok` even if it had none.
    pub async fn release(&self, consumer: &str) -> Result<(), PlacementError> {
        let consumer = uuid_arg("consumer", consumer)?;
        let mut tx = changes::begin_write(&self.store).await?;
        db::delete_consumer(&mut tx, &consumer).await?;
        changes::commit_write(tx).await?;
        Ok(())
    }

    /// The allocations of every consumer on `provider` (for reconciliation after a crash):
    /// consumer uuid → resources. [`PlacementError::ProviderNotFound`] if it does not exist.
    pub async fn consumers_on(
        &self,
        provider: &str,
    ) -> Result<BTreeMap<String, Resources>, PlacementError> {
        let provider = uuid_arg("provider", provider)?;
        let mut c = self.store.pool().acquire().await?;
        if db::provider(&mut c, &provider).await?.is_none() {
            return Err(PlacementError::ProviderNotFound(provider));
        }
        let mut out: BTreeMap<String, Resources> = BTreeMap::new();
        for (consumer, rc, used, _) in db::provider_allocations(&mut c, &provider).await? {
            out.entry(consumer).or_default().insert(rc, used);
        }
        Ok(out)
    }

    /// Usage on one provider per class, as `GET /resource_providers/{uuid}/usages`: every
    /// class with inventory (0 when unused). [`PlacementError::ProviderNotFound`] if it does not
    /// exist.
    pub async fn provider_usages(&self, provider: &str) -> Result<Resources, PlacementError> {
        let provider = uuid_arg("provider", provider)?;
        let mut c = self.store.pool().acquire().await?;
        if db::provider(&mut c, &provider).await?.is_none() {
            return Err(PlacementError::ProviderNotFound(provider));
        }
        Ok(db::usages_with_zeros(&mut c, &provider).await?)
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
