//! Typed, tagged frames on any byte stream: [`FramedReader`] verifies and decodes, [`FramedWriter`] encodes
//! and tags, each owning its direction's counter.

use bytes::BytesMut;
use palomar_proto::{FrameDecoder, FrameError, Opener, Sealer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Malformed(String),
}

impl ReadError {
    /// A bad tag or an undecodable payload spoils one frame only; everything else ends the stream.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ReadError::Frame(FrameError::BadTag | FrameError::TooShort { .. }) | ReadError::Malformed(_))
    }
}

pub struct FramedReader<R> {
    inner: R,
    buf: BytesMut,
    decoder: FrameDecoder,
    opener: Opener,
}

impl<R: AsyncRead + Unpin> FramedReader<R> {
    pub fn new(inner: R, key: &[u8; 32], max_body: usize) -> Self {
        FramedReader {
            inner,
            buf: BytesMut::with_capacity(8 * 1024),
            decoder: FrameDecoder { max_body },
            opener: Opener::new(key),
        }
    }

    /// The next verified payload; `Ok(None)` at a clean end of stream. Cancel-safe: its only await is the read
    /// into the buffer, and a frame leaves the buffer (and moves the tag counter) only once it is whole.
    pub async fn read_payload(&mut self) -> Result<Option<BytesMut>, ReadError> {
        loop {
            if let Some(mut body) = self.decoder.decode(&mut self.buf)? {
                let payload_len = self.opener.open(&body)?.len();
                body.truncate(payload_len);
                return Ok(Some(body));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(ReadError::Truncated) };
            }
        }
    }

    pub async fn read_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ReadError> {
        match self.read_payload().await? {
            None => Ok(None),
            Some(payload) => palomar_proto::decode(&payload).map(Some).map_err(|e| ReadError::Malformed(e.to_string())),
        }
    }
}

pub struct FramedWriter<W> {
    inner: W,
    sealer: Sealer,
    pending: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FramedWriter<W> {
    pub fn new(inner: W, key: &[u8; 32]) -> Self {
        FramedWriter { inner, sealer: Sealer::new(key), pending: Vec::with_capacity(8 * 1024) }
    }

    /// Adds a frame to the pending buffer; [`flush`](Self::flush) sends everything queued in one write.
    pub fn queue<T: Serialize>(&mut self, msg: &T) {
        let payload = palomar_proto::encode(msg);
        self.sealer.seal_into(&payload, &mut self.pending);
    }

    /// Adds a frame whose payload is already encoded.
    pub fn queue_payload(&mut self, payload: &[u8]) {
        self.sealer.seal_into(payload, &mut self.pending);
    }

    /// Bytes queued and not yet flushed.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.inner.write_all(&self.pending).await?;
            self.pending.clear();
        }
        self.inner.flush().await
    }

    pub async fn send<T: Serialize>(&mut self, msg: &T) -> std::io::Result<()> {
        self.queue(msg);
        self.flush().await
    }

    /// Writes bytes as they are, bypassing the sealer; for tests that must send what a correct peer never
    /// would.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await
    }

    /// Seals a payload as the next frame without sending it, for tests that tamper with it first.
    pub fn seal_next(&mut self, payload: &[u8]) -> Vec<u8> {
        self.sealer.seal(payload)
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.inner.shutdown().await
    }
}
