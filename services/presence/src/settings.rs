//! The presence service's configuration (defaults, `--config` file, `CHAT_*`).

use std::path::Path;

use serde::Deserialize;

use chat_shared::config::{self, ConfigError};
use chat_shared::redis::RedisSettings;
use chat_shared::telemetry::LogSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTP API (`host:port`; port 0 picks one).
    pub listen: String,
    /// This replica's name in sweep locks and logs. Default: host name and process id.
    pub replica_id: String,
    pub redis: RedisSettings,
    pub presence: PresenceSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSettings {
    /// The gateways' lease lifetime, in milliseconds (as configured on them).
    pub lease_ms: u64,
    /// How often to look for crashed gateways, in milliseconds.
    pub sweep_interval_ms: u64,
    /// How long one replica may hold a node's sweep before another takes over, in milliseconds.
    pub sweep_lock_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "presence".into());
        Settings {
            listen: "127.0.0.1:8090".into(),
            replica_id: format!("{host}-{}", std::process::id()),
            redis: RedisSettings::default(),
            presence: PresenceSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for PresenceSettings {
    fn default() -> Self {
        PresenceSettings { lease_ms: 10_000, sweep_interval_ms: 1_000, sweep_lock_ms: 5_000 }
    }
}

impl Settings {
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, or an invalid value.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let settings: Settings = config::load(file, &[])?;
        if settings.presence.sweep_interval_ms == 0 || settings.presence.sweep_lock_ms == 0 {
            return Err(ConfigError::Invalid("presence.sweep_interval_ms and sweep_lock_ms must be positive".into()));
        }
        settings.redis.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_environment() {
        let settings: Settings = config::load_from(
            None,
            &[],
            [
                ("CHAT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
                ("CHAT_PRESENCE__SWEEP_INTERVAL_MS".to_owned(), "250".to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0");
        assert_eq!(settings.presence.sweep_interval_ms, 250);
        assert_eq!(settings.presence.lease_ms, 10_000);
        assert!(!settings.replica_id.is_empty());
    }
}
