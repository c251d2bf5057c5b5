//! The node's pub/sub side: the subscriber connection (one per shard on a
//! cluster), the channels it is subscribed to, the receive loop that hands
//! every message to the hub, and restoration after a lost connection.
//!
//! Which channels the node wants is the hub's decision; here, one task
//! carries the changes out in the order they were asked for, so a quick
//! unsubscribe and subscribe of the same channel can never reach Redis
//! swapped, and a `subscribe` resolves only once Redis has confirmed it
//! (which is what makes a join gapless: subscribe, then read history). That
//! task keeps the set of subscribed channels, to subscribe them all again
//! after a reconnect.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use futures_util::future::{self, BoxFuture, FutureExt};
use tokio::sync::{broadcast::error::RecvError, mpsc, oneshot};

use chat_shared::keys::{self, Channel};
use chat_shared::protocol::{ServerFrame, UserId};
use chat_shared::wire::{Envelope, DISCONNECT_KIND};

use super::Connection;
use crate::engine::{BackendError, BackendResult, BusMessage, Deliver, FramePayload, Topic};
use crate::metrics::Metrics;

/// Subscription changes waiting for the subscription task.
const SUBSCRIPTION_QUEUE: usize = 4_096;
/// How often a lost subscription is checked for and restored.
const RESUBSCRIBE_CHECK_MS: u64 = 200;
/// How often failed unsubscribes are tried again.
const STALE_RETRY_MS: u64 = 1_000;
/// How often, on a Redis Cluster, the subscriber reads which master owns
/// which slots: a failover moves a shard's channels to the new master
/// while the connection to the old one stays up (Redis only sends it a
/// `sunsubscribe`, which the client library drops).
const TOPOLOGY_CHECK_MS: u64 = 1_000;

/// Whether the node can serve: connected, and every subscription restored.
#[derive(Debug, Default)]
pub struct Health {
    /// The subscriber lost its connection and has not resubscribed yet.
    resubscribing: AtomicBool,
    /// The broadcast and control channels are subscribed.
    base_subscribed: AtomicBool,
}

impl Health {
    pub fn subscriptions_ready(&self) -> bool {
        self.base_subscribed.load(Ordering::SeqCst) && !self.resubscribing.load(Ordering::SeqCst)
    }
}

enum Change {
    Subscribe(String, oneshot::Sender<BackendResult<()>>),
    Unsubscribe(String),
    /// Subscribe every channel in the set again (after a reconnect).
    Restore(oneshot::Sender<BackendResult<()>>),
}

/// Handle to the subscription task.
#[derive(Clone)]
pub struct Subscriptions {
    changes: mpsc::Sender<Change>,
}

fn unavailable(err: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(err.to_string())
}

impl Subscriptions {
    /// Subscribes `channel` (queued now); resolves once it is active.
    pub fn subscribe(&self, channel: String) -> BoxFuture<'static, BackendResult<()>> {
        let (tx, rx) = oneshot::channel();
        if self.changes.try_send(Change::Subscribe(channel, tx)).is_err() {
            return future::ready(Err(unavailable("too many pending subscription changes"))).boxed();
        }
        async move { rx.await.map_err(unavailable)? }.boxed()
    }

    /// Subscribes every channel in the set again; resolves once all are active.
    async fn restore(&self) -> BackendResult<()> {
        let (tx, rx) = oneshot::channel();
        self.changes.try_send(Change::Restore(tx)).map_err(|_| unavailable("subscription queue full"))?;
        rx.await.map_err(unavailable)?
    }

    /// Unsubscribes `channel` (queued now).
    pub fn unsubscribe(&self, channel: String) {
        if self.changes.try_send(Change::Unsubscribe(channel)).is_err() {
            tracing::warn!("subscription queue full; an unsubscribe was dropped");
        }
    }
}

/// Starts the task that carries out subscription changes.
pub fn start_changes(subscriber: SubscriberClient, sharded: bool, command_timeout: Duration) -> Subscriptions {
    let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
    tokio::spawn(run_changes(subscriber, sharded, command_timeout, rx));
    Subscriptions { changes: tx }
}

/// Starts handing what arrives to `sink`, and restoring the subscriptions
/// after each lost connection (then telling `sink` it may have missed
/// messages).
pub fn start_delivery(
    conn: Arc<Connection>,
    subscriptions: Subscriptions,
    sink: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
) {
    tokio::spawn(receive(conn.subscriber.clone(), sink.clone(), metrics));
    tokio::spawn(keep_subscribed(conn, subscriptions, sink));
}

async fn change(
    subscriber: &SubscriberClient,
    sharded: bool,
    timeout: Duration,
    channel: &str,
    subscribe: bool,
) -> BackendResult<()> {
    let command = async {
        match (sharded, subscribe) {
            (false, true) => subscriber.subscribe(channel).await,
            (false, false) => subscriber.unsubscribe(channel).await,
            (true, true) => subscriber.ssubscribe(channel).await,
            (true, false) => subscriber.sunsubscribe(channel).await,
        }
    };
    match tokio::time::timeout(timeout, command).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(unavailable("subscription timed out")),
    }
}

async fn run_changes(subscriber: SubscriberClient, sharded: bool, timeout: Duration, mut rx: mpsc::Receiver<Change>) {
    let mut subscribed: HashSet<String> = HashSet::new();
    // Channels whose unsubscribe failed (Redis was away): retried until done,
    // so a node never stays subscribed to rooms it no longer serves.
    let mut stale: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(STALE_RETRY_MS));
    loop {
        let next = tokio::select! {
            next = rx.recv() => match next {
                Some(next) => next,
                None => return,
            },
            _ = tick.tick() => {
                if !stale.is_empty() && subscriber.is_connected() {
                    let retry: Vec<String> = stale.drain().collect();
                    for channel in retry {
                        if change(&subscriber, sharded, timeout, &channel, false).await.is_err() {
                            stale.insert(channel);
                        }
                    }
                }
                continue;
            }
        };
        match next {
            Change::Subscribe(channel, done) => {
                let result = if subscribed.contains(&channel) {
                    Ok(())
                } else {
                    stale.remove(&channel);
                    let result = change(&subscriber, sharded, timeout, &channel, true).await;
                    if result.is_ok() {
                        subscribed.insert(channel);
                    }
                    result
                };
                // A joiner that went away meanwhile still left its room
                // with the hub, which unsubscribes when the room empties.
                let _ = done.send(result);
            }
            Change::Restore(done) => {
                let mut result = Ok(());
                for channel in &subscribed {
                    if let Err(err) = change(&subscriber, sharded, timeout, channel, true).await {
                        result = Err(err);
                        break;
                    }
                }
                let _ = done.send(result);
            }
            Change::Unsubscribe(channel) => {
                if subscribed.remove(&channel) {
                    if let Err(err) = change(&subscriber, sharded, timeout, &channel, false).await {
                        tracing::debug!(channel, cause = %err, "unsubscribe failed; will retry");
                        stale.insert(channel);
                    }
                }
            }
        }
    }
}

/// Subscribes the broadcast and control channels until it works, then
/// restores every subscription after each lost connection.
async fn keep_subscribed(conn: Arc<Connection>, subscriptions: Subscriptions, sink: Arc<dyn Deliver>) {
    let (subscriber, health) = (&conn.subscriber, &conn.health);
    let mut errors = subscriber.error_rx();
    let mut reconnects = subscriber.reconnect_rx();
    for channel in [keys::BROADCAST_CHANNEL, keys::CONTROL_CHANNEL] {
        while subscriptions.subscribe(channel.to_owned()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(RESUBSCRIBE_CHECK_MS)).await;
        }
    }
    health.base_subscribed.store(true, Ordering::SeqCst);
    // Connections made while subscribing the base channels are not losses.
    while errors.try_recv().is_ok() || reconnects.try_recv().is_ok() {}
    let mut tick = tokio::time::interval(Duration::from_millis(RESUBSCRIBE_CHECK_MS));
    let mut topology = tokio::time::interval(Duration::from_millis(TOPOLOGY_CHECK_MS));
    let mut owners = if conn.sharded { slot_owners(subscriber).await } else { None };
    loop {
        tokio::select! {
            error = errors.recv() => {
                if matches!(error, Err(RecvError::Closed)) { return; }
                health.resubscribing.store(true, Ordering::SeqCst);
            }
            reconnect = reconnects.recv() => {
                if matches!(reconnect, Err(RecvError::Closed)) { return; }
                health.resubscribing.store(true, Ordering::SeqCst);
            }
            _ = tick.tick() => {}
            _ = topology.tick(), if conn.sharded => {
                let now = slot_owners(subscriber).await;
                if now.is_some() && now != owners {
                    if owners.is_some() {
                        tracing::info!("the cluster's slots moved; subscribing again where they are now");
                        health.resubscribing.store(true, Ordering::SeqCst);
                    }
                    owners = now;
                }
            }
        }
        if !health.resubscribing.load(Ordering::SeqCst) || !subscriber.is_connected() {
            continue;
        }
        match subscriptions.restore().await {
            Ok(()) => {
                health.resubscribing.store(false, Ordering::SeqCst);
                tracing::info!("redis subscriptions restored");
                sink.missed();
            }
            Err(err) => tracing::warn!(cause = %err, "resubscribe failed; retrying"),
        }
    }
}

/// Which master owns which slots, as the cluster tells now (`None` when it
/// cannot be read).
async fn slot_owners(subscriber: &SubscriberClient) -> Option<Vec<(u16, u16, String)>> {
    subscriber.sync_cluster().await.ok()?;
    let state = subscriber.cached_cluster_state()?;
    Some(state.slots().iter().map(|range| (range.start, range.end, range.primary.to_string())).collect())
}

/// Hands every pub/sub message to the hub. A lagging receiver is counted
/// and answered with a catch-up, never the end of the loop.
async fn receive(subscriber: SubscriberClient, sink: Arc<dyn Deliver>, metrics: Arc<Metrics>) {
    let mut messages = subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let Some(payload) = message.value.as_str() else { continue };
                match decode(&message.channel, &payload) {
                    Some((topic, msg)) => {
                        sink.deliver(&topic, &msg);
                    }
                    None => tracing::warn!(channel = %message.channel, "unreadable pub/sub message dropped"),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                metrics.pubsub_lagged.inc_by(missed);
                tracing::warn!(missed, "pub/sub receiver lagged; every room catches up");
                sink.missed();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Turns a channel name and payload back into a topic and bus message.
pub fn decode(channel: &str, payload: &str) -> Option<(Topic, BusMessage)> {
    let topic = match keys::parse_channel(channel)? {
        Channel::Room(room) => Topic::Room(room),
        Channel::User(user) => Topic::User(user),
        Channel::Broadcast => Topic::Broadcast,
        Channel::Control => Topic::Control,
    };
    let envelope = Envelope::decode(payload)?;
    if envelope.kind == DISCONNECT_KIND {
        return Some((topic, BusMessage::Disconnect { user: UserId::parse(envelope.body).ok()? }));
    }
    let kind = ServerFrame::TYPES.iter().find(|k| **k == envelope.kind)?;
    let frame = FramePayload {
        kind,
        seq: envelope.seq,
        skip_user: match envelope.skip_user {
            Some(user) => Some(UserId::parse(user).ok()?),
            None => None,
        },
        skip_session: envelope.skip_session.map(Arc::from),
        only_session: envelope.only_session.map(Arc::from),
        json: bytestring::ByteString::from(envelope.body.to_owned()),
    };
    Some((topic, BusMessage::Frame(frame)))
}

/// Renders a bus message for a channel.
pub fn encode(msg: &BusMessage) -> String {
    match msg {
        BusMessage::Frame(frame) => Envelope {
            kind: frame.kind,
            seq: frame.seq,
            skip_user: frame.skip_user.as_ref().map(UserId::as_str),
            skip_session: frame.skip_session.as_deref(),
            only_session: frame.only_session.as_deref(),
            body: &frame.json,
        }
        .encode(),
        BusMessage::Disconnect { user } => Envelope {
            kind: DISCONNECT_KIND,
            seq: None,
            skip_user: None,
            skip_session: None,
            only_session: None,
            body: user.as_str(),
        }
        .encode(),
    }
}
