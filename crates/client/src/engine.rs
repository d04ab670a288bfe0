//! The connection engine: one task that keeps a session with the server alive for a front end.
//!
//! It owns the socket, the outbox and the cursors. Everything typed goes to the on-disk outbox first, then
//! to the server; it leaves the outbox only when the server says it is stored. Every (re)connection sends
//! the cursors in `Hello` and the whole outbox again; the server answers retried ids with their first seq,
//! and deliveries at or below a cursor are dropped, so nothing is shown twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use palomar_proto::{
    ClientMsg, Conversation, ConversationInfo, ErrorCode, HistoryPage, Message, MessageId, Nick, PROTOCOL_VERSION,
    Password, Position, PresenceState, RoomName, ServerMsg,
};
use palomar_transport::{Fingerprint, FramedReader, FramedWriter, ReadError, TrustDecision, client_config, frame_keys};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::task::AbortOnDropHandle;

use crate::backoff::Backoff;
use crate::known_hosts::KnownHosts;
use crate::owner_only;
use crate::state::{ClientState, OutboxEntry, StateError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent for this many heartbeat intervals is taken for dead: during the TLS handshake and the login too.
const MISSED_HEARTBEATS: u32 = 3;
/// The heartbeat interval assumed until a server says its own in `Welcome` (the protocol's default).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);
/// Longest a login may take, however often the server says it is still deciding.
const LOGIN_DEADLINE: Duration = Duration::from_secs(60);
/// How often received cursors are acknowledged to the server.
const ACK_EVERY: Duration = Duration::from_millis(200);
/// Wait before resending a message the server could not store.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// Largest frame accepted from the server: a scrollback page of the longest texts fits.
/// Messages sent on a connection and not yet answered, at most.
const SEND_WINDOW: usize = 256;
/// Frames from the server handled (and saved) together.
const INCOMING_BATCH: usize = 64;
/// Commands from the front end handled (and saved) together.
const COMMAND_BATCH: usize = 256;
const MAX_FRAME: usize = 8 * 1024 * 1024;

/// How the engine decides to trust the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Pin the fingerprint on first use; refuse a different one later.
    FirstUse,
    /// Verify the certificate chain against these CAs.
    Authority(Vec<CertificateDer<'static>>),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `host:port`.
    pub server: String,
    pub nick: Nick,
    pub password: Password,
    /// Where pins, outboxes and cursors live.
    pub home: PathBuf,
    pub trust: Trust,
    /// A room to be a member of, joined on connect if needed.
    pub join: Option<RoomName>,
    /// Ask the front end ([`Event::ConfirmCertificate`]) before pinning a server seen for the first time,
    /// instead of pinning it silently.
    pub confirm_new_server: bool,
    pub backoff: Backoff,
}

/// What a front end asks the engine to do.
#[derive(Debug, Clone)]
pub enum Command {
    Send {
        to: Conversation,
        text: String,
    },
    Join {
        room: String,
    },
    Leave {
        room: String,
    },
    Users {
        room: String,
    },
    /// Up to `limit` messages before seq `before`; `None` asks for the newest ones.
    History {
        conversation: Conversation,
        before: Option<u64>,
        limit: u32,
    },
    /// The answer to [`Event::ConfirmCertificate`].
    TrustCertificate {
        accept: bool,
    },
    /// Close the connection and stop the engine.
    Quit,
}

/// What the engine tells its front end.
#[derive(Debug, Clone)]
pub enum Event {
    Connecting {
        server: String,
        attempt: u32,
    },
    /// First contact with this server (and `confirm_new_server` is set): trust this certificate? Answer with
    /// [`Command::TrustCertificate`]; nothing is sent to the server before.
    ConfirmCertificate {
        server: String,
        fingerprint: Fingerprint,
    },
    /// The server's certificate was pinned now, on first use.
    Pinned {
        server: String,
        fingerprint: Fingerprint,
    },
    Connected {
        nick: Nick,
        registered: bool,
        conversations: Vec<ConversationInfo>,
    },
    /// Everything the server held at login has been received (sent once per connection).
    Synced,
    Disconnected {
        reason: String,
        retry_in: Duration,
        attempt: u32,
        pending: usize,
        /// The server answered and refused the login for now (a lockout, a busy or full server): the address is
        /// right and waiting is the remedy, so a front end that gives up on a first failure waits this one out.
        refused_for_now: bool,
    },
    /// A message was put in the outbox (it will be sent, and resent, until accepted).
    Queued {
        id: MessageId,
        to: Conversation,
        text: String,
    },
    /// The server stored one of our messages.
    Accepted {
        id: MessageId,
        conversation: Conversation,
        seq: u64,
        ts: u64,
    },
    Message {
        message: Message,
        own: bool,
    },
    Presence {
        room: RoomName,
        nick: Nick,
        state: PresenceState,
    },
    Users {
        room: RoomName,
        online: Vec<Nick>,
        offline: Vec<Nick>,
    },
    Joined {
        info: ConversationInfo,
    },
    Left {
        room: RoomName,
    },
    /// The conversation no longer exists for us (a direct conversation deleted with the other account); a
    /// conversation of the same name later is a new one.
    Closed {
        conversation: Conversation,
        reason: String,
    },
    History(HistoryPage),
    /// Retention removed messages of this conversation that we had not seen.
    Gap {
        conversation: Conversation,
        complete_from: u64,
    },
    /// Something went wrong that does not stop the engine; `id` names a message that was refused for good.
    Error {
        code: Option<ErrorCode>,
        message: String,
        id: Option<MessageId>,
    },
    ServerShuttingDown {
        message: String,
    },
    /// The engine stopped and will not reconnect (wrong password, changed certificate, ...).
    Fatal {
        message: String,
        /// The server presented a certificate other than the pinned one; `message` gives both fingerprints
        /// and the command that accepts the new one.
        certificate_changed: bool,
        /// The login was refused: wrong password (or no such account where registration is closed). A front end
        /// that asked for the password may ask again and start anew.
        password_refused: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the client state in {path}: {source}")]
    State { path: PathBuf, source: StateError },
}

/// A running engine: send it commands, read its events.
pub struct Engine {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    outbox_len: watch::Receiver<usize>,
}

impl Engine {
    /// Opens the account's state under `config.home` and starts connecting in the background.
    pub fn start(config: EngineConfig) -> Result<Engine, StartError> {
        let path = state_path(&config);
        let state = ClientState::open(&path).map_err(|source| StartError::State { path: path.clone(), source })?;
        let outbox: VecDeque<OutboxEntry> =
            state.outbox().map_err(|source| StartError::State { path: path.clone(), source: source.into() })?.into();
        let cursors =
            state.cursors().map_err(|source| StartError::State { path, source: source.into() })?.into_iter().collect();
        let pins = config.home.join("known_hosts");
        // Pins are only ever written owner-only now, but a file from an older client may be readable by all.
        owner_only::restrict_existing(&pins)
            .map_err(|source| StartError::State { path: pins.clone(), source: source.into() })?;
        let (commands, command_rx) = mpsc::channel(1024);
        let (event_tx, events) = mpsc::channel(4096);
        let (outbox_tx, outbox_len) = watch::channel(outbox.len());
        let core = EngineTask {
            known_hosts: KnownHosts::new(pins),
            config,
            state,
            events: event_tx,
            outbox_len: outbox_tx,
            outbox,
            cursors,
            unacked_cursors: HashSet::new(),
            retry: Vec::new(),
            sync_targets: HashMap::new(),
            sent_count: 0,
            in_flight: 0,
            deferred: Vec::new(),
            moved: HashMap::new(),
            removals: Vec::new(),
            connected_once: false,
            heartbeat: DEFAULT_HEARTBEAT,
        };
        tokio::spawn(core.run(command_rx));
        Ok(Engine { commands, events, outbox_len })
    }

    /// The next event; `None` once the engine has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// A handle to send commands with; sending fails once the engine has stopped.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// How many messages wait in the outbox for the server's acknowledgement.
    pub fn outbox_len(&self) -> watch::Receiver<usize> {
        self.outbox_len.clone()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Where one account's state lives: `<home>/servers/<server>/<nick>/state.sqlite`.
pub fn state_path(config: &EngineConfig) -> PathBuf {
    account_state_path(&config.home, &config.server, &config.nick)
}

/// [`state_path`] of `nick` on `server`, under `home`: it exists once this home has been used for that account.
pub fn account_state_path(home: &std::path::Path, server: &str, nick: &Nick) -> PathBuf {
    let server: String =
        server.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    home.join("servers").join(server).join(nick.as_str()).join("state.sqlite")
}

type Tls = TlsStream<TcpStream>;

struct Connection {
    out: FramedWriter<WriteHalf<Tls>>,
    incoming: mpsc::Receiver<Result<ServerMsg, String>>,
    /// Aborted when the connection is dropped, however its serving ends.
    _reader: AbortOnDropHandle<()>,
    welcome: Welcome,
}

struct Welcome {
    registered: bool,
    heartbeat: Duration,
    conversations: Vec<ConversationInfo>,
}

/// How a connection ended.
enum ConnectionEnd {
    Reconnect(String),
    /// The server refused the login for now (a lockout, a busy or full server): reconnect after the time it
    /// said, if it said one, not sooner.
    RefusedForNow(String, Option<Duration>),
    Fatal(String),
    /// Fatal too, and a front end warns about it differently.
    CertificateChanged(String),
    /// Fatal too: the password was refused, and a front end may ask for it again.
    PasswordRefused(String),
    Quit,
}

struct EngineTask {
    config: EngineConfig,
    state: ClientState,
    known_hosts: KnownHosts,
    events: mpsc::Sender<Event>,
    outbox_len: watch::Sender<usize>,
    /// Unacknowledged messages in the order they were typed.
    outbox: VecDeque<OutboxEntry>,
    /// Highest seq received per conversation.
    cursors: HashMap<Conversation, u64>,
    /// Conversations whose cursor moved since the last ack to the server.
    unacked_cursors: HashSet<Conversation>,
    /// Messages the server could not store, to send again after [`STORE_RETRY`].
    retry: Vec<MessageId>,
    /// Conversations still behind the seq the server announced at login, until [`Event::Synced`].
    sync_targets: HashMap<Conversation, u64>,
    /// Outbox entries (from the front) already sent on this connection.
    sent_count: usize,
    /// Sends on this connection not yet answered.
    in_flight: usize,
    /// Events of the frames being handled, shown once their effects are saved.
    deferred: Vec<Event>,
    /// Cursors moved by the frames being handled, to save.
    moved: HashMap<Conversation, u64>,
    /// Outbox entries acknowledged by the frames being handled, to delete.
    removals: Vec<MessageId>,
    /// A server answered as a Palomar server in this run: from then on, a connection that fails is retried.
    connected_once: bool,
    /// The heartbeat interval of the last `Welcome`, for the dead-peer bound of the next connection's making.
    heartbeat: Duration,
}

impl EngineTask {
    async fn emit(&mut self, event: Event) {
        // A front end that stopped listening is not the engine's problem.
        let _ = self.events.send(event).await;
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut attempt = 0;
        loop {
            self.emit(Event::Connecting { server: self.config.server.clone(), attempt }).await;
            let flow = match self.connect(&mut commands).await {
                Ok(connection) => {
                    attempt = 0;
                    self.serve(connection, &mut commands).await
                }
                Err(flow) => flow,
            };
            let certificate_changed = matches!(flow, ConnectionEnd::CertificateChanged(_));
            let password_refused = matches!(flow, ConnectionEnd::PasswordRefused(_));
            match flow {
                ConnectionEnd::Quit => return,
                ConnectionEnd::Fatal(message)
                | ConnectionEnd::CertificateChanged(message)
                | ConnectionEnd::PasswordRefused(message) => {
                    // What was typed while connecting must not vanish: it waits in the outbox for next time.
                    let mut typed = Vec::new();
                    while let Ok(command) = commands.try_recv() {
                        if let Command::Send { to, text } = command {
                            typed.push((to, text));
                        }
                    }
                    self.queue(typed).await;
                    self.emit(Event::Fatal { message, certificate_changed, password_refused }).await;
                    return;
                }
                ConnectionEnd::Reconnect(reason) => {
                    attempt += 1;
                    let retry_in = self.config.backoff.delay(attempt);
                    if self.offline(reason, retry_in, attempt, false, &mut commands).await.is_err() {
                        return;
                    }
                }
                ConnectionEnd::RefusedForNow(reason, wait) => {
                    attempt += 1;
                    // The jitter of a first retry on top of a said time, so that clients told the same time do not
                    // all come back at once.
                    let retry_in = match wait {
                        Some(wait) => wait + self.config.backoff.delay(1),
                        None => self.config.backoff.delay(attempt),
                    };
                    if self.offline(reason, retry_in, attempt, true, &mut commands).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Says the connection is gone and sleeps until the next attempt. `Err` when told to quit.
    async fn offline(
        &mut self,
        reason: String,
        retry_in: Duration,
        attempt: u32,
        refused_for_now: bool,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Result<(), ()> {
        let pending = self.outbox.len();
        self.emit(Event::Disconnected { reason, retry_in, attempt, pending, refused_for_now }).await;
        self.wait_offline(retry_in, commands).await
    }

    /// Sleeps until the next attempt, still taking messages into the outbox. `Err` when told to quit.
    async fn wait_offline(&mut self, delay: Duration, commands: &mut mpsc::Receiver<Command>) -> Result<(), ()> {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                command = commands.recv() => match command {
                    None | Some(Command::Quit) => return Err(()),
                    Some(Command::Send { to, text }) => self.queue(vec![(to, text)]).await,
                    Some(_) => {
                        let message = "not connected; try again once reconnected".to_owned();
                        self.emit(Event::Error { code: None, message, id: None }).await;
                    }
                },
            }
        }
    }

    async fn connect(&mut self, commands: &mut mpsc::Receiver<Command>) -> Result<Connection, ConnectionEnd> {
        let server = self.config.server.clone();
        let pin = match &self.config.trust {
            Trust::Authority(_) => None,
            Trust::FirstUse => self
                .known_hosts
                .get(&server)
                .map_err(|e| ConnectionEnd::Fatal(format!("cannot read {}: {e}", self.known_hosts.path().display())))?,
        };
        let decision = match (&self.config.trust, pin) {
            (Trust::Authority(cas), _) => TrustDecision::Authority(cas.clone()),
            (Trust::FirstUse, Some(pin)) => TrustDecision::Pinned(pin),
            (Trust::FirstUse, None) => TrustDecision::FirstUse,
        };
        let (tls_config, seen) = client_config(decision).map_err(|e| ConnectionEnd::Fatal(e.to_string()))?;
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&server)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Err(ConnectionEnd::Fatal(format!("{server:?} is not a server address ({e}); give host:port")));
            }
            Ok(Err(e)) => return Err(ConnectionEnd::Reconnect(format!("cannot reach {server}: {e}"))),
            Err(_) => return Err(ConnectionEnd::Reconnect(format!("cannot reach {server}: timed out"))),
        };
        // Until this server has answered as a Palomar server once in this run, and unless its certificate was
        // pinned before, what answers may be something else on that port: that is said, and not retried for ever.
        let unproven = !self.connected_once && pin.is_none();
        let _ = tcp.set_nodelay(true);
        let host = server.rsplit_once(':').map_or(server.as_str(), |(host, _)| host).trim_matches(['[', ']']);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ConnectionEnd::Fatal(format!("{host:?} is not a valid server name")))?;
        let handshake = TlsConnector::from(tls_config).connect(name, tcp);
        // The server's last heartbeat interval (or the default): a connection that goes silent while it is being
        // made is noticed as soon as one that goes silent later.
        let dead_after = self.heartbeat * MISSED_HEARTBEATS;
        let tls = match tokio::time::timeout(dead_after, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                return Err(match (pin, seen.get()) {
                    (Some(pinned), Some(presented)) if pinned != presented => ConnectionEnd::CertificateChanged(
                        changed_certificate(&server, pinned, presented, &self.config.home),
                    ),
                    // The peer answered the TLS hello with something other than TLS: a web server, say.
                    _ if speaks_no_tls(&e) => {
                        let said = format!("{server} is not a Palomar server: it does not speak TLS ({e})");
                        if unproven { ConnectionEnd::Fatal(said) } else { ConnectionEnd::Reconnect(said) }
                    }
                    // A server over its connection-rate limit in a flood closes before TLS, without a word.
                    (_, None)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        ConnectionEnd::Reconnect(format!(
                            "{server} closed the connection before the TLS handshake (too many connection \
                             attempts, or not a Palomar server)"
                        ))
                    }
                    _ => ConnectionEnd::Reconnect(format!("TLS handshake with {server} failed: {e}")),
                });
            }
            Err(_) => return Err(ConnectionEnd::Reconnect(format!("TLS handshake with {server} timed out"))),
        };
        // A certificate seen for the first time is asked about (when the front end wants to) before anything is
        // sent, and pinned only once the server has answered as a Palomar server.
        let new_pin = match (&self.config.trust, pin, seen.get()) {
            (Trust::FirstUse, None, Some(fingerprint)) => {
                if self.config.confirm_new_server {
                    self.emit(Event::ConfirmCertificate { server: server.clone(), fingerprint }).await;
                    self.await_trust(&server, fingerprint, commands).await?;
                }
                Some(fingerprint)
            }
            _ => None,
        };
        let keys = frame_keys(tls.get_ref().1)
            .map_err(|e| ConnectionEnd::Reconnect(format!("cannot derive frame keys: {e}")))?;
        let (read_half, write_half) = tokio::io::split(tls);
        let mut out = FramedWriter::new(write_half, &keys.client_to_server);
        let mut reader = FramedReader::new(read_half, &keys.server_to_client, MAX_FRAME);
        let positions = self
            .cursors
            .iter()
            .map(|(conversation, seq)| Position { conversation: conversation.clone(), seq: *seq })
            .collect();
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: self.config.nick.to_string(),
            password: self.config.password.clone(),
            positions,
        };
        out.send(&hello).await.map_err(|e| ConnectionEnd::Reconnect(format!("connection lost: {e}")))?;
        let first = first_answer(&mut reader, &mut out, dead_after).await;
        // Anything else than a frame under this connection's keys is not a Palomar server's answer.
        let not_palomar = |what: String| {
            let said = format!("{server} did not answer as a Palomar server ({what}); is it the right address?");
            if unproven { ConnectionEnd::Fatal(said) } else { ConnectionEnd::Reconnect(said) }
        };
        let answer = match first {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => {
                return Err(ConnectionEnd::Reconnect("the server closed the connection during login".into()));
            }
            Ok(Err(e @ (ReadError::Frame(_) | ReadError::Malformed(_)))) => return Err(not_palomar(e.to_string())),
            Ok(Err(e)) => return Err(ConnectionEnd::Reconnect(format!("connection lost during login: {e}"))),
            Err(Silence::Silent) if unproven => {
                return Err(not_palomar(format!("silent for {} s", dead_after.as_secs())));
            }
            Err(Silence::Silent) => {
                return Err(ConnectionEnd::Reconnect(format!(
                    "no sign of the server for {} s during the login",
                    dead_after.as_secs()
                )));
            }
            Err(Silence::TooLong) => {
                return Err(ConnectionEnd::Reconnect("the server took too long to decide on the login".into()));
            }
        };
        if let Some(fingerprint) = new_pin {
            self.known_hosts.set(&server, fingerprint).map_err(|e| {
                ConnectionEnd::Fatal(format!(
                    "cannot save the server's fingerprint in {}: {e}",
                    self.known_hosts.path().display()
                ))
            })?;
            self.emit(Event::Pinned { server: server.clone(), fingerprint }).await;
        }
        let welcome = match answer {
            ServerMsg::Welcome { registered, heartbeat_ms, conversations, .. } => Welcome {
                registered,
                heartbeat: Duration::from_millis(u64::from(heartbeat_ms.max(100))),
                conversations,
            },
            ServerMsg::Error { code, message, .. } => return Err(refused_login(code, message)),
            ServerMsg::ShuttingDown { message } => return Err(ConnectionEnd::Reconnect(message)),
            other => {
                return Err(ConnectionEnd::Reconnect(format!("unexpected first answer from the server: {other:?}")));
            }
        };
        self.connected_once = true;
        self.heartbeat = welcome.heartbeat;
        let (tx, incoming) = mpsc::channel(256);
        let reader = AbortOnDropHandle::new(tokio::spawn(read_frames(reader, tx)));
        Ok(Connection { out, incoming, _reader: reader, welcome })
    }

    /// Waits for the front end's answer to [`Event::ConfirmCertificate`], keeping what is typed meanwhile.
    async fn await_trust(
        &mut self,
        server: &str,
        fingerprint: Fingerprint,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Result<(), ConnectionEnd> {
        loop {
            match commands.recv().await {
                None | Some(Command::Quit) => return Err(ConnectionEnd::Quit),
                Some(Command::TrustCertificate { accept: true }) => return Ok(()),
                Some(Command::TrustCertificate { accept: false }) => {
                    return Err(ConnectionEnd::Fatal(format!(
                        "the certificate {fingerprint} of {server} was not trusted"
                    )));
                }
                Some(Command::Send { to, text }) => self.queue(vec![(to, text)]).await,
                Some(_) => {
                    let message = "not connected yet: first decide whether to trust the server".to_owned();
                    self.emit(Event::Error { code: None, message, id: None }).await;
                }
            }
        }
    }

    /// Runs a connection until it ends; its reader task ends with it, when `connection` is dropped.
    async fn serve(&mut self, mut connection: Connection, commands: &mut mpsc::Receiver<Command>) -> ConnectionEnd {
        let welcome = &connection.welcome;
        let heartbeat = welcome.heartbeat;
        let dead_after = heartbeat * MISSED_HEARTBEATS;
        self.emit(Event::Connected {
            nick: self.config.nick.clone(),
            registered: welcome.registered,
            conversations: welcome.conversations.clone(),
        })
        .await;
        let out = &mut connection.out;
        if let Some(room) = &self.config.join {
            let conversation = Conversation::Room(room.clone());
            if !connection.welcome.conversations.iter().any(|info| info.conversation == conversation) {
                out.queue(&ClientMsg::Join { room: room.to_string() });
            }
        }
        self.sync_targets = connection
            .welcome
            .conversations
            .iter()
            .filter(|info| info.latest_seq > self.cursors.get(&info.conversation).copied().unwrap_or(0))
            .map(|info| (info.conversation.clone(), info.latest_seq))
            .collect();
        if self.sync_targets.is_empty() {
            self.emit(Event::Synced).await;
        }
        self.retry.clear();
        self.sent_count = 0;
        self.in_flight = 0;
        self.fill_window(out);
        let mut last_heard = Instant::now();
        let mut last_sent = Instant::now();
        let mut ticker = tokio::time::interval(heartbeat / 2);
        let mut acks = tokio::time::interval(ACK_EVERY);
        let mut retry_at: Option<Instant> = None;
        loop {
            let step = tokio::select! {
                msg = connection.incoming.recv() => {
                    last_heard = Instant::now();
                    let mut frames = Vec::new();
                    let mut broken = None;
                    match msg {
                        Some(Ok(msg)) => frames.push(msg),
                        Some(Err(e)) => broken = Some(e),
                        None => broken = Some("the server closed the connection".into()),
                    }
                    while broken.is_none() && frames.len() < INCOMING_BATCH {
                        match connection.incoming.try_recv() {
                            Ok(Ok(msg)) => frames.push(msg),
                            Ok(Err(e)) => broken = Some(e),
                            Err(_) => break,
                        }
                    }
                    // What the last frames said (a fatal error, say) counts before the connection's end after them.
                    match (self.on_frames(frames, out, &mut retry_at).await, broken) {
                        (Err(flow), _) => Err(flow),
                        (Ok(()), Some(reason)) => Err(ConnectionEnd::Reconnect(reason)),
                        (Ok(()), None) => Ok(()),
                    }
                }
                command = commands.recv() => {
                    let mut batch: Vec<Command> = command.into_iter().collect();
                    while !batch.is_empty() && batch.len() < COMMAND_BATCH {
                        match commands.try_recv() {
                            Ok(command) => batch.push(command),
                            Err(_) => break,
                        }
                    }
                    self.on_commands(batch, out).await
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > dead_after {
                        Err(ConnectionEnd::Reconnect(format!("no sign of the server for {} s", dead_after.as_secs())))
                    } else {
                        if last_sent.elapsed() >= heartbeat {
                            out.queue(&ClientMsg::Ping { nonce: 0 });
                        }
                        Ok(())
                    }
                }
                _ = acks.tick() => {
                    self.queue_acks(out);
                    Ok(())
                }
                _ = sleep_until_some(retry_at) => {
                    retry_at = None;
                    let ids: HashSet<MessageId> = self.retry.drain(..).collect();
                    for entry in self.outbox.iter().filter(|e| ids.contains(&e.id)) {
                        out.queue(&ClientMsg::Send { id: entry.id, to: entry.to.clone(), text: entry.text.clone() });
                        self.in_flight += 1;
                    }
                    Ok(())
                }
            };
            if let Err(flow) = step {
                if matches!(flow, ConnectionEnd::Quit) {
                    out.queue(&ClientMsg::Bye);
                    let _ = tokio::time::timeout(Duration::from_secs(1), out.flush()).await;
                }
                return flow;
            }
            if out.pending_len() > 0 {
                match tokio::time::timeout(dead_after, out.flush()).await {
                    Ok(Ok(())) => last_sent = Instant::now(),
                    Ok(Err(e)) => return ConnectionEnd::Reconnect(format!("connection lost: {e}")),
                    Err(_) => return ConnectionEnd::Reconnect("the server stopped reading".into()),
                }
            }
        }
    }

    /// Sends outbox entries not yet sent on this connection, keeping at most [`SEND_WINDOW`] unanswered. The
    /// window keeps the engine reading while it writes: a client that only wrote could block a server that
    /// is writing to it.
    fn fill_window(&mut self, out: &mut FramedWriter<WriteHalf<Tls>>) {
        while self.in_flight < SEND_WINDOW && self.sent_count < self.outbox.len() {
            let entry = &self.outbox[self.sent_count];
            out.queue(&ClientMsg::Send { id: entry.id, to: entry.to.clone(), text: entry.text.clone() });
            self.sent_count += 1;
            self.in_flight += 1;
        }
    }

    fn queue_acks(&mut self, out: &mut FramedWriter<WriteHalf<Tls>>) {
        for conversation in self.unacked_cursors.drain() {
            if let Some(&seq) = self.cursors.get(&conversation) {
                out.queue(&ClientMsg::Ack { conversation, seq });
            }
        }
    }

    /// Puts messages in the outbox (on disk first, in one synced transaction) and tells the front end.
    async fn queue(&mut self, messages: Vec<(Conversation, String)>) {
        if messages.is_empty() {
            return;
        }
        let entries: Vec<OutboxEntry> = messages
            .into_iter()
            .map(|(to, text)| OutboxEntry { id: MessageId::time_ordered(now_ms(), rand::random()), to, text })
            .collect();
        if let Err(e) = self.state.push_outbox(&entries) {
            let message =
                format!("could not save {} message(s) to disk ({e}); they are kept in memory only", entries.len());
            self.emit(Event::Error { code: None, message, id: None }).await;
        }
        self.outbox.extend(entries.iter().cloned());
        // The count first: a front end that sees `Queued` must also see it in the outbox.
        self.outbox_len.send_replace(self.outbox.len());
        for entry in entries {
            self.emit(Event::Queued { id: entry.id, to: entry.to, text: entry.text }).await;
        }
    }

    /// Handles commands in order; consecutive messages share one outbox transaction.
    async fn on_commands(
        &mut self,
        batch: Vec<Command>,
        out: &mut FramedWriter<WriteHalf<Tls>>,
    ) -> Result<(), ConnectionEnd> {
        if batch.is_empty() {
            return Err(ConnectionEnd::Quit);
        }
        let mut messages = Vec::new();
        for command in batch {
            if let Command::Send { to, text } = command {
                messages.push((to, text));
                continue;
            }
            self.queue(std::mem::take(&mut messages)).await;
            match command {
                Command::Join { room } => out.queue(&ClientMsg::Join { room }),
                Command::Leave { room } => out.queue(&ClientMsg::Leave { room }),
                Command::Users { room } => out.queue(&ClientMsg::Users { room }),
                Command::History { conversation, before, limit } => {
                    let before =
                        before.unwrap_or_else(|| self.cursors.get(&conversation).map_or(u64::MAX, |seq| seq + 1));
                    out.queue(&ClientMsg::History { conversation, before, limit });
                }
                Command::Quit => {
                    self.fill_window(out);
                    return Err(ConnectionEnd::Quit);
                }
                Command::Send { .. } | Command::TrustCertificate { .. } => {}
            }
        }
        self.queue(messages).await;
        self.fill_window(out);
        Ok(())
    }

    /// Takes a message out of the outbox once the server has it (a no-op if it is no longer there).
    fn accepted(&mut self, id: MessageId, conversation: Conversation, seq: u64, ts: u64) {
        if self.take_from_outbox(id) {
            self.deferred.push(Event::Accepted { id, conversation, seq, ts });
        }
    }

    fn take_from_outbox(&mut self, id: MessageId) -> bool {
        let Some(index) = self.outbox.iter().position(|e| e.id == id) else { return false };
        self.outbox.remove(index);
        if index < self.sent_count {
            self.sent_count -= 1;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.removals.push(id);
        self.outbox_len.send_replace(self.outbox.len());
        true
    }

    /// Handles frames from the server in order, then saves what moved (cursors, outbox) in one transaction
    /// each, and only then shows the events, so a crash never shows a message twice.
    async fn on_frames(
        &mut self,
        frames: Vec<ServerMsg>,
        out: &mut FramedWriter<WriteHalf<Tls>>,
        retry_at: &mut Option<Instant>,
    ) -> Result<(), ConnectionEnd> {
        let mut result = Ok(());
        for frame in frames {
            result = self.on_server(frame, out, retry_at);
            if result.is_err() {
                break;
            }
        }
        if !self.moved.is_empty() {
            if let Err(e) = self.state.save_cursors(self.moved.iter().map(|(c, s)| (c, *s))) {
                tracing::warn!(%e, "could not save cursors");
            }
            self.unacked_cursors.extend(self.moved.drain().map(|(c, _)| c));
        }
        if !self.removals.is_empty() {
            if let Err(e) = self.state.remove_outbox(&self.removals) {
                tracing::warn!(%e, "could not remove acknowledged messages from the outbox file");
            }
            self.removals.clear();
        }
        for event in std::mem::take(&mut self.deferred) {
            self.emit(event).await;
        }
        self.fill_window(out);
        result
    }

    fn on_server(
        &mut self,
        msg: ServerMsg,
        out: &mut FramedWriter<WriteHalf<Tls>>,
        retry_at: &mut Option<Instant>,
    ) -> Result<(), ConnectionEnd> {
        match msg {
            ServerMsg::Messages(messages) => self.on_messages(messages),
            ServerMsg::Accepted { id, conversation, seq, ts } => self.accepted(id, conversation, seq, ts),
            // The account was removed while we were logged in: logging in again would register the nickname
            // anew, as somebody else.
            ServerMsg::Error { code: ErrorCode::AuthFailed, message, .. } => {
                return Err(ConnectionEnd::Fatal(format!("logged out: {message}")));
            }
            ServerMsg::Error { code, message, id } => {
                match (code, id) {
                    (ErrorCode::StoreUnavailable, Some(id)) => {
                        self.in_flight = self.in_flight.saturating_sub(1);
                        self.retry.push(id);
                        retry_at.get_or_insert_with(|| Instant::now() + STORE_RETRY);
                    }
                    (ErrorCode::InvalidText | ErrorCode::NotMember | ErrorCode::UnknownNick, Some(id)) => {
                        self.take_from_outbox(id);
                    }
                    _ => {}
                }
                self.deferred.push(Event::Error { code: Some(code), message, id });
            }
            ServerMsg::Gap { conversation, complete_from } => {
                let cursor = self.cursors.entry(conversation.clone()).or_insert(0);
                *cursor = (*cursor).max(complete_from.saturating_sub(1));
                self.moved.insert(conversation.clone(), *cursor);
                self.deferred.push(Event::Gap { conversation, complete_from });
                self.check_synced();
            }
            ServerMsg::Joined { info } => {
                // A conversation `Welcome` had no room for comes this way too, and may have news to catch up on.
                if info.latest_seq > self.cursors.get(&info.conversation).copied().unwrap_or(0) {
                    self.sync_targets.insert(info.conversation.clone(), info.latest_seq);
                }
                self.deferred.push(Event::Joined { info });
            }
            ServerMsg::Left { room } => {
                self.forget(&Conversation::Room(room.clone()));
                self.deferred.push(Event::Left { room });
            }
            ServerMsg::Closed { conversation, reason } => {
                self.forget(&conversation);
                self.deferred.push(Event::Closed { conversation, reason });
            }
            ServerMsg::Presence { room, nick, state } => self.deferred.push(Event::Presence { room, nick, state }),
            ServerMsg::Users { room, online, offline } => self.deferred.push(Event::Users { room, online, offline }),
            ServerMsg::History(page) => self.deferred.push(Event::History(page)),
            ServerMsg::Ping { nonce } => out.queue(&ClientMsg::Pong { nonce }),
            ServerMsg::Pong { .. } | ServerMsg::Welcome { .. } => {}
            ServerMsg::ShuttingDown { message } => {
                self.deferred.push(Event::ServerShuttingDown { message: message.clone() });
                return Err(ConnectionEnd::Reconnect(message));
            }
        }
        Ok(())
    }

    /// Drops what we keep of a conversation we are no longer in: its cursor, here and on disk.
    fn forget(&mut self, conversation: &Conversation) {
        self.cursors.remove(conversation);
        self.moved.remove(conversation);
        self.unacked_cursors.remove(conversation);
        if self.sync_targets.remove(conversation).is_some() && self.sync_targets.is_empty() {
            self.deferred.push(Event::Synced);
        }
        if let Err(e) = self.state.forget_cursor(conversation) {
            tracing::warn!(%e, "could not forget a cursor");
        }
    }

    fn on_messages(&mut self, messages: Vec<Message>) {
        for message in messages {
            let cursor = self.cursors.entry(message.conversation.clone()).or_insert(0);
            if message.seq <= *cursor {
                continue;
            }
            *cursor = message.seq;
            self.moved.insert(message.conversation.clone(), message.seq);
            let own = message.from == self.config.nick;
            if own {
                self.accepted(message.id, message.conversation.clone(), message.seq, message.ts);
            }
            self.deferred.push(Event::Message { message, own });
        }
        self.check_synced();
    }

    fn check_synced(&mut self) {
        if self.sync_targets.is_empty() {
            return;
        }
        let cursors = &self.cursors;
        self.sync_targets.retain(|conversation, target| cursors.get(conversation).copied().unwrap_or(0) < *target);
        if self.sync_targets.is_empty() {
            self.deferred.push(Event::Synced);
        }
    }
}

/// Why no first answer came.
enum Silence {
    /// Nothing at all from the server for the dead-peer time.
    Silent,
    /// The server kept saying it was deciding (pings), past [`LOGIN_DEADLINE`].
    TooLong,
}

/// The server's answer to `Hello`: the first frame other than a `Ping` (answered) or a `Pong`, which a server
/// sends while a login takes long (waiting its turn, a busy password queue), so that its silence still means it
/// is gone.
async fn first_answer(
    reader: &mut FramedReader<ReadHalf<Tls>>,
    out: &mut FramedWriter<WriteHalf<Tls>>,
    dead_after: Duration,
) -> Result<Result<Option<ServerMsg>, ReadError>, Silence> {
    let deadline = Instant::now() + LOGIN_DEADLINE;
    loop {
        let limit = dead_after.min(deadline.saturating_duration_since(Instant::now()));
        let read = match tokio::time::timeout(limit, reader.read_msg::<ServerMsg>()).await {
            Ok(read) => read,
            Err(_) if Instant::now() >= deadline => return Err(Silence::TooLong),
            Err(_) => return Err(Silence::Silent),
        };
        match read {
            Ok(Some(ServerMsg::Ping { nonce })) => {
                if let Err(e) = out.send(&ClientMsg::Pong { nonce }).await {
                    return Ok(Err(e.into()));
                }
            }
            Ok(Some(ServerMsg::Pong { .. })) => {}
            other => return Ok(other),
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn refused_login(code: ErrorCode, message: String) -> ConnectionEnd {
    let reason = format!("the server refused the login for now: {message}");
    match code {
        // Temporary, with the time to wait in the words (PROTOCOL.md §8): a lockout, a busy server.
        ErrorCode::RateLimited | ErrorCode::ServerBusy | ErrorCode::StoreUnavailable | ErrorCode::ServerFull => {
            ConnectionEnd::RefusedForNow(reason, retry_hint(&message))
        }
        ErrorCode::HandshakeTimeout => ConnectionEnd::Reconnect(reason),
        ErrorCode::AuthFailed => ConnectionEnd::PasswordRefused(format!("login refused: {message}")),
        _ => ConnectionEnd::Fatal(format!("login refused: {message}")),
    }
}

/// The wait in a refusal that ends "try again in N s" (PROTOCOL.md §8).
fn retry_hint(message: &str) -> Option<Duration> {
    let (_, after) = message.rsplit_once("try again in ")?;
    let seconds: u64 = after.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs(seconds.min(3_600)))
}

fn changed_certificate(server: &str, pinned: Fingerprint, presented: Fingerprint, home: &std::path::Path) -> String {
    // The command must pin into the home this client uses, or running it changes nothing.
    let home_flag = match crate::home::client_home(None) {
        Ok(default) if default == home => String::new(),
        _ => format!(" --home {}", shell_word(&home.display().to_string())),
    };
    format!(
        "the certificate of {server} has changed!\n  pinned:    {pinned}\n  presented: {presented}\n\
         Someone may be intercepting the connection, or the server got a new certificate. Ask the server's \
         operator for its fingerprint (`palomar serve` prints it); if it is the presented one, accept it with:\n  \
         palomar trust --server {} --fingerprint {presented}{home_flag}\n(pins are kept in {})",
        shell_word(server),
        home.join("known_hosts").display()
    )
}

/// What a changed-certificate [`Event::Fatal`] says, read back from its message, for a front end that offers
/// to trust the new certificate itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCertificate {
    pub pinned: Fingerprint,
    pub presented: Fingerprint,
    /// The `palomar trust …` command that pins the presented certificate in the home in use.
    pub remedy: String,
}

impl ChangedCertificate {
    /// The fingerprints and remedy in a message written by the engine for a changed certificate.
    pub fn from_message(message: &str) -> Option<ChangedCertificate> {
        let field =
            |name: &str| message.lines().find_map(|line| line.trim().strip_prefix(name)).and_then(Fingerprint::parse);
        let remedy = message.lines().map(str::trim).find(|line| line.starts_with("palomar trust "))?;
        Some(ChangedCertificate {
            pinned: field("pinned:")?,
            presented: field("presented:")?,
            remedy: remedy.to_owned(),
        })
    }
}

/// `word` as one word for a POSIX shell: as it is when that is safe, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '+' | ','));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

/// The TLS handshake failed because the peer answered with something that is not TLS.
fn speaks_no_tls(error: &std::io::Error) -> bool {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|tls| {
        matches!(
            tls,
            rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType | rustls::InvalidMessage::UnknownProtocolVersion
            )
        )
    })
}

async fn read_frames(mut reader: FramedReader<ReadHalf<Tls>>, tx: mpsc::Sender<Result<ServerMsg, String>>) {
    loop {
        let item = match reader.read_msg::<ServerMsg>().await {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => Err("the server closed the connection".to_owned()),
            // Even a frame that only failed its tag may have been a delivery: reconnect and resume rather
            // than risk a silent gap.
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err("the server closed the connection abruptly".to_owned())
            }
            Err(e) => Err(format!("connection lost: {e}")),
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_or_full_server_is_retried_and_a_refused_password_is_not() {
        for code in [ErrorCode::ServerBusy, ErrorCode::ServerFull, ErrorCode::StoreUnavailable] {
            assert!(matches!(refused_login(code, "later".into()), ConnectionEnd::RefusedForNow(_, None)), "{code:?}");
        }
        assert!(matches!(refused_login(ErrorCode::HandshakeTimeout, "slow".into()), ConnectionEnd::Reconnect(_)));
        for code in [ErrorCode::InvalidName, ErrorCode::UnsupportedVersion] {
            assert!(matches!(refused_login(code, "no".into()), ConnectionEnd::Fatal(_)), "{code:?}");
        }
        assert!(matches!(refused_login(ErrorCode::AuthFailed, "no".into()), ConnectionEnd::PasswordRefused(_)));
    }

    #[test]
    fn the_remedy_for_a_changed_certificate_names_the_home_in_use() {
        let (pinned, presented) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let elsewhere = std::path::Path::new("/nonexistent/palomar test");
        let message = changed_certificate("127.0.0.1:5555", pinned, presented, elsewhere);
        assert!(
            message.contains(&format!("--fingerprint {presented} --home '/nonexistent/palomar test'")),
            "{message}"
        );
        if let Ok(default) = crate::home::client_home(None) {
            let message = changed_certificate("127.0.0.1:5555", pinned, presented, &default);
            assert!(!message.contains("--home"), "{message}");
        }
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_changed_certificate_message_reads_back() {
        let (pinned, presented) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let home = std::path::Path::new("/nonexistent/palomar test");
        let message = changed_certificate("127.0.0.1:5555", pinned, presented, home);
        let read = ChangedCertificate::from_message(&message).expect("reads back");
        assert_eq!((read.pinned, read.presented), (pinned, presented));
        assert_eq!(
            read.remedy,
            format!(
                "palomar trust --server 127.0.0.1:5555 --fingerprint {presented} --home '/nonexistent/palomar test'"
            )
        );
        assert_eq!(ChangedCertificate::from_message("login refused: wrong password"), None);
    }

    #[test]
    fn a_lockout_is_waited_out_for_the_time_the_server_says() {
        let locked = refused_login(ErrorCode::RateLimited, "too many failed logins; try again in 29 s".into());
        let wait = |seconds| Some(Duration::from_secs(seconds));
        assert!(matches!(locked, ConnectionEnd::RefusedForNow(_, w) if w == wait(29)), "retried, not fatal");
        let busy = refused_login(ErrorCode::ServerBusy, "the server is busy; try again in 3 s".into());
        assert!(matches!(busy, ConnectionEnd::RefusedForNow(_, w) if w == wait(3)));
        let wordless = refused_login(ErrorCode::RateLimited, "slow down".into());
        assert!(matches!(wordless, ConnectionEnd::RefusedForNow(_, None)), "retried with backoff without a time");
        assert_eq!(retry_hint("try again in a while"), None);
    }
}
