//! The multi-process tests: the real `palomar` binary as server and clients, on loopback ports and temp
//! directories. One test binary rather than one per file, so that cargo links it once and the tests of every
//! file run side by side instead of one file after another; each file is a module.

#[macro_use]
mod common;

mod accounts;
mod awareness;
mod backup;
mod bench;
mod configuration;
mod connecting;
mod delivery;
mod failover;
mod full_screen;
mod hostile;
mod kinds;
mod line_mode;
mod login_abuse;
mod metrics;
mod moderation;
mod nodes;
mod package;
mod postgres;
mod rooms;
mod search;
mod security;
mod store_copy;
mod torture;
mod web;
