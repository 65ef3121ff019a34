//! Compute in this process: the image service seen as Nova's Glance, and this host's compute
//! agent (libvirt, or the fake driver for control-plane scale tests), inside the all-in-one or
//! alone on a compute host (`ferrostack compute-agent`).

use anyhow::Context;
use ferrostack_bus::MessageBus;
use ferrostack_compute::{ImageCatalog, ImageInfo};
use ferrostack_compute_agent::{
    Agent, AgentConfig, AgentHandle, GlanceImageSource, PasswordTokenSource,
};
use ferrostack_config::Config;
use ferrostack_image::Images;
use ferrostack_virt::{VirtDriver, VirtType};
use std::sync::Arc;
use std::time::Duration;

/// The image service as the compute API looks images up (Nova asks Glance; here it is in
/// process, with Glance's visibility rules).
pub struct LocalImages(pub Arc<Images>);

#[async_trait::async_trait]
impl ImageCatalog for LocalImages {
    async fn image(
        &self,
        id: &str,
        project: Option<&str>,
        admin: bool,
    ) -> anyhow::Result<Option<ImageInfo>> {
        let Some(image) = self.0.find_visible(id, project, admin).await? else {
            return Ok(None);
        };
        Ok(Some(ImageInfo {
            id: image.id,
            name: image.name,
            status: image.status,
            disk_format: image.disk_format,
            container_format: image.container_format,
            size: image.size,
            virtual_size: image.virtual_size,
            min_ram: image.min_ram,
            min_disk: image.min_disk,
            properties: image.properties,
        }))
    }
}

/// The hypervisor driver the configuration names.
async fn driver(config: &Config) -> anyhow::Result<Arc<dyn VirtDriver>> {
    match config.compute.driver.as_str() {
        "libvirt" => Ok(Arc::new(
            ferrostack_virt::libvirt::LibvirtDriver::connect(&config.compute.libvirt_uri)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "connecting to libvirt at {}: {e} (is libvirtd running?)",
                        config.compute.libvirt_uri
                    )
                })?,
        )),
        "fake" => {
            tracing::warn!("compute driver \"fake\": guests are simulated (scale tests only)");
            Ok(Arc::new(ferrostack_virt::fake::FakeDriver::default()))
        }
        other => anyhow::bail!("unknown compute driver {other:?} (libvirt or fake)"),
    }
}

/// Starts this host's compute agent. It fetches images from the image API as the service user.
pub async fn start_agent(
    config: &Config,
    bus: Arc<dyn MessageBus>,
    service_password: &str,
) -> anyhow::Result<AgentHandle> {
    let c = &config.compute;
    let mut agent = AgentConfig::new(&c.host, &c.instances_path);
    agent.virt_type = match c.virt_type.as_str() {
        "kvm" => VirtType::Kvm,
        "qemu" => VirtType::Qemu,
        other => anyhow::bail!("unknown virt_type {other:?} (qemu or kvm)"),
    };
    agent.heartbeat_interval = Duration::from_secs(c.report_interval.max(1));
    agent.shutdown_timeout = Duration::from_secs(c.shutdown_timeout);
    agent.vif_plugging_timeout = Duration::from_secs(c.vif_plugging_timeout);
    agent.reserved_host_memory_mb = c.reserved_host_memory_mb;
    agent.reserved_host_disk_gb = c.reserved_host_disk_gb;
    agent.vnc_enabled = c.vnc_enabled;
    agent.vnc_server_listen = c.vnc_server_listen.clone();
    agent.vnc_server_proxyclient_address = c.vnc_server_proxyclient_address.clone();
    let base = config.api.public_url.trim_end_matches('/');
    let tokens = Arc::new(PasswordTokenSource::new(
        &format!("{base}/identity"),
        ferrostack_identity::bootstrap::SERVICE_USER,
        service_password,
        "service",
        "Default",
        "Default",
    ));
    let images = Arc::new(GlanceImageSource::new(&format!("{base}/image"), tokens));
    Agent::start(agent, bus, driver(config).await?, images).await
}

/// `ferrostack compute-agent`: this host's compute agent alone. It talks to the controller
/// only through the AMQP bus and the public APIs at `[api] public_url` (images are
/// downloaded as the service user), never opens the database, and runs until SIGINT/SIGTERM.
/// Start-up is retried while the controller does not answer yet.
pub async fn run_agent_only(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.bus.kind == "amqp",
        "`ferrostack compute-agent` reaches the controller only through the message bus, and \
         [bus] kind is {:?}: set [bus] kind = \"amqp\" and [bus] url to the controller's RabbitMQ \
         (with the in-process bus the agent runs inside `ferrostack up`)",
        config.bus.kind
    );
    let password = service_password(&config)?;
    let bus = crate::server::open_bus(&config, "compute-agent").await?;
    let agent = tokio::select! {
        agent = start_agent_when_reachable(&config, bus, &password) => agent,
        _ = crate::server::shutdown_signal() => return Ok(()),
    };
    tracing::info!(
        host = %agent.host(),
        node = %agent.node_uuid(),
        controller = %config.api.public_url,
        "compute agent running"
    );
    crate::server::shutdown_signal().await;
    agent.shutdown().await;
    Ok(())
}

/// The service user's password: `[compute] service_password`, else the content of
/// `[compute] service_password_file`.
fn service_password(config: &Config) -> anyhow::Result<String> {
    let c = &config.compute;
    if !c.service_password.is_empty() {
        return Ok(c.service_password.clone());
    }
    let path = &c.service_password_file;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the service user's password from {} (or set [compute] service_password, \
             e.g. FERROSTACK__COMPUTE__SERVICE_PASSWORD)",
            path.display()
        )
    })?;
    let password = text.trim();
    anyhow::ensure!(!password.is_empty(), "{} is empty", path.display());
    Ok(password.to_string())
}

/// Starts the agent, trying again with back-off (1 s to 30 s) while it cannot: the conductor
/// does not answer yet, libvirt is not up yet.
async fn start_agent_when_reachable(
    config: &Config,
    bus: Arc<dyn MessageBus>,
    service_password: &str,
) -> AgentHandle {
    let mut delay = Duration::from_secs(1);
    loop {
        match start_agent(config, bus.clone(), service_password).await {
            Ok(agent) => return agent,
            Err(e) => {
                tracing::error!(
                    error = %format!("{e:#}"),
                    retry_in_secs = delay.as_secs(),
                    "the compute agent could not start"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
