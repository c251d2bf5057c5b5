//! The presence service's Prometheus metrics.

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

pub struct Metrics {
    pub registry: Registry,
    /// `chat_presence_online_users`: distinct users connected to live gateways.
    pub online_users: IntGauge,
    /// `chat_presence_live_nodes`: gateways holding a lease.
    pub live_nodes: IntGauge,
    /// `chat_presence_sweeps_total`: crashed gateways swept.
    pub sweeps: IntCounter,
    /// `chat_presence_swept_sessions_total`: connections cleared by sweeps.
    pub swept_sessions: IntCounter,
    /// `chat_presence_sweep_seconds`: time to sweep one crashed gateway.
    pub sweep_seconds: Histogram,
    /// `chat_presence_dead_nodes`: listed gateways without a lease at the start of the last round (swept in it unless it failed).
    pub dead_nodes: IntGauge,
    /// `chat_presence_last_sweep_timestamp_seconds`: when a sweep round last completed.
    pub last_sweep: Gauge,
    /// `chat_redis_up`: 1 while Redis is reachable; set at each scrape.
    pub redis_up: IntGauge,
}

impl Metrics {
    /// # Errors
    /// Only on a programming error (a duplicate metric).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let metrics = Metrics {
            registry: Registry::new(),
            online_users: IntGauge::new("chat_presence_online_users", "Distinct users connected to live gateways.")?,
            live_nodes: IntGauge::new("chat_presence_live_nodes", "Gateways holding a lease.")?,
            sweeps: IntCounter::new("chat_presence_sweeps_total", "Crashed gateways swept.")?,
            swept_sessions: IntCounter::new("chat_presence_swept_sessions_total", "Connections cleared by sweeps.")?,
            sweep_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_presence_sweep_seconds", "Time to sweep one crashed gateway.")
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            dead_nodes: IntGauge::new(
                "chat_presence_dead_nodes",
                "Listed gateways without a lease at the start of the last sweep round.",
            )?,
            last_sweep: Gauge::new(
                "chat_presence_last_sweep_timestamp_seconds",
                "When a sweep round last completed (Unix seconds).",
            )?,
            redis_up: IntGauge::new("chat_redis_up", "1 while Redis is reachable.")?,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.online_users.clone()))?;
        r.register(Box::new(metrics.live_nodes.clone()))?;
        r.register(Box::new(metrics.sweeps.clone()))?;
        r.register(Box::new(metrics.swept_sessions.clone()))?;
        r.register(Box::new(metrics.sweep_seconds.clone()))?;
        r.register(Box::new(metrics.dead_nodes.clone()))?;
        r.register(Box::new(metrics.last_sweep.clone()))?;
        r.register(Box::new(metrics.redis_up.clone()))?;
        Ok(metrics)
    }
}
