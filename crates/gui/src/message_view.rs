//! One conversation's entries as rows: the time, a mark on our own messages (`…` until the server stored
//! it, `✔` after) in a column of its own so that every nickname starts at the same place, the nickname in its
//! colour, the text wrapped beside it; join, leave and connection notices in quieter type, `/help` as a
//! table; a separator wherever the day changes. A message of ours shows when it was typed while it waits
//! for the server, and both times once stored, if it waited long. An action reads "* ana waves", an edited
//! message has an "(edited)" mark, a deleted one a placeholder; edits and deletions have no row of their own. A
//! stored message has a context menu: Edit (ours) and Delete (the server judges whether we may).

use chrono::{DateTime, FixedOffset, NaiveDate};
use egui::{Align, Label, Layout, RichText};
use palomar_client::command_line::{HELP, help_lines};
use palomar_client::model::{Conv, Entry, MessageEntry};
use palomar_proto::{Nick, Revision};

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

/// Where two messages were laid out (the top of their rows, in screen coordinates), and what was picked in a
/// message's context menu.
#[derive(Debug, Default, Clone)]
pub struct RowTops {
    /// The message asked for as the anchor.
    pub anchor: Option<f32>,
    /// The oldest message shown.
    pub oldest: Option<f32>,
    pub picked: Option<Picked>,
}

/// An entry of a message's context menu, picked.
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
}

/// Lays out the entries, and says where the message with seq `anchor`, and the oldest one, were put. `me` is
/// who may edit.
pub fn show(ui: &mut egui::Ui, conv: &Conv, me: &Nick, offset: FixedOffset, anchor: Option<u64>) -> RowTops {
    let mut tops = RowTops::default();
    let mut day: Option<NaiveDate> = None;
    for entry in &conv.entries {
        if let Entry::Message(message) = entry
            && !message.is_shown()
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
                // Pending messages have no seq yet: only stored ones are oldest or anchor.
                if let Some(seq) = message.seq {
                    let top = ui.cursor().top();
                    tops.oldest.get_or_insert(top);
                    if anchor == Some(seq) {
                        tops.anchor = Some(top);
                    }
                }
                let picked = message_row(ui, message, me, &time, typed_note(message, offset));
                tops.picked = tops.picked.or(picked);
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

/// What a message's row says in place of its text: the text, or the placeholder of a deleted message.
pub fn shown_text(message: &MessageEntry) -> String {
    message.deleted_text().unwrap_or_else(|| message.text.clone())
}

fn message_row(
    ui: &mut egui::Ui,
    message: &MessageEntry,
    me: &Nick,
    time: &str,
    typed: Option<String>,
) -> Option<Picked> {
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
        let deleted = message.revision == Revision::Deleted;
        let mut text = RichText::new(shown_text(message));
        if message.mention {
            text = text.background_color(theme::mention_fill(dark));
        }
        if message.is_pending() || deleted {
            text = text.weak();
        }
        if deleted {
            text = text.italics();
        }
        ui.add(Label::new(text).wrap().selectable(!deleted));
        if message.is_edited() {
            ui.label(RichText::new("(edited)").small().weak());
        }
        if let Some(typed) = typed {
            ui.label(RichText::new(typed).small().weak()).on_hover_text("it waited in the outbox until then");
        }
    });
    // Only a stored message that is still there can be changed.
    let seq = message.seq.filter(|_| message.revision != Revision::Deleted)?;
    let mut picked = None;
    row.response.container_context_menu(|ui| {
        if message.from == *me && ui.button("Edit").clicked() {
            picked = Some(Picked::Edit { seq, text: message.text.clone() });
        }
        if ui.button("Delete").clicked() {
            picked = Some(Picked::Delete { seq });
        }
    });
    picked
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
        use palomar_client::Event;
        use palomar_client::model::ChatModel;
        use palomar_proto::{Conversation, Message, MessageId, MessageKind, RoomName};

        let me = Nick::parse("ana").expect("valid");
        let mut model = ChatModel::new(me.clone(), "127.0.0.1:5555".into());
        let entries = [
            (1, "bob", MessageKind::Action, "waves"),
            (2, "ana", MessageKind::Text, "helo all"),
            (3, "ana", MessageKind::Edit { of: 2 }, "hello all"),
            (4, "carol", MessageKind::Text, "buy pills"),
            (5, "ana", MessageKind::Deletion { of: 4 }, "spam"),
        ];
        for (seq, from, kind, text) in entries {
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
            model.on_engine(Event::Message { message, own: from == "ana" });
        }
        let utc = FixedOffset::east_opt(0).expect("UTC");
        let conv = model.current();
        let mut harness = Harness::new_ui_state(
            |ui, picked: &mut Option<Picked>| {
                if let Some(choice) = show(ui, conv, &me, utc, None).picked {
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
    fn help_lines_are_told_from_other_notices() {
        let first = help_lines().next().expect("a line");
        assert_eq!(help_entry(&first), Some(HELP[0]));
        assert_eq!(help_entry("bob joined"), None);
    }
}
