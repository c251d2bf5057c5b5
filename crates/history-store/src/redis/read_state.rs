//! Read state on Redis: cursors in one hash per user (with the set that
//! orders and caps them, both under the user's hash tag), and summaries
//! read from each room's or conversation's own slot.
//!
//! A user's rooms live in many slots of a Redis Cluster, so `summaries`
//! sends one `EVALSHA` per thread, all at once: fred writes them back to
//! back on each node's connection (a pipeline), one round trip per node
//! whatever the number of rooms.

use std::sync::Arc;

use fred::types::Value;
use serde_json::value::RawValue;

use chat_shared::protocol::{RoomName, StoredMessage, Thread, UserId};
use chat_shared::{BackendError, BackendResult};

use super::{as_array, as_string, as_u64, millis, RedisStore};
use crate::{keys, Cursor, CursorMove, Summary, MAX_CURSORS_PER_USER};

/// A cursor's field in the user's hash.
fn cursor_field(thread: &Thread) -> String {
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

impl RedisStore {
    /// The keys and mode of the summary script for `reader` in `thread`.
    fn summary_call(reader: &UserId, thread: &Thread, cursor: &Cursor) -> (Vec<String>, Vec<String>) {
        match thread {
            Thread::Room(room) => (
                vec![
                    keys::room_seq(room),
                    keys::room_history(room),
                    keys::room_epoch(room),
                    keys::room_messages(room),
                    keys::room_authored(room, reader),
                    keys::room_last_message(room),
                ],
                vec![cursor.seq.to_string(), cursor.epoch.clone(), "room".to_owned()],
            ),
            Thread::Dm(other) => {
                let seq = keys::conversation_seq(reader, other);
                (
                    vec![
                        seq.clone(),
                        keys::conversation_history(reader, other),
                        seq.clone(),
                        seq.clone(),
                        keys::conversation_authored(reader, other, reader),
                        seq,
                    ],
                    vec![cursor.seq.to_string(), String::new(), "dm".to_owned()],
                )
            }
        }
    }

    pub(super) async fn summaries_pipelined(
        &self,
        reader: &UserId,
        threads: &[(Thread, Cursor)],
    ) -> BackendResult<Vec<Summary>> {
        self.check()?;
        // Every call is written at once, without waiting for the replies
        // before it: fred pipelines the commands of concurrent futures, so
        // this is one round trip to each node that holds some of the rooms.
        let calls = threads.iter().map(|(thread, cursor)| {
            let (keys, args) = Self::summary_call(reader, thread, cursor);
            self.eval(&self.scripts.summary, keys, args)
        });
        futures_util::future::try_join_all(calls).await?.into_iter().map(parse_summary).collect()
    }

    pub(super) async fn set_cursor_script(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)> {
        let mode = match how {
            CursorMove::Create => "create",
            CursorMove::Raise => "raise",
        };
        let reply = self
            .eval(
                &self.scripts.set_cursor,
                vec![keys::user_cursors(user), keys::user_cursor_order(user)],
                vec![
                    cursor_field(thread),
                    to.seq.to_string(),
                    to.epoch.clone(),
                    mode.to_owned(),
                    millis(self.history.retention()),
                    MAX_CURSORS_PER_USER.to_string(),
                ],
            )
            .await?;
        let mut fields = as_array(reply)?.into_iter();
        let (Some(seq), Some(changed)) = (fields.next(), fields.next()) else {
            return Err(BackendError::BadData("set_cursor: too few fields".into()));
        };
        Ok((Cursor { seq: as_u64(&seq)?, epoch: to.epoch }, as_u64(&changed)? == 1))
    }

    pub(super) async fn cursors_script(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        let reply = self
            .eval(
                &self.scripts.cursors,
                vec![keys::user_cursors(user), keys::user_cursor_order(user)],
                vec![MAX_CURSORS_PER_USER.to_string()],
            )
            .await?;
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

    /// The first DM of a conversation creates both users' cursors at 0 (a
    /// cursor that exists stays as it is).
    pub(super) async fn create_dm_cursors(&self, from: &UserId, to: &UserId) -> BackendResult<()> {
        let (with_to, with_from) = (Thread::Dm(to.clone()), Thread::Dm(from.clone()));
        let mine = self.set_cursor_script(from, &with_to, Cursor::default(), CursorMove::Create);
        if from == to {
            return mine.await.map(drop);
        }
        let theirs = self.set_cursor_script(to, &with_from, Cursor::default(), CursorMove::Create);
        let (mine, theirs) = tokio::join!(mine, theirs);
        mine.and(theirs).map(drop)
    }
}

/// {seq, epoch, read seq, unread, latest ts (-1: none), last message or nil}.
fn parse_summary(reply: Value) -> BackendResult<Summary> {
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
            let raw = RawValue::from_string(as_string(json)?)
                .map_err(|err| BackendError::BadData(format!("stored event: {err}")))?;
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
}
