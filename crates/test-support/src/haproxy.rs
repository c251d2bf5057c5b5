//! A real haproxy in front of gateways on loopback, configured as the shipped
//! `deploy/haproxy/haproxy.cfg` is for what the tests look at (HTTP mode,
//! `option forwardfor`, WebSocket tunnels), stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::process::{free_port, wait_listening};

pub struct Haproxy {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Haproxy {
    /// haproxy on a free port, balancing over the gateways on `backends`.
    pub fn start(backends: &[u16]) -> Haproxy {
        if Command::new("haproxy").arg("-v").output().is_err() {
            panic!("haproxy is not installed: run `make test` (it installs it) or `apt-get install -y haproxy`");
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chat-haproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for haproxy");
        let servers: String =
            backends.iter().enumerate().map(|(i, p)| format!("    server gw-{i} 127.0.0.1:{p}\n")).collect();
        let config = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
             \x20   timeout tunnel 1h\n    option forwardfor\n\
             frontend chat\n    bind 127.0.0.1:{port}\n    default_backend gateways\n\
             backend gateways\n    balance roundrobin\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).expect("haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        wait_listening("haproxy", port);
        Haproxy { port, child, dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
