use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palomar_proto::{MessageId, Nick, RoomName};
use rusqlite::Connection;

use super::{BackupError, Progress, check, copy, copy_in_steps};
use crate::Store;
use crate::keys::ConvKey;
use crate::sqlite::SqliteStore;

fn nick(name: &str) -> Nick {
    Nick::parse(name).expect("a nickname")
}

fn id(n: u64) -> MessageId {
    let mut id = [0; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

/// A store at `path` with one account and `messages` messages in `#lobby`.
fn store_with(path: &Path, messages: u64) -> SqliteStore {
    let db = SqliteStore::open(path).expect("opens");
    db.create_account(&nick("ana"), "hash", 1).expect("creates").expect("new");
    let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby())).expect("lobby");
    db.begin().expect("begins");
    for n in 0..messages {
        db.append(lobby.id, &nick("ana"), id(n), "a message of some length, as people write them", n).expect("appends");
    }
    db.commit().expect("commits");
    db
}

/// For each conversation of the store at `path`: its counter, its messages, and its highest seq.
fn counters_and_seqs(path: &Path) -> Vec<(i64, i64, i64)> {
    let db = Connection::open(path).expect("opens the copy");
    let mut stmt = db
        .prepare(
            "SELECT c.last_seq, (SELECT count(*) FROM messages m WHERE m.conversation = c.id),
                    (SELECT ifnull(max(seq), 0) FROM messages m WHERE m.conversation = c.id)
             FROM conversations c ORDER BY c.id",
        )
        .expect("prepares");
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("reads")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

#[test]
fn copies_a_store_and_says_what_it_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, target) = (dir.path().join("store.sqlite"), dir.path().join("copy.sqlite"));
    drop(store_with(&source, 100));
    let mut reports = Vec::new();
    let copied = copy(&source, &target, &mut |progress| reports.push(progress)).expect("copies");
    assert_eq!((copied.contents.accounts, copied.contents.conversations, copied.contents.messages), (1, 1, 100));
    assert_eq!(copied.contents.schema_version, super::SCHEMA_VERSION);
    assert_eq!(copied.bytes, std::fs::metadata(&target).expect("the copy").len());
    assert_eq!(reports.last(), Some(&Progress::Checking));
    let copied_pages = reports.iter().rev().find_map(|report| match report {
        Progress::Copying { pages_done, pages_total } => Some((*pages_done, *pages_total)),
        Progress::Checking => None,
    });
    assert!(matches!(copied_pages, Some((done, total)) if done == total && total > 0), "{reports:?}");
    // One self-contained file: nothing beside it, and no WAL to need.
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(!dir.path().join(format!("copy.sqlite{suffix}")).exists(), "{suffix} left beside the copy");
    }
    let mode: String = Connection::open(&target)
        .expect("opens")
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("reads");
    assert_eq!(mode, "delete");
    assert_eq!(check(&target).expect("checks"), copied.contents);
    // And a server opens it as its store, back in WAL mode.
    let restored = SqliteStore::open(&target).expect("a server opens the copy");
    assert_eq!(restored.account(&nick("ana")).expect("reads").map(|a| a.nick), Some(nick("ana")));
}

/// The copy of a store that another connection keeps writing to finishes, and is of one moment: each
/// conversation's counter, its messages and its highest seq agree, as in every committed state. Pages one at a
/// time, so that the writer commits between any two steps.
#[test]
fn copies_one_moment_of_a_store_written_to_meanwhile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, target) = (dir.path().join("store.sqlite"), dir.path().join("copy.sqlite"));
    drop(store_with(&source, 2_000));
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (source, stop, commits) = (source.clone(), stop.clone(), commits.clone());
        std::thread::spawn(move || {
            let db = SqliteStore::open(&source).expect("opens");
            let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby())).expect("lobby");
            let room = db.ensure_conversation(&ConvKey::Room(RoomName::parse("other").expect("room"))).expect("room");
            let mut n = 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                db.begin().expect("begins");
                for conversation in [lobby.id, room.id] {
                    n += 1;
                    db.append(conversation, &nick("ana"), id(n), "written during the copy", n).expect("appends");
                }
                db.commit().expect("commits");
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Some commits before the copy starts, so that it starts from a WAL with something in it.
    while commits.load(Ordering::Relaxed) < 20 {
        std::thread::yield_now();
    }
    let before = commits.load(Ordering::Relaxed);
    let mut steps = 0;
    // After each page, wait for the writer to commit again: a commit between any two steps.
    let waited = Instant::now();
    let copied = copy_in_steps(&source, &target, 1, &mut |_| {
        steps += 1;
        let seen = commits.load(Ordering::Relaxed);
        while commits.load(Ordering::Relaxed) == seen && waited.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .expect("copies");
    let during = commits.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer ran");
    assert!(steps > 10 && during >= steps, "{steps} steps, {during} commits meanwhile: the test tested nothing");
    for (counter, count, highest) in counters_and_seqs(&target) {
        assert!(
            counter == count && count == highest,
            "a torn copy: counter {counter}, {count} messages, seq {highest}"
        );
    }
    assert!(copied.contents.messages >= 2_000);
    assert_eq!(check(&target).expect("checks"), copied.contents);
}

#[test]
fn copies_a_store_no_server_has_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, target) = (dir.path().join("store.sqlite"), dir.path().join("copy.sqlite"));
    drop(store_with(&source, 10));
    // The last connection to close took the WAL away.
    assert!(!dir.path().join("store.sqlite-wal").exists());
    let before = std::fs::read(&source).expect("reads");
    let copied = copy(&source, &target, &mut |_| {}).expect("copies");
    assert_eq!(copied.contents.messages, 10);
    assert_eq!(std::fs::read(&source).expect("reads"), before, "the store was left as it was");
    // A reader of a WAL database makes its -wal and -shm if they are missing, and cannot remove them: an empty
    // -wal, which the next server takes as its own.
    let wal = std::fs::metadata(dir.path().join("store.sqlite-wal")).map(|meta| meta.len());
    assert!(matches!(wal, Ok(0) | Err(_)), "{wal:?}");
}

#[test]
fn refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("copy.sqlite");
    let missing = dir.path().join("missing.sqlite");
    assert!(matches!(copy(&missing, &target, &mut |_| {}), Err(BackupError::NoStore(_))));
    assert!(!missing.exists(), "nothing is created where a store was expected");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, but long enough to have a header: ".repeat(20)).expect("writes");
    let error = copy(&text, &target, &mut |_| {}).expect_err("refused");
    assert!(matches!(error, BackupError::NotAStore { .. }), "{error}");
    assert!(error.to_string().contains("not an SQLite database"), "{error}");
    let other = dir.path().join("other.sqlite");
    Connection::open(&other).expect("creates").execute_batch("CREATE TABLE t (x)").expect("a table");
    let error = check(&other).expect_err("refused");
    assert!(error.to_string().contains("is not a Palomar store"), "{error}");
    assert!(matches!(check(dir.path()), Err(BackupError::NotAStore { .. })), "a directory");
}

#[test]
fn refuses_a_newer_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("store.sqlite");
    drop(store_with(&source, 1));
    Connection::open(&source).expect("opens").pragma_update(None, "user_version", 99).expect("sets");
    let error = copy(&source, &dir.path().join("copy.sqlite"), &mut |_| {}).expect_err("refused");
    assert!(matches!(error, BackupError::Newer { found: 99, .. }), "{error}");
}

/// A copy damaged on its way (a page overwritten) fails its check, whichever page it was.
#[test]
fn finds_a_damaged_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, target) = (dir.path().join("store.sqlite"), dir.path().join("copy.sqlite"));
    drop(store_with(&source, 2_000));
    copy(&source, &target, &mut |_| {}).expect("copies");
    let pristine = std::fs::read(&target).expect("reads the copy");
    let pages = pristine.len() / 4096;
    assert!(pages > 20);
    for page in [1, 2, pages / 2, pages - 1] {
        let mut bytes = pristine.clone();
        // Garbage over the page's header and first cells.
        for (i, byte) in bytes[page * 4096..page * 4096 + 64].iter_mut().enumerate() {
            *byte = 0xA5 ^ u8::try_from(i).unwrap_or(0);
        }
        std::fs::write(&target, &bytes).expect("writes");
        let error = check(&target).expect_err("a damaged copy is refused");
        assert!(matches!(error, BackupError::Damaged { .. }), "page {page}: {error}");
    }
}
