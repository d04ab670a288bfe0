//! # palomar-client: the connection engine every Palomar front end shares
//!
//! It connects (to the next of a chat's nodes at once when one is out of reach), checks the server's certificate
//! against the pinned one, logs in, reconnects with backoff and jitter, resumes from its cursors, keeps
//! unacknowledged messages in an on-disk outbox and resends them, and drops anything it has already seen. Front
//! ends send it [`Command`]s and read its [`Event`]s; it knows nothing about screens.
//!
//! # Layout
//! - [`engine`]: the connection loop, [`Command`] and [`Event`].
//! - [`state`]: the on-disk outbox and cursors of one account in one chat (one server, or the nodes of one).
//! - [`known_hosts`]: pinned server fingerprints (trust on first use).
//! - [`backoff`]: reconnect delays.
//! - [`home`]: where a user's client state lives unless told otherwise.
//! - [`server_address`]: what may be given as a chat's servers: one address or several nodes (default ports added).
//! - [`owner_only`]: creating that state readable by its owner only, whatever the umask.
//! - [`model`]: what a chat window shows, built from events: conversations, messages, members, status.
//! - [`command_line`]: what is typed in an entry line: a message or a slash command.
//! - [`preferences`]: conversations silenced, highlight words and nicknames ignored, kept per account.
//! - [`completion`]: Tab completion of nicknames and commands in an entry line.

pub mod backoff;
pub mod command_line;
pub mod completion;
pub mod engine;
pub mod home;
pub mod known_hosts;
pub mod model;
pub mod owner_only;
pub mod preferences;
pub mod rich_text;
pub mod server_address;
pub mod state;

pub use engine::{Command, Engine, EngineConfig, Event, Trust};
pub use known_hosts::KnownHosts;
