//! Several gateways on one Redis (standalone and a 3-master Redis Cluster):
//! every client sees one chat, whichever node it is on.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    redis_node_name, send_until_stopped, spawn_cluster, wait_ready, Client, GatewayProcess, HistoryProcess,
    RedisCluster, RedisServer, TestApp,
};

const QUIET: Duration = Duration::from_millis(300);

async fn client_on(app: &TestApp, user: &str) -> Client {
    app.client(user).await
}

/// The protocol across three gateways: rooms, presence, typing, DMs (live and
/// offline), idempotency, members, history, operator API, connection limit.
async fn protocol_across_nodes(apps: &[TestApp]) {
    let mut alice = client_on(&apps[0], "alice").await;
    let mut bob = client_on(&apps[1], "bob").await;
    let mut carol = client_on(&apps[2], "carol").await;
    let mut alice_phone = client_on(&apps[2], "alice").await;

    alice.join("lobby").await;
    let joined = bob.join("lobby").await;
    assert_eq!(joined["members"], json!([{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]));
    assert_eq!(alice.recv().await["user"]["id"], "bob", "presence crosses nodes");
    carol.join("lobby").await;
    alice_phone.join("lobby").await;
    assert_eq!(alice.recv().await["user"]["id"], "carol");
    assert_eq!(bob.recv().await["user"]["id"], "carol");
    bob.expect_silence(Duration::from_millis(200)).await; // alice's second session is no news

    let ack = alice.request(json!({"type": "send", "room": "lobby", "text": "hello", "client_id": "k1"})).await;
    assert_eq!((ack["type"].as_str(), ack["seq"].as_u64()), (Some("ack"), Some(1)));
    for c in [&mut alice, &mut bob, &mut carol, &mut alice_phone] {
        let msg = c.recv_type("message").await;
        assert_eq!((msg["seq"].as_u64(), msg["text"].as_str()), (Some(1), Some("hello")));
        assert_eq!(msg["ts"], ack["ts"]);
    }
    // The same client_id from the user's other session on another node is the same message.
    let again = alice_phone.request(json!({"type": "send", "room": "lobby", "text": "hello", "client_id": "k1"})).await;
    assert_eq!((again["seq"].clone(), again["ts"].clone()), (ack["seq"].clone(), ack["ts"].clone()));
    bob.expect_silence(QUIET).await;

    bob.send(json!({"type": "typing", "room": "lobby"})).await;
    for c in [&mut alice, &mut carol, &mut alice_phone] {
        let typing = c.recv().await;
        assert_eq!((typing["type"].as_str(), typing["user"]["id"].as_str()), (Some("typing"), Some("bob")));
    }
    bob.expect_silence(Duration::from_millis(100)).await;
    bob.send(json!({"type": "typing", "room": "lobby", "state": "stop"})).await;
    for c in [&mut alice, &mut carol, &mut alice_phone] {
        assert_eq!(c.recv().await["state"], "stop");
    }

    let dm = alice.request(json!({"type": "dm", "to": "bob", "text": "psst"})).await;
    assert_eq!(dm["delivered"], true);
    assert_eq!(bob.recv().await["text"], "psst");
    assert_eq!(alice_phone.recv().await["text"], "psst", "the sender's other session, on another node");
    alice.expect_silence(Duration::from_millis(100)).await;
    // Catch-up after a disconnect: the conversation's history, from either
    // side, on any node (through the history service where there is one).
    let caught_up = bob.request(json!({"type": "history", "dm": "alice", "after": 0})).await;
    assert_eq!((&caught_up["dm"], &caught_up["messages"][0]["text"]), (&json!("alice"), &json!("psst")));
    let seen_by_alice = alice_phone.request(json!({"type": "history", "dm": "bob"})).await;
    assert_eq!(seen_by_alice["messages"], caught_up["messages"]);
    let queued = carol.request(json!({"type": "dm", "to": "dave", "text": "for later"})).await;
    assert_eq!(queued["delivered"], false);
    let mut dave = client_on(&apps[1], "dave").await;
    assert_eq!(dave.recv().await["text"], "for later", "offline DM right after welcome, on another node");

    let history = carol.request(json!({"type": "history", "room": "lobby"})).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    let members = dave.request(json!({"type": "members", "room": "lobby"})).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 3);

    carol.request(json!({"type": "leave", "room": "lobby"})).await;
    let offline = alice.recv().await;
    assert_eq!((offline["state"].as_str(), offline["user"]["id"].as_str()), (Some("offline"), Some("carol")));
    assert_eq!(bob.recv().await["state"], "offline");

    // Operator API: a notice from one node reaches every session; a
    // disconnect from another node closes the user everywhere.
    let (status, _) = crate::helpers::admin_post(&apps[0], "k", "/v1/broadcast", json!({"data": "hi all"})).await;
    assert_eq!(status, 200);
    for c in [&mut alice, &mut bob, &mut carol, &mut alice_phone, &mut dave] {
        assert_eq!(c.recv_type("notice").await["data"], "hi all");
    }
    let response = reqwest::Client::new()
        .delete(apps[2].http_url("/v1/users/bob/sessions"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(bob.expect_close(Duration::from_secs(3)).await, Some(1008));
    assert_eq!(alice.recv_type("presence").await["state"], "offline");

    // The per-user connection limit counts every node.
    let _l1 = client_on(&apps[0], "limited").await;
    let _l2 = client_on(&apps[1], "limited").await;
    let refused = Client::connect(&apps[2].ws_url("user=limited")).await.err().expect("third connection refused");
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (429, Some("too_many_connections")));
    // What a browser asks to learn why: the same answer from a plain GET, on any node.
    let probe = reqwest::get(apps[2].http_url("/ws?user=limited")).await.unwrap();
    assert_eq!(probe.status().as_u16(), 429);
    let probe = reqwest::get(apps[2].http_url("/ws?user=unlimited")).await.unwrap();
    assert_eq!(probe.status().as_u16(), 426);
}

fn cluster_settings(s: &mut gateway::Settings) {
    s.gateway.admin.api_key = Some("k".into());
    s.gateway.limits.max_connections_per_user = 2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_standalone_redis_act_as_one() {
    let redis = RedisServer::start();
    let apps = spawn_cluster(3, &redis.url(), cluster_settings);
    wait_ready(&apps).await;
    protocol_across_nodes(&apps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_a_redis_cluster_act_as_one_with_sharded_channels() {
    let cluster = RedisCluster::start();
    // History is read through a history service on the same Redis Cluster.
    let history = HistoryProcess::start(&cluster.url(), &[]);
    let apps = spawn_cluster(3, &cluster.url(), |s| {
        cluster_settings(s);
        s.gateway.history_service.url = history.url();
        // One client below sends 25 frames back to back; the frame rate is not under test here.
        s.gateway.limits.messages_per_second = 1_000;
    });
    wait_ready(&apps).await;
    protocol_across_nodes(&apps).await;

    // Rooms land in different slots (and shards); each room's channel is a
    // shard channel on the master that owns the room.
    let mut c = client_on(&apps[0], "slots").await;
    let rooms: Vec<String> = (0..12).map(|i| format!("room-{i}")).collect();
    for room in &rooms {
        c.join(room).await;
    }
    let mut owners = std::collections::HashSet::new();
    for room in &rooms {
        let key = format!("chat:{{r:{room}}}:ch");
        let slot = cluster.nodes[0].cli(&["cluster", "keyslot", &key]).trim().to_owned();
        owners.insert(slot);
    }
    assert!(owners.len() > 1, "rooms hash to different slots");
    let channels = cluster.shard_channels();
    for room in &rooms {
        let channel = format!("chat:{{r:{room}}}:ch");
        assert!(channels.contains(&channel), "{channel} not in {channels:?}");
    }
    let spread: usize = cluster
        .nodes
        .iter()
        .filter(|n| n.cli(&["pubsub", "shardchannels", "chat:{r:room-*"]).lines().any(|l| !l.is_empty()))
        .count();
    assert!(spread > 1, "room channels live on more than one shard");
    for (i, room) in rooms.iter().enumerate() {
        c.say(room, &format!("m{i}")).await;
        assert_eq!(c.recv_type("message").await["room"], room.as_str());
    }
    // Each room's history lives on its own shard; the service reads them all.
    for (i, room) in rooms.iter().enumerate() {
        let (status, page) = history.get(&format!("/v1/rooms/{room}/messages")).await;
        assert_eq!((status, &page["seq"], &page["messages"][0]["text"]), (200, &json!(1), &json!(format!("m{i}"))));
    }
    // Leaving the last local session unsubscribes the node.
    c.request(json!({"type": "leave", "room": "room-0"})).await;
    // Usually tens of milliseconds; a busy machine may delay the retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.shard_channels().contains(&"chat:{r:room-0}:ch".to_owned()) {
        assert!(Instant::now() < deadline, "room-0 stayed subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_different_nodes_share_one_order() {
    const PER_SENDER: usize = 30;
    let redis = RedisServer::start();
    let apps = spawn_cluster(3, &redis.url(), |s| s.gateway.limits.messages_per_second = 1_000);
    wait_ready(&apps).await;
    let total = (apps.len() * PER_SENDER) as u64;
    let mut observers = Vec::new();
    let mut senders = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let mut o = client_on(app, &format!("observer{i}")).await;
        o.join("race").await;
        observers.push(o);
        let mut s = client_on(app, &format!("sender{i}")).await;
        s.join("race").await;
        senders.push(s);
    }
    let watching: Vec<_> =
        observers.into_iter().map(|mut o| tokio::spawn(async move { o.message_seqs(total as usize).await })).collect();
    let sending: Vec<_> = senders
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                for n in 0..PER_SENDER {
                    s.send(json!({"type": "send", "id": n, "room": "race", "text": format!("{n}")})).await;
                }
                let mut acks = 0;
                while acks < PER_SENDER {
                    if s.recv().await["type"] == "ack" {
                        acks += 1;
                    }
                }
            })
        })
        .collect();
    for task in sending {
        task.await.unwrap();
    }
    for task in watching {
        assert_eq!(task.await.unwrap(), (1..=total).collect::<Vec<_>>(), "every node delivers 1..N in order");
    }
    let page =
        client_on(&apps[1], "reader").await.request(json!({"type": "history", "room": "race", "limit": 1000})).await;
    let stored: Vec<u64> = page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(stored, (1..=total).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_on_one_node_while_another_sends_is_gapless() {
    let redis = RedisServer::start();
    let apps = spawn_cluster(3, &redis.url(), |s| s.gateway.limits.messages_per_second = 1_000_000);
    wait_ready(&apps).await;
    let mut sender = client_on(&apps[0], "sender").await;
    sender.join("busy").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sending = send_until_stopped(sender, "busy", 10, stop.clone());
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let app = &apps[1 + round % 2];
        let mut joiner = client_on(app, &format!("joiner{round}")).await;
        let joined = joiner.request(json!({"type": "join", "room": "busy", "limit": 1000})).await;
        let history: Vec<u64> =
            joined["history"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        let last = joined["seq"].as_u64().unwrap();
        assert_eq!(history.last().copied().unwrap_or(0), last);
        let live: Vec<u64> = (last + 1..=last + 20).collect();
        assert_eq!(joiner.message_seqs(20).await, live, "round {round}: live continues where history ended");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(sending.await.unwrap() > 100);
}

async fn status(app: &TestApp, path: &str) -> u16 {
    reqwest::get(app.http_url(path)).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_session_gives_unavailable_then_full_service() {
    let mut redis = RedisServer::start_durable();
    let apps = spawn_cluster(2, &redis.url(), |_| {});
    wait_ready(&apps).await;
    let mut a = client_on(&apps[0], "a").await;
    let mut b = client_on(&apps[1], "b").await;
    let mut leaver = client_on(&apps[1], "leaver").await;
    a.join("r").await;
    b.join("r").await;
    leaver.join("r").await;
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(a.say("r", &format!("before {i}")).await["seq"].as_u64().unwrap());
    }
    redis.kill();
    // Every backend frame fails fast once the node has noticed; the sockets stay open.
    crate::helpers::eventually("the node to notice", || async { status(&apps[0], "/readyz").await == 503 }).await;
    for frame in [
        json!({"type": "send", "room": "r", "text": "during"}),
        json!({"type": "join", "room": "other"}),
        json!({"type": "dm", "to": "b", "text": "during"}),
    ] {
        let started = Instant::now();
        let reply = a.request(frame.clone()).await;
        assert_eq!(reply["code"], "unavailable", "{frame}: {reply}");
        assert!(started.elapsed() < Duration::from_secs(2), "answered within 2 s: {:?}", started.elapsed());
    }
    assert_eq!(a.request(json!({"type": "ping"})).await["type"], "pong");
    drop(leaver); // disconnects while Redis is away
    assert_eq!(status(&apps[0], "/readyz").await, 503);
    assert_eq!(status(&apps[0], "/healthz").await, 200);

    redis.restart();
    let back = Instant::now();
    wait_ready(&apps).await;
    let mut after = None;
    while back.elapsed() < Duration::from_secs(5) {
        let reply = a.request(json!({"type": "send", "room": "r", "text": "after"})).await;
        if reply["type"] == "ack" {
            after = Some(reply["seq"].as_u64().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("service resumed within 5 s");
    assert!(back.elapsed() < Duration::from_secs(5), "{:?}", back.elapsed());
    acked.push(after);
    // The other node's session is subscribed again and gets it live.
    let live = loop {
        let frame = b.recv().await;
        if frame["type"] == "message" && frame["text"] == "after" {
            break frame;
        }
    };
    assert_eq!(live["seq"].as_u64(), Some(after));
    // The session that closed during the outage is cleared once Redis is back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let members = b.request(json!({"type": "members", "room": "r"})).await;
        if !members["members"].to_string().contains("leaver") {
            break;
        }
        assert!(Instant::now() < deadline, "leaver still listed: {members}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = b.request(json!({"type": "history", "room": "r"})).await;
    let stored: Vec<u64> = history["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    for seq in &acked {
        assert!(stored.contains(seq), "acked message {seq} missing from {stored:?}");
    }
    assert_eq!(stored, (1..=acked.len() as u64).collect::<Vec<_>>(), "nothing unacked was stored");
}

#[tokio::test]
async fn a_sigkilled_gateway_leaves_the_others_serving() {
    let redis = RedisServer::start();
    let env = |node: &'static str| {
        vec![
            ("CHAT_GATEWAY__ENGINE", "redis".to_owned()),
            ("CHAT_REDIS__URL", redis.url()),
            ("CHAT_GATEWAY__NODE_ID", node.to_owned()),
        ]
    };
    let start = |node: &'static str| {
        let vars = env(node);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        GatewayProcess::start(&refs)
    };
    let mut doomed = start("gw-doomed");
    let survivor = start("gw-survivor");
    let other = start("gw-other");
    let connect = |gw: &GatewayProcess, user: &str| {
        let url = gw.ws_url(&format!("user={user}"));
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match Client::connect(&url).await {
                    Ok(mut c) => {
                        assert_eq!(c.recv().await["type"], "welcome");
                        return c;
                    }
                    Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(refused) => panic!("not ready: {refused:?}"),
                }
            }
        }
    };
    let mut victim = connect(&doomed, "victim").await;
    let mut s1 = connect(&survivor, "s1").await;
    let mut s2 = connect(&other, "s2").await;
    let first = victim.join("room").await;
    s1.join("room").await;
    s2.join("room").await;
    let last_seen = victim.say("room", "before the crash").await["seq"].as_u64().unwrap();
    let _ = first;
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(3));
    let ack = s1.say("room", "still here").await;
    let msg: Value = loop {
        let frame = s2.recv().await;
        if frame["type"] == "message" && frame["text"] == "still here" {
            break frame;
        }
    };
    assert_eq!(msg["seq"], ack["seq"]);
    // The crashed node's client reconnects elsewhere and resumes without a gap.
    let mut back = connect(&survivor, "victim").await;
    let resumed = back.request(json!({"type": "join", "room": "room", "since": last_seen})).await;
    assert_eq!(resumed["recovered"], true);
    let texts: Vec<&str> = resumed["history"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["still here"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_its_subscriptions_resubscribes_and_delivers_what_it_missed() {
    const TOTAL: u64 = 300;
    let redis = RedisServer::start();
    let apps = spawn_cluster(2, &redis.url(), |s| s.gateway.admin.api_key = Some("k".into()));
    wait_ready(&apps).await;
    let mut observer = client_on(&apps[1], "observer").await;
    observer.join("feed").await;
    let watching = tokio::spawn(async move { observer.message_seqs(TOTAL as usize).await });
    // gw-1 publishes through the operator API (it holds no room subscription
    // itself); gw-2's subscriber is the one with the room, user, broadcast and
    // control channels.
    let port = apps[0].port;
    let posting = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/v1/rooms/feed/messages");
        let mut stored = 0;
        while stored < TOTAL {
            let response = client.post(&url).bearer_auth("k").json(&json!({"text": "tick"})).send().await.unwrap();
            if response.status().is_success() {
                stored += 1;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let list = redis.cli(&["client", "list"]);
    let gw2_subscriber = list
        .lines()
        .find(|line| line.contains(" sub=4 ") || line.contains(" ssub=4 "))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .unwrap_or_else(|| panic!("gw-2's subscriber not found in\n{list}"))
        .to_owned();
    assert_eq!(redis.cli(&["client", "kill", "id", &gw2_subscriber]).trim(), "1");
    posting.await.unwrap();
    assert_eq!(watching.await.unwrap(), (1..=TOTAL).collect::<Vec<_>>(), "nothing missed, nothing twice, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_rate_counts_every_connection_on_every_node_and_each_node_holds_a_lease() {
    let redis = RedisServer::start();
    let apps = spawn_cluster(2, &redis.url(), |s| {
        s.gateway.limits.user_messages_per_second = 3;
        s.cluster.presence.lease_ms = 3_000;
    });
    wait_ready(&apps).await;
    let mut one = app_client(&apps[0], "busy").await;
    let mut two = app_client(&apps[1], "busy").await;
    assert_eq!(one.welcome["limits"]["user_messages_per_second"], 3, "announced in welcome");
    one.client.join("r").await;
    two.client.join("r").await;
    let mut outcomes = Vec::new();
    for i in 0..4 {
        let client = if i % 2 == 0 { &mut one.client } else { &mut two.client };
        let reply = client.request(json!({"type": "send", "room": "r", "text": format!("m{i}")})).await;
        outcomes.push(reply);
    }
    let acks = outcomes.iter().filter(|r| r["type"] == "ack").count();
    assert_eq!(acks, 3, "three per second across both connections: {outcomes:?}");
    let limited = outcomes.iter().find(|r| r["type"] == "error").unwrap();
    assert_eq!(limited["code"], "rate_limited");
    assert!((1..=1000).contains(&limited["retry_after_ms"].as_u64().unwrap()));
    // Each node keeps a lease with a TTL no longer than presence.lease_ms.
    for node in ["gw-1", "gw-2"] {
        let name = redis_node_name(&redis, node);
        let ttl: i64 = redis.cli(&["pttl", &format!("chat:node:{{{name}}}:lease")]).trim().parse().unwrap();
        assert!(ttl > 0 && ttl <= 3_000, "{node} lease ttl {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_counted_and_resynced_not_stopped() {
    const TOTAL: u64 = 400;
    let redis = RedisServer::start();
    // A tiny buffer between the Redis connection and the node makes it lag.
    let apps = spawn_cluster(2, &redis.url(), |s| {
        s.gateway.admin.api_key = Some("k".into());
        s.cluster.redis.subscriber_buffer_messages = 2;
    });
    wait_ready(&apps).await;
    let mut observer = client_on(&apps[1], "observer").await;
    observer.join("burst").await;
    let watching = tokio::spawn(async move { observer.message_seqs(TOTAL as usize).await });
    let port = apps[0].port;
    let posters: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let url = format!("http://127.0.0.1:{port}/v1/rooms/burst/messages");
                for _ in 0..TOTAL / 8 {
                    let response = client.post(&url).bearer_auth("k").json(&json!({"text": "x"})).send().await.unwrap();
                    assert!(response.status().is_success());
                }
            })
        })
        .collect();
    for poster in posters {
        poster.await.unwrap();
    }
    assert_eq!(watching.await.unwrap(), (1..=TOTAL).collect::<Vec<_>>(), "every message once, in order");
    assert!(apps[1].metric("chat_pubsub_lagged_total").await > 0.0, "the receiver did lag");
}

struct Welcomed {
    client: Client,
    welcome: Value,
}

async fn app_client(app: &TestApp, user: &str) -> Welcomed {
    let mut client = Client::connect(&app.ws_url(&format!("user={user}"))).await.unwrap();
    let welcome = client.recv().await;
    Welcomed { client, welcome }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_throttled_and_stopped_across_nodes() {
    let redis = RedisServer::start();
    let apps = spawn_cluster(2, &redis.url(), |_| {});
    wait_ready(&apps).await;
    let mut laptop = client_on(&apps[0], "alice").await;
    let mut phone = client_on(&apps[1], "alice").await;
    let mut bob = client_on(&apps[0], "bob").await;
    let mut carol = client_on(&apps[1], "carol").await;
    for c in [&mut laptop, &mut phone, &mut bob, &mut carol] {
        c.join("room").await;
    }
    for c in [&mut bob, &mut carol] {
        while c.try_recv(Duration::from_millis(100)).await.is_some() {} // presence
    }
    laptop.send(json!({"type": "typing", "room": "room"})).await;
    assert_eq!(bob.recv().await["state"], "start");
    // The phone's node has seen the laptop's start once carol, there, has.
    assert_eq!(carol.recv_type("typing").await["state"], "start");
    // The same user's start from another node within the second is dropped.
    phone.send(json!({"type": "typing", "room": "room"})).await;
    bob.expect_silence(Duration::from_millis(300)).await;
    laptop.send(json!({"type": "typing", "room": "room", "state": "stop"})).await;
    assert_eq!(bob.recv().await["state"], "stop");
    // That this stop also cancels the phone's automatic stop (no late `stop`
    // 5 s later) is tested on the hub, which observes relays: hub/tests.rs.
    bob.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lists_what_it_holds_and_withdraws_it_when_stopped_gracefully() {
    let redis = RedisServer::start();
    let mut apps = spawn_cluster(1, &redis.url(), |_| {});
    wait_ready(&apps).await;
    let mut c = client_on(&apps[0], "holder").await;
    c.join("kept").await;
    let node = redis_node_name(&redis, "gw-1");
    let (lease, sessions) = (format!("chat:node:{{{node}}}:lease"), format!("chat:node:{{{node}}}:sessions"));
    let entries = redis.cli(&["smembers", &sessions]);
    assert!(entries.lines().any(|l| l.starts_with("r\u{1f}kept\u{1f}")), "room entry in {entries:?}");
    assert!(
        entries.lines().any(|l| l.starts_with("c\u{1f}") && l.ends_with("\u{1f}holder")),
        "connection entry in {entries:?}"
    );
    let app = apps.remove(0);
    let stopper = std::thread::spawn(move || app.stop());
    assert_eq!(c.expect_close(Duration::from_secs(3)).await, Some(1001));
    let _stopped = tokio::task::spawn_blocking(move || stopper.join().unwrap()).await.unwrap();
    assert_eq!(redis.cli(&["exists", &lease]).trim(), "0", "lease withdrawn");
    assert_eq!(redis.cli(&["scard", &sessions]).trim(), "0", "nothing left to sweep");
    assert!(!redis.cli(&["zrange", "chat:nodes", "0", "-1"]).lines().any(|l| *l == node), "node unlisted");
    assert_eq!(redis.cli(&["hlen", "chat:{r:kept}:pnames"]).trim(), "0", "its users are offline");
    assert_eq!(redis.cli(&["hlen", "chat:{u:holder}:conns"]).trim(), "0", "its connections are freed");
}
