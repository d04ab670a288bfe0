//! # palomar-server: the Palomar chat server as a library
//!
//! [`run`] takes bound listeners, a configuration, the TLS identity and a shutdown token from outside, so
//! the `palomar` binary and the tests drive the very same server.
//!
//! # Layout
//! - [`config`]: the configuration file and its embedded defaults.
//! - [`session`]: one connection: handshake, login, requests, deliveries, heartbeats.
//! - [`hub`]: who is online where; live fan-out and presence.
//! - [`peers`]: with several nodes on one PostgreSQL store, what the others commit and who is online on them.
//! - [`writer`]: the single store writer thread with group commit; publishes after commit.
//! - [`reads`]: store reads on a few threads of their own, each with a read-only connection.
//! - [`auth`]: passwords, registration, the failed-login limiter.
//! - [`rate`]: what one address is; token buckets for new connections and new accounts (per address, in
//!   total) and requests (per account).
//! - [`web`]: the browser client's HTTPS listener: its files, and its WebSocket to a session.
//! - [`admin`]: the operator's HTTP listener: `/metrics`, `/healthz`, `/readyz`.
//! - [`telemetry`]: every metric, the handles that count them, and the Prometheus recorder.
//! - [`workers`]: fixed sets of threads taking blocking jobs from one queue (passwords, store reads).
//!
//! The path of a message: session → writer (stored, synced) → hub → every member's session → its client.

// Only the configuration and `run` are for other crates; the rest is the server's own business.
mod admin;
mod auth;
pub mod config;
mod hub;
pub mod moderation;
mod peers;
mod rate;
mod reads;
mod session;
mod telemetry;
mod web;
mod workers;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use palomar_store::{ConvKey, Location, NodeId};
use palomar_transport::ServerIdentity;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::auth::{LoginLimiter, PasswordWorkers};
use crate::hub::Hub;
use crate::moderation::RoomWrite;
use crate::rate::{AccountLimiter, Address, Arrival, ConnectionLimiter, RegistrationLimiter};
use crate::reads::Reads;
use crate::telemetry::{Exporter, Listener, Metrics, Refused};
use crate::writer::Writer;

/// Threads that hash and check passwords (each uses 19 MiB while it works).
const PASSWORD_THREADS: usize = 2;
/// How long sessions get to say goodbye at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the server looks in the store for what operators did there: accounts that `palomar user remove` asked
/// it to remove, suspended accounts with sessions on it, and rooms changed with `palomar room`.
const OPERATORS_POLL_EVERY: Duration = Duration::from_millis(500);
/// Audit log entries read per poll for operators' room changes; more wait for the next poll.
const CONSOLE_ENTRIES_PER_POLL: u32 = 256;

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub writer: Writer,
    pub reads: Reads,
    pub limiter: Arc<LoginLimiter>,
    /// New accounts per address and in total.
    pub registrations: RegistrationLimiter,
    /// Paces each account's `Send`s.
    pub messages: AccountLimiter,
    /// Paces each account's other costly requests: scrollback, joins, leaves, member lists.
    pub requests: AccountLimiter,
    /// Caps each account's typing notices passed on, over all its sessions (the rest are dropped).
    pub typing: AccountLimiter,
    pub passwords: PasswordWorkers,
    pub acceptor: TlsAcceptor,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
}

/// Counts open connections, in total and per address.
#[derive(Default)]
struct ConnectionCounts {
    total: usize,
    per_ip: HashMap<Address, usize>,
}

/// Releases a connection's place in the counts when the connection ends.
struct Admitted {
    counts: Arc<Mutex<ConnectionCounts>>,
    address: Address,
    open: metrics::Gauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.decrement(1.0);
        let mut counts = self.counts.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.address);
            }
        }
    }
}

/// Where the server takes connections: the native protocol's listener, the browser client's and the operator's
/// (metrics and health), if any.
pub struct Listeners {
    pub chat: TcpListener,
    pub web: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(chat: TcpListener) -> Self {
        Listeners { chat, web: None, admin: None }
    }
}

/// What a listener's connections are.
#[derive(Clone)]
enum Wire {
    Native,
    Web(TlsAcceptor),
}

impl Wire {
    fn listener(&self) -> Listener {
        match self {
            Wire::Native => Listener::Native,
            Wire::Web(_) => Listener::Web,
        }
    }
}

/// Opens the store in `config.data`, then serves the listeners until `shutdown` is cancelled. Returns once
/// every session has ended and the writer has committed everything it accepted.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: Config,
    identity: Arc<ServerIdentity>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let Listeners { chat, web, admin } = listeners.into();
    // The recorder goes first: handles registered before it would count nothing.
    let exporter = match &admin {
        Some(_) => Some(Exporter::install().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let metrics = Metrics::register();
    std::fs::create_dir_all(&config.data).with_context(|| format!("cannot create {}", config.data.display()))?;
    let _lock = DataDirLock::take(&config.data)?.with_context(|| {
        format!(
            "another palomar process (a server, or `palomar user` removing an account) is using the data \
                 directory {}",
            config.data.display()
        )
    })?;
    let location = config.store_location()?.with_application(palomar_store::postgres::SERVER_APPLICATION);
    let durability = config.store.durability.into();
    let keep = config.history.retention_messages;
    let opening = location.clone();
    // Off the async threads: PostgreSQL's client runs a runtime of its own.
    let (db, latest) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let db = opening.open(durability).with_context(|| format!("cannot open the store {opening}"))?;
        if keep > 0 {
            // Before the first client, so nobody is offered a message that is about to go.
            db.prune(keep)?;
        }
        let latest = db.all_conversations()?.into_iter().map(|row| (row.id, row.last_seq)).collect();
        Ok((db, latest))
    })
    .await??;
    let hub = Hub::new(latest, config.limits.live_queue_per_connection, config.limits.max_sessions_per_user);
    hub.count_overflows_in(metrics.live_queue_overflows.clone());
    let limiter = Arc::new(LoginLimiter::new(config.login.clone()));
    // Nodes sharing a PostgreSQL store tell each other what they commit, who is online on them, and which logins
    // failed.
    let (node, peers_thread) = match &location {
        Location::Postgres(settings) => {
            let node = NodeId::random();
            let (tx, rx) = std::sync::mpsc::channel();
            hub.tell_peers_through(tx.clone());
            limiter.tell_peers_through(tx);
            let local = peers::Local { hub: hub.clone(), logins: limiter.clone() };
            let thread = peers::start((**settings).clone(), node, local, rx, shutdown.clone())?;
            tracing::info!(%node, "this node shares its database with any other node on it");
            (Some(node), Some(thread))
        }
        Location::Sqlite(_) => (None, None),
    };
    let (writer, writer_thread) = Writer::start(db, hub.clone(), node, metrics.clone())?;
    let tls = palomar_transport::server_config(identity)?;
    let web_acceptor = web::acceptor(tls.clone());
    let acceptor = TlsAcceptor::from(tls);
    let shared = Arc::new(Shared {
        limiter,
        registrations: RegistrationLimiter::new(&config.limits),
        messages: AccountLimiter::messages(&config.limits),
        requests: AccountLimiter::requests(&config.limits),
        typing: session::typing_limit(),
        passwords: PasswordWorkers::start(PASSWORD_THREADS, &config.limits).await?,
        reads: Reads::start(&location, metrics.reads_in_flight.clone())?,
        config,
        hub,
        writer,
        acceptor,
        shutdown: shutdown.clone(),
        metrics,
    });
    let tracker = TaskTracker::new();
    tracker.spawn(shared.writer.clone().save_cursors_periodically(shutdown.clone()));
    if shared.config.history.retention_messages > 0 {
        tracker.spawn(retention(shared.clone()));
    }
    tracker.spawn(poll_operators_changes(shared.clone(), carry_out_removals));
    tracker.spawn(poll_operators_changes(shared.clone(), end_suspended_sessions));
    let console_seen = Arc::new(Mutex::new(None));
    tracker.spawn(poll_operators_changes(shared.clone(), move |shared| {
        follow_console_moderation(shared, console_seen.clone())
    }));
    if let (Some(admin), Some(exporter)) = (admin, exporter) {
        tracker.spawn(admin::serve(admin, shared.clone(), exporter));
    }
    // Both listeners' connections are counted and paced together: a browser is a client like any other.
    let admission = Admission {
        counts: Arc::new(Mutex::new(ConnectionCounts::default())),
        arrivals: ConnectionLimiter::new(&shared.config.limits),
    };
    let web_loop = async {
        if let Some(web) = web {
            accept(web, Wire::Web(web_acceptor), &shared, &admission, &tracker).await;
        }
    };
    tokio::join!(accept(chat, Wire::Native, &shared, &admission, &tracker), web_loop);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("some sessions did not end in time");
    }
    drop(shared);
    tokio::task::spawn_blocking(move || {
        let _ = writer_thread.join();
        peers_thread.map(JoinHandle::join)
    })
    .await
    .ok();
    tracing::info!("stopped; everything acknowledged is on disk");
    Ok(())
}

/// The next connection of `listener` (named `name` in the log), or `None` at shutdown.
async fn next_connection(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    name: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(error) => {
                // Running out of descriptors is passing; do not spin on it.
                tracing::warn!(%error, listener = name, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The connection counts and the pace of new connections, shared by the listeners.
struct Admission {
    counts: Arc<Mutex<ConnectionCounts>>,
    arrivals: ConnectionLimiter,
}

/// Takes `listener`'s connections until shutdown, each into a task of `tracker`; the listener is closed on
/// return.
async fn accept(listener: TcpListener, wire: Wire, shared: &Arc<Shared>, admission: &Admission, tracker: &TaskTracker) {
    let name = match wire {
        Wire::Native => "chat",
        Wire::Web(_) => "web",
    };
    while let Some((tcp, peer)) = next_connection(&listener, &shared.shutdown, name).await {
        let metrics = &shared.metrics;
        metrics.accepted(wire.listener()).increment(1);
        let rate_refusal = match admission.arrivals.arrive(peer.ip(), Instant::now()) {
            Arrival::Admit => None,
            Arrival::Explain(reason) => Some((reason, Refused::RateLimited)),
            Arrival::Close => {
                metrics.refused(Refused::RateClosed).increment(1);
                // The cheapest refusal: no task, no TLS, and a reset rather than a FIN, so that no TIME_WAIT
                // socket is left behind for every attempt of a flood.
                let _ = tcp.set_zero_linger();
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (admitted, count_refusal) =
            admit(&admission.counts, &shared.config, peer, metrics.open(wire.listener()).clone());
        let refusal = rate_refusal.or(count_refusal).map(|(reason, why)| {
            metrics.refused(why).increment(1);
            reason
        });
        let shared = shared.clone();
        let wire = wire.clone();
        tracker.spawn(async move {
            match wire {
                Wire::Native => session::serve(shared, tcp, peer, refusal).await,
                Wire::Web(acceptor) => web::serve(shared, acceptor, tcp, peer, refusal).await,
            }
            // The connection's place in the counts is given back only when it has ended.
            drop(admitted);
        });
    }
}

/// Counts a new connection in, and says why it must be refused if it is over a limit.
fn admit(
    counts: &Arc<Mutex<ConnectionCounts>>,
    config: &Config,
    peer: SocketAddr,
    open: metrics::Gauge,
) -> (Admitted, Option<(&'static str, Refused)>) {
    let address = Address::of(peer.ip());
    open.increment(1.0);
    let mut guard = counts.lock();
    let per_ip = guard.per_ip.entry(address).or_insert(0);
    *per_ip += 1;
    let over_ip = *per_ip > config.limits.max_connections_per_ip;
    guard.total += 1;
    let refusal = if guard.total > config.limits.max_connections {
        Some(("the server has too many connections; try again later", Refused::ServerFull))
    } else if over_ip {
        Some(("too many connections from your address", Refused::AddressFull))
    } else {
        None
    };
    (Admitted { counts: counts.clone(), address, open }, refusal)
}

/// An exclusive lock on a data directory, held while a server (or `palomar user`, doing what only the server
/// may do while it runs) uses it. Released when dropped, or when the process dies.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock of `data`; `None` when another process holds it.
    pub fn take(data: &std::path::Path) -> anyhow::Result<Option<DataDirLock>> {
        let path = data.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DataDirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

/// Runs `poll` every [`OPERATORS_POLL_EVERY`] until shutdown; one that overruns delays the next rather than
/// letting them bunch up.
async fn poll_operators_changes<F: Future<Output = ()>>(shared: Arc<Shared>, poll: impl Fn(Arc<Shared>) -> F) {
    let mut ticker = tokio::time::interval(OPERATORS_POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        poll(shared.clone()).await;
    }
}

/// Removes the accounts that `palomar user remove` asked for while the server runs: the writer does it, so that
/// the account's sessions end and its peers' sessions forget their direct conversations with it at once.
async fn carry_out_removals(shared: Arc<Shared>) {
    let requests = match shared.reads.run(|db| db.pending_removals()).await {
        Ok(requests) => requests,
        Err(error) => {
            tracing::warn!(%error, "cannot read the account removals asked for");
            return;
        }
    };
    for request in requests {
        if let Err(error) = shared.writer.remove_account(request.id, request.nick).await {
            tracing::error!(%error, "an account removal failed; it is tried again");
        }
    }
}

/// Ends the sessions of accounts suspended while logged in. `palomar user suspend` writes only to the store, and
/// every node on a shared database reads it, so each ends the sessions it holds without being told.
async fn end_suspended_sessions(shared: Arc<Shared>) {
    let now = palomar_proto::unix_ms();
    match shared.reads.run(move |db| db.suspensions(now)).await {
        Ok(suspensions) => {
            for suspension in suspensions {
                if shared.hub.account_suspended(suspension.account.id) {
                    tracing::info!(nick = %suspension.account.nick, "ending the sessions of a suspended account");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read the suspended accounts"),
    }
}

/// Tells the sessions what operators did to rooms at the console (`palomar room`), which writes only to the
/// store: every node follows the audit log for it, as it reads suspensions. What a moderator does in a chat reaches
/// the sessions through the session it came from (and the other nodes through a notice), so its entries, under a
/// nickname, are passed over. `seen` is the last entry looked at; `None` until the first poll, which starts from
/// the newest, since what came before the server started is in the store for every session to read.
async fn follow_console_moderation(shared: Arc<Shared>, seen: Arc<Mutex<Option<i64>>>) {
    let last = *seen.lock();
    let read = shared
        .reads
        .run(move |db| match last {
            None => db.audit_log(1),
            Some(after) => db.audit_entries_after(after, CONSOLE_ENTRIES_PER_POLL),
        })
        .await;
    let entries = match read {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "cannot read the audit log for operators' room changes");
            return;
        }
    };
    if last.is_none() {
        *seen.lock() = Some(entries.last().map_or(0, |entry| entry.id));
        return;
    }
    for entry in entries {
        *seen.lock() = Some(entry.id);
        if moderation::canonical_nick(&entry.actor).is_some() {
            continue;
        }
        let (Some((write, target)), Some(room)) = (RoomWrite::from_audit(&entry), moderation::audited_room(&entry))
        else {
            continue;
        };
        let (key, nick) = (ConvKey::Room(room.clone()), target.clone());
        let found = shared
            .reads
            .run(move |db| {
                let account = match &nick {
                    Some(nick) => db.account(nick)?,
                    None => None,
                };
                Ok((db.conversation(&key)?, account))
            })
            .await;
        let (row, account) = match found {
            Ok((Some(row), account)) => (row, account),
            Ok((None, _)) => continue,
            Err(error) => {
                tracing::warn!(%error, audit = entry.id, "cannot read the room of an operator's change");
                continue;
            }
        };
        let Some(change) = write.change(target.as_ref()) else { continue };
        shared.hub.room_changed(row.id, &room, None, &change, None);
        match (&write, account) {
            (RoomWrite::Kick(_) | RoomWrite::Ban(_), Some(account)) => {
                shared.hub.removed_by_console(&account, row.id, &room)
            }
            (RoomWrite::Invite, Some(account)) => shared.hub.invited(account.id, &room, None),
            _ => {}
        }
    }
}

async fn retention(shared: Arc<Shared>) {
    let every = Duration::from_secs(shared.config.history.retention_interval_secs.max(1));
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticker.tick() => {
                if shared.writer.prune(shared.config.history.retention_messages).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_is_locked_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = DataDirLock::take(dir.path()).expect("locks").expect("free");
        assert!(DataDirLock::take(dir.path()).expect("tries").is_none(), "a second server would be refused");
        drop(held);
        assert!(DataDirLock::take(dir.path()).expect("locks").is_some(), "free again once the first is gone");
    }

    #[test]
    fn open_connections_are_counted_per_slash_64() {
        let counts = Arc::new(Mutex::new(ConnectionCounts::default()));
        let mut config = Config::default();
        config.limits.max_connections_per_ip = 2;
        let peer = |host: &str| SocketAddr::new(host.parse().expect("address"), 40_000);
        let first = admit(&counts, &config, peer("2001:db8::1"), metrics::Gauge::noop());
        let second = admit(&counts, &config, peer("2001:db8::2"), metrics::Gauge::noop());
        let third = admit(&counts, &config, peer("2001:db8::3"), metrics::Gauge::noop());
        assert_eq!((first.1, second.1), (None, None));
        assert_eq!(
            third.1.map(|(reason, _)| reason),
            Some("too many connections from your address"),
            "one /64 is one address"
        );
        assert_eq!(
            admit(&counts, &config, peer("2001:db8:0:1::1"), metrics::Gauge::noop()).1,
            None,
            "another /64 is another address"
        );
        drop((first, second, third));
        assert_eq!(
            admit(&counts, &config, peer("2001:db8::4"), metrics::Gauge::noop()).1,
            None,
            "places are given back"
        );
    }
}
