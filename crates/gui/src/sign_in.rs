//! The sign-in screen: server address, nickname and password, checked before anything is sent, and what
//! went wrong last time (unreachable server, wrong password, locked out, changed certificate). The first
//! sign-in with a free nickname registers it.

use egui::{Align, Button, Key, Layout, RichText, TextEdit};
use palomar_proto::Nick;

use crate::certificate;

/// The port `palomar serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5555;

#[derive(Debug, Default)]
pub struct SignInForm {
    pub server: String,
    pub nick: String,
    /// Held only while the form is shown and handed to the engine; never saved.
    pub password: String,
    pub problem: Option<Problem>,
    /// The first empty field got the keyboard focus already.
    focused: bool,
}

/// Why the last attempt did not get in.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Something to fix in the form, or a refusal (wrong password, locked out, unreachable server).
    Error(String),
    /// The server presented another certificate than the pinned one: the engine's full explanation.
    CertificateChanged(String),
}

/// A checked request to sign in.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `host:port`.
    pub server: String,
    pub nick: Nick,
    pub password: String,
}

impl SignInForm {
    pub fn new(server: Option<String>, nick: Option<String>) -> SignInForm {
        SignInForm {
            server: server.unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}")),
            nick: nick.unwrap_or_default(),
            password: String::new(),
            problem: None,
            focused: false,
        }
    }

    /// The form as a request, or what to fix.
    pub fn check(&self) -> Result<Request, String> {
        let server = self.server.trim();
        if server.is_empty() {
            return Err("Enter the server's address, like chat.example.org:5555.".into());
        }
        let has_port = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && !host.ends_with(':') && port.parse::<u16>().is_ok());
        let server = if has_port { server.to_owned() } else { format!("{server}:{DEFAULT_PORT}") };
        let nick = Nick::parse(&self.nick).map_err(|error| format!("Nickname: {error}."))?;
        if self.password.is_empty() {
            return Err("Enter your password (the first sign-in with a new nickname sets it).".into());
        }
        Ok(Request { server, nick, password: self.password.clone() })
    }
}

/// Draws the form. `busy` says what is happening while an attempt runs (the form is locked meanwhile).
/// Returns a request when the user asks to sign in and the form is complete.
pub fn show(ui: &mut egui::Ui, form: &mut SignInForm, busy: Option<&str>) -> Option<Request> {
    let mut submitted = false;
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.12).min(80.0));
        ui.heading(RichText::new("Palomar").size(32.0).strong());
        ui.label(RichText::new("Secure group chat that never loses a message").weak());
        ui.add_space(24.0);
    });
    let width = ui.available_width().min(380.0);
    let margin = ((ui.available_width() - width) / 2.0).max(0.0);
    ui.horizontal(|ui| {
        ui.add_space(margin);
        ui.vertical(|ui| {
            ui.set_width(width);
            ui.add_enabled_ui(busy.is_none(), |ui| {
                let field = |ui: &mut egui::Ui, label: &str, edit: TextEdit<'_>| {
                    let label = ui.label(label);
                    let response = ui.add(edit.desired_width(f32::INFINITY)).labelled_by(label.id);
                    ui.add_space(6.0);
                    response
                };
                let server = field(ui, "Server", TextEdit::singleline(&mut form.server).hint_text("host:port"));
                let nick =
                    field(ui, "Nickname", TextEdit::singleline(&mut form.nick).hint_text("letters, digits, - and _"));
                let password = field(ui, "Password", TextEdit::singleline(&mut form.password).password(true));
                if !form.focused {
                    form.focused = true;
                    if form.nick.is_empty() { nick.request_focus() } else { password.request_focus() }
                }
                let entered = [&server, &nick, &password]
                    .iter()
                    .any(|field| field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)));
                ui.add_space(6.0);
                ui.with_layout(Layout::top_down_justified(Align::Center), |ui| {
                    let button = ui.add(Button::new(RichText::new("Sign in").strong()).min_size([0.0, 30.0].into()));
                    submitted = button.clicked() || entered;
                });
            });
            ui.add_space(10.0);
            if let Some(busy) = busy {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(busy);
                });
            }
            match &form.problem {
                Some(Problem::Error(message)) => {
                    ui.label(RichText::new(message).color(ui.visuals().error_fg_color));
                }
                Some(Problem::CertificateChanged(message)) => certificate::changed_warning(ui, message),
                None => {}
            }
            if busy.is_none() {
                ui.add_space(10.0);
                ui.label(
                    RichText::new("The first sign-in with a free nickname creates the account with this password.")
                        .small()
                        .weak(),
                );
            }
        });
    });
    if !submitted || busy.is_some() {
        return None;
    }
    match form.check() {
        Ok(request) => {
            form.problem = None;
            Some(request)
        }
        Err(message) => {
            form.problem = Some(Problem::Error(message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(server: &str, nick: &str, password: &str) -> SignInForm {
        SignInForm { server: server.into(), nick: nick.into(), password: password.into(), ..SignInForm::default() }
    }

    #[test]
    fn a_complete_form_becomes_a_request_with_a_port() {
        let request = form(" chat.example.org ", "Ana", "pw").check().expect("complete");
        assert_eq!((request.server.as_str(), request.nick.as_str()), ("chat.example.org:5555", "ana"));
        assert_eq!(form("[::1]:6000", "ana", "pw").check().expect("complete").server, "[::1]:6000");
        assert_eq!(form("10.0.0.1:7000", "ana", "pw").check().expect("complete").server, "10.0.0.1:7000");
    }

    #[test]
    fn what_is_missing_is_said() {
        assert!(form("", "ana", "pw").check().expect_err("no server").contains("server"));
        assert!(form("host", "9lives", "pw").check().expect_err("bad nick").starts_with("Nickname:"));
        assert!(form("host", "ana", "").check().expect_err("no password").contains("password"));
    }
}
