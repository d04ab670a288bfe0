//! Light, dark, or whatever the system uses, and the colours that carry meaning: a nickname's colour (the
//! same one it has in the terminal client), pending messages, warnings, the "new messages" divider.

use egui::{Color32, FontId, TextStyle, ThemePreference};
use palomar_proto::Nick;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    /// Follow the operating system's light or dark setting.
    #[default]
    System,
    Light,
    Dark,
}

impl ThemeChoice {
    pub const ALL: [ThemeChoice; 3] = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark];

    pub fn label(self) -> &'static str {
        match self {
            ThemeChoice::System => "System theme",
            ThemeChoice::Light => "Light",
            ThemeChoice::Dark => "Dark",
        }
    }

    pub fn preference(self) -> ThemePreference {
        match self {
            ThemeChoice::System => ThemePreference::System,
            ThemeChoice::Light => ThemePreference::Light,
            ThemeChoice::Dark => ThemePreference::Dark,
        }
    }
}

/// Buttons to pick the theme; applies the choice at once. `true` when it changed.
pub fn picker(ui: &mut egui::Ui, choice: &mut ThemeChoice) -> bool {
    let before = *choice;
    let mut options = ThemeChoice::ALL;
    if ui.layout().prefer_right_to_left() {
        options.reverse();
    }
    for option in options {
        ui.selectable_value(choice, option, option.label());
    }
    if *choice != before {
        ui.ctx().set_theme(choice.preference());
    }
    *choice != before
}

/// The size of small print (hints, counts, day separators): egui's default, 9 points, is too small to read.
pub const SMALL_TEXT: f32 = 12.0;

/// Sets up the context once: readable small print in both themes, and emoji in colour (see [`crate::emoji`]).
pub fn set_up(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        style.text_styles.insert(TextStyle::Small, FontId::proportional(SMALL_TEXT));
    });
    // eframe added the platform's fonts already.
    crate::emoji::install(ctx, None);
}

/// The terminal client's ten nickname colours (red, green, yellow, blue, magenta, cyan, then the light
/// ones), in shades that read well on a dark background and on a light one.
const NICKS_ON_DARK: [Color32; 10] = [
    Color32::from_rgb(0xf2, 0x6d, 0x6d),
    Color32::from_rgb(0x7c, 0xd6, 0x7c),
    Color32::from_rgb(0xe6, 0xc4, 0x4f),
    Color32::from_rgb(0x6f, 0xa8, 0xf2),
    Color32::from_rgb(0xd3, 0x7c, 0xe6),
    Color32::from_rgb(0x5f, 0xd0, 0xd0),
    Color32::from_rgb(0xff, 0x9e, 0x8a),
    Color32::from_rgb(0xb5, 0xe6, 0x8a),
    Color32::from_rgb(0x9c, 0xc3, 0xff),
    Color32::from_rgb(0xf0, 0xa8, 0xf0),
];
const NICKS_ON_LIGHT: [Color32; 10] = [
    Color32::from_rgb(0xb3, 0x1b, 0x1b),
    Color32::from_rgb(0x1e, 0x7a, 0x1e),
    Color32::from_rgb(0x8a, 0x64, 0x00),
    Color32::from_rgb(0x1f, 0x4f, 0xb3),
    Color32::from_rgb(0x8e, 0x2a, 0xa8),
    Color32::from_rgb(0x0b, 0x76, 0x7a),
    Color32::from_rgb(0xc4, 0x4d, 0x2a),
    Color32::from_rgb(0x4b, 0x80, 0x14),
    Color32::from_rgb(0x2f, 0x6f, 0xd6),
    Color32::from_rgb(0xa8, 0x34, 0x8a),
];

/// A nickname's colour: the same person, the same colour, every time and in every Palomar client.
pub fn nick_colour(nick: &Nick, dark: bool) -> Color32 {
    let palette = if dark { &NICKS_ON_DARK } else { &NICKS_ON_LIGHT };
    palette[palomar_client::model::nick_colour(nick, palette.len())]
}

/// The nickname of someone away in the member list: their colour, faded.
pub fn away_nick_colour(nick: &Nick, dark: bool) -> Color32 {
    nick_colour(nick, dark).gamma_multiply(0.45)
}

/// The mark of someone online, and of a live connection.
pub const ONLINE: Color32 = Color32::from_rgb(0x3c, 0xa8, 0x55);

/// The background of the reconnect banner.
pub fn banner_fill(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0x5a, 0x45, 0x10) } else { Color32::from_rgb(0xff, 0xe9, 0xa8) }
}

/// The background of a warning that stops everything (changed certificate, engine stopped).
pub fn danger_fill(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0x5c, 0x1a, 0x1a) } else { Color32::from_rgb(0xfd, 0xe2, 0xe2) }
}

/// The background of a message that mentions us.
pub fn mention_fill(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0x45, 0x3a, 0x12) } else { Color32::from_rgb(0xff, 0xf4, 0xc2) }
}

/// The background of the message a reply's quote led to, for a moment.
pub fn highlight_fill(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0x1d, 0x3d, 0x5c) } else { Color32::from_rgb(0xd6, 0xe9, 0xff) }
}

/// The background of a searched-for word in a search result.
pub fn found_fill(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0x6b, 0x55, 0x0e) } else { Color32::from_rgb(0xff, 0xdf, 0x7a) }
}

/// The "new messages" divider and its words.
pub fn new_messages_colour(dark: bool) -> Color32 {
    if dark { Color32::from_rgb(0xf2, 0x6d, 0x6d) } else { Color32::from_rgb(0xc4, 0x2b, 0x2b) }
}
