//! `palomar chat` on a terminal: the full-screen client. [`app`] holds the state and turns keys and engine
//! events into engine commands; [`view`] draws it; [`input`] is the line editor. This module only owns the
//! terminal: raw mode, the alternate screen, and the loop that feeds the app.

pub mod app;
pub mod input;
pub mod view;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, EnableBracketedPaste, EnableFocusChange, Event as TermEvent, EventStream,
};
use futures::StreamExt;
use palomar_client::engine::state_path;
use palomar_client::preferences::{Preferences, preferences_path};
use palomar_client::{Command, Engine, EngineConfig};
use tokio::sync::mpsc::error::TrySendError;

use app::{Action, App};

/// Engine events handled before the screen is drawn again, so a burst does not redraw for each message.
const EVENTS_PER_DRAW: usize = 512;

/// How the full-screen client ended.
enum Ended {
    /// With the messages still in the outbox, told once the screen is back to the shell's.
    Exit(ExitCode, usize),
    /// The first login was refused for its password, which can be asked again.
    PasswordRefused(String),
}

/// Runs the full-screen client until the user quits. With `ask_again` (the password was typed, not read from a
/// file or the environment), a refused password is asked for again instead of ending it.
pub async fn run(mut config: EngineConfig, ask_again: bool) -> anyhow::Result<ExitCode> {
    loop {
        let mut app = App::new(config.nick.clone(), config.server.name().to_owned(), *chrono::Local::now().offset());
        if let Some(room) = &config.join {
            app.model.start_in(palomar_proto::Conversation::Room(room.clone()));
        }
        let preferences_file = preferences_path(&state_path(&config));
        let (preferences, unreadable) = Preferences::load_or_explain(&preferences_file);
        app.model.set_preferences(preferences);
        if let Some(why) = unreadable {
            app.model.notice_here(why, true);
        }
        let engine = Engine::start(config.clone())?;
        let mut terminal = ratatui::init();
        // Focus reports say when the terminal is not being looked at: no read marker is sent then.
        let _ = crossterm::execute!(std::io::stdout(), EnableBracketedPaste, EnableFocusChange);
        let result = event_loop(app, engine, &mut terminal, ask_again, &preferences_file).await;
        let _ = crossterm::execute!(std::io::stdout(), DisableFocusChange, DisableBracketedPaste);
        ratatui::restore();
        match result? {
            Ended::Exit(code, waiting) => {
                if waiting > 0 {
                    println!("{}", crate::chat::outbox_waiting(waiting));
                }
                return Ok(code);
            }
            Ended::PasswordRefused(message) => {
                eprintln!("{message}");
                let prompt = format!("password for {} (Ctrl-C to give up): ", config.nick);
                config.password = crate::secrets::ask(&prompt)?.into();
            }
        }
    }
}

async fn event_loop(
    mut app: App,
    mut engine: Engine,
    terminal: &mut ratatui::DefaultTerminal,
    ask_again: bool,
    preferences_file: &Path,
) -> anyhow::Result<Ended> {
    let commands = engine.commands();
    let mut outbox = engine.outbox_len();
    let mut keys = EventStream::new();
    let mut ticker = tokio::time::interval(app::TICK);
    loop {
        app.model.pending = *outbox.borrow_and_update();
        app.model.tick(Instant::now());
        terminal.draw(|frame| view::render(&app, frame))?;
        let mut actions = tokio::select! {
            event = engine.next_event() => match event {
                Some(palomar_client::Event::Fatal { message, password_refused: true, .. })
                    if ask_again && !app.model.connected_once =>
                {
                    return Ok(Ended::PasswordRefused(message));
                }
                Some(event) => {
                    let mut actions = app.on_engine(event);
                    for _ in 0..EVENTS_PER_DRAW {
                        match engine.try_next_event() {
                            Some(event) => actions.extend(app.on_engine(event)),
                            None => break,
                        }
                    }
                    actions
                }
                // The engine stopped: keep showing why until a key is pressed.
                None if app.model.fatal.is_some() => wait_for_key(&mut keys).await,
                None => return Ok(Ended::Exit(ExitCode::SUCCESS, *outbox.borrow())),
            },
            key = keys.next() => match key {
                Some(Ok(event)) => app.on_terminal(event),
                Some(Err(error)) => return Err(error.into()),
                None => vec![Action::Quit],
            },
            _ = ticker.tick() => Vec::new(),
            _ = outbox.changed() => Vec::new(),
        };
        // What is on screen now is read when the terminal has focus and the view is at the bottom.
        actions.extend(app.read_tick());
        for action in actions {
            match action {
                Action::Engine(command) => match commands.try_send(command) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        app.on_engine(palomar_client::Event::Error {
                            code: None,
                            message: "the client is busy; try again in a moment".into(),
                            id: None,
                        });
                    }
                    Err(TrySendError::Closed(_)) => {}
                },
                Action::SavePreferences => {
                    if let Err(error) = app.model.preferences().save(preferences_file) {
                        app.model.notice_here(format!("not saved: {error}"), true);
                    }
                }
                Action::Alert(_) => {
                    let mut stdout = std::io::stdout();
                    let _ = stdout.write_all(b"\x07");
                    let _ = stdout.flush();
                }
                Action::Quit => {
                    let _ = commands.try_send(Command::Quit);
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while engine.next_event().await.is_some() {}
                    })
                    .await;
                    let code = if app.model.fatal.is_some() { ExitCode::from(2) } else { ExitCode::SUCCESS };
                    return Ok(Ended::Exit(code, *outbox.borrow()));
                }
            }
        }
    }
}

async fn wait_for_key(keys: &mut EventStream) -> Vec<Action> {
    while let Some(Ok(event)) = keys.next().await {
        if matches!(event, TermEvent::Key(_)) {
            break;
        }
    }
    vec![Action::Quit]
}

#[cfg(test)]
mod tests;
