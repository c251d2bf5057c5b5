//! `loadgen`: drives a chat cluster with many WebSocket connections from one
//! process and measures it.
//!
//! Every connection connects (time to `welcome`), joins one of `--rooms`
//! rooms (time to `joined`) and reads. `--senders` of them also send, at
//! `--rate` messages per second in all, texts that carry the send time; each
//! receipt of such a message records the end-to-end latency (same process,
//! same monotonic clock). At the end: HDR percentiles, deliveries per second
//! and errors by code, as a k6-like summary and optionally a JSON report.
//! With `--reconnect`, lost connections come back and resume, and every
//! connection's seq stream is checked for gaps (`loadtest/storm.sh`).
//!
//! Layout: this file (options, the ramp, the report); `connection` (one
//! connection's life); `resume` (backoff and the seq check); `stats`.
//!
//! ```sh
//! loadgen --url ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws --connections 20000 \
//!         --rooms 200 --senders 200 --rate 2000 --duration-secs 30 --report run.json
//! ```

mod connection;
mod resume;
mod stats;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use connection::{connection, Frame, Target};
use stats::{Report, Stats, StormReport, Summary};

#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, about = "Load generator for the chat cluster")]
struct Args {
    /// Gateway WebSocket URLs, comma-separated; connections go round-robin.
    #[arg(long, value_delimiter = ',', default_value = "ws://127.0.0.1:8081/ws")]
    url: Vec<String>,
    /// Connections to open.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Rooms; connection i joins room i % rooms.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Connections that also send (the first ones, so spread over the rooms).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long the senders send, in seconds.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 2_000)]
    connect_rate: u64,
    /// Source addresses to connect from, round-robin (each gives ~28k ports).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    source: Vec<IpAddr>,
    /// HS256 secret: connect with JWTs (jwt mode); without it, `?user=&name=` (anonymous mode).
    #[arg(long, env = "LOADGEN_SECRET")]
    secret: Option<String>,
    /// History to replay on join (`limit`).
    #[arg(long, default_value_t = 0)]
    join_limit: u64,
    /// Keep every connection open this long after the run (memory measurements), in seconds.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Prefix of user ids and room names, so concurrent runs do not mix.
    #[arg(long, default_value = "lg")]
    prefix: String,
    /// Read-cursor storm: every connection sends a `read` (up to the last
    /// seq it saw in its room) this many times per second while the senders
    /// send; 0: none.
    #[arg(long, default_value_t = 0.0)]
    reads_per_connection_per_sec: f64,
    /// After a lost connection, reconnect with the JS library's backoff and
    /// resume the room with `since`/`epoch`, checking that the seq stream
    /// stays gapless (a gateway crash test: loadtest/storm.sh).
    #[arg(long)]
    reconnect: bool,
    /// Before the ramp, store this many messages in every room (so that
    /// joins with `--join-limit` replay a full history).
    #[arg(long, default_value_t = 0)]
    prefill_per_room: usize,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn raise_open_files() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            return limit.rlim_cur;
        }
    }
    0
}

fn token(secret: &str, user: &str) -> anyhow::Result<String> {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 86_400;
    let claims = json!({"sub": user, "name": user, "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?)
}

fn resolve(url: &str) -> anyhow::Result<Target> {
    let rest = url.strip_prefix("ws://").with_context(|| format!("{url}: only ws:// URLs"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    Ok(Target { url: url.to_owned(), addr })
}

/// Stores `--prefill-per-room` messages in one room, one at a time (each
/// waits for its `ack`), from a user of its own.
async fn prefill(args: Arc<Args>, targets: Arc<Vec<Target>>, room: usize) -> anyhow::Result<()> {
    let user = format!("{}-filler{room}", args.prefix);
    let query = match &args.secret {
        Some(secret) => format!("token={}", token(secret, &user)?),
        None => format!("user={user}&name={user}"),
    };
    let url = format!("{}?{query}", targets[room % targets.len()].url);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let room = format!("{}-room-{room}", args.prefix);
    ws.send(Message::Text(json!({"type": "join", "id": "j", "room": room, "limit": 0}).to_string().into())).await?;
    let mut sent = 0;
    let mut wanted = "joined";
    while sent <= args.prefill_per_room {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next()).await?.context("closed")??;
        let Message::Text(text) = message else { continue };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
        if frame.kind == "error" {
            bail!("{room}: {text}");
        }
        if frame.kind != wanted {
            continue;
        }
        wanted = "ack";
        sent += 1;
        if sent <= args.prefill_per_room {
            let text = format!("history {sent}");
            ws.send(Message::Text(json!({"type": "send", "room": room, "text": text}).to_string().into())).await?;
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.url.is_empty() || args.source.is_empty() || args.connections == 0 {
        bail!("need at least one --url, one --source and one connection");
    }
    let open_files = raise_open_files();
    if (args.connections as u64) + 64 > open_files {
        eprintln!("loadgen: warning: {} connections but an open-file limit of {open_files}", args.connections);
    }
    let targets = Arc::new(args.url.iter().map(|u| resolve(u)).collect::<anyhow::Result<Vec<_>>>()?);
    let stats = Arc::new(Stats::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (go, go_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();

    if args.prefill_per_room > 0 {
        let began = Instant::now();
        let fills = (0..args.rooms.max(1)).map(|room| prefill(args.clone(), targets.clone(), room));
        for result in futures_util::future::join_all(fills).await {
            result.context("prefill")?;
        }
        eprintln!(
            "loadgen: stored {} messages in each of {} rooms in {:.1}s",
            args.prefill_per_room,
            args.rooms,
            began.elapsed().as_secs_f64()
        );
    }
    // Ramp up.
    eprintln!("loadgen: opening {} connections at {}/s", args.connections, args.connect_rate);
    let pace = Duration::from_secs_f64(1.0 / args.connect_rate.max(1) as f64);
    let mut tasks = Vec::with_capacity(args.connections);
    let ramp = Instant::now();
    for i in 0..args.connections {
        let due = ramp + pace * i as u32;
        tokio::time::sleep_until(due.into()).await;
        tasks.push(tokio::spawn(connection(
            i,
            args.clone(),
            targets.clone(),
            stats.clone(),
            start,
            stop.clone(),
            go_rx.clone(),
        )));
    }
    // Wait until everyone joined (or failed), up to a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Stats::count(&stats.joined) + Stats::count(&stats.connect_failures) < args.connections as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "loadgen: {} connected, {} joined, {} failed after {:.1}s; sending for {}s",
        Stats::count(&stats.connected),
        Stats::count(&stats.joined),
        Stats::count(&stats.connect_failures),
        ramp.elapsed().as_secs_f64(),
        args.duration_secs
    );
    let delivered_before = Stats::count(&stats.deliveries);
    let send_start = Instant::now();
    let _ = go.send(true);
    tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let send_seconds = send_start.elapsed().as_secs_f64();
    // Let what is in flight arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliveries = Stats::count(&stats.deliveries) - delivered_before;

    let report = Report {
        config: json!({
            "urls": args.url, "connections": args.connections, "rooms": args.rooms, "senders": args.senders,
            "rate": args.rate, "duration_secs": args.duration_secs, "join_limit": args.join_limit,
            "reads_per_connection_per_sec": args.reads_per_connection_per_sec, "reconnect": args.reconnect,
        }),
        connections: Stats::count(&stats.connected),
        connect_failures: Stats::count(&stats.connect_failures),
        joined: Stats::count(&stats.joined),
        connect_ms: Summary::of(&stats.connect.merged()),
        join_ms: Summary::of(&stats.join.merged()),
        e2e_latency_ms: Summary::of(&stats.e2e.merged()),
        sent: Stats::count(&stats.sent),
        acked: Stats::count(&stats.acked),
        deliveries,
        send_seconds,
        deliveries_per_second: deliveries as f64 / send_seconds,
        reads: Stats::count(&stats.reads),
        read_ms: Summary::of(&stats.read.merged()),
        receipts: Stats::count(&stats.receipts),
        errors: stats.errors.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        storm: args.reconnect.then(|| StormReport {
            drops: Stats::count(&stats.drops),
            resumed: Stats::count(&stats.resumed),
            resume_ms: Summary::of(&stats.resume.merged()),
            not_recovered: Stats::count(&stats.not_recovered),
            gaps: Stats::count(&stats.gaps),
            duplicates: Stats::count(&stats.duplicates),
            survivor_e2e_ms: Summary::of(&stats.survivor_e2e.merged()),
        }),
    };
    println!("{}", report.human());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.hold_secs > 0 {
        eprintln!("loadgen: holding {} connections for {}s", Stats::count(&stats.connected), args.hold_secs);
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    for task in tasks {
        task.abort();
    }
    Ok(())
}
