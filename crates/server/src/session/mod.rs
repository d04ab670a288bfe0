//! One client connection: TLS and frame keys, login, then the loop that relays the client's requests to
//! the store and the hub's deliveries (or the log, when it lags) to the client.
//!
//! What a connection can make the server hold is bounded in bytes, whatever the client sends: frames read ahead
//! of the session (`read_ahead_bytes_per_connection`, before and after login), its sends waiting for the store
//! (`max_unacknowledged_bytes_per_connection`), and what waits to be written to it (a page, then a flush that
//! waits for the client to read). Past those the session stops reading, and TCP pushes back on the client.
//!
//! # Layout
//! - this module: [`serve`], the session's state and its `select!` loop, writes and store reads.
//! - `wire`: the native frames or the browser's WebSocket, behind one reader and one writer type.
//! - `reader`: the task that reads the client's frames ahead of the session.
//! - `login`: handshake, `Hello`, login, registration with the hub, `Welcome`.
//! - `handlers`: one request of the client each (`send`, `join`, `leave`, `history`, `users`, …; `awareness`:
//!   version 6's away messages, `Whois`, typing and read markers).
//! - `delivery`: what the client has been sent, and so what to send, skip or read back; no I/O.
//! - `outgoing`: live deliveries and read-backs from the log, batched into frames, as `delivery` decides.
//! - `changes`: following what the hub put beside the live queue (changes made elsewhere, what it dropped).
//! - `rooms`: the rooms' settings and the user's standing in them, as the client is told them.
//! - `typing`: which typing notices of the client are passed on (version 6); no I/O.

mod changes;
mod delivery;
mod handlers;
mod login;
mod outgoing;
mod reader;
mod rooms;
mod typing;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palomar_proto::{
    AWARENESS_VERSION, Conversation, ConversationInfo, ErrorCode, KINDS_VERSION, MessageId, RoomState, ServerMsg,
};
use palomar_store::{Account, ConvId, ConvKey, ConvRow};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::hub::{SessionId, SessionLink};
use delivery::Delivery;
use handlers::send::{Sends, next_answer, ready_answer};
use login::{LoggedIn, refuse};
use reader::{Incoming, Reader};
use typing::TypingLimiter;
pub(crate) use typing::typing_limit;
use wire::{Frames, Out};

/// Encoded bytes of messages per `Messages` frame, well under what clients accept (a frame stays small even
/// with the longest texts).
const FRAME_BUDGET: usize = 128 * 1024;
/// Bytes of message text read from the log per page (catching up, scrollback), whatever the page's count: 256
/// of the longest texts would be 2 MiB held for one connection.
const PAGE_BYTES: usize = 2 * FRAME_BUDGET;
/// Bytes waiting to be written to the client past which the session writes them out before queuing more.
const OUT_BUDGET: usize = 2 * FRAME_BUDGET;

type Tls = TlsStream<TcpStream>;

/// Why the session loop ended, for the log.
enum SessionEnd {
    ClientLeft,
    Silent,
    Shutdown,
    AccountRemoved,
    /// The account was suspended; what its client is told.
    Suspended(String),
    Refused(String),
    Broken(String),
    /// The message later sends waited for turned out to be stored (the database's answer to its commit was lost):
    /// its client, seeing it delivered, will not send it again, so only a new connection, on which the client
    /// resends the rest of its outbox in order, lets them through.
    StoredAfterAll,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::ClientLeft => f.write_str("client closed the connection"),
            SessionEnd::Silent => f.write_str("client silent past the heartbeat limit"),
            SessionEnd::Shutdown => f.write_str("server shutting down"),
            SessionEnd::AccountRemoved => f.write_str("the account was removed"),
            SessionEnd::Suspended(why) => f.write_str(why),
            SessionEnd::Refused(why) => write!(f, "refused: {why}"),
            SessionEnd::Broken(why) => write!(f, "connection broken: {why}"),
            SessionEnd::StoredAfterAll => {
                f.write_str("a message refused as not stored was stored after all; the client resends the rest anew")
            }
        }
    }
}

/// Serves one accepted TCP connection of the native protocol until it ends.
pub async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, refusal: Option<&'static str>) {
    let deadline = Instant::now() + Duration::from_millis(shared.config.limits.handshake_timeout_ms);
    let Some((frames, out)) = login::handshake(&shared, tcp, peer, deadline).await else { return };
    converse(shared, frames, out, peer, deadline, refusal).await;
}

/// Serves a browser's WebSocket, upgraded by the web listener, until it ends: the same session as a native
/// connection's, in JSON. Its `Hello` is due within the handshake deadline from the upgrade.
pub async fn serve_web(
    shared: Arc<Shared>,
    socket: axum::extract::ws::WebSocket,
    peer: SocketAddr,
    refusal: Option<&'static str>,
) {
    let deadline = Instant::now() + Duration::from_millis(shared.config.limits.handshake_timeout_ms);
    let (frames, out) = wire::split_web(socket);
    converse(shared, frames, out, peer, deadline, refusal).await;
}

/// From the first frame to the end of the connection, whichever wire it is.
async fn converse(
    shared: Arc<Shared>,
    frames: Frames,
    mut out: Out,
    peer: SocketAddr,
    deadline: Instant,
    refusal: Option<&'static str>,
) {
    if let Some(reason) = refusal {
        out.queue(&ServerMsg::Error { code: ErrorCode::ServerFull, message: reason.into(), id: None });
        let _ = tokio::time::timeout(Duration::from_secs(1), out.flush()).await;
        return;
    }
    // Cancelled when the client is gone (or the server stops): what it sent and the session has not handled yet
    // is dropped rather than worked through for nobody. Its unacknowledged messages are in its outbox.
    let gone = shared.shutdown.child_token();
    // Reads until it is dropped, whichever way this function returns.
    let mut reader = Reader::start(
        frames,
        shared.config.limits.read_ahead_bytes_per_connection,
        gone.clone(),
        shared.metrics.bytes_received.clone(),
    );
    let Some(LoggedIn { account, registered, nick, positions, version }) =
        login::log_in(&shared, &mut out, &mut reader.incoming, &gone, peer, deadline).await
    else {
        return;
    };
    let mut session = Session {
        shared: shared.clone(),
        account,
        out,
        gone,
        keys_of: HashMap::new(),
        by_view: HashMap::new(),
        delivery: Delivery::default(),
        last_sent: Instant::now(),
        id: None,
        awaiting_resend: None,
        own_delivered: VecDeque::new(),
        version,
        operator: false,
        room_states: HashMap::new(),
        typing: TypingLimiter::default(),
    };
    shared.metrics.sessions.increment(1.0);
    let end = match session.start(registered, positions).await {
        Ok(link) => session.run(link, &mut reader).await,
        Err(end) => end,
    };
    shared.metrics.sessions.decrement(1.0);
    tracing::info!(%peer, %nick, reason = %end, "session ended");
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
    /// What the client has been sent and has acknowledged, per conversation.
    delivery: Delivery,
    last_sent: Instant,
    /// This session in the hub, once registered.
    id: Option<SessionId>,
    /// The first message the store could not take (or could not say it took): later `Send`s are refused until
    /// the client sends it again, so that none of them is stored before it.
    awaiting_resend: Option<MessageId>,
    /// The ids of this user's own messages delivered here lately, as many as sends a connection may have waiting:
    /// a refusal that comes after its message was delivered is of a message stored after all.
    own_delivered: VecDeque<MessageId>,
    /// The protocol version of the client: nothing newer than it is sent.
    version: u16,
    /// The user is one of the server's operators (as of the login: it moderates every room).
    operator: bool,
    /// The rooms whose settings, or the user's standing in them, are not the defaults, as the client was told;
    /// what decides whether the user may send to them.
    room_states: HashMap<ConvId, RoomState>,
    /// Which of the client's typing notices are passed on.
    typing: TypingLimiter,
}

impl Session {
    fn error(&mut self, code: ErrorCode, message: impl Into<String>, id: Option<MessageId>) {
        // An older client cannot decode the codes later versions added; it drops a message refused as `NotMember`
        // from its outbox as it must drop one refused for a ban, a mute or an unknown message.
        let code = match code {
            ErrorCode::NotAllowed | ErrorCode::Banned if self.version < 2 => ErrorCode::NotMember,
            ErrorCode::UnknownMessage if self.version < KINDS_VERSION => ErrorCode::NotMember,
            code => code,
        };
        self.out.queue(&ServerMsg::Error { code, message: message.into(), id });
    }

    /// Queues `msg`, a frame protocol version 2 added, if the client speaks that version.
    fn queue_since_v2(&mut self, msg: &ServerMsg) {
        if self.version >= 2 {
            self.out.queue(msg);
        }
    }

    /// Queues `msg`, a frame of knowing who is there (protocol version 6), if the client speaks that version.
    fn queue_since_v6(&mut self, msg: &ServerMsg) {
        if self.version >= AWARENESS_VERSION {
            self.out.queue(msg);
        }
    }

    async fn flush(&mut self) -> Result<(), SessionEnd> {
        let bytes = self.out.pending_len();
        if bytes == 0 {
            return Ok(());
        }
        match tokio::time::timeout(self.shared.config.dead_after(), self.out.flush()).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                self.shared.metrics.bytes_sent.increment(bytes as u64);
                Ok(())
            }
            Ok(Err(error)) => Err(SessionEnd::Broken(error.to_string())),
            Err(_) => Err(SessionEnd::Silent),
        }
    }

    fn view(&self, key: &ConvKey) -> Conversation {
        key.view_for(self.account.id)
    }

    /// Follows `id`, whose messages up to `sent_after` its client has or is not to be sent.
    fn track_conversation(&mut self, id: ConvId, key: ConvKey, sent_after: u64) {
        self.delivery.follow(id, sent_after);
        self.name_conversation(id, key);
    }

    /// Follows a direct conversation met after login from its first message (where it is, if followed already).
    fn track_new_direct(&mut self, id: ConvId, key: ConvKey) {
        self.delivery.follow_new_direct(id);
        self.name_conversation(id, key);
    }

    fn name_conversation(&mut self, id: ConvId, key: ConvKey) {
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
        self.delivery.unfollow(conv);
        self.room_states.remove(&conv);
        self.typing.forget(conv);
    }

    fn info(&self, row: &ConvRow) -> ConversationInfo {
        ConversationInfo {
            conversation: self.view(&row.key),
            latest_seq: self.shared.hub.latest(row.id).max(row.last_seq),
            first_seq: row.first_seq,
        }
    }

    /// Runs a store read off the async threads; a failed read ends the session (the client reconnects).
    async fn read<T, F>(&self, read: F) -> Result<T, SessionEnd>
    where
        T: Send + 'static,
        F: FnOnce(&dyn palomar_store::Store) -> Result<T, palomar_store::StoreError> + Send + 'static,
    {
        self.shared.reads.run(read).await.map_err(|e| SessionEnd::Broken(e.to_string()))
    }

    async fn stored_cursor(&self, conv: ConvId) -> Result<u64, SessionEnd> {
        let account = self.account.id;
        let saved = self.read(move |db| db.cursor(account, conv)).await?;
        Ok(saved.max(self.shared.writer.pending_cursor(account, conv).unwrap_or(0)))
    }

    async fn run(&mut self, mut link: SessionLink, reader: &mut Reader) -> SessionEnd {
        let end = self.serve_loop(&mut link, reader).await;
        self.shared.hub.unregister(link.id, &self.account);
        match &end {
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
            SessionEnd::Suspended(message) => refuse(&mut self.out, ErrorCode::AuthFailed, message.clone()).await,
            // Closed rather than dropped: a browser's WebSocket then ends with a close frame, not as if the
            // network had failed.
            _ => {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.out.shutdown()).await;
            }
        }
        end
    }

    async fn serve_loop(&mut self, link: &mut SessionLink, reader: &mut Reader) -> SessionEnd {
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
                answer = next_answer(&mut pending) => {
                    self.answer_sends(&mut pending, answer);
                    Ok(())
                }
                read = reader.incoming.recv(), if pending.len() < max_pending && pending.bytes() < max_pending_bytes => {
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
                    // Read now, not at login: another session of the user may have changed it meanwhile.
                    let account = self.account.id;
                    match self.read(move |db| db.away_of(account)).await {
                        Ok(away) => {
                            self.shared.hub.announce_arrival(&self.account, away);
                            Ok(())
                        }
                        Err(end) => Err(end),
                    }
                }
                _ = ticker.tick() => {
                    if reader.heard.silence() > dead_after {
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
            if let Some(answer) = ready_answer(pending) {
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
}
