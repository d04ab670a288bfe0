//! # palomar: the command-line entry point
//!
//! One binary for every role: `serve` runs the server, `chat` the line-mode client, `user` manages accounts
//! offline, `store` copies a server's store to another database, `backup` and `restore` put a server's data
//! directory into one file and back, `trust` manages pinned server certificates,
//! `bench` loads a server and measures it (all of it in `palomar-bench`), `completions` and `manpage` write what
//! a shell and `man` need to know of all this. Each subcommand lives in its own
//! module and only parses, wires and prints: the work is in the library crates (`palomar-server`,
//! `palomar-client`, ...).
//! A new front end goes beside `chat`, over `palomar_client::Engine`.

mod audit;
mod backup;
mod chat;
mod output;
mod progress;
mod room;
mod secrets;
mod serve;
mod store;
mod terminal_input;
mod trust;
mod tui;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "palomar", version, about = "Palomar: secure group chat that never loses a message")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand: those that run on the async runtime, and those that print what a shell or `man` needs.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Run(RunCommand),
    /// Print the completion script for a shell, e.g. `palomar completions bash > /etc/bash_completion.d/palomar`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff); with --dir, write one page per subcommand there (palomar.1, palomar-serve.1, …).
    Manpage {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The subcommands that run on the async runtime.
#[derive(Subcommand)]
enum RunCommand {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Chat: full-screen on a terminal; with --plain (or when piped), line mode.
    #[command(after_long_help = output::LINE_MODE_HELP)]
    Chat(chat::ChatArgs),
    /// Manage accounts in a server's store (works while the server is stopped or running).
    User(user::UserArgs),
    /// Print the audit log: who did what to which account or room, oldest first.
    Audit(audit::AuditArgs),
    /// Show and moderate the rooms of a server's store (works while the server is stopped or running).
    Room(room::RoomArgs),
    /// Copy a server's store to another database: a data directory's SQLite file to PostgreSQL, or back.
    Store(store::StoreArgs),
    /// Back up a server's store and TLS identity into one file, while it runs or not.
    Backup(backup::BackupArgs),
    /// Restore a backup file into an empty or new data directory.
    Restore(backup::RestoreArgs),
    /// Pin (or forget) a server's certificate fingerprint.
    Trust(trust::TrustArgs),
    /// Load a server with many clients and report throughput, latency and correctness.
    Bench(palomar_bench::BenchArgs),
}

/// Prints the completion script of `shell`.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(shell, &mut Cli::command(), "palomar", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Prints the manual page, or writes one per subcommand into `dir`.
fn manpage(dir: Option<PathBuf>) -> ExitCode {
    let written = match &dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|error| format!("cannot write the manual pages into {}: {error}", dir.display())),
        None => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|error| format!("cannot write the manual page: {error}")),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("palomar: {error}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc instead of the system allocator: Argon2 allocates 19 MiB per password check, and glibc kept those
/// blocks in its arenas, so every login grew the server by megabytes that were never given back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the client keeps pins, outboxes and cursors: `--home`, else `PALOMAR_HOME`, else the platform's
/// data directory.
pub fn client_home(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(palomar_client::home::client_home(flag)?)
}

fn main() -> ExitCode {
    // What a shell or `man` needs is printed before any runtime starts.
    let command = match Cli::parse().command {
        Command::Completions { shell } => return completions(shell),
        Command::Manpage { dir } => return manpage(dir),
        Command::Run(command) => command,
    };
    // A chat client is one connection: on one thread its tasks hand work to each other without waking
    // another thread, and the other core is left to the server and to other clients.
    let mut builder = match command {
        RunCommand::Chat(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("palomar: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            RunCommand::Serve(args) => serve::run(args).await,
            RunCommand::Chat(args) => chat::run(args).await,
            // On a thread of its own: the PostgreSQL store's client runs a runtime of its own, which cannot
            // start inside this one.
            RunCommand::User(args) => std::thread::spawn(move || user::run(args))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // On threads of their own for the same reason.
            RunCommand::Audit(args) => std::thread::spawn(move || audit::run(args))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            RunCommand::Room(args) => std::thread::spawn(move || room::run(args))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            RunCommand::Store(args) => std::thread::spawn(move || store::run(args))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            RunCommand::Backup(args) => backup::run(args),
            RunCommand::Restore(args) => backup::restore(args),
            RunCommand::Trust(args) => trust::run(args),
            RunCommand::Bench(args) => palomar_bench::run(args).await,
        }
    });
    // Line mode may leave a thread blocked on stdin; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("palomar: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks a command line's definition only when it builds all of it (completions, manual pages): a
    /// mistake in a subcommand nobody ran would otherwise show first in a user's shell.
    #[test]
    fn every_subcommand_is_well_defined() {
        super::Cli::command().debug_assert();
    }
}
