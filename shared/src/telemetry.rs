//! Logging and metrics plumbing shared by every service.

use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;
use tracing_subscriber::{fmt, EnvFilter};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The `log` configuration section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `gateway=debug,info`.
    /// `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::Text, level: "info".to_owned() }
    }
}

/// Installs the global tracing subscriber. Calling it twice is harmless (the
/// second call keeps the first subscriber), which lets tests start several
/// services in one process.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Renders a registry in the Prometheus text exposition format.
pub fn encode_metrics(registry: &Registry) -> String {
    let mut out = Vec::with_capacity(8 * 1024);
    // Encoding into a Vec only fails on metric families that cannot be
    // described, which registration already rejected.
    if let Err(err) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::error!(cause = %err, "metrics encoding failed");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The content type of [`encode_metrics`]' output.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
