//! One WebSocket connection: an actix actor that speaks the protocol.
//!
//! The actor owns the session's state (its rooms, rate limiter, liveness)
//! and reads the socket as a stream. Frames are handled one at a time, in
//! order: a frame that needs the engine holds the actor (`ctx.wait`) until
//! its reply is queued, so replies come back in request order and a client
//! that floods is slowed by TCP, not buffered.
//!
//! Nothing is written to the socket from here: replies and fan-out go
//! through the session's bounded [`Outbox`], drained by the writer task
//! ([`crate::outbox::run_writer`]). Unlike `actix-web-actors`, whose actor
//! lives inside the response stream and freezes when a client stops reading,
//! this actor keeps running its timers and mailbox however slow the client.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, StreamHandler, WrapFuture};
use actix_ws::{AggregatedMessage, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;

use chat_shared::protocol::{
    parse_client_frame, ClientFrame, ClientId, RequestId, RoomName, ServerFrame, TypingState, UserId, WelcomeLimits,
    DEFAULT_HISTORY_LIMIT,
};
use chat_shared::{CloseCode, ErrorCode};

use crate::auth::RoomGrant;
use crate::engine::{
    backend_message, catch_up, now_ms, BackendError, BusMessage, DmDraft, Engine, Page, RoomDraft, SessionId,
    SessionInfo, Topic, Window,
};
use crate::limits::{AbuseMeter, TokenBucket};
use crate::metrics::INVALID_FRAME_LABEL;
use crate::node::{Node, SessionGuard};
use crate::outbox::{run_writer, Outbox, Outgoing, Push};
use crate::registry::TYPING_AUTO_STOP_MS;

/// The most history entries a `history` request returns, whatever `limit` says.
pub const MAX_HISTORY_PAGE: u64 = 1_000;

/// One connection's actor.
pub struct WsSession {
    node: Arc<Node>,
    info: SessionInfo,
    /// What the token lets this connection touch.
    grant: RoomGrant,
    outbox: Arc<Outbox>,
    /// The socket's write half, handed to the writer task on start.
    socket: Option<actix_ws::Session>,
    /// Rooms this session has joined.
    rooms: HashSet<RoomName>,
    /// Rooms whose join is in flight (cleaned up too if the session ends mid-join).
    joining: HashSet<RoomName>,
    bucket: TokenBucket,
    abuse: AbuseMeter,
    /// When the client last showed life (any frame, pong included).
    last_seen: Instant,
    /// Counts the session until its cleanup is done (the drain waits on it).
    guard: Option<SessionGuard>,
    /// The bus references this session holds, recorded the moment each is
    /// taken (also inside in-flight futures, which a stopping actor drops),
    /// so every one is given back when the session ends.
    subscribed: Arc<Mutex<Subscribed>>,
    /// Offline DMs being delivered after `welcome`.
    offline: OfflineDelivery,
    /// Pings sent so far; each ping carries its number (decimal) as payload.
    pings_sent: u64,
}

/// Queued DMs go out in batches of at most half the outbox, each followed by
/// a ping; the pong (which a WebSocket stack sends after reading everything
/// before the ping) confirms the batch (removed from the queue) and sends the
/// next. Pings are numbered and a peer may answer only the latest one
/// (RFC 6455), so any pong numbered at or after the batch's ping confirms it. Live DMs are held meanwhile, so a conversation's DMs arrive in seq
/// order. A connection lost mid-way leaves the unconfirmed DMs queued for the
/// next connection: delivery of queued DMs is at least once.
#[derive(Default)]
struct OfflineDelivery {
    /// Read from the queue, not yet sent.
    backlog: VecDeque<ByteString>,
    /// Sent, awaiting the pong.
    in_flight: Vec<ByteString>,
    /// The number of the ping that follows `in_flight`.
    confirmed_by: u64,
    /// Counts batches, so a timeout knows whether its batch is still waiting.
    batch: u64,
}

/// See [`WsSession::subscribed`].
#[derive(Default)]
struct Subscribed {
    rooms: HashSet<RoomName>,
    user: bool,
}

fn lock_subscribed(subscribed: &Mutex<Subscribed>) -> std::sync::MutexGuard<'_, Subscribed> {
    subscribed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer task has finished: the socket is closed.
#[derive(Message)]
#[rtype(result = "()")]
struct WriterDone;

impl WsSession {
    pub fn new(node: Arc<Node>, info: SessionInfo, grant: RoomGrant, socket: actix_ws::Session) -> WsSession {
        let limits = &node.settings.gateway.limits;
        let now = Instant::now();
        WsSession {
            outbox: Arc::new(Outbox::new(limits.max_outbox_bytes)),
            bucket: TokenBucket::new(limits.messages_per_second, now),
            abuse: AbuseMeter::new(
                limits.max_rate_limited_frames,
                Duration::from_millis(limits.rate_limit_window_ms),
                now,
            ),
            guard: Some(node.session_guard()),
            node,
            info,
            grant,
            socket: Some(socket),
            rooms: HashSet::new(),
            joining: HashSet::new(),
            last_seen: now,
            subscribed: Arc::default(),
            offline: OfflineDelivery::default(),
            pings_sent: 0,
        }
    }

    fn id(&self) -> &SessionId {
        &self.info.session
    }

    fn engine(&self) -> &Engine {
        &self.node.engine
    }

    /// Queues a reply to this session.
    fn reply(&self, frame: &ServerFrame) {
        if let ServerFrame::Error { code, .. } = frame {
            self.node.metrics.errors.with_label_values(&[code.as_str()]).inc();
        }
        match self.outbox.push_text(frame.to_json()) {
            Push::Queued => self.node.metrics.frames_out(frame.kind(), 1),
            Push::Overflowed => self.node.metrics.slow_consumer_closes.inc(),
            Push::Closed => {}
        }
    }

    fn reply_user_rate_limited(&self, re: Option<RequestId>, retry_after_ms: u64) {
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

    fn reply_error(&self, re: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        self.reply(&ServerFrame::error(re, code, message));
    }

    /// Replies the error a backend failure means to the client: `unavailable`
    /// (logged as a warning) or `internal` (logged as an error with the same
    /// message).
    fn reply_backend_error(&self, re: Option<RequestId>, what: &str, err: &BackendError) {
        let message = backend_message(what, err);
        match err {
            BackendError::Unavailable(_) => {
                tracing::warn!(session = %self.id(), cause = %err, what, "backend call failed")
            }
            _ => tracing::error!(session = %self.id(), cause = %err, message, "backend call failed"),
        }
        self.reply_error(re, err.code(), message);
    }

    /// Closes the connection after what is queued, and stops the actor.
    fn close(&self, code: CloseCode, reason: &'static str, ctx: &mut Context<Self>) {
        self.outbox.close(code, reason);
        ctx.stop();
    }

    /// Replies `forbidden` (and returns false) for a room the token does not allow.
    fn check_grant(&self, re: &Option<RequestId>, room: &RoomName) -> bool {
        let allowed = self.grant.allows(room);
        if !allowed {
            self.reply_error(re.clone(), ErrorCode::Forbidden, format!("room {room} is not allowed"));
        }
        allowed
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

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
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

    fn rate_limited(&mut self, re: Option<RequestId>, retry_after_ms: u64, now: Instant, ctx: &mut Context<Self>) {
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

    fn on_frame(&mut self, re: Option<RequestId>, frame: ClientFrame, ctx: &mut Context<Self>) {
        match frame {
            ClientFrame::Ping => self.reply(&ServerFrame::Pong { re, ts: now_ms() }),
            ClientFrame::Join { room, since, epoch, limit } => {
                if !self.check_grant(&re, &room) {
                    return;
                }
                let max_rooms = self.node.settings.gateway.limits.max_rooms_per_connection;
                if !self.rooms.contains(&room) && self.rooms.len() >= max_rooms {
                    return self.reply_error(
                        re,
                        ErrorCode::BadRequest,
                        format!("a connection may be in at most {max_rooms} rooms"),
                    );
                }
                self.join(re, room, since, epoch, limit, ctx);
            }
            ClientFrame::Leave { room } => {
                if self.rooms.contains(&room) {
                    self.leave(re, room, ctx);
                } else {
                    self.reply(&ServerFrame::Left { re, room });
                }
            }
            ClientFrame::Send { room, text, client_id } => {
                if !self.check_text(&re, &text) {
                    return;
                }
                if !self.rooms.contains(&room) {
                    return self.reply_error(re, ErrorCode::NotJoined, format!("join {room} before sending to it"));
                }
                self.send(re, room, text, client_id, ctx);
            }
            ClientFrame::Typing { room, state } => {
                if !self.rooms.contains(&room) {
                    return self.reply_error(re, ErrorCode::NotJoined, format!("join {room} before typing in it"));
                }
                self.typing(re, room, state, ctx);
            }
            ClientFrame::Dm { to, text, client_id } => {
                if self.check_text(&re, &text) {
                    self.dm(re, to, text, client_id, ctx);
                }
            }
            ClientFrame::Members { room } => {
                if !self.check_grant(&re, &room) {
                    return;
                }
                let presence = self.engine().presence.clone();
                let fut = async move {
                    let members = presence.members(&room).await;
                    (room, members)
                };
                ctx.wait(fut.into_actor(self).map(move |(room, result), act, _| match result {
                    Ok(members) => act.reply(&ServerFrame::Members { re, room, members }),
                    Err(err) => act.reply_backend_error(re, "members", &err),
                }));
            }
            ClientFrame::History { room, before, limit } => {
                if !self.check_grant(&re, &room) {
                    return;
                }
                let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT).min(MAX_HISTORY_PAGE) as usize;
                let history = self.engine().history.clone();
                let fut = async move {
                    let page = history.read_room(&room, Window { after: None, before, limit }).await;
                    (room, page.map(|page| page.messages))
                };
                ctx.wait(fut.into_actor(self).map(move |(room, result), act, _| match result {
                    Ok(messages) => act.reply(&ServerFrame::History { re, room, messages }),
                    Err(err) => act.reply_backend_error(re, "history", &err),
                }));
            }
        }
    }

    fn join(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        since: Option<u64>,
        epoch: Option<String>,
        limit: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let registry = self.node.registry.clone();
        // A repeated join keeps the subscription the first one took.
        let subscribe = !self.rooms.contains(&room);
        registry.begin_join(&room, self.id(), &self.info.user.id);
        self.joining.insert(room.clone());
        let size = self.node.settings.cluster.history.size;
        let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT).min(size as u64) as usize;
        let engine = self.engine().clone();
        let info = self.info.clone();
        let target = room.clone();
        let wanted_epoch = epoch.clone();
        let subscribed = self.subscribed.clone();
        let fut = async move {
            if subscribe {
                engine.bus.subscribe(&Topic::Room(target.clone())).await?;
                lock_subscribed(&subscribed).rooms.insert(target.clone());
            }
            let result = join_steps(&engine, &target, &info, since, wanted_epoch, limit, size).await;
            if result.is_err() && subscribe {
                lock_subscribed(&subscribed).rooms.remove(&target);
                let _ = engine.bus.unsubscribe(&Topic::Room(target.clone())).await;
                let _ = engine.presence.leave(&target, &info).await;
            }
            result
        };
        ctx.wait(fut.into_actor(self).map(move |result, act, _| {
            act.joining.remove(&room);
            match result {
                Ok((members, replay)) => {
                    let recovered = is_recovered(since, epoch.as_deref(), &replay);
                    let seq = replay.seq;
                    let frame = ServerFrame::Joined {
                        re,
                        room: room.clone(),
                        seq,
                        epoch: replay.epoch,
                        members,
                        history: replay.messages,
                        recovered,
                    };
                    if registry.complete_join(&room, act.id(), frame.to_json(), seq) {
                        act.rooms.insert(room);
                    }
                }
                Err(err) => {
                    registry.abort_join(&room, act.id());
                    act.reply_backend_error(re, "join", &err);
                }
            }
        }));
    }

    fn leave(&mut self, re: Option<RequestId>, room: RoomName, ctx: &mut Context<Self>) {
        let engine = self.engine().clone();
        let info = self.info.clone();
        let target = room.clone();
        let fut = async move { engine.presence.leave(&target, &info).await };
        ctx.wait(fut.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {
                act.rooms.remove(&room);
                let registry = act.node.registry.clone();
                if registry.typing_session_left(&room, &act.info.user.id, act.id()) {
                    act.publish_typing(None, room.clone(), TypingState::Stop, ctx);
                }
                registry.leave(&room, act.id());
                lock_subscribed(&act.subscribed).rooms.remove(&room);
                let bus = act.engine().bus.clone();
                let topic = Topic::Room(room.clone());
                actix_rt::spawn(async move {
                    if let Err(err) = bus.unsubscribe(&topic).await {
                        tracing::warn!(cause = %err, "unsubscribe failed");
                    }
                });
                act.reply(&ServerFrame::Left { re, room });
            }
            Err(err) => act.reply_backend_error(re, "leave", &err),
        }));
    }

    fn send(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        text: String,
        client_id: Option<ClientId>,
        ctx: &mut Context<Self>,
    ) {
        let engine = self.engine().clone();
        let draft = RoomDraft { room: room.clone(), from: self.info.user.clone(), text, client_id };
        let started = Instant::now();
        let user_rate = self.node.settings.gateway.limits.user_messages_per_second;
        let fut = async move {
            if let Some(wait) = user_rate_gate(&engine, &draft.from.id, user_rate).await? {
                return Ok(Err(wait));
            }
            engine.history.append_room(draft).await.map(Ok)
        };
        ctx.wait(fut.into_actor(self).map(move |result, act, _| match result {
            Ok(Err(wait)) => act.reply_user_rate_limited(re, wait),
            Ok(Ok(stored)) => {
                act.node.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
                act.node.metrics.messages_published.inc();
                act.reply(&ServerFrame::Ack {
                    re,
                    room: Some(room),
                    to: None,
                    seq: stored.seq,
                    ts: stored.ts,
                    delivered: None,
                });
            }
            Err(err) => act.reply_backend_error(re, "send", &err),
        }));
    }

    fn dm(
        &mut self,
        re: Option<RequestId>,
        to: UserId,
        text: String,
        client_id: Option<ClientId>,
        ctx: &mut Context<Self>,
    ) {
        let engine = self.engine().clone();
        let draft =
            DmDraft { from: self.info.user.clone(), to: to.clone(), text, client_id, origin: self.id().clone() };
        let user_rate = self.node.settings.gateway.limits.user_messages_per_second;
        let fut = async move {
            if let Some(wait) = user_rate_gate(&engine, &draft.from.id, user_rate).await? {
                return Ok(Err(wait));
            }
            engine.history.append_dm(draft).await.map(Ok)
        };
        ctx.wait(fut.into_actor(self).map(move |result, act, _| match result {
            Ok(Err(wait)) => act.reply_user_rate_limited(re, wait),
            Ok(Ok(stored)) => {
                act.node.metrics.dms_published.inc();
                act.reply(&ServerFrame::Ack {
                    re,
                    room: None,
                    to: Some(to),
                    seq: stored.seq,
                    ts: stored.ts,
                    delivered: Some(stored.delivered),
                });
            }
            Err(err) => act.reply_backend_error(re, "dm", &err),
        }));
    }

    fn typing(&mut self, re: Option<RequestId>, room: RoomName, state: TypingState, ctx: &mut Context<Self>) {
        let registry = self.node.registry.clone();
        let user = self.info.user.id.clone();
        match state {
            TypingState::Start => {
                let decision = registry.typing_start(&room, &user, self.id(), Instant::now());
                let generation = decision.generation;
                let timer_room = room.clone();
                ctx.run_later(Duration::from_millis(TYPING_AUTO_STOP_MS), move |act, ctx| {
                    if act.node.registry.typing_expire(&timer_room, &act.info.user.id, generation) {
                        act.publish_typing(None, timer_room, TypingState::Stop, ctx);
                    }
                });
                if decision.relay {
                    self.publish_typing(re, room, TypingState::Start, ctx);
                }
            }
            TypingState::Stop => {
                if registry.typing_stop(&room, &user) {
                    self.publish_typing(re, room, TypingState::Stop, ctx);
                }
            }
        }
    }

    /// Relays a `typing` frame to the room's other users. With a request id
    /// (a client's frame), a failure is replied; timers stay silent.
    fn publish_typing(&mut self, re: Option<RequestId>, room: RoomName, state: TypingState, ctx: &mut Context<Self>) {
        let frame = ServerFrame::Typing { room: room.clone(), user: self.info.user.clone(), state };
        let msg = BusMessage::for_others(&frame, &self.info.user.id);
        let bus = self.engine().bus.clone();
        let fut = async move { bus.publish(&Topic::Room(room), msg).await };
        ctx.wait(fut.into_actor(self).map(move |result, act, _| {
            if let Err(err) = result {
                act.reply_backend_error(re, "typing", &err);
            }
        }));
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let interval = Duration::from_millis(self.node.settings.gateway.heartbeat.interval_ms);
        if self.last_seen.elapsed() > interval * 2 {
            tracing::debug!(session = %self.id(), "closing a silent connection");
            self.close(CloseCode::Normal, "heartbeat timeout", ctx);
        } else {
            self.ping();
        }
    }

    /// Queues a ping carrying its number; returns the number.
    fn ping(&mut self) -> u64 {
        self.pings_sent += 1;
        if self.outbox.push(Outgoing::Ping(Bytes::from(self.pings_sent.to_string()))) == Push::Overflowed {
            self.node.metrics.slow_consumer_closes.inc();
        }
        self.pings_sent
    }

    /// Sends the next batch of offline DMs and a ping to confirm it; with
    /// none left, releases the live DMs held since `welcome`.
    fn send_offline_batch(&mut self, ctx: &mut Context<Self>) {
        let outbox_bytes = self.node.settings.gateway.limits.max_outbox_bytes;
        let budget = outbox_bytes / 2;
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut undeliverable = Vec::new();
        while let Some(next) = self.offline.backlog.front() {
            if next.len() >= outbox_bytes {
                // Larger than this connection's outbox (limits changed since it
                // was queued): it can never go out, so it must not block the rest.
                tracing::error!(session = %self.id(), bytes = next.len(), "queued DM larger than the outbox; dropped");
                undeliverable.extend(self.offline.backlog.pop_front());
                continue;
            }
            if !batch.is_empty() && bytes + next.len() > budget {
                break;
            }
            bytes += next.len();
            batch.extend(self.offline.backlog.pop_front());
        }
        if !undeliverable.is_empty() {
            self.ack_offline(undeliverable);
        }
        if batch.is_empty() {
            self.node.registry.complete_welcome(self.id());
            return;
        }
        self.node.registry.deliver_offline(self.id(), &batch);
        self.offline.confirmed_by = self.ping();
        self.offline.in_flight = batch;
        self.offline.batch += 1;
        // A client that never answers keeps its DMs queued, not its live DMs held.
        let batch = self.offline.batch;
        let wait = Duration::from_millis(self.node.settings.gateway.heartbeat.interval_ms) * 2;
        ctx.run_later(wait, move |act, _| {
            if act.offline.batch == batch && !act.offline.in_flight.is_empty() {
                tracing::debug!(session = %act.id(), "offline DMs unconfirmed; they stay queued");
                act.offline = OfflineDelivery { batch: act.offline.batch, ..OfflineDelivery::default() };
                act.node.registry.complete_welcome(act.id());
            }
        });
    }

    /// A pong: if it answers the ping after the batch in flight (or a later
    /// one), the client read the batch: drop it from the queue, send the next.
    fn confirm_offline_batch(&mut self, pong: &[u8], ctx: &mut Context<Self>) {
        let answered = std::str::from_utf8(pong).ok().and_then(|n| n.parse::<u64>().ok());
        if self.offline.in_flight.is_empty() || answered.is_none_or(|n| n < self.offline.confirmed_by) {
            return;
        }
        let delivered = std::mem::take(&mut self.offline.in_flight);
        self.ack_offline(delivered);
        self.send_offline_batch(ctx);
    }

    /// Removes DMs from the user's offline queue (in the background).
    fn ack_offline(&self, delivered: Vec<ByteString>) {
        let engine = self.engine().clone();
        let user = self.info.user.id.clone();
        actix_rt::spawn(async move {
            if let Err(err) = engine.history.ack_offline(&user, &delivered).await {
                tracing::warn!(user = %user, cause = %err, "delivered offline DMs stay queued; they will come again");
            }
        });
    }

    fn welcome(&self) -> ByteString {
        let limits = &self.node.settings.gateway.limits;
        ServerFrame::Welcome {
            session: self.id().to_string(),
            user: self.info.user.clone(),
            node: self.node.settings.gateway.node_id.clone(),
            heartbeat_ms: self.node.settings.gateway.heartbeat.interval_ms,
            limits: WelcomeLimits {
                max_frame_bytes: limits.max_frame_bytes,
                max_text_bytes: limits.max_text_bytes,
                messages_per_second: limits.messages_per_second,
                user_messages_per_second: Some(limits.user_messages_per_second).filter(|n| *n > 0),
            },
        }
        .to_json()
    }
}

/// The engine side of a join, after the subscription: history first (the
/// step most likely to be refused, so a refusal announces nothing), then
/// presence and members. `size` is `history.size`, the most a resume replays.
async fn join_steps(
    engine: &Engine,
    room: &RoomName,
    info: &SessionInfo,
    since: Option<u64>,
    epoch: Option<String>,
    limit: usize,
    size: usize,
) -> Result<(Vec<chat_shared::protocol::UserRef>, Page), BackendError> {
    let window = since.map_or(Window::latest(limit), |since| Window::after(since, size));
    let mut replay = catch_up(engine.history.as_ref(), room, window, size).await?;
    if since.is_some() && epoch.as_ref().is_some_and(|e| *e != replay.epoch) {
        // The client's seqs name a lost history: start it afresh.
        replay = engine.history.read_room(room, Window::latest(limit)).await?;
    }
    engine.presence.join(room, info).await?;
    let members = engine.presence.members(room).await?;
    Ok((members, replay))
}

/// The cluster-wide per-user rate: `Some(ms)` to wait when it is used up
/// (no check when `per_second` is 0).
async fn user_rate_gate(engine: &Engine, user: &UserId, per_second: u32) -> Result<Option<u64>, BackendError> {
    if per_second == 0 {
        return Ok(None);
    }
    engine.presence.take_user_token(user, per_second).await
}

/// `joined.recovered`: a resume that replayed everything after `since` in the
/// same history.
fn is_recovered(since: Option<u64>, epoch: Option<&str>, replay: &Page) -> bool {
    let Some(since) = since else { return false };
    if epoch.is_some_and(|e| e != replay.epoch) || since > replay.seq {
        return false;
    }
    let (first, last) = (replay.messages.first().map(|m| m.seq), replay.messages.last().map(|m| m.seq));
    since == replay.seq || (first == Some(since + 1) && last == Some(replay.seq))
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.node.metrics.connections_opened.inc();
        if let Some(socket) = self.socket.take() {
            let outbox = self.outbox.clone();
            let addr = ctx.address();
            actix_rt::spawn(run_writer(outbox, socket, move || addr.do_send(WriterDone)));
        }
        // `welcome` is queued before the session is reachable, so it is first.
        if self.outbox.push_text(self.welcome()) == Push::Queued {
            self.node.metrics.frames_out("welcome", 1);
        }
        self.node.registry.register(self.id(), &self.info.user, self.outbox.clone());
        let interval = Duration::from_millis(self.node.settings.gateway.heartbeat.interval_ms);
        ctx.run_interval(interval, |act, ctx| act.heartbeat(ctx));

        let engine = self.engine().clone();
        let user = self.info.user.id.clone();
        let subscribed = self.subscribed.clone();
        let fut = async move {
            engine.bus.subscribe(&Topic::User(user.clone())).await?;
            lock_subscribed(&subscribed).user = true;
            let offline = engine.history.offline(&user).await.unwrap_or_else(|err| {
                tracing::warn!(user = %user, cause = %err, "offline DMs could not be read; they stay queued");
                Vec::new()
            });
            Ok::<_, BackendError>(offline)
        };
        ctx.wait(fut.into_actor(self).map(|result, act, ctx| match result {
            Ok(offline) => {
                act.offline.backlog = offline.into();
                act.send_offline_batch(ctx);
            }
            Err(err) => {
                // Without its DM channel the session would miss messages: let
                // the client reconnect, to this node or another.
                tracing::warn!(session = %act.id(), cause = %err, "user channel unavailable; closing");
                act.close(CloseCode::GoingAway, "backend unavailable, reconnect", ctx);
            }
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.outbox.close(CloseCode::Normal, "");
        let registry = self.node.registry.clone();
        let user = self.info.user.clone();
        let rooms: Vec<RoomName> = self.rooms.drain().chain(self.joining.drain()).collect();
        let typing_rooms: Vec<RoomName> =
            rooms.iter().filter(|room| registry.typing_session_left(room, &user.id, self.id())).cloned().collect();
        registry.unregister(self.id());
        let subscribed = std::mem::take(&mut *lock_subscribed(&self.subscribed));
        let engine = self.engine().clone();
        let info = self.info.clone();
        let guard = self.guard.take();
        actix_rt::spawn(async move {
            for room in typing_rooms {
                let frame = ServerFrame::Typing { room: room.clone(), user: user.clone(), state: TypingState::Stop };
                let _ = engine.bus.publish(&Topic::Room(room), BusMessage::for_others(&frame, &user.id)).await;
            }
            engine.presence.forget(&info, &rooms).await;
            for room in subscribed.rooms {
                let _ = engine.bus.unsubscribe(&Topic::Room(room)).await;
            }
            if subscribed.user {
                let _ = engine.bus.unsubscribe(&Topic::User(user.id.clone())).await;
            }
            drop(guard);
        });
    }
}

impl Handler<WriterDone> for WsSession {
    type Result = ();

    fn handle(&mut self, _: WriterDone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        if self.outbox.is_closing() {
            return;
        }
        match item {
            Ok(AggregatedMessage::Text(text)) => self.on_text(&text, ctx),
            Ok(AggregatedMessage::Binary(_)) => {
                self.node.metrics.frames_in.with_label_values(&[INVALID_FRAME_LABEL]).inc();
                let now = Instant::now();
                if let Err(retry_after_ms) = self.bucket.take(now) {
                    return self.rate_limited(None, retry_after_ms, now, ctx);
                }
                self.reply_error(None, ErrorCode::BadRequest, "binary frames are not supported; send JSON text");
            }
            Ok(AggregatedMessage::Ping(payload)) => {
                if self.outbox.push(crate::outbox::Outgoing::Pong(payload)) == Push::Overflowed {
                    self.node.metrics.slow_consumer_closes.inc();
                }
            }
            Ok(AggregatedMessage::Pong(payload)) => self.confirm_offline_batch(&payload, ctx),
            Ok(AggregatedMessage::Close(_)) => self.close(CloseCode::Normal, "", ctx),
            Err(err) => {
                let too_big = matches!(err, ProtocolError::Overflow)
                    || matches!(&err, ProtocolError::Io(io) if io.to_string().contains("maximum continuation size"));
                if too_big {
                    self.node.metrics.errors.with_label_values(&[ErrorCode::TooLarge.as_str()]).inc();
                    self.outbox.close_now(CloseCode::TooBig, "frame too large");
                } else {
                    tracing::debug!(session = %self.id(), cause = %err, "websocket protocol error");
                    self.outbox.close_now(CloseCode::ProtocolError, "websocket protocol error");
                }
                ctx.stop();
            }
        }
    }
}
