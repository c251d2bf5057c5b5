//! The docker compose stack, from outside: clients connect through the load
//! balancer only. Ignored in a plain `cargo test`; `deploy/ci/compose-test.sh`
//! brings the stack up and runs these with `--ignored` and:
//! - `CHAT_STACK_URL`: the load balancer's WebSocket URL;
//! - `CHAT_STACK_SECRET`: the stack's HS256 development secret;
//! - `CHAT_STACK_PROJECT`: the compose project (to kill a gateway container).

use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use crate::helpers::{now_secs, sign, Client};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; run deploy/ci/compose-test.sh"))
}

fn token(user: &str) -> String {
    let claims = json!({"sub": user, "name": user, "exp": now_secs() + 3600});
    sign(&claims, Algorithm::HS256, &EncodingKey::from_secret(env("CHAT_STACK_SECRET").as_bytes()))
}

/// Connects through the load balancer, retrying while it has no gateway for
/// us (or hands us to one in `avoid`); returns the client and its welcome.
async fn connect(user: &str, avoid: &[&Value]) -> (Client, Value) {
    let url = format!("{}?token={}", env("CHAT_STACK_URL"), token(user));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{user} could not connect through the load balancer");
        if let Some(mut client) = Client::try_connect(&url).await {
            if let Some(welcome) = client.try_recv(Duration::from_secs(5)).await {
                if welcome["type"] == "welcome" && !avoid.contains(&&welcome["node"]) {
                    return (client, welcome);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The container id of the compose service `service`.
fn container(service: &str) -> String {
    let project = env("CHAT_STACK_PROJECT");
    let out = Command::new("docker")
        .args(["ps", "-q", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .args(["--filter"])
        .arg(format!("label=com.docker.compose.service={service}"))
        .output()
        .expect("docker runs");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!id.is_empty(), "no running container for {service}");
    id
}

fn docker(args: &[&str]) {
    let status = Command::new("docker").args(args).status().expect("docker runs");
    assert!(status.success(), "docker {args:?}");
}

#[tokio::test]
#[ignore = "needs the compose stack: deploy/ci/compose-test.sh"]
async fn two_clients_on_different_gateways_chat_and_survive_a_gateway_kill() {
    let (mut alice, alice_welcome) = connect("alice", &[]).await;
    // Round-robin: a few tries land bob on another gateway than alice.
    let (mut bob, bob_welcome) = connect("bob", &[&alice_welcome["node"]]).await;
    assert_ne!(alice_welcome["node"], bob_welcome["node"]);

    alice.join("lobby").await;
    let joined = bob.join("lobby").await;
    let epoch = joined["epoch"].clone();
    let hello = alice.say("lobby", "hello from alice").await;
    let seen = bob.recv_type("message").await;
    assert_eq!((&seen["text"], &seen["seq"]), (&json!("hello from alice"), &hello["seq"]));
    let dm = alice.request(json!({"type": "dm", "to": "bob", "text": "psst"})).await;
    assert_eq!(dm["delivered"], true, "{dm}");
    assert_eq!(bob.recv_type("dm").await["text"], "psst");

    // Bob's gateway dies mid-session.
    let node = bob_welcome["node"].as_str().unwrap().to_owned();
    let service = node.replace("gw-", "gateway-");
    let killed = container(&service);
    docker(&["kill", &killed]);
    bob.expect_close(Duration::from_secs(10)).await;

    // Alice, on a live gateway, goes on; bob misses these.
    let missed = [alice.say("lobby", "while you were away 1").await, alice.say("lobby", "while you were away 2").await];

    // Bob comes back through the load balancer, on another gateway, and resumes.
    let (mut bob, welcome) = connect("bob", &[&bob_welcome["node"]]).await;
    assert_ne!(welcome["node"], bob_welcome["node"]);
    let resumed = bob.request(json!({"type": "join", "room": "lobby", "since": hello["seq"], "epoch": epoch})).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let texts: Vec<&Value> = resumed["history"].as_array().unwrap().iter().map(|m| &m["text"]).collect();
    assert_eq!(texts, [&json!("while you were away 1"), &json!("while you were away 2")]);
    assert_eq!(resumed["seq"], missed[1]["seq"]);

    docker(&["start", &killed]);
}
