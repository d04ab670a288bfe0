//! The client's requests after login, one module each, and the dispatch that paces the ones that cost the store
//! or other users something.

mod awareness;
mod history;
mod join;
mod leave;
mod list;
mod moderate;
mod search;
pub(super) mod send;
mod users;

use palomar_proto::{AWARENESS_VERSION, ClientMsg, ErrorCode, MessageKind, RoomName, ServerMsg};

use super::{Session, SessionEnd};
use crate::telemetry::Pace;
use send::Sends;
pub(super) use users::Roster;

impl Session {
    pub(super) async fn handle(&mut self, msg: ClientMsg, pending: &mut Sends) -> Result<(), SessionEnd> {
        match msg {
            ClientMsg::Send { id, to, text } => {
                self.pace_message().await;
                self.post(id, to, (MessageKind::Text, text), pending).await
            }
            ClientMsg::Post { id, to, kind, text } => {
                self.pace_message().await;
                self.post(id, to, (kind, text), pending).await
            }
            ClientMsg::Ack { conversation, seq } => {
                if let Some(&conv) = self.by_view.get(&conversation)
                    && let Some(seq) = self.delivery.ack(conv, seq)
                {
                    self.shared.writer.advance_cursor(self.account.id, conv, seq);
                }
                Ok(())
            }
            ClientMsg::Join { room } => {
                self.pace_request().await;
                self.join(&room).await
            }
            ClientMsg::Leave { room } => {
                self.pace_request().await;
                self.leave(&room).await
            }
            ClientMsg::Users { room } => {
                self.pace_request().await;
                self.users(&room).await
            }
            ClientMsg::History { conversation, before, limit } => {
                self.pace_request().await;
                self.history(conversation, before, limit).await
            }
            ClientMsg::ListRooms { after, limit } => {
                self.pace_request().await;
                self.list_rooms(&after, limit).await
            }
            ClientMsg::Search { query, conversation, before, limit } => {
                self.pace_request().await;
                self.search(search::Asked { query, conversation, before, limit }).await
            }
            ClientMsg::Moderate { room, action } => {
                self.pace_request().await;
                self.moderate(&room, action).await
            }
            ClientMsg::Ping { nonce } => {
                self.out.queue(&ServerMsg::Pong { nonce });
                Ok(())
            }
            ClientMsg::Pong { .. } => Ok(()),
            ClientMsg::Bye => Err(SessionEnd::ClientLeft),
            ClientMsg::SetAway { .. }
            | ClientMsg::Whois { .. }
            | ClientMsg::Typing { .. }
            | ClientMsg::MarkRead { .. }
                if self.version < AWARENESS_VERSION =>
            {
                // A client of an older version cannot have encoded these: it says it speaks a version it does not.
                self.error(ErrorCode::Protocol, "this request is protocol version 6's, not your version's", None);
                Ok(())
            }
            ClientMsg::SetAway { message } => {
                self.pace_request().await;
                self.set_away(&message).await
            }
            ClientMsg::Whois { nick } => {
                self.pace_request().await;
                self.whois(&nick).await
            }
            ClientMsg::Typing { conversation, typing } => self.typing(conversation, typing).await,
            ClientMsg::MarkRead { conversation, seq } => {
                self.pace_request().await;
                self.mark_read(conversation, seq).await
            }
            ClientMsg::Hello { .. } => {
                self.error(ErrorCode::Protocol, "already logged in", None);
                Ok(())
            }
        }
    }

    /// Waits for the account's turn to send a message, reading nothing more meanwhile: TCP slows a flooder down.
    async fn pace_message(&self) {
        if self.shared.messages.pace(self.account.id, &self.gone).await {
            self.shared.metrics.paced(Pace::Messages).increment(1);
        }
    }

    /// Waits for the account's turn for a request that costs the store or others something, reading nothing more
    /// meanwhile, like a flood of sends.
    async fn pace_request(&self) {
        if self.shared.requests.pace(self.account.id, &self.gone).await {
            self.shared.metrics.paced(Pace::Requests).increment(1);
        }
    }

    fn parse_room(&mut self, raw: &str) -> Option<RoomName> {
        match RoomName::parse(raw) {
            Ok(room) => Some(room),
            Err(error) => {
                self.error(ErrorCode::InvalidName, error.to_string(), None);
                None
            }
        }
    }
}
