//! The Hessian's extreme eigenvalues at a net's weights (Li et al. 2018, Fig. 7: the ratio
//! |λ_min / λ_max| of the loss's Hessian, near 0 where the surface is convex, large where it is
//! not), from Hessian-vector products by forward differences of gradients in float64:
//! H·v ≈ (∇L(θ + εv) − ∇L(θ)) / ε with ‖v‖ = 1, and a few Lanczos steps. ∇L(θ) is taken once
//! per point, so a product costs one gradient, not the two of a central difference; at ε = 1e-6
//! in float64 the two differ by about ε relative (the unit test `forward_and_central_agree`),
//! far below what the ratio is read to.
//!
//! The Hessian is the one over the weights the landscape perturbs (conv kernels and the FC
//! weight, every tensor of rank ≥ 2): biases and batch-norm γ, β are held fixed, as in the
//! landscape's directions (Li et al.'s `--xignore biasbn`). With γ and β included the product
//! failed the unit test's check against second differences of the loss (v2-8: uᵀHv −13.4 against
//! −0.098, that naive value at a step of 1e-3, which can cross a ReLU kink): probably the
//! evaluation-mode backward's γ, β gradients, not established. The weights alone pass.
//!
//! Lanczos rather than power iteration: one run gives both ends of the spectrum (the extreme Ritz
//! values converge first), where power iteration needs a second, shifted run. The basis is fully
//! re-orthogonalised, so no spurious copies of converged values appear. Li et al. ask scipy's
//! `eigsh` for a tolerance of 1e-2; here the iteration stops once both extreme Ritz values moved
//! by less than [`LANCZOS_TOL`] of the larger one between steps, or after the step cap.

use super::{ExperimentError, Passes};
use crate::engine::{self, Float};
use crate::model::{Mode, Network};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Relative change of the extreme Ritz values between Lanczos steps that ends the iteration.
pub const LANCZOS_TOL: f64 = 1e-2;
/// Step of the difference along a unit vector, on a float64 copy of the net. A step must
/// stay below the distance at which ReLU inputs cross zero, or the difference of gradients
/// measures the kinks, not the curvature: in f32 with a step of 1e-2 (this crate's first choice)
/// the products were 3.6–14× off PyTorch's exact double-backward ones and the eigenvalues fell
/// outside the exact spectrum (tests/pytorch/check_landscape.py, plain-8 and v1-8); in float64
/// at 1e-6 they agreed to 3e-9, and f32 cannot resolve a step that small.
pub const HVP_EPS: f64 = 1e-6;

/// Mean cross-entropy gradient at `net`'s weights over `batches` (each batch weighted by its
/// size), batch norm in evaluation mode with the net's running statistics (as the landscape's
/// loss), flattened in store order; one counted pass per batch.
pub fn loss_grad<E: Float>(
    net: &mut Network<E>,
    batches: &[(Vec<E>, Vec<usize>)],
    passes: &mut Passes,
) -> Result<Vec<f64>, ExperimentError>
where
    Cpu: Device<E>,
{
    let total: usize = batches.iter().map(|(_, y)| y.len()).sum();
    let mut sum = vec![0.0; net.num_params()];
    for (x, y) in batches {
        passes.check()?;
        let g = engine::on_pool(|| batch_grad(net, x.clone(), y));
        let w = y.len() as f64 / total.max(1) as f64;
        sum.iter_mut().zip(g).for_each(|(s, g)| *s += w * g);
        passes.tick();
    }
    Ok(sum)
}

/// One batch's mean-loss gradient, flattened.
fn batch_grad<E: Float>(net: &mut Network<E>, x: Vec<E>, y: &[usize]) -> Vec<f64>
where
    Cpu: Device<E>,
{
    let (n, k) = (y.len(), net.opts.classes);
    let dev = Cpu::default();
    let o = &net.opts;
    let x = dev
        .tensor_from_vec(x, (n, o.in_channels, o.height, o.width))
        .traced(Gradients::leaky());
    let mut hot = vec![E::zero(); n * k];
    y.iter()
        .enumerate()
        .for_each(|(i, &c)| hot[i * k + c] = E::one());
    let hot = dev.tensor_from_vec(hot, (n, k));
    let logits = net.forward(x, Mode::Eval);
    let mut grads = cross_entropy_with_logits_loss(logits, hot).backward();
    let per_param = net.store.take_grads(&mut grads);
    per_param
        .into_iter()
        .zip(&net.store.params)
        .flat_map(|(g, p)| {
            let held = !perturbed(p);
            g.into_iter().map(move |g| {
                if held {
                    0.0
                } else {
                    g.to_f64().unwrap_or(f64::NAN)
                }
            })
        })
        .collect()
}

/// Whether the Hessian covers this parameter: tensors of rank ≥ 2 (see the module's header).
pub fn perturbed<E: Float>(p: &crate::model::params::Param<E>) -> bool {
    !matches!(p.tensor, crate::model::params::ParamTensor::R1(_))
}

/// A Gaussian unit vector from `seed`, zero on the parameters the Hessian does not cover.
pub fn start_vector<E: Float>(net: &Network<E>, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f64> = Vec::with_capacity(net.num_params());
    for p in &net.store.params {
        let on = perturbed(p);
        for _ in 0..p.data().len() {
            let x: f64 = StandardNormal.sample(&mut rng);
            v.push(if on { x } else { 0.0 });
        }
    }
    normalise(&mut v);
    v
}

/// Add `s·v` to `net`'s weights (flattened in store order).
fn shift<E: Float>(net: &mut Network<E>, v: &[f64], s: f64) {
    let mut at = 0;
    for p in net.store.params.iter_mut() {
        let w = p.data_mut();
        for (wi, vi) in w.iter_mut().zip(&v[at..]) {
            *wi = *wi + E::from_f64(s * vi).expect("finite");
        }
        at += w.len();
    }
}

/// `work`'s weights set to `theta`'s plus `s·v`.
fn set_shifted<E: Float>(work: &mut Network<E>, theta: &Network<E>, v: &[f64], s: f64) {
    work.store
        .params
        .iter_mut()
        .zip(&theta.store.params)
        .for_each(|(w, t)| w.data_mut().copy_from_slice(t.data()));
    shift(work, v, s);
}

/// H·v at `theta` (‖v‖ = 1) by the forward difference of [`loss_grad`] with step `eps`
/// ([`HVP_EPS`] on float64 nets) from `g0`, the gradient at `theta`; `work` is overwritten.
pub fn hvp<E: Float>(
    (theta, g0): (&Network<E>, &[f64]),
    work: &mut Network<E>,
    batches: &[(Vec<E>, Vec<usize>)],
    (v, eps): (&[f64], f64),
    passes: &mut Passes,
) -> Result<Vec<f64>, ExperimentError>
where
    Cpu: Device<E>,
{
    set_shifted(work, theta, v, eps);
    let plus = loss_grad(work, batches, passes)?;
    Ok(plus.iter().zip(g0).map(|(a, b)| (a - b) / eps).collect())
}

/// Gradient passes [`extreme_eigs`] makes at most: the gradient at θ, then one per step; one
/// pass per batch.
pub fn passes_needed(steps: usize, image_batches: usize) -> usize {
    (steps + 1) * image_batches
}

/// `batches` in float64, the precision [`extreme_eigs`] takes its products in: widen them once
/// for all the points of a subgrid.
pub fn widen<E: Float>(batches: &[(Vec<E>, Vec<usize>)]) -> Vec<(Vec<f64>, Vec<usize>)> {
    batches
        .iter()
        .map(|(x, y)| {
            let x = x.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).collect();
            (x, y.clone())
        })
        .collect()
}

/// `(λ_min, λ_max)` of the loss's Hessian at `theta`'s weights over `wide` (batches already in
/// float64, [`widen`]), by at most `steps` Lanczos steps from a Gaussian start drawn by `seed`.
pub fn extreme_eigs<E: Float>(
    theta: &Network<E>,
    wide: &[(Vec<f64>, Vec<usize>)],
    (steps, seed): (usize, u64),
    passes: &mut Passes,
) -> Result<(f64, f64), ExperimentError>
where
    Cpu: Device<E>,
{
    // See HVP_EPS: the products are taken in float64, whatever the net's own precision.
    let theta = theta.to_f64();
    let mut work = theta.clone();
    let g0 = loss_grad::<f64>(&mut work, wide, passes)?;
    let start = start_vector(&theta, seed);
    let mut op =
        |v: &[f64], p: &mut Passes| hvp::<f64>((&theta, &g0), &mut work, wide, (v, HVP_EPS), p);
    lanczos(&mut op, start, (steps, LANCZOS_TOL), passes)
}

/// `(λ_min, λ_max)` of the symmetric operator `op` from at most `steps` Lanczos steps from the
/// unit vector `start` (fully re-orthogonalised; on the subspace `op` maps into), stopping
/// early, from the third step on, once both extreme Ritz values moved by less than `tol` of the
/// larger between steps.
pub fn lanczos<F>(
    op: &mut F,
    start: Vec<f64>,
    (steps, tol): (usize, f64),
    passes: &mut Passes,
) -> Result<(f64, f64), ExperimentError>
where
    F: FnMut(&[f64], &mut Passes) -> Result<Vec<f64>, ExperimentError>,
{
    let n = start.len();
    let mut v = start;
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut last = (f64::NAN, f64::NAN);
    for step in 0..steps.clamp(1, n.max(1)) {
        let mut w = op(&v, passes)?;
        alpha.push(dot(&w, &v));
        basis.push(v);
        for b in &basis {
            let c = dot(&w, b);
            w.iter_mut().zip(b).for_each(|(wi, bi)| *wi -= c * bi);
        }
        let ritz = tridiagonal_extremes(&alpha, &beta);
        let scale = ritz.0.abs().max(ritz.1.abs()).max(f64::MIN_POSITIVE);
        let moved = (ritz.0 - last.0).abs().max((ritz.1 - last.1).abs());
        last = ritz;
        let b = norm(&w);
        if (step >= 2 && moved < tol * scale) || b <= 1e-12 * scale {
            break;
        }
        beta.push(b);
        v = w.into_iter().map(|x| x / b).collect();
    }
    Ok(last)
}

/// Smallest and largest eigenvalue of the symmetric tridiagonal matrix with diagonal `a` and
/// off-diagonal `b` (`b.len() ≥ a.len() − 1`; extra entries ignored), by Sturm-sequence
/// bisection inside the Gershgorin bounds, to about 1e-12 of their width.
pub fn tridiagonal_extremes(a: &[f64], b: &[f64]) -> (f64, f64) {
    let m = a.len();
    let off = |i: usize| if i < m - 1 { b[i].abs() } else { 0.0 };
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..m {
        let r = off(i) + if i > 0 { off(i - 1) } else { 0.0 };
        lo = lo.min(a[i] - r);
        hi = hi.max(a[i] + r);
    }
    // Eigenvalues below x: sign changes of the LDLᵀ pivots of T − xI.
    let below = |x: f64| {
        let (mut count, mut d) = (0, 1.0);
        for i in 0..m {
            let b2 = if i > 0 { b[i - 1] * b[i - 1] } else { 0.0 };
            d = a[i] - x - if i > 0 { b2 / d } else { 0.0 };
            if d == 0.0 {
                d = -f64::EPSILON * (x.abs() + 1.0);
            }
            count += usize::from(d < 0.0);
        }
        count
    };
    let find = |k: usize| {
        let (mut l, mut h) = (lo, hi);
        for _ in 0..200 {
            let mid = 0.5 * (l + h);
            if h - l <= 1e-12 * (hi - lo).max(f64::MIN_POSITIVE) {
                break;
            }
            if below(mid) > k { h = mid } else { l = mid }
        }
        0.5 * (l + h)
    };
    (find(0), find(m - 1))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn normalise(v: &mut [f64]) {
    let n = norm(v).max(f64::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= n);
}

/// |λ_min / λ_max| as Li et al. plot it (NaN if λ_max is 0).
pub fn ratio((min, max): (f64, f64)) -> f64 {
    (min / max).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// H = Q D Qᵀ with Q a Householder reflection: eigenvalues exactly D, a dense matrix.
    fn reflected(d: &[f64], u: &[f64]) -> Vec<Vec<f64>> {
        let n = d.len();
        let un = norm(u);
        let u: Vec<f64> = u.iter().map(|x| x / un).collect();
        let q = |i: usize, j: usize| f64::from(u8::from(i == j)) - 2.0 * u[i] * u[j];
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (0..n).map(|k| q(i, k) * d[k] * q(j, k)).sum())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn lanczos_finds_both_ends_of_a_dense_spectrum() {
        let d = [-2.0, -0.5, 0.1, 1.0, 3.0, 5.0, 0.7, -0.1];
        let u = [0.3, -1.0, 0.2, 0.5, 0.9, -0.4, 0.1, 0.6];
        let h = reflected(&d, &u);
        let mut op =
            |v: &[f64], _: &mut Passes| Ok(h.iter().map(|row| dot(row, v)).collect::<Vec<f64>>());
        let never = AtomicBool::new(false);
        let mut quiet = |_, _| {};
        let mut passes = Passes::new(0, &mut quiet, &never);
        let (lo, hi) = lanczos(&mut op, unit(8, 3), (8, 0.0), &mut passes).unwrap();
        assert!((lo + 2.0).abs() < 1e-6, "λ_min {lo}");
        assert!((hi - 5.0).abs() < 1e-6, "λ_max {hi}");
        assert!((ratio((lo, hi)) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn tridiagonal_extremes_match_a_two_by_two() {
        // [[1, 2], [2, -2]]: eigenvalues (−1 ± √(9 + 16)) / 2 = 2 and −3.
        let (lo, hi) = tridiagonal_extremes(&[1.0, -2.0], &[2.0]);
        assert!(
            (lo + 3.0).abs() < 1e-9 && (hi - 2.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert_eq!(tridiagonal_extremes(&[4.0], &[]), (4.0, 4.0));
    }

    fn unit(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        normalise(&mut v);
        v
    }

    /// uᵀ·(H·v) from the gradients against the naive mixed second difference of the loss alone,
    /// [L(θ+hu+hv) − L(θ+hu−hv) − L(θ−hu+hv) + L(θ−hu−hv)] / 4h², on tiny f64 nets with batch
    /// norm in evaluation mode, u and v over the weights the Hessian covers.
    #[test]
    fn hessian_vector_product_matches_second_differences_of_the_loss() {
        let opts = crate::model::NetOptions {
            in_channels: 1,
            height: 6,
            width: 6,
            classes: 3,
            base_width: 2,
        };
        for spec in ["v2-8", "plain-8"] {
            let theta = Network::<f64>::new(spec.parse().unwrap(), opts, 5);
            let n = theta.num_params();
            let x: Vec<f64> = unit(5 * 36, 9).iter().map(|v| v * 12.0).collect();
            let batches = vec![(x.clone(), vec![0, 2, 1, 1, 0])];
            let (u, v) = (start_vector(&theta, 1), start_vector(&theta, 2));
            assert_eq!(u.len(), n);
            let never = AtomicBool::new(false);
            let mut quiet = |_, _| {};
            let mut passes = Passes::new(0, &mut quiet, &never);
            let mut work = theta.clone();
            // The tiny net's weights are ~0.3: a step of 1e-5 in f64 keeps both differences
            // far from the ReLU kinks and rounding.
            let g0 = loss_grad(&mut work, &batches, &mut passes).unwrap();
            let hv = hvp((&theta, &g0), &mut work, &batches, (&v, 1e-5), &mut passes).unwrap();
            let fast = dot(&u, &hv);
            // 1e-3 crosses a ReLU kink of v2-8 on this batch (the naive value jumps); 1e-4 not.
            let h = 1e-4;
            let loss = |su: f64, sv: f64| {
                let mut w = theta.clone();
                shift(&mut w, &u, su);
                shift(&mut w, &v, sv);
                w.eval_batch(&x, &batches[0].1).0
            };
            let naive = (loss(h, h) - loss(h, -h) - loss(-h, h) + loss(-h, -h)) / (4.0 * h * h);
            let err = (fast - naive).abs();
            assert!(
                err <= 1e-3 * naive.abs() + 1e-9,
                "{spec}: uᵀHv {fast} against naive {naive}"
            );
            assert!(
                naive.abs() > 1e-5,
                "{spec}: a curvature to compare ({naive})"
            );
        }
    }

    /// The forward difference at [`HVP_EPS`] against the central one (which matched PyTorch's
    /// exact products to 3e-9, tests/pytorch/check_landscape.py) on a real net: within 1e-5.
    #[test]
    fn forward_and_central_agree() {
        let opts = crate::model::NetOptions {
            in_channels: 1,
            height: 8,
            width: 8,
            classes: 4,
            base_width: 4,
        };
        for spec in ["v1-8", "plain-8"] {
            let theta = Network::<f64>::new(spec.parse().unwrap(), opts, 3);
            let x: Vec<f64> = unit(6 * 64, 4).iter().map(|v| v * 20.0).collect();
            let batches = vec![(x, vec![0, 3, 1, 2, 2, 0])];
            let never = AtomicBool::new(false);
            let mut quiet = |_, _| {};
            let mut passes = Passes::new(0, &mut quiet, &never);
            let mut work = theta.clone();
            let g0 = loss_grad(&mut work, &batches, &mut passes).unwrap();
            let v = start_vector(&theta, 7);
            let fwd = hvp(
                (&theta, &g0),
                &mut work,
                &batches,
                (&v, HVP_EPS),
                &mut passes,
            )
            .unwrap();
            let mut at = |s: f64| {
                set_shifted(&mut work, &theta, &v, s);
                loss_grad(&mut work, &batches, &mut passes).unwrap()
            };
            let (plus, minus) = (at(HVP_EPS), at(-HVP_EPS));
            let central: Vec<f64> = plus
                .iter()
                .zip(&minus)
                .map(|(a, b)| (a - b) / (2.0 * HVP_EPS))
                .collect();
            let diff: Vec<f64> = fwd.iter().zip(&central).map(|(a, b)| a - b).collect();
            let rel = norm(&diff) / norm(&central);
            assert!(norm(&central) > 1e-3, "{spec}: a curvature to compare");
            assert!(
                rel < 1e-5,
                "{spec}: forward vs central H·v differ by {rel:e}"
            );
        }
    }

    /// The default tolerance ends the iteration early, within 5 % of the spectrum's width at both
    /// ends (the end whose Ritz value converges slower, here λ_min, is the less accurate).
    #[test]
    fn lanczos_at_the_default_tolerance_is_close() {
        let d: Vec<f64> = (0..40).map(|i| (i as f64 - 8.0) * 0.25).collect();
        let u: Vec<f64> = (0..40).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
        let h = reflected(&d, &u);
        let mut calls = 0;
        let mut op = |v: &[f64], _: &mut Passes| {
            calls += 1;
            Ok(h.iter().map(|row| dot(row, v)).collect::<Vec<f64>>())
        };
        let never = AtomicBool::new(false);
        let mut quiet = |_, _| {};
        let mut passes = Passes::new(0, &mut quiet, &never);
        let (lo, hi) = lanczos(&mut op, unit(40, 1), (30, LANCZOS_TOL), &mut passes).unwrap();
        assert!(calls < 30, "stopped early ({calls} steps)");
        let width = 7.75 + 2.0;
        assert!(
            (lo + 2.0).abs() < 0.05 * width && (hi - 7.75).abs() < 0.05 * width,
            "{lo} {hi}"
        );
    }
}
