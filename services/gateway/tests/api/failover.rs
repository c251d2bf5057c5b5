//! A Redis Cluster master fails under load: one replica per master, a
//! `cluster-node-timeout` of 2 s, two gateways, a sender per room sending
//! (with client ids) as fast as it gets answers, and a watcher per room on
//! the other gateway. The master of two of the rooms is taken down, either
//! by a graceful `CLUSTER FAILOVER` on its replica or by SIGKILL (after
//! which the killed node is started again once its replica took over, and
//! rejoins as a replica), with `redis.wait_replicas` 0 or 1.
//!
//! Each run checks what a user would: every send is answered (an `ack` or
//! `unavailable`, never silence, never a closed socket); sends succeed again
//! on every room; watchers get the messages sent after the failover live;
//! and every acknowledged message is in the history afterwards, except after
//! a SIGKILL without `wait_replicas`, where asynchronous replication may lose
//! the newest acks (counted and reported, not asserted). Each run prints its
//! figures (`failover:` lines; `make failover` runs them with --nocapture):
//! the longest stall between two acks, the sends refused, the acks lost.
//!
//! The last test is the refusal itself: `redis.wait_replicas` on a Redis
//! without replicas.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{spawn_cluster, wait_ready, Client, RedisCluster, RedisServer, TestApp};

/// How long the senders go on after the master is taken down.
const AFTER_KILL: Duration = Duration::from_secs(15);
/// How long one send may go unanswered before it counts as a stuck session.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    /// `CLUSTER FAILOVER` on the replica: the master hands over once the replica caught up.
    Graceful,
    /// SIGKILL of the master: the replica takes over after the node timeout.
    Sigkill,
    /// SIGKILL of a master whose replica lags: its link is cut
    /// (`CLIENT KILL TYPE replica`) and the replica paused, so for 700 ms
    /// the writes reach the master only; then the master is killed and the
    /// replica resumes and takes over without them.
    SigkillLagging,
}

/// One sender's record: each send's outcome, in order.
#[derive(Default)]
struct Record {
    /// (when answered, seq, text) of each ack.
    acks: Vec<(Instant, u64, String)>,
    /// Sends answered `unavailable`.
    refused: u32,
}

/// Sends into `room` until `stop`; every send must be answered within ANSWER_WITHIN.
async fn sender(mut client: Client, room: String, stop: Instant) -> Record {
    let mut record = Record::default();
    let mut n = 0u64;
    while Instant::now() < stop {
        n += 1;
        let text = format!("{room}/{n}");
        let frame = json!({"type": "send", "id": n, "room": room, "text": text, "client_id": format!("c{n}")});
        client.send(frame).await;
        let reply = loop {
            let Some(reply) = client.try_recv(ANSWER_WITHIN).await else {
                panic!("send {n} in {room} got no answer within {ANSWER_WITHIN:?}: a stuck session");
            };
            if reply["re"] == json!(n) {
                break reply;
            }
        };
        match reply["type"].as_str() {
            Some("ack") => record.acks.push((Instant::now(), reply["seq"].as_u64().unwrap(), text)),
            Some("error") if reply["code"] == "unavailable" => {
                record.refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("send {n} in {room}: unexpected answer {reply}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    record
}

/// The room's whole history as seq → text, read page by page (the test's
/// history keeps 5000 events, more than a run sends). A read answered
/// `unavailable` is tried again (at most 40 times, 250 ms apart); returns the
/// history and how many reads were refused.
async fn history(app: &TestApp, room: &str) -> (std::collections::HashMap<u64, String>, u32) {
    let mut reader = app.client("reader").await;
    let mut stored = std::collections::HashMap::new();
    let mut refused = 0;
    let mut before: Option<u64> = None;
    loop {
        let mut request = json!({"type": "history", "room": room, "limit": 1000});
        if let Some(before) = before {
            request["before"] = json!(before);
        }
        let page = reader.request(request).await;
        if page["code"] == "unavailable" && refused < 40 {
            refused += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        assert_eq!(page["type"], "history", "{page}");
        let messages = page["messages"].as_array().unwrap();
        let Some(first) = messages.first().and_then(|m| m["seq"].as_u64()) else { break };
        for m in messages {
            stored.insert(m["seq"].as_u64().unwrap(), m["text"].as_str().unwrap_or_default().to_owned());
        }
        if first <= 1 {
            break;
        }
        before = Some(first);
    }
    (stored, refused)
}

/// Rooms whose slots the same master owns (`n` of them), and one on another master.
fn rooms(cluster: &RedisCluster, n: usize) -> (usize, Vec<String>, String) {
    let owner = |room: &str| cluster.master_of(&format!("chat:{{r:{room}}}:seq"));
    let victim = owner("fo-0");
    let candidates: Vec<String> = (0..64).map(|i| format!("fo-{i}")).collect();
    let on_victim: Vec<String> = candidates.iter().filter(|r| owner(r) == victim).take(n).cloned().collect();
    let control = candidates.iter().find(|r| owner(r) != victim).cloned().unwrap();
    assert_eq!(on_victim.len(), n);
    (victim, on_victim, control)
}

/// One failover at a time: six Redis processes each, timing-sensitive, on a
/// machine that runs the rest of the suite meanwhile.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(kill: Kill, wait_replicas: u32) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start_with_node_timeout(2_000);
    let apps = spawn_cluster(2, &cluster.url(), |s| {
        s.cluster.redis.wait_replicas = wait_replicas;
        s.cluster.redis.wait_timeout_ms = 500;
        s.gateway.limits.messages_per_second = 1_000;
        s.gateway.limits.user_messages_per_second = 1_000;
        s.cluster.history.size = 5_000;
    });
    wait_ready(&apps).await;
    let (victim, victim_rooms, control) = rooms(&cluster, 2);
    let all_rooms: Vec<String> = victim_rooms.iter().chain([&control]).cloned().collect();

    let mut watchers = Vec::new();
    let mut senders = Vec::new();
    let start = Instant::now();
    let killed_at = start + Duration::from_millis(1_500);
    let stop = killed_at + AFTER_KILL;
    for room in &all_rooms {
        let mut watcher = apps[1].client(&format!("watch-{room}")).await;
        watcher.join(room).await;
        watchers.push(watcher);
        let mut client = apps[0].client(&format!("send-{room}")).await;
        client.join(room).await;
        senders.push(tokio::spawn(sender(client, room.clone(), stop)));
    }

    tokio::time::sleep_until(killed_at.into()).await;
    let replica = cluster.replica_of(victim);
    match kill {
        Kill::Graceful => {
            let answer = cluster.nodes[replica].cli(&["cluster", "failover"]);
            assert_eq!(answer.trim(), "OK", "CLUSTER FAILOVER: {answer}");
        }
        Kill::Sigkill => cluster.nodes[victim].kill(),
        Kill::SigkillLagging => {
            cluster.nodes[replica].pause();
            cluster.nodes[victim].cli(&["client", "kill", "type", "replica"]);
            tokio::time::sleep(Duration::from_millis(700)).await;
            cluster.nodes[victim].kill();
            cluster.nodes[replica].resume();
        }
    }
    let killed_at = Instant::now();
    let took_over = loop {
        if tokio::task::block_in_place(|| cluster.owner_of("chat:{r:fo-0}:seq")) == Some(replica) {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(15), "the replica never took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if kill != Kill::Graceful {
        // As a supervisor would: the old master comes back, and rejoins as
        // the new master's replica (until then a shard has no replica, and
        // wait_replicas 1 refuses its writes).
        tokio::task::block_in_place(|| cluster.nodes[victim].restart());
    }

    let mut records = Vec::new();
    for sender in senders {
        records.push(sender.await.expect("the sender ran to the end"));
    }
    assert_eq!(cluster.master_of("chat:{r:fo-0}:seq"), replica, "the replica is still the master");

    // Sends succeed again on every room: each has acks from its last second.
    for (room, record) in all_rooms.iter().zip(&records) {
        let last = record.acks.last().map(|a| a.0);
        assert!(
            last.is_some_and(|t| stop.saturating_duration_since(t) < Duration::from_secs(1)),
            "{room}: no ack in the last second"
        );
    }
    // Watchers on the other gateway get what was sent after the failover, live.
    for ((room, record), watcher) in all_rooms.iter().zip(&records).zip(&mut watchers) {
        let (_, seq, text) = record.acks.last().unwrap().clone();
        loop {
            let Some(frame) = watcher.try_recv(Duration::from_secs(5)).await else {
                panic!("{room}: the watcher never got seq {seq} ({text}): its subscription did not come back");
            };
            if frame["type"] == "message" && frame["text"] == text.as_str() {
                break;
            }
        }
    }

    let mut lost = 0;
    let mut stall = Duration::ZERO;
    let mut recovery = Duration::ZERO;
    let mut history_refusals = 0;
    let mut refused = 0;
    let mut acked = 0;
    for (room, record) in all_rooms.iter().zip(&records) {
        let (stored, reads_refused) = history(&apps[1], room).await;
        history_refusals += reads_refused;
        let missing: Vec<&(Instant, u64, String)> =
            record.acks.iter().filter(|(_, seq, text)| stored.get(seq) != Some(text)).collect();
        lost += missing.len();
        acked += record.acks.len();
        refused += record.refused;
        let longest = record.acks.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or_default();
        if victim_rooms.contains(room) {
            stall = stall.max(longest);
            let first_after = record.acks.iter().find(|a| a.0 > killed_at).expect("an ack after the kill").0;
            recovery = recovery.max(first_after - killed_at);
        } else {
            assert!(missing.is_empty(), "{room} is on another master and lost {missing:?}");
        }
        assert!(
            wait_replicas == 0 && kill != Kill::Graceful || missing.is_empty(),
            "{room}: acknowledged messages missing from history after a {kill:?} failover with wait_replicas \
             {wait_replicas}: {:?}",
            missing.iter().map(|m| m.1).collect::<Vec<_>>()
        );
    }
    if kill == Kill::SigkillLagging && wait_replicas == 0 {
        // What wait_replicas is for: the acks the replica never got are gone.
        assert!(lost > 0, "a master killed while its replica lagged lost no acknowledged message");
    }
    eprintln!(
        "failover: {kill:?}, wait_replicas {wait_replicas}: the replica took over after {} ms; sends succeeded \
         again {} ms after the kill; longest stall between two acks {} ms on the failed master's rooms; {refused} \
         sends answered unavailable; {acked} acked, {lost} of them lost; {history_refusals} history reads \
         answered unavailable afterwards",
        took_over.as_millis(),
        recovery.as_millis(),
        stall.as_millis(),
    );
    // Every session is still usable.
    for watcher in &mut watchers {
        assert_eq!(watcher.request(json!({"type": "ping"})).await["type"], "pong");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_failover_loses_no_ack() {
    run(Kill::Graceful, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_failover_with_replica_acks() {
    run(Kill::Graceful, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_without_replica_acks_recovers() {
    run(Kill::Sigkill, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_with_replica_acks_loses_no_ack() {
    run(Kill::Sigkill, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_the_acks_its_lagging_replica_lacked() {
    run(Kill::SigkillLagging, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replica_acks_a_lagging_replica_costs_refusals_not_acks() {
    run(Kill::SigkillLagging, 1).await;
}

/// With `redis.wait_replicas` 1 and no replica to acknowledge, every append
/// (a message, an edit, a reaction, a DM) is answered `unavailable`, never
/// `ack`; each counts in `chat_replica_wait_shortfalls_total`, and the
/// session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_replica_to_acknowledge_appends_are_refused_and_counted() {
    let redis = RedisServer::start();
    let apps = spawn_cluster(1, &redis.url(), |s| {
        s.cluster.redis.wait_replicas = 1;
        s.cluster.redis.wait_timeout_ms = 100;
    });
    wait_ready(&apps).await;
    let shortfalls = || apps[0].metric("chat_replica_wait_shortfalls_total");
    assert_eq!(shortfalls().await, 0.0);
    let mut alice = apps[0].client("alice").await;
    alice.join("w").await;
    let frames = [
        json!({"type": "send", "room": "w", "text": "one", "client_id": "c-1"}),
        // Its retry waits again.
        json!({"type": "send", "room": "w", "text": "one", "client_id": "c-1"}),
        // The message is stored on the master: edits and reactions find it.
        json!({"type": "edit", "room": "w", "target": 1, "text": "one!"}),
        json!({"type": "react", "room": "w", "target": 1, "emoji": "👍", "op": "add"}),
        json!({"type": "dm", "to": "bob", "text": "hi", "client_id": "c-2"}),
    ];
    for frame in &frames {
        let reply = alice.request(frame.clone()).await;
        assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some("unavailable")), "{frame}");
    }
    assert_eq!(shortfalls().await, frames.len() as f64);
    assert_eq!(alice.request(json!({"type": "ping"})).await["type"], "pong", "still connected");
}
