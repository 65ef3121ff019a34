//! Placement's default policy rules (`placement/policies/*.py`, secure RBAC defaults).
//!
//! Every API rule defaults to `admin_or_service_api`, except `placement:usages` (a project
//! reader may read its own project's usages) and `placement:reshaper:reshape` (service only).
//! Upstream's base rules are unprefixed (`admin_api`, `service_api`, ...); Ferrostack registers
//! every service's rules in one enforcer and Glance already owns `service_api`, so the base
//! rules carry the `placement:` prefix here. Deprecated fallbacks are not included.
use ferrostack_policy::RuleDefault;

const P: &[&str] = &["project"];

macro_rules! api_rule {
    ($name:literal, $desc:literal) => {
        RuleDefault {
            name: $name,
            check_str: "rule:placement:admin_or_service_api",
            description: $desc,
            scope_types: P,
        }
    };
}

/// Every placement rule: base rules first, then one per API operation.
pub const PLACEMENT_RULES: &[RuleDefault] = &[
    RuleDefault {
        name: "placement:admin_api",
        check_str: "role:admin",
        description: "Placement's admin_api base rule.",
        scope_types: P,
    },
    RuleDefault {
        name: "placement:service_api",
        check_str: "role:service",
        description: "Placement's service_api base rule: service users.",
        scope_types: P,
    },
    RuleDefault {
        name: "placement:admin_or_service_api",
        check_str: "role:admin or role:service",
        description: "Placement's admin_or_service_api base rule.",
        scope_types: P,
    },
    RuleDefault {
        name: "placement:project_reader_api",
        check_str: "role:reader and project_id:%(project_id)s",
        description: "Placement's project_reader_api base rule.",
        scope_types: P,
    },
    RuleDefault {
        name: "placement:admin_or_project_reader_or_service_api",
        check_str: "role:admin or rule:placement:project_reader_api or role:service",
        description: "Placement's admin_or_project_reader_or_service_api base rule.",
        scope_types: P,
    },
    api_rule!(
        "placement:resource_providers:list",
        "GET /resource_providers"
    ),
    api_rule!(
        "placement:resource_providers:create",
        "POST /resource_providers"
    ),
    api_rule!(
        "placement:resource_providers:show",
        "GET /resource_providers/{uuid}"
    ),
    api_rule!(
        "placement:resource_providers:update",
        "PUT /resource_providers/{uuid}"
    ),
    api_rule!(
        "placement:resource_providers:delete",
        "DELETE /resource_providers/{uuid}"
    ),
    api_rule!(
        "placement:resource_providers:inventories:list",
        "GET /resource_providers/{uuid}/inventories"
    ),
    api_rule!(
        "placement:resource_providers:inventories:create",
        "POST /resource_providers/{uuid}/inventories"
    ),
    api_rule!(
        "placement:resource_providers:inventories:show",
        "GET /resource_providers/{uuid}/inventories/{resource_class}"
    ),
    api_rule!(
        "placement:resource_providers:inventories:update",
        "PUT /resource_providers/{uuid}/inventories[/{resource_class}]"
    ),
    api_rule!(
        "placement:resource_providers:inventories:delete",
        "DELETE /resource_providers/{uuid}/inventories[/{resource_class}]"
    ),
    api_rule!(
        "placement:resource_providers:usages",
        "GET /resource_providers/{uuid}/usages"
    ),
    api_rule!(
        "placement:resource_providers:allocations:list",
        "GET /resource_providers/{uuid}/allocations"
    ),
    api_rule!(
        "placement:resource_providers:aggregates:list",
        "GET /resource_providers/{uuid}/aggregates"
    ),
    api_rule!(
        "placement:resource_providers:aggregates:update",
        "PUT /resource_providers/{uuid}/aggregates"
    ),
    api_rule!(
        "placement:resource_providers:traits:list",
        "GET /resource_providers/{uuid}/traits"
    ),
    api_rule!(
        "placement:resource_providers:traits:update",
        "PUT /resource_providers/{uuid}/traits"
    ),
    api_rule!(
        "placement:resource_providers:traits:delete",
        "DELETE /resource_providers/{uuid}/traits"
    ),
    api_rule!("placement:resource_classes:list", "GET /resource_classes"),
    api_rule!(
        "placement:resource_classes:create",
        "POST /resource_classes"
    ),
    api_rule!(
        "placement:resource_classes:show",
        "GET /resource_classes/{name}"
    ),
    api_rule!(
        "placement:resource_classes:update",
        "PUT /resource_classes/{name}"
    ),
    api_rule!(
        "placement:resource_classes:delete",
        "DELETE /resource_classes/{name}"
    ),
    api_rule!("placement:traits:list", "GET /traits"),
    api_rule!("placement:traits:show", "GET /traits/{name}"),
    api_rule!("placement:traits:update", "PUT /traits/{name}"),
    api_rule!("placement:traits:delete", "DELETE /traits/{name}"),
    api_rule!(
        "placement:allocations:list",
        "GET /allocations/{consumer_uuid}"
    ),
    api_rule!(
        "placement:allocations:update",
        "PUT /allocations/{consumer_uuid}"
    ),
    api_rule!(
        "placement:allocations:delete",
        "DELETE /allocations/{consumer_uuid}"
    ),
    api_rule!("placement:allocations:manage", "POST /allocations"),
    api_rule!(
        "placement:allocation_candidates:list",
        "GET /allocation_candidates"
    ),
    RuleDefault {
        name: "placement:usages",
        check_str: "rule:placement:admin_or_project_reader_or_service_api",
        description: "GET /usages?project_id= (a project reader may read its own project's usages).",
        scope_types: P,
    },
    RuleDefault {
        name: "placement:reshaper:reshape",
        check_str: "rule:placement:service_api",
        description: "POST /reshaper (service users only).",
        scope_types: P,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_policy::Enforcer;
    use serde_json::json;

    #[test]
    fn rules_register_and_behave() {
        let mut e = Enforcer::new(true);
        e.register(PLACEMENT_RULES).unwrap();
        assert!(e.validate().is_empty(), "{:?}", e.validate());
        let creds = |roles: &[&str], project: &str| json!({"roles": roles, "project_id": project, "user_id": "u"});
        let target = json!({"project_id": "p1"});
        assert!(e.authorize(
            "placement:resource_providers:list",
            &target,
            &creds(&["admin"], "p")
        ));
        assert!(e.authorize(
            "placement:resource_providers:list",
            &target,
            &creds(&["service"], "p")
        ));
        assert!(!e.authorize(
            "placement:resource_providers:list",
            &target,
            &creds(&["member", "reader"], "p1")
        ));
        assert!(e.authorize("placement:usages", &target, &creds(&["reader"], "p1")));
        assert!(!e.authorize("placement:usages", &target, &creds(&["reader"], "p2")));
        assert!(!e.authorize(
            "placement:reshaper:reshape",
            &target,
            &creds(&["admin"], "p1")
        ));
        // System-scoped tokens fail the project scope.
        assert!(!e.authorize(
            "placement:resource_providers:list",
            &target,
            &json!({"roles": ["admin"], "system_scope": "all"})
        ));
        assert_eq!(PLACEMENT_RULES.len(), 5 + 31 + 2);
    }
}
