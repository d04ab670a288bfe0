//! The SQLite schema and every statement the server runs against it.
//!
//! One writer connection does all writes (the server groups many of them into one transaction, so many
//! messages share one sync); any number of reader connections read concurrently thanks to WAL mode.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use palomar_proto::{Message, MessageId, Nick, RoomName};
use rusqlite::{Connection, OptionalExtension, params};

use crate::keys::{Account, AccountId, ConvId, ConvKey};
use crate::runs::{self, Run};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The conversation was deleted (with a removed account) while a request for it was on its way.
    #[error("conversation {0} no longer exists")]
    NoConversation(ConvId),
    #[error("cannot create the store file or make it owner-only: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when the disk is full or read-only: the message was not stored, and retrying later may work.
    pub fn is_disk_problem(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Makes the store file `path` owner-only (0600) whatever the umask, creating it empty (a new database to
/// SQLite) if needed, before SQLite opens it: SQLite gives the `-wal` and `-shm` files it creates the mode of
/// the database file. It holds password hashes and every message. Files an older Palomar left looser, the
/// database's or ones beside it, are tightened.
fn owner_only(path: &Path) -> std::io::Result<()> {
    let restrict = |file: &File| -> std::io::Result<()> {
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(Permissions::from_mode(0o600))?;
        }
        Ok(())
    };
    restrict(&OpenOptions::new().append(true).create(true).mode(0o600).open(path)?)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut beside = path.as_os_str().to_owned();
        beside.push(suffix);
        match File::open(&beside) {
            Ok(file) => restrict(&file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A conversation row: its id in this store and the bounds of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvRow {
    pub id: ConvId,
    pub key: ConvKey,
    /// Highest seq given out (0 before the first message).
    pub last_seq: u64,
    /// Lowest seq still kept; `last_seq + 1` when retention removed everything.
    pub first_seq: u64,
}

/// A message as stored, not yet addressed to any particular reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub key: ConvKey,
    pub seq: u64,
    pub id: MessageId,
    pub from: Nick,
    pub ts: u64,
    pub text: String,
}

impl StoredMessage {
    pub fn for_reader(&self, reader: AccountId) -> Message {
        Message {
            conversation: self.key.view_for(reader),
            seq: self.seq,
            id: self.id,
            from: self.from.clone(),
            ts: self.ts,
            text: self.text.clone(),
        }
    }
}

/// An account and what its password must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: String,
}

/// What removing an account deleted besides the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub account: Account,
    pub deleted_directs: Vec<DeletedDirect>,
}

/// A direct conversation deleted with a removed account, and the other account that was in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedDirect {
    pub conversation: ConvId,
    pub peer: Account,
}

/// `palomar user remove NICK`, waiting for the server's writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalRequest {
    pub id: i64,
    pub nick: Nick,
}

/// The outcome of one append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub ts: u64,
    /// The sender had already sent this id: nothing new was stored.
    pub duplicate: bool,
}

/// The schema's version, kept in `PRAGMA user_version`; [`Db::open_with`] migrates older stores.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    nick TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS members (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_account ON members (account, conversation);
CREATE TABLE IF NOT EXISTS cursors (
    account INTEGER NOT NULL,
    conversation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account, conversation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS direct_seq_floors (
    nicks TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_removals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    nick TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    done_ms INTEGER,
    removed INTEGER
);
";

/// Accounts and conversations are `AUTOINCREMENT`, so an id is never given out again, even after its account
/// or conversation is deleted: a session that still holds one cannot reach another's.
/// `direct_seq_floors` remembers, per pair of nicknames, the last seq of a direct conversation deleted with an
/// account, so that a later conversation between accounts of the same nicknames continues after it: a client
/// that kept a cursor in the old one neither drops the new one's messages nor skips any (see
/// [`Db::open_direct`]). `account_removals` is how `palomar user remove` asks a running server to remove an
/// account (the server's writer must be the one to do it; see [`Db::request_removal`]).
///
/// Version 3 named members, cursors and direct conversations (`@a/b`) by nickname, so a removed account's
/// direct conversations went to whoever registered the nickname next; version 4 names them by account.
const MIGRATE_3_TO_4_BEGIN: &str = "
ALTER TABLE accounts RENAME TO accounts_v3;
ALTER TABLE members RENAME TO members_v3;
ALTER TABLE cursors RENAME TO cursors_v3;
DROP INDEX IF EXISTS members_by_nick;
";
const MIGRATE_3_TO_4_END: &str = "
INSERT INTO accounts (nick, password_hash, created_ms)
    SELECT nick, password_hash, created_ms FROM accounts_v3 ORDER BY created_ms, nick;
INSERT INTO members (conversation, account)
    SELECT m.conversation, a.id FROM members_v3 m JOIN accounts a ON a.nick = m.nick;
INSERT INTO cursors (account, conversation, seq)
    SELECT a.id, c.conversation, c.seq FROM cursors_v3 c JOIN accounts a ON a.nick = c.nick;
DROP TABLE accounts_v3;
DROP TABLE members_v3;
DROP TABLE cursors_v3;
";
/// Version 4 also stops giving out the id of a deleted conversation again (`AUTOINCREMENT`).
const MIGRATE_CONVERSATIONS_3_TO_4_BEGIN: &str = "ALTER TABLE conversations RENAME TO conversations_v3;";
const MIGRATE_CONVERSATIONS_3_TO_4_END: &str = "
INSERT INTO conversations (id, key, last_seq, first_seq)
    SELECT id, key, last_seq, first_seq FROM conversations_v3 ORDER BY id;
DROP TABLE conversations_v3;
";

/// The log, in order of arrival: new rows go to the end of the table whatever their conversation, so a commit
/// of many messages writes few pages. The id index leads with the client's id, which clients make
/// time-ordered, for the same reason.
///
/// The index by conversation and seq is the exception: one entry per message, written with each commit, made
/// that commit touch a page per conversation, the store's largest cost when messages arrive in many rooms at once.
/// So `message_runs` holds [`Run`]s, each the ids of up to [`runs::RUN_MAX`] consecutive seqs, and is filled in
/// batches of [`UNINDEXED_MAX`] messages. The messages after `message_runs_state.indexed_through` (the tail) are
/// found by scanning the end of the table.
const MESSAGES: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id BLOB NOT NULL,
    ts INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id ON messages (client_id, sender);
CREATE TABLE IF NOT EXISTS message_runs (
    conversation INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    ids BLOB NOT NULL,
    PRIMARY KEY (conversation, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS message_runs_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through INTEGER NOT NULL
);
INSERT OR IGNORE INTO message_runs_state (id, indexed_through) VALUES (1, 0);
";

/// Most messages left out of `message_runs`. A read scans at most this many rows of the tail (plus one commit's
/// worth); a commit that finds more indexes them all.
const UNINDEXED_MAX: i64 = 4_096;

/// Version 2 indexed `(conversation, seq)` with every insert; version 3 keeps runs instead, built from that index
/// before it is dropped.
const MIGRATE_2_TO_3: &str = "DROP INDEX IF EXISTS messages_by_seq;";

/// Version 1 kept the log clustered by conversation (`WITHOUT ROWID`) and indexed ids by sender first; the
/// rows move to the version 2 table, created by [`MESSAGES`] in between these two steps.
const MIGRATE_1_TO_2_BEGIN: &str = "
DROP INDEX IF EXISTS messages_by_sender_id;
ALTER TABLE messages RENAME TO messages_v1;
";
const MIGRATE_1_TO_2_END: &str = "
INSERT INTO messages (conversation, seq, sender, client_id, ts, text)
    SELECT conversation, seq, sender, client_id, ts, text FROM messages_v1 ORDER BY conversation, seq;
DROP TABLE messages_v1;
";

/// How hard a commit works to survive a crash, as SQLite's `synchronous` setting of the writing connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced to disk before it returns: nothing acknowledged is lost, even to a power cut.
    #[default]
    Full,
    /// Commits reach the operating system but are synced only at WAL checkpoints: nothing is lost when the
    /// process dies, but a power cut or an OS crash may lose the last commits.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// One connection to the store file.
pub struct Db {
    conn: Connection,
    counters: RefCell<Counters>,
}

/// The writing connection's copy of each conversation's `last_seq`: an append takes its seq from here instead
/// of reading and updating the conversation's row for every message, and a commit writes each changed counter
/// once, in the same transaction as the messages.
#[derive(Default)]
struct Counters {
    committed: HashMap<ConvId, u64>,
    /// Counters moved by the open transaction.
    staged: HashMap<ConvId, u64>,
}

impl Counters {
    fn get(&self, conversation: ConvId) -> Option<u64> {
        self.staged.get(&conversation).or_else(|| self.committed.get(&conversation)).copied()
    }
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Db {
    /// Opens (creating if needed) the store at `path`. Commits are synced to disk before they return.
    pub fn open(path: &Path) -> Result<Db> {
        Db::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed) the store at `path`, committing with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Db> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", durability.pragma())?;
        let db = Db { conn, counters: RefCell::default() };
        db.create_or_migrate()?;
        db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
        Ok(db)
    }

    fn create_or_migrate(&self) -> Result<()> {
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the store has schema version {version}, newer than this Palomar's {SCHEMA_VERSION}; use a newer release"
            )));
        }
        let has_table = |name: &str| -> Result<bool> {
            Ok(self
                .conn
                .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some())
        };
        let has_v1_log = version < 2 && has_table("messages")?;
        let has_v3_people = version < 4 && has_table("accounts")?;
        let has_v3_conversations = version < 4 && has_table("conversations")?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let migrated = (|| -> Result<()> {
            if has_v3_people {
                tracing::info!("migrating the store's accounts to schema version {SCHEMA_VERSION}");
                self.conn.execute_batch(MIGRATE_3_TO_4_BEGIN)?;
            }
            if has_v3_conversations {
                self.conn.execute_batch(MIGRATE_CONVERSATIONS_3_TO_4_BEGIN)?;
            }
            self.conn.execute_batch(SCHEMA)?;
            if has_v3_conversations {
                self.conn.execute_batch(MIGRATE_CONVERSATIONS_3_TO_4_END)?;
            }
            if has_v3_people {
                self.conn.execute_batch(MIGRATE_3_TO_4_END)?;
            }
            if has_v1_log {
                tracing::info!("migrating the store's message log to schema version {SCHEMA_VERSION}");
                self.conn.execute_batch(MIGRATE_1_TO_2_BEGIN)?;
            }
            self.conn.execute_batch(MESSAGES)?;
            if has_v1_log {
                self.conn.execute_batch(MIGRATE_1_TO_2_END)?;
            }
            if version == 2 {
                tracing::info!("migrating the store's index of messages to schema version {SCHEMA_VERSION}");
            }
            if version < 3 {
                self.index_whole_log()?;
                self.conn.execute_batch(MIGRATE_2_TO_3)?;
            }
            if version < 4 {
                self.rekey_direct_conversations()?;
            }
            self.conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            Ok(self.conn.execute_batch("COMMIT")?)
        })();
        if migrated.is_err() {
            self.rollback();
        }
        migrated
    }

    /// Names the direct conversations of a version 3 store (`@a/b`, by nickname) by account. One that began
    /// before either account was created belonged to an account since removed, whose nickname someone
    /// registered again (version 3 handed it over): it is deleted, as removing that account now would have.
    /// So is one whose nickname has no account any more.
    fn rekey_direct_conversations(&self) -> Result<()> {
        let old: Vec<(ConvId, String, i64)> = {
            let mut stmt = self.conn.prepare("SELECT id, key, last_seq FROM conversations WHERE key LIKE '@%'")?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect::<rusqlite::Result<_>>()?
        };
        for (conversation, key, last_seq) in old {
            if ConvKey::from_column(&key).is_some() {
                continue;
            }
            let nicks = key.strip_prefix('@').and_then(|pair| pair.split_once('/'));
            let parties = match nicks {
                Some((a, b)) => match (Nick::parse(a), Nick::parse(b)) {
                    (Ok(a), Ok(b)) => Some((self.account_created(&a)?, self.account_created(&b)?)),
                    _ => None,
                },
                None => None,
            };
            // The old key cannot be parsed any more; the key of this row only labels the messages read.
            let row = ConvRow { id: conversation, key: ConvKey::Room(RoomName::lobby()), last_seq: 0, first_seq: 1 };
            let began = self.messages_after(&row, 0, 1)?.first().map(|m| m.ts);
            let owned_now = |party: &(Account, u64)| began.is_none_or(|began| began >= party.1);
            match parties {
                Some((Some(a), Some(b))) if owned_now(&a) && owned_now(&b) => {
                    let key = ConvKey::direct(a.0, b.0);
                    self.conn.execute(
                        "UPDATE conversations SET key = ?2 WHERE id = ?1",
                        params![conversation, key.to_column()],
                    )?;
                }
                _ => {
                    tracing::info!(conversation = %key, "deleting a direct conversation of a removed account");
                    if let Some((a, b)) = nicks {
                        let pair = if a <= b { format!("@{a}/{b}") } else { format!("@{b}/{a}") };
                        self.raise_direct_floor(&pair, to_u64(last_seq))?;
                    }
                    self.delete_conversation(conversation)?;
                }
            }
        }
        Ok(())
    }

    /// The account that has `nick` now, with its creation time.
    fn account_created(&self, nick: &Nick) -> Result<Option<(Account, u64)>> {
        Ok(self
            .conn
            .query_row("SELECT id, created_ms FROM accounts WHERE nick = ?1", [nick.as_str()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
            })
            .optional()?
            .map(|(id, created)| (Account { id: AccountId(id), nick: nick.clone() }, to_u64(created))))
    }

    /// Opens an existing store for reading only (the writer created the schema).
    pub fn open_reader(path: &Path) -> Result<Db> {
        // A `Db` is used by one thread at a time, so SQLite's own lock around every call would only cost.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Db { conn, counters: RefCell::default() })
    }

    pub fn begin(&self) -> Result<()> {
        self.counters.borrow_mut().staged.clear();
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    /// Writes the counters the transaction moved (and indexes the tail when it is long), then commits. On an
    /// error, call [`Db::rollback`].
    pub fn commit(&self) -> Result<()> {
        if !self.counters.borrow().staged.is_empty() {
            self.write_counters()?;
            self.index_tail_if_long()?;
        }
        self.conn.execute_batch("COMMIT")?;
        let mut counters = self.counters.borrow_mut();
        let staged = std::mem::take(&mut counters.staged);
        counters.committed.extend(staged);
        Ok(())
    }

    /// Runs `write` in a transaction of its own when none is open, so that it is applied whole or not at all.
    fn in_transaction<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return write();
        }
        self.begin()?;
        let done = write().and_then(|value| self.commit().map(|()| value));
        if done.is_err() {
            self.rollback();
        }
        done
    }

    /// Abandons the open transaction, if any.
    pub fn rollback(&self) {
        self.counters.borrow_mut().staged.clear();
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn write_counters(&self) -> Result<()> {
        let counters = self.counters.borrow();
        let mut update = self.conn.prepare_cached("UPDATE conversations SET last_seq = ?2 WHERE id = ?1")?;
        for (&conversation, &seq) in &counters.staged {
            update.execute(params![conversation, to_i64(seq)])?;
        }
        Ok(())
    }

    /// The newest message in `message_runs`: the tail is every message after it.
    fn indexed_through(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT indexed_through FROM message_runs_state")?
            .query_row([], |row| row.get(0))?)
    }

    fn index_tail_if_long(&self) -> Result<()> {
        let (through, newest): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT indexed_through, (SELECT ifnull(max(id), 0) FROM messages) FROM message_runs_state",
            )?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        if newest - through >= UNINDEXED_MAX { self.index_tail(through) } else { Ok(()) }
    }

    /// Adds every message of the tail, the messages after `through`, to `message_runs`.
    fn index_tail(&self, through: i64) -> Result<()> {
        let mut by_conversation: HashMap<ConvId, Vec<(u64, i64)>> = HashMap::new();
        {
            let mut stmt =
                self.conn.prepare_cached("SELECT conversation, seq, id FROM messages WHERE id > ?1 ORDER BY id")?;
            let mut rows = stmt.query([through])?;
            while let Some(row) = rows.next()? {
                by_conversation.entry(row.get(0)?).or_default().push((to_u64(row.get(1)?), row.get(2)?));
            }
        }
        for (conversation, entries) in by_conversation {
            self.add_to_runs(conversation, &entries)?;
        }
        self.mark_all_indexed()
    }

    /// Builds the runs of a store that has none: a version 2 store, through its `(conversation, seq)` index.
    fn index_whole_log(&self) -> Result<()> {
        let mut stmt = self.conn.prepare("SELECT conversation, seq, id FROM messages ORDER BY conversation, seq")?;
        let mut rows = stmt.query([])?;
        let mut batch: Vec<(u64, i64)> = Vec::new();
        let mut batch_conversation = None;
        while let Some(row) = rows.next()? {
            let conversation: ConvId = row.get(0)?;
            if batch_conversation != Some(conversation) || batch.len() >= 65_536 {
                if let Some(previous) = batch_conversation {
                    self.add_to_runs(previous, &batch)?;
                }
                batch.clear();
                batch_conversation = Some(conversation);
            }
            batch.push((to_u64(row.get(1)?), row.get(2)?));
        }
        if let Some(conversation) = batch_conversation {
            self.add_to_runs(conversation, &batch)?;
        }
        self.mark_all_indexed()
    }

    /// Indexes `entries` (in seq order) of one conversation after its newest run.
    fn add_to_runs(&self, conversation: ConvId, entries: &[(u64, i64)]) -> Result<()> {
        let last = self
            .conn
            .prepare_cached(
                "SELECT first_seq, ids FROM message_runs WHERE conversation = ?1 ORDER BY first_seq DESC LIMIT 1",
            )?
            .query([conversation])?
            .next()?
            .map(Self::run)
            .transpose()?;
        let mut write = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO message_runs (conversation, first_seq, ids) VALUES (?1, ?2, ?3)")?;
        for run in runs::extend(last, entries) {
            write.execute(params![conversation, to_i64(run.first_seq), run.encode()])?;
        }
        Ok(())
    }

    /// Records that every message is in `message_runs`. Also after retention: had it removed the newest
    /// messages, their ids would be given out again, and must not count as indexed.
    fn mark_all_indexed(&self) -> Result<()> {
        self.conn
            .execute("UPDATE message_runs_state SET indexed_through = (SELECT ifnull(max(id), 0) FROM messages)", [])?;
        Ok(())
    }

    /// The highest seq given out in `conversation`, as this connection's transaction sees it.
    fn last_seq(&self, conversation: ConvId) -> Result<u64> {
        if let Some(seq) = self.counters.borrow().get(conversation) {
            return Ok(seq);
        }
        let seq: i64 = self
            .conn
            .prepare_cached("SELECT last_seq FROM conversations WHERE id = ?1")?
            .query_row([conversation], |row| row.get(0))
            .optional()?
            .ok_or(StoreError::NoConversation(conversation))?;
        let seq = to_u64(seq);
        self.counters.borrow_mut().committed.insert(conversation, seq);
        Ok(seq)
    }

    // ---- accounts

    /// The account that has `nick`, with its password hash, for a login.
    pub fn credentials(&self, nick: &Nick) -> Result<Option<Credentials>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, password_hash FROM accounts WHERE nick = ?1")?
            .query_row([nick.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
            .optional()?
            .map(|(id, password_hash)| Credentials {
                account: Account { id: AccountId(id), nick: nick.clone() },
                password_hash,
            }))
    }

    /// The account that has `nick` now.
    pub fn account(&self, nick: &Nick) -> Result<Option<Account>> {
        Ok(self.credentials(nick)?.map(|credentials| credentials.account))
    }

    /// Creates an account; `None` when the nickname is already taken.
    pub fn create_account(&self, nick: &Nick, password_hash: &str, now_ms: u64) -> Result<Option<Account>> {
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO accounts (nick, password_hash, created_ms) VALUES (?1, ?2, ?3)",
            params![nick.as_str(), password_hash, to_i64(now_ms)],
        )?;
        Ok((inserted == 1).then(|| Account { id: AccountId(self.conn.last_insert_rowid()), nick: nick.clone() }))
    }

    pub fn set_password_hash(&self, nick: &Nick, password_hash: &str) -> Result<bool> {
        let changed = self
            .conn
            .execute("UPDATE accounts SET password_hash = ?2 WHERE nick = ?1", params![nick.as_str(), password_hash])?;
        Ok(changed == 1)
    }

    /// Removes the account that has `nick`, with its memberships, its cursors and its direct conversations
    /// (their messages too, for both sides); its messages in rooms stay, under the nickname they were sent
    /// with. Its id is never given out again, so whoever registers the nickname next starts with no past. All
    /// or nothing. `None` when no account has `nick`.
    pub fn remove_account(&self, nick: &Nick) -> Result<Option<Removed>> {
        self.in_transaction(|| {
            let Some(account) = self.account(nick)? else { return Ok(None) };
            let directs: Vec<ConvRow> = self
                .conversations_of(account.id)?
                .into_iter()
                .filter(|row| matches!(row.key, ConvKey::Direct(..)))
                .collect();
            let mut deleted_directs = Vec::with_capacity(directs.len());
            for row in directs {
                if let (Some(pair), Some((a, b))) = (row.key.nick_pair(), row.key.participants()) {
                    self.raise_direct_floor(&pair, row.last_seq)?;
                    let peer = if a.id == account.id { b.clone() } else { a.clone() };
                    deleted_directs.push(DeletedDirect { conversation: row.id, peer });
                }
                self.delete_conversation(row.id)?;
            }
            let id = account.id.0;
            self.conn.execute("DELETE FROM members WHERE account = ?1", [id])?;
            self.conn.execute("DELETE FROM cursors WHERE account = ?1", [id])?;
            self.conn.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
            Ok(Some(Removed { account, deleted_directs }))
        })
    }

    /// Every account with its creation time (milliseconds since the epoch), by nickname.
    pub fn accounts(&self) -> Result<Vec<(Nick, u64)>> {
        let mut stmt = self.conn.prepare("SELECT nick, created_ms FROM accounts ORDER BY nick")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (nick, created) = row?;
            Ok((Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, to_u64(created)))
        })
        .collect()
    }

    // ---- removals asked of a running server

    /// Asks the server that runs on this store to remove the account of `nick`; returns the request's number,
    /// for [`Db::removal_outcome`]. The server's writer does the removal, so that no session of the account,
    /// and nothing the server holds in memory about its direct conversations, outlives it.
    pub fn request_removal(&self, nick: &Nick, now_ms: u64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO account_removals (nick, requested_ms) VALUES (?1, ?2)",
            params![nick.as_str(), to_i64(now_ms)],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Requests not done yet, oldest first.
    pub fn pending_removals(&self) -> Result<Vec<RemovalRequest>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id, nick FROM account_removals WHERE done_ms IS NULL ORDER BY id")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, nick) = row?;
            Ok(RemovalRequest { id, nick: Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))? })
        })
        .collect()
    }

    /// Records that request `id` was carried out: `removed` is false when no account had the nickname.
    pub fn finish_removal(&self, id: i64, removed: bool, now_ms: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE account_removals SET done_ms = ?2, removed = ?3 WHERE id = ?1",
            params![id, to_i64(now_ms), removed],
        )?;
        Ok(())
    }

    /// `None` while request `id` waits; then whether an account was removed.
    pub fn removal_outcome(&self, id: i64) -> Result<Option<bool>> {
        Ok(self
            .conn
            .query_row("SELECT done_ms, removed FROM account_removals WHERE id = ?1", [id], |row| {
                Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<bool>>(1)?))
            })
            .optional()?
            .and_then(|(done, removed)| done.map(|_| removed.unwrap_or(false))))
    }

    // ---- conversations and members

    fn conv_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ConvId, String, i64, i64)> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    }

    /// A conversation row, with `last_seq` as the open transaction sees it (the row is updated at commit).
    fn to_conv(&self, raw: (ConvId, String, i64, i64)) -> Result<ConvRow> {
        let key =
            ConvKey::from_column(&raw.1).ok_or_else(|| StoreError::Corrupt(format!("conversation key {:?}", raw.1)))?;
        let last_seq = self.counters.borrow().get(raw.0).unwrap_or(0).max(to_u64(raw.2));
        Ok(ConvRow { id: raw.0, key, last_seq, first_seq: to_u64(raw.3) })
    }

    pub fn conversation(&self, key: &ConvKey) -> Result<Option<ConvRow>> {
        let raw = self
            .conn
            .query_row(
                "SELECT id, key, last_seq, first_seq FROM conversations WHERE key = ?1",
                [key.to_column()],
                Self::conv_row,
            )
            .optional()?;
        raw.map(|raw| self.to_conv(raw)).transpose()
    }

    pub fn conversation_by_id(&self, id: ConvId) -> Result<Option<ConvRow>> {
        let raw = self
            .conn
            .query_row("SELECT id, key, last_seq, first_seq FROM conversations WHERE id = ?1", [id], Self::conv_row)
            .optional()?;
        raw.map(|raw| self.to_conv(raw)).transpose()
    }

    /// The conversation of `key`, created if needed. For a room; direct conversations are made by
    /// [`Db::open_direct`].
    pub fn ensure_conversation(&self, key: &ConvKey) -> Result<ConvRow> {
        self.conn.execute("INSERT OR IGNORE INTO conversations (key) VALUES (?1)", [key.to_column()])?;
        self.conversation(key)?.ok_or_else(|| StoreError::Corrupt("conversation vanished after insert".into()))
    }

    /// The direct conversation of `a` and `b`, created with both as members if it is new; `None` when either
    /// account no longer exists. A new one's seqs continue after those of any earlier direct conversation
    /// between the same two nicknames (deleted with a removed account): a client keeps its cursor per nickname,
    /// and must neither take the new messages for ones it has seen nor miss any.
    pub fn open_direct(&self, a: &Account, b: &Account) -> Result<Option<ConvRow>> {
        let key = ConvKey::direct(a.clone(), b.clone());
        if let Some(row) = self.conversation(&key)? {
            return Ok(Some(row));
        }
        let live: i64 = self.conn.query_row(
            "SELECT count(*) FROM accounts WHERE (id = ?1 AND nick = ?2) OR (id = ?3 AND nick = ?4)",
            params![a.id.0, a.nick.as_str(), b.id.0, b.nick.as_str()],
            |row| row.get(0),
        )?;
        if live != if a.id == b.id { 1 } else { 2 } {
            return Ok(None);
        }
        let floor: i64 = self
            .conn
            .query_row("SELECT last_seq FROM direct_seq_floors WHERE nicks = ?1", [key.nick_pair()], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        // `first_seq` stays 1: nothing of this conversation is missing, the seqs below the floor were never its.
        self.conn
            .execute("INSERT INTO conversations (key, last_seq) VALUES (?1, ?2)", params![key.to_column(), floor])?;
        let row =
            self.conversation(&key)?.ok_or_else(|| StoreError::Corrupt("conversation vanished after insert".into()))?;
        self.add_member(row.id, a.id, row.last_seq)?;
        self.add_member(row.id, b.id, row.last_seq)?;
        Ok(Some(row))
    }

    fn raise_direct_floor(&self, nick_pair: &str, last_seq: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO direct_seq_floors (nicks, last_seq) VALUES (?1, ?2)
             ON CONFLICT (nicks) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            params![nick_pair, to_i64(last_seq)],
        )?;
        Ok(())
    }

    /// Deletes a conversation with its messages, index, members and cursors.
    fn delete_conversation(&self, conversation: ConvId) -> Result<()> {
        // Every message in the runs first, so that the runs name all of them.
        self.index_tail(self.indexed_through()?)?;
        let runs: Vec<Run> = {
            let mut stmt =
                self.conn.prepare_cached("SELECT first_seq, ids FROM message_runs WHERE conversation = ?1")?;
            let mut rows = stmt.query([conversation])?;
            let mut runs = Vec::new();
            while let Some(row) = rows.next()? {
                runs.push(Self::run(row)?);
            }
            runs
        };
        let mut delete = self.conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
        for run in runs {
            for (_, id) in run.entries() {
                delete.execute([id])?;
            }
        }
        for table in ["message_runs", "members", "cursors"] {
            self.conn.execute(&format!("DELETE FROM {table} WHERE conversation = ?1"), [conversation])?;
        }
        // As after retention: had the newest messages gone, their row ids would be given out again, and must not
        // count as indexed.
        self.mark_all_indexed()?;
        self.conn.execute("DELETE FROM conversations WHERE id = ?1", [conversation])?;
        let mut counters = self.counters.borrow_mut();
        counters.committed.remove(&conversation);
        counters.staged.remove(&conversation);
        Ok(())
    }

    /// Every conversation `account` belongs to.
    pub fn conversations_of(&self, account: AccountId) -> Result<Vec<ConvRow>> {
        Ok(self.memberships_of(account)?.into_iter().map(|(_, row)| row).collect())
    }

    /// Every conversation `account` belongs to, with the account's cursor in it.
    pub fn memberships_of(&self, account: AccountId) -> Result<Vec<(u64, ConvRow)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.key, c.last_seq, c.first_seq, ifnull(k.seq, 0)
             FROM members m JOIN conversations c ON c.id = m.conversation
             LEFT JOIN cursors k ON k.account = m.account AND k.conversation = m.conversation
             WHERE m.account = ?1 ORDER BY c.id",
        )?;
        let rows = stmt.query_map([account.0], |row| Ok((Self::conv_row(row)?, row.get::<_, i64>(4)?)))?;
        rows.map(|row| {
            let (raw, cursor) = row?;
            Ok((to_u64(cursor), self.to_conv(raw)?))
        })
        .collect()
    }

    pub fn is_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM members WHERE conversation = ?1 AND account = ?2")?
            .query_row(params![conversation, account.0], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// How many rooms `account` is a member of.
    pub fn room_count(&self, account: AccountId) -> Result<u64> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM members m JOIN conversations c ON c.id = m.conversation
             WHERE m.account = ?1 AND c.key LIKE '#%'",
            [account.0],
            |row| row.get(0),
        )?;
        Ok(to_u64(count))
    }

    /// Every conversation, for rebuilding the server's in-memory view at start.
    pub fn all_conversations(&self) -> Result<Vec<ConvRow>> {
        let mut stmt = self.conn.prepare("SELECT id, key, last_seq, first_seq FROM conversations ORDER BY id")?;
        let rows = stmt.query_map([], Self::conv_row)?;
        rows.map(|raw| self.to_conv(raw?)).collect()
    }

    /// The nicknames of a conversation's members, sorted.
    pub fn members(&self, conversation: ConvId) -> Result<Vec<Nick>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.nick FROM members m JOIN accounts a ON a.id = m.account WHERE m.conversation = ?1 ORDER BY a.nick",
        )?;
        let rows = stmt.query_map([conversation], |row| row.get::<_, String>(0))?;
        rows.map(|nick| Nick::parse(&nick?).map_err(|e| StoreError::Corrupt(e.to_string()))).collect()
    }

    /// Makes `account` a member; a new member's cursor starts at `cursor` (so it gets the history after it).
    /// False when it was a member already, or the account no longer exists.
    pub fn add_member(&self, conversation: ConvId, account: AccountId, cursor: u64) -> Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO members (conversation, account) SELECT ?1, id FROM accounts WHERE id = ?2",
            params![conversation, account.0],
        )?;
        if added == 1 {
            self.conn.execute(
                "INSERT OR REPLACE INTO cursors (account, conversation, seq) VALUES (?1, ?2, ?3)",
                params![account.0, conversation, to_i64(cursor)],
            )?;
        }
        Ok(added == 1)
    }

    pub fn remove_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        let removed = self.conn.execute(
            "DELETE FROM members WHERE conversation = ?1 AND account = ?2",
            params![conversation, account.0],
        )?;
        self.conn.execute(
            "DELETE FROM cursors WHERE conversation = ?1 AND account = ?2",
            params![conversation, account.0],
        )?;
        Ok(removed == 1)
    }

    // ---- the logs

    /// Appends a message, or recognises a retry of one `sender` already sent with this `id`. Seqs have no
    /// gaps: inside a transaction the seq is only given out if it commits; outside one, the append commits
    /// by itself.
    pub fn append(
        &self,
        conversation: ConvId,
        sender: &Nick,
        id: MessageId,
        text: &str,
        now_ms: u64,
    ) -> Result<Appended> {
        self.in_transaction(|| self.insert_message(conversation, sender, id, text, now_ms))
    }

    fn insert_message(
        &self,
        conversation: ConvId,
        sender: &Nick,
        id: MessageId,
        text: &str,
        now_ms: u64,
    ) -> Result<Appended> {
        let seq = self.last_seq(conversation)? + 1;
        // Cached statements: this is the hot path of every message, and compiling SQL cost more than running it.
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO messages (conversation, seq, sender, client_id, ts, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (client_id, sender) DO NOTHING",
            )?
            .execute(params![conversation, to_i64(seq), sender.as_str(), &id.0[..], to_i64(now_ms), text])?;
        if inserted == 1 {
            self.counters.borrow_mut().staged.insert(conversation, seq);
            return Ok(Appended { seq, ts: now_ms, duplicate: false });
        }
        let (seq, ts) = self
            .conn
            .prepare_cached("SELECT seq, ts FROM messages WHERE client_id = ?1 AND sender = ?2")?
            .query_row(params![&id.0[..], sender.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
        Ok(Appended { seq: to_u64(seq), ts: to_u64(ts), duplicate: true })
    }

    fn stored_message(key: &ConvKey, row: &rusqlite::Row<'_>) -> Result<StoredMessage> {
        let client_id: Vec<u8> = row.get(2)?;
        let id =
            <[u8; 16]>::try_from(client_id.as_slice()).map_err(|_| StoreError::Corrupt("message id length".into()))?;
        let sender: String = row.get(1)?;
        Ok(StoredMessage {
            key: key.clone(),
            seq: to_u64(row.get(0)?),
            id: MessageId(id),
            from: Nick::parse(&sender).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ts: to_u64(row.get(3)?),
            text: row.get(4)?,
        })
    }

    /// A row of `message_runs` whose first two columns are `first_seq` and `ids`.
    fn run(row: &rusqlite::Row<'_>) -> Result<Run> {
        let ids: Vec<u8> = row.get(1)?;
        Run::decode(to_u64(row.get(0)?), &ids).map_err(StoreError::Corrupt)
    }

    /// The messages of `conv` with these row ids (consecutive seqs, in seq order either way).
    fn messages_by_id(&self, conv: &ConvRow, ids: &[i64]) -> Result<Vec<StoredMessage>> {
        let key = &conv.key;
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else { return Ok(Vec::new()) };
        let (low, high) = (first.min(last), first.max(last));
        // When the conversation had most of the log to itself, its rows are nearly contiguous: one scan of the id
        // range beats a lookup per message. The conversation's rows in that range are exactly these seqs.
        let span = u64::try_from(high - low).unwrap_or(u64::MAX).saturating_add(1);
        if span <= 2 * ids.len() as u64 {
            let mut page = self.select_messages(
                conv,
                "SELECT seq, sender, client_id, ts, text FROM messages
                 WHERE id >= ?1 AND conversation = ?2 AND id <= ?3 ORDER BY id LIMIT ?4",
                low,
                to_u64(high),
                ids.len(),
            )?;
            if page.len() != ids.len() {
                return Err(StoreError::Corrupt(format!("an index run names messages {low} to {high}, some gone")));
            }
            if first > last {
                page.reverse();
            }
            return Ok(page);
        }
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, sender, client_id, ts, text FROM messages WHERE id = ?1")?;
        ids.iter()
            .map(|&id| {
                let mut rows = stmt.query([id])?;
                let row = rows
                    .next()?
                    .ok_or_else(|| StoreError::Corrupt(format!("an index run names message {id}, which is gone")))?;
                Self::stored_message(key, row)
            })
            .collect()
    }

    /// Messages of `conv` as `sql` selects them, given a row id to start from, the conversation, a bound (a seq,
    /// or a row id to stop at) and `limit`.
    fn select_messages(
        &self,
        conv: &ConvRow,
        sql: &str,
        start: i64,
        bound: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![start, conv.id, to_i64(bound), i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut page = Vec::new();
        while let Some(row) = rows.next()? {
            page.push(Self::stored_message(&conv.key, row)?);
        }
        Ok(page)
    }

    /// Runs `read` on one snapshot of the store, so that a batch indexed or removed meanwhile by the writer is
    /// neither missed nor read twice. Inside the writer's transaction, that transaction is the snapshot.
    fn in_one_snapshot<T>(&self, read: impl FnOnce() -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return read();
        }
        self.conn.execute_batch("BEGIN")?;
        let result = read();
        let end = self.conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let value = result?;
        end?;
        Ok(value)
    }

    // Seqs grow with row ids within a conversation, so all of its messages in runs come before those of its tail.

    /// Up to `limit` messages with seq above `after`, in seq order.
    pub fn messages_after(&self, conv: &ConvRow, after: u64, limit: u32) -> Result<Vec<StoredMessage>> {
        let limit = limit as usize;
        self.in_one_snapshot(|| {
            let mut ids = Vec::new();
            let mut last_indexed = None;
            {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT first_seq, ids FROM message_runs WHERE conversation = ?1 AND first_seq >=
                        (SELECT ifnull(max(first_seq), 0) FROM message_runs WHERE conversation = ?1 AND first_seq <= ?2)
                     ORDER BY first_seq",
                )?;
                let mut rows = stmt.query(params![conv.id, to_i64(after.saturating_add(1))])?;
                while ids.len() < limit {
                    let Some(row) = rows.next()? else { break };
                    let run = Self::run(row)?;
                    last_indexed = run.entries().next_back().map(|(seq, _)| seq);
                    ids.extend(run.entries().filter(|&(seq, _)| seq > after).map(|(_, id)| id).take(limit - ids.len()));
                }
            }
            let mut page = self.messages_by_id(conv, &ids)?;
            if page.len() < limit {
                // The conversation's tail holds seqs `last_indexed + 1`, `+ 2`, … at increasing row ids above
                // `indexed_through`, so seq `after + 1` is at least `after - last_indexed` rows further in: a
                // reader near the end of a busy room's tail skips what it already has instead of scanning it.
                let skip = last_indexed.map_or(0, |last| after.saturating_sub(last));
                let start = self.indexed_through()?.saturating_add(1).saturating_add(to_i64(skip));
                page.extend(self.select_messages(
                    conv,
                    "SELECT seq, sender, client_id, ts, text FROM messages
                     WHERE id >= ?1 AND conversation = ?2 AND seq > ?3 ORDER BY id LIMIT ?4",
                    start,
                    after,
                    limit - page.len(),
                )?);
            }
            Ok(page)
        })
    }

    /// Up to `limit` messages with seq below `before`, in seq order (the newest of them, for scrollback).
    pub fn messages_before(&self, conv: &ConvRow, before: u64, limit: u32) -> Result<Vec<StoredMessage>> {
        let limit = limit as usize;
        self.in_one_snapshot(|| {
            let mut page = self.select_messages(
                conv,
                "SELECT seq, sender, client_id, ts, text FROM messages
                 WHERE id >= ?1 AND conversation = ?2 AND seq < ?3 ORDER BY id DESC LIMIT ?4",
                self.indexed_through()?.saturating_add(1),
                before,
                limit,
            )?;
            if page.len() < limit {
                let mut ids = Vec::new();
                {
                    let mut stmt = self.conn.prepare_cached(
                        "SELECT first_seq, ids FROM message_runs WHERE conversation = ?1 AND first_seq < ?2
                         ORDER BY first_seq DESC",
                    )?;
                    let mut rows = stmt.query(params![conv.id, to_i64(before)])?;
                    while page.len() + ids.len() < limit {
                        let Some(row) = rows.next()? else { break };
                        let run = Self::run(row)?;
                        let wanted = limit - page.len() - ids.len();
                        ids.extend(run.entries().rev().filter(|&(seq, _)| seq < before).map(|(_, id)| id).take(wanted));
                    }
                }
                page.extend(self.messages_by_id(conv, &ids)?);
            }
            page.reverse();
            Ok(page)
        })
    }

    /// Keeps only the newest `keep` messages of every conversation; returns how many were removed. Outside a
    /// transaction, in one of its own: a crash halfway must not leave runs naming removed messages.
    pub fn prune(&self, keep: u64) -> Result<usize> {
        self.in_transaction(|| self.remove_oldest(keep))
    }

    fn remove_oldest(&self, keep: u64) -> Result<usize> {
        // The cut is computed in SQL from `last_seq`, which must include this transaction's appends, and the
        // messages are found through their runs, which must include the tail.
        self.write_counters()?;
        self.index_tail(self.indexed_through()?)?;
        let keep = to_i64(keep);
        let mut removed = 0;
        let cut: Vec<(ConvId, i64)> = {
            let mut stmt =
                self.conn.prepare("SELECT id, last_seq - ?1 FROM conversations WHERE last_seq - ?1 >= first_seq")?;
            stmt.query_map([keep], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        for (conversation, upto) in cut {
            let mut affected = Vec::new();
            {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT first_seq, ids FROM message_runs WHERE conversation = ?1 AND first_seq <= ?2",
                )?;
                let mut rows = stmt.query(params![conversation, upto])?;
                while let Some(row) = rows.next()? {
                    affected.push(Self::run(row)?);
                }
            }
            for run in affected {
                let mut delete = self.conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
                for (_, id) in run.entries().take_while(|&(seq, _)| seq <= to_u64(upto)) {
                    removed += delete.execute([id])?;
                }
                self.conn.execute(
                    "DELETE FROM message_runs WHERE conversation = ?1 AND first_seq = ?2",
                    params![conversation, to_i64(run.first_seq)],
                )?;
                if let Some(kept) = run.after(to_u64(upto)) {
                    self.conn.execute(
                        "INSERT INTO message_runs (conversation, first_seq, ids) VALUES (?1, ?2, ?3)",
                        params![conversation, to_i64(kept.first_seq), kept.encode()],
                    )?;
                }
            }
            self.conn
                .execute("UPDATE conversations SET first_seq = ?2 + 1 WHERE id = ?1", params![conversation, upto])?;
        }
        self.mark_all_indexed()?;
        Ok(removed)
    }

    // ---- cursors

    /// Moves `account`'s cursor forward to `seq` (never backwards: acks may arrive from several clients), in a
    /// conversation it is still a member of.
    pub fn advance_cursor(&self, account: AccountId, conversation: ConvId, seq: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO cursors (account, conversation, seq)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM members WHERE conversation = ?2 AND account = ?1)
                 ON CONFLICT (account, conversation) DO UPDATE SET seq = max(seq, excluded.seq)",
            )?
            .execute(params![account.0, conversation, to_i64(seq)])?;
        Ok(())
    }

    pub fn cursor(&self, account: AccountId, conversation: ConvId) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM cursors WHERE account = ?1 AND conversation = ?2",
                params![account.0, conversation],
                |row| row.get(0),
            )
            .optional()?;
        Ok(seq.map(to_u64).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).expect("valid")
    }

    #[test]
    fn the_store_and_the_files_beside_it_are_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let mode = |suffix: &str| {
            let file = dir.path().join(format!("store.sqlite{suffix}"));
            std::fs::metadata(&file).expect("exists").permissions().mode() & 0o777
        };
        let db = Db::open(&path).expect("opens");
        db.begin().expect("begin");
        db.append(lobby(&db).id, &nick("ana"), MessageId([1; 16]), "secret", 1).expect("append");
        db.commit().expect("commit");
        assert_eq!([mode(""), mode("-wal"), mode("-shm")], [0o600; 3]);
        drop(db);
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("store.sqlite{suffix}"));
            if file.exists() {
                std::fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("loosens");
            }
        }
        let _again = Db::open(&path).expect("opens again");
        assert_eq!(mode(""), 0o600, "an older store is tightened");
        assert_eq!(mode("-shm"), 0o600);
    }

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(&dir.path().join("store.sqlite")).expect("opens");
        (dir, db)
    }

    fn lobby(db: &Db) -> ConvRow {
        db.conversation(&ConvKey::Room(RoomName::lobby())).expect("reads").expect("lobby exists")
    }

    #[test]
    fn appends_get_gap_free_seqs_and_retries_are_recognised() {
        let (_dir, db) = open();
        let conv = lobby(&db);
        db.begin().expect("begin");
        let first = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 10).expect("append");
        let second = db.append(conv.id, &nick("ana"), MessageId([2; 16]), "two", 11).expect("append");
        let retry = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 12).expect("append");
        db.commit().expect("commit");
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(retry, Appended { seq: 1, ts: 10, duplicate: true });
        let other_sender =
            db.append(conv.id, &nick("bob"), MessageId([1; 16]), "same id, other sender", 13).expect("append");
        assert_eq!(other_sender.seq, 3);
        let page = db.messages_after(&conv, 1, 10).expect("read");
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
        let older = db.messages_before(&conv, 3, 1).expect("read");
        assert_eq!(older.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["two"]);
    }

    #[test]
    fn a_rolled_back_append_leaves_no_gap() {
        let (_dir, db) = open();
        let conv = lobby(&db);
        db.begin().expect("begin");
        db.append(conv.id, &nick("ana"), MessageId([1; 16]), "lost", 1).expect("append");
        db.rollback();
        let appended = db.append(conv.id, &nick("ana"), MessageId([2; 16]), "kept", 2).expect("append");
        assert_eq!(appended.seq, 1);
    }

    #[test]
    fn a_commit_writes_the_counters_that_other_connections_read() {
        let (dir, db) = open();
        let conv = lobby(&db);
        db.begin().expect("begin");
        db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 1).expect("append");
        db.append(conv.id, &nick("ana"), MessageId([2; 16]), "two", 1).expect("append");
        assert_eq!(lobby(&db).last_seq, 2, "the writer sees its own transaction");
        let reader = Db::open_reader(&dir.path().join("store.sqlite")).expect("opens");
        assert_eq!(lobby(&reader).last_seq, 0, "nothing is visible before the commit");
        db.commit().expect("commit");
        assert_eq!(lobby(&reader).last_seq, 2);
        let reopened = Db::open(&dir.path().join("store.sqlite")).expect("reopens");
        assert_eq!(reopened.append(conv.id, &nick("bob"), MessageId([3; 16]), "three", 2).expect("append").seq, 3);
    }

    #[test]
    fn a_version_1_store_is_migrated_with_its_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).expect("opens");
            conn.execute_batch(
                "CREATE TABLE conversations (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                     last_seq INTEGER NOT NULL DEFAULT 0, first_seq INTEGER NOT NULL DEFAULT 1);
                 CREATE TABLE messages (conversation INTEGER NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,
                     client_id BLOB NOT NULL, ts INTEGER NOT NULL, text TEXT NOT NULL,
                     PRIMARY KEY (conversation, seq)) WITHOUT ROWID;
                 CREATE UNIQUE INDEX messages_by_sender_id ON messages (sender, client_id);
                 INSERT INTO conversations (id, key, last_seq) VALUES (1, '#lobby', 2);
                 INSERT INTO messages VALUES (1, 1, 'ana', x'01010101010101010101010101010101', 5, 'one');
                 INSERT INTO messages VALUES (1, 2, 'bob', x'02020202020202020202020202020202', 6, 'two');",
            )
            .expect("writes a version 1 store");
        }
        let db = Db::open(&path).expect("migrates");
        let conv = lobby(&db);
        let texts: Vec<String> = db.messages_after(&conv, 0, 10).expect("read").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["one", "two"]);
        let retry = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 9).expect("append");
        assert_eq!(retry, Appended { seq: 1, ts: 5, duplicate: true });
        assert_eq!(db.append(conv.id, &nick("ana"), MessageId([3; 16]), "three", 9).expect("append").seq, 3);
        drop(db);
        let again = Db::open(&path).expect("opens a migrated store");
        assert_eq!(again.messages_after(&lobby(&again), 0, 10).expect("read").len(), 3);
    }

    #[test]
    fn a_version_2_store_gets_its_runs_built() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).expect("opens");
            conn.execute_batch(PEOPLE_V3).expect("people, as version 2 kept them");
            conn.execute_batch(
                "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation INTEGER NOT NULL, seq INTEGER NOT NULL,
                     sender TEXT NOT NULL, client_id BLOB NOT NULL, ts INTEGER NOT NULL, text TEXT NOT NULL);
                 CREATE UNIQUE INDEX messages_by_seq ON messages (conversation, seq);
                 CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, sender);
                 INSERT INTO conversations (id, key, last_seq) VALUES (1, '#lobby', 100), (2, '#other', 50);
                 PRAGMA user_version = 2;",
            )
            .expect("writes a version 2 store");
            for n in 0..150i64 {
                let (conversation, seq) = if n % 3 == 2 { (2, n / 3 + 1) } else { (1, n - n / 3 + 1) };
                conn.execute(
                    "INSERT INTO messages (conversation, seq, sender, client_id, ts, text) VALUES (?1, ?2, 'ana', ?3, 5, ?4)",
                    params![conversation, seq, n.to_be_bytes().repeat(2), format!("{conversation}/{seq}")],
                )
                .expect("inserts");
            }
        }
        let db = Db::open(&path).expect("migrates");
        let has_old_index = db
            .conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'messages_by_seq'", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect("reads");
        assert_eq!(has_old_index, 0);
        let conv = lobby(&db);
        let texts: Vec<String> = db.messages_after(&conv, 95, 10).expect("read").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["1/96", "1/97", "1/98", "1/99", "1/100"]);
        let other =
            db.conversation(&ConvKey::Room(RoomName::parse("other").expect("valid"))).expect("reads").expect("exists");
        assert_eq!(
            db.messages_before(&other, 51, 2).expect("read").iter().map(|m| m.seq).collect::<Vec<_>>(),
            [49, 50]
        );
        let retry =
            db.append(conv.id, &nick("ana"), MessageId(0i64.to_be_bytes().repeat(2).try_into().expect("16")), "x", 9);
        assert_eq!(retry.expect("append"), Appended { seq: 1, ts: 5, duplicate: true });
        assert_eq!(db.append(conv.id, &nick("ana"), MessageId([9; 16]), "new", 9).expect("append").seq, 101);
    }

    /// A message as the model of the test below keeps it: its seq and its text.
    type Modelled = (u64, String);

    fn page(messages: Vec<StoredMessage>) -> Vec<Modelled> {
        messages.into_iter().map(|m| (m.seq, m.text)).collect()
    }

    /// Appends in groups to several conversations, with rollbacks, retention and reopening, across many batches
    /// of the index, and checks every kind of read against a plain list of what was committed.
    #[test]
    fn reads_agree_with_a_model_across_runs_the_tail_and_retention() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let mut db = Db::open(&path).expect("opens");
        let rooms: Vec<ConvRow> = ["lobby", "a", "b", "c"]
            .iter()
            .map(|name| db.ensure_conversation(&ConvKey::Room(RoomName::parse(name).expect("valid"))).expect("creates"))
            .collect();
        let mut model: Vec<Vec<Modelled>> = vec![Vec::new(); rooms.len()];
        let mut state = 0x2545_f491_u64;
        let mut random = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let mut next_id = 0u64;
        for round in 0..100 {
            db.begin().expect("begin");
            let mut staged: Vec<(usize, Modelled)> = Vec::new();
            for _ in 0..random(400) {
                let room = random([4, 2, 1][round % 3]) as usize;
                next_id += 1;
                let mut id = [0; 16];
                id[..8].copy_from_slice(&next_id.to_be_bytes());
                let text = format!("m{next_id}");
                let appended = db.append(rooms[room].id, &nick("ana"), MessageId(id), &text, 1).expect("append");
                staged.push((room, (appended.seq, text)));
            }
            if random(8) == 0 {
                db.rollback();
            } else {
                db.commit().expect("commit");
                for (room, message) in staged {
                    model[room].push(message);
                }
            }
            if random(10) == 0 {
                let keep = if random(4) == 0 { 0 } else { 50 + random(300) };
                db.prune(keep).expect("prune");
                for messages in &mut model {
                    let cut = messages.len().saturating_sub(keep as usize);
                    messages.drain(..cut);
                }
            }
            if random(6) == 0 {
                drop(db);
                db = Db::open(&path).expect("reopens");
            }
            let reader = Db::open_reader(&path).expect("opens a reader");
            for (room, messages) in model.iter().enumerate() {
                let conv = reader.conversation_by_id(rooms[room].id).expect("reads").expect("exists");
                let newest = conv.last_seq;
                assert_eq!(newest, messages.last().map_or(newest, |m| m.0), "last seq of room {room}");
                let first = messages.first().map_or(newest + 1, |m| m.0);
                assert_eq!(conv.first_seq, first, "first seq of room {room}");
                let after = random(newest + 2);
                let limit = 1 + random(300) as u32;
                let expected: Vec<Modelled> =
                    messages.iter().filter(|m| m.0 > after).take(limit as usize).cloned().collect();
                assert_eq!(
                    page(reader.messages_after(&conv, after, limit).expect("read")),
                    expected,
                    "room {room} after {after}"
                );
                assert_eq!(
                    page(db.messages_after(&conv, after, limit).expect("read")),
                    expected,
                    "the writer reads alike"
                );
                let before = random(newest + 2);
                let older: Vec<&Modelled> = messages.iter().filter(|m| m.0 < before).collect();
                let expected: Vec<Modelled> =
                    older[older.len().saturating_sub(limit as usize)..].iter().map(|m| (*m).clone()).collect();
                assert_eq!(
                    page(reader.messages_before(&conv, before, limit).expect("read")),
                    expected,
                    "room {room} before {before}"
                );
            }
        }
        assert!(next_id > 3 * UNINDEXED_MAX as u64, "the test crossed several batches of the index");
    }

    #[test]
    fn retention_moves_the_first_seq() {
        let (_dir, db) = open();
        let conv = lobby(&db);
        for i in 0..10u8 {
            db.append(conv.id, &nick("ana"), MessageId([i; 16]), "m", 1).expect("append");
        }
        assert_eq!(db.prune(4).expect("prune"), 6);
        let conv = lobby(&db);
        assert_eq!((conv.first_seq, conv.last_seq), (7, 10));
        assert_eq!(db.messages_after(&conv, 0, 100).expect("read").len(), 4);
        assert_eq!(db.prune(4).expect("prune again"), 0);
    }

    #[test]
    fn cursors_only_move_forward_and_membership_sets_the_start() {
        let (_dir, db) = open();
        let conv = lobby(&db);
        let ana = account(&db, "ana");
        assert!(db.add_member(conv.id, ana.id, 5).expect("add"));
        assert!(!db.add_member(conv.id, ana.id, 0).expect("add again"));
        assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 5);
        db.advance_cursor(ana.id, conv.id, 9).expect("advance");
        db.advance_cursor(ana.id, conv.id, 7).expect("stale ack");
        assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 9);
        assert_eq!(db.memberships_of(ana.id).expect("list"), vec![(9, lobby(&db))]);
        assert!(db.remove_member(conv.id, ana.id).expect("remove"));
        assert!(db.conversations_of(ana.id).expect("list").is_empty());
        db.advance_cursor(ana.id, conv.id, 12).expect("a late ack");
        assert_eq!(db.cursor(ana.id, conv.id).expect("cursor"), 0, "no cursor outside a membership");
        assert!(!db.add_member(conv.id, AccountId(999), 0).expect("add"), "no member without an account");
    }

    #[test]
    fn durability_sets_the_writers_sync_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let synchronous = |db: &Db| db.conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0));
        assert_eq!(synchronous(&Db::open(&path).expect("opens")).expect("reads"), 2, "FULL");
        assert_eq!(synchronous(&Db::open_with(&path, Durability::Normal).expect("opens")).expect("reads"), 1, "NORMAL");
    }

    /// Accounts, conversations and members as versions 1 to 3 kept them.
    const PEOPLE_V3: &str = "
        CREATE TABLE accounts (nick TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE conversations (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
            last_seq INTEGER NOT NULL DEFAULT 0, first_seq INTEGER NOT NULL DEFAULT 1);
        CREATE TABLE members (conversation INTEGER NOT NULL, nick TEXT NOT NULL,
            PRIMARY KEY (conversation, nick)) WITHOUT ROWID;
        CREATE INDEX members_by_nick ON members (nick, conversation);
        CREATE TABLE cursors (nick TEXT NOT NULL, conversation INTEGER NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (nick, conversation)) WITHOUT ROWID;";

    fn account(db: &Db, who: &str) -> Account {
        db.create_account(&nick(who), "hash", 1).expect("creates").expect("the nickname is free")
    }

    fn send(db: &Db, conv: ConvId, from: &Account, id: u8, text: &str) -> u64 {
        db.append(conv, &from.nick, MessageId([id; 16]), text, 1).expect("appends").seq
    }

    #[test]
    fn accounts_are_unique_and_ids_are_never_given_out_again() {
        let (_dir, db) = open();
        let first = account(&db, "ana");
        assert_eq!(db.create_account(&nick("ana"), "h2", 2).expect("create"), None, "taken");
        assert_eq!(db.credentials(&nick("ana")).expect("read").map(|c| c.password_hash).as_deref(), Some("hash"));
        assert!(db.set_password_hash(&nick("ana"), "h3").expect("set"));
        assert_eq!(db.accounts().expect("list").len(), 1);
        assert_eq!(db.remove_account(&nick("ana")).expect("remove").map(|r| r.account), Some(first.clone()));
        assert_eq!(db.credentials(&nick("ana")).expect("read"), None);
        assert_eq!(db.remove_account(&nick("ana")).expect("remove"), None);
        let second = account(&db, "ana");
        assert!(second.id > first.id, "a new account of the nickname is a new identity");
        let bob = account(&db, "bob");
        db.remove_account(&nick("bob")).expect("remove");
        drop(db);
        let db = Db::open(&_dir.path().join("store.sqlite")).expect("reopens");
        assert!(account(&db, "carol").id > bob.id, "not even the newest id comes back after a restart");
    }

    #[test]
    fn a_removed_accounts_direct_conversations_go_with_it_and_its_nickname_starts_anew() {
        let (_dir, db) = open();
        let (ana, bob) = (account(&db, "ana"), account(&db, "bob"));
        let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
        assert_eq!(db.open_direct(&bob, &ana).expect("opens"), Some(dm.clone()), "one conversation for both");
        for i in 1..=3 {
            send(&db, dm.id, &ana, i, "a secret");
        }
        let lobby_id = lobby(&db).id;
        db.add_member(lobby_id, ana.id, 0).expect("joins");
        db.add_member(lobby_id, bob.id, 0).expect("joins");
        send(&db, lobby_id, &ana, 9, "hello room");

        let removed = db.remove_account(&nick("ana")).expect("removes").expect("existed");
        assert_eq!(removed.deleted_directs, vec![DeletedDirect { conversation: dm.id, peer: bob.clone() }]);
        assert_eq!(db.conversation_by_id(dm.id).expect("reads"), None);
        assert_eq!(db.conversations_of(bob.id).expect("list"), vec![lobby(&db)], "bob keeps the room only");
        assert_eq!(db.members(lobby_id).expect("members"), vec![nick("bob")]);
        let room = db.messages_after(&lobby(&db), 0, 10).expect("reads");
        assert_eq!(room.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["hello room"], "room messages stay");
        assert_eq!(db.open_direct(&ana, &bob).expect("opens"), None, "not with a removed account");

        let stranger = account(&db, "ana");
        assert!(db.conversations_of(stranger.id).expect("list").is_empty(), "no past");
        let fresh = db.open_direct(&stranger, &bob).expect("opens").expect("both exist");
        assert_ne!(fresh.id, dm.id);
        assert_eq!((fresh.first_seq, fresh.last_seq), (1, 3), "seqs continue after the deleted conversation's");
        assert!(db.messages_after(&fresh, 0, 10).expect("reads").is_empty());
        assert_eq!(db.cursor(bob.id, fresh.id).expect("cursor"), 3);
        assert_eq!(send(&db, fresh.id, &stranger, 4, "hi, I am new"), 4);
        assert_eq!(db.messages_before(&fresh, 100, 10).expect("reads").len(), 1);
        assert_eq!(db.messages_after(&fresh, 0, 10).expect("reads").len(), 1, "the new message is found");
    }

    #[test]
    fn a_message_after_the_newest_ones_were_deleted_is_found() {
        let (_dir, db) = open();
        let (ana, bob) = (account(&db, "ana"), account(&db, "bob"));
        let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
        send(&db, dm.id, &ana, 1, "the newest message of the log");
        db.remove_account(&nick("ana")).expect("removes");
        let lobby = lobby(&db);
        send(&db, lobby.id, &bob, 2, "its row id is given out again");
        assert_eq!(db.messages_after(&lobby, 0, 10).expect("reads").len(), 1);
    }

    #[test]
    fn an_append_to_a_deleted_conversation_fails_alone() {
        let (_dir, db) = open();
        let (ana, bob) = (account(&db, "ana"), account(&db, "bob"));
        let dm = db.open_direct(&ana, &bob).expect("opens").expect("both exist");
        send(&db, dm.id, &bob, 1, "one");
        db.remove_account(&nick("ana")).expect("removes");
        db.begin().expect("begin");
        let late = db.append(dm.id, &bob.nick, MessageId([2; 16]), "too late", 1);
        assert!(matches!(late, Err(StoreError::NoConversation(id)) if id == dm.id));
        assert_eq!(db.append(lobby(&db).id, &bob.nick, MessageId([3; 16]), "fine", 1).expect("appends").seq, 1);
        db.commit().expect("the rest commits");
    }

    #[test]
    fn a_version_3_store_names_people_by_account_and_drops_direct_conversations_of_removed_accounts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).expect("opens");
            conn.execute_batch(PEOPLE_V3).expect("people, as version 3 kept them");
            conn.execute_batch(MESSAGES).expect("the log, as version 3 kept it");
            conn.execute_batch(
                "INSERT INTO accounts VALUES ('bob', 'hb', 10), ('ana', 'ha', 20), ('carol', 'hc', 500);
                 INSERT INTO conversations (id, key, last_seq) VALUES
                     (1, '#lobby', 1), (2, '@ana/bob', 2), (3, '@bob/carol', 1), (4, '@bob/dave', 1);
                 INSERT INTO members VALUES (1, 'ana'), (1, 'bob'), (1, 'carol'), (2, 'ana'), (2, 'bob'),
                     (3, 'bob'), (3, 'carol'), (4, 'bob');
                 INSERT INTO cursors VALUES ('ana', 1, 1), ('bob', 1, 0), ('ana', 2, 2), ('bob', 2, 1), ('bob', 3, 1),
                     ('carol', 3, 0);
                 INSERT INTO messages (conversation, seq, sender, client_id, ts, text) VALUES
                     (1, 1, 'ana', x'01010101010101010101010101010101', 30, 'hi all'),
                     (2, 1, 'ana', x'02020202020202020202020202020202', 40, 'hi bob'),
                     (2, 2, 'bob', x'03030303030303030303030303030303', 41, 'hi ana'),
                     (3, 1, 'bob', x'04040404040404040404040404040404', 50, 'for the first carol'),
                     (4, 1, 'bob', x'05050505050505050505050505050505', 60, 'for dave, removed');
                 PRAGMA user_version = 3;",
            )
            .expect("a version 3 store");
        }
        let db = Db::open(&path).expect("migrates");
        let bob = db.account(&nick("bob")).expect("reads").expect("kept");
        let ana = db.account(&nick("ana")).expect("reads").expect("kept");
        let carol = db.account(&nick("carol")).expect("reads").expect("kept");
        assert!(bob.id < ana.id && ana.id < carol.id, "ids in order of creation");
        assert_eq!(db.credentials(&nick("ana")).expect("reads").map(|c| c.password_hash).as_deref(), Some("ha"));
        let dm = db.conversation_by_id(ConvId(2)).expect("reads").expect("ana and bob's is kept");
        assert_eq!(dm.key, ConvKey::direct(ana.clone(), bob.clone()));
        assert_eq!(db.messages_after(&dm, 0, 10).expect("reads").len(), 2);
        assert_eq!(db.cursor(ana.id, ConvId(2)).expect("cursor"), 2);
        assert_eq!(db.cursor(bob.id, ConvId(2)).expect("cursor"), 1);
        assert_eq!(db.conversation_by_id(ConvId(3)).expect("reads"), None, "it began before this carol existed");
        assert_eq!(db.conversation_by_id(ConvId(4)).expect("reads"), None, "dave has no account");
        assert_eq!(
            db.conversations_of(bob.id).expect("list").iter().map(|r| r.id).collect::<Vec<_>>(),
            [ConvId(1), ConvId(2)]
        );
        assert_eq!(db.conversations_of(carol.id).expect("list").iter().map(|r| r.id).collect::<Vec<_>>(), [ConvId(1)]);
        assert_eq!(db.members(ConvId(1)).expect("members"), [nick("ana"), nick("bob"), nick("carol")]);
        let again = db.open_direct(&bob, &carol).expect("opens").expect("both exist");
        assert_eq!(again.last_seq, 1, "continues after the deleted one");
        assert!(again.id > ConvId(4), "the ids of deleted conversations are not given out again");
        let lobby_messages = db.messages_after(&lobby(&db), 0, 10).expect("reads");
        assert_eq!(lobby_messages.len(), 1);
        drop(db);
        Db::open(&path).expect("opens a migrated store");
    }

    #[test]
    fn removals_asked_of_a_server_are_answered_once_done() {
        let (_dir, db) = open();
        account(&db, "ana");
        let asked = db.request_removal(&nick("ana"), 5).expect("asks");
        let unknown = db.request_removal(&nick("zed"), 5).expect("asks");
        assert_eq!(db.removal_outcome(asked).expect("reads"), None);
        let pending = db.pending_removals().expect("reads");
        assert_eq!(
            pending.iter().map(|r| (r.id, r.nick.as_str())).collect::<Vec<_>>(),
            [(asked, "ana"), (unknown, "zed")]
        );
        db.finish_removal(asked, true, 6).expect("records");
        db.finish_removal(unknown, false, 6).expect("records");
        assert_eq!(db.removal_outcome(asked).expect("reads"), Some(true));
        assert_eq!(db.removal_outcome(unknown).expect("reads"), Some(false));
        assert!(db.pending_removals().expect("reads").is_empty());
    }
}
