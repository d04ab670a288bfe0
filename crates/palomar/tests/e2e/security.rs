//! Security scenarios with the real server: passwords, frame integrity, certificate pinning, bad input. Those in
//! which the store takes part (accounts, lockouts, a flooder's messages, who may read what) run on both stores;
//! the others stop before the store (TLS, frames, connection limits, files of the data directory).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{
    BIN, Backend, Client, ClientSpec, Server, is_message_with_text, run_client, start_configured, start_configured_in,
};
use palomar_proto::{ClientMsg, Conversation, ErrorCode, MessageId, PROTOCOL_VERSION, RoomName, ServerMsg, encode};
use palomar_transport::{
    FramedReader, FramedWriter, ServerIdentity, TrustDecision, client_config, frame_keys, server_config,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type Reader = FramedReader<ReadHalf<TlsStream<TcpStream>>>;
type Writer = FramedWriter<WriteHalf<TlsStream<TcpStream>>>;

on_both_stores!(
    sync: [
        a_wrong_password_is_refused_and_reveals_nothing,
        repeated_wrong_passwords_are_locked_out,
        a_flooder_is_slowed_down_while_the_room_carries_on_and_nothing_is_lost,
    ],
    async: [nobody_reads_a_conversation_they_are_not_in],
);

fn spec<'a>(server: &'a Server, nick: &'a str, password: &'a str, home: &'a std::path::Path) -> ClientSpec<'a> {
    ClientSpec { server: &server.addr, nick, password, home, extra: &[] }
}

/// A hand-driven protocol peer, for sending what a correct client never would.
async fn raw_session(addr: &str) -> (Reader, Writer) {
    let (config, _) = client_config(TrustDecision::FirstUse).expect("client config");
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("TLS handshake");
    let keys = frame_keys(tls.get_ref().1).expect("keys");
    let (read_half, write_half) = tokio::io::split(tls);
    (
        FramedReader::new(read_half, &keys.server_to_client, 1 << 24),
        FramedWriter::new(write_half, &keys.client_to_server),
    )
}

async fn raw_login(addr: &str, nick: &str) -> (Reader, Writer) {
    let (mut reader, mut writer) = raw_session(addr).await;
    let hello =
        ClientMsg::Hello { version: PROTOCOL_VERSION, nick: nick.into(), password: "raw-pw".into(), positions: vec![] };
    writer.send(&hello).await.expect("hello");
    match next_matching(&mut reader, |msg| !matches!(msg, ServerMsg::Ping { .. })).await {
        ServerMsg::Welcome { .. } => {}
        other => panic!("expected Welcome, got {other:?}"),
    }
    (reader, writer)
}

async fn next(reader: &mut Reader) -> ServerMsg {
    tokio::time::timeout(crate::common::PATIENCE, reader.read_msg::<ServerMsg>())
        .await
        .expect("server answers in time")
        .expect("frame verifies")
        .expect("connection open")
}

/// Reads frames until `pred` matches one, skipping deliveries and presence.
async fn next_matching(reader: &mut Reader, pred: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
    loop {
        let msg = next(reader).await;
        if pred(&msg) {
            return msg;
        }
    }
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn a_wrong_password_is_refused_and_reveals_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    let ana_home = dir.path().join("ana");
    assert!(run_client(spec(&server, "ana", "right horse", &ana_home), "").0.success());
    let (status, _) = run_client(spec(&server, "bob", "bob-pw", &dir.path().join("bob")), "/msg ana secret for ana\n");
    assert!(status.success());

    let (status, events) = run_client(spec(&server, "ana", "wrong horse", &dir.path().join("mallory")), "");
    assert_eq!(status.code(), Some(2));
    assert!(events.iter().all(|e| e["event"] != "message"), "nothing of ana's is shown: {events:?}");
    let fatal = events.iter().find(|e| e["event"] == "fatal").expect("a fatal event");
    assert!(fatal["message"].as_str().expect("text").contains("wrong password"), "{fatal}");

    let mut ana = Client::start(spec(&server, "ana", "right horse", &ana_home));
    let dm = ana.wait_for("the direct message", is_message_with_text("secret for ana"));
    assert_eq!(dm["conversation"], "@bob");
}

fn repeated_wrong_passwords_are_locked_out(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    assert!(run_client(spec(&server, "ana", "right", &dir.path().join("ana")), "").0.success());
    for _ in 0..5 {
        let (status, events) = run_client(spec(&server, "ana", "guess", &dir.path().join("guesser")), "");
        assert_eq!(status.code(), Some(2));
        assert!(events.iter().any(|e| e["event"] == "fatal" && e["password_refused"] == true), "{events:?}");
    }
    // The sixth is not judged: told to wait, which the client does (a lockout is not the end of it).
    let mut sixth = Client::start(spec(&server, "ana", "guess", &dir.path().join("guesser")));
    let waiting = sixth.wait_for("the lockout", |e| e["state"] == "disconnected");
    assert!(waiting["reason"].as_str().expect("text").contains("too many failed logins"), "{waiting}");
    assert!(waiting["retry_in_ms"].as_u64().expect("a time") >= 10_000, "{waiting}");
    sixth.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_a_wrong_tag_is_refused_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let bob_home = dir.path().join("bob");
    let mut bob = tokio::task::block_in_place(|| {
        let mut bob = Client::start(spec(&server, "bob", "pw", &bob_home));
        bob.wait_for("connected", |e| e["state"] == "connected");
        bob
    });

    let (mut reader, mut writer) = raw_login(&server.addr, "mallory").await;
    let tampered = ClientMsg::Send { id: MessageId([1; 16]), to: lobby(), text: "tampered".into() };
    let mut frame = writer.seal_next(&encode(&tampered));
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    writer.send_raw(&frame).await.expect("writes");
    let error = next_matching(&mut reader, |m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(matches!(error, ServerMsg::Error { code: ErrorCode::BadTag, .. }), "{error:?}");

    let genuine = ClientMsg::Send { id: MessageId([2; 16]), to: lobby(), text: "genuine".into() };
    writer.send(&genuine).await.expect("the connection is still open");
    match next_matching(&mut reader, |m| matches!(m, ServerMsg::Accepted { .. } | ServerMsg::Error { .. })).await {
        ServerMsg::Accepted { seq, .. } => assert_eq!(seq, 1, "the tampered frame was not stored"),
        other => panic!("expected Accepted, got {other:?}"),
    }

    tokio::task::block_in_place(|| {
        bob.wait_for("the genuine message", is_message_with_text("genuine"));
        bob.line("/history 10");
        let history = bob.wait_for("history", |e| e["event"] == "history");
        let texts: Vec<&str> =
            history["messages"].as_array().expect("list").iter().map(|m| m["text"].as_str().expect("text")).collect();
        assert_eq!(texts, vec!["genuine"]);
        assert!(bob.seen.iter().all(|e| e["text"] != "tampered"), "the tampered frame was not relayed");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_oversized_frames_do_not_disturb_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let (mut ana, mut bob) = tokio::task::block_in_place(|| {
        let mut ana = Client::start(spec(&server, "ana", "pw", &dir.path().join("ana")));
        let mut bob = Client::start(spec(&server, "bob", "pw", &dir.path().join("bob")));
        ana.wait_for("connected", |e| e["state"] == "connected");
        bob.wait_for("connected", |e| e["state"] == "connected");
        (ana, bob)
    });

    let mut raw = TcpStream::connect(&server.addr).await.expect("connects");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    raw.write_all(&garbage).await.expect("writes garbage");
    drop(raw);

    let (mut reader, mut writer) = raw_login(&server.addr, "mallory").await;
    let undecodable = writer.seal_next(&[0xff; 40]);
    writer.send_raw(&undecodable).await.expect("writes");
    let error = next_matching(&mut reader, |m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(matches!(error, ServerMsg::Error { code: ErrorCode::Malformed, .. }), "{error:?}");
    writer.send_raw(&u32::MAX.to_be_bytes()).await.expect("writes an oversized prefix");
    let error = next_matching(&mut reader, |m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(matches!(error, ServerMsg::Error { code: ErrorCode::TooLarge, .. }), "{error:?}");
    let closed = tokio::time::timeout(crate::common::PATIENCE, reader.read_payload()).await.expect("closes in time");
    assert!(!matches!(closed, Ok(Some(_))), "the connection is closed after an oversized frame");

    let (_, mut writer) = raw_login(&server.addr, "mallory").await;
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend([7u8; 10]);
    writer.send_raw(&truncated).await.expect("writes half a frame");
    writer.shutdown().await.expect("closes");

    let (_, _) = raw_session(&server.addr).await; // a handshake and then silence

    tokio::task::block_in_place(|| {
        ana.line("still fine");
        bob.wait_for("ana's message", is_message_with_text("still fine"));
    });
}

#[test]
fn a_regenerated_certificate_is_refused_until_trusted_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let home = dir.path().join("ana");
    let (status, events) = run_client(spec(&server, "ana", "pw", &home), "");
    assert!(status.success());
    assert!(events.iter().any(|e| e["event"] == "pinned" && e["fingerprint"] == server.fingerprint.as_str()));
    let addr = server.addr.clone();
    let old = server.fingerprint.clone();
    assert!(server.terminate().success());
    std::fs::remove_dir_all(data.join("tls")).expect("certificate removed");
    let server = Server::start_on(&data, &addr, &[]);
    assert_ne!(server.fingerprint, old);

    let (status, events) = run_client(spec(&server, "ana", "pw", &home), "hello?\n");
    assert_eq!(status.code(), Some(2));
    let fatal = events.iter().find(|e| e["event"] == "fatal").expect("a fatal event");
    let message = fatal["message"].as_str().expect("text");
    assert!(message.contains("has changed"), "{message}");
    assert!(message.contains(&server.fingerprint), "{message}");
    // The remedy it prints, run as printed, by a shell: it must pin into this client's home (`--home` here).
    let remedy = message.lines().map(str::trim).find(|l| l.starts_with("palomar trust ")).expect("the command");
    let command = remedy.replacen("palomar", &format!("'{BIN}'"), 1);
    let trusted =
        std::process::Command::new("sh").args(["-c", &command]).env_remove("PALOMAR_HOME").status().expect("runs");
    assert!(trusted.success(), "{command}");
    let (status, events) = run_client(spec(&server, "ana", "pw", &home), "");
    assert!(status.success(), "{events:?}");
    assert_eq!(events.iter().filter(|e| e["event"] == "accepted").count(), 1, "the message typed earlier went out");
}

#[test]
fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path(), "[limits]\nhandshake_timeout_ms = 300\n");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (mut reader, _writer) = raw_session(&server.addr).await;
        let answer =
            tokio::time::timeout(Duration::from_secs(30), reader.read_msg::<ServerMsg>()).await.expect("answers");
        assert!(matches!(answer, Ok(Some(ServerMsg::Error { code: ErrorCode::HandshakeTimeout, .. }))), "{answer:?}");
    });
}

/// What a hand-driven connection attempt met.
#[derive(Debug)]
enum Attempt {
    /// TLS, then the server read our `Hello` (an invalid nickname, so no password work is done).
    Admitted,
    /// Refused in words: `ServerFull` and why.
    Explained(String),
    /// Closed before or during the TLS handshake.
    Closed,
}

/// One connection attempt from `from` (any 127.x.y.z address works on loopback).
async fn attempt(server: std::net::SocketAddr, from: std::net::IpAddr) -> Attempt {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((from, 0).into()).expect("binds the source address");
    let Ok(tcp) = socket.connect(server).await else { return Attempt::Closed };
    let (config, _) = client_config(TrustDecision::FirstUse).expect("client config");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let Ok(tls) = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await else { return Attempt::Closed };
    let keys = frame_keys(tls.get_ref().1).expect("keys");
    let (read_half, write_half) = tokio::io::split(tls);
    let mut reader: Reader = FramedReader::new(read_half, &keys.server_to_client, 1 << 24);
    let mut writer: Writer = FramedWriter::new(write_half, &keys.client_to_server);
    let hello =
        ClientMsg::Hello { version: PROTOCOL_VERSION, nick: "-".into(), password: "pw".into(), positions: vec![] };
    // A refused connection may already be closed by the server: the refusal is still there to read.
    let _ = writer.send(&hello).await;
    match tokio::time::timeout(crate::common::PATIENCE, reader.read_msg::<ServerMsg>()).await.expect("answers in time")
    {
        Ok(Some(ServerMsg::Error { code: ErrorCode::InvalidName, .. })) => Attempt::Admitted,
        Ok(Some(ServerMsg::Error { code: ErrorCode::ServerFull, message, .. })) => Attempt::Explained(message),
        other => panic!("unexpected answer to a connection attempt: {other:?}"),
    }
}

/// A TCP relay in front of a server, for playing the network: it records every byte it carries, and it
/// can connect onwards from another loopback address, flip bits, or intercept TLS with a certificate of its
/// own.
struct Relay {
    addr: String,
    mode: Arc<Mutex<RelayMode>>,
    /// Every byte carried, both directions.
    wire: Arc<Mutex<Vec<u8>>>,
    /// Plaintext an intercepting relay received from clients.
    intercepted: Arc<Mutex<Vec<u8>>>,
    flipped: Arc<AtomicUsize>,
}

#[derive(Clone)]
enum RelayMode {
    Forward,
    /// Flips a bit in every `every`-th chunk (either direction), `left` more times.
    FlipBits {
        every: usize,
        left: usize,
    },
    /// Terminates TLS itself, as a man in the middle with its own certificate would.
    Intercept(tokio_rustls::TlsAcceptor),
}

impl Relay {
    async fn start(upstream: &str, source: std::net::IpAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let relay = Relay {
            addr: listener.local_addr().expect("address").to_string(),
            mode: Arc::new(Mutex::new(RelayMode::Forward)),
            wire: Arc::default(),
            intercepted: Arc::default(),
            flipped: Arc::default(),
        };
        let upstream: std::net::SocketAddr = upstream.parse().expect("server address");
        let (mode, wire, intercepted, flipped) =
            (relay.mode.clone(), relay.wire.clone(), relay.intercepted.clone(), relay.flipped.clone());
        let chunks = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let current = mode.lock().expect("lock").clone();
                if let RelayMode::Intercept(acceptor) = current {
                    let intercepted = intercepted.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(client).await else { return };
                        let mut buf = vec![0u8; 4096];
                        while let Ok(n @ 1..) = tls.read(&mut buf).await {
                            intercepted.lock().expect("lock").extend_from_slice(&buf[..n]);
                        }
                    });
                    continue;
                }
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind((source, 0).into()).expect("binds the source address");
                let Ok(server) = socket.connect(upstream).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (from, to) in [(client_read, server_write), (server_read, client_write)] {
                    let pump = Pump {
                        mode: mode.clone(),
                        wire: wire.clone(),
                        chunks: chunks.clone(),
                        flipped: flipped.clone(),
                    };
                    tokio::spawn(pump.run(from, to));
                }
            }
        });
        relay
    }

    fn set_mode(&self, mode: RelayMode) {
        *self.mode.lock().expect("lock") = mode;
    }
}

struct Pump {
    mode: Arc<Mutex<RelayMode>>,
    wire: Arc<Mutex<Vec<u8>>>,
    chunks: Arc<AtomicUsize>,
    flipped: Arc<AtomicUsize>,
}

impl Pump {
    async fn run(self, mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf) {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let chunk = &mut buf[..n];
            self.wire.lock().expect("lock").extend_from_slice(chunk);
            let count = self.chunks.fetch_add(1, Ordering::SeqCst) + 1;
            if let RelayMode::FlipBits { every, left } = &mut *self.mode.lock().expect("lock")
                && *left > 0
                && count.is_multiple_of(*every)
            {
                *left -= 1;
                chunk[n / 2] ^= 0x04;
                self.flipped.fetch_add(1, Ordering::SeqCst);
            }
            if to.write_all(chunk).await.is_err() {
                return;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_storm_from_one_address_is_refused_while_others_carry_on() {
    const BURST: f64 = 5.0;
    const PER_SEC: f64 = 0.5;
    const ATTEMPTS: usize = 300;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(
        dir.path(),
        &format!("[limits]\nnew_connections_per_sec_per_ip = {PER_SEC}\nnew_connection_burst_per_ip = {BURST}\n"),
    );
    let (mut ana, mut bob) = tokio::task::block_in_place(|| {
        let mut ana = Client::start(spec(&server, "ana", "pw", &dir.path().join("ana")));
        let mut bob = Client::start(spec(&server, "bob", "pw", &dir.path().join("bob")));
        ana.wait_for("connected", |e| e["state"] == "connected");
        bob.wait_for("connected", |e| e["state"] == "connected");
        (ana, bob)
    });

    // The storm comes from 127.0.0.2; everyone else connects from 127.0.0.1.
    let stormer: std::net::IpAddr = [127, 0, 0, 2].into();
    let target: std::net::SocketAddr = server.addr.parse().expect("address");
    let started = Instant::now();
    let mut storm = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for _ in 0..ATTEMPTS {
        if storm.len() >= 32
            && let Some(done) = storm.join_next().await
        {
            outcomes.push(done.expect("attempt"));
        }
        storm.spawn(attempt(target, stormer));
    }
    outcomes.extend(storm.join_all().await);
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = outcomes.iter().filter(|o| matches!(o, Attempt::Admitted)).count();
    let explained: Vec<&String> =
        outcomes.iter().filter_map(|o| if let Attempt::Explained(why) = o { Some(why) } else { None }).collect();
    let closed = outcomes.iter().filter(|o| matches!(o, Attempt::Closed)).count();
    println!(
        "storm of {ATTEMPTS} in {elapsed:.1} s: {admitted} admitted, {} explained, {closed} closed",
        explained.len()
    );
    // Bounds that hold however slow the machine: tokens come at a known rate, explanations once a second.
    assert!(admitted as f64 <= BURST + PER_SEC * elapsed + 1.0, "{admitted} admitted in {elapsed:.1} s");
    assert!(!explained.is_empty(), "the first refusals say why");
    assert!(explained.iter().all(|why| why.contains("too many new connections from your address")), "{explained:?}");
    assert!(explained.len() as f64 <= elapsed + 2.0, "{} explained in {elapsed:.1} s", explained.len());
    assert!(closed > 0, "past the explanations, the flood is closed before TLS");

    let relay = Relay::start(&server.addr, stormer).await;
    tokio::task::block_in_place(|| {
        // The storm disturbed nobody already connected, nor anyone from another address.
        ana.line("still here");
        bob.wait_for("ana's message", is_message_with_text("still here"));
        let mut carol = Client::start(spec(&server, "carol", "pw", &dir.path().join("carol")));
        carol.wait_for("connected", |e| e["state"] == "connected");

        // A client at the storm's address is told why it cannot get in, backs off, and gets in once tokens
        // are back.
        let mut dave = Client::start(ClientSpec {
            server: &relay.addr,
            nick: "dave",
            password: "pw",
            home: &dir.path().join("dave"),
            extra: &[],
        });
        dave.wait_for("connected", |e| e["state"] == "connected");
        for refusal in dave.seen.iter().filter(|e| e["state"] == "disconnected") {
            let reason = refusal["reason"].as_str().expect("reason");
            println!("dave: {reason}");
            assert!(reason.contains("too many"), "{reason}");
        }
        dave.line("dave got in");
        bob.wait_for("dave's message", is_message_with_text("dave got in"));
    });
}

fn a_flooder_is_slowed_down_while_the_room_carries_on_and_nothing_is_lost(backend: Backend) {
    const BURST: f64 = 20.0;
    const PER_SEC: f64 = 20.0;
    const FLOOD: usize = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured_in(
        &backend,
        dir.path(),
        &format!("[limits]\nmessages_per_sec_per_user = {PER_SEC}\nmessage_burst_per_user = {BURST}\n"),
    );
    let mut ana = Client::start(spec(&server, "ana", "pw", &dir.path().join("ana")));
    let mut bob = Client::start(spec(&server, "bob", "pw", &dir.path().join("bob")));
    let mut flooder = Client::start(spec(&server, "flo", "pw", &dir.path().join("flo")));
    for client in [&mut ana, &mut bob, &mut flooder] {
        client.wait_for("connected", |e| e["state"] == "connected");
    }

    let started = Instant::now();
    for i in 0..FLOOD {
        flooder.line(&format!("flood {i}"));
    }
    ana.line("ana is not slowed");
    // Once the flood is well past its burst, count what the server has accepted of it so far: it cannot be
    // more than the tokens handed out since the first message (a slow machine only makes it fewer).
    let accepted_ids = std::cell::RefCell::new(std::collections::HashSet::new());
    flooder.wait_for("the flood past its burst", |e| {
        let mut ids = accepted_ids.borrow_mut();
        if e["event"] == "accepted" {
            ids.insert(e["id"].as_str().expect("id").to_owned());
        }
        ids.len() >= BURST as usize + 10
    });
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = accepted_ids.borrow().len();
    println!("the flooder had {accepted} messages accepted {elapsed:.1} s after it started");
    assert!(accepted as f64 <= BURST + PER_SEC * elapsed + 1.0, "{accepted} accepted in {elapsed:.1} s");

    bob.wait_messages(FLOOD + 1, |_| true);
    let (status, events) = flooder.finish();
    assert!(status.success(), "the flooder's outbox drained: everything it typed was accepted");
    assert!(events.iter().all(|e| e["event"] != "error"), "the flooder was slowed, not refused: {events:?}");
    crate::common::assert_in_order_once(&bob.seen, "#lobby");
    let texts: Vec<&str> = bob.messages().iter().filter_map(|e| e["text"].as_str()).collect();
    for i in 0..FLOOD {
        assert_eq!(texts.iter().filter(|t| **t == format!("flood {i}")).count(), 1, "flood {i}");
    }
    assert!(texts.contains(&"ana is not slowed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_with_its_own_certificate_learns_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let relay = Relay::start(&server.addr, [127, 0, 0, 1].into()).await;
    let home = dir.path().join("ana");
    let through_relay =
        || ClientSpec { server: &relay.addr, nick: "ana", password: "ana's password", home: &home, extra: &[] };
    tokio::task::block_in_place(|| {
        let (status, events) = run_client(through_relay(), "before\n");
        assert!(status.success(), "{events:?}");
        assert!(events.iter().any(|e| e["event"] == "pinned" && e["fingerprint"] == server.fingerprint.as_str()));
    });

    // Now the relay terminates TLS itself, with a certificate of its own for the very same address.
    let mitm = ServerIdentity::load_or_generate(&dir.path().join("mitm")).expect("a certificate of its own");
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(mitm.clone()).expect("TLS config"));
    relay.set_mode(RelayMode::Intercept(acceptor));
    let (status, events) = tokio::task::block_in_place(|| run_client(through_relay(), "after\n"));
    assert_eq!(status.code(), Some(2), "the pinned client stops: {events:?}");
    let fatal = events.iter().find(|e| e["event"] == "fatal").expect("a fatal event");
    let message = fatal["message"].as_str().expect("text");
    assert!(message.contains("has changed") && message.contains(&mitm.fingerprint().to_string()), "{message}");
    let intercepted = relay.intercepted.lock().expect("lock").clone();
    assert!(intercepted.is_empty(), "the client sent nothing over the intercepted connection: {intercepted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_flips_bits_is_noticed_and_reads_nothing_and_nothing_is_lost() {
    const PASSWORD: &str = "correct horse battery";
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let relay = Relay::start(&server.addr, [127, 0, 0, 1].into()).await;
    let ana_home = dir.path().join("ana");
    let ana_spec = ClientSpec { server: &relay.addr, nick: "ana", password: PASSWORD, home: &ana_home, extra: &[] };
    let texts: Vec<String> = (0..30).map(|i| format!("attack at dawn, part {i}")).collect();
    let mut bob = tokio::task::block_in_place(|| {
        let mut bob = Client::start(spec(&server, "bob", "pw", &dir.path().join("bob")));
        bob.wait_for("connected", |e| e["state"] == "connected");
        let mut ana = Client::start(ana_spec);
        ana.wait_for("connected", |e| e["state"] == "connected");
        // From here on the relay flips a bit in every other chunk it carries, five times.
        relay.set_mode(RelayMode::FlipBits { every: 2, left: 5 });
        for text in &texts {
            ana.line(text);
        }
        let (status, events) = ana.finish();
        assert!(status.success(), "every message was accepted in the end: {events:?}");
        let broken = events.iter().filter(|e| e["state"] == "disconnected").count();
        assert!(broken >= 1, "a tampered record breaks the connection: {events:?}");
        bob
    });
    assert!(relay.flipped.load(Ordering::SeqCst) >= 1);

    tokio::task::block_in_place(|| {
        bob.wait_messages(texts.len(), |e| e["from"] == "ana");
        crate::common::assert_in_order_once(&bob.seen, "#lobby");
        let received: Vec<&str> = bob.messages().iter().filter_map(|e| e["text"].as_str()).collect();
        assert_eq!(received, texts, "each once, in order, with the bytes typed");
    });
    let wire = relay.wire.lock().expect("lock").clone();
    assert!(wire.len() > 1_000, "the relay carried the conversation ({} bytes)", wire.len());
    for secret in ["attack at dawn", PASSWORD] {
        assert!(!contains(&wire, secret), "{secret:?} is readable on the wire");
    }
}

/// A `History` request for a direct conversation whose peer name no client would send (`ana/bob`, the shape of
/// the store's key for ana and bob's conversation), made by encoding a valid name and swapping its bytes. Names
/// must be canonical, so the server cannot even decode it.
fn history_of_a_forged_direct_conversation() -> Vec<u8> {
    let placeholder = palomar_proto::Nick::parse("xxxxxxx").expect("valid");
    let request = ClientMsg::History { conversation: Conversation::Direct(placeholder), before: u64::MAX, limit: 100 };
    let mut payload = encode(&request);
    let at = payload.windows(7).position(|w| w == b"xxxxxxx").expect("the name is in the payload");
    payload[at..at + 7].copy_from_slice(b"ana/bob");
    payload
}

async fn nobody_reads_a_conversation_they_are_not_in(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(&backend, &dir.path().join("data"));
    tokio::task::block_in_place(|| {
        let mut ana = Client::start(spec(&server, "ana", "pw", &dir.path().join("ana")));
        let mut bob = Client::start(spec(&server, "bob", "pw", &dir.path().join("bob")));
        ana.wait_for("connected", |e| e["state"] == "connected");
        bob.wait_for("connected", |e| e["state"] == "connected");
        bob.line("/join secret");
        bob.wait_for("joined", |e| e["event"] == "joined");
        ana.line("/join secret");
        ana.wait_for("joined", |e| e["event"] == "joined");
        ana.line("for the secret room only");
        ana.line("/msg bob for bob only");
        bob.wait_for("the room message", is_message_with_text("for the secret room only"));
        bob.wait_for("the direct message", is_message_with_text("for bob only"));
    });

    // Mallory claims positions in ana's and bob's conversations when she logs in ...
    let (mut reader, mut writer) = raw_session(&server.addr).await;
    let secret = Conversation::Room(RoomName::parse("secret").expect("valid"));
    let ana = Conversation::Direct(palomar_proto::Nick::parse("ana").expect("valid"));
    let positions = [&secret, &ana].map(|c| palomar_proto::Position { conversation: c.clone(), seq: 0 }).to_vec();
    let hello =
        ClientMsg::Hello { version: PROTOCOL_VERSION, nick: "mallory".into(), password: "pw".into(), positions };
    writer.send(&hello).await.expect("hello");
    match next(&mut reader).await {
        ServerMsg::Welcome { conversations, .. } => {
            let names: Vec<String> = conversations.iter().map(|c| c.conversation.to_string()).collect();
            assert_eq!(names, vec!["#lobby"], "her own conversations only");
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    // ... then asks for their history, their members, to write there, and to move a cursor there.
    for request in [
        ClientMsg::History { conversation: secret.clone(), before: u64::MAX, limit: 100 },
        ClientMsg::History { conversation: ana.clone(), before: u64::MAX, limit: 100 },
        ClientMsg::Users { room: "secret".into() },
        ClientMsg::Send { id: MessageId([9; 16]), to: secret.clone(), text: "let me in".into() },
        ClientMsg::Ack { conversation: secret.clone(), seq: 2 },
    ] {
        writer.send(&request).await.expect("sends");
    }
    let forged = writer.seal_next(&history_of_a_forged_direct_conversation());
    writer.send_raw(&forged).await.expect("sends");
    writer.send(&ClientMsg::Ping { nonce: 77 }).await.expect("sends");

    // Everything is answered in order: the pong comes after the answers to all of it.
    let mut answers = Vec::new();
    loop {
        match next(&mut reader).await {
            ServerMsg::Pong { nonce: 77 } => break,
            answer => answers.push(answer),
        }
    }
    let refusals = answers.iter().filter(|a| matches!(a, ServerMsg::Error { code: ErrorCode::NotMember, .. })).count();
    assert_eq!(refusals, 4, "history (twice), users and send are refused: {answers:?}");
    let malformed = answers.iter().filter(|a| matches!(a, ServerMsg::Error { code: ErrorCode::Malformed, .. })).count();
    assert_eq!(malformed, 1, "the forged name is not a name: {answers:?}");
    for answer in &answers {
        let shown = format!("{answer:?}");
        assert!(!shown.contains("only"), "mallory saw someone else's message: {shown}");
        assert!(!matches!(answer, ServerMsg::Messages(_) | ServerMsg::History(_) | ServerMsg::Users { .. }), "{shown}");
    }
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn data_directories_and_keys_are_owner_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(mode_of(&data.join("tls")), 0o700);
    assert_eq!(mode_of(&data.join("tls/key.pem")) & 0o077, 0, "the private key is the owner's alone");

    let home = dir.path().join("ana");
    assert!(run_client(spec(&server, "ana", "pw", &home), "typed and kept in the outbox for a moment\n").0.success());
    assert_eq!(mode_of(&home), 0o700, "the client's home holds pins, outboxes and cursors");

    let accounts = dir.path().join("accounts");
    let added = std::process::Command::new(BIN)
        .args(["user", "--data"])
        .arg(&accounts)
        .args(["add", "bob"])
        .env("PALOMAR_PASSWORD", "pw")
        .status()
        .expect("runs");
    assert!(added.success());
    assert_eq!(mode_of(&accounts), 0o700, "a store created by `palomar user` holds password hashes too");
}

/// `root` and every directory and file under it, with their permission bits.
fn modes_under(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut found = vec![(root.to_owned(), mode_of(root))];
    let mut next = 0;
    while next < found.len() {
        let dir = found[next].0.clone();
        next += 1;
        if dir.is_dir() {
            for entry in std::fs::read_dir(&dir).expect("lists") {
                let path = entry.expect("entry").path();
                found.push((path.clone(), mode_of(&path)));
            }
        }
    }
    found
}

fn names_ending(modes: &[(std::path::PathBuf, u32)], suffix: &str) -> usize {
    modes.iter().filter(|(path, _)| path.to_string_lossy().ends_with(suffix)).count()
}

#[test]
fn client_and_server_files_are_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start_under_umask(&data, "000");

    // A new home, under a umask that would leave everything open to everyone.
    let home = dir.path().join("ana");
    let mut ana = Client::start_under_umask(spec(&server, "ana", "pw", &home), "000");
    ana.line("kept in the outbox until the server has it");
    ana.wait_for("accepted", |e| e["event"] == "accepted");
    // While the client runs, so that SQLite's -wal and -shm files are there too.
    let modes = modes_under(&home);
    for suffix in ["known_hosts", "state.sqlite", "state.sqlite-wal", "state.sqlite-shm"] {
        assert_eq!(names_ending(&modes, suffix), 1, "{suffix} is in {modes:?}");
    }
    for (path, mode) in &modes {
        let owner_only = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, owner_only, "{} under umask 000", path.display());
    }

    // The server's store, while it runs.
    let store: Vec<_> = modes_under(&data)
        .into_iter()
        .filter(|(path, _)| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("store.sqlite")))
        .collect();
    assert_eq!(store.len(), 3, "the store, its -wal and -shm: {store:?}");
    for (path, mode) in &store {
        assert_eq!(*mode, 0o600, "{} under umask 000", path.display());
    }

    // Files an older client left open to everyone (here by a client killed mid-run, so SQLite's files beside
    // the database stay too) are made owner-only when the client opens them.
    ana.kill();
    for (path, _) in modes_under(&home) {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("loosens");
    }
    let mut ana = Client::start_under_umask(spec(&server, "ana", "pw", &home), "000");
    ana.line("and again");
    ana.wait_for("accepted", |e| e["event"] == "accepted" && e["seq"] == 2);
    for (path, mode) in modes_under(&home).into_iter().filter(|(path, _)| path.is_file()) {
        assert_eq!(mode, 0o600, "{} is tightened", path.display());
    }
    ana.kill();

    // Pins written by `palomar trust`, and a store created by `palomar user`.
    let pins = dir.path().join("trusting");
    let trusted = crate::common::palomar(Some("000"))
        .args(["trust", "--server", "example:1", "--fingerprint", &server.fingerprint, "--home"])
        .arg(&pins)
        .status()
        .expect("runs");
    assert!(trusted.success());
    assert_eq!(mode_of(&pins.join("known_hosts")), 0o600);
    let accounts = dir.path().join("accounts");
    let added = crate::common::palomar(Some("000"))
        .args(["user", "--data"])
        .arg(&accounts)
        .args(["add", "bob"])
        .env("PALOMAR_PASSWORD", "pw")
        .status()
        .expect("runs");
    assert!(added.success());
    assert_eq!(mode_of(&accounts.join("store.sqlite")), 0o600, "it holds password hashes");
}

#[test]
fn passwords_appear_in_no_log_and_no_output() {
    const RIGHT: &str = "right-password-5512";
    const WRONG: &str = "wrong-password-7731";
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("server.log");
    let server = Server::start_logging(&dir.path().join("data"), &log);
    let home = dir.path().join("ana");
    let mut outputs = Vec::new();
    for password in [RIGHT, WRONG, RIGHT] {
        let (_, events) = run_client(spec(&server, "ana", password, &home), "hello\n");
        outputs.extend(events);
    }
    assert!(server.terminate().success());
    let log = std::fs::read_to_string(&log).expect("the log");
    assert!(log.contains("login refused"), "the log covers the logins");
    let output = serde_json::to_string(&outputs).expect("json");
    assert!(output.contains("wrong password"), "the wrong password was refused");
    for password in [RIGHT, WRONG] {
        assert!(!log.contains(password), "a password in the server's log");
        assert!(!output.contains(password), "a password in the client's output");
    }
}
