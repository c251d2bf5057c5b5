//! `status`: the user's availability and a short text, cluster-wide. The
//! store keeps it (and clears it when the user's last connection closes);
//! the change goes out as `presence online` with `status` to every room
//! where the user is online, through the node's relay throttle (one per
//! user per second, the last one always).

use actix::Context;

use chat_shared::protocol::{PresenceState, RequestId, ServerFrame, StatusState, StatusText, UserRef, UserStatus};

use super::WsSession;
use crate::engine::{BusMessage, Engine, Topic};
use crate::relay::RelayKey;

impl WsSession {
    pub(super) fn status(
        &mut self,
        re: Option<RequestId>,
        state: StatusState,
        text: Option<StatusText>,
        ctx: &mut Context<Self>,
    ) {
        let text = text.unwrap_or_else(|| StatusText::parse("").unwrap_or_else(|_| unreachable!()));
        let status = UserStatus { state, text };
        let (engine, user) = (self.engine().clone(), self.info.user.id.clone());
        let stored = status.clone();
        let request = async move { engine.presence.set_status(&user, Some(&stored)).await };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok(()) => {
                let (engine, user) = (act.engine().clone(), act.info.user.clone());
                act.node.relay.offer(
                    RelayKey::Status(user.id.clone()),
                    Box::new(move || Box::pin(async move { publish_status(&engine, &user).await })),
                );
                act.reply(&ServerFrame::Status { re, state: status.state, text: status.text });
            }
            Err(err) => act.reply_backend_error(re, "status", &err),
        });
    }
}

/// Announces the user's status as it is now (a later change may have
/// replaced the one that was offered) to the other users of every room the
/// user is online in.
async fn publish_status(engine: &Engine, user: &UserRef) {
    let published = async {
        let Some(status) = engine.presence.status(&user.id).await? else { return Ok(()) };
        for room in engine.presence.rooms_of(&user.id).await? {
            let frame = ServerFrame::Presence {
                room: room.clone(),
                user: user.clone(),
                state: PresenceState::Online,
                status: Some(status.clone()),
            };
            engine.bus.publish(&Topic::Room(room), BusMessage::for_others(&frame, &user.id)).await?;
        }
        crate::engine::BackendResult::Ok(())
    };
    if let Err(err) = published.await {
        tracing::warn!(user = %user.id, cause = %err, "a status change was not relayed");
    }
}
