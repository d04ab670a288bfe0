//! What the store takes in and hands out, whichever database holds it: rows, messages, outcomes, errors.

use palomar_proto::{Message, MessageId, MessageKind, Nick, Revision, Role, RoomListing};
use postgres::error::SqlState;

use crate::keys::{Account, AccountId, ConvId, ConvKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("the store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The conversation was deleted (with a removed account) while a request for it was on its way.
    #[error("conversation {0} no longer exists")]
    NoConversation(ConvId),
    #[error("cannot create the store file or make it owner-only: {0}")]
    Io(#[from] std::io::Error),
    /// A statement of the open transaction failed earlier, so the database abandoned the transaction.
    #[error("the transaction was abandoned after an earlier error")]
    Abandoned,
    /// The address of the store is unusable as given.
    #[error("{0}")]
    Address(String),
    /// A search asked to go on from a position this store did not give out.
    #[error("not a search position this server gave: {0:?}")]
    UnknownSearchPosition(String),
}

impl StoreError {
    /// True when the disk is full or read-only: the message was not stored, and retrying later may work.
    pub fn is_disk_problem(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::CannotOpen
            ),
            StoreError::Postgres(e) => e.code().is_some_and(|code| {
                [&SqlState::DISK_FULL, &SqlState::READ_ONLY_SQL_TRANSACTION, &SqlState::IO_ERROR].contains(&code)
            }),
            _ => false,
        }
    }
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

/// What a search looks for: messages whose current text has every one of `words` at the start of one of its
/// words (see [`palomar_proto::search_words`]), in `within` only or in every conversation of the searcher, older
/// than `before` (a [`SearchHit::position`] of an earlier page), at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    pub words: &'a [String],
    pub within: Option<ConvId>,
    pub before: Option<&'a str>,
    pub limit: u32,
}

/// A message a search found, and the position to go on from for the hits after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub message: StoredMessage,
    pub position: String,
}

/// Hits, newest first, and where the next page starts when there may be more: after the last hit, or after the
/// last message looked at when a store bounds how many it looks at for one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub next: Option<String>,
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
    pub kind: MessageKind,
    pub revision: Revision,
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
            kind: self.kind,
            revision: self.revision,
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

/// An account kept from logging in, until `until_ms` (milliseconds since the epoch) or, when `None`, until an
/// operator lifts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub account: Account,
    pub until_ms: Option<u64>,
    pub reason: String,
    pub since_ms: u64,
}

/// One operator action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// A room's settings, as moderators set them (the defaults for a room nobody has set anything in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomSettings {
    /// Empty when none is set.
    pub topic: String,
    pub invite_only: bool,
    pub moderated: bool,
}

/// A ban or a mute: why, by whom (a nickname, or how `palomar audit` names an operator at the console) and since
/// when (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    pub reason: String,
    pub by: String,
    pub since_ms: u64,
}

/// An account's standing in one room, whether or not it is a member (a banned account is not).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Standing {
    pub role: Role,
    pub muted: Option<Sanction>,
    pub banned: Option<Sanction>,
    /// Invited while the room is invite-only, and not joined since (joining uses the invitation up).
    pub invited: bool,
}

impl Standing {
    /// Nothing set: what every account has in a room nobody moderated it in.
    pub fn is_default(&self) -> bool {
        *self == Standing::default()
    }
}

/// One room of an account's with settings or a standing not the defaults, for a login: see
/// [`crate::Store::standings_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomStanding {
    pub conversation: ConvId,
    pub settings: RoomSettings,
    pub standing: Standing,
}

/// Everything moderators set in one room, for `palomar room show`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomModeration {
    pub settings: RoomSettings,
    /// Accounts with a role above [`Role::Member`], by nickname.
    pub roles: Vec<(Nick, Role)>,
    pub bans: Vec<(Nick, Sanction)>,
    pub mutes: Vec<(Nick, Sanction)>,
    pub invited: Vec<Nick>,
}

/// The role that a store's column names, as [`Role::as_str`] wrote it.
pub(crate) fn stored_role(name: &str) -> Result<Role, StoreError> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("room role {name:?}")))
}

/// A ban or a mute from its columns, all null when an outer join found none.
pub(crate) fn stored_sanction(reason: Option<String>, by: Option<String>, since_ms: Option<i64>) -> Option<Sanction> {
    match (reason, by, since_ms) {
        (Some(reason), Some(by), Some(since_ms)) => {
            Some(Sanction { reason, by, since_ms: u64::try_from(since_ms).unwrap_or(0) })
        }
        _ => None,
    }
}

/// `palomar user remove NICK`, waiting for the server's writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalRequest {
    pub id: i64,
    pub nick: Nick,
}

/// One message to append with [`crate::Store::append_all`].
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub conversation: ConvId,
    pub sender: &'a Nick,
    pub id: MessageId,
    pub text: &'a str,
    pub kind: MessageKind,
}

/// The outcome of one append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub ts: u64,
    /// The sender had already sent this id: nothing new was stored.
    pub duplicate: bool,
}

/// How hard a commit works to survive a crash: SQLite's `synchronous` setting of the writing connection, or
/// PostgreSQL's `synchronous_commit` of the writer's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced to disk before it returns: nothing acknowledged is lost, even to a power cut.
    #[default]
    Full,
    /// Commits reach the operating system but are synced only at WAL checkpoints: nothing is lost when the
    /// process dies, but a power cut or an OS crash may lose the last commits. On PostgreSQL, a commit returns
    /// before its WAL is flushed: a crash of the database server itself may lose the last commits too.
    Normal,
}

/// A room of a listing (`Store::room_listing`), from its `conversations.key` and what was counted and set.
pub(crate) fn listed_room(
    key: &str,
    members: i64,
    topic: String,
    invite_only: bool,
) -> Result<RoomListing, StoreError> {
    let Some(ConvKey::Room(room)) = ConvKey::from_column(key) else {
        return Err(StoreError::Corrupt(format!("a room's key {key:?}")));
    };
    Ok(RoomListing { room, members: u32::try_from(members).unwrap_or(u32::MAX), topic, invite_only })
}

/// How both stores keep a [`MessageKind`]: a `kind` column (0 text, 1 action, 2 edit, 3 deletion, 4 reply, 5 reaction
/// added, 6 reaction taken back) and the seq an edit, a deletion, a reply or a reaction refers to in `of_seq` (NULL
/// for the others).
pub(crate) fn kind_columns(kind: MessageKind) -> (i64, Option<i64>) {
    let of = kind.refers_to().map(|of| i64::try_from(of).unwrap_or(i64::MAX));
    let code = match kind {
        MessageKind::Text => KIND_TEXT,
        MessageKind::Action => KIND_ACTION,
        MessageKind::Edit { .. } => KIND_EDIT,
        MessageKind::Deletion { .. } => KIND_DELETION,
        MessageKind::Reply { .. } => KIND_REPLY,
        MessageKind::Reaction { added: true, .. } => KIND_REACTION,
        MessageKind::Reaction { added: false, .. } => KIND_REACTION_TAKEN_BACK,
    };
    (code, of)
}

pub(crate) const KIND_TEXT: i64 = 0;
pub(crate) const KIND_ACTION: i64 = 1;
pub(crate) const KIND_EDIT: i64 = 2;
pub(crate) const KIND_DELETION: i64 = 3;
pub(crate) const KIND_REPLY: i64 = 4;
pub(crate) const KIND_REACTION: i64 = 5;
pub(crate) const KIND_REACTION_TAKEN_BACK: i64 = 6;

/// The [`MessageKind`] of a row's `kind` and `of_seq`.
pub(crate) fn kind_from_columns(code: i64, of: Option<i64>) -> Result<MessageKind, StoreError> {
    let of = || {
        of.and_then(|of| u64::try_from(of).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("a message of kind {code} refers to no seq")))
    };
    match code {
        KIND_TEXT => Ok(MessageKind::Text),
        KIND_ACTION => Ok(MessageKind::Action),
        KIND_EDIT => Ok(MessageKind::Edit { of: of()? }),
        KIND_DELETION => Ok(MessageKind::Deletion { of: of()? }),
        KIND_REPLY => Ok(MessageKind::Reply { of: of()? }),
        KIND_REACTION => Ok(MessageKind::Reaction { of: of()?, added: true }),
        KIND_REACTION_TAKEN_BACK => Ok(MessageKind::Reaction { of: of()?, added: false }),
        _ => Err(StoreError::Corrupt(format!("a message of unknown kind {code}"))),
    }
}

/// What an entry of `kind` with `text` makes of the message it refers to: an edit gives it its text, a deletion
/// blanks it (and its edits and reactions, which [`KINDS_BLANKED_WITH`] lists); a reply or a reaction leaves it
/// as it is.
pub(crate) fn revision_by(kind: MessageKind, text: &str) -> Option<(&str, Revision)> {
    match kind {
        MessageKind::Edit { .. } => Some((text, Revision::Edited)),
        MessageKind::Deletion { .. } => Some(("", Revision::Deleted)),
        _ => None,
    }
}

/// The kinds of entries a deletion blanks along with the message they refer to: its edits and its reactions (its
/// replies are other people's words, kept).
pub(crate) const KINDS_BLANKED_WITH: [i64; 3] = [KIND_EDIT, KIND_REACTION, KIND_REACTION_TAKEN_BACK];

/// How both stores keep a [`Revision`], in a `revision` column.
pub(crate) fn revision_column(revision: Revision) -> i64 {
    match revision {
        Revision::Original => 0,
        Revision::Edited => 1,
        Revision::Deleted => 2,
    }
}

pub(crate) fn revision_from_column(code: i64) -> Result<Revision, StoreError> {
    match code {
        0 => Ok(Revision::Original),
        1 => Ok(Revision::Edited),
        2 => Ok(Revision::Deleted),
        _ => Err(StoreError::Corrupt(format!("a message of unknown revision {code}"))),
    }
}
