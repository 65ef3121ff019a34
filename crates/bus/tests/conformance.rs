//! One conformance suite for every bus: run against [`InProcessBus`] always and against
//! [`AmqpBus`] when `FERROSTACK_TEST_AMQP_URL` is set (e.g.
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Over AMQP the caller and the consumer side use
//! two connections, as two hosts would. Names carry a random suffix: tests share the broker.

use ferrostack_bus::{AmqpBus, BusError, InProcessBus, MessageBus};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bus callers use, and the bus consumers use (the same one in process).
struct Buses {
    caller: Arc<dyn MessageBus>,
    consumer: Arc<dyn MessageBus>,
}

fn name(what: &str) -> String {
    format!("test.{what}.{}", uuid::Uuid::new_v4().simple())
}

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test waits for something that should not happen.
const QUIET: Duration = Duration::from_millis(300);

async fn in_process() -> Option<Buses> {
    let bus = InProcessBus::new();
    Some(Buses {
        caller: bus.clone(),
        consumer: bus,
    })
}

fn amqp_url() -> Option<String> {
    std::env::var("FERROSTACK_TEST_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

async fn amqp() -> Option<Buses> {
    let url = amqp_url()?;
    Some(Buses {
        caller: AmqpBus::connect(&url, "conformance caller").await.unwrap(),
        consumer: AmqpBus::connect(&url, "conformance consumer")
            .await
            .unwrap(),
    })
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod in_process_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::in_process().await.unwrap()).await;
                }
            )*
        }
        mod amqp_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    match super::amqp().await {
                        Some(buses) => super::$test(buses).await,
                        None => eprintln!("FERROSTACK_TEST_AMQP_URL unset: AMQP case skipped"),
                    }
                }
            )*
        }
    };
}

conformance!(
    fanout_reaches_every_subscriber_of_its_topic_only,
    publish_without_subscribers_succeeds,
    send_and_call_without_consumer_are_no_consumer,
    work_queue_delivers_in_order_without_reply_path,
    competing_consumers_share_each_message_once,
    rpc_replies_reach_their_callers,
    rpc_without_reply_times_out,
    rpc_dropped_unanswered_is_no_reply,
    message_not_taken_goes_to_the_next_consumer,
);

async fn fanout_reaches_every_subscriber_of_its_topic_only(b: Buses) {
    let topic = name("topic");
    let mut a = b.consumer.subscribe(&topic).await.unwrap();
    let mut c = b.caller.subscribe(&topic).await.unwrap();
    let mut other = b.consumer.subscribe(&name("other")).await.unwrap();
    for i in 0..3u8 {
        b.caller.publish(&topic, vec![i]).await.unwrap();
    }
    for stream in [&mut a, &mut c] {
        for i in 0..3u8 {
            let event = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap();
            assert_eq!(event, Some(vec![i]));
        }
    }
    assert!(
        tokio::time::timeout(QUIET, other.next()).await.is_err(),
        "an event of another topic arrived"
    );
}

async fn publish_without_subscribers_succeeds(b: Buses) {
    b.caller
        .publish(&name("lonely"), b"x".to_vec())
        .await
        .unwrap();
}

async fn send_and_call_without_consumer_are_no_consumer(b: Buses) {
    let queue = name("nobody");
    let e = b.caller.send(&queue, vec![1]).await.unwrap_err();
    assert!(
        matches!(e, BusError::NoConsumer(ref q) if *q == queue),
        "{e}"
    );
    let e = b
        .caller
        .call(&queue, vec![1], Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, BusError::NoConsumer(_)), "{e}");
}

async fn work_queue_delivers_in_order_without_reply_path(b: Buses) {
    let queue = name("work");
    let mut consumer = b.consumer.consume(&queue).await.unwrap();
    for i in 0..5u8 {
        b.caller.send(&queue, vec![i]).await.unwrap();
    }
    for i in 0..5u8 {
        let d = tokio::time::timeout(PATIENCE, consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.payload, vec![i]);
        assert!(!d.expects_reply());
        d.reply(b"ignored".to_vec()).await.unwrap();
    }
}

async fn competing_consumers_share_each_message_once(b: Buses) {
    let queue = name("shared");
    let mut tasks = Vec::new();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    for id in 0..2u8 {
        let mut consumer = b.consumer.consume(&queue).await.unwrap();
        let seen_tx = seen_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(d) = consumer.next().await {
                seen_tx.send((id, d.payload[0])).unwrap();
                // Busy for a moment, as a real consumer is: the other one takes the next.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    const N: u8 = 20;
    for i in 0..N {
        b.caller.send(&queue, vec![i]).await.unwrap();
    }
    let mut messages = BTreeSet::new();
    let mut by_consumer = [0; 2];
    for _ in 0..N {
        let (id, m) = tokio::time::timeout(PATIENCE, seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(messages.insert(m), "message {m} delivered twice");
        by_consumer[id as usize] += 1;
    }
    assert_eq!(messages.len(), N as usize);
    assert!(
        by_consumer.iter().all(|&n| n > 0),
        "one consumer got everything: {by_consumer:?}"
    );
    assert!(
        tokio::time::timeout(QUIET, seen.recv()).await.is_err(),
        "an extra delivery"
    );
    for t in tasks {
        t.abort();
    }
}

async fn rpc_replies_reach_their_callers(b: Buses) {
    let queue = name("rpc");
    let mut consumer = b.consumer.consume(&queue).await.unwrap();
    let server = tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            assert!(d.expects_reply());
            let mut answer = d.payload.clone();
            answer.reverse();
            d.reply(answer).await.unwrap();
        }
    });
    let calls = (0..10u8).map(|i| {
        let bus = b.caller.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let reply = bus.call(&queue, vec![i, 0, 255], PATIENCE).await.unwrap();
            assert_eq!(reply, vec![255, 0, i]);
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    server.abort();
}

async fn rpc_without_reply_times_out(b: Buses) {
    let queue = name("slow");
    let mut consumer = b.consumer.consume(&queue).await.unwrap();
    let holder = tokio::spawn(async move {
        let held = consumer.next().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
    });
    let started = Instant::now();
    let e = b
        .caller
        .call(&queue, vec![], Duration::from_millis(300))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, BusError::Timeout(_)), "{e}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    holder.abort();
}

async fn rpc_dropped_unanswered_is_no_reply(b: Buses) {
    let queue = name("dropper");
    let mut consumer = b.consumer.consume(&queue).await.unwrap();
    let dropper = tokio::spawn(async move {
        let d = consumer.next().await.unwrap();
        assert!(d.expects_reply());
        drop(d);
        consumer
    });
    let started = Instant::now();
    let e = b.caller.call(&queue, vec![7], PATIENCE).await.unwrap_err();
    assert!(matches!(e, BusError::NoReply(_)), "{e}");
    assert!(started.elapsed() < PATIENCE / 2, "{:?}", started.elapsed());
    dropper.await.unwrap();
}

async fn message_not_taken_goes_to_the_next_consumer(b: Buses) {
    let queue = name("handover");
    let first = b.consumer.consume(&queue).await.unwrap();
    b.caller.send(&queue, b"pending".to_vec()).await.unwrap();
    drop(first);
    let mut second = b.consumer.consume(&queue).await.unwrap();
    let d = tokio::time::timeout(PATIENCE, second.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.payload, b"pending");
}
