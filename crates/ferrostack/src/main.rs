//! `ferrostack`: every role of the cloud as a subcommand, and `up`, the all-in-one.

mod compute_host;
mod compute_network;
mod compute_volume;
mod logging;
mod network_host;
mod nova_notifier;
mod server;
mod volume_host;
mod volume_images;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrostack_config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible cloud in one binary"
)]
struct Cli {
    /// Configuration file (TOML). Keys may also be set as FERROSTACK__SECTION__KEY.
    #[arg(
        long,
        short,
        global = true,
        env = "FERROSTACK_CONFIG",
        default_value = "/etc/ferrostack/ferrostack.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the all-in-one cloud in the foreground: every API service in one process
    /// (initialising state and bootstrapping identity on first start).
    Up,
    /// Run only the controller: the API services, the conductor and scheduler, no compute
    /// agent (agents run on their hosts as `ferrostack compute-agent`).
    Api,
    /// Run only this host's compute agent (distributed mode). It reaches the controller
    /// through the AMQP bus (`[bus]`) and the public APIs at `[api] public_url`, with the
    /// service user's password (`[compute] service_password` or `service_password_file`);
    /// it never opens the database.
    ComputeAgent,
    /// Run only this host's network agent (distributed mode): bridges, VXLAN, DHCP, routers
    /// and the metadata proxy of the ports bound here, fed by the controller over the AMQP
    /// bus (`[bus]`); it never opens the database.
    NetworkAgent,
    /// Remove every kernel object this host's network agent made (bridges, VXLAN devices,
    /// namespaces, dnsmasq, nftables tables), as neutron-netns-cleanup; guests lose their
    /// network. The external bridges of `[network] bridge_mappings` stay.
    NetworkCleanup,
    /// Configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Identity administration (as keystone-manage).
    Identity {
        #[command(subcommand)]
        action: IdentityAction,
    },
    /// Database administration.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Print the effective policy rules of every service (defaults with operator overrides).
    Policy,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective configuration (defaults, file and environment merged; passwords masked).
    Show,
}

#[derive(Subcommand)]
enum IdentityAction {
    /// Create the Fernet key repository if it is empty (as keystone-manage fernet_setup).
    FernetSetup,
    /// Rotate the Fernet keys (as keystone-manage fernet_rotate).
    FernetRotate,
    /// Create the default domain, roles, admin and demo users and the catalog (idempotent).
    Bootstrap,
}

#[derive(Subcommand)]
enum DbAction {
    /// Apply every service's pending migrations.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(Some(&cli.config)).context("loading configuration")?;
    match cli.command {
        Command::Config {
            action: ConfigAction::Show,
        } => {
            print!("{}", config.to_toml_masked());
            Ok(())
        }
        Command::Identity {
            action: IdentityAction::FernetSetup,
        } => {
            logging::init(&config.log);
            server::fernet_setup(&config)
        }
        Command::Identity {
            action: IdentityAction::FernetRotate,
        } => {
            logging::init(&config.log);
            let dir = &config.identity.fernet_key_repository;
            let rotation =
                ferrostack_fernet::KeyRepository::rotate(dir, config.identity.max_active_keys)?;
            println!(
                "rotated: primary key is now {}; purged {:?}",
                rotation.primary, rotation.purged
            );
            Ok(())
        }
        Command::Policy => {
            for (service, enforcer) in server::build_enforcers(&config)?.all() {
                println!("# {service}");
                print!("{}", enforcer.dump());
            }
            Ok(())
        }
        command => {
            logging::init(&config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                match command {
                    Command::Up => server::run(config).await,
                    Command::Api => {
                        let mut config = config;
                        config.compute.agent = false;
                        config.network.agent = false;
                        server::run(config).await
                    }
                    Command::ComputeAgent => compute_host::run_agent_only(config).await,
                    Command::NetworkAgent => network_host::run_agent_only(config).await,
                    Command::NetworkCleanup => network_host::cleanup(config).await,
                    Command::Identity {
                        action: IdentityAction::Bootstrap,
                    } => server::bootstrap_only(config).await,
                    Command::Db {
                        action: DbAction::Migrate,
                    } => server::migrate_only(config).await,
                    _ => unreachable!("handled above"),
                }
            })
        }
    }
}
