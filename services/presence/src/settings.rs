//! The presence service's configuration: the cluster-wide sections
//! (`chat_shared::settings`: Redis, the gateways' `presence.lease_ms`, logs)
//! and its own section, `presence_service` (`CHAT_PRESENCE_SERVICE__*`).

use std::path::Path;

use serde::Deserialize;

use chat_shared::config::{self, ConfigError, Service};
use chat_shared::settings::Cluster;

/// Everything the presence service reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub cluster: Cluster,
    pub presence_service: PresenceServiceSettings,
    /// `CHAT_*` keys no service reads (logged as a warning at start).
    pub ignored: Vec<String>,
}

/// The `presence_service` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceServiceSettings {
    /// Address of the HTTP API (`host:port`; port 0 picks one).
    pub listen: String,
    /// This replica's name in sweep locks and logs. Default: host name and process id.
    pub replica_id: String,
    /// How often to look for crashed gateways, in milliseconds.
    pub sweep_interval_ms: u64,
    /// How long one replica may hold a node's sweep before another takes over, in milliseconds.
    pub sweep_lock_ms: u64,
}

impl Default for PresenceServiceSettings {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "presence".into());
        PresenceServiceSettings {
            listen: "127.0.0.1:8090".into(),
            replica_id: format!("{host}-{}", std::process::id()),
            sweep_interval_ms: 1_000,
            sweep_lock_ms: 5_000,
        }
    }
}

impl Settings {
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, an unknown key, or an invalid value.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let loaded = config::load(Service::Presence, file)?;
        let settings = Settings { cluster: loaded.cluster, presence_service: loaded.own, ignored: loaded.ignored };
        settings.validate()?;
        Ok(settings)
    }

    /// # Errors
    /// An invalid value, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let own = &self.presence_service;
        if own.sweep_interval_ms == 0 || own.sweep_lock_ms == 0 {
            return Err(ConfigError::Invalid(
                "presence_service.sweep_interval_ms and presence_service.sweep_lock_ms must be positive".into(),
            ));
        }
        self.cluster.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_environment() {
        let loaded = config::load_from::<PresenceServiceSettings, _>(
            Service::Presence,
            None,
            [
                ("CHAT_PRESENCE_SERVICE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
                ("CHAT_PRESENCE_SERVICE__SWEEP_INTERVAL_MS".to_owned(), "250".to_owned()),
                ("CHAT_PRESENCE__LEASE_MS".to_owned(), "2000".to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(loaded.own.listen, "127.0.0.1:0");
        assert_eq!(loaded.own.sweep_interval_ms, 250);
        assert_eq!(loaded.cluster.presence.lease_ms, 2_000);
        assert!(!loaded.own.replica_id.is_empty());
    }
}
