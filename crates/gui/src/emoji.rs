//! Emoji in colour, drawn by the platform's emoji font: egui shapes text (so a ZWJ family, a flag or a skin
//! tone is one glyph of a font that has it) and draws colour glyphs, but its own emoji fonts are monochrome
//! and, being installed fonts, would always be chosen before any font of the platform. They are moved to the
//! very end instead: asked only for what no platform font has, so a system without a colour emoji font still
//! shows a monochrome one rather than nothing.

use std::sync::Arc;

use egui::FontDefinitions;
use egui::epaint::text::{FallbackRequest, FontData, FontInsert, FontPriority, FontProvider, InsertFontFamily};
use skrifa::MetadataProvider as _;

/// egui's monochrome emoji fonts, by their names in [`FontDefinitions::default`].
const MONOCHROME: [&str; 2] = ["NotoEmoji-Regular", "emoji-icon-font"];

/// Installs egui's fonts without the monochrome emoji ones, and those as the last resort, after
/// `platform`'s fonts (the system fonts in the window; a stand-in in tests).
pub fn install(ctx: &egui::Context, platform: Option<Arc<dyn FontProvider>>) {
    let mut fonts = FontDefinitions::default();
    let mut last_resort = Vec::new();
    for name in MONOCHROME {
        fonts.families.values_mut().for_each(|family| family.retain(|font| font != name));
        if let Some(data) = fonts.font_data.remove(name) {
            last_resort.push((name, data));
        }
    }
    ctx.set_fonts(fonts);
    let mut providers: Vec<Arc<dyn FontProvider>> = platform.into_iter().collect();
    providers.push(Arc::new(LastResort { fonts: last_resort }));
    for provider in providers {
        ctx.add_font_provider(provider);
    }
}

/// Offers egui's monochrome emoji fonts for a character no other font has.
struct LastResort {
    fonts: Vec<(&'static str, Arc<FontData>)>,
}

impl FontProvider for LastResort {
    fn font_for(&self, request: &FallbackRequest<'_>) -> Option<FontInsert> {
        let base = request.cluster.chars().next()?;
        let (name, data) = self.fonts.iter().find(|(_, data)| {
            skrifa::FontRef::from_index(data.bytes(), data.index).is_ok_and(|font| font.charmap().map(base).is_some())
        })?;
        Some(FontInsert {
            name: (*name).to_owned(),
            data: FontData::clone(data),
            families: vec![InsertFontFamily { family: request.family.clone(), priority: FontPriority::Lowest }],
        })
    }
}
