//! Typing indicators of one room on this node: the relay throttle and the
//! automatic stop. Pure state: every call takes `now`, nothing here reads a
//! clock or sends anything; the hub keeps one [`Typing`] per local room and
//! the session relays what it decides.
//!
//! - At most one `start` per user and room is relayed per
//!   [`TYPING_RELAY_INTERVAL_MS`], `stop`s in between or not (a `stop` does
//!   not reopen the window).
//! - A `stop` is relayed only after a relayed `start`.
//! - A relayed `start` not followed by another `start` or a `stop` is ended
//!   after [`TYPING_AUTO_STOP_MS`] by the timer of its `generation`; any
//!   later `start` or `stop` makes older timers do nothing.
//! - Relays from other nodes (this one's too) are observed, so the throttle
//!   holds cluster-wide and a `stop` from a user's other device cancels this
//!   node's pending automatic stop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_shared::protocol::{TypingState, UserId};

use crate::engine::SessionId;

/// At most one relayed `typing start` per user and room in this interval.
pub const TYPING_RELAY_INTERVAL_MS: u64 = 1_000;
/// A `typing start` not followed by another start or a stop is ended after this long.
pub const TYPING_AUTO_STOP_MS: u64 = 5_000;

#[derive(Debug, Clone)]
struct Entry {
    /// When a `start` was last relayed (by any node).
    last_relay: Instant,
    /// A `start` was relayed and no `stop` yet.
    active: bool,
    /// Bumped by every local `start` and `stop`; an automatic stop fires only
    /// for its own.
    generation: u64,
    /// The local session whose `start` was relayed last; `None` when the
    /// relay came from another node.
    session: Option<SessionId>,
}

/// A decision on a `typing start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Relay it (else it is inside the throttle interval).
    pub relay: bool,
    /// Pass to [`Typing::expire`] after [`TYPING_AUTO_STOP_MS`].
    pub generation: u64,
}

/// One room's typing state on this node.
#[derive(Debug, Default)]
pub struct Typing {
    users: HashMap<UserId, Entry>,
}

impl Typing {
    /// A `start` from `session` of `user`.
    pub fn start(&mut self, user: &UserId, session: &SessionId, now: Instant) -> Start {
        let interval = Duration::from_millis(TYPING_RELAY_INTERVAL_MS);
        match self.users.get_mut(user) {
            Some(entry) => {
                entry.generation += 1;
                let relay = now.saturating_duration_since(entry.last_relay) >= interval;
                if relay {
                    entry.last_relay = now;
                    entry.active = true;
                    entry.session = Some(session.clone());
                }
                Start { relay, generation: entry.generation }
            }
            None => {
                let entry = Entry { last_relay: now, active: true, generation: 1, session: Some(session.clone()) };
                self.users.insert(user.clone(), entry);
                Start { relay: true, generation: 1 }
            }
        }
    }

    /// A `stop` from `user`; true when it must be relayed (a start was).
    pub fn stop(&mut self, user: &UserId) -> bool {
        match self.users.get_mut(user) {
            Some(entry) if entry.active => {
                entry.active = false;
                entry.generation += 1;
                true
            }
            _ => false,
        }
    }

    /// The automatic stop of `generation` is due; true when it must be relayed.
    pub fn expire(&mut self, user: &UserId, generation: u64) -> bool {
        match self.users.get_mut(user) {
            Some(entry) if entry.active && entry.generation == generation => {
                entry.active = false;
                true
            }
            _ => false,
        }
    }

    /// `session` left the room; true when its user's relayed `start` must be
    /// ended with a `stop`.
    pub fn session_left(&mut self, user: &UserId, session: &SessionId) -> bool {
        match self.users.get(user) {
            Some(entry) if entry.session.as_ref() == Some(session) => {
                let active = entry.active;
                self.users.remove(user);
                active
            }
            _ => false,
        }
    }

    /// A `typing` frame relayed to the room by any node.
    pub fn observe(&mut self, user: &UserId, state: TypingState, now: Instant) {
        match state {
            TypingState::Start => {
                let entry = self.users.entry(user.clone()).or_insert(Entry {
                    last_relay: now,
                    active: true,
                    generation: 0,
                    session: None,
                });
                entry.last_relay = now;
                entry.active = true;
            }
            TypingState::Stop => match self.users.get_mut(user) {
                Some(entry) if entry.session.is_some() => {
                    entry.active = false;
                    entry.generation += 1;
                }
                _ => {
                    self.users.remove(user);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> (UserId, SessionId) {
        (UserId::parse("alice").unwrap(), SessionId::from("s1"))
    }

    #[test]
    fn one_start_a_second_is_relayed_stops_or_not() {
        let (user, session) = alice();
        let mut typing = Typing::default();
        let t0 = Instant::now();
        assert!(typing.start(&user, &session, t0).relay);
        assert!(typing.stop(&user), "a stop after a relayed start is relayed");
        assert!(!typing.start(&user, &session, t0 + Duration::from_millis(500)).relay, "the stop did not reopen it");
        assert!(!typing.stop(&user), "nothing relayed to stop");
        let later = typing.start(&user, &session, t0 + Duration::from_millis(TYPING_RELAY_INTERVAL_MS));
        assert!(later.relay);
        assert!(!typing.expire(&user, later.generation - 1), "an older timer does nothing");
        assert!(typing.expire(&user, later.generation));
        assert!(!typing.expire(&user, later.generation), "once");
    }

    #[test]
    fn a_start_within_the_interval_moves_the_automatic_stop() {
        let (user, session) = alice();
        let mut typing = Typing::default();
        let t0 = Instant::now();
        let first = typing.start(&user, &session, t0);
        let second = typing.start(&user, &session, t0 + Duration::from_millis(300));
        assert!(!second.relay);
        assert!(!typing.expire(&user, first.generation), "the first timer was superseded");
        assert!(typing.expire(&user, second.generation), "the relayed start still ends");
    }

    #[test]
    fn a_leaving_session_ends_its_users_typing() {
        let (user, session) = alice();
        let mut typing = Typing::default();
        typing.start(&user, &session, Instant::now());
        assert!(!typing.session_left(&user, &SessionId::from("other")), "not the typing session");
        assert!(typing.session_left(&user, &session));
        assert!(!typing.stop(&user), "forgotten");
    }

    #[test]
    fn relays_from_other_nodes_count_and_their_stops_cancel_local_timers() {
        let (user, session) = alice();
        let mut typing = Typing::default();
        let t0 = Instant::now();
        // The user's phone, on another node, started typing.
        typing.observe(&user, TypingState::Start, t0);
        assert!(!typing.start(&user, &session, t0 + Duration::from_millis(100)).relay, "throttled cluster-wide");
        let local = typing.start(&user, &session, t0 + Duration::from_millis(TYPING_RELAY_INTERVAL_MS));
        assert!(local.relay);
        // The phone stopped: this node's automatic stop must not follow.
        typing.observe(&user, TypingState::Stop, t0 + Duration::from_millis(1_200));
        assert!(!typing.expire(&user, local.generation));
        // A stop relayed for a user with no local typist is simply forgotten.
        let bob = UserId::parse("bob").unwrap();
        typing.observe(&bob, TypingState::Start, t0);
        typing.observe(&bob, TypingState::Stop, t0);
        assert!(typing.start(&bob, &session, t0).relay, "nothing left of bob's remote start");
    }
}
