//! The hub's decisions, on a bus that records what it was asked to do.
//! (How a member's stream treats each frame is tested in `stream`; the hub
//! on real buses is tested by the integration suites.)

use std::sync::Mutex;

use async_trait::async_trait;
use chat_shared::protocol::{DisplayName, ServerFrame};
use futures_util::future;

use super::*;
use crate::engine::{BackendResult, BusMessage, Deliver, FramePayload};

/// Records subscriptions as `+room:r` / `-user:u`.
#[derive(Default)]
struct RecordingBus {
    changes: Mutex<Vec<String>>,
}

fn label(topic: &Topic) -> String {
    match topic {
        Topic::Room(room) => format!("room:{room}"),
        Topic::User(user) => format!("user:{user}"),
        other => format!("{other:?}"),
    }
}

#[async_trait]
impl Bus for RecordingBus {
    fn start(&self, _sink: Arc<dyn Deliver>) {}

    fn subscribe(&self, topic: &Topic) -> BoxFuture<'static, BackendResult<()>> {
        self.changes.lock().unwrap().push(format!("+{}", label(topic)));
        future::ready(Ok(())).boxed()
    }

    fn unsubscribe(&self, topic: &Topic) {
        self.changes.lock().unwrap().push(format!("-{}", label(topic)));
    }

    async fn publish(&self, _topic: &Topic, _msg: BusMessage) -> BackendResult<usize> {
        Ok(0)
    }
}

struct Fixture {
    hub: Arc<Hub>,
    bus: Arc<RecordingBus>,
    catch_ups: mpsc::Receiver<CatchUp>,
}

impl Fixture {
    fn new() -> Fixture {
        let bus = Arc::new(RecordingBus::default());
        let (hub, catch_ups) = Hub::new(
            bus.clone(),
            Arc::new(Metrics::new().unwrap()),
            1 << 20,
            super::recent::Limits { max_events: 100, retention: std::time::Duration::from_secs(3600) },
        );
        Fixture { hub, bus, catch_ups }
    }

    /// A registered session with its DMs released.
    fn session(&self, user: &str, session: &str) -> (UserId, SessionId, Arc<Outbox>) {
        let (user, session) = (UserId::parse(user).unwrap(), SessionId::from(session));
        let outbox = Arc::new(Outbox::new(1 << 20));
        let name = DisplayName::parse(user.as_str()).unwrap();
        drop(self.hub.register(&UserRef { id: user.clone(), name }, &session, outbox.clone()));
        self.hub.release_held_dms(&user, &session);
        (user, session, outbox)
    }

    /// A session that has joined `room` (history read at seq 0).
    fn member(&self, user: &str, session: &str, room: &RoomName) -> (UserId, SessionId, Arc<Outbox>) {
        let (user, session, outbox) = self.session(user, session);
        assert!(self.hub.join(&user, &session, room, Window::latest(50), None).is_some());
        assert!(self.hub.complete_join(room, &session, ByteString::from("joined"), 0));
        assert_eq!(outbox.drain_texts(), ["joined"]);
        (user, session, outbox)
    }

    fn changes(&self) -> Vec<String> {
        std::mem::take(&mut *self.bus.changes.lock().unwrap())
    }

    fn requests(&mut self) -> Vec<CatchUp> {
        std::iter::from_fn(|| self.catch_ups.try_recv().ok()).collect()
    }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn message(seq: u64) -> BusMessage {
    BusMessage::Frame(FramePayload {
        kind: "message",
        seq: Some(seq),
        skip_user: None,
        skip_session: None,
        only_session: None,
        json: ByteString::from(format!("m{seq}")),
    })
}

fn deliver(hub: &Hub, room_name: &str, seqs: &[u64]) {
    for seq in seqs {
        hub.deliver(&Topic::Room(room(room_name)), &message(*seq));
    }
}

#[test]
fn the_first_local_member_subscribes_and_the_last_unsubscribes() {
    let f = Fixture::new();
    let r = room("r");
    let (alice, a1, _) = f.member("alice", "a1", &r);
    assert_eq!(f.changes(), ["+user:alice", "+room:r"]);
    let (_, a2, _) = f.member("alice", "a2", &r);
    let (bob, b1, _) = f.member("bob", "b1", &r);
    assert_eq!(f.changes(), ["+user:bob"], "neither alice's second session nor bob subscribes r again");
    f.hub.leave(&alice, &a1, &r);
    f.hub.unregister(&alice, &a2);
    assert!(f.changes().is_empty(), "alice's first session is still here, bob is still in r");
    f.hub.unregister(&alice, &a1);
    assert_eq!(f.changes(), ["-user:alice"]);
    assert_eq!(f.hub.stats().rooms, 1);
    f.hub.unregister(&bob, &b1);
    assert_eq!(f.changes(), ["-user:bob", "-room:r"]);
    let stats = f.hub.stats();
    assert_eq!((stats.connections, stats.users, stats.rooms), (0, 0, 0));
}

#[test]
fn a_failed_first_join_leaves_the_room_and_a_failed_repeated_join_stays() {
    let f = Fixture::new();
    let r = room("r");
    let (user, session, outbox) = f.session("alice", "a1");
    f.hub.join(&user, &session, &r, Window::latest(50), None);
    f.hub.abort_join(&user, &session, &r);
    assert!(!f.hub.is_member(&user, &session, &r));
    assert_eq!(f.changes(), ["+user:alice", "+room:r", "-room:r"]);
    let (user, session, outbox2) = f.member("bob", "b1", &r);
    f.hub.join(&user, &session, &r, Window::latest(50), None);
    deliver(&f.hub, "r", &[1]);
    f.hub.abort_join(&user, &session, &r);
    assert!(f.hub.is_member(&user, &session, &r));
    assert_eq!(outbox2.drain_texts(), ["m1"], "what came meanwhile goes out");
    assert!(outbox.drain_texts().is_empty());
}

#[test]
fn unregistering_walks_only_the_sessions_rooms_and_ends_its_typing() {
    let f = Fixture::new();
    let (r1, r2) = (room("r1"), room("r2"));
    let (alice, a1, _) = f.member("alice", "a1", &r1);
    f.hub.join(&alice, &a1, &r2, Window::latest(50), None);
    f.hub.complete_join(&r2, &a1, ByteString::from("joined"), 0);
    let (bob, _, bob_outbox) = f.member("bob", "b1", &r2);
    assert_eq!(f.hub.room_count(&alice, &a1), 2);
    assert!(f.hub.typing_start(&r1, &alice, &a1, Instant::now()).is_some_and(|start| start.relay));
    assert!(f.hub.typing_start(&r1, &bob, &SessionId::from("b1"), Instant::now()).is_none(), "bob is not in r1");
    f.changes();
    let mut left = f.hub.unregister(&alice, &a1);
    left.rooms.sort();
    assert_eq!((left.rooms, left.typing_stopped), (vec![r1.clone(), r2.clone()], vec![r1]));
    assert_eq!(f.changes(), ["-user:alice", "-room:r1"], "r2 still has bob");
    deliver(&f.hub, "r2", &[1]);
    assert_eq!(bob_outbox.drain_texts(), ["m1"]);
}

#[test]
fn a_gap_asks_for_one_catch_up_and_the_read_fills_it() {
    let mut f = Fixture::new();
    let r = room("r");
    let (_, _, outbox) = f.member("alice", "a1", &r);
    deliver(&f.hub, "r", &[1, 4, 5]);
    assert_eq!(outbox.drain_texts(), ["m1"]);
    assert_eq!(f.requests(), [CatchUp::Room(r.clone())], "queued once for both held frames");
    assert_eq!(f.hub.catch_up_range(&r), Some((1, 1)));
    let events = [(2, ByteString::from("m2")), (3, ByteString::from("m3"))];
    f.hub.complete_catch_up(&r, 5, &events);
    assert_eq!(outbox.drain_texts(), ["m2", "m3", "m4", "m5"]);
    assert!(f.requests().is_empty());
    deliver(&f.hub, "r", &[7]);
    assert_eq!(f.requests(), [CatchUp::Room(r)], "taken off the channel, so a new gap queues it again");
}

#[test]
fn missed_delivery_makes_every_live_member_catch_up() {
    let mut f = Fixture::new();
    let (r1, r2) = (room("r1"), room("r2"));
    f.member("alice", "a1", &r1);
    f.member("bob", "b1", &r2);
    let (carol, c1, _) = f.session("carol", "c1");
    f.hub.join(&carol, &c1, &room("joining"), Window::latest(50), None);
    f.hub.missed();
    assert_eq!(f.requests(), [CatchUp::EveryRoom]);
    let mut held = f.hub.hold_every_room();
    held.sort();
    assert_eq!(held, [r1.clone(), r2], "a room with only a join in flight has nothing to catch up");
    assert_eq!(f.hub.catch_up_range(&r1), Some((0, 0)));
}

#[test]
fn a_full_catch_up_channel_falls_back_to_every_room() {
    let mut f = Fixture::new();
    for i in 0..=CATCH_UP_QUEUE_ROOMS {
        let r = room(&format!("r{i}"));
        f.member(&format!("u{i}"), &format!("s{i}"), &r);
        deliver(&f.hub, &format!("r{i}"), &[2]);
    }
    assert_eq!(f.requests().len(), CATCH_UP_QUEUE_ROOMS);
    assert!(f.hub.take_every_room_wanted(), "the room that did not fit is not forgotten");
    assert!(!f.hub.take_every_room_wanted());
}

#[test]
fn dms_wait_for_the_offline_queue_then_go_straight_out() {
    let f = Fixture::new();
    let (user, session) = (UserId::parse("zoe").unwrap(), SessionId::from("z1"));
    let outbox = Arc::new(Outbox::new(1 << 20));
    let name = DisplayName::parse("zoe").unwrap();
    drop(f.hub.register(&UserRef { id: user.clone(), name }, &session, outbox.clone()));
    let dm = |seq: u64, skip: Option<&str>| {
        BusMessage::Frame(FramePayload {
            kind: "dm",
            seq: Some(seq),
            skip_user: None,
            skip_session: skip.map(SessionId::from),
            only_session: None,
            json: ByteString::from(format!("live{seq}")),
        })
    };
    assert_eq!(f.hub.deliver(&Topic::User(user.clone()), &dm(3, None)), 1, "reached, though held");
    assert_eq!(f.hub.deliver(&Topic::User(user.clone()), &dm(4, Some("z1"))), 0, "the sending session is skipped");
    f.hub.deliver_offline(&user, &session, &[ByteString::from("queued1"), ByteString::from("queued2")]);
    f.hub.release_held_dms(&user, &session);
    f.hub.deliver(&Topic::User(user.clone()), &dm(5, None));
    assert_eq!(outbox.drain_texts(), ["queued1", "queued2", "live3", "live5"]);
}

#[test]
fn a_stop_relayed_from_another_node_cancels_this_nodes_automatic_stop() {
    let f = Fixture::new();
    let r = room("r");
    let (alice, phone, _) = f.member("alice", "phone", &r);
    let typing = |state: &str| {
        let frame = ServerFrame::Typing {
            room: r.clone(),
            user: UserRef { id: alice.clone(), name: DisplayName::parse("alice").unwrap() },
            state: if state == "start" { TypingState::Start } else { TypingState::Stop },
        };
        BusMessage::for_others(&frame, &alice)
    };
    // Alice's laptop, on another node, starts typing: relayed to this node.
    f.hub.deliver(&Topic::Room(r.clone()), &typing("start"));
    // Her phone, here, starts within the second: throttled, but its timer is armed.
    let phone_start = f.hub.typing_start(&r, &alice, &phone, Instant::now()).unwrap();
    assert!(!phone_start.relay, "one start per user and room per second, cluster-wide");
    // The laptop stops: relayed here too. The phone's timer must not send a late stop.
    f.hub.deliver(&Topic::Room(r.clone()), &typing("stop"));
    assert!(!f.hub.typing_expire(&r, &alice, phone_start.generation));
}
