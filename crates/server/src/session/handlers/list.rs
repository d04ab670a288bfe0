//! `ListRooms`: a page of the server's rooms by name, with their members counted and their topics; an invite-only
//! room only for its members and the server's operators.

use palomar_proto::{ErrorCode, RoomName, ServerMsg};

use crate::session::{Session, SessionEnd};

/// Most rooms in one page, whatever the client asks: a page is one small frame.
const MAX_PAGE: u32 = 100;

impl Session {
    pub(super) async fn list_rooms(&mut self, after: &str, limit: u32) -> Result<(), SessionEnd> {
        let after = match after.trim() {
            "" => None,
            raw => match RoomName::parse(raw) {
                Ok(room) => Some(room),
                Err(error) => {
                    self.error(ErrorCode::InvalidName, error.to_string(), None);
                    return Ok(());
                }
            },
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let (viewer, every) = (self.account.id, self.operator);
        // One more than the page, to know whether there are more.
        let mut rooms = self.read(move |db| db.room_listing(viewer, every, after.as_ref(), limit + 1)).await?;
        let more = rooms.len() > limit as usize;
        rooms.truncate(limit as usize);
        self.queue_since_v2(&ServerMsg::Rooms { rooms, more });
        Ok(())
    }
}
