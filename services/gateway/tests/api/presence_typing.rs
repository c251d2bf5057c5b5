//! Presence events, `members`, and typing relay.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::spawn_app;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn presence_on_first_join_and_last_leave_to_other_users_only() {
    let app = spawn_app(|_| {});
    let mut watcher = app.client("watcher").await;
    watcher.join("r").await;
    let mut bob = app.client("bob").await;
    let mut bob2 = app.client("bob").await;
    let joined = bob.join("r").await;
    assert_eq!(joined["members"], json!([{"id": "bob", "name": "bob"}, {"id": "watcher", "name": "watcher"}]));
    let online = watcher.recv().await;
    assert_eq!(
        online,
        json!({"type": "presence", "room": "r", "user": {"id": "bob", "name": "bob"}, "state": "online"})
    );
    bob2.join("r").await;
    watcher.expect_silence(QUIET).await; // bob was already online
                                         // bob's own sessions never see bob's presence.
    bob.expect_silence(Duration::from_millis(50)).await;
    bob.request(json!({"type": "leave", "room": "r"})).await;
    watcher.expect_silence(QUIET).await; // bob2 is still there
    drop(bob2); // disconnect is a leave too
    let offline = watcher.recv().await;
    assert_eq!(offline["type"], "presence");
    assert_eq!(offline["state"], "offline");
    assert_eq!(offline["user"]["id"], "bob");
    let members = watcher.request(json!({"type": "members", "room": "r"})).await;
    assert_eq!(
        members,
        json!({"type": "members", "re": 2, "room": "r", "members": [{"id": "watcher", "name": "watcher"}]})
    );
}

#[tokio::test]
async fn members_works_without_joining() {
    let app = spawn_app(|_| {});
    let mut a = app.client("a").await;
    a.join("r").await;
    let mut outsider = app.client("z").await;
    let members = outsider.request(json!({"type": "members", "room": "r"})).await;
    assert_eq!(members["members"], json!([{"id": "a", "name": "a"}]));
    let empty = outsider.request(json!({"type": "members", "room": "nobody"})).await;
    assert_eq!(empty["members"], json!([]));
}

#[tokio::test]
async fn typing_is_relayed_throttled_and_stopped() {
    let app = spawn_app(|_| {});
    let mut typist = app.client("t").await;
    let mut reader = app.client("r").await;
    typist.join("room").await;
    reader.join("room").await;
    typist.recv_type("presence").await;
    typist.send(json!({"type": "typing", "room": "room"})).await;
    let start = reader.recv().await;
    assert_eq!(start, json!({"type": "typing", "room": "room", "user": {"id": "t", "name": "t"}, "state": "start"}));
    // More starts within a second are dropped silently.
    for _ in 0..3 {
        typist.send(json!({"type": "typing", "room": "room", "state": "start"})).await;
    }
    reader.expect_silence(Duration::from_millis(200)).await;
    typist.send(json!({"type": "typing", "room": "room", "state": "stop"})).await;
    assert_eq!(reader.recv().await["state"], "stop", "a stop after a relayed start is relayed");
    // A stop does not reopen the one-per-second window for starts.
    for _ in 0..3 {
        typist.send(json!({"type": "typing", "room": "room"})).await;
        typist.send(json!({"type": "typing", "room": "room", "state": "stop"})).await;
    }
    reader.expect_silence(Duration::from_millis(200)).await;
    // The typist never hears itself and gets no reply. (That a start goes
    // through again after the interval is tested in `typing.rs`, on injected time.)
    typist.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn typing_start_ends_by_itself_after_5_seconds() {
    let app = spawn_app(|_| {});
    let mut typist = app.client("t").await;
    let mut reader = app.client("r").await;
    typist.join("room").await;
    reader.join("room").await;
    typist.send(json!({"type": "typing", "room": "room"})).await;
    assert_eq!(reader.recv().await["state"], "start");
    let started = Instant::now();
    let stop = reader.try_recv(Duration::from_secs(7)).await.expect("an automatic stop");
    assert_eq!(stop["state"], "stop");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(4_500) && waited < Duration::from_millis(6_500), "{waited:?}");
}

#[tokio::test]
async fn typing_user_leaving_ends_typing() {
    let app = spawn_app(|_| {});
    let mut typist = app.client("t").await;
    let mut reader = app.client("r").await;
    typist.join("room").await;
    reader.join("room").await;
    typist.send(json!({"type": "typing", "room": "room"})).await;
    assert_eq!(reader.recv().await["state"], "start");
    drop(typist);
    let stop = reader.recv().await;
    assert_eq!((stop["type"].as_str(), stop["state"].as_str()), (Some("typing"), Some("stop")));
    assert_eq!(reader.recv().await["state"], "offline");
}
