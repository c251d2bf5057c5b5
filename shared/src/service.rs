//! What the HTTP services beside the gateways (presence, history) share:
//! their `main`, their HTTP server, and the routes every service has
//! (`/healthz`, `/readyz`, `/metrics`, a JSON 404).

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::ConfigError;
use crate::http::ApiError;
use crate::telemetry::{encode_metrics, LogSettings, METRICS_CONTENT_TYPE};
use crate::ErrorCode;

/// The command line of a service: only `--config`.
#[derive(Debug, Parser)]
#[command(version)]
struct ServiceCli {
    /// A configuration file (TOML, YAML or JSON); CHAT_* variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// The whole `main` of a service: parses `--config`, loads the settings
/// (exit 2 on an error), starts logging (`log` gives the log settings and
/// the ignored keys to warn about) and runs `serve` in an actix system
/// (exit 1 if it fails).
pub fn main<S, F>(
    name: &'static str,
    about: &'static str,
    load: impl FnOnce(Option<&Path>) -> Result<S, ConfigError>,
    log: impl FnOnce(&S) -> (&LogSettings, &[String]),
    serve: impl FnOnce(S) -> F,
) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let matches = ServiceCli::command().name(name).about(about).get_matches();
    let cli = match ServiceCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let settings = match load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{name}: {err}");
            return ExitCode::from(2);
        }
    };
    let (log, ignored) = log(&settings);
    crate::telemetry::init(log);
    crate::config::warn_ignored(ignored);
    match actix_rt::System::new().block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(cause = format!("{err:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    }
}

/// A bound service, ready to run.
pub struct Running {
    port: u16,
    server: Server,
}

impl Running {
    /// The bound port (useful with `listen = "127.0.0.1:0"`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT.
    ///
    /// # Errors
    /// The HTTP server failing.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        Ok(())
    }
}

/// Binds `listen` and starts an HTTP server whose app is made by `configure`
/// (routes and shared state). Malformed query strings get a JSON 400. Stops
/// on SIGTERM or SIGINT.
///
/// # Errors
/// An address that cannot be bound.
pub fn serve<F>(listen: &str, workers: usize, configure: F) -> anyhow::Result<Running>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        let query_errors = web::QueryConfig::default()
            .error_handler(|err, _| ApiError::new(ErrorCode::BadRequest, err.to_string()).into());
        App::new().app_data(query_errors).configure(configure.clone()).default_service(web::to(not_found))
    })
    .workers(workers)
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    Ok(Running { port, server })
}

/// `GET /healthz`: the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when `ready`, else 503 saying `why_not`.
///
/// # Errors
/// 503 `unavailable` when not ready.
pub fn readiness(ready: bool, why_not: &str) -> Result<HttpResponse, ApiError> {
    if ready {
        Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
    } else {
        Err(ApiError::new(ErrorCode::Unavailable, why_not))
    }
}

/// `GET /metrics`: the registry in the Prometheus text format.
pub fn metrics(registry: &prometheus::Registry) -> HttpResponse {
    HttpResponse::Ok().content_type(METRICS_CONTENT_TYPE).body(encode_metrics(registry))
}

/// Any other route: a JSON 404.
///
/// # Errors
/// Always: 404 `not_found`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {}", req.method(), req.path())))
}
