//! The RabbitMQ bus (AMQP 0-9-1, through lapin): services and agents on many hosts.
//!
//! Mapping: a topic is a durable fanout exchange `ferrostack.events.<topic>` with one
//! private auto-deleted queue per subscriber; a work queue is a durable queue of the same
//! name shared by its consumers, fed persistent messages; a call is a message on the work
//! queue with RabbitMQ's direct reply-to address, a correlation id and an expiration equal
//! to the caller's timeout. `send` and `call` look the queue up first (a passive declare)
//! and answer [`BusError::NoConsumer`] when nobody consumes it.
//!
//! One connection per bus, kept by a supervisor: a lost connection (broker restart, network
//! drop, `rabbitmqctl close_connection`) is re-established with exponential back-off
//! (0.1 s to 5 s), consumers and subscriptions attach again by themselves, and operations
//! attempted meanwhile fail with [`BusError::Unavailable`]. Logs and errors name the broker
//! without its password.

mod attach;
mod reply;
mod session;
mod supervisor;
mod target;

use crate::{BusError, Delivery, EventStream, MessageBus, QueueConsumer, Replier};
use async_trait::async_trait;
use attach::{Attached, Attachment};
use lapin::BasicProperties;
use reply::AmqpReplier;
use session::{Published, RpcReply, Session};
use std::sync::Arc;
use std::time::Duration;
use supervisor::Sessions;
use tokio::sync::watch;

/// AMQP delivery mode of messages the broker keeps on disk.
const PERSISTENT: u8 = 2;

/// The distributed bus.
pub struct AmqpBus {
    sessions: Sessions,
    described: String,
    /// Dropped with the bus: the supervisor then closes the connection.
    _stop: watch::Sender<()>,
}

impl AmqpBus {
    /// Connects to `url` (`amqp://user:password@host:port/vhost`, or `amqps://`; the vhost
    /// `/` is written `%2f`). `connection_name` is shown by the broker's tools. Fails when
    /// the first connection fails; later losses are repaired in the background.
    pub async fn connect(url: &str, connection_name: &str) -> Result<Arc<AmqpBus>, BusError> {
        let target = target::Target::parse(url)?;
        let described = target.described.clone();
        let (stop, stopped) = watch::channel(());
        let (sessions, first) = supervisor::start(target, connection_name.to_string(), stopped);
        first.await.map_err(|_| BusError::Closed)??;
        Ok(Arc::new(AmqpBus {
            sessions,
            described,
            _stop: stop,
        }))
    }

    /// The broker, as `scheme://user@host:port/vhost` (no password).
    pub fn described(&self) -> &str {
        &self.described
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.sessions.current().is_ok()
    }

    async fn require_consumer(&self, session: &Session, queue: &str) -> Result<(), BusError> {
        match session.consumer_count(queue).await.map_err(unavailable)? {
            Some(n) if n > 0 => Ok(()),
            _ => Err(BusError::NoConsumer(queue.to_string())),
        }
    }
}

fn unavailable(e: lapin::Error) -> BusError {
    BusError::Unavailable(e.to_string())
}

fn topic_exchange(topic: &str) -> String {
    format!("ferrostack.events.{topic}")
}

struct AmqpConsumer {
    attached: Attached,
    sessions: Sessions,
}

#[async_trait]
impl QueueConsumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        let delivery = self.attached.next().await?;
        let reply = AmqpReplier::for_delivery(&self.sessions, &delivery)
            .map(|r| Box::new(r) as Box<dyn Replier>);
        Some(Delivery::new(delivery.data, reply))
    }
}

struct AmqpEvents(Attached);

#[async_trait]
impl EventStream for AmqpEvents {
    async fn next(&mut self) -> Option<Vec<u8>> {
        Some(self.0.next().await?.data)
    }
}

/// Forgets a call's reply slot however the call ends.
struct Waiting<'a> {
    session: &'a Session,
    id: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.session.forget_reply(self.id);
    }
}

#[async_trait]
impl MessageBus for AmqpBus {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let session = self.sessions.current()?;
        let exchange = topic_exchange(topic);
        session
            .declare_fanout(&exchange)
            .await
            .map_err(unavailable)?;
        session
            .publish(&exchange, "", &payload, BasicProperties::default(), false)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Box<dyn EventStream>, BusError> {
        let exchange = topic_exchange(topic);
        let attached =
            Attached::start(self.sessions.clone(), Attachment::Subscription { exchange }).await?;
        Ok(Box::new(AmqpEvents(attached)))
    }

    async fn send(&self, queue: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let session = self.sessions.current()?;
        self.require_consumer(&session, queue).await?;
        let persistent = BasicProperties::default().with_delivery_mode(PERSISTENT);
        match session
            .publish("", queue, &payload, persistent, true)
            .await
            .map_err(unavailable)?
        {
            Published::Accepted => Ok(()),
            // The queue was deleted after the look-up.
            Published::Unroutable => Err(BusError::NoConsumer(queue.to_string())),
        }
    }

    async fn consume(&self, queue: &str) -> Result<Box<dyn QueueConsumer>, BusError> {
        let attached = Attached::start(
            self.sessions.clone(),
            Attachment::WorkQueue(queue.to_string()),
        )
        .await?;
        Ok(Box::new(AmqpConsumer {
            attached,
            sessions: self.sessions.clone(),
        }))
    }

    async fn call(
        &self,
        queue: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let session = self.sessions.current()?;
        self.require_consumer(&session, queue).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reply = session.expect_reply(&id);
        let _waiting = Waiting {
            session: &session,
            id: &id,
        };
        let expiration = timeout.as_millis().max(1).to_string();
        let properties = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_expiration(expiration.into());
        session
            .publish_call(queue, &payload, properties)
            .await
            .map_err(unavailable)?;
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(RpcReply::Payload(payload))) => Ok(payload),
            Ok(Ok(RpcReply::NoReply)) => Err(BusError::NoReply(queue.to_string())),
            Ok(Err(_)) => Err(BusError::Unavailable(format!(
                "the connection was lost while waiting for a reply on {queue}"
            ))),
            Err(_) => Err(BusError::Timeout(queue.to_string())),
        }
    }
}
