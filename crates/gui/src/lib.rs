//! # palomar-gui: the desktop client
//!
//! A window over the same engine as the terminal clients (`palomar_client::Engine`), showing the same
//! conversation model (`palomar_client::model::ChatModel`) and reading the same slash commands
//! (`palomar_client::command_line`). The engine runs on a tokio runtime beside the window and wakes it when
//! it has news; the window never touches a socket.
//!
//! # Layout
//! - [`app`]: [`PalomarApp`], the whole window: which screen is shown, engine events into the model,
//!   what the model asks for back to the engine.
//! - [`connection`]: starts the engine for one sign-in and hands its events to the window.
//! - [`sign_in`]: the sign-in form, its checks and its errors.
//! - [`certificate`]: the trust question on first contact and the warning when a certificate changed.
//! - [`chat_window`]: conversations, members, the entry box (and its reply bar) and the reconnect banner around
//!   the messages; finding the message a reply's quote answers.
//! - [`message_view`]: one conversation's messages: times, coloured nicknames, day separators, pending marks,
//!   reply quotes, reaction chips, each message's menu.
//! - [`awareness`]: who is there, outside the messages: one's own away message in the top bar and its dialog,
//!   a member's away mark, the typing line above the entry box.
//! - [`search_panel`]: the search field and the results of a search, each hit a button that opens it.
//! - [`room_browser`]: the server's rooms in a dialog, filtered, each joined or opened with a click.
//! - [`theme`]: light, dark or the system's, the colours that carry meaning, readable small print.
//! - [`emoji`]: emoji in colour from the platform's font, egui's monochrome ones only as the last resort.
//! - [`completion`]: Tab in the entry box completes nicknames and commands, as in the terminal client.
//! - [`notification`]: desktop notifications of alerts that come while the window is not focused.
//! - [`settings`]: what is remembered between runs (server, nickname, theme; never the password).

pub mod app;
pub mod awareness;
pub mod certificate;
pub mod chat_window;
pub mod completion;
pub mod connection;
pub mod emoji;
pub mod message_view;
pub mod notification;
pub mod room_browser;
pub mod search_panel;
pub mod settings;
pub mod sign_in;
pub mod theme;

pub use app::{Options, PalomarApp};
