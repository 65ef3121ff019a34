//! Why an operation on a guest stopped, sorted by what the agent does about it.

use crate::cache::CacheError;
use ferrostack_virt::VirtError;

/// The outcome of a failed step of an operation.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The conductor refused a state change: the instance's task state moved on (another
    /// action, or the server was deleted). The agent stops and undoes what it created.
    #[error("the instance changed meanwhile (task state {task_state:?}, deleted {deleted})")]
    Conflict {
        task_state: Option<String>,
        deleted: bool,
    },
    /// The image is unusable (missing, unsafe, of another format than declared, corrupt):
    /// another host would fail the same way, so a build is not rescheduled.
    #[error("{0:#}")]
    Image(anyhow::Error),
    /// The hypervisor or the host failed: another host might succeed.
    #[error("{0:#}")]
    Host(anyhow::Error),
}

impl OpError {
    /// Whether a failed build should be tried on another host (Nova's `RescheduledException`
    /// versus `BuildAbortException`).
    pub fn reschedule(&self) -> bool {
        matches!(self, OpError::Host(_))
    }
}

impl From<VirtError> for OpError {
    fn from(e: VirtError) -> Self {
        OpError::Host(e.into())
    }
}

impl From<std::io::Error> for OpError {
    fn from(e: std::io::Error) -> Self {
        OpError::Host(e.into())
    }
}

impl From<CacheError> for OpError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Image(_) => OpError::Image(e.into()),
            CacheError::Host(_) => OpError::Host(e.into()),
        }
    }
}
