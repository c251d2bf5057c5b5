//! The embedded engine: pub/sub, presence and history in this process's
//! memory, for a single gateway with nothing else to run. The bus hands what
//! is published straight to the node's hub (this node is the whole
//! cluster). History is the `history-store` library's [`MemoryStore`], which
//! hands every event it stores to the bus through `LocalPublisher`, in the
//! same step, as the Redis store's scripts publish to every node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytestring::ByteString;
use futures_util::future::{self, BoxFuture, FutureExt};

use chat_shared::protocol::{DisplayName, Member, PresenceState, RoomName, ServerFrame, UserId, UserRef, UserStatus};
use chat_shared::settings::{DmSettings, HistorySettings};
use history_store::{MemoryStore, Publisher};

use super::{
    Admission, BackendResult, Bus, BusMessage, ConnectionLimits, Deliver, Engine, FramePayload, PresenceStore,
    SessionId, SessionInfo, Topic,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here finishes its mutation before anything can
    // panic, so a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds the engine parts on one in-process bus; the file index holds at
/// most `max_files`.
pub fn engine(history: HistorySettings, dm: DmSettings, max_files: usize) -> Engine {
    let bus = Arc::new(MemoryBus::default());
    Engine {
        bus: bus.clone(),
        presence: Arc::new(MemoryPresence { bus: bus.clone(), state: Mutex::default() }),
        history: Arc::new(MemoryStore::new(Arc::new(LocalPublisher { bus }), history, dm)),
        files: Arc::new(crate::files::MemoryFileIndex::new(max_files)),
    }
}

/// Hands what the memory store stores to this node's sessions.
struct LocalPublisher {
    bus: Arc<MemoryBus>,
}

impl Publisher for LocalPublisher {
    fn room_event(&self, room: &RoomName, kind: &'static str, seq: u64, json: &ByteString) {
        let frame = FramePayload {
            kind,
            seq: Some(seq),
            skip_user: None,
            skip_session: None,
            only_session: None,
            json: json.clone(),
        };
        self.bus.deliver(&Topic::Room(room.clone()), &BusMessage::Frame(frame));
    }

    fn dm(&self, from: &UserId, to: &UserId, seq: u64, json: &ByteString, origin: &str) -> bool {
        let payload = BusMessage::dm(json, seq, &SessionId::from(origin));
        let reached = self.bus.deliver(&Topic::User(to.clone()), &payload);
        if from != to {
            self.bus.deliver(&Topic::User(from.clone()), &payload);
        }
        reached > 0
    }
}

/// Delivers straight to this node's hub, once started.
#[derive(Default)]
struct MemoryBus {
    sink: OnceLock<Arc<dyn Deliver>>,
}

impl MemoryBus {
    fn deliver(&self, topic: &Topic, msg: &BusMessage) -> usize {
        // Nothing can be published before the node starts: no session exists.
        self.sink.get().map_or(0, |sink| sink.deliver(topic, msg))
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn start(&self, sink: Arc<dyn Deliver>) {
        if self.sink.set(sink).is_err() {
            tracing::error!("the embedded bus was started twice; the first sink stays");
        }
    }

    fn subscribe(&self, _topic: &Topic) -> BoxFuture<'static, BackendResult<()>> {
        // This node is the whole cluster and hears every topic.
        future::ready(Ok(())).boxed()
    }

    fn unsubscribe(&self, _topic: &Topic) {}

    async fn publish(&self, topic: &Topic, msg: BusMessage) -> BackendResult<usize> {
        self.deliver(topic, &msg);
        Ok(1)
    }
}

#[derive(Default)]
struct PresenceInner {
    /// user → (window start, frames in it): the per-user rate.
    user_rate: HashMap<UserId, (Instant, u32)>,
    /// user → the user's connections.
    connections_per_user: HashMap<UserId, HashSet<SessionId>>,
    connections_per_ip: HashMap<IpAddr, u32>,
    /// room → user → (display name, the user's sessions in the room)
    rooms: HashMap<RoomName, BTreeMap<UserId, (DisplayName, HashSet<SessionId>)>>,
    /// The statuses users set, while they are connected.
    statuses: HashMap<UserId, UserStatus>,
}

struct MemoryPresence {
    bus: Arc<MemoryBus>,
    state: Mutex<PresenceInner>,
}

impl MemoryPresence {
    fn announce(&self, room: &RoomName, user: &UserRef, state: PresenceState, status: Option<&UserStatus>) {
        let frame = ServerFrame::Presence { room: room.clone(), user: user.clone(), state, status: status.cloned() };
        self.bus.deliver(&Topic::Room(room.clone()), &BusMessage::for_others(&frame, &user.id));
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> BackendResult<Admission> {
        let mut state = lock(&self.state);
        let user_count = state.connections_per_user.get(&session.user.id).map_or(0, HashSet::len);
        if user_count >= limits.per_user as usize {
            return Ok(Admission::UserLimit);
        }
        if let Some(ip) = session.ip {
            let ip_count = state.connections_per_ip.get(&ip).copied().unwrap_or(0);
            if limits.per_ip > 0 && ip_count >= limits.per_ip {
                return Ok(Admission::IpLimit);
            }
            state.connections_per_ip.insert(ip, ip_count + 1);
        }
        state.connections_per_user.entry(session.user.id.clone()).or_default().insert(session.session.clone());
        Ok(Admission::Admitted)
    }

    async fn release(&self, session: &SessionInfo) -> BackendResult<()> {
        let mut state = lock(&self.state);
        if let Some(sessions) = state.connections_per_user.get_mut(&session.user.id) {
            sessions.remove(&session.session);
            if sessions.is_empty() {
                state.connections_per_user.remove(&session.user.id);
            }
        }
        if !state.connections_per_user.contains_key(&session.user.id) {
            state.user_rate.remove(&session.user.id);
            state.statuses.remove(&session.user.id);
        }
        if let Some(ip) = session.ip {
            decrement(&mut state.connections_per_ip, &ip);
        }
        Ok(())
    }

    async fn join(&self, room: &RoomName, session: &SessionInfo, status: Option<&UserStatus>) -> BackendResult<()> {
        let mut state = lock(&self.state);
        let users = state.rooms.entry(room.clone()).or_default();
        let entry = users.entry(session.user.id.clone()).or_insert_with(|| (session.user.name.clone(), HashSet::new()));
        let first = entry.1.is_empty();
        entry.0 = session.user.name.clone();
        entry.1.insert(session.session.clone());
        if first {
            self.announce(room, &session.user, PresenceState::Online, status);
        }
        Ok(())
    }

    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()> {
        let mut state = lock(&self.state);
        let Some(users) = state.rooms.get_mut(room) else {
            return Ok(());
        };
        let Some(entry) = users.get_mut(&session.user.id) else {
            return Ok(());
        };
        if !entry.1.remove(&session.session) {
            return Ok(());
        }
        if entry.1.is_empty() {
            users.remove(&session.user.id);
            if users.is_empty() {
                state.rooms.remove(room);
            }
            self.announce(room, &session.user, PresenceState::Offline, None);
        }
        Ok(())
    }

    async fn members(&self, room: &RoomName) -> BackendResult<Vec<Member>> {
        let state = lock(&self.state);
        let member = |id: &UserId, name: &DisplayName| Member {
            user: UserRef { id: id.clone(), name: name.clone() },
            status: state.statuses.get(id).cloned(),
        };
        Ok(state
            .rooms
            .get(room)
            .map(|users| users.iter().map(|(id, (name, _))| member(id, name)).collect())
            .unwrap_or_default())
    }

    async fn set_status(&self, user: &UserId, status: Option<&UserStatus>) -> BackendResult<()> {
        let mut state = lock(&self.state);
        match status {
            Some(status) => state.statuses.insert(user.clone(), status.clone()),
            None => state.statuses.remove(user),
        };
        Ok(())
    }

    async fn status(&self, user: &UserId) -> BackendResult<Option<UserStatus>> {
        Ok(lock(&self.state).statuses.get(user).cloned())
    }

    async fn sessions_of(&self, user: &UserId) -> BackendResult<Vec<SessionId>> {
        let state = lock(&self.state);
        Ok(state.connections_per_user.get(user).map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }

    async fn rooms_of(&self, user: &UserId) -> BackendResult<Vec<RoomName>> {
        let state = lock(&self.state);
        Ok(state.rooms.iter().filter(|(_, users)| users.contains_key(user)).map(|(room, _)| room.clone()).collect())
    }

    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]) {
        {
            // The user's last connection: the status goes before `offline` does.
            let mut state = lock(&self.state);
            if state.connections_per_user.get(&session.user.id).map_or(0, HashSet::len) <= 1 {
                state.statuses.remove(&session.user.id);
            }
        }
        for room in rooms {
            let _ = self.leave(room, session).await;
        }
        let _ = self.release(session).await;
    }

    async fn take_user_token(&self, user: &UserId, per_second: u32) -> BackendResult<Option<u64>> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let window = state.user_rate.entry(user.clone()).or_insert((now, 0));
        let elapsed = now.saturating_duration_since(window.0);
        if elapsed >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 > per_second {
            let left = Duration::from_secs(1).saturating_sub(now.saturating_duration_since(window.0));
            return Ok(Some((left.as_millis() as u64).max(1)));
        }
        Ok(None)
    }
}
