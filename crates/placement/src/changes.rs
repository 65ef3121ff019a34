//! The change log that lets a cached [`crate::snapshot::Snapshot`] catch up with a few writes
//! instead of reading every table again.
//!
//! Every placement write runs in a [`WriteTx`]: it bumps `placement_change_counter` and, in the
//! same transaction, records in `placement_changes` which providers it touched (their rows,
//! inventories, usages, traits or aggregates) under the new counter value, or the
//! [`FULL`] marker when it changed something global (the class or trait catalog, the provider
//! set or tree) or did not say what it touched. Rows more than [`WINDOW`] writes old are pruned;
//! a reader further behind than that reads everything again.

use ferrostack_store::{Backend, Store, StoreError};
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::{BTreeSet, HashSet};
use std::ops::{Deref, DerefMut};

/// The `provider_uuid` of a log row that stands for "anything may have changed".
pub(crate) const FULL: &str = "*";

/// How many writes the log keeps: a reader at most this far behind can catch up from it.
pub(crate) const WINDOW: i64 = 1024;

/// Old rows are pruned by every write whose counter is a multiple of this.
const PRUNE_EVERY: i64 = 64;

/// A placement write transaction that remembers what it touched (see the module docs).
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    /// The counter value of this write, once bumped.
    counter: Option<i64>,
    touched: BTreeSet<String>,
    full: bool,
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl WriteTx {
    /// Records that a provider's row, inventories, usages, traits or aggregates changed.
    pub fn touch(&mut self, provider: &str) {
        self.touched.insert(provider.to_string());
    }

    /// Records a change that readers cannot patch provider by provider.
    pub fn touch_all(&mut self) {
        self.full = true;
    }

    async fn bump(&mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE placement_change_counter SET value = value + 1 WHERE id = 'placement'")
            .execute(&mut *self.tx)
            .await?;
        self.counter = Some(current(&mut self.tx).await?);
        Ok(())
    }
}

/// Begins a write transaction. On SQLite the first statement takes the write lock (so the
/// transaction never has to upgrade a stale read snapshot and simply waits its turn); on
/// PostgreSQL the change counter is bumped last, in [`commit_write`], after any provider row
/// locks (always in that order, so no deadlock).
pub(crate) async fn begin_write(store: &Store) -> Result<WriteTx, StoreError> {
    let mut tx = WriteTx {
        tx: store.begin().await?,
        counter: None,
        touched: BTreeSet::new(),
        full: false,
    };
    if store.backend() == Backend::Sqlite {
        tx.bump().await?;
    }
    Ok(tx)
}

/// Logs what the transaction touched (everything when it named nothing) and commits it.
pub(crate) async fn commit_write(mut tx: WriteTx) -> Result<(), StoreError> {
    if tx.counter.is_none() {
        tx.bump().await?;
    }
    let counter = tx.counter.unwrap_or_default();
    let full = tx.full || tx.touched.is_empty();
    let rows: Vec<&str> = match full {
        true => vec![FULL],
        false => tx.touched.iter().map(String::as_str).collect(),
    };
    for provider in rows {
        sqlx::query("INSERT INTO placement_changes (counter, provider_uuid) VALUES ($1, $2)")
            .bind(counter)
            .bind(provider)
            .execute(&mut *tx.tx)
            .await?;
    }
    if counter % PRUNE_EVERY == 0 {
        sqlx::query("DELETE FROM placement_changes WHERE counter <= $1")
            .bind(counter - WINDOW)
            .execute(&mut *tx.tx)
            .await?;
    }
    tx.tx.commit().await?;
    Ok(())
}

/// The change counter: bumped by every placement write, in the write's transaction.
pub(crate) async fn current(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT value FROM placement_change_counter WHERE id = 'placement'")
        .fetch_one(conn)
        .await
        .map_err(Into::into)
}

/// What changed after counter `since` up to `now` (both read in the caller's transaction).
#[derive(Debug, PartialEq)]
pub(crate) enum Since {
    /// Only these providers.
    Providers(HashSet<String>),
    /// Something global changed, or the log does not cover the range.
    Everything,
}

/// Reads the log between `since` (exclusive) and `now` (inclusive).
pub(crate) async fn since(
    conn: &mut AnyConnection,
    since: i64,
    now: i64,
) -> Result<Since, StoreError> {
    if now - since >= WINDOW || now < since {
        return Ok(Since::Everything);
    }
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT counter, provider_uuid FROM placement_changes WHERE counter > $1 AND counter <= $2",
    )
    .bind(since)
    .bind(now)
    .fetch_all(conn)
    .await?;
    let writes: HashSet<i64> = rows.iter().map(|(c, _)| *c).collect();
    // Every write logs at least one row: a gap is a write this log did not see.
    if writes.len() as i64 != now - since || rows.iter().any(|(_, p)| p == FULL) {
        return Ok(Since::Everything);
    }
    Ok(Since::Providers(rows.into_iter().map(|(_, p)| p).collect()))
}
