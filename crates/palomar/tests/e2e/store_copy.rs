//! `palomar store copy` with the real binary: a server moved from its data directory's SQLite store to
//! PostgreSQL, and back, carries on where it was for its clients (passwords, history once with the same seqs,
//! the next seqs, suspensions and the audit log); a store that a server is using is not copied.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{BIN, ClientSpec, Server, add_user, assert_in_order_once, run_client};
use palomar_test_postgres::TestDatabase;

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: &nick[..1], home, extra: &[] }
}

/// `palomar store copy --from FROM --to TO EXTRA…`: whether it succeeded, its stdout and its stderr.
fn store_copy(from: &str, to: &str, extra: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(["store", "copy", "--from", from, "--to", to])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("palomar store copy runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// Runs a client to the end of `input`, which must succeed; its events.
fn session(server: &Server, nick: &str, home: &Path, input: &str) -> Vec<Value> {
    let (status, events) = run_client(spec(server, nick, home), input);
    assert!(status.success(), "{nick}'s client: {status}: {events:#?}");
    events
}

/// `(conversation, seq, id)` of each `event` ("message" or "accepted") among `events`.
fn seqs(events: &[Value], event: &str) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| {
            let text = |field: &str| e[field].as_str().expect("a string").to_owned();
            (text("conversation"), e["seq"].as_u64().expect("a seq"), text("id"))
        })
        .collect()
}

#[test]
fn a_server_moved_to_postgres_and_back_carries_on_where_it_was() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("a UTF-8 path");
    let (ana, bob, carol) = (dir.path().join("ana"), dir.path().join("bob"), dir.path().join("carol"));
    let server = Server::start(&data);
    // carol registers and goes: she reads the history only after the move.
    session(&server, "carol", &carol, "");
    session(&server, "bob", &bob, "");
    let sent = session(&server, "ana", &ana, "one\ntwo\nthree\n/msg bob private one\n/msg bob private two\n");
    let sent = seqs(&sent, "accepted");
    assert_eq!(sent.len(), 5);
    let read = session(&server, "bob", &bob, "");
    assert_eq!(seqs(&read, "message").len(), 5, "bob has read everything: {read:#?}");

    let (ok, _, stderr) = store_copy(data_arg, database.url(), &[]);
    assert!(!ok && stderr.contains("using the source data directory"), "refused while the server runs: {stderr}");
    let address = server.addr.clone();
    assert!(server.terminate().success());
    // An operator's account, suspended: both go into the audit log.
    add_user(&data, "dora", "d");
    let suspended =
        Command::new(BIN).args(["user", "--data", data_arg, "suspend", "dora", "--reason", "moved"]).output();
    assert!(suspended.expect("palomar user runs").status.success());

    let (ok, stdout, stderr) = store_copy(data_arg, database.url(), &[]);
    assert!(ok, "copies: {stdout}{stderr}");
    assert!(stdout.contains("accounts: 4\n") && stdout.contains("messages: 5\n"), "{stdout}");
    assert!(stdout.contains("suspensions: 1\n") && stdout.contains("audit log entries: 2\n"), "{stdout}");
    assert!(stderr.contains("verifying: "), "plain progress lines when stderr is not a terminal: {stderr}");

    // The same data directory and address: the same certificate and chat for the clients.
    let server = Server::start_on(&data, &address, &["--store", database.url()]);
    let elsewhere = dir.path().join("elsewhere");
    let (ok, _, stderr) = store_copy(database.url(), elsewhere.to_str().expect("a UTF-8 path"), &[]);
    assert!(!ok && stderr.contains("`palomar serve` are open"), "refused while a server uses it: {stderr}");
    let (status, events) = run_client(spec(&server, "dora", &dir.path().join("dora")), "");
    let suspended =
        events.iter().any(|e| e["event"] == "fatal" && e["message"].as_str().is_some_and(|m| m.ends_with(": moved")));
    assert!(!status.success() && suspended, "still suspended: {events:#?}");
    let audit = Command::new(BIN).args(["audit", "--store", database.url()]).output().expect("palomar audit runs");
    let audit = String::from_utf8_lossy(&audit.stdout).into_owned();
    let actions: Vec<&str> = audit.lines().filter_map(|line| line.split('\t').nth(2)).collect();
    assert_eq!(actions, ["user add", "user suspend"], "{audit}");

    let history = session(&server, "carol", &carol, "");
    let lobby: Vec<_> = sent.iter().filter(|(conversation, ..)| conversation == "#lobby").cloned().collect();
    assert_eq!(seqs(&history, "message"), lobby, "the history once, with the seqs and ids it was given");
    assert_in_order_once(&history, "#lobby");
    let again = session(&server, "bob", &bob, "");
    assert!(seqs(&again, "message").is_empty(), "nothing twice: bob's cursors came along: {again:#?}");
    let next = session(&server, "ana", &ana, "four\n/msg bob private three\n");
    let next: Vec<(String, u64)> = seqs(&next, "accepted").into_iter().map(|(c, seq, _)| (c, seq)).collect();
    assert_eq!(next, [("#lobby".to_owned(), 4), ("@bob".to_owned(), 3)], "the seqs continue");
    let read = session(&server, "bob", &bob, "");
    let mut read: Vec<(String, u64)> = seqs(&read, "message").into_iter().map(|(c, seq, _)| (c, seq)).collect();
    read.sort();
    assert_eq!(read, [("#lobby".to_owned(), 4), ("@ana".to_owned(), 3)], "each conversation's next seq, once");
    assert!(server.terminate().success());

    // And back: the data directory still holds the store the copy started from.
    let (ok, _, stderr) = store_copy(database.url(), data_arg, &[]);
    assert!(!ok && stderr.contains("already holds a store") && stderr.contains("--replace"), "{stderr}");
    let (ok, stdout, stderr) = store_copy(database.url(), data_arg, &["--replace"]);
    assert!(ok && stdout.contains("messages: 7\n"), "copies back: {stdout}{stderr}");
    let server = Server::start_on(&data, &address, &[]);
    let next = session(&server, "ana", &ana, "five\n");
    assert_eq!(seqs(&next, "accepted").first().map(|(_, seq, _)| *seq), Some(5));
    let read = session(&server, "carol", &carol, "");
    let read: Vec<u64> = seqs(&read, "message").into_iter().map(|(_, seq, _)| seq).collect();
    assert_eq!(read, [4, 5], "carol gets what she had not read, once");
}
