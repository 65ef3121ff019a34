//! Rules of the volumes API, its actions and its metadata (`cinder/policies/volumes.py`,
//! `volume_actions.py`, `volume_metadata.py`), secure-RBAC defaults. The legacy attach actions'
//! rules are with the attachments' ([`super::attachments`]).

use super::api;
use ferrostack_policy::RuleDefault;

const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const ADMIN: &str = "rule:admin_api";

/// The rules.
pub const RULES: &[RuleDefault] = &[
    api("volume:create", MEMBER, "Create volume."),
    api(
        "volume:create_from_image",
        MEMBER,
        "Create volume from image.",
    ),
    api("volume:get", READER, "Show volume."),
    api(
        "volume:get_all",
        READER,
        "List volumes or get summary of volumes.",
    ),
    api(
        "volume:update",
        MEMBER,
        "Update volume or update a volume's bootable status.",
    ),
    api("volume:delete", MEMBER, "Delete volume."),
    api("volume:force_delete", ADMIN, "Force Delete a volume."),
    api(
        "volume_extension:volume_host_attribute",
        ADMIN,
        "List or show volume with host attribute.",
    ),
    api(
        "volume_extension:volume_tenant_attribute",
        READER,
        "List or show volume with tenant attribute.",
    ),
    api(
        "volume_extension:volume_mig_status_attribute",
        ADMIN,
        "List or show volume with migration status attribute.",
    ),
    api(
        "volume:multiattach",
        MEMBER,
        "Create multiattach capable volume.",
    ),
    api("volume:extend", MEMBER, "Extend a volume."),
    api("volume:retype", MEMBER, "Retype a volume."),
    api(
        "volume:extend_attached_volume",
        MEMBER,
        "Extend a attached volume.",
    ),
    api(
        "volume_extension:volume_admin_actions:reset_status",
        ADMIN,
        "Reset status of a volume.",
    ),
    api(
        "volume:update_readonly_flag",
        MEMBER,
        "Update volume read-only flag.",
    ),
    api(
        "volume_extension:volume_admin_actions:force_delete",
        ADMIN,
        "Force delete a volume.",
    ),
    api(
        "volume_extension:volume_actions:upload_public",
        ADMIN,
        "Upload a volume to image with public visibility.",
    ),
    api(
        "volume_extension:volume_actions:upload_image",
        MEMBER,
        "Upload a volume to image.",
    ),
    api(
        "volume:get_volume_metadata",
        READER,
        "Show volume's metadata or one specified metadata with a given key.",
    ),
    api(
        "volume:create_volume_metadata",
        MEMBER,
        "Create volume metadata.",
    ),
    api(
        "volume:update_volume_metadata",
        MEMBER,
        "Replace a volume's metadata dictionary or update a single metadatum with a given key.",
    ),
    api(
        "volume:delete_volume_metadata",
        MEMBER,
        "Delete a volume's metadatum with the given key.",
    ),
    api(
        "volume_extension:volume_image_metadata:show",
        READER,
        "Include volume's image metadata in volume detail responses.  The ability to make \
         these calls is governed by other policies.",
    ),
    api(
        "volume_extension:volume_image_metadata:set",
        MEMBER,
        "Set image metadata for a volume",
    ),
    api(
        "volume_extension:volume_image_metadata:remove",
        MEMBER,
        "Remove specific image metadata from a volume",
    ),
];
