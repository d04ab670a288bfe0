//! [`ConvKey`]: a conversation as the store names it, independent of who is looking at it.

use palomar_proto::{Conversation, Nick, RoomName};

/// A room, or the direct conversation of two users (kept in sorted order so both name it the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvKey {
    Room(RoomName),
    Direct(Nick, Nick),
}

impl ConvKey {
    pub fn direct(a: Nick, b: Nick) -> Self {
        if a <= b { ConvKey::Direct(a, b) } else { ConvKey::Direct(b, a) }
    }

    /// The key as the conversation is addressed by `viewer` (`Direct(peer)` for a DM).
    pub fn from_view(viewer: &Nick, conversation: &Conversation) -> Self {
        match conversation {
            Conversation::Room(room) => ConvKey::Room(room.clone()),
            Conversation::Direct(peer) => ConvKey::direct(viewer.clone(), peer.clone()),
        }
    }

    /// How `viewer` addresses this conversation.
    pub fn view_for(&self, viewer: &Nick) -> Conversation {
        match self {
            ConvKey::Room(room) => Conversation::Room(room.clone()),
            ConvKey::Direct(a, b) => Conversation::Direct(if a == viewer { b.clone() } else { a.clone() }),
        }
    }

    /// The two participants of a direct conversation.
    pub fn participants(&self) -> Option<(&Nick, &Nick)> {
        match self {
            ConvKey::Direct(a, b) => Some((a, b)),
            ConvKey::Room(_) => None,
        }
    }

    /// The text stored in the `conversations.key` column: `#room` or `@a/b`.
    pub fn to_column(&self) -> String {
        match self {
            ConvKey::Room(room) => format!("#{room}"),
            ConvKey::Direct(a, b) => format!("@{a}/{b}"),
        }
    }

    pub fn from_column(column: &str) -> Option<Self> {
        if let Some(room) = column.strip_prefix('#') {
            return RoomName::parse(room).ok().map(ConvKey::Room);
        }
        let (a, b) = column.strip_prefix('@')?.split_once('/')?;
        Some(ConvKey::direct(Nick::parse(a).ok()?, Nick::parse(b).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).expect("valid")
    }

    #[test]
    fn direct_keys_are_the_same_from_both_sides() {
        let from_ana = ConvKey::from_view(&nick("ana"), &Conversation::Direct(nick("bob")));
        let from_bob = ConvKey::from_view(&nick("bob"), &Conversation::Direct(nick("ana")));
        assert_eq!(from_ana, from_bob);
        assert_eq!(from_ana.view_for(&nick("ana")), Conversation::Direct(nick("bob")));
        assert_eq!(ConvKey::from_column(&from_ana.to_column()), Some(from_ana));
    }
}
