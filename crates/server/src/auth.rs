//! Logging in: password checks and first-login registration on the password threads, and the limiter that
//! paces guessing. Logins of one nickname are judged one at a time; a nickname is locked out per address
//! after a few failures, slowed down with growing delays when it fails from many addresses, and an address
//! failing on many nicknames is locked out briefly. Nodes sharing a database tell each other of every failure
//! and success, so the counts and lockouts are the same on every node (within the ~50 ms a notice takes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palomar_proto::{ErrorCode, Nick};
use palomar_store::{Account, Credentials, Notice, Suspension, password};
use parking_lot::Mutex;

use tokio::sync::{OwnedMutexGuard, oneshot};

use crate::Shared;
use crate::config::{Limits, LoginSettings, Registration};
use crate::rate::{Address, RegistrationRefused};
use crate::telemetry::Login;
use crate::workers::{self, Lanes};

/// Most records of failures the limiter keeps; past it, records that lock nobody out are forgotten first.
const MAX_TRACKED: usize = 100_000;
/// Longest password accepted; a longer one is refused before any work is done on it.
const MAX_PASSWORD_BYTES: usize = 1024;

/// What a record of failures is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    /// A nickname from one address: locked out after `max_failures`.
    Pair(Nick, Address),
    /// A nickname from anywhere: slowed down after `max_failures`.
    Nick(Nick),
    /// An address, whatever the nickname: locked out briefly after `max_failures_per_address`.
    Address(Address),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn lockout(&self, now: Instant) -> Option<Duration> {
        self.locked_until.filter(|until| *until > now).map(|until| until - now)
    }
}

/// Why a login is not judged now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedOut {
    /// This nickname from this address.
    Pair(Duration),
    /// This address, for every nickname.
    Address(Duration),
}

/// Records failed logins per (nickname, address), per nickname and per address, and hands out the turns that
/// make the logins of one nickname wait for each other.
pub struct LoginLimiter {
    settings: LoginSettings,
    failures: Mutex<HashMap<Subject, Failures>>,
    /// A line per nickname with a login being judged; removed when nobody holds or waits for it.
    turns: Mutex<HashMap<Nick, Arc<tokio::sync::Mutex<()>>>>,
    /// Where this node's failures and successes go to the other nodes on its database, if any.
    peers: Mutex<Option<std::sync::mpsc::Sender<Notice>>>,
}

impl LoginLimiter {
    pub fn new(settings: LoginSettings) -> Self {
        LoginLimiter {
            settings,
            failures: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            peers: Mutex::new(None),
        }
    }

    /// Tells the other nodes, through `peers`, of every login judged here from now on.
    pub fn tell_peers_through(&self, peers: std::sync::mpsc::Sender<Notice>) {
        *self.peers.lock() = Some(peers);
    }

    fn tell_peers(&self, notice: Notice) {
        if let Some(peers) = &*self.peers.lock() {
            // Gone only when the node is stopping.
            let _ = peers.send(notice);
        }
    }

    /// How long a record is remembered after its last failure (and past any lockout it holds).
    fn memory(&self, subject: &Subject) -> Duration {
        Duration::from_secs(match subject {
            // An address is shared by many people: only failures in quick succession count together.
            Subject::Address(_) => self.settings.address_lockout_secs,
            // Longer than the longest lockout, so that a guess made as soon as one ends doubles the next.
            Subject::Pair(..) | Subject::Nick(_) => self.settings.max_lockout_secs.saturating_mul(2),
        })
    }

    fn current(&self, failures: &HashMap<Subject, Failures>, subject: &Subject, now: Instant) -> Option<Failures> {
        let record = *failures.get(subject)?;
        let remembered = now.saturating_duration_since(record.last) < self.memory(subject);
        (remembered || record.lockout(now).is_some()).then_some(record)
    }

    /// `Err` while this nickname from this address, or this address, is locked out.
    pub fn check(&self, nick: &Nick, address: Address, now: Instant) -> Result<(), LockedOut> {
        let failures = self.failures.lock();
        let lockout = |subject| self.current(&failures, &subject, now).and_then(|record| record.lockout(now));
        if let Some(wait) = lockout(Subject::Address(address)) {
            return Err(LockedOut::Address(wait));
        }
        lockout(Subject::Pair(nick.clone(), address)).map_or(Ok(()), |wait| Err(LockedOut::Pair(wait)))
    }

    /// How long a login of `nick` waits before it is judged: nothing until the nickname had `max_failures`
    /// recent failures from anywhere, then `delay_ms`, doubling with every further failure up to `max_delay_ms`.
    pub fn delay(&self, nick: &Nick, now: Instant) -> Duration {
        let failures = self.failures.lock();
        let count = self.current(&failures, &Subject::Nick(nick.clone()), now).map_or(0, |record| record.count);
        let Some(beyond) = count.checked_sub(self.settings.max_failures) else { return Duration::ZERO };
        let delay = self.settings.delay_ms.saturating_mul(1 << beyond.min(20));
        Duration::from_millis(delay.min(self.settings.max_delay_ms))
    }

    /// Records a wrong password (or an unknown nickname) for `nick` from `address`, here and on the other nodes.
    pub fn failed(&self, nick: &Nick, address: Address, now: Instant) {
        self.heard_failure(nick, address, now);
        self.tell_peers(Notice::LoginFailed { nick: nick.clone(), address: address.ip() });
    }

    /// Records a failed login that another node judged.
    pub fn heard_failure(&self, nick: &Nick, address: Address, now: Instant) {
        let settings = &self.settings;
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|subject, record| {
                now.saturating_duration_since(record.last) < self.memory(subject) || record.lockout(now).is_some()
            });
        }
        if failures.len() >= MAX_TRACKED {
            // Records under the limits are worth at most a fresh allowance; a lockout in force is kept. There
            // are few of those: each takes several failures, and failures come no faster than the password
            // threads judge them.
            failures.retain(|_, record| record.lockout(now).is_some());
        }
        for subject in [Subject::Pair(nick.clone(), address), Subject::Nick(nick.clone()), Subject::Address(address)] {
            let previous = self.current(&failures, &subject, now);
            let record =
                failures.entry(subject.clone()).or_insert(Failures { count: 0, last: now, locked_until: None });
            if previous.is_none() {
                *record = Failures { count: 0, last: now, locked_until: None };
            }
            record.count = record.count.saturating_add(1);
            record.last = now;
            match subject {
                Subject::Pair(..) if record.count >= settings.max_failures => {
                    let doublings = (record.count - settings.max_failures).min(20);
                    let lockout = settings.lockout_secs.saturating_mul(1 << doublings).min(settings.max_lockout_secs);
                    record.locked_until = Some(now + Duration::from_secs(lockout));
                }
                Subject::Address(_)
                    if settings.max_failures_per_address > 0 && record.count >= settings.max_failures_per_address =>
                {
                    // Locked out briefly, then a fresh allowance: never an hour for everyone behind one address.
                    record.locked_until = Some(now + Duration::from_secs(settings.address_lockout_secs));
                    record.count = 0;
                }
                _ => {}
            }
        }
    }

    /// The right password: this address starts afresh with this nickname, here and on the other nodes. The
    /// nickname's failures from elsewhere still slow it down, and the address's still count.
    pub fn succeeded(&self, nick: &Nick, address: Address) {
        self.heard_success(nick, address);
        self.tell_peers(Notice::LoginSucceeded { nick: nick.clone(), address: address.ip() });
    }

    /// Records a successful login that another node judged.
    pub fn heard_success(&self, nick: &Nick, address: Address) {
        self.failures.lock().remove(&Subject::Pair(nick.clone(), address));
    }

    /// Waits until no other login of `nick` is being judged, in order of arrival, until `deadline` (then
    /// `None`). While the returned turn is held, other logins of the nickname wait, so each is judged with the
    /// failures of those before it.
    pub async fn turn(&self, nick: &Nick, deadline: Instant) -> Option<Turn<'_>> {
        let line = self.turns.lock().entry(nick.clone()).or_default().clone();
        let waiting = line.clone().lock_owned();
        // Dropped while it waits (past the deadline, or because its client left), the turn still leaves the line.
        let mut turn = Turn { limiter: self, nick: nick.clone(), line: Some(line), held: None };
        turn.held = Some(tokio::time::timeout_at(deadline.into(), waiting).await.ok()?);
        Some(turn)
    }
}

/// The right to have a login of one nickname judged; the next login in line gets it when this is dropped.
pub struct Turn<'a> {
    limiter: &'a LoginLimiter,
    nick: Nick,
    line: Option<Arc<tokio::sync::Mutex<()>>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut turns = self.limiter.turns.lock();
        // A line is first reached through the map, under this lock: when only the map's reference and ours are
        // left, nobody else holds or waits for the nickname's turn, nor can start to.
        if let Some(line) = self.line.take()
            && Arc::strong_count(&line) == 2
        {
            turns.remove(&self.nick);
        }
    }
}

/// A refused login, as the client will be told.
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

fn unavailable(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "login could not reach the store");
    refuse(ErrorCode::StoreUnavailable, "the server cannot check accounts right now; try again later")
}

fn wrong() -> Refusal {
    refuse(ErrorCode::AuthFailed, "wrong password for this nickname, or no such account")
}

/// Whole seconds, rounded up, for "try again in N s".
fn seconds(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

fn locked_out(locked: LockedOut) -> Refusal {
    match locked {
        LockedOut::Pair(wait) => refuse(
            ErrorCode::RateLimited,
            format!("too many failed logins with this nickname from your address; try again in {} s", seconds(wait)),
        ),
        LockedOut::Address(wait) => refuse(
            ErrorCode::RateLimited,
            format!("too many failed logins from your address; try again in {} s", seconds(wait)),
        ),
    }
}

/// A password job for the [`PasswordWorkers`].
enum PasswordJob {
    Hash { password: String, reply: oneshot::Sender<Result<String, password::HashError>> },
    Verify { password: String, hash: String, reply: oneshot::Sender<bool> },
}

/// The lanes of the password queue: checks of existing accounts are served before new accounts are hashed.
const CHECKS: usize = 0;
const REGISTRATIONS: usize = 1;

/// Argon2 on a few threads of their own. A password check costs tens of milliseconds of CPU and 19 MiB of
/// memory; on tokio's blocking pool a burst of logins (failed ones too) would run hundreds of them at once. A
/// fixed pool bounds both; bounded lanes in front of it answer a burst past them with `ServerBusy`.
pub struct PasswordWorkers {
    queue: Arc<Lanes<PasswordJob, 2>>,
    /// A hash that no accepted password matches, checked for nicknames without an account so that they take
    /// as long to refuse as a wrong password.
    decoy: String,
}

impl PasswordWorkers {
    pub async fn start(threads: usize, limits: &Limits) -> anyhow::Result<PasswordWorkers> {
        let queue = Arc::new(Lanes::new([limits.password_queue, limits.registration_queue]));
        workers::start_on("palomar-passwords", threads.max(1), queue.clone(), |queue: &Lanes<PasswordJob, 2>| {
            while let Some(job) = queue.next() {
                // A job whose client has left is dropped unrun: nobody would read its answer.
                match job {
                    PasswordJob::Hash { password, reply } if !reply.is_closed() => {
                        let _ = reply.send(password::hash_password(&password));
                    }
                    PasswordJob::Verify { password, hash, reply } if !reply.is_closed() => {
                        let _ = reply.send(password::verify_password(&password, &hash));
                    }
                    PasswordJob::Hash { .. } | PasswordJob::Verify { .. } => {}
                }
            }
        })?;
        let mut workers = PasswordWorkers { queue, decoy: String::new() };
        // Longer than any password a login may use, so nothing verifies against it.
        let unusable = "-".repeat(MAX_PASSWORD_BYTES + 1);
        workers.decoy = workers.hash(&unusable).await.map_err(|refusal| anyhow::anyhow!(refusal.message))?;
        Ok(workers)
    }

    fn busy() -> Refusal {
        refuse(ErrorCode::ServerBusy, "the server is busy checking passwords; try again in a few seconds")
    }

    async fn verify(&self, password: &str, hash: String) -> Result<bool, Refusal> {
        let (reply, answer) = oneshot::channel();
        let job = PasswordJob::Verify { password: password.to_owned(), hash, reply };
        self.queue.push(CHECKS, job).map_err(|_| Self::busy())?;
        answer.await.map_err(unavailable)
    }

    async fn hash(&self, password: &str) -> Result<String, Refusal> {
        let (reply, answer) = oneshot::channel();
        let job = PasswordJob::Hash { password: password.to_owned(), reply };
        self.queue.push(REGISTRATIONS, job).map_err(|_| Self::busy())?;
        answer.await.map_err(unavailable)?.map_err(unavailable)
    }
}

impl Drop for PasswordWorkers {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Judges a login of `nick` from `peer`: refuses it while the pair or the address is locked out, waits for
/// the nickname's turn (until `deadline`) and its delay, checks the password, or registers the nickname if it
/// is free and registration is open, and records the outcome. Returns the account, and whether it was created
/// now.
pub async fn log_in(
    shared: &Shared,
    nick: &Nick,
    password: &str,
    peer: IpAddr,
    deadline: Instant,
) -> Result<(Account, bool), Refusal> {
    let judged = judge(shared, nick, password, Address::of(peer), deadline).await;
    let counted = match &judged {
        Ok((_, true)) => Login::Registered,
        Ok((_, false)) => Login::Ok,
        Err(Judged::LockedOut(_)) => Login::LockedOut,
        Err(Judged::Suspended(_)) => Login::Suspended,
        Err(Judged::Refused(refusal)) if refusal.code == ErrorCode::AuthFailed => Login::Failed,
        Err(Judged::Refused(_)) => Login::NotJudged,
    };
    shared.metrics.login(counted).increment(1);
    judged.map_err(|unjudged| match unjudged {
        Judged::LockedOut(refusal) | Judged::Suspended(refusal) | Judged::Refused(refusal) => refusal,
    })
}

/// Why a login was refused: locked out before its password was looked at, a right password of a suspended
/// account, or anything else.
enum Judged {
    LockedOut(Refusal),
    Suspended(Refusal),
    Refused(Refusal),
}

/// [`log_in`]'s judgement, with the refusals of a locked-out login told apart for the count.
async fn judge(
    shared: &Shared,
    nick: &Nick,
    password: &str,
    address: Address,
    deadline: Instant,
) -> Result<(Account, bool), Judged> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Judged::Refused(refuse(ErrorCode::AuthFailed, "a password must have 1 to 1024 bytes")));
    }
    let limiter = &shared.limiter;
    let refuse_locked = |locked| Judged::LockedOut(locked_out(locked));
    // A locked-out login is refused at once rather than after waiting in line.
    limiter.check(nick, address, Instant::now()).map_err(refuse_locked)?;
    let Some(_turn) = limiter.turn(nick, deadline).await else {
        return Err(Judged::Refused(refuse(
            ErrorCode::ServerBusy,
            "another login with this nickname is still being checked; try again in a few seconds",
        )));
    };
    limiter.check(nick, address, Instant::now()).map_err(refuse_locked)?;
    tokio::time::sleep(limiter.delay(nick, Instant::now())).await;
    let outcome = check_or_register(shared, nick, password, address).await;
    match &outcome {
        Ok(_) => limiter.succeeded(nick, address),
        Err(refusal) if refusal.code == ErrorCode::AuthFailed => limiter.failed(nick, address, Instant::now()),
        // Busy or unavailable: the password was not judged, so the attempt counts against nobody.
        Err(_) => {}
    }
    let (account, registered) = outcome.map_err(Judged::Refused)?;
    if registered {
        // A new account's id is new: nothing can have suspended it.
        return Ok((account, true));
    }
    // Only once the password is judged right, so that a suspension tells nothing to whoever guesses; and not a
    // failure, so that the account's owner is not locked out for trying.
    let id = account.id;
    let now = palomar_proto::unix_ms();
    let suspension =
        shared.reads.run(move |db| db.suspension_of(id, now)).await.map_err(|e| Judged::Refused(unavailable(e)))?;
    if let Some(suspension) = suspension {
        return Err(Judged::Suspended(refuse(ErrorCode::AuthFailed, suspended(&suspension))));
    }
    Ok((account, false))
}

/// What the client of a suspended account is told, at login or when its session is ended.
pub fn suspended(suspension: &Suspension) -> String {
    let until =
        match suspension.until_ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)) {
            Some(until) => format!("until {}", until.format("%Y-%m-%d %H:%M:%S UTC")),
            None => "until an operator lifts it".to_owned(),
        };
    let why = if suspension.reason.is_empty() { "no reason given" } else { &suspension.reason };
    format!("the account {} is suspended {until}: {why}", suspension.account.nick)
}

async fn credentials(shared: &Shared, nick: &Nick) -> Result<Option<Credentials>, Refusal> {
    let lookup = nick.clone();
    shared.reads.run(move |db| db.credentials(&lookup)).await.map_err(unavailable)
}

/// The account of `credentials` if `password` is its password.
async fn check(shared: &Shared, password: &str, credentials: Credentials) -> Result<(Account, bool), Refusal> {
    let Credentials { account, password_hash } = credentials;
    if shared.passwords.verify(password, password_hash).await? { Ok((account, false)) } else { Err(wrong()) }
}

async fn check_or_register(
    shared: &Shared,
    nick: &Nick,
    password: &str,
    address: Address,
) -> Result<(Account, bool), Refusal> {
    if let Some(found) = credentials(shared, nick).await? {
        return check(shared, password, found).await;
    }
    if shared.config.registration == Registration::Closed {
        // The same work and the same words as a wrong password: neither tells which nicknames have accounts.
        shared.passwords.verify(password, shared.passwords.decoy.clone()).await?;
        return Err(wrong());
    }
    shared.registrations.take(address, Instant::now()).map_err(|refused| match refused {
        RegistrationRefused::Address(wait) => refuse(
            ErrorCode::RateLimited,
            format!("too many new accounts from your address; try again in {} s", seconds(wait)),
        ),
        RegistrationRefused::Total(wait) => refuse(
            ErrorCode::ServerBusy,
            format!("the server is taking too many new accounts right now; try again in {} s", seconds(wait)),
        ),
    })?;
    let hash = match shared.passwords.hash(password).await {
        Ok(hash) => hash,
        Err(refusal) => {
            shared.registrations.give_back(address, Instant::now());
            return Err(refusal);
        }
    };
    let window = shared.config.history.join_window;
    match shared.writer.register(nick.clone(), hash, window).await {
        Ok(Some(account)) => Ok((account, true)),
        Ok(None) => {
            // Somebody registered the nickname between our lookup and our insert: check against theirs.
            let Some(found) = credentials(shared, nick).await? else { return Err(wrong()) };
            check(shared, password, found).await
        }
        Err(error) => Err(unavailable(error)),
    }
}

#[cfg(test)]
mod tests;
