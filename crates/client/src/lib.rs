//! # palomar-client: the connection engine every Palomar front end shares
//!
//! It connects, checks the server's certificate against the pinned one, logs in, reconnects with backoff
//! and jitter, resumes from its cursors, keeps unacknowledged messages in an on-disk outbox and resends them,
//! and drops anything it has already seen. Front ends send it [`Command`]s and read its [`Event`]s; it knows
//! nothing about screens.
//!
//! # Layout
//! - [`engine`]: the connection loop, [`Command`] and [`Event`].
//! - [`state`]: the on-disk outbox and cursors of one account on one server.
//! - [`known_hosts`]: pinned server fingerprints (trust on first use).
//! - [`backoff`]: reconnect delays.

pub mod backoff;
pub mod engine;
pub mod known_hosts;
pub mod state;

pub use engine::{Command, Engine, EngineConfig, Event, Trust};
pub use known_hosts::KnownHosts;
