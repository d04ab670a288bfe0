//! The payloads carried in frames: what a client may say ([`ClientMsg`]) and what the server may say
//! ([`ServerMsg`]), with their postcard encoding.
//!
//! Variants are only ever appended, never reordered or removed: postcard encodes a variant by its index.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::awareness::{ReadMarker, WhoisInfo};
use crate::json::to_json;
use crate::moderation::{RoomAction, RoomChange, RoomListing, RoomState};
use crate::names::{Conversation, Nick, RoomName};

/// Milliseconds since the Unix epoch by the system clock: the unit of every timestamp in the protocol (0 for a
/// clock set before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The sender's own identifier of a message, chosen before the first attempt to send it, so that a retry
/// is recognised as the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

/// The binary form of a [`MessageId`]: its 16 bytes as they are (what postcard has always written).
#[derive(Serialize, Deserialize)]
#[serde(rename = "MessageId")]
struct MessageIdBytes([u8; 16]);

// In a human-readable encoding (the browser's JSON) an id is its 32 hex digits, as people and logs see it,
// rather than an array of 16 numbers.
impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            MessageIdBytes(self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let hex = String::deserialize(deserializer)?;
            MessageId::from_hex(&hex).ok_or_else(|| serde::de::Error::custom("a message id is 32 hex digits"))
        } else {
            MessageIdBytes::deserialize(deserializer).map(|bytes| MessageId(bytes.0))
        }
    }
}

impl MessageId {
    /// An id that sorts by creation time, like a UUIDv7: the milliseconds since the epoch in the first 6 bytes
    /// (big-endian), then `random`. Servers index ids, and ids that arrive in increasing order go to the end of
    /// the index instead of all over it.
    pub fn time_ordered(unix_ms: u64, random: [u8; 10]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&random);
        MessageId(bytes)
    }

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(32);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        hex
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        // Digits only: `from_str_radix` alone would also take a sign.
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(MessageId(bytes))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where the client stands in one conversation: the highest seq it has received without a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub conversation: Conversation,
    pub seq: u64,
}

/// A password on its way to the server. It travels as a plain string (inside TLS); its `Debug` never shows
/// it, so no log line or error built from a message can.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password(password.to_owned())
    }
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First frame of every connection. `version` comes first so any server can read it.
    Hello {
        version: u16,
        nick: String,
        password: Password,
        positions: Vec<Position>,
    },
    /// A message for a conversation; `id` is the sender's, reused on every retry.
    Send {
        id: MessageId,
        to: Conversation,
        text: String,
    },
    /// Everything up to and including `seq` in `conversation` has been received (cumulative).
    Ack {
        conversation: Conversation,
        seq: u64,
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
    /// Scrollback: up to `limit` messages with seq below `before`, oldest first.
    History {
        conversation: Conversation,
        before: u64,
        limit: u32,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Bye,
    /// A moderator's action in a room (protocol version 2).
    Moderate {
        room: String,
        action: RoomAction,
    },
    /// The server's rooms by name, after `after` (`""`: from the first), at most `limit` of them (version 2).
    ListRooms {
        after: String,
        limit: u32,
    },
    /// A log entry of any kind: an action, an edit or a deletion of an earlier message (`Send` is a `Post` of
    /// kind `Text`). Answered like `Send`. (Version 3.)
    Post {
        id: MessageId,
        to: Conversation,
        kind: MessageKind,
        text: String,
    },
    /// The messages whose current text has every word of `query` (each as the start of a word), in the
    /// conversations the user is in, or only in `conversation`; newest first, at most `limit`, older than the
    /// position `before` that an earlier `Found` gave as its `next`. (Version 5.)
    Search {
        query: String,
        conversation: Option<Conversation>,
        before: Option<String>,
        limit: u32,
    },
    /// Sets the user's away message, kept until changed (an empty one: back). Answered with `Away` to every
    /// session of the user. (Version 6.)
    SetAway {
        message: String,
    },
    /// What anyone may know of the account of `nick`: answered with `Whois`. (Version 6.)
    Whois {
        nick: String,
    },
    /// The user is typing in `conversation` (`typing`), or stopped without sending. Not stored; not answered.
    /// (Version 6.)
    Typing {
        conversation: Conversation,
        typing: bool,
    },
    /// The user has read `conversation` up to `seq`: its marker moves there (never back). (Version 6.)
    MarkRead {
        conversation: Conversation,
        seq: u64,
    },
}

/// What a log entry is (protocol version 3; every entry of an older version is `Text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// Something said.
    Text,
    /// Something done, `/me waves`: shown as "* ana waves".
    Action,
    /// The author's new text for its message `of` (a `Text` or an `Action` of the same conversation).
    Edit { of: u64 },
    /// Message `of` deleted, by its author or a moderator of the room; the entry's text is the reason (may be
    /// empty). The deleted message, its edits and its reactions are kept, blanked, so seqs stay gap-free.
    Deletion { of: u64 },
    /// Something said in answer to message `of` (a `Text`, an `Action` or a `Reply`), which readers quote.
    /// (Version 4.)
    Reply { of: u64 },
    /// The sender's reaction to message `of` (a `Text`, an `Action` or a `Reply`), one of [`REACTIONS`] in the
    /// entry's text: `added`, or taken back. Readers count them per message and show no line for them.
    /// (Version 4.)
    Reaction { of: u64, added: bool },
}

impl MessageKind {
    /// The message an edit, a deletion, a reply or a reaction refers to.
    pub fn refers_to(self) -> Option<u64> {
        match self {
            MessageKind::Text | MessageKind::Action => None,
            MessageKind::Edit { of }
            | MessageKind::Deletion { of }
            | MessageKind::Reply { of }
            | MessageKind::Reaction { of, .. } => Some(of),
        }
    }

    /// Whether entries of this kind are messages of their own (what a reply, an edit, a deletion or a reaction
    /// may refer to), rather than changes to another.
    pub fn is_message(self) -> bool {
        matches!(self, MessageKind::Text | MessageKind::Action | MessageKind::Reply { .. })
    }

    /// Whether readers of protocol `version` know this kind.
    fn known_in(self, version: u16) -> bool {
        match self {
            MessageKind::Reply { .. } | MessageKind::Reaction { .. } => version >= REPLIES_VERSION,
            _ => version >= KINDS_VERSION,
        }
    }
}

/// The reactions there are, each with the names commands know it by. A small fixed set, like the quick
/// reactions of Slack or Element: counts stay readable and every client can draw them.
pub const REACTIONS: [(&str, &str); 8] = [
    ("\u{1f44d}", "+1"),
    ("\u{1f44e}", "-1"),
    ("\u{2764}\u{fe0f}", "heart"),
    ("\u{1f602}", "joy"),
    ("\u{1f62e}", "open_mouth"),
    ("\u{1f622}", "cry"),
    ("\u{1f389}", "tada"),
    ("\u{1f440}", "eyes"),
];

/// The reaction `typed` stands for: the emoji itself (a heart with or without its emoji presentation selector),
/// or its name, with or without colons (`+1`, `:tada:`).
pub fn reaction_named(typed: &str) -> Option<&'static str> {
    let typed = typed.trim();
    let name = typed.strip_prefix(':').and_then(|rest| rest.strip_suffix(':')).unwrap_or(typed);
    REACTIONS
        .iter()
        .find(|(emoji, known)| *emoji == typed || *known == name || emoji.trim_end_matches('\u{fe0f}') == typed)
        .map(|(emoji, _)| *emoji)
}

/// What became of a log entry after it was stored (protocol version 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Revision {
    /// As it was sent.
    Original,
    /// Edited: `text` is its latest version.
    Edited,
    /// Deleted (the message, or the message an edit belongs to): `text` is empty.
    Deleted,
}

/// One message of a conversation's log, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub conversation: Conversation,
    pub seq: u64,
    pub id: MessageId,
    pub from: Nick,
    /// Milliseconds since the Unix epoch, when the server stored it.
    pub ts: u64,
    pub text: String,
    /// (Version 3.)
    pub kind: MessageKind,
    /// (Version 3.)
    pub revision: Revision,
}

impl Message {
    /// The text a reader that does not know this message's kind (version 1 or 2: no kinds at all) is given in
    /// place of `text`.
    pub fn legacy_text(&self) -> Cow<'_, str> {
        match (self.revision, self.kind) {
            (Revision::Deleted, _) => Cow::Borrowed("(deleted)"),
            (_, MessageKind::Reply { of }) => Cow::Owned(format!("(reply to #{of}) {}", self.text)),
            (_, MessageKind::Reaction { of, added: true }) => Cow::Owned(format!("(reacted {} to #{of})", self.text)),
            (_, MessageKind::Reaction { of, added: false }) => {
                Cow::Owned(format!("(took back {} from #{of})", self.text))
            }
            (_, MessageKind::Text) => Cow::Borrowed(&self.text),
            (_, MessageKind::Action) => Cow::Owned(format!("/me {}", self.text)),
            (_, MessageKind::Edit { .. }) => Cow::Owned(format!("(edited) {}", self.text)),
            (_, MessageKind::Deletion { .. }) if self.text.is_empty() => Cow::Borrowed("(deleted a message)"),
            (_, MessageKind::Deletion { .. }) => Cow::Owned(format!("(deleted a message: {})", self.text)),
        }
    }
}

/// A [`Message`] as versions 1 and 2 encode it: no kind, no revision, and [`Message::legacy_text`].
#[derive(Debug, Serialize, Deserialize)]
struct LegacyMessage {
    conversation: Conversation,
    seq: u64,
    id: MessageId,
    from: Nick,
    ts: u64,
    text: String,
}

impl LegacyMessage {
    fn of(message: &Message) -> Self {
        LegacyMessage {
            conversation: message.conversation.clone(),
            seq: message.seq,
            id: message.id,
            from: message.from.clone(),
            ts: message.ts,
            text: message.legacy_text().into_owned(),
        }
    }
}

/// The frames that versions 1 and 2 encode otherwise, in their JSON form (PROTOCOL.md section 15).
#[derive(Serialize)]
enum LegacyFrame {
    Messages(Vec<LegacyMessage>),
    History { conversation: Conversation, messages: Vec<LegacyMessage>, complete_from: u64 },
}

/// `message` encoded for a reader of protocol `version`, to go into [`messages_payload`]: a version 3 reader
/// gets a kind it does not know as a `Text` of [`Message::legacy_text`].
pub fn encode_message(message: &Message, version: u16) -> Vec<u8> {
    if version < KINDS_VERSION {
        encode(&LegacyMessage::of(message))
    } else if message.kind.known_in(version) {
        encode(message)
    } else {
        encode(&message.as_known_in(version))
    }
}

impl Message {
    /// This message as a reader of protocol `version` (3 or later) can decode it.
    fn as_known_in(&self, version: u16) -> Cow<'_, Message> {
        if self.kind.known_in(version) {
            return Cow::Borrowed(self);
        }
        // A deleted message's text is blank for every reader that knows revisions.
        let text = if self.revision == Revision::Deleted { String::new() } else { self.legacy_text().into_owned() };
        Cow::Owned(Message { text, kind: MessageKind::Text, ..self.clone() })
    }
}

/// The form in which readers of a protocol version are sent messages: readers of one form are sent the same
/// bytes, so a room's message is encoded once per form, not once per reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageForm {
    /// Versions 1 and 2: no kinds.
    Plain,
    /// Version 3: texts, actions, edits and deletions.
    Kinds,
    /// Version 4: every kind.
    Replies,
}

impl MessageForm {
    pub const ALL: [MessageForm; 3] = [MessageForm::Plain, MessageForm::Kinds, MessageForm::Replies];

    pub fn of_version(version: u16) -> Self {
        if version >= REPLIES_VERSION {
            MessageForm::Replies
        } else if version >= KINDS_VERSION {
            MessageForm::Kinds
        } else {
            MessageForm::Plain
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The payload of `ServerMsg::History(page)` for a reader of protocol `version`.
pub fn history_payload(page: &HistoryPage, version: u16) -> Vec<u8> {
    if version >= REPLIES_VERSION {
        return encode(&ServerMsg::History(page.clone()));
    }
    if version >= KINDS_VERSION {
        let messages = page.messages.iter().map(|message| message.as_known_in(version).into_owned()).collect();
        return encode(&ServerMsg::History(HistoryPage { messages, ..page.clone() }));
    }
    let messages: Vec<LegacyMessage> = page.messages.iter().map(LegacyMessage::of).collect();
    let mut payload = vec![HISTORY_VARIANT];
    payload.extend(encode(&(&page.conversation, messages, page.complete_from)));
    payload
}

/// A payload made for a reader of protocol `version` ([`encode`] of a [`ServerMsg`], [`messages_payload`] of
/// [`encode_message`]s, or [`history_payload`]) as that reader's JSON, for a browser (PROTOCOL.md section 15).
pub fn payload_json(payload: &[u8], version: u16) -> Result<String, DecodeError> {
    let legacy = version < KINDS_VERSION;
    match payload.split_first() {
        Some((&MESSAGES_VARIANT, body)) if legacy => Ok(to_json(&LegacyFrame::Messages(decode(body)?))),
        Some((&HISTORY_VARIANT, body)) if legacy => {
            let (conversation, messages, complete_from) = decode(body)?;
            Ok(to_json(&LegacyFrame::History { conversation, messages, complete_from }))
        }
        _ => Ok(to_json(&decode::<ServerMsg>(payload)?)),
    }
}

/// A conversation the user belongs to, sent in `Welcome` and when joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationInfo {
    pub conversation: Conversation,
    /// The highest seq stored so far (0 when empty).
    pub latest_seq: u64,
    /// The lowest seq still kept (retention may have removed older ones); `latest_seq + 1` when empty.
    pub first_seq: u64,
}

/// Older messages asked for with `History`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    /// The lowest seq the log still holds: nothing below it can be fetched any more.
    pub complete_from: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PresenceState {
    /// Became a member of the room.
    Joined,
    /// Stopped being a member of the room.
    Left,
    /// Connected (first session).
    Online,
    /// Disconnected (last session).
    Offline,
}

impl PresenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Joined => "joined",
            PresenceState::Left => "left",
            PresenceState::Online => "online",
            PresenceState::Offline => "offline",
        }
    }
}

/// Machine-readable reason of an `Error` frame; the text beside it is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame's HMAC tag did not verify; the frame was dropped.
    BadTag,
    /// The frame could not be decoded.
    Malformed,
    /// The frame was larger than the limit; the connection is closed.
    TooLarge,
    UnsupportedVersion,
    /// Wrong password, or no such account while registration is closed. Deliberately one code.
    AuthFailed,
    /// Over a limit of the client's own (failed logins of this nickname from this address, failures or new
    /// accounts from this address); the message says when to try again, and trying sooner fails again.
    RateLimited,
    InvalidName,
    InvalidText,
    UnknownNick,
    NotMember,
    /// The store could not save the message; it was not accepted. Retry later.
    StoreUnavailable,
    ServerFull,
    HandshakeTimeout,
    /// A frame that is valid but not allowed now (for example `Send` before `Hello`).
    Protocol,
    /// The server has too much password work queued, or is taking too many new accounts, to take this login
    /// now; not the client's fault: retry with backoff.
    ServerBusy,
    /// A limit of the account was reached (rooms per account); the request was not carried out.
    LimitReached,
    /// The user's role does not allow it: moderating without being a moderator, sending while muted or to a
    /// moderated room without voice. A message refused so is not stored: drop it from the outbox. (Version 2.)
    NotAllowed,
    /// Joining a room the user is banned from, or an invite-only room without an invite. (Version 2.)
    Banned,
    /// An edit, a deletion, a reply or a reaction of a message that cannot be referred to: no such seq in the
    /// conversation (or removed by retention), not a message of its own (an edit, a deletion, a reaction), or
    /// deleted already. Not stored: drop it. (Version 3.)
    UnknownMessage,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    Welcome {
        version: u16,
        nick: Nick,
        registered: bool,
        heartbeat_ms: u32,
        conversations: Vec<ConversationInfo>,
    },
    /// `id` names the message the error is about, when there is one.
    Error {
        code: ErrorCode,
        message: String,
        id: Option<MessageId>,
    },
    /// The message is stored durably with this seq. Sent again for a retried id, with the same seq.
    Accepted {
        id: MessageId,
        conversation: Conversation,
        seq: u64,
        ts: u64,
    },
    /// Messages in seq order per conversation.
    Messages(Vec<Message>),
    /// Retention removed messages the client has not seen: the log is complete only from `complete_from`.
    Gap {
        conversation: Conversation,
        complete_from: u64,
    },
    Joined {
        info: ConversationInfo,
    },
    Left {
        room: RoomName,
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
    History(HistoryPage),
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// The server is stopping; reconnect later.
    ShuttingDown {
        message: String,
    },
    /// The conversation no longer exists for this user (a direct conversation deleted with the other account):
    /// forget it, cursor included. A conversation of the same name later is a new one.
    Closed {
        conversation: Conversation,
        reason: String,
    },
    /// A room's settings and the user's standing in it: after `Joined` and after `Welcome` for the rooms whose
    /// settings or standing differ from the defaults, and whenever they change. (Version 2.)
    RoomState(RoomState),
    /// What a moderator did in a room (`by`; `None` for the server's operator at its console), told live to the
    /// room's online members, the user it was done to included. (Version 2.)
    RoomEvent {
        room: RoomName,
        by: Option<Nick>,
        change: RoomChange,
    },
    /// `by` invited the user to the invite-only `room`: a `Join` of it is let in. (Version 2.)
    Invited {
        room: RoomName,
        by: Option<Nick>,
    },
    /// The answer to `ListRooms`: rooms by name; `more` when there are rooms after the last. (Version 2.)
    Rooms {
        rooms: Vec<RoomListing>,
        more: bool,
    },
    /// The answer to `Search`, with its `query` and `conversation` as asked: the messages found, newest first;
    /// `next`, when there may be older ones, is the `before` of the next page. (Version 5.)
    Found {
        query: String,
        conversation: Option<Conversation>,
        hits: Vec<Message>,
        next: Option<String>,
    },
    /// `nick`'s away message (`None`: back), to the user's own sessions and to the online users who share a
    /// room with it. (Version 6.)
    Away {
        nick: Nick,
        message: Option<String>,
    },
    /// The answer to `Whois`. (Version 6.)
    Whois(WhoisInfo),
    /// `nick` is typing in `conversation`, or stopped. (Version 6.)
    Typing {
        conversation: Conversation,
        nick: Nick,
        typing: bool,
    },
    /// How far members have read their conversations. (Version 6.)
    ReadMarkers {
        markers: Vec<ReadMarker>,
    },
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed payload: {0}")]
pub struct DecodeError(#[from] postcard::Error);

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain data types into a Vec cannot fail: postcard errors only on sizes it cannot
    // represent, which the types here do not have.
    postcard::to_stdvec(msg).unwrap_or_default()
}

/// Variant index of [`ServerMsg::Messages`] in the encoding.
const MESSAGES_VARIANT: u8 = 3;

/// Variant index of [`ServerMsg::History`] in the encoding.
const HISTORY_VARIANT: u8 = 9;

/// The first protocol version whose messages have a [`MessageKind`] and a [`Revision`].
pub const KINDS_VERSION: u16 = 3;

/// The first protocol version with replies and reactions.
pub const REPLIES_VERSION: u16 = 4;

/// The first protocol version with search (`Search`, `Found`).
pub const SEARCH_VERSION: u16 = 5;

/// The first protocol version that knows who is there: away messages, `Whois`, typing and read markers.
pub const AWARENESS_VERSION: u16 = 6;

/// The payload of a [`ServerMsg::Messages`] built from messages already encoded one by one (each the
/// [`encode`] of a [`Message`]): a message going to many readers is encoded once, not once per reader. The
/// bytes are the same as encoding the `ServerMsg` itself.
pub fn messages_payload(encoded: &[&[u8]]) -> Vec<u8> {
    let body: usize = encoded.iter().map(|m| m.len()).sum();
    let mut payload = Vec::with_capacity(1 + 10 + body);
    payload.push(MESSAGES_VARIANT);
    let mut count = encoded.len();
    // postcard's varint: 7 bits at a time, low bits first, the high bit set on all but the last byte.
    while count >= 0x80 {
        payload.push((count as u8 & 0x7f) | 0x80);
        count >>= 7;
    }
    payload.push(count as u8);
    for message in encoded {
        payload.extend_from_slice(message);
    }
    payload
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(postcard::from_bytes(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).expect("valid nick")
    }

    fn message(kind: MessageKind, revision: Revision, text: &str) -> Message {
        Message {
            conversation: Conversation::Room(RoomName::lobby()),
            seq: 300,
            id: MessageId([1; 16]),
            from: nick("ana"),
            ts: 1,
            text: text.into(),
            kind,
            revision,
        }
    }

    /// What versions 1 and 2 decoded (and still decode): a message without kind or revision.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    struct Version2Message {
        conversation: Conversation,
        seq: u64,
        id: MessageId,
        from: Nick,
        ts: u64,
        text: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Version2Frame {
        Welcome,
        Error,
        Accepted,
        Messages(Vec<Version2Message>),
        Gap,
        Joined,
        Left,
        Presence,
        Users,
        History { conversation: Conversation, messages: Vec<Version2Message>, complete_from: u64 },
    }

    /// Golden bytes of a version 3 message: the version 2 fields, then the kind and the revision.
    #[test]
    fn golden_bytes_of_a_message_with_its_kind() {
        let edit = message(MessageKind::Edit { of: 5 }, Revision::Original, "hi");
        let mut expected = vec![0u8, 5];
        expected.extend(b"lobby");
        expected.extend([0xac, 0x02]);
        expected.extend([1u8; 16]);
        expected.extend([3]);
        expected.extend(b"ana");
        expected.extend([1, 2]);
        expected.extend(b"hi");
        expected.extend([2, 5, 0]);
        assert_eq!(encode(&edit), expected);
        assert_eq!(encode_message(&edit, 3), expected);
    }

    #[test]
    fn a_version_2_reader_gets_each_kind_as_text_it_can_decode() {
        let cases = [
            (MessageKind::Text, Revision::Original, "hi", "hi"),
            (MessageKind::Text, Revision::Edited, "hello", "hello"),
            (MessageKind::Text, Revision::Deleted, "", "(deleted)"),
            (MessageKind::Action, Revision::Original, "waves", "/me waves"),
            (MessageKind::Edit { of: 2 }, Revision::Original, "hello", "(edited) hello"),
            (MessageKind::Edit { of: 2 }, Revision::Deleted, "", "(deleted)"),
            (MessageKind::Deletion { of: 2 }, Revision::Original, "", "(deleted a message)"),
            (MessageKind::Deletion { of: 2 }, Revision::Original, "spam", "(deleted a message: spam)"),
        ];
        for (kind, revision, text, shown) in cases {
            let message = message(kind, revision, text);
            let expected = Version2Message {
                conversation: message.conversation.clone(),
                seq: 300,
                id: MessageId([1; 16]),
                from: nick("ana"),
                ts: 1,
                text: shown.into(),
            };
            for version in [1, 2] {
                let encoded = encode_message(&message, version);
                let payload = messages_payload(&[&encoded]);
                let frame: Version2Frame = decode(&payload).expect("a version 2 reader decodes it");
                assert_eq!(frame, Version2Frame::Messages(vec![expected.clone()]));
                let page = HistoryPage {
                    conversation: message.conversation.clone(),
                    messages: vec![message.clone()],
                    complete_from: 1,
                };
                let frame: Version2Frame = decode(&history_payload(&page, version)).expect("decodes");
                assert_eq!(
                    frame,
                    Version2Frame::History {
                        conversation: message.conversation.clone(),
                        messages: vec![expected.clone()],
                        complete_from: 1,
                    }
                );
            }
            let page =
                HistoryPage { conversation: message.conversation.clone(), messages: vec![message], complete_from: 1 };
            assert_eq!(history_payload(&page, 3), encode(&ServerMsg::History(page)));
        }
    }

    /// A version 3 reader decodes a reply or a reaction as a text that says what it is; its edits and deletions
    /// still arrive as such, and a version 4 reader gets everything as it is.
    #[test]
    fn a_version_3_reader_gets_replies_and_reactions_as_texts() {
        let cases = [
            (MessageKind::Reply { of: 2 }, Revision::Original, "yes", MessageKind::Text, "(reply to #2) yes"),
            (MessageKind::Reply { of: 2 }, Revision::Edited, "no", MessageKind::Text, "(reply to #2) no"),
            (MessageKind::Reply { of: 2 }, Revision::Deleted, "", MessageKind::Text, ""),
            (
                MessageKind::Reaction { of: 2, added: true },
                Revision::Original,
                "👍",
                MessageKind::Text,
                "(reacted 👍 to #2)",
            ),
            (
                MessageKind::Reaction { of: 2, added: false },
                Revision::Original,
                "👍",
                MessageKind::Text,
                "(took back 👍 from #2)",
            ),
            (MessageKind::Edit { of: 2 }, Revision::Original, "x", MessageKind::Edit { of: 2 }, "x"),
        ];
        for (kind, revision, text, shown_kind, shown) in cases {
            let message = message(kind, revision, text);
            let seen = Message { kind: shown_kind, text: shown.into(), ..message.clone() };
            assert_eq!(decode::<Message>(&encode_message(&message, 3)).expect("decodes"), seen);
            assert_eq!(encode_message(&message, 4), encode(&message));
            let page = HistoryPage {
                conversation: message.conversation.clone(),
                messages: vec![message.clone()],
                complete_from: 1,
            };
            let seen_page = HistoryPage { messages: vec![seen], ..page.clone() };
            assert_eq!(history_payload(&page, 3), encode(&ServerMsg::History(seen_page)));
            assert_eq!(history_payload(&page, 4), encode(&ServerMsg::History(page)));
        }
        let reply = message(MessageKind::Reply { of: 2 }, Revision::Original, "yes");
        let payload = messages_payload(&[&encode_message(&reply, 1)]);
        let frame: Version2Frame = decode(&payload).expect("a version 2 reader decodes it");
        let Version2Frame::Messages(messages) = frame else { panic!("not messages") };
        assert_eq!(messages[0].text, "(reply to #2) yes");
        assert_eq!(MessageForm::ALL.map(|form| form.index()), [0, 1, 2]);
        assert_eq!(
            [1, 2, 3, 4].map(MessageForm::of_version),
            [MessageForm::Plain, MessageForm::Plain, MessageForm::Kinds, MessageForm::Replies]
        );
    }

    #[test]
    fn reactions_are_named_by_emoji_or_name() {
        assert_eq!(reaction_named("+1"), Some("👍"));
        assert_eq!(reaction_named(":tada:"), Some("🎉"));
        assert_eq!(reaction_named("❤"), Some("❤\u{fe0f}"));
        assert_eq!(reaction_named("❤\u{fe0f}"), Some("❤\u{fe0f}"));
        assert_eq!(reaction_named(" 👀 "), Some("👀"));
        for bad in ["", "::", "smile", "👍👍", ":+1", "🙂"] {
            assert_eq!(reaction_named(bad), None, "{bad:?}");
        }
        for (emoji, name) in REACTIONS {
            assert_eq!(reaction_named(emoji), Some(emoji));
            assert_eq!(reaction_named(name), Some(emoji));
            assert!(crate::validate_text(emoji).is_ok(), "{name} is a valid text");
        }
    }

    /// A browser's session turns the payloads made for its version into JSON: a version 2 page gets messages
    /// without kind and revision, a version 3 page the messages as they are.
    #[test]
    fn payloads_for_each_version_become_that_versions_json() {
        let deleted = message(MessageKind::Text, Revision::Deleted, "");
        let action = message(MessageKind::Action, Revision::Original, "waves");
        let version2 = r#"{"conversation":{"Room":"lobby"},"seq":300,"id":"01010101010101010101010101010101","from":"ana","ts":1,"#;
        for version in [1, 2] {
            let encoded = [encode_message(&deleted, version), encode_message(&action, version)];
            let payload = messages_payload(&[&encoded[0], &encoded[1]]);
            let expected = format!(r#"{{"Messages":[{version2}"text":"(deleted)"}},{version2}"text":"/me waves"}}]}}"#);
            assert_eq!(payload_json(&payload, version).expect("decodes"), expected);
            let page = HistoryPage {
                conversation: action.conversation.clone(),
                messages: vec![action.clone()],
                complete_from: 2,
            };
            let expected = format!(
                r#"{{"History":{{"conversation":{{"Room":"lobby"}},"messages":[{version2}"text":"/me waves"}}],"complete_from":2}}}}"#
            );
            assert_eq!(payload_json(&history_payload(&page, version), version).expect("decodes"), expected);
        }
        let frame = ServerMsg::Messages(vec![deleted, action]);
        assert_eq!(payload_json(&encode(&frame), 3).expect("decodes"), to_json(&frame));
        let welcome = ServerMsg::Pong { nonce: 7 };
        assert_eq!(payload_json(&encode(&welcome), 2).expect("decodes"), to_json(&welcome));
    }

    /// Golden bytes: if this changes, the wire format changed and old peers break.
    #[test]
    fn golden_bytes_of_send_and_accepted() {
        let send =
            ClientMsg::Send { id: MessageId([7; 16]), to: Conversation::Room(RoomName::lobby()), text: "hi".into() };
        let mut expected = vec![1u8];
        expected.extend([7u8; 16]);
        expected.extend([0, 5]);
        expected.extend(b"lobby");
        expected.extend([2]);
        expected.extend(b"hi");
        assert_eq!(encode(&send), expected);

        let accepted = ServerMsg::Accepted {
            id: MessageId([1; 16]),
            conversation: Conversation::Direct(nick("bob")),
            seq: 300,
            ts: 1,
        };
        let mut expected = vec![2u8];
        expected.extend([1u8; 16]);
        expected.extend([1, 3]);
        expected.extend(b"bob");
        expected.extend([0xac, 0x02, 1]);
        assert_eq!(encode(&accepted), expected);
        assert_eq!(decode::<ServerMsg>(&expected).ok(), Some(accepted), "canonical names decode as before");
    }

    #[test]
    fn a_name_not_in_canonical_form_is_a_decode_error() {
        for bad in ["Bob", " bob", "bob\n", "b\x1b[2Jb", "b\u{202e}b", "#lobby", "", "9lives", &"a".repeat(65)] {
            assert!(decode::<Nick>(&encode(&bad)).is_err(), "nick {bad:?}");
            assert!(decode::<RoomName>(&encode(&bad)).is_err(), "room {bad:?}");
        }
        assert_eq!(decode::<Nick>(&encode(&"a".repeat(33))).ok(), None, "nicknames are shorter than rooms");
        assert_eq!(decode::<RoomName>(&encode(&"a".repeat(33))).ok().map(|r| r.to_string()), Some("a".repeat(33)));

        // A whole frame with one bad name in it fails, whichever side decodes it.
        let presence =
            encode(&ServerMsg::Presence { room: RoomName::lobby(), nick: nick("bob"), state: PresenceState::Online });
        assert!(decode::<ServerMsg>(&presence).is_ok());
        assert!(decode::<ServerMsg>(&replace(&presence, b"bob", b"b\x07b")).is_err());
        assert!(decode::<ServerMsg>(&replace(&presence, b"lobby", b"Lobby")).is_err());
        let send = encode(&ClientMsg::Send {
            id: MessageId([0; 16]),
            to: Conversation::Direct(nick("bob")),
            text: "hi".into(),
        });
        assert!(decode::<ClientMsg>(&replace(&send, b"bob", b"Bob")).is_err(), "the server refuses it too");
    }

    /// `bytes` with the one occurrence of `from` replaced by `to`, of the same length.
    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = bytes.windows(from.len()).position(|w| w == from).expect("present");
        let mut changed = bytes.to_vec();
        changed[at..at + to.len()].copy_from_slice(to);
        changed
    }

    /// Codes are only ever appended: an older peer still decodes every code it knows by its index.
    #[test]
    fn error_codes_keep_their_indices() {
        let index = |code| encode(&ServerMsg::Error { code, message: String::new(), id: None })[1];
        assert_eq!(index(ErrorCode::BadTag), 0);
        assert_eq!(index(ErrorCode::RateLimited), 5);
        assert_eq!(index(ErrorCode::Protocol), 13);
        assert_eq!(index(ErrorCode::ServerBusy), 14);
        assert_eq!(index(ErrorCode::NotAllowed), 16);
        assert_eq!(index(ErrorCode::Banned), 17);
        assert_eq!(index(ErrorCode::UnknownMessage), 18);
    }

    /// Version 5's variants come after every earlier one.
    #[test]
    fn search_variants_are_appended() {
        let search = ClientMsg::Search { query: "a".into(), conversation: None, before: None, limit: 1 };
        assert_eq!(encode(&search)[0], 13);
        let found = ServerMsg::Found { query: "a".into(), conversation: None, hits: Vec::new(), next: None };
        assert_eq!(encode(&found)[0], 18);
    }

    #[test]
    fn awareness_variants_are_appended() {
        let lobby = Conversation::Room(RoomName::lobby());
        let client = [
            ClientMsg::SetAway { message: String::new() },
            ClientMsg::Whois { nick: "ana".into() },
            ClientMsg::Typing { conversation: lobby.clone(), typing: true },
            ClientMsg::MarkRead { conversation: lobby.clone(), seq: 1 },
        ];
        assert_eq!(client.map(|msg| encode(&msg)[0]), [14, 15, 16, 17]);
        let whois = crate::WhoisInfo {
            nick: nick("ana"),
            registered_ms: 1,
            online: false,
            online_since_ms: None,
            idle_ms: None,
            away: None,
            rooms: Vec::new(),
        };
        let server = [
            ServerMsg::Away { nick: nick("ana"), message: None },
            ServerMsg::Whois(whois),
            ServerMsg::Typing { conversation: lobby, nick: nick("ana"), typing: false },
            ServerMsg::ReadMarkers { markers: Vec::new() },
        ];
        assert_eq!(server.map(|msg| encode(&msg)[0]), [19, 20, 21, 22]);
    }

    /// Version 2's variants come after every variant of version 1, which a version 1 peer still decodes alike.
    #[test]
    fn moderation_was_appended() {
        let moderate = ClientMsg::Moderate { room: "rust".into(), action: crate::RoomAction::Moderated(true) };
        assert_eq!(encode(&moderate)[0], 10);
        let invited = ServerMsg::Invited { room: RoomName::lobby(), by: None };
        assert_eq!(encode(&invited)[0], 16);
        let post = ClientMsg::Post {
            id: MessageId([0; 16]),
            to: Conversation::Room(RoomName::lobby()),
            kind: MessageKind::Action,
            text: "hi".into(),
        };
        assert_eq!(encode(&post)[0], 12);
        let kind_index = |kind| encode(&kind)[0];
        assert_eq!(kind_index(MessageKind::Deletion { of: 1 }), 3);
        assert_eq!(kind_index(MessageKind::Reply { of: 1 }), 4);
        assert_eq!(kind_index(MessageKind::Reaction { of: 1, added: true }), 5);
    }

    #[test]
    fn hello_starts_with_the_version() {
        let hello = ClientMsg::Hello { version: 1, nick: "a".into(), password: "p".into(), positions: vec![] };
        assert!(!format!("{hello:?}").contains("\"p\""), "Debug shows no password: {hello:?}");
        assert_eq!(&encode(&hello)[..2], &[0, 1]);
    }

    #[test]
    fn message_ids_round_trip_through_hex() {
        let id = MessageId([0xab; 16]);
        assert_eq!(MessageId::from_hex(&id.to_hex()), Some(id));
        let earlier = MessageId::time_ordered(1_700_000_000_000, [0xff; 10]);
        let later = MessageId::time_ordered(1_700_000_000_001, [0; 10]);
        assert!(earlier < later);
        assert_eq!(earlier.to_hex(), "018bcfe56800ffffffffffffffffffff");
        assert_eq!(MessageId::from_hex("zz"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<ClientMsg>(&bytes);
            let _ = decode::<ServerMsg>(&bytes);
        }

        #[test]
        fn a_name_decodes_exactly_when_parsing_leaves_it_unchanged(
            raw in prop_oneof!["[ #A-Za-z0-9_\\-]{0,70}", ".{0,70}"],
        ) {
            let nick = Nick::parse(&raw).ok().filter(|n| n.as_str() == raw);
            prop_assert_eq!(decode::<Nick>(&encode(&raw)).ok(), nick);
            let room = RoomName::parse(&raw).ok().filter(|r| r.as_str() == raw);
            prop_assert_eq!(decode::<RoomName>(&encode(&raw)).ok(), room);
        }

        #[test]
        fn sends_round_trip(id in any::<[u8; 16]>(), text in ".{1,200}", seq in any::<u64>()) {
            let send = ClientMsg::Send { id: MessageId(id), to: Conversation::Direct(nick("ana")), text: text.clone() };
            prop_assert_eq!(decode::<ClientMsg>(&encode(&send)).ok(), Some(send));
            let ack = ClientMsg::Ack { conversation: Conversation::Room(RoomName::lobby()), seq };
            prop_assert_eq!(decode::<ClientMsg>(&encode(&ack)).ok(), Some(ack));
        }

        #[test]
        fn a_payload_of_encoded_messages_is_the_encoded_batch(count in 0usize..300, text in ".{0,40}") {
            let messages: Vec<Message> = (0..count)
                .map(|i| Message {
                    conversation: Conversation::Room(RoomName::lobby()),
                    seq: i as u64,
                    id: MessageId([i as u8; 16]),
                    from: nick("ana"),
                    ts: 1,
                    text: text.clone(),
                    kind: MessageKind::Text,
                    revision: Revision::Original,
                })
                .collect();
            let encoded: Vec<Vec<u8>> = messages.iter().map(encode).collect();
            let parts: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(messages_payload(&parts), encode(&ServerMsg::Messages(messages)));
        }
    }
}
