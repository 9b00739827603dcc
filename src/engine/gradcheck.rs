//! Test helpers: f64 central-difference gradients, relative-error comparison, deterministic
//! inputs, and a whole-op gradient check over every input.

use super::tensor::{Shape4, T4};
use dfdx::prelude::*;

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

pub(crate) type TT = OwnedTape<f64, Cpu>;

pub(crate) fn t4(v: &[f64], s: Shape4) -> T4<f64> {
    Cpu::default().tensor_from_vec(v.to_vec(), s)
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Max relative error between the analytic gradients of L = Σ y·r (r random) w.r.t. every
/// input and their central differences. `fwd` and `bwd` are the same op without / with a tape.
pub(crate) fn grad_check(
    xs: &[Vec<f64>],
    s: Shape4,
    fwd: impl Fn(Vec<T4<f64>>) -> T4<f64>,
    bwd: impl Fn(Vec<T4<f64, TT>>) -> T4<f64, TT>,
) -> f64 {
    let ts: Vec<T4<f64>> = xs.iter().map(|v| t4(v, s)).collect();
    let y0 = fwd(ts.clone());
    let r = rand_vec(y0.shape().num_elements(), 99);
    let rt: T4<f64> = Cpu::default().tensor_from_vec(r.clone(), *y0.shape());
    let traced: Vec<T4<f64, TT>> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| if i == 0 { t.leaky_trace() } else { t.retaped() })
        .collect();
    let g = (bwd(traced) * rt).sum().backward();
    let mut worst = 0.0f64;
    for i in 0..xs.len() {
        let analytic = g.get(&ts[i]).as_vec();
        let numeric = numeric_grad(
            |xi| {
                let mut inp = ts.clone();
                inp[i] = t4(xi, s);
                dot(&fwd(inp).as_vec(), &r)
            },
            &xs[i],
            1e-6,
        );
        let e = rel_err(&analytic, &numeric);
        assert!(e <= 1e-5, "input {i}: rel err {e:e}");
        worst = worst.max(e);
    }
    worst
}
