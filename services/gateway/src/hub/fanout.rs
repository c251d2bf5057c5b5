//! Fan-out: what arrives on a topic this node is subscribed to, handed to
//! the local sessions it is for. A frame was serialised once by whoever
//! published it; every recipient's [`Outbox`] gets the same bytes (a
//! refcount bump, no copy), under the one shard lock of the room or user.

use std::time::Instant;

use chat_shared::protocol::{RoomName, UserId};
use chat_shared::CloseCode;

use super::stream::Offered;
use super::{CatchUp, Hub, TypingProbe};
use crate::engine::{BusMessage, Deliver, FramePayload, Topic};
use crate::outbox::Push;

impl Hub {
    fn deliver_room(&self, room: &RoomName, frame: &FramePayload) -> usize {
        let started = Instant::now();
        let mut rooms = self.rooms.lock(room);
        let Some(state) = rooms.get_mut(room) else { return 0 };
        if frame.kind == "typing" {
            if let (Some(user), Ok(probe)) = (&frame.skip_user, serde_json::from_str::<TypingProbe>(&frame.json)) {
                state.typing.observe(user, probe.state, started);
            }
        }
        if let Some(seq) = frame.seq {
            state.recent.observe(frame.kind, seq, &frame.json, self.recent_limits);
        }
        let (mut delivered, mut gap) = (0, false);
        for (session, member) in state.members.iter_mut() {
            if frame.skip_user.as_ref() == Some(&member.user) || frame.skip_session.as_ref() == Some(session) {
                continue;
            }
            match member.stream.offer(frame, &member.outbox, self.max_held_bytes) {
                Offered::Delivered => delivered += 1,
                Offered::Gap => gap = true,
                Offered::Overflowed => self.metrics.slow_consumer_closes.inc(),
                Offered::Held | Offered::Dropped => {}
            }
        }
        if gap {
            self.queue_catch_up(room, state);
        }
        drop(rooms);
        self.metrics.frames_out(frame.kind, delivered);
        self.metrics.fanout_seconds.observe(started.elapsed().as_secs_f64());
        delivered
    }

    /// Returns how many sessions of the user were reached (held or queued).
    fn deliver_user(&self, user: &UserId, frame: &FramePayload) -> usize {
        let mut users = self.users.lock(user);
        let Some(entry) = users.get_mut(user) else { return 0 };
        let mut reached = 0;
        for (session, local) in entry.sessions.iter_mut() {
            if frame.skip_session.as_ref() == Some(session)
                || frame.only_session.as_ref().is_some_and(|only| only != session)
            {
                continue;
            }
            reached += 1;
            match &mut local.held_dms {
                Some(held) if !local.outbox.is_closing() => {
                    if !held.push(frame, self.max_held_bytes)
                        && local.outbox.close_now(CloseCode::SlowConsumer, "slow consumer")
                    {
                        self.metrics.slow_consumer_closes.inc();
                    }
                }
                Some(_) => {}
                None => {
                    self.out(&local.outbox).push(frame.kind, frame.json.clone());
                }
            }
        }
        reached
    }

    fn broadcast(&self, frame: &FramePayload) -> usize {
        let mut reached = 0;
        for users in self.users.each() {
            for entry in users.values() {
                for local in entry.sessions.values() {
                    match local.outbox.push_text(frame.json.clone()) {
                        Push::Queued => reached += 1,
                        Push::Overflowed => self.metrics.slow_consumer_closes.inc(),
                        Push::Closed => {}
                    }
                }
            }
        }
        self.metrics.frames_out(frame.kind, reached);
        reached
    }
}

impl Deliver for Hub {
    fn deliver(&self, topic: &Topic, msg: &BusMessage) -> usize {
        match (topic, msg) {
            (Topic::Room(room), BusMessage::Frame(frame)) => self.deliver_room(room, frame),
            (Topic::User(user), BusMessage::Frame(frame)) => self.deliver_user(user, frame),
            (Topic::Broadcast, BusMessage::Frame(frame)) => self.broadcast(frame),
            (_, BusMessage::Disconnect { user }) => {
                self.close_user(user, CloseCode::Policy, "disconnected by an operator")
            }
            (Topic::Control, BusMessage::Frame(_)) => 0,
        }
    }

    fn missed(&self) {
        self.request(CatchUp::EveryRoom);
    }
}
