//! The hub: who is online, in which rooms, and the live fan-out of new messages and presence to their
//! sessions.
//!
//! Fan-out never waits: each session has a bounded queue, and an item that does not fit is dropped and its kind
//! noted beside the queue ([`PendingChanges`]), which wakes the session: it then reads back from the store and the hub
//! what it missed, instead of growing the server's memory. A join or leave made by another session of the same
//! user is not dropped either: it waits beside the queue, since the store does not say where the other session
//! began; only a list of them grown past any use is, and the session then reads its conversations again.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use palomar_proto::{Nick, PresenceState, RoomName};
use palomar_store::{Account, AccountId, ConvId, ConvKey, Removed, StoredMessage};
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
    /// room of many members costs one encoding.
    room_encoding: OnceLock<Vec<u8>>,
}

impl Published {
    pub fn new(conv: ConvId, message: StoredMessage) -> Self {
        Published { conv, message, room_encoding: OnceLock::new() }
    }

    /// The encoded [`palomar_proto::Message`] as `reader` sees it; shared among readers in a room.
    pub fn encoded_for(&self, reader: AccountId) -> Cow<'_, [u8]> {
        match &self.message.key {
            ConvKey::Room(_) => Cow::Borrowed(
                self.room_encoding.get_or_init(|| palomar_proto::encode(&self.message.for_reader(reader))),
            ),
            ConvKey::Direct(..) => Cow::Owned(palomar_proto::encode(&self.message.for_reader(reader))),
        }
    }
}

/// What the hub pushes to a session.
#[derive(Debug, Clone)]
pub enum Live {
    Message(Arc<Published>),
    Presence { room: RoomName, nick: Nick, state: PresenceState },
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
}

/// What reaches a session beside its bounded queue: the kinds of live items that did not fit, changes to the
/// user's conversations made elsewhere, and the removal of the session's own account. Empty and
/// allocation-free while nothing happens.
#[derive(Debug, Default)]
pub struct PendingChanges {
    flags: AtomicU8,
    changes: Mutex<VecDeque<Change>>,
}

/// What the hub noted beside a session since it last looked: live items dropped (each kind read back in its own
/// way, so that a session behind on messages alone does not also reread its rooms' members), and more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissedKinds {
    /// Committed messages: the log has them.
    pub messages: bool,
    /// A message of a direct conversation, which may be its first: the store knows the conversation.
    pub direct: bool,
    /// Someone's arrival, departure, join or leave: the hub and the store know who is online and who is a member.
    pub presence: bool,
    /// Changes to the user's conversations overflowed [`MAX_CHANGES_BESIDE`]: the store knows them.
    pub conversations: bool,
    /// The session's account was removed: the session ends.
    pub account_removed: bool,
}

impl PendingChanges {
    const MESSAGES: u8 = 1;
    const DIRECT: u8 = 2;
    const PRESENCE: u8 = 4;
    const CONVERSATIONS: u8 = 8;
    const ACCOUNT_REMOVED: u8 = 16;

    fn note(&self, flags: u8) {
        self.flags.fetch_or(flags, Ordering::AcqRel);
    }

    fn note_dropped(&self, item: &Live) {
        self.note(match item {
            Live::Message(published) => match published.message.key {
                ConvKey::Room(_) => Self::MESSAGES,
                ConvKey::Direct(..) => Self::MESSAGES | Self::DIRECT,
            },
            Live::Presence { .. } => Self::PRESENCE,
        });
    }

    /// What was noted since the last call, and clears it.
    pub fn take_missed(&self) -> MissedKinds {
        let flags = self.flags.swap(0, Ordering::AcqRel);
        MissedKinds {
            messages: flags & Self::MESSAGES != 0,
            direct: flags & Self::DIRECT != 0,
            presence: flags & Self::PRESENCE != 0,
            conversations: flags & Self::CONVERSATIONS != 0,
            account_removed: flags & Self::ACCOUNT_REMOVED != 0,
        }
    }

    /// The changes made elsewhere since the last call, oldest first.
    pub fn take_changes(&self) -> VecDeque<Change> {
        std::mem::take(&mut *self.lock_changes())
    }

    fn lock_changes(&self) -> MutexGuard<'_, VecDeque<Change>> {
        self.changes.lock()
    }

    fn push_change(&self, change: Change) {
        let mut changes = self.lock_changes();
        if changes.len() >= MAX_CHANGES_BESIDE {
            // The store holds the outcome of every change: the session reads it instead of the list.
            changes.clear();
            self.note(Self::CONVERSATIONS);
        } else {
            changes.push_back(change);
        }
    }
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
}

impl Entry {
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
    /// Online users whose arrival was announced to their rooms (see [`Hub::announce_arrival`]).
    announced: HashSet<AccountId>,
}

impl State {
    fn membership_changes(&self, account: AccountId) -> u64 {
        self.membership_changes.get(&account).copied().unwrap_or(0)
    }

    fn sessions_of(&self, account: AccountId) -> impl Iterator<Item = (SessionId, &Entry)> {
        self.by_account.get(&account).into_iter().flatten().filter_map(|id| Some((*id, self.sessions.get(id)?)))
    }

    fn send_to(&self, account: AccountId, item: &Live) {
        for (_, entry) in self.sessions_of(account) {
            if let Err(mpsc::error::TrySendError::Full(dropped)) = entry.tx.try_send(item.clone()) {
                entry.pending.note_dropped(&dropped);
                entry.wake.notify_one();
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
    /// reach it beside its queue.
    pub fn register(
        &self,
        account: &Account,
        rooms: Vec<(ConvId, RoomName)>,
        changes_seen: u64,
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
        state.sessions.insert(id, Entry { tx, pending: pending.clone(), wake: wake.clone() });
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
    pub fn announce_arrival(&self, account: &Account) {
        let mut state = self.lock();
        if !state.by_account.contains_key(&account.id) || !state.announced.insert(account.id) {
            return;
        }
        let rooms: Vec<(ConvId, RoomName)> = state
            .rooms_of
            .get(&account.id)
            .map(|rooms| rooms.iter().map(|(conv, room)| (*conv, room.clone())).collect())
            .unwrap_or_default();
        for (conv, room) in rooms {
            state.announce(conv, &room, account, PresenceState::Online);
        }
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
            let announced = state.announced.remove(&account.id);
            for (conv, room) in state.rooms_of.remove(&account.id).unwrap_or_default() {
                if announced {
                    state.announce(conv, &room, account, PresenceState::Offline);
                }
                if let Some(online) = state.room_online.get_mut(&conv) {
                    online.remove(&account.id);
                }
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
        state.room_online.entry(conv).or_default().insert(account.id, account.nick.clone());
        state.rooms_of.entry(account.id).or_default().insert(conv, room.clone());
        if newly {
            *state.membership_changes.entry(account.id).or_default() += 1;
            state.announce(conv, room, account, PresenceState::Joined);
            let change = Change::Joined { conv, room: room.clone(), joined_after: sent_after };
            state.tell_sessions(account.id, Some(by), change);
        }
    }

    pub fn left(&self, by: SessionId, account: &Account, conv: ConvId, room: &RoomName) {
        let mut state = self.lock();
        *state.membership_changes.entry(account.id).or_default() += 1;
        state.announce(conv, room, account, PresenceState::Left);
        state.tell_sessions(account.id, Some(by), Change::Left { conv, room: room.clone() });
        if let Some(online) = state.room_online.get_mut(&conv) {
            online.remove(&account.id);
        }
        if let Some(rooms) = state.rooms_of.get_mut(&account.id) {
            rooms.remove(&conv);
        }
    }

    /// Called by the writer once an account's removal is committed: its sessions end, and the sessions of the
    /// accounts it had direct conversations with forget those.
    pub fn account_removed(&self, removed: &Removed) {
        let mut state = self.lock();
        for (_, entry) in state.sessions_of(removed.account.id) {
            entry.note(PendingChanges::ACCOUNT_REMOVED);
        }
        for deleted in &removed.deleted_directs {
            let change = Change::DirectDeleted { conv: deleted.conversation, peer: removed.account.nick.clone() };
            state.tell_sessions(deleted.peer.id, None, change);
            state.latest.remove(&deleted.conversation);
        }
        state.membership_changes.remove(&removed.account.id);
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

    /// Called by the writer after the message is committed, in seq order.
    pub fn publish(&self, conv: ConvId, message: StoredMessage) {
        let mut state = self.lock();
        state.latest.insert(conv, message.seq);
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

#[cfg(test)]
mod tests;
