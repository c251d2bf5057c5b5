//! The hub: this node's one record of its sessions and of which of them are
//! in which room, and the owner of each room's stream on this node.
//!
//! - **Membership has one home.** A session's rooms, a room's local members
//!   with their place in the room's stream ([`stream::Stream`]), a room's
//!   typing state and the node's subscriptions all live here, in maps split
//!   into shards ([`shards::Shards`]) so that one room's fan-out never waits
//!   for another's. Sessions are indexed under their user, so a DM touches
//!   one shard and unregistering a session walks only its own rooms.
//! - **Subscriptions follow membership.** A room's first local member
//!   subscribes the node to the room's topic, and the member that leaves it
//!   empty unsubscribes it; the same for a user's first and last session and
//!   the user's topic. Both happen under the shard's lock, so the bus sees
//!   them in the order they happened; the [`Bus`] itself keeps no counts.
//! - **One catch-up for join, resume and gap repair.** A joining member's
//!   frames are held until its history is read; a member that sees a gap in
//!   the seqs holds its frames and the room is queued, on a bounded channel,
//!   for the catch-up task ([`catch_up`]), which reads what was missed and
//!   hands it over through the same [`stream::Stream`] release.
//!
//! # The path of a room message, socket to socket
//!
//! 1. `session::WsSession` (`StreamHandler::handle`) reads the text frame;
//!    `session::dispatch` (`on_text`, `on_frame`) checks it; `session::rooms`
//!    (`WsSession::send`) asks the history store to append it.
//! 2. `engine::history::NodeHistory::append_room` → the store:
//!    - Redis engine: `history_store::RedisStore::append_room` runs the
//!      `APPEND_ROOM` script (seq, capped history, publish) on the room's
//!      shard; every subscribed node's `engine::redis::subscriber::receive`
//!      decodes it and calls [`Deliver::deliver`](crate::engine::Deliver::deliver);
//!    - embedded engine: `history_store::MemoryStore::append_room` stores it
//!      under the room's lock and calls `engine::memory::LocalPublisher`,
//!      which calls [`Deliver::deliver`](crate::engine::Deliver::deliver).
//! 3. `hub::fanout` ([`Deliver::deliver`](crate::engine::Deliver::deliver) → `Hub::deliver_room`): under the
//!    room's shard lock, [`stream::Stream::offer`] gives the same bytes to
//!    each local member's [`Outbox`] (a refcount bump, no copy), or holds
//!    them, or spots a gap (then `hub::catch_up` reads what was missed).
//! 4. the connection's task (`socket::conn`) writes the outbox to the socket.
//!
//! The sender's `ack` is queued in step 1 once the append returned.
//!
//! # Layout
//! - this file: the maps, membership (sessions, joins, leaves) and the
//!   subscription decisions;
//! - [`stream`]: one member's place in its room's stream;
//! - `fanout`: delivery of what arrives on the node's topics;
//! - [`catch_up`]: the catch-up channel and task;
//! - [`shards`]: the sharded maps.

pub mod catch_up;
mod fanout;
pub mod recent;
pub mod shards;
pub mod stream;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::mpsc;

use chat_shared::protocol::{RoomName, TypingState, UserId, UserRef};
use chat_shared::CloseCode;

use crate::engine::{BackendResult, Bus, Page, SessionId, Topic, Window};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::typing::{self, Typing};
use recent::Recent;
use shards::Shards;
use stream::{Caught, Held, Out, Stream};

/// Rooms that can wait on the catch-up channel at once; past it, the next
/// catch-up pass covers every room.
pub const CATCH_UP_QUEUE_ROOMS: usize = 4_096;

/// The node's subscription to a topic: resolves once delivery is in place;
/// every joiner of the room (or session of the user) awaits the same one.
pub type Subscription = Shared<BoxFuture<'static, BackendResult<()>>>;

/// A request for the catch-up task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// The room's catching-up members need a read.
    Room(RoomName),
    /// Delivery to this node may have missed anything (subscriptions
    /// restored after a reconnect, a lagging receiver): every room.
    EveryRoom,
}

/// One local session, under its user.
struct LocalSession {
    outbox: Arc<Outbox>,
    /// The rooms the session is in or joining.
    rooms: HashSet<RoomName>,
    /// DMs that arrived before the queued offline DMs went out; `None` once
    /// released.
    held_dms: Option<Held>,
}

/// A user with sessions on this node.
struct UserEntry {
    sessions: HashMap<SessionId, LocalSession>,
    subscription: Subscription,
}

/// A local member of a room.
struct Member {
    user: UserId,
    outbox: Arc<Outbox>,
    stream: Stream,
}

/// A room with local members.
struct Room {
    members: HashMap<SessionId, Member>,
    subscription: Subscription,
    typing: Typing,
    /// Already on the catch-up channel (queued once until the task takes it).
    catch_up_queued: bool,
    /// The room's latest events, for joins.
    recent: Recent,
}

/// What unregistering a session left to do.
#[derive(Debug, Default)]
pub struct Unregistered {
    /// The rooms it was in (or joining): their presence is to be cleared.
    pub rooms: Vec<RoomName>,
    /// Rooms where its user's typing must be ended with a relayed `stop`.
    pub typing_stopped: Vec<RoomName>,
}

/// Counts for `/v1/stats`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct HubStats {
    pub connections: usize,
    pub users: usize,
    pub rooms: usize,
}

/// The `state` of a relayed `typing` frame.
#[derive(serde::Deserialize)]
struct TypingProbe {
    state: TypingState,
}

/// See the module documentation.
pub struct Hub {
    users: Shards<UserId, UserEntry>,
    rooms: Shards<RoomName, Room>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    /// Bytes a session may have held while it waits (its outbox limit).
    max_held_bytes: usize,
    /// What each room's [`Recent`] holds.
    recent_limits: recent::Limits,
    catch_ups: mpsc::Sender<CatchUp>,
    /// A catch-up the channel could not take: the next pass covers every room.
    every_room_wanted: AtomicBool,
    sessions: AtomicUsize,
    user_count: AtomicUsize,
    room_count: AtomicUsize,
}

impl Hub {
    /// A hub over `bus`, and the receiving end of its catch-up channel (for
    /// [`catch_up::run`]).
    pub fn new(
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        max_held_bytes: usize,
        recent_limits: recent::Limits,
    ) -> (Arc<Hub>, mpsc::Receiver<CatchUp>) {
        let (catch_ups, receiver) = mpsc::channel(CATCH_UP_QUEUE_ROOMS);
        let hub = Hub {
            users: Shards::default(),
            rooms: Shards::default(),
            bus,
            metrics,
            max_held_bytes,
            recent_limits,
            catch_ups,
            every_room_wanted: AtomicBool::new(false),
            sessions: AtomicUsize::new(0),
            user_count: AtomicUsize::new(0),
            room_count: AtomicUsize::new(0),
        };
        (Arc::new(hub), receiver)
    }

    fn subscribe(&self, topic: Topic) -> Subscription {
        self.bus.subscribe(&topic).shared()
    }

    fn out<'a>(&'a self, outbox: &'a Outbox) -> Out<'a> {
        Out { outbox, metrics: &self.metrics }
    }

    /// Adds a session. Its user's DMs are held until
    /// [`Hub::release_held_dms`]. Returns the node's subscription to the
    /// user's topic (taken now if this is the user's first session here).
    pub fn register(&self, user: &UserRef, session: &SessionId, outbox: Arc<Outbox>) -> Subscription {
        let mut users = self.users.lock(&user.id);
        let entry = users.entry(user.id.clone()).or_insert_with(|| {
            self.user_count.fetch_add(1, Ordering::Relaxed);
            UserEntry { sessions: HashMap::new(), subscription: self.subscribe(Topic::User(user.id.clone())) }
        });
        let local = LocalSession { outbox, rooms: HashSet::new(), held_dms: Some(Held::default()) };
        entry.sessions.insert(session.clone(), local);
        let subscription = entry.subscription.clone();
        drop(users);
        let sessions = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.connections.set(sessions as i64);
        subscription
    }

    /// Removes a session from its rooms and its user; the node unsubscribes
    /// from what it leaves empty.
    pub fn unregister(&self, user: &UserId, session: &SessionId) -> Unregistered {
        let removed = {
            let mut users = self.users.lock(user);
            let Some(entry) = users.get_mut(user) else { return Unregistered::default() };
            let removed = entry.sessions.remove(session);
            if entry.sessions.is_empty() {
                users.remove(user);
                self.bus.unsubscribe(&Topic::User(user.clone()));
                self.user_count.fetch_sub(1, Ordering::Relaxed);
            }
            removed
        };
        let Some(local) = removed else { return Unregistered::default() };
        let sessions = self.sessions.fetch_sub(1, Ordering::Relaxed) - 1;
        self.metrics.connections.set(sessions as i64);
        let mut unregistered = Unregistered::default();
        for room in local.rooms {
            if self.remove_member(&room, user, session) {
                unregistered.typing_stopped.push(room.clone());
            }
            unregistered.rooms.push(room);
        }
        unregistered
    }

    /// Starts a join (or a repeated join): frames for the room are held from
    /// now on. Returns the node's subscription to the room (taken now if the
    /// session is the room's first local member), which the join awaits
    /// before it reads history, and the join's replay of `window` (of
    /// `epoch`) when the room's recent events cover it: the frames held from
    /// now on are exactly those after it. `None` if the session is gone.
    pub fn join(
        &self,
        user: &UserId,
        session: &SessionId,
        room: &RoomName,
        window: Window,
        epoch: Option<&str>,
    ) -> Option<(Subscription, Option<Page>)> {
        let outbox = {
            let mut users = self.users.lock(user);
            let local = users.get_mut(user)?.sessions.get_mut(session)?;
            local.rooms.insert(room.clone());
            local.outbox.clone()
        };
        let mut rooms = self.rooms.lock(room);
        let state = rooms.entry(room.clone()).or_insert_with(|| {
            let count = self.room_count.fetch_add(1, Ordering::Relaxed) + 1;
            self.metrics.rooms.set(count as i64);
            Room {
                members: HashMap::new(),
                subscription: self.subscribe(Topic::Room(room.clone())),
                typing: Typing::default(),
                catch_up_queued: false,
                recent: Recent::default(),
            }
        });
        let stream = Stream::joining(state.members.get(session).map(|member| &member.stream));
        state.members.insert(session.clone(), Member { user: user.clone(), outbox, stream });
        let replay = state.recent.replay(window, epoch, self.recent_limits);
        self.metrics.join_replays.with_label_values(&[if replay.is_some() { "cache" } else { "history" }]).inc();
        Some((state.subscription.clone(), replay))
    }

    /// Gives the room's recent events a join's history read (made after the
    /// node subscribed).
    pub fn seed_recent(&self, room: &RoomName, page: &Page) {
        if let Some(state) = self.rooms.lock(room).get_mut(room) {
            state.recent.seed(page, self.recent_limits);
        }
    }

    /// Ends a join: queues `joined` (whose history ends at `seq`), then the
    /// frames held meanwhile that are newer. False if the session is gone.
    pub fn complete_join(&self, room: &RoomName, session: &SessionId, joined: ByteString, seq: u64) -> bool {
        let mut rooms = self.rooms.lock(room);
        let Some(state) = rooms.get_mut(room) else { return false };
        let Some(member) = state.members.get_mut(session) else { return false };
        if member.stream.complete_join(self.out(&member.outbox), joined, seq) == Caught::Gap {
            self.queue_catch_up(room, state);
        }
        true
    }

    /// Undoes a failed join: a repeated join goes on live from what it had;
    /// a first join leaves the room (unsubscribing it if it is empty now).
    pub fn abort_join(&self, user: &UserId, session: &SessionId, room: &RoomName) {
        {
            let mut rooms = self.rooms.lock(room);
            let Some(state) = rooms.get_mut(room) else { return };
            let Some(member) = state.members.get_mut(session) else { return };
            if member.stream.abort_join(self.out(&member.outbox)) {
                if member.stream.catching_up_from().is_some() {
                    self.queue_catch_up(room, state);
                }
                return;
            }
        }
        self.leave(user, session, room);
    }

    /// Removes the session from the room; true when its user's relayed
    /// `typing start` must be ended with a `stop`.
    pub fn leave(&self, user: &UserId, session: &SessionId, room: &RoomName) -> bool {
        if let Some(local) = self.users.lock(user).get_mut(user).and_then(|entry| entry.sessions.get_mut(session)) {
            local.rooms.remove(room);
        }
        self.remove_member(room, user, session)
    }

    /// Removes a member from a room (and the room once empty); true when its
    /// user's typing must be stopped.
    fn remove_member(&self, room: &RoomName, user: &UserId, session: &SessionId) -> bool {
        let mut rooms = self.rooms.lock(room);
        let Some(state) = rooms.get_mut(room) else { return false };
        let typing = state.typing.session_left(user, session);
        state.members.remove(session);
        if state.members.is_empty() {
            rooms.remove(room);
            self.bus.unsubscribe(&Topic::Room(room.clone()));
            let count = self.room_count.fetch_sub(1, Ordering::Relaxed) - 1;
            self.metrics.rooms.set(count as i64);
        }
        typing
    }

    /// Whether the session has joined the room.
    pub fn is_member(&self, user: &UserId, session: &SessionId, room: &RoomName) -> bool {
        self.with_session(user, session, |local| local.rooms.contains(room)).unwrap_or(false)
    }

    /// How many rooms the session is in.
    pub fn room_count(&self, user: &UserId, session: &SessionId) -> usize {
        self.with_session(user, session, |local| local.rooms.len()).unwrap_or(0)
    }

    fn with_session<T>(&self, user: &UserId, session: &SessionId, f: impl FnOnce(&mut LocalSession) -> T) -> Option<T> {
        let mut users = self.users.lock(user);
        users.get_mut(user).and_then(|entry| entry.sessions.get_mut(session)).map(f)
    }

    /// Queues a batch of the user's offline DMs for the session, ahead of
    /// the live DMs it holds.
    pub fn deliver_offline(&self, user: &UserId, session: &SessionId, batch: &[ByteString]) {
        self.with_session(user, session, |local| {
            let out = self.out(&local.outbox);
            for json in batch {
                out.push("dm", json.clone());
            }
        });
    }

    /// Queues the live DMs held since [`Hub::register`]; later ones go
    /// straight out.
    pub fn release_held_dms(&self, user: &UserId, session: &SessionId) {
        self.with_session(user, session, |local| {
            let out = self.out(&local.outbox);
            for (_, kind, json) in local.held_dms.take().unwrap_or_default().into_frames() {
                out.push(kind, json);
            }
        });
    }

    /// A `typing start` from a member; `None` if it is not in the room.
    pub fn typing_start(
        &self,
        room: &RoomName,
        user: &UserId,
        session: &SessionId,
        now: Instant,
    ) -> Option<typing::Start> {
        let mut rooms = self.rooms.lock(room);
        let state = rooms.get_mut(room).filter(|state| state.members.contains_key(session))?;
        Some(state.typing.start(user, session, now))
    }

    /// A `typing stop`; true when it must be relayed.
    pub fn typing_stop(&self, room: &RoomName, user: &UserId) -> bool {
        self.rooms.lock(room).get_mut(room).is_some_and(|state| state.typing.stop(user))
    }

    /// The automatic stop of `generation` is due; true when it must be relayed.
    pub fn typing_expire(&self, room: &RoomName, user: &UserId, generation: u64) -> bool {
        self.rooms.lock(room).get_mut(room).is_some_and(|state| state.typing.expire(user, generation))
    }

    /// Closes every session of `user` on this node; returns how many.
    pub fn close_user(&self, user: &UserId, code: CloseCode, reason: &'static str) -> usize {
        let users = self.users.lock(user);
        users
            .get(user)
            .map_or(0, |entry| entry.sessions.values().filter(|local| local.outbox.close(code, reason)).count())
    }

    /// Closes every session on this node after what is queued (drain).
    pub fn close_all(&self, code: CloseCode, reason: &'static str) -> usize {
        let mut closed = 0;
        for users in self.users.each() {
            for entry in users.values() {
                closed += entry.sessions.values().filter(|local| local.outbox.close(code, reason)).count();
            }
        }
        closed
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            connections: self.sessions.load(Ordering::Relaxed),
            users: self.user_count.load(Ordering::Relaxed),
            rooms: self.room_count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
