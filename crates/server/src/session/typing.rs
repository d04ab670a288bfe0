//! Which of one session's typing notices are passed on (protocol version 6). A client renews `typing: true`
//! every [`TYPING_RENEW_MS`] while its user types; readers show it for [`TYPING_SHOWN_MS`]. So more than one
//! `true` per conversation in half the renewal time says nothing new (unless a `false` came between: readers
//! then show nothing), a `false` says something only after a `true` was passed on, and a client that sends more is only costing the others: the rest is dropped silently.
//! No I/O: the session asks, and passes on what this allows.
//!
//! [`TYPING_SHOWN_MS`]: palomar_proto::TYPING_SHOWN_MS

use std::collections::HashMap;
use std::time::{Duration, Instant};

use palomar_proto::TYPING_RENEW_MS;
use palomar_store::ConvId;

/// Shortest time between two `typing: true` passed on for one conversation.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_millis(TYPING_RENEW_MS / 2);
/// Most typing notices passed on per second, whatever their conversations.
const MAX_PER_SECOND: u32 = 20;

/// What was passed on for one conversation.
struct Said {
    /// When the last `typing: true` was passed on.
    last_true: Instant,
    /// A `true` was passed on since the last `false`.
    typing: bool,
}

/// One session's typing notices passed on, per conversation, and in the current second.
#[derive(Default)]
pub(super) struct TypingLimiter {
    said: HashMap<ConvId, Said>,
    /// The start of the current second, and how many notices were passed on in it.
    second: Option<(Instant, u32)>,
}

impl TypingLimiter {
    /// Whether a notice that the user is typing in `conv` (`typing`), or stopped, received at `now`, is passed on.
    pub(super) fn pass(&mut self, conv: ConvId, typing: bool, now: Instant) -> bool {
        let said = self.said.get(&conv);
        let news = if typing {
            // After a `false` readers show nothing: typing again is news however soon (the cap per second
            // bounds a client that flips between the two).
            said.is_none_or(|said| !said.typing || now.saturating_duration_since(said.last_true) >= RENEW_AT_MOST_EVERY)
        } else {
            said.is_some_and(|said| said.typing)
        };
        if !news || !self.count(now) {
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

    /// Counts a notice passed on at `now`; false when this second has had as many as it may.
    fn count(&mut self, now: Instant) -> bool {
        let (start, passed) = match self.second {
            Some((start, passed)) if now.saturating_duration_since(start) < Duration::from_secs(1) => (start, passed),
            _ => (now, 0),
        };
        if passed >= MAX_PER_SECOND {
            return false;
        }
        self.second = Some((start, passed + 1));
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

    #[test]
    fn typing_is_passed_on_at_most_once_per_half_renewal_per_conversation() {
        let (mut limiter, start, lobby, garden) = (TypingLimiter::default(), Instant::now(), ConvId(1), ConvId(2));
        assert!(limiter.pass(lobby, true, start));
        assert!(!limiter.pass(lobby, true, ms(start, 100)), "said already");
        assert!(limiter.pass(garden, true, ms(start, 100)), "another conversation is counted apart");
        assert!(!limiter.pass(lobby, true, ms(start, 1_499)));
        assert!(limiter.pass(lobby, true, ms(start, 1_500)));
        assert!(limiter.pass(lobby, true, ms(start, 4_500)), "a client renewing every 3 s is passed on every time");
    }

    #[test]
    fn stopping_is_passed_on_only_after_typing_was() {
        let (mut limiter, start, lobby) = (TypingLimiter::default(), Instant::now(), ConvId(1));
        assert!(!limiter.pass(lobby, false, start), "nothing to stop");
        assert!(limiter.pass(lobby, true, start));
        assert!(limiter.pass(lobby, false, ms(start, 10)));
        assert!(!limiter.pass(lobby, false, ms(start, 20)), "stopped already");
        assert!(limiter.pass(lobby, true, ms(start, 30)), "typing again after stopping is news at once");
        assert!(!limiter.pass(lobby, true, ms(start, 40)), "but not again within the renewal");
        assert!(limiter.pass(lobby, true, ms(start, 1_600)));
        assert!(limiter.pass(lobby, false, ms(start, 1_610)));
    }

    #[test]
    fn at_most_twenty_notices_a_second_are_passed_on() {
        let (mut limiter, start) = (TypingLimiter::default(), Instant::now());
        let passed = (0..30).filter(|n| limiter.pass(ConvId(*n), true, ms(start, *n as u64))).count();
        assert_eq!(passed, 20);
        assert!(limiter.pass(ConvId(99), true, ms(start, 1_000)), "the next second starts afresh");
    }

    #[test]
    fn a_conversation_forgotten_starts_afresh() {
        let (mut limiter, start, lobby) = (TypingLimiter::default(), Instant::now(), ConvId(1));
        assert!(limiter.pass(lobby, true, start));
        limiter.forget(lobby);
        assert!(!limiter.pass(lobby, false, ms(start, 10)), "nothing was said there since");
        assert!(limiter.pass(lobby, true, ms(start, 20)));
    }
}
