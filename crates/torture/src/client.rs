//! The line-mode clients a run drives (`palomar chat --json`): started, restarted on their state directory,
//! fed lines, and their JSON events recorded with the moment each was read.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use serde_json::Value;

/// Lines a process printed, each with the moment it was read.
pub(crate) type Transcript = Arc<Mutex<Vec<(Instant, Value)>>>;

/// Reads a process's JSON lines into `into`; the thread ends when the process closes its stdout.
fn read_json_lines(stream: impl std::io::Read + Send + 'static, into: Transcript) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                into.lock().push((Instant::now(), value));
            }
        }
    })
}

pub(crate) struct ClientProcess {
    pub nick: String,
    /// Its `--server` list: the same across restarts, since its first address names the chat its state is for.
    servers: String,
    home: PathBuf,
    child: Child,
    /// The thread reading the current process's output.
    reader: Option<std::thread::JoinHandle<()>>,
    pub stdin: Arc<Mutex<Option<ChildStdin>>>,
    /// What every line written to its stdin (across restarts) asked to store: the line, or for `/me`, `/edit` and
    /// `/delete` the text of the entry (the action, the new text, the reason). Unique within a run.
    pub lines: Arc<Mutex<HashSet<String>>>,
    transcript: Transcript,
    /// When it was SIGKILLed and started again.
    pub restarts: Vec<Instant>,
}

impl ClientProcess {
    fn spawn(
        bin: &Path,
        server: &str,
        nick: &str,
        home: &Path,
        transcript: Transcript,
    ) -> anyhow::Result<(Child, ChildStdin, std::thread::JoinHandle<()>)> {
        let mut child = Command::new(bin)
            .args(["chat", "--json", "--drain-timeout", "170", "--server", server, "--nick", nick, "--home"])
            .arg(home)
            .env("PALOMAR_PASSWORD", format!("pw-{nick}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start a client")?;
        let stdin = child.stdin.take().context("client stdin")?;
        let reader = read_json_lines(child.stdout.take().context("client stdout")?, transcript);
        Ok((child, stdin, reader))
    }

    /// Starts `nick`'s client on the nodes `servers` (comma-separated, as `--server` takes them).
    pub fn start(bin: &Path, servers: &str, nick: &str, home: &Path) -> anyhow::Result<ClientProcess> {
        let transcript: Transcript = Arc::default();
        let (child, stdin, reader) = Self::spawn(bin, servers, nick, home, transcript.clone())?;
        Ok(ClientProcess {
            nick: nick.to_owned(),
            servers: servers.to_owned(),
            home: home.to_owned(),
            child,
            reader: Some(reader),
            stdin: Arc::new(Mutex::new(Some(stdin))),
            lines: Arc::default(),
            transcript,
            restarts: Vec::new(),
        })
    }

    /// SIGKILL, then the same client again on the same home directory (its outbox and cursors).
    pub fn restart(&mut self, bin: &Path) -> anyhow::Result<()> {
        *self.stdin.lock() = None;
        self.restarts.push(Instant::now());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, stdin, reader) = Self::spawn(bin, &self.servers, &self.nick, &self.home, self.transcript.clone())?;
        self.child = child;
        self.reader = Some(reader);
        *self.stdin.lock() = Some(stdin);
        Ok(())
    }

    /// Types one more line of text, as if its user had (nothing when the client is between processes).
    pub fn type_line(&self, line: &str) {
        if let Some(pipe) = self.stdin.lock().as_mut()
            && writeln!(pipe, "{line}").and_then(|()| pipe.flush()).is_ok()
        {
            self.lines.lock().insert(line.to_owned());
        }
    }

    /// Everything the client prints, as it prints it, for a thread that types what it has seen.
    pub fn transcript(&self) -> Transcript {
        self.transcript.clone()
    }

    /// Runs `look` over everything the client printed so far (a soak's transcripts are too big to copy).
    pub fn with_events<T>(&self, look: impl FnOnce(&[(Instant, Value)]) -> T) -> T {
        look(&self.transcript.lock())
    }

    /// When the client next tries to connect, seen at `now`: at once, unless its last status says it waits
    /// (`retry_in_ms` after it was disconnected).
    pub fn next_attempt(&self, now: Instant) -> Instant {
        self.with_events(|events| {
            let last = events.iter().rev().find(|(at, e)| *at <= now && e["event"] == "status");
            match last {
                Some((at, e)) if e["state"] == "disconnected" => {
                    let wait = Duration::from_millis(e["retry_in_ms"].as_u64().unwrap_or(0));
                    now.max(*at + wait)
                }
                _ => now,
            }
        })
    }

    /// The node (its address in the `--server` list) the client was connected through at `at`, going by the
    /// last status it printed that names one.
    pub fn connected_through(&self, at: Instant) -> Option<String> {
        self.with_events(|events| {
            let (_, last) = events
                .iter()
                .rev()
                .find(|(seen, e)| *seen <= at && e["event"] == "status" && e["server"].is_string())?;
            if last["state"] == "connected" { last["server"].as_str().map(str::to_owned) } else { None }
        })
    }

    pub fn wait_for(&self, what: impl Fn(&Value) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.with_events(|events| events.iter().any(|(_, e)| what(e))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Closes stdin and waits for the exit status.
    pub fn finish(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        *self.stdin.lock() = None;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its stdout is closed now: the reader ends once it has taken the last lines.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
