//! The presence store on Redis: connection admission (the cluster-wide
//! per-user limit and this node's per-address limit), room membership with
//! `presence` events on the first and last session of a user (through the
//! scripts the presence service's sweeps use too), the per-user rate, and
//! this node's lease with the list of what it holds, so that the presence
//! service can sweep the node if it crashes.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::{HashesInterface, KeysInterface, SetsInterface, SortedSetsInterface};
use fred::types::{Expiration, Value};

use chat_shared::keys;
use chat_shared::protocol::{Member, PresenceState, RoomName, UserId, UserStatus};
use chat_shared::scripts::{members_with_status, presence_payload, LAST_SEEN_TTL_MS, PRESENCE_STATE_TTL_MS};

use super::scripts::Scripts;
use super::Connection;
use crate::engine::{now_ms, Admission, BackendError, BackendResult, ConnectionLimits, PresenceStore, SessionInfo};

/// Closed sessions kept for a later presence cleanup while Redis is away.
const MAX_PENDING_FORGETS: usize = 100_000;
/// How often kept cleanups are tried again.
const FORGET_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// See the module documentation.
pub struct RedisPresence {
    conn: Arc<Connection>,
    /// This process's name in Redis (`node_id~incarnation`): its lease and
    /// its list of sessions and rooms.
    node_id: Arc<str>,
    lease: Duration,
    scripts: Scripts,
    /// Connections per client address on this node (the per-IP limit is local).
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// Closed sessions whose presence could not be cleared yet (Redis away).
    pending_forgets: Mutex<VecDeque<(SessionInfo, Vec<RoomName>)>>,
}

impl RedisPresence {
    /// The store, with its lease kept and its failed cleanups retried by
    /// background tasks (which end with it).
    pub fn start(conn: Arc<Connection>, node_id: Arc<str>, lease: Duration) -> Arc<RedisPresence> {
        let presence = Arc::new(RedisPresence {
            conn,
            node_id,
            lease,
            scripts: Scripts::default(),
            per_ip: Mutex::default(),
            pending_forgets: Mutex::default(),
        });
        tokio::spawn(keep_lease(Arc::downgrade(&presence)));
        tokio::spawn(retry_forgets(Arc::downgrade(&presence)));
        presence
    }

    async fn eval(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> BackendResult<Value> {
        Ok(script.evalsha_with_reload::<Value, _, _>(self.conn.pool.next(), keys, args).await?)
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
}

/// Clears the presence of sessions that closed while Redis was away.
async fn retry_forgets(engine: Weak<RedisPresence>) {
    loop {
        tokio::time::sleep(FORGET_RETRY_INTERVAL).await;
        let Some(engine) = engine.upgrade() else { return };
        if engine.conn.readiness().is_err() {
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
async fn keep_lease(engine: Weak<RedisPresence>) {
    loop {
        let Some(strong) = engine.upgrade() else { return };
        let lease = strong.lease;
        let node = strong.node_id.to_string();
        let ms = lease.as_millis() as i64;
        let result: Result<(), _> =
            strong.conn.pool.set(keys::node_lease(&node), "alive", Some(Expiration::PX(ms)), None, false).await;
        let listed: Result<(), _> =
            strong.conn.pool.zadd(keys::NODES, None, None, false, false, (now_ms() as f64, node.clone())).await;
        // Nothing lives forever, even if every process dies.
        let state_ttl = PRESENCE_STATE_TTL_MS as i64;
        let kept: Result<(), _> = strong.conn.pool.pexpire(keys::node_sessions(&node), state_ttl, None).await;
        let kept_list: Result<(), _> = strong.conn.pool.pexpire(keys::NODES, state_ttl, None).await;
        if let Err(err) = result.and(listed).and(kept).and(kept_list) {
            tracing::debug!(cause = %err, "lease refresh failed");
        }
        drop(strong);
        tokio::time::sleep(lease / 3).await;
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn sessions_of(&self, user: &UserId) -> BackendResult<Vec<crate::engine::SessionId>> {
        let sessions: Vec<String> = self.conn.pool.hkeys(keys::user_connections(user)).await?;
        Ok(sessions.into_iter().map(Into::into).collect())
    }

    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> BackendResult<Admission> {
        self.conn.check()?;
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
                self.conn.pool.sadd(keys::node_sessions(&self.node_id), Self::connection_entry(session)).await;
            added.map_err(BackendError::from)
        } else {
            Ok(0)
        };
        if !admitted || recorded.is_err() {
            self.release_ip(session);
        }
        if let Err(err) = recorded {
            let _: Result<i64, _> =
                self.conn.pool.hdel(keys::user_connections(&session.user.id), session.session.to_string()).await;
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
            .conn
            .pool
            .hdel(keys::user_connections(&session.user.id), session.session.to_string())
            .await
            .map_err(BackendError::from)?;
        self.clear_status_if_last(&session.user.id, 0).await?;
        let _: i64 = self
            .conn
            .pool
            .srem(keys::node_sessions(&self.node_id), Self::connection_entry(session))
            .await
            .map_err(BackendError::from)?;
        let _: () = self
            .conn
            .pool
            .set(
                keys::user_last_seen(&session.user.id),
                now_ms().to_string(),
                Some(Expiration::PX(LAST_SEEN_TTL_MS as i64)),
                None,
                false,
            )
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn join(&self, room: &RoomName, session: &SessionInfo, status: Option<&UserStatus>) -> BackendResult<()> {
        self.conn.check()?;
        let _: i64 = self
            .conn
            .pool
            .sadd(keys::node_sessions(&self.node_id), Self::node_entry(room, session))
            .await
            .map_err(BackendError::from)?;
        self.eval(
            &self.scripts.presence_join,
            vec![keys::room_presence_sessions(room), keys::room_presence_users(room), keys::room_presence_names(room)],
            vec![
                session.session.to_string(),
                session.user.id.to_string(),
                session.user.name.to_string(),
                self.conn.publish_command().to_owned(),
                keys::room_channel(room),
                presence_payload(room, &session.user, PresenceState::Online, status.cloned()),
                PRESENCE_STATE_TTL_MS.to_string(),
            ],
        )
        .await?;
        self.count_user_room(room, session, 1).await
    }

    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()> {
        self.conn.check()?;
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
                    self.conn.publish_command().to_owned(),
                    keys::room_channel(room),
                    presence_payload(room, &session.user, PresenceState::Offline, None),
                ],
            )
            .await?;
        if matches!(was_there, Value::Integer(1)) {
            self.count_user_room(room, session, -1).await?;
        }
        let _: i64 = self
            .conn
            .pool
            .srem(keys::node_sessions(&self.node_id), Self::node_entry(room, session))
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn members(&self, room: &RoomName) -> BackendResult<Vec<Member>> {
        self.conn.check()?;
        Ok(members_with_status(&self.conn.pool, room).await?)
    }

    async fn set_status(&self, user: &UserId, status: Option<&UserStatus>) -> BackendResult<()> {
        self.conn.check()?;
        match status {
            Some(status) => {
                let json = serde_json::to_string(status).map_err(|err| BackendError::serialisation(&err))?;
                let _: i64 = self.conn.pool.hset(keys::STATUSES, (user.as_str(), json)).await?;
            }
            None => {
                let _: i64 = self.conn.pool.hdel(keys::STATUSES, user.as_str()).await?;
            }
        }
        Ok(())
    }

    async fn rooms_of(&self, user: &UserId) -> BackendResult<Vec<RoomName>> {
        self.conn.check()?;
        let rooms: Vec<String> = self.conn.pool.hkeys(keys::user_rooms(user)).await?;
        Ok(rooms.iter().filter_map(|room| RoomName::parse(room).ok()).collect())
    }

    async fn status(&self, user: &UserId) -> BackendResult<Option<UserStatus>> {
        let json: Option<String> = self.conn.pool.hget(keys::STATUSES, user.as_str()).await?;
        // A value this code did not write reads as no status.
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
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
        self.conn.check()?;
        let reply =
            self.eval(&self.scripts.user_rate, vec![keys::user_rate(user)], vec![per_second.to_string()]).await?;
        match reply {
            Value::Integer(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Ok(None),
        }
    }

    async fn shutdown(&self) {
        // Every session has been forgotten by now; what is left in the node's
        // set (cleanups Redis refused) stays listed for the presence sweep.
        let node = self.node_id.to_string();
        let _: Result<i64, _> = self.conn.pool.del(keys::node_lease(&node)).await;
        let left: Result<i64, _> = self.conn.pool.scard(keys::node_sessions(&node)).await;
        if matches!(left, Ok(0)) {
            let _: Result<i64, _> = self.conn.pool.zrem(keys::NODES, node).await;
        }
    }
}

impl RedisPresence {
    /// Clears the user's status when at most `others` connections (this
    /// one, before it is released) are left.
    async fn clear_status_if_last(&self, user: &UserId, others: u64) -> BackendResult<()> {
        let left: u64 = self.conn.pool.hlen(keys::user_connections(user)).await?;
        if left <= others {
            let _: i64 = self.conn.pool.hdel(keys::STATUSES, user.as_str()).await?;
        }
        Ok(())
    }

    async fn forget_now(&self, session: &SessionInfo, rooms: &[RoomName]) -> BackendResult<()> {
        // The user's last connection: the status goes before `offline` does.
        self.clear_status_if_last(&session.user.id, 1).await?;
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
