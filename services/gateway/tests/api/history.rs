//! History with the history service: a real `history` process on a real
//! `redis-server` serves `join` replays, `since` resumes and `history` pages
//! to the gateways, which append in their publish path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    eventually, send_until_stopped, spawn_cluster, wait_ready, Client, HistoryProcess, RedisServer, TestApp,
};

/// Seqs of a list of message frames.
fn seqs(messages: &Value) -> Vec<u64> {
    messages.as_array().expect("a list of messages").iter().map(|m| m["seq"].as_u64().expect("a seq")).collect()
}

/// Redis, a history service and `n` gateways reading history from it.
fn stack(
    n: usize,
    env: &[(&str, &str)],
    configure: impl Fn(&mut gateway::Settings),
) -> (RedisServer, HistoryProcess, Vec<TestApp>) {
    let redis = RedisServer::start();
    let history = HistoryProcess::start(&redis.url(), env);
    let url = history.url();
    let apps = spawn_cluster(n, &redis.url(), |s| {
        s.gateway.history_service.url = url.clone();
        s.gateway.limits.messages_per_second = 100_000;
        configure(s);
    });
    (redis, history, apps)
}

/// Sends `n` messages without waiting, then waits for their acks.
async fn publish(client: &mut Client, room: &str, n: usize) {
    for i in 0..n {
        client.send(json!({"type": "send", "room": room, "text": format!("m{i}")})).await;
    }
    let mut acks = 0;
    while acks < n {
        let frame = client.recv().await;
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "ack" {
            acks += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_1000_messages_are_kept_replayed_gapless_and_paged() {
    let (redis, history, apps) = stack(1, &[], |_| {});
    wait_ready(&apps).await;
    let mut sender = apps[0].client("sender").await;
    sender.join("big").await;
    publish(&mut sender, "big", 1000).await;
    let (status, page) = history.get("/v1/rooms/big/messages?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(seqs(&page["messages"]), (1..=1000).collect::<Vec<_>>());

    // The 1001st message pushes out the 1st.
    publish(&mut sender, "big", 1).await;
    let (_, page) = history.get("/v1/rooms/big/messages?limit=1000").await;
    assert_eq!(seqs(&page["messages"]), (2..=1001).collect::<Vec<_>>());

    publish(&mut sender, "big", 99).await;
    assert_eq!(redis.cli(&["llen", "chat:{r:big}:history"]).trim(), "1000");

    // Join replays the newest 1000 (a larger limit is clamped), oldest first.
    let mut joiner = apps[0].client("joiner").await;
    let joined = joiner.request(json!({"type": "join", "room": "big", "limit": 5000})).await;
    assert_eq!(joined["seq"], 1100);
    assert_eq!(seqs(&joined["history"]), (101..=1100).collect::<Vec<_>>());
    assert_eq!(joined["history"][0]["type"], "message");
    assert_eq!(joined["history"][999]["text"], "m98", "the last of the 99");

    // The API pages back in steps of 300 over exactly the same 1000.
    let mut pages = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = history.get(&format!("/v1/rooms/big/messages?limit=300{before}")).await;
        assert_eq!(status, 200);
        assert_eq!(page["seq"], 1100);
        assert_eq!(page["epoch"], joined["epoch"]);
        let got = seqs(&page["messages"]);
        let Some(&first) = got.first() else { break };
        before = format!("&before={first}");
        pages.push(got);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [300, 300, 300, 100]);
    pages.reverse();
    assert_eq!(pages.concat(), (101..=1100).collect::<Vec<_>>());

    // Reading forward: the oldest `limit` after a seq.
    let (_, page) = history.get("/v1/rooms/big/messages?after=1050").await;
    assert_eq!(seqs(&page["messages"]), (1051..=1100).collect::<Vec<_>>());
    let (_, page) = history.get("/v1/rooms/big/messages?after=10&limit=3").await;
    assert_eq!(seqs(&page["messages"]), [101, 102, 103], "the window starts at 101");
    let (_, page) = history.get("/v1/rooms/big/messages?after=500&before=504").await;
    assert_eq!(seqs(&page["messages"]), [501, 502, 503]);

    // The `history` frame pages through the service too.
    let page = joiner.request(json!({"type": "history", "room": "big", "before": 103, "limit": 10})).await;
    assert_eq!(seqs(&page["messages"]), [101, 102]);

    // Idle history expires after 30 days by default.
    let ttl_days = redis.cli(&["pttl", "chat:{r:big}:history"]).trim().parse::<f64>().unwrap() / 86_400_000.0;
    assert!((29.9..=30.0).contains(&ttl_days), "{ttl_days}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_is_gapless_while_three_gateways_send_into_the_room() {
    let (_redis, _history, apps) = stack(3, &[], |_| {});
    wait_ready(&apps).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let mut sender = app.client(&format!("sender{i}")).await;
        sender.join("busy").await;
        senders.push(send_until_stopped(sender, "busy", 5, stop.clone()));
    }
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut joiner = apps[round % 3].client(&format!("joiner{round}")).await;
        let joined = joiner.request(json!({"type": "join", "room": "busy", "limit": 1000})).await;
        let history = seqs(&joined["history"]);
        let last = joined["seq"].as_u64().unwrap();
        assert_eq!(history.last().copied().unwrap_or(0), last, "round {round}: history ends at seq");
        assert!(history.windows(2).all(|w| w[1] == w[0] + 1), "round {round}: history has no gap");
        let live: Vec<u64> = (last + 1..=last + 30).collect();
        assert_eq!(joiner.message_seqs(30).await, live, "round {round}: live continues where history ended");
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        assert!(sender.await.unwrap() > 20, "every gateway kept sending");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_inside_and_beyond_the_window() {
    let (_redis, _history, apps) = stack(1, &[("CHAT_HISTORY__SIZE", "10")], |s| s.cluster.history.size = 10);
    wait_ready(&apps).await;
    let mut sender = apps[0].client("sender").await;
    sender.join("r").await;
    publish(&mut sender, "r", 25).await;
    let mut c = apps[0].client("c").await;
    let epoch = c.join("r").await["epoch"].clone();
    let resume = |since: u64, epoch: &Value| json!({"type": "join", "room": "r", "since": since, "epoch": epoch});

    let inside = c.request(resume(20, &epoch)).await;
    assert_eq!((seqs(&inside["history"]), &inside["recovered"]), ((21..=25).collect(), &json!(true)));
    let current = c.request(resume(25, &epoch)).await;
    assert_eq!((seqs(&current["history"]), &current["recovered"]), (vec![], &json!(true)));
    // Beyond the window: what is left (the newest 10), and not recovered.
    let beyond = c.request(resume(5, &epoch)).await;
    assert_eq!((seqs(&beyond["history"]), &beyond["recovered"]), ((16..=25).collect(), &json!(false)));
    let ahead = c.request(resume(30, &epoch)).await;
    assert_eq!((seqs(&ahead["history"]), &ahead["recovered"]), (vec![], &json!(false)));
    let other_history = c.request(resume(20, &json!("not-this-one"))).await;
    assert_eq!(other_history["recovered"], false);
    assert_eq!(seqs(&other_history["history"]), (16..=25).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_is_whole_when_the_service_pages_in_smaller_parts() {
    // The gateways keep 20, the service answers at most 5 per read.
    let (_redis, _history, apps) = stack(1, &[("CHAT_HISTORY__SIZE", "5")], |s| s.cluster.history.size = 20);
    wait_ready(&apps).await;
    let mut sender = apps[0].client("sender").await;
    sender.join("r").await;
    publish(&mut sender, "r", 15).await;
    let mut c = apps[0].client("c").await;
    let epoch = c.join("r").await["epoch"].clone();
    let resumed = c.request(json!({"type": "join", "room": "r", "since": 2, "epoch": epoch})).await;
    assert_eq!((seqs(&resumed["history"]), &resumed["recovered"]), ((3..=15).collect(), &json!(true)));
    sender.say("r", "live").await;
    assert_eq!(c.message_seqs(1).await, [16], "live continues after the replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_history_service_down_join_and_history_fail_and_sending_works() {
    let (_redis, mut history, apps) = stack(1, &[], |s| s.gateway.history_service.request_timeout_ms = 500);
    wait_ready(&apps).await;
    let mut alice = apps[0].client("alice").await;
    alice.join("r").await;
    alice.say("r", "before").await;
    assert_eq!(alice.message_seqs(1).await, [1], "her own copy");
    // Her second join reads the history, which names the epoch of what the
    // node has seen of the room since.
    alice.join("r").await;

    history.kill();
    let mut bob = apps[0].client("bob").await;
    // A room this gateway holds (alice is in it) is joined from the room's
    // recent events on the node, without the history service.
    let joined = bob.join("r").await;
    let texts: Vec<&Value> = joined["history"].as_array().unwrap().iter().map(|m| &m["text"]).collect();
    assert_eq!(texts, [&json!("before")], "{joined}");
    assert!(apps[0].metric("chat_join_replays_total{source=\"cache\"}").await >= 1.0);
    alice.recv_type("presence").await;
    // A room nobody here is in needs a history read, which fails.
    let mut carol = apps[0].client("carol").await;
    let refused = carol.request(json!({"type": "join", "room": "elsewhere"})).await;
    assert_eq!((&refused["type"], &refused["code"]), (&json!("error"), &json!("unavailable")), "{refused}");
    let page = alice.request(json!({"type": "history", "room": "r"})).await;
    assert_eq!(page["code"], "unavailable");
    let ack = alice.say("r", "during").await;
    assert_eq!(alice.message_seqs(1).await, [ack["seq"].as_u64().unwrap()], "live delivery goes on");
    assert!(apps[0].metric("chat_history_service_failures_total").await >= 2.0);
    let status = reqwest::get(apps[0].http_url("/readyz")).await.unwrap().status();
    assert_eq!(status, 200, "the gateway still serves: sending needs only Redis");
    // A failed join leaves the room untouched: carol is not a member.
    let members = alice.request(json!({"type": "members", "room": "elsewhere"})).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 0, "{members}");

    history.restart();
    eventually("the history service to be ready", || async {
        reqwest::get(format!("{}/readyz", history.url())).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let mut dave = apps[0].client("dave").await;
    let joined = dave.join("r").await;
    let texts: Vec<&Value> = joined["history"].as_array().unwrap().iter().map(|m| &m["text"]).collect();
    assert_eq!(texts, [&json!("before"), &json!("during")]);
    assert_eq!(seqs(&alice.request(json!({"type": "history", "room": "r"})).await["messages"]), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_dms_cross_nodes_and_survive_a_lost_connection() {
    let (_redis, history, apps) = stack(2, &[], |_| {});
    wait_ready(&apps).await;
    let mut alice = apps[0].client("alice").await;
    for text in ["one", "two"] {
        let ack = alice.request(json!({"type": "dm", "to": "bob", "text": text})).await;
        assert_eq!(ack["delivered"], false, "{ack}");
    }
    // Bob comes online on the other node and loses the connection mid-delivery.
    let mut bob = apps[1].client("bob").await;
    assert_eq!(bob.recv().await["text"], "one");
    drop(bob);
    apps[1].wait_sessions(0).await;
    // Back on the first node: both again, in order; this time he reads on.
    let mut bob = apps[0].client("bob").await;
    let (first, second) = (bob.recv().await, bob.recv().await);
    assert_eq!(
        (&first["text"], &first["seq"], &second["text"], &second["seq"]),
        (&json!("one"), &json!(1), &json!("two"), &json!(2))
    );
    assert_eq!(bob.request(json!({"type": "ping"})).await["type"], "pong");
    bob.expect_silence(Duration::from_millis(200)).await;
    apps[0].wait_offline_empty("bob").await;
    drop(bob);
    let mut bob = apps[1].client("bob").await;
    bob.expect_silence(Duration::from_millis(300)).await;

    // The conversation's history, from either side.
    for path in ["/v1/users/alice/conversations/bob/messages", "/v1/users/bob/conversations/alice/messages"] {
        let (status, page) = history.get(path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["seq"], 2);
        let texts: Vec<&Value> = page["messages"].as_array().unwrap().iter().map(|m| &m["text"]).collect();
        assert_eq!(texts, [&json!("one"), &json!("two")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_history_expires_after_the_retention_and_starts_a_new_epoch() {
    // 0.00003 days is 2.6 seconds.
    let (redis, _history, apps) =
        stack(1, &[("CHAT_HISTORY__RETENTION_DAYS", "0.00003")], |s| s.cluster.history.retention_days = 0.00003);
    wait_ready(&apps).await;
    let mut c = apps[0].client("c").await;
    c.join("idle").await;
    c.say("idle", "soon gone").await;
    assert_eq!(c.message_seqs(1).await, [1], "her own copy");
    let epoch = c.join("idle").await["epoch"].clone();
    let ttl_ms: u64 = redis.cli(&["pttl", "chat:{r:idle}:seq"]).trim().parse().unwrap();
    assert!((1..=2_600).contains(&ttl_ms), "{ttl_ms}");
    let deadline = Instant::now() + Duration::from_secs(6);
    while redis.cli(&["exists", "chat:{r:idle}:history", "chat:{r:idle}:seq", "chat:{r:idle}:epoch"]).trim() != "0" {
        assert!(Instant::now() < deadline, "history did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut late = apps[0].client("late").await;
    let resumed = late.request(json!({"type": "join", "room": "idle", "since": 1, "epoch": epoch})).await;
    assert_eq!((&resumed["seq"], &resumed["recovered"]), (&json!(0), &json!(false)), "{resumed}");
    assert_ne!(resumed["epoch"], epoch);
    assert_eq!(late.say("idle", "fresh").await["seq"], 1);
    // A session that stayed in the room gets the new history's first message.
    let next = c.recv_type("message").await;
    assert_eq!((&next["seq"], &next["text"]), (&json!(1), &json!("fresh")));
}
