//! Shared test tools: start a gateway in-process or as a real process, and a
//! small WebSocket client that speaks JSON frames.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use gateway::engine::Engine;
use gateway::metrics::Metrics;
use gateway::node::Node;
use gateway::settings::EngineKind;
use gateway::{Application, Settings, ShutdownHandle};
pub use test_support::{free_port, workspace_binary, RedisCluster, RedisServer, ServiceProcess};

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
    let mut settings = Settings::default();
    settings.gateway.listen = "127.0.0.1:0".into();
    settings.gateway.node_id = "gw-test".into();
    settings.gateway.workers = 2;
    settings.gateway.shutdown.drain_timeout_ms = 3_000;
    // Each gateway's directory store in a directory of its own.
    settings.gateway.files.directory = fresh_dir("chat-files").display().to_string();
    settings
}

/// A new, empty directory under the system's temporary directory.
pub fn fresh_dir(prefix: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Builds an engine for a test gateway (given the node's metrics).
pub type EngineFactory = Box<dyn FnOnce(Arc<Metrics>) -> anyhow::Result<Engine> + Send>;

/// Starts a gateway with [`test_settings`] changed by `configure`.
pub fn spawn_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(configure, None)
}

/// [`spawn_app`] with an engine of the test's making.
pub fn spawn_app_with(configure: impl FnOnce(&mut Settings), engine: Option<EngineFactory>) -> TestApp {
    let mut settings = test_settings();
    configure(&mut settings);
    let redis = if engine.is_none() && settings.gateway.engine == EngineKind::Memory && redis_for_single_node_tests() {
        let server = RedisServer::start();
        let history = HistoryProcess::start(
            &server.url(),
            &[
                ("CHAT_HISTORY__SIZE", &settings.cluster.history.size.to_string()),
                ("CHAT_HISTORY__RETENTION_DAYS", &settings.cluster.history.retention_days.to_string()),
            ],
        );
        settings.gateway.engine = EngineKind::Redis;
        settings.cluster.redis.url = server.url();
        settings.gateway.history_service.url = history.url();
        Some((history, server))
    } else {
        None
    };
    settings.validate().expect("test settings are valid");
    if std::env::var_os("TEST_LOG").is_some() {
        chat_shared::telemetry::init(&settings.cluster.log);
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

    /// Waits until this node holds exactly `n` sessions (a closed one is gone
    /// once its actor has stopped).
    pub async fn wait_sessions(&self, n: usize) {
        eventually(&format!("{n} sessions on the node"), || async { self.node.hub.stats().connections == n }).await;
    }

    /// Waits until `user`'s offline queue is empty (the DMs a client confirmed
    /// were removed).
    pub async fn wait_offline_empty(&self, user: &str) {
        let user = chat_shared::protocol::UserId::parse(user).unwrap();
        let history = self.node.engine.history.clone();
        eventually("the offline queue to empty", || async { history.offline(&user).await.is_ok_and(|q| q.is_empty()) })
            .await;
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

/// How long [`eventually`] waits for its condition.
pub const EVENTUALLY: Duration = Duration::from_secs(5);

/// Checks `condition` every 10 ms until it holds; panics after
/// [`EVENTUALLY`] naming `what`. For waits on something the server does in
/// the background, instead of sleeping a guessed time.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + EVENTUALLY;
    while !condition().await {
        assert!(Instant::now() < deadline, "waited {EVENTUALLY:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
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

    /// [`Client::connect`] taking the URL by value (for spawned tasks).
    pub async fn connect_url(url: String) -> Result<Client, Refused> {
        Self::connect(&url).await
    }

    /// Connects, or `None` on any failure (a load balancer with no backend yet).
    pub async fn try_connect(url: &str) -> Option<Client> {
        let request = url.into_client_request().ok()?;
        let (ws, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(Client { ws, next_id: 1, backlog: Default::default() })
    }

    /// Connects over a socket with a small receive buffer (slow-consumer tests).
    /// Connects over `stream` (a socket the test set up itself, say bound
    /// to another local address); panics when refused.
    pub async fn connect_over(stream: TcpStream, url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("admitted");
        Client { ws, next_id: 1, backlog: Default::default() }
    }

    pub async fn connect_small_buffer(url: &str, recv_buffer_bytes: u32) -> Client {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap().parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer_bytes).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.unwrap();
        Client { ws, next_id: 1, backlog: Default::default() }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_raw(Message::Text(frame.to_string().into())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        if let Message::Text(text) = &message {
            keep_fuzz_seed(text.as_str());
        }
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

/// A `gateway` process (this package's binary) on a free port, killed on drop.
pub struct GatewayProcess(ServiceProcess);

impl GatewayProcess {
    pub fn start(env: &[(&str, &str)]) -> GatewayProcess {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec![("CHAT_GATEWAY__LISTEN", listen.as_str()), ("CHAT_LOG__LEVEL", "warn")];
        all.extend_from_slice(env);
        GatewayProcess(ServiceProcess::start(env!("CARGO_BIN_EXE_gateway").into(), port, &all))
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?{}", self.port, query)
    }
}

impl std::ops::Deref for GatewayProcess {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.0
    }
}

impl std::ops::DerefMut for GatewayProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.0
    }
}

/// Signs a token with arbitrary claims and algorithm.
pub fn sign(claims: &Value, alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, key).unwrap()
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

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

/// Starts `n` in-process gateways on one Redis URL.
pub fn spawn_cluster(n: usize, redis_url: &str, configure: impl Fn(&mut Settings)) -> Vec<TestApp> {
    (0..n)
        .map(|i| {
            spawn_app(|s| {
                s.gateway.engine = gateway::settings::EngineKind::Redis;
                s.cluster.redis.url = redis_url.to_owned();
                s.gateway.node_id = format!("gw-{}", i + 1);
                s.gateway.workers = 1;
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

/// A `history` service process on a fixed port (kept across restarts),
/// killed on drop.
pub struct HistoryProcess(ServiceProcess);

impl HistoryProcess {
    pub fn start(redis_url: &str, extra: &[(&str, &str)]) -> HistoryProcess {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = vec![
            ("CHAT_HISTORY_SERVICE__LISTEN", listen.as_str()),
            ("CHAT_REDIS__URL", redis_url),
            ("CHAT_LOG__LEVEL", "warn"),
        ];
        env.extend_from_slice(extra);
        HistoryProcess(ServiceProcess::start(workspace_binary("history"), port, &env))
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
}

impl std::ops::Deref for HistoryProcess {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.0
    }
}

impl std::ops::DerefMut for HistoryProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.0
    }
}

/// A `presence` process, killed on drop.
pub struct PresenceProcess(ServiceProcess);

impl PresenceProcess {
    pub fn start(redis_url: &str, replica: &str, extra: &[(&str, &str)]) -> PresenceProcess {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = vec![
            ("CHAT_PRESENCE_SERVICE__LISTEN", listen.as_str()),
            ("CHAT_REDIS__URL", redis_url),
            ("CHAT_PRESENCE_SERVICE__REPLICA_ID", replica),
            ("CHAT_LOG__LEVEL", "warn"),
        ];
        env.extend_from_slice(extra);
        PresenceProcess(ServiceProcess::start(workspace_binary("presence"), port, &env))
    }

    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url())).await.unwrap().json().await.unwrap()
    }
}

impl std::ops::Deref for PresenceProcess {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.0
    }
}

impl std::ops::DerefMut for PresenceProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.0
    }
}

/// With `CHAT_FUZZ_SEEDS=DIR`, every text frame a test sends is kept in DIR
/// (one file each, named by its hash): the `client_frame` fuzz target's seed
/// corpus is what the protocol tests send (`fuzz/README.md`).
fn keep_fuzz_seed(text: &str) {
    use std::hash::{Hash, Hasher};
    let Some(dir) = std::env::var_os("CHAT_FUZZ_SEEDS") else { return };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let path = std::path::Path::new(&dir).join(format!("test-{:016x}", hasher.finish()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(path, text);
}
