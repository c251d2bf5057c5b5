//! The history service on its own: a real `history` process on a real
//! `redis-server`, with history appended through the `history-store`
//! library exactly as gateways append it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fred::interfaces::ClientLike;

use chat_shared::protocol::{DisplayName, RoomEventKind, RoomName, UserId, UserRef};
use chat_shared::redis::RedisSettings;
use chat_shared::settings::{DmSettings, HistorySettings};
use history_store::{DmDraft, HistoryStore, RedisStore, RoomDraft};
use test_support::{free_port, RedisServer, ServiceProcess};

async fn history(redis: &RedisServer, extra: &[(&str, &str)]) -> ServiceProcess {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = redis.url();
    let mut env = vec![
        ("CHAT_HISTORY_SERVICE__LISTEN", listen.as_str()),
        ("CHAT_REDIS__URL", url.as_str()),
        ("CHAT_LOG__LEVEL", "warn"),
    ];
    env.extend_from_slice(extra);
    let service = ServiceProcess::start(env!("CARGO_BIN_EXE_history").into(), port, &env);
    // Listening comes before its Redis pool connects: wait until it is ready.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("{}/readyz", service.url())).await.map_or(true, |r| !r.status().is_success()) {
        assert!(Instant::now() < deadline, "the history service never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service
}

async fn get(service: &ServiceProcess, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path}", service.url())).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A store writing to `redis` as gateways do, keeping `size` per history.
async fn store(redis: &RedisServer, size: usize) -> RedisStore {
    let settings = RedisSettings { url: redis.url(), ..RedisSettings::default() };
    let (pool, sharded) = settings.connect_pool().unwrap();
    pool.wait_for_connect().await.unwrap();
    RedisStore::new(pool, sharded, HistorySettings { size, ..HistorySettings::default() }, DmSettings::default())
}

fn someone(id: &str) -> UserRef {
    UserRef { id: UserId::parse(id).unwrap(), name: DisplayName::parse(id).unwrap() }
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"].as_array().expect("messages").iter().map(|m| m["seq"].as_u64().expect("a seq")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_page_back_and_forth_over_what_gateways_stored() {
    let redis = RedisServer::start();
    let service = history(&redis, &[("CHAT_HISTORY__SIZE", "20")]).await;
    let store = store(&redis, 20).await;
    let room = RoomName::parse("lobby").unwrap();
    for i in 1..=25 {
        let draft = RoomDraft::message(room.clone(), someone("alice"), format!("m{i}"), None);
        store.append_room(draft).await.unwrap();
    }
    let (status, page) = get(&service, "/v1/rooms/lobby/messages").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["room"].as_str(), page["seq"].as_u64()), (Some("lobby"), Some(25)));
    assert!(page["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(seqs(&page), (6..=25).collect::<Vec<_>>(), "the newest 20 (the default limit is clamped to them)");
    assert_eq!(
        page["messages"][0],
        json!({"type": "message", "room": "lobby", "from": {"id": "alice", "name": "alice"},
        "text": "m6", "seq": 6, "ts": page["messages"][0]["ts"]})
    );
    let (_, back) = get(&service, "/v1/rooms/lobby/messages?before=10&limit=3").await;
    assert_eq!(seqs(&back), [7, 8, 9]);
    let (_, forward) = get(&service, "/v1/rooms/lobby/messages?after=20").await;
    assert_eq!(seqs(&forward), [21, 22, 23, 24, 25]);
    let (_, both) = get(&service, "/v1/rooms/lobby/messages?after=10&before=13&limit=50").await;
    assert_eq!(seqs(&both), [11, 12]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_pages_scrubbed_with_its_edits() {
    let redis = RedisServer::start();
    let service = history(&redis, &[]).await;
    let store = store(&redis, 1_000).await;
    let room = RoomName::parse("edits").unwrap();
    let draft = |event| RoomDraft::new(room.clone(), someone("alice"), event, None);
    store.append_room(RoomDraft::message(room.clone(), someone("alice"), "secret", None)).await.unwrap();
    store.append_room(draft(RoomEventKind::Edit { target: 1, text: "still secret".into() })).await.unwrap();
    let (_, before) = get(&service, "/v1/rooms/edits/messages").await;
    assert_eq!(before["messages"][1]["text"], "still secret");
    store.append_room(draft(RoomEventKind::Delete { target: 1 })).await.unwrap();
    let (status, page) = get(&service, "/v1/rooms/edits/messages").await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&page), [1, 2, 3]);
    assert!(!page.to_string().contains("secret"), "no text of a deleted message is served: {page}");
    assert_eq!((&page["messages"][0]["deleted"], &page["messages"][1]["deleted"]), (&json!(true), &json!(true)));
    assert_eq!(
        page["messages"][2],
        json!({"type": "delete", "room": "edits", "target": 1,
        "from": {"id": "alice", "name": "alice"}, "seq": 3, "ts": page["messages"][2]["ts"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_reads_the_same_from_either_side() {
    let redis = RedisServer::start();
    let service = history(&redis, &[]).await;
    let store = store(&redis, 1_000).await;
    for (from, to, text) in [("alice", "bob", "hi"), ("bob", "alice", "hey"), ("alice", "bob", "bye")] {
        let draft = DmDraft {
            from: someone(from),
            to: UserId::parse(to).unwrap(),
            text: text.into(),
            client_id: None,
            origin: Arc::from("s-test"),
        };
        store.append_dm(draft).await.unwrap();
    }
    for path in ["/v1/users/alice/conversations/bob/messages", "/v1/users/bob/conversations/alice/messages"] {
        let (status, page) = get(&service, path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!((seqs(&page), page["seq"].as_u64()), (vec![1, 2, 3], Some(3)));
        assert!(page.get("epoch").is_none(), "conversations have no epoch: {page}");
        let texts: Vec<&str> =
            page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["hi", "hey", "bye"]);
    }
    let (_, page) = get(&service, "/v1/users/alice/conversations/bob/messages?before=3&limit=1").await;
    assert_eq!(page["users"], json!(["alice", "bob"]));
    assert_eq!(seqs(&page), [2]);
    let (_, empty) = get(&service, "/v1/users/alice/conversations/carol/messages").await;
    assert_eq!((empty["seq"].as_u64(), seqs(&empty)), (Some(0), vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bad_input_and_reports_health_and_metrics() {
    let mut redis = RedisServer::start();
    let service = history(&redis, &[]).await;
    for path in [
        "/v1/rooms/no%20spaces/messages",
        "/v1/rooms/r/messages?limit=-1",
        "/v1/rooms/r/messages?before=1.5",
        "/v1/rooms/r/messages?after=",
        "/v1/rooms/r/messages?since=3",
        "/v1/users/%00/conversations/bob/messages",
    ] {
        let (status, body) = get(&service, path).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
    }
    assert_eq!(get(&service, "/v1/nothing").await.0, 404);
    let (status, empty) = get(&service, "/v1/rooms/never/messages").await;
    assert_eq!((status, &empty["seq"], &empty["messages"]), (200, &json!(0), &json!([])));
    // Reading a room gives it an epoch, kept an hour unless a message comes.
    let ttl_ms: u64 = redis.cli(&["pttl", "chat:{r:never}:epoch"]).trim().parse().unwrap();
    assert!((3_590_000..=3_600_000).contains(&ttl_ms), "{ttl_ms}");
    assert_eq!(get(&service, "/v1/rooms/never/messages").await.1["epoch"], empty["epoch"], "the same epoch");
    assert_eq!(get(&service, "/healthz").await.0, 200);
    assert_eq!(get(&service, "/readyz").await.0, 200);
    let metrics = reqwest::get(format!("{}/metrics", service.url())).await.unwrap().text().await.unwrap();
    for series in [
        "chat_history_replays_total{kind=\"room\"} 2",
        "chat_history_messages_replayed_total 0",
        "chat_history_read_seconds_count 2",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    // Data that cannot be read is a 500 (a bug or corruption), not an outage.
    redis.cli(&["set", "chat:{r:broken}:seq", "2"]);
    redis.cli(&["rpush", "chat:{r:broken}:history", "{\"seq\":1}", "not json"]);
    let (status, body) = get(&service, "/v1/rooms/broken/messages").await;
    assert_eq!((status, &body["error"]["code"]), (500, &json!("internal")), "{body}");
    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&service, "/readyz").await.0 != 503 {
        assert!(Instant::now() < deadline, "readyz still 200 without Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = get(&service, "/v1/rooms/r/messages").await;
    assert_eq!((status, &body["error"]["code"]), (503, &json!("unavailable")), "{body}");
}
