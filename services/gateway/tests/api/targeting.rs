//! Protocol 1.1, part 2: `signal` (relayed to a user's sessions, never
//! stored), notices to one user and moderation deletes through the operator
//! API. Each scenario spreads its clients over the gateways it is given:
//! one gateway here, three on standalone Redis and on a Redis Cluster below.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{admin_post, spawn_app, Client, TestApp};

const QUIET: Duration = Duration::from_millis(300);

fn on(apps: &[TestApp], i: usize) -> &TestApp {
    &apps[i % apps.len()]
}

fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap_or("")
}

/// A client and the session id its `welcome` named.
async fn session_on(app: &TestApp, user: &str) -> (Client, String) {
    let mut c = Client::connect(&app.ws_url(&format!("user={user}&name={user}"))).await.expect("connects");
    let welcome = c.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (c, welcome["session"].as_str().unwrap().to_owned())
}

/// `signal`: to every session of a user or to one, with the sender's session
/// for the reply, counted in `delivered`, never stored, size-limited.
pub async fn signals_across(apps: &[TestApp]) {
    let (mut alice, alice_session) = session_on(on(apps, 0), "sig-alice").await;
    let (mut bob_laptop, bob_laptop_session) = session_on(on(apps, 1), "sig-bob").await;
    let (mut bob_phone, _) = session_on(on(apps, 2), "sig-bob").await;
    let (mut alice_tablet, _) = session_on(on(apps, 1), "sig-alice").await;

    let offer = json!({"kind": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    let ack = alice.request(json!({"type": "signal", "to": "sig-bob", "data": offer})).await;
    assert_eq!(ack, json!({"type": "ack", "re": ack["re"], "to": "sig-bob", "delivered": 2}));
    for bob in [&mut bob_laptop, &mut bob_phone] {
        let frame = bob.recv_type("signal").await;
        assert_eq!(
            frame,
            json!({"type": "signal", "from": {"id": "sig-alice", "name": "sig-alice"}, "session": alice_session, "data": offer})
        );
    }
    alice_tablet.expect_silence(QUIET).await;

    // The answer goes back to the one session that sent the offer.
    let answer = json!({"kind": "answer", "sdp": "v=0"});
    let ack = bob_laptop
        .request(json!({"type": "signal", "to": "sig-alice", "session": alice_session, "data": answer}))
        .await;
    assert_eq!(ack["delivered"], 1);
    let frame = alice.recv_type("signal").await;
    assert_eq!((&frame["data"], &frame["session"]), (&answer, &json!(bob_laptop_session)));
    alice_tablet.expect_silence(QUIET).await;
    bob_phone.expect_silence(QUIET).await;

    // To one's own user: the other sessions, not the sender.
    let ack = alice.request(json!({"type": "signal", "to": "sig-alice", "data": "ring"})).await;
    assert_eq!(ack["delivered"], 1);
    assert_eq!(alice_tablet.recv_type("signal").await["data"], "ring");
    alice.expect_silence(QUIET).await;

    // Nobody there, a session that is not the user's: 0, and nothing is kept.
    let ack = alice.request(json!({"type": "signal", "to": "sig-nobody", "data": {"n": 1}})).await;
    assert_eq!(ack["delivered"], 0);
    let ack = alice.request(json!({"type": "signal", "to": "sig-bob", "session": alice_session, "data": 1})).await;
    assert_eq!(ack["delivered"], 0, "alice's session is not one of bob's");
    bob_laptop.expect_silence(QUIET).await;
    let (mut nobody, _) = session_on(on(apps, 0), "sig-nobody").await;
    nobody.expect_silence(QUIET).await;

    // Exactly the limit passes (measured as compact JSON); one byte more is too_large.
    let max = 16_384;
    let fits = json!("x".repeat(max - 2));
    let ack = alice.request(json!({"type": "signal", "to": "sig-bob", "data": fits})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let over = json!("x".repeat(max - 1));
    assert_eq!(code(&alice.request(json!({"type": "signal", "to": "sig-bob", "data": over})).await), "too_large");
    for bad in [
        json!({"type": "signal", "to": "sig-bob"}),
        json!({"type": "signal", "data": 1}),
        json!({"type": "signal", "to": "", "data": 1}),
        json!({"type": "signal", "to": "sig-bob", "session": "", "data": 1}),
        json!({"type": "signal", "to": "sig-bob", "session": 7, "data": 1}),
    ] {
        assert_eq!(code(&alice.request(bad.clone()).await), "bad_request", "{bad}");
    }
    // Only the one that fit went out.
    assert_eq!(bob_laptop.recv_type("signal").await["data"].as_str().map(str::len), Some(max - 2));
    bob_laptop.expect_silence(QUIET).await;
}

/// The operator API: a notice to one user's sessions, and a moderator's
/// delete of anyone's message.
pub async fn operator_targeting_across(apps: &[TestApp]) {
    let mut alice = on(apps, 0).client("op-alice").await;
    let mut alice_phone = on(apps, 1).client("op-alice").await;
    let mut bob = on(apps, 2).client("op-bob").await;

    let (status, _) = admin_post(on(apps, 1), "k", "/v1/users/op-alice/notices", json!({"data": {"n": 1}})).await;
    assert_eq!(status, 202);
    for c in [&mut alice, &mut alice_phone] {
        assert_eq!(c.recv_type("notice").await, json!({"type": "notice", "data": {"n": 1}}));
    }
    bob.expect_silence(QUIET).await;
    assert_eq!(admin_post(on(apps, 0), "k", "/v1/users/op-nobody/notices", json!({"data": 1})).await.0, 202);
    for (body, why) in [(json!({}), "no data"), (json!("text"), "not an object")] {
        assert_eq!(admin_post(on(apps, 0), "k", "/v1/users/op-alice/notices", body).await.0, 400, "{why}");
    }
    assert_eq!(admin_post(on(apps, 0), "k", "/v1/users/bad%0Aid/notices", json!({"data": 1})).await.0, 400);
    assert_eq!(admin_post(on(apps, 0), "wrong", "/v1/users/op-alice/notices", json!({"data": 1})).await.0, 401);

    alice.join("moderated").await;
    bob.join("moderated").await;
    alice.say("moderated", "something rude").await;
    alice.say("moderated", "something fine").await;
    for c in [&mut alice, &mut bob] {
        c.recv_type("message").await;
        c.recv_type("message").await;
    }
    let delete = |app: &TestApp, path: &str, key: &str| {
        let request = reqwest::Client::new().delete(app.http_url(path)).bearer_auth(key);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = delete(on(apps, 2), "/v1/rooms/moderated/messages/1", "k").await;
    assert_eq!((status, &body["seq"]), (200, &json!(3)), "{body}");
    for c in [&mut alice, &mut bob] {
        let event = c.recv_type("delete").await;
        assert_eq!(
            (&event["target"], &event["seq"], &event["from"]),
            (&json!(1), &json!(3), &json!({"id": "server", "name": "server"}))
        );
    }
    let history = bob.request(json!({"type": "history", "room": "moderated"})).await;
    let first = &history["messages"][0];
    assert_eq!((&first["deleted"], first.get("text"), &first["from"]["id"]), (&json!(true), None, &json!("op-alice")));
    assert_eq!(history["messages"][1]["text"], "something fine");
    let refused = alice.request(json!({"type": "edit", "room": "moderated", "target": 1, "text": "x"})).await;
    assert_eq!(code(&refused), "not_found", "a deleted message takes no edit");

    for (path, status, error) in [
        ("/v1/rooms/moderated/messages/1", 404, "not_found"),
        ("/v1/rooms/moderated/messages/99", 404, "not_found"),
        ("/v1/rooms/moderated/messages/3", 404, "not_found"),
        ("/v1/rooms/moderated/messages/0", 404, "not_found"),
        ("/v1/rooms/moderated/messages/x", 400, "bad_request"),
        ("/v1/rooms/moderated/messages/-1", 400, "bad_request"),
        ("/v1/rooms/bad%20room/messages/1", 400, "bad_request"),
    ] {
        let (got, body) = delete(on(apps, 0), path, "k").await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(error)), "{path}");
    }
    assert_eq!(delete(on(apps, 0), "/v1/rooms/moderated/messages/2", "wrong").await.0, 401);
    let history = bob.request(json!({"type": "history", "room": "moderated"})).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(3), "the refusals stored nothing");
}

fn settings(s: &mut gateway::Settings) {
    s.gateway.limits.messages_per_second = 1_000;
    s.gateway.admin.api_key = Some("k".into());
}

#[tokio::test]
async fn signals_on_one_gateway() {
    let app = spawn_app(settings);
    signals_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn operator_targeting_on_one_gateway() {
    let app = spawn_app(settings);
    operator_targeting_across(std::slice::from_ref(&app)).await;
}

/// The same scenarios across three gateways on one Redis.
mod cluster {
    use super::*;
    use crate::helpers::{spawn_cluster, wait_ready, RedisCluster, RedisServer};

    async fn all(apps: &[TestApp]) {
        signals_across(apps).await;
        operator_targeting_across(apps).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signals_and_targeting_across_three_gateways_on_standalone_redis() {
        let redis = RedisServer::start();
        let apps = spawn_cluster(3, &redis.url(), settings);
        wait_ready(&apps).await;
        all(&apps).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signals_and_targeting_across_three_gateways_on_a_redis_cluster() {
        let cluster = RedisCluster::start();
        let apps = spawn_cluster(3, &cluster.url(), settings);
        wait_ready(&apps).await;
        all(&apps).await;
    }
}
