//! Emoji sequences come out as one glyph each when the platform has a colour emoji font. The platform is
//! stood in for by a font provider serving a 38 KB subset of Noto Color Emoji (the family, the flag and the
//! skin tone tested here; `fixtures/emoji-subset.LICENSE`), made with
//! `pyftsubset NotoColorEmoji.ttf --text='👨‍👩‍👧🇫🇷👍🏽' --layout-features='*'`. Without any platform font,
//! egui's own fonts still draw the eight reactions (the heart with its presentation selector) and the marks of
//! replies.

use std::sync::Arc;

use egui::epaint::text::{FallbackRequest, FontData, FontInsert, FontPriority, FontProvider, InsertFontFamily};
use skrifa::MetadataProvider as _;

const COLOUR_EMOJI: &[u8] = include_bytes!("fixtures/emoji-subset.ttf");

/// The platform's fonts: a colour emoji font for what it has.
fn platform(request: &FallbackRequest<'_>) -> Option<FontInsert> {
    let base = request.cluster.chars().next()?;
    let font = skrifa::FontRef::new(COLOUR_EMOJI).expect("a font");
    font.charmap().map(base)?;
    Some(FontInsert {
        name: "platform colour emoji".into(),
        data: FontData::from_static(COLOUR_EMOJI),
        families: vec![InsertFontFamily { family: request.family.clone(), priority: FontPriority::Lowest }],
    })
}

/// The glyphs `text` is drawn as (the zero-width ones that follow a ligature do not count).
fn drawn_glyphs(ctx: &egui::Context, text: &str) -> usize {
    let galley = ctx.fonts_mut(|fonts| {
        fonts.layout_no_wrap(text.to_owned(), egui::FontId::proportional(14.0), egui::Color32::WHITE)
    });
    galley.rows.iter().flat_map(|row| &row.row.glyphs).filter(|glyph| glyph.advance_width > 0.0).count()
}

#[test]
fn a_family_a_flag_and_a_skin_tone_are_one_glyph_each() {
    let ctx = egui::Context::default();
    let provider: Arc<dyn FontProvider> = Arc::new(platform);
    palomar_gui::emoji::install(&ctx, Some(provider));
    let mut counts = Vec::new();
    // Fonts are loaded at the start of a pass: counted in the second one.
    for _ in 0..2 {
        counts.clear();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            for sequence in ["👨\u{200d}👩\u{200d}👧", "🇫🇷", "👍🏽", "ok 👍🏽"] {
                counts.push((sequence, drawn_glyphs(ui.ctx(), sequence)));
            }
        });
        // Headless: nothing takes the glyph atlas.
        output.textures_delta.clear();
    }
    assert_eq!(counts, [("👨\u{200d}👩\u{200d}👧", 1), ("🇫🇷", 1), ("👍🏽", 1), ("ok 👍🏽", 4)], "one glyph per sequence");
}

#[test]
fn the_reactions_and_the_reply_marks_are_drawn_without_a_platform_emoji_font() {
    let ctx = egui::Context::default();
    palomar_gui::emoji::install(&ctx, None);
    // A character no font has would be a box; here it panics instead.
    ctx.set_missing_glyph_policy(egui::epaint::text::MissingGlyphPolicy::Panic);
    let texts: Vec<&str> = palomar_proto::REACTIONS.iter().map(|(emoji, _)| *emoji).chain(["↪", "×"]).collect();
    let mut counts = Vec::new();
    for _ in 0..2 {
        counts.clear();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            for text in &texts {
                counts.push((*text, drawn_glyphs(ui.ctx(), text)));
            }
        });
        output.textures_delta.clear();
    }
    let expected: Vec<(&str, usize)> = texts.iter().map(|text| (*text, 1)).collect();
    assert_eq!(counts, expected, "one glyph each, the heart's presentation selector included");
}
