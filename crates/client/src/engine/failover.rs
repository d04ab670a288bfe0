//! Which address of the chat's list the engine tries next. An attempt that fails moves down the list at once;
//! once every address failed in a round, the engine waits (the backoff, or the time a refusal named) and the
//! next round starts again from the address that worked last. A connection that was up and drops is retried
//! on its own node first. No socket and no clock, so the order is tested alone.

use std::time::Duration;

use crate::server_address::ServerAddresses;

/// How an attempt on the current address failed, as far as the choice of the next one is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// No server there took the login: refused, unreachable, TLS failed or timed out, the connection died (or
    /// the server said it is shutting down) before `Welcome`.
    Unreachable,
    /// That node is too busy or full to take the login now, and may have said for how long. The next node is
    /// tried at once: busy password threads and full connection tables belong to one node, and spreading a
    /// crowd over the nodes is what they are there for. Each node is still asked once a round, so a crowd
    /// cannot hammer them faster than an unreachable list would.
    NodeBusy(Option<Duration>),
    /// Refused for now for a reason every node would repeat (a lockout of this nickname or address, the shared
    /// store out of reach): the round ends and the named time is waited out. Asking the other nodes would only
    /// spend attempts that a lockout counts, or dodge it, which the server forbids (PROTOCOL.md §8).
    RefusedForNow(Option<Duration>),
}

/// What the engine does after an attempt failed or a connection dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Try [`Failover::current`] at once.
    TryNow,
    /// Wait, then try [`Failover::current`].
    Wait(Outage),
}

/// What the wait before the next round is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outage {
    /// Waits in a row since the last connection, 1 for the first: the backoff's exponent, and what front ends
    /// count as attempts.
    pub attempt: u32,
    /// A server of the round answered and refused the login for now: the addresses are right and waiting is
    /// the remedy.
    pub refused_for_now: bool,
    /// The time to wait a refusal named: the lockout's, else the shortest a busy node named.
    pub named_wait: Option<Duration>,
}

#[derive(Debug)]
pub(super) struct Failover {
    addresses: ServerAddresses,
    /// Index of the address to try next.
    current: usize,
    /// Index of the address that took the last login (the first one until one did): each round starts there.
    last_good: usize,
    /// Addresses tried in this round.
    tried: usize,
    /// Waits since the last connection.
    waits: u32,
    /// `Some` once a node of this round refused the login for now, with the wait to keep.
    refused: Option<Option<Duration>>,
}

impl Failover {
    pub fn new(addresses: ServerAddresses) -> Failover {
        Failover { addresses, current: 0, last_good: 0, tried: 0, waits: 0, refused: None }
    }

    /// The address to try next.
    pub fn current(&self) -> &str {
        &self.addresses.all()[self.current]
    }

    /// Waits since the last connection: 0 until the first wait.
    pub fn attempt(&self) -> u32 {
        self.waits
    }

    /// The current address took the login: the next round starts from it, and the backoff from the start.
    pub fn connected(&mut self) {
        self.last_good = self.current;
        self.tried = 0;
        self.waits = 0;
        self.refused = None;
    }

    /// The connection that was up ended: wait, then try its node again first, then the others.
    pub fn dropped(&mut self) -> Outage {
        self.end_round()
    }

    /// The attempt on the current address failed.
    pub fn failed(&mut self, failure: Failure) -> Next {
        self.tried += 1;
        match failure {
            Failure::Unreachable => {}
            Failure::NodeBusy(named) => {
                let kept = self.refused.flatten();
                self.refused = Some(match (kept, named) {
                    (Some(kept), Some(named)) => Some(kept.min(named)),
                    (kept, named) => kept.or(named),
                });
            }
            Failure::RefusedForNow(named) => {
                self.refused = Some(named);
                return Next::Wait(self.end_round());
            }
        }
        if self.tried < self.addresses.all().len() {
            self.current = (self.current + 1) % self.addresses.all().len();
            Next::TryNow
        } else {
            Next::Wait(self.end_round())
        }
    }

    fn end_round(&mut self) -> Outage {
        self.current = self.last_good;
        self.tried = 0;
        self.waits = self.waits.saturating_add(1);
        let refused = self.refused.take();
        Outage { attempt: self.waits, refused_for_now: refused.is_some(), named_wait: refused.flatten() }
    }
}

/// What a `Disconnected` says about a round: the one reason when one address failed, else each address with
/// its reason (which usually names the address already).
pub(super) fn round_reason(failures: &[(String, String)]) -> String {
    match failures {
        [(_, reason)] => reason.clone(),
        _ => {
            let each: Vec<String> = failures
                .iter()
                .map(|(address, reason)| match reason.contains(address.as_str()) {
                    true => reason.clone(),
                    false => format!("{address}: {reason}"),
                })
                .collect();
            format!("no server of the list took the connection ({})", each.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_address::parse_server;

    fn failover(list: &str) -> Failover {
        Failover::new(parse_server(list).expect("a list"))
    }

    fn wait(attempt: u32) -> Next {
        Next::Wait(Outage { attempt, refused_for_now: false, named_wait: None })
    }

    #[test]
    fn failures_move_down_the_list_at_once_and_a_full_round_waits() {
        let mut order = failover("a:1,b:2,c:3");
        assert_eq!((order.current(), order.attempt()), ("a:1", 0), "the chat's name first");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        assert_eq!(order.current(), "b:2");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        assert_eq!(order.current(), "c:3");
        assert_eq!(order.failed(Failure::Unreachable), wait(1), "every address failed: the backoff applies");
        assert_eq!(order.current(), "a:1", "none worked yet: from the top again");
        for _ in 0..2 {
            assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        }
        assert_eq!(order.failed(Failure::Unreachable), wait(2), "the backoff grows with the rounds");
    }

    #[test]
    fn a_success_is_remembered_and_each_round_starts_from_it() {
        let mut order = failover("a:1,b:2,c:3");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        order.connected();
        assert_eq!(order.current(), "b:2");
        assert_eq!(order.dropped(), Outage { attempt: 1, refused_for_now: false, named_wait: None });
        assert_eq!(order.current(), "b:2", "a dropped connection is retried on its node first");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        assert_eq!(order.current(), "c:3", "then down the list");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        assert_eq!(order.current(), "a:1", "round the end of the list");
        assert_eq!(order.failed(Failure::Unreachable), wait(2));
        assert_eq!(order.current(), "b:2", "the next round starts from the address that worked last");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        order.connected();
        assert_eq!((order.current(), order.attempt()), ("c:3", 0), "a new success, and the backoff starts over");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        assert_eq!(order.current(), "a:1");
    }

    #[test]
    fn one_address_waits_after_every_failure_as_before_lists() {
        let mut order = failover("a:1");
        for attempt in 1..=3 {
            assert_eq!(order.failed(Failure::Unreachable), wait(attempt));
            assert_eq!(order.current(), "a:1");
        }
        order.connected();
        assert_eq!(order.dropped().attempt, 1);
        let named = Some(Duration::from_secs(3));
        let refused = Outage { attempt: 2, refused_for_now: true, named_wait: named };
        assert_eq!(order.failed(Failure::NodeBusy(named)), Next::Wait(refused));
        assert_eq!(order.failed(Failure::Unreachable), wait(3), "a refusal counts for its own round only");
    }

    #[test]
    fn a_busy_node_passes_the_login_on_and_a_round_of_refusals_waits_the_shortest_named_time() {
        let mut order = failover("a:1,b:2,c:3");
        assert_eq!(order.failed(Failure::NodeBusy(Some(Duration::from_secs(5)))), Next::TryNow);
        assert_eq!(order.current(), "b:2");
        assert_eq!(order.failed(Failure::Unreachable), Next::TryNow);
        let shortest = Outage { attempt: 1, refused_for_now: true, named_wait: Some(Duration::from_secs(2)) };
        assert_eq!(order.failed(Failure::NodeBusy(Some(Duration::from_secs(2)))), Next::Wait(shortest));
        assert_eq!(order.current(), "a:1");
        assert_eq!(order.failed(Failure::NodeBusy(None)), Next::TryNow);
        assert_eq!(order.failed(Failure::NodeBusy(None)), Next::TryNow);
        let unnamed = Outage { attempt: 2, refused_for_now: true, named_wait: None };
        assert_eq!(order.failed(Failure::Unreachable), Next::Wait(unnamed), "no time named: the backoff");
    }

    #[test]
    fn a_refusal_every_node_would_repeat_ends_the_round_at_once() {
        let mut order = failover("a:1,b:2,c:3");
        assert_eq!(order.failed(Failure::NodeBusy(Some(Duration::from_secs(1)))), Next::TryNow);
        let locked = Some(Duration::from_secs(30));
        let outage = Outage { attempt: 1, refused_for_now: true, named_wait: locked };
        assert_eq!(order.failed(Failure::RefusedForNow(locked)), Next::Wait(outage), "c:3 is not asked");
        assert_eq!(order.current(), "a:1");
        let unnamed = Outage { attempt: 2, refused_for_now: true, named_wait: None };
        assert_eq!(order.failed(Failure::RefusedForNow(None)), Next::Wait(unnamed));
    }

    #[test]
    fn a_round_reason_names_each_address_once() {
        let one = [("a:1".to_owned(), "cannot reach a:1: refused".to_owned())];
        assert_eq!(round_reason(&one), "cannot reach a:1: refused");
        let round = [
            ("a:1".to_owned(), "cannot reach a:1: refused".to_owned()),
            ("b:2".to_owned(), "the server closed the connection during login".to_owned()),
        ];
        assert_eq!(
            round_reason(&round),
            "no server of the list took the connection (cannot reach a:1: refused; \
             b:2: the server closed the connection during login)"
        );
    }
}
