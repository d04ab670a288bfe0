//! One conversation's entries as rows: the time, a mark on our own messages (`…` until the server stored
//! it, `✔` after) in a column of its own so that every nickname starts at the same place, the nickname in its
//! colour, the text wrapped beside it; join, leave and connection notices in quieter type, `/help` as a
//! table; a separator wherever the day changes. A message of ours shows when it was typed while it waits
//! for the server, and both times once stored, if it waited long. An action reads "* ana waves", an edited
//! message has an "(edited)" mark, a deleted one a placeholder; edits and deletions have no row of their own. A
//! message's text keeps its line breaks and follows the rich text rules of every front end
//! (`palomar_client::rich_text`): `https://` links open the system browser, `inline code` is monospace on a
//! shade, and fenced code blocks are shaded monospace frames that scroll sideways rather than widen the window;
//! placeholders are shown as they are. A reply has a muted quote of what it answers above its text ("↪ bob:
//! first line…"), to click for the chat window to show that message; a message's reactions are chips under
//! it ("👍 2", ours selected, who on hover), to click to add or take back ours. A stored message has a context
//! menu: Reply, the eight reactions, Edit (ours) and Delete (the server judges whether we may). What is picked
//! or clicked is handed to the chat window, and the message it asks to be shown is tinted (and scrolled to). Read
//! markers show as "seen by ana and bob", small and dim under the message line others have read up to (the last
//! lines only), and as the "new messages" divider above the first message from others not read yet when the
//! conversation was opened; both as the shared model words and places them.

use chrono::{DateTime, FixedOffset, NaiveDate};
use egui::{Align, Button, Label, Layout, RichText, Sense};
use palomar_client::command_line::{HELP, help_lines};
use palomar_client::model::{ChatModel, Conv, Entry, MessageEntry, NEW_MESSAGES, Quote};
use palomar_client::rich_text::{self, Piece};
use palomar_proto::{Nick, REACTIONS, Revision};

use crate::theme;

/// The mark of our own message while the server has not stored it yet.
pub const PENDING: &str = "…";
/// The mark of our own message once the server has stored it.
pub const SENT: &str = "✔";

fn local(ts: u64, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    DateTime::from_timestamp_millis(i64::try_from(ts).ok()?).map(|t| t.with_timezone(&offset))
}

/// "Saturday 28 November 2026".
pub fn day_label(day: NaiveDate) -> String {
    day.format("%A %-d %B %Y").to_string()
}

/// "14:02", or "--:--" for a time that cannot be one.
fn clock(ts: u64, offset: FixedOffset) -> String {
    local(ts, offset).map_or_else(|| "--:--".to_owned(), |t| t.format("%H:%M").to_string())
}

/// Beside a message of ours that waited long for the server: when it was typed ("typed 14:02").
pub fn typed_note(message: &MessageEntry, offset: FixedOffset) -> Option<String> {
    if message.is_pending() {
        return None;
    }
    message.typed_long_before().map(|typed| format!("typed {}", clock(typed, offset)))
}

/// The `/help` entry a notice shows, if it is one of the lines `/help` adds.
fn help_entry(text: &str) -> Option<(&'static str, &'static str)> {
    help_lines().zip(HELP).find(|(line, _)| line == text).map(|(_, entry)| *entry)
}

/// What a reply quotes of message `of`: "bob: first line…", "a deleted message", or "#41" when it is not here.
pub fn quoted(of: u64, quote: &Quote) -> String {
    match quote {
        Quote::Message { from, line } => format!("{from}: {line}"),
        Quote::Deleted => "a deleted message".to_owned(),
        Quote::Ignored => "a message from someone you ignore".to_owned(),
        Quote::NotHere => format!("#{of}"),
    }
}

/// Where two messages were laid out (the top of their rows, in screen coordinates), and what was picked in a
/// message's context menu or clicked on it.
#[derive(Debug, Default, Clone)]
pub struct RowTops {
    /// The message asked for as the anchor.
    pub anchor: Option<f32>,
    /// The oldest message shown.
    pub oldest: Option<f32>,
    pub picked: Option<Picked>,
}

/// What was picked in a message's context menu, or clicked on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// Edit message `seq`, whose text is `text` now.
    Edit {
        seq: u64,
        text: String,
    },
    Delete {
        seq: u64,
    },
    Reply {
        seq: u64,
    },
    /// Add our reaction `emoji` to message `seq`, or take it back if we have it.
    React {
        seq: u64,
        emoji: &'static str,
    },
    /// A reply's quote: show message `of`, the one it answers.
    Quoted {
        of: u64,
    },
}

/// A message to tint for a moment (the one a reply's quote led to), and whether to scroll it into view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Highlight {
    pub seq: u64,
    pub scroll: bool,
}

/// Lays out the entries of `conv`, one of `model`'s conversations, and says where the message with seq `anchor`,
/// and the oldest one, were put. The model's user may edit and has its reactions selected, and says who has seen
/// what; `highlight` is tinted.
pub fn show(
    ui: &mut egui::Ui,
    conv: &Conv,
    model: &ChatModel,
    offset: FixedOffset,
    anchor: Option<u64>,
    highlight: Option<Highlight>,
) -> RowTops {
    let me = &model.me;
    let mut tops = RowTops::default();
    let mut day: Option<NaiveDate> = None;
    for entry in &conv.entries {
        if let Entry::Message(message) = entry
            && !message.is_drawn()
        {
            continue;
        }
        let when = local(entry.ts(), offset);
        if let Some(when) = when
            && day != Some(when.date_naive())
        {
            day = Some(when.date_naive());
            day_separator(ui, when.date_naive());
        }
        let time = clock(entry.ts(), offset);
        match entry {
            Entry::Message(message) => {
                if message.seq.is_some() && message.seq == conv.new_messages {
                    new_messages_divider(ui);
                }
                // Pending messages have no seq yet: only stored ones are oldest or anchor.
                if let Some(seq) = message.seq {
                    let top = ui.cursor().top();
                    tops.oldest.get_or_insert(top);
                    if anchor == Some(seq) {
                        tops.anchor = Some(top);
                    }
                }
                // Shapes are drawn in the order added: the tint's place is kept before the row is laid out.
                let tint = ui.painter().add(egui::Shape::Noop);
                let (rect, picked) = message_row(ui, conv, message, me, &time, typed_note(message, offset));
                if let Some(highlight) = highlight.filter(|highlight| message.seq == Some(highlight.seq)) {
                    let fill = theme::highlight_fill(ui.visuals().dark_mode);
                    ui.painter().set(tint, egui::Shape::rect_filled(rect.expand(2.0), 4.0, fill));
                    if highlight.scroll {
                        ui.scroll_to_rect(rect, Some(Align::Center));
                    }
                }
                tops.picked = tops.picked.or(picked);
                if let Some(seen) = message.seq.and_then(|seq| model.seen_by(conv, seq)) {
                    seen_by_line(ui, &seen);
                }
            }
            Entry::Notice { text, alert, .. } => notice_row(ui, text, *alert, &time),
        }
    }
    tops
}

fn day_separator(ui: &mut egui::Ui, day: NaiveDate) {
    ui.add_space(6.0);
    ui.vertical_centered(|ui| {
        ui.label(RichText::new(day_label(day)).small().strong().weak());
    });
    ui.separator();
}

/// The line above the first message from others not read yet when the conversation was opened.
fn new_messages_divider(ui: &mut egui::Ui) {
    let colour = theme::new_messages_colour(ui.visuals().dark_mode);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let label = ui.label(RichText::new(NEW_MESSAGES).small().strong().color(colour));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(ui.available_width(), label.rect.height()), Sense::hover());
        ui.painter().hline(rect.x_range(), rect.center().y, egui::Stroke::new(1.0, colour));
    });
}

/// "seen by ana and bob" under a message line, small and dim, where the nicknames begin: past the time ("14:02",
/// five monospace characters) and the mark column.
fn seen_by_line(ui: &mut egui::Ui, seen: &str) {
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let time = ui.fonts_mut(|fonts| fonts.glyph_width(&font, '0')) * 5.0;
    let mark = ui.text_style_height(&egui::TextStyle::Body) * 1.2;
    let indent = time + mark + 2.0 * ui.spacing().item_spacing.x;
    ui.horizontal(|ui| {
        ui.add_space(indent);
        ui.add(Label::new(RichText::new(seen).small().weak()).truncate());
    });
}

fn time_label(ui: &mut egui::Ui, time: &str) {
    ui.label(RichText::new(time).monospace().weak());
}

/// The mark column: as wide as the widest mark, whichever is shown (none, `…` or `✔`), so that a mark never
/// moves the nickname beside it.
fn mark_cell(ui: &mut egui::Ui, mark: &str) -> egui::Response {
    let width = ui.text_style_height(&egui::TextStyle::Body) * 1.2;
    let height = ui.text_style_height(&egui::TextStyle::Body);
    ui.add_sized([width, height], Label::new(RichText::new(mark).weak()))
}

/// A message's row, and what was picked or clicked on it.
fn message_row(
    ui: &mut egui::Ui,
    conv: &Conv,
    message: &MessageEntry,
    me: &Nick,
    time: &str,
    typed: Option<String>,
) -> (egui::Rect, Option<Picked>) {
    let dark = ui.visuals().dark_mode;
    let row = ui.horizontal_top(|ui| {
        if message.is_pending() {
            // Not stored yet: the time is when it was typed, in italics until the server gives its own.
            ui.label(RichText::new(time).monospace().italics().weak()).on_hover_text(format!("typed at {time}"));
        } else {
            time_label(ui, time);
        }
        let mark = match (message.own, message.is_pending()) {
            (false, _) => " ",
            (true, true) => PENDING,
            (true, false) => SENT,
        };
        let hint = if message.is_pending() {
            "waiting for the server; it stays in the outbox until the server stores it"
        } else {
            "stored by the server"
        };
        let mark = mark_cell(ui, mark);
        if message.own {
            mark.on_hover_text(hint);
        }
        let nick = if message.is_action() { format!("* {}", message.from) } else { message.from.to_string() };
        ui.label(RichText::new(nick).strong().color(theme::nick_colour(&message.from, dark)));
        message_text(ui, conv, message, me, typed)
    });
    let mut picked = row.inner;
    // Only a stored message that is still there can be changed, answered or reacted to.
    let Some(seq) = message.seq.filter(|_| message.revision != Revision::Deleted) else {
        return (row.response.rect, picked);
    };
    row.response.container_context_menu(|ui| {
        if ui.button("Reply").clicked() {
            picked = Some(Picked::Reply { seq });
        }
        ui.label(RichText::new("React").small().weak());
        ui.horizontal(|ui| {
            for (emoji, name) in REACTIONS {
                let button = Button::selectable(message.has_reaction(emoji, me), emoji);
                if ui.add(button).on_hover_text(format!(":{name}:")).clicked() {
                    picked = Some(Picked::React { seq, emoji });
                }
            }
        });
        ui.separator();
        if message.from == *me && ui.button("Edit").clicked() {
            picked = Some(Picked::Edit { seq, text: message.text.clone() });
        }
        if ui.button("Delete").clicked() {
            picked = Some(Picked::Delete { seq });
        }
    });
    (row.response.rect, picked)
}

/// What a message's text is drawn as, in order: paragraphs of text, links and inline code that wrap together,
/// and code blocks, each on lines of their own.
#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    Flow(Vec<Inline<'a>>),
    Block { language: &'a str, code: &'a str },
}

#[derive(Debug, PartialEq, Eq)]
enum Inline<'a> {
    Text(&'a str),
    Link(&'a str),
    Code(&'a str),
}

/// `text` cut by the rules every front end shares, grouped for drawing.
fn parts(text: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut flow = Vec::new();
    for piece in rich_text::pieces(text) {
        match piece {
            Piece::Text(text) => flow.push(Inline::Text(text)),
            Piece::Link(url) => flow.push(Inline::Link(url)),
            Piece::Code(code) => flow.push(Inline::Code(code)),
            Piece::CodeBlock { language, code } => {
                if !flow.is_empty() {
                    parts.push(Part::Flow(std::mem::take(&mut flow)));
                }
                parts.push(Part::Block { language, code });
            }
        }
    }
    if !flow.is_empty() {
        parts.push(Part::Flow(flow));
    }
    parts
}

/// A message's text (or the placeholder of a deleted one, as it is), then its "(edited)" mark and `typed` note
/// where the text ends; a reply's quote above, the reactions' chips below. Says which of those was clicked.
fn message_text(
    ui: &mut egui::Ui,
    conv: &Conv,
    message: &MessageEntry,
    me: &Nick,
    typed: Option<String>,
) -> Option<Picked> {
    let dark = ui.visuals().dark_mode;
    let pending = message.is_pending();
    let quiet = |text: RichText| if pending { text.weak() } else { text };
    let plain = |text: &str| {
        let text = RichText::new(text);
        quiet(if message.mention { text.background_color(theme::mention_fill(dark)) } else { text })
    };
    // The pieces of a flow touch ("see " and a link); the marks keep the usual gap.
    let gap = ui.spacing().item_spacing.x;
    let has_marks = message.is_edited() || typed.is_some();
    let marks = |ui: &mut egui::Ui| {
        if message.is_edited() {
            ui.add_space(gap);
            ui.label(RichText::new("(edited)").small().weak());
        }
        if let Some(typed) = typed {
            ui.add_space(gap);
            ui.label(RichText::new(typed).small().weak()).on_hover_text("it waited in the outbox until then");
        }
    };
    ui.vertical(|ui| {
        if let Some(placeholder) = message.deleted_text() {
            flow(ui, |ui| {
                ui.add(Label::new(plain(&placeholder).weak().italics()).wrap().selectable(false));
                marks(ui);
            });
            return None;
        }
        let mut clicked = message.reply_to().and_then(|of| quote_line(ui, of, &conv.quote(of)));
        let parts = parts(&message.text);
        let mut marks = has_marks.then_some(marks);
        for (index, part) in parts.iter().enumerate() {
            match part {
                Part::Flow(pieces) => flow(ui, |ui| {
                    for piece in pieces {
                        match *piece {
                            Inline::Text(text) => {
                                ui.add(Label::new(plain(text)).wrap());
                            }
                            Inline::Link(url) => {
                                ui.add(egui::Hyperlink::new(url).open_in_new_tab(true)).on_hover_text(url);
                            }
                            Inline::Code(code) => {
                                ui.add(Label::new(quiet(RichText::new(code).code())).wrap());
                            }
                        }
                    }
                    if index + 1 == parts.len()
                        && let Some(marks) = marks.take()
                    {
                        marks(ui);
                    }
                }),
                Part::Block { language, code } => {
                    code_block(ui, language, quiet(RichText::new(*code).monospace()), (message.id, index));
                }
            }
        }
        // The text ended with a code block (or was empty): the marks go below it.
        if let Some(marks) = marks {
            flow(ui, marks);
        }
        if let Some(seq) = message.seq
            && !message.reactions.is_empty()
        {
            clicked = clicked.or(reaction_chips(ui, message, seq, me));
        }
        clicked
    })
    .inner
}

/// A reply's quote of message `of`, in one muted line: a click asks for that message to be shown.
fn quote_line(ui: &mut egui::Ui, of: u64, quote: &Quote) -> Option<Picked> {
    let text = RichText::new(format!("↪ {}", quoted(of, quote))).small().weak();
    let response = ui.add(Label::new(text).truncate().selectable(false).sense(Sense::click()));
    let response =
        response.on_hover_cursor(egui::CursorIcon::PointingHand).on_hover_text("Show the message this answers");
    response.clicked().then_some(Picked::Quoted { of })
}

/// Stored message `seq`'s reactions as chips, "👍 2", ours selected, who reacted on hover: a click adds or takes
/// back ours.
fn reaction_chips(ui: &mut egui::Ui, message: &MessageEntry, seq: u64, me: &Nick) -> Option<Picked> {
    let mut clicked = None;
    ui.horizontal_wrapped(|ui| {
        for reaction in &message.reactions {
            let label = RichText::new(format!("{} {}", reaction.emoji, reaction.by.len())).small();
            let mine = reaction.by.contains(me);
            let who: Vec<&str> =
                reaction.by.iter().map(|nick| if nick == me { "you" } else { nick.as_str() }).collect();
            let hint = format!("{} reacted {}", who.join(", "), reaction.emoji);
            if ui.add(Button::selectable(mine, label)).on_hover_text(hint).clicked() {
                clicked = Some(Picked::React { seq, emoji: reaction.emoji });
            }
        }
    });
    clicked
}

/// Lays out `add_contents` left to right, wrapping at the width there is, each piece of text starting where the
/// one before ended.
fn flow(ui: &mut egui::Ui, add_contents: impl FnOnce(&mut egui::Ui)) {
    // No height to start with: the first row would be as tall as the space left below.
    let start = egui::vec2(ui.available_width(), 0.0);
    ui.allocate_ui_with_layout(start, Layout::left_to_right(Align::Min).with_main_wrap(true), |ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        add_contents(ui);
    });
}

/// A fenced code block: its lines as they are, on a shade, with its language (if given) small above. A long line
/// scrolls sideways instead of widening the window; `id` tells its scroll position from other blocks'.
fn code_block(ui: &mut egui::Ui, language: &str, code: RichText, id: impl egui::AsIdSalt) {
    egui::Frame::new().fill(ui.visuals().code_bg_color).inner_margin(4.0).corner_radius(4.0).show(ui, |ui| {
        if !language.is_empty() {
            ui.label(RichText::new(language).small().weak());
        }
        egui::ScrollArea::horizontal().id_salt(id).show(ui, |ui| {
            ui.add(Label::new(code).extend());
        });
    });
}

fn notice_row(ui: &mut egui::Ui, text: &str, alert: bool, time: &str) {
    ui.horizontal_top(|ui| {
        time_label(ui, time);
        mark_cell(ui, " ");
        if let Some((usage, what)) = help_entry(text) {
            help_row(ui, usage, what);
            return;
        }
        let text = if alert {
            RichText::new(format!("⚠ {text}")).color(ui.visuals().error_fg_color)
        } else {
            RichText::new(text).italics().weak()
        };
        ui.add(Label::new(text).wrap());
    });
}

/// A line of `/help`: the command in a column as wide as the longest one, its description beside.
fn help_row(ui: &mut egui::Ui, usage: &str, what: &str) {
    let longest = HELP.iter().map(|(usage, _)| usage.chars().count()).max().unwrap_or(0);
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let width = ui.fonts_mut(|fonts| fonts.glyph_width(&font, 'M')) * (longest + 2) as f32;
    let height = ui.text_style_height(&egui::TextStyle::Body);
    ui.allocate_ui_with_layout(egui::vec2(width, height), Layout::left_to_right(Align::Min), |ui| {
        ui.set_min_width(width);
        ui.label(RichText::new(usage).monospace());
    });
    ui.add(Label::new(RichText::new(what).weak()).wrap());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ana's model with `entries` (seq, sender, kind, text) delivered in the lobby.
    fn ana_with(entries: &[(u64, &str, palomar_proto::MessageKind, &str)]) -> palomar_client::model::ChatModel {
        use palomar_proto::{Conversation, Message, MessageId, RoomName};
        let me = Nick::parse("ana").expect("valid");
        let mut model = palomar_client::model::ChatModel::new(me.clone(), "127.0.0.1:5555".into());
        for &(seq, from, kind, text) in entries {
            let message = Message {
                conversation: Conversation::Room(RoomName::lobby()),
                seq,
                id: MessageId([seq as u8; 16]),
                from: Nick::parse(from).expect("valid"),
                ts: 50_400_000,
                text: text.into(),
                kind,
                revision: Revision::Original,
            };
            model.on_engine(palomar_client::Event::Message { message, own: from == "ana" });
        }
        model
    }

    #[test]
    fn days_are_named_in_full() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date");
        assert_eq!(day_label(day), "Saturday 28 November 2026");
    }

    #[test]
    fn a_message_that_waited_long_says_when_it_was_typed() {
        let utc = FixedOffset::east_opt(0).expect("UTC");
        let ana = Nick::parse("ana").expect("valid");
        let (id, kind) = (palomar_proto::MessageId([1; 16]), palomar_proto::MessageKind::Text);
        let mut message = MessageEntry::pending(id, ana, 50_400_000, kind, "typed offline".into());
        assert_eq!(typed_note(&message, utc), None, "pending: its time is the typed one already");
        message.seq = Some(1);
        message.ts = 50_700_000;
        assert_eq!(typed_note(&message, utc).as_deref(), Some("typed 14:00"));
        message.ts = 50_430_000;
        assert_eq!(typed_note(&message, utc), None, "half a minute is not worth a note");
    }

    #[test]
    fn actions_edits_and_deletions_show_on_their_message_and_its_menu_edits_or_deletes_it() {
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;
        use palomar_proto::MessageKind;

        let entries = [
            (1, "bob", MessageKind::Action, "waves"),
            (2, "ana", MessageKind::Text, "helo all"),
            (3, "ana", MessageKind::Edit { of: 2 }, "hello all"),
            (4, "carol", MessageKind::Text, "buy pills"),
            (5, "ana", MessageKind::Deletion { of: 4 }, "spam"),
        ];
        let model = ana_with(&entries);
        let utc = FixedOffset::east_opt(0).expect("UTC");
        let conv = model.current();
        let mut harness = Harness::new_ui_state(
            |ui, picked: &mut Option<Picked>| {
                if let Some(choice) = show(ui, conv, &model, utc, None, None).picked {
                    *picked = Some(choice);
                }
            },
            None,
        );
        harness.run();
        for label in ["* bob", "waves", "(edited)", "(deleted by ana: spam)"] {
            assert!(harness.query_by_label(label).is_some(), "{label} is shown");
        }
        assert_eq!(harness.query_all_by_label("hello all").count(), 1, "the edit has no row of its own");
        assert!(harness.query_by_label("helo all").is_none() && harness.query_by_label("buy pills").is_none());

        harness.get_by_label("hello all").click_secondary();
        harness.run();
        harness.get_by_label("Edit").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::Edit { seq: 2, text: "hello all".into() }));

        harness.get_by_label("waves").click_secondary();
        harness.run();
        assert!(harness.query_by_label("Edit").is_none(), "only our own messages can be edited");
        harness.get_by_label("Delete").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::Delete { seq: 1 }));
    }

    #[test]
    fn a_reply_quotes_what_it_answers_reactions_are_chips_and_the_menu_replies_and_reacts() {
        use egui::accesskit::Toggled;
        use egui_kittest::Harness;
        use egui_kittest::kittest::{NodeT, Queryable};
        use palomar_proto::MessageKind;

        let entries = [
            (1, "bob", MessageKind::Text, "first line\nsecond line"),
            (2, "carol", MessageKind::Reply { of: 1 }, "agreed"),
            (3, "bob", MessageKind::Text, "oops"),
            (4, "bob", MessageKind::Deletion { of: 3 }, ""),
            (5, "carol", MessageKind::Reply { of: 3 }, "what was it?"),
            (6, "dan", MessageKind::Reply { of: 40 }, "as I said"),
            (7, "bob", MessageKind::Reaction { of: 1, added: true }, "👍"),
            (8, "ana", MessageKind::Reaction { of: 1, added: true }, "👍"),
            (9, "carol", MessageKind::Reaction { of: 1, added: true }, "❤\u{fe0f}"),
        ];
        let model = ana_with(&entries);
        let utc = FixedOffset::east_opt(0).expect("UTC");
        let conv = model.current();
        let mut harness = Harness::builder().with_size([600.0, 500.0]).build_ui_state(
            |ui, picked: &mut Option<Picked>| {
                if let Some(choice) = show(ui, conv, &model, utc, None, None).picked {
                    *picked = Some(choice);
                }
            },
            None,
        );
        harness.run();
        for label in ["↪ bob: first line…", "↪ a deleted message", "↪ #40", "agreed", "👍 2", "❤\u{fe0f} 1"]
        {
            assert!(harness.query_by_label(label).is_some(), "{label} is shown");
        }
        let toggled = |label: &str| harness.get_by_label(label).accesskit_node().data().toggled();
        assert_eq!(toggled("👍 2"), Some(Toggled::True), "ours is selected");
        assert_eq!(toggled("❤\u{fe0f} 1"), Some(Toggled::False));
        harness.get_by_label("👍 2").hover();
        harness.run();
        assert!(harness.query_by_label("bob, you reacted 👍").is_some(), "who reacted, on hover");

        harness.get_by_label("↪ bob: first line…").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::Quoted { of: 1 }));
        harness.get_by_label("👍 2").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::React { seq: 1, emoji: "👍" }));

        harness.get_by_label("agreed").click_secondary();
        harness.run();
        harness.get_by_label("Reply").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::Reply { seq: 2 }));
        harness.get_by_label("agreed").click_secondary();
        harness.run();
        for (emoji, _) in REACTIONS {
            assert!(harness.query_by_label(emoji).is_some(), "the menu has {emoji}");
        }
        harness.get_by_label("🎉").click();
        harness.run();
        assert_eq!(harness.state(), &Some(Picked::React { seq: 2, emoji: "🎉" }));
        assert!(harness.query_by_label("🎉").is_none(), "a reaction closes the menu");
    }

    #[test]
    fn text_and_links_wrap_together_and_code_blocks_stand_apart() {
        let text = "look:\n```rust\nfn f() {}\n```\nsee https://a.example `x`";
        assert_eq!(
            parts(text),
            [
                Part::Flow(vec![Inline::Text("look:")]),
                Part::Block { language: "rust", code: "fn f() {}" },
                Part::Flow(vec![
                    Inline::Text("see "),
                    Inline::Link("https://a.example"),
                    Inline::Text(" "),
                    Inline::Code("x")
                ]),
            ]
        );
        assert_eq!(parts("\n```\nb\n```"), [Part::Block { language: "", code: "b" }]);
        assert_eq!(parts("two\nlines"), [Part::Flow(vec![Inline::Text("two\nlines")])]);
        assert_eq!(parts(""), []);
    }

    #[test]
    fn https_links_open_the_browser_and_code_keeps_its_lines() {
        use egui::accesskit::Role;
        use egui::{OpenUrl, OutputCommand};
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;
        use palomar_proto::MessageKind;

        let wide = format!("```\n{}\n```", "wide_code_line ".repeat(40));
        let texts = [
            "see https://example.com/a?b=1, then",
            "```rust\nfn main() {\n    go();\n}\n```",
            "javascript:alert(1) and http://example.com",
            "`cargo test` passes\nsecond line",
            &wide,
        ];
        let entries: Vec<_> = (1..).zip(texts).map(|(seq, text)| (seq, "bob", MessageKind::Text, text)).collect();
        let model = ana_with(&entries);
        let utc = FixedOffset::east_opt(0).expect("UTC");
        let conv = model.current();
        // How far right the messages reach, in a window 400 wide.
        let mut harness = Harness::builder().with_size([400.0, 600.0]).build_ui_state(
            |ui, right: &mut f32| {
                show(ui, conv, &model, utc, None, None);
                *right = ui.min_rect().right();
            },
            0.0,
        );
        harness.run();
        let right = *harness.state();
        assert!(right <= 400.0, "a long line of code scrolls instead of reaching {right}");

        let url = "https://example.com/a?b=1";
        assert_eq!(harness.query_all_by_role(Role::Link).count(), 1, "javascript: and http:// are no links");
        for label in ["see ", ", then", "javascript:alert(1) and http://example.com"] {
            assert!(harness.query_by_label(label).is_some(), "{label:?} is shown as text");
        }
        for label in ["rust", "fn main() {\n    go();\n}", "cargo test", " passes\nsecond line"] {
            assert!(harness.query_by_label(label).is_some(), "{label:?} is shown as it is");
        }

        harness.get_by_role_and_label(Role::Link, url).hover();
        harness.run();
        assert_eq!(harness.query_all_by_label(url).count(), 2, "the link, and its address on hover");
        harness.get_by_role_and_label(Role::Link, url).click();
        harness.step();
        let opened = harness
            .output()
            .platform_output
            .commands
            .iter()
            .any(|command| matches!(command, OutputCommand::OpenUrl(OpenUrl { url: opened, .. }) if opened == url));
        assert!(opened, "a click opens {url}");
    }

    #[test]
    fn help_lines_are_told_from_other_notices() {
        let first = help_lines().next().expect("a line");
        assert_eq!(help_entry(&first), Some(HELP[0]));
        assert_eq!(help_entry("bob joined"), None);
    }
}
