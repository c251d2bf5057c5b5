//! The state one gateway process shares between its HTTP handlers and its
//! sessions.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// Everything a gateway node holds.
pub struct Node {
    pub settings: Settings,
    /// `settings.gateway.node_id`, shared cheaply with every session.
    pub node_id: Arc<str>,
    pub engine: Engine,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    /// Set on SIGTERM: readiness fails and new connections get 503.
    draining: AtomicBool,
    /// Sessions whose cleanup (presence, subscriptions) has not finished;
    /// the drain waits for it to reach zero.
    live_sessions: Arc<AtomicUsize>,
    pub started: Instant,
}

impl Node {
    pub fn new(settings: Settings, engine: Engine, hub: Arc<Hub>, metrics: Arc<Metrics>, auth: Authenticator) -> Node {
        Node {
            node_id: Arc::from(settings.gateway.node_id.as_str()),
            settings,
            engine,
            hub,
            metrics,
            auth,
            draining: AtomicBool::new(false),
            live_sessions: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Counts a session until the returned guard is dropped.
    pub fn session_guard(&self) -> SessionGuard {
        self.live_sessions.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.live_sessions.clone())
    }

    /// Sessions not yet fully cleaned up.
    pub fn live_sessions(&self) -> usize {
        self.live_sessions.load(Ordering::SeqCst)
    }
}

/// Held by a session from its start until its cleanup has finished.
pub struct SessionGuard(Arc<AtomicUsize>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
