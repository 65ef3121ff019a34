//! Resources stored as documents: a row whose `data` column holds the resource as JSON and whose
//! other columns repeat what queries filter on or constraints guard.
//!
//! The functions take a connection (a pooled one for reads, a transaction's for writes) and
//! build portable SQL from the [`Doc`]'s table and columns, so every service that stores its
//! resources this way shares one implementation on both backends.

use crate::Backend;
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{Any, AnyConnection, Row, any::AnyRow};

/// A column value besides `id` and `data`.
pub enum Col {
    /// A text column (NULL when `None`).
    Text(Option<String>),
    /// An integer column (NULL when `None`).
    Int(Option<i64>),
}

impl Col {
    /// A non-null text value.
    pub fn text(s: &str) -> Col {
        Col::Text(Some(s.to_string()))
    }

    /// A boolean stored as 0/1.
    pub fn flag(b: bool) -> Col {
        Col::Int(Some(b as i64))
    }
}

/// A resource stored as a row: its table and the columns repeated out of its JSON. Every table
/// has `id`, `data` and `created_at` columns (reads order by `created_at, id`).
pub trait Doc: Serialize + DeserializeOwned + Send + Sync {
    /// The table.
    const TABLE: &'static str;
    /// The primary key.
    fn id(&self) -> &str;
    /// The columns other than `id` and `data`, with their values.
    fn columns(&self) -> Vec<(&'static str, Col)>;
}

/// How a read inside a write transaction holds the rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    /// Against concurrent writers until the end of the transaction.
    Update,
    /// Against changes and deletes; other readers may hold it too.
    Share,
}

fn lock_clause(backend: Backend, lock: RowLock) -> &'static str {
    match (backend, lock) {
        // SQLite write transactions begin IMMEDIATE: they hold the database's write lock.
        (Backend::Sqlite, _) => "",
        (Backend::Postgres, RowLock::Update) => " FOR UPDATE",
        (Backend::Postgres, RowLock::Share) => " FOR SHARE",
    }
}

fn json_error(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

fn bind_col<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    col: Col,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    match col {
        Col::Text(v) => q.bind(v),
        Col::Int(v) => q.bind(v),
    }
}

/// The resource in a row's `data` column.
pub fn decode<T: DeserializeOwned>(row: &AnyRow) -> Result<T, sqlx::Error> {
    let data: String = row.try_get("data")?;
    serde_json::from_str(&data).map_err(json_error)
}

/// Rows of `T` matching `cond` (SQL over its columns, `$1`... bound to `binds`), oldest first.
pub async fn select<T: Doc>(
    conn: &mut AnyConnection,
    cond: &str,
    binds: &[&str],
) -> Result<Vec<T>, sqlx::Error> {
    let sql = format!(
        "SELECT data FROM {} WHERE {cond} ORDER BY created_at, id",
        T::TABLE
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b.to_string());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(decode).collect()
}

/// One row of `T` by id.
pub async fn get<T: Doc>(conn: &mut AnyConnection, id: &str) -> Result<Option<T>, sqlx::Error> {
    Ok(select::<T>(conn, "id = $1", &[id])
        .await?
        .into_iter()
        .next())
}

/// One row of `T` by id, locked as `lock` says until the end of the transaction.
pub async fn get_locked<T: Doc>(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &str,
    lock: RowLock,
) -> Result<Option<T>, sqlx::Error> {
    let sql = format!(
        "SELECT data FROM {} WHERE id = $1{}",
        T::TABLE,
        lock_clause(backend, lock)
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Runs `sql` with `$1` bound to the row's id, `$2` to its JSON and `$3`... to `columns`.
async fn execute_with_row<T: Doc>(
    conn: &mut AnyConnection,
    sql: String,
    doc: &T,
    columns: Vec<(&'static str, Col)>,
) -> Result<(), sqlx::Error> {
    let data = serde_json::to_string(doc).map_err(json_error)?;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(doc.id().to_string())
        .bind(data);
    for (_, col) in columns {
        q = bind_col(q, col);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Inserts a row.
pub async fn insert<T: Doc>(conn: &mut AnyConnection, doc: &T) -> Result<(), sqlx::Error> {
    let columns = doc.columns();
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let marks: Vec<String> = (3..3 + columns.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} (id, data{}{}) VALUES ($1, $2{}{})",
        T::TABLE,
        if names.is_empty() { "" } else { ", " },
        names.join(", "),
        if marks.is_empty() { "" } else { ", " },
        marks.join(", ")
    );
    execute_with_row(conn, sql, doc, columns).await
}

/// Writes a changed row back.
pub async fn save<T: Doc>(conn: &mut AnyConnection, doc: &T) -> Result<(), sqlx::Error> {
    let columns = doc.columns();
    let sets: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| format!(", {n} = ${}", i + 3))
        .collect();
    let sql = format!(
        "UPDATE {} SET data = $2{} WHERE id = $1",
        T::TABLE,
        sets.concat()
    );
    execute_with_row(conn, sql, doc, columns).await
}

/// Deletes a row of `T` by id.
pub async fn delete<T: Doc>(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    let sql = format!("DELETE FROM {} WHERE id = $1", T::TABLE);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Runs a statement with text parameters; the number of rows it touched.
pub async fn exec(
    conn: &mut AnyConnection,
    sql: &'static str,
    binds: &[&str],
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.to_string());
    }
    Ok(q.execute(conn).await?.rows_affected())
}

/// Counts rows with a query returning one integer.
pub async fn count(
    conn: &mut AnyConnection,
    sql: &'static str,
    binds: &[&str],
) -> Result<i64, sqlx::Error> {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.fetch_one(conn).await
}

/// The (first) text column of every row a query returns.
pub async fn strings(
    conn: &mut AnyConnection,
    sql: &'static str,
    binds: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let mut q = sqlx::query_scalar::<_, String>(sql);
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.fetch_all(conn).await
}

/// Takes the named lock `name` in `table` (columns `name TEXT PRIMARY KEY, counter BIGINT`)
/// until the end of the transaction: the row is created if missing, then updated, so a second
/// transaction taking the same name waits for the first.
pub async fn lock_name(
    conn: &mut AnyConnection,
    table: &'static str,
    name: &str,
) -> Result<(), sqlx::Error> {
    let insert =
        format!("INSERT INTO {table} (name, counter) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING");
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let update = format!("UPDATE {table} SET counter = counter + 1 WHERE name = $1");
    sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// A write transaction over document rows. On SQLite it begins `IMMEDIATE` (it holds the
/// database's write lock from the start); on PostgreSQL row locks are taken as its methods say.
/// Named locks ([`DocTx::lock_name`]) live in the service's `locks` table. Its methods fail
/// with the service's error type `E`.
pub struct DocTx<E> {
    tx: sqlx::Transaction<'static, Any>,
    backend: Backend,
    locks: &'static str,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<E: From<sqlx::Error>> DocTx<E> {
    /// Begins a write transaction on `store`, whose named locks live in table `locks`.
    pub async fn begin(store: &crate::Store, locks: &'static str) -> Result<Self, E> {
        let tx = match store.backend() {
            Backend::Sqlite => store.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => store.pool().begin().await?,
        };
        Ok(DocTx {
            tx,
            backend: store.backend(),
            locks,
            error: std::marker::PhantomData,
        })
    }

    /// Commits it.
    pub async fn commit(self) -> Result<(), E> {
        self.tx.commit().await.map_err(E::from)
    }

    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Reads a row and locks it against concurrent writers until the end of the transaction.
    pub async fn lock<T: Doc>(&mut self, id: &str) -> Result<Option<T>, E> {
        get_locked(&mut self.tx, self.backend, id, RowLock::Update)
            .await
            .map_err(E::from)
    }

    /// Reads a row and keeps it from being changed or deleted (other readers may do the same)
    /// until the end of the transaction.
    pub async fn lock_shared<T: Doc>(&mut self, id: &str) -> Result<Option<T>, E> {
        get_locked(&mut self.tx, self.backend, id, RowLock::Share)
            .await
            .map_err(E::from)
    }

    /// Takes the lock called `name` (e.g. `quota:<project>`) until the end of the transaction.
    pub async fn lock_name(&mut self, name: &str) -> Result<(), E> {
        lock_name(&mut self.tx, self.locks, name)
            .await
            .map_err(E::from)
    }

    /// Rows of `T` matching `cond`.
    pub async fn select<T: Doc>(&mut self, cond: &str, binds: &[&str]) -> Result<Vec<T>, E> {
        select(&mut self.tx, cond, binds).await.map_err(E::from)
    }

    /// One row of `T` by id (not locked).
    pub async fn get<T: Doc>(&mut self, id: &str) -> Result<Option<T>, E> {
        get(&mut self.tx, id).await.map_err(E::from)
    }

    /// Inserts a row.
    pub async fn insert<T: Doc>(&mut self, row: &T) -> Result<(), E> {
        insert(&mut self.tx, row).await.map_err(E::from)
    }

    /// Writes a changed row back.
    pub async fn save<T: Doc>(&mut self, row: &T) -> Result<(), E> {
        save(&mut self.tx, row).await.map_err(E::from)
    }

    /// Deletes a row by id.
    pub async fn delete<T: Doc>(&mut self, id: &str) -> Result<(), E> {
        delete::<T>(&mut self.tx, id).await.map_err(E::from)
    }

    /// Runs a statement with text parameters.
    pub async fn exec(&mut self, sql: &'static str, binds: &[&str]) -> Result<u64, E> {
        exec(&mut self.tx, sql, binds).await.map_err(E::from)
    }

    /// Counts rows with a query returning one integer.
    pub async fn count(&mut self, sql: &'static str, binds: &[&str]) -> Result<i64, E> {
        count(&mut self.tx, sql, binds).await.map_err(E::from)
    }

    /// The text column of every row a query returns.
    pub async fn strings(&mut self, sql: &'static str, binds: &[&str]) -> Result<Vec<String>, E> {
        strings(&mut self.tx, sql, binds).await.map_err(E::from)
    }
}

/// Whether a failed write may succeed when run again: a PostgreSQL deadlock or serialization
/// failure, or SQLite still busy after its timeout.
pub fn retryable(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some("40001") | Some("40P01") | Some("5") | Some("6")
    ) || db.message().contains("database is locked")
}

/// Whether a write transaction that failed with `error` on its `attempt`-th retry should run
/// again: when [`retryable`] and fewer than five retries were made, counts the retry and pauses
/// a few milliseconds (with jitter) before returning `true`. `what` names the service in the
/// log.
pub async fn retry_pause(error: &sqlx::Error, attempt: &mut u32, what: &str) -> bool {
    if !retryable(error) || *attempt >= 5 {
        return false;
    }
    *attempt += 1;
    tracing::debug!(attempt = *attempt, error = ?error, "{what} write retried");
    let pause = 5 * u64::from(*attempt) + rand::random::<u64>() % 10;
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    true
}

/// A service's error type as a [`DocDb`] sees it: built from, and possibly being, a database
/// failure.
pub trait DocError: From<sqlx::Error> {
    /// The database failure, if this is one.
    fn as_db(&self) -> Option<&sqlx::Error>;
}

/// A service's database handle over document rows: reads on the pool, writes in a [`DocTx`]
/// whose named locks live in the service's locks table. Its methods fail with `E`.
pub struct DocDb<E> {
    store: crate::Store,
    locks: &'static str,
    service: &'static str,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<E> Clone for DocDb<E> {
    fn clone(&self) -> Self {
        DocDb {
            store: self.store.clone(),
            locks: self.locks,
            service: self.service,
            error: std::marker::PhantomData,
        }
    }
}

impl<E: DocError> DocDb<E> {
    /// The handle over `store`, with named locks in table `locks`; `service` names it in logs.
    pub fn new(store: crate::Store, locks: &'static str, service: &'static str) -> Self {
        DocDb {
            store,
            locks,
            service,
            error: std::marker::PhantomData,
        }
    }

    /// The store.
    pub fn store(&self) -> &crate::Store {
        &self.store
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>, E> {
        Ok(self.store.pool().acquire().await?)
    }

    /// Rows of `T` matching `cond` (SQL over its columns, `$1`... bound to `binds`), oldest
    /// first.
    pub async fn select<T: Doc>(&self, cond: &str, binds: &[&str]) -> Result<Vec<T>, E> {
        Ok(select(&mut *self.conn().await?, cond, binds).await?)
    }

    /// One row of `T` by id.
    pub async fn get<T: Doc>(&self, id: &str) -> Result<Option<T>, E> {
        Ok(get(&mut *self.conn().await?, id).await?)
    }

    /// Counts rows with a query returning one integer.
    pub async fn count(&self, sql: &'static str, binds: &[&str]) -> Result<i64, E> {
        Ok(count(&mut *self.conn().await?, sql, binds).await?)
    }

    /// Begins a write transaction (run it with [`retry_tx!`], which also commits and retries).
    pub async fn begin(&self) -> Result<DocTx<E>, E> {
        DocTx::begin(&self.store, self.locks).await
    }

    /// Ends a write transaction with the operation's outcome: commits on success. A deadlock
    /// or serialization failure gives `None` after a short pause (run the operation again, up
    /// to five times); anything else is final.
    pub async fn finish<T>(
        &self,
        tx: DocTx<E>,
        outcome: Result<T, E>,
        attempt: &mut u32,
    ) -> Option<Result<T, E>> {
        self.finish_with(tx.commit(), outcome, attempt).await
    }

    /// [`DocDb::finish`] for a transaction that `commit` commits (e.g. one that also
    /// publishes what it recorded); `commit` runs only on success.
    pub async fn finish_with<T>(
        &self,
        commit: impl Future<Output = Result<(), E>>,
        outcome: Result<T, E>,
        attempt: &mut u32,
    ) -> Option<Result<T, E>> {
        let outcome = match outcome {
            Ok(value) => commit.await.map(|()| value),
            Err(e) => {
                // Rolls the transaction back now, not after the pause below.
                drop(commit);
                Err(e)
            }
        };
        if let Some(e) = outcome.as_ref().err().and_then(E::as_db)
            && retry_pause(e, attempt, self.service).await
        {
            return None;
        }
        Some(outcome)
    }
}

/// Runs `body` (an expression using `$tx: &mut $tx_type`) in a write transaction of `db` (a
/// reference to a handle with `begin()` and `finish(tx, outcome, &mut attempt)`), again as long
/// as `finish` gives `None`. The services' own `write_tx!` macros expand to this; a macro rather
/// than a closure-taking function so that the caller's future stays `Send`.
#[macro_export]
macro_rules! retry_tx {
    ($db:expr, $tx_type:ty, |$tx:ident| $body:expr) => {{
        let db = $db;
        let mut attempt = 0u32;
        loop {
            let mut owned = match db.begin().await {
                Ok(t) => t,
                Err(e) => break Err(e),
            };
            let outcome = {
                let $tx: &mut $tx_type = &mut owned;
                $body
            };
            if let Some(result) = db.finish(owned, outcome, &mut attempt).await {
                break result;
            }
        }
    }};
}
