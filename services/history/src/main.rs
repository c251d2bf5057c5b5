//! `history`: the history service of the chat cluster.

use std::process::ExitCode;

use history::Settings;

fn main() -> ExitCode {
    chat_shared::service::main(
        "history",
        "History service: room and DM history, replay and paging",
        Settings::load,
        |settings| (&settings.cluster.log, &settings.ignored),
        |settings| async move { history::build(settings).await?.run_until_stopped().await },
    )
}
