//! Latency histograms in microseconds, on HdrHistogram: values kept to 2 significant digits (1 % of the value
//! at most), so that recording is a few instructions and merging the histograms of many connections is cheap.

use serde::Serialize;

/// Largest value told apart from larger ones (about 19 hours in microseconds); larger ones count as this.
const MAX_VALUE: u64 = (1 << 36) - 1;
const SIGNIFICANT_DIGITS: u8 = 2;

#[derive(Debug, Clone)]
pub struct Histogram {
    values: hdrhistogram::Histogram<u64>,
    /// The largest value recorded, exactly (HdrHistogram keeps it to the precision only).
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

impl Default for Histogram {
    fn default() -> Self {
        // Constant bounds that HdrHistogram accepts (1 <= low, 2 * low <= high, at most 5 digits).
        let values =
            hdrhistogram::Histogram::new_with_bounds(1, MAX_VALUE, SIGNIFICANT_DIGITS).expect("valid constant bounds");
        Histogram { values, max: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.values.saturating_record(micros);
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        // Both have the same bounds, so every value of `other` fits.
        self.values.add(&other.values).expect("histograms with the same bounds");
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.values.len()
    }

    /// The highest value equivalent (within the precision) to the one below which a fraction `q` of the values
    /// lie, never above the largest value recorded; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.values.is_empty() {
            return 0;
        }
        self.values.value_at_quantile(q).min(self.max)
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

    /// The cumulative distribution: for each value recorded (to the precision), its highest equivalent value
    /// (clipped to the maximum) and the fraction of values at or below it.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let steps = self.values.iter_recorded();
        steps.map(|step| (step.value_iterated_to().min(self.max), step.quantile_iterated_to())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_resolution() {
        let mut histogram = Histogram::default();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let found = histogram.quantile(q) as f64;
            assert!(found >= exact && found <= exact * 1.01, "q {q}: {found}");
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

    #[test]
    fn a_value_past_the_range_counts_as_the_largest() {
        let mut histogram = Histogram::default();
        histogram.record(u64::MAX);
        assert_eq!(histogram.count(), 1);
        assert!(histogram.quantile(0.5) >= MAX_VALUE);
        assert_eq!(histogram.percentiles().max, u64::MAX, "the maximum is kept exactly");
    }
}
