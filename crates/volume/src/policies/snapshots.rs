//! Rules of the snapshots API (`cinder/policies/snapshots.py`, `snapshot_metadata.py`,
//! `snapshot_actions.py`).

use super::api;
use ferrostack_policy::RuleDefault;

const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const ADMIN: &str = "rule:admin_api";

/// The rules.
pub const RULES: &[RuleDefault] = &[
    api("volume:get_all_snapshots", READER, "List snapshots."),
    api(
        "volume_extension:extended_snapshot_attributes",
        READER,
        "List or show snapshots with extended attributes.",
    ),
    api("volume:create_snapshot", MEMBER, "Create snapshot."),
    api("volume:get_snapshot", READER, "Show snapshot."),
    api("volume:update_snapshot", MEMBER, "Update snapshot."),
    api("volume:delete_snapshot", MEMBER, "Delete snapshot."),
    api(
        "volume:get_snapshot_metadata",
        READER,
        "Show snapshot's metadata or one specified metadata with a given key.",
    ),
    api(
        "volume:update_snapshot_metadata",
        MEMBER,
        "Update snapshot's metadata or one specified metadata with a given key.",
    ),
    api(
        "volume:delete_snapshot_metadata",
        MEMBER,
        "Delete snapshot's specified metadata with a given key.",
    ),
    api(
        "volume_extension:snapshot_admin_actions:reset_status",
        ADMIN,
        "Reset status of a snapshot.",
    ),
    api(
        "volume_extension:snapshot_admin_actions:force_delete",
        ADMIN,
        "Force delete a snapshot.",
    ),
    api(
        "snapshot_extension:snapshot_actions:update_snapshot_status",
        MEMBER,
        "Update database fields of snapshot.",
    ),
];
