//! Gradient histograms: how the entries of one gradient tensor spread over magnitudes, in fixed
//! half-decade bins of log10|g| (what `wandb.watch` logs, with bins fixed so that histograms of
//! different steps and runs line up row for row in a heatmap).

/// Number of magnitude bins.
pub const BINS: usize = 16;
/// log10 of the lower edge of the first bin.
pub const LOG10_LO: f32 = -9.0;
/// Width of a bin in decades.
pub const BIN_DECADES: f32 = 0.5;
/// Length of a histogram: slot 0 counts exact zeros, slots `1..=BINS` the magnitude bins.
pub const LEN: usize = BINS + 1;

/// Counts of `values` by magnitude: `[zeros, bin 0, …, bin 15]`, where bin `k` holds
/// 10^(-9 + k/2) ≤ |g| < 10^(-8.5 + k/2). Magnitudes below 1e-9 fold into bin 0, those at or
/// above 1e-1 into bin 15, so every value is counted once and the counts sum to `values.len()`.
/// Non-finite values count in bin 15: they are a blow-up, and dropping them would hide it.
pub fn counts(values: &[f32]) -> [u32; LEN] {
    // The 15 inner edges; comparing against them is exact where a log10 per value would round
    // near an edge, and costs four comparisons instead of a logarithm.
    let edges: [f32; BINS - 1] =
        std::array::from_fn(|k| 10f32.powf(LOG10_LO + BIN_DECADES * (k as f32 + 1.0)));
    let mut out = [0u32; LEN];
    for &v in values {
        let a = v.abs();
        let slot = if a == 0.0 {
            0
        } else if !a.is_finite() {
            BINS
        } else {
            1 + edges.partition_point(|&e| e <= a)
        };
        out[slot] += 1;
    }
    out
}

/// `counts` as fractions of their total (all zeros for an empty histogram).
pub fn fractions(counts: &[u32]) -> Vec<f32> {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                (c as f64 / total as f64) as f32
            }
        })
        .collect()
}

/// Label of magnitude bin `k` (0-based, zeros excluded): its lower edge, e.g. "1e-9", "3e-9".
pub fn bin_label(k: usize) -> String {
    let lo = LOG10_LO + BIN_DECADES * k as f32;
    let exp = lo.floor();
    let mant = 10f32.powf(lo - exp).round();
    format!("{mant}e{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_lands_in_its_half_decade() {
        // 2e-9 is in bin 0 [1e-9, 3.16e-9); 5e-9 in bin 1; 1e-3 starts bin 12; 0.05 in bin 15.
        let c = counts(&[2e-9, -5e-9, 1e-3, 0.05, 0.0, -0.0]);
        assert_eq!(c[0], 2, "two zeros");
        assert_eq!(c[1], 1);
        assert_eq!(c[2], 1);
        assert_eq!(c[1 + 12], 1);
        assert_eq!(c[1 + 15], 1);
        assert_eq!(c.iter().sum::<u32>(), 6);
    }

    #[test]
    fn out_of_range_and_non_finite_fold_into_the_ends() {
        let c = counts(&[1e-20, 5.0, f32::INFINITY, f32::NAN, 1e-1]);
        assert_eq!(c[1], 1, "below 1e-9 into the first bin");
        assert_eq!(c[BINS], 4, "≥ 1e-1 and non-finite into the last");
        assert_eq!(c.iter().sum::<u32>(), 5);
    }

    #[test]
    fn edges_are_exact_lower_bounds() {
        let e = 10f32.powf(-6.0);
        assert_eq!(counts(&[e])[1 + 6], 1, "1e-6 opens bin 6");
        assert_eq!(counts(&[e * 0.999])[1 + 5], 1, "just below it is bin 5");
    }

    #[test]
    fn fractions_sum_to_one_or_are_zero() {
        let f = fractions(&counts(&[1e-3, 1e-3, 0.0, 1e-8]));
        assert!((f.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(f[1 + 12], 0.5);
        assert!(fractions(&[0; LEN]).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn labels_name_lower_edges() {
        assert_eq!(bin_label(0), "1e-9");
        assert_eq!(bin_label(1), "3e-9");
        assert_eq!(bin_label(15), "3e-2");
    }
}
