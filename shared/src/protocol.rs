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
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ErrorCode;

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest `client_id`, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Default number of messages in `joined.history` and `history` replies.
pub const DEFAULT_HISTORY_LIMIT: u64 = 50;

/// A value that broke one of the protocol's naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub &'static str);

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "Arc<str>")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks `value` against the protocol's rules.
            ///
            /// # Errors
            /// [`InvalidName`] saying which rule was broken.
            pub fn parse(value: &str) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), InvalidName> = $check;
                check(value)?;
                Ok($name(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), InvalidName> = $check;
                check(&value)?;
                Ok($name(Arc::from(value)))
            }
        }

        impl From<$name> for Arc<str> {
            fn from(value: $name) -> Arc<str> {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

fn char_count_between(value: &str, max: usize, what: &'static str) -> Result<(), InvalidName> {
    let n = value.chars().count();
    if n == 0 {
        return Err(InvalidName(what));
    }
    if n > max {
        return Err(InvalidName(what));
    }
    Ok(())
}

validated_string!(
    /// A room name: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`.
    RoomName,
    |v| {
        if v.is_empty()
            || v.len() > MAX_ROOM_NAME_CHARS
            || !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(InvalidName("a room name is 1 to 64 characters of A-Z a-z 0-9 . _ : -"));
        }
        Ok(())
    }
);

validated_string!(
    /// A user id: 1 to 128 characters, no control characters.
    UserId,
    |v| {
        char_count_between(v, MAX_USER_ID_CHARS, "a user id is 1 to 128 characters without control characters")?;
        if v.chars().any(char::is_control) {
            return Err(InvalidName("a user id is 1 to 128 characters without control characters"));
        }
        Ok(())
    }
);

validated_string!(
    /// A display name: 1 to 64 characters, no control characters.
    DisplayName,
    |v| {
        char_count_between(v, MAX_DISPLAY_NAME_CHARS, "a display name is 1 to 64 characters without control characters")?;
        if v.chars().any(char::is_control) {
            return Err(InvalidName("a display name is 1 to 64 characters without control characters"));
        }
        Ok(())
    }
);

validated_string!(
    /// A client-chosen idempotency key: 1 to 128 characters.
    ClientId,
    |v| char_count_between(v, MAX_CLIENT_ID_CHARS, "client_id is a string of 1 to 128 characters")
);

impl DisplayName {
    /// The display name a user gets when none is given: the user id, cut to
    /// the display-name length.
    pub fn from_user_id(id: &UserId) -> DisplayName {
        let cut: String = id.as_str().chars().take(MAX_DISPLAY_NAME_CHARS).collect();
        DisplayName(Arc::from(cut))
    }
}

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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Option<RequestId>, ClientFrame), FrameError> {
        parse_client_frame(text)
    }

    #[test]
    fn room_names() {
        for ok in ["a", "general", "A.b_c:d-9", &"x".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "é", "a/b", &"x".repeat(65), "a\n"] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_and_names() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("Zoë 🚀").is_ok());
        assert!(UserId::parse(&"é".repeat(128)).is_ok());
        assert!(UserId::parse(&"é".repeat(129)).is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a\u{0007}b").is_err());
        assert!(DisplayName::parse(&"n".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"n".repeat(65)).is_err());
        assert!(DisplayName::parse("tab\there").is_err());
        let long = UserId::parse(&"u".repeat(100)).unwrap();
        assert_eq!(DisplayName::from_user_id(&long).as_str().len(), 64);
    }

    #[test]
    fn parses_each_type() {
        let (re, f) = parse(r#"{"type":"join","id":1,"room":"r1","since":5,"epoch":"e","extra":true}"#).unwrap();
        assert_eq!(re, Some(RequestId::Num(1.into())));
        assert!(matches!(f, ClientFrame::Join { since: Some(5), .. }));
        let (re, f) = parse(r#"{"type":"send","id":"a","room":"r1","text":"hi","client_id":"c1"}"#).unwrap();
        assert_eq!(re, Some(RequestId::Str("a".into())));
        assert!(matches!(f, ClientFrame::Send { client_id: Some(_), .. }));
        let (_, f) = parse(r#"{"type":"typing","room":"r1"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Typing { state: TypingState::Start, .. }));
        let (_, f) = parse(r#"{"type":"typing","room":"r1","state":"stop"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Typing { state: TypingState::Stop, .. }));
        assert!(matches!(parse(r#"{"type":"ping"}"#).unwrap().1, ClientFrame::Ping));
        assert!(matches!(parse(r#"{"type":"leave","room":"x"}"#).unwrap().1, ClientFrame::Leave { .. }));
        assert!(matches!(parse(r#"{"type":"members","room":"x"}"#).unwrap().1, ClientFrame::Members { .. }));
        let (_, f) = parse(r#"{"type":"history","room":"x","before":10,"limit":5}"#).unwrap();
        let ClientFrame::History(h) = f else { panic!("{f:?}") };
        assert_eq!(
            (h.of, h.before, h.after, h.limit),
            (HistoryOf::Room(RoomName::parse("x").unwrap()), Some(10), None, Some(5))
        );
        let (_, f) = parse(r#"{"type":"history","dm":"bob","after":3}"#).unwrap();
        let ClientFrame::History(h) = f else { panic!("{f:?}") };
        assert_eq!((h.of, h.after), (HistoryOf::Dm(UserId::parse("bob").unwrap()), Some(3)));
        assert!(matches!(parse(r#"{"type":"dm","to":"bob","text":"yo"}"#).unwrap().1, ClientFrame::Dm { .. }));
    }

    #[test]
    fn classifies_errors() {
        let e = parse("not json").unwrap_err();
        assert_eq!((e.code, e.re), (ErrorCode::BadRequest, None));
        let e = parse("[1,2]").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("object"), "{}", e.message);
        let e = parse(r#"{"id":3}"#).unwrap_err();
        assert_eq!((e.code, e.re), (ErrorCode::BadRequest, Some(RequestId::Num(3.into()))));
        let e = parse(r#"{"type":"fly","id":"x"}"#).unwrap_err();
        assert_eq!((e.code, e.re), (ErrorCode::UnknownType, Some(RequestId::Str("x".into()))));
        let e = parse(r#"{"type":7,"id":"t"}"#).unwrap_err();
        assert_eq!((e.code, e.re), (ErrorCode::BadRequest, Some(RequestId::Str("t".into()))));
        let e = parse(r#"{"type":"ping","id":{"x":1}}"#).unwrap_err();
        assert_eq!((e.code, e.re), (ErrorCode::BadRequest, None));
        let e = parse(r#"{"type":"join","id":9,"room":"bad room"}"#).unwrap_err();
        assert_eq!((e.code, e.re.clone()), (ErrorCode::BadRequest, Some(RequestId::Num(9.into()))));
        assert!(e.message.contains("room name"), "{}", e.message);
        for bad in [
            r#"{"type":"join","room":"r","limit":-1}"#,
            r#"{"type":"join","room":"r","since":1.5}"#,
            r#"{"type":"history","room":"r","before":"3"}"#,
            r#"{"type":"send","room":"r"}"#,
            r#"{"type":"send","room":"r","text":5}"#,
            r#"{"type":"typing","room":"r","state":"maybe"}"#,
            r#"{"type":"dm","to":"","text":"x"}"#,
            r#"{"type":"send","room":"r","text":"x","client_id":""}"#,
            r#"{"type":"history"}"#,
            r#"{"type":"history","room":"r","dm":"bob"}"#,
            r#"{"type":"history","room":"r","before":5,"after":2}"#,
            r#"{"type":"history","dm":""}"#,
            r#"{"type":"history","dm":"bob","after":-1}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().code, ErrorCode::BadRequest, "{bad}");
        }
        let e = parse(r#"{"type":"history","id":4,"room":"r","dm":"bob"}"#).unwrap_err();
        assert_eq!(e.re, Some(RequestId::Num(4.into())));
        assert!(e.message.contains("exactly one of `room` and `dm`"), "{}", e.message);
        assert!(parse(r#"{"type":"history","dm":"b","before":2,"after":1}"#).unwrap_err().message.contains("not both"));
    }

    #[test]
    fn prefixes_complete_to_the_serialised_frames() {
        let from = UserRef { id: UserId::parse("u\"1").unwrap(), name: DisplayName::parse("Ål").unwrap() };
        let room = RoomName::parse("r").unwrap();
        for client_id in [None, Some(ClientId::parse("c1").unwrap())] {
            let full = ServerFrame::Message(RoomMessage {
                room: room.clone(),
                from: from.clone(),
                text: "hi \n there".into(),
                client_id: client_id.clone(),
                seq: 12,
                ts: 1_795_358_155_872,
            })
            .to_json();
            let prefix = message_prefix(&room, &from, "hi \n there", client_id.as_ref());
            assert_eq!(complete_message(&prefix, 12, 1_795_358_155_872), full.to_string());
            let to = UserId::parse("bob").unwrap();
            let dm = ServerFrame::Dm(DirectMessage {
                from: from.clone(),
                to: to.clone(),
                text: "x".into(),
                client_id: client_id.clone(),
                seq: 3,
                ts: 9,
            })
            .to_json();
            assert_eq!(complete_message(&dm_prefix(&from, &to, "x", client_id.as_ref()), 3, 9), dm.to_string());
        }
    }

    #[test]
    fn server_frames_serialise_to_the_protocol_shape() {
        let user = UserRef { id: UserId::parse("u1").unwrap(), name: DisplayName::parse("Alice").unwrap() };
        let msg = RoomMessage {
            room: RoomName::parse("r").unwrap(),
            from: user.clone(),
            text: "hi".into(),
            client_id: None,
            seq: 3,
            ts: 10,
        };
        let json = ServerFrame::Message(msg).to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["from"]["name"], "Alice");
        assert!(v.get("client_id").is_none());
        let stored = StoredMessage { seq: 3, json: Arc::from(RawValue::from_string(json.to_string()).unwrap()) };
        let joined = ServerFrame::Joined {
            re: Some(RequestId::Num(1.into())),
            room: RoomName::parse("r").unwrap(),
            seq: 3,
            epoch: "e1".into(),
            members: vec![user],
            history: vec![stored],
            recovered: false,
        };
        let v: serde_json::Value = serde_json::from_str(&joined.to_json()).unwrap();
        assert_eq!(v["re"], 1);
        assert_eq!(v["history"][0]["type"], "message");
        assert_eq!(v["history"][0]["seq"], 3);
        let err = ServerFrame::Error {
            re: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            retry_after_ms: Some(50),
        };
        let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["retry_after_ms"], 50);
        assert!(v.get("re").is_none());
    }
}
