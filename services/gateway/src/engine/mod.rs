//! The engine boundary: pub/sub bus, presence store and history store.
//!
//! Session code talks only to these traits, so the engine behind them can be
//! this process's memory ([`memory`]) or Redis, shared by every gateway. Every
//! call is async and fallible with [`EngineError::Unavailable`]; seqs are
//! assigned by the store, never by the caller.
//!
//! Delivery flows the other way: an engine hands every message that arrives on
//! a topic this node is subscribed to to the node's [`Deliver`] sink (the
//! registry), which fans it out to local sessions.

pub mod memory;
pub mod redis;
pub mod service;

use std::sync::Arc;

use async_trait::async_trait;
use bytestring::ByteString;

use chat_shared::protocol::{ClientId, RoomName, ServerFrame, StoredMessage, UserId, UserRef};
use history::store::Window;

/// A backend could not carry out the call; the client gets `unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

pub type EngineResult<T> = Result<T, EngineError>;

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
            json: json.clone(),
        })
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

    /// After live delivery may have missed messages (a lost subscription, a
    /// lagging receiver): holds every room's live frames and returns each
    /// room with the lowest seq its sessions have seen.
    fn begin_resync(&self) -> Vec<(RoomName, u64)> {
        Vec::new()
    }

    /// Delivers `missed` (messages after that seq, oldest first; `latest_seq`
    /// is the room's seq now) to the room's sessions that lack them, then the
    /// frames held meanwhile.
    fn complete_resync(&self, _room: &RoomName, _latest_seq: u64, _missed: Vec<StoredMessage>) {}

    /// Whether a gap in some room's seqs was seen since the last call (the
    /// engine then resyncs).
    fn take_gap(&self) -> bool {
        false
    }
}

/// Pub/sub between nodes.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Adds a local reference to `topic`: the first one subscribes the node.
    /// Returns once delivery of `topic` to this node is in place.
    async fn subscribe(&self, topic: &Topic) -> EngineResult<()>;
    /// Drops a local reference to `topic`: the last one unsubscribes the node.
    async fn unsubscribe(&self, topic: &Topic) -> EngineResult<()>;
    /// Publishes to every node subscribed to `topic`; returns how many nodes
    /// it reached.
    async fn publish(&self, topic: &Topic, msg: BusMessage) -> EngineResult<usize>;
    /// Whether the backend is reachable and every subscription is in place
    /// (`/readyz`); the error says what is missing.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
    /// The node stops for good (after its drain): withdraw what announces it.
    async fn shutdown(&self) {}
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
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> EngineResult<Admission>;
    /// Forgets a connection counted by `admit`.
    async fn release(&self, session: &SessionInfo) -> EngineResult<()>;
    /// Records that the session is in the room; publishes `presence online`
    /// to the room when it is the user's first session there.
    async fn join(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()>;
    /// Records that the session left the room; publishes `presence offline`
    /// when it was the user's last session there.
    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()>;
    /// The room's online users, sorted by id.
    async fn members(&self, room: &RoomName) -> EngineResult<Vec<UserRef>>;
    /// Removes a closed session from `rooms` (announcing `offline` where it
    /// was its user's last) and from its user's connection count. Unlike
    /// `leave`, it cannot be refused: when the backend is away the engine
    /// keeps it (bounded) and retries until it is done.
    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]);
    /// Takes one token from the user's rate of `per_second` frames, across
    /// all of the user's connections; `Some(ms)` when empty for that long.
    async fn take_user_token(&self, user: &UserId, per_second: u32) -> EngineResult<Option<u64>>;
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
    /// The sending session (its user's other sessions get a copy, it does not).
    pub origin: SessionId,
}

/// The outcome of storing a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub ts: u64,
    /// For DMs: whether the recipient had a session (else it was queued).
    pub delivered: bool,
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The newest `n` messages.
    Latest(usize),
    /// Every message with seq above this one (at most the history size).
    After(u64),
}

impl ReplayFrom {
    /// The history window this replay reads; `After` reads up to
    /// `history_size` messages (everything still kept).
    pub fn window(self, history_size: usize) -> Window {
        match self {
            ReplayFrom::Latest(n) => Window::latest(n),
            ReplayFrom::After(since) => Window { after: Some(since), before: None, limit: history_size },
        }
    }
}

/// A room's history as of one moment.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The room's latest seq (0 if it never had a message).
    pub seq: u64,
    /// Names this history; changes only when history was lost.
    pub epoch: String,
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
}

/// Room and DM-conversation history, and the publish path that feeds it.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Takes the room's next seq, stores the message in the capped history
    /// and publishes it on the room's topic, as one step, so that history and
    /// live delivery share one order. A `client_id` seen from the same user in
    /// the same room within the idempotency window returns the first result
    /// and stores nothing.
    async fn publish_room(&self, draft: RoomDraft) -> EngineResult<Stored>;
    /// Reads the room's history.
    async fn replay(&self, room: &RoomName, from: ReplayFrom) -> EngineResult<Replay>;
    /// Messages with seq below `before` (all when `None`), the newest `limit`
    /// of them, oldest first.
    async fn page(&self, room: &RoomName, before: Option<u64>, limit: usize) -> EngineResult<Vec<StoredMessage>>;
    /// Stores a DM in the pair's conversation, delivers it to the recipient's
    /// sessions and the sender's other sessions, and queues it for the
    /// recipient when they have no session.
    async fn publish_dm(&self, draft: DmDraft) -> EngineResult<Stored>;
    /// The DMs queued for `user` (oldest first, as `dm` frames). They stay
    /// queued until [`HistoryStore::ack_offline`], so a connection lost while
    /// delivering them loses none.
    async fn offline(&self, user: &UserId) -> EngineResult<Vec<ByteString>>;
    /// Removes DMs from `user`'s queue once they reached the client.
    async fn ack_offline(&self, user: &UserId, delivered: Vec<ByteString>) -> EngineResult<()>;
}

/// The three parts of an engine, as the gateway uses them.
#[derive(Clone)]
pub struct Engine {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn PresenceStore>,
    pub history: Arc<dyn HistoryStore>,
}

/// Milliseconds since the Unix epoch (the protocol's `ts`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
