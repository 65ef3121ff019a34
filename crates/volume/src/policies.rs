//! Cinder's default policy rules (secure RBAC, `cinder/policies/*.py`), registered by the
//! volume service: the base rules here, the API rules in one module per resource.

use ferrostack_policy::RuleDefault;

pub mod attachments;
pub mod misc;
pub mod snapshots;
pub mod types;
pub mod volumes;

/// A rule with its scope types.
const fn rule(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
    scope_types: &'static [&'static str],
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        scope_types,
    }
}

/// A base rule (no scope).
pub(crate) const fn base(
    name: &'static str,
    check: &'static str,
    doc: &'static str,
) -> RuleDefault {
    rule(name, check, doc, &[])
}

/// An API rule (project scope, as upstream).
pub(crate) const fn api(name: &'static str, check: &'static str, doc: &'static str) -> RuleDefault {
    rule(name, check, doc, &["project"])
}

/// The base rules the API rules refer to.
pub const BASE_RULES: &[RuleDefault] = &[
    base(
        "context_is_admin",
        "role:admin",
        "Decides what is required for the 'is_admin:True' check to succeed.",
    ),
    base(
        "admin_api",
        "rule:context_is_admin",
        "Default rule for most Admin APIs.",
    ),
    base(
        "project_reader_or_admin",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        "Default rule for Project level read only APIs, or an administrator.",
    ),
    base(
        "project_member_or_admin",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        "Default rule for Project level non admin APIs, or an administrator.",
    ),
];

/// Every rule of the volume service.
pub fn all() -> Vec<RuleDefault> {
    [
        BASE_RULES,
        volumes::RULES,
        snapshots::RULES,
        types::RULES,
        attachments::RULES,
        misc::RULES,
    ]
    .concat()
}
