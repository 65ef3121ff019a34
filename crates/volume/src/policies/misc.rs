//! Rules of the QoS specs, quotas, limits, services, hosts, capabilities, scheduler stats and
//! messages APIs (`cinder/policies/qos_specs.py`, `quotas.py`, `quota_class.py`, `limits.py`,
//! `services.py`, `hosts.py`, `capabilities.py`, `scheduler_stats.py`, `messages.py`).

use super::api;
use ferrostack_policy::RuleDefault;

const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const ADMIN: &str = "rule:admin_api";

/// The rules.
pub const RULES: &[RuleDefault] = &[
    api(
        "volume_extension:qos_specs_manage:get_all",
        ADMIN,
        "List qos specs or list all associations.",
    ),
    api(
        "volume_extension:qos_specs_manage:get",
        ADMIN,
        "Show qos specs.",
    ),
    api(
        "volume_extension:qos_specs_manage:create",
        ADMIN,
        "Create qos specs.",
    ),
    api(
        "volume_extension:qos_specs_manage:update",
        ADMIN,
        "Update qos specs (including updating association).",
    ),
    api(
        "volume_extension:qos_specs_manage:delete",
        ADMIN,
        "Delete qos specs or unset one specified qos key.",
    ),
    api(
        "volume_extension:quotas:show",
        READER,
        "Show project quota (including usage and default).",
    ),
    api(
        "volume_extension:quotas:update",
        ADMIN,
        "Update project quota.",
    ),
    api(
        "volume_extension:quotas:delete",
        ADMIN,
        "Delete project quota.",
    ),
    api(
        "volume_extension:quota_classes:get",
        ADMIN,
        "Show project quota class.",
    ),
    api(
        "volume_extension:quota_classes:update",
        ADMIN,
        "Update project quota class.",
    ),
    api(
        "limits_extension:used_limits",
        READER,
        "Show limits with used limit attributes.",
    ),
    api(
        "volume_extension:services:index",
        ADMIN,
        "List all services.",
    ),
    api(
        "volume_extension:services:update",
        ADMIN,
        "Update service, including failover_host, thaw, freeze, disable, enable, set-log and \
         get-log actions.",
    ),
    api(
        "volume_extension:hosts",
        ADMIN,
        "List, update or show hosts for a project.",
    ),
    api(
        "volume_extension:capabilities",
        ADMIN,
        "Show backend capabilities.",
    ),
    api("message:get_all", READER, "List messages."),
    api("message:get", READER, "Show message."),
    api("message:delete", MEMBER, "Delete message."),
    api(
        "scheduler_extension:scheduler_stats:get_pools",
        ADMIN,
        "List all backend pools.",
    ),
];
