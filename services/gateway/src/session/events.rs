//! Requests that store a room event: `send` (a message, maybe a reply),
//! `edit`, `delete` and `react`. Each is one call to the store's atomic
//! append ([`crate::engine::HistoryStore::append_room`]), which checks the
//! target, authorship and reactions against the history it appends to; the
//! session only turns the outcome into `ack` or `error`.

use std::time::Instant;

use actix::Context;

use chat_shared::protocol::{ClientId, RequestId, RoomEventKind, RoomName, ServerFrame, MAX_EMOJI_PER_MESSAGE};
use chat_shared::ErrorCode;

use super::dispatch::user_rate_gate;
use super::WsSession;
use crate::engine::{Outcome, RoomDraft};

impl WsSession {
    /// Stores `event` in `room` (already checked: joined, text within limits).
    pub(super) fn append_event(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        event: RoomEventKind,
        client_id: Option<ClientId>,
        ctx: &mut Context<Self>,
    ) {
        let engine = self.engine().clone();
        let kind = event.name();
        let target = event.target();
        let draft = RoomDraft::new(room.clone(), self.info.user.clone(), event, client_id);
        let started = Instant::now();
        let user_rate = self.node.settings.gateway.limits.user_messages_per_second;
        let request = async move {
            if let Some(wait) = user_rate_gate(&engine, &draft.from.id, user_rate).await? {
                return Ok(Err(wait));
            }
            engine.history.append_room(draft).await.map(Ok)
        };
        self.wait_for(ctx, request, move |result, act, _| {
            let outcome = match result {
                Ok(Err(wait)) => return act.reply_user_rate_limited(re, wait),
                Ok(Ok(outcome)) => outcome,
                Err(err) => return act.reply_backend_error(re, kind, &err),
            };
            let target = target.unwrap_or(0);
            let (code, message) = match outcome {
                Outcome::Stored(appended) => {
                    act.node.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
                    if kind == "message" {
                        act.node.metrics.messages_published.inc();
                    } else {
                        act.node.metrics.room_events_published.with_label_values(&[kind]).inc();
                    }
                    let ack = ServerFrame::Ack {
                        re,
                        room: Some(room),
                        to: None,
                        seq: Some(appended.seq),
                        ts: appended.ts,
                        delivered: None,
                        changed: None,
                    };
                    return act.reply(&ack);
                }
                Outcome::Unchanged { ts } => {
                    let ack = ServerFrame::Ack {
                        re,
                        room: Some(room),
                        to: None,
                        seq: None,
                        ts,
                        delivered: None,
                        changed: Some(false),
                    };
                    return act.reply(&ack);
                }
                Outcome::NotFound => {
                    (ErrorCode::NotFound, format!("message {target} of {room} is not in its history, or was deleted"))
                }
                Outcome::NotAuthor => {
                    (ErrorCode::Forbidden, format!("only the author of message {target} may {kind} it"))
                }
                Outcome::TooManyEmoji => (
                    ErrorCode::BadRequest,
                    format!("message {target} holds {MAX_EMOJI_PER_MESSAGE} distinct emoji already"),
                ),
            };
            act.reply_error(re, code, message);
        });
    }
}
