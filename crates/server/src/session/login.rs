//! From an accepted TCP connection to a session that has said `Welcome`: the TLS handshake and frame keys, the
//! client's `Hello` within the handshake deadline, the login (judged by [`crate::auth`]), registration with the
//! hub, `Welcome` and the catch-up on everything the client has not seen.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palomar_proto::{
    ClientMsg, Conversation, ErrorCode, MIN_PROTOCOL_VERSION, Nick, PROTOCOL_VERSION, Password, Position, ServerMsg,
};
use palomar_store::{Account, ConvKey, ConvRow};
use palomar_transport::{FramedReader, FramedWriter, frame_keys};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reader::{Incoming, Read};
use super::wire::{Frames, Out};
use super::{OUT_BUDGET, Session, SessionEnd};
use crate::Shared;
use crate::auth::{self, Refusal};
use crate::hub::{NotRegistered, SessionLink};

/// Conversations listed in `Welcome`; a user in more gets the others as `Joined` right after it, so that no
/// number of rooms and direct conversations makes a frame larger than a client accepts.
const WELCOME_PAGE: usize = 1_000;

/// The TLS handshake and the frame keys, within `deadline`; `None` when the connection ends there.
pub(super) async fn handshake(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<(Frames, Out)> {
    let tls = match tokio::time::timeout_at(deadline.into(), shared.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    let keys = match frame_keys(tls.get_ref().1) {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot derive frame keys");
            return None;
        }
    };
    let (read_half, write_half) = tokio::io::split(tls);
    let reader = FramedReader::new(read_half, &keys.client_to_server, shared.config.limits.max_frame_bytes);
    Some((Frames::Native(reader), Out::Frames(FramedWriter::new(write_half, &keys.server_to_client))))
}

/// Who a client says it is, in its `Hello`.
struct Hello {
    version: u16,
    nick: Nick,
    password: Password,
    positions: Vec<Position>,
}

/// A client that logged in.
pub(super) struct LoggedIn {
    pub account: Account,
    /// The account was created by this login.
    pub registered: bool,
    /// The nickname as the client gave it (parsed).
    pub nick: Nick,
    /// Where the client says it is in its conversations.
    pub positions: Vec<Position>,
    /// The protocol version the client speaks, which the session speaks with it.
    pub version: u16,
}

/// Why the first frame gives no login.
enum NoHello {
    /// The client left before saying anything: there is nobody to answer.
    ClientLeft,
    Refused(ErrorCode, String),
}

/// Judges the first frame: a `Hello` of a protocol version this server serves, with a valid nickname, or the
/// refusal to send.
fn read_hello(first: Incoming) -> Result<Hello, NoHello> {
    let (version, nick, password, positions) = match first {
        Incoming::Msg(ClientMsg::Hello { version, nick, password, positions }) => {
            if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
                let message = format!(
                    "this server speaks protocol versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}, the client {version}"
                );
                return Err(NoHello::Refused(ErrorCode::UnsupportedVersion, message));
            }
            (version, nick, password, positions)
        }
        Incoming::Bad(code, message) | Incoming::Fatal(code, message) => return Err(NoHello::Refused(code, message)),
        Incoming::Msg(_) => return Err(NoHello::Refused(ErrorCode::Protocol, "the first frame must be Hello".into())),
        Incoming::Closed => return Err(NoHello::ClientLeft),
    };
    match Nick::parse(&nick) {
        Ok(nick) => Ok(Hello { version, nick, password, positions }),
        Err(error) => Err(NoHello::Refused(ErrorCode::InvalidName, error.to_string())),
    }
}

/// Waits for the client's `Hello` (until `deadline`) and logs it in; answers a refusal itself. `None` when
/// there is no session to run.
pub(super) async fn log_in(
    shared: &Shared,
    out: &mut Out,
    incoming: &mut mpsc::UnboundedReceiver<Read>,
    gone: &CancellationToken,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<LoggedIn> {
    let first = match tokio::time::timeout_at(deadline.into(), incoming.recv()).await {
        Ok(Some(read)) => read.incoming,
        Ok(None) => return None,
        Err(_) => {
            refuse(out, ErrorCode::HandshakeTimeout, "no Hello in time".into()).await;
            return None;
        }
    };
    let Hello { version, nick, password, positions } = match read_hello(first) {
        Ok(hello) => hello,
        Err(NoHello::Refused(code, message)) => {
            refuse(out, code, message).await;
            return None;
        }
        Err(NoHello::ClientLeft) => return None,
    };
    // A login may wait (its turn, the password threads): pings meanwhile tell the client the server is there, so
    // that it can take silence for a dead connection during the login as at any other time.
    let heartbeat = shared.config.heartbeat_interval();
    let mut pings = tokio::time::interval_at((Instant::now() + heartbeat).into(), heartbeat);
    let (account, registered) = {
        let mut judging = std::pin::pin!(auth::log_in(shared, &nick, password.expose(), peer.ip(), deadline));
        loop {
            tokio::select! {
                judged = &mut judging => match judged {
                    Ok(logged_in) => break logged_in,
                    Err(Refusal { code, message }) => {
                        tracing::info!(%peer, %nick, ?code, "login refused");
                        refuse(out, code, message).await;
                        return None;
                    }
                },
                // The client left (or the server stops): its login goes with it, with any password work not yet
                // started.
                _ = gone.cancelled() => return None,
                _ = pings.tick() => {
                    out.queue(&ServerMsg::Ping { nonce: 0 });
                    if !matches!(tokio::time::timeout(shared.config.dead_after(), out.flush()).await, Ok(Ok(()))) {
                        return None;
                    }
                }
            }
        }
    };
    drop(password);
    tracing::info!(%peer, %nick, account = %account.id, registered, "logged in");
    Some(LoggedIn { account, registered, nick, positions, version })
}

/// Says why the connection ends, and closes it.
pub(super) async fn refuse(out: &mut Out, code: ErrorCode, message: String) {
    out.queue(&ServerMsg::Error { code, message, id: None });
    let _ = tokio::time::timeout(Duration::from_secs(2), out.flush()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), out.shutdown()).await;
}

impl Session {
    /// Registers with the hub, says Welcome, and sends everything the client has not seen yet.
    pub(super) async fn start(
        &mut self,
        registered: bool,
        positions: Vec<Position>,
    ) -> Result<SessionLink, SessionEnd> {
        let (memberships, link) = match self.register().await {
            Ok(registered) => registered,
            Err(SessionEnd::Refused(why)) => {
                refuse(&mut self.out, ErrorCode::ServerFull, why.clone()).await;
                return Err(SessionEnd::Refused(why));
            }
            Err(end) => return Err(end),
        };
        self.id = Some(link.id);
        let account = self.account.id;
        let (operator, standings) =
            self.read(move |db| Ok((db.is_operator(account)?, db.standings_of(account)?))).await?;
        self.operator = operator;
        let mut claimed: HashMap<Conversation, u64> = positions.into_iter().map(|p| (p.conversation, p.seq)).collect();
        let mut infos = Vec::with_capacity(memberships.len());
        for (cursor, row) in memberships {
            // A client may only say where it is in its own conversations, and never past the end.
            let info = self.info(&row);
            let start = claimed.remove(&info.conversation).unwrap_or(cursor).min(info.latest_seq);
            self.track_conversation(row.id, row.key, start);
            infos.push((start < info.latest_seq, info));
        }
        // Those with news first: a client that meets the rest only after `Welcome` has all it must catch up on.
        infos.sort_by_key(|(news, _)| !news);
        let mut infos = infos.into_iter().map(|(_, info)| info);
        self.out.queue(&ServerMsg::Welcome {
            version: self.version,
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
        self.know_room_states(standings);
        self.send_room_states().await?;
        self.send_own_awareness().await?;
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
            let aware = self.version >= palomar_proto::AWARENESS_VERSION;
            match self.shared.hub.register(&self.account, rooms, changes_seen, aware) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: u16, nick: &str) -> Incoming {
        Incoming::Msg(ClientMsg::Hello { version, nick: nick.into(), password: "secret".into(), positions: vec![] })
    }

    fn refusal_code(first: Incoming) -> Option<ErrorCode> {
        match read_hello(first) {
            Ok(_) | Err(NoHello::ClientLeft) => None,
            Err(NoHello::Refused(code, _)) => Some(code),
        }
    }

    #[test]
    fn a_hello_of_this_version_with_a_valid_nickname_logs_in_under_the_folded_name() {
        let Ok(hello) = read_hello(hello(PROTOCOL_VERSION, " Ana ")) else { panic!("a valid Hello was refused") };
        assert_eq!(hello.nick.as_str(), "ana");
        assert_eq!(hello.password.expose(), "secret");
    }

    #[test]
    fn a_first_frame_that_is_no_usable_hello_is_refused_with_its_reason() {
        assert_eq!(refusal_code(hello(PROTOCOL_VERSION + 1, "ana")), Some(ErrorCode::UnsupportedVersion));
        assert_eq!(refusal_code(hello(MIN_PROTOCOL_VERSION - 1, "ana")), Some(ErrorCode::UnsupportedVersion));
        assert!(read_hello(hello(MIN_PROTOCOL_VERSION, "ana")).is_ok(), "older clients are still served");
        assert_eq!(refusal_code(hello(PROTOCOL_VERSION, "no spaces")), Some(ErrorCode::InvalidName));
        assert_eq!(refusal_code(hello(PROTOCOL_VERSION + 1, "no spaces")), Some(ErrorCode::UnsupportedVersion));
        assert_eq!(refusal_code(Incoming::Msg(ClientMsg::Bye)), Some(ErrorCode::Protocol), "Hello comes first");
        assert_eq!(refusal_code(Incoming::Bad(ErrorCode::BadTag, "bad tag".into())), Some(ErrorCode::BadTag));
        assert_eq!(refusal_code(Incoming::Fatal(ErrorCode::TooLarge, "large".into())), Some(ErrorCode::TooLarge));
        assert!(matches!(read_hello(Incoming::Closed), Err(NoHello::ClientLeft)), "nobody to answer");
    }
}
