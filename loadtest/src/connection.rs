//! One `loadgen` connection: connect, join, read, send and read-cursor at
//! its pace, and with `--reconnect` come back after a loss and resume (see
//! [`crate::resume`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::resume::{self, SeqTracker};
use crate::stats::Stats;
use crate::{token, Args};

/// The fields of a server frame this tool looks at.
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub code: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
}

/// Where a connection goes.
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
}

/// A connection's paced frames (sends, reads): every `interval` from the
/// `go` signal (so that the ramp does not colour the latencies), the first
/// one spread over an interval by the connection's index so that
/// connections are not in step, until `stop`.
struct Pacing {
    i: usize,
    interval: Duration,
    go: tokio::sync::watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
    to_sink: tokio::sync::mpsc::Sender<Message>,
}

impl Pacing {
    /// Sends what `next` makes at each tick (`None`: nothing this time).
    async fn run(mut self, mut next: impl FnMut() -> Option<String>) {
        if self.go.wait_for(|go| *go).await.is_err() {
            return;
        }
        tokio::time::sleep(self.interval.mul_f64((self.i as f64 * 0.618_033_988_7).fract())).await;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let Some(frame) = next() else { continue };
            if self.to_sink.send(Message::Text(frame.into())).await.is_err() {
                break;
            }
        }
    }
}

/// Opens a WebSocket to `target` and waits for `welcome`.
async fn open(i: usize, args: &Args, target: &Target, query: &str) -> Result<WebSocketStream<TcpStream>, &'static str> {
    let url = format!("{}?{query}", target.url);
    let connected = async {
        let source = args.source[i % args.source.len()];
        let socket = if source.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|_| "socket")?;
        socket.bind(SocketAddr::new(source, 0)).map_err(|_| "bind")?;
        let stream = socket.connect(target.addr).await.map_err(|_| "tcp_refused")?;
        stream.set_nodelay(true).map_err(|_| "socket")?;
        match tokio_tungstenite::client_async(url.as_str(), stream).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(match response.status().as_u16() {
                503 => "handshake_503",
                429 => "handshake_429",
                401 => "handshake_401",
                _ => "handshake_other",
            }),
            Err(_) => Err("handshake_failed"),
        }
    };
    let mut ws = match tokio::time::timeout(Duration::from_secs(30), connected).await {
        Ok(result) => result?,
        Err(_) => return Err("connect_timeout"),
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.contains("\"welcome\"") => return Ok(ws),
            Ok(Some(Ok(_))) => continue,
            _ => return Err("no_welcome"),
        }
    }
}

/// What a connection keeps across reconnects.
#[derive(Default)]
struct Life {
    seqs: SeqTracker,
    /// When the connection was lost, until it has resumed.
    dropped_at: Option<Instant>,
    /// Reconnect attempts since the last success.
    attempt: u32,
    /// The first join has completed.
    joined_once: bool,
    /// Lost at least once.
    ever_dropped: bool,
}

/// One connection's whole life: connect, join and read; with
/// `--reconnect`, after a lost connection, reconnect with the JS library's
/// backoff and resume with `since`/`epoch`.
pub async fn connection(
    i: usize,
    args: Arc<Args>,
    targets: Arc<Vec<Target>>,
    stats: Arc<Stats>,
    start: Instant,
    stop: Arc<AtomicBool>,
    go: tokio::sync::watch::Receiver<bool>,
) {
    let user = format!("{}-u{i}", args.prefix);
    let query = match &args.secret {
        Some(secret) => match token(secret, &user) {
            Ok(token) => format!("token={token}"),
            Err(_) => return,
        },
        None => format!("user={user}&name={user}"),
    };
    let mut life = Life::default();
    loop {
        let target = &targets[(i + life.attempt as usize) % targets.len()];
        let began = Instant::now();
        match open(i, &args, target, &query).await {
            Ok(ws) => {
                if !life.ever_dropped {
                    stats.connect.record(i, began.elapsed());
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                }
                session(i, &args, &stats, start, &stop, &go, ws, &mut life).await;
            }
            Err(why) if life.ever_dropped => stats.error(why),
            Err(_) => {
                stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if !args.reconnect || stop.load(Ordering::Relaxed) && args.hold_secs == 0 {
            return;
        }
        if life.dropped_at.is_none() {
            life.dropped_at = Some(Instant::now());
            life.ever_dropped = true;
            stats.drops.fetch_add(1, Ordering::Relaxed);
            stats.storm.store(true, Ordering::Relaxed);
        }
        let random = rand_unit(i as u64 ^ u64::from(life.attempt) << 32 ^ start.elapsed().as_nanos() as u64);
        tokio::time::sleep(resume::backoff(life.attempt, RECONNECT_INITIAL, RECONNECT_MAX, random)).await;
        life.attempt += 1;
    }
}

/// The JS library's reconnect delays (`reconnectInitialMs`, `reconnectMaxMs`).
const RECONNECT_INITIAL: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// A number in 0..1 from `seed` (splitmix64), for jitter.
fn rand_unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// The fields of `joined` a resume looks at.
#[derive(Deserialize)]
struct Joined {
    seq: u64,
    #[serde(default)]
    epoch: String,
    #[serde(default)]
    recovered: bool,
    #[serde(default)]
    history: Vec<Seq>,
}

#[derive(Deserialize)]
struct Seq {
    seq: u64,
}

/// Applies `f` to a connection's seq stream and counts the gaps and
/// duplicates it found.
fn track(stats: &Stats, seqs: &mut SeqTracker, f: impl FnOnce(&mut SeqTracker)) {
    let (gaps, duplicates) = (seqs.gaps, seqs.duplicates);
    f(seqs);
    stats.gaps.fetch_add(seqs.gaps - gaps, Ordering::Relaxed);
    stats.duplicates.fetch_add(seqs.duplicates - duplicates, Ordering::Relaxed);
}

/// One WebSocket connection, from `welcome` until it closes.
#[allow(clippy::too_many_arguments)]
async fn session(
    i: usize,
    args: &Args,
    stats: &Arc<Stats>,
    start: Instant,
    stop: &Arc<AtomicBool>,
    go: &tokio::sync::watch::Receiver<bool>,
    mut ws: WebSocketStream<TcpStream>,
    life: &mut Life,
) {
    let room = format!("{}-room-{}", args.prefix, i % args.rooms.max(1));
    let join = match (&life.seqs.last, &life.seqs.epoch) {
        (Some(since), Some(epoch)) if life.joined_once => {
            json!({"type": "join", "id": "j", "room": room, "since": since, "epoch": epoch})
        }
        _ => json!({"type": "join", "id": "j", "room": room, "limit": args.join_limit}),
    };
    let join_sent = Instant::now();
    if ws.send(Message::Text(join.to_string().into())).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    let sender = i < args.senders && args.rate > 0.0;
    let mut joined = false;
    let (to_sink, mut outgoing) = tokio::sync::mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut send_task = None;
    let mut read_task = None;
    // The last seq seen in the room, for the read storm; when the last `read` went out.
    let last_seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let read_sent = Arc::new(std::sync::Mutex::new(None::<Instant>));
    loop {
        let Some(Ok(message)) = stream.next().await else { break };
        let Message::Text(text) = message else { continue };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
        match frame.kind.as_ref() {
            "cursor" => {
                if let Some(at) = read_sent.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    stats.read.record(i, at.elapsed());
                }
            }
            "receipt" => {
                stats.receipts.fetch_add(1, Ordering::Relaxed);
            }
            "message" | "edit" | "delete" | "reaction" => {
                if let Some(seq) = frame.seq {
                    last_seq.fetch_max(seq, Ordering::Relaxed);
                    if joined {
                        track(stats, &mut life.seqs, |seqs| seqs.event(seq));
                    }
                }
                if let Some(sent) =
                    frame.text.as_deref().and_then(|t| t.strip_prefix("lg:")).and_then(|t| t.parse::<u64>().ok())
                {
                    let now = start.elapsed().as_nanos() as u64;
                    let latency = Duration::from_nanos(now.saturating_sub(sent));
                    stats.e2e.record(i, latency);
                    if !life.ever_dropped && stats.storm.load(Ordering::Relaxed) {
                        stats.survivor_e2e.record(i, latency);
                    }
                    stats.deliveries.fetch_add(1, Ordering::Relaxed);
                }
            }
            "ack" => {
                stats.acked.fetch_add(1, Ordering::Relaxed);
            }
            "joined" if !joined => {
                joined = true;
                let Ok(reply) = serde_json::from_str::<Joined>(&text) else { break };
                let resuming = life.joined_once;
                track(stats, &mut life.seqs, |seqs| {
                    seqs.joined(&reply.epoch, reply.seq, reply.history.iter().map(|m| m.seq));
                });
                if let Some(dropped_at) = life.dropped_at.take() {
                    stats.resume.record(i, dropped_at.elapsed());
                    stats.resumed.fetch_add(1, Ordering::Relaxed);
                    if !reply.recovered {
                        stats.not_recovered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                life.attempt = 0;
                if !resuming {
                    life.joined_once = true;
                    stats.join.record(i, join_sent.elapsed());
                    stats.joined.fetch_add(1, Ordering::Relaxed);
                }
                if args.reads_per_connection_per_sec > 0.0 {
                    let interval = Duration::from_secs_f64(1.0 / args.reads_per_connection_per_sec);
                    let (room, stats, last_seq, read_sent) =
                        (room.clone(), stats.clone(), last_seq.clone(), read_sent.clone());
                    let pacing = Pacing { i, interval, go: go.clone(), stop: stop.clone(), to_sink: to_sink.clone() };
                    read_task = Some(tokio::spawn(pacing.run(move || {
                        let seq = last_seq.load(Ordering::Relaxed);
                        // One read in flight at a time, as a client would.
                        let mut pending = read_sent.lock().unwrap_or_else(|p| p.into_inner());
                        if seq == 0 || pending.is_some() {
                            return None;
                        }
                        *pending = Some(Instant::now());
                        stats.reads.fetch_add(1, Ordering::Relaxed);
                        Some(json!({"type": "read", "room": room, "seq": seq}).to_string())
                    })));
                }
                if sender {
                    let interval = Duration::from_secs_f64(args.senders as f64 / args.rate);
                    let (room, stats) = (room.clone(), stats.clone());
                    let pacing = Pacing { i, interval, go: go.clone(), stop: stop.clone(), to_sink: to_sink.clone() };
                    send_task = Some(tokio::spawn(pacing.run(move || {
                        let text = format!("lg:{}", start.elapsed().as_nanos() as u64);
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        Some(json!({"type": "send", "room": room, "text": text}).to_string())
                    })));
                }
            }
            "error" => stats.error(frame.code.as_deref().unwrap_or("unknown")),
            _ => {}
        }
    }
    for task in [send_task, read_task].into_iter().flatten() {
        task.abort();
    }
    drop(to_sink);
    writer.abort();
    let _ = writer.await;
}
