//! The catch-up task: one per node, reading the hub's catch-up channel.
//!
//! A room arrives on the channel when one of its members saw a gap in the
//! seqs (delivery missed events) or when a join's release still left one;
//! [`CatchUp::EveryRoom`] when the bus says delivery to this node may have
//! missed anything (its subscriptions were restored after a reconnect, or
//! its receiver lagged). For each room the task reads, through the same
//! [`crate::engine::catch_up`] that serves joins and resumes, what the room
//! holds after the lowest seq its catching-up members have, and hands it to
//! them. A read that fails is retried after [`CATCH_UP_RETRY_MS`]; the
//! members keep holding meanwhile (bounded by their outbox limit).

use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use tokio::sync::mpsc;

use chat_shared::protocol::RoomName;

use super::{CatchUp, Hub};
use crate::engine::{self, BackendResult, HistoryStore, Page, Window};

/// How long a failed catch-up read waits before the room is queued again.
pub const CATCH_UP_RETRY_MS: u64 = 100;
/// How long an every-room pass waits for the bus to be ready (Redis back
/// and subscriptions restored) before it reads anyway.
pub const READY_WAIT_MS: u64 = 5_000;
/// How often that wait looks.
const READY_POLL_MS: u64 = 50;

/// Runs until the hub's channel closes (the node stops). `size` is
/// `history.size`, the most one read returns.
pub async fn run(hub: Arc<Hub>, history: Arc<dyn HistoryStore>, size: usize, mut requests: mpsc::Receiver<CatchUp>) {
    loop {
        let request = if hub.take_every_room_wanted() {
            CatchUp::EveryRoom
        } else {
            match requests.recv().await {
                Some(request) => request,
                None => return,
            }
        };
        let rooms = match request {
            CatchUp::Room(room) => vec![room],
            CatchUp::EveryRoom => {
                wait_until_ready(&hub).await;
                hub.hold_every_room()
            }
        };
        for room in rooms {
            catch_up_room(&hub, history.as_ref(), size, &room).await;
        }
    }
}

async fn wait_until_ready(hub: &Hub) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(READY_WAIT_MS);
    while hub.bus.readiness().is_err() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await;
    }
}

async fn catch_up_room(hub: &Hub, history: &dyn HistoryStore, size: usize, room: &RoomName) {
    let Some((lowest, highest)) = hub.catch_up_range(room) else { return };
    hub.metrics.catch_ups.inc();
    match read(history, room, lowest, highest, size).await {
        Ok(page) => {
            let events: Vec<(u64, ByteString)> =
                page.messages.iter().map(|event| (event.seq, ByteString::from(event.json.get()))).collect();
            hub.complete_catch_up(room, page.seq, &events);
        }
        Err(err) => {
            tracing::warn!(room = %room, cause = %err, "catch-up read failed; retrying");
            tokio::time::sleep(Duration::from_millis(CATCH_UP_RETRY_MS)).await;
            let mut rooms = hub.rooms.lock(room);
            if let Some(state) = rooms.get_mut(room) {
                hub.queue_catch_up(room, state);
            }
        }
    }
}

/// What the room holds after `lowest`; from its start when a member saw
/// more than the room's seq now (the history restarted under a new epoch).
async fn read(
    history: &dyn HistoryStore,
    room: &RoomName,
    lowest: u64,
    highest: u64,
    size: usize,
) -> BackendResult<Page> {
    let page = engine::catch_up(history, room, Window::after(lowest, size), size).await?;
    if highest <= page.seq {
        return Ok(page);
    }
    engine::catch_up(history, room, Window::after(0, size), size).await
}
