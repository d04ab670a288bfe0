//! Line mode as a script or a person at a terminal uses it: what it reads, what it waits for at the end of input,
//! and what its exit code says.

use crate::common::{Client, ClientSpec, Server, Terminal, is_message_with_text, run_client};
use serde_json::Value;

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: "pw", home, extra: &[] }
}

/// A line too long to be a message is refused with a message, and the exit code says that not all went out. So is
/// `/jump`: line mode has no window to scroll.
#[test]
fn a_refused_line_makes_the_exit_code_non_zero_and_is_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let input = format!("fine\n{}\n/jion typo\n/jump #1\nalso fine\n", "x".repeat(9_000));
    let (status, events) = run_client(spec(&server, "ana", &dir.path().join("ana")), &input);
    assert_eq!(status.code(), Some(4), "{events:#?}");
    assert_eq!(events.iter().filter(|e| e["event"] == "accepted").count(), 2, "the others went out");
    let errors: Vec<&str> =
        events.iter().filter(|e| e["event"] == "error").map(|e| e["message"].as_str().expect("text")).collect();
    assert!(errors[0].starts_with("not sent: message text"), "{errors:?}");
    assert!(errors.contains(&"/jump: line mode has no window to scroll; look for the message above"), "{errors:?}");
    assert_eq!(errors.last().copied(), Some("3 input line(s) refused (see above): not everything was sent"));
}

/// Commands at the end of piped input get their answers printed before line mode exits.
#[test]
fn piped_commands_are_answered_before_the_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    assert!(run_client(spec(&server, "ana", &dir.path().join("ana")), "one\ntwo\nthree\nfour\n").0.success());
    let bob = dir.path().join("bob");
    assert!(run_client(spec(&server, "bob", &bob), "").0.success(), "bob has seen everything");

    let (status, events) = run_client(spec(&server, "bob", &bob), "/users\n/history 3\n/join garden\n/users\n");
    assert!(status.success(), "{events:#?}");
    let users: Vec<&Value> = events.iter().filter(|e| e["event"] == "users").collect();
    assert_eq!(users.len(), 2, "{events:#?}");
    assert_eq!(users[0]["room"], "#lobby");
    assert_eq!(users[0]["offline"], serde_json::json!(["ana"]));
    assert_eq!(users[1]["room"], "#garden");
    let history = events.iter().find(|e| e["event"] == "history").expect("the history page");
    let texts: Vec<&str> =
        history["messages"].as_array().expect("messages").iter().map(|m| m["text"].as_str().expect("text")).collect();
    assert_eq!(texts, vec!["two", "three", "four"]);
}

/// On a terminal, a line longer than the kernel's 4,095-byte line buffer arrives whole, and Ctrl+D ends the input.
#[test]
fn a_long_line_typed_on_a_terminal_arrives_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let mut bob = Client::start(spec(&server, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");

    let home = dir.path().join("ana");
    let home = home.to_str().expect("UTF-8 path");
    let args = ["chat", "--plain", "--server", &server.addr, "--nick", "ana", "--home", home];
    let mut terminal = Terminal::start(&args, Some("pw"));
    terminal.wait_for("connected as ana", 1);
    let long: String = (0..5_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    terminal.type_keys(format!("{long}\r").as_bytes());
    bob.wait_for("the whole line", is_message_with_text(&long));
    terminal.type_keys(b"typo\x7f\x7f\x7f\x7fedited\r");
    bob.wait_for("the edited line", is_message_with_text("edited"));
    terminal.type_keys(b"\x04");
    assert_eq!(terminal.exit_code(), Some(0));
}

/// A script acts, edits and deletes by the seqs the JSON lines gave it; a target the server does not know is
/// refused and counted. A reader who comes later gets the message already edited or deleted, then the entries.
#[test]
fn a_script_acts_edits_and_deletes_by_seq() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let ana = dir.path().join("ana");
    let (status, events) = run_client(spec(&server, "ana", &ana), "helo\n");
    assert!(status.success(), "{events:#?}");
    let seq = |events: &[Value], text: &str| {
        events.iter().find(|e| is_message_with_text(text)(e)).and_then(|e| e["seq"].as_u64()).expect("a seq")
    };
    let helo = seq(&events, "helo");
    let (status, events) = run_client(spec(&server, "ana", &ana), &format!("/edit #{helo} hello\n/me waves\n"));
    assert!(status.success(), "{events:#?}");
    let waves = seq(&events, "waves");
    let input = format!("/delete #{waves} wrong room\n/edit #{} nothing there\n", waves + 100);
    let (status, events) = run_client(spec(&server, "ana", &ana), &input);
    assert_eq!(status.code(), Some(4), "{events:#?}");
    assert!(events.iter().any(|e| e["event"] == "error" && e["code"] == "UnknownMessage"), "{events:#?}");

    let (status, events) = run_client(spec(&server, "bob", &dir.path().join("bob")), "");
    assert!(status.success(), "{events:#?}");
    let seen: Vec<(&str, &Value, &str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| {
            let field = |name: &str| e[name].as_str().expect(name);
            (field("kind"), &e["of"], field("revision"), field("text"))
        })
        .collect();
    let (helo, waves) = (serde_json::json!(helo), serde_json::json!(waves));
    assert_eq!(
        seen,
        [
            ("text", &Value::Null, "edited", "hello"),
            ("edit", &helo, "original", "hello"),
            ("action", &Value::Null, "deleted", ""),
            ("deletion", &waves, "original", "wrong room"),
        ]
    );
}

/// A script replies and reacts by seq; its JSON lines say what each entry refers to, and a reaction whether it was
/// added or taken back. A second reaction the same is refused by the server, and says so.
#[test]
fn a_script_replies_and_reacts_by_seq() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (status, events) = run_client(spec(&server, "ana", &dir.path().join("ana")), "lunch?\n");
    assert!(status.success(), "{events:#?}");
    let lunch = events.iter().find(|e| is_message_with_text("lunch?")(e)).and_then(|e| e["seq"].as_u64()).expect("seq");
    let bob = dir.path().join("bob");
    let input = format!("/reply #{lunch} yes\n/react #{lunch} +1\n/react #{lunch} :tada:\n/unreact #{lunch} 👍\n");
    let (status, events) = run_client(spec(&server, "bob", &bob), &input);
    assert!(status.success(), "{events:#?}");
    let (status, events) =
        run_client(spec(&server, "bob", &bob), &format!("/react #{lunch} 🎉\n/react #{lunch} smile\n"));
    assert_eq!(status.code(), Some(4), "{events:#?}");
    assert!(events.iter().any(|e| e["event"] == "error" && e["code"] == "NotAllowed"), "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "error" && e["message"].as_str().is_some_and(|m| m.contains("EMOJI is one of"))),
        "{events:#?}"
    );

    let (status, events) = run_client(spec(&server, "carol", &dir.path().join("carol")), "");
    assert!(status.success(), "{events:#?}");
    let seen: Vec<(&str, &Value, &Value, &str)> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| (e["kind"].as_str().expect("kind"), &e["of"], &e["added"], e["text"].as_str().expect("text")))
        .collect();
    let of = serde_json::json!(lunch);
    let (yes, no) = (Value::Bool(true), Value::Bool(false));
    assert_eq!(
        seen,
        [
            ("text", &Value::Null, &Value::Null, "lunch?"),
            ("reply", &of, &Value::Null, "yes"),
            ("reaction", &of, &yes, "👍"),
            ("reaction", &of, &yes, "🎉"),
            ("reaction", &of, &no, "👍"),
        ]
    );
}

#[test]
fn a_script_ignores_a_nick_across_runs_and_is_told_what_line_mode_does_not_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let carol = dir.path().join("carol");
    let (status, events) = run_client(spec(&server, "carol", &carol), "/ignore bob\n/ignore\n");
    assert!(status.success(), "{events:#?}");
    let notices: Vec<&str> =
        events.iter().filter(|e| e["event"] == "notice").filter_map(|e| e["text"].as_str()).collect();
    assert!(notices.contains(&"ignoring bob: their messages are hidden (/unignore bob to show them)"), "{notices:?}");
    assert!(notices.contains(&"ignoring: bob"), "{notices:?}");

    let (status, events) = run_client(spec(&server, "bob", &dir.path().join("bob")), "hello carol\n");
    assert!(status.success(), "{events:#?}");
    let (status, events) = run_client(spec(&server, "ana", &dir.path().join("ana")), "hi all\n");
    assert!(status.success(), "{events:#?}");

    // A new run reads the list kept beside the account's state: bob's message is received (and acknowledged) but
    // not printed; ana's is.
    let (status, events) = run_client(spec(&server, "carol", &carol), "/silence\n");
    assert_eq!(status.code(), Some(4), "a refused line: {events:#?}");
    assert!(events.iter().any(is_message_with_text("hi all")), "{events:#?}");
    assert!(!events.iter().any(is_message_with_text("hello carol")), "{events:#?}");
    assert!(
        events.iter().any(|e| e["event"] == "error"
            && e["message"].as_str().is_some_and(|m| m.starts_with("line mode does not alert"))),
        "{events:#?}"
    );
    let chats = std::fs::read_dir(carol.join("servers")).expect("the home holds the chat").flatten();
    let kept: Vec<String> = chats
        .filter_map(|chat| std::fs::read_to_string(chat.path().join("carol").join("preferences.toml")).ok())
        .collect();
    assert!(matches!(&kept[..], [file] if file.contains("ignored = [\"bob\"]")), "beside carol's state: {kept:?}");

    let (status, events) = run_client(spec(&server, "carol", &carol), "/unignore bob\n/history 5\n");
    assert!(status.success(), "{events:#?}");
    assert!(events.iter().any(|e| e["event"] == "notice" && e["text"] == "no longer ignoring bob"), "{events:#?}");
    let history: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "history")
        .flat_map(|e| e["messages"].as_array().into_iter().flatten())
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(history.contains(&"hello carol"), "shown again once unignored: {events:#?}");
}

/// Version 6 in line mode: `/away` is told back and another's `/whois` shows it; `--json` prints who is typing and
/// how far others read (a raw client of version 6 types and reads here); line mode itself never says it is typing
/// or how far it read.
#[test]
fn away_whois_typing_and_read_markers_in_line_mode() {
    use palomar_proto::{ClientMsg, Conversation, MessageId, MessageKind, PROTOCOL_VERSION, RoomName, ServerMsg};

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (status, events) = run_client(spec(&server, "ana", &dir.path().join("ana")), "/away at lunch\n");
    assert!(status.success(), "the away message is answered: {events:#?}");
    let away = serde_json::json!({"event": "away", "nick": "ana", "message": "at lunch"});
    assert!(events.contains(&away), "{events:#?}");

    let mut bob = Client::start(spec(&server, "bob", &dir.path().join("bob")));
    bob.wait_for("synced", |e| e["event"] == "status" && e["state"] == "synced");
    bob.line("/whois @ana");
    let whois = bob.wait_for("whois", |e| e["event"] == "whois");
    assert_eq!(whois["nick"], "ana", "{whois}");
    assert_eq!(whois["online"], false, "{whois}");
    assert_eq!(whois["away"], "at lunch", "{whois}");
    assert_eq!(whois["rooms"], serde_json::json!(["#lobby"]), "{whois}");
    bob.line("/whois nobody");
    bob.wait_for("no such user", |e| e["event"] == "error" && e["message"] == "no such user: nobody");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let lobby = Conversation::Room(RoomName::lobby());
    let (mut carol, mut carol_out) = runtime.block_on(crate::kinds::log_in(&server, "carol", PROTOCOL_VERSION));
    runtime.block_on(carol_out.send(&ClientMsg::Typing { conversation: lobby.clone(), typing: true })).expect("sends");
    let typing = bob.wait_for("typing", |e| e["event"] == "typing" && e["nick"] == "carol");
    assert_eq!((&typing["conversation"], &typing["typing"]), (&"#lobby".into(), &true.into()), "{typing}");
    let post = ClientMsg::Post {
        id: MessageId([1; 16]),
        to: lobby.clone(),
        kind: MessageKind::Text,
        text: "back from lunch?".into(),
    };
    runtime.block_on(carol_out.send(&post)).expect("sends");
    let message = bob.wait_for("carol's message", is_message_with_text("back from lunch?"));
    let seq = message["seq"].as_u64().expect("seq");
    runtime.block_on(carol_out.send(&ClientMsg::MarkRead { conversation: lobby, seq })).expect("sends");
    let read = bob.wait_for("read", |e| e["event"] == "read" && e["nick"] == "carol");
    assert_eq!((&read["conversation"], &read["seq"]), (&"#lobby".into(), &seq.into()), "{read}");

    // What bob types and reads is never told: carol gets his message and no typing notice or marker of his.
    bob.line("not yet");
    let frames = runtime.block_on(async {
        let mut frames = Vec::new();
        tokio::time::timeout(crate::common::PATIENCE, async {
            loop {
                let frame = carol.read_msg::<ServerMsg>().await.expect("reads").expect("open");
                if let ServerMsg::Ping { nonce } = frame {
                    carol_out.send(&ClientMsg::Pong { nonce }).await.expect("sends");
                }
                let done = matches!(&frame, ServerMsg::Messages(m) if m.iter().any(|m| m.text == "not yet"));
                frames.push(frame);
                if done {
                    return;
                }
            }
        })
        .await
        .expect("in time");
        frames
    });
    let told = |frame: &ServerMsg| match frame {
        ServerMsg::Typing { nick, .. } => nick.as_str() == "bob",
        ServerMsg::ReadMarkers { markers } => markers.iter().any(|marker| marker.nick.as_str() == "bob"),
        _ => false,
    };
    assert!(!frames.iter().any(told), "{frames:?}");
    let (status, events) = bob.finish();
    assert_eq!(status.code(), Some(4), "/whois nobody is a refused line: {events:#?}");
}
