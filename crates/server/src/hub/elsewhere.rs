//! The hub's view of the other nodes on a shared store: which of them have which users online, and what the
//! link to them (`crate::peers`) hears and asks for.

use std::collections::HashSet;

use palomar_proto::{Nick, PresenceState, RoomName};
use palomar_store::{Account, AccountId, ConvId, NodeId, Notice};

use super::{Hub, PendingChanges, State};

/// Who another node has online, with their rooms (as the peers' link reads them from the store).
pub type PresentElsewhere = Vec<(NodeId, Account, Vec<(ConvId, RoomName)>)>;

/// A user online on other nodes.
pub(super) struct Elsewhere {
    pub(super) nick: Nick,
    pub(super) nodes: HashSet<NodeId>,
}

impl State {
    /// Node `node` has `account` online, a member of `rooms`.
    fn online_elsewhere(&mut self, node: NodeId, account: Account, rooms: Vec<(ConvId, RoomName)>) {
        let shown = self.shown_online(account.id);
        if !self.by_account.contains_key(&account.id) && !self.elsewhere.contains_key(&account.id) {
            for (conv, _) in &rooms {
                self.room_online.entry(*conv).or_default().insert(account.id, account.nick.clone());
            }
            self.rooms_of.insert(account.id, rooms.into_iter().collect());
        }
        let there = self
            .elsewhere
            .entry(account.id)
            .or_insert_with(|| Elsewhere { nick: account.nick.clone(), nodes: HashSet::new() });
        there.nodes.insert(node);
        if !shown {
            self.announce_everywhere(&account, PresenceState::Online);
            self.online_since.insert(account.id, palomar_proto::unix_ms());
        }
    }

    /// Node `node` no longer has `account` online.
    fn offline_elsewhere(&mut self, node: NodeId, account: AccountId) {
        let Some(there) = self.elsewhere.get_mut(&account) else { return };
        if !there.nodes.remove(&node) || !there.nodes.is_empty() {
            return;
        }
        let nick = there.nick.clone();
        self.elsewhere.remove(&account);
        if !self.announced.contains_key(&account) {
            self.announce_everywhere(&Account { id: account, nick: nick.clone() }, PresenceState::Offline);
        }
        if !self.by_account.contains_key(&account) {
            self.forget_rooms_of(account);
            self.online_since.remove(&account);
            self.last_message_ms.remove(&nick);
        }
    }
}

impl Hub {
    /// Sends what this hub says from now on to the other nodes, through `peers`.
    pub fn tell_peers_through(&self, peers: std::sync::mpsc::Sender<Notice>) {
        self.lock().peers = Some(peers);
    }

    /// The users online here whose arrival was announced: what the other nodes must know of this one.
    pub fn announced_here(&self) -> Vec<Account> {
        let state = self.lock();
        state.announced.iter().map(|(id, nick)| Account { id: *id, nick: nick.clone() }).collect()
    }

    /// Acts on what another node did: `rooms_of` gives the rooms of a user that `Online` announces (read by the
    /// caller, off the hub's lock). Appended messages are read by the caller and given to [`Hub::publish`];
    /// logins are the login limiter's; away messages, typing and read markers go to the hub's own methods.
    pub fn heard(&self, from: NodeId, notice: Notice, rooms_of_arrival: Vec<(ConvId, RoomName)>) {
        let mut state = self.lock();
        match notice {
            Notice::Appended { .. }
            | Notice::LoginFailed { .. }
            | Notice::LoginSucceeded { .. }
            | Notice::Moderated { .. }
            | Notice::Away { .. }
            | Notice::Typing { .. }
            | Notice::Read { .. } => {}
            Notice::AccountRemoved { account } => {
                state.end_sessions_of(account);
                state.membership_changes.remove(&account);
            }
            Notice::DirectDeleted { conv, removed, peer } => state.direct_deleted(conv, &removed, peer),
            Notice::Online { account } => state.online_elsewhere(from, account, rooms_of_arrival),
            Notice::Offline { account } => state.offline_elsewhere(from, account),
            Notice::Joined { conv, room, account, newly, joined_after } => {
                state.joined(None, &account, conv, &room, newly, joined_after);
            }
            Notice::Left { conv, room, account } => state.left(None, &account, conv, &room),
        }
    }

    /// Of the other nodes, `alive` are: the users online only on the others are shown offline.
    pub fn peers_alive(&self, alive: &[NodeId]) {
        let mut state = self.lock();
        let gone: Vec<(NodeId, AccountId)> = state
            .elsewhere
            .iter()
            .flat_map(|(account, there)| there.nodes.iter().map(move |node| (*node, *account)))
            .filter(|(node, _)| !alive.contains(node))
            .collect();
        for (node, account) in gone {
            state.offline_elsewhere(node, account);
        }
    }

    /// After notices may have been missed (the link to the peers was lost, or is new): `present` is who the
    /// other nodes have online, with their rooms, and `latest` each conversation's last seq. Presence is brought
    /// to it, and every session reads back its conversations, messages and member lists.
    pub fn catch_up_with_peers(&self, present: PresentElsewhere, latest: Vec<(ConvId, u64)>) {
        let mut state = self.lock();
        let now: HashSet<(NodeId, AccountId)> = present.iter().map(|(node, account, _)| (*node, account.id)).collect();
        let before: Vec<(NodeId, AccountId)> = state
            .elsewhere
            .iter()
            .flat_map(|(account, there)| there.nodes.iter().map(move |node| (*node, *account)))
            .filter(|pair| !now.contains(pair))
            .collect();
        for (node, account) in before {
            state.offline_elsewhere(node, account);
        }
        for (node, account, rooms) in present {
            state.online_elsewhere(node, account, rooms);
        }
        for (conv, seq) in latest {
            let known = state.latest.entry(conv).or_default();
            *known = (*known).max(seq);
        }
        for entry in state.sessions.values() {
            entry.note(
                PendingChanges::MESSAGES
                    | PendingChanges::DIRECT
                    | PendingChanges::PRESENCE
                    | PendingChanges::CONVERSATIONS,
            );
        }
    }
}
