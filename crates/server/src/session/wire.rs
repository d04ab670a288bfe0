//! The two ways a session talks to its client, behind one pair of types: tagged binary frames over TLS (the
//! native protocol), or JSON text messages over a WebSocket (the browser, PROTOCOL.md section 15). Everything
//! above speaks `ClientMsg`/`ServerMsg` and does not know which.

use std::collections::VecDeque;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::BytesMut;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use palomar_proto::{ClientMsg, FrameError, ServerMsg};
use palomar_transport::{FramedReader, FramedWriter, ReadError};
use tokio::io::{ReadHalf, WriteHalf};

use super::Tls;

/// Where a session's answers go.
pub(super) enum Out {
    Frames(FramedWriter<WriteHalf<Tls>>),
    Web(WebOut),
}

/// A browser's side of the WebSocket: each `ServerMsg` one text message, gathered until the flush.
pub(super) struct WebOut {
    sink: SplitSink<WebSocket, WsMessage>,
    pending: VecDeque<String>,
    pending_bytes: usize,
    /// A payload that could not be turned into JSON: the connection cannot go on without losing it, so the next
    /// flush fails and the client resumes from its cursors.
    broken: Option<String>,
}

impl Out {
    pub fn queue(&mut self, msg: &ServerMsg) {
        match self {
            Out::Frames(frames) => frames.queue(msg),
            Out::Web(web) => web.push(palomar_proto::to_json(msg)),
        }
    }

    /// Queues a payload already in the binary encoding for a reader of protocol `version` (messages encoded once
    /// for every reader of a room).
    pub fn queue_payload(&mut self, payload: &[u8], version: u16) {
        match self {
            Out::Frames(frames) => frames.queue_payload(payload),
            // The browsers' share of a room pays for a decoding; the native readers keep the shared encoding.
            Out::Web(web) => match palomar_proto::payload_json(payload, version) {
                Ok(json) => web.push(json),
                Err(error) => web.broken = Some(error.to_string()),
            },
        }
    }

    pub fn pending_len(&self) -> usize {
        match self {
            Out::Frames(frames) => frames.pending_len(),
            // A broken writer counts as holding something, so that the next flush is not skipped and says so.
            Out::Web(web) => web.pending_bytes + usize::from(web.broken.is_some()),
        }
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Frames(frames) => frames.flush().await,
            Out::Web(web) => web.flush().await,
        }
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Out::Frames(frames) => frames.shutdown().await,
            Out::Web(web) => web.sink.close().await.map_err(std::io::Error::other),
        }
    }
}

impl WebOut {
    fn push(&mut self, json: String) {
        self.pending_bytes += json.len();
        self.pending.push_back(json);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if let Some(why) = &self.broken {
            return Err(std::io::Error::other(format!("cannot encode a payload as JSON: {why}")));
        }
        // Taken out one at a time, so that a flush cut short by its timeout leaves nothing counted twice.
        while let Some(json) = self.pending.pop_front() {
            self.pending_bytes -= json.len();
            self.sink.feed(WsMessage::Text(json.into())).await.map_err(std::io::Error::other)?;
        }
        self.sink.flush().await.map_err(std::io::Error::other)
    }
}

/// Where a session's requests come from.
pub(super) enum Frames {
    Native(FramedReader<ReadHalf<Tls>>),
    Web(SplitStream<WebSocket>),
}

/// One request as read, before decoding.
pub(super) enum Payload {
    Binary(BytesMut),
    Json(Utf8Bytes),
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Payload::Binary(bytes) => bytes.len(),
            Payload::Json(text) => text.len(),
        }
    }

    pub fn decode(&self) -> Result<ClientMsg, String> {
        match self {
            Payload::Binary(bytes) => palomar_proto::decode(bytes).map_err(|e| e.to_string()),
            Payload::Json(text) => palomar_proto::from_json(text.as_str()).map_err(|e| e.to_string()),
        }
    }
}

impl Frames {
    /// The next payload; `Ok(None)` when the client closed. Errors mean what [`ReadError::is_fatal`] says.
    pub async fn read(&mut self) -> Result<Option<Payload>, ReadError> {
        match self {
            Frames::Native(frames) => Ok(frames.read_payload().await?.map(Payload::Binary)),
            Frames::Web(stream) => loop {
                match stream.next().await {
                    None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                    Some(Ok(WsMessage::Text(text))) => return Ok(Some(Payload::Json(text))),
                    Some(Ok(WsMessage::Binary(_))) => {
                        return Err(ReadError::Malformed("a browser's messages are JSON text, not binary".into()));
                    }
                    // The WebSocket's own keep-alive: the protocol's `Ping` is what counts.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Err(error)) => return Err(web_read_error(error)),
                }
            },
        }
    }
}

/// A WebSocket message over the size limit ends the connection as an over-size frame does; any other error is
/// the stream breaking.
fn web_read_error(error: axum::Error) -> ReadError {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(error) => match *error {
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { size, max_size }) => {
                ReadError::Frame(FrameError::TooLarge { size, max: max_size })
            }
            other => ReadError::Io(std::io::Error::other(other)),
        },
        Err(other) => ReadError::Io(std::io::Error::other(other)),
    }
}

/// The browser's session ends of a WebSocket.
pub(super) fn split_web(socket: WebSocket) -> (Frames, Out) {
    let (sink, stream) = socket.split();
    let out = WebOut { sink, pending: VecDeque::new(), pending_bytes: 0, broken: None };
    (Frames::Web(stream), Out::Web(out))
}
