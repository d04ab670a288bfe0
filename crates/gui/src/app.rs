//! [`PalomarApp`], the whole window: the sign-in screen until the first connection is made, then the chat
//! window. Each frame it moves the engine's events into the [`ChatModel`], hands what the model asks for
//! back to the engine, and draws whichever screen is current. A sign-in that cannot connect (unreachable
//! server, wrong password, changed or refused certificate) stops its engine and says why on the form; one the
//! server refuses for now (a lockout, a busy server) counts down on the form to the next attempt, which can be
//! cancelled; once signed in, a lost connection is retried for ever and shown as a banner. An alert that comes
//! while the window is not focused asks for attention and goes to the [`Notifier`].

use std::path::PathBuf;
use std::time::Instant;

use chrono::FixedOffset;
use palomar_client::backoff::Backoff;
use palomar_client::engine::state_path;
use palomar_client::model::{Action, ChatModel, TICK};
use palomar_client::preferences::{Preferences, preferences_path};
use palomar_client::{EngineConfig, Event, Trust};

use crate::certificate::{self, CertificateChange};
use crate::chat_window::{self, ChatWindow};
use crate::connection::Connection;
use crate::notification::Notifier;
use crate::settings::Settings;
use crate::sign_in::{self, Problem, Request, SignInForm, Submit};
use crate::theme::{self, ThemeChoice};

/// The smallest window the layout is made for: a phone's width, and room for the messages between the bars.
pub const MIN_WIDTH: f32 = 360.0;
pub const MIN_HEIGHT: f32 = 420.0;

/// How the window is set up; `main` fills it from the command line, tests from temp directories.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pins, outboxes and cursors: the same directory the terminal clients use.
    pub home: PathBuf,
    /// Where the last server, nickname and theme are remembered; `None` remembers nothing.
    pub settings_path: Option<PathBuf>,
    /// Prefill the form with these instead of the remembered ones.
    pub server: Option<String>,
    pub nick: Option<String>,
    pub backoff: Backoff,
    /// The time zone messages are shown in.
    pub offset: FixedOffset,
    /// Shows an alert that comes while the window is not focused.
    pub notifier: Notifier,
}

/// One sign-in: its engine and what it has shown so far.
struct Session {
    connection: Connection,
    model: ChatModel,
    /// Where the model's preferences (silenced conversations, highlight words, ignored nicknames) are kept.
    preferences_file: PathBuf,
    /// Before the first connection: why the server refused the login for now, while waiting to try again.
    refused_for_now: Option<String>,
}

pub struct PalomarApp {
    runtime: tokio::runtime::Handle,
    options: Options,
    settings: Settings,
    form: SignInForm,
    session: Option<Session>,
    window: ChatWindow,
    /// The window title last set, to set it only when it changes.
    title: String,
    /// The text sizes and fonts were set up in the context.
    styled: bool,
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl PalomarApp {
    /// `runtime` runs the engine; it must outlive the app.
    pub fn new(runtime: tokio::runtime::Handle, options: Options) -> PalomarApp {
        let settings = options.settings_path.as_deref().map(Settings::load).unwrap_or_default();
        let form = SignInForm::new(
            options.server.clone().or_else(|| settings.server.clone()),
            options.nick.clone().or_else(|| settings.nick.clone()),
        );
        PalomarApp {
            runtime,
            options,
            settings,
            form,
            session: None,
            window: ChatWindow::default(),
            title: String::new(),
            styled: false,
        }
    }

    /// The sign-in form (tests fill it in through the window, and read its problem here).
    pub fn form(&self) -> &SignInForm {
        &self.form
    }

    /// What the chat window shows, once a sign-in was started.
    pub fn model(&self) -> Option<&ChatModel> {
        self.session.as_ref().map(|session| &session.model)
    }

    /// Signed in: the chat window is shown.
    pub fn signed_in(&self) -> bool {
        self.session.as_ref().is_some_and(|session| session.model.connected_once)
    }

    pub fn theme(&self) -> ThemeChoice {
        self.settings.theme
    }

    /// Draws the window; the entry point for eframe and for tests.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.styled {
            self.styled = true;
            theme::set_up(&ctx);
        }
        self.pump(&ctx);
        self.set_title(&ctx);
        match &mut self.session {
            Some(session) if session.model.connected_once => {
                session.model.tick(Instant::now());
                if session.model.retry_in().is_some() {
                    ctx.request_repaint_after(TICK);
                }
                let outcome = chat_window::show(
                    ui,
                    &mut self.window,
                    &mut session.model,
                    self.options.offset,
                    &mut self.settings.theme,
                );
                self.act(&ctx, outcome.actions);
                if outcome.theme_changed {
                    self.save_settings();
                }
                if outcome.sign_out {
                    self.sign_out();
                }
            }
            _ => self.sign_in_screen(ui, &ctx),
        }
    }

    fn sign_in_screen(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let busy = self.session.as_mut().map(|session| {
            session.model.tick(Instant::now());
            match (&session.model.prompt, session.model.retry_in(), &session.refused_for_now) {
                (Some(_), ..) => format!("Checking the certificate of {}…", session.model.server),
                (None, Some((seconds, attempt)), Some(reason)) => {
                    ctx.request_repaint_after(TICK);
                    format!("{}. Trying again in {seconds} s (attempt {attempt})…", capitalised(reason))
                }
                (None, ..) => format!("Connecting to {}…", session.model.node),
            }
        });
        let mut submit = None;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
                if crate::theme::picker(ui, &mut self.settings.theme) {
                    self.save_settings();
                }
            });
            submit = sign_in::show(ui, &mut self.form, busy.as_deref(), &self.options.home);
        });
        match submit {
            Some(Submit::SignIn(request)) => self.start(request, ctx),
            Some(Submit::Cancel) => {
                // Dropping the connection stops the engine; the reason it was waiting stays on the form.
                let refused = self.session.take().and_then(|session| session.refused_for_now);
                self.form.problem = refused.map(|reason| Problem::Error(format!("{}.", capitalised(&reason))));
            }
            Some(Submit::TrustAndSignIn(request, presented)) => {
                let pins = palomar_client::KnownHosts::new(self.options.home.join("known_hosts"));
                match pins.set(request.server.name(), presented) {
                    Ok(()) => self.start(request, ctx),
                    Err(error) => {
                        let problem = format!("Cannot save the new fingerprint in {}: {error}.", pins.path().display());
                        self.form.problem = Some(Problem::Error(problem));
                    }
                }
            }
            None => {}
        }
        let answer = self
            .session
            .as_ref()
            .and_then(|session| session.model.prompt.as_ref())
            .and_then(|prompt| certificate::prompt(ctx, prompt));
        if let (Some(accept), Some(session)) = (answer, self.session.as_mut()) {
            let action = session.model.answer_certificate(accept);
            self.act(ctx, vec![action]);
        }
    }

    /// Starts an engine for this sign-in.
    fn start(&mut self, request: Request, ctx: &egui::Context) {
        let Request { server, nick, password, .. } = request;
        let config = EngineConfig {
            server: server.clone(),
            nick: nick.clone(),
            password: password.into(),
            home: self.options.home.clone(),
            trust: Trust::FirstUse,
            join: None,
            confirm_new_server: true,
            backoff: self.options.backoff,
        };
        let repaint = {
            let ctx = ctx.clone();
            move || ctx.request_repaint()
        };
        let preferences_file = preferences_path(&state_path(&config));
        match Connection::start(&self.runtime, config, repaint) {
            Ok(connection) => {
                let mut model = ChatModel::new(nick, server.name().to_owned());
                model.help_keys =
                    &["Click a member to message them; scroll to the top for older messages; Ctrl+F searches; \
                     Ctrl+Shift+L lists the rooms."];
                // The results and the rooms' listing have windows of their own; hit times are in the window's
                // time zone.
                model.search_as_notices = false;
                model.rooms_as_notices = false;
                model.offset = self.options.offset;
                let (preferences, unreadable) = Preferences::load_or_explain(&preferences_file);
                model.set_preferences(preferences);
                if let Some(why) = unreadable {
                    model.notice_here(why, true);
                }
                self.session = Some(Session { connection, model, preferences_file, refused_for_now: None });
                self.window = ChatWindow::default();
            }
            Err(error) => self.form.problem = Some(Problem::Error(capitalised(&error.to_string()))),
        }
    }

    fn sign_out(&mut self) {
        // Dropping the connection tells the engine to quit; unsent messages stay in the outbox.
        let session = self.session.take();
        self.form.password.clear();
        self.form.confirm.clear();
        // A changed certificate stopped the engine: the form offers what the banner could not, trusting it.
        self.form.problem = session.and_then(|session| match session.model.fatal {
            Some(message) if session.model.certificate_changed => {
                Some(Problem::CertificateChanged(CertificateChange::new(session.model.server, message)))
            }
            _ => None,
        });
    }

    /// Moves the engine's events into the model. Before the first connection, giving up is the sign-in
    /// screen's business: the first failure ends the attempt and is shown on the form, except a refusal for
    /// now, which the engine waits out.
    fn pump(&mut self, ctx: &egui::Context) {
        let mut actions = Vec::new();
        let mut failed = None;
        let mut connected = false;
        if let Some(session) = self.session.as_mut() {
            while let Some(event) = session.connection.try_event() {
                if !session.model.connected_once {
                    match &event {
                        Event::Disconnected { reason, refused_for_now: true, .. } => {
                            // The form counts down itself: the server's "try again in N s" would stand still.
                            let reason = reason.rsplit_once("; try again in ").map_or(reason.as_str(), |(why, _)| why);
                            session.refused_for_now = Some(reason.to_owned());
                        }
                        Event::Disconnected { reason, .. } => {
                            failed = Some(Problem::Error(format!("{}.", capitalised(reason))));
                            break;
                        }
                        Event::Fatal { message, certificate_changed: true, .. } => {
                            let change = CertificateChange::new(session.model.server.clone(), message.clone());
                            failed = Some(Problem::CertificateChanged(change));
                            break;
                        }
                        Event::Fatal { message, password_refused: true, .. } => {
                            let message = capitalised(message.trim_end_matches('.'));
                            failed = Some(Problem::PasswordRefused(format!("{message}. Type the password again.")));
                            break;
                        }
                        Event::Fatal { message, .. } => {
                            failed = Some(Problem::Error(format!("{}.", capitalised(message.trim_end_matches('.')))));
                            break;
                        }
                        Event::Connected { .. } => connected = true,
                        _ => {}
                    }
                }
                actions.extend(session.model.on_engine(event));
            }
            session.model.pending = session.connection.outbox_len();
        }
        if let Some(problem) = failed {
            self.session = None;
            match problem {
                Problem::PasswordRefused(message) => self.form.password_refused(&self.options.home, message),
                problem => self.form.problem = Some(problem),
            }
            return;
        }
        if connected {
            self.form.account_exists(&self.options.home);
            self.form.password.clear();
            self.form.confirm.clear();
            self.settings.server = Some(self.form.server.trim().to_owned());
            self.settings.nick = self.session.as_ref().map(|session| session.model.me.to_string());
            self.save_settings();
        }
        self.act(ctx, actions);
    }

    /// Does what the model asked for.
    fn act(&mut self, ctx: &egui::Context, actions: Vec<Action>) {
        let Some(session) = self.session.as_mut() else { return };
        for action in actions {
            match action {
                Action::Engine(command) => {
                    if let Err(error) = session.connection.send(command) {
                        session.model.notice_here(error.to_string(), true);
                    }
                }
                Action::SavePreferences => {
                    if let Err(error) = session.model.preferences().save(&session.preferences_file) {
                        session.model.notice_here(format!("not saved: {error}"), true);
                    }
                }
                Action::Alert(alert) => {
                    if !ctx.input(|i| i.viewport().focused.unwrap_or(true)) {
                        ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                            egui::UserAttentionType::Informational,
                        ));
                        self.options.notifier.show(&alert);
                    }
                }
                Action::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            }
        }
    }

    fn save_settings(&self) {
        if let Some(path) = &self.options.settings_path
            && let Err(error) = self.settings.save(path)
        {
            tracing::warn!(path = %path.display(), %error, "cannot save the settings");
        }
    }

    fn set_title(&mut self, ctx: &egui::Context) {
        let title = match &self.session {
            Some(session) if session.model.connected_once => {
                let unread: usize = session.model.convs.iter().map(|conv| conv.unread).sum();
                let count = if unread > 0 { format!("({unread}) ") } else { String::new() };
                format!("{count}{} @ {} — Palomar", session.model.me, session.model.server)
            }
            _ => "Palomar".to_owned(),
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }
}

impl eframe::App for PalomarApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        PalomarApp::ui(self, ui);
    }
}
