//! What Palomar's tests share: a real server running in the test's own process on a free loopback port
//! ([`InProcessServer`]), and small helpers. Tests that need the real binary (exit codes, signals, a terminal)
//! have their process harness in `crates/palomar/tests/e2e/common.rs`; the rest use this, which starts in
//! milliseconds.
//!
//! Everything here panics on failure, with what failed: it is for tests, where a panic is the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use palomar_proto::Nick;
use palomar_server::Config;
use palomar_transport::{Fingerprint, ServerIdentity};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server in this process, on a loopback port, that can be stopped and started again on the same port with
/// the same data, as a restarted server would be. It stops when dropped.
pub struct InProcessServer {
    /// `127.0.0.1:PORT`, as clients name it.
    pub addr: String,
    dir: PathBuf,
    identity: Arc<ServerIdentity>,
    config: Config,
    runtime: Handle,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl InProcessServer {
    /// Starts a server with the default configuration on `runtime`, its data and certificate under `dir`.
    pub fn start(runtime: &Handle, dir: &Path) -> InProcessServer {
        InProcessServer::start_with(runtime, dir, Config::default())
    }

    /// Starts a server with `config` (its `data` is replaced by a directory under `dir`).
    pub fn start_with(runtime: &Handle, dir: &Path, config: Config) -> InProcessServer {
        let identity = ServerIdentity::load_or_generate(&dir.join("tls")).expect("a certificate");
        let config = Config { data: dir.join("data"), ..config };
        let mut server = InProcessServer {
            addr: "127.0.0.1:0".into(),
            dir: dir.to_owned(),
            identity,
            config,
            runtime: runtime.clone(),
            running: None,
        };
        server.resume();
        server
    }

    /// Starts it again after [`stop`](Self::stop), on the same port, with the same data. Binding does not wait
    /// on the runtime, so this works from inside it too.
    pub fn resume(&mut self) {
        let listener = std::net::TcpListener::bind(&self.addr).expect("the server binds");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        self.addr = listener.local_addr().expect("the server's address").to_string();
        let listener = {
            let _entered = self.runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("the listener joins the runtime")
        };
        let (config, identity, shutdown) = (self.config.clone(), self.identity.clone(), CancellationToken::new());
        let token = shutdown.clone();
        let task = self.runtime.spawn(async move {
            palomar_server::run(listener, config, identity, token).await.expect("the server runs");
        });
        self.running = Some((shutdown, task));
    }

    /// A graceful stop: clients are told, and the server is gone when this returns. Call it from outside the
    /// runtime (it waits for the server's task).
    pub fn stop(&mut self) {
        if let Some((shutdown, task)) = self.running.take() {
            shutdown.cancel();
            self.runtime.block_on(task).expect("the server stops");
        }
    }

    /// [`stop`](Self::stop), for a test running inside the runtime.
    pub async fn shut_down(&mut self) {
        if let Some((shutdown, task)) = self.running.take() {
            shutdown.cancel();
            task.await.expect("the server stops");
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The next [`resume`](Self::resume) presents another certificate, as a reinstalled server would.
    pub fn replace_certificate(&mut self) {
        self.identity = ServerIdentity::load_or_generate(&self.dir.join("tls-new")).expect("a certificate");
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = &self.running {
            shutdown.cancel();
        }
    }
}

/// A nickname the test knows to be valid.
pub fn nick(name: &str) -> Nick {
    Nick::parse(name).unwrap_or_else(|error| panic!("{name:?} is not a valid nickname: {error}"))
}
