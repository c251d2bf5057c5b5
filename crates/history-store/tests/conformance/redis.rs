//! The suite against [`RedisStore`] on a real standalone `redis-server` and
//! on a real 3-master Redis Cluster (sharded pub/sub), in real time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use tokio::sync::{mpsc, Notify};

use chat_shared::keys::{self, Channel};
use chat_shared::protocol::{RoomName, UserId};
use chat_shared::redis::RedisSettings;
use chat_shared::wire::Envelope;
use history_store::{HistoryStore, RedisStore};
use test_support::{RedisCluster, RedisServer};

use crate::{cases, Fixture, Published};

/// How long a case waits for a publication.
const PUBLISHED_WITHIN: Duration = Duration::from_secs(5);
/// How long "nothing more was published" watches.
const QUIET: Duration = Duration::from_millis(150);

struct RedisFixture {
    name: &'static str,
    store: RedisStore,
    subscriber: SubscriberClient,
    sharded: bool,
    published: mpsc::Receiver<Published>,
    /// Publishes probes (the subscriber cannot).
    pool: fred::clients::Pool,
    /// Told when a probe comes back.
    probed: Arc<Notify>,
}

/// A payload that only shows that a subscription is in place.
const PROBE: &str = "probe";

impl RedisFixture {
    async fn connect(name: &'static str, url: &str) -> RedisFixture {
        let settings = RedisSettings { url: url.to_owned(), ..RedisSettings::default() };
        let (pool, sharded) = settings.connect_pool().expect("a valid URL");
        pool.wait_for_connect().await.expect("redis answers");
        let (builder, _) = settings.builder().expect("a valid URL");
        let subscriber = builder.build_subscriber_client().expect("a subscriber");
        subscriber.init().await.expect("the subscriber connects");
        let (tx, published) = mpsc::channel(1_024);
        let mut messages = subscriber.message_rx();
        let probed = Arc::new(Notify::new());
        let seen = probed.clone();
        tokio::spawn(async move {
            while let Ok(message) = messages.recv().await {
                let payload = message.value.as_string().expect("a text payload");
                if payload == PROBE {
                    seen.notify_one();
                    continue;
                }
                let envelope = Envelope::decode(&payload).expect("a payload with a header");
                let (seq, json) = (envelope.seq.expect("a seq"), envelope.body.to_owned());
                let event = match keys::parse_channel(&message.channel).expect("a channel of ours") {
                    Channel::Room(room) => {
                        Published::Room { room: room.to_string(), kind: envelope.kind.to_owned(), seq, json }
                    }
                    Channel::User(user) => Published::Dm {
                        to: user.to_string(),
                        seq,
                        json,
                        origin: envelope.skip_session.unwrap_or("").to_owned(),
                    },
                    other => panic!("published to {other:?}"),
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        let (history, dm) = cases::settings();
        let store = RedisStore::new(pool.clone(), sharded, history, dm);
        RedisFixture { name, store, subscriber, sharded, published, pool, probed }
    }

    /// Subscribes to `channel` and returns once a probe published to it
    /// came back: the subscription is in place, so no publication is missed.
    async fn subscribe(&self, channel: String) {
        if self.sharded {
            self.subscriber.ssubscribe(channel.clone()).await.expect("ssubscribe");
        } else {
            self.subscriber.subscribe(channel.clone()).await.expect("subscribe");
        }
        for _ in 0..50 {
            let client = self.pool.next();
            let _: i64 = if self.sharded {
                client.spublish(channel.clone(), PROBE).await.expect("spublish")
            } else {
                client.publish(channel.clone(), PROBE).await.expect("publish")
            };
            if tokio::time::timeout(Duration::from_millis(100), self.probed.notified()).await.is_ok() {
                return;
            }
        }
        panic!("the subscription to {channel} never took effect");
    }
}

#[async_trait]
impl Fixture for RedisFixture {
    fn name(&self) -> &'static str {
        self.name
    }

    fn store(&self) -> &dyn HistoryStore {
        &self.store
    }

    async fn listen_room(&mut self, room: &RoomName) {
        self.subscribe(keys::room_channel(room)).await;
    }

    async fn listen_user(&mut self, user: &UserId) {
        self.subscribe(keys::user_channel(user)).await;
    }

    async fn published(&mut self, n: usize) -> Vec<Published> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match tokio::time::timeout(PUBLISHED_WITHIN, self.published.recv()).await {
                Ok(Some(event)) => got.push(event),
                _ => panic!("{n} publications expected, got {got:?}"),
            }
        }
        got
    }

    async fn nothing_published(&mut self) {
        if let Ok(Some(event)) = tokio::time::timeout(QUIET, self.published.recv()).await {
            panic!("unexpected publication: {event:?}");
        }
    }

    async fn pass(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_conforms_on_standalone_redis() {
    let redis = RedisServer::start();
    cases::run_all(&mut RedisFixture::connect("redis", &redis.url()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_conforms_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    cases::run_all(&mut RedisFixture::connect("redis cluster", &cluster.url()).await).await;
}

/// Reaction state is bounded by the history: the fields of a message pushed
/// out of the capped history go with the next appends (not observable
/// through the store's API, where such a message is `not_found` anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_state_is_trimmed_with_the_history() {
    use chat_shared::protocol::{Emoji, ReactionOp, RoomEventKind};
    use history_store::{Outcome, RoomDraft};

    let redis = RedisServer::start();
    let fixture = RedisFixture::connect("redis", &redis.url()).await;
    let room = crate::room("c-trim");
    let someone = |id: &str| cases::someone(id);
    let append = |draft: RoomDraft| async { fixture.store().append_room(draft).await.expect("append") };
    append(RoomDraft::message(room.clone(), someone("alice"), "one", None)).await;
    for (who, emoji) in [("bob", "👍"), ("carol", "👍"), ("carol", "🎉")] {
        let event = RoomEventKind::Reaction { target: 1, emoji: Emoji::parse(emoji).unwrap(), op: ReactionOp::Add };
        let outcome = append(RoomDraft::new(room.clone(), someone(who), event, None)).await;
        assert!(matches!(outcome, Outcome::Stored(_)), "{outcome:?}");
    }
    let held = |key: &str| redis.cli(&["hlen", key]).trim().parse::<u64>().unwrap();
    // 3 holders, 2 emoji counts, 1 distinct count.
    assert_eq!(held("chat:{r:c-trim}:reactions"), 6);
    // history.size is 5 here: two more events push message 1 out.
    for text in ["two", "three"] {
        append(RoomDraft::message(room.clone(), someone("alice"), text, None)).await;
    }
    assert_eq!(held("chat:{r:c-trim}:reactions"), 0, "message 1's reactions left with it");
    assert_eq!(redis.cli(&["zcard", "chat:{r:c-trim}:reactions_by_seq"]).trim(), "0");
}

/// `redis.wait_replicas`: an append returns once a replica holds it. One that
/// no replica acknowledges in time fails with `Unavailable` and is counted,
/// and so does every retry of its client id, on every connection of the
/// pool, until a replica holds the original: a retry is answered from the
/// stored result, and its `WAIT` must not pass on a connection whose last
/// write the replica already had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_their_retries_wait_for_a_replica() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use history_store::{Outcome, ReplicaWait, Window};

    let master = RedisServer::start();
    let port = master.port.to_string();
    let replica = RedisServer::start_with(&["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", &port]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !replica.cli(&["info", "replication"]).contains("master_link_status:up") {
        assert!(std::time::Instant::now() < deadline, "the replica never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    const POOL: usize = 2;
    let settings = RedisSettings { url: master.url(), pool_size: POOL, ..RedisSettings::default() };
    let (pool, sharded) = settings.connect_pool().expect("a valid URL");
    pool.wait_for_connect().await.expect("redis answers");
    let shortfalls = Arc::new(AtomicUsize::new(0));
    let counted = shortfalls.clone();
    let (mut history, dm) = cases::settings();
    // Longer than the test: retries find their originals.
    history.idempotency_window_ms = 60_000;
    history.retention_days = 1.0;
    let store = RedisStore::new(pool, sharded, history, dm).with_replica_wait(
        // Long enough for a replica on a machine busy with the rest of the
        // suite (300 ms was not, once): each refusal below waits it out.
        ReplicaWait { replicas: 1, timeout: Duration::from_secs(2) },
        Some(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })),
    );
    let refused = |result: Result<_, chat_shared::BackendError>| match result {
        Err(chat_shared::BackendError::Unavailable(why)) => assert!(why.contains("0 of 1 replicas"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    };

    // The replica in sync: appends are acknowledged. A room append comes
    // last, so that the replica has acknowledged every write so far (a DM
    // writes more after its WAIT).
    for (i, text) in ["one", "two"].into_iter().enumerate() {
        let id = format!("m-{i}");
        store.append_dm(cases::dm("alice", "bob", text, Some(&id))).await.expect("a DM on a replica");
        cases::stored(&store, cases::draft("c-wait", "alice", text, Some(&id))).await;
    }
    assert_eq!(shortfalls.load(Ordering::SeqCst), 0);

    // The replica stops acknowledging: a message is refused, and so is each
    // retry, whichever connection it goes out on.
    replica.pause();
    let three = || cases::draft("c-wait", "alice", "three", Some("m-3"));
    for _ in 0..=POOL {
        refused(store.append_room(three()).await.map(|_| ()));
    }
    assert_eq!(shortfalls.load(Ordering::SeqCst), 1 + POOL);
    // Back in sync: a retry gets the original's seq.
    replica.resume();
    let mut attempts = 0..20;
    let appended = loop {
        assert!(attempts.next().is_some(), "no ack once the replica was back");
        if let Ok(outcome) = store.append_room(three()).await {
            break outcome;
        }
    };
    assert!(matches!(appended, Outcome::Stored(ref a) if a.seq == 3), "{appended:?}");

    // The same for a DM.
    replica.pause();
    let before = shortfalls.load(Ordering::SeqCst);
    let three = || cases::dm("alice", "bob", "three", Some("m-3"));
    for _ in 0..=POOL {
        refused(store.append_dm(three()).await.map(|_| ()));
    }
    assert_eq!(shortfalls.load(Ordering::SeqCst), before + 1 + POOL);
    replica.resume();
    let mut attempts = 0..20;
    let appended = loop {
        assert!(attempts.next().is_some(), "no ack once the replica was back");
        if let Ok(appended) = store.append_dm(three()).await {
            break appended;
        }
    };
    assert_eq!(appended.seq, 3);

    // Each stored once.
    let room = store.read_room(&crate::room("c-wait"), Window::latest(10)).await.expect("read");
    assert_eq!(cases::seqs(&room.messages), [1, 2, 3]);
    let conversation =
        store.read_conversation(&crate::user("alice"), &crate::user("bob"), Window::latest(10)).await.expect("read");
    assert_eq!(cases::seqs(&conversation.messages), [1, 2, 3]);
    // And the replica holds them.
    assert_eq!(replica.cli(&["llen", "chat:{r:c-wait}:history"]).trim(), "3");
}
