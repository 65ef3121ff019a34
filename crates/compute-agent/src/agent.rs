//! The running agent: start-up (node id, reconciliation), the request loop on the agent's
//! queue, the heartbeat, and shutdown.

use crate::cache::ImageCache;
use crate::conductor::Conductor;
use crate::config::{AgentConfig, node_uuid};
use crate::guest::Guests;
use crate::heartbeat;
use crate::images::ImageSource;
use crate::manager::Manager;
use crate::reconcile::{Recovery, reconcile};
use crate::serial::Serializer;
use ferrostack_bus::{Delivery, MessageBus, QueueConsumer};
use ferrostack_compute::rpc::{
    AgentReply, AgentRequest, HostCapabilities, agent_queue, decode, encode,
};
use ferrostack_virt::VirtDriver;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The compute agent of one host.
pub struct Agent;

/// A started agent.
pub struct AgentHandle {
    host: String,
    node_uuid: String,
    stop: watch::Sender<bool>,
    requests: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

struct Shared {
    manager: Manager,
    serial: Arc<Serializer>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Shared {
    fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished tasks so the set only holds running ones.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(job);
    }

    /// Queues a cast behind the earlier requests for the same instance.
    fn queue(self: &Arc<Self>, uuid: &str, recovery: Recovery) {
        let this = self.clone();
        let job = self.serial.chain(uuid, async move {
            match recovery {
                Recovery::Request(request) => this.manager.handle(*request).await,
                Recovery::ClearReboot { uuid, from } => {
                    this.manager.clear_reboot(&uuid, &from).await
                }
            }
        });
        self.spawn(job);
    }

    fn dispatch(self: &Arc<Self>, delivery: Delivery) {
        let request: AgentRequest = match decode(&delivery.payload) {
            Ok(request) => request,
            Err(e) => {
                tracing::error!("undecodable agent request: {e}");
                if delivery.expects_reply() {
                    let reply = encode(&AgentReply::Error {
                        message: format!("undecodable request: {e}"),
                    });
                    self.spawn(async move {
                        let _ = delivery.reply(reply).await;
                    });
                }
                return;
            }
        };
        match request {
            // Calls: answered at once, never queued behind a build.
            AgentRequest::Ping => self.spawn(async move {
                let _ = delivery.reply(encode(&AgentReply::Pong)).await;
            }),
            AgentRequest::ConsoleOutput { uuid, length } => {
                let this = self.clone();
                self.spawn(async move {
                    let reply = this.manager.console_output(&uuid, length).await;
                    let _ = delivery.reply(encode(&reply)).await;
                });
            }
            AgentRequest::VncConsole { uuid } => {
                let this = self.clone();
                self.spawn(async move {
                    let reply = this.manager.vnc_console(&uuid).await;
                    let _ = delivery.reply(encode(&reply)).await;
                });
            }
            // Never queued behind the builds they wake.
            AgentRequest::ExternalEvents { events } => {
                let this = self.clone();
                self.spawn(async move { this.manager.external_events(&events).await });
            }
            cast => {
                let recovery = Recovery::Request(Box::new(cast));
                let uuid = recovery.uuid().to_string();
                self.queue(&uuid, recovery);
            }
        }
    }
}

impl Agent {
    /// Starts the agent of `config.host`: makes the instances directory and node id, reads the
    /// hypervisor's capabilities from the driver (sent with every heartbeat), starts
    /// consuming `compute.agent.<host>` (requests wait until reconciliation is done), asks the
    /// conductor which instances this host owns and reconciles ([`crate::reconcile`]), then
    /// handles requests — each in its own task, one at a time per instance in arrival order —
    /// and sends a heartbeat every `heartbeat_interval`. Fails if the driver or the conductor
    /// does not answer at start-up.
    pub async fn start(
        mut config: AgentConfig,
        bus: Arc<dyn MessageBus>,
        driver: Arc<dyn VirtDriver>,
        images: Arc<dyn ImageSource>,
    ) -> anyhow::Result<AgentHandle> {
        let fresh = !config.instances_path.exists();
        std::fs::create_dir_all(&config.instances_path)?;
        if fresh {
            // QEMU runs as its own user and must reach the disks.
            std::fs::set_permissions(
                &config.instances_path,
                std::fs::Permissions::from_mode(0o755),
            )?;
        }
        // Overlays name their backing file by absolute path.
        config.instances_path = std::path::absolute(&config.instances_path)?;
        let node_uuid = match &config.node_uuid {
            Some(id) => id.clone(),
            None => node_uuid(&config.instances_path)?,
        };
        let host = config.host.clone();
        let config = Arc::new(config);
        let capabilities = heartbeat::capabilities(driver.as_ref()).await?;
        tracing::info!(
            hypervisor_type = %capabilities.hypervisor_type,
            hypervisor_version = capabilities.hypervisor_version,
            supported_instances = capabilities.supported_instances.len(),
            "hypervisor capabilities read"
        );
        let conductor = Conductor::new(bus.clone(), &host, config.rpc_timeout);
        let guests = Guests {
            cache: ImageCache::new(&config.instances_path, images),
            config: config.clone(),
            driver,
        };
        let consumer = bus.consume(&agent_queue(&host)).await?;
        let owned = conductor.host_instances().await?;
        let recoveries = reconcile(&guests, &owned).await?;
        tracing::info!(
            %host,
            %node_uuid,
            owned = owned.len(),
            recoveries = recoveries.len(),
            "compute agent reconciled"
        );
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let shared = Arc::new(Shared {
            manager: Manager {
                guests,
                conductor,
                port_events: Default::default(),
            },
            serial: Serializer::new(),
            tasks: tasks.clone(),
        });
        for recovery in recoveries {
            let uuid = recovery.uuid().to_string();
            shared.queue(&uuid, recovery);
        }
        let (stop, stopped) = watch::channel(false);
        let requests = tokio::spawn(request_loop(shared.clone(), consumer, stopped.clone()));
        let heartbeat = tokio::spawn(heartbeat_loop(
            shared,
            node_uuid.clone(),
            capabilities,
            stopped,
        ));
        Ok(AgentHandle {
            host,
            node_uuid,
            stop,
            requests,
            heartbeat,
            tasks,
        })
    }
}

async fn request_loop(
    shared: Arc<Shared>,
    mut consumer: Box<dyn QueueConsumer>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            delivery = consumer.next() => match delivery {
                Some(delivery) => shared.dispatch(delivery),
                None => {
                    tracing::warn!("the bus closed: the agent stops taking requests");
                    break;
                }
            },
        }
    }
}

async fn heartbeat_loop(
    shared: Arc<Shared>,
    node_uuid: String,
    capabilities: HostCapabilities,
    mut stopped: watch::Receiver<bool>,
) {
    let manager = &shared.manager;
    let mut ticks = tokio::time::interval(manager.guests.config.heartbeat_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = ticks.tick() => {
                let beat = heartbeat::beat(&manager.guests, &manager.conductor, &node_uuid, &capabilities);
                if let Err(e) = beat.await {
                    tracing::warn!("heartbeat failed: {e:#}");
                }
            }
        }
    }
}

impl AgentHandle {
    /// The host this agent serves.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The compute node's uuid (stable across restarts).
    pub fn node_uuid(&self) -> &str {
        &self.node_uuid
    }

    /// Stops taking requests and heartbeats, then waits for the requests in progress to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.requests.await;
        let _ = self.heartbeat.await;
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        while tasks.join_next().await.is_some() {}
        tracing::info!(host = %self.host, "compute agent stopped");
    }

    /// Stops everything at once, requests in progress included, as a crash would (what
    /// start-up reconciliation recovers from).
    pub fn abort(self) {
        self.requests.abort();
        self.heartbeat.abort();
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }
}
