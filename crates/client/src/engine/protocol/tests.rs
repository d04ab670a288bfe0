//! The protocol core against a model server: examples of each decision, and properties over any sequence of
//! typing, deliveries, disconnects, store failures and client restarts.

use std::collections::{BTreeMap, HashMap, VecDeque};

use palomar_proto::{
    AWARENESS_VERSION, ClientMsg, Conversation, ConversationInfo, ErrorCode, Message, MessageId, MessageKind, Nick,
    ReadMarker, RoomName, ServerMsg, WhoisInfo,
};
use proptest::prelude::*;

use super::{Effects, Protocol, SEND_WINDOW};
use crate::engine::{Command, ConnectionEnd, Event, NO_AWAY_MESSAGES, NO_WHOIS};
use crate::state::OutboxEntry;

fn nick(name: &str) -> Nick {
    Nick::parse(name).expect("a valid nickname")
}

fn room(name: &str) -> Conversation {
    Conversation::Room(RoomName::parse(name).expect("a valid room name"))
}

/// The id numbered `n` (distinct for distinct `n`).
fn id(n: usize) -> MessageId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    MessageId(bytes)
}

fn entry(n: usize, to: &Conversation) -> OutboxEntry {
    OutboxEntry { id: id(n), to: to.clone(), kind: MessageKind::Text, text: format!("typed {n}") }
}

fn message(conversation: &Conversation, seq: u64, from: &str, id: MessageId) -> Message {
    Message {
        conversation: conversation.clone(),
        seq,
        id,
        from: nick(from),
        ts: seq,
        text: format!("m{seq}"),
        kind: palomar_proto::MessageKind::Text,
        revision: palomar_proto::Revision::Original,
    }
}

fn info(conversation: &Conversation, latest_seq: u64) -> ConversationInfo {
    ConversationInfo { conversation: conversation.clone(), latest_seq, first_seq: 1 }
}

fn sent_ids(effects: &Effects) -> Vec<MessageId> {
    effects
        .frames
        .iter()
        .filter_map(|frame| if let ClientMsg::Send { id, .. } = frame { Some(*id) } else { None })
        .collect()
}

fn shown_seqs(effects: &Effects) -> Vec<u64> {
    effects
        .events
        .iter()
        .filter_map(|event| if let Event::Message { message, .. } = event { Some(message.seq) } else { None })
        .collect()
}

#[test]
fn a_connection_sends_the_whole_outbox_and_joins_the_room_asked_for() {
    let lobby = room("lobby");
    let outbox = VecDeque::from([entry(1, &lobby), entry(2, &lobby)]);
    let mut protocol = Protocol::new(nick("ana"), outbox, HashMap::new());
    let garden = RoomName::parse("garden").expect("valid");
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&lobby, 0)], Some(&garden));
    assert!(matches!(&effects.frames[0], ClientMsg::Join { room } if room == "garden"));
    assert_eq!(sent_ids(&effects), [id(1), id(2)]);
    assert!(matches!(effects.events[..], [Event::Synced]), "nothing to catch up on");

    let again = protocol.connected(
        AWARENESS_VERSION,
        &[info(&lobby, 0), info(&Conversation::Room(garden.clone()), 0)],
        Some(&garden),
    );
    assert_eq!(sent_ids(&again), [id(1), id(2)], "a new connection sends them again");
    assert!(!again.frames.iter().any(|frame| matches!(frame, ClientMsg::Join { .. })), "already a member");
}

#[test]
fn the_send_window_holds_back_what_has_no_room_until_answers_come() {
    let lobby = room("lobby");
    let outbox: VecDeque<_> = (0..SEND_WINDOW + 10).map(|n| entry(n, &lobby)).collect();
    let mut protocol = Protocol::new(nick("ana"), outbox, HashMap::new());
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&lobby, 0)], None);
    assert_eq!(sent_ids(&effects).len(), SEND_WINDOW);
    let first = id(0);
    let mut answered = Effects::default();
    let accepted = ServerMsg::Accepted { id: first, conversation: lobby.clone(), seq: 1, ts: 1 };
    protocol.received(vec![accepted], &mut answered).expect("no end");
    assert_eq!(sent_ids(&answered), [id(SEND_WINDOW)], "one answer, one more sent");
    assert_eq!(answered.removed, [first]);
    assert_eq!(protocol.outbox_len(), 265);
}

#[test]
fn deliveries_at_or_below_the_cursor_are_dropped_and_synced_comes_once_caught_up() {
    let lobby = room("lobby");
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::from([(lobby.clone(), 2)]));
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&lobby, 5)], None);
    assert!(effects.events.is_empty(), "behind: not synced yet");
    let mut effects = Effects::default();
    let page = (1..=4).map(|seq| message(&lobby, seq, "bob", id(seq as usize))).collect();
    protocol.received(vec![ServerMsg::Messages(page)], &mut effects).expect("no end");
    assert_eq!(shown_seqs(&effects), [3, 4]);
    assert!(!effects.events.iter().any(|event| matches!(event, Event::Synced)));
    let mut effects = Effects::default();
    let page = (4..=5).map(|seq| message(&lobby, seq, "bob", id(seq as usize))).collect();
    protocol.received(vec![ServerMsg::Messages(page)], &mut effects).expect("no end");
    assert_eq!(shown_seqs(&effects), [5]);
    assert!(matches!(effects.events.last(), Some(Event::Synced)));
    assert_eq!(effects.moved, HashMap::from([(lobby.clone(), 5)]));
    let mut acks = Effects::default();
    protocol.acknowledge_cursors(&mut acks);
    assert!(matches!(&acks.frames[..], [ClientMsg::Ack { seq: 5, .. }]));
}

#[test]
fn a_server_restored_from_an_older_backup_moves_the_cursor_back_so_its_new_messages_are_shown() {
    let (lobby, team) = (room("lobby"), room("team"));
    let cursors = HashMap::from([(lobby.clone(), 9), (team.clone(), 3)]);
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), cursors);
    // The server's store ends #lobby at 6, where we had seen 9; #team is as we left it.
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&lobby, 6), info(&team, 3)], None);
    assert!(
        matches!(&effects.events[..], [Event::Rewound { latest_seq: 6, had: 9, .. }, Event::Synced]),
        "{:?}",
        effects.events
    );
    assert_eq!(effects.forgotten, std::slice::from_ref(&lobby), "the saved cursor is replaced, not only moved forward");
    assert_eq!(effects.moved, HashMap::from([(lobby.clone(), 6)]));
    let mut effects = Effects::default();
    let page = (7..=8).map(|seq| message(&lobby, seq, "bob", id(100 + seq as usize))).collect();
    protocol.received(vec![ServerMsg::Messages(page)], &mut effects).expect("no end");
    assert_eq!(shown_seqs(&effects), [7, 8], "new messages under seqs we had seen before the restore");
    // A conversation listed after `Welcome` is checked the same way.
    let mut effects = Effects::default();
    let joined = ServerMsg::Joined { info: info(&team, 1) };
    protocol.received(vec![joined], &mut effects).expect("no end");
    assert!(effects.events.iter().any(|event| matches!(event, Event::Rewound { latest_seq: 1, had: 3, .. })));
}

#[test]
fn a_store_failure_is_resent_later_and_a_refusal_for_good_leaves_the_outbox() {
    let lobby = room("lobby");
    let outbox = VecDeque::from([entry(1, &lobby), entry(2, &lobby)]);
    let mut protocol = Protocol::new(nick("ana"), outbox, HashMap::new());
    protocol.connected(AWARENESS_VERSION, &[info(&lobby, 0)], None);
    let mut effects = Effects::default();
    let busy = ServerMsg::Error { code: ErrorCode::StoreUnavailable, message: "busy".into(), id: Some(id(1)) };
    let refused = ServerMsg::Error { code: ErrorCode::InvalidText, message: "no".into(), id: Some(id(2)) };
    protocol.received(vec![busy, refused], &mut effects).expect("no end");
    assert!(effects.retry_later);
    assert_eq!(effects.removed, [id(2)]);
    assert_eq!(protocol.outbox_len(), 1);
    let mut later = Effects::default();
    protocol.resend_refused(&mut later);
    assert_eq!(sent_ids(&later), [id(1)]);
}

#[test]
fn a_message_refused_as_not_allowed_leaves_the_outbox_and_is_not_sent_again() {
    let garden = room("garden");
    let outbox = VecDeque::from([entry(1, &garden), entry(2, &garden)]);
    let mut protocol = Protocol::new(nick("ana"), outbox, HashMap::new());
    protocol.connected(AWARENESS_VERSION, &[info(&garden, 0)], None);
    let mut effects = Effects::default();
    let muted = ServerMsg::Error { code: ErrorCode::NotAllowed, message: "you are muted".into(), id: Some(id(1)) };
    protocol.received(vec![muted], &mut effects).expect("no end");
    assert_eq!(effects.removed, [id(1)]);
    assert!(!effects.retry_later);
    assert!(effects.events.iter().any(|event| matches!(
        event,
        Event::Error { code: Some(ErrorCode::NotAllowed), id: Some(refused), .. } if *refused == id(1)
    )));
    assert_eq!(protocol.outbox_len(), 1);
    let reconnected = protocol.connected(AWARENESS_VERSION, &[info(&garden, 0)], None);
    assert_eq!(sent_ids(&reconnected), [id(2)], "the refused message is not sent again");
}

#[test]
fn posts_other_than_text_go_as_post_frames_with_their_kind_and_an_unknown_target_is_refused_for_good() {
    let garden = room("garden");
    let post = |n: usize, kind: MessageKind| OutboxEntry { kind, ..entry(n, &garden) };
    let outbox = VecDeque::from([
        entry(1, &garden),
        post(2, MessageKind::Action),
        post(3, MessageKind::Edit { of: 1 }),
        post(4, MessageKind::Deletion { of: 9 }),
    ]);
    let mut protocol = Protocol::new(nick("ana"), outbox, HashMap::new());
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&garden, 0)], None);
    let frames: Vec<_> = effects.frames.iter().filter(|f| !matches!(f, ClientMsg::Join { .. })).collect();
    assert!(matches!(frames[0], ClientMsg::Send { id: sent, .. } if *sent == id(1)), "text stays a Send: {frames:?}");
    let posted: Vec<_> = frames[1..]
        .iter()
        .map(|frame| match frame {
            ClientMsg::Post { id, kind, text, .. } => (*id, *kind, text.clone()),
            other => panic!("a Post expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        posted,
        [
            (id(2), MessageKind::Action, "typed 2".to_owned()),
            (id(3), MessageKind::Edit { of: 1 }, "typed 3".to_owned()),
            (id(4), MessageKind::Deletion { of: 9 }, "typed 4".to_owned()),
        ]
    );
    let mut effects = Effects::default();
    let unknown = ServerMsg::Error { code: ErrorCode::UnknownMessage, message: "no #9".into(), id: Some(id(4)) };
    protocol.received(vec![unknown], &mut effects).expect("no end");
    assert_eq!(effects.removed, [id(4)]);
    assert!(effects.events.iter().any(|event| matches!(
        event,
        Event::Error { code: Some(ErrorCode::UnknownMessage), id: Some(refused), .. } if *refused == id(4)
    )));
    let reconnected = protocol.connected(AWARENESS_VERSION, &[info(&garden, 0)], None);
    let resent = reconnected.frames.iter().filter(|f| matches!(f, ClientMsg::Send { .. } | ClientMsg::Post { .. }));
    assert_eq!(resent.count(), 3, "the refused deletion is not sent again");
}

#[test]
fn moderation_goes_to_the_server_and_its_news_comes_through() {
    use palomar_proto::{Role, RoomAction, RoomChange, RoomState};

    let garden = RoomName::parse("garden").expect("valid");
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    protocol.connected(AWARENESS_VERSION, &[info(&Conversation::Room(garden.clone()), 0)], None);
    let mut effects = Effects::default();
    let kick = RoomAction::Kick { nick: "bob".into(), reason: "spam".into() };
    protocol.request(Command::Moderate { room: garden.clone(), action: kick.clone() }, &mut effects);
    assert_eq!(effects.frames, [ClientMsg::Moderate { room: "garden".into(), action: kick }]);

    let state = RoomState {
        room: garden.clone(),
        topic: "seeds".into(),
        invite_only: false,
        moderated: true,
        role: Role::Moderator,
        muted: false,
        operator: false,
    };
    let frames = vec![
        ServerMsg::RoomState(state.clone()),
        ServerMsg::RoomEvent {
            room: garden.clone(),
            by: Some(nick("ana")),
            change: RoomChange::Kicked { nick: nick("bob"), reason: "spam".into() },
        },
        ServerMsg::Invited { room: garden.clone(), by: None },
    ];
    let mut effects = Effects::default();
    protocol.received(frames, &mut effects).expect("no end");
    assert!(matches!(&effects.events[..], [
        Event::RoomState(shown),
        Event::RoomEvent { room, by: Some(by), change: RoomChange::Kicked { .. } },
        Event::Invited { by: None, .. },
    ] if *shown == state && *room == garden && by.as_str() == "ana"));
    assert!(effects.frames.is_empty(), "nothing to answer");
}

#[test]
fn a_listing_asks_for_a_page_of_rooms_after_the_one_named_and_its_answer_comes_through() {
    use palomar_proto::RoomListing;

    let garden = RoomName::parse("garden").expect("valid");
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    protocol.connected(AWARENESS_VERSION, &[], None);
    let mut effects = Effects::default();
    protocol.request(Command::ListRooms { after: None }, &mut effects);
    protocol.request(Command::ListRooms { after: Some(garden.clone()) }, &mut effects);
    assert_eq!(
        effects.frames,
        [
            ClientMsg::ListRooms { after: String::new(), limit: 50 },
            ClientMsg::ListRooms { after: "garden".into(), limit: 50 },
        ]
    );

    let listed = vec![RoomListing { room: garden, members: 3, topic: "seeds".into(), invite_only: true }];
    let mut effects = Effects::default();
    let rooms = ServerMsg::Rooms { rooms: listed.clone(), more: true };
    protocol.received(vec![rooms], &mut effects).expect("no end");
    assert!(matches!(&effects.events[..], [Event::Rooms { rooms, more: true }] if *rooms == listed));
    assert!(effects.frames.is_empty(), "nothing to answer");
}

#[test]
fn leaving_forgets_the_cursor_and_a_removed_account_or_a_shutdown_ends_the_connection() {
    let lobby = room("lobby");
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::from([(lobby.clone(), 7)]));
    protocol.connected(AWARENESS_VERSION, &[info(&lobby, 7)], None);
    let mut effects = Effects::default();
    let left = ServerMsg::Left { room: RoomName::parse("lobby").expect("valid") };
    protocol.received(vec![left], &mut effects).expect("no end");
    assert_eq!(effects.forgotten, std::slice::from_ref(&lobby));
    assert!(protocol.cursors().is_empty());
    let mut history = Effects::default();
    protocol.request(Command::History { conversation: lobby.clone(), before: None, limit: 10 }, &mut history);
    assert!(matches!(&history.frames[..], [ClientMsg::History { before: u64::MAX, .. }]), "no cursor: the newest");

    let removed = ServerMsg::Error { code: ErrorCode::AuthFailed, message: "removed".into(), id: None };
    let end = protocol.received(vec![removed, ServerMsg::Ping { nonce: 1 }], &mut Effects::default());
    assert!(matches!(end, Err(ConnectionEnd::Fatal(_))), "logged out for good");
    let end = protocol.received(vec![ServerMsg::ShuttingDown { message: "bye".into() }], &mut Effects::default());
    assert!(matches!(end, Err(ConnectionEnd::Reconnect(_))));
}

/// What a test does next to the client and the model server.
#[derive(Debug, Clone)]
enum Step {
    /// Ana types `count` messages to conversation `conv`.
    Type {
        conv: usize,
        count: usize,
    },
    /// Bob sends to `conv`; the live delivery to ana is dropped when `dropped` (her live queue overflowed).
    OtherSends {
        conv: usize,
        dropped: bool,
    },
    /// The server handles up to `count` frames from the client; the live delivery of ana's own messages back to
    /// her is dropped unless `echo`.
    ServerReads {
        count: usize,
        echo: bool,
    },
    /// The client handles up to `count` frames from the server.
    ClientReads {
        count: usize,
    },
    /// The server sends again what it sent of `conv` from `back` seqs before its last (a read-back overlapping
    /// live deliveries).
    Reread {
        conv: usize,
        back: u64,
    },
    /// The connection drops: whatever was in flight either way is lost.
    Disconnect,
    Connect,
    /// The store starts or stops refusing writes.
    StoreFails(bool),
    /// The store-retry timer fires.
    RetryTimer,
    /// The client process dies and starts again from what it saved.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, 1..4usize).prop_map(|(conv, count)| Step::Type { conv, count }),
        2 => (0..2usize, any::<bool>()).prop_map(|(conv, dropped)| Step::OtherSends { conv, dropped }),
        4 => (1..6usize, any::<bool>()).prop_map(|(count, echo)| Step::ServerReads { count, echo }),
        4 => (1..6usize).prop_map(|count| Step::ClientReads { count }),
        1 => (0..2usize, 0..4u64).prop_map(|(conv, back)| Step::Reread { conv, back }),
        1 => Just(Step::Disconnect),
        2 => Just(Step::Connect),
        1 => any::<bool>().prop_map(Step::StoreFails),
        1 => Just(Step::RetryTimer),
        1 => Just(Step::Restart),
    ]
}

/// A server as the protocol describes it: stores each id once, answers a retried id with its first seq, and
/// delivers each conversation to a connection in seq order without gaps (reading back what its live queue
/// dropped before it sends anything newer).
#[derive(Default)]
struct ModelServer {
    log: BTreeMap<Conversation, Vec<Message>>,
    stored: HashMap<MessageId, (Conversation, u64)>,
    store_fails: bool,
    /// The client has a connection (what the server sends goes nowhere otherwise).
    connected: bool,
    /// A live delivery to the client was dropped: the server reads back before it next sends.
    missed: bool,
    /// Per conversation, the last seq sent on the current connection.
    sent: HashMap<Conversation, u64>,
    to_server: VecDeque<ClientMsg>,
    to_client: VecDeque<ServerMsg>,
}

impl ModelServer {
    fn append(&mut self, conversation: &Conversation, from: &str, id: MessageId) -> u64 {
        let log = self.log.entry(conversation.clone()).or_default();
        let seq = log.len() as u64 + 1;
        log.push(message(conversation, seq, from, id));
        self.stored.insert(id, (conversation.clone(), seq));
        seq
    }

    /// Sends `conversation` up to `seq` on the connection, from the first seq not yet sent on it.
    fn deliver_upto(&mut self, conversation: &Conversation, seq: u64) {
        if !self.connected {
            return;
        }
        let sent = self.sent.entry(conversation.clone()).or_insert(0);
        if seq > *sent {
            let log = &self.log[conversation];
            let page = log[*sent as usize..seq as usize].to_vec();
            *sent = seq;
            self.to_client.push_back(ServerMsg::Messages(page));
        }
    }

    fn disconnect(&mut self) {
        self.connected = false;
        self.to_server.clear();
        self.to_client.clear();
    }

    fn connect(&mut self, cursors: &HashMap<Conversation, u64>) -> Vec<ConversationInfo> {
        self.to_server.clear();
        self.to_client.clear();
        self.connected = true;
        self.sent = cursors.clone();
        let conversations = CONVERSATIONS.iter().map(|name| room(name));
        let infos = conversations.map(|c| info(&c, self.log.get(&c).map_or(0, |log| log.len() as u64))).collect();
        self.catch_up();
        infos
    }

    /// Sends every conversation up to its latest message, as a session does after its live queue overflowed.
    fn catch_up(&mut self) {
        self.missed = false;
        for conversation in self.log.keys().cloned().collect::<Vec<_>>() {
            let latest = self.log[&conversation].len() as u64;
            self.deliver_upto(&conversation, latest);
        }
    }

    fn read(&mut self, count: usize, echo: bool) {
        if self.missed {
            self.catch_up();
        }
        for _ in 0..count {
            let Some(frame) = self.to_server.pop_front() else { return };
            let ClientMsg::Send { id, to, .. } = frame else { continue };
            if self.store_fails {
                let message = "the store is unavailable".to_owned();
                self.to_client.push_back(ServerMsg::Error { code: ErrorCode::StoreUnavailable, message, id: Some(id) });
                continue;
            }
            let (conversation, seq) = match self.stored.get(&id) {
                Some(first) => first.clone(),
                None => {
                    let seq = self.append(&to, "ana", id);
                    if echo {
                        self.deliver_upto(&to, seq);
                    } else {
                        self.missed = true;
                    }
                    (to, seq)
                }
            };
            self.to_client.push_back(ServerMsg::Accepted { id, conversation, seq, ts: seq });
        }
    }
}

const CONVERSATIONS: [&str; 2] = ["lobby", "garden"];

/// The client as its shell runs it: the core, and what the shell saved to disk from the effects.
struct ModelClient {
    protocol: Protocol,
    saved_outbox: Vec<OutboxEntry>,
    saved_cursors: HashMap<Conversation, u64>,
    connected: bool,
    accepted: HashMap<MessageId, Vec<u64>>,
    shown: HashMap<Conversation, Vec<u64>>,
}

impl ModelClient {
    fn start() -> ModelClient {
        ModelClient {
            protocol: Protocol::new(nick("ana"), VecDeque::new(), HashMap::new()),
            saved_outbox: Vec::new(),
            saved_cursors: HashMap::new(),
            connected: false,
            accepted: HashMap::new(),
            shown: HashMap::new(),
        }
    }

    /// The process died: a new core starts from what was saved; what the user saw stays seen.
    fn restart(&mut self, server: &mut ModelServer) {
        server.disconnect();
        self.connected = false;
        let outbox = self.saved_outbox.iter().cloned().collect();
        self.protocol = Protocol::new(nick("ana"), outbox, self.saved_cursors.clone());
    }

    fn connect(&mut self, server: &mut ModelServer) {
        let conversations = server.connect(self.protocol.cursors());
        self.connected = true;
        let effects = self.protocol.connected(AWARENESS_VERSION, &conversations, None);
        self.apply(effects, server);
    }

    /// Saves, then shows, then sends, as the engine's shell does.
    fn apply(&mut self, effects: Effects, server: &mut ModelServer) {
        for conversation in &effects.forgotten {
            self.saved_cursors.remove(conversation);
        }
        self.saved_cursors.extend(effects.moved.clone());
        self.saved_outbox.retain(|entry| !effects.removed.contains(&entry.id));
        for event in &effects.events {
            match event {
                Event::Accepted { id, seq, .. } => self.accepted.entry(*id).or_default().push(*seq),
                Event::Message { message, .. } => {
                    self.shown.entry(message.conversation.clone()).or_default().push(message.seq);
                }
                _ => {}
            }
        }
        if self.connected {
            server.to_server.extend(effects.frames);
        }
    }
}

fn run(steps: &[Step]) -> (ModelClient, ModelServer, Vec<MessageId>) {
    let mut server = ModelServer::default();
    let mut client = ModelClient::start();
    let mut typed = Vec::new();
    for step in steps {
        match *step {
            Step::Type { conv, count } => {
                let to = room(CONVERSATIONS[conv]);
                let mut entries = Vec::new();
                for _ in 0..count {
                    let entry = entry(typed.len() + 1_000_000, &to);
                    typed.push(entry.id);
                    entries.push(entry);
                }
                client.saved_outbox.extend(entries.iter().cloned());
                let mut effects = Effects::default();
                client.protocol.typed(entries, &mut effects);
                if client.connected {
                    client.protocol.fill_window(&mut effects);
                }
                client.apply(effects, &mut server);
            }
            Step::OtherSends { conv, dropped } => {
                let to = room(CONVERSATIONS[conv]);
                let id = id(server.stored.len() + 2_000_000);
                let seq = server.append(&to, "bob", id);
                if client.connected {
                    if dropped {
                        server.missed = true;
                    } else {
                        server.deliver_upto(&to, seq);
                    }
                }
            }
            Step::ServerReads { count, echo } => server.read(count, echo),
            Step::ClientReads { count } => {
                let frames: Vec<_> = (0..count).map_while(|_| server.to_client.pop_front()).collect();
                let mut effects = Effects::default();
                let end = client.protocol.received(frames, &mut effects);
                client.apply(effects, &mut server);
                assert!(end.is_ok(), "the model server never ends a connection");
            }
            Step::Reread { conv, back } => {
                let conversation = room(CONVERSATIONS[conv]);
                let sent = server.sent.get(&conversation).copied().unwrap_or(0);
                if client.connected && sent > 0 {
                    let from = sent.saturating_sub(back).max(1);
                    let page = server.log[&conversation][from as usize - 1..sent as usize].to_vec();
                    server.to_client.push_back(ServerMsg::Messages(page));
                }
            }
            Step::Disconnect => {
                client.connected = false;
                server.disconnect();
            }
            Step::Connect => client.connect(&mut server),
            Step::StoreFails(fails) => server.store_fails = fails,
            Step::RetryTimer => {
                if client.connected {
                    let mut effects = Effects::default();
                    client.protocol.resend_refused(&mut effects);
                    client.apply(effects, &mut server);
                }
            }
            Step::Restart => client.restart(&mut server),
        }
    }
    // Then the network and the store heal, and the client stays connected until all is quiet.
    server.store_fails = false;
    if !client.connected {
        client.connect(&mut server);
    }
    for _ in 0..10_000 {
        server.read(usize::MAX, true);
        if server.to_client.is_empty() {
            let mut effects = Effects::default();
            client.protocol.resend_refused(&mut effects);
            client.apply(effects, &mut server);
            if server.to_server.is_empty() {
                break;
            }
            continue;
        }
        let frames: Vec<_> = server.to_client.drain(..).collect();
        let mut effects = Effects::default();
        client.protocol.received(frames, &mut effects).expect("no end");
        client.apply(effects, &mut server);
    }
    (client, server, typed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any sequence of disconnects, store failures, retries and restarts: each typed message is stored once,
    /// shown as accepted once with the seq the server gave it, and leaves the outbox.
    #[test]
    fn each_outbox_message_is_accepted_once(steps in proptest::collection::vec(step(), 0..80)) {
        let (client, server, typed) = run(&steps);
        prop_assert_eq!(client.protocol.outbox_len(), 0);
        prop_assert!(client.saved_outbox.is_empty());
        for id in &typed {
            let stored = server.stored.get(id).map(|(_, seq)| *seq);
            prop_assert!(stored.is_some(), "typed but never stored");
            prop_assert_eq!(client.accepted.get(id).cloned().unwrap_or_default(), vec![stored.unwrap_or(0)]);
        }
    }

    /// Any interleaving of live deliveries (some dropped), read-backs that overlap them and reconnections: each
    /// conversation is shown in seq order, without a gap or a repeat, up to its latest message.
    #[test]
    fn every_conversation_is_shown_gap_free_in_order(steps in proptest::collection::vec(step(), 0..80)) {
        let (client, server, _) = run(&steps);
        for (conversation, log) in &server.log {
            let expected: Vec<u64> = (1..=log.len() as u64).collect();
            prop_assert_eq!(client.shown.get(conversation).cloned().unwrap_or_default(), expected);
            prop_assert_eq!(client.saved_cursors.get(conversation).copied(), Some(log.len() as u64));
        }
    }
}

/// The frames `commands` become on a connection of protocol `version`, and the events they raise.
fn requested(version: u16, commands: Vec<Command>) -> Effects {
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    let _ = protocol.connected(version, &[], None);
    let mut effects = Effects::default();
    for command in commands {
        protocol.request(command, &mut effects);
    }
    effects
}

fn awareness_commands() -> Vec<Command> {
    let lobby = room("lobby");
    vec![
        Command::SetAway("lunch".into()),
        Command::Whois(nick("bob")),
        Command::Typing { conversation: lobby.clone(), typing: true },
        Command::MarkRead { conversation: lobby, seq: 7 },
    ]
}

#[test]
fn away_whois_typing_and_read_markers_become_their_frames() {
    let effects = requested(AWARENESS_VERSION, awareness_commands());
    let lobby = room("lobby");
    assert_eq!(
        effects.frames,
        [
            ClientMsg::SetAway { message: "lunch".into() },
            ClientMsg::Whois { nick: "bob".into() },
            ClientMsg::Typing { conversation: lobby.clone(), typing: true },
            ClientMsg::MarkRead { conversation: lobby, seq: 7 },
        ]
    );
    assert!(effects.events.is_empty());
}

#[test]
fn a_server_older_than_version_6_is_asked_none_of_it_and_the_user_is_told_why() {
    let effects = requested(AWARENESS_VERSION - 1, awareness_commands());
    assert!(effects.frames.is_empty(), "{:?}", effects.frames);
    let said: Vec<&str> = effects
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Error { code: None, message, id: None } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    // Typing and read markers are not the user's requests: they go silently.
    assert_eq!(said, [NO_AWAY_MESSAGES, NO_WHOIS]);
    assert_eq!(NO_AWAY_MESSAGES, "this server does not know away messages");
    assert_eq!(NO_WHOIS, "this server does not know /whois");
}

#[test]
fn the_latest_away_message_set_offline_goes_out_on_connecting_to_a_server_that_knows_it() {
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    protocol.set_away_later("lunch".into());
    protocol.set_away_later(String::new());
    protocol.set_away_later("meeting".into());
    let effects = protocol.connected(AWARENESS_VERSION, &[], None);
    assert_eq!(effects.frames, [ClientMsg::SetAway { message: "meeting".into() }]);
    let again = protocol.connected(AWARENESS_VERSION, &[], None);
    assert!(again.frames.is_empty(), "sent once");

    let mut older = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    older.set_away_later("lunch".into());
    let effects = older.connected(AWARENESS_VERSION - 1, &[], None);
    assert!(effects.frames.is_empty());
    assert!(effects.events.iter().any(|e| matches!(e, Event::Error { message, .. } if message == NO_AWAY_MESSAGES)));
}

#[test]
fn away_whois_typing_and_read_markers_from_the_server_become_their_events() {
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    let _ = protocol.connected(AWARENESS_VERSION, &[], None);
    let lobby = room("lobby");
    let whois = WhoisInfo {
        nick: nick("bob"),
        registered_ms: 1,
        online: true,
        online_since_ms: Some(2),
        idle_ms: None,
        away: Some("lunch".into()),
        rooms: vec![RoomName::lobby()],
    };
    let marker = ReadMarker { conversation: lobby.clone(), nick: nick("bob"), seq: 4 };
    let frames = vec![
        ServerMsg::Away { nick: nick("bob"), message: Some("lunch".into()) },
        ServerMsg::Whois(whois.clone()),
        ServerMsg::Typing { conversation: lobby.clone(), nick: nick("bob"), typing: true },
        ServerMsg::ReadMarkers { markers: vec![marker.clone()] },
    ];
    let mut effects = Effects::default();
    protocol.received(frames, &mut effects).expect("no end");
    assert!(effects.frames.is_empty());
    assert!(
        matches!(
            &effects.events[..],
            [
                Event::Away { nick: away, message: Some(said) },
                Event::Whois(answer),
                Event::Typing { conversation, nick: typing, typing: true },
                Event::ReadMarkers(markers),
            ] if *away == nick("bob") && said == "lunch" && *answer == whois && *conversation == lobby
                && *typing == nick("bob") && *markers == [marker.clone()]
        ),
        "{:?}",
        effects.events
    );
}

#[test]
fn offline_an_away_message_waits_for_the_next_connection_and_typing_and_read_markers_are_dropped() {
    let mut protocol = Protocol::new(nick("ana"), VecDeque::new(), HashMap::new());
    let lobby = room("lobby");
    assert!(protocol.offline_request(Command::SetAway("lunch".into())).is_none());
    assert!(protocol.offline_request(Command::Typing { conversation: lobby.clone(), typing: true }).is_none());
    assert!(protocol.offline_request(Command::MarkRead { conversation: lobby.clone(), seq: 3 }).is_none());
    let refused = protocol.offline_request(Command::Whois(nick("bob")));
    assert!(
        matches!(refused, Some(Event::Error { code: None, message, id: None }) if message.starts_with("not connected"))
    );
    let effects = protocol.connected(AWARENESS_VERSION, &[info(&lobby, 0)], None);
    assert_eq!(effects.frames, [ClientMsg::SetAway { message: "lunch".into() }], "never queued: typing, markers");
}
