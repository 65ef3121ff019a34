//! An engine for the oslo.policy rule language, shared by every Ferrostack
//! service.
//!
//! Services register their defaults once, operators may override any rule
//! from a `policy.yaml`, and every API request is checked against the
//! pre-parsed rules:
//!
//! ```
//! use ferrostack_policy::{Enforcer, PolicyError, RuleDefault};
//! use serde_json::json;
//!
//! const RULES: &[RuleDefault] = &[
//!     RuleDefault { name: "admin_required", check_str: "role:admin or is_admin:1",
//!                   description: "Administrators.", scope_types: &[] },
//!     RuleDefault { name: "identity:get_user",
//!                   check_str: "rule:admin_required or user_id:%(target.user.id)s",
//!                   description: "Show a user.", scope_types: &["system", "domain", "project"] },
//! ];
//!
//! let mut enforcer = Enforcer::new(true);
//! enforcer.register(RULES)?;
//! enforcer.load_overrides("'admin_required': 'role:admin or role:root'")?;
//!
//! let creds = json!({"user_id": "u1", "project_id": "p1", "roles": ["member"]});
//! let target = json!({"target": {"user": {"id": "u1"}}});
//! enforcer.enforce("identity:get_user", &target, &creds)?;
//! assert!(!enforcer.authorize("identity:get_user", &json!({"target.user.id": "u2"}), &creds));
//! assert!(matches!(enforcer.enforce("nope", &target, &creds), Err(PolicyError::NotRegistered(_))));
//! # Ok::<(), PolicyError>(())
//! ```
//!
//! The language: `rule:NAME`, `role:NAME` (case-insensitive), `KEY:VALUE`
//! generic checks against the credentials (dotted keys walk nested objects,
//! lists match if any element does), Python literals on the left
//! (`True:%(enabled)s`, `'member':%(role.name)s`), `%(key)s` substitutions
//! from the target, `@` (allow), `!` (deny), `""` (allow), `not` / `and` /
//! `or` (in that order of precedence) and parentheses. Values are compared
//! as Python's `str()` would render them (`true` is `"True"`).
//! `http:`/`https:` checks are not supported and always deny.

mod ast;
mod enforcer;
mod error;
mod eval;
mod parser;
mod pyval;

pub use enforcer::{Enforcer, RuleDefault, token_scope};
pub use error::PolicyError;

#[cfg(test)]
mod tests;
