//! Reconnect and resume, as the JS library does them: backoff with equal
//! jitter, and a `join` with `since`/`epoch` that must replay exactly what
//! was missed. [`SeqTracker`] checks each connection's seq stream for gaps
//! and duplicates across resumes.

use std::time::Duration;

/// The JS library's reconnect delay before attempt `attempt` (0-based):
/// exponential from `initial`, capped at `max`, half fixed and half random
/// (`random` in 0..1), as `chat/clock.js` `backoffDelay`.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, random: f64) -> Duration {
    let base = max.min(initial.saturating_mul(2u32.saturating_pow(attempt.min(30))));
    base / 2 + base.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

/// One connection's view of its room's seq stream.
#[derive(Debug, Default)]
pub struct SeqTracker {
    /// The newest seq seen (from `joined` or a `message`).
    pub last: Option<u64>,
    /// The room's history, from `joined`.
    pub epoch: Option<String>,
    /// Seqs never seen though later ones were.
    pub gaps: u64,
    /// Seqs seen twice.
    pub duplicates: u64,
}

impl SeqTracker {
    /// A `joined`: its replay (seqs, oldest first) and the room's seq. A
    /// first join starts the stream at `seq`; a resume continues it.
    pub fn joined(&mut self, epoch: &str, seq: u64, replayed: impl IntoIterator<Item = u64>) {
        if self.epoch.as_deref().is_some_and(|e| e != epoch) {
            self.last = None; // another history: nothing to compare with
        }
        self.epoch = Some(epoch.to_owned());
        if self.last.is_some() {
            for replayed in replayed {
                self.event(replayed);
            }
        }
        match self.last {
            Some(last) if seq > last => {
                self.gaps += seq - last;
                self.last = Some(seq);
            }
            Some(_) => {}
            None => self.last = Some(seq),
        }
    }

    /// A live event with a seq.
    pub fn event(&mut self, seq: u64) {
        match self.last {
            Some(last) if seq <= last => self.duplicates += 1,
            Some(last) => {
                self.gaps += seq - last - 1;
                self.last = Some(seq);
            }
            None => self.last = Some(seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_that_replays_what_was_missed_leaves_no_gap() {
        let mut t = SeqTracker::default();
        t.joined("e", 5, []);
        t.event(6);
        t.event(7);
        t.joined("e", 10, [8, 9, 10]);
        t.event(11);
        assert_eq!((t.gaps, t.duplicates, t.last), (0, 0, Some(11)));
    }

    #[test]
    fn missing_and_repeated_seqs_are_counted() {
        let mut t = SeqTracker::default();
        t.joined("e", 0, []);
        t.event(1);
        t.event(3);
        t.event(3);
        t.joined("e", 6, [5, 6]); // 4 was never replayed
        assert_eq!((t.gaps, t.duplicates), (2, 1));
        t.joined("e", 9, []); // a resume that replays nothing of 7..=9
        assert_eq!(t.gaps, 5);
        t.joined("e2", 1, [1]); // a new history starts afresh
        t.event(2);
        assert_eq!((t.gaps, t.last), (5, Some(2)));
    }

    #[test]
    fn backoff_grows_with_equal_jitter_and_is_capped() {
        let (initial, max) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(backoff(0, initial, max, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(0, initial, max, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(3, initial, max, 0.5), Duration::from_millis(3000));
        assert_eq!(backoff(20, initial, max, 1.0), max);
    }
}
