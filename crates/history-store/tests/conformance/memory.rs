//! The suite against [`MemoryStore`], on paused tokio time.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytestring::ByteString;

use chat_shared::protocol::{RoomName, UserId};
use history_store::{HistoryStore, MemoryStore, Publisher};

use crate::{cases, Fixture, Published};

/// Records what the store publishes to the rooms and users listened to.
#[derive(Default)]
struct Recorder {
    published: Mutex<VecDeque<Published>>,
    rooms: Mutex<HashSet<RoomName>>,
    users: Mutex<HashSet<UserId>>,
}

impl Publisher for Recorder {
    fn room_event(&self, room: &RoomName, kind: &'static str, seq: u64, json: &ByteString) {
        if self.rooms.lock().unwrap().contains(room) {
            let event = Published::Room { room: room.to_string(), kind: kind.to_owned(), seq, json: json.to_string() };
            self.published.lock().unwrap().push_back(event);
        }
    }

    fn dm(&self, from: &UserId, to: &UserId, seq: u64, json: &ByteString, origin: &str) -> bool {
        let users = self.users.lock().unwrap();
        let mut published = self.published.lock().unwrap();
        let mut record = |to: &UserId| {
            let dm = Published::Dm { to: to.to_string(), seq, json: json.to_string(), origin: origin.to_owned() };
            published.push_back(dm);
        };
        let online = users.contains(to);
        if online {
            record(to);
        }
        if from != to && users.contains(from) {
            record(from);
        }
        online
    }
}

struct MemoryFixture {
    store: MemoryStore,
    recorder: Arc<Recorder>,
}

#[async_trait]
impl Fixture for MemoryFixture {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn store(&self) -> &dyn HistoryStore {
        &self.store
    }

    async fn listen_room(&mut self, room: &RoomName) {
        self.recorder.rooms.lock().unwrap().insert(room.clone());
    }

    async fn listen_user(&mut self, user: &UserId) {
        self.recorder.users.lock().unwrap().insert(user.clone());
    }

    async fn published(&mut self, n: usize) -> Vec<Published> {
        let mut published = self.recorder.published.lock().unwrap();
        assert!(published.len() >= n, "{n} publications expected, {} recorded: {published:?}", published.len());
        published.drain(..n).collect()
    }

    async fn nothing_published(&mut self) {
        let published = self.recorder.published.lock().unwrap();
        assert!(published.is_empty(), "unexpected publications: {published:?}");
    }

    async fn pass(&self, duration: Duration) {
        tokio::time::advance(duration).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_conforms() {
    let recorder = Arc::new(Recorder::default());
    let (history, dm) = cases::settings();
    let store = MemoryStore::new(recorder.clone(), history, dm);
    cases::run_all(&mut MemoryFixture { store, recorder }).await;
}
