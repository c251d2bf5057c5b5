//! Direct messages: the `dm` request, and the DMs queued while the user was
//! away, delivered right after `welcome`.
//!
//! Queued DMs go out in batches of at most half the outbox, each followed by
//! a ping; the pong (which a WebSocket stack sends after reading everything
//! before the ping) confirms the batch, which then leaves the queue, and the
//! next batch goes. Pings are numbered and a peer may answer only the latest
//! one (RFC 6455), so any pong numbered at or after the batch's ping confirms
//! it. Live DMs are held by the hub meanwhile, so a conversation's DMs arrive
//! in seq order. A connection lost mid-way leaves the unconfirmed DMs queued
//! for the next connection: delivery of queued DMs is at least once.

use std::collections::VecDeque;
use std::time::Duration;

use actix::{AsyncContext, Context};
use bytestring::ByteString;

use chat_shared::protocol::{ClientId, RequestId, ServerFrame, UserId};

use super::dispatch::user_rate_gate;
use super::WsSession;
use crate::engine::DmDraft;

/// Where delivery of the queued DMs stands.
#[derive(Debug, Default)]
pub(super) struct OfflineDelivery {
    /// Read from the queue, not yet sent.
    backlog: VecDeque<ByteString>,
    /// Sent, awaiting the pong.
    in_flight: Vec<ByteString>,
    /// The number of the ping that follows `in_flight`.
    confirmed_by: u64,
    /// Counts batches, so a timeout knows whether its batch is still waiting.
    batch: u64,
}

/// The next batch from `backlog`: at most `budget` bytes (at least one DM),
/// and the DMs that can never go out (each as large as the outbox, after
/// the limits changed since it was queued), which must not block the rest.
fn next_batch(
    backlog: &mut VecDeque<ByteString>,
    budget: usize,
    outbox_bytes: usize,
) -> (Vec<ByteString>, Vec<ByteString>) {
    let (mut batch, mut undeliverable, mut bytes) = (Vec::new(), Vec::new(), 0);
    while let Some(next) = backlog.front() {
        if next.len() >= outbox_bytes {
            undeliverable.extend(backlog.pop_front());
            continue;
        }
        if !batch.is_empty() && bytes + next.len() > budget {
            break;
        }
        bytes += next.len();
        batch.extend(backlog.pop_front());
    }
    (batch, undeliverable)
}

impl WsSession {
    pub(super) fn dm(
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
        let request = async move {
            if let Some(wait) = user_rate_gate(&engine, &draft.from.id, user_rate).await? {
                return Ok(Err(wait));
            }
            engine.history.append_dm(draft).await.map(Ok)
        };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok(Err(wait)) => act.reply_user_rate_limited(re, wait),
            Ok(Ok(appended)) => {
                act.node.metrics.dms_published.inc();
                act.reply(&ServerFrame::Ack {
                    re,
                    room: None,
                    to: Some(to),
                    seq: Some(appended.seq),
                    ts: appended.ts,
                    delivered: Some(appended.delivered),
                    changed: None,
                });
            }
            Err(err) => act.reply_backend_error(re, "dm", &err),
        });
    }

    /// Starts delivering the DMs queued for the user.
    pub(super) fn start_offline_delivery(&mut self, queued: Vec<ByteString>, ctx: &mut Context<Self>) {
        self.offline.backlog = queued.into();
        self.send_offline_batch(ctx);
    }

    /// Sends the next batch of offline DMs and a ping to confirm it; with
    /// none left, releases the live DMs held since `welcome`.
    fn send_offline_batch(&mut self, ctx: &mut Context<Self>) {
        let outbox_bytes = self.node.settings.gateway.limits.max_outbox_bytes;
        let (batch, undeliverable) = next_batch(&mut self.offline.backlog, outbox_bytes / 2, outbox_bytes);
        if !undeliverable.is_empty() {
            tracing::error!(session = %self.id(), dms = undeliverable.len(), "queued DMs larger than the outbox; dropped");
            self.ack_offline(undeliverable);
        }
        let (hub, user) = (self.node.hub.clone(), self.info.user.id.clone());
        if batch.is_empty() {
            hub.release_held_dms(&user, self.id());
            return;
        }
        hub.deliver_offline(&user, self.id(), &batch);
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
                act.node.hub.release_held_dms(&act.info.user.id, act.id());
            }
        });
    }

    /// A pong: if it answers the ping after the batch in flight (or a later
    /// one), the client read the batch: drop it from the queue, send the next.
    pub(super) fn confirm_offline_batch(&mut self, pong: &[u8], ctx: &mut Context<Self>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dms(sizes: &[usize]) -> VecDeque<ByteString> {
        sizes.iter().map(|n| ByteString::from("x".repeat(*n))).collect()
    }

    fn lengths(batch: &[ByteString]) -> Vec<usize> {
        batch.iter().map(|dm| dm.len()).collect()
    }

    #[test]
    fn batches_fill_the_budget_and_take_at_least_one() {
        let mut backlog = dms(&[30, 30, 30, 80, 10]);
        let (batch, dropped) = next_batch(&mut backlog, 70, 200);
        assert_eq!((lengths(&batch), dropped.len()), (vec![30, 30], 0));
        let (batch, _) = next_batch(&mut backlog, 70, 200);
        assert_eq!(lengths(&batch), [30], "80 more would pass the budget");
        let (batch, _) = next_batch(&mut backlog, 70, 200);
        assert_eq!(lengths(&batch), [80], "one DM over the budget still goes, alone");
        let (batch, _) = next_batch(&mut backlog, 70, 200);
        assert_eq!(lengths(&batch), [10]);
        assert!(next_batch(&mut backlog, 70, 200).0.is_empty());
    }

    #[test]
    fn a_dm_as_large_as_the_outbox_is_set_aside_not_blocking() {
        let mut backlog = dms(&[10, 200, 10]);
        let (batch, dropped) = next_batch(&mut backlog, 100, 200);
        assert_eq!((lengths(&batch), lengths(&dropped)), (vec![10, 10], vec![200]));
    }
}
