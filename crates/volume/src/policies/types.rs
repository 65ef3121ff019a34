//! Rules of the volume types API (`cinder/policies/volume_type.py`, `type_extra_specs.py`,
//! `volume_access.py`, `default_types.py`).

use super::api;
use ferrostack_policy::RuleDefault;

const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const ADMIN: &str = "rule:admin_api";

/// The rules.
pub const RULES: &[RuleDefault] = &[
    api("volume_extension:type_create", ADMIN, "Create volume type."),
    api("volume_extension:type_update", ADMIN, "Update volume type."),
    api("volume_extension:type_delete", ADMIN, "Delete volume type."),
    api(
        "volume_extension:type_get",
        READER,
        "Get one specific volume type.",
    ),
    api(
        "volume_extension:type_get_all",
        READER,
        "List volume types.",
    ),
    api(
        "volume_extension:access_types_extra_specs",
        READER,
        "Include the volume type's extra_specs attribute in the volume type list or show requests.",
    ),
    api(
        "volume_extension:access_types_qos_specs_id",
        ADMIN,
        "Include the volume type's QoS specifications ID attribute in the volume type list or show requests.",
    ),
    api(
        "volume_extension:types_extra_specs:index",
        READER,
        "List type extra specs.",
    ),
    api(
        "volume_extension:types_extra_specs:create",
        ADMIN,
        "Create type extra specs.",
    ),
    api(
        "volume_extension:types_extra_specs:show",
        READER,
        "Show one specified type extra specs.",
    ),
    api(
        "volume_extension:types_extra_specs:read_sensitive",
        ADMIN,
        "Include extra_specs fields that may reveal sensitive information about the deployment that should not be exposed to end users in various volume-type responses that show extra_specs.",
    ),
    api(
        "volume_extension:types_extra_specs:update",
        ADMIN,
        "Update type extra specs.",
    ),
    api(
        "volume_extension:types_extra_specs:delete",
        ADMIN,
        "Delete type extra specs.",
    ),
    api(
        "volume_extension:volume_type_access",
        MEMBER,
        "Volume type access related APIs.",
    ),
    api(
        "volume_extension:volume_type_access:addProjectAccess",
        ADMIN,
        "Add volume type access for project.",
    ),
    api(
        "volume_extension:volume_type_access:removeProjectAccess",
        ADMIN,
        "Remove volume type access for project.",
    ),
    api(
        "volume_extension:volume_type_access:get_all_for_type",
        ADMIN,
        "List private volume type access detail, that is, list the projects that have access to this volume type.",
    ),
    api(
        "volume_extension:default_set_or_update",
        ADMIN,
        "Set or update default volume type.",
    ),
    api("volume_extension:default_get", ADMIN, "Get default types."),
    api(
        "volume_extension:default_get_all",
        ADMIN,
        "Get all default types.",
    ),
    api(
        "volume_extension:default_unset",
        ADMIN,
        "Unset default type.",
    ),
];
