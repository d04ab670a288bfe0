//! The engine's protocol core: the outbox, the cursors and the sync state, with no socket, file or clock.
//!
//! The engine's connection loop feeds it what happens (a connection made, frames from the server, commands, a
//! timer) and gets back [`Effects`]: frames to send, state to save, events to show. Keeping the decisions here
//! lets tests drive any sequence of disconnects, retries and deliveries without a server.

use std::collections::{HashMap, HashSet, VecDeque};

use palomar_proto::{
    AWARENESS_VERSION, ClientMsg, Conversation, ConversationInfo, ErrorCode, Message, MessageId, MessageKind, Nick,
    RoomName, ServerMsg,
};

use super::{Command, ConnectionEnd, Event, NO_AWAY_MESSAGES, NO_WHOIS};
use crate::state::OutboxEntry;

/// Messages sent on a connection and not yet answered, at most. The window keeps the engine reading while it
/// writes: a client that only wrote could block a server that is writing to it.
pub const SEND_WINDOW: usize = 256;

/// Rooms asked for by one [`Command::ListRooms`], as `/list`'s help says.
pub const ROOMS_PAGE: u32 = 50;

/// Hits asked for by one [`Command::Search`].
pub const SEARCH_PAGE: u32 = 20;

/// What the shell does after the core has handled an input, in this order: forget and save the state (so that
/// a crash never shows a message twice), show the events, send the frames.
#[derive(Debug, Default)]
pub struct Effects {
    /// Conversations we are no longer in: their cursors are deleted on disk, before `moved` is saved (a cursor
    /// that went back is in both, since saving only ever moves one forward).
    pub forgotten: Vec<Conversation>,
    /// Cursors that moved, to save.
    pub moved: HashMap<Conversation, u64>,
    /// Outbox entries the server stored (or refused for good), to delete from the outbox file.
    pub removed: Vec<MessageId>,
    /// Events for the front end, once the above is saved.
    pub events: Vec<Event>,
    /// Frames for the server, in order.
    pub frames: Vec<ClientMsg>,
    /// The store could not take a message: resend what waits in [`Protocol::resend_refused`] after a while.
    pub retry_later: bool,
}

/// The delivery state of one account: what waits to be stored, how far each conversation has been seen, and
/// what this connection has sent.
pub struct Protocol {
    nick: Nick,
    /// Unacknowledged messages in the order they were typed.
    outbox: VecDeque<OutboxEntry>,
    /// Highest seq received per conversation.
    cursors: HashMap<Conversation, u64>,
    /// Conversations whose cursor moved since the last ack to the server.
    unacked_cursors: HashSet<Conversation>,
    /// Messages the store could not take, to send again later.
    refused_by_store: Vec<MessageId>,
    /// Conversations still behind the seq the server announced at login, until [`Event::Synced`].
    sync_targets: HashMap<Conversation, u64>,
    /// Outbox entries (from the front) already sent on this connection.
    sent_count: usize,
    /// Sends on this connection not yet answered.
    in_flight: usize,
    /// The protocol version of this connection's session (0 before the first): what the server may be asked.
    version: u16,
    /// An away message set while disconnected (the latest; empty: back), for the next connection.
    away_later: Option<String>,
}

impl Protocol {
    pub fn new(nick: Nick, outbox: VecDeque<OutboxEntry>, cursors: HashMap<Conversation, u64>) -> Protocol {
        Protocol {
            nick,
            outbox,
            cursors,
            unacked_cursors: HashSet::new(),
            refused_by_store: Vec::new(),
            sync_targets: HashMap::new(),
            sent_count: 0,
            in_flight: 0,
            version: 0,
            away_later: None,
        }
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    pub fn cursors(&self) -> &HashMap<Conversation, u64> {
        &self.cursors
    }

    /// An away message set while there is no connection: the latest one goes out on the next.
    pub fn set_away_later(&mut self, message: String) {
        self.away_later = Some(message);
    }

    /// A connection was made and the server welcomed us at protocol `version` with `conversations`: join `join`
    /// if we are not in it, set the away message given meanwhile, say when we are in sync, and send the whole
    /// outbox again (the server recognises ids it already has).
    pub fn connected(&mut self, version: u16, conversations: &[ConversationInfo], join: Option<&RoomName>) -> Effects {
        let mut effects = Effects::default();
        self.version = version;
        if let Some(message) = self.away_later.take() {
            self.request(Command::SetAway(message), &mut effects);
        }
        if let Some(room) = join {
            let conversation = Conversation::Room(room.clone());
            if !conversations.iter().any(|info| info.conversation == conversation) {
                effects.frames.push(ClientMsg::Join { room: room.to_string() });
            }
        }
        for info in conversations {
            self.rewind_if_ahead(info, &mut effects);
        }
        self.sync_targets = conversations
            .iter()
            .filter(|info| info.latest_seq > self.cursor(&info.conversation))
            .map(|info| (info.conversation.clone(), info.latest_seq))
            .collect();
        if self.sync_targets.is_empty() {
            effects.events.push(Event::Synced);
        }
        self.refused_by_store.clear();
        self.sent_count = 0;
        self.in_flight = 0;
        self.fill_window(&mut effects);
        effects
    }

    /// Messages typed (already saved in the outbox file by the shell): they wait in the outbox until stored.
    pub fn typed(&mut self, entries: Vec<OutboxEntry>, effects: &mut Effects) {
        for entry in entries {
            let (id, to, kind, text) = (entry.id, entry.to.clone(), entry.kind, entry.text.clone());
            effects.events.push(Event::Queued { id, to, kind, text });
            self.outbox.push_back(entry);
        }
    }

    /// A command other than a message, while connected.
    pub fn request(&mut self, command: Command, effects: &mut Effects) {
        let frame = match command {
            Command::Join { room } => ClientMsg::Join { room },
            Command::Leave { room } => ClientMsg::Leave { room },
            Command::Users { room } => ClientMsg::Users { room },
            Command::History { conversation, before, limit } => {
                let before = before.unwrap_or_else(|| self.cursors.get(&conversation).map_or(u64::MAX, |seq| seq + 1));
                ClientMsg::History { conversation, before, limit }
            }
            Command::Moderate { room, action } => ClientMsg::Moderate { room: room.to_string(), action },
            Command::ListRooms { after } => ClientMsg::ListRooms {
                after: after.map(|room| room.to_string()).unwrap_or_default(),
                limit: ROOMS_PAGE,
            },
            Command::Search { query, conversation, before } => {
                ClientMsg::Search { query, conversation, before, limit: SEARCH_PAGE }
            }
            // A server that does not know a request could not decode it, and would end the session.
            Command::SetAway(_) | Command::Whois(_) if self.version < AWARENESS_VERSION => {
                let message = if matches!(command, Command::SetAway(_)) { NO_AWAY_MESSAGES } else { NO_WHOIS };
                effects.events.push(Event::Error { code: None, message: message.to_owned(), id: None });
                return;
            }
            Command::Typing { .. } | Command::MarkRead { .. } if self.version < AWARENESS_VERSION => return,
            Command::SetAway(message) => ClientMsg::SetAway { message },
            Command::Whois(nick) => ClientMsg::Whois { nick: nick.to_string() },
            Command::Typing { conversation, typing } => ClientMsg::Typing { conversation, typing },
            Command::MarkRead { conversation, seq } => ClientMsg::MarkRead { conversation, seq },
            Command::Send { .. } | Command::TrustCertificate { .. } | Command::Quit => return,
        };
        effects.frames.push(frame);
    }

    /// A command other than a message while there is no connection: an away message is kept for the next one,
    /// typing and read markers are dropped (only true at once: the model sends them again when they still are),
    /// and anything else is refused with the words returned.
    pub fn offline_request(&mut self, command: Command) -> Option<Event> {
        let message = match command {
            Command::SetAway(message) => {
                self.set_away_later(message);
                return None;
            }
            Command::Typing { .. } | Command::MarkRead { .. } => return None,
            Command::Moderate { room, .. } => {
                format!("not connected: nothing was done in #{room}; try again once reconnected")
            }
            _ => "not connected; try again once reconnected".to_owned(),
        };
        Some(Event::Error { code: None, message, id: None })
    }

    /// Sends outbox entries not yet sent on this connection, keeping at most [`SEND_WINDOW`] unanswered.
    pub fn fill_window(&mut self, effects: &mut Effects) {
        while self.in_flight < SEND_WINDOW && self.sent_count < self.outbox.len() {
            effects.frames.push(frame(&self.outbox[self.sent_count]));
            self.sent_count += 1;
            self.in_flight += 1;
        }
    }

    /// Tells the server how far each conversation has been received since the last time.
    pub fn acknowledge_cursors(&mut self, effects: &mut Effects) {
        for conversation in self.unacked_cursors.drain() {
            if let Some(&seq) = self.cursors.get(&conversation) {
                effects.frames.push(ClientMsg::Ack { conversation, seq });
            }
        }
    }

    /// Sends again the messages the store could not take.
    pub fn resend_refused(&mut self, effects: &mut Effects) {
        let ids: HashSet<MessageId> = self.refused_by_store.drain(..).collect();
        for entry in self.outbox.iter().filter(|entry| ids.contains(&entry.id)) {
            effects.frames.push(frame(entry));
            self.in_flight += 1;
        }
    }

    /// Frames from the server, in order, up to the first that ends the connection; then the window is refilled
    /// with what their answers made room for.
    pub fn received(&mut self, frames: Vec<ServerMsg>, effects: &mut Effects) -> Result<(), ConnectionEnd> {
        let mut result = Ok(());
        for frame in frames {
            result = self.on_frame(frame, effects);
            if result.is_err() {
                break;
            }
        }
        self.unacked_cursors.extend(effects.moved.keys().cloned());
        self.fill_window(effects);
        result
    }

    fn on_frame(&mut self, frame: ServerMsg, effects: &mut Effects) -> Result<(), ConnectionEnd> {
        match frame {
            ServerMsg::Messages(messages) => self.on_messages(messages, effects),
            ServerMsg::Accepted { id, conversation, seq, ts } => self.accepted(id, conversation, seq, ts, effects),
            // The account was removed while we were logged in: logging in again would register the nickname
            // anew, as somebody else.
            ServerMsg::Error { code: ErrorCode::AuthFailed, message, .. } => {
                return Err(ConnectionEnd::Fatal(format!("logged out: {message}")));
            }
            ServerMsg::Error { code, message, id } => {
                match (code, id) {
                    (ErrorCode::StoreUnavailable, Some(id)) => {
                        self.in_flight = self.in_flight.saturating_sub(1);
                        self.refused_by_store.push(id);
                        effects.retry_later = true;
                    }
                    // Refused for good, and not stored: sending it again would only be refused again (a muted
                    // member's message, say, is not kept for after the mute, nor an edit of a deleted message).
                    (
                        ErrorCode::InvalidText
                        | ErrorCode::NotMember
                        | ErrorCode::UnknownNick
                        | ErrorCode::NotAllowed
                        | ErrorCode::UnknownMessage,
                        Some(id),
                    ) => {
                        self.take_from_outbox(id, effects);
                    }
                    _ => {}
                }
                effects.events.push(Event::Error { code: Some(code), message, id });
            }
            ServerMsg::Gap { conversation, complete_from } => {
                let cursor = self.cursors.entry(conversation.clone()).or_insert(0);
                *cursor = (*cursor).max(complete_from.saturating_sub(1));
                effects.moved.insert(conversation.clone(), *cursor);
                effects.events.push(Event::Gap { conversation, complete_from });
                self.check_synced(effects);
            }
            ServerMsg::Joined { info } => {
                self.rewind_if_ahead(&info, effects);
                // A conversation `Welcome` had no room for comes this way too, and may have news to catch up on.
                if info.latest_seq > self.cursor(&info.conversation) {
                    self.sync_targets.insert(info.conversation.clone(), info.latest_seq);
                }
                effects.events.push(Event::Joined { info });
            }
            ServerMsg::Left { room } => {
                self.forget(Conversation::Room(room.clone()), effects);
                effects.events.push(Event::Left { room });
            }
            ServerMsg::Closed { conversation, reason } => {
                self.forget(conversation.clone(), effects);
                effects.events.push(Event::Closed { conversation, reason });
            }
            ServerMsg::Presence { room, nick, state } => effects.events.push(Event::Presence { room, nick, state }),
            ServerMsg::Users { room, online, offline } => effects.events.push(Event::Users { room, online, offline }),
            ServerMsg::History(page) => effects.events.push(Event::History(page)),
            ServerMsg::RoomState(state) => effects.events.push(Event::RoomState(state)),
            ServerMsg::RoomEvent { room, by, change } => effects.events.push(Event::RoomEvent { room, by, change }),
            ServerMsg::Invited { room, by } => effects.events.push(Event::Invited { room, by }),
            ServerMsg::Rooms { rooms, more } => effects.events.push(Event::Rooms { rooms, more }),
            ServerMsg::Found { query, conversation, hits, next } => {
                effects.events.push(Event::Found { query, conversation, hits, next });
            }
            ServerMsg::Ping { nonce } => effects.frames.push(ClientMsg::Pong { nonce }),
            ServerMsg::Pong { .. } | ServerMsg::Welcome { .. } => {}
            ServerMsg::Away { nick, message } => effects.events.push(Event::Away { nick, message }),
            ServerMsg::Whois(info) => effects.events.push(Event::Whois(info)),
            ServerMsg::Typing { conversation, nick, typing } => {
                effects.events.push(Event::Typing { conversation, nick, typing });
            }
            ServerMsg::ReadMarkers { markers } => effects.events.push(Event::ReadMarkers(markers)),
            ServerMsg::ShuttingDown { message } => {
                effects.events.push(Event::ServerShuttingDown { message: message.clone() });
                return Err(ConnectionEnd::Reconnect(message));
            }
        }
        Ok(())
    }

    fn cursor(&self, conversation: &Conversation) -> u64 {
        self.cursors.get(conversation).copied().unwrap_or(0)
    }

    /// Takes the server's end of a conversation as our position when we are past it. The server never says a
    /// conversation ends before a message it delivered, unless its store went back in time (restored from an
    /// older backup): then it gives the seqs after its end to new messages, which we would take for ones we have.
    fn rewind_if_ahead(&mut self, info: &ConversationInfo, effects: &mut Effects) {
        let had = self.cursor(&info.conversation);
        if had <= info.latest_seq {
            return;
        }
        let conversation = info.conversation.clone();
        self.cursors.insert(conversation.clone(), info.latest_seq);
        effects.forgotten.push(conversation.clone());
        effects.moved.insert(conversation.clone(), info.latest_seq);
        effects.events.push(Event::Rewound { conversation, latest_seq: info.latest_seq, had });
    }

    /// Takes a message out of the outbox once the server has it (a no-op if it is no longer there).
    fn accepted(&mut self, id: MessageId, conversation: Conversation, seq: u64, ts: u64, effects: &mut Effects) {
        if self.take_from_outbox(id, effects) {
            effects.events.push(Event::Accepted { id, conversation, seq, ts });
        }
    }

    fn take_from_outbox(&mut self, id: MessageId, effects: &mut Effects) -> bool {
        let Some(index) = self.outbox.iter().position(|entry| entry.id == id) else { return false };
        self.outbox.remove(index);
        if index < self.sent_count {
            self.sent_count -= 1;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        effects.removed.push(id);
        true
    }

    /// Drops what we keep of a conversation we are no longer in: its cursor, here and on disk.
    fn forget(&mut self, conversation: Conversation, effects: &mut Effects) {
        self.cursors.remove(&conversation);
        effects.moved.remove(&conversation);
        self.unacked_cursors.remove(&conversation);
        if self.sync_targets.remove(&conversation).is_some() && self.sync_targets.is_empty() {
            effects.events.push(Event::Synced);
        }
        effects.forgotten.push(conversation);
    }

    /// Shows each message once: deliveries at or below the conversation's cursor were shown before.
    fn on_messages(&mut self, messages: Vec<Message>, effects: &mut Effects) {
        for message in messages {
            let cursor = self.cursors.entry(message.conversation.clone()).or_insert(0);
            if message.seq <= *cursor {
                continue;
            }
            *cursor = message.seq;
            effects.moved.insert(message.conversation.clone(), message.seq);
            let own = message.from == self.nick;
            if own {
                self.accepted(message.id, message.conversation.clone(), message.seq, message.ts, effects);
            }
            effects.events.push(Event::Message { message, own });
        }
        self.check_synced(effects);
    }

    fn check_synced(&mut self, effects: &mut Effects) {
        if self.sync_targets.is_empty() {
            return;
        }
        let cursors = &self.cursors;
        self.sync_targets.retain(|conversation, target| cursors.get(conversation).copied().unwrap_or(0) < *target);
        if self.sync_targets.is_empty() {
            effects.events.push(Event::Synced);
        }
    }
}

/// The frame that sends an outbox entry: `Send` for text, which servers of every version take, else `Post`.
fn frame(entry: &OutboxEntry) -> ClientMsg {
    let (id, to, text) = (entry.id, entry.to.clone(), entry.text.clone());
    match entry.kind {
        MessageKind::Text => ClientMsg::Send { id, to, text },
        kind => ClientMsg::Post { id, to, kind, text },
    }
}

#[cfg(test)]
mod tests;
