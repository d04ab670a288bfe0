//! Accounts are identities, not names: what removing one does, over the wire, with the real binary.

use crate::common::{BIN, Client, ClientSpec, Server, is_message_with_text, run_client};

fn spec<'a>(server: &'a Server, nick: &'a str, password: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password, home, extra: &[] }
}

/// `palomar user remove NICK` on the data directory `data`.
fn remove(data: &std::path::Path, nick: &str) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["user", "--data"])
        .arg(data)
        .args(["remove", nick])
        .output()
        .expect("palomar user runs")
}

/// alice and bert talk in private; the operator removes alice while the server runs; a stranger registers
/// `alice`. Nothing of the old conversation reaches the stranger, bert's client is told the old conversation is
/// closed, and the stranger's messages reach bert as a new conversation, live and after a restart.
#[test]
fn a_removed_accounts_direct_messages_never_reach_whoever_registers_the_nickname_next() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (alice_home, bert_home) = (dir.path().join("alice"), dir.path().join("bert"));
    let mut alice = Client::start(spec(&server, "alice", "alice's password", &alice_home));
    alice.wait_for("connected", |e| e["state"] == "connected");
    let mut bert = Client::start(spec(&server, "bert", "bert's password", &bert_home));
    bert.wait_for("connected", |e| e["state"] == "connected");
    alice.line("/msg bert our secret plan");
    bert.wait_for("alice's message", is_message_with_text("our secret plan"));
    bert.line("/msg alice agreed, tell nobody");
    alice.wait_for("bert's answer", is_message_with_text("agreed, tell nobody"));
    alice.line("and a word for everyone in the lobby");
    bert.wait_for("the lobby message", is_message_with_text("and a word for everyone in the lobby"));

    let removed = remove(&server.data, "alice");
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let fatal = alice.wait_for("alice's client stopped", |e| e["event"] == "fatal");
    assert!(fatal["message"].as_str().expect("text").contains("removed"), "{fatal}");
    let closed = bert.wait_for("the conversation closed", |e| e["event"] == "closed");
    assert_eq!(closed["conversation"], "@alice");

    let stranger_home = dir.path().join("stranger");
    let mut stranger = Client::start(spec(&server, "alice", "the stranger's password", &stranger_home));
    let connected = stranger.wait_for("connected", |e| e["state"] == "connected");
    assert_eq!(connected["registered"], true, "a new account, not the old one");
    stranger.line("/msg bert hi, I am new here");
    stranger.wait_for("own message", is_message_with_text("hi, I am new here"));
    let to_bert = bert.wait_for("the stranger's message", is_message_with_text("hi, I am new here"));
    assert_eq!(to_bert["conversation"], "@alice");
    // bert away: the stranger writes again; bert's client, back with its cursors of the old conversation, gets it.
    let (status, _) = bert.finish();
    assert!(status.success());
    stranger.line("/msg bert are you there?");
    stranger.wait_for("own second message", is_message_with_text("are you there?"));
    let mut bert = Client::start(spec(&server, "bert", "bert's password", &bert_home));
    let again = bert.wait_for("the message sent while away", is_message_with_text("are you there?"));
    assert_eq!(again["conversation"], "@alice");
    let (_, stranger_events) = stranger.finish();
    for event in stranger_events.iter().filter(|e| e["event"] == "message") {
        let text = event["text"].as_str().expect("text");
        assert!(
            !text.contains("secret") && !text.contains("tell nobody"),
            "the old conversation reached the stranger: {event}"
        );
    }
    bert.kill();
}

/// Without a server running, `palomar user remove` does the removal itself; the old conversation is gone when
/// bert next connects, and a stranger under the same nickname starts with nothing.
#[test]
fn an_account_removed_while_the_server_is_down_is_gone_when_it_comes_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let bert_home = dir.path().join("bert");
    assert!(run_client(spec(&server, "bert", "b", &bert_home), "").0.success());
    let (status, _) = run_client(spec(&server, "alice", "a", &dir.path().join("alice")), "/msg bert before\n");
    assert!(status.success());
    let (status, events) = run_client(spec(&server, "bert", "b", &bert_home), "");
    assert!(status.success());
    assert!(events.iter().any(is_message_with_text("before")));
    let addr = server.addr.clone();
    assert!(server.terminate().success());

    let data = dir.path().join("data");
    let removed = remove(&data, "alice");
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    // The same address: bert's client keeps its state per server, and must find its old cursors.
    let server = Server::start_on(&data, &addr, &[]);
    let (status, events) = run_client(spec(&server, "bert", "b", &bert_home), "");
    assert!(status.success());
    let closed = events.iter().find(|e| e["event"] == "closed").expect("told to forget the old conversation");
    assert_eq!(closed["conversation"], "@alice");
    let (status, events) =
        run_client(spec(&server, "alice", "another", &dir.path().join("stranger")), "/msg bert hello\n");
    assert!(status.success());
    assert!(events.iter().filter(|e| e["event"] == "message").all(|e| e["text"] == "hello"), "nothing old: {events:?}");
    let (_, events) = run_client(spec(&server, "bert", "b", &bert_home), "");
    assert!(events.iter().any(is_message_with_text("hello")), "bert gets the new conversation's message: {events:#?}");
}
