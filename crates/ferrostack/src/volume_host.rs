//! The block storage service of this process: the `file` backend, the image service reached
//! over Glance's API as the service user, and the volume manager.

use ferrostack_bus::MessageBus;
use ferrostack_compute_agent::token::PasswordTokenSource;
use ferrostack_config::Config;
use ferrostack_store::Store;
use ferrostack_volume::Volumes;
use std::sync::Arc;

/// Tokens of the service user (project `service`), for the calls this process makes to the
/// other services' APIs.
pub fn service_tokens(config: &Config, service_password: &str) -> Arc<PasswordTokenSource> {
    let base = config.api.public_url.trim_end_matches('/');
    Arc::new(PasswordTokenSource::new(
        &format!("{base}/identity"),
        ferrostack_identity::bootstrap::SERVICE_USER,
        service_password,
        "service",
        "Default",
        "Default",
    ))
}

/// Opens the volume service (migrations, settings, default type) over `store`. Refuses a
/// backend this machine cannot run (see `[volume] backend`).
pub async fn open(
    config: &Config,
    store: Store,
    bus: Arc<dyn MessageBus>,
    service_password: &str,
) -> anyhow::Result<Arc<Volumes>> {
    let v = &config.volume;
    // Settings are checked first so that an unsupported backend is the error, not the path.
    ferrostack_volume::Settings::from_config(v)?;
    let driver = Arc::new(ferrostack_volume::file_driver::FileDriver::new(
        v.volumes_dir.clone(),
        &v.volume_format,
        v.capacity_gb,
    )?);
    let base = config.api.public_url.trim_end_matches('/');
    let tokens = service_tokens(config, service_password);
    let images = Arc::new(crate::volume_images::GlanceImages::new(
        &format!("{base}/image"),
        tokens,
    ));
    let volumes = Volumes::open(store, &config.api.public_url, bus, v, driver, images).await?;
    volumes.set_compute_events(Arc::new(crate::nova_notifier::NovaNotifier::new(
        config,
        service_password,
    )));
    Ok(volumes)
}
