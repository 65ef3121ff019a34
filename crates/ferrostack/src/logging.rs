//! Structured logs with `tracing`: text or JSON, filtered by the configured level.

use ferrostack_config::LogConfig;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber (`RUST_LOG` wins over the configured level).
pub fn init(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let result = match config.format.as_str() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        _ => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}
