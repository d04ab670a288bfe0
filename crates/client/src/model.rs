//! What a chat window shows, without the window: the conversations with their messages, notices, unread
//! counts and members, the connection's status, the questions the user must answer, and the message `/jump` asks
//! to bring on screen ([`ChatModel::take_jump`]). Engine [`Event`]s and typed entries go in, [`Action`]s (engine
//! [`Command`]s above all) come out. The full-screen terminal client and the desktop client both draw a
//! [`ChatModel`]; neither keeps conversation state of its own.
//!
//! [`ChatModel`] itself is here: the list of conversations, the one shown, the status and the prompts. One
//! conversation ([`Conv`]: its entries, unread count, members) is in `conv`; how engine events change the model in
//! `engine_events`; what the user types or clicks in `input`; finding and colouring nicknames in `nicknames`; the
//! words of moderation (room events, invitations, a user's standing) in `moderation`; the rooms' listing (`/list`,
//! the rooms kept for a window's browser, its words) in `listing`; what alerts the user, and the `/silence`,
//! `/highlight` and `/ignore` that decide it, in `alerts`; search (`/search`, `/goto`, the hits kept) in `found`;
//! away messages, `/whois` and typing notices in `awareness`; read markers (seen by, the "new messages" divider,
//! the user's own marker sent) in `read_markers`.
//!
//! [`Event`]: crate::engine::Event

mod alerts;
mod awareness;
mod conv;
mod engine_events;
mod found;
mod input;
mod listing;
mod moderation;
mod nicknames;
mod read_markers;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Local};
use palomar_proto::{Conversation, Nick, RoomName, unix_ms};
use palomar_transport::Fingerprint;

use crate::engine::Command;
use crate::preferences::Preferences;

pub use alerts::Alert;
pub use awareness::{
    away_notice, away_status_text, duration_text, local_time, member_text, no_such_user, own_away_text, typing_text,
    whois_lines,
};
pub use conv::{Conv, Entry, MessageEntry, QUOTE_CHARS, Quote, ReactionCount};
pub use found::{HIT_CHARS, MORE_FOUND, Search, found_header, hit_line, hit_time};
pub use listing::{NO_ROOMS, RoomBrowser, members_text, one_line, room_listing_lines};
pub use moderation::{invited_text, room_change_text, standing_text};
pub use nicknames::{mentions, nick_colour};
pub use read_markers::{NEW_MESSAGES, SEEN_BY_LINES, seen_by_text};

/// Messages asked for at a time when scrolling back.
pub const HISTORY_PAGE: u32 = 50;
/// Messages `/history` fetches without a number, as its help (shared with line mode) says.
pub const TYPED_HISTORY: u32 = 20;
/// The most messages a history page holds (PROTOCOL.md §10.4): what `/jump` asks for at most at a time.
const LARGEST_PAGE: u32 = 500;

/// What the front end should do after an event or an input.
#[derive(Debug)]
pub enum Action {
    /// Hand this to the engine.
    Engine(Command),
    /// Something the user asked to be told of (a mention, a direct message, a highlight word, an invitation):
    /// ring the terminal's bell; a window not in focus asks for attention and shows a desktop notification.
    Alert(Alert),
    /// [`ChatModel::preferences`] changed: the front end saves them (`Preferences::save`).
    SavePreferences,
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

/// A question the user must answer before anything else: trust this server's certificate?
#[derive(Debug, Clone)]
pub struct CertificatePrompt {
    pub server: String,
    pub fingerprint: Fingerprint,
}

pub struct ChatModel {
    pub me: Nick,
    /// The chat's name: its first address.
    pub server: String,
    /// The address of the chat's list in use: the one connected to, or the one being tried.
    pub node: String,
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
    /// The address of the last connection, to say so when a reconnection goes to another node.
    last_connected: Option<String>,
    known_nicks: BTreeSet<Nick>,
    /// Rooms whose member list the user asked for with `/users` (shown as a notice when it arrives).
    users_asked: HashSet<RoomName>,
    /// A room we asked to join, to switch to once joined.
    switch_to: Option<Conversation>,
    /// Why we were put out of a room (kicked, banned), told again where the user is once the room is gone.
    put_out: HashMap<RoomName, String>,
    /// A message of the conversation shown to bring on screen (`/jump`), for the front end to take.
    jump_to: Option<u64>,
    /// `/jump` to a message older than those loaded: its conversation and seq, jumped to once history brings it.
    jump_wanted: Option<(Conversation, u64)>,
    /// Conversations silenced, highlight words, nicknames ignored: given by the front end at start
    /// ([`ChatModel::set_preferences`]), changed by commands.
    preferences: Preferences,
    /// The last search and its hits so far.
    pub search: Option<Search>,
    /// A search's answer is also told as notices in the conversation shown (the terminal); a window with a
    /// results panel of its own turns this off.
    pub search_as_notices: bool,
    /// The rooms' listing last asked for (`/list`, a window's room browser) and its rooms so far.
    pub rooms: Option<RoomBrowser>,
    /// A listing's pages are also told as notices in the conversation shown (the terminal); a window with a room
    /// browser of its own turns this off.
    pub rooms_as_notices: bool,
    /// Listings asked for and not answered yet: only the last one's answer fills [`ChatModel::rooms`].
    rooms_asked: usize,
    /// The time zone times in notices are written in (a search's hits): the machine's at start.
    pub offset: FixedOffset,
    /// The protocol version of the last session: what the server may be asked.
    server_version: Option<u16>,
    /// The user's own away message, while set.
    own_away: Option<String>,
    /// Others' away messages, as the server told them (until they go offline).
    away: HashMap<Nick, String>,
    /// The away message told last in the direct conversation with each nick, so that it is told once.
    away_told: HashMap<Nick, String>,
    /// The nickname of the `/whois` waiting for its answer, to name in "no such user".
    whois_asked: Option<Nick>,
    /// The conversation a `Typing { true }` was sent for, and when: renewed, or ended with `false`.
    typing_sent: Option<(Conversation, Instant)>,
    /// The user's own marker as sent, per conversation, and when.
    read_sent: HashMap<Conversation, read_markers::MarkSent>,
    /// Markers sent before the last connection was made, to send again unless the server's reach them.
    resend: HashMap<Conversation, u64>,
    /// How far the user read each conversation here while read receipts are off (`/receipts off`): kept for the
    /// divider and unread counts, never sent.
    read_unsent: HashMap<Conversation, u64>,
    /// The user's away message before the last connection, until the server restates it: the same again is not
    /// news. (The server sends it at login only when one is set: cleared on another device meanwhile, none comes.)
    own_away_before: Option<String>,
}

impl ChatModel {
    pub fn new(me: Nick, server: String) -> Self {
        ChatModel {
            me,
            node: server.clone(),
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
            last_connected: None,
            known_nicks: BTreeSet::new(),
            users_asked: HashSet::new(),
            switch_to: None,
            put_out: HashMap::new(),
            jump_to: None,
            jump_wanted: None,
            preferences: Preferences::default(),
            search: None,
            search_as_notices: true,
            rooms: None,
            rooms_as_notices: true,
            rooms_asked: 0,
            offset: *Local::now().offset(),
            server_version: None,
            own_away: None,
            away: HashMap::new(),
            away_told: HashMap::new(),
            whois_asked: None,
            typing_sent: None,
            read_sent: HashMap::new(),
            resend: HashMap::new(),
            read_unsent: HashMap::new(),
            own_away_before: None,
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

    /// Shows conversation `index` (ignored if there is none) and marks it read; the "new messages" divider goes
    /// from the conversation left to the one opened, above its first message not read yet.
    pub fn switch(&mut self, index: usize) {
        if index < self.convs.len() {
            if index != self.current
                && let Some(left) = self.convs.get_mut(self.current)
            {
                left.new_messages = None;
                left.divider_fixed = false;
            }
            // Shown already (and opened): its divider stays where it is.
            if index != self.current || !self.convs[index].divider_fixed {
                self.place_divider(index);
            }
            self.current = index;
            let conv = &mut self.convs[index];
            conv.divider_fixed = true;
            conv.unread = 0;
            conv.mentioned = false;
        }
    }

    /// Takes a conversation we are no longer in out of the list.
    fn drop_conversation(&mut self, gone: &Conversation) {
        // Its marker is the server's to delete now: sent again, it would only be refused.
        self.read_sent.remove(gone);
        self.resend.remove(gone);
        self.read_unsent.remove(gone);
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

    /// Brings message `seq` of conversation `index` (the one shown) on screen: at once when it is loaded, else
    /// once older history brings it (asked for here, page after page), or a notice says why it cannot be.
    fn jump(&mut self, index: usize, seq: u64) -> Vec<Action> {
        let conv = &self.convs[index];
        let oldest = conv.oldest_seq();
        let why_not = match conv.message(seq) {
            Some(message) if message.is_shown() => {
                self.jump_to = Some(seq);
                return Vec::new();
            }
            Some(_) => format!("#{seq} is an edit, a deletion or a reaction, not a message"),
            None if oldest.is_some_and(|oldest| seq > oldest) => format!("there is no message #{seq} here"),
            None if conv.history_done => format!("#{seq} is no longer kept by the server"),
            None if self.status != Status::Connected => {
                format!("not connected: #{seq} can be fetched once reconnected")
            }
            None => {
                self.jump_wanted = Some((conv.id.clone(), seq));
                let limit = oldest.map_or(HISTORY_PAGE, |oldest| {
                    u32::try_from(oldest - seq).unwrap_or(LARGEST_PAGE).clamp(1, LARGEST_PAGE)
                });
                return self.history_request(index, oldest, limit).into_iter().collect();
            }
        };
        let ts = (self.clock)();
        self.convs[index].notice(ts, why_not, true);
        Vec::new()
    }

    /// The message `/jump` brought on screen, once: the front end scrolls to it.
    pub fn take_jump(&mut self) -> Option<u64> {
        self.jump_to.take()
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

    /// Advances the clock of the reconnect countdown and of typing notices (expired ones are forgotten).
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        self.expire_typing(now);
    }
}

/// How often a front end should redraw while counting down, so the seconds tick visibly.
pub const TICK: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests;
