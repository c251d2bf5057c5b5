//! Service processes of this workspace, started with an environment of the
//! test's choosing and killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a process may take to listen on its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A free loopback port (for processes that cannot be told to use port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Waits until something listens on `port`; panics after 10 s naming `what`.
pub fn wait_listening(what: &str, port: u16) {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The debug binary of this workspace's `package` (a binary of the same
/// name), built once per test process.
pub fn workspace_binary(package: &'static str) -> PathBuf {
    static BUILT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.contains(&package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo).args(["build", "--quiet", "-p", package]).status().expect("cargo runs");
        assert!(status.success(), "building {package} failed");
        built.push(package);
    }
    target.join("debug").join(package)
}

/// A service binary run with the given `CHAT_*` environment, listening on
/// `port`; killed on drop. `CHAT_*` variables of the test's own environment
/// are not passed on, so a developer's settings cannot change what a test
/// runs. [`ServiceProcess::restart`] starts
/// it again with the same environment, so on the same port.
pub struct ServiceProcess {
    child: Option<Child>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub port: u16,
}

impl ServiceProcess {
    /// Starts `binary` with `env` and waits until it listens on `port`.
    pub fn start(binary: PathBuf, port: u16, env: &[(&str, &str)]) -> ServiceProcess {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut process = ServiceProcess { child: None, binary, env, port };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let mut command = Command::new(&self.binary);
        for (inherited, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHAT_")) {
            command.env_remove(inherited);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{} runs: {err}", self.binary.display()));
        self.child = Some(child);
        wait_listening(&self.binary.display().to_string(), self.port);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id (for signals).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} {}", self.id());
    }

    /// Waits for the process to exit; returns how long it took and its status.
    pub fn wait_exit(&mut self, within: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        let child = self.child.as_mut().expect("a running process");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (started.elapsed(), status);
            }
            assert!(started.elapsed() < within, "process still running after {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new process with the same binary and environment.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
