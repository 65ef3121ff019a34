//! Consumers that outlive connections: a task per work-queue consumer or event subscription
//! attaches it to the live session (declare, bind, consume), forwards what arrives, and
//! attaches it again after a lost connection. Messages are acknowledged when handed to the
//! caller, so the ones still buffered when a connection drops are delivered again.

use super::session::{LapinResult, ROUND_TRIP_TIMEOUT, Session, within};
use super::supervisor::{RETRY_MAX, RETRY_MIN, Sessions};
use crate::BusError;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Unacknowledged messages a work-queue consumer holds at most.
const QUEUE_PREFETCH: u16 = 32;
/// Events a subscriber's queue holds at most; the oldest are dropped beyond (a lagging
/// subscriber skips events, as on the in-process bus).
const SUBSCRIPTION_MAX_LENGTH: i32 = 10_000;
const SUBSCRIPTION_PREFETCH: u16 = 256;

/// What is attached, and how.
#[derive(Clone)]
pub(crate) enum Attachment {
    /// A durable queue shared by its consumers.
    WorkQueue(String),
    /// A private, auto-deleted queue bound to the topic's fanout exchange.
    Subscription { exchange: String },
}

impl Attachment {
    fn describe(&self) -> &str {
        match self {
            Attachment::WorkQueue(queue) => queue,
            Attachment::Subscription { exchange } => exchange,
        }
    }

    /// Declares (and binds) the queue and starts consuming it on a channel of its own.
    async fn attach(&self, session: &Session) -> LapinResult<(Channel, Consumer)> {
        within(
            ROUND_TRIP_TIMEOUT,
            "attaching a consumer",
            self.declare_and_consume(session),
        )
        .await
    }

    async fn declare_and_consume(&self, session: &Session) -> LapinResult<(Channel, Consumer)> {
        let channel = session.create_channel().await?;
        let queue = match self {
            Attachment::WorkQueue(queue) => {
                channel
                    .basic_qos(QUEUE_PREFETCH, BasicQosOptions::default())
                    .await?;
                let durable = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .queue_declare(queue.as_str().into(), durable, FieldTable::default())
                    .await?;
                queue.clone()
            }
            Attachment::Subscription { exchange } => {
                session.declare_fanout(exchange).await?;
                channel
                    .basic_qos(SUBSCRIPTION_PREFETCH, BasicQosOptions::default())
                    .await?;
                let mut arguments = FieldTable::default();
                arguments.insert(
                    "x-max-length".into(),
                    AMQPValue::LongInt(SUBSCRIPTION_MAX_LENGTH),
                );
                let private = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                };
                let declared = channel.queue_declare("".into(), private, arguments).await?;
                let name = declared.name().clone();
                channel
                    .queue_bind(
                        name.clone(),
                        exchange.as_str().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                name.to_string()
            }
        };
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    }
}

/// The caller's end: deliveries in arrival order, acknowledged as they are taken.
pub(crate) struct Attached {
    deliveries: mpsc::Receiver<lapin::message::Delivery>,
}

impl Attached {
    /// Attaches on the live session (an error if there is none or the broker refuses) and
    /// keeps it attached until the returned value is dropped or the bus closes.
    pub(crate) async fn start(
        sessions: Sessions,
        attachment: Attachment,
    ) -> Result<Attached, BusError> {
        let session = sessions.current()?;
        let (channel, consumer) = attachment.attach(&session).await.map_err(|e| {
            BusError::Unavailable(format!("consuming {}: {e}", attachment.describe()))
        })?;
        let (tx, deliveries) = mpsc::channel(1);
        tokio::spawn(keep_attached(sessions, attachment, channel, consumer, tx));
        Ok(Attached { deliveries })
    }

    /// The next delivery, acknowledged; `None` once the bus is closed.
    pub(crate) async fn next(&mut self) -> Option<lapin::message::Delivery> {
        loop {
            let delivery = self.deliveries.recv().await?;
            match delivery.acker.ack(BasicAckOptions::default()).await {
                Ok(true) => return Some(delivery),
                // Its channel is gone: the broker delivers it again.
                _ => tracing::debug!("acknowledging a delivery failed; it will come again"),
            }
        }
    }
}

enum Detached {
    /// The caller dropped its end.
    Dropped,
    /// The channel or connection ended.
    Interrupted(String),
}

async fn keep_attached(
    mut sessions: Sessions,
    attachment: Attachment,
    channel: Channel,
    consumer: Consumer,
    tx: mpsc::Sender<lapin::message::Delivery>,
) {
    let mut attached = Some((channel, consumer));
    let mut delay = RETRY_MIN;
    loop {
        if let Some((channel, consumer)) = attached.take() {
            match forward(consumer, &tx).await {
                Detached::Dropped => {
                    // Unacknowledged messages go back to the queue.
                    let _ = channel.close(200, "consumer dropped".into()).await;
                    return;
                }
                Detached::Interrupted(reason) => tracing::warn!(
                    queue = attachment.describe(),
                    reason,
                    "bus consumer interrupted; attaching again"
                ),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = tx.closed() => return,
        }
        delay = (delay * 2).min(RETRY_MAX);
        let session: Arc<Session> = tokio::select! {
            session = sessions.next_connected() => match session {
                Some(session) => session,
                None => return,
            },
            _ = tx.closed() => return,
        };
        match attachment.attach(&session).await {
            Ok(pair) => {
                tracing::info!(queue = attachment.describe(), "bus consumer attached again");
                delay = RETRY_MIN;
                attached = Some(pair);
            }
            Err(e) => tracing::warn!(
                queue = attachment.describe(),
                error = %e,
                "attaching a bus consumer failed; retrying"
            ),
        }
    }
}

async fn forward(mut consumer: Consumer, tx: &mpsc::Sender<lapin::message::Delivery>) -> Detached {
    loop {
        tokio::select! {
            _ = tx.closed() => return Detached::Dropped,
            item = consumer.next() => match item {
                Some(Ok(delivery)) => {
                    if tx.send(delivery).await.is_err() {
                        return Detached::Dropped;
                    }
                }
                Some(Err(e)) => return Detached::Interrupted(e.to_string()),
                None => return Detached::Interrupted("cancelled by the broker".into()),
            },
        }
    }
}
