//! `presence`: the presence service of the chat cluster.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use presence::{Application, Settings};

#[derive(Debug, Parser)]
#[command(name = "presence", version, about = "Presence service: sweeps crashed gateways, serves online state")]
struct Cli {
    /// A configuration file (TOML, YAML or JSON); CHAT_* variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "presence: {err}");
            return ExitCode::from(2);
        }
    };
    chat_shared::telemetry::init(&settings.log);
    let result =
        actix_rt::System::new().block_on(async move { Application::build(settings).await?.run_until_stopped().await });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(cause = format!("{err:#}"), "presence failed");
            ExitCode::FAILURE
        }
    }
}
