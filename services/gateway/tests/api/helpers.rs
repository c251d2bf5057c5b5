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
use gateway::metrics::Metrics;
use gateway::node::Node;
use gateway::settings::EngineKind;
use gateway::{Application, Settings, ShutdownHandle};

/// How long a test waits for an expected frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A gateway running in this process on its own actix system thread.
pub struct TestApp {
    pub port: u16,
    pub node: Arc<Node>,
    pub shutdown: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The Redis and history service of a single-node test run with
    /// `GATEWAY_TEST_ENGINE=redis` (the history process is dropped first).
    redis: Option<(HistoryProcess, RedisServer)>,
}

/// With `GATEWAY_TEST_ENGINE=redis`, every single-node test runs its gateway on
/// the Redis engine with a Redis and a history service of its own (`make test`
/// runs both ways).
fn redis_for_single_node_tests() -> bool {
    std::env::var("GATEWAY_TEST_ENGINE").is_ok_and(|engine| engine == "redis")
}

/// Settings for tests: a free port, short drain, quiet logs.
pub fn test_settings() -> Settings {
    let mut settings =
        Settings { listen: "127.0.0.1:0".into(), node_id: "gw-test".into(), workers: 2, ..Settings::default() };
    settings.shutdown.drain_timeout_ms = 3_000;
    settings
}

/// Builds an engine for a test gateway from the node's delivery sink.
pub type EngineFactory = Box<dyn FnOnce(Arc<dyn Deliver>, Arc<Metrics>) -> anyhow::Result<Engine> + Send>;

/// Starts a gateway with [`test_settings`] changed by `configure`.
pub fn spawn_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(configure, None)
}

/// [`spawn_app`] with an engine of the test's making.
pub fn spawn_app_with(configure: impl FnOnce(&mut Settings), engine: Option<EngineFactory>) -> TestApp {
    let mut settings = test_settings();
    configure(&mut settings);
    let redis = if engine.is_none() && settings.engine == EngineKind::Memory && redis_for_single_node_tests() {
        let server = RedisServer::start();
        let history = HistoryProcess::start(
            &server.url(),
            &[
                ("CHAT_HISTORY__SIZE", &settings.history.size.to_string()),
                ("CHAT_HISTORY__RETENTION_DAYS", &settings.history.retention_days.to_string()),
            ],
        );
        settings.engine = EngineKind::Redis;
        settings.redis.url = server.url();
        settings.history.url = history.url();
        Some((history, server))
    } else {
        None
    };
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
            tx.send((app.port(), app.node(), app.shutdown_handle())).expect("test is waiting");
            app.run_until_stopped().await.expect("gateway runs");
        });
    });
    let (port, node, shutdown) = rx.recv_timeout(Duration::from_secs(10)).expect("gateway started");
    let app = TestApp { port, node, shutdown, thread: Some(thread), redis };
    if app.redis.is_some() {
        wait_ready_blocking(&app);
    }
    app
}

impl TestApp {
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws{}{}", self.port, if query.is_empty() { "" } else { "?" }, query)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// An anonymous client with this user id and name.
    pub async fn client(&self, user: &str) -> Client {
        let mut client = Client::connect(&self.ws_url(&format!("user={user}&name={user}"))).await.expect("connects");
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    /// Starts the drain and waits for the gateway thread to end.
    pub fn stop(mut self) -> Stopped {
        let started = Instant::now();
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("gateway thread ends cleanly");
        }
        Stopped { took: started.elapsed(), redis: self.redis.take().map(|(_, redis)| redis) }
    }

    /// Reads a metric's value from `/metrics` (a line `name value`).
    pub async fn metric(&self, series: &str) -> f64 {
        let body = reqwest::get(self.http_url("/metrics")).await.unwrap().text().await.unwrap();
        body.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {series} not found"))
    }
}

/// A stopped gateway: how long the stop took; its Redis (if any) lives on
/// until this is dropped, so the test can still look at the state.
pub struct Stopped {
    pub took: Duration,
    pub redis: Option<RedisServer>,
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

    pub async fn connect_request(request: tungstenite::handshake::client::Request) -> Result<Client, Refused> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Client { ws, next_id: 1, backlog: Default::default() }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_ref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(other) => panic!("connect failed: {other}"),
        }
    }

    /// Connects, or `None` on any failure (a load balancer with no backend yet).
    pub async fn try_connect(url: &str) -> Option<Client> {
        let request = url.into_client_request().ok()?;
        let (ws, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(Client { ws, next_id: 1, backlog: Default::default() })
    }

    /// Connects over a socket with a small receive buffer (slow-consumer tests).
    pub async fn connect_small_buffer(url: &str, recv_buffer_bytes: u32) -> Client {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap().parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer_bytes).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.unwrap();
        Client { ws, next_id: 1, backlog: Default::default() }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::Text(frame.to_string().into())).await.expect("send");
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
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            match next {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).expect("JSON frame")),
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

    /// The seqs of the next `n` `message` frames (other frames skipped);
    /// fewer if nothing arrives for 5 s.
    pub async fn message_seqs(&mut self, n: usize) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(n);
        while seqs.len() < n {
            let Some(frame) = self.try_recv(FRAME_TIMEOUT).await else { break };
            if frame["type"] == "message" {
                seqs.push(frame["seq"].as_u64().expect("message seq"));
            }
        }
        seqs
    }

    pub async fn join(&mut self, room: &str) -> Value {
        let reply = self.request(json!({"type": "join", "room": room})).await;
        assert_eq!(reply["type"], "joined", "{reply}");
        reply
    }

    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        let reply = self.request(json!({"type": "send", "room": room, "text": text})).await;
        assert_eq!(reply["type"], "ack", "{reply}");
        reply
    }
}

/// Sends `send` frames into `room` (already joined) as fast as the server
/// takes them until `stop` is set, reading its own traffic every
/// `drain_every` sends so that it is no slow consumer; yields how many it sent.
pub fn send_until_stopped(
    mut client: Client,
    room: &str,
    drain_every: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let room = room.to_owned();
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            client.send(json!({"type": "send", "room": room, "text": format!("m{n}")})).await;
            n += 1;
            if n % drain_every == 0 {
                while client.try_recv(Duration::from_millis(1)).await.is_some() {}
            }
        }
        n
    })
}

/// Publishes through the operator API.
pub async fn admin_post(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(app.http_url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A free loopback port (for process tests that cannot use port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns how long it took.
    pub fn wait_exit(&mut self, within: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            assert!(started.elapsed() < within, "process still running after {within:?}");
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
pub fn sign(claims: &Value, alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, key).unwrap()
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A `redis-server` on a free loopback port, stopped on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    args: Vec<String>,
}

fn redis_server_binary() -> &'static str {
    static CHECKED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    CHECKED.get_or_init(|| {
        if Command::new("redis-server").arg("--version").output().is_err() {
            panic!(
                "redis-server is not installed: run `make test` (it installs it) or `apt-get install -y redis-server`"
            );
        }
    });
    "redis-server"
}

impl RedisServer {
    /// A standalone server without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server that fsyncs every write (survives `kill -9` with its data).
    pub fn start_durable() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
    }

    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chat-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec!["--port".into(), port.to_string(), "--bind".into(), "127.0.0.1".into()];
        args.extend(["--dir".into(), dir.display().to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = RedisServer { port, child: None, dir, args };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_cli(self.port, &["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on {} did not answer", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `redis-cli -p PORT ARGS…` and returns its output.
/// A gateway's name in Redis, `NODE_ID~INCARNATION` (each process start has
/// its own), as listed in `chat:nodes`.
pub fn redis_node_name(redis: &RedisServer, node_id: &str) -> String {
    let prefix = format!("{node_id}~");
    let listed = redis.cli(&["zrange", "chat:nodes", "0", "-1"]);
    listed
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{node_id} not in {listed:?}"))
}

pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// A 3-master Redis Cluster on loopback.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = Command::new("redis-cli").args(&args).output().expect("redis-cli runs");
        assert!(created.status.success(), "cluster create: {}", String::from_utf8_lossy(&created.stderr));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"));
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push_str(if i == 1 { "?" } else { "&" });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    /// Every shard channel with a subscriber, across the masters.
    pub fn shard_channels(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.cli(&["pubsub", "shardchannels"]).lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|l| !l.is_empty())
            .collect();
        all.sort();
        all
    }
}

/// Starts `n` in-process gateways on one Redis URL.
pub fn spawn_cluster(n: usize, redis_url: &str, configure: impl Fn(&mut Settings)) -> Vec<TestApp> {
    (0..n)
        .map(|i| {
            spawn_app(|s| {
                s.engine = gateway::settings::EngineKind::Redis;
                s.redis.url = redis_url.to_owned();
                s.node_id = format!("gw-{}", i + 1);
                s.workers = 1;
                configure(s);
            })
        })
        .collect()
}

fn wait_ready_blocking(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.node.engine.bus.readiness().is_err() {
        assert!(Instant::now() < deadline, "gateway on {} never became ready", app.port);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `/readyz` answers 200 on every gateway.
pub async fn wait_ready(apps: &[TestApp]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for app in apps {
        loop {
            let response = reqwest::get(app.http_url("/readyz")).await.unwrap();
            if response.status().is_success() {
                break;
            }
            let why = response.text().await.unwrap_or_default();
            assert!(Instant::now() < deadline, "gateway {} never became ready: {why}", app.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A binary of this workspace's `package` (same name), built once per test run.
fn workspace_binary(package: &'static str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.contains(&package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo).args(["build", "--quiet", "-p", package]).status().expect("cargo runs");
        assert!(status.success(), "building {package} failed");
        built.push(package);
    }
    target.join("debug").join(package)
}

fn presence_binary() -> std::path::PathBuf {
    workspace_binary("presence")
}

/// Waits until something listens on `port`.
fn wait_listening(what: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `history` service process on a fixed port (kept across restarts),
/// killed on drop.
pub struct HistoryProcess {
    child: Option<Child>,
    pub port: u16,
    redis_url: String,
    extra: Vec<(String, String)>,
}

impl HistoryProcess {
    pub fn start(redis_url: &str, extra: &[(&str, &str)]) -> HistoryProcess {
        let mut process = HistoryProcess {
            child: None,
            port: free_port(),
            redis_url: redis_url.to_owned(),
            extra: extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let mut command = Command::new(workspace_binary("history"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHAT_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("CHAT_REDIS__URL", &self.redis_url)
            .env("CHAT_LOG__LEVEL", "warn")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn().expect("history binary runs"));
        wait_listening("history", self.port);
    }

    /// The URL gateways are given as `history.url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET `path`: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.url())).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET `path` as text (metrics).
    pub async fn text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.url())).await.unwrap().text().await.unwrap()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new process on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for HistoryProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `presence` process, killed on drop.
pub struct PresenceProcess {
    pub child: Child,
    pub port: u16,
}

impl PresenceProcess {
    pub fn start(redis_url: &str, replica: &str, extra: &[(&str, &str)]) -> PresenceProcess {
        let port = free_port();
        let mut command = Command::new(presence_binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHAT_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHAT_REDIS__URL", redis_url)
            .env("CHAT_REPLICA_ID", replica)
            .env("CHAT_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command.spawn().expect("presence binary runs");
        wait_listening("presence", port);
        PresenceProcess { child, port }
    }

    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.port)).await.unwrap().json().await.unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PresenceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
