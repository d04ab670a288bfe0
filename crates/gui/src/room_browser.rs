//! Finding rooms from the window: the room browser, a dialog over the chat window that the top bar's "Rooms" button
//! or Ctrl+Shift+L opens. It shows the listing the model keeps (`ChatModel.rooms`, with `rooms_as_notices` off:
//! the pages come here, not into the conversation), whether it was asked for here or by a typed `/list`: a filter
//! field that narrows the rooms loaded so far by name or topic, each room a row with its name, its members, an
//! invite-only mark, its topic on one line and Join (Open for a room we are in), "Load more" while the server has
//! more, a spinner while a page is on its way, what an empty listing says, Refresh (the first page again) and Close
//! (as Escape and a click outside do). Not connected, it says so and asks nothing; once reconnected it asks for what
//! it has not got. The chat window does what is picked.

use egui::{Align, Button, Key, KeyboardShortcut, Label, Layout, Modal, Modifiers, RichText, ScrollArea, TextEdit};
use egui::{Id, WidgetInfo};
use palomar_client::model::{Action, ChatModel, RoomBrowser, Status, members_text, one_line};
use palomar_proto::{Conversation, RoomListing, RoomName};

/// The top bar's button that opens the browser.
pub const OPEN: &str = "Rooms";
/// The dialog's heading.
pub const TITLE: &str = "Rooms on this server";
/// The filter field's hint, which is also how a screen reader names it.
pub const FILTER_HINT: &str = "Filter by name or topic";
/// The button that asks for the rooms after the last one loaded.
pub const LOAD_MORE: &str = "Load more";
/// The button that asks for the first page again.
pub const REFRESH: &str = "Refresh";
/// The button that closes the browser (as Escape does).
pub const CLOSE: &str = "Close";
/// What an empty listing says.
pub const EMPTY: &str = "There are no rooms to list.";
/// What the browser says while the connection is down.
pub const NOT_CONNECTED: &str = "Not connected: the rooms are listed once the connection is back.";
/// The mark of a room one joins only when invited.
pub const INVITE_ONLY: &str = "invite-only";

/// Ctrl+Shift+L (⌘⇧L on a Mac), "list": Ctrl+F is the search's, and egui's text fields take Ctrl+A, H, K, U, W, Y
/// and Z.
const OPEN_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::L);

/// The widest the dialog gets, and the margin it leaves around itself in a small window.
const MAX_WIDTH: f32 = 560.0;
const MARGIN: f32 = 16.0;
/// About what the heading, the filter and the count take above the rooms, which scroll in the rest.
const HEADER_HEIGHT: f32 = 150.0;
const MIN_ROWS_HEIGHT: f32 = 120.0;

/// What the browser keeps between frames that the model does not.
#[derive(Debug, Default)]
pub struct RoomFilter {
    /// What the rooms' names and topics are narrowed to.
    pub text: String,
    /// The field was given the focus since the browser opened.
    focused: bool,
}

/// What was picked in the browser.
#[derive(Debug, Clone, PartialEq)]
pub enum Picked {
    /// Join a room we are not in.
    Join(RoomName),
    /// Show a room we are in.
    Open(RoomName),
    More,
    Refresh,
    Close,
}

/// Opens the browser on the first page, or, while not connected, on nothing yet (asked once reconnected).
pub fn open(model: &mut ChatModel) -> Vec<Action> {
    if model.status == Status::Connected {
        return model.list_rooms(None);
    }
    model.rooms = Some(RoomBrowser::default());
    Vec::new()
}

/// Opens the browser on Ctrl+Shift+L.
pub fn open_on_shortcut(ctx: &egui::Context, model: &mut ChatModel) -> Vec<Action> {
    if ctx.input_mut(|i| i.consume_shortcut(&OPEN_SHORTCUT)) { open(model) } else { Vec::new() }
}

/// Once connected again, asks for the page the browser has not got: the one cut off by the disconnection, or the
/// first one of a browser opened offline.
pub fn ask_when_connected(model: &mut ChatModel) -> Vec<Action> {
    match &model.rooms {
        Some(browser) if model.status == Status::Connected && !browser.pending && !browser.answered => {
            let from = browser.from.clone();
            model.list_rooms(from)
        }
        _ => Vec::new(),
    }
}

/// Whether `listing` is one of those `filter` (lower-cased) narrows to.
fn matches(listing: &RoomListing, filter: &str) -> bool {
    filter.is_empty() || listing.room.as_str().contains(filter) || listing.topic.to_lowercase().contains(filter)
}

/// The browser, when the model keeps a listing; what was picked in it.
pub fn show(ctx: &egui::Context, filter: &mut RoomFilter, model: &ChatModel) -> Option<Picked> {
    let Some(browser) = &model.rooms else {
        filter.focused = false;
        return None;
    };
    let connected = model.status == Status::Connected;
    let screen = ctx.content_rect();
    let width = (screen.width() - 2.0 * MARGIN).min(MAX_WIDTH);
    let mut picked = None;
    let modal = Modal::new(Id::unique("room-browser")).show(ctx, |ui| {
        ui.set_width(width);
        ui.horizontal(|ui| {
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.button(CLOSE).on_hover_text("Close the room browser (Escape)").clicked() {
                    picked = Some(Picked::Close);
                }
                let refresh = ui.add_enabled(connected && !browser.pending, Button::new(REFRESH));
                if refresh.on_hover_text("List the rooms again from the first").clicked() {
                    picked = Some(Picked::Refresh);
                }
                ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                    ui.add(Label::new(RichText::new(TITLE).heading()).truncate());
                });
            });
        });
        if !connected {
            ui.label(RichText::new(NOT_CONNECTED).color(ui.visuals().warn_fg_color));
        }
        let field = ui.add(TextEdit::singleline(&mut filter.text).hint_text(FILTER_HINT).desired_width(f32::INFINITY));
        if !filter.focused {
            filter.focused = true;
            field.request_focus();
        }
        // "#gar" looks for the room as it is written everywhere else.
        let wanted = filter.text.trim().trim_start_matches('#').to_lowercase();
        let shown: Vec<&RoomListing> = browser.rooms.iter().filter(|listing| matches(listing, &wanted)).collect();
        if !browser.rooms.is_empty() {
            ui.label(RichText::new(count(browser, shown.len(), &wanted)).small().weak());
        }
        ui.separator();
        let rows_height = (screen.height() - 2.0 * MARGIN - HEADER_HEIGHT).max(MIN_ROWS_HEIGHT);
        // A dialog is laid out in the room it took last frame: the rooms are given their height outright, or a list
        // that grows (a page came) would stay as small as the spinner was.
        ScrollArea::vertical()
            .id_salt("room-list")
            .auto_shrink([false, true])
            .min_scrolled_height(rows_height)
            .max_height(rows_height)
            .show(ui, |ui| {
                for listing in &shown {
                    let member = model.convs.iter().any(|conv| conv.id == Conversation::Room(listing.room.clone()));
                    if let Some(row) = row(ui, listing, member, connected) {
                        picked = Some(row);
                    }
                }
                if browser.pending {
                    let waiting =
                        if browser.rooms.is_empty() { "Listing the rooms…" } else { "Loading more rooms…" };
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(RichText::new(waiting).weak());
                    });
                } else if browser.answered && browser.rooms.is_empty() {
                    ui.label(RichText::new(EMPTY).weak());
                } else if browser.more {
                    ui.add_space(4.0);
                    let more = ui.add_enabled(connected, Button::new(LOAD_MORE));
                    if more.on_hover_text("List the rooms after the last one here").clicked() {
                        picked = Some(Picked::More);
                    }
                }
            });
    });
    if modal.should_close() {
        picked = Some(Picked::Close);
    }
    if picked.as_ref().is_some_and(|picked| matches!(picked, Picked::Close | Picked::Join(_) | Picked::Open(_))) {
        filter.text.clear();
    }
    picked
}

/// "12 rooms", "2 of 12 rooms match", with where the listing starts when it is not the first room, and whether there
/// are more to load.
fn count(browser: &RoomBrowser, shown: usize, filter: &str) -> String {
    let loaded = match browser.rooms.len() {
        1 => "1 room".to_owned(),
        n => format!("{n} rooms"),
    };
    let mut text = if filter.is_empty() { loaded } else { format!("{shown} of {loaded} match") };
    if let Some(from) = &browser.from {
        text.push_str(&format!(", after #{from}"));
    }
    if browser.more {
        text.push_str("; more to load");
    }
    text
}

/// One room: its name, members and invite-only mark, Join or Open at the right (named with the room for a screen
/// reader, "Join #garden"), and its topic on one line under them, cut with "…" (whole on hover).
fn row(ui: &mut egui::Ui, listing: &RoomListing, member: bool, connected: bool) -> Option<Picked> {
    let mut picked = None;
    let room = &listing.room;
    ui.horizontal(|ui| {
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            let (label, pick) =
                if member { ("Open", Picked::Open(room.clone())) } else { ("Join", Picked::Join(room.clone())) };
            // Joining needs the server; showing a room we are in does not.
            let button = ui.add_enabled(member || connected, Button::new(label));
            let enabled = button.enabled();
            button.widget_info(|| {
                WidgetInfo::labeled(egui::accesskit::Role::Button, enabled, format!("{label} #{room}"))
            });
            if button.clicked() {
                picked = Some(pick);
            }
            ui.with_layout(Layout::left_to_right(Align::Center).with_main_wrap(true), |ui| {
                ui.label(RichText::new(format!("#{room}")).strong());
                ui.label(RichText::new(members_text(listing.members)).weak());
                if listing.invite_only {
                    ui.label(RichText::new(INVITE_ONLY).small().color(ui.visuals().warn_fg_color))
                        .on_hover_text("Joined only by those invited");
                }
            });
        });
    });
    let topic = one_line(&listing.topic);
    if !topic.is_empty() {
        ui.add(Label::new(topic.as_str()).truncate()).on_hover_text(topic);
    }
    ui.separator();
    picked
}
