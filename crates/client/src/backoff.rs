//! Reconnect delays: exponential from `initial`, capped at `max`, with jitter so that clients dropped
//! together do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1 for the first retry): between half and all of
    /// `initial * 2^(attempt-1)`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self.initial.saturating_mul(1 << exponent).min(self.max);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_start_well_under_a_second() {
        let backoff = Backoff::default();
        for _ in 0..100 {
            let first = backoff.delay(1);
            assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
            assert!(backoff.delay(30) <= Duration::from_secs(10));
            assert!(backoff.delay(30) >= Duration::from_secs(5));
        }
    }
}
