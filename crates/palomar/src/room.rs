//! `palomar room`: what the moderators of a server's rooms have set, read from its store (the rooms with their
//! members and settings; one room's roles, bans, mutes and invitations). Moderators and the server's operators
//! change them from a chat client, with the slash commands.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palomar_proto::RoomName;
use palomar_store::{ConvKey, Durability, Location, Sanction};

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
