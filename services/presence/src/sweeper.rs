//! Finds gateways whose lease expired (they crashed) and clears what they
//! held: each session leaves its rooms through the same script a gateway
//! uses, so `offline` goes out exactly when a user's last session in a room
//! is gone, and each connection frees its slot in the user's limit.
//!
//! Several replicas may sweep at once. A node is swept under a lock
//! (`SET NX PX`, refreshed while working), entries are removed from the
//! node's set only after they were cleared, and the leave script is
//! idempotent, so a replica killed mid-sweep leaves the rest to the next
//! one and nothing is reported twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::Pool;
use fred::interfaces::{HashesInterface, KeysInterface, SetsInterface, SortedSetsInterface};
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions, Value};

use chat_shared::keys;
use chat_shared::protocol::{DisplayName, PresenceState, RoomName, UserId, UserRef};
use chat_shared::scripts::{presence_payload, LAST_SEEN_TTL_MS, PRESENCE_LEAVE, PRESENCE_STATE_TTL_MS, USER_ROOM};

use crate::metrics::Metrics;
use crate::settings::PresenceServiceSettings;

/// Entries cleared between two lock refreshes.
const SWEEP_BATCH: usize = 200;
/// The live-user count is refreshed every this many sweeps.
const ONLINE_COUNT_EVERY_SWEEPS: u64 = 5;

/// Deletes the lock only if this replica still holds it.
const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

pub struct Sweeper {
    pool: Pool,
    /// A Redis Cluster: `SPUBLISH`.
    sharded: bool,
    settings: PresenceServiceSettings,
    metrics: Arc<Metrics>,
    leave: Script,
    user_room: Script,
    release_lock: Script,
}

type RedisResult<T> = Result<T, fred::error::Error>;

fn sweep_lock(node: &str) -> String {
    format!("{}:sweep-lock", keys::node_lease(node).trim_end_matches(":lease"))
}

impl Sweeper {
    pub fn new(pool: Pool, sharded: bool, settings: PresenceServiceSettings, metrics: Arc<Metrics>) -> Sweeper {
        Sweeper {
            pool,
            sharded,
            settings,
            metrics,
            leave: Script::from_lua(PRESENCE_LEAVE),
            user_room: Script::from_lua(USER_ROOM),
            release_lock: Script::from_lua(RELEASE_LOCK),
        }
    }

    /// Sweeps every `presence.sweep_interval_ms`, forever.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.settings.sweep_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rounds = 0u64;
        loop {
            tick.tick().await;
            if let Err(err) = self.sweep_once(rounds % ONLINE_COUNT_EVERY_SWEEPS == 0).await {
                tracing::warn!(cause = %err, "sweep failed; retrying next round");
            }
            rounds += 1;
        }
    }

    /// One round: every listed node without a lease is swept.
    ///
    /// # Errors
    /// Redis failures; the next round starts over.
    pub async fn sweep_once(&self, count_online: bool) -> RedisResult<()> {
        let nodes: Vec<String> = self.pool.zrange(keys::NODES, 0, -1, None, false, None, false).await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for node in nodes {
            if self.lease_alive(&node).await? {
                live.push(node);
            } else {
                dead.push(node);
            }
        }
        self.metrics.live_nodes.set(live.len() as i64);
        self.metrics.dead_nodes.set(dead.len() as i64);
        for node in dead {
            self.sweep_node(&node).await?;
        }
        if count_online {
            let mut users = HashSet::new();
            for node in &live {
                let entries: Vec<String> = self.pool.smembers(keys::node_sessions(node)).await?;
                users.extend(
                    entries
                        .iter()
                        .filter_map(|e| e.strip_prefix("c\u{1f}"))
                        .filter_map(|e| e.split_once('\u{1f}'))
                        .map(|(_, user)| user.to_owned()),
                );
            }
            self.metrics.online_users.set(users.len() as i64);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.metrics.last_sweep.set(now.as_secs_f64());
        Ok(())
    }

    async fn lease_alive(&self, node: &str) -> RedisResult<bool> {
        let exists: i64 = self.pool.exists(keys::node_lease(node)).await?;
        Ok(exists == 1)
    }

    async fn sweep_node(&self, node: &str) -> RedisResult<()> {
        let lock = sweep_lock(node);
        let lock_ms = self.settings.sweep_lock_ms as i64;
        let taken: Option<String> = self
            .pool
            .set(&lock, self.settings.replica_id.as_str(), Some(Expiration::PX(lock_ms)), Some(SetOptions::NX), false)
            .await?;
        if taken.is_none() {
            return Ok(()); // another replica is on it
        }
        let started = Instant::now();
        let set = keys::node_sessions(node);
        let mut swept = 0u64;
        loop {
            // A node that came back (same id) is alive again: leave it be.
            if self.lease_alive(node).await? {
                break;
            }
            let batch: Vec<String> = self.pool.srandmember(&set, Some(SWEEP_BATCH)).await?;
            if batch.is_empty() {
                let _: i64 = self.pool.zrem(keys::NODES, node).await?;
                break;
            }
            for entry in batch {
                self.clear(&entry).await?;
                let _: i64 = self.pool.srem(&set, &entry).await?;
                if entry.starts_with("c\u{1f}") {
                    swept += 1;
                }
            }
            let _: i64 = self.pool.pexpire(&lock, lock_ms, None).await?;
        }
        let _: Value = self
            .release_lock
            .evalsha_with_reload(self.pool.next(), vec![lock], vec![self.settings.replica_id.clone()])
            .await?;
        self.metrics.sweeps.inc();
        self.metrics.swept_sessions.inc_by(swept);
        self.metrics.sweep_seconds.observe(started.elapsed().as_secs_f64());
        tracing::info!(node, sessions = swept, ms = started.elapsed().as_millis() as u64, "swept a crashed gateway");
        Ok(())
    }

    /// Clears one entry of a node's set (see `chat_shared::keys`).
    async fn clear(&self, entry: &str) -> RedisResult<()> {
        let fields: Vec<&str> = entry.split('\u{1f}').collect();
        match fields.as_slice() {
            ["r", room, session, user, name] => {
                let (Ok(room), Ok(id)) = (RoomName::parse(room), UserId::parse(user)) else { return Ok(()) };
                let name = DisplayName::parse(name).unwrap_or_else(|_| DisplayName::from_user_id(&id));
                let user = UserRef { id, name };
                let publish = if self.sharded { "SPUBLISH" } else { "PUBLISH" };
                let was_there: Value = self
                    .leave
                    .evalsha_with_reload(
                        self.pool.next(),
                        vec![
                            keys::room_presence_sessions(&room),
                            keys::room_presence_users(&room),
                            keys::room_presence_names(&room),
                        ],
                        vec![
                            session.to_string(),
                            user.id.to_string(),
                            publish.to_owned(),
                            keys::room_channel(&room),
                            presence_payload(&room, &user, PresenceState::Offline, None),
                        ],
                    )
                    .await?;
                if matches!(was_there, Value::Integer(1)) {
                    let _: Value = self
                        .user_room
                        .evalsha_with_reload(
                            self.pool.next(),
                            vec![keys::user_rooms(&user.id)],
                            vec![room.to_string(), "-1".to_owned(), PRESENCE_STATE_TTL_MS.to_string()],
                        )
                        .await?;
                }
            }
            ["c", session, user] => {
                let Ok(user) = UserId::parse(user) else { return Ok(()) };
                let _: i64 = self.pool.hdel(keys::user_connections(&user), *session).await?;
                // A status ends with the user's last connection.
                let left: u64 = self.pool.hlen(keys::user_connections(&user)).await?;
                if left == 0 {
                    let _: i64 = self.pool.hdel(keys::STATUSES, user.as_str()).await?;
                }
                let now =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
                let _: () = self
                    .pool
                    .set(
                        keys::user_last_seen(&user),
                        now.to_string(),
                        Some(Expiration::PX(LAST_SEEN_TTL_MS as i64)),
                        None,
                        false,
                    )
                    .await?;
            }
            _ => tracing::warn!(entry, "unknown entry in a node set; dropped"),
        }
        Ok(())
    }
}
