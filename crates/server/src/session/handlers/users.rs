//! `Users`: a room's members, online and not (and, in version 6, their away messages and read markers).

use std::collections::HashSet;

use palomar_proto::{AWARENESS_VERSION, Conversation, ErrorCode, Nick, RoomName, ServerMsg};
use palomar_store::{ConvId, Store, StoreError};

use crate::session::{Session, SessionEnd};

impl Session {
    pub(super) async fn users(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let Some(&conv) = self.by_view.get(&Conversation::Room(room.clone())) else {
            self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
            return Ok(());
        };
        let aware = self.version >= AWARENESS_VERSION;
        let pending = self.pending_read_markers_in(conv);
        let roster = self.read(move |db| Roster::read(db, conv, aware)).await?.with_pending(pending);
        self.queue_roster(conv, room, roster, None);
        Ok(())
    }

    /// Queues `Users` for a room, its members split by who the hub has online, and what goes with it in
    /// version 6: before it, the away messages of those online (with `restated`, every one's: see
    /// [`Session::queue_room_aways`]); after it, the members' read markers.
    pub(in crate::session) fn queue_roster(
        &mut self,
        conv: ConvId,
        room: RoomName,
        roster: Roster,
        restated: Option<&mut HashSet<Nick>>,
    ) {
        let online = self.shared.hub.online_in(conv);
        self.queue_room_aways(&online, roster.away, restated);
        let offline = roster.members.into_iter().filter(|m| online.binary_search(m).is_err()).collect();
        self.out.queue(&ServerMsg::Users { room, online, offline });
        self.queue_room_markers(conv, roster.read_markers);
    }
}

/// A room's members as the store has them, with (for a client of version 6) their away messages and read
/// markers.
pub(in crate::session) struct Roster {
    members: Vec<Nick>,
    away: Vec<(Nick, String)>,
    read_markers: Vec<(Nick, u64)>,
}

impl Roster {
    /// Reads room `conv`'s roster; its away messages and read markers only when the client is `aware` of them.
    pub(in crate::session) fn read(db: &dyn Store, conv: ConvId, aware: bool) -> Result<Roster, StoreError> {
        let members = db.members(conv)?;
        if !aware {
            return Ok(Roster { members, away: Vec::new(), read_markers: Vec::new() });
        }
        Ok(Roster { members, away: db.away_in(conv)?, read_markers: db.read_markers_in(conv)? })
    }

    /// Adds the read markers that waited for the writer when the roster was read (each member's highest is sent),
    /// of those who are still members (the store saves no other).
    pub(in crate::session) fn with_pending(mut self, pending: Vec<(Nick, u64)>) -> Roster {
        let members = &self.members;
        self.read_markers.extend(pending.into_iter().filter(|(nick, _)| members.contains(nick)));
        self
    }
}
