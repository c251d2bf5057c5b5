//! The relay throttle of read receipts and status changes on this node: at
//! most one relay per key (a user and a room or conversation; a user's
//! status) per interval, and the last one always goes out.
//!
//! A relay offered inside the interval after the previous one waits; a
//! later offer replaces it (only the latest cursor or status matters), and
//! it goes out when the interval has passed. Relays are jobs (async
//! publishes) run on the runtime, not on the session that offered them, so
//! a closed session's last receipt still goes out.
//!
//! The map holds at most `max_keys` keys; entries whose interval has passed
//! and that hold nothing are swept when it is full, and when nothing can be
//! swept an offer goes out at once (unthrottled rather than unbounded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use chat_shared::protocol::{Thread, UserId};

/// What one relay is throttled under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RelayKey {
    /// A user's read receipts in a room or conversation.
    Receipt(UserId, Thread),
    /// A user's status changes.
    Status(UserId),
}

/// A relay: the publishes it makes.
pub type Job = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

struct Entry {
    last_sent: Instant,
    /// The latest offer inside the interval, and whether its timer is armed.
    pending: Option<Job>,
}

/// See the module documentation.
pub struct Relay {
    interval: Duration,
    max_keys: usize,
    entries: Mutex<HashMap<RelayKey, Entry>>,
}

/// What became of an offer (for tests and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Sent at once.
    Now,
    /// Held until the interval has passed (replacing any held before).
    Later,
}

impl Relay {
    pub fn new(interval: Duration, max_keys: usize) -> Arc<Relay> {
        Arc::new(Relay { interval, max_keys, entries: Mutex::new(HashMap::new()) })
    }

    /// Offers a relay under `key`; runs `job` now or when the interval since
    /// the last relay of `key` has passed.
    pub fn offer(self: &Arc<Self>, key: RelayKey, job: Job) -> Offered {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_keys && !entries.contains_key(&key) {
            let interval = self.interval;
            entries.retain(|_, e| e.pending.is_some() || now.saturating_duration_since(e.last_sent) < interval);
            if entries.len() >= self.max_keys {
                drop(entries);
                tokio::spawn(job());
                return Offered::Now;
            }
        }
        match entries.get_mut(&key) {
            Some(entry) if now.saturating_duration_since(entry.last_sent) < self.interval => {
                let armed = entry.pending.is_some();
                entry.pending = Some(job);
                if !armed {
                    let due = entry.last_sent + self.interval;
                    let relay = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(due).await;
                        relay.fire(&key);
                    });
                }
                Offered::Later
            }
            _ => {
                entries.insert(key, Entry { last_sent: now, pending: None });
                drop(entries);
                tokio::spawn(job());
                Offered::Now
            }
        }
    }

    /// The interval of `key` has passed: its held relay goes out.
    fn fire(&self, key: &RelayKey) {
        let job = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = entries.get_mut(key) else { return };
            entry.last_sent = Instant::now();
            entry.pending.take()
        };
        if let Some(job) = job {
            tokio::spawn(job());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn recorder(log: &Arc<Mutex<Vec<u64>>>, value: u64) -> Job {
        let log = log.clone();
        Box::new(move || {
            Box::pin(async move {
                log.lock().unwrap().push(value);
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn one_relay_per_interval_and_the_last_one_always() {
        let relay = Relay::new(Duration::from_secs(1), 100);
        let log = Arc::new(Mutex::new(Vec::new()));
        let key = RelayKey::Status(UserId::parse("u").unwrap());
        assert_eq!(relay.offer(key.clone(), recorder(&log, 1)), Offered::Now);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(relay.offer(key.clone(), recorder(&log, 2)), Offered::Later);
        assert_eq!(relay.offer(key.clone(), recorder(&log, 3)), Offered::Later);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(*log.lock().unwrap(), [1], "nothing more inside the interval");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(*log.lock().unwrap(), [1, 3], "the latest held one goes out after the interval, once");
        // Another key is not held back.
        let other = RelayKey::Status(UserId::parse("v").unwrap());
        assert_eq!(relay.offer(other, recorder(&log, 4)), Offered::Now);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(relay.offer(key, recorder(&log, 5)), Offered::Now);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(*log.lock().unwrap(), [1, 3, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_sends_at_once_rather_than_grow() {
        let relay = Relay::new(Duration::from_secs(1), 2);
        let sent = Arc::new(AtomicU64::new(0));
        for user in ["a", "b", "c"] {
            let sent = sent.clone();
            let job: Job = Box::new(move || {
                Box::pin(async move {
                    sent.fetch_add(1, Ordering::SeqCst);
                })
            });
            assert_eq!(relay.offer(RelayKey::Status(UserId::parse(user).unwrap()), job), Offered::Now);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent.load(Ordering::SeqCst), 3);
        assert_eq!(relay.entries.lock().unwrap().len(), 2);
    }
}
