//! The full-screen client's state and behaviour, without a terminal: engine events and keys in, engine
//! commands out. The view only reads it, so everything here is testable as plain functions.

use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chrono::FixedOffset;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use palomar_client::{Command, Event};
use palomar_proto::{Conversation, Message, MessageId, Nick, PresenceState, RoomName, validate_text};
use palomar_transport::Fingerprint;

use super::input::Input;

/// Messages asked for at a time when scrolling back.
const HISTORY_PAGE: u32 = 50;

pub const COMMANDS: &[&str] = &["/help", "/history", "/join", "/leave", "/msg", "/quit", "/users"];

pub const HELP: &[&str] = &[
    "/join ROOM  join (or create) a room and switch to it    /leave [ROOM]  leave a room",
    "/msg NICK [TEXT]  open a direct conversation             /users  who is in this room",
    "/history  fetch older messages                         /quit  leave (unsent messages wait for next time)",
    "Ctrl+N / Ctrl+P or Alt+1..9: switch conversation    PgUp / PgDn: scroll (past the top loads older messages)",
    "Tab: complete nicknames and commands   Up/Down: input history   F2 / F3: hide or show the side panes",
];

/// What the terminal loop should do after an input.
#[derive(Debug)]
pub enum Action {
    Engine(Command),
    Bell,
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Connecting,
    Connected,
    Reconnecting { at: Instant, attempt: u32 },
    Stopped,
}

#[derive(Debug, Clone)]
pub struct MessageEntry {
    /// `None` while our own message waits for the server.
    pub seq: Option<u64>,
    pub id: MessageId,
    pub from: Nick,
    pub ts: u64,
    pub text: String,
    pub own: bool,
    pub mention: bool,
}

#[derive(Debug, Clone)]
pub enum Entry {
    Message(MessageEntry),
    /// Join/leave notices, reconnects, errors: shown dimmed (`alert` in red).
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

#[derive(Debug)]
pub struct Conv {
    pub id: Conversation,
    pub entries: Vec<Entry>,
    pub unread: usize,
    pub mentioned: bool,
    pub online: BTreeSet<Nick>,
    pub offline: BTreeSet<Nick>,
    /// Rows scrolled up from the bottom.
    pub scroll: usize,
    /// No older messages to fetch.
    pub history_done: bool,
    history_pending: bool,
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
            scroll: 0,
            history_done: false,
            history_pending: false,
        }
    }

    fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| if let Entry::Message(m) = e { m.seq } else { None }).min()
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

/// A question the user must answer before anything else.
#[derive(Debug, Clone)]
pub struct CertificatePrompt {
    pub server: String,
    pub fingerprint: Fingerprint,
}

pub struct App {
    pub me: Nick,
    pub server: String,
    pub convs: Vec<Conv>,
    pub current: usize,
    pub status: Status,
    /// Messages waiting in the outbox.
    pub pending: usize,
    pub input: Input,
    pub prompt: Option<CertificatePrompt>,
    /// The engine stopped for good; shown as a warning screen.
    pub fatal: Option<String>,
    pub show_conversations: bool,
    pub show_members: bool,
    /// The time zone timestamps are shown in.
    pub offset: FixedOffset,
    /// When the status bar's countdown is computed.
    pub now: Instant,
    /// Milliseconds since the epoch, for the time of notices and of messages not yet stored.
    pub clock: fn() -> u64,
    /// Rows of the message pane at the last render, for paging and for knowing when the top is reached.
    pub page_rows: Cell<usize>,
    /// How far the current conversation can scroll, as of the last render.
    pub max_scroll: Cell<usize>,
    known_nicks: BTreeSet<Nick>,
    /// Rooms whose member list the user asked for with `/users` (shown as a notice when it arrives).
    users_asked: HashSet<RoomName>,
    /// A room we asked to join, to switch to once joined.
    switch_to: Option<Conversation>,
    connected_once: bool,
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Whether `text` names `nick` as a word (case-insensitive, with or without `@`).
pub fn mentions(text: &str, nick: &Nick) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|word| word.eq_ignore_ascii_case(nick.as_str()))
}

impl App {
    pub fn new(me: Nick, server: String, offset: FixedOffset) -> Self {
        App {
            me,
            server,
            convs: vec![Conv::new(Conversation::Room(RoomName::lobby()))],
            current: 0,
            status: Status::Connecting,
            pending: 0,
            input: Input::default(),
            prompt: None,
            fatal: None,
            show_conversations: true,
            show_members: true,
            offset,
            now: Instant::now(),
            clock: now_ms,
            page_rows: Cell::new(10),
            max_scroll: Cell::new(0),
            known_nicks: BTreeSet::new(),
            users_asked: HashSet::new(),
            switch_to: None,
            connected_once: false,
        }
    }

    pub fn current(&self) -> &Conv {
        &self.convs[self.current]
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

    fn switch(&mut self, index: usize) {
        if index < self.convs.len() {
            self.current = index;
            let conv = &mut self.convs[index];
            conv.unread = 0;
            conv.mentioned = false;
        }
    }

    fn notice_here(&mut self, text: String, alert: bool) {
        let current = self.current;
        let ts = (self.clock)();
        self.convs[current].notice(ts, text, alert);
    }

    fn history_request(&mut self, index: usize, before: Option<u64>) -> Option<Action> {
        let conv = &mut self.convs[index];
        if conv.history_pending || conv.history_done {
            return None;
        }
        conv.history_pending = true;
        Some(Action::Engine(Command::History { conversation: conv.id.clone(), before, limit: HISTORY_PAGE }))
    }

    fn members_request(&self, id: &Conversation) -> Option<Action> {
        match id {
            Conversation::Room(room) => Some(Action::Engine(Command::Users { room: room.to_string() })),
            Conversation::Direct(_) => None,
        }
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
                for info in &conversations {
                    let index = self.conv_index(&info.conversation);
                    if !self.connected_once && self.convs[index].entries.is_empty() {
                        actions.extend(self.history_request(index, None));
                    }
                    actions.extend(self.members_request(&info.conversation));
                }
                self.connected_once = true;
            }
            Event::Synced => {}
            Event::Disconnected { reason, retry_in, attempt, pending } => {
                if attempt == 1 {
                    self.notice_here(format!("disconnected: {reason}"), true);
                }
                self.status = Status::Reconnecting { at: Instant::now() + retry_in, attempt };
                self.pending = pending;
            }
            Event::Queued { id, to, text } => {
                let index = self.conv_index(&to);
                let (me, ts) = (self.me.clone(), (self.clock)());
                self.convs[index].insert(MessageEntry { seq: None, id, from: me, ts, text, own: true, mention: false });
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
                conv.notice((self.clock)(), format!("{nick} {what}"), false);
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
            Event::Left { room } => {
                let left = Conversation::Room(room);
                if let Some(index) = self.convs.iter().position(|c| c.id == left) {
                    self.convs.remove(index);
                    if self.current >= index {
                        self.current = self.current.saturating_sub(1).min(self.convs.len().saturating_sub(1));
                    }
                }
            }
            Event::History(page) => {
                let index = self.conv_index(&page.conversation);
                let conv = &mut self.convs[index];
                conv.history_pending = false;
                let before = conv.oldest_seq();
                let mut added = 0;
                for message in page.messages {
                    if !conv.has_seq(message.seq) {
                        let mention = message.from != self.me && mentions(&message.text, &self.me);
                        conv.insert(MessageEntry::from_message(message, false, mention));
                        added += 1;
                    }
                }
                let oldest = conv.oldest_seq();
                if added == 0 || oldest.is_none_or(|seq| seq <= page.complete_from) {
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
            Event::Fatal { message } => {
                self.fatal = Some(message);
                self.status = Status::Stopped;
            }
        }
        actions
    }

    fn on_message(&mut self, message: Message, own: bool) -> Vec<Action> {
        let index = self.conv_index(&message.conversation);
        self.known_nicks.insert(message.from.clone());
        let conv = &mut self.convs[index];
        if let Some(at) =
            conv.entries.iter().position(|e| matches!(e, Entry::Message(m) if m.id == message.id && m.own))
        {
            // Our own message coming back: it is sent now.
            conv.entries.remove(at);
        } else if conv.has_seq(message.seq) {
            return Vec::new();
        }
        let mention = !own && mentions(&message.text, &self.me);
        conv.insert(MessageEntry::from_message(message, own, mention));
        if index != self.current && !own {
            conv.unread += 1;
            conv.mentioned |= mention;
        }
        if mention { vec![Action::Bell] } else { Vec::new() }
    }

    pub fn on_paste(&mut self, text: &str) {
        if self.prompt.is_none() && self.fatal.is_none() {
            self.input.paste(text);
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if self.fatal.is_some() {
            return vec![Action::Quit];
        }
        if self.prompt.is_some() {
            let accept = match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => true,
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => false,
                _ => return Vec::new(),
            };
            self.prompt = None;
            return vec![Action::Engine(Command::TrustCertificate { accept })];
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c') if ctrl => return vec![Action::Quit],
            KeyCode::Char('d') if ctrl && self.input.is_empty() => return vec![Action::Quit],
            KeyCode::Char('n') if ctrl => self.switch((self.current + 1) % self.convs.len()),
            KeyCode::Char('p') if ctrl => self.switch((self.current + self.convs.len() - 1) % self.convs.len()),
            KeyCode::Char(digit @ '1'..='9') if alt => self.switch(digit as usize - '1' as usize),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('w') if ctrl => self.input.delete_word_back(),
            KeyCode::Char('u') if ctrl => self.input.delete_to_start(),
            KeyCode::Char('k') if ctrl => self.input.delete_to_end(),
            KeyCode::Char('b') if alt => self.input.word_left(),
            KeyCode::Char('f') if alt => self.input.word_right(),
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Left if ctrl => self.input.word_left(),
            KeyCode::Right if ctrl => self.input.word_right(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Up => self.input.history_up(),
            KeyCode::Down => self.input.history_down(),
            KeyCode::Tab => {
                let nicks: Vec<String> =
                    self.known_nicks.iter().filter(|n| **n != self.me).map(|n| n.to_string()).collect();
                self.input.complete(COMMANDS, &nicks);
            }
            KeyCode::PageUp => return self.scroll_up(),
            KeyCode::PageDown => {
                let page = self.page_rows.get().max(1);
                let conv = &mut self.convs[self.current];
                conv.scroll = conv.scroll.saturating_sub(page);
            }
            KeyCode::F(2) => self.show_conversations = !self.show_conversations,
            KeyCode::F(3) => self.show_members = !self.show_members,
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Vec::new()
    }

    fn scroll_up(&mut self) -> Vec<Action> {
        let page = self.page_rows.get().max(1);
        let max = self.max_scroll.get();
        let current = self.current;
        let conv = &mut self.convs[current];
        let at_top = conv.scroll + page >= max;
        conv.scroll = (conv.scroll + page).min(max);
        if at_top {
            let before = conv.oldest_seq();
            return self.history_request(current, before).into_iter().collect();
        }
        Vec::new()
    }

    fn submit(&mut self) -> Vec<Action> {
        let line = self.input.take();
        if line.trim().is_empty() {
            return Vec::new();
        }
        let to = self.current().id.clone();
        if let Some(escaped) = line.strip_prefix("//") {
            return self.send(to, format!("/{escaped}"));
        }
        let Some(command) = line.strip_prefix('/') else { return self.send(to, line) };
        let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "join" => match RoomName::parse(rest) {
                Ok(room) => {
                    let id = Conversation::Room(room.clone());
                    match self.convs.iter().position(|c| c.id == id) {
                        Some(index) => self.switch(index),
                        None => self.switch_to = Some(id),
                    }
                    return vec![Action::Engine(Command::Join { room: room.to_string() })];
                }
                Err(error) => self.notice_here(format!("/join ROOM: {error}"), true),
            },
            "leave" => {
                let room = match (&self.current().id, rest) {
                    (_, room) if !room.is_empty() => room.to_owned(),
                    (Conversation::Room(room), _) => room.to_string(),
                    (Conversation::Direct(_), _) => {
                        // A direct conversation has no membership to leave; just close its window.
                        if self.current != 0 {
                            self.convs.remove(self.current);
                            self.current = 0;
                        }
                        return Vec::new();
                    }
                };
                return vec![Action::Engine(Command::Leave { room })];
            }
            "msg" => {
                let (nick, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                match Nick::parse(nick) {
                    Ok(nick) => {
                        let id = Conversation::Direct(nick);
                        let index = self.conv_index(&id);
                        self.switch(index);
                        if !text.trim().is_empty() {
                            return self.send(id, text.trim().to_owned());
                        }
                    }
                    Err(error) => self.notice_here(format!("/msg NICK [TEXT]: {error}"), true),
                }
            }
            "users" => {
                let room = if rest.is_empty() {
                    match &self.current().id {
                        Conversation::Room(room) => room.clone(),
                        Conversation::Direct(_) => RoomName::lobby(),
                    }
                } else {
                    match RoomName::parse(rest) {
                        Ok(room) => room,
                        Err(error) => {
                            self.notice_here(format!("/users [ROOM]: {error}"), true);
                            return Vec::new();
                        }
                    }
                };
                self.users_asked.insert(room.clone());
                return vec![Action::Engine(Command::Users { room: room.to_string() })];
            }
            "history" => {
                let current = self.current;
                let before = self.convs[current].oldest_seq();
                self.convs[current].history_done = false;
                return self.history_request(current, before).into_iter().collect();
            }
            "help" => HELP.iter().for_each(|line| self.notice_here((*line).to_owned(), false)),
            "quit" => return vec![Action::Quit],
            other => self.notice_here(format!("unknown command /{other}; /help lists them"), true),
        }
        Vec::new()
    }

    fn send(&mut self, to: Conversation, text: String) -> Vec<Action> {
        if let Err(error) = validate_text(&text) {
            self.notice_here(format!("not sent: {error}"), true);
            return Vec::new();
        }
        self.convs[self.current].scroll = 0;
        vec![Action::Engine(Command::Send { to, text })]
    }

    /// Seconds until the next reconnection attempt, for the status bar.
    pub fn retry_in(&self) -> Option<(u64, u32)> {
        match self.status {
            Status::Reconnecting { at, attempt } => {
                Some((at.saturating_duration_since(self.now).as_secs_f64().ceil() as u64, attempt))
            }
            _ => None,
        }
    }

    /// Advances the clock of the status bar's countdown.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
    }
}

impl MessageEntry {
    fn from_message(message: Message, own: bool, mention: bool) -> Self {
        MessageEntry {
            seq: Some(message.seq),
            id: message.id,
            from: message.from,
            ts: message.ts,
            text: message.text,
            own,
            mention,
        }
    }
}

/// How long before the countdown reaches zero to redraw, so the seconds tick visibly.
pub const TICK: Duration = Duration::from_millis(250);
