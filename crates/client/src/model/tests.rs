//! Tests of the chat model: pending and accepted messages, unread counts and mentions, commands, history
//! paging, presence across reconnects, and nickname colours.

use palomar_proto::{ConversationInfo, Message, MessageId, PresenceState};
use palomar_testkit::nick;

use super::*;
use crate::engine::Event;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn message(seq: u64, from: &str, text: &str) -> Event {
    let message = Message {
        conversation: lobby(),
        seq,
        id: MessageId([seq as u8; 16]),
        from: nick(from),
        ts: seq,
        text: text.into(),
        kind: palomar_proto::MessageKind::Text,
        revision: palomar_proto::Revision::Original,
    };
    Event::Message { message, own: from == "ana" }
}

fn connected() -> ChatModel {
    let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
    let conversations = [lobby(), garden]
        .into_iter()
        .map(|conversation| ConversationInfo { conversation, latest_seq: 0, first_seq: 1 })
        .collect();
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations,
    });
    model
}

#[test]
fn an_own_message_is_pending_until_accepted_and_shown_once() {
    let mut model = connected();
    let actions = model.submit("hello");
    assert!(matches!(&actions[..], [Action::Engine(Command::Send { text, .. })] if text == "hello"));
    let id = MessageId([7; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), text: "hello".into() });
    let pending = |model: &ChatModel| match &model.current().entries[..] {
        [Entry::Message(m)] => m.is_pending(),
        other => panic!("one message expected: {other:?}"),
    };
    assert!(pending(&model));
    model.on_engine(Event::Accepted { id, conversation: lobby(), seq: 1, ts: 5 });
    assert!(!pending(&model));
    let echo = Message {
        conversation: lobby(),
        seq: 1,
        id,
        from: nick("ana"),
        ts: 5,
        text: "hello".into(),
        kind: palomar_proto::MessageKind::Text,
        revision: palomar_proto::Revision::Original,
    };
    model.on_engine(Event::Message { message: echo, own: true });
    assert!(!pending(&model));
}

#[test]
fn a_message_typed_offline_keeps_when_it_was_typed() {
    let mut model = connected();
    model.clock = || 1_000;
    let id = MessageId([7; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), text: "typed offline".into() });
    let shown = |model: &ChatModel| match &model.current().entries[..] {
        [Entry::Message(m)] => (m.ts, m.typed, m.typed_long_before()),
        other => panic!("one message expected: {other:?}"),
    };
    assert_eq!(shown(&model), (1_000, Some(1_000), None), "while pending, the time it was typed");
    model.on_engine(Event::Accepted { id, conversation: lobby(), seq: 1, ts: 301_000 });
    assert_eq!(shown(&model), (301_000, Some(1_000), Some(1_000)), "stored five minutes later: both");
    let echo = Message {
        conversation: lobby(),
        seq: 1,
        id,
        from: nick("ana"),
        ts: 301_000,
        text: "x".into(),
        kind: palomar_proto::MessageKind::Text,
        revision: palomar_proto::Revision::Original,
    };
    model.on_engine(Event::Message { message: echo, own: true });
    assert_eq!(shown(&model).1, Some(1_000), "kept when our copy comes back");
}

#[test]
fn unread_counts_and_mentions_in_other_conversations() {
    let mut model = connected();
    model.switch(1);
    assert!(matches!(&model.on_engine(message(1, "bob", "ana: lunch?"))[..], [Action::Alert]));
    assert!(model.on_engine(message(2, "bob", "anyone?")).is_empty());
    assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (2, true));
    model.switch(0);
    assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (0, false));
}

#[test]
fn commands_switch_conversations_and_mistakes_become_notices() {
    let mut model = connected();
    assert!(model.submit("/msg bob").is_empty());
    assert_eq!(model.current().id, Conversation::Direct(nick("bob")));
    let actions = model.submit("/join #garden");
    assert!(matches!(&actions[..], [Action::Engine(Command::Join { room })] if room == "garden"));
    assert_eq!(model.current, 1, "garden is already a conversation: shown at once");
    assert!(model.submit("/join no way").is_empty());
    assert!(matches!(model.current().entries.last(), Some(Entry::Notice { alert: true, text, .. })
        if text.starts_with("/join ROOM:")));
}

#[test]
fn leaving_a_room_removes_it_and_fetching_older_asks_once() {
    let mut model = connected();
    model.switch(1);
    assert!(matches!(&model.submit("/leave")[..], [Action::Engine(Command::Leave { room })] if room == "garden"));
    model.on_engine(Event::Left { room: RoomName::parse("garden").expect("valid") });
    assert_eq!((model.convs.len(), model.current), (1, 0));
    let Event::Message { message: ten, .. } = message(10, "bob", "ten") else { unreachable!("a message") };
    let page = palomar_proto::HistoryPage { conversation: lobby(), messages: vec![ten], complete_from: 1 };
    model.on_engine(Event::History(page));
    assert!(matches!(model.fetch_older(), Some(Action::Engine(Command::History { before: Some(10), .. }))));
    assert!(model.fetch_older().is_none(), "one request at a time");
}

#[test]
fn a_history_page_that_only_repeats_live_messages_does_not_end_the_history() {
    let mut model = connected();
    // Asked for while the view was still empty, answered after the catch-up brought the same messages.
    model.fetch_older();
    let live: Vec<Message> = (71..=120)
        .map(|seq| match message(seq, "bob", "catching up") {
            Event::Message { message, .. } => message,
            _ => unreachable!("a message"),
        })
        .collect();
    for message in &live {
        model.on_engine(Event::Message { message: message.clone(), own: false });
    }
    let page = palomar_proto::HistoryPage { conversation: lobby(), messages: live, complete_from: 1 };
    model.on_engine(Event::History(page));
    assert!(!model.current().history_done, "messages 1 to 70 are still to fetch");
    assert!(matches!(model.fetch_older(), Some(Action::Engine(Command::History { before: Some(71), .. }))));
    let empty = palomar_proto::HistoryPage { conversation: lobby(), messages: Vec::new(), complete_from: 1 };
    model.on_engine(Event::History(empty));
    assert!(model.current().history_done, "an empty page is the beginning");
}

fn gone() -> Event {
    let server = "127.0.0.1:5555".into();
    Event::Disconnected {
        reason: "gone".into(),
        server,
        retry_in: TICK,
        attempt: 1,
        pending: 0,
        refused_for_now: false,
    }
}

#[test]
fn the_node_in_use_is_followed_and_a_move_to_another_is_said() {
    let mut model = ChatModel::new(nick("ana"), "10.0.0.1:5555".into());
    assert_eq!(model.node, "10.0.0.1:5555", "the chat's name until the engine says more");
    model.on_engine(Event::Connecting { server: "10.0.0.2:5555".into(), attempt: 0 });
    assert_eq!(model.node, "10.0.0.2:5555", "the address being tried");
    let welcomed = |server: &str| Event::Connected {
        server: server.into(),
        nick: nick("ana"),
        registered: false,
        conversations: Vec::new(),
    };
    model.on_engine(welcomed("10.0.0.2:5555"));
    model.on_engine(gone());
    model.on_engine(welcomed("10.0.0.2:5555"));
    model.on_engine(gone());
    model.on_engine(welcomed("10.0.0.3:5555"));
    assert_eq!((model.server.as_str(), model.node.as_str()), ("10.0.0.1:5555", "10.0.0.3:5555"));
    let said: Vec<&str> = notices(&model).into_iter().filter(|text| text.starts_with("reconnected")).collect();
    assert_eq!(said, ["reconnected as ana", "reconnected as ana, now through 10.0.0.3:5555"]);
}

fn notices(model: &ChatModel) -> Vec<&str> {
    model.convs[0]
        .entries
        .iter()
        .filter_map(|e| if let Entry::Notice { text, .. } = e { Some(text.as_str()) } else { None })
        .collect()
}

#[test]
fn an_arrival_missed_while_disconnected_is_not_announced_twice() {
    let mut model = connected();
    model.switch(1);
    let erin = |state| Event::Presence { room: RoomName::lobby(), nick: nick("erin"), state };
    model.on_engine(erin(PresenceState::Online));
    // The server died without a word about erin; both came back, and the server announced her again.
    let disconnected = gone();
    model.on_engine(disconnected);
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: Vec::new(),
    });
    model.on_engine(erin(PresenceState::Online));
    assert_eq!(notices(&model), ["erin is online"]);
    model.on_engine(erin(PresenceState::Offline));
    model.on_engine(erin(PresenceState::Online));
    assert_eq!(notices(&model), ["erin is online", "erin went offline", "erin is online"]);
}

#[test]
fn members_are_known_only_while_connected() {
    let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    assert!(!model.members_known(), "not before the first connection");
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: Vec::new(),
    });
    assert!(model.members_known());
    let disconnected = gone();
    model.on_engine(disconnected);
    assert!(!model.members_known());
    model.on_engine(Event::Connecting { server: "127.0.0.1:5555".into(), attempt: 1 });
    assert!(!model.members_known());
}

#[test]
fn a_typed_history_request_says_what_it_fetches_and_what_came() {
    let mut model = connected();
    let last_notice = |model: &ChatModel| match model.current().entries.last() {
        Some(Entry::Notice { text, .. }) => text.clone(),
        other => panic!("a notice expected: {other:?}"),
    };
    let empty = palomar_proto::HistoryPage { conversation: lobby(), messages: Vec::new(), complete_from: 1 };
    model.on_engine(Event::History(empty.clone()));
    assert!(model.current().entries.is_empty(), "the first page, asked for at login, says nothing");
    let actions = model.submit("/history 3");
    assert!(matches!(&actions[..], [Action::Engine(Command::History { limit: 3, .. })]), "{actions:?}");
    assert_eq!(last_notice(&model), "fetching 3 older messages…");
    assert!(model.submit("/history 3").is_empty());
    assert_eq!(last_notice(&model), "older messages are already on their way");
    let messages = (1..=2)
        .map(|seq| match message(seq, "bob", "old") {
            Event::Message { message, .. } => message,
            _ => unreachable!("a message"),
        })
        .collect();
    model.on_engine(Event::History(palomar_proto::HistoryPage { conversation: lobby(), messages, complete_from: 1 }));
    assert_eq!(last_notice(&model), "2 older messages came");
    model.submit("/history");
    model.on_engine(Event::History(empty.clone()));
    assert_eq!(last_notice(&model), "no older messages");
    let before = model.current().entries.len();
    model.fetch_older();
    model.on_engine(Event::History(empty));
    assert_eq!(model.current().entries.len(), before, "scrolling back says nothing");
}

#[test]
fn colours_are_stable_and_in_range() {
    assert_eq!(nick_colour(&nick("ana"), 10), nick_colour(&nick("ana"), 10));
    assert!((0..100).all(|i| nick_colour(&nick(&format!("n{i}")), 7) < 7));
}

fn garden() -> RoomName {
    RoomName::parse("garden").expect("valid")
}

fn room_event(by: Option<&str>, change: palomar_proto::RoomChange) -> Event {
    Event::RoomEvent { room: garden(), by: by.map(nick), change }
}

fn last_notice(conv: &Conv) -> Option<(&str, bool)> {
    conv.entries.iter().rev().find_map(|entry| match entry {
        Entry::Notice { text, alert, .. } => Some((text.as_str(), *alert)),
        Entry::Message(_) => None,
    })
}

#[test]
fn room_events_become_notices_in_people_s_words() {
    use palomar_proto::{Role, RoomChange};

    let mut model = connected();
    let cases = [
        (
            Some("ana"),
            RoomChange::Kicked { nick: nick("bob"), reason: "spamming".into() },
            "bob was kicked by you: spamming",
        ),
        (Some("eve"), RoomChange::Kicked { nick: nick("bob"), reason: String::new() }, "bob was kicked by eve"),
        (
            None,
            RoomChange::Banned { nick: nick("bob"), reason: "spam".into() },
            "bob was banned by the server's operator: spam",
        ),
        (Some("eve"), RoomChange::Unbanned { nick: nick("bob") }, "eve lifted bob's ban"),
        (
            Some("eve"),
            RoomChange::Muted { nick: nick("bob"), reason: "calm down".into() },
            "bob is muted by eve: calm down",
        ),
        (
            Some("eve"),
            RoomChange::Muted { nick: nick("ana"), reason: String::new() },
            "you are muted in #garden by eve",
        ),
        (Some("eve"), RoomChange::Unmuted { nick: nick("bob") }, "eve unmuted bob"),
        (Some("eve"), RoomChange::RoleSet { nick: nick("bob"), role: Role::Voice }, "eve gave bob voice"),
        (Some("eve"), RoomChange::RoleSet { nick: nick("ana"), role: Role::Moderator }, "eve made you a moderator"),
        (Some("eve"), RoomChange::RoleSet { nick: nick("bob"), role: Role::Member }, "eve made bob a member"),
        (Some("eve"), RoomChange::Invited { nick: nick("bob") }, "eve invited bob to #garden"),
        (Some("eve"), RoomChange::Topic { text: "seeds and weeds".into() }, "eve set the topic: seeds and weeds"),
        (Some("eve"), RoomChange::Topic { text: String::new() }, "eve cleared the topic"),
        (Some("eve"), RoomChange::InviteOnly(true), "eve made #garden invite-only"),
        (Some("eve"), RoomChange::InviteOnly(false), "eve opened #garden to everyone"),
        (Some("eve"), RoomChange::Moderated(true), "eve made #garden moderated: only voiced members speak"),
        (Some("eve"), RoomChange::Moderated(false), "eve ended moderation of #garden: everyone speaks"),
    ];
    for (by, change, said) in cases {
        model.on_engine(room_event(by, change));
        assert_eq!(last_notice(&model.convs[1]), Some((said, false)));
    }
    assert!(model.convs[0].entries.is_empty(), "told in the room, not elsewhere");
}

#[test]
fn being_put_out_of_a_room_is_told_where_the_user_is_once_the_room_is_gone() {
    use palomar_proto::RoomChange;

    let mut model = connected();
    model.switch(1);
    let banned = RoomChange::Banned { nick: nick("ana"), reason: "trolling".into() };
    model.on_engine(room_event(Some("eve"), banned));
    let said = "you were banned from #garden by eve: trolling";
    assert_eq!(last_notice(&model.convs[1]), Some((said, true)));
    model.on_engine(Event::Left { room: garden() });
    assert_eq!((model.convs.len(), model.current), (1, 0));
    assert_eq!(last_notice(model.current()), Some((said, true)));
}

#[test]
fn the_room_state_is_kept_and_its_topic_shown_by_slash_topic() {
    use palomar_proto::{Role, RoomState};

    let mut model = connected();
    model.switch(1);
    model.submit("/topic");
    assert_eq!(last_notice(model.current()), Some(("#garden has no topic", false)));
    let state = RoomState {
        room: garden(),
        topic: "seeds".into(),
        invite_only: true,
        moderated: false,
        role: Role::Voice,
        muted: true,
        operator: false,
    };
    model.on_engine(Event::RoomState(state.clone()));
    assert_eq!(model.current().topic(), Some("seeds"));
    assert_eq!(model.current().room_state.as_ref(), Some(&state));
    assert_eq!(standing_text(&state).as_deref(), Some("voice · muted · invite-only"));
    model.submit("/topic");
    assert_eq!(last_notice(model.current()), Some(("the topic of #garden: seeds", false)));
    model.on_engine(Event::RoomState(RoomState { topic: String::new(), ..state.clone() }));
    assert_eq!(model.current().topic(), None, "an empty topic is none");

    // The server restates a room's state after a login only where it is not the defaults: a mute lifted while
    // we were away must not stay shown.
    model.on_engine(Event::RoomState(state.clone()));
    let info = ConversationInfo { conversation: Conversation::Room(garden()), latest_seq: 0, first_seq: 1 };
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: vec![info.clone()],
    });
    assert_eq!(model.current().room_state, None, "back to the defaults until told otherwise");
    model.on_engine(Event::RoomState(state));
    model.on_engine(Event::Joined { info });
    assert_eq!(model.current().room_state, None, "a join is followed by the room's state");
}

#[test]
fn moderation_commands_act_on_the_room_shown_and_not_in_a_direct_conversation() {
    use palomar_proto::RoomAction;

    let mut model = connected();
    model.switch(1);
    let actions = model.submit("/kick bob spam");
    assert!(
        matches!(&actions[..], [Action::Engine(Command::Moderate { room, action: RoomAction::Kick { nick, reason } })]
            if *room == garden() && nick == "bob" && reason == "spam"),
        "{actions:?}"
    );
    assert!(matches!(
        &model.submit("/moderated on")[..],
        [Action::Engine(Command::Moderate { action: RoomAction::Moderated(true), .. })]
    ));
    model.submit("/msg bob");
    assert!(model.submit("/op carol").is_empty());
    assert_eq!(
        last_notice(model.current()),
        Some(("moderation commands work in a room; this is a direct conversation", true))
    );
    assert!(model.submit("/topic").is_empty());
    assert_eq!(last_notice(model.current()), Some(("/topic works in a room; this is a direct conversation", true)));
}

#[test]
fn an_invitation_is_told_here_and_a_refused_message_leaves_its_conversation() {
    let mut model = connected();
    let actions = model.on_engine(Event::Invited { room: garden(), by: Some(nick("eve")) });
    assert!(matches!(&actions[..], [Action::Alert]));
    assert_eq!(last_notice(model.current()), Some(("you were invited to #garden by eve — /join garden", false)));

    let id = MessageId([9; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), text: "hello".into() });
    let refused = Event::Error {
        code: Some(palomar_proto::ErrorCode::NotAllowed),
        message: "you are muted in #lobby".into(),
        id: Some(id),
    };
    model.on_engine(refused);
    assert!(!model.current().entries.iter().any(|entry| matches!(entry, Entry::Message(_))), "no longer pending");
    assert_eq!(last_notice(model.current()), Some(("not sent: you are muted in #lobby", true)));
}

#[test]
fn slash_list_asks_for_a_page_of_rooms_and_the_listing_is_told_where_the_user_is() {
    use palomar_proto::RoomListing;

    let mut model = connected();
    assert!(matches!(&model.submit("/list")[..], [Action::Engine(Command::ListRooms { after: None })]));
    assert!(matches!(
        &model.submit("/list #garden")[..],
        [Action::Engine(Command::ListRooms { after: Some(after) })] if *after == garden()
    ));
    assert!(model.submit("/list no way").is_empty());
    assert!(matches!(last_notice(model.current()), Some((text, true)) if text.starts_with("/list [ROOM]:")));

    let lobby_entries = model.convs[0].entries.len();
    model.switch(1);
    let listing = |room: &str, members, topic: &str, invite_only| RoomListing {
        room: RoomName::parse(room).expect("valid"),
        members,
        topic: topic.into(),
        invite_only,
    };
    let rooms = vec![listing("garden", 3, "Seeds", true), listing("kitchen", 1, "", false)];
    model.on_engine(Event::Rooms { rooms, more: true });
    let notices: Vec<(&str, bool)> = model
        .current()
        .entries
        .iter()
        .rev()
        .take(3)
        .rev()
        .filter_map(|entry| match entry {
            Entry::Notice { text, alert, .. } => Some((text.as_str(), *alert)),
            Entry::Message(_) => None,
        })
        .collect();
    assert_eq!(
        notices,
        [
            ("#garden  3 members  invite-only  Seeds", false),
            ("#kitchen  1 member", false),
            ("more rooms after #kitchen: /list kitchen shows the next ones", false),
        ]
    );
    model.on_engine(Event::Rooms { rooms: vec![listing("lobby", 2, "say\nhello", false)], more: false });
    assert_eq!(last_notice(model.current()), Some(("#lobby  2 members  say hello", false)), "one line, no more");
    model.on_engine(Event::Rooms { rooms: Vec::new(), more: false });
    assert_eq!(last_notice(model.current()), Some(("there are no rooms to list", false)));
    assert_eq!(model.convs[0].entries.len(), lobby_entries, "told in the conversation shown only");
}
