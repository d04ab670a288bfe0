//! Moderation in people's words: what a room event, an invitation and a user's standing in a room say, the same
//! in every front end (line mode prints them too). The user's own nickname reads as "you".

use palomar_proto::{Nick, Role, RoomChange, RoomName, RoomState};

/// Who did it: a nickname, "you", or the server's operator at its console (`None`).
fn actor(by: Option<&Nick>, me: Option<&Nick>) -> String {
    match by {
        Some(by) if Some(by) == me => "you".to_owned(),
        Some(by) => by.to_string(),
        None => "the server's operator".to_owned(),
    }
}

fn with_reason(text: String, reason: &str) -> String {
    if reason.is_empty() { text } else { format!("{text}: {reason}") }
}

fn role_words(role: Role) -> &'static str {
    match role {
        Role::Member => "a member",
        Role::Voice => "voice",
        Role::Moderator => "a moderator",
        Role::Owner => "an owner",
    }
}

/// What happened in `room`, as a line of its conversation: "bob was kicked by ana: spamming", "you were banned
/// from #garden by ana", "ana set the topic: …". `me` is the user, when known.
pub fn room_change_text(room: &RoomName, by: Option<&Nick>, change: &RoomChange, me: Option<&Nick>) -> String {
    let by = actor(by, me);
    let is_me = |nick: &Nick| Some(nick) == me;
    match change {
        RoomChange::Kicked { nick, reason } if is_me(nick) => {
            with_reason(format!("you were kicked from #{room} by {by}"), reason)
        }
        RoomChange::Kicked { nick, reason } => with_reason(format!("{nick} was kicked by {by}"), reason),
        RoomChange::Banned { nick, reason } if is_me(nick) => {
            with_reason(format!("you were banned from #{room} by {by}"), reason)
        }
        RoomChange::Banned { nick, reason } => with_reason(format!("{nick} was banned by {by}"), reason),
        RoomChange::Unbanned { nick } if is_me(nick) => format!("{by} lifted your ban from #{room}"),
        RoomChange::Unbanned { nick } => format!("{by} lifted {nick}'s ban"),
        RoomChange::Muted { nick, reason } if is_me(nick) => {
            with_reason(format!("you are muted in #{room} by {by}"), reason)
        }
        RoomChange::Muted { nick, reason } => with_reason(format!("{nick} is muted by {by}"), reason),
        RoomChange::Unmuted { nick } if is_me(nick) => format!("{by} unmuted you: you may speak again"),
        RoomChange::Unmuted { nick } => format!("{by} unmuted {nick}"),
        RoomChange::RoleSet { nick, role } => {
            let nick = if is_me(nick) { "you".to_owned() } else { nick.to_string() };
            match role {
                Role::Voice => format!("{by} gave {nick} voice"),
                role => format!("{by} made {nick} {}", role_words(*role)),
            }
        }
        RoomChange::Invited { nick } if is_me(nick) => format!("{by} invited you to #{room}"),
        RoomChange::Invited { nick } => format!("{by} invited {nick} to #{room}"),
        RoomChange::Topic { text } if text.is_empty() => format!("{by} cleared the topic"),
        RoomChange::Topic { text } => format!("{by} set the topic: {text}"),
        RoomChange::InviteOnly(true) => format!("{by} made #{room} invite-only"),
        RoomChange::InviteOnly(false) => format!("{by} opened #{room} to everyone"),
        RoomChange::Moderated(true) => format!("{by} made #{room} moderated: only voiced members speak"),
        RoomChange::Moderated(false) => format!("{by} ended moderation of #{room}: everyone speaks"),
    }
}

/// The change puts the user out of the room (a `Left` follows it).
pub fn puts_me_out(change: &RoomChange, me: &Nick) -> bool {
    matches!(change, RoomChange::Kicked { nick, .. } | RoomChange::Banned { nick, .. } if nick == me)
}

/// An invitation, with the command that takes it up.
pub fn invited_text(room: &RoomName, by: Option<&Nick>) -> String {
    format!("you were invited to #{room} by {} — /join {room}", actor(by, None))
}

/// The user's standing and the room's settings, when any differs from the defaults, for a status line or a
/// header: "moderator · muted · invite-only". `None` for a plain member of an open, unmoderated room.
pub fn standing_text(state: &RoomState) -> Option<String> {
    let mut words = Vec::new();
    if state.operator {
        words.push("server operator");
    }
    if state.role != Role::Member {
        words.push(state.role.as_str());
    }
    if state.muted {
        words.push("muted");
    } else if !state.may_speak() {
        words.push("no voice");
    }
    if state.invite_only {
        words.push("invite-only");
    }
    if state.moderated {
        words.push("moderated");
    }
    (!words.is_empty()).then(|| words.join(" · "))
}
