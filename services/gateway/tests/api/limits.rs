//! Frame size, rate limits, slow consumers and heartbeats.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, Client};

#[tokio::test]
async fn a_frame_over_max_frame_bytes_closes_with_1009() {
    let app = spawn_app(|s| {
        s.gateway.limits.max_frame_bytes = 1024;
        s.gateway.limits.max_text_bytes = 512;
    });
    let mut c = app.client("c").await;
    let big = json!({"type": "ping", "pad": "x".repeat(2000)}).to_string();
    c.send_raw(Message::Text(big.into())).await;
    assert_eq!(c.expect_close(Duration::from_secs(5)).await, Some(1009));
}

#[tokio::test]
async fn rate_limit_gives_retry_after_and_sustained_abuse_closes_with_1008() {
    let app = spawn_app(|s| {
        s.gateway.limits.messages_per_second = 5;
        s.gateway.limits.max_rate_limited_frames = 10;
    });
    let mut c = app.client("c").await;
    for i in 0..5 {
        c.send(json!({"type": "ping", "id": i})).await;
    }
    for _ in 0..5 {
        assert_eq!(c.recv().await["type"], "pong", "the bucket starts full");
    }
    let limited = c.request(json!({"type": "ping"})).await;
    assert_eq!(limited["type"], "error");
    assert_eq!(limited["code"], "rate_limited");
    let retry = limited["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=200).contains(&retry), "{retry}");
    tokio::time::sleep(Duration::from_millis(retry + 20)).await;
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong", "a token came back");
    // Ignoring retry_after_ms over and over ends the connection.
    for _ in 0..30 {
        c.send(json!({"type": "ping"})).await;
    }
    assert_eq!(c.expect_close(Duration::from_secs(5)).await, Some(1008));
    assert_eq!(app.metric("chat_rate_limit_closes_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008_and_others_keep_up() {
    const FLOOD: u64 = 1500;
    let app = spawn_app(|s| {
        s.gateway.admin.api_key = Some("k".into());
        s.gateway.limits.max_frame_bytes = 16 * 1024;
        s.gateway.limits.max_outbox_bytes = 64 * 1024;
    });
    let mut slow = Client::connect_small_buffer(&app.ws_url("user=slow"), 4096).await;
    assert_eq!(slow.recv().await["type"], "welcome");
    slow.join("flood").await;
    let mut fast = app.client("fast").await;
    fast.join("flood").await;
    let reader = tokio::spawn(async move {
        let mut last = 0;
        while last < FLOOD {
            let frame = fast.recv().await;
            if frame["type"] == "message" {
                let seq = frame["seq"].as_u64().unwrap();
                assert_eq!(seq, last + 1, "the fast reader sees every message in order");
                last = seq;
            }
        }
        last
    });
    let port = app.port;
    let flood = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/v1/rooms/flood/messages");
        let text = "x".repeat(4000);
        for _ in 0..FLOOD {
            let response = client.post(&url).bearer_auth("k").json(&json!({"text": text})).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
    });
    // The slow client reads nothing until the gateway gives up on it...
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.metric("chat_slow_consumer_closes_total").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the slow client never overflowed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...then reads what was already on the wire, and the close frame: 4008.
    assert_eq!(slow.expect_close(Duration::from_secs(10)).await, Some(4008));
    flood.await.unwrap();
    assert_eq!(reader.await.unwrap(), FLOOD);
    assert_eq!(app.metric("chat_slow_consumer_closes_total").await, 1.0);
    let members = app.client("probe").await.request(json!({"type": "members", "room": "flood"})).await;
    assert!(!members["members"].to_string().contains("slow"), "the slow session left the room: {members}");
}

#[tokio::test]
async fn silent_peers_are_closed_after_two_heartbeats() {
    let app = spawn_app(|s| s.gateway.heartbeat.interval_ms = 200);
    let mut silent = app.client("silent").await;
    // This client does not read (so it never answers pings) for a while.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(silent.expect_close(Duration::from_secs(3)).await, Some(1000));
}

#[tokio::test]
async fn any_client_frame_counts_as_life() {
    let app = spawn_app(|s| s.gateway.heartbeat.interval_ms = 200);
    let mut talker = app.client("talker").await;
    // Sends protocol pings but never reads (so never answers WebSocket pings).
    for _ in 0..10 {
        talker.send(json!({"type": "ping"})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut pongs = 0;
    while let Some(frame) = talker.try_recv(Duration::from_millis(300)).await {
        assert_eq!(frame["type"], "pong");
        pongs += 1;
    }
    assert_eq!(pongs, 10, "still open after 1 s of only sending");
}

#[tokio::test]
async fn server_sends_websocket_pings() {
    use futures_util::StreamExt;
    let app = spawn_app(|s| s.gateway.heartbeat.interval_ms = 150);
    let mut c = app.client("c").await;
    let next = tokio::time::timeout(Duration::from_secs(2), c.ws.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(next, Message::Ping(_)), "{next:?}");
}

#[tokio::test]
async fn per_user_connection_limit_gives_429() {
    let app = spawn_app(|s| s.gateway.limits.max_connections_per_user = 2);
    let _a = app.client("u").await;
    let b = app.client("u").await;
    let refused = Client::connect(&app.ws_url("user=u")).await.err().expect("third is refused");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["error"]["code"], "too_many_connections");
    let _other = app.client("someone-else").await;
    drop(b);
    app.wait_sessions(2).await;
    // A slot comes free once the closed session's cleanup reached the
    // engine (on Redis, a few round trips after the session is gone).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Client::try_connect(&app.ws_url("user=u")).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the closed connection's slot never came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_never_overshoots_max_connections() {
    const MAX: u32 = 10;
    let app = spawn_app(|s| s.gateway.limits.max_connections = MAX);
    let url = app.ws_url("");
    let attempts: Vec<_> = (0..40).map(|_| tokio::spawn(Client::connect_url(url.clone()))).collect();
    let (mut open, mut refused) = (Vec::new(), 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(client) => open.push(client),
            Err(refusal) => {
                assert_eq!((refusal.status, refusal.body["error"]["code"].as_str()), (503, Some("unavailable")));
                refused += 1;
            }
        }
    }
    assert_eq!((open.len(), refused), (MAX as usize, 40 - MAX as usize), "exactly the cap is admitted");
    assert_eq!(app.metric("chat_connections").await, f64::from(MAX));
    // A closed connection gives its place back once its cleanup is done.
    drop(open.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let again = loop {
        match Client::connect(&url).await {
            Ok(client) => break client,
            Err(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(refusal) => panic!("no place came free: {refusal:?}"),
        }
    };
    drop((open, again));
}
