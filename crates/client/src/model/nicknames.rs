//! Nicknames in text and on screen: whether a message mentions one, and the colour each is drawn in.

use palomar_proto::Nick;

/// Whether `text` names `nick` as a word (case-insensitive, with or without `@`).
pub fn mentions(text: &str, nick: &Nick) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|word| word.eq_ignore_ascii_case(nick.as_str()))
}

/// The same index into a palette of `colours` for a nickname everywhere and every time (FNV-1a of its
/// bytes), so a person has one colour in every front end.
pub fn nick_colour(nick: &Nick, colours: usize) -> usize {
    let hash =
        nick.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % colours.max(1) as u64) as usize
}
