//! Read markers: "seen by", the "new messages" divider, unread counts following the user's other devices, and
//! the user's own marker sent (debounced, again after a reconnection).

use std::time::{Duration, Instant};

use palomar_proto::{
    AWARENESS_VERSION, ConversationInfo, Message, MessageId, MessageKind, ReadMarker, Revision, RoomName,
};
use palomar_testkit::nick;

use super::*;
use crate::engine::Event;
use crate::preferences::Preferences;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn garden() -> Conversation {
    Conversation::Room(RoomName::parse("garden").expect("valid"))
}

fn connected_at(version: u16) -> ChatModel {
    let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: [lobby(), garden()]
            .into_iter()
            .map(|conversation| ConversationInfo { conversation, latest_seq: 0, first_seq: 1 })
            .collect(),
        version,
    });
    model
}

fn delivered(conversation: &Conversation, seq: u64, from: &str, kind: MessageKind) -> Event {
    Event::Message {
        message: Message {
            conversation: conversation.clone(),
            seq,
            id: MessageId([seq as u8; 16]),
            from: nick(from),
            ts: seq,
            text: if matches!(kind, MessageKind::Reaction { .. }) { "👍".into() } else { format!("m{seq}") },
            kind,
            revision: Revision::Original,
        },
        own: from == "ana",
    }
}

fn marker(conversation: &Conversation, who: &str, seq: u64) -> ReadMarker {
    ReadMarker { conversation: conversation.clone(), nick: nick(who), seq }
}

fn mark_read(action: Option<Action>) -> Option<(Conversation, u64)> {
    match action {
        Some(Action::Engine(Command::MarkRead { conversation, seq })) => Some((conversation, seq)),
        _ => None,
    }
}

fn marks(actions: Vec<Action>) -> Vec<(Conversation, u64)> {
    actions.into_iter().filter_map(|action| mark_read(Some(action))).collect()
}

#[test]
fn seen_by_words_name_three_and_count_the_rest() {
    let nicks = ["ana", "bob", "cy", "dan", "eve", "fay", "gus"].map(nick);
    let first = |n: usize| nicks.iter().take(n).collect::<Vec<_>>();
    assert_eq!(seen_by_text(&first(0)), None);
    assert_eq!(seen_by_text(&first(1)).as_deref(), Some("seen by ana"));
    assert_eq!(seen_by_text(&first(2)).as_deref(), Some("seen by ana and bob"));
    assert_eq!(seen_by_text(&first(3)).as_deref(), Some("seen by ana, bob and cy"));
    assert_eq!(seen_by_text(&first(4)).as_deref(), Some("seen by ana, bob, cy and 1 other"));
    assert_eq!(seen_by_text(&first(7)).as_deref(), Some("seen by ana, bob, cy and 4 others"));
}

#[test]
fn seen_by_is_under_the_newest_line_at_each_marker_without_me_or_the_ignored_and_only_near_the_end() {
    let mut model = connected_at(AWARENESS_VERSION);
    for seq in 1..=30 {
        model.on_engine(delivered(&lobby(), seq, "bob", MessageKind::Text));
    }
    model.on_engine(delivered(&lobby(), 31, "cy", MessageKind::Reaction { of: 30, added: true }));
    model.on_engine(Event::ReadMarkers(vec![
        marker(&lobby(), "bob", 30),
        marker(&lobby(), "cy", 31),
        marker(&lobby(), "ana", 30),
        marker(&lobby(), "dan", 25),
        marker(&lobby(), "eve", 30),
        marker(&lobby(), "fay", 5),
    ]));
    let mut preferences = Preferences::default();
    preferences.ignored.insert(nick("eve"));
    model.set_preferences(preferences);
    let conv = model.current();
    assert_eq!(model.seen_by(conv, 30).as_deref(), Some("seen by bob and cy"), "a reaction is not a line");
    assert_eq!(model.seen_by(conv, 25).as_deref(), Some("seen by dan"));
    assert_eq!(model.seen_by(conv, 29), None);
    assert_eq!(model.seen_by(conv, 5), None, "older than the last 20 lines");
    assert_eq!(model.seen_by(conv, 31), None, "not a line");
}

#[test]
fn the_divider_is_placed_on_opening_stays_while_shown_and_goes_on_switching_away() {
    let mut model = connected_at(AWARENESS_VERSION);
    for seq in 1..=3 {
        model.on_engine(delivered(&garden(), seq, if seq == 3 { "ana" } else { "bob" }, MessageKind::Text));
    }
    model.on_engine(delivered(&garden(), 4, "bob", MessageKind::Text));
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "ana", 1)]));
    assert_eq!(model.convs[1].unread, 2, "2 and 4 are after the marker (3 is ours)");
    model.switch(1);
    assert_eq!(model.current().new_messages, Some(2));
    assert_eq!(NEW_MESSAGES, "new messages");
    // Read here, it stays while shown.
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "ana", 4)]));
    assert_eq!(model.current().new_messages, Some(2));
    model.switch(1);
    assert_eq!(model.current().new_messages, Some(2), "shown again (a /join of it): not moved");
    model.switch(0);
    assert_eq!(model.convs[1].new_messages, None, "gone on switching away");
    model.switch(1);
    assert_eq!(model.current().new_messages, None, "all read: none on coming back");
}

#[test]
fn the_divider_of_the_conversation_shown_at_start_follows_its_history_and_markers() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: lobby(),
        messages: (1..=3)
            .map(|seq| Message {
                conversation: lobby(),
                seq,
                id: MessageId([seq as u8; 16]),
                from: nick("bob"),
                ts: seq,
                text: "old".into(),
                kind: MessageKind::Text,
                revision: Revision::Original,
            })
            .collect(),
        complete_from: 1,
    }));
    model.on_engine(Event::ReadMarkers(vec![marker(&lobby(), "ana", 2)]));
    assert_eq!(model.current().new_messages, Some(3));
}

#[test]
fn unread_counts_follow_the_user_s_own_marker_moved_by_another_device() {
    let mut model = connected_at(AWARENESS_VERSION);
    for seq in 1..=5 {
        model.on_engine(delivered(&garden(), seq, "bob", MessageKind::Text));
    }
    assert_eq!(model.convs[1].unread, 5);
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "ana", 3)]));
    assert_eq!(model.convs[1].unread, 2);
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "bob", 5)]));
    assert_eq!(model.convs[1].unread, 2, "someone else's marker is theirs");
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "ana", 5)]));
    assert_eq!((model.convs[1].unread, model.convs[1].mentioned), (0, false));
    model.on_engine(Event::ReadMarkers(vec![marker(&garden(), "ana", 2)]));
    assert_eq!(model.convs[1].marker_of(&nick("ana")), 5, "markers only move forward");
}

#[test]
fn the_own_marker_is_sent_when_focused_at_the_newest_at_most_once_a_second() {
    let mut model = connected_at(AWARENESS_VERSION);
    let start = Instant::now();
    model.tick(start);
    assert_eq!(mark_read(model.read_tick(true, true)), None, "nothing to read");
    model.on_engine(delivered(&lobby(), 1, "bob", MessageKind::Text));
    assert_eq!(mark_read(model.read_tick(false, true)), None, "not focused");
    assert_eq!(mark_read(model.read_tick(true, false)), None, "not at the newest");
    assert_eq!(mark_read(model.read_tick(true, true)), Some((lobby(), 1)));
    assert_eq!(mark_read(model.read_tick(true, true)), None, "sent");
    model.on_engine(delivered(&lobby(), 2, "bob", MessageKind::Text));
    model.on_engine(delivered(&lobby(), 3, "bob", MessageKind::Text));
    model.tick(start + Duration::from_millis(999));
    assert_eq!(mark_read(model.read_tick(true, true)), None, "not twice in a second");
    model.tick(start + Duration::from_secs(1));
    assert_eq!(mark_read(model.read_tick(true, true)), Some((lobby(), 3)), "the newest after the second");

    let mut older = connected_at(AWARENESS_VERSION - 1);
    older.on_engine(delivered(&lobby(), 1, "bob", MessageKind::Text));
    assert_eq!(mark_read(older.read_tick(true, true)), None, "a server that keeps no markers");
    let mut offline = connected_at(AWARENESS_VERSION);
    offline.on_engine(delivered(&lobby(), 1, "bob", MessageKind::Text));
    offline.on_engine(Event::Disconnected {
        reason: "gone".into(),
        server: "127.0.0.1:5555".into(),
        retry_in: Duration::from_secs(1),
        attempt: 1,
        pending: 0,
        refused_for_now: false,
    });
    assert_eq!(mark_read(offline.read_tick(true, true)), None, "never while disconnected");
}

fn reconnect(model: &mut ChatModel) -> Vec<Action> {
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: Vec::new(),
        version: AWARENESS_VERSION,
    })
}

#[test]
fn after_reconnecting_a_marker_the_server_lost_is_sent_again() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.tick(Instant::now());
    model.on_engine(delivered(&lobby(), 4, "bob", MessageKind::Text));
    assert_eq!(mark_read(model.read_tick(true, true)), Some((lobby(), 4)));
    model.switch(1);
    model.on_engine(delivered(&garden(), 7, "bob", MessageKind::Text));
    assert_eq!(mark_read(model.read_tick(true, true)), Some((garden(), 7)));

    reconnect(&mut model);
    // The server's marker of the lobby is behind (a crash lost it): sent again at once.
    assert_eq!(marks(model.on_engine(Event::ReadMarkers(vec![marker(&lobby(), "ana", 2)]))), [(lobby(), 4)]);
    // The garden's was not mentioned at all (0 on the server): sent again once in sync.
    assert_eq!(marks(model.on_engine(Event::Synced)), [(garden(), 7)]);
    assert_eq!(marks(model.on_engine(Event::Synced)), [], "once");

    model.on_engine(Event::Left { room: RoomName::parse("garden").expect("valid") });
    reconnect(&mut model);
    assert_eq!(marks(model.on_engine(Event::Synced)), [(lobby(), 4)], "not for a room left");

    reconnect(&mut model);
    let confirmed = vec![marker(&lobby(), "ana", 4), marker(&garden(), "ana", 9)];
    assert_eq!(marks(model.on_engine(Event::ReadMarkers(confirmed))), []);
    assert_eq!(marks(model.on_engine(Event::Synced)), [], "the server has them");
}

#[test]
fn a_room_joined_asks_for_its_members_and_so_gets_their_markers() {
    let mut model = connected_at(AWARENESS_VERSION);
    let info = ConversationInfo {
        conversation: Conversation::Room(RoomName::parse("rust").expect("valid")),
        latest_seq: 0,
        first_seq: 1,
    };
    let actions = model.on_engine(Event::Joined { info });
    assert!(matches!(&actions[..], [Action::Engine(Command::Users { room })] if room == "rust"));
}

#[test]
fn with_read_receipts_off_nothing_is_sent_or_shown_but_the_divider_and_counts_follow_what_was_read_here() {
    let mut model = connected_at(AWARENESS_VERSION);
    let start = Instant::now();
    model.tick(start);
    assert!(matches!(&model.submit("/receipts off")[..], [Action::SavePreferences]));
    assert_eq!(model.current().entries.last().map(notice_text), Some(crate::preferences::RECEIPTS_OFF.into()));
    assert!(model.submit("/receipts off").is_empty(), "already off: nothing to save");
    model.on_engine(delivered(&lobby(), 1, "ana", MessageKind::Text));
    model.on_engine(Event::ReadMarkers(vec![marker(&lobby(), "bob", 1)]));
    assert_eq!(model.seen_by(model.current(), 1), None, "nobody's reading shown");
    model.on_engine(delivered(&lobby(), 2, "bob", MessageKind::Text));
    assert_eq!(mark_read(model.read_tick(true, true)), None, "nothing sent");
    // Read here all the same: opening the lobby again draws no divider above what was read.
    model.switch(1);
    model.switch(0);
    assert_eq!(model.current().new_messages, None);
    assert_eq!(marks(reconnect(&mut model)), []);
    assert_eq!(marks(model.on_engine(Event::Synced)), [], "and nothing sent again after a reconnection");

    // On again: the next marker read goes, from what was read meanwhile.
    model.on_engine(delivered(&lobby(), 3, "bob", MessageKind::Text));
    assert!(matches!(&model.submit("/receipts on")[..], [Action::SavePreferences]));
    model.tick(start + Duration::from_secs(2));
    assert_eq!(mark_read(model.read_tick(true, true)), Some((lobby(), 3)));
    assert_eq!(model.seen_by(model.current(), 1).as_deref(), Some("seen by bob"));
}

fn notice_text(entry: &Entry) -> String {
    match entry {
        Entry::Notice { text, .. } => text.clone(),
        _ => String::new(),
    }
}
