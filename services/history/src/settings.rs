//! The history service's configuration: the cluster-wide sections
//! (`chat_shared::settings`: Redis, `history.size` and retention, logs) and
//! its own section, `history_service` (`CHAT_HISTORY_SERVICE__*`).

use std::path::Path;

use serde::Deserialize;

use chat_shared::config::{self, ConfigError, Service};
use chat_shared::settings::Cluster;

/// Everything the history service reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub cluster: Cluster,
    pub history_service: HistoryServiceSettings,
    /// `CHAT_*` keys no service reads (logged as a warning at start).
    pub ignored: Vec<String>,
}

/// The `history_service` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryServiceSettings {
    /// Address of the HTTP API (`host:port`; port 0 picks one).
    pub listen: String,
}

impl Default for HistoryServiceSettings {
    fn default() -> Self {
        HistoryServiceSettings { listen: "127.0.0.1:8091".into() }
    }
}

impl Settings {
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, an unknown key, or an invalid value.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let loaded = config::load(Service::History, file)?;
        Ok(Settings { cluster: loaded.cluster, history_service: loaded.own, ignored: loaded.ignored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let loaded = config::load_from::<HistoryServiceSettings, _>(Service::History, None, env)?;
        Ok(Settings { cluster: loaded.cluster, history_service: loaded.own, ignored: loaded.ignored })
    }

    #[test]
    fn defaults_and_environment() {
        let settings =
            load(&[("CHAT_HISTORY_SERVICE__LISTEN", "127.0.0.1:0"), ("CHAT_HISTORY__RETENTION_DAYS", "0.5")]).unwrap();
        assert_eq!(settings.history_service.listen, "127.0.0.1:0");
        assert_eq!(settings.cluster.history.size, 1_000);
        assert_eq!(settings.cluster.history.retention(), std::time::Duration::from_secs(43_200));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (key, value) in [
            ("CHAT_HISTORY__SIZE", "0"),
            ("CHAT_HISTORY__RETENTION_DAYS", "0"),
            ("CHAT_HISTORY__RETENTION_DAYS", "-1"),
            ("CHAT_HISTORY__RETENTION_DAYS", "100000"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains("history."), "{key}={value}: {err}");
        }
    }
}
