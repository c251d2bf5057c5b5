//! A room's recent events as this node saw them on the room's stream, so
//! that a `join` or a resume can be answered without reading the history.
//!
//! A node with local members in a room receives every event of the room, in
//! seq order. The cache keeps the last `max_events` of them, consecutive,
//! and applies what a `delete` does to the stored entries (the message and
//! its edits lose their text), so an entry here is byte for byte what the
//! history holds. Live frames carry no epoch, so the cache is usable only
//! once a history read (a join's) has named the epoch of what it holds; a
//! gap in the seqs, a new history (seq 1 again) or a lagging bus forgets the
//! epoch, and joins read the history again until the next read names it.
//! A room whose history has had no new event for most of the retention is
//! not served from here either: the store is about to expire it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use chat_shared::protocol::{scrub_entry, StoredMessage};

use crate::engine::{now_ms, Page, Window};

/// How much a room's cache holds, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events kept (0: none, joins always read the history).
    pub max_events: usize,
    /// `history.retention_days`: the store forgets a room this long after
    /// its last event.
    pub retention: Duration,
}

impl Limits {
    /// How long after a room's last event its cache may still answer: 90% of
    /// the retention, leaving the store's expiry a margin.
    fn fresh_for(self) -> Duration {
        self.retention - self.retention / 10
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Recent {
    /// The history the events belong to, once a read has named it.
    epoch: Option<String>,
    /// The newest seq seen (0: none yet).
    latest: u64,
    /// Consecutive events ending at `latest`, oldest first.
    events: VecDeque<StoredMessage>,
    /// When the room's latest event was stored (as near as this node knows).
    last_event_at: Option<Instant>,
}

/// The `target` of a `delete` frame.
#[derive(Deserialize)]
struct Target {
    target: u64,
}

/// The `ts` of a stored event.
#[derive(Deserialize)]
struct Ts {
    ts: u64,
}

impl Recent {
    /// Takes a room event seen live (`kind` its frame's type).
    pub fn observe(&mut self, kind: &str, seq: u64, json: &str, limits: Limits) {
        let max_events = limits.max_events;
        if max_events == 0 || seq <= self.latest && !(seq == 1 && self.latest > 1) {
            return; // off, or already seen
        }
        if seq != self.latest + 1 {
            // A gap, or a new history: what is held no longer joins up.
            self.forget();
        }
        let Ok(raw) = RawValue::from_string(json.to_owned()) else { return self.forget() };
        if kind == "delete" {
            if let Ok(Target { target }) = serde_json::from_str::<Target>(json) {
                self.scrub(target);
            }
        }
        self.latest = seq;
        self.last_event_at = Some(Instant::now());
        self.events.push_back(StoredMessage { seq, json: Arc::from(raw) });
        while self.events.len() > max_events {
            self.events.pop_front();
        }
    }

    /// What a `delete` of `target` does to the entries held.
    fn scrub(&mut self, target: u64) {
        let mark = format!(",\"target\":{target},\"from\":");
        for stored in self.events.iter_mut().filter(|stored| stored.seq >= target) {
            let json = stored.json.get();
            let ours = stored.seq == target || (json.starts_with(r#"{"type":"edit","#) && json.contains(&mark));
            let scrubbed = ours.then(|| scrub_entry(json)).flatten().and_then(|s| RawValue::from_string(s).ok());
            if let Some(scrubbed) = scrubbed {
                stored.json = Arc::from(scrubbed);
            }
        }
    }

    /// Forgets everything (the bus may have missed events).
    pub fn forget(&mut self) {
        self.epoch = None;
        self.events.clear();
        self.latest = 0;
        self.last_event_at = None;
    }

    /// Takes a history read of the room (a join's), made after this node
    /// subscribed: it names the epoch, and fills the cache when it is at
    /// least as new.
    pub fn seed(&mut self, page: &Page, limits: Limits) {
        let max_events = limits.max_events;
        // An empty history names an epoch that may go at any time: nothing
        // to keep.
        let Some(last) = page.messages.last() else { return };
        if max_events == 0 || page.epoch.is_empty() {
            return;
        }
        let consecutive = page.messages.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1);
        let ends_at_seq = last.seq == page.seq;
        if page.seq >= self.latest && consecutive && ends_at_seq {
            let Ok(Ts { ts }) = serde_json::from_str::<Ts>(last.json.get()) else { return };
            let age = Duration::from_millis(now_ms().saturating_sub(ts));
            self.last_event_at = Instant::now().checked_sub(age);
            self.latest = page.seq;
            let skip = page.messages.len().saturating_sub(max_events);
            self.events = page.messages[skip..].iter().cloned().collect();
            self.epoch = Some(page.epoch.clone());
        } else if self.epoch.is_none() && self.first_seq().is_some_and(|first| page.seq + 1 >= first) {
            // Live events already went past the read, without a gap after
            // it: they are of the history it names.
            self.epoch = Some(page.epoch.clone());
        }
    }

    fn first_seq(&self) -> Option<u64> {
        self.events.front().map(|first| first.seq)
    }

    /// The page a history read of `window` would give, if what is held
    /// covers it (and is of `epoch`, when one is asked for).
    pub fn replay(&self, window: Window, epoch: Option<&str>, limits: Limits) -> Option<Page> {
        let held = self.epoch.as_deref()?;
        if self.last_event_at?.elapsed() >= limits.fresh_for() {
            return None; // the store may have expired it
        }
        if epoch.is_some_and(|asked| asked != held) || window.before.is_some() {
            return None;
        }
        let from_start = self.first_seq() == Some(1);
        let messages: Vec<StoredMessage> = match window.after {
            None => {
                if self.events.len() < window.limit && !from_start {
                    return None;
                }
                let skip = self.events.len().saturating_sub(window.limit);
                self.events.iter().skip(skip).cloned().collect()
            }
            Some(since) if since >= self.latest => Vec::new(),
            Some(since) => {
                let first = self.first_seq()?;
                let wanted = (self.latest - since) as usize;
                if since + 1 < first || wanted > window.limit {
                    return None;
                }
                self.events.iter().skip((since + 1 - first) as usize).cloned().collect()
            }
        };
        Some(Page { seq: self.latest, epoch: held.to_owned(), messages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_events: 20, retention: Duration::from_secs(3600) };

    fn message(seq: u64, text: &str) -> String {
        message_at(seq, text, now_ms())
    }

    fn message_at(seq: u64, text: &str, ts: u64) -> String {
        format!(
            r#"{{"type":"message","room":"r","from":{{"id":"u","name":"u"}},"text":"{text}","seq":{seq},"ts":{ts}}}"#
        )
    }

    fn page(seq: u64, epoch: &str, from: u64) -> Page {
        let messages = (from..=seq)
            .map(|s| StoredMessage { seq: s, json: Arc::from(RawValue::from_string(message(s, "hi")).unwrap()) })
            .collect();
        Page { seq, epoch: epoch.to_owned(), messages }
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn nothing_is_served_until_a_read_names_the_epoch() {
        let mut recent = Recent::default();
        recent.observe("message", 1, &message(1, "a"), LIMITS);
        assert!(recent.replay(Window::latest(5), None, LIMITS).is_none());
        recent.seed(&page(1, "e1", 1), LIMITS);
        let replay = recent.replay(Window::latest(5), None, LIMITS).unwrap();
        assert_eq!((replay.seq, replay.epoch.as_str(), seqs(&replay)), (1, "e1", vec![1]), "the room has one event");
        recent.observe("message", 2, &message(2, "b"), LIMITS);
        assert_eq!(seqs(&recent.replay(Window::latest(5), Some("e1"), LIMITS).unwrap()), vec![1, 2]);
        assert!(recent.replay(Window::latest(5), Some("e0"), LIMITS).is_none(), "another history");
    }

    #[test]
    fn a_room_near_its_retention_is_read_again() {
        let mut recent = Recent::default();
        let short = Limits { max_events: 20, retention: Duration::from_millis(200) };
        let old = StoredMessage { seq: 2, json: Arc::from(RawValue::from_string(message_at(2, "old", 1)).unwrap()) };
        recent.seed(&Page { seq: 2, epoch: "e".into(), messages: vec![old] }, short); // stored at ts 1: long ago
        assert!(recent.replay(Window::latest(1), None, short).is_none());
        recent.observe("message", 3, &message(3, "now"), short);
        assert!(recent.replay(Window::latest(1), None, short).is_some(), "just stored");
        std::thread::sleep(Duration::from_millis(190));
        assert!(recent.replay(Window::latest(1), None, short).is_none(), "past 90% of the retention");
    }

    #[test]
    fn replays_cover_only_what_is_held() {
        let mut recent = Recent::default();
        recent.seed(&page(50, "e", 1), LIMITS); // holds 31..=50
        assert_eq!(seqs(&recent.replay(Window::latest(20), None, LIMITS).unwrap()), (31..=50).collect::<Vec<_>>());
        assert!(recent.replay(Window::latest(21), None, LIMITS).is_none(), "older events are not held");
        assert_eq!(seqs(&recent.replay(Window::after(40, 1000), None, LIMITS).unwrap()), (41..=50).collect::<Vec<_>>());
        assert_eq!(
            seqs(&recent.replay(Window::after(30, 1000), None, LIMITS).unwrap()).len(),
            20,
            "from just before the first"
        );
        assert!(recent.replay(Window::after(29, 1000), None, LIMITS).is_none());
        assert!(recent.replay(Window::after(40, 5), None, LIMITS).is_none(), "more than the limit: read it");
        assert!(recent.replay(Window::after(50, 1000), None, LIMITS).unwrap().messages.is_empty());
        let mut few = Recent::default();
        few.seed(&page(3, "e", 1), LIMITS);
        assert_eq!(seqs(&few.replay(Window::latest(100), None, LIMITS).unwrap()), vec![1, 2, 3], "the whole history");
        let empty = Page { seq: 0, epoch: "e".into(), messages: vec![] };
        let mut fresh = Recent::default();
        fresh.seed(&empty, LIMITS);
        assert!(fresh.replay(Window::latest(100), None, LIMITS).is_none(), "an empty history's epoch is not kept");
    }

    #[test]
    fn a_gap_or_a_new_history_forgets_until_the_next_read() {
        let mut recent = Recent::default();
        recent.seed(&page(10, "e", 1), LIMITS);
        recent.observe("message", 12, &message(12, "x"), LIMITS);
        assert!(recent.replay(Window::latest(1), None, LIMITS).is_none(), "11 was missed");
        recent.seed(&page(12, "e", 1), LIMITS);
        assert_eq!(recent.replay(Window::latest(1), None, LIMITS).unwrap().seq, 12);
        recent.observe("message", 1, &message(1, "new"), LIMITS);
        assert!(recent.replay(Window::latest(1), None, LIMITS).is_none(), "seq 1 again: a new history");
        recent.observe("message", 2, &message(2, "next"), LIMITS);
        recent.seed(&page(1, "e2", 1), LIMITS); // an older read: names the epoch of what is held
        assert_eq!(seqs(&recent.replay(Window::latest(5), Some("e2"), LIMITS).unwrap()), vec![1, 2]);
    }

    #[test]
    fn a_delete_scrubs_the_message_and_its_edits_as_the_store_does() {
        let mut recent = Recent::default();
        let read = page(2, "e", 1);
        recent.seed(&read, LIMITS);
        let edit =
            r#"{"type":"edit","room":"r","target":2,"from":{"id":"u","name":"u"},"text":"fixed","seq":3,"ts":1}"#;
        recent.observe("edit", 3, edit, LIMITS);
        let delete = r#"{"type":"delete","room":"r","target":2,"from":{"id":"u","name":"u"},"seq":4,"ts":1}"#;
        recent.observe("delete", 4, delete, LIMITS);
        let replay = recent.replay(Window::latest(10), None, LIMITS).unwrap();
        let texts: Vec<&str> = replay.messages.iter().map(|m| m.json.get()).collect();
        assert!(texts[0].contains(r#""text":"hi""#), "message 1 untouched: {}", texts[0]);
        assert_eq!(texts[1], scrub_entry(read.messages[1].json.get()).unwrap());
        assert_eq!(texts[2], scrub_entry(edit).unwrap());
        assert_eq!(texts[3], delete);
    }
}
