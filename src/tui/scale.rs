//! The heatmap's colour scale for the gradient RMS: one per experiment, so it neither jumps when
//! the focus moves to another run nor is pinned by the first step's extremes (a plain stack's
//! gradient at initialisation spans four decades, then settles within a few steps).
//!
//! Every record's values go into a histogram of log10 values; the scale spans its 2nd to 98th
//! percentile. Values outside are drawn at the ends of the ramp.

/// Bins per decade and the decades covered: 10⁻¹⁵ to 10⁵ in steps of 0.05 decade.
const PER_DECADE: f64 = 20.0;
const LO: f64 = -15.0;
const BINS: usize = 400;

#[derive(Clone, Debug, PartialEq)]
pub struct LogScale {
    bins: Vec<u64>,
    count: u64,
}

impl Default for LogScale {
    fn default() -> Self {
        Self {
            bins: vec![0; BINS],
            count: 0,
        }
    }
}

impl LogScale {
    /// Add the positive finite values of `values` (others are gaps, not values).
    pub fn push(&mut self, values: impl IntoIterator<Item = f32>) {
        for v in values {
            if v.is_finite() && v > 0.0 {
                let b = ((v as f64).log10() - LO) * PER_DECADE;
                self.bins[(b.max(0.0) as usize).min(BINS - 1)] += 1;
                self.count += 1;
            }
        }
    }

    /// `[lo, hi]` in log10 units between the 2nd and 98th percentile; `None` before any value.
    pub fn range(&self) -> Option<[f64; 2]> {
        if self.count == 0 {
            return None;
        }
        let at = |q: f64| {
            let target = (q * self.count as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            let i = self
                .bins
                .iter()
                .position(|&c| {
                    seen += c;
                    seen >= target
                })
                .unwrap_or(BINS - 1);
            LO + i as f64 / PER_DECADE
        };
        let (lo, hi) = (at(0.02), at(0.98) + 1.0 / PER_DECADE);
        Some([lo, hi.max(lo + 0.1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_ignores_rare_extremes() {
        let mut s = LogScale::default();
        assert_eq!(s.range(), None);
        s.push([f32::NAN, 0.0, -1.0]);
        assert_eq!(s.range(), None);
        // 1000 values between 1e-3 and 1e-2, and 5 huge ones from a first step.
        s.push((0..1000).map(|i| 1e-3 * 10f32.powf(i as f32 / 1000.0)));
        s.push([1e3; 5]);
        let [lo, hi] = s.range().unwrap();
        assert!((lo + 3.0).abs() < 0.1, "{lo}");
        assert!((hi + 2.0).abs() < 0.15, "{hi}");
        let mut one = LogScale::default();
        one.push([1.0]);
        let [lo, hi] = one.range().unwrap();
        assert!(lo <= 0.0 && hi > lo);
    }
}
