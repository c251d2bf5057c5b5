//! The presence service on its own: a real `presence` process on a real
//! `redis-server`. Gateways are stood in for by writing what a gateway
//! writes (its lease, its list of sessions, room presence through the
//! shared scripts), so that a crashed gateway is simply one whose lease is
//! gone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fred::clients::{Pool, SubscriberClient};
use fred::interfaces::{
    ClientLike, EventInterface, HashesInterface, KeysInterface, PubsubInterface, SetsInterface, SortedSetsInterface,
};
use fred::types::scripts::Script;
use fred::types::{Expiration, Value as RedisValue};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use chat_shared::keys;
use chat_shared::protocol::{DisplayName, PresenceState, RoomName, UserId, UserRef};
use chat_shared::redis::RedisSettings;
use chat_shared::scripts::{presence_payload, PRESENCE_JOIN, PRESENCE_STATE_TTL_MS, USER_ROOM};
use chat_shared::wire::Envelope;
use test_support::{free_port, RedisServer, ServiceProcess};

fn presence(redis: &RedisServer, replica: &str) -> ServiceProcess {
    let port = free_port();
    let (listen, url) = (format!("127.0.0.1:{port}"), redis.url());
    let env = [
        ("CHAT_PRESENCE_SERVICE__LISTEN", listen.as_str()),
        ("CHAT_PRESENCE_SERVICE__REPLICA_ID", replica),
        ("CHAT_PRESENCE_SERVICE__SWEEP_INTERVAL_MS", "100"),
        ("CHAT_PRESENCE_SERVICE__SWEEP_LOCK_MS", "1000"),
        ("CHAT_REDIS__URL", url.as_str()),
        ("CHAT_LOG__LEVEL", "warn"),
    ];
    ServiceProcess::start(env!("CARGO_BIN_EXE_presence").into(), port, &env)
}

async fn get(service: &ServiceProcess, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path}", service.url())).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn pool(redis: &RedisServer) -> Pool {
    let settings = RedisSettings { url: redis.url(), ..RedisSettings::default() };
    let (pool, _) = settings.connect_pool().unwrap();
    pool.wait_for_connect().await.unwrap();
    pool
}

fn someone(id: &str) -> UserRef {
    UserRef { id: UserId::parse(id).unwrap(), name: DisplayName::parse(id).unwrap() }
}

/// Writes what a gateway named `node` writes to Redis.
struct StandInGateway {
    pool: Pool,
    node: String,
}

impl StandInGateway {
    /// A gateway listed among the nodes, with a live lease or (`None`) one
    /// that lapsed: a crash.
    async fn start(pool: &Pool, node: &str, lease: Option<Duration>) -> StandInGateway {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
        let _: () = pool.zadd(keys::NODES, None, None, false, false, (now, node)).await.unwrap();
        if let Some(lease) = lease {
            let px = Some(Expiration::PX(lease.as_millis() as i64));
            let _: () = pool.set(keys::node_lease(node), "alive", px, None, false).await.unwrap();
        }
        StandInGateway { pool: pool.clone(), node: node.to_owned() }
    }

    /// A connection of `user`, and its membership of `room`.
    async fn session_in(&self, session: &str, user: &UserRef, room: &RoomName) {
        let sessions = keys::node_sessions(&self.node);
        let _: i64 = self.pool.hset(keys::user_connections(&user.id), (session, self.node.as_str())).await.unwrap();
        let _: i64 = self.pool.sadd(&sessions, keys::node_connection_entry(session, &user.id)).await.unwrap();
        let entry = keys::node_room_entry(room, session, &user.id, user.name.as_str());
        let _: i64 = self.pool.sadd(&sessions, entry).await.unwrap();
        let presence_keys =
            vec![keys::room_presence_sessions(room), keys::room_presence_users(room), keys::room_presence_names(room)];
        let args = vec![
            session.to_owned(),
            user.id.to_string(),
            user.name.to_string(),
            "PUBLISH".to_owned(),
            keys::room_channel(room),
            presence_payload(room, user, PresenceState::Online, None),
            PRESENCE_STATE_TTL_MS.to_string(),
        ];
        let _: RedisValue =
            Script::from_lua(PRESENCE_JOIN).evalsha_with_reload(self.pool.next(), presence_keys, args).await.unwrap();
        let args = vec![room.to_string(), "1".to_owned(), PRESENCE_STATE_TTL_MS.to_string()];
        let _: RedisValue = Script::from_lua(USER_ROOM)
            .evalsha_with_reload(self.pool.next(), vec![keys::user_rooms(&user.id)], args)
            .await
            .unwrap();
    }
}

/// The `presence` frames published to `room`: (user, state).
async fn watch(redis: &RedisServer, room: &RoomName) -> mpsc::Receiver<(String, String)> {
    let settings = RedisSettings { url: redis.url(), ..RedisSettings::default() };
    let subscriber: SubscriberClient = settings.builder().unwrap().0.build_subscriber_client().unwrap();
    subscriber.init().await.unwrap();
    subscriber.subscribe(keys::room_channel(room)).await.unwrap();
    let (tx, rx) = mpsc::channel(1_024);
    let mut messages = subscriber.message_rx();
    tokio::spawn(async move {
        let _subscriber = subscriber;
        while let Ok(message) = messages.recv().await {
            let payload = message.value.as_string().unwrap();
            let frame: Value = serde_json::from_str(Envelope::decode(&payload).unwrap().body).unwrap();
            let seen = (frame["user"]["id"].as_str().unwrap().to_owned(), frame["state"].as_str().unwrap().to_owned());
            if tx.send(seen).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_members_and_users_and_refuses_bad_input() {
    let redis = RedisServer::start();
    let pool = pool(&redis).await;
    let lobby = RoomName::parse("lobby").unwrap();
    let gateway = StandInGateway::start(&pool, "gw-a~1", Some(Duration::from_secs(60))).await;
    gateway.session_in("s1", &someone("bob"), &lobby).await;
    gateway.session_in("s2", &someone("alice"), &lobby).await;
    gateway.session_in("s3", &someone("alice"), &lobby).await;
    let service = presence(&redis, "p1");
    let (status, members) = get(&service, "/v1/rooms/lobby/members").await;
    assert_eq!(status, 200);
    assert_eq!(
        members,
        json!({"room": "lobby", "members": [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]})
    );
    // A status a gateway stored shows with its user.
    let _: i64 = pool.hset(keys::STATUSES, ("bob", r#"{"state":"busy","text":"in a call"}"#)).await.unwrap();
    let (_, members) = get(&service, "/v1/rooms/lobby/members").await;
    assert_eq!(
        members["members"][1],
        json!({"id": "bob", "name": "bob", "status": {"state": "busy", "text": "in a call"}})
    );
    assert_eq!(members["members"][0], json!({"id": "alice", "name": "alice"}));
    let (_, alice) = get(&service, "/v1/users/alice").await;
    assert_eq!(alice, json!({"id": "alice", "online": true, "sessions": 2, "rooms": ["lobby"], "last_seen": null}));
    let (_, nobody) = get(&service, "/v1/users/nobody").await;
    assert_eq!(nobody, json!({"id": "nobody", "online": false, "sessions": 0, "rooms": [], "last_seen": null}));
    for path in ["/v1/rooms/no%20spaces/members", "/v1/users/%00"] {
        let (status, body) = get(&service, path).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{path}: {body}");
    }
    assert_eq!(get(&service, "/v1/nothing").await.0, 404);
    assert_eq!(get(&service, "/healthz").await.0, 200);
    assert_eq!(get(&service, "/readyz").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = reqwest::get(format!("{}/metrics", service.url())).await.unwrap().text().await.unwrap();
        if metrics.contains("chat_presence_live_nodes 1") && metrics.contains("chat_presence_online_users 2") {
            break;
        }
        assert!(Instant::now() < deadline, "the live gateway and its two users are not counted:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_lease_lapsed_is_swept_and_its_users_reported_offline_once() {
    let redis = RedisServer::start();
    let pool = pool(&redis).await;
    let lobby = RoomName::parse("lobby").unwrap();
    let mut offline = watch(&redis, &lobby).await;
    let crashed = StandInGateway::start(&pool, "gw-crashed~1", None).await;
    crashed.session_in("s1", &someone("alice"), &lobby).await;
    crashed.session_in("s2", &someone("bob"), &lobby).await;
    crashed.session_in("s3", &someone("bob"), &lobby).await;
    let live = StandInGateway::start(&pool, "gw-live~1", Some(Duration::from_secs(60))).await;
    live.session_in("s4", &someone("carol"), &lobby).await;
    let service = presence(&redis, "p1");

    // The joins' own `online` frames may still be on their way; only `offline` counts here.
    let mut reported = Vec::new();
    while reported.len() < 2 {
        let (user, state) = tokio::time::timeout(Duration::from_secs(5), offline.recv()).await.unwrap().unwrap();
        if state == "offline" {
            reported.push(user);
        }
    }
    reported.sort();
    assert_eq!(reported, ["alice", "bob"], "bob once, though he had two sessions; carol not at all");
    let late = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some((user, state)) = offline.recv().await {
            if state == "offline" {
                return user;
            }
        }
        std::future::pending().await
    });
    assert!(late.await.is_err(), "nothing twice");
    let (_, members) = get(&service, "/v1/rooms/lobby/members").await;
    assert_eq!(members["members"], json!([{"id": "carol", "name": "carol"}]));
    let (_, bob) = get(&service, "/v1/users/bob").await;
    assert_eq!((&bob["online"], &bob["sessions"], &bob["rooms"]), (&json!(false), &json!(0), &json!([])));
    assert!(bob["last_seen"].as_u64().is_some(), "{bob}");
    let nodes: Vec<String> = pool.zrange(keys::NODES, 0, -1, None, false, None, false).await.unwrap();
    assert_eq!(nodes, ["gw-live~1"], "the crashed gateway is no longer listed");
    let left: HashMap<String, String> =
        pool.hgetall(keys::user_connections(&UserId::parse("bob").unwrap())).await.unwrap();
    assert!(left.is_empty(), "bob's connection slots are free: {left:?}");
    let metrics = reqwest::get(format!("{}/metrics", service.url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chat_presence_sweeps_total 1"), "{metrics}");
    assert!(metrics.contains("chat_presence_swept_sessions_total 3"), "{metrics}");
}
