//! A hostile user against the real server: what it can make the server hold, and the requests that cost the
//! server something, bounded and paced. Memory is read from `/proc` (Linux).

use std::time::{Duration, Instant};

use crate::common::{PATIENCE, RawReader as Reader, RawWriter as Writer, Server, raw_connection, start_configured};
use palomar_proto::{ClientMsg, Conversation, ErrorCode, MessageId, PROTOCOL_VERSION, RoomName, ServerMsg};

/// Memory a connection may make the server hold, at most, in these tests: well above what the server should
/// need (see RELIABILITY.md for the figures), and far below what it held before it was bounded (4 to 12 MiB).
const PER_CONNECTION: u64 = 1024 * 1024;

/// A server with `config`, which must have a `[limits]` table; these tests make many accounts from one address, so
/// the limits of new accounts are off.
fn configured(dir: &std::path::Path, config: &str) -> Server {
    let limits = "[limits]\nregistrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n";
    start_configured(dir, &config.replacen("[limits]\n", limits, 1))
}

async fn connect(addr: &str) -> (Reader, Writer) {
    raw_connection(addr, [127, 0, 0, 1].into()).await.expect("connects")
}

async fn next(reader: &mut Reader) -> ServerMsg {
    tokio::time::timeout(PATIENCE, reader.read_msg::<ServerMsg>())
        .await
        .expect("server answers in time")
        .expect("frame verifies")
        .expect("connection open")
}

/// Logs in as `nick`; the server's first answer, `Welcome` or a refusal.
async fn log_in(addr: &str, nick: &str) -> (Reader, Writer, ServerMsg) {
    let (mut reader, mut writer) = connect(addr).await;
    let hello =
        ClientMsg::Hello { version: PROTOCOL_VERSION, nick: nick.into(), password: "pw".into(), positions: vec![] };
    writer.send(&hello).await.expect("hello");
    let first = tokio::time::timeout(PATIENCE, crate::common::first_answer(&mut reader))
        .await
        .expect("answers in time")
        .expect("frame verifies")
        .expect("connection open");
    (reader, writer, first)
}

async fn logged_in(addr: &str, nick: &str) -> (Reader, Writer) {
    match log_in(addr, nick).await {
        (reader, writer, ServerMsg::Welcome { .. }) => (reader, writer),
        (_, _, other) => panic!("{nick}: expected Welcome, got {other:?}"),
    }
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

/// The server's memory once it has stopped growing (sampled until two readings a second apart agree within
/// 1 MiB, or for 20 s).
async fn settled_rss(server: &Server) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = server.rss();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = server.rss();
        if now.abs_diff(last) < 1024 * 1024 || Instant::now() > deadline {
            return now.max(last);
        }
        last = now;
    }
}

/// Connections whose cost is paid before the baseline is read: the first of them make the server grow its
/// allocator arenas, store caches and worker threads once for all, which is not what a connection holds. The
/// figure asserted is what each further connection adds.
const WARM_UP: usize = 10;

/// Reads and drops whatever the server sends, so that only what a connection sends is measured.
fn drain(mut reader: Reader) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while let Ok(Some(_)) = reader.read_payload().await {} })
}

/// 40 sessions of four free accounts each write 66 frames of 60 KB as fast as TCP lets them (`Send`s far over the
/// text limit: each is refused, but only once the session handles it); what the last 30 add is measured. The
/// server reads no further ahead of each session than `read_ahead_bytes_per_connection`, so the memory they make
/// it hold stays bounded; when they leave, their places are given back at once instead of after their queued
/// frames were worked through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_frames_from_many_sessions_hold_a_bounded_amount_of_memory_and_end_with_their_client() {
    // More for a measurement: `PALOMAR_FLOODERS=250 cargo test --release -p palomar --test e2e hostile::big_frames --
    // --nocapture` prints the figure of RELIABILITY.md.
    let connections: usize =
        std::env::var("PALOMAR_FLOODERS").ok().and_then(|n| n.parse().ok()).unwrap_or(40).max(WARM_UP + 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = configured(dir.path(), &format!("[limits]\nmax_connections = {}\n", connections + 24));
    let mut sessions = Vec::new();
    for i in 0..connections {
        // Ten sessions an account, within `max_sessions_per_user`.
        sessions.push(logged_in(&server.addr, &format!("flood{}", i / 10)).await);
    }
    let text = "x".repeat(60_000);
    let flood = |(reader, mut writer): (Reader, Writer)| {
        let text = text.clone();
        (
            drain(reader),
            tokio::spawn(async move {
                for n in 0..66u8 {
                    let send = ClientMsg::Send { id: MessageId([n; 16]), to: lobby(), text: text.clone() };
                    if writer.send(&send).await.is_err() {
                        return;
                    }
                }
                std::future::pending::<()>().await;
            }),
        )
    };
    let mut measured = sessions.split_off(WARM_UP);
    let mut floods: Vec<_> = sessions.into_iter().map(flood).collect();
    let before = settled_rss(&server).await;
    floods.extend(measured.drain(..).map(flood));
    let after = settled_rss(&server).await;
    let per_connection = after.saturating_sub(before) / (connections - WARM_UP) as u64;
    eprintln!("RSS {} -> {} MiB: {} KiB per flooding connection", before >> 20, after >> 20, per_connection >> 10);
    assert!(per_connection < PER_CONNECTION, "{} KiB held per connection", per_connection >> 10);

    for (reader, writer) in floods {
        reader.abort();
        writer.abort();
    }
    // Most places were the flooders'; they must be free again, not held while their frames are paced.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut newcomers = Vec::new();
    while newcomers.len() < connections {
        match log_in(&server.addr, &format!("newcomer{}", newcomers.len())).await {
            (reader, writer, ServerMsg::Welcome { .. }) => newcomers.push((reader, writer)),
            (_, _, ServerMsg::Error { code: ErrorCode::ServerFull, .. }) => {
                assert!(Instant::now() < deadline, "the flooders' places were still held after 15 s");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (_, _, other) => panic!("expected Welcome, got {other:?}"),
        }
    }
}

/// 40 sessions (of four accounts) ask three times for 500 messages of 8 KB of scrollback and never read; what the
/// last 30 add is measured. Each answer is one page of at most 256 KiB of text, written out before the next
/// request is read: the server holds a page per connection, not everything asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrollback_asked_for_and_never_read_holds_a_bounded_amount_of_memory() {
    // More for a measurement, as above: `PALOMAR_READERS=100`.
    let connections: usize =
        std::env::var("PALOMAR_READERS").ok().and_then(|n| n.parse().ok()).unwrap_or(40).max(WARM_UP + 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        configured(dir.path(), "[limits]\nmessages_per_sec_per_user = 0\n\n[store]\ndurability = \"normal\"\n");
    let (mut reader, mut writer) = logged_in(&server.addr, "filler").await;
    let text = "y".repeat(8_000);
    for n in 0..500u16 {
        let mut id = [0; 16];
        id[..2].copy_from_slice(&n.to_be_bytes());
        writer.send(&ClientMsg::Send { id: MessageId(id), to: lobby(), text: text.clone() }).await.expect("sends");
    }
    let mut accepted = 0;
    while accepted < 500 {
        if let ServerMsg::Accepted { .. } = next(&mut reader).await {
            accepted += 1;
        }
    }
    let mut readers = Vec::new();
    for i in 0..connections {
        readers.push(logged_in(&server.addr, &format!("reader{}", i / 10)).await);
    }
    for (_, writer) in &mut readers[..WARM_UP] {
        ask_three_times(writer).await;
    }
    let before = settled_rss(&server).await;
    for (_, writer) in &mut readers[WARM_UP..] {
        ask_three_times(writer).await;
    }
    let after = settled_rss(&server).await;
    let per_connection = after.saturating_sub(before) / (connections - WARM_UP) as u64;
    eprintln!("RSS {} -> {} MiB: {} KiB per connection not reading", before >> 20, after >> 20, per_connection >> 10);
    assert!(per_connection < PER_CONNECTION, "{} KiB held per connection", per_connection >> 10);

    // A client that reads gets pages of at most 256 KiB, newest first, and can page back through all of it.
    let (mut reader, mut writer) = logged_in(&server.addr, "scroller").await;
    let mut before = u64::MAX;
    let mut seen = 0;
    loop {
        writer.send(&ClientMsg::History { conversation: lobby(), before, limit: 500 }).await.expect("asks");
        let page = loop {
            if let ServerMsg::History(page) = next(&mut reader).await {
                break page;
            }
        };
        let Some(oldest) = page.messages.first() else { break };
        let bytes: usize = page.messages.iter().map(|m| m.text.len()).sum();
        assert!(bytes <= 256 * 1024, "a page of {bytes} bytes");
        seen += page.messages.len();
        before = oldest.seq;
    }
    assert_eq!(seen, 500, "every message, page by page");
}

/// Asks three times for 500 messages of `#lobby`'s scrollback. On a loaded machine the asking can take longer
/// than the server waits for a client that does not read (`dead_after`): it then ends that session, which holds
/// nothing any more, and the connection is reset; the rest of the asks are for nothing.
async fn ask_three_times(writer: &mut Writer) {
    for _ in 0..3 {
        let history = ClientMsg::History { conversation: lobby(), before: u64::MAX, limit: 500 };
        if let Err(error) = writer.send(&history).await {
            let closed = [std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::BrokenPipe];
            assert!(closed.contains(&error.kind()), "asks: {error}");
            return;
        }
    }
}

/// Joins are paced like messages, an account's rooms are capped, and `Welcome` lists at most 1,000
/// conversations, the rest following as `Joined`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_are_paced_and_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = "[limits]\nrequests_per_sec_per_user = 10\nrequest_burst_per_user = 20\nmax_rooms_per_user = 30\n";
    let server = configured(dir.path(), config);
    let (mut reader, mut writer) = logged_in(&server.addr, "roomhog").await;
    let started = Instant::now();
    for n in 0..60 {
        writer.send(&ClientMsg::Join { room: format!("room{n}") }).await.expect("joins");
    }
    writer.send(&ClientMsg::Ping { nonce: 1 }).await.expect("pings");
    let (mut joined, mut refused) = (0, 0);
    loop {
        match next(&mut reader).await {
            ServerMsg::Joined { .. } => joined += 1,
            ServerMsg::Error { code: ErrorCode::LimitReached, .. } => refused += 1,
            ServerMsg::Pong { nonce: 1 } => break,
            _ => {}
        }
    }
    let took = started.elapsed();
    assert_eq!((joined, refused), (29, 31), "the lobby and 29 more rooms");
    // 60 joins at 10 a second after a burst of 20 take 4 s at least, however fast the machine.
    assert!(took >= Duration::from_millis(3_500), "60 joins handled in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_never_outgrows_a_frame() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        "[limits]\nrequests_per_sec_per_user = 0\nmax_rooms_per_user = 2000\n\n[store]\ndurability = \"normal\"\n";
    let server = configured(dir.path(), config);
    let (mut reader, mut writer) = logged_in(&server.addr, "collector").await;
    for n in 0..1_050 {
        writer.send(&ClientMsg::Join { room: format!("room{n}") }).await.expect("joins");
    }
    writer.send(&ClientMsg::Ping { nonce: 1 }).await.expect("pings");
    while !matches!(next(&mut reader).await, ServerMsg::Pong { nonce: 1 }) {}

    let (mut reader, _writer, welcome) = log_in(&server.addr, "collector").await;
    let ServerMsg::Welcome { conversations, .. } = welcome else { panic!("expected Welcome, got {welcome:?}") };
    assert_eq!(conversations.len(), 1_000, "one page in Welcome");
    let mut all: Vec<String> = conversations.iter().map(|c| c.conversation.to_string()).collect();
    while all.len() < 1_051 {
        match next(&mut reader).await {
            ServerMsg::Joined { info } => all.push(info.conversation.to_string()),
            other => panic!("expected the rest as Joined, got {other:?}"),
        }
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 1_051, "the lobby and 1,050 rooms, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_has_a_bounded_number_of_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = configured(dir.path(), "[limits]\nmax_sessions_per_user = 3\n");
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(logged_in(&server.addr, "many").await);
    }
    match log_in(&server.addr, "many").await {
        (_, _, ServerMsg::Error { code: ErrorCode::ServerFull, message, .. }) => {
            assert!(message.contains("3 times"), "{message}")
        }
        (_, _, other) => panic!("expected a refusal, got {other:?}"),
    }
    logged_in(&server.addr, "other").await;
    kept.pop();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match log_in(&server.addr, "many").await {
            (_, _, ServerMsg::Welcome { .. }) => break,
            _ => assert!(Instant::now() < deadline, "the place of a session that ended was not given back"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
