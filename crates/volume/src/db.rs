//! The block storage rows in the shared store.
//!
//! Every resource is a document row ([`ferrostack_store::doc`]): the JSON in `data` and the
//! columns queries filter on. Writes run in a [`Tx`]: on SQLite it begins `IMMEDIATE` (a check
//! and the write that depends on it cannot interleave with another writer); on PostgreSQL it
//! takes the named lock of what it checks first (`quota:<project>` before counting usage,
//! the volume's row with [`Tx::lock`] before a status transition). A deadlock or
//! serialization failure retries the whole operation ([`write_tx!`]).

use crate::model::{Attachment, QosSpecs, Snapshot, Volume, VolumeType};
use ferrostack_api::ApiError;
use ferrostack_store::doc::{self, Col, Doc};
use ferrostack_store::{Migration, Store};

/// The block storage schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "volumes, snapshots, types, qos specs, attachments, quotas",
        sql: "CREATE TABLE vol_locks (name TEXT PRIMARY KEY, counter BIGINT NOT NULL);
      CREATE TABLE vol_volumes (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT, status TEXT NOT NULL,
        size BIGINT NOT NULL, volume_type_id TEXT NOT NULL, host TEXT,
        consumes_quota BIGINT NOT NULL, has_task BIGINT NOT NULL,
        created_at TEXT NOT NULL, data TEXT NOT NULL);
      CREATE INDEX vol_volumes_project ON vol_volumes (project_id);
      CREATE INDEX vol_volumes_task ON vol_volumes (has_task);
      CREATE TABLE vol_snapshots (
        id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT,
        status TEXT NOT NULL, size BIGINT NOT NULL, consumes_quota BIGINT NOT NULL,
        created_at TEXT NOT NULL, data TEXT NOT NULL);
      CREATE INDEX vol_snapshots_volume ON vol_snapshots (volume_id);
      CREATE INDEX vol_snapshots_project ON vol_snapshots (project_id);
      CREATE TABLE vol_types (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, is_public BIGINT NOT NULL,
        qos_specs_id TEXT, created_at TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TABLE vol_qos_specs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
        data TEXT NOT NULL);
      CREATE TABLE vol_attachments (
        id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL,
        instance_uuid TEXT, attach_status TEXT NOT NULL, created_at TEXT NOT NULL,
        data TEXT NOT NULL);
      CREATE INDEX vol_attachments_volume ON vol_attachments (volume_id);
      CREATE INDEX vol_attachments_instance ON vol_attachments (instance_uuid);
      CREATE TABLE vol_quotas (
        project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL,
        PRIMARY KEY (project_id, resource));",
    },
    Migration {
        version: 2,
        name: "project default volume types (3.62)",
        sql: "CREATE TABLE vol_default_types (
        project_id TEXT PRIMARY KEY, volume_type_id TEXT NOT NULL);
      CREATE INDEX vol_default_types_type ON vol_default_types (volume_type_id);",
    },
    Migration {
        version: 3,
        name: "service heartbeats (os-services, os-hosts)",
        sql: "CREATE TABLE vol_services (
        host TEXT NOT NULL, binary_name TEXT NOT NULL, zone TEXT NOT NULL,
        disabled BIGINT NOT NULL, disabled_reason TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (host, binary_name));",
    },
    Migration {
        version: 4,
        name: "user messages (3.3)",
        sql: "CREATE TABLE vol_messages (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL, resource_uuid TEXT,
        expires_at TEXT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
      CREATE INDEX vol_messages_project ON vol_messages (project_id);",
    },
    Migration {
        version: 5,
        name: "quota classes",
        sql: "CREATE TABLE vol_quota_classes (
        class_name TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL,
        PRIMARY KEY (class_name, resource));",
    },
    Migration {
        version: 6,
        name: "the type a volume is being retyped to (per-type quota usage)",
        sql: "ALTER TABLE vol_volumes ADD COLUMN retype_to TEXT;",
    },
];

/// A failure inside a store operation: an answer for the client, or a database error.
#[derive(Debug)]
pub enum Error {
    /// A refusal with its Cinder error (404, 409, 413, ...).
    Api(ApiError),
    /// The database failed.
    Db(sqlx::Error),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, Error>;

impl doc::DocError for Error {
    fn as_db(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Db(e) => Some(e),
            Error::Api(_) => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Db(e)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Api(e) => e,
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                ApiError::conflict("The resource changed concurrently; retry.")
            }
            Error::Db(e) => ApiError::internal(e),
        }
    }
}

impl From<Error> for anyhow::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Api(e) => anyhow::anyhow!("{}", e.message),
            Error::Db(e) => e.into(),
        }
    }
}

impl Doc for Volume {
    const TABLE: &'static str = "vol_volumes";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::Text(self.name.clone())),
            ("status", Col::text(&self.status)),
            // The gigabytes the volume holds against quota: an extension counts from its
            // request, so a concurrent create cannot use what the extension will take.
            ("size", Col::Int(Some(self.quota_size()))),
            ("volume_type_id", Col::text(&self.volume_type_id)),
            ("host", Col::Text(self.host.clone())),
            ("consumes_quota", Col::flag(self.consumes_quota)),
            ("has_task", Col::flag(self.task.is_some())),
            ("created_at", Col::text(&self.created_at)),
            // While a retype runs, the volume also counts against the new type's quotas.
            (
                "retype_to",
                Col::Text(self.retyping_to().map(str::to_string)),
            ),
        ]
    }
}

impl Doc for Snapshot {
    const TABLE: &'static str = "vol_snapshots";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("volume_id", Col::text(&self.volume_id)),
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::Text(self.name.clone())),
            ("status", Col::text(&self.status)),
            ("size", Col::Int(Some(self.size))),
            ("consumes_quota", Col::flag(self.consumes_quota)),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for VolumeType {
    const TABLE: &'static str = "vol_types";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("name", Col::text(&self.name)),
            ("is_public", Col::flag(self.is_public)),
            ("qos_specs_id", Col::Text(self.qos_specs_id.clone())),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for QosSpecs {
    const TABLE: &'static str = "vol_qos_specs";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("name", Col::text(&self.name)),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for Attachment {
    const TABLE: &'static str = "vol_attachments";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("volume_id", Col::text(&self.volume_id)),
            ("project_id", Col::text(&self.project_id)),
            ("instance_uuid", Col::Text(self.instance_uuid.clone())),
            ("attach_status", Col::text(&self.attach_status)),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

/// The database handle of the volume service: reads on the pool, writes in a [`Tx`] (the
/// methods are [`doc::DocDb`]'s).
#[derive(Clone)]
pub struct Db(doc::DocDb<Error>);

impl Db {
    /// The handle over `store`.
    pub fn new(store: Store) -> Db {
        Db(doc::DocDb::new(store, "vol_locks", "volume"))
    }
}

impl std::ops::Deref for Db {
    type Target = doc::DocDb<Error>;
    fn deref(&self) -> &doc::DocDb<Error> {
        &self.0
    }
}

/// Runs `body` (an expression using `tx: &mut Tx`, usually one store operation awaited) in a
/// write transaction of `db` and commits it; retried as [`doc::DocDb::finish`] says. A macro
/// rather than a closure-taking function so that the caller's future stays `Send`.
#[macro_export]
macro_rules! volume_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        $crate::db::retry_tx!(&$db as &$crate::db::Db, $crate::db::Tx, |$tx| $body)
    };
}
pub use crate::volume_tx as write_tx;
#[doc(hidden)]
pub use ferrostack_store::retry_tx;

/// A write transaction (see the module documentation for its locking).
pub type Tx = doc::DocTx<Error>;
