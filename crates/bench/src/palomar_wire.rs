//! A lean client of the real Palomar protocol for the load: TLS 1.3, HMAC-tagged frames, `Hello` (which
//! registers the nickname on first login), `Join`, `Send`, cumulative `Ack`s and `Pong`s. Unlike
//! `palomar_client::Engine` it keeps nothing on disk, so what is measured is the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use palomar_proto::{ClientMsg, Conversation, MessageId, PROTOCOL_VERSION, RoomName, ServerMsg};
use palomar_transport::{FramedReader, FramedWriter, TrustDecision, client_config, frame_keys};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::scenario::Scenario;
use crate::wire::{Event, Inbound, Outbound, Wire};

/// Time for one client to connect, log in and join its room (a first login hashes a password).
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a receiver tells the server how far it got, as the reference client does every 200 ms.
const ACK_EVERY: Duration = Duration::from_millis(100);
/// Largest frame body accepted from the server, as the reference client.
const MAX_FRAME: usize = 8 * 1024 * 1024;

type Tls = TlsStream<TcpStream>;
type SharedWriter = Arc<Mutex<Writer>>;

/// The sending half of the connection, shared by the sender, the receiver (acks, pongs) and the keepalive.
struct Writer {
    framed: FramedWriter<WriteHalf<Tls>>,
    last_write: Instant,
}

impl Writer {
    async fn send(&mut self, msg: &ClientMsg) -> std::io::Result<()> {
        self.framed.send(msg).await?;
        self.last_write = Instant::now();
        Ok(())
    }
}

/// Sends a `Ping` whenever nothing was sent for a heartbeat interval, as the protocol asks of both sides: a
/// client that only receives would otherwise be taken for dead. Ends with the connection.
async fn keep_alive(writer: std::sync::Weak<Mutex<Writer>>, heartbeat: Duration) {
    let mut ticker = tokio::time::interval(heartbeat / 2);
    loop {
        ticker.tick().await;
        let Some(writer) = writer.upgrade() else { return };
        let mut writer = writer.lock().await;
        if writer.last_write.elapsed() >= heartbeat && writer.send(&ClientMsg::Ping { nonce: 0 }).await.is_err() {
            return;
        }
    }
}

/// One server node: its address and the name its certificate is checked against.
struct Node {
    addr: String,
    server_name: ServerName<'static>,
}

pub struct PalomarWire {
    nodes: Vec<Node>,
    tls: Arc<ClientConfig>,
    password: String,
}

impl PalomarWire {
    /// Clients of the servers at `addresses` (`host:port`, the nodes of one chat: client i connects to the
    /// (i mod N)th), trusting their certificate as `trust` says.
    pub fn new(addresses: &[String], trust: TrustDecision, password: String) -> anyhow::Result<PalomarWire> {
        if addresses.is_empty() {
            bail!("no server to load");
        }
        let nodes = addresses
            .iter()
            .map(|addr| {
                let host = addr
                    .rsplit_once(':')
                    .map_or(&addr[..], |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let server_name =
                    ServerName::try_from(host.to_owned()).with_context(|| format!("bad server name {host}"))?;
                anyhow::Ok(Node { addr: addr.clone(), server_name })
            })
            .collect::<anyhow::Result<_>>()?;
        let (tls, _) = client_config(trust)?;
        Ok(PalomarWire { nodes, tls, password })
    }

    async fn log_in_and_join(
        &self,
        node: &Node,
        nick: String,
        room: RoomName,
    ) -> anyhow::Result<(PalomarInbound, PalomarOutbound)> {
        let tcp = TcpStream::connect(&node.addr).await.with_context(|| format!("cannot reach {}", node.addr))?;
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(self.tls.clone()).connect(node.server_name.clone(), tcp).await?;
        let keys = frame_keys(tls.get_ref().1)?;
        let (read_half, write_half) = tokio::io::split(tls);
        let mut reader = FramedReader::new(read_half, &keys.server_to_client, MAX_FRAME);
        let mut writer = FramedWriter::new(write_half, &keys.client_to_server);
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick.clone(),
            password: self.password.as_str().into(),
            positions: vec![],
        };
        writer.send(&hello).await?;
        let heartbeat = loop {
            match next_msg(&mut reader).await? {
                ServerMsg::Welcome { heartbeat_ms, .. } => break Duration::from_millis(u64::from(heartbeat_ms.max(1))),
                ServerMsg::Error { message, .. } => bail!("{nick} cannot log in: {message}"),
                _ => {}
            }
        };
        writer.send(&ClientMsg::Join { room: room.as_str().to_owned() }).await?;
        let conversation = Conversation::Room(room);
        loop {
            match next_msg(&mut reader).await? {
                ServerMsg::Joined { info } if info.conversation == conversation => break,
                ServerMsg::Error { message, .. } => bail!("{nick} cannot join {conversation}: {message}"),
                ServerMsg::Ping { nonce } => writer.send(&ClientMsg::Pong { nonce }).await?,
                _ => {}
            }
        }
        let writer = Arc::new(Mutex::new(Writer { framed: writer, last_write: Instant::now() }));
        tokio::spawn(keep_alive(Arc::downgrade(&writer), heartbeat));
        let inbound = PalomarInbound {
            reader,
            writer: writer.clone(),
            received: Vec::new(),
            acked_at: Instant::now(),
            room: conversation.clone(),
        };
        Ok((inbound, PalomarOutbound { writer, room: conversation }))
    }
}

async fn next_msg(reader: &mut FramedReader<ReadHalf<Tls>>) -> anyhow::Result<ServerMsg> {
    reader.read_msg::<ServerMsg>().await?.context("the server closed the connection")
}

impl Wire for PalomarWire {
    type Inbound = PalomarInbound;
    type Outbound = PalomarOutbound;

    async fn connect(&self, scenario: &Scenario, client: usize) -> anyhow::Result<(PalomarInbound, PalomarOutbound)> {
        let nick = scenario.nick(client);
        let room = RoomName::parse(&scenario.room_name(scenario.room_of(client)))?;
        let node = &self.nodes[client % self.nodes.len()];
        tokio::time::timeout(SETUP_TIMEOUT, self.log_in_and_join(node, nick.clone(), room))
            .await
            .with_context(|| format!("{nick} did not log in and join in {} s", SETUP_TIMEOUT.as_secs()))?
    }
}

/// Where the client got to in one conversation.
struct Received {
    conversation: Conversation,
    seq: u64,
    acked: u64,
}

pub struct PalomarInbound {
    reader: FramedReader<ReadHalf<Tls>>,
    writer: SharedWriter,
    /// Highest seq received per conversation (the room, and the lobby every account is in).
    received: Vec<Received>,
    acked_at: Instant,
    room: Conversation,
}

impl PalomarInbound {
    fn note_received(&mut self, conversation: &Conversation, seq: u64) {
        match self.received.iter_mut().find(|r| &r.conversation == conversation) {
            Some(received) => received.seq = received.seq.max(seq),
            None => self.received.push(Received { conversation: conversation.clone(), seq, acked: 0 }),
        }
    }

    /// Acknowledges what arrived since the last time, at most every `ACK_EVERY`.
    async fn ack_now_and_then(&mut self) -> anyhow::Result<()> {
        if self.acked_at.elapsed() < ACK_EVERY || self.received.iter().all(|r| r.seq == r.acked) {
            return Ok(());
        }
        self.acked_at = Instant::now();
        let mut writer = self.writer.lock().await;
        for received in self.received.iter_mut().filter(|r| r.seq > r.acked) {
            received.acked = received.seq;
            writer.framed.queue(&ClientMsg::Ack { conversation: received.conversation.clone(), seq: received.seq });
        }
        writer.framed.flush().await?;
        writer.last_write = Instant::now();
        Ok(())
    }
}

impl Inbound for PalomarInbound {
    async fn next(&mut self, events: &mut Vec<Event>) -> anyhow::Result<bool> {
        let Some(msg) = self.reader.read_msg::<ServerMsg>().await? else { return Ok(false) };
        match msg {
            ServerMsg::Messages(messages) => {
                for message in messages {
                    self.note_received(&message.conversation, message.seq);
                    if message.conversation == self.room {
                        events.push(Event::Delivered(message.text));
                    }
                }
                self.ack_now_and_then().await?;
            }
            ServerMsg::Accepted { id, .. } => events.push(Event::Accepted(id)),
            ServerMsg::Error { code, message, .. } => events.push(Event::Refused(format!("{code:?}: {message}"))),
            ServerMsg::ShuttingDown { message } => {
                events.push(Event::Refused(format!("server shutting down: {message}")))
            }
            ServerMsg::Ping { nonce } => self.writer.lock().await.send(&ClientMsg::Pong { nonce }).await?,
            _ => {}
        }
        Ok(true)
    }
}

pub struct PalomarOutbound {
    writer: SharedWriter,
    room: Conversation,
}

impl Outbound for PalomarOutbound {
    async fn send(&mut self, id: MessageId, text: String) -> anyhow::Result<()> {
        let send = ClientMsg::Send { id, to: self.room.clone(), text };
        Ok(self.writer.lock().await.send(&send).await?)
    }

    async fn close(self) {
        let mut writer = self.writer.lock().await;
        let _ = writer.send(&ClientMsg::Bye).await;
        let _ = writer.framed.shutdown().await;
    }
}
