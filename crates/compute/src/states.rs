//! Nova's three-part instance state (`nova/compute/vm_states.py`, `task_states.py`,
//! `power_state.py`) and the API `status` derived from it (`api/openstack/common.py`).
//! vm_state is the intent, task_state the operation in flight (`None` when idle), power_state
//! the hypervisor's last observation.

/// vm_state values.
pub mod vm {
    pub const ACTIVE: &str = "active";
    pub const BUILDING: &str = "building";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const STOPPED: &str = "stopped";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const SOFT_DELETED: &str = "soft-delete";
    pub const DELETED: &str = "deleted";
    pub const ERROR: &str = "error";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
}

/// task_state values used so far (the later lifecycle operations add theirs).
pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const NETWORKING: &str = "networking";
    pub const BLOCK_DEVICE_MAPPING: &str = "block_device_mapping";
    pub const SPAWNING: &str = "spawning";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOT_PENDING: &str = "reboot_pending";
    pub const REBOOT_STARTED: &str = "reboot_started";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const REBOOT_PENDING_HARD: &str = "reboot_pending_hard";
    pub const REBOOT_STARTED_HARD: &str = "reboot_started_hard";
    pub const DELETING: &str = "deleting";
    pub const RESUMING: &str = "resuming";
    pub const PAUSING: &str = "pausing";
    pub const UNPAUSING: &str = "unpausing";
    pub const SUSPENDING: &str = "suspending";

    /// The soft reboot task states (what the API sets, and the steps after it).
    pub const SOFT_REBOOT: [&str; 3] = [REBOOTING, REBOOT_PENDING, REBOOT_STARTED];
    /// The hard reboot task states.
    pub const HARD_REBOOT: [&str; 3] = [REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD];

    /// Whether `state` is one of the six reboot task states.
    pub fn is_reboot(state: &str) -> bool {
        SOFT_REBOOT.contains(&state) || HARD_REBOOT.contains(&state)
    }
}

/// power_state codes.
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
    pub const SUSPENDED: i64 = 7;
}

/// The API `status` of an instance (`_STATE_MAP`).
pub fn status(vm_state: &str, task_state: Option<&str>, deleted: bool) -> &'static str {
    if deleted {
        return "DELETED";
    }
    let t = task_state.unwrap_or("");
    let rebuild = t.starts_with("rebuild");
    let resize = matches!(
        t,
        "resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish"
    );
    match vm_state {
        vm::ACTIVE => match t {
            "rebooting" | "reboot_pending" | "reboot_started" => "REBOOT",
            "rebooting_hard" | "reboot_pending_hard" | "reboot_started_hard" => "HARD_REBOOT",
            "updating_password" => "PASSWORD",
            "migrating" => "MIGRATING",
            _ if rebuild => "REBUILD",
            _ if resize => "RESIZE",
            _ => "ACTIVE",
        },
        vm::BUILDING => "BUILD",
        vm::STOPPED if resize => "RESIZE",
        vm::STOPPED if rebuild => "REBUILD",
        vm::STOPPED => "SHUTOFF",
        vm::RESIZED if t == "resize_reverting" => "REVERT_RESIZE",
        vm::RESIZED => "VERIFY_RESIZE",
        vm::PAUSED if t == "migrating" => "MIGRATING",
        vm::PAUSED => "PAUSED",
        vm::SUSPENDED => "SUSPENDED",
        vm::RESCUED => "RESCUE",
        vm::ERROR if rebuild => "REBUILD",
        vm::ERROR => "ERROR",
        vm::DELETED => "DELETED",
        vm::SOFT_DELETED => "SOFT_DELETED",
        vm::SHELVED => "SHELVED",
        vm::SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
        _ => "UNKNOWN",
    }
}

/// The (vm_state, task_state) pairs a `status` filter selects (`task_and_vm_state_from_status`);
/// `None` for an unknown status. A `None` task state in the pair list means "any".
pub fn states_for_status(status: &str) -> Option<Vec<(&'static str, Option<&'static str>)>> {
    let s = status.to_ascii_uppercase();
    let pairs: Vec<(&'static str, Option<&'static str>)> = match s.as_str() {
        "ACTIVE" => vec![(vm::ACTIVE, None)],
        "BUILD" => vec![(vm::BUILDING, None)],
        "SHUTOFF" => vec![(vm::STOPPED, None)],
        "ERROR" => vec![(vm::ERROR, None)],
        "PAUSED" => vec![(vm::PAUSED, None)],
        "SUSPENDED" => vec![(vm::SUSPENDED, None)],
        "RESCUE" => vec![(vm::RESCUED, None)],
        "VERIFY_RESIZE" => vec![(vm::RESIZED, None)],
        "DELETED" => vec![(vm::DELETED, None)],
        "SOFT_DELETED" => vec![(vm::SOFT_DELETED, None)],
        "SHELVED" => vec![(vm::SHELVED, None)],
        "SHELVED_OFFLOADED" => vec![(vm::SHELVED_OFFLOADED, None)],
        "REBOOT" => vec![(vm::ACTIVE, Some(task::REBOOTING))],
        "HARD_REBOOT" => vec![(vm::ACTIVE, Some(task::REBOOTING_HARD))],
        "MIGRATING" | "RESIZE" | "REBUILD" | "PASSWORD" | "REVERT_RESIZE" | "UNKNOWN" => vec![],
        _ => return None,
    };
    Some(pairs)
}

/// The vm states a live instance with API `status` can be in, whatever its task state (the
/// inverse of [`status`], for narrowing a listing in SQL); `None` when the status cannot be
/// narrowed that way (`DELETED`: any deleted row; `UNKNOWN`: any other state; unknown names).
pub fn vm_states_with_status(status: &str) -> Option<&'static [&'static str]> {
    Some(match status.to_ascii_uppercase().as_str() {
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "PASSWORD" => &[vm::ACTIVE],
        "MIGRATING" => &[vm::ACTIVE, vm::PAUSED],
        "REBUILD" => &[vm::ACTIVE, vm::STOPPED, vm::ERROR],
        "RESIZE" => &[vm::ACTIVE, vm::STOPPED],
        "BUILD" => &[vm::BUILDING],
        "SHUTOFF" => &[vm::STOPPED],
        "VERIFY_RESIZE" | "REVERT_RESIZE" => &[vm::RESIZED],
        "PAUSED" => &[vm::PAUSED],
        "SUSPENDED" => &[vm::SUSPENDED],
        "RESCUE" => &[vm::RESCUED],
        "ERROR" => &[vm::ERROR],
        "SOFT_DELETED" => &[vm::SOFT_DELETED],
        "SHELVED" => &[vm::SHELVED],
        "SHELVED_OFFLOADED" => &[vm::SHELVED_OFFLOADED],
        _ => return None,
    })
}

/// Whether an instance in (vm_state, task_state, deleted) has `status` (as the list filter
/// matches it: by the derived status).
pub fn has_status(vm_state: &str, task_state: Option<&str>, deleted: bool, wanted: &str) -> bool {
    status(vm_state, task_state, deleted).eq_ignore_ascii_case(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_nova_state_map() {
        assert_eq!(status("active", None, false), "ACTIVE");
        assert_eq!(status("active", Some("powering-off"), false), "ACTIVE");
        assert_eq!(status("stopped", Some("powering-on"), false), "SHUTOFF");
        assert_eq!(
            status("active", Some("reboot_started_hard"), false),
            "HARD_REBOOT"
        );
        assert_eq!(status("active", Some("rebooting"), false), "REBOOT");
        assert_eq!(status("building", Some("spawning"), false), "BUILD");
        assert_eq!(status("error", None, false), "ERROR");
        assert_eq!(status("active", None, true), "DELETED");
        assert_eq!(status("weird", None, false), "UNKNOWN");
        assert!(states_for_status("bogus").is_none());
        assert!(has_status("stopped", None, false, "shutoff"));
    }

    /// Every live (vm state, task state) whose status is S has a vm state that
    /// `vm_states_with_status(S)` names, so narrowing by it never drops a match.
    #[test]
    fn narrowing_by_vm_state_keeps_every_instance_of_a_status() {
        let vm_states = [
            vm::ACTIVE,
            vm::BUILDING,
            vm::STOPPED,
            vm::RESIZED,
            vm::PAUSED,
            vm::SUSPENDED,
            vm::RESCUED,
            vm::ERROR,
            vm::DELETED,
            vm::SOFT_DELETED,
            vm::SHELVED,
            vm::SHELVED_OFFLOADED,
            "weird",
        ];
        let task_states = [
            None,
            Some("rebooting"),
            Some("reboot_started_hard"),
            Some("updating_password"),
            Some("migrating"),
            Some("rebuilding"),
            Some("rebuild_spawning"),
            Some("resize_prep"),
            Some("resize_finish"),
            Some("resize_reverting"),
            Some("spawning"),
            Some("powering-off"),
        ];
        for vm_state in vm_states {
            for task_state in task_states {
                let shown = status(vm_state, task_state, false);
                match vm_states_with_status(shown) {
                    Some(states) => assert!(
                        states.contains(&vm_state),
                        "{vm_state}/{task_state:?} is {shown}"
                    ),
                    None => assert!(matches!(shown, "DELETED" | "UNKNOWN"), "{shown}"),
                }
            }
        }
        assert_eq!(vm_states_with_status("shutoff"), Some(&[vm::STOPPED][..]));
        assert!(vm_states_with_status("bogus").is_none());
    }
}
