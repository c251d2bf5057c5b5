//! The cases every store must pass, with the settings of [`settings`].

use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use futures_util::future::BoxFuture;
use serde_json::Value;

use chat_shared::protocol::{ClientId, DisplayName, StoredMessage, UserRef};
use chat_shared::settings::{DmSettings, HistorySettings};
use history_store::{Appended, DmDraft, HistoryStore, Outcome, RoomDraft, Window};

use crate::{room, texts, user, Fixture, Published};

/// What the stores under test keep: small, so that caps and expiry show
/// within a test.
pub const SIZE: usize = 5;
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_millis(1_000);
pub const RETENTION: Duration = Duration::from_millis(3_000);
pub const OFFLINE_QUEUE: usize = 3;
pub const OFFLINE_TTL: Duration = Duration::from_millis(2_000);

pub fn settings() -> (HistorySettings, DmSettings) {
    (
        HistorySettings {
            size: SIZE,
            retention_days: RETENTION.as_secs_f64() / 86_400.0,
            idempotency_window_ms: IDEMPOTENCY_WINDOW.as_millis() as u64,
        },
        DmSettings { offline_queue_max_messages: OFFLINE_QUEUE, offline_ttl_ms: OFFLINE_TTL.as_millis() as u64 },
    )
}

type Case = for<'a> fn(&'a mut dyn Fixture) -> BoxFuture<'a, ()>;

/// Every case, by name.
pub const ALL: &[(&str, Case)] = &[
    ("appends take gapless seqs and publish what they store", |f| Box::pin(appends_publish_what_they_store(f))),
    ("history is capped at history.size", |f| Box::pin(history_is_capped(f))),
    ("windows read forward and back", |f| Box::pin(windows_read_forward_and_back(f))),
    ("an empty room keeps its epoch into its first message", |f| Box::pin(empty_room_keeps_its_epoch(f))),
    ("a client_id is stored once per user within the window", |f| Box::pin(client_ids_are_idempotent(f))),
    ("idle history expires into a new epoch", |f| Box::pin(idle_history_expires(f))),
    ("DMs share one conversation seq and reach both users", |f| Box::pin(dms_share_a_conversation(f))),
    ("DMs without a session are queued until acknowledged", |f| Box::pin(dms_are_queued(f))),
    ("queued DMs expire", |f| Box::pin(queued_dms_expire(f))),
    ("edits and deletes are the author's, and a delete scrubs", |f| Box::pin(crate::events::edits_and_deletes(f))),
    ("targets must be live messages of the history", |f| Box::pin(crate::events::targets_must_be_live(f))),
    ("reactions are held once per user and emoji", |f| Box::pin(crate::events::reactions_are_held_once(f))),
    ("a client_id covers every kind of event", |f| Box::pin(crate::events::client_ids_cover_every_kind(f))),
    ("cursors never move backwards", |f| Box::pin(crate::read_state::cursors_never_move_backwards(f))),
    ("unread counts others' live messages", |f| Box::pin(crate::read_state::unread_counts_others_live_messages(f))),
    ("DM cursors start at 0 for both users", |f| Box::pin(crate::read_state::dm_cursors_start_at_zero(f))),
];

/// Runs every case against the fixture, naming the one that fails.
pub async fn run_all(fixture: &mut dyn Fixture) {
    for (name, case) in ALL {
        eprintln!("{}: {name}", fixture.name());
        case(fixture).await;
        // Each case takes what it caused to be published, and no more came.
        fixture.nothing_published().await;
    }
}

pub fn someone(id: &str) -> UserRef {
    UserRef { id: user(id), name: DisplayName::parse(id).expect("a valid name") }
}

pub fn draft(room_name: &str, from: &str, text: &str, client_id: Option<&str>) -> RoomDraft {
    let client_id = client_id.map(|c| ClientId::parse(c).expect("a valid client id"));
    RoomDraft::message(room(room_name), someone(from), text, client_id)
}

/// Appends a draft that must be stored.
pub async fn stored(store: &dyn HistoryStore, draft: RoomDraft) -> Appended {
    match store.append_room(draft).await.expect("append") {
        Outcome::Stored(appended) => appended,
        other => panic!("not stored: {other:?}"),
    }
}

pub fn dm(from: &str, to: &str, text: &str, client_id: Option<&str>) -> DmDraft {
    DmDraft {
        from: someone(from),
        to: user(to),
        text: text.to_owned(),
        client_id: client_id.map(|c| ClientId::parse(c).expect("a valid client id")),
        origin: Arc::from(format!("s-{from}")),
    }
}

pub fn seqs(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

pub fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("stored JSON")
}

async fn append_n(fixture: &dyn Fixture, room_name: &str, n: usize) {
    for i in 0..n {
        fixture.store().append_room(draft(room_name, "alice", &format!("m{i}"), None)).await.expect("append");
    }
}

async fn appends_publish_what_they_store(f: &mut dyn Fixture) {
    let r = room("c-publish");
    f.listen_room(&r).await;
    let mut appended = Vec::new();
    for text in ["one", "two", "three"] {
        appended.push(stored(f.store(), draft("c-publish", "alice", text, None)).await);
    }
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(appended.windows(2).all(|w| w[0].ts <= w[1].ts && w[0].ts > 1_600_000_000_000));
    assert!(appended.iter().all(|a| a.delivered));
    let page = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!((page.seq, seqs(&page.messages)), (3, vec![1, 2, 3]));
    let published = f.published(3).await;
    for (stored, (published, appended)) in page.messages.iter().zip(published.iter().zip(&appended)) {
        let frame = parse(stored.json.get());
        assert_eq!(
            (&frame["type"], &frame["room"], &frame["from"]["id"], &frame["seq"], &frame["ts"]),
            (
                &Value::from("message"),
                &Value::from("c-publish"),
                &Value::from("alice"),
                &stored.seq.into(),
                &appended.ts.into()
            )
        );
        let expected = Published::Room {
            room: "c-publish".into(),
            kind: "message".into(),
            seq: stored.seq,
            json: stored.json.get().to_owned(),
        };
        assert_eq!(published, &expected, "live delivery carries exactly the stored frame");
    }
    assert_eq!(parse(page.messages[1].json.get())["text"], "two");
}

async fn history_is_capped(f: &mut dyn Fixture) {
    append_n(&*f, "c-cap", SIZE + 3).await;
    let page = f.store().read_room(&room("c-cap"), Window::latest(100)).await.expect("read");
    assert_eq!(page.seq, (SIZE + 3) as u64);
    assert_eq!(seqs(&page.messages), (4..=(SIZE as u64 + 3)).collect::<Vec<_>>(), "the oldest went first");
    let oldest = f.store().read_room(&room("c-cap"), Window::after(0, 1)).await.expect("read");
    assert_eq!(seqs(&oldest.messages), [4], "nothing older than the newest history.size is kept");
}

async fn windows_read_forward_and_back(f: &mut dyn Fixture) {
    append_n(&*f, "c-window", SIZE).await;
    let r = room("c-window");
    let read = |window: Window| {
        let store = f.store();
        let r = r.clone();
        async move { seqs(&store.read_room(&r, window).await.expect("read").messages) }
    };
    let w = |after: Option<u64>, before: Option<u64>, limit: usize| Window { after, before, limit };
    assert_eq!(read(Window::latest(2)).await, [4, 5]);
    assert_eq!(read(Window::after(2, 2)).await, [3, 4]);
    assert_eq!(read(w(None, Some(3), 10)).await, [1, 2]);
    assert_eq!(read(w(Some(1), Some(4), 10)).await, [2, 3]);
    assert_eq!(read(Window::after(5, 10)).await, Vec::<u64>::new(), "nothing after the latest");
    assert_eq!(read(Window::after(50, 10)).await, Vec::<u64>::new());
    assert_eq!(read(w(None, Some(1), 10)).await, Vec::<u64>::new());
    assert_eq!(read(w(None, Some(0), 10)).await, Vec::<u64>::new());
    assert_eq!(read(Window::latest(0)).await, Vec::<u64>::new());
    assert_eq!(read(Window::latest(1_000)).await, [1, 2, 3, 4, 5], "a limit over the size is clamped");
    append_n(&*f, "c-window", 3).await;
    assert_eq!(read(Window::after(1, 2)).await, [4, 5], "forward from before the window starts at its start");
}

async fn empty_room_keeps_its_epoch(f: &mut dyn Fixture) {
    let r = room("c-empty");
    let first = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!((first.seq, first.messages.len()), (0, 0));
    assert!(!first.epoch.is_empty());
    let again = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!(again.epoch, first.epoch, "reads agree on the epoch");
    append_n(&*f, "c-empty", 1).await;
    let after = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!((after.seq, after.epoch), (1, first.epoch), "the first message keeps the epoch");
}

async fn client_ids_are_idempotent(f: &mut dyn Fixture) {
    let r = room("c-idem");
    f.listen_room(&r).await;
    let first = stored(f.store(), draft("c-idem", "alice", "once", Some("k1"))).await;
    f.published(1).await;
    let again = stored(f.store(), draft("c-idem", "alice", "once", Some("k1"))).await;
    assert_eq!(again, first, "a repeat gets the first one's result");
    f.nothing_published().await;
    let other = stored(f.store(), draft("c-idem", "bob", "mine", Some("k1"))).await;
    assert_eq!(other.seq, 2, "another user's client_id is another key");
    f.published(1).await;
    f.pass(IDEMPOTENCY_WINDOW + Duration::from_millis(300)).await;
    let later = stored(f.store(), draft("c-idem", "alice", "once more", Some("k1"))).await;
    assert_eq!(later.seq, 3, "after the window the key is forgotten");
    f.published(1).await;
    let page = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!(seqs(&page.messages), [1, 2, 3]);
    assert_eq!(parse(page.messages[0].json.get())["client_id"], "k1");
}

async fn idle_history_expires(f: &mut dyn Fixture) {
    let r = room("c-expire");
    append_n(&*f, "c-expire", 2).await;
    let before = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    f.pass(RETENTION + Duration::from_millis(500)).await;
    let after = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!((after.seq, after.messages.len()), (0, 0), "expired");
    assert_ne!(after.epoch, before.epoch, "a new history, a new epoch");
    let fresh = stored(f.store(), draft("c-expire", "alice", "new", None)).await;
    assert_eq!(fresh.seq, 1);
    let now = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!(now.epoch, after.epoch);
}

async fn dms_share_a_conversation(f: &mut dyn Fixture) {
    f.listen_user(&user("d-alice")).await;
    f.listen_user(&user("d-bob")).await;
    let one = f.store().append_dm(dm("d-alice", "d-bob", "one", None)).await.expect("dm");
    assert_eq!((one.seq, one.delivered), (1, true));
    let mut published = f.published(2).await;
    published.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let (Published::Dm { to: to_alice, origin, json, seq, .. }, Published::Dm { to: to_bob, .. }) =
        (&published[0], &published[1])
    else {
        panic!("two DM publications: {published:?}");
    };
    assert_eq!(
        (to_alice.as_str(), to_bob.as_str()),
        ("d-alice", "d-bob"),
        "the recipient and the sender's other sessions"
    );
    assert_eq!((origin.as_str(), *seq), ("s-d-alice", 1), "the sending session is skipped");
    assert_eq!(parse(json)["text"], "one");
    let two = f.store().append_dm(dm("d-bob", "d-alice", "two", None)).await.expect("dm");
    assert_eq!(two.seq, 2, "one conversation, one seq");
    f.published(2).await;
    let ab = f.store().read_conversation(&user("d-alice"), &user("d-bob"), Window::latest(10)).await.expect("read");
    let ba = f.store().read_conversation(&user("d-bob"), &user("d-alice"), Window::latest(10)).await.expect("read");
    assert_eq!((ab.seq, seqs(&ab.messages), ab.epoch.as_str()), (2, vec![1, 2], ""));
    assert_eq!(seqs(&ba.messages), seqs(&ab.messages));
    assert_eq!(parse(ab.messages[1].json.get())["from"]["id"], "d-bob");
    let again = f.store().append_dm(dm("d-alice", "d-bob", "one", Some("k"))).await.expect("dm");
    let repeat = f.store().append_dm(dm("d-alice", "d-bob", "one", Some("k"))).await.expect("dm");
    assert_eq!((again.seq, repeat), (3, again));
    f.published(2).await;
    let own = f.store().read_conversation(&user("d-alice"), &user("d-alice"), Window::latest(10)).await.expect("read");
    assert_eq!(own.seq, 0, "a conversation of its own");
}

async fn dms_are_queued(f: &mut dyn Fixture) {
    let dave = user("q-dave");
    let mut acks = Vec::new();
    for i in 0..=OFFLINE_QUEUE {
        acks.push(f.store().append_dm(dm("q-carol", "q-dave", &format!("q{i}"), None)).await.expect("dm"));
    }
    assert!(acks.iter().all(|a| !a.delivered), "nobody listens for dave");
    let queued = f.store().offline(&dave).await.expect("offline");
    let expected: Vec<String> = (1..=OFFLINE_QUEUE).map(|i| format!("q{i}")).collect();
    assert_eq!(texts(&queued), expected, "capped, oldest first, the oldest dropped");
    assert_eq!(f.store().ack_offline(&dave, &queued[..2]).await.expect("ack"), 2);
    let left = f.store().offline(&dave).await.expect("offline");
    assert_eq!(texts(&left), [format!("q{OFFLINE_QUEUE}")]);
    let unknown = ByteString::from_static("{\"type\":\"dm\"}");
    assert_eq!(f.store().ack_offline(&dave, &[unknown]).await.expect("ack"), 0);
    let first = f.store().append_dm(dm("q-carol", "q-dave", "kept once", Some("c1"))).await.expect("dm");
    let repeat = f.store().append_dm(dm("q-carol", "q-dave", "kept once", Some("c1"))).await.expect("dm");
    assert_eq!((first.delivered, repeat), (false, first), "a repeat reports it queued, and queues nothing");
    assert_eq!(f.store().offline(&dave).await.expect("offline").len(), 2);
    f.listen_user(&dave).await;
    let live = f.store().append_dm(dm("q-carol", "q-dave", "live", None)).await.expect("dm");
    assert!(live.delivered);
    assert!(matches!(&f.published(1).await[0], Published::Dm { to, .. } if to == "q-dave"));
    assert_eq!(f.store().offline(&dave).await.expect("offline").len(), 2, "a delivered DM is not queued");
}

async fn queued_dms_expire(f: &mut dyn Fixture) {
    let erin = user("x-erin");
    f.store().append_dm(dm("x-frank", "x-erin", "soon gone", None)).await.expect("dm");
    assert_eq!(f.store().offline(&erin).await.expect("offline").len(), 1);
    f.pass(OFFLINE_TTL + Duration::from_millis(500)).await;
    assert!(f.store().offline(&erin).await.expect("offline").is_empty());
}
