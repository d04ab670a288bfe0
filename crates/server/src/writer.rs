//! The store writer: one thread that owns the only writing connection and commits in groups.
//!
//! Sessions ask for changes through [`Writer`]'s methods, each with an answer of its own type (so a wrong answer
//! cannot compile); the thread takes everything queued, applies it in one transaction, syncs
//! once, publishes the new messages to the [`Hub`] in seq order, and only then answers. So a message is on
//! disk before anyone sees it or its sender is told it is accepted, and many messages share one sync.
//!
//! Acknowledged positions (cursors) and read markers do not queue as changes: they wait in [`PendingPositions`]
//! and ride along with the next commit, or with a commit of their own after [`CURSOR_SAVE_INTERVAL`].
//!
//! The sessions' side is here: the [`Change`]s they can ask for, their answer types, and the queue that bounds
//! them; the thread that applies and commits them is in [`group_commit`].

mod group_commit;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use palomar_proto::{ErrorCode, MessageId, MessageKind, Nick, RoomName};
use palomar_store::Sanction;
use palomar_store::{Account, AccountId, Appended, ConvId, ConvKey, ConvRow, NodeId, Store, StoreError};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::hub::Hub;
use crate::moderation::{AuditNames, Moderated, RoomWrite};
use crate::telemetry::Metrics;

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
        sender: Account,
        id: MessageId,
        text: String,
        kind: MessageKind,
        order: SendOrder,
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
    /// Sets `account`'s away message (`None`: back); the hub tells who must know once it is committed.
    SetAway {
        account: Account,
        message: Option<String>,
        reply: Reply<()>,
    },
    /// A write that changes nothing, committed like any other: whether the store takes writes now.
    Probe {
        reply: Reply<()>,
    },
    /// Index for search the messages still waiting for it, so that a search that follows finds every message
    /// stored before it was asked.
    IndexForSearch {
        reply: Reply<()>,
    },
    /// A moderator's action in room `conv`, about `target` when it is about a user, with its audit entry.
    Moderate {
        conv: ConvId,
        target: Option<AccountId>,
        write: RoomWrite,
        audit: AuditNames,
        reply: Reply<Moderated>,
    },
}

type Reply<T> = oneshot::Sender<WriteResult<T>>;

/// One connection's messages in the order it sent them. When a group that holds one of them fails, the ones
/// queued after it are refused too (set here by the writer, cleared by the session once none of them is left
/// waiting): a later message must not be stored before an earlier one that the client will send again.
#[derive(Debug, Clone, Default)]
pub struct SendOrder(Arc<AtomicBool>);

impl SendOrder {
    fn halt(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_halted(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Every message queued before the failure has been answered: later ones may be stored again.
    pub fn resume(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What appending a message came to.
#[derive(Debug)]
pub enum AppendOutcome {
    Appended(Appended),
    /// The conversation was deleted (with a removed account) before the message reached it.
    Gone,
    /// An edit or a deletion refused for what it refers to (`UnknownMessage`) or who sent it (`NotAllowed`).
    Refused {
        code: ErrorCode,
        why: String,
    },
}

/// What joining a room came to.
#[derive(Debug)]
pub enum JoinOutcome {
    /// The room, and whether the account was newly added to it.
    Joined { row: ConvRow, added: bool },
    /// The account is in as many rooms as it may be.
    TooManyRooms,
    /// The account is banned from the room.
    Banned(Sanction),
    /// The room is invite-only and the account was not invited.
    NotInvited,
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
    cursors: Arc<PendingPositions<AccountId>>,
    read_markers: Arc<PendingPositions<Account>>,
}

/// Positions not yet written, the highest per account and conversation: acknowledged cursors (by [`AccountId`]),
/// or read markers (by [`Account`]: what is pending is shown with a room's members, by nickname). Acks are as
/// frequent as deliveries, so each one costing a commit would be the store's main work; read markers follow the
/// reading of every member.
struct PendingPositions<Who>(Mutex<HashMap<(Who, ConvId), u64>>);

impl<Who> Default for PendingPositions<Who> {
    fn default() -> Self {
        PendingPositions(Mutex::new(HashMap::new()))
    }
}

impl<Who: Eq + std::hash::Hash> PendingPositions<Who> {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<(Who, ConvId), u64>> {
        self.0.lock()
    }

    fn advance(&self, who: Who, conv: ConvId, seq: u64) {
        let mut pending = self.lock();
        let entry = pending.entry((who, conv)).or_insert(seq);
        *entry = (*entry).max(seq);
    }

    fn take(&self) -> HashMap<(Who, ConvId), u64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back positions whose commit failed, unless newer ones arrived meanwhile.
    fn restore(&self, positions: HashMap<(Who, ConvId), u64>) {
        for ((who, conv), seq) in positions {
            self.advance(who, conv, seq);
        }
    }
}

fn stopped() -> WriteFailed {
    WriteFailed("the store writer has stopped".into())
}

impl Writer {
    /// Starts the thread that writes through `db`, the writer's connection to the store. `node` is this server's
    /// number when other nodes share the store: each commit then tells them what it did.
    pub fn start(
        db: Box<dyn Store>,
        hub: Arc<Hub>,
        node: Option<NodeId>,
        metrics: Metrics,
    ) -> Result<(Writer, JoinHandle<()>), StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cursors = Arc::new(PendingPositions::default());
        let read_markers = Arc::new(PendingPositions::default());
        let pending = group_commit::Pending { cursors: cursors.clone(), read_markers: read_markers.clone() };
        let handle = std::thread::Builder::new()
            .name("palomar-store-writer".into())
            .spawn(move || group_commit::run(db, rx, hub, node, &pending, &metrics))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let room = Arc::new(Semaphore::new(QUEUE_BYTES as usize));
        Ok((Writer { tx, room, cursors, read_markers }, handle))
    }

    /// Records that `account` has everything in `conv` up to `seq`; saved with the next commit.
    pub fn advance_cursor(&self, account: AccountId, conv: ConvId, seq: u64) {
        self.cursors.advance(account, conv, seq);
    }

    /// A position of `account` in `conv` acknowledged but not yet saved.
    pub fn pending_cursor(&self, account: AccountId, conv: ConvId) -> Option<u64> {
        self.cursors.lock().get(&(account, conv)).copied()
    }

    /// Records that `account` has read `conv` up to `seq`; saved with the next commit, within a second. (Lost in
    /// a crash, it heals: the client sends its marker again when the server's is behind.)
    pub fn advance_read_marker(&self, account: &Account, conv: ConvId, seq: u64) {
        self.read_markers.advance(account.clone(), conv, seq);
    }

    /// The read markers moved but not yet saved that `wanted` picks, by conversation and nickname: what a read of
    /// the store's markers does not show yet.
    pub fn pending_read_markers(&self, wanted: impl Fn(&Account, ConvId) -> bool) -> Vec<(ConvId, Nick, u64)> {
        let pending = self.read_markers.lock();
        pending
            .iter()
            .filter(|((account, conv), _)| wanted(account, *conv))
            .map(|((account, conv), seq)| (*conv, account.nick.clone(), *seq))
            .collect()
    }

    /// Saves pending cursors and read markers every [`CURSOR_SAVE_INTERVAL`] when nothing else committed them,
    /// until `stop`.
    pub async fn save_cursors_periodically(self, stop: tokio_util::sync::CancellationToken) {
        let mut ticker = tokio::time::interval(CURSOR_SAVE_INTERVAL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let waiting = !self.cursors.lock().is_empty() || !self.read_markers.lock().is_empty();
            if waiting && self.queue(Change::SaveCursors { reply: None }).await.is_err() {
                return;
            }
        }
    }

    /// Queues a message for `conv` (its `key` is what the hub publishes it under); the returned receiver answers
    /// once it is committed or has failed, so a session can go on reading while the group commits. An edit or a
    /// deletion is judged in the group's transaction, against the message it refers to as committed before it.
    pub async fn append(
        &self,
        conv: ConvId,
        key: ConvKey,
        sender: Account,
        id: MessageId,
        post: (MessageKind, String),
        order: SendOrder,
    ) -> WriteResult<oneshot::Receiver<WriteResult<AppendOutcome>>> {
        let (reply, answer) = oneshot::channel();
        let (kind, text) = post;
        self.queue(Change::Append { conv, key, sender, id, text, kind, order, reply }).await?;
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

    /// Removes the account of `nick`, as asked by removal request `request` (see `Store::request_removal`).
    pub async fn remove_account(&self, request: i64, nick: Nick) -> WriteResult<()> {
        self.call(|reply| Change::RemoveAccount { request, nick, reply }).await
    }

    /// Carries out a moderator's judged action in room `conv` and records it in the audit log, in one transaction.
    pub async fn moderate(
        &self,
        conv: ConvId,
        target: Option<AccountId>,
        write: RoomWrite,
        audit: AuditNames,
    ) -> WriteResult<Moderated> {
        self.call(|reply| Change::Moderate { conv, target, write, audit, reply }).await
    }

    /// Sets `account`'s away message (`None`: back), and waits for it to be committed; the hub then tells the
    /// user's sessions and those who share a room with it, and the commit tells the other nodes.
    pub async fn set_away(&self, account: Account, message: Option<String>) -> WriteResult<()> {
        self.call(|reply| Change::SetAway { account, message, reply }).await
    }

    /// Commits a write that changes nothing, and waits for it: the store takes writes if this succeeds.
    pub async fn probe(&self) -> WriteResult<()> {
        self.call(|reply| Change::Probe { reply }).await
    }

    /// Indexes for search every message stored so far, and waits for it (see [`Store::index_for_search`]).
    ///
    /// [`Store::index_for_search`]: palomar_store::Store::index_for_search
    pub async fn index_for_search(&self) -> WriteResult<()> {
        self.call(|reply| Change::IndexForSearch { reply }).await
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use palomar_store::sqlite::SqliteStore;

    use super::*;

    fn saved_cursor(path: &Path, who: AccountId) -> u64 {
        let db = SqliteStore::open_reader(path).expect("opens");
        let lobby = db.conversation(&ConvKey::Room(RoomName::lobby())).expect("reads").expect("lobby");
        db.cursor(who, lobby.id).expect("reads")
    }

    #[tokio::test]
    async fn acks_are_saved_with_a_commit_and_when_the_writer_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite");
        let db = Box::new(SqliteStore::open(&path).expect("opens"));
        let (writer, thread) =
            Writer::start(db, Hub::new(Default::default(), 8, 8), None, Metrics::default()).expect("starts");
        let lobby = SqliteStore::open_reader(&path)
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

    /// What appending `post` to `conv` as `who` came to: `Ok(seq)` when stored (`duplicate` or not), or the
    /// refusal's code.
    async fn post(
        writer: &Writer,
        conv: (ConvId, &ConvKey),
        who: &Account,
        id: u8,
        (kind, text): (MessageKind, &str),
    ) -> Result<u64, ErrorCode> {
        let [outcome] = posted_together(writer, conv, [(who, id, kind, text)]).await;
        outcome
    }

    /// Queues `posts` (each as its account, with its id) before any is answered, so that they go to the store in
    /// one group, and returns what each came to, as [`post`] does.
    async fn posted_together<const N: usize>(
        writer: &Writer,
        conv: (ConvId, &ConvKey),
        posts: [(&Account, u8, MessageKind, &str); N],
    ) -> [Result<u64, ErrorCode>; N] {
        let mut queued = Vec::new();
        for (who, id, kind, text) in posts {
            let order = SendOrder::default();
            let answer =
                writer.append(conv.0, conv.1.clone(), who.clone(), MessageId([id; 16]), (kind, text.into()), order);
            queued.push(answer.await.expect("queued"));
        }
        let mut outcomes = [Ok(0); N];
        for (outcome, answer) in outcomes.iter_mut().zip(queued) {
            *outcome = match answer.await.expect("answered").expect("written") {
                AppendOutcome::Appended(appended) => Ok(appended.seq),
                AppendOutcome::Refused { code, .. } => Err(code),
                AppendOutcome::Gone => panic!("the conversation is there"),
            };
        }
        outcomes
    }

    /// A writer on a new store with an account for each of `names` (members of the lobby), and a reader of it.
    struct Lobby<const N: usize> {
        _dir: tempfile::TempDir,
        writer: Writer,
        thread: std::thread::JoinHandle<()>,
        reader: SqliteStore,
        key: ConvKey,
        id: ConvId,
        accounts: [Account; N],
    }

    impl<const N: usize> Lobby<N> {
        async fn start(names: [&str; N]) -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("store.sqlite");
            let db = Box::new(SqliteStore::open(&path).expect("opens"));
            let (writer, thread) =
                Writer::start(db, Hub::new(Default::default(), 8, 8), None, Metrics::default()).expect("starts");
            let mut accounts = Vec::new();
            for name in names {
                let nick = Nick::parse(name).expect("valid");
                accounts.push(writer.register(nick, "h".into(), 0).await.expect("commits").expect("new"));
            }
            let reader = SqliteStore::open(&path).expect("opens");
            let key = ConvKey::Room(RoomName::lobby());
            let id = reader.conversation(&key).expect("reads").expect("lobby").id;
            let accounts = accounts.try_into().unwrap_or_else(|_| unreachable!("one account per name"));
            Lobby { _dir: dir, writer, thread, reader, key, id, accounts }
        }

        fn room(&self) -> (ConvId, &ConvKey) {
            (self.id, &self.key)
        }

        /// The lobby's message `seq` as the reader finds it: its revision and text.
        fn message(&self, seq: u64) -> Option<(palomar_proto::Revision, String)> {
            let lobby = self.reader.conversation(&self.key).expect("reads").expect("lobby");
            self.reader.message_at(&lobby, seq).expect("reads").map(|m| (m.revision, m.text))
        }

        async fn stop(self) {
            drop(self.writer);
            let thread = self.thread;
            tokio::task::spawn_blocking(move || thread.join()).await.expect("joins").expect("no panic");
        }
    }

    /// Edits and deletions are judged in the writer, against the log as committed before them: only the author
    /// edits; the author or a moderator of the room deletes (the moderator's deletion audited); nothing refers to a
    /// missing, deleted or revising entry; a retry is answered as its first attempt was; of two deletions of one
    /// message sent together, one is stored.
    #[tokio::test]
    async fn edits_and_deletions_are_judged_against_the_log_and_their_sender() {
        use MessageKind::{Action, Deletion, Edit, Text};
        let lobby = Lobby::start(["ana", "bob", "mo"]).await;
        let [ana, bob, mo] = &lobby.accounts;
        lobby.reader.set_role(lobby.id, mo.id, palomar_proto::Role::Moderator).expect("sets");
        let (writer, reader, room) = (&lobby.writer, &lobby.reader, lobby.room());

        assert_eq!(post(writer, room, ana, 1, (Text, "helo")).await, Ok(1));
        assert_eq!(post(writer, room, ana, 2, (Edit { of: 1 }, "hello")).await, Ok(2));
        assert_eq!(post(writer, room, bob, 3, (Edit { of: 1 }, "mine now")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, room, bob, 4, (Deletion { of: 1 }, "")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, room, ana, 5, (Edit { of: 2 }, "x")).await, Err(ErrorCode::UnknownMessage));
        assert_eq!(post(writer, room, ana, 6, (Edit { of: 99 }, "x")).await, Err(ErrorCode::UnknownMessage));
        assert_eq!(post(writer, room, bob, 7, (Action, "spams")).await, Ok(3));
        assert_eq!(post(writer, room, mo, 8, (Deletion { of: 3 }, "spam")).await, Ok(4));
        assert_eq!(post(writer, room, mo, 8, (Deletion { of: 3 }, "spam")).await, Ok(4), "a retry");
        assert_eq!(post(writer, room, bob, 9, (Deletion { of: 3 }, "")).await, Err(ErrorCode::UnknownMessage));
        let audit = reader.audit_log(10).expect("reads");
        let entries: Vec<_> = audit.iter().map(|e| (&*e.actor, &*e.action, &*e.target, &*e.detail)).collect();
        assert_eq!(entries, [("mo", "message delete", "#lobby #3 by bob", "spam")]);

        let deletions = [(ana, 10, Deletion { of: 1 }, ""), (mo, 11, Deletion { of: 1 }, "")];
        let outcomes = posted_together(writer, room, deletions).await;
        assert!(outcomes.contains(&Err(ErrorCode::UnknownMessage)), "{outcomes:?}");
        let stored = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(stored, 1, "one deletion of one message");
        assert_eq!(lobby.message(1), Some((palomar_proto::Revision::Deleted, String::new())));
        assert_eq!(lobby.message(2), Some((palomar_proto::Revision::Deleted, String::new())), "its edit too");

        let direct = writer.open_direct(ana.clone(), bob.clone()).await.expect("commits").expect("both exist");
        let dm = (direct.id, &direct.key);
        assert_eq!(post(writer, dm, ana, 12, (Text, "psst")).await, Ok(1));
        assert_eq!(post(writer, dm, bob, 13, (Deletion { of: 1 }, "")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, dm, ana, 14, (Deletion { of: 1 }, "")).await, Ok(2));
        lobby.stop().await;
    }

    /// Anyone in the conversation replies to and reacts to a message of its own (not to an edit, a reaction or a
    /// deleted message); a reaction is added once and taken back once; of two equal reactions sent together, one
    /// is stored; a reply may be edited and deleted like a text.
    #[tokio::test]
    async fn replies_and_reactions_are_judged_against_the_log() {
        use MessageKind::{Deletion, Edit, Reaction, Reply, Text};
        let lobby = Lobby::start(["ana", "bob"]).await;
        let [ana, bob] = &lobby.accounts;
        let (writer, room) = (&lobby.writer, lobby.room());
        let react = |of, added| Reaction { of, added };

        assert_eq!(post(writer, room, ana, 1, (Text, "lunch?")).await, Ok(1));
        assert_eq!(post(writer, room, bob, 2, (Reply { of: 1 }, "yes")).await, Ok(2));
        assert_eq!(post(writer, room, ana, 3, (Reply { of: 2 }, "good")).await, Ok(3), "a reply to a reply");
        assert_eq!(post(writer, room, bob, 4, (Edit { of: 2 }, "yes!")).await, Ok(4), "its author edits it");
        assert_eq!(post(writer, room, ana, 5, (Edit { of: 2 }, "no")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, room, ana, 6, (Reply { of: 4 }, "x")).await, Err(ErrorCode::UnknownMessage));
        assert_eq!(post(writer, room, ana, 7, (Reply { of: 99 }, "x")).await, Err(ErrorCode::UnknownMessage));
        assert_eq!(post(writer, room, bob, 8, (react(1, true), "👍")).await, Ok(5));
        assert_eq!(post(writer, room, bob, 9, (react(1, true), "👍")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, room, bob, 8, (react(1, true), "👍")).await, Ok(5), "a retry");
        assert_eq!(post(writer, room, ana, 10, (react(1, true), "👍")).await, Ok(6), "her own, on her own");
        assert_eq!(post(writer, room, ana, 11, (react(5, true), "👍")).await, Err(ErrorCode::UnknownMessage));
        assert_eq!(post(writer, room, bob, 12, (react(1, false), "🎉")).await, Err(ErrorCode::NotAllowed));
        assert_eq!(post(writer, room, bob, 13, (react(1, false), "👍")).await, Ok(7));
        assert_eq!(post(writer, room, bob, 14, (react(1, true), "👍")).await, Ok(8), "again");

        let reactions = [(ana, 15, react(2, true), "🎉"), (ana, 16, react(2, true), "🎉")];
        let outcomes = posted_together(writer, room, reactions).await;
        assert!(outcomes.contains(&Err(ErrorCode::NotAllowed)), "{outcomes:?}");
        let stored = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(stored, 1, "one 🎉 from ana on #2");

        assert_eq!(post(writer, room, bob, 17, (Deletion { of: 2 }, "")).await, Ok(10), "its author deletes it");
        assert_eq!(post(writer, room, ana, 18, (react(2, false), "🎉")).await, Err(ErrorCode::UnknownMessage));
        let text = |seq| lobby.message(seq).map(|(_, text)| text);
        assert_eq!(text(9), Some(String::new()), "the deleted reply's reaction is blanked");
        assert_eq!(text(3), Some("good".into()), "a reply to the deleted reply is kept");
        lobby.stop().await;
    }
}
