//! The node's pub/sub side: one subscriber connection (per shard on a
//! cluster), reference-counted channel subscriptions, the receive loop that
//! hands every message to the registry, and reconnection.
//!
//! Subscriptions are changed by one task, in order, so a quick unsubscribe
//! and subscribe of the same channel can never reach Redis swapped; a
//! `subscribe` call returns only once Redis has confirmed the subscription,
//! which is what makes a join gapless (subscribe, then read history).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use tokio::sync::{broadcast::error::RecvError, mpsc, oneshot};

use chat_shared::keys::{self, Channel};
use chat_shared::protocol::{ServerFrame, UserId};
use chat_shared::wire::{Envelope, DISCONNECT_KIND};

use crate::engine::{BackendError, BackendResult, BusMessage, Deliver, FramePayload, Topic};
use crate::metrics::Metrics;

/// Subscription changes waiting for the subscription task.
const SUBSCRIPTION_QUEUE: usize = 4_096;
/// How often a lost subscription is checked for and restored.
const RESUBSCRIBE_CHECK_MS: u64 = 200;
/// How often failed unsubscribes are tried again.
const STALE_RETRY_MS: u64 = 1_000;

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
    /// Subscribe every held channel again (after a reconnect).
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
    /// Adds a reference to `channel`; the first one subscribes. Returns once
    /// the subscription is active.
    pub async fn subscribe(&self, channel: String) -> BackendResult<()> {
        let (tx, rx) = oneshot::channel();
        self.changes
            .try_send(Change::Subscribe(channel, tx))
            .map_err(|_| BackendError::Unavailable("too many pending subscriptions".into()))?;
        rx.await.map_err(unavailable)?
    }

    /// Subscribes every channel with a reference again; returns once all are
    /// active.
    pub async fn restore(&self) -> BackendResult<()> {
        let (tx, rx) = oneshot::channel();
        self.changes
            .try_send(Change::Restore(tx))
            .map_err(|_| BackendError::Unavailable("subscription queue full".into()))?;
        rx.await.map_err(unavailable)?
    }

    /// Drops a reference to `channel`; the last one unsubscribes.
    pub fn unsubscribe(&self, channel: String) {
        if self.changes.try_send(Change::Unsubscribe(channel)).is_err() {
            tracing::warn!("subscription queue full; an unsubscribe was dropped");
        }
    }
}

/// Starts the subscription task, the receive loop and the reconnect handler.
pub fn start(
    subscriber: SubscriberClient,
    sharded: bool,
    command_timeout: Duration,
    sink: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    on_resubscribed: Arc<dyn Fn() + Send + Sync>,
) -> Subscriptions {
    let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
    let subscriptions = Subscriptions { changes: tx };
    tokio::spawn(run_changes(subscriber.clone(), sharded, command_timeout, rx));
    tokio::spawn(receive(subscriber.clone(), sink, metrics, on_resubscribed.clone()));
    tokio::spawn(keep_subscribed(subscriber, subscriptions.clone(), health, on_resubscribed));
    subscriptions
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
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(BackendError::Unavailable("subscription timed out".into())),
    }
}

async fn run_changes(subscriber: SubscriberClient, sharded: bool, timeout: Duration, mut rx: mpsc::Receiver<Change>) {
    let mut refs: HashMap<String, usize> = HashMap::new();
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
                let result = match refs.get_mut(&channel) {
                    Some(n) => {
                        *n += 1;
                        Ok(())
                    }
                    None => {
                        stale.remove(&channel);
                        let result = change(&subscriber, sharded, timeout, &channel, true).await;
                        if result.is_ok() {
                            refs.insert(channel.clone(), 1);
                        }
                        result
                    }
                };
                // A caller that went away meanwhile never learns of its
                // reference and will not drop it: drop it here.
                if done.send(result.clone()).is_err() && result.is_ok() {
                    if let Some(n) = refs.get_mut(&channel) {
                        *n -= 1;
                        if *n == 0 {
                            refs.remove(&channel);
                            if change(&subscriber, sharded, timeout, &channel, false).await.is_err() {
                                stale.insert(channel);
                            }
                        }
                    }
                }
            }
            Change::Restore(done) => {
                let mut result = Ok(());
                for channel in refs.keys() {
                    if let Err(err) = change(&subscriber, sharded, timeout, channel, true).await {
                        result = Err(err);
                        break;
                    }
                }
                let _ = done.send(result);
            }
            Change::Unsubscribe(channel) => {
                let last = match refs.get_mut(&channel) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    Some(_) => true,
                    None => false,
                };
                if last {
                    refs.remove(&channel);
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
async fn keep_subscribed(
    subscriber: SubscriberClient,
    subscriptions: Subscriptions,
    health: Arc<Health>,
    on_resubscribed: Arc<dyn Fn() + Send + Sync>,
) {
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
        }
        if !health.resubscribing.load(Ordering::SeqCst) || !subscriber.is_connected() {
            continue;
        }
        match subscriptions.restore().await {
            Ok(()) => {
                health.resubscribing.store(false, Ordering::SeqCst);
                tracing::info!("redis subscriptions restored");
                on_resubscribed();
            }
            Err(err) => tracing::warn!(cause = %err, "resubscribe failed; retrying"),
        }
    }
}

/// Hands every pub/sub message to the registry. A lagging receiver is
/// counted and answered with a resync, never the end of the loop.
async fn receive(
    subscriber: SubscriberClient,
    sink: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
    on_lag: Arc<dyn Fn() + Send + Sync>,
) {
    let mut messages = subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let Some(payload) = message.value.as_str() else { continue };
                match decode(&message.channel, &payload) {
                    Some((topic, msg)) => {
                        sink.deliver(&topic, &msg);
                        if sink.take_gap() {
                            on_lag();
                        }
                    }
                    None => tracing::warn!(channel = %message.channel, "unreadable pub/sub message dropped"),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                metrics.pubsub_lagged.inc_by(missed);
                tracing::warn!(missed, "pub/sub receiver lagged; resyncing rooms");
                on_lag();
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
            body: &frame.json,
        }
        .encode(),
        BusMessage::Disconnect { user } => {
            Envelope { kind: DISCONNECT_KIND, seq: None, skip_user: None, skip_session: None, body: user.as_str() }
                .encode()
        }
    }
}
