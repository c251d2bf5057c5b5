//! Protocol 1.1, part 1: room events (edits, deletes, reactions, replies),
//! read state (cursors, receipts, unread counts, inbox) and presence status.
//!
//! Each scenario takes a list of gateways and spreads its clients over them:
//! one gateway here (the embedded engine, or Redis under
//! `GATEWAY_TEST_ENGINE=redis`), three gateways on standalone Redis and on a
//! Redis Cluster in `cluster.rs`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Client, TestApp};

const QUIET: Duration = Duration::from_millis(300);

fn on(apps: &[TestApp], i: usize) -> &TestApp {
    &apps[i % apps.len()]
}

/// Reads for `quiet`; fails on any frame `unwanted` matches (others are skipped).
async fn none_of(c: &mut Client, quiet: Duration, unwanted: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + quiet;
    while let Some(frame) = c.try_recv(deadline.saturating_duration_since(Instant::now())).await {
        assert!(!unwanted(&frame), "unexpected {frame}");
    }
}

fn of_type(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |frame| frame["type"] == kind
}

fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap_or("")
}

/// Edits, deletes, reactions and replies: authorship, `not_found`, scrubbing,
/// idempotent repeats, `changed: false`, and the history as delivered.
pub async fn room_events_across(apps: &[TestApp]) {
    let mut alice = on(apps, 0).client("alice").await;
    let mut bob = on(apps, 1).client("bob").await;
    let mut alice_phone = on(apps, 2).client("alice").await;
    for c in [&mut alice, &mut bob, &mut alice_phone] {
        c.join("ev").await;
    }
    let sent = alice.say("ev", "hello").await;
    assert_eq!(sent["seq"], 1);
    for c in [&mut alice, &mut bob, &mut alice_phone] {
        assert_eq!(c.recv_type("message").await["text"], "hello");
    }

    for refused in [
        json!({"type": "edit", "room": "ev", "target": 1, "text": "mine"}),
        json!({"type": "delete", "room": "ev", "target": 1}),
    ] {
        assert_eq!(code(&bob.request(refused).await), "forbidden", "only the author");
    }
    let edit = json!({"type": "edit", "room": "ev", "target": 1, "text": "hello!", "client_id": "e1"});
    let edited = alice.request(edit.clone()).await;
    assert_eq!((&edited["type"], &edited["seq"]), (&json!("ack"), &json!(2)), "{edited}");
    for c in [&mut alice, &mut bob, &mut alice_phone] {
        let frame = c.recv_type("edit").await;
        let seen = (&frame["seq"], &frame["target"], &frame["text"], &frame["from"]["id"]);
        assert_eq!(seen, (&json!(2), &json!(1), &json!("hello!"), &json!("alice")));
    }
    let repeated = alice_phone.request(edit).await;
    assert_eq!((&repeated["seq"], &repeated["ts"]), (&edited["seq"], &edited["ts"]), "same client_id, same ack");
    none_of(&mut bob, QUIET, of_type("edit")).await;

    let react = json!({"type": "react", "room": "ev", "target": 1, "emoji": "👍"});
    assert_eq!(bob.request(react.clone()).await["seq"], 3);
    for c in [&mut alice, &mut bob, &mut alice_phone] {
        let frame = c.recv_type("reaction").await;
        assert_eq!((&frame["emoji"], &frame["op"], &frame["target"]), (&json!("👍"), &json!("add"), &json!(1)));
    }
    let again = bob.request(react).await;
    assert_eq!((&again["type"], &again["changed"], again.get("seq")), (&json!("ack"), &json!(false), None));
    let not_held =
        bob.request(json!({"type": "react", "room": "ev", "target": 1, "emoji": "🎉", "op": "remove"})).await;
    assert_eq!(not_held["changed"], false);
    none_of(&mut alice, QUIET, of_type("reaction")).await;

    let reply = bob.request(json!({"type": "send", "room": "ev", "text": "hi back", "reply_to": 1})).await;
    assert_eq!(reply["seq"], 4);
    assert_eq!(alice.recv_type("message").await["reply_to"], 1);
    for (frame, expected) in [
        (json!({"type": "send", "room": "ev", "text": "x", "reply_to": 99}), "not_found"),
        (json!({"type": "edit", "room": "ev", "target": 99, "text": "x"}), "not_found"),
        (json!({"type": "react", "room": "ev", "target": 2, "emoji": "👍"}), "not_found"),
        (json!({"type": "edit", "room": "ev", "target": 1, "text": ""}), "bad_request"),
        (json!({"type": "edit", "room": "ev", "target": 1, "text": "x".repeat(5_000)}), "too_large"),
        (json!({"type": "react", "room": "ev", "target": 1, "emoji": "two words"}), "bad_request"),
        (json!({"type": "react", "room": "ev", "target": 1, "emoji": "👍", "op": "flip"}), "bad_request"),
        (json!({"type": "delete", "room": "elsewhere", "target": 1}), "not_joined"),
        (json!({"type": "dm", "to": "bob", "text": "x", "reply_to": 1}), "bad_request"),
    ] {
        assert_eq!(code(&alice.request(frame.clone()).await), expected, "{frame}");
    }

    assert_eq!(alice.request(json!({"type": "delete", "room": "ev", "target": 1})).await["seq"], 5);
    for c in [&mut alice, &mut bob, &mut alice_phone] {
        let frame = c.recv_type("delete").await;
        assert_eq!((&frame["seq"], &frame["target"]), (&json!(5), &json!(1)));
    }
    for frame in [
        json!({"type": "edit", "room": "ev", "target": 1, "text": "back"}),
        json!({"type": "delete", "room": "ev", "target": 1}),
        json!({"type": "react", "room": "ev", "target": 1, "emoji": "👍", "op": "remove"}),
        json!({"type": "send", "room": "ev", "text": "x", "reply_to": 1}),
    ] {
        assert_eq!(code(&alice.request(frame.clone()).await), "not_found", "a deleted message takes nothing: {frame}");
    }

    let history = bob.request(json!({"type": "history", "room": "ev"})).await;
    let events = history["messages"].as_array().expect("messages");
    assert_eq!(
        events.iter().map(|e| e["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["message", "edit", "reaction", "message", "delete"]
    );
    assert_eq!((events[0].get("text"), &events[0]["deleted"], &events[0]["seq"]), (None, &json!(true), &json!(1)));
    assert_eq!(events[0]["ts"], sent["ts"], "seq, from and ts stay");
    assert_eq!((events[1].get("text"), &events[1]["deleted"]), (None, &json!(true)), "the edit is scrubbed too");
    assert_eq!(events[3]["text"], "hi back");
    let mut carol = on(apps, 2).client("carol").await;
    let joined = carol.join("ev").await;
    assert_eq!(joined["history"], history["messages"], "join replays the history as the history reply has it");
    let resumed = carol.request(json!({"type": "join", "room": "ev", "since": 3, "epoch": joined["epoch"]})).await;
    assert_eq!((&resumed["recovered"], &resumed["history"][0]["seq"]), (&json!(true), &json!(4)));
}

/// Cursors, `cursor` replies, receipts (throttled, the last one always) to
/// the room and the reader's other sessions, DM read state, and `inbox`.
pub async fn read_state_across(apps: &[TestApp]) {
    let mut bob = on(apps, 2).client("rs-bob").await;
    bob.join("rs").await;
    for text in ["1", "2", "3"] {
        bob.say("rs", text).await;
    }
    let mut alice = on(apps, 0).client("rs-alice").await;
    let joined = alice.join("rs").await;
    assert_eq!((&joined["read_seq"], &joined["unread"]), (&json!(3), &json!(0)), "a first join reads up to now");
    for text in ["4", "5"] {
        bob.say("rs", text).await;
    }
    let mut alice_tab = on(apps, 1).client("rs-alice").await;
    let joined = alice_tab.join("rs").await;
    assert_eq!((&joined["read_seq"], &joined["unread"]), (&json!(3), &json!(2)), "the same cursor on every device");
    let mut alice_phone = on(apps, 2).client("rs-alice").await; // in no room

    let cursor = alice.request(json!({"type": "read", "room": "rs", "seq": 4})).await;
    assert_eq!(cursor, json!({"type": "cursor", "re": cursor["re"], "room": "rs", "seq": 4, "unread": 1}));
    let started = Instant::now();
    for c in [&mut bob, &mut alice_tab, &mut alice_phone] {
        let receipt = c.recv_type("receipt").await;
        assert_eq!(
            (&receipt["room"], &receipt["user"]["id"], &receipt["seq"]),
            (&json!("rs"), &json!("rs-alice"), &json!(4))
        );
    }
    let backwards = alice.request(json!({"type": "read", "room": "rs", "seq": 2})).await;
    assert_eq!((&backwards["seq"], &backwards["unread"]), (&json!(4), &json!(1)), "never backwards");
    for text in ["6", "7", "8"] {
        bob.say("rs", text).await;
    }
    // Within a second of the last receipt: held, and only the latest goes out.
    for seq in [6, 7, 99] {
        let cursor = alice.request(json!({"type": "read", "room": "rs", "seq": seq})).await;
        assert_eq!(cursor["seq"], seq.min(8), "a seq above the latest is the latest");
    }
    let trailing = bob.recv_type("receipt").await;
    assert_eq!(trailing["seq"], 8, "the last receipt always goes out");
    assert!(started.elapsed() >= Duration::from_millis(900), "held for the interval: {:?}", started.elapsed());
    assert_eq!(alice_phone.recv_type("receipt").await["seq"], 8);
    none_of(&mut bob, Duration::from_millis(1_200), of_type("receipt")).await;
    none_of(&mut alice, QUIET, of_type("receipt")).await;

    bob.request(json!({"type": "delete", "room": "rs", "target": 8})).await;
    let joined = alice_phone.join("rs").await;
    assert_eq!((&joined["read_seq"], &joined["unread"]), (&json!(8), &json!(0)));

    let dm = bob.request(json!({"type": "dm", "to": "rs-alice", "text": "psst"})).await;
    assert_eq!(dm["seq"], 1);
    let inbox = alice_tab.request(json!({"type": "inbox"})).await;
    let dms = inbox["dms"].as_array().expect("dms");
    assert_eq!(
        (&dms[0]["dm"], &dms[0]["seq"], &dms[0]["read_seq"], &dms[0]["unread"]),
        (&json!("rs-bob"), &json!(1), &json!(0), &json!(1))
    );
    assert_eq!(dms[0]["last"]["text"], "psst");
    let rooms = inbox["rooms"].as_array().expect("rooms");
    assert_eq!(rooms.len(), 1, "{inbox}");
    let room = &rooms[0];
    assert_eq!(
        (&room["room"], &room["seq"], &room["read_seq"], &room["unread"]),
        (&json!("rs"), &json!(9), &json!(8), &json!(0))
    );
    let last = &room["last"];
    assert_eq!(
        (&last["seq"], &last["deleted"], last.get("text")),
        (&json!(8), &json!(true), None),
        "as the history holds it"
    );

    let read_dm = alice.request(json!({"type": "read", "dm": "rs-bob", "seq": 1})).await;
    assert_eq!((&read_dm["dm"], &read_dm["seq"], &read_dm["unread"]), (&json!("rs-bob"), &json!(1), &json!(0)));
    let seen = bob.recv_type("receipt").await;
    assert_eq!((&seen["dm"], &seen["user"]["id"], &seen["seq"]), (&json!("rs-alice"), &json!("rs-alice"), &json!(1)));
    let mine = loop {
        let receipt = alice_tab.recv_type("receipt").await; // the room's came first
        if receipt.get("dm").is_some() {
            break receipt;
        }
    };
    assert_eq!((&mine["dm"], &mine["seq"]), (&json!("rs-bob"), &json!(1)), "named as its receiver sees it");

    // Newest activity first.
    alice.join("rs-new").await;
    bob.join("rs-new").await;
    bob.say("rs-new", "fresh").await;
    let inbox = alice.request(json!({"type": "inbox"})).await;
    let order: Vec<_> = inbox["rooms"].as_array().unwrap().iter().map(|r| r["room"].as_str().unwrap()).collect();
    assert_eq!(order, ["rs-new", "rs"]);
    assert_eq!(inbox["rooms"][0]["unread"], 1);
    for bad in [json!({"type": "read", "room": "rs", "dm": "x", "seq": 1}), json!({"type": "read", "seq": 1})] {
        assert_eq!(code(&alice.request(bad).await), "bad_request");
    }
}

/// A status is the user's across nodes, goes out as `presence` with
/// `status`, shows in `members`, is throttled, and ends with the user's last
/// session.
pub async fn status_across(apps: &[TestApp]) {
    let mut alice = on(apps, 0).client("st-alice").await;
    let mut alice_phone = on(apps, 1).client("st-alice").await;
    let mut bob = on(apps, 2).client("st-bob").await;
    alice.join("st").await;
    alice_phone.join("st").await;
    bob.join("st").await;
    alice.recv_type("presence").await;
    let reply = alice.request(json!({"type": "status", "state": "away", "text": "lunch"})).await;
    assert_eq!(reply, json!({"type": "status", "re": reply["re"], "state": "away", "text": "lunch"}));
    let presence = bob.recv_type("presence").await;
    assert_eq!(
        (&presence["user"]["id"], &presence["state"], &presence["status"]),
        (&json!("st-alice"), &json!("online"), &json!({"state": "away", "text": "lunch"}))
    );
    let members = bob.request(json!({"type": "members", "room": "st"})).await;
    let listed = members["members"].as_array().unwrap().iter().find(|m| m["id"] == "st-alice").cloned().unwrap();
    assert_eq!(listed["status"], json!({"state": "away", "text": "lunch"}));
    assert!(members["members"].as_array().unwrap().iter().all(|m| m["id"] != "st-bob" || m.get("status").is_none()));

    // Two changes within a second: the latest goes out, once, after it (the
    // throttle is per node: changes from two nodes may both go out).
    alice.request(json!({"type": "status", "state": "busy", "text": "b1"})).await;
    alice.request(json!({"type": "status", "state": "busy", "text": "b2"})).await;
    let latest = bob.recv_type("presence").await;
    assert_eq!(latest["status"], json!({"state": "busy", "text": "b2"}));
    none_of(&mut bob, Duration::from_millis(1_200), of_type("presence")).await;

    let mut carol = on(apps, 1).client("st-carol").await;
    let joined = carol.join("st").await;
    let seen = joined["members"].as_array().unwrap().iter().find(|m| m["id"] == "st-alice").cloned().unwrap();
    assert_eq!(seen["status"]["text"], "b2", "a joiner sees it");
    let too_long = json!({"type": "status", "state": "online", "text": "x".repeat(129)});
    assert_eq!(code(&alice.request(too_long).await), "bad_request");
    assert_eq!(code(&alice.request(json!({"type": "status", "state": "gone"})).await), "bad_request");

    drop(alice);
    // alice's phone is still there.
    none_of(&mut bob, QUIET, |f| f["type"] == "presence" && f["user"]["id"] == "st-alice").await;
    let members = carol.request(json!({"type": "members", "room": "st"})).await;
    assert!(members["members"].as_array().unwrap().iter().any(|m| m["status"]["text"] == "b2"), "{members}");
    drop(alice_phone);
    let offline = bob.recv_type("presence").await;
    assert_eq!((&offline["state"], &offline["user"]["id"]), (&json!("offline"), &json!("st-alice")));
    let mut back = on(apps, 0).client("st-alice").await;
    back.join("st").await;
    let online = bob.recv_type("presence").await;
    assert_eq!((&online["state"], online.get("status")), (&json!("online"), None), "ended with the last session");
}

fn fast(s: &mut gateway::Settings) {
    s.gateway.limits.messages_per_second = 1_000;
}

#[tokio::test]
async fn room_events_on_one_gateway() {
    let app = spawn_app(fast);
    room_events_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn read_state_on_one_gateway() {
    let app = spawn_app(fast);
    read_state_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn status_on_one_gateway() {
    let app = spawn_app(fast);
    status_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn a_message_holds_at_most_50_distinct_emoji() {
    let app = spawn_app(fast);
    let (mut alice, mut bob): (Client, Client) = (app.client("alice").await, app.client("bob").await);
    alice.join("emoji").await;
    bob.join("emoji").await;
    alice.say("emoji", "react to me").await;
    for i in 0..50 {
        let emoji = char::from_u32(0x1F600 + i).unwrap().to_string();
        let ack = alice.request(json!({"type": "react", "room": "emoji", "target": 1, "emoji": emoji})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let one_more = alice.request(json!({"type": "react", "room": "emoji", "target": 1, "emoji": "🎉"})).await;
    assert_eq!(code(&one_more), "bad_request");
    let held = bob.request(json!({"type": "react", "room": "emoji", "target": 1, "emoji": "😀"})).await;
    assert_eq!(held["type"], "ack", "an emoji the message holds takes more users: {held}");
    let history = bob.request(json!({"type": "history", "room": "emoji", "limit": 1})).await;
    assert_eq!(history["messages"][0]["seq"], 52, "the 51st stored nothing");
}

/// The same scenarios across three gateways on one Redis.
mod cluster {
    use super::*;
    use crate::helpers::{spawn_cluster, wait_ready, RedisCluster, RedisServer};

    async fn all(apps: &[TestApp]) {
        room_events_across(apps).await;
        read_state_across(apps).await;
        status_across(apps).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chat_features_across_three_gateways_on_standalone_redis() {
        let redis = RedisServer::start();
        let apps = spawn_cluster(3, &redis.url(), fast);
        wait_ready(&apps).await;
        all(&apps).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chat_features_across_three_gateways_on_a_redis_cluster() {
        let cluster = RedisCluster::start();
        let apps = spawn_cluster(3, &cluster.url(), fast);
        wait_ready(&apps).await;
        all(&apps).await;
    }
}
