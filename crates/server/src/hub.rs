//! The hub: who is online, in which rooms, and the live fan-out of new messages and presence to their
//! sessions.
//!
//! Fan-out never waits: each session has a bounded queue, and an item that does not fit is dropped and its kind
//! noted beside the queue ([`Beside`]), which wakes the session: it then reads back from the store and the hub
//! what it missed, instead of growing the server's memory. A join or leave made by another session of the same
//! user is never dropped: it waits beside the queue, since the store does not say where the other session began.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use palomar_proto::{Nick, PresenceState, RoomName};
use palomar_store::{ConvKey, StoredMessage};
use tokio::sync::{Notify, mpsc};

/// Identifies one connection's session in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u64);

/// A committed message on its way to its readers.
#[derive(Debug)]
pub struct Published {
    pub conv: i64,
    pub message: StoredMessage,
    /// The message as every member of a room reads it, encoded by the first session that sends it, so a
    /// room of many members costs one encoding.
    room_encoding: OnceLock<Vec<u8>>,
}

impl Published {
    pub fn new(conv: i64, message: StoredMessage) -> Self {
        Published { conv, message, room_encoding: OnceLock::new() }
    }

    /// The encoded [`palomar_proto::Message`] as `reader` sees it; shared among readers in a room.
    pub fn encoded_for(&self, reader: &Nick) -> Cow<'_, [u8]> {
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

/// Another session of the same user joined or left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub conv: i64,
    pub room: RoomName,
    /// For a join, the seq after which the joining session started sending the room (its history on join),
    /// so every session of the user shows the room from the same message; `None` for a leave.
    pub joined_after: Option<u64>,
}

/// What reaches a session beside its bounded queue: the kinds of live items that did not fit, and the user's
/// membership changes made elsewhere. Empty and allocation-free while nothing happens.
#[derive(Debug, Default)]
pub struct Beside {
    missed: AtomicU8,
    memberships: Mutex<VecDeque<MembershipChange>>,
}

/// The kinds of live items dropped for a session, each read back in its own way, so that a session behind on
/// messages alone does not also reread its rooms' members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissedKinds {
    /// Committed messages: the log has them.
    pub messages: bool,
    /// A message of a direct conversation, which may be its first: the store knows the conversation.
    pub direct: bool,
    /// Someone's arrival, departure, join or leave: the hub and the store know who is online and who is a member.
    pub presence: bool,
}

impl Beside {
    const MESSAGES: u8 = 1;
    const DIRECT: u8 = 2;
    const PRESENCE: u8 = 4;

    fn note_dropped(&self, item: &Live) {
        let kinds = match item {
            Live::Message(published) => match published.message.key {
                ConvKey::Room(_) => Self::MESSAGES,
                ConvKey::Direct(..) => Self::MESSAGES | Self::DIRECT,
            },
            Live::Presence { .. } => Self::PRESENCE,
        };
        self.missed.fetch_or(kinds, Ordering::AcqRel);
    }

    /// What was dropped since the last call, and clears it.
    pub fn take_missed(&self) -> MissedKinds {
        let kinds = self.missed.swap(0, Ordering::AcqRel);
        MissedKinds {
            messages: kinds & Self::MESSAGES != 0,
            direct: kinds & Self::DIRECT != 0,
            presence: kinds & Self::PRESENCE != 0,
        }
    }

    /// The membership changes made by the user's other sessions since the last call, oldest first.
    pub fn take_memberships(&self) -> VecDeque<MembershipChange> {
        std::mem::take(&mut *self.memberships.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn push_membership(&self, change: MembershipChange) {
        self.memberships.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push_back(change);
    }
}

/// [`Hub::register`] refused: the user's rooms changed while the session read them.
#[derive(Debug, PartialEq, Eq)]
pub struct MembershipsChanged;

/// A session's end of the hub.
pub struct SessionLink {
    pub id: SessionId,
    pub rx: mpsc::Receiver<Live>,
    pub beside: Arc<Beside>,
    /// Signalled whenever something is put beside the queue.
    pub wake: Arc<Notify>,
}

struct Entry {
    nick: Nick,
    tx: mpsc::Sender<Live>,
    beside: Arc<Beside>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    sessions: HashMap<SessionId, Entry>,
    by_nick: HashMap<Nick, Vec<SessionId>>,
    /// Online members of each room.
    room_online: HashMap<i64, BTreeSet<Nick>>,
    /// The rooms of each online user, to announce them going offline.
    rooms_of: HashMap<Nick, HashMap<i64, RoomName>>,
    /// Highest committed seq of each conversation.
    latest: HashMap<i64, u64>,
    /// How many joins and leaves each user has made while this hub ran (kept after the user goes offline, so
    /// that the count never goes back).
    membership_changes: HashMap<Nick, u64>,
}

impl State {
    fn membership_changes(&self, nick: &Nick) -> u64 {
        self.membership_changes.get(nick).copied().unwrap_or(0)
    }

    fn sessions_of<'a>(&'a self, nick: &Nick) -> impl Iterator<Item = (SessionId, &'a Entry)> {
        self.by_nick.get(nick).into_iter().flatten().filter_map(|id| Some((*id, self.sessions.get(id)?)))
    }

    fn send_to_nick(&self, nick: &Nick, item: &Live) {
        for (_, entry) in self.sessions_of(nick) {
            if let Err(mpsc::error::TrySendError::Full(dropped)) = entry.tx.try_send(item.clone()) {
                entry.beside.note_dropped(&dropped);
                entry.wake.notify_one();
            }
        }
    }

    fn tell_other_sessions(&self, nick: &Nick, by: SessionId, change: MembershipChange) {
        for (_, entry) in self.sessions_of(nick).filter(|(id, _)| *id != by) {
            entry.beside.push_membership(change.clone());
            entry.wake.notify_one();
        }
    }

    fn announce(&self, conv: i64, room: &RoomName, nick: &Nick, state: PresenceState) {
        let item = Live::Presence { room: room.clone(), nick: nick.clone(), state };
        for other in self.room_online.get(&conv).into_iter().flatten().filter(|other| *other != nick) {
            self.send_to_nick(other, &item);
        }
    }
}

pub struct Hub {
    state: Mutex<State>,
    queue_len: usize,
}

impl Hub {
    /// `latest` is each conversation's highest seq in the store; `queue_len` bounds each session's queue.
    pub fn new(latest: HashMap<i64, u64>, queue_len: usize) -> Arc<Hub> {
        Arc::new(Hub { state: Mutex::new(State { latest, ..State::default() }), queue_len })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many joins and leaves `nick` has made so far: what a session reads before it reads the user's rooms
    /// from the store, for [`Hub::register`].
    pub fn membership_changes(&self, nick: &Nick) -> u64 {
        self.lock().membership_changes(nick)
    }

    /// Adds a session of `nick`, a member of `rooms`; the user's first session announces it online. `rooms` was
    /// read from the store after [`Hub::membership_changes`] gave `changes_seen`. If another session of the user
    /// has joined or left a room since, it was not told (it was not registered yet) and its `rooms` may be stale:
    /// then nothing is registered, and the caller reads its rooms again. Changes made after registering reach it
    /// beside its queue.
    pub fn register(
        &self,
        nick: &Nick,
        rooms: Vec<(i64, RoomName)>,
        changes_seen: u64,
    ) -> Result<SessionLink, MembershipsChanged> {
        let mut state = self.lock();
        if state.membership_changes(nick) != changes_seen {
            return Err(MembershipsChanged);
        }
        let (tx, rx) = mpsc::channel(self.queue_len);
        let beside = Arc::new(Beside::default());
        let wake = Arc::new(Notify::new());
        state.next_id += 1;
        let id = SessionId(state.next_id);
        state.sessions.insert(id, Entry { nick: nick.clone(), tx, beside: beside.clone(), wake: wake.clone() });
        let sessions = state.by_nick.entry(nick.clone()).or_default();
        sessions.push(id);
        if sessions.len() == 1 {
            for (conv, room) in &rooms {
                state.room_online.entry(*conv).or_default().insert(nick.clone());
                state.announce(*conv, room, nick, PresenceState::Online);
            }
            state.rooms_of.insert(nick.clone(), rooms.into_iter().collect());
        }
        Ok(SessionLink { id, rx, beside, wake })
    }

    /// Removes a session; the user's last session announces it offline.
    pub fn unregister(&self, id: SessionId) {
        let mut state = self.lock();
        let Some(entry) = state.sessions.remove(&id) else { return };
        let nick = entry.nick;
        let remaining = state.by_nick.get_mut(&nick).map(|sessions| {
            sessions.retain(|s| *s != id);
            sessions.len()
        });
        if remaining == Some(0) {
            state.by_nick.remove(&nick);
            for (conv, room) in state.rooms_of.remove(&nick).unwrap_or_default() {
                state.announce(conv, &room, &nick, PresenceState::Offline);
                if let Some(online) = state.room_online.get_mut(&conv) {
                    online.remove(&nick);
                }
            }
        }
    }

    /// Session `by` of `nick` made it a member of `room`, sending it from the seq after `sent_after`: announced
    /// to the room when `newly` joined, and to the user's other sessions.
    pub fn joined(&self, by: SessionId, nick: &Nick, conv: i64, room: &RoomName, newly: bool, sent_after: u64) {
        let mut state = self.lock();
        state.room_online.entry(conv).or_default().insert(nick.clone());
        state.rooms_of.entry(nick.clone()).or_default().insert(conv, room.clone());
        if newly {
            *state.membership_changes.entry(nick.clone()).or_default() += 1;
            state.announce(conv, room, nick, PresenceState::Joined);
            let change = MembershipChange { conv, room: room.clone(), joined_after: Some(sent_after) };
            state.tell_other_sessions(nick, by, change);
        }
    }

    pub fn left(&self, by: SessionId, nick: &Nick, conv: i64, room: &RoomName) {
        let mut state = self.lock();
        *state.membership_changes.entry(nick.clone()).or_default() += 1;
        state.announce(conv, room, nick, PresenceState::Left);
        state.tell_other_sessions(nick, by, MembershipChange { conv, room: room.clone(), joined_after: None });
        if let Some(online) = state.room_online.get_mut(&conv) {
            online.remove(nick);
        }
        if let Some(rooms) = state.rooms_of.get_mut(nick) {
            rooms.remove(&conv);
        }
    }

    pub fn online_in(&self, conv: i64) -> Vec<Nick> {
        self.lock().room_online.get(&conv).map(|online| online.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn latest(&self, conv: i64) -> u64 {
        self.lock().latest.get(&conv).copied().unwrap_or(0)
    }

    /// Called by the writer after the message is committed, in seq order.
    pub fn publish(&self, conv: i64, message: StoredMessage) {
        let mut state = self.lock();
        state.latest.insert(conv, message.seq);
        let published = Arc::new(Published::new(conv, message));
        let item = Live::Message(published.clone());
        match &published.message.key {
            ConvKey::Room(_) => {
                for nick in state.room_online.get(&conv).into_iter().flatten() {
                    state.send_to_nick(nick, &item);
                }
            }
            ConvKey::Direct(a, b) => {
                state.send_to_nick(a, &item);
                if a != b {
                    state.send_to_nick(b, &item);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_proto::MessageId;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).expect("valid")
    }

    fn message(seq: u64) -> StoredMessage {
        StoredMessage {
            key: ConvKey::Room(RoomName::lobby()),
            seq,
            id: MessageId([0; 16]),
            from: nick("ana"),
            ts: 0,
            text: "x".into(),
        }
    }

    fn register(hub: &Hub, who: &str, rooms: Vec<(i64, RoomName)>) -> SessionLink {
        let changes = hub.membership_changes(&nick(who));
        hub.register(&nick(who), rooms, changes).expect("nothing changed meanwhile")
    }

    #[test]
    fn a_session_whose_rooms_changed_while_it_read_them_reads_them_again() {
        let hub = Hub::new(HashMap::new(), 8);
        let lobby = vec![(1, RoomName::lobby())];
        let phone = register(&hub, "ana", lobby.clone());
        let garden = RoomName::parse("garden").expect("valid");
        let seen = hub.membership_changes(&nick("ana"));
        // The laptop read ana's rooms; then, before it registered, the phone joined a room.
        hub.joined(phone.id, &nick("ana"), 2, &garden, true, 0);
        assert_eq!(hub.register(&nick("ana"), lobby.clone(), seen).err(), Some(MembershipsChanged));
        let seen = hub.membership_changes(&nick("ana"));
        let laptop = hub.register(&nick("ana"), vec![(1, RoomName::lobby()), (2, garden.clone())], seen);
        assert!(laptop.is_ok(), "its second reading is current");
        // The same for a leave, even after the phone went offline.
        let seen = hub.membership_changes(&nick("ana"));
        hub.left(phone.id, &nick("ana"), 2, &garden);
        hub.unregister(phone.id);
        assert!(hub.register(&nick("ana"), lobby, seen).is_err());
        assert!(hub.register(&nick("bob"), vec![], 0).is_ok(), "counted per user");
    }

    #[test]
    fn a_full_queue_notes_what_it_dropped_instead_of_growing() {
        let hub = Hub::new(HashMap::new(), 2);
        let mut link = register(&hub, "bob", vec![(1, RoomName::lobby())]);
        for seq in 1..=5 {
            hub.publish(1, message(seq));
        }
        assert_eq!(link.beside.take_missed(), MissedKinds { messages: true, ..MissedKinds::default() });
        assert_eq!(link.beside.take_missed(), MissedKinds::default(), "taking clears it");
        assert_eq!(hub.latest(1), 5);
        let mut queued = 0;
        while link.rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 2);
    }

    #[test]
    fn dropped_presence_is_noted_and_a_join_elsewhere_waits_beside_a_full_queue() {
        let hub = Hub::new(HashMap::new(), 1);
        let lobby = vec![(1, RoomName::lobby())];
        let ana = register(&hub, "ana", lobby.clone());
        let other_ana = register(&hub, "ana", lobby.clone());
        register(&hub, "bob", lobby.clone());
        register(&hub, "carol", lobby);
        assert_eq!(other_ana.beside.take_missed(), MissedKinds { presence: true, ..MissedKinds::default() });
        let garden = RoomName::parse("garden").expect("valid");
        hub.joined(ana.id, &nick("ana"), 2, &garden, true, 7);
        hub.left(ana.id, &nick("ana"), 2, &garden);
        let changes: Vec<_> = other_ana.beside.take_memberships().into_iter().collect();
        let join = MembershipChange { conv: 2, room: garden.clone(), joined_after: Some(7) };
        assert_eq!(changes, vec![join, MembershipChange { conv: 2, room: garden, joined_after: None }]);
        assert!(ana.beside.take_memberships().is_empty(), "not told of its own join");
    }

    #[test]
    fn presence_goes_to_the_others_in_the_room() {
        let hub = Hub::new(HashMap::new(), 8);
        let lobby = vec![(1, RoomName::lobby())];
        let mut ana = register(&hub, "ana", lobby.clone());
        let bob = register(&hub, "bob", lobby.clone());
        let second_bob = register(&hub, "bob", lobby);
        match ana.rx.try_recv() {
            Ok(Live::Presence { nick: who, state: PresenceState::Online, .. }) => assert_eq!(who, nick("bob")),
            other => panic!("expected bob online, got {other:?}"),
        }
        assert!(ana.rx.try_recv().is_err(), "a second session is not a second arrival");
        hub.unregister(bob.id);
        assert!(ana.rx.try_recv().is_err(), "bob still has a session");
        hub.unregister(second_bob.id);
        assert!(matches!(ana.rx.try_recv(), Ok(Live::Presence { state: PresenceState::Offline, .. })));
        assert_eq!(hub.online_in(1), vec![nick("ana")]);
    }
}
