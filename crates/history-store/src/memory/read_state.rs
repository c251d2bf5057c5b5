//! Every user's read cursors in memory: the same rules as the Redis
//! store's `SET_CURSOR` and `CURSORS` scripts (never backwards, another
//! epoch counts as 0, at most [`MAX_CURSORS_PER_USER`] per user, the least
//! recently moved dropped first). A user's cursors are forgotten a
//! retention after the last one was written, as the Redis hash expires.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use chat_shared::protocol::{Thread, UserId};

use crate::{Cursor, CursorMove, MAX_CURSORS_PER_USER};

#[derive(Default)]
struct UserCursors {
    /// Thread → (cursor, the tick it was last set or moved).
    entries: HashMap<Thread, (Cursor, u64)>,
    /// The last write, for expiry.
    written: Option<Instant>,
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct Cursors {
    users: HashMap<UserId, UserCursors>,
    /// Orders writes (as the Redis store's millisecond scores do, without ties).
    tick: u64,
}

impl Cursors {
    /// The user's cursors, unless they expired.
    fn live(&mut self, user: &UserId, now: Instant, retention: Duration) -> Option<&mut UserCursors> {
        let expired = self.users.get(user)?.written.is_some_and(|at| now.saturating_duration_since(at) > retention);
        if expired {
            self.users.remove(user);
            return None;
        }
        self.users.get_mut(user)
    }

    pub(super) fn set(
        &mut self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
        now: Instant,
        retention: Duration,
    ) -> (Cursor, bool) {
        let current =
            self.live(user, now, retention).and_then(|cursors| cursors.entries.get(thread)).map(|(cursor, _)| {
                if cursor.epoch == to.epoch {
                    cursor.seq
                } else {
                    0
                }
            });
        match (how, current) {
            (CursorMove::Create, Some(seq)) => return (Cursor { seq, epoch: to.epoch }, false),
            (CursorMove::Raise, Some(seq)) if seq >= to.seq => return (Cursor { seq, epoch: to.epoch }, false),
            _ => {}
        }
        self.tick += 1;
        let tick = self.tick;
        let cursors = self.users.entry(user.clone()).or_default();
        cursors.entries.insert(thread.clone(), (to.clone(), tick));
        cursors.written = Some(now);
        if cursors.entries.len() > MAX_CURSORS_PER_USER {
            let oldest = cursors.entries.iter().min_by_key(|(_, (_, tick))| *tick).map(|(thread, _)| thread.clone());
            if let Some(oldest) = oldest {
                cursors.entries.remove(&oldest);
            }
        }
        (to, how == CursorMove::Raise)
    }

    /// Forgets the cursors of users who wrote none for `retention` (the
    /// store's periodic sweep).
    pub(super) fn sweep(&mut self, now: Instant, retention: Duration) {
        self.users
            .retain(|_, cursors| cursors.written.is_some_and(|at| now.saturating_duration_since(at) <= retention));
    }

    /// The user's cursors, the most recently set or moved first.
    pub(super) fn of(&mut self, user: &UserId, now: Instant, retention: Duration) -> Vec<(Thread, Cursor)> {
        let Some(cursors) = self.live(user, now, retention) else { return Vec::new() };
        let mut all: Vec<_> = cursors.entries.iter().map(|(thread, (cursor, tick))| (*tick, thread, cursor)).collect();
        all.sort_by_key(|(tick, _, _)| std::cmp::Reverse(*tick));
        all.into_iter().map(|(_, thread, cursor)| (thread.clone(), cursor.clone())).collect()
    }
}
