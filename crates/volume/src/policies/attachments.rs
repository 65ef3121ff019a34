//! Rules of the attachments API and of the legacy attach actions (`cinder/policies/
//! attachments.py`, `volume_actions.py`).

use super::api;
use ferrostack_policy::RuleDefault;

/// The rules.
pub const RULES: &[RuleDefault] = &[
    api(
        "volume:attachment_get",
        "rule:project_reader_or_admin",
        "Show attachment.",
    ),
    api(
        "volume:attachment_get_all",
        "rule:project_reader_or_admin",
        "List attachments.",
    ),
    api(
        "volume:attachment_create",
        "rule:project_member_or_admin",
        "Create attachment.",
    ),
    api(
        "volume:attachment_update",
        "rule:project_member_or_admin",
        "Update attachment.",
    ),
    api(
        "volume:attachment_delete",
        "rule:project_member_or_admin",
        "Delete attachment.",
    ),
    api(
        "volume:attachment_complete",
        "rule:project_member_or_admin",
        "Mark a volume attachment process as completed (in-use).",
    ),
    api(
        "volume:multiattach_bootable_volume",
        "rule:project_member_or_admin",
        "Allow multiattach of bootable volumes.",
    ),
    api(
        "volume_extension:volume_actions:reserve",
        "rule:project_member_or_admin",
        "Mark volume as reserved.",
    ),
    api(
        "volume_extension:volume_actions:unreserve",
        "rule:project_member_or_admin",
        "Unmark volume as reserved.",
    ),
    api(
        "volume_extension:volume_actions:begin_detaching",
        "rule:project_member_or_admin",
        "Begin detach volumes.",
    ),
    api(
        "volume_extension:volume_actions:roll_detaching",
        "rule:project_member_or_admin",
        "Roll back volume status to 'in-use'.",
    ),
    api(
        "volume_extension:volume_actions:attach",
        "rule:project_member_or_admin",
        "Attach a volume.",
    ),
    api(
        "volume_extension:volume_actions:detach",
        "rule:project_member_or_admin",
        "Detach a volume.",
    ),
    api(
        "volume_extension:volume_actions:initialize_connection",
        "rule:project_member_or_admin",
        "Initialize volume attachment.",
    ),
    api(
        "volume_extension:volume_actions:terminate_connection",
        "rule:project_member_or_admin",
        "Terminate volume attachment.",
    ),
];
