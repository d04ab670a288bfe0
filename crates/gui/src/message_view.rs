//! One conversation's entries as rows: the time, a mark on our own messages (`…` until the server stored
//! it, `✔` after), the nickname in its colour, the text wrapped beside it; join, leave and connection
//! notices in quieter type; a separator wherever the day changes.

use chrono::{DateTime, FixedOffset, NaiveDate};
use egui::{Label, RichText};
use palomar_client::model::{Conv, Entry, MessageEntry};

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

/// Where two messages were laid out: the top of their rows, in screen coordinates.
#[derive(Debug, Default, Clone, Copy)]
pub struct RowTops {
    /// The message asked for as the anchor.
    pub anchor: Option<f32>,
    /// The oldest message shown.
    pub oldest: Option<f32>,
}

/// Lays out the entries, and says where the message with seq `anchor`, and the oldest one, were put.
pub fn show(ui: &mut egui::Ui, conv: &Conv, offset: FixedOffset, anchor: Option<u64>) -> RowTops {
    let mut tops = RowTops::default();
    let mut day: Option<NaiveDate> = None;
    for entry in &conv.entries {
        let when = local(entry.ts(), offset);
        if let Some(when) = when
            && day != Some(when.date_naive())
        {
            day = Some(when.date_naive());
            day_separator(ui, when.date_naive());
        }
        let time = when.map_or_else(|| "--:--".to_owned(), |t| t.format("%H:%M").to_string());
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
                message_row(ui, message, &time)
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

fn message_row(ui: &mut egui::Ui, message: &MessageEntry, time: &str) {
    let dark = ui.visuals().dark_mode;
    ui.horizontal_top(|ui| {
        time_label(ui, time);
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
        let mark = ui.label(RichText::new(mark).monospace().weak());
        if message.own {
            mark.on_hover_text(hint);
        }
        ui.label(RichText::new(message.from.as_str()).strong().color(theme::nick_colour(&message.from, dark)));
        let mut text = RichText::new(&message.text);
        if message.mention {
            text = text.background_color(theme::mention_fill(dark));
        }
        if message.is_pending() {
            text = text.weak();
        }
        ui.add(Label::new(text).wrap().selectable(true));
    });
}

fn notice_row(ui: &mut egui::Ui, text: &str, alert: bool, time: &str) {
    ui.horizontal_top(|ui| {
        time_label(ui, time);
        // Under the mark column, so notices line up with nicknames.
        ui.label(RichText::new(" ").monospace());
        let text = if alert {
            RichText::new(format!("⚠ {text}")).color(ui.visuals().error_fg_color)
        } else {
            RichText::new(text).italics().weak()
        };
        ui.add(Label::new(text).wrap());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_named_in_full() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date");
        assert_eq!(day_label(day), "Saturday 28 November 2026");
    }
}
