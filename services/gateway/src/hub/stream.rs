//! Where one member of a room is in the room's stream, and what becomes of
//! each frame the room publishes. Pure state over a member's [`Outbox`].
//!
//! ```text
//!            join                    catch-up read (joined / missed events)
//!   (none) ───────▶ Joining ──────────────────────────────────────────────▶ Live
//!                      ▲                                                   │  ▲
//!          repeated join│                  seq > seen + 1 (a gap)           │  │ catch-up read
//!                      └──── Live ◀───────────────────────────── CatchingUp ◀┘  │
//!                                 └──────────────────────────────────────────────┘
//! ```
//!
//! While `Joining` or `CatchingUp` every frame is held (bounded by the
//! outbox limit: past it the connection is closed with 4008). A catch-up
//! read (the join's history, or the events missed in a gap) ends it: the
//! member gets what it lacks after the seq it has, then the held frames newer
//! than that, and is `Live` again; a gap still among the held frames makes it
//! `CatchingUp` from there, and the caller asks for another read. `Live`, a
//! frame is delivered only if its seq is the next one (duplicates and older
//! seqs are dropped); seq 1 after a higher seq starts a new history (the
//! room's expired or was lost).

use bytestring::ByteString;

use chat_shared::CloseCode;

use crate::engine::FramePayload;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Push};

/// Frames held for a member (or a session's DMs) until an earlier reply has
/// gone out: `(seq, kind, JSON)`, oldest first.
#[derive(Debug, Default)]
pub struct Held {
    frames: Vec<(Option<u64>, &'static str, ByteString)>,
    bytes: usize,
}

impl Held {
    /// Holds `frame`; false (holding nothing more) when the held bytes pass
    /// `max_bytes`: the caller closes the connection with 4008.
    pub fn push(&mut self, frame: &FramePayload, max_bytes: usize) -> bool {
        self.bytes += frame.json.len();
        if self.bytes > max_bytes {
            *self = Held::default();
            return false;
        }
        self.frames.push((frame.seq, frame.kind, frame.json.clone()));
        true
    }

    /// Every held frame, in order.
    pub fn into_frames(self) -> impl Iterator<Item = (Option<u64>, &'static str, ByteString)> {
        self.frames.into_iter()
    }
}

/// A member's place in its room's stream (see the module documentation).
#[derive(Debug)]
pub enum Stream {
    /// The join's history is being read; `previous` is the seq a repeated
    /// join had seen (a first join has none).
    Joining { held: Held, previous: Option<u64> },
    /// Events were missed after `seen` and are being re-read.
    CatchingUp { held: Held, seen: u64 },
    /// Frames go straight out; `seen` is the newest seq delivered.
    Live { seen: u64 },
}

/// What a frame offered to a member came to (the caller counts them, once
/// per fan-out rather than once per recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Queued on the outbox.
    Delivered,
    /// Already seen, or the outbox is closing.
    Dropped,
    /// Held until a catch-up read.
    Held,
    /// A gap before it: held, and the room needs a catch-up read.
    Gap,
    /// The outbox (or what is held) overflowed: the connection is being
    /// closed with 4008.
    Overflowed,
}

/// How a catch-up read left a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    Live,
    /// A gap is still among the held frames: another read is needed.
    Gap,
    /// The store no longer holds what the member missed: its connection is
    /// closed (1001) so that the client resumes with `since`.
    Lost,
}

impl Stream {
    /// The state of a (re-)joining member, given what it was before.
    pub fn joining(before: Option<&Stream>) -> Stream {
        let previous = match before {
            Some(Stream::Live { seen } | Stream::CatchingUp { seen, .. }) => Some(*seen),
            Some(Stream::Joining { previous, .. }) => *previous,
            None => None,
        };
        Stream::Joining { held: Held::default(), previous }
    }

    /// The seq a catch-up read must start after, for a member that is
    /// catching up.
    pub fn catching_up_from(&self) -> Option<u64> {
        match self {
            Stream::CatchingUp { seen, .. } => Some(*seen),
            _ => None,
        }
    }

    /// Makes a live member catch up (delivery to this node may have missed
    /// events); returns the seq it has.
    pub fn hold_for_catch_up(&mut self) -> Option<u64> {
        match self {
            Stream::Live { seen } => {
                let seen = *seen;
                *self = Stream::CatchingUp { held: Held::default(), seen };
                Some(seen)
            }
            Stream::CatchingUp { seen, .. } => Some(*seen),
            Stream::Joining { .. } => None,
        }
    }

    /// A frame the room published, for this member.
    pub fn offer(&mut self, frame: &FramePayload, outbox: &Outbox, max_held_bytes: usize) -> Offered {
        if outbox.is_closing() {
            return Offered::Dropped;
        }
        match self {
            Stream::Joining { held, .. } | Stream::CatchingUp { held, .. } => hold(held, frame, outbox, max_held_bytes),
            Stream::Live { seen } => {
                if let Some(seq) = frame.seq {
                    if seq == 1 && *seen >= 1 {
                        // Seq 1 is published once per history: the room's
                        // history restarted (expired or lost; a new epoch).
                        *seen = 0;
                    }
                    if seq <= *seen {
                        return Offered::Dropped;
                    }
                    if seq > *seen + 1 {
                        // Events went missing on the way (a lagging or lost
                        // subscription): hold from here and re-read.
                        let mut held = Held::default();
                        let offered = hold(&mut held, frame, outbox, max_held_bytes);
                        if offered != Offered::Held {
                            return offered;
                        }
                        *self = Stream::CatchingUp { held, seen: *seen };
                        return Offered::Gap;
                    }
                    *seen = seq;
                }
                match outbox.push_text(frame.json.clone()) {
                    Push::Queued => Offered::Delivered,
                    Push::Overflowed => Offered::Overflowed,
                    Push::Closed => Offered::Dropped,
                }
            }
        }
    }

    /// Ends a join: `joined` (whose history ends at `seq`) goes out, then
    /// the held frames newer than `seq`.
    pub fn complete_join(&mut self, out: Out<'_>, joined: ByteString, seq: u64) -> Caught {
        let held = self.take_held();
        out.push("joined", joined);
        self.release(out, held, seq)
    }

    /// Ends a join that failed: a repeated join goes on from what it had
    /// seen; `false` for a first join (the member must be removed).
    pub fn abort_join(&mut self, out: Out<'_>) -> bool {
        let Stream::Joining { previous: Some(previous), .. } = self else { return false };
        let previous = *previous;
        let held = self.take_held();
        self.release(out, held, previous);
        true
    }

    /// Ends a catch-up with a read of the room: `latest` is its seq now and
    /// `events` (seq, JSON) what it holds after the lowest seq its members
    /// had, oldest first. A member that had seen more than `latest` was in a
    /// history that is gone (a new epoch) and starts the new one from its
    /// first event.
    pub fn complete_catch_up(&mut self, out: Out<'_>, latest: u64, events: &[(u64, ByteString)]) -> Caught {
        let Stream::CatchingUp { seen, .. } = self else { return Caught::Live };
        let mut last = if *seen > latest { 0 } else { *seen };
        let first = events.first().map(|(seq, _)| *seq);
        if latest > last && first.is_none_or(|first| first > last + 1) {
            // What was missed is no longer kept: only a resume can tell the client.
            out.outbox.close(CloseCode::GoingAway, "missed events are no longer kept; resume");
            return Caught::Lost;
        }
        let held = self.take_held();
        let start = last;
        for (seq, json) in events.iter().filter(|(seq, _)| *seq > start) {
            if *seq != last + 1 {
                break;
            }
            out.push("message", json.clone());
            last = *seq;
        }
        self.release(out, held, last)
    }

    fn take_held(&mut self) -> Held {
        match self {
            Stream::Joining { held, .. } | Stream::CatchingUp { held, .. } => std::mem::take(held),
            Stream::Live { .. } => Held::default(),
        }
    }

    /// Queues the held frames newer than `seen` (and those without a seq),
    /// in order; live from there, or catching up from the first gap.
    fn release(&mut self, out: Out<'_>, held: Held, mut seen: u64) -> Caught {
        let mut frames = held.frames.into_iter();
        while let Some((seq, kind, json)) = frames.next() {
            match seq {
                Some(seq) if seq <= seen => continue,
                Some(seq) if seq > seen + 1 => {
                    let mut rest = Held::default();
                    rest.frames.push((Some(seq), kind, json));
                    rest.frames.extend(frames);
                    rest.bytes = rest.frames.iter().map(|(_, _, json)| json.len()).sum();
                    *self = Stream::CatchingUp { held: rest, seen };
                    return Caught::Gap;
                }
                Some(seq) => seen = seq,
                None => {}
            }
            out.push(kind, json);
        }
        *self = Stream::Live { seen };
        Caught::Live
    }
}

/// A member's outbox with the node's counters, for the frames a catch-up
/// or join releases (each counted by kind as it is queued).
#[derive(Clone, Copy)]
pub struct Out<'a> {
    pub outbox: &'a Outbox,
    pub metrics: &'a Metrics,
}

impl Out<'_> {
    /// Queues a frame and counts it; an overflow counts a 4008 close.
    pub fn push(&self, kind: &'static str, json: ByteString) -> bool {
        match self.outbox.push_text(json) {
            Push::Queued => {
                self.metrics.frames_out(kind, 1);
                true
            }
            Push::Overflowed => {
                self.metrics.slow_consumer_closes.inc();
                false
            }
            Push::Closed => false,
        }
    }
}

/// Holds `frame`, or closes the connection with 4008 when the held bytes
/// pass the limit.
fn hold(held: &mut Held, frame: &FramePayload, outbox: &Outbox, max_bytes: usize) -> Offered {
    if held.push(frame, max_bytes) {
        return Offered::Held;
    }
    if outbox.close_now(CloseCode::SlowConsumer, "slow consumer") {
        Offered::Overflowed
    } else {
        Offered::Dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn out<'a>(outbox: &'a Outbox, metrics: &'a Metrics) -> Out<'a> {
        Out { outbox, metrics }
    }

    fn events(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, ByteString)> {
        seqs.into_iter().map(|seq| (seq, ByteString::from(format!("\"m{seq}\"")))).collect()
    }

    fn frame(seq: u64) -> FramePayload {
        FramePayload {
            kind: "message",
            seq: Some(seq),
            skip_user: None,
            skip_session: None,
            only_session: None,
            json: ByteString::from(format!("m{seq}")),
        }
    }

    fn live(seen: u64) -> (Stream, Outbox) {
        (Stream::Live { seen }, Outbox::new(MAX))
    }

    fn offer_all(stream: &mut Stream, outbox: &Outbox, seqs: &[u64]) -> Vec<Offered> {
        seqs.iter().map(|&seq| stream.offer(&frame(seq), outbox, MAX)).collect()
    }

    #[test]
    fn live_delivery_drops_duplicates_and_old_seqs() {
        let (mut stream, outbox) = live(0);
        offer_all(&mut stream, &outbox, &[1, 2, 3, 3, 2, 4]);
        assert_eq!(outbox.drain_texts(), ["m1", "m2", "m3", "m4"]);
    }

    #[test]
    fn seq_1_after_a_higher_seq_starts_a_new_history() {
        let (mut stream, outbox) = live(0);
        let offered = offer_all(&mut stream, &outbox, &[1, 2, 3, 1, 2]);
        assert!(!offered.contains(&Offered::Gap));
        assert_eq!(outbox.drain_texts(), ["m1", "m2", "m3", "m1", "m2"]);
    }

    #[test]
    fn a_gap_holds_delivery_until_a_catch_up_fills_it() {
        let (mut stream, outbox) = live(0);
        let offered = offer_all(&mut stream, &outbox, &[1, 4, 5]);
        assert_eq!(offered, [Offered::Delivered, Offered::Gap, Offered::Held]);
        assert_eq!(outbox.drain_texts(), ["m1"], "4 and 5 wait for 2 and 3");
        assert_eq!(stream.catching_up_from(), Some(1));
        let metrics = Metrics::new().unwrap();
        let caught = stream.complete_catch_up(out(&outbox, &metrics), 5, &events(2..=4));
        assert_eq!(caught, Caught::Live);
        assert_eq!(outbox.drain_texts(), ["\"m2\"", "\"m3\"", "\"m4\"", "m5"], "the held copy of 4 is not sent twice");
        offer_all(&mut stream, &outbox, &[6]);
        assert_eq!(outbox.drain_texts(), ["m6"], "live again");
    }

    #[test]
    fn a_catch_up_that_still_leaves_a_gap_keeps_holding() {
        let (mut stream, outbox) = live(0);
        offer_all(&mut stream, &outbox, &[3]);
        // The read found only 1 (2 was not stored yet when it ran).
        let metrics = Metrics::new().unwrap();
        assert_eq!(stream.complete_catch_up(out(&outbox, &metrics), 1, &events([1])), Caught::Gap);
        assert_eq!(outbox.drain_texts(), ["\"m1\""]);
        assert_eq!(stream.catching_up_from(), Some(1));
        assert_eq!(stream.complete_catch_up(out(&outbox, &metrics), 3, &events([2, 3])), Caught::Live);
        assert_eq!(outbox.drain_texts(), ["\"m2\"", "\"m3\""]);
    }

    #[test]
    fn a_room_whose_history_was_lost_goes_on_from_the_new_first_event() {
        let (mut stream, outbox) = live(3);
        // Redis lost its data: the room's seq is 2 in a new history.
        assert_eq!(stream.hold_for_catch_up(), Some(3));
        let metrics = Metrics::new().unwrap();
        assert_eq!(stream.complete_catch_up(out(&outbox, &metrics), 2, &events([1, 2])), Caught::Live);
        assert_eq!(outbox.drain_texts(), ["\"m1\"", "\"m2\""]);
        offer_all(&mut stream, &outbox, &[3]);
        assert_eq!(outbox.drain_texts(), ["m3"]);
    }

    #[test]
    fn a_gap_the_store_no_longer_holds_closes_the_connection() {
        let (mut stream, outbox) = live(2);
        offer_all(&mut stream, &outbox, &[50]);
        // The history keeps only 40..50 now: 3..39 are gone.
        let metrics = Metrics::new().unwrap();
        assert_eq!(stream.complete_catch_up(out(&outbox, &metrics), 50, &events(40..=50)), Caught::Lost);
        assert!(outbox.is_closing());
        assert!(outbox.drain_texts().is_empty(), "nothing after the gap goes out");
    }

    #[test]
    fn frames_during_a_join_wait_for_joined() {
        let outbox = Outbox::new(MAX);
        let mut stream = Stream::joining(None);
        let offered = offer_all(&mut stream, &outbox, &[5, 6, 7]);
        assert_eq!(offered, [Offered::Held; 3]);
        assert!(outbox.drain_texts().is_empty());
        // History was read at seq 6: only 7 is new.
        let metrics = Metrics::new().unwrap();
        assert_eq!(stream.complete_join(out(&outbox, &metrics), ByteString::from("joined"), 6), Caught::Live);
        assert_eq!(outbox.drain_texts(), ["joined", "m7"]);
    }

    #[test]
    fn a_failed_repeated_join_goes_on_live_and_a_failed_first_join_does_not() {
        let (outbox, metrics) = (Outbox::new(MAX), Metrics::new().unwrap());
        let mut first = Stream::joining(None);
        assert!(!first.abort_join(out(&outbox, &metrics)), "a first join leaves the room");
        let mut again = Stream::joining(Some(&Stream::Live { seen: 4 }));
        offer_all(&mut again, &outbox, &[5]);
        assert!(again.abort_join(out(&outbox, &metrics)));
        assert_eq!(outbox.drain_texts(), ["m5"]);
        assert!(matches!(again, Stream::Live { seen: 5 }));
    }

    #[test]
    fn held_frames_past_the_limit_close_the_connection_with_4008() {
        let outbox = Outbox::new(MAX);
        let mut stream = Stream::joining(None);
        let big = FramePayload { json: ByteString::from("x".repeat(60)), ..frame(1) };
        assert_eq!(stream.offer(&big, &outbox, 100), Offered::Held);
        assert_eq!(stream.offer(&big, &outbox, 100), Offered::Overflowed);
        assert!(outbox.is_closing());
        assert_eq!(stream.offer(&big, &outbox, 100), Offered::Dropped, "counted once");
    }
}
