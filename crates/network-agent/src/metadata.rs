//! The metadata proxy (Neutron's metadata agent + its per-network haproxy, in one): guests reach
//! `http://169.254.169.254/` at the `ns-` device of their network's `qdhcp-` namespace (DHCP
//! hands out a host route to it); the proxy finds the port by the request's source address on
//! that network, and forwards to the compute metadata service with the instance's identity,
//! signed: `X-Instance-ID` (the port's `device_id`), `X-Tenant-ID`, `X-Forwarded-For` and
//! `X-Instance-ID-Signature` = hex HMAC-SHA256(shared secret, instance id). Anti-spoofing keeps
//! a guest from borrowing another's source address, so a guest reads only its own metadata.
//!
//! Design: one listener per namespace, inside the agent's process. A short-lived thread enters
//! the namespace (`setns`), binds the socket there and exits; the socket stays in that
//! namespace, and the agent's tokio runtime serves it. No process per network to supervise, and
//! the forwarding connection leaves from the agent's own namespace, where the compute service
//! is reachable. A listener is dropped before its namespace is deleted (a bound socket would
//! keep a deleted namespace alive) and rebound when the namespace was recreated.

use crate::config::MetadataConfig;
use crate::error::{Error, Result};
use crate::model::HostState;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, RwLock};

/// The metadata service's well-known address.
pub const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// `X-Instance-ID-Signature` for `instance_id`: lowercase hex HMAC-SHA256 keyed with the shared
/// secret (what Nova's metadata service checks).
pub fn sign_instance_id(secret: &str, instance_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(instance_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The instance behind a port, as the metadata service is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: String,
    pub project_id: String,
}

/// Network id → source address → instance: the ports of the desired state.
type Directory = Arc<RwLock<HashMap<String, HashMap<IpAddr, Instance>>>>;

/// Builds the directory of `state`: every port with a `device_id`, by network and fixed IP.
pub(crate) fn directory_of(state: &HostState) -> HashMap<String, HashMap<IpAddr, Instance>> {
    let mut directory: HashMap<String, HashMap<IpAddr, Instance>> = HashMap::new();
    for port in state.ports.iter().filter(|p| !p.device_id.is_empty()) {
        let addresses = directory.entry(port.network_id.clone()).or_default();
        for ip in &port.fixed_ips {
            addresses.insert(
                ip.ip_address,
                Instance {
                    instance_id: port.device_id.clone(),
                    project_id: port.project_id.clone(),
                },
            );
        }
    }
    directory
}

struct RunningProxy {
    task: tokio::task::JoinHandle<()>,
    /// The namespace the socket lives in (its nsfs inode).
    namespace_inode: u64,
}

/// The proxies of one agent, one per DHCP namespace.
pub(crate) struct MetadataProxies {
    runtime: tokio::runtime::Handle,
    config: MetadataConfig,
    client: reqwest::Client,
    directory: Directory,
    running: HashMap<String, RunningProxy>,
}

#[derive(Clone)]
struct ProxyState {
    network_id: Arc<str>,
    directory: Directory,
    client: reqwest::Client,
    config: Arc<MetadataConfig>,
}

fn namespace_inode(namespace: &str) -> Result<u64> {
    let path = format!("/run/netns/{namespace}");
    std::fs::metadata(&path)
        .map(|m| m.ino())
        .map_err(Error::io(format!("reading {path}")))
}

/// Binds a TCP listener to `address` inside network namespace `namespace` (from a thread that
/// enters the namespace, binds, and exits).
pub fn bind_in_namespace(namespace: &str, address: SocketAddr) -> Result<TcpListener> {
    let path = format!("/run/netns/{namespace}");
    std::thread::spawn(move || -> Result<TcpListener> {
        let file = std::fs::File::open(&path).map_err(Error::io(format!("opening {path}")))?;
        // SAFETY: setns(2) on a namespace file descriptor this thread holds open; it changes
        // only this thread's network namespace, and the thread ends right after binding.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::Io {
                context: format!("entering {path}"),
                source: std::io::Error::last_os_error(),
            });
        }
        let listener = TcpListener::bind(address)
            .map_err(Error::io(format!("binding {address} in {path}")))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("making the listener non-blocking"))?;
        Ok(listener)
    })
    .join()
    .map_err(|_| Error::Config("the namespace binding thread panicked".into()))?
}

impl MetadataProxies {
    pub fn new(runtime: tokio::runtime::Handle, config: MetadataConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(format!("metadata HTTP client: {e}")))?;
        Ok(MetadataProxies {
            runtime,
            config,
            client,
            directory: Directory::default(),
            running: HashMap::new(),
        })
    }

    /// Replaces the address → instance directory (every proxy sees it at once).
    pub fn update_directory(&self, state: &HostState) {
        let fresh = directory_of(state);
        *self.directory.write().expect("directory lock") = fresh;
    }

    /// Serves network `network_id` in `namespace` unless already serving there. Returns whether
    /// a listener was started.
    pub fn ensure(&mut self, network_id: &str, namespace: &str) -> Result<bool> {
        let inode = namespace_inode(namespace)?;
        if let Some(running) = self.running.get(network_id) {
            if running.namespace_inode == inode && !running.task.is_finished() {
                return Ok(false);
            }
            self.stop(network_id);
        }
        let address = SocketAddr::from((METADATA_ADDRESS, self.config.listen_port));
        // A listener of a previous agent in this process may still be closing: retry briefly.
        let mut attempts = 0;
        let listener = loop {
            match bind_in_namespace(namespace, address) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse && attempts < 20 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let _entered = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(Error::io("registering the metadata listener"))?;
        let state = ProxyState {
            network_id: network_id.into(),
            directory: self.directory.clone(),
            client: self.client.clone(),
            config: Arc::new(self.config.clone()),
        };
        let app = Router::new().fallback(proxy).with_state(state);
        let network = network_id.to_string();
        let task = self.runtime.spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::error!(network = %network, error = %e, "metadata proxy stopped");
            }
        });
        self.running.insert(
            network_id.to_string(),
            RunningProxy {
                task,
                namespace_inode: inode,
            },
        );
        Ok(true)
    }

    /// Stops the proxy of `network_id`; its socket closes as soon as the runtime drops the
    /// aborted task. Returns whether one ran.
    pub fn stop(&mut self, network_id: &str) -> bool {
        match self.running.remove(network_id) {
            Some(running) => {
                running.task.abort();
                true
            }
            None => false,
        }
    }

    /// The networks with a running proxy.
    pub fn networks(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }
}

impl Drop for MetadataProxies {
    fn drop(&mut self) {
        for (_, running) in self.running.drain() {
            running.task.abort();
        }
    }
}

/// webob's plain-text error body, as Neutron's proxy answers.
fn plain(status: StatusCode, explanation: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or_default();
    let body = format!("{} {reason}\n\n{explanation}\n\n   ", status.as_u16());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

async fn proxy(
    State(state): State<ProxyState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = peer.ip().to_canonical();
    let instance = state
        .directory
        .read()
        .expect("directory lock")
        .get(&*state.network_id)
        .and_then(|addresses| addresses.get(&source))
        .cloned();
    let Some(instance) = instance else {
        tracing::warn!(network = %state.network_id, %source, "metadata request from an unknown address");
        return plain(StatusCode::NOT_FOUND, "The resource could not be found.");
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!(
        "{}{path}",
        state.config.nova_metadata_url.trim_end_matches('/')
    );
    let signature = sign_instance_id(&state.config.shared_secret, &instance.instance_id);
    let mut request = state
        .client
        .request(method, &url)
        .header("X-Forwarded-For", source.to_string())
        .header("X-Instance-ID", &instance.instance_id)
        .header("X-Tenant-ID", &instance.project_id)
        .header("X-Instance-ID-Signature", signature)
        .body(body);
    for name in [header::ACCEPT, header::CONTENT_TYPE, header::USER_AGENT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value.clone());
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(%url, error = %e, "metadata service unreachable");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unknown error has occurred. Please try your request again.",
            );
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(%url, error = %e, "metadata service answer cut short");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Remote metadata server experienced an internal server error.",
            );
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign_instance_id("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // An empty secret (Nova's default) is a valid key.
        assert_eq!(sign_instance_id("", "x").len(), 64);
    }

    #[test]
    fn the_directory_maps_addresses_per_network() {
        let state: HostState = serde_json::from_value(serde_json::json!({
            "ports": [
                {"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01", "device_id": "vm-1",
                 "project_id": "proj", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.5"}]},
                {"id": "p2", "network_id": "n2", "mac_address": "fa:16:3e:00:00:02", "device_id": "vm-2",
                 "fixed_ips": [{"subnet_id": "s2", "ip_address": "10.0.0.5"}]},
                {"id": "p3", "network_id": "n1", "mac_address": "fa:16:3e:00:00:03",
                 "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.6"}]}
            ]
        }))
        .unwrap();
        let directory = directory_of(&state);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(directory["n1"][&ip].instance_id, "vm-1");
        assert_eq!(directory["n1"][&ip].project_id, "proj");
        assert_eq!(directory["n2"][&ip].instance_id, "vm-2");
        assert!(!directory["n1"].contains_key(&"10.0.0.6".parse().unwrap()));
    }
}
