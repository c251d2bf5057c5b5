//! The state one gateway process shares between its HTTP handlers and its
//! sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::files::Files;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::settings::Settings;

/// At most one read receipt per user and room (or conversation), and one
/// status relay per user, in this interval (the last one always goes out).
pub const RELAY_INTERVAL_MS: u64 = 1_000;

/// A place among this node's `gateway.limits.max_connections`, taken before
/// the WebSocket upgrade and held by the session until its cleanup (presence,
/// subscriptions) is done.
pub type ConnectionPermit = OwnedSemaphorePermit;

/// Everything a gateway node holds.
pub struct Node {
    pub settings: Settings,
    /// `settings.gateway.node_id`, shared cheaply with every session.
    pub node_id: Arc<str>,
    pub engine: Engine,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    /// Uploads, downloads and the life of files.
    pub files: Arc<Files>,
    /// `gateway.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The throttle of read receipts and status relays.
    pub relay: Arc<Relay>,
    /// Set on SIGTERM: readiness fails and new connections get 503.
    draining: AtomicBool,
    /// One permit per connection this node may hold; all of them back means
    /// every session has finished (what the drain waits for).
    connections: Arc<Semaphore>,
    /// `gateway.limits.max_connections`: the permits in all.
    max_connections: u32,
    pub started: Instant,
}

impl Node {
    pub fn new(
        settings: Settings,
        engine: Engine,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        auth: Authenticator,
        files: Arc<Files>,
    ) -> Node {
        let max_connections = settings.gateway.limits.max_connections;
        let relay = Relay::new(Duration::from_millis(RELAY_INTERVAL_MS), settings.gateway.limits.max_throttled_relays);
        // Checked by Settings::validate.
        let trusted_proxies = settings.gateway.trusted_proxy_ranges().unwrap_or_default();
        Node {
            relay,
            node_id: Arc::from(settings.gateway.node_id.as_str()),
            settings,
            engine,
            hub,
            metrics,
            auth,
            files,
            trusted_proxies,
            draining: AtomicBool::new(false),
            connections: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
            started: Instant::now(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// A place for one more connection, or `None` when the node is full.
    pub fn try_connection(&self) -> Option<ConnectionPermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// Resolves once every connection's permit is back: every session has
    /// finished its cleanup.
    pub async fn connections_done(&self) {
        // The semaphore is never closed, so this cannot fail; the permits are
        // given back at once (the node is stopping anyway).
        drop(self.connections.acquire_many(self.max_connections).await);
    }
}
