//! `gateway`: run a chat gateway node, or mint a development token.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gateway::{auth, Application, Settings};

#[derive(Debug, Parser)]
#[command(name = "gateway", version, about = "WebSocket chat gateway")]
struct Cli {
    /// A configuration file (TOML, YAML or JSON); CHAT_* variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print an HS256 token signed with auth.hs256_secret, for development.
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// The display name (`name`).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Rooms the token allows (comma-separated; `prefix*` allowed). Default: all.
        #[arg(long, value_delimiter = ',')]
        rooms: Option<Vec<String>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "gateway: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token { sub, name, ttl, rooms } => token(&settings, &sub, name.as_deref(), ttl, rooms),
        Command::Serve => serve(settings),
    }
}

fn token(settings: &Settings, sub: &str, name: Option<&str>, ttl: u64, rooms: Option<Vec<String>>) -> ExitCode {
    let Some(secret) = settings.cluster.auth.hs256_secret.as_deref().filter(|s| !s.is_empty()) else {
        let _ = writeln!(std::io::stderr(), "gateway token: set auth.hs256_secret (CHAT_AUTH__HS256_SECRET)");
        return ExitCode::from(2);
    };
    match auth::mint_token(secret, sub, name, ttl, rooms, &settings.cluster.auth) {
        Ok(token) => {
            let _ = writeln!(std::io::stdout(), "{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "gateway token: {err}");
            ExitCode::from(2)
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    chat_shared::telemetry::init(&settings.cluster.log);
    chat_shared::config::warn_ignored(&settings.ignored);
    let result = actix_rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(cause = format!("{err:#}"), "gateway failed");
            ExitCode::FAILURE
        }
    }
}
