//! Logging and metrics set-up.
//!
//! Metrics use the `metrics` facade with a Prometheus recorder; `/metrics` renders it. The names:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `todo_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `todo_outbox_backlog` | gauge | |
//! | `todo_events_published_total` | counter | `topic` |
//! | `todo_consumer_processed` | gauge (running count of this process) | `group` |
//! | `todo_consumer_retries` | gauge (running count of this process) | `group` |
//! | `todo_consumer_dead_lettered` | gauge (running count of this process) | `group` |
//! | `todo_consumer_lag` | gauge | `group` |
//! | `todo_reminder_fire_delay_seconds` | histogram | |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::LogFormat;

/// Installs the global tracing subscriber (logs go to stderr, so `todo mcp` keeps stdout for the protocol).
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (tests in one process): render from a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}
