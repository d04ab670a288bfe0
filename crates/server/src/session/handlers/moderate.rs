//! `Moderate`: a moderator's action in a room, judged against the roles the store holds, written with its audit
//! entry in one transaction, then told to the room's members (and to the user it was done to).

use palomar_proto::{ErrorCode, Nick, RoomAction, ServerMsg, unix_ms};
use palomar_store::{Account, ConvId, ConvKey};

use crate::moderation::{self, Actor, AuditNames, RoomWrite, Target};
use crate::session::{Session, SessionEnd};

/// What the store says about a moderation request before it is judged.
struct Found {
    conv: ConvId,
    actor: Actor,
    /// The user the action is about, and whether it is a member of the room.
    target: Option<(Account, Target, bool)>,
}

/// Why a request could not even be judged.
enum NotFound {
    Room,
    Nick(Nick),
}

impl Session {
    pub(super) async fn moderate(&mut self, raw: &str, action: RoomAction) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let target_nick = match action.target().map(Nick::parse) {
            None => None,
            Some(Ok(nick)) => Some(nick),
            Some(Err(error)) => {
                self.error(ErrorCode::InvalidName, error.to_string(), None);
                return Ok(());
            }
        };
        let me = self.account.clone();
        let key = ConvKey::Room(room.clone());
        let found = self
            .read(move |db| {
                let Some(row) = db.conversation(&key)? else { return Ok(Err(NotFound::Room)) };
                let actor =
                    Actor { operator: db.is_operator(me.id)?, role: db.standing(row.id, me.id)?.role, nick: me.nick };
                let target = match target_nick {
                    None => None,
                    Some(nick) => {
                        let Some(account) = db.account(&nick)? else { return Ok(Err(NotFound::Nick(nick))) };
                        let target = Target {
                            nick: account.nick.clone(),
                            operator: db.is_operator(account.id)?,
                            standing: db.standing(row.id, account.id)?,
                        };
                        let member = db.is_member(row.id, account.id)?;
                        Some((account, target, member))
                    }
                };
                Ok(Ok(Found { conv: row.id, actor, target }))
            })
            .await?;
        let Found { conv, actor, target } = match found {
            Ok(found) => found,
            Err(NotFound::Room) => {
                self.error(ErrorCode::NotMember, format!("there is no room #{room}"), None);
                return Ok(());
            }
            Err(NotFound::Nick(nick)) => {
                self.error(ErrorCode::UnknownNick, format!("there is no user named {nick}"), None);
                return Ok(());
            }
        };
        let write = match moderation::judge(&actor, target.as_ref().map(|(_, t, _)| t), action, &room, unix_ms()) {
            Ok(write) => write,
            Err(why) => {
                self.error(ErrorCode::NotAllowed, why, None);
                return Ok(());
            }
        };
        if let (RoomWrite::Kick(_), Some((account, _, false))) = (&write, &target) {
            self.error(ErrorCode::NotMember, format!("{} is not in #{room}", account.nick), None);
            return Ok(());
        }
        let target_name = target.as_ref().map_or(String::new(), |(account, _, _)| format!(" {}", account.nick));
        let audit = AuditNames { actor: actor.nick.to_string(), target: format!("#{room}{target_name}") };
        let target_id = target.as_ref().map(|(account, _, _)| account.id);
        let moderated = match self.shared.writer.moderate(conv, target_id, write.clone(), audit).await {
            Ok(moderated) => moderated,
            Err(failed) => {
                self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
                return Ok(());
            }
        };
        if !moderated.changed {
            self.error(ErrorCode::Protocol, format!("nothing to change: {}", write.unchanged()), None);
            return Ok(());
        }
        let Some(change) = write.change(target.as_ref().map(|(account, _, _)| &account.nick)) else { return Ok(()) };
        let by = Some(&actor.nick);
        let hub = &self.shared.hub;
        hub.room_changed(conv, &room, by, &change, moderated.audit);
        match (&write, &target) {
            // Whether it was a member as the writer's transaction saw it, not as read before.
            (RoomWrite::Kick(_) | RoomWrite::Ban(_), Some((account, _, _))) if moderated.was_member => {
                hub.removed_from_room(account, conv, &room);
            }
            (RoomWrite::Invite, Some((account, _, _))) => hub.invited(account.id, &room, by),
            _ => {}
        }
        // An operator acting on a room it is not in hears no echo from the room: it is answered here.
        if !self.keys_of.contains_key(&conv) {
            self.queue_since_v2(&ServerMsg::RoomEvent { room, by: Some(actor.nick), change });
        }
        Ok(())
    }
}
