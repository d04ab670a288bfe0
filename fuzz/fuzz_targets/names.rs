//! Name and text validation on arbitrary strings (what users type after `/join`, `/msg` and in messages):
//! never a panic, whatever is accepted parses back to itself from its display form, and a name off the wire
//! decodes exactly when it is what parsing returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palomar_proto::{Conversation, Nick, RoomName, decode, encode, validate_text};

fuzz_target!(|text: &str| {
    if let Ok(nick) = Nick::parse(text) {
        assert_eq!(Nick::parse(nick.as_str()).as_ref(), Ok(&nick));
        assert!(nick.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
    }
    if let Ok(room) = RoomName::parse(text) {
        assert_eq!(RoomName::parse(&format!("#{room}")).as_ref(), Ok(&room));
    }
    if let Ok(conversation) = Conversation::parse(text) {
        assert_eq!(Conversation::parse(&conversation.to_string()).as_ref(), Ok(&conversation));
    }
    let canonical_nick = Nick::parse(text).is_ok_and(|nick| nick.as_str() == text);
    assert_eq!(decode::<Nick>(&encode(&text)).is_ok(), canonical_nick);
    let canonical_room = RoomName::parse(text).is_ok_and(|room| room.as_str() == text);
    assert_eq!(decode::<RoomName>(&encode(&text)).is_ok(), canonical_room);
    if validate_text(text).is_ok() {
        assert!(!text.trim().is_empty());
        assert!(!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    }
});
