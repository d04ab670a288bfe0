//! Tests of the hub: session limits, the bounded queue and what it notes beside it, presence, account removals.

use super::*;
use palomar_proto::{MessageId, RoomChange};
use palomar_store::{DeletedDirect, NodeId};

use super::pending::MissedKinds;

/// Test accounts: the id is the nickname's first letter, so `ana` and a later `ana` can differ by `again`.
fn who(name: &str) -> Account {
    let first = name.bytes().next().map_or(0, i64::from);
    Account { id: AccountId(first), nick: Nick::parse(name).expect("valid") }
}

fn message(seq: u64) -> StoredMessage {
    StoredMessage {
        key: ConvKey::Room(RoomName::lobby()),
        seq,
        id: MessageId([0; 16]),
        from: who("ana").nick,
        ts: 0,
        text: "x".into(),
        kind: palomar_proto::MessageKind::Text,
        revision: palomar_proto::Revision::Original,
    }
}

fn hub(queue_len: usize) -> Arc<Hub> {
    Hub::new(HashMap::new(), queue_len, 8)
}

fn register(hub: &Hub, name: &str, rooms: Vec<(ConvId, RoomName)>) -> SessionLink {
    let account = who(name);
    let changes = hub.membership_changes(account.id);
    hub.register(&account, rooms, changes, true).expect("nothing changed meanwhile")
}

#[test]
fn a_session_whose_rooms_changed_while_it_read_them_reads_them_again() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let ana = who("ana");
    let phone = register(&hub, "ana", lobby.clone());
    let garden = RoomName::parse("garden").expect("valid");
    let seen = hub.membership_changes(ana.id);
    // The laptop read ana's rooms; then, before it registered, the phone joined a room.
    hub.joined(phone.id, &ana, ConvId(2), &garden, true, 0);
    assert_eq!(hub.register(&ana, lobby.clone(), seen, true).err(), Some(NotRegistered::MembershipsChanged));
    let seen = hub.membership_changes(ana.id);
    let laptop = hub.register(&ana, vec![(ConvId(1), RoomName::lobby()), (ConvId(2), garden.clone())], seen, true);
    assert!(laptop.is_ok(), "its second reading is current");
    // The same for a leave, even after the phone went offline.
    let seen = hub.membership_changes(ana.id);
    hub.left(phone.id, &ana, ConvId(2), &garden);
    hub.unregister(phone.id, &ana);
    assert!(hub.register(&ana, lobby, seen, true).is_err());
    assert!(hub.register(&who("bob"), vec![], 0, true).is_ok(), "counted per user");
}

#[test]
fn an_account_has_at_most_so_many_sessions() {
    let hub = Hub::new(HashMap::new(), 8, 2);
    let first = register(&hub, "ana", vec![]);
    register(&hub, "ana", vec![]);
    assert_eq!(hub.register(&who("ana"), vec![], 0, true).err(), Some(NotRegistered::TooManySessions(2)));
    assert!(hub.register(&who("bob"), vec![], 0, true).is_ok(), "counted per account");
    hub.unregister(first.id, &who("ana"));
    assert!(hub.register(&who("ana"), vec![], 0, true).is_ok(), "a place is given back when a session ends");
}

#[test]
fn a_full_queue_notes_what_it_dropped_instead_of_growing() {
    let hub = hub(2);
    let mut link = register(&hub, "bob", vec![(ConvId(1), RoomName::lobby())]);
    for seq in 1..=5 {
        hub.publish(ConvId(1), message(seq));
    }
    assert_eq!(link.pending.take_missed(), MissedKinds { messages: true, ..MissedKinds::default() });
    assert_eq!(link.pending.take_missed(), MissedKinds::default(), "taking clears it");
    assert_eq!(hub.latest(ConvId(1)), 5);
    let mut queued = 0;
    while link.rx.try_recv().is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 2);
}

#[test]
fn dropped_presence_is_noted_and_a_join_elsewhere_waits_beside_a_full_queue() {
    let hub = hub(1);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let ana = register(&hub, "ana", lobby.clone());
    let other_ana = register(&hub, "ana", lobby.clone());
    register(&hub, "bob", lobby.clone());
    register(&hub, "carol", lobby);
    hub.announce_arrival(&who("bob"), None);
    hub.announce_arrival(&who("carol"), None);
    assert_eq!(other_ana.pending.take_missed(), MissedKinds { presence: true, ..MissedKinds::default() });
    let garden = RoomName::parse("garden").expect("valid");
    hub.joined(ana.id, &who("ana"), ConvId(2), &garden, true, 7);
    hub.left(ana.id, &who("ana"), ConvId(2), &garden);
    let changes: Vec<_> = other_ana.pending.take_changes().into_iter().collect();
    let join = Change::Joined { conv: ConvId(2), room: garden.clone(), joined_after: 7 };
    assert_eq!(changes, vec![join, Change::Left { conv: ConvId(2), room: garden }]);
    assert!(ana.pending.take_changes().is_empty(), "not told of its own join");
}

#[test]
fn changes_that_pile_up_beside_a_session_give_way_to_reading_the_store() {
    let hub = hub(8);
    let phone = register(&hub, "ana", vec![]);
    let stuck = register(&hub, "ana", vec![]);
    for n in 0..10 * MAX_CHANGES_BESIDE as i64 {
        let room = RoomName::parse(&format!("r{n}")).expect("valid");
        hub.joined(phone.id, &who("ana"), ConvId(10 + n), &room, true, 0);
    }
    assert!(stuck.pending.take_changes().len() <= MAX_CHANGES_BESIDE);
    assert!(stuck.pending.take_missed().conversations, "told to read its conversations again");
}

#[test]
fn presence_goes_to_the_others_in_the_room() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let mut ana = register(&hub, "ana", lobby.clone());
    let bob = register(&hub, "bob", lobby.clone());
    let second_bob = register(&hub, "bob", lobby);
    assert!(ana.rx.try_recv().is_err(), "not announced before a session of bob has lasted");
    hub.announce_arrival(&who("bob"), None);
    hub.announce_arrival(&who("bob"), None);
    match ana.rx.try_recv() {
        Ok(Live::Presence { nick, state: PresenceState::Online, .. }) => assert_eq!(nick, who("bob").nick),
        other => panic!("expected bob online, got {other:?}"),
    }
    assert!(ana.rx.try_recv().is_err(), "a second session is not a second arrival");
    hub.unregister(bob.id, &who("bob"));
    assert!(ana.rx.try_recv().is_err(), "bob still has a session");
    hub.unregister(second_bob.id, &who("bob"));
    assert!(matches!(ana.rx.try_recv(), Ok(Live::Presence { state: PresenceState::Offline, .. })));
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick]);
}

#[test]
fn a_short_visit_is_not_announced_at_all() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let mut ana = register(&hub, "ana", lobby.clone());
    let script = register(&hub, "bob", lobby);
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick, who("bob").nick], "online at once for member lists");
    hub.unregister(script.id, &who("bob"));
    hub.announce_arrival(&who("bob"), None);
    assert!(ana.rx.try_recv().is_err(), "neither its arrival nor its departure");
}

#[test]
fn a_removed_account_is_told_to_leave_and_its_peers_to_forget_their_conversations_with_it() {
    let hub = hub(8);
    let ana = register(&hub, "ana", vec![]);
    let bob = register(&hub, "bob", vec![]);
    let carol = register(&hub, "carol", vec![]);
    hub.account_removed(&Removed {
        account: who("ana"),
        deleted_directs: vec![DeletedDirect { conversation: ConvId(5), peer: who("bob") }],
    });
    assert!(ana.pending.take_missed().account_removed);
    let changes: Vec<_> = bob.pending.take_changes().into_iter().collect();
    assert_eq!(changes, vec![Change::DirectDeleted { conv: ConvId(5), peer: who("ana").nick }]);
    assert_eq!(carol.pending.take_missed(), MissedKinds::default());
    assert!(carol.pending.take_changes().is_empty());
}

#[test]
fn a_suspended_account_is_told_to_leave_and_nobody_else() {
    let hub = hub(8);
    let ana = register(&hub, "ana", vec![]);
    let bob = register(&hub, "bob", vec![]);
    assert!(hub.account_suspended(who("ana").id));
    assert_eq!(ana.pending.take_missed(), MissedKinds { account_suspended: true, ..MissedKinds::default() });
    assert_eq!(bob.pending.take_missed(), MissedKinds::default());
    assert!(!hub.account_suspended(who("carol").id), "no sessions here");
}

#[test]
fn a_moderators_change_reaches_the_rooms_online_members_and_a_kicked_one_leaves_after_hearing_it() {
    let hub = hub(8);
    let (tx, rx) = std::sync::mpsc::channel();
    hub.tell_peers_through(tx);
    let garden = RoomName::parse("garden").expect("valid");
    let in_garden = vec![(ConvId(2), garden.clone())];
    let ana = register(&hub, "ana", in_garden.clone());
    let mut bob = register(&hub, "bob", in_garden);
    let carol = register(&hub, "carol", vec![(ConvId(1), RoomName::lobby())]);
    let kicked = RoomChange::Kicked { nick: who("bob").nick, reason: "spam".into() };
    hub.room_changed(ConvId(2), &garden, Some(&who("ana").nick), &kicked, Some(41));
    hub.removed_from_room(&who("bob"), ConvId(2), &garden);
    let told = Change::Room { conv: ConvId(2), room: garden.clone(), by: Some(who("ana").nick), change: kicked };
    assert_eq!(Vec::from(ana.pending.take_changes()), vec![told.clone()], "the moderator hears it too");
    assert_eq!(
        Vec::from(bob.pending.take_changes()),
        vec![told, Change::Left { conv: ConvId(2), room: garden.clone() }],
        "the change first, then the leaving"
    );
    assert!(carol.pending.take_changes().is_empty(), "not in the room");
    assert!(presence_seen(&mut bob).is_empty());
    assert_eq!(hub.online_in(ConvId(2)), vec![who("ana").nick]);
    let notices: Vec<Notice> = rx.try_iter().collect();
    assert_eq!(
        notices,
        vec![
            Notice::Moderated { conv: ConvId(2), room: garden.clone(), audit: 41 },
            Notice::Left { conv: ConvId(2), room: garden.clone(), account: who("bob") },
        ],
        "other nodes hear of it in the same order"
    );
    hub.invited(who("carol").id, &garden, None);
    assert_eq!(Vec::from(carol.pending.take_changes()), vec![Change::Invited { room: garden, by: None }]);
}

// ---- several nodes on one store

const OTHER: NodeId = NodeId(7);
const THIRD: NodeId = NodeId(8);

fn presence_seen(link: &mut SessionLink) -> Vec<(Nick, PresenceState)> {
    let mut seen = Vec::new();
    while let Ok(item) = link.rx.try_recv() {
        if let Live::Presence { nick, state, .. } = item {
            seen.push((nick, state));
        }
    }
    seen
}

#[test]
fn a_user_online_on_other_nodes_is_shown_once_and_gone_when_the_last_of_them_goes() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let mut ana = register(&hub, "ana", lobby.clone());
    let bob = who("bob");
    hub.heard(OTHER, Notice::Online { account: bob.clone() }, lobby.clone());
    hub.heard(THIRD, Notice::Online { account: bob.clone() }, lobby.clone());
    assert_eq!(presence_seen(&mut ana), vec![(bob.nick.clone(), PresenceState::Online)], "one arrival");
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick, bob.nick.clone()], "in the member list");

    // A session of bob here too, which lasts and then ends: he is still online on the other nodes.
    let here = register(&hub, "bob", lobby.clone());
    hub.announce_arrival(&bob, None);
    hub.unregister(here.id, &bob);
    assert!(presence_seen(&mut ana).is_empty(), "neither a second arrival nor a departure");
    assert_eq!(hub.online_in(ConvId(1)).len(), 2);

    hub.heard(OTHER, Notice::Offline { account: bob.id }, vec![]);
    assert!(presence_seen(&mut ana).is_empty(), "still online on the third node");
    hub.heard(THIRD, Notice::Offline { account: bob.id }, vec![]);
    assert_eq!(presence_seen(&mut ana), vec![(bob.nick, PresenceState::Offline)]);
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick]);
}

#[test]
fn the_users_of_a_node_that_stopped_beating_are_shown_offline() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let mut ana = register(&hub, "ana", lobby.clone());
    hub.heard(OTHER, Notice::Online { account: who("bob") }, lobby.clone());
    hub.heard(THIRD, Notice::Online { account: who("carol") }, lobby.clone());
    // Carol reconnected here before her node's death was noticed: she stays online.
    register(&hub, "carol", lobby);
    hub.announce_arrival(&who("carol"), None);
    presence_seen(&mut ana);
    hub.peers_alive(&[]);
    assert_eq!(presence_seen(&mut ana), vec![(who("bob").nick, PresenceState::Offline)]);
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick, who("carol").nick]);
}

#[test]
fn a_join_on_another_node_reaches_the_users_sessions_here_and_the_rooms_members() {
    let hub = hub(8);
    let garden = RoomName::parse("garden").expect("valid");
    let mut bob = register(&hub, "bob", vec![(ConvId(2), garden.clone())]);
    let ana_here = register(&hub, "ana", vec![(ConvId(1), RoomName::lobby())]);
    let ana = who("ana");
    let joined =
        Notice::Joined { conv: ConvId(2), room: garden.clone(), account: ana.clone(), newly: true, joined_after: 40 };
    hub.heard(OTHER, joined, vec![]);
    assert_eq!(presence_seen(&mut bob), vec![(ana.nick.clone(), PresenceState::Joined)]);
    let changes: Vec<Change> = ana_here.pending.take_changes().into_iter().collect();
    assert_eq!(changes, vec![Change::Joined { conv: ConvId(2), room: garden.clone(), joined_after: 40 }]);
    let mut ana_here = ana_here;
    hub.publish(ConvId(2), StoredMessage { key: ConvKey::Room(garden.clone()), ..message(41) });
    assert!(matches!(ana_here.rx.try_recv(), Ok(Live::Message(_))), "her session here follows the room");

    hub.heard(OTHER, Notice::Left { conv: ConvId(2), room: garden, account: ana.clone() }, vec![]);
    assert_eq!(presence_seen(&mut bob), vec![(ana.nick, PresenceState::Left)]);
    assert_eq!(hub.online_in(ConvId(2)), vec![who("bob").nick]);
}

#[test]
fn what_happens_here_is_told_to_the_other_nodes() {
    let hub = hub(8);
    let (tx, rx) = std::sync::mpsc::channel();
    hub.tell_peers_through(tx);
    let ana = who("ana");
    let garden = RoomName::parse("garden").expect("valid");
    let short = register(&hub, "ana", vec![]);
    hub.unregister(short.id, &ana);
    assert!(rx.try_recv().is_err(), "a short visit is not told");
    let session = register(&hub, "ana", vec![]);
    hub.announce_arrival(&ana, None);
    hub.joined(session.id, &ana, ConvId(2), &garden, true, 3);
    hub.left(session.id, &ana, ConvId(2), &garden);
    hub.unregister(session.id, &ana);
    let told: Vec<Notice> = rx.try_iter().collect();
    assert_eq!(
        told,
        vec![
            Notice::Online { account: ana.clone() },
            Notice::Joined {
                conv: ConvId(2),
                room: garden.clone(),
                account: ana.clone(),
                newly: true,
                joined_after: 3
            },
            Notice::Left { conv: ConvId(2), room: garden, account: ana.clone() },
            Notice::Offline { account: ana.id },
        ]
    );
    assert_eq!(hub.announced_here(), vec![]);
}

#[test]
fn catching_up_with_the_peers_brings_presence_and_seqs_to_the_database_and_rereads_every_session() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let mut ana = register(&hub, "ana", lobby.clone());
    hub.heard(OTHER, Notice::Online { account: who("bob") }, lobby.clone());
    presence_seen(&mut ana);
    hub.catch_up_with_peers(vec![(THIRD, who("carol"), lobby)], vec![(ConvId(1), 12)]);
    assert_eq!(hub.online_in(ConvId(1)), vec![who("ana").nick, who("carol").nick]);
    assert_eq!(hub.latest(ConvId(1)), 12);
    let missed = ana.pending.take_missed();
    assert!(missed.messages && missed.presence && missed.conversations, "{missed:?}");
}

/// Everything waiting in a session's queue.
fn drain(link: &mut SessionLink) -> Vec<Live> {
    std::iter::from_fn(|| link.rx.try_recv().ok()).collect()
}

#[test]
fn an_away_message_reaches_the_users_sessions_and_each_room_mate_once() {
    let hub = hub(8);
    let (lobby, garden) = ((ConvId(1), RoomName::lobby()), (ConvId(2), RoomName::parse("garden").expect("valid")));
    let mut ana = register(&hub, "ana", vec![lobby.clone(), garden.clone()]);
    let mut ana_phone = register(&hub, "ana", vec![lobby.clone(), garden.clone()]);
    let mut bob = register(&hub, "bob", vec![lobby.clone(), garden.clone()]);
    let mut dan = register(&hub, "dan", vec![]);
    hub.away_changed(&who("ana"), Some("lunch".into()));
    let away = |items: Vec<Live>| -> Vec<Option<String>> {
        items
            .into_iter()
            .filter_map(|item| if let Live::Away { message, .. } = item { Some(message) } else { None })
            .collect()
    };
    assert_eq!(away(drain(&mut ana)), [Some("lunch".to_owned())], "her own sessions, even before she is shown");
    assert_eq!(away(drain(&mut ana_phone)), [Some("lunch".to_owned())]);
    assert!(away(drain(&mut bob)).is_empty(), "not shown online yet: her arrival brings it");

    hub.announce_arrival(&who("ana"), Some("lunch".into()));
    assert_eq!(away(drain(&mut bob)), [Some("lunch".to_owned())], "after her arrival, once for two rooms");
    hub.away_changed(&who("ana"), None);
    assert_eq!(away(drain(&mut bob)), [None], "once for two rooms");
    assert!(drain(&mut dan).is_empty(), "no room in common");
}

#[test]
fn typing_goes_to_the_other_members_never_to_the_typist_and_a_full_queue_drops_it_unnoted() {
    let hub = hub(1);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let key = ConvKey::Room(RoomName::lobby());
    let mut ana = register(&hub, "ana", lobby.clone());
    let mut bob = register(&hub, "bob", lobby.clone());
    let mut carol = register(&hub, "carol", vec![]);
    hub.typing(ConvId(1), &key, &who("ana"), true, true);
    assert!(drain(&mut ana).is_empty(), "not to herself");
    assert!(drain(&mut carol).is_empty(), "not to someone outside the room");
    assert!(matches!(&drain(&mut bob)[..], [Live::Typing { typing: true, .. }]));

    hub.typing(ConvId(1), &key, &who("ana"), true, true);
    hub.typing(ConvId(1), &key, &who("ana"), false, true);
    assert_eq!(bob.pending.take_missed(), MissedKinds::default(), "a dropped typing notice is not read back");
    let direct = ConvKey::direct(who("ana"), who("carol"));
    hub.typing(ConvId(3), &direct, &who("ana"), true, true);
    assert!(matches!(&drain(&mut carol)[..], [Live::Typing { key, .. }] if *key == direct), "the peer of a direct");
}

#[test]
fn a_moved_read_marker_reaches_the_readers_sessions_and_the_room_and_a_full_queue_notes_it() {
    let hub = hub(1);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let key = ConvKey::Room(RoomName::lobby());
    let mut ana = register(&hub, "ana", lobby.clone());
    let mut ana_phone = register(&hub, "ana", lobby.clone());
    let mut bob = register(&hub, "bob", lobby.clone());
    hub.read_marker_moved(ConvId(1), &key, &who("ana"), 4, true);
    for link in [&mut ana, &mut ana_phone, &mut bob] {
        assert!(matches!(&drain(link)[..], [Live::ReadMarker { seq: 4, .. }]));
    }
    hub.read_marker_moved(ConvId(1), &key, &who("ana"), 5, true);
    hub.read_marker_moved(ConvId(1), &key, &who("ana"), 6, true);
    let missed = bob.pending.take_missed();
    assert!(missed.awareness && missed.presence, "read back with the room's members: {missed:?}");
}

#[test]
fn whois_knows_since_when_a_user_is_shown_online_and_its_last_message_since() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let ana = register(&hub, "ana", lobby);
    assert_eq!(hub.shown_online(who("ana").id, &who("ana").nick), None, "not shown before her arrival");
    let before = palomar_proto::unix_ms();
    hub.announce_arrival(&who("ana"), None);
    let shown = hub.shown_online(who("ana").id, &who("ana").nick).expect("shown");
    assert!(shown.since_ms >= before);
    assert_eq!(shown.last_message_ms, None, "nothing sent since");
    hub.publish(ConvId(1), StoredMessage { ts: shown.since_ms + 5, ..message(1) });
    let shown = hub.shown_online(who("ana").id, &who("ana").nick).expect("shown");
    assert_eq!(shown.last_message_ms, Some(shown.since_ms + 5));
    hub.unregister(ana.id, &who("ana"));
    assert_eq!(hub.shown_online(who("ana").id, &who("ana").nick), None);
}

#[test]
fn a_session_of_an_older_client_is_sent_nothing_of_version_6() {
    let hub = hub(8);
    let lobby = vec![(ConvId(1), RoomName::lobby())];
    let key = ConvKey::Room(RoomName::lobby());
    register(&hub, "ana", lobby.clone());
    let changes = hub.membership_changes(who("bob").id);
    let mut old_bob = hub.register(&who("bob"), lobby, changes, false).expect("registers");
    hub.announce_arrival(&who("ana"), Some("lunch".into()));
    hub.away_changed(&who("ana"), None);
    hub.typing(ConvId(1), &key, &who("ana"), true, true);
    hub.read_marker_moved(ConvId(1), &key, &who("ana"), 3, true);
    hub.publish(ConvId(1), message(1));
    let items = drain(&mut old_bob);
    assert!(matches!(&items[..], [Live::Presence { .. }, Live::Message(_)]), "{items:?}");
}
