//! What a run measures: HDR histograms (microseconds) and counters, shared
//! by every connection task, and the report made of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Histograms split into shards so that thousands of tasks rarely wait on
/// one lock.
pub struct Sharded {
    shards: Vec<Mutex<Histogram<u64>>>,
}

/// Highest value a histogram tracks: 10 minutes in microseconds.
const MAX_MICROS: u64 = 600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

impl Sharded {
    pub fn new(shards: usize) -> Sharded {
        Sharded { shards: (0..shards.max(1)).map(|_| Mutex::new(histogram())).collect() }
    }

    /// Records `value` (microseconds) in the shard of `key`.
    pub fn record(&self, key: usize, value: Duration) {
        let micros = (value.as_micros() as u64).clamp(1, MAX_MICROS);
        let mut shard = self.shards[key % self.shards.len()].lock().unwrap_or_else(|p| p.into_inner());
        shard.saturating_record(micros);
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let _ = all.add(&*shard);
        }
        all
    }
}

/// Everything the tasks count.
pub struct Stats {
    pub connect: Sharded,
    pub join: Sharded,
    pub e2e: Sharded,
    /// `read` to its `cursor` reply.
    pub read: Sharded,
    pub connected: AtomicU64,
    pub joined: AtomicU64,
    pub connect_failures: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub deliveries: AtomicU64,
    pub reads: AtomicU64,
    pub receipts: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Reconnect runs: connections lost, and resumed (loss to `joined`).
    pub drops: AtomicU64,
    pub resumed: AtomicU64,
    pub resume: Sharded,
    /// Resumes whose `joined` said `recovered: false`.
    pub not_recovered: AtomicU64,
    /// Seqs a connection never saw though it saw later ones, and seqs seen twice.
    pub gaps: AtomicU64,
    pub duplicates: AtomicU64,
    /// Set by the first lost connection.
    pub storm: AtomicBool,
    /// End-to-end latency at connections never lost, from the first loss on.
    pub survivor_e2e: Sharded,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            connect: Sharded::new(16),
            join: Sharded::new(16),
            e2e: Sharded::new(64),
            read: Sharded::new(64),
            connected: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            errors: Mutex::default(),
            drops: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            resume: Sharded::new(16),
            not_recovered: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            storm: AtomicBool::new(false),
            survivor_e2e: Sharded::new(64),
        }
    }

    pub fn error(&self, code: &str) {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(code.to_owned()).or_insert(0) += 1;
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// One k6-style line.
    pub fn line(&self, name: &str) -> String {
        format!(
            "     {name:.<24}: avg={:.2}ms min={:.2}ms med={:.2}ms p(90)={:.2}ms p(99)={:.2}ms p(99.9)={:.2}ms max={:.2}ms count={}",
            self.mean, self.min, self.p50, self.p90, self.p99, self.p999, self.max, self.count
        )
    }
}

/// The JSON report of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub config: serde_json::Value,
    pub connections: u64,
    pub connect_failures: u64,
    pub joined: u64,
    pub connect_ms: Summary,
    pub join_ms: Summary,
    pub e2e_latency_ms: Summary,
    pub sent: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub send_seconds: f64,
    pub deliveries_per_second: f64,
    /// `read` requests sent, their `cursor` round trips, and receipts received.
    pub reads: u64,
    pub read_ms: Summary,
    pub receipts: u64,
    pub errors: BTreeMap<String, u64>,
    /// With `--reconnect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormReport>,
}

/// What a reconnect run saw of lost connections and their resumes.
#[derive(Debug, Serialize)]
pub struct StormReport {
    pub drops: u64,
    pub resumed: u64,
    /// From the loss to the resumed `joined`.
    pub resume_ms: Summary,
    pub not_recovered: u64,
    pub gaps: u64,
    pub duplicates: u64,
    /// End-to-end latency at connections never lost, from the first loss on.
    pub survivor_e2e_ms: Summary,
}

impl Report {
    /// The human summary, in the manner of k6's.
    pub fn human(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "     {:.<24}: {} established, {} failed, {} joined\n",
            "connections", self.connections, self.connect_failures, self.joined
        ));
        out.push_str(&self.connect_ms.line("connect (to welcome)"));
        out.push('\n');
        out.push_str(&self.join_ms.line("join (to joined)"));
        out.push('\n');
        out.push_str(&self.e2e_latency_ms.line("e2e latency"));
        out.push('\n');
        out.push_str(&format!(
            "     {:.<24}: {} sent, {} acked, {} delivered in {:.1}s = {:.0} deliveries/s\n",
            "messages", self.sent, self.acked, self.deliveries, self.send_seconds, self.deliveries_per_second
        ));
        if self.reads > 0 {
            out.push_str(&self.read_ms.line("read (to cursor)"));
            out.push('\n');
            out.push_str(&format!("     {:.<24}: {} sent, {} receipts received\n", "reads", self.reads, self.receipts));
        }
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors.iter().map(|(code, n)| format!("{code}={n}")).collect::<Vec<_>>().join(" ")
        };
        out.push_str(&format!("     {:.<24}: {errors}\n", "errors"));
        if let Some(storm) = &self.storm {
            out.push_str(&format!(
                "     {:.<24}: {} lost, {} resumed ({} not recovered), {} gaps, {} duplicates\n",
                "reconnects", storm.drops, storm.resumed, storm.not_recovered, storm.gaps, storm.duplicates
            ));
            out.push_str(&storm.resume_ms.line("resume (loss to joined)"));
            out.push('\n');
            out.push_str(&storm.survivor_e2e_ms.line("survivors' e2e latency"));
            out.push('\n');
        }
        out
    }
}
