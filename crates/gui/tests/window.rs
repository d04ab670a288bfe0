//! The desktop client's window, headless: egui_kittest drives the real `PalomarApp` (through AccessKit, as a
//! screen reader would) with the real engine against a real server running in this process on a free
//! loopback port. Every wait is for something to appear, with a generous deadline; none is a fixed sleep
//! that a slow machine could outrun.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::FixedOffset;
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use palomar_client::backoff::Backoff;
use palomar_client::model::Alert;
use palomar_client::{Command, Engine, EngineConfig, Event, KnownHosts, Trust};
use palomar_gui::message_view::{PENDING, SENT};
use palomar_gui::notification::Notifier;
use palomar_gui::settings::Settings;
use palomar_gui::sign_in::Problem;
use palomar_gui::{Options, PalomarApp};
use palomar_gui::{awareness, chat_window, room_browser};
use palomar_proto::{Conversation, MessageKind, PresenceState, ReadMarker, RoomAction, RoomChange, RoomName};
use palomar_testkit::{InProcessServer, nick};
use palomar_transport::Fingerprint;
use tokio::runtime::Runtime;

/// Generous: CI machines are shared and slow; nothing waits this long when things work.
const PATIENCE: Duration = Duration::from_secs(60);

/// Reconnect quickly: the tests wait for reconnections.
const FAST: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(500) };

fn options(home: &Path, server: &str) -> Options {
    Options {
        home: home.to_owned(),
        settings_path: Some(home.join("gui.toml")),
        server: Some(server.to_owned()),
        nick: None,
        backoff: FAST,
        offset: FixedOffset::east_opt(0).expect("UTC"),
        notifier: Notifier::new(|_| {}),
    }
}

fn window(runtime: &Runtime, options: Options) -> Harness<'static, PalomarApp> {
    window_sized(runtime, options, [1100.0, 720.0])
}

fn window_sized(runtime: &Runtime, options: Options, size: [f32; 2]) -> Harness<'static, PalomarApp> {
    let app = PalomarApp::new(runtime.handle().clone(), options);
    Harness::builder().with_size(size).build_ui_state(|ui, app: &mut PalomarApp| app.ui(ui), app)
}

/// Runs frames until `done` holds; panics with `what` after [`PATIENCE`].
fn wait_until(harness: &mut Harness<'_, PalomarApp>, what: &str, done: impl Fn(&Harness<'_, PalomarApp>) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(Instant::now() < deadline, "no {what} in time");
        // Frames are cheap; this only keeps the loop from spinning while the engine works.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Some widget is labelled exactly `label`.
fn shows(harness: &Harness<'_, PalomarApp>, label: &str) -> bool {
    harness.query_all_by_label(label).next().is_some()
}

/// Some widget's label contains `part`.
fn shows_part(harness: &Harness<'_, PalomarApp>, part: &str) -> bool {
    harness.query_all_by_label_contains(part).next().is_some()
}

/// A member shown as a button (to start a direct conversation).
fn member_button(harness: &Harness<'_, PalomarApp>, nick: &str) -> bool {
    harness.query_all_by_role_and_label(Role::Button, nick).next().is_some()
}

/// Types into the field labelled `label`.
fn type_into(harness: &mut Harness<'_, PalomarApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.step();
    harness.get_by_label(label).type_text(text);
    harness.step();
    // The form reacts to what was typed (the confirmation field appears) in the frame after.
    harness.step();
}

/// Fills in nickname and password (twice at a first sign-in) and presses "Sign in" (the server comes from
/// the options).
fn submit_sign_in(harness: &mut Harness<'_, PalomarApp>, nick: &str, password: &str) {
    type_into(harness, "Nickname", nick);
    type_into(harness, "Password", password);
    if shows(harness, "Confirm password") {
        type_into(harness, "Confirm password", password);
    }
    harness.get_by_label("Sign in").click_accesskit();
    harness.step();
}

/// Signs in on a server seen for the first time: the certificate question, with the server's fingerprint.
fn sign_in_trusting(harness: &mut Harness<'_, PalomarApp>, server: &InProcessServer, nick: &str, password: &str) {
    submit_sign_in(harness, nick, password);
    wait_until(harness, "certificate question", |h| shows(h, "Trust and connect"));
    assert!(shows(harness, &server.fingerprint().to_string()), "the question shows the fingerprint");
    assert!(shows_part(harness, "first connection"));
    harness.get_by_label("Trust and connect").click_accesskit();
    wait_until(harness, "chat window", |h| h.state().signed_in() && shows(h, "#lobby"));
}

/// Types a message in the entry box, its lines separated by Shift+Enter, and presses Enter.
fn send(harness: &mut Harness<'_, PalomarApp>, text: &str) {
    let is_entry = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
        node.data().placeholder().is_some_and(|hint| hint.starts_with("Message "))
    };
    harness.get_by(is_entry).focus();
    harness.step();
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            harness.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
            harness.step();
        }
        harness.get_by(is_entry).type_text(line);
        harness.step();
    }
    harness.key_press(Key::Enter);
    harness.step();
}

fn is_search_field(node: &egui_kittest::kittest::AccessKitNode<'_>) -> bool {
    node.data().placeholder() == Some(palomar_gui::search_panel::FIELD_HINT)
}

/// Goes to the search field with Ctrl+F, types `query` there and presses Enter.
fn search(harness: &mut Harness<'_, PalomarApp>, query: &str) {
    harness.key_press_modifiers(Modifiers::COMMAND, Key::F);
    harness.step();
    assert!(harness.get_by(is_search_field).is_focused(), "Ctrl+F focuses the search field");
    harness.get_by(is_search_field).type_text(query);
    harness.step();
    harness.key_press(Key::Enter);
    harness.step();
}

/// How a screen reader names hit `number` of the search's results, as the terminal writes it: "[1] #lobby  bob
/// 14:05  lunch at noon?".
fn hit_label(harness: &Harness<'_, PalomarApp>, number: usize) -> String {
    let model = harness.state().model().expect("signed in");
    let hit = &model.search.as_ref().expect("a search").hits[number - 1];
    let time = palomar_client::model::hit_time(hit.ts, (model.clock)(), model.offset);
    palomar_client::model::hit_line(number, hit, &time)
}

/// A terminal client's engine, as `palomar chat --plain` runs it.
struct Peer {
    engine: Engine,
    seen: Vec<Event>,
}

impl Peer {
    fn start(runtime: &Runtime, server: &str, name: &str, home: &Path) -> Peer {
        let config = EngineConfig {
            server: palomar_client::server_address::parse_server(server).expect("the server's address"),
            nick: nick(name),
            password: format!("{name}-password").into(),
            home: home.to_owned(),
            trust: Trust::FirstUse,
            join: None,
            confirm_new_server: false,
            backoff: FAST,
        };
        let _entered = runtime.enter();
        Peer { engine: Engine::start(config).expect("engine starts"), seen: Vec::new() }
    }

    /// Reads events until one matches.
    fn wait_for(&mut self, runtime: &Runtime, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        if let Some(found) = self.seen.iter().find(|e| matches(e)) {
            return found.clone();
        }
        runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let event = tokio::time::timeout_at(deadline, self.engine.next_event())
                    .await
                    .unwrap_or_else(|_| panic!("no {what} in time; saw {:#?}", self.seen))
                    .expect("engine runs");
                self.seen.push(event.clone());
                if matches(&event) {
                    return event;
                }
            }
        })
    }

    fn send(&self, runtime: &Runtime, to: Conversation, text: &str) {
        self.post(runtime, to, MessageKind::Text, text);
    }

    fn post(&self, runtime: &Runtime, to: Conversation, kind: MessageKind, text: &str) {
        runtime.block_on(self.engine.commands().send(Command::Send { to, kind, text: text.into() })).expect("sends");
    }
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

#[test]
fn sign_in_trusting_the_server_then_chat_with_a_terminal_client() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));

    let home = dir.path().join("ana");
    let mut harness = window(&runtime, options(&home, &server.addr));
    harness.run_ok();
    harness.check_accessibility();
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    harness.check_accessibility();
    assert!(shows(&harness, "#lobby"), "the lobby is a conversation");
    assert_eq!(
        KnownHosts::new(home.join("known_hosts")).get(&server.addr).expect("reads pins"),
        Some(server.fingerprint()),
        "the trust decision is pinned where the terminal clients look"
    );
    let remembered = Settings::load(&home.join("gui.toml"));
    assert_eq!((remembered.server.as_deref(), remembered.nick.as_deref()), (Some(server.addr.as_str()), Some("ana")));
    let file = std::fs::read_to_string(home.join("gui.toml")).expect("settings saved");
    assert!(!file.contains("ana-password"), "the password is never written down: {file}");

    // Received: a terminal client's message appears, with its author.
    bob.send(&runtime, lobby(), "hi ana, welcome");
    wait_until(&mut harness, "bob's message", |h| shows(h, "hi ana, welcome"));
    wait_until(&mut harness, "bob among the members", |h| member_button(h, "bob"));

    // Sent: Enter sends; the terminal client receives it, and it is marked stored.
    send(&mut harness, "hello bob");
    let got = bob.wait_for(
        &runtime,
        "ana's message",
        |e| matches!(e, Event::Message { message, .. } if message.text == "hello bob"),
    );
    assert!(
        matches!(got, Event::Message { message, .. } if message.from == nick("ana") && message.conversation == lobby())
    );
    wait_until(&mut harness, "sent mark", |h| shows(h, SENT));
    assert!(shows(&harness, "hello bob"));

    // Shift+Enter starts a new line in the same message.
    send(&mut harness, "two lines:\nthis is the second");
    bob.wait_for(
        &runtime,
        "two-line message",
        |e| matches!(e, Event::Message { message, .. } if message.text == "two lines:\nthis is the second"),
    );

    // Clicking a member opens a direct conversation; what is typed there goes to that member only.
    harness.get_by_role_and_label(Role::Button, "bob").click_accesskit();
    wait_until(&mut harness, "direct conversation", |h| {
        h.state().model().is_some_and(|m| m.current().id == Conversation::Direct(nick("bob")))
    });
    send(&mut harness, "just for you");
    let got = bob.wait_for(
        &runtime,
        "direct message",
        |e| matches!(e, Event::Message { message, .. } if message.text == "just for you"),
    );
    assert!(matches!(got, Event::Message { message, .. } if message.conversation == Conversation::Direct(nick("ana"))));

    // The lobby counts what arrives while another conversation is shown.
    bob.send(&runtime, lobby(), "one");
    bob.send(&runtime, lobby(), "two");
    wait_until(&mut harness, "unread badge", |h| {
        h.state().model().is_some_and(|m| m.convs[0].unread == 2) && shows(h, "2")
    });

    // Joining a room from the window.
    type_into(&mut harness, "Join a room", "garden");
    harness.get_by_label("Join").click_accesskit();
    wait_until(&mut harness, "the garden room", |h| shows(h, "#garden") && shows(h, "Leave #garden"));

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn the_banner_counts_down_while_the_server_is_away_and_pending_becomes_sent() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = InProcessServer::start(runtime.handle(), dir.path());
    let home = dir.path().join("ana");
    let mut harness = window(&runtime, options(&home, &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    assert!(!shows_part(&harness, "Reconnecting"), "no banner while connected");

    server.stop();
    wait_until(&mut harness, "reconnect banner", |h| {
        shows_part(h, "Reconnecting in") && shows(h, "nothing is waiting to go out")
    });

    // Typed while offline: kept, marked pending, and counted in the banner.
    send(&mut harness, "are you still there?");
    wait_until(&mut harness, "pending message", |h| shows(h, "are you still there?") && shows(h, PENDING));
    wait_until(&mut harness, "count of waiting messages", |h| shows(h, "1 message waiting to go out"));
    assert!(!shows(&harness, SENT));

    server.resume();
    wait_until(&mut harness, "sent mark after reconnecting", |h| shows(h, SENT) && !shows(h, PENDING));
    wait_until(&mut harness, "banner gone", |h| !shows_part(h, "Reconnecting"));
    assert!(shows_part(&harness, "reconnected as ana"));
    drop(harness);
    server.stop();
}

#[test]
fn older_messages_arrive_above_the_message_being_read_without_moving_it() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    for n in 1..=120 {
        bob.send(&runtime, lobby(), &format!("old message {n:03}"));
    }
    bob.wait_for(&runtime, "the last message stored", |e| matches!(e, Event::Accepted { seq: 120, .. }));

    // A new member is shown the last `join_window` (50) messages, at the bottom of the view.
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    wait_until(&mut harness, "the newest message", |h| shows(h, "old message 120"));
    let oldest = |h: &Harness<'_, PalomarApp>| h.state().model().and_then(|m| m.current().oldest_seq());
    assert_eq!(oldest(&harness), Some(71));

    // The page asked for at sign-in brings what the catch-up already showed; once it is answered, scrolling up
    // to the top (as a screen reader asks for it) fetches the page before. When it arrives, the messages that
    // were being read stay in view, and the new page is above them, to scroll up to.
    let fetching = |h: &Harness<'_, PalomarApp>| h.state().model().is_some_and(|m| m.current().is_fetching_history());
    wait_until(&mut harness, "the answer to the page asked for at sign-in", |h| !fetching(h));
    assert_eq!(oldest(&harness), Some(71), "that page adds nothing older");
    let deadline = Instant::now() + PATIENCE;
    while !fetching(&harness) && oldest(&harness) == Some(71) {
        let y = harness.get_by_label("old message 071").rect().top();
        assert!(Instant::now() < deadline, "scrolling up fetched nothing; the first message is at y = {y}");
        harness.get_by_label("old message 100").scroll_up();
        harness.step();
    }
    wait_until(&mut harness, "the older page", |h| oldest(h) == Some(21));
    harness.step();
    let view_height = 720.0;
    let read = harness.get_by_label("old message 071").rect();
    assert!(
        read.top() > 0.0 && read.bottom() < view_height / 2.0,
        "the message read at the top of the view was pushed down, to y = {}",
        read.top()
    );
    assert!(harness.get_by_label("old message 070").rect().bottom() <= read.top(), "the new page is above it");
    assert!(harness.get_by_label("old message 021").rect().top() < 0.0, "and starts above the view");
    assert!(shows(&harness, "old message 021"), "the older page is there, above");
    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn a_server_that_cannot_be_reached_or_a_wrong_password_is_said_on_the_form() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    // Register ana with her password first.
    let mut ana = Peer::start(&runtime, &server.addr, "ana", &dir.path().join("ana-terminal"));
    ana.wait_for(&runtime, "ana registered", |e| matches!(e, Event::Synced));

    // Nothing listens on a port just released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("address").to_string()
    };
    let mut harness = window(&runtime, options(&dir.path().join("gui"), &closed));
    submit_sign_in(&mut harness, "ana", "ana-password");
    wait_until(&mut harness, "unreachable server", |h| shows_part(h, "Cannot reach"));
    assert!(!harness.state().signed_in());
    assert!(matches!(harness.state().form().problem, Some(Problem::Error(_))));

    let mut harness = window(&runtime, options(&dir.path().join("gui"), &server.addr));
    submit_sign_in(&mut harness, "ana", "not-her-password");
    wait_until(&mut harness, "certificate question", |h| shows(h, "Trust and connect"));
    harness.get_by_label("Trust and connect").click_accesskit();
    wait_until(&mut harness, "refused login", |h| shows_part(h, "Login refused"));
    assert!(!harness.state().signed_in());
    assert!(shows(&harness, "Sign in"), "the form is there to try again");
    drop(ana);
}

#[test]
fn a_lockout_at_the_first_sign_in_counts_down_on_the_form_and_can_be_cancelled() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    // One failure locks the nickname out from this address for 3 s (doubled for the next one).
    let login = palomar_server::config::LoginSettings {
        max_failures: 1,
        lockout_secs: 3,
        ..palomar_server::config::LoginSettings::default()
    };
    let server = InProcessServer::start_with(
        runtime.handle(),
        dir.path(),
        palomar_server::Config { login, ..Default::default() },
    );
    let mut ana = Peer::start(&runtime, &server.addr, "ana", &dir.path().join("ana-terminal"));
    ana.wait_for(&runtime, "ana registered", |e| matches!(e, Event::Synced));
    runtime.block_on(ana.engine.commands().send(Command::Quit)).expect("quits");

    let mut harness = window(&runtime, options(&dir.path().join("gui"), &server.addr));
    submit_sign_in(&mut harness, "ana", "not-her-password");
    wait_until(&mut harness, "certificate question", |h| shows(h, "Trust and connect"));
    harness.get_by_label("Trust and connect").click_accesskit();
    wait_until(&mut harness, "refused password", |h| shows_part(h, "Login refused"));

    // The right password while locked out: the form counts down, then the client gets in by itself.
    submit_sign_in(&mut harness, "", "ana-password");
    wait_until(&mut harness, "countdown", |h| shows_part(h, "Trying again in"));
    assert!(shows_part(&harness, "too many failed logins"), "the reason is said");
    assert!(!shows_part(&harness, "try again in 3 s"), "the server's fixed time is not shown beside the countdown");
    wait_until(&mut harness, "signed in after the lockout", |h| h.state().signed_in());
    harness.get_by_label("Sign out").click_accesskit();
    wait_until(&mut harness, "the form again", |h| shows(h, "Nickname"));

    // Locked out again; this time the wait is cancelled: the attempt ends, and the form says why.
    submit_sign_in(&mut harness, "", "not-her-password");
    wait_until(&mut harness, "refused password", |h| shows_part(h, "Login refused"));
    submit_sign_in(&mut harness, "", "ana-password");
    wait_until(&mut harness, "countdown", |h| shows_part(h, "Trying again in"));
    harness.get_by_label("Cancel sign-in").click_accesskit();
    wait_until(&mut harness, "cancelled", |h| h.state().model().is_none());
    assert!(shows_part(&harness, "too many failed logins"), "{:?}", harness.state().form().problem);
    assert!(!harness.state().signed_in());
    assert!(shows(&harness, "Sign in"), "the form is there to try again");
}

#[test]
fn a_changed_certificate_is_a_warning_and_a_refused_one_does_not_connect() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());

    // Refusing the certificate on first contact: no connection, nothing pinned.
    let home = dir.path().join("gui");
    let mut harness = window(&runtime, options(&home, &server.addr));
    submit_sign_in(&mut harness, "ana", "ana-password");
    wait_until(&mut harness, "certificate question", |h| shows(h, "Trust and connect"));
    harness.get_by_label("Cancel").click_accesskit();
    wait_until(&mut harness, "refusal on the form", |h| h.state().form().problem.is_some());
    assert!(!harness.state().signed_in());
    assert_eq!(KnownHosts::new(home.join("known_hosts")).get(&server.addr).expect("reads pins"), None);

    // Another certificate pinned for this address (as if the server had been replaced): a warning.
    KnownHosts::new(home.join("known_hosts")).set(&server.addr, Fingerprint([0xab; 32])).expect("pins");
    let mut harness = window(&runtime, options(&home, &server.addr));
    submit_sign_in(&mut harness, "ana", "ana-password");
    wait_until(&mut harness, "changed-certificate warning", |h| shows(h, "⚠ The server's certificate has changed"));
    assert!(matches!(harness.state().form().problem, Some(Problem::CertificateChanged(_))));
    assert!(shows_part(&harness, &server.fingerprint().to_string()), "the presented fingerprint is shown");
    assert!(!harness.state().signed_in());
}

/// Runs frames until two in a row lay out the same widgets, or [`PATIENCE`] passes.
fn settle(harness: &mut Harness<'_, PalomarApp>) {
    let deadline = Instant::now() + PATIENCE;
    let size = harness.ctx.content_rect().size().into();
    let mut last = visible_widgets(harness, size);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
        let now = visible_widgets(harness, size);
        if now == last {
            return;
        }
        last = now;
    }
}

/// The widgets drawn whole inside the window, with their labels.
fn visible_widgets(harness: &Harness<'_, PalomarApp>, size: [f32; 2]) -> Vec<(String, egui::Rect)> {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size.into());
    let widget = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
        matches!(node.role(), Role::Label | Role::Button | Role::TextInput | Role::MultilineTextInput | Role::Tab)
            && node.bounding_box().is_some()
    };
    harness
        .query_all_by(widget)
        .map(|node| {
            let ak = node.accesskit_node();
            let label = ak.label().or_else(|| ak.value()).unwrap_or_default();
            (label, node.rect())
        })
        .filter(|(_, rect)| rect.width() > 0.0 && window.contains_rect(*rect))
        .collect()
}

/// Two widgets drawn over each other (a pixel of contact is not overlap).
fn overlaps(widgets: &[(String, egui::Rect)]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, (a, ra)) in widgets.iter().enumerate() {
        for (b, rb) in &widgets[i + 1..] {
            if ra.shrink(1.0).intersects(rb.shrink(1.0)) && !ra.contains_rect(*rb) && !rb.contains_rect(*ra) {
                found.push(format!("{a:?} {ra:?} and {b:?} {rb:?}"));
            }
        }
    }
    found
}

#[test]
fn the_window_fits_a_phone_and_a_small_laptop() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let sizes = [([360.0, 640.0], true), ([480.0, 420.0], true), ([800.0, 600.0], false), ([1280.0, 720.0], false)];
    for (size, narrow) in sizes {
        // One text per size: a window may also show the earlier ones, when its client's acknowledgements of them
        // did not reach the server before it closed.
        let long = &format!(
            "a message long enough to need the whole width of the message column, so that a column too narrow \
             for it would show one word or one letter per line ({} points)",
            size[0]
        );
        let home = dir.path().join(format!("ana-{}", size[0]));
        let mut harness = window_sized(&runtime, options(&home, &server.addr), size);
        sign_in_trusting(&mut harness, &server, "ana", "ana-password");
        bob.send(&runtime, lobby(), long);
        wait_until(&mut harness, "bob's long message", |h| shows(h, long));
        let text = harness.get_by_label(long).rect();
        assert!(
            text.width() >= size[0] * 0.5 && text.right() <= size[0],
            "at {size:?} the message gets {text:?}; it needs a reasonable width inside the window"
        );
        // The first page of scrollback may still be arriving and scrolling the view: the layout is checked once
        // it stands still (a label half scrolled under the heading is clipped, not overlapping).
        settle(&mut harness);
        let widgets = visible_widgets(&harness, size);
        assert!(overlaps(&widgets).is_empty(), "at {size:?}: {:#?}", overlaps(&widgets));
        assert_eq!(shows(&harness, "Join a room"), !narrow, "the conversations pane at {size:?}");
        if narrow {
            // The side panes are tabs: members, then back to the messages with a click on a member.
            harness.get_by_label("Members").click_accesskit();
            wait_until(&mut harness, "the members tab", |h| member_button(h, "bob"));
            assert!(!shows(&harness, long), "the members replace the messages");
            harness.get_by_role_and_label(Role::Button, "bob").click_accesskit();
            wait_until(&mut harness, "the direct conversation", |h| {
                h.state().model().is_some_and(|m| m.current().id == Conversation::Direct(nick("bob")))
                    && shows(h, "@bob")
            });
            harness.get_by_label_contains("Conversations").click_accesskit();
            wait_until(&mut harness, "the conversations tab", |h| shows(h, "Join a room"));
        }
        // The search field and the results fit too: beside the messages, or in their place.
        search(&mut harness, &format!("({} points)", size[0]));
        wait_until(&mut harness, "the hit", |h| shows_part(h, "1 message found"));
        settle(&mut harness);
        let widgets = visible_widgets(&harness, size);
        assert!(overlaps(&widgets).is_empty(), "searching at {size:?}: {:#?}", overlaps(&widgets));
        let hit = harness.get_by_role_and_label(Role::Button, &hit_label(&harness, 1)).rect();
        assert!(hit.width() >= 200.0 && hit.right() <= size[0], "at {size:?} a hit gets {hit:?}");
    }
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn a_changed_certificate_can_be_trusted_after_a_deliberate_confirmation() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = InProcessServer::start(runtime.handle(), dir.path());
    let old = server.fingerprint();
    let home = dir.path().join("ana");
    let size = [480.0, 420.0];
    let mut harness = window_sized(&runtime, options(&home, &server.addr), size);
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");

    // The server comes back with another certificate: the engine stops, and the banner says why, once.
    server.stop();
    server.replace_certificate();
    server.resume();
    let new = server.fingerprint();
    wait_until(&mut harness, "changed-certificate banner", |h| shows(h, "⚠ The server's certificate has changed"));
    assert_eq!(harness.query_all_by_label_contains("Someone may be intercepting").count(), 1, "said once");
    let remedy = harness.get_by_label_contains("palomar trust --server");
    assert!(remedy.rect().right() <= size[0], "the remedy wraps inside the window: {:?}", remedy.rect());
    // By AccessKit: the banner grows over its first frames, and a pointer aimed at its first layout misses.
    harness.get_by_label("Back to sign in").click_accesskit();
    wait_until(&mut harness, "the sign-in form", |h| shows(h, palomar_gui::certificate::TRUST_NEW));

    // Trusting it takes a second, deliberate step that shows both fingerprints; cancelling changes nothing.
    type_into(&mut harness, "Password", "ana-password");
    harness.get_by_label(palomar_gui::certificate::TRUST_NEW).click_accesskit();
    wait_until(&mut harness, "the confirmation", |h| shows(h, palomar_gui::certificate::CONFIRM_TRUST_NEW));
    assert!(shows(&harness, &new.to_string()) && shows(&harness, &old.to_string()), "both fingerprints");
    harness.get_by_label("Cancel").click_accesskit();
    wait_until(&mut harness, "the confirmation closed", |h| !shows(h, palomar_gui::certificate::CONFIRM_TRUST_NEW));
    let pins = KnownHosts::new(home.join("known_hosts"));
    assert_eq!(pins.get(&server.addr).expect("reads pins"), Some(old), "nothing pinned on cancel");

    harness.get_by_label(palomar_gui::certificate::TRUST_NEW).click_accesskit();
    wait_until(&mut harness, "the confirmation", |h| shows(h, palomar_gui::certificate::CONFIRM_TRUST_NEW));
    harness.get_by_label(palomar_gui::certificate::CONFIRM_TRUST_NEW).click_accesskit();
    wait_until(&mut harness, "signed in again", |h| h.state().signed_in() && shows(h, "#lobby"));
    assert_eq!(pins.get(&server.addr).expect("reads pins"), Some(new), "the new certificate is pinned");
    drop(harness);
    server.stop();
}

#[test]
fn the_address_is_checked_and_a_peer_that_is_not_palomar_is_said() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("gui");
    let mut harness = window(&runtime, options(&home, "127.0.0.1:99999"));
    submit_sign_in(&mut harness, "ana", "pw");
    wait_until(&mut harness, "the address refused", |h| shows_part(h, "not a number from 1 to 65535"));
    assert!(harness.state().model().is_none(), "no engine was started");

    // A web server on the port: it answers, but not as a Palomar server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("address").to_string();
    let web = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().expect("accepts");
        let mut hello = [0; 512];
        let _ = stream.read(&mut hello);
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let mut harness = window(&runtime, options(&home, &addr));
    submit_sign_in(&mut harness, "ana", "pw");
    wait_until(&mut harness, "not a Palomar server", |h| h.state().form().problem.is_some());
    assert!(shows_part(&harness, "is not a Palomar server"), "{:?}", harness.state().form().problem);
    assert!(harness.state().model().is_none(), "the attempt is over, not retried");
    assert_eq!(KnownHosts::new(home.join("known_hosts")).get(&addr).expect("reads pins"), None);
    web.join().expect("web server");
}

#[test]
fn a_first_sign_in_asks_for_the_password_twice_and_a_wrong_one_is_asked_again() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob-terminal"));
    bob.wait_for(&runtime, "bob registered", |e| matches!(e, Event::Synced));
    let home = dir.path().join("gui");

    // A typo in the confirmation is caught before anything is sent.
    let mut harness = window(&runtime, options(&home, &server.addr));
    type_into(&mut harness, "Nickname", "ana");
    assert!(shows(&harness, "Confirm password"), "a first sign-in asks twice");
    type_into(&mut harness, "Password", "ana-password");
    type_into(&mut harness, "Confirm password", "ana-passwor");
    harness.get_by_label("Sign in").click_accesskit();
    wait_until(&mut harness, "the passwords differ", |h| shows_part(h, "passwords differ"));
    assert!(harness.state().model().is_none(), "nothing was sent");
    type_into(&mut harness, "Confirm password", "d");
    harness.get_by_label("Sign in").click_accesskit();
    wait_until(&mut harness, "certificate question", |h| shows(h, "Trust and connect"));
    harness.get_by_label("Trust and connect").click_accesskit();
    wait_until(&mut harness, "signed in", |h| h.state().signed_in());
    harness.get_by_label("Sign out").click_accesskit();
    harness.step();
    assert!(!shows(&harness, "Confirm password"), "ana has signed in from here: asked once");

    // bob's account exists, but not here: asked twice; a wrong password is said, and asked again.
    let mut harness = window(&runtime, Options { nick: Some("bob".into()), ..options(&home, &server.addr) });
    submit_sign_in(&mut harness, "", "not-bobs-password");
    wait_until(&mut harness, "refused password", |h| shows_part(h, "Login refused"));
    assert!(matches!(harness.state().form().problem, Some(Problem::PasswordRefused(_))));
    assert!(harness.state().form().password.is_empty(), "the password is typed again");
    assert!(!shows(&harness, "Confirm password"), "the account exists: asked once");
    submit_sign_in(&mut harness, "", "bob-password");
    wait_until(&mut harness, "signed in as bob", |h| h.state().signed_in());
    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn tab_completes_help_lines_up_nicknames_line_up_and_members_are_unknown_offline() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    bob.send(&runtime, lobby(), "hello from bob");
    wait_until(&mut harness, "bob's message", |h| shows(h, "hello from bob"));

    // Tab completes the nickname and stays in the entry box; Tab again at a command completes it.
    let is_entry = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
        node.data().placeholder().is_some_and(|hint| hint.starts_with("Message "))
    };
    harness.get_by(is_entry).focus();
    harness.step();
    harness.get_by(is_entry).type_text("b");
    harness.step();
    harness.key_press(Key::Tab);
    harness.step();
    harness.step();
    assert_eq!(harness.get_by(is_entry).accesskit_node().value().as_deref(), Some("bob: "));
    assert!(harness.get_by(is_entry).accesskit_node().is_focused(), "the focus stays in the entry box");
    harness.get_by(is_entry).type_text("hi");
    harness.step();
    harness.key_press(Key::Enter);
    harness.step();
    wait_until(&mut harness, "ana's message", |h| shows(h, "bob: hi"));

    // The `✔` mark has a column of its own: ana's nickname starts where bob's does.
    wait_until(&mut harness, "sent mark", |h| shows(h, SENT));
    let nick_left = |h: &Harness<'_, PalomarApp>, name: &str| {
        h.query_all_by_role_and_label(Role::Label, name).map(|node| node.rect().left()).fold(f32::MAX, f32::min)
    };
    assert_eq!(nick_left(&harness, "ana"), nick_left(&harness, "bob"), "nicknames line up whatever the mark");

    // `/help` is a table: every description starts at the same place.
    send(&mut harness, "/help");
    wait_until(&mut harness, "the help", |h| shows(h, palomar_client::command_line::HELP[0].1));
    let lefts: Vec<f32> =
        palomar_client::command_line::HELP.iter().map(|(_, what)| harness.get_by_label(what).rect().left()).collect();
    assert!(lefts.iter().all(|left| *left == lefts[0]), "descriptions at {lefts:?}");

    // Small print is readable: the member count's line is as tall as 12-point text needs.
    let count = harness.get_by_label_contains("Online — ").rect();
    assert!(count.height() >= 13.0, "small print {} points tall", count.height());

    // Offline, nobody's presence is known.
    assert!(!shows(&harness, palomar_gui::chat_window::UNKNOWN_MEMBERS));
    server.stop();
    wait_until(&mut harness, "members unknown", |h| shows(h, palomar_gui::chat_window::UNKNOWN_MEMBERS));
    assert!(!shows_part(&harness, "Online — "), "nobody is shown online while disconnected");
    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn room_commands_work_in_the_entry_box_and_only_in_a_room() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    send(&mut harness, "/topic");
    wait_until(&mut harness, "the topic's notice", |h| shows_part(h, "#lobby has no topic"));
    send(&mut harness, "/msg bob");
    wait_until(&mut harness, "the direct conversation", |h| shows(h, "@bob"));
    send(&mut harness, "/op bob");
    wait_until(&mut harness, "the refusal", |h| shows_part(h, "moderation commands work in a room"));
}

#[test]
fn an_action_reads_as_one_and_a_message_s_menu_edits_and_deletes_it() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");

    bob.post(&runtime, lobby(), MessageKind::Action, "waves");
    wait_until(&mut harness, "bob's action", |h| shows(h, "* bob") && shows(h, "waves"));

    send(&mut harness, "helo");
    wait_until(&mut harness, "sent mark", |h| shows(h, SENT));
    harness.get_by_label("helo").click_secondary();
    harness.run_ok();
    harness.get_by_label("Edit").click();
    harness.run_ok();
    let is_entry = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
        node.data().placeholder().is_some_and(|hint| hint.starts_with("Message "))
    };
    let entry = harness.get_by(is_entry).accesskit_node().value().unwrap_or_default();
    assert!(entry.starts_with("/edit #") && entry.ends_with(" helo"), "the entry box has the edit to make: {entry}");
    harness.key_press(Key::Enter);
    harness.step();
    wait_until(&mut harness, "the edited mark", |h| shows(h, "(edited)"));
    bob.wait_for(
        &runtime,
        "ana's edit",
        |e| matches!(e, Event::Message { message, .. } if matches!(message.kind, MessageKind::Edit { .. })),
    );

    harness.get_by_label("helo").click_secondary();
    harness.run_ok();
    harness.get_by_label("Delete").click();
    harness.run_ok();
    let entry = harness.get_by(is_entry).accesskit_node().value().unwrap_or_default();
    assert!(entry.starts_with("/delete #") && entry.ends_with(' '), "the deletion waits for a reason: {entry}");
    assert!(!shows(&harness, "(deleted)"), "nothing is deleted before Enter");
    harness.key_press(Key::Enter);
    harness.step();
    wait_until(&mut harness, "the placeholder", |h| shows(h, "(deleted)"));
    assert!(!shows(&harness, "helo"));

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn a_link_in_a_message_is_a_link_and_a_code_block_keeps_its_lines() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");

    let url = "https://example.com/guide";
    bob.send(&runtime, lobby(), &format!("read {url}, not http://example.com\n```sh\ncd x\n  make  all\n```"));
    wait_until(&mut harness, "bob's link", |h| h.query_all_by_role_and_label(Role::Link, url).next().is_some());
    assert_eq!(harness.query_all_by_role(Role::Link).count(), 1, "http:// is no link");
    assert!(shows(&harness, ", not http://example.com"), "the text around the link");
    assert!(shows(&harness, "cd x\n  make  all"), "the block, spaces and line breaks kept");

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn a_reply_shows_its_quote_and_a_reaction_is_a_chip_that_toggles_ours() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");

    bob.send(&runtime, lobby(), "lunch at noon?");
    let Event::Accepted { seq, .. } =
        bob.wait_for(&runtime, "bob's message stored", |e| matches!(e, Event::Accepted { .. }))
    else {
        unreachable!("waited for an acceptance")
    };
    bob.post(&runtime, lobby(), MessageKind::Reply { of: seq }, "or at one");
    bob.post(&runtime, lobby(), MessageKind::Reaction { of: seq, added: true }, "👍");
    wait_until(&mut harness, "the reply and its quote", |h| shows(h, "or at one") && shows(h, "↪ bob: lunch at noon?"));
    wait_until(&mut harness, "bob's reaction", |h| shows(h, "👍 1"));

    harness.get_by_label("👍 1").click();
    wait_until(&mut harness, "ana's reaction beside bob's", |h| shows(h, "👍 2"));
    bob.wait_for(&runtime, "ana's reaction", |e| {
        matches!(e, Event::Message { message, .. }
            if message.kind == MessageKind::Reaction { of: seq, added: true } && message.from == nick("ana"))
    });

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

/// The window has the focus or not, as the platform would say.
fn focus(harness: &mut Harness<'_, PalomarApp>, focused: bool) {
    harness.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().focused = Some(focused);
    harness.step();
}

#[test]
fn an_alert_is_a_desktop_notification_only_while_the_window_is_not_focused_nor_silenced() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let shown = Arc::new(Mutex::new(Vec::new()));
    let notifier = {
        let shown = Arc::clone(&shown);
        Notifier::new(move |alert| shown.lock().expect("not poisoned").push(alert.clone()))
    };
    let mut harness = window(&runtime, Options { notifier, ..options(&dir.path().join("ana"), &server.addr) });
    let shown_now = || shown.lock().expect("not poisoned").clone();
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");

    focus(&mut harness, true);
    bob.send(&runtime, lobby(), "ana, are you there?");
    wait_until(&mut harness, "bob's mention", |h| shows(h, "ana, are you there?"));
    assert_eq!(shown_now(), [], "a window in focus shows no notification");

    focus(&mut harness, false);
    bob.send(&runtime, Conversation::Direct(nick("ana")), "lunch?\nat noon");
    wait_until(&mut harness, "a notification", |_| !shown_now().is_empty());
    assert_eq!(shown_now(), [Alert { title: "bob (direct)".into(), body: "lunch?".into() }]);

    // Silenced: bob's next direct message is not shown; a mention in the lobby, sent after it, is.
    send(&mut harness, "/silence @bob");
    wait_until(&mut harness, "silenced", |h| {
        h.state().model().is_some_and(|m| m.is_silenced(&Conversation::Direct(nick("bob"))))
    });
    bob.send(&runtime, Conversation::Direct(nick("ana")), "still there?");
    bob.send(&runtime, lobby(), "ana: last call");
    wait_until(&mut harness, "a second notification", |_| shown_now().len() == 2);
    assert_eq!(shown_now()[1], Alert { title: "bob in #lobby".into(), body: "ana: last call".into() });

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn a_message_found_by_search_opens_where_it_was_said_even_when_older_than_those_loaded() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    // Older than the 50 messages a new member is shown.
    bob.send(&runtime, lobby(), "Lunch at noon on Friday?");
    for n in 1..=80 {
        bob.send(&runtime, lobby(), &format!("filler {n:02}"));
    }
    bob.wait_for(&runtime, "the last message stored", |e| matches!(e, Event::Accepted { seq: 81, .. }));

    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    wait_until(&mut harness, "the newest message", |h| shows(h, "filler 80"));
    wait_until(&mut harness, "bob among the members", |h| member_button(h, "bob"));
    harness.get_by_role_and_label(Role::Button, "bob").click_accesskit();
    wait_until(&mut harness, "the direct conversation", |h| {
        h.state().model().is_some_and(|m| m.current().id == Conversation::Direct(nick("bob")))
    });

    search(&mut harness, "lunch fri");
    wait_until(&mut harness, "the hit", |h| {
        h.state().model().is_some_and(|m| m.search.as_ref().is_some_and(|s| !s.hits.is_empty()))
    });
    let hit = hit_label(&harness, 1);
    assert!(hit.starts_with("[1] #lobby  bob  ") && hit.ends_with("  Lunch at noon on Friday?"), "{hit}");
    assert!(shows(&harness, "1 message found for “lunch fri”"), "the header's words");
    assert!(!shows(&harness, "Lunch at noon on Friday?"), "not loaded in the lobby yet");

    harness.get_by_role_and_label(Role::Button, &hit).click_accesskit();
    wait_until(&mut harness, "the message in the lobby", |h| {
        h.state().model().is_some_and(|m| m.current().id == lobby()) && shows(h, "Lunch at noon on Friday?")
    });
    let settled = |h: &Harness<'_, PalomarApp>| {
        let shown = h.get_by_label("Lunch at noon on Friday?").rect();
        shown.top() > 0.0 && shown.bottom() < 720.0
    };
    wait_until(&mut harness, "the message scrolled into view", settled);
    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn the_room_browser_lists_a_peer_s_room_with_its_members_and_topic_and_joins_it() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let garden = RoomName::parse("garden").expect("valid");
    runtime.block_on(bob.engine.commands().send(Command::Join { room: garden.to_string() })).expect("joins");
    bob.wait_for(&runtime, "garden created", |e| matches!(e, Event::Joined { .. }));
    let topic = RoomAction::Topic { text: "Seeds and soil".into() };
    runtime
        .block_on(bob.engine.commands().send(Command::Moderate { room: garden.clone(), action: topic }))
        .expect("sets");
    bob.wait_for(&runtime, "the topic set", |e| matches!(e, Event::RoomEvent { change: RoomChange::Topic { .. }, .. }));

    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    harness.get_by_role_and_label(Role::Button, room_browser::OPEN).click_accesskit();
    let listed =
        |h: &Harness<'_, PalomarApp>| h.query_all_by_role_and_label(Role::Button, "Join #garden").next().is_some();
    wait_until(&mut harness, "the garden listed", listed);
    assert!(shows(&harness, "Seeds and soil"), "with its topic");
    assert!(shows(&harness, "1 member"), "and its members");
    assert!(harness.query_all_by_role_and_label(Role::Button, "Open #lobby").next().is_some(), "ana is in the lobby");
    assert!(!shows_part(&harness, "#garden  1 member"), "the listing is not told in the conversation too");

    harness.get_by_role_and_label(Role::Button, "Join #garden").click_accesskit();
    wait_until(&mut harness, "the garden shown", |h| {
        h.state().model().is_some_and(|m| m.current().id == Conversation::Room(garden.clone()) && m.rooms.is_none())
    });
    bob.wait_for(&runtime, "ana in the garden", |e| match e {
        Event::Presence { room, nick: who, state: PresenceState::Joined } => *room == garden && *who == nick("ana"),
        _ => false,
    });
    harness.get_by_role_and_label(Role::Button, room_browser::OPEN).click_accesskit();
    wait_until(&mut harness, "the garden listed again", |h| {
        h.query_all_by_role_and_label(Role::Button, "Open #garden").next().is_some() && shows(h, "2 members")
    });

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}

#[test]
fn away_messages_whois_typing_and_read_markers_go_both_ways_with_a_terminal_client() {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InProcessServer::start(runtime.handle(), dir.path());
    let mut bob = Peer::start(&runtime, &server.addr, "bob", &dir.path().join("bob"));
    bob.wait_for(&runtime, "bob connected", |e| matches!(e, Event::Synced));
    let mut harness = window(&runtime, options(&dir.path().join("ana"), &server.addr));
    sign_in_trusting(&mut harness, &server, "ana", "ana-password");
    wait_until(&mut harness, "bob among the members", |h| member_button(h, "bob"));

    // bob's away message marks him in the member list.
    runtime.block_on(bob.engine.commands().send(Command::SetAway("lunch".into()))).expect("sends");
    wait_until(&mut harness, "bob marked away", |h| shows(h, awareness::AWAY_MARK));

    // Ours, set in the top bar's dialog, reaches bob and shows in the top bar.
    harness.get_by_role_and_label(Role::Button, awareness::SET_AWAY).click_accesskit();
    wait_until(&mut harness, "the away dialog", |h| h.query_by_role_and_label(Role::Button, awareness::SET).is_some());
    let is_away_field =
        |node: &egui_kittest::kittest::AccessKitNode<'_>| node.data().placeholder() == Some(awareness::AWAY_HINT);
    harness.get_by(is_away_field).focus();
    harness.step();
    harness.get_by(is_away_field).type_text("in a meeting");
    harness.step();
    harness.step();
    harness.get_by_role_and_label(Role::Button, awareness::SET).click_accesskit();
    wait_until(&mut harness, "away in the top bar", |h| shows(h, "away: in a meeting"));
    bob.wait_for(&runtime, "ana's away message", |e| {
        matches!(e, Event::Away { nick: who, message: Some(message) } if *who == nick("ana") && message == "in a meeting")
    });

    // "Who is this?" on bob: the server's answer, as lines in the conversation.
    harness.get_by_role_and_label(Role::Button, "bob").click_secondary();
    wait_until(&mut harness, "bob's menu", |h| shows(h, chat_window::WHOIS));
    harness.get_by_label(chat_window::WHOIS).click();
    wait_until(&mut harness, "the whois answer", |h| shows(h, "bob: away: lunch"));
    assert!(shows(&harness, "bob: rooms in common: #lobby"));

    // Typing, both ways.
    let is_entry = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
        node.data().placeholder().is_some_and(|hint| hint.starts_with("Message "))
    };
    harness.get_by(is_entry).focus();
    harness.step();
    harness.get_by(is_entry).type_text("hel");
    harness.step();
    bob.wait_for(&runtime, "ana typing", |e| {
        matches!(e, Event::Typing { conversation, nick: who, typing: true } if *conversation == lobby() && *who == nick("ana"))
    });
    runtime
        .block_on(bob.engine.commands().send(Command::Typing { conversation: lobby(), typing: true }))
        .expect("sends");
    wait_until(&mut harness, "bob typing", |h| shows(h, "bob is typing…"));

    // Read markers, both ways: bob's message read in the focused window at its newest, ana's seen by bob.
    bob.send(&runtime, lobby(), "are you back?");
    wait_until(&mut harness, "bob's message", |h| shows(h, "are you back?"));
    assert!(!shows(&harness, "bob is typing…"), "his message ends his typing");
    let asked = bob.wait_for(
        &runtime,
        "bob's own message",
        |e| matches!(e, Event::Message { message, .. } if message.text == "are you back?"),
    );
    let Event::Message { message: asked, .. } = asked else { panic!("matched above") };
    // The server tells the reader's own sessions too.
    wait_until(&mut harness, "ana's marker moved", |h| {
        h.state().model().is_some_and(|m| m.current().marker_of(&nick("ana")) >= asked.seq)
    });
    bob.wait_for(&runtime, "ana's read marker", |e| {
        matches!(e, Event::ReadMarkers(markers) if markers.contains(&ReadMarker { conversation: lobby(), nick: nick("ana"), seq: asked.seq }))
    });
    harness.get_by(is_entry).type_text("lo");
    harness.step();
    harness.key_press(Key::Enter);
    harness.step();
    let said = bob.wait_for(
        &runtime,
        "ana's answer",
        |e| matches!(e, Event::Message { message, .. } if message.text == "hello"),
    );
    let Event::Message { message, .. } = said else { panic!("matched above") };
    runtime
        .block_on(bob.engine.commands().send(Command::MarkRead { conversation: lobby(), seq: message.seq }))
        .expect("sends");
    wait_until(&mut harness, "seen by bob", |h| shows(h, "seen by bob"));

    drop(harness);
    runtime.block_on(bob.engine.commands().send(Command::Quit)).expect("quits");
}
