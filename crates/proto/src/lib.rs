//! # palomar-proto: the wire protocol, as pure code
//!
//! Everything two Palomar peers agree on, and nothing that touches a socket, a file or a clock.
//!
//! # Layout
//! - [`names`]: validated nicknames, room names, message texts and conversation addresses.
//! - [`message`]: the frames' payloads, [`ClientMsg`] and [`ServerMsg`], and their postcard encoding.
//! - [`moderation`]: rooms' roles and settings, and the actions of their moderators.
//! - [`awareness`]: away messages, `Whois`, typing notices and read markers: their limits and timings.
//! - [`search`]: the words of a search query, as the server and clients split and check them.
//! - [`json`]: the same payloads as JSON, for the browser client's WebSocket.
//! - [`frame`]: length-prefixed framing with a hard size limit, and the per-frame HMAC-SHA256 tag.
//!
//! The encoding is postcard; enum variants are only ever appended so that an older peer can still decode
//! the variants it knows. The handshake carries [`PROTOCOL_VERSION`].

pub mod awareness;
pub mod frame;
pub mod json;
pub mod message;
pub mod moderation;
pub mod names;
pub mod search;

pub use awareness::{
    AwayError, MAX_AWAY_BYTES, READ_MARKERS_PAGE, ReadMarker, TYPING_RENEW_MS, TYPING_SHOWN_MS, WhoisInfo, away_message,
};
pub use frame::{DirectionKeys, FrameDecoder, FrameError, Opener, Sealer, TAG_LEN};
pub use json::{JsonError, from_json, to_json};
pub use message::{
    AWARENESS_VERSION, ClientMsg, ConversationInfo, ErrorCode, HistoryPage, KINDS_VERSION, Message, MessageForm,
    MessageId, MessageKind, Password, Position, PresenceState, REACTIONS, REPLIES_VERSION, Revision, SEARCH_VERSION,
    ServerMsg, decode, encode, encode_message, history_payload, messages_payload, payload_json, reaction_named,
    unix_ms,
};
pub use moderation::{Role, RoomAction, RoomChange, RoomListing, RoomState};
pub use names::{Conversation, NameError, Nick, RoomName, escape_controls, is_refused_in_text, validate_text};
pub use search::{
    MAX_SEARCH_BYTES, MAX_SEARCH_PAGE, MAX_SEARCH_POSITION_BYTES, MAX_SEARCH_WORDS, SearchQueryError, search_words,
};

/// The protocol version this build speaks; sent first in `Hello` and `Welcome`. Version 2 added moderation
/// (`Moderate`, `RoomState`, `RoomEvent`, `Invited`, `NotAllowed`, `Banned`) and the rooms' listing (`ListRooms`,
/// `Rooms`); version 3 kinds of messages (`Post`, `Message.kind` and `Message.revision`: actions, edits,
/// deletions) and `UnknownMessage`; version 4 replies and reactions (`MessageKind::Reply`, `MessageKind::Reaction`);
/// version 5 search (`Search`, `Found`); version 6 who is there (`SetAway`, `Whois`, `Typing`, `MarkRead`, `Away`,
/// `ReadMarkers`).
pub const PROTOCOL_VERSION: u16 = 6;

/// The oldest version a server still serves: it sends such a client nothing that version did not have.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Default upper bound of one frame's body (payload and tag), in bytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
