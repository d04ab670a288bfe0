//! `palomar restore`: a backup file into a new data directory, checked whole before the directory takes its name.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::HumanBytes;
use palomar_store::sqlite::backup as store_backup;
use palomar_transport::ServerIdentity;

use super::archive::{self, Manifest, Part, StoreInfo};

#[derive(Args)]
#[command(after_long_help = RESTORE_HELP)]
pub struct RestoreArgs {
    /// The backup file, as `palomar backup --to` wrote it.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The data directory to restore into: it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

const RESTORE_HELP: &str = "\
Restores into a data directory that does not exist or is empty; a directory holding anything is refused and
left as it is. Everything is read into a temporary directory beside DIR (inside it, when DIR exists) and checked
(every file against its SHA-256, the store with PRAGMA integrity_check, the certificate against its key) before
DIR takes it: a damaged or truncated backup leaves nothing behind.

Then `palomar serve --data DIR` carries on where the server was when the backup was taken: the same certificate
(clients connect without a word), the same accounts and passwords, messages, seqs and cursors. Run restore as
the user the server runs as (or give it the files after): the files are owner-only.";

/// Where the checked files go.
enum Placing {
    /// `DIR` does not exist: the staging directory, beside it, is renamed to it.
    Rename,
    /// `DIR` exists and is empty (perhaps a mount point, or a directory systemd made): the staging directory is
    /// inside it, and its entries move up.
    MoveUp,
}

pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let mut file = open_backup(&args.from)?;
    let (staging, placing) = stage_for(&args.data)?;
    let manifest = archive::extract(&mut file, staging.path())
        .with_context(|| format!("cannot restore {}: nothing was restored", args.from.display()))?;
    check(&manifest, staging.path())
        .with_context(|| format!("cannot restore {}: nothing was restored", args.from.display()))?;
    place(staging, &args.data, placing)?;
    print_summary(&manifest, &args.from, &args.data);
    Ok(ExitCode::SUCCESS)
}

fn open_backup(path: &Path) -> anyhow::Result<File> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read the backup {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory, not a backup file", path.display());
    }
    File::open(path).with_context(|| format!("cannot read the backup {}", path.display()))
}

/// Refuses a `data` that is anything but missing or an empty directory, and makes the private staging
/// directory on its file system.
fn stage_for(data: &Path) -> anyhow::Result<(tempfile::TempDir, Placing)> {
    let staging = |parent: &Path, prefix: String| {
        tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(parent)
            .with_context(|| format!("cannot create a temporary directory in {}", parent.display()))
    };
    match std::fs::metadata(data) {
        Ok(meta) if !meta.is_dir() => bail!("{} exists and is not a directory", data.display()),
        Ok(_) => {
            let mut entries = std::fs::read_dir(data)
                .with_context(|| format!("cannot read the directory {}", data.display()))?
                .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<Vec<_>>>()
                .with_context(|| format!("cannot read the directory {}", data.display()))?;
            if !entries.is_empty() {
                entries.sort();
                bail!(
                    "{} is not empty (it holds {}): restore only into an empty or new directory; nothing was changed",
                    data.display(),
                    entries.join(", ")
                );
            }
            Ok((staging(data, ".palomar-restore-".into())?, Placing::MoveUp))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match data.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
                _ => PathBuf::from("."),
            };
            std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
            let name = data.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            Ok((staging(&parent, format!(".{name}.restore-"))?, Placing::Rename))
        }
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", data.display())),
    }
}

/// Checks what was extracted beyond its hashes: the store opens as a store of this Palomar (or an older one),
/// passes `PRAGMA integrity_check` and holds what the manifest says; the certificate and key load as the server
/// loads them, and are the ones backed up.
fn check(manifest: &Manifest, staging: &Path) -> anyhow::Result<()> {
    if let StoreInfo::Sqlite { accounts, conversations, messages, .. } = manifest.store {
        let found = store_backup::check(&staging.join(Part::Store.path()))?;
        if (found.accounts, found.conversations, found.messages) != (accounts, conversations, messages) {
            bail!(
                "the store holds {} accounts, {} conversations and {} messages, its manifest says {accounts}, \
                 {conversations} and {messages}",
                found.accounts,
                found.conversations,
                found.messages
            );
        }
    }
    let identity = ServerIdentity::load(&staging.join(Part::Cert.path()), &staging.join(Part::Key.path()))
        .context("the certificate and key do not load")?;
    let fingerprint = identity.fingerprint().to_string();
    if fingerprint != manifest.fingerprint {
        bail!("the certificate is {fingerprint}, its manifest says {}", manifest.fingerprint);
    }
    Ok(())
}

/// Puts the checked files in place as `data`, owner-only, and syncs the directories, so that a power cut
/// leaves either nothing or the whole restore under that name.
fn place(staging: tempfile::TempDir, data: &Path, placing: Placing) -> anyhow::Result<()> {
    let sync = |dir: &Path| {
        File::open(dir).and_then(|dir| dir.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
    };
    sync(&staging.path().join("tls"))?;
    sync(staging.path())?;
    let restrict = |dir: &Path| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))
    };
    restrict(&staging.path().join("tls"))?;
    match placing {
        Placing::Rename => {
            // Owner-only, as `palomar serve` makes a data directory: the store holds the password hashes.
            restrict(staging.path())?;
            std::fs::rename(staging.path(), data)
                .with_context(|| format!("cannot put the restored directory in place as {}", data.display()))?;
            // Renamed: nothing left to remove.
            let _ = staging.keep();
            if let Some(parent) = data.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                sync(parent)?;
            }
        }
        Placing::MoveUp => {
            restrict(data)?;
            // The store before the identity: were the restore cut between the two, a server started on the
            // directory would make itself a new certificate, which every client refuses, rather than serve the
            // right certificate over an empty store.
            for part in ["store.sqlite", "tls"] {
                let from = staging.path().join(part);
                if from.exists() {
                    std::fs::rename(&from, data.join(part))
                        .with_context(|| format!("cannot move {} into {}", part, data.display()))?;
                }
            }
            sync(data)?;
        }
    }
    Ok(())
}

fn print_summary(manifest: &Manifest, from: &Path, data: &Path) {
    let taken = crate::output::utc_datetime(manifest.created_ms);
    println!(
        "restored {} into {} (backed up from {} at {taken}, palomar {})",
        from.display(),
        data.display(),
        manifest.data,
        manifest.palomar
    );
    match &manifest.store {
        StoreInfo::Sqlite { accounts, conversations, messages, .. } => {
            let bytes = manifest.files.iter().find(|file| file.part == Part::Store).map_or(0, |file| file.bytes);
            println!("accounts: {accounts}");
            println!("conversations: {conversations}");
            println!("messages: {messages}");
            println!(
                "store: {} in {}, checked (integrity_check ok)",
                HumanBytes(bytes),
                data.join(Part::Store.path()).display()
            );
        }
        StoreInfo::Postgres { database } => {
            println!(
                "store: NOT in this backup: it was in the PostgreSQL database {database}; restore that database from its own backup (pg_restore, or a base backup)"
            );
        }
    }
    println!("certificate: {} in {}", manifest.fingerprint, data.join("tls").display());
    let default_cert = Path::new(&manifest.data).join(Part::Cert.path());
    if Path::new(&manifest.cert_from) != default_cert {
        println!(
            "the certificate came from {} (the configuration's tls.cert): point tls.cert and tls.key at the restored \
             files, or copy them back there",
            manifest.cert_from
        );
    }
    println!("start the server with: palomar serve --data {}", data.display());
}
