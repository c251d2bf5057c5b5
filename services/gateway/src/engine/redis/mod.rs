//! The Redis engine: any number of gateways share one Redis (standalone or
//! a Redis Cluster) and behave, for every client, like one node.
//!
//! - [`Connection`]: the command pool and the subscriber client, and
//!   whether both are in service.
//! - [`bus::RedisBus`]: pub/sub; [`subscriber`]: the subscriber's channels,
//!   its receive loop and its restoration after a reconnect.
//! - [`presence::RedisPresence`]: admission, room membership, the node's lease.
//! - History is the `history-store` library's [`RedisStore`]: publishing a
//!   room message is one Lua script (next seq, capped history, publish
//!   carrying the seq). The `ack` follows its return.
//!
//! On a Redis Cluster (`redis-cluster://…`) channels are sharded
//! (`SSUBSCRIBE`/`SPUBLISH`) and hash-tagged like the keys, so a room's
//! messages travel only through the shard that owns the room. While Redis is
//! unreachable, or the subscriptions are not yet restored after a
//! reconnect, every call fails at once with `unavailable`; once they are,
//! the bus tells the hub that delivery may have missed messages, and every
//! room catches up. The keys, channels and scripts are in `docs/redis.md`.

pub mod bus;
pub mod presence;
pub mod scripts;
pub mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fred::clients::{Pool, SubscriberClient};
use fred::interfaces::ClientLike;
use history_store::{RedisStore, ReplicaWait};

use chat_shared::redis::RedisSettings;
use chat_shared::settings::{DmSettings, HistorySettings};

use super::{BackendError, BackendResult, Engine};
use crate::metrics::Metrics;
use bus::RedisBus;
use presence::RedisPresence;
use subscriber::Health;

/// What the Redis engine needs from the gateway's settings.
#[derive(Debug, Clone)]
pub struct RedisEngineSettings {
    pub redis: RedisSettings,
    /// What history keeps, and for how long.
    pub history: HistorySettings,
    pub dm: DmSettings,
    pub lease: Duration,
    /// This process's name in Redis: its lease, its list of sessions and
    /// rooms. Unique per process start (see [`RedisEngineSettings::incarnation`]).
    pub node_id: Arc<str>,
}

impl RedisEngineSettings {
    /// `node_id` plus a random suffix: the name of this start of the node.
    ///
    /// A gateway restarted under the same `node_id` (a container restarted
    /// in place keeps its host name) must not take over the lease of the
    /// process that crashed: that lease would then never lapse, and the
    /// presence service would never free the crashed sessions' presence and
    /// per-user connection slots.
    pub fn incarnation(node_id: &str) -> Arc<str> {
        let suffix: u32 = rand::random();
        Arc::from(format!("{node_id}~{suffix:08x}"))
    }
}

/// The clients every part of the engine uses, and whether they serve.
pub struct Connection {
    pub pool: Pool,
    pub subscriber: SubscriberClient,
    /// A Redis Cluster: sharded pub/sub.
    pub sharded: bool,
    pub health: Arc<Health>,
}

impl Connection {
    /// Ready when the pool and the subscriber are connected and every
    /// subscription is in place; the error says what is missing.
    pub fn readiness(&self) -> Result<(), String> {
        let pool = self.pool.is_connected();
        let subscriber = self.subscriber.is_connected();
        let subscriptions = self.health.subscriptions_ready();
        if pool && subscriber && subscriptions {
            return Ok(());
        }
        let state = |up: bool| if up { "up" } else { "down" };
        Err(format!(
            "redis pool {}, subscriber {}, subscriptions {}",
            state(pool),
            state(subscriber),
            if subscriptions { "in place" } else { "being restored" }
        ))
    }

    /// Fails fast while the node is not ready.
    pub fn check(&self) -> BackendResult<()> {
        self.readiness().map_err(BackendError::Unavailable)
    }

    /// The publish command scripts run: `SPUBLISH` on a cluster.
    pub fn publish_command(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }
}

/// Builds the clients and starts connecting; does not wait for Redis, so a
/// gateway started before Redis comes up is unready, then serves. Delivery
/// starts with [`crate::engine::Bus::start`].
///
/// # Errors
/// A malformed `redis.url`.
pub fn connect(settings: RedisEngineSettings, metrics: Arc<Metrics>) -> anyhow::Result<Engine> {
    let (builder, sharded) = settings.redis.builder().with_context(|| format!("redis.url {}", settings.redis.url))?;
    let pool = builder.build_pool(settings.redis.pool_size).context("redis pool")?;
    let subscriber = builder.build_subscriber_client().context("redis subscriber")?;
    pool.connect_pool();
    subscriber.connect();
    let conn = Arc::new(Connection { pool: pool.clone(), subscriber, sharded, health: Arc::new(Health::default()) });
    let shortfalls = metrics.replica_wait_shortfalls.clone();
    let bus = RedisBus::new(conn.clone(), settings.redis.command_timeout(), metrics);
    Ok(Engine {
        bus: Arc::new(bus),
        files: Arc::new(crate::files::redis_index::RedisFileIndex::new(conn.clone())),
        presence: RedisPresence::start(conn, settings.node_id, settings.lease),
        history: Arc::new(RedisStore::new(pool, sharded, settings.history, settings.dm).with_replica_wait(
            ReplicaWait {
                replicas: settings.redis.wait_replicas,
                timeout: Duration::from_millis(settings.redis.wait_timeout_ms),
            },
            Some(Arc::new(move || shortfalls.inc())),
        )),
    })
}
