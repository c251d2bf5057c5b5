//! What a hostile client can do to a gateway and to the others on it:
//! handshakes that never finish, frames at exactly the limits, text that is
//! not what JSON allows, a frame with its `type` twice.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawn_app;

#[tokio::test]
async fn handshakes_that_never_finish_are_dropped_after_the_request_timeout_and_the_node_keeps_serving() {
    let app = spawn_app(|s| s.gateway.limits.request_timeout_ms = 3_000);
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        // The start of a request line, and then nothing.
        socket.write_all(b"GET /ws?user=slow HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        stalled.push(socket);
    }
    // Meanwhile everyone else is served.
    let mut alice = app.client("h-alice").await;
    let mut bob = app.client("h-bob").await;
    alice.join("h").await;
    bob.join("h").await;
    alice.say("h", "still here").await;
    assert_eq!(bob.recv_type("message").await["text"], "still here");
    assert!(started.elapsed() < Duration::from_millis(2_500), "served while the stalled handshakes wait");
    // Every stalled one is closed by the server once the request timeout passes.
    for mut socket in stalled {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a stalled handshake is closed");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2_500) && waited < Duration::from_secs(8),
        "closed after gateway.limits.request_timeout_ms (3 s): {waited:?}"
    );
    assert_eq!(app.node.hub.stats().connections, 2, "none of them became a session");
}

#[tokio::test]
async fn frames_at_exactly_the_limits_pass_and_one_byte_more_does_not() {
    let app = spawn_app(|s| {
        s.gateway.limits.max_frame_bytes = 1024;
        s.gateway.limits.max_text_bytes = 512;
        s.gateway.limits.messages_per_second = 1_000;
    });
    let mut c = app.client("edge").await;
    c.join("edge").await;
    // `text` of exactly max_text_bytes (multi-byte characters count in bytes).
    let text = "é".repeat(256);
    assert_eq!(text.len(), 512);
    assert_eq!(c.request(json!({"type": "send", "room": "edge", "text": text})).await["type"], "ack");
    let reply = c.request(json!({"type": "send", "room": "edge", "text": format!("{text}x")})).await;
    assert_eq!(reply["code"], "too_large", "{reply}");
    // An emoji of exactly 32 bytes, and 33.
    let reaction = |emoji: &str| json!({"type": "react", "room": "edge", "target": 1, "emoji": emoji});
    let emoji32 = "👍".repeat(8);
    assert_eq!(emoji32.len(), 32);
    assert_eq!(c.request(reaction(&emoji32)).await["type"], "ack");
    assert_eq!(c.request(reaction(&format!("{emoji32}!"))).await["code"], "bad_request");
    // A frame of exactly max_frame_bytes is read; one byte more closes with 1009.
    let frame = |len: usize| {
        let base = json!({"type": "ping", "id": "edge", "pad": ""}).to_string();
        json!({"type": "ping", "id": "edge", "pad": "x".repeat(len - base.len())}).to_string()
    };
    c.send_raw(Message::Text(frame(1024).into())).await;
    assert_eq!(c.recv_type("pong").await["re"], "edge");
    c.send_raw(Message::Text(frame(1025).into())).await;
    assert_eq!(c.expect_close(Duration::from_secs(5)).await, Some(1009));
}

#[tokio::test]
async fn text_json_cannot_hold_and_a_doubled_type_get_a_clear_bad_request() {
    let app = spawn_app(|_| {});
    let mut c = app.client("odd").await;
    c.join("odd").await;
    for (frame, says) in [
        // A lone surrogate, escaped: valid-looking JSON that no string can hold.
        (r#"{"type":"send","id":1,"room":"odd","text":"\ud800"}"#, "lone surrogate"),
        (r#"{"type":"send","id":2,"room":"odd","text":"a\udc00b"}"#, "lone surrogate"),
        // `type` twice: not one frame or the other.
        (r#"{"type":"ping","type":"send","id":3,"room":"odd","text":"x"}"#, "duplicate field `type`"),
    ] {
        c.send_raw(Message::Text(frame.into())).await;
        let error = c.recv_type("error").await;
        assert_eq!(error["code"], "bad_request", "{frame}: {error}");
        assert!(error["message"].as_str().unwrap().contains(says), "{frame}: {error}");
    }
    let history = c.request(json!({"type": "history", "room": "odd"})).await;
    assert_eq!(history["messages"], json!([]), "nothing was stored");
    // A proper surrogate pair is a character like any other.
    let ack = c.request(json!({"type": "send", "room": "odd", "text": "\u{1F600}"})).await;
    assert_eq!(ack["type"], "ack");
}
