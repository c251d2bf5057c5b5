//! The Redis engine: any number of gateways share one Redis (standalone or
//! a Redis Cluster) and behave, for every client, like one node.
//!
//! - Commands go through a pool; pub/sub through one subscriber client
//!   ([`subscriber`]) that survives reconnects.
//! - History is the `history-store` library's [`RedisStore`]: publishing a
//!   room message is one Lua script (next seq, capped history, publish
//!   carrying the seq). The `ack` follows its return.
//! - On a Redis Cluster (`redis-cluster://…`) channels are sharded
//!   (`SSUBSCRIBE`/`SPUBLISH`) and hash-tagged like the keys, so a room's
//!   messages travel only through the shard that owns the room.
//! - While Redis is unreachable, or the subscriptions are not yet restored
//!   after a reconnect, every call fails at once with `unavailable`; after a
//!   reconnect or a lagging receiver the node re-reads what its rooms may
//!   have missed ([`RedisEngine::resync`]).
//!
//! The keys, channels and scripts are described in `docs/redis.md`.

pub mod scripts;
pub mod subscriber;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use fred::clients::{Pool, SubscriberClient};
use fred::interfaces::{
    ClientLike, HashesInterface, KeysInterface, PubsubInterface, SetsInterface, SortedSetsInterface,
};
use fred::types::{Expiration, Value};
use history_store::RedisStore;

use chat_shared::keys;
use chat_shared::protocol::{PresenceState, RoomName, UserId, UserRef};
use chat_shared::redis::RedisSettings;
use chat_shared::scripts::{presence_payload, LAST_SEEN_TTL_MS, PRESENCE_STATE_TTL_MS};
use chat_shared::settings::{DmSettings, HistorySettings};

use super::{
    catch_up, Admission, BackendError, BackendResult, Bus, BusMessage, ConnectionLimits, Deliver, Engine,
    PresenceStore, SessionInfo, Topic, Window,
};
use crate::metrics::Metrics;
use scripts::Scripts;
use subscriber::{Health, Subscriptions};

/// Closed sessions kept for a later presence cleanup while Redis is away.
const MAX_PENDING_FORGETS: usize = 100_000;
/// How often kept cleanups are tried again.
const FORGET_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// How long a resync waits for the command pool to be back.
const RESYNC_WAIT: Duration = Duration::from_secs(5);

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

/// See the module documentation.
pub struct RedisEngine {
    pool: Pool,
    subscriber: SubscriberClient,
    /// A Redis Cluster: sharded pub/sub.
    sharded: bool,
    scripts: Scripts,
    /// The history keyspace (appends, reads, offline queues).
    store: Arc<RedisStore>,
    subscriptions: Subscriptions,
    health: Arc<Health>,
    sink: Arc<dyn Deliver>,
    settings: RedisEngineSettings,
    /// Connections per client address on this node (the per-IP limit is local).
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// Closed sessions whose presence could not be cleared yet (Redis away).
    pending_forgets: Mutex<VecDeque<(SessionInfo, Vec<RoomName>)>>,
    /// Asks the resync task for a run; requests made during a run coalesce
    /// into one more run, so nothing lost meanwhile is left behind.
    resync_wanted: tokio::sync::Notify,
}

impl RedisEngine {
    /// Builds the clients and starts connecting; does not wait for Redis, so
    /// a gateway started before Redis comes up unready and then serves.
    ///
    /// # Errors
    /// A malformed `redis.url`.
    pub fn connect(
        settings: RedisEngineSettings,
        sink: Arc<dyn Deliver>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Engine> {
        let (builder, sharded) =
            settings.redis.builder().with_context(|| format!("redis.url {}", settings.redis.url))?;
        let pool = builder.build_pool(settings.redis.pool_size).context("redis pool")?;
        let subscriber = builder.build_subscriber_client().context("redis subscriber")?;
        pool.connect_pool();
        subscriber.connect();
        let health = Arc::new(Health::default());
        let engine = Arc::new_cyclic(|weak: &Weak<RedisEngine>| {
            let resync_target = weak.clone();
            let request_resync: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
                if let Some(engine) = resync_target.upgrade() {
                    engine.resync_wanted.notify_one();
                }
            });
            let subscriptions = subscriber::start(
                subscriber.clone(),
                sharded,
                settings.redis.command_timeout(),
                sink.clone(),
                metrics,
                health.clone(),
                request_resync,
            );
            RedisEngine {
                store: Arc::new(RedisStore::new(pool.clone(), sharded, settings.history.clone(), settings.dm.clone())),
                pool,
                subscriber,
                sharded,
                scripts: Scripts::default(),
                subscriptions,
                health,
                sink,
                settings,
                per_ip: Mutex::default(),
                pending_forgets: Mutex::default(),
                resync_wanted: tokio::sync::Notify::new(),
            }
        });
        tokio::spawn(keep_lease(Arc::downgrade(&engine)));
        tokio::spawn(retry_forgets(Arc::downgrade(&engine)));
        tokio::spawn(run_resyncs(Arc::downgrade(&engine)));
        Ok(Engine { bus: engine.clone(), presence: engine.clone(), history: engine.store.clone() })
    }

    fn readiness(&self) -> Result<(), String> {
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

    /// Fails fast while Redis is unreachable.
    fn check(&self) -> BackendResult<()> {
        self.readiness().map_err(BackendError::Unavailable)
    }

    fn publish_command(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    fn channel(topic: &Topic) -> String {
        match topic {
            Topic::Room(room) => keys::room_channel(room),
            Topic::User(user) => keys::user_channel(user),
            Topic::Broadcast => keys::BROADCAST_CHANNEL.to_owned(),
            Topic::Control => keys::CONTROL_CHANNEL.to_owned(),
        }
    }

    async fn eval(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> BackendResult<Value> {
        Ok(script.evalsha_with_reload::<Value, _, _>(self.pool.next(), keys, args).await?)
    }

    /// Keeps the user's room index (for the presence API) in step.
    async fn count_user_room(&self, room: &RoomName, session: &SessionInfo, delta: i64) -> BackendResult<()> {
        self.eval(
            &self.scripts.user_room,
            vec![keys::user_rooms(&session.user.id)],
            vec![room.to_string(), delta.to_string(), PRESENCE_STATE_TTL_MS.to_string()],
        )
        .await
        .map(|_| ())
    }

    fn connection_entry(session: &SessionInfo) -> String {
        keys::node_connection_entry(&session.session, &session.user.id)
    }

    fn node_entry(room: &RoomName, session: &SessionInfo) -> String {
        keys::node_room_entry(room, &session.session, &session.user.id, session.user.name.as_str())
    }

    /// Re-reads, for every local room, what its sessions may have missed
    /// while the subscriptions were down or the receiver lagged.
    async fn resync(&self) {
        // The subscriber may be back before the command pool.
        let deadline = tokio::time::Instant::now() + RESYNC_WAIT;
        while self.readiness().is_err() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rooms = self.sink.begin_resync();
        let size = self.settings.history.size;
        for (room, after) in rooms {
            match catch_up(self.store.as_ref(), &room, Window::after(after, size), size).await {
                Ok(page) => self.sink.complete_resync(&room, page.seq, page.messages),
                Err(err) => {
                    // The sessions stay held; the next resync retries.
                    tracing::warn!(room = %room, cause = %err, "resync failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    self.resync_wanted.notify_one();
                }
            }
        }
    }
}

/// Runs one resync at a time, again after each request that came meanwhile.
async fn run_resyncs(engine: Weak<RedisEngine>) {
    let Some(engine) = engine.upgrade() else { return };
    loop {
        engine.resync_wanted.notified().await;
        engine.resync().await;
    }
}

/// Clears the presence of sessions that closed while Redis was away.
async fn retry_forgets(engine: Weak<RedisEngine>) {
    loop {
        tokio::time::sleep(FORGET_RETRY_INTERVAL).await;
        let Some(engine) = engine.upgrade() else { return };
        if engine.readiness().is_err() {
            continue;
        }
        loop {
            let next = engine.pending_forgets.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some((session, rooms)) = next else { break };
            if engine.forget_now(&session, &rooms).await.is_err() {
                engine.pending_forgets.lock().unwrap_or_else(|p| p.into_inner()).push_front((session, rooms));
                break;
            }
        }
    }
}

/// Refreshes this node's lease every third of its lifetime.
async fn keep_lease(engine: Weak<RedisEngine>) {
    loop {
        let Some(strong) = engine.upgrade() else { return };
        let lease = strong.settings.lease;
        let node = strong.settings.node_id.to_string();
        let ms = lease.as_millis() as i64;
        let result: Result<(), _> =
            strong.pool.set(keys::node_lease(&node), "alive", Some(Expiration::PX(ms)), None, false).await;
        let listed: Result<(), _> =
            strong.pool.zadd(keys::NODES, None, None, false, false, (super::now_ms() as f64, node.clone())).await;
        // Nothing lives forever, even if every process dies.
        let state_ttl = PRESENCE_STATE_TTL_MS as i64;
        let kept: Result<(), _> = strong.pool.pexpire(keys::node_sessions(&node), state_ttl, None).await;
        let kept_list: Result<(), _> = strong.pool.pexpire(keys::NODES, state_ttl, None).await;
        if let Err(err) = result.and(listed).and(kept).and(kept_list) {
            tracing::debug!(cause = %err, "lease refresh failed");
        }
        drop(strong);
        tokio::time::sleep(lease / 3).await;
    }
}

#[async_trait]
impl Bus for RedisEngine {
    async fn subscribe(&self, topic: &Topic) -> BackendResult<()> {
        self.check()?;
        self.subscriptions.subscribe(Self::channel(topic)).await
    }

    async fn unsubscribe(&self, topic: &Topic) -> BackendResult<()> {
        self.subscriptions.unsubscribe(Self::channel(topic));
        Ok(())
    }

    async fn publish(&self, topic: &Topic, msg: BusMessage) -> BackendResult<usize> {
        self.check()?;
        let channel = Self::channel(topic);
        let payload = subscriber::encode(&msg);
        let client = self.pool.next();
        let reached: i64 =
            if self.sharded { client.spublish(channel, payload).await } else { client.publish(channel, payload).await }
                .map_err(BackendError::from)?;
        Ok(usize::try_from(reached).unwrap_or(0))
    }

    fn readiness(&self) -> Result<(), String> {
        RedisEngine::readiness(self)
    }

    async fn shutdown(&self) {
        // Every session has been forgotten by now; what is left in the node's
        // set (cleanups Redis refused) stays listed for the presence sweep.
        let node = self.settings.node_id.to_string();
        let _: Result<i64, _> = self.pool.del(keys::node_lease(&node)).await;
        let left: Result<i64, _> = self.pool.scard(keys::node_sessions(&node)).await;
        if matches!(left, Ok(0)) {
            let _: Result<i64, _> = self.pool.zrem(keys::NODES, node).await;
        }
    }
}

#[async_trait]
impl PresenceStore for RedisEngine {
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> BackendResult<Admission> {
        self.check()?;
        if let Some(ip) = session.ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let count = per_ip.entry(ip).or_insert(0);
            if limits.per_ip > 0 && *count >= limits.per_ip {
                return Ok(Admission::IpLimit);
            }
            *count += 1;
        }
        let reply = self
            .eval(
                &self.scripts.admit,
                vec![keys::user_connections(&session.user.id)],
                vec![
                    session.session.to_string(),
                    session.node.to_string(),
                    limits.per_user.to_string(),
                    PRESENCE_STATE_TTL_MS.to_string(),
                ],
            )
            .await;
        let admitted = matches!(reply, Ok(Value::Integer(1)));
        let recorded = if admitted {
            // Listed under this node, so a sweep can free the slot if the node crashes.
            let added: Result<i64, _> =
                self.pool.sadd(keys::node_sessions(&self.settings.node_id), Self::connection_entry(session)).await;
            added.map_err(BackendError::from)
        } else {
            Ok(0)
        };
        if !admitted || recorded.is_err() {
            self.release_ip(session);
        }
        if let Err(err) = recorded {
            let _: Result<i64, _> =
                self.pool.hdel(keys::user_connections(&session.user.id), session.session.to_string()).await;
            return Err(err);
        }
        match reply {
            Ok(_) if admitted => Ok(Admission::Admitted),
            Ok(_) => Ok(Admission::UserLimit),
            Err(err) => Err(err),
        }
    }

    async fn release(&self, session: &SessionInfo) -> BackendResult<()> {
        self.release_ip(session);
        let _: i64 = self
            .pool
            .hdel(keys::user_connections(&session.user.id), session.session.to_string())
            .await
            .map_err(BackendError::from)?;
        let _: i64 = self
            .pool
            .srem(keys::node_sessions(&self.settings.node_id), Self::connection_entry(session))
            .await
            .map_err(BackendError::from)?;
        let _: () = self
            .pool
            .set(
                keys::user_last_seen(&session.user.id),
                super::now_ms().to_string(),
                Some(Expiration::PX(LAST_SEEN_TTL_MS as i64)),
                None,
                false,
            )
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn join(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()> {
        self.check()?;
        let _: i64 = self
            .pool
            .sadd(keys::node_sessions(&self.settings.node_id), Self::node_entry(room, session))
            .await
            .map_err(BackendError::from)?;
        self.eval(
            &self.scripts.presence_join,
            vec![keys::room_presence_sessions(room), keys::room_presence_users(room), keys::room_presence_names(room)],
            vec![
                session.session.to_string(),
                session.user.id.to_string(),
                session.user.name.to_string(),
                self.publish_command().to_owned(),
                keys::room_channel(room),
                presence_payload(room, &session.user, PresenceState::Online),
                PRESENCE_STATE_TTL_MS.to_string(),
            ],
        )
        .await?;
        self.count_user_room(room, session, 1).await
    }

    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()> {
        self.check()?;
        let was_there = self
            .eval(
                &self.scripts.presence_leave,
                vec![
                    keys::room_presence_sessions(room),
                    keys::room_presence_users(room),
                    keys::room_presence_names(room),
                ],
                vec![
                    session.session.to_string(),
                    session.user.id.to_string(),
                    self.publish_command().to_owned(),
                    keys::room_channel(room),
                    presence_payload(room, &session.user, PresenceState::Offline),
                ],
            )
            .await?;
        if matches!(was_there, Value::Integer(1)) {
            self.count_user_room(room, session, -1).await?;
        }
        let _: i64 = self
            .pool
            .srem(keys::node_sessions(&self.settings.node_id), Self::node_entry(room, session))
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn members(&self, room: &RoomName) -> BackendResult<Vec<UserRef>> {
        self.check()?;
        let names: HashMap<String, String> =
            self.pool.hgetall(keys::room_presence_names(room)).await.map_err(BackendError::from)?;
        let members = keys::members_from_names(names);
        Ok(members)
    }

    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]) {
        if self.forget_now(session, rooms).await.is_err() {
            let mut pending = self.pending_forgets.lock().unwrap_or_else(|p| p.into_inner());
            if pending.len() >= MAX_PENDING_FORGETS {
                tracing::error!(session = %session.session, "cleanup queue full; the presence service will sweep it");
            } else {
                pending.push_back((session.clone(), rooms.to_vec()));
            }
        }
    }

    async fn take_user_token(&self, user: &UserId, per_second: u32) -> BackendResult<Option<u64>> {
        self.check()?;
        let reply =
            self.eval(&self.scripts.user_rate, vec![keys::user_rate(user)], vec![per_second.to_string()]).await?;
        match reply {
            Value::Integer(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Ok(None),
        }
    }
}

impl RedisEngine {
    async fn forget_now(&self, session: &SessionInfo, rooms: &[RoomName]) -> BackendResult<()> {
        for room in rooms {
            self.leave(room, session).await?;
        }
        self.release(session).await
    }

    fn release_ip(&self, session: &SessionInfo) {
        if let Some(ip) = session.ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = per_ip.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}
