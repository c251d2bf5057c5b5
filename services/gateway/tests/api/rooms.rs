//! Rooms: join, leave, send, history, resume, idempotency, DMs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{admin_post, spawn_app};

const QUIET: Duration = Duration::from_millis(300);

fn seqs(messages: &Value) -> Vec<u64> {
    messages.as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn send_reaches_every_session_in_the_room_and_only_them() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    let mut alice2 = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let mut carol = app.client("carol").await;
    alice.join("r").await;
    alice2.join("r").await;
    bob.join("r").await;
    carol.join("elsewhere").await;
    let ack = alice.request(json!({"type": "send", "room": "r", "text": "hello"})).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["room"], "r");
    assert_eq!(ack["seq"], 1);
    let ts = ack["ts"].as_u64().unwrap();
    for client in [&mut alice, &mut alice2, &mut bob] {
        let msg = client.recv_type("message").await;
        assert_eq!(
            msg,
            json!({"type": "message", "room": "r", "seq": 1, "from": {"id": "alice", "name": "alice"},
                   "text": "hello", "ts": ts})
        );
    }
    carol.expect_silence(QUIET).await;
}

#[tokio::test]
async fn many_rooms_per_connection() {
    let app = spawn_app(|_| {});
    let mut a = app.client("a").await;
    let mut b = app.client("b").await;
    for room in ["one", "two", "three"] {
        a.join(room).await;
    }
    b.join("two").await;
    a.recv_type("presence").await;
    b.say("two", "in two").await;
    let msg = a.recv_type("message").await;
    assert_eq!((msg["room"].as_str(), msg["seq"].as_u64()), (Some("two"), Some(1)));
    a.say("three", "in three").await;
    let own = a.recv_type("message").await;
    assert_eq!(own["room"], "three");
    b.recv_type("message").await; // b's own copy in "two"
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn send_needs_a_joined_room_and_leave_stops_delivery() {
    let app = spawn_app(|_| {});
    let mut a = app.client("a").await;
    let mut b = app.client("b").await;
    assert_eq!(a.request(json!({"type": "send", "room": "r", "text": "x"})).await["code"], "not_joined");
    assert_eq!(a.request(json!({"type": "typing", "room": "r"})).await["code"], "not_joined");
    a.join("r").await;
    b.join("r").await;
    assert_eq!(a.recv().await["type"], "presence");
    let left = a.request(json!({"type": "leave", "room": "r"})).await;
    assert_eq!(left, json!({"type": "left", "re": 4, "room": "r"}));
    let again = a.request(json!({"type": "leave", "room": "r"})).await;
    assert_eq!(again["type"], "left", "leaving twice is not an error");
    b.say("r", "after").await;
    a.expect_silence(QUIET).await;
    assert_eq!(a.request(json!({"type": "send", "room": "r", "text": "x"})).await["code"], "not_joined");
}

#[tokio::test]
async fn join_replays_the_newest_messages_oldest_first() {
    let app = spawn_app(|s| s.gateway.limits.messages_per_second = 1_000);
    let mut a = app.client("a").await;
    a.join("r").await;
    for i in 1..=60 {
        a.say("r", &format!("m{i}")).await;
    }
    let mut b = app.client("b").await;
    let joined = b.join("r").await;
    assert_eq!(joined["seq"], 60);
    assert_eq!(joined["recovered"], false);
    assert!(joined["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(seqs(&joined["history"]), (11..=60).collect::<Vec<_>>(), "default limit 50");
    let first = &joined["history"][0];
    assert_eq!(first["type"], "message", "history entries are message frames");
    assert_eq!(first["text"], "m11");
    assert_eq!(joined["members"], json!([{"id": "a", "name": "a"}, {"id": "b", "name": "b"}]));
    let joined = b.request(json!({"type": "join", "room": "r", "limit": 3})).await;
    assert_eq!(seqs(&joined["history"]), vec![58, 59, 60], "joining again is answered again");
    let empty = b.request(json!({"type": "join", "room": "never", "limit": 0})).await;
    assert_eq!((empty["seq"].as_u64(), empty["history"].clone()), (Some(0), json!([])));
}

#[tokio::test]
async fn history_keeps_the_last_1000_and_clamps_limits() {
    let app = spawn_app(|s| s.gateway.admin.api_key = Some("k".into()));
    for i in 1..=1005 {
        let (status, _) = admin_post(&app, "k", "/v1/rooms/big/messages", json!({"text": format!("m{i}")})).await;
        assert_eq!(status, 200);
    }
    let mut c = app.client("c").await;
    let joined = c.request(json!({"type": "join", "room": "big", "limit": 5000})).await;
    assert_eq!(joined["seq"], 1005);
    assert_eq!(seqs(&joined["history"]), (6..=1005).collect::<Vec<_>>(), "the 1001st message pushed out the 1st");
    let page = c.request(json!({"type": "history", "room": "big", "limit": 5000})).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1000);
    let page = c.request(json!({"type": "history", "room": "big", "before": 10, "limit": 50})).await;
    assert_eq!(seqs(&page["messages"]), vec![6, 7, 8, 9], "nothing older than the window");
}

#[tokio::test]
async fn history_pages_backwards() {
    let app = spawn_app(|s| s.gateway.limits.messages_per_second = 1_000);
    let mut a = app.client("a").await;
    a.join("r").await;
    for i in 1..=20 {
        a.say("r", &format!("m{i}")).await;
    }
    let mut reader = app.client("reader").await;
    let page = reader.request(json!({"type": "history", "room": "r", "limit": 5})).await;
    assert_eq!(page["type"], "history");
    assert_eq!(page["room"], "r");
    assert_eq!(seqs(&page["messages"]), vec![16, 17, 18, 19, 20], "works without joining");
    let page = reader.request(json!({"type": "history", "room": "r", "before": 16, "limit": 5})).await;
    assert_eq!(seqs(&page["messages"]), vec![11, 12, 13, 14, 15]);
    let page = reader.request(json!({"type": "history", "room": "r", "before": 3})).await;
    assert_eq!(seqs(&page["messages"]), vec![1, 2]);
    let page = reader.request(json!({"type": "history", "room": "r"})).await;
    assert_eq!(seqs(&page["messages"]), (1..=20).collect::<Vec<_>>(), "default limit 50");
    let page = reader.request(json!({"type": "history", "room": "empty"})).await;
    assert_eq!(page["messages"], json!([]));
}

#[tokio::test]
async fn resume_with_since_and_epoch() {
    let app = spawn_app(|s| {
        s.cluster.history.size = 10;
        s.gateway.limits.messages_per_second = 1_000;
    });
    let mut a = app.client("a").await;
    let first = a.join("r").await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    for i in 1..=8 {
        a.say("r", &format!("m{i}")).await;
    }
    let mut b = app.client("b").await;
    let resumed = b.request(json!({"type": "join", "room": "r", "since": 5, "epoch": epoch, "limit": 1})).await;
    assert_eq!(seqs(&resumed["history"]), vec![6, 7, 8], "limit is ignored with since");
    assert_eq!(resumed["recovered"], true);
    let resumed = b.request(json!({"type": "join", "room": "r", "since": 8, "epoch": epoch})).await;
    assert_eq!((resumed["history"].clone(), resumed["recovered"].clone()), (json!([]), json!(true)));
    let resumed = b.request(json!({"type": "join", "room": "r", "since": 3})).await;
    assert_eq!(resumed["recovered"], true, "epoch is optional");
    let ahead = b.request(json!({"type": "join", "room": "r", "since": 99, "epoch": epoch})).await;
    assert_eq!((ahead["history"].clone(), ahead["recovered"].clone()), (json!([]), json!(false)));
    let other_epoch = b.request(json!({"type": "join", "room": "r", "since": 5, "epoch": "not-it"})).await;
    assert_eq!(other_epoch["recovered"], false);
    assert_eq!(seqs(&other_epoch["history"]).last(), Some(&8), "a lost history starts afresh");
    for i in 9..=20 {
        a.say("r", &format!("m{i}")).await;
    }
    let too_old = b.request(json!({"type": "join", "room": "r", "since": 5, "epoch": epoch})).await;
    assert_eq!(seqs(&too_old["history"]), (11..=20).collect::<Vec<_>>(), "at most the history size");
    assert_eq!(too_old["recovered"], false, "messages 6..10 were lost");
}

#[tokio::test]
async fn client_id_makes_sends_idempotent() {
    let app = spawn_app(|_| {});
    let mut a = app.client("a").await;
    let mut b = app.client("b").await;
    a.join("r").await;
    b.join("r").await;
    let first = a.request(json!({"type": "send", "room": "r", "text": "once", "client_id": "c-1"})).await;
    let again = a.request(json!({"type": "send", "room": "r", "text": "once", "client_id": "c-1"})).await;
    assert_eq!((first["seq"].clone(), first["ts"].clone()), (again["seq"].clone(), again["ts"].clone()));
    let msg = b.recv_type("message").await;
    assert_eq!(msg["client_id"], "c-1");
    b.expect_silence(QUIET).await;
    // Another user may use the same client_id.
    let other = b.request(json!({"type": "send", "room": "r", "text": "mine", "client_id": "c-1"})).await;
    assert_eq!(other["seq"], 2);
    let history = a.request(json!({"type": "history", "room": "r"})).await;
    assert_eq!(seqs(&history["messages"]), vec![1, 2]);
    let bad = a.request(json!({"type": "send", "room": "r", "text": "x", "client_id": "c".repeat(129)})).await;
    assert_eq!(bad["code"], "bad_request");
}

#[tokio::test]
async fn dm_reaches_the_recipient_and_the_senders_other_sessions() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    let mut alice_phone = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let mut bob_phone = app.client("bob").await;
    let ack = alice.request(json!({"type": "dm", "to": "bob", "text": "psst", "client_id": "d1"})).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["to"], "bob");
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["delivered"], true);
    let expected = json!({"type": "dm", "from": {"id": "alice", "name": "alice"}, "to": "bob", "text": "psst",
                          "ts": ack["ts"], "seq": 1, "client_id": "d1"});
    assert_eq!(bob.recv().await, expected);
    assert_eq!(bob_phone.recv().await, expected);
    assert_eq!(alice_phone.recv().await, expected, "the sender's other session gets a copy");
    alice.expect_silence(QUIET).await;
    let reply = bob.request(json!({"type": "dm", "to": "alice", "text": "hey"})).await;
    assert_eq!(reply["seq"], 2, "one conversation, one seq");
    let again = alice.request(json!({"type": "dm", "to": "bob", "text": "psst", "client_id": "d1"})).await;
    assert_eq!(again["seq"], 1, "idempotent");
}

#[tokio::test]
async fn offline_dms_arrive_right_after_welcome() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    for text in ["one", "two"] {
        let ack = alice.request(json!({"type": "dm", "to": "zoe", "text": text})).await;
        assert_eq!(ack["delivered"], false);
    }
    let mut zoe = app.client("zoe").await; // welcome checked by the helper
    assert_eq!(zoe.recv().await["text"], "one");
    assert_eq!(zoe.recv().await["text"], "two");
    // Reading on lets the client's stack answer the ping that follows the
    // queued DMs; that pong is what clears them.
    assert_eq!(zoe.request(json!({"type": "ping"})).await["type"], "pong");
    zoe.expect_silence(Duration::from_millis(100)).await;
    app.wait_offline_empty("zoe").await;
    drop(zoe);
    let mut zoe = app.client("zoe").await;
    zoe.expect_silence(QUIET).await;
}

#[tokio::test]
async fn offline_dms_survive_a_disconnect_during_delivery() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    for i in 1..=3 {
        let ack = alice.request(json!({"type": "dm", "to": "zoe", "text": format!("m{i}")})).await;
        assert_eq!(ack["delivered"], false);
    }
    // Zoe's connection drops after reading one of the three.
    let mut zoe = app.client("zoe").await;
    assert_eq!(zoe.recv().await["text"], "m1");
    drop(zoe);
    app.wait_sessions(1).await;
    // Nothing was confirmed, so all three come again, in order.
    let mut zoe = app.client("zoe").await;
    let texts: Vec<Value> = [zoe.recv().await, zoe.recv().await, zoe.recv().await].map(|f| f["text"].clone()).into();
    assert_eq!(texts, [json!("m1"), json!("m2"), json!("m3")]);
    // A live DM sent meanwhile comes after them.
    alice.request(json!({"type": "dm", "to": "zoe", "text": "live"})).await;
    assert_eq!(zoe.recv().await["text"], "live");
    assert_eq!(zoe.request(json!({"type": "ping"})).await["type"], "pong");
    app.wait_offline_empty("zoe").await;
    drop(zoe);
    let mut zoe = app.client("zoe").await;
    zoe.expect_silence(QUIET).await;
}

#[tokio::test]
async fn too_many_rooms_on_one_connection() {
    let app = spawn_app(|s| s.gateway.limits.max_rooms_per_connection = 2);
    let mut c = app.client("c").await;
    c.join("a").await;
    c.join("b").await;
    let err = c.request(json!({"type": "join", "room": "c"})).await;
    assert_eq!(err["code"], "bad_request");
    c.join("a").await; // re-joining a room it is in is fine
}

#[tokio::test]
async fn a_large_offline_backlog_arrives_whole_in_confirmed_batches() {
    // 30 DMs of ~750 bytes pass a 8 KiB outbox only in batches.
    let app = spawn_app(|s| {
        s.gateway.limits.max_frame_bytes = 4_096;
        s.gateway.limits.max_text_bytes = 1_000;
        s.gateway.limits.max_outbox_bytes = 8_192;
        s.gateway.limits.messages_per_second = 100;
    });
    let mut alice = app.client("alice").await;
    let text = "x".repeat(600);
    for i in 0..30 {
        let ack = alice.request(json!({"type": "dm", "to": "zoe", "text": format!("{i:02}{text}")})).await;
        assert_eq!(ack["delivered"], false);
    }
    let mut zoe = app.client("zoe").await;
    for i in 0..30 {
        let dm = zoe.recv().await;
        assert_eq!(dm["seq"], i + 1, "{dm}");
        assert!(dm["text"].as_str().unwrap().starts_with(&format!("{i:02}")));
    }
    assert_eq!(zoe.request(json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn a_room_idle_past_the_retention_starts_afresh_under_a_new_epoch() {
    // 0.00001 days is 0.86 seconds. (The stores' expiry itself is tested on
    // paused time in history-store's conformance suite.)
    let app = spawn_app(|s| s.cluster.history.retention_days = 0.00001);
    let mut c = app.client("c").await;
    c.join("idle").await;
    c.say("idle", "old").await;
    assert_eq!(c.message_seqs(1).await, [1], "her own copy");
    let epoch = c.join("idle").await["epoch"].clone();
    let mut late = app.client("late").await;
    let resume = json!({"type": "join", "room": "idle", "since": 1, "epoch": epoch});
    let mut resumed = late.request(resume.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while resumed["seq"] != 0 {
        assert!(std::time::Instant::now() < deadline, "the room never expired: {resumed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        resumed = late.request(resume.clone()).await;
    }
    assert_eq!((&resumed["seq"], &resumed["recovered"], &resumed["history"]), (&json!(0), &json!(false), &json!([])));
    assert_ne!(resumed["epoch"], epoch);
    assert_eq!(late.say("idle", "new").await["seq"], 1);
    // A session that stayed in the room gets the new history's first message.
    assert_eq!(c.recv_type("message").await["text"], "new");
}

#[tokio::test]
async fn dm_history_pages_both_ways_and_only_ever_reads_the_users_own_conversation() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let mut carol = app.client("carol").await;
    for i in 1..=5 {
        let (from, to) = if i % 2 == 1 { (&mut alice, "bob") } else { (&mut bob, "alice") };
        let ack = from.request(json!({"type": "dm", "to": to, "text": format!("d{i}")})).await;
        assert_eq!(ack["seq"], i, "{ack}");
    }
    carol.request(json!({"type": "dm", "to": "bob", "text": "from carol"})).await;
    let texts = |page: &Value| -> Vec<String> {
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
    };
    let all = alice.request(json!({"type": "history", "dm": "bob"})).await;
    assert_eq!((&all["type"], &all["dm"], all.get("room")), (&json!("history"), &json!("bob"), None), "{all}");
    assert_eq!(seqs(&all["messages"]), [1, 2, 3, 4, 5]);
    assert_eq!(all["messages"][1]["type"], "dm", "each entry is the dm frame as delivered");
    assert_eq!(all["messages"][1]["from"]["id"], "bob");
    let forward = alice.request(json!({"type": "history", "dm": "bob", "after": 2, "limit": 2})).await;
    assert_eq!(seqs(&forward["messages"]), [3, 4], "the oldest after 2");
    let back = alice.request(json!({"type": "history", "dm": "bob", "before": 3})).await;
    assert_eq!(seqs(&back["messages"]), [1, 2]);
    let theirs = bob.request(json!({"type": "history", "dm": "alice", "after": 4})).await;
    assert_eq!((texts(&theirs), &theirs["dm"]), (vec!["d5".to_owned()], &json!("alice")), "the same conversation");
    // Carol's `dm: bob` is carol's conversation with bob, never alice's.
    assert_eq!(texts(&carol.request(json!({"type": "history", "dm": "bob"})).await), ["from carol"]);
    assert_eq!(texts(&carol.request(json!({"type": "history", "dm": "alice"})).await), Vec::<String>::new());
    // `after` pages rooms forwards too.
    alice.join("r").await;
    for i in 1..=4 {
        alice.say("r", &format!("m{i}")).await;
    }
    let room = alice.request(json!({"type": "history", "room": "r", "after": 1, "limit": 2})).await;
    assert_eq!((seqs(&room["messages"]), &room["room"], room.get("dm")), (vec![2, 3], &json!("r"), None));
    for bad in [
        json!({"type": "history"}),
        json!({"type": "history", "room": "r", "dm": "bob"}),
        json!({"type": "history", "dm": "bob", "before": 3, "after": 1}),
    ] {
        assert_eq!(alice.request(bad.clone()).await["code"], "bad_request", "{bad}");
    }
}

/// A join served from the room's recent events on the node gives, byte for
/// byte, what a history read gives: edits, reactions and a delete included.
#[tokio::test]
async fn a_join_from_the_nodes_recent_events_replays_what_the_history_holds() {
    let app = spawn_app(|_| {});
    let mut alice = app.client("alice").await;
    alice.join("busy").await;
    for text in ["one", "two", "three"] {
        alice.say("busy", text).await;
    }
    alice.join("busy").await; // a history read: names the epoch of what the node holds
    for frame in [
        json!({"type": "edit", "room": "busy", "target": 1, "text": "one, edited"}),
        json!({"type": "react", "room": "busy", "target": 2, "emoji": "👍"}),
        json!({"type": "edit", "room": "busy", "target": 3, "text": "three, edited"}),
        json!({"type": "delete", "room": "busy", "target": 3}),
    ] {
        assert_eq!(alice.request(frame).await["type"], "ack");
    }
    alice.say("busy", "four").await;
    let cached = app.metric("chat_join_replays_total{source=\"cache\"}").await;
    let mut bob = app.client("bob").await;
    let joined = bob.request(json!({"type": "join", "room": "busy", "limit": 100})).await;
    assert_eq!(app.metric("chat_join_replays_total{source=\"cache\"}").await, cached + 1.0, "served from the cache");
    let read = bob.request(json!({"type": "history", "room": "busy", "limit": 100})).await;
    assert_eq!(joined["history"], read["messages"], "the cache and the history agree");
    let history = joined["history"].as_array().unwrap();
    assert_eq!(history.len(), 8);
    assert_eq!(history[3]["text"], "one, edited");
    assert!(
        history[5].get("text").is_none() && history[5]["deleted"] == true,
        "the edit of a deleted message: {}",
        history[5]
    );
    assert!(history[2].get("text").is_none() && history[2]["deleted"] == true, "{}", history[2]);

    // A resume from the cache: everything after seq 6, gapless.
    let mut carol = app.client("carol").await;
    let epoch = joined["epoch"].clone();
    let resumed = carol.request(json!({"type": "join", "room": "busy", "since": 6, "epoch": epoch})).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let seqs: Vec<u64> = resumed["history"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [7, 8]);
    assert_eq!(app.metric("chat_join_replays_total{source=\"cache\"}").await, cached + 2.0);
}
