//! The agent's errors: each names the command or object that failed and why.

use crate::validate::InvalidState;
use std::io;

/// Why a step of the convergence failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command ran and failed; `stderr` is what it said.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A command could not be started (usually: the tool is not installed).
    #[error("cannot run `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
    /// The kernel cannot create 802.1Q sub-interfaces (no `8021q` module).
    #[error(
        "VLAN network {network} cannot be wired: this kernel has no 802.1Q VLAN support \
         (`{command}` said: {stderr}); load the 8021q module or use vxlan/flat networks"
    )]
    VlanUnsupported {
        network: String,
        command: String,
        stderr: String,
    },
    /// The desired state is inconsistent.
    #[error(transparent)]
    Invalid(#[from] InvalidState),
    /// The agent's configuration cannot serve the desired state.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// A tool's output could not be understood.
    #[error("unexpected output of `{command}`: {detail}")]
    Parse { command: String, detail: String },
}

impl Error {
    /// Whether a command failed because its device no longer exists (gone with its veth peer
    /// or namespace earlier in the same pass).
    pub fn is_missing_device(&self) -> bool {
        // `Cannot find device` when ip(8) looks the name up, `No such device` when the kernel
        // removed it between that lookup and the request (e.g. with its namespace).
        matches!(self, Error::Command { stderr, .. }
            if stderr.contains("Cannot find device") || stderr.contains("No such device"))
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> Error {
        Error::Command {
            command: "ip link del dev tap0".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn a_device_gone_before_or_during_the_request_is_missing() {
        assert!(failed("Cannot find device \"tap0\"").is_missing_device());
        assert!(failed("RTNETLINK answers: No such device").is_missing_device());
        assert!(!failed("RTNETLINK answers: Operation not permitted").is_missing_device());
    }
}
