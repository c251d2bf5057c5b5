//! `signal`: a device-to-device message (WebRTC call set-up: offer, answer,
//! ICE candidates) relayed at once to every session of a user, or to the one
//! session named, on whatever node it is. Nothing is stored or queued: a
//! user with no session gets nothing, and `delivered` says how many
//! sessions it went to.

use actix::Context;

use chat_shared::protocol::{RequestId, ServerFrame, UserId};
use chat_shared::ErrorCode;

use super::dispatch::user_rate_gate;
use super::WsSession;
use crate::engine::{BusMessage, SessionId, Topic};

/// The longest session id a `signal` may name (ids the gateways make are shorter).
const MAX_SESSION_ID_CHARS: usize = 128;

impl WsSession {
    pub(super) fn signal(
        &mut self,
        re: Option<RequestId>,
        to: UserId,
        session: Option<String>,
        data: serde_json::Value,
        ctx: &mut Context<Self>,
    ) {
        if let Some(session) = &session {
            if session.is_empty() || session.chars().count() > MAX_SESSION_ID_CHARS {
                let message = format!("`session` must be 1 to {MAX_SESSION_ID_CHARS} characters");
                return self.reply_error(re, ErrorCode::BadRequest, message);
            }
        }
        let max = self.node.settings.gateway.limits.max_signal_bytes;
        // Value serialises to compact JSON, and cannot fail to.
        let size = serde_json::to_vec(&data).map_or(usize::MAX, |json| json.len());
        if size > max {
            return self.reply_error(re, ErrorCode::TooLarge, format!("data is {size} bytes of JSON, over {max}"));
        }
        let engine = self.engine().clone();
        let origin = self.id().clone();
        let frame = ServerFrame::Signal { from: self.info.user.clone(), session: origin.to_string(), data };
        let user_rate = self.node.settings.gateway.limits.user_messages_per_second;
        let from = self.info.user.id.clone();
        let target = to.clone();
        let request = async move {
            if let Some(wait) = user_rate_gate(&engine, &from, user_rate).await? {
                return Ok(Err(wait));
            }
            let only: Option<SessionId> = session.map(Into::into);
            let reached = engine
                .presence
                .sessions_of(&target)
                .await?
                .into_iter()
                .filter(|s| *s != origin && only.as_ref().is_none_or(|only| only == s))
                .count() as u64;
            if reached > 0 {
                engine.bus.publish(&Topic::User(target), BusMessage::signal(&frame, &origin, only)).await?;
            }
            Ok(Ok(reached))
        };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok(Err(wait)) => act.reply_user_rate_limited(re, wait),
            Ok(Ok(delivered)) => {
                act.node.metrics.signals_relayed.inc_by(delivered);
                act.reply(&ServerFrame::SignalAck { re, to, delivered });
            }
            Err(err) => act.reply_backend_error(re, "signal", &err),
        });
    }
}
