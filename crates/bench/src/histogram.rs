//! Latency histograms: microsecond values counted in buckets exact below 128 µs and at most 1/64 (1.6 %)
//! wide above, so recording is a few instructions and merging the histograms of many connections is cheap.

use serde::Serialize;

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Sub-buckets per power of two above `EXACT`.
const SUB_BUCKETS: u64 = 64;
/// Largest value told apart from larger ones (about 19 hours in microseconds); larger ones count as this.
const MAX_VALUE: u64 = (1 << 36) - 1;
/// Powers of two above `EXACT` up to `MAX_VALUE`.
const OCTAVES: u64 = 36 - 7;
const BUCKETS: usize = (EXACT + OCTAVES * SUB_BUCKETS) as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// The figures a report shows of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

fn bucket_of(value: u64) -> usize {
    let value = value.min(MAX_VALUE);
    if value < EXACT {
        return value as usize;
    }
    let shift = u64::from(64 - value.leading_zeros()) - 7;
    (EXACT + (shift - 1) * SUB_BUCKETS + ((value >> shift) - SUB_BUCKETS)) as usize
}

/// The largest value counted in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < EXACT {
        return bucket;
    }
    let shift = (bucket - EXACT) / SUB_BUCKETS + 1;
    let sub = (bucket - EXACT) % SUB_BUCKETS + SUB_BUCKETS;
    ((sub + 1) << shift) - 1
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest bucket bound at or below which a fraction `q` of the values lie (never above the
    /// largest value recorded); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(bucket).min(self.max);
            }
        }
        self.max
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max,
        }
    }

    /// The cumulative distribution: for each non-empty bucket, its upper bound (clipped to the maximum) and
    /// the fraction of values at or below it.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut seen = 0;
        let mut points = Vec::new();
        for (bucket, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            seen += count;
            points.push((upper_bound(bucket).min(self.max), seen as f64 / self.total as f64));
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_hold_their_values() {
        for bucket in 1..BUCKETS {
            assert_eq!(upper_bound(bucket - 1) + 1, lowest(bucket), "bucket {bucket}");
            assert_eq!(bucket_of(lowest(bucket)), bucket);
            assert_eq!(bucket_of(upper_bound(bucket)), bucket);
        }
        assert_eq!(upper_bound(BUCKETS - 1), MAX_VALUE);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    fn lowest(bucket: usize) -> u64 {
        if bucket == 0 { 0 } else { upper_bound(bucket - 1) + 1 }
    }

    #[test]
    fn quantiles_are_within_the_bucket_resolution() {
        let mut histogram = Histogram::default();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let found = histogram.quantile(q) as f64;
            assert!(found >= exact && found <= exact * (1.0 + 1.0 / 64.0), "q {q}: {found}");
        }
        assert_eq!(histogram.quantile(1.0), 100_000);
        assert_eq!(histogram.percentiles().max, 100_000);
    }

    #[test]
    fn small_values_are_exact_and_merging_adds_up() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(3);
        b.record(7);
        b.record(7);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.3), 3);
        assert_eq!(a.quantile(0.5), 7);
        assert_eq!(a.cdf(), vec![(3, 1.0 / 3.0), (7, 1.0)]);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
