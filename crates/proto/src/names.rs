//! Validated names and texts: nicknames, room names, conversation addresses and message bodies.
//!
//! Validation lives here so that the server, the clients and the offline tools all refuse the same inputs
//! with the same words.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// Longest nickname, in bytes (names are ASCII).
pub const MAX_NICK_LEN: usize = 32;
/// Longest room name, in bytes.
pub const MAX_ROOM_LEN: usize = 64;
/// Longest message text, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 8 * 1024;

/// Why a name or a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may only contain letters a-z, digits, '-' and '_', and must start with a letter")]
    BadCharacter { kind: &'static str },
    #[error("message text contains a control character (only tab and newline are allowed)")]
    ControlCharacter,
    #[error("message text is only white space")]
    Blank,
}

fn validate_name(raw: &str, kind: &'static str, max: usize) -> Result<String, NameError> {
    let name = raw.trim().to_ascii_lowercase();
    check_canonical(&name, kind, max)?;
    Ok(name)
}

/// Whether `name` is a name exactly as `parse` returns it. A canonical name has no white space and no
/// capital letter, so trimming and lower-casing leave it as it is: checking the alphabet is enough.
fn check_canonical(name: &str, kind: &'static str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > max {
        return Err(NameError::TooLong { kind, max });
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(NameError::BadCharacter { kind });
    }
    Ok(())
}

/// A nickname: lower-case ASCII, so that `Ana` and `ana` are the same account.
///
/// Decoding accepts only the canonical form (what [`Nick::parse`] returns), so a name from the other side
/// of a connection is as safe to show as one parsed here: a peer that sends anything else sent a malformed
/// frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Nick(String);

impl Nick {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        validate_name(raw, "nickname", MAX_NICK_LEN).map(Nick)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nick {
    type Error = NameError;

    fn try_from(name: String) -> Result<Self, NameError> {
        check_canonical(&name, "nickname", MAX_NICK_LEN)?;
        Ok(Nick(name))
    }
}

// By hand rather than derived: `try_from` cannot be combined with `transparent`, and `into` would clone
// every name it encodes. The encoding is the plain string, as before.
impl Serialize for Nick {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room name, without the `#` it is shown with. Decoded only in canonical form, like [`Nick`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct RoomName(String);

impl RoomName {
    /// The room every account is a member of from its first login.
    pub const LOBBY: &'static str = "lobby";

    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let raw = raw.trim();
        validate_name(raw.strip_prefix('#').unwrap_or(raw), "room name", MAX_ROOM_LEN).map(RoomName)
    }

    pub fn lobby() -> Self {
        RoomName(Self::LOBBY.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomName {
    type Error = NameError;

    fn try_from(name: String) -> Result<Self, NameError> {
        check_canonical(&name, "room name", MAX_ROOM_LEN)?;
        Ok(RoomName(name))
    }
}

impl Serialize for RoomName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation as one peer addresses it: a room, or the direct conversation with another user.
///
/// `Direct(peer)` is relative to whoever reads the frame: the server sends Ana's DM to Bob as
/// `Direct(ana)`, and Bob answers to `Direct(ana)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Conversation {
    Room(RoomName),
    Direct(Nick),
}

impl Conversation {
    /// Parses the display form: `#room` or `@nick`.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        match raw.strip_prefix('@') {
            Some(nick) => Nick::parse(nick).map(Conversation::Direct),
            None => RoomName::parse(raw).map(Conversation::Room),
        }
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conversation::Room(room) => write!(f, "#{room}"),
            Conversation::Direct(nick) => write!(f, "@{nick}"),
        }
    }
}

/// Whether a message text may not contain `c`: a control character (C0, DEL, C1) other than tab and
/// newline, or a bidirectional override or isolate, any of which could rewrite or reorder a reader's terminal.
pub fn is_refused_in_text(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Checks a message body: not blank, bounded, and free of the characters [`is_refused_in_text`] names.
pub fn validate_text(text: &str) -> Result<(), NameError> {
    if text.trim().is_empty() {
        return Err(NameError::Blank);
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(NameError::TooLong { kind: "message text", max: MAX_TEXT_LEN });
    }
    if has_no_refused_character(text) { Ok(()) } else { Err(NameError::ControlCharacter) }
}

fn has_no_refused_character(text: &str) -> bool {
    // Every message passes here: plain ASCII, the usual case, is checked byte by byte without decoding.
    if text.is_ascii() {
        !text.bytes().any(|b| b.is_ascii_control() && b != b'\n' && b != b'\t')
    } else {
        !text.chars().any(is_refused_in_text)
    }
}

/// `text` with every character [`is_refused_in_text`] names written as an escape (`\u{1b}`), for a terminal
/// showing text that only the other side checked: a malicious server can send anything as a message or an
/// error. Tab and newline are kept; clean text is returned as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if has_no_refused_character(text) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_refused_in_text(c) {
            escaped.extend(c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_case_insensitive_and_restricted() {
        assert_eq!(Nick::parse(" Ana ").map(|n| n.to_string()), Ok("ana".to_owned()));
        assert!(matches!(Nick::parse("9lives"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(Nick::parse("a b"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(Nick::parse("\u{202e}evil"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(Nick::parse(""), Err(NameError::Empty { .. })));
        assert!(matches!(Nick::parse(&"a".repeat(33)), Err(NameError::TooLong { .. })));
    }

    #[test]
    fn conversations_round_trip_their_display_form() {
        for raw in ["#lobby", "@bob", "rust-talk"] {
            let conversation = Conversation::parse(raw).expect("valid");
            let shown = conversation.to_string();
            assert_eq!(Conversation::parse(&shown), Ok(conversation));
        }
        assert_eq!(Conversation::parse("lobby").map(|c| c.to_string()), Ok("#lobby".to_owned()));
    }

    #[test]
    fn texts_refuse_terminal_control() {
        assert!(validate_text("hello\tworld\nsecond line").is_ok());
        assert_eq!(validate_text("\x1b[2J"), Err(NameError::ControlCharacter));
        assert_eq!(validate_text("del\x7f"), Err(NameError::ControlCharacter));
        assert_eq!(validate_text("é\x1b[2J"), Err(NameError::ControlCharacter));
        assert!(validate_text("café\tbar").is_ok());
        for byte in 0..128u8 {
            let c = char::from(byte);
            let allowed = !c.is_control() || c == '\n' || c == '\t';
            assert_eq!(validate_text(&format!("a{c}")).is_ok(), allowed, "byte {byte} alone");
            assert_eq!(validate_text(&format!("é{c}")).is_ok(), allowed, "byte {byte} beside non-ASCII text");
        }
        assert_eq!(validate_text("abc\u{202e}def"), Err(NameError::ControlCharacter));
        assert_eq!(validate_text("   "), Err(NameError::Blank));
        assert!(validate_text(&"x".repeat(MAX_TEXT_LEN + 1)).is_err());
    }

    #[test]
    fn escaping_leaves_nothing_a_terminal_would_obey() {
        assert!(matches!(escape_controls("plain\ttext\nnext line, café"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("\x1b[2Jgone\r\x07"), "\\u{1b}[2Jgone\\u{d}\\u{7}");
        assert_eq!(escape_controls("é\u{9b}31m \u{202e}txt.exe\u{2066}"), "é\\u{9b}31m \\u{202e}txt.exe\\u{2066}");
        assert_eq!(escape_controls("del\x7f"), "del\\u{7f}");
        for c in ('\0'..='\u{3000}').filter(|&c| is_refused_in_text(c)) {
            let text = format!("a{c}b");
            let shown = escape_controls(&text);
            assert!(!shown.chars().any(is_refused_in_text), "{c:?} left in {shown:?}");
            assert_eq!(validate_text(&text), Err(NameError::ControlCharacter), "{c:?}");
        }
    }
}
