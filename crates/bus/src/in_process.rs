//! The embedded bus: queues and topics as in-memory channels of one process.

use crate::{BusError, Delivery, EventStream, MessageBus, QueueConsumer, Replier};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

type QueueItem = (Vec<u8>, Option<oneshot::Sender<Vec<u8>>>);

struct Queue {
    tx: mpsc::UnboundedSender<QueueItem>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<QueueItem>>>,
    consumers: usize,
}

/// The embedded bus: everything in one process.
#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
    queues: Mutex<HashMap<String, Queue>>,
}

impl InProcessBus {
    /// A new, empty bus.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn topic(&self, topic: &str) -> broadcast::Sender<Vec<u8>> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }

    fn queue_sender(&self, queue: &str) -> Result<mpsc::UnboundedSender<QueueItem>, BusError> {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        match queues.get(queue) {
            Some(q) if q.consumers > 0 => Ok(q.tx.clone()),
            _ => Err(BusError::NoConsumer(queue.to_string())),
        }
    }
}

struct InProcessEvents {
    rx: broadcast::Receiver<Vec<u8>>,
}

#[async_trait]
impl EventStream for InProcessEvents {
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.rx.recv().await {
                Ok(payload) => return Some(payload),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event subscriber lagged; events skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

struct InProcessConsumer {
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<QueueItem>>>,
}

struct OneshotReplier(oneshot::Sender<Vec<u8>>);

#[async_trait]
impl Replier for OneshotReplier {
    async fn reply(self: Box<Self>, payload: Vec<u8>) -> Result<(), BusError> {
        self.0.send(payload).map_err(|_| BusError::Closed)
    }
}

#[async_trait]
impl QueueConsumer for InProcessConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        let (payload, reply) = self.rx.lock().await.recv().await?;
        let reply = reply.map(|tx| Box::new(OneshotReplier(tx)) as Box<dyn Replier>);
        Some(Delivery::new(payload, reply))
    }
}

#[async_trait]
impl MessageBus for InProcessBus {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), BusError> {
        // No subscriber is not an error for fanout: the event simply has no audience.
        let _ = self.topic(topic).send(payload);
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Box<dyn EventStream>, BusError> {
        Ok(Box::new(InProcessEvents {
            rx: self.topic(topic).subscribe(),
        }))
    }

    async fn send(&self, queue: &str, payload: Vec<u8>) -> Result<(), BusError> {
        self.queue_sender(queue)?
            .send((payload, None))
            .map_err(|_| BusError::Closed)
    }

    async fn consume(&self, queue: &str) -> Result<Box<dyn QueueConsumer>, BusError> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let q = queues.entry(queue.to_string()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            Queue {
                tx,
                rx: Arc::new(tokio::sync::Mutex::new(rx)),
                consumers: 0,
            }
        });
        q.consumers += 1;
        Ok(Box::new(InProcessConsumer { rx: q.rx.clone() }))
    }

    async fn call(
        &self,
        queue: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, BusError> {
        let (tx, rx) = oneshot::channel();
        self.queue_sender(queue)?
            .send((payload, Some(tx)))
            .map_err(|_| BusError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::NoReply(queue.to_string())),
            Err(_) => Err(BusError::Timeout(queue.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fanout_reaches_every_subscriber() {
        let bus = InProcessBus::new();
        let mut a = bus.subscribe("t").await.unwrap();
        let mut b = bus.subscribe("t").await.unwrap();
        bus.publish("t", b"hello".to_vec()).await.unwrap();
        assert_eq!(a.next().await.unwrap(), b"hello");
        assert_eq!(b.next().await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn queue_delivers_each_message_once_and_rpc_replies() {
        let bus = InProcessBus::new();
        assert!(matches!(
            bus.send("q", vec![1]).await,
            Err(BusError::NoConsumer(_))
        ));
        let mut consumer = bus.consume("q").await.unwrap();
        let server = tokio::spawn(async move {
            let plain = consumer.next().await.unwrap();
            assert!(!plain.expects_reply());
            let call = consumer.next().await.unwrap();
            let mut answer = call.payload.clone();
            answer.reverse();
            call.reply(answer).await.unwrap();
            plain.payload
        });
        bus.send("q", vec![9]).await.unwrap();
        let reply = bus
            .call("q", vec![1, 2, 3], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply, vec![3, 2, 1]);
        assert_eq!(server.await.unwrap(), vec![9]);
    }

    #[tokio::test]
    async fn rpc_without_reply_times_out() {
        let bus = InProcessBus::new();
        let _consumer = bus.consume("slow").await.unwrap();
        let e = bus
            .call("slow", vec![], Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(e, BusError::Timeout(_)));
    }
}
