//! Away messages, `/whois` and typing notices: every word a front end shows, and when typing is sent.

use std::time::{Duration, Instant};

use chrono::FixedOffset;
use palomar_proto::{
    AWARENESS_VERSION, ConversationInfo, ErrorCode, Message, MessageId, MessageKind, PresenceState, Revision, RoomName,
    TYPING_RENEW_MS, TYPING_SHOWN_MS, WhoisInfo,
};
use palomar_testkit::nick;

use super::*;
use crate::engine::Event;
use crate::preferences::Preferences;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

/// Ana's model, connected at protocol `version` and in the lobby.
fn connected_at(version: u16) -> ChatModel {
    let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    model.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: vec![ConversationInfo { conversation: lobby(), latest_seq: 0, first_seq: 1 }],
        version,
    });
    model
}

fn notices(model: &ChatModel) -> Vec<&str> {
    model
        .current()
        .entries
        .iter()
        .filter_map(
            |entry| if let super::super::Entry::Notice { text, .. } = entry { Some(text.as_str()) } else { None },
        )
        .collect()
}

fn commands(actions: Vec<Action>) -> Vec<Command> {
    actions
        .into_iter()
        .filter_map(|action| if let Action::Engine(command) = action { Some(command) } else { None })
        .collect()
}

const UTC: FixedOffset = FixedOffset::east_opt(0).expect("a valid offset");

/// 2026-11-20 14:05 UTC, in milliseconds.
const NOW_MS: u64 = 1_795_183_500_000;

#[test]
fn durations_in_the_largest_units_that_say_them() {
    assert_eq!(duration_text(59_999), "59 s");
    assert_eq!(duration_text(60_000), "1 min");
    assert_eq!(duration_text(3_599_000), "59 min");
    assert_eq!(duration_text((2 * 60 + 10) * 60_000), "2 h 10 min");
    assert_eq!(duration_text(24 * 3_600_000 - 1), "23 h 59 min");
    assert_eq!(duration_text((3 * 24 + 4) * 3_600_000 + 5 * 60_000), "3 d 4 h");
}

#[test]
fn times_are_local_with_the_date_when_not_today() {
    assert_eq!(local_time(NOW_MS, NOW_MS, UTC), "14:05");
    let two_hours_east = FixedOffset::east_opt(2 * 3600).expect("valid");
    assert_eq!(local_time(NOW_MS, NOW_MS, two_hours_east), "16:05");
    assert_eq!(local_time(NOW_MS - 19 * 24 * 3_600_000, NOW_MS, UTC), "2026-11-01 14:05");
}

fn whois(nick_: &str) -> WhoisInfo {
    WhoisInfo {
        nick: nick(nick_),
        registered_ms: NOW_MS - 19 * 24 * 3_600_000,
        online: true,
        online_since_ms: Some(NOW_MS - (2 * 60 + 10) * 60_000),
        idle_ms: Some(5 * 60_000),
        away: Some("lunch".into()),
        rooms: vec![RoomName::lobby(), RoomName::parse("rust").expect("valid")],
    }
}

#[test]
fn whois_lines_in_the_shared_words() {
    let me = nick("ana");
    assert_eq!(
        whois_lines(&whois("bob"), &me, NOW_MS, UTC),
        [
            "bob: online since 11:55 (2 h 10 min), idle 5 min",
            "bob: away: lunch",
            "bob: registered 2026-11-01",
            "bob: rooms in common: #lobby, #rust",
        ]
    );
    let fresh = WhoisInfo {
        online_since_ms: Some(NOW_MS - 3 * 60_000),
        idle_ms: None,
        away: None,
        rooms: vec![],
        ..whois("bob")
    };
    assert_eq!(
        whois_lines(&fresh, &me, NOW_MS, UTC),
        ["bob: online since 14:02 (3 min)", "bob: registered 2026-11-01", "bob: no rooms in common"]
    );
    let offline = WhoisInfo { online: false, online_since_ms: None, idle_ms: None, ..whois("bob") };
    assert_eq!(whois_lines(&offline, &me, NOW_MS, UTC)[..2], ["bob: offline", "bob: away: lunch"]);
    assert_eq!(whois_lines(&whois("ana"), &me, NOW_MS, UTC)[3], "ana: rooms: #lobby, #rust", "about oneself");
}

#[test]
fn whois_asks_a_server_that_knows_it_and_its_answer_or_no_such_user_are_told() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.clock = || NOW_MS;
    model.offset = UTC;
    assert!(matches!(&commands(model.submit("/whois @bob"))[..], [Command::Whois(who)] if *who == nick("bob")));
    model.on_engine(Event::Whois(whois("bob")));
    assert_eq!(notices(&model).last(), Some(&"bob: rooms in common: #lobby, #rust"));
    assert!(notices(&model).contains(&"bob: online since 11:55 (2 h 10 min), idle 5 min"));

    assert_eq!(commands(model.submit("/whois zed")).len(), 1);
    model.on_engine(Event::Error { code: Some(ErrorCode::UnknownNick), message: "unknown".into(), id: None });
    assert_eq!(notices(&model).last(), Some(&"no such user: zed"));

    let mut older = connected_at(AWARENESS_VERSION - 1);
    assert!(older.submit("/whois bob").is_empty());
    assert_eq!(notices(&older).last(), Some(&"this server does not know /whois"));
}

#[test]
fn away_is_set_and_cleared_and_the_server_s_confirmation_is_told_and_kept_for_the_status_line() {
    let mut model = connected_at(AWARENESS_VERSION);
    assert!(matches!(&commands(model.submit("/away lunch"))[..], [Command::SetAway(m)] if m == "lunch"));
    assert!(matches!(&commands(model.submit("/back"))[..], [Command::SetAway(m)] if m.is_empty()));
    assert!(matches!(&commands(model.submit("/away"))[..], [Command::SetAway(m)] if m.is_empty()));
    assert_eq!(model.own_away(), None, "set once the server says so");
    model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
    assert_eq!(model.own_away(), Some("lunch"));
    assert_eq!(model.away_status().as_deref(), Some("away: lunch"));
    assert_eq!(notices(&model).last(), Some(&"you are away: lunch"));
    let told = notices(&model).len();
    model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
    assert_eq!(notices(&model).len(), told, "the same again (a reconnection) is not news");
    model.on_engine(Event::Away { nick: nick("ana"), message: None });
    assert_eq!((model.own_away(), notices(&model).last()), (None, Some(&"you are back")));

    // Refused before sending, with the reason.
    assert!(model.submit(&format!("/away {}", "x".repeat(201))).is_empty());
    assert_eq!(notices(&model).last(), Some(&"/away [MESSAGE]: an away message is at most 200 bytes long"));

    let mut older = connected_at(AWARENESS_VERSION - 1);
    assert!(older.submit("/away lunch").is_empty());
    assert_eq!(notices(&older).last(), Some(&"this server does not know away messages"));
    // While disconnected the engine keeps it for the next connection.
    let mut offline = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    assert_eq!(commands(offline.submit("/away lunch")).len(), 1);
}

fn direct_message(seq: u64, from: &str, peer: &str) -> Event {
    Event::Message {
        message: Message {
            conversation: Conversation::Direct(nick(peer)),
            seq,
            id: MessageId([seq as u8; 16]),
            from: nick(from),
            ts: seq,
            text: "hi".into(),
            kind: MessageKind::Text,
            revision: Revision::Original,
        },
        own: from == "ana",
    }
}

#[test]
fn others_away_is_kept_until_offline_shown_in_member_lists_and_told_once_when_writing_to_them() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.on_engine(Event::Away { nick: nick("bob"), message: Some("lunch".into()) });
    assert_eq!(model.away_of(&nick("bob")), Some("lunch"));
    assert!(notices(&model).is_empty(), "no notice in rooms when someone goes away");
    assert_eq!(member_text(&nick("bob"), model.away_of(&nick("bob"))), "bob (away: lunch)");
    assert_eq!(member_text(&nick("cy"), None), "cy");

    model.submit("/users");
    model.on_engine(Event::Users { room: RoomName::lobby(), online: vec![nick("ana"), nick("bob")], offline: vec![] });
    assert_eq!(notices(&model).last(), Some(&"online: ana, bob (away: lunch); offline: "));

    model.submit("/msg bob are you there?");
    model.submit("hello?");
    let here = notices(&model);
    assert_eq!(here, ["bob is away: lunch"], "once");
    model.on_engine(Event::Away { nick: nick("bob"), message: Some("meeting".into()) });
    model.submit("still?");
    assert_eq!(notices(&model), ["bob is away: lunch", "bob is away: meeting"], "again once it changed");

    model.on_engine(Event::Presence { room: RoomName::lobby(), nick: nick("bob"), state: PresenceState::Offline });
    assert_eq!(model.away_of(&nick("bob")), None, "offline says more");
}

#[test]
fn typing_is_sent_renewed_and_stopped_as_the_entry_changes_and_forgotten_once_sent() {
    let mut model = connected_at(AWARENESS_VERSION);
    let start = Instant::now();
    model.tick(start);
    let typing = |actions: Vec<Action>| -> Vec<(Conversation, bool)> {
        commands(actions)
            .into_iter()
            .filter_map(|c| {
                if let Command::Typing { conversation, typing } = c { Some((conversation, typing)) } else { None }
            })
            .collect()
    };
    assert_eq!(typing(model.entry_changed("h")), [(lobby(), true)]);
    assert_eq!(typing(model.entry_changed("he")), [], "not again before the renewal");
    model.tick(start + Duration::from_millis(TYPING_RENEW_MS));
    assert_eq!(typing(model.entry_changed("hel")), [(lobby(), true)], "renewed");
    assert_eq!(typing(model.entry_changed("")), [(lobby(), false)], "emptied");
    assert_eq!(typing(model.entry_changed("")), [], "once");
    assert_eq!(typing(model.entry_changed("/whois")), [], "a command is not typing");
    assert_eq!(typing(model.entry_changed("hi")), [(lobby(), true)]);
    assert_eq!(typing(model.entry_changed("/")), [(lobby(), false)], "turned into a command");

    assert_eq!(typing(model.entry_changed("hi")), [(lobby(), true)]);
    let sent = commands(model.submit("hi"));
    assert!(matches!(&sent[..], [Command::Send { .. }]), "a message sent: no false");
    assert_eq!(typing(model.entry_changed("")), [], "forgotten once sent");

    assert_eq!(typing(model.entry_changed("x")), [(lobby(), true)]);
    model.on_engine(direct_message(1, "bob", "bob"));
    model.submit("/msg bob");
    let bob = Conversation::Direct(nick("bob"));
    assert_eq!(typing(model.entry_changed("y")), [(lobby(), false), (bob, true)], "switched away from");
    model.submit("/msg zed");
    let bob = Conversation::Direct(nick("bob"));
    assert_eq!(typing(model.entry_changed("z")), [(bob, false)], "no typing where no message was ever sent");

    let mut older = connected_at(AWARENESS_VERSION - 1);
    assert!(older.entry_changed("hi").is_empty(), "a server that does not know typing");
    let mut offline = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
    assert!(offline.entry_changed("hi").is_empty(), "never while disconnected");
}

#[test]
fn typing_words_for_one_two_three_and_several() {
    let [ana, bob, cy, dan] = ["ana", "bob", "cy", "dan"].map(nick);
    assert_eq!(typing_text(&[]), None);
    assert_eq!(typing_text(&[&ana]).as_deref(), Some("ana is typing…"));
    assert_eq!(typing_text(&[&ana, &bob]).as_deref(), Some("ana and bob are typing…"));
    assert_eq!(typing_text(&[&ana, &bob, &cy]).as_deref(), Some("ana, bob and cy are typing…"));
    assert_eq!(typing_text(&[&ana, &bob, &cy, &dan]).as_deref(), Some("several people are typing…"));
}

#[test]
fn typing_is_shown_until_false_a_message_offline_left_or_expiry_and_never_for_the_ignored() {
    let mut model = connected_at(AWARENESS_VERSION);
    let start = Instant::now();
    model.tick(start);
    let heard = |model: &mut ChatModel, who: &str, typing: bool| {
        model.on_engine(Event::Typing { conversation: lobby(), nick: nick(who), typing })
    };
    heard(&mut model, "bob", true);
    heard(&mut model, "cy", true);
    assert_eq!(model.typing_status().as_deref(), Some("bob and cy are typing…"));
    heard(&mut model, "cy", false);
    assert_eq!(model.typing_status().as_deref(), Some("bob is typing…"));
    model.on_engine(Event::Message {
        message: Message {
            conversation: lobby(),
            seq: 1,
            id: MessageId([1; 16]),
            from: nick("bob"),
            ts: 1,
            text: "done".into(),
            kind: MessageKind::Text,
            revision: Revision::Original,
        },
        own: false,
    });
    assert_eq!(model.typing_status(), None, "a message from them ends it");

    heard(&mut model, "bob", true);
    model.on_engine(Event::Presence { room: RoomName::lobby(), nick: nick("bob"), state: PresenceState::Offline });
    assert_eq!(model.typing_status(), None, "offline");
    heard(&mut model, "cy", true);
    model.on_engine(Event::Presence { room: RoomName::lobby(), nick: nick("cy"), state: PresenceState::Left });
    assert_eq!(model.typing_status(), None, "left");

    heard(&mut model, "dan", true);
    model.tick(start + Duration::from_millis(TYPING_SHOWN_MS - 1));
    assert_eq!(model.typing_status().as_deref(), Some("dan is typing…"));
    model.tick(start + Duration::from_millis(TYPING_SHOWN_MS));
    assert_eq!(model.typing_status(), None, "expired");

    let mut preferences = Preferences::default();
    preferences.ignored.insert(nick("eve"));
    model.set_preferences(preferences);
    heard(&mut model, "eve", true);
    assert_eq!(model.typing_status(), None, "ignored");

    // Someone typing to the user in a direct conversation shows there.
    model.on_engine(direct_message(1, "bob", "bob"));
    model.on_engine(Event::Typing { conversation: Conversation::Direct(nick("bob")), nick: nick("bob"), typing: true });
    assert_eq!(model.typing_status(), None, "not the conversation shown");
    model.submit("/msg bob");
    assert_eq!(model.typing_status().as_deref(), Some("bob is typing…"));
}

#[test]
fn after_reconnecting_away_messages_are_learnt_again_and_one_s_own_not_restated_is_gone() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
    model.on_engine(Event::Away { nick: nick("bob"), message: Some("meeting".into()) });
    let reconnect = |model: &mut ChatModel| {
        model.on_engine(Event::Connected {
            server: "127.0.0.1:5555".into(),
            nick: nick("ana"),
            registered: false,
            conversations: Vec::new(),
            version: AWARENESS_VERSION,
        })
    };
    reconnect(&mut model);
    assert_eq!(model.away_of(&nick("bob")), None, "told again after the member lists");
    model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
    model.on_engine(Event::Synced);
    assert_eq!(model.own_away(), Some("lunch"), "restated at login");
    assert_eq!(notices(&model).iter().filter(|said| **said == "you are away: lunch").count(), 1, "not news");
    reconnect(&mut model);
    model.on_engine(Event::Synced);
    assert_eq!(model.own_away(), None, "cleared on another device meanwhile: not restated");
    model.submit("/away lunch");
    model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
    assert_eq!(notices(&model).iter().filter(|said| **said == "you are away: lunch").count(), 2, "set anew");
}

#[test]
fn with_typing_notices_off_the_user_s_typing_is_told_stopped_and_nobody_s_is_shown_or_told() {
    let mut model = connected_at(AWARENESS_VERSION);
    model.tick(Instant::now());
    let typing = |actions: &[Action]| -> Vec<(Conversation, bool)> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Engine(Command::Typing { conversation, typing }) => Some((conversation.clone(), *typing)),
                _ => None,
            })
            .collect()
    };
    model.on_engine(Event::Typing { conversation: lobby(), nick: nick("bob"), typing: true });
    assert_eq!(typing(&model.entry_changed("h")), [(lobby(), true)]);
    let off = model.submit("/typing off");
    assert_eq!(typing(&off), [(lobby(), false)], "what was told is told stopped");
    assert!(off.iter().any(|action| matches!(action, Action::SavePreferences)));
    assert_eq!(model.typing_status(), None, "bob's typing is not shown");
    assert_eq!(typing(&model.entry_changed("he")), [], "nor is ours told");
    assert!(model.submit("/typing").is_empty(), "asking changes nothing");

    assert!(matches!(&model.submit("/typing on")[..], [Action::SavePreferences]));
    assert_eq!(model.typing_status().as_deref(), Some("bob is typing…"));
    assert_eq!(typing(&model.entry_changed("hel")), [(lobby(), true)]);
}
