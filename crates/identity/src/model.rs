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

/// A credential of the generic store (`/v3/credentials`). The blob is kept only encrypted with
/// the credential key repository, as Keystone's `encrypted_blob` and `key_hash` columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(rename = "type")]
    pub cred_type: String,
    /// Fernet token of the blob (for `ec2`, of the blob's JSON encoding, as Keystone).
    pub encrypted_blob: String,
    /// SHA-1 of the primary key that encrypted the blob (Keystone's `key_hash`).
    pub key_hash: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A legacy policy blob (`/v3/policies`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyBlob {
    pub id: String,
    pub blob: String,
    #[serde(rename = "type")]
    pub policy_type: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// An OS-EP-FILTER endpoint group: endpoints whose attributes equal every filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub filters: Map<String, Value>,
}

/// An OS-EP-FILTER association of one endpoint with one project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ProjectEndpoint {
    pub endpoint_id: String,
    pub project_id: String,
}

impl ProjectEndpoint {
    /// Row id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.endpoint_id, self.project_id)
    }
}

/// An OS-EP-FILTER association of one endpoint group with one project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ProjectEndpointGroup {
    pub endpoint_group_id: String,
    pub project_id: String,
}

impl ProjectEndpointGroup {
    /// Row id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.endpoint_group_id, self.project_id)
    }
}

/// One option of a domain's configuration (`/v3/domains/{domain_id}/config`). Sensitive options
/// (`ldap.password`) are stored but never shown, as Keystone's `sensitive_config` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DomainConfigOption {
    pub domain_id: String,
    pub group: String,
    pub option: String,
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
}

impl DomainConfigOption {
    /// Row id.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.domain_id, self.group, self.option)
    }
}

/// An OS-OAUTH1 consumer; its secret is shown once, at creation, and kept only as a SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub secret_hash: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// What a revocation event matches.
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// One token, by its audit id.
    Token(&'a str),
    /// Every token of a user.
    User(&'a str),
    /// Every token scoped to a project.
    Project(&'a str),
    /// Every token scoped to a domain or to a project in it.
    Domain(&'a str),
}

impl Revocation {
    /// An event revoking, as of now, the tokens `what` describes.
    pub fn now(what: Revoke) -> Revocation {
        let now = crate::unix_now();
        let owned = |s: &str| Some(s.to_string());
        let (audit_id, user_id, project_id, domain_id) = match what {
            Revoke::Token(a) => (owned(a), None, None, None),
            Revoke::User(u) => (None, owned(u), None, None),
            Revoke::Project(p) => (None, None, owned(p), None),
            Revoke::Domain(d) => (None, None, None, owned(d)),
        };
        Revocation {
            id: uuid::Uuid::new_v4().simple().to_string(),
            audit_id,
            user_id,
            project_id,
            domain_id,
            issued_before: now,
            revoked_at: now,
        }
    }
}
