//! One conversation as a chat window shows it: its entries (messages in seq order, our pending ones after them,
//! notices), unread count and mentions, online and offline members, how far back its history goes, and a room's
//! settings and the user's standing in it. Edits, deletions and reactions are entries too, not shown themselves:
//! each is applied to the message it refers to, and found again when that message comes later (an older history
//! page). A reply is a message that quotes the one it answers ([`Conv::quote`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use palomar_proto::{Conversation, Message, MessageId, MessageKind, Nick, REACTIONS, Revision, RoomState};

/// One reaction to a message and who reacted so, in the order they did (our own pending one last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: &'static str,
    pub by: Vec<Nick>,
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quote {
    /// Its sender and the start of its first line (cut at [`QUOTE_CHARS`], with "…").
    Message {
        from: Nick,
        line: String,
    },
    Deleted,
    /// Sent by someone the user ignores: neither who nor what is drawn.
    Ignored,
    /// Not loaded here (older than the history fetched, or removed by retention).
    NotHere,
}

/// Most characters of a quoted line.
pub const QUOTE_CHARS: usize = 80;

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
    /// The latest text (empty once deleted); an edit's new text; a deletion's reason.
    pub text: String,
    pub kind: MessageKind,
    /// What became of it: edited (`text` is the latest), deleted.
    pub revision: Revision,
    /// Who deleted it, and why (may be empty), once the deletion itself was seen: a message that came already
    /// deleted does not say.
    pub deleted_by: Option<(Nick, String)>,
    pub own: bool,
    pub mention: bool,
    /// Sent by someone the user ignores: kept (`/unignore` shows it again), not drawn.
    pub ignored: bool,
    /// The reactions to it, in the order of [`REACTIONS`], each with someone behind it.
    pub reactions: Vec<ReactionCount>,
    /// The seq of the edit whose text `text` is (0: none seen), so that an older edit seen later (in a history
    /// page) does not undo a newer one.
    pub(super) edit_seq: u64,
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
            kind: message.kind,
            revision: message.revision,
            deleted_by: None,
            own,
            mention,
            ignored: false,
            reactions: Vec::new(),
            edit_seq: 0,
        }
    }

    /// Our own message (or action, edit, deletion) as typed, before the server has it.
    pub fn pending(id: MessageId, from: Nick, ts: u64, kind: MessageKind, text: String) -> Self {
        MessageEntry {
            seq: None,
            id,
            from,
            ts,
            typed: Some(ts),
            text,
            kind,
            revision: Revision::Original,
            deleted_by: None,
            own: true,
            mention: false,
            ignored: false,
            reactions: Vec::new(),
            edit_seq: 0,
        }
    }

    /// A message, an action or a reply: what a window shows as a line of its own. Edits, deletions and reactions
    /// are shown through the message they change.
    pub fn is_shown(&self) -> bool {
        self.kind.is_message()
    }

    /// What a window draws as a line: a message ([`MessageEntry::is_shown`]) of someone not ignored.
    pub fn is_drawn(&self) -> bool {
        self.is_shown() && !self.ignored
    }

    /// The message this one answers, for a reply.
    pub fn reply_to(&self) -> Option<u64> {
        match self.kind {
            MessageKind::Reply { of } => Some(of),
            _ => None,
        }
    }

    /// Whether `nick` is among those who reacted with `emoji`.
    pub fn has_reaction(&self, emoji: &str, nick: &Nick) -> bool {
        self.reactions.iter().any(|reaction| reaction.emoji == emoji && reaction.by.contains(nick))
    }

    pub fn is_action(&self) -> bool {
        self.kind == MessageKind::Action
    }

    pub fn is_edited(&self) -> bool {
        self.revision == Revision::Edited
    }

    /// What is shown in place of a deleted message: "(deleted)", or "(deleted by bob: spam)" when someone else
    /// deleted it or a reason was given. `None` when it is not deleted.
    pub fn deleted_text(&self) -> Option<String> {
        if self.revision != Revision::Deleted {
            return None;
        }
        Some(match &self.deleted_by {
            Some((by, reason)) if !reason.is_empty() => format!("(deleted by {by}: {reason})"),
            Some((by, _)) if *by != self.from => format!("(deleted by {by})"),
            _ => "(deleted)".to_owned(),
        })
    }

    /// A stored message or action still there: one that may be edited or deleted.
    fn is_changeable(&self) -> bool {
        self.seq.is_some() && self.is_shown() && self.revision != Revision::Deleted
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
    /// Who is typing here, and when they last said so (shown through [`ChatModel::typing_status`]).
    ///
    /// [`ChatModel::typing_status`]: super::ChatModel::typing_status
    pub typing: BTreeMap<Nick, Instant>,
    /// How far each member has read (the user's own marker included): nick → seq.
    pub markers: BTreeMap<Nick, u64>,
    /// Where the "new messages" divider goes while this conversation is shown: above this message. Placed when
    /// the conversation is opened, gone when the user switches away.
    pub new_messages: Option<u64>,
    /// The divider stays where it is (the conversation was opened, or read here): later markers do not move it.
    pub(super) divider_fixed: bool,
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
            typing: BTreeMap::new(),
            markers: BTreeMap::new(),
            new_messages: None,
            divider_fixed: false,
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

    /// The stored entry `seq`, when it is here.
    pub fn message(&self, seq: u64) -> Option<&MessageEntry> {
        self.messages().find(|m| m.seq == Some(seq))
    }

    fn messages(&self) -> impl DoubleEndedIterator<Item = &MessageEntry> {
        self.entries.iter().filter_map(|e| if let Entry::Message(m) = e { Some(m) } else { None })
    }

    /// The seq of `nick`'s latest message or action here that may still be edited or deleted, among those
    /// loaded.
    pub fn latest_of(&self, nick: &Nick) -> Option<u64> {
        self.messages().rev().find(|m| m.from == *nick && m.is_changeable()).and_then(|m| m.seq)
    }

    /// The seq of the latest message here not sent by `me` that may be replied or reacted to, among those loaded.
    pub fn latest_not_of(&self, me: &Nick) -> Option<u64> {
        self.messages().rev().find(|m| m.from != *me && !m.ignored && m.is_changeable()).and_then(|m| m.seq)
    }

    /// Follows a new list of ignored nicknames: every entry marked again, every message's reactions counted again.
    pub(super) fn ignore(&mut self, ignoring: &BTreeSet<Nick>) {
        let mut shown = Vec::new();
        for entry in &mut self.entries {
            if let Entry::Message(m) = entry {
                m.ignored = ignoring.contains(&m.from);
                shown.extend(m.seq.filter(|_| m.is_shown()));
            }
        }
        for seq in shown {
            self.apply_changes_to(seq);
        }
    }

    /// What a reply to message `of` shows of it.
    pub fn quote(&self, of: u64) -> Quote {
        match self.message(of) {
            Some(m) if m.ignored => Quote::Ignored,
            Some(m) if m.revision == Revision::Deleted => Quote::Deleted,
            Some(m) => {
                let (mut line, cut) = first_line(&m.text, QUOTE_CHARS);
                if cut || m.text.trim().lines().nth(1).is_some() {
                    line.push('…');
                }
                Quote::Message { from: m.from.clone(), line }
            }
            None => Quote::NotHere,
        }
    }

    /// Files an entry: a message where its seq belongs; an edit, a deletion or a reaction also changes the
    /// message it refers to (a reaction of ours while still pending too, so that it shows at once), and a message
    /// takes the changes already here for it.
    pub(super) fn add(&mut self, entry: MessageEntry) {
        let (seq, kind) = (entry.seq, entry.kind);
        // A reply is a message of its own: it takes its changes, it changes nothing.
        let change = match (seq, kind) {
            (None, MessageKind::Reaction { of, .. }) => Some(of),
            (None, _) => None,
            (Some(_), kind) if kind.is_message() => None,
            (Some(_), kind) => kind.refers_to(),
        };
        self.insert(entry);
        match (seq, change) {
            (_, Some(of)) => self.apply_changes_to(of),
            (Some(seq), None) => self.apply_changes_to(seq),
            (None, None) => {}
        }
    }

    /// Applies to message `of` its latest edit here, its deletion and its reactions, if any.
    pub(super) fn apply_changes_to(&mut self, of: u64) {
        let mut latest_edit: Option<(u64, String)> = None;
        let mut deletion: Option<(Nick, String)> = None;
        let mut reactions: Vec<ReactionCount> = Vec::new();
        // In seq order, our pending ones last: the last edit found is the latest, and reactions are added and
        // taken back in the order they were.
        for m in self.messages() {
            if let MessageKind::Reaction { of: target, added } = m.kind
                && target == of
                && m.revision != Revision::Deleted
                && !m.ignored
            {
                react(&mut reactions, &m.text, &m.from, added);
            }
            let Some(seq) = m.seq else { continue };
            match m.kind {
                // An edit of a deleted message comes blanked: it has nothing to show.
                MessageKind::Edit { of: target } if target == of && m.revision != Revision::Deleted => {
                    latest_edit = Some((seq, m.text.clone()));
                }
                MessageKind::Deletion { of: target } if target == of => {
                    deletion = Some((m.from.clone(), m.text.clone()));
                }
                _ => {}
            }
        }
        let Some(original) = self.entries.iter_mut().find_map(|e| match e {
            Entry::Message(m) if m.seq == Some(of) && m.is_shown() => Some(m),
            _ => None,
        }) else {
            return;
        };
        if let Some(deleted_by) = deletion {
            original.revision = Revision::Deleted;
            original.text.clear();
            original.deleted_by = Some(deleted_by);
        } else if let Some((seq, text)) = latest_edit
            && original.revision != Revision::Deleted
            && seq > original.edit_seq
        {
            original.revision = Revision::Edited;
            original.text = text;
            original.edit_seq = seq;
        }
        if original.revision == Revision::Deleted {
            reactions.clear();
        }
        reactions.sort_by_key(|reaction| REACTIONS.iter().position(|(emoji, _)| *emoji == reaction.emoji));
        original.reactions = reactions;
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

/// The first line of `text` with something on it, trimmed, at most `chars` characters of it, and whether that
/// cut it short.
pub(super) fn first_line(text: &str, chars: usize) -> (String, bool) {
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or("").trim();
    (first.chars().take(chars).collect(), first.chars().nth(chars).is_some())
}

/// `from`'s reaction `emoji` added to, or taken back from, `reactions` (an emoji nobody is behind any more goes).
fn react(reactions: &mut Vec<ReactionCount>, emoji: &str, from: &Nick, added: bool) {
    let Some(&(emoji, _)) = REACTIONS.iter().find(|(known, _)| *known == emoji) else { return };
    let at = match reactions.iter().position(|reaction| reaction.emoji == emoji) {
        Some(at) => at,
        None if added => {
            reactions.push(ReactionCount { emoji, by: Vec::new() });
            reactions.len() - 1
        }
        None => return,
    };
    let by = &mut reactions[at].by;
    by.retain(|nick| nick != from);
    if added {
        by.push(from.clone());
    } else if by.is_empty() {
        reactions.remove(at);
    }
}
