//! A whole store copied from one database to another (`palomar store copy`): SQLite to PostgreSQL, back, or
//! between two of a kind, so that a server started on the copy carries on as if nothing had happened.
//!
//! This module owns what a copy must get right whichever databases it joins; the SQL of each database is beside
//! its schema (`sqlite/copy.rs`, `postgres/copy.rs`), behind [`Copyable`].
//!
//! - **One moment of the source**: every read is made in one read transaction (`REPEATABLE READ` on
//!   PostgreSQL), so the copy is consistent even if something writes to the source meanwhile.
//! - **All or nothing on the target**: it is emptied, filled and checked in one transaction, committed only once
//!   it matches the source, so a copy that fails leaves the target as it was. A target that holds data is refused
//!   unless [`CopyOptions::replace`] says to empty it (in that same transaction).
//! - **No server at work on either**: a PostgreSQL database with `palomar serve` connections is refused, and the
//!   copy's connection holds the lock a server takes to open the database, so one starting meanwhile waits for
//!   the copy. A data directory's lock (`<data>/lock`) is the caller's to hold: this crate does not know it.
//! - **Ids stay ids**: rows keep their ids, and the counters that keep an id from being given out again (SQLite's
//!   `sqlite_sequence`, PostgreSQL's identity sequences) end at least where the source's were, not merely past
//!   the ids copied, so the id of an account removed last is not given out again either. They are only ever
//!   raised: a PostgreSQL sequence does not roll back, so a copy rolled back leaves it raised, which costs
//!   nothing but unused numbers.
//! - **Streaming**: each table is read and written in pages in key order, messages conversation by conversation
//!   in seq order, so memory does not grow with the store.
//! - **Verified**: as the rows go out each table is counted and hashed in key order, each conversation's messages
//!   too (count, highest seq, and a hash of seq, id, sender, time, text, kind and revision); then the target is read back the same
//!   way inside its transaction. Any difference is an error, and the transaction is rolled back.
//!
//! Not copied as such: SQLite's index of the log (`message_runs`), derived from the messages, is built on the
//! target as they go in; PostgreSQL's `nodes` and `presence` describe the server nodes running now, and none
//! runs during a copy. Account removals that `palomar user remove` asked of a server which stopped before
//! carrying them out are copied with the rest of `account_removals`: the first server on the copy carries them
//! out, as the next one on the source would have. Suspensions are copied as they are, expired ones too, and the
//! audit log keeps its ids. So are the operators and what moderators set in rooms (settings, roles, bans, mutes,
//! invitations), as the tables hold them.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::keys::{ConvId, ConvKey};
use crate::location::Location;
use crate::postgres::PostgresStore;
use crate::records::{ConvRow, StoreError, StoredMessage};
use crate::sqlite::SqliteStore;
use crate::{Result, Store};

/// Rows read or written at a time. A message holds at most 8 KiB of text, so a page of them is at most 8 MiB.
pub(crate) const PAGE: usize = 1_000;

/// How the copy treats a target that already holds a store.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Empty the target first, in the copy's transaction; without it, a target holding data is refused.
    pub replace: bool,
}

/// What the copy is doing, reported after every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the source and writing the target.
    Copying,
    /// Reading the target back to compare it with what was read from the source.
    Verifying,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    /// Rows done in this phase, of `total`.
    pub done: u64,
    pub total: u64,
}

/// The rows of each table of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub accounts: u64,
    pub conversations: u64,
    pub members: u64,
    pub cursors: u64,
    pub direct_seq_floors: u64,
    pub account_removals: u64,
    /// Of `account_removals`, those not carried out yet.
    pub pending_removals: u64,
    pub suspensions: u64,
    pub audit_entries: u64,
    pub operators: u64,
    pub room_settings: u64,
    pub room_roles: u64,
    pub room_bans: u64,
    pub room_mutes: u64,
    pub room_invites: u64,
    pub away: u64,
    pub read_markers: u64,
    pub messages: u64,
}

impl Counts {
    /// Every row, for progress.
    fn rows(&self) -> u64 {
        self.accounts
            + self.conversations
            + self.members
            + self.cursors
            + self.direct_seq_floors
            + self.account_removals
            + self.suspensions
            + self.audit_entries
            + self.operators
            + self.room_settings
            + self.room_roles
            + self.room_bans
            + self.room_mutes
            + self.room_invites
            + self.away
            + self.read_markers
            + self.messages
    }

    /// The tables that hold rows, as "3 accounts, 5 conversations, …".
    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.accounts, "accounts"),
            (self.conversations, "conversations"),
            (self.members, "members"),
            (self.cursors, "cursors"),
            (self.direct_seq_floors, "direct seq floors"),
            (self.account_removals, "account removals"),
            (self.suspensions, "suspensions"),
            (self.audit_entries, "audit log entries"),
            (self.operators, "operators"),
            (self.room_settings, "room settings"),
            (self.room_roles, "room roles"),
            (self.room_bans, "room bans"),
            (self.room_mutes, "room mutes"),
            (self.room_invites, "room invitations"),
            (self.away, "away messages"),
            (self.read_markers, "read markers"),
            (self.messages, "messages"),
        ]
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
        if parts.is_empty() { "nothing".into() } else { parts.join(", ") }
    }
}

/// What a finished copy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySummary {
    pub counts: Counts,
    pub took: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot open the {role} {store}: {}", with_causes(error))]
    Open { role: &'static str, store: String, error: StoreError },
    #[error("there is no store at {0} to copy")]
    NoSource(String),
    #[error("the source and the target are the same store, {0}")]
    SameStore(String),
    #[error(
        "{servers} connection(s) of `palomar serve` are open on {store}: stop its servers first (a copy must be of \
         a store nobody writes to, into one nobody uses)"
    )]
    ServersConnected { store: String, servers: u64 },
    #[error(
        "the target {store} already holds a store ({found}); nothing was copied. To empty it first and lose all \
         of that, copy with --replace"
    )]
    TargetHoldsData { store: String, found: String },
    #[error("the copy does not match the source, so nothing was written: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `error` followed by its causes, each said once: a database error's own words (a refused connection, a database
/// that does not exist) are in its causes, and some causes repeat the error they cause.
fn with_causes(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        let said = error.to_string();
        if !text.ends_with(&said) {
            text = format!("{text}: {said}");
        }
        cause = error.source();
    }
    text
}

/// An account row as stored, password hash included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AccountRecord {
    pub id: i64,
    pub nick: String,
    pub password_hash: String,
    pub created_ms: i64,
}

/// A conversation row as stored: its key as the column holds it, its seq bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConversationRecord {
    pub id: i64,
    pub key: String,
    pub last_seq: i64,
    pub first_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MemberRecord {
    pub conversation: i64,
    pub account: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CursorRecord {
    pub account: i64,
    pub conversation: i64,
    pub seq: i64,
}

/// A `direct_seq_floors` row: where a new direct conversation between two nicknames starts its seqs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FloorRecord {
    pub nicks: String,
    pub last_seq: i64,
}

/// An `account_removals` row, carried out (`done_ms`) or pending.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RemovalRecord {
    pub id: i64,
    pub nick: String,
    pub requested_ms: i64,
    pub done_ms: Option<i64>,
    pub removed: Option<bool>,
}

/// A `suspensions` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SuspensionRecord {
    pub account: i64,
    pub until_ms: Option<i64>,
    pub reason: String,
    pub since_ms: i64,
}

/// An `audit_log` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// An `operators` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OperatorRecord {
    pub account: i64,
}

/// A `room_settings` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RoomSettingsRecord {
    pub conversation: i64,
    pub topic: String,
    pub invite_only: bool,
    pub moderated: bool,
}

/// A `room_roles` row, its role as the column names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RoomRoleRecord {
    pub conversation: i64,
    pub account: i64,
    pub role: String,
}

/// A `room_bans` or `room_mutes` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SanctionRecord {
    pub conversation: i64,
    pub account: i64,
    pub reason: String,
    pub by_actor: String,
    pub since_ms: i64,
}

/// A `room_invites` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct InviteRecord {
    pub conversation: i64,
    pub account: i64,
}

/// An `away` row: an account's away message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AwayRecord {
    pub account: i64,
    pub message: String,
    pub since_ms: i64,
}

/// A `read_markers` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadMarkerRecord {
    pub conversation: i64,
    pub account: i64,
    pub seq: i64,
}

/// The highest id each id-giving table has given out, removed rows included: the next one must be above it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HighWater {
    pub accounts: i64,
    pub conversations: i64,
    pub account_removals: i64,
    pub audit_log: i64,
}

impl HighWater {
    /// Each counter with the table it counts for.
    pub(crate) fn by_table(&self) -> [(&'static str, i64); 4] {
        [
            ("accounts", self.accounts),
            ("conversations", self.conversations),
            ("account_removals", self.account_removals),
            ("audit_log", self.audit_log),
        ]
    }

    fn at_least(&self, other: &HighWater) -> bool {
        self.accounts >= other.accounts
            && self.conversations >= other.conversations
            && self.account_removals >= other.account_removals
            && self.audit_log >= other.audit_log
    }
}

/// A store as a copy reads and writes it: whole tables in key order, page by page ([`PAGE`] rows at most), and
/// the same tables written in bulk inside the target's transaction ([`Store::begin`] to [`Store::commit`]).
/// Messages are read through [`Store::messages_after`], the server's own read.
pub(crate) trait Copyable: Store {
    /// Names the database itself rather than the address it was reached by, so that one store under two names
    /// is recognised.
    fn identity(&self) -> Result<String>;

    /// Makes any server that starts on this store wait until this connection closes, and says how many server
    /// connections are open on it now. A store whose lock is a file outside the database (SQLite's data
    /// directory) leaves that to the caller and says 0.
    fn hold(&self) -> Result<u64>;

    /// Opens the read transaction that every read of the copy is made in.
    fn begin_snapshot(&self) -> Result<()>;

    fn counts(&self) -> Result<Counts>;

    /// Conversations other than a `#lobby` that never had a message: the one a new store is created with.
    fn conversations_in_use(&self) -> Result<u64>;

    fn high_water(&self) -> Result<HighWater>;

    fn accounts_after(&self, id: i64) -> Result<Vec<AccountRecord>>;
    fn conversations_after(&self, id: i64) -> Result<Vec<ConversationRecord>>;
    fn members_after(&self, key: (i64, i64)) -> Result<Vec<MemberRecord>>;
    fn cursors_after(&self, key: (i64, i64)) -> Result<Vec<CursorRecord>>;
    /// In byte order of `nicks`, whatever the database's collation.
    fn floors_after(&self, nicks: &str) -> Result<Vec<FloorRecord>>;
    fn removals_after(&self, id: i64) -> Result<Vec<RemovalRecord>>;
    fn suspensions_after(&self, account: i64) -> Result<Vec<SuspensionRecord>>;
    fn audit_after(&self, id: i64) -> Result<Vec<AuditRecord>>;
    fn operators_after(&self, account: i64) -> Result<Vec<OperatorRecord>>;
    fn room_settings_after(&self, conversation: i64) -> Result<Vec<RoomSettingsRecord>>;
    fn room_roles_after(&self, key: (i64, i64)) -> Result<Vec<RoomRoleRecord>>;
    fn room_bans_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>>;
    fn room_mutes_after(&self, key: (i64, i64)) -> Result<Vec<SanctionRecord>>;
    fn room_invites_after(&self, key: (i64, i64)) -> Result<Vec<InviteRecord>>;
    fn away_after(&self, account: i64) -> Result<Vec<AwayRecord>>;
    fn read_markers_after(&self, key: (i64, i64)) -> Result<Vec<ReadMarkerRecord>>;

    /// Deletes every row of every table (and whatever is derived from them), in the open transaction.
    fn empty(&self) -> Result<()>;

    fn insert_accounts(&self, rows: &[AccountRecord]) -> Result<()>;
    fn insert_conversations(&self, rows: &[ConversationRecord]) -> Result<()>;
    fn insert_members(&self, rows: &[MemberRecord]) -> Result<()>;
    fn insert_cursors(&self, rows: &[CursorRecord]) -> Result<()>;
    fn insert_floors(&self, rows: &[FloorRecord]) -> Result<()>;
    fn insert_removals(&self, rows: &[RemovalRecord]) -> Result<()>;
    fn insert_suspensions(&self, rows: &[SuspensionRecord]) -> Result<()>;
    fn insert_audit(&self, rows: &[AuditRecord]) -> Result<()>;
    fn insert_operators(&self, rows: &[OperatorRecord]) -> Result<()>;
    fn insert_room_settings(&self, rows: &[RoomSettingsRecord]) -> Result<()>;
    fn insert_room_roles(&self, rows: &[RoomRoleRecord]) -> Result<()>;
    fn insert_room_bans(&self, rows: &[SanctionRecord]) -> Result<()>;
    fn insert_room_mutes(&self, rows: &[SanctionRecord]) -> Result<()>;
    fn insert_room_invites(&self, rows: &[InviteRecord]) -> Result<()>;
    fn insert_away(&self, rows: &[AwayRecord]) -> Result<()>;
    fn insert_read_markers(&self, rows: &[ReadMarkerRecord]) -> Result<()>;
    /// Messages of one conversation, in seq order, after those already inserted into it.
    fn insert_messages(&self, conversation: ConvId, messages: &[StoredMessage]) -> Result<()>;

    /// Raises the id counters to at least `high`, and finishes whatever is derived from the rows inserted.
    fn finish(&self, high: &HighWater) -> Result<()>;
}

/// Copies the store at `from` into the one at `to`, reporting each page to `progress`. The target's schema is
/// created or migrated as a server's start would; so is the source's, which must exist. A SQLite store's data
/// directory lock is the caller's to hold, on both sides (see the module's documentation).
pub fn copy(
    from: &Location,
    to: &Location,
    options: CopyOptions,
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<CopySummary, CopyError> {
    let started = Instant::now();
    let open_error = |role, store: &Location, error| CopyError::Open { role, store: store.to_string(), error };
    let source = open_source(from).map_err(|error| open_error("source", from, error))?.ok_or_else(|| {
        CopyError::NoSource(match from {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(settings) => format!("{settings} (the database holds no Palomar tables)"),
        })
    })?;
    let target = open(to).map_err(|error| open_error("target", to, error))?;
    // Before any lock: two connections to one database would wait for each other's.
    if source.identity()? == target.identity()? {
        return Err(CopyError::SameStore(to.to_string()));
    }
    for (store, location) in [(&source, from), (&target, to)] {
        let servers = store.hold()?;
        if servers > 0 {
            return Err(CopyError::ServersConnected { store: location.to_string(), servers });
        }
    }
    source.begin_snapshot()?;
    let copied = copy_snapshot(&*source, &*target, to, options, progress);
    source.rollback();
    Ok(CopySummary { counts: copied?, took: started.elapsed() })
}

/// The source's writer connection, which migrates it to this release's schema as a server's start would; `None`
/// when there is no store there (a copy never creates one at its source).
fn open_source(location: &Location) -> Result<Option<Box<dyn Copyable>>> {
    Ok(match location {
        Location::Sqlite(path) if !path.exists() => None,
        Location::Sqlite(path) => Some(Box::new(SqliteStore::open(path)?)),
        Location::Postgres(settings) => {
            PostgresStore::open_existing(settings)?.map(|store| Box::new(store) as Box<dyn Copyable>)
        }
    })
}

/// The target's writer connection, creating or migrating its schema.
fn open(location: &Location) -> Result<Box<dyn Copyable>> {
    Ok(match location {
        Location::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        Location::Postgres(settings) => Box::new(PostgresStore::open(settings, crate::Durability::Full)?),
    })
}

/// The copy proper, in the source's snapshot: the target's one transaction, committed only once verified.
fn copy_snapshot(
    source: &dyn Copyable,
    target: &dyn Copyable,
    to: &Location,
    options: CopyOptions,
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<Counts, CopyError> {
    let counts = source.counts()?;
    let high = source.high_water()?;
    target.begin()?;
    let result = (|| {
        let found = target.counts()?;
        // The empty `#lobby` that a new store is created with is no data: a server may have opened it once.
        let holds_data = found.rows() - found.conversations + target.conversations_in_use()? > 0;
        if holds_data && !options.replace {
            return Err(CopyError::TargetHoldsData { store: to.to_string(), found: found.describe() });
        }
        target.empty()?;
        let sent = Walk::run(source, Some(target), Phase::Copying, counts.rows(), progress)?;
        target.finish(&high)?;
        // Checked inside the transaction, so that a copy that does not match is never committed.
        let written = target.counts()?;
        let target_high = target.high_water()?;
        let read_back = Walk::run(target, None, Phase::Verifying, written.rows(), progress)?;
        compare(&counts, &written, &sent, &read_back)?;
        if !target_high.at_least(&high) {
            return Err(CopyError::Mismatch(format!(
                "the target's id counters {target_high:?} are below the source's {high:?}"
            )));
        }
        target.commit()?;
        Ok(counts)
    })();
    if result.is_err() {
        target.rollback();
    }
    result
}

/// A row that a copy pages through by key and hashes.
trait Record: Hash {
    type Key;
    /// Below every key.
    const FIRST: Self::Key;
    fn key(&self) -> Self::Key;
}

impl Record for AccountRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.id
    }
}

impl Record for MemberRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.conversation, self.account)
    }
}

impl Record for CursorRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.account, self.conversation)
    }
}

impl Record for FloorRecord {
    type Key = String;
    const FIRST: String = String::new();
    fn key(&self) -> String {
        self.nicks.clone()
    }
}

impl Record for RemovalRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.id
    }
}

impl Record for SuspensionRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.account
    }
}

impl Record for AuditRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.id
    }
}

impl Record for OperatorRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.account
    }
}

impl Record for RoomSettingsRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.conversation
    }
}

impl Record for RoomRoleRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.conversation, self.account)
    }
}

impl Record for SanctionRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.conversation, self.account)
    }
}

impl Record for InviteRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.conversation, self.account)
    }
}

impl Record for AwayRecord {
    type Key = i64;
    const FIRST: i64 = i64::MIN;
    fn key(&self) -> i64 {
        self.account
    }
}

impl Record for ReadMarkerRecord {
    type Key = (i64, i64);
    const FIRST: (i64, i64) = (i64::MIN, i64::MIN);
    fn key(&self) -> (i64, i64) {
        (self.conversation, self.account)
    }
}

/// A table's rows, counted and hashed in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableDigest {
    name: &'static str,
    rows: u64,
    hash: u64,
}

/// A conversation as the verification compares it: its row, and its messages counted and hashed in seq order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConvDigest {
    id: i64,
    last_seq: i64,
    first_seq: i64,
    messages: u64,
    max_seq: u64,
    hash: u64,
}

/// What one side held, table by table and conversation by conversation. Both sides are hashed by this process
/// with [`DefaultHasher::new`], which is the same function for every instance, so equal rows hash equal.
#[derive(Debug, Default, PartialEq, Eq)]
struct Digest {
    tables: Vec<TableDigest>,
    conversations: Vec<ConvDigest>,
}

/// One pass over every table of a store (`from`), in key order: writing each page into `into` when copying,
/// and digesting it.
struct Walk<'a> {
    from: &'a dyn Copyable,
    into: Option<&'a dyn Copyable>,
    digest: Digest,
    progress: &'a mut dyn FnMut(Progress),
    phase: Phase,
    done: u64,
    total: u64,
}

impl<'a> Walk<'a> {
    fn run(
        from: &'a dyn Copyable,
        into: Option<&'a dyn Copyable>,
        phase: Phase,
        total: u64,
        progress: &'a mut dyn FnMut(Progress),
    ) -> Result<Digest> {
        let mut walk = Walk { from, into, digest: Digest::default(), progress, phase, done: 0, total };
        walk.advance(0);
        walk.table::<AccountRecord>(
            "accounts",
            |from, after| from.accounts_after(*after),
            |into, rows| into.insert_accounts(rows),
        )?;
        walk.conversations()?;
        walk.table::<MemberRecord>(
            "members",
            |from, after| from.members_after(*after),
            |into, rows| into.insert_members(rows),
        )?;
        walk.table::<CursorRecord>(
            "cursors",
            |from, after| from.cursors_after(*after),
            |into, rows| into.insert_cursors(rows),
        )?;
        walk.table::<FloorRecord>(
            "direct_seq_floors",
            |from, after| from.floors_after(after),
            |into, rows| into.insert_floors(rows),
        )?;
        walk.table::<RemovalRecord>(
            "account_removals",
            |from, after| from.removals_after(*after),
            |into, rows| into.insert_removals(rows),
        )?;
        walk.table::<SuspensionRecord>(
            "suspensions",
            |from, after| from.suspensions_after(*after),
            |into, rows| into.insert_suspensions(rows),
        )?;
        walk.table::<AuditRecord>(
            "audit_log",
            |from, after| from.audit_after(*after),
            |into, rows| into.insert_audit(rows),
        )?;
        walk.table::<OperatorRecord>(
            "operators",
            |from, after| from.operators_after(*after),
            |into, rows| into.insert_operators(rows),
        )?;
        walk.table::<RoomSettingsRecord>(
            "room_settings",
            |from, after| from.room_settings_after(*after),
            |into, rows| into.insert_room_settings(rows),
        )?;
        walk.table::<RoomRoleRecord>(
            "room_roles",
            |from, after| from.room_roles_after(*after),
            |into, rows| into.insert_room_roles(rows),
        )?;
        walk.table::<SanctionRecord>(
            "room_bans",
            |from, after| from.room_bans_after(*after),
            |into, rows| into.insert_room_bans(rows),
        )?;
        walk.table::<SanctionRecord>(
            "room_mutes",
            |from, after| from.room_mutes_after(*after),
            |into, rows| into.insert_room_mutes(rows),
        )?;
        walk.table::<InviteRecord>(
            "room_invites",
            |from, after| from.room_invites_after(*after),
            |into, rows| into.insert_room_invites(rows),
        )?;
        walk.table::<AwayRecord>("away", |from, after| from.away_after(*after), |into, rows| into.insert_away(rows))?;
        walk.table::<ReadMarkerRecord>(
            "read_markers",
            |from, after| from.read_markers_after(*after),
            |into, rows| into.insert_read_markers(rows),
        )?;
        Ok(walk.digest)
    }

    fn advance(&mut self, rows: usize) {
        self.done += rows as u64;
        (self.progress)(Progress { phase: self.phase, done: self.done, total: self.total });
    }

    fn table<R: Record>(
        &mut self,
        name: &'static str,
        read: impl Fn(&dyn Copyable, &R::Key) -> Result<Vec<R>>,
        write: impl Fn(&dyn Copyable, &[R]) -> Result<()>,
    ) -> Result<()> {
        let mut after = R::FIRST;
        let mut digest = TableDigest { name, rows: 0, hash: 0 };
        let mut hasher = DefaultHasher::new();
        loop {
            let page = read(self.from, &after)?;
            let Some(last) = page.last() else { break };
            after = last.key();
            if let Some(into) = self.into {
                write(into, &page)?;
            }
            page.iter().for_each(|row| row.hash(&mut hasher));
            digest.rows += page.len() as u64;
            self.advance(page.len());
            if page.len() < PAGE {
                break;
            }
        }
        digest.hash = hasher.finish();
        self.digest.tables.push(digest);
        Ok(())
    }

    /// The conversations, each followed by its messages.
    fn conversations(&mut self) -> Result<()> {
        let mut after = i64::MIN;
        let mut digest = TableDigest { name: "conversations", rows: 0, hash: 0 };
        let mut hasher = DefaultHasher::new();
        loop {
            let page = self.from.conversations_after(after)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            if let Some(into) = self.into {
                into.insert_conversations(&page)?;
            }
            page.iter().for_each(|row| row.hash(&mut hasher));
            digest.rows += page.len() as u64;
            self.advance(page.len());
            for conversation in &page {
                self.messages(conversation)?;
            }
            if page.len() < PAGE {
                break;
            }
        }
        digest.hash = hasher.finish();
        self.digest.tables.push(digest);
        Ok(())
    }

    fn messages(&mut self, record: &ConversationRecord) -> Result<()> {
        let key = ConvKey::from_column(&record.key)
            .ok_or_else(|| StoreError::Corrupt(format!("conversation key {:?}", record.key)))?;
        let conversation = ConvRow {
            id: ConvId(record.id),
            key,
            last_seq: u64::try_from(record.last_seq).unwrap_or(0),
            first_seq: u64::try_from(record.first_seq).unwrap_or(0),
        };
        let mut digest = ConvDigest {
            id: record.id,
            last_seq: record.last_seq,
            first_seq: record.first_seq,
            messages: 0,
            max_seq: 0,
            hash: 0,
        };
        let mut hasher = DefaultHasher::new();
        let mut after = 0;
        loop {
            let page = self.from.messages_after(&conversation, after, PAGE as u32)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            if let Some(into) = self.into {
                into.insert_messages(conversation.id, &page)?;
            }
            for message in &page {
                (
                    message.seq,
                    message.id,
                    message.from.as_str(),
                    message.ts,
                    &message.text,
                    message.kind,
                    message.revision,
                )
                    .hash(&mut hasher);
            }
            digest.messages += page.len() as u64;
            digest.max_seq = after;
            self.advance(page.len());
            if page.len() < PAGE {
                break;
            }
        }
        digest.hash = hasher.finish();
        self.digest.conversations.push(digest);
        Ok(())
    }
}

/// Most differences named in a mismatch error; more would bury the first.
const DIFFERENCES_SHOWN: usize = 5;

/// Compares the source's counts and what was read from it with the target's counts and what was read back.
fn compare(source: &Counts, target: &Counts, sent: &Digest, read_back: &Digest) -> std::result::Result<(), CopyError> {
    let mut differences = Vec::new();
    if source != target {
        differences.push(format!("the source holds {}, the copy {}", source.describe(), target.describe()));
    }
    for (a, b) in sent.tables.iter().zip(&read_back.tables) {
        if a != b {
            differences.push(format!("table {}: {} rows went out, {} came back, not the same", a.name, a.rows, b.rows));
        }
    }
    if sent.conversations.len() != read_back.conversations.len() {
        differences.push(format!(
            "{} conversations went out, {} came back",
            sent.conversations.len(),
            read_back.conversations.len()
        ));
    }
    for (a, b) in sent.conversations.iter().zip(&read_back.conversations).filter(|(a, b)| a != b) {
        differences.push(format!(
            "conversation {}: {} messages up to seq {} (last seq {}) went out, {} up to seq {} (last seq {}) came \
             back{}",
            a.id,
            a.messages,
            a.max_seq,
            a.last_seq,
            b.messages,
            b.max_seq,
            b.last_seq,
            if (a.messages, a.max_seq) == (b.messages, b.max_seq) { ", not the same" } else { "" }
        ));
    }
    if differences.is_empty() {
        return Ok(());
    }
    let more = differences.len().saturating_sub(DIFFERENCES_SHOWN);
    differences.truncate(DIFFERENCES_SHOWN);
    if more > 0 {
        differences.push(format!("and {more} more"));
    }
    Err(CopyError::Mismatch(differences.join("; ")))
}

#[cfg(test)]
mod tests;
