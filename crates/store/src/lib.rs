//! # palomar-store: the durable state of a Palomar server
//!
//! Accounts, conversations and their members, the per-conversation message logs with gap-free seqs, the
//! sender-id index that makes retries idempotent, and per-user cursors. One interface, [`Store`], with two
//! databases behind it: an embedded SQLite file (the default: nothing to install) and PostgreSQL (for several
//! server nodes sharing one database). All calls are synchronous; the server decides on which thread they run.
//!
//! # Layout
//! - [`Store`]: what the server asks of a store; [`Location`]: which one, and how to open it.
//! - [`records`]: what a store takes in and hands out, whichever database holds it.
//! - [`sqlite`]: the SQLite schema and statements; `runs`: the shape of its index from seqs to messages.
//! - [`postgres`]: the PostgreSQL schema and statements, and [`postgres::Peers`], what connects server nodes
//!   that share one database.
//! - [`notices`]: what those nodes tell each other ([`Notice`]).
//! - [`keys`]: how accounts and conversations are named in the store ([`AccountId`], [`ConvId`], [`ConvKey`]).
//! - [`password`]: Argon2id hashing of account passwords.
//! - [`copy`]: a whole store copied into another database, checked, in one transaction.
//! - [`sqlite::backup`]: the embedded store's file copied as of one moment while a server writes to it
//!   (`palomar backup`), and the check of such a copy.

pub mod copy;
pub mod keys;
pub mod location;
pub mod notices;
pub mod password;
pub mod postgres;
pub mod records;
mod runs;
pub mod sqlite;
#[cfg(test)]
mod tests;

pub use keys::{Account, AccountId, ConvId, ConvKey};
pub use location::{Location, PostgresSettings};
pub use notices::{Envelope, NodeId, Notice};
pub use records::{
    Appended, AuditEntry, ConvRow, Credentials, DeletedDirect, Durability, NewMessage, RemovalRequest, Removed,
    RoomModeration, RoomSettings, RoomStanding, Sanction, SearchHit, SearchPage, SearchRequest, Standing, StoreError,
    StoredMessage, Suspension,
};

use palomar_proto::{MessageId, MessageKind, Nick, Role, RoomListing, RoomName};

type Result<T> = std::result::Result<T, StoreError>;

/// One connection to a store. The writer's connection groups many writes in one transaction (`begin`, the
/// writes, `commit`), so many messages share one sync; readers' connections read concurrently. A write made
/// outside `begin`/`commit` is its own transaction. A connection is used by one thread at a time.
///
/// Architecture Invariant: seqs are gap-free per conversation, whichever connection or server node appends. A
/// seq is given out only inside the transaction that stores its message, so a transaction rolled back gives
/// none out, and two writers appending to one conversation wait for each other rather than race.
pub trait Store: Send {
    /// Opens a transaction for the writes that follow, until [`Store::commit`] or [`Store::rollback`].
    fn begin(&self) -> Result<()>;

    /// Locks, in the one order every writer follows, the conversations the open transaction is about to append
    /// to: writers of several server nodes appending to the same conversations then wait for each other instead
    /// of deadlocking. A store with one writer has nothing to do.
    fn lock_for_appends(&self, _conversations: &[ConvId]) -> Result<()> {
        Ok(())
    }

    /// Commits the open transaction (with the conversations' moved counters). On an error, call
    /// [`Store::rollback`].
    fn commit(&self) -> Result<()>;

    /// Abandons the open transaction, if any.
    fn rollback(&self);

    /// Tells the other server nodes on this database, when the open transaction commits and only then, what it
    /// did. A store that only one node uses has nobody to tell.
    fn notify(&self, _from: NodeId, _notices: &[Notice]) -> Result<()> {
        Ok(())
    }

    // ---- accounts

    /// The account that has `nick`, with its password hash, for a login.
    fn credentials(&self, nick: &Nick) -> Result<Option<Credentials>>;

    /// The account that has `nick` now.
    fn account(&self, nick: &Nick) -> Result<Option<Account>> {
        Ok(self.credentials(nick)?.map(|credentials| credentials.account))
    }

    /// Creates an account; `None` when the nickname is already taken.
    fn create_account(&self, nick: &Nick, password_hash: &str, now_ms: u64) -> Result<Option<Account>>;

    /// Replaces the password hash of `nick`'s account; false when there is no such account.
    fn set_password_hash(&self, nick: &Nick, password_hash: &str) -> Result<bool>;

    /// Removes the account that has `nick`, with its memberships, its cursors and read markers, its away message,
    /// its suspension, its operator status, its roles, bans, mutes and invitations in rooms, and its direct
    /// conversations (their messages too, for both sides); its messages in rooms stay, under the nickname they were
    /// sent with. Its id is never given out again, so whoever registers the nickname next starts with no past. All
    /// or nothing. `None` when no account has `nick`.
    fn remove_account(&self, nick: &Nick) -> Result<Option<Removed>>;

    /// Every account with its creation time (milliseconds since the epoch), by nickname.
    fn accounts(&self) -> Result<Vec<(Nick, u64)>>;

    /// When `account` was created (milliseconds since the epoch); `None` when it was removed. Messages under its
    /// nickname from before then were a removed account's of the same name.
    fn account_created_ms(&self, account: AccountId) -> Result<Option<u64>>;

    // ---- suspensions and the audit log

    /// Keeps the account of `nick` from logging in until `until_ms` (`None`: until lifted), replacing any
    /// suspension it had. `None` when no account has `nick`.
    fn suspend(&self, nick: &Nick, until_ms: Option<u64>, reason: &str, now_ms: u64) -> Result<Option<Account>>;

    /// Lifts the suspension of `nick`'s account; false when it had none (an expired one counts as one).
    fn unsuspend(&self, nick: &Nick) -> Result<bool>;

    /// The suspensions in force at `now_ms`, by nickname.
    fn suspensions(&self, now_ms: u64) -> Result<Vec<Suspension>>;

    /// The suspension of `account` in force at `now_ms`, if any: asked at every login.
    fn suspension_of(&self, account: AccountId, now_ms: u64) -> Result<Option<Suspension>>;

    /// Adds an entry to the audit log; returns its id.
    fn record_audit(&self, at_ms: u64, actor: &str, action: &str, target: &str, detail: &str) -> Result<i64>;

    /// The newest `limit` entries of the audit log, oldest first.
    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>>;

    /// Entry `id` of the audit log (what another server node's notice names).
    fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>>;

    /// Up to `limit` entries of the audit log after entry `after`, oldest first: what a running server follows to
    /// find what operators did at the console.
    fn audit_entries_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;

    // ---- roles and room moderation

    /// Makes the account of `nick` one of the server's operators (who moderate every room), or not. `None` when
    /// no account has `nick`.
    fn set_operator(&self, nick: &Nick, operator: bool) -> Result<Option<Account>>;

    fn is_operator(&self, account: AccountId) -> Result<bool>;

    /// The server's operators, by nickname.
    fn operators(&self) -> Result<Vec<Nick>>;

    /// The settings of room `conversation` (the defaults when none were set).
    fn room_settings(&self, conversation: ConvId) -> Result<RoomSettings>;

    fn set_room_settings(&self, conversation: ConvId, settings: &RoomSettings) -> Result<()>;

    /// `account`'s standing in room `conversation` (the default when nothing was set).
    fn standing(&self, conversation: ConvId, account: AccountId) -> Result<Standing>;

    /// Gives `account` `role` in room `conversation`; [`Role::Member`] takes any other away. A role outlives
    /// membership (the owner of a room it left is still its owner when it comes back); a ban ends it.
    fn set_role(&self, conversation: ConvId, account: AccountId, role: Role) -> Result<()>;

    /// Mutes `account` in `conversation` (`Some`, replacing an earlier mute) or lifts its mute (`None`); false
    /// when that changed nothing.
    fn set_muted(&self, conversation: ConvId, account: AccountId, mute: Option<&Sanction>) -> Result<bool>;

    /// Bans `account` from `conversation` (`Some`: also ends its membership, read marker, role and invitation) or
    /// lifts its ban (`None`); false when that changed nothing.
    fn set_banned(&self, conversation: ConvId, account: AccountId, ban: Option<&Sanction>) -> Result<bool>;

    /// Invites `account` to `conversation`, or uses its invitation up.
    fn set_invited(&self, conversation: ConvId, account: AccountId, invited: bool) -> Result<()>;

    /// The rooms `account` is a member of whose settings, or whose standing of the account, are not the
    /// defaults: what a login tells the client beside its conversations. One query, whatever the number of rooms.
    fn standings_of(&self, account: AccountId) -> Result<Vec<RoomStanding>>;

    /// Everything moderators set in room `conversation`.
    fn room_moderation(&self, conversation: ConvId) -> Result<RoomModeration>;

    /// Up to `limit` rooms by name, those after `after` (`None`: from the first), with their members counted and
    /// their topics: the open ones, and the invite-only ones `viewer` is a member of (every one when `every`, for
    /// the server's operators). One query, whatever the number of rooms.
    fn room_listing(
        &self,
        viewer: AccountId,
        every: bool,
        after: Option<&RoomName>,
        limit: u32,
    ) -> Result<Vec<RoomListing>>;

    // ---- removals asked of a running server

    /// Asks the server that runs on this store to remove the account of `nick`; returns the request's number,
    /// for [`Store::removal_outcome`]. The server's writer does the removal, so that no session of the account,
    /// and nothing the server holds in memory about its direct conversations, outlives it.
    fn request_removal(&self, nick: &Nick, now_ms: u64) -> Result<i64>;

    /// Requests not done yet, oldest first.
    fn pending_removals(&self) -> Result<Vec<RemovalRequest>>;

    /// Records that request `id` was carried out: `removed` is false when no account had the nickname. A
    /// request already recorded keeps its first outcome.
    fn finish_removal(&self, id: i64, removed: bool, now_ms: u64) -> Result<()>;

    /// `None` while request `id` waits; then whether an account was removed.
    fn removal_outcome(&self, id: i64) -> Result<Option<bool>>;

    // ---- conversations and members

    /// The conversation of `key`, with `last_seq` as this connection's transaction sees it.
    fn conversation(&self, key: &ConvKey) -> Result<Option<ConvRow>>;

    fn conversation_by_id(&self, id: ConvId) -> Result<Option<ConvRow>>;

    /// The conversation of `key`, created if needed. For a room; direct conversations are made by
    /// [`Store::open_direct`].
    fn ensure_conversation(&self, key: &ConvKey) -> Result<ConvRow>;

    /// The direct conversation of `a` and `b`, created with both as members if it is new; `None` when either
    /// account no longer exists. A new one's seqs continue after those of any earlier direct conversation
    /// between the same two nicknames (deleted with a removed account): a client keeps its cursor per nickname,
    /// and must neither take the new messages for ones it has seen nor miss any.
    fn open_direct(&self, a: &Account, b: &Account) -> Result<Option<ConvRow>>;

    /// Every conversation `account` belongs to.
    fn conversations_of(&self, account: AccountId) -> Result<Vec<ConvRow>> {
        Ok(self.memberships_of(account)?.into_iter().map(|(_, row)| row).collect())
    }

    /// Every conversation `account` belongs to, with the account's cursor in it, by conversation id.
    fn memberships_of(&self, account: AccountId) -> Result<Vec<(u64, ConvRow)>>;

    fn is_member(&self, conversation: ConvId, account: AccountId) -> Result<bool>;

    /// How many rooms `account` is a member of.
    fn room_count(&self, account: AccountId) -> Result<u64>;

    /// Every conversation, by id, for rebuilding the server's in-memory view at start.
    fn all_conversations(&self) -> Result<Vec<ConvRow>>;

    /// The nicknames of a conversation's members, sorted.
    fn members(&self, conversation: ConvId) -> Result<Vec<Nick>>;

    /// Makes `account` a member; a new member's cursor starts at `cursor` (so it gets the history after it).
    /// False when it was a member already, or the account no longer exists.
    fn add_member(&self, conversation: ConvId, account: AccountId, cursor: u64) -> Result<bool>;

    /// Ends a membership, its cursor and its read marker; false when `account` was not a member.
    fn remove_member(&self, conversation: ConvId, account: AccountId) -> Result<bool>;

    // ---- the logs

    /// Appends a message, or recognises a retry of one its sender already sent with this `id`. Seqs have no
    /// gaps: inside a transaction the seq is only given out if it commits; outside one, the append commits
    /// by itself. [`StoreError::NoConversation`] when the conversation was deleted: the transaction stays
    /// usable for the rest of its writes.
    ///
    /// An edit replaces the text of the message it refers to and marks it edited; a deletion blanks
    /// that message and its edits and marks them deleted. Whether it may is the caller's to judge
    /// (the message exists, is neither an edit nor a deletion, is not deleted, and the sender may change it).
    fn append_message(&self, message: &NewMessage<'_>, now_ms: u64) -> Result<Appended>;

    /// Appends a message of kind [`MessageKind::Text`], as [`Store::append_message`] does.
    fn append(&self, conversation: ConvId, sender: &Nick, id: MessageId, text: &str, now_ms: u64) -> Result<Appended> {
        self.append_message(&NewMessage { conversation, sender, id, text, kind: MessageKind::Text }, now_ms)
    }

    /// Appends `messages` in order, as many calls of [`Store::append_message`] would: `None` for a message whose
    /// conversation was deleted, the others appended or recognised as retries. A store whose every statement is
    /// a round trip to a server sends them together.
    fn append_all(&self, messages: &[NewMessage<'_>], now_ms: u64) -> Result<Vec<Option<Appended>>> {
        append_each(self, messages, now_ms)
    }

    /// Whether `sender` already sent a message with this `id` that the log still holds (a retry of it is answered
    /// with the first attempt's outcome, not judged again).
    fn sent_before(&self, sender: &Nick, id: MessageId) -> Result<bool>;

    /// Whether `sender`'s latest reaction `emoji` to message `of` of `conversation`, among those sent since
    /// `since_ms` (its account's creation: not a removed account's of the same name), is one added, not taken
    /// back.
    fn has_reacted(&self, conversation: ConvId, of: u64, sender: (&Nick, u64), emoji: &str) -> Result<bool>;

    /// The message with seq `seq`, unless retention removed it (or there is none).
    fn message_at(&self, conv: &ConvRow, seq: u64) -> Result<Option<StoredMessage>> {
        let Some(before) = seq.checked_sub(1) else { return Ok(None) };
        Ok(self.messages_after(conv, before, 1)?.pop().filter(|message| message.seq == seq))
    }

    /// Up to `limit` messages with seq above `after`, in seq order.
    fn messages_after(&self, conv: &ConvRow, after: u64, limit: u32) -> Result<Vec<StoredMessage>>;

    /// Up to `limit` messages with seq below `before`, in seq order (the newest of them, for scrollback).
    fn messages_before(&self, conv: &ConvRow, before: u64, limit: u32) -> Result<Vec<StoredMessage>>;

    /// The messages `search` finds among those of the conversations `account` is a member of: texts, actions and
    /// replies by their current text (an edited one by its latest, a deleted one never), newest first. The
    /// order, and so the positions, are the store's own, stable while the log grows. A store may index new
    /// messages some time after they are stored: call [`Store::index_for_search`] first to find them all.
    fn search(&self, account: AccountId, search: &SearchRequest<'_>) -> Result<SearchPage>;

    /// Indexes for search the messages stored that wait for it, in the open transaction or one of its own. A
    /// store whose index follows every write has nothing to do.
    fn index_for_search(&self) -> Result<()> {
        Ok(())
    }

    /// Keeps only the newest `keep` messages of every conversation; returns how many were removed. Outside a
    /// transaction, in one of its own.
    fn prune(&self, keep: u64) -> Result<usize>;

    // ---- cursors

    /// Moves `account`'s cursor forward to `seq` (never backwards: acks may arrive from several clients), in a
    /// conversation it is still a member of.
    fn advance_cursor(&self, account: AccountId, conversation: ConvId, seq: u64) -> Result<()>;

    /// Moves each `(account, conversation, seq)` cursor forward, as [`Store::advance_cursor`] does one.
    fn advance_cursors(&self, cursors: &[(AccountId, ConvId, u64)]) -> Result<()> {
        cursors.iter().try_for_each(|&(account, conversation, seq)| self.advance_cursor(account, conversation, seq))
    }

    /// `account`'s cursor in `conversation`: the highest seq it acknowledged (0 when none).
    fn cursor(&self, account: AccountId, conversation: ConvId) -> Result<u64>;

    // ---- who is there: away messages and read markers (protocol version 6)

    /// Sets `account`'s away message (`None`: back), kept until changed, across sessions and restarts; removed
    /// with the account.
    fn set_away(&self, account: AccountId, message: Option<&str>, now_ms: u64) -> Result<()>;

    /// `account`'s away message, if it set one.
    fn away_of(&self, account: AccountId) -> Result<Option<String>>;

    /// The members of `conversation` that are away, with their messages, by nickname: what goes with its
    /// member list. One query, whatever the number of members.
    fn away_in(&self, conversation: ConvId) -> Result<Vec<(Nick, String)>>;

    /// Moves each `(account, conversation, seq)` read marker forward to `seq` (never backwards), in a
    /// conversation the account is still a member of (a marker ends with the membership).
    fn advance_read_markers(&self, markers: &[(AccountId, ConvId, u64)]) -> Result<()>;

    /// `account`'s read marker in `conversation` (0 when it marked nothing read there).
    fn read_marker(&self, account: AccountId, conversation: ConvId) -> Result<u64>;

    /// The read markers of the members of `conversation` (those above 0), by nickname.
    fn read_markers_in(&self, conversation: ConvId) -> Result<Vec<(Nick, u64)>>;

    /// What a login tells the user of read markers: its own in each of its conversations, and the other
    /// member's in each of its direct conversations (those above 0), by conversation and nickname.
    fn read_markers_of(&self, account: AccountId) -> Result<Vec<(ConvId, Nick, u64)>>;

    /// Writes a row that holds none of the chat's data, in the open transaction: its commit then shows that the
    /// store takes writes (a readiness check) without changing what clients see.
    fn write_probe(&self) -> Result<()>;
}

/// Appends `messages` one by one with [`Store::append`], as [`Store::append_all`] promises.
fn append_each<S: Store + ?Sized>(
    store: &S,
    messages: &[NewMessage<'_>],
    now_ms: u64,
) -> Result<Vec<Option<Appended>>> {
    messages
        .iter()
        .map(|message| match store.append_message(message, now_ms) {
            Ok(appended) => Ok(Some(appended)),
            Err(StoreError::NoConversation(_)) => Ok(None),
            Err(error) => Err(error),
        })
        .collect()
}
