//! Client addresses behind a real haproxy: with `gateway.trusted_proxies`,
//! the per-address connection limit counts each client's address (from
//! `X-Forwarded-For`), not the proxy's. Clients come from distinct loopback
//! addresses (127.0.0.2, 127.0.0.3, …), as from distinct hosts.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{spawn_app, Client, TestApp};
use test_support::Haproxy;

/// A TCP connection to `port` from the loopback address `from`.
async fn connect_from(from: &str, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse::<SocketAddr>().unwrap()).unwrap();
    socket.connect(([127, 0, 0, 1], port).into()).await.unwrap()
}

/// A WebSocket client of user `user`, from `from`, through `port`.
async fn client_from(from: &str, port: u16, user: &str) -> Client {
    let stream = connect_from(from, port).await;
    let mut client = Client::connect_over(stream, &format!("ws://127.0.0.1:{port}/ws?user={user}")).await;
    assert_eq!(client.recv().await["type"], "welcome");
    client
}

/// What a handshake from `from` for `user` would get (`GET /ws` without
/// upgrade: the refusal, or 426), with extra request headers.
async fn probe_from(from: &str, port: u16, user: &str, headers: &str) -> u16 {
    let mut stream = connect_from(from, port).await;
    let request = format!("GET /ws?user={user} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn one_per_address(trusted: &[&str]) -> TestApp {
    let trusted: Vec<String> = trusted.iter().map(|s| (*s).to_owned()).collect();
    spawn_app(move |s| {
        s.gateway.limits.max_connections_per_ip = 1;
        s.gateway.trusted_proxies = trusted;
    })
}

#[tokio::test]
async fn behind_a_trusted_haproxy_the_per_address_limit_counts_each_client() {
    let app = one_per_address(&["127.0.0.1/32"]);
    let lb = Haproxy::start(&[app.port]);
    let _first = client_from("127.0.0.2", lb.port, "a").await;
    // Another client behind the same proxy has a place of its own.
    assert_eq!(probe_from("127.0.0.3", lb.port, "b", "").await, 426);
    let _second = client_from("127.0.0.3", lb.port, "b").await;
    // The same client address again is over its limit.
    assert_eq!(probe_from("127.0.0.2", lb.port, "c", "").await, 429);
    // A client cannot pass as another by writing the header itself: the
    // proxy appends the address it saw, and that one counts.
    assert_eq!(probe_from("127.0.0.2", lb.port, "c", "X-Forwarded-For: 127.0.0.9\r\n").await, 429);
    // Nor without the proxy: a peer that is not a trusted proxy is itself the client.
    assert_eq!(probe_from("127.0.0.4", app.port, "d", "X-Forwarded-For: 127.0.0.9\r\n").await, 426);
    assert_eq!(probe_from("127.0.0.2", app.port, "d", "X-Forwarded-For: 127.0.0.9\r\n").await, 429);
}

#[tokio::test]
async fn without_trusted_proxies_everyone_behind_the_proxy_shares_one_address() {
    // What the setting fixes: the proxy's address is the only one counted.
    let app = one_per_address(&[]);
    let lb = Haproxy::start(&[app.port]);
    let _first = client_from("127.0.0.2", lb.port, "a").await;
    assert_eq!(probe_from("127.0.0.3", lb.port, "b", "").await, 429);
}
