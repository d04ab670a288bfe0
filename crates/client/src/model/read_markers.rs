//! Read markers (protocol version 6): how far each member has read each conversation. The model keeps them per
//! conversation ([`Conv::markers`]), says under a message who has seen it ([`ChatModel::seen_by`]), places the
//! "new messages" divider when a conversation is opened ([`Conv::new_messages`]), lowers unread counts as the
//! user's other devices read, and sends the user's own marker as the conversation shown is read
//! ([`ChatModel::read_tick`]), at most once a second per conversation, and again after a reconnection when the
//! server's is behind. With `/receipts off` none is sent and no "seen by" shown; what is read here is still kept,
//! unsent, for the divider and the unread counts.

use std::time::Duration;

use palomar_proto::{Conversation, Nick, ReadMarker};

use super::{Action, ChatModel, Conv, Entry, Status};
use crate::engine::Command;

/// The message lines, counted from the newest, under which "seen by" may be shown.
pub const SEEN_BY_LINES: usize = 20;

/// Names written out in "seen by" before the rest are counted.
const SEEN_BY_NAMES: usize = 3;

/// A conversation's marker is sent at most this often.
const MARK_READ_EVERY: Duration = Duration::from_secs(1);

/// What the divider above the first message not read yet says.
pub const NEW_MESSAGES: &str = "new messages";

/// "seen by ana", "seen by ana and bob", "seen by ana, bob and cy", "seen by ana, bob, cy and 4 others";
/// `None` for nobody.
pub fn seen_by_text(nicks: &[&Nick]) -> Option<String> {
    let names: Vec<String> = nicks.iter().take(SEEN_BY_NAMES).map(ToString::to_string).collect();
    let said = match (nicks.len(), names.as_slice()) {
        (0, _) => return None,
        (1, [one]) => one.clone(),
        (2, [one, two]) => format!("{one} and {two}"),
        (3, [one, two, three]) => format!("{one}, {two} and {three}"),
        (4, _) => format!("{} and 1 other", names.join(", ")),
        (count, _) => format!("{} and {} others", names.join(", "), count - SEEN_BY_NAMES),
    };
    Some(format!("seen by {said}"))
}

/// What the model sent of the user's own marker in one conversation.
#[derive(Debug, Clone, Copy)]
pub(super) struct MarkSent {
    pub seq: u64,
    pub at: std::time::Instant,
}

impl Conv {
    /// How far `nick` has read this conversation (0: nothing, or not known).
    pub fn marker_of(&self, nick: &Nick) -> u64 {
        self.markers.get(nick).copied().unwrap_or(0)
    }

    /// The newest seq loaded here, whatever the entry.
    pub fn latest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| if let Entry::Message(m) = e { m.seq } else { None }).max()
    }

    /// The first message from someone else, not ignored, after `read` (where the divider goes).
    fn first_news_after(&self, read: u64, me: &Nick) -> Option<u64> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::Message(m) if m.is_drawn() && m.from != *me => m.seq.filter(|seq| *seq > read),
            _ => None,
        })
    }

    /// Messages from others, not ignored, after `read`: what is unread.
    fn news_after(&self, read: u64, me: &Nick) -> usize {
        self.entries
            .iter()
            .filter(|entry| {
                matches!(entry, Entry::Message(m) if m.is_drawn() && m.from != *me && m.seq.is_some_and(|s| s > read))
            })
            .count()
    }
}

impl ChatModel {
    /// "seen by …" under message `seq` of conversation `conv` ([`seen_by_text`]): the other members whose marker
    /// is at that line (the newest message line at or below it), for the last [`SEEN_BY_LINES`] message lines
    /// only; the user and ignored users are left out. `None` when nobody is.
    pub fn seen_by(&self, conv: &Conv, seq: u64) -> Option<String> {
        if self.preferences.no_read_receipts {
            return None;
        }
        // Newest first. Drawn for every line on screen, every frame: only the tail of the entries is looked at,
        // and each marker against these few lines, not against the whole conversation.
        let lines: Vec<u64> = conv
            .entries
            .iter()
            .rev()
            .filter_map(|e| match e {
                Entry::Message(m) if m.is_drawn() => m.seq,
                _ => None,
            })
            .take(SEEN_BY_LINES)
            .collect();
        if !lines.contains(&seq) {
            return None;
        }
        let nicks: Vec<&Nick> = conv
            .markers
            .iter()
            .filter(|(nick, marker)| {
                **nick != self.me
                    && !self.is_ignored(nick)
                    && lines.iter().find(|line| **line <= **marker) == Some(&seq)
            })
            .map(|(nick, _)| nick)
            .collect();
        seen_by_text(&nicks)
    }

    /// How far the user has read `conv`: the server's marker, or what this client sent since, if further.
    pub(super) fn own_read(&self, conv: &Conv) -> u64 {
        let sent = self.read_sent.get(&conv.id).map_or(0, |sent| sent.seq);
        let unsent = self.read_unsent.get(&conv.id).copied().unwrap_or(0);
        conv.marker_of(&self.me).max(sent).max(unsent)
    }

    /// Places the "new messages" divider of conversation `index`, which is being opened: above the first
    /// message from someone else after the user's marker. Only a server that keeps markers says where that is.
    pub(super) fn place_divider(&mut self, index: usize) {
        let read = self.own_read(&self.convs[index]);
        let known = self.knows_awareness();
        let conv = &mut self.convs[index];
        conv.new_messages = if known { conv.first_news_after(read, &self.me) } else { None };
    }

    /// Markers from the server: kept (moving forward only); the user's own lowers the conversation's unread
    /// count (another device read it). Returns the `MarkRead`s to send again: the server's own marker is behind
    /// what this client sent (lost with a connection, or a crash of the server).
    pub(super) fn markers_heard(&mut self, markers: Vec<ReadMarker>) -> Vec<Action> {
        let mut actions = Vec::new();
        for ReadMarker { conversation, nick, seq } in markers {
            let Some(index) = self.convs.iter().position(|conv| conv.id == conversation) else { continue };
            let own = nick == self.me;
            let conv = &mut self.convs[index];
            let marker = conv.markers.entry(nick).or_insert(0);
            *marker = (*marker).max(seq);
            if !own {
                continue;
            }
            if let Some(sent) = self.resend.remove(&conversation)
                && sent > seq
            {
                actions.push(Action::Engine(Command::MarkRead { conversation: conversation.clone(), seq: sent }));
            }
            let read = self.own_read(&self.convs[index]);
            let conv = &mut self.convs[index];
            conv.unread = conv.unread.min(conv.news_after(read, &self.me));
            if conv.latest_seq().is_some_and(|latest| read >= latest) {
                conv.unread = 0;
            }
            if conv.unread == 0 {
                conv.mentioned = false;
            }
            // Shown first at start, before its markers came: the divider goes where they say.
            if index == self.current && !conv.divider_fixed {
                self.place_divider(index);
            }
        }
        actions
    }

    /// A connection was made: what was sent of the user's markers is checked against the server's, and sent
    /// again where it is behind ([`ChatModel::markers_heard`], or once in sync for a marker the server did not
    /// mention at all).
    pub(super) fn markers_reconnected(&mut self) {
        if self.preferences.no_read_receipts {
            return;
        }
        self.resend = self.read_sent.iter().map(|(conversation, sent)| (conversation.clone(), sent.seq)).collect();
    }

    /// In sync after a connection: the markers sent before it that the server did not confirm go again (the
    /// server ignores one that does not move its marker forward).
    pub(super) fn markers_synced(&mut self) -> Vec<Action> {
        if !self.knows_awareness() {
            self.resend.clear();
        }
        self.resend.drain().map(|(conversation, seq)| Action::Engine(Command::MarkRead { conversation, seq })).collect()
    }

    /// The front end calls this every frame (or tick) with whether its window has focus (a terminal: unless it
    /// said it lost it) and whether the conversation shown is scrolled to its newest message. It returns the
    /// `MarkRead` to send when that conversation has messages past the user's marker: at most once a second per
    /// conversation (the newest after the second). Nothing while disconnected or against a server older than
    /// version 6.
    pub fn read_tick(&mut self, focused: bool, at_newest: bool) -> Option<Action> {
        if !focused || !at_newest || self.status != Status::Connected || !self.knows_awareness() {
            return None;
        }
        let conv = self.current();
        let latest = conv.latest_seq()?;
        if latest <= self.own_read(conv) {
            return None;
        }
        let conversation = conv.id.clone();
        let receipts = !self.preferences.no_read_receipts;
        if receipts
            && self
                .read_sent
                .get(&conversation)
                .is_some_and(|sent| self.now.saturating_duration_since(sent.at) < MARK_READ_EVERY)
        {
            return None;
        }
        // Read here: from now on the divider stays where it is until the user switches away.
        let current = self.current;
        self.convs[current].divider_fixed = true;
        if !receipts {
            // Read all the same: the divider and the unread counts follow it here.
            self.read_unsent.insert(conversation, latest);
            return None;
        }
        self.read_sent.insert(conversation.clone(), MarkSent { seq: latest, at: self.now });
        Some(Action::Engine(Command::MarkRead { conversation, seq: latest }))
    }

    /// `/receipts [on|off]`. Turned on, what was read here meanwhile goes as the next marker read.
    pub(super) fn receipts(&mut self, on: Option<bool>) -> Vec<Action> {
        let outcome = self.preferences.receipts(on);
        if outcome.changed && !self.preferences.no_read_receipts {
            self.read_unsent.clear();
        }
        self.told(outcome)
    }

    /// Markers of members who left a room, or of a conversation gone, are not kept.
    pub(super) fn forget_marker(&mut self, conversation: &Conversation, nick: &Nick) {
        if let Some(conv) = self.convs.iter_mut().find(|conv| conv.id == *conversation) {
            conv.markers.remove(nick);
        }
    }
}

#[cfg(test)]
mod tests;
