//! Logging in: password checks, first-login registration, and the limiter that slows down guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palomar_proto::{ErrorCode, Nick};
use palomar_store::password;

use crate::config::{LoginSettings, Registration};
use crate::reads::Reads;
use crate::writer::{Action, Outcome, Writer};

/// Most keys the limiter remembers; past it, entries whose lockout is over are forgotten first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Nick(Nick),
    Addr(IpAddr),
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
        let wait = [Subject::Nick(nick.clone()), Subject::Addr(addr)]
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
        for subject in [Subject::Nick(nick.clone()), Subject::Addr(addr)] {
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

async fn verify(password: &str, hash: String) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password::verify_password(&password, &hash)).await.unwrap_or(false)
}

/// Checks `password` for `nick`, registering the nickname if it is free and registration is open.
/// Returns whether the account was created now.
pub async fn log_in(
    reads: &Arc<Reads>,
    writer: &Writer,
    registration: Registration,
    join_window: u64,
    nick: &Nick,
    password: &str,
) -> Result<bool, Refusal> {
    let wrong = || refuse(ErrorCode::AuthFailed, "wrong password for this nickname, or no such account");
    if password.is_empty() || password.len() > 1024 {
        return Err(refuse(ErrorCode::AuthFailed, "a password must have 1 to 1024 bytes"));
    }
    let lookup = nick.clone();
    let hash = reads.run(move |db| db.password_hash(&lookup)).await.map_err(unavailable)?;
    if let Some(hash) = hash {
        return if verify(password, hash).await { Ok(false) } else { Err(wrong()) };
    }
    if registration == Registration::Closed {
        return Err(refuse(ErrorCode::AuthFailed, "no such account, and this server does not register new ones"));
    }
    let to_hash = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash_password(&to_hash))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    match writer.call(Action::Register { nick: nick.clone(), password_hash: hash, window: join_window }).await {
        Ok(Outcome::Registered(true)) => Ok(true),
        Ok(_) => {
            // Somebody registered the nickname between our lookup and our insert: check against theirs.
            let lookup = nick.clone();
            match reads.run(move |db| db.password_hash(&lookup)).await.map_err(unavailable)? {
                Some(hash) => {
                    if verify(password, hash).await {
                        Ok(false)
                    } else {
                        Err(wrong())
                    }
                }
                None => Err(wrong()),
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
}
