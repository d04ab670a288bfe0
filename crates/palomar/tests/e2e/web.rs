//! The browser client's listener, spoken to as a browser would but from Rust: its files and headers, the origin
//! check, and the JSON protocol on its WebSocket against line-mode users (the browser itself is in
//! `tests/browser.rs`).

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Client, ClientSpec, PATIENCE, Server, is_message_with_text, start_configured};

async fn tls_to(web_addr: &str) -> TlsStream<TcpStream> {
    use palomar_transport::{TrustDecision, client_config};
    let tcp = TcpStream::connect(web_addr).await.expect("connects to the web listener");
    let (config, _) = client_config(TrustDecision::FirstUse).expect("client config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("TLS")
}

/// One HTTP/1.1 request, as text; the whole response as text.
async fn http(web_addr: &str, request_line: &str, extra_headers: &str) -> String {
    let mut tls = tls_to(web_addr).await;
    let request = format!("{request_line}\r\nHost: {web_addr}\r\n{extra_headers}Connection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("writes");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut response)).await.expect("answers in time");
    String::from_utf8_lossy(&response).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

type Socket = WebSocketStream<TlsStream<TcpStream>>;

async fn websocket(web_addr: &str, origin: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("wss://{web_addr}/ws").into_client_request().expect("request");
    request.headers_mut().insert("origin", origin.parse().expect("header value"));
    let tls = tls_to(web_addr).await;
    tokio_tungstenite::client_async(request, tls).await.map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, msg: Value) {
    socket.send(Message::text(msg.to_string())).await.expect("sends");
}

/// The next protocol message that `pred` accepts (answering pings on the way).
async fn next_matching(socket: &mut Socket, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let read = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(message))) = read else { panic!("no {what} in time: {read:?}") };
        let Message::Text(text) = message else { continue };
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        if let Some(nonce) = value.pointer("/Ping/nonce") {
            send(socket, json!({"Pong": {"nonce": nonce}})).await;
            continue;
        }
        if pred(&value) {
            return value;
        }
    }
}

async fn log_in(socket: &mut Socket, nick: &str, password: &str) -> Value {
    send(socket, json!({"Hello": {"version": 1, "nick": nick, "password": password, "positions": []}})).await;
    next_matching(socket, "Welcome", |v| v.get("Welcome").is_some() || v.get("Error").is_some()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_with_its_security_headers_and_nothing_else_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let page = http(&server.web_addr, "GET / HTTP/1.1", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")), "{page}");
    let csp = header(&page, "content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&page, "strict-transport-security"), None, "no HSTS with a self-signed certificate");

    let missing = http(&server.web_addr, "GET /secret.txt HTTP/1.1", "").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(header(&missing, "content-security-policy").is_some(), "errors carry the headers too");
    let climbing = http(&server.web_addr, "GET /../Cargo.toml HTTP/1.1", "").await;
    assert!(climbing.starts_with("HTTP/1.1 404") || climbing.starts_with("HTTP/1.1 400"), "{climbing}");
    let posted = http(&server.web_addr, "POST / HTTP/1.1", "Content-Length: 0\r\n").await;
    assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sites_page_cannot_open_the_websocket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let refused = websocket(&server.web_addr, "https://evil.example").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 403),
        "{refused:?}"
    );
    let plain_http = websocket(&server.web_addr, &format!("http://{}", server.web_addr)).await;
    assert!(plain_http.is_err(), "a page loaded without TLS is another origin");
    websocket(&server.web_addr, &format!("https://{}", server.web_addr)).await.expect("the server's own page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_and_a_line_mode_user_talk_in_a_room_and_in_private() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let origin = format!("https://{}", server.web_addr);
    let mut ana = websocket(&server.web_addr, &origin).await.expect("opens");
    let welcome = log_in(&mut ana, "ana", "ana's password").await;
    assert_eq!(welcome.pointer("/Welcome/registered"), Some(&json!(true)), "{welcome}");
    assert_eq!(welcome.pointer("/Welcome/conversations/0/conversation"), Some(&json!({"Room": "lobby"})));

    let home = dir.path().join("bob");
    let mut bob = Client::start(ClientSpec {
        server: &server.addr,
        nick: "bob",
        password: "bob's password",
        home: &home,
        extra: &[],
    });
    let id = "019a3f5c2e7b4d1f8a9c0b1d2e3f4a5b";
    send(&mut ana, json!({"Send": {"id": id, "to": {"Room": "lobby"}, "text": "hello from a browser"}})).await;
    let accepted = next_matching(&mut ana, "Accepted", |v| v.get("Accepted").is_some()).await;
    assert_eq!(accepted.pointer("/Accepted/id"), Some(&json!(id)));
    let seq = accepted.pointer("/Accepted/seq").cloned().expect("a seq");
    bob.wait_for("ana's message", is_message_with_text("hello from a browser"));

    // A retry of the same id is the same message: the same seq, nothing stored twice.
    send(&mut ana, json!({"Send": {"id": id, "to": {"Room": "lobby"}, "text": "hello from a browser"}})).await;
    let again = next_matching(&mut ana, "Accepted", |v| v.get("Accepted").is_some()).await;
    assert_eq!(again.pointer("/Accepted/seq"), Some(&seq));

    bob.line("/msg ana <img src=x onerror=alert(1)> only text");
    let direct = next_matching(&mut ana, "bob's DM", |v| {
        v.get("Messages")
            .and_then(Value::as_array)
            .is_some_and(|messages| messages.iter().any(|m| m["conversation"] == json!({"Direct": "bob"})))
    })
    .await;
    let text = direct.pointer("/Messages/0/text").and_then(Value::as_str).expect("a text");
    assert_eq!(text, "<img src=x onerror=alert(1)> only text", "the text as typed, for the page to show as text");
    assert_eq!(direct.pointer("/Messages/0/kind"), None, "a version 1 page is sent version 1's messages");
    let dm_id = "019a3f5c2e7b4d1f8a9c0b1d2e3f4a5c";
    send(&mut ana, json!({"Send": {"id": dm_id, "to": {"Direct": "bob"}, "text": "got it"}})).await;
    bob.wait_for("ana's answer", |e| e["event"] == "message" && e["text"] == "got it" && e["from"] == "ana");
    let bob_messages = bob.messages();
    let hellos = bob_messages.iter().filter(|e| e["text"] == "hello from a browser").count();
    assert_eq!(hellos, 1, "the retried message reached bob once");

    // Malformed JSON costs one error, not the connection.
    ana.send(Message::text("{\"Send\":")).await.expect("sends");
    let error = next_matching(&mut ana, "Malformed", |v| v.get("Error").is_some()).await;
    assert_eq!(error.pointer("/Error/code"), Some(&json!("Malformed")), "{error}");
    send(&mut ana, json!({"Ping": {"nonce": 7}})).await;
    next_matching(&mut ana, "Pong", |v| v.pointer("/Pong/nonce") == Some(&json!(7))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_keeps_the_native_limits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path(), "[limits]\nhandshake_timeout_ms = 1000\nmax_frame_bytes = 4096\n");
    let origin = format!("https://{}", server.web_addr);

    let mut silent = websocket(&server.web_addr, &origin).await.expect("opens");
    let timed_out = next_matching(&mut silent, "HandshakeTimeout", |v| v.get("Error").is_some()).await;
    assert_eq!(timed_out.pointer("/Error/code"), Some(&json!("HandshakeTimeout")), "{timed_out}");

    let mut ana = websocket(&server.web_addr, &origin).await.expect("opens");
    log_in(&mut ana, "ana", "ana's password").await;
    ana.send(Message::text("x".repeat(5000))).await.expect("sends");
    let too_large = next_matching(&mut ana, "TooLarge", |v| v.get("Error").is_some()).await;
    assert_eq!(too_large.pointer("/Error/code"), Some(&json!("TooLarge")), "{too_large}");
    let closed = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = ana.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection ends after an over-size message");

    let mut binary = websocket(&server.web_addr, &origin).await.expect("opens");
    log_in(&mut binary, "bob", "bob's password").await;
    binary.send(Message::binary(vec![1, 2, 3])).await.expect("sends");
    let malformed = next_matching(&mut binary, "Malformed", |v| v.get("Error").is_some()).await;
    assert_eq!(malformed.pointer("/Error/code"), Some(&json!("Malformed")), "{malformed}");
}
