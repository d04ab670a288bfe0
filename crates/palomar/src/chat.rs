//! `palomar chat`: the full-screen client on a terminal (see `tui`), else line mode. In line mode each
//! stdin line is a message to the current conversation, lines starting with `/` are commands (parsed by
//! `palomar_client::command_line`, like every front end's), and every engine event is one stdout line (text
//! or `--json`). At the end of input it waits until the outbox is empty, every command sent has its answer and
//! everything the server held at login has been shown, then exits 0; after `--drain-timeout` it exits 3
//! instead, and 4 when some input lines were refused. On a terminal, stdin is read by `terminal_input`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use palomar_client::backoff::Backoff;
use palomar_client::command_line::{self, SearchScope, Target, Typed};
use palomar_client::engine::{account_state_path, state_path};
use palomar_client::model::no_such_user;
use palomar_client::preferences::{Outcome, Preferences, preferences_path};
use palomar_client::server_address::{ServerAddresses, parse_server};
use palomar_client::{Command, Engine, EngineConfig, Event, Trust};
use palomar_proto::{Conversation, ErrorCode, Message, MessageKind, Nick, RoomName, validate_text};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::output::Printer;
use crate::terminal_input::RawInput;

/// Exit status when the outbox could not be emptied in time.
const EXIT_UNACKNOWLEDGED: u8 = 3;
/// Commands parsed from stdin and not yet taken by the engine; past it, stdin waits.
const MAX_OUTGOING: usize = 64;
/// Events printed before stdin and the outbox are looked at again.
const EVENT_BATCH: usize = 1024;
/// Exit status when the engine stopped for good (wrong password, changed certificate, ...).
const EXIT_FATAL: u8 = 2;
/// Exit status when every message went out but some input lines were refused (too long, a mistyped command,
/// refused by the server): a script must be able to tell that not everything it gave was carried out.
const EXIT_REFUSED: u8 = 4;
/// Exit status after Ctrl+C, as a shell reports a process that SIGINT ended.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Args)]
pub struct ChatArgs {
    /// The server's address, host or host:port (the port defaults to 5555); or the addresses of several nodes
    /// of one chat separated by commas, tried in order. The first one names the chat: pins, outbox and cursors
    /// are kept under it, so add new nodes after it.
    #[arg(long, default_value = "127.0.0.1:5555", value_parser = parse_server)]
    server: ServerAddresses,
    /// Your nickname; the first login with a free nickname registers it with your password.
    #[arg(long)]
    nick: String,
    /// The room to start in (joined if needed).
    #[arg(long, default_value = RoomName::LOBBY)]
    room: String,
    /// Line mode: stdin lines in, one event per stdout line out (the default when stdin or stdout is not a
    /// terminal; on a terminal, `chat` opens the full-screen client).
    #[arg(long)]
    plain: bool,
    /// Print each event as one JSON object per line (implies --plain).
    #[arg(long)]
    json: bool,
    /// Client state directory (pins, outbox, cursors) [default: PALOMAR_HOME or the platform's data directory].
    #[arg(long)]
    home: Option<PathBuf>,
    /// Read the password from this file (else PALOMAR_PASSWORD, else a prompt on the terminal).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Verify the server against this CA certificate (PEM) instead of pinning its fingerprint.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Seconds to wait at the end of input for every message to be acknowledged.
    #[arg(long, default_value_t = 60)]
    drain_timeout: u64,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let nick = Nick::parse(&args.nick).map_err(|e| anyhow::anyhow!("--nick {:?}: {e}", args.nick))?;
    let room = RoomName::parse(&args.room).map_err(|e| anyhow::anyhow!("--room {:?}: {e}", args.room))?;
    let trust = match &args.ca {
        Some(path) => Trust::Authority(palomar_transport::load_ca_file(path)?),
        None => Trust::FirstUse,
    };
    let home = crate::client_home(args.home)?;
    let asks = crate::secrets::asks(args.password_file.as_deref());
    let prompt = format!("password for {nick}: ");
    let password = if asks && !account_state_path(&home, args.server.name(), &nick).exists() {
        // Never used from this home: the nickname may be new, and this login would register it with what is typed.
        eprintln!("first login as {nick} from here: if {nick} has no account yet, this password becomes its password");
        crate::secrets::ask_new(&prompt, &format!("password for {nick}, again: "))?
    } else {
        crate::secrets::password(args.password_file.as_deref(), &prompt)?
    };
    let full_screen = !args.plain && !args.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let config = EngineConfig {
        server: args.server,
        nick,
        password: password.into(),
        home,
        trust,
        join: Some(room.clone()),
        confirm_new_server: full_screen,
        backoff: Backoff::default(),
    };
    if full_screen {
        return crate::tui::run(config, asks).await;
    }
    // Before the engine starts: what is typed from now on must not meet the kernel's line limit.
    let raw_input = match std::io::stdin().is_terminal() {
        true => Some(RawInput::enter().context("cannot set up the terminal for reading")?),
        false => None,
    };
    let mut interrupts = match raw_input {
        Some(_) => Some(signal(SignalKind::interrupt()).context("cannot catch Ctrl+C")?),
        None => None,
    };
    let me = config.nick.clone();
    let preferences_file = preferences_path(&state_path(&config));
    let (preferences, unreadable) = Preferences::load_or_explain(&preferences_file);
    let mut engine = Engine::start(config).context("cannot start the client")?;
    let color = !args.json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let printer = Printer::new(args.json, color);
    let commands = engine.commands();
    let mut line_mode = LineMode {
        outgoing: VecDeque::new(),
        printer: &printer,
        current: Conversation::Room(room),
        issued: 0,
        refused: 0,
        awaiting: VecDeque::new(),
        input_done: false,
        topics: HashMap::new(),
        me,
        preferences,
        preferences_file,
        search: None,
    };
    if let Some(why) = unreadable {
        printer.error(&why);
    }
    let mut lines = read_stdin_lines(raw_input.is_some());
    let mut outbox = engine.outbox_len();
    let mut queued = 0usize;
    let mut synced = false;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if line_mode.input_done {
            let deadline =
                *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(args.drain_timeout));
            let remaining = *outbox.borrow() + (line_mode.issued - queued);
            let unanswered = line_mode.awaiting.len();
            if remaining == 0 && synced && line_mode.outgoing.is_empty() && unanswered == 0 {
                // The engine sends the answer to the last line (accepted, refused) before the outbox count falls:
                // it may still wait here, and must be shown and counted before the exit code is decided.
                let mut late = false;
                while let Some(event) = engine.try_next_event() {
                    late = true;
                    if let Some(exit) = line_mode.show(event, &mut queued, &mut synced) {
                        return Ok(exit);
                    }
                }
                printer.flush();
                if late {
                    continue;
                }
                let stopped = stop(engine, &printer).await;
                return Ok(stopped.unwrap_or_else(|| line_mode.refused_exit(ExitCode::SUCCESS)));
            }
            if Instant::now() >= deadline {
                if remaining > 0 {
                    printer.error(&format!(
                        "{remaining} message(s) not acknowledged after {} s; they stay in the outbox and go out the next time you connect",
                        args.drain_timeout
                    ));
                } else if unanswered > 0 || !line_mode.outgoing.is_empty() {
                    let commands = unanswered + line_mode.outgoing.len();
                    printer.error(&format!("no answer to {commands} command(s) after {} s", args.drain_timeout));
                } else {
                    printer.error(&format!("could not catch up with the server in {} s", args.drain_timeout));
                }
                let _ = stop(engine, &printer).await;
                return Ok(line_mode.refused_exit(ExitCode::from(EXIT_UNACKNOWLEDGED)));
            }
        }
        tokio::select! {
            event = engine.next_event() => {
                // Events that are already waiting are printed together and written out in one go.
                let mut next = event;
                let mut taken = 0;
                while let Some(event) = next {
                    if let Some(exit) = line_mode.show(event, &mut queued, &mut synced) {
                        return Ok(exit);
                    }
                    taken += 1;
                    next = if taken < EVENT_BATCH { engine.try_next_event() } else { None };
                }
                printer.flush();
                if taken == 0 {
                    return Ok(ExitCode::from(EXIT_FATAL));
                }
            }
            // Stdin is read only while the engine keeps up, and the engine's events are always drained:
            // waiting on one side only could leave both waiting on each other.
            line = lines.recv(), if !line_mode.input_done && line_mode.outgoing.len() < MAX_OUTGOING => match line {
                Some(line) => line_mode.handle(&line),
                None => line_mode.input_done = true,
            },
            permit = commands.reserve(), if !line_mode.outgoing.is_empty() => match (permit, line_mode.outgoing.pop_front()) {
                (Ok(permit), Some(command)) => {
                    line_mode.awaiting.extend(Awaited::answer_to(&command));
                    permit.send(command);
                }
                _ => printer.error("the client engine has stopped"),
            },
            _ = outbox.changed() => {}
            _ = sleep_until_some(drain_deadline) => {}
            _ = interrupted(&mut interrupts) => {
                drop(raw_input);
                let waiting = *outbox.borrow();
                if waiting > 0 {
                    printer.notice(&format!("interrupted: {}", outbox_waiting(waiting)));
                }
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
            }
        }
    }
}

/// What quitting leaves behind, in the words every front end uses.
pub fn outbox_waiting(count: usize) -> String {
    match count {
        1 => "1 message waits to go out next time".to_owned(),
        n => format!("{n} messages wait to go out next time"),
    }
}

async fn interrupted(interrupts: &mut Option<Signal>) {
    match interrupts {
        Some(interrupts) => {
            interrupts.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Tells the engine to close, and shows what it still says while doing so. `Some` if it stopped for good
/// with a fatal error.
async fn stop(mut engine: Engine, printer: &Printer) -> Option<ExitCode> {
    let _ = engine.commands().send(Command::Quit).await;
    let mut code = None;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(event) = engine.next_event().await {
            printer.event(&event);
            printer.flush();
            if matches!(event, Event::Fatal { .. }) {
                code = Some(ExitCode::from(EXIT_FATAL));
            }
        }
    })
    .await;
    code
}

/// Reads stdin on a thread of its own (it blocks); `None` at the end of input. A terminal (`raw`) is read by
/// `terminal_input`, which has no line length limit.
fn read_stdin_lines(raw: bool) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(1024);
    std::thread::spawn(move || {
        if raw {
            return crate::terminal_input::read_lines(tx);
        }
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What answers a command line mode sent: the server answers a session's requests in order, each with its own
/// event or an error.
#[derive(Debug, PartialEq)]
enum Awaited {
    Users(String),
    History(Conversation),
    Joined(String),
    Left(String),
    /// A moderator's action is answered by the room's news of it (the one who did it is told too).
    RoomNews(RoomName),
    /// A page of the server's rooms: the answers come in the order asked, so any listing answers the oldest.
    Rooms,
    /// A page of a search's hits.
    Found(String),
    /// `/away` or `/back`: the server tells our own away message back.
    Away,
    /// `/whois NICK`: the nickname asked about, for "no such user" (the answer names it as the server spells it).
    Whois(Nick),
}

impl Awaited {
    fn answer_to(command: &Command) -> Option<Awaited> {
        match command {
            Command::Users { room } => Some(Awaited::Users(room.clone())),
            Command::History { conversation, .. } => Some(Awaited::History(conversation.clone())),
            Command::Join { room } => Some(Awaited::Joined(room.clone())),
            Command::Leave { room } => Some(Awaited::Left(room.clone())),
            Command::Moderate { room, .. } => Some(Awaited::RoomNews(room.clone())),
            Command::ListRooms { .. } => Some(Awaited::Rooms),
            Command::Search { query, .. } => Some(Awaited::Found(query.clone())),
            Command::SetAway(_) => Some(Awaited::Away),
            Command::Whois(nick) => Some(Awaited::Whois(nick.clone())),
            // Never sent by line mode: it cannot know what a person reads or is about to write.
            Command::Typing { .. } | Command::MarkRead { .. } => None,
            Command::Send { .. } | Command::TrustCertificate { .. } | Command::Quit => None,
        }
    }

    /// Whether `answer` (from [`Awaited::of_event`]) answers this.
    fn answered_by(&self, answer: &Awaited) -> bool {
        match (self, answer) {
            (Awaited::Whois(_), Awaited::Whois(_)) => true,
            _ => self == answer,
        }
    }

    /// What `event` answers, for a client logged in as `me`.
    fn of_event(event: &Event, me: &Nick) -> Option<Awaited> {
        match event {
            Event::Users { room, .. } => Some(Awaited::Users(room.to_string())),
            Event::History(page) => Some(Awaited::History(page.conversation.clone())),
            Event::Joined { info } => match &info.conversation {
                Conversation::Room(room) => Some(Awaited::Joined(room.to_string())),
                Conversation::Direct(_) => None,
            },
            Event::Left { room } => Some(Awaited::Left(room.to_string())),
            Event::RoomEvent { room, .. } => Some(Awaited::RoomNews(room.clone())),
            Event::Rooms { .. } => Some(Awaited::Rooms),
            Event::Found { query, .. } => Some(Awaited::Found(query.clone())),
            Event::Away { nick, .. } if nick == me => Some(Awaited::Away),
            Event::Whois(info) => Some(Awaited::Whois(info.nick.clone())),
            _ => None,
        }
    }
}

struct LineMode<'a> {
    /// Commands waiting for room in the engine's queue.
    outgoing: VecDeque<Command>,
    printer: &'a Printer,
    current: Conversation,
    /// Messages handed to the engine, to wait for all of them to reach the outbox.
    issued: usize,
    /// Input lines not carried out: messages refused here or by the server, mistyped commands, commands the
    /// server refused or never answered.
    refused: usize,
    /// Commands handed to the engine whose answers have not come yet, oldest first.
    awaiting: VecDeque<Awaited>,
    input_done: bool,
    /// Each room's topic as the server last said it, for `/topic`.
    topics: HashMap<RoomName, String>,
    me: Nick,
    /// Whom the user ignores (`/ignore`): their messages are not printed.
    preferences: Preferences,
    preferences_file: PathBuf,
    /// The last `/search`, for `/search` alone to show the next page.
    search: Option<LineSearch>,
}

/// A search line mode asked for: its words and where, where its next page starts (`None`: no older hits), how
/// many hits were printed (the next page's numbers go on from there), whether a page is on its way, and how many
/// more pages `/search` alone asked for meanwhile (a script types them without waiting for the answers).
struct LineSearch {
    query: String,
    conversation: Option<Conversation>,
    next: Option<String>,
    printed: usize,
    waiting: bool,
    further: usize,
}

impl LineMode<'_> {
    fn command(&mut self, command: Command) {
        self.outgoing.push_back(command);
    }

    fn refuse(&mut self, why: &str) {
        self.refused += 1;
        self.printer.error(why);
    }

    /// Prints an engine event and takes note of it (`queued`, `synced`: see `run`); the exit code when it ends the
    /// client.
    fn show(&mut self, event: Event, queued: &mut usize, synced: &mut bool) -> Option<ExitCode> {
        match &event {
            // The answer to the oldest request waiting, which may be a `/whois`: said in the words every client uses.
            Event::Error { code: Some(ErrorCode::UnknownNick), id: None, .. } => match self.awaiting.front() {
                Some(Awaited::Whois(nick)) => self.printer.event(&Event::Error {
                    code: Some(ErrorCode::UnknownNick),
                    message: no_such_user(nick),
                    id: None,
                }),
                _ => self.printer.event(&event),
            },
            Event::Message { message, own: false } if self.preferences.ignored.contains(&message.from) => {}
            Event::Found { query, conversation, hits, next } => self.found(query, conversation.as_ref(), hits, next),
            Event::History(page) if page.messages.iter().any(|m| self.preferences.ignored.contains(&m.from)) => {
                let mut shown = page.clone();
                shown.messages.retain(|m| !self.preferences.ignored.contains(&m.from));
                self.printer.event(&Event::History(shown));
            }
            _ => self.printer.event(&event),
        }
        self.answered(&event);
        match event {
            Event::Queued { .. } => *queued += 1,
            Event::RoomState(state) => drop(self.topics.insert(state.room, state.topic)),
            // After a login the server restates only the rooms whose state is not the defaults, and after a join
            // the room's: a topic cleared meanwhile must not be shown.
            Event::Connected { .. } => self.topics.clear(),
            Event::Joined { info } => {
                if let Conversation::Room(room) = info.conversation {
                    self.topics.remove(&room);
                }
            }
            Event::Synced => *synced = true,
            Event::Fatal { .. } => {
                self.printer.flush();
                return Some(ExitCode::from(EXIT_FATAL));
            }
            _ => {}
        }
        None
    }

    /// Takes note of what an engine event answers or refuses.
    fn answered(&mut self, event: &Event) {
        if let Some(answer) = Awaited::of_event(event, &self.me)
            && let Some(at) = self.awaiting.iter().position(|awaited| awaited.answered_by(&answer))
        {
            self.awaiting.remove(at);
            return;
        }
        match event {
            // A message refused for good (a retry after a store failure is not).
            Event::Error { id: Some(_), code, .. } if *code != Some(ErrorCode::StoreUnavailable) => self.refused += 1,
            // A refused request is answered by an error that names no message.
            Event::Error { id: None, .. } if !self.awaiting.is_empty() => {
                self.refused += 1;
                if let Some(Awaited::Found(_)) = self.awaiting.pop_front()
                    && let Some(search) = self.search.as_mut()
                {
                    // The search was refused: the pages asked for after it will not come either.
                    (search.waiting, search.further) = (false, 0);
                }
            }
            Event::Disconnected { .. } if !self.awaiting.is_empty() => {
                // The engine does not send requests again after a reconnect: their answers will never come.
                let lost = std::mem::take(&mut self.awaiting).len();
                self.refused += lost;
                self.printer.error(&format!("the connection dropped before {lost} command(s) were answered"));
            }
            _ => {}
        }
    }

    /// `code`, unless input lines were refused: then says how many, and exits with [`EXIT_REFUSED`] if nothing
    /// worse happened.
    fn refused_exit(&self, code: ExitCode) -> ExitCode {
        if self.refused == 0 {
            return code;
        }
        self.printer.error(&format!("{} input line(s) refused (see above): not everything was sent", self.refused));
        if code == ExitCode::SUCCESS { ExitCode::from(EXIT_REFUSED) } else { code }
    }

    fn send(&mut self, to: Conversation, kind: MessageKind, text: &str) {
        // A deletion's reason may be empty, and is checked by the server like a kick's.
        if !matches!(kind, MessageKind::Deletion { .. })
            && let Err(error) = validate_text(text)
        {
            return self.refuse(&format!("not sent: {error}"));
        }
        self.issued += 1;
        self.command(Command::Send { to, kind, text: text.to_owned() });
    }

    fn current_room(&self) -> String {
        match &self.current {
            Conversation::Room(room) => room.to_string(),
            Conversation::Direct(_) => RoomName::LOBBY.to_owned(),
        }
    }

    fn handle(&mut self, line: &str) {
        let typed = match command_line::parse(line.trim_end_matches('\r')) {
            Ok(Some(typed)) => typed,
            Ok(None) => return,
            Err(error) => return self.refuse(&error.to_string()),
        };
        match typed {
            Typed::Text(text) => self.send(self.current.clone(), MessageKind::Text, &text),
            Typed::Me(text) => self.send(self.current.clone(), MessageKind::Action, &text),
            // Line mode keeps no messages to find "the latest" in: scripts know seqs from the JSON lines.
            Typed::Edit { of: Some(of), text } => self.send(self.current.clone(), MessageKind::Edit { of }, &text),
            Typed::Edit { of: None, .. } => self.refuse("/edit #SEQ TEXT: line mode needs the message's number"),
            Typed::Delete { of: Target::Seq(of), reason } => {
                self.send(self.current.clone(), MessageKind::Deletion { of }, &reason)
            }
            Typed::Delete { .. } => self.refuse("/delete #SEQ [REASON]: line mode needs the message's number"),
            Typed::Reply { of: Some(of), text } => self.send(self.current.clone(), MessageKind::Reply { of }, &text),
            Typed::Reply { of: None, .. } => self.refuse("/reply #SEQ TEXT: line mode needs the message's number"),
            Typed::React { of: Some(of), emoji, take_back } => {
                self.send(self.current.clone(), MessageKind::Reaction { of, added: !take_back }, emoji)
            }
            Typed::React { of: None, .. } => self.refuse("/react #SEQ EMOJI: line mode needs the message's number"),
            Typed::Whois(nick) => self.command(Command::Whois(nick)),
            // The message is checked already; an empty one clears it (`/back`).
            Typed::Away(message) => self.command(Command::SetAway(message.unwrap_or_default())),
            Typed::Jump(_) => self.refuse("/jump: line mode has no window to scroll; look for the message above"),
            Typed::Goto(_) => {
                self.refuse("/goto: line mode has no window to open a result in; each result's line says where it is")
            }
            Typed::Search(Some(typed)) => {
                let conversation = match typed.scope {
                    SearchScope::Everywhere => None,
                    SearchScope::Here => Some(self.current.clone()),
                    SearchScope::In(conversation) => Some(conversation),
                };
                let query = typed.query;
                self.search = Some(LineSearch {
                    query: query.clone(),
                    conversation: conversation.clone(),
                    next: None,
                    printed: 0,
                    waiting: true,
                    further: 0,
                });
                self.command(Command::Search { query, conversation, before: None });
            }
            Typed::Search(None) => match &mut self.search {
                None => self.refuse("no search to go on with: /search WORDS finds messages"),
                Some(search) => {
                    search.further += 1;
                    if !search.waiting {
                        self.search_further();
                    }
                }
            },
            Typed::Join(room) => {
                self.current = Conversation::Room(room.clone());
                self.command(Command::Join { room: room.to_string() });
            }
            Typed::Leave(room) => {
                let room = room.map_or_else(|| self.current_room(), |room| room.to_string());
                if Conversation::parse(&room).is_ok_and(|c| c == self.current) {
                    self.current = Conversation::Room(RoomName::lobby());
                }
                self.command(Command::Leave { room });
            }
            Typed::Msg { to, text: Some(text) } => self.send(Conversation::Direct(to), MessageKind::Text, &text),
            Typed::Msg { text: None, .. } => self.refuse("/msg NICK TEXT: the text is missing"),
            Typed::Users(room) => {
                let room = room.map_or_else(|| self.current_room(), |room| room.to_string());
                self.command(Command::Users { room });
            }
            Typed::List(after) => self.command(Command::ListRooms { after }),
            Typed::History(limit) => {
                let conversation = self.current.clone();
                self.command(Command::History { conversation, before: None, limit: limit.unwrap_or(20) });
            }
            Typed::ShowTopic => match &self.current {
                Conversation::Room(room) => {
                    let text = match self.topics.get(room).filter(|topic| !topic.is_empty()) {
                        Some(topic) => format!("the topic of #{room}: {topic}"),
                        None => format!("#{room} has no topic"),
                    };
                    self.printer.notice(&text);
                }
                Conversation::Direct(_) => self.refuse("/topic works in a room; this is a direct conversation"),
            },
            Typed::Moderate(action) => match &self.current {
                Conversation::Room(room) => self.command(Command::Moderate { room: room.clone(), action }),
                Conversation::Direct(_) => {
                    self.refuse("moderation commands work in a room; this is a direct conversation")
                }
            },
            Typed::Quit => self.input_done = true,
            Typed::Help => command_line::help_lines().for_each(|line| self.printer.notice(&line)),
            Typed::Ignore(None) => self.printer.notice(&self.preferences.list_ignored()),
            Typed::Ignore(Some(nick)) => {
                let outcome = self.preferences.ignore(nick, &self.me);
                self.told(outcome);
            }
            Typed::Unignore(nick) => {
                let outcome = self.preferences.unignore(&nick);
                self.told(outcome);
            }
            Typed::Silence { .. } | Typed::Highlight(_) | Typed::Unhighlight(_) => self.refuse(
                "line mode does not alert; /silence and /highlight are for the full-screen, desktop and browser clients",
            ),
            Typed::Receipts(_) | Typed::TypingNotices(_) => self.refuse(
                "line mode sends no read markers or typing notices; /receipts and /typing are for the full-screen, \
                 desktop and browser clients",
            ),
        }
    }

    /// Prints a search's answer, its hits numbered on from the pages before it (an ignored nick's left out), and
    /// asks for the next page if `/search` alone asked for it meanwhile. A page the server ended before it found
    /// anything (it looks at a bounded number of matches) is not printed: the next one is asked at once.
    fn found(&mut self, query: &str, conversation: Option<&Conversation>, hits: &[Message], next: &Option<String>) {
        if let (true, Some(before), Some(search)) = (hits.is_empty(), next, self.search.as_mut())
            && search.query == query
            && search.conversation.as_ref() == conversation
        {
            search.next = Some(before.clone());
            search.further += 1;
            search.waiting = false;
            return self.search_further();
        }
        let shown: Vec<Message> =
            hits.iter().filter(|m| !self.preferences.ignored.contains(&m.from)).cloned().collect();
        let ours = self.search.as_mut().filter(|s| s.query == query && s.conversation.as_ref() == conversation);
        let first = match ours {
            Some(search) => {
                search.next.clone_from(next);
                search.waiting = false;
                search.printed += shown.len();
                search.printed - shown.len() + 1
            }
            None => 1,
        };
        self.printer.found(query, conversation, &shown, next.is_some(), first);
        if self.search.as_ref().is_some_and(|search| search.further > 0 && !search.waiting) {
            self.search_further();
        }
    }

    /// Asks for the page after the last one received, as a `/search` alone asked; or says there is none.
    fn search_further(&mut self) {
        let Some(search) = self.search.as_mut() else { return };
        search.further = search.further.saturating_sub(1);
        match search.next.clone() {
            None => {
                let said = format!("nothing more to find for “{}”", search.query);
                self.printer.notice(&said);
            }
            Some(before) => {
                search.waiting = true;
                let (query, conversation) = (search.query.clone(), search.conversation.clone());
                self.command(Command::Search { query, conversation, before: Some(before) });
            }
        }
    }

    /// Says what `/ignore` or `/unignore` did, and keeps the change.
    fn told(&mut self, outcome: Outcome) {
        if outcome.refused {
            return self.refuse(&outcome.said);
        }
        if outcome.changed
            && let Err(error) = self.preferences.save(&self.preferences_file)
        {
            return self.refuse(&format!("not saved: {error}"));
        }
        self.printer.notice(&outcome.said);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_mode(printer: &Printer) -> LineMode<'_> {
        LineMode {
            outgoing: VecDeque::new(),
            printer,
            current: Conversation::Room(RoomName::lobby()),
            issued: 0,
            refused: 0,
            awaiting: VecDeque::new(),
            input_done: false,
            topics: HashMap::new(),
            me: Nick::parse("ana").expect("valid"),
            preferences: Preferences::default(),
            preferences_file: PathBuf::from("/nonexistent/preferences.toml"),
            search: None,
        }
    }

    #[test]
    fn a_topic_is_forgotten_at_a_login_or_a_join_until_the_server_restates_it() {
        use palomar_proto::{ConversationInfo, Role, RoomState};

        let printer = Printer::new(true, false);
        let mut line_mode = line_mode(&printer);
        let garden = RoomName::parse("garden").expect("valid");
        let state = RoomState {
            room: garden.clone(),
            topic: "seeds".into(),
            invite_only: false,
            moderated: false,
            role: Role::Member,
            muted: false,
            operator: false,
        };
        let (mut queued, mut synced) = (0, false);
        line_mode.show(Event::RoomState(state.clone()), &mut queued, &mut synced);
        assert_eq!(line_mode.topics.get(&garden).map(String::as_str), Some("seeds"));
        let connected = Event::Connected {
            server: "127.0.0.1:5555".into(),
            nick: Nick::parse("ana").expect("valid"),
            registered: false,
            conversations: Vec::new(),
            version: palomar_proto::PROTOCOL_VERSION,
        };
        line_mode.show(connected, &mut queued, &mut synced);
        assert!(line_mode.topics.is_empty(), "a login restates only what is not the defaults");
        line_mode.show(Event::RoomState(state), &mut queued, &mut synced);
        let info = ConversationInfo { conversation: Conversation::Room(garden.clone()), latest_seq: 0, first_seq: 1 };
        line_mode.show(Event::Joined { info }, &mut queued, &mut synced);
        assert!(!line_mode.topics.contains_key(&garden), "its state follows the join");
    }

    #[test]
    fn actions_edits_and_deletions_go_out_by_number_and_the_latest_is_refused_with_how_to_say_it() {
        let printer = Printer::new(true, false);
        let mut line_mode = line_mode(&printer);
        for line in ["/me waves", "/edit #41 fixed", "/delete #41", "/delete #42 spam", "/edit fixed", "/delete bob"] {
            line_mode.handle(line);
        }
        let sent: Vec<_> = std::mem::take(&mut line_mode.outgoing)
            .into_iter()
            .map(|command| match command {
                Command::Send { to, kind, text } if to == Conversation::Room(RoomName::lobby()) => (kind, text),
                other => panic!("a post expected, got {other:?}"),
            })
            .collect();
        assert_eq!(
            sent,
            [
                (MessageKind::Action, "waves".to_owned()),
                (MessageKind::Edit { of: 41 }, "fixed".to_owned()),
                (MessageKind::Deletion { of: 41 }, String::new()),
                (MessageKind::Deletion { of: 42 }, "spam".to_owned()),
            ]
        );
        assert_eq!((line_mode.issued, line_mode.refused), (4, 2));
    }

    #[test]
    fn away_back_and_whois_go_out_and_are_answered_by_our_away_and_the_whois() {
        use palomar_proto::WhoisInfo;

        let printer = Printer::new(true, false);
        let mut line_mode = line_mode(&printer);
        let nick = |name: &str| Nick::parse(name).expect("valid");
        for line in ["/away at lunch", "/back", "/whois @bob", "/whois nobody", "/away \u{7}"] {
            line_mode.handle(line);
        }
        assert_eq!(line_mode.refused, 1, "a control character is refused before sending");
        let sent = std::mem::take(&mut line_mode.outgoing);
        assert!(
            matches!(&sent.iter().collect::<Vec<_>>()[..], [
                Command::SetAway(away), Command::SetAway(back), Command::Whois(bob), Command::Whois(_)
            ] if away == "at lunch" && back.is_empty() && *bob == nick("bob")),
            "{sent:?}"
        );
        for command in &sent {
            line_mode.awaiting.extend(Awaited::answer_to(command));
        }
        line_mode.answered(&Event::Away { nick: nick("bob"), message: Some("x".into()) });
        assert_eq!(line_mode.awaiting.len(), 4, "another's away answers nothing");
        line_mode.answered(&Event::Away { nick: nick("ana"), message: Some("at lunch".into()) });
        line_mode.answered(&Event::Away { nick: nick("ana"), message: None });
        line_mode.answered(&Event::Whois(WhoisInfo {
            nick: nick("Bob"),
            registered_ms: 1,
            online: false,
            online_since_ms: None,
            idle_ms: None,
            away: None,
            rooms: Vec::new(),
        }));
        assert_eq!(line_mode.awaiting, [Awaited::Whois(nick("nobody"))]);
        line_mode.answered(&Event::Error { code: Some(ErrorCode::UnknownNick), message: "no".into(), id: None });
        assert!(line_mode.awaiting.is_empty());
        assert_eq!(line_mode.refused, 2, "a /whois of nobody is a refused line");
    }

    #[test]
    fn a_listing_answers_slash_list() {
        let printer = Printer::new(true, false);
        let mut line_mode = line_mode(&printer);
        line_mode.handle("/list");
        line_mode.handle("/list #garden");
        let garden = RoomName::parse("garden").expect("valid");
        for command in std::mem::take(&mut line_mode.outgoing) {
            line_mode.awaiting.extend(Awaited::answer_to(&command));
        }
        assert_eq!(line_mode.awaiting, [Awaited::Rooms, Awaited::Rooms]);
        line_mode.answered(&Event::Rooms { rooms: Vec::new(), more: true });
        assert_eq!(line_mode.awaiting, [Awaited::Rooms], "one listing answers one /list");
        line_mode.answered(&Event::Error { code: Some(ErrorCode::InvalidName), message: "bad".into(), id: None });
        assert!(line_mode.awaiting.is_empty());
        assert_eq!(line_mode.refused, 1, "a refused listing counts as a refused line");
        assert!(
            matches!(Awaited::answer_to(&Command::ListRooms { after: Some(garden) }), Some(Awaited::Rooms)),
            "the page asked for does not matter"
        );
    }
}
