//! Every instance state change the agent asks the conductor for, in one place: each is a
//! [`StateUpdate`] whose `expected_task_state` the conductor checks (compare-and-swap) before
//! applying it. See the crate documentation for the table.

use ferrostack_compute::rpc::StateUpdate;

// The state names are the compute service's (one definition for the API, conductor and agent).
pub use ferrostack_compute::states::{task, vm};

/// Nova's power state code for a running guest.
pub const POWER_RUNNING: i64 = ferrostack_compute::states::power::RUNNING;
/// Nova's power state code for a shut-down guest.
pub const POWER_SHUTDOWN: i64 = ferrostack_compute::states::power::SHUTDOWN;

fn some(states: &[&str]) -> Vec<Option<String>> {
    states.iter().map(|s| Some(s.to_string())).collect()
}

fn update(uuid: &str, expected: Vec<Option<String>>) -> StateUpdate {
    StateUpdate {
        uuid: uuid.to_string(),
        expected_task_state: expected,
        vm_state: None,
        task_state: None,
        power_state: None,
        launched: false,
    }
}

/// Build, step 1: `building` / {None, `scheduling`, `spawning`} → task `spawning`.
///
/// `spawning` is accepted so that a re-sent or re-run build (after an agent restart) proceeds.
pub fn build_spawning(uuid: &str) -> StateUpdate {
    let mut expected = vec![None];
    expected.extend(some(&[task::SCHEDULING, task::SPAWNING]));
    StateUpdate {
        task_state: Some(Some(task::SPAWNING.into())),
        ..update(uuid, expected)
    }
}

/// Build, step 2: task `spawning` → vm `active`, task None, the measured power state,
/// `launched_at` = now.
pub fn build_done(uuid: &str, power_state: i64) -> StateUpdate {
    StateUpdate {
        vm_state: Some(vm::ACTIVE.into()),
        task_state: Some(None),
        power_state: Some(power_state),
        launched: true,
        ..update(uuid, some(&[task::SPAWNING]))
    }
}

/// Stop: task `powering-off` → vm `stopped`, task None, the measured power state (4). When the
/// guest was already down before the stop, an idle task (None) is accepted too (Nova's
/// `stop_instance`: something else may have finished the job meanwhile).
pub fn stopped(uuid: &str, power_state: i64, was_down: bool) -> StateUpdate {
    let mut expected = some(&[task::POWERING_OFF]);
    if was_down {
        expected.push(None);
    }
    StateUpdate {
        vm_state: Some(vm::STOPPED.into()),
        task_state: Some(None),
        power_state: Some(power_state),
        ..update(uuid, expected)
    }
}

/// Start: task `powering-on` → vm `active`, task None, the measured power state (1).
pub fn started(uuid: &str, power_state: i64) -> StateUpdate {
    StateUpdate {
        vm_state: Some(vm::ACTIVE.into()),
        task_state: Some(None),
        power_state: Some(power_state),
        ..update(uuid, some(&[task::POWERING_ON]))
    }
}

/// A failed stop or start (Nova's `reverts_task_state`): task `from` → None, the vm state kept,
/// the measured power state recorded.
pub fn revert_task(uuid: &str, from: &str, power_state: Option<i64>) -> StateUpdate {
    StateUpdate {
        task_state: Some(None),
        power_state,
        ..update(uuid, some(&[from]))
    }
}

/// Reboot, step 1. Soft: {`rebooting`, `reboot_pending`, `reboot_started`} → `reboot_started`.
/// Hard: any of the six reboot states → `reboot_started_hard` (a hard reboot may supersede a
/// soft one, as Nova's API allows).
pub fn reboot_started(uuid: &str, hard: bool) -> StateUpdate {
    let (expected, target) = match hard {
        false => (some(&task::SOFT_REBOOT), task::REBOOT_STARTED),
        true => {
            let mut all = some(&task::SOFT_REBOOT);
            all.extend(some(&task::HARD_REBOOT));
            (all, task::REBOOT_STARTED_HARD)
        }
    };
    StateUpdate {
        task_state: Some(Some(target.into())),
        ..update(uuid, expected)
    }
}

/// Reboot, step 2: `reboot_started[_hard]` → vm `active`, task None, the measured power state.
/// After a failed reboot `vm_state` is `active` when the guest still runs, else `error` (Nova).
pub fn reboot_done(uuid: &str, hard: bool, vm_state: &str, power_state: i64) -> StateUpdate {
    let from = if hard {
        task::REBOOT_STARTED_HARD
    } else {
        task::REBOOT_STARTED
    };
    StateUpdate {
        vm_state: Some(vm_state.into()),
        task_state: Some(None),
        power_state: Some(power_state),
        ..update(uuid, some(&[from]))
    }
}

/// Start-up: a reboot interrupted by an agent restart whose guest runs anyway: the reboot task
/// `from` → vm `active`, task None, power 1 (Nova's `_init_instance`).
pub fn reboot_cleared(uuid: &str, from: &str) -> StateUpdate {
    StateUpdate {
        vm_state: Some(vm::ACTIVE.into()),
        task_state: Some(None),
        power_state: Some(POWER_RUNNING),
        ..update(uuid, some(&[from]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_accepts_a_claimed_a_scheduling_or_a_re_run_instance() {
        let u = build_spawning("u");
        assert_eq!(
            u.expected_task_state,
            vec![None, Some("scheduling".into()), Some("spawning".into())]
        );
        assert_eq!(u.task_state, Some(Some("spawning".into())));
        assert_eq!(u.vm_state, None);
        let done = build_done("u", 1);
        assert_eq!(done.expected_task_state, vec![Some("spawning".into())]);
        assert_eq!(done.task_state, Some(None));
        assert!(done.launched);
    }

    #[test]
    fn a_hard_reboot_supersedes_a_soft_one_but_not_the_reverse() {
        let soft = reboot_started("u", false);
        assert_eq!(soft.expected_task_state.len(), 3);
        assert!(
            !soft
                .expected_task_state
                .contains(&Some("rebooting_hard".into()))
        );
        let hard = reboot_started("u", true);
        assert_eq!(hard.expected_task_state.len(), 6);
        assert_eq!(hard.task_state, Some(Some("reboot_started_hard".into())));
        assert!(task::is_reboot("reboot_pending_hard"));
        assert!(!task::is_reboot("powering-on"));
    }

    /// Over the bus `task_state: Some(None)` ("clear the task") must not turn into `None`
    /// ("leave it"): `rpc::StateUpdate::task_state` sends `null` for the first and no key for
    /// the second.
    #[test]
    fn clearing_the_task_state_survives_the_wire() {
        use ferrostack_compute::rpc::{decode, encode};
        let sent = build_done("u", 1);
        let received: StateUpdate = decode(&encode(&sent)).unwrap();
        assert_eq!(received.task_state, Some(None));
        let keep = build_spawning("u");
        let received: StateUpdate = decode(&encode(&StateUpdate {
            task_state: None,
            ..keep
        }))
        .unwrap();
        assert_eq!(received.task_state, None);
    }

    #[test]
    fn updates_serialise_with_none_as_null() {
        let json = serde_json::to_value(revert_task("u", task::POWERING_OFF, None)).unwrap();
        assert_eq!(json["task_state"], serde_json::Value::Null);
        assert_eq!(json["expected_task_state"][0], "powering-off");
    }
}
