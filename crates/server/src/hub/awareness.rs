//! Knowing who is there (protocol version 6), the hub's part: away messages, typing notices and moved read
//! markers passed on to the sessions that must see them (those whose clients speak version 6), and what `Whois`
//! asks of who is online.

use std::collections::{BTreeMap, HashSet};

use palomar_proto::Nick;
use palomar_store::{Account, AccountId, ConvId, ConvKey, Notice};

use super::{Hub, Live, State};

/// What `Whois` tells of a user shown online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownOnline {
    /// Since when, in milliseconds since the epoch (on another node: since this node heard it).
    pub since_ms: u64,
    /// When it last sent a message this node saw, since it came online.
    pub last_message_ms: Option<u64>,
}

impl State {
    /// Sends `item` once to every session of every other user who shares a room with `account`, however many
    /// rooms they share.
    pub(super) fn tell_room_mates(&self, account: &Account, item: &Live) {
        let mut mates: HashSet<AccountId> = HashSet::new();
        for (conv, _) in self.rooms(account.id) {
            mates.extend(self.room_online.get(&conv).into_iter().flat_map(BTreeMap::keys).copied());
        }
        mates.remove(&account.id);
        for mate in mates {
            self.send_to(mate, item);
        }
    }

    /// The other users who see what `account` does in conversation `key`: the room's online members, or the
    /// direct conversation's peer.
    fn others_in(&self, conv: ConvId, key: &ConvKey, account: AccountId) -> Vec<AccountId> {
        match key {
            ConvKey::Room(_) => self
                .room_online
                .get(&conv)
                .into_iter()
                .flat_map(BTreeMap::keys)
                .copied()
                .filter(|other| *other != account)
                .collect(),
            ConvKey::Direct(a, b) => [a.id, b.id].into_iter().filter(|other| *other != account).collect(),
        }
    }

    /// Sends `item` to every session of `account`, dropped unnoted where a queue is full.
    fn send_quietly(&self, account: AccountId, item: &Live) {
        for (_, entry) in self.sessions_of(account).filter(|(_, entry)| entry.takes(item)) {
            if entry.tx.try_send(item.clone()).is_err()
                && let Some(overflows) = &self.overflows
            {
                overflows.increment(1);
            }
        }
    }
}

impl Hub {
    /// `account` set its away message (`message`), or came back (`None`), here (the other nodes are told by the
    /// commit that stored it) or on another node: every session of the user hears it, and, while it is shown
    /// online, every user who shares a room with it.
    pub fn away_changed(&self, account: &Account, message: Option<String>) {
        let state = self.lock();
        let item = Live::Away { nick: account.nick.clone(), message };
        state.send_to(account.id, &item);
        if state.shown_online(account.id) {
            state.tell_room_mates(account, &item);
        }
    }

    /// A user online on another node, whose arrival was just heard of, is away with `message`: its away message
    /// follows its arrival to those who share a room with it.
    pub fn away_of_arrival(&self, account: &Account, message: String) {
        let state = self.lock();
        state.tell_room_mates(account, &Live::Away { nick: account.nick.clone(), message: Some(message) });
    }

    /// `account` is typing in `conv` (`typing`), or stopped: the other members online see it, never the user's
    /// own sessions. `local` when a session here said it: the other nodes are told too.
    pub fn typing(&self, conv: ConvId, key: &ConvKey, account: &Account, typing: bool, local: bool) {
        let state = self.lock();
        let item = Live::Typing { key: key.clone(), nick: account.nick.clone(), typing };
        for other in state.others_in(conv, key, account.id) {
            state.send_quietly(other, &item);
        }
        if local {
            state.tell_peers(Notice::Typing { conv, account: account.clone(), typing });
        }
    }

    /// `account`'s read marker in `conv` moved to `seq`: every session of the user sees it (its other devices
    /// follow), and so do the other members online. `local` when a session here moved it: the other nodes are
    /// told too.
    pub fn read_marker_moved(&self, conv: ConvId, key: &ConvKey, account: &Account, seq: u64, local: bool) {
        let state = self.lock();
        let item = Live::ReadMarker { key: key.clone(), nick: account.nick.clone(), seq };
        state.send_to(account.id, &item);
        for other in state.others_in(conv, key, account.id) {
            state.send_to(other, &item);
        }
        if local {
            state.tell_peers(Notice::Read { conv, account: account.clone(), seq });
        }
    }

    /// Whether `account` is shown online (here or on another node), since when, and when it last sent a message.
    pub fn shown_online(&self, account: AccountId, nick: &Nick) -> Option<ShownOnline> {
        let state = self.lock();
        if !state.shown_online(account) {
            return None;
        }
        let since_ms = state.online_since.get(&account).copied().unwrap_or_else(palomar_proto::unix_ms);
        let last_message_ms = state.last_message_ms.get(nick).copied().filter(|sent| *sent >= since_ms);
        Some(ShownOnline { since_ms, last_message_ms })
    }
}
