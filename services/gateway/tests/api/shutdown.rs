//! The drain: readiness fails, sockets close with 1001, presence is cleared.

use std::time::Duration;

use crate::helpers::{spawn_app, Client};

#[tokio::test]
async fn drain_closes_every_socket_with_1001_and_clears_presence() {
    // A long drain timeout: the stop must end when the sessions are done, not at it.
    let app = spawn_app(|s| s.gateway.shutdown.drain_timeout_ms = 20_000);
    let mut a = app.client("a").await;
    let mut b = app.client("b").await;
    a.join("r").await;
    b.join("r").await;
    a.recv_type("presence").await;
    let node = app.node.clone();
    let port = app.port;
    let stopper = std::thread::spawn(move || app.stop());
    assert_eq!(a.expect_close(Duration::from_secs(3)).await, Some(1001));
    assert_eq!(b.expect_close(Duration::from_secs(3)).await, Some(1001));
    let stopped = tokio::task::spawn_blocking(move || stopper.join().unwrap()).await.unwrap();
    let took = stopped.took;
    assert!(took < Duration::from_secs(3), "stopped once every session was done: {took:?}");
    match &stopped.redis {
        // The stopped node's Redis clients are gone with its runtime: ask Redis.
        Some(redis) => assert_eq!(redis.cli(&["hlen", "chat:{r:r}:pnames"]).trim(), "0", "nobody is left online"),
        None => {
            let room = chat_shared::protocol::RoomName::parse("r").unwrap();
            assert_eq!(node.engine.presence.members(&room).await.unwrap(), vec![], "nobody is left online");
        }
    }
    assert_eq!(node.hub.stats().connections, 0);
    assert!(node.is_draining());
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn readiness_fails_and_new_connections_get_503_while_draining() {
    let app = spawn_app(|s| s.gateway.shutdown.drain_timeout_ms = 2_000);
    // A client that never reads keeps the drain waiting for its close.
    let stalled = Client::connect_small_buffer(&app.ws_url("user=stalled"), 4096).await;
    app.node.start_draining();
    let ready = reqwest::get(app.http_url("/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let health = reqwest::get(app.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "alive while draining");
    let refused = Client::connect(&app.ws_url("user=late")).await.err().expect("refused");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.body["error"]["code"], "unavailable");
    drop(stalled);
}
