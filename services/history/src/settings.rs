//! The history service's configuration (defaults, `--config` file, `CHAT_*`).
//!
//! `history.size` and `history.retention_days` have the same names in the
//! gateways' settings, which apply them when they append: give every service
//! the same values (for example one `CHAT_HISTORY__SIZE` for all).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use chat_shared::config::{self, ConfigError};
use chat_shared::redis::RedisSettings;
use chat_shared::telemetry::LogSettings;

use crate::store::StoreSettings;

/// The longest retention accepted, in days (Redis TTLs are 64-bit milliseconds;
/// this keeps far from their limit).
pub const MAX_RETENTION_DAYS: f64 = 36_500.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTP API (`host:port`; port 0 picks one).
    pub listen: String,
    pub redis: RedisSettings,
    pub history: HistorySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Messages kept per room and per DM conversation; also the largest page served.
    pub size: usize,
    /// A room or conversation with no new message for this many days is dropped (fractions allowed).
    pub retention_days: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8091".into(),
            redis: RedisSettings::default(),
            history: HistorySettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { size: 1_000, retention_days: 30.0 }
    }
}

impl HistorySettings {
    /// # Errors
    /// A size of 0, or a retention out of range (see [`retention_from_days`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.size == 0 {
            return Err(ConfigError::Invalid("history.size must be at least 1".into()));
        }
        retention_from_days(self.retention_days).map(|_| ())
    }

    /// The retention as a duration.
    pub fn retention(&self) -> Duration {
        retention_from_days(self.retention_days).unwrap_or(Duration::from_secs(30 * 86_400))
    }
}

/// `history.retention_days` as a duration (at least a millisecond); gateways
/// check theirs with this too.
///
/// # Errors
/// Not a number above 0 and at most [`MAX_RETENTION_DAYS`].
pub fn retention_from_days(days: f64) -> Result<Duration, ConfigError> {
    if !(days > 0.0 && days <= MAX_RETENTION_DAYS) {
        return Err(ConfigError::Invalid(format!(
            "history.retention_days must be above 0 and at most {MAX_RETENTION_DAYS}"
        )));
    }
    Ok(Duration::from_secs_f64(days * 86_400.0).max(Duration::from_millis(1)))
}

impl Settings {
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, or an invalid value.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let settings: Settings = config::load(file, &[])?;
        settings.validate()?;
        Ok(settings)
    }

    /// # Errors
    /// An invalid value, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.history.validate()?;
        self.redis.validate()
    }

    /// What the store needs to serve reads (the write-side limits do not
    /// apply here: gateways append).
    pub fn store(&self) -> StoreSettings {
        StoreSettings {
            size: self.history.size,
            retention: self.history.retention(),
            idempotency_window: Duration::from_secs(300),
            offline_queue_max_messages: 1_000,
            offline_ttl: Duration::from_secs(7 * 86_400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let settings: Settings =
            config::load_from(None, &[], vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn defaults_and_environment() {
        let settings = load(&[("CHAT_LISTEN", "127.0.0.1:0"), ("CHAT_HISTORY__RETENTION_DAYS", "0.5")]).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0");
        assert_eq!(settings.history.size, 1_000);
        assert_eq!(settings.history.retention(), Duration::from_secs(43_200));
        assert_eq!(load(&[]).unwrap().history.retention(), Duration::from_secs(30 * 86_400));
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
