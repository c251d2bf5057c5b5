//! The gateway's view of history ([`crate::engine::Engine::history`]):
//!
//! - appends (room events, DMs) and offline queues go to the engine's own
//!   store, in this node's publish path, so sending works while the history
//!   service is down; they are refused while the node's bus is not ready
//!   (after a Redis outage, until its subscriptions are restored), so that
//!   an `ack` always means this node's own sessions get the event too;
//! - reads (join replays, resumes, catch-ups, `history` pages) go to the
//!   history service when `gateway.history_service.url` is set
//!   ([`ServiceClient`]), else to the store;
//! - concurrent reads of the same room window share one read
//!   ([`SingleFlight`]): a join storm on a room makes one request;
//! - read state (cursors, summaries for unread counts and `inbox`) goes to
//!   the store: it is small, per user, and written as often as read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytestring::ByteString;

use chat_shared::protocol::{RoomName, Thread, UserId};
use history_store::api::window_query;

use super::single_flight::SingleFlight;
use super::{
    Appended, BackendError, BackendResult, Bus, Cursor, CursorMove, DmDraft, HistoryStore, Outcome, Page, RoomDraft,
    Summary, Window,
};
use crate::metrics::Metrics;

/// See the module documentation.
pub struct NodeHistory {
    /// The engine's store: every write, and reads without a service.
    store: Arc<dyn HistoryStore>,
    /// Where reads go, when configured.
    service: Option<ServiceClient>,
    /// Whose readiness gates appends.
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    /// Room reads in flight, shared by the callers asking the same.
    room_reads: SingleFlight<(RoomName, Window), BackendResult<Page>>,
}

impl NodeHistory {
    pub fn new(
        store: Arc<dyn HistoryStore>,
        service: Option<ServiceClient>,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
    ) -> NodeHistory {
        NodeHistory { store, service, bus, metrics, room_reads: SingleFlight::default() }
    }

    fn ready(&self) -> BackendResult<()> {
        self.bus.readiness().map_err(BackendError::Unavailable)
    }

    /// A read from the service, timed and counted.
    async fn read_service(&self, service: &ServiceClient, path: &[&str], window: Window) -> BackendResult<Page> {
        read_service(&self.metrics, service, path, window).await
    }
}

/// A read from the service, timed and counted.
async fn read_service(
    metrics: &Metrics,
    service: &ServiceClient,
    path: &[&str],
    window: Window,
) -> BackendResult<Page> {
    let started = Instant::now();
    let result = service.read(path, window).await;
    metrics.history_service_seconds.observe(started.elapsed().as_secs_f64());
    result.inspect_err(|err| {
        metrics.history_service_failures.inc();
        tracing::warn!(path = ?path, cause = %err, "history service read failed");
    })
}

#[async_trait]
impl HistoryStore for NodeHistory {
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Outcome> {
        self.ready()?;
        self.store.append_room(draft).await
    }

    async fn read_room(&self, room: &RoomName, window: Window) -> BackendResult<Page> {
        let (store, service, metrics, target) =
            (self.store.clone(), self.service.clone(), self.metrics.clone(), room.clone());
        let read = || async move {
            match &service {
                Some(service) => read_service(&metrics, service, &["rooms", target.as_str(), "messages"], window).await,
                None => store.read_room(&target, window).await,
            }
        };
        self.room_reads.run((room.clone(), window), read).await
    }

    async fn append_dm(&self, draft: DmDraft) -> BackendResult<Appended> {
        self.ready()?;
        self.store.append_dm(draft).await
    }

    async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> BackendResult<Page> {
        match &self.service {
            Some(service) => {
                let path = ["users", a.as_str(), "conversations", b.as_str(), "messages"];
                self.read_service(service, &path, window).await
            }
            None => self.store.read_conversation(a, b, window).await,
        }
    }

    async fn offline(&self, user: &UserId) -> BackendResult<Vec<ByteString>> {
        self.store.offline(user).await
    }

    async fn ack_offline(&self, user: &UserId, delivered: &[ByteString]) -> BackendResult<u64> {
        self.store.ack_offline(user, delivered).await
    }

    async fn summaries(&self, reader: &UserId, threads: &[(Thread, Cursor)]) -> BackendResult<Vec<Summary>> {
        self.store.summaries(reader, threads).await
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)> {
        self.store.set_cursor(user, thread, to, how).await
    }

    async fn cursors(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        self.store.cursors(user).await
    }
}

/// The history service's HTTP client (`GET /v1/…/messages`).
#[derive(Clone)]
pub struct ServiceClient {
    http: reqwest::Client,
    base: reqwest::Url,
    max_response_bytes: usize,
}

impl ServiceClient {
    /// `url` is the service's base URL (`http://history:8091`); every request
    /// gives up after `timeout`, and a reply above `max_response_bytes` is refused.
    ///
    /// # Errors
    /// A URL that is not http(s), or an HTTP client that cannot be built.
    pub fn new(url: &str, timeout: Duration, max_response_bytes: usize) -> anyhow::Result<ServiceClient> {
        let base = reqwest::Url::parse(url)
            .ok()
            .filter(|base| matches!(base.scheme(), "http" | "https") && !base.cannot_be_a_base())
            .ok_or_else(|| anyhow::anyhow!("gateway.history_service.url {url:?} is not an http(s) URL"))?;
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(ServiceClient { http, base, max_response_bytes })
    }

    /// `GET /v1/{path…}?{window}`, read back as a [`Page`]. Unreachable,
    /// slow or failing (5xx) is `Unavailable`; any other answer is `BadData`.
    async fn read(&self, path: &[&str], window: Window) -> BackendResult<Page> {
        let unavailable = |err: reqwest::Error| BackendError::Unavailable(format!("history service: {err}"));
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| BackendError::Internal("history service URL cannot take a path".into()))?
            .pop_if_empty()
            .push("v1")
            .extend(path);
        url.query_pairs_mut().extend_pairs(window_query(&window));
        let mut response = match self.http.get(url.clone()).send().await {
            // A pooled keep-alive connection to a service that restarted
            // fails before any answer: a GET is safe to send once more, on a
            // new connection. Timeouts are not retried (they took their time).
            Err(err) if (err.is_connect() || err.is_request()) && !err.is_timeout() => {
                tracing::debug!(cause = %err, "history service request failed; trying once more");
                self.http.get(url).send().await.map_err(unavailable)?
            }
            sent => sent.map_err(unavailable)?,
        };
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(BackendError::BadData(format!(
                    "history service reply is larger than {} bytes",
                    self.max_response_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let shown = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            let message = format!("history service answered {status}: {shown}");
            return Err(if status.is_server_error() {
                BackendError::Unavailable(message)
            } else {
                BackendError::BadData(message)
            });
        }
        serde_json::from_slice(&body).map_err(|err| BackendError::BadData(format!("history service reply: {err}")))
    }
}
