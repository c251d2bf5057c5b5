//! Shared test tools: start a gateway in-process or as a real process, and a
//! small WebSocket client that speaks JSON frames.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use gateway::engine::{Deliver, Engine};
use gateway::node::Node;
use gateway::{Application, Settings, ShutdownHandle};

/// How long a test waits for an expected frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A gateway running in this process on its own actix system thread.
pub struct TestApp {
    pub port: u16,
    pub node: Arc<Node>,
    pub shutdown: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Settings for tests: a free port, short drain, quiet logs.
pub fn test_settings() -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        node_id: "gw-test".into(),
        workers: 2,
        ..Settings::default()
    };
    settings.shutdown.drain_timeout_ms = 3_000;
    settings
}

/// Builds an engine for a test gateway from the node's delivery sink.
pub type EngineFactory = Box<dyn FnOnce(Arc<dyn Deliver>) -> Engine + Send>;

/// Starts a gateway with [`test_settings`] changed by `configure`.
pub fn spawn_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(configure, None)
}

/// [`spawn_app`] with an engine of the test's making.
pub fn spawn_app_with(
    configure: impl FnOnce(&mut Settings),
    engine: Option<EngineFactory>,
) -> TestApp {
    let mut settings = test_settings();
    configure(&mut settings);
    settings.validate().expect("test settings are valid");
    if std::env::var_os("TEST_LOG").is_some() {
        chat_shared::telemetry::init(&settings.log);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let app = match engine {
                Some(make) => Application::build_with_engine(settings, make).await,
                None => Application::build(settings).await,
            }
            .expect("gateway builds");
            tx.send((app.port(), app.node(), app.shutdown_handle()))
                .expect("test is waiting");
            app.run_until_stopped().await.expect("gateway runs");
        });
    });
    let (port, node, shutdown) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("gateway started");
    TestApp {
        port,
        node,
        shutdown,
        thread: Some(thread),
    }
}

impl TestApp {
    pub fn ws_url(&self, query: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/ws{}{}",
            self.port,
            if query.is_empty() { "" } else { "?" },
            query
        )
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// An anonymous client with this user id and name.
    pub async fn client(&self, user: &str) -> Client {
        let mut client = Client::connect(&self.ws_url(&format!("user={user}&name={user}")))
            .await
            .expect("connects");
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    /// Starts the drain and waits for the gateway thread to end.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("gateway thread ends cleanly");
        }
        started.elapsed()
    }

    /// Reads a metric's value from `/metrics` (a line `name value`).
    pub async fn metric(&self, series: &str) -> f64 {
        let body = reqwest::get(self.http_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {series} not found"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// A refused upgrade: the HTTP status and the JSON body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

/// A WebSocket client that sends and receives JSON frames.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Frames read while waiting for a reply, returned by later `recv`s.
    backlog: std::collections::VecDeque<Value>,
}

impl Client {
    /// Connects; a refused upgrade comes back as [`Refused`].
    pub async fn connect(url: &str) -> Result<Client, Refused> {
        Self::connect_request(url.into_client_request().unwrap()).await
    }

    pub async fn connect_request(
        request: tungstenite::handshake::client::Request,
    ) -> Result<Client, Refused> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Client {
                ws,
                next_id: 1,
                backlog: Default::default(),
            }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(other) => panic!("connect failed: {other}"),
        }
    }

    /// Connects over a socket with a small receive buffer (slow-consumer tests).
    pub async fn connect_small_buffer(url: &str, recv_buffer_bytes: u32) -> Client {
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer_bytes).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        Client {
            ws,
            next_id: 1,
            backlog: Default::default(),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Sends a frame with a fresh `id` and returns the reply that carries it
    /// as `re`; other frames read meanwhile stay for later `recv`s.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = json!(id);
        self.send(frame).await;
        let mut skipped = Vec::new();
        loop {
            let reply = match self.read_frame(FRAME_TIMEOUT).await {
                Some(frame) => frame,
                None => panic!("no reply to {id} within {FRAME_TIMEOUT:?}"),
            };
            if reply["re"] == json!(id) {
                self.backlog.extend(skipped);
                return reply;
            }
            skipped.push(reply);
        }
    }

    /// The next JSON frame (pings are answered by the library and skipped).
    pub async fn recv(&mut self) -> Value {
        match self.try_recv(FRAME_TIMEOUT).await {
            Some(frame) => frame,
            None => panic!("no frame within {FRAME_TIMEOUT:?}"),
        }
    }

    /// The next JSON frame within `timeout`, or `None`.
    pub async fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        self.read_frame(timeout).await
    }

    async fn read_frame(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("binary frame from server"),
                Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
                Some(Err(err)) => panic!("socket error: {err}"),
                None => panic!("socket ended"),
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Asserts nothing but pings arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(frame) = self.try_recv(quiet).await {
            panic!("expected silence, got {frame}");
        }
    }

    /// Reads until the server closes; returns the close code (None if the
    /// socket ended without a close frame). Text frames before it are skipped.
    pub async fn expect_close(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("not closed within {within:?}"),
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return None,
            }
        }
    }

    pub async fn join(&mut self, room: &str) -> Value {
        let reply = self.request(json!({"type": "join", "room": room})).await;
        assert_eq!(reply["type"], "joined", "{reply}");
        reply
    }

    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        let reply = self
            .request(json!({"type": "send", "room": room, "text": text}))
            .await;
        assert_eq!(reply["type"], "ack", "{reply}");
        reply
    }
}

/// Publishes through the operator API.
pub async fn admin_post(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.http_url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A free loopback port (for process tests that cannot use port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `gateway` process on a free port, killed on drop.
pub struct GatewayProcess {
    pub child: Child,
    pub port: u16,
}

impl GatewayProcess {
    pub fn start(env: &[(&str, &str)]) -> GatewayProcess {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHAT_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHAT_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("gateway binary runs");
        let process = GatewayProcess { child, port };
        process.wait_ready();
        process
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway process did not listen on {}", self.port);
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?{}", self.port, query)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns how long it took.
    pub fn wait_exit(&mut self, within: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            assert!(
                started.elapsed() < within,
                "process still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs a token with arbitrary claims and algorithm.
pub fn sign(
    claims: &Value,
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, key).unwrap()
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
