//! The cost of protocol 1.1's requests on Redis, for `docs/benchmarks.md`:
//! Redis commands (from `INFO commandstats`, summed over every master, so
//! the commands inside scripts count) and client round trips per `send`,
//! `edit`, `react`, `read`, and per `inbox` of a user with 200 rooms.
//! Measurements, not tests: ignored by default, run with
//!
//! ```sh
//! cargo test --release -p gateway --test api -- --ignored --nocapture bench::
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, wait_ready, Client, RedisCluster, RedisServer, TestApp};

/// Requests per measured kind.
const ROUNDS: usize = 400;
/// Rooms of the `inbox` user.
const INBOX_ROOMS: usize = 200;

fn commandstats(nodes: &[&RedisServer]) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for node in nodes {
        for line in node.cli(&["info", "commandstats"]).lines() {
            // cmdstat_evalsha:calls=10,usec=…
            let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
            let n = rest.split(',').find_map(|kv| kv.strip_prefix("calls=")).and_then(|v| v.parse().ok()).unwrap_or(0);
            *calls.entry(name.to_owned()).or_insert(0) += n;
        }
    }
    calls
}

fn reset(nodes: &[&RedisServer]) {
    for node in nodes {
        node.cli(&["config", "resetstat"]);
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

/// Sends each of `frames` from `client`, waiting for its reply (and
/// reading what `other` got meanwhile), and prints the round trip and the
/// Redis commands per request.
async fn measure(name: &str, nodes: &[&RedisServer], client: &mut Client, other: &mut Client, frames: Vec<Value>) {
    let rounds = frames.len();
    reset(nodes);
    let mut times = Vec::with_capacity(rounds);
    for frame in frames {
        while other.try_recv(Duration::ZERO).await.is_some() {}
        let started = Instant::now();
        let reply = client.request(frame).await;
        times.push(started.elapsed());
        assert_ne!(reply["type"], "error", "{name}: {reply}");
    }
    let calls: Vec<(String, u64)> = commandstats(nodes)
        .into_iter()
        .filter(|(cmd, _)| !["config", "info", "ping", "cluster", "script"].iter().any(|c| cmd.starts_with(c)))
        .collect();
    times.sort();
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let per: Vec<String> = calls.iter().map(|(cmd, n)| format!("{cmd} {:.2}", *n as f64 / rounds as f64)).collect();
    println!(
        "| {name} | {:.2} | {:.2} | {:.1} | {} |",
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        total as f64 / rounds as f64,
        per.join(", ")
    );
}

async fn costs(app: &TestApp, nodes: &[&RedisServer], label: &str) {
    println!("\n{label}: one gateway, one client waiting for each reply\n");
    println!("| request | p50 ms | p99 ms | Redis commands | of which, per request |");
    println!("|---|---|---|---|---|");
    let mut alice = app.client("b-alice").await;
    let mut bob = app.client("b-bob").await;
    alice.join("bench").await;
    bob.join("bench").await;
    let frames = |f: &dyn Fn(usize) -> Value, n: usize| (0..n).map(f).collect::<Vec<_>>();
    // Targets are among the newest messages: history.size (1000) counts every event.
    let sends = frames(&|i| json!({"type": "send", "room": "bench", "text": format!("m{i}")}), ROUNDS);
    measure("send", nodes, &mut alice, &mut bob, sends).await;
    let edits =
        frames(&|i| json!({"type": "edit", "room": "bench", "target": 351 + i % 50, "text": format!("e{i}")}), ROUNDS);
    measure("edit", nodes, &mut alice, &mut bob, edits).await;
    let reacts = frames(
        &|i| {
            let op = if i % 2 == 0 { "add" } else { "remove" };
            json!({"type": "react", "room": "bench", "target": 300 + (i / 2) % 100, "emoji": "👍", "op": op})
        },
        ROUNDS,
    );
    measure("react (add, remove)", nodes, &mut bob, &mut alice, reacts).await;
    let reads = frames(&|i| json!({"type": "read", "room": "bench", "seq": 1 + i}), ROUNDS);
    measure("read (moving)", nodes, &mut bob, &mut alice, reads).await;
    let behind = frames(&|i| json!({"type": "read", "room": "bench", "seq": 1 + i}), ROUNDS);
    measure("read (behind the cursor)", nodes, &mut bob, &mut alice, behind).await;
    let deletes = frames(&|i| json!({"type": "delete", "room": "bench", "target": 250 + i}), 100);
    measure("delete", nodes, &mut alice, &mut bob, deletes).await;

    // A user with a cursor in 200 rooms, each with a message from someone else.
    let mut carol = app.client("b-carol").await;
    let mut dave = app.client("b-dave").await;
    for r in 0..INBOX_ROOMS {
        let room = format!("inbox-{r}");
        carol.join(&room).await;
        carol.request(json!({"type": "leave", "room": room})).await;
        dave.join(&room).await;
        dave.say(&room, "news").await;
        dave.request(json!({"type": "leave", "room": room})).await;
    }
    let inboxes = frames(&|_| json!({"type": "inbox"}), 50);
    measure(&format!("inbox ({INBOX_ROOMS} rooms)"), nodes, &mut carol, &mut dave, inboxes).await;
    let inbox = carol.request(json!({"type": "inbox"})).await;
    assert_eq!(inbox["rooms"].as_array().map(Vec::len), Some(INBOX_ROOMS));
    assert!(inbox["rooms"].as_array().unwrap().iter().all(|r| r["unread"] == 1));
}

fn settings(url: String) -> impl FnOnce(&mut gateway::Settings) {
    move |s| {
        s.gateway.engine = gateway::settings::EngineKind::Redis;
        s.cluster.redis.url = url;
        s.gateway.limits.messages_per_second = 100_000;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: see the module documentation"]
async fn costs_on_standalone_redis() {
    let redis = RedisServer::start();
    let app = spawn_app(settings(redis.url()));
    wait_ready(std::slice::from_ref(&app)).await;
    costs(&app, &[&redis], "standalone Redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: see the module documentation"]
async fn costs_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let app = spawn_app(settings(cluster.url()));
    wait_ready(std::slice::from_ref(&app)).await;
    let nodes: Vec<&RedisServer> = cluster.nodes.iter().collect();
    costs(&app, &nodes, "a 3-master Redis Cluster").await;
}
