//! Pub/sub on Redis: publishes with `PUBLISH` (`SPUBLISH` on a cluster) in
//! the payload format of `chat_shared::wire`, and subscribes through the
//! [`Subscriptions`] of [`super::subscriber`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::PubsubInterface;
use futures_util::future::{self, BoxFuture, FutureExt};

use chat_shared::keys;

use super::subscriber::{self, Subscriptions};
use super::Connection;
use crate::engine::{BackendResult, Bus, BusMessage, Deliver, Topic};
use crate::metrics::Metrics;

/// See the module documentation.
pub struct RedisBus {
    conn: Arc<Connection>,
    subscriptions: Subscriptions,
    metrics: Arc<Metrics>,
}

impl RedisBus {
    /// Starts the task that carries out subscription changes in order.
    pub fn new(conn: Arc<Connection>, command_timeout: Duration, metrics: Arc<Metrics>) -> RedisBus {
        let subscriptions = subscriber::start_changes(conn.subscriber.clone(), conn.sharded, command_timeout);
        RedisBus { conn, subscriptions, metrics }
    }

    fn channel(topic: &Topic) -> String {
        match topic {
            Topic::Room(room) => keys::room_channel(room),
            Topic::User(user) => keys::user_channel(user),
            Topic::Broadcast => keys::BROADCAST_CHANNEL.to_owned(),
            Topic::Control => keys::CONTROL_CHANNEL.to_owned(),
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn start(&self, sink: Arc<dyn Deliver>) {
        subscriber::start_delivery(self.conn.clone(), self.subscriptions.clone(), sink, self.metrics.clone());
    }

    fn subscribe(&self, topic: &Topic) -> BoxFuture<'static, BackendResult<()>> {
        if let Err(err) = self.conn.check() {
            return future::ready(Err(err)).boxed();
        }
        self.subscriptions.subscribe(Self::channel(topic))
    }

    fn unsubscribe(&self, topic: &Topic) {
        self.subscriptions.unsubscribe(Self::channel(topic));
    }

    async fn publish(&self, topic: &Topic, msg: BusMessage) -> BackendResult<usize> {
        self.conn.check()?;
        let channel = Self::channel(topic);
        let payload = subscriber::encode(&msg);
        let client = self.conn.pool.next();
        let reached: i64 = if self.conn.sharded {
            client.spublish(channel, payload).await?
        } else {
            client.publish(channel, payload).await?
        };
        Ok(usize::try_from(reached).unwrap_or(0))
    }

    fn readiness(&self) -> Result<(), String> {
        self.conn.readiness()
    }
}
