//! Read state on Redis: cursors in one hash per user (with the set that
//! orders and caps them, both under the user's hash tag), and summaries
//! read from each room's or conversation's own slot.
//!
//! A user's rooms live in many slots of a Redis Cluster, so `summaries`
//! sends one `EVALSHA` per thread, all at once: fred writes them back to
//! back on each node's connection (a pipeline), one round trip per node
//! whatever the number of rooms.

use chat_shared::protocol::{Thread, UserId};
use chat_shared::BackendResult;

use super::replies::{self, cursor_field};
use super::{millis, RedisStore};
use crate::{keys, Cursor, CursorMove, Summary, MAX_CURSORS_PER_USER};

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
        futures_util::future::try_join_all(calls).await?.into_iter().map(replies::summary).collect()
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
        replies::set_cursor(reply, to.epoch)
    }

    pub(super) async fn cursors_script(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        let reply = self
            .eval(
                &self.scripts.cursors,
                vec![keys::user_cursors(user), keys::user_cursor_order(user)],
                vec![MAX_CURSORS_PER_USER.to_string()],
            )
            .await?;
        replies::cursors(reply)
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
