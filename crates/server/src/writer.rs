//! The store writer: one thread that owns the only writing connection and commits in groups.
//!
//! Sessions send [`Action`]s; the thread takes everything queued, applies it in one transaction, syncs
//! once, publishes the new messages to the [`Hub`] in seq order, and only then answers. So a message is on
//! disk before anyone sees it or its sender is told it is accepted, and many messages share one sync.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use palomar_proto::{MessageId, Nick, RoomName};
use palomar_store::{Appended, ConvKey, ConvRow, Db, Durability, StoreError, StoredMessage};
use tokio::sync::{mpsc, oneshot};

use crate::hub::Hub;

/// Most operations applied in one transaction.
const MAX_GROUP: usize = 2_048;

/// Why a write did not happen. Cheap to clone, because one failed commit fails a whole group.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct WriteFailed(pub Arc<str>);

pub type WriteResult<T> = Result<T, WriteFailed>;

/// A change to the store.
pub enum Action {
    Append {
        conv: i64,
        key: ConvKey,
        sender: Nick,
        id: MessageId,
        text: String,
    },
    Cursor {
        nick: Nick,
        conv: i64,
        seq: u64,
    },
    /// Makes `nick` a member of a room (creating it), starting `window` messages back.
    JoinRoom {
        room: RoomName,
        nick: Nick,
        window: u64,
    },
    LeaveRoom {
        conv: i64,
        nick: Nick,
    },
    /// Creates the direct conversation of two users, both as members.
    OpenDirect {
        key: ConvKey,
    },
    /// Registers an account and makes it a member of the lobby.
    Register {
        nick: Nick,
        password_hash: String,
        window: u64,
    },
    Prune {
        keep: u64,
    },
}

/// What an [`Action`] did, once committed.
#[derive(Debug)]
pub enum Outcome {
    Appended(Appended),
    /// The room and whether the user was newly added.
    Joined(ConvRow, bool),
    Left(bool),
    Opened(ConvRow),
    /// False when the nickname was taken meanwhile.
    Registered(bool),
    Done,
}

struct Request {
    action: Action,
    reply: Option<oneshot::Sender<WriteResult<Outcome>>>,
}

/// The sending side, shared by all sessions.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

fn stopped() -> WriteFailed {
    WriteFailed("the store writer has stopped".into())
}

impl Writer {
    /// Opens the writing connection on `path`, committing with `durability`, and starts the thread.
    pub fn start(path: &Path, durability: Durability, hub: Arc<Hub>) -> Result<(Writer, JoinHandle<()>), StoreError> {
        let db = Db::open_with(path, durability)?;
        let (tx, rx) = mpsc::channel(8_192);
        let handle = std::thread::Builder::new()
            .name("palomar-store-writer".into())
            .spawn(move || run(db, rx, hub))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok((Writer { tx }, handle))
    }

    /// Queues an action without waiting for it, waiting only while the writer is saturated.
    pub async fn submit(&self, action: Action) -> WriteResult<()> {
        self.tx.send(Request { action, reply: None }).await.map_err(|_| stopped())
    }

    /// Queues an action; the returned receiver answers once it is committed or has failed.
    pub async fn request(&self, action: Action) -> WriteResult<oneshot::Receiver<WriteResult<Outcome>>> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Request { action, reply: Some(reply) }).await.map_err(|_| stopped())?;
        Ok(answer)
    }

    /// Queues an action and waits until it is committed.
    pub async fn call(&self, action: Action) -> WriteResult<Outcome> {
        self.request(action).await?.await.map_err(|_| stopped())?
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn apply(db: &Db, action: Action, now: u64) -> Result<(Outcome, Option<(i64, StoredMessage)>), StoreError> {
    Ok(match action {
        Action::Append { conv, key, sender, id, text } => {
            let outcome = db.append(conv, &sender, id, &text, now)?;
            let message = (!outcome.duplicate)
                .then_some((conv, StoredMessage { key, seq: outcome.seq, id, from: sender, ts: outcome.ts, text }));
            (Outcome::Appended(outcome), message)
        }
        Action::Cursor { nick, conv, seq } => {
            db.advance_cursor(&nick, conv, seq)?;
            (Outcome::Done, None)
        }
        Action::JoinRoom { room, nick, window } => {
            let row = db.ensure_conversation(&ConvKey::Room(room))?;
            let added = db.add_member(row.id, &nick, row.last_seq.saturating_sub(window))?;
            (Outcome::Joined(row, added), None)
        }
        Action::LeaveRoom { conv, nick } => (Outcome::Left(db.remove_member(conv, &nick)?), None),
        Action::OpenDirect { key } => {
            let row = db.ensure_conversation(&key)?;
            if let Some((a, b)) = key.participants() {
                db.add_member(row.id, a, 0)?;
                db.add_member(row.id, b, 0)?;
            }
            (Outcome::Opened(row), None)
        }
        Action::Register { nick, password_hash, window } => {
            let created = db.create_account(&nick, &password_hash, now)?;
            if created {
                let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
                db.add_member(lobby.id, &nick, lobby.last_seq.saturating_sub(window))?;
            }
            (Outcome::Registered(created), None)
        }
        Action::Prune { keep } => {
            let removed = db.prune(keep)?;
            if removed > 0 {
                tracing::info!(removed, keep, "retention removed old messages");
            }
            (Outcome::Done, None)
        }
    })
}

fn run(db: Db, mut rx: mpsc::Receiver<Request>, hub: Arc<Hub>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        commit_group(&db, &mut group, &hub);
    }
    tracing::debug!("store writer stopped");
}

type Answered = (Option<oneshot::Sender<WriteResult<Outcome>>>, Outcome, Option<(i64, StoredMessage)>);

fn commit_group(db: &Db, group: &mut Vec<Request>, hub: &Hub) {
    let now = now_ms();
    let mut answered: Vec<Answered> = Vec::with_capacity(group.len());
    let mut replies_of_unapplied = Vec::new();
    let mut failure = db.begin().err();
    for Request { action, reply } in group.drain(..) {
        if failure.is_some() {
            replies_of_unapplied.push(reply);
            continue;
        }
        match apply(db, action, now) {
            Ok((outcome, message)) => answered.push((reply, outcome, message)),
            Err(error) => {
                failure = Some(error);
                replies_of_unapplied.push(reply);
            }
        }
    }
    if failure.is_none() {
        failure = db.commit().err();
    }
    match failure {
        None => {
            for (reply, outcome, message) in answered {
                if let Some((conv, message)) = message {
                    hub.publish(conv, message);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(outcome));
                }
            }
        }
        Some(error) => {
            db.rollback();
            tracing::error!(%error, ops = answered.len() + replies_of_unapplied.len(), "store write failed; nothing in this group was accepted");
            let why =
                if error.is_disk_problem() { "its disk is full or read-only".to_owned() } else { error.to_string() };
            let failed = WriteFailed(format!("the server could not store this ({why}); try again later").into());
            let replies = answered.into_iter().map(|(reply, _, _)| reply).chain(replies_of_unapplied);
            for reply in replies.flatten() {
                let _ = reply.send(Err(failed.clone()));
            }
        }
    }
}
