//! Delivery scenarios with the real binary: presence, offline delivery, crashes, the outbox, line mode. Each
//! scenario that involves the store runs on both stores (`on_sqlite::…`, `on_postgres::…`).

use crate::common::{
    Backend, Client, ClientSpec, Server, assert_in_order_once, is_message_with_text, run_client, start_configured_in,
};
use serde_json::Value;

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: "pw-of-test", home, extra: &[] }
}

fn presence(nick: &'static str, state: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == "presence" && e["nick"] == nick && e["state"] == state
}

on_both_stores!(
    sync: [
        three_clients_chat_and_the_third_sees_presence_and_joins,
        a_visit_shorter_than_presence_after_ms_is_not_announced,
        an_offline_member_gets_exactly_the_messages_it_missed,
        nothing_acknowledged_is_lost_or_repeated_when_the_server_is_killed_twice,
        messages_typed_while_the_server_is_down_survive_a_client_restart,
        end_of_stdin_exits_zero_after_both_lines_are_acknowledged,
        a_member_is_told_when_retention_removed_what_it_missed,
        direct_messages_reach_only_their_two_users_and_unknown_nicknames_are_refused,
        a_session_that_fell_behind_misses_no_join_elsewhere_no_new_direct_conversation_and_no_arrival,
    ],
    async: [],
);

fn three_clients_chat_and_the_third_sees_presence_and_joins(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let mut carol = Client::start(spec(&server, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let mut ana = Client::start(spec(&server, "ana", &dir.path().join("ana")));
    ana.wait_for("connected", |e| e["state"] == "connected");
    carol.wait_for("ana online", presence("ana", "online"));
    let mut bob = Client::start(spec(&server, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    carol.wait_for("bob online", presence("bob", "online"));

    ana.line("hello from ana");
    bob.line("hello from bob");
    carol.wait_for("ana's message", is_message_with_text("hello from ana"));
    carol.wait_for("bob's message", is_message_with_text("hello from bob"));
    ana.wait_for("bob's message", is_message_with_text("hello from bob"));

    carol.line("/join garden");
    carol.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    ana.line("/join garden");
    carol.wait_for("ana joined garden", |e| presence("ana", "joined")(e) && e["room"] == "#garden");
    ana.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    ana.line("in the garden");
    let garden = carol.wait_for("garden message", is_message_with_text("in the garden"));
    assert_eq!(garden["conversation"], "#garden");
    ana.line("/leave garden");
    carol.wait_for("ana left garden", |e| presence("ana", "left")(e) && e["room"] == "#garden");
    carol.line("/users lobby");
    let users = carol.wait_for("users", |e| e["event"] == "users");
    assert_eq!(users["online"], serde_json::json!(["ana", "bob", "carol"]));

    let (status, _) = bob.finish();
    assert!(status.success());
    carol.wait_for("bob offline", presence("bob", "offline"));
    for client in [&carol, &ana] {
        assert_in_order_once(&client.seen, "#lobby");
        assert_eq!(client.messages().iter().filter(|m| m["text"] == "hello from ana").count(), 1);
    }
}

/// A script that logs in, says something and leaves is not announced to the room, arriving nor leaving.
fn a_visit_shorter_than_presence_after_ms_is_not_announced(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured_in(&backend, dir.path(), "[limits]\npresence_after_ms = 10000\n");
    let mut carol = Client::start(spec(&server, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let (status, _) = run_client(spec(&server, "bot", &dir.path().join("bot")), "build 1234 passed\n");
    assert!(status.success());
    carol.wait_for("the script's message", is_message_with_text("build 1234 passed"));
    // Once the lobby's members show the script offline, its session has ended: any announcement came before.
    let deadline = std::time::Instant::now() + crate::common::PATIENCE;
    loop {
        carol.seen.retain(|e| e["event"] != "users");
        carol.line("/users lobby");
        let users = carol.wait_for("users", |e| e["event"] == "users");
        if users["offline"].as_array().is_some_and(|offline| offline.iter().any(|n| n == "bot")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the script's session did not end");
    }
    let told: Vec<&Value> = carol.seen.iter().filter(|e| e["event"] == "presence" && e["nick"] == "bot").collect();
    assert!(told.is_empty(), "the visit was announced: {told:?}");
}

fn an_offline_member_gets_exactly_the_messages_it_missed(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let bob_home = dir.path().join("bob");
    let (status, _) = run_client(spec(&server, "bob", &bob_home), "");
    assert!(status.success(), "bob registers");

    let input: String = (0..200).map(|i| format!("offline message {i}\n")).collect();
    let (status, ana_events) = run_client(spec(&server, "ana", &dir.path().join("ana")), &input);
    assert!(status.success(), "ana's client exits 0 once all 200 are acknowledged");
    assert_eq!(ana_events.iter().filter(|e| e["event"] == "accepted").count(), 200);

    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    bob.wait_messages(200, |m| m["from"] == "ana");
    let (status, events) = bob.finish();
    assert!(status.success());
    let texts: Vec<&str> =
        events.iter().filter(|e| e["event"] == "message").map(|e| e["text"].as_str().expect("text")).collect();
    let expected: Vec<String> = (0..200).map(|i| format!("offline message {i}")).collect();
    assert_eq!(texts, expected, "exactly those 200, in order, once");
    assert_in_order_once(&events, "#lobby");
}

fn nothing_acknowledged_is_lost_or_repeated_when_the_server_is_killed_twice(backend: Backend) {
    const TOTAL: usize = 2_000;
    let dir = tempfile::tempdir().expect("temp dir");
    // Paced at 100 messages a second after the burst of 200, so that both kills fall in the middle of the stream
    // (at the default 20 a second the stream alone took 90 s).
    let mut server = start_configured_in(&backend, dir.path(), "[limits]\nmessages_per_sec_per_user = 100.0\n");
    let mut bob = Client::start(spec(&server, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    let mut ana = Client::start(ClientSpec {
        extra: &["--drain-timeout", "180"],
        ..spec(&server, "ana", &dir.path().join("ana"))
    });
    ana.wait_for("connected", |e| e["state"] == "connected");

    let mut sent = 0;
    let mut send_up_to = |ana: &mut Client, upto: usize| {
        while sent < upto {
            ana.line(&format!("stream {sent}"));
            sent += 1;
        }
    };
    send_up_to(&mut ana, 800);
    bob.wait_messages(300, |m| m["from"] == "ana");
    server.kill();
    send_up_to(&mut ana, 1_400);
    server = server.restart();
    bob.wait_messages(1_000, |m| m["from"] == "ana");
    send_up_to(&mut ana, TOTAL);
    ana.wait_for("an acknowledgement after the restart", |e| {
        e["event"] == "accepted" && e["seq"].as_u64() > Some(1_000)
    });
    server.kill();
    server = server.restart();

    let (status, ana_events) = ana.finish();
    assert!(status.success(), "ana exits 0 only when all {TOTAL} were acknowledged");
    let acknowledged: std::collections::HashSet<&str> =
        ana_events.iter().filter(|e| e["event"] == "accepted").map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(acknowledged.len(), TOTAL);

    bob.wait_messages(TOTAL, |m| m["from"] == "ana");
    let (_, bob_events) = bob.finish();
    assert_in_order_once(&bob_events, "#lobby");
    let delivered: std::collections::HashSet<&str> = bob_events
        .iter()
        .filter(|e| e["event"] == "message" && e["from"] == "ana")
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(delivered, acknowledged, "bob has every acknowledged message, each once");
    let texts: Vec<&str> =
        bob_events.iter().filter(|e| e["event"] == "message").map(|e| e["text"].as_str().expect("text")).collect();
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("stream {i}")).collect();
    assert_eq!(texts, expected, "in the order ana typed them");
    drop(server);
}

fn messages_typed_while_the_server_is_down_survive_a_client_restart(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let ana_home = dir.path().join("ana");
    let bob_home = dir.path().join("bob");
    assert!(run_client(spec(&server, "ana", &ana_home), "").0.success());
    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    bob.wait_for("connected", |e| e["state"] == "connected");

    let addr = server.addr.clone();
    let data = server.data.clone();
    assert!(server.terminate().success(), "graceful stop exits 0");
    bob.wait_for("shutdown notice", |e| e["state"] == "server-shutting-down");

    let mut ana =
        Client::start(ClientSpec { server: &addr, nick: "ana", password: "pw-of-test", home: &ana_home, extra: &[] });
    ana.line("typed while down 1");
    ana.line("typed while down 2");
    ana.wait_for("both queued", |e| e["event"] == "queued" && e["text"] == "typed while down 2");
    ana.kill();

    let server = Server::start_on_in(&backend, &data, &addr, &[]);
    let (status, events) = run_client(spec(&server, "ana", &ana_home), "");
    assert!(status.success(), "the restarted client drains its outbox and exits 0");
    assert_eq!(events.iter().filter(|e| e["event"] == "accepted").count(), 2);
    bob.wait_for("first", is_message_with_text("typed while down 1"));
    bob.wait_for("second", is_message_with_text("typed while down 2"));
    assert_in_order_once(&bob.seen, "#lobby");
}

fn end_of_stdin_exits_zero_after_both_lines_are_acknowledged(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let (status, events) = run_client(spec(&server, "ana", &dir.path().join("ana")), "a\nb\n");
    assert!(status.success());
    let accepted: Vec<&Value> = events.iter().filter(|e| e["event"] == "accepted").collect();
    assert_eq!(accepted.len(), 2);
    let (_, bob_events) = run_client(spec(&server, "bob", &dir.path().join("bob")), "");
    let texts: Vec<&str> =
        bob_events.iter().filter(|e| e["event"] == "message").map(|e| e["text"].as_str().expect("text")).collect();
    assert_eq!(texts, vec!["a", "b"], "a new member sees the recent history");
}

#[test]
fn line_mode_gives_up_with_a_count_when_the_server_never_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let spec =
        ClientSpec { server: &addr, nick: "ana", password: "pw", home: dir.path(), extra: &["--drain-timeout", "1"] };
    let (status, events) = run_client(spec, "lost?\n");
    assert_eq!(status.code(), Some(3));
    let error = events.iter().find(|e| e["event"] == "error").expect("an error line");
    assert!(error["message"].as_str().expect("message").starts_with("1 message(s) not acknowledged"), "{error}");
}

fn a_member_is_told_when_retention_removed_what_it_missed(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("palomar.toml");
    std::fs::write(&config, "[history]\nretention_messages = 5\n").expect("writes config");
    let config_arg = ["--config", config.to_str().expect("utf-8")];
    let data = dir.path().join("data");
    let server = Server::start_on_in(&backend, &data, "127.0.0.1:0", &config_arg);
    let bob_home = dir.path().join("bob");
    assert!(run_client(spec(&server, "bob", &bob_home), "").0.success());
    let input: String = (1..=20).map(|i| format!("m{i}\n")).collect();
    assert!(run_client(spec(&server, "ana", &dir.path().join("ana")), &input).0.success());
    let addr = server.addr.clone();
    assert!(server.terminate().success());
    let server = Server::start_on_in(&backend, &data, &addr, &config_arg);

    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    let gap = bob.wait_for("the retention notice", |e| e["event"] == "gap");
    assert_eq!(gap["conversation"], "#lobby");
    assert_eq!(gap["complete_from"], 16);
    bob.wait_messages(5, |m| m["from"] == "ana");
    let (_, events) = bob.finish();
    let texts: Vec<&str> =
        events.iter().filter(|e| e["event"] == "message").map(|e| e["text"].as_str().expect("text")).collect();
    assert_eq!(texts, vec!["m16", "m17", "m18", "m19", "m20"]);
}

fn direct_messages_reach_only_their_two_users_and_unknown_nicknames_are_refused(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let carol_home = dir.path().join("carol");
    let mut carol = Client::start(spec(&server, "carol", &carol_home));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let bob_home = dir.path().join("bob");
    assert!(run_client(spec(&server, "bob", &bob_home), "").0.success());

    let (status, events) =
        run_client(spec(&server, "ana", &dir.path().join("ana")), "/msg bob just for you\n/msg nobody hello?\n");
    assert_eq!(status.code(), Some(4), "a refused message does not keep line mode waiting; the exit code tells");
    let refused = events.iter().find(|e| e["event"] == "error").expect("an error for the unknown nickname");
    assert_eq!(refused["code"], "UnknownNick");
    assert!(refused["message"].as_str().expect("text").contains("nobody"), "{refused}");

    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    let dm = bob.wait_for("the direct message", is_message_with_text("just for you"));
    assert_eq!(dm["conversation"], "@ana");
    bob.line("/msg ana thanks");
    bob.wait_for("own reply", is_message_with_text("thanks"));
    carol.line("/users");
    carol.wait_for("users", |e| e["event"] == "users");
    assert!(carol.messages().is_empty(), "carol sees no direct message: {:?}", carol.messages());
}

fn signal(client: &Client, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &client.pid().to_string()]).status();
    assert!(status.expect("kill runs").success());
}

fn a_session_that_fell_behind_misses_no_join_elsewhere_no_new_direct_conversation_and_no_arrival(backend: Backend) {
    const FLOOD: usize = 3_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("palomar.toml");
    // A live queue of one item overflows as soon as a session stops draining it; slow heartbeats keep a client
    // stopped for a few seconds from being taken for dead; arrivals are announced at once, so carol's is dropped
    // while the laptop is stopped rather than announced 2 s later, when the laptop may have caught up.
    let limits = "[limits]\nlive_queue_per_connection = 1\nheartbeat_interval_ms = 60000\n\
                  messages_per_sec_per_user = 0.0\npresence_after_ms = 0\n";
    std::fs::write(&config, limits).expect("writes config");
    let config_arg = ["--config", config.to_str().expect("utf-8")];
    let server = Server::start_on_in(&backend, &dir.path().join("data"), "127.0.0.1:0", &config_arg);
    let mut phone = Client::start(spec(&server, "ana", &dir.path().join("phone")));
    phone.wait_for("connected", |e| e["state"] == "connected");
    let mut laptop = Client::start(spec(&server, "ana", &dir.path().join("laptop")));
    laptop.wait_for("connected", |e| e["state"] == "connected");

    // The laptop stops reading. 12 MB of deliveries, three times the most a socket buffers here (4 MB), fill its
    // socket, its session's write waits, and its live queue overflows, so the phone's join below is dropped from
    // that queue too, and so are carol's arrival and her first direct message.
    signal(&laptop, "STOP");
    let flood: String = (0..FLOOD).map(|i| format!("flood {i:05} {}\n", "x".repeat(4_000))).collect();
    let (status, _) = run_client(spec(&server, "bob", &dir.path().join("bob")), &flood);
    assert!(status.success());
    phone.line("/join garden");
    phone.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    phone.line("in the garden");
    phone.wait_for("own garden message", is_message_with_text("in the garden"));
    let mut carol = Client::start(spec(&server, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    carol.line("/msg ana are you there?");
    carol.wait_for("own direct message", is_message_with_text("are you there?"));

    signal(&laptop, "CONT");
    laptop.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    let garden = laptop.wait_for("garden message", is_message_with_text("in the garden"));
    assert_eq!(garden["conversation"], "#garden");
    let direct = laptop.wait_for("carol's direct message", is_message_with_text("are you there?"));
    assert_eq!(direct["conversation"], "@carol");
    laptop.wait_messages(FLOOD, |e| e["conversation"] == "#lobby");
    assert_in_order_once(&laptop.seen, "#lobby");
    // Bob leaving and carol arriving were dropped from the queue as well: the room's list replaces them.
    let roster = laptop.wait_for("lobby roster", |e| e["event"] == "users" && e["room"] == "#lobby");
    assert_eq!(roster["online"], serde_json::json!(["ana", "carol"]));
    assert_eq!(roster["offline"], serde_json::json!(["bob"]));
    let connects = laptop.seen.iter().filter(|e| e["state"] == "connected").count();
    assert_eq!(connects, 1, "all of it came over the first connection, not from a reconnect");
}
