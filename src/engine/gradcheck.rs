//! Test helpers: f64 central-difference gradients and relative-error comparison.

/// Central-difference gradient of `f` at `x` with step `h`.
pub fn numeric_grad(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xs[i];
            xs[i] = orig + h;
            let fp = f(&xs);
            xs[i] = orig - h;
            let fm = f(&xs);
            xs[i] = orig;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// max |a-b| / max(max|a|, max|b|, tiny): one relative error for a whole gradient.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "gradient lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = a.iter().chain(b).map(|v| v.abs()).fold(1e-12, f64::max);
    diff / scale
}

/// Deterministic pseudo-random values in [-1, 1) for test inputs (no RNG crate needed).
pub fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}
