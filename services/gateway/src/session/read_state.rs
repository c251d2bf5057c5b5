//! Read state: `read` (moving the user's cursor, replying `cursor`, relaying
//! a `receipt`) and `inbox`.
//!
//! A `read` is two store calls: the room's latest seq and epoch with the
//! unread count after the asked seq (a seq above the latest is taken as the
//! latest), then the cursor raised in the user's hash. Only when the cursor
//! was already further is the unread count read again, after it. Receipts go through the
//! node's [`crate::relay::Relay`] (one per user and room or conversation
//! per second, the last one always), as two publishes: to the room's (or
//! the other party's) sessions, and to the reader's other sessions, which
//! get it whether or not they joined the room.

use std::cmp::Reverse;
use std::sync::Arc;

use actix::Context;

use chat_shared::protocol::{InboxEntry, ReadRequest, RequestId, ServerFrame, Thread, UserRef};

use super::WsSession;
use crate::engine::{BackendResult, BusMessage, Cursor, CursorMove, Engine, SessionId, Summary, Topic};
use crate::relay::RelayKey;

/// The most rooms, and the most conversations, an `inbox` lists.
pub const MAX_INBOX_ENTRIES: usize = 200;

impl WsSession {
    pub(super) fn read(&mut self, re: Option<RequestId>, request: ReadRequest, ctx: &mut Context<Self>) {
        let (engine, me) = (self.engine().clone(), self.info.user.id.clone());
        let ReadRequest { of: thread, seq } = request;
        let request = async move {
            let asked = Cursor { seq, epoch: Cursor::ANY_EPOCH.to_owned() };
            let now = engine.history.summaries(&me, &[(thread.clone(), asked)]).await?.pop().unwrap_or_default();
            let to = Cursor { seq: now.read_seq, epoch: now.epoch.clone() };
            let (cursor, moved) = engine.history.set_cursor(&me, &thread, to, CursorMove::Raise).await?;
            if cursor.seq == now.read_seq {
                return BackendResult::Ok((thread, now, moved));
            }
            let after = engine.history.summaries(&me, &[(thread.clone(), cursor)]).await?.pop().unwrap_or_default();
            BackendResult::Ok((thread, after, moved))
        };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok((thread, after, moved)) => {
                if moved {
                    act.relay_receipt(&thread, after.read_seq);
                }
                let (room, dm) = thread.into_fields();
                act.reply(&ServerFrame::Cursor { re, room, dm, seq: after.read_seq, unread: after.unread });
            }
            Err(err) => act.reply_backend_error(re, "read", &err),
        });
    }

    /// Offers the receipt of this user's cursor at `seq` in `thread` to the
    /// node's relay throttle.
    fn relay_receipt(&self, thread: &Thread, seq: u64) {
        let (engine, user, origin) = (self.engine().clone(), self.info.user.clone(), self.id().clone());
        let key = RelayKey::Receipt(user.id.clone(), thread.clone());
        let thread = thread.clone();
        self.node.relay.offer(
            key,
            Box::new(move || Box::pin(async move { publish_receipt(&engine, &user, &thread, seq, &origin).await })),
        );
    }

    pub(super) fn inbox(&mut self, re: Option<RequestId>, ctx: &mut Context<Self>) {
        let (engine, me, grant) = (self.engine().clone(), self.info.user.id.clone(), self.grant.clone());
        let request = async move {
            let mut cursors = engine.history.cursors(&me).await?;
            cursors.retain(|(thread, _)| match thread {
                Thread::Room(room) => grant.allows(room),
                Thread::Dm(_) => true,
            });
            let summaries = engine.history.summaries(&me, &cursors).await?;
            BackendResult::Ok(inbox_lists(cursors.into_iter().map(|(thread, _)| thread).zip(summaries)))
        };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok((rooms, dms)) => act.reply(&ServerFrame::Inbox { re, rooms, dms }),
            Err(err) => act.reply_backend_error(re, "inbox", &err),
        });
    }
}

/// Newest activity first (`None`, no event: last), then by name.
type InboxOrder = (Reverse<Option<u64>>, String);

/// The rooms and the conversations, each newest activity first (ties by
/// name; none yet: last), at most [`MAX_INBOX_ENTRIES`] of each.
fn inbox_lists(threads: impl Iterator<Item = (Thread, Summary)>) -> (Vec<InboxEntry>, Vec<InboxEntry>) {
    let (mut rooms, mut dms) = (Vec::new(), Vec::new());
    for (thread, summary) in threads {
        let key = (Reverse(summary.last_ts), thread_name(&thread).to_owned());
        let (room, dm) = thread.into_fields();
        let list = if room.is_some() { &mut rooms } else { &mut dms };
        let Summary { seq, read_seq, unread, last, .. } = summary;
        list.push((key, InboxEntry { room, dm, seq, read_seq, unread, last }));
    }
    let finish = |mut list: Vec<(InboxOrder, InboxEntry)>| {
        // `None` sorts below every `Some`, so under `Reverse` it comes last.
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list.into_iter().take(MAX_INBOX_ENTRIES).map(|(_, entry)| entry).collect()
    };
    (finish(rooms), finish(dms))
}

fn thread_name(thread: &Thread) -> &str {
    match thread {
        Thread::Room(room) => room.as_str(),
        Thread::Dm(user) => user.as_str(),
    }
}

/// Publishes a receipt of `reader` at `seq`: to the room's sessions of other
/// users (or the other party's sessions), and to the reader's sessions but
/// `origin`. Failures are logged: a receipt is a hint, the cursor is stored.
async fn publish_receipt(engine: &Engine, reader: &UserRef, thread: &Thread, seq: u64, origin: &SessionId) {
    let mine = |room, dm| ServerFrame::Receipt { room, dm, user: reader.clone(), seq };
    let mut sends = Vec::with_capacity(2);
    match thread {
        Thread::Room(room) => {
            let frame = mine(Some(room.clone()), None);
            sends.push((Topic::Room(room.clone()), BusMessage::for_others(&frame, &reader.id)));
            sends.push((Topic::User(reader.id.clone()), except(&frame, origin)));
        }
        Thread::Dm(other) => {
            if *other != reader.id {
                let theirs = mine(None, Some(reader.id.clone()));
                sends.push((Topic::User(other.clone()), BusMessage::frame(&theirs)));
            }
            sends.push((Topic::User(reader.id.clone()), except(&mine(None, Some(other.clone())), origin)));
        }
    }
    for (topic, msg) in sends {
        if let Err(err) = engine.bus.publish(&topic, msg).await {
            tracing::warn!(user = %reader.id, ?topic, cause = %err, "a read receipt was not relayed");
        }
    }
}

/// `frame` for every session of the topic but `origin`.
fn except(frame: &ServerFrame, origin: &SessionId) -> BusMessage {
    let mut msg = BusMessage::frame(frame);
    if let BusMessage::Frame(payload) = &mut msg {
        payload.skip_session = Some(Arc::clone(origin));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::protocol::{RoomName, UserId};

    fn summary(last_ts: Option<u64>) -> Summary {
        Summary { last_ts, ..Summary::default() }
    }

    #[test]
    fn inbox_orders_by_activity_then_name_with_silent_threads_last() {
        let room = |name: &str| Thread::Room(RoomName::parse(name).unwrap());
        let threads = vec![
            (room("quiet"), summary(None)),
            (room("b"), summary(Some(5))),
            (room("a"), summary(Some(5))),
            (room("new"), summary(Some(9))),
            (Thread::Dm(UserId::parse("bob").unwrap()), summary(Some(1))),
        ];
        let (rooms, dms) = inbox_lists(threads.into_iter());
        let names: Vec<_> = rooms.iter().map(|e| e.room.as_ref().unwrap().as_str()).collect();
        assert_eq!(names, ["new", "a", "b", "quiet"]);
        assert_eq!(dms.len(), 1);
    }
}
