//! Redis connection setup, the same for every service.

use std::time::Duration;

use fred::prelude::{Builder, Config, ReconnectPolicy};
use serde::Deserialize;

use crate::config::ConfigError;

/// The `redis` configuration section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port[/db]` for a standalone Redis, or
    /// `redis-cluster://host:port?node=host:port&…` for a Redis Cluster.
    pub url: String,
    /// Connections in the command pool.
    pub pool_size: usize,
    /// Longest wait for any Redis command, in milliseconds; past it the caller gets `unavailable`.
    pub command_timeout_ms: u64,
    /// Delay between reconnection attempts, in milliseconds.
    pub reconnect_delay_ms: u32,
    /// Pub/sub messages buffered between the Redis connection and the service before it counts as lagging
    /// (fred preallocates several channels of this size: 65536 cost about 200 MB of RSS, 4096 about 12 MB).
    pub subscriber_buffer_messages: usize,
    /// Replicas that must hold an appended event (message, edit, delete,
    /// reaction, DM) before its `ack` (Redis `WAIT`); 0 acknowledges once
    /// the master has it. An append that reaches fewer within
    /// `wait_timeout_ms` is answered `unavailable` (a retry with the same
    /// `client_id` is safe).
    pub wait_replicas: u32,
    /// How long an append waits for `wait_replicas`, in milliseconds.
    pub wait_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379".to_owned(),
            pool_size: 4,
            command_timeout_ms: 2_000,
            reconnect_delay_ms: 250,
            subscriber_buffer_messages: 4_096,
            wait_replicas: 0,
            wait_timeout_ms: 500,
        }
    }
}

impl RedisSettings {
    /// # Errors
    /// A zero pool size or buffer.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pool_size == 0 || self.subscriber_buffer_messages == 0 {
            return Err(ConfigError::Invalid(
                "redis.pool_size and redis.subscriber_buffer_messages must be at least 1".into(),
            ));
        }
        if self.wait_replicas > 0 && self.wait_timeout_ms == 0 {
            // WAIT with timeout 0 blocks forever.
            return Err(ConfigError::Invalid(
                "redis.wait_timeout_ms must be at least 1 with redis.wait_replicas".into(),
            ));
        }
        Ok(())
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    /// A command pool that connects in the background (a service started
    /// before Redis comes up is unready, then serves), and whether the URL
    /// names a Redis Cluster.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn connect_pool(&self) -> anyhow::Result<(fred::clients::Pool, bool)> {
        use anyhow::Context as _;
        let (builder, clustered) = self.builder().with_context(|| format!("redis.url {}", self.url))?;
        let pool = builder.build_pool(self.pool_size).context("redis pool")?;
        pool.connect_pool();
        Ok((pool, clustered))
    }

    /// A client builder with these timeouts, buffer and a reconnect policy
    /// that never gives up; and whether the URL names a Redis Cluster.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn builder(&self) -> Result<(Builder, bool), fred::error::Error> {
        let config = Config::from_url(&self.url)?;
        let clustered = config.server.is_clustered();
        let timeout = self.command_timeout();
        let mut builder = Builder::from_config(config);
        builder
            .with_performance_config(|perf| {
                perf.default_command_timeout = timeout;
                perf.broadcast_channel_capacity = self.subscriber_buffer_messages;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = timeout;
                conn.internal_command_timeout = timeout;
                conn.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_constant(0, self.reconnect_delay_ms));
        Ok((builder, clustered))
    }
}

impl From<fred::error::Error> for crate::error::BackendError {
    /// Connection trouble, timeouts and cluster changes are `Unavailable`;
    /// a reply that cannot be read is `BadData`; a command or argument this
    /// code built wrong is `Internal`.
    fn from(err: fred::error::Error) -> Self {
        use crate::error::BackendError;
        use fred::error::ErrorKind;
        match err.kind() {
            ErrorKind::Parse | ErrorKind::Protocol | ErrorKind::NotFound => BackendError::BadData(err.to_string()),
            ErrorKind::InvalidCommand | ErrorKind::InvalidArgument | ErrorKind::Config | ErrorKind::Url => {
                BackendError::Internal(err.to_string())
            }
            _ => BackendError::Unavailable(err.to_string()),
        }
    }
}
