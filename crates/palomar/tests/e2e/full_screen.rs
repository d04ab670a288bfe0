//! The full-screen client on a real terminal (a pseudo-terminal from `script`), for what only shows there: the
//! password prompts around it.

use crate::common::{ClientSpec, Server, Terminal, run_client};

/// A typo in the password asks for it again, instead of ending the client.
#[test]
fn a_wrong_password_is_asked_for_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("ana");
    let spec = ClientSpec { server: &server.addr, nick: "ana", password: "right", home: &home, extra: &[] };
    assert!(run_client(spec, "").0.success(), "ana registers, from this home");

    let mut terminal = Terminal::chat(&server.addr, "ana", &home);
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
    let mut terminal = Terminal::chat(&server.addr, "newcomer", &home);
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

/// Quitting with messages that could not go out says how many wait for next time.
#[test]
fn quitting_with_messages_in_the_outbox_says_how_many_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("ana");
    let home = home.to_str().expect("UTF-8 path");
    let mut terminal =
        Terminal::start(&["chat", "--server", &server.addr, "--nick", "ana", "--home", home], Some("pw"));
    terminal.wait_for("Trust", 1);
    terminal.type_keys(b"y");
    terminal.wait_for("connected", 1);
    server.kill();
    terminal.wait_for("reconnecting", 1);
    // The engine takes what is typed into the outbox before it takes the quit typed after it.
    terminal.type_keys(b"first\rsecond\r\x03");
    terminal.wait_for("2 messages wait to go out next time", 1);
    assert_eq!(terminal.exit_code(), Some(0));
}
