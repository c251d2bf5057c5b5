//! Real `redis-server` processes on free loopback ports.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

/// How long a server or cluster may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn redis_server_binary() -> &'static str {
    static CHECKED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    CHECKED.get_or_init(|| {
        if Command::new("redis-server").arg("--version").output().is_err() {
            panic!(
                "redis-server is not installed: run `make test` (it installs it) or `apt-get install -y redis-server`"
            );
        }
    });
    "redis-server"
}

/// Runs `redis-cli -p PORT ARGS…` and returns what it printed.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// A `redis-server` on a free loopback port, stopped (and its directory
/// removed) on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// A standalone server without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server that fsyncs every write (survives `kill -9` with its data).
    pub fn start_durable() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
    }

    /// A server with these extra arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chat-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut args: Vec<String> = vec!["--port".into(), port.to_string(), "--bind".into(), "127.0.0.1".into()];
        args.extend(["--dir".into(), dir.display().to_string()]);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut server = RedisServer { port, child: None, dir, args };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while redis_cli(self.port, &["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server on {} did not answer", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOPs the server (`resume` continues it): it answers nothing meanwhile.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONTs a paused server.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
            assert!(status.success(), "kill {signal} redis-server");
        }
    }

    /// Starts it again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster on loopback: 3 masters, each with one replica.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// With the default `cluster-node-timeout` of 5 s: no failover unless a
    /// master is gone that long.
    pub fn start() -> RedisCluster {
        Self::start_with_node_timeout(5_000)
    }

    /// With `cluster-node-timeout` `ms`: a replica takes over a master that
    /// did not answer for that long (plus an election).
    pub fn start_with_node_timeout(ms: u64) -> RedisCluster {
        let timeout = ms.to_string();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &timeout,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let created = Command::new("redis-cli").args(&args).output().expect("redis-cli runs");
        assert!(created.status.success(), "cluster create: {}", String::from_utf8_lossy(&created.stderr));
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + START_TIMEOUT;
        while !cluster.settled() {
            assert!(Instant::now() < deadline, "cluster did not reach cluster_state:ok with its replicas in sync");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Every node says `cluster_state:ok` and every replica's link is up.
    fn settled(&self) -> bool {
        self.nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
            && self.nodes.iter().all(|n| {
                let info = n.cli(&["info", "replication"]);
                info.contains("role:master") || info.contains("master_link_status:up")
            })
    }

    /// `CLUSTER NODES` as a node that answers sees it.
    fn topology(&self) -> String {
        self.nodes.iter().map(|n| n.cli(&["cluster", "nodes"])).find(|t| !t.trim().is_empty()).unwrap_or_default()
    }

    fn index_of_port(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).expect("a node of this cluster")
    }

    /// The nodes that are masters now.
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.topology()
            .lines()
            .filter(|l| {
                l.split_whitespace().nth(2).is_some_and(|flags| flags.contains("master") && !flags.contains("fail"))
            })
            .map(|l| &self.nodes[self.index_of_port(port_of(l.split_whitespace().nth(1).unwrap_or_default()))])
            .collect()
    }

    /// The node (index in `nodes`) that masters `key`'s slot now.
    pub fn master_of(&self, key: &str) -> usize {
        self.owner_of(key).unwrap_or_else(|| panic!("no live master owns the slot of {key}"))
    }

    /// The node (index in `nodes`) that masters `key`'s slot now, if any
    /// does (none between a master's failure and its replica's promotion).
    pub fn owner_of(&self, key: &str) -> Option<usize> {
        let slot: u16 = self
            .nodes
            .iter()
            .map(|n| n.cli(&["cluster", "keyslot", key]))
            .find_map(|s| s.trim().parse().ok())
            .expect("a node answers CLUSTER KEYSLOT");
        for line in self.topology().lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            });
            if owns {
                return Some(self.index_of_port(port_of(fields[1])));
            }
        }
        None
    }

    /// A replica (index in `nodes`) of the master `master`.
    pub fn replica_of(&self, master: usize) -> usize {
        let topology = self.topology();
        let master_id = topology
            .lines()
            .find(|l| port_of(l.split_whitespace().nth(1).unwrap_or_default()) == self.nodes[master].port)
            .and_then(|l| l.split_whitespace().next())
            .expect("the master in CLUSTER NODES")
            .to_owned();
        let line = topology
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some(master_id.as_str()) && !l.contains("fail"))
            .expect("a live replica of the master");
        self.index_of_port(port_of(line.split_whitespace().nth(1).unwrap_or_default()))
    }

    /// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=…`.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push_str(if i == 1 { "?" } else { "&" });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    /// Every shard channel with a subscriber, across the masters, sorted.
    pub fn shard_channels(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.cli(&["pubsub", "shardchannels"]).lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|l| !l.is_empty())
            .collect();
        all.sort();
        all
    }
}

/// The port of a `CLUSTER NODES` address (`127.0.0.1:7000@17000`).
fn port_of(address: &str) -> u16 {
    address.split('@').next().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse().ok()).unwrap_or(0)
}
