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
    // The masters only: a replica runs what its master replicates, which would count twice.
    costs(&app, &cluster.masters(), "a Redis Cluster of 3 masters (each with a replica)").await;
}

/// What `redis.wait_replicas` costs: two gateways on one Redis Cluster
/// (each master with a replica), one acknowledging at once and one after
/// `WAIT 1`; rounds of sends alternate between them, so both see the same
/// machine. One client waiting for each ack (latency), then 8 clients at
/// once (throughput).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: see the module documentation"]
async fn wait_replicas_cost_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let apps: Vec<TestApp> = [0, 1]
        .into_iter()
        .map(|replicas| {
            let configure = settings(cluster.url());
            spawn_app(move |s| {
                configure(s);
                s.cluster.redis.wait_replicas = replicas;
                s.gateway.limits.user_messages_per_second = 100_000;
            })
        })
        .collect();
    wait_ready(&apps).await;
    let mut latency: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut rate: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..6 {
        for (i, app) in apps.iter().enumerate() {
            let mut client = app.client(&format!("w{i}")).await;
            let room = format!("wait-{i}-{round}");
            client.join(&room).await;
            for n in 0..ROUNDS / 2 {
                let started = Instant::now();
                let reply = client.request(json!({"type": "send", "room": room, "text": format!("m{n}")})).await;
                latency[i].push(started.elapsed());
                assert_eq!(reply["type"], "ack", "{reply}");
            }
            // Throughput: 8 clients in 8 rooms (spread over the shards), each waiting for its acks.
            let started = Instant::now();
            let tasks: Vec<_> = (0..8)
                .map(|c| {
                    let url = app.ws_url(&format!("user=t{i}-{c}"));
                    let room = format!("wait-{i}-{round}-{c}");
                    tokio::spawn(async move {
                        let mut client = Client::connect(&url).await.expect("connects");
                        client.join(&room).await;
                        for n in 0..100 {
                            client.say(&room, &format!("m{n}")).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            rate[i].push(800.0 / started.elapsed().as_secs_f64());
        }
    }
    println!("\nredis.wait_replicas on a Redis Cluster of 3 masters with a replica each; one gateway per setting\n");
    println!("| redis.wait_replicas | send p50 ms | send p99 ms | acks/s, 8 clients (median of 6 rounds) |");
    println!("|---|---|---|---|");
    for i in 0..2 {
        latency[i].sort();
        rate[i].sort_by(f64::total_cmp);
        println!(
            "| {i} | {:.2} | {:.2} | {:.0} |",
            quantile(&latency[i], 0.5),
            quantile(&latency[i], 0.99),
            rate[i][rate[i].len() / 2]
        );
    }
}

/// What clients that never read cost the others: a room of 20 readers and a
/// sender (200 messages of 3.5 KB a second, the send time in each), 5 s
/// alone, then 15 s with 10 more members whose sockets never read (a 4 KB
/// receive buffer), which the gateway closes with 4008 once their outbox
/// and socket buffers are full. The readers'
/// delivery latency in both phases, side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: see the module documentation"]
async fn clients_that_never_read_and_the_others_latency() {
    const READERS: usize = 20;
    const STALLED: usize = 10;
    let app = spawn_app(|s| s.gateway.limits.messages_per_second = 100_000);
    let started = Instant::now();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut client = app.client(&format!("reader-{r}")).await;
        client.join("busy").await;
        readers.push(client);
    }
    let mut sender = app.client("sender").await;
    sender.join("busy").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let latencies: Vec<_> = readers
        .into_iter()
        .map(|mut client| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Some(frame) = client.try_recv(Duration::from_millis(200)).await else { continue };
                    let Some(text) = frame["text"].as_str() else { continue };
                    let (sent_us, _) = text.split_once(' ').unwrap();
                    let at = started.elapsed().as_micros() as u64;
                    seen.push((at, at - sent_us.parse::<u64>().unwrap()));
                }
                seen
            })
        })
        .collect();
    let pad = "x".repeat(3_500);
    send_for(&mut sender, &pad, started, 5).await;
    let phase_two = started.elapsed().as_micros() as u64;
    let mut stalled = Vec::new();
    for s in 0..STALLED {
        let mut client = Client::connect_small_buffer(&app.ws_url(&format!("user=stalled-{s}")), 4096).await;
        client.join("busy").await;
        stalled.push(client);
    }
    send_for(&mut sender, &pad, started, 15).await;
    let closes = app.metric("chat_slow_consumer_closes_total").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut phases = [Vec::new(), Vec::new()];
    for task in latencies {
        for (at, latency) in task.await.unwrap() {
            phases[usize::from(at >= phase_two)].push(Duration::from_micros(latency));
        }
    }
    println!("\n{READERS} readers of a room getting 200 messages of 3.5 KB a second; one gateway\n");
    println!("| phase | deliveries | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let names = ["alone".to_owned(), format!("with {STALLED} clients that never read")];
    for (name, times) in names.iter().zip(phases.iter_mut()) {
        times.sort();
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            times.len(),
            quantile(times, 0.5),
            quantile(times, 0.99),
            times.last().unwrap().as_secs_f64() * 1_000.0
        );
    }
    println!("\nclosed with 4008 during the second phase: {closes} of {STALLED}");
}

/// Sends into `busy` every 5 ms for `seconds`, each text starting with the
/// microseconds since `started`; drops its own traffic.
async fn send_for(sender: &mut Client, pad: &str, started: Instant, seconds: u64) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while Instant::now() < until {
        tick.tick().await;
        let text = format!("{} {pad}", started.elapsed().as_micros());
        sender.send(json!({"type": "send", "room": "busy", "text": text})).await;
        while sender.try_recv(Duration::ZERO).await.is_some() {}
    }
}
