//! One environment for every service: the `CHAT_*` settings that the compose
//! file and the Kubernetes ConfigMap and Secret give any service, together
//! with the compose file's own variables, start all three services, and they
//! work together. A misspelt key of a service's own section still stops that
//! service, with a message naming it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::helpers::{free_port, now_secs, sign, workspace_binary, Client, RedisServer, ServiceProcess};

/// The `CHAT_*: value` lines of a YAML file of this repository (the compose
/// file's environments, a ConfigMap's data), with `${VAR:-default}` taken as
/// its default and quotes removed.
fn chat_variables(file: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("CHAT_"))
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| {
            let value = value.trim().trim_matches('"');
            let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
                Some(inner) => inner.split_once(":-").map_or("", |(_, default)| default),
                None => value,
            };
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

async fn ready(url: &str) -> bool {
    reqwest::get(format!("{url}/readyz")).await.is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_starts_in_one_environment_with_every_services_settings() {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.extend(chat_variables("docker-compose.yml"));
    env.extend(chat_variables("k8s/base/config.yaml"));
    for key in
        ["CHAT_GATEWAY__ENGINE", "CHAT_AUTH__HS256_SECRET", "CHAT_PRESENCE_SERVICE__LISTEN", "CHAT_HISTORY__SIZE"]
    {
        assert!(env.contains_key(key), "{key} not read from the deployment files: {env:?}");
    }
    // What the compose file itself reads, and what a user may have exported.
    for (key, value) in [
        ("CHAT_DEV_SECRET", "compose-only"),
        ("CHAT_ADMIN_KEY", "compose-only"),
        ("CHAT_IMAGE", "chat:latest"),
        ("CHAT_PUBLISH_ADDR", "127.0.0.1"),
    ] {
        env.insert(key.to_owned(), value.to_owned());
    }
    // This machine's Redis and free ports instead of the deployments' hosts.
    let redis = RedisServer::start();
    let ports = [free_port(), free_port(), free_port()];
    for (key, value) in [
        ("CHAT_REDIS__URL", redis.url()),
        ("CHAT_GATEWAY__LISTEN", format!("127.0.0.1:{}", ports[0])),
        ("CHAT_PRESENCE_SERVICE__LISTEN", format!("127.0.0.1:{}", ports[1])),
        ("CHAT_HISTORY_SERVICE__LISTEN", format!("127.0.0.1:{}", ports[2])),
        ("CHAT_GATEWAY__HISTORY_SERVICE__URL", format!("http://127.0.0.1:{}", ports[2])),
        ("CHAT_LOG__LEVEL", "warn".to_owned()),
    ] {
        env.insert(key.to_owned(), value);
    }
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let history = ServiceProcess::start(workspace_binary("history"), ports[2], &vars);
    let presence = ServiceProcess::start(workspace_binary("presence"), ports[1], &vars);
    let gateway = ServiceProcess::start(env!("CARGO_BIN_EXE_gateway").into(), ports[0], &vars);
    let deadline = Instant::now() + Duration::from_secs(10);
    for service in [&gateway, &presence, &history] {
        while !ready(&service.url()).await {
            assert!(Instant::now() < deadline, "{} never became ready", service.url());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // They work as one: JWT from the shared auth section, history read through the service.
    let secret = EncodingKey::from_secret(env["CHAT_AUTH__HS256_SECRET"].as_bytes());
    let token = sign(&json!({"sub": "alice", "exp": now_secs() + 600}), Algorithm::HS256, &secret);
    let mut alice = Client::connect(&format!("ws://127.0.0.1:{}/ws?token={token}", ports[0])).await.unwrap();
    assert_eq!(alice.recv().await["type"], "welcome");
    alice.join("lobby").await;
    alice.say("lobby", "one environment").await;
    let joined = alice.request(json!({"type": "join", "room": "lobby"})).await;
    assert_eq!(joined["history"][0]["text"], "one environment");
    let api = reqwest::get(format!("{}/v1/rooms/lobby/members", presence.url())).await.unwrap();
    assert_eq!(api.json::<serde_json::Value>().await.unwrap()["members"][0]["id"], "alice");

    // A misspelt key of the presence service's own section stops it (and only it).
    let mut typo = Command::new(workspace_binary("presence"))
        .envs(vars.iter().copied())
        .env("CHAT_PRESENCE_SERVICE__SWEEP_INTERVALMS", "5")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = typo.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = typo.kill();
            panic!("the presence service started with a misspelt key of its own section");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut typo.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("presence_service") && stderr.contains("sweep_intervalms"), "{stderr}");
}
