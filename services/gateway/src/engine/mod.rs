//! The engine boundary: pub/sub bus, presence store and history store.
//!
//! Session code talks only to these traits, so the engine behind them can be
//! this process's memory ([`memory`]) or Redis, shared by every gateway. Every
//! call is async and fallible with a [`BackendError`] that says why
//! (unavailable, unreadable data, a bug); seqs are assigned by the store,
//! never by the caller. The history store is the `history-store` library's
//! [`HistoryStore`], seen through [`history::NodeHistory`].
//!
//! Delivery flows the other way: once started ([`Bus::start`]), an engine
//! hands every message that arrives on a topic this node is subscribed to to
//! the node's [`Deliver`] sink (the hub, `crate::hub`), which fans it out to
//! local sessions. Which topics the node is subscribed to is the hub's
//! decision; the bus only carries it out.

pub mod history;
pub mod memory;
pub mod redis;
pub mod single_flight;

use std::sync::Arc;

use async_trait::async_trait;
use bytestring::ByteString;
use futures_util::future::BoxFuture;

use chat_shared::protocol::{Member, RoomName, ServerFrame, UserId, UserRef, UserStatus};
pub use chat_shared::{BackendError, BackendResult};
pub use history_store::{
    Appended, Cursor, CursorMove, DmDraft, HistoryStore, Outcome, Page, RoomDraft, Summary, Window,
};

/// A node's id for one WebSocket connection, unique cluster-wide.
pub type SessionId = Arc<str>;

/// Where a message is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything about one room: messages, presence, typing.
    Room(RoomName),
    /// Direct messages to one user (every session of the user).
    User(UserId),
    /// Every session on every node (operator notices).
    Broadcast,
    /// Node-to-node commands (operator disconnects).
    Control,
}

/// What travels on a topic.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// A serialised server frame for the topic's sessions.
    Frame(FramePayload),
    /// Close every session of a user with 1008 (operator disconnect).
    Disconnect { user: UserId },
}

/// A server frame serialised once, with what a node needs to route it without
/// parsing it.
#[derive(Debug, Clone)]
pub struct FramePayload {
    /// The frame's `type`, for metrics.
    pub kind: &'static str,
    /// The room's (or conversation's) seq of a stored message: nodes drop
    /// anything not above what a session has seen.
    pub seq: Option<u64>,
    /// Not delivered to this user's sessions (presence and typing go to others).
    pub skip_user: Option<UserId>,
    /// Not delivered to this session (a DM's sender gets an `ack` instead).
    pub skip_session: Option<SessionId>,
    /// Delivered to this session only (a `signal` to one session).
    pub only_session: Option<SessionId>,
    /// The frame's JSON.
    pub json: ByteString,
}

impl BusMessage {
    /// A frame for every session of the topic, serialised once, here.
    pub fn frame(frame: &ServerFrame) -> BusMessage {
        BusMessage::Frame(FramePayload {
            kind: frame.kind(),
            seq: None,
            skip_user: None,
            skip_session: None,
            only_session: None,
            json: frame.to_json(),
        })
    }

    /// A stored DM (its conversation seq) for a user's sessions, except the
    /// session that sent it.
    pub fn dm(json: &ByteString, seq: u64, origin: &SessionId) -> BusMessage {
        BusMessage::Frame(FramePayload {
            kind: "dm",
            seq: Some(seq),
            skip_user: None,
            skip_session: Some(origin.clone()),
            only_session: None,
            json: json.clone(),
        })
    }

    /// A `signal` for a user's sessions: all but the sender's own, or only
    /// the one named.
    pub fn signal(frame: &ServerFrame, origin: &SessionId, only: Option<SessionId>) -> BusMessage {
        let mut msg = BusMessage::frame(frame);
        if let BusMessage::Frame(payload) = &mut msg {
            payload.skip_session = Some(origin.clone());
            payload.only_session = only;
        }
        msg
    }

    /// A frame for the topic's sessions of users other than `user`
    /// (presence and typing).
    pub fn for_others(frame: &ServerFrame, user: &UserId) -> BusMessage {
        let mut msg = BusMessage::frame(frame);
        if let BusMessage::Frame(payload) = &mut msg {
            payload.skip_user = Some(user.clone());
        }
        msg
    }
}

/// The node side of the bus: receives what arrives on subscribed topics.
pub trait Deliver: Send + Sync {
    /// Hands `msg` to the local sessions of `topic`; returns how many got it.
    fn deliver(&self, topic: &Topic, msg: &BusMessage) -> usize;

    /// Delivery may have missed messages (the subscriptions were restored
    /// after a lost connection, or the receiver lagged): every room catches
    /// up.
    fn missed(&self);
}

/// Pub/sub between nodes.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Starts handing what arrives on this node's topics to `sink`. Called
    /// once, before the node serves.
    fn start(&self, sink: Arc<dyn Deliver>);

    /// Subscribes this node to `topic`. The change is queued at once, in
    /// call order with [`Bus::unsubscribe`] (so an unsubscribe and a
    /// subscribe of one topic never swap); the future resolves when delivery
    /// of `topic` to this node is in place. Subscribing twice is harmless.
    fn subscribe(&self, topic: &Topic) -> BoxFuture<'static, BackendResult<()>>;

    /// Unsubscribes this node from `topic`, queued like [`Bus::subscribe`].
    fn unsubscribe(&self, topic: &Topic);

    /// Publishes to every node subscribed to `topic`; returns how many nodes
    /// it reached.
    async fn publish(&self, topic: &Topic, msg: BusMessage) -> BackendResult<usize>;

    /// Whether the backend is reachable and every subscription is in place
    /// (`/readyz`); the error says what is missing.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

/// One connection as the presence store sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session: SessionId,
    pub user: UserRef,
    /// The node holding the connection.
    pub node: Arc<str>,
    /// The client's address, for the per-IP limit.
    pub ip: Option<std::net::IpAddr>,
}

/// Whether a connection may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over `max_connections_per_user`.
    UserLimit,
    /// Over `max_connections_per_ip`.
    IpLimit,
}

/// Connection limits checked by [`PresenceStore::admit`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub per_user: u32,
    /// 0: no per-IP limit.
    pub per_ip: u32,
}

/// Who is connected and who is in which room.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Counts a new connection against the limits; on `Admitted` the caller
    /// must call [`PresenceStore::release`] when it closes.
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> BackendResult<Admission>;
    /// Forgets a connection counted by `admit`.
    async fn release(&self, session: &SessionInfo) -> BackendResult<()>;
    /// Records that the session is in the room; publishes `presence online`
    /// (with the user's `status`) to the room when it is the user's first
    /// session there.
    async fn join(&self, room: &RoomName, session: &SessionInfo, status: Option<&UserStatus>) -> BackendResult<()>;
    /// Records that the session left the room; publishes `presence offline`
    /// when it was the user's last session there.
    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()>;
    /// The room's online users, sorted by id, with the status each set.
    async fn members(&self, room: &RoomName) -> BackendResult<Vec<Member>>;
    /// Sets the user's status (cluster-wide; `None` clears it). It is
    /// cleared by itself when the user's last connection closes, before
    /// the `offline` presence goes out.
    async fn set_status(&self, user: &UserId, status: Option<&UserStatus>) -> BackendResult<()>;
    /// The user's status, if one is set.
    async fn status(&self, user: &UserId) -> BackendResult<Option<UserStatus>>;
    /// The user's connections, cluster-wide (what a `signal` reaches).
    async fn sessions_of(&self, user: &UserId) -> BackendResult<Vec<SessionId>>;
    /// The rooms where the user is online (has a session), cluster-wide.
    async fn rooms_of(&self, user: &UserId) -> BackendResult<Vec<RoomName>>;
    /// Removes a closed session from `rooms` (announcing `offline` where it
    /// was its user's last) and from its user's connection count. Unlike
    /// `leave`, it cannot be refused: when the backend is away the engine
    /// keeps it (bounded) and retries until it is done.
    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]);
    /// Takes one token from the user's rate of `per_second` frames, across
    /// all of the user's connections; `Some(ms)` when empty for that long.
    async fn take_user_token(&self, user: &UserId, per_second: u32) -> BackendResult<Option<u64>>;
    /// The node stops for good (after its drain): withdraw what announces it
    /// (its lease), so that nothing is left to sweep.
    async fn shutdown(&self) {}
}

/// What a client is told when `what` failed in a backend: the cause's kind,
/// never its details (those are logged beside it).
pub fn backend_message(what: &str, err: &BackendError) -> String {
    match err {
        BackendError::Unavailable(_) => format!("{what} failed: the backend is unavailable"),
        BackendError::BadData(_) | BackendError::Internal(_) => format!("{what} failed: internal error (logged)"),
    }
}

/// Reads what `room` holds in `window` as of one moment. With `after`, a
/// store that answers in parts (a history service with a smaller
/// `history.size`) is read on until the events reach the room's seq, so that
/// a resume or a catch-up leaves no gap before live delivery; `max` bounds
/// how much that reads in all.
///
/// # Errors
/// The store's; `Unavailable` if the history changed between the parts.
pub async fn catch_up(history: &dyn HistoryStore, room: &RoomName, window: Window, max: usize) -> BackendResult<Page> {
    let mut page = history.read_room(room, window).await?;
    while window.after.is_some() {
        let Some(last) = page.messages.last().map(|m| m.seq) else { break };
        if last >= page.seq || page.messages.len() >= max {
            break;
        }
        let rest = history.read_room(room, Window::after(last, max - page.messages.len())).await?;
        if rest.epoch != page.epoch || rest.messages.first().is_none_or(|m| m.seq != last + 1) {
            return Err(BackendError::Unavailable("the room's history changed while it was read".into()));
        }
        page.seq = rest.seq;
        page.messages.extend(rest.messages);
    }
    Ok(page)
}

/// The three parts of an engine, as the gateway uses them.
#[derive(Clone)]
pub struct Engine {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn PresenceStore>,
    pub history: Arc<dyn HistoryStore>,
    /// What every gateway knows of uploaded files (their bytes are in the
    /// node's object store, `crate::files`).
    pub files: Arc<dyn crate::files::FileIndex>,
}

/// Milliseconds since the Unix epoch (the protocol's `ts`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
