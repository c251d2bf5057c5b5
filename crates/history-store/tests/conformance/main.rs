//! One conformance suite for every [`HistoryStore`]: the same cases run
//! against the memory store, a real standalone `redis-server` and a real
//! 3-master Redis Cluster. A case sees a store through a [`Fixture`]: the
//! store, what it published, who is listening, and a way to let time pass
//! (paused tokio time for memory, real time for Redis).

mod cases;
mod events;
mod memory;
mod read_state;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytestring::ByteString;

use chat_shared::protocol::{RoomName, UserId};
use history_store::HistoryStore;

/// Something a store published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A room event.
    Room { room: String, kind: String, seq: u64, json: String },
    /// A DM for `to`'s sessions (the sessions of whoever listens on that
    /// user), skipping `origin`.
    Dm { to: String, seq: u64, json: String, origin: String },
}

/// A store under test and what it does to the outside.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A short name for failure messages.
    fn name(&self) -> &'static str;
    fn store(&self) -> &dyn HistoryStore;
    /// From now on, what is published to `room` is recorded.
    async fn listen_room(&mut self, room: &RoomName);
    /// From now on `user` has a session: DMs to it are delivered, not queued,
    /// and recorded.
    async fn listen_user(&mut self, user: &UserId);
    /// The next `n` recorded publications (fails after a few seconds).
    async fn published(&mut self, n: usize) -> Vec<Published>;
    /// Nothing more was published (within a short wait).
    async fn nothing_published(&mut self);
    /// Lets `duration` pass for the store.
    async fn pass(&self, duration: Duration);
}

/// The room name a case uses (distinct per store and case, since the Redis
/// fixtures share one server).
pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("a valid room name")
}

pub fn user(id: &str) -> UserId {
    UserId::parse(id).expect("a valid user id")
}

pub fn texts(json: &[ByteString]) -> Vec<String> {
    json.iter()
        .map(|j| serde_json::from_str::<serde_json::Value>(j).expect("JSON")["text"].as_str().unwrap_or("").to_owned())
        .collect()
}
