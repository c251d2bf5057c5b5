//! `typing`: the hub's [`crate::typing::Typing`] decides (throttle, which
//! stop is due); the session relays to the room's other users and arms the
//! automatic stop.

use std::time::{Duration, Instant};

use actix::{AsyncContext, Context};

use chat_shared::protocol::{RequestId, RoomName, ServerFrame, TypingState};

use super::WsSession;
use crate::engine::{BusMessage, Topic};
use crate::typing::TYPING_AUTO_STOP_MS;

impl WsSession {
    pub(super) fn typing(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        state: TypingState,
        ctx: &mut Context<Self>,
    ) {
        let (hub, user) = (self.node.hub.clone(), self.info.user.id.clone());
        match state {
            TypingState::Start => {
                let Some(decision) = hub.typing_start(&room, &user, self.id(), Instant::now()) else { return };
                let (generation, timer_room) = (decision.generation, room.clone());
                ctx.run_later(Duration::from_millis(TYPING_AUTO_STOP_MS), move |act, ctx| {
                    if act.node.hub.typing_expire(&timer_room, &act.info.user.id, generation) {
                        act.publish_typing(None, timer_room, TypingState::Stop, ctx);
                    }
                });
                if decision.relay {
                    self.publish_typing(re, room, TypingState::Start, ctx);
                }
            }
            TypingState::Stop => {
                if hub.typing_stop(&room, &user) {
                    self.publish_typing(re, room, TypingState::Stop, ctx);
                }
            }
        }
    }

    /// Relays a `typing` frame to the room's other users. With a request id
    /// (a client's frame), a failure is replied; timers stay silent.
    pub(super) fn publish_typing(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        state: TypingState,
        ctx: &mut Context<Self>,
    ) {
        let frame = ServerFrame::Typing { room: room.clone(), user: self.info.user.clone(), state };
        let msg = BusMessage::for_others(&frame, &self.info.user.id);
        let bus = self.engine().bus.clone();
        let request = async move { bus.publish(&Topic::Room(room), msg).await };
        self.wait_for(ctx, request, move |result, act, _| {
            if let Err(err) = result {
                act.reply_backend_error(re, "typing", &err);
            }
        });
    }
}
