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

/// A 3-master Redis Cluster on loopback.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
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
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = Command::new("redis-cli").args(&args).output().expect("redis-cli runs");
        assert!(created.status.success(), "cluster create: {}", String::from_utf8_lossy(&created.stderr));
        let deadline = Instant::now() + START_TIMEOUT;
        while !nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok")) {
            assert!(Instant::now() < deadline, "cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
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
