//! The compute agent: Ferrostack's nova-compute. One runs per hypervisor host, without a
//! database: it takes requests from the conductor on `compute.agent.<host>`
//! ([`ferrostack_compute::rpc`]), drives guests through a [`ferrostack_virt::VirtDriver`], and
//! reports every state change back to the conductor as a compare-and-swap on the instance's
//! task state, so an agent acting on a stale request (the server was deleted meanwhile) learns
//! it and cleans up.
//!
//! Modules, one job each: [`agent`] (start, request loop, heartbeat loop, shutdown),
//! [`manager`] (what each request does), [`transitions`] (every state change asked of the
//! conductor), [`reconcile`] (start-up), [`cache`] (the `_base` image cache), [`files`] (an
//! instance's files), [`images`] and [`token`] (Glance downloads with Keystone tokens),
//! [`console`] (console output), [`host`] (resources), [`serial`] (per-instance ordering),
//! [`config`].
//!
//! # State changes the agent asks for
//!
//! Each row is one `ConductorRequest::Update`, applied by the conductor only when the
//! instance's task state is one of *expected* (None = idle); otherwise it answers
//! `Conflict { task_state, deleted }`.
//!
//! | step | expected task states | vm state | task state | power | launched |
//! |---|---|---|---|---|---|
//! | build starts | None, `scheduling`, `spawning` | — | `spawning` | — | |
//! | build done | `spawning` | `active` | None | 1 | yes |
//! | stop done | `powering-off` (and None if the guest was already down) | `stopped` | None | 4 (measured) | |
//! | start done | `powering-on` | `active` | None | 1 | |
//! | stop/start failed | `powering-off` / `powering-on` | — (kept) | None | measured | |
//! | soft reboot starts | `rebooting`, `reboot_pending`, `reboot_started` | — | `reboot_started` | — | |
//! | hard reboot starts | the three above and `rebooting_hard`, `reboot_pending_hard`, `reboot_started_hard` | — | `reboot_started_hard` | — | |
//! | reboot done | `reboot_started` / `reboot_started_hard` | `active` (`error` if it failed and the guest is down) | None | measured | |
//! | start-up: interrupted reboot, guest running | the task seen at start-up | `active` | None | 1 | |
//!
//! "—" leaves the field unchanged. The API (conductor) sets the task states the agent expects:
//! `scheduling` or None when it casts a build (Ferrostack's conductor may clear `scheduling`
//! when the host claim succeeds, as Nova's compute does first), `powering-off`, `powering-on`,
//! `rebooting`/`rebooting_hard` and `deleting`.
//!
//! Calls answered at once, never queued behind a build: `ConsoleOutput`, `VncConsole` (the
//! host's `vnc_server_proxyclient_address` and the port libvirt assigned, read from the live
//! domain) and `Ping`.
//!
//! Other messages: `BuildFailed { reschedule }` after a failed build (the agent has removed the
//! domain and the instance directory; `reschedule` is false when the image is the problem),
//! `Deleted` once a deleted instance's guest and files are gone (after a `Delete`, or when any
//! update answers `Conflict { deleted: true }`), `Event` for each action
//! (`compute__do_build_and_run_instance`, `compute_terminate_instance`,
//! `compute_stop_instance`, `compute_start_instance`, `compute_reboot_instance`; times as
//! `YYYY-MM-DDTHH:MM:SS.ffffff`), `Heartbeat` every interval and `HostInstances` at start-up.
//!
//! A conflict on a build (the server was deleted, or another action took over) stops it: the
//! domain and the instance directory are removed, and `Deleted` is sent if it was deleted.
//!
//! # Host layout
//!
//! `<instances_path>/compute_id` (the node uuid), `_base/<sha1(image id)>` (raw images,
//! kernels and ramdisks), and per instance `<uuid>/{disk, disk.config, console.log, kernel,
//! ramdisk}` ([`files`]).

pub mod agent;
pub mod cache;
mod conductor;
pub mod config;
pub mod console;
pub mod error;
pub mod files;
mod guest;
mod heartbeat;
pub mod host;
pub mod images;
pub mod manager;
pub mod reconcile;
pub mod serial;
pub mod token;
pub mod transitions;

pub use agent::{Agent, AgentHandle};
pub use cache::{CacheError, CachedImage, ImageCache, ImageKind};
pub use conductor::event_time;
pub use config::AgentConfig;
pub use error::OpError;
pub use images::{GlanceImageSource, ImageNotFound, ImageSource};
pub use token::{PasswordTokenSource, TokenSource};
