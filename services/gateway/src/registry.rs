//! The node registry: which local sessions are in which room, and which
//! belong to which user.
//!
//! It is the engine's [`Deliver`] sink: a frame that arrives on a room's or a
//! user's topic was serialised once, and the registry hands the same bytes to
//! every local recipient's [`Outbox`] (a refcount bump, no copy). All of it
//! happens under one short lock that is never held across an await.
//!
//! Gapless join: a session joining a room is added as `Joining` *before* its
//! history is read, so every frame published from then on is buffered; when
//! the `joined` reply is ready, [`Registry::complete_join`] queues it, then
//! the buffered frames whose seq is above the replayed seq, and from then on
//! a frame is delivered only if its seq is above the last one the session
//! got. The same buffering holds a new session's live DMs until its queued
//! offline DMs have been sent right after `welcome`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytestring::ByteString;

use chat_shared::protocol::{RoomName, StoredMessage, TypingState, UserId, UserRef};
use chat_shared::CloseCode;

use crate::engine::{BusMessage, Deliver, FramePayload, SessionId, Topic};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Push};

/// At most one relayed `typing start` per user and room in this interval.
pub const TYPING_RELAY_INTERVAL_MS: u64 = 1_000;
/// A `typing start` not followed by another start or a stop is ended after this long.
pub const TYPING_AUTO_STOP_MS: u64 = 5_000;

/// Frames held for a session until an earlier reply has gone out.
#[derive(Debug, Default)]
struct Pending {
    frames: Vec<(Option<u64>, &'static str, ByteString)>,
    bytes: usize,
}

#[derive(Debug)]
enum MemberState {
    /// History is being read; frames are held. `previous_seq` is set when the
    /// session was already in the room (a repeated join).
    Joining { pending: Pending, previous_seq: Option<u64> },
    /// Frames go straight out; `last_seq` is the newest seq the session got.
    Live { last_seq: u64 },
    /// Missed messages are being re-read after a lost subscription; frames
    /// are held until they have gone out.
    Resyncing { pending: Pending, last_seq: u64 },
}

#[derive(Debug)]
struct RoomMember {
    user: UserId,
    state: MemberState,
}

struct LocalSession {
    user: UserRef,
    outbox: Arc<Outbox>,
    /// DMs that arrived before the offline queue was flushed; `None` once live.
    pending_dms: Option<Pending>,
}

#[derive(Debug, Clone)]
struct TypingEntry {
    /// When a `start` was last relayed.
    last_relay: Instant,
    /// A `start` was relayed and no `stop` yet.
    active: bool,
    /// Bumped by every `start`; the auto-stop timer only fires for its own.
    generation: u64,
    /// The session whose `start` was relayed last (on another node: none
    /// of this node's sessions).
    session: SessionId,
}

/// The `state` of a relayed `typing` frame.
#[derive(serde::Deserialize)]
struct TypingProbe {
    state: TypingState,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, LocalSession>,
    rooms: HashMap<RoomName, HashMap<SessionId, RoomMember>>,
    users: HashMap<UserId, Vec<SessionId>>,
    typing: HashMap<(RoomName, UserId), TypingEntry>,
}

/// A decision on a `typing start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypingStart {
    /// Relay it (else it is inside the 1/s throttle).
    pub relay: bool,
    /// Pass to [`Registry::typing_expire`] after [`TYPING_AUTO_STOP_MS`].
    pub generation: u64,
}

/// Counts for `/v1/stats`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RegistryStats {
    pub connections: usize,
    pub users: usize,
    pub rooms: usize,
}

/// See the module documentation.
pub struct Registry {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    /// Bytes a session may have held in `Pending` buffers (its outbox limit).
    max_pending_bytes: usize,
    /// A gap in a room's seqs was seen: the engine should resync.
    gap_seen: AtomicBool,
}

impl Registry {
    pub fn new(metrics: Arc<Metrics>, max_pending_bytes: usize) -> Registry {
        Registry { inner: Mutex::new(Inner::default()), metrics, max_pending_bytes, gap_seen: AtomicBool::new(false) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation under this lock is a single insert or remove, so a
        // panic elsewhere cannot leave it half-done: keep using it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a session. Live DMs are held until [`Registry::complete_welcome`].
    pub fn register(&self, session: &SessionId, user: &UserRef, outbox: Arc<Outbox>) {
        let mut inner = self.lock();
        inner.sessions.insert(
            session.clone(),
            LocalSession { user: user.clone(), outbox, pending_dms: Some(Pending::default()) },
        );
        let sessions = inner.users.entry(user.id.clone()).or_default();
        sessions.push(session.clone());
        self.metrics.connections.set(inner.sessions.len() as i64);
    }

    /// Queues a batch of offline DMs; live DMs stay held.
    pub fn deliver_offline(&self, session: &SessionId, batch: &[ByteString]) {
        let inner = self.lock();
        if let Some(local) = inner.sessions.get(session) {
            for json in batch {
                self.push_counted(&local.outbox, "dm", json.clone());
            }
        }
    }

    /// Queues the live DMs held since `register`; later ones go straight out.
    pub fn complete_welcome(&self, session: &SessionId) {
        let mut inner = self.lock();
        let Some(local) = inner.sessions.get_mut(session) else {
            return;
        };
        let held = local.pending_dms.take().unwrap_or_default();
        for (_, kind, json) in held.frames {
            self.push_counted(&local.outbox, kind, json);
        }
    }

    /// Removes a session from every map.
    pub fn unregister(&self, session: &SessionId) {
        let mut inner = self.lock();
        let Some(local) = inner.sessions.remove(session) else {
            return;
        };
        let mut emptied = Vec::new();
        inner.rooms.retain(|room, members| {
            members.remove(session);
            if members.is_empty() {
                emptied.push(room.clone());
                false
            } else {
                true
            }
        });
        let typing_rooms = emptied.clone();
        inner.typing.retain(|(room, _), _| !typing_rooms.contains(room));
        if let Some(sessions) = inner.users.get_mut(&local.user.id) {
            sessions.retain(|s| s != session);
            if sessions.is_empty() {
                inner.users.remove(&local.user.id);
            }
        }
        self.metrics.connections.set(inner.sessions.len() as i64);
        self.metrics.rooms.set(inner.rooms.len() as i64);
    }

    /// Starts a join: frames for the room are held from now on.
    pub fn begin_join(&self, room: &RoomName, session: &SessionId, user: &UserId) {
        let mut inner = self.lock();
        let created = !inner.rooms.contains_key(room);
        let members = inner.rooms.entry(room.clone()).or_default();
        let previous_seq = match members.get(session).map(|m| &m.state) {
            Some(MemberState::Live { last_seq } | MemberState::Resyncing { last_seq, .. }) => Some(*last_seq),
            Some(MemberState::Joining { previous_seq, .. }) => *previous_seq,
            None => None,
        };
        members.insert(
            session.clone(),
            RoomMember {
                user: user.clone(),
                state: MemberState::Joining { pending: Pending::default(), previous_seq },
            },
        );
        if created {
            self.metrics.rooms.set(inner.rooms.len() as i64);
        }
    }

    /// Finishes a join: queues `joined`, then the held frames newer than
    /// `replayed_seq`, and makes the session live in the room. Returns false
    /// if the session is gone.
    pub fn complete_join(&self, room: &RoomName, session: &SessionId, joined: ByteString, replayed_seq: u64) -> bool {
        let mut inner = self.lock();
        let Inner { sessions, rooms, .. } = &mut *inner;
        let (Some(local), Some(member)) =
            (sessions.get(session), rooms.get_mut(room).and_then(|members| members.get_mut(session)))
        else {
            return false;
        };
        let pending = match &mut member.state {
            MemberState::Joining { pending, .. } | MemberState::Resyncing { pending, .. } => std::mem::take(pending),
            MemberState::Live { .. } => Pending::default(),
        };
        self.push_counted(&local.outbox, "joined", joined);
        member.state = self.release(&local.outbox, pending, replayed_seq);
        true
    }

    /// Undoes [`Registry::begin_join`] after a failure. A repeated join falls
    /// back to live delivery; a first join removes the session from the room.
    pub fn abort_join(&self, room: &RoomName, session: &SessionId) {
        let mut inner = self.lock();
        let Inner { sessions, rooms, .. } = &mut *inner;
        let Some(members) = rooms.get_mut(room) else {
            return;
        };
        if let Some(member) = members.get_mut(session) {
            if let MemberState::Joining { pending, previous_seq: Some(previous) } = &mut member.state {
                let (pending, previous) = (std::mem::take(pending), *previous);
                member.state = match sessions.get(session) {
                    Some(local) => self.release(&local.outbox, pending, previous),
                    None => MemberState::Live { last_seq: previous },
                };
                return;
            }
        }
        self.remove_member(&mut inner, room, session);
    }

    /// Queues held frames newer than `last_seq` (and those without a seq)
    /// and returns the member's next state: live, or still resyncing from
    /// the first gap in the seqs (which asks the engine for a resync).
    fn release(&self, outbox: &Outbox, pending: Pending, mut last_seq: u64) -> MemberState {
        let mut frames = pending.frames.into_iter();
        while let Some((seq, kind, json)) = frames.next() {
            match seq {
                Some(seq) if seq <= last_seq => continue,
                Some(seq) if seq > last_seq + 1 => {
                    let mut rest = Pending::default();
                    rest.frames.push((Some(seq), kind, json));
                    rest.frames.extend(frames);
                    rest.bytes = rest.frames.iter().map(|(_, _, json)| json.len()).sum();
                    self.gap_seen.store(true, Ordering::SeqCst);
                    return MemberState::Resyncing { pending: rest, last_seq };
                }
                Some(seq) => last_seq = seq,
                None => {}
            }
            self.push_counted(outbox, kind, json);
        }
        MemberState::Live { last_seq }
    }

    /// Removes the session from the room.
    pub fn leave(&self, room: &RoomName, session: &SessionId) {
        let mut inner = self.lock();
        self.remove_member(&mut inner, room, session);
    }

    fn remove_member(&self, inner: &mut Inner, room: &RoomName, session: &SessionId) {
        let Some(members) = inner.rooms.get_mut(room) else {
            return;
        };
        members.remove(session);
        if members.is_empty() {
            inner.rooms.remove(room);
            inner.typing.retain(|(r, _), _| r != room);
            self.metrics.rooms.set(inner.rooms.len() as i64);
        }
    }

    fn push_counted(&self, outbox: &Outbox, kind: &'static str, json: ByteString) -> bool {
        match outbox.push_text(json) {
            Push::Queued => {
                self.metrics.frames_out(kind, 1);
                true
            }
            Push::Overflowed => {
                self.metrics.slow_consumer_closes.inc();
                false
            }
            Push::Closed => false,
        }
    }

    /// Queues `frame` for a held session, or closes it with 4008 when the
    /// held bytes pass the limit.
    fn hold(&self, pending: &mut Pending, outbox: &Outbox, frame: &FramePayload) {
        if outbox.is_closing() {
            return;
        }
        pending.bytes += frame.json.len();
        if pending.bytes > self.max_pending_bytes {
            pending.frames.clear();
            pending.bytes = 0;
            if outbox.close_now(CloseCode::SlowConsumer, "slow consumer") {
                self.metrics.slow_consumer_closes.inc();
            }
            return;
        }
        pending.frames.push((frame.seq, frame.kind, frame.json.clone()));
    }

    /// Keeps this node's typing state in step with relays from every node
    /// (its own included): a relayed `start` counts against the throttle
    /// here too, and a relayed `stop` cancels this node's auto-stop timers
    /// for that user and room.
    fn observe_typing(inner: &mut Inner, room: &RoomName, frame: &FramePayload, now: Instant) {
        let (Some(user), Ok(probe)) = (&frame.skip_user, serde_json::from_str::<TypingProbe>(&frame.json)) else {
            return;
        };
        let key = (room.clone(), user.clone());
        match probe.state {
            TypingState::Start => match inner.typing.get_mut(&key) {
                Some(entry) => {
                    entry.last_relay = now;
                    entry.active = true;
                }
                None => {
                    let entry = TypingEntry { last_relay: now, active: true, generation: 0, session: Arc::from("") };
                    inner.typing.insert(key, entry);
                }
            },
            TypingState::Stop => {
                let local = inner.typing.get(&key).is_some_and(|entry| inner.sessions.contains_key(&entry.session));
                if local {
                    if let Some(entry) = inner.typing.get_mut(&key) {
                        entry.active = false;
                        entry.generation += 1;
                    }
                } else {
                    inner.typing.remove(&key);
                }
            }
        }
    }

    fn deliver_room(&self, inner: &mut Inner, room: &RoomName, frame: &FramePayload) -> usize {
        if frame.kind == "typing" && inner.rooms.contains_key(room) {
            Self::observe_typing(inner, room, frame, Instant::now());
        }
        let Inner { sessions, rooms, .. } = inner;
        let Some(members) = rooms.get_mut(room) else {
            return 0;
        };
        let mut queued = 0;
        for (session, member) in members.iter_mut() {
            if frame.skip_user.as_ref() == Some(&member.user) || frame.skip_session.as_ref() == Some(session) {
                continue;
            }
            let Some(local) = sessions.get(session) else {
                continue;
            };
            match &mut member.state {
                MemberState::Joining { pending, .. } | MemberState::Resyncing { pending, .. } => {
                    self.hold(pending, &local.outbox, frame)
                }
                MemberState::Live { last_seq } => {
                    if let Some(seq) = frame.seq {
                        if seq == 1 && *last_seq >= 1 {
                            // Seq 1 is published once per history: the room's
                            // history restarted (expired or lost; a new epoch).
                            *last_seq = 0;
                        }
                        if seq <= *last_seq {
                            continue;
                        }
                        if seq > *last_seq + 1 {
                            // Messages went missing on the way (a lagging or
                            // lost subscription): hold from here and re-read.
                            let mut pending = Pending::default();
                            self.hold(&mut pending, &local.outbox, frame);
                            member.state = MemberState::Resyncing { pending, last_seq: *last_seq };
                            self.gap_seen.store(true, Ordering::SeqCst);
                            continue;
                        }
                        *last_seq = seq;
                    }
                    match local.outbox.push_text(frame.json.clone()) {
                        Push::Queued => queued += 1,
                        Push::Overflowed => self.metrics.slow_consumer_closes.inc(),
                        Push::Closed => {}
                    }
                }
            }
        }
        queued
    }

    fn deliver_user(&self, inner: &mut Inner, user: &UserId, frame: &FramePayload) -> usize {
        let Inner { sessions, users, .. } = inner;
        let Some(ids) = users.get(user) else { return 0 };
        let mut reached = 0;
        for session in ids {
            if frame.skip_session.as_ref() == Some(session) {
                continue;
            }
            let Some(local) = sessions.get_mut(session) else {
                continue;
            };
            reached += 1;
            match &mut local.pending_dms {
                Some(pending) => self.hold(pending, &local.outbox, frame),
                None => match local.outbox.push_text(frame.json.clone()) {
                    Push::Queued => self.metrics.frames_out(frame.kind, 1),
                    Push::Overflowed => self.metrics.slow_consumer_closes.inc(),
                    Push::Closed => {}
                },
            }
        }
        reached
    }

    /// Closes every session of `user` on this node; returns how many.
    pub fn close_user(&self, user: &UserId, code: CloseCode, reason: &'static str) -> usize {
        let inner = self.lock();
        let Some(ids) = inner.users.get(user) else {
            return 0;
        };
        ids.iter().filter_map(|id| inner.sessions.get(id)).filter(|local| local.outbox.close(code, reason)).count()
    }

    /// Closes every session on this node after what is queued (drain).
    pub fn close_all(&self, code: CloseCode, reason: &'static str) -> usize {
        let inner = self.lock();
        inner.sessions.values().filter(|local| local.outbox.close(code, reason)).count()
    }

    /// Open local sessions.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn stats(&self) -> RegistryStats {
        let inner = self.lock();
        RegistryStats { connections: inner.sessions.len(), users: inner.users.len(), rooms: inner.rooms.len() }
    }

    /// Records a `typing start` from `session` (see [`TypingStart`]).
    pub fn typing_start(&self, room: &RoomName, user: &UserId, session: &SessionId, now: Instant) -> TypingStart {
        let mut inner = self.lock();
        let interval = Duration::from_millis(TYPING_RELAY_INTERVAL_MS);
        let key = (room.clone(), user.clone());
        match inner.typing.get_mut(&key) {
            Some(entry) => {
                entry.generation += 1;
                // One relayed start per second, stops in between or not.
                let relay = now.saturating_duration_since(entry.last_relay) >= interval;
                if relay {
                    entry.last_relay = now;
                    entry.active = true;
                    entry.session = session.clone();
                }
                TypingStart { relay, generation: entry.generation }
            }
            None => {
                inner.typing.insert(
                    key,
                    TypingEntry { last_relay: now, active: true, generation: 1, session: session.clone() },
                );
                TypingStart { relay: true, generation: 1 }
            }
        }
    }

    /// Records a `typing stop`; true when it must be relayed (a start was).
    pub fn typing_stop(&self, room: &RoomName, user: &UserId) -> bool {
        let mut inner = self.lock();
        match inner.typing.get_mut(&(room.clone(), user.clone())) {
            Some(entry) if entry.active => {
                entry.active = false;
                entry.generation += 1;
                true
            }
            _ => false,
        }
    }

    /// The auto-stop timer of `generation` fired; true when a `stop` must be relayed.
    pub fn typing_expire(&self, room: &RoomName, user: &UserId, generation: u64) -> bool {
        let mut inner = self.lock();
        match inner.typing.get_mut(&(room.clone(), user.clone())) {
            Some(entry) if entry.active && entry.generation == generation => {
                entry.active = false;
                true
            }
            _ => false,
        }
    }

    /// The session left the room; true when its user's relayed `start` must
    /// be ended with a `stop`.
    pub fn typing_session_left(&self, room: &RoomName, user: &UserId, session: &SessionId) -> bool {
        let mut inner = self.lock();
        let key = (room.clone(), user.clone());
        match inner.typing.get(&key) {
            Some(entry) if &entry.session == session => {
                let active = entry.active;
                inner.typing.remove(&key);
                active
            }
            _ => false,
        }
    }
}

impl Deliver for Registry {
    fn take_gap(&self) -> bool {
        self.gap_seen.swap(false, Ordering::SeqCst)
    }

    fn begin_resync(&self) -> Vec<(RoomName, u64)> {
        let mut inner = self.lock();
        let mut rooms = Vec::new();
        for (room, members) in inner.rooms.iter_mut() {
            let mut lowest = None;
            for member in members.values_mut() {
                let last_seq = match member.state {
                    MemberState::Live { last_seq } => {
                        member.state = MemberState::Resyncing { pending: Pending::default(), last_seq };
                        last_seq
                    }
                    MemberState::Resyncing { last_seq, .. } => last_seq,
                    MemberState::Joining { .. } => continue,
                };
                lowest = Some(lowest.map_or(last_seq, |l: u64| l.min(last_seq)));
            }
            if let Some(lowest) = lowest {
                rooms.push((room.clone(), lowest));
            }
        }
        rooms
    }

    fn complete_resync(&self, room: &RoomName, latest_seq: u64, missed: Vec<StoredMessage>) {
        let missed: Vec<(u64, ByteString)> =
            missed.into_iter().map(|m| (m.seq, ByteString::from(m.json.get().to_owned()))).collect();
        let mut inner = self.lock();
        let Inner { sessions, rooms, .. } = &mut *inner;
        let Some(members) = rooms.get_mut(room) else { return };
        for (session, member) in members.iter_mut() {
            let MemberState::Resyncing { pending, last_seq } = &mut member.state else { continue };
            // A room whose seq went back lost its history (a new epoch):
            // continue live from the new seqs.
            let (pending, mut last) = (std::mem::take(pending), (*last_seq).min(latest_seq));
            let Some(local) = sessions.get(session) else { continue };
            for (seq, json) in &missed {
                if *seq == last + 1 {
                    self.push_counted(&local.outbox, "message", json.clone());
                    last = *seq;
                }
            }
            member.state = self.release(&local.outbox, pending, last);
        }
    }

    fn deliver(&self, topic: &Topic, msg: &BusMessage) -> usize {
        let started = Instant::now();
        let mut inner = self.lock();
        let reached = match (topic, msg) {
            (Topic::Room(room), BusMessage::Frame(frame)) => {
                let n = self.deliver_room(&mut inner, room, frame);
                self.metrics.frames_out(frame.kind, n);
                n
            }
            (Topic::User(user), BusMessage::Frame(frame)) => self.deliver_user(&mut inner, user, frame),
            (Topic::Broadcast, BusMessage::Frame(frame)) => {
                let mut n = 0;
                for local in inner.sessions.values() {
                    if local.outbox.push_text(frame.json.clone()) == Push::Queued {
                        n += 1;
                    }
                }
                self.metrics.frames_out(frame.kind, n);
                n
            }
            (_, BusMessage::Disconnect { user }) => {
                drop(inner);
                return self.close_user(user, CloseCode::Policy, "disconnected by an operator");
            }
            (Topic::Control, BusMessage::Frame(_)) => 0,
        };
        drop(inner);
        self.metrics.fanout_seconds.observe(started.elapsed().as_secs_f64());
        reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::protocol::DisplayName;

    fn room() -> RoomName {
        RoomName::parse("r").unwrap()
    }

    fn user(id: &str) -> UserRef {
        UserRef { id: UserId::parse(id).unwrap(), name: DisplayName::parse(id).unwrap() }
    }

    fn message(seq: u64) -> BusMessage {
        BusMessage::Frame(FramePayload {
            kind: "message",
            seq: Some(seq),
            skip_user: None,
            skip_session: None,
            json: ByteString::from(format!("m{seq}")),
        })
    }

    fn stored(seq: u64) -> StoredMessage {
        StoredMessage { seq, json: Arc::from(serde_json::value::RawValue::from_string(format!("\"m{seq}\"")).unwrap()) }
    }

    /// A registry with one session joining room "r".
    fn joining_session() -> (Registry, Arc<Outbox>, SessionId) {
        let registry = Registry::new(Arc::new(Metrics::new().unwrap()), 1 << 20);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let session: SessionId = Arc::from("s1");
        registry.register(&session, &user("u1"), outbox.clone());
        registry.complete_welcome(&session);
        registry.begin_join(&room(), &session, &UserId::parse("u1").unwrap());
        (registry, outbox, session)
    }

    /// A registry with one live session in room "r" that has seen seq 0.
    fn live_session() -> (Registry, Arc<Outbox>, SessionId) {
        let (registry, outbox, session) = joining_session();
        assert!(registry.complete_join(&room(), &session, ByteString::from("joined"), 0));
        (registry, outbox, session)
    }

    fn drain(outbox: &Outbox) -> Vec<String> {
        outbox.drain_texts()
    }

    #[test]
    fn live_delivery_drops_duplicates_and_old_seqs() {
        let (registry, outbox, _) = live_session();
        for seq in [1, 2, 3, 3, 2, 4] {
            registry.deliver(&Topic::Room(room()), &message(seq));
        }
        assert_eq!(drain(&outbox), ["joined", "m1", "m2", "m3", "m4"]);
        assert!(!registry.take_gap());
    }

    #[test]
    fn seq_1_after_a_higher_seq_starts_a_new_history() {
        // Seq 1 is published once per history: seen again, the room's history
        // expired or was lost, and the new one is delivered from its start.
        let (registry, outbox, _) = live_session();
        for seq in [1, 2, 3, 1, 2] {
            registry.deliver(&Topic::Room(room()), &message(seq));
        }
        assert_eq!(drain(&outbox), ["joined", "m1", "m2", "m3", "m1", "m2"]);
        assert!(!registry.take_gap());
    }

    #[test]
    fn a_gap_holds_delivery_until_a_resync_fills_it() {
        let (registry, outbox, _) = live_session();
        registry.deliver(&Topic::Room(room()), &message(1));
        registry.deliver(&Topic::Room(room()), &message(4));
        registry.deliver(&Topic::Room(room()), &message(5));
        assert_eq!(drain(&outbox), ["joined", "m1"], "4 and 5 wait for 2 and 3");
        assert!(registry.take_gap(), "the gap asks for a resync");
        assert_eq!(registry.begin_resync(), vec![(room(), 1)]);
        registry.complete_resync(&room(), 5, vec![stored(2), stored(3), stored(4)]);
        assert_eq!(drain(&outbox), ["\"m2\"", "\"m3\"", "\"m4\"", "m5"]);
        registry.deliver(&Topic::Room(room()), &message(6));
        assert_eq!(drain(&outbox), ["m6"], "live again");
    }

    #[test]
    fn a_resync_that_still_leaves_a_gap_keeps_holding() {
        let (registry, outbox, _) = live_session();
        registry.deliver(&Topic::Room(room()), &message(3));
        assert!(registry.take_gap());
        registry.begin_resync();
        // The re-read found only 1; 2 is still missing before the held 3.
        registry.complete_resync(&room(), 3, vec![stored(1)]);
        assert_eq!(drain(&outbox), ["joined", "\"m1\""]);
        assert!(registry.take_gap(), "another resync is requested");
        registry.begin_resync();
        registry.complete_resync(&room(), 3, vec![stored(2), stored(3)]);
        assert_eq!(drain(&outbox), ["\"m2\"", "\"m3\""], "the held copy of 3 is not sent twice");
    }

    #[test]
    fn a_room_whose_seq_went_back_continues_from_the_new_seqs() {
        let (registry, outbox, _) = live_session();
        for seq in 1..=3 {
            registry.deliver(&Topic::Room(room()), &message(seq));
        }
        drain(&outbox);
        registry.begin_resync();
        // Redis lost its data: the room's seq is 1 now.
        registry.complete_resync(&room(), 1, vec![stored(1)]);
        registry.deliver(&Topic::Room(room()), &message(2));
        assert_eq!(drain(&outbox), ["m2"]);
    }

    #[test]
    fn frames_during_a_join_wait_for_joined() {
        let (registry, outbox, session) = joining_session();
        for seq in [5, 6, 7] {
            registry.deliver(&Topic::Room(room()), &message(seq));
        }
        assert!(drain(&outbox).is_empty());
        // History was read at seq 6: only 7 is new.
        registry.complete_join(&room(), &session, ByteString::from("joined"), 6);
        assert_eq!(drain(&outbox), ["joined", "m7"]);
    }

    #[test]
    fn typing_start_is_relayed_once_a_second_stops_or_not() {
        let registry = Registry::new(Arc::new(Metrics::new().unwrap()), 1 << 20);
        let (r, u, s): (RoomName, UserId, SessionId) = (room(), UserId::parse("u").unwrap(), Arc::from("s"));
        let t0 = Instant::now();
        assert!(registry.typing_start(&r, &u, &s, t0).relay);
        assert!(registry.typing_stop(&r, &u));
        assert!(!registry.typing_start(&r, &u, &s, t0 + Duration::from_millis(500)).relay);
        assert!(!registry.typing_stop(&r, &u), "nothing relayed to stop");
        let later = registry.typing_start(&r, &u, &s, t0 + Duration::from_millis(1_000));
        assert!(later.relay);
        assert!(!registry.typing_expire(&r, &u, later.generation - 1), "an older timer does nothing");
        assert!(registry.typing_expire(&r, &u, later.generation));
    }
}
