//! What the hub put beside the session's live queue: changes to the user's conversations made elsewhere (a
//! join or leave in another session, a direct conversation deleted with a removed account, a moderator's action
//! in one of its rooms, an invitation), and the kinds of live items the queue had no room for, read back from the
//! store and the hub, which hold all of them.

use std::collections::{HashMap, HashSet};

use palomar_proto::{Conversation, Nick, RoomName, ServerMsg};
use palomar_store::{ConvId, ConvKey, ConvRow};

use super::handlers::Roster;
use super::{OUT_BUDGET, Session, SessionEnd};
use crate::hub::{Change, PendingChanges};

impl Session {
    /// Takes what the hub put beside this session's queue: changes made elsewhere, then whatever the queue had no
    /// room for.
    pub(super) async fn take_pending(&mut self, pending: &PendingChanges) -> Result<(), SessionEnd> {
        let missed = pending.take_missed();
        if missed.account_removed {
            return Err(SessionEnd::AccountRemoved);
        }
        if missed.account_suspended {
            let (account, now) = (self.account.id, palomar_proto::unix_ms());
            if let Some(suspension) = self.read(move |db| db.suspension_of(account, now)).await? {
                return Err(SessionEnd::Suspended(crate::auth::suspended(&suspension)));
            }
        }
        for change in pending.take_changes() {
            self.follow(change).await?;
        }
        if missed.conversations {
            self.reread_conversations().await?;
        } else if missed.direct {
            self.track_new_directs().await?;
        }
        if missed.messages {
            self.catch_up_all().await?;
        }
        if missed.presence {
            self.send_rosters().await?;
        }
        if missed.awareness {
            // Its own away message is in its own rooms' rosters only if it is shown online: sent here too.
            self.send_own_awareness().await?;
        }
        Ok(())
    }

    /// Follows a change to the user's conversations made elsewhere: a room another session of the user joined
    /// from where that session started it, so both show it from the same message.
    async fn follow(&mut self, change: Change) -> Result<(), SessionEnd> {
        match change {
            Change::Joined { conv, joined_after, .. } if !self.keys_of.contains_key(&conv) => {
                if let Some(row) = self.read(move |db| db.conversation_by_id(conv)).await? {
                    return self.enter_room(row, joined_after).await;
                }
            }
            Change::Left { conv, room } if self.keys_of.contains_key(&conv) => self.untrack_room(conv, room),
            Change::DirectDeleted { conv, peer } if self.keys_of.contains_key(&conv) => self.untrack_direct(conv, peer),
            Change::Room { conv, room, by, change } => self.room_changed(conv, room, by, change),
            Change::Invited { room, by } => self.queue_since_v2(&ServerMsg::Invited { room, by }),
            _ => {}
        }
        Ok(())
    }

    /// The direct conversation `conv` was deleted with `peer`'s account: the client forgets it too.
    fn untrack_direct(&mut self, conv: ConvId, peer: Nick) {
        self.untrack_conversation(conv);
        let reason = format!("the account {peer} was removed, and your direct conversation with it deleted");
        self.out.queue(&ServerMsg::Closed { conversation: Conversation::Direct(peer), reason });
    }

    /// Tracks the direct conversations opened since this session began: the first message of one may be among
    /// the dropped.
    async fn track_new_directs(&mut self) -> Result<(), SessionEnd> {
        let account = self.account.id;
        let rows = self.read(move |db| db.conversations_of(account)).await?;
        for row in rows {
            if matches!(row.key, ConvKey::Direct(..)) && !self.keys_of.contains_key(&row.id) {
                self.track_new_direct(row.id, row.key);
            }
        }
        Ok(())
    }

    /// Brings the session's conversations in line with the store, when the changes made elsewhere were too many
    /// to keep: rooms joined elsewhere are sent from the saved cursor, and what is gone is forgotten.
    async fn reread_conversations(&mut self) -> Result<(), SessionEnd> {
        let account = self.account.id;
        let memberships = self.read(move |db| db.memberships_of(account)).await?;
        let current: HashMap<ConvId, &ConvRow> = memberships.iter().map(|(_, row)| (row.id, row)).collect();
        let gone: Vec<(ConvId, ConvKey)> = self
            .keys_of
            .iter()
            .filter(|(conv, _)| !current.contains_key(conv))
            .map(|(conv, key)| (*conv, key.clone()))
            .collect();
        for (conv, key) in gone {
            match key {
                ConvKey::Room(room) => self.untrack_room(conv, room),
                ConvKey::Direct(..) => match self.view(&key) {
                    Conversation::Direct(peer) => self.untrack_direct(conv, peer),
                    Conversation::Room(_) => {}
                },
            }
        }
        for (cursor, row) in memberships {
            if self.keys_of.contains_key(&row.id) {
                continue;
            }
            match row.key {
                ConvKey::Room(_) => self.enter_room(row, cursor).await?,
                ConvKey::Direct(..) => {
                    self.track_new_direct(row.id, row.key);
                }
            }
        }
        // Moderators' changes to the rooms were among what did not fit: the rooms' states are read again too.
        let standings = self.read(move |db| db.standings_of(account)).await?;
        self.know_room_states(standings);
        self.send_room_states().await
    }

    /// Sends each room's members, online and not (with their away messages and read markers, in version 6), in
    /// place of the presence notices that were dropped: every online member's away message restated, `None` for
    /// those who are back, since an `Away` saying so may be among what was dropped.
    async fn send_rosters(&mut self) -> Result<(), SessionEnd> {
        let rooms: Vec<(ConvId, RoomName)> = self
            .keys_of
            .iter()
            .filter_map(|(conv, key)| match key {
                ConvKey::Room(room) => Some((*conv, room.clone())),
                ConvKey::Direct(..) => None,
            })
            .collect();
        let convs: Vec<ConvId> = rooms.iter().map(|(conv, _)| *conv).collect();
        let aware = self.version >= palomar_proto::AWARENESS_VERSION;
        let pending: Vec<Vec<(Nick, u64)>> = convs.iter().map(|conv| self.pending_read_markers_in(*conv)).collect();
        let rosters: Vec<Roster> =
            self.read(move |db| convs.iter().map(|conv| Roster::read(db, *conv, aware)).collect()).await?;
        let mut restated = HashSet::new();
        for (((conv, room), roster), pending) in rooms.into_iter().zip(rosters).zip(pending) {
            self.queue_roster(conv, room, roster.with_pending(pending), Some(&mut restated));
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        Ok(())
    }
}
