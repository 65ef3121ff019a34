//! What only the RabbitMQ bus has to show: expiring calls, consumers that go away, a failed
//! first connection, and recovery from a dropped connection (`rabbitmqctl close_connection`
//! on this test's own connection, found by its name). Skipped unless
//! `FERROSTACK_TEST_AMQP_URL` is set; the connection tests also need `rabbitmqctl`.

use ferrostack_bus::{AmqpBus, BusError, MessageBus};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(15);

fn url() -> Option<String> {
    let url = std::env::var("FERROSTACK_TEST_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("FERROSTACK_TEST_AMQP_URL unset: skipped");
    }
    url
}

fn unique(what: &str) -> String {
    format!("test.{what}.{}", uuid::Uuid::new_v4().simple())
}

async fn connect(url: &str, name: &str) -> Arc<AmqpBus> {
    AmqpBus::connect(url, name).await.unwrap()
}

/// Retries `op` until it succeeds or `PATIENCE` runs out; each attempt must end (succeed
/// or fail) within a few seconds: a disconnected bus fails, it never hangs.
async fn eventually<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), op()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(e)) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(Err(e)) => panic!("{what}: still failing: {e}"),
            Err(_) => panic!("{what}: hung for 5 s"),
        }
    }
}

/// Closes, from the broker's side, the connections whose client-given name is `name`.
fn close_connections_named(name: &str) -> usize {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl must be installed to test a dropped connection");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for pid in &pids {
        let closed = Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "conformance test"])
            .status()
            .unwrap();
        assert!(closed.success());
    }
    pids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_calls_do_not_reach_a_later_consumer() {
    let Some(url) = url() else { return };
    let caller = connect(&url, "expiry caller").await;
    let agent = connect(&url, "expiry agent").await;
    let queue = unique("expiry");
    // An agent that takes nothing (hung), then dies.
    let hung = agent.consume(&queue).await.unwrap();
    let e = caller
        .call(&queue, b"stale".to_vec(), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, BusError::Timeout(_)), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(hung);
    // Its successor must not see the expired call, but does see what comes next.
    let mut next = agent.consume(&queue).await.unwrap();
    caller.send(&queue, b"fresh".to_vec()).await.unwrap();
    let d = tokio::time::timeout(PATIENCE, next.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.payload, b"fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_gone_makes_sends_no_consumer() {
    let Some(url) = url() else { return };
    let caller = connect(&url, "gone caller").await;
    let queue = unique("gone");
    {
        let agent = connect(&url, "gone agent").await;
        let _consumer = agent.consume(&queue).await.unwrap();
        caller.send(&queue, vec![1]).await.unwrap();
        // The agent's process ends: its connection closes.
    }
    let started = Instant::now();
    loop {
        match caller.send(&queue, vec![2]).await {
            Err(BusError::NoConsumer(_)) => break,
            Ok(()) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("expected NoConsumer, got {other:?}"),
        }
    }
    let e = caller
        .call(&queue, vec![3], Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, BusError::NoConsumer(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error_without_the_password() {
    let started = Instant::now();
    let e = AmqpBus::connect("amqp://fs:s3cret-pw@127.0.0.1:1/%2f", "nowhere")
        .await
        .err()
        .expect("nothing listens on port 1");
    let text = e.to_string();
    assert!(matches!(e, BusError::Unavailable(_)), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(text.contains("amqp://fs@127.0.0.1:1/%2f"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(11));
    let Some(url) = url() else { return };
    let wrong = url.replacen("://", "://nosuchuser-", 1);
    let e = AmqpBus::connect(&wrong, "bad login").await.err().unwrap();
    assert!(matches!(e, BusError::Unavailable(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_subscriptions_resume_after_a_dropped_connection() {
    let Some(url) = url() else { return };
    let agent_name = format!("dropped agent {}", uuid::Uuid::new_v4().simple());
    let caller = connect(&url, "dropped caller").await;
    let agent = connect(&url, &agent_name).await;
    let queue = unique("resume");
    let topic = unique("resume-topic");
    let mut consumer = agent.consume(&queue).await.unwrap();
    let mut events = agent.subscribe(&topic).await.unwrap();
    let server = tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            let payload = d.payload.clone();
            d.reply(payload).await.ok();
        }
    });
    assert_eq!(
        caller
            .call(&queue, b"before".to_vec(), PATIENCE)
            .await
            .unwrap(),
        b"before"
    );

    assert_eq!(close_connections_named(&agent_name), 1);
    // Until the agent is back its queue has no consumer; while disconnected the agent's own
    // operations fail at once.
    let started = Instant::now();
    let while_down = agent.publish(&topic, vec![0]).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    if let Err(e) = while_down {
        assert!(matches!(e, BusError::Unavailable(_)), "{e}");
    }

    let reply = eventually("call after reconnect", || {
        caller.call(&queue, b"after".to_vec(), Duration::from_secs(2))
    })
    .await;
    assert_eq!(reply, b"after");
    assert!(agent.is_connected());
    // The subscription is bound again: an event published now arrives.
    let deadline = Instant::now() + PATIENCE;
    loop {
        caller.publish(&topic, b"again".to_vec()).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), events.next()).await {
            Ok(Some(e)) if e == b"again" => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the subscription ended"),
            Err(_) => assert!(Instant::now() < deadline, "no event after reconnecting"),
        }
    }
    // And the agent can publish and call again itself.
    agent.publish(&topic, vec![1]).await.unwrap();
    server.abort();
}

/// Stops and starts the broker's application: every connection drops and the broker is away
/// for a few seconds. Ignored by default because it disturbs every other user of the broker;
/// run it alone with `cargo nextest run -p ferrostack-bus --run-ignored only`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn survives_a_broker_restart() {
    let Some(url) = url() else { return };
    let caller = connect(&url, "restart caller").await;
    let agent = connect(&url, "restart agent").await;
    let queue = unique("restart");
    let mut consumer = agent.consume(&queue).await.unwrap();
    let server = tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            d.reply(b"pong".to_vec()).await.ok();
        }
    });
    assert_eq!(
        caller.call(&queue, vec![], PATIENCE).await.unwrap(),
        b"pong"
    );
    let run = |cmd: &str| {
        assert!(
            Command::new("rabbitmqctl")
                .args(["-q", cmd])
                .status()
                .unwrap()
                .success()
        );
    };
    run("stop_app");
    let e = caller.call(&queue, vec![], PATIENCE).await.unwrap_err();
    assert!(matches!(e, BusError::Unavailable(_)), "{e}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    run("start_app");
    let reply = eventually("call after the broker restart", || {
        caller.call(&queue, vec![], Duration::from_secs(2))
    })
    .await;
    assert_eq!(reply, b"pong");
    server.abort();
}
