//! The hub: who is online, in which rooms, and the live fan-out of new messages and presence to their
//! sessions, and of away messages, typing and read markers (protocol version 6, `awareness`).
//!
//! Fan-out never waits: each session has a bounded queue, and an item that does not fit is dropped and its kind
//! noted beside the queue ([`PendingChanges`]), which wakes the session: it then reads back from the store and the hub
//! what it missed, instead of growing the server's memory. A join or leave made by another session of the same
//! user is not dropped either: it waits beside the queue, since the store does not say where the other session
//! began; only a list of them grown past any use is, and the session then reads its conversations again.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use palomar_proto::{MessageForm, Nick, PresenceState, RoomChange, RoomName, encode_message};
use palomar_store::{Account, AccountId, ConvId, ConvKey, Notice, Removed, StoredMessage};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};

/// Changes waiting beside one session's queue, at most. Only the user's own joins and leaves (paced) and the
/// removal of accounts it talks to add to them, but a session that is not taking them must not grow the server:
/// past this the list is dropped and the session reads its conversations from the store again instead.
const MAX_CHANGES_BESIDE: usize = 256;

/// Identifies one connection's session in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u64);

/// A committed message on its way to its readers.
#[derive(Debug)]
pub struct Published {
    pub conv: ConvId,
    pub message: StoredMessage,
    /// The message as every member of a room reads it, encoded by the first session that sends it, so a
    /// room of many members costs one encoding per [`MessageForm`] its readers speak.
    room_encodings: [OnceLock<Vec<u8>>; MessageForm::ALL.len()],
}

impl Published {
    pub fn new(conv: ConvId, message: StoredMessage) -> Self {
        Published { conv, message, room_encodings: Default::default() }
    }

    /// The encoded [`palomar_proto::Message`] as `reader`, speaking protocol `version`, sees it; shared among
    /// readers in a room.
    pub fn encoded_for(&self, reader: AccountId, version: u16) -> Cow<'_, [u8]> {
        let encode = || encode_message(&self.message.for_reader(reader), version);
        match &self.message.key {
            ConvKey::Room(_) => {
                Cow::Borrowed(self.room_encodings[MessageForm::of_version(version).index()].get_or_init(encode))
            }
            ConvKey::Direct(..) => Cow::Owned(encode()),
        }
    }
}

/// What the hub pushes to a session. The last three are protocol version 6's: only sessions whose clients speak
/// it are sent them.
#[derive(Debug, Clone)]
pub enum Live {
    Message(Arc<Published>),
    Presence {
        room: RoomName,
        nick: Nick,
        state: PresenceState,
    },
    /// `nick` set its away message, or came back (`None`).
    Away {
        nick: Nick,
        message: Option<String>,
    },
    /// `nick` is typing in conversation `key`, or stopped. A queue that is full drops it, unnoted: it expires
    /// by itself on the reader's side.
    Typing {
        key: ConvKey,
        nick: Nick,
        typing: bool,
    },
    /// `nick`'s read marker in conversation `key` moved to `seq`.
    ReadMarker {
        key: ConvKey,
        nick: Nick,
        seq: u64,
    },
}

/// A change to a user's conversations made elsewhere, which its session must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Another session of the user joined a room, sending it from the seq after `joined_after` (its history on
    /// join), so every session of the user shows the room from the same message.
    Joined { conv: ConvId, room: RoomName, joined_after: u64 },
    /// Another session of the user left a room.
    Left { conv: ConvId, room: RoomName },
    /// The account of `peer` was removed, and the direct conversation with it deleted.
    DirectDeleted { conv: ConvId, peer: Nick },
    /// A moderator (`by`; `None`: an operator at the server's console) changed room `conv`, which the user is in.
    Room { conv: ConvId, room: RoomName, by: Option<Nick>, change: RoomChange },
    /// `by` invited the user to `room`.
    Invited { room: RoomName, by: Option<Nick> },
}

/// Why [`Hub::register`] refused a session.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRegistered {
    /// The user's rooms changed while the session read them: read them again.
    MembershipsChanged,
    /// The account has as many sessions as it may.
    TooManySessions(usize),
}

/// A session's end of the hub.
pub struct SessionLink {
    pub id: SessionId,
    pub rx: mpsc::Receiver<Live>,
    pub pending: Arc<PendingChanges>,
    /// Signalled whenever something is put beside the queue.
    pub wake: Arc<Notify>,
}

struct Entry {
    tx: mpsc::Sender<Live>,
    pending: Arc<PendingChanges>,
    wake: Arc<Notify>,
    /// The client speaks protocol version 6: it is sent away messages, typing and read markers. An older one's
    /// queue is not filled with what it would drop.
    aware: bool,
}

impl Entry {
    /// Whether `item` is for this session's client.
    fn takes(&self, item: &Live) -> bool {
        self.aware || matches!(item, Live::Message(_) | Live::Presence { .. })
    }

    fn note(&self, flags: u8) {
        self.pending.note(flags);
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct State {
    next_id: u64,
    sessions: HashMap<SessionId, Entry>,
    by_account: HashMap<AccountId, Vec<SessionId>>,
    /// Online members of each room.
    room_online: HashMap<ConvId, BTreeMap<AccountId, Nick>>,
    /// The rooms of each online user, to announce them going offline.
    rooms_of: HashMap<AccountId, HashMap<ConvId, RoomName>>,
    /// Highest committed seq of each conversation.
    latest: HashMap<ConvId, u64>,
    /// How many joins and leaves each user has made while this hub ran (kept after the user goes offline, so
    /// that the count never goes back).
    membership_changes: HashMap<AccountId, u64>,
    /// Users online here whose arrival was announced to their rooms (see [`Hub::announce_arrival`]).
    announced: HashMap<AccountId, Nick>,
    /// When nodes share the store: the other nodes on which each user is online (announced there). Such a user
    /// is in `room_online` and `rooms_of` like a local one, so that member lists and presence count it; the
    /// fan-out finds no session of it here and sends it nothing.
    elsewhere: HashMap<AccountId, Elsewhere>,
    /// Since when each user shown online (here or on another node) has been shown so, in milliseconds since the
    /// epoch: what `Whois` tells.
    online_since: HashMap<AccountId, u64>,
    /// When each user last sent a message this hub published (the hub sees every message of every node): what
    /// `Whois` tells as idle time. Forgotten when the user goes offline.
    last_message_ms: HashMap<Nick, u64>,
    /// What to tell the other nodes, when there are any.
    peers: Option<std::sync::mpsc::Sender<Notice>>,
    /// Counts live deliveries dropped for a full queue, once the server counts.
    overflows: Option<metrics::Counter>,
}

impl State {
    /// Whether the user's presence is shown: announced here or on another node.
    fn shown_online(&self, account: AccountId) -> bool {
        self.announced.contains_key(&account) || self.elsewhere.contains_key(&account)
    }

    fn tell_peers(&self, notice: Notice) {
        if let Some(peers) = &self.peers {
            // The thread that talks to the peers stops only with the server.
            let _ = peers.send(notice);
        }
    }

    /// Forgets where `account` is online, once no node has a session of it.
    fn forget_rooms_of(&mut self, account: AccountId) {
        for (conv, _) in self.rooms_of.remove(&account).unwrap_or_default() {
            if let Some(online) = self.room_online.get_mut(&conv) {
                online.remove(&account);
            }
        }
    }

    fn rooms(&self, account: AccountId) -> Vec<(ConvId, RoomName)> {
        self.rooms_of
            .get(&account)
            .map(|rooms| rooms.iter().map(|(c, r)| (*c, r.clone())).collect())
            .unwrap_or_default()
    }

    fn announce_everywhere(&self, who: &Account, state: PresenceState) {
        for (conv, room) in self.rooms(who.id) {
            self.announce(conv, &room, who, state);
        }
    }

    fn joined(
        &mut self,
        by: Option<SessionId>,
        account: &Account,
        conv: ConvId,
        room: &RoomName,
        newly: bool,
        sent_after: u64,
    ) {
        if self.by_account.contains_key(&account.id) || self.elsewhere.contains_key(&account.id) {
            self.room_online.entry(conv).or_default().insert(account.id, account.nick.clone());
            self.rooms_of.entry(account.id).or_default().insert(conv, room.clone());
        }
        if newly {
            *self.membership_changes.entry(account.id).or_default() += 1;
            self.announce(conv, room, account, PresenceState::Joined);
            let change = Change::Joined { conv, room: room.clone(), joined_after: sent_after };
            self.tell_sessions(account.id, by, change);
        }
    }

    fn left(&mut self, by: Option<SessionId>, account: &Account, conv: ConvId, room: &RoomName) {
        *self.membership_changes.entry(account.id).or_default() += 1;
        self.announce(conv, room, account, PresenceState::Left);
        self.tell_sessions(account.id, by, Change::Left { conv, room: room.clone() });
        if let Some(online) = self.room_online.get_mut(&conv) {
            online.remove(&account.id);
        }
        if let Some(rooms) = self.rooms_of.get_mut(&account.id) {
            rooms.remove(&conv);
        }
    }

    fn end_sessions_of(&self, account: AccountId) {
        for (_, entry) in self.sessions_of(account) {
            entry.note(PendingChanges::ACCOUNT_REMOVED);
        }
    }

    fn direct_deleted(&mut self, conv: ConvId, removed: &Nick, peer: AccountId) {
        self.tell_sessions(peer, None, Change::DirectDeleted { conv, peer: removed.clone() });
        self.latest.remove(&conv);
    }

    fn membership_changes(&self, account: AccountId) -> u64 {
        self.membership_changes.get(&account).copied().unwrap_or(0)
    }

    fn sessions_of(&self, account: AccountId) -> impl Iterator<Item = (SessionId, &Entry)> {
        self.by_account.get(&account).into_iter().flatten().filter_map(|id| Some((*id, self.sessions.get(id)?)))
    }

    fn send_to(&self, account: AccountId, item: &Live) {
        for (_, entry) in self.sessions_of(account).filter(|(_, entry)| entry.takes(item)) {
            if let Err(mpsc::error::TrySendError::Full(dropped)) = entry.tx.try_send(item.clone()) {
                if let Some(overflows) = &self.overflows {
                    overflows.increment(1);
                }
                if entry.pending.note_dropped(&dropped) {
                    entry.wake.notify_one();
                }
            }
        }
    }

    fn tell_sessions(&self, account: AccountId, except: Option<SessionId>, change: Change) {
        for (_, entry) in self.sessions_of(account).filter(|(id, _)| Some(*id) != except) {
            entry.pending.push_change(change.clone());
            entry.wake.notify_one();
        }
    }

    fn announce(&self, conv: ConvId, room: &RoomName, who: &Account, state: PresenceState) {
        let item = Live::Presence { room: room.clone(), nick: who.nick.clone(), state };
        for other in self.room_online.get(&conv).into_iter().flat_map(BTreeMap::keys).filter(|other| **other != who.id)
        {
            self.send_to(*other, &item);
        }
    }
}

pub struct Hub {
    state: Mutex<State>,
    queue_len: usize,
    max_sessions_per_account: usize,
}

impl Hub {
    /// `latest` is each conversation's highest seq in the store; `queue_len` bounds each session's queue.
    pub fn new(latest: HashMap<ConvId, u64>, queue_len: usize, max_sessions_per_account: usize) -> Arc<Hub> {
        Arc::new(Hub { state: Mutex::new(State { latest, ..State::default() }), queue_len, max_sessions_per_account })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Counts every live delivery dropped for a full queue in `overflows`.
    pub fn count_overflows_in(&self, overflows: metrics::Counter) {
        self.lock().overflows = Some(overflows);
    }

    /// How many joins and leaves `account` has made so far: what a session reads before it reads the user's
    /// rooms from the store, for [`Hub::register`].
    pub fn membership_changes(&self, account: AccountId) -> u64 {
        self.lock().membership_changes(account)
    }

    /// Adds a session of `account`, a member of `rooms`; the user is online in them from now on, and announced
    /// as such once a session of it has lasted (see [`Hub::announce_arrival`]). `rooms`
    /// was read from the store after [`Hub::membership_changes`] gave `changes_seen`. If another session of the
    /// user has joined or left a room since, it was not told (it was not registered yet) and its `rooms` may be
    /// stale: then nothing is registered, and the caller reads its rooms again. Changes made after registering
    /// reach it beside its queue. `aware`: the session's client speaks protocol version 6 (away messages, typing,
    /// read markers).
    pub fn register(
        &self,
        account: &Account,
        rooms: Vec<(ConvId, RoomName)>,
        changes_seen: u64,
        aware: bool,
    ) -> Result<SessionLink, NotRegistered> {
        let mut state = self.lock();
        if state.membership_changes(account.id) != changes_seen {
            return Err(NotRegistered::MembershipsChanged);
        }
        if state.by_account.get(&account.id).map_or(0, Vec::len) >= self.max_sessions_per_account {
            return Err(NotRegistered::TooManySessions(self.max_sessions_per_account));
        }
        let (tx, rx) = mpsc::channel(self.queue_len);
        let pending = Arc::new(PendingChanges::default());
        let wake = Arc::new(Notify::new());
        state.next_id += 1;
        let id = SessionId(state.next_id);
        state.sessions.insert(id, Entry { tx, pending: pending.clone(), wake: wake.clone(), aware });
        let sessions = state.by_account.entry(account.id).or_default();
        sessions.push(id);
        if sessions.len() == 1 {
            for (conv, _) in &rooms {
                state.room_online.entry(*conv).or_default().insert(account.id, account.nick.clone());
            }
            state.rooms_of.insert(account.id, rooms.into_iter().collect());
        }
        Ok(SessionLink { id, rx, pending, wake })
    }

    /// A session of `account` has lasted `limits.presence_after_ms`: the user's arrival is announced to
    /// its rooms, once. A script that logs in, sends and leaves within that time is not announced at all, nor its
    /// departure: members are not told of every short visit.
    ///
    /// Its `away` message, when it has one, follows its arrival to the same members.
    pub fn announce_arrival(&self, account: &Account, away: Option<String>) {
        let mut state = self.lock();
        if !state.by_account.contains_key(&account.id) || state.announced.contains_key(&account.id) {
            return;
        }
        if !state.shown_online(account.id) {
            state.announce_everywhere(account, PresenceState::Online);
            state.online_since.insert(account.id, palomar_proto::unix_ms());
            if let Some(message) = away {
                state.tell_room_mates(account, &Live::Away { nick: account.nick.clone(), message: Some(message) });
            }
        }
        state.announced.insert(account.id, account.nick.clone());
        state.tell_peers(Notice::Online { account: account.clone() });
    }

    /// Removes a session; the user's last session announces it offline, if its arrival was announced.
    pub fn unregister(&self, id: SessionId, account: &Account) {
        let mut state = self.lock();
        if state.sessions.remove(&id).is_none() {
            return;
        }
        let remaining = state.by_account.get_mut(&account.id).map(|sessions| {
            sessions.retain(|s| *s != id);
            sessions.len()
        });
        if remaining == Some(0) {
            state.by_account.remove(&account.id);
            let announced = state.announced.remove(&account.id).is_some();
            if !state.elsewhere.contains_key(&account.id) {
                state.online_since.remove(&account.id);
                state.last_message_ms.remove(&account.nick);
            }
            if announced {
                state.tell_peers(Notice::Offline { account: account.id });
            }
            if !state.elsewhere.contains_key(&account.id) {
                if announced {
                    state.announce_everywhere(account, PresenceState::Offline);
                }
                state.forget_rooms_of(account.id);
            }
        }
    }

    /// Session `by` of `account` made it a member of `room`, sending it from the seq after `sent_after`:
    /// announced to the room when `newly` joined, and to the user's other sessions.
    pub fn joined(
        &self,
        by: SessionId,
        account: &Account,
        conv: ConvId,
        room: &RoomName,
        newly: bool,
        sent_after: u64,
    ) {
        let mut state = self.lock();
        state.joined(Some(by), account, conv, room, newly, sent_after);
        let notice =
            Notice::Joined { conv, room: room.clone(), account: account.clone(), newly, joined_after: sent_after };
        state.tell_peers(notice);
    }

    pub fn left(&self, by: SessionId, account: &Account, conv: ConvId, room: &RoomName) {
        let mut state = self.lock();
        state.left(Some(by), account, conv, room);
        state.tell_peers(Notice::Left { conv, room: room.clone(), account: account.clone() });
    }

    /// Tells every member of room `conv` online here what a moderator changed in it, and the other nodes which
    /// audit log entry recorded it (`None` when the change came from them). Beside the queues, like the user's own
    /// joins and leaves: a member must not miss that it was muted or the room made moderated.
    pub fn room_changed(
        &self,
        conv: ConvId,
        room: &RoomName,
        by: Option<&Nick>,
        change: &RoomChange,
        audit: Option<i64>,
    ) {
        let state = self.lock();
        let told = Change::Room { conv, room: room.clone(), by: by.cloned(), change: change.clone() };
        for member in state.room_online.get(&conv).into_iter().flat_map(BTreeMap::keys) {
            state.tell_sessions(*member, None, told.clone());
        }
        if let Some(audit) = audit {
            state.tell_peers(Notice::Moderated { conv, room: room.clone(), audit });
        }
    }

    /// A moderator ended `account`'s membership of `room`: its sessions here and on the other nodes leave it.
    pub fn removed_from_room(&self, account: &Account, conv: ConvId, room: &RoomName) {
        let mut state = self.lock();
        state.left(None, account, conv, room);
        state.tell_peers(Notice::Left { conv, room: room.clone(), account: account.clone() });
    }

    /// An operator at the console ended `account`'s membership of `room`, which every node reads from the store
    /// itself: if it is online, its sessions here leave the room and the room's members here see it go.
    pub fn removed_by_console(&self, account: &Account, conv: ConvId, room: &RoomName) {
        let mut state = self.lock();
        if state.room_online.get(&conv).is_some_and(|online| online.contains_key(&account.id)) {
            state.left(None, account, conv, room);
        }
    }

    /// Tells the sessions of `account` here that `by` invited it to `room`.
    pub fn invited(&self, account: AccountId, room: &RoomName, by: Option<&Nick>) {
        self.lock().tell_sessions(account, None, Change::Invited { room: room.clone(), by: by.cloned() });
    }

    /// Called by the writer once an account's removal is committed: its sessions end, and the sessions of the
    /// accounts it had direct conversations with forget those. (The writer tells the other nodes.)
    pub fn account_removed(&self, removed: &Removed) {
        let mut state = self.lock();
        state.end_sessions_of(removed.account.id);
        for deleted in &removed.deleted_directs {
            state.direct_deleted(deleted.conversation, &removed.account.nick, deleted.peer.id);
        }
        state.membership_changes.remove(&removed.account.id);
    }

    /// Tells the sessions of a suspended account, on this node, to end; false when it has none here. Each node
    /// looks for suspensions itself, so nothing goes to the others.
    pub fn account_suspended(&self, account: AccountId) -> bool {
        let state = self.lock();
        let mut any = false;
        for (_, entry) in state.sessions_of(account) {
            entry.note(PendingChanges::ACCOUNT_SUSPENDED);
            any = true;
        }
        any
    }

    /// The nicknames of the members of `conv` online now, sorted.
    pub fn online_in(&self, conv: ConvId) -> Vec<Nick> {
        let mut online: Vec<Nick> =
            self.lock().room_online.get(&conv).map(|online| online.values().cloned().collect()).unwrap_or_default();
        online.sort();
        online
    }

    pub fn latest(&self, conv: ConvId) -> u64 {
        self.lock().latest.get(&conv).copied().unwrap_or(0)
    }

    /// Called by the writer after the message is committed, in seq order; and for another node's messages, in
    /// the order that node committed them.
    pub fn publish(&self, conv: ConvId, message: StoredMessage) {
        let mut state = self.lock();
        // Another node's message may come after a later one of this node's: the hub knows the highest.
        let latest = state.latest.entry(conv).or_default();
        *latest = (*latest).max(message.seq);
        // Only a user with a session somewhere sends; the entry goes when it goes offline (at most one per
        // account stays behind for a session too short to be announced on another node).
        match state.last_message_ms.get_mut(&message.from) {
            Some(sent) => *sent = message.ts,
            // A nickname is cloned once per sender, not once per message: this is on every message's path.
            None => {
                state.last_message_ms.insert(message.from.clone(), message.ts);
            }
        }
        let published = Arc::new(Published::new(conv, message));
        let item = Live::Message(published.clone());
        match &published.message.key {
            ConvKey::Room(_) => {
                for account in state.room_online.get(&conv).into_iter().flat_map(BTreeMap::keys) {
                    state.send_to(*account, &item);
                }
            }
            ConvKey::Direct(a, b) => {
                state.send_to(a.id, &item);
                if a.id != b.id {
                    state.send_to(b.id, &item);
                }
            }
        }
    }
}

mod awareness;
mod elsewhere;
mod pending;
#[cfg(test)]
mod tests;

use elsewhere::Elsewhere;
pub use pending::PendingChanges;
