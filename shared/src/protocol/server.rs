//! Every frame a server sends ([`ServerFrame`]) and the parts of them that
//! are not room events (those are in `events`).

use serde::Serialize;

use super::{DirectMessage, PresenceState, UserId, UserRef, UserStatus};
use super::{Member, RequestId, RoomMessage, RoomName, StatusState, StatusText, StoredMessage, TypingState};
use crate::error::ErrorCode;

/// The limits announced in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeLimits {
    pub max_frame_bytes: usize,
    pub max_text_bytes: usize,
    pub max_signal_bytes: usize,
    pub messages_per_second: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_messages_per_second: Option<u32>,
}

/// The protocol version `welcome` announces.
pub const PROTOCOL_VERSION: &str = "1.1";

/// One room or DM conversation of an `inbox` reply.
#[derive(Debug, Clone, Serialize)]
pub struct InboxEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm: Option<UserId>,
    pub seq: u64,
    pub read_seq: u64,
    pub unread: u64,
    /// The newest `message` (or `dm`) frame as the history holds it.
    pub last: Option<StoredMessage>,
}

/// Every frame a server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        /// [`PROTOCOL_VERSION`].
        protocol: &'static str,
        session: String,
        user: UserRef,
        node: String,
        heartbeat_ms: u64,
        limits: WelcomeLimits,
    },
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        room: RoomName,
        seq: u64,
        epoch: String,
        members: Vec<Member>,
        history: Vec<StoredMessage>,
        recovered: bool,
        /// The user's read cursor in the room.
        read_seq: u64,
        unread: u64,
    },
    Left {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        room: RoomName,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<UserId>,
        /// None when nothing was stored (`changed: false`).
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        ts: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        delivered: Option<bool>,
        /// `Some(false)`: the request changed nothing (a repeated reaction).
        #[serde(skip_serializing_if = "Option::is_none")]
        changed: Option<bool>,
    },
    /// The `ack` of a `signal`: how many of the user's sessions it went to.
    #[serde(rename = "ack")]
    SignalAck {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        to: UserId,
        delivered: u64,
    },
    /// A relayed `signal`: `session` is the sender's, for a reply to it alone.
    Signal {
        from: UserRef,
        session: String,
        data: serde_json::Value,
    },
    Members {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        room: RoomName,
        members: Vec<Member>,
    },
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        /// For a DM conversation: the other user.
        #[serde(skip_serializing_if = "Option::is_none")]
        dm: Option<UserId>,
        messages: Vec<StoredMessage>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        ts: u64,
    },
    Message(RoomMessage),
    Typing {
        room: RoomName,
        user: UserRef,
        state: TypingState,
    },
    Presence {
        room: RoomName,
        user: UserRef,
        state: PresenceState,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<UserStatus>,
    },
    Receipt {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        /// For a DM conversation: the other party, as the receiver sees it.
        #[serde(skip_serializing_if = "Option::is_none")]
        dm: Option<UserId>,
        user: UserRef,
        seq: u64,
    },
    Cursor {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dm: Option<UserId>,
        seq: u64,
        unread: u64,
    },
    Inbox {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        rooms: Vec<InboxEntry>,
        dms: Vec<InboxEntry>,
    },
    Status {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        state: StatusState,
        text: StatusText,
    },
    Dm(DirectMessage),
    Notice {
        data: serde_json::Value,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// The frame's `type` (a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Joined { .. } => "joined",
            ServerFrame::Left { .. } => "left",
            ServerFrame::Ack { .. } | ServerFrame::SignalAck { .. } => "ack",
            ServerFrame::Signal { .. } => "signal",
            ServerFrame::Members { .. } => "members",
            ServerFrame::History { .. } => "history",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Message(_) => "message",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Receipt { .. } => "receipt",
            ServerFrame::Cursor { .. } => "cursor",
            ServerFrame::Inbox { .. } => "inbox",
            ServerFrame::Status { .. } => "status",
            ServerFrame::Dm(_) => "dm",
            ServerFrame::Notice { .. } => "notice",
            ServerFrame::Error { .. } => "error",
        }
    }

    /// Every server frame `type` (for metrics pre-registration), with the
    /// room events the stores serialise themselves (`edit`, `delete`,
    /// `reaction`).
    pub const TYPES: &'static [&'static str] = &[
        "welcome", "joined", "left", "ack", "members", "history", "pong", "message", "edit", "delete", "reaction",
        "typing", "presence", "receipt", "cursor", "inbox", "status", "dm", "notice", "signal", "error",
    ];

    /// An `error` frame.
    pub fn error(re: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error { re, code, message: message.into(), retry_after_ms: None }
    }

    /// Serialises the frame once, for the socket (and for every recipient).
    pub fn to_json(&self) -> bytestring::ByteString {
        // Serialising these types cannot fail: every map key is a string and
        // every value is plain data.
        match serde_json::to_string(self) {
            Ok(json) => bytestring::ByteString::from(json),
            Err(err) => {
                tracing::error!(cause = %err, kind = self.kind(), "frame serialisation failed");
                bytestring::ByteString::from_static(
                    r#"{"type":"error","code":"internal","message":"serialisation failed"}"#,
                )
            }
        }
    }
}
