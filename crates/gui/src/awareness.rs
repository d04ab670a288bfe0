//! Knowing who is there (protocol version 6), the parts drawn outside the messages: one's own away message in the
//! top bar (its words, "I'm back", and "Set away message…", which opens a small dialog whose field is checked as
//! `/away` checks its line: a refusal is said under it and nothing is sent), a member's away mark (the nickname
//! dimmed, a small "away", the message on hover), and the typing line above the entry box. What is asked for goes
//! through the shared model as the typed commands do; against an older server none of it is offered.

use egui::{Align, Button, Id, Key, Label, Layout, Modal, RichText, TextEdit};
use palomar_client::command_line::Typed;
use palomar_client::model::ChatModel;
use palomar_proto::{TYPING_SHOWN_MS, away_message};

/// The button (or menu entry) that opens the away dialog.
pub const SET_AWAY: &str = "Set away message…";
/// The button (or menu entry) that clears one's away message.
pub const BACK: &str = "I'm back";
/// The away dialog's field hint, which is also how a screen reader names it.
pub const AWAY_HINT: &str = "Away message";
/// The dialog's buttons.
pub const SET: &str = "Set";
pub const CANCEL: &str = "Cancel";
/// The mark beside a member who is away.
pub const AWAY_MARK: &str = "away";

/// The away dialog, between frames.
#[derive(Debug, Default)]
pub struct AwayDialog {
    /// Shown.
    pub open: bool,
    pub text: String,
    /// Why the text typed cannot be an away message.
    problem: Option<String>,
    /// The field was given the focus since the dialog opened.
    focused: bool,
}

impl AwayDialog {
    fn open(&mut self) {
        *self = AwayDialog { open: true, ..AwayDialog::default() };
    }
}

/// The top bar's part, laid out right to left: "away: MESSAGE" and "I'm back" while away, else "Set away
/// message…" (which opens `dialog`). What was asked for.
pub fn top_bar(ui: &mut egui::Ui, model: &ChatModel, dialog: &mut AwayDialog) -> Option<Typed> {
    if !model.knows_awareness() {
        return None;
    }
    let mut asked = None;
    match model.away_status() {
        Some(status) => {
            if ui.button(BACK).on_hover_text("Clear your away message").clicked() {
                asked = Some(Typed::Away(None));
            }
            ui.add(Label::new(RichText::new(&status).color(ui.visuals().warn_fg_color)).truncate())
                .on_hover_text(status);
        }
        None => {
            if ui.button(SET_AWAY).on_hover_text("Tell the others why you do not answer").clicked() {
                dialog.open();
            }
        }
    }
    asked
}

/// The same, as entries of a narrow window's menu, the words first.
pub fn menu_entries(ui: &mut egui::Ui, model: &ChatModel, dialog: &mut AwayDialog) -> Option<Typed> {
    if !model.knows_awareness() {
        return None;
    }
    let mut asked = None;
    match model.away_status() {
        Some(status) => {
            ui.label(RichText::new(status).weak());
            if ui.button(BACK).clicked() {
                asked = Some(Typed::Away(None));
                ui.close();
            }
        }
        None => {
            if ui.button(SET_AWAY).clicked() {
                dialog.open();
                ui.close();
            }
        }
    }
    ui.separator();
    asked
}

/// The away dialog while open: a field (Enter sets, Escape or Cancel closes) checked as `/away` checks its
/// line. The away message set.
pub fn dialog(ctx: &egui::Context, dialog: &mut AwayDialog) -> Option<Typed> {
    if !dialog.open {
        return None;
    }
    let mut set = false;
    let mut cancel = false;
    let modal = Modal::new(Id::unique("away-dialog")).show(ctx, |ui| {
        ui.set_width(320.0_f32.min(ctx.content_rect().width() - 32.0));
        ui.label(RichText::new("Set away message").heading());
        ui.label(RichText::new("Shown to the others beside your name until you are back.").small().weak());
        let field = TextEdit::singleline(&mut dialog.text).hint_text(AWAY_HINT).desired_width(f32::INFINITY);
        let response = ui.add(field);
        if !dialog.focused {
            dialog.focused = true;
            response.request_focus();
        }
        if response.changed() {
            dialog.problem = None;
        }
        set = response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
        if let Some(problem) = &dialog.problem {
            ui.label(RichText::new(problem).small().color(ui.visuals().error_fg_color));
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            cancel = ui.button(CANCEL).clicked();
            set |= ui.add_enabled(!dialog.text.trim().is_empty(), Button::new(SET)).clicked();
        });
    });
    if cancel || modal.should_close() {
        dialog.open = false;
        return None;
    }
    if !set {
        return None;
    }
    match away_message(&dialog.text) {
        Ok(Some(message)) => {
            dialog.open = false;
            Some(Typed::Away(Some(message)))
        }
        // Nothing typed: the dialog sets a message; "I'm back" clears one.
        Ok(None) => None,
        Err(why) => {
            dialog.problem = Some(why.to_string());
            None
        }
    }
}

/// A member's away mark: a small "away", the message on hover.
pub fn away_mark(ui: &mut egui::Ui, message: &str) {
    ui.label(RichText::new(AWAY_MARK).small().weak()).on_hover_text(message);
}

/// The line above the entry box: who is typing in the conversation shown ("ana is typing…"). The line keeps its
/// height when nobody is, so that the entry box does not move as people start and stop.
pub fn typing_line(ui: &mut egui::Ui, model: &ChatModel) {
    let height = ui.text_style_height(&egui::TextStyle::Small);
    match model.typing_status() {
        Some(words) => {
            ui.add(Label::new(RichText::new(words).small().italics().weak()).truncate());
            // A notice expires by itself: the line is drawn again to let it go.
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(TYPING_SHOWN_MS / 6));
        }
        None => {
            ui.allocate_exact_size(egui::vec2(0.0, height), egui::Sense::hover());
        }
    }
}
