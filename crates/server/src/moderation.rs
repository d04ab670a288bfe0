//! Room moderation's rules: who may do what to whom in a room, what a judged action writes to the store and
//! records in the audit log (`apply`, the one function that writes it, for the server's writer and for the
//! console's `palomar room`), what the room's members are told, and how that changes the view of the room each
//! session keeps (the session enforces "who may speak" from that view, without a store read per send). Only
//! `apply` touches the store; the rest is plain functions.

use palomar_proto::{Nick, Role, RoomAction, RoomChange, RoomName, RoomState};
use palomar_store::{AccountId, AuditEntry, ConvId, RoomSettings, Sanction, Standing, Store, StoreError};

/// Who asks for a moderation action, as the store knows them.
#[derive(Debug, Clone)]
pub struct Actor {
    pub nick: Nick,
    pub operator: bool,
    pub role: Role,
}

impl Actor {
    /// How much the actor may do: an operator outranks every role.
    fn rank(&self) -> u8 {
        if self.operator { OPERATOR_RANK } else { rank(self.role) }
    }
}

/// The user an action is about.
#[derive(Debug, Clone)]
pub struct Target {
    pub nick: Nick,
    pub operator: bool,
    pub standing: Standing,
}

impl Target {
    fn rank(&self) -> u8 {
        if self.operator { OPERATOR_RANK } else { rank(self.standing.role) }
    }
}

const OPERATOR_RANK: u8 = 10;

fn rank(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Voice => 1,
        Role::Moderator => 2,
        Role::Owner => 3,
    }
}

/// What an allowed action writes to the store, in the writer's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomWrite {
    /// With the reason, which only the audit log and the members' notice keep.
    Kick(String),
    Ban(Sanction),
    Unban,
    Mute(Sanction),
    Unmute,
    Role(Role),
    Invite,
    Topic(String),
    InviteOnly(bool),
    Moderated(bool),
}

impl RoomWrite {
    /// The name of the action in the audit log, and the detail kept beside it.
    pub fn audit(&self) -> (&'static str, String) {
        match self {
            RoomWrite::Kick(reason) => ("room kick", reason.clone()),
            RoomWrite::Ban(ban) => ("room ban", ban.reason.clone()),
            RoomWrite::Unban => ("room unban", String::new()),
            RoomWrite::Mute(mute) => ("room mute", mute.reason.clone()),
            RoomWrite::Unmute => ("room unmute", String::new()),
            RoomWrite::Role(role) => ("room role", role.as_str().to_owned()),
            RoomWrite::Invite => ("room invite", String::new()),
            RoomWrite::Topic(text) => ("room topic", text.clone()),
            RoomWrite::InviteOnly(on) => ("room invite-only", on_off(*on).to_owned()),
            RoomWrite::Moderated(on) => ("room moderated", on_off(*on).to_owned()),
        }
    }

    /// The write an audit entry records, read back by another server node on the same store, which is told only
    /// the entry's id; with the nickname of its target, if it has one.
    pub fn from_audit(entry: &AuditEntry) -> Option<(RoomWrite, Option<Nick>)> {
        let target = match entry.target.split_once(' ') {
            Some((_, nick)) => Some(canonical_nick(nick)?),
            None => None,
        };
        let sanction = || Sanction { reason: entry.detail.clone(), by: entry.actor.clone(), since_ms: entry.at_ms };
        let on = || match entry.detail.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        };
        let write = match entry.action.as_str() {
            "room kick" => RoomWrite::Kick(entry.detail.clone()),
            "room ban" => RoomWrite::Ban(sanction()),
            "room unban" => RoomWrite::Unban,
            "room mute" => RoomWrite::Mute(sanction()),
            "room unmute" => RoomWrite::Unmute,
            "room role" => RoomWrite::Role(Role::parse(&entry.detail)?),
            "room invite" => RoomWrite::Invite,
            "room topic" => RoomWrite::Topic(entry.detail.clone()),
            "room invite-only" => RoomWrite::InviteOnly(on()?),
            "room moderated" => RoomWrite::Moderated(on()?),
            _ => return None,
        };
        Some((write, target))
    }

    /// Whether its topic or reason is one a client can show as one line: short enough, without control
    /// characters. Asked of a moderator's action and of the console's alike.
    pub fn check_text(&self) -> Result<(), String> {
        match self {
            RoomWrite::Topic(text) => check_line("a topic", text, MAX_TOPIC_BYTES),
            RoomWrite::Kick(reason) => check_reason(reason),
            RoomWrite::Ban(sanction) | RoomWrite::Mute(sanction) => check_reason(&sanction.reason),
            _ => Ok(()),
        }
    }

    /// Why this write, allowed, changed nothing: for whoever asked.
    pub fn unchanged(&self) -> &'static str {
        match self {
            RoomWrite::Kick(_) => "not a member",
            RoomWrite::Ban(_) => "already banned for that reason",
            RoomWrite::Unban => "not banned",
            RoomWrite::Mute(_) => "already muted for that reason",
            RoomWrite::Unmute => "not muted",
            RoomWrite::Role(_) => "that is the role already",
            RoomWrite::Invite => "already invited",
            RoomWrite::Topic(_) => "that is the topic already",
            RoomWrite::InviteOnly(_) | RoomWrite::Moderated(_) => "the room is so already",
        }
    }

    /// The settings of a room after this write, from those before it.
    pub fn settings_after(&self, mut settings: RoomSettings) -> RoomSettings {
        match self {
            RoomWrite::Topic(text) => settings.topic.clone_from(text),
            RoomWrite::InviteOnly(on) => settings.invite_only = *on,
            RoomWrite::Moderated(on) => settings.moderated = *on,
            _ => {}
        }
        settings
    }

    /// What the room's members are told, once it is committed.
    pub fn change(&self, target: Option<&Nick>) -> Option<RoomChange> {
        let nick = || target.cloned();
        Some(match self {
            RoomWrite::Kick(reason) => RoomChange::Kicked { nick: nick()?, reason: reason.clone() },
            RoomWrite::Ban(ban) => RoomChange::Banned { nick: nick()?, reason: ban.reason.clone() },
            RoomWrite::Unban => RoomChange::Unbanned { nick: nick()? },
            RoomWrite::Mute(mute) => RoomChange::Muted { nick: nick()?, reason: mute.reason.clone() },
            RoomWrite::Unmute => RoomChange::Unmuted { nick: nick()? },
            RoomWrite::Role(role) => RoomChange::RoleSet { nick: nick()?, role: *role },
            RoomWrite::Invite => RoomChange::Invited { nick: nick()? },
            RoomWrite::Topic(text) => RoomChange::Topic { text: text.clone() },
            RoomWrite::InviteOnly(on) => RoomChange::InviteOnly(*on),
            RoomWrite::Moderated(on) => RoomChange::Moderated(*on),
        })
    }
}

/// Why a reason (a kick's, a ban's, a deletion's) may not be stored: it is one line, and short.
pub fn check_reason(reason: &str) -> Result<(), String> {
    check_line("a reason", reason, MAX_REASON_BYTES)
}

fn check_line(what: &str, text: &str, limit: usize) -> Result<(), String> {
    if text.len() > limit {
        return Err(format!("{what} is at most {limit} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{what} is one line of text, without control characters"));
    }
    Ok(())
}

/// The room an audit entry of a room's is about (its target is `#room` or `#room nick`).
pub fn audited_room(entry: &AuditEntry) -> Option<RoomName> {
    let room = entry.target.split(' ').next()?.strip_prefix('#')?;
    RoomName::parse(room).ok().filter(|name| name.as_str() == room)
}

/// `raw` if it is a nickname as the protocol writes one: an audit entry's actor may be an operator at the console.
pub fn canonical_nick(raw: &str) -> Option<Nick> {
    Nick::parse(raw).ok().filter(|nick| nick.as_str() == raw)
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Longest topic, in bytes: it is shown in every member's header.
pub const MAX_TOPIC_BYTES: usize = 512;
/// Longest reason given for a kick, a ban or a mute, in bytes.
pub const MAX_REASON_BYTES: usize = 512;

/// Whether `actor` may do `action` in `room` (to `target`, when it is about a user), and what it writes; the
/// refusal says why, for the person who asked. `now_ms` dates a ban or a mute.
pub fn judge(
    actor: &Actor,
    target: Option<&Target>,
    action: RoomAction,
    room: &RoomName,
    now_ms: u64,
) -> Result<RoomWrite, String> {
    if !actor.operator && actor.role < Role::Moderator {
        return Err(format!("only the moderators of #{room} and the server's operators may do that"));
    }
    let sanction =
        |reason: String| Sanction { reason: reason.trim().to_owned(), by: actor.nick.to_string(), since_ms: now_ms };
    let write = match action {
        RoomAction::Kick { reason, .. } => RoomWrite::Kick(reason.trim().to_owned()),
        RoomAction::Ban { reason, .. } => RoomWrite::Ban(sanction(reason)),
        RoomAction::Unban { .. } => RoomWrite::Unban,
        RoomAction::Mute { reason, .. } => RoomWrite::Mute(sanction(reason)),
        RoomAction::Unmute { .. } => RoomWrite::Unmute,
        RoomAction::SetRole { role: Role::Owner, .. } => {
            return Err(format!("#{room} has one owner, its creator; make {} a moderator instead", nick_of(target)));
        }
        RoomAction::SetRole { role, .. } => {
            let moderator_rights =
                role == Role::Moderator || target.is_some_and(|t| t.standing.role >= Role::Moderator);
            if moderator_rights && !actor.operator && actor.role < Role::Owner {
                return Err(format!("only the owner of #{room} and the server's operators make and unmake moderators"));
            }
            RoomWrite::Role(role)
        }
        RoomAction::Invite { .. } => RoomWrite::Invite,
        RoomAction::Topic { text } => RoomWrite::Topic(text.trim().to_owned()),
        RoomAction::InviteOnly(on) => RoomWrite::InviteOnly(on),
        RoomAction::Moderated(on) => RoomWrite::Moderated(on),
    };
    write.check_text()?;
    if let Some(target) = target {
        let invites = matches!(write, RoomWrite::Invite);
        if target.nick == actor.nick && !invites {
            return Err("moderators do not moderate themselves".into());
        }
        // Everyone may be invited; anything else only happens to users the actor outranks, so moderators cannot
        // act on each other and nobody but an operator on the owner.
        if !invites && target.rank() >= actor.rank() {
            let who = if target.operator {
                "one of the server's operators".to_owned()
            } else {
                target.standing.role.as_str().to_owned()
            };
            return Err(format!("{} is {who} of #{room}, as far up as you or further", target.nick));
        }
    }
    Ok(write)
}

fn nick_of(target: Option<&Target>) -> String {
    target.map_or_else(|| "them".to_owned(), |t| t.nick.to_string())
}

/// A room's state as a session of `me` shows it, from the store's rows.
pub fn room_state(room: RoomName, settings: RoomSettings, standing: &Standing, operator: bool) -> RoomState {
    RoomState {
        room,
        topic: settings.topic,
        invite_only: settings.invite_only,
        moderated: settings.moderated,
        role: standing.role,
        muted: standing.muted.is_some(),
        operator,
    }
}

/// Applies what the members were told to `state`, the room as `me` sees it; true when `state` changed.
pub fn follow(state: &mut RoomState, me: &Nick, change: &RoomChange) -> bool {
    let before = state.clone();
    match change {
        RoomChange::Topic { text } => state.topic.clone_from(text),
        RoomChange::InviteOnly(on) => state.invite_only = *on,
        RoomChange::Moderated(on) => state.moderated = *on,
        RoomChange::Muted { nick, .. } if nick == me => state.muted = true,
        RoomChange::Unmuted { nick } if nick == me => state.muted = false,
        RoomChange::RoleSet { nick, role } if nick == me => state.role = *role,
        RoomChange::Banned { nick, .. } if nick == me => state.role = Role::Member,
        _ => {}
    }
    *state != before
}

/// How the audit log names who did something and to what.
#[derive(Debug, Clone)]
pub struct AuditNames {
    pub actor: String,
    pub target: String,
}

/// What a moderator's action came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moderated {
    /// False when the store already was as asked (muting a muted user): nothing was written or recorded.
    pub changed: bool,
    /// The target was a member of the room before; after a kick or a ban it is not.
    pub was_member: bool,
    /// The audit log entry that records it, when it changed something.
    pub audit: Option<i64>,
}

/// Writes an allowed action in room `conv` and its audit entry, unless the store is already as asked: in the
/// server's writer's transaction, or in the console's (`palomar room`).
pub fn apply(
    db: &dyn Store,
    conv: ConvId,
    target: Option<AccountId>,
    write: &RoomWrite,
    audit: &AuditNames,
    now: u64,
) -> Result<Moderated, StoreError> {
    let was_member = match target {
        Some(target) => db.is_member(conv, target)?,
        None => false,
    };
    let changed = match (write, target) {
        (RoomWrite::Kick(_), Some(target)) => db.remove_member(conv, target)?,
        (RoomWrite::Ban(ban), Some(target)) => db.set_banned(conv, target, Some(ban))?,
        (RoomWrite::Unban, Some(target)) => db.set_banned(conv, target, None)?,
        (RoomWrite::Mute(mute), Some(target)) => db.set_muted(conv, target, Some(mute))?,
        (RoomWrite::Unmute, Some(target)) => db.set_muted(conv, target, None)?,
        (RoomWrite::Role(role), Some(target)) => {
            let changed = db.standing(conv, target)?.role != *role;
            if changed {
                db.set_role(conv, target, *role)?;
            }
            changed
        }
        (RoomWrite::Invite, Some(target)) => {
            db.set_invited(conv, target, true)?;
            true
        }
        (RoomWrite::Topic(_) | RoomWrite::InviteOnly(_) | RoomWrite::Moderated(_), _) => {
            let before = db.room_settings(conv)?;
            let after = write.settings_after(before.clone());
            let changed = after != before;
            if changed {
                db.set_room_settings(conv, &after)?;
            }
            changed
        }
        (_, None) => false,
    };
    let audit = if changed {
        let (action, detail) = write.audit();
        Some(db.record_audit(now, &audit.actor, action, &audit.target, &detail)?)
    } else {
        None
    };
    Ok(Moderated { changed, was_member, audit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).expect("valid")
    }

    fn actor(role: Role) -> Actor {
        Actor { nick: nick("mod"), operator: false, role }
    }

    fn target(role: Role) -> Target {
        Target { nick: nick("bob"), operator: false, standing: Standing { role, ..Standing::default() } }
    }

    fn kick() -> RoomAction {
        RoomAction::Kick { nick: "bob".into(), reason: "spam".into() }
    }

    fn room() -> RoomName {
        RoomName::parse("garden").expect("valid")
    }

    #[test]
    fn members_and_voices_moderate_nothing() {
        for role in [Role::Member, Role::Voice] {
            assert!(judge(&actor(role), Some(&target(Role::Member)), kick(), &room(), 1).is_err());
            assert!(judge(&actor(role), None, RoomAction::Topic { text: "t".into() }, &room(), 1).is_err());
        }
    }

    #[test]
    fn moderators_act_on_those_below_them_only() {
        let moderator = actor(Role::Moderator);
        assert_eq!(
            judge(&moderator, Some(&target(Role::Member)), kick(), &room(), 1),
            Ok(RoomWrite::Kick("spam".into()))
        );
        assert_eq!(
            judge(&moderator, Some(&target(Role::Voice)), kick(), &room(), 1),
            Ok(RoomWrite::Kick("spam".into()))
        );
        assert!(judge(&moderator, Some(&target(Role::Moderator)), kick(), &room(), 1).is_err());
        assert!(judge(&moderator, Some(&target(Role::Owner)), kick(), &room(), 1).is_err());
        let operator = Target { operator: true, ..target(Role::Member) };
        assert!(judge(&actor(Role::Owner), Some(&operator), kick(), &room(), 1).is_err(), "operators are out of reach");
        let op = Actor { operator: true, ..actor(Role::Member) };
        assert_eq!(judge(&op, Some(&target(Role::Owner)), kick(), &room(), 1), Ok(RoomWrite::Kick("spam".into())));
    }

    #[test]
    fn only_owners_and_operators_make_moderators_and_nobody_makes_owners() {
        let set = |role| RoomAction::SetRole { nick: "bob".into(), role };
        assert!(judge(&actor(Role::Moderator), Some(&target(Role::Member)), set(Role::Moderator), &room(), 1).is_err());
        assert_eq!(
            judge(&actor(Role::Moderator), Some(&target(Role::Member)), set(Role::Voice), &room(), 1),
            Ok(RoomWrite::Role(Role::Voice))
        );
        assert_eq!(
            judge(&actor(Role::Owner), Some(&target(Role::Member)), set(Role::Moderator), &room(), 1),
            Ok(RoomWrite::Role(Role::Moderator))
        );
        assert_eq!(
            judge(&actor(Role::Owner), Some(&target(Role::Moderator)), set(Role::Member), &room(), 1),
            Ok(RoomWrite::Role(Role::Member))
        );
        let op = Actor { operator: true, ..actor(Role::Member) };
        assert!(judge(&op, Some(&target(Role::Member)), set(Role::Owner), &room(), 1).is_err());
    }

    #[test]
    fn nobody_moderates_themselves_but_anyone_may_be_invited() {
        let me = Target { nick: nick("mod"), ..target(Role::Member) };
        let op = Actor { operator: true, ..actor(Role::Member) };
        assert!(
            judge(&op, Some(&me), RoomAction::Kick { nick: "mod".into(), reason: String::new() }, &room(), 1).is_err()
        );
        let invite = RoomAction::Invite { nick: "bob".into() };
        assert_eq!(
            judge(&actor(Role::Moderator), Some(&target(Role::Owner)), invite, &room(), 1),
            Ok(RoomWrite::Invite)
        );
    }

    #[test]
    fn bans_and_mutes_keep_who_and_why_and_topics_are_one_bounded_line() {
        let ban = RoomAction::Ban { nick: "bob".into(), reason: " flooding ".into() };
        let Ok(RoomWrite::Ban(sanction)) = judge(&actor(Role::Moderator), Some(&target(Role::Member)), ban, &room(), 7)
        else {
            panic!("allowed")
        };
        assert_eq!(sanction, Sanction { reason: "flooding".into(), by: "mod".into(), since_ms: 7 });
        let topic =
            |text: &str| judge(&actor(Role::Moderator), None, RoomAction::Topic { text: text.into() }, &room(), 1);
        assert_eq!(topic(" Welcome "), Ok(RoomWrite::Topic("Welcome".into())));
        assert!(topic("two\nlines").is_err());
        assert!(topic(&"x".repeat(MAX_TOPIC_BYTES + 1)).is_err());
        let kick = |reason: &str| {
            let action = RoomAction::Kick { nick: "bob".into(), reason: reason.into() };
            judge(&actor(Role::Moderator), Some(&target(Role::Member)), action, &room(), 1)
        };
        assert_eq!(kick(" spam "), Ok(RoomWrite::Kick("spam".into())));
        assert!(kick("a\x1b[2Jb").is_err(), "a reason is one line too, as the console has always asked");
        assert!(kick(&"x".repeat(MAX_REASON_BYTES + 1)).is_err());
    }

    #[test]
    fn another_node_reads_every_write_back_from_its_audit_entry() {
        let sanction = Sanction { reason: "a reason, with words".into(), by: "mod".into(), since_ms: 5 };
        let writes = [
            RoomWrite::Kick("spam".into()),
            RoomWrite::Ban(sanction.clone()),
            RoomWrite::Unban,
            RoomWrite::Mute(sanction),
            RoomWrite::Unmute,
            RoomWrite::Role(Role::Voice),
            RoomWrite::Invite,
            RoomWrite::Topic("Seeds and soil".into()),
            RoomWrite::InviteOnly(true),
            RoomWrite::Moderated(false),
        ];
        for write in writes {
            let (action, detail) = write.audit();
            let about_a_user = write.change(None).is_none();
            let target = if about_a_user { "#garden bob" } else { "#garden" };
            let entry = AuditEntry {
                id: 1,
                at_ms: 5,
                actor: "mod".into(),
                action: action.into(),
                target: target.into(),
                detail,
            };
            let expected_target = about_a_user.then(|| nick("bob"));
            assert_eq!(RoomWrite::from_audit(&entry), Some((write, expected_target)));
        }
        let console = AuditEntry {
            id: 2,
            at_ms: 1,
            actor: "operator (uid 0, root)".into(),
            action: "user suspend".into(),
            target: "bob".into(),
            detail: String::new(),
        };
        assert_eq!(RoomWrite::from_audit(&console), None, "not a room's entry");
        assert_eq!(audited_room(&console), None);
        let topic = AuditEntry { target: "#garden".into(), action: "room topic".into(), ..console };
        assert_eq!(audited_room(&topic), Some(room()));
        assert_eq!(canonical_nick("operator (uid 0, root)"), None);
    }

    #[test]
    fn a_session_follows_what_its_room_is_told() {
        let me = nick("bob");
        let mut state = room_state(room(), RoomSettings::default(), &Standing::default(), false);
        assert!(state.may_speak());
        assert!(follow(&mut state, &me, &RoomChange::Muted { nick: me.clone(), reason: String::new() }));
        assert!(!state.may_speak());
        assert!(!follow(&mut state, &me, &RoomChange::Muted { nick: nick("ana"), reason: String::new() }), "not me");
        assert!(follow(&mut state, &me, &RoomChange::Unmuted { nick: me.clone() }));
        assert!(follow(&mut state, &me, &RoomChange::Moderated(true)));
        assert!(!state.may_speak(), "a moderated room without voice");
        assert!(follow(&mut state, &me, &RoomChange::RoleSet { nick: me.clone(), role: Role::Voice }));
        assert!(state.may_speak());
        assert!(follow(&mut state, &me, &RoomChange::Topic { text: "hello".into() }));
        assert_eq!(state.topic, "hello");
    }
}
