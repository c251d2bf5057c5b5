//! History reads from the history service (`history.url`).
//!
//! [`ServiceHistory`] wraps the engine's own history store: appends, DM
//! delivery and offline queues stay in this node's publish path (so sending
//! works while the history service is down), and `join` replays and `history`
//! pages are read from the service over HTTP. When the service cannot answer,
//! those frames get `unavailable`. The node's own resync after a Redis outage
//! still reads Redis directly.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytestring::ByteString;

use chat_shared::protocol::{RoomName, StoredMessage, UserId};
use history::client::HistoryClient;
use history::store::{Page, Window};

use super::{DmDraft, EngineError, EngineResult, HistoryStore, Replay, ReplayFrom, RoomDraft, Stored};
use crate::metrics::Metrics;

/// See the module documentation.
pub struct ServiceHistory {
    client: HistoryClient,
    /// The engine's store, for everything but reads.
    store: Arc<dyn HistoryStore>,
    /// `history.size`: how much a `since` resume may replay.
    history_size: usize,
    metrics: Arc<Metrics>,
}

impl ServiceHistory {
    pub fn new(
        client: HistoryClient,
        store: Arc<dyn HistoryStore>,
        history_size: usize,
        metrics: Arc<Metrics>,
    ) -> ServiceHistory {
        ServiceHistory { client, store, history_size, metrics }
    }

    async fn read(&self, room: &RoomName, window: Window) -> EngineResult<Page> {
        let started = Instant::now();
        let result = self.client.room(room, window).await;
        self.metrics.history_service_seconds.observe(started.elapsed().as_secs_f64());
        result.map_err(|err| {
            self.metrics.history_service_failures.inc();
            tracing::warn!(room = %room, cause = %err, "history service read failed");
            EngineError::Unavailable(err.to_string())
        })
    }
}

#[async_trait]
impl HistoryStore for ServiceHistory {
    async fn publish_room(&self, draft: RoomDraft) -> EngineResult<Stored> {
        self.store.publish_room(draft).await
    }

    async fn replay(&self, room: &RoomName, from: ReplayFrom) -> EngineResult<Replay> {
        let mut page = self.read(room, from.window(self.history_size)).await?;
        // A service configured with a smaller history.size answers a resume in
        // parts: read on, so that the replay reaches the seq live delivery
        // continues from (no gap between them).
        while let (ReplayFrom::After(_), Some(last)) = (from, page.messages.last().map(|m| m.seq)) {
            if last >= page.seq || page.messages.len() >= self.history_size {
                break;
            }
            let rest = self.read(room, Window { after: Some(last), before: None, limit: self.history_size }).await?;
            if rest.epoch != page.epoch || rest.messages.first().is_none_or(|m| m.seq != last + 1) {
                return Err(EngineError::Unavailable("the room's history changed while it was read".into()));
            }
            page.seq = rest.seq;
            page.messages.extend(rest.messages);
        }
        Ok(Replay { seq: page.seq, epoch: page.epoch, messages: page.messages })
    }

    async fn page(&self, room: &RoomName, before: Option<u64>, limit: usize) -> EngineResult<Vec<StoredMessage>> {
        Ok(self.read(room, Window { after: None, before, limit }).await?.messages)
    }

    async fn publish_dm(&self, draft: DmDraft) -> EngineResult<Stored> {
        self.store.publish_dm(draft).await
    }

    async fn offline(&self, user: &UserId) -> EngineResult<Vec<ByteString>> {
        self.store.offline(user).await
    }

    async fn ack_offline(&self, user: &UserId, delivered: Vec<ByteString>) -> EngineResult<()> {
        self.store.ack_offline(user, delivered).await
    }
}
