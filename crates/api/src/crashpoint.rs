//! Named crash points for the crash tests: when `FERROSTACK_CRASH_AT` (a comma-separated list)
//! names a point, the process aborts there, as a `kill -9` at that step would. Unset (always,
//! outside those tests) a point costs one lookup in an empty list.

use std::sync::LazyLock;

/// The environment variable naming the points to crash at.
pub const ENV: &str = "FERROSTACK_CRASH_AT";

static POINTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::env::var(ENV)
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
});

/// Aborts the process if `point` is armed.
pub fn hit(point: &str) {
    if POINTS.iter().any(|p| p == point) {
        tracing::error!(point, "crash point reached: aborting (crash test)");
        eprintln!("crash point {point} reached: aborting");
        std::process::abort();
    }
}
