//! Requests for one instance run one at a time, in the order they arrived (Nova's per-instance
//! lock), while requests for different instances run concurrently.
//!
//! [`Serializer::chain`] is called synchronously in arrival order; each job waits for the job
//! queued before it under the same key, whatever the order in which the runtime polls them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Per-key FIFO ordering of jobs.
#[derive(Default)]
pub struct Serializer {
    /// The last queued job of each key: its sequence number and its completion signal.
    tails: Mutex<HashMap<String, (u64, oneshot::Receiver<()>)>>,
    seq: AtomicU64,
}

impl Serializer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Queues `job` behind every job chained earlier under `key`; the returned future (spawn
    /// it) waits for them, then runs `job`. A job that panics or is aborted releases the next.
    pub fn chain<F>(self: &Arc<Self>, key: &str, job: F) -> impl Future<Output = ()> + use<F>
    where
        F: Future<Output = ()>,
    {
        let (done, done_rx) = oneshot::channel::<()>();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let previous = self
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (seq, done_rx));
        let this = self.clone();
        let key = key.to_string();
        async move {
            if let Some((_, previous)) = previous {
                // Err: the previous job ended without signalling (dropped): go on.
                let _ = previous.await;
            }
            job.await;
            drop(done);
            let mut tails = this.tails.lock().unwrap_or_else(|e| e.into_inner());
            if tails.get(&key).is_some_and(|(s, _)| *s == seq) {
                tails.remove(&key);
            }
        }
    }

    /// How many keys have queued or running jobs.
    pub fn busy_keys(&self) -> usize {
        self.tails.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_of_one_key_run_in_arrival_order_and_other_keys_run_alongside() {
        let serial = Serializer::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let log = log.clone();
            // Earlier jobs sleep longer: without ordering they would finish last.
            let job = serial.chain("a", async move {
                tokio::time::sleep(Duration::from_millis(50 - i * 10)).await;
                log.lock().unwrap().push(format!("a{i}"));
            });
            tasks.push(tokio::spawn(job));
        }
        let other_log = log.clone();
        tasks.push(tokio::spawn(serial.chain("b", async move {
            other_log.lock().unwrap().push("b".to_string());
        })));
        for task in tasks {
            task.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let a: Vec<_> = log.iter().filter(|s| s.starts_with('a')).cloned().collect();
        assert_eq!(a, ["a0", "a1", "a2", "a3", "a4"]);
        // "b" did not wait for the 150 ms of "a" jobs.
        assert_eq!(log[0], "b");
        assert_eq!(serial.busy_keys(), 0);
    }

    #[tokio::test]
    async fn an_aborted_job_releases_the_next() {
        let serial = Serializer::new();
        let first = tokio::spawn(serial.chain("k", std::future::pending::<()>()));
        let second = tokio::spawn(serial.chain("k", async {}));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished());
        first.abort();
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .unwrap()
            .unwrap();
    }
}
