//! Which of one session's typing notices are passed on (protocol version 6). A client renews `typing: true`
//! every [`TYPING_RENEW_MS`] while its user types; readers show it for [`TYPING_SHOWN_MS`]. So more than one
//! `true` per conversation in half the renewal time says nothing new (unless a `false` came between: readers
//! then show nothing), and a `false` says something only after a `true` was passed on. What says something is
//! still capped per account, over all its sessions ([`typing_limit`]): a client that sends more is only costing
//! the others, and the rest is dropped silently. No I/O: the session asks, and passes on what this allows.
//!
//! [`TYPING_SHOWN_MS`]: palomar_proto::TYPING_SHOWN_MS

use std::collections::HashMap;
use std::time::{Duration, Instant};

use palomar_proto::TYPING_RENEW_MS;
use palomar_store::ConvId;

use crate::rate::AccountLimiter;

/// Shortest time between two `typing: true` passed on for one conversation.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_millis(TYPING_RENEW_MS / 2);
/// Most typing notices passed on per second and account, whatever their conversations and sessions.
const MAX_PER_SECOND: u32 = 20;

/// The cap on each account's typing notices, shared by its sessions.
pub(crate) fn typing_limit() -> AccountLimiter {
    AccountLimiter::new(f64::from(MAX_PER_SECOND), MAX_PER_SECOND)
}

/// What was passed on for one conversation.
struct Said {
    /// When the last `typing: true` was passed on.
    last_true: Instant,
    /// A `true` was passed on since the last `false`.
    typing: bool,
}

/// One session's typing notices passed on, per conversation.
#[derive(Default)]
pub(super) struct TypingLimiter {
    said: HashMap<ConvId, Said>,
}

impl TypingLimiter {
    /// Whether a notice that the user is typing in `conv` (`typing`), or stopped, received at `now`, is passed on:
    /// it says something new, and `within_cap` (asked only then) lets it through.
    pub(super) fn pass(&mut self, conv: ConvId, typing: bool, now: Instant, within_cap: impl FnOnce() -> bool) -> bool {
        let said = self.said.get(&conv);
        let news = if typing {
            // After a `false` readers show nothing: typing again is news however soon (the cap per account
            // bounds a client that flips between the two).
            said.is_none_or(|said| !said.typing || now.saturating_duration_since(said.last_true) >= RENEW_AT_MOST_EVERY)
        } else {
            said.is_some_and(|said| said.typing)
        };
        if !news || !within_cap() {
            return false;
        }
        match self.said.get_mut(&conv) {
            Some(said) if !typing => said.typing = false,
            _ => {
                self.said.insert(conv, Said { last_true: now, typing: true });
            }
        }
        true
    }

    /// Forgets a conversation the user is no longer in.
    pub(super) fn forget(&mut self, conv: ConvId) {
        self.said.remove(&conv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// No cap: what the conversation's own rules pass.
    fn uncapped() -> bool {
        true
    }

    #[test]
    fn typing_is_passed_on_at_most_once_per_half_renewal_per_conversation() {
        let (mut limiter, start, lobby, garden) = (TypingLimiter::default(), Instant::now(), ConvId(1), ConvId(2));
        assert!(limiter.pass(lobby, true, start, uncapped));
        assert!(!limiter.pass(lobby, true, ms(start, 100), uncapped), "said already");
        assert!(limiter.pass(garden, true, ms(start, 100), uncapped), "another conversation is counted apart");
        assert!(!limiter.pass(lobby, true, ms(start, 1_499), uncapped));
        assert!(limiter.pass(lobby, true, ms(start, 1_500), uncapped));
        assert!(
            limiter.pass(lobby, true, ms(start, 4_500), uncapped),
            "a client renewing every 3 s is passed on every time"
        );
    }

    #[test]
    fn stopping_is_passed_on_only_after_typing_was() {
        let (mut limiter, start, lobby) = (TypingLimiter::default(), Instant::now(), ConvId(1));
        assert!(!limiter.pass(lobby, false, start, uncapped), "nothing to stop");
        assert!(limiter.pass(lobby, true, start, uncapped));
        assert!(limiter.pass(lobby, false, ms(start, 10), uncapped));
        assert!(!limiter.pass(lobby, false, ms(start, 20), uncapped), "stopped already");
        assert!(limiter.pass(lobby, true, ms(start, 30), uncapped), "typing again after stopping is news at once");
        assert!(!limiter.pass(lobby, true, ms(start, 40), uncapped), "but not again within the renewal");
        assert!(limiter.pass(lobby, true, ms(start, 1_600), uncapped));
        assert!(limiter.pass(lobby, false, ms(start, 1_610), uncapped));
    }

    #[test]
    fn at_most_twenty_notices_a_second_are_passed_on_for_an_account_however_many_sessions_it_has() {
        let (cap, account, start) = (typing_limit(), palomar_store::AccountId(7), Instant::now());
        let (mut phone, mut laptop) = (TypingLimiter::default(), TypingLimiter::default());
        let passed = (0..30)
            .filter(|n| {
                let session = if n % 2 == 0 { &mut phone } else { &mut laptop };
                let at = ms(start, *n as u64);
                session.pass(ConvId(*n), true, at, || cap.try_take(account, at))
            })
            .count();
        assert_eq!(passed, 20, "shared by the account's two sessions");
        let at = ms(start, 1_000);
        assert!(phone.pass(ConvId(99), true, at, || cap.try_take(account, at)), "the next second starts afresh");
        let other = palomar_store::AccountId(8);
        assert!(laptop.pass(ConvId(98), true, start, || cap.try_take(other, start)), "another account has its own");
    }

    #[test]
    fn a_notice_over_the_cap_is_not_taken_for_said() {
        let (mut limiter, start, lobby) = (TypingLimiter::default(), Instant::now(), ConvId(1));
        assert!(!limiter.pass(lobby, true, start, || false), "over the cap");
        assert!(limiter.pass(lobby, true, ms(start, 10), uncapped), "so the next is still news");
    }

    #[test]
    fn a_conversation_forgotten_starts_afresh() {
        let (mut limiter, start, lobby) = (TypingLimiter::default(), Instant::now(), ConvId(1));
        assert!(limiter.pass(lobby, true, start, uncapped));
        limiter.forget(lobby);
        assert!(!limiter.pass(lobby, false, ms(start, 10), uncapped), "nothing was said there since");
        assert!(limiter.pass(lobby, true, ms(start, 20), uncapped));
    }
}
