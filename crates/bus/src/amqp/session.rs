//! One AMQP connection and what lives on it: the direct reply-to consumer of RPC calls, a
//! pool of publishing channels (publisher confirms on), the fanout exchanges already
//! declared, and the calls waiting for a reply. A lost connection ends its session; the
//! supervisor opens the next one.

use super::target::Target;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// RabbitMQ's pseudo-queue for replies to the channel that publishes a call.
pub(crate) const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// The AMQP `type` of a reply that says the consumer dropped the call unanswered.
pub(crate) const NO_REPLY_TYPE: &str = "ferrostack.no-reply";
/// How long opening a connection (TCP, TLS, AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one exchange with the broker (a declare, a publish and its confirm) may take: a
/// broker that is blocked or stalled makes the operation fail rather than hang.
pub(crate) const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle publishing channels kept per connection.
const POOLED_CHANNELS: usize = 16;
/// RabbitMQ's reply code for a resource that does not exist (passive declares).
const NOT_FOUND: u16 = 404;

/// What the consumer of a call answered.
pub(crate) enum RpcReply {
    Payload(Vec<u8>),
    NoReply,
}

/// How a publish to a queue ended.
pub(crate) enum Published {
    Accepted,
    /// The broker returned the message: no queue of that name.
    Unroutable,
}

/// One live connection.
pub(crate) struct Session {
    connection: Connection,
    /// Publishes calls; consumes their replies.
    rpc: Channel,
    idle: Mutex<Vec<Channel>>,
    exchanges: Mutex<HashSet<String>>,
    pending: Mutex<HashMap<String, oneshot::Sender<RpcReply>>>,
    /// Signalled when the reply consumer ends: the connection is gone.
    pub(crate) lost: Notify,
}

pub(crate) type LapinResult<T> = Result<T, lapin::Error>;

impl Session {
    /// Connects and starts consuming replies.
    pub(crate) async fn open(target: &Target, name: &str) -> LapinResult<Arc<Session>> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connect = Connection::connect_uri(target.uri.clone(), properties);
        let connection = within(CONNECT_TIMEOUT, "connecting", connect).await?;
        let rpc = connection.create_channel().await?;
        let mut replies = rpc
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let session = Arc::new(Session {
            connection,
            rpc,
            idle: Mutex::default(),
            exchanges: Mutex::default(),
            pending: Mutex::default(),
            lost: Notify::new(),
        });
        let weak = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = replies.next().await {
                match weak.upgrade() {
                    Some(session) => session.resolve(delivery),
                    None => return,
                }
            }
            if let Some(session) = weak.upgrade() {
                session.lost.notify_one();
            }
        });
        Ok(session)
    }

    /// Whether the connection is still up.
    pub(crate) fn connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Closes the connection (the bus is shutting down).
    pub(crate) async fn close(&self) {
        let _ = self.connection.close(200, "bus closed".into()).await;
    }

    /// A new channel on this connection (for a consumer of its own).
    pub(crate) async fn create_channel(&self) -> LapinResult<Channel> {
        self.connection.create_channel().await
    }

    /// An idle publishing channel, or a new one in confirm mode.
    async fn channel(&self) -> LapinResult<Channel> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(channel) = idle.filter(|c| c.status().connected()) {
            return Ok(channel);
        }
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(channel)
    }

    fn give_back(&self, channel: Channel) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if channel.status().connected() && idle.len() < POOLED_CHANNELS {
            idle.push(channel);
        }
    }

    /// The number of consumers of `queue`; `None` when the queue does not exist.
    pub(crate) async fn consumer_count(&self, queue: &str) -> LapinResult<Option<u32>> {
        let channel = self.channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declare = channel.queue_declare(queue.into(), passive, FieldTable::default());
        match within(ROUND_TRIP_TIMEOUT, "looking the queue up", declare).await {
            Ok(found) => {
                self.give_back(channel);
                Ok(Some(found.consumer_count()))
            }
            // The broker closed that channel along with the answer.
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Publishes and waits for the broker's confirm. `mandatory`: a message no queue takes
    /// comes back as [`Published::Unroutable`].
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> LapinResult<Published> {
        let channel = self.channel().await?;
        let options = BasicPublishOptions {
            mandatory,
            ..Default::default()
        };
        let publish = async {
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    options,
                    payload,
                    properties,
                )
                .await?
                .await
        };
        let confirm = within(ROUND_TRIP_TIMEOUT, "publishing", publish).await?;
        self.give_back(channel);
        if confirm.is_nack() {
            return Err(lapin::Error::from(std::io::Error::other(
                "the broker refused the message",
            )));
        }
        Ok(match confirm.take_message() {
            Some(_) => Published::Unroutable,
            None => Published::Accepted,
        })
    }

    /// Declares the fanout exchange `name` once per connection.
    pub(crate) async fn declare_fanout(&self, name: &str) -> LapinResult<()> {
        if self
            .exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
        {
            return Ok(());
        }
        let channel = self.channel().await?;
        let declare = channel.exchange_declare(
            name.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        );
        within(ROUND_TRIP_TIMEOUT, "declaring the exchange", declare).await?;
        self.give_back(channel);
        self.exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        Ok(())
    }

    /// Registers a call waiting for the reply with `correlation_id`.
    pub(crate) fn expect_reply(&self, correlation_id: &str) -> oneshot::Receiver<RpcReply> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(correlation_id.to_string(), tx);
        rx
    }

    /// Forgets a call (it timed out or its caller went away).
    pub(crate) fn forget_reply(&self, correlation_id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(correlation_id);
    }

    /// Fails every waiting call: their replies can no longer arrive on this connection.
    pub(crate) fn fail_pending(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Publishes a call on the channel that consumes the replies (direct reply-to requires
    /// it). No publisher confirm: the reply, or the timeout, tells the outcome.
    pub(crate) async fn publish_call(
        &self,
        queue: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> LapinResult<()> {
        self.rpc
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                properties.with_reply_to(DIRECT_REPLY_TO.into()),
            )
            .await?;
        Ok(())
    }

    fn resolve(&self, delivery: lapin::message::Delivery) {
        let Some(id) = delivery.properties.correlation_id() else {
            return;
        };
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id.as_str());
        let Some(waiter) = waiter else {
            tracing::debug!(correlation_id = %id, "reply to a call that is no longer waiting");
            return;
        };
        let no_reply = delivery
            .properties
            .kind()
            .as_ref()
            .is_some_and(|k| k.as_str() == NO_REPLY_TYPE);
        let _ = waiter.send(match no_reply {
            true => RpcReply::NoReply,
            false => RpcReply::Payload(delivery.data),
        });
    }
}

/// `operation`, failed with a timed-out I/O error once `limit` has passed.
pub(crate) async fn within<T>(
    limit: Duration,
    operation: &str,
    future: impl std::future::Future<Output = LapinResult<T>>,
) -> LapinResult<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{operation} took longer than {} s", limit.as_secs()),
        ))),
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == NOT_FOUND)
}
