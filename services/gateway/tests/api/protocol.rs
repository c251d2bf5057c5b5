//! Frames, replies and error codes on one connection.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, Client};

#[tokio::test]
async fn welcome_comes_first_with_identity_node_and_limits() {
    let app = spawn_app(|s| s.gateway.node_id = "gw-7".into());
    let mut c = Client::connect(&app.ws_url("name=Alice&user=u1")).await.unwrap();
    let welcome = c.recv().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["user"], json!({"id": "u1", "name": "Alice"}));
    assert_eq!(welcome["node"], "gw-7");
    assert_eq!(welcome["heartbeat_ms"], 25_000);
    assert!(welcome["session"].as_str().unwrap().starts_with("s-"));
    assert_eq!(
        welcome["limits"],
        json!({"max_frame_bytes": 65536, "max_text_bytes": 4096, "max_signal_bytes": 16384, "messages_per_second": 20})
    );
}

#[tokio::test]
async fn anonymous_identity_defaults() {
    let app = spawn_app(|_| {});
    let mut named = Client::connect(&app.ws_url("name=bob")).await.unwrap();
    let w = named.recv().await;
    assert_eq!(w["user"]["name"], "bob");
    assert!(!w["user"]["id"].as_str().unwrap().is_empty());
    let mut bare = Client::connect(&app.ws_url("")).await.unwrap();
    let w = bare.recv().await;
    assert_eq!(w["user"]["name"], w["user"]["id"], "the name defaults to the user id");
    let mut other = Client::connect(&app.ws_url("")).await.unwrap();
    assert_ne!(other.recv().await["user"]["id"], w["user"]["id"], "made-up ids differ");
}

#[tokio::test]
async fn invalid_anonymous_identity_is_refused_with_400() {
    let app = spawn_app(|_| {});
    let long = "n".repeat(65);
    for query in [format!("name={long}"), "user=a%07b".to_owned(), "name=".to_owned()] {
        let refused = Client::connect(&app.ws_url(&query)).await.err().expect("refused");
        assert_eq!(refused.status, 400, "{query}");
        assert_eq!(refused.body["error"]["code"], "bad_request", "{query}");
        assert!(refused.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_re() {
    let app = spawn_app(|_| {});
    let mut c = app.client("u1").await;
    c.send(json!({"type": "ping", "id": "p-1"})).await;
    let pong = c.recv().await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["re"], "p-1");
    assert!(pong["ts"].as_u64().unwrap() > 1_600_000_000_000);
    c.send(json!({"type": "ping"})).await;
    let pong = c.recv().await;
    assert!(pong.get("re").is_none(), "no id, no re: {pong}");
}

#[tokio::test]
async fn malformed_frames_get_bad_request_and_change_nothing() {
    let app = spawn_app(|_| {});
    let mut c = app.client("u1").await;
    let cases = [
        (Message::Text("not json".into()), None),
        (Message::Text("[1,2,3]".into()), None),
        (Message::Text("\"join\"".into()), None),
        (Message::Text(r#"{"id":1}"#.into()), Some(json!(1))),
        (Message::Text(r#"{"type":"join","id":2}"#.into()), Some(json!(2))),
        (Message::Text(r#"{"type":"join","id":3,"room":"has space"}"#.into()), Some(json!(3))),
        (Message::Text(r#"{"type":"join","id":4,"room":"r","limit":-1}"#.into()), Some(json!(4))),
        (Message::Text(r#"{"type":"join","id":5,"room":"r","since":1.5}"#.into()), Some(json!(5))),
        (Message::Text(r#"{"type":"history","id":6,"room":"r","before":"x"}"#.into()), Some(json!(6))),
        (Message::Text(r#"{"type":"dm","id":7,"to":"","text":"x"}"#.into()), Some(json!(7))),
        (Message::Text(r#"{"type":"send","id":"s","room":"r","text":42}"#.into()), Some(json!("s"))),
        (Message::Binary(vec![1, 2, 3].into()), None),
    ];
    for (frame, re) in cases {
        let shown = format!("{frame:?}");
        c.send_raw(frame).await;
        let err = c.recv().await;
        assert_eq!(err["type"], "error", "{shown}: {err}");
        assert_eq!(err["code"], "bad_request", "{shown}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(err.get("re").cloned(), re, "{shown}");
    }
    // Nothing was joined by the bad joins.
    let members = c.request(json!({"type": "members", "room": "r"})).await;
    assert_eq!(members["members"], json!([]));
    let sent = c.request(json!({"type": "send", "room": "r", "text": "x"})).await;
    assert_eq!(sent["code"], "not_joined");
}

#[tokio::test]
async fn unknown_type_is_its_own_error() {
    let app = spawn_app(|_| {});
    let mut c = app.client("u1").await;
    let err = c.request(json!({"type": "teleport"})).await;
    assert_eq!(err["code"], "unknown_type");
    let err = c.request(json!({"type": 12})).await;
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["message"], "`type` must be a string");
    c.send(json!({"type": "ping", "id": {"nested": true}})).await;
    let err = c.recv().await;
    assert_eq!((err["code"].as_str(), err.get("re")), (Some("bad_request"), None));
    assert_eq!(err["message"], "`id` must be a string or a number");
}

#[tokio::test]
async fn text_rules_empty_and_too_large() {
    let app = spawn_app(|s| s.gateway.limits.max_text_bytes = 10);
    let mut c = app.client("u1").await;
    c.join("r").await;
    let err = c.request(json!({"type": "send", "room": "r", "text": ""})).await;
    assert_eq!(err["code"], "bad_request");
    let err = c.request(json!({"type": "send", "room": "r", "text": "x".repeat(11)})).await;
    assert_eq!(err["code"], "too_large");
    // 10 bytes of UTF-8 is fine; 5 two-byte characters are 10 bytes, 6 are 12.
    assert_eq!(c.request(json!({"type": "send", "room": "r", "text": "é".repeat(5)})).await["type"], "ack");
    let err = c.request(json!({"type": "dm", "to": "u2", "text": "é".repeat(6)})).await;
    assert_eq!(err["code"], "too_large");
    let history = c.request(json!({"type": "history", "room": "r"})).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1, "rejected sends were not stored");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = spawn_app(|_| {});
    let mut c = app.client("u1").await;
    let joined = c.request(json!({"type": "join", "room": "r", "color": "blue", "v": 2})).await;
    assert_eq!(joined["type"], "joined");
}

#[tokio::test]
async fn replies_come_back_in_request_order() {
    let app = spawn_app(|_| {});
    let mut c = app.client("u1").await;
    for i in 0..10 {
        c.send(json!({"type": "join", "id": i * 2, "room": format!("r{i}")})).await;
        c.send(json!({"type": "ping", "id": i * 2 + 1})).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let frame = c.recv().await;
        if let Some(re) = frame["re"].as_u64() {
            seen.push(re);
        }
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn unknown_http_paths_get_404_json() {
    let app = spawn_app(|_| {});
    let response = reqwest::get(app.http_url("/nowhere")).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// `GET /ws` without upgrade headers answers what the handshake would get,
/// so that a browser (which sees only 1006) can learn why it was refused.
#[tokio::test]
async fn a_plain_get_ws_answers_the_handshakes_refusal_or_426() {
    let app = spawn_app(|s| s.gateway.limits.max_connections_per_user = 1);
    let probe = |query: &'static str| {
        let url = app.http_url(&format!("/ws?{query}"));
        async move {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    assert_eq!(probe("user=u&name=U").await, (426, "upgrade_required".into()), "nothing would refuse it");
    let upgrade = reqwest::get(app.http_url("/ws?user=u")).await.unwrap();
    assert_eq!(
        upgrade.headers().get("upgrade").and_then(|v| v.to_str().ok()),
        Some("websocket"),
        "426 names the upgrade"
    );
    assert_eq!(probe("user=u&name=U").await.0, 426, "a probe holds no connection slot");
    assert_eq!(probe("user=bad%0Aid").await, (400, "bad_request".into()));
    let _held = app.client("u").await;
    assert_eq!(probe("user=u&name=U").await, (429, "too_many_connections".into()), "the user's limit");
    assert_eq!(probe("user=v").await.0, 426);
    app.node.start_draining();
    assert_eq!(probe("user=v").await, (503, "unavailable".into()), "a draining node");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app(|_| {});
    let health = reqwest::get(app.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = reqwest::get(app.http_url("/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let mut c = app.client("u1").await;
    c.join("r").await;
    c.say("r", "hello").await;
    c.request(json!({"type": "teleport"})).await;
    let body = reqwest::get(app.http_url("/metrics")).await.unwrap().text().await.unwrap();
    for name in [
        "chat_connections 1",
        "chat_frames_in_total{type=\"send\"} 1",
        "chat_frames_out_total{type=\"ack\"} 1",
        "chat_errors_total{code=\"unknown_type\"} 1",
        "chat_rooms 1",
        "chat_slow_consumer_closes_total 0",
        "chat_fanout_seconds_count",
        "chat_publish_seconds_count 1",
    ] {
        assert!(body.contains(name), "missing {name} in\n{body}");
    }
}
