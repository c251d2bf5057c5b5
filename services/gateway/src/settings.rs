//! The gateway's configuration: every key, its default and its unit.
//!
//! Loaded by [`Settings::load`] from the defaults below, an optional file
//! (`--config PATH`) and `CHAT_*` environment variables (`__` between nested
//! keys): the cluster-wide sections that every service reads
//! (`chat_shared::settings`: `redis`, `auth`, `history`, `dm`, `presence`,
//! `log`) and the gateway's own section, `gateway` (`CHAT_GATEWAY__*`). The
//! README's configuration table lists the same keys.

use std::path::Path;

use serde::Deserialize;

use chat_shared::config::{self, ConfigError, Service};
pub use chat_shared::settings::{AuthMode, AuthSettings, Cluster};

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

/// Everything a gateway reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The cluster-wide sections.
    pub cluster: Cluster,
    /// The `gateway` section.
    pub gateway: GatewaySettings,
    /// `CHAT_*` keys no service reads (logged as a warning at start).
    pub ignored: Vec<String>,
}

/// The `gateway` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to listen on (`host:port`); port 0 picks a free port.
    pub listen: String,
    /// This node's name in `welcome.node`, logs and metrics. Default: the host name.
    pub node_id: String,
    /// `memory` or `redis`.
    pub engine: EngineKind,
    /// Worker threads for the HTTP server; 0 means one per CPU core.
    pub workers: usize,
    pub admin: AdminSettings,
    pub limits: LimitSettings,
    pub heartbeat: HeartbeatSettings,
    pub shutdown: ShutdownSettings,
    pub web: WebSettings,
    pub history_service: HistoryServiceClientSettings,
    pub files: FileSettings,
    /// Proxies (CIDR ranges or addresses) whose `X-Forwarded-For` names the
    /// client: for a connection from one of them, the client's address is
    /// the rightmost address of that header that is not a trusted proxy.
    /// Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

/// Where uploaded files' bytes are kept.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileStoreKind {
    /// A directory on this host (one node, or gateways sharing a volume).
    #[default]
    Directory,
    /// An S3-compatible object store (a cluster).
    S3,
}

/// The `gateway.files` section: uploads, downloads and where files live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSettings {
    /// `directory` or `s3`.
    pub store: FileStoreKind,
    /// The directory of the `directory` store (created if missing).
    pub directory: String,
    /// Largest upload, in bytes; bigger gets 413.
    pub max_bytes: u64,
    /// Content types an upload may have (the part before any `;`).
    pub allowed_types: Vec<String>,
    /// How long an upload that no message refers to is kept, in milliseconds.
    pub unreferenced_ttl_ms: u64,
    /// How often each gateway removes what is due, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Uploads this node streams at once; more get 503.
    pub max_concurrent_uploads: usize,
    /// Uploads one user may start per minute on this node; more get 429.
    pub max_uploads_per_minute: u32,
    /// Files the embedded engine's index holds at most (uploads beyond get 503).
    pub max_indexed_files: usize,
    /// Where S3 uploads are received before they are sent (empty: the
    /// system's temporary directory); needs up to `max_bytes` per upload.
    pub spool_directory: String,
    pub s3: S3Settings,
}

/// The S3-compatible store. Credentials come only from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or
/// from `credentials_file`; they are never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`, …; empty: AWS's own.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Allow a plain `http://` endpoint (a store on a private network).
    pub allow_http: bool,
    /// A file of `AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…` lines
    /// (a mounted Secret), read at start instead of the environment.
    pub credentials_file: Option<String>,
    /// Bytes of one multipart part (S3 needs 5 MiB or more, but for the last part).
    pub part_bytes: usize,
    /// Parts this node holds in memory at once while sending them; uploads
    /// beyond wait their turn (their bytes wait on disk).
    pub max_parts_in_memory: usize,
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
    /// Largest `data` of a `signal`, in bytes of compact JSON.
    pub max_signal_bytes: usize,
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
    /// Users and rooms (or conversations) whose read receipts, and users whose
    /// status changes, this node throttles at once; beyond it relays go out
    /// unthrottled.
    pub max_throttled_relays: usize,
    /// Events of each room with local members that this node keeps from the
    /// room's stream to answer joins and resumes without a history read
    /// (0: none kept).
    pub max_cached_events_per_room: usize,
    /// How long a client may take to send a whole request head (the
    /// WebSocket handshake included) once connected, in milliseconds; a
    /// slower one gets 408 and is closed. Also how long an idle HTTP
    /// keep-alive connection stays open.
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatSettings {
    /// How often the server pings; a peer silent for twice this long is closed.
    pub interval_ms: u64,
}

/// The `gateway.history_service` section: where `join` replays and `history`
/// pages are read.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryServiceClientSettings {
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
pub struct WebSettings {
    /// Serve the chat page at `/` and the JS client library at `/chat.js`.
    pub enabled: bool,
    /// STUN/TURN servers the page's calls use (WebRTC `RTCIceServer`s, given
    /// to the page in `/client-config.json`); none by default, which works
    /// between hosts that reach each other directly.
    pub ice_servers: Vec<IceServer>,
}

/// One STUN or TURN server for the page's calls.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, … (one or several).
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Time from SIGTERM to exit at the latest, in milliseconds.
    pub drain_timeout_ms: u64,
}

impl GatewaySettings {
    /// `trusted_proxies` as ranges (an address alone is a range of one).
    ///
    /// # Errors
    /// The first entry that is neither, named.
    pub fn trusted_proxy_ranges(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("gateway.trusted_proxies: {entry:?} is not an address or a CIDR range"))
            })
            .collect()
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listen: "127.0.0.1:8080".to_owned(),
            node_id: default_node_id(),
            engine: EngineKind::Memory,
            workers: 0,
            admin: AdminSettings::default(),
            limits: LimitSettings::default(),
            heartbeat: HeartbeatSettings::default(),
            shutdown: ShutdownSettings::default(),
            web: WebSettings::default(),
            history_service: HistoryServiceClientSettings::default(),
            files: FileSettings::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            store: FileStoreKind::Directory,
            directory: "data/files".to_owned(),
            max_bytes: 10 * 1024 * 1024,
            allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "application/octet-stream",
            ]
            .map(str::to_owned)
            .to_vec(),
            unreferenced_ttl_ms: 3_600_000,
            sweep_interval_ms: 60_000,
            max_concurrent_uploads: 32,
            max_uploads_per_minute: 60,
            max_indexed_files: 100_000,
            spool_directory: String::new(),
            s3: S3Settings::default(),
        }
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            allow_http: false,
            credentials_file: None,
            part_bytes: 5 * 1024 * 1024,
            max_parts_in_memory: 4,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_frame_bytes: 65_536,
            max_text_bytes: 4_096,
            max_signal_bytes: 16_384,
            messages_per_second: 20,
            max_rate_limited_frames: 100,
            rate_limit_window_ms: 10_000,
            max_outbox_bytes: 1_048_576,
            max_connections_per_user: 16,
            max_connections_per_ip: 0,
            max_connections: 50_000,
            max_rooms_per_connection: 100,
            user_messages_per_second: 0,
            max_throttled_relays: 100_000,
            max_cached_events_per_room: 100,
            request_timeout_ms: 5_000,
        }
    }
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        HeartbeatSettings { interval_ms: 25_000 }
    }
}

impl Default for HistoryServiceClientSettings {
    fn default() -> Self {
        HistoryServiceClientSettings {
            url: String::new(),
            request_timeout_ms: 2_000,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings { enabled: true, ice_servers: Vec::new() }
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

impl Settings {
    /// Loads and checks the settings.
    ///
    /// # Errors
    /// A missing or malformed file, a value of the wrong type, an unknown key,
    /// or settings that contradict each other (see [`Settings::validate`]).
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::checked(config::load(Service::Gateway, file)?)
    }

    /// [`Settings::load`] from a TOML text and environment pairs (the
    /// `config` fuzz target).
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_toml<I>(toml: &str, env: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        Self::checked(config::load_toml(Service::Gateway, toml, env)?)
    }

    fn checked(loaded: config::Loaded<GatewaySettings>) -> Result<Settings, ConfigError> {
        let settings = Settings { cluster: loaded.cluster, gateway: loaded.own, ignored: loaded.ignored };
        settings.validate()?;
        Ok(settings)
    }

    /// Rejects settings the gateway cannot run with.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        let gateway = &self.gateway;
        let limits = &gateway.limits;
        if limits.max_text_bytes == 0 || limits.max_text_bytes > limits.max_frame_bytes {
            return invalid("gateway.limits.max_text_bytes must be between 1 and gateway.limits.max_frame_bytes");
        }
        if let Err(err) = gateway.trusted_proxy_ranges() {
            return Err(ConfigError::Invalid(err));
        }
        let files = &gateway.files;
        if files.max_bytes == 0 || files.max_concurrent_uploads == 0 || files.sweep_interval_ms == 0 {
            return invalid("gateway.files.max_bytes, max_concurrent_uploads and sweep_interval_ms must be at least 1");
        }
        if files.store == FileStoreKind::S3 && files.s3.bucket.is_empty() {
            return invalid("gateway.files.s3.bucket must be set with gateway.files.store = \"s3\"");
        }
        if files.s3.part_bytes < 5 * 1024 * 1024 {
            return invalid("gateway.files.s3.part_bytes must be at least 5 MiB (S3's smallest part)");
        }
        if limits.max_signal_bytes == 0 {
            // (A frame over max_frame_bytes closes first, whatever this says.)
            return invalid("gateway.limits.max_signal_bytes must be at least 1");
        }
        if limits.messages_per_second == 0 {
            return invalid("gateway.limits.messages_per_second must be at least 1");
        }
        if limits.max_outbox_bytes < limits.max_frame_bytes {
            return invalid("gateway.limits.max_outbox_bytes must be at least gateway.limits.max_frame_bytes");
        }
        if limits.request_timeout_ms == 0 {
            return invalid("gateway.limits.request_timeout_ms must be at least 1");
        }
        if gateway.heartbeat.interval_ms < 100 {
            return invalid("gateway.heartbeat.interval_ms must be at least 100");
        }
        let history_service = &gateway.history_service;
        if !history_service.url.is_empty() && gateway.engine != EngineKind::Redis {
            return invalid(
                "gateway.history_service.url needs gateway.engine = redis (the history service reads Redis)",
            );
        }
        if history_service.request_timeout_ms == 0 || history_service.max_response_bytes == 0 {
            return invalid("gateway.history_service.request_timeout_ms and max_response_bytes must be positive");
        }
        if gateway.node_id.is_empty() {
            return invalid("gateway.node_id must not be empty");
        }
        self.cluster.auth.validate()?;
        self.cluster.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let loaded = config::load_from::<GatewaySettings, _>(Service::Gateway, None, env)?;
        let settings = Settings { cluster: loaded.cluster, gateway: loaded.own, ignored: loaded.ignored };
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn lists_come_comma_separated_from_the_environment() {
        let settings = from_env(&[
            ("CHAT_GATEWAY__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.7"),
            ("CHAT_GATEWAY__FILES__ALLOWED_TYPES", "image/png,text/plain"),
        ])
        .unwrap();
        assert_eq!(settings.gateway.trusted_proxies, ["10.0.0.0/8", "192.168.1.7"]);
        let ranges = settings.gateway.trusted_proxy_ranges().unwrap();
        assert!(ranges[1].contains(&"192.168.1.7".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(settings.gateway.files.allowed_types, ["image/png", "text/plain"]);
    }

    #[test]
    fn a_trusted_proxy_that_is_not_an_address_is_refused_at_start() {
        let err = from_env(&[("CHAT_GATEWAY__TRUSTED_PROXIES", "10.0.0.0/8,haproxy")]).unwrap_err();
        assert!(err.to_string().contains("\"haproxy\""), "{err}");
    }
}
