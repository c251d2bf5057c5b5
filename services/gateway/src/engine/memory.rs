//! The embedded engine: pub/sub, presence and history in this process's
//! memory, for a single gateway with nothing else to run.
//!
//! Each room's log sits behind its own lock, and a message is given its seq,
//! stored and handed to the registry under that lock, so history and live
//! delivery share one order. History is lost when the process stops; a new
//! process names its histories with new epochs. A room or conversation with no
//! new message for the retention period starts afresh under a new epoch, and
//! is dropped from memory by a sweep that runs every [`SWEEP_EVERY_APPENDS`]
//! appends. Only appends create a log: reading a room that has none creates
//! nothing, so reads of any number of names cannot grow memory.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytestring::ByteString;
use serde_json::value::RawValue;

use chat_shared::protocol::{
    ClientId, DirectMessage, DisplayName, PresenceState, RoomMessage, RoomName, ServerFrame, StoredMessage, UserId,
    UserRef,
};

use super::{
    now_ms, Admission, Bus, BusMessage, ConnectionLimits, Deliver, DmDraft, Engine, EngineError, EngineResult,
    FramePayload, HistoryStore, PresenceStore, Replay, ReplayFrom, RoomDraft, SessionId, SessionInfo, Stored, Topic,
};

/// Most `client_id`s remembered per room or conversation; the oldest go first.
const MAX_IDEMPOTENCY_KEYS_PER_LOG: usize = 10_000;

/// How many appends pass between two sweeps of expired logs and queues.
const SWEEP_EVERY_APPENDS: u64 = 1_024;

/// Settings of the embedded engine.
#[derive(Debug, Clone)]
pub struct MemorySettings {
    pub history_size: usize,
    /// A log with no new message for this long starts afresh.
    pub retention: Duration,
    pub idempotency_window: Duration,
    pub offline_queue_max_messages: usize,
    pub offline_ttl: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here finishes its mutation before anything can
    // panic, so a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds the three engine parts on one shared state.
pub fn engine(sink: Arc<dyn Deliver>, settings: MemorySettings) -> Engine {
    let bus = Arc::new(MemoryBus { sink: sink.clone() });
    Engine {
        bus,
        presence: Arc::new(MemoryPresence { sink: sink.clone(), state: Mutex::default() }),
        history: Arc::new(MemoryHistory {
            sink,
            appends: AtomicU64::new(0),
            fresh_epoch: Mutex::new(new_epoch()),
            rooms: Mutex::default(),
            dms: Mutex::default(),
            settings,
        }),
    }
}

/// Delivers straight to this node's registry.
struct MemoryBus {
    sink: Arc<dyn Deliver>,
}

#[async_trait]
impl Bus for MemoryBus {
    async fn subscribe(&self, _topic: &Topic) -> EngineResult<()> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &Topic) -> EngineResult<()> {
        Ok(())
    }

    async fn publish(&self, topic: &Topic, msg: BusMessage) -> EngineResult<usize> {
        self.sink.deliver(topic, &msg);
        // This node is the whole cluster and hears every topic.
        Ok(1)
    }
}

#[derive(Default)]
struct PresenceInner {
    /// user → (window start, frames in it): the per-user rate.
    user_rate: HashMap<UserId, (Instant, u32)>,
    connections_per_user: HashMap<UserId, u32>,
    connections_per_ip: HashMap<IpAddr, u32>,
    /// room → user → (display name, the user's sessions in the room)
    rooms: HashMap<RoomName, BTreeMap<UserId, (DisplayName, HashSet<SessionId>)>>,
}

struct MemoryPresence {
    sink: Arc<dyn Deliver>,
    state: Mutex<PresenceInner>,
}

impl MemoryPresence {
    fn announce(&self, room: &RoomName, user: &UserRef, state: PresenceState) {
        let frame = ServerFrame::Presence { room: room.clone(), user: user.clone(), state };
        self.sink.deliver(&Topic::Room(room.clone()), &BusMessage::for_others(&frame, &user.id));
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> EngineResult<Admission> {
        let mut state = lock(&self.state);
        let user_count = state.connections_per_user.get(&session.user.id).copied().unwrap_or(0);
        if user_count >= limits.per_user {
            return Ok(Admission::UserLimit);
        }
        if let Some(ip) = session.ip {
            let ip_count = state.connections_per_ip.get(&ip).copied().unwrap_or(0);
            if limits.per_ip > 0 && ip_count >= limits.per_ip {
                return Ok(Admission::IpLimit);
            }
            state.connections_per_ip.insert(ip, ip_count + 1);
        }
        state.connections_per_user.insert(session.user.id.clone(), user_count + 1);
        Ok(Admission::Admitted)
    }

    async fn release(&self, session: &SessionInfo) -> EngineResult<()> {
        let mut state = lock(&self.state);
        decrement(&mut state.connections_per_user, &session.user.id);
        if !state.connections_per_user.contains_key(&session.user.id) {
            state.user_rate.remove(&session.user.id);
        }
        if let Some(ip) = session.ip {
            decrement(&mut state.connections_per_ip, &ip);
        }
        Ok(())
    }

    async fn join(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()> {
        let mut state = lock(&self.state);
        let users = state.rooms.entry(room.clone()).or_default();
        let entry = users.entry(session.user.id.clone()).or_insert_with(|| (session.user.name.clone(), HashSet::new()));
        let first = entry.1.is_empty();
        entry.0 = session.user.name.clone();
        entry.1.insert(session.session.clone());
        if first {
            self.announce(room, &session.user, PresenceState::Online);
        }
        Ok(())
    }

    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()> {
        let mut state = lock(&self.state);
        let Some(users) = state.rooms.get_mut(room) else {
            return Ok(());
        };
        let Some(entry) = users.get_mut(&session.user.id) else {
            return Ok(());
        };
        if !entry.1.remove(&session.session) {
            return Ok(());
        }
        if entry.1.is_empty() {
            users.remove(&session.user.id);
            if users.is_empty() {
                state.rooms.remove(room);
            }
            self.announce(room, &session.user, PresenceState::Offline);
        }
        Ok(())
    }

    async fn members(&self, room: &RoomName) -> EngineResult<Vec<UserRef>> {
        let state = lock(&self.state);
        Ok(state
            .rooms
            .get(room)
            .map(|users| users.iter().map(|(id, (name, _))| UserRef { id: id.clone(), name: name.clone() }).collect())
            .unwrap_or_default())
    }

    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]) {
        for room in rooms {
            let _ = self.leave(room, session).await;
        }
        let _ = self.release(session).await;
    }

    async fn take_user_token(&self, user: &UserId, per_second: u32) -> EngineResult<Option<u64>> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let window = state.user_rate.entry(user.clone()).or_insert((now, 0));
        let elapsed = now.saturating_duration_since(window.0);
        if elapsed >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 > per_second {
            let left = Duration::from_secs(1).saturating_sub(now.saturating_duration_since(window.0));
            return Ok(Some((left.as_millis() as u64).max(1)));
        }
        Ok(None)
    }
}

/// Remembers recent `client_id`s of one room or conversation.
#[derive(Default)]
struct Idempotency {
    results: HashMap<(UserId, ClientId), Stored>,
    /// Insertion order, for expiry.
    order: VecDeque<(Instant, (UserId, ClientId))>,
}

impl Idempotency {
    fn get(&mut self, key: &(UserId, ClientId), now: Instant, window: Duration) -> Option<Stored> {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < window && self.order.len() <= MAX_IDEMPOTENCY_KEYS_PER_LOG {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
        self.results.get(key).copied()
    }

    fn insert(&mut self, key: (UserId, ClientId), stored: Stored, now: Instant) {
        self.order.push_back((now, key.clone()));
        self.results.insert(key, stored);
    }
}

/// One room's or conversation's capped log.
struct Log {
    seq: u64,
    messages: VecDeque<StoredMessage>,
    recent: Idempotency,
    /// Names this log; a new log (after expiry) gets a new one.
    epoch: String,
    /// The last append, or the creation.
    touched: Instant,
}

fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Log {
    fn new(epoch: String, now: Instant) -> Log {
        Log { seq: 0, messages: VecDeque::new(), recent: Idempotency::default(), epoch, touched: now }
    }

    fn expired(&self, now: Instant, retention: Duration) -> bool {
        now.saturating_duration_since(self.touched) > retention
    }

    /// The result of an earlier message with the same `(user, client_id)`.
    fn seen(&mut self, key: &Option<(UserId, ClientId)>, now: Instant, window: Duration) -> Option<Stored> {
        key.as_ref().and_then(|key| self.recent.get(key, now, window))
    }

    /// Stores `frame` (carrying `seq`, the log's next) in the capped log and
    /// returns its JSON, serialised once for history and live delivery.
    fn store(&mut self, frame: &ServerFrame, seq: u64, cap: usize) -> EngineResult<ByteString> {
        let raw: Arc<RawValue> = Arc::from(to_raw(frame)?);
        let json = ByteString::from(raw.get().to_owned());
        self.seq = seq;
        self.touched = Instant::now();
        self.messages.push_back(StoredMessage { seq, json: raw });
        while self.messages.len() > cap {
            self.messages.pop_front();
        }
        Ok(json)
    }

    fn remember(&mut self, key: Option<(UserId, ClientId)>, stored: Stored, now: Instant) {
        if let Some(key) = key {
            self.recent.insert(key, stored, now);
        }
    }
}

#[derive(Default)]
struct DmInner {
    /// (smaller user id, larger user id) → conversation log
    conversations: HashMap<(UserId, UserId), Log>,
    /// recipient → (queued at, `dm` frame), oldest first
    offline: HashMap<UserId, VecDeque<(Instant, ByteString)>>,
}

struct MemoryHistory {
    sink: Arc<dyn Deliver>,
    /// Appends since start, for the periodic sweep.
    appends: AtomicU64,
    /// The epoch of rooms with no log: a room's first log takes it, so a
    /// client that joined the empty room resumes in the same history. A sweep
    /// that drops logs changes it, so a room that comes back after being
    /// dropped never reuses its old epoch.
    fresh_epoch: Mutex<String>,
    rooms: Mutex<HashMap<RoomName, Arc<Mutex<Log>>>>,
    dms: Mutex<DmInner>,
    settings: MemorySettings,
}

impl MemoryHistory {
    /// The room's log, if it has one; one that expired is replaced by an
    /// empty log under a new epoch.
    fn read_log(&self, room: &RoomName) -> Option<Arc<Mutex<Log>>> {
        let mut rooms = lock(&self.rooms);
        let now = Instant::now();
        let log = rooms.get(room)?;
        if !lock(log).expired(now, self.settings.retention) {
            return Some(log.clone());
        }
        let fresh = Arc::new(Mutex::new(Log::new(new_epoch(), now)));
        rooms.insert(room.clone(), fresh.clone());
        Some(fresh)
    }

    /// The room's log for an append, created (under the fresh epoch) if the
    /// room has none.
    fn append_log(&self, room: &RoomName) -> Arc<Mutex<Log>> {
        if let Some(log) = self.read_log(room) {
            return log;
        }
        let epoch = lock(&self.fresh_epoch).clone();
        let mut rooms = lock(&self.rooms);
        rooms.entry(room.clone()).or_insert_with(|| Arc::new(Mutex::new(Log::new(epoch, Instant::now())))).clone()
    }

    /// Every [`SWEEP_EVERY_APPENDS`] appends: drops expired logs and queued DMs.
    fn maybe_sweep(&self) {
        if self.appends.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_APPENDS != SWEEP_EVERY_APPENDS - 1 {
            return;
        }
        let now = Instant::now();
        let retention = self.settings.retention;
        let mut rooms = lock(&self.rooms);
        let before = rooms.len();
        rooms.retain(|_, log| !lock(log).expired(now, retention));
        if rooms.len() < before {
            *lock(&self.fresh_epoch) = new_epoch();
        }
        drop(rooms);
        let mut dms = lock(&self.dms);
        dms.conversations.retain(|_, log| !log.expired(now, retention));
        let ttl = self.settings.offline_ttl;
        dms.offline.retain(|_, queue| {
            queue.retain(|(at, _)| now.saturating_duration_since(*at) < ttl);
            !queue.is_empty()
        });
    }
}

fn to_raw<T: serde::Serialize>(frame: &T) -> EngineResult<Box<RawValue>> {
    serde_json::value::to_raw_value(frame).map_err(|err| EngineError::Unavailable(format!("serialisation: {err}")))
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn publish_room(&self, draft: RoomDraft) -> EngineResult<Stored> {
        self.maybe_sweep();
        let log = self.append_log(&draft.room);
        let mut log = lock(&log);
        let now = Instant::now();
        let key = draft.client_id.clone().map(|c| (draft.from.id.clone(), c));
        if let Some(stored) = log.seen(&key, now, self.settings.idempotency_window) {
            return Ok(stored);
        }
        let seq = log.seq + 1;
        let ts = now_ms();
        let room = draft.room.clone();
        let frame = ServerFrame::Message(RoomMessage {
            room: draft.room,
            seq,
            from: draft.from,
            text: draft.text,
            ts,
            client_id: draft.client_id,
        });
        let json = log.store(&frame, seq, self.settings.history_size)?;
        let stored = Stored { seq, ts, delivered: true };
        log.remember(key, stored, now);
        let msg = BusMessage::Frame(FramePayload {
            kind: "message",
            seq: Some(seq),
            skip_user: None,
            skip_session: None,
            json,
        });
        self.sink.deliver(&Topic::Room(room), &msg);
        Ok(stored)
    }

    async fn replay(&self, room: &RoomName, from: ReplayFrom) -> EngineResult<Replay> {
        let Some(log) = self.read_log(room) else {
            return Ok(Replay { seq: 0, epoch: lock(&self.fresh_epoch).clone(), messages: Vec::new() });
        };
        let log = lock(&log);
        let messages = match from {
            ReplayFrom::Latest(n) => {
                let skip = log.messages.len().saturating_sub(n);
                log.messages.iter().skip(skip).cloned().collect()
            }
            ReplayFrom::After(since) => log.messages.iter().filter(|m| m.seq > since).cloned().collect(),
        };
        Ok(Replay { seq: log.seq, epoch: log.epoch.clone(), messages })
    }

    async fn page(&self, room: &RoomName, before: Option<u64>, limit: usize) -> EngineResult<Vec<StoredMessage>> {
        let Some(log) = self.read_log(room) else {
            return Ok(Vec::new());
        };
        let log = lock(&log);
        let end = match before {
            Some(before) => log.messages.partition_point(|m| m.seq < before),
            None => log.messages.len(),
        };
        let start = end.saturating_sub(limit);
        Ok(log.messages.range(start..end).cloned().collect())
    }

    async fn publish_dm(&self, draft: DmDraft) -> EngineResult<Stored> {
        self.maybe_sweep();
        let mut dms = lock(&self.dms);
        let pair = if draft.from.id <= draft.to {
            (draft.from.id.clone(), draft.to.clone())
        } else {
            (draft.to.clone(), draft.from.id.clone())
        };
        let now = Instant::now();
        let retention = self.settings.retention;
        let log = dms.conversations.entry(pair).or_insert_with(|| Log::new(String::new(), now));
        if log.expired(now, retention) {
            *log = Log::new(String::new(), now);
        }
        let key = draft.client_id.clone().map(|c| (draft.from.id.clone(), c));
        if let Some(stored) = log.seen(&key, now, self.settings.idempotency_window) {
            return Ok(stored);
        }
        let seq = log.seq + 1;
        let ts = now_ms();
        let (from, to) = (draft.from.id.clone(), draft.to.clone());
        let frame = ServerFrame::Dm(DirectMessage {
            from: draft.from,
            to: draft.to,
            text: draft.text,
            ts,
            seq,
            client_id: draft.client_id,
        });
        let json = log.store(&frame, seq, self.settings.history_size)?;
        let payload = BusMessage::dm(&json, seq, &draft.origin);
        let reached = self.sink.deliver(&Topic::User(to.clone()), &payload);
        if from != to {
            self.sink.deliver(&Topic::User(from), &payload);
        }
        let delivered = reached > 0;
        let stored = Stored { seq, ts, delivered };
        log.remember(key, stored, now);
        if !delivered {
            let queue = dms.offline.entry(to).or_default();
            queue.push_back((now, json));
            while queue.len() > self.settings.offline_queue_max_messages {
                queue.pop_front();
            }
        }
        Ok(stored)
    }

    async fn offline(&self, user: &UserId) -> EngineResult<Vec<ByteString>> {
        let dms = lock(&self.dms);
        let now = Instant::now();
        let ttl = self.settings.offline_ttl;
        Ok(dms
            .offline
            .get(user)
            .map(|queue| {
                queue
                    .iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) < ttl)
                    .map(|(_, json)| json.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn ack_offline(&self, user: &UserId, delivered: Vec<ByteString>) -> EngineResult<()> {
        let mut dms = lock(&self.dms);
        if let Some(queue) = dms.offline.get_mut(user) {
            for json in &delivered {
                if let Some(at) = queue.iter().position(|(_, queued)| queued == json) {
                    queue.remove(at);
                }
            }
            if queue.is_empty() {
                dms.offline.remove(user);
            }
        }
        Ok(())
    }
}
