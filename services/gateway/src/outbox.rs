//! Each connection's outgoing queue, bounded in bytes, and the task that
//! drains it into the socket.
//!
//! Everything a session is sent (its own replies and every fan-out) is pushed
//! here without waiting: a push never blocks the pusher, so one slow client
//! cannot slow down the others. When the queued bytes would pass
//! `limits.max_outbox_bytes`, the queue is dropped and the connection is
//! closed with 4008 (slow consumer). A frame pushed onto an empty queue is
//! always taken, whatever its size: one big reply (a resume's `joined` can
//! hold the whole history) says nothing about how fast the client reads, and
//! refusing it would close every attempt to resume the same way. So the
//! queue holds at most `max_outbox_bytes`, or one frame.
//!
//! The [`run_writer`] task owns the `actix_ws::Session` and is the only code
//! that writes to the socket; it ends after sending a close frame, when the
//! socket is gone, or when the close frame could not be sent in time.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_ws::CloseReason;
use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::Notify;

use chat_shared::CloseCode;

/// How long the writer waits for a close frame to be accepted by a peer that
/// does not read, before it drops the connection without one.
pub const CLOSE_FRAME_TIMEOUT_MS: u64 = 5_000;

/// Bytes charged for a control frame (ping or pong) in the queue.
const CONTROL_FRAME_BYTES: usize = 16;

/// One item for the socket.
#[derive(Debug)]
pub enum Outgoing {
    Text(ByteString),
    /// A ping with this payload (empty for heartbeats).
    Ping(Bytes),
    Pong(Bytes),
}

impl Outgoing {
    fn charged_bytes(&self) -> usize {
        match self {
            Outgoing::Text(text) => text.len(),
            Outgoing::Ping(payload) | Outgoing::Pong(payload) => CONTROL_FRAME_BYTES + payload.len(),
        }
    }
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// This push overflowed the queue: the connection is being closed with 4008.
    Overflowed,
    /// The connection is closing; the item was dropped.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Outgoing>,
    queued_bytes: usize,
    /// Set once: the close frame to send after the queue drains.
    close: Option<(CloseCode, &'static str)>,
    /// The writer has finished; nothing more will be sent.
    finished: bool,
}

/// A connection's outgoing queue.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer when there is something to do.
    wake: Notify,
    /// Wakes a writer stuck on a full socket when the connection must close now.
    abort: Notify,
    max_bytes: usize,
}

impl Outbox {
    pub fn new(max_bytes: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State { queue: VecDeque::new(), queued_bytes: 0, close: None, finished: false }),
            wake: Notify::new(),
            abort: Notify::new(),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every mutation is a single push or pop), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a text frame.
    pub fn push_text(&self, text: ByteString) -> Push {
        self.push(Outgoing::Text(text))
    }

    /// Queues any frame.
    pub fn push(&self, item: Outgoing) -> Push {
        let mut state = self.lock();
        if state.close.is_some() || state.finished {
            return Push::Closed;
        }
        let bytes = item.charged_bytes();
        if !state.queue.is_empty() && state.queued_bytes + bytes > self.max_bytes {
            state.queue.clear();
            state.queued_bytes = 0;
            state.close = Some((CloseCode::SlowConsumer, "slow consumer"));
            drop(state);
            self.abort.notify_one();
            self.wake.notify_one();
            return Push::Overflowed;
        }
        state.queued_bytes += bytes;
        state.queue.push_back(item);
        drop(state);
        self.wake.notify_one();
        Push::Queued
    }

    /// Closes after what is queued has been sent. Later pushes are dropped.
    /// Returns false if the connection was already closing.
    pub fn close(&self, code: CloseCode, reason: &'static str) -> bool {
        let mut state = self.lock();
        if state.close.is_some() || state.finished {
            return false;
        }
        state.close = Some((code, reason));
        drop(state);
        self.wake.notify_one();
        true
    }

    /// Drops what is queued and closes at once (a slow or abusive client).
    /// Returns false if the connection was already closing.
    pub fn close_now(&self, code: CloseCode, reason: &'static str) -> bool {
        let mut state = self.lock();
        if state.finished || matches!(state.close, Some((CloseCode::SlowConsumer, _))) {
            return false;
        }
        let first = state.close.is_none();
        state.queue.clear();
        state.queued_bytes = 0;
        state.close = Some((code, reason));
        drop(state);
        self.abort.notify_one();
        self.wake.notify_one();
        first
    }

    /// Whether the connection is closing or closed.
    pub fn is_closing(&self) -> bool {
        let state = self.lock();
        state.close.is_some() || state.finished
    }

    /// Bytes waiting to be written (for tests and stats).
    pub fn queued_bytes(&self) -> usize {
        self.lock().queued_bytes
    }

    /// Takes every queued text frame (tests of what was queued).
    #[cfg(test)]
    pub fn drain_texts(&self) -> Vec<String> {
        let mut state = self.lock();
        state.queued_bytes = 0;
        state
            .queue
            .drain(..)
            .filter_map(|item| match item {
                Outgoing::Text(text) => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        state.queue.clear();
        state.queued_bytes = 0;
    }
}

enum Step {
    Send(Outgoing),
    Close(CloseCode, &'static str),
    Wait,
}

/// Drains `outbox` into the socket until the connection closes.
///
/// `on_done` runs once, as soon as the connection is over for the session:
/// when the socket fails, or when the close frame starts out (its delivery to
/// a peer that does not read may then take up to [`CLOSE_FRAME_TIMEOUT_MS`]).
/// Returns the close code that was sent (or attempted), if the server closed.
pub async fn run_writer(
    outbox: std::sync::Arc<Outbox>,
    mut session: actix_ws::Session,
    on_done: impl FnOnce(),
) -> Option<CloseCode> {
    let closed_with = loop {
        let step = {
            let mut state = outbox.lock();
            if let Some(item) = state.queue.pop_front() {
                state.queued_bytes -= item.charged_bytes();
                Step::Send(item)
            } else if let Some((code, reason)) = state.close {
                Step::Close(code, reason)
            } else {
                Step::Wait
            }
        };
        match step {
            Step::Wait => outbox.wake.notified().await,
            Step::Send(item) => {
                let sent = tokio::select! {
                    biased;
                    _ = outbox.abort.notified() => continue,
                    sent = send(&mut session, item) => sent,
                };
                if sent.is_err() {
                    outbox.finish();
                    on_done();
                    return None;
                }
            }
            Step::Close(code, reason) => {
                outbox.finish();
                on_done();
                let frame = CloseReason { code: code.code().into(), description: Some(reason.to_owned()) };
                let timeout = Duration::from_millis(CLOSE_FRAME_TIMEOUT_MS);
                let _ = tokio::time::timeout(timeout, session.close(Some(frame))).await;
                break Some(code);
            }
        }
    };
    closed_with
}

async fn send(session: &mut actix_ws::Session, item: Outgoing) -> Result<(), actix_ws::Closed> {
    match item {
        Outgoing::Text(text) => session.text(text).await,
        Outgoing::Ping(payload) => session.ping(&payload).await,
        Outgoing::Pong(payload) => session.pong(&payload).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_drops_the_queue_and_closes_with_4008() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push_text("12345".into()), Push::Queued);
        assert_eq!(outbox.push_text("12345".into()), Push::Queued);
        assert_eq!(outbox.queued_bytes(), 10);
        assert_eq!(outbox.push_text("1".into()), Push::Overflowed);
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.is_closing());
        assert_eq!(outbox.push_text("1".into()), Push::Closed);
        assert!(!outbox.close(CloseCode::GoingAway, "x"), "already closing");
    }

    #[test]
    fn one_frame_over_the_limit_is_taken_alone_but_nothing_after_it() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push_text("a joined of 20 bytes".into()), Push::Queued);
        assert_eq!(outbox.push_text("1".into()), Push::Overflowed, "the queue is over its limit");
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push_text("12345".into()), Push::Queued);
        assert_eq!(outbox.push_text("a joined of 20 bytes".into()), Push::Overflowed, "not alone: the limit holds");
    }

    #[test]
    fn graceful_close_refuses_later_pushes() {
        let outbox = Outbox::new(100);
        assert_eq!(outbox.push_text("a".into()), Push::Queued);
        assert!(outbox.close(CloseCode::GoingAway, "shutting down"));
        assert_eq!(outbox.push_text("b".into()), Push::Closed);
        assert_eq!(outbox.queued_bytes(), 1, "queued frames still go out before the close");
        assert!(!outbox.close_now(CloseCode::SlowConsumer, "slow"), "not the first close");
        assert_eq!(outbox.queued_bytes(), 0, "close_now drops the queue");
    }
}
