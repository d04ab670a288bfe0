//! Knowing who is there (protocol version 6) over the wire with the real server, on both stores: away messages
//! reach the user's other sessions and its room-mates and come with `Users`; `Whois` tells what anyone may know;
//! typing reaches the other members only, at a pace; read markers only move forward, reach the reader's sessions
//! and its room-mates, come with `Users` and after `Welcome`, and survive a restart; a client of version 5 gets
//! none of it; and all of it crosses server nodes on one PostgreSQL database.

use palomar_proto::{
    ClientMsg, Conversation, ErrorCode, MessageId, MessageKind, PROTOCOL_VERSION, PresenceState, ReadMarker,
    RoomAction, RoomName, ServerMsg,
};

use crate::common::{Backend, PATIENCE, RawReader, RawWriter, Server};
use crate::kinds::log_in;
use crate::nodes::start_nodes;

on_both_stores!(sync: [], async: [
    away_messages_reach_the_users_sessions_and_room_mates_and_come_with_users,
    whois_tells_who_is_online_since_when_and_the_rooms_in_common,
    typing_reaches_the_other_members_only_at_a_pace_and_not_from_the_muted,
    read_markers_move_forward_reach_the_room_and_come_back_after_a_restart,
]);

fn room(name: &str) -> Conversation {
    Conversation::Room(RoomName::parse(name).expect("valid"))
}

fn nick(name: &str) -> palomar_proto::Nick {
    palomar_testkit::nick(name)
}

/// The first frame that `wanted` picks, answering the server's pings on the way: a client that only listens is
/// taken for dead after three heartbeats, which a busy machine running these tests side by side can exceed.
async fn wait<T>(reader: &mut RawReader, writer: &mut RawWriter, wanted: impl Fn(&ServerMsg) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let frame = reader.read_msg::<ServerMsg>().await.expect("reads").expect("open");
            if let ServerMsg::Ping { nonce } = frame {
                writer.send(&ClientMsg::Pong { nonce }).await.expect("sends");
            }
            if let Some(found) = wanted(&frame) {
                return found;
            }
        }
    })
    .await
    .expect("in time")
}

/// Every frame the server sends before it answers a ping: the answers to what this session asked before it.
async fn frames_until_pong(reader: &mut RawReader, writer: &mut RawWriter) -> Vec<ServerMsg> {
    const NONCE: u64 = 0x5eed;
    writer.send(&ClientMsg::Ping { nonce: NONCE }).await.expect("sends");
    let mut frames = frames_until(reader, writer, |frame| matches!(frame, ServerMsg::Pong { nonce: NONCE })).await;
    frames.pop();
    frames
}

/// Every frame up to the first that `last` says is the last wanted. Live items reach a session through its queue
/// in the order the hub put them there, so a message sent after them is a barrier behind them.
async fn frames_until(
    reader: &mut RawReader,
    writer: &mut RawWriter,
    last: impl Fn(&ServerMsg) -> bool,
) -> Vec<ServerMsg> {
    let frames = std::cell::RefCell::new(Vec::new());
    wait(reader, writer, |frame| {
        frames.borrow_mut().push(frame.clone());
        last(frame).then_some(())
    })
    .await;
    frames.into_inner()
}

/// Whether `frame` delivers a message whose text is `text`.
fn delivers(frame: &ServerMsg, text: &str) -> bool {
    matches!(frame, ServerMsg::Messages(messages) if messages.iter().any(|m| m.text == text))
}

/// Reads until `nick` is announced online (its session has lasted), so that what it does goes to its room-mates.
async fn until_online(reader: &mut RawReader, writer: &mut RawWriter, who: &str) {
    let who = nick(who);
    wait(reader, writer, |frame| {
        matches!(frame, ServerMsg::Presence { nick, state: PresenceState::Online, .. } if *nick == who).then_some(())
    })
    .await;
}

/// Asks for the lobby's members until `nick` is among those online. For a user who was announced before this
/// session began, so that it never hears the announcement: on a node, a user online on another is listed once
/// that node's announcement arrived, when what it does reaches this node's sessions.
async fn until_listed_online(reader: &mut RawReader, writer: &mut RawWriter, who: &str) {
    let who = nick(who);
    tokio::time::timeout(PATIENCE, async {
        loop {
            writer.send(&ClientMsg::Users { room: "lobby".into() }).await.expect("sends");
            let online = wait(reader, writer, |frame| match frame {
                ServerMsg::Users { online, .. } => Some(online.clone()),
                _ => None,
            })
            .await;
            if online.contains(&who) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("in time");
}

async fn away_of(reader: &mut RawReader, writer: &mut RawWriter, who: &str) -> Option<String> {
    let who = nick(who);
    wait(reader, writer, |frame| match frame {
        ServerMsg::Away { nick, message } if *nick == who => Some(message.clone()),
        _ => None,
    })
    .await
}

/// The error a request without a message id is answered with.
async fn refusal(reader: &mut RawReader, writer: &mut RawWriter) -> ErrorCode {
    wait(reader, writer, |frame| match frame {
        ServerMsg::Error { code, id: None, .. } => Some(*code),
        _ => None,
    })
    .await
}

fn is_awareness(frame: &ServerMsg) -> bool {
    matches!(
        frame,
        ServerMsg::Away { .. } | ServerMsg::Whois(_) | ServerMsg::Typing { .. } | ServerMsg::ReadMarkers { .. }
    )
}

async fn away_messages_reach_the_users_sessions_and_room_mates_and_come_with_users(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut old, mut old_out) = log_in(&server, "carol", 5).await;
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut phone, mut phone_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    until_online(&mut bob, &mut bob_out, "ana").await;

    ana_out.send(&ClientMsg::SetAway { message: "  lunch, back at 2 ".into() }).await.expect("sends");
    let lunch = Some("lunch, back at 2".to_owned());
    assert_eq!(away_of(&mut ana, &mut ana_out, "ana").await, lunch, "her own confirmation, trimmed");
    assert_eq!(away_of(&mut phone, &mut phone_out, "ana").await, lunch, "her other device");
    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, lunch, "a room-mate");

    bob_out.send(&ClientMsg::Users { room: "lobby".into() }).await.expect("sends");
    let frames = frames_until_pong(&mut bob, &mut bob_out).await;
    let users = frames.iter().position(|frame| matches!(frame, ServerMsg::Users { .. })).expect("Users");
    let before = users.checked_sub(1).map(|at| &frames[at]);
    assert!(
        matches!(before, Some(ServerMsg::Away { nick: who, message }) if *who == nick("ana") && *message == lunch),
        "her away message comes right before the member list: {frames:?}"
    );

    ana_out.send(&ClientMsg::SetAway { message: "out\nback soon".into() }).await.expect("sends");
    assert_eq!(refusal(&mut ana, &mut ana_out).await, ErrorCode::InvalidText);
    ana_out.send(&ClientMsg::SetAway { message: String::new() }).await.expect("sends");
    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, None, "back");
    assert_eq!(away_of(&mut ana, &mut ana_out, "ana").await, None);

    // A client of version 5 hears none of it, and its requests of version 6 are refused.
    old_out.send(&ClientMsg::Users { room: "lobby".into() }).await.expect("sends");
    let frames = frames_until_pong(&mut old, &mut old_out).await;
    assert!(frames.iter().any(|frame| matches!(frame, ServerMsg::Users { .. })), "{frames:?}");
    assert!(!frames.iter().any(is_awareness), "nothing of version 6: {frames:?}");
    for request in [
        ClientMsg::SetAway { message: "x".into() },
        ClientMsg::Whois { nick: "ana".into() },
        ClientMsg::Typing { conversation: room("lobby"), typing: true },
        ClientMsg::MarkRead { conversation: room("lobby"), seq: 1 },
    ] {
        old_out.send(&request).await.expect("sends");
        assert_eq!(refusal(&mut old, &mut old_out).await, ErrorCode::Protocol, "{request:?}");
    }

    // Set again, it outlives her sessions: a new one is told it after `Welcome`.
    ana_out.send(&ClientMsg::SetAway { message: "gone fishing".into() }).await.expect("sends");
    assert_eq!(away_of(&mut ana, &mut ana_out, "ana").await, Some("gone fishing".into()));
    drop((ana, ana_out, phone, phone_out));
    let (mut again, mut again_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    assert_eq!(away_of(&mut again, &mut again_out, "ana").await, Some("gone fishing".into()), "after Welcome");
}

async fn whois_tells_who_is_online_since_when_and_the_rooms_in_common(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let (dave, dave_out) = log_in(&server, "dave", PROTOCOL_VERSION).await;
    drop((dave, dave_out));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    for writer in [&mut ana_out, &mut bob_out] {
        writer.send(&ClientMsg::Join { room: "garden".into() }).await.expect("sends");
    }
    ana_out.send(&ClientMsg::Join { room: "rust".into() }).await.expect("sends");
    until_online(&mut ana, &mut ana_out, "bob").await;
    let said = ClientMsg::Send { id: MessageId([1; 16]), to: room("garden"), text: "hello".into() };
    bob_out.send(&said).await.expect("sends");
    wait(&mut bob, &mut bob_out, |frame| matches!(frame, ServerMsg::Accepted { .. }).then_some(())).await;

    ana_out.send(&ClientMsg::Whois { nick: "Bob".into() }).await.expect("sends");
    let info = wait(&mut ana, &mut ana_out, |frame| match frame {
        ServerMsg::Whois(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(info.nick, nick("bob"));
    assert!(info.online && info.online_since_ms.is_some(), "{info:?}");
    assert!(info.idle_ms.is_some_and(|idle| idle < 60_000), "he just spoke: {info:?}");
    assert!(info.registered_ms > 0 && info.away.is_none());
    assert_eq!(info.rooms, [RoomName::parse("garden").expect("valid"), RoomName::lobby()], "in common, sorted");

    ana_out.send(&ClientMsg::Whois { nick: "ana".into() }).await.expect("sends");
    let own = wait(&mut ana, &mut ana_out, |frame| match frame {
        ServerMsg::Whois(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(own.rooms.len(), 3, "asking about oneself: one's rooms: {own:?}");

    ana_out.send(&ClientMsg::Whois { nick: "dave".into() }).await.expect("sends");
    let offline = wait(&mut ana, &mut ana_out, |frame| match frame {
        ServerMsg::Whois(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert!(!offline.online && offline.online_since_ms.is_none() && offline.idle_ms.is_none(), "{offline:?}");
    assert_eq!(offline.rooms, [RoomName::lobby()]);

    ana_out.send(&ClientMsg::Whois { nick: "nobody".into() }).await.expect("sends");
    assert_eq!(refusal(&mut ana, &mut ana_out).await, ErrorCode::UnknownNick);
    ana_out.send(&ClientMsg::Whois { nick: "not a nick".into() }).await.expect("sends");
    assert_eq!(refusal(&mut ana, &mut ana_out).await, ErrorCode::InvalidName);
}

async fn typing_reaches_the_other_members_only_at_a_pace_and_not_from_the_muted(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut carol, mut carol_out) = log_in(&server, "carol", PROTOCOL_VERSION).await;
    // ana makes #garden (its owner), then bob joins it.
    for (reader, writer) in [(&mut ana, &mut ana_out), (&mut bob, &mut bob_out)] {
        writer.send(&ClientMsg::Join { room: "garden".into() }).await.expect("sends");
        frames_until_pong(reader, writer).await;
    }

    let garden = room("garden");
    for typing in [true, true, false, false] {
        ana_out.send(&ClientMsg::Typing { conversation: garden.clone(), typing }).await.expect("sends");
    }
    let done = ClientMsg::Send { id: MessageId([1; 16]), to: garden.clone(), text: "done".into() };
    ana_out.send(&done).await.expect("sends");
    let typing_in = |frames: Vec<ServerMsg>| -> Vec<(Conversation, bool)> {
        frames
            .into_iter()
            .filter_map(|frame| match frame {
                ServerMsg::Typing { conversation, nick: who, typing } if who == nick("ana") => {
                    Some((conversation, typing))
                }
                _ => None,
            })
            .collect()
    };
    let seen = typing_in(frames_until(&mut bob, &mut bob_out, |frame| delivers(frame, "done")).await);
    assert_eq!(seen, [(garden.clone(), true), (garden.clone(), false)], "a repeated true and false are dropped");

    ana_out.send(&ClientMsg::Typing { conversation: room("nowhere"), typing: true }).await.expect("sends");
    assert_eq!(refusal(&mut ana, &mut ana_out).await, ErrorCode::NotMember);
    let nobody = Conversation::Direct(nick("nobody"));
    ana_out.send(&ClientMsg::Typing { conversation: nobody, typing: true }).await.expect("sends");
    assert_eq!(refusal(&mut ana, &mut ana_out).await, ErrorCode::UnknownNick);

    let direct = Conversation::Direct(nick("carol"));
    let hi = ClientMsg::Send { id: MessageId([2; 16]), to: direct.clone(), text: "hi".into() };
    ana_out.send(&hi).await.expect("sends");
    let before = frames_until(&mut carol, &mut carol_out, |frame| delivers(frame, "hi")).await;
    assert!(typing_in(before).is_empty(), "carol is not in #garden");
    ana_out.send(&ClientMsg::Typing { conversation: direct.clone(), typing: true }).await.expect("sends");
    let bye = ClientMsg::Send { id: MessageId([3; 16]), to: direct, text: "bye".into() };
    ana_out.send(&bye).await.expect("sends");
    let seen = typing_in(frames_until(&mut carol, &mut carol_out, |frame| delivers(frame, "bye")).await);
    assert_eq!(seen, [(Conversation::Direct(nick("ana")), true)], "named as the peer names it");
    let own = frames_until(&mut ana, &mut ana_out, |frame| delivers(frame, "bye")).await;
    assert!(!own.iter().any(is_awareness), "never to the typist: {own:?}");
    drop(carol_out);

    // One who may not speak in the room does not seem to be about to.
    let mute = RoomAction::Mute { nick: "bob".into(), reason: "hush".into() };
    ana_out.send(&ClientMsg::Moderate { room: "garden".into(), action: mute }).await.expect("sends");
    wait(&mut bob, &mut bob_out, |frame| matches!(frame, ServerMsg::RoomEvent { .. }).then_some(())).await;
    bob_out.send(&ClientMsg::Typing { conversation: garden.clone(), typing: true }).await.expect("sends");
    let aside = ClientMsg::Send { id: MessageId([4; 16]), to: room("lobby"), text: "aside".into() };
    bob_out.send(&aside).await.expect("sends");
    let seen = frames_until(&mut ana, &mut ana_out, |frame| delivers(frame, "aside")).await;
    assert!(!seen.iter().any(|frame| matches!(frame, ServerMsg::Typing { .. })), "muted: {seen:?}");
}

async fn read_markers_move_forward_reach_the_room_and_come_back_after_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(&backend, &dir.path().join("data"));
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut tablet, mut tablet_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    for id in 1..=3 {
        let post =
            ClientMsg::Post { id: MessageId([id; 16]), to: room("lobby"), kind: MessageKind::Text, text: "x".into() };
        ana_out.send(&post).await.expect("sends");
        wait(&mut ana, &mut ana_out, |frame| matches!(frame, ServerMsg::Accepted { .. }).then_some(())).await;
    }
    let marker = |seq| ReadMarker { conversation: room("lobby"), nick: nick("bob"), seq };
    let markers_in = |frames: Vec<ServerMsg>| -> Vec<ReadMarker> {
        frames
            .into_iter()
            .flat_map(|frame| match frame {
                ServerMsg::ReadMarkers { markers } => markers,
                _ => Vec::new(),
            })
            .collect()
    };

    let next_markers = |frame: &ServerMsg| match frame {
        ServerMsg::ReadMarkers { markers } => Some(markers.clone()),
        _ => None,
    };
    bob_out.send(&ClientMsg::MarkRead { conversation: room("lobby"), seq: 2 }).await.expect("sends");
    assert_eq!(wait(&mut bob, &mut bob_out, next_markers).await, [marker(2)]);
    assert_eq!(wait(&mut tablet, &mut tablet_out, next_markers).await, [marker(2)], "his other device");
    assert_eq!(wait(&mut ana, &mut ana_out, next_markers).await, [marker(2)], "a room-mate");

    bob_out.send(&ClientMsg::MarkRead { conversation: room("lobby"), seq: 1 }).await.expect("sends");
    bob_out.send(&ClientMsg::MarkRead { conversation: room("lobby"), seq: 99 }).await.expect("sends");
    let clamped = [marker(3)];
    assert_eq!(wait(&mut bob, &mut bob_out, next_markers).await, clamped, "never back; clamped to the latest");
    assert_eq!(wait(&mut ana, &mut ana_out, next_markers).await, clamped);
    bob_out.send(&ClientMsg::MarkRead { conversation: room("nowhere"), seq: 1 }).await.expect("sends");
    assert_eq!(refusal(&mut bob, &mut bob_out).await, ErrorCode::NotMember);

    ana_out.send(&ClientMsg::Users { room: "lobby".into() }).await.expect("sends");
    assert_eq!(markers_in(frames_until_pong(&mut ana, &mut ana_out).await), [marker(3)], "with Users");

    // A commit after the marker moved takes it along; then the server restarts without a goodbye.
    let post = ClientMsg::Post { id: MessageId([9; 16]), to: room("lobby"), kind: MessageKind::Text, text: "y".into() };
    ana_out.send(&post).await.expect("sends");
    wait(&mut ana, &mut ana_out, |frame| matches!(frame, ServerMsg::Accepted { .. }).then_some(())).await;
    drop((ana, ana_out, bob, bob_out, tablet, tablet_out));
    server.kill();
    let server = server.restart();
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    assert_eq!(markers_in(frames_until_pong(&mut bob, &mut bob_out).await), [marker(3)], "after Welcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn away_typing_and_read_markers_cross_server_nodes() {
    let database = palomar_test_postgres::TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = start_nodes(database.url(), dir.path(), 2);
    let (mut ana, mut ana_out) = log_in(&nodes[0], "ana", PROTOCOL_VERSION).await;
    let (mut bob, mut bob_out) = log_in(&nodes[1], "bob", PROTOCOL_VERSION).await;
    // Ana may have been announced before bob logged in (after 200 ms here): he asks rather than waits to hear it.
    until_listed_online(&mut bob, &mut bob_out, "ana").await;
    until_online(&mut ana, &mut ana_out, "bob").await;

    ana_out.send(&ClientMsg::SetAway { message: "lunch".into() }).await.expect("sends");
    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, Some("lunch".into()), "through the other node");
    ana_out.send(&ClientMsg::Typing { conversation: room("lobby"), typing: true }).await.expect("sends");
    let typing = wait(&mut bob, &mut bob_out, |frame| match frame {
        ServerMsg::Typing { conversation, nick: who, typing } if *who == nick("ana") => {
            Some((conversation.clone(), *typing))
        }
        _ => None,
    })
    .await;
    assert_eq!(typing, (room("lobby"), true));

    let post = ClientMsg::Post { id: MessageId([1; 16]), to: room("lobby"), kind: MessageKind::Text, text: "x".into() };
    ana_out.send(&post).await.expect("sends");
    wait(&mut bob, &mut bob_out, |frame| delivers(frame, "x").then_some(())).await;
    bob_out.send(&ClientMsg::MarkRead { conversation: room("lobby"), seq: 1 }).await.expect("sends");
    let markers = wait(&mut ana, &mut ana_out, |frame| match frame {
        ServerMsg::ReadMarkers { markers } => Some(markers.clone()),
        _ => None,
    })
    .await;
    assert_eq!(markers, [ReadMarker { conversation: room("lobby"), nick: nick("bob"), seq: 1 }]);

    bob_out.send(&ClientMsg::Whois { nick: "ana".into() }).await.expect("sends");
    let info = wait(&mut bob, &mut bob_out, |frame| match frame {
        ServerMsg::Whois(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert!(info.online && info.online_since_ms.is_some(), "online on the other node: {info:?}");
    assert_eq!((info.away.as_deref(), &info.rooms[..]), (Some("lunch"), &[RoomName::lobby()][..]));

    // Her away message follows her arrival on the other node.
    drop((ana, ana_out));
    let who = nick("ana");
    wait(&mut bob, &mut bob_out, |frame| {
        matches!(frame, ServerMsg::Presence { nick, state: PresenceState::Offline, .. } if *nick == who).then_some(())
    })
    .await;
    let (_ana, _ana_out) = log_in(&nodes[0], "ana", PROTOCOL_VERSION).await;
    until_online(&mut bob, &mut bob_out, "ana").await;
    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, Some("lunch".into()), "after her arrival");
}

/// A session whose queue dropped an `Away` gets every online room-mate's away message restated with the member
/// lists it is sent instead, `None` for one who came back meanwhile: without it, bob would show ana away for as
/// long as she stays online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_away_message_is_restated_with_the_member_lists() {
    const FLOOD: usize = 1_600;
    let dir = tempfile::tempdir().expect("temp dir");
    // A live queue of one item overflows as soon as a session stops draining it; slow heartbeats keep a client
    // that reads nothing for a while from being taken for dead; arrivals are announced at once.
    let server = crate::common::start_configured(
        dir.path(),
        "[limits]\nlive_queue_per_connection = 1\nheartbeat_interval_ms = 60000\nmessages_per_sec_per_user = 0.0\n\
         presence_after_ms = 0\n",
    );
    let (mut bob, mut bob_out) = log_in(&server, "bob", PROTOCOL_VERSION).await;
    let (mut ana, mut ana_out) = log_in(&server, "ana", PROTOCOL_VERSION).await;
    until_online(&mut bob, &mut bob_out, "ana").await;
    ana_out.send(&ClientMsg::SetAway { message: "lunch".into() }).await.expect("sends");
    assert_eq!(away_of(&mut ana, &mut ana_out, "ana").await, Some("lunch".into()));
    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, Some("lunch".into()));

    // Bob reads nothing while carol floods the lobby with 13 MB, more than the sockets buffer: his session's
    // writes wait, its queue is full, and ana's coming back is dropped from it.
    let flood: String = (0..FLOOD).map(|i| format!("flood {i:05} {}\n", "x".repeat(8_000))).collect();
    let spec = crate::common::ClientSpec {
        server: &server.addr,
        nick: "carol",
        password: "pw",
        home: &dir.path().join("carol"),
        extra: &[],
    };
    let (status, _) = tokio::task::block_in_place(|| crate::common::run_client(spec, &flood));
    assert!(status.success());
    ana_out.send(&ClientMsg::SetAway { message: String::new() }).await.expect("sends");
    assert_eq!(away_of(&mut ana, &mut ana_out, "ana").await, None, "back, as her own session hears");

    assert_eq!(away_of(&mut bob, &mut bob_out, "ana").await, None, "restated once bob caught up");
}
