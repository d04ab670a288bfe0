//! What a chat window shows, without the window: the conversations with their messages, notices, unread
//! counts and members, the connection's status, and the questions the user must answer. Engine [`Event`]s and
//! typed entries go in, [`Action`]s (engine [`Command`]s above all) come out. The full-screen terminal client
//! and the desktop client both draw a [`ChatModel`]; neither keeps conversation state of its own.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use palomar_proto::{Conversation, Message, MessageId, Nick, PresenceState, RoomName, unix_ms, validate_text};
use palomar_transport::Fingerprint;

use crate::command_line::{self, Typed};
use crate::engine::{Command, Event};

/// Messages asked for at a time when scrolling back.
pub const HISTORY_PAGE: u32 = 50;
/// Messages `/history` fetches without a number, as its help (shared with line mode) says.
pub const TYPED_HISTORY: u32 = 20;

/// What the front end should do after an event or an input.
#[derive(Debug)]
pub enum Action {
    /// Hand this to the engine.
    Engine(Command),
    /// Someone mentioned us: ring the terminal's bell, ask for the window's attention.
    Alert,
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Connecting,
    Connected,
    Reconnecting {
        at: Instant,
        attempt: u32,
    },
    /// The engine stopped for good; [`ChatModel::fatal`] says why.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct MessageEntry {
    /// `None` while our own message waits for the server.
    pub seq: Option<u64>,
    pub id: MessageId,
    pub from: Nick,
    /// When the server stored it (when it was typed, while it waits for the server).
    pub ts: u64,
    /// When we typed it, for our own messages typed here: it may be long before the server stored it (typed
    /// offline), and a front end may show both.
    pub typed: Option<u64>,
    pub text: String,
    pub own: bool,
    pub mention: bool,
}

impl MessageEntry {
    fn from_message(message: Message, own: bool, mention: bool) -> Self {
        MessageEntry {
            seq: Some(message.seq),
            id: message.id,
            from: message.from,
            ts: message.ts,
            typed: None,
            text: message.text,
            own,
            mention,
        }
    }

    /// When we typed it, if that was at least a minute before the server stored it: worth showing beside.
    pub fn typed_long_before(&self) -> Option<u64> {
        self.typed.filter(|typed| self.ts.saturating_sub(*typed) >= 60_000)
    }

    /// Our own message, not yet stored by the server.
    pub fn is_pending(&self) -> bool {
        self.seq.is_none()
    }
}

#[derive(Debug, Clone)]
pub enum Entry {
    Message(MessageEntry),
    /// Join/leave notices, reconnects, errors: shown quieter than messages (`alert` ones as warnings).
    Notice {
        ts: u64,
        text: String,
        alert: bool,
    },
}

impl Entry {
    pub fn ts(&self) -> u64 {
        match self {
            Entry::Message(m) => m.ts,
            Entry::Notice { ts, .. } => *ts,
        }
    }
}

/// One conversation as shown: a room or a direct conversation.
#[derive(Debug)]
pub struct Conv {
    pub id: Conversation,
    /// Messages in seq order, our pending ones after them; notices where they happened.
    pub entries: Vec<Entry>,
    pub unread: usize,
    /// An unread message mentions us.
    pub mentioned: bool,
    pub online: BTreeSet<Nick>,
    pub offline: BTreeSet<Nick>,
    /// No older messages to fetch.
    pub history_done: bool,
    /// A history request is on its way; another would fetch the same page.
    history_pending: bool,
    /// The request on its way was typed (`/history`), so its outcome is told, not only shown.
    history_typed: bool,
}

impl Conv {
    fn new(id: Conversation) -> Self {
        Conv {
            id,
            entries: Vec::new(),
            unread: 0,
            mentioned: false,
            online: BTreeSet::new(),
            offline: BTreeSet::new(),
            history_done: false,
            history_pending: false,
            history_typed: false,
        }
    }

    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| if let Entry::Message(m) = e { m.seq } else { None }).min()
    }

    /// Older messages were asked for and have not arrived yet.
    pub fn is_fetching_history(&self) -> bool {
        self.history_pending
    }

    fn has_seq(&self, seq: u64) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Message(m) if m.seq == Some(seq)))
    }

    /// Puts a message where its seq belongs; pending messages and notices after it keep their place.
    fn insert(&mut self, entry: MessageEntry) {
        let seq = entry.seq.unwrap_or(u64::MAX);
        let at = self
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Message(m) if m.seq.is_none_or(|s| s > seq)))
            .unwrap_or(self.entries.len());
        self.entries.insert(at, Entry::Message(entry));
    }

    fn notice(&mut self, ts: u64, text: String, alert: bool) {
        self.entries.push(Entry::Notice { ts, text, alert });
    }
}

/// A question the user must answer before anything else: trust this server's certificate?
#[derive(Debug, Clone)]
pub struct CertificatePrompt {
    pub server: String,
    pub fingerprint: Fingerprint,
}

pub struct ChatModel {
    pub me: Nick,
    pub server: String,
    /// `lobby` first, then in the order they appeared.
    pub convs: Vec<Conv>,
    /// Index into `convs` of the conversation shown.
    pub current: usize,
    pub status: Status,
    /// Messages waiting in the outbox (the front end copies it from `Engine::outbox_len`).
    pub pending: usize,
    pub prompt: Option<CertificatePrompt>,
    /// The engine stopped for good (wrong password, changed certificate, ...): why.
    pub fatal: Option<String>,
    /// The engine stopped because the server's certificate is not the pinned one.
    pub certificate_changed: bool,
    /// When the reconnect countdown is computed.
    pub now: Instant,
    /// Milliseconds since the epoch, for the time of notices and of messages not yet stored.
    pub clock: fn() -> u64,
    /// Lines `/help` shows after the commands' help: the front end's keys.
    pub help_keys: &'static [&'static str],
    /// A connection was made at least once (the first `Connected` is signing in, later ones reconnecting).
    pub connected_once: bool,
    known_nicks: BTreeSet<Nick>,
    /// Rooms whose member list the user asked for with `/users` (shown as a notice when it arrives).
    users_asked: HashSet<RoomName>,
    /// A room we asked to join, to switch to once joined.
    switch_to: Option<Conversation>,
}

/// Whether `text` names `nick` as a word (case-insensitive, with or without `@`).
pub fn mentions(text: &str, nick: &Nick) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|word| word.eq_ignore_ascii_case(nick.as_str()))
}

/// The same index into a palette of `colours` for a nickname everywhere and every time (FNV-1a of its
/// bytes), so a person has one colour in every front end.
pub fn nick_colour(nick: &Nick, colours: usize) -> usize {
    let hash =
        nick.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % colours.max(1) as u64) as usize
}

impl ChatModel {
    pub fn new(me: Nick, server: String) -> Self {
        ChatModel {
            me,
            server,
            convs: vec![Conv::new(Conversation::Room(RoomName::lobby()))],
            current: 0,
            status: Status::Connecting,
            pending: 0,
            prompt: None,
            fatal: None,
            certificate_changed: false,
            now: Instant::now(),
            clock: unix_ms,
            help_keys: &[],
            connected_once: false,
            known_nicks: BTreeSet::new(),
            users_asked: HashSet::new(),
            switch_to: None,
        }
    }

    pub fn current(&self) -> &Conv {
        &self.convs[self.current]
    }

    /// Everyone seen so far (for completion), ourselves included.
    pub fn known_nicks(&self) -> &BTreeSet<Nick> {
        &self.known_nicks
    }

    fn conv_index(&mut self, id: &Conversation) -> usize {
        if let Some(index) = self.convs.iter().position(|c| &c.id == id) {
            return index;
        }
        if let Conversation::Direct(peer) = id {
            self.known_nicks.insert(peer.clone());
        }
        self.convs.push(Conv::new(id.clone()));
        self.convs.len() - 1
    }

    /// Opens on `id` (the room given at start, say) as soon as it is one of ours: at once if it already is, else
    /// once joined.
    pub fn start_in(&mut self, id: Conversation) {
        match self.convs.iter().position(|c| c.id == id) {
            Some(index) => self.switch(index),
            None => self.switch_to = Some(id),
        }
    }

    /// Shows conversation `index` (ignored if there is none) and marks it read.
    pub fn switch(&mut self, index: usize) {
        if index < self.convs.len() {
            self.current = index;
            let conv = &mut self.convs[index];
            conv.unread = 0;
            conv.mentioned = false;
        }
    }

    /// Takes a conversation we are no longer in out of the list.
    fn drop_conversation(&mut self, gone: &Conversation) {
        if let Some(index) = self.convs.iter().position(|c| &c.id == gone) {
            self.convs.remove(index);
            if self.current >= index {
                self.current = self.current.saturating_sub(1).min(self.convs.len().saturating_sub(1));
            }
        }
    }

    /// Adds a notice to the conversation shown.
    pub fn notice_here(&mut self, text: String, alert: bool) {
        let current = self.current;
        let ts = (self.clock)();
        self.convs[current].notice(ts, text, alert);
    }

    fn history_request(&mut self, index: usize, before: Option<u64>, limit: u32) -> Option<Action> {
        let conv = &mut self.convs[index];
        if conv.history_pending || conv.history_done {
            return None;
        }
        conv.history_pending = true;
        Some(Action::Engine(Command::History { conversation: conv.id.clone(), before, limit }))
    }

    /// Asks for the page of messages before the oldest one shown, unless one is on its way or there are none.
    pub fn fetch_older(&mut self) -> Option<Action> {
        let current = self.current;
        let before = self.convs[current].oldest_seq();
        self.history_request(current, before, HISTORY_PAGE)
    }

    fn members_request(&self, id: &Conversation) -> Option<Action> {
        match id {
            Conversation::Room(room) => Some(Action::Engine(Command::Users { room: room.to_string() })),
            Conversation::Direct(_) => None,
        }
    }

    /// The answer to [`ChatModel::prompt`].
    pub fn answer_certificate(&mut self, accept: bool) -> Action {
        self.prompt = None;
        Action::Engine(Command::TrustCertificate { accept })
    }

    pub fn on_engine(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Connecting { .. } => {
                if self.status != Status::Stopped {
                    self.status = Status::Connecting;
                }
            }
            Event::ConfirmCertificate { server, fingerprint } => {
                self.prompt = Some(CertificatePrompt { server, fingerprint })
            }
            Event::Pinned { server, fingerprint } => {
                self.notice_here(format!("trusted the certificate of {server}: {fingerprint}"), false)
            }
            Event::Connected { nick, conversations, .. } => {
                self.status = Status::Connected;
                if self.connected_once {
                    self.notice_here(format!("reconnected as {nick}"), false);
                }
                // A request made as the last connection died will not be answered.
                for conv in &mut self.convs {
                    conv.history_pending = false;
                    conv.history_typed = false;
                }
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
            Event::Synced => {}
            Event::Disconnected { reason, retry_in, attempt, pending, .. } => {
                if attempt == 1 {
                    self.notice_here(format!("disconnected: {reason}"), true);
                }
                self.status = Status::Reconnecting { at: Instant::now() + retry_in, attempt };
                self.pending = pending;
            }
            Event::Queued { id, to, text } => {
                let index = self.conv_index(&to);
                let (me, ts) = (self.me.clone(), (self.clock)());
                let entry =
                    MessageEntry { seq: None, id, from: me, ts, typed: Some(ts), text, own: true, mention: false };
                self.convs[index].insert(entry);
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
                    conv.insert(entry);
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
                let what = match state {
                    PresenceState::Joined => "joined",
                    PresenceState::Left => "left",
                    PresenceState::Online => "is online",
                    PresenceState::Offline => "went offline",
                };
                if news {
                    conv.notice((self.clock)(), format!("{nick} {what}"), false);
                }
                self.known_nicks.insert(nick);
            }
            Event::Users { room, online, offline } => {
                self.known_nicks.extend(online.iter().chain(offline.iter()).cloned());
                let index = self.conv_index(&Conversation::Room(room.clone()));
                if self.users_asked.remove(&room) {
                    let list = |nicks: &[Nick]| nicks.iter().map(Nick::as_str).collect::<Vec<_>>().join(", ");
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
                if self.switch_to.as_ref() == Some(&info.conversation) {
                    self.switch_to = None;
                    self.switch(index);
                }
                actions.extend(self.members_request(&info.conversation));
            }
            Event::Left { room } => self.drop_conversation(&Conversation::Room(room)),
            Event::Closed { conversation, reason } => {
                self.drop_conversation(&conversation);
                self.notice_here(format!("{conversation} is closed: {reason}"), true);
            }
            Event::History(page) => {
                let index = self.conv_index(&page.conversation);
                let conv = &mut self.convs[index];
                conv.history_pending = false;
                let before = conv.oldest_seq();
                let empty = page.messages.is_empty();
                let mut new = 0;
                for message in page.messages {
                    if !conv.has_seq(message.seq) {
                        let mention = message.from != self.me && mentions(&message.text, &self.me);
                        conv.insert(MessageEntry::from_message(message, false, mention));
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
            }
            Event::Gap { conversation, complete_from } => {
                let index = self.conv_index(&conversation);
                let text = format!(
                    "messages before seq {complete_from} were removed by the server's retention before you saw them"
                );
                let ts = (self.clock)();
                self.convs[index].notice(ts, text, true);
            }
            Event::Error { message, .. } => self.notice_here(message, true),
            Event::ServerShuttingDown { message } => self.notice_here(format!("server: {message}"), true),
            Event::Fatal { message, certificate_changed, .. } => {
                self.fatal = Some(message);
                self.certificate_changed = certificate_changed;
                self.status = Status::Stopped;
            }
        }
        actions
    }

    fn on_message(&mut self, message: Message, own: bool) -> Vec<Action> {
        let index = self.conv_index(&message.conversation);
        self.known_nicks.insert(message.from.clone());
        let conv = &mut self.convs[index];
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
        let mention = !own && mentions(&message.text, &self.me);
        conv.insert(MessageEntry { typed, ..MessageEntry::from_message(message, own, mention) });
        if index != self.current && !own {
            conv.unread += 1;
            conv.mentioned |= mention;
        }
        if mention { vec![Action::Alert] } else { Vec::new() }
    }

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
                return self.send(to, text);
            }
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
                    return self.send(id, text);
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

    fn send(&mut self, to: Conversation, text: String) -> Vec<Action> {
        if let Err(error) = validate_text(&text) {
            self.notice_here(format!("not sent: {error}"), true);
            return Vec::new();
        }
        vec![Action::Engine(Command::Send { to, text })]
    }

    /// Whether the members' online/offline state is current: only while connected. Presence is live and not
    /// replayed, so while disconnected nobody knows who came or went; a front end shows members as unknown then.
    pub fn members_known(&self) -> bool {
        self.status == Status::Connected
    }

    /// Seconds until the next reconnection attempt and the attempt's number, while reconnecting.
    pub fn retry_in(&self) -> Option<(u64, u32)> {
        match self.status {
            Status::Reconnecting { at, attempt } => {
                Some((at.saturating_duration_since(self.now).as_secs_f64().ceil() as u64, attempt))
            }
            _ => None,
        }
    }

    /// Advances the clock of the reconnect countdown.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
    }
}

/// How often a front end should redraw while counting down, so the seconds tick visibly.
pub const TICK: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use palomar_proto::ConversationInfo;
    use palomar_testkit::nick;

    use super::*;

    fn lobby() -> Conversation {
        Conversation::Room(RoomName::lobby())
    }

    fn message(seq: u64, from: &str, text: &str) -> Event {
        let message = Message {
            conversation: lobby(),
            seq,
            id: MessageId([seq as u8; 16]),
            from: nick(from),
            ts: seq,
            text: text.into(),
        };
        Event::Message { message, own: from == "ana" }
    }

    fn connected() -> ChatModel {
        let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
        let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
        let conversations = [lobby(), garden]
            .into_iter()
            .map(|conversation| ConversationInfo { conversation, latest_seq: 0, first_seq: 1 })
            .collect();
        model.on_engine(Event::Connected { nick: nick("ana"), registered: false, conversations });
        model
    }

    #[test]
    fn an_own_message_is_pending_until_accepted_and_shown_once() {
        let mut model = connected();
        let actions = model.submit("hello");
        assert!(matches!(&actions[..], [Action::Engine(Command::Send { text, .. })] if text == "hello"));
        let id = MessageId([7; 16]);
        model.on_engine(Event::Queued { id, to: lobby(), text: "hello".into() });
        let pending = |model: &ChatModel| match &model.current().entries[..] {
            [Entry::Message(m)] => m.is_pending(),
            other => panic!("one message expected: {other:?}"),
        };
        assert!(pending(&model));
        model.on_engine(Event::Accepted { id, conversation: lobby(), seq: 1, ts: 5 });
        assert!(!pending(&model));
        let echo = Message { conversation: lobby(), seq: 1, id, from: nick("ana"), ts: 5, text: "hello".into() };
        model.on_engine(Event::Message { message: echo, own: true });
        assert!(!pending(&model));
    }

    #[test]
    fn a_message_typed_offline_keeps_when_it_was_typed() {
        let mut model = connected();
        model.clock = || 1_000;
        let id = MessageId([7; 16]);
        model.on_engine(Event::Queued { id, to: lobby(), text: "typed offline".into() });
        let shown = |model: &ChatModel| match &model.current().entries[..] {
            [Entry::Message(m)] => (m.ts, m.typed, m.typed_long_before()),
            other => panic!("one message expected: {other:?}"),
        };
        assert_eq!(shown(&model), (1_000, Some(1_000), None), "while pending, the time it was typed");
        model.on_engine(Event::Accepted { id, conversation: lobby(), seq: 1, ts: 301_000 });
        assert_eq!(shown(&model), (301_000, Some(1_000), Some(1_000)), "stored five minutes later: both");
        let echo = Message { conversation: lobby(), seq: 1, id, from: nick("ana"), ts: 301_000, text: "x".into() };
        model.on_engine(Event::Message { message: echo, own: true });
        assert_eq!(shown(&model).1, Some(1_000), "kept when our copy comes back");
    }

    #[test]
    fn unread_counts_and_mentions_in_other_conversations() {
        let mut model = connected();
        model.switch(1);
        assert!(matches!(&model.on_engine(message(1, "bob", "ana: lunch?"))[..], [Action::Alert]));
        assert!(model.on_engine(message(2, "bob", "anyone?")).is_empty());
        assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (2, true));
        model.switch(0);
        assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (0, false));
    }

    #[test]
    fn commands_switch_conversations_and_mistakes_become_notices() {
        let mut model = connected();
        assert!(model.submit("/msg bob").is_empty());
        assert_eq!(model.current().id, Conversation::Direct(nick("bob")));
        let actions = model.submit("/join #garden");
        assert!(matches!(&actions[..], [Action::Engine(Command::Join { room })] if room == "garden"));
        assert_eq!(model.current, 1, "garden is already a conversation: shown at once");
        assert!(model.submit("/join no way").is_empty());
        assert!(matches!(model.current().entries.last(), Some(Entry::Notice { alert: true, text, .. })
            if text.starts_with("/join ROOM:")));
    }

    #[test]
    fn leaving_a_room_removes_it_and_fetching_older_asks_once() {
        let mut model = connected();
        model.switch(1);
        assert!(matches!(&model.submit("/leave")[..], [Action::Engine(Command::Leave { room })] if room == "garden"));
        model.on_engine(Event::Left { room: RoomName::parse("garden").expect("valid") });
        assert_eq!((model.convs.len(), model.current), (1, 0));
        let Event::Message { message: ten, .. } = message(10, "bob", "ten") else { unreachable!("a message") };
        let page = palomar_proto::HistoryPage { conversation: lobby(), messages: vec![ten], complete_from: 1 };
        model.on_engine(Event::History(page));
        assert!(matches!(model.fetch_older(), Some(Action::Engine(Command::History { before: Some(10), .. }))));
        assert!(model.fetch_older().is_none(), "one request at a time");
    }

    #[test]
    fn a_history_page_that_only_repeats_live_messages_does_not_end_the_history() {
        let mut model = connected();
        // Asked for while the view was still empty, answered after the catch-up brought the same messages.
        model.fetch_older();
        let live: Vec<Message> = (71..=120)
            .map(|seq| match message(seq, "bob", "catching up") {
                Event::Message { message, .. } => message,
                _ => unreachable!("a message"),
            })
            .collect();
        for message in &live {
            model.on_engine(Event::Message { message: message.clone(), own: false });
        }
        let page = palomar_proto::HistoryPage { conversation: lobby(), messages: live, complete_from: 1 };
        model.on_engine(Event::History(page));
        assert!(!model.current().history_done, "messages 1 to 70 are still to fetch");
        assert!(matches!(model.fetch_older(), Some(Action::Engine(Command::History { before: Some(71), .. }))));
        let empty = palomar_proto::HistoryPage { conversation: lobby(), messages: Vec::new(), complete_from: 1 };
        model.on_engine(Event::History(empty));
        assert!(model.current().history_done, "an empty page is the beginning");
    }

    fn notices(model: &ChatModel) -> Vec<&str> {
        model.convs[0]
            .entries
            .iter()
            .filter_map(|e| if let Entry::Notice { text, .. } = e { Some(text.as_str()) } else { None })
            .collect()
    }

    #[test]
    fn an_arrival_missed_while_disconnected_is_not_announced_twice() {
        let mut model = connected();
        model.switch(1);
        let erin = |state| Event::Presence { room: RoomName::lobby(), nick: nick("erin"), state };
        model.on_engine(erin(PresenceState::Online));
        // The server died without a word about erin; both came back, and the server announced her again.
        let disconnected = Event::Disconnected {
            reason: "gone".into(),
            retry_in: TICK,
            attempt: 1,
            pending: 0,
            refused_for_now: false,
        };
        model.on_engine(disconnected);
        model.on_engine(Event::Connected { nick: nick("ana"), registered: false, conversations: Vec::new() });
        model.on_engine(erin(PresenceState::Online));
        assert_eq!(notices(&model), ["erin is online"]);
        model.on_engine(erin(PresenceState::Offline));
        model.on_engine(erin(PresenceState::Online));
        assert_eq!(notices(&model), ["erin is online", "erin went offline", "erin is online"]);
    }

    #[test]
    fn members_are_known_only_while_connected() {
        let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
        assert!(!model.members_known(), "not before the first connection");
        model.on_engine(Event::Connected { nick: nick("ana"), registered: false, conversations: Vec::new() });
        assert!(model.members_known());
        let disconnected = Event::Disconnected {
            reason: "gone".into(),
            retry_in: TICK,
            attempt: 1,
            pending: 0,
            refused_for_now: false,
        };
        model.on_engine(disconnected);
        assert!(!model.members_known());
        model.on_engine(Event::Connecting { server: "127.0.0.1:5555".into(), attempt: 1 });
        assert!(!model.members_known());
    }

    #[test]
    fn a_typed_history_request_says_what_it_fetches_and_what_came() {
        let mut model = connected();
        let last_notice = |model: &ChatModel| match model.current().entries.last() {
            Some(Entry::Notice { text, .. }) => text.clone(),
            other => panic!("a notice expected: {other:?}"),
        };
        let empty = palomar_proto::HistoryPage { conversation: lobby(), messages: Vec::new(), complete_from: 1 };
        model.on_engine(Event::History(empty.clone()));
        assert!(model.current().entries.is_empty(), "the first page, asked for at login, says nothing");
        let actions = model.submit("/history 3");
        assert!(matches!(&actions[..], [Action::Engine(Command::History { limit: 3, .. })]), "{actions:?}");
        assert_eq!(last_notice(&model), "fetching 3 older messages…");
        assert!(model.submit("/history 3").is_empty());
        assert_eq!(last_notice(&model), "older messages are already on their way");
        let messages = (1..=2)
            .map(|seq| match message(seq, "bob", "old") {
                Event::Message { message, .. } => message,
                _ => unreachable!("a message"),
            })
            .collect();
        model.on_engine(Event::History(palomar_proto::HistoryPage {
            conversation: lobby(),
            messages,
            complete_from: 1,
        }));
        assert_eq!(last_notice(&model), "2 older messages came");
        model.submit("/history");
        model.on_engine(Event::History(empty.clone()));
        assert_eq!(last_notice(&model), "no older messages");
        let before = model.current().entries.len();
        model.fetch_older();
        model.on_engine(Event::History(empty));
        assert_eq!(model.current().entries.len(), before, "scrolling back says nothing");
    }

    #[test]
    fn colours_are_stable_and_in_range() {
        assert_eq!(nick_colour(&nick("ana"), 10), nick_colour(&nick("ana"), 10));
        assert!((0..100).all(|i| nick_colour(&nick(&format!("n{i}")), 7) < 7));
    }
}
