//! The embedded store copied whole, as of one moment, while a server may be writing to it (`palomar backup`), and
//! the check of such a copy before a server is started on it (`palomar restore`). What goes around the copy (the
//! archive, the TLS identity, the data directory) is the binary's; this module owns the SQL.
//!
//! **Why the online backup API inside one read transaction.** Measured with another connection committing 10
//! messages every 2 ms, each commit synced (a busy server's group commits), by `examples/backup-under-writes.rs`
//! (figures in `docs/perf-log/2026-12-07-backup-under-writes.md`):
//! - the backup API opening a read transaction of its own at each step (SQLite's "Example 2") starts again from
//!   the first page whenever another connection committed since its last step. On a store of a million messages
//!   (138 MB) it had not finished after 60 s: 3,006 restarts, 3.5 million pages copied of 37,122. (On a store
//!   of 200,000 it finished after 24 s and 1,071 restarts, when one pass happened to fit between two commits.)
//! - the backup API stepped while the source connection holds one read transaction (`BEGIN` and a first read)
//!   copies that transaction's snapshot: a WAL reader neither blocks the writer nor sees its commits, and SQLite
//!   restarts a backup only when the source's pager is reset to a newer snapshot, which the held transaction
//!   prevents. 0.74 s for the million messages, no restart, and a count of pages done after every step for a
//!   progress bar.
//! - `VACUUM INTO` is one read transaction too and finished as well, in 1.29 s: it rebuilds every table and
//!   index row by row instead of copying pages, and it is one statement, with nothing to show progress by.
//!
//! While the copy runs the server keeps writing, but its checkpoints cannot move past the copy's snapshot, so its
//! WAL grows by what it writes meanwhile, and starts over from its beginning after the copy.
//!
//! Nothing is written to the store. A store no server has open (its last connection took the `-wal` and `-shm`
//! away) is left with an empty `-wal` and a `-shm`: SQLite makes them for any reader of a WAL database and a
//! read-only connection cannot remove them. They are made with the store's mode, and owned like it even when
//! root reads it (SQLite hands them to the store's owner), so the next server takes them as its own.
//!
//! The copy is left in rollback-journal mode: one self-contained file, no `-wal` or `-shm` beside it. A server
//! opening it switches it back to WAL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::SCHEMA_VERSION;

/// Pages copied per step, between two progress reports: 4 MiB with SQLite's default page of 4 KiB.
const PAGES_PER_STEP: i32 = 1_024;

/// How long a step may keep answering "busy" before the copy gives up. With the source's read transaction held,
/// neither end should ever be busy; this only bounds a surprise.
const BUSY_PATIENCE: Duration = Duration::from_secs(30);

/// Problems `PRAGMA integrity_check` lists at most.
const PROBLEMS_SHOWN: u32 = 10;

/// What a store holds, as its summary shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    pub accounts: u64,
    pub conversations: u64,
    pub messages: u64,
    /// The store's `user_version`: a newer Palomar's store is refused.
    pub schema_version: i64,
}

/// A finished copy, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub contents: Contents,
    /// The copy's size.
    pub bytes: u64,
}

/// What the copy is doing, reported after every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Pages copied so far, of the store's.
    Copying { pages_done: u64, pages_total: u64 },
    /// `PRAGMA integrity_check` of the copy, which says nothing until it is done.
    Checking,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no store at {}", .0.display())]
    NoStore(PathBuf),
    #[error("{} is not a Palomar store: {reason}", path.display())]
    NotAStore { path: PathBuf, reason: String },
    #[error(
        "the store {} has schema version {found}, newer than this Palomar's {SCHEMA_VERSION}: use a newer release",
        path.display()
    )]
    Newer { path: PathBuf, found: i64 },
    #[error("the store {} is damaged: {problems}", path.display())]
    Damaged { path: PathBuf, problems: String },
    #[error("cannot read the store {}: {error}", path.display())]
    Read { path: PathBuf, error: rusqlite::Error },
    #[error("cannot copy the store into {}: {error}", path.display())]
    Write { path: PathBuf, error: rusqlite::Error },
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("the store {} stayed busy for {} s", path.display(), BUSY_PATIENCE.as_secs())]
    Busy { path: PathBuf },
}

impl BackupError {
    /// True when the disk the copy goes to is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, BackupError::Write { error: rusqlite::Error::SqliteFailure(e, _), .. } if e.code == ErrorCode::DiskFull)
    }
}

/// Copies the store at `source` into `target`, an empty file of the caller's, as of one moment, whether or not
/// a server is writing to it meanwhile; then checks the copy (`PRAGMA integrity_check`) and counts what it holds.
/// Nothing is written to `source`, and it is not locked: a server keeps working on it.
pub fn copy(source: &Path, target: &Path, progress: &mut dyn FnMut(Progress)) -> Result<Copied, BackupError> {
    copy_in_steps(source, target, PAGES_PER_STEP, progress)
}

fn copy_in_steps(
    source: &Path,
    target: &Path,
    pages_per_step: i32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Copied, BackupError> {
    let from = open_existing(source)?;
    let read = |error| read_error(source, error);
    // The snapshot every step copies from: see the module's doc.
    from.execute_batch("BEGIN").map_err(read)?;
    let contents = contents(&from, source)?;
    let write = |error| BackupError::Write { path: target.to_owned(), error };
    let mut to = Connection::open(target).map_err(write)?;
    // A scratch copy: the caller streams it into a file it syncs, and deletes it.
    to.pragma_update(None, "synchronous", "OFF").map_err(write)?;
    {
        let backup = Backup::new(&from, &mut to).map_err(write)?;
        let mut busy_since: Option<Instant> = None;
        loop {
            let step = backup.step(pages_per_step).map_err(|error| match error.sqlite_error_code() {
                // Reading a damaged source fails here.
                Some(ErrorCode::DatabaseCorrupt) => read_error(source, error),
                _ => write(error),
            })?;
            let done = backup.progress();
            progress(Progress::Copying {
                pages_done: u64::try_from(done.pagecount - done.remaining).unwrap_or(0),
                pages_total: u64::try_from(done.pagecount).unwrap_or(0),
            });
            match step {
                StepResult::Done => break,
                StepResult::More => busy_since = None,
                _ => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > BUSY_PATIENCE {
                        return Err(BackupError::Busy { path: source.to_owned() });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    drop(from);
    // One file, no WAL beside it, whatever mode the source was in.
    to.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(())).map_err(write)?;
    progress(Progress::Checking);
    let copied = checked(&to, target)?;
    if copied != contents {
        // Both were read in the same snapshot: a difference means the copy is not what was read.
        return Err(BackupError::Damaged {
            path: target.to_owned(),
            problems: format!("it holds {copied:?}, the source held {contents:?}"),
        });
    }
    drop(to);
    let bytes = std::fs::metadata(target).map_err(|error| BackupError::Io { path: target.to_owned(), error })?.len();
    Ok(Copied { contents, bytes })
}

/// Checks a copy made by [`copy`] (after it travelled in an archive): it is a store of this Palomar or an older
/// one, `PRAGMA integrity_check` finds nothing, and what it holds.
pub fn check(path: &Path) -> Result<Contents, BackupError> {
    let db = open_existing(path)?;
    checked(&db, path)
}

/// Opens an existing store without ever writing to it. Never creates one: a wrong path is an error, not an empty
/// store.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(BackupError::NotAStore { path: path.to_owned(), reason: "it is not a file".into() });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::NoStore(path.to_owned())),
        Err(error) => return Err(BackupError::Io { path: path.to_owned(), error }),
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(path, flags).map_err(|error| read_error(path, error))?;
    // A server's checkpoint may hold the WAL's lock for a moment.
    db.busy_timeout(Duration::from_secs(10)).map_err(|error| read_error(path, error))?;
    Ok(db)
}

/// `error` from reading `path`, with "not a database" and "malformed" said as such.
fn read_error(path: &Path, error: rusqlite::Error) -> BackupError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            BackupError::NotAStore { path: path.to_owned(), reason: "it is not an SQLite database".into() }
        }
        Some(ErrorCode::DatabaseCorrupt) => BackupError::Damaged { path: path.to_owned(), problems: error.to_string() },
        _ => BackupError::Read { path: path.to_owned(), error },
    }
}

/// `PRAGMA integrity_check` on `db`, then what it holds.
fn checked(db: &Connection, path: &Path) -> Result<Contents, BackupError> {
    let read = |error| read_error(path, error);
    let problems: Vec<String> = {
        let mut stmt = db.prepare(&format!("PRAGMA integrity_check({PROBLEMS_SHOWN})")).map_err(read)?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(read)?;
        rows.collect::<rusqlite::Result<_>>().map_err(read)?
    };
    if problems != ["ok"] {
        return Err(BackupError::Damaged { path: path.to_owned(), problems: problems.join("; ") });
    }
    contents(db, path)
}

/// What the store open on `db` holds; refuses a database that is not a Palomar store, or a newer one.
fn contents(db: &Connection, path: &Path) -> Result<Contents, BackupError> {
    let read = |error| read_error(path, error);
    let schema_version: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(read)?;
    if schema_version > SCHEMA_VERSION {
        return Err(BackupError::Newer { path: path.to_owned(), found: schema_version });
    }
    // Tables every version of the schema has.
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('accounts', 'conversations', 'messages')",
            [],
            |row| row.get(0),
        )
        .map_err(read)?;
    if tables != 3 {
        return Err(BackupError::NotAStore {
            path: path.to_owned(),
            reason: "it lacks the tables of one (accounts, conversations, messages)".into(),
        });
    }
    let count = |table: &str| -> Result<u64, BackupError> {
        let n: i64 = db.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).map_err(read)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(Contents {
        accounts: count("accounts")?,
        conversations: count("conversations")?,
        messages: count("messages")?,
        schema_version,
    })
}

#[cfg(test)]
mod tests;
