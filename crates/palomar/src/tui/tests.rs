//! The full-screen client without a terminal: rendered into ratatui's test backend and compared with
//! snapshots, and driven by the real engine against a real (in-process) server.

use std::time::Duration;

use chrono::FixedOffset;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use palomar_client::{Command, Event};
use palomar_proto::{
    Conversation, ConversationInfo, Message, MessageId, MessageKind, PresenceState, Revision, RoomName,
    is_refused_in_text,
};
use palomar_testkit::nick;
use palomar_transport::Fingerprint;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;

use super::app::{Action, App};
use super::view;

/// 2026-11-28 14:05:00 UTC.
const T0: u64 = 1_795_874_700_000;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn app() -> App {
    let mut app = App::new(nick("ana"), "127.0.0.1:5555".into(), FixedOffset::east_opt(0).expect("UTC"));
    app.model.clock = || T0 + 60_000;
    app
}

fn connected(app: &mut App) {
    let info = |c: Conversation| ConversationInfo { conversation: c, latest_seq: 0, first_seq: 1 };
    app.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: vec![info(lobby()), info(Conversation::Room(RoomName::parse("garden").expect("valid")))],
        version: palomar_proto::PROTOCOL_VERSION,
    });
    app.on_engine(Event::Users {
        room: RoomName::lobby(),
        online: vec![nick("ana"), nick("bob")],
        offline: vec![nick("carol")],
    });
}

fn message(seq: u64, from: &str, text: &str) -> Event {
    entry(seq, from, MessageKind::Text, Revision::Original, text)
}

/// Entry `seq` of the lobby, of any kind.
fn entry(seq: u64, from: &str, kind: MessageKind, revision: Revision, text: &str) -> Event {
    Event::Message {
        message: Message {
            conversation: lobby(),
            seq,
            id: MessageId([seq as u8; 16]),
            from: nick(from),
            ts: T0 + seq * 1_000,
            text: text.into(),
            kind,
            revision,
        },
        own: from == "ana",
    }
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| view::render(app, frame)).expect("draws");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut row = String::new();
        let mut skip = 0;
        for x in 0..buffer.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let symbol = buffer[(x, y)].symbol();
            skip = unicode_width::UnicodeWidthStr::width(symbol).saturating_sub(1);
            row.push_str(symbol);
        }
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn type_text(app: &mut App, text: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    for c in text.chars() {
        actions.extend(app.on_key(key(KeyCode::Char(c))));
    }
    actions
}

fn conversation_with_chat() -> App {
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", "good morning everyone"));
    app.on_engine(message(
        2,
        "carol",
        "morning! did anyone read the release notes for the new version yet? they are long",
    ));
    app.on_engine(Event::Presence { room: RoomName::lobby(), nick: nick("dave"), state: PresenceState::Joined });
    app.on_engine(message(3, "bob", "ana: can you look at the garden room later?"));
    app
}

#[test]
fn layout_at_a_wide_and_a_narrow_size() {
    let app = conversation_with_chat();
    insta::assert_snapshot!("wide_100x20", screen(&app, 100, 20));
    insta::assert_snapshot!("narrow_50x14", screen(&app, 50, 14));
}

#[test]
fn wide_characters_and_emoji_wrap_inside_the_pane() {
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", "日本語のテキストと絵文字 🎉🎊 は二列の幅で数えられて、行は正しく折り返されます"));
    app.on_engine(message(2, "carol", "ok 👍"));
    insta::assert_snapshot!("wide_characters", screen(&app, 72, 12));
}

#[test]
fn own_messages_are_pending_until_acknowledged_then_sent() {
    let mut app = conversation_with_chat();
    let actions = type_text(&mut app, "on my way");
    assert!(matches!(&actions[..], [Action::Engine(Command::Typing { typing: true, .. })]), "{actions:?}");
    let actions = app.on_key(key(KeyCode::Enter));
    assert!(matches!(&actions[..], [Action::Engine(Command::Send { text, .. })] if text == "on my way"), "{actions:?}");
    let id = MessageId([9; 16]);
    app.on_engine(Event::Queued { id, to: lobby(), kind: MessageKind::Text, text: "on my way".into() });
    insta::assert_snapshot!("pending", screen(&app, 80, 12));
    app.on_engine(Event::Accepted { id, conversation: lobby(), seq: 4, ts: T0 + 90_000 });
    insta::assert_snapshot!("sent", screen(&app, 80, 12));
}

#[test]
fn the_status_bar_counts_down_while_reconnecting() {
    let mut app = conversation_with_chat();
    app.on_engine(Event::Disconnected {
        reason: "cannot reach 127.0.0.1:5555".into(),
        server: "127.0.0.1:5555".into(),
        retry_in: Duration::from_millis(4_500),
        attempt: 3,
        pending: 2,
        refused_for_now: false,
    });
    app.model.tick(std::time::Instant::now());
    let text = screen(&app, 100, 12);
    assert!(text.contains("reconnecting in 5s (attempt 3)"), "{text}");
    assert!(text.contains("2 message(s) waiting to go out"), "{text}");
    insta::assert_snapshot!("reconnecting", text);
}

#[test]
fn tab_completes_nicknames_and_commands() {
    let mut app = conversation_with_chat();
    type_text(&mut app, "ca");
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "carol: ");
    app.input.take();
    type_text(&mut app, "/jo");
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.input.text(), "/join ");
    type_text(&mut app, "garden");
    let actions = app.on_key(key(KeyCode::Enter));
    assert!(matches!(&actions[..], [Action::Engine(Command::Join { room })] if room == "garden"), "{actions:?}");
}

#[test]
fn a_new_certificate_is_asked_about_and_a_changed_one_is_a_warning() {
    let mut app = app();
    app.on_engine(Event::ConfirmCertificate { server: "127.0.0.1:5555".into(), fingerprint: Fingerprint([0xab; 32]) });
    insta::assert_snapshot!("certificate_prompt", screen(&app, 90, 16));
    let actions = app.on_key(key(KeyCode::Char('y')));
    assert!(matches!(&actions[..], [Action::Engine(Command::TrustCertificate { accept: true })]), "{actions:?}");

    let mut app = self::app();
    app.on_engine(Event::Fatal {
        message: "the certificate of 127.0.0.1:5555 has changed!\n  pinned:    SHA256:aa\n  presented: SHA256:bb"
            .into(),
        certificate_changed: true,
        password_refused: false,
    });
    insta::assert_snapshot!("changed_certificate", screen(&app, 70, 10));
    assert!(matches!(&app.on_key(key(KeyCode::Char('x')))[..], [Action::Quit]));
}

#[test]
fn a_mention_rings_once_and_marks_the_conversation() {
    let mut app = conversation_with_chat();
    app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
    let actions = app.on_engine(message(4, "bob", "ana, lunch?"));
    assert!(matches!(&actions[..], [Action::Alert(_)]));
    assert!(app.on_engine(message(5, "bob", "anyone else?")).is_empty());
    assert_eq!((app.model.convs[0].unread, app.model.convs[0].mentioned), (2, true));
}

/// ratatui drops control characters and zero-width ones (the bidirectional controls are) from what it draws, so
/// the full-screen client needs no escaping of its own: this holds it to that.
#[test]
fn control_characters_from_the_server_never_reach_the_terminal() {
    const HOSTILE: &str = "\x1b]0;owned\x07\x1b[2J\r\u{9b}31m\x7f\u{202e}gpj.exe\ttab\nnext";
    let drawn = |app: &App| {
        let shown = screen(app, 100, 20);
        assert!(!shown.chars().any(|c| is_refused_in_text(c) || c == '\t'), "{shown}");
        shown
    };
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", HOSTILE));
    app.on_engine(Event::Error { code: None, message: HOSTILE.into(), id: None });
    app.on_engine(Event::ServerShuttingDown { message: HOSTILE.into() });
    assert_eq!(drawn(&app).matches("gpj.exe").count(), 3, "the text itself is shown");
    // Code is drawn as typed, but through the same filter (the `\r` ends the link, the rest is text).
    let line = HOSTILE.replace('\n', " ");
    app.on_engine(message(2, "bob", &format!("`{line}` https://a.example/{line}\n```\n{HOSTILE}\n```")));
    assert_eq!(drawn(&app).matches("gpj.exe").count(), 6, "the text in code is shown");
    app.on_engine(Event::Fatal {
        message: format!("login refused: {HOSTILE}"),
        certificate_changed: false,
        password_refused: true,
    });
    assert!(drawn(&app).contains("gpj.exe"));
}

#[test]
fn scrolling_past_the_top_asks_for_older_messages() {
    let mut app = app();
    connected(&mut app);
    let older = (95..100).map(|seq| match message(seq, "bob", &format!("message {seq}")) {
        Event::Message { message, .. } => message,
        _ => unreachable!("message() makes messages"),
    });
    app.on_engine(Event::History(palomar_proto::HistoryPage {
        conversation: lobby(),
        messages: older.collect(),
        complete_from: 1,
    }));
    for seq in 100..130 {
        app.on_engine(message(seq, "bob", &format!("message {seq}")));
    }
    screen(&app, 80, 12);
    let mut asked = None;
    for _ in 0..10 {
        for action in app.on_key(key(KeyCode::PageUp)) {
            if let Action::Engine(Command::History { before, .. }) = action {
                asked = Some(before);
            }
        }
        screen(&app, 80, 12);
    }
    assert_eq!(asked, Some(Some(95)), "the request starts below the oldest message shown");
}

/// The real engine and a real server: what is typed reaches the server and comes back marked sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_engine_against_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = palomar_testkit::InProcessServer::start(&tokio::runtime::Handle::current(), dir.path());

    let engine_config = palomar_client::EngineConfig {
        server: palomar_client::server_address::parse_server(&server.addr).expect("the server's address"),
        nick: nick("ana"),
        password: "secret".into(),
        home: dir.path().join("home"),
        trust: palomar_client::Trust::FirstUse,
        join: None,
        confirm_new_server: true,
        backoff: palomar_client::backoff::Backoff::default(),
    };
    let mut engine = palomar_client::Engine::start(engine_config).expect("engine starts");
    let commands = engine.commands();
    let mut app = app();
    let mut typed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event =
            tokio::time::timeout_at(deadline, engine.next_event()).await.expect("in time").expect("engine runs");
        for action in app.on_engine(event) {
            if let Action::Engine(command) = action {
                commands.send(command).await.expect("engine takes commands");
            }
        }
        if app.model.prompt.is_some() {
            for action in app.on_key(key(KeyCode::Char('y'))) {
                if let Action::Engine(command) = action {
                    commands.send(command).await.expect("engine takes commands");
                }
            }
        }
        if app.model.status == palomar_client::model::Status::Connected && !typed {
            typed = true;
            type_text(&mut app, "hello from the full-screen client");
            for action in app.on_key(key(KeyCode::Enter)) {
                if let Action::Engine(command) = action {
                    commands.send(command).await.expect("engine takes commands");
                }
            }
        }
        if screen(&app, 100, 12).contains("✓ <ana> hello from the full-screen client") {
            break;
        }
    }
    commands.send(Command::Quit).await.expect("quits");
    server.shut_down().await;
}

fn direct(seq: u64, from: &str, text: &str) -> Event {
    let Event::Message { mut message, own } = message(seq, from, text) else {
        unreachable!("message() makes messages")
    };
    message.conversation = Conversation::Direct(nick(from));
    Event::Message { message, own }
}

#[test]
fn the_room_given_at_start_is_shown_once_joined_or_at_once_if_already_ours() {
    let big = Conversation::Room(RoomName::parse("big").expect("valid"));
    let mut app = app();
    app.model.start_in(big.clone());
    connected(&mut app);
    assert_eq!(app.model.current().id, lobby(), "not ours yet");
    app.on_engine(Event::Joined { info: ConversationInfo { conversation: big.clone(), latest_seq: 0, first_seq: 1 } });
    assert_eq!(app.model.current().id, big);
    assert!(screen(&app, 80, 10).contains("#big >"));

    let mut app = self::app();
    app.model.start_in(big.clone());
    let info = |c: Conversation| ConversationInfo { conversation: c, latest_seq: 0, first_seq: 1 };
    app.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: vec![info(lobby()), info(big.clone())],
        version: palomar_proto::PROTOCOL_VERSION,
    });
    assert_eq!(app.model.current().id, big, "already a member: the engine does not join again");
}

#[test]
fn below_45_columns_the_status_bar_shows_activity_elsewhere() {
    let mut app = conversation_with_chat();
    let quiet = screen(&app, 40, 15);
    assert!(!quiet.contains("Act:"), "{quiet}");
    app.on_engine(direct(1, "bob", "psst, are you there?"));
    let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
    let Event::Message { mut message, .. } = message(7, "carol", "new plants") else { unreachable!("a message") };
    message.conversation = garden;
    app.on_engine(Event::Message { message, own: false });
    let shown = screen(&app, 40, 15);
    assert!(shown.lines().last().is_some_and(|status| status.ends_with("Act: 2,3")), "{shown}");
    insta::assert_snapshot!("narrow_40x15_activity", shown);
    assert!(!screen(&app, 100, 15).contains("Act:"), "the conversations pane shows it");
    app.on_key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::ALT));
    assert_eq!(app.model.current().id, Conversation::Direct(nick("bob")), "Alt+A: the direct message first");
    app.on_key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::ALT));
    assert_eq!(app.model.current, 1, "then the room");
    assert!(!screen(&app, 40, 15).contains("Act:"));
}

#[test]
fn a_bracketed_paste_keeps_its_line_breaks() {
    let mut app = conversation_with_chat();
    type_text(&mut app, "> ");
    let paste = "line one of paste\rline two of paste\r\nline three of paste".to_owned();
    assert!(app.on_terminal(crossterm::event::Event::Paste(paste)).is_empty());
    let actions = app.on_terminal(crossterm::event::Event::Key(key(KeyCode::Enter)));
    let expected = "> line one of paste\nline two of paste\nline three of paste";
    assert!(matches!(&actions[..], [Action::Engine(Command::Send { text, .. })] if text == expected), "{actions:?}");
}

#[test]
fn the_more_marker_counts_messages_that_arrive_while_scrolled_up() {
    let mut app = app();
    connected(&mut app);
    for seq in 1..=20 {
        app.on_engine(message(seq, "bob", &format!("message {seq}")));
    }
    screen(&app, 80, 12);
    app.on_key(key(KeyCode::PageUp));
    let before = screen(&app, 80, 12);
    assert!(before.contains("↓ 7 more"), "{before}");
    for seq in 21..=23 {
        app.on_engine(message(seq, "bob", &format!("message {seq}")));
    }
    let after = screen(&app, 80, 12);
    assert!(after.contains("↓ 10 more"), "{after}");
    let shown = |screen: &str| screen.lines().take(9).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(shown(&before), shown(&after), "what was read stays in place");
}

#[test]
fn members_are_shown_unknown_while_disconnected() {
    let mut app = conversation_with_chat();
    assert!(screen(&app, 100, 12).contains("● bob"));
    app.on_engine(Event::Disconnected {
        reason: "the server closed the connection".into(),
        server: "127.0.0.1:5555".into(),
        retry_in: Duration::from_secs(2),
        attempt: 1,
        pending: 0,
        refused_for_now: false,
    });
    let shown = screen(&app, 100, 12);
    assert!(!shown.contains('●') && shown.contains("? bob") && shown.contains("? carol"), "{shown}");
    assert!(shown.contains("members unknown"), "{shown}");
    app.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: Vec::new(),
        version: palomar_proto::PROTOCOL_VERSION,
    });
    assert!(screen(&app, 100, 12).contains("● bob"));
}

#[test]
fn a_message_typed_long_before_it_was_stored_shows_when_it_was_typed() {
    let mut app = conversation_with_chat();
    let id = MessageId([9; 16]);
    app.on_engine(Event::Queued { id, to: lobby(), kind: MessageKind::Text, text: "written offline".into() });
    assert!(screen(&app, 80, 12).contains("14:06 … <ana> written offline"));
    app.on_engine(Event::Accepted { id, conversation: lobby(), seq: 4, ts: T0 + 3_600_000 });
    let shown = screen(&app, 100, 12);
    assert!(shown.contains("15:05 ✓ <ana> written offline (typed 14:06)"), "{shown}");
}

#[test]
fn help_is_one_command_per_line_lined_up_at_any_width() {
    for (width, height) in [(120, 63), (40, 192)] {
        let mut app = conversation_with_chat();
        type_text(&mut app, "/help");
        app.on_key(key(KeyCode::Enter));
        let shown = screen(&app, width, height);
        let column = |usage: &str| {
            let line = shown.lines().find(|line| line.contains(usage)).unwrap_or_else(|| panic!("{usage}: {shown}"));
            let after = &line[line.find(usage).expect("found") + usage.len()..];
            line.find(after.trim_start()).map(|at| line[..at].chars().count())
        };
        let columns: Vec<_> = palomar_client::command_line::HELP.iter().map(|(usage, _)| column(usage)).collect();
        assert!(columns.windows(2).all(|pair| pair[0] == pair[1]), "{width} columns: {columns:?}\n{shown}");
        insta::assert_snapshot!(format!("help_{width}"), shown);
    }
}

#[test]
fn a_room_shows_its_topic_in_its_header_and_our_standing_in_the_status_bar() {
    use palomar_proto::{Role, RoomChange, RoomState};

    let mut app = app();
    connected(&mut app);
    let garden = RoomName::parse("garden").expect("valid");
    app.on_engine(Event::RoomState(RoomState {
        room: garden.clone(),
        topic: "seeds\nand weeds".into(),
        invite_only: false,
        moderated: true,
        role: Role::Member,
        muted: true,
        operator: false,
    }));
    app.on_engine(Event::RoomEvent {
        room: garden,
        by: Some(nick("bob")),
        change: RoomChange::Muted { nick: nick("ana"), reason: "too loud".into() },
    });
    let lobby_shown = screen(&app, 100, 20);
    assert!(!lobby_shown.contains("seeds") && !lobby_shown.contains("muted"), "another room's: {lobby_shown}");
    app.model.switch(1);
    let shown = screen(&app, 100, 20);
    assert!(shown.contains("#garden · seeds and weeds"), "{shown}");
    assert!(shown.contains("you are muted in #garden by bob: too loud"), "{shown}");
    let status = shown.lines().last().unwrap_or_default();
    assert!(status.contains("connected · muted · moderated"), "{status}");
}

#[test]
fn actions_edits_and_deletions_show_on_the_message_they_change() {
    let mut app = app();
    connected(&mut app);
    app.on_engine(entry(1, "bob", MessageKind::Action, Revision::Original, "waves"));
    app.on_engine(message(2, "ana", "helo all"));
    app.on_engine(entry(3, "ana", MessageKind::Edit { of: 2 }, Revision::Original, "hello all"));
    app.on_engine(message(4, "carol", "buy cheap pills"));
    app.on_engine(message(5, "bob", "oops, wrong room"));
    app.on_engine(entry(6, "ana", MessageKind::Deletion { of: 4 }, Revision::Original, "spam"));
    app.on_engine(entry(7, "bob", MessageKind::Deletion { of: 5 }, Revision::Original, ""));
    insta::assert_snapshot!("kinds", screen(&app, 80, 10));
    screen(&app, 80, 6);
    app.on_key(key(KeyCode::PageUp));
    let scrolled = app.scroll();
    assert!(scrolled > 0, "scrolled up to read");
    let actions = type_text(&mut app, "/edit hello everyone");
    assert!(actions.is_empty());
    let actions = app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(&actions[..], [Action::Engine(Command::Send { kind: MessageKind::Edit { of: 2 }, text, .. })]
            if text == "hello everyone"),
        "{actions:?}"
    );
    assert_eq!(app.scroll(), scrolled, "an edit changes a message where it is: the view stays");
}

const RICH: &str = "see https://example.com/notes, run `cargo test --workspace` first:\n```rust\nfn main() {\n    \
                    println!(\"https://not.a.link\");\n\tlet tab = 1;\n}\n```\nthanks";

/// The drawn terminal of `app`, cell by cell (styles included).
fn buffer(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| view::render(app, frame)).expect("draws");
    terminal.backend().buffer().clone()
}

/// Where `needle` starts on row `y` of `buffer`, in columns (one cell a character: ASCII only).
fn column_of(buffer: &ratatui::buffer::Buffer, y: u16, needle: &str) -> Option<u16> {
    let row: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_owned()).collect();
    row.find(needle).and_then(|at| row[..at].chars().count().try_into().ok())
}

fn row_with(buffer: &ratatui::buffer::Buffer, needle: &str) -> (u16, u16) {
    (0..buffer.area.height)
        .find_map(|y| column_of(buffer, y, needle).map(|x| (x, y)))
        .unwrap_or_else(|| panic!("{needle:?} is not shown"))
}

#[test]
fn links_inline_code_and_code_blocks_at_a_wide_and_a_narrow_width() {
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", RICH));
    app.on_engine(message(2, "carol", "```a one-line block```"));
    insta::assert_snapshot!("rich_text_80", screen(&app, 80, 20));
    insta::assert_snapshot!("rich_text_40", screen(&app, 40, 24));
}

#[test]
fn links_are_underlined_and_code_keeps_its_spaces_on_a_shaded_background() {
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", RICH));
    let drawn = buffer(&app, 140, 20);
    let (x, y) = row_with(&drawn, "https://example.com/notes");
    for column in x..x + "https://example.com/notes".len() as u16 {
        assert!(drawn[(column, y)].modifier.contains(Modifier::UNDERLINED), "column {column}");
    }
    assert!(!drawn[(x - 1, y)].modifier.contains(Modifier::UNDERLINED), "the space before the link");
    assert!(!drawn[(x + 25, y)].modifier.contains(Modifier::UNDERLINED), "the comma after it");

    let (x, y) = row_with(&drawn, "cargo test --workspace");
    assert_eq!(column_of(&drawn, y, "`"), None, "the backticks are not shown");
    let code_bg = drawn[(x, y)].bg;
    assert_ne!(code_bg, drawn[(x - 2, y)].bg, "inline code is shaded");
    assert_eq!(drawn[(x + 5, y)].bg, code_bg, "the space inside inline code is code too");

    let (bar, y) = row_with(&drawn, "│     println!");
    assert_eq!(drawn[(bar + 2, y)].symbol(), " ", "the code's own indentation is kept");
    assert_eq!(drawn[(bar + 2, y)].bg, code_bg);
    assert!(!drawn[(bar + 2, y)].modifier.contains(Modifier::UNDERLINED), "no link inside code");
    assert_eq!(row_with(&drawn, "│     let tab = 1;").0, bar, "a tab goes to the next stop");
    assert_eq!(row_with(&drawn, "│ fn main() {").0, bar, "the block's lines line up");
    let (label, y) = row_with(&drawn, "│ rust");
    assert_eq!(label, bar);
    assert!(drawn[(label + 2, y)].modifier.contains(Modifier::DIM), "the language is quieter than the code");
    assert!((0..drawn.area.height).all(|y| column_of(&drawn, y, "```").is_none()), "the fences are not shown");
    assert!(column_of(&drawn, y + 5, "thanks").is_some(), "the text after the block is on the next row");
}

#[test]
fn a_long_code_line_goes_on_in_the_next_row_behind_the_bar() {
    let mut app = app();
    connected(&mut app);
    app.on_engine(message(1, "bob", "```\nlet numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];\n```"));
    let shown = screen(&app, 40, 10);
    assert!(shown.contains("<bob> │ let numbers = [1, 2, 3│\n"), "{shown}");
    assert!(shown.contains("│              │ , 4, 5, 6, 7, 8, 9, 10│\n"), "{shown}");
    app.on_engine(entry(2, "bob", MessageKind::Text, Revision::Edited, "```\nx = 1\n```"));
    let shown = screen(&app, 40, 10);
    let rows: Vec<&str> = shown.lines().collect();
    assert!(rows[5].starts_with("│14:05   <bob> │ x = 1 "), "{shown}");
    assert!(rows[6].starts_with("│              (edited) "), "not code: {shown}");
    assert!(rows[7].starts_with('└'), "no blank row: {shown}");
}

/// A conversation with replies (to a message here, to a deleted one, to one not loaded) and reactions, ours
/// among them.
fn replies_and_reactions() -> App {
    let mut app = app();
    connected(&mut app);
    let react = |of| MessageKind::Reaction { of, added: true };
    let reply = |of| MessageKind::Reply { of };
    app.on_engine(message(1, "bob", "lunch at noon?\nor later"));
    app.on_engine(entry(2, "carol", reply(1), Revision::Original, "yes, at the usual place by the river"));
    app.on_engine(entry(3, "carol", react(1), Revision::Original, "👍"));
    app.on_engine(entry(4, "ana", react(1), Revision::Original, "👍"));
    app.on_engine(entry(5, "dave", react(1), Revision::Original, "🎉"));
    app.on_engine(message(6, "bob", "buy cheap pills"));
    app.on_engine(entry(7, "bob", MessageKind::Deletion { of: 6 }, Revision::Original, ""));
    app.on_engine(entry(8, "carol", reply(6), Revision::Original, "gone already"));
    app.on_engine(entry(9, "ana", reply(41), Revision::Original, "as I said back then"));
    for (seq, emoji) in (10..).zip(palomar_proto::REACTIONS.map(|(emoji, _)| emoji)) {
        let from = if emoji == "\u{2764}\u{fe0f}" { "ana" } else { "dave" };
        app.on_engine(entry(seq, from, react(9), Revision::Original, emoji));
    }
    app
}

#[test]
fn a_reply_shows_its_quote_and_reactions_show_under_their_message() {
    let app = replies_and_reactions();
    let wide = screen(&app, 80, 19);
    assert!(wide.contains("<carol> ↪ bob: lunch at noon?…"), "{wide}");
    assert!(wide.contains("👍 2  🎉 1"), "{wide}");
    assert!(wide.contains("<carol> ↪ a deleted message"), "{wide}");
    assert!(wide.contains("<ana> ↪ #41"), "{wide}");
    insta::assert_snapshot!("replies_80", wide);
    let narrow = screen(&app, 40, 26);
    insta::assert_snapshot!("replies_40", narrow);
    // Emoji are two columns wide: each row holds as many as fit, and none is cut off at the border.
    for shown in [&wide, &narrow] {
        for (emoji, _) in palomar_proto::REACTIONS {
            assert!(shown.contains(&format!("{emoji} 1")), "{emoji}: {shown}");
        }
    }
}

#[test]
fn our_own_reactions_are_marked() {
    let app = replies_and_reactions();
    let drawn = buffer(&app, 80, 16);
    let cell = |symbol: &str, nth: usize| {
        let mut found = (0..drawn.area.height)
            .flat_map(|y| (0..drawn.area.width).map(move |x| (x, y)))
            .filter(|&at| drawn[at].symbol() == symbol);
        found.nth(nth).unwrap_or_else(|| panic!("{symbol} #{nth} is not shown"))
    };
    let reversed = |at| drawn[at].modifier.contains(Modifier::REVERSED);
    assert!(reversed(cell("👍", 0)), "ana reacted 👍 to #1");
    assert!(!reversed(cell("🎉", 0)), "dave's 🎉 only");
    assert!(reversed(cell("❤\u{fe0f}", 0)), "ana's heart to #9");
    assert!(!reversed(cell("👍", 1)), "dave's 👍 to #9");
}

/// Columns from a message's time to its text: `14:05 `, `  `, `<bob> `.
const PREFIX: u16 = 14;

#[test]
fn slash_jump_scrolls_to_a_message_far_above_and_marks_it_until_the_next_key() {
    let mut app = app();
    connected(&mut app);
    for seq in 1..=40 {
        app.on_engine(message(seq, "bob", &format!("message {seq}.")));
    }
    app.on_engine(entry(41, "carol", MessageKind::Reply { of: 3 }, Revision::Original, "about that"));
    screen(&app, 80, 12);
    type_text(&mut app, "/jump #5");
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    let drawn = buffer(&app, 80, 12);
    let (x, y) = row_with(&drawn, "message 5.");
    assert!((3..=7).contains(&y), "in the middle of the pane: row {y}");
    let time = x - PREFIX;
    assert!(drawn[(time, y)].modifier.contains(Modifier::REVERSED), "marked");
    assert!(!drawn[(time, y + 1)].modifier.contains(Modifier::REVERSED), "the next message is not");
    app.on_key(key(KeyCode::Char('x')));
    let drawn = buffer(&app, 80, 12);
    assert!(!drawn[(time, y)].modifier.contains(Modifier::REVERSED), "a key ends the mark");
    assert_eq!(row_with(&drawn, "message 5."), (x, y), "and leaves the view where it is");

    // Alt+J: to what the reply on screen quotes.
    app.input.take();
    type_text(&mut app, "/jump #41");
    app.on_key(key(KeyCode::Enter));
    assert!(screen(&app, 80, 12).contains("<carol> ↪ bob: message 3."));
    app.on_key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::ALT));
    let drawn = buffer(&app, 80, 12);
    let (x, y) = row_with(&drawn, "message 3.");
    assert!(drawn[(x - PREFIX, y)].modifier.contains(Modifier::REVERSED), "marked");
}

#[test]
fn slash_jump_to_a_message_not_loaded_fetches_it_then_scrolls_to_it() {
    let mut app = app();
    connected(&mut app);
    let page = |seqs: std::ops::RangeInclusive<u64>| {
        let messages = seqs
            .map(|seq| match message(seq, "bob", &format!("message {seq}.")) {
                Event::Message { message, .. } => message,
                _ => unreachable!("message() makes messages"),
            })
            .collect();
        Event::History(palomar_proto::HistoryPage { conversation: lobby(), messages, complete_from: 1 })
    };
    app.on_engine(page(100..=140));
    screen(&app, 80, 12);
    type_text(&mut app, "/jump #41");
    let actions = app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(&actions[..], [Action::Engine(Command::History { before: Some(100), limit: 59, .. })]),
        "{actions:?}"
    );
    assert_eq!(app.scroll(), 0, "nothing to show yet");
    assert!(app.on_engine(page(41..=99)).is_empty());
    let drawn = buffer(&app, 80, 12);
    let (x, y) = row_with(&drawn, "message 41.");
    assert!(drawn[(x - PREFIX, y)].modifier.contains(Modifier::REVERSED), "shown and marked once it came");
}

#[test]
fn an_ignored_nick_takes_no_row_and_a_silenced_conversation_does_not_call() {
    let mut app = conversation_with_chat();
    type_text(&mut app, "/ignore bob");
    assert!(matches!(&app.on_key(key(KeyCode::Enter))[..], [Action::SavePreferences]));
    let shown = screen(&app, 100, 14);
    assert!(!shown.contains("good morning everyone") && shown.contains("<carol> morning!"), "{shown}");
    assert!(shown.contains("ignoring bob: their messages are hidden"), "{shown}");
    type_text(&mut app, "/unignore bob");
    app.on_key(key(KeyCode::Enter));
    assert!(screen(&app, 100, 14).contains("good morning everyone"));

    type_text(&mut app, "/silence");
    assert!(matches!(&app.on_key(key(KeyCode::Enter))[..], [Action::SavePreferences]));
    app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
    assert!(app.on_engine(message(4, "carol", "ana, lunch?")).is_empty(), "no bell from a silenced room");
    assert_eq!(app.activity(), [(1, false)], "counted, not called for");
}

#[test]
fn a_search_s_hits_are_listed_where_it_was_typed_and_goto_opens_one_in_its_room() {
    let mut app = conversation_with_chat();
    type_text(&mut app, "/search lettuce");
    let actions = app.on_key(key(KeyCode::Enter));
    assert!(
        actions
            .iter()
            .any(|action| matches!(action, Action::Engine(Command::Search { query, .. }) if query == "lettuce")),
        "{actions:?}"
    );
    let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
    let hit = Message {
        conversation: garden.clone(),
        seq: 1,
        id: MessageId([1; 16]),
        from: nick("bob"),
        ts: T0,
        text: "the lettuces are up".into(),
        kind: MessageKind::Text,
        revision: Revision::Original,
    };
    app.on_engine(Event::Found { query: "lettuce".into(), conversation: None, hits: vec![hit.clone()], next: None });
    let shown = screen(&app, 100, 16);
    assert!(shown.contains("1 message found for “lettuce”"), "{shown}");
    assert!(shown.contains("[1] #garden  bob  14:05  the lettuces are up"), "{shown}");

    type_text(&mut app, "/goto 1");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.model.current().id, garden);
    let page = palomar_proto::HistoryPage { conversation: garden, messages: vec![hit], complete_from: 1 };
    app.on_engine(Event::History(page));
    assert_eq!(app.marked(), Some(1), "brought on screen and marked");
}

/// Connected at protocol `version` to a server whose lobby has ana, bob and carol online and dave offline.
fn connected_at(app: &mut App, version: u16) {
    let info = |c: Conversation| ConversationInfo { conversation: c, latest_seq: 0, first_seq: 1 };
    app.on_engine(Event::Connected {
        server: "127.0.0.1:5555".into(),
        nick: nick("ana"),
        registered: false,
        conversations: vec![info(lobby()), info(Conversation::Room(RoomName::parse("garden").expect("valid")))],
        version,
    });
    app.on_engine(Event::Users {
        room: RoomName::lobby(),
        online: vec![nick("ana"), nick("bob"), nick("carol")],
        offline: vec![nick("dave")],
    });
}

fn typed_line(app: &mut App, line: &str) -> Vec<Action> {
    let mut actions = type_text(app, line);
    actions.extend(app.on_key(key(KeyCode::Enter)));
    actions
}

/// Commands as they print, to compare them (they are not `PartialEq`).
fn said(commands: impl IntoIterator<Item = Command>) -> Vec<String> {
    commands.into_iter().map(|command| format!("{command:?}")).collect()
}

fn engine_commands(actions: Vec<Action>) -> Vec<Command> {
    actions
        .into_iter()
        .filter_map(|action| match action {
            Action::Engine(command) => Some(command),
            _ => None,
        })
        .collect()
}

#[test]
fn our_away_message_is_in_the_status_bar_and_others_are_in_the_members_pane_and_slash_users() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    let sent = engine_commands(typed_line(&mut app, "/away at lunch"));
    assert!(matches!(&sent[..], [Command::SetAway(message)] if message == "at lunch"), "{sent:?}");
    app.on_engine(Event::Away { nick: nick("ana"), message: Some("at lunch".into()) });
    app.on_engine(Event::Away { nick: nick("bob"), message: Some("in a meeting".into()) });
    app.on_engine(message(1, "carol", "anyone around?"));
    let shown = screen(&app, 100, 12);
    assert!(shown.contains("* you are away: at lunch"), "{shown}");
    assert!(shown.lines().last().is_some_and(|status| status.contains("connected · away: at lunch")), "{shown}");
    assert!(shown.contains("● bob (away: in…│"), "cut to the pane: {shown}");
    insta::assert_snapshot!("away_100x12", shown);
    let drawn = buffer(&app, 100, 12);
    let (x, y) = row_with(&drawn, "bob (away");
    assert!(drawn[(x, y)].modifier.contains(Modifier::DIM), "an away member is dimmed");

    let sent = engine_commands(typed_line(&mut app, "/users"));
    assert!(matches!(&sent[..], [Command::Users { room }] if room == "lobby"), "{sent:?}");
    app.on_engine(Event::Users {
        room: RoomName::lobby(),
        online: vec![nick("ana"), nick("bob"), nick("carol")],
        offline: vec![nick("dave")],
    });
    let shown = screen(&app, 100, 14);
    assert!(shown.contains("bob (away: in a meeting)"), "the /users notice: {shown}");

    let sent = engine_commands(typed_line(&mut app, "/back"));
    assert!(matches!(&sent[..], [Command::SetAway(message)] if message.is_empty()), "{sent:?}");
    app.on_engine(Event::Away { nick: nick("ana"), message: None });
    let shown = screen(&app, 100, 14);
    assert!(shown.contains("* you are back"), "{shown}");
    assert!(!shown.lines().last().unwrap_or_default().contains("away"), "{shown}");
}

#[test]
fn slash_whois_asks_the_server_and_shows_its_answer_line_by_line() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    let sent = engine_commands(typed_line(&mut app, "/whois @bob"));
    assert!(matches!(&sent[..], [Command::Whois(who)] if *who == nick("bob")), "{sent:?}");
    app.on_engine(Event::Whois(palomar_proto::WhoisInfo {
        nick: nick("bob"),
        registered_ms: T0 - 27 * 86_400_000,
        online: true,
        online_since_ms: Some(T0 - 7_800_000),
        idle_ms: Some(300_000),
        away: Some("lunch".into()),
        rooms: vec![RoomName::lobby(), RoomName::parse("rust").expect("valid")],
    }));
    let shown = screen(&app, 100, 12);
    for line in [
        "bob: online since 11:55 (2 h 11 min), idle 5 min",
        "bob: away: lunch",
        "bob: registered 2026-11-01",
        "bob: rooms in common: #lobby, #rust",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
    typed_line(&mut app, "/whois nobody");
    app.on_engine(Event::Error { code: Some(palomar_proto::ErrorCode::UnknownNick), message: "x".into(), id: None });
    assert!(screen(&app, 100, 12).contains("no such user: nobody"));

    // A server older than version 6 is not asked.
    let mut app = self::app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION - 1);
    assert!(typed_line(&mut app, "/whois bob").is_empty());
    assert!(typed_line(&mut app, "/away lunch").is_empty());
    let shown = screen(&app, 100, 12);
    assert!(shown.contains("this server does not know /whois"), "{shown}");
    assert!(shown.contains("this server does not know away messages"), "{shown}");
}

#[test]
fn what_is_typed_in_the_entry_line_is_told_as_typing_and_stopped_when_emptied_or_left() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    let typing = |conversation: Conversation, typing: bool| Command::Typing { conversation, typing };
    let garden = Conversation::Room(RoomName::parse("garden").expect("valid"));
    assert_eq!(
        said(engine_commands(type_text(&mut app, "hel"))),
        said([typing(lobby(), true)]),
        "once, not for every key"
    );
    for _ in 0..3 {
        app.on_key(key(KeyCode::Backspace));
    }
    assert!(app.input.is_empty());
    assert_eq!(said(engine_commands(app.on_key(key(KeyCode::Char('x'))))), said([typing(lobby(), true)]));
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(said(engine_commands(app.on_key(key(KeyCode::Char('h'))))), said([typing(lobby(), true)]));
    let switched = engine_commands(app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL)));
    assert_eq!(said(switched), said([typing(lobby(), false), typing(garden.clone(), true)]), "the text goes along");
    let sent = engine_commands(typed_line(&mut app, "i"));
    assert!(matches!(&sent[..], [Command::Send { .. }]), "a message ends it, no false needed: {sent:?}");
    assert!(engine_commands(type_text(&mut app, "/away lunch")).is_empty(), "a command is not typing");
    app.input.take();
    let pasted = engine_commands(app.on_terminal(crossterm::event::Event::Paste("pasted".into())));
    assert_eq!(said(pasted), said([typing(garden, true)]));

    let mut old = self::app();
    connected_at(&mut old, palomar_proto::AWARENESS_VERSION - 1);
    assert!(type_text(&mut old, "hello").is_empty(), "a server older than version 6 is not told");
}

#[test]
fn who_is_typing_shows_under_the_messages_until_they_stop() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    app.on_engine(message(1, "bob", "good morning everyone"));
    app.on_engine(message(2, "carol", "morning! who has the notes from yesterday?"));
    app.on_engine(Event::Typing { conversation: lobby(), nick: nick("bob"), typing: true });
    let shown = screen(&app, 80, 12);
    assert!(shown.contains(" bob is typing… "), "{shown}");
    app.on_engine(Event::Typing { conversation: lobby(), nick: nick("carol"), typing: true });
    let shown = screen(&app, 80, 12);
    insta::assert_snapshot!("typing", shown);
    let drawn = buffer(&app, 80, 12);
    let (x, y) = row_with(&drawn, "bob and carol are typing");
    assert!(drawn[(x, y)].modifier.contains(Modifier::ITALIC), "quieter than the messages");
    app.on_engine(Event::Typing { conversation: lobby(), nick: nick("bob"), typing: false });
    assert!(screen(&app, 80, 12).contains(" carol is typing… "));
    app.model.tick(std::time::Instant::now() + Duration::from_millis(palomar_proto::TYPING_SHOWN_MS));
    assert!(!screen(&app, 80, 12).contains("typing"), "it expires");
    app.on_engine(Event::Typing {
        conversation: Conversation::Room(RoomName::parse("garden").expect("valid")),
        nick: nick("bob"),
        typing: true,
    });
    assert!(!screen(&app, 80, 12).contains("typing"), "another conversation's");
}

fn marker(nick_name: &str, seq: u64) -> palomar_proto::ReadMarker {
    palomar_proto::ReadMarker { conversation: lobby(), nick: nick(nick_name), seq }
}

#[test]
fn seen_by_shows_under_the_message_read_up_to_and_new_messages_above_the_first_unread() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    app.on_engine(message(1, "bob", "good morning"));
    app.on_engine(message(2, "ana", "morning bob"));
    app.on_engine(message(3, "carol", "did the release go out?"));
    app.on_engine(message(4, "bob", "yes, an hour ago"));
    app.on_engine(Event::ReadMarkers(vec![marker("ana", 2), marker("bob", 4), marker("carol", 2)]));
    let shown = screen(&app, 80, 14);
    insta::assert_snapshot!("seen_by_and_new_messages", shown);
    let rows: Vec<&str> = shown.lines().collect();
    let at = |needle: &str| rows.iter().position(|row| row.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
    assert_eq!(at("seen by carol"), at("morning bob") + 1, "{shown}");
    assert_eq!(at("seen by bob"), at("yes, an hour ago") + 1, "{shown}");
    assert_eq!(at("new messages"), at("did the release") - 1, "above the first from others after ours: {shown}");
    assert!(!shown.contains("seen by ana"), "never ourselves");
    app.on_engine(Event::ReadMarkers(vec![marker("carol", 4)]));
    assert!(screen(&app, 80, 14).contains("seen by bob and carol"));
    // Switching away and back once read: the divider is gone.
    app.on_engine(Event::ReadMarkers(vec![marker("ana", 4)]));
    app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
    app.on_key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL));
    assert!(!screen(&app, 80, 14).contains("new messages"));
}

#[test]
fn the_read_marker_is_sent_while_the_terminal_has_focus_and_the_view_is_at_the_bottom() {
    let mut app = app();
    connected_at(&mut app, palomar_proto::AWARENESS_VERSION);
    for seq in 1..=20 {
        app.on_engine(message(seq, "bob", &format!("message {seq}")));
    }
    screen(&app, 80, 12);
    app.on_terminal(crossterm::event::Event::FocusLost);
    assert!(app.read_tick().is_none(), "not looked at");
    app.on_terminal(crossterm::event::Event::FocusGained);
    app.on_key(key(KeyCode::PageUp));
    screen(&app, 80, 12);
    assert!(app.read_tick().is_none(), "scrolled up: the newest is not on screen");
    app.on_key(key(KeyCode::PageDown));
    let sent = engine_commands(app.read_tick().into_iter().collect());
    assert_eq!(said(sent), said([Command::MarkRead { conversation: lobby(), seq: 20 }]));
    assert!(app.read_tick().is_none(), "sent once");
    app.on_engine(message(21, "bob", "one more"));
    assert!(app.read_tick().is_none(), "at most once a second");
    app.model.tick(std::time::Instant::now() + Duration::from_secs(2));
    let sent = engine_commands(app.read_tick().into_iter().collect());
    assert_eq!(said(sent), said([Command::MarkRead { conversation: lobby(), seq: 21 }]));
}
