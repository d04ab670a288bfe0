//! The PostgreSQL schema, its migrations and every statement the server runs against it: the store that several
//! server nodes share.
//!
//! Each node has one writer connection (the server groups many writes into one transaction) and a few reader
//! connections. A seq is given out under its conversation's row lock, taken by the transaction's first append
//! to that conversation and held until it commits: writers of different nodes appending to one conversation
//! take turns, and a transaction rolled back gives no seq out. A connection the database dropped (a restart,
//! a failover) is opened again by the next call made outside a transaction.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;

use palomar_proto::{MessageId, MessageKind, Nick, Revision, Role, RoomListing, RoomName};
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::keys::{Account, AccountId, ConvId, ConvKey};
use crate::location::PostgresSettings;
use crate::notices::{Envelope, NodeId, Notice};
use crate::records::{
    Appended, AuditEntry, ConvRow, Credentials, DeletedDirect, Durability, KIND_REACTION, KIND_REACTION_TAKEN_BACK,
    KINDS_BLANKED_WITH, NewMessage, RemovalRequest, Removed, RoomModeration, RoomSettings, RoomStanding, Sanction,
    SearchHit, SearchPage, SearchRequest, Standing, StoreError, StoredMessage, Suspension, kind_columns,
    kind_from_columns, revision_by, revision_column, revision_from_column, stored_role, stored_sanction,
};
use crate::{Result, Store, append_each};

mod copy;
mod peers;
pub use peers::{Heartbeat, Peers};

/// The schema, one entry per version: a database at version N has had the first N applied, each in the
/// transaction that records the new version in `palomar_schema`. A new version is a new entry at the end;
/// entries already released never change.
///
/// As in the SQLite store, ids come from sequences, which never give a number out again: an account or
/// conversation deleted keeps its id to itself. `direct_seq_floors`, `account_removals`, `suspensions`,
/// `audit_log`, `operators` and the `room_*` tables of moderation are explained at the SQLite schema. The log is
/// keyed by conversation and seq, which is the order every read wants.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nick TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE conversations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    last_seq BIGINT NOT NULL DEFAULT 0,
    first_seq BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE members (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    PRIMARY KEY (conversation, account)
);
CREATE INDEX members_by_account ON members (account, conversation);
CREATE TABLE cursors (
    account BIGINT NOT NULL,
    conversation BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (account, conversation)
);
CREATE TABLE direct_seq_floors (
    nicks TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE TABLE account_removals (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nick TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    done_ms BIGINT,
    removed BOOLEAN
);
CREATE TABLE messages (
    conversation BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    client_id BYTEA NOT NULL,
    ts BIGINT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (conversation, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, sender);
",
    "
CREATE TABLE nodes (
    id BIGINT PRIMARY KEY,
    heartbeat TIMESTAMPTZ NOT NULL
);
CREATE TABLE presence (
    node BIGINT NOT NULL,
    account BIGINT NOT NULL,
    nick TEXT NOT NULL,
    PRIMARY KEY (node, account)
);
",
    "
CREATE TABLE suspensions (
    account BIGINT PRIMARY KEY,
    until_ms BIGINT,
    reason TEXT NOT NULL,
    since_ms BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
",
    "
CREATE TABLE operators (
    account BIGINT PRIMARY KEY
);
CREATE TABLE room_settings (
    conversation BIGINT PRIMARY KEY,
    topic TEXT NOT NULL,
    invite_only BOOLEAN NOT NULL,
    moderated BOOLEAN NOT NULL
);
CREATE TABLE room_roles (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (conversation, account)
);
CREATE TABLE room_bans (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    reason TEXT NOT NULL,
    by_actor TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (conversation, account)
);
CREATE TABLE room_mutes (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    reason TEXT NOT NULL,
    by_actor TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (conversation, account)
);
CREATE TABLE room_invites (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    PRIMARY KEY (conversation, account)
);
",
    "
ALTER TABLE messages
    ADD COLUMN kind BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN of_seq BIGINT,
    ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_by_reference ON messages (conversation, of_seq) WHERE of_seq IS NOT NULL;
",
    // Replies and reactions change no table, but an older Palomar cannot read their rows: it refuses this version.
    "
COMMENT ON COLUMN messages.kind IS
    '0 text, 1 action, 2 edit, 3 deletion, 4 reply, 5 reaction added, 6 reaction taken back';
",
    // Search: the words of what can be found (texts, actions and replies not deleted), as PostgreSQL's `simple`
    // configuration splits them (lower-cased, no stemming, any language), maintained by the database with each
    // write. `Store::search` repeats this expression and predicate word for word, so that it uses the index.
    "
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', text))
    WHERE kind IN (0, 1, 4) AND revision <> 2;
",
    // Who is there (protocol version 6): away messages and read markers, as at the SQLite schema.
    "
CREATE TABLE away (
    account BIGINT PRIMARY KEY,
    message TEXT NOT NULL,
    since_ms BIGINT NOT NULL
);
CREATE TABLE read_markers (
    conversation BIGINT NOT NULL,
    account BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (conversation, account)
);
CREATE INDEX read_markers_by_account ON read_markers (account, conversation);
",
];

/// A search position on this store: the last hit's time, conversation and seq, the order hits come in.
fn search_position(ts: i64, conversation: i64, seq: i64) -> String {
    format!("t{ts}.{conversation}.{seq}")
}

fn parse_search_position(position: &str) -> Result<(i64, i64, i64)> {
    let unknown = || StoreError::UnknownSearchPosition(position.to_owned());
    let mut parts = position.strip_prefix('t').ok_or_else(unknown)?.split('.').map(str::parse::<i64>);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(ts)), Some(Ok(conversation)), Some(Ok(seq)), None) => Ok((ts, conversation, seq)),
        _ => Err(unknown()),
    }
}

/// The `to_tsquery` text for `words`: each a quoted prefix (`'lun':*`), all of them. Words are made of letters
/// and digits only ([`palomar_proto::search_words`]); quotes and backslashes are escaped all the same.
fn tsquery(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{}':*", word.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The channel of the notifications that carry [`crate::Notice`]s between nodes.
pub const NOTICES: &str = "palomar";

/// The key of the advisory lock that nodes starting together on one database take in turn to migrate it. Any
/// constant would do, as long as every Palomar uses the same: these are the bytes of "palomar".
const MIGRATION_LOCK: i64 = 0x0070_616c_6f6d_6172;

/// The `application_name` of a server's connections, by which `palomar user` tells whether a server runs on the
/// database.
pub const SERVER_APPLICATION: &str = "palomar serve";

/// How many connections named `$1` the database has, besides the one that asks.
const SERVERS_CONNECTED: &str = "SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()";

/// One conversation's seq counter in the open transaction: as read under its row lock, and as appends moved it.
#[derive(Clone, Copy)]
struct Counter {
    read: u64,
    now: u64,
}

/// One connection to a PostgreSQL store.
pub struct PostgresStore {
    client: RefCell<Client>,
    settings: PostgresSettings,
    /// The writer's durability; `None` for a reader's connection.
    durability: Option<Durability>,
    /// Statements prepared on this connection, by their text: the hot path sends no SQL to parse.
    statements: RefCell<HashMap<&'static str, Statement>>,
    /// A transaction is open.
    open: Cell<bool>,
    /// A statement of the open transaction failed: PostgreSQL has abandoned it, whatever `COMMIT` says.
    failed: Cell<bool>,
    /// A call failed in a way that says the connection is gone. The client itself learns it only when its
    /// background task notices, which may be after the next call.
    lost: Cell<bool>,
    /// The conversations whose rows the open transaction locked, with their counters.
    locked: RefCell<HashMap<ConvId, Counter>>,
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Column `index` of `row`: an error, not a panic, when the database holds something else there.
fn col<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    Ok(row.try_get(index)?)
}

fn parse_nick(raw: &str) -> Result<Nick> {
    Nick::parse(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn connect(settings: &PostgresSettings, durability: Option<Durability>) -> Result<Client> {
    let mut client = settings.connect()?;
    match durability {
        // Whatever the database's default: an acknowledged message must be on the database's disk.
        Some(Durability::Full) => client.batch_execute("SET synchronous_commit = on")?,
        Some(Durability::Normal) => client.batch_execute("SET synchronous_commit = off")?,
        None => client.batch_execute("SET default_transaction_read_only = on")?,
    }
    Ok(client)
}

/// Brings the schema to this release's version. Nodes that start together wait for each other's migration
/// on an advisory lock, held until the migrating transaction ends, rather than apply a version twice.
fn migrate(client: &mut Client) -> Result<()> {
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    transaction.batch_execute("CREATE TABLE IF NOT EXISTS palomar_schema (version INTEGER NOT NULL)")?;
    let version: i32 = match transaction.query_opt("SELECT version FROM palomar_schema", &[])? {
        Some(row) => col(&row, 0)?,
        None => 0,
    };
    if version > known {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this Palomar's {known}; use a newer release"
        )));
    }
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        tracing::info!(version = done + 1, "migrating the database's schema");
        transaction.batch_execute(migration)?;
    }
    if version < known {
        transaction.execute("DELETE FROM palomar_schema", &[])?;
        transaction.execute("INSERT INTO palomar_schema (version) VALUES ($1)", &[&known])?;
    }
    transaction.execute(
        "INSERT INTO conversations (key) VALUES ($1) ON CONFLICT (key) DO NOTHING",
        &[&ConvKey::Room(RoomName::lobby()).to_column()],
    )?;
    transaction.commit()?;
    Ok(())
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    /// Opens the writer's connection, creating or migrating the schema.
    pub fn open(settings: &PostgresSettings, durability: Durability) -> Result<PostgresStore> {
        let mut client = connect(settings, Some(durability))?;
        migrate(&mut client)?;
        Ok(Self::with(client, settings, Some(durability)))
    }

    /// Opens a read-only connection to a database the writer has migrated.
    pub fn open_reader(settings: &PostgresSettings) -> Result<PostgresStore> {
        Ok(Self::with(connect(settings, None)?, settings, None))
    }

    /// How many connections of servers (named [`SERVER_APPLICATION`]) the database has now, besides the one
    /// this opens to ask.
    pub fn servers_connected(settings: &PostgresSettings) -> Result<u64> {
        let mut client = connect(settings, None)?;
        let row = client.query_one(SERVERS_CONNECTED, &[&SERVER_APPLICATION])?;
        Ok(to_u64(col(&row, 0)?))
    }

    fn with(client: Client, settings: &PostgresSettings, durability: Option<Durability>) -> PostgresStore {
        PostgresStore {
            client: RefCell::new(client),
            settings: settings.clone(),
            durability,
            statements: RefCell::default(),
            open: Cell::new(false),
            failed: Cell::new(false),
            lost: Cell::new(false),
            locked: RefCell::default(),
        }
    }

    /// The connection, opened again if the database dropped it while no transaction was open.
    fn client(&self) -> Result<RefMut<'_, Client>> {
        let mut client = self.client.borrow_mut();
        if (self.lost.get() || client.is_closed()) && !self.open.get() {
            tracing::info!(database = %self.settings, "reconnecting to the database");
            *client = connect(&self.settings, self.durability)?;
            self.statements.borrow_mut().clear();
            self.lost.set(false);
        }
        Ok(client)
    }

    /// Notes what a failed call says: the open transaction is abandoned, and the connection may be gone (an error
    /// that is not the database's answer to a statement, or its "connection exception" and "operator
    /// intervention" classes: a restart, a terminated backend).
    fn note<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(StoreError::Postgres(error)) = &result {
            let lost = match error.code() {
                None => true,
                Some(code) => code.code().starts_with("08") || code.code().starts_with("57"),
            };
            if lost {
                self.lost.set(true);
            }
        }
        if result.is_err() && self.open.get() {
            self.failed.set(true);
        }
        result
    }

    /// Runs `sql`, which has no parameters and returns no rows (`BEGIN`, `COMMIT`).
    fn batch(&self, sql: &str) -> Result<()> {
        let result = self.client().and_then(|mut client| Ok(client.batch_execute(sql)?));
        self.note(result)
    }

    fn statement(&self, client: &mut Client, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs `run` with the connection and `sql` prepared on it, noting a failure inside a transaction.
    fn with_statement<T>(
        &self,
        sql: &'static str,
        run: impl FnOnce(&mut Client, &Statement) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let result = (|| {
            let mut client = self.client()?;
            let statement = self.statement(&mut client, sql)?;
            Ok(run(&mut client, &statement)?)
        })();
        self.note(result)
    }

    fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        self.with_statement(sql, |client, statement| client.query(statement, params))
    }

    fn query_opt(&self, sql: &'static str, params: Params<'_>) -> Result<Option<Row>> {
        self.with_statement(sql, |client, statement| client.query_opt(statement, params))
    }

    fn query_one(&self, sql: &'static str, params: Params<'_>) -> Result<Row> {
        self.with_statement(sql, |client, statement| client.query_one(statement, params))
    }

    fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        self.with_statement(sql, |client, statement| client.execute(statement, params))
    }

    /// The suspensions in force at `now_ms`, of `account` or of everyone, by nickname.
    fn suspensions_where(&self, now_ms: u64, account: Option<AccountId>) -> Result<Vec<Suspension>> {
        let rows = self.query(
            "SELECT a.id, a.nick, s.until_ms, s.reason, s.since_ms FROM suspensions s JOIN accounts a ON a.id = s.account
             WHERE (s.until_ms IS NULL OR s.until_ms > $1) AND ($2::bigint IS NULL OR s.account = $2)
             ORDER BY a.nick COLLATE \"C\"",
            &[&to_i64(now_ms), &account.map(|id| id.0)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(Suspension {
                    account: Account { id: AccountId(col(row, 0)?), nick: parse_nick(col(row, 1)?)? },
                    until_ms: col::<Option<i64>>(row, 2)?.map(to_u64),
                    reason: col(row, 3)?,
                    since_ms: to_u64(col(row, 4)?),
                })
            })
            .collect()
    }

    /// Settings from the three columns from `first` on (topic, invite-only, moderated), all null when an outer
    /// join found no row: the defaults.
    fn settings_from(row: &Row, first: usize) -> Result<RoomSettings> {
        Ok(RoomSettings {
            topic: col::<Option<String>>(row, first)?.unwrap_or_default(),
            invite_only: col::<Option<bool>>(row, first + 1)?.unwrap_or_default(),
            moderated: col::<Option<bool>>(row, first + 2)?.unwrap_or_default(),
        })
    }

    /// A standing from the eight columns from `first` on, as the outer joins of [`Store::standing`] and
    /// [`Store::standings_of`] give them: the role, the mute's reason, author and time, the ban's, and whether
    /// invited.
    fn standing_from(row: &Row, first: usize) -> Result<Standing> {
        let sanction = |at: usize| -> Result<Option<Sanction>> {
            Ok(stored_sanction(col(row, at)?, col(row, at + 1)?, col(row, at + 2)?))
        };
        Ok(Standing {
            role: col::<Option<&str>>(row, first)?.map(stored_role).transpose()?.unwrap_or_default(),
            muted: sanction(first + 1)?,
            banned: sanction(first + 4)?,
            invited: col(row, first + 7)?,
        })
    }

    /// The bans or the mutes of `conversation`, by nickname, as `sql` selects them (nickname, reason, author,
    /// time).
    fn sanctions_in(&self, sql: &'static str, conversation: ConvId) -> Result<Vec<(Nick, Sanction)>> {
        let rows = self.query(sql, &[&conversation.0])?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_nick(col(row, 0)?)?,
                    Sanction { reason: col(row, 1)?, by: col(row, 2)?, since_ms: to_u64(col(row, 3)?) },
                ))
            })
            .collect()
    }

    /// Runs `write` in a transaction of its own when none is open, so that it is applied whole or not at all.
    fn in_transaction<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.open.get() {
            return write();
        }
        self.begin()?;
        let done = write().and_then(|value| self.commit().map(|()| value));
        if done.is_err() {
            self.rollback();
        }
        done
    }

    /// Starts a transaction with `begin` (a `BEGIN` statement), with no counters locked and no failure noted yet.
    /// Open from then on, so that a dropped connection is an error rather than a new one outside the transaction.
    fn open_transaction(&self, begin: &str) -> Result<()> {
        self.locked.borrow_mut().clear();
        self.failed.set(false);
        self.batch(begin)?;
        self.open.set(true);
        Ok(())
    }

    /// Writes the counters the open transaction moved into their conversations' rows.
    fn write_counters(&self) -> Result<()> {
        let (ids, seqs): (Vec<i64>, Vec<i64>) = self
            .locked
            .borrow()
            .iter()
            .filter(|(_, counter)| counter.now != counter.read)
            .map(|(conversation, counter)| (conversation.0, to_i64(counter.now)))
            .unzip();
        if !ids.is_empty() {
            self.execute(
                "UPDATE conversations AS c SET last_seq = v.seq
                 FROM unnest($1::bigint[], $2::bigint[]) AS v(id, seq) WHERE c.id = v.id",
                &[&ids, &seqs],
            )?;
        }
        Ok(())
    }

    /// The highest seq given out in `conversation`, locking its row for the rest of the transaction.
    fn last_seq(&self, conversation: ConvId) -> Result<u64> {
        if let Some(counter) = self.locked.borrow().get(&conversation) {
            return Ok(counter.now);
        }
        let row = self.query_opt("SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE", &[&conversation.0])?;
        let row = row.ok_or(StoreError::NoConversation(conversation))?;
        let seq = to_u64(col(&row, 0)?);
        self.locked.borrow_mut().insert(conversation, Counter { read: seq, now: seq });
        Ok(seq)
    }

    /// A row of `id, key, last_seq, first_seq`, with `last_seq` as the open transaction moved it.
    fn to_conv(&self, row: &Row) -> Result<ConvRow> {
        let id = ConvId(col(row, 0)?);
        let raw: &str = col(row, 1)?;
        let key = ConvKey::from_column(raw).ok_or_else(|| StoreError::Corrupt(format!("conversation key {raw:?}")))?;
        let moved = self.locked.borrow().get(&id).map_or(0, |counter| counter.now);
        Ok(ConvRow { id, key, last_seq: moved.max(to_u64(col(row, 2)?)), first_seq: to_u64(col(row, 3)?) })
    }

    fn stored_message(key: &ConvKey, row: &Row) -> Result<StoredMessage> {
        let client_id: &[u8] = col(row, 2)?;
        let id = <[u8; 16]>::try_from(client_id).map_err(|_| StoreError::Corrupt("message id length".into()))?;
        Ok(StoredMessage {
            key: key.clone(),
            seq: to_u64(col(row, 0)?),
            id: MessageId(id),
            from: parse_nick(col(row, 1)?)?,
            ts: to_u64(col(row, 3)?),
            text: col(row, 4)?,
            kind: kind_from_columns(col(row, 5)?, col(row, 6)?)?,
            revision: revision_from_column(col(row, 7)?)?,
        })
    }

    /// What an entry referring to message `of` just stored does to it (see [`revision_by`]).
    fn revise(&self, conversation: ConvId, of: u64, kind: MessageKind, text: &str) -> Result<()> {
        let Some((text, revision)) = revision_by(kind, text) else { return Ok(()) };
        self.execute(
            "UPDATE messages SET text = $3, revision = $4 WHERE conversation = $1 AND seq = $2",
            &[&conversation.0, &to_i64(of), &text, &revision_column(revision)],
        )?;
        if revision == Revision::Deleted {
            self.execute(
                "UPDATE messages SET text = '', revision = $3 WHERE conversation = $1 AND of_seq = $2 AND kind = ANY($4)",
                &[&conversation.0, &to_i64(of), &revision_column(revision), &&KINDS_BLANKED_WITH[..]],
            )?;
        }
        Ok(())
    }

    fn raise_direct_floor(&self, nick_pair: &str, last_seq: u64) -> Result<()> {
        self.execute(
            "INSERT INTO direct_seq_floors (nicks, last_seq) VALUES ($1, $2)
             ON CONFLICT (nicks) DO UPDATE SET last_seq = greatest(direct_seq_floors.last_seq, excluded.last_seq)",
            &[&nick_pair, &to_i64(last_seq)],
        )?;
        Ok(())
    }

    /// Deletes a conversation with its messages, members, cursors and what moderators set in it.
    fn delete_conversation(&self, conversation: ConvId) -> Result<()> {
        let id = &conversation.0;
        self.execute("DELETE FROM messages WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM members WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM cursors WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM read_markers WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM room_settings WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM room_roles WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM room_bans WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM room_mutes WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM room_invites WHERE conversation = $1", &[id])?;
        self.execute("DELETE FROM conversations WHERE id = $1", &[id])?;
        self.locked.borrow_mut().remove(&conversation);
        Ok(())
    }

    fn remove_oldest(&self, keep: u64) -> Result<usize> {
        // The cut is computed from `last_seq`, which must include this transaction's appends.
        self.write_counters()?;
        let keep = to_i64(keep);
        let removed = self.execute(
            "DELETE FROM messages AS m USING conversations AS c
             WHERE m.conversation = c.id AND c.last_seq - $1 >= c.first_seq AND m.seq <= c.last_seq - $1",
            &[&keep],
        )?;
        self.execute(
            "UPDATE conversations SET first_seq = last_seq - $1 + 1 WHERE last_seq - $1 >= first_seq",
            &[&keep],
        )?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}

/// The columns of the rows one multi-row insert adds to the log.
#[derive(Default)]
struct NewRows<'a> {
    conversations: Vec<i64>,
    seqs: Vec<i64>,
    senders: Vec<&'a str>,
    ids: Vec<&'a [u8]>,
    texts: Vec<&'a str>,
    kinds: Vec<i64>,
    of_seqs: Vec<Option<i64>>,
}

impl<'a> NewRows<'a> {
    fn push(&mut self, message: &'a NewMessage<'_>, seq: u64) {
        self.conversations.push(message.conversation.0);
        self.seqs.push(to_i64(seq));
        self.senders.push(message.sender.as_str());
        self.ids.push(&message.id.0[..]);
        self.texts.push(message.text);
        let (kind, of_seq) = kind_columns(message.kind);
        self.kinds.push(kind);
        self.of_seqs.push(of_seq);
    }

    fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

impl Store for PostgresStore {
    fn begin(&self) -> Result<()> {
        self.open_transaction("BEGIN")
    }

    fn lock_for_appends(&self, conversations: &[ConvId]) -> Result<()> {
        let ids: Vec<i64> = conversations.iter().map(|conversation| conversation.0).collect();
        let rows =
            self.query("SELECT id, last_seq FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids])?;
        let mut locked = self.locked.borrow_mut();
        for row in &rows {
            let seq = to_u64(col(row, 1)?);
            locked.entry(ConvId(col(row, 0)?)).or_insert(Counter { read: seq, now: seq });
        }
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        if self.failed.get() {
            return Err(StoreError::Abandoned);
        }
        self.write_counters()?;
        self.batch("COMMIT")?;
        self.open.set(false);
        self.locked.borrow_mut().clear();
        Ok(())
    }

    fn notify(&self, from: NodeId, notices: &[Notice]) -> Result<()> {
        if notices.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> =
            notices.iter().map(|notice| Envelope { from, notice: notice.clone() }.encode()).collect();
        // One round trip for all of them; PostgreSQL delivers them in this order, when the transaction commits.
        self.execute("SELECT pg_notify($2, text) FROM unnest($1::text[]) AS text", &[&texts, &NOTICES])?;
        Ok(())
    }

    fn rollback(&self) {
        let mut client = self.client.borrow_mut();
        // A connection that broke mid-transaction has nothing left to roll back.
        if self.open.replace(false)
            && !self.lost.get()
            && !client.is_closed()
            && let Err(error) = client.batch_execute("ROLLBACK")
        {
            self.lost.set(error.as_db_error().is_none());
        }
        self.locked.borrow_mut().clear();
        self.failed.set(false);
    }

    // ---- accounts

    fn credentials(&self, nick: &Nick) -> Result<Option<Credentials>> {
        let row = self.query_opt("SELECT id, password_hash FROM accounts WHERE nick = $1", &[&nick.as_str()])?;
        row.map(|row| {
            Ok(Credentials {
                account: Account { id: AccountId(col(&row, 0)?), nick: nick.clone() },
                password_hash: col(&row, 1)?,
            })
        })
        .transpose()
    }

    fn create_account(&self, nick: &Nick, password_hash: &str, now_ms: u64) -> Result<Option<Account>> {
        let row = self.query_opt(
            "INSERT INTO accounts (nick, password_hash, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (nick) DO NOTHING RETURNING id",
            &[&nick.as_str(), &password_hash, &to_i64(now_ms)],
        )?;
        row.map(|row| Ok(Account { id: AccountId(col(&row, 0)?), nick: nick.clone() })).transpose()
    }

    fn set_password_hash(&self, nick: &Nick, password_hash: &str) -> Result<bool> {
        let changed =
            self.execute("UPDATE accounts SET password_hash = $2 WHERE nick = $1", &[&nick.as_str(), &password_hash])?;
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
            let id = &account.id.0;
            self.execute("DELETE FROM members WHERE account = $1", &[id])?;
            self.execute("DELETE FROM cursors WHERE account = $1", &[id])?;
            self.execute("DELETE FROM read_markers WHERE account = $1", &[id])?;
            self.execute("DELETE FROM away WHERE account = $1", &[id])?;
            self.execute("DELETE FROM suspensions WHERE account = $1", &[id])?;
            self.execute("DELETE FROM operators WHERE account = $1", &[id])?;
            self.execute("DELETE FROM room_roles WHERE account = $1", &[id])?;
            self.execute("DELETE FROM room_bans WHERE account = $1", &[id])?;
            self.execute("DELETE FROM room_mutes WHERE account = $1", &[id])?;
            self.execute("DELETE FROM room_invites WHERE account = $1", &[id])?;
            self.execute("DELETE FROM accounts WHERE id = $1", &[id])?;
            Ok(Some(Removed { account, deleted_directs }))
        })
    }

    fn accounts(&self) -> Result<Vec<(Nick, u64)>> {
        // Byte order, as SQLite sorts: the database's own collation may differ from one machine to the next.
        let rows = self.query("SELECT nick, created_ms FROM accounts ORDER BY nick COLLATE \"C\"", &[])?;
        rows.iter().map(|row| Ok((parse_nick(col(row, 0)?)?, to_u64(col(row, 1)?)))).collect()
    }

    // ---- suspensions and the audit log

    fn account_created_ms(&self, account: AccountId) -> Result<Option<u64>> {
        let row = self.query_opt("SELECT created_ms FROM accounts WHERE id = $1", &[&account.0])?;
        row.map(|row| col::<i64>(&row, 0).map(to_u64)).transpose()
    }

    fn suspend(&self, nick: &Nick, until_ms: Option<u64>, reason: &str, now_ms: u64) -> Result<Option<Account>> {
        self.in_transaction(|| {
            let Some(account) = self.account(nick)? else { return Ok(None) };
            self.execute(
                "INSERT INTO suspensions (account, until_ms, reason, since_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account) DO UPDATE SET until_ms = $2, reason = $3, since_ms = $4",
                &[&account.id.0, &until_ms.map(to_i64), &reason, &to_i64(now_ms)],
            )?;
            Ok(Some(account))
        })
    }

    fn unsuspend(&self, nick: &Nick) -> Result<bool> {
        let lifted = self.execute(
            "DELETE FROM suspensions WHERE account = (SELECT id FROM accounts WHERE nick = $1)",
            &[&nick.as_str()],
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
        let row = self.query_one(
            "INSERT INTO audit_log (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&to_i64(at_ms), &actor, &action, &target, &detail],
        )?;
        col(&row, 0)
    }

    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = self.query(
            "SELECT id, at_ms, actor, action, target, detail FROM
                 (SELECT * FROM audit_log ORDER BY id DESC LIMIT $1) newest ORDER BY id",
            &[&i64::from(limit)],
        )?;
        rows.iter().map(audit_entry).collect()
    }

    fn audit_entries_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = self.query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64::from(limit)],
        )?;
        rows.iter().map(audit_entry).collect()
    }

    fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        let rows =
            self.query("SELECT id, at_ms, actor, action, target, detail FROM audit_log WHERE id = $1", &[&id])?;
        rows.first().map(audit_entry).transpose()
    }

    // ---- roles and room moderation

    fn set_operator(&self, nick: &Nick, operator: bool) -> Result<Option<Account>> {
        self.in_transaction(|| {
            let Some(account) = self.account(nick)? else { return Ok(None) };
            if operator {
                self.execute("INSERT INTO operators (account) VALUES ($1) ON CONFLICT DO NOTHING", &[&account.id.0])?;
            } else {
                self.execute("DELETE FROM operators WHERE account = $1", &[&account.id.0])?;
            }
            Ok(Some(account))
        })
    }

    fn is_operator(&self, account: AccountId) -> Result<bool> {
        Ok(self.query_opt("SELECT 1 FROM operators WHERE account = $1", &[&account.0])?.is_some())
    }

    fn operators(&self) -> Result<Vec<Nick>> {
        let rows = self.query(
            "SELECT a.nick FROM operators o JOIN accounts a ON a.id = o.account ORDER BY a.nick COLLATE \"C\"",
            &[],
        )?;
        rows.iter().map(|row| parse_nick(col(row, 0)?)).collect()
    }

    fn room_settings(&self, conversation: ConvId) -> Result<RoomSettings> {
        let row = self.query_opt(
            "SELECT topic, invite_only, moderated FROM room_settings WHERE conversation = $1",
            &[&conversation.0],
        )?;
        match row {
            Some(row) => Self::settings_from(&row, 0),
            None => Ok(RoomSettings::default()),
        }
    }

    fn set_room_settings(&self, conversation: ConvId, settings: &RoomSettings) -> Result<()> {
        // Only settings that are not the defaults have a row, so that a login's one query finds the rooms to tell.
        if *settings == RoomSettings::default() {
            self.execute("DELETE FROM room_settings WHERE conversation = $1", &[&conversation.0])?;
        } else {
            self.execute(
                "INSERT INTO room_settings (conversation, topic, invite_only, moderated) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (conversation) DO UPDATE SET
                     topic = excluded.topic, invite_only = excluded.invite_only, moderated = excluded.moderated",
                &[&conversation.0, &settings.topic, &settings.invite_only, &settings.moderated],
            )?;
        }
        Ok(())
    }

    fn standing(&self, conversation: ConvId, account: AccountId) -> Result<Standing> {
        let row = self.query_one(
            "SELECT r.role, u.reason, u.by_actor, u.since_ms, b.reason, b.by_actor, b.since_ms,
                    i.account IS NOT NULL
             FROM (SELECT $1::bigint AS conversation, $2::bigint AS account) k
             LEFT JOIN room_roles r ON r.conversation = k.conversation AND r.account = k.account
             LEFT JOIN room_mutes u ON u.conversation = k.conversation AND u.account = k.account
             LEFT JOIN room_bans b ON b.conversation = k.conversation AND b.account = k.account
             LEFT JOIN room_invites i ON i.conversation = k.conversation AND i.account = k.account",
            &[&conversation.0, &account.0],
        )?;
        Self::standing_from(&row, 0)
    }

    fn set_role(&self, conversation: ConvId, account: AccountId, role: Role) -> Result<()> {
        if role == Role::Member {
            self.execute(
                "DELETE FROM room_roles WHERE conversation = $1 AND account = $2",
                &[&conversation.0, &account.0],
            )?;
        } else {
            self.execute(
                "INSERT INTO room_roles (conversation, account, role) VALUES ($1, $2, $3)
                 ON CONFLICT (conversation, account) DO UPDATE SET role = excluded.role",
                &[&conversation.0, &account.0, &role.as_str()],
            )?;
        }
        Ok(())
    }

    fn set_muted(&self, conversation: ConvId, account: AccountId, mute: Option<&Sanction>) -> Result<bool> {
        let changed = match mute {
            Some(mute) => self.execute(
                "INSERT INTO room_mutes (conversation, account, reason, by_actor, since_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (conversation, account) DO UPDATE SET
                     reason = excluded.reason, by_actor = excluded.by_actor, since_ms = excluded.since_ms
                 WHERE (room_mutes.reason, room_mutes.by_actor, room_mutes.since_ms)
                     IS DISTINCT FROM (excluded.reason, excluded.by_actor, excluded.since_ms)",
                &[&conversation.0, &account.0, &mute.reason, &mute.by, &to_i64(mute.since_ms)],
            )?,
            None => self.execute(
                "DELETE FROM room_mutes WHERE conversation = $1 AND account = $2",
                &[&conversation.0, &account.0],
            )?,
        };
        Ok(changed == 1)
    }

    fn set_banned(&self, conversation: ConvId, account: AccountId, ban: Option<&Sanction>) -> Result<bool> {
        let Some(ban) = ban else {
            let lifted = self.execute(
                "DELETE FROM room_bans WHERE conversation = $1 AND account = $2",
                &[&conversation.0, &account.0],
            )?;
            return Ok(lifted == 1);
        };
        self.in_transaction(|| {
            let key: Params<'_> = &[&conversation.0, &account.0];
            let written = self.execute(
                "INSERT INTO room_bans (conversation, account, reason, by_actor, since_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (conversation, account) DO UPDATE SET
                     reason = excluded.reason, by_actor = excluded.by_actor, since_ms = excluded.since_ms
                 WHERE (room_bans.reason, room_bans.by_actor, room_bans.since_ms)
                     IS DISTINCT FROM (excluded.reason, excluded.by_actor, excluded.since_ms)",
                &[&conversation.0, &account.0, &ban.reason, &ban.by, &to_i64(ban.since_ms)],
            )?;
            let left = self.remove_member(conversation, account)?;
            let ended = self.execute("DELETE FROM room_roles WHERE conversation = $1 AND account = $2", key)?
                + self.execute("DELETE FROM room_invites WHERE conversation = $1 AND account = $2", key)?;
            Ok(written == 1 || left || ended > 0)
        })
    }

    fn set_invited(&self, conversation: ConvId, account: AccountId, invited: bool) -> Result<()> {
        let key: Params<'_> = &[&conversation.0, &account.0];
        if invited {
            self.execute(
                "INSERT INTO room_invites (conversation, account) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                key,
            )?;
        } else {
            self.execute("DELETE FROM room_invites WHERE conversation = $1 AND account = $2", key)?;
        }
        Ok(())
    }

    fn standings_of(&self, account: AccountId) -> Result<Vec<RoomStanding>> {
        let rows = self.query(
            "SELECT k.conversation, s.topic, s.invite_only, s.moderated,
                    r.role, u.reason, u.by_actor, u.since_ms, b.reason, b.by_actor, b.since_ms,
                    i.account IS NOT NULL
             FROM members k
             LEFT JOIN room_settings s ON s.conversation = k.conversation
             LEFT JOIN room_roles r ON r.conversation = k.conversation AND r.account = k.account
             LEFT JOIN room_mutes u ON u.conversation = k.conversation AND u.account = k.account
             LEFT JOIN room_bans b ON b.conversation = k.conversation AND b.account = k.account
             LEFT JOIN room_invites i ON i.conversation = k.conversation AND i.account = k.account
             WHERE k.account = $1 AND (s.conversation IS NOT NULL OR r.account IS NOT NULL OR u.account IS NOT NULL
                 OR b.account IS NOT NULL OR i.account IS NOT NULL)
             ORDER BY k.conversation",
            &[&account.0],
        )?;
        rows.iter()
            .map(|row| {
                Ok(RoomStanding {
                    conversation: ConvId(col(row, 0)?),
                    settings: Self::settings_from(row, 1)?,
                    standing: Self::standing_from(row, 4)?,
                })
            })
            .collect()
    }

    fn room_moderation(&self, conversation: ConvId) -> Result<RoomModeration> {
        let roles = self.query(
            "SELECT a.nick, r.role FROM room_roles r JOIN accounts a ON a.id = r.account
             WHERE r.conversation = $1 ORDER BY a.nick COLLATE \"C\"",
            &[&conversation.0],
        )?;
        let invited = self.query(
            "SELECT a.nick FROM room_invites i JOIN accounts a ON a.id = i.account
             WHERE i.conversation = $1 ORDER BY a.nick COLLATE \"C\"",
            &[&conversation.0],
        )?;
        Ok(RoomModeration {
            settings: self.room_settings(conversation)?,
            roles: roles
                .iter()
                .map(|row| Ok((parse_nick(col(row, 0)?)?, stored_role(col(row, 1)?)?)))
                .collect::<Result<_>>()?,
            bans: self.sanctions_in(
                "SELECT a.nick, s.reason, s.by_actor, s.since_ms FROM room_bans s JOIN accounts a ON a.id = s.account
                 WHERE s.conversation = $1 ORDER BY a.nick COLLATE \"C\"",
                conversation,
            )?,
            mutes: self.sanctions_in(
                "SELECT a.nick, s.reason, s.by_actor, s.since_ms FROM room_mutes s JOIN accounts a ON a.id = s.account
                 WHERE s.conversation = $1 ORDER BY a.nick COLLATE \"C\"",
                conversation,
            )?,
            invited: invited.iter().map(|row| parse_nick(col(row, 0)?)).collect::<Result<_>>()?,
        })
    }

    fn room_listing(
        &self,
        viewer: AccountId,
        every: bool,
        after: Option<&RoomName>,
        limit: u32,
    ) -> Result<Vec<RoomListing>> {
        // As in the SQLite store: the rooms after `after` are the keys between `#after` and `$`. The keys compare
        // byte by byte (`COLLATE "C"`), as names are ordered everywhere else.
        let after = after.map_or_else(|| "#".to_owned(), |room| ConvKey::Room(room.clone()).to_column());
        let rows = self.query(
            "SELECT c.key, (SELECT COUNT(*) FROM members m WHERE m.conversation = c.id),
                    COALESCE(s.topic, ''), COALESCE(s.invite_only, FALSE)
             FROM conversations c LEFT JOIN room_settings s ON s.conversation = c.id
             WHERE c.key COLLATE \"C\" > $1 AND c.key COLLATE \"C\" < '$'
               AND ($2 OR NOT COALESCE(s.invite_only, FALSE)
                    OR EXISTS (SELECT 1 FROM members v WHERE v.conversation = c.id AND v.account = $3))
             ORDER BY c.key COLLATE \"C\" LIMIT $4",
            &[&after, &every, &viewer.0, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|row| {
                let key: String = col(row, 0)?;
                crate::records::listed_room(&key, col(row, 1)?, col(row, 2)?, col(row, 3)?)
            })
            .collect()
    }

    // ---- removals asked of a running server

    fn request_removal(&self, nick: &Nick, now_ms: u64) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO account_removals (nick, requested_ms) VALUES ($1, $2) RETURNING id",
            &[&nick.as_str(), &to_i64(now_ms)],
        )?;
        col(&row, 0)
    }

    fn pending_removals(&self) -> Result<Vec<RemovalRequest>> {
        let rows = self.query("SELECT id, nick FROM account_removals WHERE done_ms IS NULL ORDER BY id", &[])?;
        rows.iter().map(|row| Ok(RemovalRequest { id: col(row, 0)?, nick: parse_nick(col(row, 1)?)? })).collect()
    }

    fn finish_removal(&self, id: i64, removed: bool, now_ms: u64) -> Result<()> {
        self.execute(
            "UPDATE account_removals SET done_ms = $2, removed = $3 WHERE id = $1 AND done_ms IS NULL",
            &[&id, &to_i64(now_ms), &removed],
        )?;
        Ok(())
    }

    fn removal_outcome(&self, id: i64) -> Result<Option<bool>> {
        let row = self.query_opt("SELECT done_ms, removed FROM account_removals WHERE id = $1", &[&id])?;
        let Some(row) = row else { return Ok(None) };
        let done: Option<i64> = col(&row, 0)?;
        let removed: Option<bool> = col(&row, 1)?;
        Ok(done.map(|_| removed.unwrap_or(false)))
    }

    // ---- conversations and members

    fn conversation(&self, key: &ConvKey) -> Result<Option<ConvRow>> {
        let row = self
            .query_opt("SELECT id, key, last_seq, first_seq FROM conversations WHERE key = $1", &[&key.to_column()])?;
        row.map(|row| self.to_conv(&row)).transpose()
    }

    fn conversation_by_id(&self, id: ConvId) -> Result<Option<ConvRow>> {
        let row = self.query_opt("SELECT id, key, last_seq, first_seq FROM conversations WHERE id = $1", &[&id.0])?;
        row.map(|row| self.to_conv(&row)).transpose()
    }

    fn ensure_conversation(&self, key: &ConvKey) -> Result<ConvRow> {
        // Another node may create it at the same moment: the insert then waits for that one and does nothing.
        self.execute("INSERT INTO conversations (key) VALUES ($1) ON CONFLICT (key) DO NOTHING", &[&key.to_column()])?;
        self.conversation(key)?.ok_or_else(|| StoreError::Corrupt("conversation vanished after insert".into()))
    }

    fn open_direct(&self, a: &Account, b: &Account) -> Result<Option<ConvRow>> {
        let key = ConvKey::direct(a.clone(), b.clone());
        if let Some(row) = self.conversation(&key)? {
            return Ok(Some(row));
        }
        let live: i64 = self
            .query_one(
                "SELECT count(*) FROM accounts WHERE (id = $1 AND nick = $2) OR (id = $3 AND nick = $4)",
                &[&a.id.0, &a.nick.as_str(), &b.id.0, &b.nick.as_str()],
            )
            .and_then(|row| col(&row, 0))?;
        if live != if a.id == b.id { 1 } else { 2 } {
            return Ok(None);
        }
        let floor: i64 =
            match self.query_opt("SELECT last_seq FROM direct_seq_floors WHERE nicks = $1", &[&key.nick_pair()])? {
                Some(row) => col(&row, 0)?,
                None => 0,
            };
        // `first_seq` stays 1: nothing of this conversation is missing, the seqs below the floor were never its.
        self.execute(
            "INSERT INTO conversations (key, last_seq) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key.to_column(), &floor],
        )?;
        let row =
            self.conversation(&key)?.ok_or_else(|| StoreError::Corrupt("conversation vanished after insert".into()))?;
        self.add_member(row.id, a.id, row.last_seq)?;
        self.add_member(row.id, b.id, row.last_seq)?;
        Ok(Some(row))
    }

    fn memberships_of(&self, account: AccountId) -> Result<Vec<(u64, ConvRow)>> {
        let rows = self.query(
            "SELECT c.id, c.key, c.last_seq, c.first_seq, coalesce(k.seq, 0)
             FROM members m JOIN conversations c ON c.id = m.conversation
             LEFT JOIN cursors k ON k.account = m.account AND k.conversation = m.conversation
             WHERE m.account = $1 ORDER BY c.id",
            &[&account.0],
        )?;
        rows.iter().map(|row| Ok((to_u64(col(row, 4)?), self.to_conv(row)?))).collect()
    }

    fn is_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        let row = self.query_opt(
            "SELECT 1 FROM members WHERE conversation = $1 AND account = $2",
            &[&conversation.0, &account.0],
        )?;
        Ok(row.is_some())
    }

    fn room_count(&self, account: AccountId) -> Result<u64> {
        let count: i64 = self
            .query_one(
                "SELECT count(*) FROM members m JOIN conversations c ON c.id = m.conversation
                 WHERE m.account = $1 AND c.key LIKE '#%'",
                &[&account.0],
            )
            .and_then(|row| col(&row, 0))?;
        Ok(to_u64(count))
    }

    fn all_conversations(&self) -> Result<Vec<ConvRow>> {
        let rows = self.query("SELECT id, key, last_seq, first_seq FROM conversations ORDER BY id", &[])?;
        rows.iter().map(|row| self.to_conv(row)).collect()
    }

    fn members(&self, conversation: ConvId) -> Result<Vec<Nick>> {
        let rows = self.query(
            "SELECT a.nick FROM members m JOIN accounts a ON a.id = m.account WHERE m.conversation = $1
             ORDER BY a.nick COLLATE \"C\"",
            &[&conversation.0],
        )?;
        rows.iter().map(|row| parse_nick(col(row, 0)?)).collect()
    }

    fn add_member(&self, conversation: ConvId, account: AccountId, cursor: u64) -> Result<bool> {
        let added = self.execute(
            "INSERT INTO members (conversation, account) SELECT $1::bigint, id FROM accounts WHERE id = $2
             ON CONFLICT DO NOTHING",
            &[&conversation.0, &account.0],
        )?;
        if added == 1 {
            self.execute(
                "INSERT INTO cursors (account, conversation, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (account, conversation) DO UPDATE SET seq = excluded.seq",
                &[&account.0, &conversation.0, &to_i64(cursor)],
            )?;
        }
        Ok(added == 1)
    }

    fn remove_member(&self, conversation: ConvId, account: AccountId) -> Result<bool> {
        let removed = self
            .execute("DELETE FROM members WHERE conversation = $1 AND account = $2", &[&conversation.0, &account.0])?;
        self.execute("DELETE FROM cursors WHERE conversation = $1 AND account = $2", &[&conversation.0, &account.0])?;
        self.execute(
            "DELETE FROM read_markers WHERE conversation = $1 AND account = $2",
            &[&conversation.0, &account.0],
        )?;
        Ok(removed == 1)
    }

    // ---- the logs

    fn append_message(&self, message: &NewMessage<'_>, now_ms: u64) -> Result<Appended> {
        let NewMessage { conversation, sender, id, text, kind } = *message;
        self.in_transaction(|| {
            let seq = self.last_seq(conversation)? + 1;
            let (kind_code, of_seq) = kind_columns(kind);
            // A retry racing its first copy through another node waits here for that node's transaction.
            let inserted = self.execute(
                "INSERT INTO messages (conversation, seq, sender, client_id, ts, text, kind, of_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_id, sender) DO NOTHING",
                &[
                    &conversation.0,
                    &to_i64(seq),
                    &sender.as_str(),
                    &&id.0[..],
                    &to_i64(now_ms),
                    &text,
                    &kind_code,
                    &of_seq,
                ],
            )?;
            if inserted == 1 {
                if let Some(counter) = self.locked.borrow_mut().get_mut(&conversation) {
                    counter.now = seq;
                }
                if let Some(of) = kind.refers_to() {
                    self.revise(conversation, of, kind, text)?;
                }
                return Ok(Appended { seq, ts: now_ms, duplicate: false });
            }
            let row = self.query_one(
                "SELECT seq, ts FROM messages WHERE client_id = $1 AND sender = $2",
                &[&&id.0[..], &sender.as_str()],
            )?;
            Ok(Appended { seq: to_u64(col(&row, 0)?), ts: to_u64(col(&row, 1)?), duplicate: true })
        })
    }

    fn sent_before(&self, sender: &Nick, id: MessageId) -> Result<bool> {
        let found = self.query_opt(
            "SELECT 1 FROM messages WHERE client_id = $1 AND sender = $2",
            &[&&id.0[..], &sender.as_str()],
        )?;
        Ok(found.is_some())
    }

    fn has_reacted(
        &self,
        conversation: ConvId,
        of: u64,
        (sender, since_ms): (&Nick, u64),
        emoji: &str,
    ) -> Result<bool> {
        let latest = self.query_opt(
            "SELECT kind FROM messages
             WHERE conversation = $1 AND of_seq = $2 AND kind IN ($3, $4) AND sender = $5 AND ts >= $6 AND text = $7
             ORDER BY seq DESC LIMIT 1",
            &[
                &conversation.0,
                &to_i64(of),
                &KIND_REACTION,
                &KIND_REACTION_TAKEN_BACK,
                &sender.as_str(),
                &to_i64(since_ms),
                &emoji,
            ],
        )?;
        Ok(match latest {
            Some(row) => col::<i64>(&row, 0)? == KIND_REACTION,
            None => false,
        })
    }

    fn append_all(&self, messages: &[NewMessage<'_>], now_ms: u64) -> Result<Vec<Option<Appended>>> {
        self.in_transaction(|| {
            // Seqs are given out under the conversations' row locks, as `append` does, but all rows go in one
            // statement: one round trip for the batch instead of one per message.
            let mut next: HashMap<ConvId, Option<u64>> = HashMap::new();
            let mut outcomes = Vec::with_capacity(messages.len());
            let mut rows = NewRows::default();
            for message in messages {
                let counter = match next.get_mut(&message.conversation) {
                    Some(counter) => counter,
                    None => {
                        let last = match self.last_seq(message.conversation) {
                            Ok(last) => Some(last),
                            Err(StoreError::NoConversation(_)) => None,
                            Err(error) => return Err(error),
                        };
                        next.entry(message.conversation).or_insert(last)
                    }
                };
                outcomes.push(counter.as_mut().map(|last| {
                    *last += 1;
                    rows.push(message, *last);
                    Appended { seq: *last, ts: now_ms, duplicate: false }
                }));
            }
            if rows.is_empty() {
                return Ok(outcomes);
            }
            let inserted = self.query(
                "INSERT INTO messages (conversation, seq, sender, client_id, ts, text, kind, of_seq)
                 SELECT conversation, seq, sender, client_id, $5, text, kind, of_seq
                 FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $6::text[], $7::bigint[], $8::bigint[])
                     AS v(conversation, seq, sender, client_id, text, kind, of_seq)
                 ON CONFLICT (client_id, sender) DO NOTHING RETURNING conversation, seq",
                &[
                    &rows.conversations,
                    &rows.seqs,
                    &rows.senders,
                    &rows.ids,
                    &to_i64(now_ms),
                    &rows.texts,
                    &rows.kinds,
                    &rows.of_seqs,
                ],
            )?;
            if inserted.len() < rows.seqs.len() {
                // A retry (of a message stored earlier, or twice in this batch): the rows after it would leave a
                // gap. Rare enough to take back what went in and append one by one, which settles each retry.
                let mut conversations: Vec<i64> = Vec::with_capacity(inserted.len());
                let mut seqs: Vec<i64> = Vec::with_capacity(inserted.len());
                for row in &inserted {
                    conversations.push(col(row, 0)?);
                    seqs.push(col(row, 1)?);
                }
                self.execute(
                    "DELETE FROM messages WHERE (conversation, seq) IN
                         (SELECT * FROM unnest($1::bigint[], $2::bigint[]))",
                    &[&conversations, &seqs],
                )?;
                return append_each(self, messages, now_ms);
            }
            // An edit or a deletion changes only messages before it, so applying them after the batch went in, in
            // order, comes to what applying each as it went in would.
            for (message, outcome) in messages.iter().zip(&outcomes) {
                if let (Some(of), Some(_)) = (message.kind.refers_to(), outcome) {
                    self.revise(message.conversation, of, message.kind, message.text)?;
                }
            }
            let mut locked = self.locked.borrow_mut();
            for (conversation, last) in next {
                if let (Some(last), Some(counter)) = (last, locked.get_mut(&conversation)) {
                    counter.now = last;
                }
            }
            Ok(outcomes)
        })
    }

    fn messages_after(&self, conv: &ConvRow, after: u64, limit: u32) -> Result<Vec<StoredMessage>> {
        let rows = self.query(
            "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages WHERE conversation = $1 AND seq > $2
             ORDER BY seq LIMIT $3",
            &[&conv.id.0, &to_i64(after), &i64::from(limit)],
        )?;
        rows.iter().map(|row| Self::stored_message(&conv.key, row)).collect()
    }

    fn messages_before(&self, conv: &ConvRow, before: u64, limit: u32) -> Result<Vec<StoredMessage>> {
        let rows = self.query(
            "SELECT seq, sender, client_id, ts, text, kind, of_seq, revision FROM messages WHERE conversation = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3",
            &[&conv.id.0, &to_i64(before), &i64::from(limit)],
        )?;
        rows.iter().rev().map(|row| Self::stored_message(&conv.key, row)).collect()
    }

    fn search(&self, account: AccountId, search: &SearchRequest<'_>) -> Result<SearchPage> {
        let (ts, conversation, seq) = match search.before {
            Some(position) => parse_search_position(position)?,
            None => (i64::MAX, i64::MAX, i64::MAX),
        };
        let limit = usize::try_from(search.limit).unwrap_or(usize::MAX);
        let rows = self.query(
            "SELECT m.seq, m.sender, m.client_id, m.ts, m.text, m.kind, m.of_seq, m.revision, c.key, m.conversation
             FROM messages m
             JOIN members b ON b.conversation = m.conversation AND b.account = $2
             JOIN conversations c ON c.id = m.conversation
             WHERE to_tsvector('simple', m.text) @@ to_tsquery('simple', $1)
                 AND m.kind IN (0, 1, 4) AND m.revision <> 2
                 AND ($3::bigint IS NULL OR m.conversation = $3)
                 AND (m.ts, m.conversation, m.seq) < ($4, $5, $6)
             ORDER BY m.ts DESC, m.conversation DESC, m.seq DESC LIMIT $7",
            &[
                &tsquery(search.words),
                &account.0,
                &search.within.map(|within| within.0),
                &ts,
                &conversation,
                &seq,
                &i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
            ],
        )?;
        let mut page = SearchPage::default();
        for row in rows.iter().take(limit) {
            let raw: &str = col(row, 8)?;
            let key =
                ConvKey::from_column(raw).ok_or_else(|| StoreError::Corrupt(format!("conversation key {raw:?}")))?;
            let message = Self::stored_message(&key, row)?;
            let position = search_position(col(row, 3)?, col(row, 9)?, col(row, 0)?);
            page.hits.push(SearchHit { message, position });
        }
        if rows.len() > limit {
            page.next = page.hits.last().map(|hit| hit.position.clone());
        }
        Ok(page)
    }

    fn prune(&self, keep: u64) -> Result<usize> {
        self.in_transaction(|| self.remove_oldest(keep))
    }

    // ---- cursors

    fn advance_cursor(&self, account: AccountId, conversation: ConvId, seq: u64) -> Result<()> {
        self.execute(
            "INSERT INTO cursors (account, conversation, seq)
                 SELECT $1::bigint, $2::bigint, $3::bigint WHERE EXISTS (SELECT 1 FROM members WHERE conversation = $2 AND account = $1)
             ON CONFLICT (account, conversation) DO UPDATE SET seq = greatest(cursors.seq, excluded.seq)",
            &[&account.0, &conversation.0, &to_i64(seq)],
        )?;
        Ok(())
    }

    fn advance_cursors(&self, cursors: &[(AccountId, ConvId, u64)]) -> Result<()> {
        if cursors.is_empty() {
            return Ok(());
        }
        let mut sorted = cursors.to_vec();
        // Two nodes saving cursors of the same account lock its rows in one order, so they never deadlock.
        sorted.sort_unstable();
        let accounts: Vec<i64> = sorted.iter().map(|(account, _, _)| account.0).collect();
        let conversations: Vec<i64> = sorted.iter().map(|(_, conversation, _)| conversation.0).collect();
        let seqs: Vec<i64> = sorted.iter().map(|&(_, _, seq)| to_i64(seq)).collect();
        self.execute(
            "INSERT INTO cursors (account, conversation, seq)
                 SELECT v.account, v.conversation, max(v.seq)
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(account, conversation, seq)
                 WHERE EXISTS (SELECT 1 FROM members m WHERE m.conversation = v.conversation AND m.account = v.account)
                 GROUP BY v.account, v.conversation ORDER BY v.account, v.conversation
             ON CONFLICT (account, conversation) DO UPDATE SET seq = greatest(cursors.seq, excluded.seq)",
            &[&accounts, &conversations, &seqs],
        )?;
        Ok(())
    }

    fn cursor(&self, account: AccountId, conversation: ConvId) -> Result<u64> {
        let row = self.query_opt(
            "SELECT seq FROM cursors WHERE account = $1 AND conversation = $2",
            &[&account.0, &conversation.0],
        )?;
        Ok(match row {
            Some(row) => to_u64(col(&row, 0)?),
            None => 0,
        })
    }

    // ---- who is there

    fn set_away(&self, account: AccountId, message: Option<&str>, now_ms: u64) -> Result<()> {
        match message {
            Some(message) => self.execute(
                "INSERT INTO away (account, message, since_ms) SELECT id, $2, $3 FROM accounts WHERE id = $1
                 ON CONFLICT (account) DO UPDATE SET message = excluded.message, since_ms = excluded.since_ms",
                &[&account.0, &message, &to_i64(now_ms)],
            )?,
            None => self.execute("DELETE FROM away WHERE account = $1", &[&account.0])?,
        };
        Ok(())
    }

    fn away_of(&self, account: AccountId) -> Result<Option<String>> {
        let row = self.query_opt("SELECT message FROM away WHERE account = $1", &[&account.0])?;
        row.map(|row| col(&row, 0)).transpose()
    }

    fn away_in(&self, conversation: ConvId) -> Result<Vec<(Nick, String)>> {
        let rows = self.query(
            "SELECT a.nick, w.message FROM members m JOIN away w ON w.account = m.account
             JOIN accounts a ON a.id = m.account WHERE m.conversation = $1 ORDER BY a.nick COLLATE \"C\"",
            &[&conversation.0],
        )?;
        rows.iter().map(|row| Ok((parse_nick(col(row, 0)?)?, col(row, 1)?))).collect()
    }

    fn advance_read_markers(&self, markers: &[(AccountId, ConvId, u64)]) -> Result<()> {
        if markers.is_empty() {
            return Ok(());
        }
        let mut sorted = markers.to_vec();
        // As with cursors: two nodes saving markers lock their rows in one order, so they never deadlock.
        sorted.sort_unstable_by_key(|&(account, conversation, _)| (conversation, account));
        let accounts: Vec<i64> = sorted.iter().map(|(account, _, _)| account.0).collect();
        let conversations: Vec<i64> = sorted.iter().map(|(_, conversation, _)| conversation.0).collect();
        let seqs: Vec<i64> = sorted.iter().map(|&(_, _, seq)| to_i64(seq)).collect();
        self.execute(
            "INSERT INTO read_markers (conversation, account, seq)
                 SELECT v.conversation, v.account, max(v.seq)
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(account, conversation, seq)
                 WHERE EXISTS (SELECT 1 FROM members m WHERE m.conversation = v.conversation AND m.account = v.account)
                 GROUP BY v.conversation, v.account ORDER BY v.conversation, v.account
             ON CONFLICT (conversation, account) DO UPDATE SET seq = greatest(read_markers.seq, excluded.seq)",
            &[&accounts, &conversations, &seqs],
        )?;
        Ok(())
    }

    fn read_marker(&self, account: AccountId, conversation: ConvId) -> Result<u64> {
        let row = self.query_opt(
            "SELECT seq FROM read_markers WHERE conversation = $1 AND account = $2",
            &[&conversation.0, &account.0],
        )?;
        Ok(match row {
            Some(row) => to_u64(col(&row, 0)?),
            None => 0,
        })
    }

    fn read_markers_in(&self, conversation: ConvId) -> Result<Vec<(Nick, u64)>> {
        let rows = self.query(
            "SELECT a.nick, r.seq FROM read_markers r JOIN accounts a ON a.id = r.account
             WHERE r.conversation = $1 AND r.seq > 0 ORDER BY a.nick COLLATE \"C\"",
            &[&conversation.0],
        )?;
        rows.iter().map(|row| Ok((parse_nick(col(row, 0)?)?, to_u64(col(row, 1)?)))).collect()
    }

    fn read_markers_of(&self, account: AccountId) -> Result<Vec<(ConvId, Nick, u64)>> {
        // Its own markers, and the other member's in its direct conversations (keys of those start with `@`).
        let rows = self.query(
            "SELECT r.conversation, a.nick, r.seq FROM read_markers r JOIN accounts a ON a.id = r.account
             WHERE r.seq > 0 AND (r.account = $1 OR r.conversation IN (
                 SELECT m.conversation FROM members m JOIN conversations c ON c.id = m.conversation
                 WHERE m.account = $1 AND c.key LIKE '@%'))
             ORDER BY r.conversation, a.nick COLLATE \"C\"",
            &[&account.0],
        )?;
        rows.iter().map(|row| Ok((ConvId(col(row, 0)?), parse_nick(col(row, 1)?)?, to_u64(col(row, 2)?)))).collect()
    }

    fn write_probe(&self) -> Result<()> {
        // Every update writes a new version of its row, and WAL for it, even with the same values.
        self.execute("UPDATE palomar_schema SET version = version", &[])?;
        Ok(())
    }
}

/// An audit log entry from a row of `id, at_ms, actor, action, target, detail`.
fn audit_entry(row: &postgres::Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: col(row, 0)?,
        at_ms: to_u64(col(row, 1)?),
        actor: col(row, 2)?,
        action: col(row, 3)?,
        target: col(row, 4)?,
        detail: col(row, 5)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::*;
    use crate::tests::{Fresh, lobby, nick};
    use palomar_test_postgres::TestCluster;

    fn settings(store: &Fresh) -> PostgresSettings {
        match &store.location {
            crate::Location::Postgres(settings) => (**settings).clone(),
            crate::Location::Sqlite(_) => unreachable!("a PostgreSQL store"),
        }
    }

    /// Two nodes' links: one hears the other's presence and commits, not its own; a node that stops beating is
    /// forgotten with its presence; one that leaves says its users left.
    #[test]
    fn nodes_hear_each_other_and_forget_a_silent_one() {
        let store = Fresh::postgres();
        let settings = settings(&store);
        let (one, two) = (NodeId(1), NodeId(2));
        let first = Peers::connect(&settings, one).expect("links");
        let second = Peers::connect(&settings, two).expect("links");
        let ana = Account { id: AccountId(7), nick: nick("ana") };
        first.announce(&[Notice::Online { account: ana.clone() }]).expect("announces");
        let writer = PostgresStore::open(&settings, Durability::Full).expect("opens");
        writer.begin().expect("begins");
        writer.notify(one, &[Notice::Appended { conv: ConvId(1), first: 1, last: 3 }]).expect("notifies");
        let before: Vec<Notice> =
            second.receive(Duration::from_secs(5)).expect("receives").into_iter().map(|e| e.notice).collect();
        assert_eq!(before, vec![Notice::Online { account: ana.clone() }], "the commit's notice only once committed");
        writer.commit().expect("commits");
        let heard: Vec<Notice> =
            second.receive(Duration::from_secs(5)).expect("receives").into_iter().map(|e| e.notice).collect();
        assert_eq!(heard, vec![Notice::Appended { conv: ConvId(1), first: 1, last: 3 }]);
        assert!(first.receive(Duration::from_millis(100)).expect("receives").is_empty(), "not its own");
        assert_eq!(second.presence().expect("reads"), vec![(one, ana.clone())]);

        let beat = second.heartbeat(Duration::from_secs(60)).expect("beats");
        assert_eq!((beat.alive, beat.was_forgotten), (vec![one], false));
        std::thread::sleep(Duration::from_millis(300));
        second.heartbeat(Duration::from_millis(1)).expect("beats");
        assert!(second.presence().expect("reads").is_empty(), "the silent node's users are forgotten");
        assert!(first.heartbeat(Duration::from_secs(60)).expect("beats").was_forgotten, "and it learns so");

        first.announce_all(std::slice::from_ref(&ana)).expect("announces again");
        second.receive(Duration::from_millis(100)).expect("receives");
        first.leave().expect("leaves");
        let heard: Vec<Notice> =
            second.receive(Duration::from_secs(5)).expect("receives").into_iter().map(|e| e.notice).collect();
        assert_eq!(heard, vec![Notice::Offline { account: ana.id }]);
        assert!(second.heartbeat(Duration::from_secs(60)).expect("beats").alive.is_empty());
    }

    /// Three nodes' writers append to the same conversations at once, in groups as the server's writer does: the
    /// seqs of each conversation come out 1, 2, 3, … with none twice and none missing.
    #[test]
    fn writers_of_several_nodes_take_turns_and_leave_no_gap() {
        let store = Fresh::postgres();
        let writer = store.writer();
        let rooms: Vec<ConvId> = ["lobby", "a", "b"]
            .iter()
            .map(|name| {
                writer.ensure_conversation(&ConvKey::Room(RoomName::parse(name).expect("valid"))).expect("creates").id
            })
            .collect();
        drop(writer);
        let start = Arc::new(Barrier::new(3));
        let nodes: Vec<_> = (0..3u8)
            .map(|node| {
                let (settings, rooms, start) = (settings(&store), rooms.clone(), start.clone());
                std::thread::spawn(move || {
                    let db = PostgresStore::open(&settings, Durability::Full).expect("opens");
                    start.wait();
                    let mut seqs = Vec::new();
                    for group in 0..40u8 {
                        db.begin().expect("begin");
                        db.lock_for_appends(&rooms).expect("locks");
                        // Each node goes through the rooms in its own order.
                        for i in 0..6u8 {
                            let room = rooms[usize::from((i + node) % 3)];
                            let id = MessageId([node, group, i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                            let appended = db.append(room, &nick("ana"), id, "m", 1).expect("appends");
                            seqs.push((room, appended.seq));
                        }
                        if group % 7 == 3 {
                            db.rollback();
                            seqs.truncate(seqs.len() - 6);
                        } else {
                            db.commit().expect("commits");
                        }
                    }
                    seqs
                })
            })
            .collect();
        let mut by_room: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); rooms.len()];
        let mut total = 0;
        for node in nodes {
            for (room, seq) in node.join().expect("the node's writer ran") {
                let index = rooms.iter().position(|r| *r == room).expect("one of the rooms");
                assert!(by_room[index].insert(seq), "seq {seq} given out twice in room {index}");
                total += 1;
            }
        }
        let reader = store.reader();
        for (index, seqs) in by_room.iter().enumerate() {
            let expected: BTreeSet<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, &expected, "room {index} has no gap");
            let row = reader.conversation_by_id(rooms[index]).expect("reads").expect("exists");
            assert_eq!(row.last_seq, seqs.len() as u64);
        }
        assert_eq!(total, 3 * 6 * 34, "every committed append counted");
    }

    #[test]
    fn nodes_starting_together_migrate_the_database_once() {
        let store = Fresh::postgres();
        let start = Arc::new(Barrier::new(4));
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let (settings, start) = (settings(&store), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    PostgresStore::open(&settings, Durability::Full).map(|_| ())
                })
            })
            .collect();
        for node in nodes {
            node.join().expect("ran").expect("every node opens the store");
        }
        let db = store.writer();
        assert_eq!(db.all_conversations().expect("reads").len(), 1, "one lobby");
    }

    #[test]
    fn a_database_of_a_newer_release_is_refused() {
        let store = Fresh::postgres();
        drop(store.writer());
        let mut admin = settings(&store).connect().expect("connects");
        admin.batch_execute("UPDATE palomar_schema SET version = 99").expect("updates");
        let refused = PostgresStore::open(&settings(&store), Durability::Full);
        assert!(matches!(refused, Err(StoreError::Corrupt(why)) if why.contains("newer")));
    }

    #[test]
    fn a_version_3_database_gets_operators_and_room_moderation_and_keeps_its_accounts() {
        let store = Fresh::postgres();
        let ana = {
            let db = PostgresStore::open(&settings(&store), Durability::Full).expect("opens");
            let ana = db.create_account(&nick("ana"), "h", 1).expect("creates").expect("new");
            db.batch(
                "DROP TABLE operators, room_settings, room_roles, room_bans, room_mutes, room_invites, away, read_markers;
                 DROP INDEX messages_by_reference;
                 ALTER TABLE messages DROP COLUMN kind, DROP COLUMN of_seq, DROP COLUMN revision;
                 UPDATE palomar_schema SET version = 3",
            )
            .expect("version 3");
            ana
        };
        let db = PostgresStore::open(&settings(&store), Durability::Full).expect("migrates");
        let version: i32 =
            col(&db.query_one("SELECT version FROM palomar_schema", &[]).expect("reads"), 0).expect("a number");
        assert_eq!(i32::try_from(MIGRATIONS.len()), Ok(version));
        assert_eq!(db.set_operator(&nick("ana"), true).expect("sets"), Some(ana.clone()));
        let room = lobby(&db).id;
        db.set_role(room, ana.id, Role::Owner).expect("sets");
        assert_eq!(db.standing(room, ana.id).expect("reads").role, Role::Owner);
    }

    #[test]
    fn a_database_over_tls_is_reached_only_with_its_certificate_trusted() {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
        let cluster = TestCluster::start_with_tls(&certified.cert.pem(), &certified.signing_key.serialize_pem());
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, certified.cert.pem()).expect("writes the CA");
        let url = cluster.url();

        let trusted = PostgresSettings::parse(&format!("{url}?sslmode=require&sslrootcert={}", ca.display()), None)
            .expect("parses");
        let store = PostgresStore::open(&trusted, Durability::Full).expect("opens over TLS");
        let row = store.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).expect("reads");
        assert!(col::<bool>(&row, 0).expect("a flag"), "the connection is encrypted");

        let unknown = PostgresSettings::parse(&format!("{url}?sslmode=require"), None).expect("parses");
        let refused = PostgresStore::open(&unknown, Durability::Full).err().expect("an unknown certificate is refused");
        let mut said = refused.to_string();
        let mut cause = std::error::Error::source(&refused);
        while let Some(error) = cause {
            said.push_str(&format!(": {error}"));
            cause = error.source();
        }
        assert!(said.contains("certificate"), "{said}");

        let plain = PostgresSettings::parse(&url, None).expect("parses");
        assert!(!plain.uses_tls(), "a database on this machine is reached in the clear unless asked");
        assert!(PostgresStore::open(&plain, Durability::Full).is_err(), "this database takes TLS only");
    }

    #[test]
    fn a_connection_the_database_dropped_is_opened_again() {
        let store = Fresh::postgres();
        let (writer, reader) = (store.writer(), store.reader());
        let conv = lobby(&*writer);
        writer.append(conv.id, &nick("ana"), MessageId([1; 16]), "before", 1).expect("appends");
        let database = store.postgres.as_ref().expect("a test database");
        assert_eq!(database.disconnect_everyone(), 2, "the writer and the reader were connected");
        // The first call learns that the connection is gone; the next one connects again.
        let _ = writer.append(conv.id, &nick("ana"), MessageId([2; 16]), "lost with the connection", 1);
        let _ = reader.conversation_by_id(conv.id);
        let appended = writer.append(conv.id, &nick("ana"), MessageId([3; 16]), "after", 1).expect("reconnects");
        let page = reader.messages_after(&conv, 0, 10).expect("reconnects");
        assert_eq!(page.last().map(|m| (m.seq, m.text.as_str())), Some((appended.seq, "after")));
        assert!(page.iter().map(|m| m.seq).eq(1..=appended.seq), "no gap: {page:?}");
        assert!(writer.append(conv.id, &nick("ana"), MessageId([2; 16]), "retried", 1).is_ok());
    }
}
