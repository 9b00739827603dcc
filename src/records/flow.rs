//! Gradient-flow figures derived from one step's per-block records: where each boundary sits in
//! relative depth, the fitted growth of the gradient toward the input, the shortcut's share of
//! each block's input gradient, and the mean-field prediction for plain batch-normalised stacks.
//! Pure functions over plain data, shared by the dashboard, `compare` and the tests.

use super::record::BlockStat;

/// Yang et al. 2019 ("A Mean Field Theory of Batch Normalization"): at initialisation a wide
/// fully-connected BN-ReLU stack multiplies the *squared* gradient norm by π/(π−1) per layer
/// going toward the input, so the norm grows by √(π/(π−1)) per layer: π/(π−1) ≈ 1.47 per
/// two-layer block. A prediction for plain nets only; shortcuts are outside that theory.
pub const MEAN_FIELD_GROWTH: f64 = std::f64::consts::PI / (std::f64::consts::PI - 1.0);

/// Position of boundary `i` of `n` between the input (0) and the output (1), so nets of
/// different depth share one axis.
pub fn relative_depth(i: usize, n: usize) -> f64 {
    if n < 2 {
        0.0
    } else {
        i as f64 / (n - 1) as f64
    }
}

/// Least-squares fit of ln(RMS) against block index, read toward the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slope {
    /// d ln(RMS) per block going from the output toward the input: positive means the gradient
    /// grows toward the input (exploding), negative that it shrinks (vanishing).
    pub per_block: f64,
}

impl Slope {
    /// The fitted geometric growth factor per block toward the input.
    pub fn factor(&self) -> f64 {
        self.per_block.exp()
    }
}

/// The fit over the boundaries with a finite positive RMS; `None` with fewer than three.
pub fn log_slope(rms: impl IntoIterator<Item = f64>) -> Option<Slope> {
    let pts: Vec<(f64, f64)> = rms
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.is_finite() && *r > 0.0)
        .map(|(i, r)| (i as f64, r.ln()))
        .collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    (sxx > 0.0).then(|| Slope {
        per_block: -sxy / sxx,
    })
}

/// [`log_slope`] of one step's size-free gradient RMS.
pub fn step_slope(blocks: &[BlockStat]) -> Option<Slope> {
    log_slope(blocks.iter().map(|b| b.grad_rms as f64))
}

/// RMS at the input end over RMS at the output end of one step's profile (the first and last
/// boundaries with a finite positive RMS): how much larger the gradient is where it arrives
/// than where it starts. `None` with fewer than two such boundaries.
pub fn spread(blocks: &[BlockStat]) -> Option<f64> {
    let mut ok = blocks
        .iter()
        .map(|b| b.grad_rms as f64)
        .filter(|r| r.is_finite() && *r > 0.0);
    let first = ok.next()?;
    let last = ok.last()?;
    Some(first / last)
}

/// The shortcut's share of each block's input gradient (`None` where not measured).
pub fn shares(blocks: &[BlockStat]) -> Vec<Option<f32>> {
    blocks
        .iter()
        .map(|b| b.split.and_then(|s| s.share()))
        .collect()
}

/// Median of the measured shares of one step (`None` if none was measured).
pub fn median_share(blocks: &[BlockStat]) -> Option<f32> {
    let mut v: Vec<f32> = shares(blocks)
        .into_iter()
        .flatten()
        .filter(|s| s.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::record::Eq5;

    #[test]
    fn slope_reads_growth_toward_the_input() {
        // RMS shrinking by ×1.5 per block from input to output: grows ×1.5 toward the input.
        let rms: Vec<f64> = (0..10).map(|i| 1.5f64.powi(-i)).collect();
        let s = log_slope(rms.iter().copied()).unwrap();
        assert!((s.factor() - 1.5).abs() < 1e-12, "{s:?}");
        assert!(s.per_block > 0.0);
        let flat = log_slope([1.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(flat.per_block, 0.0);
        let vanishing = log_slope((0..5).map(|i| 2f64.powi(i))).unwrap();
        assert!((vanishing.factor() - 0.5).abs() < 1e-12);
        // Zeros, NaNs and too few points are no fit.
        assert_eq!(log_slope([1.0, 0.0, f64::NAN]), None);
        assert!(log_slope([1.0, 0.0, 0.5, f64::NAN, 0.25]).is_some());
    }

    #[test]
    fn spread_is_input_over_output() {
        let b = |r: f32| BlockStat {
            grad_rms: r,
            ..BlockStat::default()
        };
        assert_eq!(
            spread(&[b(0.0), b(8.0), b(f32::NAN), b(2.0), b(0.5)]),
            Some(16.0)
        );
        assert_eq!(spread(&[b(8.0), b(0.0)]), None);
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn mean_field_constant() {
        assert!((MEAN_FIELD_GROWTH - 1.4669).abs() < 1e-4);
    }

    #[test]
    fn relative_depth_spans_zero_to_one() {
        assert_eq!(relative_depth(0, 28), 0.0);
        assert_eq!(relative_depth(27, 28), 1.0);
        assert_eq!(relative_depth(0, 1), 0.0);
        assert!((relative_depth(5, 11) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn shares_and_median() {
        let b = |s: Option<(f32, f32)>| BlockStat {
            split: s.map(|(shortcut, branch)| Eq5 {
                shortcut,
                branch,
                cos: 0.0,
            }),
            ..BlockStat::default()
        };
        let blocks = [
            b(None),
            b(Some((1.0, 3.0))),
            b(Some((1.0, 1.0))),
            b(Some((3.0, 1.0))),
        ];
        assert_eq!(
            shares(&blocks),
            vec![None, Some(0.25), Some(0.5), Some(0.75)]
        );
        assert_eq!(median_share(&blocks), Some(0.5));
        assert_eq!(median_share(&blocks[..3]), Some(0.375));
        assert_eq!(median_share(&[b(Some((0.0, 2.0)))]), Some(0.0));
        assert_eq!(median_share(&[b(None), b(Some((0.0, 0.0)))]), None);
    }
}
