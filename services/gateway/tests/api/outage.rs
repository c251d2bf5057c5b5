//! A backend outage: every engine call fails while the switch is off. The
//! session maps each failure to `unavailable`, stays connected, changes
//! nothing, and works again when the backend returns. (Real Redis outages are
//! tested with the Redis engine; this checks the gateway's side of it.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytestring::ByteString;
use serde_json::json;

use chat_shared::protocol::{RoomName, StoredMessage, UserId, UserRef};
use gateway::engine::{
    memory, Admission, Bus, BusMessage, ConnectionLimits, DmDraft, Engine, EngineError, EngineResult, HistoryStore,
    PresenceStore, Replay, ReplayFrom, RoomDraft, SessionInfo, Stored, Topic,
};

use crate::helpers::{spawn_app_with, Client};

/// The embedded engine behind an on/off switch.
struct Switch {
    inner: Engine,
    down: Arc<AtomicBool>,
}

impl Switch {
    fn check(&self) -> EngineResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(EngineError::Unavailable("backend switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Bus for Switch {
    async fn subscribe(&self, topic: &Topic) -> EngineResult<()> {
        self.check()?;
        self.inner.bus.subscribe(topic).await
    }
    async fn unsubscribe(&self, topic: &Topic) -> EngineResult<()> {
        self.check()?;
        self.inner.bus.unsubscribe(topic).await
    }
    async fn publish(&self, topic: &Topic, msg: BusMessage) -> EngineResult<usize> {
        self.check()?;
        self.inner.bus.publish(topic, msg).await
    }
}

#[async_trait]
impl PresenceStore for Switch {
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> EngineResult<Admission> {
        self.check()?;
        self.inner.presence.admit(session, limits).await
    }
    async fn release(&self, session: &SessionInfo) -> EngineResult<()> {
        self.inner.presence.release(session).await
    }
    async fn join(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()> {
        self.check()?;
        self.inner.presence.join(room, session).await
    }
    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> EngineResult<()> {
        self.check()?;
        self.inner.presence.leave(room, session).await
    }
    async fn members(&self, room: &RoomName) -> EngineResult<Vec<UserRef>> {
        self.check()?;
        self.inner.presence.members(room).await
    }
    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]) {
        self.inner.presence.forget(session, rooms).await
    }
    async fn take_user_token(&self, user: &UserId, per_second: u32) -> EngineResult<Option<u64>> {
        self.check()?;
        self.inner.presence.take_user_token(user, per_second).await
    }
}

#[async_trait]
impl HistoryStore for Switch {
    async fn publish_room(&self, draft: RoomDraft) -> EngineResult<Stored> {
        self.check()?;
        self.inner.history.publish_room(draft).await
    }
    async fn replay(&self, room: &RoomName, from: ReplayFrom) -> EngineResult<Replay> {
        self.check()?;
        self.inner.history.replay(room, from).await
    }
    async fn page(&self, room: &RoomName, before: Option<u64>, limit: usize) -> EngineResult<Vec<StoredMessage>> {
        self.check()?;
        self.inner.history.page(room, before, limit).await
    }
    async fn publish_dm(&self, draft: DmDraft) -> EngineResult<Stored> {
        self.check()?;
        self.inner.history.publish_dm(draft).await
    }
    async fn offline(&self, user: &UserId) -> EngineResult<Vec<ByteString>> {
        self.check()?;
        self.inner.history.offline(user).await
    }
    async fn ack_offline(&self, user: &UserId, delivered: Vec<ByteString>) -> EngineResult<()> {
        self.check()?;
        self.inner.history.ack_offline(user, delivered).await
    }
}

#[tokio::test]
async fn backend_failures_answer_unavailable_and_change_nothing() {
    let down = Arc::new(AtomicBool::new(false));
    let switch_state = down.clone();
    let app = spawn_app_with(
        |s| s.gateway.admin.api_key = Some("k".into()),
        Some(Box::new(move |sink, _metrics| {
            let settings = memory::MemorySettings {
                history_size: 1000,
                retention: Duration::from_secs(86_400),
                idempotency_window: Duration::from_secs(300),
                offline_queue_max_messages: 100,
                offline_ttl: Duration::from_secs(3600),
            };
            let switch = Arc::new(Switch { inner: memory::engine(sink, settings), down: switch_state });
            Ok(Engine { bus: switch.clone(), presence: switch.clone(), history: switch })
        })),
    );
    let mut a = app.client("a").await;
    a.join("r").await;
    down.store(true, Ordering::SeqCst);
    for frame in [
        json!({"type": "send", "room": "r", "text": "lost?"}),
        json!({"type": "join", "room": "other"}),
        json!({"type": "dm", "to": "b", "text": "x"}),
        json!({"type": "members", "room": "r"}),
        json!({"type": "history", "room": "r"}),
        json!({"type": "typing", "room": "r"}),
        json!({"type": "leave", "room": "r"}),
    ] {
        let reply = a.request(frame.clone()).await;
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], "unavailable", "{frame}: {reply}");
    }
    assert_eq!(a.request(json!({"type": "ping"})).await["type"], "pong", "still connected");
    let refused = Client::connect(&app.ws_url("user=late")).await.err().expect("no admission while down");
    assert_eq!(refused.status, 503);
    let (status, _) = crate::helpers::admin_post(&app, "k", "/v1/rooms/r/messages", json!({"text": "operator"})).await;
    assert_eq!(status, 503);
    down.store(false, Ordering::SeqCst);
    // Still in "r" (the failed leave changed nothing), not in "other".
    let ack = a.request(json!({"type": "send", "room": "r", "text": "back"})).await;
    assert_eq!((ack["type"].as_str(), ack["seq"].as_u64()), (Some("ack"), Some(1)), "the failed send stored nothing");
    let members = a.request(json!({"type": "members", "room": "other"})).await;
    assert_eq!(members["members"], json!([]), "the failed join left no presence");
    assert_eq!(a.recv_type("message").await["text"], "back");
}
