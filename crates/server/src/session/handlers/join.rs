//! `Join`: the room is joined in the store (unless the user is banned from it, or it is invite-only and the user
//! was not invited), the user's other sessions follow, and the client gets `Joined`, the room's state and the
//! room from where it starts for this user.

use palomar_proto::{ErrorCode, ServerMsg};
use palomar_store::{ConvKey, ConvRow};

use crate::session::{Session, SessionEnd};
use crate::writer::JoinOutcome;

impl Session {
    pub(super) async fn join(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let window = self.shared.config.history.join_window;
        let max_rooms = self.shared.config.limits.max_rooms_per_user;
        let (row, added) = match self.shared.writer.join_room(room.clone(), self.account.id, window, max_rooms).await {
            Ok(JoinOutcome::Joined { row, added }) => (row, added),
            Ok(JoinOutcome::TooManyRooms) => {
                let message = format!("you are in {max_rooms} rooms, as many as this server allows; leave one first");
                self.error(ErrorCode::LimitReached, message, None);
                return Ok(());
            }
            Ok(JoinOutcome::Banned(ban)) => {
                let why = if ban.reason.is_empty() { String::new() } else { format!(": {}", ban.reason) };
                self.error(ErrorCode::Banned, format!("you are banned from #{room} by {}{why}", ban.by), None);
                return Ok(());
            }
            Ok(JoinOutcome::NotInvited) => {
                let message = format!("#{room} is invite-only: a moderator of it can /invite you");
                self.error(ErrorCode::Banned, message, None);
                return Ok(());
            }
            Err(failed) => {
                self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
                return Ok(());
            }
        };
        let sent_after = match self.delivery.sent(row.id) {
            Some(sent) => sent,
            None if added => row.last_seq.saturating_sub(window),
            None => self.stored_cursor(row.id).await?,
        };
        if let Some(id) = self.id {
            self.shared.hub.joined(id, &self.account, row.id, &room, added, sent_after);
        }
        self.enter_room(row, sent_after).await
    }

    /// Says `Joined` and sends the room from the seq after `sent_after`, live from then on.
    pub(in crate::session) async fn enter_room(&mut self, row: ConvRow, sent_after: u64) -> Result<(), SessionEnd> {
        self.track_conversation(row.id, row.key.clone(), sent_after);
        self.out.queue(&ServerMsg::Joined { info: self.info(&row) });
        if let ConvKey::Room(room) = &row.key {
            self.send_room_state(row.id, room.clone()).await?;
        }
        self.catch_up(row.id).await
    }
}
