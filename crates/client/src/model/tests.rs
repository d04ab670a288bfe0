//! Tests of the chat model: pending and accepted messages, unread counts and mentions, commands, history
//! paging, presence across reconnects, and nickname colours.

use palomar_proto::{ConversationInfo, Message, MessageId, MessageKind, PresenceState, Revision};
use palomar_testkit::nick;

use super::*;
use crate::engine::Event;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn message(seq: u64, from: &str, text: &str) -> Event {
    entry(seq, from, MessageKind::Text, Revision::Original, text)
}

/// Entry `seq` of the lobby, of any kind, as the server delivers it.
fn stored(seq: u64, from: &str, kind: MessageKind, revision: Revision, text: &str) -> Message {
    Message {
        conversation: lobby(),
        seq,
        id: MessageId([seq as u8; 16]),
        from: nick(from),
        ts: seq,
        text: text.into(),
        kind,
        revision,
    }
}

fn entry(seq: u64, from: &str, kind: MessageKind, revision: Revision, text: &str) -> Event {
    Event::Message { message: stored(seq, from, kind, revision, text), own: from == "ana" }
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
        version: palomar_proto::AWARENESS_VERSION,
    });
    model
}

#[test]
fn an_own_message_is_pending_until_accepted_and_shown_once() {
    let mut model = connected();
    let actions = model.submit("hello");
    assert!(matches!(&actions[..], [Action::Engine(Command::Send { text, .. })] if text == "hello"));
    let id = MessageId([7; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), kind: MessageKind::Text, text: "hello".into() });
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
    model.on_engine(Event::Queued { id, to: lobby(), kind: MessageKind::Text, text: "typed offline".into() });
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
    assert!(matches!(&model.on_engine(message(1, "bob", "ana: lunch?"))[..], [Action::Alert(_)]));
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
        version: palomar_proto::AWARENESS_VERSION,
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
        version: palomar_proto::AWARENESS_VERSION,
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
        version: palomar_proto::AWARENESS_VERSION,
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
        version: palomar_proto::AWARENESS_VERSION,
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

fn direct(seq: u64, from: &str, text: &str) -> Event {
    let message = Message {
        conversation: Conversation::Direct(nick(from)),
        ..stored(seq, from, MessageKind::Text, Revision::Original, text)
    };
    Event::Message { message, own: false }
}

fn alerts(actions: &[Action]) -> Vec<Alert> {
    actions
        .iter()
        .filter_map(|action| if let Action::Alert(alert) = action { Some(alert.clone()) } else { None })
        .collect()
}

#[test]
fn a_direct_message_a_mention_and_a_highlight_word_alert_with_who_and_what() {
    let mut model = connected();
    let alert = |title: &str, body: &str| Alert { title: title.into(), body: body.into() };
    assert_eq!(alerts(&model.on_engine(direct(1, "bob", "psst\nmore"))), [alert("bob (direct)", "psst")]);
    assert_eq!(alerts(&model.on_engine(message(1, "bob", "ana: lunch?"))), [alert("bob in #lobby", "ana: lunch?")]);
    assert!(model.on_engine(message(2, "bob", "the deploy is done")).is_empty());
    assert_eq!(model.submit("/highlight Deploy").len(), 1, "saved");
    assert_eq!(
        alerts(&model.on_engine(message(3, "carol", "DEPLOY again"))),
        [alert("carol in #lobby", "DEPLOY again")]
    );
    let long = "x".repeat(300);
    let body = &alerts(&model.on_engine(message(4, "bob", &format!("ana {long}"))))[0].body;
    assert_eq!(body.chars().count(), 201, "cut, with …");
    // A reaction, an edit or our own message never alerts.
    assert!(
        model
            .on_engine(entry(5, "bob", MessageKind::Reaction { of: 1, added: true }, Revision::Original, "👍"))
            .is_empty()
    );
    assert!(model.on_engine(message(6, "ana", "ana ana")).is_empty());
}

#[test]
fn a_silenced_conversation_counts_but_never_alerts() {
    let mut model = connected();
    model.switch(1);
    assert!(matches!(&model.submit("/silence #lobby")[..], [Action::SavePreferences]));
    assert!(model.is_silenced(&lobby()));
    assert_eq!(
        last_notice(model.current()),
        Some(("silenced #lobby: no notifications from it (/unsilence to undo)", false))
    );
    assert!(model.on_engine(message(1, "bob", "ana: lunch?")).is_empty());
    assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (1, true));
    assert!(model.submit("/silence lobby").is_empty(), "nothing new to save");
    assert_eq!(last_notice(model.current()), Some(("#lobby is already silenced", false)));
    model.submit("/silence @bob");
    assert!(model.on_engine(direct(1, "bob", "psst")).is_empty());
    model.submit("/unsilence #lobby");
    assert_eq!(alerts(&model.on_engine(message(2, "bob", "ana?"))).len(), 1);
}

#[test]
fn an_ignored_nick_is_hidden_uncounted_and_silent_until_unignored() {
    let mut model = connected();
    model.on_engine(message(1, "bob", "hello"));
    model.on_engine(message(2, "carol", "hi bob"));
    model.on_engine(entry(3, "bob", MessageKind::Reaction { of: 2, added: true }, Revision::Original, "👍"));
    model.on_engine(entry(4, "dave", MessageKind::Reaction { of: 2, added: true }, Revision::Original, "👍"));
    assert!(matches!(&model.submit("/ignore bob")[..], [Action::SavePreferences]));
    let drawn = |model: &ChatModel| -> Vec<String> {
        model.convs[0]
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Message(m) if m.is_drawn() => Some(m.text.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(drawn(&model), ["hi bob"]);
    assert_eq!(model.convs[0].quote(1), Quote::Ignored);
    assert_eq!(
        model.convs[0].message(2).expect("here").reactions[0].by,
        [nick("dave")],
        "bob's reaction is not counted"
    );
    model.switch(1);
    assert!(model.on_engine(message(5, "bob", "ana! ana!")).is_empty());
    assert!(model.on_engine(direct(1, "bob", "psst")).is_empty());
    assert_eq!((model.convs[0].unread, model.convs[0].mentioned), (0, false));
    // /reply and /react without #SEQ skip what is not shown.
    assert_eq!(model.convs[0].latest_not_of(&nick("ana")), Some(2));
    assert!(model.submit("/ignore ana").is_empty());
    assert_eq!(last_notice(model.current()), Some(("you cannot ignore yourself", true)));
    model.submit("/ignore");
    assert_eq!(last_notice(model.current()), Some(("ignoring: bob", false)));
    assert!(matches!(&model.submit("/unignore bob")[..], [Action::SavePreferences]));
    assert_eq!(drawn(&model), ["hello", "hi bob", "ana! ana!"]);
    assert_eq!(model.convs[0].message(2).expect("here").reactions[0].by, [nick("bob"), nick("dave")]);
}

#[test]
fn preferences_given_at_start_apply_to_what_arrives() {
    let mut model = connected();
    let mut preferences = crate::preferences::Preferences::default();
    preferences.ignored.insert(nick("bob"));
    preferences.highlights.insert("deploy".into());
    model.set_preferences(preferences);
    model.on_engine(message(1, "bob", "hello"));
    assert!(!matches!(&model.convs[0].entries[..], [Entry::Message(m)] if m.is_drawn()));
    assert_eq!(alerts(&model.on_engine(message(2, "carol", "deploy?"))).len(), 1);
}

#[test]
fn an_invitation_is_told_here_and_a_refused_message_leaves_its_conversation() {
    let mut model = connected();
    let actions = model.on_engine(Event::Invited { room: garden(), by: Some(nick("eve")) });
    assert!(matches!(&actions[..], [Action::Alert(_)]));
    assert_eq!(last_notice(model.current()), Some(("you were invited to #garden by eve — /join garden", false)));

    let id = MessageId([9; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), kind: MessageKind::Text, text: "hello".into() });
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

fn listing(room: &str, members: u32, topic: &str, invite_only: bool) -> palomar_proto::RoomListing {
    palomar_proto::RoomListing {
        room: RoomName::parse(room).expect("valid"),
        members,
        topic: topic.into(),
        invite_only,
    }
}

fn asked_rooms(actions: &[Action]) -> Option<Option<RoomName>> {
    match actions {
        [Action::Engine(Command::ListRooms { after })] => Some(after.clone()),
        _ => None,
    }
}

fn browsed(model: &ChatModel) -> Vec<&str> {
    model.rooms.iter().flat_map(|browser| &browser.rooms).map(|listing| listing.room.as_str()).collect()
}

#[test]
fn the_listing_is_kept_page_after_page_and_the_next_page_starts_after_its_last_room() {
    let mut model = connected();
    model.rooms_as_notices = false;
    let before = notices(&model).len();
    assert_eq!(asked_rooms(&model.submit("/list")), Some(None));
    assert!(model.rooms.as_ref().is_some_and(|browser| browser.pending && !browser.answered));
    assert!(model.more_rooms().is_empty(), "nothing to go on from while the first page is on its way");

    model.on_engine(Event::Rooms {
        rooms: vec![listing("garden", 3, "Seeds", true), listing("kitchen", 1, "", false)],
        more: true,
    });
    let browser = model.rooms.clone().expect("kept");
    assert_eq!((browser.more, browser.pending, browser.answered), (true, false, true));
    assert_eq!(browser.rooms[0], listing("garden", 3, "Seeds", true));
    assert_eq!(asked_rooms(&model.more_rooms()), Some(Some(RoomName::parse("kitchen").expect("valid"))));
    assert!(model.rooms.as_ref().is_some_and(|browser| browser.pending));
    model.on_engine(Event::Rooms { rooms: vec![listing("lobby", 2, "", false)], more: false });
    assert_eq!(browsed(&model), ["garden", "kitchen", "lobby"], "the pages together, in the server's order");
    assert!(model.more_rooms().is_empty(), "no rooms after the last");
    assert_eq!(notices(&model).len(), before, "the window shows the rooms itself");

    // `/list ROOM` typed goes on from the listing's last room, or starts a listing there.
    assert_eq!(asked_rooms(&model.submit("/list lobby")), Some(Some(RoomName::lobby())));
    model.on_engine(Event::Rooms { rooms: vec![listing("zoo", 1, "", false)], more: false });
    assert_eq!(browsed(&model), ["garden", "kitchen", "lobby", "zoo"]);
    model.submit("/list kitchen");
    model.on_engine(Event::Rooms { rooms: vec![listing("lobby", 2, "", false)], more: true });
    assert_eq!(browsed(&model), ["lobby"]);
    assert_eq!(model.rooms.as_ref().and_then(|browser| browser.from.as_ref()).map(RoomName::as_str), Some("kitchen"));

    // The first page asked again while the next one is on its way: only the first page's answer counts.
    model.submit("/list");
    model.on_engine(Event::Rooms { rooms: vec![listing("garden", 3, "", false)], more: true });
    model.more_rooms();
    model.list_rooms(None);
    model.on_engine(Event::Rooms { rooms: vec![listing("kitchen", 1, "", false)], more: true });
    assert!(model.rooms.as_ref().is_some_and(|browser| browser.pending && browser.rooms.is_empty()));
    model.on_engine(Event::Rooms { rooms: vec![listing("garden", 4, "", false)], more: false });
    assert_eq!(browsed(&model), ["garden"]);
    assert_eq!(model.rooms.as_ref().map(|browser| browser.rooms[0].members), Some(4));

    model.on_engine(Event::Rooms { rooms: Vec::new(), more: false });
    assert_eq!(browsed(&model), ["garden"], "a page nobody waits for changes nothing");
}

#[test]
fn a_listing_cut_off_by_the_disconnection_is_no_longer_pending_and_none_is_asked_offline() {
    let mut model = connected();
    model.rooms_as_notices = false;
    model.list_rooms(None);
    model.on_engine(gone());
    assert!(model.rooms.as_ref().is_some_and(|browser| !browser.pending && !browser.answered));
    assert!(model.list_rooms(None).is_empty(), "not connected");
    assert_eq!(notices(&model).last(), Some(&"not connected: list the rooms once reconnected"));
    assert!(model.submit("/list").is_empty());

    let mut model = connected();
    model.list_rooms(None);
    model.list_rooms(None);
    model.on_engine(gone());
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: true,
        conversations: Vec::new(),
        version: palomar_proto::AWARENESS_VERSION,
    });
    model.list_rooms(None);
    model.on_engine(Event::Rooms { rooms: vec![listing("garden", 1, "", false)], more: false });
    assert_eq!(browsed(&model), ["garden"], "the answers asked before the disconnection are not waited for");
    assert_eq!(notices(&model).last(), Some(&"#garden  1 member"), "the terminal is told as before");
}

/// The lines the lobby shows: seq, how it reads (`* nick text` for an action, the deleted placeholder), and
/// the edited mark.
fn shown(model: &ChatModel) -> Vec<(Option<u64>, String, bool)> {
    model.convs[0]
        .entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Message(m) if m.is_shown() => {
                let text = match m.deleted_text() {
                    Some(placeholder) => placeholder,
                    None if m.is_action() => format!("* {} {}", m.from, m.text),
                    None => m.text.clone(),
                };
                Some((m.seq, text, m.is_edited()))
            }
            _ => None,
        })
        .collect()
}

fn line(seq: u64, text: &str, edited: bool) -> (Option<u64>, String, bool) {
    (Some(seq), text.to_owned(), edited)
}

#[test]
fn an_action_reads_as_its_author_doing_it_and_slash_me_sends_one() {
    let mut model = connected();
    model.on_engine(entry(1, "bob", MessageKind::Action, Revision::Original, "waves"));
    assert_eq!(shown(&model), [line(1, "* bob waves", false)]);
    let actions = model.submit("/me waves back");
    assert!(
        matches!(&actions[..], [Action::Engine(Command::Send { kind: MessageKind::Action, text, to })]
            if text == "waves back" && *to == lobby()),
        "{actions:?}"
    );
    assert!(model.submit("/me").is_empty());
    assert!(matches!(model.current().entries.last(), Some(Entry::Notice { alert: true, text, .. })
        if text == "/me TEXT: the text is missing"));
}

#[test]
fn an_edit_changes_its_message_and_marks_it_without_a_line_of_its_own() {
    let mut model = connected();
    model.switch(1);
    model.on_engine(message(1, "bob", "helo"));
    model.on_engine(entry(2, "bob", MessageKind::Edit { of: 1 }, Revision::Original, "hello"));
    model.on_engine(entry(3, "bob", MessageKind::Edit { of: 1 }, Revision::Original, "hello, ana"));
    assert_eq!(shown(&model), [line(1, "hello, ana", true)]);
    assert_eq!(model.convs[0].unread, 1, "an edit is not news of its own");
    assert!(!model.convs[0].mentioned, "nor a mention");
}

#[test]
fn a_deletion_leaves_a_placeholder_that_says_who_and_why_when_it_is_not_the_author_s_plain_one() {
    let mut model = connected();
    model.on_engine(message(1, "bob", "oops"));
    model.on_engine(entry(2, "bob", MessageKind::Edit { of: 1 }, Revision::Original, "oops!"));
    model.on_engine(message(3, "bob", "buy pills"));
    model.on_engine(message(4, "carol", "typo"));
    model.on_engine(message(5, "dan", "hi"));
    model.on_engine(entry(6, "bob", MessageKind::Deletion { of: 1 }, Revision::Original, ""));
    model.on_engine(entry(7, "ana", MessageKind::Deletion { of: 3 }, Revision::Original, "spam"));
    model.on_engine(entry(8, "ana", MessageKind::Deletion { of: 4 }, Revision::Original, ""));
    model.on_engine(entry(9, "dan", MessageKind::Deletion { of: 5 }, Revision::Original, "wrong room"));
    assert_eq!(
        shown(&model),
        [
            line(1, "(deleted)", false),
            line(3, "(deleted by ana: spam)", false),
            line(4, "(deleted by ana)", false),
            line(5, "(deleted by dan: wrong room)", false),
        ]
    );
}

#[test]
fn a_catch_up_in_seq_order_ends_with_the_latest_text_and_a_deleted_message_s_edits_vanish() {
    let mut model = connected();
    // What the server sends after its entries changed: the original already edited (or deleted), then the
    // entries themselves.
    model.on_engine(entry(1, "bob", MessageKind::Text, Revision::Edited, "third"));
    model.on_engine(entry(2, "bob", MessageKind::Edit { of: 1 }, Revision::Original, "second"));
    model.on_engine(entry(3, "bob", MessageKind::Edit { of: 1 }, Revision::Original, "third"));
    model.on_engine(entry(4, "carol", MessageKind::Text, Revision::Deleted, ""));
    model.on_engine(entry(5, "carol", MessageKind::Edit { of: 4 }, Revision::Deleted, ""));
    model.on_engine(entry(6, "carol", MessageKind::Deletion { of: 4 }, Revision::Original, ""));
    assert_eq!(shown(&model), [line(1, "third", true), line(4, "(deleted)", false)]);
}

#[test]
fn a_message_that_comes_already_changed_shows_it_and_an_older_page_does_not_undo_a_newer_edit() {
    let mut model = connected();
    model.on_engine(entry(10, "bob", MessageKind::Edit { of: 2 }, Revision::Original, "newest"));
    model.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: lobby(),
        messages: vec![
            stored(1, "carol", MessageKind::Text, Revision::Deleted, ""),
            stored(2, "bob", MessageKind::Text, Revision::Edited, "newest"),
            stored(3, "bob", MessageKind::Edit { of: 2 }, Revision::Original, "older"),
        ],
        complete_from: 1,
    }));
    assert_eq!(shown(&model), [line(1, "(deleted)", false), line(2, "newest", true)]);
    assert_eq!(model.current().oldest_seq(), Some(1));
}

#[test]
fn slash_edit_and_slash_delete_find_the_message_they_mean_or_say_why_not() {
    let mut model = connected();
    let refused = |model: &mut ChatModel, line: &str| -> String {
        assert!(model.submit(line).is_empty(), "{line}: nothing sent");
        match model.current().entries.last() {
            Some(Entry::Notice { alert: true, text, .. }) => text.clone(),
            other => panic!("{line}: an alert expected, got {other:?}"),
        }
    };
    assert_eq!(refused(&mut model, "/edit fixed"), "no message of yours here to edit");
    assert_eq!(refused(&mut model, "/delete"), "no message of yours here to delete");
    model.on_engine(message(1, "ana", "first"));
    model.on_engine(entry(2, "ana", MessageKind::Action, Revision::Original, "waves"));
    model.on_engine(message(3, "bob", "spam"));
    model.on_engine(message(4, "ana", "gone"));
    model.on_engine(entry(5, "ana", MessageKind::Deletion { of: 4 }, Revision::Original, ""));
    let sent = |model: &mut ChatModel, line: &str| match &model.submit(line)[..] {
        [Action::Engine(Command::Send { to, kind, text })] if *to == lobby() => (*kind, text.clone()),
        other => panic!("{line}: one post expected, got {other:?}"),
    };
    assert_eq!(sent(&mut model, "/edit waves hello"), (MessageKind::Edit { of: 2 }, "waves hello".into()));
    assert_eq!(sent(&mut model, "/edit #1 first!"), (MessageKind::Edit { of: 1 }, "first!".into()));
    assert_eq!(sent(&mut model, "/edit #99 not here"), (MessageKind::Edit { of: 99 }, "not here".into()));
    assert_eq!(sent(&mut model, "/delete"), (MessageKind::Deletion { of: 2 }, String::new()));
    assert_eq!(sent(&mut model, "/delete bob spam"), (MessageKind::Deletion { of: 3 }, "spam".into()));
    assert_eq!(sent(&mut model, "/delete #1 dup"), (MessageKind::Deletion { of: 1 }, "dup".into()));
    assert_eq!(refused(&mut model, "/edit #3 mine now"), "#3 is bob's message: only your own can be edited");
    assert_eq!(refused(&mut model, "/edit #4 back"), "#4 is deleted");
    assert_eq!(refused(&mut model, "/edit #5 x"), "#5 is an edit, a deletion or a reaction, not a message");
    assert_eq!(refused(&mut model, "/delete #4"), "#4 is deleted already");
    assert_eq!(refused(&mut model, "/delete carol"), "no message of carol's here to delete; /delete #SEQ names one");
    assert_eq!(refused(&mut model, "/edit #x y"), "/edit [#SEQ] TEXT: #SEQ is a message's number, as in #41");
}

#[test]
fn a_pending_edit_is_not_a_line_and_applies_once_stored_or_vanishes_when_refused() {
    let mut model = connected();
    model.on_engine(message(1, "ana", "helo"));
    let (edit, deletion) = (MessageId([20; 16]), MessageId([21; 16]));
    model.on_engine(Event::Queued { id: edit, to: lobby(), kind: MessageKind::Edit { of: 1 }, text: "hello".into() });
    assert_eq!(shown(&model), [line(1, "helo", false)]);
    model.on_engine(Event::Accepted { id: edit, conversation: lobby(), seq: 2, ts: 2 });
    assert_eq!(shown(&model), [line(1, "hello", true)]);
    let queued =
        Event::Queued { id: deletion, to: lobby(), kind: MessageKind::Deletion { of: 1 }, text: String::new() };
    model.on_engine(queued);
    model.on_engine(Event::Error {
        code: Some(palomar_proto::ErrorCode::NotAllowed),
        message: "not yours".into(),
        id: Some(deletion),
    });
    assert_eq!(shown(&model), [line(1, "hello", true)]);
    assert!(model.current().entries.iter().all(|e| !matches!(e, Entry::Message(m) if m.is_pending())));
    assert!(!notices(&model).iter().any(|text| text.contains("once reconnected")), "connected: no need to say");

    model.on_engine(gone());
    let later = MessageId([22; 16]);
    model.on_engine(Event::Queued { id: later, to: lobby(), kind: MessageKind::Edit { of: 1 }, text: "hi".into() });
    assert_eq!(notices(&model).last(), Some(&"your edit of #1 goes out once reconnected"));
}

/// The reactions to message `seq` of the lobby as `emoji nick,nick`.
fn reactions_of(model: &ChatModel, seq: u64) -> Vec<String> {
    let message = model.current().message(seq).expect("loaded");
    message
        .reactions
        .iter()
        .map(|r| format!("{} {}", r.emoji, r.by.iter().map(Nick::as_str).collect::<Vec<_>>().join(",")))
        .collect()
}

#[test]
fn reactions_are_counted_per_message_in_seq_order_and_vanish_with_it() {
    let mut model = connected();
    let react = |of, added| MessageKind::Reaction { of, added };
    model.on_engine(message(1, "bob", "lunch?"));
    model.on_engine(entry(2, "carol", react(1, true), Revision::Original, "🎉"));
    model.on_engine(entry(3, "dan", react(1, true), Revision::Original, "👍"));
    model.on_engine(entry(4, "carol", react(1, true), Revision::Original, "👍"));
    model.on_engine(entry(5, "dan", react(1, false), Revision::Original, "👍"));
    assert_eq!(reactions_of(&model, 1), ["👍 carol", "🎉 carol"], "in the fixed order of the eight");
    assert_eq!(shown(&model), [line(1, "lunch?", false)], "a reaction is no line of its own");
    assert_eq!(model.current().unread, 0);

    // Our own shows at once, and a click on it again takes it back.
    let sent = |model: &mut ChatModel, line: &str| match &model.submit(line)[..] {
        [Action::Engine(Command::Send { kind, text, .. })] => (*kind, text.clone()),
        other => panic!("{line}: one post expected, got {other:?}"),
    };
    assert_eq!(sent(&mut model, "/react +1"), (react(1, true), "👍".into()));
    let id = MessageId([30; 16]);
    model.on_engine(Event::Queued { id, to: lobby(), kind: react(1, true), text: "👍".into() });
    assert_eq!(reactions_of(&model, 1), ["👍 carol,ana", "🎉 carol"]);
    model.on_engine(Event::Accepted { id, conversation: lobby(), seq: 6, ts: 6 });
    assert_eq!(reactions_of(&model, 1), ["👍 carol,ana", "🎉 carol"], "counted once");
    assert_eq!(sent(&mut model, "/react #1 👍"), (react(1, false), "👍".into()));

    // Refused: it leaves the count.
    let refused = MessageId([31; 16]);
    model.on_engine(Event::Queued { id: refused, to: lobby(), kind: react(1, true), text: "👀".into() });
    assert_eq!(reactions_of(&model, 1), ["👍 carol,ana", "🎉 carol", "👀 ana"]);
    model.on_engine(Event::Error {
        code: Some(palomar_proto::ErrorCode::NotAllowed),
        message: "you reacted 👀 to #1 already".into(),
        id: Some(refused),
    });
    assert_eq!(reactions_of(&model, 1), ["👍 carol,ana", "🎉 carol"]);

    model.on_engine(entry(7, "bob", MessageKind::Deletion { of: 1 }, Revision::Original, ""));
    assert!(reactions_of(&model, 1).is_empty(), "a deleted message has none");
}

#[test]
fn a_reaction_seen_before_its_message_applies_when_an_older_page_brings_it() {
    let mut model = connected();
    model.on_engine(entry(5, "carol", MessageKind::Reaction { of: 2, added: true }, Revision::Original, "❤\u{fe0f}"));
    model.on_engine(entry(6, "dan", MessageKind::Reaction { of: 2, added: true }, Revision::Deleted, ""));
    model.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: lobby(),
        messages: vec![stored(2, "bob", MessageKind::Text, Revision::Original, "hi")],
        complete_from: 1,
    }));
    assert_eq!(reactions_of(&model, 2), ["❤\u{fe0f} carol"], "a blanked reaction counts for nothing");
}

#[test]
fn a_reply_that_an_older_page_brings_takes_the_edit_and_reactions_already_here() {
    let mut model = connected();
    model.on_engine(entry(8, "bob", MessageKind::Edit { of: 3 }, Revision::Original, "yes!"));
    model.on_engine(entry(9, "carol", MessageKind::Reaction { of: 3, added: true }, Revision::Original, "👀"));
    model.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: lobby(),
        messages: vec![
            stored(2, "carol", MessageKind::Text, Revision::Original, "lunch?"),
            stored(3, "bob", MessageKind::Reply { of: 2 }, Revision::Original, "yes"),
        ],
        complete_from: 1,
    }));
    assert_eq!(shown(&model), [line(2, "lunch?", false), line(3, "yes!", true)]);
    assert_eq!(reactions_of(&model, 3), ["👀 carol"]);
}

#[test]
fn a_reply_quotes_its_message_and_calls_its_author() {
    let mut model = connected();
    model.on_engine(message(1, "ana", "lunch at noon?\nor later"));
    model.on_engine(message(2, "bob", &"x".repeat(100)));
    model.on_engine(Event::Message {
        message: stored(3, "bob", MessageKind::Reply { of: 1 }, Revision::Original, "yes"),
        own: false,
    });
    model.on_engine(entry(4, "carol", MessageKind::Reply { of: 2 }, Revision::Original, "no"));
    model.on_engine(entry(5, "carol", MessageKind::Reply { of: 99 }, Revision::Original, "what?"));
    assert_eq!(
        shown(&model),
        [
            line(1, "lunch at noon?\nor later", false),
            line(2, &"x".repeat(100), false),
            line(3, "yes", false),
            line(4, "no", false),
            line(5, "what?", false)
        ]
    );
    let conv = model.current();
    assert_eq!(conv.message(3).and_then(MessageEntry::reply_to), Some(1));
    assert_eq!(conv.quote(1), Quote::Message { from: nick("ana"), line: "lunch at noon?…".into() });
    assert_eq!(conv.quote(2), Quote::Message { from: nick("bob"), line: format!("{}…", "x".repeat(QUOTE_CHARS)) });
    assert_eq!(conv.quote(99), Quote::NotHere);
    assert!(conv.message(3).is_some_and(|m| m.mention), "an answer to ana calls her");
    assert!(conv.message(4).is_some_and(|m| !m.mention));

    let sent = |model: &mut ChatModel, line: &str| match &model.submit(line)[..] {
        [Action::Engine(Command::Send { kind, text, .. })] => (*kind, text.clone()),
        other => panic!("{line}: one post expected, got {other:?}"),
    };
    assert_eq!(sent(&mut model, "/reply sure"), (MessageKind::Reply { of: 5 }, "sure".into()), "the latest not ours");
    assert_eq!(sent(&mut model, "/reply #1 me too"), (MessageKind::Reply { of: 1 }, "me too".into()));
    model.on_engine(entry(6, "bob", MessageKind::Deletion { of: 2 }, Revision::Original, ""));
    assert_eq!(model.current().quote(2), Quote::Deleted);
    assert!(model.submit("/reply #2 hm").is_empty());
    assert!(model.submit("/react #6 +1").is_empty());
    assert_eq!(notices(&model).last(), Some(&"#6 is an edit, a deletion or a reaction, not a message"));
}

#[test]
fn slash_jump_brings_a_loaded_message_or_fetches_older_pages_until_it_comes() {
    let mut model = connected();
    let page = |seqs: std::ops::RangeInclusive<u64>, complete_from| {
        let messages =
            seqs.map(|seq| stored(seq, "bob", MessageKind::Text, Revision::Original, &format!("m{seq}"))).collect();
        Event::History(palomar_proto::HistoryPage { conversation: lobby(), messages, complete_from })
    };
    // The page asked for on connecting.
    model.on_engine(page(600..=700, 1));
    model.on_engine(entry(701, "carol", MessageKind::Reaction { of: 650, added: true }, Revision::Original, "👍"));
    assert!(model.submit("/jump #650").is_empty());
    assert_eq!(model.take_jump(), Some(650));
    assert_eq!(model.take_jump(), None, "taken once");
    let refused = |model: &mut ChatModel, line: &str| {
        assert!(model.submit(line).is_empty(), "{line}");
        assert_eq!(model.take_jump(), None, "{line}");
        notices(model).last().map(|notice| notice.to_string()).unwrap_or_default()
    };
    assert_eq!(refused(&mut model, "/jump #701"), "#701 is an edit, a deletion or a reaction, not a message");
    assert_eq!(refused(&mut model, "/jump #800"), "there is no message #800 here");

    // Older than what is loaded: pages are asked for until it comes, the last one only as far as needed.
    let history = |actions: &[Action]| match actions {
        [Action::Engine(Command::History { before, limit, .. })] => (*before, *limit),
        other => panic!("one history request expected, got {other:?}"),
    };
    assert_eq!(history(&model.submit("/jump #41")), (Some(600), 500));
    assert_eq!(model.take_jump(), None, "not yet here");
    assert_eq!(history(&model.on_engine(page(100..=599, 1))), (Some(100), 59));
    assert_eq!(model.take_jump(), None);
    assert!(model.on_engine(page(41..=99, 1)).is_empty());
    assert_eq!(model.take_jump(), Some(41));

    // Removed by retention: said once the server says it keeps no older ones, and at once after that.
    assert_eq!(history(&model.submit("/jump #3")), (Some(41), 38));
    model.on_engine(page(30..=40, 30));
    assert_eq!(model.take_jump(), None);
    assert_eq!(notices(&model).last(), Some(&"#3 is no longer kept by the server"));
    assert_eq!(refused(&mut model, "/jump #2"), "#2 is no longer kept by the server");

    // Moving to another conversation drops a jump still waiting for its page.
    let mut model = connected();
    model.on_engine(page(600..=700, 1));
    assert_eq!(history(&model.submit("/jump #41")), (Some(600), 500));
    model.switch(1);
    assert!(model.on_engine(page(100..=599, 1)).is_empty());
    model.switch(0);
    assert_eq!(model.take_jump(), None);

    // Not connected: nothing to fetch from.
    model.on_engine(gone());
    assert_eq!(refused(&mut model, "/jump #41"), "not connected: #41 can be fetched once reconnected");
}

/// A hit of a search: message `seq` of `conversation` at `ts`.
fn hit(conversation: Conversation, seq: u64, from: &str, text: &str, ts: u64) -> Message {
    Message { conversation, ts, ..stored(seq, from, MessageKind::Text, Revision::Original, text) }
}

fn searched(actions: &[Action]) -> (String, Option<Conversation>, Option<String>) {
    match actions {
        [Action::Engine(Command::Search { query, conversation, before })] => {
            (query.clone(), conversation.clone(), before.clone())
        }
        other => panic!("one search expected, got {other:?}"),
    }
}

#[test]
fn a_search_is_told_page_by_page_and_goto_opens_a_hit_where_it_was_said() {
    let mut model = connected();
    model.offset = FixedOffset::east_opt(3600).expect("an offset");
    // 2026-12-07 12:00 UTC; hits of that day, of the year before it, of an earlier year.
    let now = 1_796_644_800_000;
    model.clock = || 1_796_644_800_000;
    let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
    assert_eq!(searched(&model.submit("/search Lunch in:#garden")), ("Lunch".into(), Some(garden.clone()), None));
    // An answer to another search is not this one's.
    model.on_engine(Event::Found { query: "dinner".into(), conversation: None, hits: Vec::new(), next: None });
    assert!(model.search.as_ref().is_some_and(|search| search.pending));
    let first = vec![
        hit(garden.clone(), 41, "bob", "Lunch at noon?\nor later", now - 3_600_000),
        Message { kind: MessageKind::Action, ..hit(garden.clone(), 12, "carol", "wants lunch", now - 86_400_000 * 30) },
    ];
    let next = Some("r12".to_owned());
    model.on_engine(Event::Found { query: "Lunch".into(), conversation: Some(garden.clone()), hits: first, next });
    assert_eq!(
        notices(&model)[notices(&model).len() - 4..],
        [
            "2 messages found for “Lunch” in #garden",
            "[1] #garden  bob  12:00  Lunch at noon?",
            "[2] #garden  carol  7 Nov 13:00  * carol wants lunch",
            "/search shows older ones",
        ]
    );
    assert_eq!(searched(&model.submit("/search")), ("Lunch".into(), Some(garden.clone()), Some("r12".into())));
    assert!(model.submit("/search").is_empty(), "one page at a time");
    assert_eq!(notices(&model).last(), Some(&"the search's answer is on its way"));
    let older = vec![hit(garden.clone(), 3, "bob", &format!("lunch {}", "x".repeat(200)), now - 86_400_000 * 400)];
    model.on_engine(Event::Found {
        query: "Lunch".into(),
        conversation: Some(garden.clone()),
        hits: older,
        next: None,
    });
    let told = notices(&model);
    assert_eq!(told[told.len() - 2], "1 more found for “Lunch” in #garden");
    assert_eq!(told[told.len() - 1], format!("[3] #garden  bob  2025-11-02  lunch {}…", "x".repeat(114)));
    assert!(model.submit("/search").is_empty());
    assert_eq!(notices(&model).last(), Some(&"nothing more to find for “Lunch”"));

    // `/goto` opens the conversation and brings the message on screen, fetching it when it is older.
    assert!(model.submit("/goto 1").is_empty(), "the newest page of #garden, asked for on connecting, is on its way");
    assert_eq!(model.current().id, garden);
    let messages = (30..=50)
        .map(|seq| Message {
            conversation: garden.clone(),
            ..stored(seq, "bob", MessageKind::Text, Revision::Original, "m")
        })
        .collect();
    model.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: garden.clone(),
        messages,
        complete_from: 1,
    }));
    assert_eq!(model.take_jump(), Some(41));
    model.switch(0);
    assert!(model.submit("/goto 4").is_empty());
    assert_eq!(notices(&model).last(), Some(&"no search result [4]"));
}

#[test]
fn a_refused_or_cut_off_search_is_said_and_a_window_may_keep_the_answer_out_of_the_conversation() {
    let mut model = connected();
    searched(&model.submit("/search lunch"));
    model.on_engine(Event::Error {
        code: Some(palomar_proto::ErrorCode::InvalidText),
        message: "search for at most 8 words".into(),
        id: None,
    });
    let search = model.search.clone().expect("kept");
    assert_eq!((search.pending, search.refused.as_deref()), (false, Some("search for at most 8 words")));
    assert_eq!(notices(&model).last(), Some(&"search for at most 8 words"));

    // A search everywhere is never refused as not a member's: that refusal answers something else.
    searched(&model.submit("/search lunch"));
    let not_member = || Event::Error {
        code: Some(palomar_proto::ErrorCode::NotMember),
        message: "you are not in @bob".into(),
        id: None,
    };
    model.on_engine(not_member());
    assert!(model.search.as_ref().is_some_and(|search| search.pending && search.refused.is_none()));

    searched(&model.submit("/search in:here lunch"));
    assert_eq!(model.search.as_ref().and_then(|search| search.conversation.clone()), Some(lobby()));
    model.on_engine(not_member());
    assert_eq!(model.search.as_ref().and_then(|search| search.refused.as_deref()), Some("you are not in @bob"));
    searched(&model.submit("/search in:here lunch"));
    model.on_engine(gone());
    assert_eq!(model.search, None, "nothing found yet: nothing to go on with");
    assert!(model.submit("/search lunch").is_empty(), "not connected");
    assert_eq!(notices(&model).last(), Some(&"not connected: search once reconnected"));

    let mut model = connected();
    model.search_as_notices = false;
    let before = notices(&model).len();
    searched(&model.submit("/search lunch"));
    let hits = vec![hit(lobby(), 2, "bob", "lunch?", 2)];
    model.on_engine(Event::Found { query: "lunch".into(), conversation: None, hits, next: None });
    assert_eq!(notices(&model).len(), before, "the window shows the hits itself");
    assert_eq!(model.search.as_ref().map(|search| search.hits.len()), Some(1));
    assert!(model.submit("/goto 1").is_empty(), "#2 is older than nothing: it is fetched");
}

#[test]
fn a_page_ended_before_anything_was_found_is_not_shown_and_the_next_is_asked_at_once() {
    let mut model = connected();
    searched(&model.submit("/search lunch"));
    let before = notices(&model).len();
    let actions = model.on_engine(Event::Found {
        query: "lunch".into(),
        conversation: None,
        hits: Vec::new(),
        next: Some("r9".into()),
    });
    assert_eq!(searched(&actions), ("lunch".into(), None, Some("r9".into())));
    assert_eq!(notices(&model).len(), before);
    model.on_engine(Event::Found { query: "lunch".into(), conversation: None, hits: Vec::new(), next: None });
    assert_eq!(notices(&model).last(), Some(&"nothing found for “lunch”"));
}

#[test]
fn goto_opens_a_direct_conversation_closed_here_again_but_not_a_room_left() {
    let mut model = connected();
    searched(&model.submit("/search lunch"));
    let bob = Conversation::Direct(nick("bob"));
    let carrots = Conversation::Room(RoomName::parse("carrots").expect("valid"));
    let hits = vec![hit(bob.clone(), 7, "bob", "lunch?", 2), hit(carrots, 3, "carol", "lunch!", 1)];
    model.on_engine(Event::Found { query: "lunch".into(), conversation: None, hits, next: None });
    let actions = model.submit("/goto 1");
    assert_eq!(model.current().id, bob);
    assert!(matches!(&actions[..], [Action::Engine(Command::History { conversation, .. })] if *conversation == bob));
    model.switch(0);
    assert!(model.submit("/goto 2").is_empty());
    assert_eq!(notices(&model).last(), Some(&"you are no longer in #carrots"));
}
