//! The relational store shared by all services.
//!
//! One `sqlx` `Any` pool: SQLite (WAL, one file under the state dir) by default, PostgreSQL when
//! the URL says `postgres://`. Queries are written once in the portable subset both accept
//! (`$1` placeholders, `TEXT`/`BIGINT` columns, booleans as 0/1 integers, timestamps as RFC 3339
//! text), so the two backends run the same code. Each service owns its migrations and applies
//! them with [`Store::migrate`].

pub mod doc;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use std::time::Duration;

pub use sqlx::{Any, AnyPool, Row, Transaction, any::AnyRow};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint rejected the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration {service}/{version} failed: {source}")]
    Migration {
        service: String,
        version: i64,
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Maps a unique-violation into [`StoreError::Conflict`], keeping other errors.
    pub fn from_write(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(db.message().to_string());
        }
        StoreError::Db(e)
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// One migration of one service.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Increasing number within the service.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// Portable SQL (several statements allowed).
    pub sql: &'static str,
}

/// The database handle shared by the services of a process.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path` creates the file; `postgres://...`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .execute(conn)
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        Ok(Store { pool, backend })
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Applies the migrations of `service` that are not applied yet, each in its own transaction,
    /// in version order. Safe to call on every start and from several processes.
    pub async fn migrate(&self, service: &str, migrations: &[Migration]) -> Result<(), StoreError> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS ferrostack_migrations (
                service TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,
                applied_at TEXT NOT NULL, PRIMARY KEY (service, version))",
        )
        .execute(&self.pool)
        .await?;
        let mut sorted: Vec<&Migration> = migrations.iter().collect();
        sorted.sort_by_key(|m| m.version);
        for migration in sorted {
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM ferrostack_migrations WHERE service = $1 AND version = $2",
            )
            .bind(service)
            .bind(migration.version)
            .fetch_optional(&self.pool)
            .await?;
            if applied.is_some() {
                continue;
            }
            let fail = |source| StoreError::Migration {
                service: service.into(),
                version: migration.version,
                source,
            };
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            sqlx::query("INSERT INTO ferrostack_migrations (service, version, name, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(service)
                .bind(migration.version)
                .bind(migration.name)
                .bind(now_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::info!(
                service,
                version = migration.version,
                name = migration.name,
                "migration applied"
            );
        }
        Ok(())
    }

    /// Closes the pool (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current time as stored: RFC 3339 with microseconds, UTC (`2026-11-22T15:39:32.123456Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Test helper: a store on an empty database of its own — a fresh SQLite file, or, when
/// `FERROSTACK_TEST_DATABASE_URL` names a PostgreSQL server (as in CI), a fresh database created
/// on it (so tests running in parallel never see each other's rows).
pub async fn test_store(name: &str) -> Result<Store, StoreError> {
    let unique = format!(
        "{}_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        uuid_like()
    );
    match std::env::var("FERROSTACK_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let admin = Store::connect(&url, 1).await?;
            let db = format!("fstest_{unique}").to_ascii_lowercase();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(admin.pool())
                .await?;
            admin.close().await;
            let (base, _) = url.rsplit_once('/').unwrap_or((&url, ""));
            Store::connect(&format!("{base}/{db}"), 4).await
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("ferrostack-test-{unique}"));
            let _ = std::fs::create_dir_all(&dir);
            Store::connect(&format!("sqlite://{}", dir.join("test.db").display()), 4).await
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            name: "t",
            sql: "CREATE TABLE store_selftest (id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
        },
        Migration {
            version: 2,
            name: "t2",
            sql: "ALTER TABLE store_selftest ADD COLUMN note TEXT",
        },
    ];

    #[tokio::test]
    async fn migrations_are_idempotent_and_queries_portable() {
        let store = test_store("store").await.unwrap();
        store.migrate("selftest", MIGRATIONS).await.unwrap();
        store.migrate("selftest", MIGRATIONS).await.unwrap();
        sqlx::query("INSERT INTO store_selftest (id, n, note) VALUES ($1, $2, $3)")
            .bind("a")
            .bind(7_i64)
            .bind("x")
            .execute(store.pool())
            .await
            .unwrap();
        let dup = sqlx::query("INSERT INTO store_selftest (id, n) VALUES ($1, $2)")
            .bind("a")
            .bind(8_i64)
            .execute(store.pool())
            .await
            .map_err(StoreError::from_write);
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let row = sqlx::query("SELECT n, note FROM store_selftest WHERE id = $1")
            .bind("a")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>("n"), 7);
        assert_eq!(row.get::<String, _>("note"), "x");
    }
}
