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
//! The connection's task ([`crate::socket::conn`]) is the only code that
//! writes to the socket: it takes one item at a time with
//! [`Outbox::next_step`], so nothing but the queue itself lies between a
//! session and the kernel.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::Notify;

use chat_shared::CloseCode;

/// How long the connection waits for a close frame to be accepted by a peer that
/// does not read, before it drops the connection without one.
pub const CLOSE_FRAME_TIMEOUT_MS: u64 = 5_000;

/// Items a drained queue may keep room for; a larger one is freed.
const IDLE_QUEUE_CAPACITY: usize = 4;

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
}

/// What the socket's writer does next.
#[derive(Debug)]
pub enum Step {
    Send(Outgoing),
    /// Send the close frame: everything queued before it has gone out.
    Close(CloseCode, &'static str),
    /// Nothing to send: wait for [`Outbox::woken`].
    Wait,
}

impl Outbox {
    /// Takes the next item for the socket.
    pub fn next_step(&self) -> Step {
        let mut state = self.lock();
        if let Some(item) = state.queue.pop_front() {
            state.queued_bytes -= item.charged_bytes();
            if state.queue.is_empty() && state.queue.capacity() > IDLE_QUEUE_CAPACITY {
                // A burst's queue is given back once it drains: most
                // connections are idle most of the time.
                state.queue = VecDeque::new();
            }
            Step::Send(item)
        } else if let Some((code, reason)) = state.close {
            Step::Close(code, reason)
        } else {
            Step::Wait
        }
    }

    /// Resolves when something was pushed or a close was asked for (a wake
    /// that came while nobody waited is kept for the next wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Resolves when the queue was dropped to close at once: a frame not yet
    /// started should not be sent.
    pub async fn aborted(&self) {
        self.abort.notified().await;
    }

    /// The socket is done: nothing more will be sent. Idempotent.
    pub fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        state.queue = VecDeque::new();
        state.queued_bytes = 0;
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
