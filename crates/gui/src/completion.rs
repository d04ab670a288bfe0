//! Tab in the entry box: completes the nickname or command before the cursor, as the terminal client does
//! (the same `palomar_client::completion`), and Tab again cycles through the candidates. The box keeps the
//! focus: Tab is taken before egui can move the focus on or type a tab character.

use egui::text::{CCursor, CCursorRange};
use egui::{Id, Key, Modifiers};
use palomar_client::command_line::COMMANDS;
use palomar_client::completion::{self, Completion};
use palomar_client::model::ChatModel;

/// The completion in progress and the text it left, so that typing anything in between starts anew.
#[derive(Debug, Default)]
pub struct EntryCompletion {
    last: Option<(String, Completion)>,
}

impl EntryCompletion {
    /// Call before the entry box `id` is drawn: completes `entry` if Tab was pressed in it.
    pub fn on_tab(&mut self, ui: &egui::Ui, id: Id, entry: &mut String, model: &ChatModel) {
        let focused = ui.ctx().memory(|memory| memory.has_focus(id));
        if !focused || !ui.input_mut(|input| input.consume_key(Modifiers::NONE, Key::Tab)) {
            return;
        }
        let mut state = egui::TextEdit::load_state(ui.ctx(), id).unwrap_or_default();
        let mut text: Vec<char> = entry.chars().collect();
        let mut cursor =
            state.cursor.char_range().map_or(text.len(), |range| usize::from(range.primary.index)).min(text.len());
        let previous = self.last.take().filter(|(left, _)| left == entry).map(|(_, completion)| completion);
        let nicks: Vec<String> =
            model.known_nicks().iter().filter(|nick| **nick != model.me).map(|nick| nick.to_string()).collect();
        let Some(completion) = completion::complete(&mut text, &mut cursor, previous, COMMANDS, &nicks) else {
            return;
        };
        *entry = text.into_iter().collect();
        self.last = Some((entry.clone(), completion));
        state.cursor.set_char_range(Some(CCursorRange::one(CCursor::new(cursor))));
        state.store(ui.ctx(), id);
    }
}
