//! Identity entities as stored (one JSON document per row) and held in memory.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Keystone's sentinel domain id for global roles (stored in the unique key column).
pub const NULL_DOMAIN: &str = "<<null>>";

/// A domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A project; `parent_id` is `None` for a top-level project (its API parent is the domain).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A user with its local password state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extra: Map<String, Value>,
    #[serde(default)]
    pub options: Map<String, Value>,
    /// bcrypt hash of the current password.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub password_created_at: Option<String>,
    #[serde(default)]
    pub password_expires_at: Option<String>,
    /// Hashes of previous passwords, newest first (PCI-DSS history).
    #[serde(default)]
    pub password_history: Vec<String>,
    #[serde(default)]
    pub failed_auth_count: u32,
    #[serde(default)]
    pub failed_auth_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub last_active_at: Option<String>,
}

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A user's membership of a group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Membership {
    pub group_id: String,
    pub user_id: String,
}

impl Membership {
    /// Row id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.group_id, self.user_id)
    }
}

/// A role; `domain_id` set for domain-specific roles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub domain_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// `prior` implies `implied`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ImpliedRole {
    pub prior_role_id: String,
    pub implied_role_id: String,
}

impl ImpliedRole {
    /// Row id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.prior_role_id, self.implied_role_id)
    }
}

/// Who holds an assignment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Actor {
    User(String),
    Group(String),
}

/// Where an assignment applies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Target {
    Project(String),
    Domain(String),
    /// The whole deployment (`system: all`).
    System,
}

/// A role assignment (a grant).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    /// Inherited to the projects below the target (OS-INHERIT).
    #[serde(default)]
    pub inherited: bool,
}

impl Assignment {
    /// Row id.
    pub fn key(&self) -> String {
        let actor = match &self.actor {
            Actor::User(id) => format!("u:{id}"),
            Actor::Group(id) => format!("g:{id}"),
        };
        let target = match &self.target {
            Target::Project(id) => format!("p:{id}"),
            Target::Domain(id) => format!("d:{id}"),
            Target::System => "s:all".to_string(),
        };
        format!("{actor}|{target}|{}|{}", self.role_id, self.inherited as u8)
    }
}

/// A catalog region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub parent_region_id: Option<String>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A catalog service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A catalog endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// An application credential (the secret is kept only as a bcrypt hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub expires_at: Option<String>,
    pub unrestricted: bool,
    /// Role ids delegated (a subset of the creator's roles on the project).
    pub role_ids: Vec<String>,
}

/// A revocation event: tokens matching it and issued before `issued_before` are invalid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revocation {
    pub id: String,
    #[serde(default)]
    pub audit_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Unix seconds.
    pub issued_before: f64,
    /// Unix seconds; events older than the longest token lifetime are purged.
    pub revoked_at: f64,
}
