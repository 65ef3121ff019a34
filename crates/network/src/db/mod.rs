//! The network service's rows in the shared store.
//!
//! Every resource is a row whose `data` column holds the resource (JSON, [`crate::model`]) and
//! whose other columns repeat what queries filter on or constraints guard (project, network,
//! device, binding host, MAC per network, address per subnet). Writes run in a [`Tx`]: on
//! SQLite it begins `IMMEDIATE` (it holds the write lock from the start, so a check and the
//! write that depends on it cannot interleave with another writer); on PostgreSQL it locks the
//! rows whose invariants it checks (`FOR UPDATE`: the subnet whose addresses it allocates, the
//! project whose quota it counts), always in the same order: named locks (project quota,
//! segment pools), then networks, subnets, ports, routers. Unique keys back every invariant
//! (one address per subnet, one MAC per network, one network per segment), so even a missed
//! lock cannot produce a duplicate. A deadlock or serialization failure retries the whole
//! operation ([`Db::write`]).

use crate::events::Event;
use ferrostack_api::ApiError;
use ferrostack_bus::MessageBus;
use ferrostack_store::doc;
use ferrostack_store::{Any, Migration, Store, StoreError};
use sqlx::AnyConnection;
use std::sync::Arc;

pub mod floatingips;
pub mod networks;
pub mod ports;
pub mod quotas;
pub mod routers;
pub mod security_groups;
pub mod subnetpools;
pub mod subnets;

/// The network service's schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "networks, subnets, ports, addresses, security groups, routers, floating IPs, quotas",
        sql: "CREATE TABLE net_locks (name TEXT PRIMARY KEY, counter BIGINT NOT NULL);
          CREATE TABLE net_networks (
            id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
            shared BIGINT NOT NULL, external BIGINT NOT NULL, network_type TEXT NOT NULL,
            physical_network TEXT, segmentation_id BIGINT, revision_number BIGINT NOT NULL,
            created_at TEXT NOT NULL, data TEXT NOT NULL);
          CREATE INDEX net_networks_project ON net_networks (project_id);
          CREATE TABLE net_segments (
            network_type TEXT NOT NULL, physical_network TEXT NOT NULL,
            segmentation_id BIGINT NOT NULL, network_id TEXT NOT NULL,
            PRIMARY KEY (network_type, physical_network, segmentation_id));
          CREATE INDEX net_segments_network ON net_segments (network_id);
          CREATE TABLE net_subnets (
            id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL,
            ip_version BIGINT NOT NULL, cidr TEXT NOT NULL, subnetpool_id TEXT,
            revision_number BIGINT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
          CREATE INDEX net_subnets_network ON net_subnets (network_id);
          CREATE INDEX net_subnets_pool ON net_subnets (subnetpool_id);
          CREATE TABLE net_subnetpools (
            id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
            ip_version BIGINT NOT NULL, shared BIGINT NOT NULL, is_default BIGINT NOT NULL,
            revision_number BIGINT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
          CREATE TABLE net_ports (
            id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL,
            device_id TEXT NOT NULL, device_owner TEXT NOT NULL, mac_address TEXT NOT NULL,
            binding_host TEXT NOT NULL, status TEXT NOT NULL, revision_number BIGINT NOT NULL,
            created_at TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (network_id, mac_address));
          CREATE INDEX net_ports_project ON net_ports (project_id);
          CREATE INDEX net_ports_device ON net_ports (device_id);
          CREATE INDEX net_ports_host ON net_ports (binding_host);
          CREATE TABLE net_ip_allocations (
            subnet_id TEXT NOT NULL, ip_address TEXT NOT NULL, port_id TEXT NOT NULL,
            network_id TEXT NOT NULL, PRIMARY KEY (subnet_id, ip_address));
          CREATE INDEX net_ip_allocations_port ON net_ip_allocations (port_id);
          CREATE TABLE net_port_security_groups (
            port_id TEXT NOT NULL, security_group_id TEXT NOT NULL,
            PRIMARY KEY (port_id, security_group_id));
          CREATE INDEX net_port_security_groups_group
            ON net_port_security_groups (security_group_id);
          CREATE TABLE net_security_groups (
            id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
            revision_number BIGINT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
          CREATE INDEX net_security_groups_project ON net_security_groups (project_id);
          CREATE TABLE net_default_security_groups (
            project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL UNIQUE);
          CREATE TABLE net_security_group_rules (
            id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL, project_id TEXT NOT NULL,
            remote_group_id TEXT, revision_number BIGINT NOT NULL, created_at TEXT NOT NULL,
            data TEXT NOT NULL);
          CREATE INDEX net_security_group_rules_group
            ON net_security_group_rules (security_group_id);
          CREATE INDEX net_security_group_rules_remote
            ON net_security_group_rules (remote_group_id);
          CREATE TABLE net_routers (
            id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
            gw_network_id TEXT, revision_number BIGINT NOT NULL, created_at TEXT NOT NULL,
            data TEXT NOT NULL);
          CREATE INDEX net_routers_project ON net_routers (project_id);
          CREATE TABLE net_floatingips (
            id TEXT PRIMARY KEY, project_id TEXT NOT NULL, floating_network_id TEXT NOT NULL,
            floating_ip_address TEXT NOT NULL, floating_port_id TEXT NOT NULL,
            fixed_port_id TEXT, fixed_ip_address TEXT, router_id TEXT,
            revision_number BIGINT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL,
            UNIQUE (fixed_port_id, fixed_ip_address));
          CREATE INDEX net_floatingips_project ON net_floatingips (project_id);
          CREATE INDEX net_floatingips_router ON net_floatingips (router_id);
          CREATE TABLE net_quotas (
            project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL,
            PRIMARY KEY (project_id, resource));",
    },
    Migration {
        version: 2,
        name: "agents",
        sql: "CREATE TABLE net_agents (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, agent_type TEXT NOT NULL,
            created_at TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (host, agent_type));",
    },
];

/// A failure inside a store operation: an answer for the client, or a database error.
#[derive(Debug)]
pub enum Error {
    /// A refusal with its Neutron error (404, 409, ...).
    Api(ApiError),
    /// The database failed.
    Db(sqlx::Error),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the operation may succeed when run again (see [`doc::retryable`]).
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Db(e) if doc::retryable(e))
    }
}

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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => Error::Db(e),
            other => Error::Api(ApiError::internal(other)),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Api(e) => e,
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                crate::errors::conflict("Conflict", "The resource changed concurrently; retry.")
            }
            Error::Db(e) => ApiError::internal(e),
        }
    }
}

pub use ferrostack_store::doc::{Col, Doc};

/// Rows of `T` matching `cond` (SQL over its columns, `$1`... bound to `binds`), oldest first.
pub async fn select<T: Doc>(
    conn: &mut AnyConnection,
    cond: &str,
    binds: &[&str],
) -> Result<Vec<T>> {
    Ok(doc::select(conn, cond, binds).await?)
}

/// One row of `T` by id.
pub async fn get<T: Doc>(conn: &mut AnyConnection, id: &str) -> Result<Option<T>> {
    Ok(doc::get(conn, id).await?)
}

/// The database handle of the network service: reads on the pool, writes in a [`Tx`].
#[derive(Clone)]
pub struct Db {
    docs: doc::DocDb<Error>,
    bus: Arc<dyn MessageBus>,
}

impl Db {
    /// The handle over `store`, publishing change events on `bus`.
    pub fn new(store: Store, bus: Arc<dyn MessageBus>) -> Db {
        Db {
            docs: doc::DocDb::new(store, "net_locks", "network"),
            bus,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.docs.store()
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        self.docs.conn().await
    }

    /// Rows of `T` matching `cond`.
    pub async fn select<T: Doc>(&self, cond: &str, binds: &[&str]) -> Result<Vec<T>> {
        self.docs.select(cond, binds).await
    }

    /// One row of `T` by id.
    pub async fn get<T: Doc>(&self, id: &str) -> Result<Option<T>> {
        self.docs.get(id).await
    }

    /// Begins a write transaction (use [`write_tx!`], which also commits and retries).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            doc: self.docs.begin().await?,
            events: Vec::new(),
        })
    }

    /// Ends a write transaction with the operation's outcome: commits on success, then
    /// publishes its events; retried as [`doc::DocDb::finish`] says.
    pub async fn finish<T>(
        &self,
        tx: Tx,
        outcome: Result<T>,
        attempt: &mut u32,
    ) -> Option<Result<T>> {
        let commit = tx.commit(&*self.bus);
        self.docs.finish_with(commit, outcome, attempt).await
    }
}

/// Runs `body` (an expression using `tx: &mut Tx`, usually one store operation awaited) in a
/// write transaction of `db` and commits it; retried as [`Db::finish`] says. A macro rather
/// than a closure-taking function so that the handler's future stays `Send`.
#[macro_export]
macro_rules! write_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        $crate::db::retry_tx!(&$db as &$crate::db::Db, $crate::db::Tx, |$tx| $body)
    };
}
pub use crate::write_tx;
#[doc(hidden)]
pub use ferrostack_store::retry_tx;

/// A write transaction (see the module documentation for its locking) that publishes the
/// events it recorded once committed; the document operations are [`doc::DocTx`]'s.
pub struct Tx {
    doc: doc::DocTx<Error>,
    events: Vec<Event>,
}

impl Tx {
    async fn commit(self, bus: &dyn MessageBus) -> Result<()> {
        self.doc.commit().await?;
        for event in self.events {
            event.publish(bus).await;
        }
        Ok(())
    }

    /// Records an event to publish once the transaction committed.
    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }
}

impl std::ops::Deref for Tx {
    type Target = doc::DocTx<Error>;
    fn deref(&self) -> &doc::DocTx<Error> {
        &self.doc
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut doc::DocTx<Error> {
        &mut self.doc
    }
}

/// Counts rows with a query returning one integer.
pub async fn count(conn: &mut AnyConnection, sql: &'static str, binds: &[&str]) -> Result<i64> {
    Ok(doc::count(conn, sql, binds).await?)
}

/// The (first) text column of every row a query returns.
pub async fn strings(
    conn: &mut AnyConnection,
    sql: &'static str,
    binds: &[&str],
) -> Result<Vec<String>> {
    Ok(doc::strings(conn, sql, binds).await?)
}

fn flag(b: bool) -> Col {
    Col::flag(b)
}

impl Doc for crate::model::Network {
    const TABLE: &'static str = "net_networks";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::text(&self.name)),
            ("shared", flag(self.shared)),
            ("external", flag(self.external)),
            ("network_type", Col::text(&self.segment.network_type)),
            (
                "physical_network",
                Col::Text(self.segment.physical_network.clone()),
            ),
            ("segmentation_id", Col::Int(self.segment.segmentation_id)),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::Subnet {
    const TABLE: &'static str = "net_subnets";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("network_id", Col::text(&self.network_id)),
            ("project_id", Col::text(&self.project_id)),
            ("ip_version", Col::Int(Some(self.ip_version.into()))),
            ("cidr", Col::text(&self.cidr)),
            ("subnetpool_id", Col::Text(self.subnetpool_id.clone())),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::SubnetPool {
    const TABLE: &'static str = "net_subnetpools";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::text(&self.name)),
            ("ip_version", Col::Int(Some(self.ip_version.into()))),
            ("shared", flag(self.shared)),
            ("is_default", flag(self.is_default)),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::Port {
    const TABLE: &'static str = "net_ports";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("network_id", Col::text(&self.network_id)),
            ("project_id", Col::text(&self.project_id)),
            ("device_id", Col::text(&self.device_id)),
            ("device_owner", Col::text(&self.device_owner)),
            ("mac_address", Col::text(&self.mac_address)),
            ("binding_host", Col::text(&self.binding.host_id)),
            ("status", Col::text(&self.status)),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::SecurityGroup {
    const TABLE: &'static str = "net_security_groups";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::text(&self.name)),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::SecurityGroupRule {
    const TABLE: &'static str = "net_security_group_rules";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("security_group_id", Col::text(&self.security_group_id)),
            ("project_id", Col::text(&self.project_id)),
            ("remote_group_id", Col::Text(self.remote_group_id.clone())),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::Router {
    const TABLE: &'static str = "net_routers";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("name", Col::text(&self.name)),
            (
                "gw_network_id",
                Col::Text(self.gateway.as_ref().map(|g| g.network_id.clone())),
            ),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

impl Doc for crate::model::FloatingIp {
    const TABLE: &'static str = "net_floatingips";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("floating_network_id", Col::text(&self.floating_network_id)),
            ("floating_ip_address", Col::text(&self.floating_ip_address)),
            ("floating_port_id", Col::text(&self.floating_port_id)),
            ("fixed_port_id", Col::Text(self.port_id.clone())),
            ("fixed_ip_address", Col::Text(self.fixed_ip_address.clone())),
            ("router_id", Col::Text(self.router_id.clone())),
            ("revision_number", Col::Int(Some(self.revision_number))),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}
