//! The wire protocol (`docs/protocol.md`), as types.
//!
//! Client frames are parsed in two steps by [`parse_client_frame`]: a cheap
//! look at `type` and `id` (so that every error can carry `re` and tell
//! `unknown_type` from `bad_request`), then the typed [`ClientFrame`] enum.
//! Server frames are one [`ServerFrame`] enum, serialised by serde; nothing
//! builds JSON by hand.
//!
//! Names and ids that have rules are newtypes ([`RoomName`], [`UserId`],
//! [`DisplayName`], [`ClientId`]) that can only hold valid values: they are
//! checked when parsed, so code that holds one never checks again.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

mod events;
mod names;
mod server;

pub use events::*;
pub use names::*;
pub use server::*;

/// A user as other users see it: `{"id","name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: UserId,
    pub name: DisplayName,
}

/// The `id` of a client frame, echoed as `re`: a string or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Num(serde_json::Number),
    Str(String),
}

/// `typing.state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypingState {
    #[default]
    Start,
    Stop,
}

/// `presence.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    Online,
    Offline,
}

/// `react.op`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactionOp {
    #[default]
    Add,
    Remove,
}

impl ReactionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionOp::Add => "add",
            ReactionOp::Remove => "remove",
        }
    }
}

/// `status.state`: what a user tells others about their availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Online,
    Away,
    Busy,
}

/// A user's status as others see it: `{"state","text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatus {
    pub state: StatusState,
    pub text: StatusText,
}

/// An entry of `members`: a user, with the status they set, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(flatten)]
    pub user: UserRef,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<UserStatus>,
}

impl From<UserRef> for Member {
    fn from(user: UserRef) -> Member {
        Member { user, status: None }
    }
}

/// Every frame a client may send (the `type` field picks the variant).
/// Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Join {
        room: RoomName,
        #[serde(default)]
        since: Option<u64>,
        #[serde(default)]
        epoch: Option<String>,
        #[serde(default)]
        limit: Option<u64>,
    },
    Leave {
        room: RoomName,
    },
    Send {
        room: RoomName,
        /// May be absent or empty when the message carries attachments.
        #[serde(default)]
        text: String,
        #[serde(default)]
        client_id: Option<ClientId>,
        #[serde(default)]
        reply_to: Option<u64>,
        /// Ids of files the user uploaded to the room (1 to
        /// [`MAX_ATTACHMENTS_PER_MESSAGE`]).
        #[serde(default)]
        attachments: Option<Vec<String>>,
    },
    Edit {
        room: RoomName,
        target: u64,
        text: String,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    Delete {
        room: RoomName,
        target: u64,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    React {
        room: RoomName,
        target: u64,
        emoji: Emoji,
        #[serde(default)]
        op: ReactionOp,
        #[serde(default)]
        client_id: Option<ClientId>,
    },
    Typing {
        room: RoomName,
        #[serde(default)]
        state: TypingState,
    },
    Dm {
        to: UserId,
        text: String,
        #[serde(default)]
        client_id: Option<ClientId>,
        /// Not for DMs in 1.1: present is `bad_request`.
        #[serde(default)]
        reply_to: Option<serde_json::Value>,
        /// Not for DMs in 1.1: present is `bad_request`.
        #[serde(default)]
        attachments: Option<serde_json::Value>,
    },
    Signal {
        to: UserId,
        /// One session of `to` (a session id from a `signal` it sent).
        #[serde(default)]
        session: Option<String>,
        data: serde_json::Value,
    },
    Members {
        room: RoomName,
    },
    History(HistoryRequest),
    Read(ReadRequest),
    Inbox,
    Status {
        state: StatusState,
        #[serde(default)]
        text: Option<StatusText>,
    },
    Ping,
}

/// A room, or the requester's DM conversation with another user (what a
/// `history` request reads, what a `read` cursor belongs to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Thread {
    Room(RoomName),
    /// The other user of the conversation (the requester is the one).
    Dm(UserId),
}

/// A `history` request: exactly one of `room` and `dm`, and at most one of
/// `before` and `after`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "HistoryFields")]
pub struct HistoryRequest {
    pub of: Thread,
    /// Only events with a seq below this; the newest `limit` of them.
    pub before: Option<u64>,
    /// Only events with a seq above this; the oldest `limit` of them.
    pub after: Option<u64>,
    pub limit: Option<u64>,
}

/// A `history` frame's fields as sent, before their combination is checked.
#[derive(Deserialize)]
struct HistoryFields {
    #[serde(default)]
    room: Option<RoomName>,
    #[serde(default)]
    dm: Option<UserId>,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

impl TryFrom<HistoryFields> for HistoryRequest {
    type Error = &'static str;

    fn try_from(fields: HistoryFields) -> Result<Self, Self::Error> {
        let of = Thread::one_of(fields.room, fields.dm).ok_or("history takes exactly one of `room` and `dm`")?;
        if fields.before.is_some() && fields.after.is_some() {
            return Err("history takes `before` or `after`, not both");
        }
        Ok(HistoryRequest { of, before: fields.before, after: fields.after, limit: fields.limit })
    }
}

/// A `read` request: exactly one of `room` and `dm`, and the seq read up to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ReadFields")]
pub struct ReadRequest {
    pub of: Thread,
    pub seq: u64,
}

#[derive(Deserialize)]
struct ReadFields {
    #[serde(default)]
    room: Option<RoomName>,
    #[serde(default)]
    dm: Option<UserId>,
    seq: u64,
}

impl TryFrom<ReadFields> for ReadRequest {
    type Error = &'static str;

    fn try_from(fields: ReadFields) -> Result<Self, Self::Error> {
        let of = Thread::one_of(fields.room, fields.dm).ok_or("read takes exactly one of `room` and `dm`")?;
        Ok(ReadRequest { of, seq: fields.seq })
    }
}

impl Thread {
    /// A frame's `room` or `dm`, when it has exactly one of them.
    fn one_of(room: Option<RoomName>, dm: Option<UserId>) -> Option<Thread> {
        match (room, dm) {
            (Some(room), None) => Some(Thread::Room(room)),
            (None, Some(user)) => Some(Thread::Dm(user)),
            _ => None,
        }
    }

    /// `(room, dm)` as a frame's optional fields.
    pub fn into_fields(self) -> (Option<RoomName>, Option<UserId>) {
        match self {
            Thread::Room(room) => (Some(room), None),
            Thread::Dm(user) => (None, Some(user)),
        }
    }
}

impl ClientFrame {
    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &[
        "join", "leave", "send", "edit", "delete", "react", "typing", "dm", "members", "history", "read", "inbox",
        "status", "signal", "ping",
    ];

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Dm { .. } => "dm",
            ClientFrame::Signal { .. } => "signal",
            ClientFrame::Members { .. } => "members",
            ClientFrame::History(_) => "history",
            ClientFrame::Read(_) => "read",
            ClientFrame::Inbox => "inbox",
            ClientFrame::Status { .. } => "status",
            ClientFrame::Ping => "ping",
        }
    }
}

/// A client frame that could not be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The frame's `id`, when it could be read.
    pub re: Option<RequestId>,
    /// `bad_request` or `unknown_type`.
    pub code: ErrorCode,
    pub message: String,
}

/// Only the `id`, for frames whose `type` is not a string.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<RequestId>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<RequestId>,
}

/// Parses one text frame.
///
/// # Errors
/// `bad_request` for anything that is not a JSON object with a string `type`
/// and well-typed fields; `unknown_type` for a `type` the protocol lacks. The
/// error carries the frame's `id` whenever it could be read.
pub fn parse_client_frame(text: &str) -> Result<(Option<RequestId>, ClientFrame), FrameError> {
    let envelope: Envelope<'_> = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(err) => {
            let (re, message) = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                (None, "the frame is not valid JSON".to_owned())
            } else if !text.trim_start().starts_with('{') {
                (None, "the frame is not a JSON object".to_owned())
            } else if err.to_string().starts_with("duplicate field") {
                // `{"type":"ping","type":"send"}` is neither frame.
                (serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id), strip_position(&err.to_string()))
            } else {
                // An object whose `type` or `id` is ill-typed: keep the id if it is fine.
                match serde_json::from_str::<IdOnly>(text) {
                    Ok(frame) => (frame.id, "`type` must be a string".to_owned()),
                    Err(_) => (None, "`id` must be a string or a number".to_owned()),
                }
            };
            return Err(FrameError { re, code: ErrorCode::BadRequest, message });
        }
    };
    let re = envelope.id;
    let Some(kind) = envelope.kind else {
        return Err(FrameError { re, code: ErrorCode::BadRequest, message: "missing field `type`".into() });
    };
    if !ClientFrame::TYPES.contains(&kind.as_ref()) {
        let mut shown: String = kind.chars().take(64).collect();
        if shown.len() < kind.len() {
            shown.push('…');
        }
        return Err(FrameError { re, code: ErrorCode::UnknownType, message: format!("unknown frame type `{shown}`") });
    }
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok((re, frame)),
        Err(err) => Err(FrameError { re, code: ErrorCode::BadRequest, message: field_error(&err) }),
    }
}

/// serde_json's message for a frame that does not fit its type, made clear
/// where it would mislead: an escaped lone surrogate (`"\ud800"`) is
/// reported as "unexpected end of hex escape" or "lone leading surrogate".
fn field_error(err: &serde_json::Error) -> String {
    let message = strip_position(&err.to_string());
    if message.contains("surrogate") || message.contains("hex escape") {
        return "a string holds a \\u escape that is not a character (a lone surrogate \\uD800-\\uDFFF, \
                or a malformed escape)"
            .to_owned();
    }
    message
}

/// serde_json appends " at line 1 column 42"; clients do not need it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
