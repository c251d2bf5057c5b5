//! Room events and DMs as they are stored and delivered: the frames'
//! types, the prefixes a store completes with `seq` and `ts`, and the
//! scrubbing a `delete` applies to stored entries.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ClientId, Emoji, ReactionOp, RoomName, UserId, UserRef};

/// A room message, exactly as delivered live and stored in history (a
/// deleted one has no `text` and `deleted: true`).
///
/// `seq` and `ts` come last so that a store can append them to a prefix
/// serialised by the gateway (see [`event_prefix`]) without parsing JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomMessage {
    pub room: RoomName,
    pub from: UserRef,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<ClientId>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deleted: bool,
    pub seq: u64,
    pub ts: u64,
}

/// A file attached to a `message`, as the message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// The path to download it from any gateway.
    pub url: String,
}

/// The most files one message may carry.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;

/// What a room event does (the part of a [`RoomEventHead`] that differs
/// between kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEventKind {
    /// A `message`, maybe replying to the message with seq `reply_to`, maybe
    /// carrying files (none: empty).
    Message { text: String, reply_to: Option<u64>, attachments: Vec<Attachment> },
    /// An `edit` of the message `target`: its new text.
    Edit { target: u64, text: String },
    /// A `delete` of the message `target`.
    Delete { target: u64 },
    /// A `reaction`: `emoji` added to or removed from the message `target`.
    Reaction { target: u64, emoji: Emoji, op: ReactionOp },
}

impl RoomEventKind {
    /// The event's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            RoomEventKind::Message { .. } => "message",
            RoomEventKind::Edit { .. } => "edit",
            RoomEventKind::Delete { .. } => "delete",
            RoomEventKind::Reaction { .. } => "reaction",
        }
    }

    /// The message the event is about: an edit's, delete's or reaction's
    /// target, a message's `reply_to`.
    pub fn target(&self) -> Option<u64> {
        match self {
            RoomEventKind::Message { reply_to, .. } => *reply_to,
            RoomEventKind::Edit { target, .. }
            | RoomEventKind::Delete { target }
            | RoomEventKind::Reaction { target, .. } => Some(*target),
        }
    }
}

/// A room event's JSON fields before its store gives it `seq` and `ts`, in
/// the order they are delivered.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RoomEventHead<'a> {
    Message {
        room: &'a RoomName,
        from: &'a UserRef,
        text: &'a str,
        // Right after `text`: a `delete` cuts both out (see [`scrub_entry`]).
        #[serde(skip_serializing_if = "<[Attachment]>::is_empty")]
        attachments: &'a [Attachment],
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a ClientId>,
    },
    Edit {
        room: &'a RoomName,
        target: u64,
        from: &'a UserRef,
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a ClientId>,
    },
    Delete {
        room: &'a RoomName,
        target: u64,
        from: &'a UserRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a ClientId>,
    },
    Reaction {
        room: &'a RoomName,
        target: u64,
        from: &'a UserRef,
        emoji: &'a str,
        op: ReactionOp,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a ClientId>,
    },
}

/// The JSON of a room event up to (not including) `,"seq":…,"ts":…}`.
/// [`complete_message`] (or a Lua script doing the same) finishes it.
pub fn event_prefix(room: &RoomName, from: &UserRef, kind: &RoomEventKind, client_id: Option<&ClientId>) -> String {
    let head = match kind {
        RoomEventKind::Message { text, reply_to, attachments } => {
            RoomEventHead::Message { room, from, text, attachments, reply_to: *reply_to, client_id }
        }
        RoomEventKind::Edit { target, text } => RoomEventHead::Edit { room, target: *target, from, text, client_id },
        RoomEventKind::Delete { target } => RoomEventHead::Delete { room, target: *target, from, client_id },
        RoomEventKind::Reaction { target, emoji, op } => {
            RoomEventHead::Reaction { room, target: *target, from, emoji: emoji.as_str(), op: *op, client_id }
        }
    };
    head_prefix(&head)
}

/// A stored `message` or `edit` entry with its text (and its
/// `attachments`) taken out and `"deleted":true` put before its `seq`, as a
/// `delete` leaves it; `None` for anything else (already scrubbed, another
/// kind, not ours).
///
/// This is string surgery on the store's own serialisation, which is fixed:
/// `"text"` follows `"from"` and precedes every other string field,
/// `"attachments"` (when there) follows `"text"`, and `"seq"` comes last but
/// for `"ts"`. A raw `,"text":` or `,"seq":` cannot occur inside a JSON
/// string (its quotes would be escaped), so the first match is the field.
/// The Redis store's delete script does the same in Lua.
pub fn scrub_entry(json: &str) -> Option<String> {
    if !(json.starts_with(r#"{"type":"message","#) || json.starts_with(r#"{"type":"edit","#)) {
        return None;
    }
    let text_at = json.find(r#","text":""#)?;
    let value_start = text_at + r#","text":""#.len();
    let bytes = json.as_bytes();
    let mut i = value_start;
    while i < bytes.len() && bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    let mut rest = json.get(i + 1..)?;
    if let Some(array) = rest.strip_prefix(r#","attachments":"#) {
        rest = array.get(json_value_len(array)?..)?;
    }
    let seq_at = rest.find(r#","seq":"#)?;
    Some(format!("{}{},\"deleted\":true{}", &json[..text_at], &rest[..seq_at], &rest[seq_at..]))
}

/// The length of the JSON array or object at the start of `json` (strings
/// inside it skipped, escapes included); `None` if it does not end.
fn json_value_len(json: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, byte) in json.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
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
#[serde(tag = "type", rename = "dm")]
struct DirectMessageHead<'a> {
    from: &'a UserRef,
    to: &'a UserId,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a ClientId>,
}

/// The JSON of a `message` frame up to (not including) `,"seq":…,"ts":…}`.
pub fn message_prefix(room: &RoomName, from: &UserRef, text: &str, client_id: Option<&ClientId>) -> String {
    let message = RoomEventKind::Message { text: text.to_owned(), reply_to: None, attachments: Vec::new() };
    event_prefix(room, from, &message, client_id)
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
