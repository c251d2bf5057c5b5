//! The presence service with real processes: crashed gateways are swept and
//! their users reported offline within the lease.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{redis_node_name, Client, GatewayProcess, PresenceProcess, RedisServer};

/// The gateways' lease in these tests, in milliseconds.
const LEASE_MS: u64 = 2_000;

fn gateway(redis: &RedisServer, node: &str) -> GatewayProcess {
    gateway_with(redis, node, &[])
}

fn gateway_with(redis: &RedisServer, node: &str, extra: &[(&str, &str)]) -> GatewayProcess {
    let (url, lease) = (redis.url(), LEASE_MS.to_string());
    let mut env = vec![
        ("CHAT_GATEWAY__ENGINE", "redis"),
        ("CHAT_REDIS__URL", url.as_str()),
        ("CHAT_GATEWAY__NODE_ID", node),
        ("CHAT_PRESENCE__LEASE_MS", lease.as_str()),
        ("CHAT_GATEWAY__LIMITS__MAX_CONNECTIONS", "5000"),
    ];
    env.extend_from_slice(extra);
    GatewayProcess::start(&env)
}

fn presence(redis: &RedisServer, replica: &str) -> PresenceProcess {
    PresenceProcess::start(
        &redis.url(),
        replica,
        &[("CHAT_PRESENCE_SERVICE__SWEEP_INTERVAL_MS", "200"), ("CHAT_PRESENCE_SERVICE__SWEEP_LOCK_MS", "1000")],
    )
}

async fn connect(gw: &GatewayProcess, user: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(&gw.ws_url(&format!("user={user}"))).await {
            Ok(mut c) => {
                assert_eq!(c.recv().await["type"], "welcome");
                return c;
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(refused) => panic!("gateway not ready: {refused:?}"),
        }
    }
}

/// Waits for `offline` of every `(room, user)` on `watcher`, each exactly
/// once; returns how long it took.
async fn wait_offline(watcher: &mut Client, expected: &[(&str, &str)], within: Duration) -> Duration {
    let started = Instant::now();
    let mut left: Vec<(String, String)> = expected.iter().map(|(r, u)| (r.to_string(), u.to_string())).collect();
    while !left.is_empty() {
        let remaining = within.checked_sub(started.elapsed()).unwrap_or_default();
        let frame =
            watcher.try_recv(remaining).await.unwrap_or_else(|| panic!("still online after {within:?}: {left:?}"));
        if frame["type"] == "presence" && frame["state"] == "offline" {
            let key = (frame["room"].as_str().unwrap().to_owned(), frame["user"]["id"].as_str().unwrap().to_owned());
            let at =
                left.iter().position(|k| *k == key).unwrap_or_else(|| panic!("unexpected or repeated offline {key:?}"));
            left.remove(at);
        }
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateways_users_go_offline_within_the_lease() {
    let redis = RedisServer::start();
    let presence_service = presence(&redis, "p1");
    let mut doomed = gateway(&redis, "gw-doomed");
    let stays = gateway(&redis, "gw-stays");
    let other = gateway(&redis, "gw-other");
    let mut victim = connect(&doomed, "victim").await;
    let mut victim2 = connect(&doomed, "victim2").await;
    let mut watcher = connect(&stays, "watcher").await;
    let mut watcher2 = connect(&other, "watcher2").await;
    for c in [&mut watcher, &mut watcher2, &mut victim, &mut victim2] {
        c.join("lobby").await;
    }
    victim.join("side").await;
    watcher2.join("side").await;
    while watcher.try_recv(Duration::from_millis(200)).await.is_some() {}
    while watcher2.try_recv(Duration::from_millis(200)).await.is_some() {}

    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(3));
    let within = Duration::from_millis(LEASE_MS + 2_000);
    let took = wait_offline(&mut watcher, &[("lobby", "victim"), ("lobby", "victim2")], within).await;
    eprintln!("offline after {took:?} (lease {LEASE_MS} ms)");
    wait_offline(&mut watcher2, &[("lobby", "victim"), ("lobby", "victim2"), ("side", "victim")], within).await;
    let members = watcher.request(json!({"type": "members", "room": "lobby"})).await;
    assert_eq!(
        members["members"],
        json!([{"id": "watcher", "name": "watcher"}, {"id": "watcher2", "name": "watcher2"}])
    );
    let p = &presence_service;
    let api = p.get("/v1/rooms/lobby/members").await;
    assert_eq!(api["members"], members["members"], "the presence API agrees");
    let user = p.get("/v1/users/victim").await;
    assert_eq!((user["online"].as_bool(), user["sessions"].as_u64()), (Some(false), Some(0)));
    assert_eq!(user["rooms"], json!([]));
    assert!(user["last_seen"].as_u64().is_some());
    let live = p.get("/v1/users/watcher").await;
    assert_eq!((live["online"].as_bool(), live["rooms"].clone()), (Some(true), json!(["lobby"])));
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.port)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chat_presence_sweeps_total 1"), "{metrics}");
    assert!(metrics.contains("chat_presence_swept_sessions_total 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_under_the_same_node_id_does_not_hide_its_crashed_sessions() {
    // A container restarted in place keeps its host name, so its node_id.
    let redis = RedisServer::start();
    let _presence = presence(&redis, "p");
    let one_each = [("CHAT_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_USER", "1")];
    let mut crashed = gateway_with(&redis, "gw-again", &one_each);
    let stays = gateway_with(&redis, "gw-stays", &one_each);
    let mut watcher = connect(&stays, "watcher").await;
    watcher.join("lobby").await;
    let mut victim = connect(&crashed, "victim").await;
    victim.join("lobby").await;
    assert_eq!(watcher.recv_type("presence").await["state"], "online");
    crashed.signal("KILL");
    crashed.wait_exit(Duration::from_secs(3));
    let again = gateway_with(&redis, "gw-again", &one_each);
    // The crashed start's sessions are swept although "gw-again" is alive…
    wait_offline(&mut watcher, &[("lobby", "victim")], Duration::from_millis(LEASE_MS + 2_000)).await;
    // …so its users' connection slots are free again.
    let mut back = connect(&again, "victim").await;
    assert_eq!(back.join("lobby").await["members"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_service_started_late_catches_up() {
    let redis = RedisServer::start();
    let mut doomed = gateway(&redis, "gw-doomed");
    let stays = gateway(&redis, "gw-stays");
    let mut victim = connect(&doomed, "late-victim").await;
    let mut watcher = connect(&stays, "watcher").await;
    watcher.join("room").await;
    victim.join("room").await;
    assert_eq!(watcher.recv().await["state"], "online");
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(3));
    // No presence service yet: the victim stays listed past the lease…
    tokio::time::sleep(Duration::from_millis(LEASE_MS + 500)).await;
    let members = watcher.request(json!({"type": "members", "room": "room"})).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    // …until one starts and sweeps.
    let _presence = presence(&redis, "late");
    wait_offline(&mut watcher, &[("room", "late-victim")], Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_killed_mid_run_leave_nobody_online_and_report_once() {
    const USERS: usize = 300;
    let redis = RedisServer::start();
    let mut first = presence(&redis, "replica-a");
    let _second = presence(&redis, "replica-b");
    let mut doomed = gateway(&redis, "gw-doomed");
    let stays = gateway(&redis, "gw-stays");
    let mut watcher = connect(&stays, "watcher").await;
    watcher.join("crowd").await;
    let mut crowd = Vec::new();
    for i in 0..USERS {
        let mut c = connect(&doomed, &format!("u{i:03}")).await;
        c.send(json!({"type": "join", "room": "crowd"})).await;
        crowd.push(c);
    }
    let mut online = 0;
    while online < USERS {
        if watcher.recv().await["state"] == "online" {
            online += 1;
        }
    }
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(3));
    // Kill one replica as the lease runs out, while it may hold the sweep.
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    first.kill();
    let names: Vec<String> = (0..USERS).map(|i| format!("u{i:03}")).collect();
    let expected: Vec<(&str, &str)> = names.iter().map(|n| ("crowd", n.as_str())).collect();
    wait_offline(&mut watcher, &expected, Duration::from_secs(8)).await;
    watcher.expect_silence(Duration::from_millis(500)).await; // nothing reported twice
    let members = watcher.request(json!({"type": "members", "room": "crowd"})).await;
    assert_eq!(members["members"], json!([{"id": "watcher", "name": "watcher"}]));
    drop(crowd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_member_room_is_swept_in_bounded_time() {
    const USERS: usize = 1_000;
    let redis = RedisServer::start();
    let _presence = presence(&redis, "p");
    let mut doomed = gateway(&redis, "gw-doomed");
    let mut crowd = Vec::new();
    for i in 0..USERS {
        let mut c = connect(&doomed, &format!("m{i:04}")).await;
        c.send(json!({"type": "join", "room": "big"})).await;
        crowd.push(c);
    }
    for c in crowd.iter_mut() {
        assert_eq!(c.recv_type("joined").await["room"], "big");
    }
    assert_eq!(redis.cli(&["hlen", "chat:{r:big}:pnames"]).trim(), USERS.to_string());
    let node = redis_node_name(&redis, "gw-doomed");
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(3));
    let killed = Instant::now();
    while redis.cli(&["hlen", "chat:{r:big}:pnames"]).trim() != "0" {
        assert!(killed.elapsed() < Duration::from_millis(LEASE_MS + 5_000), "room not swept in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("1000-member room swept {:?} after the kill (lease {LEASE_MS} ms)", killed.elapsed());
    assert_eq!(redis.cli(&["scard", &format!("chat:node:{{{node}}}:sessions")]).trim(), "0");
    drop(crowd);
}
