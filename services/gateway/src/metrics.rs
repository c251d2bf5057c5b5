//! The gateway's Prometheus metrics, on a registry of its own (so several
//! gateways can run in one test process).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use chat_shared::protocol::{ClientFrame, ServerFrame};
use chat_shared::ErrorCode;

/// Label used for client frames that could not be parsed or had an unknown type.
pub const INVALID_FRAME_LABEL: &str = "invalid";

/// Every metric the gateway exports (listed in `docs/metrics.md`).
pub struct Metrics {
    pub registry: Registry,
    /// `chat_connections`: open WebSocket connections.
    pub connections: IntGauge,
    /// `chat_connections_opened_total`: connections accepted since start.
    pub connections_opened: IntCounter,
    /// `chat_connections_refused_total{code}`: upgrades refused, by error code.
    pub connections_refused: IntCounterVec,
    /// `chat_join_replays_total{source}`: join and resume replays, by where
    /// they came from (`cache`: the room's recent events on this node;
    /// `history`: a history read).
    pub join_replays: IntCounterVec,
    /// `chat_frames_in_total{type}`: client frames read, by type.
    pub frames_in: IntCounterVec,
    /// `chat_frames_out_total{type}`: frames queued to clients, by type.
    pub frames_out: IntCounterVec,
    /// `chat_errors_total{code}`: `error` frames sent, by code.
    pub errors: IntCounterVec,
    /// `chat_fanout_seconds`: time to hand one published frame to every local recipient.
    pub fanout_seconds: Histogram,
    /// `chat_publish_seconds`: time from a `send` being read to its `ack` (store and publish).
    pub publish_seconds: Histogram,
    /// `chat_join_seconds`: time from a `join` being handled to its `joined`
    /// being queued (replay, cursor, presence and members).
    pub join_seconds: Histogram,
    /// `chat_slow_consumer_closes_total`: connections closed with 4008.
    pub slow_consumer_closes: IntCounter,
    /// `chat_rate_limit_closes_total`: connections closed with 1008 for rate abuse.
    pub rate_limit_closes: IntCounter,
    /// `chat_rooms`: rooms with at least one local session.
    pub rooms: IntGauge,
    /// `chat_messages_published_total`: room messages stored and published by this node.
    pub messages_published: IntCounter,
    /// `chat_room_events_published_total{type}`: edits, deletes and reactions stored and published by this node.
    pub room_events_published: IntCounterVec,
    /// `chat_dms_published_total`: direct messages stored by this node.
    pub dms_published: IntCounter,
    /// `chat_signals_relayed_total`: sessions a `signal` from this node went to.
    pub signals_relayed: IntCounter,
    /// `chat_files_uploaded_total`: uploads stored by this node.
    pub files_uploaded: IntCounter,
    /// `chat_file_bytes_uploaded_total`: bytes of those uploads.
    pub file_bytes_uploaded: IntCounter,
    /// `chat_file_bytes_downloaded_total`: bytes of files this node served.
    pub file_bytes_downloaded: IntCounter,
    /// `chat_pubsub_lagged_total`: pub/sub messages the node's receiver fell behind on (each lag makes every room catch up).
    pub pubsub_lagged: IntCounter,
    /// `chat_catch_ups_total`: catch-up reads of a room after a gap in its seqs or a lost subscription.
    pub catch_ups: IntCounter,
    /// `chat_catch_up_closes_total`: connections closed with 1001 because the events they missed were no longer kept.
    pub catch_up_closes: IntCounter,
    /// `chat_history_service_seconds`: time for one read from the history service (`history.url`).
    pub history_service_seconds: Histogram,
    /// `chat_history_service_failures_total`: history-service reads that failed (answered `unavailable`).
    pub history_service_failures: IntCounter,
    /// `chat_replica_wait_shortfalls_total`: appends that fewer than `redis.wait_replicas` replicas acknowledged in time (answered `unavailable`).
    pub replica_wait_shortfalls: IntCounter,
    /// `chat_redis_up`: 1 while the engine's Redis is reachable with every subscription in place (always 1 on the embedded engine); set at each scrape.
    pub redis_up: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Errors
    /// Only on a programming error (a duplicate or malformed metric name).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let latency_buckets = vec![
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let metrics = Metrics {
            connections: IntGauge::new("chat_connections", "Open WebSocket connections.")?,
            connections_opened: IntCounter::new("chat_connections_opened_total", "WebSocket connections accepted.")?,
            connections_refused: IntCounterVec::new(
                Opts::new("chat_connections_refused_total", "WebSocket upgrades refused, by error code."),
                &["code"],
            )?,
            join_replays: IntCounterVec::new(
                Opts::new("chat_join_replays_total", "Join and resume replays, by source (cache or history)."),
                &["source"],
            )?,
            frames_in: IntCounterVec::new(
                Opts::new("chat_frames_in_total", "Client frames read, by type."),
                &["type"],
            )?,
            frames_out: IntCounterVec::new(
                Opts::new("chat_frames_out_total", "Frames queued to clients, by type."),
                &["type"],
            )?,
            errors: IntCounterVec::new(Opts::new("chat_errors_total", "Error frames sent, by code."), &["code"])?,
            fanout_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_fanout_seconds", "Time to hand one published frame to every local recipient.")
                    .buckets(latency_buckets.clone()),
            )?,
            publish_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_publish_seconds", "Time from reading a send to its ack (store and publish).")
                    .buckets(latency_buckets.clone()),
            )?,
            join_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_join_seconds", "Time from handling a join to queuing its joined.")
                    .buckets(latency_buckets.clone()),
            )?,
            history_service_seconds: Histogram::with_opts(
                HistogramOpts::new("chat_history_service_seconds", "Time for one read from the history service.")
                    .buckets(latency_buckets),
            )?,
            redis_up: IntGauge::new(
                "chat_redis_up",
                "1 while Redis is reachable and every subscription is in place (always 1 on the embedded engine).",
            )?,
            history_service_failures: IntCounter::new(
                "chat_history_service_failures_total",
                "History-service reads that failed; the client got unavailable.",
            )?,
            replica_wait_shortfalls: IntCounter::new(
                "chat_replica_wait_shortfalls_total",
                "Appends that fewer than redis.wait_replicas replicas acknowledged within redis.wait_timeout_ms; the \
                 client got unavailable.",
            )?,
            slow_consumer_closes: IntCounter::new(
                "chat_slow_consumer_closes_total",
                "Connections closed with 4008 because their outgoing queue overflowed.",
            )?,
            rate_limit_closes: IntCounter::new(
                "chat_rate_limit_closes_total",
                "Connections closed with 1008 for sustained rate-limit abuse.",
            )?,
            rooms: IntGauge::new("chat_rooms", "Rooms with at least one session on this node.")?,
            messages_published: IntCounter::new(
                "chat_messages_published_total",
                "Room messages stored and published by this node.",
            )?,
            room_events_published: IntCounterVec::new(
                Opts::new(
                    "chat_room_events_published_total",
                    "Edits, deletes and reactions stored and published by this node, by type.",
                ),
                &["type"],
            )?,
            dms_published: IntCounter::new("chat_dms_published_total", "Direct messages stored by this node.")?,
            signals_relayed: IntCounter::new(
                "chat_signals_relayed_total",
                "Sessions a signal from this node went to.",
            )?,
            files_uploaded: IntCounter::new("chat_files_uploaded_total", "Uploads stored by this node.")?,
            file_bytes_uploaded: IntCounter::new(
                "chat_file_bytes_uploaded_total",
                "Bytes of the uploads stored by this node.",
            )?,
            file_bytes_downloaded: IntCounter::new(
                "chat_file_bytes_downloaded_total",
                "Bytes of files this node served.",
            )?,
            pubsub_lagged: IntCounter::new(
                "chat_pubsub_lagged_total",
                "Pub/sub messages the node's receiver fell behind on; each lag makes every room catch up.",
            )?,
            catch_ups: IntCounter::new(
                "chat_catch_ups_total",
                "Catch-up reads of a room after a gap in its seqs or a lost subscription.",
            )?,
            catch_up_closes: IntCounter::new(
                "chat_catch_up_closes_total",
                "Connections closed with 1001 because the events they missed were no longer kept.",
            )?,
            registry,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.connections.clone()))?;
        r.register(Box::new(metrics.connections_opened.clone()))?;
        r.register(Box::new(metrics.connections_refused.clone()))?;
        r.register(Box::new(metrics.join_replays.clone()))?;
        r.register(Box::new(metrics.frames_in.clone()))?;
        r.register(Box::new(metrics.frames_out.clone()))?;
        r.register(Box::new(metrics.errors.clone()))?;
        r.register(Box::new(metrics.fanout_seconds.clone()))?;
        r.register(Box::new(metrics.publish_seconds.clone()))?;
        r.register(Box::new(metrics.join_seconds.clone()))?;
        r.register(Box::new(metrics.slow_consumer_closes.clone()))?;
        r.register(Box::new(metrics.rate_limit_closes.clone()))?;
        r.register(Box::new(metrics.rooms.clone()))?;
        r.register(Box::new(metrics.messages_published.clone()))?;
        r.register(Box::new(metrics.room_events_published.clone()))?;
        r.register(Box::new(metrics.dms_published.clone()))?;
        r.register(Box::new(metrics.signals_relayed.clone()))?;
        r.register(Box::new(metrics.files_uploaded.clone()))?;
        r.register(Box::new(metrics.file_bytes_uploaded.clone()))?;
        r.register(Box::new(metrics.file_bytes_downloaded.clone()))?;
        r.register(Box::new(metrics.pubsub_lagged.clone()))?;
        r.register(Box::new(metrics.catch_ups.clone()))?;
        r.register(Box::new(metrics.catch_up_closes.clone()))?;
        r.register(Box::new(metrics.history_service_seconds.clone()))?;
        r.register(Box::new(metrics.history_service_failures.clone()))?;
        r.register(Box::new(metrics.replica_wait_shortfalls.clone()))?;
        r.register(Box::new(metrics.redis_up.clone()))?;
        // Pre-create the labelled series so dashboards see zeros, not gaps.
        for kind in ClientFrame::TYPES.iter().chain([&INVALID_FRAME_LABEL]) {
            metrics.frames_in.with_label_values(&[kind]);
        }
        for kind in ServerFrame::TYPES {
            metrics.frames_out.with_label_values(&[kind]);
        }
        for kind in ["edit", "delete", "reaction"] {
            metrics.room_events_published.with_label_values(&[kind]);
        }
        for code in ErrorCode::ALL {
            metrics.errors.with_label_values(&[code.as_str()]);
        }
        for source in ["cache", "history"] {
            metrics.join_replays.with_label_values(&[source]);
        }
        Ok(metrics)
    }

    /// Counts `n` frames of `kind` queued to clients.
    pub fn frames_out(&self, kind: &str, n: usize) {
        if n > 0 {
            self.frames_out.with_label_values(&[kind]).inc_by(n as u64);
        }
    }
}
