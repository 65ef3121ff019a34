//! The RPC server: answers agents' state requests and applies their reports.

use super::rpc::{self, AgentReport, Reply, Request, SERVER_QUEUE};
use super::store::{self, LINUX_BRIDGE, NETWORK_HOST_AGENTS};
use crate::host_state::{self, Scope};
use crate::model::{OWNER_DHCP, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, Port};
use crate::service::Networking;
use ferrostack_bus::MessageBus;
use ferrostack_network_agent::model::HostState;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Tells the compute service about a server's ports, as Neutron's nova notifier does with
/// Nova's external events.
#[async_trait::async_trait]
pub trait VifNotifier: Send + Sync {
    /// The ports are wired (`network-vif-plugged`), as (server, port): the server is the
    /// port's `device_id`, the port the event's tag. One call for a whole report, so the
    /// compute API gets one request with every event (Neutron batches them too).
    async fn vifs_plugged(&self, plugged: &[(String, String)]);

    /// What the server sees of the port changed, e.g. a floating IP was associated with it
    /// or taken off it (`network-changed`).
    async fn network_changed(&self, server_id: &str, port_id: &str);
}

/// How the server places agents' work.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// The host that serves DHCP and runs routers (`[network] l3_host`).
    pub network_host: String,
    /// Tells Nova when a server's port turns `ACTIVE`.
    pub notifier: Option<Arc<dyn VifNotifier>>,
}

/// Consumes [`SERVER_QUEUE`] until the bus closes.
pub async fn start(
    net: Arc<Networking>,
    bus: Arc<dyn MessageBus>,
    options: ServerOptions,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut queue = bus.consume(SERVER_QUEUE).await?;
    let options = Arc::new(options);
    Ok(tokio::spawn(async move {
        while let Some(delivery) = queue.next().await {
            let net = net.clone();
            let options = options.clone();
            tokio::spawn(async move {
                let reply = match rpc::decode::<Request>(&delivery.payload) {
                    Ok(request) => handle(&net, &options, request).await.unwrap_or_else(|e| {
                        tracing::error!(error = %e, "network agent request failed");
                        Reply::Error {
                            message: e.to_string(),
                        }
                    }),
                    Err(e) => Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                };
                if delivery.expects_reply() {
                    let _ = delivery.reply(rpc::encode(&reply)).await;
                }
            });
        }
    }))
}

async fn handle(
    net: &Networking,
    options: &ServerOptions,
    request: Request,
) -> anyhow::Result<Reply> {
    match request {
        Request::GetState { host } => Ok(Reply::State {
            state: Box::new(state_for(net, options, &host).await?),
        }),
        Request::Report(report) => {
            apply_report(net, options, &report).await?;
            Ok(Reply::Ok)
        }
    }
}

fn db_error(e: crate::db::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// The VTEP address of every host, from the Linux bridge agents' rows.
async fn vteps(net: &Networking) -> anyhow::Result<BTreeMap<String, IpAddr>> {
    let rows = store::list(net.db()).await.map_err(db_error)?;
    Ok(rows
        .iter()
        .filter(|r| r.agent_type == LINUX_BRIDGE.0)
        .filter_map(|r| {
            let ip = r
                .configurations
                .get("tunneling_ip")?
                .as_str()?
                .parse()
                .ok()?;
            Some((r.host.clone(), ip))
        })
        .collect())
}

/// The desired state of `host` (creating the network host's missing DHCP ports first).
pub async fn state_for(
    net: &Networking,
    options: &ServerOptions,
    host: &str,
) -> anyhow::Result<HostState> {
    let network_host = !options.network_host.is_empty() && options.network_host == host;
    if network_host {
        host_state::ensure_dhcp_ports(net.db(), net.settings(), host)
            .await
            .map_err(db_error)?;
        host_state::bind_router_ports(net.db(), net.settings(), host)
            .await
            .map_err(db_error)?;
    }
    let snapshot = host_state::load(net.db(), vteps(net).await?)
        .await
        .map_err(db_error)?;
    let scope = Scope {
        host: host.to_string(),
        network_host,
    };
    Ok(host_state::build(&snapshot, &scope))
}

/// Records the heartbeat and sets the status of the host's ports.
pub async fn apply_report(
    net: &Networking,
    options: &ServerOptions,
    report: &AgentReport,
) -> anyhow::Result<()> {
    let db = net.db();
    let host = report.host.as_str();
    let ports = crate::db::ports::on_host(db, host)
        .await
        .map_err(db_error)?;
    let guests = ports
        .iter()
        .filter(|p| !p.device_owner.starts_with("network:"))
        .count();
    let bridge = json!({
        "devices": guests,
        "tunneling_ip": report.vtep_ip.map(|ip| ip.to_string()),
        "tunnel_types": ["vxlan"],
        "l2_population": false,
        "errors": report.errors.len(),
    });
    let mut types = vec![LINUX_BRIDGE];
    if options.network_host == host {
        types.extend(NETWORK_HOST_AGENTS);
    }
    for kind in types {
        let config = match kind == LINUX_BRIDGE {
            true => bridge.clone(),
            false => json!({}),
        };
        store::heartbeat(
            db,
            kind,
            host,
            &report.heartbeat,
            &report.started_at,
            config,
        )
        .await
        .map_err(db_error)?;
    }
    if options.network_host == host {
        floating_ip_statuses(db, &report.active_floating_ips).await?;
    }
    let active: BTreeSet<&str> = report.active_ports.iter().map(String::as_str).collect();
    let changes: Vec<(&str, &str)> = ports
        .iter()
        .map(|port| (port, wanted_status(port, &active, &report.errors)))
        .filter(|(port, status)| port.status != *status)
        .map(|(port, status)| (port.id.as_str(), status))
        .collect();
    let mut plugged = Vec::new();
    for chunk in changes.chunks(STATUS_BATCH) {
        let updated = crate::db::ports::set_statuses(db, chunk)
            .await
            .map_err(db_error)?;
        for port in updated {
            tracing::info!(port = %port.id, status = port.status.as_str(), "port status");
            if port.status == "ACTIVE" && port.device_owner.starts_with("compute:") {
                plugged.push((port.device_id, port.id));
            }
        }
    }
    if let Some(notifier) = options.notifier.clone()
        && !plugged.is_empty()
    {
        tokio::spawn(async move { notifier.vifs_plugged(&plugged).await });
    }
    Ok(())
}

/// Port statuses written per transaction: a report of a thousand new ports is a few commits
/// (and one event burst the agents take as one), not a thousand.
const STATUS_BATCH: usize = 250;

/// The floating IPs the network host reports in place turn `ACTIVE`, the others `DOWN`.
async fn floating_ip_statuses(db: &crate::db::Db, active: &[String]) -> anyhow::Result<()> {
    let all: Vec<crate::model::FloatingIp> = db.select("1 = 1", &[]).await.map_err(db_error)?;
    for fip in all {
        let up = active.contains(&fip.id);
        let wanted = if up && fip.port_id.is_some() {
            "ACTIVE"
        } else {
            "DOWN"
        };
        if fip.status == wanted {
            continue;
        }
        crate::db::write_tx!(db, |tx| crate::db::floatingips::set_status(tx, &fip.id, up)
            .await)
        .map_err(db_error)?;
    }
    Ok(())
}

/// `ACTIVE` for a guest or router port the agent wired, and for a DHCP port whose network
/// converged; `DOWN` otherwise. Other service ports keep their status.
fn wanted_status<'a>(port: &'a Port, active: &BTreeSet<&str>, errors: &[String]) -> &'a str {
    if port.device_owner == OWNER_DHCP {
        let failed = errors.iter().any(|e| e.contains(&port.network_id));
        return if failed { "DOWN" } else { "ACTIVE" };
    }
    let routed =
        port.device_owner == OWNER_ROUTER_INTERFACE || port.device_owner == OWNER_ROUTER_GATEWAY;
    if port.device_owner.starts_with("network:") && !routed {
        return port.status.as_str();
    }
    match active.contains(port.id.as_str()) {
        true => "ACTIVE",
        false => "DOWN",
    }
}
