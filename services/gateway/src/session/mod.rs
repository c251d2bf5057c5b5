//! One WebSocket connection: an actix actor that speaks the protocol.
//!
//! The actor owns what is the connection's alone (its identity and grant,
//! rate limiter, liveness, offline-DM delivery); which rooms it is in is
//! the hub's record ([`crate::hub`]). It reads the socket as a stream and
//! handles frames one at a time, in order: a frame that needs the engine
//! holds the actor (`ctx.wait`) until its reply is queued, so replies come
//! back in request order and a client that floods is slowed by TCP, not
//! buffered.
//!
//! Nothing is written to the socket from here: replies and fan-out go
//! through the session's bounded [`Outbox`], drained by the connection's task
//! ([`crate::socket::conn`]), which also hands the actor each client frame
//! as an [`Incoming`] message. The actor keeps running its timers and
//! mailbox however slow the client.
//!
//! # Layout
//! - this file: the actor's state, start and stop, client frames,
//!   heartbeats and replies;
//! - `dispatch`: parsing, rate limits and the checks every frame passes;
//! - `rooms`: `join`, `leave`, `members`, `history`;
//! - `events`: `send`, `edit`, `delete`, `react` (room events the store checks);
//! - `read_state`: `read` (cursors and receipts) and `inbox`;
//! - `status`: the user's presence status;
//! - `direct`: `dm`, and the offline DMs delivered after `welcome`;
//! - `signal`: `signal`, relayed to a user's sessions and never stored;
//! - `typing`: relaying `typing` and its automatic stop.

mod direct;
mod dispatch;
mod events;
mod read_state;
mod rooms;
mod signal;
mod status;
mod typing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use bytes::Bytes;
use bytestring::ByteString;

use chat_shared::protocol::{RequestId, ServerFrame, TypingState, WelcomeLimits, PROTOCOL_VERSION};
use chat_shared::{CloseCode, ErrorCode};

use crate::auth::RoomGrant;
use crate::engine::{backend_message, BackendError, BusMessage, Engine, SessionId, SessionInfo, Topic};
use crate::limits::{AbuseMeter, TokenBucket};
use crate::metrics::INVALID_FRAME_LABEL;
use crate::node::{ConnectionPermit, Node};
use crate::outbox::{Outbox, Outgoing, Push};
use crate::socket::Incoming;
use direct::OfflineDelivery;

/// One connection's actor.
pub struct WsSession {
    node: Arc<Node>,
    info: SessionInfo,
    /// What the token lets this connection touch.
    grant: RoomGrant,
    outbox: Arc<Outbox>,
    bucket: TokenBucket,
    abuse: AbuseMeter,
    /// When the client last showed life (any frame, pong included).
    last_seen: Instant,
    /// The session's place among the node's connections, given back once its
    /// cleanup is done (the drain waits for all of them).
    permit: Option<ConnectionPermit>,
    /// Offline DMs being delivered after `welcome`.
    offline: OfflineDelivery,
    /// Pings sent so far; each ping carries its number (decimal) as payload.
    pings_sent: u64,
}

/// The connection is over: the socket failed, or the close frame is on its
/// way.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketDone;

impl WsSession {
    pub fn new(
        node: Arc<Node>,
        info: SessionInfo,
        grant: RoomGrant,
        outbox: Arc<Outbox>,
        permit: ConnectionPermit,
    ) -> WsSession {
        let limits = &node.settings.gateway.limits;
        let now = Instant::now();
        WsSession {
            outbox,
            bucket: TokenBucket::new(limits.messages_per_second, now),
            abuse: AbuseMeter::new(
                limits.max_rate_limited_frames,
                Duration::from_millis(limits.rate_limit_window_ms),
                now,
            ),
            permit: Some(permit),
            node,
            info,
            grant,
            last_seen: now,
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

    fn welcome(&self) -> ByteString {
        let limits = &self.node.settings.gateway.limits;
        ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            session: self.id().to_string(),
            user: self.info.user.clone(),
            node: self.node.settings.gateway.node_id.clone(),
            heartbeat_ms: self.node.settings.gateway.heartbeat.interval_ms,
            limits: WelcomeLimits {
                max_frame_bytes: limits.max_frame_bytes,
                max_text_bytes: limits.max_text_bytes,
                max_signal_bytes: limits.max_signal_bytes,
                messages_per_second: limits.messages_per_second,
                user_messages_per_second: Some(limits.user_messages_per_second).filter(|n| *n > 0),
            },
        }
        .to_json()
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.node.metrics.connections_opened.inc();
        // `welcome` is queued before the session is reachable, so it is first.
        if self.outbox.push_text(self.welcome()) == Push::Queued {
            self.node.metrics.frames_out("welcome", 1);
        }
        let subscribed = self.node.hub.register(&self.info.user, self.id(), self.outbox.clone());
        if self.node.is_draining() {
            // Upgraded as the drain began, after it closed every session it knew.
            return self.close(CloseCode::GoingAway, "server shutting down", ctx);
        }
        let interval = Duration::from_millis(self.node.settings.gateway.heartbeat.interval_ms);
        ctx.run_interval(interval, |act, ctx| act.heartbeat(ctx));

        // The user's DM topic first, then the DMs queued while the user was away.
        let engine = self.engine().clone();
        let user = self.info.user.id.clone();
        let fut = async move {
            subscribed.await?;
            let offline = engine.history.offline(&user).await.unwrap_or_else(|err| {
                tracing::warn!(user = %user, cause = %err, "offline DMs could not be read; they stay queued");
                Vec::new()
            });
            Ok::<_, BackendError>(offline)
        };
        ctx.wait(fut.into_actor(self).map(|result, act, ctx| match result {
            Ok(offline) => act.start_offline_delivery(offline, ctx),
            Err(err) => {
                // Without its DM topic the session would miss messages: let
                // the client reconnect, to this node or another.
                tracing::warn!(session = %act.id(), cause = %err, "user channel unavailable; closing");
                act.close(CloseCode::GoingAway, "backend unavailable, reconnect", ctx);
            }
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.outbox.close(CloseCode::Normal, "");
        let left = self.node.hub.unregister(&self.info.user.id, self.id());
        let engine = self.engine().clone();
        let info = self.info.clone();
        let permit = self.permit.take();
        actix_rt::spawn(async move {
            for room in left.typing_stopped {
                let frame =
                    ServerFrame::Typing { room: room.clone(), user: info.user.clone(), state: TypingState::Stop };
                let _ = engine.bus.publish(&Topic::Room(room), BusMessage::for_others(&frame, &info.user.id)).await;
            }
            engine.presence.forget(&info, &left.rooms).await;
            drop(permit);
        });
    }
}

impl Handler<SocketDone> for WsSession {
    type Result = ();

    fn handle(&mut self, _: SocketDone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Incoming> for WsSession {
    type Result = ();

    fn handle(&mut self, item: Incoming, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        if self.outbox.is_closing() {
            return;
        }
        match item {
            Incoming::Text(text) => self.on_text(&text, ctx),
            Incoming::Binary | Incoming::InvalidText => {
                self.node.metrics.frames_in.with_label_values(&[INVALID_FRAME_LABEL]).inc();
                let now = Instant::now();
                if let Err(retry_after_ms) = self.bucket.take(now) {
                    return self.rate_limited(None, retry_after_ms, now, ctx);
                }
                let message = if matches!(item, Incoming::Binary) {
                    "binary frames are not supported; send JSON text"
                } else {
                    "a text frame must be UTF-8"
                };
                self.reply_error(None, ErrorCode::BadRequest, message);
            }
            Incoming::Ping(payload) => {
                if self.outbox.push(Outgoing::Pong(payload)) == Push::Overflowed {
                    self.node.metrics.slow_consumer_closes.inc();
                }
            }
            Incoming::Pong(payload) => self.confirm_offline_batch(&payload, ctx),
            Incoming::Close => self.close(CloseCode::Normal, "", ctx),
            Incoming::TooBig => {
                self.node.metrics.errors.with_label_values(&[ErrorCode::TooLarge.as_str()]).inc();
                self.outbox.close_now(CloseCode::TooBig, "frame too large");
                ctx.stop();
            }
            Incoming::ProtocolError(cause) => {
                tracing::debug!(session = %self.id(), cause, "websocket protocol error");
                self.outbox.close_now(CloseCode::ProtocolError, "websocket protocol error");
                ctx.stop();
            }
        }
    }
}
