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
//!   [`Page`], [`RoomDraft`], [`Outcome`], [`DmDraft`], [`Cursor`],
//!   [`Summary`], [`Publisher`]).
//!
//! Read state lives here too: each user's cursor per room and conversation,
//! and each room's index of messages by author, so that unread counts are a
//! few counts rather than a scan of the history.
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

use chat_shared::protocol::{ClientId, RoomEventKind, RoomName, StoredMessage, Thread, UserId, UserRef};

pub use chat_shared::protocol::MAX_EMOJI_PER_MESSAGE;
use chat_shared::BackendResult;

pub use memory::MemoryStore;
pub use redis::{RedisStore, ReplicaWait};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// An event to store and publish in a room.
#[derive(Debug, Clone)]
pub struct RoomDraft {
    pub room: RoomName,
    pub from: UserRef,
    pub event: RoomEventKind,
    pub client_id: Option<ClientId>,
    /// A moderator's event (the operator API): an `edit` or `delete` of
    /// anyone's message, not only `from`'s own.
    pub moderator: bool,
}

impl RoomDraft {
    /// An event by `from`, who may edit or delete only their own messages.
    pub fn new(room: RoomName, from: UserRef, event: RoomEventKind, client_id: Option<ClientId>) -> RoomDraft {
        RoomDraft { room, from, event, client_id, moderator: false }
    }

    /// A plain `message`.
    pub fn message(room: RoomName, from: UserRef, text: impl Into<String>, client_id: Option<ClientId>) -> RoomDraft {
        RoomDraft::new(
            room,
            from,
            RoomEventKind::Message { text: text.into(), reply_to: None, attachments: Vec::new() },
            client_id,
        )
    }
}

/// What became of a [`RoomDraft`]. Only `Stored` stored anything; the
/// others are checked in the order the protocol answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and published (or a repeated `client_id`: the first one's result).
    Stored(Appended),
    /// The target (or `reply_to`) is not a message the history holds, or it
    /// was deleted.
    NotFound,
    /// An edit or delete by someone other than the message's author.
    NotAuthor,
    /// A new emoji on a message that holds [`MAX_EMOJI_PER_MESSAGE`] already.
    TooManyEmoji,
    /// A reaction the user already held (add) or did not hold (remove):
    /// nothing stored; `ts` is the store's time.
    Unchanged { ts: u64 },
}

/// A user's read cursor in a room or conversation: read up to `seq` of the
/// history named `epoch` (empty for conversations). Under another epoch it
/// counts as 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub seq: u64,
    pub epoch: String,
}

impl Cursor {
    /// An epoch that matches whatever epoch the room has: a summary at
    /// `seq` of the room's current history (what a `read` asks first).
    pub const ANY_EPOCH: &'static str = "*";
}

/// How [`HistoryStore::set_cursor`] moves a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorMove {
    /// Create it if the user has none there (a first join, a first DM).
    Create,
    /// Raise it to the given seq if that is higher (a `read`); creates it too.
    Raise,
}

/// A room or conversation as one reader sees it (from [`HistoryStore::summaries`]).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The latest seq.
    pub seq: u64,
    /// The room's epoch (empty for conversations, or a room with none yet).
    pub epoch: String,
    /// The reader's cursor: 0 under another epoch, never above `seq`.
    pub read_seq: u64,
    /// `message` (or `dm`) events above the cursor, not deleted, not the
    /// reader's own, among those the history holds.
    pub unread: u64,
    /// When the latest stored event was stored (none: no event held).
    pub last_ts: Option<u64>,
    /// The newest `message` (or `dm`) frame as the history holds it.
    pub last: Option<StoredMessage>,
}

/// The most cursors a user keeps: setting one more drops the one moved
/// least recently.
pub const MAX_CURSORS_PER_USER: usize = 1_000;

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
    /// Checks the event against the room's history (its target, its author,
    /// reactions held), then takes the room's next seq, stores it in the
    /// capped history and publishes it to the room, as one step; a `delete`
    /// scrubs its target's text from the message and its edits in the same
    /// step. A `client_id` seen from the same user in the same room within
    /// `history.idempotency_window_ms` returns the first result (of any
    /// kind) and stores and publishes nothing.
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Outcome>;

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

    /// Each thread's state for `reader` with the given cursor (a `Dm`
    /// thread is the reader's conversation with that user), in order. Rooms
    /// in different Redis Cluster slots are read in one pipelined round.
    async fn summaries(&self, reader: &UserId, threads: &[(Thread, Cursor)]) -> BackendResult<Vec<Summary>>;

    /// Creates or raises `user`'s cursor in `thread` (see [`CursorMove`]);
    /// returns the cursor after it and whether it changed. A cursor of
    /// another epoch counts as 0.
    async fn set_cursor(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)>;

    /// `user`'s cursors, the most recently set or moved first (at most
    /// [`MAX_CURSORS_PER_USER`]).
    async fn cursors(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>>;
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
