//! The full-screen client on a real terminal (a pseudo-terminal from `script`), for what only shows there: the
//! password prompts around it.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::{BIN, ClientSpec, PATIENCE, Server, run_client};

/// `palomar chat` in the full-screen client, on a 100×20 pseudo-terminal; what it draws or prints comes back as
/// bytes.
struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    fn start(server: &str, nick: &str, home: &std::path::Path) -> Terminal {
        let command = format!(
            "stty cols 100 rows 20; exec '{BIN}' chat --server {server} --nick {nick} --home '{}'",
            home.display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env_remove("PALOMAR_PASSWORD")
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script runs");
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
    fn wait_for(&mut self, text: &str, times: usize) {
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
    fn clear(&mut self) {
        self.seen.clear();
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.keys.write_all(keys).expect("types");
        self.keys.flush().expect("flushes");
    }

    fn exit_code(mut self) -> Option<i32> {
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

/// A typo in the password asks for it again, instead of ending the client.
#[test]
fn a_wrong_password_is_asked_for_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("ana");
    let spec = ClientSpec { server: &server.addr, nick: "ana", password: "right", home: &home, extra: &[] };
    assert!(run_client(spec, "").0.success(), "ana registers, from this home");

    let mut terminal = Terminal::start(&server.addr, "ana", &home);
    terminal.wait_for("password for ana", 1);
    terminal.type_keys(b"wrnog\n");
    terminal.wait_for("password for ana", 2);
    terminal.clear();
    terminal.type_keys(b"right\n");
    terminal.wait_for("connected", 1);
    terminal.type_keys(b"\x03");
    assert_eq!(terminal.exit_code(), Some(0), "logged in with the second password, then quit");
}

/// The first login from a home may register the nickname: the password is asked twice, and a mismatch again.
#[test]
fn a_new_nickname_is_asked_its_password_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("newcomer");
    let mut terminal = Terminal::start(&server.addr, "newcomer", &home);
    terminal.wait_for("password for newcomer:", 1);
    terminal.type_keys(b"secret\n");
    terminal.wait_for("again", 1);
    terminal.type_keys(b"secert\n");
    terminal.wait_for("differ", 1);
    terminal.type_keys(b"secret\n");
    terminal.wait_for("again", 2);
    terminal.type_keys(b"secret\n");
    terminal.wait_for("Trust", 1);
    terminal.type_keys(b"y");
    terminal.wait_for("connected", 1);
    terminal.type_keys(b"\x03");
    assert_eq!(terminal.exit_code(), Some(0));
    let spec = ClientSpec { server: &server.addr, nick: "newcomer", password: "secret", home: &home, extra: &[] };
    assert!(run_client(spec, "").0.success(), "the account's password is the one typed twice");
}
