//! Test harness: the real `palomar` binary as server and clients, on loopback ports and temp directories.
//! Waiting is always for an event with a deadline, never a fixed sleep.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    pub data: PathBuf,
    stdout: mpsc::Receiver<String>,
}

impl Server {
    /// Starts a server on a free port with its data in `data`.
    pub fn start(data: &Path) -> Server {
        Server::start_on(data, "127.0.0.1:0", &[])
    }

    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::launch(data, listen, extra, None, None)
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
            .env("PALOMAR_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server starts");
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let deadline = Instant::now() + PATIENCE;
        let (mut addr, mut fingerprint) = (None, None);
        while addr.is_none() || fingerprint.is_none() {
            let line = stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("server prints its address");
            if let Some((_, a)) = line.split_once("listening on ") {
                addr = Some(a.trim().to_owned());
            }
            if let Some(f) = line.strip_prefix("certificate fingerprint: ") {
                fingerprint = Some(f.trim().to_owned());
            }
        }
        Server {
            child,
            addr: addr.unwrap_or_default(),
            fingerprint: fingerprint.unwrap_or_default(),
            data: data.to_owned(),
            stdout,
        }
    }

    /// Starts again on the same address and data directory.
    pub fn restart(&self) -> Server {
        Server::start_on(&self.data, &self.addr, &[])
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
        let deadline = Instant::now() + PATIENCE;
        if let Some(found) = self.seen.iter().find(|e| pred(e)) {
            return found.clone();
        }
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
