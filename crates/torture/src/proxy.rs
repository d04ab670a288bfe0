//! A TCP proxy between the clients and the server that injects faults on command: cutting every
//! connection, cutting one in the middle of a frame, silently dropping traffic (half-open), delaying it,
//! and flipping a byte in transit.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// How traffic flows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Pass,
    /// Every chunk waits this long (plus up to as much again of jitter).
    Delay(Duration),
    /// Bytes are read and thrown away: both ends see a silent, open connection.
    Blackhole,
}

#[derive(Default)]
struct State {
    flow: Option<Flow>,
    pumps: Vec<AbortHandle>,
    /// The next chunk in either direction is forwarded only in part, then the connection is cut.
    cut_mid_frame: bool,
    /// The next chunk in either direction has one byte flipped.
    corrupt: bool,
}

#[derive(Clone)]
pub struct Proxy {
    state: Arc<Mutex<State>>,
    pub addr: String,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: String) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let proxy = Proxy { state: Arc::new(Mutex::new(State::default())), addr };
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepting.connect(client, upstream.clone()).await;
            }
        });
        Ok(proxy)
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    async fn connect(&self, client: TcpStream, upstream: String) {
        let Ok(server) = TcpStream::connect(&upstream).await else { return };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = tokio::spawn(pump(self.state.clone(), client_read, server_write));
        let down = tokio::spawn(pump(self.state.clone(), server_read, client_write));
        let mut state = self.lock();
        state.pumps.retain(|pump| !pump.is_finished());
        state.pumps.push(up.abort_handle());
        state.pumps.push(down.abort_handle());
    }

    pub fn set_flow(&self, flow: Flow) {
        self.lock().flow = Some(flow);
    }

    /// Closes every connection now (the clients see a reset or an end of stream).
    pub fn cut_all(&self) {
        for pump in self.lock().pumps.drain(..) {
            pump.abort();
        }
    }

    pub fn cut_mid_frame(&self) {
        self.lock().cut_mid_frame = true;
    }

    pub fn corrupt_next(&self) {
        self.lock().corrupt = true;
    }
}

async fn pump(
    state: Arc<Mutex<State>>,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (flow, cut, corrupt) = {
            let mut state = state.lock();
            let cut = std::mem::take(&mut state.cut_mid_frame);
            let corrupt = !cut && std::mem::take(&mut state.corrupt);
            (state.flow.unwrap_or(Flow::Pass), cut, corrupt)
        };
        match flow {
            Flow::Blackhole => continue,
            Flow::Delay(delay) => {
                let jitter = delay.mul_f64(rand::random::<f64>());
                tokio::time::sleep(delay + jitter).await;
            }
            Flow::Pass => {}
        }
        let chunk = &mut buf[..n];
        if cut {
            let _ = to.write_all(&chunk[..n / 2]).await;
            return;
        }
        if corrupt {
            let at = n / 2;
            chunk[at] ^= 0x5a;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
