//! Nova's default policy rules (secure RBAC), registered by the compute service.
//!
//! From `nova/policies/*.py` as summarised in `docs/design/compute-service.md` §11: the base
//! rules, then the rules of the APIs in scope for issue 4. Every API rule is project-scoped,
//! as upstream (`scope_types=['project']`); the base rules have no scope.
use ferrostack_policy::RuleDefault;

const fn base(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        scope_types: &[],
    }
}

const fn api(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        scope_types: &["project"],
    }
}

/// Every compute-service rule.
pub const COMPUTE_RULES: &[RuleDefault] = &[
    base(
        "context_is_admin",
        "role:admin",
        "Who counts as a Nova admin: the admin role.",
    ),
    base(
        "project_member_api",
        "role:member and project_id:%(project_id)s",
        "A member of the target's project.",
    ),
    base(
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
        "A reader of the target's project.",
    ),
    base(
        "project_manager_api",
        "role:manager and project_id:%(project_id)s",
        "A manager of the target's project.",
    ),
    base(
        "service_api",
        "role:service",
        "A service user (e.g. Neutron sending external events).",
    ),
    base(
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
        "A member of the target's project, or an admin.",
    ),
    base(
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
        "A reader of the target's project, or an admin.",
    ),
    base(
        "service_or_admin",
        "rule:service_api or rule:context_is_admin",
        "A service user or an admin.",
    ),
    api(
        "os_compute_api:servers:index",
        "rule:project_reader_or_admin",
        "List and show servers of the caller's project.",
    ),
    api(
        "os_compute_api:servers:detail",
        "rule:project_reader_or_admin",
        "List and show servers of the caller's project.",
    ),
    api(
        "os_compute_api:servers:show",
        "rule:project_reader_or_admin",
        "List and show servers of the caller's project.",
    ),
    api(
        "os_compute_api:servers:index:get_all_tenants",
        "rule:context_is_admin",
        "List servers of every project; use every filter.",
    ),
    api(
        "os_compute_api:servers:detail:get_all_tenants",
        "rule:context_is_admin",
        "List servers of every project; use every filter.",
    ),
    api(
        "os_compute_api:servers:allow_all_filters",
        "rule:context_is_admin",
        "List servers of every project; use every filter.",
    ),
    api(
        "os_compute_api:servers:show:flavor-extra-specs",
        "rule:project_reader_or_admin",
        "See the flavor's extra specs in a server body (>= 2.47).",
    ),
    api(
        "os_compute_api:servers:show:host_status",
        "rule:context_is_admin",
        "See host_status in a server body (>= 2.16).",
    ),
    api(
        "os_compute_api:servers:show:host_status:unknown-only",
        "rule:context_is_admin",
        "See host_status in a server body (>= 2.16).",
    ),
    api(
        "os_compute_api:servers:create",
        "rule:project_member_or_admin",
        "Create a server (with volumes, networks).",
    ),
    api(
        "os_compute_api:servers:create:attach_volume",
        "rule:project_member_or_admin",
        "Create a server (with volumes, networks).",
    ),
    api(
        "os_compute_api:servers:create:attach_network",
        "rule:project_member_or_admin",
        "Create a server (with volumes, networks).",
    ),
    api(
        "os_compute_api:servers:create:trusted_certs",
        "rule:project_member_or_admin",
        "Create a server (with volumes, networks).",
    ),
    api(
        "os_compute_api:servers:create:forced_host",
        "rule:context_is_admin",
        "Create a server on a chosen host, with a zero-disk flavor, on an external network.",
    ),
    api(
        "compute:servers:create:requested_destination",
        "rule:context_is_admin",
        "Create a server on a chosen host, with a zero-disk flavor, on an external network.",
    ),
    api(
        "os_compute_api:servers:create:zero_disk_flavor",
        "rule:context_is_admin",
        "Create a server on a chosen host, with a zero-disk flavor, on an external network.",
    ),
    api(
        "network:attach_external_network",
        "rule:context_is_admin",
        "Create a server on a chosen host, with a zero-disk flavor, on an external network.",
    ),
    api(
        "os_compute_api:servers:update",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:delete",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:reboot",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:start",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:stop",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:rebuild",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:resize",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:confirm_resize",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:revert_resize",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:create_image",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "os_compute_api:servers:trigger_crash_dump",
        "rule:project_member_or_admin",
        "Server lifecycle actions on a server of the caller's project.",
    ),
    api(
        "compute:servers:resize:cross_cell",
        "!",
        "Cross-cell resize (never).",
    ),
    api(
        "os_compute_api:os-extended-server-attributes",
        "rule:context_is_admin",
        "Extended server attributes; reset a server's state.",
    ),
    api(
        "os_compute_api:os-admin-actions:reset_state",
        "rule:context_is_admin",
        "Extended server attributes; reset a server's state.",
    ),
    api(
        "os_compute_api:os-admin-actions:inject_network_info",
        "rule:context_is_admin",
        "Extended server attributes; reset a server's state.",
    ),
    api(
        "os_compute_api:os-security-groups:add",
        "rule:project_member_or_admin",
        "Add a security group to a server's ports.",
    ),
    api(
        "os_compute_api:os-security-groups:remove",
        "rule:project_member_or_admin",
        "Remove a security group from a server's ports.",
    ),
    api(
        "os_compute_api:os-server-password:show",
        "rule:project_reader_or_admin",
        "Show the password a server's guest posted to the metadata service.",
    ),
    api(
        "os_compute_api:os-server-password:clear",
        "rule:project_member_or_admin",
        "Clear the password a server's guest posted to the metadata service.",
    ),
    api(
        "os_compute_api:os-floating-ips:add",
        "rule:project_member_or_admin",
        "Associate a floating IP with a server (addFloatingIp, up to 2.43).",
    ),
    api(
        "os_compute_api:os-floating-ips:remove",
        "rule:project_member_or_admin",
        "Disassociate a floating IP from a server (removeFloatingIp, up to 2.43).",
    ),
    api(
        "os_compute_api:os-volumes-attachments:index",
        "rule:project_reader_or_admin",
        "List volume attachments for an instance.",
    ),
    api(
        "os_compute_api:os-volumes-attachments:show",
        "rule:project_reader_or_admin",
        "Show details of a volume attachment.",
    ),
    api(
        "os_compute_api:os-volumes-attachments:create",
        "rule:project_member_or_admin",
        "Attach a volume to an instance.",
    ),
    api(
        "os_compute_api:os-volumes-attachments:delete",
        "rule:project_member_or_admin",
        "Detach a volume from an instance.",
    ),
    api(
        "os_compute_api:os-lock-server:lock",
        "rule:project_member_or_admin",
        "Lock or unlock a server.",
    ),
    api(
        "os_compute_api:os-lock-server:unlock",
        "rule:project_member_or_admin",
        "Lock or unlock a server.",
    ),
    api(
        "os_compute_api:os-lock-server:unlock:unlock_override",
        "rule:context_is_admin",
        "Unlock a server locked by someone else.",
    ),
    api(
        "os_compute_api:os-deferred-delete:restore",
        "rule:project_member_or_admin",
        "Restore a soft-deleted server.",
    ),
    api(
        "os_compute_api:os-deferred-delete:force",
        "rule:project_member_or_admin",
        "Force-delete a server.",
    ),
    api(
        "os_compute_api:os-console-output",
        "rule:project_member_or_admin",
        "Read a server's console output; get a remote console.",
    ),
    api(
        "os_compute_api:os-remote-consoles",
        "rule:project_member_or_admin",
        "Get a URL to a server's remote console.",
    ),
    api(
        "os_compute_api:os-console-auth-tokens",
        "rule:context_is_admin",
        "Show the connection a console authentication token grants.",
    ),
    api(
        "os_compute_api:server-metadata:index",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:server-metadata:show",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:os-server-tags:index",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:os-server-tags:show",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:ips:index",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:ips:show",
        "rule:project_reader_or_admin",
        "Read server metadata, tags and addresses.",
    ),
    api(
        "os_compute_api:server-metadata:create",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:server-metadata:update",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:server-metadata:update_all",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:server-metadata:delete",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:os-server-tags:update",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:os-server-tags:update_all",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:os-server-tags:delete",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:os-server-tags:delete_all",
        "rule:project_member_or_admin",
        "Change server metadata and tags.",
    ),
    api(
        "os_compute_api:os-instance-actions:list",
        "rule:project_reader_or_admin",
        "List and show a server's actions.",
    ),
    api(
        "os_compute_api:os-instance-actions:show",
        "rule:project_reader_or_admin",
        "List and show a server's actions.",
    ),
    api(
        "os_compute_api:os-instance-actions:events",
        "rule:context_is_admin",
        "See the events (and their details) of a server action.",
    ),
    api(
        "os_compute_api:os-instance-actions:events:details",
        "rule:context_is_admin",
        "See the events (and their details) of a server action.",
    ),
    api(
        "os_compute_api:os-server-external-events:create",
        "rule:service_or_admin",
        "Send external events (network-vif-plugged...) to servers.",
    ),
    api(
        "os_compute_api:os-flavor-extra-specs:index",
        "rule:project_reader_or_admin",
        "List and show a flavor's extra specs.",
    ),
    api(
        "os_compute_api:os-flavor-extra-specs:show",
        "rule:project_reader_or_admin",
        "List and show a flavor's extra specs.",
    ),
    api(
        "os_compute_api:os-flavor-manage:create",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-manage:update",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-manage:delete",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-extra-specs:create",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-extra-specs:update",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-extra-specs:delete",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-access",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-access:add_tenant_access",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-flavor-access:remove_tenant_access",
        "rule:context_is_admin",
        "Manage flavors, their extra specs and access lists.",
    ),
    api(
        "os_compute_api:os-keypairs:index",
        "(rule:context_is_admin) or user_id:%(user_id)s",
        "Keypairs of the caller (admins: of any user).",
    ),
    api(
        "os_compute_api:os-keypairs:show",
        "(rule:context_is_admin) or user_id:%(user_id)s",
        "Keypairs of the caller (admins: of any user).",
    ),
    api(
        "os_compute_api:os-keypairs:create",
        "(rule:context_is_admin) or user_id:%(user_id)s",
        "Keypairs of the caller (admins: of any user).",
    ),
    api(
        "os_compute_api:os-keypairs:delete",
        "(rule:context_is_admin) or user_id:%(user_id)s",
        "Keypairs of the caller (admins: of any user).",
    ),
    api("os_compute_api:limits", "@", "Show the caller's limits."),
    api(
        "os_compute_api:limits:other_project",
        "rule:context_is_admin",
        "Show another project's limits.",
    ),
    api(
        "os_compute_api:os-quota-sets:show",
        "rule:project_reader_or_admin",
        "Show a project's quotas.",
    ),
    api(
        "os_compute_api:os-quota-sets:detail",
        "rule:project_reader_or_admin",
        "Show a project's quotas.",
    ),
    api(
        "os_compute_api:os-quota-sets:defaults",
        "@",
        "Show the default quotas.",
    ),
    api(
        "os_compute_api:os-quota-sets:update",
        "rule:context_is_admin",
        "Change or reset a project's quotas.",
    ),
    api(
        "os_compute_api:os-quota-sets:delete",
        "rule:context_is_admin",
        "Change or reset a project's quotas.",
    ),
    api(
        "os_compute_api:os-server-groups:index",
        "rule:project_reader_or_admin",
        "List and show server groups.",
    ),
    api(
        "os_compute_api:os-server-groups:show",
        "rule:project_reader_or_admin",
        "List and show server groups.",
    ),
    api(
        "os_compute_api:os-server-groups:create",
        "rule:project_member_or_admin",
        "Create and delete server groups.",
    ),
    api(
        "os_compute_api:os-server-groups:delete",
        "rule:project_member_or_admin",
        "Create and delete server groups.",
    ),
    api(
        "os_compute_api:os-server-groups:index:all_projects",
        "rule:context_is_admin",
        "List server groups of every project.",
    ),
    api(
        "os_compute_api:os-availability-zone:list",
        "@",
        "List availability zones.",
    ),
    api(
        "os_compute_api:os-availability-zone:detail",
        "rule:context_is_admin",
        "List availability zones with their hosts.",
    ),
    api(
        "os_compute_api:os-services:list",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-services:update",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-services:delete",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:list",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:list-detail",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:show",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:statistics",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:uptime",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:search",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-hypervisors:servers",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:index",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:show",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:create",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:update",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:delete",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:add_host",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:remove_host",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "os_compute_api:os-aggregates:set_metadata",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
    api(
        "compute:aggregates:images",
        "rule:context_is_admin",
        "Services, hypervisors and host aggregates (admin).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_register_and_reference_only_known_rules() {
        let mut enforcer = ferrostack_policy::Enforcer::new(true);
        enforcer.register(COMPUTE_RULES).unwrap();
        assert!(enforcer.validate().is_empty(), "{:?}", enforcer.validate());
    }
}
