//! What a front end and the engine say to each other: the engine's configuration, the [`Command`]s it takes and
//! the [`Event`]s it tells.

use std::path::PathBuf;
use std::time::Duration;

use palomar_proto::{
    Conversation, ConversationInfo, ErrorCode, HistoryPage, Message, MessageId, MessageKind, Nick, Password,
    PresenceState, ReadMarker, RoomAction, RoomChange, RoomListing, RoomName, RoomState, WhoisInfo,
};
use palomar_transport::Fingerprint;
use rustls_pki_types::CertificateDer;

use crate::backoff::Backoff;
use crate::server_address::ServerAddresses;
use crate::state::StateError;

/// What is said when away messages are asked of a server older than protocol version 6.
pub const NO_AWAY_MESSAGES: &str = "this server does not know away messages";

/// What is said when `/whois` is asked of a server older than protocol version 6.
pub const NO_WHOIS: &str = "this server does not know /whois";

/// How the engine decides to trust the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Pin the fingerprint on first use; refuse a different one later.
    FirstUse,
    /// Verify the certificate chain against these CAs.
    Authority(Vec<CertificateDer<'static>>),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The chat's servers, tried in order; the first is the chat's name, under which its pin and the account's
    /// state are kept.
    pub server: ServerAddresses,
    pub nick: Nick,
    pub password: Password,
    /// Where pins, outboxes and cursors live.
    pub home: PathBuf,
    pub trust: Trust,
    /// A room to be a member of, joined on connect if needed.
    pub join: Option<RoomName>,
    /// Ask the front end ([`Event::ConfirmCertificate`]) before pinning a server seen for the first time,
    /// instead of pinning it silently.
    pub confirm_new_server: bool,
    pub backoff: Backoff,
}

/// What a front end asks the engine to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// A message for `to`, or an action, an edit or a deletion there: kept in the outbox until stored.
    Send {
        to: Conversation,
        kind: MessageKind,
        /// The message's text, an edit's new text, or a deletion's reason (may be empty).
        text: String,
    },
    Join {
        room: String,
    },
    Leave {
        room: String,
    },
    Users {
        room: String,
    },
    /// Up to `limit` messages before seq `before`; `None` asks for the newest ones.
    History {
        conversation: Conversation,
        before: Option<u64>,
        limit: u32,
    },
    /// A moderator's action in `room`. Sent only while connected, never kept for later: an action taken long
    /// after it was typed would surprise everyone, the one who typed it first.
    Moderate {
        room: RoomName,
        action: RoomAction,
    },
    /// A page of the server's rooms by name, after `after` (`None`: from the first). Sent only while connected,
    /// like [`Command::Moderate`]: a listing asked for long ago would answer a question nobody is asking any more.
    ListRooms {
        after: Option<RoomName>,
    },
    /// The messages with every word of `query`, in `conversation` or everywhere, older than `before` (the `next`
    /// of an earlier [`Event::Found`]). Sent only while connected, like [`Command::ListRooms`].
    Search {
        query: String,
        conversation: Option<Conversation>,
        before: Option<String>,
    },
    /// Sets the user's away message (empty: back). Sent while connected; given while disconnected, the latest
    /// one is kept and sent on the next connection (an away message is a standing state, not a moment's request).
    /// A server older than version 6 does not know it: [`NO_AWAY_MESSAGES`] is told instead.
    SetAway(String),
    /// What the server may say of `nick`'s account: answered with [`Event::Whois`]. Sent only while connected,
    /// like [`Command::Search`]; [`NO_WHOIS`] against a server older than version 6.
    Whois(Nick),
    /// The user is typing in `conversation`, or stopped. Only ever sent at once: dropped while disconnected and
    /// against a server older than version 6 (a typing notice from the past would be a lie).
    Typing {
        conversation: Conversation,
        typing: bool,
    },
    /// The user has read `conversation` up to `seq`. Dropped like [`Command::Typing`] while disconnected or
    /// against a server older than version 6: the model sends it again when it is connected and still true.
    MarkRead {
        conversation: Conversation,
        seq: u64,
    },
    /// The answer to [`Event::ConfirmCertificate`].
    TrustCertificate {
        accept: bool,
    },
    /// Close the connection and stop the engine.
    Quit,
}

/// What the engine tells its front end.
#[derive(Debug, Clone)]
pub enum Event {
    Connecting {
        /// The address of the list tried now.
        server: String,
        attempt: u32,
    },
    /// First contact with this chat (and `confirm_new_server` is set): trust this certificate? Answer with
    /// [`Command::TrustCertificate`]; nothing is sent to the server before. `server` is the chat's name.
    ConfirmCertificate {
        server: String,
        fingerprint: Fingerprint,
    },
    /// The server's certificate was pinned now, on first use, for the chat named `server` (every node of it).
    Pinned {
        server: String,
        fingerprint: Fingerprint,
    },
    Connected {
        /// The address of the list this connection went to.
        server: String,
        nick: Nick,
        registered: bool,
        conversations: Vec<ConversationInfo>,
        /// The protocol version of this session, as the server's `Welcome` says it: what it may be asked.
        version: u16,
    },
    /// Everything the server held at login has been received (sent once per connection).
    Synced,
    /// The connection ended, or no address of the list took one: the engine waits `retry_in`, then tries again.
    /// Moving on to the next address after a failure is not told this way (a `Connecting` to it is), so this
    /// means the whole chat is out of reach for now.
    Disconnected {
        reason: String,
        /// The address whose connection ended, or the last one tried.
        server: String,
        retry_in: Duration,
        attempt: u32,
        pending: usize,
        /// The server answered and refused the login for now (a lockout, a busy or full server): the address is
        /// right and waiting is the remedy, so a front end that gives up on a first failure waits this one out.
        refused_for_now: bool,
    },
    /// A message was put in the outbox (it will be sent, and resent, until accepted).
    Queued {
        id: MessageId,
        to: Conversation,
        kind: MessageKind,
        text: String,
    },
    /// The server stored one of our messages.
    Accepted {
        id: MessageId,
        conversation: Conversation,
        seq: u64,
        ts: u64,
    },
    Message {
        message: Message,
        own: bool,
    },
    Presence {
        room: RoomName,
        nick: Nick,
        state: PresenceState,
    },
    Users {
        room: RoomName,
        online: Vec<Nick>,
        offline: Vec<Nick>,
    },
    Joined {
        info: ConversationInfo,
    },
    Left {
        room: RoomName,
    },
    /// The conversation no longer exists for us (a direct conversation deleted with the other account); a
    /// conversation of the same name later is a new one.
    Closed {
        conversation: Conversation,
        reason: String,
    },
    History(HistoryPage),
    /// Retention removed messages of this conversation that we had not seen.
    Gap {
        conversation: Conversation,
        complete_from: u64,
    },
    /// The server's store went back in time (it was restored from an older backup): it ends this conversation at
    /// `latest_seq` where we had seen up to `had`. The messages after `latest_seq` that we saw are not on the
    /// server any more, and new messages take their seqs: what we hold past `latest_seq` is dropped.
    Rewound {
        conversation: Conversation,
        latest_seq: u64,
        had: u64,
    },
    /// Something went wrong that does not stop the engine; `id` names a message that was refused for good.
    Error {
        code: Option<ErrorCode>,
        message: String,
        id: Option<MessageId>,
    },
    ServerShuttingDown {
        message: String,
    },
    /// A room's settings and our standing in it: after joining, after login when not the defaults, and whenever
    /// they change.
    RoomState(RoomState),
    /// What a moderator did in a room (`by`; `None` for the server's operator at its console), told to the
    /// room's online members. When it puts us out (kicked, banned), [`Event::Left`] follows.
    RoomEvent {
        room: RoomName,
        by: Option<Nick>,
        change: RoomChange,
    },
    /// `by` invited us to the invite-only `room`: joining it is let in now.
    Invited {
        room: RoomName,
        by: Option<Nick>,
    },
    /// The answer to [`Command::ListRooms`]: the rooms we may see, by name; `more` when there are rooms after
    /// the last.
    Rooms {
        rooms: Vec<RoomListing>,
        more: bool,
    },
    /// The answer to [`Command::Search`], with its query and conversation: the messages found, newest first;
    /// `next`, when there may be older ones, is the `before` of the next page.
    Found {
        query: String,
        conversation: Option<Conversation>,
        hits: Vec<Message>,
        next: Option<String>,
    },
    /// `nick`'s away message (`None`: back): ours (set here or on another device, and at login when one is
    /// set), or a room-mate's. (Version 6.)
    Away {
        nick: Nick,
        message: Option<String>,
    },
    /// The answer to [`Command::Whois`]. (Version 6.)
    Whois(WhoisInfo),
    /// `nick` is typing in `conversation`, or stopped. (Version 6.)
    Typing {
        conversation: Conversation,
        nick: Nick,
        typing: bool,
    },
    /// How far members (we among them) have read conversations: at login, after a member list, and as they
    /// move. (Version 6.)
    ReadMarkers(Vec<ReadMarker>),
    /// The engine stopped and will not reconnect (wrong password, changed certificate, ...).
    Fatal {
        message: String,
        /// The server presented a certificate other than the pinned one; `message` gives both fingerprints
        /// and the command that accepts the new one.
        certificate_changed: bool,
        /// The login was refused: wrong password (or no such account where registration is closed). A front end
        /// that asked for the password may ask again and start anew.
        password_refused: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the client state in {path}: {source}")]
    State { path: PathBuf, source: StateError },
}
