//! The store writer: one thread that owns the only writing connection and commits in groups.
//!
//! Sessions send [`Action`]s; the thread takes everything queued, applies it in one transaction, syncs
//! once, publishes the new messages to the [`Hub`] in seq order, and only then answers. So a message is on
//! disk before anyone sees it or its sender is told it is accepted, and many messages share one sync.
//!
//! Acknowledged positions (cursors) do not queue as actions: they wait in [`PendingCursors`] and ride along
//! with the next commit, or with a commit of their own after [`CURSOR_SAVE_INTERVAL`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palomar_proto::{MessageId, Nick, RoomName};
use palomar_store::{
    Account, AccountId, Appended, ConvKey, ConvRow, Db, Durability, Removed, StoreError, StoredMessage,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::hub::Hub;

/// Most operations applied in one transaction.
const MAX_GROUP: usize = 2_048;
/// Bytes of queued operations past which sessions wait for room. Bounding what the queue holds, rather than how
/// many requests, keeps the worst case of 8 KiB texts while short messages do not wait: a session waiting for
/// room serves nothing else, and a bound of 8,192 requests had deep pipelines spend their time there.
const QUEUE_BYTES: u32 = 64 * 1024 * 1024;
/// What an operation counts for in [`QUEUE_BYTES`] besides its text: the request and its names.
const REQUEST_BYTES: u32 = 256;
/// Longest an acknowledged position waits for a commit. Losing it in a crash costs only a redelivery that the
/// client drops: clients keep their own cursors and resume from them.
pub const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Commits whatever cursors are pending, with nothing else to do.
    SaveCursors,
    /// Makes `account` a member of a room (creating it), starting `window` messages back, unless it is in
    /// `max_rooms` rooms already.
    JoinRoom {
        room: RoomName,
        account: AccountId,
        window: u64,
        max_rooms: u64,
    },
    LeaveRoom {
        conv: i64,
        account: AccountId,
    },
    /// Creates the direct conversation of two accounts, both as members.
    OpenDirect {
        a: Account,
        b: Account,
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
    /// Removes the account of `nick`, as asked by removal request `request` (see `Db::request_removal`).
    RemoveAccount {
        request: i64,
        nick: Nick,
    },
}

/// What an [`Action`] did, once committed.
#[derive(Debug)]
pub enum Outcome {
    Appended(Appended),
    /// The conversation was deleted (with a removed account) before the message reached it.
    Gone,
    /// The room and whether the user was newly added.
    Joined(ConvRow, bool),
    /// The account is in as many rooms as it may be.
    TooManyRooms,
    Left(bool),
    /// `None` when one of the two accounts was removed meanwhile.
    Opened(Option<ConvRow>),
    /// `None` when the nickname was taken meanwhile.
    Registered(Option<Account>),
    Done,
}

struct Request {
    action: Action,
    reply: Option<oneshot::Sender<WriteResult<Outcome>>>,
    /// Its share of [`QUEUE_BYTES`], given back when the writer applies it.
    _room: OwnedSemaphorePermit,
}

/// The sending side, shared by all sessions.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Request>,
    room: Arc<Semaphore>,
    cursors: Arc<PendingCursors>,
}

/// Acknowledged positions not yet written, the highest per account and conversation. Acks are as frequent as
/// deliveries, so each one costing a commit would be the store's main work.
#[derive(Default)]
struct PendingCursors(Mutex<HashMap<(AccountId, i64), u64>>);

impl PendingCursors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(AccountId, i64), u64>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn advance(&self, account: AccountId, conv: i64, seq: u64) {
        let mut pending = self.lock();
        let entry = pending.entry((account, conv)).or_insert(seq);
        *entry = (*entry).max(seq);
    }

    fn take(&self) -> HashMap<(AccountId, i64), u64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back cursors whose commit failed, unless newer ones arrived meanwhile.
    fn restore(&self, cursors: HashMap<(AccountId, i64), u64>) {
        for ((account, conv), seq) in cursors {
            self.advance(account, conv, seq);
        }
    }
}

fn stopped() -> WriteFailed {
    WriteFailed("the store writer has stopped".into())
}

impl Writer {
    /// Opens the writing connection on `path`, committing with `durability`, and starts the thread.
    pub fn start(path: &Path, durability: Durability, hub: Arc<Hub>) -> Result<(Writer, JoinHandle<()>), StoreError> {
        let db = Db::open_with(path, durability)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cursors = Arc::new(PendingCursors::default());
        let thread_cursors = cursors.clone();
        let handle = std::thread::Builder::new()
            .name("palomar-store-writer".into())
            .spawn(move || run(db, rx, hub, &thread_cursors))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let room = Arc::new(Semaphore::new(QUEUE_BYTES as usize));
        Ok((Writer { tx, room, cursors }, handle))
    }

    /// Records that `account` has everything in `conv` up to `seq`; saved with the next commit.
    pub fn advance_cursor(&self, account: AccountId, conv: i64, seq: u64) {
        self.cursors.advance(account, conv, seq);
    }

    /// A position of `account` in `conv` acknowledged but not yet saved.
    pub fn pending_cursor(&self, account: AccountId, conv: i64) -> Option<u64> {
        self.cursors.lock().get(&(account, conv)).copied()
    }

    /// Saves pending cursors every [`CURSOR_SAVE_INTERVAL`] when nothing else committed them, until `stop`.
    pub async fn save_cursors_periodically(self, stop: tokio_util::sync::CancellationToken) {
        let mut ticker = tokio::time::interval(CURSOR_SAVE_INTERVAL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if !self.cursors.lock().is_empty() && self.submit(Action::SaveCursors).await.is_err() {
                return;
            }
        }
    }

    /// Queues an action without waiting for it, waiting only while the writer is saturated.
    pub async fn submit(&self, action: Action) -> WriteResult<()> {
        self.queue(action, None).await
    }

    /// Queues an action; the returned receiver answers once it is committed or has failed.
    pub async fn request(&self, action: Action) -> WriteResult<oneshot::Receiver<WriteResult<Outcome>>> {
        let (reply, answer) = oneshot::channel();
        self.queue(action, Some(reply)).await?;
        Ok(answer)
    }

    async fn queue(&self, action: Action, reply: Option<oneshot::Sender<WriteResult<Outcome>>>) -> WriteResult<()> {
        let text_len = match &action {
            Action::Append { text, .. } => u32::try_from(text.len()).unwrap_or(u32::MAX),
            _ => 0,
        };
        let bytes = text_len.saturating_add(REQUEST_BYTES).min(QUEUE_BYTES);
        let room = self.room.clone().acquire_many_owned(bytes).await.map_err(|_| stopped())?;
        self.tx.send(Request { action, reply, _room: room }).map_err(|_| stopped())
    }

    /// Queues an action and waits until it is committed.
    pub async fn call(&self, action: Action) -> WriteResult<Outcome> {
        self.request(action).await?.await.map_err(|_| stopped())?
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What a committed action leaves to do besides answering: a message to publish, an account removal to tell the
/// hub about.
enum Aftermath {
    Nothing,
    Publish(i64, StoredMessage),
    AccountRemoved(Removed),
}

fn apply(db: &Db, action: Action, now: u64) -> Result<(Outcome, Aftermath), StoreError> {
    Ok(match action {
        Action::Append { conv, key, sender, id, text } => match db.append(conv, &sender, id, &text, now) {
            Ok(outcome) => {
                let message = if outcome.duplicate {
                    Aftermath::Nothing
                } else {
                    let stored = StoredMessage { key, seq: outcome.seq, id, from: sender, ts: outcome.ts, text };
                    Aftermath::Publish(conv, stored)
                };
                (Outcome::Appended(outcome), message)
            }
            // Refused alone: the rest of the group commits.
            Err(StoreError::NoConversation(_)) => (Outcome::Gone, Aftermath::Nothing),
            Err(error) => return Err(error),
        },
        Action::SaveCursors => (Outcome::Done, Aftermath::Nothing),
        Action::JoinRoom { room, account, window, max_rooms } => {
            let row = db.ensure_conversation(&ConvKey::Room(room))?;
            if !db.is_member(row.id, account)? && db.room_count(account)? >= max_rooms {
                return Ok((Outcome::TooManyRooms, Aftermath::Nothing));
            }
            let added = db.add_member(row.id, account, row.last_seq.saturating_sub(window))?;
            (Outcome::Joined(row, added), Aftermath::Nothing)
        }
        Action::LeaveRoom { conv, account } => (Outcome::Left(db.remove_member(conv, account)?), Aftermath::Nothing),
        Action::OpenDirect { a, b } => (Outcome::Opened(db.open_direct(&a, &b)?), Aftermath::Nothing),
        Action::Register { nick, password_hash, window } => {
            let created = db.create_account(&nick, &password_hash, now)?;
            if let Some(account) = &created {
                let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
                db.add_member(lobby.id, account.id, lobby.last_seq.saturating_sub(window))?;
            }
            (Outcome::Registered(created), Aftermath::Nothing)
        }
        Action::Prune { keep } => {
            let removed = db.prune(keep)?;
            if removed > 0 {
                tracing::info!(removed, keep, "retention removed old messages");
            }
            (Outcome::Done, Aftermath::Nothing)
        }
        Action::RemoveAccount { request, nick } => {
            let removed = db.remove_account(&nick)?;
            db.finish_removal(request, removed.is_some(), now)?;
            match removed {
                Some(removed) => {
                    tracing::info!(%nick, account = %removed.account.id, directs = removed.deleted_directs.len(), "account removed");
                    (Outcome::Done, Aftermath::AccountRemoved(removed))
                }
                None => (Outcome::Done, Aftermath::Nothing),
            }
        }
    })
}

fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Request>, hub: Arc<Hub>, cursors: &PendingCursors) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.blocking_recv_many(&mut group, MAX_GROUP) > 0 {
        commit_group(&db, &mut group, &hub, cursors);
    }
    // The sessions are gone: their last acknowledgements are saved on the way out.
    commit_group(&db, &mut group, &hub, cursors);
    tracing::debug!("store writer stopped");
}

type Answered = (Option<oneshot::Sender<WriteResult<Outcome>>>, Outcome, Aftermath);

fn commit_group(db: &Db, group: &mut Vec<Request>, hub: &Hub, cursors: &PendingCursors) {
    let now = now_ms();
    let mut answered: Vec<Answered> = Vec::with_capacity(group.len());
    let mut replies_of_unapplied = Vec::new();
    let saving = cursors.take();
    if group.is_empty() && saving.is_empty() {
        return;
    }
    let mut failure = db.begin().err();
    for Request { action, reply, .. } in group.drain(..) {
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
        failure = saving.iter().try_for_each(|((account, conv), seq)| db.advance_cursor(*account, *conv, *seq)).err();
    }
    if failure.is_none() {
        failure = db.commit().err();
    }
    if failure.is_some() {
        cursors.restore(saving);
    }
    match failure {
        None => {
            for (reply, outcome, aftermath) in answered {
                match aftermath {
                    Aftermath::Nothing => {}
                    Aftermath::Publish(conv, message) => hub.publish(conv, message),
                    Aftermath::AccountRemoved(removed) => hub.account_removed(&removed),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_cursor(path: &Path, who: AccountId) -> u64 {
        let db = Db::open_reader(path).expect("opens");
        let lobby = db.conversation(&ConvKey::Room(RoomName::lobby())).expect("reads").expect("lobby");
        db.cursor(who, lobby.id).expect("reads")
    }

    #[tokio::test]
    async fn acks_are_saved_with_a_commit_and_when_the_writer_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let (writer, thread) =
            Writer::start(&path, Durability::Full, Hub::new(Default::default(), 8, 8)).expect("starts");
        let lobby = Db::open_reader(&path)
            .expect("opens")
            .conversation(&ConvKey::Room(RoomName::lobby()))
            .expect("reads")
            .expect("lobby")
            .id;
        let ana = match writer
            .call(Action::Register { nick: Nick::parse("ana").expect("valid"), password_hash: "h".into(), window: 0 })
            .await
        {
            Ok(Outcome::Registered(Some(account))) => account.id,
            other => panic!("expected a new account, got {other:?}"),
        };
        writer.advance_cursor(ana, lobby, 5);
        writer.advance_cursor(ana, lobby, 3);
        assert_eq!(writer.pending_cursor(ana, lobby), Some(5), "a stale ack does not move it back");
        assert_eq!(saved_cursor(&path, ana), 0, "nothing is written per ack");
        writer.call(Action::SaveCursors).await.expect("commits");
        assert_eq!(saved_cursor(&path, ana), 5);
        assert_eq!(writer.pending_cursor(ana, lobby), None);
        writer.advance_cursor(ana, lobby, 9);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join()).await.expect("joins").expect("no panic");
        assert_eq!(saved_cursor(&path, ana), 9, "the last acks are saved on the way out");
    }
}
