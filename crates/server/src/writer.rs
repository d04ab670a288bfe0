//! The store writer: one thread that owns the only writing connection and commits in groups.
//!
//! Sessions ask for changes through [`Writer`]'s methods, each with an answer of its own type (so a wrong answer
//! cannot compile); the thread takes everything queued, applies it in one transaction, syncs
//! once, publishes the new messages to the [`Hub`] in seq order, and only then answers. So a message is on
//! disk before anyone sees it or its sender is told it is accepted, and many messages share one sync.
//!
//! Acknowledged positions (cursors) do not queue as changes: they wait in [`PendingCursors`] and ride along
//! with the next commit, or with a commit of their own after [`CURSOR_SAVE_INTERVAL`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use palomar_proto::{MessageId, Nick, RoomName, unix_ms};
use palomar_store::{
    Account, AccountId, Appended, ConvId, ConvKey, ConvRow, Db, Durability, Removed, StoreError, StoredMessage,
};
use parking_lot::Mutex;
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

/// A change to the store, with where its answer goes: each kind of change has its own answer type.
enum Change {
    Append {
        conv: ConvId,
        key: ConvKey,
        sender: Nick,
        id: MessageId,
        text: String,
        reply: Reply<AppendOutcome>,
    },
    /// Commits whatever cursors are pending, with nothing else to do.
    SaveCursors {
        reply: Option<Reply<()>>,
    },
    JoinRoom {
        room: RoomName,
        account: AccountId,
        window: u64,
        max_rooms: u64,
        reply: Reply<JoinOutcome>,
    },
    LeaveRoom {
        conv: ConvId,
        account: AccountId,
        reply: Reply<bool>,
    },
    OpenDirect {
        a: Account,
        b: Account,
        reply: Reply<Option<ConvRow>>,
    },
    Register {
        nick: Nick,
        password_hash: String,
        window: u64,
        reply: Reply<Option<Account>>,
    },
    Prune {
        keep: u64,
    },
    RemoveAccount {
        request: i64,
        nick: Nick,
        reply: Reply<()>,
    },
}

type Reply<T> = oneshot::Sender<WriteResult<T>>;

/// What appending a message came to.
#[derive(Debug)]
pub enum AppendOutcome {
    Appended(Appended),
    /// The conversation was deleted (with a removed account) before the message reached it.
    Gone,
}

/// What joining a room came to.
#[derive(Debug)]
pub enum JoinOutcome {
    /// The room, and whether the account was newly added to it.
    Joined { row: ConvRow, added: bool },
    /// The account is in as many rooms as it may be.
    TooManyRooms,
}

struct Request {
    change: Change,
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
struct PendingCursors(Mutex<HashMap<(AccountId, ConvId), u64>>);

impl PendingCursors {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<(AccountId, ConvId), u64>> {
        self.0.lock()
    }

    fn advance(&self, account: AccountId, conv: ConvId, seq: u64) {
        let mut pending = self.lock();
        let entry = pending.entry((account, conv)).or_insert(seq);
        *entry = (*entry).max(seq);
    }

    fn take(&self) -> HashMap<(AccountId, ConvId), u64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back cursors whose commit failed, unless newer ones arrived meanwhile.
    fn restore(&self, cursors: HashMap<(AccountId, ConvId), u64>) {
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
    pub fn advance_cursor(&self, account: AccountId, conv: ConvId, seq: u64) {
        self.cursors.advance(account, conv, seq);
    }

    /// A position of `account` in `conv` acknowledged but not yet saved.
    pub fn pending_cursor(&self, account: AccountId, conv: ConvId) -> Option<u64> {
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
            if !self.cursors.lock().is_empty() && self.queue(Change::SaveCursors { reply: None }).await.is_err() {
                return;
            }
        }
    }

    /// Queues a message for `conv` (its `key` is what the hub publishes it under); the returned receiver answers
    /// once it is committed or has failed, so a session can go on reading while the group commits.
    pub async fn append(
        &self,
        conv: ConvId,
        key: ConvKey,
        sender: Nick,
        id: MessageId,
        text: String,
    ) -> WriteResult<oneshot::Receiver<WriteResult<AppendOutcome>>> {
        let (reply, answer) = oneshot::channel();
        self.queue(Change::Append { conv, key, sender, id, text, reply }).await?;
        Ok(answer)
    }

    /// Makes `account` a member of `room` (creating it), starting `window` messages back, unless it is in
    /// `max_rooms` rooms already.
    pub async fn join_room(
        &self,
        room: RoomName,
        account: AccountId,
        window: u64,
        max_rooms: u64,
    ) -> WriteResult<JoinOutcome> {
        self.call(|reply| Change::JoinRoom { room, account, window, max_rooms, reply }).await
    }

    /// Takes `account` out of room `conv`; `true` if it was a member.
    pub async fn leave_room(&self, conv: ConvId, account: AccountId) -> WriteResult<bool> {
        self.call(|reply| Change::LeaveRoom { conv, account, reply }).await
    }

    /// Creates the direct conversation of two accounts, both as members; `None` when one of them was removed
    /// meanwhile.
    pub async fn open_direct(&self, a: Account, b: Account) -> WriteResult<Option<ConvRow>> {
        self.call(|reply| Change::OpenDirect { a, b, reply }).await
    }

    /// Registers an account and makes it a member of the lobby; `None` when the nickname was taken meanwhile.
    pub async fn register(&self, nick: Nick, password_hash: String, window: u64) -> WriteResult<Option<Account>> {
        self.call(|reply| Change::Register { nick, password_hash, window, reply }).await
    }

    /// Removes the account of `nick`, as asked by removal request `request` (see `Db::request_removal`).
    pub async fn remove_account(&self, request: i64, nick: Nick) -> WriteResult<()> {
        self.call(|reply| Change::RemoveAccount { request, nick, reply }).await
    }

    /// Queues removing all but the last `keep` messages of each conversation, without waiting for it.
    pub async fn prune(&self, keep: u64) -> WriteResult<()> {
        self.queue(Change::Prune { keep }).await
    }

    /// Commits the pending cursors now, and waits for it.
    #[cfg(test)]
    async fn save_cursors(&self) -> WriteResult<()> {
        self.call(|reply| Change::SaveCursors { reply: Some(reply) }).await
    }

    /// Queues a change and waits until it is committed.
    async fn call<T>(&self, change: impl FnOnce(Reply<T>) -> Change) -> WriteResult<T> {
        let (reply, answer) = oneshot::channel();
        self.queue(change(reply)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues a change, waiting only while the writer is saturated.
    async fn queue(&self, change: Change) -> WriteResult<()> {
        let text_len = match &change {
            Change::Append { text, .. } => u32::try_from(text.len()).unwrap_or(u32::MAX),
            _ => 0,
        };
        let bytes = text_len.saturating_add(REQUEST_BYTES).min(QUEUE_BYTES);
        let room = self.room.clone().acquire_many_owned(bytes).await.map_err(|_| stopped())?;
        self.tx.send(Request { change, _room: room }).map_err(|_| stopped())
    }
}

/// Sends a change's answer once its group has committed, or the group's failure.
type Answer = Box<dyn FnOnce(Result<(), &WriteFailed>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, value: T) -> Answer {
    Box::new(move |committed| {
        let _ = reply.send(committed.map(|()| value).map_err(WriteFailed::clone));
    })
}

/// The answer of a change that was not applied: only the group's failure can be sent.
fn failure<T: Send + 'static>(reply: Reply<T>) -> Answer {
    Box::new(move |committed| {
        if let Err(failed) = committed {
            let _ = reply.send(Err(failed.clone()));
        }
    })
}

impl Change {
    /// The answer that tells whoever waits for this change that it failed.
    fn into_failure(self) -> Option<Answer> {
        match self {
            Change::Append { reply, .. } => Some(failure(reply)),
            Change::SaveCursors { reply } => reply.map(failure),
            Change::JoinRoom { reply, .. } => Some(failure(reply)),
            Change::LeaveRoom { reply, .. } => Some(failure(reply)),
            Change::OpenDirect { reply, .. } => Some(failure(reply)),
            Change::Register { reply, .. } => Some(failure(reply)),
            Change::Prune { .. } => None,
            Change::RemoveAccount { reply, .. } => Some(failure(reply)),
        }
    }
}

/// What a committed change leaves to do besides answering: a message to publish, an account removal to tell the
/// hub about.
enum Aftermath {
    Nothing,
    Publish(ConvId, StoredMessage),
    AccountRemoved(Removed),
}

/// A change applied in the open transaction: its answer and aftermath, for once the group commits.
struct Applied {
    answer: Option<Answer>,
    aftermath: Aftermath,
}

/// A change that failed, which fails its whole group: the error, and the answer that tells its requester.
type NotApplied = (StoreError, Option<Answer>);

/// Answers `reply` with `result` once the group commits, or fails the group.
fn answered<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Result<Applied, NotApplied> {
    match result {
        Ok(value) => Ok(Applied { answer: Some(answer(reply, value)), aftermath: Aftermath::Nothing }),
        Err(error) => Err((error, Some(failure(reply)))),
    }
}

fn apply(db: &Db, change: Change, now: u64) -> Result<Applied, NotApplied> {
    match change {
        Change::Append { conv, key, sender, id, text, reply } => match db.append(conv, &sender, id, &text, now) {
            Ok(outcome) => {
                let aftermath = if outcome.duplicate {
                    Aftermath::Nothing
                } else {
                    let stored = StoredMessage { key, seq: outcome.seq, id, from: sender, ts: outcome.ts, text };
                    Aftermath::Publish(conv, stored)
                };
                Ok(Applied { answer: Some(answer(reply, AppendOutcome::Appended(outcome))), aftermath })
            }
            // Refused alone: the rest of the group commits.
            Err(StoreError::NoConversation(_)) => answered(reply, Ok(AppendOutcome::Gone)),
            Err(error) => Err((error, Some(failure(reply)))),
        },
        Change::SaveCursors { reply } => {
            Ok(Applied { answer: reply.map(|reply| answer(reply, ())), aftermath: Aftermath::Nothing })
        }
        Change::JoinRoom { room, account, window, max_rooms, reply } => {
            answered(reply, join_room(db, room, account, window, max_rooms))
        }
        Change::LeaveRoom { conv, account, reply } => answered(reply, db.remove_member(conv, account)),
        Change::OpenDirect { a, b, reply } => answered(reply, db.open_direct(&a, &b)),
        Change::Register { nick, password_hash, window, reply } => {
            answered(reply, register(db, &nick, &password_hash, window, now))
        }
        Change::Prune { keep } => match db.prune(keep) {
            Ok(removed) => {
                if removed > 0 {
                    tracing::info!(removed, keep, "retention removed old messages");
                }
                Ok(Applied { answer: None, aftermath: Aftermath::Nothing })
            }
            Err(error) => Err((error, None)),
        },
        Change::RemoveAccount { request, nick, reply } => match remove_account(db, request, &nick, now) {
            Ok(removed) => {
                let aftermath = removed.map_or(Aftermath::Nothing, Aftermath::AccountRemoved);
                Ok(Applied { answer: Some(answer(reply, ())), aftermath })
            }
            Err(error) => Err((error, Some(failure(reply)))),
        },
    }
}

fn join_room(
    db: &Db,
    room: RoomName,
    account: AccountId,
    window: u64,
    max_rooms: u64,
) -> Result<JoinOutcome, StoreError> {
    let row = db.ensure_conversation(&ConvKey::Room(room))?;
    if !db.is_member(row.id, account)? && db.room_count(account)? >= max_rooms {
        return Ok(JoinOutcome::TooManyRooms);
    }
    let added = db.add_member(row.id, account, row.last_seq.saturating_sub(window))?;
    Ok(JoinOutcome::Joined { row, added })
}

fn register(db: &Db, nick: &Nick, password_hash: &str, window: u64, now: u64) -> Result<Option<Account>, StoreError> {
    let created = db.create_account(nick, password_hash, now)?;
    if let Some(account) = &created {
        let lobby = db.ensure_conversation(&ConvKey::Room(RoomName::lobby()))?;
        db.add_member(lobby.id, account.id, lobby.last_seq.saturating_sub(window))?;
    }
    Ok(created)
}

fn remove_account(db: &Db, request: i64, nick: &Nick, now: u64) -> Result<Option<Removed>, StoreError> {
    let removed = db.remove_account(nick)?;
    db.finish_removal(request, removed.is_some(), now)?;
    if let Some(removed) = &removed {
        tracing::info!(%nick, account = %removed.account.id, directs = removed.deleted_directs.len(), "account removed");
    }
    Ok(removed)
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

fn commit_group(db: &Db, group: &mut Vec<Request>, hub: &Hub, cursors: &PendingCursors) {
    let now = unix_ms();
    let mut applied: Vec<Applied> = Vec::with_capacity(group.len());
    let mut answers_of_unapplied = Vec::new();
    let saving = cursors.take();
    if group.is_empty() && saving.is_empty() {
        return;
    }
    let mut failure = db.begin().err();
    for Request { change, .. } in group.drain(..) {
        if failure.is_some() {
            answers_of_unapplied.extend(change.into_failure());
            continue;
        }
        match apply(db, change, now) {
            Ok(done) => applied.push(done),
            Err((error, answer)) => {
                failure = Some(error);
                answers_of_unapplied.extend(answer);
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
            for Applied { answer, aftermath } in applied {
                match aftermath {
                    Aftermath::Nothing => {}
                    Aftermath::Publish(conv, message) => hub.publish(conv, message),
                    Aftermath::AccountRemoved(removed) => hub.account_removed(&removed),
                }
                if let Some(answer) = answer {
                    answer(Ok(()));
                }
            }
        }
        Some(error) => {
            db.rollback();
            tracing::error!(%error, ops = applied.len() + answers_of_unapplied.len(), "store write failed; nothing in this group was accepted");
            let why =
                if error.is_disk_problem() { "its disk is full or read-only".to_owned() } else { error.to_string() };
            let failed = WriteFailed(format!("the server could not store this ({why}); try again later").into());
            let answers = applied.into_iter().filter_map(|done| done.answer).chain(answers_of_unapplied);
            for answer in answers {
                answer(Err(&failed));
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
        let ana = writer
            .register(Nick::parse("ana").expect("valid"), "h".into(), 0)
            .await
            .expect("commits")
            .expect("a new account")
            .id;
        writer.advance_cursor(ana, lobby, 5);
        writer.advance_cursor(ana, lobby, 3);
        assert_eq!(writer.pending_cursor(ana, lobby), Some(5), "a stale ack does not move it back");
        assert_eq!(saved_cursor(&path, ana), 0, "nothing is written per ack");
        writer.save_cursors().await.expect("commits");
        assert_eq!(saved_cursor(&path, ana), 5);
        assert_eq!(writer.pending_cursor(ana, lobby), None);
        writer.advance_cursor(ana, lobby, 9);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join()).await.expect("joins").expect("no panic");
        assert_eq!(saved_cursor(&path, ana), 9, "the last acks are saved on the way out");
    }
}
