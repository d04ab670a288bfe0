//! `palomar store copy`: a server's whole store copied between a data directory's embedded SQLite file and a
//! PostgreSQL database, either way (or between two of a kind), to move a server from one to the other. This
//! module parses, holds the data directories' locks and prints; the copy is `palomar_store::copy`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palomar_server::{Config, DataDirLock};
use palomar_store::copy::{CopyOptions, CopySummary, Phase, Progress};
use palomar_store::{Location, PostgresSettings};

use crate::progress::{Shown, Unit};

#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    action: StoreAction,
}

#[derive(Subcommand)]
enum StoreAction {
    /// Copy a whole store into another database, checked, all or nothing (stop the servers first).
    #[command(after_long_help = COPY_HELP)]
    Copy(CopyArgs),
}

const COPY_HELP: &str = "\
--from and --to each name a data directory (its store.sqlite, as `palomar serve --data DIR` keeps it) or a
database, postgres://USER@HOST[:PORT]/DATABASE (as `palomar serve --store` takes it, with the password in
PGPASSWORD or a --password-file, never in the URL).

Everything a server needs to carry on is copied: accounts (ids, password hashes), conversations and their seqs,
members, cursors, messages (seqs, ids, senders, times, texts), the seq floors of direct conversations, the
account removals not carried out yet, suspensions, the audit log (with its ids), and the counters that keep ids
from being given out again.

The copy is of one moment of the source and goes into the target in one transaction, committed only once it has
been read back and found equal to the source: the target gets everything or nothing. A target that holds data
is refused unless --replace. A data directory or database that a server uses is refused: stop it first.

To move a server to PostgreSQL, stop it, then:
  palomar store copy --from palomar-data --to postgres://palomar@db.example/palomar
  palomar serve --data palomar-data --store postgres://palomar@db.example/palomar
Keep the data directory: it holds the server's certificate, which clients have pinned.";

#[derive(Args)]
struct CopyArgs {
    /// The store to copy: a data directory, or a PostgreSQL database.
    #[arg(long, value_name = "DIR|postgres://USER@HOST/DATABASE")]
    from: String,
    /// Where to copy it: a data directory (created if need be), or an existing PostgreSQL database.
    #[arg(long, value_name = "DIR|postgres://USER@HOST/DATABASE")]
    to: String,
    /// Empty the target first if it holds a store: everything in it is lost, once the copy has succeeded (the
    /// emptying is part of the copy's transaction).
    #[arg(long)]
    replace: bool,
    /// A file holding the database password of a postgres:// SOURCE or TARGET (else PGPASSWORD).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// A file holding the source database's password, when it differs from the target's.
    #[arg(long, value_name = "FILE")]
    from_password_file: Option<PathBuf>,
    /// A file holding the target database's password, when it differs from the source's.
    #[arg(long, value_name = "FILE")]
    to_password_file: Option<PathBuf>,
}

/// One end of the copy: where its store is and, for the embedded store, the data directory whose lock keeps
/// servers off it.
struct End {
    location: Location,
    data: Option<PathBuf>,
}

impl End {
    fn parse(raw: &str, password_file: Option<PathBuf>) -> anyhow::Result<End> {
        let mut config = Config::default();
        let data = if PostgresSettings::is_url(raw) {
            config.store.database = Some(raw.to_owned());
            config.store.password_file = password_file;
            None
        } else if raw.contains("://") {
            bail!("{raw:?} is neither a data directory nor a postgres:// URL");
        } else {
            config.data = PathBuf::from(raw);
            Some(config.data.clone())
        };
        // As `palomar serve` finds its store, password included.
        let location = config.store_location()?.with_application("palomar store copy");
        Ok(End { location, data })
    }
}

pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        StoreAction::Copy(args) => copy(args),
    }
}

fn copy(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let from = End::parse(&args.from, args.from_password_file.or_else(|| args.password_file.clone()))?;
    let to = End::parse(&args.to, args.to_password_file.or(args.password_file))?;
    if let (Some(source), Some(target)) = (&from.data, &to.data)
        && same_directory(source, target)
    {
        bail!("--from and --to are the same data directory, {}", source.display());
    }
    // Both held until the copy is done: a running server is refused, and none starts meanwhile.
    let _source_lock = match &from.data {
        Some(data) => {
            if !data.is_dir() {
                bail!("there is no data directory {}", data.display());
            }
            Some(lock(data, "source")?)
        }
        None => None,
    };
    let _target_lock = match &to.data {
        Some(data) => {
            std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
            // Owner-only, as `palomar serve` makes it: the store holds the password hashes.
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict the data directory {}", data.display()))?;
            Some(lock(data, "target")?)
        }
        None => None,
    };
    let mut shown = Shown::new();
    let copied = palomar_store::copy::copy(
        &from.location,
        &to.location,
        CopyOptions { replace: args.replace },
        &mut |progress| show(&mut shown, progress),
    );
    shown.clear();
    print_summary(&from.location, &to.location, &copied?);
    Ok(ExitCode::SUCCESS)
}

fn same_directory(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn lock(data: &Path, role: &str) -> anyhow::Result<DataDirLock> {
    DataDirLock::take(data)?.with_context(|| {
        format!(
            "a server (or `palomar user`) is using the {role} data directory {}: stop it first (a copy must be of a \
             store nobody writes to, into one nobody uses)",
            data.display()
        )
    })
}

fn print_summary(from: &Location, to: &Location, summary: &CopySummary) {
    let counts = &summary.counts;
    println!("copied {from} to {to} in {:.1} s, and checked it against the source", summary.took.as_secs_f64());
    println!("accounts: {}", counts.accounts);
    println!("conversations: {}", counts.conversations);
    println!("members: {}", counts.members);
    println!("cursors: {}", counts.cursors);
    println!("messages: {}", counts.messages);
    println!("direct seq floors: {}", counts.direct_seq_floors);
    print!("account removals: {}", counts.account_removals);
    if counts.pending_removals > 0 {
        print!(" ({} not carried out yet: the first server on the copy will)", counts.pending_removals);
    }
    println!();
    println!("suspensions: {}", counts.suspensions);
    println!("audit log entries: {}", counts.audit_entries);
}

/// The copy's progress, as [`Shown`] shows it.
fn show(shown: &mut Shown, progress: Progress) {
    let name = match progress.phase {
        Phase::Copying => "copying",
        Phase::Verifying => "verifying",
    };
    shown.update(name, Unit::Rows, progress.done, progress.total);
}
