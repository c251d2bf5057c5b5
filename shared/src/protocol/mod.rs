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
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ErrorCode;

mod names;

pub use names::*;

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
        text: String,
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
    },
    Members {
        room: RoomName,
    },
    History(HistoryRequest),
    Ping,
}

/// What a `history` request reads: a room's events, or the requester's DM
/// conversation with another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOf {
    Room(RoomName),
    /// The other user of the conversation (the requester is the one).
    Dm(UserId),
}

/// A `history` request: exactly one of `room` and `dm`, and at most one of
/// `before` and `after`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "HistoryFields")]
pub struct HistoryRequest {
    pub of: HistoryOf,
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
        let of = match (fields.room, fields.dm) {
            (Some(room), None) => HistoryOf::Room(room),
            (None, Some(user)) => HistoryOf::Dm(user),
            _ => return Err("history takes exactly one of `room` and `dm`"),
        };
        if fields.before.is_some() && fields.after.is_some() {
            return Err("history takes `before` or `after`, not both");
        }
        Ok(HistoryRequest { of, before: fields.before, after: fields.after, limit: fields.limit })
    }
}

impl ClientFrame {
    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &["join", "leave", "send", "typing", "dm", "members", "history", "ping"];

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Dm { .. } => "dm",
            ClientFrame::Members { .. } => "members",
            ClientFrame::History(_) => "history",
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
            } else {
                // An object whose `type` or `id` is ill-typed: keep the id if it is fine.
                let _ = err;
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
        Err(err) => Err(FrameError { re, code: ErrorCode::BadRequest, message: strip_position(&err.to_string()) }),
    }
}

/// serde_json appends " at line 1 column 42"; clients do not need it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The limits announced in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeLimits {
    pub max_frame_bytes: usize,
    pub max_text_bytes: usize,
    pub messages_per_second: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_messages_per_second: Option<u32>,
}

/// A room message, exactly as delivered live and stored in history.
///
/// `seq` and `ts` come last so that a store can append them to a prefix
/// serialised by the gateway (see [`message_prefix`]) without parsing JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomMessage {
    pub room: RoomName,
    pub from: UserRef,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<ClientId>,
    pub seq: u64,
    pub ts: u64,
}

/// A direct message, exactly as delivered (`seq` and `ts` last, as above).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectMessage {
    pub from: UserRef,
    pub to: UserId,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<ClientId>,
    pub seq: u64,
    pub ts: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "message")]
struct RoomMessageHead<'a> {
    room: &'a RoomName,
    from: &'a UserRef,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a ClientId>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "dm")]
struct DirectMessageHead<'a> {
    from: &'a UserRef,
    to: &'a UserId,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a ClientId>,
}

/// The JSON of a `message` frame up to (not including) `,"seq":…,"ts":…}`.
/// [`complete_message`] (or a Lua script doing the same) finishes it.
pub fn message_prefix(room: &RoomName, from: &UserRef, text: &str, client_id: Option<&ClientId>) -> String {
    head_prefix(&RoomMessageHead { room, from, text, client_id })
}

/// The JSON of a `dm` frame up to (not including) `,"seq":…,"ts":…}`.
pub fn dm_prefix(from: &UserRef, to: &UserId, text: &str, client_id: Option<&ClientId>) -> String {
    head_prefix(&DirectMessageHead { from, to, text, client_id })
}

fn head_prefix<T: Serialize>(head: &T) -> String {
    // Serialising borrowed plain data cannot fail.
    let mut json = serde_json::to_string(head).unwrap_or_else(|_| String::from("{"));
    json.pop(); // the closing brace
    json
}

/// Appends `seq` and `ts` to a prefix from [`message_prefix`] or [`dm_prefix`].
pub fn complete_message(prefix: &str, seq: u64, ts: u64) -> String {
    format!("{prefix},\"seq\":{seq},\"ts\":{ts}}}")
}

/// One stored room message as JSON (the complete `message` frame), with its
/// seq alongside so that replay can be cut without parsing.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub seq: u64,
    pub json: Arc<RawValue>,
}

impl Serialize for StoredMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredMessage {
    /// Any JSON object with a `seq`, kept as it came.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct SeqOf {
            seq: u64,
        }
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let SeqOf { seq } = serde_json::from_str(json.get()).map_err(serde::de::Error::custom)?;
        Ok(StoredMessage { seq, json: Arc::from(json) })
    }
}

/// Every frame a server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
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
        members: Vec<UserRef>,
        history: Vec<StoredMessage>,
        recovered: bool,
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
        seq: u64,
        ts: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        delivered: Option<bool>,
    },
    Members {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<RequestId>,
        room: RoomName,
        members: Vec<UserRef>,
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
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Members { .. } => "members",
            ServerFrame::History { .. } => "history",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Message(_) => "message",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Dm(_) => "dm",
            ServerFrame::Notice { .. } => "notice",
            ServerFrame::Error { .. } => "error",
        }
    }

    /// Every server frame `type` (for metrics pre-registration).
    pub const TYPES: &'static [&'static str] = &[
        "welcome", "joined", "left", "ack", "members", "history", "pong", "message", "typing", "presence", "dm",
        "notice", "error",
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

#[cfg(test)]
mod tests;
