//! The settings every service of the cluster reads under the same keys: the
//! values that must agree between gateways, the presence service and the
//! history service. Each is defined here once; a service's own settings live
//! in its own section (see [`crate::config`]).
//!
//! | section | what |
//! |---|---|
//! | `redis` | the Redis every service uses ([`RedisSettings`]) |
//! | `auth` | how clients prove who they are ([`AuthSettings`]) |
//! | `history` | what a room's and a conversation's history keeps, and for how long ([`HistorySettings`]) |
//! | `dm` | how long undelivered DMs wait ([`DmSettings`]) |
//! | `presence` | the gateways' lease, which the presence service watches ([`PresenceSettings`]) |
//! | `log` | log format and level ([`LogSettings`]) |

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::redis::RedisSettings;
use crate::telemetry::LogSettings;

/// The longest retention accepted, in days (Redis TTLs are 64-bit
/// milliseconds; this keeps far from their limit).
pub const MAX_RETENTION_DAYS: f64 = 36_500.0;

/// The shortest lease accepted, in milliseconds (it is refreshed every third).
pub const MIN_LEASE_MS: u64 = 300;

/// Every cluster-wide section.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub history: HistorySettings,
    pub dm: DmSettings,
    pub presence: PresenceSettings,
    pub log: LogSettings,
}

impl Cluster {
    /// The section names, as they appear at the top of the settings.
    pub const SECTIONS: &'static [&'static str] = &["redis", "auth", "history", "dm", "presence", "log"];

    /// Checks what every service relies on. (`auth` is checked by the
    /// services that authenticate clients: [`AuthSettings::validate`].)
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.redis.validate()?;
        self.history.validate()?;
        self.dm.validate()?;
        self.presence.validate()
    }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// `?name=` and optional `&user=`: for trying it out.
    #[default]
    Anonymous,
    /// A signed JWT (HS256 or RS256) in `?token=` or `Authorization: Bearer`.
    Jwt,
}

/// The `auth` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// Shared secret for HS256 tokens.
    pub hs256_secret: Option<String>,
    /// PEM file with the RSA public key for RS256 tokens.
    pub rs256_public_key_path: Option<PathBuf>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Allowed `Origin` header values; empty allows every origin.
    pub allowed_origins: Vec<String>,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_secs: u64,
}

impl AuthSettings {
    /// # Errors
    /// `jwt` mode without a key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == AuthMode::Jwt
            && self.hs256_secret.as_deref().is_none_or(str::is_empty)
            && self.rs256_public_key_path.is_none()
        {
            return Err(ConfigError::Invalid(
                "auth.mode = jwt needs auth.hs256_secret or auth.rs256_public_key_path".into(),
            ));
        }
        Ok(())
    }
}

/// The `history` section: what every room's and DM conversation's history
/// keeps. Gateways apply it when they append; the history service when it
/// serves reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Events kept per room and per DM conversation; also the largest page served.
    pub size: usize,
    /// A room or conversation with no new event for this many days is dropped (fractions allowed).
    pub retention_days: f64,
    /// How long a `client_id` is remembered for idempotent sends, in milliseconds.
    pub idempotency_window_ms: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { size: 1_000, retention_days: 30.0, idempotency_window_ms: 300_000 }
    }
}

impl HistorySettings {
    /// # Errors
    /// A size of 0, or a retention out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.size == 0 {
            return Err(ConfigError::Invalid("history.size must be at least 1".into()));
        }
        if !(self.retention_days > 0.0 && self.retention_days <= MAX_RETENTION_DAYS) {
            return Err(ConfigError::Invalid(format!(
                "history.retention_days must be above 0 and at most {MAX_RETENTION_DAYS}"
            )));
        }
        Ok(())
    }

    /// The retention (at least a millisecond; a valid section's days always fit).
    pub fn retention(&self) -> Duration {
        let days = self.retention_days.clamp(0.0, MAX_RETENTION_DAYS);
        Duration::from_secs_f64(days * 86_400.0).max(Duration::from_millis(1))
    }

    pub fn idempotency_window(&self) -> Duration {
        Duration::from_millis(self.idempotency_window_ms)
    }
}

/// The `dm` section: DMs for a user with no session.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DmSettings {
    /// Undelivered DMs kept per recipient; the oldest go first.
    pub offline_queue_max_messages: usize,
    /// How long an undelivered DM waits for its recipient, in milliseconds.
    pub offline_ttl_ms: u64,
}

impl Default for DmSettings {
    fn default() -> Self {
        DmSettings { offline_queue_max_messages: 1_000, offline_ttl_ms: 7 * 24 * 3_600_000 }
    }
}

impl DmSettings {
    /// # Errors
    /// An empty queue or a zero wait.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.offline_queue_max_messages == 0 || self.offline_ttl_ms == 0 {
            return Err(ConfigError::Invalid(
                "dm.offline_queue_max_messages and dm.offline_ttl_ms must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn offline_ttl(&self) -> Duration {
        Duration::from_millis(self.offline_ttl_ms)
    }
}

/// The `presence` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSettings {
    /// Lifetime of a gateway's lease, in milliseconds; gateways refresh it every third of
    /// it, and the presence service sweeps a gateway whose lease lapsed.
    pub lease_ms: u64,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        PresenceSettings { lease_ms: 10_000 }
    }
}

impl PresenceSettings {
    /// # Errors
    /// A lease under [`MIN_LEASE_MS`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_ms < MIN_LEASE_MS {
            return Err(ConfigError::Invalid(format!("presence.lease_ms must be at least {MIN_LEASE_MS}")));
        }
        Ok(())
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_a_duration_of_at_least_a_millisecond() {
        let days = |retention_days| HistorySettings { retention_days, ..HistorySettings::default() };
        assert_eq!(days(0.5).retention(), Duration::from_secs(43_200));
        assert_eq!(days(1e-12).retention(), Duration::from_millis(1));
        for bad in [0.0, -1.0, 100_000.0, f64::NAN] {
            assert!(days(bad).validate().is_err(), "{bad}");
        }
    }
}
