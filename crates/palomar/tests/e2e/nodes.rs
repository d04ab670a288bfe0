//! Several `palomar serve` nodes on one PostgreSQL database, with the real binary: a message sent through one
//! node reaches the members connected to the others live, once and in order; presence, joins and direct
//! messages cross nodes; a node killed without a word has its users move to another node and lose nothing, and
//! its sessions expire there; the database restarted as if it crashed loses nothing acknowledged; failed logins
//! count on every node. Each test has a throwaway database of its own.

use std::path::Path;
use std::time::Duration;

use crate::common::{
    Client, ClientSpec, LoginAnswer, Server, assert_in_order_once, connected_to, is_message_with_text, raw_login,
    texts_from,
};
use palomar_proto::ErrorCode;
use palomar_test_postgres::{TestCluster, TestDatabase};
use serde_json::Value;

/// How long a killed node's users stay shown through it: the server's heartbeat expiry plus one heartbeat, and
/// a margin for a busy machine.
const NODE_EXPIRY: Duration = Duration::from_secs(10 + 2 + 3);

/// `count` nodes on the database at URL `database` sharing one TLS identity (the first node's, generated), with arrivals announced
/// after 200 ms.
pub(crate) fn start_nodes(database: &str, dir: &Path, count: usize) -> Vec<Server> {
    start_configured_nodes(database, dir, count, "")
}

/// [`start_nodes`] with `settings` added to each node's configuration file.
fn start_configured_nodes(database: &str, dir: &Path, count: usize, settings: &str) -> Vec<Server> {
    let limits = format!("{settings}\n[limits]\npresence_after_ms = 200\n");
    let first_config = dir.join("first.toml");
    std::fs::write(&first_config, &limits).expect("writes config");
    let first_data = dir.join("node0");
    let store = ["--store", database];
    let first =
        Server::start_on(&first_data, "127.0.0.1:0", &[&store[..], &["--config", path(&first_config)]].concat());
    let shared = dir.join("shared.toml");
    let tls = first_data.join("tls");
    let config =
        format!("{limits}[tls]\ncert = {:?}\nkey = {:?}\n", path(&tls.join("cert.pem")), path(&tls.join("key.pem")));
    std::fs::write(&shared, config).expect("writes config");
    let mut nodes = vec![first];
    for n in 1..count {
        let args = [&store[..], &["--config", path(&shared)]].concat();
        let node = Server::start_on(&dir.join(format!("node{n}")), "127.0.0.1:0", &args);
        assert_eq!(node.fingerprint, nodes[0].fingerprint, "every node presents the chat's certificate");
        nodes.push(node);
    }
    nodes
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn spec<'a>(servers: &'a str, nick: &'a str, home: &'a Path) -> ClientSpec<'a> {
    ClientSpec { server: servers, nick, password: "pw-of-test", home, extra: &[] }
}

fn presence(nick: &'static str, state: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == "presence" && e["nick"] == nick && e["state"] == state
}

#[test]
fn members_on_three_nodes_chat_live_with_presence_joins_and_direct_messages() {
    const EACH: usize = 30;
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = start_nodes(database.url(), dir.path(), 3);
    let mut carol = Client::start(spec(&nodes[2].addr, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let mut ana = Client::start(spec(&nodes[0].addr, "ana", &dir.path().join("ana")));
    ana.wait_for("connected", |e| e["state"] == "connected");
    carol.wait_for("ana online, through another node", presence("ana", "online"));
    let mut bob = Client::start(spec(&nodes[1].addr, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    carol.wait_for("bob online", presence("bob", "online"));
    ana.wait_for("bob online", presence("bob", "online"));

    for i in 0..EACH {
        ana.line(&format!("ana {i}"));
        bob.line(&format!("bob {i}"));
    }
    carol.wait_messages(2 * EACH, |m| m["from"] == "ana" || m["from"] == "bob");
    ana.wait_messages(EACH, |m| m["from"] == "bob");
    bob.wait_messages(EACH, |m| m["from"] == "ana");

    carol.line("/join garden");
    carol.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    ana.line("/join garden");
    carol.wait_for("ana joined garden", |e| presence("ana", "joined")(e) && e["room"] == "#garden");
    ana.wait_for("joined garden", |e| e["event"] == "joined" && e["conversation"] == "#garden");
    ana.line("in the garden");
    let garden = carol.wait_for("garden message", is_message_with_text("in the garden"));
    assert_eq!(garden["conversation"], "#garden");
    ana.line("/msg carol only for carol");
    let direct = carol.wait_for("ana's direct message", is_message_with_text("only for carol"));
    assert_eq!(direct["conversation"], "@ana");
    carol.line("/users lobby");
    let users = carol.wait_for("users", |e| e["event"] == "users");
    assert_eq!(users["online"], serde_json::json!(["ana", "bob", "carol"]), "online on any node");

    let (status, _) = bob.finish();
    assert!(status.success());
    carol.wait_for("bob offline", presence("bob", "offline"));
    for client in [&carol, &ana] {
        assert_in_order_once(&client.seen, "#lobby");
    }
    let expected = |nick: &str| (0..EACH).map(|i| format!("{nick} {i}")).collect::<Vec<_>>();
    assert_eq!(texts_from(&carol.seen, "ana").iter().take(EACH).copied().collect::<Vec<_>>(), expected("ana"));
    assert_eq!(texts_from(&carol.seen, "bob"), expected("bob"));
}

#[test]
fn a_node_killed_mid_stream_loses_nothing_and_its_users_move_to_another() {
    const EACH: usize = 40;
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = start_nodes(database.url(), dir.path(), 3);
    let (first, doomed, spare) = (nodes[0].addr.clone(), nodes[1].addr.clone(), nodes[2].addr.clone());
    let bobs_list = format!("{doomed},{spare}");
    let mut carol = Client::start(spec(&spare, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let mut bob = Client::start(spec(&bobs_list, "bob", &dir.path().join("bob")));
    bob.wait_for("connected to the first node of his list", connected_to(&doomed));
    carol.wait_for("bob online", presence("bob", "online"));
    let ana_home = dir.path().join("ana");
    let mut ana = Client::start(spec(&first, "ana", &ana_home));
    ana.wait_for("connected", |e| e["state"] == "connected");

    for i in 0..EACH {
        ana.line(&format!("before {i}"));
    }
    bob.wait_messages(EACH, |m| m["from"] == "ana");
    nodes[1].kill();
    for i in 0..EACH {
        ana.line(&format!("after {i}"));
    }
    bob.wait_for("moved to the spare node", connected_to(&spare));
    bob.wait_messages(2 * EACH, |m| m["from"] == "ana");
    bob.line("made it");
    ana.wait_for("bob's message through the spare node", is_message_with_text("made it"));

    // Past the dead node's expiry, bob is online once, through the spare node, and was never shown leaving.
    std::thread::sleep(NODE_EXPIRY);
    carol.line("/users lobby");
    let users = carol.wait_for("users", |e| e["event"] == "users");
    assert_eq!(users["online"], serde_json::json!(["ana", "bob", "carol"]));
    assert!(!carol.seen.iter().any(presence("bob", "offline")), "bob was never shown offline");

    let (status, events) = bob.finish();
    assert!(status.success());
    let expected: Vec<String> =
        (0..EACH).map(|i| format!("before {i}")).chain((0..EACH).map(|i| format!("after {i}"))).collect();
    assert_eq!(texts_from(&events, "ana"), expected, "every message once, in order, across the move");
    assert_in_order_once(&events, "#lobby");
}

#[test]
fn the_users_of_a_node_killed_for_good_are_shown_offline_within_its_expiry() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = start_nodes(database.url(), dir.path(), 2);
    let mut carol = Client::start(spec(&nodes[0].addr, "carol", &dir.path().join("carol")));
    carol.wait_for("connected", |e| e["state"] == "connected");
    let mut bob = Client::start(spec(&nodes[1].addr, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    carol.wait_for("bob online", presence("bob", "online"));
    nodes[1].kill();
    bob.kill();
    let before = std::time::Instant::now();
    carol.wait_for("bob offline", presence("bob", "offline"));
    assert!(before.elapsed() < NODE_EXPIRY, "within the expiry: {:?}", before.elapsed());
}

#[test]
fn a_database_restarted_mid_stream_loses_nothing_acknowledged() {
    const EACH: usize = 40;
    let cluster = TestCluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = start_nodes(&cluster.url(), dir.path(), 2);
    let mut bob = Client::start(spec(&nodes[1].addr, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", |e| e["state"] == "connected");
    let ana_home = dir.path().join("ana");
    let mut ana =
        Client::start(ClientSpec { extra: &["--drain-timeout", "180"], ..spec(&nodes[0].addr, "ana", &ana_home) });
    ana.wait_for("connected", |e| e["state"] == "connected");
    for i in 0..EACH {
        ana.line(&format!("before {i}"));
    }
    bob.wait_messages(EACH, |m| m["from"] == "ana");
    cluster.restart_immediately();
    for i in 0..EACH {
        ana.line(&format!("after {i}"));
    }
    let (status, ana_events) = ana.finish();
    assert!(status.success(), "every message acknowledged in the end");
    assert_eq!(ana_events.iter().filter(|e| e["event"] == "accepted").count(), 2 * EACH, "each accepted once");
    bob.wait_messages(2 * EACH, |m| m["from"] == "ana");
    let (_, events) = bob.finish();
    let expected: Vec<String> =
        (0..EACH).map(|i| format!("before {i}")).chain((0..EACH).map(|i| format!("after {i}"))).collect();
    assert_eq!(texts_from(&events, "ana"), expected, "every message once, in order, across the restart");
    assert_in_order_once(&events, "#lobby");
}

/// A guesser spreading its attempts over the nodes gets no more tries than on one: the failures judged by one
/// node count on the others, and the lockout holds wherever it tries next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_one_node_lock_the_guesser_out_of_every_node() {
    let database = TestDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = tokio::task::block_in_place(|| {
        start_configured_nodes(database.url(), dir.path(), 2, "[login]\nmax_failures = 3\nlockout_secs = 60\n")
    });
    let (here, elsewhere) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
    let (answer, _) = raw_login(&nodes[0].addr, elsewhere, "ana", "right").await;
    assert!(matches!(answer, LoginAnswer::Welcome { registered: true }), "{answer:?}");
    for node in [&nodes[0], &nodes[1]] {
        let (answer, _) = raw_login(&node.addr, here, "ana", "wrong").await;
        assert!(matches!(answer, LoginAnswer::Refused(ErrorCode::AuthFailed, _)), "{answer:?}");
    }
    // A notice takes a few tens of milliseconds from one node to the other; this is ample.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (answer, _) = raw_login(&nodes[0].addr, here, "ana", "wrong").await;
    assert!(matches!(answer, LoginAnswer::Refused(ErrorCode::AuthFailed, _)), "the third failure: {answer:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for node in [&nodes[1], &nodes[0]] {
        let (answer, _) = raw_login(&node.addr, here, "ana", "right").await;
        assert!(
            matches!(&answer, LoginAnswer::Refused(ErrorCode::RateLimited, why) if why.contains("try again in")),
            "locked out on {}: {answer:?}",
            node.addr
        );
    }
    let (answer, _) = raw_login(&nodes[1].addr, elsewhere, "ana", "right").await;
    assert!(matches!(answer, LoginAnswer::Welcome { registered: false }), "only the guessing address: {answer:?}");
}
