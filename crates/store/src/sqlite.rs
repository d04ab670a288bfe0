//! The SQLite schema and every statement the server runs against it.
//!
//! One writer connection does all writes (the server groups many of them into one transaction, so many
//! messages share one sync); any number of reader connections read concurrently thanks to WAL mode.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use palomar_proto::{MessageId, MessageKind, Nick, Revision, Role, RoomListing, RoomName};
use rusqlite::{Connection, OptionalExtension, params};

use crate::keys::{Account, AccountId, ConvId, ConvKey};
use crate::records::{
    Appended, AuditEntry, ConvRow, Credentials, DeletedDirect, Durability, KIND_REACTION, KIND_REACTION_TAKEN_BACK,
    KINDS_BLANKED_WITH, NewMessage, RemovalRequest, Removed, RoomModeration, RoomSettings, RoomStanding, Sanction,
    SearchHit, SearchPage, SearchRequest, Standing, StoreError, StoredMessage, Suspension, kind_columns,
    kind_from_columns, revision_by, revision_column, revision_from_column, stored_role, stored_sanction,
};
use crate::runs::{self, Run};
use crate::{Result, Store};

pub mod backup;
mod copy;

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

/// The schema's version, kept in `PRAGMA user_version`; [`SqliteStore::open_with`] migrates older stores.
/// Version 8 changed no table: its log may hold replies and reactions (kinds 4 to 6), which an older Palomar
/// cannot read, so it refuses the store instead. Version 10 adds `away` and `read_markers` (created by [`SCHEMA`]).
const SCHEMA_VERSION: i64 = 10;

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
CREATE TABLE IF NOT EXISTS suspensions (
    account INTEGER PRIMARY KEY,
    until_ms INTEGER,
    reason TEXT NOT NULL,
    since_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operators (
    account INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS room_settings (
    conversation INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    invite_only INTEGER NOT NULL,
    moderated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_roles (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_bans (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    reason TEXT NOT NULL,
    by_actor TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_mutes (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    reason TEXT NOT NULL,
    by_actor TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_invites (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS write_probes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT OR IGNORE INTO write_probes (id, count) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS away (
    account INTEGER PRIMARY KEY,
    message TEXT NOT NULL,
    since_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS read_markers (
    conversation INTEGER NOT NULL,
    account INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (conversation, account)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS read_markers_by_account ON read_markers (account, conversation);
";

/// Accounts and conversations are `AUTOINCREMENT`, so an id is never given out again, even after its account
/// or conversation is deleted: a session that still holds one cannot reach another's.
/// `direct_seq_floors` remembers, per pair of nicknames, the last seq of a direct conversation deleted with an
/// account, so that a later conversation between accounts of the same nicknames continues after it: a client
/// that kept a cursor in the old one neither drops the new one's messages nor skips any (see
/// [`Store::open_direct`]). `account_removals` is how `palomar user remove` asks a running server to remove an
/// account (the server's writer must be the one to do it; see [`Store::request_removal`]). `write_probes` counts
/// [`Store::write_probe`]s: SQLite does not write a row that an update leaves as it was, so a probe must change
/// something, and this is the only row that may change without the chat's data changing.
///
/// Version 3 named members, cursors and direct conversations (`@a/b`) by nickname, so a removed account's
/// direct conversations went to whoever registered the nickname next; version 4 names them by account.
///
/// Version 5 adds `suspensions` and `audit_log` (created by [`SCHEMA`]): it is a version of its own so that an
/// older Palomar refuses the store rather than let suspended accounts in. Audit ids are never given out again.
///
/// Version 6 adds the server's `operators` and what moderators set in rooms: `room_settings` (a row only for a
/// room whose settings are not the defaults), `room_roles` (a row only for a role above member, named as
/// [`palomar_proto::Role::as_str`] writes it), `room_bans`, `room_mutes` and `room_invites`. A version of its own
/// too, so that an older Palomar refuses the store rather than let banned accounts back into their rooms.
///
/// Version 10 adds `away` (an account's away message, a row only while one is set) and `read_markers` (how far
/// a member has read a conversation, a row only while it is a member and once it marked something read; by
/// account too, for a login's own markers).
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
    text TEXT NOT NULL,
    kind INTEGER NOT NULL DEFAULT 0,
    of_seq INTEGER,
    revision INTEGER NOT NULL DEFAULT 0
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

/// Edits and deletions by the message they refer to, which a deletion blanks along with it. Only those rows are
/// indexed: the hot path, plain messages, writes no entry.
///
/// Version 7 added `kind`, `of_seq` and `revision` (see [`crate::records::kind_columns`]) and this index.
const MESSAGE_REFERENCES: &str = "
CREATE INDEX IF NOT EXISTS messages_by_reference ON messages (conversation, of_seq) WHERE of_seq IS NOT NULL;
";
const MIGRATE_6_TO_7: &str = "
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN of_seq INTEGER;
ALTER TABLE messages ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
";

/// The full-text index of what can be found (see [`Store::search`]): texts, actions and replies (kinds 0, 1 and 4)
/// not deleted (revision 2), by their current text. An FTS5 table on the log's own rows (`content = messages`), so
/// the text is not stored twice.
///
/// New messages are indexed in batches, not one by one: FTS5 writes a segment of its own for every transaction
/// that adds to it, which cost a commit of one message 30 µs more here (22 against 52 µs, `cargo bench -p
/// palomar-store`). So the messages after `message_search_state.indexed_through` wait, and are indexed by the
/// commit that finds [`SEARCH_BATCH`] of them waiting, or by [`Store::index_for_search`], which the server asks
/// for before it searches. An edit or a deletion of a message already indexed (they rewrite `text` and
/// `revision`), and retention's delete, are followed by triggers in their own transaction: such a table must be
/// told the text it indexed to take a row out, so each trigger checks the old row was indexed before it does.
/// A message not indexed yet is indexed with whatever text it has by then.
///
/// Words are what FTS5's `unicode61` tokenizer makes them: runs of letters and digits, lower-cased, accents
/// ignored. Version 9 added the table, filled from the log when a store is migrated.
const MESSAGE_SEARCH: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5(
    text, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS message_search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through INTEGER NOT NULL
);
INSERT OR IGNORE INTO message_search_state (id, indexed_through) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS message_search_delete AFTER DELETE ON messages
WHEN old.kind IN (0, 1, 4) AND old.revision <> 2
    AND old.id <= (SELECT indexed_through FROM message_search_state) BEGIN
    INSERT INTO message_search (message_search, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS message_search_update AFTER UPDATE OF text, revision ON messages
WHEN old.id <= (SELECT indexed_through FROM message_search_state) BEGIN
    INSERT INTO message_search (message_search, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.kind IN (0, 1, 4) AND old.revision <> 2;
    INSERT INTO message_search (rowid, text)
        SELECT new.id, new.text WHERE new.kind IN (0, 1, 4) AND new.revision <> 2;
END;
";

/// Messages waiting to be indexed for search that make a commit index them (see [`MESSAGE_SEARCH`]).
const SEARCH_BATCH: i64 = 256;

/// Most matches one page of a search looks at (see [`Store::search`]): 4 to 8 ms of reading here (`search/outsider`
/// in `cargo bench -p palomar-store`).
const SEARCH_LOOKS_AT: usize = 10_000;

/// A search position on this store: `r` and the row id the next page starts below.
fn search_position(id: i64) -> String {
    format!("r{id}")
}

fn parse_search_position(position: &str) -> Result<i64> {
    position
        .strip_prefix('r')
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| StoreError::UnknownSearchPosition(position.to_owned()))
}

/// The FTS5 query for `words`: each a phrase of its own, matched as a prefix, all of them. Words are made of
/// letters and digits only ([`palomar_proto::search_words`]); a quote is doubled all the same, as FTS5 asks.
fn fts_query(words: &[String]) -> String {
    words.iter().map(|word| format!("\"{}\"*", word.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// Most messages left out of `message_runs`. A read scans at most this many rows of the tail (plus one commit's
/// worth); a commit that finds more indexes them all.
pub(crate) const UNINDEXED_MAX: i64 = 4_096;

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

fn synchronous_pragma(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    }
}

/// One connection to the store file.
pub struct SqliteStore {
    conn: Connection,
    counters: RefCell<Counters>,
    /// Messages this connection appended since it last read how many wait to be indexed for search: that is read
    /// only once it may have reached [`SEARCH_BATCH`], not by every commit.
    appended_unsearched: Cell<i64>,
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

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`. Commits are synced to disk before they return.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed) the store at `path`, committing with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStore> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous_pragma(durability))?;
        let db = SqliteStore { conn, counters: RefCell::default(), appended_unsearched: Cell::new(0) };
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
        let has_search = has_table("message_search")?;
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
            // Asked of the table rather than told by the version: a version 1 log was just moved into a new table.
            let has_kinds =
                self.conn.prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'kind'")?.exists([])?;
            if !has_kinds {
                self.conn.execute_batch(MIGRATE_6_TO_7)?;
            }
            self.conn.execute_batch(MESSAGE_REFERENCES)?;
            self.conn.execute_batch(MESSAGE_SEARCH)?;
            if !has_search {
                tracing::info!("indexing the store's messages for search (schema version {SCHEMA_VERSION})");
                self.index_waiting_for_search(1)?;
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
    pub fn open_reader(path: &Path) -> Result<SqliteStore> {
        // A `SqliteStore` is used by one thread at a time, so SQLite's own lock around every call would only cost.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(SqliteStore { conn, counters: RefCell::default(), appended_unsearched: Cell::new(0) })
    }

    /// The suspensions in force at `now_ms`, of `account` or of everyone, by nickname.
    fn suspensions_where(&self, now_ms: u64, account: Option<AccountId>) -> Result<Vec<Suspension>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.nick, s.until_ms, s.reason, s.since_ms FROM suspensions s JOIN accounts a ON a.id = s.account
             WHERE (s.until_ms IS NULL OR s.until_ms > ?1) AND (?2 IS NULL OR s.account = ?2) ORDER BY a.nick",
        )?;
        let rows = stmt.query_map(params![to_i64(now_ms), account.map(|id| id.0)], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, nick, until, reason, since) = row?;
            Ok(Suspension {
                account: Account {
                    id: AccountId(id),
                    nick: Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                },
                until_ms: until.map(to_u64),
                reason,
                since_ms: to_u64(since),
            })
        })
        .collect()
    }

    /// Settings from the three columns from `first` on (topic, invite-only, moderated), all null when an outer
    /// join found no row: the defaults.
    fn settings_from(row: &rusqlite::Row<'_>, first: usize) -> Result<RoomSettings> {
        Ok(RoomSettings {
            topic: row.get::<_, Option<String>>(first)?.unwrap_or_default(),
            invite_only: row.get::<_, Option<bool>>(first + 1)?.unwrap_or_default(),
            moderated: row.get::<_, Option<bool>>(first + 2)?.unwrap_or_default(),
        })
    }

    /// A standing from the eight columns from `first` on, as the outer joins of [`Store::standing`] and
    /// [`Store::standings_of`] give them: the role, the mute's reason, author and time, the ban's, and whether
    /// invited.
    fn standing_from(row: &rusqlite::Row<'_>, first: usize) -> Result<Standing> {
        let sanction = |at: usize| -> Result<Option<Sanction>> {
            Ok(stored_sanction(row.get(at)?, row.get(at + 1)?, row.get(at + 2)?))
        };
        let role: Option<String> = row.get(first)?;
        Ok(Standing {
            role: role.as_deref().map(stored_role).transpose()?.unwrap_or_default(),
            muted: sanction(first + 1)?,
            banned: sanction(first + 4)?,
            invited: row.get(first + 7)?,
        })
    }

    /// The bans or the mutes (`table`) of `conversation`, by nickname.
    fn sanctions_in(&self, table: &str, conversation: ConvId) -> Result<Vec<(Nick, Sanction)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT a.nick, s.reason, s.by_actor, s.since_ms FROM {table} s JOIN accounts a ON a.id = s.account
             WHERE s.conversation = ?1 ORDER BY a.nick"
        ))?;
        let rows = stmt.query_map([conversation], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
        })?;
        rows.map(|row| {
            let (nick, reason, by, since) = row?;
            Ok((
                Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                Sanction { reason, by, since_ms: to_u64(since) },
            ))
        })
        .collect()
    }

    /// Writes `sanction` into `table` (`room_bans` or `room_mutes`) for `account` in `conversation`, replacing
    /// any earlier one; false when it was there already, the same.
    fn put_sanction(&self, table: &str, conversation: ConvId, account: AccountId, sanction: &Sanction) -> Result<bool> {
        let written = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO {table} (conversation, account, reason, by_actor, since_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (conversation, account) DO UPDATE SET
                     reason = excluded.reason, by_actor = excluded.by_actor, since_ms = excluded.since_ms
                 WHERE reason <> excluded.reason OR by_actor <> excluded.by_actor OR since_ms <> excluded.since_ms"
            ))?
            .execute(params![conversation, account.0, sanction.reason, sanction.by, to_i64(sanction.since_ms)])?;
        Ok(written == 1)
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

    /// The last message indexed for search, and the newest message.
    fn search_backlog(&self) -> Result<(i64, i64)> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT indexed_through, (SELECT ifnull(max(id), 0) FROM messages) FROM message_search_state",
            )?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?)
    }

    fn index_for_search_if_many(&self) -> Result<()> {
        if self.appended_unsearched.get() < SEARCH_BATCH {
            return Ok(());
        }
        self.index_waiting_for_search(SEARCH_BATCH)
    }

    /// Indexes for search every message after `message_search_state.indexed_through`, in the open transaction,
    /// when at least `waiting` of them (and at least one) wait; writes nothing otherwise.
    fn index_waiting_for_search(&self, waiting: i64) -> Result<()> {
        self.appended_unsearched.set(0);
        let (through, newest) = self.search_backlog()?;
        if newest - through < waiting.max(1) {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT INTO message_search (rowid, text)
                 SELECT id, text FROM messages WHERE id > ?1 AND id <= ?2 AND kind IN (0, 1, 4) AND revision <> 2",
            )?
            .execute(params![through, newest])?;
        self.conn.prepare_cached("UPDATE message_search_state SET indexed_through = ?1")?.execute([newest])?;
        Ok(())
    }

    /// After messages were deleted: had the newest gone, their row ids would be given out again, and must not
    /// count as indexed for search.
    fn forget_deleted_for_search(&self) -> Result<()> {
        self.conn.execute(
            "UPDATE message_search_state
             SET indexed_through = min(indexed_through, (SELECT ifnull(max(id), 0) FROM messages))",
            [],
        )?;
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

    fn raise_direct_floor(&self, nick_pair: &str, last_seq: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO direct_seq_floors (nicks, last_seq) VALUES (?1, ?2)
             ON CONFLICT (nicks) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            params![nick_pair, to_i64(last_seq)],
        )?;
        Ok(())
    }

    /// Deletes a conversation with its messages, index, members, cursors and what moderators set in it.
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
        for table in [
            "message_runs",
            "members",
            "cursors",
            "room_settings",
            "room_roles",
            "room_bans",
            "room_mutes",
            "room_invites",
            "read_markers",
        ] {
            self.conn.execute(&format!("DELETE FROM {table} WHERE conversation = ?1"), [conversation])?;
        }
        // As after retention: had the newest messages gone, their row ids would be given out again, and must not
        // count as indexed.
        self.mark_all_indexed()?;
        self.forget_deleted_for_search()?;
        self.conn.execute("DELETE FROM conversations WHERE id = ?1", [conversation])?;
        let mut counters = self.counters.borrow_mut();
        counters.committed.remove(&conversation);
        counters.staged.remove(&conversation);
        Ok(())
    }

    fn insert_message(&self, message: &NewMessage<'_>, now_ms: u64) -> Result<Appended> {
        let NewMessage { conversation, sender, id, text, kind } = *message;
        let seq = self.last_seq(conversation)? + 1;
        let (kind_code, of_seq) = kind_columns(kind);
        // Cached statements: this is the hot path of every message, and compiling SQL cost more than running it.
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO messages (conversation, seq, sender, client_id, ts, text, kind, of_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (client_id, sender) DO NOTHING",
            )?
            .execute(params![
                conversation,
                to_i64(seq),
                sender.as_str(),
                &id.0[..],
                to_i64(now_ms),
                text,
                kind_code,
                of_seq
            ])?;
        if inserted == 1 {
            self.counters.borrow_mut().staged.insert(conversation, seq);
            self.appended_unsearched.set(self.appended_unsearched.get() + 1);
            if let Some(of) = kind.refers_to() {
                self.revise(conversation, of, kind, text)?;
            }
            return Ok(Appended { seq, ts: now_ms, duplicate: false });
        }
        let (seq, ts) = self
            .conn
            .prepare_cached("SELECT seq, ts FROM messages WHERE client_id = ?1 AND sender = ?2")?
            .query_row(params![&id.0[..], sender.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
        Ok(Appended { seq: to_u64(seq), ts: to_u64(ts), duplicate: true })
    }

    /// What an entry referring to message `of` just stored does to it (see [`revision_by`]).
    fn revise(&self, conversation: ConvId, of: u64, kind: MessageKind, text: &str) -> Result<()> {
        let Some((text, revision)) = revision_by(kind, text) else { return Ok(()) };
        let Some(row) = self.row_of(conversation, of)? else { return Ok(()) };
        self.conn.prepare_cached("UPDATE messages SET text = ?2, revision = ?3 WHERE id = ?1")?.execute(params![
            row,
            text,
            revision_column(revision)
        ])?;
        if revision == Revision::Deleted {
            let [edit, reaction, taken_back] = KINDS_BLANKED_WITH;
            self.conn
                .prepare_cached(
                    "UPDATE messages SET text = '', revision = ?3
                     WHERE conversation = ?1 AND of_seq = ?2 AND kind IN (?4, ?5, ?6)",
                )?
                .execute(params![conversation, to_i64(of), revision_column(revision), edit, reaction, taken_back])?;
        }
        Ok(())
    }

    /// The row id of seq `seq` of `conversation`: from its run, or from the tail.
    fn row_of(&self, conversation: ConvId, seq: u64) -> Result<Option<i64>> {
        let run = self
            .conn
            .prepare_cached(
                "SELECT first_seq, ids FROM message_runs WHERE conversation = ?1 AND first_seq <= ?2
                 ORDER BY first_seq DESC LIMIT 1",
            )?
            .query_row(params![conversation, to_i64(seq)], |row| Ok(Self::run(row)))
            .optional()?
            .transpose()?;
        if let Some(id) = run.and_then(|run| run.entries().find(|&(at, _)| at == seq).map(|(_, id)| id)) {
            return Ok(Some(id));
        }
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM messages WHERE id > ?1 AND conversation = ?2 AND seq = ?3")?
            .query_row(params![self.indexed_through()?, conversation, to_i64(seq)], |row| row.get(0))
            .optional()?)
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
            kind: kind_from_columns(row.get(5)?, row.get(6)?)?,
            revision: revision_from_column(row.get(7)?)?,
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
                "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages WHERE id = ?1",
        )?;
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
        self.forget_deleted_for_search()?;
        Ok(removed)
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<()> {
        self.counters.borrow_mut().staged.clear();
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&self) -> Result<()> {
        if !self.counters.borrow().staged.is_empty() {
            self.write_counters()?;
            self.index_tail_if_long()?;
            self.index_for_search_if_many()?;
        }
        self.conn.execute_batch("COMMIT")?;
        let mut counters = self.counters.borrow_mut();
        let staged = std::mem::take(&mut counters.staged);
        counters.committed.extend(staged);
        Ok(())
    }

    fn rollback(&self) {
        self.counters.borrow_mut().staged.clear();
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    // ---- accounts

    fn credentials(&self, nick: &Nick) -> Result<Option<Credentials>> {
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

    fn create_account(&self, nick: &Nick, password_hash: &str, now_ms: u64) -> Result<Option<Account>> {
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO accounts (nick, password_hash, created_ms) VALUES (?1, ?2, ?3)",
            params![nick.as_str(), password_hash, to_i64(now_ms)],
        )?;
        Ok((inserted == 1).then(|| Account { id: AccountId(self.conn.last_insert_rowid()), nick: nick.clone() }))
    }

    fn set_password_hash(&self, nick: &Nick, password_hash: &str) -> Result<bool> {
        let changed = self
            .conn
            .execute("UPDATE accounts SET password_hash = ?2 WHERE nick = ?1", params![nick.as_str(), password_hash])?;
        Ok(changed == 1)
    }

    fn remove_account(&self, nick: &Nick) -> Result<Option<Removed>> {
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
            for table in [
                "members",
                "cursors",
                "suspensions",
                "operators",
                "room_roles",
                "room_bans",
                "room_mutes",
                "room_invites",
                "read_markers",
                "away",
            ] {
                self.conn.execute(&format!("DELETE FROM {table} WHERE account = ?1"), [id])?;
            }
            self.conn.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
            Ok(Some(Removed { account, deleted_directs }))
        })
    }

    fn accounts(&self) -> Result<Vec<(Nick, u64)>> {
        let mut stmt = self.conn.prepare("SELECT nick, created_ms FROM accounts ORDER BY nick")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (nick, created) = row?;
            Ok((Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, to_u64(created)))
        })
        .collect()
    }

    // ---- suspensions and the audit log

    fn account_created_ms(&self, account: AccountId) -> Result<Option<u64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT created_ms FROM accounts WHERE id = ?1")?
            .query_row([account.0], |row| row.get::<_, i64>(0))
            .optional()?
            .map(to_u64))
    }

    fn suspend(&self, nick: &Nick, until_ms: Option<u64>, reason: &str, now_ms: u64) -> Result<Option<Account>> {
        self.in_transaction(|| {
            let Some(account) = self.account(nick)? else { return Ok(None) };
            self.conn.execute(
                "INSERT INTO suspensions (account, until_ms, reason, since_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account) DO UPDATE SET until_ms = ?2, reason = ?3, since_ms = ?4",
                params![account.id.0, until_ms.map(to_i64), reason, to_i64(now_ms)],
            )?;
            Ok(Some(account))
        })
    }

    fn unsuspend(&self, nick: &Nick) -> Result<bool> {
        let lifted = self.conn.execute(
            "DELETE FROM suspensions WHERE account = (SELECT id FROM accounts WHERE nick = ?1)",
            [nick.as_str()],
        )?;
        Ok(lifted == 1)
    }

    fn suspensions(&self, now_ms: u64) -> Result<Vec<Suspension>> {
        self.suspensions_where(now_ms, None)
    }

    fn suspension_of(&self, account: AccountId, now_ms: u64) -> Result<Option<Suspension>> {
        Ok(self.suspensions_where(now_ms, Some(account))?.pop())
    }

    fn record_audit(&self, at_ms: u64, actor: &str, action: &str, target: &str, detail: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO audit_log (at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![to_i64(at_ms), actor, action, target, detail],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_ms, actor, action, target, detail FROM
                 (SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map([limit], audit_entry)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_entries_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], audit_entry)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id = ?1")?;
        Ok(stmt.query_row([id], audit_entry).optional()?)
    }

    // ---- roles and room moderation

    fn set_operator(&self, nick: &Nick, operator: bool) -> Result<Option<Account>> {
        self.in_transaction(|| {
            let Some(account) = self.account(nick)? else { return Ok(None) };
            let sql = if operator {
                "INSERT OR IGNORE INTO operators (account) VALUES (?1)"
            } else {
                "DELETE FROM operators WHERE account = ?1"
            };
            self.conn.execute(sql, [account.id.0])?;
            Ok(Some(account))
        })
    }

    fn is_operator(&self, account: AccountId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM operators WHERE account = ?1")?
            .query_row([account.0], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn operators(&self) -> Result<Vec<Nick>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT a.nick FROM operators o JOIN accounts a ON a.id = o.account ORDER BY a.nick")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|nick| Nick::parse(&nick?).map_err(|e| StoreError::Corrupt(e.to_string()))).collect()
    }

    fn room_settings(&self, conversation: ConvId) -> Result<RoomSettings> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT topic, invite_only, moderated FROM room_settings WHERE conversation = ?1")?;
        let mut rows = stmt.query([conversation])?;
        match rows.next()? {
            Some(row) => Self::settings_from(row, 0),
            None => Ok(RoomSettings::default()),
        }
    }

    fn set_room_settings(&self, conversation: ConvId, settings: &RoomSettings) -> Result<()> {
        // Only settings that are not the defaults have a row, so that a login's one query finds the rooms to tell.
        if *settings == RoomSettings::default() {
            self.conn.execute("DELETE FROM room_settings WHERE conversation = ?1", [conversation])?;
        } else {
            self.conn.execute(
                "INSERT INTO room_settings (conversation, topic, invite_only, moderated) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (conversation) DO UPDATE SET
                     topic = excluded.topic, invite_only = excluded.invite_only, moderated = excluded.moderated",
                params![conversation, settings.topic, settings.invite_only, settings.moderated],
            )?;
        }
        Ok(())
    }

    fn standing(&self, conversation: ConvId, account: AccountId) -> Result<Standing> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.role, u.reason, u.by_actor, u.since_ms, b.reason, b.by_actor, b.since_ms,
                    i.account IS NOT NULL
             FROM (SELECT ?1 AS conversation, ?2 AS account) k
             LEFT JOIN room_roles r ON r.conversation = k.conversation AND r.account = k.account
             LEFT JOIN room_mutes u ON u.conversation = k.conversation AND u.account = k.account
             LEFT JOIN room_bans b ON b.conversation = k.conversation AND b.account = k.account
             LEFT JOIN room_invites i ON i.conversation = k.conversation AND i.account = k.account",
        )?;
        let mut rows = stmt.query(params![conversation, account.0])?;
        let row = rows.next()?.ok_or_else(|| StoreError::Corrupt("a standing query returned no row".into()))?;
        Self::standing_from(row, 0)
    }

    fn set_role(&self, conversation: ConvId, account: AccountId, role: Role) -> Result<()> {
        if role == Role::Member {
            self.conn.execute(
                "DELETE FROM room_roles WHERE conversation = ?1 AND account = ?2",
                params![conversation, account.0],
            )?;
        } else {
            self.conn.execute(
                "INSERT INTO room_roles (conversation, account, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT (conversation, account) DO UPDATE SET role = excluded.role",
                params![conversation, account.0, role.as_str()],
            )?;
        }
        Ok(())
    }

    fn set_muted(&self, conversation: ConvId, account: AccountId, mute: Option<&Sanction>) -> Result<bool> {
        match mute {
            Some(mute) => self.put_sanction("room_mutes", conversation, account, mute),
            None => {
                let lifted = self.conn.execute(
                    "DELETE FROM room_mutes WHERE conversation = ?1 AND account = ?2",
                    params![conversation, account.0],
                )?;
                Ok(lifted == 1)
            }
        }
    }

    fn set_banned(&self, conversation: ConvId, account: AccountId, ban: Option<&Sanction>) -> Result<bool> {
        let Some(ban) = ban else {
            let lifted = self.conn.execute(
                "DELETE FROM room_bans WHERE conversation = ?1 AND account = ?2",
                params![conversation, account.0],
            )?;
            return Ok(lifted == 1);
        };
        self.in_transaction(|| {
            let mut changed = self.put_sanction("room_bans", conversation, account, ban)?;
            changed |= self.remove_member(conversation, account)?;
            for table in ["room_roles", "room_invites"] {
                changed |= self.conn.execute(
                    &format!("DELETE FROM {table} WHERE conversation = ?1 AND account = ?2"),
                    params![conversation, account.0],
                )? > 0;
            }
            Ok(changed)
        })
    }

    fn set_invited(&self, conversation: ConvId, account: AccountId, invited: bool) -> Result<()> {
        let sql = if invited {
            "INSERT OR IGNORE INTO room_invites (conversation, account) VALUES (?1, ?2)"
        } else {
            "DELETE FROM room_invites WHERE conversation = ?1 AND account = ?2"
        };
        self.conn.execute(sql, params![conversation, account.0])?;
        Ok(())
    }

    fn standings_of(&self, account: AccountId) -> Result<Vec<RoomStanding>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT k.conversation, s.topic, s.invite_only, s.moderated,
                    r.role, u.reason, u.by_actor, u.since_ms, b.reason, b.by_actor, b.since_ms,
                    i.account IS NOT NULL
             FROM members k
             LEFT JOIN room_settings s ON s.conversation = k.conversation
             LEFT JOIN room_roles r ON r.conversation = k.conversation AND r.account = k.account
             LEFT JOIN room_mutes u ON u.conversation = k.conversation AND u.account = k.account
             LEFT JOIN room_bans b ON b.conversation = k.conversation AND b.account = k.account
             LEFT JOIN room_invites i ON i.conversation = k.conversation AND i.account = k.account
             WHERE k.account = ?1 AND (s.conversation IS NOT NULL OR r.account IS NOT NULL OR u.account IS NOT NULL
                 OR b.account IS NOT NULL OR i.account IS NOT NULL)
             ORDER BY k.conversation",
        )?;
        let mut rows = stmt.query([account.0])?;
        let mut standings = Vec::new();
        while let Some(row) = rows.next()? {
            standings.push(RoomStanding {
                conversation: row.get(0)?,
                settings: Self::settings_from(row, 1)?,
                standing: Self::standing_from(row, 4)?,
            });
        }
        Ok(standings)
    }

    fn room_moderation(&self, conversation: ConvId) -> Result<RoomModeration> {
        self.in_one_snapshot(|| {
            let roles = {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT a.nick, r.role FROM room_roles r JOIN accounts a ON a.id = r.account
                     WHERE r.conversation = ?1 ORDER BY a.nick",
                )?;
                let rows =
                    stmt.query_map([conversation], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
                rows.map(|row| {
                    let (nick, role) = row?;
                    Ok((Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, stored_role(&role)?))
                })
                .collect::<Result<_>>()?
            };
            let invited = {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT a.nick FROM room_invites i JOIN accounts a ON a.id = i.account
                     WHERE i.conversation = ?1 ORDER BY a.nick",
                )?;
                let rows = stmt.query_map([conversation], |row| row.get::<_, String>(0))?;
                rows.map(|nick| Nick::parse(&nick?).map_err(|e| StoreError::Corrupt(e.to_string())))
                    .collect::<Result<_>>()?
            };
            Ok(RoomModeration {
                settings: self.room_settings(conversation)?,
                roles,
                bans: self.sanctions_in("room_bans", conversation)?,
                mutes: self.sanctions_in("room_mutes", conversation)?,
                invited,
            })
        })
    }

    fn room_listing(
        &self,
        viewer: AccountId,
        every: bool,
        after: Option<&RoomName>,
        limit: u32,
    ) -> Result<Vec<RoomListing>> {
        // A room's key is `#` and its name, and every direct conversation's starts with `@`: the rooms after
        // `after` are the keys between `#after` and `$`, a range of the keys' index.
        let after = after.map_or_else(|| "#".to_owned(), |room| ConvKey::Room(room.clone()).to_column());
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.key, (SELECT COUNT(*) FROM members m WHERE m.conversation = c.id),
                    COALESCE(s.topic, ''), COALESCE(s.invite_only, 0)
             FROM conversations c LEFT JOIN room_settings s ON s.conversation = c.id
             WHERE c.key > ?1 AND c.key < '$'
               AND (?2 OR COALESCE(s.invite_only, 0) = 0
                    OR EXISTS (SELECT 1 FROM members v WHERE v.conversation = c.id AND v.account = ?3))
             ORDER BY c.key LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![after, every, viewer.0, limit], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, bool>(3)?))
        })?;
        rows.map(|row| {
            let (key, members, topic, invite_only) = row?;
            crate::records::listed_room(&key, members, topic, invite_only)
        })
        .collect()
    }

    // ---- removals asked of a running server

    fn request_removal(&self, nick: &Nick, now_ms: u64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO account_removals (nick, requested_ms) VALUES (?1, ?2)",
            params![nick.as_str(), to_i64(now_ms)],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn pending_removals(&self) -> Result<Vec<RemovalRequest>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id, nick FROM account_removals WHERE done_ms IS NULL ORDER BY id")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, nick) = row?;
            Ok(RemovalRequest { id, nick: Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))? })
        })
        .collect()
    }

    fn finish_removal(&self, id: i64, removed: bool, now_ms: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE account_removals SET done_ms = ?2, removed = ?3 WHERE id = ?1 AND done_ms IS NULL",
            params![id, to_i64(now_ms), removed],
        )?;
        Ok(())
    }

    fn removal_outcome(&self, id: i64) -> Result<Option<bool>> {
        Ok(self
            .conn
            .query_row("SELECT done_ms, removed FROM account_removals WHERE id = ?1", [id], |row| {
                Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<bool>>(1)?))
            })
            .optional()?
            .and_then(|(done, removed)| done.map(|_| removed.unwrap_or(false))))
    }

    fn conversation(&self, key: &ConvKey) -> Result<Option<ConvRow>> {
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

    fn conversation_by_id(&self, id: ConvId) -> Result<Option<ConvRow>> {
        let raw = self
            .conn
            .query_row("SELECT id, key, last_seq, first_seq FROM conversations WHERE id = ?1", [id], Self::conv_row)
            .optional()?;
        raw.map(|raw| self.to_conv(raw)).transpose()
    }

    fn ensure_conversation(&self, key: &ConvKey) -> Result<ConvRow> {
        self.conn.execute("INSERT OR IGNORE INTO conversations (key) VALUES (?1)", [key.to_column()])?;
        self.conversation(key)?.ok_or_else(|| StoreError::Corrupt("conversation vanished after insert".into()))
    }

    fn open_direct(&self, a: &Account, b: &Account) -> Result<Option<ConvRow>> {
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

    fn memberships_of(&self, account: AccountId) -> Result<Vec<(u64, ConvRow)>> {
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

    fn is_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM members WHERE conversation = ?1 AND account = ?2")?
            .query_row(params![conversation, account.0], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn room_count(&self, account: AccountId) -> Result<u64> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM members m JOIN conversations c ON c.id = m.conversation
             WHERE m.account = ?1 AND c.key LIKE '#%'",
            [account.0],
            |row| row.get(0),
        )?;
        Ok(to_u64(count))
    }

    fn all_conversations(&self) -> Result<Vec<ConvRow>> {
        let mut stmt = self.conn.prepare("SELECT id, key, last_seq, first_seq FROM conversations ORDER BY id")?;
        let rows = stmt.query_map([], Self::conv_row)?;
        rows.map(|raw| self.to_conv(raw?)).collect()
    }

    fn members(&self, conversation: ConvId) -> Result<Vec<Nick>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.nick FROM members m JOIN accounts a ON a.id = m.account WHERE m.conversation = ?1 ORDER BY a.nick",
        )?;
        let rows = stmt.query_map([conversation], |row| row.get::<_, String>(0))?;
        rows.map(|nick| Nick::parse(&nick?).map_err(|e| StoreError::Corrupt(e.to_string()))).collect()
    }

    fn add_member(&self, conversation: ConvId, account: AccountId, cursor: u64) -> Result<bool> {
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

    fn remove_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        let removed = self.conn.execute(
            "DELETE FROM members WHERE conversation = ?1 AND account = ?2",
            params![conversation, account.0],
        )?;
        for table in ["cursors", "read_markers"] {
            self.conn.execute(
                &format!("DELETE FROM {table} WHERE conversation = ?1 AND account = ?2"),
                params![conversation, account.0],
            )?;
        }
        Ok(removed == 1)
    }

    // ---- the logs

    fn append_message(&self, message: &NewMessage<'_>, now_ms: u64) -> Result<Appended> {
        self.in_transaction(|| self.insert_message(message, now_ms))
    }

    fn sent_before(&self, sender: &Nick, id: MessageId) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached("SELECT 1 FROM messages WHERE client_id = ?1 AND sender = ?2")?;
        Ok(stmt.exists(params![&id.0[..], sender.as_str()])?)
    }

    fn has_reacted(
        &self,
        conversation: ConvId,
        of: u64,
        (sender, since_ms): (&Nick, u64),
        emoji: &str,
    ) -> Result<bool> {
        let latest: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT kind FROM messages
                 WHERE conversation = ?1 AND of_seq = ?2 AND kind IN (?3, ?4) AND sender = ?5 AND ts >= ?6 AND text = ?7
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(
                params![
                    conversation,
                    to_i64(of),
                    KIND_REACTION,
                    KIND_REACTION_TAKEN_BACK,
                    sender.as_str(),
                    to_i64(since_ms),
                    emoji
                ],
                |row| row.get(0),
            )
            .optional()?;
        Ok(latest == Some(KIND_REACTION))
    }

    // Seqs grow with row ids within a conversation, so all of its messages in runs come before those of its tail.

    fn messages_after(&self, conv: &ConvRow, after: u64, limit: u32) -> Result<Vec<StoredMessage>> {
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
                    "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages
                     WHERE id >= ?1 AND conversation = ?2 AND seq > ?3 ORDER BY id LIMIT ?4",
                    start,
                    after,
                    limit - page.len(),
                )?);
            }
            Ok(page)
        })
    }

    fn messages_before(&self, conv: &ConvRow, before: u64, limit: u32) -> Result<Vec<StoredMessage>> {
        let limit = limit as usize;
        self.in_one_snapshot(|| {
            let mut page = self.select_messages(
                conv,
                "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages
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

    fn search(&self, account: AccountId, search: &SearchRequest<'_>) -> Result<SearchPage> {
        let before = search.before.map(parse_search_position).transpose()?.unwrap_or(i64::MAX);
        let limit = usize::try_from(search.limit).unwrap_or(usize::MAX);
        // FTS5 hands out matches in row id order, newest first here, so a page ends where its limit does. Matches
        // in conversations the account is not in are looked at and left out; at most SEARCH_LOOKS_AT of them
        // per page, so that a common word in other people's rooms costs one page a bounded read, and the next
        // page goes on from there.
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.seq, m.sender, m.client_id, m.ts, m.text, m.kind, m.of_seq, m.revision, c.key, m.id,
                 b.account IS NOT NULL
             FROM message_search s
             JOIN messages m ON m.id = s.rowid
             LEFT JOIN members b ON b.conversation = m.conversation AND b.account = ?2
             JOIN conversations c ON c.id = m.conversation
             WHERE message_search MATCH ?1 AND s.rowid < ?3 AND (?4 IS NULL OR m.conversation = ?4)
             ORDER BY s.rowid DESC",
        )?;
        let mut rows = stmt.query(params![fts_query(search.words), account.0, before, search.within])?;
        let mut page = SearchPage::default();
        let mut looked_at = 0;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(9)?;
            if page.hits.len() == limit {
                page.next = page.hits.last().map(|hit| hit.position.clone());
                break;
            }
            if looked_at == SEARCH_LOOKS_AT {
                page.next = Some(search_position(id + 1));
                break;
            }
            looked_at += 1;
            if !row.get::<_, bool>(10)? {
                continue;
            }
            let key: String = row.get(8)?;
            let key = ConvKey::from_column(&key).ok_or_else(|| StoreError::Corrupt(format!("conversation {key:?}")))?;
            let message = Self::stored_message(&key, row)?;
            page.hits.push(SearchHit { message, position: search_position(id) });
        }
        Ok(page)
    }

    fn index_for_search(&self) -> Result<()> {
        self.in_transaction(|| self.index_waiting_for_search(1))
    }

    fn prune(&self, keep: u64) -> Result<usize> {
        self.in_transaction(|| self.remove_oldest(keep))
    }

    // ---- cursors

    fn advance_cursor(&self, account: AccountId, conversation: ConvId, seq: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO cursors (account, conversation, seq)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM members WHERE conversation = ?2 AND account = ?1)
                 ON CONFLICT (account, conversation) DO UPDATE SET seq = max(seq, excluded.seq)",
            )?
            .execute(params![account.0, conversation, to_i64(seq)])?;
        Ok(())
    }

    fn cursor(&self, account: AccountId, conversation: ConvId) -> Result<u64> {
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

    // ---- who is there

    fn set_away(&self, account: AccountId, message: Option<&str>, now_ms: u64) -> Result<()> {
        match message {
            Some(message) => self.conn.execute(
                "INSERT INTO away (account, message, since_ms) SELECT id, ?2, ?3 FROM accounts WHERE id = ?1
                 ON CONFLICT (account) DO UPDATE SET message = excluded.message, since_ms = excluded.since_ms",
                params![account.0, message, to_i64(now_ms)],
            )?,
            None => self.conn.execute("DELETE FROM away WHERE account = ?1", [account.0])?,
        };
        Ok(())
    }

    fn away_of(&self, account: AccountId) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT message FROM away WHERE account = ?1")?
            .query_row([account.0], |row| row.get(0))
            .optional()?)
    }

    fn away_in(&self, conversation: ConvId) -> Result<Vec<(Nick, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.nick, w.message FROM members m JOIN away w ON w.account = m.account
             JOIN accounts a ON a.id = m.account WHERE m.conversation = ?1 ORDER BY a.nick",
        )?;
        let rows = stmt.query_map([conversation], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (nick, message) = row?;
            Ok((Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, message))
        })
        .collect()
    }

    fn advance_read_markers(&self, markers: &[(AccountId, ConvId, u64)]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO read_markers (conversation, account, seq)
                 SELECT ?2, ?1, ?3 WHERE EXISTS (SELECT 1 FROM members WHERE conversation = ?2 AND account = ?1)
             ON CONFLICT (conversation, account) DO UPDATE SET seq = max(seq, excluded.seq)",
        )?;
        for &(account, conversation, seq) in markers {
            stmt.execute(params![account.0, conversation, to_i64(seq)])?;
        }
        Ok(())
    }

    fn read_marker(&self, account: AccountId, conversation: ConvId) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM read_markers WHERE conversation = ?1 AND account = ?2")?
            .query_row(params![conversation, account.0], |row| row.get(0))
            .optional()?;
        Ok(seq.map(to_u64).unwrap_or(0))
    }

    fn read_markers_in(&self, conversation: ConvId) -> Result<Vec<(Nick, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.nick, r.seq FROM read_markers r JOIN accounts a ON a.id = r.account
             WHERE r.conversation = ?1 AND r.seq > 0 ORDER BY a.nick",
        )?;
        let rows = stmt.query_map([conversation], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (nick, seq) = row?;
            Ok((Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, to_u64(seq)))
        })
        .collect()
    }

    fn read_markers_of(&self, account: AccountId) -> Result<Vec<(ConvId, Nick, u64)>> {
        // Its own markers, and the other member's in its direct conversations (keys of those start with `@`).
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.conversation, a.nick, r.seq FROM read_markers r JOIN accounts a ON a.id = r.account
             WHERE r.seq > 0 AND (r.account = ?1 OR r.conversation IN (
                 SELECT m.conversation FROM members m JOIN conversations c ON c.id = m.conversation
                 WHERE m.account = ?1 AND c.key LIKE '@%'))
             ORDER BY r.conversation, a.nick",
        )?;
        let rows = stmt.query_map([account.0], |row| {
            Ok((row.get::<_, ConvId>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })?;
        rows.map(|row| {
            let (conversation, nick, seq) = row?;
            Ok((conversation, Nick::parse(&nick).map_err(|e| StoreError::Corrupt(e.to_string()))?, to_u64(seq)))
        })
        .collect()
    }

    fn write_probe(&self) -> Result<()> {
        self.conn.execute("UPDATE write_probes SET count = count + 1 WHERE id = 1", [])?;
        Ok(())
    }
}

/// An audit log entry from a row of `id, at_ms, actor, action, target, detail`.
fn audit_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        at_ms: to_u64(row.get(1)?),
        actor: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        detail: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{lobby, nick};

    #[test]
    fn the_store_and_the_files_beside_it_are_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let mode = |suffix: &str| {
            let file = dir.path().join(format!("store.sqlite{suffix}"));
            std::fs::metadata(&file).expect("exists").permissions().mode() & 0o777
        };
        let db = SqliteStore::open(&path).expect("opens");
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
        let _again = SqliteStore::open(&path).expect("opens again");
        assert_eq!(mode(""), 0o600, "an older store is tightened");
        assert_eq!(mode("-shm"), 0o600);
    }

    /// A version 6 store's messages become texts as they were sent, and can be edited.
    /// Takes out what version 9 added, for a test that makes an older store.
    const WITHOUT_SEARCH: &str = "
        DROP TRIGGER message_search_delete;
        DROP TRIGGER message_search_update;
        DROP TABLE message_search;
        DROP TABLE message_search_state;
    ";

    #[test]
    fn a_version_6_store_gets_kinds_of_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        {
            let db = SqliteStore::open(&path).expect("opens");
            db.append(lobby(&db).id, &nick("ana"), MessageId([1; 16]), "helo", 1).expect("append");
            db.conn
                .execute_batch(
                    &(WITHOUT_SEARCH.to_owned()
                        + "DROP INDEX messages_by_reference;
                     ALTER TABLE messages DROP COLUMN kind;
                     ALTER TABLE messages DROP COLUMN of_seq;
                     ALTER TABLE messages DROP COLUMN revision;
                     PRAGMA user_version = 6;"),
                )
                .expect("makes it a version 6 store");
        }
        let db = SqliteStore::open(&path).expect("migrates");
        let conv = lobby(&db);
        let old = db.message_at(&conv, 1).expect("reads").expect("kept");
        assert_eq!((old.kind, old.revision, old.text.as_str()), (MessageKind::Text, Revision::Original, "helo"));
        let edit = NewMessage {
            conversation: conv.id,
            sender: &nick("ana"),
            id: MessageId([2; 16]),
            text: "hello",
            kind: MessageKind::Edit { of: 1 },
        };
        db.append_message(&edit, 2).expect("edits");
        let edited = db.message_at(&lobby(&db), 1).expect("reads").expect("kept");
        assert_eq!((edited.revision, edited.text.as_str()), (Revision::Edited, "hello"));
    }

    #[test]
    fn a_version_8_store_is_indexed_for_search_when_opened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let ana = {
            let db = SqliteStore::open(&path).expect("opens");
            let ana = db.create_account(&nick("ana"), "hash", 1).expect("creates").expect("free");
            let room = lobby(&db).id;
            db.add_member(room, ana.id, 0).expect("joins");
            let post = |id: u8, kind, text| NewMessage {
                conversation: room,
                sender: &ana.nick,
                id: MessageId([id; 16]),
                text,
                kind,
            };
            db.append_message(&post(1, MessageKind::Text, "the old recipe"), 1).expect("appends");
            db.append_message(&post(2, MessageKind::Text, "a recipe"), 1).expect("appends");
            db.append_message(&post(3, MessageKind::Edit { of: 2 }, "a better recipe"), 1).expect("edits");
            db.append_message(&post(4, MessageKind::Text, "a secret recipe"), 1).expect("appends");
            db.append_message(&post(5, MessageKind::Deletion { of: 4 }, ""), 1).expect("deletes");
            // The log as version 8 left it, without the index.
            db.conn
                .execute_batch(&(WITHOUT_SEARCH.to_owned() + "PRAGMA user_version = 8;"))
                .expect("makes it a version 8 store");
            ana
        };
        let db = SqliteStore::open(&path).expect("migrates");
        let words = vec!["recipe".to_owned()];
        let page = db
            .search(ana.id, &SearchRequest { words: &words, within: None, before: None, limit: 10 })
            .expect("searches");
        let texts: Vec<&str> = page.hits.iter().map(|hit| hit.message.text.as_str()).collect();
        assert_eq!(texts, ["a better recipe", "the old recipe"]);
    }

    /// Messages wait to be indexed for search until a commit finds a batch of them waiting, or until asked.
    #[test]
    fn new_messages_are_indexed_for_search_a_batch_at_a_time_or_when_asked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteStore::open(&dir.path().join("store.sqlite")).expect("opens");
        let ana = db.create_account(&nick("ana"), "hash", 1).expect("creates").expect("free");
        let room = lobby(&db).id;
        db.add_member(room, ana.id, 0).expect("joins");
        let words = vec!["soup".to_owned()];
        let found = || {
            let request = SearchRequest { words: &words, within: None, before: None, limit: 50 };
            db.search(ana.id, &request).expect("searches").hits.len()
        };
        let append = |n: u64| {
            let mut id = [2; 16];
            id[..8].copy_from_slice(&n.to_be_bytes());
            db.append(room, &ana.nick, MessageId(id), &format!("soup {n}"), 1).expect("appends");
        };
        append(1);
        assert_eq!(found(), 0, "waiting");
        db.index_for_search().expect("indexes");
        assert_eq!(found(), 1);
        for n in 2..=SEARCH_BATCH as u64 {
            append(n);
        }
        assert_eq!(found(), 1, "a batch not reached yet");
        append(SEARCH_BATCH as u64 + 1);
        assert_eq!(found(), 50, "the commit that made a batch indexed it");
    }

    /// A page looks at a bounded number of matches: past that, it ends without its hits and says where the next
    /// page goes on, which finds what is further down.
    #[test]
    fn a_search_through_other_peoples_matches_goes_on_a_bounded_page_at_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteStore::open(&dir.path().join("store.sqlite")).expect("opens");
        let ana = db.create_account(&nick("ana"), "hash", 1).expect("creates").expect("free");
        let garden =
            db.ensure_conversation(&ConvKey::Room(RoomName::parse("garden").expect("valid"))).expect("creates");
        db.add_member(garden.id, ana.id, 0).expect("joins");
        db.begin().expect("begins");
        db.append(garden.id, &nick("bob"), MessageId([0; 16]), "lunch in the garden", 1).expect("appends");
        let lobby = lobby(&db).id;
        for n in 1..=SEARCH_LOOKS_AT as u64 + 5 {
            let mut id = [1; 16];
            id[..8].copy_from_slice(&n.to_be_bytes());
            db.append(lobby, &nick("bob"), MessageId(id), "lunch in the lobby", 1).expect("appends");
        }
        db.commit().expect("commits");
        let words = vec!["lunch".to_owned()];
        let search = |before: Option<&str>| {
            db.search(ana.id, &SearchRequest { words: &words, within: None, before, limit: 20 }).expect("searches")
        };
        let first = search(None);
        assert!(first.hits.is_empty(), "ana is not in the lobby");
        let next = first.next.expect("it goes on");
        let second = search(Some(&next));
        let texts: Vec<&str> = second.hits.iter().map(|hit| hit.message.text.as_str()).collect();
        assert_eq!(texts, ["lunch in the garden"]);
        assert_eq!(second.next, None);
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
        let db = SqliteStore::open(&path).expect("migrates");
        let conv = lobby(&db);
        let texts: Vec<String> = db.messages_after(&conv, 0, 10).expect("read").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["one", "two"]);
        let retry = db.append(conv.id, &nick("ana"), MessageId([1; 16]), "one", 9).expect("append");
        assert_eq!(retry, Appended { seq: 1, ts: 5, duplicate: true });
        assert_eq!(db.append(conv.id, &nick("ana"), MessageId([3; 16]), "three", 9).expect("append").seq, 3);
        drop(db);
        let again = SqliteStore::open(&path).expect("opens a migrated store");
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
        let db = SqliteStore::open(&path).expect("migrates");
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

    #[test]
    fn a_version_4_store_gets_suspensions_and_an_audit_log_and_keeps_its_accounts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let ana = {
            let db = SqliteStore::open(&path).expect("opens");
            let ana = db.create_account(&nick("ana"), "h", 1).expect("creates").expect("new");
            db.conn
                .execute_batch("DROP TABLE suspensions; DROP TABLE audit_log; PRAGMA user_version = 4;")
                .expect("v4");
            ana
        };
        let db = SqliteStore::open(&path).expect("migrates");
        let version: i64 = db.conn.pragma_query_value(None, "user_version", |row| row.get(0)).expect("reads");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(db.suspend(&nick("ana"), None, "", 2).expect("suspends"), Some(ana));
        db.record_audit(2, "operator", "user suspend", "ana", "").expect("records");
        assert_eq!(db.audit_log(5).expect("reads").len(), 1);
    }

    #[test]
    fn a_version_5_store_gets_operators_and_room_moderation_and_keeps_its_accounts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let ana = {
            let db = SqliteStore::open(&path).expect("opens");
            let ana = db.create_account(&nick("ana"), "h", 1).expect("creates").expect("new");
            db.suspend(&nick("ana"), None, "kept", 1).expect("suspends");
            db.conn
                .execute_batch(
                    "DROP TABLE operators; DROP TABLE room_settings; DROP TABLE room_roles; DROP TABLE room_bans;
                     DROP TABLE room_mutes; DROP TABLE room_invites; PRAGMA user_version = 5;",
                )
                .expect("v5");
            ana
        };
        let db = SqliteStore::open(&path).expect("migrates");
        let version: i64 = db.conn.pragma_query_value(None, "user_version", |row| row.get(0)).expect("reads");
        assert_eq!(version, SCHEMA_VERSION);
        assert!(db.suspension_of(ana.id, 2).expect("reads").is_some(), "the suspension is kept");
        assert_eq!(db.set_operator(&nick("ana"), true).expect("sets"), Some(ana.clone()));
        let room = lobby(&db).id;
        db.set_role(room, ana.id, Role::Owner).expect("sets");
        db.set_banned(room, ana.id, Some(&Sanction { reason: "r".into(), by: "b".into(), since_ms: 2 })).expect("bans");
        assert!(db.standing(room, ana.id).expect("reads").banned.is_some());
    }

    #[test]
    fn a_role_the_store_does_not_know_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteStore::open(&dir.path().join("store.sqlite")).expect("opens");
        let ana = db.create_account(&nick("ana"), "h", 1).expect("creates").expect("new");
        let room = lobby(&db).id;
        db.conn
            .execute(
                "INSERT INTO room_roles (conversation, account, role) VALUES (?1, ?2, 'admin')",
                params![room, ana.id.0],
            )
            .expect("writes");
        assert!(matches!(db.standing(room, ana.id), Err(StoreError::Corrupt(why)) if why.contains("admin")));
        assert!(matches!(db.room_moderation(room), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn durability_sets_the_writers_sync_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let synchronous =
            |db: &SqliteStore| db.conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0));
        assert_eq!(synchronous(&SqliteStore::open(&path).expect("opens")).expect("reads"), 2, "FULL");
        assert_eq!(
            synchronous(&SqliteStore::open_with(&path, Durability::Normal).expect("opens")).expect("reads"),
            1,
            "NORMAL"
        );
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
        let db = SqliteStore::open(&path).expect("migrates");
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
        SqliteStore::open(&path).expect("opens a migrated store");
    }
}
