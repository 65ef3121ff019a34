//! The identity data set: held whole in memory, written through to the store.
//!
//! Identity data is small (thousands of rows) and read on every API call, so reads come from
//! memory and never wait for the database. Every write is a batch of [`Change`]s committed in one
//! database transaction and then applied to memory; a change counter (`generation`) lets caches
//! (validated tokens, the catalog) notice. When several processes serve identity, each one
//! reloads after a peer's write (announced on the bus).

use crate::model::*;
use ferrostack_store::{Row, Store, StoreError};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::collections::HashMap;

/// An entity kept in one identity table.
pub trait Stored: Serialize + DeserializeOwned {
    /// Table name.
    const TABLE: &'static str;
    /// Row id.
    fn row_id(&self) -> String;
    /// Extra columns that carry uniqueness constraints.
    fn key_columns(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

macro_rules! stored {
    ($ty:ty, $table:literal, |$s:ident| $id:expr $(, $col:literal => $val:expr)*) => {
        impl Stored for $ty {
            const TABLE: &'static str = $table;
            fn row_id(&self) -> String {
                let $s = self;
                $id
            }
            fn key_columns(&self) -> Vec<(&'static str, String)> {
                #[allow(unused_variables)]
                let $s = self;
                vec![$(($col, $val)),*]
            }
        }
    };
}

stored!(Domain, "identity_domains", |s| s.id.clone(), "name" => s.name.clone());
stored!(Project, "identity_projects", |s| s.id.clone(), "domain_id" => s.domain_id.clone(), "name" => s.name.clone());
stored!(User, "identity_users", |s| s.id.clone(), "domain_id" => s.domain_id.clone(), "name" => s.name.clone());
stored!(Group, "identity_groups", |s| s.id.clone(), "domain_id" => s.domain_id.clone(), "name" => s.name.clone());
stored!(Role, "identity_roles", |s| s.id.clone(),
    "domain_id" => s.domain_id.clone().unwrap_or_else(|| NULL_DOMAIN.to_string()), "name" => s.name.clone());
stored!(Membership, "identity_group_members", |s| s.key());
stored!(ImpliedRole, "identity_implied_roles", |s| s.key());
stored!(Assignment, "identity_assignments", |s| s.key());
stored!(Region, "identity_regions", |s| s.id.clone());
stored!(Service, "identity_services", |s| s.id.clone());
stored!(Endpoint, "identity_endpoints", |s| s.id.clone());
stored!(AppCred, "identity_app_creds", |s| s.id.clone(), "user_id" => s.user_id.clone(), "name" => s.name.clone());
stored!(Revocation, "identity_revocations", |s| s.id.clone());
stored!(Credential, "identity_credentials", |s| s.id.clone());
stored!(PolicyBlob, "identity_policies", |s| s.id.clone());
stored!(EndpointGroup, "identity_endpoint_groups", |s| s.id.clone());
stored!(ProjectEndpoint, "identity_project_endpoints", |s| s.key());
stored!(
    ProjectEndpointGroup,
    "identity_project_endpoint_groups",
    |s| s.key()
);
stored!(DomainConfigOption, "identity_domain_configs", |s| s.key());
stored!(Consumer, "identity_oauth1_consumers", |s| s.id.clone());

/// One row written or deleted.
#[derive(Debug, Clone)]
pub struct Change {
    table: &'static str,
    id: String,
    keys: Vec<(&'static str, String)>,
    doc: Option<Value>,
}

impl Change {
    /// Insert or replace `entity`.
    pub fn put<T: Stored>(entity: &T) -> Change {
        Change {
            table: T::TABLE,
            id: entity.row_id(),
            keys: entity.key_columns(),
            doc: Some(serde_json::to_value(entity).expect("entities serialize")),
        }
    }

    /// Whether this change writes a row of `T`'s table.
    pub fn is_put_of<T: Stored>(&self) -> bool {
        self.table == T::TABLE && self.doc.is_some()
    }

    /// Delete the row of `entity`.
    pub fn delete<T: Stored>(entity: &T) -> Change {
        Change {
            table: T::TABLE,
            id: entity.row_id(),
            keys: Vec::new(),
            doc: None,
        }
    }
}

/// Every identity entity, by id.
#[derive(Debug, Default, Clone)]
pub struct IdentityData {
    pub domains: HashMap<String, Domain>,
    pub projects: HashMap<String, Project>,
    pub users: HashMap<String, User>,
    pub groups: HashMap<String, Group>,
    pub memberships: HashMap<String, Membership>,
    pub roles: HashMap<String, Role>,
    pub implied: HashMap<String, ImpliedRole>,
    pub assignments: HashMap<String, Assignment>,
    pub regions: HashMap<String, Region>,
    pub services: HashMap<String, Service>,
    pub endpoints: HashMap<String, Endpoint>,
    pub app_creds: HashMap<String, AppCred>,
    pub revocations: HashMap<String, Revocation>,
    pub credentials: HashMap<String, Credential>,
    pub policies: HashMap<String, PolicyBlob>,
    pub endpoint_groups: HashMap<String, EndpointGroup>,
    pub project_endpoints: HashMap<String, ProjectEndpoint>,
    pub project_endpoint_groups: HashMap<String, ProjectEndpointGroup>,
    pub domain_configs: HashMap<String, DomainConfigOption>,
    pub consumers: HashMap<String, Consumer>,
}

fn apply_to<T: DeserializeOwned>(
    map: &mut HashMap<String, T>,
    id: String,
    doc: Option<Value>,
) -> Result<(), String> {
    match doc {
        Some(doc) => {
            let entity =
                serde_json::from_value(doc).map_err(|e| format!("corrupt row {id}: {e}"))?;
            map.insert(id, entity);
        }
        None => {
            map.remove(&id);
        }
    }
    Ok(())
}

impl IdentityData {
    fn apply(&mut self, table: &str, id: String, doc: Option<Value>) -> Result<(), String> {
        match table {
            Domain::TABLE => apply_to(&mut self.domains, id, doc),
            Project::TABLE => apply_to(&mut self.projects, id, doc),
            User::TABLE => apply_to(&mut self.users, id, doc),
            Group::TABLE => apply_to(&mut self.groups, id, doc),
            Membership::TABLE => apply_to(&mut self.memberships, id, doc),
            Role::TABLE => apply_to(&mut self.roles, id, doc),
            ImpliedRole::TABLE => apply_to(&mut self.implied, id, doc),
            Assignment::TABLE => apply_to(&mut self.assignments, id, doc),
            Region::TABLE => apply_to(&mut self.regions, id, doc),
            Service::TABLE => apply_to(&mut self.services, id, doc),
            Endpoint::TABLE => apply_to(&mut self.endpoints, id, doc),
            AppCred::TABLE => apply_to(&mut self.app_creds, id, doc),
            Revocation::TABLE => apply_to(&mut self.revocations, id, doc),
            Credential::TABLE => apply_to(&mut self.credentials, id, doc),
            PolicyBlob::TABLE => apply_to(&mut self.policies, id, doc),
            EndpointGroup::TABLE => apply_to(&mut self.endpoint_groups, id, doc),
            ProjectEndpoint::TABLE => apply_to(&mut self.project_endpoints, id, doc),
            ProjectEndpointGroup::TABLE => apply_to(&mut self.project_endpoint_groups, id, doc),
            DomainConfigOption::TABLE => apply_to(&mut self.domain_configs, id, doc),
            Consumer::TABLE => apply_to(&mut self.consumers, id, doc),
            other => Err(format!("unknown identity table {other}")),
        }
    }

    /// Applies committed changes to memory.
    pub fn apply_changes(&mut self, changes: &[Change]) {
        for c in changes {
            if let Err(e) = self.apply(c.table, c.id.clone(), c.doc.clone()) {
                tracing::error!(error = %e, "applying identity change");
            }
        }
    }

    /// Loads everything from the store.
    pub async fn load(store: &Store) -> Result<IdentityData, StoreError> {
        let mut data = IdentityData::default();
        for table in TABLES {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT id, doc FROM {table}")))
                .fetch_all(store.pool())
                .await?;
            for row in rows {
                let id: String = row.get("id");
                let doc: String = row.get("doc");
                let doc: Value = serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
                if let Err(e) = data.apply(table, id, Some(doc)) {
                    tracing::error!(error = %e, "skipping identity row");
                }
            }
        }
        Ok(data)
    }
}

const TABLES: [&str; 20] = [
    Domain::TABLE,
    Project::TABLE,
    User::TABLE,
    Group::TABLE,
    Membership::TABLE,
    Role::TABLE,
    ImpliedRole::TABLE,
    Assignment::TABLE,
    Region::TABLE,
    Service::TABLE,
    Endpoint::TABLE,
    AppCred::TABLE,
    Revocation::TABLE,
    Credential::TABLE,
    PolicyBlob::TABLE,
    EndpointGroup::TABLE,
    ProjectEndpoint::TABLE,
    ProjectEndpointGroup::TABLE,
    DomainConfigOption::TABLE,
    Consumer::TABLE,
];

/// The store's change counter (bumped by every commit of any process).
pub async fn change_counter(store: &Store) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM identity_change_counter WHERE id = 'data'")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Commits `changes` in one transaction and returns the change counter it set. A
/// unique-constraint violation is a [`StoreError::Conflict`] and nothing is written.
pub async fn commit(store: &Store, changes: &[Change]) -> Result<i64, StoreError> {
    let mut tx = store.begin().await?;
    let counter: i64 = sqlx::query_scalar(
        "UPDATE identity_change_counter SET value = value + 1 WHERE id = 'data' RETURNING value",
    )
    .fetch_one(&mut *tx)
    .await?;
    for c in changes {
        match &c.doc {
            Some(doc) => {
                let mut columns = vec!["id", "doc"];
                columns.extend(c.keys.iter().map(|(k, _)| *k));
                let placeholders: Vec<String> =
                    (1..=columns.len()).map(|i| format!("${i}")).collect();
                let updates: Vec<String> = columns[1..]
                    .iter()
                    .map(|col| format!("{col} = excluded.{col}"))
                    .collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
                    c.table,
                    columns.join(", "),
                    placeholders.join(", "),
                    updates.join(", ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(c.id.clone())
                    .bind(doc.to_string());
                for (_, value) in &c.keys {
                    query = query.bind(value.clone());
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_write)?;
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {} WHERE id = $1",
                    c.table
                )))
                .bind(c.id.clone())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(counter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn domain(id: &str, name: &str) -> Domain {
        Domain {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        }
    }

    /// Runs against SQLite, and PostgreSQL when FERROSTACK_TEST_DATABASE_URL is set (CI).
    #[tokio::test]
    async fn writes_survive_a_reload_and_conflicts_write_nothing() {
        let store = ferrostack_store::test_store("identity-data").await.unwrap();
        store.migrate("identity", crate::MIGRATIONS).await.unwrap();
        let a = domain("a", "Alpha");
        let grant = Assignment {
            actor: Actor::User("u".into()),
            target: Target::System,
            role_id: "r".into(),
            inherited: false,
        };
        commit(&store, &[Change::put(&a), Change::put(&grant)])
            .await
            .unwrap();
        // A duplicate name in the same batch as a valid row: the whole batch is refused.
        let dup = commit(
            &store,
            &[
                Change::put(&domain("b", "Beta")),
                Change::put(&domain("c", "Alpha")),
            ],
        )
        .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let data = IdentityData::load(&store).await.unwrap();
        assert_eq!(data.domains.len(), 1);
        assert_eq!(data.domains["a"].name, "Alpha");
        assert_eq!(data.assignments[&grant.key()], grant);
        // Update in place, then delete.
        let mut renamed = a.clone();
        renamed.name = "Gamma".into();
        commit(&store, &[Change::put(&renamed)]).await.unwrap();
        assert_eq!(
            IdentityData::load(&store).await.unwrap().domains["a"].name,
            "Gamma"
        );
        commit(&store, &[Change::delete(&renamed), Change::delete(&grant)])
            .await
            .unwrap();
        let data = IdentityData::load(&store).await.unwrap();
        assert!(data.domains.is_empty() && data.assignments.is_empty());
    }
}
