//! The connection engine: one task that keeps a session with the server alive for a front end.
//!
//! It owns the socket, the outbox and the cursors. Everything typed goes to the on-disk outbox first, then
//! to the server; it leaves the outbox only when the server says it is stored. Every (re)connection sends
//! the cursors in `Hello` and the whole outbox again; the server answers retried ids with their first seq,
//! and deliveries at or below a cursor are dropped, so nothing is shown twice.
//!
//! This module is the shell: the task, its timers and files. [`protocol`] decides what to send, save and show;
//! [`connect`] makes a connection; [`failover`] picks which of the chat's addresses to try; [`events`] is what
//! front ends see.

mod connect;
mod events;
mod failover;
mod protocol;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use palomar_proto::{ClientMsg, Conversation, MessageId, MessageKind, Nick, unix_ms};
use palomar_transport::FramedWriter;
use tokio::io::WriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

pub use connect::ChangedCertificate;
use connect::Connection;
pub use events::{Command, EngineConfig, Event, NO_AWAY_MESSAGES, NO_WHOIS, StartError, Trust};
use failover::{Failover, Failure, Next, round_reason};
use protocol::{Effects, Protocol};

use crate::known_hosts::KnownHosts;
use crate::owner_only;
use crate::state::{ClientState, OutboxEntry};

/// A peer silent for this many heartbeat intervals is taken for dead: during the TLS handshake and the login too.
const MISSED_HEARTBEATS: u32 = 3;
/// The heartbeat interval assumed until a server says its own in `Welcome` (the protocol's default).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);
/// How often received cursors are acknowledged to the server.
const ACK_EVERY: Duration = Duration::from_millis(200);
/// Wait before resending a message the server could not store.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// Frames from the server handled (and saved) together.
const INCOMING_BATCH: usize = 64;
/// Commands from the front end handled (and saved) together.
const COMMAND_BATCH: usize = 256;

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
        let nick = config.nick.clone();
        let task = EngineTask {
            known_hosts: KnownHosts::new(pins),
            config,
            state,
            events: event_tx,
            outbox_len: outbox_tx,
            protocol: Protocol::new(nick, outbox, cursors),
            connected_once: false,
            heartbeat: DEFAULT_HEARTBEAT,
            older_next: false,
        };
        tokio::spawn(task.run(command_rx));
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

/// Where one account's state lives: `<home>/servers/<chat>/<nick>/state.sqlite`, `<chat>` the chat's name (its
/// first address), so that every node of the chat shares one outbox and one set of cursors.
pub fn state_path(config: &EngineConfig) -> PathBuf {
    account_state_path(&config.home, config.server.name(), &config.nick)
}

/// [`state_path`] of `nick` in the chat named `server` (its first address, [`ServerAddresses::name`]), under
/// `home`: it exists once this home has been used for that account.
///
/// [`ServerAddresses::name`]: crate::server_address::ServerAddresses::name
pub fn account_state_path(home: &std::path::Path, server: &str, nick: &Nick) -> PathBuf {
    let server: String =
        server.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    home.join("servers").join(server).join(nick.as_str()).join("state.sqlite")
}

type Tls = TlsStream<TcpStream>;

/// How a connection ended.
#[derive(Debug)]
pub(super) enum ConnectionEnd {
    Reconnect(String),
    /// The node is too busy or full to take the login now: the next node of the list is asked, and when none
    /// took it, the engine waits the time it said, if it said one.
    NodeBusy(String, Option<Duration>),
    /// The server refused the login for now, for a reason every node shares (a lockout, the store out of
    /// reach): reconnect after the time it said, if it said one, not sooner.
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
    protocol: Protocol,
    /// A server answered as a Palomar server in this run: from then on, a connection that fails is retried.
    connected_once: bool,
    /// The heartbeat interval of the last `Welcome`, for the dead-peer bound of the next connection's making.
    heartbeat: Duration,
    /// The last server refused this client's protocol version: the next login speaks the version before it (a
    /// node not upgraded yet, in a chat of several; or a server older than this client).
    older_next: bool,
}

impl EngineTask {
    async fn emit(&mut self, event: Event) {
        // A front end that stopped listening is not the engine's problem.
        let _ = self.events.send(event).await;
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut failover = Failover::new(self.config.server.clone());
        // The addresses that failed since the last wait, with why, for the `Disconnected` that ends the round.
        let mut round: Vec<(String, String)> = Vec::new();
        loop {
            let address = failover.current().to_owned();
            self.emit(Event::Connecting { server: address.clone(), attempt: failover.attempt() }).await;
            let (flow, was_up) = match self.connect(&address, &mut commands).await {
                Ok(connection) => {
                    failover.connected();
                    round.clear();
                    (self.serve(connection, &address, &mut commands).await, true)
                }
                Err(flow) => (flow, false),
            };
            let certificate_changed = matches!(flow, ConnectionEnd::CertificateChanged(_));
            let password_refused = matches!(flow, ConnectionEnd::PasswordRefused(_));
            let (reason, failure) = match flow {
                ConnectionEnd::Quit => return,
                ConnectionEnd::Fatal(message)
                | ConnectionEnd::CertificateChanged(message)
                | ConnectionEnd::PasswordRefused(message) => {
                    // What was typed while connecting must not vanish: it waits in the outbox for next time.
                    let mut typed = Vec::new();
                    while let Ok(command) = commands.try_recv() {
                        if let Command::Send { to, kind, text } = command {
                            typed.push((to, kind, text));
                        }
                    }
                    self.queue(typed).await;
                    self.emit(Event::Fatal { message, certificate_changed, password_refused }).await;
                    return;
                }
                ConnectionEnd::Reconnect(reason) => (reason, Failure::Unreachable),
                ConnectionEnd::NodeBusy(reason, wait) => (reason, Failure::NodeBusy(wait)),
                ConnectionEnd::RefusedForNow(reason, wait) => (reason, Failure::RefusedForNow(wait)),
            };
            round.push((address.clone(), reason));
            let next = if was_up { Next::Wait(failover.dropped()) } else { failover.failed(failure) };
            let Next::Wait(outage) = next else { continue };
            let retry_in = match (outage.refused_for_now, outage.named_wait) {
                // The jitter of a first retry on top of a said time, so that clients told the same time do not
                // all come back at once.
                (true, Some(wait)) => wait + self.config.backoff.delay(1),
                _ => self.config.backoff.delay(outage.attempt),
            };
            let reason = round_reason(&round);
            round.clear();
            let gone = Event::Disconnected {
                reason,
                server: address,
                retry_in,
                attempt: outage.attempt,
                pending: self.protocol.outbox_len(),
                refused_for_now: outage.refused_for_now,
            };
            self.emit(gone).await;
            if self.wait_offline(retry_in, &mut commands).await.is_err() {
                return;
            }
        }
    }

    /// Sleeps until the next attempt, still taking messages into the outbox. `Err` when told to quit.
    async fn wait_offline(&mut self, delay: Duration, commands: &mut mpsc::Receiver<Command>) -> Result<(), ()> {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                command = commands.recv() => match command {
                    None | Some(Command::Quit) => return Err(()),
                    Some(Command::Send { to, kind, text }) => self.queue(vec![(to, kind, text)]).await,
                    Some(command) => {
                        if let Some(said) = self.protocol.offline_request(command) {
                            self.emit(said).await;
                        }
                    }
                },
            }
        }
    }

    /// Runs a connection until it ends; its reader task ends with it, when `connection` is dropped.
    async fn serve(
        &mut self,
        mut connection: Connection,
        address: &str,
        commands: &mut mpsc::Receiver<Command>,
    ) -> ConnectionEnd {
        let welcome = &connection.welcome;
        let heartbeat = welcome.heartbeat;
        let dead_after = heartbeat * MISSED_HEARTBEATS;
        self.emit(Event::Connected {
            server: address.to_owned(),
            nick: self.config.nick.clone(),
            registered: welcome.registered,
            conversations: welcome.conversations.clone(),
            version: welcome.version,
        })
        .await;
        let effects = self.protocol.connected(welcome.version, &welcome.conversations, self.config.join.as_ref());
        let out = &mut connection.out;
        self.apply(effects, out).await;
        let mut last_heard = Instant::now();
        let mut last_sent = Instant::now();
        let mut ticker = tokio::time::interval(heartbeat / 2);
        let mut acks = tokio::time::interval(ACK_EVERY);
        let mut retry_at: Option<Instant> = None;
        loop {
            let mut effects = Effects::default();
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
                    match (self.protocol.received(frames, &mut effects), broken) {
                        (Err(end), _) => Err(end),
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
                    self.on_commands(batch, &mut effects).await
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > dead_after {
                        Err(ConnectionEnd::Reconnect(format!("no sign of the server for {} s", dead_after.as_secs())))
                    } else {
                        if last_sent.elapsed() >= heartbeat {
                            effects.frames.push(ClientMsg::Ping { nonce: 0 });
                        }
                        Ok(())
                    }
                }
                _ = acks.tick() => {
                    self.protocol.acknowledge_cursors(&mut effects);
                    Ok(())
                }
                _ = sleep_until_some(retry_at) => {
                    retry_at = None;
                    self.protocol.resend_refused(&mut effects);
                    Ok(())
                }
            };
            if effects.retry_later {
                retry_at.get_or_insert_with(|| Instant::now() + STORE_RETRY);
            }
            self.apply(effects, out).await;
            if let Err(end) = step {
                if matches!(end, ConnectionEnd::Quit) {
                    out.queue(&ClientMsg::Bye);
                    let _ = tokio::time::timeout(Duration::from_secs(1), out.flush()).await;
                }
                return end;
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

    /// Does what the protocol core asked, in its order: the state on disk first, so that a crash never shows a
    /// message twice, then the events, then the frames (sent at the next flush).
    async fn apply(&mut self, mut effects: Effects, out: &mut FramedWriter<WriteHalf<Tls>>) {
        let frames = std::mem::take(&mut effects.frames);
        self.save_and_show(effects).await;
        for frame in &frames {
            out.queue(frame);
        }
    }

    /// The state changes and events of `effects`, in that order; its frames are the caller's.
    async fn save_and_show(&mut self, effects: Effects) {
        for conversation in &effects.forgotten {
            if let Err(e) = self.state.forget_cursor(conversation) {
                tracing::warn!(%e, "could not forget a cursor");
            }
        }
        if !effects.moved.is_empty()
            && let Err(e) = self.state.save_cursors(effects.moved.iter().map(|(c, s)| (c, *s)))
        {
            tracing::warn!(%e, "could not save cursors");
        }
        if !effects.removed.is_empty()
            && let Err(e) = self.state.remove_outbox(&effects.removed)
        {
            tracing::warn!(%e, "could not remove acknowledged messages from the outbox file");
        }
        // A front end that sees `Queued` must find the message counted in the outbox, and one that finds the
        // outbox emptier must already have the events that say why (accepted, refused): the count rises before
        // the events and falls after them.
        let count = self.protocol.outbox_len();
        self.outbox_len.send_if_modified(|shown| std::mem::replace(shown, count.max(*shown)) < count);
        for event in effects.events {
            self.emit(event).await;
        }
        self.outbox_len.send_if_modified(|shown| std::mem::replace(shown, count) > count);
    }

    /// Puts messages in the outbox (on disk first, in one synced transaction) and tells the front end, while
    /// there is no connection to send them on.
    async fn queue(&mut self, messages: Vec<(Conversation, MessageKind, String)>) {
        let mut effects = Effects::default();
        self.queue_into(messages, &mut effects).await;
        self.save_and_show(effects).await;
    }

    /// [`Self::queue`], with the events left in `effects`.
    async fn queue_into(&mut self, messages: Vec<(Conversation, MessageKind, String)>, effects: &mut Effects) {
        if messages.is_empty() {
            return;
        }
        let entries: Vec<OutboxEntry> = messages
            .into_iter()
            .map(|(to, kind, text)| OutboxEntry {
                id: MessageId::time_ordered(unix_ms(), rand::random()),
                to,
                kind,
                text,
            })
            .collect();
        if let Err(e) = self.state.push_outbox(&entries) {
            let message =
                format!("could not save {} message(s) to disk ({e}); they are kept in memory only", entries.len());
            effects.events.push(Event::Error { code: None, message, id: None });
        }
        self.protocol.typed(entries, effects);
    }

    /// Handles commands in order; consecutive messages share one outbox transaction.
    async fn on_commands(&mut self, batch: Vec<Command>, effects: &mut Effects) -> Result<(), ConnectionEnd> {
        if batch.is_empty() {
            return Err(ConnectionEnd::Quit);
        }
        let mut messages = Vec::new();
        for command in batch {
            if let Command::Send { to, kind, text } = command {
                messages.push((to, kind, text));
                continue;
            }
            self.queue_into(std::mem::take(&mut messages), effects).await;
            if let Command::Quit = command {
                self.protocol.fill_window(effects);
                return Err(ConnectionEnd::Quit);
            }
            self.protocol.request(command, effects);
        }
        self.queue_into(messages, effects).await;
        self.protocol.fill_window(effects);
        Ok(())
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
