//! Every client frame's way in: parsed, counted, rate-limited, checked,
//! then handed to the request it is (see the other modules of `session`).

use std::time::Instant;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use chat_shared::protocol::{
    parse_client_frame, ClientFrame, RequestId, RoomEventKind, RoomName, ServerFrame, Thread, UserId,
    DEFAULT_HISTORY_LIMIT, MAX_ATTACHMENTS_PER_MESSAGE,
};
use chat_shared::{CloseCode, ErrorCode};

use super::WsSession;
use crate::engine::{now_ms, BackendResult, Engine, Window};
use crate::metrics::INVALID_FRAME_LABEL;

/// The most history entries a `history` request returns, whatever `limit` says.
pub const MAX_HISTORY_PAGE: u64 = 1_000;

impl WsSession {
    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let parsed = parse_client_frame(text);
        let label = parsed.as_ref().map_or(INVALID_FRAME_LABEL, |(_, frame)| frame.kind());
        self.node.metrics.frames_in.with_label_values(&[label]).inc();
        if let Err(retry_after_ms) = self.bucket.take(now) {
            let re = match &parsed {
                Ok((re, _)) => re.clone(),
                Err(err) => err.re.clone(),
            };
            self.rate_limited(re, retry_after_ms, now, ctx);
            return;
        }
        match parsed {
            Ok((re, frame)) => self.on_frame(re, frame, ctx),
            Err(err) => self.reply_error(err.re, err.code, err.message),
        }
    }

    pub(super) fn rate_limited(
        &mut self,
        re: Option<RequestId>,
        retry_after_ms: u64,
        now: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.reply(&ServerFrame::Error {
            re,
            code: ErrorCode::RateLimited,
            message: format!("over {} frames per second", self.node.settings.gateway.limits.messages_per_second),
            retry_after_ms: Some(retry_after_ms),
        });
        if self.abuse.record(now) {
            tracing::info!(session = %self.id(), user = %self.info.user.id, "closing a connection for rate-limit abuse");
            self.node.metrics.rate_limit_closes.inc();
            self.close(CloseCode::Policy, "rate limit exceeded repeatedly", ctx);
        }
    }

    /// Replies the per-user rate's `rate_limited`.
    pub(super) fn reply_user_rate_limited(&self, re: Option<RequestId>, retry_after_ms: u64) {
        self.reply(&ServerFrame::Error {
            re,
            code: ErrorCode::RateLimited,
            message: format!(
                "over {} messages per second for this user",
                self.node.settings.gateway.limits.user_messages_per_second
            ),
            retry_after_ms: Some(retry_after_ms),
        });
    }

    /// Whether this session has joined `room` (the hub's record).
    pub(super) fn in_room(&self, room: &RoomName) -> bool {
        self.node.hub.is_member(&self.info.user.id, self.id(), room)
    }

    /// Replies `forbidden` (and returns false) for a room the token does not allow.
    fn check_grant(&self, re: &Option<RequestId>, room: &RoomName) -> bool {
        let allowed = self.grant.allows(room);
        if !allowed {
            self.reply_error(re.clone(), ErrorCode::Forbidden, format!("room {room} is not allowed"));
        }
        allowed
    }

    /// Replies `forbidden` or `not_joined` (and returns false) unless this
    /// session joined `room`; `doing` names the request (`sending to`).
    fn check_joined(&self, re: &Option<RequestId>, room: &RoomName, doing: &str) -> bool {
        if !self.check_grant(re, room) {
            return false;
        }
        let joined = self.in_room(room);
        if !joined {
            self.reply_error(re.clone(), ErrorCode::NotJoined, format!("join {room} before {doing} it"));
        }
        joined
    }

    fn check_text(&self, re: &Option<RequestId>, text: &str) -> bool {
        if text.is_empty() {
            self.reply_error(re.clone(), ErrorCode::BadRequest, "text must not be empty");
            return false;
        }
        let max = self.node.settings.gateway.limits.max_text_bytes;
        if text.len() > max {
            self.reply_error(re.clone(), ErrorCode::TooLarge, format!("text is over {max} bytes"));
            return false;
        }
        true
    }

    fn on_frame(&mut self, re: Option<RequestId>, frame: ClientFrame, ctx: &mut Context<Self>) {
        match frame {
            ClientFrame::Ping => self.reply(&ServerFrame::Pong { re, ts: now_ms() }),
            ClientFrame::Join { room, since, epoch, limit } => {
                if !self.check_grant(&re, &room) {
                    return;
                }
                let max_rooms = self.node.settings.gateway.limits.max_rooms_per_connection;
                if !self.in_room(&room) && self.node.hub.room_count(&self.info.user.id, self.id()) >= max_rooms {
                    return self.reply_error(
                        re,
                        ErrorCode::BadRequest,
                        format!("a connection may be in at most {max_rooms} rooms"),
                    );
                }
                self.join(re, room, since, epoch, limit, ctx);
            }
            ClientFrame::Leave { room } => {
                if self.in_room(&room) {
                    self.leave(re, room, ctx);
                } else {
                    self.reply(&ServerFrame::Left { re, room });
                }
            }
            ClientFrame::Send { room, text, client_id, reply_to, attachments } => {
                if let Some(files) = &attachments {
                    if files.is_empty() || files.len() > MAX_ATTACHMENTS_PER_MESSAGE {
                        let message = format!("`attachments` holds 1 to {MAX_ATTACHMENTS_PER_MESSAGE} file ids");
                        return self.reply_error(re, ErrorCode::BadRequest, message);
                    }
                    if files.iter().enumerate().any(|(i, id)| files[..i].contains(id)) {
                        return self.reply_error(re, ErrorCode::BadRequest, "a file is listed twice in `attachments`");
                    }
                }
                let files = attachments.unwrap_or_default();
                // With files, the text may be empty.
                let text_ok = (!files.is_empty() && text.is_empty()) || self.check_text(&re, &text);
                if text_ok && self.check_joined(&re, &room, "sending to") {
                    let event = RoomEventKind::Message { text, reply_to, attachments: Vec::new() };
                    self.append_event(re, room, event, client_id, files, ctx);
                }
            }
            ClientFrame::Edit { room, target, text, client_id } => {
                if self.check_text(&re, &text) && self.check_joined(&re, &room, "editing in") {
                    self.append_event(re, room, RoomEventKind::Edit { target, text }, client_id, Vec::new(), ctx);
                }
            }
            ClientFrame::Delete { room, target, client_id } => {
                if self.check_joined(&re, &room, "deleting in") {
                    self.append_event(re, room, RoomEventKind::Delete { target }, client_id, Vec::new(), ctx);
                }
            }
            ClientFrame::React { room, target, emoji, op, client_id } => {
                if self.check_joined(&re, &room, "reacting in") {
                    let reaction = RoomEventKind::Reaction { target, emoji, op };
                    self.append_event(re, room, reaction, client_id, Vec::new(), ctx);
                }
            }
            ClientFrame::Typing { room, state } => {
                if !self.check_grant(&re, &room) {
                    return;
                }
                if !self.in_room(&room) {
                    return self.reply_error(re, ErrorCode::NotJoined, format!("join {room} before typing in it"));
                }
                self.typing(re, room, state, ctx);
            }
            ClientFrame::Dm { to, text, client_id, reply_to, attachments } => {
                if reply_to.is_some() || attachments.is_some() {
                    let message = "DMs take no `reply_to` or `attachments`";
                    return self.reply_error(re, ErrorCode::BadRequest, message);
                }
                if self.check_text(&re, &text) {
                    self.dm(re, to, text, client_id, ctx);
                }
            }
            ClientFrame::Signal { to, session, data } => self.signal(re, to, session, data, ctx),
            ClientFrame::Read(request) => {
                if let Thread::Room(room) = &request.of {
                    if !self.check_grant(&re, room) {
                        return;
                    }
                }
                self.read(re, request, ctx);
            }
            ClientFrame::Inbox => self.inbox(re, ctx),
            ClientFrame::Status { state, text } => self.status(re, state, text, ctx),
            ClientFrame::Members { room } => {
                if self.check_grant(&re, &room) {
                    self.members(re, room, ctx);
                }
            }
            ClientFrame::History(request) => {
                if let Thread::Room(room) = &request.of {
                    if !self.check_grant(&re, room) {
                        return;
                    }
                }
                let limit = request.limit.unwrap_or(DEFAULT_HISTORY_LIMIT).min(MAX_HISTORY_PAGE) as usize;
                let window = Window { after: request.after, before: request.before, limit };
                self.history(re, request.of, window, ctx);
            }
        }
    }

    /// Runs `request` holding the actor, then `reply` with its result: the
    /// next frame is read only after this one's reply is queued.
    pub(super) fn wait_for<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        request: impl std::future::Future<Output = T> + 'static,
        reply: impl FnOnce(T, &mut Self, &mut Context<Self>) + 'static,
    ) {
        ctx.wait(request.into_actor(self).map(move |result, act, ctx| reply(result, act, ctx)));
    }
}

/// The cluster-wide per-user rate: `Some(ms)` to wait when it is used up
/// (no check when `per_second` is 0).
pub(super) async fn user_rate_gate(engine: &Engine, user: &UserId, per_second: u32) -> BackendResult<Option<u64>> {
    if per_second == 0 {
        return Ok(None);
    }
    engine.presence.take_user_token(user, per_second).await
}
