//! Building and running a gateway: [`Application::build`] binds the listener
//! and wires the parts; [`Application::run_until_stopped`] serves until
//! SIGTERM/SIGINT (or [`ShutdownHandle::shutdown`]) and then drains.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_factory, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::{web, App};
use anyhow::Context as _;
use tokio::sync::watch;

use chat_shared::CloseCode;

use crate::auth::Authenticator;
use crate::engine::history::{NodeHistory, ServiceClient};
use crate::engine::redis::{self, RedisEngineSettings};
use crate::engine::{memory, Engine};
use crate::files::Files;
use crate::hub::{catch_up, recent, Hub};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::settings::{EngineKind, Settings};
use crate::socket;

/// A bound, ready-to-run gateway.
pub struct Application {
    port: u16,
    server: Server,
    node: Arc<Node>,
    shutdown_rx: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

/// Starts the drain of a running [`Application`] from elsewhere (tests).
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Application {
    /// Binds `settings.gateway.listen` and builds the node. Must run inside an actix
    /// system.
    ///
    /// # Errors
    /// An address that cannot be bound, an unreadable key file, or an engine
    /// that cannot start.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let cluster = &settings.cluster;
        match settings.gateway.engine {
            EngineKind::Memory => {
                let (history, dm) = (cluster.history.clone(), cluster.dm.clone());
                let max_files = settings.gateway.files.max_indexed_files;
                Self::build_with_engine(settings, |_| Ok(memory::engine(history, dm, max_files))).await
            }
            EngineKind::Redis => {
                let redis_settings = RedisEngineSettings {
                    redis: cluster.redis.clone(),
                    history: cluster.history.clone(),
                    dm: cluster.dm.clone(),
                    lease: cluster.presence.lease(),
                    node_id: RedisEngineSettings::incarnation(&settings.gateway.node_id),
                };
                Self::build_with_engine(settings, |metrics| redis::connect(redis_settings, metrics)).await
            }
        }
    }

    /// [`Application::build`] with an engine of the caller's making (given
    /// the node's delivery sink and metrics), for engines chosen outside the
    /// settings.
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_engine(
        settings: Settings,
        make_engine: impl FnOnce(Arc<Metrics>) -> anyhow::Result<Engine>,
    ) -> anyhow::Result<Application> {
        let metrics = Arc::new(Metrics::new().context("metrics registration")?);
        let mut engine = make_engine(metrics.clone())?;
        let service = &settings.gateway.history_service;
        let service = match service.url.as_str() {
            "" => None,
            url => Some(ServiceClient::new(
                url,
                Duration::from_millis(service.request_timeout_ms),
                service.max_response_bytes,
            )?),
        };
        engine.history = Arc::new(NodeHistory::new(engine.history, service, engine.bus.clone(), metrics.clone()));
        // The hub owns each room's stream on this node; the bus delivers to it.
        let limits = &settings.gateway.limits;
        let recent = recent::Limits {
            max_events: limits.max_cached_events_per_room,
            retention: settings.cluster.history.retention(),
        };
        let (hub, catch_ups) = Hub::new(engine.bus.clone(), metrics.clone(), limits.max_outbox_bytes, recent);
        let history_size = settings.cluster.history.size;
        actix_rt::spawn(catch_up::run(hub.clone(), engine.history.clone(), history_size, catch_ups));
        engine.bus.start(hub.clone());
        let auth = Authenticator::new(&settings.cluster.auth)?;
        let listener = TcpListener::bind(&settings.gateway.listen)
            .with_context(|| format!("binding {}", settings.gateway.listen))?;
        let port = listener.local_addr()?.port();
        let drain_secs = settings.gateway.shutdown.drain_timeout_ms.div_ceil(1000).max(1);
        let workers = if settings.gateway.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            settings.gateway.workers
        };
        check_open_files(settings.gateway.limits.max_connections);
        let files = Files::open(&settings.gateway.files, engine.files.clone(), settings.cluster.history.retention())
            .context("gateway.files")?;
        let files = Arc::new(files);
        files.start_sweeping();
        let node = Arc::new(Node::new(settings, engine, hub, metrics, auth, files));
        let server = serve(listener, node.clone(), workers, drain_secs)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tracing::info!(node = %node.node_id, port, engine = ?node.settings.gateway.engine, auth = ?node.settings.cluster.auth.mode, "gateway listening");
        Ok(Application { port, server, node, shutdown_rx, shutdown_tx })
    }

    /// The bound port (useful with `listen = "127.0.0.1:0"`).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn node(&self) -> Arc<Node> {
        self.node.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown_tx.clone())
    }

    /// Serves until SIGTERM, SIGINT or [`ShutdownHandle::shutdown`], then
    /// drains: readiness fails, every socket is closed with 1001, every
    /// session's presence is cleared, and the server stops within
    /// `shutdown.drain_timeout_ms`.
    ///
    /// # Errors
    /// The HTTP server failing.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application { server, node, mut shutdown_rx, .. } = self;
        let handle = server.handle();
        let server_task = actix_rt::spawn(server);
        tokio::select! {
            _ = wait_for_signal() => tracing::info!("signal received"),
            _ = shutdown_rx.wait_for(|stop| *stop) => tracing::info!("shutdown requested"),
        }
        drain(&node).await;
        node.engine.presence.shutdown().await;
        handle.stop(false).await;
        server_task.await.context("server task")?.context("server")?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The HTTP server: the routes of [`crate::http::routes`] on HTTP/1, and
/// every WebSocket handshake handed to [`socket::upgrade::accept`], which
/// takes the socket out of the HTTP/1 dispatcher (its buffers are 16 KiB a
/// connection, for nothing once the socket speaks WebSocket).
fn serve(listener: TcpListener, node: Arc<Node>, workers: usize, drain_secs: u64) -> anyhow::Result<Server> {
    let local_addr = listener.local_addr()?;
    let request_timeout = Duration::from_millis(node.settings.gateway.limits.request_timeout_ms);
    let server = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(drain_secs)
        .listen("gateway", listener, move || {
            let app_node = web::Data::from(node.clone());
            let app = App::new().app_data(app_node).configure(crate::http::routes);
            let ws_node = node.clone();
            let upgrade = fn_factory(move || {
                let node = ws_node.clone();
                async move {
                    Ok::<_, ()>(fn_service(move |(req, framed)| socket::upgrade::accept(node.clone(), req, framed)))
                }
            });
            HttpService::build()
                .keep_alive(KeepAlive::Timeout(request_timeout))
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                // Frames are small and latency matters: no Nagle delay (with
                // the peer's delayed ACK it held frames back by 40 ms and more).
                .tcp_nodelay(true)
                .local_addr(local_addr)
                .upgrade(upgrade)
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?
        .run();
    Ok(server)
}

/// Files a gateway keeps for everything but client sockets: the listener,
/// Redis connections, the history service's connection pool, logs.
const RESERVED_FILES: u64 = 256;

/// Raises this process's open-file limit to its hard limit (each connection
/// is one file), and warns when `gateway.limits.max_connections` does not
/// fit in it: past the limit, accepting a client and calling a backend both
/// fail (a join then gets `unavailable`).
fn check_open_files(max_connections: u32) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit = raised;
            }
        }
        let files: u64 = limit.rlim_cur;
        if u64::from(max_connections) + RESERVED_FILES > files {
            tracing::warn!(
                max_connections,
                open_file_limit = files,
                "gateway.limits.max_connections does not fit this process's open-file limit: past about {} \
                 connections, new connections and backend calls fail; lower max_connections or raise the limit",
                files.saturating_sub(RESERVED_FILES)
            );
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(err) => {
                tracing::warn!(cause = %err, "SIGTERM handler unavailable; only SIGINT stops the gateway");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Fails readiness, closes every socket with 1001 and waits (up to the drain
/// timeout) until every session has finished its cleanup (presence).
async fn drain(node: &Node) {
    let timeout = Duration::from_millis(node.settings.gateway.shutdown.drain_timeout_ms);
    node.start_draining();
    let closed = node.hub.close_all(CloseCode::GoingAway, "server shutting down");
    tracing::info!(sessions = closed, "draining");
    if tokio::time::timeout(timeout, node.connections_done()).await.is_err() {
        let left = node.hub.stats().connections;
        tracing::warn!(sessions = left, "drain timeout: stopping with sessions still open");
    }
}
