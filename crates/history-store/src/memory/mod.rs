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

mod log;
mod read_state;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytestring::ByteString;
use tokio::time::Instant;

use chat_shared::protocol::{dm_prefix, event_prefix, RoomEventKind, RoomName, Thread, UserId};
use chat_shared::settings::{DmSettings, HistorySettings};
use chat_shared::BackendResult;

use crate::{
    new_epoch, Appended, Cursor, CursorMove, DmDraft, HistoryStore, Outcome, Page, Publisher, RoomDraft, Summary,
    Window,
};
use log::Log;
pub use log::MAX_IDEMPOTENCY_KEYS_PER_LOG;
use read_state::Cursors;

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
    cursors: Mutex<Cursors>,
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
            cursors: Mutex::default(),
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

    /// Every [`SWEEP_EVERY_APPENDS`] appends: drops expired logs, queued DMs and cursors.
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
        lock(&self.cursors).sweep(now, retention);
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
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Outcome> {
        let now = Instant::now();
        self.maybe_sweep(now);
        let log = self.append_log(&draft.room, now);
        let mut log = lock(&log);
        let key = draft.client_id.clone().map(|c| (draft.from.id.clone(), c));
        if let Some(appended) = log.seen(&key, now, self.history.idempotency_window()) {
            return Ok(Outcome::Stored(appended));
        }
        let ts = now_ms();
        if let Some(refused) = log.check(&draft.event, &draft.from.id, draft.moderator, ts) {
            return Ok(refused);
        }
        if let RoomEventKind::Delete { target } = draft.event {
            log.scrub(target)?;
        }
        let prefix = event_prefix(&draft.room, &draft.from, &draft.event, draft.client_id.as_ref());
        let author = matches!(draft.event, RoomEventKind::Message { .. }).then_some(&draft.from.id);
        let json = log.store(&prefix, author, ts, self.history.size, now)?;
        let appended = Appended { seq: log.seq, ts, delivered: true };
        log.remember(key, appended, now);
        self.publisher.room_event(&draft.room, draft.event.name(), appended.seq, &ByteString::from(json.get()));
        Ok(Outcome::Stored(appended))
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
        let prefix = dm_prefix(&draft.from, &draft.to, &draft.text, draft.client_id.as_ref());
        let json = ByteString::from(log.store(&prefix, Some(&from), ts, self.history.size, now)?.get());
        let seq = log.seq;
        let delivered = self.publisher.dm(&from, &to, seq, &json, &draft.origin);
        let appended = Appended { seq, ts, delivered };
        log.remember(key, appended, now);
        if !delivered {
            let queue = dms.offline.entry(to.clone()).or_default();
            queue.push_back((now, json));
            while queue.len() > self.dm.offline_queue_max_messages {
                queue.pop_front();
            }
        }
        drop(dms);
        let mut cursors = lock(&self.cursors);
        let retention = self.history.retention();
        cursors.set(&from, &Thread::Dm(to.clone()), Cursor::default(), CursorMove::Create, now, retention);
        cursors.set(&to, &Thread::Dm(from), Cursor::default(), CursorMove::Create, now, retention);
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

    async fn summaries(&self, reader: &UserId, threads: &[(Thread, Cursor)]) -> BackendResult<Vec<Summary>> {
        let now = Instant::now();
        let retention = self.history.retention();
        let mut summaries = Vec::with_capacity(threads.len());
        for (thread, cursor) in threads {
            let summary = match thread {
                Thread::Room(room) => match self.read_log(room, now) {
                    Some(log) => summarise(&lock(&log), reader, cursor, true),
                    None => Summary { epoch: lock(&self.fresh_epoch).clone(), ..Summary::default() },
                },
                Thread::Dm(other) => {
                    let dms = lock(&self.dms);
                    match dms.conversations.get(&pair(reader, other)).filter(|log| !log.expired(now, retention)) {
                        Some(log) => summarise(log, reader, cursor, false),
                        None => Summary::default(),
                    }
                }
            };
            summaries.push(summary);
        }
        Ok(summaries)
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)> {
        Ok(lock(&self.cursors).set(user, thread, to, how, Instant::now(), self.history.retention()))
    }

    async fn cursors(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        Ok(lock(&self.cursors).of(user, Instant::now(), self.history.retention()))
    }
}

/// A log as `reader` sees it with `cursor` (rooms: a cursor of another
/// epoch counts as 0).
fn summarise(log: &Log, reader: &UserId, cursor: &Cursor, room: bool) -> Summary {
    let other_epoch = cursor.epoch != Cursor::ANY_EPOCH && cursor.epoch != log.epoch;
    let read_seq = if room && other_epoch { 0 } else { cursor.seq.min(log.seq) };
    let (unread, last_ts, last) = log.unread(reader, read_seq);
    Summary { seq: log.seq, epoch: log.epoch.clone(), read_seq, unread, last_ts, last }
}
