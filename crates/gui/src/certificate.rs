//! The server's certificate, as the user sees it: the question on first contact (this fingerprint, trust
//! it?) and the warning when a pinned server presents another certificate. Pins live in the same
//! `known_hosts` file as the terminal clients', so a decision made in one holds in the other.

use egui::{Id, Modal, RichText};
use palomar_client::model::CertificatePrompt;

use crate::theme;

/// Asks whether to trust a server seen for the first time; `Some(answer)` once the user answered.
pub fn prompt(ctx: &egui::Context, prompt: &CertificatePrompt) -> Option<bool> {
    let mut answer = None;
    let modal = Modal::new(Id::unique("certificate-prompt")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading("Trust this server?");
        ui.add_space(6.0);
        ui.label(format!("This is the first connection to {} from this computer.", prompt.server));
        ui.label("It presented a certificate with this fingerprint:");
        ui.add_space(4.0);
        ui.label(RichText::new(prompt.fingerprint.to_string()).monospace().strong());
        ui.add_space(4.0);
        ui.label(
            "Compare it with the fingerprint the server's operator gives you (`palomar serve` prints it \
             when it starts). If they match, trust it: Palomar remembers it and warns if it ever changes.",
        );
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button(RichText::new("Trust and connect").strong()).clicked() {
                answer = Some(true);
            }
            if ui.button("Cancel").clicked() {
                answer = Some(false);
            }
        });
    });
    if modal.should_close() && answer.is_none() {
        answer = Some(false);
    }
    answer
}

/// The warning shown instead of a connection when the certificate changed: the pinned and presented
/// fingerprints and what to do, in the engine's words.
pub fn changed_warning(ui: &mut egui::Ui, message: &str) {
    let dark = ui.visuals().dark_mode;
    egui::Frame::new().fill(theme::danger_fill(dark)).inner_margin(12.0).corner_radius(6.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new("⚠ The server's certificate has changed").heading().color(ui.visuals().error_fg_color));
        ui.add_space(4.0);
        ui.label(
            "Someone may be intercepting the connection, or the server got a new certificate. \
             Palomar did not connect.",
        );
        ui.add_space(6.0);
        ui.label(RichText::new(message).monospace());
    });
}
