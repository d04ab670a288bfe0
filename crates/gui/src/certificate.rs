//! The server's certificate, as the user sees it: the question on first contact (this fingerprint, trust
//! it?), the warning when a pinned server presents another certificate, and the deliberate, two-step way to
//! trust the new one after comparing fingerprints. Pins live in the same `known_hosts` file as the terminal
//! clients', so a decision made in one holds in the other.

use egui::{Id, Label, Modal, RichText};
use palomar_client::engine::ChangedCertificate;
use palomar_client::model::CertificatePrompt;

use crate::theme;

/// The label of the button that starts trusting a changed certificate (a confirmation follows).
pub const TRUST_NEW: &str = "I checked it: trust the new certificate";
/// The label of the button that confirms it.
pub const CONFIRM_TRUST_NEW: &str = "Trust the new certificate and sign in";

/// A server that presented another certificate than the pinned one.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateChange {
    /// As pinned in `known_hosts` (`host:port`).
    pub server: String,
    /// The engine's explanation, shown whole only when it could not be read back.
    pub message: String,
    /// Both fingerprints and the command-line remedy, read from `message`.
    pub fingerprints: Option<ChangedCertificate>,
}

impl CertificateChange {
    pub fn new(server: String, message: String) -> CertificateChange {
        let fingerprints = ChangedCertificate::from_message(&message);
        CertificateChange { server, message, fingerprints }
    }
}

/// Asks whether to trust a server seen for the first time; `Some(answer)` once the user answered.
pub fn prompt(ctx: &egui::Context, prompt: &CertificatePrompt) -> Option<bool> {
    yes_or_cancel(ctx, Id::unique("certificate-prompt"), "Trust and connect", |ui| {
        ui.heading("Trust this server?");
        ui.add_space(6.0);
        ui.label(format!("This is the first connection to {} from this computer.", prompt.server));
        ui.label("It presented a certificate with this fingerprint:");
        ui.add_space(4.0);
        fingerprint(ui, &prompt.fingerprint.to_string());
        ui.add_space(4.0);
        ui.label(
            "Compare it with the fingerprint the server's operator gives you (`palomar serve` prints it \
             when it starts). If they match, trust it: Palomar remembers it and warns if it ever changes.",
        );
    })
}

/// A modal question: `body`, then a `yes` button and Cancel. `Some(answer)` once the user answered; closing the
/// modal (Escape, a click outside) is a no.
fn yes_or_cancel(ctx: &egui::Context, id: Id, yes: &str, body: impl FnOnce(&mut egui::Ui)) -> Option<bool> {
    let mut answer = None;
    let modal = Modal::new(id).show(ctx, |ui| {
        ui.set_max_width(520.0);
        body(ui);
        ui.add_space(8.0);
        ui.horizontal_wrapped(|ui| {
            if ui.button(RichText::new(yes).strong()).clicked() {
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

/// A fingerprint, in a type that tells its digits apart, wrapped to the width there is.
fn fingerprint(ui: &mut egui::Ui, text: &str) {
    ui.add(Label::new(RichText::new(text).monospace().strong()).wrap().selectable(true));
}

/// The warning shown instead of a connection when the certificate changed: what it may mean, both
/// fingerprints, and the ways out (trusting the new certificate here, or with `palomar trust`). With
/// `offer_trust`, returns `true` when the user asks to trust the new certificate (to be confirmed next).
pub fn changed_warning(ui: &mut egui::Ui, change: &CertificateChange, offer_trust: bool) -> bool {
    let dark = ui.visuals().dark_mode;
    let mut trust = false;
    egui::Frame::new().fill(theme::danger_fill(dark)).inner_margin(12.0).corner_radius(6.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        let heading = RichText::new("⚠ The server's certificate has changed").heading();
        ui.add(Label::new(heading.color(ui.visuals().error_fg_color)).wrap());
        ui.add_space(4.0);
        let Some(fingerprints) = &change.fingerprints else {
            ui.add(Label::new(RichText::new(&change.message).monospace()).wrap().selectable(true));
            return;
        };
        ui.add(
            Label::new(format!(
                "{} presented another certificate than the one trusted before. Someone may be intercepting the \
                 connection, or the server got a new certificate. Palomar did not connect.",
                change.server
            ))
            .wrap(),
        );
        ui.add_space(6.0);
        ui.label(RichText::new("Trusted before").strong());
        fingerprint(ui, &fingerprints.pinned.to_string());
        ui.label(RichText::new("Presented now").strong());
        fingerprint(ui, &fingerprints.presented.to_string());
        ui.add_space(6.0);
        ui.add(
            Label::new(
                "Ask the server's operator for its fingerprint (`palomar serve` prints it when it starts). Only if \
                 it is the one presented now, trust it:",
            )
            .wrap(),
        );
        if offer_trust {
            ui.add_space(4.0);
            trust = ui.button(TRUST_NEW).clicked();
        }
        ui.add_space(6.0);
        ui.label("or, in a terminal:");
        ui.add(Label::new(RichText::new(&fingerprints.remedy).monospace()).wrap().selectable(true));
    });
    trust
}

/// The second step of trusting a changed certificate: both fingerprints again, and a deliberate yes.
/// `Some(answer)` once the user answered.
pub fn confirm_new(ctx: &egui::Context, server: &str, fingerprints: &ChangedCertificate) -> Option<bool> {
    yes_or_cancel(ctx, Id::unique("confirm-new-certificate"), CONFIRM_TRUST_NEW, |ui| {
        ui.heading("Replace the trusted certificate?");
        ui.add_space(6.0);
        ui.add(Label::new(format!("Palomar will trust this certificate for {server} from now on:")).wrap());
        ui.add_space(4.0);
        ui.label(RichText::new("New (presented now)").strong());
        fingerprint(ui, &fingerprints.presented.to_string());
        ui.label(RichText::new("Old (no longer trusted)").strong().weak());
        ui.add(Label::new(RichText::new(fingerprints.pinned.to_string()).monospace().weak()).wrap());
        ui.add_space(6.0);
        ui.add(
            Label::new(
                "Continue only if the server's operator confirmed the new fingerprint, digit for digit. If you are \
                 not sure, cancel: someone may be intercepting the connection.",
            )
            .wrap(),
        );
    })
}
