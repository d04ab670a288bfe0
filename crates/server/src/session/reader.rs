//! The task that reads the client's frames ahead of the session: it decodes them, counts the bad ones, stamps
//! when the client was last heard from, and never holds more than the connection's read-ahead in bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::Counter;
use palomar_proto::{ClientMsg, ErrorCode};
use palomar_transport::ReadError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::wire::Frames;

/// Frames that fail their tag or do not decode before the connection is closed.
const MAX_BAD_FRAMES: u32 = 16;

/// When the client was last heard from, written by the reader task as frames arrive (even while the
/// session is busy elsewhere), so a client is never taken for dead while the server is the slow one.
pub(super) struct LastHeard {
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

    pub fn silence(&self) -> Duration {
        if self.waiting.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        self.base.elapsed().saturating_sub(Duration::from_millis(self.millis.load(Ordering::Relaxed)))
    }
}

/// What the reader task hands to the session.
pub(super) enum Incoming {
    Msg(ClientMsg),
    /// A frame that failed its tag or did not decode; the connection goes on.
    Bad(ErrorCode, String),
    /// The stream cannot go on.
    Fatal(ErrorCode, String),
    Closed,
}

/// A frame read from the client, holding its share of the connection's read-ahead until the session is done
/// with it.
pub(super) struct Read {
    pub incoming: Incoming,
    _room: Option<OwnedSemaphorePermit>,
}

/// The reader task of one connection and what it hands over; dropping it stops the task.
pub(super) struct Reader {
    pub incoming: mpsc::UnboundedReceiver<Read>,
    pub heard: Arc<LastHeard>,
    _task: AbortOnDropHandle<()>,
}

impl Reader {
    /// Starts reading; `gone` is cancelled when the client closes the connection.
    /// Starts reading from `reader`; `received` counts the bytes of what it reads.
    pub fn start(reader: Frames, read_ahead_bytes: usize, gone: CancellationToken, received: Counter) -> Reader {
        let (tx, incoming) = mpsc::unbounded_channel();
        let heard = LastHeard::new();
        let read_ahead = Arc::new(Semaphore::new(read_ahead_bytes));
        let task = tokio::spawn(read_frames(reader, tx, read_ahead, heard.clone(), gone, received));
        Reader { incoming, heard, _task: AbortOnDropHandle::new(task) }
    }
}

/// Reads and decodes the client's frames for the session, never more than `read_ahead` bytes of them ahead of
/// it: past that it stops reading until the session has handled some, and the client's writes wait in TCP.
async fn read_frames(
    mut reader: Frames,
    tx: mpsc::UnboundedSender<Read>,
    read_ahead: Arc<Semaphore>,
    heard: Arc<LastHeard>,
    gone: CancellationToken,
    received: Counter,
) {
    let mut bad = 0;
    loop {
        let read = reader.read().await;
        heard.touch();
        // The frame's share: its payload, which is also about what it decodes to. A frame that could not be read
        // takes none; it ends the stream or is answered with a short error.
        let room = match &read {
            Ok(Some(payload)) => {
                received.increment(payload.len() as u64);
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
            Ok(Some(payload)) => match payload.decode() {
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
