//! The server on PostgreSQL (`palomar serve --store postgres://…`), with the real binary: what the embedded store
//! guarantees holds there too, a commit whose answer is lost included, and `palomar user` manages its accounts.
//! Each test has a throwaway database of its own (see `palomar-test-postgres` for which server).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{BIN, Client, ClientSpec, Server, assert_in_order_once, is_message_with_text, run_client};
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
        .args(["serve", "--no-web", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--store", "postgres://palomar:hunter2@127.0.0.1/palomar"])
        .stdin(Stdio::null())
        .output()
        .expect("palomar serve runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("PGPASSWORD") && !stderr.contains("hunter2"), "{stderr}");
}

/// A relay in front of the database that, once armed, lets the next `COMMIT` of the server's writer through and
/// then breaks that connection before PostgreSQL's answer comes back: the transaction is committed, and the
/// server cannot know it.
struct CommitBreaker {
    addr: String,
    armed: Arc<AtomicBool>,
    broken: Arc<AtomicUsize>,
}

impl CommitBreaker {
    fn start(upstream: String) -> CommitBreaker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("an address").to_string();
        let (armed, broken) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (arm, count) = (armed.clone(), broken.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                relay(client, server, arm.clone(), count.clone());
            }
        });
        CommitBreaker { addr, armed, broken }
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|window| window == needle)
}

/// Copies both ways; the writer's connection is the one that asked for `synchronous_commit` and listens to nobody.
fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, broken: Arc<AtomicUsize>) {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut from_client, mut to_server) = (client.try_clone().expect("clones"), server.try_clone().expect("clones"));
    let (mut from_server, mut to_client) = (server, client);
    let cut_here = cut.clone();
    std::thread::spawn(move || {
        let (mut writer, mut listener) = (false, false);
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(read @ 1..) = from_client.read(&mut buffer) {
            let chunk = &buffer[..read];
            writer |= contains(chunk, b"synchronous_commit");
            listener |= contains(chunk, b"LISTEN");
            let breaking = writer && !listener && contains(chunk, b"COMMIT\0") && armed.swap(false, Ordering::SeqCst);
            if breaking {
                cut_here.store(true, Ordering::SeqCst);
                broken.fetch_add(1, Ordering::SeqCst);
            }
            if to_server.write_all(chunk).is_err() {
                break;
            }
            if breaking {
                // Long enough for PostgreSQL to commit; its answer is dropped on the way back.
                std::thread::sleep(Duration::from_millis(300));
                let _ = to_server.shutdown(Shutdown::Both);
                let _ = from_client.shutdown(Shutdown::Both);
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(read @ 1..) = from_server.read(&mut buffer) {
            if cut.load(Ordering::SeqCst) || to_client.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
}

/// The database connection breaks as a message's group commits: the commit went through, the server refuses the
/// message as not stored, and the sender's next message is held back behind it. When the first message then
/// reaches its sender through another's (so the client takes it as accepted and will not send it again), the
/// server closes the connection rather than hold the next one back for ever; on the new connection it goes out.
/// Each message is stored once, in the order typed.
#[test]
fn a_commit_whose_answer_was_lost_leaves_nothing_lost_repeated_or_stuck() {
    let database = TestDatabase::create();
    let url = database.url();
    let upstream = url.split_once('@').and_then(|(_, rest)| rest.split_once('/')).map(|(host, _)| host).expect("host");
    let breaker = CommitBreaker::start(upstream.to_owned());
    let through_breaker = url.replacen(upstream, &breaker.addr, 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--store", &through_breaker]);
    let mut bob = Client::start(spec(&server, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    let mut ana = Client::start(spec(&server, "ana", &dir.path().join("ana")));
    ana.wait_for("connected", |e| e["state"] == "connected");

    breaker.arm();
    ana.line("committed, answer lost");
    ana.wait_for("the refusal", |e| e["event"] == "error" && e["code"] == "StoreUnavailable");
    assert_eq!(breaker.broken.load(Ordering::SeqCst), 1, "the writer's connection broke at its commit");
    ana.line("typed next");
    bob.line("shows the first to ana");
    ana.wait_for("a new connection", |e| e["state"] == "disconnected");
    bob.wait_for("the next", is_message_with_text("typed next"));
    let (status, _) = ana.finish();
    assert!(status.success(), "ana's outbox drained");
    let texts: Vec<String> = bob
        .messages()
        .iter()
        .filter(|m| m["from"] == "ana")
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(texts, ["committed, answer lost", "typed next"], "each once, in the order typed");
    assert_in_order_once(&bob.seen, "#lobby");
}
