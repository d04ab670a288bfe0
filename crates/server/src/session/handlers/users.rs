//! `Users`: a room's members, online and not.

use palomar_proto::{Conversation, ErrorCode, Nick, RoomName, ServerMsg};
use palomar_store::ConvId;

use crate::session::{Session, SessionEnd};

impl Session {
    pub(super) async fn users(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let Some(&conv) = self.by_view.get(&Conversation::Room(room.clone())) else {
            self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
            return Ok(());
        };
        let members = self.read(move |db| db.members(conv)).await?;
        self.queue_roster(conv, room, members);
        Ok(())
    }

    /// Queues `Users` for a room, its `members` split by who the hub has online.
    pub(in crate::session) fn queue_roster(&mut self, conv: ConvId, room: RoomName, members: Vec<Nick>) {
        let online = self.shared.hub.online_in(conv);
        let offline = members.into_iter().filter(|m| online.binary_search(m).is_err()).collect();
        self.out.queue(&ServerMsg::Users { room, online, offline });
    }
}
