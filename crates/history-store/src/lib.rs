//! The history of every room and DM conversation: one library for the
//! gateways (which append in their publish path and read for joins and
//! catch-ups) and the history service (which serves reads over HTTP).
//!
//! A room's history is an event log: each event gets the room's next seq, is
//! stored in a capped list (`history.size`) and published to the room, in
//! one step, so that history and live delivery share one order. A DM
//! conversation is the same with its own seq; a DM for a user with no
//! session is also queued until one of the user's connections confirms it.
//!
//! [`HistoryStore`] is that contract; it has two implementations, checked by
//! one conformance suite (`tests/conformance`):
//! - [`RedisStore`]: Lua scripts on a standalone Redis or a Redis Cluster
//!   (each room's keys and channel in one slot);
//! - [`MemoryStore`]: this process's memory, for a single gateway; it hands
//!   what it stores to a [`Publisher`].
//!
//! # Layout
//! - this file: the trait and the types it speaks ([`Appended`], [`Window`],
//!   [`Page`], [`RoomDraft`], [`DmDraft`], [`Publisher`]).
//! - [`keys`]: the Redis keyspace; [`redis`]: [`RedisStore`] and its scripts.
//! - [`memory`]: the in-memory store, [`MemoryStore`].
//! - [`api`]: the history service's HTTP query and reply shapes, shared by
//!   the service and the gateways' client.

pub mod api;
pub mod keys;
pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use chat_shared::protocol::{ClientId, RoomName, StoredMessage, UserId, UserRef};
use chat_shared::BackendResult;

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// A stored event's seq and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// Milliseconds since the Unix epoch, from the store's clock.
    pub ts: u64,
    /// For DMs: whether a session of the recipient got it (else it was queued).
    /// Always true for room events.
    pub delivered: bool,
}

/// Which events to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Only events with a seq above this; then the oldest `limit` of them.
    pub after: Option<u64>,
    /// Only events with a seq below this; without `after`, the newest `limit`.
    pub before: Option<u64>,
    /// At most this many (and never more than `history.size`).
    pub limit: usize,
}

impl Window {
    /// The newest `limit` events.
    pub fn latest(limit: usize) -> Window {
        Window { after: None, before: None, limit }
    }

    /// The oldest `limit` events above `seq`.
    pub fn after(seq: u64, limit: usize) -> Window {
        Window { after: Some(seq), before: None, limit }
    }
}

/// Events of one room or conversation as of one moment (also the body of
/// the history service's replies, see [`api`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    /// The latest seq (0: no event yet, or expired).
    pub seq: u64,
    /// Names the room's history; changes only when it was lost or expired
    /// (rooms only; empty for conversations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Oldest first, consecutive seqs.
    pub messages: Vec<StoredMessage>,
}

/// A message to store and publish in a room.
#[derive(Debug, Clone)]
pub struct RoomDraft {
    pub room: RoomName,
    pub from: UserRef,
    pub text: String,
    pub client_id: Option<ClientId>,
}

/// A direct message to store and deliver.
#[derive(Debug, Clone)]
pub struct DmDraft {
    pub from: UserRef,
    pub to: UserId,
    pub text: String,
    pub client_id: Option<ClientId>,
    /// The sending session: the sender's other sessions get a copy, it does not.
    pub origin: Arc<str>,
}

/// Room and DM-conversation history.
///
/// Every call may fail with a [`chat_shared::BackendError`]; a failed append
/// stored nothing unless the error is `Unavailable` (the backend may have
/// failed after storing: a client retries with the same `client_id`).
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Takes the room's next seq, stores the message in the capped history
    /// and publishes it to the room, as one step. A `client_id` seen from the
    /// same user in the same room within `history.idempotency_window_ms`
    /// returns the first result and stores and publishes nothing.
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Appended>;

    /// A window of the room's history, with its latest seq and epoch. A room
    /// read before its first message gets its epoch here, so that a client
    /// that joined it empty resumes in the same history.
    async fn read_room(&self, room: &RoomName, window: Window) -> BackendResult<Page>;

    /// Stores a DM in the pair's conversation (its own seq, same idempotency
    /// as rooms), delivers it to the recipient's sessions and the sender's
    /// other sessions, and queues it for the recipient when none got it.
    async fn append_dm(&self, draft: DmDraft) -> BackendResult<Appended>;

    /// A window of the conversation between `a` and `b` (in either order).
    async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> BackendResult<Page>;

    /// The DMs queued for `user`, oldest first, as `dm` frames. They stay
    /// queued until [`HistoryStore::ack_offline`], so a connection lost while
    /// delivering them loses none.
    async fn offline(&self, user: &UserId) -> BackendResult<Vec<ByteString>>;

    /// Removes DMs that reached a session of `user` from the queue (each once,
    /// wherever it is now); returns how many were removed.
    async fn ack_offline(&self, user: &UserId, delivered: &[ByteString]) -> BackendResult<u64>;
}

/// Where [`MemoryStore`] publishes what it stores, in the same step (the
/// Redis store publishes inside its scripts). Called under the room's or
/// conversation's lock, so calls for one room come in seq order; it must not
/// call back into the store.
pub trait Publisher: Send + Sync {
    /// A stored room event of `kind` (`message`, …) with its JSON.
    fn room_event(&self, room: &RoomName, kind: &'static str, seq: u64, json: &ByteString);

    /// A stored DM, for every session of `to` and every session of `from`
    /// but `origin`. Returns whether a session of `to` got it.
    fn dm(&self, from: &UserId, to: &UserId, seq: u64, json: &ByteString, origin: &str) -> bool;
}

/// A fresh random epoch.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
