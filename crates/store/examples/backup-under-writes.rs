//! How each way of copying a live SQLite store fares while another connection keeps committing, as a busy
//! server's writer does: the measurement behind `palomar_store::sqlite::backup` (see its module doc, and
//! `docs/perf-log/2026-12-08-backup-under-writes.md` for the figures).
//!
//! `cargo run -p palomar-store --example backup-under-writes [MESSAGES]` (default 200,000). Each way gets a
//! fresh copy target and at most `GIVE_UP` to finish.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palomar_proto::{MessageId, Nick, RoomName};
use palomar_store::sqlite::SqliteStore;
use palomar_store::{ConvKey, Store};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

const GIVE_UP: Duration = Duration::from_secs(60);
/// The writer's pace: a group commit of `PER_COMMIT` messages every `EVERY`.
const EVERY: Duration = Duration::from_millis(2);
const PER_COMMIT: u64 = 10;
const PAGES_PER_STEP: i32 = 1_024;

fn id(n: u64) -> MessageId {
    let mut id = [0; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let messages: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("store.sqlite");
    let ana = Nick::parse("ana")?;
    {
        let db = SqliteStore::open(&source)?;
        db.create_account(&ana, "hash", 1)?;
        let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
        db.begin()?;
        for n in 0..messages {
            db.append(lobby.id, &ana, id(n), "a message of some length, as people write them in a chat", n)?;
        }
        db.commit()?;
    }
    let bytes = std::fs::metadata(&source)?.len();
    println!("store: {messages} messages, {:.1} MB", bytes as f64 / 1e6);

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (source, stop, commits, ana) = (source.clone(), stop.clone(), commits.clone(), ana.clone());
        std::thread::spawn(move || -> Result<(), palomar_store::StoreError> {
            let db = SqliteStore::open(&source)?;
            let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
            let mut n = u64::MAX / 2;
            while !stop.load(Ordering::Relaxed) {
                db.begin()?;
                for _ in 0..PER_COMMIT {
                    n += 1;
                    db.append(lobby.id, &ana, id(n), "written during the copy", n)?;
                }
                db.commit()?;
                commits.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(EVERY);
            }
            Ok(())
        })
    };

    for (name, hold) in [("backup API, a read transaction per step", false), ("backup API, one read transaction", true)]
    {
        let target = dir.path().join(format!("copy-{hold}.sqlite"));
        let from = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        from.busy_timeout(Duration::from_secs(10))?;
        if hold {
            from.execute_batch("BEGIN")?;
            from.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        }
        let mut to = Connection::open(&target)?;
        let before = commits.load(Ordering::Relaxed);
        let started = Instant::now();
        let backup = Backup::new(&from, &mut to)?;
        let (mut copied, mut restarts, mut last_remaining) = (0i64, 0u64, None::<i32>);
        let finished = loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let progress = backup.progress();
            let done = progress.pagecount - progress.remaining;
            // A backup that starts again from the first page has more left than after its last step.
            match last_remaining {
                Some(last) if progress.remaining > last => {
                    restarts += 1;
                    copied += i64::from(done);
                }
                Some(last) => copied += i64::from(last - progress.remaining),
                None => copied += i64::from(done),
            }
            last_remaining = Some(progress.remaining);
            if step == StepResult::Done {
                break true;
            }
            if started.elapsed() > GIVE_UP {
                break false;
            }
        };
        report(name, finished, started.elapsed(), commits.load(Ordering::Relaxed) - before);
        println!("    pages copied {copied} (the store has {}), restarts {restarts}", backup.progress().pagecount);
    }

    {
        let target = dir.path().join("copy-vacuum.sqlite");
        let from = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        from.busy_timeout(Duration::from_secs(10))?;
        let before = commits.load(Ordering::Relaxed);
        let started = Instant::now();
        from.execute("VACUUM INTO ?1", [path_text(&target)?])?;
        report("VACUUM INTO", true, started.elapsed(), commits.load(Ordering::Relaxed) - before);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "the writer panicked")??;
    Ok(())
}

fn path_text(path: &Path) -> Result<&str, &'static str> {
    path.to_str().ok_or("a path that is not UTF-8")
}

fn report(name: &str, finished: bool, took: Duration, commits: u64) {
    let outcome = if finished { "finished" } else { "gave up" };
    println!("{name}: {outcome} after {:.2} s, {commits} commits meanwhile", took.as_secs_f64());
}
