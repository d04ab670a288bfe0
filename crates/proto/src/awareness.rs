//! Knowing who is there (protocol version 6): away messages, `Whois`, typing notices and read markers. The
//! limits and timings both sides keep, and the away message's check, made the same way by the server, which
//! refuses such a message, and by clients, which can say so before sending.

use serde::{Deserialize, Serialize};

use crate::names::{Conversation, Nick, RoomName, is_refused_in_text};

/// Longest away message, in bytes of UTF-8: a line in a member list, not a message.
pub const MAX_AWAY_BYTES: usize = 200;

/// While the user keeps typing, a client says `Typing { typing: true }` again at most this often; the server
/// passes on at most one such notice per conversation and session in this time.
pub const TYPING_RENEW_MS: u64 = 3_000;

/// A reader shows someone typing for this long after their last notice, unless a `typing: false` or a message
/// from them in that conversation comes first: a client that vanished mid-sentence stops "typing" by itself.
pub const TYPING_SHOWN_MS: u64 = 6_000;

/// Most markers in one `ReadMarkers`: a room's are sent in as many pages as it takes.
pub const READ_MARKERS_PAGE: usize = 500;

/// Why an away message cannot be set, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwayError {
    #[error("an away message is at most {MAX_AWAY_BYTES} bytes long")]
    TooLong,
    #[error("an away message is one line, without control characters")]
    ControlCharacter,
}

/// The away message `typed` sets: trimmed; `None` (back) when nothing is left.
pub fn away_message(typed: &str) -> Result<Option<String>, AwayError> {
    let message = typed.trim();
    if message.len() > MAX_AWAY_BYTES {
        return Err(AwayError::TooLong);
    }
    if message.chars().any(|c| c == '\n' || c == '\t' || is_refused_in_text(c)) {
        return Err(AwayError::ControlCharacter);
    }
    Ok((!message.is_empty()).then(|| message.to_owned()))
}

/// The answer to `Whois`: what anyone may know of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoisInfo {
    pub nick: Nick,
    /// When the account was registered, in milliseconds since the Unix epoch.
    pub registered_ms: u64,
    /// Shown online: as `Users` and `Presence` show it.
    pub online: bool,
    /// Since when it has been shown online (`None` when offline).
    pub online_since_ms: Option<u64>,
    /// How long since it last sent a message, as far as the server saw (`None` when offline, or when it has
    /// sent none since it came online).
    pub idle_ms: Option<u64>,
    /// Its away message, when it set one.
    pub away: Option<String>,
    /// The rooms the asker and it are both members of, by name.
    pub rooms: Vec<RoomName>,
}

/// How far `nick` has read `conversation`: every message up to `seq` was on their screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    pub conversation: Conversation,
    pub nick: Nick,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_away_message_is_trimmed_and_nothing_left_means_back() {
        assert_eq!(away_message("  lunch, back at 2 "), Ok(Some("lunch, back at 2".into())));
        assert_eq!(away_message("   "), Ok(None));
        assert_eq!(away_message(""), Ok(None));
        assert_eq!(away_message(&"é".repeat(100)).map(|m| m.map(|m| m.len())), Ok(Some(200)));
    }

    #[test]
    fn an_away_message_too_long_or_of_several_lines_is_refused_with_a_reason() {
        assert_eq!(away_message(&"x".repeat(201)), Err(AwayError::TooLong));
        assert_eq!(away_message("out\nback soon"), Err(AwayError::ControlCharacter));
        assert_eq!(away_message("out\u{1b}[2J"), Err(AwayError::ControlCharacter));
        assert_eq!(away_message("out\u{202e}"), Err(AwayError::ControlCharacter));
        assert_eq!(AwayError::TooLong.to_string(), "an away message is at most 200 bytes long");
    }
}
