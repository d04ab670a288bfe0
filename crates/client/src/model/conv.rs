//! One conversation as a chat window shows it: its entries (messages in seq order, our pending ones after them,
//! notices), unread count and mentions, online and offline members, how far back its history goes, and a room's
//! settings and the user's standing in it.

use std::collections::BTreeSet;

use palomar_proto::{Conversation, Message, MessageId, Nick, RoomState};

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
    pub(super) fn from_message(message: Message, own: bool, mention: bool) -> Self {
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
    /// A room's topic and settings and our role in it, once the server has said them; `None` until then (and
    /// always for a direct conversation), which a room with the defaults may stay.
    pub room_state: Option<RoomState>,
    /// No older messages to fetch.
    pub history_done: bool,
    /// A history request is on its way; another would fetch the same page.
    pub(super) history_pending: bool,
    /// The request on its way was typed (`/history`), so its outcome is told, not only shown.
    pub(super) history_typed: bool,
}

impl Conv {
    pub(super) fn new(id: Conversation) -> Self {
        Conv {
            id,
            entries: Vec::new(),
            unread: 0,
            mentioned: false,
            online: BTreeSet::new(),
            offline: BTreeSet::new(),
            room_state: None,
            history_done: false,
            history_pending: false,
            history_typed: false,
        }
    }

    /// The room's topic, when one is set.
    pub fn topic(&self) -> Option<&str> {
        self.room_state.as_ref().map(|state| state.topic.as_str()).filter(|topic| !topic.is_empty())
    }

    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| if let Entry::Message(m) = e { m.seq } else { None }).min()
    }

    /// Older messages were asked for and have not arrived yet.
    pub fn is_fetching_history(&self) -> bool {
        self.history_pending
    }

    pub(super) fn has_seq(&self, seq: u64) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Message(m) if m.seq == Some(seq)))
    }

    /// Puts a message where its seq belongs; pending messages and notices after it keep their place.
    pub(super) fn insert(&mut self, entry: MessageEntry) {
        let seq = entry.seq.unwrap_or(u64::MAX);
        let at = self
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Message(m) if m.seq.is_none_or(|s| s > seq)))
            .unwrap_or(self.entries.len());
        self.entries.insert(at, Entry::Message(entry));
    }

    pub(super) fn notice(&mut self, ts: u64, text: String, alert: bool) {
        self.entries.push(Entry::Notice { ts, text, alert });
    }
}
