//! Logging in: password checks, first-login registration, and the limiter that slows down guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use palomar_proto::{ErrorCode, Nick};
use palomar_store::password;

use tokio::sync::oneshot;

use crate::Shared;
use crate::config::{LoginSettings, Registration};
use crate::rate::Address;
use crate::workers::{self, JobQueue};
use crate::writer::{Action, Outcome};

/// Most keys the limiter remembers; past it, entries whose lockout is over are forgotten first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Nick(Nick),
    Addr(Address),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Counts failed logins per nickname and per address; past `max_failures`, locks the subject out for a time
/// that doubles with every further failure.
pub struct LoginLimiter {
    settings: LoginSettings,
    failures: Mutex<HashMap<Subject, Failures>>,
}

impl LoginLimiter {
    pub fn new(settings: LoginSettings) -> Self {
        LoginLimiter { settings, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` while the nickname or the address is locked out.
    pub fn check(&self, nick: &Nick, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = [Subject::Nick(nick.clone()), Subject::Addr(Address::of(addr))]
            .iter()
            .filter_map(|subject| failures.get(subject)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn failed(&self, nick: &Nick, addr: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| f.locked_until.is_some_and(|until| until > now));
        }
        for subject in [Subject::Nick(nick.clone()), Subject::Addr(Address::of(addr))] {
            let entry = failures.entry(subject).or_insert(Failures { count: 0, locked_until: None });
            entry.count += 1;
            if entry.count >= self.settings.max_failures {
                let doublings = (entry.count - self.settings.max_failures).min(12);
                let lockout = Duration::from_secs(self.settings.lockout_secs.saturating_mul(1 << doublings).min(3_600));
                entry.locked_until = Some(now + lockout);
            }
        }
    }

    pub fn succeeded(&self, nick: &Nick) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&Subject::Nick(nick.clone()));
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

/// A password job for the [`PasswordWorkers`].
enum PasswordJob {
    Hash { password: String, reply: oneshot::Sender<Result<String, password::HashError>> },
    Verify { password: String, hash: String, reply: oneshot::Sender<bool> },
}

/// Argon2 on a few threads of its own. A password check costs tens of milliseconds of CPU and 19 MiB of
/// memory; on tokio's blocking pool a burst of logins (failed ones too) would run hundreds of them at once. A
/// fixed pool bounds both and queues the burst.
pub struct PasswordWorkers {
    jobs: std::sync::mpsc::Sender<PasswordJob>,
}

impl PasswordWorkers {
    pub fn start(threads: usize) -> std::io::Result<PasswordWorkers> {
        let jobs = workers::start("palomar-passwords", threads.max(1), |queue: &JobQueue<PasswordJob>| {
            while let Some(job) = queue.next() {
                match job {
                    PasswordJob::Hash { password, reply } => {
                        let _ = reply.send(password::hash_password(&password));
                    }
                    PasswordJob::Verify { password, hash, reply } => {
                        let _ = reply.send(password::verify_password(&password, &hash));
                    }
                }
            }
        })?;
        Ok(PasswordWorkers { jobs })
    }

    async fn verify(&self, password: &str, hash: String) -> bool {
        let (reply, answer) = oneshot::channel();
        let job = PasswordJob::Verify { password: password.to_owned(), hash, reply };
        self.jobs.send(job).is_ok() && answer.await.unwrap_or(false)
    }

    async fn hash(&self, password: &str) -> Result<String, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(PasswordJob::Hash { password: password.to_owned(), reply }).map_err(unavailable)?;
        answer.await.map_err(unavailable)?.map_err(unavailable)
    }
}

/// Checks `password` for `nick`, registering the nickname if it is free and registration is open.
/// Returns whether the account was created now.
pub async fn log_in(shared: &Shared, nick: &Nick, password: &str) -> Result<bool, Refusal> {
    let wrong = || refuse(ErrorCode::AuthFailed, "wrong password for this nickname, or no such account");
    if password.is_empty() || password.len() > 1024 {
        return Err(refuse(ErrorCode::AuthFailed, "a password must have 1 to 1024 bytes"));
    }
    let lookup = nick.clone();
    let hash = shared.reads.run(move |db| db.password_hash(&lookup)).await.map_err(unavailable)?;
    if let Some(hash) = hash {
        return if shared.passwords.verify(password, hash).await { Ok(false) } else { Err(wrong()) };
    }
    if shared.config.registration == Registration::Closed {
        return Err(refuse(ErrorCode::AuthFailed, "no such account, and this server does not register new ones"));
    }
    let hash = shared.passwords.hash(password).await?;
    let window = shared.config.history.join_window;
    match shared.writer.call(Action::Register { nick: nick.clone(), password_hash: hash, window }).await {
        Ok(Outcome::Registered(true)) => Ok(true),
        Ok(_) => {
            // Somebody registered the nickname between our lookup and our insert: check against theirs.
            let lookup = nick.clone();
            match shared.reads.run(move |db| db.password_hash(&lookup)).await.map_err(unavailable)? {
                Some(hash) if shared.passwords.verify(password, hash.clone()).await => Ok(false),
                _ => Err(wrong()),
            }
        }
        Err(error) => Err(unavailable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_out_the_nickname_and_the_address() {
        let limiter = LoginLimiter::new(LoginSettings { max_failures: 3, lockout_secs: 60 });
        let ana = Nick::parse("ana").expect("valid");
        let bob = Nick::parse("bob").expect("valid");
        let here: IpAddr = [127, 0, 0, 1].into();
        let elsewhere: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..2 {
            limiter.failed(&ana, here);
        }
        assert!(limiter.check(&ana, elsewhere).is_ok());
        limiter.failed(&ana, here);
        assert!(limiter.check(&ana, elsewhere).is_err(), "the nickname is locked everywhere");
        assert!(limiter.check(&bob, here).is_err(), "the address is locked for every nickname");
        assert!(limiter.check(&bob, elsewhere).is_ok());
    }

    #[test]
    fn a_slash_64_is_one_address_for_lockouts() {
        let limiter = LoginLimiter::new(LoginSettings { max_failures: 3, lockout_secs: 60 });
        let ana = Nick::parse("ana").expect("valid");
        let bob = Nick::parse("bob").expect("valid");
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
            limiter.failed(&ana, host.parse().expect("address"));
        }
        assert!(limiter.check(&bob, "2001:db8::ffff".parse().expect("address")).is_err(), "the /64 is locked out");
        assert!(limiter.check(&bob, "2001:db8:0:1::1".parse().expect("address")).is_ok());
    }
}
