//! Room moderation over the wire, with the real binary and line-mode clients: the creator owns the room, its
//! moderators kick, ban, mute, invite and delete others' messages with slash commands, the banned stop receiving
//! the room at once and cannot come back, the muted cannot speak, an invite-only room lets in only the invited, a
//! moderated room only those given voice; the server's operators (`palomar user promote`) moderate every room;
//! each action is in `palomar audit`, and `palomar room show` lists what is set. A client of protocol version 1 is
//! still served.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::{BIN, Client, ClientSpec, Server, is_message_with_text, raw_connection};

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: "a password", home, extra: &[] }
}

fn connect(server: &Server, nick: &str, home: &Path) -> Client {
    let mut client = Client::start(spec(server, nick, home));
    client.wait_for("connected", |e| e["state"] == "connected");
    client
}

/// `palomar COMMAND --data DATA ARGS…`, which must succeed; its standard output.
fn operator(command: &str, data: &Path, args: &[&str]) -> String {
    let output: Output =
        std::process::Command::new(BIN).arg(command).arg("--data").arg(data).args(args).output().expect("palomar runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Joins `room` (again, perhaps) and waits for the answer to this join.
fn joins(client: &mut Client, room: &str) {
    client.line(&format!("/join {room}"));
    let conversation = format!("#{room}");
    client.wait_for_next("joined", |e| e["event"] == "joined" && e["conversation"] == conversation.as_str());
}

fn room_event<'a>(change: &'a str, nick: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["event"] == "room_event" && e["change"] == change && (nick.is_empty() || e["nick"] == nick)
}

fn error_with<'a>(code: &'a str, words: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["event"] == "error" && e["code"] == code && e["message"].as_str().is_some_and(|m| m.contains(words))
}

fn saw_text(client: &Client, text: &str) -> bool {
    client.messages().iter().any(|m| m["text"] == text)
}

#[test]
fn an_owner_mutes_bans_and_invites_and_the_banned_stop_receiving_the_room_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let homes: Vec<_> = ["ana", "bob", "carol", "dave"].iter().map(|nick| dir.path().join(nick)).collect();
    let mut ana = connect(&server, "ana", &homes[0]);
    let mut bob = connect(&server, "bob", &homes[1]);
    let mut carol = connect(&server, "carol", &homes[2]);
    joins(&mut ana, "garden");
    ana.wait_for("ana owns the room she made", |e| e["event"] == "room_state" && e["role"] == "owner");
    joins(&mut bob, "garden");
    joins(&mut carol, "garden");
    bob.wait_for("bob is a member", |e| e["event"] == "room_state" && e["role"] == "member");

    ana.line("/topic Seeds and  <b>soil</b>");
    let told = bob.wait_for("the topic", room_event("topic", ""));
    assert_eq!((told["by"].as_str(), told["text"].as_str()), (Some("ana"), Some("Seeds and  <b>soil</b>")));
    bob.wait_for("the room's new state", |e| e["event"] == "room_state" && e["topic"] == "Seeds and  <b>soil</b>");

    ana.line("/mute carol too loud");
    let muted = carol.wait_for("carol hears she is muted", room_event("muted", "carol"));
    assert_eq!(muted["reason"], "too loud");
    carol.wait_for("carol's state", |e| e["event"] == "room_state" && e["muted"] == true);
    carol.line("am I heard?");
    carol.wait_for("refused", error_with("NotAllowed", "muted in #garden"));
    ana.line("/unmute carol");
    carol.wait_for("unmuted", room_event("unmuted", "carol"));
    carol.line("now heard");
    bob.wait_for("carol's message after the mute", is_message_with_text("now heard"));
    assert!(!saw_text(&bob, "am I heard?"), "a muted member's message is not stored");
    let heard = bob.wait_for("its seq", is_message_with_text("now heard"))["seq"].as_u64().expect("a seq");
    ana.line("the rules: no shouting");
    let rules = bob.wait_for("the rules", is_message_with_text("the rules: no shouting"))["seq"].as_u64();
    carol.line(&format!("/delete #{}", rules.expect("a seq")));
    carol.wait_for("carol may not delete another's message", error_with("NotAllowed", "moderator"));
    ana.line(&format!("/delete #{heard} too loud again"));
    let deletion = bob.wait_for("the owner's deletion", |e| e["event"] == "message" && e["kind"] == "deletion");
    assert_eq!((deletion["of"].as_u64(), deletion["text"].as_str()), (Some(heard), Some("too loud again")));
    carol.line("/kick bob");
    carol.wait_for("carol may not kick", error_with("NotAllowed", "moderators of #garden"));

    ana.line("/ban bob spam");
    let banned = bob.wait_for("bob hears he is banned", room_event("banned", "bob"));
    assert_eq!((banned["by"].as_str(), banned["reason"].as_str()), (Some("ana"), Some("spam")));
    bob.wait_for("bob is out of the room", |e| e["event"] == "left" && e["room"] == "#garden");
    carol.wait_for("carol is told", room_event("banned", "bob"));
    ana.line("after the ban");
    carol.wait_for("carol gets ana's message", is_message_with_text("after the ban"));
    bob.line("/join garden");
    bob.wait_for("bob cannot come back", error_with("Banned", "banned from #garden by ana: spam"));
    assert!(!saw_text(&bob, "after the ban"), "a banned member receives nothing more of the room");

    operator("user", &server.data, &["list"]);
    let shown = operator("room", &server.data, &["show", "garden"]);
    assert!(shown.contains("topic: Seeds and  <b>soil</b>"), "{shown}");
    assert!(shown.lines().any(|l| l.starts_with("role\tana\towner")), "{shown}");
    assert!(shown.lines().any(|l| l.starts_with("banned\tbob\t") && l.ends_with("by ana: spam")), "{shown}");

    ana.line("/unban bob");
    ana.wait_for("unbanned", room_event("unbanned", "bob"));
    joins(&mut bob, "garden");

    ana.line("/invite-only on");
    carol.wait_for("the room is invite-only", |e| e["event"] == "room_event" && e["change"] == "invite_only");
    let mut dave = connect(&server, "dave", &homes[3]);
    dave.line("/join garden");
    dave.wait_for("dave needs an invitation", error_with("Banned", "invite-only"));
    ana.line("/invite dave");
    let invited = dave.wait_for("dave is invited", |e| e["event"] == "invited");
    assert_eq!((invited["room"].as_str(), invited["by"].as_str()), (Some("#garden"), Some("ana")));
    joins(&mut dave, "garden");
    dave.wait_for("the history dave came in to", is_message_with_text("after the ban"));

    let audit = operator("audit", &server.data, &[]);
    let actions: Vec<(&str, &str, &str)> = audit
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[1], fields[2], fields[3])
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("ana", "room topic", "#garden"),
            ("ana", "room mute", "#garden carol"),
            ("ana", "room unmute", "#garden carol"),
            ("ana", "message delete", &*format!("#garden #{heard} by carol")),
            ("ana", "room ban", "#garden bob"),
            ("ana", "room unban", "#garden bob"),
            ("ana", "room invite-only", "#garden"),
            ("ana", "room invite", "#garden dave"),
        ],
        "{audit}"
    );
    for client in [ana, bob, carol, dave] {
        client.kill();
    }
}

#[test]
fn operators_moderate_every_room_and_a_moderated_room_hears_only_those_with_voice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (zed_home, ana_home, bob_home) = (dir.path().join("zed"), dir.path().join("ana"), dir.path().join("bob"));
    let mut ana = connect(&server, "ana", &ana_home);
    let mut bob = connect(&server, "bob", &bob_home);
    // zed registers, then is promoted; the promotion shows from its next login.
    connect(&server, "zed", &zed_home).kill();
    let promoted = operator("user", &server.data, &["promote", "zed"]);
    assert!(promoted.contains("zed is an operator"), "{promoted}");
    assert!(
        operator("user", &server.data, &["list"]).lines().any(|l| l.starts_with("zed\t") && l.contains("operator"))
    );
    let mut zed = connect(&server, "zed", &zed_home);
    zed.wait_for("zed is an operator in #lobby", |e| e["event"] == "room_state" && e["operator"] == true);

    zed.line("/mute bob flooding");
    bob.wait_for("muted in the lobby", room_event("muted", "bob"));
    bob.line("hello?");
    bob.wait_for("refused", error_with("NotAllowed", "muted in #lobby"));
    ana.line("/unmute bob");
    ana.wait_for("ana is no moderator of the lobby", error_with("NotAllowed", "moderators of #lobby"));

    joins(&mut ana, "garden");
    joins(&mut bob, "garden");
    ana.line("/moderated on");
    bob.wait_for("the room is moderated", |e| e["event"] == "room_event" && e["change"] == "moderated");
    bob.line("may I?");
    bob.wait_for("refused", error_with("NotAllowed", "#garden is moderated"));
    ana.line("/voice bob");
    bob.wait_for("bob has voice", |e| e["event"] == "room_state" && e["room"] == "#garden" && e["role"] == "voice");
    bob.line("thank you");
    ana.wait_for("bob speaks", is_message_with_text("thank you"));
    assert!(!saw_text(&ana, "may I?") && !saw_text(&ana, "hello?"));

    ana.line("/op bob");
    bob.wait_for("bob is a moderator", |e| e["event"] == "room_state" && e["role"] == "moderator");
    bob.line("/kick ana");
    bob.wait_for("a moderator cannot kick the owner", error_with("NotAllowed", "ana is owner of #garden"));
    // The owner is within an operator's reach.
    joins(&mut zed, "garden");
    zed.line("/kick ana rude");
    let kicked = ana.wait_for("kicked by the operator", room_event("kicked", "ana"));
    assert_eq!((kicked["by"].as_str(), kicked["reason"].as_str()), (Some("zed"), Some("rude")));
    ana.wait_for("out of the room", |e| e["event"] == "left" && e["room"] == "#garden");
    joins(&mut ana, "garden");
    let state = ana.wait_for_next("the room's state", |e| e["event"] == "room_state" && e["room"] == "#garden");
    assert_eq!(state["role"], "owner", "a kick ends no role");
    operator("user", &server.data, &["demote", "zed"]);
    for client in [ana, bob, zed] {
        client.kill();
    }
}

/// A client of protocol version 1 (before moderation) logs in to a room with a topic and is sent nothing it
/// cannot decode.
#[tokio::test]
async fn a_version_1_client_is_served_without_what_version_2_added() {
    use palomar_proto::{ClientMsg, ServerMsg};
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let ana_home = dir.path().join("ana");
    let mut ana = connect(&server, "ana", &ana_home);
    ana.line("/topic a topic for the lobby");
    ana.wait_for("ana may not", error_with("NotAllowed", "moderators of #lobby"));
    joins(&mut ana, "garden");
    ana.line("/topic a topic for the garden");
    ana.wait_for("the topic is set", room_event("topic", ""));

    let (mut reader, mut writer) = raw_connection(&server.addr, "127.0.0.1".parse().expect("ip")).await.expect("TLS");
    let hello = ClientMsg::Hello { version: 1, nick: "ana".into(), password: "a password".into(), positions: vec![] };
    writer.send(&hello).await.expect("sends");
    let mut frames = Vec::new();
    while let Ok(Ok(Some(frame))) = tokio::time::timeout(Duration::from_secs(1), reader.read_msg::<ServerMsg>()).await {
        frames.push(frame);
    }
    assert!(matches!(frames.first(), Some(ServerMsg::Welcome { version: 1, .. })), "{frames:#?}");
    assert!(frames.iter().any(|f| matches!(f, ServerMsg::Joined { .. } | ServerMsg::Welcome { .. })));
    assert!(!frames.iter().any(|f| matches!(f, ServerMsg::RoomState(_) | ServerMsg::RoomEvent { .. })), "{frames:#?}");
    ana.kill();
}

/// Two nodes on one PostgreSQL database: what ana does through the first reaches bob's and carol's sessions on the
/// second: the mute holds there at once, the ban takes bob out of the room there, and the invitation reaches carol.
#[test]
fn a_moderators_action_through_one_node_holds_on_every_node() {
    let database = palomar_test_postgres::TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = crate::nodes::start_nodes(database.url(), dir.path(), 2);
    let mut ana = connect(&nodes[0], "ana", &dir.path().join("ana"));
    let mut bob = connect(&nodes[1], "bob", &dir.path().join("bob"));
    let mut carol = connect(&nodes[1], "carol", &dir.path().join("carol"));
    joins(&mut ana, "garden");
    joins(&mut bob, "garden");

    ana.line("/mute bob quiet please");
    let muted = bob.wait_for("the mute, through the other node", room_event("muted", "bob"));
    assert_eq!((muted["by"].as_str(), muted["reason"].as_str()), (Some("ana"), Some("quiet please")));
    bob.line("still talking");
    bob.wait_for("refused on the other node too", error_with("NotAllowed", "muted in #garden"));
    ana.line("/ban bob");
    bob.wait_for("the ban", room_event("banned", "bob"));
    bob.wait_for("out of the room", |e| e["event"] == "left" && e["room"] == "#garden");
    ana.line("/invite-only on");
    ana.line("/invite carol");
    let invited = carol.wait_for("the invitation, through the other node", |e| e["event"] == "invited");
    assert_eq!(invited["by"], "ana");
    joins(&mut carol, "garden");
    ana.line("welcome carol");
    carol.wait_for("ana's message", is_message_with_text("welcome carol"));
    assert!(!saw_text(&ana, "still talking") && !saw_text(&bob, "welcome carol"));
    for client in [ana, bob, carol] {
        client.kill();
    }
}

/// `palomar room` on the server machine, while the server runs: the console writes to the store, and the server
/// finds the action in the audit log and tells the room within its poll (half a second).
#[test]
fn an_operator_at_the_console_moderates_a_room_of_a_running_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let mut ana = connect(&server, "ana", &dir.path().join("ana"));
    let mut bob = connect(&server, "bob", &dir.path().join("bob"));
    joins(&mut ana, "garden");
    joins(&mut bob, "garden");
    let data = &server.data;

    let said = operator("room", data, &["topic", "garden", "Kept by the console"]);
    assert_eq!(said.trim(), "the topic of #garden is: Kept by the console");
    let topic = bob.wait_for("the console's topic", room_event("topic", ""));
    assert_eq!((topic["by"].clone(), topic["text"].as_str()), (Value::Null, Some("Kept by the console")));
    operator("room", data, &["mute", "garden", "bob", "--reason", "cool down"]);
    bob.wait_for("muted from the console", |e| e["event"] == "room_state" && e["muted"] == true);
    bob.line("muted words");
    bob.wait_for("refused", error_with("NotAllowed", "muted in #garden"));
    let asked = std::time::Instant::now();
    assert_eq!(operator("room", data, &["ban", "garden", "bob"]).trim(), "bob is banned from #garden");
    bob.wait_for("out of the room", |e| e["event"] == "left" && e["room"] == "#garden");
    assert!(asked.elapsed() < Duration::from_secs(5), "within the server's poll");
    ana.wait_for("ana is told", room_event("banned", "bob"));
    bob.line("/join garden");
    bob.wait_for("kept out", error_with("Banned", "banned from #garden"));
    let shown = operator("room", data, &["show", "garden"]);
    assert!(shown.lines().any(|l| l.starts_with("banned\tbob\t")), "{shown}");
    operator("room", data, &["unban", "garden", "bob"]);
    assert_eq!(operator("room", data, &["role", "garden", "bob", "voice"]).trim(), "bob is voice of #garden");
    let shown = operator("room", data, &["show", "garden"]);
    assert!(shown.lines().any(|l| l == "role\tbob\tvoice") && !shown.contains("banned"), "{shown}");

    let failed = std::process::Command::new(BIN)
        .args(["room", "--data"])
        .arg(data)
        .args(["unmute", "garden", "nobody"])
        .output()
        .expect("runs");
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("there is no account nobody"));
    let audit = operator("audit", data, &[]);
    assert!(audit.lines().any(|l| l.contains("\troom ban\t#garden bob") && l.contains("\toperator (uid ")), "{audit}");
    for client in [ana, bob] {
        client.kill();
    }
}

/// `/list`: the rooms by name, with their members and topics, a page at a time; an invite-only room only for its
/// members.
#[test]
fn the_room_list_shows_open_rooms_to_everyone_and_invite_only_ones_to_their_members() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let mut ana = connect(&server, "ana", &dir.path().join("ana"));
    let mut bob = connect(&server, "bob", &dir.path().join("bob"));
    for room in ["apple", "cave", "garden"] {
        joins(&mut ana, room);
    }
    ana.line("/invite-only on");
    ana.wait_for("the garden is invite-only", |e| e["event"] == "room_event" && e["change"] == "invite_only");
    ana.line("/join apple");
    ana.line("/topic Red and green");
    ana.wait_for("the topic", room_event("topic", ""));
    joins(&mut bob, "apple");

    let rooms_of = |event: &Value| -> Vec<String> {
        event["rooms"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["room"].as_str().expect("a name").to_owned())
            .collect()
    };
    bob.line("/list");
    let listed = bob.wait_for_next("bob's listing", |e| e["event"] == "rooms");
    assert_eq!(rooms_of(&listed), ["#apple", "#cave", "#lobby"], "no invite-only room bob is not in");
    assert_eq!(listed["more"], false);
    let apple = &listed["rooms"][0];
    assert_eq!((apple["members"].as_u64(), apple["topic"].as_str()), (Some(2), Some("Red and green")));
    ana.line("/list");
    let listed = ana.wait_for_next("ana's listing", |e| e["event"] == "rooms");
    assert_eq!(rooms_of(&listed), ["#apple", "#cave", "#garden", "#lobby"]);
    assert_eq!(listed["rooms"][2]["invite_only"], true);
    bob.line("/list cave");
    let next = bob.wait_for_next("the rooms after #cave", |e| e["event"] == "rooms");
    assert_eq!(rooms_of(&next), ["#lobby"]);
    bob.line("/list Not A Room");
    bob.wait_for("a bad name", |e| e["event"] == "error" && e["message"].as_str().is_some_and(|m| m.contains("/list")));
    for client in [ana, bob] {
        client.kill();
    }
}
