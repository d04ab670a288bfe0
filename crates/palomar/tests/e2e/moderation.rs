//! Suspending accounts with `palomar user suspend`, over the wire, with the real binary: the sessions of a
//! suspended account end at once, its logins are refused with the reason until it is lifted or expires, and
//! `palomar audit` lists what the operator did. A refusal for a suspension is not a failed login, and every node
//! on a shared database ends the suspended account's sessions.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{BIN, Client, ClientSpec, Server, is_message_with_text, run_client};
use crate::metrics::{scrape, value};
use crate::nodes::start_nodes;
use palomar_test_postgres::TestDatabase;

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: "a password", home, extra: &[] }
}

/// `palomar COMMAND --data DATA ARGS…`.
fn operator(command: &str, data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN).arg(command).arg("--data").arg(data).args(args).output().expect("palomar runs")
}

fn succeeds(output: Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fails_saying(output: Output, words: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(words), "{stderr}");
}

/// The fatal message of a client of `nick` that could not log in.
fn refused(server: &Server, nick: &str, home: &Path) -> String {
    let (status, events) = run_client(spec(server, nick, home), "");
    assert!(!status.success(), "{events:#?}");
    let fatal = events.iter().find(|e| e["event"] == "fatal").expect("a fatal event");
    fatal["message"].as_str().expect("text").to_owned()
}

#[test]
fn a_suspended_account_is_cut_off_at_once_refused_with_the_reason_and_let_back_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let data = &server.data;
    let (ana_home, bob_home) = (dir.path().join("ana"), dir.path().join("bob"));
    let mut ana = Client::start(spec(&server, "ana", &ana_home));
    ana.wait_for("connected", |e| e["state"] == "connected");
    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    bob.wait_for("connected", |e| e["state"] == "connected");

    let asked = Instant::now();
    succeeds(operator("user", data, &["suspend", "ana", "--reason", "spamming the lobby"]));
    let fatal = ana.wait_for("ana's client stopped", |e| e["event"] == "fatal");
    assert!(asked.elapsed() < Duration::from_secs(3), "ended within the server's poll");
    let message = fatal["message"].as_str().expect("text");
    assert!(message.contains("suspended until an operator lifts it: spamming the lobby"), "{fatal}");
    let (status, _) = ana.finish();
    assert!(!status.success(), "the client stops rather than reconnect");

    bob.line("still here");
    bob.wait_for("bob's own message", is_message_with_text("still here"));
    assert!(refused(&server, "ana", &ana_home).contains("spamming the lobby"));
    let list = succeeds(operator("user", data, &["list"]));
    assert!(list.lines().any(|line| line.starts_with("ana\t") && line.contains("suspended until lifted")), "{list}");
    assert!(list.lines().any(|line| line.starts_with("bob\t") && !line.contains("suspended")), "{list}");

    succeeds(operator("user", data, &["unsuspend", "ana"]));
    assert!(run_client(spec(&server, "ana", &ana_home), "").0.success());

    succeeds(operator("user", data, &["suspend", "ana", "--for", "2s", "--reason", "cool down"]));
    let until = Instant::now() + Duration::from_secs(2);
    let message = refused(&server, "ana", &ana_home);
    assert!(message.contains("suspended until ") && message.contains("UTC: cool down"), "{message}");
    std::thread::sleep(until.saturating_duration_since(Instant::now()) + Duration::from_millis(100));
    assert!(run_client(spec(&server, "ana", &ana_home), "").0.success(), "the suspension expired by itself");

    fails_saying(operator("user", data, &["suspend", "nobody"]), "there is no account nobody");
    fails_saying(operator("user", data, &["suspend", "ana", "--for", "5x"]), "not a duration");
    fails_saying(operator("user", data, &["unsuspend", "bob"]), "bob is not suspended");

    let audit = succeeds(operator("audit", data, &[]));
    let actions: Vec<(&str, &str)> = audit
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields[0].ends_with(" UTC") && fields[1].starts_with("operator (uid "), "{line}");
            (fields[2], fields[3])
        })
        .collect();
    assert_eq!(actions, [("user suspend", "ana"), ("user unsuspend", "ana"), ("user suspend", "ana")], "{audit}");
    assert!(audit.lines().next().is_some_and(|line| line.ends_with("spamming the lobby")), "{audit}");
    let newest = succeeds(operator("audit", data, &["--limit", "1"]));
    assert!(newest.trim_end().ends_with("cool down") && newest.lines().count() == 1, "{newest}");
    bob.kill();
}

/// More refused logins than the lockout allows (5): none counts as a failure, so the account's owner gets in at
/// once when the suspension is lifted; the metrics count them as `suspended`.
#[test]
fn a_refusal_for_a_suspension_is_not_a_failed_login() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--admin-listen", "127.0.0.1:0"]);
    let home = dir.path().join("ana");
    assert!(run_client(spec(&server, "ana", &home), "").0.success());
    succeeds(operator("user", &server.data, &["suspend", "ana", "--for", "1h"]));
    for _ in 0..6 {
        assert!(refused(&server, "ana", &home).contains("no reason given"));
    }
    succeeds(operator("user", &server.data, &["unsuspend", "ana"]));
    assert!(run_client(spec(&server, "ana", &home), "").0.success(), "not locked out");
    let samples = scrape(&server);
    assert_eq!(value(&samples, r#"palomar_logins_total{outcome="suspended"}"#), 6.0);
    assert_eq!(value(&samples, r#"palomar_logins_total{outcome="failed"}"#), 0.0);
}

/// ana is logged in through two nodes on one database: `palomar user suspend` on the database ends both
/// sessions, each node finding the suspension itself.
#[test]
fn every_node_ends_the_sessions_of_a_suspended_account() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = start_nodes(database.url(), dir.path(), 2);
    let mut sessions: Vec<Client> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let mut client = Client::start(spec(node, "ana", &dir.path().join(format!("ana{n}"))));
            client.wait_for("connected", |e| e["state"] == "connected");
            client
        })
        .collect();
    let suspended = std::process::Command::new(BIN)
        .args(["user", "--store", database.url(), "suspend", "ana", "--reason", "everywhere"])
        .output()
        .expect("palomar user runs");
    succeeds(suspended);
    for client in &mut sessions {
        let fatal = client.wait_for("the session ended", |e| e["event"] == "fatal");
        assert!(
            fatal["message"].as_str().expect("text").ends_with("until an operator lifts it: everywhere"),
            "{fatal}"
        );
    }
}
