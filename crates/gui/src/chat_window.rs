//! The signed-in window around the messages: a top bar (who and where, the search field, the theme, signing out), the
//! banner while the connection is down (the countdown and how many messages wait to go out) or stopped for good, the
//! conversations on the left (unread badges, dimmed for a silenced one; joining, leaving; a right click silences one or
//! allows its notifications again), the members on the right (click one for a direct conversation; a right click
//! ignores them or stops), the room's name, our standing in it and its topic above the messages, and the entry box
//! (Enter sends, Shift+Enter starts a new line; slash commands go through the shared model). A message's context menu
//! puts an `/edit` line with its text in the entry box, or a `/delete` line; its Reply puts the entry box in reply mode
//! (a bar above it says to what; Enter sends a reply, × or Escape goes back to plain messages), and its reactions, like
//! the chips under a message, add or take back ours. Clicking a reply's quote scrolls to the message it answers and
//! tints it a moment, fetching older pages until it comes (a notice says so if it never does); so does clicking a
//! search result, in its conversation. While there is a search its results take the members' place (Escape closes them,
//! after a menu, a reply being written or the room browser). The top bar's "Rooms" (or Ctrl+Shift+L) opens the room
//! browser over the window, as a typed `/list` does; a room joined or opened there is shown. Scrolling to the top of
//! the messages fetches older ones, and the messages being read stay where they were when those arrive. In a narrow
//! window the side panes and the search results give the messages their room, as in the terminal client: they become
//! tabs beside the messages, the search field gets a row of its own, and the theme and signing out go into a menu.
//! Against a server of version 6 (see [`crate::awareness`]): the top bar shows one's away message and sets or clears
//! it (the narrow window's menu too), away members are marked, a member's menu asks "Who is this?" (the answer comes
//! as the model's notices in the conversation shown), who is typing is said above the entry box, whose changes are
//! told to the model (it sends the typing notices), and the user's read marker moves while the window has the focus
//! and the messages shown are scrolled to the newest.

use std::collections::HashMap;

use chrono::FixedOffset;
use egui::{Align, Button, Key, KeyboardShortcut, Label, Layout, Modifiers, Panel, RichText, ScrollArea, TextEdit};
use palomar_client::command_line::{self, Typed};
use palomar_client::model::{Action, ChatModel, Status, member_text, standing_text};
use palomar_proto::{Conversation, Nick};

use crate::awareness::{self, AwayDialog};
use crate::certificate::{self, CertificateChange};
use crate::completion::EntryCompletion;
use crate::message_view::{self, Highlight, Picked};
use crate::room_browser::{self, RoomFilter};
use crate::search_panel::{self, Asked, SearchField};
use crate::theme::{self, ThemeChoice};

/// What the window keeps that the model does not: what is being typed, and where each view is scrolled.
#[derive(Debug, Default)]
pub struct ChatWindow {
    /// The entry box.
    pub entry: String,
    /// The "join a room" field.
    pub join: String,
    /// Per conversation: how its message view looked last frame.
    views: HashMap<Conversation, ViewMemory>,
    /// The entry box was given the focus (cleared to give it again, when something is put in it).
    focused: bool,
    /// In a narrow window: what is shown in place of the messages.
    tab: Tab,
    /// Tab completion in the entry box.
    completion: EntryCompletion,
    /// The message a reply's quote (or `/jump`) led to, on its way to being shown.
    jump: Option<Jump>,
    /// The entry box answers this message of this conversation.
    replying: Option<(Conversation, u64)>,
    /// The search field of the top bar.
    search: SearchField,
    /// The model had a search last frame: one that appears is shown.
    searching: bool,
    /// The room browser's filter.
    rooms: RoomFilter,
    /// The dialog that sets one's away message.
    away: AwayDialog,
    /// What the model was last told the entry box holds, and in which conversation: typing notices follow it.
    told: Option<(Conversation, String)>,
    /// The message view of the conversation shown is at its newest message, as laid out in this frame (read markers
    /// follow it).
    at_newest: bool,
}

/// How long the message a reply's quote led to stays tinted, in seconds.
const TINT_SECONDS: f64 = 1.5;

/// Showing message `seq` of `conversation`, the one a clicked quote answers or `/jump` names.
#[derive(Debug, Clone, PartialEq)]
struct Jump {
    conversation: Conversation,
    seq: u64,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Not loaded: older pages are fetched until it comes.
    Fetching,
    /// Loaded: scrolled to in the next frame.
    Scroll,
    /// Scrolled to, and tinted until then (egui's clock, in seconds).
    Tinted { until: f64 },
}

impl ChatWindow {
    /// The message of `conversation` tinted now, and whether it is to be scrolled to.
    fn highlight(&self, conversation: &Conversation) -> Option<Highlight> {
        let jump = self.jump.as_ref().filter(|jump| jump.conversation == *conversation)?;
        match jump.stage {
            Stage::Fetching => None,
            Stage::Scroll => Some(Highlight { seq: jump.seq, scroll: true }),
            Stage::Tinted { .. } => Some(Highlight { seq: jump.seq, scroll: false }),
        }
    }

    /// The message of `conversation` the entry box answers.
    fn replying_in(&self, conversation: &Conversation) -> Option<u64> {
        self.replying.as_ref().filter(|(replying, _)| replying == conversation).map(|(_, seq)| *seq)
    }
}

/// What fills the middle of a window too narrow for the side panes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    #[default]
    Messages,
    Conversations,
    Members,
    /// The search results, when there is no room for them beside the messages.
    Results,
}

/// Below this window width (in points) the conversations are a tab instead of a pane: the messages keep at
/// least about 400 points, enough for a line of ordinary length.
pub const CONVERSATIONS_PANE_MIN_WIDTH: f32 = 620.0;
/// Below this window width the members are a tab instead of a pane.
pub const MEMBERS_PANE_MIN_WIDTH: f32 = 860.0;
/// Below this window width the top bar is shortened: the theme and signing out go into a menu.
pub const FULL_TOP_BAR_MIN_WIDTH: f32 = 760.0;
/// Below this window width the search field has a row of its own under the top bar's: beside the rest it would
/// leave the name of who is signed in no room.
pub const SEARCH_IN_TOP_BAR_MIN_WIDTH: f32 = 1000.0;
/// How wide the search field and its checkbox are in the top bar's row.
const SEARCH_FIELD_WIDTH: f32 = 380.0;

/// A message view as of the last frame.
#[derive(Debug, Clone, Copy)]
struct ViewMemory {
    /// At its top: arriving there fetches older messages.
    at_top: bool,
    /// The oldest message shown: when it changes to an older one, a history page arrived above it.
    oldest_seq: Option<u64>,
    /// The top of its row, from the top of the content.
    oldest_top: Option<f32>,
    /// Where to scroll in the next pass, to keep the reading position after older messages were added.
    restore_offset: Option<f32>,
    /// Older messages were on their way.
    fetching: bool,
}

/// What the user asked for in this frame.
#[derive(Debug, Default)]
pub struct Outcome {
    pub actions: Vec<Action>,
    /// Asked for in a top bar that cannot change the model: done once it is drawn.
    asked: Option<Typed>,
    pub sign_out: bool,
    pub theme_changed: bool,
}

pub fn show(
    ui: &mut egui::Ui,
    window: &mut ChatWindow,
    model: &mut ChatModel,
    offset: FixedOffset,
    theme: &mut ThemeChoice,
) -> Outcome {
    let mut outcome = Outcome::default();
    let width = ui.available_rect_before_wrap().width();
    // The room browser is a dialog over the rest: it goes first, so that an Escape that closes it closes nothing
    // under it.
    outcome.actions.extend(room_browser::open_on_shortcut(ui.ctx(), model));
    outcome.actions.extend(room_browser::ask_when_connected(model));
    let picked = room_browser::show(ui.ctx(), &mut window.rooms, model);
    answer_browser(window, model, picked, &mut outcome);
    if model.rooms.is_none() {
        search_panel::focus_on_shortcut(ui.ctx());
    }
    close_search_on_escape(ui.ctx(), window, model);
    let searching = model.search.is_some();
    let conversations_pane = width >= CONVERSATIONS_PANE_MIN_WIDTH;
    // The results take the members' place: the members are a tab meanwhile.
    let results_pane = searching && width >= MEMBERS_PANE_MIN_WIDTH;
    let members_pane = width >= MEMBERS_PANE_MIN_WIDTH && !searching;
    if searching && !window.searching && !results_pane {
        window.tab = Tab::Results;
    }
    window.searching = searching;
    let tab_hidden = match window.tab {
        Tab::Messages => false,
        Tab::Conversations => conversations_pane,
        Tab::Members => members_pane,
        Tab::Results => results_pane || !searching,
    };
    if tab_hidden {
        window.tab = Tab::Messages;
    }
    let mut search = None;
    let mut browse = false;
    Panel::top("top-bar").show(ui, |ui| {
        let field = (width >= SEARCH_IN_TOP_BAR_MIN_WIDTH).then_some(&mut window.search);
        if width >= FULL_TOP_BAR_MIN_WIDTH {
            search = top_bar(ui, model, theme, field, &mut window.away, &mut browse, &mut outcome);
        } else {
            short_top_bar(ui, model, theme, &mut window.away, &mut browse, &mut outcome);
        }
        if width < SEARCH_IN_TOP_BAR_MIN_WIDTH {
            search = search_panel::field(ui, &mut window.search, ui.available_width());
        }
        search_panel::problem(ui, &window.search);
        if !(conversations_pane && members_pane) {
            tabs(ui, window, model, conversations_pane, members_pane, searching && !results_pane);
        }
    });
    if let Some(typed) = awareness::dialog(ui.ctx(), &mut window.away) {
        outcome.actions.extend(model.apply(typed));
    }
    if browse {
        outcome.actions.extend(room_browser::open(model));
        ui.ctx().request_repaint();
    }
    if let Some(typed) = outcome.asked.take() {
        outcome.actions.extend(model.apply(typed));
    }
    if let Some(typed) = search {
        outcome.actions.extend(model.apply(Typed::Search(Some(typed))));
        // Where the results go is decided at the start of a frame.
        ui.ctx().request_repaint();
    }
    if model.fatal.is_some() || model.retry_in().is_some() || (model.status == Status::Connecting) {
        Panel::top("banner").show_separator_line(false).show(ui, |ui| banner(ui, model, &mut outcome));
    }
    if window.tab == Tab::Messages {
        Panel::bottom("entry").show(ui, |ui| entry(ui, window, model, &mut outcome));
    }
    if conversations_pane {
        Panel::left("conversations")
            .default_size(190.0)
            .size_range(140.0..=360.0)
            .show(ui, |ui| conversations(ui, window, model, &mut outcome));
    }
    if members_pane {
        Panel::right("members")
            .default_size(170.0)
            .size_range(120.0..=320.0)
            .show(ui, |ui| members(ui, model, &mut window.tab, &mut outcome));
    }
    if results_pane {
        // Before the messages: a hit clicked here is the conversation they show in this frame.
        let asked = Panel::right("search-results")
            .default_size(300.0)
            .size_range(220.0..=480.0)
            .show(ui, |ui| search_panel::results(ui, model))
            .inner;
        answer_results(window, model, asked, &mut outcome);
    }
    window.at_newest = false;
    egui::CentralPanel::default().show(ui, |ui| match window.tab {
        Tab::Messages => messages(ui, window, model, offset, &mut outcome),
        Tab::Conversations => conversations(ui, window, model, &mut outcome),
        Tab::Members => members(ui, model, &mut window.tab, &mut outcome),
        Tab::Results => {
            let asked = search_panel::results(ui, model);
            if asked.is_some() {
                ui.ctx().request_repaint();
            }
            answer_results(window, model, asked, &mut outcome);
        }
    });
    tell_entry(window, model, &mut outcome);
    mark_read(ui.ctx(), window, model, &mut outcome);
    outcome
}

/// Tells the model what the entry box holds whenever it changed (typed, emptied by sending, filled from a menu)
/// or the conversation shown did: it sends the typing notices.
fn tell_entry(window: &mut ChatWindow, model: &mut ChatModel, outcome: &mut Outcome) {
    let here = &model.current().id;
    if window.told.as_ref().is_some_and(|(conversation, text)| conversation == here && *text == window.entry) {
        return;
    }
    window.told = Some((here.clone(), window.entry.clone()));
    outcome.actions.extend(model.entry_changed(&window.entry));
}

/// Moves the user's read marker while the window has the focus and the messages shown are scrolled to the newest.
fn mark_read(ctx: &egui::Context, window: &ChatWindow, model: &mut ChatModel, outcome: &mut Outcome) {
    // The platform's word on the window when it gave one (as for alerts), else egui's.
    let focused = ctx.input(|i| i.viewport().focused.unwrap_or(i.focused));
    outcome.actions.extend(model.read_tick(focused, window.at_newest));
    // The model sends a marker at most once a second: newer messages read meanwhile are sent after it, when
    // nothing else may draw a frame. The server's answer moving our marker ends this.
    let conv = model.current();
    let behind = conv.latest_seq().is_some_and(|latest| latest > conv.marker_of(&model.me));
    if focused && window.at_newest && behind && model.knows_awareness() && model.status == Status::Connected {
        ctx.request_repaint_after(std::time::Duration::from_secs(1));
    }
}

/// Escape closes the search results, unless it closes something nearer first: a menu, the reply being written, the
/// room browser or the away dialog.
fn close_search_on_escape(ctx: &egui::Context, window: &ChatWindow, model: &mut ChatModel) {
    let nearer = egui::Popup::is_any_open(ctx)
        || window.replying_in(&model.current().id).is_some()
        || model.rooms.is_some()
        || window.away.open;
    if model.search.is_some() && !nearer && ctx.input(|i| i.key_pressed(Key::Escape)) {
        model.search = None;
    }
}

/// Does what was asked in the search results: a hit is opened where it was said, and the messages are shown
/// in place of the results' tab.
fn answer_results(window: &mut ChatWindow, model: &mut ChatModel, asked: Option<Asked>, outcome: &mut Outcome) {
    match asked {
        Some(Asked::Open(conversation, seq)) => {
            outcome.actions.extend(model.open_at(&conversation, seq));
            if window.tab == Tab::Results {
                window.tab = Tab::Messages;
            }
        }
        Some(Asked::More) => outcome.actions.extend(model.apply(Typed::Search(None))),
        Some(Asked::Close) => model.search = None,
        None => {}
    }
}

/// Does what was picked in the room browser. Joining or opening a room closes it and shows the room (once joined:
/// the model switches to it then), where a refusal to join is said.
fn answer_browser(
    window: &mut ChatWindow,
    model: &mut ChatModel,
    picked: Option<room_browser::Picked>,
    outcome: &mut Outcome,
) {
    let Some(picked) = picked else { return };
    match picked {
        room_browser::Picked::Join(room) => outcome.actions.extend(model.apply(Typed::Join(room))),
        room_browser::Picked::Open(room) => {
            let id = Conversation::Room(room);
            if let Some(index) = model.convs.iter().position(|conv| conv.id == id) {
                model.switch(index);
            }
        }
        room_browser::Picked::More => return outcome.actions.extend(model.more_rooms()),
        room_browser::Picked::Refresh => return outcome.actions.extend(model.list_rooms(None)),
        room_browser::Picked::Close => {}
    }
    model.rooms = None;
    window.tab = Tab::Messages;
    // The entry box has the focus again.
    window.focused = false;
}

/// Who we are, where, and whether connected; the label gives way before anything overlaps.
fn identity(ui: &mut egui::Ui, model: &ChatModel, with_server: bool) {
    let (state, colour) = match model.status {
        Status::Connected => ("connected", theme::ONLINE),
        Status::Connecting => ("connecting…", ui.visuals().warn_fg_color),
        Status::Reconnecting { .. } => ("offline", ui.visuals().warn_fg_color),
        Status::Stopped => ("stopped", ui.visuals().error_fg_color),
    };
    dot(ui, colour, true);
    ui.label(RichText::new(state).color(colour));
    let who = if with_server { format!("{} @ {}", model.me, model.node) } else { model.me.to_string() };
    ui.add(Label::new(who).truncate()).on_hover_text(format!("{} @ {}", model.me, model.node));
}

/// The top bar of a wide window, with the search field when it is given (what it asks for is returned).
fn top_bar(
    ui: &mut egui::Ui,
    model: &ChatModel,
    theme: &mut ThemeChoice,
    search: Option<&mut SearchField>,
    away: &mut AwayDialog,
    browse: &mut bool,
    outcome: &mut Outcome,
) -> Option<command_line::SearchTyped> {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Palomar").strong());
        ui.separator();
        *browse = rooms_button(ui);
        ui.separator();
        let asked = search.and_then(|search| {
            let asked = search_panel::field(ui, search, SEARCH_FIELD_WIDTH);
            ui.separator();
            asked
        });
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button("Sign out").clicked() {
                outcome.sign_out = true;
            }
            ui.separator();
            outcome.theme_changed = theme::picker(ui, theme);
            ui.separator();
            if let Some(typed) = awareness::top_bar(ui, model, away) {
                outcome.asked = Some(typed);
            }
            if model.knows_awareness() {
                ui.separator();
            }
            ui.with_layout(Layout::left_to_right(Align::Center), |ui| identity(ui, model, true));
        });
        asked
    })
    .inner
}

/// The top bar of a narrow window: the theme and signing out in a menu, the server's address on hover.
fn short_top_bar(
    ui: &mut egui::Ui,
    model: &ChatModel,
    theme: &mut ThemeChoice,
    away: &mut AwayDialog,
    browse: &mut bool,
    outcome: &mut Outcome,
) {
    ui.horizontal(|ui| {
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            ui.menu_button("Menu", |ui| {
                if let Some(typed) = awareness::menu_entries(ui, model, away) {
                    outcome.asked = Some(typed);
                }
                outcome.theme_changed = theme::picker(ui, theme);
                ui.separator();
                if ui.button("Sign out").clicked() {
                    outcome.sign_out = true;
                }
            });
            *browse = rooms_button(ui);
            ui.with_layout(Layout::left_to_right(Align::Center), |ui| identity(ui, model, false));
        });
    });
}

/// The button that opens the room browser; whether it was clicked.
fn rooms_button(ui: &mut egui::Ui) -> bool {
    ui.button(room_browser::OPEN).on_hover_text("Find rooms to join (Ctrl+Shift+L)").clicked()
}

/// The tabs of a narrow window: the messages, whichever side pane has no room, and the search results when they
/// are not beside the messages; the conversations tab counts what is unread elsewhere, so activity is never out
/// of sight.
fn tabs(
    ui: &mut egui::Ui,
    window: &mut ChatWindow,
    model: &ChatModel,
    conversations_pane: bool,
    members_pane: bool,
    results_tab: bool,
) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut window.tab, Tab::Messages, model.current().id.to_string());
        if !conversations_pane {
            let unread: usize = model.convs.iter().map(|conv| conv.unread).sum();
            let label = if unread > 0 { format!("Conversations ({unread})") } else { "Conversations".to_owned() };
            ui.selectable_value(&mut window.tab, Tab::Conversations, label);
        }
        if !members_pane {
            ui.selectable_value(&mut window.tab, Tab::Members, "Members");
        }
        if results_tab {
            ui.selectable_value(&mut window.tab, Tab::Results, search_panel::RESULTS_TAB);
        }
    });
}

fn banner(ui: &mut egui::Ui, model: &ChatModel, outcome: &mut Outcome) {
    let dark = ui.visuals().dark_mode;
    if let Some(message) = &model.fatal {
        if model.certificate_changed {
            let change = CertificateChange::new(model.server.clone(), message.clone());
            // A small window must not lose the way out below the warning: it scrolls.
            ScrollArea::vertical()
                .id_salt("changed-certificate")
                .max_height(ui.ctx().content_rect().height() * 0.5)
                .show(ui, |ui| {
                    certificate::changed_warning(ui, &change, false);
                    ui.label("Back on the sign-in form you can trust the new certificate once you have checked it.");
                });
        } else {
            egui::Frame::new().fill(theme::danger_fill(dark)).inner_margin(10.0).corner_radius(6.0).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new("Disconnected for good").strong().color(ui.visuals().error_fg_color));
                ui.label(message);
            });
        }
        ui.add_space(4.0);
        if ui.button("Back to sign in").clicked() {
            outcome.sign_out = true;
        }
        ui.add_space(4.0);
        return;
    }
    let headline = match model.retry_in() {
        Some((seconds, attempt)) => format!("Reconnecting in {seconds} s (attempt {attempt})"),
        None => "Reconnecting…".to_owned(),
    };
    let waiting = match model.pending {
        0 => "nothing is waiting to go out".to_owned(),
        1 => "1 message waiting to go out".to_owned(),
        n => format!("{n} messages waiting to go out"),
    };
    egui::Frame::new().fill(theme::banner_fill(dark)).inner_margin(8.0).corner_radius(6.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(headline).strong());
            ui.label("·");
            ui.label(waiting);
        });
        ui.label(RichText::new("What you type is kept and sent once the connection is back.").small());
    });
    ui.add_space(4.0);
}

fn conversations(ui: &mut egui::Ui, window: &mut ChatWindow, model: &mut ChatModel, outcome: &mut Outcome) {
    ui.add_space(4.0);
    ui.heading("Conversations");
    ui.add_space(4.0);
    let mut chosen = None;
    let mut silence = None;
    ScrollArea::vertical()
        .id_salt("conversation-list")
        .auto_shrink([false, true])
        .max_height(ui.available_height() - 150.0)
        .show(ui, |ui| {
            for (index, conv) in model.convs.iter().enumerate() {
                let silenced = model.is_silenced(&conv.id);
                ui.horizontal(|ui| {
                    let name = RichText::new(conv.id.to_string());
                    let name = if conv.unread > 0 { name.strong() } else { name };
                    let response = ui.selectable_label(index == model.current, name);
                    if response.clicked() {
                        chosen = Some(index);
                    }
                    response.context_menu(|ui| {
                        let (label, on) =
                            if silenced { ("Allow notifications", false) } else { ("Silence notifications", true) };
                        if ui.button(label).clicked() {
                            silence = Some((conv.id.clone(), on));
                        }
                    });
                    if conv.unread > 0 {
                        badge(ui, conv.unread, conv.mentioned, silenced);
                    }
                });
            }
        });
    if let Some(index) = chosen {
        model.switch(index);
        window.focused = false;
        window.tab = Tab::Messages;
    }
    if let Some((conv, on)) = silence {
        outcome.actions.extend(model.apply(Typed::Silence { conv: Some(conv), on }));
    }
    ui.separator();
    let label = ui.label("Join a room");
    let field = ui.add(TextEdit::singleline(&mut window.join).hint_text("room name").desired_width(f32::INFINITY));
    let field = field.labelled_by(label.id);
    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
    if (ui.button("Join").clicked() || entered) && !window.join.trim().is_empty() {
        let line = format!("/join {}", window.join.trim());
        window.join.clear();
        window.tab = Tab::Messages;
        outcome.actions.extend(model.submit(&line));
    }
    ui.add_space(6.0);
    match &model.current().id {
        Conversation::Room(room) if room.as_str() != palomar_proto::RoomName::LOBBY => {
            if ui.button(format!("Leave #{room}")).clicked() {
                outcome.actions.extend(model.apply(Typed::Leave(None)));
            }
        }
        Conversation::Direct(peer) => {
            if ui.button(format!("Close @{peer}")).clicked() {
                model.close_current();
            }
        }
        Conversation::Room(_) => {}
    }
}

/// The unread count, `@` in front when one of them mentions us; a silenced conversation's is dimmed, as it
/// never calls for attention.
fn badge(ui: &mut egui::Ui, unread: usize, mentioned: bool, silenced: bool) {
    let text = if mentioned { format!("@{unread}") } else { unread.to_string() };
    let (fill, colour) = badge_colours(ui.visuals(), mentioned, silenced);
    egui::Frame::new().fill(fill).inner_margin(egui::Margin::symmetric(6, 1)).corner_radius(8.0).show(ui, |ui| {
        ui.label(RichText::new(text).small().strong().color(colour));
    });
}

/// A badge's fill and text colour.
fn badge_colours(visuals: &egui::Visuals, mentioned: bool, silenced: bool) -> (egui::Color32, egui::Color32) {
    match (silenced, mentioned) {
        (true, _) => (visuals.faint_bg_color, visuals.weak_text_color()),
        (false, true) => (visuals.warn_fg_color, egui::Color32::WHITE),
        (false, false) => (visuals.selection.bg_fill, egui::Color32::WHITE),
    }
}

/// The members of the conversation shown, online first. While the connection is down nobody's presence is
/// known (it may have changed unseen): the last known names are listed greyed, under one heading that says so.
fn members(ui: &mut egui::Ui, model: &mut ChatModel, tab: &mut Tab, outcome: &mut Outcome) {
    ui.add_space(4.0);
    ui.heading("Members");
    ui.add_space(4.0);
    let dark = ui.visuals().dark_mode;
    let known = model.members_known();
    let mut picked = None;
    let conv = model.current();
    let (online, offline): (Vec<Nick>, Vec<Nick>) = match &conv.id {
        Conversation::Room(_) => (conv.online.iter().cloned().collect(), conv.offline.iter().cloned().collect()),
        Conversation::Direct(peer) => (vec![model.me.clone(), peer.clone()], Vec::new()),
    };
    ScrollArea::vertical().id_salt("member-list").auto_shrink([false, false]).show(ui, |ui| {
        if !known {
            ui.label(RichText::new(UNKNOWN_MEMBERS).small().weak());
            let mut everyone: Vec<&Nick> = online.iter().chain(&offline).collect();
            everyone.sort();
            for nick in everyone {
                member(ui, nick, RichText::new(nick.as_str()).weak(), Presence::Unknown, model, &mut picked);
            }
            return;
        }
        if !online.is_empty() {
            ui.label(RichText::new(format!("Online — {}", online.len())).small().weak());
        }
        for nick in &online {
            let text = RichText::new(nick.as_str()).color(theme::nick_colour(nick, dark));
            member(ui, nick, text, Presence::Online, model, &mut picked);
        }
        if !offline.is_empty() {
            ui.add_space(6.0);
            ui.label(RichText::new(format!("Offline — {}", offline.len())).small().weak());
        }
        for nick in &offline {
            member(ui, nick, RichText::new(nick.as_str()).weak(), Presence::Offline, model, &mut picked);
        }
    });
    if let Some(typed) = picked {
        // A direct conversation opened, and the answer to "Who is this?", are among the messages.
        if matches!(typed, Typed::Msg { .. } | Typed::Whois(_)) {
            *tab = Tab::Messages;
        }
        outcome.actions.extend(model.apply(typed));
    }
}

/// A member's menu entry that asks the server who they are (`/whois`): the answer comes as notices.
pub const WHOIS: &str = "Who is this?";

/// The heading of the member list while the connection is down.
pub const UNKNOWN_MEMBERS: &str = "Members unknown while disconnected";

/// What the member list can say of someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Online,
    Offline,
    Unknown,
}

/// One member: a dot (filled when online, none when unknown) and the nickname, a button that opens the direct
/// conversation, with a menu to ask who they are (against a server that answers) and to ignore them or no longer
/// (`picked`: what was asked for). Someone away is dimmed, with a small "away" mark; their message on hover.
fn member(
    ui: &mut egui::Ui,
    nick: &Nick,
    text: RichText,
    presence: Presence,
    model: &ChatModel,
    picked: &mut Option<Typed>,
) {
    ui.horizontal(|ui| {
        match presence {
            Presence::Online => dot(ui, theme::ONLINE, true),
            Presence::Offline => dot(ui, ui.visuals().weak_text_color(), false),
            Presence::Unknown => dot(ui, egui::Color32::TRANSPARENT, false),
        }
        let away = if *nick == model.me { model.own_away() } else { model.away_of(nick) };
        // Dimmed, in its own colour faded: a colour given to a text wins over `weak`.
        let text = match away {
            Some(_) => RichText::new(nick.as_str()).color(theme::away_nick_colour(nick, ui.visuals().dark_mode)),
            None => text,
        };
        if *nick == model.me {
            let hover = away.map_or_else(|| "you".to_owned(), |message| format!("you, away: {message}"));
            ui.label(text).on_hover_text(hover);
            if let Some(message) = away {
                awareness::away_mark(ui, message);
            }
            return;
        }
        let hover = match away {
            Some(_) => format!("{}\nDirect message to {nick}", member_text(nick, away)),
            None => format!("Direct message to {nick}"),
        };
        let response = ui.add(Button::new(text).frame(false)).on_hover_text(hover);
        if let Some(message) = away {
            awareness::away_mark(ui, message);
        }
        if response.clicked() {
            *picked = Some(Typed::Msg { to: nick.clone(), text: None });
        }
        response.context_menu(|ui| {
            if model.knows_awareness() && ui.button(WHOIS).clicked() {
                *picked = Some(Typed::Whois(nick.clone()));
            }
            let (label, typed) = if model.is_ignored(nick) {
                ("Stop ignoring", Typed::Unignore(nick.clone()))
            } else {
                ("Ignore", Typed::Ignore(Some(nick.clone())))
            };
            if ui.button(label).clicked() {
                *picked = Some(typed);
            }
        });
    });
}

/// A small round mark, drawn rather than typed: no font has to carry the glyph.
fn dot(ui: &mut egui::Ui, colour: egui::Color32, filled: bool) {
    let size = ui.text_style_height(&egui::TextStyle::Body) * 0.5;
    let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
    let radius = size * 0.45;
    if filled {
        ui.painter().circle_filled(rect.center(), radius, colour);
    } else {
        ui.painter().circle_stroke(rect.center(), radius, egui::Stroke::new(1.2, colour));
    }
}

fn messages(
    ui: &mut egui::Ui,
    window: &mut ChatWindow,
    model: &mut ChatModel,
    offset: FixedOffset,
    outcome: &mut Outcome,
) {
    let conv = model.current();
    let id = conv.id.clone();
    ui.horizontal(|ui| {
        ui.heading(id.to_string());
        // Our standing (a moderator, muted, ...) and the room's settings, beside its name: they decide what we may do.
        if let Some(standing) = conv.room_state.as_ref().and_then(standing_text) {
            ui.label(RichText::new(standing).weak());
        }
    });
    if let Some(topic) = conv.topic() {
        ui.add(Label::new(topic).wrap());
    }
    ui.separator();
    let mut load_older = false;
    let previous = window.views.get(&id).copied();
    // Scrolling to a message (a quote's original) is done at once: in egui 0.37 an animated one is pulled back to
    // the end, in its second frame, by a view that sticks to the bottom.
    let mut area = ScrollArea::vertical()
        .id_salt(("messages", id.to_string()))
        .stick_to_bottom(true)
        .animated(false)
        .auto_shrink([false, false]);
    if let Some(offset) = previous.and_then(|view| view.restore_offset) {
        area = area.vertical_scroll_offset(offset);
    }
    let anchor = previous.and_then(|view| view.oldest_seq);
    let fetching = conv.is_fetching_history();
    let highlight = window.highlight(&id);
    let output = area.show(ui, |ui| {
        let content_top = ui.cursor().top();
        if fetching {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("Loading older messages…").weak());
            });
        } else if !conv.history_done && model.status == Status::Connected {
            load_older = ui.small_button("Load older messages").clicked();
        } else if conv.history_done && !conv.entries.is_empty() {
            ui.label(RichText::new("This is the beginning of the conversation.").small().weak());
        }
        let tops = message_view::show(ui, conv, model, offset, anchor, highlight);
        let from_content_top = |top: Option<f32>| top.map(|top| top - content_top);
        (from_content_top(tops.anchor), from_content_top(tops.oldest), tops.picked)
    });
    let (anchor_top, oldest_top, picked) = output.inner;
    let oldest_seq = conv.oldest_seq();
    let mut offset_y = output.state.clamped_offset().y;
    let mut restore_offset = None;
    // Older messages were put above what is being read: scroll down by as far as the message that was the
    // oldest moved, in a pass of this frame that replaces the one just laid out (so the jump is never
    // drawn), or else the next frame. What arrives below it at the same time moves nothing.
    if let Some(previous) = previous
        && oldest_seq < previous.oldest_seq
        && let (Some(was), Some(now)) = (previous.oldest_top, anchor_top)
        && now > was
    {
        offset_y += now - was;
        restore_offset = Some(offset_y);
        ui.ctx().request_discard("older messages were added above the reading position");
        ui.ctx().request_repaint();
    }
    let at_top = offset_y <= 1.0;
    let scrollable = output.content_size.y > output.inner_rect.height();
    // Older messages put above move what is read down: not at the newest before that is done.
    window.at_newest = !scrollable
        || (offset_y + output.inner_rect.height() >= output.content_size.y - 1.0 && restore_offset.is_none());
    let was_at_top = previous.is_none_or(|view| view.at_top);
    // A page asked for before the user reached the top (the first one, asked at sign-in) may bring nothing
    // older; a user waiting at the top then gets the page before, without leaving the top and coming back.
    let answered_with_nothing_older =
        previous.is_some_and(|view| view.at_top && view.fetching && !fetching && view.oldest_seq == oldest_seq);
    window.views.insert(id.clone(), ViewMemory { at_top, oldest_seq, oldest_top, restore_offset, fetching });
    // Arriving at the top fetches the page before it; a view that cannot scroll yet fills itself.
    let fetch =
        load_older || (at_top && (!was_at_top || answered_with_nothing_older)) || (!scrollable && !conv.history_done);
    if fetch && model.status == Status::Connected {
        outcome.actions.extend(model.fetch_older());
    }
    // An edit or a deletion goes into the entry box as a command, sent with Enter like any other or left by
    // clearing it: an edit with the old text to change, a deletion waiting for a reason (a moderator's is shown to
    // the room) and for the Enter that confirms it, as the browser client does.
    match picked {
        Some(Picked::Edit { seq, text }) => {
            window.entry = format!("/edit #{seq} {text}");
            window.focused = false;
        }
        Some(Picked::Delete { seq }) => {
            window.entry = format!("/delete #{seq} ");
            window.focused = false;
        }
        Some(Picked::Reply { seq }) => {
            window.replying = Some((id.clone(), seq));
            window.focused = false;
        }
        Some(Picked::React { seq, emoji }) => {
            // Toggles: the model takes ours back if we have it.
            outcome.actions.extend(model.apply(Typed::React { of: Some(seq), emoji, take_back: false }));
        }
        Some(Picked::Quoted { of }) => {
            let stage = if model.current().message(of).is_some() { Stage::Scroll } else { Stage::Fetching };
            window.jump = Some(Jump { conversation: id.clone(), seq: of, stage });
        }
        None => {}
    }
    // `/jump #SEQ`: the model has the message loaded by now (it fetched older pages itself, or said why not).
    if let Some(seq) = model.take_jump() {
        window.jump = Some(Jump { conversation: id, seq, stage: Stage::Scroll });
    }
    let scrolled = highlight.is_some_and(|highlight| highlight.scroll);
    follow_jump(ui.ctx(), window, model, scrolled, outcome);
}

/// Takes the message a quote led to a step further, in the conversation shown: fetches the page before while it
/// is not loaded (a notice says when it cannot come), has it scrolled to once it is (`scrolled`: this frame
/// did), and ends its tint.
fn follow_jump(
    ctx: &egui::Context,
    window: &mut ChatWindow,
    model: &mut ChatModel,
    scrolled: bool,
    outcome: &mut Outcome,
) {
    let conv = model.current();
    let Some(jump) = window.jump.as_mut().filter(|jump| jump.conversation == conv.id) else { return };
    let now = ctx.input(|i| i.time);
    match jump.stage {
        Stage::Fetching if conv.message(jump.seq).is_some() => {
            jump.stage = Stage::Scroll;
            ctx.request_repaint();
        }
        Stage::Fetching if conv.is_fetching_history() => {}
        Stage::Fetching => {
            let seq = jump.seq;
            // Older than every message here and more to fetch: the page before may have it.
            let older = conv.oldest_seq().is_none_or(|oldest| seq < oldest) && !conv.history_done;
            let why = if !older {
                format!("#{seq}, the message this answers, is not in the history kept here")
            } else if model.status != Status::Connected {
                format!(
                    "#{seq}, the message this answers, is older than those loaded; it can be fetched once connected"
                )
            } else {
                outcome.actions.extend(model.fetch_older());
                return;
            };
            window.jump = None;
            model.notice_here(why, false);
        }
        Stage::Scroll if scrolled => {
            jump.stage = Stage::Tinted { until: now + TINT_SECONDS };
            ctx.request_repaint_after_secs(TINT_SECONDS as f32);
        }
        Stage::Scroll => ctx.request_repaint(),
        Stage::Tinted { until } if now >= until => {
            window.jump = None;
            ctx.request_repaint();
        }
        Stage::Tinted { until } => ctx.request_repaint_after_secs((until - now) as f32),
    }
}

fn entry(ui: &mut egui::Ui, window: &mut ChatWindow, model: &mut ChatModel, outcome: &mut Outcome) {
    ui.add_space(6.0);
    let hint = format!(
        "Message {} (Enter sends, Shift+Enter starts a new line, Tab completes, /help lists commands)",
        model.current().id
    );
    let mut send = false;
    awareness::typing_line(ui, model);
    let replying = window.replying_in(&model.current().id);
    if let Some(seq) = replying {
        let quote = message_view::quoted(seq, &model.current().quote(seq));
        // The × at the right end, the quote cut where it begins.
        ui.horizontal(|ui| {
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.small_button("×").on_hover_text("Cancel the reply (Escape)").clicked() {
                    window.replying = None;
                    window.focused = false;
                }
                ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                    ui.add(Label::new(RichText::new(format!("Replying to {quote}")).weak()).truncate());
                });
            });
        });
    }
    ui.horizontal(|ui| {
        let button_width = 70.0;
        let id = egui::Id::unique("entry");
        window.completion.on_tab(ui, id, &mut window.entry, model);
        let edit = TextEdit::multiline(&mut window.entry)
            .id(id)
            .lock_focus(true)
            .hint_text(hint)
            .desired_rows(2)
            .desired_width(ui.available_width() - button_width - ui.spacing().item_spacing.x)
            .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter));
        let response = ui.add(edit);
        if !window.focused {
            window.focused = true;
            response.request_focus();
        }
        let enter = ui.input(|i| {
            i.events.iter().any(|event| {
                matches!(event, egui::Event::Key { key: Key::Enter, pressed: true, modifiers, .. } if !modifiers.shift)
            })
        });
        send = response.has_focus() && enter;
        let escape = ui.input(|i| i.key_pressed(Key::Escape));
        if replying.is_some() && escape && (response.has_focus() || response.lost_focus()) {
            window.replying = None;
            window.focused = false;
        }
        let button = ui.add_sized([button_width, 28.0], Button::new("Send"));
        if button.clicked() {
            send = true;
            response.request_focus();
        }
    });
    ui.add_space(6.0);
    if send {
        let line = std::mem::take(&mut window.entry);
        // In reply mode a message is a reply; a command is still a command.
        match (window.replying_in(&model.current().id), command_line::parse(&line)) {
            (Some(of), Ok(Some(Typed::Text(text)))) => {
                window.replying = None;
                outcome.actions.extend(model.apply(Typed::Reply { of: Some(of), text }));
            }
            _ => outcome.actions.extend(model.submit(&line)),
        }
    }
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{AccessKitNode, NodeT, Queryable};
    use palomar_client::{Command, Event};
    use palomar_proto::{
        ConversationInfo, ErrorCode, HistoryPage, Message, MessageId, MessageKind, Revision, RoomListing, RoomName,
    };

    use super::*;
    use crate::room_browser::{EMPTY, FILTER_HINT, LOAD_MORE, NOT_CONNECTED, OPEN, REFRESH};
    use crate::search_panel::{CLOSE, FIELD_HINT, HERE_ONLY, MORE, RESULTS, RESULTS_TAB};

    fn nick(name: &str) -> Nick {
        Nick::parse(name).expect("valid")
    }

    fn lobby() -> Conversation {
        Conversation::Room(RoomName::lobby())
    }

    fn message(seq: u64, from: &str, kind: MessageKind, text: &str) -> Message {
        Message {
            conversation: lobby(),
            seq,
            id: MessageId([seq as u8; 16]),
            from: nick(from),
            ts: 50_400_000 + seq,
            text: text.into(),
            kind,
            revision: Revision::Original,
        }
    }

    /// Bob's messages `seqs` ("message N"), then `more`, as the page that answers the request made when ana
    /// connected, with more history before it.
    fn connected(seqs: std::ops::RangeInclusive<u64>, more: Vec<Message>) -> ChatModel {
        connected_to(palomar_proto::PROTOCOL_VERSION, seqs, more)
    }

    /// As [`connected`], to a server of protocol `version`.
    fn connected_to(version: u16, seqs: std::ops::RangeInclusive<u64>, more: Vec<Message>) -> ChatModel {
        let mut model = ChatModel::new(nick("ana"), "127.0.0.1:5555".into());
        let info = ConversationInfo { conversation: lobby(), latest_seq: 1000, first_seq: 1 };
        model.on_engine(Event::Connected {
            server: "127.0.0.1:5555".into(),
            nick: nick("ana"),
            registered: true,
            conversations: vec![info],
            version,
        });
        let mut messages: Vec<Message> =
            seqs.map(|seq| message(seq, "bob", MessageKind::Text, &format!("message {seq}"))).collect();
        messages.extend(more);
        model.on_engine(Event::History(HistoryPage { conversation: lobby(), messages, complete_from: 1 }));
        model
    }

    struct State {
        window: ChatWindow,
        model: ChatModel,
        actions: Vec<Action>,
        theme: ThemeChoice,
    }

    fn harness(model: ChatModel) -> Harness<'static, State> {
        harness_sized(model, [1000.0, 500.0])
    }

    fn harness_sized(model: ChatModel, size: [f32; 2]) -> Harness<'static, State> {
        let state = State { window: ChatWindow::default(), model, actions: Vec::new(), theme: ThemeChoice::Light };
        Harness::builder().with_size(size).build_ui_state(
            |ui, state: &mut State| {
                let utc = FixedOffset::east_opt(0).expect("UTC");
                let outcome = show(ui, &mut state.window, &mut state.model, utc, &mut state.theme);
                state.actions.extend(outcome.actions);
            },
            state,
        )
    }

    fn steps(harness: &mut Harness<'_, State>, count: usize) {
        for _ in 0..count {
            harness.step();
        }
    }

    fn highlighted(harness: &Harness<'_, State>) -> Option<u64> {
        harness.state().window.highlight(&lobby()).map(|highlight| highlight.seq)
    }

    /// The engine commands asked for since last taken.
    fn sent(harness: &mut Harness<'_, State>) -> Vec<Command> {
        std::mem::take(&mut harness.state_mut().actions)
            .into_iter()
            .filter_map(|action| if let Action::Engine(command) = action { Some(command) } else { None })
            .collect()
    }

    /// The messages and reactions sent since last taken, as (to, kind, text).
    fn posted(harness: &mut Harness<'_, State>) -> Vec<(Conversation, MessageKind, String)> {
        sent(harness)
            .into_iter()
            .filter_map(|command| match command {
                Command::Send { to, kind, text } => Some((to, kind, text)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_quote_scrolls_to_the_message_it_answers_and_tints_it_a_moment() {
        let reply = message(61, "carol", MessageKind::Reply { of: 2 }, "yes, that");
        let mut harness = harness(connected(1..=60, vec![reply]));
        steps(&mut harness, 3);
        assert!(harness.get_by_label("message 2").rect().bottom() < 0.0, "the original is far above");
        harness.get_by_label("↪ bob: message 2").click();
        steps(&mut harness, 3);
        assert_eq!(highlighted(&harness), Some(2));
        let shown = harness.get_by_label("message 2").rect();
        assert!(shown.top() > 0.0 && shown.bottom() < 500.0, "scrolled into view: {shown:?}");
        steps(&mut harness, 8);
        assert_eq!(highlighted(&harness), None, "the tint goes after a moment");
        assert!(harness.get_by_label("message 2").rect().top() > 0.0, "and the view stays there");
    }

    #[test]
    fn slash_jump_scrolls_to_the_message_and_tints_it_a_moment() {
        let mut harness = harness(connected(1..=60, Vec::new()));
        steps(&mut harness, 3);
        assert!(harness.get_by_label("message 2").rect().bottom() < 0.0, "the message is far above");
        harness.state_mut().window.entry = "/jump #2".into();
        harness.get_by_label("Send").click();
        steps(&mut harness, 4);
        assert_eq!(highlighted(&harness), Some(2));
        let shown = harness.get_by_label("message 2").rect();
        assert!(shown.top() > 0.0 && shown.bottom() < 500.0, "scrolled into view: {shown:?}");
    }

    /// Bob's messages 1 to 9 ("message N") arrive: the page before a view that starts at 10.
    fn first_page_arrives(harness: &mut Harness<'_, State>) {
        let older = (1..=9).map(|seq| message(seq, "bob", MessageKind::Text, &format!("message {seq}"))).collect();
        let page = HistoryPage { conversation: lobby(), messages: older, complete_from: 1 };
        harness.state_mut().model.on_engine(Event::History(page));
        steps(harness, 3);
    }

    #[test]
    fn a_quote_of_a_message_not_loaded_fetches_older_pages_until_it_comes_or_says_it_will_not() {
        let reply = |seq| message(seq, "carol", MessageKind::Reply { of: 3 }, "as said above");
        let mut harness = harness(connected(10..=80, vec![reply(81)]));
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_label("↪ #3").click();
        steps(&mut harness, 2);
        let asked = sent(&mut harness);
        assert!(matches!(asked[..], [Command::History { before: Some(10), .. }]), "the page before: {asked:?}");
        assert_eq!(highlighted(&harness), None, "nothing to show yet");
        first_page_arrives(&mut harness);
        assert_eq!(highlighted(&harness), Some(3), "shown once it came");
        assert!(harness.query_by_label("↪ bob: message 3").is_some(), "and quoted");

        let mut harness = self::harness(connected(10..=80, vec![reply(81)]));
        steps(&mut harness, 3);
        harness.get_by_label("↪ #3").click();
        steps(&mut harness, 2);
        let nothing = HistoryPage { conversation: lobby(), messages: Vec::new(), complete_from: 10 };
        harness.state_mut().model.on_engine(Event::History(nothing));
        steps(&mut harness, 3);
        assert!(harness.query_by_label("#3, the message this answers, is not in the history kept here").is_some());
        assert_eq!(harness.state().window.jump, None);
    }

    #[test]
    fn a_chip_toggles_our_reaction_and_the_menu_replies_in_a_bar_and_reacts() {
        let reactions = vec![
            message(3, "bob", MessageKind::Reaction { of: 1, added: true }, "👍"),
            message(4, "ana", MessageKind::Reaction { of: 1, added: true }, "👍"),
        ];
        let mut harness = harness(connected(1..=2, reactions));
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_label("👍 2").click();
        steps(&mut harness, 2);
        let take_back = (lobby(), MessageKind::Reaction { of: 1, added: false }, "👍".to_owned());
        assert_eq!(posted(&mut harness), [take_back], "ours is taken back");

        harness.get_by_label("message 2").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("🎉").click();
        steps(&mut harness, 2);
        let add = (lobby(), MessageKind::Reaction { of: 2, added: true }, "🎉".to_owned());
        assert_eq!(posted(&mut harness), [add]);

        harness.get_by_label("message 1").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("Reply").click();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Replying to bob: message 1").is_some(), "the bar says to what");
        let is_entry = |node: &egui_kittest::kittest::AccessKitNode<'_>| {
            node.data().placeholder().is_some_and(|hint| hint.starts_with("Message "))
        };
        harness.get_by(is_entry).focus();
        steps(&mut harness, 1);
        harness.get_by(is_entry).type_text("sure");
        steps(&mut harness, 1);
        harness.key_press(Key::Enter);
        steps(&mut harness, 2);
        let reply = (lobby(), MessageKind::Reply { of: 1 }, "sure".to_owned());
        assert_eq!(posted(&mut harness), [reply]);
        assert!(harness.query_by_label_contains("Replying to").is_none(), "the bar goes once the reply is sent");

        harness.get_by_label("message 2").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("Reply").click();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Replying to bob: message 2").is_some());
        harness.key_press(Key::Escape);
        steps(&mut harness, 2);
        assert!(harness.query_by_label_contains("Replying to").is_none(), "Escape cancels");
        harness.get_by_label("message 2").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("Reply").click();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Replying to bob: message 2").is_some());
        harness.get_by_label("×").hover();
        steps(&mut harness, 1);
        harness.get_by_label("×").click();
        steps(&mut harness, 2);
        assert!(harness.query_by_label_contains("Replying to").is_none(), "so does ×");
        harness.get_by(is_entry).focus();
        steps(&mut harness, 1);
        harness.get_by(is_entry).type_text("just a message");
        steps(&mut harness, 1);
        harness.key_press(Key::Enter);
        steps(&mut harness, 2);
        let plain = (lobby(), MessageKind::Text, "just a message".to_owned());
        assert_eq!(posted(&mut harness), [plain]);
    }

    /// Ana in a direct conversation with carol, and bob's message unread in the lobby.
    fn with_lobby_unread() -> ChatModel {
        let mut model = connected(1..=1, Vec::new());
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        model.on_engine(Event::Message { message: message(2, "bob", MessageKind::Text, "message 2"), own: false });
        model
    }

    /// The colour `text` was drawn in last frame.
    fn colour_of(harness: &Harness<'_, State>, text: &str) -> Option<egui::Color32> {
        harness.output().shapes.iter().find_map(|clipped| match &clipped.shape {
            egui::Shape::Text(shape) if shape.galley.text() == text => {
                shape.galley.job.sections.first().map(|section| section.format.color)
            }
            _ => None,
        })
    }

    /// Whether the preferences were asked to be saved since last taken.
    fn saved(harness: &mut Harness<'_, State>) -> bool {
        std::mem::take(&mut harness.state_mut().actions).iter().any(|action| matches!(action, Action::SavePreferences))
    }

    #[test]
    fn a_conversation_s_menu_silences_it_and_allows_it_again_and_its_badge_is_dimmed_meanwhile() {
        let mut harness = harness(with_lobby_unread());
        steps(&mut harness, 3);
        assert_eq!(harness.state().model.convs[0].unread, 1);
        let weak = harness.ctx.global_style().visuals.weak_text_color();
        assert_eq!(colour_of(&harness, "1"), Some(egui::Color32::WHITE), "a count that calls for attention");

        harness.get_by_label("#lobby").click_secondary();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Allow notifications").is_none());
        harness.get_by_label("Silence notifications").click();
        steps(&mut harness, 2);
        assert!(harness.state().model.is_silenced(&lobby()));
        assert!(saved(&mut harness), "the choice is saved");
        assert_eq!(colour_of(&harness, "1"), Some(weak), "a silenced count is dimmed");
        assert!(harness.query_by_label("Silence notifications").is_none(), "the menu closed");

        harness.get_by_label("#lobby").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("Allow notifications").click();
        steps(&mut harness, 2);
        assert!(!harness.state().model.is_silenced(&lobby()));
        assert!(saved(&mut harness));
        assert_eq!(colour_of(&harness, "1"), Some(egui::Color32::WHITE), "and no longer dimmed");
    }

    #[test]
    fn a_member_s_menu_ignores_them_and_stops_but_we_have_no_menu() {
        let mut harness = harness(with_lobby_unread());
        steps(&mut harness, 3);
        harness.get_by_label("ana").click_secondary();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Ignore").is_none(), "we cannot ignore ourselves");

        harness.get_by_label("carol").click_secondary();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("Stop ignoring").is_none());
        harness.get_by_label("Ignore").click();
        steps(&mut harness, 2);
        assert!(harness.state().model.is_ignored(&nick("carol")));
        assert!(saved(&mut harness), "the choice is saved");
        assert_eq!(harness.state().model.current().id, Conversation::Direct(nick("carol")), "no conversation opened");

        harness.get_by_label("carol").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label("Stop ignoring").click();
        steps(&mut harness, 2);
        assert!(!harness.state().model.is_ignored(&nick("carol")));
        assert!(saved(&mut harness));
    }

    /// The model as the window sets it up, at 14:00 UTC on the day of the test messages.
    fn searching(mut model: ChatModel) -> ChatModel {
        model.search_as_notices = false;
        model.offset = FixedOffset::east_opt(0).expect("UTC");
        model.clock = || 50_400_000 + 60_000;
        model
    }

    /// The searches sent since last taken, as (query, conversation, before).
    fn searches(harness: &mut Harness<'_, State>) -> Vec<(String, Option<Conversation>, Option<String>)> {
        sent(harness)
            .into_iter()
            .filter_map(|command| match command {
                Command::Search { query, conversation, before } => Some((query, conversation, before)),
                _ => None,
            })
            .collect()
    }

    fn is_field(node: &AccessKitNode<'_>) -> bool {
        node.data().placeholder() == Some(FIELD_HINT)
    }

    /// Types `query` in the search field, reached with Ctrl+F, and presses Enter.
    fn search_for(harness: &mut Harness<'_, State>, query: &str) {
        harness.key_press_modifiers(Modifiers::COMMAND, Key::F);
        steps(harness, 2);
        assert!(harness.get_by(is_field).is_focused(), "Ctrl+F focuses the search field");
        harness.state_mut().window.search.query.clear();
        harness.get_by(is_field).type_text(query);
        steps(harness, 1);
        harness.key_press(Key::Enter);
        steps(harness, 2);
    }

    fn found(harness: &mut Harness<'_, State>, query: &str, hits: Vec<Message>, next: Option<&str>) {
        let next = next.map(str::to_owned);
        harness.state_mut().model.on_engine(Event::Found { query: query.into(), conversation: None, hits, next });
        steps(harness, 2);
    }

    fn hit_row<'a>(harness: &'a Harness<'_, State>, label: &'a str) -> egui_kittest::Node<'a> {
        harness.get_by_role_and_label(Role::Button, label)
    }

    #[test]
    fn the_search_field_searches_everywhere_or_here_and_says_why_words_are_not_searched_for() {
        let mut harness = harness(searching(connected(1..=3, Vec::new())));
        steps(&mut harness, 3);
        sent(&mut harness);
        search_for(&mut harness, " Lunch friday ");
        assert_eq!(searches(&mut harness), [("Lunch friday".into(), None, None)]);
        assert!(harness.query_by_label("Searching for “Lunch friday”…").is_some(), "the results say it is coming");

        harness.get_by_label(HERE_ONLY).click();
        steps(&mut harness, 1);
        search_for(&mut harness, "lunch");
        assert_eq!(searches(&mut harness), [("lunch".into(), Some(lobby()), None)], "the conversation shown");
        harness.get_by_label(HERE_ONLY).click();
        steps(&mut harness, 1);
        search_for(&mut harness, "lunch in:@carol");
        let carol = Conversation::Direct(nick("carol"));
        assert_eq!(searches(&mut harness), [("lunch".into(), Some(carol), None)], "in: as /search reads it");
        search_for(&mut harness, "in:here in:@carol x");
        assert!(harness.query_by_label("one in: at most").is_some(), "said under the field");

        for (query, why) in [("", "search for at least one word"), ("a b c d e f g h i", "search for at most 8 words")]
        {
            search_for(&mut harness, query);
            assert!(searches(&mut harness).is_empty(), "nothing sent for {query:?}");
            assert!(harness.query_by_label(why).is_some(), "{why:?} is said under the field");
        }
        harness.get_by(is_field).focus();
        steps(&mut harness, 1);
        harness.get_by(is_field).type_text("s");
        steps(&mut harness, 2);
        assert!(harness.query_by_label("search for at most 8 words").is_none(), "until the words change");
    }

    #[test]
    fn hits_fill_the_results_newest_first_and_a_click_opens_one_where_it_was_said_tinted() {
        let mut model = searching(connected(1..=60, Vec::new()));
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        let mut harness = harness(model);
        steps(&mut harness, 3);
        search_for(&mut harness, "message");
        sent(&mut harness);
        let hits = vec![
            message(2, "bob", MessageKind::Text, "message 2"),
            message(1, "bob", MessageKind::Action, "sends a message"),
        ];
        found(&mut harness, "message", hits, Some("r1"));
        assert!(harness.query_by_label("2 messages found for “message”").is_some(), "the header's words");
        let (newest, oldest) = ("[1] #lobby  bob  14:00  message 2", "[2] #lobby  bob  14:00  * bob sends a message");
        assert!(hit_row(&harness, newest).rect().bottom() <= hit_row(&harness, oldest).rect().top());
        assert!(hit_row(&harness, newest).rect().left() > 600.0, "beside the messages, in the members' place");
        assert!(harness.query_by_label("Members").is_some(), "the members are a tab meanwhile");

        hit_row(&harness, newest).click();
        steps(&mut harness, 4);
        assert_eq!(harness.state().model.current().id, lobby(), "its conversation is shown");
        assert_eq!(highlighted(&harness), Some(2));
        let shown = harness.get_by_label("message 2").rect();
        assert!(shown.top() > 0.0 && shown.bottom() < 500.0, "scrolled into view: {shown:?}");

        harness.get_by_label(MORE).click();
        steps(&mut harness, 2);
        assert_eq!(searches(&mut harness), [("message".into(), None, Some("r1".into()))], "the older page");
        assert!(harness.query_by_label("searching…").is_some());
        found(&mut harness, "message", vec![message(40, "carol", MessageKind::Text, "old message")], None);
        assert!(harness.query_by_label("3 messages found for “message”").is_some(), "every page together");
        assert!(harness.query_by_role_and_label(Role::Button, "[3] #lobby  carol  14:00  old message").is_some());
        assert!(harness.query_by_label(MORE).is_none(), "nothing older to find");

        harness.key_press(Key::Escape);
        steps(&mut harness, 2);
        assert_eq!(harness.state().model.search, None, "Escape closes the results");
        assert!(harness.query_by_label(RESULTS).is_none());
    }

    #[test]
    fn a_hit_not_loaded_is_fetched_and_a_refusal_is_said_in_the_results() {
        let mut harness = harness(searching(connected(10..=80, Vec::new())));
        steps(&mut harness, 3);
        search_for(&mut harness, "message");
        sent(&mut harness);
        found(&mut harness, "message", vec![message(3, "bob", MessageKind::Text, "message 3")], None);
        hit_row(&harness, "[1] #lobby  bob  14:00  message 3").click();
        steps(&mut harness, 2);
        let asked = sent(&mut harness);
        assert!(matches!(asked[..], [Command::History { before: Some(10), .. }]), "the pages before: {asked:?}");
        first_page_arrives(&mut harness);
        assert_eq!(highlighted(&harness), Some(3), "shown once it came");
        harness.get_by_label(CLOSE).click();
        steps(&mut harness, 2);
        assert_eq!(harness.state().model.search, None, "the close button closes the results");

        search_for(&mut harness, "message");
        let refusal = "search for at most 8 words";
        harness.state_mut().model.on_engine(Event::Error {
            code: Some(ErrorCode::InvalidText),
            message: refusal.into(),
            id: None,
        });
        steps(&mut harness, 2);
        assert!(
            harness.query_all_by_label(refusal).any(|node| node.rect().left() > 600.0),
            "said in the results, at the right"
        );
        assert!(harness.query_by_label_contains("found for").is_none(), "with no header to mislead");
    }

    #[test]
    fn in_a_narrow_window_the_results_are_a_tab_that_a_click_on_a_hit_leaves() {
        let mut model = searching(connected(1..=60, Vec::new()));
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        let mut harness = harness_sized(model, [480.0, 500.0]);
        steps(&mut harness, 3);
        search_for(&mut harness, "message");
        found(&mut harness, "message", vec![message(2, "bob", MessageKind::Text, "message 2")], None);
        assert_eq!(harness.state().window.tab, Tab::Results, "a new search shows its results");
        // A row takes the keyboard focus, as a button does, and Enter opens it.
        hit_row(&harness, "[1] #lobby  bob  14:00  message 2").focus();
        steps(&mut harness, 1);
        assert!(hit_row(&harness, "[1] #lobby  bob  14:00  message 2").is_focused());
        harness.key_press(Key::Enter);
        steps(&mut harness, 4);
        assert_eq!(harness.state().window.tab, Tab::Messages);
        assert_eq!(harness.state().model.current().id, lobby());
        assert_eq!(highlighted(&harness), Some(2));
        harness.get_by_label(RESULTS_TAB).click();
        steps(&mut harness, 2);
        assert_eq!(harness.state().window.tab, Tab::Results, "the results stay a tab away");
    }

    /// The model as the window sets it up for the room browser.
    fn browsing(mut model: ChatModel) -> ChatModel {
        model.rooms_as_notices = false;
        model
    }

    fn listing(room: &str, members: u32, topic: &str, invite_only: bool) -> RoomListing {
        RoomListing { room: RoomName::parse(room).expect("valid"), members, topic: topic.into(), invite_only }
    }

    /// A page of rooms arrives.
    fn rooms(harness: &mut Harness<'_, State>, rooms: Vec<RoomListing>, more: bool) {
        harness.state_mut().model.on_engine(Event::Rooms { rooms, more });
        steps(harness, 2);
    }

    /// The listings asked for since last taken, as their `after`.
    fn listings_asked(harness: &mut Harness<'_, State>) -> Vec<Option<String>> {
        sent(harness)
            .into_iter()
            .filter_map(|command| match command {
                Command::ListRooms { after } => Some(after.map(|room| room.to_string())),
                _ => None,
            })
            .collect()
    }

    fn is_filter(node: &AccessKitNode<'_>) -> bool {
        node.data().placeholder() == Some(FILTER_HINT)
    }

    fn filter(harness: &mut Harness<'_, State>, text: &str) {
        harness.state_mut().window.rooms.text.clear();
        harness.get_by(is_filter).focus();
        steps(harness, 1);
        harness.get_by(is_filter).type_text(text);
        steps(harness, 2);
    }

    /// The rooms the browser shows, by their Join or Open button's name.
    fn room_buttons(harness: &Harness<'_, State>) -> Vec<String> {
        let named = |node: &AccessKitNode<'_>| {
            node.data().role() == Role::Button
                && node.data().label().is_some_and(|label| label.starts_with("Join #") || label.starts_with("Open #"))
        };
        harness.query_all_by(named).filter_map(|node| node.accesskit_node().label()).collect()
    }

    #[test]
    fn the_rooms_button_lists_the_rooms_page_after_page_and_join_joins_one() {
        let mut harness = harness(browsing(connected(1..=3, Vec::new())));
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_role_and_label(Role::Button, OPEN).click();
        // The dialog measures itself, unseen, in its first frame.
        steps(&mut harness, 3);
        assert_eq!(listings_asked(&mut harness), [None], "the first page");
        assert!(harness.query_by_label("Listing the rooms…").is_some(), "a spinner while it comes");

        let first = vec![
            listing("garden", 3, "Seeds and\nsoil", true),
            listing("kitchen", 1, "", false),
            listing("lobby", 2, "say hello", false),
        ];
        rooms(&mut harness, first, true);
        assert_eq!(room_buttons(&harness), ["Join #garden", "Join #kitchen", "Open #lobby"], "we are in the lobby");
        for shown in ["#garden", "3 members", "Seeds and soil", "#kitchen", "1 member", "2 members", "say hello"] {
            assert!(harness.query_by_label(shown).is_some(), "{shown:?} is shown");
        }
        assert_eq!(harness.query_all_by_label("invite-only").count(), 1, "the invite-only room is marked");
        assert!(harness.query_by_label("3 rooms; more to load").is_some());
        assert!(harness.query_by_label_contains("#garden  3 members").is_none(), "no notices in the conversation");

        harness.get_by_label(LOAD_MORE).click();
        steps(&mut harness, 2);
        assert_eq!(listings_asked(&mut harness), [Some("lobby".to_owned())], "after the last room");
        assert!(harness.query_by_label("Loading more rooms…").is_some());
        rooms(&mut harness, vec![listing("zoo", 7, "animals", false)], false);
        assert_eq!(room_buttons(&harness).len(), 4, "the pages together");
        assert!(harness.query_by_label(LOAD_MORE).is_none(), "nothing more to load");

        filter(&mut harness, "SOIL");
        assert_eq!(room_buttons(&harness), ["Join #garden"], "by topic, case aside");
        assert!(harness.query_by_label("1 of 4 rooms match").is_some());
        filter(&mut harness, "oo");
        assert_eq!(room_buttons(&harness), ["Join #zoo"], "by name");
        filter(&mut harness, "#KIT");
        assert_eq!(room_buttons(&harness), ["Join #kitchen"], "written as a room");
        filter(&mut harness, "nothing like it");
        assert!(room_buttons(&harness).is_empty());

        filter(&mut harness, "garden");
        harness.get_by_role_and_label(Role::Button, "Join #garden").click();
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::Join { room }] if room == "garden"), "joined");
        assert_eq!(harness.state().model.rooms, None, "the browser closes");
        assert!(harness.query_by_label(OPEN).is_some());
    }

    #[test]
    fn the_shortcut_opens_the_browser_open_shows_a_room_escape_closes_and_offline_nothing_is_asked() {
        let mut model = browsing(connected(1..=3, Vec::new()));
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        let mut harness = harness_sized(model, [360.0, 640.0]);
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::L);
        steps(&mut harness, 2);
        assert_eq!(listings_asked(&mut harness), [None]);
        assert!(harness.get_by(is_filter).is_focused(), "the filter has the focus");
        rooms(&mut harness, Vec::new(), false);
        assert!(harness.query_by_label(EMPTY).is_some(), "an empty listing says so");

        harness.get_by_label(REFRESH).click();
        steps(&mut harness, 2);
        assert_eq!(listings_asked(&mut harness), [None], "the first page again");
        rooms(
            &mut harness,
            vec![listing("lobby", 2, "a topic long enough to be cut to the width of a phone", false)],
            false,
        );
        let open = harness.get_by_role_and_label(Role::Button, "Open #lobby").rect();
        assert!(open.right() <= 360.0, "the button fits a phone's width: {open:?}");
        harness.get_by_role_and_label(Role::Button, "Open #lobby").click();
        steps(&mut harness, 2);
        assert_eq!(harness.state().model.current().id, lobby(), "shown");
        let asked = sent(&mut harness);
        let read = |command: &Command| matches!(command, Command::MarkRead { .. });
        assert!(asked.iter().all(read), "nothing asked of the server, but the lobby shown is read: {asked:?}");
        assert_eq!(harness.state().model.rooms, None);

        harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::L);
        steps(&mut harness, 3);
        assert!(harness.state().model.rooms.is_some());
        harness.key_press(Key::Escape);
        steps(&mut harness, 2);
        assert_eq!(harness.state().model.rooms, None, "Escape closes it");
        sent(&mut harness);

        harness.state_mut().model.on_engine(Event::Disconnected {
            reason: "gone".into(),
            server: "127.0.0.1:5555".into(),
            retry_in: std::time::Duration::from_secs(5),
            attempt: 1,
            pending: 0,
            refused_for_now: false,
        });
        harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::L);
        steps(&mut harness, 2);
        assert!(harness.query_by_label(NOT_CONNECTED).is_some(), "said");
        assert!(listings_asked(&mut harness).is_empty(), "nothing asked");
        harness.state_mut().model.on_engine(Event::Connected {
            server: "127.0.0.1:5555".into(),
            nick: nick("ana"),
            registered: true,
            conversations: Vec::new(),
            version: palomar_proto::PROTOCOL_VERSION,
        });
        steps(&mut harness, 2);
        assert_eq!(listings_asked(&mut harness), [None], "asked once reconnected");
        assert!(harness.query_by_label(NOT_CONNECTED).is_none());
    }

    /// As [`connected`], to a server of version 6 that knows away messages, /whois, typing and read markers; bob
    /// and carol online in the lobby.
    fn aware(seqs: std::ops::RangeInclusive<u64>) -> ChatModel {
        let mut model = connected_to(palomar_proto::AWARENESS_VERSION, seqs, Vec::new());
        model.on_engine(Event::Users {
            room: RoomName::lobby(),
            online: vec![nick("ana"), nick("bob"), nick("carol")],
            offline: Vec::new(),
        });
        model
    }

    fn is_away_field(node: &AccessKitNode<'_>) -> bool {
        node.data().placeholder() == Some(awareness::AWAY_HINT)
    }

    /// The typing notices sent since last taken, as (conversation, typing).
    fn typing_sent(harness: &mut Harness<'_, State>) -> Vec<(Conversation, bool)> {
        sent(harness)
            .into_iter()
            .filter_map(|command| match command {
                Command::Typing { conversation, typing } => Some((conversation, typing)),
                _ => None,
            })
            .collect()
    }

    /// The read markers sent since last taken, as (conversation, seq).
    fn marks_sent(harness: &mut Harness<'_, State>) -> Vec<(Conversation, u64)> {
        sent(harness)
            .into_iter()
            .filter_map(|command| match command {
                Command::MarkRead { conversation, seq } => Some((conversation, seq)),
                _ => None,
            })
            .collect()
    }

    fn type_in_entry(harness: &mut Harness<'_, State>, text: &str) {
        harness.state_mut().window.entry = text.to_owned();
        steps(harness, 2);
    }

    #[test]
    fn the_top_bar_sets_our_away_message_in_a_dialog_shows_it_and_i_m_back_clears_it() {
        let mut harness = harness(aware(1..=3));
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_role_and_label(Role::Button, awareness::SET_AWAY).click();
        steps(&mut harness, 3);
        assert!(harness.get_by(is_away_field).is_focused(), "the field has the focus");
        harness.get_by(is_away_field).type_text(&"x".repeat(palomar_proto::MAX_AWAY_BYTES + 1));
        steps(&mut harness, 1);
        harness.get_by_role_and_label(Role::Button, awareness::SET).click();
        steps(&mut harness, 2);
        assert!(sent(&mut harness).is_empty(), "a refused message is not sent");
        assert!(harness.query_by_label_contains("at most 200 bytes").is_some(), "the reason is said");

        harness.state_mut().window.away.text.clear();
        harness.get_by(is_away_field).focus();
        steps(&mut harness, 1);
        harness.get_by(is_away_field).type_text("  lunch ");
        steps(&mut harness, 1);
        harness.key_press(Key::Enter);
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::SetAway(message)] if message == "lunch"), "Enter sets");
        assert!(!harness.state().window.away.open, "the dialog closes");
        harness.state_mut().model.on_engine(Event::Away { nick: nick("ana"), message: Some("lunch".into()) });
        steps(&mut harness, 2);
        assert!(harness.query_by_label("away: lunch").is_some(), "the top bar says it");
        assert!(harness.query_by_label("you are away: lunch").is_some(), "and the model's notice");
        assert!(harness.query_by_label(awareness::SET_AWAY).is_none());

        harness.get_by_role_and_label(Role::Button, awareness::BACK).click();
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::SetAway(message)] if message.is_empty()), "back");
        harness.state_mut().model.on_engine(Event::Away { nick: nick("ana"), message: None });
        steps(&mut harness, 2);
        assert!(harness.query_by_label("away: lunch").is_none());
        assert!(harness.query_by_label(awareness::SET_AWAY).is_some());

        harness.get_by_role_and_label(Role::Button, awareness::SET_AWAY).click();
        steps(&mut harness, 3);
        harness.get_by_role_and_label(Role::Button, awareness::CANCEL).click();
        steps(&mut harness, 2);
        assert!(!harness.state().window.away.open, "Cancel closes it");
        assert!(sent(&mut harness).is_empty(), "and sets nothing");

        let mut model = searching(aware(1..=3));
        model.apply(Typed::Search(Some(command_line::search("message").expect("words to search for"))));
        let mut searched = harness_sized(model, [1000.0, 500.0]);
        steps(&mut searched, 3);
        searched.get_by_role_and_label(Role::Button, awareness::SET_AWAY).click();
        steps(&mut searched, 3);
        searched.key_press(Key::Escape);
        steps(&mut searched, 2);
        assert!(!searched.state().window.away.open, "Escape closes it");
        assert!(searched.state().model.search.is_some(), "and only it");
    }

    #[test]
    fn in_a_narrow_window_the_menu_sets_and_clears_the_away_message_and_an_older_server_offers_neither() {
        let mut harness = harness_sized(aware(1..=3), [480.0, 500.0]);
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_label("Menu").click();
        steps(&mut harness, 2);
        harness.get_by_label(awareness::SET_AWAY).click();
        steps(&mut harness, 3);
        harness.get_by(is_away_field).type_text("on a train");
        steps(&mut harness, 1);
        harness.get_by_role_and_label(Role::Button, awareness::SET).click();
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::SetAway(message)] if message == "on a train"));
        harness.state_mut().model.on_engine(Event::Away { nick: nick("ana"), message: Some("on a train".into()) });
        harness.get_by_label("Menu").click();
        steps(&mut harness, 2);
        assert!(harness.query_by_label("away: on a train").is_some(), "the menu says it");
        harness.get_by_label(awareness::BACK).click();
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::SetAway(message)] if message.is_empty()));

        let mut older = harness_sized(connected_to(5, 1..=3, Vec::new()), [1000.0, 500.0]);
        steps(&mut older, 3);
        assert!(older.query_by_label(awareness::SET_AWAY).is_none(), "a version 5 server knows no away");
    }

    #[test]
    fn an_away_member_is_dimmed_and_marked_and_who_is_this_asks_whois_answered_as_notices() {
        let mut model = searching(aware(1..=3));
        model.on_engine(Event::Away { nick: nick("carol"), message: Some("lunch".into()) });
        let mut harness = harness(model);
        steps(&mut harness, 3);
        sent(&mut harness);
        assert_eq!(harness.query_all_by_label(awareness::AWAY_MARK).count(), 1, "carol only");
        let coloured = [true, false].map(|dark| Some(theme::nick_colour(&nick("carol"), dark)));
        assert!(!coloured.contains(&colour_of(&harness, "carol")), "dimmed");
        harness.get_by_label(awareness::AWAY_MARK).hover();
        // The tooltip waits a moment.
        steps(&mut harness, 4);
        assert!(harness.query_by_label("lunch").is_some(), "the message on hover");

        harness.get_by_label("carol").click_secondary();
        steps(&mut harness, 2);
        harness.get_by_label(WHOIS).click();
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::Whois(who)] if *who == nick("carol")), "asked");
        harness.state_mut().model.on_engine(Event::Whois(palomar_proto::WhoisInfo {
            nick: nick("carol"),
            registered_ms: 0,
            online: true,
            online_since_ms: Some(50_400_000),
            idle_ms: Some(30_000),
            away: Some("lunch".into()),
            rooms: vec![RoomName::lobby()],
        }));
        steps(&mut harness, 2);
        for line in [
            "carol: online since 14:00 (1 min), idle 30 s",
            "carol: away: lunch",
            "carol: registered 1970-01-01",
            "carol: rooms in common: #lobby",
        ] {
            assert!(harness.query_by_label(line).is_some(), "{line:?} is shown");
        }
        harness.state_mut().model.on_engine(Event::Away { nick: nick("carol"), message: None });
        steps(&mut harness, 2);
        assert!(harness.query_by_label(awareness::AWAY_MARK).is_none(), "back");

        let mut model = connected_to(5, 1..=1, Vec::new());
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        let mut older = harness_sized(model, [1000.0, 500.0]);
        steps(&mut older, 3);
        older.get_by_label("carol").click_secondary();
        steps(&mut older, 2);
        assert!(older.query_by_label(WHOIS).is_none(), "a version 5 server answers no whois");
    }

    #[test]
    fn typed_away_back_and_whois_go_through_the_model() {
        let mut harness = harness(searching(aware(1..=3)));
        steps(&mut harness, 3);
        sent(&mut harness);
        for (line, expected) in [("/away brb", "brb"), ("/back", ""), ("/away", "")] {
            type_in_entry(&mut harness, line);
            harness.key_press(Key::Enter);
            steps(&mut harness, 2);
            let asked = sent(&mut harness);
            assert!(matches!(&asked[..], [Command::SetAway(message)] if message == expected), "{line}: {asked:?}");
        }
        type_in_entry(&mut harness, "/whois @Carol");
        harness.key_press(Key::Enter);
        steps(&mut harness, 2);
        assert!(matches!(&sent(&mut harness)[..], [Command::Whois(who)] if *who == nick("carol")));
        harness.state_mut().model.on_engine(Event::Error {
            code: Some(ErrorCode::UnknownNick),
            message: "no such user".into(),
            id: None,
        });
        steps(&mut harness, 2);
        assert!(harness.query_by_label("⚠ no such user: carol").is_some());

        let mut older = harness_sized(searching(connected_to(5, 1..=3, Vec::new())), [1000.0, 500.0]);
        steps(&mut older, 3);
        type_in_entry(&mut older, "/away brb");
        older.key_press(Key::Enter);
        steps(&mut older, 2);
        assert!(older.query_by_label("⚠ this server does not know away messages").is_some());
    }

    #[test]
    fn what_is_typed_sends_typing_notices_and_who_types_is_said_above_the_entry_box() {
        let mut harness = harness(aware(1..=3));
        steps(&mut harness, 3);
        sent(&mut harness);
        harness.get_by_role(Role::MultilineTextInput).type_text("hel");
        steps(&mut harness, 2);
        assert_eq!(typing_sent(&mut harness), [(lobby(), true)], "typing");
        harness.get_by_role(Role::MultilineTextInput).type_text("lo");
        steps(&mut harness, 2);
        assert!(typing_sent(&mut harness).is_empty(), "renewed only every few seconds");
        type_in_entry(&mut harness, "");
        assert_eq!(typing_sent(&mut harness), [(lobby(), false)], "emptied: stopped");
        type_in_entry(&mut harness, "/me waves");
        assert!(typing_sent(&mut harness).is_empty(), "a command is not typing");
        type_in_entry(&mut harness, "hi all");
        assert_eq!(typing_sent(&mut harness), [(lobby(), true)]);
        harness.key_press(Key::Enter);
        steps(&mut harness, 2);
        let asked = sent(&mut harness);
        assert!(matches!(&asked[..], [Command::Send { .. }]), "sent, and no typing notice with it: {asked:?}");

        harness.state_mut().model.on_engine(Event::Typing { conversation: lobby(), nick: nick("bob"), typing: true });
        steps(&mut harness, 2);
        let typing = harness.get_by_label("bob is typing…").rect();
        let entry = harness.get_by_role(Role::MultilineTextInput).rect();
        assert!(typing.bottom() <= entry.top(), "above the entry box: {typing:?} {entry:?}");
        harness.state_mut().model.on_engine(Event::Typing { conversation: lobby(), nick: nick("carol"), typing: true });
        steps(&mut harness, 2);
        assert!(harness.query_by_label("bob and carol are typing…").is_some());
        harness.state_mut().model.on_engine(Event::Typing { conversation: lobby(), nick: nick("bob"), typing: false });
        harness.state_mut().model.on_engine(Event::Typing {
            conversation: lobby(),
            nick: nick("carol"),
            typing: false,
        });
        steps(&mut harness, 2);
        assert!(harness.query_by_label_contains("typing…").is_none(), "stopped");
    }

    #[test]
    fn switching_away_after_typing_stops_the_typing_notice() {
        let mut harness = harness(aware(1..=3));
        steps(&mut harness, 3);
        type_in_entry(&mut harness, "half a thought");
        sent(&mut harness);
        harness.state_mut().model.apply(Typed::Msg { to: nick("carol"), text: None });
        steps(&mut harness, 2);
        assert_eq!(typing_sent(&mut harness), [(lobby(), false)], "no typing in a conversation carol never had");
    }

    #[test]
    fn read_markers_show_seen_by_under_the_line_and_the_divider_above_what_is_new() {
        let mut model = aware(1..=3);
        model.on_engine(Event::Message { message: message(4, "ana", MessageKind::Text, "my answer"), own: true });
        model.on_engine(Event::Message { message: message(5, "carol", MessageKind::Text, "news"), own: false });
        model.on_engine(Event::ReadMarkers(vec![
            palomar_proto::ReadMarker { conversation: lobby(), nick: nick("ana"), seq: 4 },
            palomar_proto::ReadMarker { conversation: lobby(), nick: nick("bob"), seq: 4 },
            palomar_proto::ReadMarker { conversation: lobby(), nick: nick("carol"), seq: 5 },
        ]));
        // Carol's conversation shown first, with nothing to read; then the lobby, opened after the markers came:
        // the divider goes above carol's message, the first not read.
        model.apply(Typed::Msg { to: nick("carol"), text: None });
        let mut harness = harness(model);
        harness.input_mut().focused = false;
        steps(&mut harness, 2);
        harness.state_mut().model.switch(0);
        steps(&mut harness, 3);
        let seen = harness.get_by_label("seen by bob").rect();
        let (answer, news) = (harness.get_by_label("my answer").rect(), harness.get_by_label("news").rect());
        assert!(answer.bottom() <= seen.top() && seen.bottom() <= news.top(), "under message 4: {seen:?}");
        let nickname = harness.get_all_by_label("ana").map(|node| node.rect()).find(|rect| rect.top() == answer.top());
        let nickname = nickname.expect("ana's nickname beside her message");
        assert!((seen.left() - nickname.left()).abs() < 1.0, "where the nicknames begin: {seen:?} {nickname:?}");
        // Ana's marker is at message 4 too: never said of oneself.
        assert!(harness.query_by_label("seen by carol").is_some(), "under message 5");
        let divider = harness.get_by_label(palomar_client::model::NEW_MESSAGES).rect();
        assert!(seen.bottom() <= divider.top() && divider.bottom() <= news.top(), "above carol's: {divider:?}");
        assert!(marks_sent(&mut harness).is_empty(), "not focused: nothing read");

        harness.input_mut().focused = true;
        steps(&mut harness, 2);
        assert_eq!(marks_sent(&mut harness), [(lobby(), 5)], "focused, at the newest: read");
        assert!(harness.query_by_label(palomar_client::model::NEW_MESSAGES).is_some(), "the divider stays");
        harness.state_mut().model.switch(1);
        steps(&mut harness, 2);
        harness.state_mut().model.switch(0);
        steps(&mut harness, 2);
        assert!(harness.query_by_label(palomar_client::model::NEW_MESSAGES).is_none(), "read, then left: gone");
    }

    #[test]
    fn nothing_is_marked_read_while_the_view_is_scrolled_up_from_the_newest() {
        let reply = message(61, "carol", MessageKind::Reply { of: 2 }, "yes, that");
        let mut harness = harness(connected_to(palomar_proto::AWARENESS_VERSION, 1..=60, vec![reply]));
        steps(&mut harness, 3);
        assert_eq!(marks_sent(&mut harness), [(lobby(), 61)], "at the newest");
        harness.get_by_label("↪ bob: message 2").click();
        steps(&mut harness, 3);
        let later = message(62, "bob", MessageKind::Text, "later");
        harness.state_mut().model.on_engine(Event::Message { message: later, own: false });
        harness.state_mut().model.tick(std::time::Instant::now() + std::time::Duration::from_secs(2));
        steps(&mut harness, 2);
        assert!(marks_sent(&mut harness).is_empty(), "scrolled up to message 2: not read");
    }
}
