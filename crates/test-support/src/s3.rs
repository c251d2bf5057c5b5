//! A real S3-compatible server (`s3s-fs`, a filesystem-backed S3 server from
//! crates.io) on a free loopback port, for the gateway's object storage.
//! `make test` installs it (`cargo install s3s-fs@0.14.1 --features binary`);
//! `S3S_FS` names the binary when it is not on `PATH`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::process::{free_port, wait_listening};

/// The access key and secret every test server takes.
pub const S3_ACCESS_KEY: &str = "chat-test-access";
pub const S3_SECRET_KEY: &str = "chat-test-secret-0123456789";

fn s3s_fs_binary() -> String {
    let binary = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
    if Command::new(&binary).arg("--version").output().is_err() {
        panic!(
            "s3s-fs is not installed: run `make test` (it installs it) or \
             `cargo install s3s-fs@0.14.1 --features binary --locked`"
        );
    }
    binary
}

/// An S3-compatible server with one bucket, stopped (and its data removed)
/// on drop.
pub struct S3Server {
    pub port: u16,
    pub bucket: String,
    child: Child,
    dir: PathBuf,
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chat-s3-{}-{port}", std::process::id()));
        let bucket = "chat-files".to_owned();
        // s3s-fs serves each directory under its root as a bucket.
        std::fs::create_dir_all(dir.join(&bucket)).expect("a directory for s3s-fs");
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        wait_listening("s3s-fs", port);
        S3Server { port, bucket, child, dir }
    }

    /// The endpoint URL (path-style, plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The objects the bucket holds (their keys), for tests that check what
    /// was stored or removed.
    pub fn objects(&self) -> Vec<String> {
        let root = self.dir.join(&self.bucket);
        let mut keys = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(key) = path.strip_prefix(&root) {
                    let key = key.display().to_string();
                    // s3s-fs keeps its own bookkeeping beside the objects.
                    if !key.starts_with(".") && !key.contains("/.") {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
