//! The rooms' settings and the user's standing in them: what the session tells the client (`RoomState`), keeps
//! to refuse the sends the user may not make, and changes as moderators act (`RoomEvent`).

use palomar_proto::{Nick, RoomChange, RoomName, RoomState, ServerMsg};
use palomar_store::{ConvId, ConvKey, RoomSettings, RoomStanding, Standing};

use super::{OUT_BUDGET, Session, SessionEnd};
use crate::moderation;

impl Session {
    /// Takes the rooms' standings read from the store (at login, or again after missed changes) as what the
    /// session knows of them. An operator's rooms all differ from the defaults: it moderates every one.
    pub(super) fn know_room_states(&mut self, standings: Vec<RoomStanding>) {
        self.room_states.clear();
        for RoomStanding { conversation, settings, standing } in standings {
            if let Some(ConvKey::Room(room)) = self.keys_of.get(&conversation) {
                let state = moderation::room_state(room.clone(), settings, &standing, self.operator);
                self.room_states.insert(conversation, state);
            }
        }
        if self.operator {
            for (conv, key) in &self.keys_of {
                if let ConvKey::Room(room) = key {
                    self.room_states.entry(*conv).or_insert_with(|| default_state(room.clone(), true));
                }
            }
        }
    }

    /// Tells the client the state of every room the session knows one of (after a login, or after reading them
    /// again).
    pub(super) async fn send_room_states(&mut self) -> Result<(), SessionEnd> {
        let states: Vec<RoomState> = self.room_states.values().cloned().collect();
        for state in states {
            self.queue_since_v2(&ServerMsg::RoomState(state));
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Reads the state of a room the user has just come into, and tells the client.
    pub(super) async fn send_room_state(&mut self, conv: ConvId, room: RoomName) -> Result<(), SessionEnd> {
        let account = self.account.id;
        let (settings, standing) =
            self.read(move |db| Ok((db.room_settings(conv)?, db.standing(conv, account)?))).await?;
        let state = moderation::room_state(room, settings, &standing, self.operator);
        self.queue_since_v2(&ServerMsg::RoomState(state.clone()));
        self.room_states.insert(conv, state);
        Ok(())
    }

    /// Why the user may not send to room `conv` now, if it may not.
    pub(super) fn speech_refused(&self, conv: ConvId) -> Option<String> {
        let state = self.room_states.get(&conv)?;
        if state.may_speak() {
            None
        } else if state.muted {
            Some(format!("you are muted in #{}", state.room))
        } else {
            Some(format!("#{} is moderated: only those given voice may speak", state.room))
        }
    }

    /// Tells the client what a moderator changed in a room the user is in, and follows it.
    pub(super) fn room_changed(&mut self, conv: ConvId, room: RoomName, by: Option<Nick>, change: RoomChange) {
        if !self.keys_of.contains_key(&conv) {
            return;
        }
        let state = self.room_states.entry(conv).or_insert_with(|| default_state(room.clone(), self.operator));
        let changed = moderation::follow(state, &self.account.nick, &change);
        let state = state.clone();
        self.queue_since_v2(&ServerMsg::RoomEvent { room, by, change });
        if changed {
            self.queue_since_v2(&ServerMsg::RoomState(state));
        }
    }
}

fn default_state(room: RoomName, operator: bool) -> RoomState {
    moderation::room_state(room, RoomSettings::default(), &Standing::default(), operator)
}
