//! Clients given several addresses for one chat (`--server a,b,c`) with the real binary: they skip an address
//! where nothing listens, find the server on another address of the list after it moved there, deliver what
//! was typed meanwhile once, and refuse a node whose certificate is not the chat's pinned one.

use crate::common::{Client, ClientSpec, Server, assert_in_order_once, connected_to, texts_from};
use serde_json::Value;

/// A free loopback port, held bound but not listening: connecting to it is refused, and no client's own end of
/// a connection can take it, until the socket is dropped. A server may still bind it meanwhile, since both
/// sockets allow address reuse and neither of them listened before.
fn reserved_port() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("address reuse");
    socket.bind("127.0.0.1:0".parse().expect("an address")).expect("binds a free port");
    let address = socket.local_addr().expect("its address").to_string();
    (socket, address)
}

fn spec<'a>(servers: &'a str, nick: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: servers, nick, password: "pw-of-test", home, extra: &[] }
}

#[test]
fn clients_skip_a_dead_address_and_follow_the_server_to_another_one_of_the_list() {
    const EACH: usize = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut first = Server::start(&data);
    let (_nothing_listens, nowhere) = reserved_port();
    let (_kept_for_later, later) = reserved_port();
    let servers = format!("{nowhere},{},{later}", first.addr);

    let mut bob = Client::start(spec(&servers, "bob", &dir.path().join("bob")));
    bob.wait_for("connected", connected_to(&first.addr));
    let ana_home = dir.path().join("ana");
    let mut ana = Client::start(ClientSpec { extra: &["--drain-timeout", "180"], ..spec(&servers, "ana", &ana_home) });
    ana.wait_for("connected", connected_to(&first.addr));
    let tried: Vec<&Value> = ana.seen.iter().filter(|e| e["state"] == "connecting").collect();
    assert_eq!(
        tried.first().map(|e| &e["server"]),
        Some(&Value::from(nowhere.as_str())),
        "the list in order: {tried:?}"
    );
    assert!(
        !ana.seen.iter().any(|e| e["state"] == "disconnected"),
        "a dead first address is passed over at once, not waited on: {:#?}",
        ana.seen
    );
    let pinned = ana.wait_for("pinned", |e| e["event"] == "pinned");
    assert_eq!(pinned["server"], nowhere.as_str(), "pinned under the chat's name, the first address");

    for i in 0..EACH {
        ana.line(&format!("before {i}"));
    }
    bob.wait_messages(EACH, |m| m["from"] == "ana");

    first.kill();
    ana.wait_for("the outage", |e| e["state"] == "disconnected");
    for i in 0..EACH {
        ana.line(&format!("meanwhile {i}"));
    }
    let _moved = Server::start_on(&data, &later, &[]);
    ana.wait_for("connected to the other address", connected_to(&later));
    bob.wait_for("connected to the other address", connected_to(&later));
    for i in 0..EACH {
        ana.line(&format!("after {i}"));
    }

    bob.wait_messages(3 * EACH, |m| m["from"] == "ana");
    let (status, ana_events) = ana.finish();
    assert!(
        status.success(),
        "every message acknowledged: {:#?}",
        ana_events.iter().rev().take(10).collect::<Vec<_>>()
    );
    let (status, bob_events) = bob.finish();
    assert!(status.success());

    let expected: Vec<String> = ["before", "meanwhile", "after"]
        .iter()
        .flat_map(|phase| (0..EACH).map(move |i| format!("{phase} {i}")))
        .collect();
    assert_eq!(texts_from(&bob_events, "ana"), expected, "every message once, in order");
    assert_in_order_once(&bob_events, "#lobby");
    assert_in_order_once(&ana_events, "#lobby");
    let accepted = ana_events.iter().filter(|e| e["event"] == "accepted").count();
    assert_eq!(accepted, 3 * EACH, "each stored once");
    let chat_state = ana_home.join("servers").join(nowhere.replace(':', "_")).join("ana").join("state.sqlite");
    assert!(chat_state.exists(), "one state for the chat, under its name: {}", chat_state.display());
}

#[test]
fn a_node_with_another_certificate_is_refused_as_a_changed_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = Server::start(&dir.path().join("data"));
    let (_kept_for_the_impostor, other_node) = reserved_port();
    let servers = format!("{},{other_node}", first.addr);
    let home = dir.path().join("ana");
    let mut ana = Client::start(spec(&servers, "ana", &home));
    ana.wait_for("connected", connected_to(&first.addr));
    ana.wait_for("pinned", |e| e["event"] == "pinned");

    first.kill();
    let impostor = Server::start_on(&dir.path().join("other data"), &other_node, &[]);
    assert_ne!(impostor.fingerprint, first.fingerprint, "a data directory of its own, a certificate of its own");
    let fatal = ana.wait_for("the refusal", |e| e["event"] == "fatal");
    let (status, events) = ana.finish();
    assert_eq!(status.code(), Some(2), "stopped for good, as for a changed certificate on the one server");
    assert_eq!(fatal["certificate_changed"], true, "{fatal}");
    let message = fatal["message"].as_str().expect("a message");
    assert!(message.contains(&format!("the certificate of {other_node}")), "names the node: {message}");
    assert!(message.contains(&impostor.fingerprint), "{message}");
    assert!(message.contains(&format!("palomar trust --server {}", first.addr)), "pins for the chat: {message}");
    assert!(!events.iter().any(|e| connected_to(&other_node)(e)), "never logged in there: {events:#?}");
    let pins = std::fs::read_to_string(home.join("known_hosts")).expect("pins");
    assert!(pins.contains(&first.fingerprint) && !pins.contains(&impostor.fingerprint), "{pins}");
}
