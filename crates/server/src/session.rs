//! One client connection: TLS and frame keys, login, then the loop that relays the client's requests to
//! the store and the hub's deliveries (or the log, when it lags) to the client.
//!
//! What a connection can make the server hold is bounded in bytes, whatever the client sends: frames read ahead
//! of the session (`read_ahead_bytes_per_connection`, before and after login), its sends waiting for the store
//! (`max_unacknowledged_bytes_per_connection`), and what waits to be written to it (a page, then a flush that
//! waits for the client to read). Past those the session stops reading, and TCP pushes back on the client.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palomar_proto::{
    ClientMsg, Conversation, ConversationInfo, ErrorCode, HistoryPage, MessageId, Nick, PROTOCOL_VERSION, Position,
    RoomName, ServerMsg, messages_payload, validate_text,
};
use palomar_store::{Account, ConvId, ConvKey, ConvRow, StoredMessage};
use palomar_transport::{FramedReader, FramedWriter, ReadError, frame_keys};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::Shared;
use crate::auth::{self, Refusal};
use crate::hub::{Change, Live, NotRegistered, PendingChanges, Published, SessionId, SessionLink};
use crate::writer::{AppendOutcome, JoinOutcome, WriteResult};

/// Messages read from the log per frame when catching up.
const CATCH_UP_PAGE: u32 = 256;
/// Live deliveries gathered before they are written out.
const LIVE_BATCH: usize = 256;
/// Encoded bytes of messages per `Messages` frame, well under what clients accept (a frame stays small even
/// with the longest texts).
const FRAME_BUDGET: usize = 128 * 1024;
/// Bytes of message text read from the log per page (catching up, scrollback), whatever the page's count: 256
/// of the longest texts would be 2 MiB held for one connection.
const PAGE_BYTES: usize = 2 * FRAME_BUDGET;
/// Bytes waiting to be written to the client past which the session writes them out before queuing more.
const OUT_BUDGET: usize = 2 * FRAME_BUDGET;
/// Where a session starts a direct conversation opened after it logged in: all of it is new to its client,
/// even what another session of the user has acknowledged already.
const NEW_DIRECT_SENT: u64 = 0;
/// Most scrollback messages per request.
const MAX_HISTORY_PAGE: u32 = 500;
/// Frames that fail their tag or do not decode before the connection is closed.
const MAX_BAD_FRAMES: u32 = 16;
/// Conversations listed in `Welcome`; a user in more gets the others as `Joined` right after it, so that no
/// number of rooms and direct conversations makes a frame larger than a client accepts.
const WELCOME_PAGE: usize = 1_000;

type Tls = TlsStream<TcpStream>;
type Out = FramedWriter<WriteHalf<Tls>>;

/// When the client was last heard from, written by the reader task as frames arrive (even while the
/// session is busy elsewhere), so a client is never taken for dead while the server is the slow one.
struct LastHeard {
    base: Instant,
    millis: AtomicU64,
    /// The reader is not reading: the session has not taken what was read yet. Whatever the client sends
    /// meanwhile waits in TCP, so its silence says nothing.
    waiting: AtomicBool,
}

impl LastHeard {
    fn new() -> Arc<Self> {
        Arc::new(LastHeard { base: Instant::now(), millis: AtomicU64::new(0), waiting: AtomicBool::new(false) })
    }

    fn touch(&self) {
        self.millis.store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn set_waiting(&self, waiting: bool) {
        self.touch();
        self.waiting.store(waiting, Ordering::Relaxed);
    }

    fn silence(&self) -> Duration {
        if self.waiting.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        self.base.elapsed().saturating_sub(Duration::from_millis(self.millis.load(Ordering::Relaxed)))
    }
}

/// What the reader task hands to the session.
enum Incoming {
    Msg(ClientMsg),
    /// A frame that failed its tag or did not decode; the connection goes on.
    Bad(ErrorCode, String),
    /// The stream cannot go on.
    Fatal(ErrorCode, String),
    Closed,
}

/// A frame read from the client, holding its share of the connection's read-ahead until the session is done
/// with it.
struct Read {
    incoming: Incoming,
    _room: Option<OwnedSemaphorePermit>,
}

/// Why the session loop ended, for the log.
enum SessionEnd {
    ClientLeft,
    Silent,
    Shutdown,
    AccountRemoved,
    Refused(String),
    Broken(String),
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::ClientLeft => f.write_str("client closed the connection"),
            SessionEnd::Silent => f.write_str("client silent past the heartbeat limit"),
            SessionEnd::Shutdown => f.write_str("server shutting down"),
            SessionEnd::AccountRemoved => f.write_str("the account was removed"),
            SessionEnd::Refused(why) => write!(f, "refused: {why}"),
            SessionEnd::Broken(why) => write!(f, "connection broken: {why}"),
        }
    }
}

/// Serves one accepted TCP connection until it ends.
pub async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, refusal: Option<&'static str>) {
    let deadline = Instant::now() + Duration::from_millis(shared.config.limits.handshake_timeout_ms);
    let tls = match tokio::time::timeout_at(deadline.into(), shared.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let keys = match frame_keys(tls.get_ref().1) {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot derive frame keys");
            return;
        }
    };
    let (read_half, write_half) = tokio::io::split(tls);
    let mut out = FramedWriter::new(write_half, &keys.server_to_client);
    if let Some(reason) = refusal {
        out.queue(&ServerMsg::Error { code: ErrorCode::ServerFull, message: reason.into(), id: None });
        let _ = tokio::time::timeout(Duration::from_secs(1), out.flush()).await;
        return;
    }
    let limits = &shared.config.limits;
    let reader = FramedReader::new(read_half, &keys.client_to_server, limits.max_frame_bytes);
    let (incoming_tx, mut incoming) = mpsc::unbounded_channel();
    let heard = LastHeard::new();
    // Cancelled when the client is gone (or the server stops): what it sent and the session has not handled yet
    // is dropped rather than worked through for nobody. Its unacknowledged messages are in its outbox.
    let gone = shared.shutdown.child_token();
    let read_ahead = Arc::new(Semaphore::new(limits.read_ahead_bytes_per_connection));
    let _reader =
        AbortOnDropHandle::new(tokio::spawn(read_frames(reader, incoming_tx, read_ahead, heard.clone(), gone.clone())));

    let hello = tokio::time::timeout_at(deadline.into(), incoming.recv()).await;
    let (nick, password, positions) = match hello.map(|read| read.map(|read| read.incoming)) {
        Ok(Some(Incoming::Msg(ClientMsg::Hello { version, nick, password, positions }))) => {
            if version != PROTOCOL_VERSION {
                let message = format!("this server speaks protocol version {PROTOCOL_VERSION}, the client {version}");
                refuse(&mut out, ErrorCode::UnsupportedVersion, message).await;
                return;
            }
            (nick, password, positions)
        }
        Ok(Some(Incoming::Bad(code, message) | Incoming::Fatal(code, message))) => {
            refuse(&mut out, code, message).await;
            return;
        }
        Ok(Some(Incoming::Msg(_))) => {
            refuse(&mut out, ErrorCode::Protocol, "the first frame must be Hello".into()).await;
            return;
        }
        Ok(Some(Incoming::Closed) | None) => return,
        Err(_) => {
            refuse(&mut out, ErrorCode::HandshakeTimeout, "no Hello in time".into()).await;
            return;
        }
    };
    let nick = match Nick::parse(&nick) {
        Ok(nick) => nick,
        Err(error) => {
            refuse(&mut out, ErrorCode::InvalidName, error.to_string()).await;
            return;
        }
    };
    // A login may wait (its turn, the password threads): pings meanwhile tell the client the server is there, so
    // that it can take silence for a dead connection during the login as at any other time.
    let heartbeat = shared.config.heartbeat_interval();
    let mut pings = tokio::time::interval_at((Instant::now() + heartbeat).into(), heartbeat);
    let (account, registered) = {
        let mut judging = std::pin::pin!(auth::log_in(&shared, &nick, password.expose(), peer.ip(), deadline));
        loop {
            tokio::select! {
                judged = &mut judging => match judged {
                    Ok(logged_in) => break logged_in,
                    Err(Refusal { code, message }) => {
                        tracing::info!(%peer, %nick, ?code, "login refused");
                        refuse(&mut out, code, message).await;
                        return;
                    }
                },
                // The client left (or the server stops): its login goes with it, with any password work not yet
                // started.
                _ = gone.cancelled() => return,
                _ = pings.tick() => {
                    out.queue(&ServerMsg::Ping { nonce: 0 });
                    if !matches!(tokio::time::timeout(shared.config.dead_after(), out.flush()).await, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    };
    drop(password);
    tracing::info!(%peer, %nick, account = %account.id, registered, "logged in");

    let mut session = Session {
        shared: shared.clone(),
        account,
        out,
        gone,
        keys_of: HashMap::new(),
        by_view: HashMap::new(),
        sent: HashMap::new(),
        acked: HashMap::new(),
        last_sent: Instant::now(),
        id: None,
    };
    let end = match session.start(registered, positions).await {
        Ok(link) => session.run(link, incoming, &heard).await,
        Err(end) => end,
    };
    tracing::info!(%peer, %nick, reason = %end, "session ended");
}

async fn refuse(out: &mut Out, code: ErrorCode, message: String) {
    out.queue(&ServerMsg::Error { code, message, id: None });
    let _ = tokio::time::timeout(Duration::from_secs(2), out.flush()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), out.shutdown()).await;
}

/// Reads and decodes the client's frames for the session, never more than `read_ahead` bytes of them ahead of
/// it: past that it stops reading until the session has handled some, and the client's writes wait in TCP.
async fn read_frames(
    mut reader: FramedReader<ReadHalf<Tls>>,
    tx: mpsc::UnboundedSender<Read>,
    read_ahead: Arc<Semaphore>,
    heard: Arc<LastHeard>,
    gone: CancellationToken,
) {
    let mut bad = 0;
    loop {
        let read = reader.read_payload().await;
        heard.touch();
        // The frame's share: its payload, which is also about what it decodes to. A frame that could not be read
        // takes none; it ends the stream or is answered with a short error.
        let room = match &read {
            Ok(Some(payload)) => {
                let bytes = u32::try_from(payload.len().max(1)).unwrap_or(u32::MAX);
                heard.set_waiting(true);
                let room = read_ahead.clone().acquire_many_owned(bytes).await;
                heard.set_waiting(false);
                match room {
                    Ok(room) => Some(room),
                    Err(_) => return,
                }
            }
            _ => None,
        };
        let incoming = match read {
            Ok(Some(payload)) => match palomar_proto::decode::<ClientMsg>(&payload) {
                Ok(msg) => Incoming::Msg(msg),
                Err(error) => {
                    bad += 1;
                    if bad > MAX_BAD_FRAMES {
                        Incoming::Fatal(ErrorCode::Protocol, "too many bad frames".into())
                    } else {
                        Incoming::Bad(ErrorCode::Malformed, format!("{error}; the frame was dropped"))
                    }
                }
            },
            Ok(None) => Incoming::Closed,
            Err(error) if !error.is_fatal() => {
                bad += 1;
                if bad > MAX_BAD_FRAMES {
                    Incoming::Fatal(ErrorCode::Protocol, "too many bad frames".into())
                } else {
                    let code =
                        if matches!(error, ReadError::Malformed(_)) { ErrorCode::Malformed } else { ErrorCode::BadTag };
                    Incoming::Bad(code, format!("{error}; the frame was dropped"))
                }
            }
            Err(ReadError::Frame(error)) => Incoming::Fatal(ErrorCode::TooLarge, error.to_string()),
            Err(ReadError::Io(_) | ReadError::Truncated) => Incoming::Closed,
            Err(error) => Incoming::Fatal(ErrorCode::Protocol, error.to_string()),
        };
        if matches!(incoming, Incoming::Closed) {
            gone.cancel();
        }
        let last = matches!(incoming, Incoming::Closed | Incoming::Fatal(..));
        if tx.send(Read { incoming, _room: room }).is_err() || last {
            return;
        }
    }
}

/// A message waiting in a batch for its `Messages` frame.
enum Outgoing {
    /// Delivered live: in a room, its encoding is shared with the other members' sessions.
    Live(Arc<Published>),
    /// Read from the log and encoded for this reader.
    Encoded(Vec<u8>),
}

/// A message sent by this client, waiting for the store.
struct Pending {
    id: MessageId,
    conversation: Conversation,
    /// Its text's length, counted in [`Sends::bytes`].
    bytes: usize,
    answer: oneshot::Receiver<WriteResult<AppendOutcome>>,
}

/// The client's messages waiting for the store, in the order they came.
#[derive(Default)]
struct Sends {
    queue: VecDeque<Pending>,
    bytes: usize,
}

impl Sends {
    fn push(&mut self, pending: Pending) {
        self.bytes += pending.bytes;
        self.queue.push_back(pending);
    }

    fn pop(&mut self) -> Option<Pending> {
        let pending = self.queue.pop_front()?;
        self.bytes -= pending.bytes;
        Some(pending)
    }
}

/// Keeps the newest messages of `page` (in seq order) whose texts fit in `budget` bytes, at least one.
fn newest_within(mut page: Vec<StoredMessage>, budget: usize) -> Vec<StoredMessage> {
    let mut bytes = 0;
    let keep = page
        .iter()
        .rev()
        .take_while(|m| {
            bytes += m.text.len();
            bytes <= budget
        })
        .count();
    let drop = page.len().saturating_sub(keep.max(1));
    page.drain(..drop);
    page
}

/// Keeps the oldest messages of `page` (in seq order) whose texts fit in `budget` bytes, at least one.
fn oldest_within(mut page: Vec<StoredMessage>, budget: usize) -> Vec<StoredMessage> {
    let mut bytes = 0;
    let keep = page
        .iter()
        .take_while(|m| {
            bytes += m.text.len();
            bytes <= budget
        })
        .count()
        .max(1);
    page.truncate(keep);
    page
}

struct Session {
    shared: Arc<Shared>,
    account: Account,
    out: Out,
    /// Cancelled when the client has gone (or the server stops): waits end, queued requests are dropped.
    gone: CancellationToken,
    /// Conversations this user belongs to, by store id.
    keys_of: HashMap<ConvId, ConvKey>,
    /// The same, by the name the client gives them.
    by_view: HashMap<Conversation, ConvId>,
    /// Highest seq sent to this client, per conversation: deliveries at or below it are skipped.
    sent: HashMap<ConvId, u64>,
    /// Highest seq the client acknowledged, so repeated acks are not written again.
    acked: HashMap<ConvId, u64>,
    last_sent: Instant,
    /// This session in the hub, once registered.
    id: Option<SessionId>,
}

impl Session {
    fn error(&mut self, code: ErrorCode, message: impl Into<String>, id: Option<MessageId>) {
        self.out.queue(&ServerMsg::Error { code, message: message.into(), id });
    }

    async fn flush(&mut self) -> Result<(), SessionEnd> {
        if self.out.pending_len() == 0 {
            return Ok(());
        }
        match tokio::time::timeout(self.shared.config.dead_after(), self.out.flush()).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(error)) => Err(SessionEnd::Broken(error.to_string())),
            Err(_) => Err(SessionEnd::Silent),
        }
    }

    fn view(&self, key: &ConvKey) -> Conversation {
        key.view_for(self.account.id)
    }

    fn track_conversation(&mut self, id: ConvId, key: ConvKey) {
        self.by_view.insert(self.view(&key), id);
        self.keys_of.insert(id, key);
    }

    fn untrack_conversation(&mut self, conv: ConvId) {
        if let Some(key) = self.keys_of.remove(&conv) {
            // The name may already be another conversation's: a new one with an account of the same nickname.
            let view = self.view(&key);
            if self.by_view.get(&view) == Some(&conv) {
                self.by_view.remove(&view);
            }
        }
        self.sent.remove(&conv);
        self.acked.remove(&conv);
    }

    fn info(&self, row: &ConvRow) -> ConversationInfo {
        ConversationInfo {
            conversation: self.view(&row.key),
            latest_seq: self.shared.hub.latest(row.id).max(row.last_seq),
            first_seq: row.first_seq,
        }
    }

    /// Registers with the hub, says Welcome, and sends everything the client has not seen yet.
    async fn start(&mut self, registered: bool, positions: Vec<Position>) -> Result<SessionLink, SessionEnd> {
        let (memberships, link) = match self.register().await {
            Ok(registered) => registered,
            Err(SessionEnd::Refused(why)) => {
                refuse(&mut self.out, ErrorCode::ServerFull, why.clone()).await;
                return Err(SessionEnd::Refused(why));
            }
            Err(end) => return Err(end),
        };
        self.id = Some(link.id);
        let mut claimed: HashMap<Conversation, u64> = positions.into_iter().map(|p| (p.conversation, p.seq)).collect();
        let mut infos = Vec::with_capacity(memberships.len());
        for (cursor, row) in memberships {
            // A client may only say where it is in its own conversations, and never past the end.
            let info = self.info(&row);
            let start = claimed.remove(&info.conversation).unwrap_or(cursor).min(info.latest_seq);
            self.sent.insert(row.id, start);
            self.track_conversation(row.id, row.key);
            infos.push((start < info.latest_seq, info));
        }
        // Those with news first: a client that meets the rest only after `Welcome` has all it must catch up on.
        infos.sort_by_key(|(news, _)| !news);
        let mut infos = infos.into_iter().map(|(_, info)| info);
        self.out.queue(&ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            nick: self.account.nick.clone(),
            registered,
            heartbeat_ms: u32::try_from(self.shared.config.limits.heartbeat_interval_ms).unwrap_or(u32::MAX),
            conversations: infos.by_ref().take(WELCOME_PAGE).collect(),
        });
        for info in infos {
            self.out.queue(&ServerMsg::Joined { info });
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        // The client remembers conversations the user is no longer in (left from another client, deleted with a
        // removed account while it was away): it is told to forget them, so that a later conversation of the same
        // name starts afresh.
        for conversation in claimed.into_keys() {
            match conversation {
                Conversation::Room(room) => self.out.queue(&ServerMsg::Left { room }),
                Conversation::Direct(_) => {
                    let reason = "it no longer exists on the server".to_owned();
                    self.out.queue(&ServerMsg::Closed { conversation, reason });
                }
            }
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        self.flush().await?;
        self.catch_up_all().await?;
        Ok(link)
    }

    /// Reads the user's conversations, with the saved cursor of each, and registers with the hub as a member of
    /// its rooms; again while another session of the user joins or leaves a room in between, which this one
    /// would otherwise never hear of.
    async fn register(&mut self) -> Result<(Vec<(u64, ConvRow)>, SessionLink), SessionEnd> {
        loop {
            let changes_seen = self.shared.hub.membership_changes(self.account.id);
            let account = self.account.id;
            let memberships = self.read(move |db| db.memberships_of(account)).await?;
            let rooms = memberships
                .iter()
                .filter_map(|(_, row)| match &row.key {
                    ConvKey::Room(room) => Some((row.id, room.clone())),
                    ConvKey::Direct(..) => None,
                })
                .collect();
            match self.shared.hub.register(&self.account, rooms, changes_seen) {
                Ok(link) => return Ok((memberships, link)),
                Err(NotRegistered::MembershipsChanged) => continue,
                Err(NotRegistered::TooManySessions(limit)) => {
                    return Err(SessionEnd::Refused(format!(
                        "{} is logged in {limit} times already, as many as this server allows; close one of those \
                         connections or try again later",
                        self.account.nick
                    )));
                }
            }
        }
    }

    async fn run(
        &mut self,
        mut link: SessionLink,
        mut incoming: mpsc::UnboundedReceiver<Read>,
        heard: &LastHeard,
    ) -> SessionEnd {
        let end = self.serve_loop(&mut link, &mut incoming, heard).await;
        self.shared.hub.unregister(link.id, &self.account);
        match end {
            SessionEnd::Shutdown => {
                self.out
                    .queue(&ServerMsg::ShuttingDown { message: "the server is restarting; reconnect shortly".into() });
                let _ = self.flush().await;
                let _ = tokio::time::timeout(Duration::from_secs(1), self.out.shutdown()).await;
            }
            SessionEnd::AccountRemoved => {
                let message = format!("the account {} was removed by the server's operator", self.account.nick);
                refuse(&mut self.out, ErrorCode::AuthFailed, message).await;
            }
            _ => {}
        }
        end
    }

    async fn serve_loop(
        &mut self,
        link: &mut SessionLink,
        incoming: &mut mpsc::UnboundedReceiver<Read>,
        heard: &LastHeard,
    ) -> SessionEnd {
        let heartbeat = self.shared.config.heartbeat_interval();
        let dead_after = self.shared.config.dead_after();
        let max_pending = self.shared.config.limits.max_unacknowledged_per_connection;
        let max_pending_bytes = self.shared.config.limits.max_unacknowledged_bytes_per_connection;
        let shutdown = self.shared.shutdown.clone();
        let gone = self.gone.clone();
        let wake = link.wake.clone();
        // The waits live across turns of the loop: made anew each turn, each would take and give back a lock to
        // register itself, for every message.
        let mut shutting_down = std::pin::pin!(shutdown.cancelled());
        let mut client_gone = std::pin::pin!(gone.cancelled());
        let mut woken = std::pin::pin!(wake.notified());
        let mut ticker = tokio::time::interval(heartbeat / 2);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let presence_after = Duration::from_millis(self.shared.config.limits.presence_after_ms);
        let mut settling = std::pin::pin!(tokio::time::sleep(presence_after));
        let mut settled = false;
        let mut pending = Sends::default();
        loop {
            let step = tokio::select! {
                biased;
                _ = &mut shutting_down => Err(SessionEnd::Shutdown),
                _ = &mut client_gone => Err(SessionEnd::ClientLeft),
                answer = next_answer(&mut pending.queue) => {
                    self.answer_sends(&mut pending, answer);
                    Ok(())
                }
                read = incoming.recv(), if pending.queue.len() < max_pending && pending.bytes < max_pending_bytes => {
                    match read.map(|read| read.incoming) {
                        Some(Incoming::Msg(msg)) => self.handle(msg, &mut pending).await,
                        Some(Incoming::Bad(code, message)) => {
                            tracing::warn!(nick = %self.account.nick, ?code, "dropped a bad frame");
                            self.error(code, message, None);
                            Ok(())
                        }
                        Some(Incoming::Fatal(code, message)) => {
                            self.error(code, message.clone(), None);
                            let _ = self.flush().await;
                            Err(SessionEnd::Broken(message))
                        }
                        Some(Incoming::Closed) | None => Err(SessionEnd::ClientLeft),
                    }
                }
                live = link.rx.recv() => match live {
                    Some(first) => self.deliver(first, &mut link.rx).await,
                    None => Err(SessionEnd::Broken("hub closed".into())),
                },
                _ = &mut woken => {
                    woken.set(wake.notified());
                    self.take_pending(&link.pending).await
                }
                _ = &mut settling, if !settled => {
                    settled = true;
                    self.shared.hub.announce_arrival(&self.account);
                    Ok(())
                }
                _ = ticker.tick() => {
                    if heard.silence() > dead_after {
                        Err(SessionEnd::Silent)
                    } else {
                        if self.last_sent.elapsed() >= heartbeat {
                            self.out.queue(&ServerMsg::Ping { nonce: 0 });
                        }
                        Ok(())
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
            if let Err(end) = self.gather_ready(&mut pending, link).await {
                return end;
            }
            if let Err(end) = self.flush().await {
                return end;
            }
        }
    }

    /// Queues whatever else is ready before the write: a message's `Accepted` and its delivery to the sender
    /// are ready together, and one write (one TLS record, one system call) is cheaper than two.
    async fn gather_ready(&mut self, pending: &mut Sends, link: &mut SessionLink) -> Result<(), SessionEnd> {
        const ROUNDS: usize = 4;
        for _ in 0..ROUNDS {
            let mut ready = false;
            if let Some(answer) = ready_answer(&mut pending.queue) {
                self.answer_sends(pending, answer);
                ready = true;
            }
            if let Ok(item) = link.rx.try_recv() {
                self.deliver(item, &mut link.rx).await?;
                ready = true;
            }
            if !ready {
                break;
            }
        }
        Ok(())
    }

    /// Answers the oldest pending send and any others already settled behind it, in order.
    fn answer_sends(&mut self, pending: &mut Sends, first: Option<WriteResult<AppendOutcome>>) {
        let mut answer = Some(first);
        while let Some(result) = answer.take() {
            let Some(Pending { id, conversation, .. }) = pending.pop() else { return };
            match result {
                Some(Ok(AppendOutcome::Appended(appended))) => {
                    self.out.queue(&ServerMsg::Accepted { id, conversation, seq: appended.seq, ts: appended.ts })
                }
                Some(Ok(AppendOutcome::Gone)) => {
                    self.error(ErrorCode::NotMember, format!("{conversation} no longer exists"), Some(id))
                }
                Some(Err(failed)) => self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), Some(id)),
                None => self.error(ErrorCode::StoreUnavailable, "the store did not answer; try again", Some(id)),
            }
            answer = ready_answer(&mut pending.queue);
        }
    }

    async fn handle(&mut self, msg: ClientMsg, pending: &mut Sends) -> Result<(), SessionEnd> {
        match msg {
            ClientMsg::Send { id, to, text } => {
                // Past the account's message rate this waits, reading nothing more: TCP slows the flooder down.
                self.shared.messages.pace(self.account.id, &self.gone).await;
                self.send(id, to, text, pending).await
            }
            ClientMsg::Ack { conversation, seq } => {
                if let Some(&conv) = self.by_view.get(&conversation) {
                    let seq = seq.min(self.sent.get(&conv).copied().unwrap_or(0));
                    if seq > self.acked.get(&conv).copied().unwrap_or(0) {
                        self.acked.insert(conv, seq);
                        self.shared.writer.advance_cursor(self.account.id, conv, seq);
                    }
                }
                Ok(())
            }
            ClientMsg::Join { room } => {
                self.pace_request().await;
                self.join(&room).await
            }
            ClientMsg::Leave { room } => {
                self.pace_request().await;
                self.leave(&room).await
            }
            ClientMsg::Users { room } => {
                self.pace_request().await;
                self.users(&room).await
            }
            ClientMsg::History { conversation, before, limit } => {
                self.pace_request().await;
                self.history(conversation, before, limit).await
            }
            ClientMsg::Ping { nonce } => {
                self.out.queue(&ServerMsg::Pong { nonce });
                Ok(())
            }
            ClientMsg::Pong { .. } => Ok(()),
            ClientMsg::Bye => Err(SessionEnd::ClientLeft),
            ClientMsg::Hello { .. } => {
                self.error(ErrorCode::Protocol, "already logged in", None);
                Ok(())
            }
        }
    }

    /// Waits for the account's turn for a request that costs the store or others something, reading nothing more
    /// meanwhile, like a flood of sends.
    async fn pace_request(&self) {
        self.shared.requests.pace(self.account.id, &self.gone).await;
    }

    async fn send(
        &mut self,
        id: MessageId,
        to: Conversation,
        text: String,
        pending: &mut Sends,
    ) -> Result<(), SessionEnd> {
        if let Err(error) = validate_text(&text) {
            self.error(ErrorCode::InvalidText, error.to_string(), Some(id));
            return Ok(());
        }
        let conv = match (self.by_view.get(&to), &to) {
            (Some(&conv), _) => conv,
            (None, Conversation::Room(room)) => {
                self.error(ErrorCode::NotMember, format!("you are not in #{room}; join it first"), Some(id));
                return Ok(());
            }
            (None, Conversation::Direct(peer)) => match self.open_direct(peer).await? {
                Some(conv) => conv,
                None => {
                    self.error(ErrorCode::UnknownNick, format!("there is no user named {peer}"), Some(id));
                    return Ok(());
                }
            },
        };
        let Some(key) = self.keys_of.get(&conv).cloned() else { return Ok(()) };
        let bytes = text.len();
        match self.shared.writer.append(conv, key, self.account.nick.clone(), id, text).await {
            Ok(answer) => pending.push(Pending { id, conversation: to, bytes, answer }),
            Err(failed) => self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), Some(id)),
        }
        Ok(())
    }

    /// Creates the direct conversation with `peer`, if `peer` has an account.
    async fn open_direct(&mut self, peer: &Nick) -> Result<Option<ConvId>, SessionEnd> {
        let lookup = peer.clone();
        let Some(peer) = self.read(move |db| db.account(&lookup)).await? else {
            return Ok(None);
        };
        match self.shared.writer.open_direct(self.account.clone(), peer).await {
            Ok(Some(row)) => {
                self.sent.entry(row.id).or_insert(NEW_DIRECT_SENT);
                let id = row.id;
                self.track_conversation(id, row.key);
                Ok(Some(id))
            }
            Ok(None) => Ok(None),
            Err(failed) => Err(SessionEnd::Broken(failed.0.to_string())),
        }
    }

    fn parse_room(&mut self, raw: &str) -> Option<RoomName> {
        match RoomName::parse(raw) {
            Ok(room) => Some(room),
            Err(error) => {
                self.error(ErrorCode::InvalidName, error.to_string(), None);
                None
            }
        }
    }

    async fn join(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let window = self.shared.config.history.join_window;
        let max_rooms = self.shared.config.limits.max_rooms_per_user;
        let (row, added) = match self.shared.writer.join_room(room.clone(), self.account.id, window, max_rooms).await {
            Ok(JoinOutcome::Joined { row, added }) => (row, added),
            Ok(JoinOutcome::TooManyRooms) => {
                let message = format!("you are in {max_rooms} rooms, as many as this server allows; leave one first");
                self.error(ErrorCode::LimitReached, message, None);
                return Ok(());
            }
            Err(failed) => {
                self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
                return Ok(());
            }
        };
        let sent_after = match self.sent.get(&row.id) {
            Some(&sent) => sent,
            None if added => row.last_seq.saturating_sub(window),
            None => self.stored_cursor(row.id).await?,
        };
        if let Some(id) = self.id {
            self.shared.hub.joined(id, &self.account, row.id, &room, added, sent_after);
        }
        self.enter_room(row, sent_after).await
    }

    /// Says `Joined` and sends the room from the seq after `sent_after`, live from then on.
    async fn enter_room(&mut self, row: ConvRow, sent_after: u64) -> Result<(), SessionEnd> {
        self.sent.insert(row.id, sent_after);
        self.track_conversation(row.id, row.key.clone());
        self.out.queue(&ServerMsg::Joined { info: self.info(&row) });
        self.catch_up(row.id).await
    }

    async fn leave(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        if room.as_str() == RoomName::LOBBY {
            self.error(ErrorCode::Protocol, "everyone stays in #lobby", None);
            return Ok(());
        }
        let Some(&conv) = self.by_view.get(&Conversation::Room(room.clone())) else {
            self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
            return Ok(());
        };
        if let Err(failed) = self.shared.writer.leave_room(conv, self.account.id).await {
            self.error(ErrorCode::StoreUnavailable, failed.0.to_string(), None);
            return Ok(());
        }
        if let Some(id) = self.id {
            self.shared.hub.left(id, &self.account, conv, &room);
        }
        self.untrack_room(conv, room);
        Ok(())
    }

    fn untrack_room(&mut self, conv: ConvId, room: RoomName) {
        self.untrack_conversation(conv);
        self.out.queue(&ServerMsg::Left { room });
    }

    /// The direct conversation `conv` was deleted with `peer`'s account: the client forgets it too.
    fn untrack_direct(&mut self, conv: ConvId, peer: Nick) {
        self.untrack_conversation(conv);
        let reason = format!("the account {peer} was removed, and your direct conversation with it deleted");
        self.out.queue(&ServerMsg::Closed { conversation: Conversation::Direct(peer), reason });
    }

    /// Follows a change to the user's conversations made elsewhere: a room another session of the user joined
    /// from where that session started it, so both show it from the same message.
    async fn follow(&mut self, change: Change) -> Result<(), SessionEnd> {
        match change {
            Change::Joined { conv, joined_after, .. } if !self.keys_of.contains_key(&conv) => {
                if let Some(row) = self.read(move |db| db.conversation_by_id(conv)).await? {
                    return self.enter_room(row, joined_after).await;
                }
            }
            Change::Left { conv, room } if self.keys_of.contains_key(&conv) => self.untrack_room(conv, room),
            Change::DirectDeleted { conv, peer } if self.keys_of.contains_key(&conv) => self.untrack_direct(conv, peer),
            _ => {}
        }
        Ok(())
    }

    /// Takes what the hub put beside this session's queue: changes made elsewhere, then whatever the queue had no
    /// room for, read back from the store and the hub, which hold all of it.
    async fn take_pending(&mut self, pending: &PendingChanges) -> Result<(), SessionEnd> {
        let missed = pending.take_missed();
        if missed.account_removed {
            return Err(SessionEnd::AccountRemoved);
        }
        for change in pending.take_changes() {
            self.follow(change).await?;
        }
        if missed.conversations {
            self.reread_conversations().await?;
        } else if missed.direct {
            self.track_new_directs().await?;
        }
        if missed.messages {
            self.catch_up_all().await?;
        }
        if missed.presence {
            self.send_rosters().await?;
        }
        Ok(())
    }

    /// Tracks the direct conversations opened since this session began: the first message of one may be among
    /// the dropped.
    async fn track_new_directs(&mut self) -> Result<(), SessionEnd> {
        let account = self.account.id;
        let rows = self.read(move |db| db.conversations_of(account)).await?;
        for row in rows {
            if matches!(row.key, ConvKey::Direct(..)) && !self.keys_of.contains_key(&row.id) {
                self.sent.insert(row.id, NEW_DIRECT_SENT);
                self.track_conversation(row.id, row.key);
            }
        }
        Ok(())
    }

    /// Brings the session's conversations in line with the store, when the changes made elsewhere were too many
    /// to keep: rooms joined elsewhere are sent from the saved cursor, and what is gone is forgotten.
    async fn reread_conversations(&mut self) -> Result<(), SessionEnd> {
        let account = self.account.id;
        let memberships = self.read(move |db| db.memberships_of(account)).await?;
        let current: HashMap<ConvId, &ConvRow> = memberships.iter().map(|(_, row)| (row.id, row)).collect();
        let gone: Vec<(ConvId, ConvKey)> = self
            .keys_of
            .iter()
            .filter(|(conv, _)| !current.contains_key(conv))
            .map(|(conv, key)| (*conv, key.clone()))
            .collect();
        for (conv, key) in gone {
            match key {
                ConvKey::Room(room) => self.untrack_room(conv, room),
                ConvKey::Direct(..) => match self.view(&key) {
                    Conversation::Direct(peer) => self.untrack_direct(conv, peer),
                    Conversation::Room(_) => {}
                },
            }
        }
        for (cursor, row) in memberships {
            if self.keys_of.contains_key(&row.id) {
                continue;
            }
            match row.key {
                ConvKey::Room(_) => self.enter_room(row, cursor).await?,
                ConvKey::Direct(..) => {
                    self.sent.insert(row.id, NEW_DIRECT_SENT);
                    self.track_conversation(row.id, row.key);
                }
            }
        }
        Ok(())
    }

    /// Sends each room's members, online and not, in place of the presence notices that were dropped.
    async fn send_rosters(&mut self) -> Result<(), SessionEnd> {
        let rooms: Vec<(ConvId, RoomName)> = self
            .keys_of
            .iter()
            .filter_map(|(conv, key)| match key {
                ConvKey::Room(room) => Some((*conv, room.clone())),
                ConvKey::Direct(..) => None,
            })
            .collect();
        let convs: Vec<ConvId> = rooms.iter().map(|(conv, _)| *conv).collect();
        let members: Vec<Vec<Nick>> = self.read(move |db| convs.iter().map(|conv| db.members(*conv)).collect()).await?;
        for ((conv, room), members) in rooms.into_iter().zip(members) {
            self.queue_roster(conv, room, members);
            if self.out.pending_len() >= OUT_BUDGET {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn users(&mut self, raw: &str) -> Result<(), SessionEnd> {
        let Some(room) = self.parse_room(raw) else { return Ok(()) };
        let Some(&conv) = self.by_view.get(&Conversation::Room(room.clone())) else {
            self.error(ErrorCode::NotMember, format!("you are not in #{room}"), None);
            return Ok(());
        };
        let members = self.read(move |db| db.members(conv)).await?;
        self.queue_roster(conv, room, members);
        Ok(())
    }

    fn queue_roster(&mut self, conv: ConvId, room: RoomName, members: Vec<Nick>) {
        let online = self.shared.hub.online_in(conv);
        let offline = members.into_iter().filter(|m| online.binary_search(m).is_err()).collect();
        self.out.queue(&ServerMsg::Users { room, online, offline });
    }

    /// A page of scrollback: at most `limit` messages and [`PAGE_BYTES`] of text, written out before the next
    /// request is read, so a client that asks without reading holds one page at most.
    async fn history(&mut self, conversation: Conversation, before: u64, limit: u32) -> Result<(), SessionEnd> {
        let Some(&conv) = self.by_view.get(&conversation) else {
            self.error(ErrorCode::NotMember, format!("you are not in {conversation}"), None);
            return Ok(());
        };
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let page = self
            .read(move |db| {
                let row = db.conversation_by_id(conv)?;
                let messages = match &row {
                    Some(row) => newest_within(db.messages_before(row, before, limit)?, PAGE_BYTES),
                    None => Vec::new(),
                };
                Ok((row.map(|r| r.first_seq).unwrap_or(1), messages))
            })
            .await?;
        let (complete_from, messages) = page;
        let messages = messages.iter().map(|m| m.for_reader(self.account.id)).collect();
        self.out.queue(&ServerMsg::History(HistoryPage { conversation, messages, complete_from }));
        self.flush().await
    }

    /// Runs a store read off the async threads; a failed read ends the session (the client reconnects).
    async fn read<T, F>(&self, read: F) -> Result<T, SessionEnd>
    where
        T: Send + 'static,
        F: FnOnce(&palomar_store::Db) -> Result<T, palomar_store::StoreError> + Send + 'static,
    {
        self.shared.reads.run(read).await.map_err(|e| SessionEnd::Broken(e.to_string()))
    }

    async fn stored_cursor(&self, conv: ConvId) -> Result<u64, SessionEnd> {
        let account = self.account.id;
        let saved = self.read(move |db| db.cursor(account, conv)).await?;
        Ok(saved.max(self.shared.writer.pending_cursor(account, conv).unwrap_or(0)))
    }

    /// Sends a live item and whatever else is already queued behind it, messages batched into frames.
    async fn deliver(&mut self, first: Live, rx: &mut mpsc::Receiver<Live>) -> Result<(), SessionEnd> {
        let mut batch: Vec<Outgoing> = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            taken += 1;
            match item {
                Live::Message(published) => self.deliver_message(published, &mut batch).await?,
                Live::Presence { room, nick, state } => {
                    self.flush_batch(&mut batch);
                    self.out.queue(&ServerMsg::Presence { room, nick, state });
                }
            }
            if batch.len() >= LIVE_BATCH {
                self.flush_batch(&mut batch);
            }
            if self.out.pending_len() >= OUT_BUDGET {
                // A reader that keeps up loses nothing by a write here; one that does not is not buffered for.
                self.flush().await?;
            }
            if taken < 4 * LIVE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        self.flush_batch(&mut batch);
        Ok(())
    }

    fn flush_batch(&mut self, batch: &mut Vec<Outgoing>) {
        self.queue_messages(std::mem::take(batch));
    }

    /// Queues messages as `Messages` frames of bounded size, in order.
    fn queue_messages(&mut self, messages: Vec<Outgoing>) {
        let reader = self.account.id;
        let encoded: Vec<Cow<'_, [u8]>> = messages
            .iter()
            .map(|message| match message {
                Outgoing::Live(published) => published.encoded_for(reader),
                Outgoing::Encoded(bytes) => Cow::Borrowed(bytes.as_slice()),
            })
            .collect();
        let mut frame: Vec<&[u8]> = Vec::with_capacity(encoded.len());
        let mut bytes = 0;
        for message in &encoded {
            if !frame.is_empty() && bytes + message.len() > FRAME_BUDGET {
                self.out.queue_payload(&messages_payload(&frame));
                frame.clear();
                bytes = 0;
            }
            bytes += message.len();
            frame.push(message);
        }
        if !frame.is_empty() {
            self.out.queue_payload(&messages_payload(&frame));
        }
    }

    async fn deliver_message(
        &mut self,
        published: Arc<Published>,
        batch: &mut Vec<Outgoing>,
    ) -> Result<(), SessionEnd> {
        let (conv, message) = (published.conv, &published.message);
        let sent = match self.sent.get(&conv) {
            Some(&sent) => sent,
            None if matches!(message.key, ConvKey::Room(_)) => {
                // Queued before this session left the room.
                return Ok(());
            }
            None => {
                // A direct conversation opened by the other side or by another session of this user.
                self.track_conversation(conv, message.key.clone());
                self.sent.insert(conv, NEW_DIRECT_SENT);
                NEW_DIRECT_SENT
            }
        };
        if message.seq <= sent {
            return Ok(());
        }
        if message.seq > sent + 1 {
            self.flush_batch(batch);
            self.send_backlog(conv, message.seq - 1).await?;
        }
        self.sent.insert(conv, message.seq);
        batch.push(Outgoing::Live(published));
        Ok(())
    }

    async fn catch_up_all(&mut self) -> Result<(), SessionEnd> {
        let convs: Vec<ConvId> = self.sent.keys().copied().collect();
        for conv in convs {
            self.catch_up(conv).await?;
        }
        Ok(())
    }

    async fn catch_up(&mut self, conv: ConvId) -> Result<(), SessionEnd> {
        let latest = self.shared.hub.latest(conv);
        self.send_backlog(conv, latest).await
    }

    /// Sends everything from the log after what this client has, up to `upto`, a page per frame; says so
    /// explicitly when retention already removed part of it.
    async fn send_backlog(&mut self, conv: ConvId, upto: u64) -> Result<(), SessionEnd> {
        let mut sent = self.sent.get(&conv).copied().unwrap_or(0);
        if sent >= upto {
            return Ok(());
        }
        let Some(row) = self.read(move |db| db.conversation_by_id(conv)).await? else {
            return Ok(());
        };
        if sent + 1 < row.first_seq {
            self.out.queue(&ServerMsg::Gap { conversation: self.view(&row.key), complete_from: row.first_seq });
            sent = row.first_seq - 1;
            self.sent.insert(conv, sent);
        }
        let row = Arc::new(row);
        let reader = self.account.id;
        while sent < upto {
            let limit = u32::try_from(upto - sent).unwrap_or(u32::MAX).min(CATCH_UP_PAGE);
            let page_row = row.clone();
            let page =
                self.read(move |db| Ok(oldest_within(db.messages_after(&page_row, sent, limit)?, PAGE_BYTES))).await?;
            let Some(last) = page.last() else { break };
            sent = last.seq;
            self.sent.insert(conv, sent);
            let messages =
                page.iter().map(|m| Outgoing::Encoded(palomar_proto::encode(&m.for_reader(reader)))).collect();
            self.queue_messages(messages);
            self.flush().await?;
        }
        Ok(())
    }
}

/// The answer to the oldest pending send if it has already come, without waiting; `Some(None)` when the
/// writer dropped it.
fn ready_answer(pending: &mut VecDeque<Pending>) -> Option<Option<WriteResult<AppendOutcome>>> {
    match pending.front_mut()?.answer.try_recv() {
        Ok(result) => Some(Some(result)),
        Err(oneshot::error::TryRecvError::Closed) => Some(None),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

/// The answer to the oldest pending send; `None` when the writer dropped it. Never resolves when nothing is
/// pending, so it can sit in a `select!`.
async fn next_answer(pending: &mut VecDeque<Pending>) -> Option<WriteResult<AppendOutcome>> {
    match pending.front_mut() {
        Some(front) => (&mut front.answer).await.ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palomar_store::ConvKey;

    fn page(sizes: &[usize]) -> Vec<StoredMessage> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| StoredMessage {
                key: ConvKey::Room(RoomName::lobby()),
                seq: i as u64 + 1,
                id: MessageId([0; 16]),
                from: Nick::parse("ana").expect("valid"),
                ts: 0,
                text: "x".repeat(size),
            })
            .collect()
    }

    fn seqs(page: &[StoredMessage]) -> Vec<u64> {
        page.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_page_keeps_what_fits_in_its_bytes_and_never_nothing() {
        assert_eq!(seqs(&newest_within(page(&[4, 4, 4, 4]), 8)), [3, 4], "scrollback keeps the newest");
        assert_eq!(seqs(&oldest_within(page(&[4, 4, 4, 4]), 8)), [1, 2], "catching up keeps the oldest");
        assert_eq!(seqs(&newest_within(page(&[4, 100]), 8)), [2], "one message, however long");
        assert_eq!(seqs(&oldest_within(page(&[100, 4]), 8)), [1]);
        assert_eq!(seqs(&newest_within(page(&[1, 1]), 8)), [1, 2]);
        assert!(newest_within(Vec::new(), 8).is_empty() && oldest_within(Vec::new(), 8).is_empty());
    }
}
