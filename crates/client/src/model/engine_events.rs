//! How the engine's events change the model: [`ChatModel::on_engine`] files messages, acceptances, history
//! pages, presence and member lists under their conversation, counts unread messages and mentions, and follows
//! the connection's status, the certificate question and a fatal error, and keeps each room's settings and our
//! standing, with a notice for what moderators do; a page of the server's rooms goes to the listing kept (and
//! becomes notices where the user is, in the terminal).

use std::time::Instant;

use palomar_proto::{Conversation, ErrorCode, Message, MessageId, MessageKind, Nick, PresenceState};

use super::moderation::puts_me_out;
use super::{
    Action, Alert, CertificatePrompt, ChatModel, Entry, HISTORY_PAGE, MessageEntry, Status, invited_text, member_text,
    no_such_user, room_change_text,
};
use crate::engine::Event;

impl ChatModel {
    pub fn on_engine(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Connecting { server, .. } => {
                if self.status != Status::Stopped {
                    self.status = Status::Connecting;
                    self.node = server;
                }
            }
            Event::ConfirmCertificate { server, fingerprint } => {
                self.prompt = Some(CertificatePrompt { server, fingerprint })
            }
            Event::Pinned { server, fingerprint } => {
                self.notice_here(format!("trusted the certificate of {server}: {fingerprint}"), false)
            }
            Event::Connected { server, nick, conversations, version, .. } => {
                self.status = Status::Connected;
                self.server_version = Some(version);
                self.typing_sent = None;
                self.whois_asked = None;
                self.markers_reconnected();
                self.away_reconnected();
                match self.last_connected.as_ref() {
                    Some(last) if *last != server => {
                        self.notice_here(format!("reconnected as {nick}, now through {server}"), false)
                    }
                    Some(_) => self.notice_here(format!("reconnected as {nick}"), false),
                    None => {}
                }
                self.node = server.clone();
                self.last_connected = Some(server);
                // A request made as the last connection died will not be answered. And a room's state is
                // restated after login only where it is not the defaults: one back to them while we were away
                // (a mute lifted) would otherwise stay as it was.
                for conv in &mut self.convs {
                    conv.history_pending = false;
                    conv.history_typed = false;
                    conv.room_state = None;
                }
                self.listing_interrupted();
                for info in &conversations {
                    let index = self.conv_index(&info.conversation);
                    if !self.connected_once && self.convs[index].entries.is_empty() {
                        actions.extend(self.history_request(index, None, HISTORY_PAGE));
                    }
                    actions.extend(self.members_request(&info.conversation));
                }
                if let Some(index) = self.switch_to.as_ref().and_then(|id| self.convs.iter().position(|c| &c.id == id))
                {
                    self.switch_to = None;
                    self.switch(index);
                }
                self.connected_once = true;
            }
            Event::Synced => actions.extend(self.markers_synced()),
            Event::Disconnected { reason, retry_in, attempt, pending, .. } => {
                if attempt == 1 {
                    self.notice_here(format!("disconnected: {reason}"), true);
                }
                self.status = Status::Reconnecting { at: Instant::now() + retry_in, attempt };
                self.typing_sent = None;
                self.pending = pending;
                self.search_interrupted();
                self.listing_interrupted();
            }
            Event::Queued { id, to, kind, text } => {
                let index = self.conv_index(&to);
                let (me, ts) = (self.me.clone(), (self.clock)());
                // An edit or a deletion shows only once stored: typed while offline, it would show nothing at all.
                // (A reaction of ours shows at once, a reply as a message waiting.)
                let waits = match kind {
                    MessageKind::Edit { of } => Some(format!("your edit of #{of} goes out once reconnected")),
                    MessageKind::Deletion { of } => Some(format!("the deletion of #{of} goes out once reconnected")),
                    MessageKind::Text
                    | MessageKind::Action
                    | MessageKind::Reply { .. }
                    | MessageKind::Reaction { .. } => None,
                };
                let conv = &mut self.convs[index];
                conv.add(MessageEntry::pending(id, me, ts, kind, text));
                if let Some(waits) = waits.filter(|_| self.status != Status::Connected) {
                    conv.notice(ts, waits, false);
                }
            }
            Event::Accepted { id, conversation, seq, ts } => {
                let index = self.conv_index(&conversation);
                let conv = &mut self.convs[index];
                let found = conv.entries.iter().position(|e| matches!(e, Entry::Message(m) if m.id == id));
                if let Some(at) = found
                    && let Entry::Message(mut entry) = conv.entries.remove(at)
                    && !conv.has_seq(seq)
                {
                    entry.seq = Some(seq);
                    entry.ts = ts;
                    conv.add(entry);
                }
            }
            Event::Message { message, own } => actions.extend(self.on_message(message, own)),
            Event::Presence { room, nick, state } => {
                let index = self.conv_index(&Conversation::Room(room.clone()));
                let conv = &mut self.convs[index];
                // Presence missed while our connection was down (or dropped by the server for a slow reader, and
                // replaced by a member list) leaves nothing to undo: an arrival already shown is not news again.
                let news = match state {
                    PresenceState::Online => !conv.online.contains(&nick),
                    PresenceState::Offline => !conv.offline.contains(&nick),
                    PresenceState::Joined | PresenceState::Left => true,
                };
                match state {
                    PresenceState::Joined | PresenceState::Online => {
                        conv.offline.remove(&nick);
                        conv.online.insert(nick.clone());
                    }
                    PresenceState::Offline => {
                        conv.online.remove(&nick);
                        conv.offline.insert(nick.clone());
                    }
                    PresenceState::Left => {
                        conv.online.remove(&nick);
                        conv.offline.remove(&nick);
                    }
                }
                // Offline says more than away; typing stops with the one who typed.
                if matches!(state, PresenceState::Offline | PresenceState::Left) {
                    conv.typing.remove(&nick);
                }
                let what = match state {
                    PresenceState::Joined => "joined",
                    PresenceState::Left => "left",
                    PresenceState::Online => "is online",
                    PresenceState::Offline => "went offline",
                };
                if news {
                    conv.notice((self.clock)(), format!("{nick} {what}"), false);
                }
                match state {
                    PresenceState::Offline => {
                        self.away.remove(&nick);
                        let direct = Conversation::Direct(nick.clone());
                        if let Some(conv) = self.convs.iter_mut().find(|conv| conv.id == direct) {
                            conv.typing.remove(&nick);
                        }
                    }
                    PresenceState::Left => self.forget_marker(&Conversation::Room(room), &nick),
                    PresenceState::Joined | PresenceState::Online => {}
                }
                self.known_nicks.insert(nick);
            }
            Event::Users { room, online, offline } => {
                self.known_nicks.extend(online.iter().chain(offline.iter()).cloned());
                let index = self.conv_index(&Conversation::Room(room.clone()));
                if self.users_asked.remove(&room) {
                    let list = |nicks: &[Nick]| {
                        let members: Vec<String> =
                            nicks.iter().map(|nick| member_text(nick, self.away_of(nick))).collect();
                        members.join(", ")
                    };
                    let text = format!("online: {}; offline: {}", list(&online), list(&offline));
                    let ts = (self.clock)();
                    self.convs[index].notice(ts, text, false);
                }
                let conv = &mut self.convs[index];
                conv.online = online.into_iter().collect();
                conv.offline = offline.into_iter().collect();
            }
            Event::Joined { info } => {
                let index = self.conv_index(&info.conversation);
                // Its `RoomState` follows; until then it is a room like any other.
                self.convs[index].room_state = None;
                if self.switch_to.as_ref() == Some(&info.conversation) {
                    self.switch_to = None;
                    self.switch(index);
                }
                actions.extend(self.members_request(&info.conversation));
            }
            Event::Left { room } => {
                self.drop_conversation(&Conversation::Room(room.clone()));
                if let Some(why) = self.put_out.remove(&room) {
                    self.notice_here(why, true);
                }
            }
            Event::Closed { conversation, reason } => {
                self.drop_conversation(&conversation);
                self.notice_here(format!("{conversation} is closed: {reason}"), true);
            }
            Event::History(page) => {
                let index = self.conv_index(&page.conversation);
                // (mention, ignored) of each, judged before the conversation is borrowed to file them.
                let judged: Vec<(bool, bool)> = page
                    .messages
                    .iter()
                    .map(|m| (m.from != self.me && self.calls_us(&m.text), self.is_ignored(&m.from)))
                    .collect();
                let conv = &mut self.convs[index];
                conv.history_pending = false;
                let before = conv.oldest_seq();
                let place_divider = index == self.current && !conv.divider_fixed;
                let empty = page.messages.is_empty();
                let mut new = 0;
                for (message, (mention, ignored)) in page.messages.into_iter().zip(judged) {
                    if !conv.has_seq(message.seq) {
                        conv.add(MessageEntry { ignored, ..MessageEntry::from_message(message, false, mention) });
                        new += 1;
                    }
                }
                if std::mem::take(&mut conv.history_typed) {
                    let text = match new {
                        0 => "no older messages".to_owned(),
                        1 => "1 older message came".to_owned(),
                        n => format!("{n} older messages came"),
                    };
                    conv.notice((self.clock)(), text, false);
                }
                let oldest = conv.oldest_seq();
                // A page that only repeats what live delivery brought meanwhile (it was asked for before the
                // catch-up arrived) says nothing about older messages: only an empty page, or reaching the
                // first seq the server keeps, ends the history.
                if empty || oldest.is_none_or(|seq| seq <= page.complete_from) {
                    conv.history_done = true;
                    if page.complete_from > 1 && before.is_some() {
                        let text =
                            format!("older messages (before seq {}) were removed by retention", page.complete_from);
                        conv.entries.insert(
                            0,
                            Entry::Notice { ts: conv.entries.first().map_or(0, Entry::ts), text, alert: false },
                        );
                    }
                }
                // Shown first at start, before its messages came: the divider goes above the first not read.
                if place_divider {
                    self.place_divider(index);
                }
                // A `/jump` waiting for this page: to the message now, or on to the page before.
                if let Some((_, seq)) = self.jump_wanted.take_if(|(id, _)| *id == page.conversation)
                    && index == self.current
                {
                    actions.extend(self.jump(index, seq));
                }
            }
            Event::Gap { conversation, complete_from } => {
                let index = self.conv_index(&conversation);
                let text = format!(
                    "messages before seq {complete_from} were removed by the server's retention before you saw them"
                );
                let ts = (self.clock)();
                self.convs[index].notice(ts, text, true);
            }
            Event::Rewound { conversation, latest_seq, had } => {
                let index = self.conv_index(&conversation);
                let conv = &mut self.convs[index];
                // What we hold past the server's end is no longer on it, and its seqs go to new messages.
                conv.entries
                    .retain(|entry| !matches!(entry, Entry::Message(m) if m.seq.is_some_and(|s| s > latest_seq)));
                let text = format!(
                    "the server was restored from an older backup and holds this conversation up to message \
                     {latest_seq}, where you had seen {had}: what came after it is gone from the server (and from \
                     this view), and messages sent since the restore and before now may be missing here"
                );
                conv.notice((self.clock)(), text, true);
            }
            Event::Error { code, message, id: Some(id) } if code != Some(ErrorCode::StoreUnavailable) => {
                self.refused(id, message)
            }
            Event::Error { code: Some(ErrorCode::UnknownNick), id: None, .. } if self.whois_asked.is_some() => {
                if let Some(nick) = self.whois_asked.take() {
                    self.notice_here(no_such_user(&nick), true);
                }
            }
            Event::Error { code, message, .. } => {
                self.search_refused(code, &message);
                self.notice_here(message, true);
            }
            Event::RoomState(state) => {
                let index = self.conv_index(&Conversation::Room(state.room.clone()));
                self.convs[index].room_state = Some(state);
            }
            Event::RoomEvent { room, by, change } => {
                let text = room_change_text(&room, by.as_ref(), &change, Some(&self.me));
                let put_out = puts_me_out(&change, &self.me);
                if put_out {
                    self.put_out.insert(room.clone(), text.clone());
                }
                let index = self.conv_index(&Conversation::Room(room));
                let ts = (self.clock)();
                self.convs[index].notice(ts, text, put_out);
                self.known_nicks.extend(by);
            }
            Event::Invited { room, by } => {
                let text = invited_text(&room, by.as_ref());
                self.notice_here(text.clone(), false);
                if !by.as_ref().is_some_and(|by| self.is_ignored(by)) {
                    actions.push(Action::Alert(Alert { title: "Invitation".to_owned(), body: text }));
                }
            }
            Event::Rooms { rooms, more } => self.rooms_listed(rooms, more),
            Event::Found { query, conversation, hits, next } => {
                actions.extend(self.found(query, conversation, hits, next));
            }
            Event::Away { nick, message } => self.away_changed(nick, message),
            Event::Whois(info) => self.whois_answered(info),
            Event::Typing { conversation, nick, typing } => self.typing_heard(conversation, nick, typing),
            Event::ReadMarkers(markers) => actions.extend(self.markers_heard(markers)),
            Event::ServerShuttingDown { message } => self.notice_here(format!("server: {message}"), true),
            Event::Fatal { message, certificate_changed, .. } => {
                self.fatal = Some(message);
                self.certificate_changed = certificate_changed;
                self.status = Status::Stopped;
            }
        }
        actions
    }

    /// The server refused one of our messages for good: it is not stored and will not be sent again, so it
    /// leaves its conversation, and the reason is told there.
    fn refused(&mut self, id: MessageId, message: String) {
        let pending = |entry: &Entry| matches!(entry, Entry::Message(m) if m.id == id && m.is_pending());
        let Some(index) = self.convs.iter().position(|conv| conv.entries.iter().any(pending)) else {
            return self.notice_here(message, true);
        };
        let ts = (self.clock)();
        let conv = &mut self.convs[index];
        let reaction_to = conv.entries.iter().find_map(|entry| match entry {
            Entry::Message(m) if pending(entry) => match m.kind {
                MessageKind::Reaction { of, .. } => Some(of),
                _ => None,
            },
            _ => None,
        });
        conv.entries.retain(|entry| !pending(entry));
        if let Some(of) = reaction_to {
            conv.apply_changes_to(of);
        }
        conv.notice(ts, format!("not sent: {message}"), true);
    }

    fn on_message(&mut self, message: Message, own: bool) -> Vec<Action> {
        let index = self.conv_index(&message.conversation);
        self.known_nicks.insert(message.from.clone());
        let conv = &mut self.convs[index];
        // Readers stop showing someone typing once their message comes.
        conv.typing.remove(&message.from);
        let mut typed = None;
        if let Some(at) =
            conv.entries.iter().position(|e| matches!(e, Entry::Message(m) if m.id == message.id && m.own))
        {
            // Our own message coming back: it is sent now.
            if let Entry::Message(sent) = conv.entries.remove(at) {
                typed = sent.typed;
            }
        } else if conv.has_seq(message.seq) {
            return Vec::new();
        }
        // An edit, a deletion or a reaction is not news of its own: it changes a message already counted. A reply
        // to one of ours calls us as a mention does. What someone ignored sends is not news at all.
        let ignored = self.is_ignored(&message.from);
        let news = message.kind.is_message() && !own && !ignored;
        let answers_me =
            message.kind.refers_to().and_then(|of| self.convs[index].message(of)).is_some_and(|m| m.from == self.me);
        let mention = news && (answers_me || self.calls_us(&message.text));
        let alert = (news && (mention || matches!(message.conversation, Conversation::Direct(_))))
            .then(|| Alert::of_message(&message))
            .filter(|_| !self.is_silenced(&message.conversation));
        let conv = &mut self.convs[index];
        conv.add(MessageEntry { typed, ignored, ..MessageEntry::from_message(message, own, mention) });
        if index != self.current && news {
            conv.unread += 1;
            conv.mentioned |= mention;
        }
        alert.map(Action::Alert).into_iter().collect()
    }
}
