//! The history service's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    /// `chat_history_replays_total{kind}`: reads served, by `room` or `conversation`.
    pub replays: IntCounterVec,
    /// `chat_history_messages_replayed_total`: messages returned by those reads.
    pub messages_replayed: IntCounter,
    /// `chat_history_read_seconds`: time to serve one read, Redis included.
    pub read_seconds: Histogram,
    /// `chat_history_read_errors_total`: reads that failed because Redis did.
    pub read_errors: IntCounter,
    /// `chat_redis_up`: 1 while Redis is reachable; set at each scrape.
    pub redis_up: IntGauge,
}

impl Metrics {
    /// # Errors
    /// Only on a programming error (a duplicate metric).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let metrics = Metrics {
            registry: Registry::new(),
            replays: IntCounterVec::new(
                Opts::new("chat_history_replays_total", "History reads served, by kind (room or conversation)."),
                &["kind"],
            )?,
            messages_replayed: IntCounter::new(
                "chat_history_messages_replayed_total",
                "Messages returned by history reads.",
            )?,
            read_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_history_read_seconds", "Time to serve one history read, Redis included.")
                    .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            )?,
            read_errors: IntCounter::new(
                "chat_history_read_errors_total",
                "History reads that failed because Redis did.",
            )?,
            redis_up: IntGauge::new("chat_redis_up", "1 while Redis is reachable.")?,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.replays.clone()))?;
        r.register(Box::new(metrics.messages_replayed.clone()))?;
        r.register(Box::new(metrics.read_seconds.clone()))?;
        r.register(Box::new(metrics.read_errors.clone()))?;
        r.register(Box::new(metrics.redis_up.clone()))?;
        // Both kinds show from the start, at 0.
        metrics.replays.with_label_values(&["room"]);
        metrics.replays.with_label_values(&["conversation"]);
        Ok(metrics)
    }
}
