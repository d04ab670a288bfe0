//! Rooms' roles and settings, and what moderators do with them: the types of `ClientMsg::Moderate`,
//! `ServerMsg::RoomState` and `ServerMsg::RoomEvent` (PROTOCOL.md, "Moderation"), and of the rooms' listing
//! (`ServerMsg::Rooms`).
//!
//! Variants are only ever appended, as in [`crate::message`].

use serde::{Deserialize, Serialize};

use crate::names::{Nick, RoomName};

/// A member's standing in one room, from least to most: each role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Role {
    /// Reads and, unless the room is moderated or the member muted, speaks.
    #[default]
    Member,
    /// May speak in a moderated room.
    Voice,
    /// Kicks, bans and mutes members below moderator, invites, and changes the topic and the settings.
    Moderator,
    /// The room's creator: also makes and unmakes moderators.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Voice => "voice",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    /// The role named `name` as [`Role::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Member, Role::Voice, Role::Moderator, Role::Owner].into_iter().find(|role| role.as_str() == name)
    }
}

/// What a moderator asks for in a room. Nicknames travel as the user typed them, so that a bad one is answered
/// `InvalidName` rather than dropped as undecodable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomAction {
    /// Ends `nick`'s membership; it may join again.
    Kick {
        nick: String,
        reason: String,
    },
    /// Ends `nick`'s membership and keeps the account out until unbanned.
    Ban {
        nick: String,
        reason: String,
    },
    Unban {
        nick: String,
    },
    /// `nick` stays and reads, but may not send to the room.
    Mute {
        nick: String,
        reason: String,
    },
    Unmute {
        nick: String,
    },
    /// Gives `nick` a role (only the owner or a server operator gives or takes `Moderator`; nobody gives `Owner`).
    SetRole {
        nick: String,
        role: Role,
    },
    /// Lets `nick` join the room while it is invite-only.
    Invite {
        nick: String,
    },
    /// Sets the topic; an empty text clears it.
    Topic {
        text: String,
    },
    /// Only members, invited users, moderators and operators may join.
    InviteOnly(bool),
    /// Only members with [`Role::Voice`] or above may speak.
    Moderated(bool),
}

impl RoomAction {
    /// The nickname the action is about, as typed, if it is about a user.
    pub fn target(&self) -> Option<&str> {
        match self {
            RoomAction::Kick { nick, .. }
            | RoomAction::Ban { nick, .. }
            | RoomAction::Unban { nick }
            | RoomAction::Mute { nick, .. }
            | RoomAction::Unmute { nick }
            | RoomAction::SetRole { nick, .. }
            | RoomAction::Invite { nick } => Some(nick),
            RoomAction::Topic { .. } | RoomAction::InviteOnly(_) | RoomAction::Moderated(_) => None,
        }
    }
}

/// What a moderator did to a room, as its members are told (live, not replayed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomChange {
    Kicked { nick: Nick, reason: String },
    Banned { nick: Nick, reason: String },
    Unbanned { nick: Nick },
    Muted { nick: Nick, reason: String },
    Unmuted { nick: Nick },
    RoleSet { nick: Nick, role: Role },
    Invited { nick: Nick },
    Topic { text: String },
    InviteOnly(bool),
    Moderated(bool),
}

/// One room as a listing of the server's rooms shows it (`ListRooms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomListing {
    pub room: RoomName,
    pub members: u32,
    /// Empty when none is set.
    pub topic: String,
    /// Listed only to its members and the server's operators.
    pub invite_only: bool,
}

/// A room's settings and the user's standing in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub room: RoomName,
    /// Empty when none is set.
    pub topic: String,
    pub invite_only: bool,
    pub moderated: bool,
    pub role: Role,
    pub muted: bool,
    /// The user is one of the server's operators, who moderate every room.
    pub operator: bool,
}

impl RoomState {
    /// Whether the user may send to the room now.
    pub fn may_speak(&self) -> bool {
        self.operator || self.role >= Role::Moderator || (!self.muted && (!self.moderated || self.role >= Role::Voice))
    }

    /// Whether the user may act as a moderator of the room.
    pub fn moderates(&self) -> bool {
        self.operator || self.role >= Role::Moderator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(role: Role, muted: bool, moderated: bool) -> RoomState {
        RoomState {
            room: RoomName::lobby(),
            topic: String::new(),
            invite_only: false,
            moderated,
            role,
            muted,
            operator: false,
        }
    }

    #[test]
    fn who_may_speak() {
        assert!(state(Role::Member, false, false).may_speak());
        assert!(!state(Role::Member, true, false).may_speak(), "muted");
        assert!(!state(Role::Member, false, true).may_speak(), "moderated room");
        assert!(state(Role::Voice, false, true).may_speak());
        assert!(!state(Role::Voice, true, true).may_speak(), "a muted voice is muted");
        assert!(state(Role::Moderator, true, true).may_speak(), "moderators are never muted");
        assert!(RoomState { operator: true, ..state(Role::Member, true, true) }.may_speak());
    }

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Member < Role::Voice && Role::Voice < Role::Moderator && Role::Moderator < Role::Owner);
        for role in [Role::Member, Role::Voice, Role::Moderator, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
