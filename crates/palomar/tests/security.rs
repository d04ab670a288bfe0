//! Security scenarios with the real server: passwords, frame integrity, certificate pinning, bad input.

mod common;

use std::time::Duration;

use common::{BIN, Client, ClientSpec, Server, is_message_with_text, run_client};
use palomar_proto::{ClientMsg, Conversation, ErrorCode, MessageId, PROTOCOL_VERSION, RoomName, ServerMsg, encode};
use palomar_transport::{FramedReader, FramedWriter, TrustDecision, client_config, frame_keys};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type Reader = FramedReader<ReadHalf<TlsStream<TcpStream>>>;
type Writer = FramedWriter<WriteHalf<TlsStream<TcpStream>>>;

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
    match next(&mut reader).await {
        ServerMsg::Welcome { .. } => {}
        other => panic!("expected Welcome, got {other:?}"),
    }
    (reader, writer)
}

async fn next(reader: &mut Reader) -> ServerMsg {
    tokio::time::timeout(common::PATIENCE, reader.read_msg::<ServerMsg>())
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

#[test]
fn a_wrong_password_is_refused_and_reveals_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
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

#[test]
fn repeated_wrong_passwords_are_locked_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    assert!(run_client(spec(&server, "ana", "right", &dir.path().join("ana")), "").0.success());
    let mut last = None;
    for _ in 0..6 {
        let (status, events) = run_client(spec(&server, "ana", "guess", &dir.path().join("guesser")), "");
        assert_eq!(status.code(), Some(2));
        last = events.into_iter().find(|e| e["event"] == "fatal");
    }
    let last = last.expect("a fatal event");
    assert!(last["message"].as_str().expect("text").contains("too many failed logins"), "{last}");
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
    let closed = tokio::time::timeout(common::PATIENCE, reader.read_payload()).await.expect("closes in time");
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
    assert!(message.contains("palomar trust --server"), "{message}");

    let trusted = std::process::Command::new(BIN)
        .args(["trust", "--server", &addr, "--fingerprint", &server.fingerprint, "--home"])
        .arg(&home)
        .status()
        .expect("runs");
    assert!(trusted.success());
    let (status, events) = run_client(spec(&server, "ana", "pw", &home), "");
    assert!(status.success(), "{events:?}");
    assert_eq!(events.iter().filter(|e| e["event"] == "accepted").count(), 1, "the message typed earlier went out");
}

#[test]
fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("palomar.toml");
    std::fs::write(&config, "[limits]\nhandshake_timeout_ms = 300\n").expect("writes config");
    let server =
        Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--config", config.to_str().expect("utf-8")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (mut reader, _writer) = raw_session(&server.addr).await;
        let answer =
            tokio::time::timeout(Duration::from_secs(30), reader.read_msg::<ServerMsg>()).await.expect("answers");
        assert!(matches!(answer, Ok(Some(ServerMsg::Error { code: ErrorCode::HandshakeTimeout, .. }))), "{answer:?}");
    });
}
