//! Start-up reconciliation (Nova's `init_host` / `_init_instance`), run before the agent takes
//! requests. The conductor's answer to `HostInstances` is the truth about what this host owns.
//!
//! Rules, in order:
//! 1. A guest the driver lists whose uuid the conductor does not assign to this host, and whose
//!    directory is under this agent's `instances_path`, is destroyed and its directory removed.
//!    A guest without a directory here is left alone and logged: it may belong to another agent
//!    sharing the hypervisor (several hosts' agents on one libvirtd in tests, or a test's own
//!    domains); this agent only ever removes what it made.
//! 2. An instance directory (uuid-named) that no owned instance matches is removed, after
//!    destroying a domain of that uuid if there is one.
//! 3. Temporary files left in the image cache (`_base/tmp-*`) are removed.
//! 4. Each owned instance, by its states (the first rule that matches):
//!    - task `deleting`, or vm `deleted`: the delete is finished (guest and files removed,
//!      `Deleted` sent);
//!    - vm `building`: the build runs again; builds are idempotent (existing files and a running
//!      domain are kept), and the conductor may re-send it too — the second run finds it done;
//!    - task `powering-off`: the stop runs again;
//!    - task `powering-on`: the start runs again;
//!    - a reboot task (`rebooting`, `reboot_pending`, `reboot_started` and their `_hard`
//!      forms): if the guest runs, the task is cleared (vm `active`, power 1); otherwise a hard
//!      reboot runs;
//!    - anything else is left as it is: a guest that should run but does not (the host
//!      rebooted) is reported by the heartbeat, and the conductor's power-state sync decides.
//!
//! The recoveries of rule 4 are queued like requests (one at a time per instance, requests
//! that arrive meanwhile run after them).

use crate::files::{InstanceFiles, instance_dirs};
use crate::guest::Guests;
use crate::transitions::{task, vm};
use ferrostack_compute::rpc::{AgentRequest, OwnedInstance};
use std::collections::BTreeSet;

/// A recovery of rule 4.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// Re-run a request.
    Request(Box<AgentRequest>),
    /// An interrupted reboot of a running guest: clear the task `from`.
    ClearReboot { uuid: String, from: String },
}

impl Recovery {
    /// The instance it concerns.
    pub fn uuid(&self) -> &str {
        match self {
            Recovery::Request(request) => match request.as_ref() {
                AgentRequest::Build { build, .. }
                | AgentRequest::Start { build, .. }
                | AgentRequest::Reboot { build, .. } => &build.uuid,
                AgentRequest::Delete { uuid, .. }
                | AgentRequest::Stop { uuid, .. }
                | AgentRequest::ConsoleOutput { uuid, .. }
                | AgentRequest::VncConsole { uuid }
                | AgentRequest::AttachVolume { uuid, .. }
                | AgentRequest::DetachVolume { uuid, .. } => uuid,
                AgentRequest::Ping | AgentRequest::ExternalEvents { .. } => "",
            },
            Recovery::ClearReboot { uuid, .. } => uuid,
        }
    }
}

/// Rule 4 for one owned instance; `running` is whether its guest runs now.
pub fn decide(instance: &OwnedInstance, running: bool) -> Option<Recovery> {
    let task = instance.task_state.as_deref();
    let uuid = instance.uuid.clone();
    let request_id = instance.request_id.clone();
    let with_build = |make: &dyn Fn(ferrostack_compute::rpc::GuestBuild) -> AgentRequest| {
        match &instance.build {
            Some(build) => Some(Recovery::Request(Box::new(make(build.clone())))),
            None => {
                tracing::warn!(%uuid, ?task, vm = %instance.vm_state, "cannot recover without the build");
                None
            }
        }
    };
    if task == Some(task::DELETING) || instance.vm_state == vm::DELETED {
        return Some(Recovery::Request(Box::new(AgentRequest::Delete {
            uuid,
            request_id,
        })));
    }
    if instance.vm_state == vm::BUILDING {
        return with_build(&|build| AgentRequest::Build {
            build,
            request_id: request_id.clone(),
        });
    }
    match task {
        Some(task::POWERING_OFF) => Some(Recovery::Request(Box::new(AgentRequest::Stop {
            uuid,
            request_id,
        }))),
        Some(task::POWERING_ON) => with_build(&|build| AgentRequest::Start {
            build,
            request_id: request_id.clone(),
        }),
        Some(reboot) if task::is_reboot(reboot) => match running {
            true => Some(Recovery::ClearReboot {
                uuid,
                from: reboot.to_string(),
            }),
            false => with_build(&|build| AgentRequest::Reboot {
                build,
                hard: true,
                request_id: request_id.clone(),
            }),
        },
        _ => None,
    }
}

fn normal(uuid: &str) -> String {
    uuid::Uuid::parse_str(uuid).map_or_else(|_| uuid.to_string(), |u| u.hyphenated().to_string())
}

/// Applies rules 1–3 and returns the recoveries of rule 4. Only a hypervisor that cannot list
/// its guests (or an unreadable instances path) is fatal; a guest or directory that cannot be
/// removed is logged and left for the next start.
pub(crate) async fn reconcile(
    guests: &Guests,
    owned: &[OwnedInstance],
) -> anyhow::Result<Vec<Recovery>> {
    let instances_path = &guests.config.instances_path;
    let owned_uuids: BTreeSet<String> = owned.iter().map(|i| normal(&i.uuid)).collect();
    let listed = guests.driver.list().await?;
    let mut running = BTreeSet::new();
    for guest in &listed {
        let uuid = normal(&guest.uuid);
        if guest.state == ferrostack_virt::PowerState::Running {
            running.insert(uuid.clone());
        }
        if owned_uuids.contains(&uuid) {
            continue;
        }
        if InstanceFiles::new(instances_path, &uuid).exists() {
            tracing::warn!(%uuid, domain = %guest.name, "removing a guest no instance owns");
            if let Err(e) = guests.remove(&uuid).await {
                tracing::error!(%uuid, "could not remove the orphan guest: {e}");
            }
        } else {
            tracing::info!(%uuid, domain = %guest.name, "a guest not made by this agent: left alone");
        }
    }
    for dir in instance_dirs(instances_path)? {
        if !owned_uuids.contains(&normal(&dir)) {
            tracing::warn!(uuid = %dir, "removing an instance directory no instance owns");
            if let Err(e) = guests.remove(&dir).await {
                tracing::error!(uuid = %dir, "could not remove the orphan directory: {e}");
            }
        }
    }
    match guests.cache.remove_leftovers().await {
        Ok(0) => {}
        Ok(leftovers) => tracing::info!(leftovers, "removed temporary files of the image cache"),
        Err(e) => tracing::error!("could not sweep the image cache: {e}"),
    }
    Ok(owned
        .iter()
        .filter_map(|instance| decide(instance, running.contains(&normal(&instance.uuid))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_compute::rpc::{GuestBuild, ImageRef};

    fn owned(vm_state: &str, task: Option<&str>, build: bool) -> OwnedInstance {
        OwnedInstance {
            uuid: "6f1b8a52-0000-4000-8000-000000000001".into(),
            vm_state: vm_state.into(),
            task_state: task.map(str::to_string),
            build: build.then(|| GuestBuild {
                uuid: "6f1b8a52-0000-4000-8000-000000000001".into(),
                domain_name: "instance-00000001".into(),
                display_name: "x".into(),
                vcpus: 1,
                memory_mb: 128,
                root_gb: 0,
                image: ImageRef {
                    id: "i".into(),
                    disk_format: "qcow2".into(),
                    size: None,
                },
                kernel: None,
                ramdisk: None,
                kernel_cmdline: None,
                config_drive: None,
                interfaces: Vec::new(),
                volumes: Vec::new(),
            }),
            request_id: "req-1".into(),
        }
    }

    fn op(r: Option<Recovery>) -> &'static str {
        let request = match r {
            None => return "none",
            Some(Recovery::ClearReboot { .. }) => return "clear",
            Some(Recovery::Request(request)) => request,
        };
        match *request {
            AgentRequest::Build { .. } => "build",
            AgentRequest::Delete { .. } => "delete",
            AgentRequest::Stop { .. } => "stop",
            AgentRequest::Start { .. } => "start",
            AgentRequest::Reboot { hard: true, .. } => "hard-reboot",
            _ => "other",
        }
    }

    #[test]
    fn each_interrupted_task_is_finished() {
        assert_eq!(
            op(decide(&owned("active", Some("deleting"), true), true)),
            "delete"
        );
        assert_eq!(op(decide(&owned("deleted", None, false), false)), "delete");
        assert_eq!(
            op(decide(&owned("building", Some("deleting"), true), false)),
            "delete"
        );
        assert_eq!(
            op(decide(&owned("building", Some("spawning"), true), false)),
            "build"
        );
        assert_eq!(op(decide(&owned("building", None, true), true)), "build");
        assert_eq!(op(decide(&owned("building", None, false), true)), "none");
        assert_eq!(
            op(decide(&owned("active", Some("powering-off"), true), true)),
            "stop"
        );
        assert_eq!(
            op(decide(&owned("stopped", Some("powering-on"), true), false)),
            "start"
        );
        assert_eq!(
            op(decide(&owned("active", Some("reboot_started"), true), true)),
            "clear"
        );
        assert_eq!(
            op(decide(&owned("active", Some("rebooting"), true), false)),
            "hard-reboot"
        );
        assert_eq!(
            op(decide(
                &owned("active", Some("reboot_pending_hard"), true),
                false
            )),
            "hard-reboot"
        );
        assert_eq!(op(decide(&owned("active", None, true), false)), "none");
        assert_eq!(op(decide(&owned("stopped", None, true), false)), "none");
        assert_eq!(op(decide(&owned("error", None, true), false)), "none");
    }
}
