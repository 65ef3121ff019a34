//! Assembling and running the services of one process.

use anyhow::Context;
use axum::Extension;
use ferrostack_api::{ApiContext, ErrorFormat, Readiness, RootRouter};
use ferrostack_bus::{InProcessBus, MessageBus};
use ferrostack_config::Config;
use ferrostack_identity::Identity;
use ferrostack_policy::Enforcer;
use ferrostack_store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One policy enforcer per service, as each OpenStack service has its own: their base rules
/// share names but not always check strings (`service_api` is `role:service` in Nova,
/// `role:service or role:admin` in Glance).
pub struct Enforcers {
    pub identity: Arc<Enforcer>,
    pub image: Arc<Enforcer>,
    pub compute: Arc<Enforcer>,
    pub placement: Arc<Enforcer>,
    pub network: Arc<Enforcer>,
    pub volume: Arc<Enforcer>,
}

impl Enforcers {
    /// Every service's enforcer, by service name, for `ferrostack policy`.
    pub fn all(&self) -> [(&'static str, &Arc<Enforcer>); 6] {
        [
            ("identity", &self.identity),
            ("image", &self.image),
            ("compute", &self.compute),
            ("placement", &self.placement),
            ("network", &self.network),
            ("volume", &self.volume),
        ]
    }
}

/// The enforcers of every service: default rules with the operator's `policy.yaml` applied
/// (one file; an override applies to every service that has the rule).
pub fn build_enforcers(config: &Config) -> anyhow::Result<Enforcers> {
    Ok(Enforcers {
        identity: Arc::new(service_enforcer(
            config,
            &ferrostack_identity::default_rules(),
        )?),
        image: Arc::new(service_enforcer(
            config,
            &ferrostack_image::default_rules(),
        )?),
        compute: Arc::new(service_enforcer(
            config,
            &ferrostack_compute::default_rules(),
        )?),
        placement: Arc::new(service_enforcer(
            config,
            &ferrostack_placement::default_rules(),
        )?),
        network: Arc::new(service_enforcer(
            config,
            &ferrostack_network::default_rules(),
        )?),
        volume: Arc::new(service_enforcer(
            config,
            &ferrostack_volume::default_rules(),
        )?),
    })
}

fn service_enforcer(
    config: &Config,
    rules: &[ferrostack_policy::RuleDefault],
) -> anyhow::Result<Enforcer> {
    let mut enforcer = Enforcer::new(config.identity.enforce_scope);
    enforcer.register(rules)?;
    let overrides = &config.identity.policy_file;
    if overrides.exists() {
        enforcer
            .load_overrides_file(overrides)
            .with_context(|| format!("loading {}", overrides.display()))?;
    }
    for problem in enforcer.validate() {
        tracing::debug!(%problem, "policy");
    }
    Ok(enforcer)
}

/// Creates the state directory (0700) and the Fernet keys if missing.
pub fn fernet_setup(config: &Config) -> anyhow::Result<()> {
    ensure_private_dir(&config.state_dir)?;
    if ferrostack_fernet::KeyRepository::setup(&config.identity.fernet_key_repository)? {
        tracing::info!(dir = %config.identity.fernet_key_repository.display(), "fernet keys created");
    }
    Ok(())
}

fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Reads a secret from `state_dir/<name>`, generating it (mode 0600) on first use.
pub(crate) fn state_secret(config: &Config, name: &str) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config.state_dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_string());
    }
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    Ok(secret)
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database.url, config.database.max_connections)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                ferrostack_config::mask_url_password(&config.database.url)
            )
        })?;
    Ok(store)
}

/// The bus `[bus] kind` names: in-process, or the RabbitMQ at `[bus] url` (connected as
/// `role` of this host; the URL's password never reaches a log or an error).
pub(crate) async fn open_bus(config: &Config, role: &str) -> anyhow::Result<Arc<dyn MessageBus>> {
    match config.bus.kind.as_str() {
        "in-process" => Ok(InProcessBus::new()),
        "amqp" => {
            anyhow::ensure!(
                !config.bus.url.is_empty(),
                "[bus] kind = \"amqp\" needs [bus] url (amqp://user:password@host:5672/%2f)"
            );
            let name = format!("ferrostack {role} on {}", config.compute.host);
            Ok(ferrostack_bus::AmqpBus::connect(&config.bus.url, &name).await?)
        }
        other => anyhow::bail!("unknown bus kind {other:?} (\"in-process\" or \"amqp\")"),
    }
}

async fn open_identity(config: &Config, bus: Arc<dyn MessageBus>) -> anyhow::Result<Arc<Identity>> {
    fernet_setup(config)?;
    let store = open_store(config).await?;
    Identity::open(config.clone(), store, bus).await
}

/// `ferrostack identity bootstrap`
pub async fn bootstrap_only(config: Config) -> anyhow::Result<()> {
    let identity = open_identity(&config, open_bus(&config, "bootstrap").await?).await?;
    bootstrap(&config, &identity).await
}

/// `ferrostack db migrate`
pub async fn migrate_only(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    store
        .migrate("identity", ferrostack_identity::MIGRATIONS)
        .await?;
    store.migrate("image", ferrostack_image::MIGRATIONS).await?;
    store
        .migrate("compute", ferrostack_compute::MIGRATIONS)
        .await?;
    store
        .migrate("placement", ferrostack_placement::MIGRATIONS)
        .await?;
    store
        .migrate("network", ferrostack_network::MIGRATIONS)
        .await?;
    store
        .migrate("volume", ferrostack_volume::MIGRATIONS)
        .await?;
    println!("migrations applied");
    Ok(())
}

async fn bootstrap(config: &Config, identity: &Identity) -> anyhow::Result<()> {
    let input = ferrostack_identity::bootstrap::BootstrapInput {
        admin_password: state_secret(config, "admin-password")?,
        demo_password: match config.bootstrap.demo {
            true => Some(state_secret(config, "demo-password")?),
            false => None,
        },
        service_password: Some(state_secret(config, "service-password")?),
    };
    ferrostack_identity::bootstrap::bootstrap(identity, &input)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))
}

/// Runs every API service on one listener until SIGINT/SIGTERM, then drains in-flight requests.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let enforcers = build_enforcers(&config)?;
    if config.identity.policy_file.exists() {
        tracing::info!(file = %config.identity.policy_file.display(), "policy overrides loaded");
    }
    let bus = open_bus(&config, "controller").await?;
    let identity = open_identity(&config, bus.clone()).await?;
    bootstrap(&config, &identity).await?;
    // One pool for the services below (identity keeps its own, opened with it).
    let store = open_store(&config).await?;
    let images = ferrostack_image::Images::open(&config, store.clone()).await?;
    let placement =
        ferrostack_placement::Placement::open(store.clone(), &config.api.public_url).await?;
    let network = ferrostack_network::Networking::open(
        store.clone(),
        &config.api.public_url,
        bus.clone(),
        &config.network,
    )
    .await?;
    let volumes = crate::volume_host::open(
        &config,
        store.clone(),
        bus.clone(),
        &state_secret(&config, "service-password")?,
    )
    .await?;
    let volume_manager = match config.volume.manager {
        true => Some(ferrostack_volume::manager::start(volumes.clone()).await?),
        false => None,
    };
    let compute = ferrostack_compute::Compute::open(
        store,
        &config.api.public_url,
        placement.clone(),
        bus.clone(),
        Arc::new(crate::compute_host::LocalImages(images.clone())),
        config.compute.clone(),
    )
    .await?;
    compute.set_network(Arc::new(crate::compute_network::LocalNetwork::new(
        network.clone(),
    )));
    compute.set_volumes(Arc::new(crate::compute_volume::CinderVolumes::new(
        &format!("{}/volume", config.api.public_url.trim_end_matches('/')),
        crate::volume_host::service_tokens(&config, &state_secret(&config, "service-password")?),
    )));
    let conductor = ferrostack_compute::conductor::start(compute.clone()).await?;
    let network_server = crate::network_host::start_server(
        &config,
        network.clone(),
        bus.clone(),
        &state_secret(&config, "service-password")?,
    )
    .await?;
    let metadata = start_metadata_service(&config, compute.clone()).await?;
    let console_proxy = start_console_proxy(&config, compute.clone()).await;
    let readiness = Readiness::default();
    let context = |enforcer: &Arc<Enforcer>| ApiContext {
        validator: identity.clone(),
        enforcer: enforcer.clone(),
    };
    let ctx = context(&enforcers.identity);
    let app = RootRouter::new()
        .mount(
            "/identity",
            ErrorFormat::Keystone,
            ferrostack_identity::api::router(identity.clone()),
        )
        .mount(
            "/compute",
            ErrorFormat::Nova,
            ferrostack_compute::api::router(compute).layer(Extension(context(&enforcers.compute))),
        )
        .mount(
            "/placement",
            ErrorFormat::Placement,
            ferrostack_placement::api::router(placement)
                .layer(Extension(context(&enforcers.placement))),
        )
        .mount(
            "/networking",
            ErrorFormat::Neutron,
            ferrostack_network::api::router(network).layer(Extension(context(&enforcers.network))),
        )
        .mount(
            "/volume",
            ErrorFormat::Nova,
            ferrostack_volume::api::router(volumes).layer(Extension(context(&enforcers.volume))),
        )
        .mount(
            "/image",
            ErrorFormat::Glance,
            ferrostack_image::api::router(images).layer(Extension(context(&enforcers.image))),
        )
        .keep_trailing_slash("/image/v2/")
        .keep_trailing_slash("/volume/v3/")
        .finish(ctx, config.api.max_body_bytes, readiness.clone());
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .with_context(|| format!("binding {}", config.api.listen))?;
    tracing::info!(listen = %config.api.listen, public_url = %config.api.public_url, "ferrostack API ready");
    // The agent authenticates against this very listener, so it starts once it accepts.
    let agent_config = config.clone();
    let agent_bus = bus.clone();
    let service_password = state_secret(&config, "service-password")?;
    let agent = tokio::spawn(async move {
        if !agent_config.compute.agent {
            return None;
        }
        match crate::compute_host::start_agent(&agent_config, agent_bus, &service_password).await {
            Ok(handle) => {
                tracing::info!(host = %agent_config.compute.host, "compute agent started");
                Some(handle)
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "compute agent did not start; servers cannot be built on this host");
                None
            }
        }
    });
    let network_agent = match config.network.agent {
        true => {
            let secret = match config.compute.metadata_proxy_shared_secret.as_str() {
                "" => state_secret(&config, "metadata-proxy-secret")?,
                s => s.to_string(),
            };
            match crate::network_host::start(&config, bus.clone(), Some(secret)).await {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "network agent did not start; ports on this host stay DOWN");
                    None
                }
            }
        }
        false => None,
    };
    readiness.set(true);
    let grace = Duration::from_secs(config.api.shutdown_grace_secs);
    let shutdown_readiness = readiness.clone();
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        shutdown_readiness.set(false);
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: draining requests"
        );
        let _ = drained_tx.send(());
    });
    let forced = async move {
        let _ = drained_rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        _ = forced => tracing::warn!("grace period over; closing remaining connections"),
    }
    if let Ok(Some(agent)) = agent.await {
        agent.shutdown().await;
    }
    if let Some(agent) = network_agent {
        agent.shutdown().await;
    }
    drop(volume_manager);
    network_server.abort();
    conductor.abort();
    if let Some(p) = console_proxy {
        p.abort();
    }
    if let Some(m) = metadata {
        m.abort();
    }
    identity.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The noVNC console proxy on its own listener (nova-novncproxy's 6080). A listener that cannot
/// be bound (another cloud on this machine holds the port) is an error in the log, not a reason
/// to stop: everything else works, the console URLs do not connect.
async fn start_console_proxy(
    config: &Config,
    compute: Arc<ferrostack_compute::Compute>,
) -> Option<tokio::task::JoinHandle<()>> {
    let listen = &config.compute.novncproxy_listen;
    if listen.is_empty() {
        return None;
    }
    match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => {
            tracing::info!(
                listen = %listen,
                base_url = %config.compute.novncproxy_base_url,
                web = %config.compute.novncproxy_web.display(),
                "noVNC console proxy ready"
            );
            let web = config.compute.novncproxy_web.clone();
            Some(tokio::spawn(ferrostack_compute::novnc_proxy::run(
                listener, compute, web,
            )))
        }
        Err(e) => {
            tracing::error!(
                listen = %listen,
                error = %e,
                "the noVNC console proxy did not start ([compute] novncproxy_listen): console URLs will not connect"
            );
            None
        }
    }
}

/// The metadata service on its own listener (Nova's 8775), answering requests the network
/// metadata proxy signed with the shared secret.
async fn start_metadata_service(
    config: &Config,
    compute: Arc<ferrostack_compute::Compute>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let listen = &config.compute.metadata_listen;
    if listen.is_empty() {
        return Ok(None);
    }
    let secret = match config.compute.metadata_proxy_shared_secret.as_str() {
        "" => state_secret(config, "metadata-proxy-secret")?,
        s => s.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metadata service to {listen}"))?;
    tracing::info!(listen = %listen, "metadata service ready");
    let app = ferrostack_compute::metadata_api::router(compute, secret);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metadata service stopped");
        }
    })))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
