//! [`MemoryStore`]: room and conversation history in this process's memory,
//! for a gateway with nothing else to run. It keeps the same contract as
//! [`crate::RedisStore`] (the conformance suite runs against both).
//!
//! Each room's log sits behind its own lock, and an event is given its seq,
//! stored and handed to the [`Publisher`] under that lock, so history and
//! live delivery share one order. History is lost when the process stops; a
//! new process names its histories with new epochs. A room or conversation
//! with no new event for the retention starts afresh under a new epoch, and
//! is dropped from memory by a sweep every [`SWEEP_EVERY_APPENDS`] appends.
//! Only appends create a log: reading a room that has none creates nothing,
//! so reads of any number of names cannot grow memory.
//!
//! Time is `tokio::time::Instant`, so tests can pause and advance it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytestring::ByteString;
use serde_json::value::RawValue;
use tokio::time::Instant;

use chat_shared::protocol::{ClientId, DirectMessage, RoomMessage, RoomName, ServerFrame, StoredMessage, UserId};
use chat_shared::settings::{DmSettings, HistorySettings};
use chat_shared::{BackendError, BackendResult};

use crate::{new_epoch, Appended, DmDraft, HistoryStore, Page, Publisher, RoomDraft, Window};

/// Most `client_id`s remembered per room or conversation; the oldest go first.
pub const MAX_IDEMPOTENCY_KEYS_PER_LOG: usize = 10_000;

/// How many appends pass between two sweeps of expired logs and queues.
pub const SWEEP_EVERY_APPENDS: u64 = 1_024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here finishes its mutation before anything can
    // panic, so a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch (the events' `ts`).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Remembers recent `client_id`s of one room or conversation.
#[derive(Default)]
struct Idempotency {
    results: HashMap<(UserId, ClientId), Appended>,
    /// Insertion order, for expiry.
    order: VecDeque<(Instant, (UserId, ClientId))>,
}

impl Idempotency {
    fn get(&mut self, key: &(UserId, ClientId), now: Instant, window: Duration) -> Option<Appended> {
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

    fn insert(&mut self, key: (UserId, ClientId), appended: Appended, now: Instant) {
        self.order.push_back((now, key.clone()));
        self.results.insert(key, appended);
    }
}

/// One room's or conversation's capped log.
struct Log {
    seq: u64,
    /// Oldest first; consecutive seqs ending at `seq`.
    events: VecDeque<StoredMessage>,
    recent: Idempotency,
    /// Names this log; a new log (after expiry) gets a new one. Empty for
    /// conversations.
    epoch: String,
    /// The last append, or the creation.
    touched: Instant,
}

impl Log {
    fn new(epoch: String, now: Instant) -> Log {
        Log { seq: 0, events: VecDeque::new(), recent: Idempotency::default(), epoch, touched: now }
    }

    fn expired(&self, now: Instant, retention: Duration) -> bool {
        now.saturating_duration_since(self.touched) > retention
    }

    /// The result of an earlier event with the same `(user, client_id)`.
    fn seen(&mut self, key: &Option<(UserId, ClientId)>, now: Instant, window: Duration) -> Option<Appended> {
        key.as_ref().and_then(|key| self.recent.get(key, now, window))
    }

    /// Stores `frame` (carrying the log's next seq) in the capped log and
    /// returns its JSON, serialised once for history and live delivery.
    fn store(&mut self, frame: &ServerFrame, cap: usize, now: Instant) -> BackendResult<ByteString> {
        let raw: Arc<RawValue> =
            Arc::from(serde_json::value::to_raw_value(frame).map_err(|err| BackendError::serialisation(&err))?);
        let json = ByteString::from(raw.get().to_owned());
        self.seq += 1;
        self.touched = now;
        self.events.push_back(StoredMessage { seq: self.seq, json: raw });
        while self.events.len() > cap {
            self.events.pop_front();
        }
        Ok(json)
    }

    fn remember(&mut self, key: Option<(UserId, ClientId)>, appended: Appended, now: Instant) {
        if let Some(key) = key {
            self.recent.insert(key, appended, now);
        }
    }

    /// The events of `window` (at most `cap`), as the Redis `READ` script
    /// picks them.
    fn read(&self, window: Window, cap: usize) -> Vec<StoredMessage> {
        let limit = window.limit.min(cap);
        let first = self.seq + 1 - self.events.len() as u64;
        let low = window.after.map_or(first, |after| first.max(after.saturating_add(1)));
        let high = window.before.map_or(self.seq, |before| self.seq.min(before.saturating_sub(1)));
        if limit == 0 || high < low {
            return Vec::new();
        }
        let (from, to) = if window.after.is_some() {
            (low, high.min(low + limit as u64 - 1))
        } else {
            (low.max(high.saturating_sub(limit as u64 - 1)), high)
        };
        let skip = (from - first) as usize;
        self.events.iter().skip(skip).take((to - from + 1) as usize).cloned().collect()
    }

    fn page(&self, window: Window, cap: usize) -> Page {
        Page { seq: self.seq, epoch: self.epoch.clone(), messages: self.read(window, cap) }
    }
}

#[derive(Default)]
struct Dms {
    /// (smaller user id, larger user id) → conversation log
    conversations: HashMap<(UserId, UserId), Log>,
    /// recipient → (queued at, `dm` frame), oldest first
    offline: HashMap<UserId, VecDeque<(Instant, ByteString)>>,
}

fn pair(a: &UserId, b: &UserId) -> (UserId, UserId) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// See the module documentation.
pub struct MemoryStore {
    publisher: Arc<dyn Publisher>,
    /// Appends since start, for the periodic sweep.
    appends: std::sync::atomic::AtomicU64,
    /// The epoch of rooms with no log: a room's first log takes it, so a
    /// client that joined the empty room resumes in the same history. A sweep
    /// that drops logs changes it, so a room that comes back after being
    /// dropped never reuses its old epoch.
    fresh_epoch: Mutex<String>,
    rooms: Mutex<HashMap<RoomName, Arc<Mutex<Log>>>>,
    dms: Mutex<Dms>,
    history: HistorySettings,
    dm: DmSettings,
}

impl MemoryStore {
    /// A store keeping what `history` and `dm` say, publishing to `publisher`.
    pub fn new(publisher: Arc<dyn Publisher>, history: HistorySettings, dm: DmSettings) -> MemoryStore {
        MemoryStore {
            publisher,
            appends: std::sync::atomic::AtomicU64::new(0),
            fresh_epoch: Mutex::new(new_epoch()),
            rooms: Mutex::default(),
            dms: Mutex::default(),
            history,
            dm,
        }
    }

    /// The room's log, if it has one; one that expired is replaced by an
    /// empty log under a new epoch.
    fn read_log(&self, room: &RoomName, now: Instant) -> Option<Arc<Mutex<Log>>> {
        let mut rooms = lock(&self.rooms);
        let log = rooms.get(room)?;
        if !lock(log).expired(now, self.history.retention()) {
            return Some(log.clone());
        }
        let fresh = Arc::new(Mutex::new(Log::new(new_epoch(), now)));
        rooms.insert(room.clone(), fresh.clone());
        Some(fresh)
    }

    /// The room's log for an append, created (under the fresh epoch) if the
    /// room has none.
    fn append_log(&self, room: &RoomName, now: Instant) -> Arc<Mutex<Log>> {
        if let Some(log) = self.read_log(room, now) {
            return log;
        }
        let epoch = lock(&self.fresh_epoch).clone();
        let mut rooms = lock(&self.rooms);
        rooms.entry(room.clone()).or_insert_with(|| Arc::new(Mutex::new(Log::new(epoch, now)))).clone()
    }

    /// Every [`SWEEP_EVERY_APPENDS`] appends: drops expired logs and queued DMs.
    fn maybe_sweep(&self, now: Instant) {
        use std::sync::atomic::Ordering;
        if self.appends.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_APPENDS != SWEEP_EVERY_APPENDS - 1 {
            return;
        }
        let retention = self.history.retention();
        let mut rooms = lock(&self.rooms);
        let before = rooms.len();
        rooms.retain(|_, log| !lock(log).expired(now, retention));
        if rooms.len() < before {
            *lock(&self.fresh_epoch) = new_epoch();
        }
        drop(rooms);
        let mut dms = lock(&self.dms);
        dms.conversations.retain(|_, log| !log.expired(now, retention));
        let ttl = self.dm.offline_ttl();
        dms.offline.retain(|_, queue| {
            queue.retain(|(at, _)| now.saturating_duration_since(*at) < ttl);
            !queue.is_empty()
        });
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Appended> {
        let now = Instant::now();
        self.maybe_sweep(now);
        let log = self.append_log(&draft.room, now);
        let mut log = lock(&log);
        let key = draft.client_id.clone().map(|c| (draft.from.id.clone(), c));
        if let Some(appended) = log.seen(&key, now, self.history.idempotency_window()) {
            return Ok(appended);
        }
        let ts = now_ms();
        let room = draft.room.clone();
        let frame = ServerFrame::Message(RoomMessage {
            room: draft.room,
            seq: log.seq + 1,
            from: draft.from,
            text: draft.text,
            ts,
            client_id: draft.client_id,
        });
        let json = log.store(&frame, self.history.size, now)?;
        let appended = Appended { seq: log.seq, ts, delivered: true };
        log.remember(key, appended, now);
        self.publisher.room_event(&room, "message", appended.seq, &json);
        Ok(appended)
    }

    async fn read_room(&self, room: &RoomName, window: Window) -> BackendResult<Page> {
        match self.read_log(room, Instant::now()) {
            Some(log) => Ok(lock(&log).page(window, self.history.size)),
            None => Ok(Page { seq: 0, epoch: lock(&self.fresh_epoch).clone(), messages: Vec::new() }),
        }
    }

    async fn append_dm(&self, draft: DmDraft) -> BackendResult<Appended> {
        let now = Instant::now();
        self.maybe_sweep(now);
        let mut dms = lock(&self.dms);
        let retention = self.history.retention();
        let log =
            dms.conversations.entry(pair(&draft.from.id, &draft.to)).or_insert_with(|| Log::new(String::new(), now));
        if log.expired(now, retention) {
            *log = Log::new(String::new(), now);
        }
        let key = draft.client_id.clone().map(|c| (draft.from.id.clone(), c));
        if let Some(appended) = log.seen(&key, now, self.history.idempotency_window()) {
            return Ok(appended);
        }
        let ts = now_ms();
        let (from, to) = (draft.from.id.clone(), draft.to.clone());
        let frame = ServerFrame::Dm(DirectMessage {
            from: draft.from,
            to: draft.to,
            text: draft.text,
            ts,
            seq: log.seq + 1,
            client_id: draft.client_id,
        });
        let json = log.store(&frame, self.history.size, now)?;
        let seq = log.seq;
        let delivered = self.publisher.dm(&from, &to, seq, &json, &draft.origin);
        let appended = Appended { seq, ts, delivered };
        log.remember(key, appended, now);
        if !delivered {
            let queue = dms.offline.entry(to).or_default();
            queue.push_back((now, json));
            while queue.len() > self.dm.offline_queue_max_messages {
                queue.pop_front();
            }
        }
        Ok(appended)
    }

    async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> BackendResult<Page> {
        let dms = lock(&self.dms);
        let now = Instant::now();
        match dms.conversations.get(&pair(a, b)).filter(|log| !log.expired(now, self.history.retention())) {
            Some(log) => Ok(log.page(window, self.history.size)),
            None => Ok(Page { seq: 0, epoch: String::new(), messages: Vec::new() }),
        }
    }

    async fn offline(&self, user: &UserId) -> BackendResult<Vec<ByteString>> {
        let dms = lock(&self.dms);
        let now = Instant::now();
        let ttl = self.dm.offline_ttl();
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

    async fn ack_offline(&self, user: &UserId, delivered: &[ByteString]) -> BackendResult<u64> {
        let mut dms = lock(&self.dms);
        let Some(queue) = dms.offline.get_mut(user) else { return Ok(0) };
        let mut removed = 0;
        for json in delivered {
            if let Some(at) = queue.iter().position(|(_, queued)| queued == json) {
                queue.remove(at);
                removed += 1;
            }
        }
        if queue.is_empty() {
            dms.offline.remove(user);
        }
        Ok(removed)
    }
}
