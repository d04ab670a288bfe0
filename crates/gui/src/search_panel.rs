//! Finding messages from the window: the search field of the top bar (Ctrl+F focuses it, Enter searches, read as
//! `/search` reads its line, `in:#room` included; "this conversation only" limits it to the conversation shown;
//! words that cannot be searched for are said under it and nothing is sent), and the results of the last search the model keeps, newest first, whether it came from the
//! field or from a typed `/search`: a header in the words every client uses, a spinner while a page is on its way,
//! the server's refusal, each hit a row (a button, for the mouse, Tab and Enter) with its conversation, sender, time
//! and first lines with the query's words marked, "More" for the older ones, and a close button. The chat window
//! decides where the results go, closes them on Escape too, and opens a clicked hit where it was said.

use std::ops::Range;
use std::sync::Arc;

use egui::text::{LayoutJob, TextFormat};
use egui::{Align, Button, Checkbox, Galley, Key, KeyboardShortcut, Label, Layout, Modifiers, RichText, ScrollArea};
use egui::{Sense, TextEdit, TextStyle, WidgetInfo};
use palomar_client::command_line::{self, CommandError, SearchScope, SearchTyped};
use palomar_client::model::{ChatModel, HIT_CHARS, Search, Status, found_header, hit_line, hit_time};
use palomar_proto::{Conversation, Message, MessageKind, search_words};

use crate::theme;

/// The search field's hint, which is also how a screen reader names it.
pub const FIELD_HINT: &str = "Search messages";
/// The checkbox that limits a search to the conversation shown.
pub const HERE_ONLY: &str = "this conversation only";
/// The results' heading.
pub const RESULTS: &str = "Search results";
/// The results' tab in a narrow window, where the tabs share a phone's width.
pub const RESULTS_TAB: &str = "Results";
/// The button that asks for the page of older hits.
pub const MORE: &str = "More";
/// The button that closes the results (as Escape does).
pub const CLOSE: &str = "Close";

/// Ctrl+F (⌘F on a Mac), as in a browser.
const FOCUS_FIELD: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);

/// How many lines of a hit's text its row shows.
const HIT_ROWS: usize = 3;

/// What the field keeps between frames.
#[derive(Debug, Default)]
pub struct SearchField {
    pub query: String,
    /// "this conversation only" is ticked.
    pub here_only: bool,
    /// Why the words typed were not searched for.
    problem: Option<String>,
}

fn field_id() -> egui::Id {
    egui::Id::unique("search-field")
}

/// Gives the field the focus on Ctrl+F.
pub fn focus_on_shortcut(ctx: &egui::Context) {
    if ctx.input_mut(|i| i.consume_shortcut(&FOCUS_FIELD)) {
        ctx.memory_mut(|memory| memory.request_focus(field_id()));
    }
}

/// The field and its checkbox, `width` points wide together; the search Enter asks for, once its words are
/// known to be ones the server takes.
pub fn field(ui: &mut egui::Ui, field: &mut SearchField, width: f32) -> Option<SearchTyped> {
    let mut asked = None;
    ui.allocate_ui_with_layout(
        egui::vec2(width, ui.spacing().interact_size.y),
        Layout::right_to_left(Align::Center),
        |ui| {
            ui.add(Checkbox::new(&mut field.here_only, HERE_ONLY));
            let edit = TextEdit::singleline(&mut field.query)
                .id(field_id())
                .hint_text(FIELD_HINT)
                .desired_width(ui.available_width());
            let response = ui.add(edit).on_hover_text("Enter searches; Ctrl+F comes back here");
            if response.changed() {
                field.problem = None;
            }
            if response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                // Read as `/search` reads its line, so `in:#room` works here too; the checkbox is `in:here`.
                match command_line::search(&field.query) {
                    Ok(mut typed) => {
                        field.problem = None;
                        if field.here_only && typed.scope == SearchScope::Everywhere {
                            typed.scope = SearchScope::Here;
                        }
                        asked = Some(typed);
                    }
                    Err(CommandError::Usage { reason, .. }) => field.problem = Some(reason),
                    Err(other) => field.problem = Some(other.to_string()),
                }
            }
        },
    );
    asked
}

/// Why the last words were not searched for, on a line under the field.
pub fn problem(ui: &mut egui::Ui, field: &SearchField) {
    if let Some(problem) = &field.problem {
        ui.label(RichText::new(problem).small().color(ui.visuals().error_fg_color));
    }
}

/// What was asked for in the results.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// Show message `seq` of `conversation`, a hit.
    Open(Conversation, u64),
    /// The page of older hits.
    More,
    Close,
}

/// The results of the model's search (nothing when there is none), as a pane or a tab's content.
pub fn results(ui: &mut egui::Ui, model: &ChatModel) -> Option<Asked> {
    let search = model.search.as_ref()?;
    let mut asked = None;
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button(CLOSE).on_hover_text("Close the search results (Escape)").clicked() {
                asked = Some(Asked::Close);
            }
            ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                ui.add(Label::new(RichText::new(RESULTS).heading()).truncate());
            });
        });
    });
    ui.add_space(4.0);
    if search.pending && search.hits.is_empty() {
        searching(ui, &format!("Searching for “{}”…", search.query));
    } else if search.refused.is_none() || !search.hits.is_empty() {
        ui.add(Label::new(RichText::new(header(search)).strong()).wrap());
    }
    if let Some(refused) = &search.refused {
        ui.add(Label::new(RichText::new(refused).color(ui.visuals().error_fg_color)).wrap());
    }
    ui.separator();
    let words = search_words(&search.query).unwrap_or_default();
    let now = (model.clock)();
    ScrollArea::vertical().id_salt("search-results").auto_shrink([false, false]).show(ui, |ui| {
        for (number, hit) in (1..).zip(&search.hits) {
            if hit_row(ui, number, hit, &hit_time(hit.ts, now, model.offset), &words).clicked() {
                asked = Some(Asked::Open(hit.conversation.clone(), hit.seq));
            }
        }
        if search.pending && !search.hits.is_empty() {
            searching(ui, "searching…");
        } else if search.next.is_some() {
            ui.add_space(4.0);
            let more = ui.add_enabled(model.status == Status::Connected, Button::new(MORE));
            if more.on_hover_text("Find older messages").clicked() {
                asked = Some(Asked::More);
            }
        }
    });
    asked
}

/// "3 messages found for “lunch” in #lobby": every page so far together.
fn header(search: &Search) -> String {
    found_header(&search.query, search.conversation.as_ref(), search.hits.len(), false)
}

fn searching(ui: &mut egui::Ui, text: &str) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(RichText::new(text).weak());
    });
}

/// One hit, drawn as one widget so that a screen reader reads it as one button, named as the terminal writes it
/// ("[1] #lobby  bob  14:05  lunch at noon?"): its conversation, sender and time, then the first lines of its text
/// with the query's `words` marked.
fn hit_row(ui: &mut egui::Ui, number: usize, hit: &Message, time: &str, words: &[String]) -> egui::Response {
    let margin = egui::vec2(6.0, 4.0);
    let width = ui.available_width();
    let wrap_width = (width - 2.0 * margin.x).max(1.0);
    let body_font = TextStyle::Body.resolve(ui.style());
    let small_font = TextStyle::Small.resolve(ui.style());
    let visuals = ui.visuals();
    let (strong, normal) = (visuals.strong_text_color(), visuals.text_color());
    let format = |font: &egui::FontId, color| TextFormat { font_id: font.clone(), color, ..Default::default() };

    let mut head = LayoutJob::default();
    head.append(&hit.conversation.to_string(), 0.0, format(&small_font, strong));
    head.append(hit.from.as_str(), 12.0, format(&small_font, theme::nick_colour(&hit.from, visuals.dark_mode)));
    head.append(time, 12.0, format(&small_font, visuals.weak_text_color()));
    head.wrap = wrapping(wrap_width, 1);

    let text = shown_text(hit);
    let mut body = LayoutJob::default();
    let found = TextFormat { background: theme::found_fill(visuals.dark_mode), ..format(&body_font, strong) };
    let mut at = 0;
    for range in marked(&text, words) {
        body.append(&text[at..range.start], 0.0, format(&body_font, normal));
        body.append(&text[range.clone()], 0.0, found.clone());
        at = range.end;
    }
    body.append(&text[at..], 0.0, format(&body_font, normal));
    body.wrap = wrapping(wrap_width, HIT_ROWS);

    let head: Arc<Galley> = ui.painter().layout_job(head);
    let body: Arc<Galley> = ui.painter().layout_job(body);
    let gap = 2.0;
    let size = egui::vec2(width, head.size().y + gap + body.size().y + 2.0 * margin.y);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    response.widget_info(|| WidgetInfo::labeled(egui::accesskit::Role::Button, true, hit_line(number, hit, time)));
    if ui.is_rect_visible(rect) {
        let visuals = ui.visuals();
        let painter = ui.painter();
        if response.hovered() || response.has_focus() {
            painter.rect_filled(rect, 4.0, visuals.widgets.style(&response).weak_bg_fill);
        }
        if response.has_focus() {
            painter.rect_stroke(rect, 4.0, visuals.selection.stroke, egui::StrokeKind::Inside);
        }
        let top = rect.min + margin;
        painter.galley(top, Arc::clone(&head), normal);
        painter.galley(top + egui::vec2(0.0, head.size().y + gap), body, normal);
    }
    response
}

/// Wraps at `width` between words, at most `rows` rows, the rest cut with "…".
fn wrapping(width: f32, rows: usize) -> egui::text::TextWrapping {
    egui::text::TextWrapping {
        max_rows: rows,
        break_anywhere: false,
        ..egui::text::TextWrapping::truncate_at_width(width)
    }
}

/// The part of a hit's text its row can show (an action as "* ana waves"): laying out a long text only to cut it
/// would be wasted.
fn shown_text(hit: &Message) -> String {
    let mut text: String = hit.text.lines().take(HIT_ROWS).collect::<Vec<_>>().join("\n");
    if let Some((cut, _)) = text.char_indices().nth(HIT_CHARS * HIT_ROWS) {
        text.truncate(cut);
    }
    if hit.kind == MessageKind::Action { format!("* {} {text}", hit.from) } else { text }
}

/// Where in `text` the search's `words` (lower-cased, as [`search_words`] gives them) were found, as the server
/// finds them: at the start of a word of `text` (a run of letters and digits), case aside. Each range is the longest
/// start of one word that one of `words` matches.
pub fn marked(text: &str, words: &[String]) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut rest = text.char_indices().peekable();
    while let Some((start, c)) = rest.next() {
        if !c.is_alphanumeric() {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(at, c)) = rest.peek().filter(|(_, c)| c.is_alphanumeric()) {
            end = at + c.len_utf8();
            rest.next();
        }
        let word = &text[start..end];
        let lower = word.to_lowercase();
        let longest = words.iter().filter(|w| lower.starts_with(w.as_str())).map(String::len).max();
        if let Some(length) = longest {
            found.push(start..start + original_length(word, length));
        }
    }
    found
}

/// How many bytes of `word` make the first `lower_length` bytes of its lower-case form (they differ where
/// lower-casing changes a letter's length, as "İ" does).
fn original_length(word: &str, lower_length: usize) -> usize {
    let mut lower = 0;
    for (at, c) in word.char_indices() {
        if lower >= lower_length {
            return at;
        }
        lower += c.to_lowercase().map(char::len_utf8).sum::<usize>();
    }
    word.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(query: &str) -> Vec<String> {
        search_words(query).expect("words")
    }

    fn marks<'a>(text: &'a str, query: &str) -> Vec<&'a str> {
        marked(text, &words(query)).into_iter().map(|range| &text[range]).collect()
    }

    #[test]
    fn the_words_are_marked_where_they_start_a_word_case_aside() {
        assert_eq!(marks("Lunch at noon? lunchtime, brunch", "lun"), ["Lun", "lun"]);
        assert_eq!(marks("LUNCH on Friday-2pm", "friday lunch 2"), ["LUNCH", "Friday", "2"]);
        assert_eq!(marks("Straße STRASSE", "stra"), ["Stra", "STRA"]);
        assert_eq!(marks("nothing here", "lunch"), Vec::<&str>::new());
        assert_eq!(marks("lunchbox", "lunch lunchbox"), ["lunchbox"], "the longest word that matches");
        // "İ" lower-cases to two characters, "i" and a combining dot: three bytes where it has two.
        assert_eq!(original_length("İstanbul", "i̇s".len()), "İs".len());
    }
}
