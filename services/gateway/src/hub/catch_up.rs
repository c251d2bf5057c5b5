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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use tokio::sync::mpsc;

use chat_shared::protocol::RoomName;

use super::stream::Caught;
use super::{CatchUp, Hub, Room};
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

/// The hub's side of catching up: the channel, and the members' reads.
impl Hub {
    /// Puts the room on the catch-up channel, once until the task takes it.
    pub(super) fn queue_catch_up(&self, room: &RoomName, state: &mut Room) {
        if state.catch_up_queued {
            return;
        }
        state.catch_up_queued = true;
        self.request(CatchUp::Room(room.clone()));
    }

    pub(super) fn request(&self, catch_up: CatchUp) {
        if self.catch_ups.try_send(catch_up).is_err() {
            self.every_room_wanted.store(true, Ordering::SeqCst);
        }
    }

    /// Takes the wish for an every-room pass that the channel could not hold.
    pub(super) fn take_every_room_wanted(&self) -> bool {
        self.every_room_wanted.swap(false, Ordering::SeqCst)
    }

    /// The range of seqs the room's catching-up members have (lowest,
    /// highest), and takes the room off the channel; `None` if none is
    /// catching up.
    pub(super) fn catch_up_range(&self, room: &RoomName) -> Option<(u64, u64)> {
        let mut rooms = self.rooms.lock(room);
        let state = rooms.get_mut(room)?;
        state.catch_up_queued = false;
        let seen = state.members.values().filter_map(|member| member.stream.catching_up_from());
        seen.fold(None, |range, seen| match range {
            None => Some((seen, seen)),
            Some((low, high)) => Some((low.min(seen), high.max(seen))),
        })
    }

    /// Makes every live member of every room catch up; returns the rooms.
    pub(super) fn hold_every_room(&self) -> Vec<RoomName> {
        let mut held = Vec::new();
        for mut rooms in self.rooms.each() {
            for (room, state) in rooms.iter_mut() {
                // Delivery may have missed events: the cache no longer joins up.
                state.recent.forget();
                let mut any = false;
                for member in state.members.values_mut() {
                    any |= member.stream.hold_for_catch_up().is_some();
                }
                if any {
                    held.push(room.clone());
                }
            }
        }
        held
    }

    /// Hands a catch-up read of the room (its seq now and the events after
    /// what its members had) to every catching-up member.
    pub(super) fn complete_catch_up(&self, room: &RoomName, latest: u64, events: &[(u64, ByteString)]) {
        let mut rooms = self.rooms.lock(room);
        let Some(state) = rooms.get_mut(room) else { return };
        let mut gap = false;
        for member in state.members.values_mut() {
            if member.stream.catching_up_from().is_none() {
                continue;
            }
            match member.stream.complete_catch_up(self.out(&member.outbox), latest, events) {
                Caught::Live => {}
                Caught::Gap => gap = true,
                Caught::Lost => self.metrics.catch_up_closes.inc(),
            }
        }
        if gap {
            self.queue_catch_up(room, state);
        }
    }
}
