//! # palomar-store: the durable state of a Palomar server
//!
//! Accounts, conversations and their members, the per-conversation message logs with gap-free seqs, the
//! sender-id index that makes retries idempotent, and per-user cursors, in one SQLite file (nothing to
//! install). All calls are synchronous; the server decides on which thread they run.
//!
//! # Layout
//! - [`db`]: the schema and every SQL statement.
//! - [`keys`]: how accounts and conversations are named in the store ([`AccountId`], [`ConvId`], [`ConvKey`]).
//! - [`password`]: Argon2id hashing of account passwords.
//! - `runs`: the shape of the index from seqs to messages.

pub mod db;
pub mod keys;
pub mod password;
mod runs;

pub use db::{
    Appended, ConvRow, Credentials, Db, DeletedDirect, Durability, RemovalRequest, Removed, StoreError, StoredMessage,
};
pub use keys::{Account, AccountId, ConvId, ConvKey};
