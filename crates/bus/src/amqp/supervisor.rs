//! Keeps one connection open: connects, publishes the live [`Session`] to everyone who uses
//! the bus, notices its loss (the reply consumer ended, or the connection's status turned),
//! and reconnects with exponential back-off until the bus is dropped.

use super::session::Session;
use super::target::Target;
use crate::BusError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// First and longest wait between connection attempts (also used by resuming consumers).
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(100);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often a live connection's status is looked at, besides the reply consumer's end.
const STATUS_POLL: Duration = Duration::from_secs(1);

/// The current session, as every part of the bus sees it.
#[derive(Clone)]
pub(crate) struct Sessions(watch::Receiver<Option<Arc<Session>>>);

impl Sessions {
    /// The live session, or [`BusError::Unavailable`] while disconnected.
    pub(crate) fn current(&self) -> Result<Arc<Session>, BusError> {
        match &*self.0.borrow() {
            Some(session) if session.connected() => Ok(session.clone()),
            _ => Err(BusError::Unavailable(
                "not connected to the broker (reconnecting)".into(),
            )),
        }
    }

    /// Waits for a live session; `None` once the bus is closed.
    pub(crate) async fn next_connected(&mut self) -> Option<Arc<Session>> {
        loop {
            if let Some(session) = self.0.borrow_and_update().clone()
                && session.connected()
            {
                return Some(session);
            }
            self.0.changed().await.ok()?;
        }
    }
}

/// Starts the supervisor. The first connection's outcome is reported on the returned
/// receiver (and a failed first connection ends the supervisor); `stop` dropped closes the
/// bus.
pub(crate) fn start(
    target: Target,
    name: String,
    stop: watch::Receiver<()>,
) -> (Sessions, oneshot::Receiver<Result<(), BusError>>) {
    let (sessions_tx, sessions_rx) = watch::channel(None);
    let (first_tx, first_rx) = oneshot::channel();
    tokio::spawn(supervise(target, name, sessions_tx, first_tx, stop));
    (Sessions(sessions_rx), first_rx)
}

async fn supervise(
    target: Target,
    name: String,
    sessions: watch::Sender<Option<Arc<Session>>>,
    first: oneshot::Sender<Result<(), BusError>>,
    mut stop: watch::Receiver<()>,
) {
    let mut first = Some(first);
    let mut delay = RETRY_MIN;
    let mut attempts = 0u32;
    loop {
        match Session::open(&target, &name).await {
            Ok(session) => {
                sessions.send_replace(Some(session.clone()));
                match first.take() {
                    Some(first) => {
                        tracing::info!(bus = %target.described, "connected to the message bus");
                        let _ = first.send(Ok(()));
                    }
                    None => tracing::info!(
                        bus = %target.described,
                        attempts,
                        "reconnected to the message bus"
                    ),
                }
                delay = RETRY_MIN;
                attempts = 0;
                let stopped = tokio::select! {
                    _ = until_lost(&session) => false,
                    _ = stop.changed() => true,
                };
                sessions.send_replace(None);
                session.fail_pending();
                if stopped {
                    session.close().await;
                    return;
                }
                tracing::warn!(bus = %target.described, "lost the message bus connection; reconnecting");
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(BusError::Unavailable(format!(
                        "connecting to {}: {e}",
                        target.described
                    ))));
                    return;
                }
                attempts += 1;
                tracing::warn!(
                    bus = %target.described,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot reach the message bus"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn until_lost(session: &Session) {
    let mut poll = tokio::time::interval(STATUS_POLL);
    loop {
        tokio::select! {
            _ = session.lost.notified() => return,
            _ = poll.tick() => if !session.connected() { return },
        }
    }
}
