//! The gateway's configuration: every key, its default and its unit.
//!
//! Loaded by [`Settings::load`] from the defaults below, an optional file
//! (`--config PATH`) and `CHAT_*` environment variables (`__` between nested
//! keys). The README's configuration table lists the same keys.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use chat_shared::config::{self, ConfigError};
use chat_shared::redis::RedisSettings;
use chat_shared::telemetry::LogSettings;

/// Which engine carries pub/sub, presence and history.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Everything in this process's memory: one node, nothing to install.
    #[default]
    Memory,
    /// Redis (standalone or Redis Cluster), shared by every gateway.
    Redis,
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

/// All gateway settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`host:port`); port 0 picks a free port.
    pub listen: String,
    /// This node's name in `welcome.node`, logs and metrics. Default: the host name.
    pub node_id: String,
    /// `memory` or `redis`.
    pub engine: EngineKind,
    pub auth: AuthSettings,
    pub admin: AdminSettings,
    pub limits: LimitSettings,
    pub heartbeat: HeartbeatSettings,
    pub history: HistorySettings,
    pub dm: DmSettings,
    pub shutdown: ShutdownSettings,
    pub redis: RedisSettings,
    pub presence: PresenceSettings,
    pub log: LogSettings,
    pub web: WebSettings,
    /// Worker threads for the HTTP server; 0 means one per CPU core.
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer key of the operator API; the API is off when unset.
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest WebSocket frame (or reassembled message) accepted; bigger closes with 1009.
    pub max_frame_bytes: usize,
    /// Largest `text` of a `send` or `dm`, in bytes of UTF-8.
    pub max_text_bytes: usize,
    /// Per-connection token bucket: capacity and refill per second.
    pub messages_per_second: u32,
    /// Rate-limited frames tolerated within `rate_limit_window_ms` before closing with 1008.
    pub max_rate_limited_frames: u32,
    /// The window over which rate-limited frames are counted, in milliseconds.
    pub rate_limit_window_ms: u64,
    /// Bytes queued for one connection before it is closed with 4008.
    pub max_outbox_bytes: usize,
    /// Open connections per user, cluster-wide with the Redis engine (429 beyond).
    pub max_connections_per_user: u32,
    /// Open connections per client IP on this node (429 beyond); 0 turns the check off.
    pub max_connections_per_ip: u32,
    /// Open connections on this node (503 beyond).
    pub max_connections: u32,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
    /// `send`, `dm` and `typing` frames per user per second across all of the
    /// user's connections and nodes; 0 turns the check off.
    pub user_messages_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatSettings {
    /// How often the server pings; a peer silent for twice this long is closed.
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Messages kept per room and per DM conversation (give the history service the same).
    pub size: usize,
    /// A room or conversation with no new message for this many days is dropped (fractions
    /// allowed; give the history service the same).
    pub retention_days: f64,
    /// How long a `client_id` is remembered for idempotent sends, in milliseconds.
    pub idempotency_window_ms: u64,
    /// The history service (`http://host:8091`) that serves `join` replays and `history`
    /// pages; empty: this gateway reads history from Redis itself. Redis engine only.
    pub url: String,
    /// Longest wait for the history service, in milliseconds; past it the client gets `unavailable`.
    pub request_timeout_ms: u64,
    /// Largest reply accepted from the history service, in bytes.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DmSettings {
    /// Undelivered DMs kept per offline recipient; the oldest go first.
    pub offline_queue_max_messages: usize,
    /// How long an undelivered DM waits for its recipient, in milliseconds.
    pub offline_ttl_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSettings {
    /// Lifetime of this node's lease key, in milliseconds; refreshed every third of it.
    pub lease_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Serve the chat page at `/` and the JS client library at `/chat.js`.
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Time from SIGTERM to exit at the latest, in milliseconds.
    pub drain_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".to_owned(),
            node_id: default_node_id(),
            engine: EngineKind::Memory,
            auth: AuthSettings::default(),
            admin: AdminSettings::default(),
            limits: LimitSettings::default(),
            heartbeat: HeartbeatSettings::default(),
            history: HistorySettings::default(),
            dm: DmSettings::default(),
            shutdown: ShutdownSettings::default(),
            redis: RedisSettings::default(),
            presence: PresenceSettings::default(),
            log: LogSettings::default(),
            web: WebSettings::default(),
            workers: 0,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::Anonymous,
            hs256_secret: None,
            rs256_public_key_path: None,
            audience: None,
            issuer: None,
            allowed_origins: Vec::new(),
            leeway_secs: 0,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_frame_bytes: 65_536,
            max_text_bytes: 4_096,
            messages_per_second: 20,
            max_rate_limited_frames: 100,
            rate_limit_window_ms: 10_000,
            max_outbox_bytes: 1_048_576,
            max_connections_per_user: 16,
            max_connections_per_ip: 0,
            max_connections: 50_000,
            max_rooms_per_connection: 100,
            user_messages_per_second: 0,
        }
    }
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        HeartbeatSettings { interval_ms: 25_000 }
    }
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            size: 1_000,
            retention_days: 30.0,
            idempotency_window_ms: 300_000,
            url: String::new(),
            request_timeout_ms: 2_000,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Default for DmSettings {
    fn default() -> Self {
        DmSettings { offline_queue_max_messages: 1_000, offline_ttl_ms: 7 * 24 * 3_600_000 }
    }
}

impl Default for PresenceSettings {
    fn default() -> Self {
        PresenceSettings { lease_ms: 10_000 }
    }
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings { enabled: true }
    }
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { drain_timeout_ms: 10_000 }
    }
}

/// The host name, or `gateway` when it cannot be read.
fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_owned())
}

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["auth.allowed_origins"];

impl Settings {
    /// Loads and checks the settings.
    ///
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, or settings that
    /// contradict each other (see [`Settings::validate`]).
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let settings: Settings = config::load(file, LIST_KEYS)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rejects settings the gateway cannot run with.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.auth.mode == AuthMode::Jwt
            && self.auth.hs256_secret.as_deref().is_none_or(str::is_empty)
            && self.auth.rs256_public_key_path.is_none()
        {
            return invalid("auth.mode = jwt needs auth.hs256_secret or auth.rs256_public_key_path");
        }
        if self.limits.max_text_bytes == 0 || self.limits.max_text_bytes > self.limits.max_frame_bytes {
            return invalid("limits.max_text_bytes must be between 1 and limits.max_frame_bytes");
        }
        if self.limits.messages_per_second == 0 {
            return invalid("limits.messages_per_second must be at least 1");
        }
        if self.limits.max_outbox_bytes < self.limits.max_frame_bytes {
            return invalid("limits.max_outbox_bytes must be at least limits.max_frame_bytes");
        }
        if self.heartbeat.interval_ms < 100 {
            return invalid("heartbeat.interval_ms must be at least 100");
        }
        if self.history.size == 0 {
            return invalid("history.size must be at least 1");
        }
        history::settings::retention_from_days(self.history.retention_days)?;
        if self.dm.offline_queue_max_messages == 0 {
            return invalid("dm.offline_queue_max_messages must be at least 1");
        }
        if !self.history.url.is_empty() && self.engine != EngineKind::Redis {
            return invalid("history.url needs engine = redis (the history service reads Redis)");
        }
        if self.history.request_timeout_ms == 0 || self.history.max_response_bytes == 0 {
            return invalid("history.request_timeout_ms and history.max_response_bytes must be positive");
        }
        self.redis.validate()?;
        if self.presence.lease_ms < 300 {
            return invalid("presence.lease_ms must be at least 300");
        }
        if self.node_id.is_empty() {
            return invalid("node_id must not be empty");
        }
        Ok(())
    }
}
