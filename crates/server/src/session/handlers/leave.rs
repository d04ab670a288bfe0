//! `Leave`: the room is left in the store (never `lobby`), the user's other sessions follow, and the client gets
//! `Left`.

use palomar_proto::{Conversation, ErrorCode, RoomName, ServerMsg};
use palomar_store::ConvId;

use crate::session::{Session, SessionEnd};

impl Session {
    pub(super) async fn leave(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        if room.as_str() == RoomName::LOBBY {
            self.error(ErrorCode::Protocol, "everyone stays in #lobby", None);
            return Ok(());
        }
        let Some(&conv) = self.by_view.get(&Conversation::Room(room.clone())) else {
            self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
            return Ok(());
        };
        if let Err(failed) = self.shared.writer.leave_room(conv, self.account.id).await {
            self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
            return Ok(());
        }
        if let Some(id) = self.id {
            self.shared.hub.left(id, &self.account, conv, &room);
        }
        self.untrack_room(conv, room);
        Ok(())
    }

    /// Stops following a room the user is no longer in, and tells the client.
    pub(in crate::session) fn untrack_room(&mut self, conv: ConvId, room: RoomName) {
        self.untrack_conversation(conv);
        self.out.queue(&ServerMsg::Left { room });
    }
}
