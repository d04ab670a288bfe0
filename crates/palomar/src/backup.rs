//! `palomar backup` and `palomar restore`: a server's data directory (its store and its TLS identity) into one
//! file and back, while the server runs or not. This module finds what to back up, stages and places the files,
//! and prints; the copy of the store as of one moment and its check are `palomar_store::sqlite::backup`, the
//! file's format is [`archive`].
//!
//! Backing up takes no lock: the server holds the data directory's, and the store's copy is of one moment
//! whether or not anything writes meanwhile. A backup is written beside its final name and renamed into place
//! once synced, so a file of that name is always a whole backup. A restore goes only into an empty or new
//! directory, staged beside (or inside) it and checked before anything takes the final name.

mod archive;
mod restore;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::HumanBytes;
use palomar_proto::unix_ms;
use palomar_server::Config;
use palomar_store::PostgresSettings;
use palomar_store::sqlite::backup::{self as store_backup, Progress};
use palomar_transport::ServerIdentity;

use crate::progress::{Shown, Unit};
use archive::{Content, Manifest, Part, StoreInfo};
pub use restore::{RestoreArgs, run as restore};

#[derive(Args)]
#[command(after_long_help = BACKUP_HELP)]
pub struct BackupArgs {
    /// The server's data directory [default: ./palomar-data, or the configuration's].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Read the data directory (and the TLS files, and where the store is) from this configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The backup file to write. It holds the private key and the password hashes: it is made owner-only.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// With the store in PostgreSQL: back up the TLS identity alone (the database is pg_dump's business).
    #[arg(long)]
    identity_only: bool,
}

const BACKUP_HELP: &str = "\
The backup is one file (a tar archive: `tar tvf FILE` lists it) holding a copy of the store as of one moment and
the server's certificate and private key, which clients have pinned: a server restored without them would be
refused by every client. Keep it as safe as the server: it holds the private key and the password hashes.

It works while the server runs (nothing is locked; the server goes on accepting messages) and while it is
stopped. The copy is checked (PRAGMA integrity_check) before the file takes its name. Room for twice the store
is needed beside FILE while it is made.

With the store in PostgreSQL ([store] database), back the database up with pg_dump or base backups; this command
then refuses, unless --identity-only says to back up the certificate and key alone.

Restore with `palomar restore --from FILE --data DIR`, into an empty or new directory.";

/// Where the server's identity is: the configured files, or the generated ones in `<data>/tls`.
fn identity_files(config: &Config) -> (PathBuf, PathBuf, bool) {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), true),
        _ => (config.data.join("tls").join("cert.pem"), config.data.join("tls").join("key.pem"), false),
    }
}

/// The certificate and key, read once, and the certificate's fingerprint.
struct Identity {
    cert: Vec<u8>,
    key: Vec<u8>,
    cert_from: PathBuf,
    fingerprint: String,
}

fn read_identity(config: &Config) -> anyhow::Result<Identity> {
    let (cert_from, key_from, configured) = identity_files(config);
    let read = |path: &Path| -> anyhow::Result<Vec<u8>> {
        std::fs::read(path).with_context(|| {
            if configured {
                format!("cannot read {} (tls.cert and tls.key of the configuration)", path.display())
            } else {
                format!(
                    "cannot read {}: the data directory has no TLS identity (has a server ever run on it?)",
                    path.display()
                )
            }
        })
    };
    let (cert, key) = (read(&cert_from)?, read(&key_from)?);
    // Parsed as the server parses them, so that a backup never holds an identity no server can load.
    let loaded = ServerIdentity::load(&cert_from, &key_from)
        .with_context(|| format!("the TLS identity {} / {} does not load", cert_from.display(), key_from.display()))?;
    Ok(Identity { cert, key, cert_from, fingerprint: loaded.fingerprint().to_string() })
}

/// Checks that `to` can take a new backup: not a directory, not an existing file (without `--force`), never one
/// of the server's own files (`--force` would have put the backup in place of the store or the key), in an
/// existing directory. Returns that directory, where the temporary files go.
fn target_directory(to: &Path, force: bool, config: &Config) -> anyhow::Result<PathBuf> {
    match std::fs::metadata(to) {
        Ok(meta) if meta.is_dir() => {
            let example = to.join("palomar-backup.tar");
            bail!("{} is a directory: name the file to write in it, e.g. --to {}", to.display(), example.display())
        }
        Ok(_) if !force => bail!("{} exists: give another name, or --force to replace it", to.display()),
        Ok(_) => {
            let (cert, key, _) = identity_files(config);
            let beside = |suffix: &str| config.data.join(format!("store.sqlite{suffix}"));
            let own = [beside(""), beside("-wal"), beside("-shm"), config.data.join("lock"), cert, key];
            let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
            if own.iter().any(|file| same(to, file)) {
                bail!("{} is one of the server's own files: write the backup somewhere else", to.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", to.display())),
    }
    let parent = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("there is no directory {} to write {} in", parent.display(), to.display());
    }
    Ok(parent)
}

/// A temporary file beside the backup, named after it, owner-only, removed unless kept.
fn temporary_beside(to: &Path, directory: &Path, suffix: &str) -> anyhow::Result<tempfile::NamedTempFile> {
    let name = to.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(suffix)
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a temporary file in {}", directory.display()))
}

pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(data) = args.data {
        config.data = data;
    }
    config.validate()?;
    let directory = target_directory(&args.to, args.force, &config)?;
    let postgres = match &config.store.database {
        Some(url) => {
            // No connection is made: only the name is shown, without a password (a URL cannot hold one).
            let shown = PostgresSettings::parse(url, None).map(|settings| settings.to_string())?;
            if !args.identity_only {
                bail!(
                    "the store is in the PostgreSQL database {shown}: back it up with pg_dump (or base backups), \
                     not with palomar backup. To back up the server's certificate and key alone, add --identity-only"
                );
            }
            Some(shown)
        }
        None if args.identity_only => bail!("--identity-only is for a store in PostgreSQL; this one is embedded"),
        None => None,
    };
    if !config.data.is_dir() && (postgres.is_none() || config.tls.cert.is_none()) {
        bail!("there is no data directory {}", config.data.display());
    }
    let source = config.data.join("store.sqlite");
    if postgres.is_none() && !source.exists() {
        bail!("there is no store {}: is {} a Palomar data directory?", source.display(), config.data.display());
    }
    let identity = read_identity(&config)?;
    let created_ms = unix_ms();

    let mut shown = Shown::new();
    let (store, copy) = match &postgres {
        Some(database) => (StoreInfo::Postgres { database: database.clone() }, None),
        None => {
            // Made beside the backup (not in /tmp, often a small tmpfs), removed once archived.
            let copy = temporary_beside(&args.to, &directory, ".store")?;
            let copied = store_backup::copy(&source, copy.path(), &mut |progress| match progress {
                Progress::Copying { pages_done, pages_total } => {
                    shown.update("copying", Unit::Pages, pages_done, pages_total)
                }
                Progress::Checking => shown.update("checking the copy", Unit::Pages, 0, 0),
            });
            let copied = copied.map_err(|error| {
                shown.clear();
                if error.is_disk_full() {
                    anyhow::anyhow!(
                        "{error}: the disk holding {} is full (a backup needs room for the store twice while it is \
                         made)",
                        directory.display()
                    )
                } else {
                    error.into()
                }
            })?;
            let contents = copied.contents;
            let store = StoreInfo::Sqlite {
                accounts: contents.accounts,
                conversations: contents.conversations,
                messages: contents.messages,
                schema_version: contents.schema_version,
            };
            (store, Some(copy))
        }
    };
    let mut contents = Vec::new();
    if let Some(copy) = &copy {
        contents.push((Part::Store, Content::File(copy.path())));
    }
    contents.push((Part::Cert, Content::Bytes(&identity.cert)));
    contents.push((Part::Key, Content::Bytes(&identity.key)));
    let files = contents
        .iter()
        .map(|(part, content)| content.describe(*part))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot read the store's copy")?;
    let manifest = Manifest {
        format: archive::FORMAT,
        palomar: env!("CARGO_PKG_VERSION").into(),
        created_ms,
        data: config.data.display().to_string(),
        store,
        cert_from: identity.cert_from.display().to_string(),
        fingerprint: identity.fingerprint.clone(),
        files,
    };
    let out = temporary_beside(&args.to, &directory, ".partial")?;
    let contents: Vec<Content<'_>> = contents.into_iter().map(|(_, content)| content).collect();
    let written = archive::write(out.as_file(), &manifest, &contents, &mut |done, total| {
        shown.update("writing", Unit::Bytes, done, total)
    });
    shown.clear();
    written.with_context(|| format!("cannot write the backup {}", args.to.display()))?;
    drop(copy);
    place(out, &args.to, &directory, args.force)?;
    print_summary(&manifest, &args.to, started);
    if let Some(database) = postgres {
        println!(
            "NOT BACKED UP: the store, in the PostgreSQL database {database}. Back it up with pg_dump (or base \
             backups); this file holds the server's certificate and key only."
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Gives the synced temporary file its final name, without replacing a file that appeared meanwhile unless
/// `force`, and syncs the directory so that the name survives a power cut.
fn place(out: tempfile::NamedTempFile, to: &Path, directory: &Path, force: bool) -> anyhow::Result<()> {
    let placed = if force { out.persist(to) } else { out.persist_noclobber(to) };
    placed.map_err(|e| e.error).with_context(|| format!("cannot name the backup {}", to.display()))?;
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync the directory {}", directory.display()))
}

fn print_summary(manifest: &Manifest, to: &Path, started: Instant) {
    let bytes = std::fs::metadata(to).map(|meta| meta.len()).unwrap_or(0);
    println!(
        "backed up {} to {} in {:.2} s: {}",
        manifest.data,
        to.display(),
        started.elapsed().as_secs_f64(),
        HumanBytes(bytes)
    );
    if let StoreInfo::Sqlite { accounts, conversations, messages, .. } = &manifest.store {
        let store = manifest.files.iter().find(|file| file.part == Part::Store).map_or(0, |file| file.bytes);
        println!("accounts: {accounts}");
        println!("conversations: {conversations}");
        println!("messages: {messages}");
        let taken = crate::output::utc_datetime(manifest.created_ms);
        println!("store: {} taken at {taken}, checked (integrity_check ok)", HumanBytes(store));
    }
    println!("certificate: {} (from {})", manifest.fingerprint, manifest.cert_from);
    println!("file: {} (owner-only: it holds the private key and the password hashes)", to.display());
}
