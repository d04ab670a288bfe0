//! The sign-in screen: server address (or the addresses of several nodes of one chat), nickname and
//! password, checked before anything is sent, and what went wrong last time (an address that cannot be one,
//! an unreachable server or one that is not a Palomar server, a wrong password, a changed certificate). The
//! first sign-in with a nickname from this computer asks for the password twice, since with a free nickname
//! it registers it: a typo must not become the account's password. The screen scrolls, so nothing is cut
//! off in a small window.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use egui::{Align, Button, Key, Label, Layout, RichText, ScrollArea, TextEdit};
use palomar_client::engine::account_state_path;
use palomar_client::server_address::{self, ServerAddresses, parse_server};
use palomar_proto::Nick;
use palomar_transport::Fingerprint;

use crate::certificate::{self, CertificateChange};

#[derive(Debug, Default)]
pub struct SignInForm {
    pub server: String,
    pub nick: String,
    /// Held only while the form is shown and handed to the engine; never saved.
    pub password: String,
    /// The password again, at a first sign-in.
    pub confirm: String,
    pub problem: Option<Problem>,
    /// The first empty field got the keyboard focus already.
    focused: bool,
    /// The user asked to trust a changed certificate: the confirmation is shown.
    confirming_trust: bool,
    /// Account state files that did not exist when a first sign-in was submitted: the attempt creates them,
    /// but until a sign-in succeeds the account may not exist on the server, so the password is still asked
    /// twice.
    first_sign_ins: HashSet<PathBuf>,
}

/// Why the last attempt did not get in.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Something to fix in the form, or a refusal (unreachable server, not a Palomar server, locked out).
    Error(String),
    /// The password was refused: typed again.
    PasswordRefused(String),
    /// The server presented another certificate than the pinned one.
    CertificateChanged(CertificateChange),
}

/// A checked request to sign in.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The chat's servers, each `host:port`; the first names the chat for the pins and the account's state.
    pub server: ServerAddresses,
    pub nick: Nick,
    pub password: String,
    /// The first sign-in with this nickname from this computer.
    pub first: bool,
}

/// What the user asked for on the form.
#[derive(Debug, Clone, PartialEq)]
pub enum Submit {
    SignIn(Request),
    /// Compared and confirmed: pin this fingerprint for the request's server, then sign in.
    TrustAndSignIn(Request, Fingerprint),
    /// Stop the attempt under way.
    Cancel,
}

impl SignInForm {
    pub fn new(server: Option<String>, nick: Option<String>) -> SignInForm {
        SignInForm {
            server: server.unwrap_or_else(|| format!("127.0.0.1:{}", server_address::DEFAULT_PORT)),
            nick: nick.unwrap_or_default(),
            ..SignInForm::default()
        }
    }

    /// The account's state file under `home`, if the form names a server and a nickname.
    fn state_path(&self, home: &Path) -> Option<PathBuf> {
        let server = parse_server(&self.server).ok()?;
        let nick = Nick::parse(&self.nick).ok()?;
        Some(account_state_path(home, server.name(), &nick))
    }

    /// No sign-in with this nickname on this server has succeeded from `home` yet.
    pub fn is_first_sign_in(&self, home: &Path) -> bool {
        self.state_path(home).is_some_and(|path| !path.exists() || self.first_sign_ins.contains(&path))
    }

    /// A sign-in succeeded, or the password was refused (so the account exists): not a first one any more.
    pub fn account_exists(&mut self, home: &Path) {
        if let Some(path) = self.state_path(home) {
            self.first_sign_ins.remove(&path);
        }
    }

    /// The password was refused: the fields are emptied to type it again, and the reason shown.
    pub fn password_refused(&mut self, home: &Path, message: String) {
        self.account_exists(home);
        self.password.clear();
        self.confirm.clear();
        self.focused = false;
        self.problem = Some(Problem::PasswordRefused(message));
    }

    /// The form as a request, or what to fix. `first`: the password must be typed twice.
    pub fn check(&self, first: bool) -> Result<Request, String> {
        let server = parse_server(&self.server).map_err(|error| format!("Server: {error}."))?;
        let nick = Nick::parse(&self.nick).map_err(|error| format!("Nickname: {error}."))?;
        if self.password.is_empty() {
            return Err("Enter your password (the first sign-in with a new nickname sets it).".into());
        }
        if first && self.confirm != self.password {
            return Err("The two passwords differ: type the same password in both fields.".into());
        }
        Ok(Request { server, nick, password: self.password.clone(), first })
    }
}

/// Draws the form. `busy` says what is happening while an attempt runs (the form is locked meanwhile, and a
/// Cancel button stops the attempt);
/// `home` is where the client keeps its state, to tell a first sign-in. Returns what the user asked for,
/// once the form is complete.
pub fn show(ui: &mut egui::Ui, form: &mut SignInForm, busy: Option<&str>, home: &Path) -> Option<Submit> {
    let mut submitted = false;
    let mut cancelled = false;
    let mut trust = false;
    let first = form.is_first_sign_in(home);
    ScrollArea::vertical().id_salt("sign-in").auto_shrink([false, false]).show(ui, |ui| {
        ui.vertical_centered(|ui| {
            ui.add_space((ui.available_height() * 0.12).min(60.0));
            ui.heading(RichText::new("Palomar").size(32.0).strong());
            ui.add(Label::new(RichText::new("Secure group chat that never loses a message").weak()).wrap());
            ui.add_space(24.0);
        });
        let width = (ui.available_width() - 16.0).clamp(0.0, 420.0);
        let margin = ((ui.available_width() - width) / 2.0).max(0.0);
        ui.horizontal(|ui| {
            ui.add_space(margin);
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.add_enabled_ui(busy.is_none(), |ui| {
                    submitted = fields(ui, form, first);
                });
                ui.add_space(10.0);
                if let Some(busy) = busy {
                    ui.horizontal_wrapped(|ui| {
                        ui.spinner();
                        ui.label(busy);
                    });
                    cancelled = ui.button("Cancel sign-in").clicked();
                }
                match &form.problem {
                    Some(Problem::Error(message) | Problem::PasswordRefused(message)) => {
                        ui.add(Label::new(RichText::new(message).color(ui.visuals().error_fg_color)).wrap());
                    }
                    Some(Problem::CertificateChanged(change)) => {
                        trust = certificate::changed_warning(ui, change, busy.is_none());
                    }
                    None => {}
                }
                if busy.is_none() {
                    ui.add_space(10.0);
                    let hint = if first {
                        "First sign-in with this nickname from this computer: if the nickname is free, this creates \
                         the account with this password."
                    } else {
                        "The first sign-in with a free nickname creates the account with this password."
                    };
                    ui.add(Label::new(RichText::new(hint).small().weak()).wrap());
                }
            });
        });
    });
    if trust {
        form.confirming_trust = true;
    }
    let mut confirmed = None;
    if form.confirming_trust
        && let Some(Problem::CertificateChanged(change)) = &form.problem
        && let Some(fingerprints) = &change.fingerprints
    {
        match certificate::confirm_new(ui.ctx(), &change.server, fingerprints) {
            Some(true) => confirmed = Some(fingerprints.presented),
            Some(false) => form.confirming_trust = false,
            None => {}
        }
    }
    if cancelled {
        return Some(Submit::Cancel);
    }
    if busy.is_some() || !(submitted || confirmed.is_some()) {
        return None;
    }
    form.confirming_trust = false;
    match form.check(first) {
        Ok(request) => {
            form.problem = None;
            if let Some(path) = form.state_path(home).filter(|_| first) {
                form.first_sign_ins.insert(path);
            }
            Some(match confirmed {
                Some(presented) => Submit::TrustAndSignIn(request, presented),
                None => Submit::SignIn(request),
            })
        }
        Err(message) => {
            form.problem = Some(Problem::Error(message));
            None
        }
    }
}

/// The fields and the button; `true` when the user asks to sign in. `first` adds the confirmation field.
fn fields(ui: &mut egui::Ui, form: &mut SignInForm, first: bool) -> bool {
    let field = |ui: &mut egui::Ui, label: &str, edit: TextEdit<'_>| {
        let label = ui.label(label);
        let response = ui.add(edit.desired_width(f32::INFINITY)).labelled_by(label.id);
        ui.add_space(6.0);
        response
    };
    let server = field(
        ui,
        "Server",
        TextEdit::singleline(&mut form.server).hint_text("host:port, or several nodes: a:5555,b:5555"),
    );
    let nick = field(ui, "Nickname", TextEdit::singleline(&mut form.nick).hint_text("letters, digits, - and _"));
    let password = field(ui, "Password", TextEdit::singleline(&mut form.password).password(true));
    let confirm = first.then(|| {
        field(
            ui,
            "Confirm password",
            TextEdit::singleline(&mut form.confirm).password(true).hint_text("the same password again"),
        )
    });
    if !form.focused {
        form.focused = true;
        if form.nick.is_empty() { nick.request_focus() } else { password.request_focus() }
    }
    let entered = [Some(&server), Some(&nick), Some(&password), confirm.as_ref()]
        .into_iter()
        .flatten()
        .any(|field| field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)));
    ui.add_space(6.0);
    let mut clicked = false;
    ui.with_layout(Layout::top_down_justified(Align::Center), |ui| {
        clicked = ui.add(Button::new(RichText::new("Sign in").strong()).min_size([0.0, 30.0].into())).clicked();
    });
    clicked || entered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(server: &str, nick: &str, password: &str) -> SignInForm {
        SignInForm { server: server.into(), nick: nick.into(), password: password.into(), ..SignInForm::default() }
    }

    #[test]
    fn a_complete_form_becomes_a_request_with_a_port() {
        let request = form(" chat.example.org ", "Ana", "pw").check(false).expect("complete");
        assert_eq!((request.server.name(), request.nick.as_str()), ("chat.example.org:5555", "ana"));
        let server = |raw: &str| form(raw, "ana", "pw").check(false).expect("complete").server.to_string();
        assert_eq!(server("[::1]:6000"), "[::1]:6000");
        assert_eq!(server("::1"), "[::1]:5555");
        assert_eq!(server("10.0.0.1:7000"), "10.0.0.1:7000");
        assert_eq!(server("a.example.org, b.example.org:6000"), "a.example.org:5555,b.example.org:6000");
    }

    #[test]
    fn what_is_missing_or_wrong_is_said() {
        assert!(form("", "ana", "pw").check(false).expect_err("no server").starts_with("Server:"));
        for address in ["127.0.0.1:99999", "http://127.0.0.1:5601", "127.0.0.1:0", "host:port"] {
            let refused = form(address, "ana", "pw").check(false).expect_err("not an address");
            assert!(refused.starts_with("Server:") && refused.contains("host:port"), "{address}: {refused}");
        }
        let empty = form("a.example.org,,b.example.org", "ana", "pw").check(false).expect_err("an empty entry");
        assert!(empty.starts_with("Server:") && empty.contains("empty entry"), "{empty}");
        assert!(form("host", "9lives", "pw").check(false).expect_err("bad nick").starts_with("Nickname:"));
        assert!(form("host", "ana", "").check(false).expect_err("no password").contains("password"));
    }

    #[test]
    fn a_first_sign_in_needs_the_password_twice_until_one_succeeds() {
        let home = tempfile::tempdir().expect("temp dir");
        let mut typo = form("host", "ana", "secret");
        typo.confirm = "secert".into();
        assert!(typo.is_first_sign_in(home.path()));
        assert!(typo.check(true).expect_err("differ").contains("differ"));
        typo.confirm = "secret".into();
        assert!(typo.check(true).expect("same twice").first);
        let state = account_state_path(home.path(), "host:5555", &Nick::parse("ana").expect("valid"));
        typo.first_sign_ins.insert(state.clone());
        std::fs::create_dir_all(state.parent().expect("a parent")).expect("creates");
        std::fs::write(&state, "").expect("writes");
        assert!(typo.is_first_sign_in(home.path()), "an attempt that did not get in leaves it a first one");
        typo.account_exists(home.path());
        assert!(!typo.is_first_sign_in(home.path()));
        assert!(typo.check(false).is_ok(), "not asked twice once the account is known here");
    }
}
