//! The message bus.
//!
//! Three patterns, as oslo.messaging offers them: **fanout events** ([`MessageBus::publish`] to
//! every subscriber of a topic), **work queues** ([`MessageBus::send`] to one consumer of a queue)
//! and **RPC** ([`MessageBus::call`]: a work-queue message whose consumer replies). Payloads are
//! bytes (services encode JSON), carried unchanged. Code outside this crate depends only on the
//! trait; [`InProcessBus`] is the embedded implementation (everything in one process) and
//! [`AmqpBus`] the distributed one (RabbitMQ, services and agents on many hosts).
//!
//! The two differ only where a network does (each difference is stated on the method):
//! a message accepted by [`MessageBus::send`] outlives its consumer's restart over AMQP, events
//! published while a subscriber reconnects are lost, and every call may fail with
//! [`BusError::Unavailable`] while the broker is unreachable.

pub mod amqp;
mod in_process;

pub use amqp::AmqpBus;
pub use in_process::InProcessBus;

use async_trait::async_trait;
use std::time::Duration;

/// Bus errors.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Nobody consumes the queue (RPC target down).
    #[error("no consumer for queue {0}")]
    NoConsumer(String),
    /// The RPC reply did not arrive in time.
    #[error("timed out waiting for a reply on {0}")]
    Timeout(String),
    /// The consumer dropped the request without replying.
    #[error("the consumer of {0} did not reply")]
    NoReply(String),
    /// The bus is closed.
    #[error("bus closed")]
    Closed,
    /// The broker cannot be reached now (the connection is being re-established in the
    /// background), or it refused the operation.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// The bus configuration is unusable (e.g. a malformed URL).
    #[error("invalid message bus configuration: {0}")]
    Invalid(String),
}

/// A message taken from a queue; reply to it if it was an RPC call.
pub struct Delivery {
    /// The payload.
    pub payload: Vec<u8>,
    reply: Option<Box<dyn Replier>>,
}

impl Delivery {
    /// A delivery with an optional reply path (for bus implementations).
    pub fn new(payload: Vec<u8>, reply: Option<Box<dyn Replier>>) -> Self {
        Delivery { payload, reply }
    }

    /// Whether the sender waits for a reply.
    pub fn expects_reply(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers an RPC call (no-op for plain sends). A reply that arrives after the caller's
    /// timeout is dropped. Dropping a call's delivery without replying makes the caller's
    /// [`MessageBus::call`] fail with [`BusError::NoReply`].
    pub async fn reply(mut self, payload: Vec<u8>) -> Result<(), BusError> {
        match self.reply.take() {
            Some(replier) => replier.reply(payload).await,
            None => Ok(()),
        }
    }
}

/// Sends a reply back to an RPC caller (implemented by each bus). Dropped unanswered, it
/// tells the caller that no reply will come.
#[async_trait]
pub trait Replier: Send {
    /// Delivers the reply.
    async fn reply(self: Box<Self>, payload: Vec<u8>) -> Result<(), BusError>;
}

/// Receives fanout events of one topic.
#[async_trait]
pub trait EventStream: Send {
    /// The next event; `None` when the bus closed. Events a slow subscriber missed, or that
    /// were published while its connection was being re-established, are skipped
    /// (subscribers must tolerate loss and re-read the store).
    async fn next(&mut self) -> Option<Vec<u8>>;
}

/// Receives messages of one work queue.
#[async_trait]
pub trait QueueConsumer: Send {
    /// The next delivery; `None` when the bus closed. A delivery handed out is taken for
    /// good (at most once); the ones not handed out yet go back to the queue if this consumer
    /// goes away. Over AMQP a lost connection is re-established behind this call, which
    /// then carries on with the queue's next message.
    async fn next(&mut self) -> Option<Delivery>;
}

/// The message bus seen by services and agents.
#[async_trait]
pub trait MessageBus: Send + Sync {
    /// Sends an event to every current subscriber of `topic` (none is not an error).
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), BusError>;
    /// Subscribes to the events of `topic`: every event published after this returns
    /// reaches the stream (see [`EventStream::next`] for what may be skipped).
    async fn subscribe(&self, topic: &str) -> Result<Box<dyn EventStream>, BusError>;
    /// Queues a message for one consumer of `queue`; [`BusError::NoConsumer`] when nobody
    /// consumes it now (its host is down). A message accepted waits in the queue until a
    /// consumer takes it: in process, for the life of the process; over AMQP in a durable
    /// queue that outlives its consumers and broker restarts, so a consumer that restarts
    /// finds the messages sent while it was going down. Consumers must therefore tolerate a
    /// late message (they compare-and-swap state, as the compute agent does).
    async fn send(&self, queue: &str, payload: Vec<u8>) -> Result<(), BusError>;
    /// Consumes `queue` (several consumers share the messages, each message goes to one).
    async fn consume(&self, queue: &str) -> Result<Box<dyn QueueConsumer>, BusError>;
    /// Sends to `queue` and waits up to `timeout` for the consumer's reply;
    /// [`BusError::NoConsumer`] when nobody consumes it now. Over AMQP the request expires
    /// after `timeout`, so calls to a consumer that died meanwhile do not pile up for it.
    async fn call(
        &self,
        queue: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError>;
}
