//! What the user types or clicks: [`ChatModel::submit`] reads an entry line, [`ChatModel::apply`] does what a
//! command asks (send, act, edit, delete, reply to or react to a message, jump to one, search, join, leave, open a
//! direct conversation, list members or rooms, ask who someone is, set an away message, fetch history, moderate
//! the room shown, show its topic, silence a conversation, highlight a word, ignore someone, help, quit), and
//! [`ChatModel::close_current`] closes the direct conversation shown.

use palomar_proto::{Conversation, MessageKind, Revision, RoomName, validate_text};

use super::{Action, ChatModel, Status, TYPED_HISTORY};
use crate::command_line::{self, Target, Typed};
use crate::engine::Command;

impl ChatModel {
    /// What was typed in the entry line: a message for the conversation shown, or a command. Mistakes
    /// become notices.
    pub fn submit(&mut self, line: &str) -> Vec<Action> {
        match command_line::parse(line) {
            Ok(Some(typed)) => self.apply(typed),
            Ok(None) => Vec::new(),
            Err(error) => {
                self.notice_here(error.to_string(), true);
                Vec::new()
            }
        }
    }

    /// Does what a typed command (or a click that means the same) asks.
    pub fn apply(&mut self, typed: Typed) -> Vec<Action> {
        match typed {
            Typed::Text(text) => {
                let to = self.current().id.clone();
                return self.send(to, MessageKind::Text, text);
            }
            Typed::Me(text) => {
                let to = self.current().id.clone();
                return self.send(to, MessageKind::Action, text);
            }
            Typed::Edit { of, text } => {
                let of = match of {
                    Some(seq) => self.editable(seq),
                    None => self.current().latest_of(&self.me).ok_or_else(|| "no message of yours here to edit".into()),
                };
                match of {
                    Ok(of) => {
                        let to = self.current().id.clone();
                        return self.send(to, MessageKind::Edit { of }, text);
                    }
                    Err(error) => self.notice_here(error, true),
                }
            }
            Typed::Delete { of, reason } => {
                let conv = self.current();
                let of = match of {
                    Target::Seq(seq) => match conv.message(seq) {
                        Some(m) if m.revision == Revision::Deleted => Err(format!("#{seq} is deleted already")),
                        _ => Ok(seq),
                    },
                    Target::MyLatest => {
                        conv.latest_of(&self.me).ok_or_else(|| "no message of yours here to delete".into())
                    }
                    Target::LatestOf(nick) => conv
                        .latest_of(&nick)
                        .ok_or_else(|| format!("no message of {nick}'s here to delete; /delete #SEQ names one")),
                };
                match of {
                    // A reason is checked by the server (as a kick's is): it is not a message's text.
                    Ok(of) => {
                        let to = conv.id.clone();
                        return vec![Action::Engine(Command::Send {
                            to,
                            kind: MessageKind::Deletion { of },
                            text: reason,
                        })];
                    }
                    Err(error) => self.notice_here(error, true),
                }
            }
            Typed::Reply { of, text } => match self.answerable(of, "reply to") {
                Ok(of) => {
                    let to = self.current().id.clone();
                    return self.send(to, MessageKind::Reply { of }, text);
                }
                Err(error) => self.notice_here(error, true),
            },
            Typed::React { of, emoji, take_back } => match self.answerable(of, "react to") {
                Ok(of) => {
                    let conv = self.current();
                    // Again the same reaction takes it back, as a click on it does in the desktop client.
                    let added = !take_back && !conv.message(of).is_some_and(|m| m.has_reaction(emoji, &self.me));
                    let kind = MessageKind::Reaction { of, added };
                    return vec![Action::Engine(Command::Send { to: conv.id.clone(), kind, text: emoji.to_owned() })];
                }
                Err(error) => self.notice_here(error, true),
            },
            Typed::Jump(seq) => {
                self.jump_wanted = None;
                return self.jump(self.current, seq);
            }
            Typed::Search(typed) => return self.search(typed),
            Typed::Goto(number) => return self.goto(number),
            Typed::Join(room) => {
                let id = Conversation::Room(room.clone());
                match self.convs.iter().position(|c| c.id == id) {
                    Some(index) => self.switch(index),
                    None => self.switch_to = Some(id),
                }
                return vec![Action::Engine(Command::Join { room: room.to_string() })];
            }
            Typed::Leave(room) => {
                let room = match (room, &self.current().id) {
                    (Some(room), _) => room,
                    (None, Conversation::Room(room)) => room.clone(),
                    (None, Conversation::Direct(_)) => {
                        // A direct conversation has no membership to leave; just close it.
                        self.close_current();
                        return Vec::new();
                    }
                };
                return vec![Action::Engine(Command::Leave { room: room.to_string() })];
            }
            Typed::Msg { to, text } => {
                let id = Conversation::Direct(to);
                let index = self.conv_index(&id);
                self.switch(index);
                if let Some(text) = text {
                    return self.send(id, MessageKind::Text, text);
                }
            }
            Typed::Users(room) => {
                let room = room.unwrap_or_else(|| match &self.current().id {
                    Conversation::Room(room) => room.clone(),
                    Conversation::Direct(_) => RoomName::lobby(),
                });
                self.users_asked.insert(room.clone());
                return vec![Action::Engine(Command::Users { room: room.to_string() })];
            }
            Typed::List(after) => return self.list_rooms(after),
            Typed::Whois(nick) => return self.whois(nick),
            Typed::Away(message) => return self.set_away(message),
            Typed::History(limit) => {
                let current = self.current;
                let limit = limit.unwrap_or(TYPED_HISTORY);
                let before = self.convs[current].oldest_seq();
                if self.convs[current].history_pending {
                    self.notice_here("older messages are already on their way".to_owned(), false);
                    return Vec::new();
                }
                if self.status != Status::Connected {
                    self.notice_here("not connected: older messages can be fetched once reconnected".to_owned(), true);
                    return Vec::new();
                }
                self.convs[current].history_done = false;
                self.convs[current].history_typed = true;
                self.notice_here(format!("fetching {limit} older messages…"), false);
                return self.history_request(current, before, limit).into_iter().collect();
            }
            Typed::ShowTopic => {
                let Conversation::Room(room) = self.current().id.clone() else {
                    self.notice_here("/topic works in a room; this is a direct conversation".to_owned(), true);
                    return Vec::new();
                };
                let text = match self.current().topic() {
                    Some(topic) => format!("the topic of #{room}: {topic}"),
                    None => format!("#{room} has no topic"),
                };
                self.notice_here(text, false);
            }
            Typed::Moderate(action) => {
                let Conversation::Room(room) = self.current().id.clone() else {
                    let text = "moderation commands work in a room; this is a direct conversation".to_owned();
                    self.notice_here(text, true);
                    return Vec::new();
                };
                return vec![Action::Engine(Command::Moderate { room, action })];
            }
            Typed::Silence { conv, on } => return self.silence(conv, on),
            Typed::Highlight(word) => return self.highlight(word),
            Typed::Unhighlight(word) => return self.unhighlight(word),
            Typed::Ignore(nick) => return self.ignore(nick),
            Typed::Unignore(nick) => return self.unignore(nick),
            Typed::Receipts(on) => return self.receipts(on),
            Typed::TypingNotices(on) => return self.typing_notices(on),
            Typed::Help => {
                let keys = self.help_keys.iter().map(|line| (*line).to_owned());
                for line in command_line::help_lines().chain(keys) {
                    self.notice_here(line, false);
                }
            }
            Typed::Quit => return vec![Action::Quit],
        }
        Vec::new()
    }

    /// Closes the direct conversation shown (rooms are left with [`Typed::Leave`]); `lobby` stays.
    pub fn close_current(&mut self) {
        if self.current != 0 && matches!(self.current().id, Conversation::Direct(_)) {
            self.convs.remove(self.current);
            self.current = 0;
        }
    }

    fn send(&mut self, to: Conversation, kind: MessageKind, text: String) -> Vec<Action> {
        if let Err(error) = validate_text(&text) {
            self.notice_here(format!("not sent: {error}"), true);
            return Vec::new();
        }
        // Readers stop showing the user typing when the message comes: no `Typing { false }` is needed.
        self.typing_sent = None;
        self.tell_away_of_peer(&to);
        vec![Action::Engine(Command::Send { to, kind, text })]
    }

    /// Message `seq` of the conversation shown, if we may edit it as far as we know. One not loaded here is left
    /// to the server to judge.
    fn editable(&self, seq: u64) -> Result<u64, String> {
        let Some(message) = self.current().message(seq) else { return Ok(seq) };
        if message.from != self.me {
            Err(format!("#{seq} is {}'s message: only your own can be edited", message.from))
        } else if message.revision == Revision::Deleted {
            Err(format!("#{seq} is deleted"))
        } else if !message.is_shown() {
            Err(format!("#{seq} is an edit, a deletion or a reaction, not a message"))
        } else {
            Ok(seq)
        }
    }

    /// The message of the conversation shown that a reply or a reaction is for (`doing` says which): `of`, if it
    /// may be as far as we know (one not loaded here is left to the server to judge), or else the latest of
    /// someone else's.
    fn answerable(&self, of: Option<u64>, doing: &str) -> Result<u64, String> {
        let conv = self.current();
        let Some(seq) = of else {
            return conv
                .latest_not_of(&self.me)
                .ok_or_else(|| format!("no message of someone else's here to {doing}; #SEQ names one"));
        };
        match conv.message(seq) {
            Some(message) if message.revision == Revision::Deleted => Err(format!("#{seq} is deleted")),
            Some(message) if !message.is_shown() => {
                Err(format!("#{seq} is an edit, a deletion or a reaction, not a message"))
            }
            _ => Ok(seq),
        }
    }
}
