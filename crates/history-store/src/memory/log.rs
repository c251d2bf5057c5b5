//! One room's or conversation's capped log in memory, with what the Redis
//! store keeps beside its list: remembered `client_id`s, each message's
//! author and deletion, and the reactions held.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::time::Instant;

use chat_shared::protocol::{
    complete_message, scrub_entry, ClientId, Emoji, ReactionOp, RoomEventKind, StoredMessage, UserId,
};
use chat_shared::{BackendError, BackendResult};

use crate::{Appended, Outcome, Page, Window, MAX_EMOJI_PER_MESSAGE};

/// Most `client_id`s remembered per room or conversation; the oldest go first.
pub const MAX_IDEMPOTENCY_KEYS_PER_LOG: usize = 10_000;

/// Remembers recent `client_id`s of one room or conversation.
#[derive(Default)]
struct Idempotency {
    results: HashMap<(UserId, ClientId), Appended>,
    /// Insertion order, for expiry.
    order: VecDeque<(Instant, (UserId, ClientId))>,
}

impl Idempotency {
    fn get(&mut self, key: &(UserId, ClientId), now: Instant, window: Duration) -> Option<Appended> {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < window && self.order.len() <= MAX_IDEMPOTENCY_KEYS_PER_LOG {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
        self.results.get(key).copied()
    }

    fn insert(&mut self, key: (UserId, ClientId), appended: Appended, now: Instant) {
        self.order.push_back((now, key.clone()));
        self.results.insert(key, appended);
    }
}

/// A `message` (or `dm`) event of the log.
struct MessageMeta {
    author: UserId,
    deleted: bool,
}

/// One room's or conversation's capped log.
pub(super) struct Log {
    pub(super) seq: u64,
    /// Oldest first; consecutive seqs ending at `seq`.
    events: VecDeque<StoredMessage>,
    recent: Idempotency,
    /// The messages among `events`.
    messages: BTreeMap<u64, MessageMeta>,
    /// Message seq → emoji → who holds it.
    reactions: HashMap<u64, BTreeMap<Emoji, BTreeSet<UserId>>>,
    /// The seq of the newest message (0: none).
    last_message: u64,
    /// Names this log; a new log (after expiry) gets a new one. Empty for
    /// conversations.
    pub(super) epoch: String,
    /// The last append, or the creation.
    touched: Instant,
}

impl Log {
    pub(super) fn new(epoch: String, now: Instant) -> Log {
        Log {
            seq: 0,
            events: VecDeque::new(),
            recent: Idempotency::default(),
            messages: BTreeMap::new(),
            reactions: HashMap::new(),
            last_message: 0,
            epoch,
            touched: now,
        }
    }

    pub(super) fn expired(&self, now: Instant, retention: Duration) -> bool {
        now.saturating_duration_since(self.touched) > retention
    }

    /// The oldest seq the log holds (`seq + 1` when empty).
    fn first(&self) -> u64 {
        self.seq + 1 - self.events.len() as u64
    }

    /// The result of an earlier event with the same `(user, client_id)`.
    pub(super) fn seen(
        &mut self,
        key: &Option<(UserId, ClientId)>,
        now: Instant,
        window: Duration,
    ) -> Option<Appended> {
        key.as_ref().and_then(|key| self.recent.get(key, now, window))
    }

    pub(super) fn remember(&mut self, key: Option<(UserId, ClientId)>, appended: Appended, now: Instant) {
        if let Some(key) = key {
            self.recent.insert(key, appended, now);
        }
    }

    /// The checks of a room event against the log, in the protocol's order,
    /// and a reaction's effect on who holds what. `None`: go on and store.
    pub(super) fn check(&mut self, event: &RoomEventKind, from: &UserId, moderator: bool, ts: u64) -> Option<Outcome> {
        let target = event.target()?;
        let first = self.first();
        let Some(meta) = self.messages.get(&target).filter(|m| target >= first && !m.deleted) else {
            return Some(Outcome::NotFound);
        };
        if matches!(event, RoomEventKind::Edit { .. } | RoomEventKind::Delete { .. })
            && meta.author != *from
            && !moderator
        {
            return Some(Outcome::NotAuthor);
        }
        let RoomEventKind::Reaction { emoji, op, .. } = event else { return None };
        let held = self.reactions.get(&target).and_then(|by_emoji| by_emoji.get(emoji));
        let holds = held.is_some_and(|users| users.contains(from));
        let distinct = self.reactions.get(&target).map_or(0, BTreeMap::len);
        if *op == ReactionOp::Add && held.is_none() && distinct >= MAX_EMOJI_PER_MESSAGE {
            return Some(Outcome::TooManyEmoji);
        }
        if holds == (*op == ReactionOp::Add) {
            return Some(Outcome::Unchanged { ts });
        }
        let by_emoji = self.reactions.entry(target).or_default();
        if holds {
            if let Some(users) = by_emoji.get_mut(emoji) {
                users.remove(from);
                if users.is_empty() {
                    by_emoji.remove(emoji);
                }
            }
            if by_emoji.is_empty() {
                self.reactions.remove(&target);
            }
        } else {
            by_emoji.entry(emoji.clone()).or_default().insert(from.clone());
        }
        None
    }

    /// A delete's effect: the target message and its edits lose their text.
    pub(super) fn scrub(&mut self, target: u64) -> BackendResult<()> {
        if let Some(meta) = self.messages.get_mut(&target) {
            meta.deleted = true;
        }
        let first = self.first();
        let mark = format!(",\"target\":{target},\"from\":");
        for stored in self.events.iter_mut().skip(target.saturating_sub(first) as usize) {
            let json = stored.json.get();
            let ours = stored.seq == target || (json.starts_with(r#"{"type":"edit","#) && json.contains(&mark));
            if let Some(scrubbed) = ours.then(|| scrub_entry(json)).flatten() {
                stored.json = raw(scrubbed)?;
            }
        }
        Ok(())
    }

    /// Stores an event (a prefix from `event_prefix` or `dm_prefix`) as the
    /// log's next seq in the capped log and returns its JSON; `author` is
    /// set for messages and DMs.
    pub(super) fn store(
        &mut self,
        prefix: &str,
        author: Option<&UserId>,
        ts: u64,
        cap: usize,
        now: Instant,
    ) -> BackendResult<Arc<RawValue>> {
        let json = raw(complete_message(prefix, self.seq + 1, ts))?;
        self.seq += 1;
        self.touched = now;
        self.events.push_back(StoredMessage { seq: self.seq, json: json.clone() });
        if let Some(author) = author {
            self.messages.insert(self.seq, MessageMeta { author: author.clone(), deleted: false });
            self.last_message = self.seq;
        }
        while self.events.len() > cap {
            self.events.pop_front();
        }
        let first = self.first();
        while self.messages.first_key_value().is_some_and(|(seq, _)| *seq < first) {
            let _ = self.messages.pop_first();
        }
        self.reactions.retain(|seq, _| *seq >= first);
        Ok(json)
    }

    /// The events of `window` (at most `cap`), as the Redis `READ` script
    /// picks them.
    fn read(&self, window: Window, cap: usize) -> Vec<StoredMessage> {
        let limit = window.limit.min(cap);
        let first = self.first();
        let low = window.after.map_or(first, |after| first.max(after.saturating_add(1)));
        let high = window.before.map_or(self.seq, |before| self.seq.min(before.saturating_sub(1)));
        if limit == 0 || high < low {
            return Vec::new();
        }
        let (from, to) = if window.after.is_some() {
            (low, high.min(low + limit as u64 - 1))
        } else {
            (low.max(high.saturating_sub(limit as u64 - 1)), high)
        };
        let skip = (from - first) as usize;
        self.events.iter().skip(skip).take((to - from + 1) as usize).cloned().collect()
    }

    pub(super) fn page(&self, window: Window, cap: usize) -> Page {
        Page { seq: self.seq, epoch: self.epoch.clone(), messages: self.read(window, cap) }
    }

    /// Messages above `cursor` that are not deleted and not by `reader`;
    /// the latest event's time; the newest message.
    pub(super) fn unread(&self, reader: &UserId, cursor: u64) -> (u64, Option<u64>, Option<StoredMessage>) {
        let from = cursor.max(self.first().saturating_sub(1));
        let unread =
            self.messages.range(from + 1..).filter(|(_, meta)| !meta.deleted && meta.author != *reader).count() as u64;
        let last_ts = self.events.back().and_then(|last| ts_of(last.json.get()));
        let first = self.first();
        let last = (self.last_message >= first && self.last_message > 0)
            .then(|| self.events.get((self.last_message - first) as usize).cloned())
            .flatten();
        (unread, last_ts, last)
    }
}

fn raw(json: String) -> BackendResult<Arc<RawValue>> {
    RawValue::from_string(json).map(Arc::from).map_err(|err| BackendError::serialisation(&err))
}

/// The `ts` at the end of a stored event's JSON.
fn ts_of(json: &str) -> Option<u64> {
    let at = json.rfind(",\"ts\":")?;
    json[at + 6..].trim_end_matches('}').parse().ok()
}
