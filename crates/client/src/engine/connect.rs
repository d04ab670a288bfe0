//! Making a connection to one address of the chat: TCP, TLS with the pinned (or first-seen, or CA-checked)
//! certificate, the frame keys, `Hello` and the server's first answer, and what each way of failing means
//! (another node, retry, wait, or stop). Every node of a chat shares one TLS identity, so one pin, kept under
//! the chat's name, is checked whichever node answers.

use std::time::Duration;

use palomar_proto::{ClientMsg, ErrorCode, PROTOCOL_VERSION, Position, SEARCH_VERSION, ServerMsg};
use palomar_transport::{Fingerprint, FramedReader, FramedWriter, ReadError, TrustDecision, client_config, frame_keys};
use rustls_pki_types::ServerName;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::task::AbortOnDropHandle;

use super::{Command, ConnectionEnd, EngineTask, Event, MISSED_HEARTBEATS, Tls, Trust};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a login may take, however often the server says it is still deciding.
const LOGIN_DEADLINE: Duration = Duration::from_secs(60);
/// Largest frame accepted from the server: a scrollback page of the longest texts fits.
const MAX_FRAME: usize = 8 * 1024 * 1024;

/// A connection the server welcomed: frames go out through `out`, and come in through `incoming` from a
/// reader task.
pub(super) struct Connection {
    pub out: FramedWriter<WriteHalf<Tls>>,
    pub incoming: mpsc::Receiver<Result<ServerMsg, String>>,
    /// Aborted when the connection is dropped, however its serving ends.
    _reader: AbortOnDropHandle<()>,
    pub welcome: Welcome,
}

/// The version a login falls back to when a server refuses [`PROTOCOL_VERSION`]: the one before it, which this
/// client speaks too (version 6 only added requests, which the protocol core does not send to a server of 5).
const OLDER_VERSION: u16 = SEARCH_VERSION;

pub(super) struct Welcome {
    /// The session's protocol version: what the server may be asked.
    pub version: u16,
    pub registered: bool,
    pub heartbeat: Duration,
    pub conversations: Vec<palomar_proto::ConversationInfo>,
}

impl EngineTask {
    /// Connects to `server`, one address of the chat's list.
    pub(super) async fn connect(
        &mut self,
        server: &str,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Result<Connection, ConnectionEnd> {
        let chat = self.config.server.name().to_owned();
        let pin = match &self.config.trust {
            Trust::Authority(_) => None,
            Trust::FirstUse => self
                .known_hosts
                .get(&chat)
                .map_err(|e| ConnectionEnd::Fatal(format!("cannot read {}: {e}", self.known_hosts.path().display())))?,
        };
        let decision = match (&self.config.trust, pin) {
            (Trust::Authority(cas), _) => TrustDecision::Authority(cas.clone()),
            (Trust::FirstUse, Some(pin)) => TrustDecision::Pinned(pin),
            (Trust::FirstUse, None) => TrustDecision::FirstUse,
        };
        let (tls_config, seen) = client_config(decision).map_err(|e| ConnectionEnd::Fatal(e.to_string()))?;
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server)).await {
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
        let host = server.rsplit_once(':').map_or(server, |(host, _)| host).trim_matches(['[', ']']);
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
                        changed_certificate(server, &chat, pinned, presented, &self.config.home),
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
                    self.emit(Event::ConfirmCertificate { server: chat.clone(), fingerprint }).await;
                    self.await_trust(&chat, fingerprint, commands).await?;
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
            .protocol
            .cursors()
            .iter()
            .map(|(conversation, seq)| Position { conversation: conversation.clone(), seq: *seq })
            .collect();
        let version = if std::mem::take(&mut self.older_next) { OLDER_VERSION } else { PROTOCOL_VERSION };
        let hello = ClientMsg::Hello {
            version,
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
            self.known_hosts.set(&chat, fingerprint).map_err(|e| {
                ConnectionEnd::Fatal(format!(
                    "cannot save the server's fingerprint in {}: {e}",
                    self.known_hosts.path().display()
                ))
            })?;
            self.emit(Event::Pinned { server: chat, fingerprint }).await;
        }
        let welcome = match answer {
            ServerMsg::Welcome { version, registered, heartbeat_ms, conversations, .. } => Welcome {
                version,
                registered,
                heartbeat: Duration::from_millis(u64::from(heartbeat_ms.max(100))),
                conversations,
            },
            ServerMsg::Error { code, message, .. } if speaks_older(code, version) => {
                self.older_next = true;
                return Err(ConnectionEnd::Reconnect(format!(
                    "{server} does not speak protocol version {version} ({message}): logging in again with \
                     version {OLDER_VERSION}"
                )));
            }
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
                Some(Command::Send { to, kind, text }) => self.queue(vec![(to, kind, text)]).await,
                Some(Command::SetAway(message)) => self.protocol.set_away_later(message),
                Some(Command::Typing { .. } | Command::MarkRead { .. }) => {}
                Some(_) => {
                    let message = "not connected yet: first decide whether to trust the server".to_owned();
                    self.emit(Event::Error { code: None, message, id: None }).await;
                }
            }
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

/// Whether a login of protocol `version` refused with `code` is tried again with [`OLDER_VERSION`]: a server that
/// does not speak this client's latest version may speak the one before (older versions this client does not
/// speak: it could not decode their messages).
fn speaks_older(code: ErrorCode, version: u16) -> bool {
    code == ErrorCode::UnsupportedVersion && version > OLDER_VERSION
}

fn refused_login(code: ErrorCode, message: String) -> ConnectionEnd {
    let reason = format!("the server refused the login for now: {message}");
    match code {
        // Temporary, with the time to wait in the words (PROTOCOL.md §8). Busy password threads and full
        // connection tables are one node's; a lockout and the store are every node's.
        ErrorCode::ServerBusy | ErrorCode::ServerFull => ConnectionEnd::NodeBusy(reason, retry_hint(&message)),
        ErrorCode::RateLimited | ErrorCode::StoreUnavailable => {
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

/// What a changed certificate is told with: `server` is the address that presented it, `chat` the chat's name,
/// under which the pin is kept and which the remedy names.
fn changed_certificate(
    server: &str,
    chat: &str,
    pinned: Fingerprint,
    presented: Fingerprint,
    home: &std::path::Path,
) -> String {
    // The command must pin into the home this client uses, or running it changes nothing.
    let home_flag = match crate::home::client_home(None) {
        Ok(default) if default == home => String::new(),
        _ => format!(" --home {}", shell_word(&home.display().to_string())),
    };
    let which = match server == chat {
        true => server.to_owned(),
        false => format!("{server} (a server of {chat}, whose servers share one certificate)"),
    };
    format!(
        "the certificate of {which} has changed!\n  pinned:    {pinned}\n  presented: {presented}\n\
         Someone may be intercepting the connection, or the server got a new certificate. Ask the server's \
         operator for its fingerprint (`palomar serve` prints it); if it is the presented one, accept it with:\n  \
         palomar trust --server {} --fingerprint {presented}{home_flag}\n(pins are kept in {})",
        shell_word(chat),
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
mod tests;
