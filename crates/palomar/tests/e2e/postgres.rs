//! The server on PostgreSQL (`palomar serve --store postgres://…`), with the real binary: what the embedded store
//! guarantees holds there too, and `palomar user` manages its accounts. Each test has a throwaway database of
//! its own (see `palomar-test-postgres` for which server).

use std::process::{Command, Stdio};

use crate::common::{BIN, Client, ClientSpec, Server, assert_in_order_once, run_client};
use palomar_test_postgres::TestDatabase;

fn spec<'a>(server: &'a Server, nick: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password: "pw-of-test", home, extra: &[] }
}

/// `palomar user --store URL ARGS…`, with `password` for a new account; its status and output.
fn user(database: &TestDatabase, args: &[&str]) -> (bool, String) {
    let output = Command::new(BIN)
        .args(["user", "--store", database.url()])
        .args(args)
        .env("PALOMAR_PASSWORD", "pw-of-test")
        .stdin(Stdio::null())
        .output()
        .expect("palomar user runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn a_server_on_postgres_delivers_what_it_acknowledged_across_a_kill() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, "127.0.0.1:0", &["--store", database.url()]);
    let bob_home = dir.path().join("bob");
    let (status, _) = run_client(spec(&server, "bob", &bob_home), "");
    assert!(status.success(), "bob registers");

    let input: String = (0..300).map(|i| format!("kept in the database {i}\n")).collect();
    let (status, ana_events) = run_client(spec(&server, "ana", &dir.path().join("ana")), &input);
    assert!(status.success(), "ana's client exits 0 once all 300 are acknowledged");
    assert_eq!(ana_events.iter().filter(|e| e["event"] == "accepted").count(), 300);
    server.kill();
    let server = server.restart();

    let mut bob = Client::start(spec(&server, "bob", &bob_home));
    bob.wait_messages(300, |m| m["from"] == "ana");
    let (status, events) = bob.finish();
    assert!(status.success());
    let texts: Vec<&str> =
        events.iter().filter(|e| e["event"] == "message").map(|e| e["text"].as_str().expect("text")).collect();
    let expected: Vec<String> = (0..300).map(|i| format!("kept in the database {i}")).collect();
    assert_eq!(texts, expected, "exactly those 300, in order, once");
    assert_in_order_once(&events, "#lobby");
    assert!(!data.join("store.sqlite").exists(), "nothing went to the embedded store");
}

#[test]
fn palomar_user_manages_the_accounts_of_a_postgres_store() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, output) = user(&database, &["add", "carol"]);
    assert!(ok, "adds to a new database, creating its schema: {output}");
    let (ok, output) = user(&database, &["list"]);
    assert!(ok && output.starts_with("carol\t"), "{output}");

    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--store", database.url()]);
    let (status, events) = run_client(spec(&server, "carol", &dir.path().join("carol")), "hello from carol\n");
    assert!(status.success(), "carol signs in with the password she was given");
    assert!(events.iter().any(|e| e["event"] == "accepted"));

    let (ok, output) = user(&database, &["remove", "carol"]);
    assert!(ok && output.contains("removed carol"), "the running server removes her: {output}");
    let (ok, output) = user(&database, &["list"]);
    assert!(ok && output.is_empty(), "{output}");
    drop(server);
    let (ok, output) = user(&database, &["remove", "carol"]);
    assert!(!ok && output.contains("no account carol"), "with no server, straight on the database: {output}");
}

#[test]
fn a_password_in_the_database_url_is_refused_and_not_repeated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--store", "postgres://palomar:hunter2@127.0.0.1/palomar"])
        .stdin(Stdio::null())
        .output()
        .expect("palomar serve runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("PGPASSWORD") && !stderr.contains("hunter2"), "{stderr}");
}
