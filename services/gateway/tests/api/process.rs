//! The real binary: configuration from the environment, `gateway token`,
//! and SIGTERM.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Client, GatewayProcess};

#[tokio::test]
async fn token_subcommand_mints_a_token_the_gateway_accepts() {
    let secret = "process-secret";
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["token", "--sub", "alice", "--name", "Alice", "--ttl", "600", "--rooms", "lobby,team-*"])
        .env("CHAT_AUTH__HS256_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let gateway = GatewayProcess::start(&[
        ("CHAT_AUTH__MODE", "jwt"),
        ("CHAT_AUTH__HS256_SECRET", secret),
        ("CHAT_GATEWAY__NODE_ID", "gw-proc"),
    ]);
    let mut c = Client::connect(&gateway.ws_url(&format!("token={token}"))).await.unwrap();
    let welcome = c.recv().await;
    assert_eq!(welcome["user"], json!({"id": "alice", "name": "Alice"}));
    assert_eq!(welcome["node"], "gw-proc", "CHAT_GATEWAY__NODE_ID is read");
    assert_eq!(c.request(json!({"type": "join", "room": "secret"})).await["code"], "forbidden");
    let no_secret = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["token", "--sub", "a"])
        .env_remove("CHAT_AUTH__HS256_SECRET")
        .output()
        .unwrap();
    assert!(!no_secret.status.success());
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_within_the_drain_timeout() {
    let mut gateway = GatewayProcess::start(&[("CHAT_GATEWAY__SHUTDOWN__DRAIN_TIMEOUT_MS", "2000")]);
    let mut a = Client::connect(&gateway.ws_url("user=a")).await.unwrap();
    let mut b = Client::connect(&gateway.ws_url("user=b")).await.unwrap();
    a.recv().await;
    b.recv().await;
    a.join("r").await;
    gateway.signal("TERM");
    assert_eq!(a.expect_close(Duration::from_secs(3)).await, Some(1001));
    assert_eq!(b.expect_close(Duration::from_secs(3)).await, Some(1001));
    let (took, status) = gateway.wait_exit(Duration::from_secs(3));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_millis(2_500), "{took:?}");
}

#[tokio::test]
async fn sigint_stops_it_too_and_bad_configuration_is_refused() {
    let mut gateway = GatewayProcess::start(&[]);
    gateway.signal("INT");
    let (_, status) = gateway.wait_exit(Duration::from_secs(3));
    assert!(status.success());
    let bad = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("CHAT_AUTH__MODE", "jwt")
        .env_remove("CHAT_AUTH__HS256_SECRET")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("auth.hs256_secret"));
    let typo = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("CHAT_GATEWAY__LIMITS__MAX_FRAME_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2));
}

#[tokio::test]
async fn a_connection_cap_above_the_open_file_limit_is_warned_about_at_start() {
    use std::io::{BufRead, BufReader};
    let port = test_support::free_port();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("CHAT_GATEWAY__LISTEN", format!("127.0.0.1:{port}"))
        .env("CHAT_GATEWAY__LIMITS__MAX_CONNECTIONS", "4000000000")
        .env("CHAT_LOG__LEVEL", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(gateway.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("open-file limit") && tx.send(line).is_err() {
                return;
            }
        }
    });
    let warned = rx.recv_timeout(Duration::from_secs(10)).is_ok();
    gateway.kill().unwrap();
    let _ = gateway.wait();
    assert!(warned, "no warning about the open-file limit");
}
