//! Compute in this process: the image service seen as Nova's Glance, and this host's compute
//! agent (libvirt, or the fake driver for control-plane scale tests).

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
    agent.reserved_host_memory_mb = c.reserved_host_memory_mb;
    agent.reserved_host_disk_gb = c.reserved_host_disk_gb;
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
