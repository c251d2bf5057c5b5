//! `presence`: the presence service of the chat cluster.

use std::process::ExitCode;

use presence::Settings;

fn main() -> ExitCode {
    chat_shared::service::main(
        "presence",
        "Presence service: sweeps crashed gateways, serves online state",
        Settings::load,
        |settings| (&settings.cluster.log, &settings.ignored),
        |settings| async move { presence::build(settings).await?.run_until_stopped().await },
    )
}
