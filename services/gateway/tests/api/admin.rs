//! The operator API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{admin_post, spawn_app};

async fn get(url: String, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_api_is_off_without_a_key() {
    let app = spawn_app(|_| {});
    let (status, body) = get(app.http_url("/v1/stats"), Some("anything")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_401() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("right".into()));
    assert_eq!(get(app.http_url("/v1/stats"), Some("wrong")).await.0, 401);
    let (status, body) = get(app.http_url("/v1/stats"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = admin_post(&app, "wrong", "/v1/broadcast", json!({"data": 1})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn stats_count_this_node() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("k".into()));
    let mut a = app.client("a").await;
    let _a2 = app.client("a").await;
    let _b = app.client("b").await;
    a.join("r1").await;
    a.join("r2").await;
    let (status, stats) = get(app.http_url("/v1/stats"), Some("k")).await;
    assert_eq!(status, 200);
    assert_eq!(stats["node"], "gw-test");
    assert_eq!(
        (stats["connections"].as_u64(), stats["users"].as_u64(), stats["rooms"].as_u64()),
        (Some(3), Some(2), Some(2))
    );
    assert_eq!(stats["draining"], false);
}

#[tokio::test]
async fn publish_into_a_room_as_the_server_or_a_named_user() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("k".into()));
    let mut c = app.client("c").await;
    c.join("news").await;
    let (status, body) = admin_post(&app, "k", "/v1/rooms/news/messages", json!({"text": "hello all"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["room"].as_str(), body["seq"].as_u64()), (Some("news"), Some(1)));
    let msg = c.recv_type("message").await;
    assert_eq!(msg["from"], json!({"id": "server", "name": "server"}));
    assert_eq!(msg["text"], "hello all");
    let (status, _) = admin_post(
        &app,
        "k",
        "/v1/rooms/news/messages",
        json!({"text": "from a bot", "from": {"id": "bot-1", "name": "Bot"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(c.recv_type("message").await["from"], json!({"id": "bot-1", "name": "Bot"}));
    for (path, body, code) in [
        ("/v1/rooms/bad%20room/messages", json!({"text": "x"}), 400),
        ("/v1/rooms/news/messages", json!({"text": ""}), 400),
        ("/v1/rooms/news/messages", json!({"nope": 1}), 400),
        ("/v1/rooms/news/messages", json!({"text": "x".repeat(5000)}), 413),
        ("/v1/rooms/news/messages", json!({"text": "x", "from": {"id": ""}}), 400),
    ] {
        let (status, reply) = admin_post(&app, "k", path, body.clone()).await;
        assert_eq!(status, code, "{path} {body}: {reply}");
        assert!(reply["error"]["code"].is_string(), "{reply}");
    }
    c.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn broadcast_sends_a_notice_to_every_session() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("k".into()));
    let mut a = app.client("a").await;
    let mut b = app.client("b").await;
    let data = json!({"title": "maintenance", "at": "02:00"});
    let (status, body) = admin_post(&app, "k", "/v1/broadcast", json!({ "data": data })).await;
    assert_eq!(status, 200);
    assert_eq!(body["nodes"], 1);
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv().await, json!({"type": "notice", "data": data}));
    }
    let (status, _) = admin_post(&app, "k", "/v1/broadcast", json!({"no_data": 1})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn disconnect_a_user_everywhere_with_1008() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("k".into()));
    let mut a1 = app.client("a").await;
    let mut a2 = app.client("a").await;
    let mut b = app.client("b").await;
    b.join("r").await;
    a1.join("r").await;
    b.recv_type("presence").await;
    let response =
        reqwest::Client::new().delete(app.http_url("/v1/users/a/sessions")).bearer_auth("k").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["nodes"], 1);
    assert_eq!(a1.expect_close(Duration::from_secs(3)).await, Some(1008));
    assert_eq!(a2.expect_close(Duration::from_secs(3)).await, Some(1008));
    assert_eq!(b.recv().await["state"], "offline");
}
