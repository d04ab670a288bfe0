//! The reference relay: the least a chat server must do, run in this process so that every report can state
//! Palomar as a fraction of a practical limit measured on the same machine in the same run. Plain TCP, no
//! TLS, no HMAC, no accounts, no storage: it forwards each message to every connection in the room and
//! acknowledges it to the sender.
//!
//! Every frame is a `u32` big-endian length and a body. A client's first frame is its room's name; the relay
//! answers `JOINED`. Then each client frame is a 16-byte message id and the text; the relay sends the sender
//! `ACCEPTED` + id, and every member of the room (the sender too) `MESSAGE` + id + text.
//!
//! It runs on a runtime of its own whose threads are named [`THREAD_NAME`], so its CPU time can be told
//! apart from the load generator's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use palomar_proto::MessageId;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::scenario::Scenario;
use crate::usage;
use crate::wire::{Event, Inbound, Outbound, Wire};

pub const THREAD_NAME: &str = "bench-relay";

const JOINED: u8 = 1;
const ACCEPTED: u8 = 2;
const MESSAGE: u8 = 3;
const ID_LEN: usize = 16;
/// Largest frame body either side accepts.
const MAX_BODY: usize = 64 * 1024;
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The members' outgoing queues of each room.
type Rooms = Mutex<HashMap<Bytes, Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>>>;

/// A running relay; dropping it stops it.
pub struct Relay {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
}

impl Relay {
    /// Starts the relay on a free loopback port, with as many threads as the machine has cores (as many as
    /// the server's runtime gets).
    pub fn start() -> anyhow::Result<Relay> {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .context("cannot start the relay's runtime")?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("the relay cannot listen")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(async move {
            let rooms: Arc<Rooms> = Arc::default();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, rooms.clone()));
            }
        });
        Ok(Relay { runtime: Some(runtime), addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl usage::Target for Relay {
    fn cpu_secs(&self) -> Option<f64> {
        usage::own_threads_cpu_secs(THREAD_NAME)
    }

    /// The relay shares this process's memory; its own cannot be told apart.
    fn memory_bytes(&self) -> Option<u64> {
        None
    }

    fn reset_peak_memory(&self) {}

    fn peak_memory_bytes(&self) -> Option<u64> {
        None
    }
}

fn frame(kind: u8, parts: &[&[u8]]) -> Bytes {
    let body_len = 1 + parts.iter().map(|part| part.len()).sum::<usize>();
    let mut frame = BytesMut::with_capacity(4 + body_len);
    frame.put_u32(body_len as u32);
    frame.put_u8(kind);
    for part in parts {
        frame.put_slice(part);
    }
    frame.freeze()
}

/// Reads the next frame body from `stream`; `Ok(None)` at a clean end.
async fn read_frame(stream: &mut OwnedReadHalf, buf: &mut BytesMut) -> anyhow::Result<Option<BytesMut>> {
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > MAX_BODY {
                bail!("relay frame of {len} bytes is over the limit");
            }
            if buf.len() >= 4 + len {
                buf.advance(4);
                return Ok(Some(buf.split_to(len)));
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { bail!("relay connection closed inside a frame") };
        }
    }
}

/// One relay connection: join, then forward every message until the client leaves.
async fn serve(tcp: TcpStream, rooms: Arc<Rooms>) {
    let _ = tcp.set_nodelay(true);
    let (mut read_half, write_half) = tcp.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let Ok(Some(room)) = read_frame(&mut read_half, &mut buf).await else { return };
    let (tx, rx) = mpsc::unbounded_channel();
    let members = rooms.lock().entry(room.freeze()).or_default().clone();
    members.lock().push(tx.clone());
    let writer = tokio::spawn(write_frames(write_half, rx));
    if tx.send(frame(JOINED, &[])).is_ok() {
        while let Ok(Some(body)) = read_frame(&mut read_half, &mut buf).await {
            if body.len() < ID_LEN {
                break;
            }
            let _ = tx.send(frame(ACCEPTED, &[&body[..ID_LEN]]));
            let message = frame(MESSAGE, &[&body]);
            for member in members.lock().iter() {
                let _ = member.send(message.clone());
            }
        }
    }
    members.lock().retain(|member| !member.same_channel(&tx));
    drop(tx);
    let _ = writer.await;
}

/// Writes queued frames, everything queued at once in one write.
async fn write_frames(mut stream: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        out.extend_from_slice(&first);
        while let Ok(next) = rx.try_recv() {
            out.extend_from_slice(&next);
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

/// Clients of the relay at an address.
pub struct RelayWire {
    addr: SocketAddr,
}

impl RelayWire {
    pub fn new(addr: SocketAddr) -> RelayWire {
        RelayWire { addr }
    }

    async fn join(&self, room: String) -> anyhow::Result<(RelayInbound, RelayOutbound)> {
        let tcp =
            TcpStream::connect(self.addr).await.with_context(|| format!("cannot reach the relay at {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let (read_half, mut write_half) = tcp.into_split();
        let mut join = BytesMut::new();
        join.put_u32(room.len() as u32);
        join.put_slice(room.as_bytes());
        write_half.write_all(&join).await?;
        let mut inbound = RelayInbound { stream: read_half, buf: BytesMut::with_capacity(16 * 1024) };
        match read_frame(&mut inbound.stream, &mut inbound.buf).await? {
            Some(body) if body.first() == Some(&JOINED) => {}
            _ => bail!("the relay did not confirm the join"),
        }
        Ok((inbound, RelayOutbound { stream: write_half, buf: BytesMut::new() }))
    }
}

impl Wire for RelayWire {
    type Inbound = RelayInbound;
    type Outbound = RelayOutbound;

    async fn connect(&self, scenario: &Scenario, client: usize) -> anyhow::Result<(RelayInbound, RelayOutbound)> {
        let room = scenario.room_name(scenario.room_of(client));
        tokio::time::timeout(SETUP_TIMEOUT, self.join(room)).await.context("the relay did not answer in time")?
    }
}

pub struct RelayInbound {
    stream: OwnedReadHalf,
    buf: BytesMut,
}

impl Inbound for RelayInbound {
    async fn next(&mut self, events: &mut Vec<Event>) -> anyhow::Result<bool> {
        let Some(body) = read_frame(&mut self.stream, &mut self.buf).await? else { return Ok(false) };
        let id = |bytes: &[u8]| -> anyhow::Result<MessageId> {
            Ok(MessageId(bytes.get(..ID_LEN).and_then(|id| id.try_into().ok()).context("relay frame without an id")?))
        };
        match body.split_first() {
            Some((&ACCEPTED, rest)) => events.push(Event::Accepted(id(rest)?)),
            Some((&MESSAGE, rest)) => {
                id(rest)?;
                let text = String::from_utf8(rest[ID_LEN..].to_vec()).context("relayed text is not UTF-8")?;
                events.push(Event::Delivered(text));
            }
            _ => bail!("unknown relay frame"),
        }
        Ok(true)
    }
}

pub struct RelayOutbound {
    stream: OwnedWriteHalf,
    buf: BytesMut,
}

impl Outbound for RelayOutbound {
    async fn send(&mut self, id: MessageId, text: String) -> anyhow::Result<()> {
        self.buf.clear();
        self.buf.put_u32((ID_LEN + text.len()) as u32);
        self.buf.put_slice(&id.0);
        self.buf.put_slice(text.as_bytes());
        Ok(self.stream.write_all(&self.buf).await?)
    }

    async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stop;

    #[tokio::test]
    async fn the_relay_acknowledges_the_sender_and_forwards_to_every_member() {
        let relay = Relay::start().expect("starts");
        let wire = RelayWire::new(relay.addr());
        let scenario = Scenario {
            clients: 2,
            rooms: 1,
            senders: 1,
            text_bytes: 64,
            in_flight: 1,
            rate_per_sender: None,
            stop: Stop::Messages(1),
            run_id: 1,
        };
        let (mut sender_in, mut sender_out) = wire.connect(&scenario, 0).await.expect("connects");
        let (mut other_in, _other_out) = wire.connect(&scenario, 1).await.expect("connects");
        sender_out.send(MessageId([9; 16]), "hello".into()).await.expect("sends");
        let mut events = Vec::new();
        while events.len() < 2 {
            assert!(sender_in.next(&mut events).await.expect("reads"));
        }
        assert!(events.iter().any(|e| matches!(e, Event::Accepted(MessageId([9, ..])))), "{events:?}");
        assert!(events.iter().any(|e| matches!(e, Event::Delivered(text) if text == "hello")), "{events:?}");
        events.clear();
        assert!(other_in.next(&mut events).await.expect("reads"));
        assert!(matches!(&events[..], [Event::Delivered(text)] if text == "hello"), "{events:?}");
        drop(relay);
    }
}
