//! `palomar room`: the rooms of a server's store as an operator at the console sees and moderates them: the rooms
//! with their members and settings, one room's roles, bans, mutes and invitations, and the moderators' actions
//! (kick, ban, mute, roles, invitations, topic, settings). An action is written straight to the store with its
//! audit entry, in one transaction; a running server finds it in the audit log within half a second and tells the
//! room's members. Moderators and the server's operators do the same from a chat client, with slash commands.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palomar_proto::{Nick, Role, RoomName, unix_ms};
use palomar_server::moderation::{self, AuditNames, RoomWrite};
use palomar_store::{ConvKey, Durability, Location, Sanction, Store};

use crate::user::StoreChoice;

#[derive(Args)]
pub struct RoomArgs {
    #[command(flatten)]
    store: StoreChoice,
    #[command(subcommand)]
    action: RoomCommand,
}

#[derive(Subcommand)]
enum RoomCommand {
    /// Every room, with its number of members and its settings.
    List,
    /// One room: its settings, who has a role in it, who is banned, muted or invited.
    Show { room: String },
    #[command(flatten)]
    Moderate(ModerateCommand),
}

/// What an operator at the console does to a room, as its moderators do from a chat client.
#[derive(Subcommand)]
enum ModerateCommand {
    /// End NICK's membership of ROOM (NICK may join again).
    Kick {
        room: String,
        nick: String,
        /// Why, as the room's members are told.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End NICK's membership of ROOM and keep the account out until unbanned.
    Ban {
        room: String,
        nick: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Unban {
        room: String,
        nick: String,
    },
    /// Keep NICK in ROOM, reading, but refuse what NICK sends to it.
    Mute {
        room: String,
        nick: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Unmute {
        room: String,
        nick: String,
    },
    /// Give NICK a role in ROOM: member, voice, moderator or owner (only here can a room get another owner).
    Role {
        room: String,
        nick: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Let NICK join ROOM while it is invite-only.
    Invite {
        room: String,
        nick: String,
    },
    /// Set ROOM's topic ("" clears it).
    Topic {
        room: String,
        text: String,
    },
    /// Let only members, the invited, moderators and operators join ROOM (on), or everyone (off).
    InviteOnly {
        room: String,
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set)]
        on: bool,
    },
    /// Let only members with voice, moderators and operators speak in ROOM (on), or everyone (off).
    Moderated {
        room: String,
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set)]
        on: bool,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).ok_or_else(|| format!("{raw:?} is not a role: member, voice, moderator or owner"))
}

fn parse_on_off(raw: &str) -> Result<bool, String> {
    match raw {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{raw:?}: on or off")),
    }
}

/// An action of the console's, before its room and nickname are looked up.
struct Action {
    room: String,
    nick: Option<String>,
    write: RoomWrite,
}

impl ModerateCommand {
    fn action(self, operator: &str, now: u64) -> Action {
        let sanction = |reason: String| Sanction { reason, by: operator.to_owned(), since_ms: now };
        let (room, nick, write) = match self {
            ModerateCommand::Kick { room, nick, reason } => (room, Some(nick), RoomWrite::Kick(reason)),
            ModerateCommand::Ban { room, nick, reason } => (room, Some(nick), RoomWrite::Ban(sanction(reason))),
            ModerateCommand::Unban { room, nick } => (room, Some(nick), RoomWrite::Unban),
            ModerateCommand::Mute { room, nick, reason } => (room, Some(nick), RoomWrite::Mute(sanction(reason))),
            ModerateCommand::Unmute { room, nick } => (room, Some(nick), RoomWrite::Unmute),
            ModerateCommand::Role { room, nick, role } => (room, Some(nick), RoomWrite::Role(role)),
            ModerateCommand::Invite { room, nick } => (room, Some(nick), RoomWrite::Invite),
            ModerateCommand::Topic { room, text } => (room, None, RoomWrite::Topic(text)),
            ModerateCommand::InviteOnly { room, on } => (room, None, RoomWrite::InviteOnly(on)),
            ModerateCommand::Moderated { room, on } => (room, None, RoomWrite::Moderated(on)),
        };
        Action { room, nick, write }
    }
}

/// Carries out an operator's action at the console, with its audit entry, in one transaction.
fn act(db: &dyn Store, action: Action, operator: String, now: u64) -> anyhow::Result<String> {
    let room = RoomName::parse(&action.room).map_err(|e| anyhow::anyhow!("{:?}: {e}", action.room))?;
    let Some(row) = db.conversation(&ConvKey::Room(room.clone()))? else { bail!("there is no room #{room}") };
    let target = match &action.nick {
        Some(raw) => {
            let nick = Nick::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))?;
            let Some(account) = db.account(&nick)? else { bail!("there is no account {nick}") };
            Some(account)
        }
        None => None,
    };
    action.write.check_text().map_err(anyhow::Error::msg)?;
    let target_name = target.as_ref().map_or(String::new(), |account| format!(" {}", account.nick));
    let audit = AuditNames { actor: operator, target: format!("#{room}{target_name}") };
    db.begin()?;
    let applied = moderation::apply(db, row.id, target.as_ref().map(|a| a.id), &action.write, &audit, now);
    let moderated = match applied.and_then(|moderated| db.commit().map(|()| moderated)) {
        Ok(moderated) => moderated,
        Err(error) => {
            db.rollback();
            return Err(error.into());
        }
    };
    if !moderated.changed {
        bail!("nothing to change: {}", action.write.unchanged());
    }
    let nick = target.map_or_else(String::new, |account| account.nick.to_string());
    Ok(match &action.write {
        RoomWrite::Kick(_) => format!("{nick} was kicked from #{room}"),
        RoomWrite::Ban(_) => format!("{nick} is banned from #{room}"),
        RoomWrite::Unban => format!("{nick} may join #{room} again"),
        RoomWrite::Mute(_) => format!("{nick} is muted in #{room}"),
        RoomWrite::Unmute => format!("{nick} may speak in #{room} again"),
        RoomWrite::Role(role) => format!("{nick} is {} of #{room}", role.as_str()),
        RoomWrite::Invite => format!("{nick} may join #{room}"),
        RoomWrite::Topic(text) if text.is_empty() => format!("#{room} has no topic"),
        RoomWrite::Topic(text) => format!("the topic of #{room} is: {text}"),
        RoomWrite::InviteOnly(true) => format!("#{room} is invite-only"),
        RoomWrite::InviteOnly(false) => format!("#{room} is open to everyone"),
        RoomWrite::Moderated(true) => format!("#{room} is moderated"),
        RoomWrite::Moderated(false) => format!("everyone may speak in #{room}"),
    })
}

pub fn run(args: RoomArgs) -> anyhow::Result<ExitCode> {
    let (_, location) = args.store.locate()?;
    if let Location::Sqlite(store) = &location
        && !store.exists()
    {
        bail!("no store at {}: wrong --data?", store.display());
    }
    let db = location.open(Durability::Full).with_context(|| format!("cannot open the store {location}"))?;
    match args.action {
        RoomCommand::Moderate(command) => {
            let (now, operator) = (unix_ms(), crate::user::operator());
            let action = command.action(&operator, now);
            println!("{}", act(&*db, action, operator, now)?);
        }
        RoomCommand::List => {
            for row in db.all_conversations()? {
                let ConvKey::Room(room) = &row.key else { continue };
                let members = db.members(row.id)?.len();
                let settings = db.room_settings(row.id)?;
                let mut flags = Vec::new();
                if settings.invite_only {
                    flags.push("invite-only");
                }
                if settings.moderated {
                    flags.push("moderated");
                }
                let flags = if flags.is_empty() { String::new() } else { format!("\t{}", flags.join(", ")) };
                let topic = if settings.topic.is_empty() { String::new() } else { format!("\t{}", settings.topic) };
                println!("#{room}\t{members} members{flags}{topic}");
            }
        }
        RoomCommand::Show { room: raw } => {
            let room = RoomName::parse(&raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))?;
            let Some(row) = db.conversation(&ConvKey::Room(room.clone()))? else { bail!("there is no room #{room}") };
            let moderation = db.room_moderation(row.id)?;
            let settings = &moderation.settings;
            println!("#{room}: {} members", db.members(row.id)?.len());
            println!("topic: {}", if settings.topic.is_empty() { "(none)" } else { &settings.topic });
            println!("invite-only: {}", yes_no(settings.invite_only));
            println!("moderated: {}", yes_no(settings.moderated));
            for (nick, role) in &moderation.roles {
                println!("role\t{nick}\t{}", role.as_str());
            }
            for (nick, ban) in &moderation.bans {
                println!("banned\t{nick}\t{}", sanction(ban));
            }
            for (nick, mute) in &moderation.mutes {
                println!("muted\t{nick}\t{}", sanction(mute));
            }
            for nick in &moderation.invited {
                println!("invited\t{nick}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

/// "since …, by …: reason".
fn sanction(sanction: &Sanction) -> String {
    let why = if sanction.reason.is_empty() { "no reason given" } else { &sanction.reason };
    format!("since {}, by {}: {why}", crate::output::utc_datetime(sanction.since_ms), sanction.by)
}
