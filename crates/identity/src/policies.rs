//! Keystone's default policy rules (secure RBAC), registered by the identity service.
//!
//! Transcribed from OpenStack Keystone `keystone/common/policies/*.py` at release
//! 29.0.2 (2026.1, commit 7b9f39226744b8db50a6d702cc5f715fc9c17f37); the policy
//! modules are identical on master at 30ef2ffa65a3486ef882f00538e20f2253c57d4c.
//! Check strings are the fully expanded strings Keystone builds by concatenating
//! its constants; deprecated rules are not included. Descriptions are our own
//! summaries plus the HTTP operations each rule guards.
use ferrostack_policy::RuleDefault;

/// Base rules referenced by the API rules (`admin_required`, `service_role`, `service_or_admin`, `owner`, `token_subject`, `admin_or_token_subject`, `service_admin_or_token_subject`, ...)
pub const BASE_RULES: &[RuleDefault] = &[
    RuleDefault {
        name: "admin_required",
        check_str: "role:admin or is_admin:1",
        description: "Caller holds the admin role (or the request is flagged is_admin).",
        scope_types: &[],
    },
    RuleDefault {
        name: "service_role",
        check_str: "role:service",
        description: "Caller holds the service role.",
        scope_types: &[],
    },
    RuleDefault {
        name: "service_or_admin",
        check_str: "rule:admin_required or rule:service_role",
        description: "Either an admin or a service user.",
        scope_types: &[],
    },
    RuleDefault {
        name: "owner",
        check_str: "user_id:%(user_id)s",
        description: "The user_id in the request target matches the caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "admin_or_owner",
        check_str: "rule:admin_required or rule:owner",
        description: "Admin, or the caller owns the target (user_id match).",
        scope_types: &[],
    },
    RuleDefault {
        name: "token_subject",
        check_str: "user_id:%(target.token.user_id)s",
        description: "The caller is the user the target token was issued to.",
        scope_types: &[],
    },
    RuleDefault {
        name: "admin_or_token_subject",
        check_str: "rule:admin_required or rule:token_subject",
        description: "Admin, or the subject of the target token.",
        scope_types: &[],
    },
    RuleDefault {
        name: "service_admin_or_token_subject",
        check_str: "rule:service_or_admin or rule:token_subject",
        description: "Admin, service user, or the subject of the target token.",
        scope_types: &[],
    },
    RuleDefault {
        name: "domain_managed_target_role",
        check_str: "'manager':%(target.role.name)s or 'member':%(target.role.name)s or 'reader':%(target.role.name)s",
        description: "Roles a domain manager may assign or revoke (manager, member, reader); never admin.",
        scope_types: &[],
    },
];

/// One entry per `identity:*` action.
pub const IDENTITY_RULES: &[RuleDefault] = &[
    // ---- access_rule.py ----
    RuleDefault {
        name: "identity:get_access_rule",
        check_str: "(role:reader and system_scope:all) or user_id:%(target.user.id)s",
        description: "Get access rule (GET/HEAD /v3/users/{user_id}/access_rules/{access_rule_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_access_rules",
        check_str: "(role:reader and system_scope:all) or user_id:%(target.user.id)s",
        description: "List access rules (GET/HEAD /v3/users/{user_id}/access_rules).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_access_rule",
        check_str: "(role:admin and system_scope:all) or user_id:%(target.user.id)s",
        description: "Delete access rule (DELETE /v3/users/{user_id}/access_rules/{access_rule_id}).",
        scope_types: &["system", "project"],
    },
    // ---- access_token.py ----
    RuleDefault {
        name: "identity:authorize_request_token",
        check_str: "rule:admin_required",
        description: "Authorize request token (PUT /v3/OS-OAUTH1/authorize/{request_token_id}).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:get_access_token",
        check_str: "rule:admin_required",
        description: "Get access token (GET /v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:get_access_token_role",
        check_str: "rule:admin_required",
        description: "Get access token role (GET /v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles/{role_id}).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:list_access_tokens",
        check_str: "rule:admin_required",
        description: "List access tokens (GET /v3/users/{user_id}/OS-OAUTH1/access_tokens).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:list_access_token_roles",
        check_str: "rule:admin_required",
        description: "List access token roles (GET /v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:delete_access_token",
        check_str: "rule:admin_required",
        description: "Delete access token (DELETE /v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}).",
        scope_types: &["project"],
    },
    // ---- application_credential.py ----
    RuleDefault {
        name: "identity:get_application_credential",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner",
        description: "Get application credential (GET/HEAD /v3/users/{user_id}/application_credentials/{application_credential_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_application_credentials",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner",
        description: "List application credentials (GET/HEAD /v3/users/{user_id}/application_credentials).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_application_credential",
        check_str: "user_id:%(user_id)s",
        description: "Create application credential (POST /v3/users/{user_id}/application_credentials).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:delete_application_credential",
        check_str: "rule:admin_or_owner",
        description: "Delete application credential (DELETE /v3/users/{user_id}/application_credentials/{application_credential_id}).",
        scope_types: &["system", "project"],
    },
    // ---- auth.py ----
    RuleDefault {
        name: "identity:get_auth_catalog",
        check_str: "",
        description: "Get auth catalog (GET/HEAD /v3/auth/catalog). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "identity:get_auth_projects",
        check_str: "",
        description: "Get auth projects (GET/HEAD /v3/auth/projects). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "identity:get_auth_domains",
        check_str: "",
        description: "Get auth domains (GET/HEAD /v3/auth/domains). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "identity:get_auth_system",
        check_str: "",
        description: "Get auth system (GET/HEAD /v3/auth/system). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    // ---- consumer.py ----
    RuleDefault {
        name: "identity:get_consumer",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get consumer (GET /v3/OS-OAUTH1/consumers/{consumer_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_consumers",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List consumers (GET /v3/OS-OAUTH1/consumers).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_consumer",
        check_str: "rule:admin_required",
        description: "Create consumer (POST /v3/OS-OAUTH1/consumers).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_consumer",
        check_str: "rule:admin_required",
        description: "Update consumer (PATCH /v3/OS-OAUTH1/consumers/{consumer_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_consumer",
        check_str: "rule:admin_required",
        description: "Delete consumer (DELETE /v3/OS-OAUTH1/consumers/{consumer_id}).",
        scope_types: &["system", "project"],
    },
    // ---- credential.py ----
    RuleDefault {
        name: "identity:get_credential",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s",
        description: "Get credential (GET /v3/credentials/{credential_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_credentials",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s",
        description: "List credentials (GET /v3/credentials).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_credential",
        check_str: "(rule:admin_required) or user_id:%(target.credential.user_id)s",
        description: "Create credential (POST /v3/credentials).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_credential",
        check_str: "(rule:admin_required) or user_id:%(target.credential.user_id)s",
        description: "Update credential (PATCH /v3/credentials/{credential_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_credential",
        check_str: "(rule:admin_required) or user_id:%(target.credential.user_id)s",
        description: "Delete credential (DELETE /v3/credentials/{credential_id}).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- domain.py ----
    RuleDefault {
        name: "identity:get_domain",
        check_str: "rule:admin_required or (role:reader and system_scope:all) or token.domain.id:%(target.domain.id)s or token.project.domain.id:%(target.domain.id)s",
        description: "Get domain (GET /v3/domains/{domain_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_domains",
        check_str: "rule:admin_required or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain.id)s)",
        description: "List domains (GET /v3/domains).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_domain",
        check_str: "rule:admin_required",
        description: "Create domain (POST /v3/domains).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_domain",
        check_str: "rule:admin_required",
        description: "Update domain (PATCH /v3/domains/{domain_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_domain",
        check_str: "rule:admin_required",
        description: "Delete domain (DELETE /v3/domains/{domain_id}).",
        scope_types: &["system", "project"],
    },
    // ---- domain_config.py ----
    RuleDefault {
        name: "identity:create_domain_config",
        check_str: "rule:admin_required",
        description: "Create domain config (PUT /v3/domains/{domain_id}/config).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_domain_config",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get domain config (GET/HEAD /v3/domains/{domain_id}/config; GET/HEAD /v3/domains/{domain_id}/config/{group}; GET/HEAD /v3/domains/{domain_id}/config/{group}/{option}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_security_compliance_domain_config",
        check_str: "",
        description: "Get security compliance domain config (GET/HEAD /v3/domains/{domain_id}/config/security_compliance; GET/HEAD /v3/domains/{domain_id}/config/security_compliance/{option}). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_domain_config",
        check_str: "rule:admin_required",
        description: "Update domain config (PATCH /v3/domains/{domain_id}/config; PATCH /v3/domains/{domain_id}/config/{group}; PATCH /v3/domains/{domain_id}/config/{group}/{option}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_domain_config",
        check_str: "rule:admin_required",
        description: "Delete domain config (DELETE /v3/domains/{domain_id}/config; DELETE /v3/domains/{domain_id}/config/{group}; DELETE /v3/domains/{domain_id}/config/{group}/{option}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_domain_config_default",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get domain config default (GET/HEAD /v3/domains/config/default; GET/HEAD /v3/domains/config/{group}/default; GET/HEAD /v3/domains/config/{group}/{option}/default).",
        scope_types: &["system", "project"],
    },
    // ---- ec2_credential.py ----
    RuleDefault {
        name: "identity:ec2_get_credential",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s",
        description: "Ec2 get credential (GET /v3/users/{user_id}/credentials/OS-EC2/{credential_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:ec2_list_credentials",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner",
        description: "Ec2 list credentials (GET /v3/users/{user_id}/credentials/OS-EC2).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:ec2_create_credential",
        check_str: "(rule:admin_required) or (role:member and user_id:%(target.credential.user_id)s)",
        description: "Ec2 create credential (POST /v3/users/{user_id}/credentials/OS-EC2).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:ec2_delete_credential",
        check_str: "(rule:admin_required) or (role:member and user_id:%(target.credential.user_id)s)",
        description: "Ec2 delete credential (DELETE /v3/users/{user_id}/credentials/OS-EC2/{credential_id}).",
        scope_types: &["system", "project"],
    },
    // ---- endpoint.py ----
    RuleDefault {
        name: "identity:get_endpoint",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get endpoint (GET /v3/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoints",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoints (GET /v3/endpoints).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_endpoint",
        check_str: "rule:admin_required",
        description: "Create endpoint (POST /v3/endpoints).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_endpoint",
        check_str: "rule:admin_required",
        description: "Update endpoint (PATCH /v3/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_endpoint",
        check_str: "rule:admin_required",
        description: "Delete endpoint (DELETE /v3/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    // ---- endpoint_group.py ----
    RuleDefault {
        name: "identity:create_endpoint_group",
        check_str: "rule:admin_required",
        description: "Create endpoint group (POST /v3/OS-EP-FILTER/endpoint_groups).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoint_groups",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoint groups (GET /v3/OS-EP-FILTER/endpoint_groups).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_endpoint_group",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get endpoint group (GET/HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_endpoint_group",
        check_str: "rule:admin_required",
        description: "Update endpoint group (PATCH /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_endpoint_group",
        check_str: "rule:admin_required",
        description: "Delete endpoint group (DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_projects_associated_with_endpoint_group",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List projects associated with endpoint group (GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoints_associated_with_endpoint_group",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoints associated with endpoint group (GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_endpoint_group_in_project",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get endpoint group in project (GET/HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoint_groups_for_project",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoint groups for project (GET /v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:add_endpoint_group_to_project",
        check_str: "rule:admin_required",
        description: "Add endpoint group to project (PUT /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:remove_endpoint_group_from_project",
        check_str: "rule:admin_required",
        description: "Remove endpoint group from project (DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}).",
        scope_types: &["system", "project"],
    },
    // ---- grant.py ----
    RuleDefault {
        name: "identity:check_grant",
        check_str: "(rule:admin_required) or ((role:reader and system_scope:all) or ((role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s))",
        description: "Check grant (HEAD/GET /v3/projects/{project_id}/users/{user_id}/roles/{role_id}; HEAD/GET /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}; HEAD/GET /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}; HEAD/GET /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}; HEAD/GET /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; HEAD/GET /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects; HEAD/GET /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; HEAD/GET /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_grants",
        check_str: "(rule:admin_required) or ((role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s))",
        description: "List grants (GET/HEAD /v3/projects/{project_id}/users/{user_id}/roles; GET/HEAD /v3/projects/{project_id}/groups/{group_id}/roles; GET/HEAD /v3/domains/{domain_id}/users/{user_id}/roles; GET/HEAD /v3/domains/{domain_id}/groups/{group_id}/roles; GET /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/inherited_to_projects; GET /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/inherited_to_projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_grant",
        check_str: "(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role",
        description: "Create grant (PUT /v3/projects/{project_id}/users/{user_id}/roles/{role_id}; PUT /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}; PUT /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}; PUT /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}; PUT /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; PUT /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects; PUT /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; PUT /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:revoke_grant",
        check_str: "(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role",
        description: "Revoke grant (DELETE /v3/projects/{project_id}/users/{user_id}/roles/{role_id}; DELETE /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}; DELETE /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}; DELETE /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}; DELETE /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; DELETE /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects; DELETE /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects; DELETE /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_system_grants_for_user",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List system grants for user (HEAD/GET /v3/system/users/{user_id}/roles).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_system_grant_for_user",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check system grant for user (HEAD/GET /v3/system/users/{user_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_system_grant_for_user",
        check_str: "rule:admin_required",
        description: "Create system grant for user (PUT /v3/system/users/{user_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:revoke_system_grant_for_user",
        check_str: "rule:admin_required",
        description: "Revoke system grant for user (DELETE /v3/system/users/{user_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_system_grants_for_group",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List system grants for group (HEAD/GET /v3/system/groups/{group_id}/roles).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_system_grant_for_group",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check system grant for group (HEAD/GET /v3/system/groups/{group_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_system_grant_for_group",
        check_str: "rule:admin_required",
        description: "Create system grant for group (PUT /v3/system/groups/{group_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:revoke_system_grant_for_group",
        check_str: "rule:admin_required",
        description: "Revoke system grant for group (DELETE /v3/system/groups/{group_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    // ---- group.py ----
    RuleDefault {
        name: "identity:get_group",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)",
        description: "Get group (GET/HEAD /v3/groups/{group_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_groups",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)",
        description: "List groups (GET/HEAD /v3/groups).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_groups_for_user",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(user_id)s",
        description: "List groups for user (GET/HEAD /v3/users/{user_id}/groups).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_group",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)",
        description: "Create group (POST /v3/groups).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_group",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)",
        description: "Update group (PATCH /v3/groups/{group_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_group",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)",
        description: "Delete group (DELETE /v3/groups/{group_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_users_in_group",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)",
        description: "List users in group (GET/HEAD /v3/groups/{group_id}/users).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:remove_user_from_group",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        description: "Remove user from group (DELETE /v3/groups/{group_id}/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:check_user_in_group",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        description: "Check user in group (HEAD/GET /v3/groups/{group_id}/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:add_user_to_group",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        description: "Add user to group (PUT /v3/groups/{group_id}/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- identity_provider.py ----
    RuleDefault {
        name: "identity:create_identity_provider",
        check_str: "rule:admin_required",
        description: "Create identity provider (PUT /v3/OS-FEDERATION/identity_providers/{idp_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_identity_providers",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List identity providers (GET/HEAD /v3/OS-FEDERATION/identity_providers).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_identity_provider",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get identity provider (GET/HEAD /v3/OS-FEDERATION/identity_providers/{idp_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_identity_provider",
        check_str: "rule:admin_required",
        description: "Update identity provider (PATCH /v3/OS-FEDERATION/identity_providers/{idp_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_identity_provider",
        check_str: "rule:admin_required",
        description: "Delete identity provider (DELETE /v3/OS-FEDERATION/identity_providers/{idp_id}).",
        scope_types: &["system", "project"],
    },
    // ---- implied_role.py ----
    RuleDefault {
        name: "identity:get_implied_role",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get implied role (GET /v3/roles/{prior_role_id}/implies/{implied_role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_implied_roles",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List implied roles (GET/HEAD /v3/roles/{prior_role_id}/implies).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_implied_role",
        check_str: "rule:admin_required",
        description: "Create implied role (PUT /v3/roles/{prior_role_id}/implies/{implied_role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_implied_role",
        check_str: "rule:admin_required",
        description: "Delete implied role (DELETE /v3/roles/{prior_role_id}/implies/{implied_role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_role_inference_rules",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List role inference rules (GET/HEAD /v3/role_inferences).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_implied_role",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check implied role (HEAD /v3/roles/{prior_role_id}/implies/{implied_role_id}).",
        scope_types: &["system", "project"],
    },
    // ---- limit.py ----
    RuleDefault {
        name: "identity:get_limit_model",
        check_str: "",
        description: "Get limit model (GET/HEAD /v3/limits/model). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:get_limit",
        check_str: "rule:admin_required or (role:reader and system_scope:all) or (domain_id:%(target.limit.domain.id)s or domain_id:%(target.limit.project.domain_id)s) or (project_id:%(target.limit.project_id)s and not None:%(target.limit.project_id)s)",
        description: "Get limit (GET/HEAD /v3/limits/{limit_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_limits",
        check_str: "",
        description: "List limits (GET/HEAD /v3/limits). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_limits",
        check_str: "rule:admin_required",
        description: "Create limits (POST /v3/limits).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_limit",
        check_str: "rule:admin_required",
        description: "Update limit (PATCH /v3/limits/{limit_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_limit",
        check_str: "rule:admin_required",
        description: "Delete limit (DELETE /v3/limits/{limit_id}).",
        scope_types: &["system", "project"],
    },
    // ---- mapping.py ----
    RuleDefault {
        name: "identity:create_mapping",
        check_str: "rule:admin_required",
        description: "Create mapping (PUT /v3/OS-FEDERATION/mappings/{mapping_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_mapping",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get mapping (GET/HEAD /v3/OS-FEDERATION/mappings/{mapping_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_mappings",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List mappings (GET/HEAD /v3/OS-FEDERATION/mappings).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_mapping",
        check_str: "rule:admin_required",
        description: "Delete mapping (DELETE /v3/OS-FEDERATION/mappings/{mapping_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_mapping",
        check_str: "rule:admin_required",
        description: "Update mapping (PATCH /v3/OS-FEDERATION/mappings/{mapping_id}).",
        scope_types: &["system", "project"],
    },
    // ---- policy.py ----
    RuleDefault {
        name: "identity:get_policy",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get policy (GET /v3/policies/{policy_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_policies",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List policies (GET /v3/policies).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_policy",
        check_str: "rule:admin_required",
        description: "Create policy (POST /v3/policies).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_policy",
        check_str: "rule:admin_required",
        description: "Update policy (PATCH /v3/policies/{policy_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_policy",
        check_str: "rule:admin_required",
        description: "Delete policy (DELETE /v3/policies/{policy_id}).",
        scope_types: &["system", "project"],
    },
    // ---- policy_association.py ----
    RuleDefault {
        name: "identity:create_policy_association_for_endpoint",
        check_str: "rule:admin_required",
        description: "Create policy association for endpoint (PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_policy_association_for_endpoint",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check policy association for endpoint (GET/HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_policy_association_for_endpoint",
        check_str: "rule:admin_required",
        description: "Delete policy association for endpoint (DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_policy_association_for_service",
        check_str: "rule:admin_required",
        description: "Create policy association for service (PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_policy_association_for_service",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check policy association for service (GET/HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_policy_association_for_service",
        check_str: "rule:admin_required",
        description: "Delete policy association for service (DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_policy_association_for_region_and_service",
        check_str: "rule:admin_required",
        description: "Create policy association for region and service (PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_policy_association_for_region_and_service",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check policy association for region and service (GET/HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_policy_association_for_region_and_service",
        check_str: "rule:admin_required",
        description: "Delete policy association for region and service (DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_policy_for_endpoint",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get policy for endpoint (GET/HEAD /v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoints_for_policy",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoints for policy (GET /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints).",
        scope_types: &["system", "project"],
    },
    // ---- project.py ----
    RuleDefault {
        name: "identity:get_project",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
        description: "Get project (GET /v3/projects/{project_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_projects",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
        description: "List projects (GET /v3/projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_user_projects",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
        description: "List user projects (GET /v3/users/{user_id}/projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_project",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Create project (POST /v3/projects).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_project",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Update project (PATCH /v3/projects/{project_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_project",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Delete project (DELETE /v3/projects/{project_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_project_tags",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
        description: "List project tags (GET/HEAD /v3/projects/{project_id}/tags).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:get_project_tag",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
        description: "Get project tag (GET/HEAD /v3/projects/{project_id}/tags/{value}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_project_tags",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Update project tags (PUT /v3/projects/{project_id}/tags).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_project_tag",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Create project tag (PUT /v3/projects/{project_id}/tags/{value}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_project_tags",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Delete project tags (DELETE /v3/projects/{project_id}/tags).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_project_tag",
        check_str: "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        description: "Delete project tag (DELETE /v3/projects/{project_id}/tags/{value}).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- project_endpoint.py ----
    RuleDefault {
        name: "identity:list_projects_for_endpoint",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List projects for endpoint (GET /v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:add_endpoint_to_project",
        check_str: "rule:admin_required",
        description: "Add endpoint to project (PUT /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:check_endpoint_in_project",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Check endpoint in project (GET/HEAD /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_endpoints_for_project",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List endpoints for project (GET /v3/OS-EP-FILTER/projects/{project_id}/endpoints).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:remove_endpoint_from_project",
        check_str: "rule:admin_required",
        description: "Remove endpoint from project (DELETE /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}).",
        scope_types: &["system", "project"],
    },
    // ---- protocol.py ----
    RuleDefault {
        name: "identity:create_protocol",
        check_str: "rule:admin_required",
        description: "Create protocol (PUT /v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_protocol",
        check_str: "rule:admin_required",
        description: "Update protocol (PATCH /v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_protocol",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get protocol (GET /v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_protocols",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List protocols (GET /v3/OS-FEDERATION/identity_providers/{idp_id}/protocols).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_protocol",
        check_str: "rule:admin_required",
        description: "Delete protocol (DELETE /v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}).",
        scope_types: &["system", "project"],
    },
    // ---- region.py ----
    RuleDefault {
        name: "identity:get_region",
        check_str: "",
        description: "Get region (GET/HEAD /v3/regions/{region_id}). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_regions",
        check_str: "",
        description: "List regions (GET/HEAD /v3/regions). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_region",
        check_str: "rule:admin_required",
        description: "Create region (POST /v3/regions; PUT /v3/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_region",
        check_str: "rule:admin_required",
        description: "Update region (PATCH /v3/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_region",
        check_str: "rule:admin_required",
        description: "Delete region (DELETE /v3/regions/{region_id}).",
        scope_types: &["system", "project"],
    },
    // ---- registered_limit.py ----
    RuleDefault {
        name: "identity:get_registered_limit",
        check_str: "",
        description: "Get registered limit (GET/HEAD /v3/registered_limits/{registered_limit_id}). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_registered_limits",
        check_str: "",
        description: "List registered limits (GET/HEAD /v3/registered_limits). Empty check string: allowed for any authenticated caller.",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_registered_limits",
        check_str: "rule:admin_required",
        description: "Create registered limits (POST /v3/registered_limits).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_registered_limit",
        check_str: "rule:admin_required",
        description: "Update registered limit (PATCH /v3/registered_limits/{registered_limit_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_registered_limit",
        check_str: "rule:admin_required",
        description: "Delete registered limit (DELETE /v3/registered_limits/{registered_limit_id}).",
        scope_types: &["system", "project"],
    },
    // ---- revoke_event.py ----
    RuleDefault {
        name: "identity:list_revoke_events",
        check_str: "rule:service_or_admin",
        description: "List revoke events (GET /v3/OS-REVOKE/events).",
        scope_types: &["system", "project"],
    },
    // ---- role.py ----
    RuleDefault {
        name: "identity:get_role",
        check_str: "(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and rule:domain_managed_target_role)",
        description: "Get role (GET/HEAD /v3/roles/{role_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_roles",
        check_str: "(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and not domain_id:None)",
        description: "List roles (GET/HEAD /v3/roles).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:create_role",
        check_str: "rule:admin_required",
        description: "Create role (POST /v3/roles).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_role",
        check_str: "rule:admin_required",
        description: "Update role (PATCH /v3/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_role",
        check_str: "rule:admin_required",
        description: "Delete role (DELETE /v3/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_domain_role",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get domain role (GET/HEAD /v3/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_domain_roles",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List domain roles (GET/HEAD /v3/roles?domain_id={domain_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_domain_role",
        check_str: "rule:admin_required",
        description: "Create domain role (POST /v3/roles).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_domain_role",
        check_str: "rule:admin_required",
        description: "Update domain role (PATCH /v3/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_domain_role",
        check_str: "rule:admin_required",
        description: "Delete domain role (DELETE /v3/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    // ---- role_assignment.py ----
    RuleDefault {
        name: "identity:list_role_assignments",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
        description: "List role assignments (GET/HEAD /v3/role_assignments).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_role_assignments_for_tree",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
        description: "List role assignments for tree (GET/HEAD /v3/role_assignments?include_subtree).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- s3tokens.py ----
    RuleDefault {
        name: "identity:s3tokens_validate",
        check_str: "rule:service_or_admin",
        description: "S3tokens validate (POST /v3/s3tokens).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- ec2tokens.py ----
    RuleDefault {
        name: "identity:ec2tokens_validate",
        check_str: "rule:service_or_admin",
        description: "Ec2tokens validate (POST /v3/ec2tokens).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- service.py ----
    RuleDefault {
        name: "identity:get_service",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get service (GET /v3/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_services",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List services (GET /v3/services).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:create_service",
        check_str: "rule:admin_required",
        description: "Create service (POST /v3/services).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_service",
        check_str: "rule:admin_required",
        description: "Update service (PATCH /v3/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_service",
        check_str: "rule:admin_required",
        description: "Delete service (DELETE /v3/services/{service_id}).",
        scope_types: &["system", "project"],
    },
    // ---- service_provider.py ----
    RuleDefault {
        name: "identity:create_service_provider",
        check_str: "rule:admin_required",
        description: "Create service provider (PUT /v3/OS-FEDERATION/service_providers/{service_provider_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_service_providers",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List service providers (GET/HEAD /v3/OS-FEDERATION/service_providers).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_service_provider",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "Get service provider (GET/HEAD /v3/OS-FEDERATION/service_providers/{service_provider_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:update_service_provider",
        check_str: "rule:admin_required",
        description: "Update service provider (PATCH /v3/OS-FEDERATION/service_providers/{service_provider_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_service_provider",
        check_str: "rule:admin_required",
        description: "Delete service provider (DELETE /v3/OS-FEDERATION/service_providers/{service_provider_id}).",
        scope_types: &["system", "project"],
    },
    // ---- token_revocation.py ----
    RuleDefault {
        name: "identity:revocation_list",
        check_str: "rule:service_or_admin",
        description: "Revocation list (GET /v3/auth/tokens/OS-PKI/revoked).",
        scope_types: &["system", "project"],
    },
    // ---- token.py ----
    RuleDefault {
        name: "identity:check_token",
        check_str: "rule:admin_required or (role:reader and system_scope:all) or rule:token_subject",
        description: "Check token (HEAD /v3/auth/tokens).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:validate_token",
        check_str: "rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject",
        description: "Validate token (GET /v3/auth/tokens).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:revoke_token",
        check_str: "rule:admin_required or rule:token_subject",
        description: "Revoke token (DELETE /v3/auth/tokens).",
        scope_types: &["system", "domain", "project"],
    },
    // ---- trust.py ----
    RuleDefault {
        name: "identity:create_trust",
        check_str: "user_id:%(target.trust.trustor_user_id)s",
        description: "Create trust (POST /v3/OS-TRUST/trusts).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "identity:list_trusts",
        check_str: "rule:admin_required or (role:reader and system_scope:all)",
        description: "List trusts (GET/HEAD /v3/OS-TRUST/trusts).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_trusts_for_trustor",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all or user_id:%(target.trust.trustor_user_id)s)",
        description: "List trusts for trustor (GET/HEAD /v3/OS-TRUST/trusts?trustor_user_id={trustor_user_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_trusts_for_trustee",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all or user_id:%(target.trust.trustee_user_id)s)",
        description: "List trusts for trustee (GET/HEAD /v3/OS-TRUST/trusts?trustee_user_id={trustee_user_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:list_roles_for_trust",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s)",
        description: "List roles for trust (GET/HEAD /v3/OS-TRUST/trusts/{trust_id}/roles).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_role_for_trust",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s)",
        description: "Get role for trust (GET/HEAD /v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:delete_trust",
        check_str: "rule:admin_required or user_id:%(target.trust.trustor_user_id)s",
        description: "Delete trust (DELETE /v3/OS-TRUST/trusts/{trust_id}).",
        scope_types: &["system", "project"],
    },
    RuleDefault {
        name: "identity:get_trust",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s)",
        description: "Get trust (GET/HEAD /v3/OS-TRUST/trusts/{trust_id}).",
        scope_types: &["system", "project"],
    },
    // ---- user.py ----
    RuleDefault {
        name: "identity:get_user",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
        description: "Get user (GET/HEAD /v3/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_users",
        check_str: "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
        description: "List users (GET/HEAD /v3/users).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:list_projects_for_user",
        check_str: "",
        description: "List projects for user (GET /v3/auth/projects). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "identity:list_domains_for_user",
        check_str: "",
        description: "List domains for user (GET /v3/auth/domains). Empty check string: allowed for any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "identity:create_user",
        check_str: "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        description: "Create user (POST /v3/users).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:update_user",
        check_str: "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        description: "Update user (PATCH /v3/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
    RuleDefault {
        name: "identity:delete_user",
        check_str: "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        description: "Delete user (DELETE /v3/users/{user_id}).",
        scope_types: &["system", "domain", "project"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Rules whose Keystone default is deliberately the empty check string
    /// (always passes for an authenticated request).
    const INTENTIONALLY_EMPTY: &[&str] = &[
        "identity:get_auth_catalog",
        "identity:get_auth_projects",
        "identity:get_auth_domains",
        "identity:get_auth_system",
        "identity:get_security_compliance_domain_config",
        "identity:get_limit_model",
        "identity:list_limits",
        "identity:get_region",
        "identity:list_regions",
        "identity:get_registered_limit",
        "identity:list_registered_limits",
        "identity:list_projects_for_user",
        "identity:list_domains_for_user",
    ];

    fn all_rules() -> impl Iterator<Item = &'static RuleDefault> {
        BASE_RULES.iter().chain(IDENTITY_RULES.iter())
    }

    /// Every `rule:NAME` token in a check string.
    fn rule_refs(check: &str) -> Vec<&str> {
        check
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(|tok| tok.strip_prefix("rule:"))
            .collect()
    }

    #[test]
    fn identity_names_are_unique_and_prefixed() {
        let mut seen = HashSet::new();
        for r in IDENTITY_RULES {
            assert!(r.name.starts_with("identity:"), "bad name {}", r.name);
            assert!(seen.insert(r.name), "duplicate rule {}", r.name);
        }
    }

    #[test]
    fn names_are_unique_across_tables() {
        let mut seen = HashSet::new();
        for r in BASE_RULES {
            assert!(
                !r.name.starts_with("identity:"),
                "base rule {} looks like an API rule",
                r.name
            );
        }
        for r in all_rules() {
            assert!(seen.insert(r.name), "duplicate rule {}", r.name);
        }
    }

    #[test]
    fn check_strings_non_empty_unless_intentional() {
        for r in all_rules() {
            let intentional = INTENTIONALLY_EMPTY.contains(&r.name);
            if r.check_str.trim().is_empty() {
                assert!(
                    intentional,
                    "{} has an unexpected empty check string",
                    r.name
                );
            } else {
                assert!(
                    !intentional,
                    "{} is listed as intentionally empty but is not",
                    r.name
                );
            }
            assert!(!r.description.is_empty(), "{} has no description", r.name);
        }
    }

    #[test]
    fn rule_references_resolve() {
        let known: HashSet<&str> = all_rules().map(|r| r.name).collect();
        for r in all_rules() {
            for target in rule_refs(r.check_str) {
                assert!(
                    known.contains(target),
                    "{} references unknown rule:{}",
                    r.name,
                    target
                );
            }
        }
    }

    #[test]
    fn scope_types_are_valid() {
        for r in all_rules() {
            let mut seen = HashSet::new();
            for s in r.scope_types {
                assert!(
                    matches!(*s, "system" | "domain" | "project"),
                    "{}: bad scope {}",
                    r.name,
                    s
                );
                assert!(seen.insert(*s), "{}: duplicate scope {}", r.name, s);
            }
        }
    }

    #[test]
    fn parentheses_balance() {
        for r in all_rules() {
            let mut depth = 0i32;
            for c in r.check_str.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                assert!(depth >= 0, "{}: unbalanced parentheses", r.name);
            }
            assert_eq!(depth, 0, "{}: unbalanced parentheses", r.name);
        }
    }

    #[test]
    fn key_rules_match_keystone() {
        let get = |n: &str| {
            all_rules()
                .find(|r| r.name == n)
                .unwrap_or_else(|| panic!("missing {n}"))
        };
        assert_eq!(get("admin_required").check_str, "role:admin or is_admin:1");
        assert_eq!(
            get("identity:validate_token").check_str,
            "rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject"
        );
        assert_eq!(get("identity:get_auth_catalog").check_str, "");
        assert!(get("identity:get_auth_catalog").scope_types.is_empty());
        assert_eq!(
            get("identity:create_user").scope_types,
            &["system", "domain", "project"]
        );
        assert_eq!(
            get("identity:create_application_credential").scope_types,
            &["project"]
        );
    }
}
