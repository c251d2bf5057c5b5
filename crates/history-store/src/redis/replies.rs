//! What the store's scripts answer, turned into the store's types. Redis is
//! trusted to run the scripts, not to answer well: every function here takes
//! any [`Value`] and returns a value or `BadData`, never panics (the
//! `store_replies` fuzz target holds it to that).

use std::sync::Arc;

use fred::types::Value;
use serde_json::value::RawValue;

use chat_shared::protocol::{RoomName, StoredMessage, Thread, UserId};
use chat_shared::{BackendError, BackendResult};

use crate::{Appended, Cursor, Outcome, Page, Summary};

fn bad_reply(what: &str, value: &Value) -> BackendError {
    BackendError::BadData(format!("{what}: {value:?}"))
}

pub(super) fn as_u64(value: &Value) -> BackendResult<u64> {
    match value {
        Value::Integer(n) => Ok((*n).max(0) as u64),
        Value::String(s) => s.parse().map_err(|_| bad_reply("number", value)),
        Value::Bytes(b) => {
            std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad_reply("number", value))
        }
        other => Err(bad_reply("number", other)),
    }
}

pub(super) fn as_string(value: Value) -> BackendResult<String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| BackendError::BadData("string: not UTF-8".into())),
        Value::Integer(n) => Ok(n.to_string()),
        other => Err(bad_reply("string", &other)),
    }
}

fn as_array(value: Value) -> BackendResult<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(bad_reply("array", &other)),
    }
}

/// A stored event's JSON, which must at least be JSON.
fn stored_json(value: Value) -> BackendResult<Box<RawValue>> {
    RawValue::from_string(as_string(value)?).map_err(|err| BackendError::BadData(format!("stored event: {err}")))
}

/// The append script's reply: "seq:ts", "unchanged:ts" or a refusal.
pub fn parse_outcome(reply: &str) -> BackendResult<Outcome> {
    match reply {
        "not_found" => return Ok(Outcome::NotFound),
        "not_author" => return Ok(Outcome::NotAuthor),
        "too_many" => return Ok(Outcome::TooManyEmoji),
        _ => {}
    }
    let bad = || BackendError::BadData(format!("append: {reply}"));
    let (head, ts) = reply.split_once(':').ok_or_else(bad)?;
    let ts = ts.parse().map_err(|_| bad())?;
    if head == "unchanged" {
        return Ok(Outcome::Unchanged { ts });
    }
    let seq = head.parse().map_err(|_| bad())?;
    Ok(Outcome::Stored(Appended { seq, ts, delivered: true }))
}

/// The append script's whole reply (a string).
pub fn append(reply: Value) -> BackendResult<Outcome> {
    parse_outcome(&as_string(reply)?)
}

/// The read script's reply: {seq, epoch, first entry's seq, entries}.
pub fn page(reply: Value) -> BackendResult<Page> {
    let mut fields = as_array(reply)?.into_iter();
    let (Some(seq), Some(epoch), Some(first), Some(messages)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(BackendError::BadData("read: too few fields".into()));
    };
    let first = as_u64(&first)?;
    let messages = as_array(messages)?
        .into_iter()
        .enumerate()
        .map(|(i, json)| {
            let seq = first
                .checked_add(i as u64)
                .ok_or_else(|| BackendError::BadData(format!("read: seq {first} + {i} overflows")))?;
            Ok(StoredMessage { seq, json: Arc::from(stored_json(json)?) })
        })
        .collect::<BackendResult<Vec<_>>>()?;
    Ok(Page { seq: as_u64(&seq)?, epoch: as_string(epoch)?, messages })
}

/// The DM append script's reply.
#[derive(Debug)]
pub enum DmAppend {
    /// A repeated `client_id`: the first send's result.
    Repeated(Appended),
    /// Stored now: deliver `json` as seq `seq`.
    New { seq: u64, ts: u64, json: String },
}

/// {seq, ts, json, repeated (0/1), delivered (0/1)}.
pub fn dm_append(reply: Value) -> BackendResult<DmAppend> {
    let mut fields = as_array(reply)?.into_iter();
    let (Some(seq), Some(ts), Some(json), Some(repeated), Some(delivered)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(BackendError::BadData("append_dm: too few fields".into()));
    };
    let (seq, ts) = (as_u64(&seq)?, as_u64(&ts)?);
    if as_u64(&repeated)? == 1 {
        return Ok(DmAppend::Repeated(Appended { seq, ts, delivered: as_u64(&delivered)? == 1 }));
    }
    Ok(DmAppend::New { seq, ts, json: as_string(json)? })
}

/// A cursor's field in the user's hash.
pub(super) fn cursor_field(thread: &Thread) -> String {
    match thread {
        Thread::Room(room) => format!("r:{room}"),
        Thread::Dm(other) => format!("d:{other}"),
    }
}

/// The thread a cursor field names (`None`: not a field this code wrote).
fn field_thread(field: &str) -> Option<Thread> {
    match field.split_once(':')? {
        ("r", room) => RoomName::parse(room).ok().map(Thread::Room),
        ("d", user) => UserId::parse(user).ok().map(Thread::Dm),
        _ => None,
    }
}

/// "SEQ:EPOCH".
fn parse_cursor(value: &str) -> Option<Cursor> {
    let (seq, epoch) = value.split_once(':')?;
    Some(Cursor { seq: seq.parse().ok()?, epoch: epoch.to_owned() })
}

/// The set-cursor script's reply: {the cursor's seq, changed (0/1)}; the
/// epoch is the one asked for.
pub fn set_cursor(reply: Value, epoch: String) -> BackendResult<(Cursor, bool)> {
    let mut fields = as_array(reply)?.into_iter();
    let (Some(seq), Some(changed)) = (fields.next(), fields.next()) else {
        return Err(BackendError::BadData("set_cursor: too few fields".into()));
    };
    Ok((Cursor { seq: as_u64(&seq)?, epoch }, as_u64(&changed)? == 1))
}

/// The cursors script's reply: field, value, field, value…
pub fn cursors(reply: Value) -> BackendResult<Vec<(Thread, Cursor)>> {
    let items = as_array(reply)?;
    let mut cursors = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        let (field, value) = (as_string(field)?, as_string(value)?);
        // A field or value this code did not write is skipped, not fatal.
        if let (Some(thread), Some(cursor)) = (field_thread(&field), parse_cursor(&value)) {
            cursors.push((thread, cursor));
        }
    }
    Ok(cursors)
}

/// {seq, epoch, read seq, unread, latest ts (-1: none), last message or nil}.
pub fn summary(reply: Value) -> BackendResult<Summary> {
    let mut fields = as_array(reply)?.into_iter();
    let (Some(seq), Some(epoch), Some(read_seq), Some(unread), Some(last_ts)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(BackendError::BadData("summary: too few fields".into()));
    };
    let last_ts = match last_ts {
        Value::Integer(n) if n < 0 => None,
        other => Some(as_u64(&other)?),
    };
    let seq = as_u64(&seq)?;
    let last = match fields.next() {
        None | Some(Value::Null) => None,
        Some(json) => {
            let raw = stored_json(json)?;
            let stored: StoredMessage =
                serde_json::from_str(raw.get()).map_err(|err| BackendError::BadData(format!("stored event: {err}")))?;
            Some(StoredMessage { seq: stored.seq, json: Arc::from(raw) })
        }
    };
    Ok(Summary { seq, epoch: as_string(epoch)?, read_seq: as_u64(&read_seq)?, unread: as_u64(&unread)?, last_ts, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_replies_parse() {
        assert_eq!(
            parse_outcome("12:1700000000000").unwrap(),
            Outcome::Stored(Appended { seq: 12, ts: 1_700_000_000_000, delivered: true })
        );
        assert_eq!(parse_outcome("unchanged:5").unwrap(), Outcome::Unchanged { ts: 5 });
        assert_eq!(parse_outcome("not_found").unwrap(), Outcome::NotFound);
        assert_eq!(parse_outcome("not_author").unwrap(), Outcome::NotAuthor);
        assert_eq!(parse_outcome("too_many").unwrap(), Outcome::TooManyEmoji);
        assert!(matches!(parse_outcome("12"), Err(BackendError::BadData(_))));
        assert!(parse_outcome("x:1").is_err());
        assert!(parse_outcome("1:x").is_err());
    }

    #[test]
    fn cursor_fields_round_trip() {
        let room = Thread::Room(RoomName::parse("a:b").unwrap());
        let dm = Thread::Dm(UserId::parse("u:1").unwrap());
        assert_eq!(field_thread(&cursor_field(&room)), Some(room));
        assert_eq!(field_thread(&cursor_field(&dm)), Some(dm));
        assert_eq!(field_thread("x:1"), None);
        assert_eq!(field_thread("r:bad room"), None);
        assert_eq!(parse_cursor("12:ab"), Some(Cursor { seq: 12, epoch: "ab".into() }));
        assert_eq!(parse_cursor("12:"), Some(Cursor { seq: 12, epoch: String::new() }));
        assert_eq!(parse_cursor("x:1"), None);
    }

    #[test]
    fn a_page_whose_seqs_would_overflow_is_bad_data() {
        let reply = Value::Array(vec![
            Value::Integer(1),
            Value::from("e"),
            Value::Integer(i64::MAX),
            Value::Array(vec![Value::from("{}"); 3]),
        ]);
        // The third entry's seq would pass u64::MAX only with a larger first; with
        // i64::MAX it fits, so the page parses.
        assert_eq!(page(reply).unwrap().messages.len(), 3);
        let overflowing = Value::Array(vec![
            Value::Integer(1),
            Value::from("e"),
            Value::from(u64::MAX.to_string()),
            Value::Array(vec![Value::from("{}"); 2]),
        ]);
        assert!(matches!(page(overflowing), Err(BackendError::BadData(_))));
    }
}
