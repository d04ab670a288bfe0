//! Test harness: the real `palomar` binary as server and clients, on loopback ports and temp directories.
//! Waiting is always for an event with a deadline, never a fixed sleep.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use palomar_test_postgres::TestDatabase;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_palomar");
/// Generous: CI machines are shared and slow; nothing waits this long when things work.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `palomar` binary, started through `sh` under `umask` when there is one: the test process's own umask is
/// shared by every test running in it, so a test that needs a permissive one sets it for its children only.
pub fn palomar(umask: Option<&str>) -> Command {
    match umask {
        None => Command::new(BIN),
        Some(umask) => {
            let mut command = Command::new("sh");
            // `exec` keeps the child's pid the binary's, so signals and kills reach it.
            command.args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\""), BIN]);
            command
        }
    }
}

/// Lines of a child's stdout, read on a thread of their own.
fn line_reader(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub struct Server {
    child: Child,
    pub addr: String,
    pub fingerprint: String,
    /// The browser client's listener, `host:port`.
    pub web_addr: String,
    /// The metrics and health listener, `host:port`, when started with `--admin-listen`.
    pub admin_addr: String,
    pub data: PathBuf,
    /// The options after `--data`, given again on a restart.
    extra: Vec<String>,
    stdout: mpsc::Receiver<String>,
}

/// Where a test's server keeps its store: the SQLite file in its data directory, or a throwaway PostgreSQL
/// database (dropped with this).
pub enum Backend {
    Sqlite,
    Postgres(TestDatabase),
}

impl Backend {
    pub fn postgres() -> Backend {
        Backend::Postgres(TestDatabase::create())
    }

    /// The options of `palomar serve` that put its store here.
    fn args(&self) -> Vec<&str> {
        match self {
            Backend::Sqlite => Vec::new(),
            Backend::Postgres(database) => vec!["--store", database.url()],
        }
    }
}

/// Runs each named test, a function taking a [`Backend`], once on each store: those under `sync` as `#[test]`s,
/// those under `async` on a tokio runtime of two threads. The store is in the test's name
/// (`delivery::on_postgres::…`).
macro_rules! on_both_stores {
    (sync: [$($sync:ident),* $(,)?], async: [$($async:ident),* $(,)?] $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $sync() { super::$sync($crate::common::Backend::Sqlite) } )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $async() { super::$async($crate::common::Backend::Sqlite).await }
            )*
        }
        mod on_postgres {
            $( #[test] fn $sync() { super::$sync($crate::common::Backend::postgres()) } )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $async() { super::$async($crate::common::Backend::postgres()).await }
            )*
        }
    };
}

impl Server {
    /// Starts a server on a free port with its data in `data`.
    pub fn start(data: &Path) -> Server {
        Server::start_on(data, "127.0.0.1:0", &[])
    }

    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::launch(data, listen, extra, None, None)
    }

    /// The web listener's options a test server starts with: a free port unless `extra` says otherwise (the
    /// default port would be taken by the first of the tests running at once).
    fn web_args(extra: &[&str]) -> Vec<String> {
        if extra.iter().any(|arg| *arg == "--no-web" || *arg == "--web-listen") {
            Vec::new()
        } else {
            vec!["--web-listen".into(), "127.0.0.1:0".into()]
        }
    }

    /// Starts a server on a free port with its data in `data` and its store in `backend`.
    pub fn start_in(backend: &Backend, data: &Path) -> Server {
        Server::start_on_in(backend, data, "127.0.0.1:0", &[])
    }

    /// [`Server::start_on`] with the store in `backend` (kept on a restart).
    pub fn start_on_in(backend: &Backend, data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::start_on(data, listen, &[&backend.args()[..], extra].concat())
    }

    /// Starts a server that logs everything (`PALOMAR_LOG=trace`) into the file `log`.
    pub fn start_logging(data: &Path, log: &Path) -> Server {
        Server::launch(data, "127.0.0.1:0", &[], Some(log), None)
    }

    /// Starts a server under `umask` (for example `000`).
    pub fn start_under_umask(data: &Path, umask: &str) -> Server {
        Server::launch(data, "127.0.0.1:0", &[], None, Some(umask))
    }

    fn launch(data: &Path, listen: &str, extra: &[&str], log: Option<&Path>, umask: Option<&str>) -> Server {
        let (level, stderr) = match log {
            Some(log) => ("trace", Stdio::from(std::fs::File::create(log).expect("log file"))),
            None => ("warn", Stdio::inherit()),
        };
        let mut child = palomar(umask)
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .args(Server::web_args(extra))
            .env("PALOMAR_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server starts");
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let deadline = Instant::now() + PATIENCE;
        let (mut addr, mut fingerprint, mut web_addr, mut admin_addr) = (None, None, None, None);
        while addr.is_none() || fingerprint.is_none() {
            let line = stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("server prints its address");
            if let Some((_, a)) = line.split_once("listening on ") {
                addr = Some(a.trim().to_owned());
            }
            if let Some(web) = line.strip_prefix("web client: https://") {
                web_addr = Some(web.trim().trim_end_matches('/').to_owned());
            }
            if let Some(admin) = line.strip_prefix("metrics: http://") {
                admin_addr = Some(admin.trim().trim_end_matches("/metrics").to_owned());
            }
            if let Some(f) = line.strip_prefix("certificate fingerprint: ") {
                fingerprint = Some(f.trim().to_owned());
            }
        }
        Server {
            child,
            addr: addr.unwrap_or_default(),
            fingerprint: fingerprint.unwrap_or_default(),
            web_addr: web_addr.unwrap_or_default(),
            admin_addr: admin_addr.unwrap_or_default(),
            data: data.to_owned(),
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
            stdout,
        }
    }

    /// Starts again on the same addresses and data directory, with the same options.
    pub fn restart(&self) -> Server {
        let mut extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        if !self.web_addr.is_empty() && !extra.contains(&"--web-listen") {
            extra.extend(["--web-listen", &self.web_addr]);
        }
        Server::start_on(&self.data, &self.addr, &extra)
    }

    /// SIGKILL: no goodbye, no flush.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM: the graceful stop; returns its exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success());
        wait_child(&mut self.child)
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port")
    }

    /// The server process's resident memory, in bytes (Linux).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("reads /proc");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line-mode client with `--json` output.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<String>,
    /// Every event read so far, in order.
    pub seen: Vec<Value>,
    pub nick: String,
}

pub struct ClientSpec<'a> {
    pub server: &'a str,
    pub nick: &'a str,
    pub password: &'a str,
    pub home: &'a Path,
    pub extra: &'a [&'a str],
}

impl Client {
    pub fn start(spec: ClientSpec<'_>) -> Client {
        Client::launch(spec, None)
    }

    /// Starts a client under `umask` (for example `000`).
    pub fn start_under_umask(spec: ClientSpec<'_>, umask: &str) -> Client {
        Client::launch(spec, Some(umask))
    }

    fn launch(spec: ClientSpec<'_>, umask: Option<&str>) -> Client {
        let mut child = palomar(umask)
            .args(["chat", "--json", "--server", spec.server, "--nick", spec.nick, "--home"])
            .arg(spec.home)
            .args(spec.extra)
            .env("PALOMAR_PASSWORD", spec.password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("client starts");
        let stdin = child.stdin.take();
        let events = line_reader(child.stdout.take().expect("stdout"));
        Client { child, stdin, events, seen: Vec::new(), nick: spec.nick.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{text}").expect("client reads stdin");
        stdin.flush().expect("flush");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads events until `pred` holds for one; returns it. Panics after `PATIENCE`.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|e| pred(e)) {
            return found.clone();
        }
        self.wait_for_next(what, pred)
    }

    /// Reads events until `pred` holds for one not read before; returns it. Panics after `PATIENCE`.
    pub fn wait_for_next(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.events.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "{}: no {what} in time; saw {:#?}",
                    self.nick,
                    self.seen.iter().rev().take(15).collect::<Vec<_>>()
                ),
            };
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            self.seen.push(event.clone());
            if pred(&event) {
                return event;
            }
        }
    }

    /// Reads events until `count` messages (from others or own) matching `pred` were seen in total.
    pub fn wait_messages(&mut self, count: usize, pred: impl Fn(&Value) -> bool) {
        let matching = |seen: &[Value]| seen.iter().filter(|e| e["event"] == "message" && pred(e)).count();
        let deadline = Instant::now() + PATIENCE * 3;
        while matching(&self.seen) < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.events.recv_timeout(left) else {
                panic!("{}: saw {} of {count} messages in time", self.nick, matching(&self.seen));
            };
            self.seen.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")));
        }
    }

    /// Closes stdin and waits for the exit, reading everything it still prints.
    pub fn finish(mut self) -> (ExitStatus, Vec<Value>) {
        self.close_stdin();
        let status = wait_child(&mut self.child);
        // The pipe closes when the process is gone, so this ends; the timeout only guards a stuck reader.
        while let Ok(line) = self.events.recv_timeout(PATIENCE) {
            if let Ok(event) = serde_json::from_str(&line) {
                self.seen.push(event);
            }
        }
        (status, std::mem::take(&mut self.seen))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn messages(&self) -> Vec<&Value> {
        self.seen.iter().filter(|e| e["event"] == "message").collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `palomar` on a 100×20 pseudo-terminal (from `script`): what it draws or prints comes back as bytes, and keys
/// go in as a user types them.
pub struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    /// `palomar chat` (the full-screen client), asking for the password.
    pub fn chat(server: &str, nick: &str, home: &Path) -> Terminal {
        let home = home.to_str().expect("UTF-8 path");
        Terminal::start(&["chat", "--server", server, "--nick", nick, "--home", home], None)
    }

    /// `palomar ARGS`, with `PALOMAR_PASSWORD` set to `password` if there is one.
    pub fn start(args: &[&str], password: Option<&str>) -> Terminal {
        let quoted: Vec<String> = std::iter::once(BIN).chain(args.iter().copied()).map(|a| format!("'{a}'")).collect();
        let command = format!("stty cols 100 rows 20; exec {}", quoted.join(" "));
        let mut script = Command::new("script");
        script.args(["-q", "-e", "-c", &command, "/dev/null"]).env_remove("PALOMAR_PASSWORD").env("TERM", "xterm");
        if let Some(password) = password {
            script.env("PALOMAR_PASSWORD", password);
        }
        let mut child = script.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("script runs");
        let keys = child.stdin.take().expect("stdin");
        let mut out = child.stdout.take().expect("stdout");
        let (tx, screen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { child, keys, screen, seen: Vec::new() }
    }

    /// Waits until `text` has appeared `times` times in all that was shown.
    pub fn wait_for(&mut self, text: &str, times: usize) {
        let deadline = Instant::now() + PATIENCE;
        let count = |seen: &[u8]| seen.windows(text.len()).filter(|w| *w == text.as_bytes()).count();
        while count(&self.seen) < times {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => {
                    let shown = String::from_utf8_lossy(&self.seen);
                    let tail: String = shown.chars().rev().take(2_000).collect::<Vec<_>>().into_iter().rev().collect();
                    panic!("{text:?} not shown {times} times; the last of what was shown: {tail:?}")
                }
            }
        }
    }

    /// Forgets what was shown so far: later waits count only what comes after.
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    pub fn type_keys(&mut self, keys: &[u8]) {
        self.keys.write_all(keys).expect("types");
        self.keys.flush().expect("flushes");
    }

    pub fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client with `input` on stdin to the end; returns its exit status and every event.
pub fn run_client(spec: ClientSpec<'_>, input: &str) -> (ExitStatus, Vec<Value>) {
    let mut client = Client::start(spec);
    {
        let stdin = client.stdin.as_mut().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("writes input");
    }
    client.finish()
}

pub fn is_message_with_text(text: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["event"] == "message" && e["text"] == text
}

/// Asserts that the messages of `conversation` in `events` have strictly increasing seqs and unique ids.
pub fn assert_in_order_once(events: &[Value], conversation: &str) {
    let mut last = 0;
    let mut ids = std::collections::HashSet::new();
    for e in events.iter().filter(|e| e["event"] == "message" && e["conversation"] == conversation) {
        let seq = e["seq"].as_u64().expect("seq");
        assert!(seq > last, "seq {seq} after {last} in {conversation}");
        last = seq;
        assert!(ids.insert(e["id"].as_str().expect("id").to_owned()), "id {} delivered twice", e["id"]);
    }
}

/// A server on a free port with `config` (TOML) as its configuration file in `dir`, its data in `dir/data`.
pub fn start_configured(dir: &Path, config: &str) -> Server {
    start_configured_in(&Backend::Sqlite, dir, config)
}

/// [`start_configured`] with the store in `backend`.
pub fn start_configured_in(backend: &Backend, dir: &Path, config: &str) -> Server {
    let path = dir.join("palomar.toml");
    std::fs::write(&path, config).expect("writes config");
    Server::start_on_in(backend, &dir.join("data"), "127.0.0.1:0", &["--config", path.to_str().expect("utf-8")])
}

/// Creates an account with `palomar user add`, as an operator of a server with closed registration does.
pub fn add_user(data: &Path, nick: &str, password: &str) {
    let status = Command::new(BIN)
        .args(["user", "--data"])
        .arg(data)
        .args(["add", nick])
        .env("PALOMAR_PASSWORD", password)
        .stdout(Stdio::null())
        .status()
        .expect("palomar user runs");
    assert!(status.success(), "palomar user add {nick}: {status}");
}

/// The nicknames with an account, from `palomar user list`.
pub fn accounts(data: &Path) -> Vec<String> {
    let output = Command::new(BIN).args(["user", "--data"]).arg(data).arg("list").output().expect("palomar user runs");
    assert!(output.status.success(), "palomar user list: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| Some(line.split('\t').next()?.to_owned()))
        .collect()
}

/// What the server answered a hand-made `Hello`.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginAnswer {
    Welcome {
        registered: bool,
    },
    Refused(palomar_proto::ErrorCode, String),
    /// Closed without a word (before TLS, or during it).
    Closed,
}

pub type RawReader =
    palomar_transport::FramedReader<tokio::io::ReadHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>;
pub type RawWriter =
    palomar_transport::FramedWriter<tokio::io::WriteHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>;

/// A TLS connection with frame keys from the source address `from` (any 127.x.y.z works on loopback), for
/// sending what a correct client never would; `None` when the server closes it before or during TLS.
pub async fn raw_connection(server: &str, from: std::net::IpAddr) -> Option<(RawReader, RawWriter)> {
    use palomar_transport::{FramedReader, FramedWriter, TrustDecision, client_config, frame_keys};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((from, 0).into()).expect("binds the source address");
    let tcp = socket.connect(server.parse().expect("server address")).await.ok()?;
    let (config, _) = client_config(TrustDecision::FirstUse).expect("client config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.ok()?;
    let keys = frame_keys(tls.get_ref().1).expect("keys");
    let (read_half, write_half) = tokio::io::split(tls);
    Some((
        FramedReader::new(read_half, &keys.server_to_client, 1 << 24),
        FramedWriter::new(write_half, &keys.client_to_server),
    ))
}

fn hello(nick: &str, password: &str) -> palomar_proto::ClientMsg {
    palomar_proto::ClientMsg::Hello {
        version: palomar_proto::PROTOCOL_VERSION,
        nick: nick.into(),
        password: password.into(),
        positions: vec![],
    }
}

/// Logs in by hand from `from`: the server's answer, and the time from sending the `Hello` to the answer (the
/// TLS handshake before it is not counted).
pub async fn raw_login(server: &str, from: std::net::IpAddr, nick: &str, password: &str) -> (LoginAnswer, Duration) {
    use palomar_proto::ServerMsg;
    let Some((mut reader, mut writer)) = raw_connection(server, from).await else {
        return (LoginAnswer::Closed, Duration::ZERO);
    };
    let sent = Instant::now();
    // A refused connection may already be closed by the server: the refusal is still there to read.
    let _ = writer.send(&hello(nick, password)).await;
    let answer = tokio::time::timeout(PATIENCE, first_answer(&mut reader)).await.expect("answers in time");
    let took = sent.elapsed();
    let answer = match answer {
        Ok(Some(ServerMsg::Welcome { registered, .. })) => LoginAnswer::Welcome { registered },
        Ok(Some(ServerMsg::Error { code, message, .. })) => LoginAnswer::Refused(code, message),
        Ok(Some(other)) => panic!("unexpected answer to a Hello: {other:?}"),
        Ok(None) | Err(_) => LoginAnswer::Closed,
    };
    (answer, took)
}

/// The server's answer to a `Hello`: its first frame other than a `Ping`, which it sends while a login takes long.
pub async fn first_answer(
    reader: &mut RawReader,
) -> Result<Option<palomar_proto::ServerMsg>, palomar_transport::ReadError> {
    loop {
        match reader.read_msg::<palomar_proto::ServerMsg>().await {
            Ok(Some(palomar_proto::ServerMsg::Ping { .. })) => {}
            other => return other,
        }
    }
}

/// Sends a `Hello` from `from` and leaves at once, without waiting for the answer.
pub async fn raw_hello_and_leave(server: &str, from: std::net::IpAddr, nick: &str, password: &str) {
    if let Some((_reader, mut writer)) = raw_connection(server, from).await {
        writer.send(&hello(nick, password)).await.expect("sends the Hello");
    }
}

/// A line-mode event saying the client connected to `address`.
pub fn connected_to(address: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["state"] == "connected" && e["server"] == address
}

/// The texts of the messages from `nick` among `events`, in order.
pub fn texts_from<'a>(events: &'a [Value], nick: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["event"] == "message" && e["from"] == nick)
        .map(|e| e["text"].as_str().expect("a text"))
        .collect()
}
