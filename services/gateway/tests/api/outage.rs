//! A backend outage: every engine call fails while the switch is off. The
//! session maps each failure to `unavailable`, stays connected, changes
//! nothing, and works again when the backend returns. (Real Redis outages are
//! tested with the Redis engine; this checks the gateway's side of it.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytestring::ByteString;
use serde_json::json;

use chat_shared::protocol::{Member, RoomName, Thread, UserId, UserStatus};
use chat_shared::settings::{DmSettings, HistorySettings};
use futures_util::future::BoxFuture;
use gateway::engine::{
    memory, Admission, Appended, BackendError, BackendResult, Bus, BusMessage, ConnectionLimits, Cursor, CursorMove,
    Deliver, DmDraft, Engine, HistoryStore, Outcome, Page, PresenceStore, RoomDraft, SessionInfo, Summary, Topic,
    Window,
};

use crate::helpers::{spawn_app_with, Client};

/// The embedded engine behind an on/off switch.
struct Switch {
    inner: Engine,
    down: Arc<AtomicBool>,
}

impl Switch {
    fn check(&self) -> BackendResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(BackendError::Unavailable("backend switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Bus for Switch {
    fn start(&self, sink: Arc<dyn Deliver>) {
        self.inner.bus.start(sink);
    }
    fn subscribe(&self, topic: &Topic) -> BoxFuture<'static, BackendResult<()>> {
        match self.check() {
            Ok(()) => self.inner.bus.subscribe(topic),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        }
    }
    fn unsubscribe(&self, topic: &Topic) {
        self.inner.bus.unsubscribe(topic);
    }
    async fn publish(&self, topic: &Topic, msg: BusMessage) -> BackendResult<usize> {
        self.check()?;
        self.inner.bus.publish(topic, msg).await
    }
}

#[async_trait]
impl PresenceStore for Switch {
    async fn admit(&self, session: &SessionInfo, limits: ConnectionLimits) -> BackendResult<Admission> {
        self.check()?;
        self.inner.presence.admit(session, limits).await
    }
    async fn release(&self, session: &SessionInfo) -> BackendResult<()> {
        self.inner.presence.release(session).await
    }
    async fn join(&self, room: &RoomName, session: &SessionInfo, status: Option<&UserStatus>) -> BackendResult<()> {
        self.check()?;
        self.inner.presence.join(room, session, status).await
    }
    async fn set_status(&self, user: &UserId, status: Option<&UserStatus>) -> BackendResult<()> {
        self.check()?;
        self.inner.presence.set_status(user, status).await
    }
    async fn status(&self, user: &UserId) -> BackendResult<Option<UserStatus>> {
        self.check()?;
        self.inner.presence.status(user).await
    }
    async fn sessions_of(&self, user: &UserId) -> BackendResult<Vec<gateway::engine::SessionId>> {
        self.check()?;
        self.inner.presence.sessions_of(user).await
    }
    async fn rooms_of(&self, user: &UserId) -> BackendResult<Vec<RoomName>> {
        self.check()?;
        self.inner.presence.rooms_of(user).await
    }
    async fn leave(&self, room: &RoomName, session: &SessionInfo) -> BackendResult<()> {
        self.check()?;
        self.inner.presence.leave(room, session).await
    }
    async fn members(&self, room: &RoomName) -> BackendResult<Vec<Member>> {
        self.check()?;
        self.inner.presence.members(room).await
    }
    async fn forget(&self, session: &SessionInfo, rooms: &[RoomName]) {
        self.inner.presence.forget(session, rooms).await
    }
    async fn take_user_token(&self, user: &UserId, per_second: u32) -> BackendResult<Option<u64>> {
        self.check()?;
        self.inner.presence.take_user_token(user, per_second).await
    }
}

#[async_trait]
impl HistoryStore for Switch {
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Outcome> {
        self.check()?;
        self.inner.history.append_room(draft).await
    }
    async fn read_room(&self, room: &RoomName, window: Window) -> BackendResult<Page> {
        self.check()?;
        self.inner.history.read_room(room, window).await
    }
    async fn append_dm(&self, draft: DmDraft) -> BackendResult<Appended> {
        self.check()?;
        self.inner.history.append_dm(draft).await
    }
    async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> BackendResult<Page> {
        self.check()?;
        self.inner.history.read_conversation(a, b, window).await
    }
    async fn offline(&self, user: &UserId) -> BackendResult<Vec<ByteString>> {
        self.check()?;
        self.inner.history.offline(user).await
    }
    async fn ack_offline(&self, user: &UserId, delivered: &[ByteString]) -> BackendResult<u64> {
        self.check()?;
        self.inner.history.ack_offline(user, delivered).await
    }
    async fn summaries(&self, reader: &UserId, threads: &[(Thread, Cursor)]) -> BackendResult<Vec<Summary>> {
        self.check()?;
        self.inner.history.summaries(reader, threads).await
    }
    async fn set_cursor(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)> {
        self.check()?;
        self.inner.history.set_cursor(user, thread, to, how).await
    }
    async fn cursors(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        self.check()?;
        self.inner.history.cursors(user).await
    }
}

#[tokio::test]
async fn backend_failures_answer_unavailable_and_change_nothing() {
    let down = Arc::new(AtomicBool::new(false));
    let switch_state = down.clone();
    let app = spawn_app_with(
        |s| s.gateway.admin.api_key = Some("k".into()),
        Some(Box::new(move |_metrics| {
            let inner = memory::engine(HistorySettings::default(), DmSettings::default(), 1_000);
            let files = inner.files.clone();
            let switch = Arc::new(Switch { inner, down: switch_state });
            Ok(Engine { bus: switch.clone(), presence: switch.clone(), history: switch, files })
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
